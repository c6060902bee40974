"""Fixtures that build real things: rendered photos, databases, a PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shelfwatch.bench.pgserver import PostgresServer, start_server
from shelfwatch.settings import get_settings
from shelfwatch.synth import SynthConfig, render_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve rendered photos with ground truth (a seed not used for the sample data)."""
    out = tmp_path_factory.mktemp("rendered")
    render_dataset(out, SynthConfig(photos=12, seed=101), progress=False)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SHELFWATCH_HOME (SQLite database and photo store) for one test."""
    monkeypatch.setenv("SHELFWATCH_HOME", str(tmp_path / "home"))
    for var in ("SHELFWATCH_DATABASE_URL", "SHELFWATCH_STORAGE_DIR", "SHELFWATCH_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server; skipped only where its binaries are absent and not required."""
    server = start_server()
    if server is None:
        if os.environ.get("SHELFWATCH_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries not found but SHELFWATCH_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    yield server
    server.stop("immediate")
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "README.md").exists():
        pytest.skip("../shared is not present")
    return SHARED
