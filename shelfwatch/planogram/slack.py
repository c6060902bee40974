"""Slack between planned blocks: empty space where no planned product is missing.

Packs seldom fill a shelf edge to edge: between the blocks of two SKUs there is often
space about one narrow facing wide, which the void head reads as empty, as it would a
missing can. With the planogram the two can be told apart: where the blocks on either
side of the space are neighbours in the plan and each holds all its planned facings as
seen, no product is missing there, so the space is no gap. Facings the planogram step
confirmed (``PLANOGRAM``) do not count here: they were added because the plan expected
them, and counting them would let the plan explain away a gap it caused. A product of a
SKU the plan does not put on the shelf, standing between the two blocks, fills one of
their slots: the space left beside it (a narrow pack in a wide pack's slot) is no gap
either, as long as the blocks and it together fill every planned slot. And a space
narrower than any pack the plan puts on its shelf could leave (``NARROW``, at the photo's
scale) held none of them: it is slack wherever it stands, a shelf's end included.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from shelfwatch.core.scene import PLANOGRAM, Gap, ShelfScene
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition, expected_layout
from shelfwatch.planogram.realogram import Run, facing_px, realogram, runs

# A missing pack leaves a space about its own width, a little less where the neighbours'
# boxes run loose into it: on the 26 varied tuning seeds every true gap was at least 0.96
# of the narrowest pack planned on its shelf, while 8 of 21 false gaps (the space between
# two SKUs' blocks or after a shelf's last pack) were 0.44-0.79 of it.
NARROW = 0.75


def without_slack(
    scene: ShelfScene, planogram: list[PlanogramPosition], catalog: dict[str, CatalogItem]
) -> ShelfScene:
    """``scene`` without the gaps that lie between two blocks the plan puts side by side,
    each seen with at least its planned facings by the detector or a packshot, and those
    narrower than ``NARROW`` of every pack planned on their shelf; the scene itself without
    a planogram or gaps."""
    if not planogram or not scene.gaps:
        return scene
    counted = np.array([source != PLANOGRAM for source in scene.products.source], bool)
    widths = {sku: float(c.width_cm) for sku, c in catalog.items() if c.width_cm}
    rows = realogram(replace(scene, products=scene.products[counted]), widths)
    layout = expected_layout(planogram)
    one = facing_px(scene, widths)
    gaps = [
        g
        for g in scene.gaps
        if not _too_narrow(g, layout.get(g.shelf, []), one)
        and not _slack(g, runs(rows.get(g.shelf, [])), layout.get(g.shelf, []))
    ]
    return scene if len(gaps) == len(scene.gaps) else replace(scene, gaps=gaps)


def _too_narrow(gap: Gap, plan: list[PlanogramPosition], one: dict[str, float]) -> bool:
    """Whether ``gap`` is narrower than ``NARROW`` of the narrowest pack planned on its shelf
    (``one``: a facing's width in the photo by SKU; False where the scale is unknown)."""
    packs = [one[p.sku] for p in plan if p.sku in one]
    return bool(packs) and gap.bbox[2] - gap.bbox[0] < NARROW * min(packs)


def _slack(gap: Gap, seen: list[Run], plan: list[PlanogramPosition]) -> bool:
    """Whether the runs either side of ``gap`` (the nearest by centre, past products the
    plan puts on no slot of this shelf) are two blocks the plan puts side by side that,
    with those products in their slots, hold all their planned facings."""
    planned = {p.sku for p in plan}
    centre = (gap.bbox[0] + gap.bbox[2]) / 2
    left = [r for r in seen if (r.bbox[0] + r.bbox[2]) / 2 < centre]
    right = [r for r in seen if (r.bbox[0] + r.bbox[2]) / 2 > centre]
    foreign = 0  # facings of other SKUs between the blocks: each stands in a planned slot
    while left and left[-1].sku is not None and left[-1].sku not in planned:
        foreign += left.pop().facings
    while right and right[0].sku is not None and right[0].sku not in planned:
        foreign += right.pop(0).facings
    if not left or not right or left[-1].sku is None or right[0].sku is None:
        return False
    a, b = left[-1], right[0]
    return any(
        p.sku == a.sku
        and q.sku == b.sku
        and a.facings + b.facings + foreign >= p.facings + q.facings
        and min(a.facings - p.facings, b.facings - q.facings) >= -foreign
        for p, q in itertools.pairwise(plan)
    )
