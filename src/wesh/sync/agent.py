"""The site agent: carries weshd's outbound queue to headquarters, reliably, within an SMS budget.

It runs beside weshd, as its own process reading weshd's store as a queue client
(``Store.open_queue``), or in weshd's process on its ``Store``; it owns a small SQLite file
of its own (``sync-agent.sqlite3`` next to weshd's store; its tables:
:mod:`wesh.sync.agent_state`). Data flows once,
in one direction, through durable steps::

    weshd Store queue ──pending()──▶ accumulators (hour)  ──close──▶ items ──pack──▶ packets
         ▲   (raw samples, alarms)      or items (sample)              │   (DATA, ALARM, SCHEMA,
         │                                                             │    STATUS, REPLY: sealed)
         └──acknowledge(upto watermark, alarm seqs) ◀── ACK from HQ ◀──┘── fragments ─▶ transport

* **Reading the queue.** Samples are read in queue order after a persisted cursor. In
  ``hour`` mode (the default) each numeric sample goes into its channel's hour
  accumulator (gauge: mean; index: last value); an hour is *closed* ``close_delay_s``
  after its end and becomes one item. A sample that arrives for an hour already closed
  travels as a ``sample`` item on the sample grid. In ``sample`` mode every sample is an
  item at its time floored to ``sample_grid_s`` (one value per channel and grid step; a
  second value in the same step replaces the first and is counted as *merged*). States
  and texts never travel (counted as *local only*). The cursor, accumulators and items
  commit in one transaction.
* **Packing** (:mod:`wesh.sync.agent_pack`). Items go into DATA blocks
  (:mod:`wesh.sync.readings`) of up to ``max_steps_per_packet`` grid steps and as many
  channels as fit ``max_fragments`` SMS. Index values are deltas from baselines HQ
  acknowledged. Priority: alarms, then the schema, status and replies, then the
  *latest* items (newer than ``latest_window_s``), then the backlog, oldest first.
* **Sending.** A packet is sealed with a sequence number reserved durably beforehand,
  stored, *then* sent: each fragment is one SMS. Unacknowledged packets are sent again
  with exponential backoff and jitter; after ``absolute_after`` unanswered sends a
  packet that used baselines is re-encoded without them (under a new number), and a
  packet left ``reseal_distance`` numbers behind is re-encoded too (HQ's replay window
  is 1,024 numbers). Fragments HQ reports missing (partial ACK) are re-sent at once.
* **Acknowledgement.** An ACK removes the packets it covers, records their index values
  as baselines, then acknowledges weshd's queue: alarms by seq, readings up to the
  *watermark* (below the oldest raw sample whose data HQ has not confirmed). A crash
  between the two only repeats an acknowledgement.
* **Budget.** SMS (fragments) are counted per local day of the site. Data may use the
  budget minus ``alarm_reserve``; alarms, the schema, status and replies may use all
  of it. What the budget holds back is logged once per day and reported in STATUS
  (``queue_depth``) and ``wesh sync status``.
* **Status.** A STATUS packet every ``status_interval_s`` (and soon after a restart or
  after numbers were abandoned) carries ``low_seq`` so that HQ settles abandoned numbers.
* **Commands.** HQ's COMMANDs run once (the agent keeps a replay window of HQ's numbers).
  Those that need weshd (``SetRelay``, ``SetInterval`` of the poll, ``SetClock``,
  ``ResendTimes``) are written to the state file with the acceptance of their number,
  then run one at a time, in order, by a worker task through weshd's API (libwesh; see
  :mod:`wesh.sync.agent_commands`); each is answered by one REPLY with its outcome. A
  command interrupted by a restart is answered ``FAILED`` (not run again: a toggle must
  not run twice).
* **Off the loop.** Calls into weshd's store (reading the queue, acknowledging, counting)
  run in one dedicated worker thread when ``queue_in_thread`` is set (``wesh sync agent``
  sets it), one at a time and in order, so that an acknowledgement waiting for weshd's
  write lock never stalls the loop.

Nothing is dropped silently: every sample is either carried, counted as local only
(states, texts) or merged (sample mode), and weshd's queue keeps it until HQ confirmed.
A crash at any point repeats work, never loses it; HQ deduplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import random
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

from wesh.errors import TransientError, UsageError, WeshError
from wesh.gateway.channels import GatewayEvent, Sample
from wesh.sync._wire import PacketError, Reason
from wesh.sync.agent_commands import (
    MAX_COMMANDS,
    RESEND_PAGE,
    RESEND_TX,
    CommandRunner,
    clip_utf8,
    needs_weshd,
)
from wesh.sync.agent_commands import ResendAccumulator as _ResendAccumulator  # noqa: F401 - tests
from wesh.sync.agent_pack import DataPacker
from wesh.sync.agent_state import (
    EPOCH,
    HOUR_ITEM,
    HOUR_S,
    QUALITY_RANK,
    SAMPLE_ITEM,
    AgentState,
    AgentStatus,
    from_s,
    read_agent_status,
    status_of,
    to_s,
)
from wesh.sync.crypto import Direction, SeqReservation
from wesh.sync.fragment import Reassembler, fragment_packet
from wesh.sync.keys import KeyRing, SiteKey
from wesh.sync.packet import (
    MAX_PACKET_BYTES,
    OVERHEAD_BYTES,
    AckMessage,
    AlarmMessage,
    AnyMessage,
    IntervalTarget,
    PacketType,
    ReplayWindow,
    ReplyMessage,
    ReplyStatus,
    RequestSchema,
    RequestStatus,
    ResendSeqs,
    SchemaMessage,
    SetInterval,
    StatusMessage,
    open_packet,
    seal_packet,
)
from wesh.sync.readings import BaselineBook
from wesh.sync.schema import Schema, SchemaChannel, default_resolution
from wesh.sync.transport import Message, Transport, sms_parts

__all__ = [
    "AgentConfig",
    "AgentStatus",
    "OutboundQueue",
    "SyncAgent",
    "read_agent_status",
]

_LOG = logging.getLogger(__name__)

_PRIO_ALARM, _PRIO_CONTROL, _PRIO_DATA = 0, 1, 2
_MAX_ALARM_TEXT: Final = 120  # UTF-8 bytes of an alarm's message that travel
_SEQ_BLOCK: Final = 32  # numbers reserved at a time (a restart skips at most this many)
_RESEND_PAGE: Final = RESEND_PAGE  # ResendTimes' knobs, read when an agent is made
_RESEND_TX: Final = RESEND_TX  # (tests lower them)
_T = TypeVar("_T")


class OutboundQueue(Protocol):
    """What the agent needs of weshd's store (``Store`` or ``QueueClient`` of its store module)."""

    def pending(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, Sample]]:
        """Unacknowledged queued readings after ``after_seq``, in seq order."""
        ...

    def pending_events(
        self, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, int, GatewayEvent]]:
        """Unacknowledged queued events as ``(seq, event id, event)``, in seq order."""
        ...

    def acknowledge(self, upto_seq: int | None = None, *, seqs: Iterable[int] = ()) -> int:
        """Acknowledge readings up to ``upto_seq`` and the rows ``seqs``."""
        ...

    def queue_depth(self) -> int:
        """Unacknowledged queue rows."""
        ...


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """How the agent packs and paces (defaults suit SMS; see ``docs/sync.md``).

    Attributes:
        site: the site id (weshd's ``[site] id``; the key's site).
        hq_peer: where packets go: HQ's phone number (SMS) or its id (MQTT, loopback).
        mode: ``"hour"`` (hourly aggregates) or ``"sample"`` (samples on a grid).
        sample_grid_s: grid of sample items (and of late samples in hour mode).
        close_delay_s: an hour is closed this long after its end.
        sms_budget_per_day: SMS a local day (0: no budget).
        alarm_reserve: SMS of the budget that data may not use.
        latest_window_s: items newer than this go before the backlog.
        max_chars: longest text of one transport message (160: SMS; ``None``: one text
            a packet, for MQTT).
        max_fragments: most SMS of one DATA packet.
        max_packet_bytes: most bytes of one packet when ``max_chars`` is ``None``.
        max_steps_per_packet: most grid steps of one DATA block.
        max_in_flight: most unacknowledged packets (alarms apart).
        retry_initial_s / retry_max_s / retry_jitter: resend backoff.
        fragment_retry_s: fragments HQ reports missing are sent again only this long
            after the packet's last sending (they may still be on their way).
        absolute_after: sends of a baseline packet before it is re-encoded absolute.
        reseal_distance: numbers behind the newest before a packet is re-encoded.
        status_interval_s: period of STATUS packets.
        upload_interval_s: readings wait until the oldest waiting one is this old (past
            its hour), then everything waiting goes: fewer, fuller packets (0: at once).
        read_batch: queue rows read per step.
        poll_s: how often the store's queue is read when nothing else is due.
        timezone: the site's time zone (the budget's day).
        pad: fill the last SMS of each packet (off for MQTT).
        seed: seed of the backoff jitter.
        weshd_socket / weshd_url / weshd_token: where weshd's API is (its Unix socket, or
            its TCP URL and token), for the commands that need weshd; neither: those
            commands are answered ``UNSUPPORTED``.
        weshd_timeout_s: time allowed for one call to weshd's API (above a box's
            ``timeout_s``: a relay command waits for the box).
        clock_stale_s: a ``SetClock`` whose time is further than this from the
            gateway's is answered ``STALE``.
        queue_in_thread: call weshd's store from a dedicated worker thread, off the
            event loop (``wesh sync agent`` sets it); ``False`` (the default) calls it in
            the loop, which virtual-time tests need (their clock does not wait for a
            thread).
    """

    site: str
    hq_peer: str
    mode: Literal["hour", "sample"] = "hour"
    sample_grid_s: int = 60
    close_delay_s: float = 600.0
    sms_budget_per_day: int = 200
    alarm_reserve: int = 20
    latest_window_s: float = 7200.0
    max_chars: int | None = 160
    max_fragments: int = 8
    max_packet_bytes: int = 4096
    max_steps_per_packet: int = 24
    max_in_flight: int = 16
    retry_initial_s: float = 900.0
    retry_max_s: float = 6 * 3600.0
    retry_jitter: float = 0.2
    fragment_retry_s: float = 120.0
    absolute_after: int = 3
    reseal_distance: int = 512
    status_interval_s: float = 6 * 3600.0
    upload_interval_s: float = 6 * 3600.0
    read_batch: int = 5000
    poll_s: float = 5.0
    timezone: str = "Europe/Paris"
    pad: bool = True
    seed: int | None = None
    weshd_socket: str | None = None
    weshd_url: str | None = None
    weshd_token: str | None = field(default=None, repr=False)
    weshd_timeout_s: float = 30.0
    clock_stale_s: float = 900.0
    queue_in_thread: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("hour", "sample"):
            raise UsageError(f"mode must be 'hour' or 'sample', not {self.mode!r}")
        if not 1 <= self.sample_grid_s <= HOUR_S or HOUR_S % self.sample_grid_s:
            raise UsageError("sample_grid_s must divide 3600")
        if self.max_chars is not None and self.max_chars < 16:
            raise UsageError("max_chars must be at least 16")
        if not 1 <= self.max_fragments <= 255 or not 1 <= self.max_steps_per_packet <= 744:
            raise UsageError("max_fragments 1..255, max_steps_per_packet 1..744")
        if not 1 <= self.max_in_flight <= 64:
            raise UsageError("max_in_flight must be 1..64 (fragment ids are 7 bits)")
        if not 16 <= self.reseal_distance <= 768:
            raise UsageError("reseal_distance must be 16..768 (HQ's replay window is 1024)")
        if self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise UsageError("retry_initial_s > 0 and retry_max_s >= retry_initial_s")
        if self.sms_budget_per_day < 0 or self.alarm_reserve < 0:
            raise UsageError("sms_budget_per_day and alarm_reserve must not be negative")
        if self.weshd_socket is not None and self.weshd_url is not None:
            raise UsageError("give weshd_socket or weshd_url, not both")
        if self.weshd_timeout_s <= 0 or self.clock_stale_s <= 0:
            raise UsageError("weshd_timeout_s and clock_stale_s must be positive")
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"unknown time zone {self.timezone!r}") from exc

    @property
    def packet_bytes(self) -> int:
        """The largest DATA packet, in bytes."""
        if self.max_chars is None:
            return min(self.max_packet_bytes, MAX_PACKET_BYTES)
        whole = self.max_chars // 2
        chunk = whole - 3
        return whole if self.max_fragments == 1 else max(whole, self.max_fragments * chunk)


