"""The processing queue in SQL: claim a photo under a lease, analyse it, store all at once.

Claiming uses ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; a no-op on SQLite, where
one worker process is the supported limit). Results and the status change commit in one
transaction, and only while this worker still holds the lease, so a photo is never stored
half-written or twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.core.imageio import load_image
from shelfwatch.db import models
from shelfwatch.db.convert import scene_rows
from shelfwatch.db.models import Photo, PhotoStatus
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.planogram.sku import load_signatures
from shelfwatch.services.catalog import catalog_items, planogram_in_force, planogram_rows
from shelfwatch.services.timeutil import as_utc
from shelfwatch.vision.registry import get_segmenter

log = logging.getLogger(__name__)
LEASE = dt.timedelta(minutes=5)
BACKOFF_BASE_S = 30.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def claim_next(factory: sessionmaker[Session], me: str) -> int | None:
    """Take the next due photo (queued, retry due, or lease expired) and lease it to ``me``."""
    now = _now()
    with factory.begin() as session:
        due = or_(
            Photo.status == PhotoStatus.queued.value,
            (Photo.status == PhotoStatus.failed.value) & (Photo.next_attempt_at <= now),
            (Photo.status == PhotoStatus.processing.value) & (Photo.lease_expires_at < now),
        )
        photo = session.scalar(
            select(Photo).where(due).order_by(Photo.id).limit(1).with_for_update(skip_locked=True)
        )
        if photo is None:
            return None
        photo.status = PhotoStatus.processing.value
        photo.locked_by = me
        photo.lease_expires_at = now + LEASE
        photo.attempts += 1
        return photo.id


@dataclass
class Worker:
    """One worker process: models and catalog signatures load once and are reused."""

    factory: sessionmaker[Session]
    storage_dir: Path
    backend: str = "opencv"
    max_attempts: int = 3
    me: str = field(default_factory=worker_id)
    _signatures: tuple[int, list] | None = None

    def signatures(self, session: Session) -> list:
        items = catalog_items(session)
        key = hash(tuple((i.sku, i.reference_image) for i in items))
        if self._signatures is None or self._signatures[0] != key:
            self._signatures = (key, load_signatures(self.storage_dir, items))
        return self._signatures[1]

    def process(self, photo_id: int) -> bool:
        """Analyse one claimed photo; True when stored, False when it failed."""
        segmenter = get_segmenter(self.backend)
        try:
            with self.factory() as session:
                photo = session.get(Photo, photo_id)
                assert photo is not None
                fixture, store = photo.fixture, photo.store
                plan = planogram_in_force(
                    session, store, fixture.code, as_utc(photo.captured_at).date()
                )
                items = catalog_items(session)
                context = FixtureContext(
                    width_cm=fixture.width_cm,
                    planogram=planogram_rows(plan) if plan else [],
                    catalog={i.sku: i for i in items},
                    signatures=self.signatures(session),
                    catalog_dir=self.storage_dir,
                )
                path = self.storage_dir / photo.storage_path
            image = load_image(path)
            scene = analyze(image, segmenter, context)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the photo
            self._fail(photo_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return False
        with self.factory.begin() as session:
            held = session.scalar(
                select(Photo)
                .where(
                    Photo.id == photo_id,
                    Photo.locked_by == self.me,
                    Photo.status == PhotoStatus.processing.value,
                )
                .with_for_update()
            )
            if held is None:
                log.warning("lease on photo %s lost; result discarded", photo_id)
                return False
            for table in (models.ProductInstance, models.Gap, models.PhotoShelf):
                session.execute(delete(table).where(table.photo_id == photo_id))
            session.add_all(scene_rows(photo_id, scene))
            held.status = PhotoStatus.done.value
            held.processed_at = _now()
            held.backend = scene.backend
            held.quality = scene.quality
            held.last_error = None
            held.locked_by = None
            held.lease_expires_at = None
        return True

    def _fail(self, photo_id: int, message: str, detail: str) -> None:
        log.error("photo %s failed: %s", photo_id, message)
        with self.factory.begin() as session:
            photo = session.get(Photo, photo_id)
            if photo is None:
                return
            photo.last_error = message[:2000]
            photo.locked_by = None
            photo.lease_expires_at = None
            if photo.attempts >= self.max_attempts:
                photo.status = PhotoStatus.quarantined.value
            else:
                photo.status = PhotoStatus.failed.value
                photo.next_attempt_at = _now() + dt.timedelta(
                    seconds=BACKOFF_BASE_S * 2 ** (photo.attempts - 1)
                )

    def run(
        self,
        until_empty: bool = True,
        poll_s: float = 2.0,
        progress: bool = False,
        limit: int | None = None,
    ) -> dict[str, int]:
        """Process photos until the queue is empty (or forever, polling)."""
        from tqdm import tqdm

        done = failed = 0
        bar = tqdm(desc="processing", unit="photo", disable=not progress)
        started = time.monotonic()
        while limit is None or done + failed < limit:
            photo_id = claim_next(self.factory, self.me)
            if photo_id is None:
                if until_empty:
                    break
                time.sleep(poll_s)
                continue
            if self.process(photo_id):
                done += 1
            else:
                failed += 1
            bar.update(1)
        bar.close()
        elapsed = time.monotonic() - started
        log.info("worker %s: %d done, %d failed in %.1fs", self.me, done, failed, elapsed)
        return {"done": done, "failed": failed}


def requeue(factory: sessionmaker[Session], photo_ids: list[int] | None = None) -> int:
    """Put quarantined/failed photos back in the queue with a fresh attempt count."""
    with factory.begin() as session:
        query = update(Photo).where(
            Photo.status.in_([PhotoStatus.quarantined.value, PhotoStatus.failed.value])
        )
        if photo_ids:
            query = query.where(Photo.id.in_(photo_ids))
        result = session.execute(
            query.values(status=PhotoStatus.queued.value, attempts=0, next_attempt_at=None)
        )
        return int(result.rowcount or 0)
