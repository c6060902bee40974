"""The gaps stage: gaps from the void centres the detector sees, judged and completed by
the void-mask net's area, carried along their shelf, and bare stretches of fixture back
between products (see the README's "The default backend's facing detector")."""

from __future__ import annotations

import cv2
import numpy as np

from shelfwatch.core.boxes import covered
from shelfwatch.core.scene import Gap, Products
from shelfwatch.vision.evaluation import points_in_box
from shelfwatch.vision.facings import Fixture
from shelfwatch.vision.layout import join_gaps
from shelfwatch.vision.zones import Zone, level_rows, shelf_above, shelf_ends, shelf_of

# A bare stretch is at least this share of its shelf's median product width (loose boxes
# inflate the median).
BARE_MIN_WIDTH = 0.75
# With the void-mask net: a gap from void centres stays where the mask's mean over its box
# reaches MASK_KEEP; an area of mask cells >= MASK_ON that no gap covers, at least
# MASK_MIN_AREA of the photo, is a gap of its own when its mean reaches MASK_SURE. Chosen on
# the training part of real-gaps, MASK_KEEP lowered from 0.4 for a rendered capture's empty
# facing the mask hardly marks (see the README).
MASK_KEEP = 0.1
MASK_ON = 0.5
MASK_SURE = 0.8
MASK_MIN_AREA = 0.0015
MASK_STEP = 4
# A gap under a box is the boxed pack's body when its commonest colour is within this Lab
# distance of the box's, and twice as far from the fixture back's (set once on seed 9465).
BODY_COLOUR = 20.0


def uncovered(gaps: list[Gap], boxes: np.ndarray) -> list[Gap]:
    return [g for g in gaps if covered(g.bbox, boxes) < 0.3]


def void_gaps(
    voids: np.ndarray,
    scores: np.ndarray,
    shelf: np.ndarray,
    products: Products,
    zones: list[Zone],
) -> list[Gap]:
    """Gaps where the detector saw empty shelf space, on the shelf that holds each; voids
    that overlap on one shelf are one gap (a void of several missing facings draws
    several centres; voids apart stay apart). Like edges in Canny's detector, a gap needs one
    sure void (``GAP_THRESHOLD``) or weak ones that add up (``GAP_TOGETHER``): a wide empty
    stretch draws several weak centres rather than one strong one. A gap with a sure void
    is the box of its sure voids (weak ones beside it only link them: their boxes stray over
    short products). A gap that detected products fill for the most part is dropped."""
    from shelfwatch.vision.detector.infer import GAP_THRESHOLD, GAP_TOGETHER

    groups: list[tuple[int, list[int]]] = []  # (shelf, its voids), left to right
    reach = -np.inf
    for i in np.lexsort((voids[:, 0], shelf)) if len(voids) else []:
        void = tuple(voids[i])
        if shelf[i] <= 0 or _above(void, products) or _floating(void, int(shelf[i]), zones):
            continue
        if groups and groups[-1][0] == shelf[i] and voids[i, 0] <= reach:
            groups[-1][1].append(int(i))
            reach = max(reach, voids[i, 2])
        else:
            groups.append((int(shelf[i]), [int(i)]))
            reach = voids[i, 2]
    gaps = []
    for number, members in groups:
        sure = [i for i in members if scores[i] >= GAP_THRESHOLD]
        if not sure and scores[members].sum() < GAP_TOGETHER:
            continue
        box = voids[sure or members]
        x1, y1 = box[:, :2].min(axis=0)
        x2, y2 = box[:, 2:].max(axis=0)
        gap = Gap(number, (int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))))
        if covered(gap.bbox, products.xyxy) < 0.5:
            gaps.append(gap)
    return gaps


def _above(void: tuple[float, float, float, float], products: Products) -> bool:
    """Whether ``void`` is the space above short products rather than an empty facing:
    products stand in most of its bottom quarter. Such a void neither is a gap nor joins
    one (it would stretch the gap over the products)."""
    x1, y1, x2, y2 = void
    return covered((x1, y2 - (y2 - y1) / 4, x2, y2), products.xyxy) >= 0.5


