"""Pieces of one pack, one product.

A detector reading the print of a wide pack (a word, a picture, a pack's top and its
bottom) boxes its parts, and each box would count as a product; a part whose colours pass
for another like-coloured SKU is even named after it. With the catalog's pack sizes the
pieces are told from packs: a box under ``SHORT`` of its SKU's pack height between boxes
of one other SKU is a piece of theirs, and boxes of one SKU side by side on a shelf that
together are no wider (and no taller) than ``ONE_PACK`` of its packs are one pack, the
rule the realogram already counts facings by. Two whole packs, or two stacked ones, are
wider or taller than that and stay two products.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shelfwatch.core.scene import Products, ShelfScene
from shelfwatch.planogram.formats import CatalogItem
from shelfwatch.planogram.realogram import ONE_PACK, ObservedFacing, px_per_cm, realogram

# A box under this share of its SKU's pack height is not a whole pack of that SKU (0.5,
# 0.6 and 0.7 alike: 133 -> 81 false findings on varied seeds 502, 7401-7404, 9402 and
# 9417; 0.4 leaves most misnamed pieces as they were: 110).
SHORT = 0.6


def whole_packs(scene: ShelfScene, catalog: dict[str, CatalogItem]) -> ShelfScene:
    """``scene`` with the pieces of each pack made one product: unknown boxes among pieces
    of one SKU's packs named after it first (as the realogram reads them), then each run of
    one SKU's boxes that fits in one pack merged (the union of their boxes and masks, the
    surest piece's score). Pieces named after another SKU than the packs around them are
    named after those first too (``_misnamed``). Without pack widths or three identified
    boxes, unchanged."""
    widths = {sku: float(c.width_cm) for sku, c in catalog.items() if c.width_cm}
    scale = px_per_cm(scene, widths)
    if scale is None:
        return scene
    heights = {sku: float(c.height_cm) for sku, c in catalog.items() if c.height_cm}
    products = replace(scene.products, sku=_named(scene, widths, heights, scale))
    packs = _packs(products, {s: w * scale for s, w in widths.items()}, heights, scale)
    if len(packs) == len(products):
        return replace(scene, products=products)
    return replace(scene, products=_merged(products, packs))


def _named(
    scene: ShelfScene, widths: dict[str, float], heights: dict[str, float], scale: float
) -> list[str | None]:
    """The products' SKUs with the unknown pieces the realogram names (``_named_pieces``)
    and the misnamed ones (``_misnamed``)."""
    sku = list(scene.products.sku)
    for row in realogram(scene, widths).values():
        for f in row:
            if f.product is not None and f.sku != sku[f.product]:
                sku[f.product] = f.sku
        for i, name in _misnamed(row, scene.products, widths, heights, scale):
            sku[i] = name
    return sku


def _misnamed(
    row: list[ObservedFacing],
    p: Products,
    widths: dict[str, float],
    heights: dict[str, float],
    scale: float,
) -> list[tuple[int, str]]:
    """Boxes named after a SKU they cannot be a whole pack of (under ``SHORT`` of its
    height), alone or side by side, standing between two boxes of one other SKU, of whose
    packs each fits in one: pieces of that SKU's packs (a band, a lower half) whose colours
    pass for another like-coloured SKU. Returns (product, the neighbours' SKU)."""

    def short(f: ObservedFacing) -> bool:
        if f.kind != "product" or f.product is None or f.inferred or f.sku not in heights:
            return False
        y1, y2 = p.xyxy[f.product, 1], p.xyxy[f.product, 3]
        return bool(y2 - y1 < SHORT * heights[f.sku] * scale)  # type: ignore[index]

    out: list[tuple[int, str]] = []
    k = 1
    while k < len(row) - 1:
        if not short(row[k]):
            k += 1
            continue
        j = k  # row[k..j]: the short boxes named alike side by side
        while j + 1 < len(row) - 1 and row[j + 1].sku == row[k].sku and short(row[j + 1]):
            j += 1
        pieces = [f.product for f in row[k : j + 1] if f.product is not None]
        other = row[k - 1].sku
        if (
            row[k - 1].kind == row[j + 1].kind == "product"
            and other is not None
            and other != row[k].sku
            and row[j + 1].sku == other
            and other in heights
            and other in widths
            and all(_fits(p.xyxy[i], other, widths, heights, scale) for i in pieces)
        ):
            out += [(i, other) for i in pieces]
        k = j + 1
    return out


def _fits(
    box: np.ndarray, sku: str, widths: dict[str, float], heights: dict[str, float], scale: float
) -> bool:
    """Whether a box fits in one pack of ``sku`` (``ONE_PACK`` of its width and height)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return x2 - x1 <= ONE_PACK * widths[sku] * scale and y2 - y1 <= ONE_PACK * heights[sku] * scale


def _packs(
    p: Products, facing_px: dict[str, float], heights_cm: dict[str, float], scale: float
) -> list[list[int]]:
    """The products grouped into packs, left to right on each shelf: a box joins the pack
    before it when both are of one SKU and the pack with it stays within ``ONE_PACK``
    facings wide and, where the catalog gives a height, ``ONE_PACK`` packs tall."""
    order = np.lexsort((p.centers[:, 0], p.shelf))
    packs: list[list[int]] = []
    for i in order:
        last = packs[-1] if packs else []
        sku = p.sku[i]
        if (
            last
            and p.shelf[i] > 0
            and p.shelf[i] == p.shelf[last[0]]
            and sku is not None
            and sku == p.sku[last[0]]
            and sku in facing_px
        ):
            box = p.xyxy[[*last, i]]
            wide = box[:, 2].max() - box[:, 0].min()
            tall = box[:, 3].max() - box[:, 1].min()
            fits = wide <= ONE_PACK * facing_px[sku]
            if sku in heights_cm:
                fits = fits and tall <= ONE_PACK * heights_cm[sku] * scale
            if fits:
                last.append(int(i))
                continue
        packs.append([int(i)])
    return packs


def _merged(p: Products, packs: list[list[int]]) -> Products:
    """One product per pack: its pieces' union box and mask, the surest piece's columns."""
    surest = [pack[int(np.argmax(p.scores[pack]))] for pack in packs]
    boxes = np.array(
        [[*p.xyxy[pack, :2].min(axis=0), *p.xyxy[pack, 2:].max(axis=0)] for pack in packs]
    )
    masks = None
    if p.masks is not None:
        masks = [_union_mask(p, pack, box) for pack, box in zip(packs, boxes, strict=True)]
    return replace(p[surest], xyxy=boxes, masks=masks)


def _union_mask(p: Products, pack: list[int], box: np.ndarray) -> np.ndarray:
    """The pieces' masks (each cropped to its own box) in the pack's box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    out = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for i in pack:
        bx1, by1 = int(p.xyxy[i, 0]) - x1, int(p.xyxy[i, 1]) - y1
        mask = p.masks[i]  # type: ignore[index]
        out[by1 : by1 + mask.shape[0], bx1 : bx1 + mask.shape[1]] |= mask
    return out
