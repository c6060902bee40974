"""SKU identification by colour signature and pack shape, on drawn packs."""

from __future__ import annotations

import numpy as np

from shelfwatch.core.scene import Products, Shelf, ShelfScene
from shelfwatch.planogram.sku import identify_skus, reference_signature

RED, BLUE = (40, 40, 220), (220, 60, 40)  # BGR


def _pack(colour: tuple[int, int, int], width: int, height: int) -> np.ndarray:
    """A packshot: the pack's colour with a white label band, on a grey border."""
    image = np.full((height + 20, width + 20, 3), 128, np.uint8)
    image[10:-10, 10:-10] = colour
    image[10 + height // 3 : 10 + height // 2, 10:-10] = 255
    return image


def _named(photo: np.ndarray, boxes: list[list[int]], signatures: list) -> list[str | None]:
    """The SKUs ``identify_skus`` gives boxes on one shelf of ``photo``."""
    scene = ShelfScene(
        width=photo.shape[1],
        height=photo.shape[0],
        shelves=[Shelf(1, 60, 240)],
        products=Products(xyxy=np.array(boxes), shelf=np.ones(len(boxes), int)),
    )
    return identify_skus(photo, scene, signatures).products.sku


def test_a_box_of_two_packs_side_by_side_is_still_its_sku() -> None:
    """A box the detector drew over two neighbouring packs of one SKU keeps the SKU (the
    shape test allows packs side by side); a box of one pack of a same-coloured SKU twice
    as wide is that wider SKU, and an unknown colour is no SKU."""
    signatures = [
        reference_signature("NARROW", _pack(RED, 50, 100), height_cm=20, width_cm=10),
        reference_signature("WIDE", _pack(RED, 100, 100), height_cm=20, width_cm=20),
        reference_signature("TALL", _pack(BLUE, 50, 100), height_cm=20, width_cm=10),
    ]
    photo = np.full((300, 600, 3), 90, np.uint8)
    photo[100:200, 0:50] = _pack(RED, 50, 100)[10:-10, 10:-10]  # one narrow pack
    photo[100:200, 100:200] = _pack(RED, 100, 100)[10:-10, 10:-10]  # one wide pack
    photo[100:200, 250:300] = _pack(BLUE, 50, 100)[10:-10, 10:-10]  # two blue packs
    photo[100:200, 300:350] = _pack(BLUE, 50, 100)[10:-10, 10:-10]
    photo[100:200, 400:450] = (40, 200, 40)  # a green pack nobody listed
    # The box on the blue pair is loose: it took in some of the fixture around them.
    boxes = [[0, 100, 50, 200], [100, 100, 200, 200], [240, 70, 360, 200], [400, 100, 450, 200]]
    assert _named(photo, boxes, signatures) == ["NARROW", "WIDE", "TALL", None]


def test_a_box_on_part_of_a_pack_is_still_its_sku() -> None:
    """Colour names the product, shape only chooses among like-coloured SKUs: a box the
    detector drew over a third of a wide pack (and some fixture above it) has the wrong
    shape for every SKU but is still that pack, not an unknown product."""
    signatures = [
        reference_signature("WIDE", _pack(BLUE, 150, 60), height_cm=12, width_cm=30),
        reference_signature("TALL", _pack(RED, 50, 100), height_cm=20, width_cm=10),
    ]
    photo = np.full((300, 600, 3), 90, np.uint8)
    photo[140:200, 100:250] = _pack(BLUE, 150, 60)[10:-10, 10:-10]
    assert _named(photo, [[100, 110, 150, 200]], signatures) == ["WIDE"]


def test_packs_of_one_colour_and_shape_are_told_apart_by_layout() -> None:
    """Two SKUs with the same colours in the same amounts and the same pack shape differ
    only in where their label band sits; a box that leaves out the pack's top (a bottle's
    neck) is still read right."""
    high, low = _pack(RED, 50, 120), _pack(RED, 50, 120)
    low[10:-10, 10:-10] = RED
    low[10 + 80 : 10 + 100, 10:-10] = 255  # the band as wide, lower down
    high[10:-10, 10:-10] = RED
    high[10 + 20 : 10 + 40, 10:-10] = 255
    signatures = [
        reference_signature("HIGH", high, height_cm=24, width_cm=10),
        reference_signature("LOW", low, height_cm=24, width_cm=10),
    ]
    photo = np.full((300, 600, 3), 90, np.uint8)
    photo[100:220, 100:150] = low[10:-10, 10:-10]
    photo[100:220, 300:350] = high[10:-10, 10:-10]
    boxes = [[100, 100, 150, 220], [300, 100, 350, 220], [100, 125, 150, 220]]
    assert _named(photo, boxes, signatures) == ["LOW", "HIGH", "LOW"]


def test_a_planned_sku_wins_a_near_tie_among_like_coloured_ones() -> None:
    """A box between two red SKUs' shapes (a pack drawn a little wide) is the planned one
    when the planogram lists it; a box clearly of the other's shape stays the other, listed
    or not; and a colour no catalog pack has stays unknown."""
    signatures = [
        reference_signature("NARROW", _pack(RED, 50, 100), height_cm=20, width_cm=10),
        reference_signature("WIDE", _pack(RED, 100, 100), height_cm=20, width_cm=20),
    ]
    photo = np.full((300, 600, 3), 90, np.uint8)
    photo[100:200, 100:175] = _pack(RED, 75, 100)[10:-10, 10:-10]  # between the two
    photo[100:200, 300:350] = _pack(RED, 50, 100)[10:-10, 10:-10]  # narrow, clearly
    photo[100:200, 400:450] = (40, 200, 40)
    boxes = [[100, 100, 175, 200], [300, 100, 350, 200], [400, 100, 450, 200]]
    scene = ShelfScene(
        width=600,
        height=300,
        shelves=[Shelf(1, 60, 240)],
        products=Products(xyxy=np.array(boxes), shelf=np.ones(3, int)),
    )
    assert _named(photo, boxes, signatures) == ["WIDE", "NARROW", None]
    named = identify_skus(photo, scene, signatures, planned={1: {"NARROW"}}).products.sku
    assert named == ["NARROW", "NARROW", None]
    named = identify_skus(photo, scene, signatures, planned={1: {"WIDE"}}).products.sku
    assert named == ["WIDE", "NARROW", None]


def test_a_sku_planned_on_the_boxs_own_shelf_wins_by_more_than_one_listed_elsewhere() -> None:
    """Two red SKUs of one shape, their label band high or in the middle; a pack whose band
    sits between (nearer the high one: similarity 0.53 against 0.38) is the middle SKU when
    the planogram puts that one on the box's shelf, and stays the high one when it lists the
    middle SKU only on another shelf of the fixture (the smaller prior); a pack clearly of
    the high SKU stays it whatever the shelf plans."""

    def pack(band_top: int) -> np.ndarray:
        image = _pack(RED, 50, 120)
        image[10:-10, 10:-10] = RED
        image[10 + band_top : 30 + band_top, 10:-10] = 255
        return image

    signatures = [
        reference_signature("HIGH", pack(20), height_cm=24, width_cm=10),
        reference_signature("MID", pack(60), height_cm=24, width_cm=10),
    ]
    photo = np.full((300, 600, 3), 90, np.uint8)
    photo[100:220, 100:150] = pack(36)[10:-10, 10:-10]  # between, nearer the high band
    photo[100:220, 300:350] = pack(20)[10:-10, 10:-10]  # clearly high
    boxes = [[100, 100, 150, 220], [300, 100, 350, 220]]
    scene = ShelfScene(
        width=600,
        height=300,
        shelves=[Shelf(1, 60, 240)],
        products=Products(xyxy=np.array(boxes), shelf=np.ones(2, int)),
    )
    assert _named(photo, boxes, signatures) == ["HIGH", "HIGH"]
    on_shelf = identify_skus(photo, scene, signatures, planned={1: {"MID"}}).products.sku
    assert on_shelf == ["MID", "HIGH"]
    elsewhere = identify_skus(photo, scene, signatures, planned={1: {"X"}, 2: {"MID"}})
    assert elsewhere.products.sku == ["HIGH", "HIGH"]
