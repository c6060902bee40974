"""Training samples for the facing detector, the shelf-edge net and the void-mask net: random
crops, scales and colours of labeled photos.

The detector has two heatmaps, product facings and voids (empty shelf space); the shelf-edge
net one, the line each shelf's products stand on; the void-mask net one, the inside of every
void box. A photo may be labeled for some of them only (real-gaps has void boxes but no
product boxes, racks no shelf boxes); each map has its own mask of where its loss counts, so
an unlabeled kind teaches nothing wrong (the void mask shares the void heatmap's).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STRIDE = 4  # output cells per input pixel
CROP = 384  # training crop side, input pixels
CLASSES = ("product", "gap")
EDGE_SIGMA = 1.5  # the shelf-edge line's half thickness, output cells
# Uprights: the sides of each annotated bay, known within the annotated shelves' box widened
# by UPRIGHT_AROUND of the photo's width (the sides lie on its border); a side this close to
# the photo's edge (UPRIGHT_CUT_OFF) is where the frame cuts the bay, not an upright.
UPRIGHT_AROUND = 0.04
UPRIGHT_CUT_OFF = 0.02


@dataclass
class Source:
    """A photo, its product boxes (x1, y1, x2, y2), areas left unlabeled (COCO crowd boxes)
    and, where labeled, its void boxes.

    ``products_known``: every product outside ``ignore`` is boxed (else products are
    unlabeled and only the voids tell where no product is). ``gaps_known``: every void is
    boxed (else only the product boxes tell where no void is).
    """

    image: np.ndarray  # BGR
    boxes: np.ndarray  # (N, 4) float
    ignore: np.ndarray | None = None  # (M, 4): no loss there
    gaps: np.ndarray | None = None  # (K, 4) void boxes
    products_known: bool = True
    gaps_known: bool = False
    # Shelf boxes (x1, y1, x2, y2: a shelf level from its products' tops down to its edge),
    # and where every shelf is boxed (elsewhere shelf edges are unlabeled).
    shelves: np.ndarray | None = None
    shelf_region: np.ndarray | None = None  # (R, 4)


@dataclass
class Sample:
    """One augmented crop: network input, boxes per class, and the loss weight per class."""

    image: np.ndarray  # CHW float32 RGB in [0, 1]
    boxes: list[np.ndarray]  # per class, (N, 4) in crop pixels
    # (classes + 2, H/STRIDE, W/STRIDE): then the shelf edges' map and the uprights'
    valid: np.ndarray
    shelves: np.ndarray  # (S, 4) shelf boxes in crop pixels
    uprights: np.ndarray  # (U, 4) bay sides (x, y1, x, y2) in crop pixels


def targets(
    boxes: list[np.ndarray], h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps (gaussian per centre, one per class), size and offset maps (shared: centres
    of different classes do not coincide), and the mask of centre cells per class."""
    oh, ow = h // STRIDE, w // STRIDE
    heat = np.zeros((len(boxes), oh, ow), np.float32)
    size = np.zeros((2, oh, ow), np.float32)
    offset = np.zeros((2, oh, ow), np.float32)
    centre = np.zeros((len(boxes), oh, ow), np.float32)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float32)
    for k, class_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in class_boxes:
            bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            ix, iy = int(cx), int(cy)
            if not (0 <= ix < ow and 0 <= iy < oh) or bw < 1 or bh < 1:
                continue
            sx, sy = max(0.5, bw / 6), max(0.5, bh / 6)
            g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
            np.maximum(heat[k], g, out=heat[k])
            size[:, iy, ix] = (np.log(bw), np.log(bh))
            offset[:, iy, ix] = (cx - ix, cy - iy)
            centre[k, iy, ix] = 1.0
    return heat, size, offset, centre


