"""Scheduled audits with a controlled clock: time zones, DST changes, missed days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Audit, Store
from shelfwatch.services import stores
from shelfwatch.services.schedule import DueAudit, due_audits, run_due

UTC = dt.UTC


@pytest.fixture
def factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 's.db'}"
    upgrade(url)
    f = session_factory(url)
    with f.begin() as s:
        stores.add_store(s, "OSL", timezone="Europe/Oslo")
        stores.add_store(s, "NYC", timezone="America/New_York")
        s.execute(update(Store).values(created_at=dt.datetime(2026, 1, 1, tzinfo=UTC)))
    return f


def due(factory, now: dt.datetime, at: str = "06:00", days: int = 7) -> list[DueAudit]:  # type: ignore[no-untyped-def]
    with factory() as s:
        return due_audits(s, now, dt.time.fromisoformat(at), days)


def test_each_store_on_its_own_clock(factory) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime(2026, 3, 10, 5, 30, tzinfo=UTC)  # Oslo 06:30, New York 00:30
    items = due(factory, now, days=1)
    assert items == [DueAudit("NYC", dt.date(2026, 3, 9)), DueAudit("OSL", dt.date(2026, 3, 10))]


def test_runs_once_and_is_idempotent(factory) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    first = run_due(factory, now, dt.time(6, 0), catchup_days=3)
    assert len(first) == 6  # 3 days x 2 stores
    assert run_due(factory, now, dt.time(6, 0), catchup_days=3) == []
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Audit)) == 6


def test_missed_days_are_caught_up(factory) -> None:  # type: ignore[no-untyped-def]
    run_due(factory, dt.datetime(2026, 3, 5, 12, 0, tzinfo=UTC), dt.time(6, 0), 1)
    # The scheduler was down from the 5th to the 9th.
    items = due(factory, dt.datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
    # The 7-day window is the 3rd to the 9th; the 5th was audited before the outage.
    assert [i.day for i in items if i.store == "OSL"] == [
        dt.date(2026, 3, d) for d in (3, 4, 6, 7, 8, 9)
    ]


def test_catch_up_never_before_the_store_existed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory.begin() as s:
        s.execute(update(Store).values(created_at=dt.datetime(2026, 3, 8, 12, 0, tzinfo=UTC)))
    items = due(factory, dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC), days=30)
    assert sorted({i.day for i in items}) == [dt.date(2026, 3, d) for d in (8, 9, 10)]


def test_spring_forward_day(factory) -> None:  # type: ignore[no-untyped-def]
    # Oslo skips 02:00-03:00 on 2026-03-29; an audit set for 02:30 runs once the clock is past.
    before = dt.datetime(2026, 3, 29, 0, 45, tzinfo=UTC)  # 01:45 CET
    after = dt.datetime(2026, 3, 29, 1, 5, tzinfo=UTC)  # 03:05 CEST
    days = [i.day for i in due(factory, before, "02:30", 1) if i.store == "OSL"]
    assert days == [dt.date(2026, 3, 28)]
    days = [i.day for i in due(factory, after, "02:30", 1) if i.store == "OSL"]
    assert days == [dt.date(2026, 3, 29)]


def test_fall_back_day_runs_once(factory) -> None:  # type: ignore[no-untyped-def]
    # 02:30 happens twice in Oslo on 2026-10-25: the audit is made the first time only.
    first = dt.datetime(2026, 10, 25, 0, 35, tzinfo=UTC)  # 02:35 CEST
    second = dt.datetime(2026, 10, 25, 1, 35, tzinfo=UTC)  # 02:35 CET
    done = run_due(factory, first, dt.time(2, 30), 1)
    assert DueAudit("OSL", dt.date(2026, 10, 25)) in done
    again = run_due(factory, second, dt.time(2, 30), 1)
    assert DueAudit("OSL", dt.date(2026, 10, 25)) not in again
