"""Hourly and daily rollups of readings, and the re-roll of the buckets new data touches.

Definitions (``docs/hq-data.md``, "Rollups")::

    reading ──(channel, UTC hour)──▶ rollup_hour ──(channel, Paris day of 23/24/25 h)──▶ rollup_day

* Only **counted** readings enter a rollup: quality ``good`` (``suspect`` ones are kept in
  ``reading`` but skipped, as the gateway's consumption rule does). A bucket row exists
  when at least one counted reading falls in it.
* **Gauges**: ``min``, ``max``, ``mean`` (arithmetic) and ``count`` of the values.
* **Indexes**: each counted reading carries the **step** consumed since the previous
  counted reading of the channel (:func:`step_consumption`); a bucket's ``consumption``
  is the sum of the steps of the readings that fall in it (a step that straddles a bucket
  boundary belongs to the bucket of its later reading), ``NULL`` when no reading of the
  bucket has a step (the channel's first reading). ``min``/``max`` are the index range,
  ``mean`` is ``NULL``. A step is never negative:

  - with :class:`~wesh.hq.models.MeterEvent` rows of the channel between the two readings
    (``previous.at < event.at <= reading.at``), the step is bridged through them:
    ``max(0, old_index - previous) + max(0, reading - new_index)`` (an unknown index
    counts as nothing on its side);
  - otherwise an unexplained decrease is a counter reset: the counter restarted from
    zero when the new value is at most 1 % of the previous one (step = the new value),
    else what was consumed across the reset is unknown and counted as nothing (step 0) —
    the rule of :func:`wesh.gateway.channels.index_consumption` with the guard's default
    "near zero".
* ``first_*``/``last_*`` name the bucket's first and last counted readings.
* A day rollup aggregates the hour rollups of the Paris day's hours (sums, min of mins,
  max of maxes, mean weighted by counts), so it equals the same computation over the day's
  raw readings.

New readings (or meter events) change the hours they fall in and the hour of the next
counted reading after them (its step now starts from them); :func:`reroll_windows`
recomputes exactly those hours and the days that contain them, with a few set-based
statements per batch. An hour holding one counted reading (the usual: gateways send hourly
aggregates) is rolled in SQL, nothing read back; Python (:func:`hour_rows`) rolls the
channels with a meter event in reach or an hour of several readings. Both give the same
rows, bit for bit.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from wesh.errors import TransientError, UsageError
from wesh.hq.db import transaction, translate_errors
from wesh.hq.timeutil import HOUR_US, day_bounds, from_epoch_us, paris_day, to_epoch_us

__all__ = [
    "RESET_NEAR_ZERO_RATIO",
    "DayRollup",
    "HourRollup",
    "HourRow",
    "MeterBreak",
    "Point",
    "chain_steps",
    "driver_sql",
    "hour_rows",
    "insert_many",
    "mark_dirty",
    "refresh_rollups",
    "reroll",
    "reroll_windows",
    "roll_days",
    "roll_hours",
    "step_consumption",
]

_LOG = logging.getLogger(__name__)

RESET_NEAR_ZERO_RATIO: Final = 0.01
"""After an unexplained decrease, a new value at most this share of the previous one means
the counter restarted from zero (its value is consumption); above, the step counts 0."""

_NEAR_ZERO: Final = RESET_NEAR_ZERO_RATIO

#: Most ids in one ``IN (...)`` list.
_CHUNK: Final = 500
_SHORTEST_DAY_US: Final = 23 * HOUR_US
#: Most distinct windows grouped exactly (see ``_cluster``).
_EXACT_GROUPS: Final = 64

#: One reading for the pure functions: (at in epoch µs, value, counted = quality good).
Point = tuple[int, float, bool]


@dataclass(frozen=True, slots=True)
class MeterBreak:
    """A meter event of an index channel: the register jumped from ``old`` to ``new``."""

    at_us: int
    old_index: float | None
    new_index: float | None


@dataclass(frozen=True, slots=True)
class HourRollup:
    """One ``rollup_hour`` row (instants in epoch microseconds)."""

    channel_id: int
    hour_us: int
    consumption: float | None
    min: float | None
    max: float | None
    mean: float | None
    count: int
    first_at_us: int | None
    first_value: float | None
    last_at_us: int | None
    last_value: float | None


@dataclass(frozen=True, slots=True)
class DayRollup:
    """One ``rollup_day`` row (``day`` is a Paris calendar day)."""

    channel_id: int
    day: date
    consumption: float | None
    min: float | None
    max: float | None
    mean: float | None
    count: int
    first_at_us: int | None
    first_value: float | None
    last_at_us: int | None
    last_value: float | None


# ----------------------------------------------------------------------------- pure rules


def step_consumption(previous: float, value: float, breaks: Sequence[MeterBreak] = ()) -> float:
    """Return what was consumed between two consecutive counted index readings (>= 0).

    ``breaks`` are the channel's meter events after ``previous`` and up to ``value``,
    in time order (see the module docstring).
    """
    if breaks:
        total = 0.0
        reference: float | None = previous
        for brk in breaks:
            if reference is not None and brk.old_index is not None:
                total += max(0.0, brk.old_index - reference)
            reference = brk.new_index
        if reference is not None:
            total += max(0.0, value - reference)
        return total
    step = value - previous
    if step >= 0:
        return step
    if 0 <= value <= abs(previous) * RESET_NEAR_ZERO_RATIO:
        return value
    return 0.0


def chain_steps(
    points: Iterable[Point],
    *,
    previous: tuple[int, float] | None,
    breaks: Sequence[MeterBreak] = (),
) -> Iterator[tuple[int, float, bool, float | None]]:
    """Yield ``(at_us, value, counted, step)`` for the points of ONE index channel.

    ``points`` in time order; ``previous`` is the last counted reading before them (or
    ``None``); ``breaks`` the channel's meter events in time order (any range: those up to
    ``previous`` are skipped). ``step`` is ``None`` for uncounted points and for the
    channel's first counted reading.
    """
    ref = previous
    queue = list(breaks)
    position = 0
    if ref is not None:
        while position < len(queue) and queue[position].at_us <= ref[0]:
            position += 1
    for at_us, value, counted in points:
        if not counted:
            yield at_us, value, counted, None
            continue
        start = position
        while position < len(queue) and queue[position].at_us <= at_us:
            position += 1
        if ref is None:
            yield at_us, value, counted, None
        else:
            crossed = queue[start:position] if position > start else ()
            yield at_us, value, counted, step_consumption(ref[1], value, crossed)
        ref = (at_us, value)


def roll_hours(
    channel_id: int,
    points: Iterable[Point],
    *,
    is_index: bool,
    previous: tuple[int, float] | None = None,
    breaks: Sequence[MeterBreak] = (),
) -> list[HourRollup]:
    """Return the hour rollups of ONE channel's points (time order), hours with data only."""
    return [HourRollup(*row) for row in hour_rows(channel_id, points, is_index, previous, breaks)]


