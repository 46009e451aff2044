"""Idempotent, batched ingestion of readings into the HQ store, and the receiver's sink.

::

    Iterable[SyncReading] ──batches of 20,000──▶ check + resolve (site, box, path) → channel id
        (one pass; a channel head accepted before is one lookup: see _Batcher)
        ──▶ INSERT ... ON CONFLICT DO NOTHING / INSERT IGNORE (executemany of tuples)
        ──▶ rollup_dirty rows: the spans touched (one transaction per batch)

* **Rollups are refreshed lazily**: ingestion only records the spans it touched;
  :func:`wesh.hq.rollups.refresh_rollups` re-rolls them. The consumption queries refresh
  the channels they read first, and :class:`HqSink` refreshes everything pending after
  each hand-over (by default; ``refresh_every_s`` spaces the refreshes out), so answers
  are always up to date and the rollup tables themselves are current between hand-overs.

* **Idempotent**: ``(channel_id, at)`` is the reading's key; a reading already stored is a
  duplicate (counted, not stored again, never overwritten). Ingesting the same batch
  twice gives ``inserted=0`` the second time and marks nothing stale.
* **Bounded memory**: readings are consumed batch by batch from any iterable.
* **Rejected** readings (invalid value, unknown site, box or channel, kind or unit that
  disagrees with the channel, an instant in a period purged after a lease: see
  :class:`ChannelResolver` and :func:`wesh.hq.purge.purged_spans`) are counted, and
  logged once per channel and reason (per call); the rest of the batch is stored.
* **Unknown channels** of a known box are created when ``auto_create=True`` (kind and unit
  from the reading path's grammar and the reading); unknown sites and boxes are always
  rejected: they come from the inventory (``wesh hq import``).
* Provenance: a reading of quality ``estimated`` is stored with provenance ``estimated``,
  others ``measured``; quality ``suspect`` is kept as ``suspect`` (skipped by rollups),
  others ``good``. :func:`record_manual` stores manual readings and corrections.

:class:`HqSink` is the sync receiver's :class:`~wesh.sync.sink.ReadingSink` on this store:
readings through :func:`ingest`, alarms into ``site_event`` (idempotent on a digest of
site, box, channel, instant and kind), status reports into ``sync_ledger``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Final, Literal

from sqlalchemy import Connection, Engine, func, select, text, update

from wesh.errors import BadInputError, TransientError, UsageError
from wesh.gateway.channels import describe_path
from wesh.hq.db import insert_ignore, redact, transaction
from wesh.hq.models import (
    CHANNEL_KINDS,
    CODE_LEN,
    PATH_LEN,
    SHORT_LEN,
    Box,
    Channel,
    Dwelling,
    Gateway,
    SiteEvent,
    SyncLedger,
    Tenancy,
)
from wesh.hq.purge import Lease, purged_spans
from wesh.hq.rollups import driver_sql, insert_many, mark_dirty, refresh_rollups, reroll_windows
from wesh.hq.site_events import record_meter_event
from wesh.hq.timeutil import to_epoch_us
from wesh.sync.sink import (
    IngestResult,
    ReadingSink,
    SiteStatus,
    SyncAlarm,
    SyncReading,
    reading_problem,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PURGE_CHECK_S",
    "DEFAULT_ROLLUP_REFRESH_S",
    "ChannelInfo",
    "ChannelResolver",
    "HqSink",
    "ingest",
    "record_manual",
]

_LOG = logging.getLogger(__name__)

#: Readings per transaction. Each commit rewrites the index pages the batch touched, so
#: bigger batches cost less per reading (SQLite, 138,240 readings in one call, CPU: 149k/s
#: at 5,000, 179k/s at 20,000, 184k/s at 50,000); 20,000 keeps a batch to a few MB.
DEFAULT_BATCH_SIZE: Final = 20_000
#: A site whose channels were loaded longer ago than this is reloaded on a miss.
DEFAULT_REFRESH_S: Final = 60.0
#: A resolver looks for new purges (and new or deleted leases) at most this often
#: (seconds): one aggregate over ``tenancy``; a change reloads every site.
DEFAULT_PURGE_CHECK_S: Final = 1.0
#: :class:`HqSink` refreshes the stale rollups at most this often (seconds; 0: after every
#: hand-over, so the rollup tables are current for whoever reads them directly; see HqSink).
DEFAULT_ROLLUP_REFRESH_S: Final = 0.0
#: Rows per INSERT on MariaDB (one statement each, so SHOW WARNINGS covers it).
_MYSQL_CHUNK: Final = 2000
_MYSQL_DUPLICATE_KEY: Final = 1062
_INSERT_READINGS_ON_CONFLICT: Final = (
    "INSERT INTO reading (channel_id, at, value, provenance, quality, aggregate) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_READINGS_IGNORE: Final = (
    "INSERT IGNORE INTO reading (channel_id, at, value, provenance, quality, aggregate) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE_READING = text("DELETE FROM reading WHERE channel_id = :channel_id AND at = :at")
_INSERT_READING = text(
    "INSERT INTO reading (channel_id, at, value, provenance, quality, aggregate) "
    "VALUES (:channel_id, :at, :value, :provenance, 'good', 'sample')"
)

#: The ledger's count and the gateway's last contact (instants are epoch µs, BIGINT).
_COUNT_RECEIVED: Final = (
    "UPDATE sync_ledger SET received_count = received_count + ?, updated_at = ? WHERE site_id = ?"
)
_MARK_SEEN: Final = (
    "UPDATE gateway SET last_seen_at = ? "
    "WHERE site_id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)"
)

Clock = Callable[[], float]
#: What a reading says of its channel: site, box, path, kind, unit.
Head = tuple[str, str, str, str, str | None]

#: Most distinct (channel, reason) warnings logged by one call.
_MAX_WARNED: Final = 1000
_I64: Final = (-(2**63), 2**63)
#: Largest magnitude of an index: a DOUBLE holds every integer up to 2**53 exactly.
_EXACT: Final = 2**53
_AGGREGATES: Final = frozenset(("sample", "hour_mean", "hour_last"))
#: A received quality → the stored provenance and quality.
_STORED: Final = {
    "measured": ("measured", "good"),
    "estimated": ("estimated", "good"),
    "suspect": ("measured", "suspect"),
}

#: A reading row: channel_id, at (µs), value, provenance, quality, aggregate.
_Row = tuple[int, int, float, str, str, str]
_KEY: Final = itemgetter(0, 1)
_CHANNEL_ID: Final = itemgetter(0)
_AT_US: Final = itemgetter(1)
_HEAD: Final = attrgetter("site", "box", "path", "kind", "unit")
_SITE: Final = attrgetter("site")

#: A purged period of a channel: ``[lo_us, hi_us)`` and why readings in it are refused.
_Purged = tuple[int, int, str]
#: What tells a resolver that leases changed: their number, highest id, how many are
#: purged, the last purge (a purge marks at least one lease, so one of these changes).
_TENANCY_MARK: Final = select(
    func.count(), func.max(Tenancy.id), func.count(Tenancy.purged_at), func.max(Tenancy.purged_at)
)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What ingestion needs to know of a channel."""

    id: int
    is_index: bool
    unit: str | None


