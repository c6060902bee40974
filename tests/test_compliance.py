"""Alignment and findings on hand-made shelves, and KPIs as defined in the README."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.planogram.compliance import align, check_compliance
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition
from shelfwatch.planogram.slack import without_slack
from shelfwatch.services.audits import run_audit
from shelfwatch.services.catalog import import_catalog, import_planogram
from shelfwatch.services.storage import PhotoStore
from tests.scenes import stored_photo

W = 20  # facing width in px


def plan(*shelves: list[tuple[str, int]]) -> list[PlanogramPosition]:
    return [
        PlanogramPosition("P", "F", s, pos, sku, n)
        for s, blocks in enumerate(shelves, start=1)
        for pos, (sku, n) in enumerate(blocks, start=1)
    ]


def scene(*shelves: list[str | None], gaps: list[tuple[int, int, int]] = ()) -> ShelfScene:
    """Shelves of facings left to right; ``"_"`` leaves an empty facing."""
    boxes, skus, shelf_ids = [], [], []
    for s, facings in enumerate(shelves, start=1):
        for k, sku in enumerate(facings):
            if sku == "_":
                continue
            boxes.append([k * W, s * 100, k * W + W - 2, s * 100 + 80])
            skus.append(sku)
            shelf_ids.append(s)
    products = Products(
        xyxy=np.array(boxes).reshape(-1, 4),
        scores=np.ones(len(boxes)),
        shelf=np.array(shelf_ids),
        sku=skus,
    )
    return ShelfScene(
        width=1000,
        height=100 * (len(shelves) + 1),
        shelves=[Shelf(i, i * 100, i * 100 + 90) for i in range(1, len(shelves) + 1)],
        products=products,
        gaps=[Gap(s, (a * W, s * 100, b * W, s * 100 + 80)) for s, a, b in gaps],
    )


def kinds(report) -> set[tuple]:  # type: ignore[no-untyped-def]
    return {(f.type, f.shelf, f.position, f.expected_sku, f.observed_sku) for f in report.findings}


def test_align_tolerates_shift_and_reports_transposition() -> None:
    al = align(["A", "B", "C", "D"], ["X", "A", "B", "C", "D"])
    assert al.matched == [(0, 1), (1, 2), (2, 3), (3, 4)] and al.unmatched_observed == [0]
    swapped = align(["A", "B", "C", "D"], ["A", "C", "B", "D"])
    assert swapped.transposed == [(1, 2, 1, 2)] and not swapped.unmatched_expected


def test_perfect_shelf() -> None:
    report = check_compliance(scene(["A", "A", "B", "B", "B"]), plan([("A", 2), ("B", 3)]))
    assert report.findings == []
    assert report.kpis["osa_pct"] == 100.0
    assert report.kpis["compliance_strict_pct"] == 100.0
    assert report.kpis["facings_compliance_pct"] == 100.0


def test_shifted_row_still_matches() -> None:
    # Everything one facing to the right, an unknown product pushed in at the left.
    report = check_compliance(scene([None, "A", "A", "B", "B", "B"]), plan([("A", 2), ("B", 3)]))
    assert kinds(report) == {("unknown_product", 1, 1, None, None)}
    assert report.kpis["compliance_strict_pct"] == 100.0
    assert report.kpis["unknown_products"] == 1


def test_missing_short_over_extra() -> None:
    report = check_compliance(
        scene(["A", "_", "C", "C", "C", "X"], gaps=[(1, 1, 2)]),
        plan([("A", 2), ("B", 1), ("C", 2)]),
    )
    assert kinds(report) == {
        ("facings_short", 1, 1, "A", "A"),
        ("missing", 1, 2, "B", None),
        ("facings_over", 1, 3, "C", "C"),
        ("extra", 1, 3, None, "X"),
    }
    missing = next(f for f in report.findings if f.type == "missing")
    assert missing.bbox == (W, 100, 2 * W, 180)  # points at the gap where B should be
    assert report.kpis["osa_pct"] == round(100 * 2 / 3, 2)
    assert report.kpis["oos_skus"] == ["B"]
    assert report.kpis["compliance_strict_pct"] == 0.0
    assert report.kpis["compliance_lenient_pct"] == round(100 * 2 / 3, 2)


def test_swapped_blocks_are_misplaced_both_ways() -> None:
    report = check_compliance(scene(["B", "A", "A"]), plan([("A", 2), ("B", 1)]))
    assert kinds(report) == {("misplaced", 1, 1, "A", "B"), ("misplaced", 1, 2, "B", "A")}
    assert report.kpis["compliance_lenient_pct"] == 100.0
    assert report.kpis["compliance_strict_pct"] == 0.0


def test_wrong_shelf_is_misplaced_not_missing() -> None:
    report = check_compliance(scene(["A", "A"], ["C", "B"]), plan([("A", 2), ("B", 1)], [("C", 1)]))
    assert kinds(report) == {("misplaced", 1, 2, "B", "B")}
    assert report.kpis["osa_pct"] == 100.0


def test_duplicates_and_empty_shelf() -> None:
    # The same SKU planned on two shelves; the second shelf photographed empty.
    report = check_compliance(scene(["A", "B"], ["_", "_"]), plan([("A", 1), ("B", 1)], [("A", 2)]))
    assert kinds(report) == {("missing", 2, 1, "A", None)}
    assert report.kpis["osa_pct"] == 100.0  # A is on the fixture, so not out of stock
    assert report.kpis["facings_compliance_pct"] == round(100 * (1 / 3 + 1) / 2, 2)


def test_shelf_count_mismatch_warns_and_reports() -> None:
    report = check_compliance(scene(["A"]), plan([("A", 1)], [("B", 1)]))
    assert report.warnings and "planogram has 2" in report.warnings[0]
    assert ("missing", 2, 1, "B", None) in kinds(report)


def test_share_of_shelf_keeps_unknown_apart() -> None:
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 5, 5),
        "B": CatalogItem("B", "b", "BrandY", "c", 5, 5),
    }
    report = check_compliance(scene(["A", "A", "B", None]), plan([("A", 2), ("B", 1)]), catalog)
    assert report.kpis["share_of_shelf_facings"] == {
        "BrandX": 50.0,
        "BrandY": 25.0,
        "unknown": 25.0,
    }
    assert set(report.kpis["share_of_shelf_width"]) == {"BrandX", "BrandY", "unknown"}


def _boxed(shelf: list[tuple[str, int, int]]) -> ShelfScene:
    """One shelf of products given as (sku, x1, x2)."""
    return ShelfScene(
        width=1000,
        height=200,
        shelves=[Shelf(1, 100, 190)],
        products=Products(
            xyxy=np.array([[a, 100, b, 180] for _, a, b in shelf]).reshape(-1, 4),
            scores=np.ones(len(shelf)),
            shelf=np.ones(len(shelf), int),
            sku=[s for s, _, _ in shelf],
        ),
    )


def test_catalog_widths_count_merged_and_split_packs() -> None:
    """With pack widths in the catalog, a box as wide as two packs of its SKU is two
    facings and two boxes on one pack are one; without them, one box is one facing."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),  # narrow: 20 px at this scale
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),  # wide: 60 px
    }
    # Five px per cm (the B boxes and the first A box); A's last two packs are one box;
    # one B pack came out as two half boxes.
    shelf = [("A", 0, 20), ("A", 21, 61), ("B", 70, 130), ("B", 135, 165), ("B", 166, 195)]
    planned = plan([("A", 3), ("B", 2)])
    assert kinds(check_compliance(_boxed(shelf), planned, catalog)) == set()
    assert kinds(check_compliance(_boxed(shelf), planned)) == {
        ("facings_short", 1, 1, "A", "A"),
        ("facings_over", 1, 2, "B", "B"),
    }


