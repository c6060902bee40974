"""Daily audits on a schedule: each store at a local time of day, missed days caught up.

The decision of what is due is a pure function of the clock and the audits already stored,
so it is tested with a controlled clock (time zones, DST changes, missed days); the
scheduler only calls it every minute.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.db.models import Audit, Store
from shelfwatch.services.audits import run_audit
from shelfwatch.services.timeutil import as_utc, zone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueAudit:
    store: str
    day: dt.date


def due_audits(
    session: Session, now: dt.datetime, at: dt.time, catchup_days: int = 7
) -> list[DueAudit]:
    """Audits whose local time has come and that are not stored yet, oldest first.

    A store's audit for local day D is due once the store's local clock has passed ``at`` on
    D. Days missed while the scheduler was down are due too, up to ``catchup_days`` back
    (never before the store existed).
    """
    now = as_utc(now)
    done = {(a.store_id, a.audit_date) for a in session.scalars(select(Audit))}
    due = []
    for store in session.scalars(select(Store).order_by(Store.code)):
        local = now.astimezone(zone(store.timezone))
        last = local.date() if local.time() >= at else local.date() - dt.timedelta(days=1)
        created = as_utc(store.created_at).astimezone(zone(store.timezone)).date()
        first = max(last - dt.timedelta(days=catchup_days - 1), created)
        day = first
        while day <= last:
            if (store.id, day) not in done:
                due.append(DueAudit(store.code, day))
            day += dt.timedelta(days=1)
    return sorted(due, key=lambda d: (d.day, d.store))


def run_due(
    factory: sessionmaker[Session],
    now: dt.datetime,
    at: dt.time,
    catchup_days: int = 7,
) -> list[DueAudit]:
    """Compute every due audit, each in its own transaction, over the photos done by now.

    The queue is not drained first: with photos arriving steadily it never empties, and
    audits would never run. Photos still queued are counted in each audit's warnings.
    """
    with factory() as session:
        due = due_audits(session, now, at, catchup_days)
    for item in due:
        with factory.begin() as session:
            result = run_audit(session, item.store, item.day)
            log.info("audit %s %s: %s", item.store, item.day, result.audit.status)
    return due
