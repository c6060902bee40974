"""Facings and gaps inside one shelf's product zone, by column occupancy and vertical edges.

Products stand on the shelf edge, so the lower part of the zone tells occupied columns from
empty ones; wide occupied runs (touching products) are split where vertical edges repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from shelfwatch.vision.shelves import runs_of


@dataclass
class ZoneResult:
    boxes: list[tuple[int, int, int, int]]
    masks: list[np.ndarray]
    scores: list[float]
    gaps: list[tuple[int, int, int, int]]


def upper_calm_pixels(lab: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """Lab pixels of the zone's upper part without texture: mostly the fixture back."""
    top = max(3, int(lab.shape[0] * 0.35))
    strip = lab[:top].reshape(-1, 3)
    calm = (texture[:top] < 40).reshape(-1)
    return strip[calm] if calm.sum() > 50 else strip


def mode_colour(pixels: np.ndarray) -> np.ndarray:
    """The commonest colour (coarse Lab bins), refined to the median of its bin."""
    bins = (pixels // 16).astype(np.int32)
    keys = bins[:, 0] * 256 + bins[:, 1] * 16 + bins[:, 2]
    mode = np.bincount(keys).argmax()
    return np.median(pixels[keys == mode], axis=0)


def zone_features(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lab image, x and y gradients and smoothed texture of a zone."""
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return lab, gx, gy, cv2.GaussianBlur(np.hypot(gx, gy), (0, 0), 2)


def fixture_back_lab(bgr: np.ndarray, zones: list[tuple[int, int, int, int]]) -> np.ndarray | None:
    """Colour of the fixture back over all shelves of the photo.

    The back is one colour across a fixture, while a block of tall packs of one colour only
    fills part of one shelf, so the mode over every zone's upper part is the back.
    """
    features = (
        zone_features(bgr[y1:y2, x1:x2])
        for x1, y1, x2, y2 in zones
        if y2 - y1 >= 12 and x2 - x1 >= 12
    )
    return back_colour((lab, texture) for lab, _, _, texture in features)


def back_colour(zones: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """The mode colour over the upper calm part of every zone's (Lab, texture), or None."""
    pixels = [upper_calm_pixels(lab, texture) for lab, texture in zones]
    return mode_colour(np.concatenate(pixels)) if pixels else None


def foreground_mask(lab: np.ndarray, texture: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Pixels that differ from the back colour or carry texture."""
    # Each channel's squared distance from the back looked up per 8-bit value (a quarter of
    # the time of the arithmetic per pixel); the sums are the same numbers.
    square = np.square(np.arange(256, dtype=np.float32)[:, None] - back.astype(np.float32))
    per_channel = cv2.LUT(lab, square.reshape(256, 1, 3))
    far = per_channel[..., 0] + per_channel[..., 1] + per_channel[..., 2] > 22 * 22
    fg = (far | (texture > 90)).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return fg.astype(bool)


GAP_COLOUR = 12.0  # Lab distance of a column from the gap's inside
GAP_TEXTURE = 20.0  # column texture (gradient) that still reads as empty shelf
# A stretch is bare when this share of its columns is within BARE_COLOUR of the fixture
# back's colour and calm (set once on renders of seeds 502-503, not tuned further).
BARE_COLOUR = 20.0
BARE_SHARE = 0.8


def lower_middle(y1: int, y2: int) -> tuple[int, int]:
    """The rows of a shelf level's lower middle, where products stand (short ones too): not
    its top (price cards, the shelf above) nor its bottom (the shelf edge)."""
    return y1 + (y2 - y1) * 2 // 5, y2 - (y2 - y1) // 10


@dataclass
class Fixture:
    """A photo's colour and texture, computed once at half resolution for the fixture back
    and every product mask (masks are coarse: a product against the back)."""

    lab: np.ndarray
    texture: np.ndarray
    scale: float

    @classmethod
    def of(cls, bgr: np.ndarray, scale: float = 0.5) -> Fixture:
        small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        lab, _, _, texture = zone_features(small)
        return cls(lab, texture, scale)

    def _crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v * self.scale)) for v in box)
        return image[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]

    def back_lab(self, zones: list[tuple[int, int, int, int]]) -> np.ndarray | None:
        """The fixture back's colour, as ``fixture_back_lab`` finds it."""
        crops = ((self._crop(self.lab, z), self._crop(self.texture, z)) for z in zones)
        return back_colour((lab, t) for lab, t in crops if min(lab.shape[:2]) >= 6)

    def widen_gap(
        self, box: tuple[int, int, int, int], left: int, right: int
    ) -> tuple[int, int, int, int]:
        """``box`` (a gap) carried sideways, no further than ``left``..``right``, over the
        columns that look like its inside: the detector's void boxes are about one facing
        wide, while an empty stretch runs on to the next product."""
        x1, y1, x2, y2 = (int(round(v * self.scale)) for v in box)
        h, w = self.texture.shape
        top, bottom = lower_middle(y1, y2)
        lo, hi = max(0, int(left * self.scale)), min(w, int(np.ceil(right * self.scale)))
        x1, x2 = max(x1, lo), min(x2, hi)
        if bottom - top < 3 or x2 - x1 < 2:
            return box
        lab = self.lab[max(0, top) : min(h, bottom), lo:hi].astype(np.float32).mean(axis=0)
        tex = self.texture[max(0, top) : min(h, bottom), lo:hi].mean(axis=0)
        inside = slice(x1 - lo, x2 - lo)
        ref, ref_tex = np.median(lab[inside], axis=0), float(np.median(tex[inside]))
        like = (np.linalg.norm(lab - ref, axis=1) < GAP_COLOUR) & (
            tex < max(GAP_TEXTURE, 1.5 * ref_tex)
        )
        a, b = x1 - lo, x2 - lo
        while a > 0 and like[a - 1]:
            a -= 1
        while b < len(like) and like[b]:
            b += 1
        return (
            min(box[0], int((a + lo) / self.scale)),
            box[1],
            max(box[2], int((b + lo) / self.scale)),
            box[3],
        )

    def bare(self, box: tuple[int, int, int, int], back: np.ndarray) -> bool:
        """Whether ``box`` (a stretch of one shelf level) shows the fixture back: most of
        its columns, in the lower part of its height, have the back's colour and no
        texture."""
        lab, tex = self._lower_middle(self.lab, box), self._lower_middle(self.texture, box)
        if lab.shape[0] < 2 or lab.shape[1] < 2:
            return False
        colour = lab.astype(np.float32).mean(axis=0)
        like = (np.linalg.norm(colour - back, axis=1) < BARE_COLOUR) & (
            tex.mean(axis=0) < GAP_TEXTURE
        )
        return float(like.mean()) >= BARE_SHARE

    def colour(self, box: tuple[int, int, int, int]) -> np.ndarray | None:
        """The commonest Lab colour inside ``box`` (photo pixels; ``mode_colour``), ``None``
        when it holds no pixel."""
        lab = self._crop(self.lab, box)
        return mode_colour(lab.reshape(-1, 3)).astype(np.float32) if lab.size else None

    def _lower_middle(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        x1, y1, x2, y2 = box
        top, bottom = lower_middle(y1, y2)
        return self._crop(image, (x1, top, x2, bottom))

    def product_masks(
        self,
        boxes: np.ndarray,
        back: np.ndarray | None,
        to_image: np.ndarray | None = None,
        size: tuple[int, int] | None = None,
    ) -> list[np.ndarray]:
        """Each product's mask inside its (int) box: what differs from the fixture back,
        holes closed. The whole box where the back is unknown or most of the box looks like
        it (a pack coloured like the back). ``boxes`` lie in the image that ``to_image``
        (3x3) maps this fixture's frame onto, of ``size`` (width, height); by default this
        fixture's frame. One foreground map for the photo, closed and carried into that
        image once, then cut box by box (hundreds of boxes, no per-box image work)."""
        boxes = np.asarray(boxes, dtype=int).reshape(-1, 4)
        whole = [np.ones((max(0, y2 - y1), max(0, x2 - x1)), bool) for x1, y1, x2, y2 in boxes]
        if back is None or not len(boxes):
            return whole
        to_image = np.eye(3) if to_image is None else to_image
        zoom = float(np.sqrt(abs(np.linalg.det(to_image[:2, :2])))) / self.scale
        fg = foreground_mask(self.lab, self.texture, back).astype(np.uint8)
        # Holes closed at a twelfth of a typical product's side in this map (3 px at most
        # sizes): mask AP 0.646 on renders of seed 501, 0.60 at a sixth, 0.62 at an eighth;
        # 0.669 on seed 9005, never used to choose (0.643 with the old per-box masks).
        side = float(np.median(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
        k = max(3, int(side / zoom / 12) | 1)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
        lift = to_image @ np.diag([1 / self.scale, 1 / self.scale, 1.0])
        if size is None:
            h, w = self.lab.shape[:2]
            size = (int(round(w / self.scale)), int(round(h / self.scale)))
        if np.allclose(lift[[0, 1, 2, 2], [1, 0, 0, 1]], 0) and np.allclose(lift[:2, 2], 0):
            full = cv2.resize(fg, size, interpolation=cv2.INTER_NEAREST)  # a plain scale
        else:
            full = cv2.warpPerspective(fg, lift, size, flags=cv2.INTER_NEAREST)
        masks = []
        area = cv2.integral(full)  # each box's foreground share without a pass over the box
        for n, (a, b, c, d) in enumerate(boxes):
            crop = full[max(0, b) : max(0, d), max(0, a) : max(0, c)]
            if crop.shape != whole[n].shape or not crop.size:
                masks.append(whole[n])  # over the photo's edge
                continue
            y1, y2, x1, x2 = max(0, b), max(0, d), max(0, a), max(0, c)
            share = (area[y2, x2] - area[y1, x2] - area[y2, x1] + area[y1, x1]) / crop.size
            if share < 0.4:
                masks.append(whole[n])  # mostly back-coloured
            else:
                masks.append(crop.astype(bool))
        return masks


def _period(profile: np.ndarray, lo: int, hi: int) -> int | None:
    """Strongest repeat distance of a vertical-edge profile in [lo, hi] px (autocorrelation)."""
    p = profile - profile.mean()
    if hi <= lo or len(p) < 2 * lo or not p.any():
        return None
    ac = np.correlate(p, p, mode="full")[len(p) - 1 :]
    hi = min(hi, len(ac) - 1)
    if hi <= lo:
        return None
    return int(lo + np.argmax(ac[lo : hi + 1]))


def _split_at_seams(
    x1: int, x2: int, seam_profile: np.ndarray, min_width: float, strong: float = 0.5
) -> list[tuple[int, int]]:
    """Cut a run wherever a seam crosses at least ``strong`` of the rows (two packs touch)."""
    from scipy.signal import find_peaks

    inner = seam_profile[x1:x2]
    peaks, _ = find_peaks(inner, height=strong, distance=max(1, int(min_width)))
    cuts = [x1] + [x1 + int(p) for p in peaks if min_width <= p <= (x2 - x1) - min_width] + [x2]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _split_run(
    x1: int, x2: int, seam_profile: np.ndarray, width: float, min_seam: float = 0.3
) -> list[tuple[int, int]]:
    """Split a run of touching facings at seams near multiples of the facing width.

    ``seam_profile`` is, per column, the share of rows crossed by a vertical edge: a seam
    between two packs runs most of their height, a letter of the artwork does not. Without
    a seam the run stays whole (a wide pack is one pack).
    """
    n = int(round((x2 - x1) / width))
    if n <= 1:
        return [(x1, x2)]
    cuts = [x1]
    step = (x2 - x1) / n
    for k in range(1, n):
        centre = int(x1 + k * step)
        lo, hi = max(cuts[-1] + 2, int(centre - 0.3 * step)), min(x2 - 2, int(centre + 0.3 * step))
        if hi <= lo:
            continue
        cut = lo + int(np.argmax(seam_profile[lo:hi]))
        if seam_profile[cut] >= min_seam:
            cuts.append(cut)
    cuts.append(x2)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def find_facings(
    bgr: np.ndarray, x1: int, x2: int, y1: int, y2: int, back: np.ndarray | None = None
) -> ZoneResult:
    """Product facings (boxes, cropped masks, scores) and gaps in zone (x1, y1)-(x2, y2).

    ``back`` is the fixture's back colour (Lab); without it the zone's own is estimated.
    """
    zone = bgr[y1:y2, x1:x2]
    zh, zw = zone.shape[:2]
    if zh < 12 or zw < 12:
        return ZoneResult([], [], [], [])
    lab, gx, gy, texture = zone_features(zone)
    if back is None:
        back = mode_colour(upper_calm_pixels(lab, texture))
    fg = foreground_mask(lab, texture, back)
    low = fg[int(zh * 0.7) :]
    occupancy = np.convolve(low.mean(axis=0), np.ones(3) / 3, mode="same")
    occupied = occupancy > 0.5
    min_width = max(4, int(0.08 * zh))
    runs = [(a, b) for a, b in runs_of(occupied) if b - a >= min_width]

    vertical = np.where(np.abs(gx) > 2 * np.abs(gy), np.abs(gx), 0).sum(axis=0)
    edge_rows = ((np.abs(gx) > 25) & (np.abs(gx) > 2 * np.abs(gy))).astype(np.uint8)
    edge_rows = cv2.dilate(edge_rows, np.ones((1, 3), np.uint8))  # seams drift a pixel or two
    seams = edge_rows[int(zh * 0.3) :].mean(axis=0)
    widths = np.array([b - a for a, b in runs], dtype=float)
    single = widths[widths < 1.2 * zh]
    facing_w = float(np.median(single)) if len(single) >= 3 else None
    if facing_w is None:
        facing_w = float(_period(vertical, max(6, int(0.2 * zh)), int(1.2 * zh)) or 0.5 * zh)

    boxes, masks, scores = [], [], []
    for a, b in runs:
        parts = []
        for sa, sb in _split_at_seams(a, b, seams, max(min_width, 0.35 * facing_w)):
            wide = sb - sa > 1.6 * facing_w
            parts.extend(_split_run(sa, sb, seams, facing_w) if wide else [(sa, sb)])
        for pa, pb in parts:
            cols = fg[:, pa:pb]
            row_occ = cols.mean(axis=1)
            # Climb from the shelf up; a dark label band as wide as the pack may
            # look like the back, so only a long run of empty rows ends the pack.
            allowed = max(3, int(0.2 * zh))
            top = zh - 1
            misses = 0
            while top > 0 and misses < allowed:
                top -= 1
                misses = misses + 1 if row_occ[top] < 0.3 else 0
            top = min(zh - 1, top + misses)
            crop = cols[top:].astype(np.uint8)
            crop = cv2.morphologyEx(crop, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
            crop = _fill_rows(crop)
            if crop.sum() < 0.25 * crop.size:
                continue
            boxes.append((x1 + pa, y1 + top, x1 + pb, y2))
            masks.append(crop.astype(bool))
            scores.append(float(np.clip(occupancy[pa:pb].mean(), 0, 1)))

    gaps = []
    gap_min = max(min_width, int(0.55 * facing_w))
    for a, b in runs_of(~occupied):
        if b - a >= gap_min:
            gaps.append((x1 + a, y1, x1 + b, y2))
    return ZoneResult(boxes, masks, scores, gaps)


def _fill_rows(mask: np.ndarray) -> np.ndarray:
    """Fill each row between its leftmost and rightmost pixel (packs are solid)."""
    out = np.zeros_like(mask)
    any_row = mask.any(axis=1)
    if not any_row.any():
        return out
    left = np.argmax(mask, axis=1)
    right = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
    for r in np.nonzero(any_row)[0]:
        out[r, left[r] : right[r]] = 1
    return out