def _floating(void: tuple[float, float, float, float], shelf: int, zones: list[Zone]) -> bool:
    """Whether ``void`` ends in the upper half of its shelf level: an empty facing reaches
    down to the shelf, while the space between bottle necks or over short packs does not."""
    level = level_rows(shelf, (void[0] + void[2]) / 2, zones)
    return level is not None and void[3] < (level[0] + level[1]) / 2


def _reaches_shelf(box: tuple[int, int, int, int], shelf: int, zones: list[Zone]) -> bool:
    """Whether ``box`` reaches down into the lowest quarter of its shelf level."""
    level = level_rows(shelf, (box[0] + box[2]) / 2, zones)
    return level is not None and box[3] >= level[1] - (level[1] - level[0]) / 4


def _over_products(
    box: tuple[int, int, int, int], shelf: int, zones: list[Zone], products: Products
) -> bool:
    """Whether ``box`` ends above products: between its bottom and its shelf's edge, over
    at least a quarter of its height, products stand in most of its columns (the dark space
    above a row of short packs, not an empty facing)."""
    level = level_rows(shelf, (box[0] + box[2]) / 2, zones)
    if level is None:
        return False
    x1, y1, x2, y2 = box
    below = (x1, y2, x2, level[1])
    return below[3] - y2 >= (y2 - y1) / 4 and covered(below, products.xyxy) >= 0.5


def _beside(boxes: np.ndarray, y1: int, y2: int) -> np.ndarray:
    """Per product box, whether it stands beside a gap spanning rows ``y1``..``y2`` (in the
    gap's lower half), not above or below it."""
    low = y2 - (y2 - y1) // 2
    return (np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], low)) > 0.3 * (y2 - low)


def within_level(
    box: tuple[int, int, int, int], shelf: int, zones: list[Zone]
) -> tuple[int, int, int, int]:
    """``box`` cut to its shelf level: from the edge of the shelf above down to its own
    shelf's edge (a void box may reach over both)."""
    x1, y1, x2, y2 = box
    found = shelf_above(shelf, (x1 + x2) / 2, zones)
    if found is None:
        return box
    zone, above = found
    top = y1 if above is None else max(y1, above)
    bottom = min(y2, zone.edge.y_bottom)
    return (x1, top, x2, bottom) if bottom - top >= (y2 - y1) / 4 else box


def fit_gaps(gaps: list[Gap], products: Products, zones: list[Zone], fixture: Fixture) -> list[Gap]:
    """Each gap cut to its shelf level, then carried along its shelf over what looks like
    its inside, up to the nearest detected products either side (or the shelf's end)."""
    out = []
    ends = shelf_ends(zones)
    whole = (0, int(fixture.lab.shape[1] / fixture.scale))  # a gap off every shelf's zones
    for g in gaps:
        x1, y1, x2, y2 = within_level(g.bbox, g.shelf, zones)
        left, right = ends.get(g.shelf, whole)
        boxes = products.xyxy[products.shelf == g.shelf]
        for bx1, _, bx2, _ in boxes[_beside(boxes, y1, y2)]:
            if bx1 + bx2 < x1 + x2:
                left = max(left, int(bx2))
            else:
                right = min(right, int(bx1))
        out.append(Gap(g.shelf, fixture.widen_gap((x1, y1, x2, y2), left, right)))
    return join_gaps(out)  # two voids of one stretch may now reach each other


