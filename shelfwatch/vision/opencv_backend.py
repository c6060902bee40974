"""The no-weights default backend: classical OpenCV shelf, facing and gap finding."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.vision.detector import infer
from shelfwatch.vision.evaluation import interval_iou, points_in_box
from shelfwatch.vision.facings import Fixture, find_facings, fixture_back_lab
from shelfwatch.vision.frame import reading_side
from shelfwatch.vision.layout import join_gaps, keep_shelves, stocked
from shelfwatch.vision.quality import photo_quality
from shelfwatch.vision.rows import covered, row_facings
from shelfwatch.vision.shelves import (
    LEARNED_LINE,
    ShelfEdge,
    estimate_tilt,
    find_bays,
    find_shelf_edges,
    merge_rows,
    product_rows,
)

log = logging.getLogger(__name__)

WORK_PIXELS = 1.3e6  # detection runs at about this many pixels, whatever the photo's size
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
# A row of at least this many products below a bay's lowest edge stands on a shelf of its own.
OPEN_LEVEL_ROW = 3


class StageClock(dict[str, float]):
    """Milliseconds spent in each named stage of one photo (``bench accuracy`` prints them)."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + 1000 * (time.perf_counter() - start)


class OpenCVSegmenter:
    """Shelf edges from long horizontal lines; facings from the learned detector when its
    weights are there (shipped in the package, or ``detector``), else from occupancy and
    vertical edges."""

    name = "opencv"

    def __init__(self, detector: Path | None = None, ensemble: bool | None = None) -> None:
        self.detector = detector if detector is not None else _shipped_detector()
        asked = True  # said here or in the environment / .env, not left at the default
        if ensemble is None:
            from shelfwatch.settings import get_settings

            settings = get_settings()
            ensemble = settings.detector_ensemble
            asked = "detector_ensemble" in settings.model_fields_set
        # The second detector, averaged with the first, where it is beside it (weights trained
        # without --second-detector run alone: said only where the ensemble was asked for).
        second = self.detector.with_name(infer.SECOND) if self.detector is not None else None
        self.second = second if ensemble and second is not None and second.is_file() else None
        if asked and ensemble and second is not None and self.second is None:
            log.warning(
                "%s not found: the detector runs alone (train with --second-detector)", second
            )
        self.last_timings = StageClock()  # the stages of the latest photo, in ms

    @cached_property
    def model_version(self) -> str:
        """Package version and the content hash of the detector's weights and of the
        second detector's (where used) and the one-map nets' beside them (a fine-tuned model
        differs)."""
        import hashlib

        import shelfwatch

        if self.detector is None:
            return f"shelfwatch {shelfwatch.__version__} classical"
        digest = hashlib.sha256(self.detector.read_bytes())
        if self.second is not None:
            digest.update(self.second.read_bytes())
        for name in (infer.EDGES, infer.VOID_MASK, infer.UPRIGHTS):
            net = self.detector.with_name(name)
            if net.is_file():
                digest.update(net.read_bytes())
        return f"shelfwatch {shelfwatch.__version__} facings {digest.hexdigest()[:12]}"

    def segment(self, image: np.ndarray) -> ShelfScene:
        self.last_timings = StageClock()
        return _segment(image, True, self.detector, self.last_timings, self.second)


def _shipped_detector() -> Path | None:
    from shelfwatch.vision.detector.infer import SHIPPED

    return SHIPPED if SHIPPED.is_file() else None


def detect_shelves(image: np.ndarray) -> list[Shelf]:
    """Shelf rows only (deskewed, mapped back to the photo): model backends use these."""
    return _segment(image, with_products=False).shelves


