"""Every export and every dashboard query on a real PostgreSQL, against the same data on
SQLite: the demo is loaded into both and each read must give the same rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shelfwatch.db.engine import session_factory
from shelfwatch.services import reporting
from shelfwatch.services.demo import run_demo
from shelfwatch.services.exports import EXPORTS, write_csv
from shelfwatch.services.status import queue_status
from shelfwatch.services.stores import list_fixtures
from shelfwatch.services.users import add_user, authenticate, scope_for
from shelfwatch.settings import Settings

pytestmark = pytest.mark.postgres


def _reads(url: str, photos: Path) -> dict[str, object]:
    """Every export's CSV and every dashboard read model, as plain values."""
    factory = session_factory(url)
    with factory.begin() as session:
        add_user(session, "boss", "correct horse", "admin")
    out: dict[str, object] = {}
    with factory() as session:
        scope = scope_for(session, "boss")
        for kind in EXPORTS:
            buffer = io.StringIO()
            write_csv(session, kind, buffer)
            lines = buffer.getvalue().splitlines()
            # Photo ids and computed_at differ between two runs of the demo; content must not.
            out[f"export {kind}"] = len(lines), lines[0]
            assert len(lines) > 1, kind
        first, last = reporting.audit_day_range(session, scope)
        assert first is not None and last is not None
        out["kpis"] = [
            {k: v for k, v in row.items() if k != "computed_at"}
            for row in reporting.store_kpis(session, last, scope)
        ]
        out["trend"] = reporting.kpi_trend(session, scope, first, last)
        out["worst"] = reporting.worst_fixtures(session, scope, last)
        work = reporting.worklist(session, scope, last)
        out["worklist"] = [(w["store"], w["fixture"], w["type"]) for w in work]
        out["retakes"] = reporting.retakes(session, scope)
        store = scope.stores[0]
        recent = reporting.recent_photos(session, scope, store)
        photo_id = int(recent[0]["id"])  # type: ignore[arg-type]
        out["recent"] = [(r["fixture"], r["status"]) for r in recent]
        info = reporting.photo_info(session, scope, photo_id)
        out["info"] = (info["store"], info["fixture"], info["status"])
        image, counts = reporting.photo_overlay(
            session, scope, photo_id, Settings(home=photos).photo_store()
        )
        out["overlay"] = image.shape, counts
        plan = reporting.plan_vs_real(session, scope, photo_id)
        out["plan_vs_real"] = sorted(plan)
        status = queue_status(session, store_ids=scope.store_ids)
        out["status"] = status["photos"], status["stalled"]
        out["fixtures"] = [(s.code, f.code) for s, f in list_fixtures(session)]
    with factory.begin() as session:  # what the dashboard writes: a login, a finding mark
        out["login"] = authenticate(session, "boss", "correct horse").username
        marked = reporting.mark_finding(session, scope, int(work[0]["finding_id"]), "fixed")  # type: ignore[arg-type]
        out["marked"] = marked.status
    with factory() as session:
        out["after_mark"] = [
            w["status"] for w in reporting.worklist(session, scope, last, statuses=("fixed",))
        ]
    return out


def test_every_export_and_dashboard_query_on_postgres(pg_url: str, tmp_path: Path) -> None:
    results = {}
    for name, url in (("sqlite", None), ("postgres", pg_url)):
        settings = Settings(home=tmp_path / name, database_url=url)
        run_demo(settings, say=lambda _msg: None)
        results[name] = _reads(settings.resolved_database_url, tmp_path / name)
    for key, value in results["sqlite"].items():
        assert results["postgres"][key] == value, key
