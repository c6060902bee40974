"""The default OpenCV backend on rendered photos, SKU identification and bad photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from shelfwatch.bench.accuracy import score_rendered
from shelfwatch.cli import app
from shelfwatch.core.imageio import load_image
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.vision.registry import get_segmenter


@pytest.fixture(scope="module")
def scored(rendered: Path) -> dict[str, object]:
    """The default backend, with SKU labels, over the rendered set, scored."""
    return score_rendered(rendered, get_segmenter("opencv")).summary()


def test_products_found_on_renders(scored: dict[str, object]) -> None:
    assert scored["precision"] >= 0.95, scored
    assert scored["recall"] >= 0.95, scored
    assert scored["count_mape"] <= 5.0  # percent


def test_shelf_rows_on_renders(scored: dict[str, object]) -> None:
    assert scored["shelf_rows_exact"] >= 0.95


def test_gaps_on_renders(scored: dict[str, object]) -> None:
    assert scored["gap_f1"] >= 0.85, scored


def test_sku_identification_on_renders(scored: dict[str, object]) -> None:
    assert scored["sku_accuracy"] >= 0.9


def test_gap_sizes_use_fixture_width(rendered: Path) -> None:
    truth = json.loads((rendered / "truth.json").read_text())
    name, t = next((n, t) for n, t in truth.items() if t["gaps"])
    scene = analyze(
        load_image(rendered / "images" / name),
        get_segmenter("opencv"),
        FixtureContext(width_cm=100),
    )
    assert scene.gaps, "a rendered gap was not found"
    for g in scene.gaps:
        assert g.width_cm is not None and g.width_cm > 2
        assert g.missing_facings is not None and g.missing_facings >= 1


def _photo(rendered: Path) -> np.ndarray:
    return load_image(next((rendered / "images").iterdir()))


@pytest.mark.parametrize("kind", ["dark", "blurred", "tiny", "panorama", "rotated", "flat"])
def test_hard_photos_never_crash_and_flag_low_confidence(rendered: Path, kind: str) -> None:
    img = _photo(rendered)
    if kind == "dark":
        img = (img * 0.12).astype(np.uint8)
    elif kind == "blurred":
        img = cv2.GaussianBlur(img, (0, 0), 8)
    elif kind == "tiny":
        img = cv2.resize(img, (48, 52))
    elif kind == "panorama":
        img = cv2.resize(img, (img.shape[1] * 5, img.shape[0]))  # a stitched wide bay
    elif kind == "rotated":
        img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    else:
        img = np.full((600, 800, 3), 90, np.uint8)
    scene = get_segmenter("opencv").segment(img)
    assert scene.width == img.shape[1] and scene.height == img.shape[0]
    for box in scene.products.xyxy:
        assert 0 <= box[0] <= box[2] <= img.shape[1] and 0 <= box[1] <= box[3] <= img.shape[0]
    if kind in ("dark", "blurred", "flat", "rotated"):
        assert scene.quality["low_confidence"], scene.quality
    if kind == "panorama":
        assert len(scene.shelves) >= 3


def test_shelf_edge_strip_is_the_rail_not_the_product_tops_above_it() -> None:
    """A rail (two full-width lines, a plain band between) and, just above it, the top line
    of a row of products across 60 % of the width: the strip is the rail's rows only."""
    from shelfwatch.vision.shelves import find_shelf_edges

    gray = np.full((600, 800), 60, np.uint8)
    for y_rail in (200, 420):
        gray[y_rail - 14 : y_rail, 160:640] = 150  # product fronts: a weaker, shorter line
        gray[y_rail : y_rail + 16, :] = 230  # the rail strip, full width
    rails = [e for e in find_shelf_edges(gray) if 150 < e.y_top < 450]
    assert len(rails) == 2
    for edge, y_rail in zip(rails, (200, 420), strict=True):
        assert abs(edge.y_top - y_rail) <= 3 and abs(edge.y_bottom - (y_rail + 16)) <= 3


def test_product_rows_split_a_merged_zone_and_add_a_missed_shelf() -> None:
    """Rows of detected products correct the edge finder: a zone spanning two rows of
    products becomes two shelves, a row no zone covers is added, an agreeing zone stays."""
    from shelfwatch.vision.shelves import ShelfEdge, merge_rows, product_rows

    def row(y_bottom: int, x0: int, n: int = 7) -> list[list[int]]:
        return [[x0 + 60 * k, y_bottom - 100, x0 + 60 * k + 50, y_bottom] for k in range(n)]

    boxes = np.array(row(200, 0) + row(320, 0) + row(600, 0) + row(450, 700), dtype=float)
    rows = product_rows(boxes)
    assert [r.y_top for r in rows] == [200, 320, 450, 600]
    assert (rows[2].x1, rows[2].x2) == (700, 1110)  # the other bay's row
    merged_zone = (90, 330, ShelfEdge(330, 340, 0, 600, 1.0))  # missed the edge at 200
    agreeing = (480, 605, ShelfEdge(605, 615, 0, 600, 1.0))
    zones = merge_rows([merged_zone, agreeing], rows)
    assert [(z[0], z[2].y_top) for z in zones] == [(100, 200), (220, 320), (350, 450), (480, 605)]
    assert zones[-1][2] is agreeing[2]
    assert product_rows(boxes[:2]) == []  # two products are not a row
    # Nor are four in line among many (under six products' width: price tags, a side bay).
    short = np.array(row(200, 0, 4) + row(600, 0, 28), dtype=float)
    assert [r.y_top for r in product_rows(short)] == [600]


