"""``ShelfScene``: shelves, product instances with masks, gaps and SKU labels of one photo.

Products are held column-wise (one numpy array per attribute), like supervision's
``Detections``: stages filter and extend them with pure functions instead of mutating
per-object records. Masks are kept cropped to their box so a dense photo stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

# What put a product in the scene. A store manager reads counts and compliance off these, so
# the facings no detector box stands for are told apart: ``planogram`` facings were expected
# by the plan and confirmed by the photo's colours where the detector was unsure or drew
# nothing; ``packshot`` packs were placed by matching the catalog's reference image.
DETECTOR, PLANOGRAM, PACKSHOT = "detector", "planogram", "packshot"
SOURCES = (DETECTOR, PLANOGRAM, PACKSHOT)


@dataclass(frozen=True)
class Shelf:
    """One shelf level: the band of the photo from the products' tops down to the shelf edge.

    ``index`` counts from 1 at the top (bay by bay, left to right, at equal heights).
    ``y1``/``y2`` bound the band and ``x1``/``x2`` its bay's columns; ``bay`` numbers the bay
    from 1 at the left; ``edge_y`` is the shelf edge (front lip) the products stand on, at
    the band's centre; ``edge`` its two ends, which differ in height when the photo was taken
    at an angle.
    """

    index: int
    y1: int
    y2: int
    x1: int = 0
    x2: int = 0
    edge_y: int | None = None
    edge: tuple[int, int, int, int] | None = None  # the edge's ends (x1, y1, x2, y2) as seen
    bay: int = 1


@dataclass(frozen=True)
class Gap:
    """Empty facing space on a shelf."""

    shelf: int
    bbox: tuple[int, int, int, int]
    width_cm: float | None = None
    missing_facings: int | None = None

    @property
    def width_px(self) -> int:
        return int(self.bbox[2] - self.bbox[0])


def _column(values: Any, n: int, dtype: type, default: float, name: str) -> np.ndarray:
    """One per-product column: ``default`` when not given, else exactly ``n`` values."""
    if values is None:
        return np.full(n, default, dtype=dtype)
    out = np.asarray(values, dtype=dtype).reshape(-1)
    if len(out) != n:
        raise ValueError(f"{len(out)} {name} for {n} boxes")
    return out


@dataclass
class Products:
    """Product instances (facings) of one photo, column-wise.

    ``xyxy``: (N, 4) int boxes in pixels; ``masks``: N boolean arrays cropped to their box
    (or ``None`` for box-only backends); ``scores``: (N,) confidence (0 for a planned facing
    confirmed where no box was drawn); ``shelf``: (N,) shelf index, 0 when unassigned;
    ``sku``: N labels, ``None`` when not identified;
    ``sku_score``: (N,) similarity of the SKU match; ``track``: (N,) the physical product's
    id across the frames of a capture (-1 for a single photo); ``source``: N words saying
    what put each product there (``SOURCES``: the detector, a planned facing the planogram
    confirmed, a pack located by its packshot). Columns left out are filled with their
    defaults; a column given with another length than the boxes is an error.
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int32))
    scores: np.ndarray | None = None
    masks: list[np.ndarray] | None = None
    shelf: np.ndarray | None = None
    sku: list[str | None] | None = None
    sku_score: np.ndarray | None = None
    track: np.ndarray | None = None
    source: list[str] | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.xyxy)
        n = len(boxes)
        self.xyxy = boxes.astype(np.int32).reshape(n, 4)
        self.scores = _column(self.scores, n, np.float32, 1.0, "scores")
        self.shelf = _column(self.shelf, n, np.int32, 0, "shelf")
        self.sku_score = _column(self.sku_score, n, np.float32, 0.0, "sku_score")
        self.track = _column(self.track, n, np.int32, -1, "track")
        self.sku = [None] * n if self.sku is None else list(self.sku)
        if len(self.sku) != n:
            raise ValueError(f"{len(self.sku)} sku labels for {n} boxes")
        self.source = [DETECTOR] * n if self.source is None else list(self.source)
        if len(self.source) != n:
            raise ValueError(f"{len(self.source)} sources for {n} boxes")
        unknown = set(self.source) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown product source {sorted(unknown)[0]!r}")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"{len(self.masks)} masks for {n} boxes")

    def __len__(self) -> int:
        return len(self.xyxy)

    def labelled(self, sku: list[str | None], sku_score: np.ndarray) -> Products:
        """The same products with SKU labels and their match scores."""
        return replace(self, sku=sku, sku_score=np.asarray(sku_score, dtype=np.float32))

    def on_shelves(self, shelf: np.ndarray) -> Products:
        """The same products assigned to shelves."""
        return replace(self, shelf=np.asarray(shelf, dtype=np.int32))

    def __getitem__(self, index: np.ndarray | list[int] | slice) -> Products:
        """Select products by boolean mask, index list or slice (always returns ``Products``)."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return Products(
            xyxy=self.xyxy[idx],
            scores=self.scores[idx],
            masks=None if self.masks is None else [self.masks[i] for i in idx],
            shelf=self.shelf[idx],
            sku=[self.sku[i] for i in idx],
            sku_score=self.sku_score[idx],
            track=self.track[idx],
            source=[self.source[i] for i in idx],
        )

    @classmethod
    def concat(cls, parts: list[Products]) -> Products:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        has_masks = all(p.masks is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            masks=[m for p in parts for m in p.masks] if has_masks else None,  # type: ignore[union-attr]
            shelf=np.concatenate([p.shelf for p in parts]),
            sku=[s for p in parts for s in p.sku],
            sku_score=np.concatenate([p.sku_score for p in parts]),
            track=np.concatenate([p.track for p in parts]),
            source=[s for p in parts for s in p.source],
        )

    @property
    def centers(self) -> np.ndarray:
        return (
            np.stack(
                [(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2],
                axis=1,
            )
            if len(self)
            else np.zeros((0, 2))
        )

    @property
    def widths(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).astype(np.float32)

    def box_mask(self, i: int) -> np.ndarray:
        """Mask of product ``i`` exactly the size of its box."""
        x1, y1, x2, y2 = (int(v) for v in self.xyxy[i])
        out = np.zeros((max(0, y2 - y1), max(0, x2 - x1)), dtype=bool)
        if self.masks is None:
            out[:] = True
        else:
            crop = self.masks[i][: out.shape[0], : out.shape[1]]
            out[: crop.shape[0], : crop.shape[1]] = crop
        return out

    def full_mask(self, i: int, height: int, width: int) -> np.ndarray:
        """Mask of product ``i`` at image resolution (the box itself for box-only backends)."""
        out = np.zeros((height, width), dtype=bool)
        x1, y1, x2, y2 = (int(v) for v in self.xyxy[i])
        if self.masks is None:
            out[y1:y2, x1:x2] = True
        else:
            crop = self.masks[i]
            out[y1 : y1 + crop.shape[0], x1 : x1 + crop.shape[1]] = crop[
                : height - y1, : width - x1
            ]
        return out


def _resized(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A box's mask at another size, nearest neighbour."""
    if mask.size == 0 or height <= 0 or width <= 0:
        return np.zeros((max(0, height), max(0, width)), bool)
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0