def test_pieces_of_packs_count_from_each_packs_left_edge() -> None:
    """Three pieces of two wide packs are two facings: whether a piece belongs to the pack
    before is measured from that pack's left edge, not from the piece before it."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),  # 20 px at five px per cm
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),  # 60 px
    }
    # B's packs stand at 90-150 and 150-210; the detector saw 90-130, 132-150 and 151-200.
    shelf = [("A", 0, 20), ("A", 21, 41), ("A", 42, 62), ("A", 63, 83)]
    shelf += [("B", 90, 130), ("B", 132, 150), ("B", 151, 200)]
    planned = plan([("A", 4), ("B", 2)])
    assert kinds(check_compliance(_boxed(shelf), planned, catalog)) == set()


def test_a_stretch_between_boxes_of_one_sku_hides_its_facings() -> None:
    """Identical packs touching one another are what the detector misses: a stretch no box
    or gap covers between two boxes of one SKU holds as many of its facings as fit (two at
    most); where a gap was seen, the stretch is empty."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),
    }
    shelf = [("A", 0, 20), ("A", 61, 81), ("B", 90, 150), ("B", 150, 210), ("B", 210, 270)]
    planned = plan([("A", 4), ("B", 3)])
    report = check_compliance(_boxed(shelf), planned, catalog)
    assert kinds(report) == set()
    slots = report.realogram[0]["facings"]
    assert [f["inferred"] for f in slots] == [False, True, True, False, False, False, False]
    empty = _boxed(shelf)
    empty.gaps = [Gap(1, (21, 100, 60, 180))]
    assert kinds(check_compliance(empty, planned, catalog)) == {("facings_short", 1, 1, "A", "A")}
    # Four facings' worth that nothing explains is more than touching packs: two are taken.
    wide = [("A", 0, 20), ("A", 101, 121), ("B", 130, 190), ("B", 190, 250), ("B", 250, 310)]
    report = check_compliance(_boxed(wide), plan([("A", 6), ("B", 3)]), catalog)
    assert [(f.type, f.observed_facings) for f in report.findings] == [("facings_short", 4)]