def test_an_edge_products_stand_across_is_no_shelf_edge() -> None:
    """A long line through a row of packs (their label band) split one shelf level into two
    zones: the products stand across it, so the zones are one; an edge the products stand on
    stays. Boxes that stopped at the label band made a second row inside the level: it is
    not a second shelf (but rows side by side are two bays' levels, each kept)."""
    from shelfwatch.vision.shelves import ShelfEdge, merge_rows, product_rows

    packs = np.array([[60 * k, 250, 60 * k + 50, 400] for k in range(10)], dtype=float)
    label = (100, 290, ShelfEdge(290, 292, 0, 600, 1.0))  # a line 40 px below the packs' tops
    shelf = (293, 400, ShelfEdge(400, 410, 0, 600, 1.0))
    zones = merge_rows([label, shelf], product_rows(packs), packs)
    assert [(z[0], z[2].y_top) for z in zones] == [(100, 400)]
    standing = merge_rows([shelf], product_rows(packs), packs)
    assert [(z[0], z[2].y_top) for z in standing] == [(293, 400)]

    # Some packs' boxes stopped at their label band (bottoms at 330): one level still.
    short = packs.copy()
    short[::2, 3] = 330
    zone = (100, 400, ShelfEdge(400, 410, 0, 600, 1.0))
    assert [(z[0], z[2].y_top) for z in merge_rows([zone], product_rows(short), short)] == [
        (100, 400)
    ]
    # Two bays side by side whose levels sit at other heights are two rows.
    left = np.array([[60 * k, 180, 60 * k + 50, 330] for k in range(7)], dtype=float)
    right = np.array([[500 + 60 * k, 250, 550 + 60 * k, 400] for k in range(7)], dtype=float)
    both = np.concatenate([left, right])
    wide = (100, 400, ShelfEdge(400, 410, 0, 1000, 1.0))
    assert [z[2].y_top for z in merge_rows([wide], product_rows(both), both)] == [330, 400]


def _bay(gray: np.ndarray, x1: int, x2: int, rails: list[int]) -> None:
    """Draw a bay: rails (plain bands), packs of varied shades standing on them."""
    rng = np.random.default_rng(x1)
    for y in rails:
        for px in range(x1 + 10, x2 - 60, 70):
            gray[y - int(rng.integers(50, 90)) : y, px : px + 60] = int(rng.integers(90, 200))
        gray[y : y + 16, x1:x2] = 230


def test_bays_with_shelves_at_their_own_heights() -> None:
    """Two bays side by side, shelves at different heights: each bay gets its own edges; one
    bay across the photo (and two bays at equal heights) stay a single bay."""
    from shelfwatch.vision.shelves import find_bays, find_shelf_edges

    two = np.full((900, 1200), 60, np.uint8)
    _bay(two, 0, 600, [150, 350, 550, 750])
    _bay(two, 600, 1200, [240, 460, 680, 860])
    bays = find_bays(two)
    assert len(bays) == 2 and bays[0].x2 == bays[1].x1
    assert 400 <= bays[0].x2 <= 800
    for bay, rails in zip(bays, ([150, 350, 550, 750], [240, 460, 680, 860]), strict=True):
        assert [e.y_top for e in bay.edges] == pytest.approx(rails, abs=4)
        assert all(bay.x1 <= e.x1 and e.x2 <= bay.x2 for e in bay.edges)
    level = np.full((900, 1200), 60, np.uint8)
    _bay(level, 0, 600, [150, 350, 550, 750])
    _bay(level, 600, 1200, [150, 350, 550, 750])
    (single,) = find_bays(level)
    assert (single.x1, single.x2) == (0, 1200)
    assert single.edges == find_shelf_edges(level)


def test_the_detectors_shelf_edge_lines_make_the_bays_and_their_edges() -> None:
    """Where the detector draws shelf-edge lines, bays and edges come from those lines, not
    from the photo's own horizontal edges (here a flat grey photo with none)."""
    from shelfwatch.vision.shelves import find_bays

    lines = np.zeros((900, 1200), np.uint8)
    for y in (150, 350, 550, 750):
        lines[y - 3 : y + 4, 20:590] = 1
    for y in (240, 460, 680, 860):
        lines[y - 3 : y + 4, 610:1180] = 1
    flat = np.full((900, 1200), 60, np.uint8)
    assert all(not bay.edges for bay in find_bays(flat))
    bays = find_bays(flat, lines=lines)
    assert len(bays) == 2 and 400 <= bays[0].x2 <= 800
    for bay, rails in zip(bays, ([150, 350, 550, 750], [240, 460, 680, 860]), strict=True):
        assert [e.y_bottom for e in bay.edges] == pytest.approx(rails, abs=3)


def test_a_level_seen_on_part_of_its_bay_spans_the_bay() -> None:
    """A shelf edge the photo shows on part of the bay only (packs overhang it, the side of
    the photo is dim) is still one shelf across the bay: a product standing on it beyond
    the seen strip is on it, not on the shelf above."""
    from shelfwatch.vision.zones import shelf_of, shelf_zones, shelves_of

    lines = np.zeros((900, 1200), np.uint8)
    for y in (150, 350, 550):
        lines[y - 3 : y + 4, 20:1180] = 1
    lines[747:754, 600:1180] = 1  # the lowest edge seen on the right half only
    zones = shelf_zones(np.full((900, 1200), 60, np.uint8), lines=lines)
    assert len({z.bay for z in zones}) == 1 and len({z.shelf for z in zones}) == 4
    ((x1, x2),) = {(z.x1, z.x2) for z in zones}
    assert x1 < 100 and x2 > 1100
    assert zones[-1].edge.x1 > 550  # the strip stays where it was seen
    assert {(s.x1, s.x2) for s in shelves_of(zones)} == {(x1, x2)}
    left_low = np.array([[100, 600, 160, 745], [100, 400, 160, 545]])
    assert shelf_of(left_low, zones).tolist() == [4, 3]


