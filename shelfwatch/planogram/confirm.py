"""Facings the planogram expects, confirmed where the detector was unsure or saw nothing.

The detector scores some packs under its cut (identical narrow packs edge to edge, a narrow
bottle at a shelf's end beside wide packs) and misses others outright, leaving a bare
stretch beside their run that the gap stage did not take for empty. Where the plan expects
more facings of a SKU on a shelf than were seen:

1. an unsure box (``ShelfScene.candidates``) that identifies as that SKU and stands beside
   its facings (anywhere on the shelf where none was seen) is taken as one of them;
2. then a bare stretch beside its facings, cut into slots one of its facings wide, gives
   each slot that identifies as that SKU and adds a facing to its run (a slot on the rest of
   a pack a box already holds adds none) as one more.

An empty slot shows the fixture back, which identifies as no SKU, so a missing facing is
still reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from shelfwatch.core.boxes import covered
from shelfwatch.core.scene import PLANOGRAM, Products, ShelfScene
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition, skus_by_shelf
from shelfwatch.planogram.realogram import ObservedFacing, realogram, runs
from shelfwatch.planogram.sku import Signature, identify_skus

# An unsure box counts when products and gaps cover at most this share of it (a detector's
# boxes of edge-to-edge packs overlap their neighbours) ...
COVERED = 0.5
# ... it lies within this many of its SKU's facings of one of them ...
BESIDE = 0.5
# ... and the boxes confirmed before it cover at most this share of it (one pack, one box).
APART = 0.3
# A bare stretch this many facings wide may hold a facing: boxes of edge-to-edge packs that
# straddle the seams leave less than a pack's width of one pack bare (0.3 of 0.2 / 0.3 / 0.4
# / 0.5 / 0.6 on varied seeds 502, 7401-7403 and 9402; 0.2 took a true finding).
STRETCH = 0.3


@dataclass(frozen=True)
class _Plan:
    """What both steps read: planned facings by shelf and SKU, the SKUs planned on each
    shelf, pack widths (cm) and the catalog's signatures."""

    facings: dict[int, dict[str, int]]
    skus: dict[int, set[str]]
    widths: dict[str, float]
    signatures: list[Signature]


def confirm_planned(
    image: np.ndarray,
    scene: ShelfScene,
    planogram: list[PlanogramPosition],
    catalog: dict[str, CatalogItem],
    signatures: list[Signature],
) -> ShelfScene:
    """The scene with the facings confirmed for short SKUs added to its products (a box mask
    each, their SKUs named; a slot on a bare stretch scores 0, no detector saw it); the
    scene itself when none is."""
    if not planogram or not signatures:
        return scene
    facings: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for position in planogram:
        facings[position.shelf][position.sku] += position.facings
    widths = {sku: item.width_cm for sku, item in catalog.items() if item.width_cm}
    plan = _Plan(facings, skus_by_shelf(planogram), widths, signatures)
    return _from_bare(image, _from_unsure(image, scene, plan), plan)


def _seen(facings: list[ObservedFacing]) -> dict[str, int]:
    """How many facings of each identified SKU a shelf's runs hold."""
    seen: dict[str, int] = defaultdict(int)
    for run in runs(facings):
        if run.sku is not None:
            seen[run.sku] += run.facings
    return seen


def _short(facings: list[ObservedFacing], planned: dict[str, int]) -> dict[str, int]:
    """Per planned SKU of a shelf, how many facings fewer than planned its runs hold."""
    seen = _seen(facings)
    return {sku: n - seen[sku] for sku, n in planned.items() if n > seen[sku]}


def _from_unsure(image: np.ndarray, scene: ShelfScene, plan: _Plan) -> ShelfScene:
    """Step 1: the unsure boxes that confirm a short SKU's planned facings."""
    unsure = _free(scene, set(plan.facings))
    if not len(unsure):
        return scene
    unsure = identify_skus(
        image, replace(scene, products=unsure), plan.signatures, planned=plan.skus
    )
    unsure = unsure.products
    taken: list[int] = []
    for shelf, facings in realogram(scene, plan.widths).items():
        for sku, short in _short(facings, plan.facings.get(shelf, {})).items():
            boxes = [f for f in facings if f.kind == "product" and f.sku == sku]
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
    return _with(scene, unsure[np.array(taken, int)])


