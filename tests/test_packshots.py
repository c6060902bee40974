"""Runs of packs located by the catalog's packshot."""

from __future__ import annotations

import cv2
import numpy as np

from shelfwatch.core.scene import ShelfScene
from shelfwatch.planogram.formats import CatalogItem
from shelfwatch.planogram.packshots import located_packs
from shelfwatch.planogram.sku import reference_signature
from tests.scenes import FLOOR, one_shelf

# Five px per cm: T packs are 60 px wide and 80 px tall, B packs 20 x 50.
CATALOG = {
    "T": CatalogItem("T", "t", "BrandX", "c", 12, 16),
    "B": CatalogItem("B", "b", "BrandY", "c", 4, 10),
}
T_PACKS = [(20 + 60 * k, 20 + 60 * (k + 1)) for k in range(4)]  # touching, no seam drawn
B_PACKS = [(280, 300), (300, 320), (320, 340)]


def draw_t(canvas: np.ndarray, x1: int, y1: int, w: int, h: int, band: bool = True) -> None:
    """A T pack: blue body, a light band across it (it runs on across touching packs, as a
    wide pack's print does), a dark disc below the band and a dark corner mark."""
    canvas[y1 : y1 + h, x1 : x1 + w] = (190, 120, 60)
    if band:
        canvas[y1 + h // 4 : y1 + h // 2, x1 : x1 + w] = (235, 225, 200)
    cv2.circle(canvas, (x1 + w // 2, y1 + 3 * h // 4), max(2, w // 6), (60, 40, 30), -1)
    canvas[y1 + h // 16 : y1 + h // 6, x1 + w // 10 : x1 + w // 3] = (40, 30, 20)


def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.full((200, 400, 3), 70, np.uint8)
    for x1, x2 in T_PACKS:
        draw_t(image, x1, FLOOR - 80, x2 - x1, 80)
    for x1, x2 in B_PACKS:
        image[FLOOR - 50 : FLOOR, x1:x2] = (40, 160, 220)
        image[FLOOR - 40 : FLOOR - 30, x1 + 3 : x2 - 3] = (250, 250, 250)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def packshot(draw: bool = True) -> np.ndarray:
    """The catalog's image of a T pack, drawn larger on a white ground (or a checkerboard
    pack of the same size where ``draw`` is False: a packshot that looks otherwise)."""
    image = np.full((220, 160, 3), 255, np.uint8)
    if draw:
        draw_t(image, 20, 30, 120, 160)
    else:
        tiles = (np.indices((160, 120)).sum(axis=0) // 20) % 2
        image[30:190, 20:140] = np.where(tiles[..., None] == 1, 30, 200).astype(np.uint8)
    return image


def scene(*boxes: tuple[str | None, int, int, int, int]) -> ShelfScene:
    """One shelf of boxes given as (sku, x1, y1, x2, y2), each with a full mask."""
    xyxy = np.array([b[1:] for b in boxes]).reshape(-1, 4)
    masks = [np.ones((y2 - y1, x2 - x1), bool) for x1, y1, x2, y2 in xyxy]
    return one_shelf(xyxy, [b[0] for b in boxes], masks, 40)


# The detector boxed the T packs' band in three pieces that straddle the seams (three boxes
# on four packs) and the B packs one each, which give the photo's scale.
PIECES = [("T", 20, 128, 95, 152), ("T", 105, 128, 190, 152), ("T", 195, 128, 255, 152)]
B_BOXES = [("B", x1, FLOOR - 50, x2, FLOOR) for x1, x2 in B_PACKS]


def signatures(draw: bool = True) -> list:
    return [
        reference_signature("T", packshot(draw), 16, 12),
        reference_signature("B", np.full((60, 30, 3), 255, np.uint8), 10, 4),
    ]


def t_boxes(s: ShelfScene) -> np.ndarray:
    p = s.products
    return p.xyxy[[i for i in range(len(p)) if p.sku[i] == "T"]]


def test_pieces_of_a_run_become_the_packs_the_packshot_finds() -> None:
    before = scene(*PIECES, *B_BOXES)
    after = located_packs(photo(), before, CATALOG, signatures())
    found = t_boxes(after)
    assert len(found) == 4  # one product per pack, not per piece
    for (x1, x2), box in zip(T_PACKS, found, strict=True):
        assert abs(box[0] - x1) <= 6 and abs(box[2] - x2) <= 6
        assert abs(box[1] - (FLOOR - 80)) <= 6 and abs(box[3] - FLOOR) <= 6  # not its band
    p = after.products
    assert p.masks is not None
    assert all(p.masks[i].shape == (b[3] - b[1], b[2] - b[0]) for i, b in enumerate(p.xyxy))
    t = [i for i in range(len(p)) if p.sku[i] == "T"]
    assert np.allclose(p.scores[t], before.products.scores[:3].max())
    assert list(p.shelf[t]) == [1] * 4
    # The packs are the packshot's, the B boxes still the detector's.
    assert [p.source[i] for i in range(len(p))] == [
        "packshot" if p.sku[i] == "T" else "detector" for i in range(len(p))
    ]
    assert np.array_equal(t_boxes(located_packs(photo(), before, CATALOG, [])), t_boxes(before))


def test_a_packshot_that_looks_otherwise_changes_nothing() -> None:
    before = scene(*PIECES, *B_BOXES)
    after = located_packs(photo(), before, CATALOG, signatures(draw=False))
    assert np.array_equal(after.products.xyxy, before.products.xyxy)


def test_without_the_photos_scale_nothing_changes() -> None:
    before = scene(*PIECES[:2])  # two identified boxes give no scale
    after = located_packs(photo(), before, CATALOG, signatures())
    assert np.array_equal(after.products.xyxy, before.products.xyxy)


def test_a_run_whose_packs_would_cover_another_skus_box_is_left_alone() -> None:
    # A small box of another SKU on the second pack splits the run; the packs located for the
    # run would cover it, so the run stays as it was seen. (An unknown box there is a piece
    # of the pack: see the tests of unknown pieces below.)
    other = ("B", 120, 120, 135, 135)
    before = scene(PIECES[0], other, *PIECES[1:], *B_BOXES)
    after = located_packs(photo(), before, CATALOG, signatures())
    assert np.array_equal(t_boxes(after), t_boxes(before))


def test_unknown_pieces_among_a_run_are_taken_in_with_it() -> None:
    # The middle piece's colours passed for no catalog pack: it is a piece of the packs all
    # the same, so the run with it becomes the four packs and no unknown box is left.
    middle = (None, *PIECES[1][1:])
    before = scene(PIECES[0], middle, PIECES[2], *B_BOXES)
    after = located_packs(photo(), before, CATALOG, signatures())
    found = t_boxes(after)
    assert len(found) == 4
    for (x1, x2), box in zip(T_PACKS, found, strict=True):
        assert abs(box[0] - x1) <= 6 and abs(box[2] - x2) <= 6
    assert None not in after.products.sku


def test_the_last_pack_is_found_where_the_runs_boxes_stop_short_of_it() -> None:
    # The last piece lies on the fourth pack's left quarter: the pack's centre is within reach
    # of the boxes, and so must be its right edge for the packshot to match there.
    short = [*PIECES[:2], ("T", 195, 128, 215, 152)]
    after = located_packs(photo(), scene(*short, *B_BOXES), CATALOG, signatures())
    found = t_boxes(after)
    assert len(found) == 4
    assert abs(found[-1][2] - T_PACKS[-1][1]) <= 6


def test_an_unknown_piece_among_as_many_boxes_as_packs_is_named_by_them() -> None:
    # One box a pack, the second one's colours passing for no catalog pack: the count is
    # right, but the packs the packshot locates name the unknown box as the run's SKU.
    boxes = [("T", x1 + 5, 128, x2 - 5, 152) for x1, x2 in T_PACKS]
    boxes[1] = (None, *boxes[1][1:])
    after = located_packs(photo(), scene(*boxes, *B_BOXES), CATALOG, signatures())
    assert len(t_boxes(after)) == 4
    assert None not in after.products.sku