def without_pack_bodies(
    gaps: list[Gap], products: Products, fixture: Fixture, back: np.ndarray | None
) -> list[Gap]:
    """The gaps that are no pack's body. A box that starts above a gap and ends in its
    upper three quarters, where the gap below the box has the box's commonest colour (or
    its lowest fifth's, where a label band is most of the box) and not the fixture back's,
    is a tall pack the detector boxed at its print: the void under it is the rest of that
    pack (varied renders, seed 9465: 13 of its 19 false gaps). A gap such boxes lie over for
    at least half its columns is dropped, each box over at least half the gap or half itself
    (a row of such packs reads as one long gap under them: seed 7476)."""
    return [
        g
        for g in gaps
        if not _under_bodies(g, products.xyxy[products.shelf == g.shelf], fixture, back)
    ]


def _under_bodies(gap: Gap, boxes: np.ndarray, fixture: Fixture, back: np.ndarray | None) -> bool:
    """Whether packs boxed at their print lie over at least half of ``gap``'s columns."""
    x1, _, x2, _ = gap.bbox
    covered = np.zeros(max(0, x2 - x1), dtype=bool)
    for box in boxes:
        span = _body_of(gap, box, fixture, back)
        if span is not None:
            covered[span[0] - x1 : span[1] - x1] = True
    return bool(covered.size) and covered.mean() >= 0.5