@dataclass
class ShelfScene:
    """Everything the vision stage found in one photo.

    ``candidates``: boxes the detector was unsure of and no rule took as products (their
    scores and shelves, no masks), for a planogram to confirm as the facings it expects
    (``planogram.confirm``); not counted, stored or exported."""

    width: int
    height: int
    shelves: list[Shelf] = field(default_factory=list)
    products: Products = field(default_factory=Products)
    gaps: list[Gap] = field(default_factory=list)
    backend: str = ""
    quality: dict[str, Any] = field(default_factory=dict)  # measures, flags, verdict
    warnings: list[str] = field(default_factory=list)
    candidates: Products = field(default_factory=Products)

    def with_products(self, products: Products) -> ShelfScene:
        return replace(self, products=products)

    def scaled(self, factor: float) -> ShelfScene:
        """The same scene for the photo resized by ``factor``: shelves, boxes, gaps and masks
        (nearest neighbour) in the resized photo's pixels."""

        def px(v: float) -> int:
            return int(round(v * factor))

        shelves = [
            replace(
                s,
                y1=px(s.y1),
                y2=px(s.y2),
                x1=px(s.x1),
                x2=px(s.x2),
                edge_y=None if s.edge_y is None else px(s.edge_y),
                edge=None
                if s.edge is None
                else (px(s.edge[0]), px(s.edge[1]), px(s.edge[2]), px(s.edge[3])),
            )
            for s in self.shelves
        ]
        p = self.products
        boxes = np.round(p.xyxy.astype(float) * factor).astype(np.int32)
        masks = None
        if p.masks is not None:
            masks = [
                _resized(m, b[3] - b[1], b[2] - b[0]) for m, b in zip(p.masks, boxes, strict=True)
            ]
        gaps = [
            replace(g, bbox=(px(g.bbox[0]), px(g.bbox[1]), px(g.bbox[2]), px(g.bbox[3])))
            for g in self.gaps
        ]
        unsure = self.candidates
        return replace(
            self,
            width=px(self.width),
            height=px(self.height),
            shelves=shelves,
            products=replace(p, xyxy=boxes, masks=masks),
            gaps=gaps,
            candidates=replace(
                unsure, xyxy=np.round(unsure.xyxy.astype(float) * factor).astype(np.int32)
            ),
            quality=dict(self.quality),
            warnings=list(self.warnings),
        )

    def counts(self) -> dict[str, object]:
        """Product counts overall, per shelf and per SKU (``unknown`` for unidentified)."""
        per_shelf: dict[str, int] = {}
        per_sku: dict[str, int] = {}
        for shelf, sku in zip(self.products.shelf, self.products.sku, strict=True):
            per_shelf[str(int(shelf))] = per_shelf.get(str(int(shelf)), 0) + 1
            key = sku or "unknown"
            per_sku[key] = per_sku.get(key, 0) + 1
        return {
            "products": len(self.products),
            "gaps": len(self.gaps),
            "per_shelf": dict(sorted(per_shelf.items(), key=lambda kv: int(kv[0]))),
            "per_sku": dict(sorted(per_sku.items())),
        }

    def to_json(self, image: str) -> dict[str, object]:
        """The ``analyze --json`` record (a stable contract: extend, never rename)."""
        return {
            "image": image,
            "width": self.width,
            "height": self.height,
            "backend": self.backend,
            # A shelf without known columns spans the photo.
            "shelves": [
                {
                    "index": s.index,
                    "y1": s.y1,
                    "y2": s.y2,
                    "x1": s.x1 if s.x2 > s.x1 else 0,
                    "x2": s.x2 if s.x2 > s.x1 else self.width,
                    "bay": s.bay,
                }
                for s in self.shelves
            ],
            "products": [
                {
                    "bbox": [int(v) for v in self.products.xyxy[i]],
                    "score": round(float(self.products.scores[i]), 4),
                    "shelf": int(self.products.shelf[i]),
                    "sku": self.products.sku[i],
                    "source": self.products.source[i],
                }
                for i in range(len(self.products))
            ],
            "gaps": [
                {
                    "bbox": list(g.bbox),
                    "shelf": g.shelf,
                    "width_px": g.width_px,
                    "width_cm": g.width_cm,
                    "missing_facings": g.missing_facings,
                }
                for g in self.gaps
            ],
            "counts": self.counts(),
            "quality": self.quality,
            "warnings": self.warnings,
        }
