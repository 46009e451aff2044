"""HQ's commands that need weshd, run through weshd's API (libwesh), one at a time.

The agent answers most COMMANDs at once (:meth:`wesh.sync.agent.SyncAgent.handle_message`);
those that need weshd are written to the state file's ``commands`` table with the
acceptance of their number, then run here, in order, by the agent's worker task::

    COMMAND ──accept──▶ commands table ──CommandRunner.run_all──▶ weshd API ──▶ REPLY
                        (state file)     SetRelay        → relay on/off
                                         SetInterval     → poll interval of box(es)
                                         SetClock        → a box's clock (if settable)
                                         ResendTimes     → history folded into items,
                                                           queued again as backlog

Each command is answered by one REPLY with its outcome; a failed call to weshd maps to
``BUSY`` (try later), ``BAD_ARGUMENT`` or ``FAILED`` (:func:`error_reply`). A command
interrupted by a restart is answered ``FAILED`` by the agent (not run again: a toggle
must not run twice).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal

from wesh.errors import TransientError, UsageError, WeshError
from wesh.sync._wire import PacketError, Reader
from wesh.sync.agent_state import (
    HOUR_ITEM,
    HOUR_S,
    QUALITY_RANK,
    SAMPLE_ITEM,
    AgentState,
    from_s,
    to_s,
)
from wesh.sync.packet import (
    AnyMessage,
    IntervalTarget,
    ReplyMessage,
    ReplyStatus,
    ResendTimes,
    SetClock,
    SetInterval,
    SetRelay,
)
from wesh.sync.schema import Schema, SchemaChannel

if TYPE_CHECKING:
    from wesh.client.api import AsyncWeshClient
    from wesh.sync.agent import AgentConfig

__all__ = [
    "MAX_COMMANDS",
    "RESEND_PAGE",
    "RESEND_TX",
    "CommandRunner",
    "ResendAccumulator",
    "clip_utf8",
    "error_reply",
    "needs_weshd",
]

_LOG = logging.getLogger("wesh.sync.agent")  # the agent's logger, as before the split

MAX_COMMANDS: Final = 16  # commands waiting for weshd; more are answered BUSY
_MAX_DETAIL: Final = 100  # UTF-8 bytes of a REPLY's detail (two SMS at most)
_RESEND_SEQ: Final = 1 << 62  # min_seq of re-sent items: they hold no queue row back
RESEND_PAGE: Final = 2000  # history values read per request while re-sending
RESEND_TX: Final = 1000  # re-sent items written per transaction


def clip_utf8(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` UTF-8 bytes (ending in ``...`` when cut)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


_WESHD_COMMANDS: Final = {int(c.op): c for c in (ResendTimes, SetInterval, SetRelay, SetClock)}


def needs_weshd(command: AnyMessage) -> bool:
    """Tell whether a command runs through weshd's API (by the command worker)."""
    if isinstance(command, SetInterval):
        return command.target == IntervalTarget.POLL
    return isinstance(command, ResendTimes | SetRelay | SetClock)


def _stored_command(body: bytes) -> ResendTimes | SetInterval | SetRelay | SetClock:
    """Decode a command body kept in the state file (``PacketError`` if damaged)."""
    reader = Reader(body, what="stored COMMAND")
    cls = _WESHD_COMMANDS.get(reader.u8())
    if cls is None:
        raise reader.fail("not a command the worker runs")
    command = cls.read(reader)
    reader.end()
    return command


def _reply(seq: int, status: ReplyStatus, detail: str = "") -> ReplyMessage:
    return ReplyMessage(seq, status, clip_utf8(detail, _MAX_DETAIL))


def error_reply(seq: int, exc: WeshError) -> ReplyMessage:
    """Answer a failed call to weshd: BUSY when trying again later may work.

    weshd unreachable, a box unreachable or too slow (``TransientError``): ``BUSY``
    ("retry later: ..."); an unknown box, a bad argument, something the box cannot do
    (``UsageError``, HTTP 4xx and 501): ``BAD_ARGUMENT``; the box or weshd said no
    (refused, credentials, an internal error): ``FAILED``.
    """
    if isinstance(exc, TransientError):
        return _reply(seq, ReplyStatus.BUSY, f"retry later: {exc.message}")
    if isinstance(exc, UsageError):
        return _reply(seq, ReplyStatus.BAD_ARGUMENT, exc.message)
    return _reply(seq, ReplyStatus.FAILED, exc.message)


def _relay_number(path: str) -> int | None:
    """``relais.<n>`` (or ``relay.<n>``) to n; ``None`` if the path names no relay."""
    family, _, number = path.partition(".")
    if family not in ("relais", "relay") or not number.isdigit():
        return None
    value = int(number)
    return value if 1 <= value <= 999 else None


