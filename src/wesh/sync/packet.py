r"""Tonique packet format v1: header, message types, seal (encrypt) and open (check, decrypt).

Pure codec, no I/O. The site agent and the HQ receiver share it. Full reference with
rationale: ``docs/protocol.md``.

Packet (binary; travels as base16 text, see :mod:`wesh.sync.fragment`)::

     byte 0      1       2      3      4      5      6      7 ...                n-8 ... n
    +-----------+-------------+---------------------------+------------------+-----------+
    |VVV D TTTT |   key_id    |           seq             | ciphertext       |   tag     |
    |           |   u16 BE    |          u32 BE           | (body ‖ padding) |  8 bytes  |
    +-----------+-------------+---------------------------+------------------+-----------+
    \________________ header: 7 bytes, in clear, = AAD __/ \___ AES-256-CCM, nonce =
                                                              key_id ‖ dir ‖ seq ___/

    VVV   version, 3 bits: 1 (0 reserved; 0..3 keep bit 7 clear, which tells a whole packet
          from a fragment, whose first byte has bit 7 set)
    D     direction: 0 = up (site → HQ), 1 = down (HQ → site)
    TTTT  type: 1 DATA, 2 ALARM, 3 ACK, 4 STATUS, 5 COMMAND, 6 REPLY, 7 SCHEMA
    key_id   the site key's id (random u16; the receiver tries every key with that id)
    seq      per (key, direction), 1 .. 2^32-1, never reused (the nonce depends on it)

The whole header is the AEAD's associated data: flipping any bit of it, or of the
ciphertext or the tag, makes :func:`open_packet` fail with ``bad_tag``. The plaintext is
``body ‖ 0x80 ‖ 0x00*`` (ISO/IEC 7816-4 padding); :func:`seal_packet` pads by default so
that the packet fills its last SMS (a part costs the same full or not) and the length of
a packet only says how many SMS it takes.

Bodies (integers big-endian; ``varint`` = unsigned LEB128, ``svarint`` = zigzag
LEB128; ``str8`` = u8 length ‖ UTF-8; ``time`` = u32 Unix seconds, UTC)::

    DATA    (up)   schema_hash[4] ‖ block            block: see wesh.sync.readings
    ALARM   (up)   time ‖ u8 severity ‖ u8 flags ‖ str8 kind ‖ [str8 box] ‖ [str8 channel]
                   ‖ str8 message                    flags: bit0 box, bit1 channel
    ACK     (down) varint cumulative ‖ varint nranges ‖ nranges * (varint gap ‖ varint len-1)
                   ‖ varint npartial ‖ npartial * (u8 packet_id ‖ u8 count ‖ missing bitmap)
    STATUS  (up)   time ‖ u8 flags ‖ varint boxes_up ‖ varint boxes_down ‖ varint queue_depth
                   ‖ varint sms_sent_today ‖ varint sms_budget ‖ [u8 signal %]
                   ‖ [svarint clock_offset_ms] ‖ [varint low_seq]
                                                     flags: bit0 signal, bit1 clock, bit2 low_seq
    COMMAND (down) u8 op ‖ arguments (see the command classes)
    REPLY   (up)   varint command_seq ‖ u8 status ‖ str8 detail
    SCHEMA  (up)   schema_hash[4] ‖ raw DEFLATE of the canonical schema text
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from wesh.errors import UsageError
from wesh.sync._wire import (
    CHUNK_BYTES,
    MAX_FRAGMENTS,
    SMS_BYTES,
    PacketError,
    Reader,
    Reason,
    Writer,
)
from wesh.sync.crypto import (
    MAX_KEY_ID,
    MAX_SEQ,
    TAG_BYTES,
    Direction,
    KeyLike,
    KeyLookup,
    aead_open,
    aead_seal,
    make_nonce,
)

__all__ = [
    "HEADER_BYTES",
    "MAX_PACKET_BYTES",
    "OVERHEAD_BYTES",
    "VERSION",
    "AckMessage",
    "AlarmMessage",
    "AnyMessage",
    "Command",
    "CommandOp",
    "DataMessage",
    "Header",
    "IntervalTarget",
    "OpenedPacket",
    "PacketError",
    "PacketType",
    "PartialAck",
    "Reason",
    "ReplayWindow",
    "ReplyMessage",
    "ReplyStatus",
    "RequestSchema",
    "RequestStatus",
    "ResendSeqs",
    "ResendTimes",
    "SchemaMessage",
    "SetClock",
    "SetInterval",
    "SetRelay",
    "StatusMessage",
    "open_packet",
    "parse_header",
    "seal_packet",
]

VERSION: Final = 1
HEADER_BYTES: Final = 7
OVERHEAD_BYTES: Final = HEADER_BYTES + TAG_BYTES
#: the largest sealed packet: 255 fragments of 77 bytes (wesh.sync.fragment)
MAX_PACKET_BYTES: Final = MAX_FRAGMENTS * CHUNK_BYTES
#: the most a SCHEMA body may inflate to
MAX_SCHEMA_BYTES: Final = 1 << 20
_PAD: Final = 0x80


class PacketType(enum.IntEnum):
    """The type of a packet (4 bits of the header)."""

    DATA = 1
    ALARM = 2
    ACK = 3
    STATUS = 4
    COMMAND = 5
    REPLY = 6
    SCHEMA = 7


_DIRECTION: Final = {
    PacketType.DATA: Direction.UP,
    PacketType.ALARM: Direction.UP,
    PacketType.ACK: Direction.DOWN,
    PacketType.STATUS: Direction.UP,
    PacketType.COMMAND: Direction.DOWN,
    PacketType.REPLY: Direction.UP,
    PacketType.SCHEMA: Direction.UP,
}


@dataclass(frozen=True, slots=True)
class Header:
    """The 7 clear bytes in front of every packet (authenticated as AAD)."""

    type: PacketType
    direction: Direction
    key_id: int
    seq: int
    version: int = VERSION

    def to_bytes(self) -> bytes:
        """Return the 7 header bytes."""
        first = (self.version << 5) | (int(self.direction) << 4) | int(self.type)
        return bytes((first,)) + self.key_id.to_bytes(2, "big") + self.seq.to_bytes(4, "big")


def parse_header(packet: bytes) -> Header:
    """Read a packet's header, **unauthenticated** (for routing and logs only).

    Raises ``PacketError`` (``truncated``, ``bad_version``, ``bad_type``).
    """
    if len(packet) < OVERHEAD_BYTES:
        raise PacketError(Reason.TRUNCATED, f"{len(packet)} bytes, a packet has at least 15")
    first = packet[0]
    version = first >> 5
    if version != VERSION:
        raise PacketError(Reason.BAD_VERSION, f"version {version}, this codec speaks 1")
    try:
        ptype = PacketType(first & 0x0F)
    except ValueError:
        raise PacketError(Reason.BAD_TYPE, f"unknown packet type {first & 0x0F}") from None
    direction = Direction((first >> 4) & 1)
    if _DIRECTION[ptype] != direction:
        raise PacketError(Reason.BAD_TYPE, f"{ptype.name} never travels {direction.name}")
    seq = int.from_bytes(packet[3:7], "big")
    if seq == 0:
        raise PacketError(Reason.BAD_TYPE, "sequence number 0 is never used")
    return Header(ptype, direction, int.from_bytes(packet[1:3], "big"), seq, version)


# ----------------------------------------------------------------------------- time


def _time_to_u32(at: datetime, what: str) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError(f"{what} must be timezone-aware", where=what)
    seconds = int(at.timestamp())
    if seconds != at.timestamp() or not 0 <= seconds <= 0xFFFF_FFFF:
        raise UsageError(f"{what} must be a whole second in 1970..2106", where=what)
    return seconds


def _u32_to_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _read_time(reader: Reader) -> datetime:
    return _u32_to_time(reader.uint(4))


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class DataMessage:
    """DATA: a reading block (:mod:`wesh.sync.readings`) for the schema of ``schema_hash``."""

    schema_hash: bytes
    block: bytes

    packet_type = PacketType.DATA

    def __post_init__(self) -> None:
        if len(self.schema_hash) != 4:
            raise UsageError("schema_hash has 4 bytes", where="DataMessage.schema_hash")

    def encode(self) -> bytes:
        """Return the body."""
        return self.schema_hash + self.block

    @classmethod
    def decode(cls, body: bytes) -> DataMessage:
        """Parse a body."""
        reader = Reader(body, what="DATA")
        return cls(reader.raw(4), reader.rest())


_SEVERITIES: Final = {"info": 0, "warning": 1, "alarm": 2}
_SEVERITY_NAMES: Final = {v: k for k, v in _SEVERITIES.items()}


@dataclass(frozen=True, slots=True)
class AlarmMessage:
    """ALARM: something the site reports at once, ahead of the backlog.

    Texts are UTF-8 of at most 255 bytes each (``UsageError`` beyond); keep them short,
    an alarm should fit one SMS (80 bytes minus 16 of overhead).
    """

    at: datetime
    severity: str
    kind: str
    message: str
    box: str | None = None
    channel: str | None = None

    packet_type = PacketType.ALARM

    def encode(self) -> bytes:
        """Return the body."""
        if self.severity not in _SEVERITIES:
            raise UsageError(f"unknown severity {self.severity!r}", where="AlarmMessage")
        writer = Writer()
        writer.uint(_time_to_u32(self.at, "AlarmMessage.at"), 4)
        writer.u8(_SEVERITIES[self.severity])
        writer.u8((self.box is not None) | (self.channel is not None) << 1)
        _str8(writer, self.kind, "kind")
        if self.box is not None:
            _str8(writer, self.box, "box")
        if self.channel is not None:
            _str8(writer, self.channel, "channel")
        _str8(writer, self.message, "message")
        return writer.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> AlarmMessage:
        """Parse a body."""
        reader = Reader(body, what="ALARM")
        at = _read_time(reader)
        severity = _SEVERITY_NAMES.get(reader.u8())
        if severity is None:
            raise reader.fail("unknown severity")
        flags = reader.u8()
        if flags & ~0x03:
            raise reader.fail("reserved flag bits set")
        kind = reader.str8()
        box = reader.str8() if flags & 1 else None
        channel = reader.str8() if flags & 2 else None
        message = reader.str8()
        reader.end()
        return cls(at, severity, kind, message, box, channel)


def _str8(writer: Writer, text: str, what: str) -> None:
    try:
        writer.str8(text)
    except ValueError:
        raise UsageError(f"{what} is longer than 255 UTF-8 bytes", where=what) from None


@dataclass(frozen=True, slots=True)
class PartialAck:
    """Fragments of one packet still missing at the receiver (it asks for just those)."""

    packet_id: int
    count: int
    missing: frozenset[int]

    def __post_init__(self) -> None:
        if not 0 <= self.packet_id <= 0x7F or not 2 <= self.count <= 0xFF:
            raise UsageError("packet_id 0..127, count 2..255", where="PartialAck")
        if any(not 0 <= i < self.count for i in self.missing):
            raise UsageError("missing indexes must be < count", where="PartialAck")


@dataclass(frozen=True, slots=True)
class AckMessage:
    """ACK: what headquarters has *stored* of a site's up-direction sequence numbers.

    ``cumulative``: every seq <= it was received (0: none yet). ``selective``: seqs above
    ``cumulative`` also received (sent as ranges). ``partial``: fragments HQ still misses
    of packets it has only in part (the site re-sends those fragments only).
    """

    cumulative: int
    selective: frozenset[int] = frozenset()
    partial: tuple[PartialAck, ...] = ()

    packet_type = PacketType.ACK

    def __post_init__(self) -> None:
        if not 0 <= self.cumulative <= MAX_SEQ:
            raise UsageError("cumulative out of range", where="AckMessage")
        if any(not self.cumulative < s <= MAX_SEQ for s in self.selective):
            raise UsageError("selective seqs must be > cumulative", where="AckMessage")

    def acknowledges(self, seq: int) -> bool:
        """Return whether this ACK covers ``seq``."""
        return seq <= self.cumulative or seq in self.selective

    def encode(self) -> bytes:
        """Return the body."""
        writer = Writer()
        writer.varint(self.cumulative)
        ranges = _ranges(sorted(self.selective))
        writer.varint(len(ranges))
        previous = self.cumulative
        for first, last in ranges:
            writer.varint(first - previous - 1)
            writer.varint(last - first)
            previous = last
        writer.varint(len(self.partial))
        for part in self.partial:
            writer.u8(part.packet_id)
            writer.u8(part.count)
            bitmap = 0
            for index in part.missing:
                bitmap |= 1 << index
            writer.raw(bitmap.to_bytes((part.count + 7) // 8, "little"))
        return writer.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> AckMessage:
        """Parse a body."""
        reader = Reader(body, what="ACK")
        cumulative = reader.varint()
        previous = cumulative
        selective: set[int] = set()
        for _ in range(reader.varint()):
            first = previous + 1 + reader.varint()
            last = first + reader.varint()
            if last > MAX_SEQ:
                raise reader.fail("selective range beyond 2^32")
            if last - first > 1 << 16 or len(selective) > 1 << 16:
                raise reader.fail("selective ranges too large")
            selective.update(range(first, last + 1))
            previous = last
        partial: list[PartialAck] = []
        for _ in range(reader.varint()):
            packet_id = reader.u8()
            count = reader.u8()
            if packet_id > 0x7F or count < 2:
                raise reader.fail("bad partial entry")
            bitmap = int.from_bytes(reader.raw((count + 7) // 8), "little")
            if bitmap >> count:
                raise reader.fail("missing bitmap beyond count")
            missing = frozenset(i for i in range(count) if bitmap >> i & 1)
            partial.append(PartialAck(packet_id, count, missing))
        reader.end()
        if cumulative > MAX_SEQ:
            raise PacketError(Reason.BAD_BODY, "ACK: cumulative beyond 2^32")
        return cls(cumulative, frozenset(selective), tuple(partial))


def _ranges(values: Sequence[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
    return ranges


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """STATUS: the gateway's health (``clock_offset_s`` travels in milliseconds)."""

    at: datetime
    boxes_up: int
    boxes_down: int
    queue_depth: int
    sms_sent_today: int
    sms_budget: int
    modem_signal_pct: int | None = None
    clock_offset_s: float | None = None
    low_seq: int | None = None
    """the lowest up seq the site may still (re)send: every seq below it is abandoned
    (never used, or its content re-sent under a new number); HQ's ACK may then count them
    as settled (:meth:`ReplayWindow.abandon_below`)"""

    packet_type = PacketType.STATUS

    def encode(self) -> bytes:
        """Return the body."""
        writer = Writer()
        writer.uint(_time_to_u32(self.at, "StatusMessage.at"), 4)
        writer.u8(
            (self.modem_signal_pct is not None)
            | (self.clock_offset_s is not None) << 1
            | (self.low_seq is not None) << 2
        )
        try:
            for value in (
                self.boxes_up,
                self.boxes_down,
                self.queue_depth,
                self.sms_sent_today,
                self.sms_budget,
            ):
                writer.varint(value)
            if self.modem_signal_pct is not None:
                writer.u8(self.modem_signal_pct if 0 <= self.modem_signal_pct <= 100 else 256)
            if self.clock_offset_s is not None:
                writer.svarint(round(self.clock_offset_s * 1000))
            if self.low_seq is not None:
                writer.varint(self.low_seq if 1 <= self.low_seq <= MAX_SEQ else -1)
        except (ValueError, OverflowError):
            raise UsageError("a STATUS field is out of range", where="StatusMessage") from None
        return writer.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> StatusMessage:
        """Parse a body."""
        reader = Reader(body, what="STATUS")
        at = _read_time(reader)
        flags = reader.u8()
        if flags & ~0x07:
            raise reader.fail("reserved flag bits set")
        up, down, depth, sent, budget = (reader.varint() for _ in range(5))
        signal = reader.u8() if flags & 1 else None
        if signal is not None and signal > 100:
            raise reader.fail("signal above 100 %")
        clock = reader.svarint() / 1000 if flags & 2 else None
        low_seq = reader.varint() if flags & 4 else None
        if low_seq is not None and not 1 <= low_seq <= MAX_SEQ:
            raise reader.fail("low_seq out of range")
        reader.end()
        return cls(at, up, down, depth, sent, budget, signal, clock, low_seq)


