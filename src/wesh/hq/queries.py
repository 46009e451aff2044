"""Consumption queries: a dwelling, building or residence per hour, day or month.

::

    consumption(engine, building="B001", kind="electricity",
                start=date(2024, 1, 1), end=date(2025, 1, 1), by="month")
        -> [ConsumptionRow(kind, unit, label="2024-01", start, end, value, channels), ...]

* **Scope**: exactly one of ``dwelling``, ``building``, ``residence`` (codes). The
  channels counted are the **index** channels of the boxes serving the scope's dwellings
  and common areas (a box without a dwelling belongs to no scope), of one ``kind`` or of
  every kind; each ``(kind, unit)`` is a series of its own (units are never added).
* **Range**: ``[start, end)``. A :class:`~datetime.date` is the Paris local midnight that
  starts it; an aware :class:`~datetime.datetime` is an instant. Day and month buckets need
  bounds on Paris midnights, hour buckets on whole hours (else :class:`UsageError`).
* **Buckets**: every bucket of the range is returned for every series, in time order;
  ``value`` is ``None`` when no reading of the bucket had a step (no data), and a month
  cut by the range counts only its days inside the range. ``hour`` buckets are UTC hours
  (each one Paris local hour), ``day`` buckets Paris days (23, 24 or 25 hours), ``month``
  buckets Paris months.
* Values are rounded to 3 decimals (mWh, mL), so that the two computations compare equal.

:func:`consumption` reads the rollups (``rollup_hour`` for hours, ``rollup_day`` otherwise),
after refreshing the stale spans of the scope's channels (:func:`wesh.hq.rollups.
refresh_rollups`: ingestion re-rolls lazily), so it always answers from every stored reading;
:func:`consumption_raw` computes the same answer from the raw readings with the same rule
(:mod:`wesh.hq.rollups`): the benchmark's baseline and the tests' oracle.
:func:`previous_year` sets each day or month beside the same one a year earlier;
:func:`building_average_per_m2` divides a building's dwellings' consumption by their surface.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal, get_args

from sqlalchemy import Connection, Engine, func, select

from wesh.errors import UsageError
from wesh.hq.db import translate_errors
from wesh.hq.models import (
    CHANNEL_KINDS,
    Box,
    Building,
    Channel,
    Dwelling,
    MeterEvent,
    Reading,
    Residence,
    RollupDay,
    RollupHour,
)
from wesh.hq.rollups import MeterBreak, chain_steps, refresh_rollups
from wesh.hq.timeutil import (
    HOUR_US,
    PARIS,
    day_bounds,
    from_epoch_us,
    month_bounds,
    paris_day,
    to_epoch_us,
)

__all__ = [
    "Comparison",
    "ConsumptionRow",
    "Granularity",
    "PerM2Row",
    "building_average_per_m2",
    "consumption",
    "consumption_raw",
    "previous_year",
]

Granularity = Literal["hour", "day", "month"]
_GRANULARITIES: Final = frozenset(get_args(Granularity))
_DECIMALS: Final = 3
_CHUNK: Final = 500
_FETCH: Final = 10_000


@dataclass(frozen=True, slots=True)
class ConsumptionRow:
    """The consumption of one series in one bucket.

    Attributes:
        kind: channel kind (``electricity``, ``cold_water``...).
        unit: the series' unit (``Wh``, ``L``...).
        label: ``2024-03`` (month), ``2024-03-31`` (day) or the local hour
            ``2024-03-31T03:00+02:00``.
        start: the bucket's first instant (aware UTC), cut by the range.
        end: the instant after the bucket (exclusive), cut by the range.
        value: what was consumed, ``None`` without data.
        channels: how many channels of the scope make the series.
    """

    kind: str
    unit: str | None
    label: str
    start: datetime
    end: datetime
    value: float | None
    channels: int

    def as_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready values (instants in ISO 8601)."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        return out


@dataclass(frozen=True, slots=True)
class Comparison:
    """A day or month beside the same one a year earlier (``change_pct`` when both known)."""

    kind: str
    unit: str | None
    label: str
    value: float | None
    previous_label: str | None
    previous: float | None
    change_pct: float | None

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PerM2Row:
    """A building's dwellings' consumption per square metre in one bucket."""

    kind: str
    unit: str | None
    label: str
    start: datetime
    end: datetime
    value_per_m2: float | None
    surface_m2: float
    dwellings: int

    def as_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready values (instants in ISO 8601)."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        return out


# ----------------------------------------------------------------------------- buckets


@dataclass(frozen=True, slots=True)
class _Bucket:
    label: str
    start_us: int
    end_us: int


def _instant(bound: date | datetime, what: str) -> datetime:
    if isinstance(bound, datetime):
        if bound.tzinfo is None or bound.utcoffset() is None:
            raise UsageError(
                f"{what} {bound.isoformat()} is naive: give an aware datetime or a date"
            )
        return bound.astimezone(UTC)
    if isinstance(bound, date):
        return day_bounds(bound)[0]
    raise UsageError(f"{what} must be a date or a datetime, not {type(bound).__name__}")


def _on_midnight(at: datetime) -> bool:
    local = at.astimezone(PARIS)
    return local.time() == time(0) and day_bounds(local.date())[0] == at


def _buckets(start: datetime, end: datetime, by: str) -> list[_Bucket]:
    if by not in _GRANULARITIES:
        raise UsageError(f"by must be one of hour, day, month, not {by!r}")
    if end <= start:
        raise UsageError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    start_us, end_us = to_epoch_us(start), to_epoch_us(end)
    out: list[_Bucket] = []
    if by == "hour":
        if start_us % HOUR_US or end_us % HOUR_US:
            raise UsageError("hour buckets need bounds on whole hours")
        for hour_us in range(start_us, end_us, HOUR_US):
            local = from_epoch_us(hour_us).astimezone(PARIS)
            out.append(_Bucket(local.isoformat(timespec="minutes"), hour_us, hour_us + HOUR_US))
        return out
    if not (_on_midnight(start) and _on_midnight(end)):
        raise UsageError(f"{by} buckets need bounds on Paris midnights (give dates)")
    day = paris_day(start)
    last = paris_day(end)
    while day < last:
        if by == "day":
            lo, hi = day_bounds(day)
            out.append(_Bucket(day.isoformat(), to_epoch_us(lo), to_epoch_us(hi)))
            day += timedelta(days=1)
            continue
        lo, hi = month_bounds(day.year, day.month)
        lo_us, hi_us = max(to_epoch_us(lo), start_us), min(to_epoch_us(hi), end_us)
        out.append(_Bucket(f"{day.year:04d}-{day.month:02d}", lo_us, hi_us))
        day = paris_day(from_epoch_us(hi_us))
    return out


# ----------------------------------------------------------------------------- scope


@dataclass(frozen=True, slots=True)
class _Series:
    kind: str
    unit: str | None
    channels: tuple[int, ...]


def _scope(
    conn: Connection,
    *,
    dwelling: str | None,
    building: str | None,
    residence: str | None,
    kind: str | None,
    dwellings_only: bool = False,
) -> dict[int, tuple[str, str | None]]:
    """Return the scope's index channels: id -> (kind, unit). Raises for an unknown code."""
    given = [
        (name, code)
        for name, code in (("dwelling", dwelling), ("building", building), ("residence", residence))
        if code is not None
    ]
    if len(given) != 1:
        raise UsageError("give exactly one of dwelling, building or residence")
    if kind is not None and kind not in CHANNEL_KINDS:
        raise UsageError(f"unknown kind {kind!r}; one of {', '.join(CHANNEL_KINDS)}")
    level, code = given[0]
    if level == "dwelling":
        lookup = select(Dwelling.id).where(Dwelling.code == code)
    elif level == "building":
        lookup = select(Building.id).where(Building.code == code)
    else:
        lookup = select(Residence.id).where(Residence.code == code)
    found = conn.execute(lookup).scalar_one_or_none()
    if found is None:
        raise UsageError(f"no {level} with code {code!r}", where=level)
    query = (
        select(Channel.id, Channel.kind, Channel.unit)
        .join(Box, Box.id == Channel.box_id)
        .join(Dwelling, Dwelling.id == Box.dwelling_id)
        .where(Channel.is_index.is_(True))
    )
    if level == "dwelling":
        query = query.where(Dwelling.id == found)
    elif level == "building":
        query = query.where(Dwelling.building_id == found)
    else:
        query = query.join(Building, Building.id == Dwelling.building_id).where(
            Building.residence_id == found
        )
    if kind is not None:
        query = query.where(Channel.kind == kind)
    if dwellings_only:
        query = query.where(Dwelling.kind == "dwelling")
    return {int(cid): (str(k), u) for cid, k, u in conn.execute(query)}


