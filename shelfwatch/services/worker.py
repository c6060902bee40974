"""The processing queue in SQL: claim a photo under a lease, analyse it, store all at once.

Claiming uses ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; a no-op on SQLite, where
one worker process is the supported limit). Each running worker writes a heartbeat every
few seconds to ``workers``; a photo whose worker has been silent for ``DEAD_AFTER`` is taken
over by another worker at once, and any photo whose lease ran out (a worker that never
registered) too. Results and the status change commit in one transaction, and only while
this worker still holds the lease, so a photo is never stored half-written or twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import cv2
import numpy as np
from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.core.imageio import decode_image
from shelfwatch.core.scene import ShelfScene
from shelfwatch.db import models
from shelfwatch.db.convert import insert_rows, scene_rows
from shelfwatch.db.models import Photo, PhotoStatus
from shelfwatch.db.models import Worker as WorkerRow
from shelfwatch.pipeline import FixtureContext, analyze_batch
from shelfwatch.planogram.formats import CatalogItem
from shelfwatch.planogram.sku import Signature, load_signatures
from shelfwatch.services.catalog import catalog_items, planogram_in_force, planogram_rows
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.timeutil import local_date
from shelfwatch.settings import Settings
from shelfwatch.vision.base import Segmenter
from shelfwatch.vision.registry import get_segmenter, model_version
from shelfwatch.vision.video import Frame

log = logging.getLogger(__name__)
T = TypeVar("T")
WORKER_THREADS = int(os.environ.get("SHELFWATCH_WORKER_THREADS", "1"))
LEASE = dt.timedelta(minutes=5)  # renewed every third of itself while a photo is worked on
BACKOFF_BASE_S = 30.0
LOG_EVERY_S = 30.0
HEARTBEAT_S = 5.0  # a running worker says so this often
DEAD_AFTER = dt.timedelta(seconds=15)  # three missed heartbeats: its photos are taken over
FORGET_AFTER = dt.timedelta(days=1)  # a dead worker's row is dropped after this
CATALOG_TTL_S = 30.0  # a catalog import reaches running workers within this
DB_ERRORS = (OperationalError, DBAPIError)
DB_WAIT_MAX_S = 30.0  # waits for an unreachable database double up to this


def wait_for_database(action: Callable[[], T], what: str, give_up_s: float | None = None) -> T:
    """``action`` retried while the database is unreachable (a restart, a container that
    starts after the worker), waiting 1 s, then twice as long each time up to 30 s; after
    ``give_up_s`` (``None``: never) the last error is raised."""
    started, wait = time.monotonic(), 1.0
    while True:
        try:
            return action()
        except DB_ERRORS as exc:
            if give_up_s is not None and time.monotonic() - started + wait > give_up_s:
                raise
            log.warning(
                "database unavailable for %s (%s); retrying in %.0fs",
                what,
                type(exc).__name__,
                wait,
            )
            time.sleep(wait)
            wait = min(DB_WAIT_MAX_S, wait * 2)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dead_workers(now: dt.datetime) -> Select[tuple[str]]:
    """Names of registered workers whose heartbeat stopped."""
    return select(WorkerRow.name).where(WorkerRow.heartbeat_at < now - DEAD_AFTER)


def _due(now: dt.datetime) -> ColumnElement[bool]:
    processing = Photo.status == PhotoStatus.processing.value
    return or_(
        Photo.status == PhotoStatus.queued.value,
        (Photo.status == PhotoStatus.failed.value) & (Photo.next_attempt_at <= now),
        processing & (Photo.lease_expires_at < now),
        processing & Photo.locked_by.in_(dead_workers(now)),
    )


def claim_next(factory: sessionmaker[Session], me: str, lease: dt.timedelta = LEASE) -> int | None:
    """Take the next due photo (queued, retry due, or lease expired) and lease it to ``me``."""
    claimed = claim_batch(factory, me, 1, lease)
    return claimed[0] if claimed else None


def claim_batch(
    factory: sessionmaker[Session], me: str, size: int, lease: dt.timedelta = LEASE
) -> list[int]:
    """Take up to ``size`` due photos, oldest first, and lease them to ``me``."""
    now = _now()
    with factory.begin() as session:
        photos = session.scalars(
            select(Photo)
            .where(_due(now))
            .order_by(Photo.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        ).all()
        for photo in photos:
            photo.status = PhotoStatus.processing.value
            photo.locked_by = me
            photo.lease_expires_at = now + lease
            photo.attempts += 1
        return [p.id for p in photos]


def outstanding(factory: sessionmaker[Session]) -> int:
    """Photos that still need work: queued, being processed, or failed awaiting a retry."""
    pending = [PhotoStatus.queued.value, PhotoStatus.processing.value, PhotoStatus.failed.value]
    with factory() as session:
        return session.scalar(select(func.count()).where(Photo.status.in_(pending))) or 0


class LeaseKeeper:
    """Renews this worker's lease on a photo while it is being analysed."""

    def __init__(
        self, factory: sessionmaker[Session], photo_ids: list[int], me: str, lease: dt.timedelta
    ) -> None:
        self.factory, self.photo_ids, self.me, self.lease = factory, photo_ids, me, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                with self.factory.begin() as session:
                    session.execute(
                        update(Photo)
                        .where(
                            Photo.id.in_(self.photo_ids),
                            Photo.locked_by == self.me,
                            Photo.status == PhotoStatus.processing.value,
                        )
                        .values(lease_expires_at=_now() + self.lease)
                    )
            except DB_ERRORS as exc:  # the final commit decides; keep trying
                log.warning("lease renewal for photos %s failed: %s", self.photo_ids, exc)


