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


def _findings_get_keys(url: str) -> None:
    """0002 adds finding keys; findings stored before it get the key new audits would give."""
    from sqlalchemy import text

    from shelfwatch.planogram.compliance import Finding
    from shelfwatch.services.audits import finding_key

    upgrade(url, "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO stores (id, code, name, timezone, created_at) "
                    "VALUES (1, 'S1', 'S1', 'UTC', '2026-01-01')"
                )
            )
            conn.execute(text("INSERT INTO fixtures (id, store_id, code) VALUES (7, 1, 'F1')"))
            conn.execute(
                text(
                    "INSERT INTO audits (id, store_id, audit_date, status, computed_at,"
                    " photos, products, gaps) VALUES (1, 1, '2026-01-02', 'done',"
                    " '2026-01-02', 1, 1, 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO compliance_findings (audit_id, fixture_id, type, shelf,"
                    " position, expected_sku, impact, status) VALUES"
                    " (1, 7, 'missing', 2, 3, 'SKU-9', 3.0, 'open'),"
                    " (1, 7, 'extra', 1, NULL, NULL, 1.0, 'open')"
                )
            )
        upgrade(url)
        with engine.connect() as conn:
            keys = [
                k for (k,) in conn.execute(text("SELECT key FROM compliance_findings ORDER BY id"))
            ]
    finally:
        engine.dispose()
    assert keys == [
        finding_key(7, Finding("missing", 2, 3, "SKU-9", None)),
        finding_key(7, Finding("extra", 1, None, None, None)),
    ]


def test_sqlite_finding_keys_migrated(tmp_path: Path) -> None:
    _findings_get_keys(f"sqlite:///{tmp_path / 'k.db'}")


@pytest.mark.postgres
def test_postgres_finding_keys_migrated(pg_url: str) -> None:
    _findings_get_keys(pg_url)