def _segment(
    image: np.ndarray,
    with_products: bool,
    detector: Path | None = None,
    clock: StageClock | None = None,
    second: Path | None = None,
) -> ShelfScene:
    clock = clock if clock is not None else StageClock()
    with clock.stage("prepare"):
        work, gray, forward, tilt = _upright(image)
    scene, masking = _segment_upright(work, gray, with_products, detector, clock, second)
    with clock.stage("map back"):
        height, width = image.shape[:2]
        back_to_photo = np.linalg.inv(forward)
        scene = _transform_scene(scene, back_to_photo, width, height, gray.shape[1])
    if masking is not None:
        with clock.stage("masks"):  # in the photo's frame: no mask is warped back one by one
            fixture, back = masking
            masks = fixture.product_masks(scene.products.xyxy, back, back_to_photo, (width, height))
            scene.products = replace(scene.products, masks=masks)
    with clock.stage("quality"):
        scene.quality = photo_quality(gray, tilt)
        # At half size: as sure (40 of 40 real-shelves photos turned 90 deg flagged, 37 at
        # full size; none upright) and a third of the time.
        sideways = _looks_sideways(
            cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        )
    scene.backend = OpenCVSegmenter.name
    if sideways:
        scene.quality["rotated_90"] = True
        scene.quality["low_confidence"] = True
        scene.warnings.append("shelf edges run vertically: the photo seems rotated by 90 deg")
    if not scene.shelves:
        scene.warnings.append("no shelf edges found")
        scene.quality["low_confidence"] = True
    return scene


