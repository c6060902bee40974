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
    scene = ShelfScene(
        width=600,
        height=300,
        shelves=[Shelf(1, 90, 210)],
        products=Products(xyxy=np.array(boxes), shelf=np.ones(4, int)),
    )
    found = identify_skus(photo, scene, signatures)
    assert found.products.sku == ["NARROW", "WIDE", "TALL", None]