def test_overlapping_boxes_count_the_overlap_once() -> None:
    """Two loose boxes over three packs of one SKU, each as wide as two packs but
    overlapping by one: three facings, not four."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),  # 60 px
    }
    shelf = [("A", 0, 20), ("A", 21, 41), ("A", 42, 62), ("A", 63, 83)]
    shelf += [("B", 90, 210), ("B", 160, 280)]  # the packs stand at 90-150, 150-210, 210-270
    planned = plan([("A", 4), ("B", 3)])
    assert kinds(check_compliance(_boxed(shelf), planned, catalog)) == set()


def test_a_wide_box_beside_a_loose_one_counts_from_their_overlaps_middle() -> None:
    """A loose box over the first of three packs reaching onto the second, and a box over
    the other two: three facings. Counted from where the loose box ends, the wide box
    would show under two packs and count one."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 9, 10),  # 45 px
        "B": CatalogItem("B", "b", "BrandY", "c", 10, 10),  # 50 px: the photo's scale
    }
    shelf = [("B", 0, 50), ("B", 50, 100), ("B", 100, 150), ("B", 150, 200)]
    shelf += [("A", 210, 268), ("A", 250, 345)]  # the packs stand at 210-255, 255-300, 300-345
    planned = plan([("B", 4), ("A", 3)])
    assert kinds(check_compliance(_boxed(shelf), planned, catalog)) == set()


