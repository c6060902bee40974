"""The no-weights default backend: classical OpenCV shelf, facing and gap finding."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.vision.facings import find_facings, fixture_back_lab, product_mask
from shelfwatch.vision.quality import photo_quality
from shelfwatch.vision.shelves import (
    ShelfEdge,
    estimate_tilt,
    find_bays,
    find_shelf_edges,
    merge_rows,
    product_rows,
)

WORK_PIXELS = 1.3e6  # detection runs at about this many pixels, whatever the photo's size


class OpenCVSegmenter:
    """Shelf edges from long horizontal lines; facings from the learned detector when its
    weights are there (shipped in the package, or ``detector``), else from occupancy and
    vertical edges."""

    name = "opencv"

    def __init__(self, detector: Path | None = None) -> None:
        self.detector = detector if detector is not None else _shipped_detector()

    @cached_property
    def model_version(self) -> str:
        """Package version and the detector weights' content hash (a fine-tuned model differs)."""
        import hashlib

        import shelfwatch

        if self.detector is None:
            return f"shelfwatch {shelfwatch.__version__} classical"
        digest = hashlib.sha256(self.detector.read_bytes()).hexdigest()[:12]
        return f"shelfwatch {shelfwatch.__version__} facings {digest}"

    def segment(self, image: np.ndarray) -> ShelfScene:
        return _segment(image, with_products=True, detector=self.detector)


def _shipped_detector() -> Path | None:
    from shelfwatch.vision.detector.infer import SHIPPED

    return SHIPPED if SHIPPED.is_file() else None


def detect_shelves(image: np.ndarray) -> list[Shelf]:
    """Shelf rows only (deskewed, mapped back to the photo): model backends use these."""
    return _segment(image, with_products=False).shelves


def _segment(image: np.ndarray, with_products: bool, detector: Path | None = None) -> ShelfScene:
    height, width = image.shape[:2]
    scale = min(1.0, math.sqrt(WORK_PIXELS / (height * width)))
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
    scene = _segment_upright(work, gray, with_products, detector)
    scene = _transform_scene(scene, np.linalg.inv(forward), width, height, ww)
    scene.quality = photo_quality(gray, tilt)
    scene.backend = OpenCVSegmenter.name
    if _looks_sideways(gray):
        scene.quality["rotated_90"] = True
        scene.quality["low_confidence"] = True
        scene.warnings.append("shelf edges run vertically: the photo seems rotated by 90 deg")
    if not scene.shelves:
        scene.warnings.append("no shelf edges found")
        scene.quality["low_confidence"] = True
    return scene


def _looks_sideways(gray: np.ndarray) -> bool:
    """True when long shelf-edge lines run up and down rather than across.

    Edges across the whole photo both ways (bays and product rows find shelves in any
    orientation, so their counts are no yardstick)."""
    vertical = [e for e in find_shelf_edges(np.ascontiguousarray(gray.T)) if e.strength >= 0.8]
    if len(vertical) < 2:
        return False  # most photos: no need to find the edges across
    return len(vertical) > len(find_shelf_edges(gray))


def _segment_upright(
    work: np.ndarray, gray: np.ndarray, with_products: bool = True, detector: Path | None = None
) -> ShelfScene:
    """Shelves, products and gaps of an upright photo."""
    h, w = gray.shape
    detected = None
    if with_products and detector is not None:
        from shelfwatch.vision.detector.infer import detect

        detected = detect(work, detector)
    # Side-by-side bays may hold their shelves at different heights: each bay on its own.
    zones: list[tuple[int, int, ShelfEdge]] = []
    centres = (detected[0][:, 0] + detected[0][:, 2]) / 2 if detected is not None else None
    for bay in find_bays(gray):
        bay_zones = _edge_zones(bay.edges, h)
        if detected is not None:
            inside = (centres >= bay.x1) & (centres < bay.x2)
            bay_zones = merge_rows(bay_zones, product_rows(detected[0][inside]))
        zones += bay_zones
    shelves: list[Shelf] = []
    parts: list[Products] = []
    gaps: list[Gap] = []
    back = (
        fixture_back_lab(work, [(e.x1, a, e.x2, b) for a, b, e in zones]) if with_products else None
    )
    for zone_top, zone_bottom, edge in zones:
        index = len(shelves) + 1
        shelves.append(Shelf(index, zone_top, edge.y_bottom + 1, edge.x1, edge.x2, edge.y_top))
        if not with_products:
            continue
        # With the detector, only this zone's gaps are kept from the occupancy analysis.
        found = find_facings(work, edge.x1, edge.x2, zone_top, zone_bottom, back)
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
    products = Products.concat(parts)
    if detected is not None:
        products, gaps = _detected_products(work, *detected, zones, gaps, back)
        shelves = [_to_product_tops(s, products) for s in shelves]
    scene = ShelfScene(width=w, height=h, shelves=shelves, products=products, gaps=gaps)
    return scene


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


