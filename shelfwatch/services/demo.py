"""``shelfwatch demo``: the whole pipeline on the bundled sample data, from an empty database."""

from __future__ import annotations

import csv
import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import shelfwatch
from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import Audit, Fixture, Photo, ProductInstance, Role, Store, User
from shelfwatch.db.models import Gap as GapRow
from shelfwatch.services import catalog as catalog_service
from shelfwatch.services import stores as store_service
from shelfwatch.services import users as user_service
from shelfwatch.services.audits import audit_days, run_audit
from shelfwatch.services.ingest import ingest_paths
from shelfwatch.services.worker import worker_from_settings
from shelfwatch.settings import Settings


def sample_data_dir() -> Path:
    """``data/`` of a checkout, or the copy packed into an installed wheel."""
    package = Path(shelfwatch.__file__).resolve().parent
    for candidate in (package.parent / "data", package / "_data"):
        if (candidate / "sample" / "catalog.csv").exists():
            return candidate
    raise ShelfWatchError("sample data not found; pass --data DIR")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_demo(
    settings: Settings, data_dir: Path | None = None, say: Callable[[str], None] = print
) -> dict[str, object]:
    """Set everything up from ``data_dir`` and process it; safe to run again (idempotent)."""
    data = data_dir or sample_data_dir()
    sample = data / "sample"
    settings.ensure_dirs()
    url = settings.resolved_database_url
    storage = settings.photo_store()
    say(f"database: {url}")
    upgrade(url)
    factory = session_factory(url)
    with factory.begin() as session:
        known = {s.code for s in store_service.list_stores(session)}
        for row in _rows(data / "stores.csv"):
            if row["code"] not in known:
                store_service.add_store(
                    session,
                    row["code"],
                    row["name"],
                    row["region"] or None,
                    row["timezone"] or "UTC",
                )
        have = {(s.code, f.code) for s, f in store_service.list_fixtures(session)}
        for row in _rows(data / "fixtures.csv"):
            if (row["store"], row["code"]) not in have:
                store_service.add_fixture(
                    session,
                    row["store"],
                    row["code"],
                    row["aisle"] or None,
                    float(row["width_cm"]),
                    int(row["shelves"]),
                )
    manifest = _rows(sample / "photos.csv")
    first_day = min(dt.date.fromisoformat(r["captured_at"][:10]) for r in manifest)
    with factory.begin() as session:
        res = catalog_service.import_catalog(session, sample / "catalog.csv", storage)
        say(f"catalog: {res.added} added, {res.updated} updated, {res.unchanged} unchanged")
        plans = catalog_service.import_planogram(
            session, sample / "planogram.csv", effective_from=first_day - dt.timedelta(days=1)
        )
        say(
            f"planograms: {sum(1 for *_, s in plans if s == 'imported')} imported, "
            f"{sum(1 for *_, s in plans if s == 'unchanged')} unchanged"
        )
    added = dup = 0
    for row in manifest:
        report = ingest_paths(
            factory,
            [sample / row["file"]],
            row["store"],
            row["fixture"],
            storage,
            captured_at=row["captured_at"],
        )
        added += len(report.added)
        dup += len(report.duplicates)
        for path, reason in report.rejected:
            say(f"rejected {path}: {reason}")
    say(f"photos: {added} ingested, {dup} already there")
    result = worker_from_settings(factory, settings).run(until_empty=True, progress=True)
    say(f"processed: {result['done']} done, {result['failed']} failed")
    summary: dict[str, object] = {"stores": []}
    with factory.begin() as session:
        for store in store_service.list_stores(session):
            for day in audit_days(session, store):
                run_audit(session, store.code, day)
    with factory() as session:
        say("")
        say(
            f"{'store':<8}{'photos':>8}{'products':>10}{'gaps':>6}{'audits':>8}"
            f"{'OSA %':>8}{'strict %':>10}{'lenient %':>11}"
        )
        for store in store_service.list_stores(session):
            photos = session.scalar(select(func.count()).where(Photo.store_id == store.id)) or 0
            products = (
                session.scalar(
                    select(func.count(ProductInstance.id))
                    .join(Photo, ProductInstance.photo_id == Photo.id)
                    .where(Photo.store_id == store.id)
                )
                or 0
            )
            gaps = (
                session.scalar(
                    select(func.count(GapRow.id))
                    .join(Photo, GapRow.photo_id == Photo.id)
                    .where(Photo.store_id == store.id)
                )
                or 0
            )
            audits = list(session.scalars(select(Audit).where(Audit.store_id == store.id)))

            def mean(key: str, audits: list[Audit] = audits) -> float | None:
                vals = [getattr(a, key) for a in audits if getattr(a, key) is not None]
                return round(sum(vals) / len(vals), 1) if vals else None

            row = {
                "store": store.code,
                "photos": photos,
                "products": products,
                "gaps": gaps,
                "audits": len(audits),
                "osa_pct": mean("osa_pct"),
                "compliance_strict_pct": mean("compliance_strict_pct"),
                "compliance_lenient_pct": mean("compliance_lenient_pct"),
            }
            summary["stores"].append(row)  # type: ignore[union-attr]
            say(
                f"{store.code:<8}{photos:>8}{products:>10}{gaps:>6}{len(audits):>8}"
                f"{_pct(row['osa_pct']):>8}{_pct(row['compliance_strict_pct']):>10}"
                f"{_pct(row['compliance_lenient_pct']):>11}"
            )
        fixtures = session.scalar(select(func.count(Fixture.id))) or 0
        stores = session.scalar(select(func.count(Store.id))) or 0
        say(f"\n{stores} stores, {fixtures} fixtures; data in {settings.home}")
    with factory.begin() as session:
        summary["login"] = _demo_login(session, say)
    return summary


DEMO_USER = "demo"


def _demo_login(session: Session, say: Callable[[str], None]) -> dict[str, str | None]:
    """An admin login for the demo dashboard, made once with a random password it prints."""
    if session.scalar(select(User).where(User.username == DEMO_USER)):
        say(
            f"dashboard login: {DEMO_USER} (password as printed on the first run; "
            f"new one: shelfwatch users passwd {DEMO_USER})"
        )
        return {"username": DEMO_USER, "password": None}
    password = secrets.token_urlsafe(9)
    user_service.add_user(session, DEMO_USER, password, Role.admin.value)
    say(f"dashboard login: {DEMO_USER} / {password}")
    return {"username": DEMO_USER, "password": password}


def _pct(value: object) -> str:
    return "-" if value is None else f"{value:.1f}"
