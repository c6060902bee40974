"""Photos in object storage: a real S3-compatible server (moto's server mode), a real
PostgreSQL, and workers on "machines" that share nothing but the two URLs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shelfwatch.db.engine import session_factory
from shelfwatch.db.models import CatalogProduct, Photo, ProductInstance

pytestmark = pytest.mark.postgres
BUCKET = "shelf-photos"


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """An S3-compatible server on a free local port, with an empty bucket."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "shelfwatch",
        "AWS_SECRET_ACCESS_KEY": "shelfwatch-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    import s3fs

    s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"], endpoint_url=env[
            "FSSPEC_S3_ENDPOINT_URL"
        ]
    ).mkdir(BUCKET)  # fmt: skip
    yield env
    server.stop()


def _machine(home: Path, url: str, s3: dict[str, str]) -> dict[str, str]:
    """The environment of one machine: its own home folder, the shared database and store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFWATCH_", "AWS_"))}
    env.update(s3)
    env.update(
        SHELFWATCH_HOME=str(home),
        SHELFWATCH_DATABASE_URL=url,
        SHELFWATCH_STORAGE_URL=f"s3://{BUCKET}/store",
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "shelfwatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_two_workers_no_shared_folder_s3_store(
    pg_url: str, s3_env: dict[str, str], rendered: Path, tmp_path: Path
) -> None:
    from shelfwatch.bench.worker import make_photos

    photos = make_photos(rendered / "images", 24, tmp_path / "camera", (800, 600), ".jpg")
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    camera = _machine(tmp_path / "camera-home", pg_url, s3_env)
    _run(camera, "db", "upgrade")
    _run(camera, "stores", "add", "S1")
    _run(camera, "fixtures", "add", "S1", "F1", "--width-cm", "120")
    _run(camera, "catalog", "import", str(sample / "catalog.csv"))  # reference images too
    out = _run(camera, "ingest", str(tmp_path / "camera"), "--store", "S1", "--fixture", "F1")
    assert f"{len(photos)} ingested" in out.stdout

    homes = [tmp_path / "worker-a", tmp_path / "worker-b"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "shelfwatch", "worker", "--until-empty"],
            env=_machine(home, pg_url, s3_env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for home in homes
    ]
    logs = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [log[-2000:] for log in logs]

    with session_factory(pg_url)() as s:
        statuses = dict(s.execute(select(Photo.status, func.count()).group_by(Photo.status)).all())
        assert statuses == {"done": len(photos)}
        assert set(s.scalars(select(Photo.attempts))) == {1}  # each claimed exactly once
        with_results = s.scalar(select(func.count(func.distinct(ProductInstance.photo_id))))
        assert with_results == len(photos)
        refs = [r for r in s.scalars(select(CatalogProduct.reference_image)) if r]
        assert refs and all(r.startswith("refs/") for r in refs)
        identified = s.scalar(
            select(func.count()).where(ProductInstance.sku.is_not(None))
        )  # SKUs from reference images read out of the bucket
        assert identified > 0
    for home in homes:  # nothing stored locally: the photos live in the bucket
        assert not (home / "photos").exists() or not any((home / "photos").rglob("*.jpg"))
    import s3fs

    fs = s3fs.S3FileSystem(
        key=s3_env["AWS_ACCESS_KEY_ID"],
        secret=s3_env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=s3_env["FSSPEC_S3_ENDPOINT_URL"],
    )
    stored = [p for p in fs.find(f"{BUCKET}/store") if "/refs/" not in p]
    assert len(stored) == len(photos)
