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
    heights = boxes[:, 3] - boxes[:, 1]
    widths = boxes[:, 2] - boxes[:, 0]
    occupied = list(boxes)
    for i, (box, score, level) in enumerate(zip(weak, weak_scores, weak_shelf, strict=True)):
        row = shelf == level
        if level == 0 or row.sum() < ROW_MIN:
            continue
        tall = float(np.median(heights[row]))
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if not HEIGHT[0] * tall <= y2 - y1 <= HEIGHT[1] * tall:
            continue
        if x2 - x1 < MIN_WIDTH * float(np.median(widths[row])):
            continue
        if abs(y2 - float(np.median(boxes[row, 3]))) > BOTTOM * tall:
            continue  # not standing on the shelf with its row (a header, a stacked case)
        if not boxes[row, 0].min() <= cx <= boxes[row, 2].max():
            continue  # beyond the row's ends: the fixture's side, the next bay
        held = np.array(occupied)
        if _holds(held, cx, cy).any() or covered(box, held) >= COVERED:
            continue
        if voids is not None and (_holds(voids, cx, cy) & (void_scores >= score)).any():
            continue  # as likely empty space as a product
        taken[i] = True
        occupied.append(box)
    return taken


def _holds(boxes: np.ndarray, x: float, y: float) -> np.ndarray:
    return (boxes[:, 0] <= x) & (boxes[:, 2] >= x) & (boxes[:, 1] <= y) & (boxes[:, 3] >= y)


def covered(box: tuple[float, ...] | np.ndarray, boxes: np.ndarray) -> float:
    """Share of ``box`` that ``boxes`` overlap (overlaps summed, so at most about 1)."""
    x1, y1, x2, y2 = box
    ix = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    return float((ix * iy).sum()) / max(1.0, float((x2 - x1) * (y2 - y1)))
