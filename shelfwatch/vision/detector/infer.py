"""Run the exported facing detector with OpenCV's DNN module (no torch at run time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.vision.detector.data import STRIDE, to_input
from shelfwatch.vision.evaluation import iou_matrix
from shelfwatch.vision.frame import reading_side

SHIPPED = Path(__file__).with_name("facings.onnx")
INPUT_SIDE = 640  # the photo's longer side at inference
# A product is kept when its score reaches THRESHOLD and RELATIVE x the photo's 90th
# percentile score: the detector is surer of packs in a rack than of a crowded supermarket
# shelf, where a low cut finds the products and a rack's low scores are duplicates. Chosen on
# the first five counted photos of real-shelves, real-products C1-C2 and renders of seed 1;
# the void threshold on the training part of real-gaps (best F1). See the README.
THRESHOLD = 0.25
RELATIVE = 0.5
FLOOR = 0.2  # scores considered for the percentile
# A second, smaller pass: close-ups show packs larger than the sizes the detector learned
# (products 20-120 px tall at its input), where at INPUT_SIDE it fires on a pack's parts with
# low scores; at SMALL_SIDE the packs are in its range and it is surer. The pass whose
# sureness (90th percentile score) is higher by MARGIN is used (racks C1-C2 count error
# 35 -> 1 %; see the README).
SMALL_SIDE = 384
MARGIN = 1.15
# A box of the pass used is averaged with the other pass's box on the same product (IoU at
# least SAME_PRODUCT): at INPUT_SIDE the detector draws tall packs short (at 110-130 px,
# 0.74 of their height on varied renders; 0.84 at SMALL_SIDE), and two readings of one
# product at two scales err less than either (see the README).
SAME_PRODUCT = 0.5
GAP_THRESHOLD = 0.2
# Voids down to VOID_FLOOR are returned too: overlapping ones on a shelf whose scores add up
# to GAP_TOGETHER are a gap (a wide empty stretch draws several weak centres). Chosen on
# renders of seeds 501-502 and the training part of real-gaps (0.35 / 0.45 / 0.6 tried).
VOID_FLOOR = 0.1
GAP_TOGETHER = 0.45
NMS_IOU = 0.4
TOP_K = 400  # peaks per photo read (a panorama: per photo-sized part, see ``frame``)
# Products from WEAK_FLOOR up to the photo's cut come back as weak: one standing in a row of
# kept products is a facing (``vision.rows``). 0.1 / 0.15 / 0.2 tried on the tuned half of
# the counted real-shelves photos and real-products C1-C2 (see the README).
WEAK_FLOOR = 0.15
GAP_HEAT = 5  # the void heatmap's channel (weights from before it have 5 channels)
# The shelf-edge net's weights, beside the detector's (``train(kind="shelf-edges")``); without them
# shelves come from the photo's own lines.
EDGES = "shelf_edges.onnx"
# The void-mask net's weights, beside the detector's (``train(kind="void-mask")``): where it
# is there, gaps are judged by the area it marks (``opencv_backend``).
VOID_MASK = "void_mask.onnx"
# The upright net's weights (``train(kind="uprights")``): where it is there, bays side by side
# are divided at the uprights it marks (``shelves.find_bays``).
UPRIGHTS = "uprights.onnx"
# A second detector, the same net trained four times as long (``train(kind="facings-long")``),
# shipped beside the first: where it is there and the ``detector_ensemble`` setting is on (the
# default), the INPUT_SIDE pass reads both and averages their maps. Two readings by differently
# trained nets err less than either (second batch of supermarket boxes, held out: P / R 0.593 /
# 0.579 -> 0.615 / 0.593 with one trained twice as long; varied renders' count error 2.4 ->
# 1.2 %) for about 20 ms a photo (see the README). Not at SMALL_SIDE: averaged there as well it
# changed little, for 10 ms more.
SECOND = "facings_long.onnx"


@dataclass
class Detected:
    """What the detector saw in one photo: product boxes (x1, y1, x2, y2) and scores, best
    first, void boxes and scores (``None`` from weights without a void head), and the weak
    product boxes under the photo's cut, best first."""

    boxes: np.ndarray
    scores: np.ndarray
    voids: np.ndarray | None = None
    void_scores: np.ndarray | None = None
    weak: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    weak_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    shelf_edges: np.ndarray | None = None  # per pixel, the shelf-edge net's score (0-1)
    void_mask: np.ndarray | None = None  # per pixel, the void-mask net's score (0-1)
    uprights: np.ndarray | None = None  # per pixel, the upright net's score (0-1)


