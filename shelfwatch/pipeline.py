"""The analysis of one photo, composed from vision and planogram steps (no SQL here).

photo -> segmenter (shelves, product masks, gaps) -> SKU identification -> the planned
facings the detector was unsure of or drew no box on (when the planogram is known) -> the
pieces of each pack made one product (when the catalog gives pack sizes) -> runs of packs
located by their packshot (when the catalog has reference images) -> the gaps between two
planned blocks that hold all their planned facings dropped as slack (when the planogram is
known) -> gap sizes in cm and missing facings (when the fixture width or the planogram is
known) -> the quality gate's verdict (usable or retake).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from shelfwatch.core.scene import Gap, ShelfScene
from shelfwatch.planogram.confirm import confirm_planned
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition, skus_by_shelf
from shelfwatch.planogram.packs import whole_packs
from shelfwatch.planogram.packshots import located_packs
from shelfwatch.planogram.sku import Signature, identify_skus
from shelfwatch.planogram.slack import without_slack
from shelfwatch.vision.base import Segmenter
from shelfwatch.vision.quality import gate, measure


@dataclass
class FixtureContext:
    """What is known about the photographed fixture; every part is optional."""

    width_cm: float | None = None
    planogram: list[PlanogramPosition] = field(default_factory=list)
    catalog: dict[str, CatalogItem] = field(default_factory=dict)
    signatures: list[Signature] = field(default_factory=list)
    catalog_dir: Path | None = None  # where the catalog's reference_image paths point


def analyze(
    image: np.ndarray, segmenter: Segmenter, context: FixtureContext | None = None
) -> ShelfScene:
    """Segment a photo, label SKUs and size the gaps."""
    return analyze_batch([image], segmenter, [context or FixtureContext()])[0]


def analyze_batch(
    images: list[np.ndarray], segmenter: Segmenter, contexts: list[FixtureContext]
) -> list[ShelfScene]:
    """``analyze`` for several photos; backends that batch run their model once for all."""
    batch = getattr(segmenter, "segment_batch", None)
    scenes = batch(images) if batch is not None else [segmenter.segment(i) for i in images]
    return [
        finish(image, scene, segmenter, context)
        for image, scene, context in zip(images, scenes, contexts, strict=True)
    ]


def finish(
    image: np.ndarray, scene: ShelfScene, segmenter: Segmenter, context: FixtureContext
) -> ShelfScene:
    """SKUs, gap sizes and the quality verdict of a segmented photo (or stitched fixture)."""
    identify = getattr(segmenter, "identify", None)
    if identify is not None and context.catalog:
        # Model backends label SKUs by text prompts or example images of the catalog.
        scene = identify(image, scene, list(context.catalog.values()), context.catalog_dir)
    elif context.signatures:
        planned = skus_by_shelf(context.planogram) or None
        scene = identify_skus(image, scene, context.signatures, planned=planned)
        if context.planogram:
            scene = confirm_planned(
                image, scene, context.planogram, context.catalog, context.signatures
            )
    if context.catalog:
        scene = whole_packs(scene, context.catalog)
        if context.signatures:
            scene = located_packs(image, scene, context.catalog, context.signatures)
    scene = without_slack(scene, context.planogram, context.catalog)
    return judge(image, size_gaps(scene, context))


def judge(image: np.ndarray, scene: ShelfScene) -> ShelfScene:
    """The quality gate's verdict on the photo (measured here if the backend did not)."""
    quality = (
        scene.quality if "brightness" in scene.quality else {**measure(image), **scene.quality}
    )
    quality = gate(quality, len(scene.shelves), len(scene.products))
    warnings = list(scene.warnings)
    if quality["reasons"]:
        warnings.append(f"retake: {', '.join(quality['reasons'])}")
    return replace(scene, quality=quality, warnings=warnings)


def size_gaps(scene: ShelfScene, context: FixtureContext) -> ShelfScene:
    """Gap widths in cm (from the fixture width) and missing facings (from nearby packs)."""
    px_per_cm = None
    if context.width_cm and scene.shelves:
        spans = [s.x2 - s.x1 for s in scene.shelves if s.x2 > s.x1]
        if spans:
            px_per_cm = float(np.median(spans)) / context.width_cm
    gaps = []
    for g in scene.gaps:
        width_cm = round(g.width_px / px_per_cm, 1) if px_per_cm else None
        facing_px = _typical_facing_px(scene, g.shelf, px_per_cm, context)
        missing = max(1, int(round(g.width_px / facing_px))) if facing_px else None
        gaps.append(Gap(g.shelf, g.bbox, width_cm, missing))
    return replace(scene, gaps=gaps)


def _typical_facing_px(
    scene: ShelfScene, shelf: int, px_per_cm: float | None, context: FixtureContext
) -> float | None:
    planned = [p for p in context.planogram if p.shelf == shelf]
    if px_per_cm and planned and context.catalog:
        widths = [
            context.catalog[p.sku].width_cm
            for p in planned
            if p.sku in context.catalog and context.catalog[p.sku].width_cm
        ]
        if widths:
            return float(np.median(widths)) * px_per_cm
    on_shelf = scene.products.widths[scene.products.shelf == shelf]
    return float(np.median(on_shelf)) if len(on_shelf) else None