def _series(channels: Mapping[int, tuple[str, str | None]]) -> list[_Series]:
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for cid, key in channels.items():
        groups[key].append(cid)
    return [
        _Series(kind, unit, tuple(sorted(ids)))
        for (kind, unit), ids in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][1] or "")
        )
    ]


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _rows(
    series: list[_Series], buckets: list[_Bucket], sums: Mapping[tuple[str, str | None, int], float]
) -> list[ConsumptionRow]:
    """Lay the sums out as rows: every bucket of every series."""
    out = []
    for one in series:
        for bucket in buckets:
            total = sums.get((one.kind, one.unit, bucket.start_us))
            out.append(
                ConsumptionRow(
                    kind=one.kind,
                    unit=one.unit,
                    label=bucket.label,
                    start=from_epoch_us(bucket.start_us),
                    end=from_epoch_us(bucket.end_us),
                    value=None if total is None else round(total, _DECIMALS) + 0.0,
                    channels=len(one.channels),
                )
            )
    return out


def _bucket_finder(buckets: list[_Bucket]) -> Callable[[int], int | None]:
    """Return a function: instant (µs) -> start of the bucket holding it, or ``None``."""
    starts = [bucket.start_us for bucket in buckets]

    def find(at_us: int) -> int | None:
        position = bisect.bisect_right(starts, at_us) - 1
        if position < 0 or at_us >= buckets[position].end_us:
            return None
        return buckets[position].start_us

    return find


