"""Queue status: photos by state, the oldest queued photo's age, recent throughput, the
workers alive and the photos stalled on a dead one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from shelfwatch.db.models import Photo, PhotoStatus, Worker
from shelfwatch.services.timeutil import as_utc
from shelfwatch.services.worker import DEAD_AFTER


def queue_status(
    session: Session, window_minutes: int = 10, store_ids: Collection[int] | None = None
) -> dict[str, object]:
    """Photos by state, the oldest queued photo's age, throughput and recent failures.

    ``store_ids`` limits everything to those stores (the dashboard passes a user's stores).
    """
    now = dt.datetime.now(dt.UTC)
    mine = Photo.store_id.in_(store_ids) if store_ids is not None else true()
    counts = {s.value: 0 for s in PhotoStatus}
    for status, n in session.execute(
        select(Photo.status, func.count()).where(mine).group_by(Photo.status)
    ):
        counts[status] = n
    oldest = session.scalar(
        select(func.min(Photo.created_at)).where(mine, Photo.status == PhotoStatus.queued.value)
    )
    recent = (
        session.scalar(
            select(func.count()).where(
                mine, Photo.processed_at >= now - dt.timedelta(minutes=window_minutes)
            )
        )
        or 0
    )
    errors = [
        {
            "photo_id": p.id,
            "sha256": p.sha256,
            "name": p.original_name,
            "status": p.status,
            "attempts": p.attempts,
            "error": p.last_error,
        }
        for p in session.scalars(
            select(Photo)
            .where(
                mine,
                Photo.status.in_([PhotoStatus.quarantined.value, PhotoStatus.failed.value]),
            )
            .order_by(Photo.id)
            .limit(50)
        )
    ]
    workers = []
    for w in session.scalars(select(Worker).order_by(Worker.name)):
        age = (now - as_utc(w.heartbeat_at)).total_seconds()
        workers.append(
            {
                "name": w.name,
                "backend": w.backend,
                "alive": age <= DEAD_AFTER.total_seconds(),
                "heartbeat_age_s": round(age, 1),
                "started_at": as_utc(w.started_at).isoformat(),
                "done": w.done,
            }
        )
    dead = {w["name"] for w in workers if not w["alive"]}
    stalled = [
        {
            "photo_id": p.id,
            "name": p.original_name,
            "worker": p.locked_by,
            "why": "lease expired"
            if p.lease_expires_at is not None and as_utc(p.lease_expires_at) < now
            else "worker stopped",
        }
        for p in session.scalars(
            select(Photo)
            .where(mine, Photo.status == PhotoStatus.processing.value)
            .order_by(Photo.id)
        )
        if p.locked_by in dead
        or (p.lease_expires_at is not None and as_utc(p.lease_expires_at) < now)
    ]
    return {
        "photos": counts,
        "workers": workers,
        "stalled": stalled,
        "oldest_queued_age_s": round((now - as_utc(oldest)).total_seconds(), 1) if oldest else None,
        "throughput_per_min": round(recent / window_minutes, 2),
        "window_minutes": window_minutes,
        "errors": errors,
    }