def _body_of(
    gap: Gap, box: np.ndarray, fixture: Fixture, back: np.ndarray | None
) -> tuple[int, int] | None:
    """The columns of ``gap`` that are the lower part of the pack boxed by ``box`` (see
    above), or None."""
    x1, y1, x2, y2 = gap.bbox
    bx1, by1, bx2, by2 = (int(v) for v in box)
    a, b, h = max(bx1, x1), min(bx2, x2), y2 - y1
    if b - a < min(x2 - x1, bx2 - bx1) / 2 or by1 >= y1 or not y1 - h / 4 <= by2 <= y2 - h / 4:
        return None
    below = fixture.colour((a, max(by2, y1), b, int(y2 - h / 10)))  # above the shelf edge
    if below is None:
        return None
    to_back = np.inf if back is None else float(np.linalg.norm(below - back))
    # The box's commonest colour, or its foot's where a label band is the commonest.
    for part in ((a, by1, b, by2), (a, by2 - (by2 - by1) // 5, b, by2)):
        pack = fixture.colour(part)
        to_pack = np.inf if pack is None else float(np.linalg.norm(below - pack))
        if to_pack < BODY_COLOUR and to_back > 2 * to_pack:
            return (a, b)
    return None


def bare_stretches(
    products: Products,
    zones: list[Zone],
    fixture: Fixture,
    back: np.ndarray | None,
    gaps: list[Gap],
    voids: np.ndarray,
) -> list[Gap]:
    """Stretches of a shelf between two of its products (or its end and its outer
    product), at least three quarters of a facing wide (the shelf's median product width,
    which loose boxes inflate), that no gap covers yet, where the void head saw
    something (a void centre under the gap threshold) and whose columns show the fixture
    back: an empty stretch the void head was unsure of (it knows dark slots one facing wide
    best). Plain renders of seed 503: gap recall 0.87 -> 0.95, with the shelves' ends and
    the three quarters 0.97 (seed 9001: 0.90 -> 1.00), precision 1.0; on real-gaps it adds
    almost nothing (real backs are seldom bare and plain)."""
    if back is None or not len(voids):
        return []
    centres = (voids[:, :2] + voids[:, 2:]) / 2
    ends = shelf_ends(zones)
    out = []
    for number in np.unique(products.shelf[products.shelf > 0]):
        boxes = products.xyxy[products.shelf == number]
        boxes = boxes[np.argsort(boxes[:, 0])]
        width = float(np.median(boxes[:, 2] - boxes[:, 0]))
        own = ends.get(int(number))
        # Between products, and from the shelf's ends to its outer products.
        stretches = [(own[0], int(boxes[0, 0]))] if own else []
        reach = int(boxes[0, 2])  # the right end of the products so far
        for x1, _, x2, _ in boxes[1:]:
            stretches.append((reach, int(x1)))
            reach = max(reach, int(x2))
        stretches += [(reach, own[1])] if own else []
        for left, right in stretches:
            if right - left < BARE_MIN_WIDTH * width or _gap_over(gaps, int(number), left, right):
                continue
            level = level_rows(int(number), (left + right) / 2, zones)
            if level is not None:
                stretch = (left, level[0], right, level[1])
                if points_in_box(centres, stretch).any() and fixture.bare(stretch, back):
                    out.append(Gap(int(number), stretch))
    return out


def masked_gaps(
    gaps: list[Gap], mask: np.ndarray, products: Products, zones: list[Zone]
) -> list[Gap]:
    """The gaps judged by the void-mask net's area: those it hardly marks, or that end on
    top of products, are dropped, and the areas it marks surely that no gap covers yet, and
    no product stands in, are added."""
    kept = [
        g
        for g in gaps
        if _mean_in(mask, g.bbox) >= MASK_KEEP
        and not _over_products(g.bbox, g.shelf, zones, products)
    ]
    # Areas on every MASK_STEP-th pixel: the map is the net's cells scaled up (as fine).
    small = np.ascontiguousarray(mask[::MASK_STEP, ::MASK_STEP])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (small >= MASK_ON).astype(np.uint8), connectivity=4
    )
    means = np.bincount(labels.ravel(), small.ravel(), count) / np.maximum(stats[:, 4], 1)
    h, w = mask.shape
    sure = [
        (
            int(x) * MASK_STEP,
            int(y) * MASK_STEP,
            min(w, int(x + bw) * MASK_STEP),
            min(h, int(y + bh) * MASK_STEP),
        )
        for (x, y, bw, bh, area), mean in zip(stats[1:], means[1:], strict=True)
        if area >= MASK_MIN_AREA * small.size and mean >= MASK_SURE
    ]
    reported = np.array([g.bbox for g in kept], float).reshape(-1, 4)
    added = []
    # An empty facing reaches down to its shelf; the space above short products does not.
    for box, shelf in zip(sure, shelf_of(np.array(sure, float).reshape(-1, 4), zones), strict=True):
        if covered(box, reported) >= 0.3 or covered(box, products.xyxy) >= 0.5:
            continue
        if _reaches_shelf(box, int(shelf), zones) and not _above(box, products):
            free = _free_columns(within_level(box, int(shelf), zones), int(shelf), products)
            if free is not None:
                added.append(Gap(int(shelf), free))
    return join_gaps(kept + added)


def _free_columns(
    box: tuple[int, int, int, int], shelf: int, products: Products
) -> tuple[int, int, int, int] | None:
    """``box`` cut to its widest run of columns that no product beside it (standing in its
    lower half) covers: the mask spreads over dark packs next to an empty facing. ``None``
    when that run is narrower than half a facing (the shelf's median product width)."""
    x1, y1, x2, y2 = box
    boxes = products.xyxy[products.shelf == shelf]
    free = np.ones(max(0, x2 - x1) + 2, bool)
    free[[0, -1]] = False  # sentinels: every run starts and ends inside
    for bx1, _, bx2, _ in boxes[_beside(boxes, y1, y2)]:
        free[1 + max(0, bx1 - x1) : 1 + max(0, bx2 - x1)] = False
    edges = np.flatnonzero(np.diff(free.astype(np.int8)))
    if not len(edges):
        return None
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    width = np.median(boxes[:, 2] - boxes[:, 0]) if len(boxes) else 0
    if ends[k] - starts[k] < width / 2:
        return None
    return (x1 + int(starts[k]), y1, x1 + int(ends[k]), y2)


def _mean_in(m: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = box
    part = m[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    return float(part.mean()) if part.size else 0.0


def _gap_over(gaps: list[Gap], shelf: int, x1: int, x2: int) -> bool:
    """Whether a gap on ``shelf`` covers a third of the columns ``x1``..``x2``."""
    return any(
        g.shelf == shelf and min(g.bbox[2], x2) - max(g.bbox[0], x1) > (x2 - x1) / 3 for g in gaps
    )