# ----------------------------------------------------------------------------- queries


def consumption(
    engine: Engine,
    *,
    dwelling: str | None = None,
    building: str | None = None,
    residence: str | None = None,
    kind: str | None = None,
    start: date | datetime,
    end: date | datetime,
    by: Granularity = "day",
) -> list[ConsumptionRow]:
    """Return the scope's consumption per bucket, from the rollups (see the module docstring).

    Raises:
        UsageError: no or several scopes, unknown code or kind, bad range or granularity.
    """
    lo, hi = _instant(start, "start"), _instant(end, "end")
    buckets = _buckets(lo, hi, by)
    with translate_errors(engine), engine.connect() as conn:
        channels = _scope(
            conn, dwelling=dwelling, building=building, residence=residence, kind=kind
        )
    refresh_rollups(engine, channels=channels)
    series = _series(channels)
    with translate_errors(engine), engine.connect() as conn:
        sums = _sums(conn, series, buckets, by)
    return _rows(series, buckets, sums)


def _sums(
    conn: Connection, series: list[_Series], buckets: list[_Bucket], by: str
) -> dict[tuple[str, str | None, int], float]:
    sums: dict[tuple[str, str | None, int], float] = {}
    if by == "hour":
        _hour_sums(conn, series, buckets, sums)
    else:
        _day_sums(conn, series, buckets, sums)
    return sums


def _add(
    sums: dict[tuple[str, str | None, int], float], key: tuple[str, str | None, int], value: float
) -> None:
    sums[key] = sums.get(key, 0.0) + value


def _hour_sums(
    conn: Connection,
    series: list[_Series],
    buckets: list[_Bucket],
    sums: dict[tuple[str, str | None, int], float],
) -> None:
    """Sum rollup_hour per hour in SQL (an hour is a bucket)."""
    lo = from_epoch_us(buckets[0].start_us)
    hi = from_epoch_us(buckets[-1].end_us)
    total = func.sum(RollupHour.consumption)
    for one in series:
        for chunk in _chunks(one.channels):
            rows = conn.execute(
                select(RollupHour.hour_start, total)
                .where(
                    RollupHour.channel_id.in_(chunk),
                    RollupHour.hour_start >= lo,
                    RollupHour.hour_start < hi,
                    RollupHour.consumption.is_not(None),
                )
                .group_by(RollupHour.hour_start)
            )
            for hour, value in rows:
                if value is not None:
                    _add(sums, (one.kind, one.unit, to_epoch_us(hour)), float(value))


