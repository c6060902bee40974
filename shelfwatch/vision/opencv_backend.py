"""The default backend (no downloaded weights): a photo read in named stages, each once:
prepare -> detector -> shelves (``zones``) -> products -> gaps (``gaps``) -> masks -> quality.
Without the detector's weights, the classical facing finder stands in for it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.vision.detector import infer
from shelfwatch.vision.facings import Fixture, find_facings, fixture_back_lab
from shelfwatch.vision.frame import reading_side
from shelfwatch.vision.gaps import (
    bare_stretches,
    fit_gaps,
    masked_gaps,
    uncovered,
    void_gaps,
    without_pack_bodies,
)
from shelfwatch.vision.layout import join_gaps, keep_shelves, stocked
from shelfwatch.vision.quality import photo_quality
from shelfwatch.vision.rows import row_facings
from shelfwatch.vision.shelves import estimate_tilt, find_shelf_edges
from shelfwatch.vision.zones import (
    Zone,
    edge_lines,
    shelf_ends,
    shelf_of,
    shelf_zones,
    shelves_of,
    to_product_tops,
)

log = logging.getLogger(__name__)

WORK_PIXELS = 1.3e6  # detection runs at about this many pixels, whatever the photo's size
Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (N, 4), their scores and shelves


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
            edge_lines(found.shelf_edges) if found is not None else None,
            found.uprights if found is not None else None,
        )
        shelves = shelves_of(zones)
    if not with_products:
        return ShelfScene(width=w, height=h, shelves=shelves), None
    bands = [(z.x1, z.top, z.x2, z.bottom) for z in zones]
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
        taken, unsure = _with_row_facings(found, zones, w)
        products, candidates = _products(*taken), _products(*unsure)
    with clock.stage("gaps"):
        if found.voids is not None:
            gaps = void_gaps(
                found.voids, found.void_scores, shelf_of(found.voids, zones), products, zones
            )
            gaps = fit_gaps(gaps, products, zones, fixture)
            if found.void_mask is not None:
                gaps = masked_gaps(gaps, found.void_mask, products, zones)
            gaps = without_pack_bodies(gaps, products, fixture, back)
            bare = bare_stretches(products, zones, fixture, back, gaps, found.voids)
            gaps = join_gaps(gaps + bare)
        else:  # weights without a void head: empty columns no detected product covers
            classical = _classical_facings(work, zones, fixture_back_lab(work, bands))
            gaps = uncovered(classical[1], found.boxes)
    shelves = [to_product_tops(s, products) for s in shelves]
    # Levels holding nothing are no shelves (``stocked``); where nothing was found on any
    # shelf, the shelves stay and the photo is judged on them.
    keep = stocked(shelves, products, gaps)
    if keep:
        candidates = keep_shelves(shelves, candidates, [], keep)[1]
        shelves, products, gaps = keep_shelves(shelves, products, gaps, keep)
    scene = ShelfScene(
        width=w,
        height=h,
        shelves=shelves,
        products=products,
        gaps=gaps,
        candidates=candidates[candidates.shelf > 0],
    )
    return scene, (fixture, back)


def _classical_facings(
    work: np.ndarray, zones: list[Zone], back: np.ndarray | None
) -> tuple[Products, list[Gap]]:
    """The fallback without detector weights: facings and gaps from column occupancy."""
    parts: list[Products] = []
    gaps: list[Gap] = []
    for zone in zones:
        index = zone.shelf
        found = find_facings(work, zone.x1, zone.x2, zone.top, zone.bottom, back)
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


def _with_row_facings(found: infer.Detected, zones: list[Zone], width: int) -> tuple[Boxes, Boxes]:
    """The detector's sure boxes and the weak ones standing in a row of them on their shelf
    edge (``rows``), with their scores and shelves; and the weak ones not taken that lie on
    a shelf (``ShelfScene.candidates``). Held-out per-shelf counts of real-shelves 19.9 ->
    18.7 % (tuned half 12.2 -> 9.8), racks C3-C4 precision 0.961 -> 0.957 (see the README)."""
    shelf = shelf_of(found.boxes, zones)
    weak_shelf = shelf_of(found.weak, zones)
    take = np.zeros(len(found.weak), bool)
    if len(found.weak):
        take = row_facings(
            found.boxes,
            shelf,
            found.weak,
            found.weak_scores,
            weak_shelf,
            found.voids,
            found.void_scores,
            shelf_ends(zones, seen=True),
            width,
        )
        # Weak boxes are taken for standing on their shelf's edge: not where it is out of
        # view (on racks they were the sides of packs in a row cut off by the frame).
        take &= ~np.isin(weak_shelf, [z.shelf for z in zones if not z.edge.in_view])
    rest = ~take & (weak_shelf > 0)
    return (
        np.concatenate([found.boxes, found.weak[take]]),
        np.concatenate([found.scores, found.weak_scores[take]]),
        np.concatenate([shelf, weak_shelf[take]]),
    ), (found.weak[rest], found.weak_scores[rest], weak_shelf[rest])


def _products(boxes: np.ndarray, scores: np.ndarray, shelf: np.ndarray) -> Products:
    """Detected products in shelf order, left to right (their masks come later, in the
    photo's frame)."""
    order = np.lexsort(((boxes[:, 0] + boxes[:, 2]) / 2, shelf)) if len(boxes) else []
    xyxy = np.round(boxes[order]).astype(int).reshape(-1, 4)
    return Products(xyxy=xyxy, scores=scores[order], shelf=shelf[order])


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
    unsure = scene.candidates
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
        candidates=replace(unsure, xyxy=_map_boxes(m, unsure.xyxy, w, h)),
    )
