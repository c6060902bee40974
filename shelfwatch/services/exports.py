"""CSV exports with stable columns, streamed from SQL in constant memory."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Collection, Iterator
from typing import TextIO

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shelfwatch.db.models import (
    Audit,
    ComplianceFinding,
    Fixture,
    Gap,
    Photo,
    PhotoStatus,
    ProductInstance,
    Store,
)
from shelfwatch.services.timeutil import as_utc, local_day_bounds

PHOTO_COLUMNS = ["photo_sha256", "store", "fixture", "captured_at"]  # of every photo row
EXPORTS: dict[str, list[str]] = {
    "products": [
        *PHOTO_COLUMNS,
        "shelf",
        "sku",
        "score",
        "sku_score",
        "x1",
        "y1",
        "x2",
        "y2",
        "backend",
        "instance_id",
        "model_version",
        "verdict",
        "frames",
        "source",
    ],
    "counts": [
        *PHOTO_COLUMNS,
        "shelf",
        "sku",
        "products",
        "verdict",
        "frames",
    ],
    "gaps": [
        *PHOTO_COLUMNS,
        "shelf",
        "x1",
        "y1",
        "x2",
        "y2",
        "width_px",
        "width_cm",
        "missing_facings",
        "verdict",
        "frames",
    ],
    "photos": [
        *PHOTO_COLUMNS,
        "photo_id",
        "original_name",
        "status",
        "verdict",
        "reasons",
        "products",
        "gaps",
        "attempts",
        "last_error",
        "backend",
        "model_version",
        "processed_at",
        "media",
        "frames",
    ],
    "audits": [
        "store",
        "date",
        "status",
        "photos",
        "products",
        "gaps",
        "osa_pct",
        "compliance_strict_pct",
        "compliance_lenient_pct",
        "facings_compliance_pct",
        "computed_at",
        "models",
        "retakes",
        "not_processed",
    ],
    "findings": [
        "store",
        "date",
        "fixture",
        "type",
        "shelf",
        "position",
        "expected_sku",
        "observed_sku",
        "expected_facings",
        "observed_facings",
        "impact",
        "status",
        "photo_sha256",
        "x1",
        "y1",
        "x2",
        "y2",
        "status_by",
        "status_at",
        "reopened",
    ],
}


def _fmt(value: object) -> object:
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    return "" if value is None else value


def _of_done_photos(
    query: Select,
    photo_id: object,
    store: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    store_ids: Collection[int] | None,
) -> Select:
    """Rows of processed photos: join photo, store and fixture, then filter."""
    query = query.join(Photo, photo_id == Photo.id).where(Photo.status == PhotoStatus.done.value)
    return _of_photos(query, store, date_from, date_to, store_ids)


def _of_photos(
    query: Select,
    store: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    store_ids: Collection[int] | None,
) -> Select:
    """Join the photos' store and fixture, and filter by store and capture date."""
    query = query.join(Store, Photo.store_id == Store.id).join(
        Fixture, Photo.fixture_id == Fixture.id
    )
    if store:
        query = query.where(Store.code == store)
    if store_ids is not None:
        query = query.where(Store.id.in_(store_ids))
    # Dates are compared in UTC here; audits (per-store local days) filter on audit_date.
    if date_from:
        query = query.where(Photo.captured_at >= local_day_bounds(date_from, "UTC")[0])
    if date_to:
        query = query.where(Photo.captured_at < local_day_bounds(date_to, "UTC")[1])
    return query


