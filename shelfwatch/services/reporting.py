"""Read models for the dashboard, always within a user's ``Scope``; aggregates run in SQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.imageio import decode_image
from shelfwatch.db.convert import load_scene
from shelfwatch.db.models import (
    Audit,
    ComplianceFinding,
    FindingStatus,
    Fixture,
    Photo,
    PhotoStatus,
    Store,
)
from shelfwatch.planogram.realogram import realogram, runs
from shelfwatch.services.catalog import catalog_items, planogram_in_force
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.timeutil import as_utc, zone
from shelfwatch.services.users import Scope
from shelfwatch.vision.annotate import render_overlay
from shelfwatch.vision.quality import RETAKE

KPI_COLUMNS = (
    "osa_pct",
    "compliance_strict_pct",
    "compliance_lenient_pct",
    "facings_compliance_pct",
)
ACTIONABLE = (FindingStatus.open.value, FindingStatus.acknowledged.value)
# What a manager may set by hand; confirmed/reopened are the next audit's verdicts.
MANUAL_STATUSES = (
    FindingStatus.open.value,
    FindingStatus.acknowledged.value,
    FindingStatus.fixed.value,
)


class AccessDenied(ShelfWatchError):
    """The user asked for something outside their stores (the page shows the message only)."""


def _store_id(session: Session, scope: Scope, code: str) -> int:
    store_id = session.scalar(select(Store.id).where(Store.code == code))
    if not scope.allows(store_id):
        raise AccessDenied(f"no access to store {code!r}")
    return store_id  # type: ignore[return-value]


def audit_day_range(session: Session, scope: Scope) -> tuple[dt.date | None, dt.date | None]:
    """First and last audit day over the user's stores."""
    first, last = session.execute(
        select(func.min(Audit.audit_date), func.max(Audit.audit_date)).where(
            Audit.store_id.in_(scope.store_ids)
        )
    ).one()
    return first, last


