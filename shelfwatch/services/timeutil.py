"""Times are stored as UTC; SQLite hands them back naive, so read them through ``as_utc``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shelfwatch.core.errors import ShelfWatchError


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ShelfWatchError(
            f"unknown timezone {name!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None


def parse_timestamp(text: str, tz: str) -> dt.datetime:
    """ISO 8601 date or date-time; a time without offset is local time of ``tz``."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ShelfWatchError(f"not an ISO date/time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return value.astimezone(dt.UTC)


def local_day_bounds(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a calendar day in ``tz`` (23 or 25 hours long on DST changes)."""
    z = zone(tz)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=z)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=z)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ShelfWatchError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def local_date(when: dt.datetime, tz: str) -> dt.date:
    """The calendar date of a stored (UTC) time in the time zone ``tz``."""
    return as_utc(when).astimezone(zone(tz)).date()