#: A ``rollup_hour`` row as a tuple, in :class:`HourRollup`'s field order.
HourRow = tuple[int, int, float | None, float, float, float | None, int, int, float, int, float]


def hour_rows(
    channel_id: int,
    points: Iterable[Point],
    is_index: bool,
    previous: tuple[int, float] | None,
    breaks: Sequence[MeterBreak],
) -> list[HourRow]:
    """Return :func:`roll_hours` as plain tuples (the fast path of re-rolls)."""
    rows: list[HourRow] = []
    reference = previous[1] if previous is not None else None
    position, n_breaks = 0, len(breaks)
    if previous is not None:
        while position < n_breaks and breaks[position].at_us <= previous[0]:
            position += 1
    hour = -1
    step: float | None = None
    consumption: float | None = None
    low = high = total = first_value = last_value = 0.0
    count = first_at = last_at = 0
    for at_us, value, counted in points:
        if not counted:
            continue
        if is_index:
            if position < n_breaks and breaks[position].at_us <= at_us:
                start = position
                while position < n_breaks and breaks[position].at_us <= at_us:
                    position += 1
                step = (
                    None
                    if reference is None
                    else step_consumption(reference, value, breaks[start:position])
                )
            elif reference is None:
                step = None
            else:
                step = value - reference
                if step < 0:
                    step = value if 0 <= value <= abs(reference) * _NEAR_ZERO else 0.0
            reference = value
        bucket = at_us - at_us % HOUR_US
        if bucket != hour:
            if count:
                rows.append(
                    (
                        channel_id,
                        hour,
                        consumption,
                        low,
                        high,
                        None if is_index else total / count,
                        count,
                        first_at,
                        first_value,
                        last_at,
                        last_value,
                    )
                )
            hour, consumption, count = bucket, step, 1
            low = high = total = first_value = value
            first_at = at_us
        else:
            if step is not None:
                consumption = step if consumption is None else consumption + step
            if value < low:
                low = value
            elif value > high:
                high = value
            total += value
            count += 1
        last_at, last_value = at_us, value
    if count:
        rows.append(
            (
                channel_id,
                hour,
                consumption,
                low,
                high,
                None if is_index else total / count,
                count,
                first_at,
                first_value,
                last_at,
                last_value,
            )
        )
    return rows


def roll_days(hours: Iterable[HourRollup]) -> list[DayRollup]:
    """Aggregate hour rollups (any channels, any order) into Paris-day rollups."""
    groups: dict[tuple[int, date], list[HourRollup]] = defaultdict(list)
    day_of: dict[int, date] = {}
    for row in hours:
        day = day_of.get(row.hour_us)
        if day is None:
            day = day_of[row.hour_us] = paris_day(from_epoch_us(row.hour_us))
        groups[row.channel_id, day].append(row)
    out: list[DayRollup] = []
    for (channel_id, day), rows in sorted(groups.items()):
        rows.sort(key=lambda row: row.hour_us)
        steps = [row.consumption for row in rows if row.consumption is not None]
        count = sum(row.count for row in rows)
        means = [row.mean * row.count for row in rows if row.mean is not None]
        out.append(
            DayRollup(
                channel_id,
                day,
                sum(steps) if steps else None,
                min(row.min for row in rows if row.min is not None),
                max(row.max for row in rows if row.max is not None),
                sum(means) / count if means else None,
                count,
                rows[0].first_at_us,
                rows[0].first_value,
                rows[-1].last_at_us,
                rows[-1].last_value,
            )
        )
    return out


# ----------------------------------------------------------------------------- SQL
#
# Driver-level statements: ``?`` placeholders (``%s`` on MariaDB and PostgreSQL) and
# ``#IDS#`` for a list of channel ids; nothing but placeholders is ever put in them.

_NEXT_COUNTED = (  # hi, ids...
    "SELECT c.id, (SELECT r.at FROM reading r WHERE r.channel_id = c.id AND r.at >= ? "
    "AND r.quality = 'good' ORDER BY r.at LIMIT 1) FROM channel c WHERE c.id IN (#IDS#)"
)

_PREVIOUS_COUNTED = (  # lo, lo, ids...
    "SELECT c.id, "
    "(SELECT r.at FROM reading r WHERE r.channel_id = c.id AND r.at < ? "
    "AND r.quality = 'good' ORDER BY r.at DESC LIMIT 1), "
    "(SELECT r.value FROM reading r WHERE r.channel_id = c.id AND r.at < ? "
    "AND r.quality = 'good' ORDER BY r.at DESC LIMIT 1) "
    "FROM channel c WHERE c.id IN (#IDS#)"
)

_BREAKS = (  # ids..., after, hi
    "SELECT channel_id, at, old_index, new_index FROM meter_event "
    "WHERE channel_id IN (#IDS#) AND at > ? AND at < ? ORDER BY channel_id, at, id"
)

_POINTS = (  # ids..., lo, hi
    "SELECT channel_id, at, value, quality FROM reading "
    "WHERE channel_id IN (#IDS#) AND at >= ? AND at < ? ORDER BY channel_id, at"
)

_COUNTS = (  # ids..., lo, hi
    "SELECT channel_id, COUNT(*) FROM reading WHERE channel_id IN (#IDS#) AND at >= ? "
    "AND at < ? GROUP BY channel_id"
)

_DELETE_HOURS = (  # ids..., lo, hi
    "DELETE FROM rollup_hour WHERE channel_id IN (#IDS#) AND hour_start >= ? AND hour_start < ?"
)

