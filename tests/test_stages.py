"""The default backend's stages: each runs once per photo, the classical facing finder only
without detector weights, and shelves come out as boxes with their bays."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from shelfwatch.core.imageio import load_image
from shelfwatch.labels.coco import read_coco
from shelfwatch.vision import opencv_backend
from shelfwatch.vision.detector import infer
from shelfwatch.vision.detector.data import Source, sample
from shelfwatch.vision.evaluation import greedy_match
from shelfwatch.vision.facings import Fixture


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_each_stage_runs_once_and_the_classical_finder_not_at_all(
    rendered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = {
        "detect": _count_calls(monkeypatch, infer, "detect"),
        "shelves": _count_calls(monkeypatch, opencv_backend, "shelf_zones"),
        "products": _count_calls(monkeypatch, opencv_backend, "_with_row_facings"),
        "masks": _count_calls(monkeypatch, Fixture, "product_masks"),
        "gaps": _count_calls(monkeypatch, opencv_backend, "void_gaps"),
    }
    classical = _count_calls(monkeypatch, opencv_backend, "find_facings")
    image = load_image(next((rendered / "images").iterdir()))
    scene = opencv_backend.OpenCVSegmenter().segment(image)
    assert len(scene.products) > 10
    assert {name: len(calls) for name, calls in stages.items()} == dict.fromkeys(stages, 1)
    assert classical == []


def test_without_the_onnx_file_the_classical_finder_stands_in(
    rendered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package without ``facings.onnx`` still finds products and gaps, and says so in its
    model version."""
    monkeypatch.setattr(opencv_backend, "_shipped_detector", lambda: None)
    segmenter = opencv_backend.OpenCVSegmenter()
    assert segmenter.detector is None and segmenter.model_version.endswith("classical")
    detect_calls = _count_calls(monkeypatch, infer, "detect")
    coco = read_coco(rendered / "annotations.json")
    tp = truth_total = predicted = 0
    for image in coco.images[:3]:
        scene = segmenter.segment(load_image(rendered / "images" / image.file_name))
        truth = np.array([o.bbox for o in image.objects if o.category != "gap"])
        tp += greedy_match(scene.products.xyxy, truth, 0.5)
        truth_total += len(truth)
        predicted += len(scene.products)
    assert detect_calls == []
    assert tp / truth_total > 0.8 and tp / predicted > 0.8


def _two_bays() -> np.ndarray:
    """Two bays side by side with shelves at their own heights and boxes standing on them."""
    image = np.full((900, 1200, 3), 60, np.uint8)
    rng = np.random.default_rng(3)
    for x1, x2, rails in ((0, 600, [250, 480, 710]), (600, 1200, [330, 560, 800])):
        for y in rails:
            for px in range(x1 + 20, x2 - 60, 70):
                colour = [int(c) for c in rng.integers(90, 230, 3)]
                cv2.rectangle(image, (px, y - 150), (px + 58, y - 1), colour, -1)
            image[y : y + 16, x1:x2] = 230
    return image


def test_shelves_in_json_carry_columns_and_bays(tmp_path: Path, cli: object) -> None:
    from shelfwatch.cli import app

    photo = tmp_path / "two-bays.png"
    cv2.imwrite(str(photo), _two_bays())
    result = cli.invoke(app, ["analyze", str(photo), "--json"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    shelves = json.loads(result.stdout.strip().splitlines()[-1])["shelves"]
    assert {"index", "y1", "y2", "x1", "x2", "bay"} <= set(shelves[0])
    bays = {s["bay"] for s in shelves}
    assert bays == {1, 2}, shelves
    for s in shelves:
        assert 0 <= s["x1"] < s["x2"] <= 1200 and s["y1"] < s["y2"]
    left = [s for s in shelves if s["bay"] == 1]
    right = [s for s in shelves if s["bay"] == 2]
    assert max(s["x2"] for s in left) <= min(s["x1"] for s in right) + 5
    # Each bay's shelves at its own heights (rails at 250/480/710 and 330/560/800).
    assert sorted(s["y2"] for s in left) == pytest.approx([266, 496, 726], abs=12)
    assert sorted(s["y2"] for s in right) == pytest.approx([346, 576, 816], abs=12)


def test_each_class_learns_only_where_it_is_labeled() -> None:
    """A photo with void boxes only teaches products nothing but 'none here' on its voids; a
    photo with product boxes only teaches voids nothing but 'none here' on its products."""
    rng = np.random.default_rng(0)
    # Large enough that every crop lies inside the photo whatever the random scale.
    image = np.full((4000, 4000, 3), 128, np.uint8)
    box = np.array([[1900, 1900, 1980, 2060]], np.float32)
    none = np.zeros((0, 4), np.float32)
    for _ in range(5):
        voids = sample(Source(image, none, None, box, products_known=False, gaps_known=True), rng)
        products, gaps, edges, uprights = voids.valid
        assert edges.max() == 0 and uprights.max() == 0  # no shelf boxes: neither labeled
        assert gaps.min() == 1  # voids labeled everywhere in the crop
        assert 0 < products.sum() < 0.5 * products.size  # products: on the void only
        assert len(voids.boxes[0]) == 0 and len(voids.boxes[1]) == 1
        boxed = sample(Source(image, box), rng)
        products, gaps, _, _ = boxed.valid
        assert products.min() == 1 and 0 < gaps.sum() < 0.5 * gaps.size
        assert len(boxed.boxes[0]) == 1 and len(boxed.boxes[1]) == 0