# Room for every net of two model folders: with fewer slots than the nets one photo reads,
# each photo evicted one and read it from disk again (30 ms a photo with the second detector).
@lru_cache(maxsize=16)
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
    out: np.ndarray,
    scale: float,
    threshold: float = THRESHOLD,
    top_k: int = TOP_K,
    channel: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Network output (C, H, W) -> boxes (N, 4) in photo pixels and scores, best first, of the
    heatmap in ``channel`` (size and offset are shared)."""
    heat = _sigmoid(out[channel])
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
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.astype(np.float64), scores, threshold, NMS_IOU)
    keep = np.asarray(keep, dtype=int).reshape(-1)
    boxes, scores = boxes[keep], scores[keep]
    inside = _centre_inside_better(boxes)
    return boxes[~inside], scores[~inside]


def _centre_inside_better(boxes: np.ndarray) -> np.ndarray:
    """Per box (best first), whether its centre lies in the inner part of a better box:
    a second peak on one product (its half, or the product seen again a little off) rather
    than a neighbour, whose centre lies beside the box, or a stacked item, above it."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.35  # the inner 70 % of each box
    lo, hi = c - half, c + half
    # Pairs (i, j) whose centre i lies within box j's columns, then the few of them that lie
    # within its rows too: one comparison over all pairs instead of four (hundreds of peaks).
    i, j = np.nonzero((c[:, None, 0] >= lo[None, :, 0]) & (c[:, None, 0] <= hi[None, :, 0]))
    inside = (j < i) & (c[i, 1] >= lo[j, 1]) & (c[i, 1] <= hi[j, 1])  # j < i: j scored higher
    found = np.zeros(len(boxes), bool)
    found[i[inside]] = True
    return found


def detect(
    bgr: np.ndarray, path: Path = SHIPPED, threshold: float = THRESHOLD, second: Path | None = None
) -> Detected:
    """Product (and void) boxes (x1, y1, x2, y2) and scores in ``bgr``'s pixels, from the
    pass (``INPUT_SIDE`` or ``SMALL_SIDE``) the detector is surer in; a product box is the
    mean of both passes' boxes where the other pass found it too. ``second``: a second
    detector's weights, averaged with the first's at ``INPUT_SIDE``."""
    h, w = bgr.shape[:2]
    net = load(path)
    floor = min(WEAK_FLOOR, threshold)
    read = reading_side(h, w)
    top_k = int(TOP_K * max(h, w) / read)
    partner = load(second) if second is not None else None
    out, scale, blob, size = _forward(net, bgr, INPUT_SIDE, partner)
    boxes, scores = decode(out, scale, floor, top_k)
    if read > SMALL_SIDE:
        small = _forward(net, bgr, SMALL_SIDE)
        small_boxes, small_scores = decode(small[0], small[1], floor, top_k)
        other = small_boxes  # the pass not used, for each box's second reading
        if sureness(small_scores) > MARGIN * sureness(scores):
            out, scale, blob, size = small
            other = boxes
            boxes, scores = small_boxes, small_scores
        boxes = _averaged(boxes, other)
    cut = threshold
    if (scores >= FLOOR).any():
        cut = max(threshold, RELATIVE * sureness(scores))
    keep = scores >= cut
    found = Detected(_clip(boxes[keep], w, h), scores[keep])
    found.weak, found.weak_scores = _clip(boxes[~keep], w, h), scores[~keep]
    if out.shape[0] > GAP_HEAT:
        voids, void_scores = decode(out, scale, VOID_FLOOR, top_k, channel=GAP_HEAT)
        found.voids, found.void_scores = _clip(voids, w, h), void_scores
    # The one-map nets beside the detector read the same input, at the scale chosen.
    found.shelf_edges = _one_map(path.with_name(EDGES), blob, size, (w, h))
    found.void_mask = _one_map(path.with_name(VOID_MASK), blob, size, (w, h))
    found.uprights = _one_map(path.with_name(UPRIGHTS), blob, size, (w, h))
    return found