# ----------------------------------------------------------------------------- commands


class CommandOp(enum.IntEnum):
    """Operation code of a COMMAND (u8)."""

    RESEND_SEQS = 1
    RESEND_TIMES = 2
    SET_INTERVAL = 3
    SET_RELAY = 4
    SET_CLOCK = 5
    REQUEST_STATUS = 6
    REQUEST_SCHEMA = 7


class IntervalTarget(enum.IntEnum):
    """Which interval :class:`SetInterval` changes."""

    POLL = 0
    """a box's poll interval (``box``; ``None``: every box)"""
    UPLOAD = 1
    """how often the agent sends DATA"""
    STATUS = 2
    """how often the agent sends STATUS"""


@dataclass(frozen=True, slots=True)
class ResendSeqs:
    """COMMAND: send again the packets ``first..last`` (same bytes, if the site kept them)."""

    first: int
    last: int

    packet_type = PacketType.COMMAND
    op = CommandOp.RESEND_SEQS

    def encode(self) -> bytes:
        """Return the body."""
        if not 1 <= self.first <= self.last <= MAX_SEQ:
            raise UsageError("need 1 <= first <= last < 2^32", where="ResendSeqs")
        writer = Writer()
        writer.u8(self.op)
        writer.varint(self.first)
        writer.varint(self.last - self.first)
        return writer.getvalue()

    @classmethod
    def read(cls, reader: Reader) -> ResendSeqs:
        """Parse the arguments."""
        first = reader.varint()
        last = first + reader.varint()
        if not 1 <= first <= last <= MAX_SEQ:
            raise reader.fail("bad seq range")
        return cls(first, last)


