"""How large a photo is read: by its longer side, except a panorama."""

from __future__ import annotations

# A photo wider than PANORAMA : 1 is no camera's frame but a panorama or a stitched bay (no
# photo in ../shared is wider than 2 : 1). Read by its longer side, as a photo is, its
# products shrink with its width (six renders side by side: about 20 px tall at the
# detector's input, a quarter to a third of them missed; twelve: about 10 px, none found), so
# it is read as that many PANORAMA : 1 photos side by side: its height sets the scale,
# and the work and the detector's number of peaks grow with its width.
PANORAMA = 2.5


def reading_side(height: int, width: int) -> float:
    """The side a photo is scaled by where it is read at a given size: its longer side, or
    PANORAMA times the shorter one for a panorama."""
    return float(min(max(height, width), PANORAMA * min(height, width)))
