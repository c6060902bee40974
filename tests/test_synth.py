"""The renderer: deterministic, complete output, ground truth consistent with the pixels."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from shelfwatch.core.masks import decode_rle
from shelfwatch.planogram.formats import read_catalog, read_planogram
from shelfwatch.synth import SynthConfig, render_dataset


def test_same_seed_same_dataset(tmp_path: Path) -> None:
    render_dataset(tmp_path / "a", SynthConfig(photos=2, seed=5), progress=False)
    render_dataset(tmp_path / "b", SynthConfig(photos=2, seed=5), progress=False)
    render_dataset(tmp_path / "c", SynthConfig(photos=2, seed=6), progress=False)
    names = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    for name in names:
        assert filecmp.cmp(
            tmp_path / "a" / "images" / name, tmp_path / "b" / "images" / name, shallow=False
        )
    assert (tmp_path / "a" / "truth.json").read_text() == (
        tmp_path / "b" / "truth.json"
    ).read_text()
    assert (tmp_path / "a" / "truth.json").read_text() != (
        tmp_path / "c" / "truth.json"
    ).read_text()


def test_layout_and_formats(rendered: Path) -> None:
    for name in ("annotations.json", "catalog.csv", "planogram.csv", "truth.json", "photos.csv"):
        assert (rendered / name).exists(), name
    catalog = read_catalog(rendered / "catalog.csv")  # validates references exist too
    plans = read_planogram(rendered / "planogram.csv", {c.sku for c in catalog})
    assert len({p.planogram for p in plans}) == 4
    assert len(list((rendered / "refs").glob("*.png"))) == len(catalog)


def test_coco_ground_truth_matches_truth_json(rendered: Path) -> None:
    coco = COCO(str(rendered / "annotations.json"))
    truth = json.loads((rendered / "truth.json").read_text())
    for img in coco.dataset["images"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        t = truth[img["file_name"]]
        expected = sum(1 for s in t["shelves"] for sku in s["skus"] if sku is not None)
        assert len(anns) == expected
        for ann in anns[:5]:
            mask = decode_rle(ann["segmentation"])
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            assert mask.shape == (img["height"], img["width"])


def test_perturbations_recorded_as_expected_findings(rendered: Path) -> None:
    truth = json.loads((rendered / "truth.json").read_text())
    kinds = {p["type"] for t in truth.values() for p in t["perturbations"]}
    assert kinds <= {"removed", "reduced", "swapped", "extra"} and len(kinds) >= 3
    for t in truth.values():
        removed = [p for p in t["perturbations"] if p["type"] in ("removed", "reduced")]
        assert len(t["gaps"]) >= len(removed) - sum(
            1 for a in removed for b in removed if a is not b and a["shelf"] == b["shelf"]
        )
        types = [f["type"] for f in t["expected_findings"]]
        assert types.count("misplaced") == 2 * sum(
            1 for p in t["perturbations"] if p["type"] == "swapped"
        )


def test_varied_fixtures_break_the_plain_renderers_habits(tmp_path: Path) -> None:
    """``variety``: packs far narrower and wider than the plain ranges, one SKU's facings
    packed edge to edge on some shelves, colours shared between SKUs; truth still exact."""
    render_dataset(tmp_path, SynthConfig(photos=8, seed=3, variety=True), progress=False)
    catalog = read_catalog(tmp_path / "catalog.csv")
    widths = [c.width_cm for c in catalog if c.width_cm]
    assert min(widths) < 5.0 and max(widths) > 12.0  # beyond the plain ranges (5-12 cm)
    coco = COCO(str(tmp_path / "annotations.json"))
    truth = json.loads((tmp_path / "truth.json").read_text())
    touching = 0
    for img in coco.dataset["images"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        t = truth[img["file_name"]]
        assert len(anns) == sum(1 for s in t["shelves"] for sku in s["skus"] if sku)
        px_per_cm = t["px_per_cm"]
        by_shelf: dict[int, list[dict]] = {}
        for a in anns:
            by_shelf.setdefault(a["shelf"], []).append(a)
        for row in by_shelf.values():
            row.sort(key=lambda a: a["bbox"][0])
            for left, right in zip(row, row[1:], strict=False):
                same = left["category_id"] == right["category_id"]
                apart = right["bbox"][0] - (left["bbox"][0] + left["bbox"][2])
                touching += same and apart < 0.5 * px_per_cm
    assert touching >= 20  # the plain renderer keeps facings at least 0.5 cm apart
    plain = tmp_path / "plain"
    render_dataset(plain, SynthConfig(photos=1, seed=3), progress=False)
    assert (plain / "catalog.csv").read_text() != (tmp_path / "catalog.csv").read_text()