@dataclass(frozen=True, slots=True)
class ResendTimes:
    """COMMAND: send again the readings of ``[start, end)`` (re-encoded, absolute indexes)."""

    start: datetime
    end: datetime

    packet_type = PacketType.COMMAND
    op = CommandOp.RESEND_TIMES

    def encode(self) -> bytes:
        """Return the body."""
        start = _time_to_u32(self.start, "ResendTimes.start")
        end = _time_to_u32(self.end, "ResendTimes.end")
        if end <= start:
            raise UsageError("end must be after start", where="ResendTimes")
        writer = Writer()
        writer.u8(self.op)
        writer.uint(start, 4)
        writer.uint(end, 4)
        return writer.getvalue()

    @classmethod
    def read(cls, reader: Reader) -> ResendTimes:
        """Parse the arguments."""
        start, end = reader.uint(4), reader.uint(4)
        if end <= start:
            raise reader.fail("empty time range")
        return cls(_u32_to_time(start), _u32_to_time(end))


@dataclass(frozen=True, slots=True)
class SetInterval:
    """COMMAND: change an interval (``box`` only for :attr:`IntervalTarget.POLL`)."""

    target: IntervalTarget
    seconds: int
    box: str | None = None

    packet_type = PacketType.COMMAND
    op = CommandOp.SET_INTERVAL

    def encode(self) -> bytes:
        """Return the body."""
        if not 1 <= self.seconds <= 7 * 86_400:
            raise UsageError("seconds must be 1..604800", where="SetInterval")
        writer = Writer()
        writer.u8(self.op)
        writer.u8(self.target)
        writer.varint(self.seconds)
        _str8(writer, self.box or "", "box")
        return writer.getvalue()

    @classmethod
    def read(cls, reader: Reader) -> SetInterval:
        """Parse the arguments."""
        try:
            target = IntervalTarget(reader.u8())
        except ValueError:
            raise reader.fail("unknown interval target") from None
        seconds = reader.varint()
        if not 1 <= seconds <= 7 * 86_400:
            raise reader.fail("interval out of range")
        return cls(target, seconds, reader.str8() or None)