def edge_targets(shelves: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The shelf-edge map: along each shelf box's bottom (its edge, under its products), a
    line a few cells thick fading from its centre row, and the centre rows themselves."""
    oh, ow = h // STRIDE, w // STRIDE
    heat = np.zeros((1, oh, ow), np.float32)
    centre = np.zeros((1, oh, ow), np.float32)
    rows = np.arange(oh, dtype=np.float32)[:, None]
    for x1, y1, x2, y2 in shelves:
        c1, c2 = max(0, int(x1 / STRIDE)), min(ow, int(np.ceil(x2 / STRIDE)))
        iy = int(y2 / STRIDE)
        if c2 <= c1 or not 0 <= iy < oh or y2 - y1 < 2 * STRIDE:
            continue
        line = np.exp(-((rows - iy) ** 2) / (2 * EDGE_SIGMA**2))
        np.maximum(heat[0, :, c1:c2], line, out=heat[0, :, c1:c2])
        centre[0, iy, c1:c2] = 1.0
    return heat, centre


def bays_of(shelves: np.ndarray) -> list[np.ndarray]:
    """Shelf boxes grouped into bays side by side, left to right: boxes whose columns overlap
    by more than half the narrower one are shelves of one bay."""
    bays: list[list[np.ndarray]] = []
    for box in sorted(np.asarray(shelves, np.float32).reshape(-1, 4), key=lambda b: b[0]):
        for bay in bays:
            x1 = float(np.median([b[0] for b in bay]))
            x2 = float(np.median([b[2] for b in bay]))
            if min(x2, box[2]) - max(x1, box[0]) > 0.5 * min(x2 - x1, box[2] - box[0]):
                bay.append(box)
                break
        else:
            bays.append([box])
    return [np.stack(bay) for bay in bays]


def bay_sides(shelves: np.ndarray, width: int) -> np.ndarray:
    """The uprights a photo's shelf boxes show, as (x, y1, x, y2): both sides of every bay of
    two or more boxed shelves, from its top shelf to its bottom one, but not where the
    photo's frame cuts the bay."""
    sides = []
    for bay in bays_of(shelves):
        if len(bay) < 2:
            continue
        top, bottom = float(bay[:, 1].min()), float(bay[:, 3].max())
        for x in (float(np.median(bay[:, 0])), float(np.median(bay[:, 2]))):
            if UPRIGHT_CUT_OFF * width < x < (1 - UPRIGHT_CUT_OFF) * width:
                sides.append((x, top, x, bottom))
    return np.array(sides, np.float32).reshape(-1, 4)


def upright_targets(sides: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The uprights' map: down each bay side, a line a few cells thick fading from its
    centre column, and the centre columns themselves."""
    oh, ow = h // STRIDE, w // STRIDE
    heat = np.zeros((1, oh, ow), np.float32)
    centre = np.zeros((1, oh, ow), np.float32)
    cols = np.arange(ow, dtype=np.float32)[None, :]
    for x, y1, _, y2 in sides:
        r1, r2 = max(0, int(y1 / STRIDE)), min(oh, int(np.ceil(y2 / STRIDE)))
        ix = int(x / STRIDE)
        if r2 <= r1 or not 0 <= ix < ow:
            continue
        line = np.exp(-((cols - ix) ** 2) / (2 * EDGE_SIGMA**2))
        np.maximum(heat[0, r1:r2], line, out=heat[0, r1:r2])
        centre[0, r1:r2, ix] = 1.0
    return heat, centre


def void_mask_targets(gaps: np.ndarray, h: int, w: int) -> np.ndarray:
    """The void-mask map: 1 on the output cells inside a void box, else 0."""
    mask = np.zeros((1, h // STRIDE, w // STRIDE), np.float32)
    for x1, y1, x2, y2 in np.round(np.asarray(gaps).reshape(-1, 4) / STRIDE).astype(int):
        mask[0, max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 1.0
    return mask


def _paint(valid: np.ndarray, boxes: np.ndarray, scale: float, x0: int, y0: int, v: float) -> None:
    for bx1, by1, bx2, by2 in boxes:
        gx1, gy1 = int(bx1 * scale) - x0, int(by1 * scale) - y0
        gx2, gy2 = int(np.ceil(bx2 * scale)) - x0, int(np.ceil(by2 * scale)) - y0
        valid[max(0, gy1) : max(0, gy2), max(0, gx1) : max(0, gx2)] = v


def sample(src: Source, rng: np.random.Generator, crop: int = CROP) -> Sample:
    """One augmented crop of ``src``."""
    image, boxes = src.image, src.boxes
    gaps = src.gaps if src.gaps is not None else np.zeros((0, 4), np.float32)
    sized = boxes if len(boxes) else gaps
    heights = sized[:, 3] - sized[:, 1] if len(sized) else np.array([60.0])
    # Scale so products are 20-120 px tall: the sizes the detector sees at inference. A
    # photo with voids only: voids are about a product tall.
    scale = rng.uniform(20, 120) / float(np.median(heights))
    # Crops centre on a random labeled object (labeled photos may be labeled only in part).
    anchors = np.concatenate([boxes, gaps]) * scale
    ih, iw = image.shape[0] * scale, image.shape[1] * scale
    if len(anchors):
        cx, cy = anchors[int(rng.integers(len(anchors)))].reshape(2, 2).mean(axis=0)
    else:
        cx, cy = iw / 2, ih / 2
    x0 = int(cx + rng.uniform(-0.4, 0.4) * crop - crop / 2)
    y0 = int(cy + rng.uniform(-0.4, 0.4) * crop - crop / 2)
    # Only the crop's window is resized (whole photos are large).
    sx1, sy1 = max(0, x0), max(0, y0)
    sx2, sy2 = min(int(iw), x0 + crop), min(int(ih), y0 + crop)
    out = np.zeros((crop, crop, 3), np.uint8)
    inside = np.zeros((crop, crop), np.float32)
    if sx2 > sx1 and sy2 > sy1:
        part = image[
            int(sy1 / scale) : int(np.ceil(sy2 / scale)),
            int(sx1 / scale) : int(np.ceil(sx2 / scale)),
        ]
        flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        window = cv2.resize(part, (sx2 - sx1, sy2 - sy1), interpolation=flags)
        out[sy1 - y0 : sy2 - y0, sx1 - x0 : sx2 - x0] = window
        inside[sy1 - y0 : sy2 - y0, sx1 - x0 : sx2 - x0] = 1.0
    ignore = src.ignore if src.ignore is not None else np.zeros((0, 4), np.float32)
    # Products: everywhere when labeled; else only on voids (where surely none stands).
    valid_p = inside.copy() if src.products_known else np.zeros_like(inside)
    if not src.products_known:
        _paint(valid_p, gaps, scale, x0, y0, 1.0)
    _paint(valid_p, ignore, scale, x0, y0, 0.0)
    # Voids: everywhere when labeled; else only on boxed products (surely not a void).
    valid_g = inside.copy() if src.gaps_known else np.zeros_like(inside)
    if not src.gaps_known:
        _paint(valid_g, boxes, scale, x0, y0, 1.0)
    _paint(valid_g, ignore, scale, x0, y0, 0.0)
    # Shelf edges: only where every shelf is boxed; uprights a little beyond (its sides).
    valid_s = np.zeros_like(inside)
    valid_u = np.zeros_like(inside)
    if src.shelf_region is not None:
        _paint(valid_s, src.shelf_region, scale, x0, y0, 1.0)
        around = np.array([-1, 0, 1, 0]) * UPRIGHT_AROUND * image.shape[1]
        _paint(valid_u, src.shelf_region + around, scale, x0, y0, 1.0)
    valid = np.stack([valid_p, valid_g, valid_s, valid_u]) * inside
    shelves = src.shelves if src.shelves is not None else np.zeros((0, 4), np.float32)
    uprights = bay_sides(shelves, image.shape[1]) * scale - [x0, y0, x0, y0]
    shelves = (shelves * scale - [x0, y0, x0, y0]).reshape(-1, 4)
    # A shelf whose edge lies outside the crop teaches nothing here.
    shelves = shelves[(shelves[:, 3] >= 0) & (shelves[:, 3] < crop)]
    shelves = np.clip(shelves, 0, crop)
    per_class = []
    for b in (boxes, gaps):
        b = b * scale - [x0, y0, x0, y0]
        keep = (b[:, 2] > 2) & (b[:, 3] > 2) & (b[:, 0] < crop - 2) & (b[:, 1] < crop - 2)
        per_class.append(np.clip(b[keep], 0, crop).reshape(-1, 4))
    if rng.random() < 0.5:
        out = out[:, ::-1]
        valid = valid[:, :, ::-1]
        per_class = [_flip(b, crop) for b in per_class]
        shelves = _flip(shelves, crop)
        uprights = _flip(uprights, crop)
    hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.6, 1.4)
    hsv[..., 2] = hsv[..., 2] * rng.uniform(0.6, 1.4) + rng.uniform(-25, 25)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return Sample(
        to_input(out),
        [b.astype(np.float32) for b in per_class],
        np.ascontiguousarray(valid[:, ::STRIDE, ::STRIDE]),
        np.asarray(shelves, np.float32).reshape(-1, 4),
        np.asarray(uprights, np.float32).reshape(-1, 4),
    )


def _flip(boxes: np.ndarray, crop: int) -> np.ndarray:
    return np.stack([crop - boxes[:, 2], boxes[:, 1], crop - boxes[:, 0], boxes[:, 3]], axis=1)


# Each 8-bit value over 255 in float32: looked up per pixel, the same numbers as dividing.
_UNIT = np.arange(256, dtype=np.float32) / 255.0


def to_input(bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> network input: RGB float32 CHW in [0, 1]."""
    scaled = cv2.LUT(np.ascontiguousarray(bgr), _UNIT)
    return np.ascontiguousarray(scaled[:, :, ::-1].transpose(2, 0, 1))
