"""Read models for the dashboard: aggregates computed in SQL, photos with overlays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelfwatch.core.imageio import load_image
from shelfwatch.db.convert import load_scene
from shelfwatch.db.models import Audit, ComplianceFinding, Fixture, Photo, PhotoStatus, Store
from shelfwatch.vision.annotate import render_overlay


def latest_audit_day(session: Session) -> dt.date | None:
    return session.scalar(select(func.max(Audit.audit_date)))


def store_kpis(session: Session, day: dt.date) -> list[dict[str, object]]:
    """Per store: the audit KPIs of ``day`` and open findings (one query, aggregated in SQL)."""
    findings = (
        select(ComplianceFinding.audit_id, func.count().label("n"))
        .where(ComplianceFinding.status == "open")
        .group_by(ComplianceFinding.audit_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Store.code,
            Store.name,
            Store.region,
            Audit.photos,
            Audit.products,
            Audit.gaps,
            Audit.osa_pct,
            Audit.compliance_strict_pct,
            Audit.compliance_lenient_pct,
            Audit.facings_compliance_pct,
            func.coalesce(findings.c.n, 0),
        )
        .join(Audit, (Audit.store_id == Store.id) & (Audit.audit_date == day))
        .outerjoin(findings, findings.c.audit_id == Audit.id)
        .order_by(Store.code)
    )
    keys = [
        "store",
        "name",
        "region",
        "photos",
        "products",
        "gaps",
        "osa_pct",
        "compliance_strict_pct",
        "compliance_lenient_pct",
        "facings_compliance_pct",
        "open_findings",
    ]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def recent_photos(session: Session, store_code: str, limit: int = 50) -> list[dict[str, object]]:
    rows = session.execute(
        select(Photo.id, Fixture.code, Photo.captured_at, Photo.status, Photo.original_name)
        .join(Store, Photo.store_id == Store.id)
        .join(Fixture, Photo.fixture_id == Fixture.id)
        .where(Store.code == store_code, Photo.status == PhotoStatus.done.value)
        .order_by(Photo.captured_at.desc(), Photo.id.desc())
        .limit(limit)
    )
    return [
        {"id": r[0], "fixture": r[1], "captured_at": r[2], "status": r[3], "name": r[4]}
        for r in rows
    ]


def photo_overlay(
    session: Session,
    photo_id: int,
    storage_dir: Path,
    masks: bool = True,
    shelves: bool = True,
    gaps: bool = True,
    labels: bool = True,
) -> tuple[np.ndarray, dict[str, object]]:
    """The stored photo (RGB) with the chosen layers drawn, and its counts."""
    photo = session.get(Photo, photo_id)
    if photo is None:
        raise LookupError(f"no photo {photo_id}")
    scene = load_scene(session, photo, with_masks=masks)
    image = load_image(storage_dir / photo.storage_path)
    drawn = render_overlay(image, scene, masks=masks, shelves=shelves, gaps=gaps, labels=labels)
    return drawn[:, :, ::-1].copy(), scene.counts()