@dataclass(frozen=True, slots=True)
class SetRelay:
    """COMMAND: switch a relay (``relay`` is a reading path, e.g. ``relais.1``)."""

    box: str
    relay: str
    on: bool

    packet_type = PacketType.COMMAND
    op = CommandOp.SET_RELAY

    def encode(self) -> bytes:
        """Return the body."""
        writer = Writer()
        writer.u8(self.op)
        _str8(writer, self.box, "box")
        _str8(writer, self.relay, "relay")
        writer.u8(1 if self.on else 0)
        return writer.getvalue()

    @classmethod
    def read(cls, reader: Reader) -> SetRelay:
        """Parse the arguments."""
        box, relay, state = reader.str8(), reader.str8(), reader.u8()
        if state > 1:
            raise reader.fail("relay state must be 0 or 1")
        return cls(box, relay, state == 1)


@dataclass(frozen=True, slots=True)
class SetClock:
    """COMMAND: set a clock to HQ's time at sealing (``box`` ``None``: the gateway).

    SMS may take minutes: the site should refuse a command whose ``at`` is far from its
    own notion of time unless it knows its clock is wrong (its STATUS said so).
    """

    at: datetime
    box: str | None = None

    packet_type = PacketType.COMMAND
    op = CommandOp.SET_CLOCK

    def encode(self) -> bytes:
        """Return the body."""
        writer = Writer()
        writer.u8(self.op)
        writer.uint(_time_to_u32(self.at, "SetClock.at"), 4)
        _str8(writer, self.box or "", "box")
        return writer.getvalue()

    @classmethod
    def read(cls, reader: Reader) -> SetClock:
        """Parse the arguments."""
        return cls(_read_time(reader), reader.str8() or None)


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """COMMAND: send a STATUS now."""

    packet_type = PacketType.COMMAND
    op = CommandOp.REQUEST_STATUS

    def encode(self) -> bytes:
        """Return the body."""
        return bytes((self.op,))

    @classmethod
    def read(cls, reader: Reader) -> RequestStatus:
        """Parse the (absent) arguments."""
        return cls()