def _ceil(at_s: int, step: int) -> int:
    return -(-at_s // step) * step


class ResendAccumulator:
    """Folds one channel's history (oldest first) into items, as the queue reader does.

    Hour mode: one item per hour (gauge: mean; index: last value; worst quality);
    sample mode: one item per grid step (the last value of the step). Holds one step's
    values at a time: memory does not grow with the range.
    """

    def __init__(self, *, step_s: int, is_index: bool, hourly: bool) -> None:
        self.step_s = step_s
        self.is_index = is_index
        self.hourly = hourly
        self._slot: int | None = None
        self._n = 0
        self._total = 0.0
        self._last: int | float = 0
        self._quality = 0

    def add(self, at: datetime, value: object, quality: str) -> tuple[int, int | float, int] | None:
        """Take one value; return the item of the step it closed, if any."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return None
        at_s = to_s(at)
        slot = at_s - at_s % self.step_s
        done = self.flush() if self._slot is not None and slot != self._slot else None
        if self._slot is None or slot != self._slot:
            self._slot, self._n, self._total, self._quality = slot, 0, 0.0, 0
        self._n += 1
        self._total += float(value)
        self._last = value
        self._quality = max(self._quality, QUALITY_RANK.get(quality, 2))
        return done

    def flush(self) -> tuple[int, int | float, int] | None:
        """Return the item of the step being folded (and forget it)."""
        if self._slot is None or self._n == 0:
            return None
        value: int | float = self._last
        if self.hourly and not self.is_index:
            value = self._total / self._n
        item = (self._slot, value, self._quality)
        self._slot, self._n = None, 0
        return item


class CommandRunner:
    """Runs the commands waiting in the state file through weshd's API, in order.

    Args:
        config: the agent's configuration (mode, grid, weshd's address, clock_stale_s).
        state: the agent's state file (its ``commands`` and ``items`` tables).
        clock: wall clock, aware UTC.
        schema: returns the site's current schema (the channels ``ResendTimes`` reads).
        on_reply: takes each command's REPLY, once the command left the state file.
        resend_page / resend_tx: history values read per request and re-sent items
            written per transaction (``ResendTimes``).
    """

    def __init__(
        self,
        *,
        config: AgentConfig,
        state: AgentState,
        clock: Callable[[], datetime],
        schema: Callable[[], Schema],
        on_reply: Callable[[ReplyMessage], None],
        resend_page: int = RESEND_PAGE,
        resend_tx: int = RESEND_TX,
    ) -> None:
        self.config = config
        self._state = state
        self._clock = clock
        self._schema_of = schema
        self._on_reply = on_reply
        self._resend_page = resend_page
        self._resend_tx = resend_tx

    async def run_all(self) -> int:
        """Run the commands waiting, in order; hand over their REPLYs; return how many."""
        done = 0
        while True:
            row = self._state.rows("SELECT seq, body FROM commands ORDER BY seq LIMIT 1")
            if not row:
                return done
            seq, body = int(row[0][0]), bytes(row[0][1])
            name = "?"
            try:
                command = _stored_command(body)
            except PacketError as exc:
                reply = _reply(seq, ReplyStatus.FAILED, f"unreadable command: {exc.reason}")
            else:
                name = type(command).__name__
                reply = await self._run_command(seq, command)
            _LOG.info(
                "Sync agent: command %d (%s): %s %s", seq, name, reply.status.name, reply.detail
            )
            with self._state.tx() as conn:
                conn.execute("DELETE FROM commands WHERE seq = ?", (seq,))
                self._state.bump(conn, "commands_run")
            self._on_reply(reply)
            done += 1

    def _weshd(self) -> AsyncWeshClient:
        from wesh.client.api import AsyncWeshClient  # noqa: PLC0415 - only commands need it

        config = self.config
        return AsyncWeshClient(
            socket=config.weshd_socket,
            url=config.weshd_url,
            token=config.weshd_token,
            timeout_s=config.weshd_timeout_s,
        )

    async def _run_command(
        self, seq: int, command: ResendTimes | SetInterval | SetRelay | SetClock
    ) -> ReplyMessage:
        try:
            async with self._weshd() as weshd:
                if isinstance(command, SetRelay):
                    return await self._set_relay(seq, command, weshd)
                if isinstance(command, SetInterval):
                    return await self._set_poll_interval(seq, command, weshd)
                if isinstance(command, SetClock):
                    return await self._set_clock(seq, command, weshd)
                return await self._resend_times(seq, command, weshd)
        except WeshError as exc:
            return error_reply(seq, exc)

    async def _set_relay(self, seq: int, command: SetRelay, weshd: AsyncWeshClient) -> ReplyMessage:
        number = _relay_number(command.relay)
        if number is None or not command.box:
            return _reply(seq, ReplyStatus.BAD_ARGUMENT, f"not a relay: {command.relay!r}")
        action: Literal["on", "off"] = "on" if command.on else "off"
        await weshd.relay(command.box, number, action)
        return _reply(seq, ReplyStatus.OK, f"{command.box} {command.relay} {action}")

    async def _set_poll_interval(
        self, seq: int, command: SetInterval, weshd: AsyncWeshClient
    ) -> ReplyMessage:
        if command.seconds > 86_400:
            return _reply(seq, ReplyStatus.BAD_ARGUMENT, "poll interval above 86400 s")
        if command.box:
            boxes = [command.box]
        else:
            boxes = [box.id for box in await weshd.boxes() if box.enabled]
        for box in boxes:
            await weshd.set_poll_interval(box, command.seconds)
        where = command.box or f"{len(boxes)} box(es)"
        return _reply(seq, ReplyStatus.OK, f"{where}: every {command.seconds} s until restart")

    async def _set_clock(self, seq: int, command: SetClock, weshd: AsyncWeshClient) -> ReplyMessage:
        now = self._clock()
        skew_s = (now - command.at).total_seconds()
        if abs(skew_s) > self.config.clock_stale_s:
            return _reply(seq, ReplyStatus.STALE, f"HQ's time is {skew_s:+.0f} s from ours")
        if not command.box:
            return _reply(
                seq, ReplyStatus.UNSUPPORTED, f"gateway clock: NTP; {skew_s:+.0f} s from HQ's"
            )
        clock = await weshd.clock(command.box)
        offset = "" if clock.offset_s is None else f"; box {clock.offset_s:+.0f} s"
        if not clock.settable:
            return _reply(
                seq,
                ReplyStatus.UNSUPPORTED,
                f"{command.box} ({clock.driver}): not settable{offset}",
            )
        await weshd.set_clock(command.box)  # to the gateway's time: HQ's is SMS-late
        return _reply(seq, ReplyStatus.OK, f"{command.box}: clock set{offset}")

    async def _resend_times(
        self, seq: int, command: ResendTimes, weshd: AsyncWeshClient
    ) -> ReplyMessage:
        """Queue again the readings of ``[start, end)`` from weshd's history (absolute).

        Each channel of the schema is read page by page and folded step by step, so
        memory does not grow with the range; items go to the state file in batches, as
        backlog (priority and SMS budget as for any reading). An item already waiting or
        in flight is kept as it is; HQ keeps the first copy of what it already has.
        """
        hourly = self.config.mode == "hour"
        step = HOUR_S if hourly else self.config.sample_grid_s
        end_s = to_s(command.end)
        if hourly:  # only closed hours (as SyncAgent._close_hours); open ones go anyway
            closed_s = to_s(self._clock()) - HOUR_S - math.ceil(self.config.close_delay_s)
            end_s = min(end_s, closed_s + 1)
        start_s, end_s = _ceil(to_s(command.start), step), _ceil(end_s, step)
        queued = skipped = 0
        if start_s < end_s:
            for channel in list(self._schema_of()):
                try:
                    queued += await self._resend_channel(channel, start_s, end_s, weshd)
                except UsageError as exc:  # box or channel unknown to weshd now
                    _LOG.info("Sync agent: %s/%s not re-sent: %s", channel.box, channel.path, exc)
                    skipped += 1
                except WeshError as exc:
                    status = error_reply(seq, exc)
                    return _reply(seq, status.status, f"{status.detail}; {queued} queued before")
        detail = f"{queued} reading(s) queued"
        return _reply(
            seq, ReplyStatus.OK, detail + (f", {skipped} channel(s) unknown" if skipped else "")
        )

    async def _resend_channel(
        self, channel: SchemaChannel, start_s: int, end_s: int, weshd: AsyncWeshClient
    ) -> int:
        hourly = self.config.mode == "hour"
        is_index = channel.kind == "index"
        fold = ResendAccumulator(
            step_s=HOUR_S if hourly else self.config.sample_grid_s,
            is_index=is_index,
            hourly=hourly,
        )
        items: list[tuple[int, int | float, int]] = []
        queued = 0
        async for point in weshd.iter_history(
            channel.box,
            channel.path,
            since=from_s(start_s),
            until=from_s(end_s),
            page_size=self._resend_page,
        ):
            item = fold.add(point.at, point.value, point.quality)
            if item is not None:
                items.append(item)
            if len(items) >= self._resend_tx:
                queued += self._queue_resent(channel, items, hourly=hourly)
                items = []
        last = fold.flush()
        if last is not None:
            items.append(last)
        return queued + self._queue_resent(channel, items, hourly=hourly)

    def _queue_resent(
        self, channel: SchemaChannel, items: Sequence[tuple[int, int | float, int]], *, hourly: bool
    ) -> int:
        if not items:
            return 0
        family = HOUR_ITEM if hourly else SAMPLE_ITEM
        is_index = int(channel.kind == "index")
        with self._state.tx() as conn:
            count = sum(
                conn.execute(
                    "INSERT OR IGNORE INTO items (family, box, path, at_s, value, quality, "
                    "is_index, min_seq, absolute) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (
                        family,
                        channel.box,
                        channel.path,
                        at_s,
                        value,
                        quality,
                        is_index,
                        _RESEND_SEQ,
                    ),
                ).rowcount
                for at_s, value, quality in items
            )
            self._state.bump(conn, "readings_resent", count)
        return count
