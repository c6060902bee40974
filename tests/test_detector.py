"""The learned facing detector: shipped weights, training, resume, bad input."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shelfwatch.cli import app
from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.labels.coco import read_coco
from shelfwatch.vision.detector.infer import SHIPPED, THRESHOLD, WEAK_FLOOR, detect
from shelfwatch.vision.evaluation import greedy_match
from tests.processes import kill_then_resume, train_command

torch = pytest.importorskip("torch")  # training needs the models extra (CI installs it)


def test_shipped_detector_finds_rendered_products(rendered: Path) -> None:
    coco = read_coco(rendered / "annotations.json")
    tp = total = predicted = 0
    for image in coco.images[:4]:
        found = detect(load_image(rendered / "images" / image.file_name))
        boxes, scores = found.boxes, found.scores
        truth = np.array([o.bbox for o in image.objects if o.category != "gap"])
        tp += greedy_match(boxes, truth, 0.5)
        total += len(truth)
        predicted += len(boxes)
        assert (scores >= THRESHOLD).all() and (boxes[:, 2] > boxes[:, 0]).all()
        # Below the photo's cut, down to WEAK_FLOOR: the weak ones, for the row rule.
        weak = found.weak_scores
        assert ((weak >= WEAK_FLOOR) & (weak < scores.min())).all()
    assert SHIPPED.is_file()
    assert tp / total > 0.95 and tp / predicted > 0.95


def test_shelf_edges_are_learned_along_box_bottoms_where_every_shelf_is_boxed() -> None:
    """The shelf-edge target is a line under each shelf box across its columns; the loss
    counts only inside the area where every shelf is boxed (a side bay is not labeled)."""
    from shelfwatch.vision.detector.data import STRIDE, Source, edge_targets, sample

    heat, centre = edge_targets(np.array([[40, 20, 200, 100]], np.float32), 128, 256)
    rows, cols = np.nonzero(centre[0])
    assert set(rows) == {100 // STRIDE} and (cols.min(), cols.max()) == (10, 49)
    assert heat[0, 100 // STRIDE + 1, 20] == pytest.approx(np.exp(-1 / (2 * 1.5**2)))
    assert heat[0, :, 60:].max() == 0  # beyond the box's columns: no line
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (640, 640, 3), dtype=np.uint8)
    shelves = np.array([[0, 100, 320, 300], [0, 300, 320, 500]], np.float32)
    unlabeled = Source(image, np.array([[10, 110, 60, 290]], np.float32))
    labeled = Source(
        image,
        unlabeled.boxes,
        shelves=shelves,
        shelf_region=np.array([[0, 100, 320, 500]], np.float32),
    )
    assert sample(unlabeled, np.random.default_rng(1)).valid[2].max() == 0
    crops = [sample(labeled, np.random.default_rng(seed)) for seed in range(6)]
    assert all((c.valid[2] <= c.valid[0]).all() for c in crops)  # products: all labeled
    assert any(c.valid[2].sum() < c.valid[0].sum() for c in crops)  # not the right half
    assert any(c.valid[2].max() == 1 for c in crops)
    assert all(len(c.shelves) <= 2 for c in crops) and any(len(c.shelves) for c in crops)


def test_uprights_are_learned_at_the_sides_of_annotated_bays() -> None:
    """The upright target is a line down each side of every bay of two or more boxed
    shelves, from its top shelf to its bottom one; not where the frame cuts the bay, nor
    beside a lone box. Its loss counts a little beyond the boxed area (the sides lie on its
    border)."""
    from shelfwatch.vision.detector.data import STRIDE, Source, bay_sides, sample, upright_targets

    shelves = np.array(
        [
            [0, 100, 300, 200],
            [0, 200, 300, 300],
            [310, 100, 620, 200],
            [310, 200, 620, 300],
            [630, 100, 700, 150],
        ],
        np.float32,
    )
    sides = bay_sides(shelves, 640)
    assert sorted(sides[:, 0].tolist()) == [300, 310, 620]  # x = 0 is the photo's edge
    assert (sides[:, 1] == 100).all() and (sides[:, 3] == 300).all()
    heat, centre = upright_targets(sides[sides[:, 0] == 300], 400, 640)
    rows, cols = np.nonzero(centre[0])
    assert set(cols) == {300 // STRIDE} and (rows.min(), rows.max()) == (25, 74)
    assert heat[0, 50, 300 // STRIDE + 1] == pytest.approx(np.exp(-1 / (2 * 1.5**2)))
    assert heat[0, 80:].max() == 0  # below the bay: no line
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (400, 700, 3), dtype=np.uint8)
    labeled = Source(
        image,
        np.array([[590, 110, 640, 190]], np.float32),
        shelves=shelves[:4],
        shelf_region=np.array([[0, 100, 620, 300]], np.float32),
    )
    crops = [sample(labeled, np.random.default_rng(seed)) for seed in range(6)]
    assert all((c.valid[3] >= c.valid[2]).all() for c in crops)
    assert any(c.valid[3].sum() > c.valid[2].sum() for c in crops)
    assert any(len(c.uprights) for c in crops)


def test_the_void_mask_is_learned_inside_void_boxes_where_voids_are_labeled() -> None:
    """The void-mask target is the inside of every void box; its loss counts where voids are
    labeled (a photo of void boxes: everywhere; a photo of product boxes: on its products)."""
    from shelfwatch.vision.detector.data import STRIDE, Source, sample, void_mask_targets
    from shelfwatch.vision.detector.train import mask_loss, void_mask_batch

    mask = void_mask_targets(np.array([[40, 20, 200, 100]], np.float32), 128, 256)
    rows, cols = np.nonzero(mask[0])
    assert (rows.min(), rows.max() + 1) == (20 // STRIDE, 100 // STRIDE)
    assert (cols.min(), cols.max() + 1) == (40 // STRIDE, 200 // STRIDE)
    assert mask.sum() == (100 - 20) // STRIDE * (200 - 40) // STRIDE
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    voids = Source(image, np.zeros((0, 4), np.float32), gaps=np.array([[100, 100, 160, 220]],
                   np.float32), products_known=False, gaps_known=True)  # fmt: skip
    products = Source(image, np.array([[300, 100, 360, 220]], np.float32))
    x, target, valid = void_mask_batch([voids], np.random.default_rng(1), 2)
    # Every void boxed: labeled on the voids and around them.
    assert target.sum() > 0 and (valid[target == 1] == 1).all()
    assert valid.sum() > 3 * target.sum()
    on_voids = valid.sum()
    x, target, valid = void_mask_batch([products], np.random.default_rng(1), 2)
    assert target.sum() == 0 and 0 < valid.sum() < on_voids  # only its products: no void
    s = sample(voids, np.random.default_rng(2))
    target = torch.from_numpy(void_mask_targets(s.boxes[1], *s.image.shape[1:]))[None]
    valid = torch.from_numpy(s.valid[1:2])[None]
    right, wrong = 8 * (2 * target - 1), -8 * (2 * target - 1)
    assert mask_loss(right, target, valid) < 0.1 < mask_loss(wrong, target, valid)


def test_without_the_one_map_nets_the_detector_still_runs(tmp_path: Path) -> None:
    """Weights trained on labels alone have no shelf-edge or void-mask net beside them: the
    detector runs, shelves come from the photo's own lines and gaps from void centres."""
    (tmp_path / "facings.onnx").write_bytes(SHIPPED.read_bytes())
    photo = np.full((480, 640, 3), 128, np.uint8)
    alone = detect(photo, tmp_path / "facings.onnx")
    assert alone.shelf_edges is None and alone.void_mask is None and alone.uprights is None
    shipped = detect(photo)
    assert shipped.shelf_edges is not None and shipped.shelf_edges.shape == (480, 640)
    assert shipped.uprights is not None and shipped.uprights.shape == (480, 640)
    assert shipped.void_mask is not None and shipped.void_mask.shape == (480, 640)
    assert 0 <= shipped.void_mask.min() <= shipped.void_mask.max() <= 1


