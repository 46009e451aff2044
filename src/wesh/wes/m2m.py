r"""The WES "M2M" raw TCP interface (default port 1500): codec and client.

Only one third-party client is known (jwes, ``wes.md`` §6), so most of the framing
is inferred. What we implement, and why::

    client ──▶ box    <command> "\n"                   ASCII, one command per line
    box ──▶ client    either   <command> EOL "=" <value> EOL     (echo, then "=value")
                      or       <value> EOL                        (plain reply)

    EOL: "\n", "\r\n", "\n\r" or "\r"  (jwes's stub writes "\n\r"; the box is unknown)

* Any run of ``\r``/``\n`` ends a line and empty lines are skipped, so every
  terminator above (even split across TCP segments) gives the same lines.
* A first line equal to the command (ignoring surrounding blanks) is the echo; the
  reply is the next line. One leading ``=`` is stripped from the reply in both
  framings (``=19.8`` → ``19.8``; ``RLMB=10`` is kept whole).
* Lines are capped at :data:`MAX_LINE_BYTES`; a longer line is a :class:`DecodeError`.
* One command at a time on a kept-open connection. After a timeout or a framing error
  the connection is closed (a late reply would pair with the next command); the next
  command reconnects. A command sent on a reused connection that turns out dead
  (EOF or reset before any reply) is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from wesh.errors import ConnectionFailed, DecodeError, DeviceTimeout, UsageError
from wesh.wes.commands import validate_relay
from wesh.wes.readings import Reading, ReadingKind

__all__ = [
    "DEFAULT_M2M_PORT",
    "MAX_LINE_BYTES",
    "LineDecoder",
    "M2MReply",
    "WesM2M",
    "normalise_mac",
    "parse_reply",
]

_LOG = logging.getLogger(__name__)

DEFAULT_M2M_PORT = 1500
MAX_LINE_BYTES = 4096
_MAC_RE = re.compile(r"^[0-9A-F]{12}$")
_COMMAND_RE = re.compile(r"^[A-Za-z0-9=]{1,32}$")


def normalise_mac(text: str) -> str:
    """Return a MAC address as 12 upper-case hex digits, or raise :class:`DecodeError`.

    Accepts ``0011223344AA``, ``00:11:22:33:44:aa``, ``00-11-22-33-44-AA`` and spaces.
    """
    compact = re.sub(r"[\s:.-]", "", text).upper()
    if not _MAC_RE.match(compact):
        raise DecodeError(f"not a MAC address: {text[:40]!r}")
    return compact


class LineDecoder:
    """Incremental, bounded splitter of reply bytes into non-empty text lines.

    Feed it bytes in any fragmentation; it returns the complete lines found so far.
    Any run of CR/LF ends a line; empty lines are dropped.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        """Add ``data``; return the complete lines it finishes, in order."""
        self._buffer += data
        lines: list[str] = []
        while True:
            ends = [i for i in (self._buffer.find(b"\n"), self._buffer.find(b"\r")) if i >= 0]
            if not ends:
                break
            end = min(ends)
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if len(raw) > self._max:
                self._buffer.clear()
                raise DecodeError(f"M2M line longer than {self._max} bytes")
            text = raw.decode("latin-1").strip()
            if text:
                lines.append(text)
        if len(self._buffer) > self._max:
            self._buffer.clear()
            raise DecodeError(f"M2M line longer than {self._max} bytes")
        return lines

    def clear(self) -> None:
        """Forget any partial line."""
        self._buffer.clear()


@dataclass(frozen=True, slots=True)
class M2MReply:
    """The decoded reply to one command.

    Attributes:
        value: the answer text (leading ``=`` removed).
        echoed: whether the box echoed the command first.
    """

    value: str
    echoed: bool


def parse_reply(command: str, lines: list[str]) -> M2MReply | None:
    """Decide the reply to ``command`` from the lines received so far (pure).

    Returns ``None`` while more lines are needed (only the echo has arrived).
    """
    if not lines:
        return None
    first = lines[0].strip()
    if first == command.strip():
        if len(lines) < 2:
            return None
        return M2MReply(_strip_equals(lines[1]), echoed=True)
    return M2MReply(_strip_equals(first), echoed=False)


def _strip_equals(text: str) -> str:
    text = text.strip()
    return text[1:].strip() if text.startswith("=") else text


