"""Daily store audits: compliance of each fixture's latest photo of the day, stored with KPIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shelfwatch.db.convert import load_scene
from shelfwatch.db.models import (
    Audit,
    ComplianceFinding,
    FindingStatus,
    Photo,
    PhotoStatus,
    Store,
)
from shelfwatch.planogram.compliance import ComplianceReport, Finding, check_compliance
from shelfwatch.services.catalog import catalog_items, planogram_in_force, planogram_rows
from shelfwatch.services.stores import get_store
from shelfwatch.services.timeutil import local_day_bounds
from shelfwatch.vision.quality import RETAKE

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
    processed = [p for p in photos if p.status == PhotoStatus.done.value]
    # The quality gate: a photo to retake never counts (older rows have no verdict: usable).
    done = [p for p in processed if p.verdict != RETAKE]
    retakes = [p for p in processed if p.verdict == RETAKE]
    warnings = []
    pending = len(photos) - len(processed)
    if pending:
        warnings.append(f"{pending} photo(s) of the day not processed yet (left out)")
    if retakes:
        warnings.append(f"{len(retakes)} photo(s) to retake left out")
    latest: dict[int, Photo] = {}
    for p in done:
        latest[p.fixture_id] = p  # ordered by time: the last one wins
    catalog = {c.sku: c for c in catalog_items(session)}
    marks = _marks_of(session, store.id, day)
    old = session.scalar(select(Audit).where(Audit.store_id == store.id, Audit.audit_date == day))
    if old is not None:
        session.delete(old)  # through the ORM, so no stale findings stay in the session
        session.flush()
    audit = Audit(store_id=store.id, audit_date=day, photos=len(done), status="done")
    session.add(audit)
    session.flush()
    reports: dict[str, ComplianceReport] = {}
    weights: list[tuple[int, ComplianceReport]] = []
    products = gaps = 0
    findings: list[ComplianceFinding] = []
    for photo in latest.values():
        # With masks: the realogram counts a wide box by the columns its mask shows, as `check`.
        scene = load_scene(session, photo)
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
        findings.extend(
            ComplianceFinding(audit_id=audit.id, **finding_row(f, photo.fixture_id, photo.id))
            for f in report.findings
        )
    follow_up(session, store.id, day, {p.fixture_id for p in latest.values()}, findings, marks)
    session.add_all(findings)
    audit.products, audit.gaps = products, gaps
    used = {p.model_version or p.backend or "" for p in latest.values()} - {""}
    audit.models = "; ".join(sorted(used)) or None
    for key, value in weighted_kpis(weights).items():
        setattr(audit, key, value)
    audit.kpis = {
        "fixtures": {code: r.kpis for code, r in reports.items()},
        "warnings": warnings,
        "not_processed": pending,
        "retakes": [
            {
                "photo_id": p.id,
                "fixture": p.fixture.code,
                "reasons": (p.quality or {}).get("reasons", []),
            }
            for p in retakes
        ],
    }
    if not processed:
        audit.status = "no_photos"
    elif not done:
        audit.status = "no_usable_photos"
    session.flush()
    return AuditResult(audit, reports, warnings)


def weighted_kpis(weights: list[tuple[int, ComplianceReport]]) -> dict[str, float | None]:
    """A store's KPIs: its fixtures' KPIs weighted by their planogram positions."""
    out: dict[str, float | None] = {}
    for key in KPI_KEYS:
        values = [(w, r.kpis[key]) for w, r in weights if r.kpis.get(key) is not None]
        total = sum(w for w, _ in values)
        out[key] = round(sum(w * v for w, v in values) / total, 2) if total else None  # type: ignore[operator]
    return out


def audit_days(session: Session, store: Store) -> list[dt.date]:
    """Local days on which the store has photos (for catch-up and the demo)."""
    from shelfwatch.services.timeutil import as_utc, zone

    tz = zone(store.timezone)
    times = session.scalars(select(Photo.captured_at).where(Photo.store_id == store.id))
    return sorted({as_utc(t).astimezone(tz).date() for t in times})


def finding_key(fixture_id: int, f: Finding) -> str:
    """What makes two audits' findings "the same": fixture, type, shelf, position, SKUs."""
    parts = (fixture_id, f.type, f.shelf, f.position, f.expected_sku, f.observed_sku)
    return "|".join("" if v is None else str(v) for v in parts)


def finding_row(f: Finding, fixture_id: int, photo_id: int) -> dict[str, object]:
    """Column values of a stored finding (all but its audit)."""
    x1, y1, x2, y2 = f.bbox if f.bbox else (None, None, None, None)
    return {
        "photo_id": photo_id,
        "fixture_id": fixture_id,
        "type": f.type,
        "shelf": f.shelf,
        "position": f.position,
        "expected_sku": f.expected_sku,
        "observed_sku": f.observed_sku,
        "expected_facings": f.expected_facings,
        "observed_facings": f.observed_facings,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "impact": f.impact,
        "key": finding_key(fixture_id, f),
    }


Mark = tuple[str, str | None, dt.datetime | None, bool]  # status, by, at, reopened


def _marks_of(session: Session, store_id: int, day: dt.date) -> dict[str, Mark]:
    """What managers and earlier follow-ups set on the audit about to be recomputed."""
    rows = session.execute(
        select(
            ComplianceFinding.key,
            ComplianceFinding.status,
            ComplianceFinding.status_by,
            ComplianceFinding.status_at,
            ComplianceFinding.reopened,
        )
        .join(Audit, ComplianceFinding.audit_id == Audit.id)
        .where(
            Audit.store_id == store_id,
            Audit.audit_date == day,
            (ComplianceFinding.status != FindingStatus.open) | ComplianceFinding.reopened,
        )
    )
    return {key: (status, by, at, reopened) for key, status, by, at, reopened in rows}


def follow_up(
    session: Session,
    store_id: int,
    day: dt.date,
    fixtures_seen: set[int],
    findings: list[ComplianceFinding],
    marks: dict[str, Mark],
) -> None:
    """Carry managers' marks into a new audit's findings and decide earlier "fixed" marks.

    - Recomputing a day keeps what was set on that day's findings (nothing is lost).
    - A finding marked fixed earlier is confirmed when this audit photographed its fixture
      and no longer sees it, and reopened (the new finding flagged) when it sees it again.
    - An acknowledged finding stays acknowledged while the next audits keep seeing it.
    """
    now = dt.datetime.now(dt.UTC)
    by_key = {f.key: f for f in findings}
    for f in findings:
        if f.key in marks:
            f.status, f.status_by, f.status_at, f.reopened = marks[f.key]
    earlier = session.scalars(
        select(ComplianceFinding)
        .join(Audit, ComplianceFinding.audit_id == Audit.id)
        .where(
            Audit.store_id == store_id,
            Audit.audit_date < day,
            ComplianceFinding.fixture_id.in_(fixtures_seen),
            ComplianceFinding.status.in_([FindingStatus.fixed, FindingStatus.acknowledged]),
        )
        .order_by(Audit.audit_date)
    )
    for old in earlier:
        new = by_key.get(old.key)
        if old.status == FindingStatus.fixed:
            old.status = FindingStatus.reopened if new else FindingStatus.confirmed
            old.status_by, old.status_at = f"audit {day.isoformat()}", now
            if new is not None:
                new.reopened = True
        elif new is not None and new.key not in marks:
            new.status, new.status_by, new.status_at = old.status, old.status_by, old.status_at
