"""Captures: a rendered walk along a long bay (video, photo series) through the CLI, scored
against exact truth; reversed video, rotation metadata, non-overlapping views, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from shelfwatch.bench.captures import score_capture
from shelfwatch.capture import analyze_capture, load_frames
from shelfwatch.cli import app
from shelfwatch.core.errors import BadInputError
from shelfwatch.synth.capture import _VideoWriter, load_truth, render_capture
from shelfwatch.vision.fuse import Seen, confirmed, distinct, track
from shelfwatch.vision.registry import get_segmenter
from shelfwatch.vision.video import read_video


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pan")
    render_capture(folder, 31, "video")
    return folder


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("series")
    render_capture(folder, 32, "series")
    return folder


def _records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_rendered_video_counted_once_through_the_cli(cli, pan: Path, tmp_path: Path) -> None:
    truth = load_truth(pan)
    result = cli.invoke(
        app, ["analyze", str(pan / "capture.mp4"), "--json", "--overlay", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    (record,) = _records(result.stdout)
    assert 3 <= len(record["frames_used"]) < 48  # chosen by motion, not every frame
    assert record["fixture_size"] == [record["width"], record["height"]]
    n = record["counts"]["products"]
    assert abs(n - len(truth.products)) <= 0.05 * len(truth.products), n
    tracks = [p["track"] for p in record["products"]]
    assert len(set(tracks)) == len(tracks)  # one track per product
    assert all(
        p["frames"] and set(p["frames"]) <= set(record["frames_used"]) for p in record["products"]
    )
    # Stable ids: a product keeps one track through the frames that saw it (most products
    # are in several chosen frames of a pan, each with a single id).
    assert np.median([len(p["frames"]) for p in record["products"]]) >= 2
    assert len(record["shelves"]) == truth.shelves
    assert (tmp_path / "capture.png").is_file()  # the stitched fixture with its overlay


def test_photo_series_is_one_fixture_and_scores_against_truth(series: Path) -> None:
    truth = load_truth(series)
    frames = load_frames([series / f for f in truth.files])
    (result,) = analyze_capture(frames, get_segmenter("opencv"))
    scores = score_capture(result, truth)
    assert scores["count_ape_pct"] <= 5, scores
    assert scores["double_pct"] <= 5 and scores["missed_pct"] <= 5, scores
    assert scores["drift_cm"] <= 5, scores
    # Its gaps found on the stitched fixture, each once (area rule, in the bay's pixels).
    assert scores["gaps_true"] >= 2 and scores["gaps_found"] == scores["gaps_true"], scores
    assert scores["gaps_right"] == scores["gaps_reported"], scores


def test_the_frames_unsure_boxes_reach_the_stitched_fixture(series: Path) -> None:
    """The boxes each frame's detector was unsure of are carried into the stitched picture
    (for a planogram to confirm, as on a photo): inside it, on its shelves, not counted."""
    truth = load_truth(series)
    frames = load_frames([series / f for f in truth.files])
    segmenter = get_segmenter("opencv")
    per_frame = sum(len(segmenter.segment(f.image).candidates) for f in frames)
    (result,) = analyze_capture(frames, segmenter)
    scene = result.scene
    unsure = scene.candidates
    assert 0 < len(unsure) <= per_frame
    assert (unsure.xyxy[:, 2] <= scene.width).all() and (unsure.xyxy[:, 3] <= scene.height).all()
    assert (unsure.xyxy[:, :2] >= 0).all()
    assert set(unsure.shelf.tolist()) <= {0} | {s.index for s in scene.shelves}
    assert (unsure.shelf > 0).any()
    assert scene.to_json("series")["counts"]["products"] == len(scene.products)


def test_reversed_video_gives_the_same_count(pan: Path, tmp_path: Path) -> None:
    frames = [f.image for f in read_video(pan / "capture.mp4")]
    backwards = _VideoWriter(tmp_path / "reversed.mp4")
    for image in frames[::-1]:
        backwards.add(image)
    backwards.close()
    segmenter = get_segmenter("opencv")
    forward = analyze_capture(load_frames([pan / "capture.mp4"]), segmenter)
    reverse = analyze_capture(load_frames([tmp_path / "reversed.mp4"]), segmenter)
    a = sum(len(r.scene.products) for r in forward)
    b = sum(len(r.scene.products) for r in reverse)
    assert abs(a - b) <= 0.03 * a, (a, b)


def test_views_that_do_not_overlap_are_separate_fixtures(cli, pan: Path, series: Path) -> None:
    truth = load_truth(series)
    other = render_capture(pan.parent / "other-bay", 77, "series")
    photos = [series / truth.files[0], pan.parent / "other-bay" / other.files[-1]]
    result = cli.invoke(app, ["analyze", "--capture", *map(str, photos), "--json"])
    assert result.exit_code == 0, result.output
    assert "views that do not overlap: 2 fixtures" in result.output
    records = _records(result.stdout)
    assert [r["frames_used"] for r in records] == [[0], [1]]


def test_rotation_metadata_honoured(shared_dir: Path) -> None:
    """The real walks are stored 1024x576 with a -90 degree display matrix: upright frames
    are portrait, shelves running across."""
    frame = next(read_video(shared_dir / "real-video" / "aisle_1.mp4"))
    assert frame.image.shape[:2] == (1024, 576)


def test_bad_videos_are_one_line_errors(cli, pan: Path, tmp_path: Path) -> None:
    data = (pan / "capture.mp4").read_bytes()
    cases = {
        "empty.mp4": b"",
        "noise.mp4": np.random.default_rng(0).bytes(50_000),
        "text.avi": b"this is not a video at all\n" * 100,
        "header-only.mp4": data[:2000],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        result = cli.invoke(app, ["analyze", str(tmp_path / name), "--json"])
        assert result.exit_code == 1, (name, result.output)
        assert result.output.startswith(f"error: {tmp_path / name}: "), (name, result.output)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output, name
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    result = cli.invoke(app, ["analyze", str(truncated), "--json"])
    # A cut-off file keeps the frames before the damage (or says it has none), never crashes.
    assert "Traceback" not in result.output
    assert result.exit_code == 0 or result.output.startswith("error: ")
    with pytest.raises(BadInputError, match="video too long"):
        list(read_video(pan / "capture.mp4", max_seconds=0.5))


def test_captures_through_ingest_worker_and_exports(
    cli, home: Path, pan: Path, series: Path
) -> None:
    from sqlalchemy import select

    from shelfwatch.db.engine import session_factory
    from shelfwatch.db.models import Photo
    from shelfwatch.services.reporting import photo_overlay
    from shelfwatch.services.users import add_user, scope_for
    from shelfwatch.settings import get_settings

    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "BAY", "--width-cm", "300"]).exit_code == 0
    args = ["--store", "S1", "--fixture", "BAY"]
    r = cli.invoke(app, ["ingest", str(pan / "capture.mp4"), *args])
    assert r.exit_code == 0 and "1 ingested" in r.output, r.output
    frames = [str(series / f) for f in load_truth(series).files]
    r = cli.invoke(app, ["ingest", "--capture", *frames, *args])
    assert r.exit_code == 0 and "capture of 5 photos added" in r.output, r.output
    again = cli.invoke(app, ["ingest", "--capture", *frames, *args])
    assert "duplicate" in again.output  # the same capture twice is one capture
    assert cli.invoke(app, ["worker", "--until-empty"]).exit_code == 0
    exported = cli.invoke(app, ["export", "photos"]).stdout.splitlines()
    header = exported[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in exported[1:]]
    assert sorted(r["media"] for r in rows) == ["series", "video"]
    assert all(r["status"] == "done" and int(r["frames"]) >= 3 for r in rows)
    truth = {"video": load_truth(pan), "series": load_truth(series)}
    for row in rows:
        n = len(truth[row["media"]].products)
        assert abs(int(row["products"]) - n) <= 0.05 * n, (row, n)
    factory = session_factory(get_settings().resolved_database_url)
    with factory.begin() as session:
        add_user(session, "boss", "correct horse", "admin")
    with factory() as session:
        photo = session.scalars(select(Photo).where(Photo.media == "video")).one()
        image, counts = photo_overlay(
            session, scope_for(session, "boss"), photo.id, get_settings().photo_store()
        )
        assert image.shape[:2] == (photo.height, photo.width)  # the stitched fixture
        assert photo.width > 1.5 * photo.height and counts["products"] == int(
            next(r["products"] for r in rows if r["media"] == "video")
        )


def test_referring_prompt_through_a_video(
    cli, home: Path, pan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--prompt with the real CLIPSeg classes (tiny random weights): the prompt's masks in
    every chosen frame, each instance with a track id shared across frames."""
    pytest.importorskip("transformers")
    from shelfwatch.settings import get_settings
    from shelfwatch.vision.registry import clear_cache
    from tests.tiny_models import build_clipseg

    monkeypatch.setenv("SHELFWATCH_CLIPSEG_MODEL", str(build_clipseg(tmp_path / "clipseg")))
    monkeypatch.setenv("SHELFWATCH_OFFLINE", "1")
    get_settings.cache_clear()
    clear_cache()
    # Random weights give no confident object: take everything above 0, so every frame has
    # instances and the test checks how they are linked, not the model.
    import shelfwatch.capture as capture_module

    monkeypatch.setattr(capture_module, "REFER_THRESHOLD", 0.0)
    video = str(pan / "capture.mp4")
    refused = cli.invoke(app, ["analyze", video, "--prompt", "orange bottles"])
    assert refused.exit_code == 1 and "referring model" in refused.output  # default backend
    result = cli.invoke(
        app, ["analyze", video, "--backend", "clipseg", "--prompt", "orange bottles", "--json"]
    )
    clear_cache()
    assert result.exit_code == 0, result.output
    (record,) = _records(result.stdout)
    referred = record["referred"]
    assert referred["prompt"] == "orange bottles"
    assert [f["frame"] for f in referred["frames"]] == record["frames_used"]
    tracks = [i["track"] for f in referred["frames"] for i in f["instances"]]
    for frame in referred["frames"]:  # one object appears at most once per frame
        ids = [i["track"] for i in frame["instances"]]
        assert len(ids) == len(set(ids))
        for inst in frame["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            assert json.loads(inst["mask"])["size"] == [y2 - y1, x2 - x1]
    assert set(tracks) == set(range(len(set(tracks))))  # ids 0..n-1
    assert all(f["instances"] for f in referred["frames"])
    assert len(set(tracks)) < len(tracks)  # views of one object share its track id


def test_registration_parts_do_not_depend_on_walk_direction(
    pan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk cut into parts (here a strict idea of a plausible view forces cuts) is cut at
    the same links played backwards, and what two parts both saw is counted once."""
    from shelfwatch.vision import stitch

    monkeypatch.setattr(stitch, "MAX_AREA_RATIO", 1.02)  # a frame may barely change size
    truth = load_truth(pan)
    frames = load_frames([pan / "capture.mp4"])
    images = [f.image for f in frames]
    forward = stitch.register(images)
    backward = stitch.register(images[::-1])
    assert len(forward) > 1  # the strict check did cut the walk
    last = len(images) - 1
    assert sorted(sorted(f.frames) for f in forward) == sorted(
        sorted(last - i for i in f.frames) for f in backward
    )
    assert all(f.link is not None for f in forward[1:])  # cut, though the views overlap
    segmenter = get_segmenter("opencv")
    parts = analyze_capture(frames, segmenter)
    counted = sum(len(r.scene.products) for r in parts)
    assert len(parts) == len(forward)
    assert abs(counted - len(truth.products)) <= 0.05 * len(truth.products), counted
    # Each part whole (the worker keeps one part): the overlaps are in both.
    whole = analyze_capture(frames, segmenter, count_once=False)
    assert len(whole[0].scene.products) == len(parts[0].scene.products)
    assert all(
        len(w.scene.products) > len(p.scene.products)
        for w, p in zip(whole[1:], parts[1:], strict=True)
    )


def test_a_render_is_the_same_video_every_time(tmp_path: Path) -> None:
    """Exact truth needs the exact video: encoded twice, the frames decode the same."""
    decoded = []
    for run in ("a", "b"):
        render_capture(tmp_path / run, 41, "video", frames=12)
        decoded.append(np.stack([f.image for f in read_video(tmp_path / run / "capture.mp4")]))
    assert decoded[0].shape[0] == 12 and np.array_equal(decoded[0], decoded[1])


def test_each_pair_of_frames_is_linked_the_same_either_way(pan: Path) -> None:
    """The walk and its reverse estimate one homography per pair (and its inverse), not two
    fits a hair apart that a plausibility bound could tell apart."""
    from shelfwatch.vision import stitch

    images = [f.image for f in load_frames([pan / "capture.mp4"])][:3]
    orb = cv2.ORB_create(nfeatures=3000)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    a, b = (stitch._features(image, orb) for image in images[:2])
    there, inliers = stitch._link(a, b, matcher)
    back, inliers_back = stitch._link(b, a, matcher)
    assert there is not None and back is not None and inliers == inliers_back >= 100
    assert np.allclose(there @ back, np.eye(3), atol=1e-9)


def test_the_fixture_is_levelled_by_the_edges_its_frames_found() -> None:
    """Each frame's shelf edges, carried into the fixture plane, give its slope (a frame
    turned 1 deg there, a level edge in it slopes 1 deg); turning by their median levels
    them; a plane within 0.3 deg of level is left alone."""
    from shelfwatch.core.scene import Shelf
    from shelfwatch.vision import stitch

    images = [np.zeros((800, 960, 3), np.uint8)] * 2
    turn = np.vstack([cv2.getRotationMatrix2D((480, 400), -1.0, 1.0), [0, 0, 1]])
    shift = np.array([[1, 0, 500], [0, 1, 0], [0, 0, 1]], np.float64)
    fixture = stitch.Fixture(frames=[0, 1], transforms=[turn, shift @ turn], size=(1460, 800))
    edges = [
        [Shelf(1, 100, 300, 0, 960, 290, (10, 290, 950, 290))],
        [
            Shelf(1, 100, 300, 0, 960, 290, (10, 290, 950, 290)),
            Shelf(2, 300, 500, 0, 960, 490, (400, 490, 600, 490)),  # too short to judge by
        ],
    ]
    slopes = stitch.edge_slopes(fixture, images, edges)
    assert np.allclose(slopes, [1.0, 1.0], atol=1e-3)
    assert stitch.level(fixture, images, slopes)
    assert np.allclose(stitch.edge_slopes(fixture, images, edges), [0.0, 0.0], atol=1e-3)
    assert not stitch.level(fixture, images, [0.2, 0.25])


def _seen(frame: int, boxes: list[list[float]]) -> Seen:
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    outline = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], dtype=np.float64)
    return Seen(frame, b, np.zeros(len(b)), np.ones(len(b)), None, outline, b.copy())


def test_tracks_join_part_views_and_take_the_median_box() -> None:
    """A frame that boxed only the lower part of a tall product (IoU 0.35 with the other
    frames' boxes, wholly inside them) joins that product's track; a neighbour that touches
    it does not; the track's box is the median view, not one frame's outlier."""
    views = [
        _seen(0, [[0, 0, 10, 20], [11, 0, 21, 20]]),
        _seen(1, [[0, 13, 10, 20], [11, 0, 21, 20]]),
        _seen(2, [[0, 0, 10, 26], [10, 0, 20, 20]]),
    ]
    tracks = track(views)
    assert len(tracks) == 2
    tall = next(t for t in tracks if t.box[0] < 5)
    assert sorted(v for v, _ in tall.members) == [0, 1, 2]
    assert tall.box.tolist() == [0, 0, 10, 20]


def test_one_product_boxed_twice_is_one_track() -> None:
    """Two tracks over one product (two frames boxed it whole and, again, its lower half)
    are one: the track all frames saw stays; the product beside it stays too."""
    whole, lower, beside = [0, 0, 10, 20], [0, 10, 10, 20], [11, 0, 21, 20]
    views = [
        _seen(0, [whole, lower, beside]),
        _seen(1, [whole, beside]),
        _seen(2, [whole, lower, beside]),
    ]
    tracks = confirmed(track(views), views)
    assert len(tracks) == 3  # the lower half: its own track, seen by two frames of three
    kept = distinct(tracks, views)
    assert sorted(t.box.tolist() for t in kept) == [whole, beside]


def test_a_strong_zoom_toward_the_shelf_links(pan: Path) -> None:
    """A step toward the shelf (the next frame 2.2x closer) links when many matches agree;
    the zoom limit still refuses what a few matches would claim."""
    import cv2

    from shelfwatch.vision import stitch

    image = load_frames([pan / "capture.mp4"])[0].image  # the sharpest: the walk starts still
    h, w = image.shape[:2]
    x0, y0 = int(w * 0.3), int(h * 0.3)
    closer = cv2.resize(image[y0 : y0 + int(h / 2.2), x0 : x0 + int(w / 2.2)], (w, h))
    orb, matcher = cv2.ORB_create(nfeatures=3000), cv2.BFMatcher(cv2.NORM_HAMMING)
    link, inliers = stitch._link(
        stitch._features(image, orb), stitch._features(closer, orb), matcher
    )
    assert link is not None and inliers >= stitch.SURE_INLIERS
    zoom = float(np.sqrt(abs(np.linalg.det(link[:2, :2]))))
    assert zoom == pytest.approx(1 / 2.2, rel=0.05)
    assert zoom < 1 / stitch.MAX_ZOOM_STEP  # refused before unless matches are many


def test_a_part_that_matched_too_little_is_bridged_and_counted_once(
    pan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a frame matches too little of the one before (here refused on purpose), the new
    part is linked to an earlier frame of the previous part, and what both parts saw is
    counted once."""
    from shelfwatch.vision import stitch

    truth = load_truth(pan)
    frames = load_frames([pan / "capture.mp4"])
    real_link, calls = stitch._link, []

    def refuse_third(a: tuple, b: tuple, matcher: object) -> tuple:
        calls.append(1)  # consecutive links come first, in walk order
        return (None, 0) if len(calls) == 3 else real_link(a, b, matcher)

    monkeypatch.setattr(stitch, "_link", refuse_third)
    fixtures = stitch.register([f.image for f in frames])
    assert [f.frames for f in fixtures] == [[0, 1, 2], list(range(3, len(frames)))]
    assert fixtures[1].link is not None and fixtures[1].linked_to < 2  # an earlier frame
    calls.clear()
    segmenter = get_segmenter("opencv")
    parts = analyze_capture(frames, segmenter)
    counted = sum(len(r.scene.products) for r in parts)
    assert abs(counted - len(truth.products)) <= 0.05 * len(truth.products), counted
    calls.clear()
    twice = sum(len(r.scene.products) for r in analyze_capture(frames, segmenter, count_once=False))
    assert twice > counted + 10  # what both parts saw


def test_bad_videos_leave_nothing_in_the_database(
    cli, home: Path, pan: Path, tmp_path: Path
) -> None:
    """A video that does not decode is refused at ingest with a one-line error: no capture
    row, nothing in the photo store; a walk filmed past the shelves (nothing like a shelf
    in it) is analysed and flagged, not a crash."""
    from sqlalchemy import func, select

    from shelfwatch.db.engine import session_factory
    from shelfwatch.db.models import Photo
    from shelfwatch.settings import get_settings

    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "BAY"]).exit_code == 0
    bad = {"empty.mp4": b"", "noise.mp4": np.random.default_rng(1).bytes(40_000)}
    bad["header-only.mp4"] = (pan / "capture.mp4").read_bytes()[:2000]
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        r = cli.invoke(app, ["ingest", str(tmp_path / name), "--store", "S1", "--fixture", "BAY"])
        assert r.exit_code != 0 and "Traceback" not in r.output, (name, r.output)
        assert str(tmp_path / name) in r.output, (name, r.output)
    factory = session_factory(get_settings().resolved_database_url)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Photo)) == 0
    store = get_settings().photo_store()
    assert not [p for p in Path(store.root).rglob("*") if p.is_file()]
    walls = _VideoWriter(tmp_path / "wall.mp4")
    rng = np.random.default_rng(2)
    for k in range(40):  # a plain wall drifting past, a little noise
        frame = np.full((800, 960, 3), 170, np.uint8)
        frame[:, : 20 + 5 * k] = 120
        walls.add(np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8))
    walls.close()
    r = cli.invoke(app, ["analyze", str(tmp_path / "wall.mp4"), "--json"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    records = _records(r.stdout)
    assert records and all(rec["counts"]["products"] == 0 for rec in records), r.output
    assert any(rec["quality"].get("low_confidence") for rec in records), records[0]["quality"]


def test_bench_captures_without_rendered_seeds(cli) -> None:
    """``--seeds ""`` asks for the real videos only: no rendered captures, no summary of
    none (it divided by zero)."""
    result = cli.invoke(app, ["bench", "captures", "--seeds", "", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""


def test_bench_captures_runs_the_given_weights(cli, tmp_path: Path) -> None:
    """``--model`` reaches the backend (as on ``bench accuracy``): a broken detector file
    there is the one it tries to load, named in a one-line error."""
    broken = tmp_path / "model" / "facings.onnx"
    broken.parent.mkdir()
    broken.write_bytes(b"not an onnx file")
    result = cli.invoke(
        app, ["bench", "captures", "--seeds", "9101", "--model", str(broken.parent), "--json"]
    )
    assert result.exit_code == 1, result.output
    assert str(broken) in result.output and "Traceback" not in result.output