def _day_sums(
    conn: Connection,
    series: list[_Series],
    buckets: list[_Bucket],
    sums: dict[tuple[str, str | None, int], float],
) -> None:
    """Sum rollup_day per day in SQL, then fold the days into the buckets."""
    first = paris_day(from_epoch_us(buckets[0].start_us))
    stop = paris_day(from_epoch_us(buckets[-1].end_us))
    firsts = [paris_day(from_epoch_us(bucket.start_us)) for bucket in buckets]
    total = func.sum(RollupDay.consumption)
    for one in series:
        for chunk in _chunks(one.channels):
            rows = conn.execute(
                select(RollupDay.day, total)
                .where(
                    RollupDay.channel_id.in_(chunk),
                    RollupDay.day >= first,
                    RollupDay.day < stop,
                    RollupDay.consumption.is_not(None),
                )
                .group_by(RollupDay.day)
            )
            for day, value in rows:
                position = bisect.bisect_right(firsts, day) - 1
                if value is not None and position >= 0:  # the query keeps days in range
                    key = (one.kind, one.unit, buckets[position].start_us)
                    _add(sums, key, float(value))


def consumption_raw(
    engine: Engine,
    *,
    dwelling: str | None = None,
    building: str | None = None,
    residence: str | None = None,
    kind: str | None = None,
    start: date | datetime,
    end: date | datetime,
    by: Granularity = "day",
) -> list[ConsumptionRow]:
    """Return what :func:`consumption` returns, computed from the raw readings.

    Each counted reading's step (:func:`wesh.hq.rollups.chain_steps`, from the last counted
    reading before the range and the channel's meter events) is added to the bucket of
    the reading's instant. Readings are streamed; memory holds one channel's readings.
    """
    lo, hi = _instant(start, "start"), _instant(end, "end")
    buckets = _buckets(lo, hi, by)
    lo_us, hi_us = buckets[0].start_us, buckets[-1].end_us
    find = _bucket_finder(buckets)
    sums: dict[tuple[str, str | None, int], float] = {}
    with translate_errors(engine), engine.connect() as conn:
        channels = _scope(
            conn, dwelling=dwelling, building=building, residence=residence, kind=kind
        )
        series = _series(channels)
        for one in series:
            for channel_id in one.channels:
                for at_us, step in _raw_steps(conn, channel_id, lo_us, hi_us):
                    bucket = find(at_us)
                    if bucket is not None:
                        _add(sums, (one.kind, one.unit, bucket), step)
    return _rows(series, buckets, sums)


def _raw_steps(
    conn: Connection, channel_id: int, lo_us: int, hi_us: int
) -> Iterator[tuple[int, float]]:
    reading = Reading.__table__
    previous = conn.execute(
        select(reading.c.at, reading.c.value)
        .where(
            reading.c.channel_id == channel_id,
            reading.c.at < from_epoch_us(lo_us),
            reading.c.quality == "good",
        )
        .order_by(reading.c.at.desc())
        .limit(1)
    ).first()
    ref = None if previous is None else (to_epoch_us(previous[0]), float(previous[1]))
    after = ref[0] if ref is not None else lo_us - 1
    breaks = [
        MeterBreak(to_epoch_us(at), old, new)
        for at, old, new in conn.execute(
            select(MeterEvent.at, MeterEvent.old_index, MeterEvent.new_index)
            .where(
                MeterEvent.channel_id == channel_id,
                MeterEvent.at > from_epoch_us(after),
                MeterEvent.at < from_epoch_us(hi_us),
            )
            .order_by(MeterEvent.at, MeterEvent.id)
        )
    ]
    result = conn.exec_driver_sql(
        _RAW if conn.dialect.paramstyle == "qmark" else _RAW.replace("?", "%s"),
        (channel_id, lo_us, hi_us),
        execution_options={"yield_per": _FETCH},
    )
    points = ((int(at), float(value), quality == "good") for at, value, quality in result)
    for at_us, _value, _counted, step in chain_steps(points, previous=ref, breaks=breaks):
        if step is not None:
            yield at_us, step