def test_learned_edges_take_the_photos_own_strips() -> None:
    """The shelf-edge net says which shelves there are; the photo's own edge strip on its
    line says where exactly; a strip across the whole bay that the net missed stays, a
    partial one it did not see goes."""
    from shelfwatch.vision.shelves import ShelfEdge, snap_edges

    learned = [
        ShelfEdge(103, 103, 0, 900, 0.5),  # on a strip of the photo
        ShelfEdge(300, 300, 0, 900, 0.8),  # on none, across most of the bay
        ShelfEdge(400, 400, 0, 900, 0.5),  # on none, across half of it
    ]
    own = [
        ShelfEdge(98, 108, 0, 1000, 0.5),  # under the first learned line
        ShelfEdge(500, 510, 0, 1000, 0.95),  # a clean full-width edge the net missed
        ShelfEdge(700, 705, 0, 1000, 0.5),  # a partial line the net did not take for one
    ]
    assert snap_edges(learned, own, 1000) == [own[0], learned[1], own[1]]


def test_learned_lines_need_no_strip_where_the_photo_shows_none() -> None:
    """A weak learned line with no strip under it is doubted where the photo's strips lie
    under the bay's other lines (a large pack's print on a clean fixture); where they lie
    under none (rails hidden by packs, a dim cooler) their absence says nothing."""
    from shelfwatch.vision.shelves import ShelfEdge, snap_edges

    learned = [ShelfEdge(y, y, 0, 900, 0.5) for y in (200, 500, 800)]
    assert snap_edges(learned, [], 1000) == learned
    own = [ShelfEdge(y - 5, y + 5, 0, 1000, 0.5) for y in (200, 500)]
    assert snap_edges(learned, own, 1000) == own


def test_bays_at_equal_heights_are_divided_at_their_uprights() -> None:
    """Three bays whose shelves sit at the same heights, dark uprights between them: three
    bays (each after the first starts at an upright), their own edges, and shelves reported
    per bay; price tags breaking single rails at scattered columns divide nothing."""
    from shelfwatch.vision.opencv_backend import detect_shelves
    from shelfwatch.vision.shelves import find_bays

    rails = [150, 350, 550, 750]
    three = np.full((900, 1200), 60, np.uint8)
    for x1, x2 in ((0, 390), (410, 790), (810, 1200)):
        _bay(three, x1, x2, rails)
    bays = find_bays(three)
    assert [b.after_upright for b in bays] == [False, True, True]
    assert [b.x1 for b in bays[1:]] == pytest.approx([400, 800], abs=15)
    for bay in bays:
        assert [e.y_top for e in bay.edges] == pytest.approx(rails, abs=4)
    shelves = detect_shelves(cv2.cvtColor(three, cv2.COLOR_GRAY2BGR))
    assert sorted({s.bay for s in shelves}) == [1, 2, 3] and len(shelves) == 12
    tagged = np.full((900, 1200), 60, np.uint8)
    _bay(tagged, 0, 1200, rails)
    for y, x in zip(rails, (300, 520, 760, 980), strict=True):
        tagged[y : y + 16, x : x + 20] = 60  # a tag breaks one rail, each somewhere else
    (single,) = find_bays(tagged)
    assert (single.x1, single.x2, single.after_upright) == (0, 1200, False)


def test_uprights_are_found_on_the_photos_strips_under_learned_lines() -> None:
    """The shelf-edge net draws each shelf's line straight through the uprights; the photo's
    own rails break there, and the bays are divided at those breaks."""
    from shelfwatch.vision.shelves import find_bays

    rails = [150, 350, 550, 750]
    three = np.full((900, 1200), 60, np.uint8)
    for x1, x2 in ((0, 390), (410, 790), (810, 1200)):
        _bay(three, x1, x2, rails)
    lines = np.zeros_like(three)
    for y in rails:
        lines[y : y + 3, :] = 1  # across the whole photo, uprights included
    bays = find_bays(three, lines=lines)
    assert [b.after_upright for b in bays] == [False, True, True]
    assert [b.x1 for b in bays[1:]] == pytest.approx([400, 800], abs=15)
    for bay in bays:
        assert [e.y_top for e in bay.edges] == pytest.approx(rails, abs=4)


