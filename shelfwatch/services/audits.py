"""Daily store audits: compliance of each fixture's latest photo of the day, stored with KPIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shelfwatch.db.convert import load_scene
from shelfwatch.db.models import Audit, ComplianceFinding, Photo, PhotoStatus, Store
from shelfwatch.planogram.compliance import ComplianceReport, check_compliance
from shelfwatch.services.catalog import catalog_items, planogram_in_force, planogram_rows
from shelfwatch.services.stores import get_store
from shelfwatch.services.timeutil import local_day_bounds

KPI_KEYS = ("osa_pct", "compliance_strict_pct", "compliance_lenient_pct", "facings_compliance_pct")


@dataclass
class AuditResult:
    audit: Audit
    fixtures: dict[str, ComplianceReport]
    warnings: list[str]


def photos_of_day(session: Session, store: Store, day: dt.date) -> list[Photo]:
    start, end = local_day_bounds(day, store.timezone)
    return list(
        session.scalars(
            select(Photo)
            .where(Photo.store_id == store.id, Photo.captured_at >= start, Photo.captured_at < end)
            .order_by(Photo.captured_at, Photo.id)
        )
    )


def run_audit(session: Session, store_code: str, day: dt.date) -> AuditResult:
    """Compute (or recompute, replacing the old one) a store's audit for a local day."""
    store = get_store(session, store_code)
    photos = photos_of_day(session, store, day)
    done = [p for p in photos if p.status == PhotoStatus.done.value]
    warnings = []
    pending = len(photos) - len(done)
    if pending:
        warnings.append(f"{pending} photo(s) of the day not processed yet")
    latest: dict[int, Photo] = {}
    for p in done:
        latest[p.fixture_id] = p  # ordered by time: the last one wins
    catalog = {c.sku: c for c in catalog_items(session)}
    session.execute(delete(Audit).where(Audit.store_id == store.id, Audit.audit_date == day))
    session.flush()
    audit = Audit(store_id=store.id, audit_date=day, photos=len(done), status="done")
    session.add(audit)
    session.flush()
    reports: dict[str, ComplianceReport] = {}
    weights: list[tuple[int, ComplianceReport]] = []
    products = gaps = 0
    for photo in latest.values():
        scene = load_scene(session, photo, with_masks=False)
        products += len(scene.products)
        gaps += len(scene.gaps)
        plan = planogram_in_force(session, store, photo.fixture.code, day)
        if plan is None:
            warnings.append(f"fixture {photo.fixture.code}: no planogram in force on {day}")
            continue
        rows = planogram_rows(plan)
        report = check_compliance(scene, rows, catalog)
        reports[photo.fixture.code] = report
        weights.append((len(rows), report))
        warnings.extend(f"fixture {photo.fixture.code}: {w}" for w in report.warnings)
        for f in report.findings:
            x1, y1, x2, y2 = f.bbox if f.bbox else (None, None, None, None)
            session.add(
                ComplianceFinding(
                    audit_id=audit.id,
                    photo_id=photo.id,
                    fixture_id=photo.fixture_id,
                    type=f.type,
                    shelf=f.shelf,
                    position=f.position,
                    expected_sku=f.expected_sku,
                    observed_sku=f.observed_sku,
                    expected_facings=f.expected_facings,
                    observed_facings=f.observed_facings,
                    x1=x1,
                    y1=y1,
                    x2=x2,
                    y2=y2,
                    impact=f.impact,
                )
            )
    audit.products, audit.gaps = products, gaps
    for key in KPI_KEYS:
        values = [(w, r.kpis.get(key)) for w, r in weights if r.kpis.get(key) is not None]
        total = sum(w for w, _ in values)
        setattr(audit, key, round(sum(w * v for w, v in values) / total, 2) if total else None)
    audit.kpis = {"fixtures": {code: r.kpis for code, r in reports.items()}, "warnings": warnings}
    if not done:
        audit.status = "no_photos"
    session.flush()
    return AuditResult(audit, reports, warnings)


def audit_days(session: Session, store: Store) -> list[dt.date]:
    """Local days on which the store has photos (for catch-up and the demo)."""
    from shelfwatch.services.timeutil import as_utc, zone

    tz = zone(store.timezone)
    times = session.scalars(select(Photo.captured_at).where(Photo.store_id == store.id))
    return sorted({as_utc(t).astimezone(tz).date() for t in times})
