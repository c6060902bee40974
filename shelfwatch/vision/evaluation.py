"""Scoring a scene against ground truth: box matching, counts, gaps and shelf rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray, over: str = "union") -> np.ndarray:
    """Pairwise overlap of (N, 4) and (M, 4) xyxy boxes: intersection over union, or over
    the smaller box's area (``over="smaller"``: a box cut by a frame's border lies wholly on
    the whole product)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if over == "smaller":
        base = np.minimum(area_a[:, None], area_b[None, :])
    else:
        base = area_a[:, None] + area_b[None, :] - inter
    return np.where(base > 0, inter / np.maximum(base, 1e-9), 0.0)


def greedy_match(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> int:
    """True positives: one-to-one matches by descending IoU above ``threshold``."""
    return int(matched_truth(pred, truth, threshold).sum())


def matched_truth(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per truth box, whether ``greedy_match`` pairs it with a prediction."""
    hit = np.zeros(len(truth), bool)
    if len(pred) == 0 or len(truth) == 0:
        return hit
    iou = iou_matrix(pred, truth)
    pairs = np.argwhere(iou >= threshold)
    order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]])
    used_p: set[int] = set()
    for k in order:
        p, t = pairs[k]
        if p in used_p or hit[t]:
            continue
        used_p.add(int(p))
        hit[t] = True
    return hit


def stacked(boxes: np.ndarray) -> np.ndarray:
    """Per (N, 4) xyxy box, whether another box stands on it or it on another: columns
    overlapping by half the narrower one's width, the vertical gap under a quarter of its
    height and the overlap under a third of it (stacked packs, not a row behind)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cols = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    side = cols >= 0.5 * np.minimum(w[:, None], w[None, :])
    # The vertical space between two boxes (negative: by how much they overlap).
    gap = np.maximum(b[:, None, 1] - b[None, :, 3], b[None, :, 1] - b[:, None, 3])
    touching = side & (gap > -h[:, None] / 3) & (gap < h[:, None] / 4)
    np.fill_diagonal(touching, False)
    return touching.any(axis=1)


def points_in_box(points: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    """Which (N, 2) points lie in the box (x1, y1, x2, y2), edges included."""
    x1, y1, x2, y2 = box
    p = points.reshape(-1, 2)
    return (p[:, 0] >= x1) & (p[:, 0] <= x2) & (p[:, 1] >= y1) & (p[:, 1] <= y2)


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@dataclass
class Tally:
    """Running counts for precision, recall and F1."""

    tp: int = 0
    n_pred: int = 0
    n_true: int = 0

    def add(self, tp: int, n_pred: int, n_true: int) -> None:
        self.tp += tp
        self.n_pred += n_pred
        self.n_true += n_true

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_true if self.n_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def gap_matches(
    pred: list[tuple[int, tuple[int, int, int, int]]],
    truth: list[tuple[int, tuple[int, int, int, int]]],
    threshold: float = 0.5,
) -> int:
    """Gaps match on the same shelf when their horizontal extents overlap with IoU >= threshold."""
    used: set[int] = set()
    tp = 0
    for shelf, box in pred:
        for k, (t_shelf, t_box) in enumerate(truth):
            if k in used or t_shelf != shelf:
                continue
            if interval_iou((box[0], box[2]), (t_box[0], t_box[2])) >= threshold:
                used.add(k)
                tp += 1
                break
    return tp


def shelf_recall(
    pred: list[tuple[float, float]], truth: list[tuple[float, float]], threshold: float = 0.5
) -> int:
    """Annotated shelves found: some detected band overlaps its vertical extent with IoU >= t."""
    return sum(1 for t in truth if any(interval_iou(t, p) >= threshold for p in pred))