def _from_bare(image: np.ndarray, scene: ShelfScene, plan: _Plan) -> ShelfScene:
    """Step 2: slots on the bare stretches beside a short SKU's facings that look like it
    and add a facing to its run, best match first (one slot a pack, as in step 1)."""
    slots: list[tuple[int, int, int, int]] = []
    want: list[tuple[int, str]] = []  # the shelf and SKU each slot is cut for
    short: dict[tuple[int, str], int] = {}
    for shelf, facings in realogram(scene, plan.widths).items():
        band = next(s for s in scene.shelves if s.index == shelf)
        span = (band.x1, band.x2) if band.x2 > band.x1 else (0, scene.width)
        bare = _bare(span, [(f.bbox[0], f.bbox[2]) for f in facings])
        for sku, n in _short(facings, plan.facings.get(shelf, {})).items():
            mine = [f for f in facings if f.kind == "product" and f.sku == sku and not f.inferred]
            cut = _slots(bare, mine, n)
            slots += cut
            want += [(shelf, sku)] * len(cut)
            short[(shelf, sku)] = n
    if not slots:
        return scene
    found = Products(
        xyxy=np.array(slots),
        scores=np.zeros(len(slots), np.float32),
        shelf=np.array([shelf for shelf, _ in want]),
    )
    found = identify_skus(image, replace(scene, products=found), plan.signatures, planned=plan.skus)
    found = found.products
    taken: list[int] = []
    counts = _counts(scene, plan.widths)  # with the slots taken so far
    alike = [i for i in range(len(found)) if found.sku[i] == want[i][1]]
    for i in sorted(alike, key=lambda i: -found.sku_score[i]):
        if short[want[i]] <= 0:
            continue
        if taken and covered(found.xyxy[i].astype(float), found.xyxy[taken].astype(float)) > APART:
            continue  # a slot cut for the SKU on the stretch's other side holds it
        trial = _counts(_with(scene, found[np.array([*taken, i])]), plan.widths)
        if trial[want[i]] > counts[want[i]]:
            taken.append(i)
            short[want[i]] -= 1
            counts = trial
    return _with(scene, found[np.array(sorted(taken), int)])


def _with(scene: ShelfScene, confirmed: Products) -> ShelfScene:
    """The scene with ``confirmed`` among its products (box masks where products have
    masks, ``PLANOGRAM`` as their source), ordered by shelf and position; the scene itself
    when there are none."""
    if not len(confirmed):
        return scene
    confirmed = replace(confirmed, source=[PLANOGRAM] * len(confirmed))
    if scene.products.masks is not None:
        confirmed = replace(confirmed, masks=[confirmed.box_mask(i) for i in range(len(confirmed))])
    products = Products.concat([scene.products, confirmed])
    order = np.lexsort((products.centers[:, 0], products.shelf))
    return replace(scene, products=products[order])


def _counts(scene: ShelfScene, widths: dict[str, float]) -> dict[tuple[int, str], int]:
    """How many facings of each SKU the realogram counts on each shelf."""
    out: dict[tuple[int, str], int] = defaultdict(int)
    for shelf, row in realogram(scene, widths).items():
        for sku, n in _seen(row).items():
            out[(shelf, sku)] = n
    return out


def _bare(span: tuple[int, int], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The stretches of ``span`` (columns) that no interval of ``taken`` reaches."""
    out: list[tuple[int, int]] = []
    x = span[0]
    for a, b in sorted(taken):
        if a > x:
            out.append((x, min(a, span[1])))
        x = max(x, b)
    if x < span[1]:
        out.append((x, span[1]))
    return [(a, b) for a, b in out if b > a]


def _slots(
    bare: list[tuple[int, int]], mine: list[ObservedFacing], short: int
) -> list[tuple[int, int, int, int]]:
    """Slots one facing wide (or the stretch's width) on the bare stretches within
    ``BESIDE`` facings of a box of the SKU, cut from that box's side, at most ``short`` a
    stretch; as tall as its boxes (their median top and bottom)."""
    if not mine:
        return []
    one = mine[0].facing_px or float(np.median([f.bbox[2] - f.bbox[0] for f in mine]))
    if one <= 0:
        return []
    top = int(np.median([f.bbox[1] for f in mine]))
    bottom = int(np.median([f.bbox[3] for f in mine]))
    out: list[tuple[int, int, int, int]] = []
    for a, b in bare:
        if b - a < STRETCH * one:
            continue
        left = min(abs(a - f.bbox[2]) for f in mine)  # a box of the SKU ends where it starts
        right = min(abs(f.bbox[0] - b) for f in mine)
        if min(left, right) > BESIDE * one:
            continue
        width = min(one, b - a)
        for k in range(min(short, max(1, int(round((b - a) / one))))):
            x1 = a + k * width if left <= right else b - (k + 1) * width
            x1, x2 = int(max(a, x1)), int(min(b, x1 + width))
            if x2 - x1 < STRETCH * one:
                break
            out.append((x1, top, x2, bottom))
    return out


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
