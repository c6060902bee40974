"""Planned facings confirmed from the detector's unsure boxes (``planogram.confirm``), on
drawn packs: a pack the plan expects beside its run counts, an empty slot never does."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from shelfwatch import pipeline
from shelfwatch.core.imageio import load_image
from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.db.convert import load_scene
from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Photo
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.planogram.compliance import check_compliance
from shelfwatch.planogram.confirm import confirm_planned
from shelfwatch.planogram.formats import (
    CatalogItem,
    PlanogramPosition,
    read_catalog,
    read_planogram,
)
from shelfwatch.planogram.sku import identify_skus, load_signatures, reference_signature
from shelfwatch.services.exports import write_csv
from shelfwatch.synth import SynthConfig, render_dataset
from shelfwatch.vision.annotate import label
from shelfwatch.vision.registry import get_segmenter
from tests.scenes import stored_photo

RED, BLUE = (40, 40, 220), (220, 60, 40)  # BGR
BACK = 90  # the fixture's grey back


def _pack(colour: tuple[int, int, int]) -> np.ndarray:
    """A 50 x 100 px pack: its colour with a white label band."""
    pack = np.zeros((100, 50, 3), np.uint8)
    pack[:] = colour
    pack[33:50] = 255
    return pack


def _packshot(colour: tuple[int, int, int]) -> np.ndarray:
    shot = np.full((120, 70, 3), 128, np.uint8)
    shot[10:-10, 10:-10] = _pack(colour)
    return shot


SIGNATURES = [
    reference_signature("RED", _packshot(RED), height_cm=20, width_cm=10),
    reference_signature("BLUE", _packshot(BLUE), height_cm=20, width_cm=10),
]
CATALOG = {
    "RED": CatalogItem("RED", "red", "BrandX", "c", 10, 20),
    "BLUE": CatalogItem("BLUE", "blue", "BrandY", "c", 10, 20),
}


def _photo(slots: list[tuple[int, int, int] | None]) -> np.ndarray:
    """One shelf of 50 px slots from x = 100 (None: an empty slot, the back shows)."""
    photo = np.full((300, 800, 3), BACK, np.uint8)
    for k, colour in enumerate(slots):
        if colour is not None:
            photo[100:200, 100 + 50 * k : 150 + 50 * k] = _pack(colour)
    return photo


def _slot(k: int) -> list[int]:
    return [100 + 50 * k, 100, 150 + 50 * k, 200]


def _scene(photo: np.ndarray, sure: list[int], unsure: list[int]) -> ShelfScene:
    """Products on the ``sure`` slots (SKUs named), unsure boxes on the others."""
    scene = ShelfScene(
        width=photo.shape[1],
        height=photo.shape[0],
        shelves=[Shelf(1, 90, 210, 100, 700)],
        products=Products(xyxy=np.array([_slot(k) for k in sure]), shelf=np.ones(len(sure))),
        candidates=Products(
            xyxy=np.array([_slot(k) for k in unsure]).reshape(-1, 4),
            scores=np.full(len(unsure), 0.3),
            shelf=np.ones(len(unsure)),
        ),
    )
    return identify_skus(photo, scene, SIGNATURES)


def _plan(*blocks: tuple[str, int]) -> list[PlanogramPosition]:
    return [PlanogramPosition("P", "F", 1, k, sku, n) for k, (sku, n) in enumerate(blocks, start=1)]


def test_an_unsure_pack_beside_its_short_run_is_a_facing_an_empty_slot_is_not() -> None:
    """Four red facings planned, three red packs on the shelf, the detector sure of two: the
    third counts (it looks like the planned pack, where the plan puts it), the empty fourth
    slot does not (the back is no SKU), so `facings_short` stays and is true; the blue pack
    the plan expects, seen only as an unsure box, is no longer `missing`."""
    photo = _photo([RED, RED, RED, None, BLUE])
    scene = _scene(photo, sure=[0, 1], unsure=[2, 3, 4])
    plan = _plan(("RED", 4), ("BLUE", 1))
    before = {(f.type, f.observed_facings) for f in check_compliance(scene, plan, CATALOG).findings}
    assert before == {("facings_short", 2), ("missing", 0)}

    confirmed = confirm_planned(photo, scene, plan, CATALOG, SIGNATURES)
    assert [int(b[0]) for b in confirmed.products.xyxy] == [100, 150, 200, 300]
    assert confirmed.products.sku == ["RED", "RED", "RED", "BLUE"]
    after = check_compliance(confirmed, plan, CATALOG).findings
    assert [(f.type, f.expected_sku, f.observed_facings) for f in after] == [
        ("facings_short", "RED", 3)
    ]


def test_unsure_boxes_are_taken_only_for_what_the_plan_still_expects() -> None:
    """A plan already met takes none; a short run takes only the boxes beside it (not one
    three slots away, and not a box on the same pack twice); without a plan or an unsure box
    the scene is unchanged."""
    photo = _photo([RED, RED, RED, None, None, None, RED])
    scene = _scene(photo, sure=[0, 1], unsure=[2, 6])
    assert confirm_planned(photo, scene, _plan(("RED", 2)), CATALOG, SIGNATURES) is scene
    grown = confirm_planned(photo, scene, _plan(("RED", 5)), CATALOG, SIGNATURES)
    assert [int(b[0]) for b in grown.products.xyxy] == [100, 150, 200]

    twice = _scene(photo, sure=[0, 1], unsure=[2, 2])
    grown = confirm_planned(photo, twice, _plan(("RED", 5)), CATALOG, SIGNATURES)
    assert len(grown.products) == 3
    assert confirm_planned(photo, scene, [], CATALOG, SIGNATURES) is scene


def test_an_unsure_box_under_a_product_or_a_gap_is_not_a_facing() -> None:
    """A box the products or a gap already cover is no facing of its own; one that is
    taken gets its box as its mask where the products have masks."""
    photo = _photo([RED, RED, RED, None])
    scene = _scene(photo, sure=[0, 1, 2], unsure=[1])
    assert confirm_planned(photo, scene, _plan(("RED", 5)), CATALOG, SIGNATURES) is scene
    scene = _scene(photo, sure=[0, 1], unsure=[2, 3])
    scene.gaps = [Gap(1, tuple(_slot(3)))]  # the gap stage saw the empty last slot
    masks = [np.ones((100, 50), bool), np.ones((100, 50), bool)]
    scene.products = replace(scene.products, masks=masks)
    grown = confirm_planned(photo, scene, _plan(("RED", 5)), CATALOG, SIGNATURES)
    assert [int(b[0]) for b in grown.products.xyxy] == [100, 150, 200]
    assert grown.products.masks is not None and grown.products.masks[2].shape == (100, 50)


def test_a_pack_no_box_was_drawn_on_beside_its_short_run_is_a_facing() -> None:
    """A red pack the detector drew no box on, on the bare stretch beside the red run, counts
    (a slot one facing wide looks like the planned pack and adds a facing); the empty slots
    after it do not, nor does a red pack beyond them: the stretch is cut into slots from the
    run's side, as many as the plan still expects. The slot has score 0 (no detector saw it)
    and its box as its mask."""
    photo = _photo([RED, RED, RED, None, None, BLUE])
    scene = _scene(photo, sure=[0, 1, 5], unsure=[])
    scene.products = replace(scene.products, masks=[np.ones((100, 50), bool)] * 3)
    plan = _plan(("RED", 5), ("BLUE", 1))
    grown = confirm_planned(photo, scene, plan, CATALOG, SIGNATURES)
    assert [int(b[0]) for b in grown.products.xyxy] == [100, 150, 200, 350]
    assert grown.products.sku == ["RED", "RED", "RED", "BLUE"]
    assert grown.products.scores[2] == 0 and grown.products.masks[2].shape == (100, 50)
    findings = check_compliance(grown, plan, CATALOG).findings
    assert [(f.type, f.expected_sku, f.observed_facings) for f in findings] == [
        ("facings_short", "RED", 3)
    ]


def test_a_bare_stretch_holding_another_sku_or_nothing_adds_no_facing() -> None:
    """Beside a short red run: a blue pack, then an empty slot: neither is red, nothing is
    added; a stretch that starts more than half a facing from the run is not looked at; the
    rest of a pack a box holds half of is red but adds no facing (the realogram counts the
    box and the slot as one pack), so it is not taken."""
    photo = _photo([RED, RED, BLUE, None, RED])
    scene = _scene(photo, sure=[0, 1], unsure=[])
    assert confirm_planned(photo, scene, _plan(("RED", 4)), CATALOG, SIGNATURES) is scene
    apart = _photo([RED, RED, None, RED])
    scene = _scene(apart, sure=[0, 1], unsure=[])
    scene.gaps = [Gap(1, tuple(_slot(2)))]
    assert confirm_planned(apart, scene, _plan(("RED", 3)), CATALOG, SIGNATURES) is scene
    five = _photo([RED] * 5)
    half = [_slot(0), _slot(1), [200, 100, 225, 200], _slot(3), _slot(4)]
    scene = _scene(five, sure=[], unsure=[])
    scene.products = Products(xyxy=np.array(half), shelf=np.ones(5))
    scene = identify_skus(five, scene, SIGNATURES)
    assert confirm_planned(five, scene, _plan(("RED", 6)), CATALOG, SIGNATURES) is scene


def test_the_default_backend_hands_its_unsure_boxes_to_the_planogram(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the whole pipeline on varied renders: the backend keeps the boxes it was
    unsure of apart from its products (in the photo's pixels, on its shelves, not counted),
    and with the planogram known, the products added are some of those boxes or slots on
    bare stretches (score 0), each a SKU planned on its shelf. (The steps after it, which
    make each pack's pieces one product and locate runs of packs by their packshot, are left
    out here: they would merge or move some of them.)"""
    monkeypatch.setattr(pipeline, "whole_packs", lambda scene, catalog: scene)
    monkeypatch.setattr(pipeline, "located_packs", lambda image, scene, catalog, sigs: scene)
    render_dataset(tmp_path, SynthConfig(photos=10, seed=502, variety=True), progress=False)
    items = read_catalog(tmp_path / "catalog.csv")
    catalog = {i.sku: i for i in items}
    signatures = load_signatures(tmp_path, items)
    plans = read_planogram(tmp_path / "planogram.csv", catalog)
    truth = json.loads((tmp_path / "truth.json").read_text())
    segmenter = get_segmenter("opencv")
    added = slots = 0
    for name, photo in truth.items():
        image = load_image(tmp_path / "images" / name)
        plan = [p for p in plans if p.planogram == photo["planogram"]]
        alone = analyze(image, segmenter, FixtureContext(catalog=catalog, signatures=signatures))
        unsure = alone.candidates
        assert len(unsure) and unsure.xyxy.max() <= max(image.shape[:2])
        assert set(unsure.shelf.tolist()) <= {s.index for s in alone.shelves}
        record = alone.to_json(name)
        assert "candidates" not in record and record["counts"]["products"] == len(alone.products)
        known = FixtureContext(planogram=plan, catalog=catalog, signatures=signatures)
        planned = analyze(image, segmenter, known)
        new = [
            i
            for i, box in enumerate(planned.products.xyxy.tolist())
            if box not in alone.products.xyxy.tolist()
        ]
        assert len(planned.products) == len(alone.products) + len(new)
        for i in new:
            on_shelf = {p.sku for p in plan if p.shelf == planned.products.shelf[i]}
            assert planned.products.sku[i] in on_shelf
            # An unsure box of the backend's, or a slot on a bare stretch (no detector score).
            from_box = planned.products.xyxy[i].tolist() in unsure.xyxy.tolist()
            slots += not from_box
            assert from_box or planned.products.scores[i] == 0
        assert [
            planned.products.source[i] == "planogram" for i in range(len(planned.products))
        ] == [i in new for i in range(len(planned.products))]
        added += len(new)
    assert added >= 3 and slots >= 1


