r"""The compact reading block carried by DATA packets: columnar, quantised, bit-packed.

Pure logic, no I/O. A block is a time grid (``start``, ``step_s``, ``count``) and one
column of values per channel of the site's schema (:mod:`wesh.sync.schema`); the site
agent encodes it (:func:`encode_block`), HQ decodes it (:func:`decode_block`).

Block layout (the ``block`` of a DATA message, after its 4-byte schema hash)::

     0        1                 5          ...
    +--------+-----------------+----------+----------+--------------+---------------------+
    | flags  | start (u32 BE,  | step_s   | count    | base_back    | bit stream (or its  |
    |        |  Unix seconds)  | varint   | varint   | varint       | raw DEFLATE)        |
    +--------+-----------------+----------+----------+--------------+---------------------+
    flags: bit0 aggregated (index = hour_last, gauge = hour_mean), bit1 deflated,
           bits2-3 channel set (0 every schema channel, 1 bitmap, 2 list, 3 range),
           bits4-7 zero
    base_back: 0 = no baseline; k = index deltas start from the values at start - k*step_s

Bit stream (most significant bit first; ``uvar`` = 6-bit length L then the L-1 bits
below the leading 1; ``svar`` = uvar of the zigzag; ``pos`` = a step number in
max(1, bitlen(count-1)) bits)::

    channel set   mode 1: one bit per schema channel; mode 2: uvar n, n x uvar gap;
                  mode 3: uvar first, uvar n (the channels first .. first+n-1)
    then per channel, in schema order:
      2  presence     0 every step, 1 bitmap of count bits follows, 2 none (column ends)
      1  resets       (index only)  a list of (pos, svar absolute value) follows
      1  qualities    a list of (pos, 2-bit code: 1 estimated, 2 suspect) follows
      1  absolute     (index only)  the first value is absolute, not a delta
      6  width w      of the packed values
      [uvar n, n x (pos, svar value)]          resets
      [uvar n, n x (pos, 2-bit code)]          qualities
      [svar first]    gauges always; indexes when "absolute"
      packed values   one per remaining present step, w bits each; the all-ones code
                      escapes: value = 2^w - 1 + uvar that follows
    zero bits up to the byte boundary

Values are quantised to the channel's resolution (``q = floor(v / res + 0.5)``). Index
values travel as **deltas**: the first from the *baseline* (the channel's value at
``base_at``, a grid time whose packet HQ has acknowledged), the next ones from the
previous step; a decrease, or a step the agent marks, is a **reset** (flag + absolute
value; no consumption is counted across it). Gauges travel as their first value then
zigzag deltas. A lost or late packet never corrupts another: each packet depends only
on a baseline both ends hold (see ``docs/protocol.md``, "Baselines").

The encoder picks the width that minimises the column's size (outliers escape), the
channel set encoding, and DEFLATE when it makes the stream smaller.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from wesh.errors import UsageError
from wesh.sync._wire import (
    BitReader,
    BitWriter,
    PacketError,
    Reader,
    Reason,
    Writer,
    uvar_bits,
    zigzag,
)
from wesh.sync.packet import DataMessage, inflate
from wesh.sync.schema import Schema, SchemaChannel
from wesh.sync.sink import SyncReading

__all__ = [
    "MAX_CELLS",
    "MAX_STEPS",
    "BaselineBook",
    "BlockReading",
    "Column",
    "Quality",
    "ReadingBlock",
    "decode_block",
    "encode_block",
    "iter_readings",
    "to_sync_readings",
]

Quality = Literal["measured", "estimated", "suspect"]
Aggregate = Literal["sample", "hour_mean", "hour_last"]
BaselineValue = int | float
BaselineLookup = Callable[[SchemaChannel, datetime], BaselineValue | None]

#: most steps in one block (a month of hours is 744)
MAX_STEPS: Final = 8_784
#: most values (steps x channels) in one block: a month of hours for 1,300 channels
MAX_CELLS: Final = 1_000_000
#: the most a deflated block may inflate to
MAX_BLOCK_BYTES: Final = 1 << 20
_MAX_Q: Final = 1 << 60
_QUALITY_CODES: Final[Mapping[str, int]] = {"estimated": 1, "suspect": 2}
_QUALITY_NAMES: Final[Mapping[int, Quality]] = {1: "estimated", 2: "suspect"}
_F_AGGREGATED: Final = 0x01
_F_DEFLATED: Final = 0x02
_SET_ALL, _SET_BITMAP, _SET_LIST, _SET_RANGE = 0, 1, 2, 3
_P_ALL, _P_BITMAP, _P_NONE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Column:
    """The values of one channel over a block's grid.

    Attributes:
        channel: position of the channel in the schema.
        values: one per step; ``None`` when there is no reading. Index values are
            absolute (the codec makes the deltas).
        qualities: empty (every value ``measured``) or one per step.
        resets: steps where an index restarts (counter reset, meter replaced): no
            consumption is counted from the previous value. A decrease is always one.
    """

    channel: int
    values: tuple[int | float | None, ...]
    qualities: tuple[Quality, ...] = ()
    resets: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ReadingBlock:
    """Readings on a time grid: ``start + i * step_s`` for ``i < count``.

    ``aggregated``: the values are hourly aggregates (index: the last value of the step,
    gauge: the mean over the step) rather than samples. ``base_at``: set by
    :func:`decode_block` to the baseline time the block was encoded against.
    """

    start: datetime
    step_s: int
    count: int
    columns: tuple[Column, ...]
    aggregated: bool = True
    base_at: datetime | None = field(default=None, compare=False)

    def at(self, step: int) -> datetime:
        """Return the time of a step."""
        return self.start + timedelta(seconds=step * self.step_s)


# ----------------------------------------------------------------------------- quantisation


def _quantise(value: float, channel: SchemaChannel, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"value {value!r} is not a finite number", where=where)
    if isinstance(value, int) and float(channel.resolution).is_integer():
        res = int(channel.resolution)
        q = (2 * value + res) // (2 * res)
    else:
        q = math.floor(value / channel.resolution + 0.5)
    if abs(q) >= _MAX_Q:
        raise UsageError(f"value {value!r} is too large to travel", where=where)
    return q


def _dequantise(q: int, channel: SchemaChannel) -> int | float:
    res = channel.resolution
    if float(res).is_integer():
        return q * int(res)
    return round(q * res, channel.decimals)


# ----------------------------------------------------------------------------- packing


def _packed_cost(values: Sequence[int], width: int) -> int:
    if width == 0:
        return 0 if not any(values) else -1
    limit = (1 << width) - 1
    return sum(width if v < limit else width + uvar_bits(v - limit) for v in values)


def _best_width(values: Sequence[int]) -> int:
    if not values or not any(values):
        return 0
    top = max(values).bit_length()
    best_width, best_cost = top + 1, _packed_cost(values, top + 1)
    for width in range(1, top + 1):
        cost = _packed_cost(values, width)
        if cost < best_cost:
            best_width, best_cost = width, cost
    return min(best_width, 62)


def _pack(writer: BitWriter, values: Sequence[int], width: int) -> None:
    if width == 0:
        return
    limit = (1 << width) - 1
    for value in values:
        if value < limit:
            writer.bits(value, width)
        else:
            writer.bits(limit, width)
            writer.uvar(value - limit)


def _unpack(reader: BitReader, n: int, width: int) -> list[int]:
    if width == 0:
        return [0] * n
    limit = (1 << width) - 1
    out = []
    for _ in range(n):
        value = reader.bits(width)
        if value == limit:
            value += reader.uvar()
        out.append(value)
    return out


# ----------------------------------------------------------------------------- encode


def _check_block(block: ReadingBlock, schema: Schema) -> int:
    start = block.start
    if start.tzinfo is None or start.utcoffset() is None:
        raise UsageError("block start must be timezone-aware", where="ReadingBlock.start")
    seconds = start.timestamp()
    if not seconds.is_integer() or not 0 <= seconds <= 0xFFFF_FFFF:
        raise UsageError("block start must be a whole second in 1970..2106", where="start")
    if not 1 <= block.step_s <= 86_400 * 31:
        raise UsageError("step_s must be 1 s .. 31 days", where="ReadingBlock.step_s")
    if not 1 <= block.count <= MAX_STEPS:
        raise UsageError(f"count must be 1..{MAX_STEPS}", where="ReadingBlock.count")
    if block.count * len(block.columns) > MAX_CELLS:
        raise UsageError(f"more than {MAX_CELLS} values in one block", where="ReadingBlock")
    previous = -1
    for column in block.columns:
        where = f"column {column.channel}"
        if not previous < column.channel < len(schema):
            raise UsageError("columns must name schema channels, ascending, once", where=where)
        previous = column.channel
        if len(column.values) != block.count:
            raise UsageError(f"{len(column.values)} values for {block.count} steps", where=where)
        if column.qualities and len(column.qualities) != block.count:
            raise UsageError("qualities must be empty or one per step", where=where)
        if any(q not in ("measured", "estimated", "suspect") for q in column.qualities):
            raise UsageError("unknown quality", where=where)
        if any(not 0 <= r < block.count for r in column.resets):
            raise UsageError("reset step out of range", where=where)
        if column.resets and schema[column.channel].kind != "index":
            raise UsageError("only index channels have resets", where=where)
    return int(seconds)


def encode_block(
    block: ReadingBlock,
    schema: Schema,
    *,
    book: BaselineBook | None = None,
    compress: bool | None = None,
) -> DataMessage:
    """Encode a block into a DATA message.

    ``book``: the index values HQ has acknowledged (:class:`BaselineBook`); the encoder
    takes as baseline the latest grid time before ``block.start`` at which the book has
    values, and sends indexes without a value there as absolute. Without a book every
    index column starts absolute. ``compress``: ``None`` tries DEFLATE and keeps it when
    it is smaller; ``True``/``False`` force it.

    Raises ``UsageError`` for a block that does not fit the schema or the format.
    """
    start_s = _check_block(block, schema)
    base_back = 0
    baselines: dict[int, int] = {}
    if book is not None:
        keys = [schema[c.channel].key for c in block.columns if schema[c.channel].kind == "index"]
        base_at, values = book.choose(keys, before=block.start, step_s=block.step_s)
        if base_at is not None:
            base_back = round((block.start - base_at).total_seconds()) // block.step_s
            for column in block.columns:
                channel = schema[column.channel]
                value = values.get(channel.key)
                if value is not None:
                    baselines[column.channel] = _quantise(value, channel, "baseline")
    bits = BitWriter()
    set_mode = _write_channel_set(bits, [c.channel for c in block.columns], len(schema))
    for column in block.columns:
        _write_column(bits, column, schema[column.channel], block.count, baselines)
    stream = bits.getvalue()
    deflated = False
    if compress is not False:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        packed = packer.compress(stream) + packer.flush()
        if compress or len(packed) < len(stream):
            stream, deflated = packed, True
    flags = (_F_AGGREGATED if block.aggregated else 0) | (_F_DEFLATED if deflated else 0)
    writer = Writer()
    writer.u8(flags | set_mode << 2)
    writer.uint(start_s, 4)
    writer.varint(block.step_s)
    writer.varint(block.count)
    writer.varint(base_back)
    writer.raw(stream)
    return DataMessage(schema.hash, writer.getvalue())


def _write_channel_set(bits: BitWriter, channels: Sequence[int], size: int) -> int:
    if len(channels) == size:
        return _SET_ALL
    if channels and channels[-1] - channels[0] == len(channels) - 1:
        bits.uvar(channels[0])
        bits.uvar(len(channels))
        return _SET_RANGE
    gaps = [c - p - 1 for p, c in zip([-1, *channels], channels, strict=False)]
    list_cost = uvar_bits(len(channels)) + sum(uvar_bits(g) for g in gaps)
    if size <= list_cost:
        wanted = set(channels)
        for number in range(size):
            bits.flag(number in wanted)
        return _SET_BITMAP
    bits.uvar(len(channels))
    for gap in gaps:
        bits.uvar(gap)
    return _SET_LIST


def _write_column(
    bits: BitWriter,
    column: Column,
    channel: SchemaChannel,
    count: int,
    baselines: Mapping[int, int],
) -> None:
    where = f"{channel.key}"
    quantised = [None if v is None else _quantise(v, channel, where) for v in column.values]
    present = [i for i, q in enumerate(quantised) if q is not None]
    if not present:
        bits.bits(_P_NONE, 2)
        return
    pos_bits = max(1, (count - 1).bit_length())
    is_index = channel.kind == "index"
    resets: set[int] = set()
    absolute = False
    stream: list[int] = []
    first: int | None = None
    if is_index:
        previous = baselines.get(column.channel)
        if present[0] not in column.resets and previous is None:
            absolute = True
        for number, step in enumerate(present):
            q = quantised[step]
            assert q is not None  # noqa: S101 - present steps only
            if step in column.resets or (previous is not None and q < previous):
                resets.add(step)
            elif number == 0 and absolute:
                first = q
            else:
                assert previous is not None  # noqa: S101 - set by the branches above
                stream.append(q - previous)
            previous = q
    else:
        values = [q for q in quantised if q is not None]
        first = values[0]
        stream = [zigzag(b - a) for a, b in itertools.pairwise(values)]
    qualities = [
        (step, _QUALITY_CODES[column.qualities[step]])
        for step in present
        if column.qualities and column.qualities[step] != "measured"
    ]
    width = _best_width(stream)
    if len(present) == count:
        bits.bits(_P_ALL, 2)
    else:
        bits.bits(_P_BITMAP, 2)
        wanted = set(present)
        for step in range(count):
            bits.flag(step in wanted)
    bits.flag(bool(resets))
    bits.flag(bool(qualities))
    bits.flag(absolute)
    bits.bits(width, 6)
    if resets:
        bits.uvar(len(resets))
        for step in sorted(resets):
            bits.bits(step, pos_bits)
            value = quantised[step]
            assert value is not None  # noqa: S101 - present steps only
            bits.svar(value)
    if qualities:
        bits.uvar(len(qualities))
        for step, code in qualities:
            bits.bits(step, pos_bits)
            bits.bits(code, 2)
    if first is not None:
        bits.svar(first)
    _pack(bits, stream, width)


# ----------------------------------------------------------------------------- decode


def decode_block(
    message: DataMessage,
    schema: Schema,
    *,
    baseline: BaselineBook | BaselineLookup | None = None,
) -> ReadingBlock:
    """Decode a DATA message's block into absolute values.

    ``baseline`` gives the value of an index channel at the block's baseline time: a
    :class:`BaselineBook` or a function ``(channel, at) -> value | None`` (e.g. a lookup
    in HQ's store). Raises ``PacketError``: ``unknown_schema`` (the message names another
    schema: ask the site for it), ``unknown_baseline`` (a needed baseline is missing:
    do not acknowledge; the site re-sends absolute), ``bad_body``, ``too_large``.
    """
    if message.schema_hash != schema.hash:
        raise PacketError(Reason.UNKNOWN_SCHEMA, f"schema {message.schema_hash.hex()}")
    reader = Reader(message.block, what="DATA block")
    flags = reader.u8()
    if flags & 0xF0:
        raise reader.fail("reserved flag bits set")
    start = datetime.fromtimestamp(reader.uint(4), UTC)
    step_s = reader.varint()
    count = reader.varint()
    base_back = reader.varint()
    if not 1 <= step_s <= 86_400 * 31 or not 1 <= count <= MAX_STEPS:
        raise reader.fail("grid out of range")
    if base_back > 0xFFFF_FFFF // step_s:
        raise reader.fail("baseline out of range")
    base_at = start - timedelta(seconds=base_back * step_s) if base_back else None
    stream = reader.rest()
    if flags & _F_DEFLATED:
        stream = inflate(stream, MAX_BLOCK_BYTES, "DATA block")
    lookup = _lookup(baseline)
    bits = BitReader(stream)
    channels = _read_channel_set(bits, flags >> 2 & 3, len(schema))
    if count * len(channels) > MAX_CELLS:
        raise PacketError(Reason.TOO_LARGE, f"more than {MAX_CELLS} values in one block")
    columns = tuple(
        _read_column(bits, number, schema[number], count, base_at, lookup) for number in channels
    )
    bits.check_padding()
    return ReadingBlock(
        start, step_s, count, columns, aggregated=bool(flags & _F_AGGREGATED), base_at=base_at
    )


def _lookup(baseline: BaselineBook | BaselineLookup | None) -> BaselineLookup:
    if baseline is None:
        return lambda _channel, _at: None
    if isinstance(baseline, BaselineBook):
        book = baseline
        return lambda channel, at: book.get(channel.key, at)
    return baseline


def _read_channel_set(bits: BitReader, mode: int, size: int) -> list[int]:
    if mode == _SET_ALL:
        return list(range(size))
    if mode == _SET_BITMAP:
        return [number for number in range(size) if bits.flag()]
    if mode == _SET_RANGE:
        first, n = bits.uvar(), bits.uvar()
        if first + n > size:
            raise PacketError(Reason.BAD_BODY, "channel range beyond the schema")
        return list(range(first, first + n))
    n = bits.uvar()
    if n > size:
        raise PacketError(Reason.BAD_BODY, "more channels than the schema has")
    channels: list[int] = []
    previous = -1
    for _ in range(n):
        previous += bits.uvar() + 1
        if previous >= size:
            raise PacketError(Reason.BAD_BODY, "channel beyond the schema")
        channels.append(previous)
    return channels


def _read_positions(bits: BitReader, count: int, allowed: set[int], what: str) -> Iterator[int]:
    n = bits.uvar()
    if n > len(allowed):
        raise PacketError(Reason.BAD_BODY, f"too many {what}")
    pos_bits = max(1, (count - 1).bit_length())
    previous = -1
    for _ in range(n):
        step = bits.bits(pos_bits)
        if step <= previous or step not in allowed:
            raise PacketError(Reason.BAD_BODY, f"{what} at a bad step")
        previous = step
        yield step


def _read_column(  # noqa: PLR0917 - one column, in wire order
    bits: BitReader,
    number: int,
    channel: SchemaChannel,
    count: int,
    base_at: datetime | None,
    lookup: BaselineLookup,
) -> Column:
    presence = bits.bits(2)
    if presence == _P_NONE:
        return Column(number, (None,) * count)
    if presence == _P_ALL:
        present = list(range(count))
    elif presence == _P_BITMAP:
        present = [step for step in range(count) if bits.flag()]
        if not present:
            raise PacketError(Reason.BAD_BODY, "empty presence bitmap")
    else:
        raise PacketError(Reason.BAD_BODY, "reserved presence code")
    has_resets, has_qualities, absolute = bits.flag(), bits.flag(), bits.flag()
    width = bits.bits(6)
    is_index = channel.kind == "index"
    if not is_index and (has_resets or absolute):
        raise PacketError(Reason.BAD_BODY, f"gauge {channel.key} with index flags")
    present_set = set(present)
    resets: dict[int, int] = {}
    if has_resets:
        for step in _read_positions(bits, count, present_set, "resets"):
            resets[step] = bits.svar()
    qualities: dict[int, Quality] = {}
    if has_qualities:
        for step in _read_positions(bits, count, present_set, "qualities"):
            name = _QUALITY_NAMES.get(bits.bits(2))
            if name is None:
                raise PacketError(Reason.BAD_BODY, "unknown quality code")
            qualities[step] = name
    out: list[int | None] = [None] * count
    if is_index:
        previous: int | None = None
        first_step = present[0]
        if absolute:
            if first_step in resets:
                raise PacketError(Reason.BAD_BODY, "absolute flag on a reset step")
        elif first_step not in resets:
            if base_at is None:
                raise PacketError(Reason.BAD_BODY, f"{channel.key}: delta without baseline")
            value = lookup(channel, base_at)
            if value is None:
                raise PacketError(
                    Reason.UNKNOWN_BASELINE,
                    f"no value of {channel.key} at {base_at.isoformat()}",
                    channel=channel.key,
                )
            previous = _quantise(value, channel, "baseline")
        first = bits.svar() if absolute else None
        deltas = iter(_unpack(bits, len(present) - len(resets) - (absolute), width))
        for step in present:
            if step in resets:
                previous = resets[step]
            elif first is not None:
                previous, first = first, None
            else:
                assert previous is not None  # noqa: S101 - baseline or first set above
                previous += next(deltas)
            out[step] = previous
    else:
        value_q = bits.svar()
        out[present[0]] = value_q
        for step, delta in zip(present[1:], _unpack(bits, len(present) - 1, width), strict=True):
            value_q += -(delta >> 1) - 1 if delta & 1 else delta >> 1
            out[step] = value_q
    if any(abs(q) >= _MAX_Q for q in out if q is not None):
        raise PacketError(Reason.BAD_BODY, f"{channel.key}: value out of range")
    values = tuple(None if q is None else _dequantise(q, channel) for q in out)
    quality_tuple: tuple[Quality, ...] = ()
    if qualities:
        quality_tuple = tuple(qualities.get(step, "measured") for step in range(count))
    return Column(number, values, quality_tuple, frozenset(resets))


# ----------------------------------------------------------------------------- readings out


@dataclass(frozen=True, slots=True)
class BlockReading:
    """One reading of a decoded block, with its channel."""

    channel: SchemaChannel
    at: datetime
    value: int | float
    quality: Quality
    aggregate: Aggregate
    reset: bool = False
    """an index restarted here: no consumption from the previous value"""


def iter_readings(block: ReadingBlock, schema: Schema) -> Iterator[BlockReading]:
    """Yield every present value of a block, column by column, in time order."""
    for column in block.columns:
        channel = schema[column.channel]
        aggregate: Aggregate = "sample"
        if block.aggregated:
            aggregate = "hour_last" if channel.kind == "index" else "hour_mean"
        for step, value in enumerate(column.values):
            if value is None:
                continue
            quality: Quality = column.qualities[step] if column.qualities else "measured"
            yield BlockReading(
                channel, block.at(step), value, quality, aggregate, step in column.resets
            )


def to_sync_readings(block: ReadingBlock, schema: Schema, site: str) -> list[SyncReading]:
    """Return a block's readings as the sink's :class:`~wesh.sync.sink.SyncReading`."""
    return [
        SyncReading(
            site=site,
            box=r.channel.box,
            path=r.channel.path,
            at=r.at,
            value=r.value,
            unit=r.channel.unit,
            kind=r.channel.kind,
            quality=r.quality,
            aggregate=r.aggregate,
        )
        for r in iter_readings(block, schema)
    ]


# ----------------------------------------------------------------------------- baselines


class BaselineBook:
    """Index values both ends agree on, by channel (``box/path``) and time.

    The site agent records a block's index values when HQ **acknowledges** its packet;
    HQ records them when it **stores** them. The agent's book is thus a subset of HQ's,
    and a DATA packet only refers to a baseline both hold. Keeps the latest
    ``per_channel`` times of each channel; persist with :meth:`to_dict`.
    """

    def __init__(self, *, per_channel: int = 48) -> None:
        if per_channel < 1:
            raise UsageError("per_channel must be >= 1", where="BaselineBook")
        self.per_channel = per_channel
        self._values: dict[str, dict[int, BaselineValue]] = {}

    def record(self, key: str, at: datetime, value: BaselineValue) -> None:
        """Remember the value of channel ``key`` at ``at``."""
        times = self._values.setdefault(key, {})
        times[int(at.timestamp())] = value
        if len(times) > self.per_channel:
            for old in sorted(times)[: len(times) - self.per_channel]:
                del times[old]

    def record_block(self, block: ReadingBlock, schema: Schema) -> None:
        """Remember every index value of a block (acknowledged, or stored at HQ)."""
        for reading in iter_readings(block, schema):
            if reading.channel.kind == "index":
                self.record(reading.channel.key, reading.at, reading.value)

    def get(self, key: str, at: datetime) -> BaselineValue | None:
        """Return the value of channel ``key`` at ``at``, if recorded."""
        return self._values.get(key, {}).get(int(at.timestamp()))

    def choose(
        self, keys: Iterable[str], *, before: datetime, step_s: int
    ) -> tuple[datetime | None, dict[str, BaselineValue]]:
        """Pick a baseline time for channels ``keys``: the latest time on the grid.

        The time is before ``before``, on the grid of step ``step_s`` through ``before``,
        and the one at which most of the channels have their latest value. Returns it with
        the values there (``(None, {})`` when nothing fits).
        """
        start = int(before.timestamp())
        votes: Counter[int] = Counter()
        keys = list(keys)
        for key in keys:
            times = [
                t for t in self._values.get(key, {}) if t < start and (start - t) % step_s == 0
            ]
            if times:
                votes[max(times)] += 1
        if not votes:
            return None, {}
        chosen = max(votes, key=lambda t: (votes[t], t))
        values = {k: v for k in keys if (v := self._values.get(k, {}).get(chosen)) is not None}
        return datetime.fromtimestamp(chosen, UTC), values

    def to_dict(self) -> dict[str, object]:
        """Return the state, JSON-serialisable."""
        return {
            "per_channel": self.per_channel,
            "values": {
                k: {str(t): v for t, v in times.items()} for k, times in self._values.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BaselineBook:
        """Rebuild a book from :meth:`to_dict` (``UsageError`` if malformed)."""
        try:
            per_channel = data["per_channel"]
            values = data["values"]
            if not isinstance(per_channel, int) or not isinstance(values, dict):
                raise TypeError("shape")  # noqa: TRY301 - one error path below
            book = cls(per_channel=per_channel)
            for key, times in values.items():
                for t, v in times.items():
                    if isinstance(v, bool) or not isinstance(v, int | float):
                        raise TypeError("value")  # noqa: TRY301 - one error path below
                    book._values.setdefault(str(key), {})[int(t)] = v
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UsageError("malformed baseline book", where="BaselineBook") from None
        return book
