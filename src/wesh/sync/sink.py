"""The hand-over from the sync receiver to headquarters' store.

The receiver decodes packets into :class:`SyncReading`, :class:`SyncAlarm` and
:class:`SiteStatus` and hands them to a :class:`ReadingSink`. Headquarters implements
the protocol on its SQL schema (``wesh.hq.ingest.HqSink``); :class:`SqliteSink` here is
a minimal implementation on one local SQLite file, for tests and the demo.

A sink must be **idempotent**: the receiver delivers at least once (a crash between the
sink's commit and the receiver's own bookkeeping repeats a hand-over), so the same
reading given twice is counted as a duplicate and stored once. The identity of a reading
is ``(site, box, path, at, aggregate)``.

``SqliteSink`` schema::

    sink_readings (site, box, path, at_ms, aggregate, value, unit, kind, quality)
                  PRIMARY KEY (site, box, path, at_ms, aggregate)   WITHOUT ROWID
    sink_alarms   (id PK, site, box, channel, at_ms, kind, severity, message)
                  UNIQUE (site, box, channel, at_ms, kind, message)  ('' for None)
    sink_status   (site, at_ms, boxes_up, boxes_down, queue_depth, sms_sent_today,
                   sms_budget, modem_signal_pct, clock_offset_s)  PRIMARY KEY (site, at_ms)

``value`` has no declared type, so an integer index stays an integer and a float stays
a float: what comes out compares exactly with what went in.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, get_args, runtime_checkable

from wesh.errors import ConfigError, TransientError, UsageError

__all__ = [
    "IngestResult",
    "ReadingKind",
    "ReadingQuality",
    "ReadingSink",
    "SiteStatus",
    "SqliteSink",
    "SyncAlarm",
    "SyncReading",
    "reading_problem",
]

_LOG = logging.getLogger(__name__)

ReadingKind = Literal["index", "gauge"]
ReadingQuality = Literal["measured", "estimated", "suspect"]
ReadingAggregate = Literal["sample", "hour_mean", "hour_last"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = frozenset(get_args(ReadingKind))
_QUALITIES = frozenset(get_args(ReadingQuality))
_AGGREGATES = frozenset(get_args(ReadingAggregate))


@dataclass(frozen=True, slots=True)
class SyncReading:
    """One reading as headquarters receives it.

    Attributes:
        site: site id (weshd's ``[site] id``), e.g. ``"res-les-tilleuls-b1"``.
        box: box id in that site's weshd configuration, e.g. ``"dw-12"``.
        path: reading path, e.g. ``"impulsion.2.index"``, ``"temp.1"``.
        at: the reading's time, aware UTC (hour start for hourly aggregates).
        value: index channels: the absolute index; gauges: the value.
        unit: ``"Wh"``, ``"L"``, ``"°C"``, ``"%"``, ``"A"``, ``"V"``, ``"VA"`` or ``None``.
        kind: ``"index"`` or ``"gauge"``.
        quality: ``"measured"``, ``"estimated"`` or ``"suspect"``.
        aggregate: ``"sample"``, ``"hour_mean"`` or ``"hour_last"``.
    """

    site: str
    box: str
    path: str
    at: datetime
    value: int | float
    unit: str | None
    kind: ReadingKind
    quality: ReadingQuality
    aggregate: ReadingAggregate = "sample"


@dataclass(frozen=True, slots=True)
class SyncAlarm:
    """An alarm raised at a site (an ALARM packet's content)."""

    site: str
    box: str | None
    channel: str | None
    at: datetime
    kind: str
    severity: str
    message: str


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """A site's health report (a STATUS packet's content)."""

    site: str
    at: datetime
    boxes_up: int
    boxes_down: int
    queue_depth: int
    sms_sent_today: int
    sms_budget: int
    modem_signal_pct: int | None
    clock_offset_s: float | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a sink did with a batch of readings.

    Attributes:
        inserted: new rows.
        duplicates: already present (an idempotent re-send).
        rejected: refused (unknown channel, invalid value...), each logged with a reason.
    """

    inserted: int
    duplicates: int
    rejected: int

    def __add__(self, other: IngestResult) -> IngestResult:
        """Sum two results (batches handed over one after the other)."""
        return IngestResult(
            self.inserted + other.inserted,
            self.duplicates + other.duplicates,
            self.rejected + other.rejected,
        )


@runtime_checkable
class ReadingSink(Protocol):
    """What the HQ receiver hands decoded data to (idempotent, see the module docstring)."""

    def ingest(self, readings: Sequence[SyncReading]) -> IngestResult:
        """Store readings idempotently; count inserted, duplicate and rejected ones."""
        ...

    def ingest_alarm(self, alarm: SyncAlarm) -> None:
        """Store an alarm (idempotently)."""
        ...

    def ingest_status(self, status: SiteStatus) -> None:
        """Record a site's status report."""
        ...


def reading_problem(reading: SyncReading) -> str | None:
    """Say why a reading cannot be stored, or ``None`` if it can (pure, shared by sinks)."""
    if not reading.site or not reading.box or not reading.path:
        return "empty site, box or path"
    if reading.at.tzinfo is None or reading.at.utcoffset() is None:
        return "naive timestamp"
    if isinstance(reading.value, bool) or not isinstance(reading.value, int | float):
        return f"value of type {type(reading.value).__name__}"
    if isinstance(reading.value, float) and not math.isfinite(reading.value):
        return "value not finite"
    if isinstance(reading.value, int) and not -(2**63) <= reading.value < 2**63:
        return "integer beyond 64 bits"
    if reading.kind not in _KINDS:
        return f"unknown kind {reading.kind!r}"
    if reading.quality not in _QUALITIES:
        return f"unknown quality {reading.quality!r}"
    if reading.aggregate not in _AGGREGATES:
        return f"unknown aggregate {reading.aggregate!r}"
    return None


def _to_ms(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError("naive datetime given to the sink", where="sink")
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _from_ms(at_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=at_ms)


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sink_readings (site TEXT NOT NULL, box TEXT NOT NULL, "
    "path TEXT NOT NULL, at_ms INTEGER NOT NULL, aggregate TEXT NOT NULL, value NOT NULL, "
    "unit TEXT, kind TEXT NOT NULL, quality TEXT NOT NULL, "
    "PRIMARY KEY (site, box, path, at_ms, aggregate)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS sink_alarms (id INTEGER PRIMARY KEY, site TEXT NOT NULL, "
    "box TEXT NOT NULL, channel TEXT NOT NULL, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, "
    "severity TEXT NOT NULL, message TEXT NOT NULL, "
    "UNIQUE (site, box, channel, at_ms, kind, message))",
    "CREATE TABLE IF NOT EXISTS sink_status (site TEXT NOT NULL, at_ms INTEGER NOT NULL, "
    "boxes_up INTEGER NOT NULL, boxes_down INTEGER NOT NULL, queue_depth INTEGER NOT NULL, "
    "sms_sent_today INTEGER NOT NULL, sms_budget INTEGER NOT NULL, modem_signal_pct INTEGER, "
    "clock_offset_s REAL, PRIMARY KEY (site, at_ms)) WITHOUT ROWID",
)


class SqliteSink:
    """A :class:`ReadingSink` on one SQLite file (tests and the demo; thread-safe).

    Args:
        path: the database file (created with its directory), or ``":memory:"``.
    """

    def __init__(self, path: Path | str) -> None:
        self._where = str(path)
        self._mutex = threading.Lock()
        self._warned: set[str] = set()
        try:
            if self._where != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self._where, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            if self._where != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")  # stored = may be acknowledged
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the sink database: {exc}", where=self._where) from exc
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            if self._closed:
                raise UsageError("the sink is closed", where=self._where)
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise TransientError(f"{action} failed: {exc}", where=self._where) from exc

    # ------------------------------------------------------------------ ReadingSink

    def ingest(self, readings: Sequence[SyncReading]) -> IngestResult:
        """Store readings in one transaction; duplicates are counted, not stored again."""
        rows: list[tuple[object, ...]] = []
        rejected = 0
        for reading in readings:
            problem = reading_problem(reading)
            if problem is not None:
                rejected += 1
                key = f"{reading.site}/{reading.box}/{reading.path}"
                if key not in self._warned:
                    self._warned.add(key)
                    _LOG.warning("Sink: reading of %s rejected: %s", key, problem)
                continue
            rows.append(
                (
                    reading.site,
                    reading.box,
                    reading.path,
                    _to_ms(reading.at),
                    reading.aggregate,
                    reading.value,
                    reading.unit,
                    reading.kind,
                    reading.quality,
                )
            )
        if not rows:
            return IngestResult(0, 0, rejected)
        with self._transaction("storing readings") as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO sink_readings (site, box, path, at_ms, aggregate, value, "
                "unit, kind, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            inserted = conn.total_changes - before
        return IngestResult(inserted, len(rows) - inserted, rejected)

    def ingest_alarm(self, alarm: SyncAlarm) -> None:
        """Store an alarm once (the same alarm again is ignored)."""
        with self._transaction("storing an alarm") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sink_alarms (site, box, channel, at_ms, kind, severity, "
                "message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    alarm.site,
                    alarm.box or "",
                    alarm.channel or "",
                    _to_ms(alarm.at),
                    alarm.kind,
                    alarm.severity,
                    alarm.message,
                ),
            )

    def ingest_status(self, status: SiteStatus) -> None:
        """Record a status report (the same report again replaces itself)."""
        with self._transaction("storing a status") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sink_status (site, at_ms, boxes_up, boxes_down, "
                "queue_depth, sms_sent_today, sms_budget, modem_signal_pct, clock_offset_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    status.site,
                    _to_ms(status.at),
                    status.boxes_up,
                    status.boxes_down,
                    status.queue_depth,
                    status.sms_sent_today,
                    status.sms_budget,
                    status.modem_signal_pct,
                    status.clock_offset_s,
                ),
            )

    # ------------------------------------------------------------------ queries

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            if self._closed:
                raise UsageError("the sink is closed", where=self._where)
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise TransientError(f"query failed: {exc}", where=self._where) from exc

    def count(self, *, site: str | None = None) -> int:
        """Return how many readings are stored (of one site, or all)."""
        if site is None:
            rows = self._query("SELECT count(*) FROM sink_readings")
        else:
            rows = self._query("SELECT count(*) FROM sink_readings WHERE site = ?", (site,))
        return int(rows[0][0])

    def readings(self, *, site: str | None = None) -> list[SyncReading]:
        """Return the stored readings (of one site, or all), in key order."""
        sql = (
            "SELECT site, box, path, at_ms, value, unit, kind, quality, aggregate "
            "FROM sink_readings"
        )
        params: tuple[object, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            params = (site,)
        return [
            SyncReading(
                site=str(row[0]),
                box=str(row[1]),
                path=str(row[2]),
                at=_from_ms(int(row[3])),
                value=row[4],
                unit=None if row[5] is None else str(row[5]),
                kind=row[6],
                quality=row[7],
                aggregate=row[8],
            )
            for row in self._query(sql + " ORDER BY site, box, path, at_ms, aggregate", params)
        ]

    def alarms(self, *, site: str | None = None) -> list[SyncAlarm]:
        """Return the stored alarms (of one site, or all), in arrival order."""
        sql = "SELECT site, box, channel, at_ms, kind, severity, message FROM sink_alarms"
        params: tuple[object, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            params = (site,)
        return [
            SyncAlarm(
                site=str(row[0]),
                box=str(row[1]) or None,
                channel=str(row[2]) or None,
                at=_from_ms(int(row[3])),
                kind=str(row[4]),
                severity=str(row[5]),
                message=str(row[6]),
            )
            for row in self._query(sql + " ORDER BY id", params)
        ]

    def statuses(self, *, site: str | None = None) -> list[SiteStatus]:
        """Return the stored status reports (of one site, or all), oldest first."""
        sql = (
            "SELECT site, at_ms, boxes_up, boxes_down, queue_depth, sms_sent_today, sms_budget, "
            "modem_signal_pct, clock_offset_s FROM sink_status"
        )
        params: tuple[object, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            params = (site,)
        return [
            SiteStatus(
                site=str(row[0]),
                at=_from_ms(int(row[1])),
                boxes_up=int(row[2]),
                boxes_down=int(row[3]),
                queue_depth=int(row[4]),
                sms_sent_today=int(row[5]),
                sms_budget=int(row[6]),
                modem_signal_pct=None if row[7] is None else int(row[7]),
                clock_offset_s=None if row[8] is None else float(row[8]),
            )
            for row in self._query(sql + " ORDER BY at_ms, site", params)
        ]
