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


PASSWORD = "correct horse"  # every test user's password


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run once (SQLite + photo store) with users of each role; copied per test."""
    from shelfwatch.db.engine import session_factory
    from shelfwatch.services.demo import run_demo
    from shelfwatch.services.users import add_user
    from shelfwatch.settings import Settings

    home = tmp_path_factory.mktemp("demo") / "home"
    settings = Settings(home=home)
    run_demo(settings, say=lambda _msg: None)
    with session_factory(settings.resolved_database_url).begin() as session:
        add_user(session, "boss", PASSWORD, "admin")
        add_user(session, "anna", PASSWORD, "manager", stores=["S001"])
        add_user(session, "bert", PASSWORD, "manager", stores=["S002"])
        add_user(session, "nora", PASSWORD, "regional", region="North")
    return home


@pytest.fixture
def demo_home(demo_template: Path, home: Path) -> Path:
    """A private copy of the demo home as this test's SHELFWATCH_HOME."""
    shutil.copytree(demo_template, home)
    return home