class WesM2M:
    """Client of the M2M TCP interface of one WES, one command at a time.

    Use as an async context manager (or call :meth:`close`). Errors: refused/reset →
    :class:`ConnectionFailed`; no reply in ``timeout_s`` → :class:`DeviceTimeout`;
    garbled reply → :class:`DecodeError`; all carry ``host=``.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_M2M_PORT,
        *,
        timeout_s: float = 5.0,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._max_line = max_line_bytes
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = LineDecoder(max_line_bytes=max_line_bytes)
        self._where = f"{host}:{port}"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether a connection is currently open."""
        return self._writer is not None

    async def close(self) -> None:
        """Close the connection, if any (idempotent)."""
        writer, self._reader, self._writer = self._writer, None, None
        self._decoder.clear()
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
        except (OSError, TimeoutError):
            _LOG.debug("M2M %s: error while closing, ignored", self._where)

    def _abort(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        self._decoder.clear()
        if writer is not None:
            writer.close()

    async def command(self, cmd: str) -> str:
        """Send one command and return its reply value (see the module doc for framing)."""
        if not _COMMAND_RE.match(cmd):
            raise UsageError(f"not an M2M command: {cmd!r}", host=self._where)
        async with self._lock:
            reused = self._writer is not None
            try:
                return await self._exchange(cmd)
            except _StaleConnection:
                if not reused:
                    raise ConnectionFailed(
                        f"connection closed before the reply to {cmd}", host=self._where
                    ) from None
                _LOG.debug("M2M %s: kept-open connection was dead, reconnecting", self._where)
            try:
                return await self._exchange(cmd)
            except _StaleConnection:
                raise ConnectionFailed(
                    f"connection closed before the reply to {cmd}", host=self._where
                ) from None

    async def _exchange(self, cmd: str) -> str:
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await self._connection()
                writer.write(cmd.encode("ascii") + b"\n")
                await writer.drain()
                value = await self._read_reply(cmd, reader)
        except asyncio.CancelledError:
            self._abort()  # a late reply would otherwise answer the next command
            raise
        except TimeoutError as exc:
            await self.close()
            raise DeviceTimeout(
                f"no M2M reply to {cmd} within {self.timeout_s} s", host=self._where
            ) from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            await self.close()
            raise _StaleConnection from exc
        except OSError as exc:
            await self.close()
            raise ConnectionFailed(f"M2M connection failed: {exc}", host=self._where) from exc
        except DecodeError as exc:
            await self.close()
            raise DecodeError(exc.message, host=self._where) from exc
        if value is None:
            await self.close()
            raise _StaleConnection
        return value

    async def _read_reply(self, cmd: str, reader: asyncio.StreamReader) -> str | None:
        """Read lines until the reply to ``cmd`` is complete; ``None`` on end of stream."""
        lines: list[str] = []
        while True:
            data = await reader.read(1024)
            if not data:
                return None
            lines += self._decoder.feed(data)
            reply = parse_reply(cmd, lines)
            if reply is not None:
                return reply.value

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._decoder.clear()
            _LOG.debug("M2M %s: connected", self._where)
        return self._reader, self._writer

    # -- typed helpers ------------------------------------------------------------------

    async def mac(self) -> str:
        """Return the box's MAC address (``gI000``), as 12 upper-case hex digits."""
        value = await self.command("gI000")
        try:
            return normalise_mac(value)
        except DecodeError as exc:
            raise DecodeError(exc.message, host=self._where, channel="gI000") from exc

    async def tic_power_va(self, meter: int) -> int:
        """Apparent power of TIC meter ``meter`` (1..3) in VA (``gT<m>00``)."""
        _check_range("TIC meter", meter, 1, 3)
        return int(await self._number(f"gT{meter}00"))

    async def tic_current_a(self, meter: int, phase: int = 1) -> float:
        """Instantaneous current of TIC meter ``meter``, phase 1..3, in A (``gT<m>0<p>``)."""
        _check_range("TIC meter", meter, 1, 3)
        _check_range("phase", phase, 1, 3)
        return await self._number(f"gT{meter}0{phase}")

    async def tic_index_wh(self, meter: int, k: int) -> int:
        """Index ``k`` (1..6) of TIC meter ``meter`` in Wh (``gT<m>1<k-1>``, wes.md §6.3)."""
        _check_range("TIC meter", meter, 1, 3)
        _check_range("index", k, 1, 6)
        return int(await self._number(f"gT{meter}1{k - 1}"))

    async def pulse(self, counter: int, k: int) -> float:
        """Pulse counter ``counter`` (1..6) value ``k``: 0 flow, 1 index, 2/3/4 day/month/year.

        The unit is the counter's configured unit; a unit after a space is dropped.
        """
        _check_range("pulse counter", counter, 1, 6)
        _check_range("pulse value", k, 0, 4)
        return await self._number(f"gP{counter}0{k}")

    async def probe_c(self, nn: int) -> float:
        """1-Wire probe ``nn`` (1..30) value, °C for a temperature probe (``gW0<nn>``)."""
        _check_range("1-Wire probe", nn, 1, 30)
        return await self._number(f"gW0{nn:02d}")

    async def relay(self, n: int) -> bool:
        """State of internal relay ``n`` (1, 2) (``gr00<n>``): ``True`` when on."""
        _check_range("relay", n, 1, 2)
        return _parse_on_off(await self.command(f"gr00{n}"), host=self._where)

    async def set_relay(self, n: int, on: bool) -> str:
        """Set relay ``n`` (1, 2 or 1-Wire 101..198): ``srl<n>=0|1``.

        Returns the box's state string (``RLMB=10`` or ``RLW1=10000000``).
        """
        validate_relay(n)
        return await self.command(f"srl{n}={int(on)}")

    async def set_switch(self, n: int, on: bool) -> str:
        """Set virtual switch ``n`` (1..24): ``svs<n>=0|1``; returns ``SW=...``."""
        _check_range("virtual switch", n, 1, 24)
        return await self.command(f"svs{n}={int(on)}")

    async def readings(
        self, paths: Iterable[str], *, poll_time: datetime | None = None
    ) -> list[Reading]:
        """Read channels by reading path, one command each, as :class:`Reading` objects.

        Supported paths (same names as a data.cgx poll): ``tic.<m>.power_va``,
        ``tic.<m>.current.<p>``, ``impulsion.<c>.flow``, ``impulsion.<c>.index`` (in the
        counter's unit, left unnormalised), ``temp.<nn>``, ``relais.<n>``. M2M carries no
        box clock, so ``box_time`` is ``None``; ``poll_time`` defaults to now (UTC).
        """
        plan = [(path, *_m2m_plan(path)) for path in paths]
        stamp = poll_time or datetime.now(UTC)
        if stamp.tzinfo is None:
            raise UsageError("poll_time must be timezone-aware", where="poll_time")
        out: list[Reading] = []
        for path, cmd, unit, kind in plan:
            if kind == "state":
                value: float | bool = _parse_on_off(await self.command(cmd), host=self._where)
            else:
                value = await self._number(cmd)
            out.append(Reading(path, value, unit, None, stamp, kind))
        return out

    async def _number(self, cmd: str) -> float:
        value = await self.command(cmd)
        token = value.split(" ", 1)[0].replace(",", ".")
        try:
            return float(token)
        except ValueError:
            raise DecodeError(
                f"M2M reply to {cmd} is not a number: {value[:40]!r}",
                host=self._where,
                channel=cmd,
            ) from None


class _StaleConnection(Exception):
    """The connection ended before the reply (internal signal, never escapes)."""


_PLANS: tuple[tuple[re.Pattern[str], str, str | None, ReadingKind], ...] = (
    (re.compile(r"^tic\.([1-3])\.power_va$"), "gT{0}00", "VA", "gauge"),
    (re.compile(r"^tic\.([1-3])\.current\.([1-3])$"), "gT{0}0{1}", "A", "gauge"),
    (re.compile(r"^impulsion\.([1-6])\.flow$"), "gP{0}00", None, "gauge"),
    (re.compile(r"^impulsion\.([1-6])\.index$"), "gP{0}01", None, "index"),
    (re.compile(r"^temp\.([1-9]|[12][0-9]|30)$"), "gW0{0:0>2}", "°C", "gauge"),
    (re.compile(r"^relais\.([12])$"), "gr00{0}", None, "state"),
)


def _m2m_plan(path: str) -> tuple[str, str | None, ReadingKind]:
    """Return the M2M command, unit and kind that read reading path ``path``."""
    for pattern, template, unit, kind in _PLANS:
        match = pattern.match(path)
        if match:
            return template.format(*match.groups()), unit, kind
    raise UsageError(f"no M2M command reads {path!r}", channel=path)


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{what} must be {low}..{high}, not {value!r}")


def _parse_on_off(value: str, *, host: str) -> bool:
    text = value.strip().upper()
    if text in ("1", "ON"):
        return True
    if text in ("0", "OFF"):
        return False
    raise DecodeError(f"relay state is neither 0/1 nor ON/OFF: {value[:40]!r}", host=host)
