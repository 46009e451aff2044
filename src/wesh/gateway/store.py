"""weshd's durable local store: one SQLite file in WAL mode.

What it keeps: every sample (``readings``), the last value of each channel (``latest``),
box up/down edges (``box_status_history``) and current status (``box_state``), gateway
events, and the **outbound queue** the sync agent drains towards headquarters::

    add_samples ──one transaction──▶ readings + latest + outbound(seq, reading_id)
    add_event   ──one transaction──▶ events  (+ outbound(seq, event_id) if queued severity)
    sync agent: pending()/pending_events() ──send──▶ acknowledge(upto_seq | seqs)
    prune(now): acknowledged queue rows, old readings (never queued ones), old events

Durability: WAL with ``synchronous=NORMAL`` by default. A committed transaction survives
``kill -9`` of the process (it is in the WAL, in the OS cache); a power cut may lose the
transactions since the last WAL sync (never corrupts). ``durability="full"`` fsyncs the
WAL on every commit (one fsync per poll batch) and survives power cuts too.

Disk full (``SQLITE_FULL`` or ``ENOSPC``): writes go to a bounded in-memory buffer, in
order; the store is ``degraded`` and raises nothing; a ``disk_full`` event is buffered
once; every later call (at most once per ``retry_interval_s``) tries to flush the
buffer; on success ``disk_ok`` is written. When the buffer is over its cap, the oldest
gauges are dropped first (then states/texts, then indexes, then events), counted and
reported in an event. Data loss is never silent.

Concurrency: one Store (one writer connection) per file, enforced with a lock file. Every
method is short, synchronous and guarded by a lock, so the daemon may call it from the
event loop or through :func:`asyncio.to_thread`. A sync agent in another process opens
the queue alone with :meth:`Store.open_queue` (a :class:`QueueClient`: no lock, its own
connection, acknowledgements only). See ``docs/weshd-store.md``.

Modules: this one holds the :class:`Store` (opening, writing, the disk-full buffer's
handling, the queue cap, retention); ``store_open`` the lock file, connection and
migrations; ``store_queue`` the :class:`QueueClient`; ``store_read`` the read queries;
``store_buffer`` the memory buffer; ``store_rows`` what the Store and the queue client
share; ``store_schema`` the DDL and value codecs. Every public name is importable from
here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self, cast

from wesh.errors import ConfigError, UsageError, WeshError
from wesh.gateway.channels import (
    QUEUED_EVENT_KINDS,
    GatewayEvent,
    Sample,
)
from wesh.gateway.store_buffer import _Buffer, _EventOp, _Op, _Row, _SamplesOp, _StatusOp
from wesh.gateway.store_open import Durability, connect_writer, is_disk_full, lock_file
from wesh.gateway.store_queue import QueueClient
from wesh.gateway.store_read import (
    query_events,
    query_history,
    query_latest,
    query_latest_one,
    stored_sample,
)
from wesh.gateway.store_rows import (
    _COUNT_PENDING,
    _PENDING_EVENTS,
    _PENDING_READINGS,
    _ack_rows,
    _ack_wanted,
    _check_limit,
    _event_of,
    _Key,
    _translate,
    _utc_now,
)
from wesh.gateway.store_schema import (
    DROP_RANK,
    MAX_TEXT_CHARS,
    QUALITY_CODES,
    encode_value,
    from_ms,
    to_ms,
)

__all__ = ["BoxStatusRow", "Durability", "QueueClient", "RetentionPolicy", "Store", "StoreStats"]

_LOG = logging.getLogger(__name__)

#: kind of the event that reports dropped data (queue cap or memory buffer cap)
_DROP_EVENT_KIND: Final = "data_dropped"
_MAX_ERROR_CHARS: Final = 500
_MAX_MESSAGE_CHARS: Final = 2000
_MAX_EVENT_DATA_CHARS: Final = 16_000
#: units (samples, events, edges) written per flush transaction and per call
_FLUSH_TX_UNITS: Final = 5_000
_FLUSH_CALL_UNITS: Final = 20_000
#: bounded set of channels already warned about (avoid one warning per poll)
_MAX_WARNED: Final = 1_000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long data is kept and how large the outbound queue may grow.

    Args:
        retention_days: readings older than this are pruned (unless still queued).
        events_retention_days: events and box status edges older than this are pruned
            (unless still queued).
        queue_max_rows: unacknowledged queue rows beyond this are dropped, oldest
            gauges first, never indexes nor queued events.
        prune_batch_rows: the most rows :meth:`Store.prune` deletes per table per call.
    """

    retention_days: float = 400
    events_retention_days: float = 400
    queue_max_rows: int = 5_000_000
    prune_batch_rows: int = 5_000

    def __post_init__(self) -> None:
        for name in ("retention_days", "events_retention_days", "queue_max_rows"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be positive", where=f"RetentionPolicy.{name}")
        if self.prune_batch_rows < 1:
            raise UsageError("prune_batch_rows must be >= 1", where="RetentionPolicy")


@dataclass(frozen=True, slots=True)
class BoxStatusRow:
    """Current status of one box as last recorded.

    ``since`` is the instant of the last up/down edge, ``last_ok`` the last successful
    poll, ``last_error`` the error of the last failed poll (kept after recovery).
    """

    box: str
    up: bool
    since: datetime
    last_ok: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """A snapshot of the store for metrics and health.

    ``rows`` counts stored readings; ``db_bytes`` is the size of the database and WAL
    files; ``queue_depth`` the unacknowledged queue rows; ``buffered`` the samples and
    events held in memory while ``degraded`` (disk full); ``dropped`` the samples and
    events dropped since the store was opened (queue cap or buffer cap).
    """

    rows: int
    db_bytes: int
    queue_depth: int
    oldest_pending_at: datetime | None
    last_write_at: datetime | None
    degraded: bool
    buffered: int
    dropped: int = 0


@dataclass(slots=True)
class _BoxState:
    up: bool
    since_ms: int
    last_ok_ms: int | None
    last_error: str | None
    updated_ms: int


@dataclass(slots=True)
class _Tx:
    """What a write transaction changed; applied to the caches after COMMIT only."""

    written: int = 0
    rows: int = 0
    depth: int = 0
    dropped: int = 0
    last_reading_id: int = 0
    new_channels: dict[_Key, int] = field(default_factory=dict)


class _DiskFullError(Exception):
    """Internal: a write failed because the disk (or the size cap) is full."""


_INSERT_READING: Final = (
    "INSERT INTO readings (id, channel_id, at_ms, value, is_bool, quality, box_time_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUEUED_READING: Final = "INSERT INTO outbound (reading_id, drop_rank) VALUES (?, ?)"
_UPSERT_LATEST: Final = (
    "INSERT INTO latest (channel, box, channel_id, at_ms, value, is_bool, quality, box_time_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (channel) DO UPDATE SET box = excluded.box, channel_id = excluded.channel_id, "
    "at_ms = excluded.at_ms, value = excluded.value, is_bool = excluded.is_bool, "
    "quality = excluded.quality, box_time_ms = excluded.box_time_ms "
    "WHERE excluded.at_ms >= latest.at_ms"
)
_UPSERT_BOX_STATE: Final = (
    "INSERT INTO box_state (box, up, since_ms, last_ok_ms, last_error, updated_ms) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (box) DO UPDATE SET up = excluded.up, since_ms = excluded.since_ms, "
    "last_ok_ms = excluded.last_ok_ms, last_error = excluded.last_error, "
    "updated_ms = excluded.updated_ms"
)


class Store:
    """The durable local store of weshd (module docstring; ``docs/weshd-store.md``).

    Open it with :meth:`open`; close it with :meth:`close` (or use it as a context
    manager). All methods are thread-safe.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: IO[bytes],
        *,
        path: Path,
        retention: RetentionPolicy,
        clock: Callable[[], datetime],
        buffer_max_units: int,
        retry_interval_s: float,
        queued_severities: frozenset[str],
    ) -> None:
        """Use :meth:`Store.open`."""
        self._conn = conn
        self._lock_handle = lock
        self._path = path
        self._where = str(path)
        self._retention = retention
        self._clock = clock
        self._retry_interval = timedelta(seconds=retry_interval_s)
        self._queued_severities = queued_severities
        self._mutex = threading.RLock()
        self._closed = False
        self._channel_ids: dict[_Key, int] = {}
        self._keys_by_id: dict[int, _Key] = {}
        self._ids_by_channel: dict[str, list[int]] = {}
        self._boxes: dict[str, _BoxState] = {}
        self._dirty_boxes: set[str] = set()
        self._buffer = _Buffer(buffer_max_units)
        self._disk_full_since: datetime | None = None
        self._next_retry_at: datetime | None = None
        self._max_reading_id = 0
        self._rows = 0
        self._queue_depth = 0
        #: ``PRAGMA data_version`` when ``_queue_depth`` was last counted (see
        #: :meth:`_sync_queue_depth`)
        self._data_version = 0
        self._last_write_at: datetime | None = None
        self._dropped_total = 0
        self._drops_unreported: dict[str, int] = {}
        self._drops_reported_at: datetime | None = None
        self._queue_stuck_warned = False
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
        durability: Durability = "normal",
        max_db_bytes: int | None = None,
        buffer_max_samples: int = 100_000,
        retry_interval_s: float = 5.0,
        busy_timeout_s: float = 5.0,
        queued_severities: Iterable[str] = ("alarm",),
    ) -> Store:
        """Open (creating or migrating) the store at ``path``.

        Args:
            path: the database file; its directory is created if missing.
            retention: retention and queue cap (defaults of :class:`RetentionPolicy`).
            clock: wall clock (UTC, aware); drives acknowledgement times, retry pacing
                and ``last_write_at``.
            durability: ``"normal"`` (safe against process kill) or ``"full"`` (also
                against power loss, one fsync per transaction).
            max_db_bytes: cap on the database size; reaching it behaves like a full
                disk (see :meth:`set_max_db_bytes`).
            buffer_max_samples: how many samples (and events) the memory buffer holds
                while the disk is full.
            retry_interval_s: how often a degraded store retries writing.
            busy_timeout_s: how long to wait for a lock held by another connection.
            queued_severities: event severities that also go to the outbound queue.

        Raises:
            ConfigError: the path cannot be opened, the store is already open, or its
                schema version is newer than this code.
            BadInputError: the file is not a weshd store.
        """
        if durability not in ("normal", "full"):
            raise UsageError(f"durability must be 'normal' or 'full', not {durability!r}")
        if buffer_max_samples < 1 or retry_interval_s < 0 or busy_timeout_s < 0:
            raise UsageError("buffer_max_samples, retry_interval_s, busy_timeout_s out of range")
        where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the store directory: {exc}", where=where) from exc
        lock = lock_file(path)
        try:
            conn = connect_writer(path, durability=durability, busy_timeout_s=busy_timeout_s)
        except BaseException:
            lock.close()
            raise
        store = cls(
            conn,
            lock,
            path=path,
            retention=retention or RetentionPolicy(),
            clock=clock,
            buffer_max_units=buffer_max_samples,
            retry_interval_s=retry_interval_s,
            queued_severities=frozenset(queued_severities),
        )
        try:
            store._load()
            if max_db_bytes is not None:
                store.set_max_db_bytes(max_db_bytes)
        except BaseException:
            conn.close()
            lock.close()
            raise
        return store

    @staticmethod
    def open_queue(
        path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout_s: float = 1.0,
        ack_attempts: int = 3,
        ack_backoff_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> QueueClient:
        """Open the outbound queue of a store that weshd (another process) may hold open.

        Takes no writer lock, never creates nor migrates the file: see
        :class:`QueueClient` and :meth:`QueueClient.open` (same arguments).
        """
        return QueueClient.open(
            path,
            clock=clock,
            busy_timeout_s=busy_timeout_s,
            ack_attempts=ack_attempts,
            ack_backoff_s=ack_backoff_s,
            sleep=sleep,
        )

    def _load(self) -> None:
        conn = self._conn
        for cid, *key in conn.execute(
            "SELECT id, channel, box, path, unit, kind, meaning, label FROM channels ORDER BY id"
        ):
            self._remember_channel(_Key(*key), cid)
        for box, up, since_ms, last_ok_ms, last_error, updated_ms in conn.execute(
            "SELECT box, up, since_ms, last_ok_ms, last_error, updated_ms FROM box_state"
        ):
            self._boxes[box] = _BoxState(bool(up), since_ms, last_ok_ms, last_error, updated_ms)
        # reading ids are consecutive and retention deletes a prefix: no count(*) needed
        # (two queries: SQLite optimises min() and max() only one at a time)
        low = conn.execute("SELECT min(id) FROM readings").fetchone()[0]
        high = conn.execute("SELECT max(id) FROM readings").fetchone()[0]
        self._rows = high - low + 1 if high is not None else 0
        self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        self._queue_depth = conn.execute(_COUNT_PENDING).fetchone()[0]
        top_reading = high or 0
        top_queued = conn.execute(
            "SELECT reading_id FROM outbound WHERE reading_id IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._max_reading_id = max(top_reading, top_queued[0] if top_queued else 0)

    def close(self) -> None:
        """Try a last flush of the memory buffer, persist box status, close the file.

        Samples still buffered (disk still full) are lost; that is logged at ERROR.
        """
        with self._mutex:
            if self._closed:
                return
            try:
                try:
                    if self._buffer:
                        self._next_retry_at = None
                        self._flush_buffer()
                    self._report_drops(force=True)
                    if self._dirty_boxes and not self._buffer:
                        self._write([])
                except (_DiskFullError, WeshError) as exc:
                    _LOG.warning("Store: last writes at close failed: %s", exc)
                if self._buffer:
                    _LOG.error(
                        "Store closed with %d unwritten samples/events in memory (disk full)",
                        self._buffer.units,
                    )
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
            finally:
                self._closed = True
                self._conn.close()
                self._lock_handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set_max_db_bytes(self, max_db_bytes: int | None) -> None:
        """Cap the database size (``PRAGMA max_page_count``); ``None`` lifts the cap.

        Reaching the cap behaves exactly like a full disk (buffer, ``disk_full`` event),
        which protects an SD card shared with the system and lets tests simulate a full
        disk deterministically. The cap never goes below the current size.
        """
        with self._guard():
            page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
            pages = 2**31 - 2 if max_db_bytes is None else max(1, max_db_bytes // page_size)
            self._conn.execute(f"PRAGMA max_page_count = {int(pages)}")

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        with self._mutex:
            if self._closed:
                raise UsageError("the store is closed", where=self._where)
            yield

    # ------------------------------------------------------------------ writing

    def add_samples(self, samples: Sequence[Sample]) -> int:
        """Store samples in one transaction: readings, latest values and queue rows.

        Invalid samples (naive time, NaN, unknown kind or quality, integer beyond 64 bits)
        are skipped with a warning; the others are stored. While the disk is full the
        samples are kept in memory (see the module docstring) and nothing is raised.

        Returns:
            the readings written to the database by this call, including buffered ones
            flushed now (0 when the samples were buffered).

        Raises:
            TransientError: the database is locked or failing for another reason than
                a full disk (the samples are not kept; the caller may retry).
        """
        with self._guard():
            rows = [row for row in map(self._encode, samples) if row is not None]
            written = self._submit(_SamplesOp(rows)) if rows else self._flush_buffer()
            self._report_drops()
            return written

    def add_event(self, event: GatewayEvent) -> int:
        """Store one event; queue it for the sync agent if its severity is queued.

        Returns:
            the event id (0 when the event was buffered because the disk is full).

        Raises:
            UsageError: ``event.at`` is naive.
            TransientError: the database is failing for another reason than a full disk.
        """
        with self._guard():
            self._check_aware(event.at, "event.at")
            op = _EventOp(event)
            self._submit(op)
            self._report_drops()
            return op.event_id

    def set_box_status(self, box: str, *, up: bool, at: datetime, error: str | None) -> None:
        """Record the outcome of a poll of ``box``.

        An up/down change (or the first status of a box) appends a history row at once;
        other calls only update ``last_ok``/``last_error``, persisted with the next write.

        Raises:
            UsageError: ``at`` is naive.
        """
        with self._guard():
            at_ms = to_ms(self._check_aware(at, "at"))
            error = error[:_MAX_ERROR_CHARS] if error is not None else None
            state = self._boxes.get(box)
            edge = state is None or state.up != up
            if state is None or edge:
                last_ok = state.last_ok_ms if state else None
                last_error = state.last_error if state else None
                state = _BoxState(up, at_ms, last_ok, last_error, at_ms)
                self._boxes[box] = state
            if up:
                state.last_ok_ms = max(at_ms, state.last_ok_ms or at_ms)
            else:
                state.last_error = error
            state.updated_ms = at_ms
            self._dirty_boxes.add(box)
            if edge:
                self._submit(_StatusOp(box, at_ms, up, error if not up else None))

    def flush(self) -> int:
        """Retry writing the memory buffer now (ignoring the retry pacing).

        Returns:
            the readings written.
        """
        with self._guard():
            self._next_retry_at = None
            return self._flush_buffer()

    def _check_aware(self, at: datetime, name: str) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise UsageError(f"{name} must be timezone-aware", where=name)
        return at

    def _warn_once(self, channel: str, message: str, *args: object) -> None:
        if channel in self._warned:
            return
        if len(self._warned) < _MAX_WARNED:
            self._warned.add(channel)
        _LOG.warning(message, *args)

    def _encode(self, sample: Sample) -> _Row | None:
        """Validate and encode one sample; ``None`` (logged) when it cannot be stored."""
        channel = sample.channel
        try:
            at_ms = to_ms(sample.at)
        except ValueError:
            self._warn_once(channel, "Store: skipping sample of %s: naive timestamp", channel)
            return None
        try:
            value, is_bool = encode_value(sample.value)
        except ValueError as exc:
            self._warn_once(channel, "Store: skipping sample of %s: %s", channel, exc)
            return None
        if sample.kind not in DROP_RANK or sample.quality not in QUALITY_CODES:
            self._warn_once(
                channel,
                "Store: skipping sample of %s: kind %r or quality %r unknown",
                channel,
                sample.kind,
                sample.quality,
            )
            return None
        if isinstance(sample.value, str) and len(sample.value) > MAX_TEXT_CHARS:
            self._warn_once(channel, "Store: text of %s cut to %d chars", channel, MAX_TEXT_CHARS)
        box_time_ms: int | None = None
        if sample.box_time is not None:
            try:
                box_time_ms = to_ms(sample.box_time)
            except ValueError:
                self._warn_once(channel, "Store: naive box_time of %s not stored", channel)
        key = _Key(
            channel,
            sample.box,
            sample.path,
            sample.unit,
            sample.kind,
            sample.meaning,
            sample.label,
        )
        return _Row(key, at_ms, value, is_bool, QUALITY_CODES[sample.quality], box_time_ms)

    def _submit(self, op: _Op) -> int:
        """Write ``op`` now, or behind the buffer if the buffer is not empty."""
        if self._buffer:
            self._buffer.append(op)
            self._shrink_buffer()
            return self._flush_buffer()
        try:
            return self._write([op])
        except _DiskFullError as exc:
            self._enter_disk_full(op, exc)
            return 0

    def _enter_disk_full(self, op: _Op, exc: _DiskFullError) -> None:
        now = self._clock()
        self._buffer.append(op)
        self._next_retry_at = now + self._retry_interval
        if self._disk_full_since is None:
            self._disk_full_since = now
            _LOG.warning("Store %s is full (%s); keeping new data in memory", self._where, exc)
            self._buffer.append(
                _EventOp(
                    GatewayEvent(
                        at=now,
                        box=None,
                        channel=None,
                        kind="disk_full",
                        severity="alarm",
                        message="the store is full; new data is kept in memory",
                        data={"error": str(exc.__cause__ or exc), "path": self._where},
                    )
                )
            )
        self._shrink_buffer()

    def _shrink_buffer(self) -> None:
        for name, count in self._buffer.shrink().items():
            self._count_drop(f"buffer.{name}", count)

    def _flush_buffer(self) -> int:
        """Write buffered operations in order, within the per-call budget."""
        if not self._buffer:
            return 0
        now = self._clock()
        if self._next_retry_at is not None and now < self._next_retry_at:
            return 0
        written = 0
        budget = _FLUSH_CALL_UNITS
        while self._buffer and budget > 0:
            ops = self._buffer.head(min(budget, _FLUSH_TX_UNITS))
            try:
                written += self._write(ops)
            except _DiskFullError:
                self._next_retry_at = self._clock() + self._retry_interval
                return written
            except WeshError as exc:
                self._next_retry_at = self._clock() + self._retry_interval
                _LOG.warning("Store: flushing the memory buffer failed, will retry: %s", exc)
                return written
            self._buffer.pop(len(ops))
            budget -= sum(_Buffer.size(op) for op in ops)
        if not self._buffer and self._disk_full_since is not None:
            full_s = (self._clock() - self._disk_full_since).total_seconds()
            self._disk_full_since = None
            self._next_retry_at = None
            _LOG.info("Store %s writable again after %.0f s", self._where, full_s)
            self._report_drops(force=True)
            self._submit(
                _EventOp(
                    GatewayEvent(
                        at=self._clock(),
                        box=None,
                        channel=None,
                        kind="disk_ok",
                        severity="info",
                        message="the store is writable again; buffered data written",
                        data={"full_s": round(full_s, 3), "dropped": self._dropped_total},
                    )
                )
            )
        return written

    def _write(self, ops: Sequence[_Op]) -> int:
        """Run ``ops`` in one transaction; update caches after COMMIT.

        Raises:
            _DiskFullError: SQLITE_FULL or ENOSPC (rolled back; nothing changed).
            WeshError: any other failure (rolled back).
        """
        conn = self._conn
        tx = _Tx()
        dirty = list(self._dirty_boxes)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if dirty:
                    conn.executemany(_UPSERT_BOX_STATE, map(self._box_state_row, dirty))
                for op in ops:
                    if isinstance(op, _SamplesOp):
                        self._insert_samples(op.rows, tx)
                    elif isinstance(op, _EventOp):
                        op.event_id = self._insert_event(op.event, tx)
                    else:
                        conn.execute(
                            "INSERT INTO box_status_history (box, at_ms, up, error) "
                            "VALUES (?, ?, ?, ?)",
                            (op.box, op.at_ms, int(op.up), op.error),
                        )
                self._enforce_queue_cap(tx)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            for op in ops:
                if isinstance(op, _EventOp):
                    op.event_id = 0
            if is_disk_full(exc):
                raise _DiskFullError(str(exc)) from exc
            raise _translate(exc, "write", self._where) from exc
        self._after_commit(tx, dirty)
        return tx.written

    def _after_commit(self, tx: _Tx, dirty: list[str]) -> None:
        for key, cid in tx.new_channels.items():
            self._remember_channel(key, cid)
        self._dirty_boxes.difference_update(dirty)
        self._rows += tx.rows
        self._queue_depth += tx.depth
        self._max_reading_id = max(self._max_reading_id, tx.last_reading_id)
        self._last_write_at = self._clock()
        if tx.dropped:
            self._count_drop("queue.gauge_or_state", tx.dropped)

    def _remember_channel(self, key: _Key, cid: int) -> None:
        self._channel_ids[key] = cid
        self._keys_by_id[cid] = key
        self._ids_by_channel.setdefault(key.channel, []).append(cid)

    def _box_state_row(self, box: str) -> tuple[object, ...]:
        s = self._boxes[box]
        return (box, int(s.up), s.since_ms, s.last_ok_ms, s.last_error, s.updated_ms)

    def _insert_samples(self, rows: Sequence[_Row], tx: _Tx) -> None:
        conn = self._conn
        channel_ids: list[int] = []
        for row in rows:
            cid = self._channel_ids.get(row.key) or tx.new_channels.get(row.key)
            if cid is None:
                cursor = conn.execute(
                    "INSERT INTO channels (channel, box, path, unit, kind, meaning, label, "
                    "first_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row.key, row.at_ms),
                )
                cid = cast(int, cursor.lastrowid)
                tx.new_channels[row.key] = cid
            channel_ids.append(cid)
        top = conn.execute("SELECT max(id) FROM readings").fetchone()[0] or 0
        first = max(top, self._max_reading_id, tx.last_reading_id) + 1
        ids = range(first, first + len(rows))
        conn.executemany(
            _INSERT_READING,
            [
                (rid, cid, r.at_ms, r.value, r.is_bool, r.quality, r.box_time_ms)
                for rid, cid, r in zip(ids, channel_ids, rows, strict=True)
            ],
        )
        conn.executemany(
            _INSERT_QUEUED_READING,
            [(rid, DROP_RANK[r.key.kind]) for rid, r in zip(ids, rows, strict=True)],
        )
        conn.executemany(
            _UPSERT_LATEST,
            [
                (
                    r.key.channel,
                    r.key.box,
                    cid,
                    r.at_ms,
                    r.value,
                    r.is_bool,
                    r.quality,
                    r.box_time_ms,
                )
                for cid, r in zip(channel_ids, rows, strict=True)
            ],
        )
        tx.last_reading_id = first + len(rows) - 1
        tx.written += len(rows)
        tx.rows += len(rows)
        tx.depth += len(rows)

    def _insert_event(self, event: GatewayEvent, tx: _Tx) -> int:
        try:
            data = json.dumps(dict(event.data), default=str, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            data = json.dumps({"unserialisable": str(exc)})
        if len(data) > _MAX_EVENT_DATA_CHARS:
            data = json.dumps({"truncated": True, "chars": len(data)})
        cursor = self._conn.execute(
            "INSERT INTO events (at_ms, box, channel, kind, severity, message, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                to_ms(event.at),
                event.box,
                event.channel,
                event.kind,
                event.severity,
                event.message[:_MAX_MESSAGE_CHARS],
                data,
            ),
        )
        event_id = cast(int, cursor.lastrowid)
        if event.severity in self._queued_severities or event.kind in QUEUED_EVENT_KINDS:
            # the end of an alarm episode travels like the alarm (HQ resolves on it)
            self._conn.execute("INSERT INTO outbound (event_id) VALUES (?)", (event_id,))
            tx.depth += 1
        return event_id

    def _sync_queue_depth(self, *, in_tx: _Tx | None = None) -> None:
        """Count the queue again if another connection changed the file meanwhile.

        ``_queue_depth`` is kept by this Store's own writes and acknowledgements; a sync
        agent in another process acknowledges through :class:`QueueClient`, which
        SQLite reports by a new ``PRAGMA data_version``. Within a write transaction
        (``in_tx``), the rows it inserted are left out of the count; outside one, a read
        failure keeps the last count (logged).
        """
        try:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return
            depth = self._conn.execute(_COUNT_PENDING).fetchone()[0]
        except sqlite3.Error as exc:
            if in_tx is not None:
                raise
            _LOG.debug("Store: queue depth not recounted: %s", exc)
            return
        self._data_version = version
        self._queue_depth = depth - (in_tx.depth if in_tx is not None else 0)

    def _enforce_queue_cap(self, tx: _Tx) -> None:
        excess = self._queue_depth + tx.depth - self._retention.queue_max_rows
        if excess <= 0:
            return
        self._sync_queue_depth(in_tx=tx)  # acknowledgements by a QueueClient
        excess = self._queue_depth + tx.depth - self._retention.queue_max_rows
        if excess <= 0:
            return
        cursor = self._conn.execute(
            "DELETE FROM outbound WHERE seq IN (SELECT seq FROM outbound "
            "WHERE acked_ms IS NULL AND drop_rank IS NOT NULL ORDER BY drop_rank, seq LIMIT ?)",
            (excess,),
        )
        tx.depth -= cursor.rowcount
        tx.dropped += cursor.rowcount
        if cursor.rowcount < excess and not self._queue_stuck_warned:
            self._queue_stuck_warned = True
            _LOG.warning(
                "Store: outbound queue over its cap of %d rows with only indexes and alarms "
                "left; keeping them (the queue grows until the sync agent catches up)",
                self._retention.queue_max_rows,
            )

    def _count_drop(self, what: str, count: int) -> None:
        self._dropped_total += count
        self._drops_unreported[what] = self._drops_unreported.get(what, 0) + count

    def _report_drops(self, *, force: bool = False) -> None:
        """Report dropped data in one event, at most once per retry interval."""
        if not self._drops_unreported:
            return
        now = self._clock()
        due = self._drops_reported_at is None or now - self._drops_reported_at >= max(
            self._retry_interval, timedelta(seconds=60)
        )
        if not (due or force):
            return
        drops, self._drops_unreported = self._drops_unreported, {}
        self._drops_reported_at = now
        total = sum(drops.values())
        _LOG.warning("Store: dropped %d samples/events to stay within caps: %s", total, drops)
        self._submit(
            _EventOp(
                GatewayEvent(
                    at=now,
                    box=None,
                    channel=None,
                    kind=_DROP_EVENT_KIND,
                    severity="warning",
                    message=f"{total} samples/events dropped to stay within the store caps",
                    data={"dropped": total, "by_kind": drops, "total_dropped": self._dropped_total},
                )
            )
        )

    # ------------------------------------------------------------------ queue

    def pending(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, Sample]]:
        """Unacknowledged queued readings with ``seq > after_seq``, in seq order.

        Acknowledge them with ``acknowledge(upto_seq=...)`` (readings only) or ``seqs``.
        """
        with self._guard():
            _check_limit(limit)
            rows = self._conn.execute(_PENDING_READINGS, (after_seq, limit)).fetchall()
            return [(row[0], stored_sample(self._keys_by_id, row[1:])) for row in rows]

    def pending_events(
        self, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, int, GatewayEvent]]:
        """Unacknowledged queued events (alarms) as ``(seq, event id, event)``, in seq order.

        They share the seq space of readings but are acknowledged only by ``seqs``, never
        by ``upto_seq``, so that a range of readings never acknowledges an unsent alarm.
        """
        with self._guard():
            _check_limit(limit)
            rows = self._conn.execute(_PENDING_EVENTS, (after_seq, limit)).fetchall()
            return [(seq, event_id, _event_of(rest)) for seq, event_id, *rest in rows]

    def acknowledge(self, upto_seq: int | None = None, *, seqs: Iterable[int] = ()) -> int:
        """Mark queue rows as received by headquarters.

        Args:
            upto_seq: acknowledge every queued **reading** with ``seq <= upto_seq``.
            seqs: acknowledge these rows (readings or events) one by one.

        Returns:
            how many rows were newly acknowledged (already acknowledged or unknown seqs
            count for nothing).

        Raises:
            UsageError: a negative seq.
            TransientError: the acknowledgement could not be written (disk full, lock);
                nothing was acknowledged, the sync agent retries later.
        """
        with self._guard():
            wanted = _ack_wanted(upto_seq, seqs)
            acked_ms = to_ms(self._clock())
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    count = _ack_rows(conn, acked_ms, upto_seq, wanted)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                raise _translate(exc, "acknowledge", self._where) from exc
            self._queue_depth -= count
            return count

    def queue_depth(self) -> int:
        """Unacknowledged queue rows (readings and events)."""
        with self._guard():
            self._sync_queue_depth()
            return self._queue_depth

    # ------------------------------------------------------------------ retention

    def prune(self, now: datetime) -> int:
        """Delete what retention allows, at most ``prune_batch_rows`` per table.

        In order, each in its own short transaction: acknowledged queue rows; readings
        older than ``retention_days`` and older than the oldest still-queued reading;
        events older than ``events_retention_days`` that are not queued; box status
        edges older than ``events_retention_days``. Call it periodically; call again
        soon while it returns a full batch. A full disk is logged, never raised (pruning
        is how space comes back).

        Returns:
            the rows deleted.

        Raises:
            UsageError: ``now`` is naive.
            TransientError: the database failed for another reason.
        """
        with self._guard():
            self._check_aware(now, "now")
            batch = self._retention.prune_batch_rows
            readings_cutoff = to_ms(now - timedelta(days=self._retention.retention_days))
            events_cutoff = to_ms(now - timedelta(days=self._retention.events_retention_days))
            steps: list[Callable[[], int]] = [
                lambda: (
                    self._conn.execute(
                        "DELETE FROM outbound WHERE seq IN (SELECT seq FROM outbound "
                        "WHERE acked_ms IS NOT NULL ORDER BY seq LIMIT ?)",
                        (batch,),
                    ).rowcount
                ),
                lambda: self._prune_readings(readings_cutoff, batch),
                lambda: self._prune_events(events_cutoff, batch),
                lambda: self._prune_prefix("box_status_history", events_cutoff, batch),
            ]
            total = 0
            for index, step in enumerate(steps):
                try:
                    count = self._in_transaction(step)
                except _DiskFullError as exc:
                    _LOG.warning("Store: pruning stopped, disk full: %s", exc)
                    break
                total += count
                if index == 1:
                    self._rows -= count
            return total

    def _in_transaction(self, step: Callable[[], int]) -> int:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count = step()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc):
                raise _DiskFullError(str(exc)) from exc
            raise _translate(exc, "prune", self._where) from exc
        return count

    def _prune_readings(self, cutoff_ms: int, batch: int) -> int:
        conn = self._conn
        first_queued = conn.execute(
            "SELECT reading_id FROM outbound WHERE acked_ms IS NULL AND reading_id IS NOT NULL "
            "ORDER BY seq LIMIT 1"
        ).fetchone()
        bound = first_queued[0] if first_queued else self._max_reading_id + 1
        last = None
        for rid, at_ms in conn.execute(
            "SELECT id, at_ms FROM readings WHERE id < ? ORDER BY id LIMIT ?", (bound, batch)
        ).fetchall():
            if at_ms >= cutoff_ms:
                break
            last = rid
        if last is None:
            return 0
        return conn.execute("DELETE FROM readings WHERE id <= ?", (last,)).rowcount

    def _prune_events(self, cutoff_ms: int, batch: int) -> int:
        conn = self._conn
        queued = {
            event_id
            for (event_id,) in conn.execute(
                "SELECT event_id FROM outbound WHERE acked_ms IS NULL AND event_id IS NOT NULL"
            )
        }
        doomed: list[tuple[int]] = []
        for event_id, at_ms in conn.execute(
            "SELECT id, at_ms FROM events ORDER BY id LIMIT ?", (batch,)
        ).fetchall():
            if at_ms >= cutoff_ms:
                break
            if event_id not in queued:
                doomed.append((event_id,))
        if not doomed:
            return 0
        return conn.executemany("DELETE FROM events WHERE id = ?", doomed).rowcount

    def _prune_prefix(self, table: str, cutoff_ms: int, batch: int) -> int:
        last = None
        for row_id, at_ms in self._conn.execute(
            f"SELECT id, at_ms FROM {table} ORDER BY id LIMIT ?",  # noqa: S608 - fixed names
            (batch,),
        ).fetchall():
            if at_ms >= cutoff_ms:
                break
            last = row_id
        if last is None:
            return 0
        return self._conn.execute(
            f"DELETE FROM {table} WHERE id <= ?",  # noqa: S608 - fixed names
            (last,),
        ).rowcount

    # ------------------------------------------------------------------ reading

    def latest(self, *, box: str | None = None) -> list[Sample]:
        """Return the last value of every channel (of one box), sorted by channel.

        Values buffered in memory while the disk is full count: they are newer.
        """
        with self._guard():
            return query_latest(self._conn, self._keys_by_id, self._buffer.latest, box=box)

    def latest_one(self, channel: str) -> Sample | None:
        """Return the last value of one channel (``"<box>/<path>"``), ``None`` if unseen."""
        with self._guard():
            return query_latest_one(self._conn, self._keys_by_id, self._buffer.latest, channel)

    def history(
        self, channel: str, *, since: datetime, until: datetime, limit: int = 10_000
    ) -> list[Sample]:
        """Return the stored values of ``channel`` with ``since <= at < until``, oldest first.

        At most ``limit`` values; ask again from the last ``at`` (+1 ms) for more.

        Raises:
            UsageError: naive bounds or a limit out of ``1..100000``.
        """
        with self._guard():
            since_ms = to_ms(self._check_aware(since, "since"))
            until_ms = to_ms(self._check_aware(until, "until"))
            _check_limit(limit)
            return query_history(
                self._conn,
                self._keys_by_id,
                self._ids_by_channel.get(channel, []),
                since_ms=since_ms,
                until_ms=until_ms,
                limit=limit,
            )

    def events(
        self, *, since: datetime | None = None, box: str | None = None, limit: int = 1000
    ) -> list[tuple[int, GatewayEvent]]:
        """Return stored events as ``(id, event)``, oldest first.

        With ``since``: the first ``limit`` events at or after it. Without: the last
        ``limit`` events. ``box`` keeps only the events of that box.
        """
        with self._guard():
            _check_limit(limit)
            since_ms = to_ms(self._check_aware(since, "since")) if since is not None else None
            return query_events(self._conn, since_ms=since_ms, box=box, limit=limit)

    def box_status(self) -> dict[str, BoxStatusRow]:
        """Return the current status of every box ever recorded."""
        with self._guard():
            return {
                box: BoxStatusRow(
                    box=box,
                    up=s.up,
                    since=from_ms(s.since_ms),
                    last_ok=from_ms(s.last_ok_ms) if s.last_ok_ms is not None else None,
                    last_error=s.last_error,
                )
                for box, s in sorted(self._boxes.items())
            }

    def stats(self) -> StoreStats:
        """Sizes, queue depth and health of the store."""
        with self._guard():
            self._sync_queue_depth()
            oldest = self._conn.execute(
                "SELECT coalesce(r.at_ms, e.at_ms) FROM outbound AS o "
                "LEFT JOIN readings AS r ON r.id = o.reading_id "
                "LEFT JOIN events AS e ON e.id = o.event_id "
                "WHERE o.acked_ms IS NULL ORDER BY o.seq LIMIT 1"
            ).fetchone()
            size = 0
            for suffix in ("", "-wal"):
                with contextlib.suppress(OSError):
                    size += os.stat(self._where + suffix).st_size
            return StoreStats(
                rows=self._rows,
                db_bytes=size,
                queue_depth=self._queue_depth,
                oldest_pending_at=from_ms(oldest[0]) if oldest and oldest[0] is not None else None,
                last_write_at=self._last_write_at,
                degraded=self._disk_full_since is not None or bool(self._buffer),
                buffered=self._buffer.units,
                dropped=self._dropped_total,
            )