def store_kpis(session: Session, day: dt.date, scope: Scope) -> list[dict[str, object]]:
    """Per store: the audit KPIs of ``day``, the previous audit's, and open findings."""
    open_findings = (
        select(ComplianceFinding.audit_id, func.count().label("n"))
        .where(ComplianceFinding.status.in_(ACTIONABLE))
        .group_by(ComplianceFinding.audit_id)
        .subquery()
    )
    previous_day = (
        select(Audit.store_id, func.max(Audit.audit_date).label("day"))
        .where(Audit.audit_date < day, Audit.store_id.in_(scope.store_ids))
        .group_by(Audit.store_id)
        .subquery()
    )
    prev = aliased(Audit)
    rows = session.execute(
        select(
            Store.code,
            Store.name,
            Store.region,
            Audit.photos,
            Audit.products,
            Audit.gaps,
            *(getattr(Audit, k) for k in KPI_COLUMNS),
            func.coalesce(open_findings.c.n, 0),
            previous_day.c.day,
            prev.osa_pct,
            prev.compliance_strict_pct,
            prev.gaps,
            Audit.models,
        )
        .join(Audit, (Audit.store_id == Store.id) & (Audit.audit_date == day))
        .outerjoin(open_findings, open_findings.c.audit_id == Audit.id)
        .outerjoin(previous_day, previous_day.c.store_id == Store.id)
        .outerjoin(prev, (prev.store_id == Store.id) & (prev.audit_date == previous_day.c.day))
        .where(Store.id.in_(scope.store_ids))
        .order_by(Store.code)
    )
    keys = [
        "store",
        "name",
        "region",
        "photos",
        "products",
        "gaps",
        *KPI_COLUMNS,
        "open_findings",
        "previous_audit",
        "previous_osa_pct",
        "previous_compliance_strict_pct",
        "previous_gaps",
        "models",
    ]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def kpi_trend(
    session: Session, scope: Scope, start: dt.date, end: dt.date, store: str | None = None
) -> list[dict[str, object]]:
    """Daily KPI averages over the user's stores (or one store) between two days."""
    ids = [_store_id(session, scope, store)] if store else scope.store_ids
    rows = session.execute(
        select(
            Audit.audit_date,
            func.count(),
            func.avg(Audit.osa_pct),
            func.avg(Audit.compliance_strict_pct),
            func.sum(Audit.products),
            func.sum(Audit.gaps),
        )
        .where(Audit.store_id.in_(ids), Audit.audit_date.between(start, end))
        .group_by(Audit.audit_date)
        .order_by(Audit.audit_date)
    )
    keys = ["day", "stores", "osa_pct", "compliance_strict_pct", "products", "gaps"]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def worst_fixtures(
    session: Session, scope: Scope, day: dt.date, limit: int = 10
) -> list[dict[str, object]]:
    """Fixtures with the largest open-finding impact in the audits of ``day``."""
    impact = func.sum(ComplianceFinding.impact)
    rows = session.execute(
        select(Store.code, Fixture.code, Fixture.aisle, func.count(), impact)
        .join(Audit, ComplianceFinding.audit_id == Audit.id)
        .join(Fixture, ComplianceFinding.fixture_id == Fixture.id)
        .join(Store, Audit.store_id == Store.id)
        .where(
            Audit.audit_date == day,
            Audit.store_id.in_(scope.store_ids),
            ComplianceFinding.status.in_(ACTIONABLE),
        )
        .group_by(Store.code, Fixture.code, Fixture.aisle)
        .order_by(impact.desc(), Store.code, Fixture.code)
        .limit(limit)
    )
    keys = ["store", "fixture", "aisle", "open_findings", "impact"]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def worklist(
    session: Session,
    scope: Scope,
    day: dt.date,
    store: str | None = None,
    statuses: tuple[str, ...] = ACTIONABLE,
    limit: int = 500,
) -> list[dict[str, object]]:
    """Findings of each store's latest audit up to ``day``, largest impact first."""
    ids = [_store_id(session, scope, store)] if store else scope.store_ids
    latest = (
        select(Audit.store_id, func.max(Audit.audit_date).label("day"))
        .where(Audit.store_id.in_(ids), Audit.audit_date <= day)
        .group_by(Audit.store_id)
        .subquery()
    )
    f = ComplianceFinding
    rows = session.execute(
        select(
            f.id,
            Store.code,
            Fixture.code,
            Audit.audit_date,
            f.type,
            f.shelf,
            f.position,
            f.expected_sku,
            f.observed_sku,
            f.expected_facings,
            f.observed_facings,
            f.impact,
            f.status,
            f.status_by,
            f.status_at,
            f.reopened,
            f.photo_id,
        )
        .join(Audit, f.audit_id == Audit.id)
        .join(latest, (latest.c.store_id == Audit.store_id) & (latest.c.day == Audit.audit_date))
        .join(Store, Audit.store_id == Store.id)
        .join(Fixture, f.fixture_id == Fixture.id)
        .where(f.status.in_(statuses))
        .order_by(f.impact.desc(), Store.code, Fixture.code, f.shelf, f.position, f.id)
        .limit(limit)
    )
    keys = [
        "finding_id",
        "store",
        "fixture",
        "audit_date",
        "type",
        "shelf",
        "position",
        "expected_sku",
        "observed_sku",
        "expected_facings",
        "observed_facings",
        "impact",
        "status",
        "status_by",
        "status_at",
        "reopened",
        "photo_id",
    ]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def mark_finding(
    session: Session, scope: Scope, finding_id: int, status: str, now: dt.datetime | None = None
) -> ComplianceFinding:
    """A manager marks a finding fixed, acknowledged or open again (stored with user, time)."""
    if status not in MANUAL_STATUSES:
        raise ShelfWatchError(f"status must be one of {', '.join(MANUAL_STATUSES)}")
    finding = session.get(ComplianceFinding, finding_id)
    if finding is None or not scope.allows(finding.audit.store_id):
        raise AccessDenied(f"no finding {finding_id} in your stores")
    finding.status = status
    finding.status_by = scope.username
    finding.status_at = now or dt.datetime.now(dt.UTC)
    return finding


def recent_photos(
    session: Session, scope: Scope, store_code: str, limit: int = 50
) -> list[dict[str, object]]:
    store_id = _store_id(session, scope, store_code)
    rows = session.execute(
        select(Photo.id, Fixture.code, Photo.captured_at, Photo.status, Photo.original_name)
        .join(Fixture, Photo.fixture_id == Fixture.id)
        .where(Photo.store_id == store_id, Photo.status == PhotoStatus.done.value)
        .order_by(Photo.captured_at.desc(), Photo.id.desc())
        .limit(limit)
    )
    return [
        {"id": r[0], "fixture": r[1], "captured_at": r[2], "status": r[3], "name": r[4]}
        for r in rows
    ]


