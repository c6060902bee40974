"""Catalog and planogram imports: validated first, then written in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.models import CatalogProduct, Fixture, Planogram, PlanogramPosition, Store
from shelfwatch.planogram import formats
from shelfwatch.planogram.formats import ValidationError
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.stores import get_store


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def import_catalog(session: Session, path: Path, store: PhotoStore) -> ImportResult:
    """Add or update catalog products; reference images are copied into the photo store."""
    items = formats.read_catalog(path)  # validates sizes and reference images
    result = ImportResult()
    existing = {p.sku: p for p in session.scalars(select(CatalogProduct))}
    for item in items:
        ref = _store_reference(path.parent, item.reference_image, store)
        values = dict(
            name=item.name,
            brand=item.brand,
            category=item.category,
            width_cm=item.width_cm,
            height_cm=item.height_cm,
            prompt=item.prompt,
            reference_image=ref,
        )
        row = existing.get(item.sku)
        if row is None:
            session.add(CatalogProduct(sku=item.sku, **values))
            result.added += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            result.updated += 1
        else:
            result.unchanged += 1
    session.flush()
    return result


def _store_reference(base: Path, ref: str | None, store: PhotoStore) -> str | None:
    """Copy a reference image content-addressed under ``refs/``; return its store path."""
    if not ref:
        return None
    src = base / ref
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    rel = f"refs/{digest}{src.suffix.lower()}"
    store.put_file(src, rel)
    return rel


def catalog_items(session: Session) -> list[formats.CatalogItem]:
    return [
        formats.CatalogItem(
            p.sku, p.name, p.brand, p.category, p.width_cm, p.height_cm, p.prompt, p.reference_image
        )
        for p in session.scalars(select(CatalogProduct).order_by(CatalogProduct.sku))
    ]


def import_planogram(
    session: Session,
    path: Path,
    effective_from: dt.date | None = None,
    store_code: str | None = None,
) -> list[tuple[str, int, str]]:
    """Import every planogram in the file as a new version; returns (name, version, status)."""
    known = set(session.scalars(select(CatalogProduct.sku)))
    if not known:
        raise ShelfWatchError("the catalog is empty: import it first (shelfwatch catalog import)")
    rows = formats.read_planogram(path, known)
    if not rows:
        raise ShelfWatchError(f"{path}: no planogram rows")
    groups: dict[tuple[str, str | None], list[formats.PlanogramPosition]] = defaultdict(list)
    problems = []
    for row in rows:
        store = row.store or store_code
        if row.store and store_code and row.store != store_code:
            problems.append(
                f"{path}: planogram {row.planogram!r} is for store {row.store!r}, "
                f"not {store_code!r}"
            )
        groups[(row.planogram, store)].append(row)
    fixtures_seen = {(name, store): {r.fixture for r in g} for (name, store), g in groups.items()}
    for (name, _), codes in fixtures_seen.items():
        if len(codes) > 1:
            problems.append(
                f"{path}: planogram {name!r} spans several fixtures: {', '.join(sorted(codes))}"
            )
    if problems:
        raise ValidationError(sorted(set(problems)))
    effective = effective_from or dt.date.today()
    out = []
    for (name, store_code_row), group in groups.items():
        store: Store | None = get_store(session, store_code_row) if store_code_row else None
        fixture_code = group[0].fixture
        if store is not None and not session.scalar(
            select(Fixture).where(Fixture.store_id == store.id, Fixture.code == fixture_code)
        ):
            raise ShelfWatchError(
                f"{path}: planogram {name!r}: unknown fixture "
                f"{fixture_code!r} in store {store.code!r}"
            )
        latest = session.scalar(
            select(Planogram)
            .where(Planogram.name == name)
            .order_by(Planogram.version.desc())
            .limit(1)
        )
        content = sorted((r.shelf, r.position, r.sku, r.facings) for r in group)
        if (
            latest is not None
            and latest.effective_from == effective
            and content == sorted((p.shelf, p.position, p.sku, p.facings) for p in latest.positions)
        ):
            out.append((name, latest.version, "unchanged"))
            continue
        version = (
            session.scalar(select(func.max(Planogram.version)).where(Planogram.name == name)) or 0
        ) + 1
        plan = Planogram(
            name=name,
            version=version,
            fixture_code=fixture_code,
            store_id=store.id if store else None,
            effective_from=effective,
            source=str(path),
        )
        plan.positions = [
            PlanogramPosition(shelf=r.shelf, position=r.position, sku=r.sku, facings=r.facings)
            for r in group
        ]
        session.add(plan)
        out.append((name, version, "imported"))
    session.flush()
    return out


def planogram_in_force(
    session: Session, store: Store, fixture_code: str, day: dt.date
) -> Planogram | None:
    """The store's own planogram for the fixture if any, else the chain-wide one, latest first."""
    query = (
        select(Planogram)
        .where(
            Planogram.fixture_code == fixture_code,
            Planogram.effective_from <= day,
            (Planogram.store_id == store.id) | (Planogram.store_id.is_(None)),
        )
        .order_by(
            Planogram.store_id.is_(None), Planogram.effective_from.desc(), Planogram.version.desc()
        )
        .limit(1)
    )
    return session.scalar(query)


def planogram_rows(plan: Planogram) -> list[formats.PlanogramPosition]:
    return [
        formats.PlanogramPosition(
            plan.name, plan.fixture_code, p.shelf, p.position, p.sku, p.facings
        )
        for p in plan.positions
    ]
