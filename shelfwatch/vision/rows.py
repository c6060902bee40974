"""Facings the detector was unsure of, kept where they stand in a row of sure ones.

Products stand on their shelf side by side: a weak detection (a score under the photo's
cut) that stands on the shelf like its row's products, is about as tall as they are, fills
a space no sure box covers on its shelf edge and is no surer a void than a product is a
facing the cut missed (white bottles on a white back, low-contrast packs on a top shelf, a
narrow bottle at the shelf's end). Alone, or off the row, it is not taken: on a rack of
cigarette packs the weak peaks are a pack's parts, price cards and the fixture's sides.
"""

from __future__ import annotations

import numpy as np

from shelfwatch.core.boxes import covered

ROW_MIN = 3  # sure products a row needs before it vouches for a weak one
HEIGHT = (0.6, 1.6)  # a weak box's height over its row's median height
MIN_WIDTH = 0.5  # ... and its width over the row's median width, at least
BOTTOM = 0.25  # how far its bottom may lie from the row's, in the row's median heights
COVERED = 0.3  # the share of it sure boxes may overlap
# Past the row's outer products a weak box is taken only this far (in photo widths) from
# the photo's sides: a product the frame cuts is a part seen, often counted in full by the
# next frame of a capture.
SIDE = 0.01


def row_facings(
    boxes: np.ndarray,
    shelf: np.ndarray,
    weak: np.ndarray,
    weak_scores: np.ndarray,
    weak_shelf: np.ndarray,
    voids: np.ndarray | None = None,
    void_scores: np.ndarray | None = None,
    shelf_ends: dict[int, tuple[float, float]] | None = None,
    photo_width: float | None = None,
) -> np.ndarray:
    """Which weak boxes (best first, (N, 4) x1, y1, x2, y2 with their scores and shelves)
    stand in a row of the sure ``boxes`` on their shelf: a boolean mask over ``weak``.
    A taken box counts as sure for the ones after it, so two weak peaks on one product are
    one facing. ``shelf_ends``: per shelf, the columns its edge spans; a weak box's centre
    must lie between them (without them, between the row's outer products), and past the
    row's outer products it must not touch the sides of the photo (``photo_width``)."""
    taken = np.zeros(len(weak), bool)
    if not len(boxes) or not len(weak):
        return taken
    # Each shelf's row, summed up once: median height, width and bottom, and its ends.
    levels = np.unique(shelf[shelf > 0])
    stats = np.full((int(max(levels.max(initial=0), weak_shelf.max())) + 1, 7), np.nan)
    for level in levels:
        row = boxes[shelf == level]
        if len(row) >= ROW_MIN:
            # The shelf's last facing is often the weak one (a narrow bottle beside wide
            # packs scores low): the shelf edge, not the row's outer products, ends the row.
            left, right = (shelf_ends or {}).get(int(level), (row[:, 0].min(), row[:, 2].max()))
            stats[level] = (
                np.median(row[:, 3] - row[:, 1]),
                np.median(row[:, 2] - row[:, 0]),
                np.median(row[:, 3]),
                left,
                right,
                row[:, 0].min(),
                row[:, 2].max(),
            )
    tall, wide, bottom, left, right, first, last = stats[weak_shelf].T
    x1, y1, x2, y2 = weak.T
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    near_left, near_right = (
        (SIDE * photo_width, (1 - SIDE) * photo_width) if photo_width else (-np.inf, np.inf)
    )
    with np.errstate(invalid="ignore"):  # NaN: a shelf without a row of sure products
        candidate = (
            (weak_shelf > 0)
            & (y2 - y1 >= HEIGHT[0] * tall)
            & (y2 - y1 <= HEIGHT[1] * tall)
            & (x2 - x1 >= MIN_WIDTH * wide)
            # standing on the shelf with its row (not a header, not a stacked case) ...
            & (np.abs(y2 - bottom) <= BOTTOM * tall)
            # ... and on its shelf's edge (not the fixture's side, not the next bay)
            & (cx >= left)
            & (cx <= right)
            # ... where a product past the row's outer ones is not cut by the photo's side
            & ((cx >= first) | (x1 > near_left))
            & ((cx <= last) | (x2 < near_right))
        )
    occupied = boxes
    for i in np.flatnonzero(candidate):
        if _holds(occupied, cx[i], cy[i]).any() or covered(weak[i], occupied) >= COVERED:
            continue
        if (
            voids is not None
            and (_holds(voids, cx[i], cy[i]) & (void_scores >= weak_scores[i])).any()
        ):
            continue  # as likely empty space as a product
        taken[i] = True
        occupied = np.vstack([occupied, weak[i]])
    return taken


def _holds(boxes: np.ndarray, x: float, y: float) -> np.ndarray:
    return (boxes[:, 0] <= x) & (boxes[:, 2] >= x) & (boxes[:, 1] <= y) & (boxes[:, 3] >= y)
