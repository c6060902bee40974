"""Model backends with tiny random checkpoints of the real transformers classes, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402

from shelfwatch.cli import app  # noqa: E402
from shelfwatch.core.errors import ShelfWatchError  # noqa: E402
from shelfwatch.core.imageio import load_image  # noqa: E402
from shelfwatch.settings import get_settings  # noqa: E402
from shelfwatch.vision import registry  # noqa: E402
from shelfwatch.vision.models.clipseg import ClipSegReferrer  # noqa: E402
from shelfwatch.vision.models.heatmaps import heatmap_to_instances, instances_at  # noqa: E402
from shelfwatch.vision.models.instances import InstanceSegmenter  # noqa: E402
from shelfwatch.vision.models.loading import ModelUnavailable  # noqa: E402
from tests.tiny_models import build_clipseg, build_mask2former  # noqa: E402


@pytest.fixture(scope="module")
def clipseg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clipseg(tmp_path_factory.mktemp("clipseg"))


@pytest.fixture(scope="module")
def mask2former_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mask2former(tmp_path_factory.mktemp("mask2former"))


@pytest.fixture
def photo(rendered: Path) -> np.ndarray:
    return load_image(sorted((rendered / "images").iterdir())[0])


@pytest.fixture
def model_env(
    monkeypatch: pytest.MonkeyPatch, home: Path, clipseg_dir: Path, mask2former_dir: Path
) -> None:
    monkeypatch.setenv("SHELFWATCH_CLIPSEG_MODEL", str(clipseg_dir))
    monkeypatch.setenv("SHELFWATCH_MASK2FORMER_MODEL", str(mask2former_dir))
    monkeypatch.setenv("SHELFWATCH_OFFLINE", "1")
    get_settings.cache_clear()
    registry.clear_cache()
    yield
    registry.clear_cache()


def test_shared_encoder_equals_standard_call(clipseg_dir: Path, photo: np.ndarray) -> None:
    referrer = ClipSegReferrer.from_pretrained(str(clipseg_dir), offline=True)
    prompts = ["orange bottles", "empty shelf", "a tall blue box of cereal", "cans"]
    shared = referrer.logits(photo, prompts)
    standard = referrer.standard_logits(photo, prompts)
    assert shared.shape == standard.shape == (4, 64, 64)
    assert torch.allclose(shared, standard, atol=1e-4)
    # Cached prompt embeddings give the same answer on the next photo, in another order.
    again = referrer.logits(photo[::-1].copy(), prompts[::-1])
    assert torch.allclose(
        again, referrer.standard_logits(photo[::-1].copy(), prompts[::-1]), atol=1e-4
    )


def test_visual_prompt_and_bad_prompts(clipseg_dir: Path, photo: np.ndarray) -> None:
    referrer = ClipSegReferrer.from_pretrained(str(clipseg_dir), offline=True)
    example = photo[100:300, 50:150]
    maps = referrer.heatmaps(photo, [example, "cans"])
    assert maps.shape == (2, *photo.shape[:2]) and maps.min() >= 0 and maps.max() <= 1
    with pytest.raises(ShelfWatchError, match="empty prompt"):
        referrer.logits(photo, ["  "])
    with pytest.raises(ShelfWatchError, match="too long"):
        referrer.logits(photo, ["x" * 500])


def test_heatmap_watershed_splits_touching_facings() -> None:
    prob = np.zeros((100, 200), np.float32)
    for x in (20, 60, 100):  # three packs touching side by side
        prob[20:90, x : x + 40] = 0.9
        prob[20:90, x + 38 : x + 42] = 0.6  # fainter seams between packs
    prob[15:95, 158:162] = 0.0
    instances = heatmap_to_instances(prob, threshold=0.5, split_ratio=0.2)
    assert len(instances) == 3
    xs = sorted(int(b[0]) for b in instances.xyxy)
    assert xs[0] <= 22 and 55 <= xs[1] <= 65 and 95 <= xs[2] <= 105


def test_instances_at_model_resolution_match_full_resolution() -> None:
    """Thresholding at model resolution and upsampling kept masks inside their boxes finds
    the packs the full-resolution heatmap finds, with boxes within a model pixel."""
    import cv2

    small = np.zeros((44, 88), np.float32)
    for x in (5, 25, 45):
        small[5:40, x : x + 18] = 0.9
    full = cv2.resize(small, (880, 440), interpolation=cv2.INTER_LINEAR)
    reference = heatmap_to_instances(full, threshold=0.5)
    fast = instances_at(small, (440, 880), threshold=0.5)
    assert len(fast) == len(reference) == 3
    for a, b in zip(sorted(fast.xyxy.tolist()), sorted(reference.xyxy.tolist()), strict=True):
        assert np.abs(np.array(a) - np.array(b)).max() <= 10  # one model pixel = 10 px
    for box, mask in zip(fast.xyxy.astype(int), fast.masks, strict=True):
        assert mask.shape == (box[3] - box[1], box[2] - box[0]) and mask.mean() > 0.8


def test_mask2former_postprocess_matches_full_upsampling(
    mask2former_dir: Path, photo: np.ndarray
) -> None:
    seg = InstanceSegmenter.from_pretrained("mask2former", str(mask2former_dir), offline=True)
    seg.threshold = 0.0
    inputs = seg.inputs([photo])
    outputs = seg.forward(inputs)
    products = seg.postprocess(outputs, inputs, *photo.shape[:2])
    assert len(products) > 0
    # Reference: every query upsampled to the padded input, unpadded, resized to the photo.
    h, w = photo.shape[:2]
    mask = inputs["pixel_mask"][0]
    in_h, in_w = int(mask.any(1).sum()), int(mask.any(0).sum())
    pad_h, pad_w = inputs["pixel_values"].shape[-2:]
    full = torch.nn.functional.interpolate(
        outputs.masks_queries_logits, size=(pad_h, pad_w), mode="bilinear", align_corners=False
    )[0]
    full = (
        torch.nn.functional.interpolate(
            full[None, :, :in_h, :in_w], size=(h, w), mode="bilinear", align_corners=False
        )[0]
        > 0
    )
    for i in range(len(products)):
        ours = products.full_mask(i, h, w)
        ious = [(ours & ref).sum() / max(1, (ours | ref).sum()) for ref in full.numpy()]
        assert max(ious) >= 0.9


@pytest.mark.parametrize("backend", ["clipseg", "mask2former", "fused"])
def test_analyze_with_each_backend(
    model_env: None, cli: CliRunner, rendered: Path, backend: str
) -> None:
    image = sorted((rendered / "images").iterdir())[0]
    result = cli.invoke(
        app,
        [
            "analyze",
            str(image),
            "--backend",
            backend,
            "--json",
            "--catalog",
            str(rendered / "catalog.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["backend"] == backend
    assert len(record["shelves"]) == 4  # shelf geometry does not depend on the model
    assert record["counts"]["products"] == len(record["products"])


def test_missing_weights_offline_is_a_one_line_error(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch, rendered: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHELFWATCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("SHELFWATCH_CLIPSEG_MODEL", "CIDAS/clipseg-rd64-refined")
    get_settings.cache_clear()
    registry.clear_cache()
    image = sorted((rendered / "images").iterdir())[0]
    result = cli.invoke(app, ["analyze", str(image), "--backend", "clipseg"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: CIDAS/clipseg-rd64-refined: weights not available in the local cache (run "
        "`shelfwatch models pull` where a network is available, or point the setting at a "
        "local model folder)"
    ]


def test_bad_model_folders(clipseg_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="config.json missing"):
        InstanceSegmenter.from_pretrained("mask2former", str(tmp_path), offline=True)
    with pytest.raises(ModelUnavailable, match="is a 'clipseg' model, expected 'mask2former'"):
        InstanceSegmenter.from_pretrained("mask2former", str(clipseg_dir), offline=True)
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "config.json").write_text((clipseg_dir / "config.json").read_text())
    with pytest.raises(ModelUnavailable, match="no weights"):
        ClipSegReferrer.from_pretrained(str(weightless), offline=True)


def test_unknown_backend(cli: CliRunner, rendered: Path) -> None:
    image = sorted((rendered / "images").iterdir())[0]
    result = cli.invoke(app, ["analyze", str(image), "--backend", "nope"])
    assert result.exit_code == 1 and "unknown backend 'nope'" in result.stderr


def test_batches_equal_single_photos(
    clipseg_dir: Path, mask2former_dir: Path, rendered: Path
) -> None:
    photos = [load_image(p) for p in sorted((rendered / "images").iterdir())[:3]]
    referrer = ClipSegReferrer.from_pretrained(str(clipseg_dir), offline=True)
    prompts = ["cans", "empty shelf"]
    batch = referrer.logits_batch(photos, prompts)
    for photo, logits in zip(photos, batch, strict=True):
        assert torch.allclose(logits, referrer.standard_logits(photo, prompts), atol=1e-4)
    seg = InstanceSegmenter.from_pretrained("mask2former", str(mask2former_dir), offline=True)
    seg.threshold = 0.0
    same_size = [p for p in photos if p.shape == photos[0].shape]
    together = seg.predict_batch(same_size)
    for photo, products in zip(same_size, together, strict=True):
        alone = seg.predict(photo)
        assert np.array_equal(alone.xyxy, products.xyxy)


def test_instance_inputs_take_a_list(mask2former_dir: Path, photo: np.ndarray) -> None:
    seg = InstanceSegmenter.from_pretrained("mask2former", str(mask2former_dir), offline=True)
    with pytest.raises(TypeError, match="list of photos"):
        seg.inputs(photo)  # a bare array would be read as one photo per pixel row