def retakes(
    session: Session, scope: Scope, since: dt.datetime | None = None, limit: int = 200
) -> list[dict[str, object]]:
    """Photos the quality gate sent back (newest first), per store, with the reasons."""
    query = (
        select(Store.code, Fixture.code, Photo.id, Photo.captured_at, Photo.quality)
        .join(Store, Photo.store_id == Store.id)
        .join(Fixture, Photo.fixture_id == Fixture.id)
        .where(Photo.store_id.in_(scope.store_ids), Photo.verdict == RETAKE)
        .order_by(Photo.captured_at.desc(), Photo.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Photo.captured_at >= since)
    return [
        {
            "store": store,
            "fixture": fixture,
            "photo_id": photo_id,
            "captured_at": as_utc(when).isoformat(),
            "reasons": ", ".join((quality or {}).get("reasons", [])),
        }
        for store, fixture, photo_id, when, quality in session.execute(query)
    ]


def _photo(session: Session, scope: Scope, photo_id: int) -> Photo:
    photo = session.get(Photo, photo_id)
    if photo is None or not scope.allows(photo.store_id):
        raise AccessDenied(f"no photo {photo_id} in your stores")
    return photo


def photo_info(session: Session, scope: Scope, photo_id: int) -> dict[str, object]:
    """Store, fixture and time of one photo the user may see."""
    photo = _photo(session, scope, photo_id)
    return {
        "id": photo.id,
        "store": photo.store.code,
        "fixture": photo.fixture.code,
        "captured_at": photo.captured_at,
        "status": photo.status,
        "model": _analysed_by(photo),
    }


def _analysed_by(photo: Photo) -> str:
    return f"{photo.backend or '?'} ({photo.model_version or 'model version not recorded'})"


def photo_overlay(
    session: Session,
    scope: Scope,
    photo_id: int,
    photos: PhotoStore,
    masks: bool = True,
    shelves: bool = True,
    gaps: bool = True,
    labels: bool = True,
) -> tuple[np.ndarray, dict[str, object]]:
    """The stored photo (RGB) with the chosen layers drawn, and its counts."""
    photo = _photo(session, scope, photo_id)
    scene = load_scene(session, photo, with_masks=masks)
    shown = photo.stitched_path or photo.storage_path  # a capture: its stitched fixture
    image = decode_image(photos.read_bytes(shown), shown)
    drawn = render_overlay(image, scene, masks=masks, shelves=shelves, gaps=gaps, labels=labels)
    return drawn[:, :, ::-1].copy(), scene.counts()


def _overlaps(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    return bool(a and b and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def plan_vs_real(session: Session, scope: Scope, photo_id: int) -> dict[str, object]:
    """The planogram in force and the realogram of a photo, each slot tagged with findings.

    Planned slots carry the findings at their (shelf, position); observed runs carry the
    findings whose box overlaps theirs.
    """
    photo = _photo(session, scope, photo_id)
    local_day = as_utc(photo.captured_at).astimezone(zone(photo.store.timezone)).date()
    plan = planogram_in_force(session, photo.store, photo.fixture.code, local_day)
    findings = list(
        session.scalars(
            select(ComplianceFinding)
            .join(Audit, ComplianceFinding.audit_id == Audit.id)
            .where(ComplianceFinding.photo_id == photo.id)
            .order_by(Audit.audit_date.desc(), ComplianceFinding.id)
        )
    )
    latest_audit = findings[0].audit_id if findings else None
    findings = [f for f in findings if f.audit_id == latest_audit]

    def boxed(f: ComplianceFinding) -> tuple[int, int, int, int] | None:
        return (f.x1, f.y1, f.x2, f.y2) if f.x1 is not None else None  # type: ignore[return-value]

    planned = [
        {
            "shelf": p.shelf,
            "position": p.position,
            "sku": p.sku,
            "facings": p.facings,
            "finding": ", ".join(
                f.type
                for f in findings
                if f.shelf == p.shelf and f.position == p.position and f.expected_sku == p.sku
            ),
        }
        for p in (plan.positions if plan else [])
    ]
    observed = []
    # Facings counted as the audit counted them (pack widths from the catalog, masks).
    widths = {c.sku: float(c.width_cm) for c in catalog_items(session) if c.width_cm}
    for shelf, facings in realogram(load_scene(session, photo), widths).items():
        for i, run in enumerate(runs(facings), start=1):
            observed.append(
                {
                    "shelf": shelf,
                    "position": i,
                    "sku": run.sku or "unknown",
                    "facings": run.facings,
                    "finding": ", ".join(
                        sorted({f.type for f in findings if _overlaps(boxed(f), run.bbox)})
                    ),
                }
            )
    return {
        "planogram": f"{plan.name} v{plan.version}" if plan else None,
        "model": _analysed_by(photo),
        "planned": planned,
        "observed": observed,
        "findings": len(findings),
    }