def test_a_confirmed_facing_is_marked_so_in_the_report_storage_and_export(tmp_path: Path) -> None:
    """A facing the plan confirmed on a bare stretch says so (source ``planogram``) in the
    analysis record, its overlay label, `check`'s realogram and KPIs, the stored rows read
    back and the `products` export; the detector's boxes say ``detector``."""
    photo = _photo([RED, RED, RED, None, None, BLUE])
    plan = _plan(("RED", 5), ("BLUE", 1))
    grown = confirm_planned(
        photo, _scene(photo, sure=[0, 1, 5], unsure=[]), plan, CATALOG, SIGNATURES
    )
    sources = ["detector", "detector", "planogram", "detector"]
    assert grown.products.source == sources
    assert [p["source"] for p in grown.to_json("shelf.png")["products"]] == sources
    assert [label(grown, i) for i in range(4)] == ["RED", "RED", "RED (plan)", "BLUE"]
    report = check_compliance(grown, plan, CATALOG).to_json()
    assert report["compliance"]["products_confirmed_by_planogram"] == 1
    slots = report["realogram"][0]["facings"]
    assert [(f["sku"], f["source"]) for f in slots] == [
        ("RED", "detector"),
        ("RED", "detector"),
        ("RED", "planogram"),
        ("BLUE", "detector"),
    ]

    url = f"sqlite:///{tmp_path / 'sources.db'}"
    upgrade(url)
    factory = session_factory(url)
    with factory.begin() as session:
        row = stored_photo(session, grown, dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
    with factory() as session:
        stored = load_scene(session, session.get(Photo, row.id), with_masks=False)
        out = io.StringIO()
        write_csv(session, "products", out)
    assert stored.products.source == sources
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["source"] for r in exported] == sources
