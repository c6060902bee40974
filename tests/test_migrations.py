"""Migrations produce exactly the ORM schema, and go down and up again, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from shelfwatch.db.engine import make_engine
from shelfwatch.db.migrate import current_revision, downgrade, head_revision, upgrade
from shelfwatch.db.models import Base


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    upgrade(url)
    assert current_revision(url) == head_revision(url)
    assert _diff(url) == []
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "base")
    assert current_revision(url) is None and _tables(url) == set()
    upgrade(url)
    assert _diff(url) == []


def test_sqlite_migrations(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_migrations(pg_url: str) -> None:
    _round_trip(pg_url)


@pytest.mark.postgres
def test_cli_db_upgrade_on_postgres(pg_url: str, cli, monkeypatch, home) -> None:  # type: ignore[no-untyped-def]
    from shelfwatch.cli import app
    from shelfwatch.settings import get_settings

    monkeypatch.setenv("SHELFWATCH_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    result = cli.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision(pg_url)}" in result.stdout
