"""The default OpenCV backend on rendered photos, SKU identification and bad photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from shelfwatch.core.imageio import load_image
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.planogram.formats import read_catalog
from shelfwatch.planogram.sku import load_signatures
from shelfwatch.vision.evaluation import Tally, gap_matches, greedy_match, interval_iou
from shelfwatch.vision.registry import get_segmenter


@pytest.fixture(scope="module")
def scored(rendered: Path) -> dict[str, object]:
    """Run the default backend with SKU labels over the rendered set and score it."""
    items = read_catalog(rendered / "catalog.csv")
    context = FixtureContext(
        width_cm=100, catalog={i.sku: i for i in items}, signatures=load_signatures(rendered, items)
    )
    coco = json.loads((rendered / "annotations.json").read_text())
    truth = json.loads((rendered / "truth.json").read_text())
    products, gaps = Tally(), Tally()
    shelf_exact = sku_ok = sku_n = 0
    count_err = []
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        boxes = np.array(
            [
                [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ]
                for a in anns
            ]
        )
        scene = analyze(
            load_image(rendered / "images" / img["file_name"]), get_segmenter("opencv"), context
        )
        t = truth[img["file_name"]]
        products.add(greedy_match(scene.products.xyxy, boxes), len(scene.products), len(boxes))
        count_err.append(abs(len(scene.products) - len(boxes)) / len(boxes))
        gaps.add(
            gap_matches(
                [(g.shelf, g.bbox) for g in scene.gaps],
                [(g["shelf"], tuple(g["bbox"])) for g in t["gaps"]],
            ),
            len(scene.gaps),
            len(t["gaps"]),
        )
        bands = [(s.y1, s.y2) for s in scene.shelves]
        shelf_exact += len(bands) == len(t["shelves"]) and all(
            interval_iou(b, (s["y1"], s["y2"])) >= 0.5
            for b, s in zip(bands, t["shelves"], strict=True)
        )
        # SKU accuracy on products matched to a ground-truth box.
        iou_cats = [a["category_id"] for a in anns]
        names = {c["id"]: c["name"] for c in coco["categories"]}
        for i, box in enumerate(scene.products.xyxy):
            x1, y1, x2, y2 = box
            inter = np.clip(
                np.minimum(x2, boxes[:, 2]) - np.maximum(x1, boxes[:, 0]), 0, None
            ) * np.clip(np.minimum(y2, boxes[:, 3]) - np.maximum(y1, boxes[:, 1]), 0, None)
            k = int(np.argmax(inter))
            if inter[k] > 0.5 * (x2 - x1) * (y2 - y1):
                sku_n += 1
                sku_ok += scene.products.sku[i] == names[iou_cats[k]]
    return {
        "products": products,
        "gaps": gaps,
        "shelf_exact": shelf_exact / len(coco["images"]),
        "count_mape": float(np.mean(count_err)),
        "sku_accuracy": sku_ok / max(1, sku_n),
    }


def test_products_found_on_renders(scored: dict[str, object]) -> None:
    products = scored["products"]
    assert products.precision >= 0.95, products  # type: ignore[attr-defined]
    assert products.recall >= 0.95, products  # type: ignore[attr-defined]
    assert scored["count_mape"] <= 0.05


def test_shelf_rows_on_renders(scored: dict[str, object]) -> None:
    assert scored["shelf_exact"] >= 0.95


def test_gaps_on_renders(scored: dict[str, object]) -> None:
    assert scored["gaps"].f1 >= 0.85, scored["gaps"]  # type: ignore[attr-defined]


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