_INSERT_HOUR = (  # executemany of rows
    "INSERT INTO rollup_hour (channel_id, hour_start, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_DELETE_DAYS = "DELETE FROM rollup_day WHERE channel_id IN (#IDS#) AND day = ?"  # ids..., day

_INSERT_DAYS = (  # day, lo, hi, lo, hi, ids..., lo, hi
    "INSERT INTO rollup_day (channel_id, day, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) "
    "SELECT h.channel_id, ?, SUM(h.consumption), MIN(h.min), MAX(h.max), "
    "SUM(h.mean * h.count) / SUM(h.count), SUM(h.count), "
    "MIN(h.first_at), "
    "(SELECT e.first_value FROM rollup_hour e WHERE e.channel_id = h.channel_id "
    "AND e.hour_start >= ? AND e.hour_start < ? ORDER BY e.hour_start LIMIT 1), "
    "MAX(h.last_at), "
    "(SELECT e.last_value FROM rollup_hour e WHERE e.channel_id = h.channel_id "
    "AND e.hour_start >= ? AND e.hour_start < ? ORDER BY e.hour_start DESC LIMIT 1) "
    "FROM rollup_hour h WHERE h.channel_id IN (#IDS#) AND h.hour_start >= ? "
    "AND h.hour_start < ? GROUP BY h.channel_id"
)

_DELETE_DAY = "DELETE FROM rollup_day WHERE channel_id = ? AND day = ?"  # executemany

# Merge a day's new hours into its stored row (executemany). The new row's ``mean`` times
# its ``count`` is the sum of its values. MariaDB evaluates the assignments in order, each
# seeing the previous ones' results: ``mean`` comes before ``count``, ``*_value`` before
# ``*_at``.
_MERGE_DAY_SET = (
    "consumption = CASE WHEN {n}consumption{e} IS NULL THEN rollup_day.consumption "
    "WHEN rollup_day.consumption IS NULL THEN {n}consumption{e} "
    "ELSE rollup_day.consumption + {n}consumption{e} END, "
    "min = CASE WHEN rollup_day.min IS NULL OR {n}min{e} < rollup_day.min "
    "THEN {n}min{e} ELSE rollup_day.min END, "
    "max = CASE WHEN rollup_day.max IS NULL OR {n}max{e} > rollup_day.max "
    "THEN {n}max{e} ELSE rollup_day.max END, "
    "mean = CASE WHEN {n}mean{e} IS NULL THEN rollup_day.mean "
    "WHEN rollup_day.mean IS NULL THEN {n}mean{e} "
    "ELSE (rollup_day.mean * rollup_day.count + {n}mean{e} * {n}count{e}) "
    "/ (rollup_day.count + {n}count{e}) END, "
    "count = rollup_day.count + {n}count{e}, "
    "first_value = CASE WHEN rollup_day.first_at IS NULL OR {n}first_at{e} < rollup_day.first_at "
    "THEN {n}first_value{e} ELSE rollup_day.first_value END, "
    "first_at = CASE WHEN rollup_day.first_at IS NULL OR {n}first_at{e} < rollup_day.first_at "
    "THEN {n}first_at{e} ELSE rollup_day.first_at END, "
    "last_value = CASE WHEN rollup_day.last_at IS NULL OR {n}last_at{e} > rollup_day.last_at "
    "THEN {n}last_value{e} ELSE rollup_day.last_value END, "
    "last_at = CASE WHEN rollup_day.last_at IS NULL OR {n}last_at{e} > rollup_day.last_at "
    "THEN {n}last_at{e} ELSE rollup_day.last_at END"
)
_MERGE_DAY_INSERT = (
    "INSERT INTO rollup_day (channel_id, day, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
)
#: Indexed by "is MariaDB": ON CONFLICT (SQLite, PostgreSQL) / ON DUPLICATE KEY UPDATE.
_MERGE_DAY: Final = (
    _MERGE_DAY_INSERT
    + "ON CONFLICT (channel_id, day) DO UPDATE SET "
    + _MERGE_DAY_SET.replace("{n}", "excluded.").replace("{e}", ""),
    _MERGE_DAY_INSERT
    + "ON DUPLICATE KEY UPDATE "
    + _MERGE_DAY_SET.replace("{n}", "VALUES(").replace("{e}", ")"),
)

_IS_INDEX = "SELECT is_index FROM channel WHERE id = ?"

# Hours rolled in SQL (the refresh's common case, see ``_reroll_hours_sql``): hours
# holding ONE counted reading of their channel, each its own rollup row, in one
# ``INSERT ... SELECT`` per kind of channel and chunk, nothing read back. A window over
# the channel's counted readings in key order (no sort: the primary key's order) gives
# each reading its neighbours: the previous value (its step; before the window's first
# reading, the last counted one before ``lo``) and whether the previous or next reading
# falls in the same hour (then the hour is left to Python). ``#H#`` is the hour in µs, a
# constant rendered as a literal. The step is :func:`step_consumption`'s rule without
# meter events (channels with one in reach take the Python path).
_SOLE_HOUR = (
    "(x.pa IS NULL OR x.pa - x.pa % #H# <> x.at - x.at % #H#) "
    "AND (x.na IS NULL OR x.na - x.na % #H# <> x.at - x.at % #H#)"
)
_ROLL_GAUGE_HOURS = (  # ids..., lo, hi
    "INSERT INTO rollup_hour (channel_id, hour_start, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) "
    "SELECT x.channel_id, x.at - x.at % #H#, NULL, x.value, x.value, x.value, 1, "
    "x.at, x.value, x.at, x.value "
    "FROM (SELECT q.channel_id, q.at, q.value, LAG(q.at) OVER w AS pa, LEAD(q.at) OVER w AS na "
    "FROM reading q WHERE q.channel_id IN (#IDS#) AND q.at >= ? AND q.at < ? "
    "AND q.quality = 'good' WINDOW w AS (PARTITION BY q.channel_id ORDER BY q.at)) x "
    "WHERE #SOLE#"
)
_ROLL_INDEX_HOURS = (  # near-zero ratio, zero, lo, ids..., lo, hi
    "INSERT INTO rollup_hour (channel_id, hour_start, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) "
    "SELECT x.channel_id, x.at - x.at % #H#, "
    "CASE WHEN x.prev IS NULL THEN NULL WHEN x.value - x.prev >= 0 THEN x.value - x.prev "
    "WHEN x.value >= 0 AND x.value <= ABS(x.prev) * ? THEN x.value ELSE ? END, "
    "x.value, x.value, NULL, 1, x.at, x.value, x.at, x.value "
    "FROM (SELECT q.channel_id, q.at, q.value, LAG(q.at) OVER w AS pa, LEAD(q.at) OVER w AS na, "
    "COALESCE(LAG(q.value) OVER w, (SELECT b.value FROM reading b "
    "WHERE b.channel_id = q.channel_id AND b.at < ? AND b.quality = 'good' "
    "ORDER BY b.at DESC LIMIT 1)) AS prev "
    "FROM reading q WHERE q.channel_id IN (#IDS#) AND q.at >= ? AND q.at < ? "
    "AND q.quality = 'good' WINDOW w AS (PARTITION BY q.channel_id ORDER BY q.at)) x "
    "WHERE #SOLE#"
)
# SQLite: one writer at a time, and from a re-roll's first write (the DELETE of its hours)
# to its commit nobody else writes; so the only key conflicts of its inserts are hours of
# several readings of its own channels, which are rolled again in Python anyway. It may
# insert every counted reading as an hour row and skip conflicts: no window for gauges,
# one ``LAG`` for indexes (about half the cost). Server engines let two refreshers
# interleave: a skipped conflict could then hide a stale row, so they keep the strict
# insert of sole readings above (a collision fails the batch, which is retried).
_ROLL_GAUGE_HOURS_SQLITE = (  # ids..., lo, hi
    "INSERT INTO rollup_hour (channel_id, hour_start, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) "
    "SELECT channel_id, at - at % #H#, NULL, value, value, value, 1, at, value, at, value "
    "FROM reading WHERE channel_id IN (#IDS#) AND at >= ? AND at < ? AND quality = 'good' "
    "ON CONFLICT DO NOTHING"
)
_ROLL_INDEX_HOURS_SQLITE = (  # near-zero ratio, zero, lo, ids..., lo, hi
    "INSERT INTO rollup_hour (channel_id, hour_start, consumption, min, max, mean, count, "
    "first_at, first_value, last_at, last_value) "
    "SELECT x.channel_id, x.at - x.at % #H#, "
    "CASE WHEN x.prev IS NULL THEN NULL WHEN x.value - x.prev >= 0 THEN x.value - x.prev "
    "WHEN x.value >= 0 AND x.value <= ABS(x.prev) * ? THEN x.value ELSE ? END, "
    "x.value, x.value, NULL, 1, x.at, x.value, x.at, x.value "
    "FROM (SELECT q.channel_id, q.at, q.value, "
    "COALESCE(LAG(q.value) OVER (PARTITION BY q.channel_id ORDER BY q.at), "
    "(SELECT b.value FROM reading b WHERE b.channel_id = q.channel_id AND b.at < ? "
    "AND b.quality = 'good' ORDER BY b.at DESC LIMIT 1)) AS prev "
    "FROM reading q WHERE q.channel_id IN (#IDS#) AND q.at >= ? AND q.at < ? "
    "AND q.quality = 'good') x WHERE true ON CONFLICT DO NOTHING"
)
_COUNTED = (  # ids..., lo, hi
    "SELECT COUNT(*) FROM reading WHERE channel_id IN (#IDS#) AND at >= ? AND at < ? "
    "AND quality = 'good'"
)
# Channels with an hour of several counted readings (rolled in Python).
_CROWDED = (  # ids..., lo, hi
    "SELECT DISTINCT x.channel_id FROM (SELECT q.channel_id, q.at, "
    "LAG(q.at) OVER (PARTITION BY q.channel_id ORDER BY q.at) AS pa FROM reading q "
    "WHERE q.channel_id IN (#IDS#) AND q.at >= ? AND q.at < ? AND q.quality = 'good') x "
    "WHERE x.pa - x.pa % #H# = x.at - x.at % #H#"
)
# Channels with a meter event after their last counted reading before ``lo`` and before
# ``hi`` (their steps are bridged: Python path).
_BROKEN = (  # ids..., hi, lo
    "SELECT DISTINCT m.channel_id FROM meter_event m WHERE m.channel_id IN (#IDS#) "
    "AND m.at < ? AND NOT EXISTS (SELECT 1 FROM reading r WHERE r.channel_id = m.channel_id "
    "AND r.at >= m.at AND r.at < ? AND r.quality = 'good')"
)


@functools.lru_cache(maxsize=512)
def _render(statement: str, n_ids: int, qmark: bool) -> str:
    marks = ", ".join("?" * n_ids)
    rendered = statement.replace("#IDS#", marks).replace("#SOLE#", _SOLE_HOUR)
    rendered = rendered.replace("#H#", str(HOUR_US))
    return rendered if qmark else rendered.replace("%", "%%").replace("?", "%s")


def _run(conn: Connection, statement: str, params: Sequence[Any], n_ids: int = 0) -> Any:  # noqa: ANN401
    """Execute a driver-level statement with ``n_ids`` ids among ``params``; return rows."""
    sql = _render(statement, n_ids, conn.dialect.paramstyle == "qmark")
    result = conn.exec_driver_sql(sql, tuple(params))
    return result.fetchall() if result.returns_rows else None


def _day_param(conn: Connection, day: date) -> object:
    """Return a DATE parameter for a driver-level statement (SQLite stores ISO text)."""
    return day.isoformat() if conn.dialect.name == "sqlite" else day


def insert_many(conn: Connection, statement: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run a single-row ``INSERT ... VALUES (?, ...)`` for many rows; return the row count.

    The driver's ``executemany``: SQLite loops in C, PyMySQL sends multi-row INSERTs,
    psycopg pipelines (measured faster than multi-row ``VALUES`` statements).
    """
    if not rows:
        return 0
    return int(conn.exec_driver_sql(driver_sql(conn, statement), list(rows)).rowcount)


def driver_sql(conn: Connection, statement: str) -> str:
    """Return a ``?``-placeholder statement in the paramstyle of ``conn``'s driver."""
    return statement if conn.dialect.paramstyle == "qmark" else statement.replace("?", "%s")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _hour_ceil(at_us: int) -> int:
    return -((-at_us) // HOUR_US) * HOUR_US


# ----------------------------------------------------------------------------- re-roll


@dataclass(frozen=True, slots=True)
class _Window:
    lo_us: int
    hi_us: int
    channels: tuple[int, ...]


def _next_counted(conn: Connection, hi_us: int, ids: Sequence[int]) -> dict[int, int]:
    """Return the first counted reading at or after ``hi_us`` of each channel (if any)."""
    rows = _run(conn, _NEXT_COUNTED, (hi_us, *ids), len(ids))
    return {int(cid): int(at) for cid, at in rows if at is not None}


def _previous_counted(
    conn: Connection, lo_us: int, ids: Sequence[int]
) -> dict[int, tuple[int, float]]:
    """Return the last counted reading before ``lo_us`` of each channel (if any)."""
    rows = _run(conn, _PREVIOUS_COUNTED, (lo_us, lo_us, *ids), len(ids))
    return {int(cid): (int(at), float(value)) for cid, at, value in rows if at is not None}


def _breaks(
    conn: Connection, after_us: int, hi_us: int, ids: Sequence[int]
) -> dict[int, list[MeterBreak]]:
    out: dict[int, list[MeterBreak]] = defaultdict(list)
    rows = _run(conn, _BREAKS, (*ids, after_us, hi_us), len(ids))
    for cid, at, old, new in rows:
        out[int(cid)].append(
            MeterBreak(
                int(at), None if old is None else float(old), None if new is None else float(new)
            )
        )
    return out


def _points(conn: Connection, lo_us: int, hi_us: int, ids: Sequence[int]) -> dict[int, list[Point]]:
    out: dict[int, list[Point]] = defaultdict(list)
    current = -1
    bucket: list[Point] = []
    rows = _run(conn, _POINTS, (*ids, lo_us, hi_us), len(ids))
    for cid, at, value, quality in rows:
        if cid != current:
            current = cid
            bucket = out[int(cid)]
        bucket.append((at, value, quality == "good"))
    return out


def _cluster(windows: Mapping[int, tuple[int, int]], *, exact: bool) -> list[_Window]:
    """Group channels by window, so that one query serves a group.

    With ``exact``, only channels of the same window are grouped while there are at most
    :data:`_EXACT_GROUPS` windows (fresh rows then stay usable: a wider window would take in
    older rows). Otherwise a group's window is the union of its members' (recomputing more
    hours than needed is correct): windows merge when they overlap or touch and the union
    is at most twice the shortest member's span, so no channel reads more than twice what
    it needs.
    """
    by_window: dict[tuple[int, int], list[int]] = defaultdict(list)
    for channel_id, bounds in windows.items():
        by_window[bounds].append(channel_id)
    if exact and len(by_window) <= _EXACT_GROUPS:
        return [_Window(lo, hi, tuple(sorted(ids))) for (lo, hi), ids in sorted(by_window.items())]
    out: list[_Window] = []
    lo = hi = shortest = 0
    members: list[int] = []
    for (w_lo, w_hi), ids in sorted(by_window.items()):
        span = w_hi - w_lo
        union = max(hi, w_hi) - lo
        if members and w_lo <= hi and union <= 2 * min(shortest, span):
            hi = max(hi, w_hi)
            shortest = min(shortest, span)
            members.extend(ids)
            continue
        if members:
            out.append(_Window(lo, hi, tuple(sorted(members))))
        lo, hi, shortest, members = w_lo, w_hi, span, list(ids)
    if members:
        out.append(_Window(lo, hi, tuple(sorted(members))))
    return out


def reroll_windows(
    conn: Connection,
    windows: Mapping[int, tuple[int, int]],
    *,
    index_channels: Iterable[int] = (),
    fresh: Mapping[int, Sequence[Point]] | None = None,
) -> int:
    """Recompute the rollups that changes in ``windows`` may have changed; return hours written.

    ``windows`` maps a channel id to the span ``[lo_us, hi_us)`` (epoch µs) where its
    readings or meter events changed. The hours overlapping the span, the hour of the
    next counted reading after it (index channels, listed in ``index_channels``), and the
    Paris days containing them are recomputed, inside the caller's transaction.

    ``fresh`` (optional) gives the points just inserted, per channel, in time order. A
    channel whose window holds exactly those rows (one grouped ``COUNT`` tells) is rolled
    from them instead of reading its window back.
    """
    if not windows:
        return 0
    indexes = set(index_channels)
    spans = {
        cid: (lo - lo % HOUR_US, _hour_ceil(max(hi, lo + 1))) for cid, (lo, hi) in windows.items()
    }
    # Index channels: the hour of the next counted reading changes too (its step).
    by_hi: dict[int, list[int]] = defaultdict(list)
    for cid, (_, hi_us) in spans.items():
        if cid in indexes:
            by_hi[hi_us].append(cid)
    for hi_us, ids in by_hi.items():
        for chunk in _chunks(ids, _CHUNK):
            for cid, next_at in _next_counted(conn, hi_us, chunk).items():
                spans[cid] = (spans[cid][0], next_at - next_at % HOUR_US + HOUR_US)
    days = _Days()
    written = 0
    try:
        for window in _cluster(spans, exact=fresh is not None):
            for chunk in _chunks(window.channels, _CHUNK):
                written += _reroll_hours(
                    conn, window, chunk, indexes=indexes, fresh=fresh, days=days
                )
        days.write(conn)
    except IntegrityError as exc:
        raise TransientError(
            "rollups changed by a concurrent re-roll of the same channels; retry"
        ) from exc
    return written


class _Days:
    """The Paris days a re-roll touched: re-aggregated from their hours, or merged.

    A day of a channel whose window held no rows but the batch's (``fresh``) is updated by
    merging the aggregate of its new hours into the stored day row (one upsert row);
    other days are re-aggregated from ``rollup_hour`` (two statements per chunk).
    """

    def __init__(self) -> None:
        self._day_of: dict[int, date] = {}
        self._bounds: dict[date, tuple[int, int]] = {}
        self.channels: dict[date, set[int]] = defaultdict(set)
        self.merges: list[tuple[int, date, tuple[Any, ...]]] = []
        self.replaced: list[tuple[int, date]] = []

    def bounds(self, day: date) -> tuple[int, int]:
        found = self._bounds.get(day)
        if found is None:
            start, end = day_bounds(day)
            found = self._bounds[day] = (to_epoch_us(start), to_epoch_us(end))
        return found

    def day(self, hour_us: int) -> date:
        day = self._day_of.get(hour_us)
        if day is None:
            day = paris_day(from_epoch_us(hour_us))
            start_us, end_us = self.bounds(day)
            for each in range(start_us, end_us, HOUR_US):
                self._day_of[each] = day
        return day

    def add(self, lo_us: int, hi_us: int, channels: Iterable[int]) -> None:
        """Mark the Paris days that overlap ``[lo_us, hi_us)`` (hour-aligned) for ``channels``."""
        members = list(channels)
        if not members:
            return
        hour = lo_us
        while hour < hi_us:
            day = self.day(hour)
            self.channels[day].update(members)
            hour = self.bounds(day)[1]

    def add_fresh(self, channel_id: int, lo_us: int, hi_us: int, rows: Sequence[HourRow]) -> None:
        """Record the new hours of a channel whose window ``[lo, hi)`` held only them."""
        if hi_us - lo_us >= _SHORTEST_DAY_US:  # days the window covers whole are replaced
            hour = lo_us
            while hour < hi_us:
                day = self.day(hour)
                start_us, end_us = self.bounds(day)
                if lo_us <= start_us and end_us <= hi_us:
                    self.replaced.append((channel_id, day))
                hour = end_us
        if len(rows) == 1:
            row = rows[0]
            self.merges.append((channel_id, self.day(row[1]), row[2:]))
            return
        position = 0
        while position < len(rows):
            day = self.day(rows[position][1])
            end_us = self.bounds(day)[1]
            stop = position
            while stop < len(rows) and rows[stop][1] < end_us:
                stop += 1
            self.merges.append((channel_id, day, _aggregate(rows[position:stop])))
            position = stop

    def write(self, conn: Connection) -> None:
        """Write every touched day (see the class docstring)."""
        for day, members in sorted(self.channels.items()):
            lo, hi = self.bounds(day)
            stamp = _day_param(conn, day)
            for chunk in _chunks(sorted(members), _CHUNK):
                n = len(chunk)
                _run(conn, _DELETE_DAYS, (*chunk, stamp), n)
                _run(conn, _INSERT_DAYS, (stamp, lo, hi, lo, hi, *chunk, lo, hi), n)
        if self.replaced:
            keys = [(cid, _day_param(conn, day)) for cid, day in self.replaced]
            conn.exec_driver_sql(driver_sql(conn, _DELETE_DAY), keys)  # few: no multi-row
        if self.merges:
            statement = _MERGE_DAY[conn.dialect.name == "mysql"]
            stamps = {day: _day_param(conn, day) for _, day, _ in self.merges}
            rows = [(cid, stamps[day], *values) for cid, day, values in self.merges]
            insert_many(conn, statement, rows)


def _aggregate(rows: Sequence[HourRow]) -> tuple[Any, ...]:
    """Aggregate hour rows of one channel and day (time order) as day-row values."""
    first, last = rows[0], rows[-1]
    if len(rows) == 1:
        return first[2:]
    consumption: float | None = None
    total: float | None = None
    low, high, count = first[3], first[4], 0
    for row in rows:
        step = row[2]
        if step is not None:
            consumption = step if consumption is None else consumption + step
        low = min(low, row[3])
        high = max(high, row[4])
        count += row[6]
        mean = row[5]
        if mean is not None:
            total = mean * row[6] if total is None else total + mean * row[6]
    mean_all = None if total is None else total / count
    return (consumption, low, high, mean_all, count, first[7], first[8], last[9], last[10])


def _reroll_hours(
    conn: Connection,
    window: _Window,
    ids: Sequence[int],
    *,
    indexes: set[int],
    fresh: Mapping[int, Sequence[Point]] | None,
    days: _Days,
) -> int:
    lo_us, hi_us = window.lo_us, window.hi_us
    if fresh is None and lo_us >= 0:  # SQL's % truncates: Python's floor for negative times
        return _reroll_hours_sql(conn, lo_us, hi_us, ids, indexes=indexes, days=days)
    return _reroll_hours_python(conn, lo_us, hi_us, ids, indexes=indexes, fresh=fresh, days=days)


def _reroll_hours_sql(
    conn: Connection,
    lo_us: int,
    hi_us: int,
    ids: Sequence[int],
    *,
    indexes: set[int],
    days: _Days,
) -> int:
    """Roll the window's hours in SQL; channels SQL does not roll go to Python.

    SQL rolls the hours of one counted reading (the rollup row is that reading, its step
    the one rule of :func:`step_consumption` without meter events: the same values as
    Python's, bit for bit). Python rolls the index channels with a meter event in reach
    (bridged steps) and the channels with an hour of several counted readings (sums whose
    value depends on the order of their terms: Python adds in time order).
    """
    index_ids = [cid for cid in ids if cid in indexes]
    broken: set[int] = set()
    if index_ids:
        rows = _run(conn, _BROKEN, (*index_ids, hi_us, lo_us), len(index_ids))
        broken = {int(cid) for (cid,) in rows}
    _run(conn, _DELETE_HOURS, (*ids, lo_us, hi_us), len(ids))
    written = 0
    plain_index = [cid for cid in index_ids if cid not in broken]
    gauges = [cid for cid in ids if cid not in indexes]
    sqlite = conn.dialect.name == "sqlite"
    if plain_index:
        params = (_NEAR_ZERO, 0.0, lo_us, *plain_index, lo_us, hi_us)
        statement = _ROLL_INDEX_HOURS_SQLITE if sqlite else _ROLL_INDEX_HOURS
        written += _rowcount(conn, statement, params, len(plain_index))
    if gauges:
        statement = _ROLL_GAUGE_HOURS_SQLITE if sqlite else _ROLL_GAUGE_HOURS
        written += _rowcount(conn, statement, (*gauges, lo_us, hi_us), len(gauges))
    rolled = sorted(plain_index + gauges)
    crowded: set[int] = set()
    if rolled:
        counted = _run(conn, _COUNTED, (*rolled, lo_us, hi_us), len(rolled))[0][0]
        if int(counted) != written:  # some hour holds several readings
            rows = _run(conn, _CROWDED, (*rolled, lo_us, hi_us), len(rolled))
            crowded = {int(cid) for (cid,) in rows}
    again = sorted(broken | crowded)
    if again:
        if crowded:  # their single-reading hours, rolled by SQL, are rolled again
            group = sorted(crowded)
            written -= _rowcount(conn, _DELETE_HOURS, (*group, lo_us, hi_us), len(group))
        written += _reroll_hours_python(
            conn, lo_us, hi_us, again, indexes=indexes, fresh=None, days=days
        )
    days.add(lo_us, hi_us, ids)
    return written


def _rowcount(conn: Connection, statement: str, params: Sequence[Any], n_ids: int) -> int:
    """Execute a driver-level statement; return the rows it changed."""
    sql = _render(statement, n_ids, conn.dialect.paramstyle == "qmark")
    return int(conn.exec_driver_sql(sql, tuple(params)).rowcount)


def _reroll_hours_python(
    conn: Connection,
    lo_us: int,
    hi_us: int,
    ids: Sequence[int],
    *,
    indexes: set[int],
    fresh: Mapping[int, Sequence[Point]] | None,
    days: _Days,
) -> int:
    """Roll the window's hours in Python from the readings read back (or ``fresh``)."""
    index_ids = [cid for cid in ids if cid in indexes]
    previous: dict[int, tuple[int, float]] = {}
    breaks: dict[int, list[MeterBreak]] = {}
    if index_ids:
        previous = _previous_counted(conn, lo_us, index_ids)
        after = min([at for at, _ in previous.values()], default=lo_us - 1)
        breaks = _breaks(conn, min(after, lo_us - 1), hi_us, index_ids)
    from_batch: set[int] = set()
    if fresh is not None:
        counts = _run(conn, _COUNTS, (*ids, lo_us, hi_us), len(ids))
        from_batch = {
            int(cid) for cid, stored in counts if int(stored) == len(fresh.get(int(cid), ()))
        }
    points: Mapping[int, Sequence[Point]] = {}
    others = [cid for cid in ids if cid not in from_batch]
    if others:
        points = _points(conn, lo_us, hi_us, others)
    rows: list[HourRow] = []
    no_breaks: list[MeterBreak] = []
    for cid in ids:
        from_fresh = cid in from_batch
        series = fresh.get(cid) if fresh is not None and from_fresh else points.get(cid)
        if not series:
            continue
        made = hour_rows(cid, series, cid in indexes, previous.get(cid), breaks.get(cid, no_breaks))
        rows.extend(made)
        if from_fresh:
            days.add_fresh(cid, lo_us, hi_us, made)
    days.add(lo_us, hi_us, [cid for cid in ids if cid not in from_batch])
    _run(conn, _DELETE_HOURS, (*ids, lo_us, hi_us), len(ids))
    insert_many(conn, _INSERT_HOUR, rows)
    return len(rows)


def reroll(engine: Engine | Connection, channel_id: int, start: datetime, end: datetime) -> int:
    """Recompute the rollups of one channel for readings changed in ``[start, end)``.

    Use it after changing readings or meter events by other means than
    :func:`wesh.hq.ingest.ingest` (which records its spans for :func:`refresh_rollups`).
    Returns the hour rows written.

    Raises:
        UsageError: naive or reversed bounds, or no such channel.
    """
    lo_us, hi_us = to_epoch_us(start), to_epoch_us(end)
    if hi_us < lo_us:
        raise UsageError(f"reroll: end {end.isoformat()} is before start {start.isoformat()}")
    if isinstance(engine, Connection):
        with translate_errors(engine.engine):
            return _reroll_one(engine, channel_id, lo_us, hi_us)
    with transaction(engine) as conn:
        return _reroll_one(conn, channel_id, lo_us, hi_us)


def _reroll_one(conn: Connection, channel_id: int, lo_us: int, hi_us: int) -> int:
    found = next(iter(_run(conn, _IS_INDEX, (channel_id,))), None)
    if found is None:
        raise UsageError(f"no channel with id {channel_id}", channel=str(channel_id))
    indexes = [channel_id] if found[0] else []
    return reroll_windows(conn, {channel_id: (lo_us, hi_us)}, index_channels=indexes)


# ----------------------------------------------------------------------------- lazy refresh
#
# Ingestion records the spans it touched in ``rollup_dirty`` (:func:`mark_dirty`, one row
# per channel and batch); :func:`refresh_rollups` re-rolls them later, in bounded
# transactions. Several refreshers may run at once: each deletes only the rows it read,
# and re-rolling a span twice gives the same rollups.

_INSERT_DIRTY = (
    "INSERT INTO rollup_dirty (first_channel_id, last_channel_id, start_at, end_at) "
    "VALUES (?, ?, ?, ?)"
)
_MAX_DIRTY = "SELECT MAX(id) FROM rollup_dirty"
_SELECT_DIRTY = (  # last id, highest channel id wanted, lowest channel id wanted
    "SELECT id, first_channel_id, last_channel_id, start_at, end_at FROM rollup_dirty "
    "WHERE id <= ? AND first_channel_id <= ? AND last_channel_id >= ? "
    "ORDER BY first_channel_id, id"
)
_SELECT_DIRTY_ALL = (  # last id, limit; by channel: a batch takes a channel's spans together
    "SELECT id, first_channel_id, last_channel_id, start_at, end_at FROM rollup_dirty "
    "WHERE id <= ? ORDER BY first_channel_id, id LIMIT ?"
)
_DELETE_DIRTY = "DELETE FROM rollup_dirty WHERE id IN (#IDS#)"
_INDEX_OF = "SELECT id, is_index FROM channel WHERE id IN (#IDS#)"
#: Dirty rows handled per refresh transaction.
REFRESH_BATCH: Final = 2000
#: Spans of one channel closer than this are re-rolled as one span.
_MERGE_GAP_US: Final = 24 * HOUR_US
_REFRESH_ATTEMPTS: Final = 3


def mark_dirty(conn: Connection, spans: Mapping[int, tuple[int, int]]) -> int:
    """Record that the rollups of each channel's span ``[lo_us, hi_us)`` are stale.

    Spans are widened to whole hours (re-rolls work by hour); channels with the same span
    and consecutive ids share one row. Inside the caller's transaction (the ingest
    batch's); returns the rows written.
    """
    by_span: dict[tuple[int, int], list[int]] = defaultdict(list)
    for cid, (lo, hi) in spans.items():
        by_span[lo - lo % HOUR_US, _hour_ceil(max(hi, lo + 1))].append(cid)
    rows: list[tuple[int, int, int, int]] = []
    for (lo, hi), ids in by_span.items():
        ids.sort()
        first = last = ids[0]
        for cid in ids[1:]:
            if cid != last + 1:
                rows.append((first, last, lo, hi))
                first = cid
            last = cid
        rows.append((first, last, lo, hi))
    rows.sort()
    return insert_many(conn, _INSERT_DIRTY, rows)


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge spans that overlap or lie less than :data:`_MERGE_GAP_US` apart (sorted out)."""
    spans.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + _MERGE_GAP_US:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _rounds(rows: Iterable[tuple[int, int, int, int]]) -> list[dict[int, tuple[int, int]]]:
    """Merge dirty spans per channel; return rounds of at most one span per channel.

    ``rows`` are (first channel, last channel, lo, hi). Spans of a channel that overlap or
    are less than a day apart merge into one; spans further apart stay separate (a late
    reading months back does not re-roll the months between), the k-th span of every
    channel going to the k-th round. The spans of a run of channels are merged once for
    the run (merging is the same whether it starts from runs or from channels: the merged
    spans are the connected groups of the spans stretched by the gap).
    """
    by_run: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for first, last, lo, hi in rows:
        by_run[int(first), int(last)].append((int(lo), int(hi)))
    per_channel: dict[int, list[tuple[int, int]]] = {}
    shared: set[int] = set()  # channels in several runs: merged again
    for (first, last), spans in by_run.items():
        merged = _merge_spans(spans)
        for cid in range(first, last + 1):
            found = per_channel.get(cid)
            if found is None:
                per_channel[cid] = merged
            else:
                per_channel[cid] = found + merged
                shared.add(cid)
    for cid in shared:
        per_channel[cid] = _merge_spans(per_channel[cid])
    rounds: list[dict[int, tuple[int, int]]] = []
    for cid, merged in per_channel.items():
        for position, span in enumerate(merged):
            if position == len(rounds):
                rounds.append({})
            rounds[position][cid] = span
    return rounds


Dirty = tuple[int, int, int, int, int]  # id, first channel, last channel, lo, hi


def _refresh_batch(conn: Connection, rows: Sequence[Dirty]) -> None:
    """Re-roll the spans of ``rows`` and delete those rows."""
    rounds = _rounds(row[1:] for row in rows)
    channels = sorted(rounds[0]) if rounds else []
    indexes: set[int] = set()
    for chunk in _chunks(channels, _CHUNK):
        for cid, is_index in _run(conn, _INDEX_OF, chunk, len(chunk)):
            if is_index:
                indexes.add(int(cid))
    for spans in rounds:
        reroll_windows(conn, spans, index_channels=indexes & set(spans))
    ids = [int(row[0]) for row in rows]
    for chunk in _chunks(ids, _CHUNK):
        _run(conn, _DELETE_DIRTY, chunk, len(chunk))


def _pending(
    conn: Connection, last_id: int, channels: Sequence[int] | None, size: int
) -> list[Dirty]:
    if channels is None:
        return [tuple(row) for row in _run(conn, _SELECT_DIRTY_ALL, (last_id, size))]
    wanted = set(channels)
    rows = _run(conn, _SELECT_DIRTY, (last_id, channels[-1], channels[0]))
    found = [
        tuple(row)
        for row in rows
        if any(cid in wanted for cid in range(int(row[1]), int(row[2]) + 1))
    ]
    return found[:size]


def refresh_rollups(
    engine: Engine,
    *,
    limit: int | None = None,
    channels: Iterable[int] | None = None,
    batch_size: int = REFRESH_BATCH,
) -> int:
    """Re-roll the stale spans recorded by ingestion and clear them; return rows cleared.

    Args:
        engine: the HQ store.
        limit: most dirty rows to handle (``None``: every row present when the call starts;
            rows added meanwhile wait for the next call).
        channels: only these channels' rows (a query's scope); ``None``: every channel.
        batch_size: dirty rows per transaction.

    Safe to run from several processes at once: a batch re-rolled twice writes the same
    rollups, and a batch that collides with a concurrent one is retried.

    Raises:
        UsageError: ``limit`` < 0 or ``batch_size`` < 1.
        TransientError, ConnectionFailed: the database failed (batches committed stay done).
    """
    if limit is not None and limit < 0:
        raise UsageError(f"limit must not be negative, not {limit}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, not {batch_size}")
    wanted = None if channels is None else sorted(set(channels))
    if wanted is not None and not wanted:
        return 0
    cleared = 0
    last: int | None = None  # the largest id when the call starts (read in the first batch)
    while limit is None or cleared < limit:
        size = batch_size if limit is None else min(batch_size, limit - cleared)
        rows: list[Dirty] = []
        for attempt in range(1, _REFRESH_ATTEMPTS + 1):
            try:
                with transaction(engine) as conn:
                    if last is None:
                        found = next(iter(_run(conn, _MAX_DIRTY, ())))[0]
                        last = -1 if found is None else int(found)
                    rows = _pending(conn, last, wanted, size) if last >= 0 else []
                    if rows:
                        _refresh_batch(conn, rows)
                break
            except TransientError:
                if attempt == _REFRESH_ATTEMPTS:
                    raise
                _LOG.info("Rollups: refresh batch collided (attempt %d); retrying", attempt)
        cleared += len(rows)
        if len(rows) < size:  # every row up to ``last`` is done: no pass to find none
            break
    if cleared:
        _LOG.debug("Rollups: refreshed %d stale spans", cleared)
    return cleared