def test_the_scale_comes_from_where_packs_stand_not_how_wide_their_boxes_are() -> None:
    """Boxes a few pixels loose on every pack put the box-width scale 17 % high, and a box
    over two narrow packs then reads as one; the packs' pitch (centre to centre) gives the
    photo's 10 px per cm, and the box counts two."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 5, 10),  # 50 px
        "B": CatalogItem("B", "b", "BrandY", "c", 10, 10),  # 100 px
    }
    shelf = [("B", 5, 115), ("B", 105, 215), ("B", 205, 315)]  # packs at 10-110, ... 210-310
    shelf += [("A", 314, 376), ("A", 364, 426), ("A", 420, 520)]  # 320-370, ... 470-520
    planned = plan([("B", 3), ("A", 4)])
    report = check_compliance(_boxed(shelf), planned, catalog)
    assert kinds(report) == set()
    assert [f["facings"] for f in report.realogram[0]["facings"]] == [1, 1, 1, 1, 1, 2]


def test_of_two_boxes_in_one_column_the_one_no_pack_of_its_sku_fits_is_the_duplicate() -> None:
    """A bottle found as its top and its body, one of them named after a wide pack it
    cannot be (a third of that pack's width): whichever of the two it is, upper or lower,
    larger or smaller, that box is the duplicate and the shelf holds four bottles. Two
    boxes that both fit their SKU keep the old rule (the upper one, if smaller)."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 6, 20),  # 60 px at ten px per cm
        "W": CatalogItem("W", "w", "BrandY", "c", 18, 15),  # 180 px
    }
    row = [("A", 0, 100, 60, 180), ("A", 60, 100, 120, 180), ("A", 120, 100, 180, 180)]

    def bottle_in(*boxes: tuple[str, int, int, int, int]) -> ShelfScene:
        shelf = row + list(boxes)
        return ShelfScene(
            width=400,
            height=200,
            shelves=[Shelf(1, 0, 190)],
            products=Products(
                xyxy=np.array([b[1:] for b in shelf]),
                scores=np.ones(len(shelf)),
                shelf=np.ones(len(shelf), int),
                sku=[b[0] for b in shelf],
            ),
        )

    def skus(scene: ShelfScene) -> list[str | None]:
        report = check_compliance(scene, plan([("A", 4)]), catalog)
        assert kinds(report) == set()
        return [f["sku"] for f in report.realogram[0]["facings"]]

    top_misnamed = bottle_in(("W", 182, 10, 238, 90), ("A", 180, 120, 240, 180))  # larger top
    body_misnamed = bottle_in(("A", 185, 20, 235, 90), ("W", 180, 110, 240, 180))  # smaller top
    assert skus(top_misnamed) == skus(body_misnamed) == ["A"] * 4
    both_fit = bottle_in(("A", 185, 20, 235, 90), ("A", 180, 110, 240, 180))
    assert [
        f["sku"]
        for f in check_compliance(both_fit, plan([("A", 4)]), catalog).realogram[0]["facings"]
    ] == ["A"] * 4


