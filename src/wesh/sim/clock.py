"""Simulated time: a clock that may run faster than the wall clock, and local days.

Every time in the simulator is a POSIX timestamp (float seconds, UTC) or an aware
datetime. :class:`SimClock` maps the process's monotonic clock to simulated time::

    sim(t) = start + (monotonic() - monotonic_at_creation) * speed

Tests inject the monotonic source (or use :class:`ManualClock`), so nothing sleeps.
Local calendar days and hours are Europe/Paris; :class:`ParisCalendar` is the one
place where the simulator computes them (with a per-hour cache: Europe/Paris only
changes its UTC offset on whole hours).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from wesh.errors import UsageError

__all__ = ["CALENDAR", "PARIS", "Clock", "ManualClock", "ParisCalendar", "SimClock"]

PARIS = ZoneInfo("Europe/Paris")


class Clock(Protocol):
    """What the simulator needs from a clock."""

    def timestamp(self) -> float:
        """Return the simulated time as POSIX seconds."""
        ...

    def now(self) -> datetime:
        """Return the simulated time as an aware UTC datetime."""
        ...


def _aware(start: datetime) -> datetime:
    if start.tzinfo is None:
        raise UsageError("the simulated start time must be timezone-aware")
    return start.astimezone(UTC)


class SimClock:
    """Simulated time starting at ``start`` and running ``speed`` times the real pace.

    ``monotonic`` is the real-time source (injectable for tests).
    """

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise UsageError(f"the clock speed must be positive, not {speed}")
        self.start = _aware(start)
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()
        self._start_ts = self.start.timestamp()

    def timestamp(self) -> float:
        """Return the simulated time as POSIX seconds."""
        return self._start_ts + (self._monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        """Return the simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)


class ManualClock:
    """A clock that only moves when told to (for tests and scripted runs)."""

    def __init__(self, start: datetime) -> None:
        self._ts = _aware(start).timestamp()

    def timestamp(self) -> float:
        """Return the simulated time as POSIX seconds."""
        return self._ts

    def now(self) -> datetime:
        """Return the simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._ts, tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise UsageError("a simulated clock cannot go back")
        self._ts += seconds

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (never backwards)."""
        ts = _aware(when).timestamp()
        if ts < self._ts:
            raise UsageError("a simulated clock cannot go back")
        self._ts = ts


class ParisCalendar:
    """Local (Europe/Paris) day numbers and times of day for POSIX timestamps."""

    def __init__(self) -> None:
        self._offsets: dict[int, int] = {}

    def offset_s(self, ts: float) -> int:
        """Return the UTC offset of Europe/Paris at ``ts``, in seconds."""
        hour = int(ts // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            if len(self._offsets) > 4096:
                self._offsets.clear()
            delta = datetime.fromtimestamp(hour * 3600, tz=PARIS).utcoffset()
            offset = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[hour] = offset
        return offset

    def local_seconds(self, ts: float) -> float:
        """Return ``ts`` shifted to local wall time (seconds since 1970-01-01 local)."""
        return ts + self.offset_s(ts)

    def day(self, ts: float) -> int:
        """Return the local day number (days since 1970-01-01, local)."""
        return int(self.local_seconds(ts) // 86400)

    def second_of_day(self, ts: float) -> float:
        """Return the seconds elapsed since local midnight."""
        return self.local_seconds(ts) % 86400

    def hour(self, ts: float) -> float:
        """Return the local hour of day as a float (``13.5`` is 13:30)."""
        return self.second_of_day(ts) / 3600


CALENDAR = ParisCalendar()
"""The shared calendar (its cache is an optimisation only; it holds no configuration)."""
