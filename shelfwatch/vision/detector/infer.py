"""Run the exported facing detector with OpenCV's DNN module (no torch at run time)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.vision.detector.data import STRIDE, to_input

SHIPPED = Path(__file__).with_name("facings.onnx")
INPUT_SIDE = 640  # the photo's longer side at inference
THRESHOLD = 0.45  # chosen on cameras C1-C2 of real-products (see README)
NMS_IOU = 0.4


@lru_cache(maxsize=4)
def load(path: Path = SHIPPED) -> cv2.dnn.Net:
    if not path.is_file():
        raise ShelfWatchError(f"{path}: facing detector weights not found")
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
    except cv2.error:
        raise ShelfWatchError(f"{path}: not a facing detector model (ONNX)") from None
    if net.empty():
        raise ShelfWatchError(f"{path}: not a facing detector model (ONNX)")
    return net


def decode(
    out: np.ndarray, scale: float, threshold: float = THRESHOLD, top_k: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Network output (5, H, W) -> boxes (N, 4) in photo pixels and scores, best first."""
    heat = 1 / (1 + np.exp(-out[0]))
    peaks = (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= threshold)
    ys, xs = np.nonzero(peaks)
    scores = heat[ys, xs]
    order = np.argsort(-scores)[:top_k]
    ys, xs, scores = ys[order], xs[order], scores[order]
    cx = (xs + out[3, ys, xs]) * STRIDE
    cy = (ys + out[4, ys, xs]) * STRIDE
    w = np.exp(np.clip(out[1, ys, xs], -3, 6)) * STRIDE
    h = np.exp(np.clip(out[2, ys, xs], -3, 6)) * STRIDE
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) / scale
    boxes, scores = boxes.reshape(-1, 4), scores.astype(np.float32)
    # Facings hardly overlap: a second peak on one product is a duplicate.
    keep = cv2.dnn.NMSBoxes(
        [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in boxes],
        scores.tolist(),
        threshold,
        NMS_IOU,
    )
    keep = np.asarray(keep, dtype=int).reshape(-1)
    return boxes[keep], scores[keep]


def detect(
    bgr: np.ndarray, path: Path = SHIPPED, threshold: float = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Product boxes (x1, y1, x2, y2) and scores in ``bgr``'s pixels."""
    h, w = bgr.shape[:2]
    scale = INPUT_SIDE / max(h, w)
    ih, iw = int(round(h * scale)), int(round(w * scale))
    resized = cv2.resize(bgr, (iw, ih), interpolation=cv2.INTER_AREA)
    ph, pw = -(-ih // 32) * 32, -(-iw // 32) * 32
    padded = np.zeros((ph, pw, 3), np.uint8)
    padded[:ih, :iw] = resized
    net = load(path)
    net.setInput(to_input(padded)[None])
    out = net.forward()[0]
    boxes, scores = decode(out, scale, threshold)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes, scores