def test_the_second_detector_is_averaged_with_the_first(
    tmp_path: Path,
    rendered: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the detector_ensemble setting (on by default), the 640 px pass reads the second
    detector shipped beside the first and averages their maps: a copy of the detector as its
    second changes nothing, the shipped second detector changes the scores; with the setting
    off, or without the file, the detector runs alone (said where the setting was asked for)."""
    from shelfwatch.settings import get_settings
    from shelfwatch.vision.detector.infer import SECOND, _mean_output
    from shelfwatch.vision.opencv_backend import OpenCVSegmenter

    photo = load_image(next((rendered / "images").iterdir()))
    (tmp_path / "facings.onnx").write_bytes(SHIPPED.read_bytes())
    (tmp_path / SECOND).write_bytes(SHIPPED.read_bytes())
    alone = detect(photo, tmp_path / "facings.onnx")
    twin = detect(photo, tmp_path / "facings.onnx", second=tmp_path / SECOND)
    np.testing.assert_allclose(twin.boxes, alone.boxes, atol=1e-3)
    np.testing.assert_allclose(twin.scores, alone.scores, atol=1e-4)
    shipped = detect(photo, second=SHIPPED.with_name(SECOND))
    assert len(shipped.scores) != len(alone.scores) or not np.allclose(
        shipped.scores, alone.scores, atol=1e-3
    )
    # Probabilities are averaged, not logits: p = 0.9 and 0.5 make 0.7.
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    a, b = np.zeros((6, 1, 1), np.float32), np.zeros((6, 1, 1), np.float32)
    a[0], b[0], a[5], b[5], a[1], b[1] = logit(0.9), logit(0.5), logit(0.2), logit(0.4), 1, 3
    out = _mean_output(a, b)
    assert out[0, 0, 0] == pytest.approx(logit(0.7), abs=1e-4)
    assert out[5, 0, 0] == pytest.approx(logit(0.3), abs=1e-4) and out[1, 0, 0] == 2
    # The backend reads it unless the setting says no, and its model version says so.
    both = OpenCVSegmenter()
    assert both.second == SHIPPED.with_name(SECOND)
    assert both.model_version != OpenCVSegmenter(ensemble=False).model_version
    no_file = tmp_path / "alone"
    no_file.mkdir()
    (no_file / "facings.onnx").write_bytes(SHIPPED.read_bytes())
    with caplog.at_level(logging.WARNING):
        assert OpenCVSegmenter(no_file / "facings.onnx").second is None
    assert "not found" not in caplog.text  # weights trained without it: alone, unsaid
    try:
        monkeypatch.setenv("SHELFWATCH_DETECTOR_ENSEMBLE", "0")
        get_settings.cache_clear()
        assert OpenCVSegmenter().second is None
        monkeypatch.setenv("SHELFWATCH_DETECTOR_ENSEMBLE", "1")
        get_settings.cache_clear()
        with caplog.at_level(logging.WARNING):
            assert OpenCVSegmenter(no_file / "facings.onnx").second is None
        assert f"{no_file / SECOND} not found: the detector runs alone" in caplog.text
    finally:
        get_settings.cache_clear()


def _fake_pass(side: int, sure: dict[int, tuple[int, float]], photo: tuple[int, int]):
    """The detector's output at ``side``: ``sure[side]`` = (products, score) peaks in a row,
    each about 30 px tall at that input, nothing else."""
    from shelfwatch.vision.detector.data import STRIDE

    h, w = photo
    scale = side / max(h, w)
    ih, iw = round(h * scale), round(w * scale)
    ph, pw = -(-ih // 32) * 32, -(-iw // 32) * 32
    out = np.zeros((6, ph // STRIDE, pw // STRIDE), np.float32)
    out[0] = out[5] = -10.0  # no product, no void
    out[1:3] = np.log(30 / STRIDE)  # boxes 30 px wide and tall at this input
    n, score = sure[side]
    for k in range(n):
        out[0, out.shape[1] // 2, 4 + 8 * k] = np.log(score / (1 - score))
    return out, scale, np.zeros((1, 3, ph, pw), np.float32), (ih, iw)


def test_every_net_of_a_photo_stays_loaded(rendered: Path) -> None:
    """A photo read with both detectors reads five nets (two detectors, the shelf-edge,
    void-mask and upright nets); all stay loaded, so a second photo reads none from disk
    (with a four-net cache every photo read one again: 30 ms)."""
    from shelfwatch.vision.detector.infer import SECOND, load

    photo = load_image(next((rendered / "images").iterdir()))
    load.cache_clear()
    detect(photo, second=SHIPPED.with_name(SECOND))
    assert load.cache_info().currsize == 5
    misses = load.cache_info().misses
    detect(photo, second=SHIPPED.with_name(SECOND))
    assert load.cache_info().misses == misses


def test_the_pass_the_detector_is_surer_in_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A close-up shows packs larger than the sizes the detector learned: at 640 px it
    fires on their parts, unsure; at the smaller input it finds the packs, sure. The pass
    whose 90th percentile score is higher by the margin is the one used."""
    import shelfwatch.vision.detector.infer as infer

    photo = np.zeros((960, 1280, 3), np.uint8)
    for sure, side in (
        ({640: (20, 0.3), 384: (5, 0.8)}, 384),  # parts at 640, packs at 384
        ({640: (20, 0.8), 384: (5, 0.3)}, 640),  # an ordinary photo: 640 is surer
        ({640: (20, 0.3), 384: (5, 0.33)}, 640),  # within the margin: 640 stays
    ):
        monkeypatch.setattr(
            infer,
            "_forward",
            lambda net, bgr, s, second=None, sure=sure: _fake_pass(s, sure, (960, 1280)),
        )
        found = infer.detect(photo)
        assert len(found.boxes) == sure[side][0], (sure, side)
        # Boxes in the photo's pixels: 30 px at the chosen input.
        assert np.allclose(found.boxes[:, 3] - found.boxes[:, 1], 30 * 1280 / side, atol=1)
        assert found.shelf_edges is not None and found.shelf_edges.shape == (960, 1280)
    # A photo no larger than the small input has one pass only.
    sides: list[int] = []

    def one(net: object, bgr: np.ndarray, s: int, second: object = None):
        sides.append(s)
        return _fake_pass(s, {640: (5, 0.3)}, (240, 320))

    monkeypatch.setattr(infer, "_forward", one)
    assert len(infer.detect(np.zeros((240, 320, 3), np.uint8)).boxes) == 5 and sides == [640]


def _one_box(side: int, box: tuple[float, float, float, float] | None, photo: tuple[int, int]):
    """The detector's output at ``side`` with one product, ``box`` in photo pixels (or none)."""
    from shelfwatch.vision.detector.data import STRIDE

    out, scale, blob, size = _fake_pass(side, {side: (0, 0.5)}, photo)
    if box is not None:
        x1, y1, x2, y2 = (v * scale / STRIDE for v in box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = int(cx), int(cy)
        out[0, iy, ix] = np.log(0.9 / 0.1)
        out[1:3, iy, ix] = np.log(x2 - x1), np.log(y2 - y1)
        out[3:5, iy, ix] = cx - ix, cy - iy
    return out, scale, blob, size


def test_both_passes_on_one_product_are_averaged(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 640 px the detector draws a tall pack short; the smaller pass's box of the same
    product is averaged in. A box the other pass has nothing on stays as it is."""
    import shelfwatch.vision.detector.infer as infer

    photo = np.zeros((960, 1280, 3), np.uint8)
    for small, expected in (
        ((600, 380, 700, 600), (600, 390, 700, 590)),  # same product: the mean of both
        ((900, 380, 1000, 600), (600, 400, 700, 580)),  # another place: unchanged
        (None, (600, 400, 700, 580)),
    ):
        boxes = {640: (600, 400, 700, 580), 384: small}
        monkeypatch.setattr(
            infer,
            "_forward",
            lambda net, bgr, s, second=None, b=boxes: _one_box(s, b[s], (960, 1280)),
        )
        found = infer.detect(photo)
        assert len(found.boxes) == 1
        assert np.allclose(found.boxes[0], expected, atol=1.0), (small, found.boxes)


def _recall(model: Path, photos: list[tuple[Path, object]], threshold: float) -> float:
    tp = total = 0
    for file, image in photos:
        boxes = detect(load_image(file), model, threshold).boxes
        truth = np.array([o.bbox for o in image.objects if o.category != "gap"])
        tp += greedy_match(boxes, truth, 0.3)
        total += len(truth)
    return tp / total


def test_training_lowers_loss_and_raises_recall(rendered: Path, tmp_path: Path) -> None:
    """A few steps from random weights on rendered photos: the loss falls and the model finds
    more of those photos' products than the untrained one (at a low threshold: it is young)."""
    from shelfwatch.services.training import sources_from
    from shelfwatch.vision.detector.train import FacingNet, export_onnx, train

    coco = read_coco(rendered / "annotations.json")
    photos = [(rendered / "images" / im.file_name, im) for im in coco.images[:4]]
    torch.manual_seed(0)
    export_onnx(FacingNet().eval(), tmp_path / "untrained.onnx")
    info = train(
        sources_from(photos),
        tmp_path / "model",
        epochs=4,
        steps_per_epoch=15,
        batch_size=4,
        lr=4e-3,
        seed=0,
    )
    losses = [h["loss"] for h in info["history"]]
    assert losses[-1] < 0.7 * losses[0]
    before = _recall(tmp_path / "untrained.onnx", photos, 0.1)
    after = _recall(tmp_path / "model" / "facings.onnx", photos, 0.1)
    assert after > before + 0.2, (before, after)


def test_the_trained_detector_is_int8_and_reads_like_the_float_export(
    rendered: Path, tmp_path: Path
) -> None:
    """``train`` writes the detector with int8 weights (QuantizeLinear / DequantizeLinear
    around its convolutions), calibrated on its own photos; OpenCV runs it, and its product
    heatmap reads within a few hundredths of the float export's (a young net's: about 0.001 on
    average); the width-8 shelf-edge net gains no speed from int8 and stays float."""
    import onnx

    from shelfwatch.services.training import sources_from
    from shelfwatch.vision.detector.infer import _sigmoid, load, network_input
    from shelfwatch.vision.detector.train import train

    coco = read_coco(rendered / "annotations.json")
    photos = [(rendered / "images" / im.file_name, im) for im in coco.images[:4]]
    sources = sources_from(photos)
    out = tmp_path / "model"
    train(sources, out, epochs=1, steps_per_epoch=60, batch_size=4, lr=4e-3, seed=0)
    graph = onnx.load(str(out / "facings.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 10  # every convolution's weights
    for photo, _ in photos:
        blob = network_input(load_image(photo), 640)[0]
        heat = []
        for name in ("facings.onnx", "facings_float.onnx"):
            net = load(out / name)
            net.setInput(blob)
            heat.append(_sigmoid(net.forward()[0, 0]))
        assert heat[1].max() > 0.3  # it has learned peaks: the comparison means something
        assert np.abs(heat[0] - heat[1]).mean() < 0.01
        assert np.abs(heat[0] - heat[1]).max() < 0.1
    h, w = sources[0].image.shape[:2]
    shelf = np.array([[0, h / 4, w, h / 2]], np.float32)  # one boxed shelf level
    boxed = [replace(sources[0], shelves=shelf, shelf_region=np.array([[0, 0, w, h]]))]
    train(boxed, out, kind="shelf-edges", epochs=1, steps_per_epoch=2, batch_size=2)
    edges = onnx.load(str(out / "shelf_edges.onnx")).graph
    assert "Conv" in {n.op_type for n in edges.node} and not any(
        t.data_type == onnx.TensorProto.INT8 for t in edges.initializer
    )


def test_kill_then_resume_ends_with_the_same_steps(
    rendered: Path, tmp_path: Path, home: Path
) -> None:
    out = tmp_path / "model"
    cmd = train_command(
        "--backend", "default",
        "--labels", rendered / "annotations.json", "--images", rendered,
        "--out", out, "--epochs", 3, "--steps-per-epoch", 8, "--renders", 0,
    )  # fmt: skip
    info, stdout = kill_then_resume(cmd, out)
    assert info["steps"] == 24 and [h["epoch"] for h in info["history"]] == [1, 2, 3]
    assert "before: AP50" in stdout and "after: AP50" in stdout
    assert (out / "facings.onnx").is_file()
    assert not (out / "facings_long.onnx").exists()  # not asked for: one detector


def test_the_detectors_width_is_a_training_option(
    rendered: Path, tmp_path: Path, home: Path
) -> None:
    """``--detector-width`` trains the detectors at another width: the ONNX file carries it
    and the backend runs it as it is; a checkpoint of another width is not resumed."""
    out = tmp_path / "narrow"
    train = (
        "train", "--backend", "default",
        "--labels", rendered / "annotations.json", "--images", rendered,
        "--out", out, "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 2, "--renders", 0,
    )  # fmt: skip
    result = _run(*train, "--detector-width", 8)
    assert result.exit_code == 0, result.output
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["model"]["stages.0.0.weight"].shape[0] == 8  # the shipped width is 16
    assert json.loads((out / "training.json").read_text())["width"] == 8
    photo = sorted((rendered / "images").iterdir())[0]
    found = detect(load_image(photo), out / "facings.onnx")
    assert found.boxes.shape[1] == 4
    again = _run(*train, "--detector-width", 12, "--resume")
    assert again.exit_code == 1 and "made by another training run" in again.stderr
    assert _run(*train, "--detector-width", 2).exit_code != 0  # under the least width
    other = _run("train", "--backend", "clipseg", "--out", out, "--detector-width", 24)
    assert other.exit_code == 1 and "--detector-width is for the default" in other.stderr


def _run(*args: object):
    """The CLI with these arguments (paths and numbers as text)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def test_training_bad_input(rendered: Path, tmp_path: Path, home: Path) -> None:
    only_gaps = json.loads((rendered / "annotations.json").read_text())
    only_gaps["categories"].append({"id": 999, "name": "gap"})
    for ann in only_gaps["annotations"]:
        ann["category_id"] = 999
    labels = tmp_path / "gaps.json"
    labels.write_text(json.dumps(only_gaps))
    out = tmp_path / "m"
    result = _run("train", "--labels", labels, "--images", rendered, "--out", out, "--renders", 0)
    assert result.exit_code == 1 and "no usable annotations" in result.stderr
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "facings.onnx").write_bytes(b"not a model")
    bad = _run(
        "eval", "--labels", rendered / "annotations.json", "--images", rendered, "--model", wrong
    )
    assert bad.exit_code == 1 and "not a facing detector model" in bad.stderr
    with pytest.raises(ShelfWatchError, match="weights not found"):
        detect(np.zeros((64, 64, 3), np.uint8), tmp_path / "none.onnx")
    with pytest.raises(ShelfWatchError, match="none_long.onnx: facing detector weights"):
        detect(np.zeros((64, 64, 3), np.uint8), second=tmp_path / "none_long.onnx")
    other = _run("train", "--backend", "clipseg", "--out", out, "--second-detector")
    assert other.exit_code == 1 and "--second-detector is for the default" in other.stderr


def test_the_shipped_recipe_trains_from_the_shared_folder(
    shared_dir: Path, tmp_path: Path, home: Path
) -> None:
    """The README's command line for the shipped weights, cut to two steps: it reads every
    set it names, and its model has the void head and the void-mask net the backend's gap
    stage uses and the shelf-edge net its shelves stage uses."""
    out = tmp_path / "model"
    result = _run(
        "train", "--backend", "default", "--shared", shared_dir, "--out", out,
        "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 2, "--renders", 0,
        "--second-detector",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    image = load_image(next((shared_dir / "real-shelves" / "images").iterdir()))
    found = detect(image, out / "facings.onnx")
    assert found.voids is not None and found.void_scores is not None
    # ... and the shelf-edge net beside it, one score per pixel of the photo.
    assert (out / "shelf_edges.onnx").is_file() and (out / "shelf-edges").is_dir()
    assert found.shelf_edges is not None and found.shelf_edges.shape == image.shape[:2]
    # ... and the void-mask net, likewise, twice as long.
    assert (out / "void_mask.onnx").is_file() and (out / "void-mask").is_dir()
    assert found.void_mask is not None and found.void_mask.shape == image.shape[:2]
    # ... and the upright net, twice as long.
    assert (out / "uprights.onnx").is_file() and (out / "uprights").is_dir()
    assert found.uprights is not None and found.uprights.shape == image.shape[:2]
    # ... and, asked for, the second detector at four times the steps.
    assert (out / "facings_long.onnx").is_file() and (out / "facings-long").is_dir()
    trained = json.loads((out / "training.json").read_text())
    assert trained["shelf_edges"]["steps"] == 2 and trained["void_mask"]["steps"] == 4
    assert trained["uprights"]["steps"] == 4 and trained["facings_long"]["steps"] == 8
    bad = _run("train", "--backend", "default", "--shared", tmp_path, "--out", tmp_path / "x")
    assert bad.exit_code == 1 and "real-products" in bad.stderr


def test_a_peak_centred_inside_a_better_box_is_a_duplicate() -> None:
    """A box (best first) is a duplicate when its centre lies in the inner 70 % of a box
    scored higher, and only then: the pairwise check against its plain definition."""
    from shelfwatch.vision.detector.infer import _centre_inside_better

    rng = np.random.default_rng(5)
    for n in (0, 1, 40, 300):
        corner = rng.random((n, 2)) * 600
        boxes = np.concatenate([corner, corner + 10 + rng.random((n, 2)) * 60], axis=1)
        boxes = boxes.astype(np.float32)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) * 0.35
        plain = [
            any(np.all(np.abs(centre[i] - centre[j]) <= half[j]) for j in range(i))
            for i in range(n)
        ]
        assert _centre_inside_better(boxes).tolist() == plain
    # Two boxes on one product: the weaker, centred in the better one, goes; a neighbour stays.
    one = np.array([[0, 0, 40, 80], [4, 6, 44, 84], [42, 0, 82, 80]], np.float32)
    assert _centre_inside_better(one).tolist() == [False, True, False]


def test_the_network_input_is_rgb_over_255() -> None:
    """The detector's input (a lookup per 8-bit value) is the photo's RGB channels divided
    by 255 in float32, exactly: the shipped weights were trained and quantized on that."""
    from shelfwatch.vision.detector.data import to_input

    bgr = np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    plain = np.stack([bgr[:, :, 2], bgr[:, :, 1], bgr[:, :, 0]]).astype(np.float32) / 255.0
    out = to_input(bgr[:, ::-1][:, ::-1])  # a view with strides of its own reads the same
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert np.array_equal(out, plain)