def _averaged(boxes: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``boxes`` each averaged with the box of ``other`` (the other pass) that overlaps it
    most, where that is the same product (IoU >= ``SAME_PRODUCT``)."""
    if not len(boxes) or not len(other):
        return boxes
    overlap = iou_matrix(boxes, other)
    best = overlap.argmax(axis=1)
    same = overlap[np.arange(len(boxes)), best] >= SAME_PRODUCT
    out = boxes.copy()
    out[same] = (boxes[same] + other[best[same]]) / 2
    return out


def sureness(scores: np.ndarray) -> float:
    """How sure the detector is of a photo's products: the 90th percentile of its scores
    from ``FLOOR`` up (0 with none there)."""
    sure = scores[scores >= FLOOR]
    return float(np.percentile(sure, 90)) if len(sure) else 0.0


def _forward(
    net: cv2.dnn.Net, bgr: np.ndarray, side: int, second: cv2.dnn.Net | None = None
) -> tuple[np.ndarray, float, np.ndarray, tuple[int, int]]:
    """The detector's output for ``bgr`` scaled to ``side`` px on its longer side (a
    panorama: see ``frame``), the scale, the network input (padded to a multiple of 32)
    and the scaled photo's (h, w); with a ``second`` detector, the two outputs averaged."""
    blob, scale, size = network_input(bgr, side)  # once: the one-map nets read it too
    net.setInput(blob)
    out = net.forward()[0]
    if second is not None:
        second.setInput(blob)
        out = _mean_output(out, second.forward()[0])
    return out, scale, blob, size


def network_input(bgr: np.ndarray, side: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``bgr`` as the nets read it at ``side`` px on its longer side (a panorama: see
    ``frame``): the network input padded to a multiple of 32, the scale and the scaled
    photo's (h, w) inside it."""
    h, w = bgr.shape[:2]
    scale = side / reading_side(h, w)
    ih, iw = int(round(h * scale)), int(round(w * scale))
    resized = cv2.resize(bgr, (iw, ih), interpolation=cv2.INTER_AREA)
    ph, pw = -(-ih // 32) * 32, -(-iw // 32) * 32
    padded = np.zeros((ph, pw, 3), np.uint8)
    padded[:ih, :iw] = resized
    return to_input(padded)[None], scale, (ih, iw)


def _mean_output(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two detectors' outputs as one: the heatmaps' probabilities averaged (back as logits,
    as ``decode`` reads them), box size and offset averaged as they are."""
    out = (a + b) / 2
    for channel in (0, GAP_HEAT) if a.shape[0] > GAP_HEAT else (0,):
        p = np.clip((_sigmoid(a[channel]) + _sigmoid(b[channel])) / 2, 1e-6, 1 - 1e-6)
        out[channel] = np.log(p) - np.log1p(-p)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _one_map(
    path: Path, blob: np.ndarray, size: tuple[int, int], photo: tuple[int, int]
) -> np.ndarray | None:
    """A one-map net's scores (0-1) per photo pixel; ``None`` where its weights are absent.
    ``size``: the resized photo's (height, width) inside the padded ``blob``."""
    if not path.is_file():
        return None
    net = load(path)
    net.setInput(blob)
    cells = net.forward()[0, 0, : -(-size[0] // STRIDE), : -(-size[1] // STRIDE)]
    return cv2.resize(_sigmoid(cells), photo, interpolation=cv2.INTER_LINEAR)


def _clip(boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes
