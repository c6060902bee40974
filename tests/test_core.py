"""Core data model, masks and image loading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from shelfwatch.core.errors import BadInputError
from shelfwatch.core.imageio import load_image
from shelfwatch.core.masks import decode_rle, encode_rle, mask_area, rle_from_text, rle_to_text
from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene


def _products() -> Products:
    masks = [np.ones((10, 5), bool), np.zeros((4, 4), bool)]
    masks[1][1:3, 1:3] = True
    return Products(
        xyxy=np.array([[0, 0, 5, 10], [20, 5, 24, 9]]),
        scores=np.array([0.9, 0.5]),
        masks=masks,
        shelf=np.array([1, 2]),
        sku=["A", None],
    )


def test_products_select_and_concat() -> None:
    p = _products()
    picked = p[p.scores > 0.6]
    assert len(picked) == 1 and picked.sku == ["A"] and picked.masks[0].shape == (10, 5)
    both = Products.concat([picked, p[[1]]])
    assert len(both) == 2 and list(both.shelf) == [1, 2] and both.sku == ["A", None]
    assert len(Products.concat([])) == 0


def test_products_rejects_mismatched_masks() -> None:
    with pytest.raises(ValueError):
        Products(xyxy=np.zeros((2, 4)), scores=np.zeros(2), masks=[np.zeros((1, 1), bool)])


def test_products_carry_their_source() -> None:
    """Each product says what put it there: the detector unless told, kept through
    selection and concatenation; a word outside ``SOURCES`` or a column of another length
    is refused."""
    p = _products()
    assert p.source == ["detector", "detector"]
    confirmed = Products(xyxy=np.zeros((1, 4)), source=["planogram"])
    both = Products.concat([p[[1]], confirmed])
    assert both.source == ["detector", "planogram"] and both[[1]].source == ["planogram"]
    with pytest.raises(ValueError, match="unknown product source 'guess'"):
        Products(xyxy=np.zeros((1, 4)), source=["guess"])
    with pytest.raises(ValueError, match="2 sources for 1 boxes"):
        Products(xyxy=np.zeros((1, 4)), source=["detector", "detector"])


def test_full_mask_places_crop_in_image() -> None:
    full = _products().full_mask(1, 30, 30)
    assert full.sum() == 4 and full[6:8, 21:23].all()


def test_counts_and_json_contract() -> None:
    scene = ShelfScene(
        width=40,
        height=30,
        shelves=[Shelf(1, 0, 12), Shelf(2, 12, 30)],
        products=_products(),
        gaps=[Gap(2, (10, 12, 18, 30))],
        backend="x",
    )
    counts = scene.counts()
    assert counts == {
        "products": 2,
        "gaps": 1,
        "per_shelf": {"1": 1, "2": 1},
        "per_sku": {"A": 1, "unknown": 1},
    }
    record = scene.to_json("p.jpg")
    assert {"image", "width", "height", "shelves", "products", "gaps", "counts"} <= set(record)
    assert record["products"][0] == {
        "bbox": [0, 0, 5, 10],
        "score": 0.9,
        "shelf": 1,
        "sku": "A",
        "source": "detector",
    }
    assert record["gaps"][0]["width_px"] == 8 and record["gaps"][0]["shelf"] == 2
    assert record["shelves"] == [
        {"index": 1, "y1": 0, "y2": 12, "x1": 0, "x2": 40, "bay": 1},
        {"index": 2, "y1": 12, "y2": 30, "x1": 0, "x2": 40, "bay": 1},
    ]
    bays = replace(scene, shelves=[Shelf(1, 0, 12, 0, 18, bay=1), Shelf(2, 0, 14, 18, 40, bay=2)])
    assert [(s["x1"], s["x2"], s["bay"]) for s in bays.to_json("p.jpg")["shelves"]] == [
        (0, 18, 1),
        (18, 40, 2),
    ]


def test_rle_round_trip() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.7
    rle = rle_from_text(rle_to_text(encode_rle(mask)))
    assert np.array_equal(decode_rle(rle), mask)
    assert mask_area(rle) == int(mask.sum())


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.shape[:2] == (80, 40)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"not an image at all", "not an image"), (None, "no such file")],
)
def test_load_image_bad_input(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=reason):
        load_image(path)


def test_load_image_truncated_and_tiny(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.full((200, 300, 3), 128, np.uint8))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(BadInputError):
        load_image(truncated)
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadInputError, match="too small"):
        load_image(tiny)


def test_a_scene_scaled_to_a_resized_photo() -> None:
    edge = (0, 11, 40, 13)
    scene = ShelfScene(
        width=40,
        height=30,
        shelves=[Shelf(1, 0, 12, 0, 40, edge_y=12, edge=edge), Shelf(2, 12, 30, 0, 40)],
        products=_products(),
        gaps=[Gap(2, (10, 12, 18, 30))],
    )
    big = scene.scaled(2)
    assert (big.width, big.height) == (80, 60)
    assert big.products.xyxy.tolist() == [[0, 0, 10, 20], [40, 10, 48, 18]]
    assert [m.shape for m in big.products.masks] == [(20, 10), (8, 8)]
    # The second mask's 2x2 centre is a 4x4 centre at twice the size.
    assert (
        big.products.full_mask(1, 60, 80).sum() == 16
        and big.products.full_mask(1, 60, 80)[12:16, 42:46].all()
    )
    assert (big.shelves[0].y2, big.shelves[0].x2, big.shelves[0].edge_y) == (24, 80, 24)
    assert big.shelves[0].edge == (0, 22, 80, 26) and big.shelves[1].edge is None
    assert big.gaps[0].bbox == (20, 24, 36, 60) and big.gaps[0].shelf == 2
    assert big.products.sku == ["A", None] and big.products.shelf.tolist() == [1, 2]
    back = big.scaled(0.5)
    assert back.products.xyxy.tolist() == scene.products.xyxy.tolist()
    assert all(
        (a == b).all() for a, b in zip(back.products.masks, scene.products.masks, strict=True)
    )
    assert back.shelves == scene.shelves and back.gaps == scene.gaps
    assert scene.products.xyxy.tolist() == [[0, 0, 5, 10], [20, 5, 24, 9]]  # not changed
