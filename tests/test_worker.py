"""The queue: retries with backoff, quarantine, exactly-once results, several processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Photo, PhotoStatus, ProductInstance
from shelfwatch.services import stores
from shelfwatch.services import worker as worker_module
from shelfwatch.services.ingest import ingest_paths
from shelfwatch.services.status import queue_status
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.worker import Worker, requeue


def _setup(url: str, rendered: Path, storage: Path, n: int) -> None:
    upgrade(url)
    factory = session_factory(url)
    with factory.begin() as s:
        stores.add_store(s, "S1")
        stores.add_fixture(s, "S1", "F1", width_cm=100)
    images = sorted((rendered / "images").iterdir())[:n]
    report = ingest_paths(factory, images, "S1", "F1", PhotoStore(storage))
    assert len(report.added) == n


def test_poison_photo_is_quarantined(
    rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, storage = f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "photos"
    _setup(url, rendered, storage, 3)
    factory = session_factory(url)
    with factory() as s:
        poison = s.scalars(select(Photo).order_by(Photo.id)).first()
        (storage / poison.storage_path).write_bytes(b"corrupted on disk")
    result = Worker(factory, PhotoStore(storage), max_attempts=3, backoff_s=0.0).run(
        until_empty=True
    )
    assert result == {"done": 2, "failed": 3}
    with factory() as s:
        photo = s.get(Photo, poison.id)
        assert photo.status == PhotoStatus.quarantined.value and photo.attempts == 3
        assert "not an image" in (photo.last_error or "")
        status = queue_status(s)
    assert status["photos"]["done"] == 2 and status["photos"]["quarantined"] == 1
    assert status["errors"][0]["photo_id"] == poison.id
    assert requeue(factory) == 1


def test_reprocessing_replaces_results(rendered: Path, tmp_path: Path) -> None:
    url, storage = f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "photos"
    _setup(url, rendered, storage, 1)
    factory = session_factory(url)
    w = Worker(factory, PhotoStore(storage))
    w.run(until_empty=True)
    with factory() as s:
        first = s.scalar(select(func.count(ProductInstance.id)))
    with factory.begin() as s:
        photo = s.scalars(select(Photo)).one()
        photo.status = PhotoStatus.queued.value
    w.run(until_empty=True)
    with factory() as s:
        assert s.scalar(select(func.count(ProductInstance.id))) == first > 0


def test_lost_lease_discards_result(rendered: Path, tmp_path: Path) -> None:
    url, storage = f"sqlite:///{tmp_path / 'l.db'}", tmp_path / "photos"
    _setup(url, rendered, storage, 1)
    factory = session_factory(url)
    a, b = (
        Worker(factory, PhotoStore(storage), me="a"),
        Worker(factory, PhotoStore(storage), me="b"),
    )
    photo_id = worker_module.claim_next(factory, a.me)
    with factory.begin() as s:  # the lease moved to another worker (a's lease expired)
        s.get(Photo, photo_id).locked_by = b.me
    assert a.process(photo_id) is False
    with factory() as s:
        assert s.scalar(select(func.count(ProductInstance.id))) == 0


@pytest.mark.postgres
def test_two_processes_on_postgres_process_each_photo_once(
    rendered: Path, tmp_path: Path, pg_url: str
) -> None:
    storage = tmp_path / "photos"
    _setup(pg_url, rendered, storage, 8)
    env = {
        "SHELFWATCH_DATABASE_URL": pg_url,
        "SHELFWATCH_STORAGE_DIR": str(storage),
        "SHELFWATCH_HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "shelfwatch.cli", "worker", "--processes", "2", "--until-empty"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    factory = session_factory(pg_url)
    with factory() as s:
        assert s.scalar(select(func.count()).where(Photo.status == "done")) == 8
        # Claimed exactly once each: no photo needed a second attempt.
        assert set(s.scalars(select(Photo.attempts))) == {1}
        workers = {
            line.split("worker ")[1].split(":")[1]
            for line in proc.stderr.splitlines()
            if "worker " in line and " done," in line
        }
        per_photo = s.execute(
            select(ProductInstance.photo_id, func.count()).group_by(ProductInstance.photo_id)
        ).all()
    assert len(per_photo) == 8
    assert len(workers) == 2


def test_batches_store_each_photo_and_isolate_a_bad_one(rendered: Path, tmp_path: Path) -> None:
    url, storage = f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "photos"
    _setup(url, rendered, storage, 5)
    factory = session_factory(url)
    with factory() as s:
        bad = s.scalars(select(Photo).order_by(Photo.id)).all()[2]
        (storage / bad.storage_path).write_bytes(b"corrupted on disk")
    w = Worker(factory, PhotoStore(storage), max_attempts=1, batch_size=4)
    assert w.run(until_empty=True) == {"done": 4, "failed": 1}
    with factory() as s:
        assert s.get(Photo, bad.id).status == PhotoStatus.quarantined.value
        done = s.scalars(select(Photo).where(Photo.status == "done")).all()
        assert len(done) == 4 and all(p.attempts == 1 for p in done)
