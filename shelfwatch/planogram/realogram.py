"""The realogram: per shelf, the observed left-to-right sequence of facings and gaps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwatch.core.scene import ShelfScene


@dataclass(frozen=True)
class ObservedFacing:
    """One slot on a shelf as seen: a product (``sku`` may be None = unknown) or a gap."""

    kind: str  # "product" | "gap"
    sku: str | None
    bbox: tuple[int, int, int, int]
    facings: int = 1


@dataclass(frozen=True)
class Run:
    """Consecutive facings of one SKU on a shelf (the realogram's unit)."""

    sku: str | None
    facings: int
    bbox: tuple[int, int, int, int]


def realogram(scene: ShelfScene) -> dict[int, list[ObservedFacing]]:
    """Facings and gaps of every shelf, ordered left to right."""
    rows: dict[int, list[ObservedFacing]] = {s.index: [] for s in scene.shelves}
    p = scene.products
    for i in range(len(p)):
        shelf = int(p.shelf[i])
        if shelf in rows:
            rows[shelf].append(
                ObservedFacing("product", p.sku[i], tuple(int(v) for v in p.xyxy[i]))
            )  # type: ignore[arg-type]
    for g in scene.gaps:
        if g.shelf in rows:
            rows[g.shelf].append(ObservedFacing("gap", None, g.bbox, g.missing_facings or 1))
    for shelf in rows:
        rows[shelf].sort(key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
    return rows


def runs(facings: list[ObservedFacing]) -> list[Run]:
    """Collapse a shelf's products into runs of one SKU; gaps split nothing (they are empty)."""
    out: list[Run] = []
    for f in facings:
        if f.kind != "product":
            continue
        if out and out[-1].sku == f.sku and f.sku is not None:
            last = out[-1]
            box = (
                min(last.bbox[0], f.bbox[0]),
                min(last.bbox[1], f.bbox[1]),
                max(last.bbox[2], f.bbox[2]),
                max(last.bbox[3], f.bbox[3]),
            )
            out[-1] = Run(last.sku, last.facings + 1, box)
        else:
            out.append(Run(f.sku, 1, f.bbox))
    return out


def realogram_json(rows: dict[int, list[ObservedFacing]]) -> list[dict[str, object]]:
    return [
        {
            "shelf": shelf,
            "facings": [
                {"kind": f.kind, "sku": f.sku, "bbox": list(f.bbox), "facings": f.facings}
                for f in facings
            ],
        }
        for shelf, facings in sorted(rows.items())
    ]


def median_facing_width(scene: ShelfScene, shelf: int) -> float | None:
    widths = scene.products.widths[scene.products.shelf == shelf]
    return float(np.median(widths)) if len(widths) else None