@dataclass(frozen=True, slots=True)
class RequestSchema:
    """COMMAND: send the SCHEMA packet of this schema hash (``None``: the current one)."""

    schema_hash: bytes | None = None

    packet_type = PacketType.COMMAND
    op = CommandOp.REQUEST_SCHEMA

    def encode(self) -> bytes:
        """Return the body."""
        if self.schema_hash is not None and len(self.schema_hash) != 4:
            raise UsageError("schema_hash has 4 bytes", where="RequestSchema")
        return bytes((self.op,)) + (self.schema_hash or b"")

    @classmethod
    def read(cls, reader: Reader) -> RequestSchema:
        """Parse the arguments."""
        if reader.remaining() == 0:
            return cls()
        return cls(reader.raw(4))


Command = (
    ResendSeqs | ResendTimes | SetInterval | SetRelay | SetClock | RequestStatus | RequestSchema
)

_COMMANDS: Final[dict[int, type[Command]]] = {
    CommandOp.RESEND_SEQS: ResendSeqs,
    CommandOp.RESEND_TIMES: ResendTimes,
    CommandOp.SET_INTERVAL: SetInterval,
    CommandOp.SET_RELAY: SetRelay,
    CommandOp.SET_CLOCK: SetClock,
    CommandOp.REQUEST_STATUS: RequestStatus,
    CommandOp.REQUEST_SCHEMA: RequestSchema,
}