def export_query(
    kind: str,
    store: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    store_ids: Collection[int] | None = None,
) -> Select:
    """The SELECT behind an export; its columns are ``EXPORTS[kind]`` in order.

    ``store_ids`` limits rows to those stores (the dashboard passes a user's stores).
    """
    photo_cols = (Photo.sha256, Store.code, Fixture.code, Photo.captured_at)
    if kind == "products":
        q = select(
            *photo_cols,
            ProductInstance.shelf,
            ProductInstance.sku,
            ProductInstance.score,
            ProductInstance.sku_score,
            ProductInstance.x1,
            ProductInstance.y1,
            ProductInstance.x2,
            ProductInstance.y2,
            ProductInstance.backend,
            ProductInstance.id,
            Photo.model_version,
            Photo.verdict,
            Photo.frames,
            ProductInstance.source,
        ).order_by(Photo.captured_at, Photo.id, ProductInstance.id)
        return _of_done_photos(q, ProductInstance.photo_id, store, date_from, date_to, store_ids)
    if kind == "counts":
        # Grouped by the raw SKU: PostgreSQL sees each bound "unknown" literal as a separate
        # parameter, so grouping by coalesce(...) in SELECT and GROUP BY fails there.
        q = (
            select(
                *photo_cols,
                ProductInstance.shelf,
                func.coalesce(ProductInstance.sku, "unknown"),
                func.count(ProductInstance.id),
                Photo.verdict,
                Photo.frames,
            )
            .group_by(
                Photo.id,
                Photo.sha256,
                Store.code,
                Fixture.code,
                Photo.captured_at,
                Photo.verdict,
                Photo.frames,
                ProductInstance.shelf,
                ProductInstance.sku,
            )
            .order_by(
                Photo.captured_at,
                Photo.id,
                ProductInstance.shelf,
                ProductInstance.sku.nulls_last(),
            )
        )
        return _of_done_photos(q, ProductInstance.photo_id, store, date_from, date_to, store_ids)
    if kind == "gaps":
        q = select(
            *photo_cols,
            Gap.shelf,
            Gap.x1,
            Gap.y1,
            Gap.x2,
            Gap.y2,
            Gap.width_px,
            Gap.width_cm,
            Gap.missing_facings,
            Photo.verdict,
            Photo.frames,
        ).order_by(Photo.captured_at, Photo.id, Gap.id)
        return _of_done_photos(q, Gap.photo_id, store, date_from, date_to, store_ids)
    if kind == "photos":
        return _photos_query(store, date_from, date_to, store_ids)
    if kind == "audits":
        q = (
            select(
                Store.code,
                Audit.audit_date,
                Audit.status,
                Audit.photos,
                Audit.products,
                Audit.gaps,
                Audit.osa_pct,
                Audit.compliance_strict_pct,
                Audit.compliance_lenient_pct,
                Audit.facings_compliance_pct,
                Audit.computed_at,
                Audit.models,
                Audit.kpis,
                Audit.kpis,
            )
            .join(Store, Audit.store_id == Store.id)
            .order_by(Audit.audit_date, Store.code)
        )
    elif kind == "findings":
        q = (
            select(
                Store.code,
                Audit.audit_date,
                Fixture.code,
                ComplianceFinding.type,
                ComplianceFinding.shelf,
                ComplianceFinding.position,
                ComplianceFinding.expected_sku,
                ComplianceFinding.observed_sku,
                ComplianceFinding.expected_facings,
                ComplianceFinding.observed_facings,
                ComplianceFinding.impact,
                ComplianceFinding.status,
                Photo.sha256,
                ComplianceFinding.x1,
                ComplianceFinding.y1,
                ComplianceFinding.x2,
                ComplianceFinding.y2,
                ComplianceFinding.status_by,
                ComplianceFinding.status_at,
                ComplianceFinding.reopened,
            )
            .join(Audit, ComplianceFinding.audit_id == Audit.id)
            .join(Store, Audit.store_id == Store.id)
            .join(Fixture, ComplianceFinding.fixture_id == Fixture.id)
            .outerjoin(Photo, ComplianceFinding.photo_id == Photo.id)
            .order_by(
                Audit.audit_date,
                Store.code,
                Fixture.code,
                ComplianceFinding.shelf,
                ComplianceFinding.position,
                ComplianceFinding.id,
            )
        )
    else:
        raise ValueError(f"unknown export {kind!r}; choose one of {', '.join(EXPORTS)}")
    if store:
        q = q.where(Store.code == store)
    if store_ids is not None:
        q = q.where(Store.id.in_(store_ids))
    if date_from:
        q = q.where(Audit.audit_date >= date_from)
    if date_to:
        q = q.where(Audit.audit_date <= date_to)
    return q


def _photos_query(
    store: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    store_ids: Collection[int] | None,
) -> Select:
    """Every photo (any status) with its verdict and how much was found on it."""
    products = (
        select(func.count(ProductInstance.id))
        .where(ProductInstance.photo_id == Photo.id)
        .scalar_subquery()
    )
    gaps = select(func.count(Gap.id)).where(Gap.photo_id == Photo.id).scalar_subquery()
    q = (
        select(
            Photo.sha256,
            Store.code,
            Fixture.code,
            Photo.captured_at,
            Photo.id,
            Photo.original_name,
            Photo.status,
            Photo.verdict,
            Photo.quality,
            products,
            gaps,
            Photo.attempts,
            Photo.last_error,
            Photo.backend,
            Photo.model_version,
            Photo.processed_at,
            Photo.media,
            Photo.frames,
        )
        .select_from(Photo)
        .order_by(Photo.captured_at, Photo.id)
    )
    return _of_photos(q, store, date_from, date_to, store_ids)


# Columns read out of a JSON document: (export, column) -> how.
_FROM_JSON = {
    ("photos", "reasons"): lambda q: " ".join((q or {}).get("reasons", [])),
    ("audits", "retakes"): lambda k: len((k or {}).get("retakes", [])),
    ("audits", "not_processed"): lambda k: (k or {}).get("not_processed", ""),
}


def export_rows(session: Session, kind: str, **filters: object) -> Iterator[list[object]]:
    """Rows of an export, fetched in batches (constant memory)."""
    result = session.execute(
        export_query(kind, **filters),  # type: ignore[arg-type]
        execution_options={"yield_per": 2000},
    )
    readers = [_FROM_JSON.get((kind, c)) for c in EXPORTS[kind]]
    for row in result:
        yield [_fmt(r(v) if r else v) for r, v in zip(readers, row, strict=True)]


def write_csv(session: Session, kind: str, out: TextIO, **filters: object) -> int:
    """Write an export as CSV with a header; returns the number of data rows."""
    writer = csv.writer(out)
    writer.writerow(EXPORTS[kind])
    n = 0
    for row in export_rows(session, kind, **filters):
        writer.writerow(row)
        n += 1
    return n
