"""The findings worklist's loop: a manager marks, the next audit confirms or reopens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shelfwatch.db.engine import session_factory
from shelfwatch.db.models import Audit, ComplianceFinding, Store
from shelfwatch.services import reporting
from shelfwatch.services.audits import run_audit
from shelfwatch.services.users import scope_for
from shelfwatch.settings import get_settings


@pytest.fixture
def session(demo_home: Path) -> Session:
    with session_factory(get_settings().resolved_database_url)() as s:
        yield s


def _audit_days(session: Session, store: str) -> list[dt.date]:
    return list(
        session.scalars(
            select(Audit.audit_date)
            .join(Store, Audit.store_id == Store.id)
            .where(Store.code == store)
            .order_by(Audit.audit_date)
        )
    )


def _findings(session: Session, store: str, day: dt.date) -> list[ComplianceFinding]:
    return list(
        session.scalars(
            select(ComplianceFinding)
            .join(Audit, ComplianceFinding.audit_id == Audit.id)
            .join(Store, Audit.store_id == Store.id)
            .where(Store.code == store, Audit.audit_date == day)
        )
    )


def _recurring(session: Session, store: str) -> tuple[dt.date, dt.date, ComplianceFinding]:
    """Two audit days of a store and a finding of the first that the second sees again.

    The demo's photos vary day to day, so the first day's finding is made the same finding
    (same key and fixture) as one the second day's audit computes.
    """
    with_findings = [d for d in _audit_days(session, store) if _findings(session, store, d)]
    a, b = with_findings[:2]
    seen_later = _findings(session, store, b)[0]
    finding = _findings(session, store, a)[0]
    finding.key, finding.fixture_id = seen_later.key, seen_later.fixture_id
    session.flush()
    return a, b, finding


def test_fixed_then_seen_again_is_reopened(session: Session) -> None:
    a, b, finding = _recurring(session, "S001")
    reporting.mark_finding(session, scope_for(session, "anna"), finding.id, "fixed")
    run_audit(session, "S001", b)
    session.flush()
    assert finding.status == "reopened" and finding.status_by == f"audit {b.isoformat()}"
    again = [f for f in _findings(session, "S001", b) if f.key == finding.key]
    assert len(again) == 1 and again[0].reopened and again[0].status == "open"


def test_fixed_and_gone_is_confirmed(session: Session) -> None:
    a, b, finding = _recurring(session, "S001")
    finding.key += "|since fixed"  # the next audit no longer sees this finding
    reporting.mark_finding(session, scope_for(session, "anna"), finding.id, "fixed")
    run_audit(session, "S001", b)
    assert finding.status == "confirmed"


def test_acknowledged_is_carried_while_seen(session: Session) -> None:
    a, b, finding = _recurring(session, "S001")
    reporting.mark_finding(session, scope_for(session, "anna"), finding.id, "acknowledged")
    run_audit(session, "S001", b)
    again = [f for f in _findings(session, "S001", b) if f.key == finding.key][0]
    assert (again.status, again.status_by) == ("acknowledged", "anna")


def test_rerunning_an_audit_keeps_the_marks(session: Session) -> None:
    day = _audit_days(session, "S002")[-1]
    before = _findings(session, "S002", day)
    marked = before[0]
    reporting.mark_finding(session, scope_for(session, "bert"), marked.id, "acknowledged")
    key = marked.key
    run_audit(session, "S002", day)
    after = _findings(session, "S002", day)
    assert len(after) == len(before)  # replaced, not duplicated
    kept = [f for f in after if f.key == key][0]
    assert (kept.status, kept.status_by) == ("acknowledged", "bert")
    assert all(f.status == "open" for f in after if f.key != key)


def test_marks_need_access_and_a_manual_status(session: Session) -> None:
    s2 = _findings(session, "S002", _audit_days(session, "S002")[-1])[0]
    with pytest.raises(reporting.AccessDenied):
        reporting.mark_finding(session, scope_for(session, "anna"), s2.id, "fixed")
    with pytest.raises(reporting.AccessDenied):
        reporting.mark_finding(session, scope_for(session, "anna"), 10**9, "fixed")
    with pytest.raises(Exception, match="status must be one of"):
        reporting.mark_finding(session, scope_for(session, "bert"), s2.id, "confirmed")
    assert s2.status == "open"
