"""Facings the detector was unsure of, kept where they stand in a row of sure ones.

Products stand on their shelf side by side: a weak detection (a score under the photo's
cut) that stands on the shelf like its row's products, is about as tall as they are, fills
a space between them no sure box covers and is no surer a void than a product is a facing
the cut missed (white bottles on a white back, low-contrast packs on a top shelf). Alone,
or off the row, it is not taken: on a rack of cigarette packs the weak peaks are a pack's
parts, price cards and the fixture's sides.
"""

from __future__ import annotations

import numpy as np

ROW_MIN = 3  # sure products a row needs before it vouches for a weak one
HEIGHT = (0.6, 1.6)  # a weak box's height over its row's median height
MIN_WIDTH = 0.5  # ... and its width over the row's median width, at least
BOTTOM = 0.25  # how far its bottom may lie from the row's, in the row's median heights
COVERED = 0.3  # the share of it sure boxes may overlap


def row_facings(
    boxes: np.ndarray,
    shelf: np.ndarray,
    weak: np.ndarray,
    weak_scores: np.ndarray,
    weak_shelf: np.ndarray,
    voids: np.ndarray | None = None,
    void_scores: np.ndarray | None = None,
) -> np.ndarray:
    """Which weak boxes (best first, (N, 4) x1, y1, x2, y2 with their scores and shelves)
    stand in a row of the sure ``boxes`` on their shelf: a boolean mask over ``weak``.
    A taken box counts as sure for the ones after it, so two weak peaks on one product are
    one facing."""
    taken = np.zeros(len(weak), bool)
    if not len(boxes) or not len(weak):
        return taken
    # Each shelf's row, summed up once: median height, width and bottom, and its ends.
    levels = np.unique(shelf[shelf > 0])
    stats = np.full((int(max(levels.max(initial=0), weak_shelf.max())) + 1, 5), np.nan)
    for level in levels:
        row = boxes[shelf == level]
        if len(row) >= ROW_MIN:
            stats[level] = (
                np.median(row[:, 3] - row[:, 1]),
                np.median(row[:, 2] - row[:, 0]),
                np.median(row[:, 3]),
                row[:, 0].min(),
                row[:, 2].max(),
            )
    tall, wide, bottom, left, right = stats[weak_shelf].T
    x1, y1, x2, y2 = weak.T
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    with np.errstate(invalid="ignore"):  # NaN: a shelf without a row of sure products
        candidate = (
            (weak_shelf > 0)
            & (y2 - y1 >= HEIGHT[0] * tall)
            & (y2 - y1 <= HEIGHT[1] * tall)
            & (x2 - x1 >= MIN_WIDTH * wide)
            # standing on the shelf with its row (not a header, not a stacked case) ...
            & (np.abs(y2 - bottom) <= BOTTOM * tall)
            # ... and between its ends (not the fixture's side, not the next bay)
            & (cx >= left)
            & (cx <= right)
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


def covered(box: tuple[float, ...] | np.ndarray, boxes: np.ndarray) -> float:
    """Share of ``box`` that ``boxes`` overlap (overlaps summed, so at most about 1)."""
    x1, y1, x2, y2 = box
    ix = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    return float((ix * iy).sum()) / max(1.0, float((x2 - x1) * (y2 - y1)))
