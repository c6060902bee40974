"""Facings the planogram expects, confirmed from boxes the detector was unsure of.

The detector scores some packs under its cut: identical narrow packs edge to edge, a narrow
bottle at a shelf's end beside wide packs. Where the plan expects more facings of a SKU on a
shelf than were seen, an unsure box (``ShelfScene.candidates``) that identifies as that SKU
and stands beside its facings (anywhere on the shelf where none was seen) is taken as one
of them: the planned pack where the plan puts it. An empty slot shows the fixture back,
which identifies as no SKU, so a missing facing is still reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

from shelfwatch.core.boxes import covered
from shelfwatch.core.scene import Products, ShelfScene
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition
from shelfwatch.planogram.realogram import ObservedFacing, realogram, runs
from shelfwatch.planogram.sku import Signature, identify_skus

# An unsure box counts when products and gaps cover at most this share of it (a detector's
# boxes of edge-to-edge packs overlap their neighbours) ...
COVERED = 0.5
# ... it lies within this many of its SKU's facings of one of them ...
BESIDE = 0.5
# ... and the boxes confirmed before it cover at most this share of it (one pack, one box).
APART = 0.3


def confirm_planned(
    image: np.ndarray,
    scene: ShelfScene,
    planogram: list[PlanogramPosition],
    catalog: dict[str, CatalogItem],
    signatures: list[Signature],
) -> ShelfScene:
    """The scene with the unsure boxes that confirm a short SKU's planned facings added to
    its products (a box mask each, their SKUs named); the rest as they were."""
    planned: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for position in planogram:
        planned[position.shelf][position.sku] += position.facings
    unsure = _free(scene, set(planned))
    if not len(unsure) or not signatures:
        return scene
    listed = {p.sku for p in planogram}
    unsure = identify_skus(image, replace(scene, products=unsure), signatures, planned=listed)
    unsure = unsure.products
    widths = {sku: item.width_cm for sku, item in catalog.items() if item.width_cm}
    taken: list[int] = []
    for shelf, facings in realogram(scene, widths).items():
        seen: dict[str | None, int] = defaultdict(int)
        for run in runs(facings):
            seen[run.sku] += run.facings
        for sku, expected in planned.get(shelf, {}).items():
            boxes = [f for f in facings if f.kind == "product" and f.sku == sku]
            short = expected - seen[sku]
            mine = [
                i for i in range(len(unsure)) if unsure.shelf[i] == shelf and unsure.sku[i] == sku
            ]
            for i in sorted(mine, key=lambda i: -unsure.scores[i]):
                if short <= 0:
                    break
                box = unsure.xyxy[i].astype(float)
                if boxes and not _beside(box, boxes):
                    continue
                if taken and covered(box, unsure.xyxy[taken].astype(float)) > APART:
                    continue
                taken.append(i)
                short -= 1
    if not taken:
        return scene
    confirmed = unsure[np.array(taken)]
    if scene.products.masks is not None:
        confirmed = replace(confirmed, masks=[confirmed.box_mask(i) for i in range(len(confirmed))])
    products = Products.concat([scene.products, confirmed])
    order = np.lexsort((products.centers[:, 0], products.shelf))
    return replace(scene, products=products[order])


def _free(scene: ShelfScene, shelves: set[int]) -> Products:
    """The unsure boxes whose centre lies on a planned shelf's band and that products and
    gaps leave mostly uncovered."""
    unsure = scene.candidates
    band = {s.index: s for s in scene.shelves if s.index in shelves}
    taken = np.concatenate(
        [scene.products.xyxy.reshape(-1, 4), np.array([g.bbox for g in scene.gaps]).reshape(-1, 4)]
    ).astype(float)
    keep = np.zeros(len(unsure), bool)
    for i, (x, y) in enumerate(unsure.centers):
        s = band.get(int(unsure.shelf[i]))
        keep[i] = (
            s is not None
            and s.y1 <= y <= s.y2
            and (s.x2 <= s.x1 or s.x1 <= x <= s.x2)
            and covered(unsure.xyxy[i].astype(float), taken) <= COVERED
        )
    return unsure[keep]


def _beside(box: np.ndarray, boxes: list[ObservedFacing]) -> bool:
    """Whether ``box`` lies within ``BESIDE`` facings of one of its SKU's boxes."""
    for f in boxes:
        one = f.facing_px or (f.bbox[2] - f.bbox[0])
        if max(f.bbox[0] - box[2], box[0] - f.bbox[2]) <= BESIDE * one:
            return True
    return False
