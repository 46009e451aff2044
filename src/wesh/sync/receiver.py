"""The HQ receiver: verifies, decrypts, reassembles, decodes, deduplicates and hands over.

One receiver serves every site. For each text a transport delivers::

    rate limit (per sender) ─▶ Reassembler (bounded) ─▶ open_packet (keys by key id:
    authenticates the site) ─▶ ReplayWindow.check (per site) ─▶ decode ─▶ sink ─▶
    accept (window, baselines, ledger: one transaction) ─▶ ACK soon (coalesced)

* **Unknown senders** (no key with that id, a tag that does not verify, garbage) are
  rejected and counted per sender and reason (:meth:`SyncReceiver.rejects`); each pair
  is logged once. A sender sending faster than ``rate_per_minute`` (bursts of
  ``rate_burst``) has the excess dropped before any work, counted as ``rate_limited``.
* **Exactly once.** A packet's content is handed to the sink, *then* its sequence number
  is accepted, with the index baselines it brought, in the receiver's own SQLite file.
  A crash between the two makes the site send it again; the sink, being idempotent,
  counts those readings as duplicates. A packet seen before is not handed over again;
  its number goes into the next ACK (the site evidently missed one).
* **ACKs** say what is stored: cumulative, selective ranges, numbers seen again, and the
  fragments still missing of partial packets. One ACK per site at most every
  ``ack_min_interval_s``, ``ack_delay_s`` after the packet that called for it.
* **Undecodable.** DATA naming a schema the receiver lacks is not accepted: the receiver
  asks for it (``RequestSchema``, at most every ``schema_request_interval_s``), and the
  site sends the packet again. DATA whose baseline is missing is not accepted either
  (the site falls back to absolute values). An authenticated packet whose body does not
  parse is kept in quarantine and accepted, so that the site stops sending it: a sender
  bug is reported, never lost, never looped on.
* **Ledger.** Per site: packets, readings inserted and duplicate, alarms, statuses, the
  numbers missing below the highest received, the partial packets, what was asked again
  (fragments, schemas), ACKs sent, the last STATUS (:meth:`SyncReceiver.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from wesh.errors import ConfigError, TransientError, UsageError, WeshError
from wesh.sync._statedb import StateDb
from wesh.sync._wire import PacketError, Reason
from wesh.sync.crypto import Direction, SeqReservation
from wesh.sync.fragment import Reassembler, fragment_packet
from wesh.sync.keys import KeyRing, SiteKey
from wesh.sync.packet import (
    AckMessage,
    AlarmMessage,
    AnyMessage,
    DataMessage,
    OpenedPacket,
    ReplayWindow,
    ReplyMessage,
    RequestSchema,
    SchemaMessage,
    StatusMessage,
    open_packet,
    seal_packet,
)
from wesh.sync.readings import decode_block, iter_readings, to_sync_readings
from wesh.sync.schema import Schema
from wesh.sync.sink import ReadingSink, SiteStatus, SyncAlarm
from wesh.sync.transport import Message, Transport, redact_peer

__all__ = [
    "ReceiverConfig",
    "SiteLedger",
    "SyncReceiver",
    "read_ledgers",
]

_LOG = logging.getLogger(__name__)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MISSING_LISTED: Final = 256


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """How the receiver paces ACKs and protects itself (defaults suit SMS).

    Attributes:
        ack_delay_s: an ACK goes this long after the packet that called for it (more
            packets arriving meanwhile share it).
        ack_min_interval_s: at most one ACK per site this often.
        max_ranges: selective ranges per ACK.
        max_partials_in_ack: partial packets listed per ACK.
        rate_per_minute / rate_burst: texts accepted per sender (token bucket).
        max_chars: longest text sent (160: SMS; ``None``: one text per packet).
        pad: fill the last SMS of each packet.
        reassembly_timeout_s: a partial packet is dropped this long after its first part.
        max_partials_per_sender: partial packets held per sender.
        baseline_keep_s: index baselines older than this (before a site's newest) go.
        schema_request_interval_s: at most one RequestSchema per site and schema this often.
    """

    ack_delay_s: float = 10.0
    ack_min_interval_s: float = 30.0
    max_ranges: int = 32
    max_partials_in_ack: int = 16
    rate_per_minute: float = 600.0
    rate_burst: int = 600
    max_chars: int | None = 160
    pad: bool = True
    reassembly_timeout_s: float = 86_400.0
    max_partials_per_sender: int = 64
    baseline_keep_s: float = 45 * 86_400.0
    schema_request_interval_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.ack_delay_s < 0 or self.ack_min_interval_s < 0:
            raise UsageError("ack delays must not be negative")
        if self.rate_per_minute <= 0 or self.rate_burst < 1:
            raise UsageError("rate_per_minute > 0 and rate_burst >= 1")
        if not 1 <= self.max_ranges <= 256 or not 0 <= self.max_partials_in_ack <= 64:
            raise UsageError("max_ranges 1..256, max_partials_in_ack 0..64")


@dataclass(frozen=True, slots=True)
class SiteLedger:
    """What the receiver knows of one site's sync (its completeness ledger)."""

    site: str
    peer: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    packets: int
    duplicate_packets: int
    readings_inserted: int
    readings_duplicate: int
    readings_rejected: int
    alarms: int
    statuses: int
    replies: int
    quarantined: int
    not_decodable: int
    cumulative: int
    highest: int
    missing: tuple[int, ...]
    partial_packets: int
    asked_fragments: int
    asked_schemas: int
    acks_sent: int
    last_status: dict[str, Any] | None = None
    schemas: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable view (the sender's number redacted)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif name == "peer" and isinstance(value, str):
                value = redact_peer(value)
            out[name] = value
        return out


_COUNTERS: Final = (
    "packets",
    "duplicate_packets",
    "readings_inserted",
    "readings_duplicate",
    "readings_rejected",
    "alarms",
    "statuses",
    "replies",
    "quarantined",
    "not_decodable",
    "asked_fragments",
    "asked_schemas",
    "acks_sent",
)

_SCHEMA_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS sites (site TEXT PRIMARY KEY, peer TEXT, window TEXT, "
    "down_reserved INTEGER NOT NULL DEFAULT 0, first_ms INTEGER, last_ms INTEGER, "
    "last_status TEXT, "
    + ", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in _COUNTERS)
    + ") WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS schemas (site TEXT NOT NULL, hash BLOB NOT NULL, "
    "canonical BLOB NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (site, hash)) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS baselines (site TEXT NOT NULL, key TEXT NOT NULL, "
    "at_s INTEGER NOT NULL, value NOT NULL, PRIMARY KEY (site, key, at_s)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rejects (peer TEXT NOT NULL, reason TEXT NOT NULL, "
    "count INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, "
    "PRIMARY KEY (peer, reason)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, site TEXT NOT NULL, "
    "seq INTEGER NOT NULL, reason TEXT NOT NULL, packet BLOB NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS asked (id INTEGER PRIMARY KEY, site TEXT NOT NULL, "
    "at_ms INTEGER NOT NULL, what TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS asked_site ON asked (site, id)",
)


def _ms(at: datetime) -> int:
    return math.floor((at - _EPOCH).total_seconds() * 1000)


def _at_ms(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=int(ms))


class _Db(StateDb):
    """The receiver's SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA_SQL, what="receiver state")


def _ledger(db: _Db, site: str, *, partials: int = 0) -> SiteLedger | None:
    columns = ", ".join(_COUNTERS)
    rows = db.rows(
        f"SELECT peer, window, first_ms, last_ms, last_status, {columns} "  # noqa: S608
        "FROM sites WHERE site = ?",
        (site,),
    )
    if not rows:
        return None
    peer, window_json, first_ms, last_ms, last_status, *counts = rows[0]
    counters = dict(zip(_COUNTERS, (int(c) for c in counts), strict=True))
    window = ReplayWindow.from_dict(json.loads(window_json)) if window_json else ReplayWindow()
    low = max(window.cumulative + 1, window.highest - window.size + 1)
    accepted = set(window.accepted_above())
    missing = tuple(seq for seq in range(low, window.highest + 1) if seq not in accepted)[
        :_MAX_MISSING_LISTED
    ]
    schemas = tuple(
        bytes(h).hex() for (h,) in db.rows("SELECT hash FROM schemas WHERE site = ?", (site,))
    )
    return SiteLedger(
        site=site,
        peer=peer,
        first_seen_at=_at_ms(first_ms),
        last_seen_at=_at_ms(last_ms),
        cumulative=window.cumulative,
        highest=window.highest,
        missing=missing,
        partial_packets=partials,
        last_status=json.loads(last_status) if last_status else None,
        schemas=schemas,
        **counters,
    )


def read_ledgers(path: Path) -> list[SiteLedger]:
    """Read every site's ledger from a receiver state file (``wesh sync status``)."""
    if not path.exists():
        raise ConfigError("no receiver state here", where=str(path))
    db = _Db(path)
    try:
        sites = [str(s) for (s,) in db.rows("SELECT site FROM sites ORDER BY site")]
        return [ledger for s in sites if (ledger := _ledger(db, s)) is not None]
    finally:
        db.close()


@dataclass(slots=True)
class _Site:
    """What the receiver holds in memory for one site."""

    window: ReplayWindow
    down: SeqReservation
    peer: str | None
    schemas: dict[bytes, Schema]
    ack_due: float | None = None
    last_ack: float | None = None
    seen_again: set[int] = field(default_factory=set)
    schema_asked: dict[bytes, float] = field(default_factory=dict)
    commands: list[AnyMessage] = field(default_factory=list)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class SyncReceiver:
    """The HQ receiver (module docstring).

    Use :meth:`run`, or :meth:`handle_message` and :meth:`step` to drive it by hand.

    Args:
        keys: the sites' keys.
        sink: where decoded data goes (idempotent).
        state_path: the receiver's own SQLite file.
        transport: where texts come from and ACKs go.
        config: pacing and limits.
        clock: wall clock, aware UTC.
    """

    def __init__(
        self,
        *,
        keys: KeyRing,
        sink: ReadingSink,
        state_path: Path,
        transport: Transport,
        config: ReceiverConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config or ReceiverConfig()
        self._keys = keys
        self._sink = sink
        self._transport = transport
        self._clock = clock
        self._db = _Db(state_path)
        self._sites: dict[str, _Site] = {}
        self._site_of_peer: dict[str, str] = {}
        self._reassembler = Reassembler(
            timeout_s=self.config.reassembly_timeout_s,
            max_partials_per_sender=self.config.max_partials_per_sender,
        )
        self._buckets: dict[str, _Bucket] = {}
        self._logged: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the state file (idempotent); the receiver must not be running."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Receive and acknowledge until :meth:`stop`."""
        listener = asyncio.create_task(self._listen(), name="sync-receiver-listen")
        try:
            while not self._stop.is_set():
                try:
                    delay = await self.step()
                except WeshError as exc:
                    _LOG.warning("Sync receiver step failed (retrying): %s", exc)
                    delay = 5.0
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        async for message in self._transport.messages():
            try:
                self.handle_message(message)
            except WeshError as exc:
                _LOG.warning("Sync receiver: a message could not be handled: %s", exc)
            self._wake.set()

    # ------------------------------------------------------------------ ledger

    def ledger(self, site: str) -> SiteLedger | None:
        """Return the ledger of ``site`` (``None`` if never heard of)."""
        peer = self._sites[site].peer if site in self._sites else None
        partials = len(self._reassembler.partials(peer)) if peer is not None else 0
        return _ledger(self._db, site, partials=partials)

    def ledgers(self) -> list[SiteLedger]:
        """Return the ledger of every site heard of, by site id."""
        sites = [str(s) for (s,) in self._db.rows("SELECT site FROM sites ORDER BY site")]
        return [ledger for s in sites if (ledger := self.ledger(s)) is not None]

    def rejects(self) -> dict[tuple[str, str], int]:
        """Return texts rejected, by ``(sender, reason)``."""
        return {
            (str(peer), str(reason)): int(count)
            for peer, reason, count in self._db.rows("SELECT peer, reason, count FROM rejects")
        }

    def quarantined(self, site: str) -> list[tuple[int, str, bytes]]:
        """Return the authenticated packets of ``site`` that could not be read.

        Each as ``(seq, reason, packet bytes)``, oldest first.
        """
        return [
            (int(seq), str(reason), bytes(packet))
            for seq, reason, packet in self._db.rows(
                "SELECT seq, reason, packet FROM quarantine WHERE site = ? ORDER BY id", (site,)
            )
        ]

    def asked(self, site: str, *, limit: int = 100) -> list[tuple[datetime, str, str]]:
        """Return the latest requests sent to ``site`` (fragments, schemas), newest first."""
        return [
            (_EPOCH + timedelta(milliseconds=int(at_ms)), str(what), str(detail))
            for at_ms, what, detail in self._db.rows(
                "SELECT at_ms, what, detail FROM asked WHERE site = ? ORDER BY id DESC LIMIT ?",
                (site, limit),
            )
        ]

    # ------------------------------------------------------------------ sites

    def _site(self, site: str) -> _Site:
        state = self._sites.get(site)
        if state is not None:
            return state
        rows = self._db.rows(
            "SELECT peer, window, down_reserved FROM sites WHERE site = ?", (site,)
        )
        if rows:
            peer, window_json, reserved = rows[0]
            window = (
                ReplayWindow.from_dict(json.loads(window_json)) if window_json else ReplayWindow()
            )
        else:
            peer, window, reserved = None, ReplayWindow(), 0
            now_ms = _ms(self._clock())
            with self._db.tx() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO sites (site, first_ms, last_ms) VALUES (?, ?, ?)",
                    (site, now_ms, now_ms),
                )
        schemas: dict[bytes, Schema] = {}
        for schema_hash, canonical in self._db.rows(
            "SELECT hash, canonical FROM schemas WHERE site = ?", (site,)
        ):
            with contextlib.suppress(PacketError):
                schemas[bytes(schema_hash)] = Schema.from_canonical(bytes(canonical))
        state = _Site(window, SeqReservation(next_seq=int(reserved) + 1, block=32), peer, schemas)
        self._sites[site] = state
        if peer is not None:
            self._site_of_peer[peer] = site
        return state

    def provision_schema(self, site: str, schema: Schema) -> None:
        """Give the receiver a site's schema out of band (no SCHEMA packet needed)."""
        self._store_schema(site, schema)

    def _store_schema(self, site: str, schema: Schema) -> None:
        state = self._site(site)
        with self._db.tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO schemas (site, hash, canonical, received_ms) "
                "VALUES (?, ?, ?, ?)",
                (site, schema.hash, schema.canonical(), _ms(self._clock())),
            )
        state.schemas[schema.hash] = schema

    # ------------------------------------------------------------------ receiving

    def _reject(self, peer: str, reason: str, detail: object) -> None:
        now_ms = _ms(self._clock())
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO rejects (peer, reason, count, first_ms, last_ms) "
                "VALUES (?, ?, 1, ?, ?) ON CONFLICT (peer, reason) DO UPDATE SET "
                "count = count + 1, last_ms = excluded.last_ms",
                (peer, reason, now_ms, now_ms),
            )
        if (peer, reason) not in self._logged:
            self._logged.add((peer, reason))
            _LOG.warning(
                "Sync receiver: text from %s rejected (%s): %s (logged once per sender and reason)",
                redact_peer(peer),
                reason,
                detail,
            )

    def _allow(self, peer: str, now: float) -> bool:
        config = self.config
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = self._buckets[peer] = _Bucket(float(config.rate_burst), now)
        bucket.tokens = min(
            float(config.rate_burst),
            bucket.tokens + (now - bucket.at) * config.rate_per_minute / 60.0,
        )
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def handle_message(self, message: Message) -> None:
        """Take one received text (a packet or a fragment of one)."""
        now = self._clock()
        mono = now.timestamp()
        peer = message.peer
        if not self._allow(peer, mono):
            self._reject(peer, "rate_limited", "too many texts")
            return
        reassembler = self._reassembler
        try:
            packet = reassembler.feed(peer, message.text, now=mono)
        except PacketError as exc:
            self._reject(peer, exc.reason.value, exc)
            return
        if packet is None:
            self._partial_arrived(peer, mono)
            return
        try:
            opened = open_packet(packet, keys=self._keys, direction=Direction.UP)
        except PacketError as exc:
            # not confirmed: a re-sent copy reassembles afresh (a damaged fragment
            # never poisons it)
            self._reject(peer, exc.reason.value, exc)
            return
        reassembler.confirm(peer, packet)
        self._handle_packet(opened, packet, peer, now)

    def _partial_arrived(self, peer: str, mono: float) -> None:
        site = self._site_of_peer.get(peer)
        if site is not None:
            self._ack_soon(site, mono)

    def _ack_soon(self, site: str, mono: float) -> None:
        state = self._sites[site]
        due = mono + self.config.ack_delay_s
        if state.ack_due is None or due < state.ack_due:
            state.ack_due = due

    def _handle_packet(self, opened: OpenedPacket, packet: bytes, peer: str, now: datetime) -> None:
        site = opened.site
        state = self._site(site)
        mono = now.timestamp()
        if state.peer != peer:
            state.peer = peer
            self._site_of_peer[peer] = site
            with self._db.tx() as conn:
                conn.execute("UPDATE sites SET peer = ? WHERE site = ?", (peer, site))
        try:
            state.window.check(opened.seq)
        except PacketError:
            if opened.seq > state.window.cumulative and state.window.seen(opened.seq):
                state.seen_again.add(opened.seq)
            with self._db.tx() as conn:
                conn.execute(
                    "UPDATE sites SET duplicate_packets = duplicate_packets + 1, last_ms = ? "
                    "WHERE site = ?",
                    (_ms(now), site),
                )
            self._ack_soon(site, mono)
            return
        message = opened.message
        counts: dict[str, int] = {}
        baselines: list[tuple[str, int, int | float]] = []
        last_status: str | None = None
        try:
            if isinstance(message, DataMessage):
                result = self._data(site, state, opened, packet, baselines)
                if result is None:
                    return
                counts.update(result)
            elif isinstance(message, AlarmMessage):
                self._sink.ingest_alarm(
                    SyncAlarm(
                        site,
                        message.box,
                        message.channel,
                        message.at,
                        message.kind,
                        message.severity,
                        message.message,
                    )
                )
                counts["alarms"] = 1
            elif isinstance(message, StatusMessage):
                self._sink.ingest_status(_site_status(site, message))
                if message.low_seq is not None:
                    state.window.abandon_below(message.low_seq)
                counts["statuses"] = 1
                last_status = json.dumps(_status_dict(message))
            elif isinstance(message, SchemaMessage):
                try:
                    self._store_schema(site, Schema.from_message(message))
                except PacketError as exc:
                    self._quarantine(site, opened.seq, exc.reason.value, packet)
                    counts["quarantined"] = 1
            elif isinstance(message, ReplyMessage):
                self._asked(
                    site,
                    "reply",
                    f"command {message.command_seq}: "
                    f"{message.status.name} {message.detail}".strip(),
                )
                counts["replies"] = 1
        except WeshError as exc:
            _LOG.warning("Sync receiver: %s packet %d not stored yet: %s", site, opened.seq, exc)
            return
        state.window.accept(opened.seq)
        self._commit(
            site, state, now=now, counts=counts, baselines=baselines, last_status=last_status
        )
        self._ack_soon(site, mono)

    def _data(
        self,
        site: str,
        state: _Site,
        opened: OpenedPacket,
        packet: bytes,
        baselines: list[tuple[str, int, int | float]],
    ) -> dict[str, int] | None:
        """Decode and hand over a DATA message; ``None``: not accepted (yet)."""
        message = opened.message
        assert isinstance(message, DataMessage)  # noqa: S101 - dispatched on its type
        seq = opened.seq
        mono = self._clock().timestamp()
        schema = state.schemas.get(message.schema_hash)
        if schema is None:
            self._ask_schema(site, state, message.schema_hash, mono)
            self._count(site, "not_decodable")
            return None
        try:
            block = decode_block(message, schema, baseline=self._baseline_lookup(site))
        except PacketError as exc:
            if exc.reason in (Reason.UNKNOWN_BASELINE, Reason.UNKNOWN_SCHEMA):
                self._count(site, "not_decodable")
                _LOG.debug("Sync receiver: %s DATA not decodable yet: %s", site, exc)
                return None
            self._quarantine(site, seq, exc.reason.value, packet)
            return {"quarantined": 1}
        readings = to_sync_readings(block, schema, site)
        result = self._sink.ingest(readings)
        for reading in iter_readings(block, schema):
            if reading.channel.kind == "index":
                baselines.append((reading.channel.key, int(reading.at.timestamp()), reading.value))
        return {
            "readings_inserted": result.inserted,
            "readings_duplicate": result.duplicates,
            "readings_rejected": result.rejected,
        }

    def _baseline_lookup(self, site: str) -> Callable[[Any, datetime], int | float | None]:
        def lookup(channel: Any, at: datetime) -> int | float | None:  # noqa: ANN401
            rows = self._db.rows(
                "SELECT value FROM baselines WHERE site = ? AND key = ? AND at_s = ?",
                (site, channel.key, int(at.timestamp())),
            )
            return rows[0][0] if rows else None

        return lookup

    def _commit(
        self,
        site: str,
        state: _Site,
        *,
        now: datetime,
        counts: dict[str, int],
        baselines: Sequence[tuple[str, int, int | float]],
        last_status: str | None,
    ) -> None:
        sets = ", ".join(f"{name} = {name} + ?" for name in counts)
        with self._db.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO baselines (site, key, at_s, value) VALUES (?, ?, ?, ?)",
                [(site, key, at_s, value) for key, at_s, value in baselines],
            )
            conn.execute(
                "UPDATE sites SET window = ?, last_ms = ?, packets = packets + 1, "  # noqa: S608
                "last_status = coalesce(?, last_status)"
                + (f", {sets}" if sets else "")
                + " WHERE site = ?",
                (
                    json.dumps(state.window.to_dict()),
                    _ms(now),
                    last_status,
                    *counts.values(),
                    site,
                ),
            )
            if baselines:
                newest = max(at_s for _, at_s, _ in baselines)
                conn.execute(
                    "DELETE FROM baselines WHERE site = ? AND at_s < ?",
                    (site, newest - int(self.config.baseline_keep_s)),
                )

    def _count(self, site: str, name: str, by: int = 1) -> None:
        with self._db.tx() as conn:
            conn.execute(
                f"UPDATE sites SET {name} = {name} + ? WHERE site = ?",  # noqa: S608
                (by, site),
            )

    def _quarantine(self, site: str, seq: int, reason: str, packet: bytes) -> None:
        _LOG.error(
            "Sync receiver: %s packet %d authenticated but not readable (%s): kept in quarantine",
            site,
            seq,
            reason,
        )
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO quarantine (site, seq, reason, packet, at_ms) VALUES (?, ?, ?, ?, ?)",
                (site, seq, reason, packet, _ms(self._clock())),
            )

    def _asked(self, site: str, what: str, detail: str) -> None:
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO asked (site, at_ms, what, detail) VALUES (?, ?, ?, ?)",
                (site, _ms(self._clock()), what, detail),
            )
            conn.execute(
                "DELETE FROM asked WHERE site = ? AND id <= (SELECT max(id) FROM asked) - 10000",
                (site,),
            )

    def _ask_schema(self, site: str, state: _Site, schema_hash: bytes, mono: float) -> None:
        last = state.schema_asked.get(schema_hash)
        if last is not None and mono - last < self.config.schema_request_interval_s:
            return
        state.schema_asked[schema_hash] = mono
        state.commands.append(RequestSchema(schema_hash))
        self._asked(site, "schema", schema_hash.hex())
        self._count(site, "asked_schemas")
        self._ack_soon(site, mono)

    # ------------------------------------------------------------------ sending

    async def step(self) -> float:
        """Send the ACKs and commands that are due; return seconds until the next is."""
        mono = self._clock().timestamp()
        next_due: float | None = None
        for site, state in list(self._sites.items()):
            if state.ack_due is None or state.peer is None:
                continue
            due = state.ack_due
            if state.last_ack is not None:
                due = max(due, state.last_ack + self.config.ack_min_interval_s)
            if due > mono:
                next_due = due if next_due is None else min(next_due, due)
                continue
            await self._send_ack(site, state, mono)
        self._reassembler.expire(now=mono)
        return 60.0 if next_due is None else max(0.0, min(60.0, next_due - mono))

    async def _send_ack(self, site: str, state: _Site, mono: float) -> None:
        peer = state.peer
        assert peer is not None  # noqa: S101 - checked by the caller
        window_ack = state.window.ack(max_ranges=self.config.max_ranges)
        selective = set(window_ack.selective) | {
            s for s in state.seen_again if s > window_ack.cumulative
        }
        partial = tuple(self._reassembler.partials(peer)[: self.config.max_partials_in_ack])
        messages: list[AnyMessage] = [
            AckMessage(window_ack.cumulative, frozenset(selective), partial)
        ]
        messages.extend(state.commands)
        key = self._keys.for_site(site)
        if key is None:  # the key was removed while the site was talking
            state.ack_due = None
            return
        state.ack_due = None
        state.last_ack = mono
        state.seen_again.clear()
        state.commands.clear()
        for message in messages:
            await self._send_down(site, state, key, peer, message)
        fragments = sum(len(p.missing) for p in partial)
        self._count(site, "acks_sent")
        if fragments:
            self._count(site, "asked_fragments", fragments)
            self._asked(
                site,
                "fragments",
                "; ".join(f"packet {p.packet_id}: {sorted(p.missing)}" for p in partial),
            )

    async def _send_down(
        self, site: str, state: _Site, key: SiteKey, peer: str, message: AnyMessage
    ) -> None:
        seq = state.down.take()
        if state.down.must_persist:
            with self._db.tx() as conn:
                conn.execute(
                    "UPDATE sites SET down_reserved = ? WHERE site = ?",
                    (state.down.reserved_upto, site),
                )
            state.down.persisted()
        packet = seal_packet(message, key=key, seq=seq, pad=self.config.pad)
        for text in fragment_packet(packet, max_chars=self.config.max_chars):
            try:
                await self._transport.send(peer, text)
            except TransientError as exc:
                _LOG.warning("Sync receiver: cannot send to %s now: %s", site, exc)
                return


def _site_status(site: str, message: StatusMessage) -> SiteStatus:
    return SiteStatus(
        site=site,
        at=message.at,
        boxes_up=message.boxes_up,
        boxes_down=message.boxes_down,
        queue_depth=message.queue_depth,
        sms_sent_today=message.sms_sent_today,
        sms_budget=message.sms_budget,
        modem_signal_pct=message.modem_signal_pct,
        clock_offset_s=message.clock_offset_s,
    )


def _status_dict(message: StatusMessage) -> dict[str, Any]:
    return {
        "at": message.at.isoformat(),
        "boxes_up": message.boxes_up,
        "boxes_down": message.boxes_down,
        "queue_depth": message.queue_depth,
        "sms_sent_today": message.sms_sent_today,
        "sms_budget": message.sms_budget,
        "modem_signal_pct": message.modem_signal_pct,
        "clock_offset_s": message.clock_offset_s,
        "low_seq": message.low_seq,
    }