def test_a_tall_top_level_does_not_hide_the_shelves_below() -> None:
    """Pegboard hooks over a fixture make one tall level; the shelves under it are of the
    usual height and are all kept (a zone is short against the typical level, not the
    tallest)."""
    from shelfwatch.vision.opencv_backend import detect_shelves

    gray = np.full((1000, 900), 60, np.uint8)
    gray[40:420, :] = 140  # a plain pegboard panel
    _bay(gray, 0, 900, [420, 560, 700, 840])
    shelves = detect_shelves(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    edges = sorted(s.edge_y for s in shelves)
    assert len(edges) >= 4
    for rail in (560, 700, 840):
        assert any(abs(e - rail) <= 6 for e in edges), edges


def test_weak_voids_that_agree_are_a_gap_and_a_lone_weak_one_is_not() -> None:
    """Hysteresis: a wide empty stretch draws several weak void centres; one weak void alone
    is no gap."""
    from shelfwatch.core.scene import Products
    from shelfwatch.vision.gaps import void_gaps

    voids = np.array(
        [[100, 50, 180, 150], [160, 50, 240, 150], [220, 50, 300, 150], [100, 250, 180, 350]],
        float,
    )
    scores = np.array([0.15, 0.16, 0.15, 0.16])
    shelf = np.array([1, 1, 1, 2])
    none = Products(xyxy=np.zeros((0, 4)), scores=np.zeros(0), shelf=np.zeros(0, int))
    gaps = void_gaps(voids, scores, shelf, none, [])
    assert [(g.shelf, g.bbox) for g in gaps] == [(1, (100, 50, 300, 150))]
    # One sure void is enough.
    gaps = void_gaps(voids[3:], np.array([0.3]), shelf[3:], none, [])
    assert [g.shelf for g in gaps] == [2]
    # Unless it is the space above a short product standing in its bottom quarter.
    short = Products(xyxy=np.array([[95, 300, 185, 350]]), scores=np.ones(1), shelf=np.array([2]))
    assert void_gaps(voids[3:], np.array([0.3]), shelf[3:], short, []) == []


def test_a_gap_reaches_the_products_beside_it_but_not_over_a_missed_one() -> None:
    """A void box about one facing wide is carried over the plain back up to the products
    either side; an undetected product stops it (a miss never becomes a gap)."""
    from shelfwatch.vision.facings import Fixture

    image = np.full((200, 600, 3), 90, np.uint8)
    rng = np.random.default_rng(0)
    image += rng.integers(0, 6, image.shape, dtype=np.uint8)  # the back's grain
    for x1, x2, colour in ((20, 80, (30, 160, 220)), (300, 360, (200, 60, 40))):
        image[40:180, x1:x2] = colour
    image[40:180, 440:500] = (40, 200, 60)  # a product the detector missed
    fixture = Fixture.of(image)
    # The texture map is blurred, so a neighbour's edge stops the gap a few pixels early.
    x1, _, x2, _ = fixture.widen_gap((150, 40, 200, 180), left=80, right=300)
    assert 80 <= x1 <= 92 and 288 <= x2 <= 300
    x1, _, x2, _ = fixture.widen_gap((380, 40, 420, 180), left=360, right=600)
    assert 360 <= x1 <= 372 and 424 <= x2 <= 440  # short of the missed product


def _shelf_of_packs(xs: list[int], seed: int) -> tuple[np.ndarray, object, list]:
    """A 900 px shelf on a plain noisy back: 60 px packs at ``xs``, its edge at 200-216;
    the photo, the packs as detected products and the shelf's zone."""
    from shelfwatch.core.scene import Products
    from shelfwatch.vision.shelves import ShelfEdge
    from shelfwatch.vision.zones import Zone

    image = np.full((240, 900, 3), 90, np.uint8)
    image += np.random.default_rng(seed).integers(0, 6, image.shape, dtype=np.uint8)
    for x in xs:
        image[60:200, x : x + 60] = (30, 160, 220)
    image[200:216] = 230  # the shelf edge
    products = Products(
        xyxy=np.array([[x, 60, x + 60, 200] for x in xs]),
        scores=np.ones(len(xs)),
        shelf=np.ones(len(xs), int),
    )
    zones = [
        Zone(
            top=30, bottom=200, edge=ShelfEdge(200, 216, 0, 900, 1.0), bay=1, shelf=1, x1=0, x2=900
        )
    ]
    return image, products, zones


def test_a_bare_stretch_between_products_is_a_gap_and_a_missed_product_is_not() -> None:
    """A stretch of the plain back at least a facing wide between two products, where the
    void head saw something under its gap threshold, is a gap; the same stretch holding a
    product the detector missed (colour, print) is none, nor is one the void head saw
    nothing in."""
    from shelfwatch.core.scene import Gap
    from shelfwatch.vision.facings import Fixture
    from shelfwatch.vision.gaps import bare_stretches

    xs = [20, 90, 160, 400, 470, 540, 610, 680, 750, 820]  # 90 px between each
    image, products, zones = _shelf_of_packs(xs, seed=0)
    image[60:200, 250:310] = (40, 200, 60)  # a missed product in the first stretch
    cv2.putText(image, "OAT", (255, 140), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    fixture = Fixture.of(image)
    back = fixture.back_lab([(0, 30, 900, 200)])
    weak_void = np.array([[280, 60, 340, 200]], float)  # a void centre under the threshold
    assert bare_stretches(products, zones, fixture, back, [], weak_void) == []
    image[60:200, 250:310] = image[60:200, 320:380]  # now that stretch is bare
    fixture = Fixture.of(image)
    gaps = bare_stretches(products, zones, fixture, back, [], weak_void)
    assert [(g.shelf, g.bbox) for g in gaps] == [(1, (220, 30, 400, 200))]
    assert bare_stretches(products, zones, fixture, back, [], weak_void + 500) == []
    # A stretch a void gap already covers is not reported again.
    covered = [Gap(1, (230, 40, 380, 200))]
    assert bare_stretches(products, zones, fixture, back, covered, weak_void) == []


def test_the_body_of_a_pack_boxed_at_its_print_is_no_gap() -> None:
    """A box over a gap's columns that ends in its upper part, the gap coloured as the box's
    pack, is a tall pack the detector boxed at its label: the void under the box is the rest
    of the pack. Under a box that ends over the bare back, the gap stays."""
    from shelfwatch.core.scene import Gap, Products
    from shelfwatch.vision.facings import Fixture
    from shelfwatch.vision.gaps import without_pack_bodies

    image, products, _ = _shelf_of_packs([20, 90, 160, 560, 630], seed=2)
    image[60:200, 300:380] = (40, 140, 150)  # a tall olive pack
    image[95:125, 300:380] = (160, 40, 200)  # its magenta label
    boxed = np.array([[300, 60, 380, 140]])  # the detector's box: the label and above
    products = Products(
        xyxy=np.concatenate([products.xyxy, boxed]),
        scores=np.ones(6),
        shelf=np.ones(6, int),
    )
    fixture = Fixture.of(image)
    back = fixture.back_lab([(0, 30, 900, 200)])
    gap = Gap(1, (296, 110, 384, 200))  # what the void head saw under the box
    assert without_pack_bodies([gap], products, fixture, back) == []
    image[140:200, 300:380] = image[140:200, 440:520]  # now the back shows under the box
    fixture = Fixture.of(image)
    assert without_pack_bodies([gap], products, fixture, back) == [gap]
    # A gap beside the box, not under it, is not judged by it.
    beside = Gap(1, (400, 60, 540, 200))
    assert without_pack_bodies([beside], products, fixture, back) == [beside]


def test_one_long_gap_under_a_row_of_packs_boxed_at_their_print_is_no_gap() -> None:
    """Three tall packs side by side, each boxed at its label and above, read as one long
    gap under them: no box lies over half of it, together they lie over most of it, so it
    is their bodies. The label is most of each box, so the pack's colour is the box's
    foot's. Where the back shows under two of the three, the gap stays."""
    from shelfwatch.core.scene import Gap, Products
    from shelfwatch.vision.facings import Fixture
    from shelfwatch.vision.gaps import without_pack_bodies

    image, products, _ = _shelf_of_packs([20, 90, 160, 560, 630], seed=3)
    plain = image.copy()
    boxes = []
    for x in (240, 330, 420):
        image[60:200, x : x + 80] = (40, 140, 150)  # a tall olive pack
        image[75:128, x : x + 80] = (160, 40, 200)  # its magenta label, most of the box
        boxes.append([x, 60, x + 80, 140])  # the detector's box: the label and above
    products = Products(
        xyxy=np.concatenate([products.xyxy, np.array(boxes)]),
        scores=np.ones(8),
        shelf=np.ones(8, int),
    )
    fixture = Fixture.of(image)
    back = fixture.back_lab([(0, 30, 900, 200)])
    gap = Gap(1, (236, 110, 504, 200))  # one gap under all three boxes
    assert without_pack_bodies([gap], products, fixture, back) == []
    image[140:200, 330:500] = plain[140:200, 330:500]  # the back under two of them
    assert without_pack_bodies([gap], products, Fixture.of(image), back) == [gap]


def test_a_bare_stretch_at_the_end_of_a_shelf_is_a_gap() -> None:
    """From the shelf's end to its outer product: an empty end of the shelf is a gap when
    the void head saw something there and the back shows; a sliver is none."""
    from shelfwatch.vision.facings import Fixture
    from shelfwatch.vision.gaps import bare_stretches

    xs = [30, 100, 170, 240, 310, 380, 450, 520, 590]  # the shelf's last 250 px are empty
    image, products, zones = _shelf_of_packs(xs, seed=1)
    fixture = Fixture.of(image)
    back = fixture.back_lab([(0, 30, 900, 200)])
    void = np.array([[700, 60, 780, 200]], float)
    gaps = bare_stretches(products, zones, fixture, back, [], void)
    assert [(g.shelf, g.bbox) for g in gaps] == [(1, (650, 30, 900, 200))]
    assert bare_stretches(products, zones, fixture, back, [], void - 600) == []


def test_a_void_that_does_not_reach_down_to_its_shelf_is_no_gap() -> None:
    """An empty facing reaches down to the shelf; a void in the upper half of its level
    (between bottle necks, over short packs) does not."""
    from shelfwatch.core.scene import Products
    from shelfwatch.vision.gaps import void_gaps
    from shelfwatch.vision.shelves import ShelfEdge
    from shelfwatch.vision.zones import Zone

    zones = [
        Zone(
            top=20, bottom=200, edge=ShelfEdge(200, 215, 0, 800, 1.0), bay=1, shelf=1, x1=0, x2=800
        ),
        Zone(
            top=230, bottom=420, edge=ShelfEdge(420, 435, 0, 800, 1.0), bay=1, shelf=2, x1=0, x2=800
        ),
    ]
    none = Products(xyxy=np.zeros((0, 4)), scores=np.zeros(0), shelf=np.zeros(0, int))
    voids = np.array([[100, 230, 160, 300], [300, 260, 360, 415]], float)
    gaps = void_gaps(voids, np.array([0.4, 0.4]), np.array([2, 2]), none, zones)
    assert [g.bbox for g in gaps] == [(300, 260, 360, 415)]


def test_a_gap_is_cut_to_its_shelf_level() -> None:
    """A void box reaching over the shelf above and below is cut to its level: from the
    edge of the shelf above down to its own shelf's edge."""
    from shelfwatch.vision.gaps import within_level
    from shelfwatch.vision.shelves import ShelfEdge
    from shelfwatch.vision.zones import Zone

    zones = [
        Zone(
            top=20, bottom=200, edge=ShelfEdge(200, 215, 0, 800, 1.0), bay=1, shelf=1, x1=0, x2=800
        ),
        Zone(
            top=230, bottom=420, edge=ShelfEdge(420, 435, 0, 800, 1.0), bay=1, shelf=2, x1=0, x2=800
        ),
    ]
    assert within_level((300, 100, 400, 500), 2, zones) == (300, 215, 400, 435)
    assert within_level((300, 250, 400, 430), 2, zones) == (300, 250, 400, 430)  # inside
    assert within_level((900, 100, 950, 500), 2, zones) == (900, 100, 950, 500)  # off the bay


def test_levels_holding_nothing_are_no_shelves() -> None:
    """Bands holding neither a product nor a gap are dropped wherever they are (above a
    bay's stock: ceiling lights; below: the floor; between stocked levels: a layer of
    stacked cases) and the rest numbered again; an empty shelf the gap stage saw stays."""
    from shelfwatch.core.scene import Gap, Products, Shelf
    from shelfwatch.vision.layout import keep_shelves, stocked

    def level(index: int, bay: int, y: int) -> Shelf:
        return Shelf(index, y, y + 90, 100 * bay, 100 * bay + 90, y + 85, None, bay)

    shelves = [level(1, 1, 0), level(2, 1, 100), level(3, 1, 200), level(4, 1, 300),
               level(5, 1, 400), level(6, 2, 0), level(7, 2, 100)]  # fmt: skip
    products = Products(
        xyxy=np.array([[10, 110, 30, 185], [10, 410, 30, 485], [110, 10, 130, 85]]),
        shelf=np.array([2, 5, 6]),
    )
    gaps = [Gap(4, (40, 310, 60, 385))]
    keep = stocked(shelves, products, gaps)
    assert keep == {2, 4, 5, 6}  # 1 above bay 1's stock, 3 between, 7 below bay 2's
    kept, products, gaps = keep_shelves(shelves, products, gaps, keep)
    assert [(s.index, s.y1, s.bay) for s in kept] == [
        (1, 100, 1), (2, 300, 1), (3, 400, 1), (4, 0, 2)
    ]  # fmt: skip
    assert products.shelf.tolist() == [1, 3, 4] and gaps[0].shelf == 2


def test_a_sloping_shelf_keeps_the_products_at_its_low_end() -> None:
    """A shelf seen 0.75 deg off level across a long stitched bay: its band follows its
    edge, so a product standing at the low end belongs to it, not to the band below."""
    from shelfwatch.core.scene import Products, Shelf
    from shelfwatch.vision.layout import assign_shelves

    # Edges fall 23 px from right to left over 1,755 px (as on a rendered walk's mosaic).
    upper = Shelf(1, 576, 730, 54, 1809, 726, (56, 738, 1811, 715), 1)
    lower = Shelf(2, 730, 863, 17, 1866, 837, (18, 849, 1867, 825), 1)
    products = Products(
        xyxy=np.array(
            [
                [100, 650, 140, 741],  # left, low end: the bottom below the upper band's level
                [1700, 630, 1740, 718],  # right, high end
                [100, 760, 140, 848],  # on the lower shelf at its low end
            ]
        )
    )
    assert assign_shelves(products, [upper, lower]).shelf.tolist() == [1, 1, 2]
    # Level edges at the bands' heights: the band's bounds alone decide, as before.
    flat = [
        Shelf(1, 576, 730, 54, 1809, 726, (56, 726, 1811, 726), 1),
        Shelf(2, 730, 863, 17, 1866, 837, (18, 837, 1867, 837), 1),
    ]
    assert assign_shelves(products, flat).shelf.tolist()[0] == 2


def test_products_go_to_the_shelf_of_their_own_bay() -> None:
    """Two bays side by side, their shelves at other heights (the bands overlap in height):
    each product goes to the band over its own columns, one past every band's columns to
    the nearest."""
    from shelfwatch.core.scene import Products, Shelf
    from shelfwatch.vision.layout import assign_shelves

    left = Shelf(1, 100, 280, 50, 820, 273, (50, 273, 820, 273), 1)
    right = Shelf(2, 75, 250, 990, 1730, 244, (990, 244, 1730, 244), 2)
    products = Products(
        xyxy=np.array([[100, 150, 160, 245], [1100, 140, 1160, 245], [1800, 140, 1850, 245]])
    )
    assert assign_shelves(products, [left, right]).shelf.tolist() == [1, 2, 2]


def test_the_void_mask_drops_gaps_it_does_not_mark_and_adds_areas_it_marks_surely() -> None:
    """With the void-mask net: a gap from void centres where the mask marks nothing is
    dropped; an area it marks surely that no gap covers becomes a gap on its shelf, unless a
    detected product stands in it (a missed product is no gap)."""
    from shelfwatch.core.scene import Gap, Products
    from shelfwatch.vision.gaps import masked_gaps
    from shelfwatch.vision.shelves import ShelfEdge
    from shelfwatch.vision.zones import Zone

    zones = [
        Zone(
            top=20, bottom=200, edge=ShelfEdge(200, 215, 0, 800, 1.0), bay=1, shelf=1, x1=0, x2=800
        ),
        Zone(
            top=230, bottom=420, edge=ShelfEdge(420, 435, 0, 800, 1.0), bay=1, shelf=2, x1=0, x2=800
        ),
    ]
    mask = np.zeros((450, 800), np.float32)
    mask[60:200, 100:180] = 0.9  # an empty facing on shelf 1, marked: kept
    mask[260:420, 400:472] = 0.95  # no gap there yet: a new one on shelf 2
    mask[260:420, 600:680] = 0.95  # ... but a product stands there
    products = Products(
        xyxy=np.array([[600, 260, 680, 420]]), scores=np.ones(1), shelf=np.array([2])
    )
    gaps = [Gap(1, (100, 60, 180, 200)), Gap(2, (200, 250, 260, 420))]  # the second unmarked
    out = masked_gaps(gaps, mask, products, zones)
    assert [(g.shelf, g.bbox) for g in out] == [(1, (100, 60, 180, 200)), (2, (400, 260, 472, 420))]
    # Dark space above short products does not reach down to the shelf: no gap.
    mask[240:300, 720:792] = 0.95
    assert len(masked_gaps(gaps, mask, products, zones)) == 2
    # A marked area spreading over a product beside it is cut at the product.
    wide = Products(
        xyxy=np.array([[600, 260, 680, 420], [480, 250, 520, 420]]),
        scores=np.ones(2),
        shelf=np.array([2, 2]),
    )
    mask[260:420, 400:520] = 0.95
    assert masked_gaps(gaps, mask, wide, zones)[1].bbox == (400, 260, 480, 420)
    # A marked gap that ends on top of a row of short products is the space above them.
    short = Products(
        xyxy=np.array([[300, 150, 336, 200], [338, 150, 372, 200]]),
        scores=np.ones(2),
        shelf=np.array([1, 1]),
    )
    mask[60:150, 300:372] = 0.9
    above = [Gap(1, (300, 60, 372, 150))]
    out = masked_gaps(above, mask, short, zones)
    assert out and all(g.bbox[0] >= 372 or g.bbox[2] <= 300 for g in out)
    # A weakly marked area is not enough on its own.
    mask[260:420, 400:520] = 0.6
    assert [g.shelf for g in masked_gaps(gaps, mask, products, zones)] == [1]


def test_tilt_is_measured_from_shelf_edges_and_a_blank_photo_is_level(rendered: Path) -> None:
    """The tilt that levels a photo follows its rotation; a photo without horizontal edges
    gives no evidence of tilt (it was reported tilted by the search's first angle)."""
    from shelfwatch.vision.shelves import estimate_tilt

    gray = cv2.cvtColor(load_image(next((rendered / "images").iterdir())), cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    level = estimate_tilt(gray)
    for angle in (-6.0, 4.0):
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(gray, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
        assert estimate_tilt(turned) == pytest.approx(level - angle, abs=0.5)
    assert abs(estimate_tilt(np.full((600, 800), 200, np.uint8))) < 1e-6
    scene = get_segmenter("opencv").segment(np.full((600, 800, 3), 200, np.uint8))
    assert not scene.quality["tilted"] and scene.quality["blank"]


def test_a_panorama_is_read_by_its_height(rendered: Path) -> None:
    """Six renders side by side (a phone's panorama of a run of bays, 5.6 : 1): each part
    is read as a photo is, so its products are found as in the photos alone (read by the
    panorama's width, they were about 20 px tall at the detector's input and a third of
    them missed)."""
    from shelfwatch.labels.coco import read_coco
    from shelfwatch.vision.evaluation import greedy_match

    coco = read_coco(rendered / "annotations.json")
    images = coco.images[:6]
    height = min(im.height for im in images)
    parts, truth, x0 = [], [], 0
    for im in images:
        part = load_image(rendered / "images" / im.file_name)[:height]
        boxes = [o.bbox for o in im.objects if o.category != "gap" and o.bbox[3] <= height]
        truth += [(x1 + x0, y1, x2 + x0, y2) for x1, y1, x2, y2 in boxes]
        parts.append(part)
        x0 += part.shape[1]
    panorama = np.concatenate(parts, axis=1)
    found = get_segmenter("opencv").segment(panorama).products.xyxy
    matched = greedy_match(found, np.array(truth), 0.5)
    assert matched / len(truth) >= 0.95 and matched / len(found) >= 0.9, (matched, len(truth))


def test_a_row_below_the_lowest_edge_in_view_is_a_shelf_of_its_own(rendered: Path) -> None:
    """A photo cut off above the bottom shelf's edge (or whose lowest edge is too faint to
    find): the products standing there are a shelf of their own, not part of the shelf above
    (they were: its count was both rows')."""
    from shelfwatch.labels.coco import read_coco

    coco = read_coco(rendered / "annotations.json")
    truth = json.loads((rendered / "truth.json").read_text(encoding="utf-8"))
    segmenter = get_segmenter("opencv")
    for im in coco.images[:4]:
        levels = truth[im.file_name]["shelves"]
        photo = load_image(rendered / "images" / im.file_name)[: levels[-1]["edge_y"] - 10]
        boxes = np.array([o.bbox for o in im.objects if o.category != "gap"])
        centres = (boxes[:, 1] + boxes[:, 3]) / 2
        per_level = np.histogram(centres, [0] + [s["edge_y"] for s in levels])[0]
        scene = segmenter.segment(photo)
        assert len(scene.shelves) == len(levels), im.file_name
        counts = np.array(list(scene.counts()["per_shelf"].values()))
        assert np.abs(counts - per_level).max() <= 1, (im.file_name, counts, per_level)


def test_annotated_bays_side_by_side() -> None:
    """Shelf boxes in two columns are two bays; a lone box beside a bay (a shelf the
    annotator boxed in pieces) and a bay seen at an angle (columns drifting) are not."""
    from shelfwatch.bench.accuracy import annotated_bays

    left = [(0, y, 400, y + 90) for y in (0, 100, 200)]
    right = [(410, y + 20, 800, y + 110) for y in (0, 100, 200)]
    assert annotated_bays(left + right) == 2
    assert annotated_bays(left + [(410, 0, 480, 90)]) == 1
    drifting = [(10 * k, 100 * k, 400 + 30 * k, 100 * k + 90) for k in range(5)]
    assert annotated_bays(drifting) == 1


def test_one_to_one_recall_split_by_photos_with_bays_side_by_side() -> None:
    from shelfwatch.bench.accuracy import summarise_shelves

    rows = [
        {"shelves": 10, "found": 10, "matched": 5, "side_by_side": True},
        {"shelves": 6, "found": 6, "matched": 6, "side_by_side": False},
        {"shelves": 4, "found": 3, "matched": 3, "side_by_side": False},
    ]
    summary = summarise_shelves(rows, "all")
    assert summary["shelf_recall_1to1"] == 0.7
    assert summary["shelf_recall_1to1_side_by_side"] == 0.5
    assert summary["shelf_recall_1to1_single_bay"] == 0.9
    assert summary["photos_side_by_side"] == 1


def test_count_error_by_shelf_size_and_its_sign() -> None:
    """Per-shelf count error split by how many products were counted on the shelf, and its
    sign: missed products read negative, extra ones positive."""
    from shelfwatch.bench.accuracy import summarise_counts

    rows = [
        {"image": "a", "products": 2, "detected": 3},  # +50 %
        {"image": "a", "products": 8, "detected": 6},  # -25 %
        {"image": "b", "products": 10, "detected": 10},  # 0
        {"image": "b", "products": 25, "detected": 15},  # -40 %
        {"image": "b", "products": 20, "detected": 18},  # -10 %
    ]
    summary = summarise_counts(rows, "all")
    assert summary["count_mape_shelf"] == 25.0
    assert summary["count_bias_shelf"] == -5.0
    assert summary["count_mape_shelf_1_4"] == 50.0
    assert summary["count_mape_shelf_5_9"] == 25.0
    assert summary["count_mape_shelf_10_19"] == 0.0
    assert summary["count_mape_shelf_20_up"] == 25.0
    assert summarise_counts(rows[:1], "one")["count_mape_shelf_20_up"] is None


def test_bays_are_divided_where_the_upright_net_marks_an_upright() -> None:
    """Two bays whose shelves sit at the same heights, their rails unbroken: one bay on the
    photo's lines alone, two where the upright net marks an upright down their shelves (a
    short mark, a pack's side, and one at the bay's end divide nothing)."""
    from shelfwatch.vision.shelves import ShelfEdge, find_bays, learned_uprights

    edges = [ShelfEdge(y, y + 6, 0, 400, 1.0) for y in (100, 200, 300)]
    marks = np.zeros((400, 400), np.float32)
    marks[100:306, 150:154] = 0.9
    marks[100:140, 250:254] = 0.9
    marks[:, 20:24] = 0.9
    (cut,) = learned_uprights(marks, edges)
    assert 150 <= cut < 154
    gray = np.full((400, 800), 200, np.uint8)
    for y in (100, 200, 300):
        gray[y : y + 5] = 40
    assert len(find_bays(gray)) == 1
    upright = np.zeros(gray.shape, np.float32)
    upright[90:310, 358:362] = 0.8
    bays = find_bays(gray, upright_map=upright)
    assert [(b.x1, b.x2) for b in bays][0][1] in range(355, 365) and len(bays) == 2
    assert bays[1].after_upright and len(bays[0].edges) == len(bays[1].edges) == 3


def test_an_upright_beside_a_bay_end_makes_no_sliver_of_a_bay(monkeypatch) -> None:
    """The profiles end a bay a little off its upright; the upright net's mark there, a
    few columns inside the bay, must not cut a sliver off it (train_2988)."""
    from shelfwatch.vision import shelves

    gray = np.full((460, 1000), 200, np.uint8)
    for y in (100, 200, 300):
        gray[y : y + 5, :300] = 40
    for y in (150, 250, 350):
        gray[y : y + 5, 300:] = 40
    plain = shelves.find_bays(gray)
    assert len(plain) == 2
    end = plain[0].x2
    upright = np.zeros(gray.shape, np.float32)
    upright[90:360, end - 50 : end - 46] = 0.8  # inside the left bay, beyond its margin
    assert len(shelves.find_bays(gray, upright_map=upright)) == 2
    monkeypatch.setattr(shelves, "LEARNED_BAY_MIN", 0.0)
    assert len(shelves.find_bays(gray, upright_map=upright)) == 3


def test_the_bench_reads_photos_resized_and_scores_them_in_their_own_pixels(
    cli: CliRunner, rendered: Path
) -> None:
    """``bench accuracy --photo-scale``: each photo is read at half its size and its scene
    mapped back to the photo's pixels, so the same boxes score it (a scene left at half size
    would match no product at IoU 0.5)."""
    args = ["bench", "accuracy", "--data", str(rendered), "--sets", "rendered", "--json"]
    result = cli.invoke(app, [*args, "--photo-scale", "0.5"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["photo_scale"] == 0.5 and line["photos"] == 12
    assert line["precision"] >= 0.9 and line["recall"] >= 0.9 and line["gap_f1"] >= 0.9
    assert cli.invoke(app, [*args, "--photo-scale", "9"]).exit_code != 0


def test_stacked_packs_and_matched_boxes_are_told_apart() -> None:
    """The bench's split of labeled products: three flat packs in a stack, one pack beside
    them and one on the shelf below (a shelf's height away: not stacked on it); and which
    labeled boxes a one-to-one match pairs, one prediction never serving two."""
    from shelfwatch.vision.evaluation import greedy_match, matched_truth, stacked

    truth = np.array(
        [
            [0, 0, 60, 20],  # the stack: three packs 20 px tall
            [2, 21, 61, 40],
            [0, 40, 60, 60],
            [80, 0, 100, 60],  # a tall pack beside it
            [0, 100, 60, 120],  # the next shelf down
        ],
        float,
    )
    assert stacked(truth).tolist() == [True, True, True, False, False]
    # One box over the whole stack matches none of its packs; a box on one pack matches it.
    pred = np.array([[0, 0, 60, 60], [80, 2, 100, 60], [80, 0, 100, 58]], float)
    hit = matched_truth(pred, truth)
    assert hit.tolist() == [False, False, False, True, False]
    assert greedy_match(pred, truth) == 1


def test_line_shares_and_the_foreground_are_their_plain_definitions() -> None:
    """The shelves and masks stages' fast paths (sums by ``cv2.reduce``, one dilate for all
    slices, squared distances by lookup) give exactly what the plain arithmetic gives."""
    from scipy.ndimage import gaussian_filter1d

    from shelfwatch.vision.facings import foreground_mask
    from shelfwatch.vision.shelves import column_profiles, line_profile

    rng = np.random.default_rng(3)
    for h, w, share in ((300, 457, 0.05), (41, 9, 0.5), (200, 3, 0.9)):
        lines = (rng.random((h, w)) < share).astype(np.uint8)
        slack = 2
        bounds = np.linspace(0, w, min(8, w) + 1).astype(int)
        plain = np.mean(
            [
                cv2.dilate(
                    lines[:, a:b].mean(axis=1).astype(np.float32)[:, None],
                    np.ones((2 * slack + 1, 1), np.uint8),
                )[:, 0]
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ],
            axis=0,
        )
        assert np.array_equal(line_profile(lines, slack), plain)
        assert np.array_equal(line_profile(lines.astype(bool), slack), plain)
        pairs = zip(bounds[:-1], bounds[1:], strict=True)
        shares = np.stack([lines[:, a:b].mean(axis=1, dtype=np.float32) for a, b in pairs])
        blurred = column_profiles(lines, bounds)
        assert np.array_equal(blurred, gaussian_filter1d(shares, max(1.0, 0.006 * h), axis=1))
    lab = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    texture = rng.random((120, 90)).astype(np.float32) * 120
    back = np.array([140.5, 127.0, 133.5])
    diff = lab.astype(np.float32) - back.astype(np.float32)
    far = (diff**2).sum(axis=2) > 22 * 22
    plain = cv2.morphologyEx(
        (far | (texture > 90)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    ).astype(bool)
    assert np.array_equal(foreground_mask(lab, texture, back), plain)