@dataclass(slots=True)
class _Site:
    loaded_at: float
    gateway_id: int
    boxes: dict[str, int]
    channels: dict[tuple[str, str], ChannelInfo]
    #: box ref -> the purged periods of the dwelling it serves (boxes with some only)
    purged: dict[str, tuple[_Purged, ...]]


class ChannelResolver:
    """Maps ``(site, box, path)`` to the HQ channel, with a per-site cache.

    A site's boxes and channels are loaded in one query on first use; a miss reloads the
    site when its cache is older than ``refresh_s`` (so channels added to the inventory
    are found without a restart, and unknown ones cost one query a minute, not one per
    reading). Ingestion also keeps here the ``(site, box, path, kind, unit)`` it found
    agreeing with their channel (:attr:`accepted`: one dictionary lookup each next time;
    forgotten when a site is reloaded). Keep one resolver per process (:class:`HqSink`
    does).

    With a site come the **purged periods** of its channels (:attr:`purged`: the periods
    :func:`wesh.hq.purge.purged_spans` gives for the purged leases of the dwelling each
    box serves), whose readings ingestion refuses. Leases change in other processes
    (``wesh hq purge-tenancies``, ``wesh hq import``): :meth:`check_leases`, called by
    ingestion at the start of each batch, compares a summary of the ``tenancy`` table
    (:data:`_TENANCY_MARK`) with the one taken when the sites were loaded, at most every
    ``purge_check_s`` seconds, and forgets every site when it changed.
    """

    def __init__(
        self,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        purge_check_s: float = DEFAULT_PURGE_CHECK_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self._refresh_s = refresh_s
        self._purge_check_s = purge_check_s
        self._clock = clock
        self._sites: dict[str, _Site | None] = {}
        self._missing_sites: dict[str, float] = {}
        self._accepted: dict[Head, int] = {}  # see accepted
        self._purged: dict[int, tuple[_Purged, ...]] = {}  # see purged
        self._leases_mark: tuple[object, ...] | None = None  # taken before sites load
        self._leases_checked_at = 0.0

    def forget(self) -> None:
        """Drop every cached site (the inventory changed)."""
        self._sites.clear()
        self._missing_sites.clear()
        self._accepted.clear()
        self._purged.clear()
        self._leases_mark = None

    def check_leases(self, conn: Connection) -> None:
        """Forget every site if leases were added, deleted or purged since they were loaded.

        One aggregate over ``tenancy``, at most every ``purge_check_s`` seconds (nothing
        when no site is cached). A purge is therefore noticed within that delay.
        """
        if self._leases_mark is None:
            return
        now = self._clock()
        if now - self._leases_checked_at < self._purge_check_s:
            return
        self._leases_checked_at = now
        if tuple(conn.execute(_TENANCY_MARK).one()) != self._leases_mark:
            _LOG.info("Ingest: leases changed (added, deleted or purged): reloading the sites")
            self.forget()

    def _load(self, conn: Connection, site: str) -> _Site | None:
        now = self._clock()
        if self._leases_mark is None:  # before the leases are read: a later change shows
            self._leases_mark = tuple(conn.execute(_TENANCY_MARK).one())
            self._leases_checked_at = now
        self._accepted.clear()  # rare: rebuilt from the sites' caches as readings come
        old = self._sites.get(site)
        if old is not None:
            for info in old.channels.values():
                self._purged.pop(info.id, None)
        gateway_id = conn.execute(
            select(Gateway.id).where(Gateway.site_id == site)
        ).scalar_one_or_none()
        if gateway_id is None:
            self._missing_sites[site] = now
            self._sites.pop(site, None)
            return None
        boxes: dict[str, int] = {}
        dwellings: dict[str, int] = {}
        for box_id, ref, dwelling_id in conn.execute(
            select(Box.id, Box.box_ref, Box.dwelling_id).where(Box.gateway_id == gateway_id)
        ):
            boxes[str(ref)] = int(box_id)
            if dwelling_id is not None:
                dwellings[str(ref)] = int(dwelling_id)
        channels: dict[tuple[str, str], ChannelInfo] = {}
        rows = conn.execute(
            select(Box.box_ref, Channel.path, Channel.id, Channel.is_index, Channel.unit)
            .join(Box, Box.id == Channel.box_id)
            .where(Box.gateway_id == gateway_id)
        )
        for ref, path, channel_id, is_index, unit in rows:
            channels[str(ref), str(path)] = ChannelInfo(int(channel_id), bool(is_index), unit)
        purged = self._load_purged(conn, int(gateway_id), dwellings)
        for (ref, _), info in channels.items():
            spans = purged.get(ref)
            if spans:
                self._purged[info.id] = spans
        entry = _Site(now, int(gateway_id), boxes, channels, purged)
        self._sites[site] = entry
        self._missing_sites.pop(site, None)
        return entry

    @staticmethod
    def _load_purged(
        conn: Connection, gateway_id: int, dwellings: dict[str, int]
    ) -> dict[str, tuple[_Purged, ...]]:
        """Return the purged periods of each box of a gateway (boxes with some only)."""
        if not dwellings:
            return {}
        rows = conn.execute(
            select(
                Tenancy.id,
                Tenancy.dwelling_id,
                Tenancy.start_date,
                Tenancy.end_date,
                Tenancy.purged_at,
                Dwelling.code,
            )
            .join(Dwelling, Dwelling.id == Tenancy.dwelling_id)
            .where(
                Tenancy.dwelling_id.in_(select(Box.dwelling_id).where(Box.gateway_id == gateway_id))
            )
        ).all()
        if all(row[4] is None for row in rows):
            return {}
        codes = {int(row[1]): str(row[5]) for row in rows}
        leases = [
            Lease(int(t), int(d), start, end, at is not None) for t, d, start, end, at, _ in rows
        ]
        by_dwelling: dict[int, list[_Purged]] = {}
        for lease, spans in purged_spans(leases):
            end = lease.end.isoformat() if lease.end is not None else "…"
            reason = (
                f"period purged after the lease of {codes[lease.dwelling_id]} "
                f"({lease.start.isoformat()} to {end})"
            )
            by_dwelling.setdefault(lease.dwelling_id, []).extend(
                (span.lo_us, span.hi_us, reason) for span in spans
            )
        return {
            ref: tuple(sorted(by_dwelling[dwelling_id]))
            for ref, dwelling_id in dwellings.items()
            if by_dwelling.get(dwelling_id)
        }

    def site(self, conn: Connection, site: str) -> _Site | None:
        """Return the cached site (loading it if unknown or stale after a miss)."""
        entry = self._sites.get(site)
        if entry is not None:
            return entry
        missing_since = self._missing_sites.get(site)
        if missing_since is not None and self._clock() - missing_since < self._refresh_s:
            return None
        return self._load(conn, site)

    def resolve(self, conn: Connection, site: str, box: str, path: str) -> ChannelInfo | str:
        """Return the channel, or the reason it is unknown (``"unknown site 'x'"``...)."""
        entry = self.site(conn, site)
        if entry is None:
            return f"unknown site {site!r}"
        found = entry.channels.get((box, path))
        if found is not None:
            return found
        if self._clock() - entry.loaded_at >= self._refresh_s:
            reloaded = self._load(conn, site)
            if reloaded is None:
                return f"unknown site {site!r}"
            entry = reloaded
            found = entry.channels.get((box, path))
            if found is not None:
                return found
        if box not in entry.boxes:
            return f"unknown box {box!r} of site {site!r}"
        return f"unknown channel {path!r} of box {box!r} (site {site!r})"

    @property
    def purged(self) -> dict[int, tuple[_Purged, ...]]:
        """Channel id → its purged periods ``(lo_us, hi_us, reason)``, sorted (the others: none).

        Filled as sites load, emptied by :meth:`forget`; the same dictionary object for the
        resolver's life.
        """
        return self._purged

    @property
    def accepted(self) -> dict[Head, int]:
        """Heads ``(site, box, path, kind, unit)`` found to agree with their channel → its id.

        Filled by ingestion (:meth:`remember`), emptied when a site is (re)loaded; the
        same dictionary object for the resolver's life, so a caller may keep a reference.
        """
        return self._accepted

    def remember(self, head: Head, channel_id: int) -> None:
        """Record that readings with ``head`` go to ``channel_id`` (they passed the checks)."""
        self._accepted[head] = channel_id

    def create(self, conn: Connection, site: str, box: str, reading: SyncReading) -> ChannelInfo:
        """Create the channel of ``reading`` on a known box (auto-creation)."""
        entry = self._sites.get(site)
        if entry is None or box not in entry.boxes:
            raise UsageError(f"cannot create a channel on unknown box {box!r} of {site!r}")
        family = describe_path(reading.path)
        meaning = family.meaning if family is not None else "other"
        kind = meaning if meaning in CHANNEL_KINDS else "other"
        unit = reading.unit if reading.unit is not None else (family.unit if family else None)
        insert_ignore(
            Channel,
            [
                {
                    "box_id": entry.boxes[box],
                    "path": reading.path,
                    "kind": kind,
                    "unit": unit,
                    "is_index": reading.kind == "index",
                    "resolution": None,
                    "label": None,
                }
            ],
            conn,
        )
        row = conn.execute(
            select(Channel.id, Channel.is_index, Channel.unit).where(
                Channel.box_id == entry.boxes[box], Channel.path == reading.path
            )
        ).one()
        info = ChannelInfo(int(row[0]), bool(row[1]), row[2])
        entry.channels[box, reading.path] = info
        spans = entry.purged.get(box)
        if spans:
            self._purged[info.id] = spans
        _LOG.info("Ingest: created channel %s/%s/%s (%s, %s)", site, box, reading.path, kind, unit)
        return info


# ----------------------------------------------------------------------------- ingestion


class _Batcher:
    """Turns one batch of readings into rows sorted by key, and each channel's span.

    One pass over the readings. A reading whose ``(site, box, path, kind, unit)`` was
    accepted before costs one dictionary lookup for its channel, then the checks of its
    value, quality, aggregate and instant; any other goes through :meth:`_admit`
    (resolution, auto-creation, kind and unit checked against the channel). A reading
    that fails a check is rejected with the reason :func:`reading_problem` and the
    channel give, and the others are kept.
    """

    def __init__(
        self,
        conn: Connection,
        resolver: ChannelResolver,
        *,
        auto_create: bool,
        warned: set[tuple[str, str]],
    ) -> None:
        self.conn = conn
        self.resolver = resolver
        self.auto_create = auto_create
        self.warned = warned
        self.rejected = 0
        self.rows: list[_Row] = []
        self._channels: dict[tuple[str, str, str], ChannelInfo | str] = {}  # this batch's

    def _reject(self, reading: SyncReading, reason: str) -> None:
        self.rejected += 1
        key = f"{reading.site}/{reading.box}/{reading.path}"
        if len(self.warned) < _MAX_WARNED and (key, reason) not in self.warned:
            self.warned.add((key, reason))
            _LOG.warning("Ingest: readings of %s rejected: %s", key, reason)

    def _lookup(self, reading: SyncReading) -> ChannelInfo | str:
        key = (reading.site, reading.box, reading.path)
        info = self._channels.get(key)
        if info is None:
            info = self.resolver.resolve(self.conn, *key)
            if isinstance(info, str) and self.auto_create and info.startswith("unknown channel"):
                info = self.resolver.create(self.conn, reading.site, reading.box, reading)
            self._channels[key] = info
        return info

    def _admit(self, reading: SyncReading) -> int | None:
        """Return the channel id of a reading whose head is not accepted yet, or reject it."""
        info = self._lookup(reading)
        if isinstance(info, str):
            self._reject(reading, info)
            return None
        if (reading.kind == "index") != info.is_index or (
            reading.unit != info.unit and reading.unit is not None and info.unit is not None
        ):
            self._reject(reading, self._problem(reading, info))
            return None
        with contextlib.suppress(TypeError):  # an unhashable unit: checked again next time
            self.resolver.remember(_HEAD(reading), info.id)
        return info.id

    def build(self, batch: Iterable[SyncReading]) -> None:
        """Check, resolve and convert every reading of the batch; sort the rows by key.

        Rows of one key keep their order of arrival (a stable sort on the key), so of two
        readings of one channel at one instant the first one sent is stored.
        """
        accepted = self.resolver.accepted.get
        purged = self.resolver.purged  # the same object while the batch runs
        stored = _STORED.get
        stamps: dict[datetime, int] = {}
        rows = self.rows
        append = rows.append
        isfinite = math.isfinite
        lowest, beyond = _I64
        exact = _EXACT
        for reading in batch:
            try:
                channel_id = accepted(_HEAD(reading))
            except TypeError:  # unhashable: _admit says why
                channel_id = None
            if channel_id is None and (channel_id := self._admit(reading)) is None:
                continue
            value = reading.value
            kind = type(value)
            stored_as = stored(reading.quality)
            aggregate = reading.aggregate
            if (
                not (
                    # an index: exact in a DOUBLE (NaN and infinities fail the comparison)
                    ((kind is float or kind is int) and -exact <= value <= exact)
                    if reading.kind == "index"
                    else (
                        (kind is float and isfinite(value))
                        or (kind is int and lowest <= value < beyond)
                    )
                )
                or stored_as is None
                or aggregate not in _AGGREGATES
            ):
                self._reject(reading, self._problem(reading, None))
                continue
            at = reading.at
            # 02:30 of the October night twice: equal (and hashed alike) in one zone but
            # an hour apart; ``fold`` tells them, so such an instant is converted alone.
            at_us = None if at.fold else stamps.get(at)
            if at_us is None:
                if at.tzinfo is None or at.utcoffset() is None:
                    self._reject(reading, "naive timestamp")
                    continue
                at_us = to_epoch_us(at)
                if not at.fold:
                    stamps[at] = at_us
            if purged and (spans := purged.get(channel_id)) is not None:
                reason = _purged_reason(spans, at_us)
                if reason is not None:
                    self._reject(reading, reason)
                    continue
            append((channel_id, at_us, float(value), stored_as[0], stored_as[1], aggregate))
        rows.sort(key=_KEY)

    @staticmethod
    def _problem(reading: SyncReading, info: ChannelInfo | None) -> str:
        problem = reading_problem(reading)
        if problem is not None:
            return problem
        if reading.kind == "index" and abs(reading.value) > _EXACT:
            return f"index {reading.value!r} beyond 2**53 (not exact in a DOUBLE)"
        if info is None:  # a subclass of int or float (numpy's float64...): not stored
            return f"value of type {type(reading.value).__name__}"
        if (reading.kind == "index") != info.is_index:
            expected = "an index" if info.is_index else "a gauge"
            return f"{reading.kind} reading on {expected} channel"
        return f"unit {reading.unit!r} differs from the channel's {info.unit!r}"

    def spans(self) -> dict[int, tuple[int, int]]:
        """Return each channel's span ``[first at, last at + 1)`` (rows sorted by key)."""
        rows = self.rows
        channel_ids = list(map(_CHANNEL_ID, rows))
        instants = list(map(_AT_US, rows))
        first = dict(zip(reversed(channel_ids), reversed(instants), strict=True))
        last = dict(zip(channel_ids, instants, strict=True))
        return {cid: (first[cid], at_us + 1) for cid, at_us in last.items()}


def _purged_reason(spans: tuple[_Purged, ...], at_us: int) -> str | None:
    """Return why ``at_us`` may not be stored if a purged period holds it, else ``None``."""
    for lo_us, hi_us, reason in spans:
        if lo_us <= at_us < hi_us:
            return reason
    return None


def _insert_readings(conn: Connection, rows: Sequence[tuple[object, ...]]) -> int:
    """Insert reading rows, skipping existing keys; return how many were inserted."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        return insert_many(conn, _INSERT_READINGS_ON_CONFLICT, rows)
    if dialect != "mysql":
        raise UsageError(f"ingestion does not support the {dialect!r} engine")
    statement = driver_sql(conn, _INSERT_READINGS_IGNORE)
    inserted = 0
    for start in range(0, len(rows), _MYSQL_CHUNK):
        chunk = list(rows[start : start + _MYSQL_CHUNK])
        count = int(conn.exec_driver_sql(statement, chunk).rowcount)
        inserted += count
        if count < len(chunk):
            warnings = conn.exec_driver_sql("SHOW WARNINGS").all()
            problems = [row for row in warnings if int(row[1]) != _MYSQL_DUPLICATE_KEY]
            if problems or len(warnings) != len(chunk) - count:
                shown = "; ".join(str(row[2]) for row in problems[:3]) or "rows skipped"
                raise BadInputError(
                    f"readings rejected by the database: {shown}", host=redact(conn.engine.url)
                )
    return inserted


def _ingest_batch(
    conn: Connection,
    batch: Sequence[SyncReading],
    resolver: ChannelResolver,
    *,
    auto_create: bool,
    warned: set[tuple[str, str]],
) -> IngestResult:
    resolver.check_leases(conn)  # a purge since the sites were loaded: reload them
    batcher = _Batcher(conn, resolver, auto_create=auto_create, warned=warned)
    batcher.build(batch)
    rows = batcher.rows
    if not rows:
        return IngestResult(0, 0, batcher.rejected)
    inserted = _insert_readings(conn, rows)
    if inserted:  # a span may cover duplicates too: re-rolling them is harmless
        mark_dirty(conn, batcher.spans())
    return IngestResult(inserted, len(rows) - inserted, batcher.rejected)


def ingest(
    engine: Engine,
    readings: Iterable[SyncReading],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    auto_create: bool = False,
    resolver: ChannelResolver | None = None,
) -> IngestResult:
    """Store readings idempotently, ``batch_size`` per transaction; mark their rollups stale.

    The rollups of the spans touched are re-rolled later by
    :func:`~wesh.hq.rollups.refresh_rollups` (the queries call it for what they read).

    Args:
        engine: the HQ store.
        readings: any iterable (consumed lazily, one batch in memory at a time).
        batch_size: readings per transaction.
        auto_create: create unknown channels of known boxes instead of rejecting them.
        resolver: a channel cache to reuse across calls (a new one by default).

    Returns:
        Counts of inserted, duplicate and rejected readings.

    Raises:
        UsageError: ``batch_size`` < 1.
        TransientError, ConnectionFailed: the database failed; batches committed before
            the failure stay stored (re-sending them is harmless).
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, not {batch_size}")
    resolver = resolver if resolver is not None else ChannelResolver()
    warned: set[tuple[str, str]] = set()
    total = IngestResult(0, 0, 0)
    iterator = iter(readings)
    while batch := list(itertools.islice(iterator, batch_size)):
        with transaction(engine) as conn:
            total += _ingest_batch(conn, batch, resolver, auto_create=auto_create, warned=warned)
    return total


Provenance = Literal["manual", "corrected", "measured", "estimated"]


def record_manual(
    engine: Engine,
    *,
    channel_id: int,
    at: datetime,
    value: float,
    provenance: Provenance = "manual",
) -> None:
    """Store a manual reading or a correction, replacing any reading at the same instant.

    The value is authoritative (quality ``good``); the buckets it touches are re-rolled.

    Raises:
        UsageError: naive ``at``, non-finite value, or no such channel.
    """
    at_us = to_epoch_us(at)
    if not math.isfinite(value):
        raise UsageError(f"value must be a finite number, not {value!r}")
    with transaction(engine) as conn:
        found = conn.execute(select(Channel.is_index).where(Channel.id == channel_id)).first()
        if found is None:
            raise UsageError(f"no channel with id {channel_id}", channel=str(channel_id))
        key = {"channel_id": channel_id, "at": at_us}
        conn.execute(_DELETE_READING, key)
        conn.execute(_INSERT_READING, {**key, "value": float(value), "provenance": provenance})
        indexes = [channel_id] if found[0] else []
        reroll_windows(conn, {channel_id: (at_us, at_us + 1)}, index_channels=indexes)


# ----------------------------------------------------------------------------- the sink


def _cap(text: str | None, length: int) -> str | None:
    return None if text is None else text[:length]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class HqSink(ReadingSink):
    """The sync receiver's sink on the HQ store (see the module docstring).

    Args:
        engine: the HQ store (its schema migrated).
        auto_create: create unknown channels of known boxes (see :func:`ingest`).
        batch_size: readings per transaction.
        now: wall clock for ``received_at``/``updated_at`` (injectable for tests).
        refresh_every_s: after a hand-over, refresh the stale rollups if the last refresh
            is at least this old (``0``, the default: after every hand-over). Queries
            refresh what they read anyway; this keeps the rollup tables themselves current
            for readers that query them directly. It costs a few milliseconds of CPU per
            hand-over (``docs/hq-data.md``, "Figures"): nothing at a receiver's rate (a
            site-hour per building and hour), but 3-4 times the hand-over itself; a
            receiver that catches up large backlogs, or several receivers on one store,
            may space the refreshes out (e.g. 30 s).
        clock: monotonic clock of that timer (injectable for tests).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        auto_create: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        now: Callable[[], datetime] = _wall_clock,
        refresh_every_s: float = DEFAULT_ROLLUP_REFRESH_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self._engine = engine
        self._auto_create = auto_create
        self._batch_size = batch_size
        self._now = now
        self._refresh_every_s = refresh_every_s
        self._clock = clock
        self._refreshed_at: float | None = None
        self.resolver = ChannelResolver()

    @property
    def refresh_every_s(self) -> float:
        """After a hand-over, the stale rollups are refreshed if the last refresh is this old."""
        return self._refresh_every_s

    def refresh(self) -> int:
        """Re-roll every stale rollup span now; return the spans cleared."""
        self._refreshed_at = self._clock()
        return refresh_rollups(self._engine)

    def ingest(self, readings: Sequence[SyncReading]) -> IngestResult:
        """Store readings (idempotent); count each site's readings in its ledger.

        As :func:`ingest`, ``batch_size`` readings per transaction; the ledger counts go
        in the last batch's transaction (one commit per hand-over of up to a batch).
        """
        size = self._batch_size
        if size < 1:
            raise UsageError(f"batch_size must be at least 1, not {size}")
        per_site = Counter(map(_SITE, readings))
        now = self._now()
        warned: set[tuple[str, str]] = set()
        result = IngestResult(0, 0, 0)
        for start in range(0, len(readings), size):
            with transaction(self._engine) as conn:
                result += _ingest_batch(
                    conn,
                    readings[start : start + size],
                    self.resolver,
                    auto_create=self._auto_create,
                    warned=warned,
                )
                if start + size >= len(readings):
                    for site, count in sorted(per_site.items()):
                        self._touch_ledger(conn, site, now, received=count)
        if result.inserted:
            last = self._refreshed_at
            if last is None:  # the timer starts at the first hand-over
                self._refreshed_at = last = self._clock()
            if self._clock() - last >= self._refresh_every_s:
                self._refresh_after_hand_over()
        return result

    def _refresh_after_hand_over(self) -> None:
        """Refresh; a collision or lock timeout leaves the spans for the next time.

        The readings are stored by then: the hand-over must not fail because rollups (derived
        data, which queries refresh anyway) could not be brought up to date at once.
        """
        try:
            self.refresh()
        except TransientError as exc:
            _LOG.warning("Ingest: rollup refresh postponed to the next hand-over: %s", exc)

    def ingest_alarm(self, alarm: SyncAlarm) -> None:
        """Store an alarm in ``site_event`` once (the same alarm again is ignored).

        A new ``meter_replaced`` or ``counter_reset`` alarm of a known channel also records
        a ``meter_event`` in the same transaction and marks the channel's hour stale
        (:func:`wesh.hq.site_events.record_meter_event`).
        """
        at_us = to_epoch_us(alarm.at)
        path = alarm.channel
        if path is not None and alarm.box is not None and path.startswith(f"{alarm.box}/"):
            path = path[len(alarm.box) + 1 :]
        identity = "\x1f".join((alarm.site, alarm.box or "", path or "", str(at_us), alarm.kind))
        with transaction(self._engine) as conn:
            box_id: int | None = None
            channel_id: int | None = None
            entry = self.resolver.site(conn, alarm.site)
            if entry is not None and alarm.box is not None:
                box_id = entry.boxes.get(alarm.box)
                if path is not None:
                    info = entry.channels.get((alarm.box, path))
                    channel_id = info.id if info is not None else None
            inserted = insert_ignore(
                SiteEvent,
                [
                    {
                        "dedup_key": hashlib.sha256(identity.encode()).hexdigest()[:CODE_LEN],
                        "site_id": alarm.site[:CODE_LEN],
                        "box_ref": _cap(alarm.box, CODE_LEN),
                        "channel_path": _cap(path, PATH_LEN),
                        "box_id": box_id,
                        "channel_id": channel_id,
                        "at": alarm.at,
                        "kind": alarm.kind[:CODE_LEN],
                        "severity": alarm.severity[:SHORT_LEN],
                        "message": alarm.message[:1000],
                        "received_at": self._now(),
                        "handled_at": None,
                    }
                ],
                conn,
            )
            if inserted and channel_id is not None:  # a re-sent alarm records nothing more
                record_meter_event(
                    conn,
                    channel_id=channel_id,
                    alarm_kind=alarm.kind,
                    at=alarm.at,
                    message=alarm.message,
                )
            self._touch_ledger(conn, alarm.site, self._now(), received=0)

    def ingest_status(self, status: SiteStatus) -> None:
        """Record a status report in ``sync_ledger`` (an older report never wins)."""
        document = asdict(status)
        document["at"] = status.at.astimezone(UTC).isoformat()
        with transaction(self._engine) as conn:
            now = self._now()
            self._touch_ledger(conn, status.site, now, received=0)
            conn.execute(
                update(SyncLedger)
                .where(
                    SyncLedger.site_id == status.site,
                    (SyncLedger.last_status_at.is_(None))
                    | (SyncLedger.last_status_at <= status.at),
                )
                .values(last_status_at=status.at, status=document, updated_at=now)
            )

    def _touch_ledger(self, conn: Connection, site: str, now: datetime, *, received: int) -> None:
        """Count ``received`` in the site's ledger row (created if needed), mark the gateway seen.

        Two prepared statements in the usual case (the row exists); the row is created with
        ``insert_ignore`` when the update finds none (two workers may both try: one wins).
        """
        site = site[:CODE_LEN]
        now_us = to_epoch_us(now)
        count = driver_sql(conn, _COUNT_RECEIVED)
        if not conn.exec_driver_sql(count, (received, now_us, site)).rowcount:
            insert_ignore(
                SyncLedger,
                [
                    {
                        "site_id": site,
                        "last_seq": None,
                        "received_count": 0,
                        "gaps": None,
                        "last_status_at": None,
                        "status": None,
                        "updated_at": now,
                    }
                ],
                conn,
            )
            conn.exec_driver_sql(count, (received, now_us, site))
        conn.exec_driver_sql(driver_sql(conn, _MARK_SEEN), (now_us, site, now_us))
