"""The compact reading block: round trips, baselines, resets, qualities, quantisation, sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, ring
from wesh.errors import UsageError
from wesh.sync.packet import DataMessage, PacketError, Reason, open_packet, seal_packet
from wesh.sync.readings import (
    BaselineBook,
    Column,
    ReadingBlock,
    decode_block,
    encode_block,
    iter_readings,
    to_sync_readings,
)
from wesh.sync.schema import Schema, SchemaChannel

START = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)
HOUR = 3600

SCHEMA = Schema(
    [
        SchemaChannel("dw-01", "tic.1.index.base", "index", "Wh", 1),
        SchemaChannel("dw-01", "tic.1.power_va", "gauge", "VA", 10),
        SchemaChannel("dw-01", "impulsion.1.index", "index", "L", 1),
        SchemaChannel("dw-01", "temp.1", "gauge", "°C", 0.1),
        SchemaChannel("dw-01", "temp.2", "gauge", "%", 0.1),
        SchemaChannel("pc", "impulsion.1.index", "index", "L", 10),
    ]
)
ELEC = SCHEMA.index_of("dw-01", "tic.1.index.base")
POWER = SCHEMA.index_of("dw-01", "tic.1.power_va")
WATER = SCHEMA.index_of("dw-01", "impulsion.1.index")
TEMP = SCHEMA.index_of("dw-01", "temp.1")


def dequantise(q: int, channel: SchemaChannel) -> int | float:
    res = channel.resolution
    return q * int(res) if float(res).is_integer() else round(q * res, channel.decimals)


qualities = st.sampled_from(["measured", "measured", "estimated", "suspect"])


@st.composite
def columns_for(draw: st.DrawFn, schema: Schema, count: int) -> tuple[Column, ...]:
    chosen = draw(st.lists(st.integers(0, len(schema) - 1), unique=True, max_size=len(schema)))
    out = []
    for number in sorted(chosen):
        channel = schema[number]
        present = draw(st.lists(st.booleans(), min_size=count, max_size=count))
        if channel.kind == "index":
            q = draw(st.integers(0, 10**9))
            qs = []
            for _ in range(count):
                q += draw(st.integers(-50, 3000) | st.integers(0, 10**7))
                qs.append(q)
        else:
            qs = draw(st.lists(st.integers(-(10**6), 10**6), min_size=count, max_size=count))
        values = tuple(
            dequantise(q, channel) if p else None for q, p in zip(qs, present, strict=True)
        )
        quals = tuple(draw(st.lists(qualities, min_size=count, max_size=count)))
        resets: frozenset[int] = frozenset()
        if channel.kind == "index":
            resets = frozenset(draw(st.sets(st.integers(0, count - 1))))
        out.append(Column(number, values, quals if draw(st.booleans()) else (), resets))
    return tuple(out)


@st.composite
def blocks(draw: st.DrawFn) -> ReadingBlock:
    count = draw(st.integers(1, 30))
    step = draw(st.sampled_from([60, 600, 3600, 86400]))
    start = START + timedelta(seconds=step * draw(st.integers(-1000, 1000)))
    return ReadingBlock(start, step, count, draw(columns_for(SCHEMA, count)), draw(st.booleans()))


def expected(block: ReadingBlock, baselines: dict[int, int | float]) -> ReadingBlock:
    """What decoding must give: missing steps lose their quality; decreases become resets."""
    columns = []
    for column in block.columns:
        channel = SCHEMA[column.channel]
        present = [i for i, v in enumerate(column.values) if v is not None]
        resets = set(column.resets) & set(present)
        if channel.kind == "index":
            previous = baselines.get(column.channel)
            for step in present:
                value = column.values[step]
                assert value is not None
                if previous is not None and value < previous:
                    resets.add(step)
                previous = value
        quals = ()
        if column.qualities and any(column.qualities[i] != "measured" for i in present):
            quals = tuple(
                column.qualities[i] if i in present else "measured" for i in range(block.count)
            )
        columns.append(Column(column.channel, column.values, quals, frozenset(resets)))
    return ReadingBlock(block.start, block.step_s, block.count, tuple(columns), block.aggregated)


@given(blocks(), st.sampled_from([None, True, False]))
def test_round_trip_without_baseline(block: ReadingBlock, compress: bool | None) -> None:
    message = encode_block(block, SCHEMA, compress=compress)
    decoded = decode_block(message, SCHEMA)
    assert decoded == expected(block, {})
    assert decoded.base_at is None


@given(blocks(), st.data())
def test_round_trip_with_baselines(block: ReadingBlock, data: st.DataObject) -> None:
    back = data.draw(st.integers(1, 5))
    base_at = block.start - timedelta(seconds=back * block.step_s)
    book = BaselineBook()
    baselines: dict[int, int | float] = {}
    for column in block.columns:
        channel = SCHEMA[column.channel]
        if channel.kind == "index" and data.draw(st.booleans()):
            value = dequantise(data.draw(st.integers(0, 10**9)), channel)
            book.record(channel.key, base_at, value)
            baselines[column.channel] = value
    message = encode_block(block, SCHEMA, book=book)
    decoded = decode_block(message, SCHEMA, baseline=book)
    assert decoded == expected(block, baselines)
    if baselines:
        assert decoded.base_at == base_at


@given(blocks())
def test_data_packet_round_trip(block: ReadingBlock) -> None:
    packet = seal_packet(encode_block(block, SCHEMA), key=KEY_A, seq=3)
    message = open_packet(packet, keys=ring(KEY_A)).message
    assert isinstance(message, DataMessage)
    assert decode_block(message, SCHEMA) == expected(block, {})


def hourly(
    values: dict[int, list[int | float | None]], count: int = 4, **kw: object
) -> ReadingBlock:
    return ReadingBlock(
        START,
        HOUR,
        count,
        tuple(Column(n, tuple(v)) for n, v in sorted(values.items())),
        **kw,  # type: ignore[arg-type]
    )


def test_index_deltas_start_from_the_acknowledged_baseline() -> None:
    book = BaselineBook()
    book.record("dw-01/tic.1.index.base", START - timedelta(hours=1), 1_000_000)
    block = hourly({ELEC: [1_000_500, 1_001_000, 1_001_200, 1_002_000]})
    with_base = encode_block(block, SCHEMA, book=book, compress=False)
    absolute = encode_block(block, SCHEMA, compress=False)
    assert len(with_base.block) < len(absolute.block)
    assert decode_block(with_base, SCHEMA, baseline=book).columns == block.columns
    with pytest.raises(PacketError) as info:
        decode_block(with_base, SCHEMA)
    assert info.value.reason is Reason.UNKNOWN_BASELINE
    assert info.value.channel == "dw-01/tic.1.index.base"
    looked_up = []

    def lookup(channel: SchemaChannel, at: datetime) -> int | None:
        looked_up.append((channel.key, at))
        return 1_000_000

    assert decode_block(with_base, SCHEMA, baseline=lookup).columns == block.columns
    assert looked_up == [("dw-01/tic.1.index.base", START - timedelta(hours=1))]


def test_a_lost_packet_never_corrupts_the_next() -> None:
    """Two packets sent before any ACK both refer to the last acknowledged baseline."""
    site_book = BaselineBook()
    site_book.record("dw-01/impulsion.1.index", START - timedelta(hours=1), 500)
    hq_book = BaselineBook.from_dict(site_book.to_dict())
    first = hourly({WATER: [510, 520, 530, 540]})
    second = ReadingBlock(START + timedelta(hours=4), HOUR, 2, (Column(WATER, (550, 560)),))
    encode_block(first, SCHEMA, book=site_book)  # lost on the way
    message = encode_block(second, SCHEMA, book=site_book)  # the site heard no ACK
    decoded = decode_block(message, SCHEMA, baseline=hq_book)
    assert decoded.columns[0].values == (550, 560)
    assert decoded.base_at == START - timedelta(hours=1)


def test_baseline_moves_on_when_acknowledged() -> None:
    book = BaselineBook()
    book.record("dw-01/impulsion.1.index", START - timedelta(hours=1), 500)
    first = hourly({WATER: [510, 520, 530, 540]})
    book.record_block(first, SCHEMA)  # ACK received
    second = ReadingBlock(START + timedelta(hours=4), HOUR, 1, (Column(WATER, (541,)),))
    assert decode_block(encode_block(second, SCHEMA, book=book), SCHEMA, baseline=book).base_at == (
        START + timedelta(hours=3)
    )


def test_decrease_is_a_reset_and_marked_resets_travel() -> None:
    marked = ReadingBlock(
        START,
        HOUR,
        4,
        (
            Column(WATER, (10, 11, 900, 901), resets=frozenset({2})),  # meter replaced
            Column(ELEC, (1000, 1100, 5, 20)),  # counter went down
        ),
    )
    decoded = decode_block(encode_block(marked, SCHEMA), SCHEMA)
    assert [c.values for c in decoded.columns] == [c.values for c in marked.columns]
    assert decoded.columns[0].resets == {2}
    assert decoded.columns[1].resets == {2}
    assert [r.reset for r in iter_readings(decoded, SCHEMA)] == [False, False, True, False] * 2


def test_reset_on_the_first_step_needs_no_baseline() -> None:
    block = hourly({ELEC: [3, 4, 5, 6]})
    marked = ReadingBlock(
        block.start, HOUR, 4, (Column(ELEC, (3, 4, 5, 6), resets=frozenset({0})),)
    )
    book = BaselineBook()
    book.record("dw-01/tic.1.index.base", START - timedelta(hours=1), 99_999)
    message = encode_block(marked, SCHEMA, book=book)
    assert decode_block(message, SCHEMA).columns == marked.columns


def test_quantisation_to_the_resolution() -> None:
    block = hourly(
        {
            POWER: [1234.4, 1235, 1239.9, 0],
            TEMP: [21.349, 21.35, -3.04, 0.05],
            ELEC: [10.4, 10.6, 11.5, 12],
        }
    )
    decoded = decode_block(encode_block(block, SCHEMA), SCHEMA)
    by_channel = {c.channel: c.values for c in decoded.columns}
    assert by_channel[POWER] == (1230, 1240, 1240, 0)
    assert by_channel[TEMP] == (21.3, 21.4, -3.0, 0.1)
    assert by_channel[ELEC] == (10, 11, 12, 12)
    assert all(isinstance(v, int) for v in by_channel[ELEC])


def test_qualities_and_gaps() -> None:
    block = ReadingBlock(
        START,
        HOUR,
        4,
        (Column(TEMP, (20.0, None, 20.5, 21.0), ("measured", "suspect", "estimated", "measured")),),
    )
    decoded = decode_block(encode_block(block, SCHEMA), SCHEMA)
    assert decoded.columns[0].values == (20.0, None, 20.5, 21.0)
    assert decoded.columns[0].qualities == ("measured", "measured", "estimated", "measured")
    readings = list(iter_readings(decoded, SCHEMA))
    assert [r.quality for r in readings] == ["measured", "estimated", "measured"]
    assert [r.at for r in readings] == [
        START,
        START + timedelta(hours=2),
        START + timedelta(hours=3),
    ]


def test_empty_column_and_channel_set_modes() -> None:
    every = ReadingBlock(START, HOUR, 1, tuple(Column(n, (10,)) for n in range(len(SCHEMA))))
    one = ReadingBlock(START, HOUR, 1, (Column(TEMP, (1,)),))
    empty_col = ReadingBlock(START, HOUR, 2, (Column(TEMP, (1, 2)), Column(ELEC, (None, None))))
    sparse = ReadingBlock(START, HOUR, 1, (Column(0, (1,)), Column(2, (1,)), Column(4, (10,))))
    nothing = ReadingBlock(START, HOUR, 3, ())
    modes = []
    for block in (every, one, empty_col, sparse, nothing):
        message = encode_block(block, SCHEMA, compress=False)
        assert decode_block(message, SCHEMA) == block
        modes.append(message.block[0] >> 2 & 3)
    assert modes == [0, 3, 1, 1, 1]  # every, range, then bitmaps (cheaper than lists here)
    big = Schema([SchemaChannel("b", f"temp.{n}", "gauge", "°C", 0.1) for n in range(1, 300)])
    far = ReadingBlock(START, HOUR, 1, (Column(1, (1,)), Column(250, (2,))))
    message = encode_block(far, big, compress=False)
    assert message.block[0] >> 2 & 3 == 2
    assert decode_block(message, big) == far


def test_to_sync_readings() -> None:
    block = hourly({ELEC: [1, 2, 3, 4], POWER: [100, 200, None, 400]})
    readings = to_sync_readings(decode_block(encode_block(block, SCHEMA), SCHEMA), SCHEMA, "b001")
    assert len(readings) == 7
    first = readings[0]
    assert (first.site, first.box, first.path, first.value, first.unit, first.kind) == (
        "b001",
        "dw-01",
        "tic.1.index.base",
        1,
        "Wh",
        "index",
    )
    assert first.aggregate == "hour_last"
    assert readings[-1].aggregate == "hour_mean"
    samples = hourly({ELEC: [1, 2, 3, 4]}, aggregated=False)
    assert {r.aggregate for r in to_sync_readings(samples, SCHEMA, "b001")} == {"sample"}


def test_other_schema_is_unknown_schema() -> None:
    other = Schema([SchemaChannel("x", "temp.1", "gauge", "°C", 0.1)])
    message = encode_block(hourly({TEMP: [1, 2, 3, 4]}), SCHEMA)
    with pytest.raises(PacketError) as info:
        decode_block(message, other)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA


@pytest.mark.parametrize(
    "block",
    [
        ReadingBlock(START.replace(tzinfo=None), HOUR, 1, ()),
        ReadingBlock(START + timedelta(microseconds=5), HOUR, 1, ()),
        ReadingBlock(START, 0, 1, ()),
        ReadingBlock(START, HOUR, 0, ()),
        ReadingBlock(START, HOUR, 2, (Column(TEMP, (1,)),)),
        ReadingBlock(START, HOUR, 1, (Column(ELEC, (1,)), Column(TEMP, (1,)))),
        ReadingBlock(START, HOUR, 1, (Column(99, (1,)),)),
        ReadingBlock(START, HOUR, 1, (Column(TEMP, (float("nan"),)),)),
        ReadingBlock(START, HOUR, 1, (Column(TEMP, (1e300,)),)),
        ReadingBlock(START, HOUR, 1, (Column(TEMP, (1,), ("bad",)),)),  # type: ignore[arg-type]
        ReadingBlock(START, HOUR, 1, (Column(TEMP, (1,), resets=frozenset({0})),)),
        ReadingBlock(START, HOUR, 1, (Column(ELEC, (1,), resets=frozenset({3})),)),
    ],
)
def test_blocks_that_cannot_travel(block: ReadingBlock) -> None:
    with pytest.raises(UsageError):
        encode_block(block, SCHEMA)


def test_a_steady_day_is_small() -> None:
    """24 hourly values of 6 channels in well under 100 bytes a channel-day."""
    values: dict[int, list[int | float | None]] = {
        ELEC: [50_000 + 800 * h for h in range(24)],
        POWER: [800 + (h % 5) * 10 for h in range(24)],
        WATER: [1000 + 5 * h for h in range(24)],
        TEMP: [20 + (h % 3) / 10 for h in range(24)],
    }
    book = BaselineBook()
    for key, value in (("dw-01/tic.1.index.base", 49_200), ("dw-01/impulsion.1.index", 995)):
        book.record(key, START - timedelta(hours=1), value)
    message = encode_block(hourly(values, count=24), SCHEMA, book=book)
    assert len(message.block) < 4 * 30
    assert decode_block(message, SCHEMA, baseline=book).columns == hourly(values, count=24).columns


def test_baseline_book_choose_and_state() -> None:
    book = BaselineBook(per_channel=3)
    for hour in range(5):
        book.record("a/x", START + timedelta(hours=hour), hour * 10)
    book.record("b/y", START + timedelta(hours=2), 7)
    book.record("b/y", START + timedelta(hours=2, minutes=30), 8)  # off the grid
    at, values = book.choose(["a/x", "b/y"], before=START + timedelta(hours=3), step_s=HOUR)
    assert at == START + timedelta(hours=2)
    assert values == {"a/x": 20, "b/y": 7}
    assert book.get("a/x", START) is None  # only the latest 3 kept
    again = BaselineBook.from_dict(book.to_dict())
    assert again.to_dict() == book.to_dict()
    assert book.choose(["c/z"], before=START, step_s=HOUR) == (None, {})
    with pytest.raises(UsageError):
        BaselineBook.from_dict({"per_channel": 3, "values": {"a": {"x": 1}}})
    with pytest.raises(UsageError):
        BaselineBook.from_dict({})


def test_a_block_claiming_too_many_values_is_refused_before_decoding() -> None:
    big = Schema([SchemaChannel("b", f"temp.{n}", "gauge", "°C", 0.1) for n in range(1, 300)])
    # flags 0 (every channel), start, step 3600, count 8784 (varints), base_back 0, no stream
    block = bytes([0]) + int(START.timestamp()).to_bytes(4, "big") + bytes.fromhex("901cd04400")
    with pytest.raises(PacketError) as info:
        decode_block(DataMessage(big.hash, block), big)
    assert info.value.reason is Reason.TOO_LARGE
    with pytest.raises(UsageError):
        encode_block(
            ReadingBlock(START, 60, 8784, tuple(Column(n, (None,) * 8784) for n in range(200))),
            big,
        )
