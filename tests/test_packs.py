"""Pieces of one pack made one product, by the catalog's pack sizes."""

from __future__ import annotations

import numpy as np

from shelfwatch.core.scene import Products, Shelf, ShelfScene
from shelfwatch.planogram.formats import CatalogItem
from shelfwatch.planogram.packs import whole_packs
from tests.scenes import FLOOR, one_shelf

# Five px per cm: A packs are 20 px wide and 50 px tall, B packs 60 x 80.
CATALOG = {
    "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),
    "B": CatalogItem("B", "b", "BrandY", "c", 12, 16),
    "C": CatalogItem("C", "c", "BrandZ", "c", 4, 10),  # an A-sized pack of A's colours
}


def shelf(*boxes: tuple[str | None, int, int, int]) -> ShelfScene:
    """One shelf of boxes given as (sku, x1, x2, height above the shelf's edge), each with
    its own mask (its left half, so a union of masks can be told from a union of boxes)."""
    xyxy = np.array([[a, FLOOR - h, b, FLOOR] for _, a, b, h in boxes]).reshape(-1, 4)
    masks = []
    for x1, y1, x2, y2 in xyxy:
        m = np.zeros((y2 - y1, x2 - x1), dtype=bool)
        m[:, : (x2 - x1) // 2] = True
        masks.append(m)
    return one_shelf(xyxy, [s for s, *_ in boxes], masks, 100)


A_PACKS = [("A", 0, 20, 50), ("A", 21, 41, 50), ("A", 42, 62, 50)]


def test_pieces_of_a_wide_pack_are_one_product_and_whole_packs_stay_apart() -> None:
    """Three boxes over one B pack (70-130) are one product with their union's box and
    masks and the surest piece's score; the next two B packs, each boxed whole, stay two."""
    scene = shelf(
        *A_PACKS,
        ("B", 70, 90, 60),
        ("B", 92, 110, 40),
        ("B", 111, 128, 60),
        ("B", 130, 190, 80),
        ("B", 190, 250, 80),
    )
    out = whole_packs(scene, CATALOG).products
    assert len(out) == 6
    assert out.xyxy[3].tolist() == [70, FLOOR - 60, 128, FLOOR]
    assert out.scores[3] == scene.products.scores[5]  # the surest of the three
    mask = out.masks[3]
    assert mask.shape == (60, 58)
    # Each piece's own mask (its left half) where it was, nothing between them.
    assert mask[:, 0:10].all() and not mask[:, 10:20].any() and mask[-40:, 22:31].all()
    assert out.xyxy[4:].tolist() == [[130, 110, 190, FLOOR], [190, 110, 250, FLOOR]]
    assert out.sku == ["A", "A", "A", "B", "B", "B"]


def test_an_unknown_piece_among_pieces_of_one_pack_joins_it() -> None:
    """An unknown box between two pieces of one B pack is a piece of it (as the realogram
    reads it): one B product; an unknown box as wide as a pack stays a product of its own."""
    pieces = whole_packs(
        shelf(*A_PACKS, ("B", 70, 90, 60), (None, 92, 108, 40), ("B", 110, 128, 60)), CATALOG
    )
    assert pieces.products.sku == ["A", "A", "A", "B"]
    whole = whole_packs(
        shelf(*A_PACKS, ("B", 70, 90, 60), (None, 92, 150, 80), ("B", 152, 170, 60)), CATALOG
    )
    assert whole.products.sku == ["A", "A", "A", "B", None, "B"]


def test_short_pieces_named_after_another_sku_among_one_skus_packs_take_its_name() -> None:
    """The lower part of an A pack (20 px tall, under 0.6 of a C pack's 50) whose colours
    passed for C, between two A packs, is an A pack's piece: named A, alone or two side by
    side. A whole C pack there is a misplaced C and stays C; so does a short C box between A
    and B (no one SKU around it) and one too wide for an A pack."""
    a = [("A", 0, 20, 50), ("A", 21, 41, 50)]
    after = ("A", 84, 104, 50)

    def names(*middle: tuple[str, int, int, int]) -> list[str | None]:
        return whole_packs(shelf(*a, *middle, after), CATALOG).products.sku

    assert names(("C", 42, 62, 20)) == ["A"] * 4
    assert names(("C", 42, 62, 20), ("C", 63, 83, 20)) == ["A"] * 5
    assert names(("C", 42, 62, 50)) == ["A", "A", "C", "A"]
    assert whole_packs(shelf(*a, ("C", 42, 62, 20), ("B", 64, 124, 80)), CATALOG).products.sku == [
        "A",
        "A",
        "C",
        "B",
    ]
    assert names(("C", 42, 82, 20)) == ["A", "A", "C", "A"]


def test_stacked_packs_stay_apart_and_a_packs_top_and_bottom_join() -> None:
    """Two A packs stacked (100 px together, two packs tall) are two products; a B pack
    found as its top and its bottom (80 px together) is one."""
    stacked = shelf(*A_PACKS, ("A", 70, 90, 50))
    top = Products(xyxy=np.array([[70, 90, 90, 140]]), shelf=np.array([1]), sku=["A"])
    stacked = stacked.with_products(Products.concat([stacked.products, top]))
    assert len(whole_packs(stacked, CATALOG).products) == 5
    split = shelf(*A_PACKS, ("B", 70, 130, 40))
    upper = Products(xyxy=np.array([[72, 110, 128, 150]]), shelf=np.array([1]), sku=["B"])
    split = split.with_products(Products.concat([split.products, upper]))
    out = whole_packs(split, CATALOG).products
    assert len(out) == 4 and out.xyxy[3].tolist() == [70, 110, 130, FLOOR]


def test_nothing_changes_without_pack_sizes_and_nothing_joins_across_shelves() -> None:
    """Without the catalog's widths (or three identified boxes) the scene stays as it is;
    pieces on two shelves never join."""
    scene = shelf(*A_PACKS, ("B", 70, 90, 60), ("B", 92, 110, 40))
    unsized = {k: CatalogItem(k, k, "X", "c", None, None) for k in CATALOG}
    assert len(whole_packs(scene, unsized).products) == 5
    assert len(whole_packs(shelf(("B", 70, 90, 60), ("B", 92, 110, 40)), CATALOG).products) == 2
    two = scene.products
    two.shelf[4] = 2
    scene.shelves.append(Shelf(2, 200, 290))
    assert len(whole_packs(scene, CATALOG).products) == 5