def _decode_command(body: bytes) -> Command:
    reader = Reader(body, what="COMMAND")
    cls = _COMMANDS.get(reader.u8())
    if cls is None:
        raise reader.fail("unknown command op")
    command = cls.read(reader)
    reader.end()
    return command


class ReplyStatus(enum.IntEnum):
    """Outcome of a COMMAND, in its REPLY (u8)."""

    OK = 0
    """done"""
    ACCEPTED = 1
    """started; a later REPLY or the data itself will follow"""
    UNKNOWN_COMMAND = 2
    BAD_ARGUMENT = 3
    FAILED = 4
    UNSUPPORTED = 5
    BUSY = 6
    """refused for now (SMS budget, another command running)"""
    STALE = 7
    """refused: too old, or the clock would jump too far"""


@dataclass(frozen=True, slots=True)
class ReplyMessage:
    """REPLY: the outcome of the COMMAND sealed with down-direction seq ``command_seq``."""

    command_seq: int
    status: ReplyStatus
    detail: str = ""

    packet_type = PacketType.REPLY

    def encode(self) -> bytes:
        """Return the body."""
        if not 1 <= self.command_seq <= MAX_SEQ:
            raise UsageError("command_seq out of range", where="ReplyMessage")
        writer = Writer()
        writer.varint(self.command_seq)
        writer.u8(self.status)
        _str8(writer, self.detail, "detail")
        return writer.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> ReplyMessage:
        """Parse a body."""
        reader = Reader(body, what="REPLY")
        seq = reader.varint()
        if not 1 <= seq <= MAX_SEQ:
            raise reader.fail("command_seq out of range")
        try:
            status = ReplyStatus(reader.u8())
        except ValueError:
            raise reader.fail("unknown reply status") from None
        detail = reader.str8()
        reader.end()
        return cls(seq, status, detail)


@dataclass(frozen=True, slots=True)
class SchemaMessage:
    """SCHEMA: a site's channel schema, canonical text (:mod:`wesh.sync.schema`)."""

    schema_hash: bytes
    canonical: bytes = field(repr=False)

    packet_type = PacketType.SCHEMA

    def encode(self) -> bytes:
        """Return the body (the canonical text deflated)."""
        if len(self.schema_hash) != 4:
            raise UsageError("schema_hash has 4 bytes", where="SchemaMessage")
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return self.schema_hash + packer.compress(self.canonical) + packer.flush()

    @classmethod
    def decode(cls, body: bytes) -> SchemaMessage:
        """Parse a body (inflation capped at 1 MiB)."""
        reader = Reader(body, what="SCHEMA")
        schema_hash = reader.raw(4)
        return cls(schema_hash, inflate(reader.rest(), MAX_SCHEMA_BYTES, "SCHEMA"))


def inflate(data: bytes, limit: int, what: str) -> bytes:
    """Inflate raw DEFLATE data, refusing more than ``limit`` bytes or trailing garbage."""
    unpacker = zlib.decompressobj(-15)
    try:
        out = unpacker.decompress(data, limit)
        if unpacker.unconsumed_tail:
            raise PacketError(Reason.TOO_LARGE, f"{what}: inflates beyond {limit} bytes")
        out += unpacker.flush()
    except zlib.error as exc:
        raise PacketError(Reason.BAD_BODY, f"{what}: bad DEFLATE data") from exc
    if not unpacker.eof or unpacker.unused_data:
        raise PacketError(Reason.BAD_BODY, f"{what}: DEFLATE stream incomplete or followed")
    return out


AnyMessage = (
    DataMessage
    | AlarmMessage
    | AckMessage
    | StatusMessage
    | ResendSeqs
    | ResendTimes
    | SetInterval
    | SetRelay
    | SetClock
    | RequestStatus
    | RequestSchema
    | ReplyMessage
    | SchemaMessage
)

