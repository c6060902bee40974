"""Stores and fixtures."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.models import Fixture, Store
from shelfwatch.services.timeutil import zone


def add_store(
    session: Session,
    code: str,
    name: str | None = None,
    region: str | None = None,
    timezone: str = "UTC",
) -> Store:
    if not code.strip():
        raise ShelfWatchError("store code must not be empty")
    zone(timezone)
    if session.scalar(select(Store).where(Store.code == code)):
        raise ShelfWatchError(f"store {code!r} already exists")
    store = Store(code=code, name=name or code, region=region, timezone=timezone)
    session.add(store)
    session.flush()
    return store


def get_store(session: Session, code: str) -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise ShelfWatchError(f"unknown store {code!r} (add it with: shelfwatch stores add {code})")
    return store


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.code)))


def add_fixture(
    session: Session,
    store_code: str,
    code: str,
    aisle: str | None = None,
    width_cm: float | None = None,
    shelves: int | None = None,
) -> Fixture:
    store = get_store(session, store_code)
    if not code.strip():
        raise ShelfWatchError("fixture code must not be empty")
    if width_cm is not None and width_cm <= 0:
        raise ShelfWatchError(f"fixture width must be positive, got {width_cm}")
    if shelves is not None and shelves <= 0:
        raise ShelfWatchError(f"shelf count must be positive, got {shelves}")
    if session.scalar(select(Fixture).where(Fixture.store_id == store.id, Fixture.code == code)):
        raise ShelfWatchError(f"fixture {code!r} already exists in store {store_code!r}")
    fixture = Fixture(
        store_id=store.id, code=code, aisle=aisle, width_cm=width_cm, shelf_count=shelves
    )
    session.add(fixture)
    session.flush()
    return fixture


def get_fixture(session: Session, store_code: str, code: str) -> Fixture:
    store = get_store(session, store_code)
    fixture = session.scalar(
        select(Fixture).where(Fixture.store_id == store.id, Fixture.code == code)
    )
    if fixture is None:
        raise ShelfWatchError(
            f"unknown fixture {code!r} in store {store_code!r} (add it with: "
            f"shelfwatch fixtures add {store_code} {code})"
        )
    return fixture


def list_fixtures(session: Session, store_code: str | None = None) -> list[tuple[Store, Fixture]]:
    query = select(Store, Fixture).join(Fixture, Fixture.store_id == Store.id)
    if store_code:
        query = query.where(Store.id == get_store(session, store_code).id)
    return [(s, f) for s, f in session.execute(query.order_by(Store.code, Fixture.code))]