def test_a_wide_box_counts_the_packs_its_mask_shows_not_its_overhang() -> None:
    """A box over three B packs that reaches past them onto the fixture back (its mask
    shows product over the packs only) is three facings, not the four its width gives;
    without masks the box's width is all there is to count by."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),  # 20 px at five px per cm
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),  # 60 px
    }
    # B's packs stand at 110-170, 170-230 and 230-290; the box runs from 90 to 310.
    shelf = [("A", 0, 20), ("A", 20, 40), ("A", 40, 60), ("A", 60, 80), ("B", 90, 310)]
    planned = plan([("A", 4), ("B", 3)])
    over = _boxed(shelf)
    assert kinds(check_compliance(over, planned, catalog)) == {("facings_over", 1, 2, "B", "B")}
    masks = [np.ones((80, 20), bool)] * 4 + [np.zeros((80, 220), bool)]
    masks[4][:, 20:200] = True
    masks[4][70:, :20] = True  # the price rail under the overhang: under half its rows
    shown = _boxed(shelf)
    shown.products = replace(shown.products, masks=masks)
    report = check_compliance(shown, planned, catalog)
    assert kinds(report) == set()
    assert [f["facings"] for f in report.realogram[0]["facings"]] == [1, 1, 1, 1, 3]


def test_a_box_standing_on_another_is_the_same_facing() -> None:
    """A bottle's neck found apart from its body (a box above a larger one, in its columns)
    is not a facing of its own, whatever SKU it was given; a pack beside it still is."""
    base = scene(["A", "A", "B", "B", "B"])
    p = base.products
    neck = Products(
        xyxy=np.array([[24, 70, 34, 100]]), scores=np.ones(1), shelf=np.array([1]), sku=["C"]
    )
    both = Products.concat([p, neck])
    report = check_compliance(base.with_products(both), plan([("A", 2), ("B", 3)]))
    assert report.findings == []
    beside = Products(
        xyxy=np.array([[100, 100, 118, 180]]), scores=np.ones(1), shelf=np.array([1]), sku=["C"]
    )
    report = check_compliance(
        base.with_products(Products.concat([p, beside])), plan([("A", 2), ("B", 3)])
    )
    assert kinds(report) == {("extra", 1, 2, None, "C")}


def test_unknown_boxes_among_pieces_of_one_skus_packs_are_that_sku() -> None:
    """A detector reading the print of two touching wide packs finds boxes on their parts,
    some of which pass for no catalog pack: an unknown box between pieces of one SKU's
    packs is a piece too, so the run is whole and counts its two packs. A box as wide as a
    pack, one between two SKUs and one across a gap stay unknown."""
    catalog = {
        "A": CatalogItem("A", "a", "BrandX", "c", 4, 10),  # 20 px at five px per cm
        "B": CatalogItem("B", "b", "BrandY", "c", 12, 10),  # 60 px
    }
    packs = [("A", 0, 20), ("A", 21, 41), ("A", 42, 62), ("A", 63, 83)]
    # B's packs stand at 90-150 and 150-210; the detector saw five parts of them.
    pieces = [("B", 92, 117), (None, 120, 143), ("B", 152, 175), (None, 178, 200)]
    pieces += [("B", 203, 208)]
    planned = plan([("A", 4), ("B", 2)])
    report = check_compliance(_boxed(packs + pieces), planned, catalog)
    assert kinds(report) == set()
    assert [f["sku"] for f in report.realogram[0]["facings"]][4:] == ["B"] * 5

    def unknown(shelf: list) -> list[int]:  # type: ignore[type-arg]
        rows = check_compliance(_boxed(shelf), planned, catalog).realogram[0]["facings"]
        return [f["bbox"][0] for f in rows if f["kind"] == "product" and f["sku"] is None]

    # As wide as a pack: a product of its own that the catalog does not know.
    assert unknown(packs + [("B", 92, 117), (None, 120, 175), ("B", 178, 200)]) == [120]
    # Between a piece of B and a box of A: whose piece it would be is not known.
    assert unknown(packs + [(None, 86, 98), ("B", 100, 125), ("B", 160, 185)]) == [86]
    gapped = _boxed(packs + pieces)
    gapped.gaps = [Gap(1, (145, 100, 150, 180))]
    rows = check_compliance(gapped, planned, catalog).realogram[0]["facings"]
    # Across a gap: the first unknown box stays; the second is still among pieces of B.
    assert [f["sku"] for f in rows if f["kind"] == "product"][4:] == ["B", None, "B", "B", "B"]


def test_the_daily_audit_counts_a_wide_box_as_check_does(tmp_path: Path) -> None:
    """The audit reads the stored masks, so the box over three packs with an overhang is
    three facings there too: no `facings_over` in the audit's findings."""
    (tmp_path / "catalog.csv").write_text(
        "sku,name,brand,category,width_cm,height_cm\nA,a,BrandX,c,4,10\nB,b,BrandY,c,12,10\n"
    )
    (tmp_path / "planogram.csv").write_text(
        "planogram,fixture,shelf,position,sku,facings\nP,F1,1,1,A,4\nP,F1,1,2,B,3\n"
    )
    shelf = [("A", 0, 20), ("A", 20, 40), ("A", 40, 60), ("A", 60, 80), ("B", 90, 310)]
    scene = _boxed(shelf)
    masks = [np.ones((80, 20), bool)] * 4 + [np.zeros((80, 220), bool)]
    masks[4][:, 20:200] = True  # the packs; the box reaches 20 px past them either side
    scene.products = replace(scene.products, masks=masks)
    day = dt.date(2026, 12, 1)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    with session_factory(url).begin() as session:
        stored_photo(session, scene, dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
        import_catalog(session, tmp_path / "catalog.csv", PhotoStore(tmp_path / "photos"))
        import_planogram(session, tmp_path / "planogram.csv", effective_from=day)
        found = run_audit(session, "S1", day).fixtures["F1"].findings
    assert [(f.type, f.expected_sku) for f in found] == []


def test_space_between_two_full_blocks_the_plan_puts_side_by_side_is_no_gap() -> None:
    """Slack between blocks is no gap; a gap beside a short block, in a whole missing
    block's place, or beside a block filled only by planogram-confirmed facings stays."""
    two = plan([("A", 2), ("B", 2)])
    full = scene(["A", "A", "_", "B", "B"], gaps=[(1, 2, 3)])
    assert without_slack(full, two, {}).gaps == []
    assert check_compliance(without_slack(full, two, {}), two).findings == []

    short = scene(["A", "_", "B", "B"], gaps=[(1, 1, 2)])
    assert without_slack(short, two, {}).gaps == short.gaps

    three = plan([("A", 2), ("C", 1), ("B", 2)])  # C's whole block is missing
    assert without_slack(full, three, {}).gaps == full.gaps

    confirmed = replace(
        full, products=replace(full.products, source=["detector", "planogram", *["detector"] * 2])
    )
    assert without_slack(confirmed, two, {}).gaps == full.gaps
    assert without_slack(full, [], {}).gaps == full.gaps  # no plan, no judgement


def test_a_space_narrower_than_any_pack_planned_on_its_shelf_is_no_gap() -> None:
    """After a shelf's last pack, a space under three quarters of the narrowest planned
    pack (at the photo's scale, 5 px per cm here) held none of them; one a pack wide stays,
    and so does any gap where the photo's scale is unknown."""
    catalog = {
        "B": CatalogItem("B", "b", "BrandX", "c", 12, 10),  # 60 px
        "C": CatalogItem("C", "c", "BrandY", "c", 10, 10),  # 50 px
    }
    two = plan([("B", 2), ("C", 2)])
    packs = [("B", 0, 60), ("B", 60, 120), ("C", 120, 170), ("C", 170, 220)]
    narrow = replace(_boxed(packs), gaps=[Gap(1, (220, 100, 250, 180))])  # 30 px
    assert without_slack(narrow, two, catalog).gaps == []
    wide = replace(_boxed(packs), gaps=[Gap(1, (220, 100, 270, 180))])  # 50 px: a C
    assert without_slack(wide, two, catalog).gaps == wide.gaps
    assert without_slack(narrow, two, {}).gaps == narrow.gaps  # no pack widths, no scale


def test_space_beside_another_skus_pack_in_a_planned_slot_is_no_gap() -> None:
    """A pack the plan does not put on the shelf, standing in a planned slot, fills it: the
    space beside it is no gap while the blocks and it fill every slot, and stays one when
    a planned facing is still missing."""
    two = plan([("A", 2), ("B", 2)])
    intruder = scene(["A", "X", "_", "B", "B"], gaps=[(1, 2, 3)])
    assert without_slack(intruder, two, {}).gaps == []
    assert ("extra", 1, 1, None, "X") in kinds(check_compliance(intruder, two))

    still_short = scene(["A", "X", "_", "B"], gaps=[(1, 2, 3)])
    assert without_slack(still_short, two, {}).gaps == still_short.gaps
