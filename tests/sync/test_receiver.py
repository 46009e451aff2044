"""The HQ receiver driven by hand: rejects, rate limit, exactly-once hand-over, ACKs, ledger."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from tests.sync._fakes import NOW, Clock, FakeTransport, message, open_all
from tests.sync._sync_data import SITE
from wesh.errors import TransientError
from wesh.sync.crypto import Direction
from wesh.sync.fragment import fragment_packet
from wesh.sync.keys import KeyRing, generate_key
from wesh.sync.packet import (
    AckMessage,
    AlarmMessage,
    AnyMessage,
    DataMessage,
    RequestSchema,
    StatusMessage,
    seal_packet,
)
from wesh.sync.readings import BaselineBook, Column, ReadingBlock, encode_block
from wesh.sync.receiver import ReceiverConfig, SyncReceiver, read_ledgers
from wesh.sync.schema import Schema, SchemaChannel
from wesh.sync.sink import IngestResult, SiteStatus, SqliteSink, SyncAlarm, SyncReading

PEER = "+33600000001"
TEMP = SchemaChannel("dw-1", "temp.1", "gauge", "°C", 0.1)
WATER = SchemaChannel("dw-1", "impulsion.1.index", "index", "L", 1)
SCHEMA = Schema([TEMP, WATER])
KEY = generate_key(SITE, key_id=500)
HOUR = NOW.replace(minute=0) - timedelta(hours=5)
_RNG = random.Random(4)
VALUES = [(_RNG.randrange(150, 260) / 10, 1000 + 40 * i + _RNG.randrange(40)) for i in range(120)]


def data(
    values: Sequence[tuple[float, int]], *, start=HOUR, book: BaselineBook | None = None
) -> DataMessage:
    temps = tuple(v[0] for v in values)
    waters = tuple(v[1] for v in values)
    block = ReadingBlock(start, 3600, len(values), (Column(0, waters), Column(1, temps)))
    return encode_block(block, SCHEMA, book=book)


def texts(body: AnyMessage, seq: int, *, key=KEY) -> list[str]:
    return fragment_packet(seal_packet(body, key=key, seq=seq))


class FailingSink(SqliteSink):
    failing = False

    def ingest(self, readings: Sequence[SyncReading]) -> IngestResult:
        if self.failing:
            raise TransientError("database away")
        return super().ingest(readings)


class Rig:
    def __init__(self, tmp_path: Path, **config: object) -> None:
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.transport = FakeTransport("hq")
        self.sink = FailingSink(tmp_path / "sink.sqlite3")
        options: dict[str, object] = {"ack_delay_s": 5.0, "ack_min_interval_s": 20.0}
        options.update(config)
        self.config = ReceiverConfig(**options)  # type: ignore[arg-type]
        self.receiver = self.open()

    def open(self) -> SyncReceiver:
        receiver = SyncReceiver(
            keys=KeyRing({SITE: KEY}),
            sink=self.sink,
            state_path=self.tmp_path / "receiver.sqlite3",
            transport=self.transport,
            config=self.config,
            clock=self.clock,
        )
        receiver.provision_schema(SITE, SCHEMA)
        return receiver

    def feed(self, items: Sequence[str], peer: str = PEER) -> None:
        for text in items:
            self.receiver.handle_message(message(peer, text, self.clock()))

    async def acks(self, after_s: float = 5.0) -> list[AnyMessage]:
        self.clock.advance(after_s)
        await self.receiver.step()
        return [o.message for o in open_all(self.transport.take(), KEY, direction=Direction.DOWN)]

    def close(self) -> None:
        self.receiver.close()
        self.sink.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


async def test_data_is_stored_once_and_acknowledged_after_the_delay(rig: Rig) -> None:
    rig.feed(texts(data([(20.5, 100), (21.0, 104)]), 1))
    assert rig.sink.count() == 4
    assert await rig.acks(after_s=4.0) == []  # not yet: more may come
    (ack,) = await rig.acks(after_s=1.0)
    assert ack == AckMessage(1)
    rig.feed(texts(data([(20.5, 100), (21.0, 104)]), 1))  # the same packet again
    ledger = rig.receiver.ledger(SITE)
    assert ledger is not None
    assert (ledger.packets, ledger.duplicate_packets, ledger.readings_inserted) == (1, 1, 4)
    assert await rig.acks(after_s=5.0) == []  # ACKs are paced (20 s apart)
    (again,) = await rig.acks(after_s=15.0)
    assert again == AckMessage(1)
    values = sorted((r.path, r.at, r.value) for r in rig.sink.readings())
    assert values == [
        ("impulsion.1.index", HOUR, 100),
        ("impulsion.1.index", HOUR + timedelta(hours=1), 104),
        ("temp.1", HOUR, 20.5),
        ("temp.1", HOUR + timedelta(hours=1), 21.0),
    ]


async def test_seen_again_above_a_gap_is_acknowledged_explicitly(rig: Rig) -> None:
    rig.feed(texts(data([(20.0, 1)]), 3))
    (ack,) = await rig.acks()
    assert ack == AckMessage(0, frozenset({3}))
    rig.feed(texts(data([(20.0, 1)]), 3))
    (ack,) = await rig.acks(after_s=20.0)
    assert ack.acknowledges(3)
    assert rig.receiver.ledger(SITE).missing == (1, 2)  # type: ignore[union-attr]


async def test_strangers_and_forgeries_are_rejected_and_counted(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = generate_key("site-b", key_id=501)
    impostor = generate_key(SITE, key_id=500)  # the right id, another secret
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        rig.feed(texts(data([(20.0, 1)]), 1, key=stranger), peer="+33699999999")
        rig.feed(texts(data([(20.0, 1)]), 1, key=impostor), peer="+33699999998")
        rig.feed(["NOT BASE16"], peer="+33699999997")
        rig.feed(texts(AckMessage(1), 1), peer="+33699999996")  # a reflected down packet
    assert rig.receiver.rejects() == {
        ("+33699999999", "unknown_key"): 2,
        ("+33699999998", "bad_tag"): 2,
        ("+33699999997", "bad_text"): 2,
        ("+33699999996", "bad_direction"): 2,
    }
    assert caplog.text.count("rejected") == 4  # once per sender and reason
    assert "+33699999999" not in caplog.text  # numbers are redacted
    assert rig.sink.count() == 0
    assert rig.receiver.ledger(SITE) is not None  # provisioned, but nothing received
    assert rig.receiver.ledger(SITE).packets == 0  # type: ignore[union-attr]


async def test_a_flooding_sender_is_rate_limited(tmp_path: Path) -> None:
    rig = Rig(tmp_path, rate_per_minute=60.0, rate_burst=5)
    try:
        rig.feed(["00"] * 8, peer="+33611111111")
        assert rig.receiver.rejects()[("+33611111111", "rate_limited")] == 3
        rig.clock.advance(2)  # two tokens back
        rig.feed(["00"] * 3, peer="+33611111111")
        assert rig.receiver.rejects()[("+33611111111", "rate_limited")] == 4
        rig.feed(texts(data([(20.0, 1)]), 1))  # other senders are not affected
        assert rig.sink.count() == 2
    finally:
        rig.close()


async def test_an_unknown_schema_is_asked_for_then_the_data_is_taken(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        other = Schema([TEMP, WATER, SchemaChannel("dw-2", "temp.1", "gauge", "°C", 0.1)])
        block = ReadingBlock(HOUR, 3600, 1, (Column(2, (18.5,)),))
        message_ = encode_block(block, other)
        rig.feed(texts(message_, 1))
        assert rig.sink.count() == 0
        sent = await rig.acks()
        assert sent == [AckMessage(0), RequestSchema(other.hash)]
        rig.feed(texts(message_, 1))  # sent again before the schema: still asked only once
        assert [m for m in await rig.acks(after_s=20) if isinstance(m, RequestSchema)] == []
        rig.feed(texts(other.to_message(), 2))
        rig.feed(texts(message_, 1))
        assert [(r.box, r.value) for r in rig.sink.readings()] == [("dw-2", 18.5)]
        ledger = rig.receiver.ledger(SITE)
        assert ledger is not None
        assert ledger.asked_schemas == 1 and ledger.not_decodable == 2
        assert other.hash.hex() in ledger.schemas
        assert rig.receiver.asked(SITE)[-1][1:] == ("schema", other.hash.hex())
    finally:
        rig.close()


async def test_deltas_need_the_baseline_and_record_new_ones(rig: Rig) -> None:
    book = BaselineBook()
    book.record(WATER.key, HOUR - timedelta(hours=1), 90)
    rig.feed(texts(data([(20.0, 100)], book=book), 1))
    assert rig.sink.count() == 0  # HQ never stored 90 at that hour
    assert rig.receiver.ledger(SITE).not_decodable == 1  # type: ignore[union-attr]
    rig.feed(texts(data([(20.0, 90)], start=HOUR - timedelta(hours=1)), 2))
    rig.feed(texts(data([(20.0, 100)], book=book), 1))  # now it can be read
    assert sorted(r.value for r in rig.sink.readings() if r.kind == "index") == [90, 100]
    book.record(WATER.key, HOUR, 100)
    rig.feed(texts(data([(20.0, 123)], start=HOUR + timedelta(hours=1), book=book), 3))
    assert 123 in {r.value for r in rig.sink.readings()}


async def test_an_unreadable_authenticated_packet_is_quarantined_and_acknowledged(rig: Rig) -> None:
    broken = DataMessage(SCHEMA.hash, b"\x00\x01")
    rig.feed(texts(broken, 1))
    (ack,) = await rig.acks()
    assert ack == AckMessage(1)  # so that the site stops sending it
    assert rig.receiver.ledger(SITE).quarantined == 1  # type: ignore[union-attr]
    ((seq, reason, packet),) = rig.receiver.quarantined(SITE)
    assert (seq, reason) == (1, "bad_body")
    assert packet == seal_packet(broken, key=KEY, seq=1)  # kept as it came


async def test_alarms_and_statuses_reach_the_sink_and_low_seq_settles_gaps(rig: Rig) -> None:
    alarm = AlarmMessage(NOW, "alarm", "box_down", "dw-1 muet", box="dw-1")
    rig.feed(texts(alarm, 4))
    status = StatusMessage(NOW, 40, 1, 123, 17, 200, low_seq=4)
    rig.feed(texts(status, 5))
    assert rig.sink.alarms() == [
        SyncAlarm(SITE, "dw-1", None, NOW, "box_down", "alarm", "dw-1 muet")
    ]
    assert rig.sink.statuses() == [SiteStatus(SITE, NOW, 40, 1, 123, 17, 200, None, None)]
    (ack,) = await rig.acks()
    assert ack == AckMessage(5)  # 1..3 abandoned by the site, 4 and 5 received
    ledger = rig.receiver.ledger(SITE)
    assert ledger is not None
    assert ledger.missing == ()
    assert ledger.last_status is not None and ledger.last_status["queue_depth"] == 123


async def test_a_failing_sink_leaves_the_packet_unaccepted(rig: Rig) -> None:
    rig.sink.failing = True
    rig.feed(texts(data([(20.0, 1)]), 1))
    rig.sink.failing = False
    assert rig.receiver.ledger(SITE).packets == 0  # type: ignore[union-attr]
    rig.feed(texts(data([(20.0, 1)]), 1))
    assert rig.sink.count() == 2


async def test_partial_packets_are_asked_for_fragment_by_fragment(rig: Rig) -> None:
    parts = texts(data(VALUES), 1)
    assert len(parts) >= 3
    rig.feed(texts(data([(20.0, 1)], start=HOUR - timedelta(hours=50)), 2))  # the peer is known
    rig.feed([parts[0], parts[2]])
    (ack,) = await rig.acks()
    assert ack.cumulative == 0 and ack.selective == frozenset({2})
    (partial,) = ack.partial
    assert partial.packet_id == 1 and partial.missing == frozenset({1, *range(3, len(parts))})
    rig.feed(parts[1:])
    assert rig.receiver.ledger(SITE).asked_fragments == len(partial.missing)  # type: ignore[union-attr]
    assert rig.sink.count() == 2 + 2 * len(VALUES)


async def test_a_damaged_fragment_does_not_poison_the_packet(rig: Rig) -> None:
    parts = texts(data(VALUES), 1)
    damaged = parts[1][:10] + ("0" if parts[1][10] != "0" else "1") + parts[1][11:]
    rig.feed([parts[0], damaged, *parts[2:]])
    assert rig.sink.count() == 0
    assert rig.receiver.rejects() == {(PEER, "bad_tag"): 1}
    rig.feed(parts)  # the site sends the same packet again
    assert rig.sink.count() == 2 * len(VALUES)


async def test_state_survives_a_restart(rig: Rig) -> None:
    rig.feed(texts(data([(20.0, 1)]), 1))
    assert await rig.acks() == [AckMessage(1)]
    rig.receiver.close()
    rig.receiver = rig.open()
    rig.feed(texts(data([(20.0, 1)]), 1))  # a duplicate after the restart
    assert rig.receiver.ledger(SITE).duplicate_packets == 1  # type: ignore[union-attr]
    rig.clock.advance(5)
    await rig.receiver.step()
    (opened,) = open_all(rig.transport.take(), KEY, direction=Direction.DOWN)
    assert opened.header.seq > 32  # the down numbers go on (a new block), never reused
    (ledger,) = read_ledgers(rig.tmp_path / "receiver.sqlite3")
    assert ledger.site == SITE and ledger.packets == 1 and ledger.cumulative == 1
    assert ledger.to_dict()["peer"] == "…001"
