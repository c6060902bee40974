"""The queue against a real PostgreSQL: several processes, kill -9, poison, restarts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from shelfwatch.bench.pgserver import PostgresServer
from shelfwatch.bench.worker import make_photos
from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Photo, PhotoStatus, ProductInstance
from shelfwatch.services import stores
from shelfwatch.services.ingest import ingest_paths, watch
from shelfwatch.services.storage import PhotoStore

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def photo_pool(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """300 distinct small shelf photos (rendered photos, scaled, with a unique mark)."""
    return make_photos(
        rendered / "images", 300, tmp_path_factory.mktemp("pool"), (480, 514), ".png"
    )


def _setup(url: str, storage: Path, photos: list[Path]) -> None:
    upgrade(url)
    factory = session_factory(url)
    with factory.begin() as s:
        stores.add_store(s, "S1")
        stores.add_fixture(s, "S1", "F1", width_cm=100)
    report = ingest_paths(factory, photos, "S1", "F1", PhotoStore(storage))
    assert len(report.added) == len(photos)


def _env(url: str, storage: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWATCH_")}
    env.update(
        {
            "SHELFWATCH_DATABASE_URL": url,
            "SHELFWATCH_STORAGE_DIR": str(storage),
            "SHELFWATCH_HOME": str(home),
        },
        **extra,
    )
    return env


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shelfwatch.cli", "worker", "--until-empty", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _no_duplicates(url: str) -> None:
    with session_factory(url)() as s:
        dup = s.execute(
            select(
                ProductInstance.photo_id,
                ProductInstance.x1,
                ProductInstance.y1,
                ProductInstance.x2,
                ProductInstance.y2,
                func.count(),
            )
            .group_by(
                ProductInstance.photo_id,
                ProductInstance.x1,
                ProductInstance.y1,
                ProductInstance.x2,
                ProductInstance.y2,
            )
            .having(func.count() > 1)
        ).all()
        assert dup == []
        photos_with_results = s.scalar(select(func.count(func.distinct(ProductInstance.photo_id))))
        done = s.scalar(select(func.count()).where(Photo.status == PhotoStatus.done.value))
        assert photos_with_results == done


def test_four_processes_each_photo_exactly_once(
    pg_url: str, photo_pool: list[Path], tmp_path: Path
) -> None:
    storage = tmp_path / "photos"
    _setup(pg_url, storage, photo_pool)
    proc = subprocess.run(
        [sys.executable, "-m", "shelfwatch.cli", "worker", "--processes", "4", "--until-empty"],
        env=_env(pg_url, storage, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with session_factory(pg_url)() as s:
        assert s.scalar(select(func.count()).where(Photo.status == "done")) == 300
        assert set(s.scalars(select(Photo.attempts))) == {1}  # claimed once each
        workers = set(s.scalars(select(Photo.locked_by)))
    assert workers == {None}
    finished = [
        line for line in proc.stderr.splitlines() if " done, " in line and "failed in" in line
    ]
    assert len(finished) == 4  # four processes took part
    _no_duplicates(pg_url)


def test_kill_9_workers_repeatedly(pg_url: str, photo_pool: list[Path], tmp_path: Path) -> None:
    storage = tmp_path / "photos"
    photos = photo_pool[:120]
    _setup(pg_url, storage, photos)
    env = _env(
        pg_url, storage, tmp_path, SHELFWATCH_LEASE_SECONDS="2", SHELFWATCH_MAX_ATTEMPTS="50"
    )
    rng = random.Random(7)
    workers = [_worker(env) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 240
    while kills < 8 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.8, 1.6))
        victim = rng.randrange(len(workers))
        if workers[victim].poll() is None:
            os.kill(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait()
            kills += 1
        workers[victim] = _worker(env)
    for w in workers:
        assert w.wait(timeout=300) == 0, w.stderr.read()[-2000:] if w.stderr else ""
    assert kills >= 5
    with session_factory(pg_url)() as s:
        counts = dict(s.execute(select(Photo.status, func.count()).group_by(Photo.status)).all())
        assert counts == {"done": 120}
        assert s.scalar(select(func.max(Photo.attempts))) >= 2  # some photos were taken over
    _no_duplicates(pg_url)


def test_poison_photo_quarantined_others_complete(
    pg_url: str, photo_pool: list[Path], tmp_path: Path
) -> None:
    storage = tmp_path / "photos"
    _setup(pg_url, storage, photo_pool[:20])
    with session_factory(pg_url)() as s:
        poison = s.scalars(select(Photo).order_by(Photo.id)).first()
    (storage / poison.storage_path).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    env = _env(
        pg_url, storage, tmp_path, SHELFWATCH_MAX_ATTEMPTS="3", SHELFWATCH_RETRY_BACKOFF_S="0.2"
    )
    workers = [_worker(env) for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=300) == 0
    with session_factory(pg_url)() as s:
        bad = s.get(Photo, poison.id)
        assert bad.status == "quarantined" and bad.attempts == 3 and bad.last_error
        assert s.scalar(select(func.count()).where(Photo.status == "done")) == 19


def test_database_restart_mid_run(
    pg_url: str, postgres: PostgresServer, photo_pool: list[Path], tmp_path: Path
) -> None:
    storage = tmp_path / "photos"
    _setup(pg_url, storage, photo_pool[:150])
    env = _env(pg_url, storage, tmp_path, SHELFWATCH_LEASE_SECONDS="3")
    workers = [_worker(env) for _ in range(2)]
    time.sleep(4)
    postgres.stop("fast")
    time.sleep(3)
    postgres.resume()
    for w in workers:
        assert w.wait(timeout=300) == 0, w.stderr.read()[-2000:] if w.stderr else ""
    with session_factory(pg_url)() as s:
        assert s.scalar(select(func.count()).where(Photo.status == "done")) == 150
    _no_duplicates(pg_url)


def test_a_worker_started_before_its_database_waits_for_it(
    pg_url: str, postgres: PostgresServer, photo_pool: list[Path], tmp_path: Path
) -> None:
    """Containers start together: a worker whose database is not up yet waits for it (the
    schema check and its registration), then works the queue."""
    storage = tmp_path / "photos"
    _setup(pg_url, storage, photo_pool[:20])
    env = _env(pg_url, storage, tmp_path)
    postgres.stop("fast")
    try:
        worker = _worker(env)
        time.sleep(6)
        assert worker.poll() is None, worker.stderr.read()[-2000:] if worker.stderr else ""
    finally:
        postgres.resume()
    assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:] if worker.stderr else ""
    assert "database unavailable" in (worker.stderr.read() if worker.stderr else "")
    with session_factory(pg_url)() as s:
        assert s.scalar(select(func.count()).where(Photo.status == "done")) == 20


def test_watch_folder_ingests_each_file_once(
    pg_url: str, photo_pool: list[Path], tmp_path: Path
) -> None:
    storage, drop = tmp_path / "photos", tmp_path / "drop"
    _setup(pg_url, storage, [])
    (drop / "S1" / "F1").mkdir(parents=True)
    factory = session_factory(pg_url)
    stop = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            report=watch(
                factory, drop, PhotoStore(storage), interval_s=0.2, settle_s=0.6, stop=stop.is_set
            )
        )
    )
    thread.start()
    try:
        # An upload in progress: a partial name first, renamed when complete.
        partial = drop / "S1" / "F1" / "a.jpg.part"
        partial.write_bytes(photo_pool[0].read_bytes()[:500])
        time.sleep(1.0)
        partial.write_bytes(photo_pool[0].read_bytes())
        partial.rename(drop / "S1" / "F1" / "a.png")
        (drop / "S1" / "F1" / "b.png").write_bytes(photo_pool[1].read_bytes())
        (drop / "S1" / "F1" / "copy-of-a.png").write_bytes(photo_pool[0].read_bytes())
        (drop / "S1" / "F1" / "notes.png").write_text("not an image")
        (drop / "S9" / "F1").mkdir(parents=True)
        (drop / "S9" / "F1" / "c.png").write_bytes(photo_pool[2].read_bytes())
        time.sleep(3.0)
    finally:
        stop.set()
        thread.join()
    report = result["report"]
    assert sorted(Path(p).name for p in report.added) == ["a.png", "b.png"]
    assert [Path(p).name for p in report.duplicates] == ["copy-of-a.png"]
    reasons = {Path(p).name: r for p, r in report.rejected}
    assert "not an image" in reasons["notes.png"] and "unknown store 'S9'" in reasons["c.png"]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == 2


def test_ingest_rejects_bombs_and_unsupported_formats(pg_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "photos"
    _setup(pg_url, storage, [])
    bomb = tmp_path / "bomb.png"
    from PIL import Image

    Image.new("1", (12000, 12000)).save(bomb)  # 144 MP of nothing: a few kB on disk
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (64, 64)).save(gif)
    unreadable = tmp_path / "locked.png"
    cv2.imwrite(str(unreadable), np.zeros((64, 64, 3), np.uint8))
    unreadable.chmod(0)
    report = ingest_paths(
        session_factory(pg_url),
        [bomb, gif, unreadable, tmp_path / "nope.jpg"],
        "S1",
        "F1",
        PhotoStore(storage),
    )
    reasons = {Path(p).name: r for p, r in report.rejected}
    assert "too large" in reasons["bomb.png"]
    assert "GIF keeps 256 colours" in reasons["anim.gif"]
    assert "no such file" in reasons["nope.jpg"]
    if os.geteuid() != 0:  # root reads anything
        assert "locked.png" in reasons
    with session_factory(pg_url)() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == (1 if os.geteuid() == 0 else 0)