# ----------------------------------------------------------------------------- pure helpers


def backoff_s(
    attempts: int, *, initial_s: float, max_s: float, jitter: float, rng: random.Random
) -> float:
    """Delay before the next send of a packet sent ``attempts`` times (pure but ``rng``)."""
    base = min(max_s, initial_s * float(2 ** max(0, min(attempts - 1, 30))))
    return base * (1.0 + jitter * (2.0 * rng.random() - 1.0)) if jitter else base


# ----------------------------------------------------------------------------- the agent


class SyncAgent:
    """The site agent (module docstring).

    Use :meth:`run`, or :meth:`step` and :meth:`handle_message` to drive it by hand.

    Args:
        config: packing and pacing.
        key: the site's key (its ``site`` must be ``config.site``).
        queue: weshd's store (or anything with its queue API).
        state_path: the agent's own SQLite file.
        transport: how texts reach headquarters.
        schema: the channels of the site (``schema_from_config(weshd_config)``); channels
            met in the queue but missing here are added (and announced).
        clock: wall clock, aware UTC.
        boxes: returns ``(boxes up, boxes down)`` for STATUS (default: unknown, 0 and 0).
    """

    def __init__(
        self,
        *,
        config: AgentConfig,
        key: SiteKey,
        queue: OutboundQueue,
        state_path: Path,
        transport: Transport,
        schema: Schema,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        boxes: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        if key.site != config.site:
            raise UsageError(f"the key is for site {key.site!r}, not {config.site!r}")
        self.config = config
        self._key = key
        self._keys = KeyRing({key.site: key})
        self._queue = queue
        self._transport = transport
        self._clock = clock
        self._boxes = boxes
        self._rng = random.Random(config.seed)  # noqa: S311 - jitter, not cryptography
        self._tz = ZoneInfo(config.timezone)
        self._state = AgentState(state_path)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._reassembler = Reassembler(timeout_s=3600.0)
        self._budget_warned_day: str | None = None
        self._pending_replies: list[ReplyMessage] = []
        self._commands_ready = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._link_down = False
        self._partial_resends: dict[int, list[int]] = {}
        self._closed = False
        self._base_schema = schema
        self._book = BaselineBook(per_channel=48)
        self._packer = DataPacker(
            config=config, state=self._state, schema=lambda: self._schema, book=self._book
        )
        self._schema = schema
        self._commands = CommandRunner(
            config=config,
            state=self._state,
            clock=clock,
            schema=lambda: self._schema,
            on_reply=self._on_reply,
            resend_page=_RESEND_PAGE,
            resend_tx=_RESEND_TX,
        )
        self._open()

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        state = self._state
        with state.tx() as conn:
            state.set_meta(conn, "site", self.config.site)
            state.set_meta(conn, "sms_budget", self.config.sms_budget_per_day)
            old_key = state.meta("key_id")
            if old_key is not None and int(old_key) != self._key.key_id:
                self._rekey(conn, int(old_key))
            state.set_meta(conn, "key_id", self._key.key_id)
            # a STATUS soon: its low_seq settles the numbers left unused before the restart
            state.set_meta(conn, "status_due_ms", 0)
            for (seq,) in conn.execute("SELECT seq FROM commands ORDER BY seq").fetchall():
                self._pending_replies.append(
                    ReplyMessage(
                        int(seq), ReplyStatus.FAILED, "interrupted by a restart; send it again"
                    )
                )
            conn.execute("DELETE FROM commands")
        self._reservation = SeqReservation(
            next_seq=int(state.meta("seq_reserved", 0)) + 1, block=_SEQ_BLOCK
        )
        window = state.meta("down_window")
        self._down = (
            ReplayWindow.from_dict(json.loads(window)) if window is not None else ReplayWindow()
        )
        for key, at_s, value in state.rows("SELECT key, at_s, value FROM baselines ORDER BY at_s"):
            self._book.record(str(key), from_s(int(at_s)), value)
        self._schema = self._current_schema()
        self._register_schema(self._schema)

    def _rekey(self, conn: sqlite3.Connection, old_key_id: int) -> None:
        """Start numbers again under a new key; re-pack what the old key sealed."""
        _LOG.warning(
            "Sync agent: site key changed (id %d -> %d): in-flight packets are packed again",
            old_key_id,
            self._key.key_id,
        )
        conn.execute("UPDATE items SET packet_seq = NULL")
        conn.execute("UPDATE alarms SET packet_seq = NULL WHERE acked = 0")
        conn.execute("DELETE FROM packets")
        conn.execute("UPDATE schemas SET acked = 0")
        self._state.delete_meta(conn, "seq_reserved", "down_window")

    def close(self) -> None:
        """Close the state file (idempotent); the agent must not be running."""
        if not self._closed:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            self._state.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()
        self._wake.set()

    def status(self) -> AgentStatus:
        """Return a snapshot of the agent's state."""
        return status_of(self._state, budget=self.config.sms_budget_per_day)

    async def run(self) -> None:
        """Read, pack, send and listen until :meth:`stop`; transient errors are retried."""
        receiver = asyncio.create_task(self._listen(), name=f"sync-agent-listen-{self.config.site}")
        commands = asyncio.create_task(
            self._command_worker(), name=f"sync-agent-commands-{self.config.site}"
        )
        try:
            while not self._stop.is_set():
                try:
                    delay = await self.step()
                except WeshError as exc:
                    _LOG.warning("Sync agent step failed (retrying): %s", exc)
                    delay = self.config.poll_s
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            for task in (receiver, commands):
                task.cancel()
            for task in (receiver, commands):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self) -> None:
        async for message in self._transport.messages():
            try:
                self.handle_message(message)
            except WeshError as exc:
                _LOG.warning("Sync agent: a received message could not be handled: %s", exc)
            self._wake.set()

    # ------------------------------------------------------------------ one step

    async def step(self) -> float:
        """Do what is due now; return the seconds until something else is due."""
        now = self._clock()
        await self._read_queue()
        self._close_hours(now)
        await self._acknowledge_store()
        await self._send_due(now)
        return self._next_delay(self._clock())

    def _now_ms(self) -> int:
        return math.floor((self._clock() - EPOCH).total_seconds() * 1000)

    async def _blocking(self, call: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:  # noqa: ANN401
        """Call weshd's store: in the agent's one worker thread (in order), or in the loop."""
        if not self.config.queue_in_thread:
            return call(*args, **kwargs)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-queue")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))

    # ------------------------------------------------------------------ schema

    def _current_schema(self) -> Schema:
        extras = [
            SchemaChannel(
                str(box), str(path), "index" if kind == "index" else "gauge", unit, float(res)
            )
            for box, path, kind, unit, res in self._state.rows(
                "SELECT box, path, kind, unit, resolution FROM extra_channels"
            )
        ]
        channels = {(c.box, c.path): c for c in self._base_schema}
        for channel in extras:
            channels.setdefault((channel.box, channel.path), channel)
        return Schema(channels.values())

    def _register_schema(self, schema: Schema) -> None:
        """Make ``schema`` the one in force; remember its channels for good.

        A channel dropped from weshd's configuration stays in the schema (an unused
        column costs nothing): readings of it may still wait here.
        """
        with self._state.tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO schemas (hash, canonical, created_ms) VALUES (?, ?, ?)",
                (schema.hash, schema.canonical(), self._now_ms()),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO extra_channels (box, path, kind, unit, resolution) "
                "VALUES (?, ?, ?, ?, ?)",
                [(c.box, c.path, c.kind, c.unit, c.resolution) for c in schema],
            )
            self._state.set_meta(conn, "schema_hash", schema.hash)

    def _schema_acked(self) -> bool:
        return bool(
            self._state.one("SELECT acked FROM schemas WHERE hash = ?", (self._schema.hash,))
        )

    def _channel_for(
        self, sample: Sample, extras: dict[tuple[str, str], SchemaChannel]
    ) -> SchemaChannel | None:
        index = self._schema.index_of(sample.box, sample.path)
        if index is not None:
            return self._schema[index]
        channel = extras.get((sample.box, sample.path))
        if channel is None and sample.kind in ("index", "gauge"):
            try:
                channel = SchemaChannel(
                    sample.box,
                    sample.path,
                    sample.kind,
                    sample.unit,
                    default_resolution(sample.path, sample.unit),
                )
            except UsageError as exc:
                _LOG.warning("Sync agent: channel %s cannot travel: %s", sample.channel, exc)
                return None
            extras[sample.box, sample.path] = channel
        return channel

    # ------------------------------------------------------------------ reading the queue

    async def _read_queue(self) -> None:
        state = self._state
        try:
            events = await self._blocking(
                self._queue.pending_events, after_seq=int(state.meta("event_cursor", 0)), limit=1000
            )
        except WeshError as exc:
            _LOG.warning("Sync agent: cannot read weshd's queue (retrying): %s", exc)
            return
        if events:
            with state.tx() as conn:
                for seq, _event_id, event in events:
                    conn.execute(
                        "INSERT OR IGNORE INTO alarms (event_seq, at_s, severity, kind, message, "
                        "box, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            seq,
                            to_s(event.at),
                            event.severity,
                            event.kind,
                            clip_utf8(event.message, _MAX_ALARM_TEXT),
                            event.box,
                            event.channel,
                        ),
                    )
                state.set_meta(conn, "event_cursor", events[-1][0])
        for _ in range(20):  # at most 20 batches a step
            await asyncio.sleep(0)  # let weshd (same loop with --with-weshd) breathe
            try:
                rows = await self._blocking(
                    self._queue.pending,
                    after_seq=int(state.meta("reading_cursor", 0)),
                    limit=self.config.read_batch,
                )
            except WeshError as exc:
                _LOG.warning("Sync agent: cannot read weshd's queue (retrying): %s", exc)
                return
            if not rows:
                return
            self._take_samples(rows)
            if len(rows) < self.config.read_batch:
                return

    def _take_samples(self, rows: Sequence[tuple[int, Sample]]) -> None:
        extras: dict[tuple[str, str], SchemaChannel] = {}
        local_only = merged = late = 0
        hour_acc: dict[tuple[str, str, int], list[Any]] = {}
        sample_items: dict[tuple[str, str, int], tuple[int | float, int, int, bool]] = {}
        closed_cache: dict[tuple[str, str], int] = {}
        grid = self.config.sample_grid_s
        for seq, sample in rows:
            value = sample.value
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                local_only += 1
                continue
            channel = self._channel_for(sample, extras)
            if channel is None:
                local_only += 1
                continue
            at_ms = math.floor((sample.at - EPOCH).total_seconds() * 1000)
            at_s = at_ms // 1000
            quality = QUALITY_RANK.get(sample.quality, 2)
            is_index = channel.kind == "index"
            key2 = (sample.box, sample.path)
            if self.config.mode == "hour":
                hour = at_s - at_s % HOUR_S
                closed = closed_cache.get(key2)
                if closed is None:
                    closed = int(
                        self._state.one(
                            "SELECT upto_s FROM closed WHERE box = ? AND path = ?", key2
                        )
                        or 0
                    )
                    closed_cache[key2] = closed
                if hour >= closed:
                    acc = hour_acc.get((*key2, hour))
                    if acc is None:
                        hour_acc[(*key2, hour)] = [1, float(value), at_ms, value, quality, seq]
                    else:
                        acc[0] += 1
                        acc[1] += float(value)
                        if at_ms >= acc[2]:
                            acc[2], acc[3] = at_ms, value
                        acc[4] = max(acc[4], quality)
                        acc[5] = min(acc[5], seq)
                    continue
                late += 1
            slot = at_s - at_s % grid
            previous = sample_items.get((*key2, slot))
            first_seq = seq
            if previous is not None:
                merged += 1
                first_seq = min(seq, previous[2])
            sample_items[(*key2, slot)] = (value, quality, first_seq, is_index)
        with self._state.tx() as conn:
            for (box, path, hour), (n, total, last_ms, last, quality, min_seq) in hour_acc.items():
                conn.execute(
                    "INSERT INTO accum (box, path, hour_s, n, total, last_at_ms, last_value, "
                    "quality, min_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (box, path, hour_s) DO UPDATE SET n = n + excluded.n, "
                    "total = total + excluded.total, "
                    "last_value = CASE WHEN excluded.last_at_ms >= last_at_ms "
                    "THEN excluded.last_value ELSE last_value END, "
                    "last_at_ms = max(last_at_ms, excluded.last_at_ms), "
                    "quality = max(quality, excluded.quality), "
                    "min_seq = min(min_seq, excluded.min_seq)",
                    (box, path, hour, n, total, last_ms, last, quality, min_seq),
                )
            for (box, path, slot), (value, quality, min_seq, is_index) in sample_items.items():
                changed = conn.execute(
                    "UPDATE items SET value = ?, quality = ?, min_seq = min(min_seq, ?) "
                    "WHERE family = ? AND box = ? AND path = ? AND at_s = ? AND packet_seq IS NULL",
                    (value, quality, min_seq, SAMPLE_ITEM, box, path, slot),
                ).rowcount
                if changed:
                    merged += 1
                    continue
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO items (family, box, path, at_s, value, quality, "
                    "is_index, min_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (SAMPLE_ITEM, box, path, slot, value, quality, int(is_index), min_seq),
                ).rowcount
                if not inserted:  # already sent with another value: HQ keeps the first
                    merged += 1
            for channel in extras.values():
                conn.execute(
                    "INSERT OR IGNORE INTO extra_channels (box, path, kind, unit, resolution) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (channel.box, channel.path, channel.kind, channel.unit, channel.resolution),
                )
            self._state.set_meta(conn, "reading_cursor", rows[-1][0])
            for name, count in (
                ("samples_read", len(rows)),
                ("local_only", local_only),
                ("merged", merged),
                ("late_samples", late),
                ("items_made", len(sample_items)),
            ):
                self._state.bump(conn, name, count)
        if extras:
            for channel in extras.values():
                _LOG.info(
                    "Sync agent: new channel %s/%s added to the schema", channel.box, channel.path
                )
            self._schema = self._current_schema()
            self._register_schema(self._schema)

    def _close_hours(self, now: datetime) -> None:
        limit_s = to_s(now) - HOUR_S - math.ceil(self.config.close_delay_s)
        due = self._state.rows(
            "SELECT box, path, hour_s, n, total, last_value, quality, min_seq FROM accum "
            "WHERE hour_s <= ? ORDER BY hour_s LIMIT 20000",
            (limit_s,),
        )
        if not due:
            return
        with self._state.tx() as conn:
            for box, path, hour, n, total, last, quality, min_seq in due:
                index = self._schema.index_of(box, path)
                is_index = index is not None and self._schema[index].kind == "index"
                value = last if is_index else total / n
                conn.execute(
                    "INSERT OR IGNORE INTO items (family, box, path, at_s, value, quality, "
                    "is_index, min_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (HOUR_ITEM, box, path, hour, value, quality, int(is_index), min_seq),
                )
                conn.execute(
                    "DELETE FROM accum WHERE box = ? AND path = ? AND hour_s = ?", (box, path, hour)
                )
                conn.execute(
                    "INSERT INTO closed (box, path, upto_s) VALUES (?, ?, ?) ON CONFLICT "
                    "(box, path) DO UPDATE SET upto_s = max(upto_s, excluded.upto_s)",
                    (box, path, hour + HOUR_S),
                )
            self._state.bump(conn, "items_made", len(due))

    # ------------------------------------------------------------------ acknowledging weshd

    async def _acknowledge_store(self) -> None:
        state = self._state
        cursor = int(state.meta("reading_cursor", 0))
        lows = [
            state.one("SELECT min(min_seq) FROM items"),
            state.one("SELECT min(min_seq) FROM accum"),
        ]
        watermark = min([cursor + 1, *(int(v) for v in lows if v is not None)]) - 1
        alarm_seqs = [int(r[0]) for r in state.rows("SELECT event_seq FROM alarms WHERE acked = 1")]
        done_upto = int(state.meta("store_acked_upto", 0))
        if watermark <= done_upto and not alarm_seqs:
            return
        try:
            await self._blocking(
                self._queue.acknowledge,
                upto_seq=watermark if watermark > done_upto else None,
                seqs=alarm_seqs,
            )
        except WeshError as exc:
            _LOG.warning("Sync agent: cannot acknowledge weshd's queue (retrying): %s", exc)
            return
        with state.tx() as conn:
            if watermark > done_upto:
                state.set_meta(conn, "store_acked_upto", watermark)
            conn.executemany("DELETE FROM alarms WHERE event_seq = ?", [(s,) for s in alarm_seqs])

    # ------------------------------------------------------------------ budget

    def _budget_left(self, prio: int, now: datetime) -> int:
        budget = self.config.sms_budget_per_day
        if budget == 0:
            return 1 << 30
        day = now.astimezone(self._tz).date().isoformat()
        used = int(self._state.meta("sms_today", 0)) if self._state.meta("sms_day") == day else 0
        allowed = budget if prio < _PRIO_DATA else budget - self.config.alarm_reserve
        return max(0, allowed - used)

    def _count_sms(self, conn: sqlite3.Connection, count: int, now: datetime) -> None:
        day = now.astimezone(self._tz).date().isoformat()
        if self._state.meta("sms_day") != day:
            self._state.set_meta(conn, "sms_day", day)
            self._state.set_meta(conn, "sms_today", 0)
        self._state.set_meta(conn, "sms_today", int(self._state.meta("sms_today", 0)) + count)

    def _note_budget_blocked(self, now: datetime) -> None:
        day = now.astimezone(self._tz).date().isoformat()
        if self._budget_warned_day != day:
            self._budget_warned_day = day
            status = self.status()
            _LOG.warning(
                "Sync agent: SMS budget of %d for %s reached: %d reading(s) wait (oldest %s), "
                "%d alarm(s) wait, %d packet(s) unacknowledged",
                self.config.sms_budget_per_day,
                day,
                status.items_waiting,
                status.oldest_waiting_at.isoformat() if status.oldest_waiting_at else "-",
                status.alarms_waiting,
                status.packets_in_flight,
            )
        with self._state.tx() as conn:
            self._state.bump(conn, "budget_blocked")

    # ------------------------------------------------------------------ sending

    async def _send_due(self, now: datetime) -> None:
        await self._send_partials(now)
        await self._resend_due(now, max_prio=_PRIO_ALARM)
        await self._send_alarms(now)
        await self._resend_due(now, max_prio=_PRIO_CONTROL)
        await self._send_control(now)
        await self._resend_due(now, max_prio=_PRIO_DATA)
        await self._send_data(now)

    def _in_flight(self, *, prio: int) -> int:
        return int(self._state.one("SELECT count(*) FROM packets WHERE prio = ?", (prio,)))

    async def _send_alarms(self, now: datetime) -> None:
        rows = self._state.rows(
            "SELECT event_seq, at_s, severity, kind, message, box, channel FROM alarms "
            "WHERE acked = 0 AND packet_seq IS NULL ORDER BY event_seq LIMIT 32"
        )
        for event_seq, at_s, severity, kind, message, box, channel in rows:
            alarm = AlarmMessage(
                from_s(int(at_s)),
                str(severity) if severity in ("info", "warning", "alarm") else "alarm",
                clip_utf8(str(kind), 60),
                clip_utf8(str(message), _MAX_ALARM_TEXT),
                box,
                channel,
            )
            stored = await self._send_new(
                alarm,
                prio=_PRIO_ALARM,
                now=now,
                link="UPDATE alarms SET packet_seq = ? WHERE event_seq = ?",
                link_args=(int(event_seq),),
            )
            if not stored or self._link_down:
                return

    async def _send_control(self, now: datetime) -> None:
        schemas = self._state.rows(
            "SELECT hash, canonical FROM schemas WHERE acked = 0 AND (hash = ? OR wanted = 1) "
            "AND hash NOT IN (SELECT schema_hash FROM packets WHERE type = ?)",
            (self._schema.hash, int(PacketType.SCHEMA)),
        )
        for schema_hash, canonical in schemas:
            message = SchemaMessage(bytes(schema_hash), bytes(canonical))
            stored = await self._send_new(
                message, prio=_PRIO_CONTROL, now=now, schema_hash=bytes(schema_hash)
            )
            if not stored or self._link_down:
                return
        while self._pending_replies:
            if not await self._send_new(self._pending_replies[0], prio=_PRIO_CONTROL, now=now):
                return
            self._pending_replies.pop(0)
            if self._link_down:
                return
        if self._now_ms() >= int(self._state.meta("status_due_ms", 0)):
            await self._send_status(now)

    async def _send_partials(self, now: datetime) -> None:
        """Send the fragments HQ reported missing (not before ``fragment_retry_s``).

        A request for a packet sent too recently waits (its fragments may still be on
        their way); the latest request for a packet replaces older ones.
        """
        holdoff_ms = int(self.config.fragment_retry_s * 1000)
        for seq, indexes in sorted(self._partial_resends.items()):
            row = self._state.rows(
                "SELECT sealed, prio, sent_ms FROM packets WHERE seq = ?", (seq,)
            )
            if not row:
                del self._partial_resends[seq]  # acknowledged since
                continue
            sealed, prio, sent_ms = row[0]
            if int(sent_ms) + holdoff_ms > self._now_ms():
                continue  # later (see _next_delay)
            if len(indexes) > self._budget_left(int(prio), now):
                self._note_budget_blocked(now)
                return
            del self._partial_resends[seq]
            with self._state.tx() as conn:
                conn.execute(
                    # HQ is receiving it: the backoff starts again
                    "UPDATE packets SET next_ms = max(next_ms, ?), sent_ms = ?, attempts = 1 "
                    "WHERE seq = ?",
                    (self._now_ms() + int(self.config.retry_initial_s * 1000), self._now_ms(), seq),
                )
                self._state.bump(conn, "fragments_resent", len(indexes))
            await self._transmit(seq, self._texts(bytes(sealed)), indexes, now)
            if self._link_down:
                return

    async def _send_status(self, now: datetime) -> None:
        with self._state.tx() as conn:  # a newer status replaces an unacknowledged one
            conn.execute("DELETE FROM packets WHERE type = ?", (int(PacketType.STATUS),))
        up, down = self._boxes() if self._boxes is not None else (0, 0)  # in the loop
        try:
            depth = await self._blocking(self._queue.queue_depth)
        except WeshError:
            depth = 0
        low = self._state.one("SELECT min(seq) FROM packets")
        next_seq = self._reservation.next_seq
        low_seq = min(int(low), next_seq) if low is not None else next_seq
        today = self._state.meta("sms_day") == now.astimezone(self._tz).date().isoformat()
        status = StatusMessage(
            at=from_s(to_s(now)),
            boxes_up=up,
            boxes_down=down,
            queue_depth=depth,
            sms_sent_today=int(self._state.meta("sms_today", 0)) if today else 0,
            sms_budget=self.config.sms_budget_per_day,
            low_seq=low_seq,
        )
        interval_s = float(self._state.meta("status_interval_s", self.config.status_interval_s))
        if await self._send_new(status, prio=_PRIO_CONTROL, now=now):
            with self._state.tx() as conn:
                self._state.set_meta(conn, "status_due_ms", self._now_ms() + int(interval_s * 1000))

    async def _send_data(self, now: datetime) -> None:
        if not self._schema_acked():
            return
        upload_s = float(self._state.meta("upload_interval_s", self.config.upload_interval_s))
        if upload_s > 0:
            ripe = [
                int(oldest) + step + upload_s <= to_s(now)
                for family, step in ((HOUR_ITEM, HOUR_S), (SAMPLE_ITEM, self.config.sample_grid_s))
                if (
                    oldest := self._state.one(
                        "SELECT min(at_s) FROM items WHERE family = ? AND packet_seq IS NULL",
                        (family,),
                    )
                )
                is not None
            ]
            if not any(ripe):
                return  # nothing has waited long enough: let more gather (fewer SMS)
        while self._in_flight(prio=_PRIO_DATA) < self.config.max_in_flight:
            left = self._budget_left(_PRIO_DATA, now)
            if left < 1:
                if self._state.one("SELECT 1 FROM items WHERE packet_seq IS NULL LIMIT 1"):
                    self._note_budget_blocked(now)
                break
            draft = self._packer.draft(now, max_texts=left)
            if draft is None:
                break
            placeholders = ",".join("?" * len(draft.item_ids))
            if not await self._send_new(
                draft.message,
                prio=_PRIO_DATA,
                now=now,
                based=draft.based,
                link=f"UPDATE items SET packet_seq = ? WHERE id IN ({placeholders})",  # noqa: S608
                link_args=tuple(draft.item_ids),
                schema_hash=self._schema.hash,
            ):
                break
            if self._link_down:
                break

    def _take_seq(self, conn: sqlite3.Connection) -> int:
        seq = self._reservation.take()
        if self._reservation.must_persist:
            self._state.set_meta(conn, "seq_reserved", self._reservation.reserved_upto)
        return seq

    def _texts(self, sealed: bytes) -> list[str]:
        return fragment_packet(sealed, max_chars=self.config.max_chars)

    def _texts_for(self, size: int) -> int:
        """How many texts a packet of ``size`` bytes takes (before padding)."""
        max_chars = self.config.max_chars
        if max_chars is None or 2 * size <= max_chars:
            return 1
        return -(-size // (max_chars // 2 - 3))

    async def _send_new(
        self,
        message: AnyMessage,
        *,
        prio: int,
        now: datetime,
        based: bool = False,
        link: str | None = None,
        link_args: tuple[int, ...] = (),
        schema_hash: bytes | None = None,
    ) -> bool:
        """Seal, store and send a new packet; ``False`` when the budget or link refused it.

        A stored packet whose sending failed (the link is down: ``self._link_down``) is
        sent again later, like a lost one.
        """
        if self._link_down:
            return False  # the packets in flight probe the link; nothing new meanwhile
        texts_needed = self._texts_for(len(message.encode()) + 1 + OVERHEAD_BYTES)
        if texts_needed > self._budget_left(prio, now):
            self._note_budget_blocked(now)
            return False
        with self._state.tx() as conn:
            seq = self._take_seq(conn)
            sealed = seal_packet(message, key=self._key, seq=seq, pad=self.config.pad)
            texts = self._texts(sealed)
            retry = backoff_s(
                1,
                initial_s=self.config.retry_initial_s,
                max_s=self.config.retry_max_s,
                jitter=self.config.retry_jitter,
                rng=self._rng,
            )
            conn.execute(
                "INSERT INTO packets (seq, type, prio, sealed, texts, based, created_ms, "
                "attempts, next_ms, sent_ms, schema_hash) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    seq,
                    int(message.packet_type),
                    prio,
                    sealed,
                    len(texts),
                    int(based),
                    self._now_ms(),
                    self._now_ms() + int(retry * 1000),
                    self._now_ms(),
                    schema_hash,
                ),
            )
            if link is not None:
                conn.execute(link, (seq, *link_args))
            self._state.bump(conn, "packets_sent")
        self._reservation.persisted()
        await self._transmit(seq, texts, range(len(texts)), now)
        return True

    async def _transmit(
        self, seq: int, texts: Sequence[str], indexes: Iterable[int], now: datetime
    ) -> int:
        """Send some texts of a packet; count the SMS; return how many went."""
        sms = sent = 0
        for index in indexes:
            try:
                await self._transport.send(self.config.hq_peer, texts[index])
            except TransientError as exc:
                if not self._link_down:
                    self._link_down = True
                    _LOG.warning("Sync agent: transport down, packets wait: %s", exc)
                with self._state.tx() as conn:
                    self._state.bump(conn, "send_errors")
                    conn.execute(
                        "UPDATE packets SET next_ms = min(next_ms, ?) WHERE seq = ?",
                        (self._now_ms() + int(self.config.poll_s * 1000), seq),
                    )
                break
            sms += sms_parts(texts[index])
            sent += 1
            if self._link_down:
                self._link_down = False
                _LOG.info("Sync agent: transport back")
        if sms:
            with self._state.tx() as conn:
                self._count_sms(conn, sms, now)
        return sent

    async def _resend_due(self, now: datetime, *, max_prio: int) -> None:
        due = self._state.rows(
            "SELECT seq, type, prio, sealed, based, attempts FROM packets WHERE next_ms <= ? "
            "AND prio <= ? ORDER BY prio, seq LIMIT 64",
            (self._now_ms(), max_prio),
        )
        newest = self._reservation.next_seq - 1
        for seq, ptype, prio, sealed, based, attempts in due:
            if self._state.one("SELECT 1 FROM packets WHERE seq = ?", (seq,)) is None:
                continue  # acknowledged while this loop was sending
            if int(ptype) == PacketType.DATA and (
                (based and attempts >= self.config.absolute_after)
                or newest - int(seq) >= self.config.reseal_distance
            ):
                self._reencode(
                    int(seq), absolute=bool(based) and attempts >= self.config.absolute_after
                )
                continue
            if int(ptype) != PacketType.DATA and newest - int(seq) >= self.config.reseal_distance:
                self._abandon(int(seq))
                continue
            texts = self._texts(bytes(sealed))
            indexes: Sequence[int] = range(len(texts))
            probe = (
                len(texts) >= 3 and attempts == 1 and self._state.meta("last_ack_ms") is not None
            )
            if probe:  # HQ answers a lone fragment with an ACK saying what it lacks
                indexes = [len(texts) - 1]
            if len(indexes) > self._budget_left(int(prio), now):
                self._note_budget_blocked(now)
                return
            retry = backoff_s(
                int(attempts) + 1,
                initial_s=self.config.retry_initial_s,
                max_s=self.config.retry_max_s,
                jitter=self.config.retry_jitter,
                rng=self._rng,
            )
            with self._state.tx() as conn:
                conn.execute(
                    "UPDATE packets SET attempts = attempts + 1, next_ms = ?, sent_ms = ? "
                    "WHERE seq = ?",
                    (self._now_ms() + int(retry * 1000), self._now_ms(), seq),
                )
                self._state.bump(conn, "probes" if probe else "packets_resent")
            await self._transmit(int(seq), texts, indexes, now)
            if self._link_down:
                return

    def _reencode(self, seq: int, *, absolute: bool) -> None:
        """Give a DATA packet's items back to the packer (they go again under a new number)."""
        with self._state.tx() as conn:
            conn.execute(
                "UPDATE items SET packet_seq = NULL, absolute = max(absolute, ?) "
                "WHERE packet_seq = ?",
                (int(absolute), seq),
            )
            conn.execute("DELETE FROM packets WHERE seq = ?", (seq,))
            self._state.bump(conn, "reencoded")
            self._soon_status(conn)
        if absolute:
            _LOG.info("Sync agent: packet %d unanswered, its readings go again absolute", seq)

    def _abandon(self, seq: int) -> None:
        """Drop a control packet left too far behind (alarms and schemas go afresh)."""
        with self._state.tx() as conn:
            conn.execute("DELETE FROM packets WHERE seq = ?", (seq,))
            conn.execute("UPDATE alarms SET packet_seq = NULL WHERE packet_seq = ?", (seq,))
            self._soon_status(conn)

    def _soon_status(self, conn: sqlite3.Connection) -> None:
        """Bring the next STATUS forward (its low_seq settles abandoned numbers at HQ)."""
        soon = self._now_ms() + int(self.config.retry_initial_s * 1000)
        due = int(self._state.meta("status_due_ms", 0))
        if due > soon:
            self._state.set_meta(conn, "status_due_ms", soon)

    # ------------------------------------------------------------------ receiving

    def handle_message(self, message: Message) -> None:
        """Take one text from headquarters (ACK or COMMAND)."""
        now = self._clock()
        try:
            packet = self._reassembler.feed(message.peer, message.text, now=now.timestamp())
            if packet is None:
                return
            opened = open_packet(packet, keys=self._keys, direction=Direction.DOWN)
            self._reassembler.confirm(message.peer, packet)
            self._down.check(opened.seq)
        except PacketError as exc:
            with self._state.tx() as conn:
                self._state.bump(
                    conn, "duplicates_down" if exc.reason == Reason.REPLAY else "rejected_down"
                )
            _LOG.debug("Sync agent: text from %s rejected: %s", message.peer, exc)
            return
        body = opened.message
        reply: ReplyMessage | None = None
        with self._state.tx() as conn:
            if isinstance(body, AckMessage):
                self._on_ack(conn, body)
            else:
                reply = self._on_command(conn, body, opened.seq)
            self._down.accept(opened.seq)
            self._state.set_meta(conn, "down_window", json.dumps(self._down.to_dict()))
        if isinstance(body, AckMessage) and body.partial:
            self._resend_fragments(body)
        if reply is not None:
            self._pending_replies.append(reply)
        elif not isinstance(body, AckMessage):
            self._commands_ready.set()  # queued for the command worker

    def _on_ack(self, conn: sqlite3.Connection, ack: AckMessage) -> None:
        acked = [
            (int(seq), int(ptype), bytes(h) if h is not None else None)
            for seq, ptype, h in conn.execute(
                "SELECT seq, type, schema_hash FROM packets"
            ).fetchall()
            if ack.acknowledges(int(seq))
        ]
        self._state.bump(conn, "acks_received")
        self._state.set_meta(conn, "last_ack_ms", self._now_ms())
        for seq, ptype, schema_hash in acked:
            if ptype == PacketType.DATA:
                rows = conn.execute(
                    "SELECT box, path, at_s, value FROM items "
                    "WHERE packet_seq = ? AND is_index = 1",
                    (seq,),
                ).fetchall()
                for box, path, at_s, value in rows:
                    key = f"{box}/{path}"
                    self._book.record(key, from_s(int(at_s)), value)
                    conn.execute(
                        "INSERT OR REPLACE INTO baselines (key, at_s, value) VALUES (?, ?, ?)",
                        (key, int(at_s), value),
                    )
                count = conn.execute("DELETE FROM items WHERE packet_seq = ?", (seq,)).rowcount
                self._state.bump(conn, "items_acked", count)
            elif ptype == PacketType.ALARM:
                count = conn.execute(
                    "UPDATE alarms SET acked = 1 WHERE packet_seq = ?", (seq,)
                ).rowcount
                self._state.bump(conn, "alarms_acked", count)
            elif ptype == PacketType.SCHEMA and schema_hash is not None:
                conn.execute(
                    "UPDATE schemas SET acked = 1, wanted = 0 WHERE hash = ?", (schema_hash,)
                )
            conn.execute("DELETE FROM packets WHERE seq = ?", (seq,))
        if acked:
            conn.execute(
                "DELETE FROM baselines WHERE at_s < (SELECT max(at_s) FROM baselines) - ?",
                (self._book.per_channel * HOUR_S * 4,),
            )

    def _resend_fragments(self, ack: AckMessage) -> None:
        rows = self._state.rows("SELECT seq, texts FROM packets")
        for part in ack.partial:
            for seq, texts in rows:
                if int(seq) % 128 == part.packet_id and int(texts) == part.count:
                    self._partial_resends[int(seq)] = sorted(part.missing)

    def _on_command(
        self, conn: sqlite3.Connection, command: AnyMessage, seq: int
    ) -> ReplyMessage | None:
        """Answer a command at once, or queue it for the worker (``None``)."""
        if needs_weshd(command):
            if self.config.weshd_socket is None and self.config.weshd_url is None:
                return ReplyMessage(seq, ReplyStatus.UNSUPPORTED, "no weshd API configured")
            waiting = int(conn.execute("SELECT count(*) FROM commands").fetchone()[0])
            if waiting >= MAX_COMMANDS:
                return ReplyMessage(seq, ReplyStatus.BUSY, f"retry later: {waiting} commands wait")
            conn.execute(
                "INSERT OR IGNORE INTO commands (seq, body, received_ms) VALUES (?, ?, ?)",
                (seq, command.encode(), self._now_ms()),
            )
            return None
        if isinstance(command, RequestStatus):
            self._state.set_meta(conn, "status_due_ms", 0)
            return ReplyMessage(seq, ReplyStatus.ACCEPTED)
        if isinstance(command, RequestSchema):
            wanted = command.schema_hash or self._schema.hash
            found = conn.execute(
                "UPDATE schemas SET acked = 0, wanted = 1 WHERE hash = ?", (wanted,)
            ).rowcount
            if not found:
                return ReplyMessage(seq, ReplyStatus.FAILED, "unknown schema")
            conn.execute(  # re-sent at once, under a new number
                "DELETE FROM packets WHERE type = ? AND schema_hash = ?",
                (int(PacketType.SCHEMA), wanted),
            )
            return ReplyMessage(seq, ReplyStatus.ACCEPTED)
        if isinstance(command, ResendSeqs):
            count = conn.execute(
                "UPDATE packets SET next_ms = 0 WHERE seq BETWEEN ? AND ?",
                (command.first, command.last),
            ).rowcount
            return ReplyMessage(seq, ReplyStatus.OK, f"{count} packet(s) queued again")
        if isinstance(command, SetInterval) and command.target in (
            IntervalTarget.STATUS,
            IntervalTarget.UPLOAD,
        ):
            name = (
                "status_interval_s"
                if command.target == IntervalTarget.STATUS
                else "upload_interval_s"
            )
            self._state.set_meta(conn, name, command.seconds)
            return ReplyMessage(seq, ReplyStatus.OK)
        return ReplyMessage(seq, ReplyStatus.UNSUPPORTED, type(command).__name__)

    # ------------------------------------------------------------------ commands through weshd

    def _on_reply(self, reply: ReplyMessage) -> None:
        self._pending_replies.append(reply)
        self._wake.set()

    async def _command_worker(self) -> None:
        while True:
            await self._commands_ready.wait()
            self._commands_ready.clear()
            await self.run_commands()

    async def run_commands(self) -> int:
        """Run the commands waiting for weshd, in order; queue their REPLYs; return how many.

        :meth:`run` does it in a task of its own; tests driving the agent by hand call it.
        """
        return await self._commands.run_all()

    # ------------------------------------------------------------------ timing

    def _next_delay(self, now: datetime) -> float:
        now_ms = math.floor((now - EPOCH).total_seconds() * 1000)
        candidates = [self.config.poll_s]
        if self._partial_resends:
            placeholders = ",".join("?" * len(self._partial_resends))
            sent = self._state.one(
                f"SELECT min(sent_ms) FROM packets WHERE seq IN ({placeholders})",  # noqa: S608
                tuple(self._partial_resends),
            )
            if sent is not None:
                candidates.append((int(sent) + self.config.fragment_retry_s * 1000 - now_ms) / 1000)
        next_retry = self._state.one("SELECT min(next_ms) FROM packets")
        if next_retry is not None:
            candidates.append((int(next_retry) - now_ms) / 1000)
        status_due = int(self._state.meta("status_due_ms", 0))
        candidates.append((status_due - now_ms) / 1000)
        oldest_hour = self._state.one("SELECT min(hour_s) FROM accum")
        if oldest_hour is not None:
            close_at = (int(oldest_hour) + HOUR_S) * 1000 + self.config.close_delay_s * 1000
            candidates.append((close_at - now_ms) / 1000)
        return max(0.0, min(candidates))