def _upright(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The working frame: the photo scaled to about WORK_PIXELS and its tilt undone; its gray
    version, the photo -> frame transform, and the tilt (degrees)."""
    height, width = image.shape[:2]
    # A panorama: WORK_PIXELS for each of its photo-sized parts (``frame``).
    area = min(height, width) * reading_side(height, width)
    scale = min(1.0, math.sqrt(WORK_PIXELS / area))
    # Area averaging even for a mild shrink: linear interpolation is faster but cost 0.02
    # of one-to-one shelf recall on real-shelves (thin shelf-edge lines alias).
    work = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else image
    )
    gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
    wh, ww = gray.shape
    # Photo -> working frame: scale, then undo the tilt. Shelves seen at an angle are not
    # rectified: a vanishing point from the photo's long lines is as often the floor's or the
    # ceiling's, and a wrong one squeezed whole fixtures (real-shelves recall 0.90 -> 0.81);
    # converging shelves are followed bay by bay instead.
    forward = np.diag([scale, scale, 1.0])
    tilt = estimate_tilt(gray)
    rot = cv2.getRotationMatrix2D((ww / 2, wh / 2), tilt, 1.0)
    if abs(tilt) > 0.3:
        work = cv2.warpAffine(
            work, rot, (ww, wh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
        forward = np.vstack([rot, [0, 0, 1]]) @ forward
    return work, gray, forward, tilt


def _looks_sideways(gray: np.ndarray) -> bool:
    """True when long shelf-edge lines run up and down rather than across.

    Edges across the whole photo both ways (bays and product rows find shelves in any
    orientation, so their counts are no yardstick)."""
    vertical = [e for e in find_shelf_edges(np.ascontiguousarray(gray.T)) if e.strength >= 0.8]
    if len(vertical) < 2:
        return False  # most photos: no need to find the edges across
    return len(vertical) > len(find_shelf_edges(gray))


def _segment_upright(
    work: np.ndarray,
    gray: np.ndarray,
    with_products: bool,
    detector: Path | None,
    clock: StageClock,
    second: Path | None = None,
) -> tuple[ShelfScene, tuple[Fixture, np.ndarray | None] | None]:
    """Shelves, products and gaps of an upright photo, in named stages, each run once:
    detector (product and void boxes, the shelf-edge net's map) -> shelves (bays and edges
    on the map's lines; without the net on long horizontal lines and product rows) -> products on
    shelves -> gaps; and what the masks are made from (the photo's colour and texture and
    the fixture back's colour), for the masks stage in the photo's own frame. Without
    detector weights, the classical facing finder (occupancy and vertical edges) stands in
    for the detector and makes its own masks."""
    h, w = gray.shape
    found = None
    if with_products and detector is not None:
        with clock.stage("detector"):
            found = infer.detect(work, detector, second=second)
    with clock.stage("shelves"):
        zones = shelf_zones(
            gray,
            found.boxes if found is not None else None,
            _edge_lines(found.shelf_edges) if found is not None else None,
            found.uprights if found is not None else None,
        )
        shelves = _shelves(zones)
    if not with_products:
        return ShelfScene(width=w, height=h, shelves=shelves), None
    bands = [(z.edge.x1, z.top, z.edge.x2, z.bottom) for z in zones]
    if found is None:
        with clock.stage("classical facings"):
            back = fixture_back_lab(work, bands)
            products, gaps = _classical_facings(work, zones, back)
        scene = ShelfScene(width=w, height=h, shelves=shelves, products=products, gaps=gaps)
        return scene, None
    with clock.stage("masks"):
        fixture = Fixture.of(work)
        back = fixture.back_lab(bands)
    with clock.stage("products"):
        products = _products(*_with_row_facings(found, zones, shelves, w))
    with clock.stage("gaps"):
        if found.voids is not None:
            gaps = _void_gaps(
                found.voids, found.void_scores, _shelf_of(found.voids, zones), products, zones
            )
            gaps = _fit_gaps(gaps, products, zones, fixture)
            if found.void_mask is not None:
                gaps = _masked_gaps(gaps, found.void_mask, products, zones)
            bare = _bare_stretches(products, zones, fixture, back, gaps, found.voids)
            gaps = join_gaps(gaps + bare)
        else:  # weights without a void head: empty columns no detected product covers
            classical = _classical_facings(work, zones, fixture_back_lab(work, bands))
            gaps = _uncovered(classical[1], found.boxes)
    shelves = [_to_product_tops(s, products) for s in shelves]
    # Levels holding nothing are no shelves (``stocked``); where nothing was found on any
    # shelf, the shelves stay and the photo is judged on them.
    keep = stocked(shelves, products, gaps)
    if keep:
        shelves, products, gaps = keep_shelves(shelves, products, gaps, keep)
    scene = ShelfScene(width=w, height=h, shelves=shelves, products=products, gaps=gaps)
    return scene, (fixture, back)


@dataclass(frozen=True)
class Zone:
    """A piece of one shelf level: the band from ``top`` down to ``bottom`` (its shelf edge's
    top) over the edge's columns, in one slice of the photo whose shelves sit at one height.
    Pieces of one physical shelf in neighbouring slices share ``shelf``."""

    top: int
    bottom: int
    edge: ShelfEdge
    bay: int
    shelf: int


def _edge_lines(scores: np.ndarray | None) -> np.ndarray | None:
    """The shelf-edge net's map as lines (0/1), where its weights are there."""
    return None if scores is None else (scores >= LEARNED_LINE).astype(np.uint8)


def shelf_zones(
    gray: np.ndarray,
    boxes: np.ndarray | None = None,
    lines: np.ndarray | None = None,
    upright_map: np.ndarray | None = None,
) -> list[Zone]:
    """Shelf zones bay by bay, each shelf level once per bay.

    Slices whose shelves sit at their own heights are found first (``find_bays``), on the
    shelf-edge net's ``lines`` where its weights are there; without them each slice's
    edge zones are corrected by the rows of detected products (``boxes``).
    Neighbouring slices whose levels continue one another (an aisle shot's converging
    shelves, a bay cut where a level is hidden) are one bay: a level's pieces across them
    are one shelf, so a shelf is counted once per bay."""
    h = gray.shape[0]
    slices: list[list[tuple[int, int, ShelfEdge]]] = []
    at_upright: list[bool] = []
    # Product rows correct classical edges only: on learned lines their corrections made more
    # wrong shelves than they fixed (first 20 photos of real-shelves: precision 0.85 without
    # them, 0.77 with).
    by_rows = boxes is not None and lines is None
    centres = (boxes[:, 0] + boxes[:, 2]) / 2 if by_rows else None
    for bay in find_bays(gray, lines=lines, upright_map=upright_map):
        bay_zones = _edge_zones(bay.edges, h)
        if by_rows:
            inside = (centres >= bay.x1) & (centres < bay.x2)
            bay_zones = merge_rows(bay_zones, product_rows(boxes[inside]), boxes[inside])
        if boxes is not None:
            bay_zones += _open_level(bay_zones, boxes, h)
        slices.append(bay_zones)
        at_upright.append(bay.after_upright)
    zones: list[Zone] = []
    bay = 0
    chain: list[int] = []  # shelf number of each zone of the previous slice
    for i, pieces in enumerate(slices):
        links = _continuing(slices[i - 1], pieces) if i and not at_upright[i] else {}
        joined = i > 0 and len(links) >= max(1, 0.75 * max(len(slices[i - 1]), len(pieces)))
        bay += 0 if joined else 1
        next_shelf = max((z.shelf for z in zones), default=0) + 1
        current = []
        for k, (a, b, e) in enumerate(pieces):
            if joined and k in links:
                number = chain[links[k]]
            else:
                number, next_shelf = next_shelf, next_shelf + 1
            current.append(number)
            zones.append(Zone(a, b, e, bay, number))
        chain = current
    return _number_top_down(zones)


def _continuing(
    left: list[tuple[int, int, ShelfEdge]], right: list[tuple[int, int, ShelfEdge]]
) -> dict[int, int]:
    """Zones of ``right`` that continue a zone of ``left`` (bands overlapping with IoU >=
    0.5, matched one to one): {right index: left index}."""
    from scipy.optimize import linear_sum_assignment

    if not left or not right:
        return {}
    iou = np.array(
        [[interval_iou((a, e.y_bottom), (c, f.y_bottom)) for c, _, f in left] for a, _, e in right]
    )
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= 0.5}


def _number_top_down(zones: list[Zone]) -> list[Zone]:
    """Shelves numbered from 1 bay by bay, left to right, and top down within a bay."""
    level = {}
    for z in zones:
        level.setdefault((z.bay, z.shelf), []).append(z.edge.y_top)
    order = sorted(level, key=lambda k: (k[0], float(np.mean(level[k]))))
    number = {k: i for i, k in enumerate(order, 1)}
    return [replace(z, shelf=number[(z.bay, z.shelf)]) for z in zones]


def _shelves(zones: list[Zone]) -> list[Shelf]:
    """One Shelf per shelf level of a bay: its pieces' band and columns; its edge from the
    leftmost piece's edge to the rightmost one's (sloped where the shelf is seen at an
    angle)."""
    shelves = []
    for number in sorted({z.shelf for z in zones}):
        pieces = sorted((z for z in zones if z.shelf == number), key=lambda z: z.edge.x1)
        first, last = pieces[0].edge, pieces[-1].edge
        shelves.append(
            Shelf(
                number,
                min(z.top for z in pieces),
                max(z.edge.y_bottom for z in pieces) + 1,
                first.x1,
                last.x2,
                int(np.median([z.edge.y_top for z in pieces])),
                (first.x1, first.y_top, last.x2, last.y_top) if len(pieces) > 1 else None,
                pieces[0].bay,
            )
        )
    return shelves


def _classical_facings(
    work: np.ndarray, zones: list[Zone], back: np.ndarray | None
) -> tuple[Products, list[Gap]]:
    """The fallback without detector weights: facings and gaps from column occupancy."""
    parts: list[Products] = []
    gaps: list[Gap] = []
    for zone in zones:
        index, edge = zone.shelf, zone.edge
        found = find_facings(work, edge.x1, edge.x2, zone.top, zone.bottom, back)
        if found.boxes:
            parts.append(
                Products(
                    xyxy=np.array(found.boxes),
                    scores=np.array(found.scores),
                    masks=found.masks,
                    shelf=np.full(len(found.boxes), index),
                )
            )
        gaps.extend(Gap(shelf=index, bbox=g) for g in found.gaps)
    return Products.concat(parts), gaps


def _to_product_tops(shelf: Shelf, products: Products) -> Shelf:
    """The shelf's band starts at its products' tops (the tallest tenth aside), not at the
    shelf above: the space over the products is not the shelf's."""
    tops = products.xyxy[products.shelf == shelf.index, 1] if len(products) else []
    if len(tops) < 3:
        return shelf
    top = int(np.percentile(tops, 10))
    return replace(shelf, y1=min(max(shelf.y1, top), shelf.y2 - 1))


def _edge_zones(edges: list[ShelfEdge], h: int) -> list[tuple[int, int, ShelfEdge]]:
    """(top, bottom, edge) per shelf: from the edge above (or the photo's top) to this edge."""
    zones = []
    prev_bottom = 0
    for edge in edges:
        zones.append((prev_bottom, edge.y_top, edge))
        prev_bottom = edge.y_bottom + 1
    # A zone much lower than its neighbours lies above the fixture's top, not on a shelf.
    # (Against the typical zone: one tall zone, such as pegboard hooks, is no yardstick.)
    median_level = float(np.median([b - a for a, b, _ in zones])) if zones else 0.0
    zones = [z for z in zones if z[1] - z[0] >= max(0.04 * h, 0.4 * median_level)]
    if len(zones) >= 3:
        # Nothing bounds the top shelf from above: it reaches as high as the others are tall,
        # not into the ceiling or the next fixture behind.
        typical = float(np.median([b - a for a, b, _ in zones[1:]]))
        top, bottom, edge = zones[0]
        zones[0] = (max(top, int(bottom - 1.1 * typical)), bottom, edge)
    return zones


def _open_level(
    zones: list[tuple[int, int, ShelfEdge]], boxes: np.ndarray, h: int
) -> list[tuple[int, int, ShelfEdge]]:
    """The level below a bay's lowest edge, where a row of products stands on a shelf the
    photo does not show (cut off by the frame, or an edge too faint to find): at least
    OPEN_LEVEL_ROW detected products in the edge's columns whose tops lie below it. Its edge
    is the row's base, out of view. Without it those products joined the shelf above and its
    gaps were lost (real-gaps' photos are crops: their bottom row often has no edge in view).
    The one product-row correction kept on the shelf-edge net's lines (``merge_rows``, the
    general one, made more wrong shelves there than it fixed: see the README)."""
    if not zones:
        return []
    edge = zones[-1][2]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    row = boxes[(cx >= edge.x1) & (cx <= edge.x2) & (boxes[:, 1] >= edge.y_bottom)]
    if len(row) < OPEN_LEVEL_ROW:
        return []
    base = min(h - 1, int(np.percentile(row[:, 3], 90)))
    unseen = ShelfEdge(base, base, edge.x1, edge.x2, strength=0.0, in_view=False)
    return [(edge.y_bottom + 1, base, unseen)]


def _shelf_of(boxes: np.ndarray, zones: list[Zone]) -> np.ndarray:
    """Per box, the shelf (1-based) whose zone, from the products' tops down to its edge
    strip, holds its centre, else the nearest one; 0 without shelves."""
    shelf = np.zeros(len(boxes), int)
    if not zones or not len(boxes):
        return shelf
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    top = np.array([z.top for z in zones], float)
    bottom = np.array([z.edge.y_bottom for z in zones], float)
    x1 = np.array([z.edge.x1 for z in zones], float)
    x2 = np.array([z.edge.x2 for z in zones], float)
    dist = np.maximum(np.maximum(top[None] - cy[:, None], cy[:, None] - bottom[None]), 0)
    dist += np.maximum(np.maximum(x1[None] - cx[:, None], cx[:, None] - x2[None]), 0)
    return np.array([z.shelf for z in zones])[np.argmin(dist, axis=1)]


def _with_row_facings(
    found: infer.Detected, zones: list[Zone], shelves: list[Shelf], width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's sure boxes and the weak ones standing in a row of them on their shelf
    edge (``rows``), with their scores and shelves. Held-out per-shelf counts of
    real-shelves 19.9 -> 18.7 % (tuned half 12.2 -> 9.8), racks C3-C4 precision 0.961 ->
    0.957 (see the README)."""
    shelf = _shelf_of(found.boxes, zones)
    if not len(found.weak):
        return found.boxes, found.scores, shelf
    weak_shelf = _shelf_of(found.weak, zones)
    take = row_facings(
        found.boxes,
        shelf,
        found.weak,
        found.weak_scores,
        weak_shelf,
        found.voids,
        found.void_scores,
        {s.index: (s.x1, s.x2) for s in shelves},
        width,
    )
    # Weak boxes are taken for standing on their shelf's edge: not where it is out of view
    # (on racks they were the sides of packs in a row cut off by the frame).
    take &= ~np.isin(weak_shelf, [z.shelf for z in zones if not z.edge.in_view])
    return (
        np.concatenate([found.boxes, found.weak[take]]),
        np.concatenate([found.scores, found.weak_scores[take]]),
        np.concatenate([shelf, weak_shelf[take]]),
    )


def _products(boxes: np.ndarray, scores: np.ndarray, shelf: np.ndarray) -> Products:
    """Detected products in shelf order, left to right (their masks come later, in the
    photo's frame)."""
    order = np.lexsort(((boxes[:, 0] + boxes[:, 2]) / 2, shelf)) if len(boxes) else []
    xyxy = np.round(boxes[order]).astype(int).reshape(-1, 4)
    return Products(xyxy=xyxy, scores=scores[order], shelf=shelf[order])


def _uncovered(gaps: list[Gap], boxes: np.ndarray) -> list[Gap]:
    return [g for g in gaps if covered(g.bbox, boxes) < 0.3]


def _void_gaps(
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


def _shelf_above(shelf: int, x: float, zones: list[Zone]) -> tuple[Zone, int | None] | None:
    """At column ``x``: the zone of shelf ``shelf`` and the bottom row of the shelf edge
    above it (``None`` for the top shelf); ``None`` off the shelf's zones."""
    own = [z for z in zones if z.shelf == shelf and z.edge.x1 <= x <= z.edge.x2]
    if not own:
        return None
    above = [
        z.edge.y_bottom
        for z in zones
        if z.edge.x1 <= x <= z.edge.x2 and z.edge.y_bottom < own[0].edge.y_top
    ]
    return own[0], max(above, default=None)


def _level(shelf: int, x: float, zones: list[Zone]) -> tuple[int, int] | None:
    """At column ``x``: the rows of shelf ``shelf``'s level, from the edge of the shelf above
    (or its products' tops) down to its own edge's top; ``None`` off the shelf's zones."""
    found = _shelf_above(shelf, x, zones)
    if found is None:
        return None
    zone, above = found
    return (zone.top if above is None else above), zone.edge.y_top


def _floating(void: tuple[float, float, float, float], shelf: int, zones: list[Zone]) -> bool:
    """Whether ``void`` ends in the upper half of its shelf level: an empty facing reaches
    down to the shelf, while the space between bottle necks or over short packs does not."""
    level = _level(shelf, (void[0] + void[2]) / 2, zones)
    return level is not None and void[3] < (level[0] + level[1]) / 2


def _reaches_shelf(box: tuple[int, int, int, int], shelf: int, zones: list[Zone]) -> bool:
    """Whether ``box`` reaches down into the lowest quarter of its shelf level."""
    level = _level(shelf, (box[0] + box[2]) / 2, zones)
    return level is not None and box[3] >= level[1] - (level[1] - level[0]) / 4


def _over_products(
    box: tuple[int, int, int, int], shelf: int, zones: list[Zone], products: Products
) -> bool:
    """Whether ``box`` ends above products: between its bottom and its shelf's edge, over
    at least a quarter of its height, products stand in most of its columns (the dark space
    above a row of short packs, not an empty facing)."""
    level = _level(shelf, (box[0] + box[2]) / 2, zones)
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


def _within_level(
    box: tuple[int, int, int, int], shelf: int, zones: list[Zone]
) -> tuple[int, int, int, int]:
    """``box`` cut to its shelf level: from the edge of the shelf above down to its own
    shelf's edge (a void box may reach over both)."""
    x1, y1, x2, y2 = box
    found = _shelf_above(shelf, (x1 + x2) / 2, zones)
    if found is None:
        return box
    zone, above = found
    top = y1 if above is None else max(y1, above)
    bottom = min(y2, zone.edge.y_bottom)
    return (x1, top, x2, bottom) if bottom - top >= (y2 - y1) / 4 else box


def _fit_gaps(
    gaps: list[Gap], products: Products, zones: list[Zone], fixture: Fixture
) -> list[Gap]:
    """Each gap cut to its shelf level, then carried along its shelf over what looks like
    its inside, up to the nearest detected products either side (or the shelf's end)."""
    out = []
    for g in gaps:
        x1, y1, x2, y2 = _within_level(g.bbox, g.shelf, zones)
        ends = [(z.edge.x1, z.edge.x2) for z in zones if z.shelf == g.shelf]
        left = min((a for a, _ in ends), default=0)
        right = max((b for _, b in ends), default=int(fixture.lab.shape[1] / fixture.scale))
        boxes = products.xyxy[products.shelf == g.shelf]
        for bx1, _, bx2, _ in boxes[_beside(boxes, y1, y2)]:
            if bx1 + bx2 < x1 + x2:
                left = max(left, int(bx2))
            else:
                right = min(right, int(bx1))
        out.append(Gap(g.shelf, fixture.widen_gap((x1, y1, x2, y2), left, right)))
    return join_gaps(out)  # two voids of one stretch may now reach each other


def _bare_stretches(
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
    out = []
    for number in np.unique(products.shelf[products.shelf > 0]):
        boxes = products.xyxy[products.shelf == number]
        boxes = boxes[np.argsort(boxes[:, 0])]
        width = float(np.median(boxes[:, 2] - boxes[:, 0]))
        own = [z.edge for z in zones if z.shelf == number]
        # Between products, and from the shelf's ends to its outer products.
        stretches = [(min(e.x1 for e in own), int(boxes[0, 0]))] if own else []
        reach = int(boxes[0, 2])  # the right end of the products so far
        for x1, _, x2, _ in boxes[1:]:
            stretches.append((reach, int(x1)))
            reach = max(reach, int(x2))
        stretches += [(reach, max(e.x2 for e in own))] if own else []
        for left, right in stretches:
            if right - left < BARE_MIN_WIDTH * width or _gap_over(gaps, int(number), left, right):
                continue
            level = _level(int(number), (left + right) / 2, zones)
            if level is not None:
                stretch = (left, level[0], right, level[1])
                if points_in_box(centres, stretch).any() and fixture.bare(stretch, back):
                    out.append(Gap(int(number), stretch))
    return out


def _masked_gaps(
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
    for box, shelf in zip(
        sure, _shelf_of(np.array(sure, float).reshape(-1, 4), zones), strict=True
    ):
        if covered(box, reported) >= 0.3 or covered(box, products.xyxy) >= 0.5:
            continue
        if _reaches_shelf(box, int(shelf), zones) and not _above(box, products):
            free = _free_columns(_within_level(box, int(shelf), zones), int(shelf), products)
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


def _project(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 (affine or projective) transform to (N, 2) points."""
    pts = np.c_[points, np.ones(len(points))] @ m.T
    return pts[:, :2] / pts[:, 2:]


def _map_boxes(m: np.ndarray, boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    """(N, 4) boxes through ``m``: each the int box around its four mapped corners, clipped
    to the w x h photo (all boxes at once: a photo holds hundreds)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1).reshape(-1, 2)
    pts = _project(m, corners).reshape(-1, 4, 2)
    lo, hi = pts.min(axis=1), np.round(pts.max(axis=1))
    out = np.stack([lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]], axis=1)
    return np.clip(out, 0, [w, h, w, h]).astype(int)


def _transform_scene(scene: ShelfScene, m: np.ndarray, w: int, h: int, ww: int) -> ShelfScene:
    """Map boxes and masks from the working frame (rectified, scaled) to the photo."""
    products = scene.products
    boxes = _map_boxes(m, products.xyxy, w, h)
    masks = None
    if products.masks is not None:
        masks = []
        inv = np.linalg.inv(m)
        for (x1, y1, x2, y2), crop, src in zip(boxes, products.masks, products.xyxy, strict=True):
            if x2 <= x1 or y2 <= y1:
                masks.append(np.zeros((max(0, y2 - y1), max(0, x2 - x1)), bool))
                continue
            # Photo pixel -> working frame pixel, relative to the crops' origins.
            shift = (
                np.array([[1, 0, -src[0]], [0, 1, -src[1]], [0, 0, 1]])
                @ inv
                @ np.array([[1, 0, x1], [0, 1, y1], [0, 0, 1]])
            )
            warped = cv2.warpPerspective(
                crop.astype(np.uint8),
                shift,
                (x2 - x1, y2 - y1),
                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            )
            masks.append(warped.astype(bool))
    shelves = []
    for s in scene.shelves:
        cx = (s.x1 + s.x2) / 2 if s.x2 > s.x1 else ww / 2
        ex1, ey1, ex2, ey2 = s.edge or (s.x1, s.edge_y or s.y2, s.x2, s.edge_y or s.y2)
        pts = _project(
            m,
            np.array(
                [
                    [cx, s.y1],
                    [cx, s.y2],
                    [cx, s.edge_y or s.y2],
                    [s.x1, s.y1],
                    [s.x2, s.y1],
                    [ex1, ey1],
                    [ex2, ey2],
                ],
                dtype=np.float64,
            ),
        )
        shelves.append(
            Shelf(
                s.index,
                int(max(0, pts[0, 1])),
                int(min(h, pts[1, 1])),
                int(np.clip(pts[3, 0], 0, w)),
                int(np.clip(pts[4, 0], 0, w)),
                int(pts[2, 1]),
                (int(pts[5, 0]), int(pts[5, 1]), int(pts[6, 0]), int(pts[6, 1])),
                s.bay,
            )
        )
    gap_boxes = _map_boxes(m, np.array([g.bbox for g in scene.gaps]), w, h)
    gaps = [
        Gap(g.shelf, tuple(int(v) for v in b)) for g, b in zip(scene.gaps, gap_boxes, strict=True)
    ]
    return ShelfScene(
        width=w,
        height=h,
        shelves=shelves,
        products=Products(
            xyxy=boxes,
            scores=products.scores,
            masks=masks,
            shelf=products.shelf,
        ),
        gaps=gaps,
    )
