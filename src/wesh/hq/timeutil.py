"""Headquarters time: the one place that knows Europe/Paris and how instants are stored.

Two ideas, kept apart:

* **Instants** are aware UTC :class:`~datetime.datetime` objects in Python and whole
  **microseconds since the Unix epoch** (a signed 64-bit integer) in SQL, on every engine
  (:func:`to_epoch_us`, :func:`from_epoch_us`). The integer is exact, sorts and compares
  the same everywhere, and SQL can bucket it without date functions
  (``at - at % 3600000000`` is the hour start on SQLite, MariaDB and PostgreSQL).
* **Calendar days and months** are Europe/Paris local time. A local day is the half-open
  UTC interval ``[local midnight, next local midnight)``: 24 hours most days, **23 hours** on
  the last Sunday of March (02:00 → 03:00) and **25 hours** on the last Sunday of October
  (03:00 → 02:00). Paris offsets are whole hours, so a UTC hour is also exactly one local
  hour, and hour buckets never straddle a day boundary.

Do arithmetic on UTC datetimes: ``paris_time(at) + timedelta(hours=1)`` is wall-clock
arithmetic in Python (it ignores the DST change), ``at_utc + timedelta(hours=1)`` is not.
Every function refuses naive datetimes with :class:`~wesh.errors.UsageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from wesh.errors import UsageError

__all__ = [
    "HOUR_US",
    "PARIS",
    "SECOND_US",
    "day_bounds",
    "from_epoch_us",
    "hour_floor",
    "hours_in_day",
    "iter_days",
    "iter_hours",
    "month_bounds",
    "month_days",
    "paris_day",
    "paris_month",
    "paris_time",
    "to_epoch_us",
]

PARIS = ZoneInfo("Europe/Paris")
"""The landlord's calendar zone."""

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


def _aware(at: datetime, what: str = "datetime") -> datetime:
    if not isinstance(at, datetime):
        raise UsageError(f"{what} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError(f"{what} {at.isoformat()} is naive: give a timezone-aware datetime")
    return at


def to_epoch_us(at: datetime) -> int:
    """Return an aware instant as whole microseconds since 1970-01-01T00:00Z (exact)."""
    delta = _aware(at) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def from_epoch_us(us: int) -> datetime:
    """Return the aware UTC instant of ``us`` microseconds since the epoch (exact)."""
    return _EPOCH + timedelta(microseconds=us)


def paris_time(at: datetime) -> datetime:
    """Return the instant ``at`` as Paris local wall time (aware, ``PARIS`` zone)."""
    return _aware(at).astimezone(PARIS)


def paris_day(at: datetime) -> date:
    """Return the Paris calendar day that contains the instant ``at``."""
    return paris_time(at).date()


def paris_month(at: datetime) -> tuple[int, int]:
    """Return the Paris calendar ``(year, month)`` that contains the instant ``at``."""
    local = paris_time(at)
    return local.year, local.month


def _local_midnight_utc(day: date) -> datetime:
    # Paris never changes its clocks at midnight, so local midnight always exists once.
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return the UTC half-open interval ``[start, end)`` of a Paris calendar day.

    ``end - start`` is 23 h on the spring-forward Sunday, 25 h on the fall-back Sunday.
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise UsageError(f"day must be a date, not {type(day).__name__}")
    return _local_midnight_utc(day), _local_midnight_utc(day + timedelta(days=1))


def hours_in_day(day: date) -> int:
    """Return how many hours the Paris calendar day lasts: 23, 24 or 25."""
    start, end = day_bounds(day)
    return (end - start) // _HOUR


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """Return the UTC half-open interval ``[start, end)`` of a Paris calendar month."""
    if not 1 <= month <= 12:
        raise UsageError(f"month must be 1..12, not {month}")
    try:
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
    except ValueError as exc:
        raise UsageError(f"no such month: {year}-{month:02d}") from exc
    return _local_midnight_utc(first), _local_midnight_utc(following)


def month_days(year: int, month: int) -> list[date]:
    """Return the Paris calendar days of a month, in order."""
    start, end = month_bounds(year, month)
    return list(iter_days(paris_day(start), paris_day(end)))


def hour_floor(at: datetime) -> datetime:
    """Return the start (aware UTC) of the hour that contains the instant ``at``."""
    utc = _aware(at).astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def iter_hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """Yield the UTC hour starts ``h`` with ``start <= h < end`` (``start`` rounded up)."""
    first = hour_floor(start)
    if first < start:
        first += _HOUR
    stop = _aware(end, "end")
    hour = first
    while hour < stop:
        yield hour
        hour += _HOUR


def iter_days(first: date, stop: date) -> Iterator[date]:
    """Yield the calendar days ``first, first + 1, ...`` strictly before ``stop``."""
    day = first
    while day < stop:
        yield day
        day += timedelta(days=1)
