"""The site agent driven by hand: aggregation, packing, priorities, budget, retries, ACKs.

A settable clock, a recording transport and a real weshd store; packets are opened with
the codec, and a real receiver (on an in-memory sink) answers when a test needs ACKs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.gateway._vtime import run_virtual
from tests.sync._fakes import NOW, Clock, FakeTransport, bodies, message, open_all
from tests.sync._sync_data import SITE, make_sample
from wesh.cli import cli
from wesh.errors import UsageError
from wesh.gateway.channels import GatewayEvent
from wesh.gateway.store import Store
from wesh.sync.agent import AgentConfig, SyncAgent, backoff_s
from wesh.sync.keys import KeyRing, SiteKey, generate_key
from wesh.sync.packet import (
    AckMessage,
    AlarmMessage,
    DataMessage,
    PacketType,
    PartialAck,
    ReplyMessage,
    ReplyStatus,
    RequestSchema,
    RequestStatus,
    ResendTimes,
    SchemaMessage,
    StatusMessage,
    seal_packet,
)
from wesh.sync.pair import run_sync_pair
from wesh.sync.readings import decode_block, iter_readings
from wesh.sync.receiver import ReceiverConfig, SyncReceiver
from wesh.sync.schema import Schema, SchemaChannel
from wesh.sync.sink import SqliteSink

HQ = "hq"
TEMP = SchemaChannel("dw-1", "temp.1", "gauge", "°C", 0.1)
WATER = SchemaChannel("dw-1", "impulsion.1.index", "index", "L", 1)
SCHEMA = Schema([TEMP, WATER])


class Rig:
    """An agent on a store, with its clock, transport and key; reopenable."""

    def __init__(self, tmp_path: Path, **config: object) -> None:
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.key = generate_key(SITE, key_id=77)
        self.transport = FakeTransport()
        self.store = Store.open(tmp_path / "weshd.sqlite3", clock=self.clock)
        defaults: dict[str, object] = {
            "site": SITE,
            "hq_peer": HQ,
            "sms_budget_per_day": 0,
            "retry_initial_s": 100.0,
            "retry_max_s": 800.0,
            "retry_jitter": 0.0,
            "close_delay_s": 60.0,
            "fragment_retry_s": 30.0,
            "upload_interval_s": 0.0,
            "seed": 1,
        }
        defaults.update(config)
        self.config = AgentConfig(**defaults)  # type: ignore[arg-type]
        self.agent = self.open()

    def open(self, key: SiteKey | None = None, schema: Schema = SCHEMA) -> SyncAgent:
        return SyncAgent(
            config=self.config,
            key=key or self.key,
            queue=self.store,
            state_path=self.tmp_path / "agent.sqlite3",
            transport=self.transport,
            schema=schema,
            clock=self.clock,
        )

    def reopen(self, **kwargs: object) -> SyncAgent:
        self.agent.close()
        self.agent = self.open(**kwargs)  # type: ignore[arg-type]
        return self.agent

    def add(self, where: SchemaChannel, at: datetime, value: object, **changes: object) -> None:
        self.store.add_samples([replace(make_sample(where, at, value), **changes)])  # type: ignore[arg-type]

    def close(self) -> None:
        self.agent.close()
        self.store.close()

    def ack(self, cumulative: int, selective: frozenset[int] = frozenset(), partial=()) -> None:
        down_seq = getattr(self, "_down", 0) + 1
        self._down = down_seq
        packet = seal_packet(
            AckMessage(cumulative, selective, tuple(partial)), key=self.key, seq=down_seq
        )
        self.agent.handle_message(message(HQ, packet.hex().upper()))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


def data_readings(
    texts: list[tuple[str, str]], key: SiteKey
) -> list[tuple[str, datetime, float, str, str]]:
    out = []
    for body in bodies(texts, key):
        if isinstance(body, DataMessage):
            block = decode_block(body, SCHEMA, baseline=lambda c, at: None)
            out += [
                (r.channel.path, r.at, r.value, r.quality, r.aggregate)
                for r in iter_readings(block, SCHEMA)
            ]
    return sorted(out)


def types(texts: list[tuple[str, str]], key: SiteKey) -> list[PacketType]:
    return [opened.header.type for opened in open_all(texts, key)]


async def test_hours_close_late_and_become_means_and_last_values(rig: Rig) -> None:
    hour = NOW - timedelta(hours=1)
    rig.add(TEMP, hour + timedelta(minutes=5), 20.0)
    rig.add(TEMP, hour + timedelta(minutes=25), 21.0, quality="suspect")
    rig.add(TEMP, hour + timedelta(minutes=45), 22.5)
    rig.add(WATER, hour + timedelta(minutes=10), 1000)
    rig.add(WATER, hour + timedelta(minutes=50), 1010)
    rig.add(WATER, hour + timedelta(minutes=30), 1005)  # out of order: 1010 stays the last
    await rig.agent.step()
    first = rig.transport.take()
    assert types(first, rig.key) == [PacketType.SCHEMA, PacketType.STATUS]
    status = rig.agent.status()
    assert status.open_hours == 2 and status.items_waiting == 0
    rig.clock.advance(59)  # the hour ended at NOW: still open for close_delay_s
    await rig.agent.step()
    assert rig.agent.status().open_hours == 2
    rig.clock.advance(2)
    rig.ack(2)  # schema and status acknowledged: data may go
    await rig.agent.step()
    assert data_readings(rig.transport.take(), rig.key) == [
        ("impulsion.1.index", hour, 1010, "measured", "hour_last"),
        ("temp.1", hour, 21.2, "suspect", "hour_mean"),
    ]


async def test_a_sample_for_a_closed_hour_travels_as_a_sample(rig: Rig) -> None:
    hour = NOW - timedelta(hours=2)
    rig.add(TEMP, hour + timedelta(minutes=1), 20.0)
    await rig.agent.step()
    rig.ack(2)
    await rig.agent.step()
    rig.transport.take()
    rig.add(TEMP, hour + timedelta(minutes=59, seconds=30), 19.0)
    await rig.agent.step()
    assert data_readings(rig.transport.take(), rig.key) == [
        ("temp.1", hour + timedelta(minutes=59), 19.0, "measured", "sample")
    ]
    assert rig.agent.status().counters["late_samples"] == 1


async def test_states_and_texts_stay_local_and_are_acknowledged(rig: Rig) -> None:
    at = NOW - timedelta(hours=3)
    relay = SchemaChannel("dw-1", "relais.1", "gauge", None, 1)
    rig.add(relay, at, True, kind="state", unit=None, meaning="state")
    rig.add(
        relay,
        at,
        "BASE",
        kind="text",
        unit=None,
        meaning="text",
        path="tic.1.optarif",
        channel="dw-1/tic.1.optarif",
    )
    await rig.agent.step()
    await rig.agent.step()
    status = rig.agent.status()
    assert status.counters["local_only"] == 2
    assert status.store_acked_upto == status.reading_cursor == 2
    assert rig.store.queue_depth() == 0


async def test_unknown_channels_join_the_schema_which_goes_first(rig: Rig) -> None:
    extra = SchemaChannel("dw-2", "temp.3", "gauge", "°C", 0.1)
    rig.add(extra, NOW - timedelta(hours=2), 18.0)
    rig.add(TEMP, NOW - timedelta(hours=2), 19.0)
    await rig.agent.step()
    sent = bodies(rig.transport.take(), rig.key)
    schemas = [b for b in sent if isinstance(b, SchemaMessage)]
    assert len(schemas) == 1
    carried = Schema.from_message(schemas[0])
    assert carried.index_of("dw-2", "temp.3") is not None
    assert len(carried) == 3
    assert not any(isinstance(b, DataMessage) for b in sent)  # data waits for the schema's ACK


async def test_sample_mode_puts_one_value_per_channel_and_grid_step(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mode="sample", sample_grid_s=60)
    try:
        at = NOW - timedelta(minutes=10)
        rig.add(TEMP, at + timedelta(seconds=5), 20.0)
        rig.add(TEMP, at + timedelta(seconds=50), 20.5)  # same minute: replaces
        rig.add(TEMP, at + timedelta(seconds=65), 21.0)
        await rig.agent.step()
        rig.ack(2)
        await rig.agent.step()
        assert data_readings(rig.transport.take(), rig.key) == [
            ("temp.1", at, 20.5, "measured", "sample"),
            ("temp.1", at + timedelta(minutes=1), 21.0, "measured", "sample"),
        ]
        assert rig.agent.status().counters["merged"] == 1
    finally:
        rig.close()


async def test_alarms_go_first_and_are_acknowledged_by_seq(rig: Rig) -> None:
    rig.add(TEMP, NOW - timedelta(hours=2), 19.0)
    event = GatewayEvent(
        at=NOW - timedelta(minutes=3), box="dw-1", channel=None, kind="box_down",
        severity="alarm", message="dw-1 ne répond plus " + "!" * 200,
    )  # fmt: skip
    rig.store.add_event(event)
    await rig.agent.step()
    sent = rig.transport.take()
    assert types(sent, rig.key)[0] == PacketType.ALARM
    alarm = bodies(sent, rig.key)[0]
    assert isinstance(alarm, AlarmMessage)
    assert alarm.message.startswith("dw-1 ne répond plus")
    assert len(alarm.message.encode()) <= 120  # clipped to travel
    assert alarm.at == event.at.replace(second=0)
    assert rig.store.queue_depth() == 2
    rig.ack(3)
    await rig.agent.step()
    assert rig.agent.status().alarms_waiting == 0
    assert rig.store.pending_events() == []


async def test_latest_values_go_before_the_backlog(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_fragments=1, max_steps_per_packet=1, max_in_flight=1)
    try:
        for hours in (30, 20, 10, 1):
            rig.add(TEMP, NOW - timedelta(hours=hours, minutes=-5), 20.0 + hours)
        rig.clock.advance(3600)
        await rig.agent.step()
        rig.ack(2)
        order = []
        for seq in range(3, 7):
            await rig.agent.step()
            order += [r[1] for r in data_readings(rig.transport.take(), rig.key)]
            rig.ack(seq)
        hour = (NOW - timedelta(hours=1)).replace(minute=0)
        assert order == [
            hour,  # the latest first
            hour - timedelta(hours=29),  # then the backlog, oldest first
            hour - timedelta(hours=19),
            hour - timedelta(hours=9),
        ]
    finally:
        rig.close()


async def test_the_budget_keeps_a_reserve_for_alarms_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(
        tmp_path, sms_budget_per_day=6, alarm_reserve=2, max_fragments=1, max_steps_per_packet=1
    )
    try:
        for hours in range(2, 12):
            rig.add(TEMP, NOW - timedelta(hours=hours), 20.0)
        await rig.agent.step()  # schema + status: 2 SMS
        rig.ack(2)
        caplog.set_level(logging.WARNING)
        await rig.agent.step()
        await rig.agent.step()
        assert len(rig.transport.take()) == 4  # schema, status, 2 data: 6 - 2 (reserve)
        assert rig.agent.status().sms_sent_today == 4
        assert caplog.text.count("SMS budget of 6") == 1
        rig.store.add_event(
            GatewayEvent(
                at=NOW, box=None, channel=None, kind="disk_full", severity="alarm", message="plein"
            )
        )
        await rig.agent.step()
        assert types(rig.transport.take(), rig.key) == [PacketType.ALARM]  # from the reserve
        assert rig.agent.status().items_waiting > 0
        rig.clock.advance(24 * 3600)  # a new day (Europe/Paris)
        rig.ack(10)
        await rig.agent.step()
        assert rig.transport.take()
    finally:
        rig.close()


async def test_unacknowledged_packets_go_again_with_backoff(rig: Rig) -> None:
    await rig.agent.step()
    first = rig.transport.take()
    assert types(first, rig.key) == [PacketType.SCHEMA, PacketType.STATUS]
    rig.clock.advance(99)
    await rig.agent.step()
    assert rig.transport.take() == []
    rig.clock.advance(1)
    await rig.agent.step()
    assert sorted(rig.transport.take()) == sorted(first)  # the same bytes again
    rig.clock.advance(199)
    await rig.agent.step()
    assert rig.transport.take() == []
    rig.clock.advance(1)
    await rig.agent.step()
    assert sorted(rig.transport.take()) == sorted(first)
    assert rig.agent.status().counters["packets_resent"] == 4


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    assert [backoff_s(n, initial_s=10, max_s=50, jitter=0, rng=rng) for n in (1, 2, 3, 4)] == [
        10,
        20,
        40,
        50,
    ]
    values = [backoff_s(1, initial_s=10, max_s=50, jitter=0.2, rng=rng) for _ in range(200)]
    assert 8 <= min(values) < 9 and 11 < max(values) <= 12


async def test_partial_ack_resends_just_the_missing_fragments(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_in_flight=1)
    try:
        for hours in range(2, 40):
            rig.add(TEMP, NOW - timedelta(hours=hours), 15.0 + (hours * 7 % 13))
            rig.add(WATER, NOW - timedelta(hours=hours), 1000 + hours * 37 % 101)
        await rig.agent.step()
        rig.transport.take()
        rig.ack(2)
        await rig.agent.step()
        texts = rig.transport.take()
        data = open_all(texts, rig.key)
        assert [o.header.type for o in data] == [PacketType.DATA]
        assert len(texts) >= 2
        seq = data[0].header.seq
        last = len(texts) - 1
        rig.ack(2, partial=[PartialAck(seq % 128, len(texts), frozenset({last}))])
        await rig.agent.step()
        assert rig.transport.take() == []  # too soon: they may still be on their way
        rig.clock.advance(30)
        await rig.agent.step()
        assert rig.transport.take() == [texts[last]]  # the request was kept
        await rig.agent.step()
        assert rig.transport.take() == []  # once
    finally:
        rig.close()


async def test_acks_record_baselines_and_the_next_packets_use_deltas(rig: Rig) -> None:
    rig.add(WATER, NOW - timedelta(hours=3), 5_000_000)
    await rig.agent.step()
    rig.ack(2)
    await rig.agent.step()
    (first,) = [b for b in bodies(rig.transport.take(), rig.key) if isinstance(b, DataMessage)]
    rig.ack(3)
    rig.add(WATER, NOW - timedelta(hours=2), 5_000_010)
    await rig.agent.step()
    (second,) = [b for b in bodies(rig.transport.take(), rig.key) if isinstance(b, DataMessage)]
    assert len(second.block) < len(first.block)
    block = decode_block(
        second, SCHEMA, baseline=lambda c, at: 5_000_000 if at == NOW - timedelta(hours=3) else None
    )
    assert [r.value for r in iter_readings(block, SCHEMA)] == [5_000_010]
    assert rig.store.queue_depth() == 1  # the first reading is acknowledged in weshd's queue
    rig.ack(4)
    await rig.agent.step()
    assert rig.store.queue_depth() == 0


async def test_a_baseline_packet_left_unanswered_goes_again_absolute(tmp_path: Path) -> None:
    rig = Rig(tmp_path, absolute_after=2)
    try:
        rig.add(WATER, NOW - timedelta(hours=3), 700)
        await rig.agent.step()
        rig.ack(2)
        await rig.agent.step()
        rig.ack(3)
        rig.add(WATER, NOW - timedelta(hours=2), 705)
        await rig.agent.step()
        rig.transport.take()
        for _ in range(2):
            rig.clock.advance(900)
            await rig.agent.step()
        sent = open_all(rig.transport.take(), rig.key)
        datas = [o for o in sent if o.header.type == PacketType.DATA]
        assert datas[-1].header.seq > 4  # re-encoded under a new number
        block = decode_block(datas[-1].message, SCHEMA)  # type: ignore[arg-type]
        assert [r.value for r in iter_readings(block, SCHEMA)] == [705]  # no baseline needed
        assert rig.agent.status().counters["reencoded"] == 1
    finally:
        rig.close()


async def test_a_restart_never_reuses_a_number_and_keeps_what_is_in_flight(rig: Rig) -> None:
    rig.add(TEMP, NOW - timedelta(hours=3), 20.0)
    await rig.agent.step()
    rig.ack(2)
    await rig.agent.step()
    before = open_all(rig.transport.take(), rig.key)
    assert rig.agent.status().packets_in_flight == 1
    agent = rig.reopen()
    assert agent.status().packets_in_flight == 1
    await agent.step()
    after = open_all(rig.transport.take(), rig.key)
    status = [o for o in after if isinstance(o.message, StatusMessage)]
    assert status and status[0].header.seq > max(o.header.seq for o in before)
    assert status[0].message.low_seq == before[-1].header.seq  # type: ignore[union-attr]


async def test_a_new_key_repacks_what_the_old_one_sealed(rig: Rig) -> None:
    rig.add(TEMP, NOW - timedelta(hours=3), 20.0)
    await rig.agent.step()
    rig.ack(2)
    await rig.agent.step()
    rig.transport.take()
    new_key = generate_key(SITE, key_id=78)
    rig.key = new_key
    agent = rig.reopen(key=new_key)
    await agent.step()
    sent = open_all(rig.transport.take(), new_key)
    assert sent[0].header.type == PacketType.SCHEMA
    assert min(o.header.seq for o in sent) == 1


async def test_commands_are_answered_once(rig: Rig) -> None:
    await rig.agent.step()
    rig.ack(2)
    rig.transport.take()
    commands = [RequestStatus(), RequestSchema(), ResendTimes(NOW - timedelta(hours=1), NOW)]
    for seq, command in enumerate(commands, start=50):
        text = seal_packet(command, key=rig.key, seq=seq).hex().upper()
        rig.agent.handle_message(message(HQ, text))
        rig.agent.handle_message(message(HQ, text))  # a duplicate is ignored
    await rig.agent.step()
    sent = bodies(rig.transport.take(), rig.key)
    replies = [b for b in sent if isinstance(b, ReplyMessage)]
    assert [(r.command_seq, r.status) for r in replies] == [
        (50, ReplyStatus.ACCEPTED),
        (51, ReplyStatus.ACCEPTED),
        (52, ReplyStatus.UNSUPPORTED),
    ]
    assert sum(isinstance(b, StatusMessage) for b in sent) == 1
    assert sum(isinstance(b, SchemaMessage) for b in sent) == 1
    assert rig.agent.status().counters["duplicates_down"] == 3


async def test_forged_and_reflected_packets_are_rejected(rig: Rig) -> None:
    other = generate_key(SITE, key_id=77)  # same id, other secret
    forged = seal_packet(AckMessage(100), key=other, seq=1).hex().upper()
    reflected = seal_packet(StatusMessage(NOW, 1, 0, 0, 0, 0), key=rig.key, seq=1).hex().upper()
    for text in (forged, reflected, "NOT HEX"):
        rig.agent.handle_message(message(HQ, text))
    assert rig.agent.status().counters["rejected_down"] == 3
    assert rig.agent.status().last_ack_at is None


async def test_a_link_down_keeps_packets_and_is_logged_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.add(TEMP, NOW - timedelta(hours=3), 20.0)
    rig.transport.down = True
    caplog.set_level(logging.INFO)
    for _ in range(3):
        await rig.agent.step()
        rig.clock.advance(10)
    assert caplog.text.count("transport down") == 1
    assert rig.agent.status().packets_in_flight == 1  # the schema, kept; nothing else packed
    rig.transport.down = False
    rig.clock.advance(100)
    await rig.agent.step()
    assert PacketType.SCHEMA in types(rig.transport.take(), rig.key)
    assert "transport back" in caplog.text


async def test_with_a_real_receiver_everything_ends_acknowledged(rig: Rig, tmp_path: Path) -> None:
    hq_transport = FakeTransport("hq")
    with SqliteSink(":memory:") as sink:
        receiver = SyncReceiver(
            keys=KeyRing({SITE: rig.key}),
            sink=sink,
            state_path=tmp_path / "receiver.sqlite3",
            transport=hq_transport,
            config=ReceiverConfig(ack_delay_s=0, ack_min_interval_s=0),
            clock=rig.clock,
        )
        try:
            for hours in range(2, 50):
                rig.add(TEMP, NOW - timedelta(hours=hours), 20.0)
                rig.add(WATER, NOW - timedelta(hours=hours), 100 - hours)
            for _ in range(10):
                await rig.agent.step()
                for _, text in rig.transport.take():
                    receiver.handle_message(message(SITE, text))
                await receiver.step()
                for peer, text in hq_transport.take():
                    assert peer == SITE
                    rig.agent.handle_message(message(HQ, text))
                rig.clock.advance(1)
            assert sink.count() == 96
            assert rig.store.queue_depth() == 0
        finally:
            receiver.close()


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    for bad in (
        {"mode": "day"},
        {"sample_grid_s": 7},
        {"max_in_flight": 100},
        {"reseal_distance": 1000},
        {"timezone": "Mars/Olympus"},
        {"retry_initial_s": 0},
    ):
        with pytest.raises(UsageError):
            AgentConfig(site=SITE, hq_peer=HQ, **bad)  # type: ignore[arg-type]
    rig = Rig(tmp_path)
    try:
        with pytest.raises(UsageError):
            rig.open(key=generate_key("other-site"))
    finally:
        rig.close()


def test_run_sync_pair_quick_configs_carry_samples_within_a_virtual_minute(tmp_path: Path) -> None:

    async def scenario() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        clock = loop.wall  # type: ignore[attr-defined]
        with Store.open(tmp_path / "weshd.sqlite3", clock=clock) as store:
            start = clock().replace(second=0, microsecond=0)
            store.add_samples(
                [make_sample(TEMP, start - timedelta(minutes=m), 20.0 + m / 10) for m in range(10)]
            )
            with SqliteSink(tmp_path / "sink.sqlite3") as sink:
                async with run_sync_pair(
                    queue=store,
                    site=SITE,
                    schema=SCHEMA,
                    sink=sink,
                    state_dir=tmp_path,
                    clock=clock,
                ) as pair:
                    await asyncio.sleep(60)
                    stats = pair.stats()
                return sink.count(), store.queue_depth(), stats.texts_up

    count, depth, texts_up = run_virtual(scenario)
    assert (count, depth) == (10, 0)
    assert texts_up >= 3  # schema, status, data


def test_cli_keygen_and_status(tmp_path: Path) -> None:

    runner = CliRunner()
    result = runner.invoke(cli, ["sync", "keygen", SITE, "--dir", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    assert "site-a.key" in result.output
    assert oct((tmp_path / "keys" / "site-a.key").stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(cli, ["sync", "keygen", SITE, "--dir", str(tmp_path / "keys")])
    assert isinstance(again.exception, UsageError)
    rig = Rig(tmp_path)
    try:
        rig.add(TEMP, NOW - timedelta(hours=3), 20.0)
        rig.add(TEMP, NOW + timedelta(minutes=1), 20.0)
        asyncio.run(rig.agent.step())
    finally:
        rig.close()
    result = runner.invoke(
        cli, ["sync", "status", "--agent-state", str(tmp_path / "agent.sqlite3"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["agent"]["site"] == SITE
    assert report["agent"]["open_hours"] == 1
    assert report["agent"]["items_waiting"] == 1  # the schema is not acknowledged yet
    assert report["agent"]["packets_in_flight"] == 2
    text = runner.invoke(cli, ["sync", "status", "--agent-state", str(tmp_path / "agent.sqlite3")])
    assert "Site site-a (agent)" in text.output
    assert "1 hour(s) still open" in text.output
    missing = runner.invoke(cli, ["sync", "status"])
    assert isinstance(missing.exception, UsageError)


async def test_the_first_resend_of_a_long_packet_is_a_one_fragment_probe(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_in_flight=1)
    noise = random.Random(2)
    try:
        for hours in range(2, 30):
            for n in range(6):
                channel = SchemaChannel("dw-2", f"temp.{n}", "gauge", "°C", 0.1)
                rig.add(channel, NOW - timedelta(hours=hours), noise.randrange(-300, 300) / 10)
        await rig.agent.step()
        rig.transport.take()
        rig.ack(2)
        await rig.agent.step()
        texts = rig.transport.take()
        assert len(texts) >= 3
        rig.clock.advance(100)
        await rig.agent.step()
        assert rig.transport.take() == [texts[-1]]  # HQ will say what it lacks
        rig.clock.advance(200)
        await rig.agent.step()
        assert rig.transport.take() == texts  # no answer: the whole packet
        assert rig.agent.status().counters["probes"] == 1
    finally:
        rig.close()


async def test_a_channel_dropped_from_the_configuration_still_delivers_what_waits(
    rig: Rig,
) -> None:
    rig.add(WATER, NOW - timedelta(hours=3), 42)
    await rig.agent.step()
    rig.ack(2)
    rig.transport.take()
    agent = rig.reopen(schema=Schema([TEMP]))  # weshd's configuration lost the channel
    await agent.step()
    await agent.step()
    sent = bodies(rig.transport.take(), rig.key)
    assert not any(isinstance(b, SchemaMessage) for b in sent)  # the same schema as before
    (data,) = [b for b in sent if isinstance(b, DataMessage)]
    block = decode_block(data, SCHEMA)
    assert [(r.channel.path, r.value) for r in iter_readings(block, SCHEMA)] == [
        ("impulsion.1.index", 42)
    ]