class Heartbeat:
    """Registers this worker in ``workers`` and refreshes its heartbeat until it stops."""

    def __init__(self, factory: sessionmaker[Session], me: str, backend: str) -> None:
        self.factory, self.me, self.backend = factory, me, backend
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeat:
        wait_for_database(self._register, "registering the worker")
        self._thread.start()
        return self

    def _register(self) -> None:
        now = _now()
        host, _, pid = self.me.rpartition(":")
        with self.factory.begin() as session:
            # Its own old row, and workers silent for a day (status has shown them as dead).
            session.execute(
                delete(WorkerRow).where(
                    (WorkerRow.name == self.me) | (WorkerRow.heartbeat_at < now - FORGET_AFTER)
                )
            )
            session.add(
                WorkerRow(
                    name=self.me,
                    host=host,
                    pid=int(pid) if pid.isdigit() else 0,
                    backend=self.backend,
                    started_at=now,
                    heartbeat_at=now,
                    done=0,
                )
            )

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            with self.factory.begin() as session:
                # Stopped mid-photo (SIGTERM, Ctrl+C): hand its photos back at once, and the
                # interrupted attempt does not count against them.
                session.execute(
                    update(Photo)
                    .where(Photo.locked_by == self.me, Photo.status == PhotoStatus.processing)
                    .values(
                        status=PhotoStatus.queued.value,
                        locked_by=None,
                        lease_expires_at=None,
                        attempts=Photo.attempts - 1,
                    )
                )
                session.execute(delete(WorkerRow).where(WorkerRow.name == self.me))
        except DB_ERRORS as exc:  # its heartbeat stops anyway; others see it as gone
            log.warning("could not deregister worker %s: %s", self.me, exc)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self.factory.begin() as session:
                    session.execute(
                        update(WorkerRow)
                        .where(WorkerRow.name == self.me)
                        .values(heartbeat_at=_now(), done=self.done)
                    )
            except DB_ERRORS as exc:  # the database is away; the main loop waits it out
                log.warning("heartbeat of %s failed: %s", self.me, exc)


