"""Training samples for the facing detector: random crops, scales and colours of labeled photos."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STRIDE = 4  # output cells per input pixel
CROP = 384  # training crop side, input pixels


@dataclass
class Source:
    """A photo, its product boxes (x1, y1, x2, y2) and areas left unlabeled (COCO crowd boxes)."""

    image: np.ndarray  # BGR
    boxes: np.ndarray  # (N, 4) float
    ignore: np.ndarray | None = None  # (M, 4): no loss there


def targets(
    boxes: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap (gaussian per centre), size and offset maps, and the mask of centre cells."""
    oh, ow = h // STRIDE, w // STRIDE
    heat = np.zeros((oh, ow), np.float32)
    size = np.zeros((2, oh, ow), np.float32)
    offset = np.zeros((2, oh, ow), np.float32)
    centre = np.zeros((oh, ow), np.float32)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float32)
    for x1, y1, x2, y2 in boxes:
        bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < ow and 0 <= iy < oh) or bw < 1 or bh < 1:
            continue
        sx, sy = max(0.5, bw / 6), max(0.5, bh / 6)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        np.maximum(heat, g, out=heat)
        size[:, iy, ix] = (np.log(bw), np.log(bh))
        offset[:, iy, ix] = (cx - ix, cy - iy)
        centre[iy, ix] = 1.0
    return heat, size, offset, centre


def sample(
    src: Source, rng: np.random.Generator, crop: int = CROP
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented crop (CHW float32 RGB in [0, 1]), its boxes, and its loss weight map."""
    image, boxes = src.image, src.boxes
    heights = boxes[:, 3] - boxes[:, 1] if len(boxes) else np.array([60.0])
    # Scale so products are 20-120 px tall: the sizes the detector sees at inference.
    scale = rng.uniform(20, 120) / float(np.median(heights))
    img = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    b = boxes * scale
    # Crops centre on a random product (labeled photos may be labeled only in part).
    if len(b):
        cx, cy = b[int(rng.integers(len(b)))].reshape(2, 2).mean(axis=0)
    else:
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
    x0 = int(cx + rng.uniform(-0.4, 0.4) * crop - crop / 2)
    y0 = int(cy + rng.uniform(-0.4, 0.4) * crop - crop / 2)
    out = np.zeros((crop, crop, 3), np.uint8)
    valid = np.zeros((crop, crop), np.float32)
    sx1, sy1 = max(0, x0), max(0, y0)
    sx2, sy2 = min(img.shape[1], x0 + crop), min(img.shape[0], y0 + crop)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y0 : sy2 - y0, sx1 - x0 : sx2 - x0] = img[sy1:sy2, sx1:sx2]
        valid[sy1 - y0 : sy2 - y0, sx1 - x0 : sx2 - x0] = 1.0
    for ix1, iy1, ix2, iy2 in src.ignore if src.ignore is not None else []:
        gx1, gy1 = int(ix1 * scale) - x0, int(iy1 * scale) - y0
        gx2, gy2 = int(np.ceil(ix2 * scale)) - x0, int(np.ceil(iy2 * scale)) - y0
        valid[max(0, gy1) : max(0, gy2), max(0, gx1) : max(0, gx2)] = 0.0
    b = b - [x0, y0, x0, y0]
    keep = (b[:, 2] > 2) & (b[:, 3] > 2) & (b[:, 0] < crop - 2) & (b[:, 1] < crop - 2)
    b = np.clip(b[keep], 0, crop)
    if rng.random() < 0.5:
        out = out[:, ::-1]
        valid = valid[:, ::-1]
        b = np.stack([crop - b[:, 2], b[:, 1], crop - b[:, 0], b[:, 3]], axis=1)
    hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.6, 1.4)
    hsv[..., 2] = hsv[..., 2] * rng.uniform(0.6, 1.4) + rng.uniform(-25, 25)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return to_input(out), b.astype(np.float32), valid[::STRIDE, ::STRIDE].copy()


def to_input(bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> network input: RGB float32 CHW in [0, 1]."""
    return np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0
