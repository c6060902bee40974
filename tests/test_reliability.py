"""No silent wrong results, no stalls: the quality gate, bad photos, liveness, requeue,
audits while photos keep arriving, one-line errors (all through the public surface)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from shelfwatch.cli import app
from shelfwatch.db.engine import session_factory
from shelfwatch.db.models import Audit, Photo, Store
from shelfwatch.settings import get_settings


def _good(rendered: Path) -> Path:
    return sorted((rendered / "images").iterdir())[0]


def _gradient(h: int = 480, w: int = 640) -> np.ndarray:
    """A shelf-like gray picture: horizontal bands and vertical edges."""
    y, x = np.mgrid[0:h, 0:w]
    return ((np.sin(x / 7.0) > 0) * 120 + (y // 60 % 2) * 80 + 20).astype(np.float64)


def _corpus(folder: Path, rendered: Path) -> dict[str, Path]:
    """The bad-photo corpus of issue 17, each a file a store's staff could send."""
    folder.mkdir(parents=True, exist_ok=True)
    good = cv2.imread(str(_good(rendered)))
    rgb = cv2.cvtColor(good, cv2.COLOR_BGR2RGB)
    files: dict[str, Path] = {}

    def save(name: str, img: Image.Image, **kw: object) -> None:
        files[name] = folder / name
        img.save(files[name], **kw)

    save("blank.jpg", Image.new("RGB", (800, 600), (200, 200, 200)))
    save("black.jpg", Image.new("RGB", (800, 600), (0, 0, 0)))
    save("white.png", Image.new("RGB", (800, 600), (255, 255, 255)))
    save("gray8.jpg", Image.fromarray(cv2.cvtColor(good, cv2.COLOR_BGR2GRAY)))
    gray16 = (cv2.cvtColor(good, cv2.COLOR_BGR2GRAY).astype(np.uint16)) * 257
    save("gray16.png", Image.fromarray(gray16))
    cv2.imwrite(str(folder / "rgb16.png"), good.astype(np.uint16) * 257)
    files["rgb16.png"] = folder / "rgb16.png"
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    from pillow_heif import from_pillow

    from_pillow(Image.fromarray(rgb)).save(folder / "photo.heic")
    files["photo.heic"] = folder / "photo.heic"
    save("anim.gif", Image.fromarray(rgb).convert("P"))
    save("tiny.png", Image.new("RGB", (20, 20)))
    save("bomb.png", Image.new("1", (12000, 12000)))
    data = (folder / "full.jpg").write_bytes(cv2.imencode(".jpg", good)[1].tobytes()) or 0
    files["truncated.jpg"] = folder / "truncated.jpg"
    files["truncated.jpg"].write_bytes((folder / "full.jpg").read_bytes()[: data // 3])
    (folder / "full.jpg").unlink()
    return files


def test_bad_photo_corpus_no_silent_wrong_result(
    cli, home: Path, rendered: Path, tmp_path: Path
) -> None:
    files = _corpus(tmp_path / "corpus", rendered)
    expect = {  # decoded and judged, or rejected with a reason
        "blank.jpg": ("retake", "blank"),
        "black.jpg": ("retake", "blank"),
        "white.png": ("retake", "blank"),
        "gray8.jpg": ("usable", None),
        "gray16.png": ("usable", None),
        "rgb16.png": ("usable", None),
        "cmyk.jpg": ("usable", None),
        "photo.heic": ("usable", None),
        "anim.gif": ("error", "GIF keeps 256 colours"),
        "tiny.png": ("error", "image too small"),
        "bomb.png": ("error", "too large"),
        "truncated.jpg": ("error", "unreadable image"),
    }
    reference = None
    for name, (verdict, reason) in expect.items():
        result = cli.invoke(app, ["analyze", "--json", str(files[name])])
        assert "Traceback" not in result.output, name
        if verdict == "error":
            assert result.exit_code == 1, name
            assert f"error: {files[name]}: " in result.output and reason in result.output, name
            continue
        assert result.exit_code == 0, (name, result.output)
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["quality"]["verdict"] == verdict, (name, out["quality"])
        if reason:
            assert reason in out["quality"]["reasons"], (name, out["quality"])
        else:  # decoded by its real range: finds what the 8-bit colour photo shows
            n = out["counts"]["products"]
            reference = (
                reference
                or json.loads(cli.invoke(app, ["analyze", "--json", str(_good(rendered))]).stdout)[
                    "counts"
                ]["products"]
            )
            assert abs(n - reference) <= max(2, 0.15 * reference), (name, n, reference)


def test_high_bit_depth_decoded_by_real_range(tmp_path: Path) -> None:
    from shelfwatch.core.imageio import load_image

    gray = _gradient()
    for bits in (12, 16):
        path = tmp_path / f"g{bits}.png"
        Image.fromarray((gray * (2**bits - 1) / 255).astype(np.uint16)).save(path)
        loaded = load_image(path)
        assert loaded.shape == (480, 640, 3)
        assert np.abs(loaded[:, :, 0].astype(float) - gray).max() <= 1.0, bits


def test_folder_ingest_names_every_skipped_file(cli, home: Path, rendered: Path) -> None:
    folder = home.parent / "drop"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not a photo")
    Image.new("RGB", (64, 64)).convert("P").save(folder / "a.gif")
    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1"]).exit_code == 0
    result = cli.invoke(app, ["ingest", str(folder), "--store", "S1", "--fixture", "F1"])
    assert result.exit_code == 1
    assert f"skipped: {folder / 'notes.txt'}: not a photo file (.txt)" in result.output
    assert f"error: {folder / 'a.gif'}: GIF keeps 256 colours" in result.output
    assert "0 ingested, 0 duplicates, 1 rejected, 1 skipped" in result.output


def _ingest_and_process(cli, files: list[Path], store: str, fixture: str, when: str) -> None:
    for f in files:
        r = cli.invoke(
            app, ["ingest", str(f), "--store", store, "--fixture", fixture, "--captured-at", when]
        )
        assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["worker", "--until-empty"])
    assert r.exit_code == 0, r.output


def test_blank_photo_among_good_ones_leaves_osa_unchanged(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    factory = session_factory(get_settings().resolved_database_url)
    with factory() as s:
        audit = s.scalars(select(Audit).order_by(Audit.audit_date.desc())).first()
        store = s.get(Store, audit.store_id)
        day, code, osa = audit.audit_date, store.code, audit.osa_pct
        photo = s.scalars(
            select(Photo).where(Photo.store_id == store.id).order_by(Photo.captured_at.desc())
        ).first()
        fixture, last = photo.fixture.code, photo.captured_at
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (1600, 1200), (128, 128, 128)).save(blank)
    later = (last + dt.timedelta(minutes=5)).replace(tzinfo=dt.UTC).isoformat()
    _ingest_and_process(cli, [blank], code, fixture, later)
    result = cli.invoke(app, ["audit", "--store", code, "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 photo(s) to retake left out" in result.output
    with factory() as s:
        again = s.scalar(
            select(Audit).where(Audit.store_id == audit.store_id, Audit.audit_date == day)
        )
        assert again.osa_pct == osa
        assert [r["reasons"] for r in again.kpis["retakes"]] == [["blank"]]
    exported = cli.invoke(app, ["export", "photos", "--store", code])
    rows = [line.split(",") for line in exported.stdout.splitlines()]
    verdicts = {r[rows[0].index("original_name")]: r[rows[0].index("verdict")] for r in rows[1:]}
    assert verdicts["blank.jpg"] == "retake"
    assert set(verdicts.values()) == {"usable", "retake"}


def test_requeue_quarantined_from_the_cli(cli, home: Path, rendered: Path) -> None:
    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1"]).exit_code == 0
    photo_file = _good(rendered)
    assert (
        cli.invoke(app, ["ingest", str(photo_file), "--store", "S1", "--fixture", "F1"]).exit_code
        == 0
    )
    factory = session_factory(get_settings().resolved_database_url)
    with factory() as s:
        photo = s.scalars(select(Photo)).one()
    stored = get_settings().resolved_storage_dir / photo.storage_path
    good_bytes = stored.read_bytes()
    stored.write_bytes(b"broken on disk")
    os.environ["SHELFWATCH_MAX_ATTEMPTS"] = "1"
    get_settings.cache_clear()
    try:
        cli.invoke(app, ["worker", "--until-empty"])
    finally:
        del os.environ["SHELFWATCH_MAX_ATTEMPTS"]
        get_settings.cache_clear()
    status = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert status["photos"]["quarantined"] == 1
    stored.write_bytes(good_bytes)  # the disk was repaired
    assert cli.invoke(app, ["requeue", "nope"]).exit_code == 1
    result = cli.invoke(app, ["requeue", "--quarantined"])
    assert result.exit_code == 0 and "1 photo(s) queued again" in result.output
    with factory() as s:
        again = s.get(Photo, photo.id)
        assert (again.status, again.attempts, again.last_error) == ("queued", 0, None)
    assert cli.invoke(app, ["worker", "--until-empty"]).exit_code == 0
    assert json.loads(cli.invoke(app, ["status", "--json"]).stdout)["photos"]["done"] == 1


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWATCH_")}
    env.update({"SHELFWATCH_HOME": str(home), **extra})
    return env


def _status(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "shelfwatch", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_killed_worker_photo_taken_over_within_30s(
    cli, home: Path, rendered: Path, tmp_path: Path
) -> None:
    """The lease is 300 s: only the heartbeat can hand the photo over this fast."""
    from shelfwatch.bench.worker import make_photos

    photos = make_photos(rendered / "images", 40, tmp_path / "pool", (1600, 1200), ".jpg")
    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1"]).exit_code == 0
    r = cli.invoke(app, ["ingest", str(tmp_path / "pool"), "--store", "S1", "--fixture", "F1"])
    assert r.exit_code == 0 and len(photos) == 40
    env = _env(home, SHELFWATCH_LEASE_SECONDS="300")
    factory = session_factory(get_settings().resolved_database_url)
    stuck = None
    for _ in range(5):  # a kill between two photos leaves none in hand: kill the next one
        first = subprocess.Popen(
            [sys.executable, "-m", "shelfwatch", "worker"], env=env, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        busy = None
        while busy is None and time.monotonic() < deadline:
            with factory() as s:
                busy = s.scalar(select(Photo.id).where(Photo.status == "processing"))
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        with factory() as s:
            stuck = s.scalar(select(Photo.id).where(Photo.status == "processing"))
        if stuck is not None:
            break
    assert stuck is not None
    status = _status(env)
    assert any(w["name"].endswith(f":{first.pid}") for w in status["workers"])
    while not any(p["photo_id"] == stuck for p in status["stalled"]):
        assert time.monotonic() - killed < 30, status
        time.sleep(0.5)
        status = _status(env)
    assert not any(w["alive"] for w in status["workers"])  # status shows the worker stopped
    second = subprocess.Popen(
        [sys.executable, "-m", "shelfwatch", "worker"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        while time.monotonic() - killed < 60:
            with factory() as s:
                photo = s.get(Photo, stuck)
                if photo.status == "done":
                    break
            time.sleep(0.5)
        taken_over = time.monotonic() - killed
        assert photo.status == "done" and photo.attempts == 2
        assert taken_over <= 30, taken_over
        workers = {w["name"]: w["alive"] for w in _status(env)["workers"]}
        assert any(name.endswith(f":{second.pid}") and alive for name, alive in workers.items())
    finally:
        second.terminate()
        second.wait(timeout=30)


def test_audits_run_while_photos_keep_arriving(cli, home: Path, rendered: Path) -> None:
    """The scheduler does not wait for an empty queue: it audits what is done by now."""
    from shelfwatch.services.schedule import run_due

    assert cli.invoke(app, ["stores", "add", "S1", "--timezone", "Europe/Berlin"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1"]).exit_code == 0
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(dt.UTC)
    local = now.astimezone(ZoneInfo("Europe/Berlin"))
    # A minute ago, but on the store's day of ``now`` (in the first minute after its midnight
    # a minute ago is the day before, whose audit is not due yet).
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    when = max(now - dt.timedelta(minutes=1), midnight).isoformat()
    today = local.date()
    images = sorted((rendered / "images").iterdir())
    _ingest_and_process(cli, images[:2], "S1", "F1", when)
    for f in images[2:6]:  # arrive after the worker stopped: still queued at audit time
        args = ["ingest", str(f), "--store", "S1", "--fixture", "F1"]
        assert cli.invoke(app, [*args, "--captured-at", when]).exit_code == 0
    factory = session_factory(get_settings().resolved_database_url)
    started = time.monotonic()
    due = run_due(factory, now, dt.time(0, 0), 1)
    assert time.monotonic() - started < 60
    assert [(d.store, d.day) for d in due] == [("S1", today)]
    with factory() as s:
        audit = s.scalars(select(Audit)).one()
        assert audit.photos == 2 and audit.kpis["not_processed"] == 4
        assert s.scalar(select(Photo.id).where(Photo.status == "queued")) is not None


def test_worker_picks_planogram_by_store_local_date(
    cli, home: Path, rendered: Path, tmp_path: Path
) -> None:
    """23:30 UTC on 3 March is 4 March in Tokyo: the 4 March planogram is the one in force."""
    from shelfwatch.services.worker import worker_from_settings

    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,name,brand,category,width_cm,height_cm\nA,a,b,c,10,20\nB,b,b,c,10,20\n")
    assert cli.invoke(app, ["stores", "add", "S1", "--timezone", "Asia/Tokyo"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1", "--width-cm", "400"]).exit_code == 0
    assert cli.invoke(app, ["catalog", "import", str(catalog)]).exit_code == 0
    for sku, since in (("A", "2026-03-01"), ("B", "2026-03-04")):
        plan = tmp_path / f"plan{sku}.csv"
        plan.write_text(f"planogram,fixture,shelf,position,sku,facings\nP,F1,1,1,{sku},40\n")
        r = cli.invoke(app, ["planogram", "import", str(plan), "--effective-from", since])
        assert r.exit_code == 0, r.output
    args = ["ingest", str(_good(rendered)), "--store", "S1", "--fixture", "F1"]
    assert cli.invoke(app, [*args, "--captured-at", "2026-03-03T23:30:00+00:00"]).exit_code == 0
    factory = session_factory(get_settings().resolved_database_url)
    worker = worker_from_settings(factory, get_settings())
    with factory() as s:
        context = worker._context(s, s.scalars(select(Photo)).one())
    assert [p.sku for p in context.planogram] == ["B"]


def test_one_line_errors(cli, home: Path, tmp_path: Path, monkeypatch) -> None:
    good = tmp_path / "good.csv"
    good.write_text("sku,name,brand,category,width_cm,height_cm\nA,a,b,c,10,20\n")
    assert cli.invoke(app, ["catalog", "import", str(good)]).exit_code == 0
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            [
                {
                    "planogram": "P",
                    "fixture": "F",
                    "shelf": 1,
                    "position": 1,
                    "sku": "A",
                    "facings": 2,
                },
                {"planogram": "P", "fixture": "F", "shelf": 1, "position": 2, "sku": "A"},
            ]
        )  # fmt: skip
    )
    r = cli.invoke(app, ["planogram", "import", str(plan)])
    assert r.exit_code == 1 and f"error: {plan}:2: missing field(s): facings" in r.output
    assert "Traceback" not in r.output and "KeyError" not in r.output
    bad = tmp_path / "catalog.csv"
    (tmp_path / "ref.png").write_text("this is text, not a picture")
    bad.write_text(
        "sku,name,brand,category,width_cm,height_cm,reference_image\n"
        "A,a,b,c,nan,20,\nB,b,b,c,10,inf,\nC,c,b,c,10,20,ref.png\n"
    )
    r = cli.invoke(app, ["catalog", "import", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:2: width_cm must be a finite number" in r.output
    assert f"{bad}:3: height_cm must be a finite number" in r.output
    assert f"{bad}:4: reference_image 'ref.png': not an image" in r.output
    no_height = tmp_path / "catalog.json"
    no_height.write_text(
        json.dumps(
            [
                {
                    "sku": "A",
                    "name": "a",
                    "brand": "b",
                    "category": "c",
                    "width_cm": 5,
                    "height_cm": 9,
                },
                {"sku": "B", "name": "b", "brand": "b", "category": "c", "width_cm": 5},
            ]
        )  # fmt: skip
    )
    r = cli.invoke(app, ["catalog", "import", str(no_height)])
    assert r.exit_code == 1 and f"{no_height}:2: missing field(s): height_cm" in r.output
    r = cli.invoke(app, ["db", "downgrade", "0099"])
    assert r.exit_code == 1 and "known revisions: 0001" in r.output
    assert "Traceback" not in r.output
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), (_gradient() * 0 + 100).astype(np.uint8))
    monkeypatch.setitem(sys.modules, "transformers", None)  # as without the models extra
    from shelfwatch.vision.registry import clear_cache

    clear_cache()
    r = cli.invoke(app, ["analyze", "--backend", "clipseg", str(photo)])
    assert r.exit_code == 1 and "pip install 'shelfwatch[models]'" in r.output
    assert r.output.count("\n") == 1, r.output


def test_dashboard_runs_a_worker_and_stops_it_on_sigterm(
    cli, home: Path, rendered: Path, tmp_path: Path
) -> None:
    import socket

    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0
    assert cli.invoke(app, ["fixtures", "add", "S1", "F1"]).exit_code == 0
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = _env(home)
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "shelfwatch", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        args = ["ingest", str(_good(rendered)), "--store", "S1", "--fixture", "F1"]
        assert cli.invoke(app, args).exit_code == 0
        deadline = time.monotonic() + 120
        status = _status(env)
        while status["photos"]["done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            status = _status(env)
        assert status["photos"]["done"] == 1  # processed with no `shelfwatch worker` started
        (worker,) = status["workers"]
        worker_pid = int(worker["name"].rsplit(":", 1)[1])
        with socket.create_connection(("localhost", port), timeout=30):
            pass  # Streamlit listens
    finally:
        dashboard.send_signal(signal.SIGTERM)
        assert dashboard.wait(timeout=60) is not None
    time.sleep(1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("localhost", port), timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
    assert _status(env)["workers"] == []  # deregistered on its way out


def test_photo_bytes_round_trip_through_store(tmp_path: Path) -> None:
    """A local store is a plain folder (a path or a file:// URL): same files, same paths."""
    from shelfwatch.services.storage import PhotoStore

    src = tmp_path / "a.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (10, 20, 30)).save(buf, "JPEG")
    src.write_bytes(buf.getvalue())
    for url in (str(tmp_path / "s1"), f"file://{tmp_path / 's2'}"):
        store = PhotoStore(url)
        store.put_file(src, "ab/cd/x.jpg")
        assert store.read_bytes("ab/cd/x.jpg") == src.read_bytes()
        assert store.local_path("ab/cd/x.jpg").read_bytes() == src.read_bytes()


def test_commands_do_not_migrate_an_existing_database(cli, home: Path) -> None:
    from shelfwatch.cli.common import _ensure_schema
    from shelfwatch.db.migrate import current_revision, downgrade

    assert cli.invoke(app, ["stores", "add", "S1"]).exit_code == 0  # empty: schema made
    url = get_settings().resolved_database_url
    downgrade(url, "0005")
    _ensure_schema.cache_clear()
    r = cli.invoke(app, ["stores", "list"])
    assert r.exit_code == 1 and "run `shelfwatch db upgrade`" in r.output
    assert current_revision(url) == "0005"  # left as it was
    assert cli.invoke(app, ["db", "upgrade"]).exit_code == 0
    _ensure_schema.cache_clear()
    assert cli.invoke(app, ["stores", "list"]).exit_code == 0


def _analyze_with_model_dir(cli, models: Path, tmp_path: Path, monkeypatch):
    """``analyze`` of one photo with SHELFWATCH_MODEL_DIR set to ``models``."""
    from shelfwatch.vision.registry import clear_cache

    monkeypatch.setenv("SHELFWATCH_MODEL_DIR", str(models))
    get_settings.cache_clear()
    clear_cache()
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), _gradient().astype(np.uint8))
    try:
        return cli.invoke(app, ["analyze", str(photo)])
    finally:
        clear_cache()


def test_model_dir_setting_is_used(cli, home: Path, tmp_path: Path, monkeypatch) -> None:
    """SHELFWATCH_MODEL_DIR/<backend>/ replaces the shipped weights: a broken file there is
    what the default backend tries to load."""
    broken = tmp_path / "models" / "opencv" / "facings.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx file")
    r = _analyze_with_model_dir(cli, tmp_path / "models", tmp_path, monkeypatch)
    assert r.exit_code == 1 and str(broken) in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    "layout", ["weights at the top", "training.json at the top", "no such folder"]
)
def test_a_model_dir_setting_that_would_be_passed_over_is_an_error(
    cli, home: Path, tmp_path: Path, monkeypatch, layout: str
) -> None:
    """A SHELFWATCH_MODEL_DIR that names no folder, or that holds the default backend's
    weights itself instead of in ``opencv/``, stops analysis with a line saying so: it used to
    be passed over in silence, the shipped weights running in its place."""
    models = tmp_path / "models"
    if layout != "no such folder":
        models.mkdir()
        stray = "facings.onnx" if layout == "weights at the top" else "training.json"
        (models / stray).write_bytes(b"output of some training run")
    r = _analyze_with_model_dir(cli, models, tmp_path, monkeypatch)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    expected = "no such folder" if layout == "no such folder" else str(models / "opencv")
    assert f"SHELFWATCH_MODEL_DIR={models}" in r.output and expected in r.output, r.output


def test_waiting_for_the_database_retries_with_backoff_then_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unreachable database is waited out (1 s, doubling), and given up on only when a
    limit was set: then the last error is raised."""
    from sqlalchemy.exc import OperationalError

    from shelfwatch.services import worker

    waits: list[float] = []
    monkeypatch.setattr(worker.time, "sleep", waits.append)
    calls = iter([False, False, False, True])

    def connect() -> str:
        if not next(calls):
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("down"))
        return "up"

    assert worker.wait_for_database(connect, "a test") == "up"
    assert waits == [1.0, 2.0, 4.0]

    def never() -> str:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("down"))

    clock = iter(range(0, 1000, 10))  # ten seconds pass per call of the clock
    monkeypatch.setattr(worker.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(OperationalError):
        worker.wait_for_database(never, "a test", give_up_s=25)