@dataclass
class Worker:
    """One worker process: models and catalog signatures load once and are reused."""

    factory: sessionmaker[Session]
    photos: PhotoStore
    backend: str = "opencv"
    max_attempts: int = 3
    me: str = field(default_factory=worker_id)
    lease: dt.timedelta = LEASE
    backoff_s: float = BACKOFF_BASE_S
    batch_size: int = 1
    stats: dict[str, float] = field(
        default_factory=lambda: {
            "claim_s": 0.0,
            "context_s": 0.0,
            "analyse_s": 0.0,
            "encode_s": 0.0,
            "store_s": 0.0,
            "photos": 0,
        }
    )
    _catalog: tuple[float, list[CatalogItem], list[Signature]] | None = None

    def catalog(self, session: Session) -> tuple[list[CatalogItem], list[Signature]]:
        """The catalog and its colour signatures, read again at most every CATALOG_TTL_S."""
        now = time.monotonic()
        if self._catalog is None or now - self._catalog[0] > CATALOG_TTL_S:
            items = catalog_items(session)
            old = self._catalog
            if old is not None and old[1] == items:
                signatures = old[2]
            else:
                refs = (i.reference_image for i in items if i.reference_image)
                signatures = load_signatures(self.photos.local_folder(refs), items)
            self._catalog = (now, items, signatures)
        return self._catalog[1], self._catalog[2]

    def _context(self, session: Session, photo: Photo) -> FixtureContext:
        fixture, store = photo.fixture, photo.store
        # The store's local date, as audits use: near midnight UTC and local differ.
        day = local_date(photo.captured_at, store.timezone)
        plan = planogram_in_force(session, store, fixture.code, day)
        items, signatures = self.catalog(session)
        return FixtureContext(
            width_cm=fixture.width_cm,
            planogram=planogram_rows(plan) if plan else [],
            catalog={i.sku: i for i in items},
            signatures=signatures,
            catalog_dir=self.photos.local_root,
        )

    def process(self, photo_id: int) -> bool:
        """Analyse one claimed photo; True when stored, False when it failed.

        Database errors propagate (the photo is not at fault; its lease will expire).
        """
        return self.process_batch([photo_id]) == 1

    def process_batch(self, photo_ids: list[int]) -> int:
        """Analyse claimed photos together (one model pass where the backend batches).

        Returns how many were stored. A photo that cannot be read fails alone; if the
        batch as a whole fails, each photo is tried on its own so one bad photo is found.
        """
        segmenter = get_segmenter(self.backend)
        # A worker process is the unit of parallelism: OpenCV's own threads would only fight
        # the other processes for the same cores.
        cv2.setNumThreads(WORKER_THREADS)
        with LeaseKeeper(self.factory, photo_ids, self.me, self.lease):
            ready: list[tuple[int, np.ndarray, FixtureContext]] = []
            captures = 0
            for photo_id in photo_ids:
                started = time.perf_counter()
                with self.factory() as session:
                    photo = session.get(Photo, photo_id)
                    if photo is None:
                        continue
                    context = self._context(session, photo)
                    rel, media, sha = photo.storage_path, photo.media, photo.sha256
                self.stats["context_s"] += time.perf_counter() - started
                if media != "photo":  # a video or photo series: analysed on its own
                    captures += self._capture(photo_id, rel, media, sha, segmenter, context)
                    continue
                try:
                    ready.append(
                        (photo_id, decode_image(self.photos.read_bytes(rel), rel), context)
                    )
                except Exception as exc:  # noqa: BLE001 - recorded on the photo
                    self._fail(photo_id, f"{type(exc).__name__}: {exc}")
            if not ready:
                return captures
            started = time.perf_counter()
            try:
                scenes = analyze_batch([r[1] for r in ready], segmenter, [r[2] for r in ready])
            except Exception as exc:  # noqa: BLE001 - isolate the photo at fault
                if len(ready) > 1:
                    return sum(self.process_batch([r[0]]) for r in ready)
                self._fail(ready[0][0], f"{type(exc).__name__}: {exc}")
                return 0
            self.stats["analyse_s"] += time.perf_counter() - started
        version = model_version(segmenter)
        return captures + sum(
            self._store(r[0], scene, version) for r, scene in zip(ready, scenes, strict=True)
        )

    def _capture(
        self,
        photo_id: int,
        rel: str,
        media: str,
        sha: str,
        segmenter: Segmenter,
        context: FixtureContext,
    ) -> int:
        """Analyse a video or photo series as one fixture; store its stitched picture."""
        from shelfwatch.capture import analyze_capture
        from shelfwatch.vision.video import choose_frames, read_video

        started = time.perf_counter()
        try:
            if media == "video":
                frames = choose_frames(read_video(self.photos.local_path(rel)))
            else:
                members = json.loads(self.photos.read_bytes(rel))["frames"]
                frames = [
                    Frame(i, float(i), decode_image(self.photos.read_bytes(m), m))
                    for i, m in enumerate(members)
                ]
            # One part is stored whole: it keeps what earlier parts also saw.
            results = analyze_capture(frames, segmenter, context, count_once=False)
        except Exception as exc:  # noqa: BLE001 - recorded on the capture
            self._fail(photo_id, f"{type(exc).__name__}: {exc}")
            return 0
        self.stats["analyse_s"] += time.perf_counter() - started
        # Views that do not overlap are never fused: the widest part is stored, and the
        # capture says which frames were left out.
        best = max(results, key=lambda r: len(r.frames_used))
        scene = best.scene
        if len(results) > 1:
            left = sorted(set(f.index for f in frames) - set(best.frames_used))
            scene.warnings.append(
                f"views that do not overlap: {len(results)} fixtures; frames {left} left out"
            )
        stitched = f"stitched/{sha}.jpg"
        jpeg = cv2.imencode(".jpg", best.image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        self.photos.put_bytes(jpeg.tobytes(), stitched)
        extra = {"frames": len(best.frames_used), "stitched_path": stitched}
        return int(self._store(photo_id, scene, model_version(segmenter), extra))

    def _store(
        self,
        photo_id: int,
        scene: ShelfScene,
        version: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> bool:
        """Write a photo's results and mark it done, if this worker still holds its lease."""
        started = time.perf_counter()
        rows = scene_rows(photo_id, scene)  # encode masks before taking any row lock
        self.stats["encode_s"] += time.perf_counter() - started
        started = time.perf_counter()
        with self.factory.begin() as session:
            # Core statements, not ORM objects: this transaction is the queue's hot path.
            held = session.execute(
                select(Photo.processed_at)
                .where(
                    Photo.id == photo_id,
                    Photo.locked_by == self.me,
                    Photo.status == PhotoStatus.processing.value,
                )
                .with_for_update()
            ).first()
            if held is None:
                log.warning("lease on photo %s lost; result discarded", photo_id)
                return False
            if held.processed_at is not None:  # reprocessing: replace the earlier results
                for table in (models.ProductInstance, models.Gap, models.PhotoShelf):
                    session.execute(delete(table).where(table.photo_id == photo_id))
            insert_rows(session, rows)
            session.execute(
                update(Photo)
                .where(Photo.id == photo_id)
                .values(
                    status=PhotoStatus.done.value,
                    processed_at=_now(),
                    backend=scene.backend,
                    model_version=version,
                    quality=scene.quality,
                    verdict=scene.quality.get("verdict"),
                    width=scene.width,
                    height=scene.height,
                    **(extra or {}),
                    last_error=None,
                    locked_by=None,
                    lease_expires_at=None,
                )
            )
        self.stats["store_s"] += time.perf_counter() - started
        self.stats["photos"] += 1
        return True

    def _fail(self, photo_id: int, message: str) -> None:
        log.error("photo %s failed: %s", photo_id, message)
        started = time.perf_counter()
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
                    seconds=self.backoff_s * 2 ** (photo.attempts - 1)
                )
        self.stats["store_s"] += time.perf_counter() - started

    def run(
        self,
        until_empty: bool = True,
        poll_s: float = 1.0,
        progress: bool = False,
        limit: int | None = None,
    ) -> dict[str, int]:
        """Process photos; with ``until_empty``, stop once nothing is left to do anywhere.

        Photos leased by other workers count as left to do: if such a worker dies, its
        lease expires and this one takes the photo over. Database outages are waited out.
        """
        from tqdm import tqdm

        done = failed = 0
        bar = tqdm(desc="processing", unit="photo", disable=not progress)
        run_started = last_log = time.monotonic()
        db_wait = 1.0
        with Heartbeat(self.factory, self.me, self.backend) as heartbeat:
            while limit is None or done + failed < limit:
                try:
                    claim_started = time.perf_counter()
                    size = (
                        self.batch_size
                        if limit is None
                        else min(self.batch_size, limit - done - failed)
                    )
                    photo_ids = claim_batch(self.factory, self.me, size, self.lease)
                    self.stats["claim_s"] += time.perf_counter() - claim_started
                    if not photo_ids:
                        if until_empty and outstanding(self.factory) == 0:
                            break
                        time.sleep(poll_s)
                        continue
                    stored = self.process_batch(photo_ids)
                    db_wait = 1.0
                except DB_ERRORS as exc:
                    log.warning(
                        "database unavailable (%s); retrying in %.0fs",
                        type(exc).__name__,
                        db_wait,
                    )
                    time.sleep(db_wait)
                    db_wait = min(DB_WAIT_MAX_S, db_wait * 2)
                    continue
                done, failed = done + stored, failed + len(photo_ids) - stored
                heartbeat.done = done
                bar.update(len(photo_ids))
                if time.monotonic() - last_log >= LOG_EVERY_S:
                    last_log = time.monotonic()
                    rate = done / (last_log - run_started)
                    log.info("worker %s: %d done, %.2f photos/s", self.me, done, rate)
        bar.close()
        elapsed = time.monotonic() - run_started
        log.info("worker %s: %d done, %d failed in %.1fs", self.me, done, failed, elapsed)
        return {"done": done, "failed": failed}


RETRYABLE = (PhotoStatus.quarantined.value, PhotoStatus.failed.value)


def requeue(
    factory: sessionmaker[Session],
    photo_ids: list[int] | None = None,
    statuses: tuple[str, ...] = RETRYABLE,
) -> int:
    """Put quarantined/failed photos (of ``statuses``; only ``photo_ids`` when given) back in
    the queue with a fresh attempt count; returns how many."""
    with factory.begin() as session:
        query = update(Photo).where(Photo.status.in_([s for s in statuses if s in RETRYABLE]))
        if photo_ids:
            query = query.where(Photo.id.in_(photo_ids))
        result = session.execute(
            query.values(
                status=PhotoStatus.queued.value, attempts=0, next_attempt_at=None, last_error=None
            )
        )
        return int(result.rowcount or 0)


def worker_from_settings(
    factory: sessionmaker[Session], settings: Settings, backend: str | None = None
) -> Worker:
    """A worker configured by ShelfWatch's settings (storage, backend, lease, retries, batch)."""
    return Worker(
        factory,
        settings.photo_store(),
        backend or settings.backend,
        settings.max_attempts,
        lease=dt.timedelta(seconds=settings.lease_seconds),
        backoff_s=settings.retry_backoff_s,
        batch_size=max(1, settings.batch_size),
    )
