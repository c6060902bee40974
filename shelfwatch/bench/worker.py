"""``shelfwatch bench worker``: queue throughput with 1 and 2 processes on PostgreSQL.

Uses ``SHELFWATCH_DATABASE_URL`` when it names a PostgreSQL server (a fresh database is
created for each run), else starts a throwaway server from Debian's binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import func, select

from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Photo
from shelfwatch.services import stores
from shelfwatch.services.ingest import ingest_paths
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.worker import Worker


def make_photos(
    source: Path, count: int, out: Path, size: tuple[int, int] | None = None, suffix: str = ".jpg"
) -> list[Path]:
    """``count`` distinct photos from the rendered ones in ``source`` (unique bytes each).

    ``size`` (width, height) shrinks them, for tests that need many quick photos.
    """
    images = [cv2.imread(str(p)) for p in sorted(source.glob("*.jpg"))]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        img = images[n % len(images)].copy()
        if size is not None:
            img = cv2.resize(img, size)
        img[0, n % img.shape[1]] = (n % 256, 255 - n % 256, 7)  # unique bytes, unique sha256
        path = out / f"photo{n:04d}{suffix}"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def _prepare(url: str, storage: Path, photos: list[Path]) -> None:
    upgrade(url)
    factory = session_factory(url)
    with factory.begin() as s:
        stores.add_store(s, "B1")
        stores.add_fixture(s, "B1", "F1", width_cm=100)
    ingest_paths(factory, photos, "B1", "F1", PhotoStore(storage))


def run(photos: int, source: Path, backend: str = "opencv") -> list[dict[str, Any]]:
    from shelfwatch.bench.pgserver import start_server

    url_env = os.environ.get("SHELFWATCH_DATABASE_URL", "")
    server = None
    if not url_env.startswith("postgresql"):
        server = start_server()
        if server is None:
            raise RuntimeError(
                "bench worker needs PostgreSQL (apt-get install postgresql) or "
                "SHELFWATCH_DATABASE_URL=postgresql+psycopg://..."
            )
    work = Path(tempfile.mkdtemp(prefix="shelfwatch-benchw-"))
    rows: list[dict[str, Any]] = []
    try:
        files = make_photos(source, photos, work / "in")
        for processes in (1, 2):
            url = _database(server, url_env)
            storage = work / f"store{processes}"
            _prepare(url, storage, files)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWATCH_")}
            env.update(
                SHELFWATCH_DATABASE_URL=url,
                SHELFWATCH_STORAGE_DIR=str(storage),
                SHELFWATCH_HOME=str(work / "home"),
                SHELFWATCH_BACKEND=backend,
            )
            cmd = [
                sys.executable,
                "-m",
                "shelfwatch.cli",
                "worker",
                "--processes",
                str(processes),
                "--until-empty",
            ]
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            wall = time.perf_counter() - start
            # Steady state: completions between the first and the last photo, so the
            # processes' start-up (imports, model load) is not counted as queue throughput.
            with session_factory(url)() as s:
                first, last = s.execute(
                    select(func.min(Photo.processed_at), func.max(Photo.processed_at))
                ).one()
            steady = (photos - 1) / max(1e-9, (last - first).total_seconds())
            rows.append(
                {
                    "processes": processes,
                    "photos": photos,
                    "photos_per_s": round(steady, 2),
                    "photos_per_s_with_startup": round(photos / wall, 2),
                    "wall_s": round(wall, 1),
                }
            )
        speedup = rows[1]["photos_per_s"] / rows[0]["photos_per_s"]
        rows.append({"speedup_2_vs_1": round(speedup, 2)})
        # Queue overhead, in process: claim + commit against the whole per-photo time.
        url = _database(server, url_env)
        storage = work / "store-overhead"
        _prepare(url, storage, files)
        worker = Worker(session_factory(url, pre_ping=False), PhotoStore(storage), backend)
        worker.run(until_empty=True)
        st = worker.stats
        n = max(1, st["photos"])
        # Every per-photo database round trip: claim, context reads, commit (or failure).
        queue_s = st["claim_s"] + st["context_s"] + st["store_s"]
        total = queue_s + st["analyse_s"] + st["encode_s"]
        rows.append(
            {
                "claim_ms": round(1000 * st["claim_s"] / n, 2),
                "context_ms": round(1000 * st["context_s"] / n, 2),
                "commit_ms": round(1000 * st["store_s"] / n, 2),
                "encode_ms": round(1000 * st["encode_s"] / n, 2),
                "analyse_ms": round(1000 * st["analyse_s"] / n, 1),
                "queue_overhead_pct": round(100 * queue_s / total, 2),
            }
        )
    finally:
        if server is not None:
            server.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)  # photos and stores: hundreds of MB a run
    return rows


def _database(server: Any, url_env: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    return server.create_database(name) if server else _fresh_database(url_env, name)


def _fresh_database(url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)
