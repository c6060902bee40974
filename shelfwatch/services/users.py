"""Dashboard users: Argon2id password hashes, roles, lockout after repeated failures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.models import Role, Store, User
from shelfwatch.services.stores import get_store
from shelfwatch.services.timeutil import as_utc

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5  # consecutive failures before the account is locked ...
LOCKOUT = dt.timedelta(minutes=15)  # ... for this long

_hasher = PasswordHasher()


class LoginError(ShelfWatchError):
    """A login that did not succeed; the message is safe to show on the login page."""


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ShelfWatchError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    stores: list[str] | None = None,
    region: str | None = None,
) -> User:
    """Create a login. Managers need stores, regional users a region; admins see everything."""
    username = username.strip()
    if not username:
        raise ShelfWatchError("username must not be empty")
    if role not in Role.__members__:
        raise ShelfWatchError(f"unknown role {role!r} (one of: {', '.join(Role.__members__)})")
    if session.scalar(select(User).where(User.username == username)):
        raise ShelfWatchError(f"user {username!r} already exists")
    _check_password(password)
    store_rows = [get_store(session, code) for code in stores or []]
    if role == Role.manager and not store_rows:
        raise ShelfWatchError("a store manager needs at least one --store")
    if role == Role.regional and not region:
        raise ShelfWatchError("a regional user needs --region")
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        region=region if role == Role.regional else None,
        active=True,
        failed_logins=0,
        stores=store_rows if role == Role.manager else [],
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ShelfWatchError(f"unknown user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_active(session: Session, username: str, active: bool) -> User:
    user = get_user(session, username)
    user.active = active
    if active:
        user.failed_logins, user.locked_until = 0, None
    return user


def set_password(session: Session, username: str, password: str) -> User:
    _check_password(password)
    user = get_user(session, username)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    return user


def authenticate(
    session: Session, username: str, password: str, now: dt.datetime | None = None
) -> User:
    """The user if the password is right; otherwise LoginError (failures are counted).

    The caller commits either way, so that failed attempts are recorded.
    """
    now = now or dt.datetime.now(dt.UTC)
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        _hasher.hash(password)  # same work as a real check: no user enumeration by timing
        raise LoginError("wrong username or password")
    if not user.active:
        raise LoginError("this account is disabled; ask an administrator")
    if user.locked_until and as_utc(user.locked_until) > now:
        minutes = int((as_utc(user.locked_until) - now).total_seconds() // 60) + 1
        raise LoginError(f"too many failed logins; try again in {minutes} min")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            raise LoginError(
                f"too many failed logins; account locked for {int(LOCKOUT.total_seconds() // 60)}"
                " min"
            ) from None
        raise LoginError("wrong username or password") from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return user


def describe(user: User) -> str:
    """What a user can see, in words (for ``users list``)."""
    if user.role == Role.admin:
        return "all stores"
    if user.role == Role.regional:
        return f"region {user.region}"
    return ", ".join(s.code for s in user.stores)


@dataclass(frozen=True)
class Scope:
    """What one logged-in user may see: every read of the dashboard is filtered by it."""

    username: str
    role: str
    stores: tuple[str, ...]  # store codes, sorted
    store_ids: frozenset[int]

    def allows(self, store_id: int | None) -> bool:
        return store_id is not None and store_id in self.store_ids


def stores_of(session: Session, user: User) -> list[Store]:
    """The stores a user may see (none for a disabled user)."""
    if not user.active:
        return []
    query = select(Store).order_by(Store.code)
    if user.role == Role.regional:
        query = query.where(Store.region == user.region)
    elif user.role == Role.manager:
        query = query.where(Store.id.in_([s.id for s in user.stores]))
    elif user.role != Role.admin:
        return []
    return list(session.scalars(query))


def scope_for(session: Session, username: str) -> Scope:
    """The access scope of a user, read afresh (a disabled account gets LoginError)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise LoginError("this account is disabled; ask an administrator")
    stores = stores_of(session, user)
    return Scope(
        user.username, user.role, tuple(s.code for s in stores), frozenset(s.id for s in stores)
    )