_RAW: Final = (
    "SELECT at, value, quality FROM reading WHERE channel_id = ? AND at >= ? AND at < ? ORDER BY at"
)


# ----------------------------------------------------------------------------- comparisons


def _year_before(day: date) -> date | None:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return None


def previous_year(
    engine: Engine,
    *,
    dwelling: str | None = None,
    building: str | None = None,
    residence: str | None = None,
    kind: str | None = None,
    start: date,
    end: date,
    by: Literal["day", "month"] = "month",
) -> list[Comparison]:
    """Set each day or month of ``[start, end)`` beside the same one a year earlier.

    ``start``/``end`` are dates (months: first days of months). 29 February has no
    counterpart. ``change_pct`` = (value - previous) / previous * 100 when both are known
    and the previous one is not 0.
    """
    if by not in ("day", "month"):
        raise UsageError(f"previous_year compares days or months, not {by!r}")
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise UsageError("previous_year takes dates")
    scope: dict[str, Any] = {"dwelling": dwelling, "building": building, "residence": residence}
    current = consumption(engine, **scope, kind=kind, start=start, end=end, by=by)
    before_start = _year_before(start) or start.replace(year=start.year - 1, day=28)
    before_end = _year_before(end) or end.replace(year=end.year - 1, day=28)
    earlier = consumption(engine, **scope, kind=kind, start=before_start, end=before_end, by=by)
    by_key = {(row.kind, row.unit, row.label): row for row in earlier}
    out = []
    for row in current:
        if by == "month":
            year, month = row.label.split("-")
            previous_label: str | None = f"{int(year) - 1:04d}-{month}"
        else:
            shifted = _year_before(date.fromisoformat(row.label))
            previous_label = None if shifted is None else shifted.isoformat()
        match = by_key.get((row.kind, row.unit, previous_label or ""))
        previous = None if match is None else match.value
        change = None
        if row.value is not None and previous:
            change = round((row.value - previous) / previous * 100.0, 2)
        out.append(
            Comparison(row.kind, row.unit, row.label, row.value, previous_label, previous, change)
        )
    return out


def building_average_per_m2(
    engine: Engine,
    *,
    building: str,
    kind: str | None = None,
    start: date | datetime,
    end: date | datetime,
    by: Granularity = "month",
) -> list[PerM2Row]:
    """Return the consumption of a building's dwellings per m² of their surface, per bucket.

    Only dwellings (not common areas) with a known surface count, each for its channels of
    the series' kind: the value is their summed consumption over their summed surface.
    """
    lo, hi = _instant(start, "start"), _instant(end, "end")
    buckets = _buckets(lo, hi, by)
    with translate_errors(engine), engine.connect() as conn:
        channels = _scope(
            conn, dwelling=None, building=building, residence=None, kind=kind, dwellings_only=True
        )
    refresh_rollups(engine, channels=channels)
    with translate_errors(engine), engine.connect() as conn:
        surfaces: dict[int, tuple[int, float]] = {}
        for chunk in _chunks(sorted(channels)):
            rows = conn.execute(
                select(Channel.id, Dwelling.id, Dwelling.surface_m2)
                .join(Box, Box.id == Channel.box_id)
                .join(Dwelling, Dwelling.id == Box.dwelling_id)
                .where(Channel.id.in_(chunk), Dwelling.surface_m2.is_not(None))
            )
            for cid, did, surface in rows:
                if surface is not None:
                    surfaces[int(cid)] = (int(did), surface)
        series = _series({cid: channels[cid] for cid in surfaces})
        sums = _sums(conn, series, buckets, by)
    out = []
    for one in series:
        dwellings = {surfaces[cid][0]: surfaces[cid][1] for cid in one.channels}
        surface = math.fsum(dwellings.values())
        for bucket in buckets:
            total = sums.get((one.kind, one.unit, bucket.start_us))
            out.append(
                PerM2Row(
                    kind=one.kind,
                    unit=one.unit,
                    label=bucket.label,
                    start=from_epoch_us(bucket.start_us),
                    end=from_epoch_us(bucket.end_us),
                    value_per_m2=None if total is None else round(total / surface, 6),
                    surface_m2=surface,
                    dwellings=len(dwellings),
                )
            )
    return out