_DECODERS: Final[dict[PacketType, Callable[[bytes], AnyMessage]]] = {
    PacketType.DATA: DataMessage.decode,
    PacketType.ALARM: AlarmMessage.decode,
    PacketType.ACK: AckMessage.decode,
    PacketType.STATUS: StatusMessage.decode,
    PacketType.COMMAND: _decode_command,
    PacketType.REPLY: ReplyMessage.decode,
    PacketType.SCHEMA: SchemaMessage.decode,
}


# ----------------------------------------------------------------------------- seal / open


@dataclass(frozen=True, slots=True)
class OpenedPacket:
    """An authenticated, decrypted packet: its header, the site whose key opened it, the message.

    The caller still checks ``header.seq`` against its :class:`ReplayWindow`
    before acting on the message.
    """

    header: Header
    site: str
    message: AnyMessage

    @property
    def seq(self) -> int:
        """The packet's sequence number."""
        return self.header.seq


def _fill_target(size: int) -> int:
    """Return the largest packet size taking as many SMS as ``size`` bytes (fragment.py)."""
    if size <= SMS_BYTES:
        return SMS_BYTES
    return -(-size // CHUNK_BYTES) * CHUNK_BYTES


def seal_packet(message: AnyMessage, *, key: KeyLike, seq: int, pad: bool = True) -> bytes:
    """Encode, pad, encrypt and authenticate ``message``; return the packet bytes.

    ``pad`` fills the packet up to the end of its last SMS (free, hides lengths); turn it
    off for transports without SMS (MQTT). Raises ``UsageError`` for a message that cannot
    be encoded, a bad seq or key id, or a packet over :data:`MAX_PACKET_BYTES`.
    """
    ptype = message.packet_type
    direction = _DIRECTION[ptype]
    if not 0 <= key.key_id <= MAX_KEY_ID:
        raise UsageError(f"key_id must be 0..{MAX_KEY_ID}", where="key_id")
    header = Header(ptype, direction, key.key_id, seq).to_bytes()
    nonce = make_nonce(key.key_id, direction, seq)
    plaintext = message.encode() + bytes((_PAD,))
    size = len(plaintext) + OVERHEAD_BYTES
    if size > MAX_PACKET_BYTES:
        raise UsageError(
            f"packet of {size} bytes is over {MAX_PACKET_BYTES}: send less per packet",
            where="seal_packet",
        )
    if pad:
        plaintext += bytes(_fill_target(size) - size)
    return header + aead_seal(key, nonce, plaintext, header)


def open_packet(
    packet: bytes, *, keys: KeyLookup, direction: Direction | None = None
) -> OpenedPacket:
    """Check, decrypt and decode one packet.

    ``direction``: what this receiver accepts (HQ: ``Direction.UP``; a site:
    ``Direction.DOWN``); a packet of the other direction is ``bad_direction``.
    Replay is **not** checked here (the receiver's :class:`ReplayWindow` does).

    Raises ``PacketError`` only, with its reason: ``truncated``, ``too_large``,
    ``bad_version``, ``bad_type``, ``bad_direction``, ``unknown_key``, ``bad_tag``,
    ``bad_padding``, ``bad_body``.
    """
    if len(packet) > MAX_PACKET_BYTES:
        raise PacketError(Reason.TOO_LARGE, f"{len(packet)} bytes")
    header = parse_header(packet)
    if direction is not None and header.direction != direction:
        raise PacketError(Reason.BAD_DIRECTION, f"a {header.direction.name} packet")
    candidates = keys.for_key_id(header.key_id)
    if not candidates:
        raise PacketError(Reason.UNKNOWN_KEY, f"no key with id {header.key_id}")
    aad = packet[:HEADER_BYTES]
    nonce = make_nonce(header.key_id, header.direction, header.seq)
    sealed = packet[HEADER_BYTES:]
    for key in candidates:
        plaintext = aead_open(key, nonce, sealed, aad)
        if plaintext is not None:
            break
    else:
        raise PacketError(Reason.BAD_TAG, f"key id {header.key_id}, seq {header.seq}")
    body = plaintext.rstrip(b"\x00")
    if not body or body[-1] != _PAD:
        raise PacketError(Reason.BAD_PADDING, "no padding marker", host=key.site)
    try:
        message = _DECODERS[header.type](body[:-1])
    except PacketError as exc:
        exc.host = key.site
        raise
    except (UsageError, ValueError, OverflowError) as exc:  # a constructor's own check
        raise PacketError(Reason.BAD_BODY, str(exc), host=key.site) from exc
    return OpenedPacket(header, key.site, message)


# ----------------------------------------------------------------------------- replay window


class ReplayWindow:
    """What a receiver has accepted of one sender's sequence space (per site and direction).

    Pure and small; the receiver keeps one per site and persists :meth:`to_dict`. It is
    both the replay guard and the source of ACKs::

        window.check(seq)        # PacketError(replay) if seen, or older than the window
        ... store the packet's content ...
        window.accept(seq)       # only once it is stored
        window.ack()             # → AckMessage(cumulative, selective)

    ``cumulative`` is truthful: every seq <= it was accepted, or abandoned by the sender
    (:meth:`abandon_below`, from STATUS ``low_seq``). Seqs more than ``size`` below the
    highest accepted are refused as replays (like IPsec/DTLS anti-replay windows).
    """

    __slots__ = ("_bits", "cumulative", "highest", "size")

    def __init__(self, *, size: int = 1024, cumulative: int = 0) -> None:
        if size < 8:
            raise UsageError("window size must be >= 8", where="ReplayWindow")
        self.size = size
        self.cumulative = cumulative
        self.highest = cumulative
        self._bits = 0  # bit i set: seq (highest - i) accepted, for i < size

    def seen(self, seq: int) -> bool:
        """Return whether ``seq`` was accepted (or is settled below ``cumulative``)."""
        if seq <= self.cumulative:
            return True
        offset = self.highest - seq
        return 0 <= offset < self.size and bool(self._bits >> offset & 1)

    def check(self, seq: int) -> None:
        """Raise ``PacketError(replay)`` if ``seq`` may not be accepted now."""
        if seq <= self.cumulative or self.seen(seq):
            raise PacketError(Reason.REPLAY, f"seq {seq} already received")
        if seq <= self.highest - self.size:
            raise PacketError(Reason.REPLAY, f"seq {seq} is older than the window")

    def accept(self, seq: int) -> None:
        """Record ``seq`` as received and stored (after :meth:`check`)."""
        if not 1 <= seq <= MAX_SEQ:
            raise UsageError("seq out of range", where="ReplayWindow.accept")
        if seq > self.highest:
            shift = seq - self.highest
            self._bits = (
                (self._bits << shift | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            )
            self.highest = seq
        else:
            offset = self.highest - seq
            if offset < self.size:
                self._bits |= 1 << offset
        self._advance()

    def abandon_below(self, low_seq: int) -> None:
        """Settle every seq below ``low_seq``: the sender will never (re)send them."""
        if low_seq - 1 > self.cumulative:
            self.cumulative = min(low_seq - 1, MAX_SEQ)
            if self.cumulative > self.highest:
                self.highest = self.cumulative
                self._bits = 0
            self._advance()

    def _advance(self) -> None:
        while self.cumulative < self.highest:
            offset = self.highest - (self.cumulative + 1)
            if offset >= self.size or not self._bits >> offset & 1:
                break
            self.cumulative += 1

    def accepted_above(self) -> list[int]:
        """Seqs above ``cumulative`` accepted and still in the window, ascending."""
        low = max(self.cumulative + 1, self.highest - self.size + 1)
        return [s for s in range(low, self.highest + 1) if self._bits >> (self.highest - s) & 1]

    def ack(self, *, max_ranges: int = 32) -> AckMessage:
        """Return the ACK of this window (the newest ``max_ranges`` selective ranges)."""
        ranges = _ranges(self.accepted_above())[-max_ranges:] if max_ranges > 0 else []
        selective = frozenset(s for first, last in ranges for s in range(first, last + 1))
        return AckMessage(self.cumulative, selective)

    def to_dict(self) -> dict[str, int | str]:
        """Return the state, JSON-serialisable."""
        return {
            "size": self.size,
            "cumulative": self.cumulative,
            "highest": self.highest,
            "bits": format(self._bits, "x"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, int | str]) -> ReplayWindow:
        """Rebuild a window from :meth:`to_dict` (``UsageError`` if malformed)."""
        try:
            size, cumulative, highest = (int(data[k]) for k in ("size", "cumulative", "highest"))
            bits = int(str(data["bits"]), 16)
        except (KeyError, ValueError, TypeError):
            raise UsageError("malformed replay window state", where="ReplayWindow") from None
        window = cls(size=size, cumulative=cumulative)
        if not 0 <= cumulative <= highest <= MAX_SEQ or bits >> size:
            raise UsageError("inconsistent replay window state", where="ReplayWindow")
        window.highest = highest
        window._bits = bits
        return window
