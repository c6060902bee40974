"""Engines and sessions. SQLite gets foreign keys, WAL and a busy timeout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, pre_ping: bool = True) -> Engine:
    """An engine for ``url`` with the settings ShelfWatch relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # Pre-ping costs a round trip per transaction; the worker turns it off because a dropped
    # connection surfaces as an error that invalidates the pool, and its loop retries.
    return create_engine(url, pool_pre_ping=pre_ping)


@lru_cache(maxsize=8)
def engine_for(url: str, pre_ping: bool = True) -> Engine:
    return make_engine(url, pre_ping)


def session_factory(url: str, pre_ping: bool = True) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url, pre_ping), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
