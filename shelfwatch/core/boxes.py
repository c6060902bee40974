"""Box maths shared by the vision and planogram layers (boxes as x1, y1, x2, y2)."""

from __future__ import annotations

import numpy as np


def covered(box: tuple[float, ...] | np.ndarray, boxes: np.ndarray) -> float:
    """Share of ``box`` that ``boxes`` overlap (overlaps summed, so at most about 1)."""
    x1, y1, x2, y2 = box
    ix = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    return float((ix * iy).sum()) / max(1.0, float((x2 - x1) * (y2 - y1)))