def _detected_products(
    work: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    zones: list,
    gaps: list[Gap],
    back: np.ndarray | None,
) -> tuple[Products, list[Gap]]:
    """Products from the learned detector, each on the shelf whose zone holds its centre
    (else the nearest one); occupancy gaps that a detected product covers are dropped."""
    shelf = np.zeros(len(boxes), int)
    for i, cy in enumerate((boxes[:, 1] + boxes[:, 3]) / 2):
        if zones:
            # the zone from the products' tops down to its shelf edge's strip
            cx = (boxes[i, 0] + boxes[i, 2]) / 2
            dist = [
                max(top - cy, cy - edge.y_bottom, 0) + max(edge.x1 - cx, cx - edge.x2, 0)
                for top, _, edge in zones
            ]
            shelf[i] = int(np.argmin(dist)) + 1
    keep_gaps = []
    for g in gaps:
        gx1, gy1, gx2, gy2 = g.bbox
        area = max(1, (gx2 - gx1) * (gy2 - gy1))
        ix = np.clip(np.minimum(boxes[:, 2], gx2) - np.maximum(boxes[:, 0], gx1), 0, None)
        iy = np.clip(np.minimum(boxes[:, 3], gy2) - np.maximum(boxes[:, 1], gy1), 0, None)
        if (ix * iy).sum() < 0.3 * area:
            keep_gaps.append(g)
    order = np.lexsort(((boxes[:, 0] + boxes[:, 2]) / 2, shelf)) if len(boxes) else []
    xyxy = np.round(boxes[order]).astype(int).reshape(-1, 4)
    products = Products(
        xyxy=xyxy,
        scores=scores[order],
        masks=[product_mask(work[y1:y2, x1:x2], back) for x1, y1, x2, y2 in xyxy],
        shelf=shelf[order],
    )
    return products, keep_gaps


def _project(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 (affine or projective) transform to (N, 2) points."""
    pts = np.c_[points, np.ones(len(points))] @ m.T
    return pts[:, :2] / pts[:, 2:]


def _map_box(
    m: np.ndarray, box: tuple[int, int, int, int], w: int, h: int
) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    pts = _project(m, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64))
    return (
        int(np.clip(pts[:, 0].min(), 0, w)),
        int(np.clip(pts[:, 1].min(), 0, h)),
        int(np.clip(round(pts[:, 0].max()), 0, w)),
        int(np.clip(round(pts[:, 1].max()), 0, h)),
    )


def _transform_scene(scene: ShelfScene, m: np.ndarray, w: int, h: int, ww: int) -> ShelfScene:
    """Map boxes and masks from the working frame (rectified, scaled) to the photo."""
    products = scene.products
    boxes = [_map_box(m, tuple(b), w, h) for b in products.xyxy]
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
        pts = _project(
            m,
            np.array(
                [
                    [cx, s.y1],
                    [cx, s.y2],
                    [cx, s.edge_y or s.y2],
                    [s.x1, s.y1],
                    [s.x2, s.y1],
                    [s.x1, s.edge_y or s.y2],
                    [s.x2, s.edge_y or s.y2],
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
            )
        )
    gaps = [Gap(g.shelf, _map_box(m, g.bbox, w, h)) for g in scene.gaps]
    return ShelfScene(
        width=w,
        height=h,
        shelves=shelves,
        products=Products(
            xyxy=np.array(boxes).reshape(-1, 4),
            scores=products.scores,
            masks=masks,
            shelf=products.shelf,
        ),
        gaps=gaps,
    )
