"""Counter resets and meter replacements travel to HQ (queued, sent as ALARMs) as warnings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gateway._weshd import box_toml, config_toml, short_tmp, wait_until
from tests.sync._fakes import NOW, Clock, FakeTransport, bodies
from wesh.gateway.channels import QUEUED_EVENT_KINDS, ChannelMapper, GatewayEvent, Sample
from wesh.gateway.config import BoxConfig
from wesh.gateway.daemon import Gateway
from wesh.gateway.store import Store
from wesh.sim import SimFarm, run_simulators
from wesh.sync.agent import AgentConfig, SyncAgent
from wesh.sync.keys import generate_key
from wesh.sync.packet import AlarmMessage
from wesh.sync.schema import Schema, SchemaChannel
from wesh.wes.readings import Reading

__all__ = ["short_tmp"]  # fixture, imported for pytest

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
BOX = "dw-012-with-a-rather-long-box-name"


def _mapper(path: str, meaning: str) -> ChannelMapper:
    config = BoxConfig.model_validate(
        {
            "id": BOX,
            "serves": "logement-12",
            "host": "127.0.0.1",
            "channels": [{"path": path, "meaning": meaning}],
        }
    )
    return ChannelMapper([config])


def _poll(
    mapper: ChannelMapper, minute: int, readings: list[tuple[str, object, str | None, str]]
) -> tuple[list[Sample], list[GatewayEvent]]:
    at = T0 + minute * MINUTE
    result = mapper.process(
        BOX,
        [Reading(p, v, u, None, at, k) for p, v, u, k in readings],  # type: ignore[arg-type]
        poll_time=at,
    )
    return result.samples, result.events


def _reset_event() -> GatewayEvent:
    mapper = _mapper("impulsion.1.index", "cold_water")
    index = "impulsion.1.index"
    for minute, value in enumerate([1_234_567, 1_234_570]):
        _poll(mapper, minute, [(index, value, "L", "index")])
    _, events = _poll(mapper, 2, [(index, 12, "L", "index")])
    (event,) = events
    return event


def _replaced_event() -> GatewayEvent:
    mapper = _mapper("tic.1.index.base", "electricity")
    index = "tic.1.index.base"
    _poll(
        mapper,
        0,
        [("tic.1.adco", "021528603314", None, "text"), (index, 30_123_456, "Wh", "index")],
    )
    _, events = _poll(
        mapper, 1, [("tic.1.adco", "021528603399", None, "text"), (index, 0, "Wh", "index")]
    )
    (event,) = events
    return event


def test_both_kinds_are_queued_kinds() -> None:
    assert {"counter_reset", "meter_replaced"} <= QUEUED_EVENT_KINDS


def test_messages_name_the_indexes_and_the_channel_within_what_travels() -> None:
    reset, replaced = _reset_event(), _replaced_event()
    assert (reset.kind, reset.severity) == ("counter_reset", "warning")
    assert (replaced.kind, replaced.severity) == ("meter_replaced", "warning")
    assert reset.message == (
        f"counter reset: index 1234570 -> 12 L on {BOX}/impulsion.1.index"
    )  # in full: ":g" would have written 1.23457e+06
    assert replaced.message.startswith(
        f"meter replaced: index 30123456 -> 0 Wh on {BOX}/tic.1.index.base (ADCO 021528603314"
    )
    assert "021528603399" in replaced.message
    for event in (reset, replaced):  # what travels in an ALARM: 120 bytes
        travels = event.message.encode()[:120].decode()
        assert event.channel is not None and event.channel in travels
        assert str(event.data["value"]).removesuffix(".0") in travels
    assert len(reset.message.encode()) <= 120
    assert len(replaced.message.encode()) > 120  # a long box name: only the ADCO is clipped


def test_the_store_queues_them_though_they_are_warnings(tmp_path: Path) -> None:
    with Store.open(tmp_path / "weshd.sqlite3") as store:
        store.add_event(_reset_event())
        store.add_event(_replaced_event())
        store.add_event(
            GatewayEvent(T0, BOX, None, "box_down", "warning", "no answer")
        )  # a warning of another kind stays home
        queued = [event for _, _, event in store.pending_events()]
    assert [(e.kind, e.severity) for e in queued] == [
        ("counter_reset", "warning"),
        ("meter_replaced", "warning"),
    ]


async def test_the_sync_agent_sends_them_as_alarms(tmp_path: Path) -> None:
    clock = Clock(NOW)
    key = generate_key("site-1", key_id=7)
    transport = FakeTransport()
    store = Store.open(tmp_path / "weshd.sqlite3", clock=clock)
    water = SchemaChannel(BOX, "impulsion.1.index", "index", "L", 1)
    agent = SyncAgent(
        config=AgentConfig(site="site-1", hq_peer="hq", sms_budget_per_day=0, seed=1),
        key=key,
        queue=store,
        state_path=tmp_path / "agent.sqlite3",
        transport=transport,
        schema=Schema([water]),
        clock=clock,
    )
    try:
        reset = _reset_event()
        store.add_event(reset)
        await agent.step()
        alarms = [b for b in bodies(transport.take(), key) if isinstance(b, AlarmMessage)]
    finally:
        agent.close()
        store.close()
    assert [(a.kind, a.severity, a.box, a.channel) for a in alarms] == [
        ("counter_reset", "warning", BOX, f"{BOX}/impulsion.1.index")
    ]
    assert alarms[0].message == reset.message
    assert alarms[0].at == reset.at.replace(second=0)


# ------------------------------------------------------------------------------ weshd


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(2, base_port=0, seed=3, speed=60, ftp=False, m2m=False) as farm:
        yield farm


def _events(gateway: Gateway, box: str) -> list[GatewayEvent]:
    return [event for _, event in gateway.store.events(box=box, limit=1000)]


async def test_a_replaced_meter_in_weshd_gives_a_queued_meter_replaced(
    farm: SimFarm, short_tmp: Path
) -> None:
    path = short_tmp / "weshd.toml"
    boxes = [box_toml(f"box{i}", box.http.port, interval_s=0.2) for i, box in enumerate(farm.boxes)]
    path.write_text(config_toml(short_tmp / "state", boxes))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        await wait_until(
            lambda: len(gateway.store.latest(box="box1")) > 0, what="a first poll of box1"
        )
        farm.boxes[1].set_fault("replace")
        await wait_until(
            lambda: any(e.kind == "meter_replaced" for e in _events(gateway, "box1")),
            what="the replacement seen",
        )
        replaced = [e for e in _events(gateway, "box1") if e.kind == "meter_replaced"]
        queued = [e for _, _, e in gateway.store.pending_events(after_seq=0, limit=1000)]
    finally:
        gateway.request_stop("test over")
        await asyncio.wait_for(task, timeout=15)
    assert all(e.severity == "warning" for e in replaced)
    assert all(e.channel and e.channel.startswith("box1/tic.1.index.") for e in replaced)
    assert [e for e in queued if e.kind == "meter_replaced"] == replaced
    for event in replaced:
        assert event.data["value"] < event.data["previous"]  # type: ignore[operator]
        assert f"-> {event.data['value']:.15g} Wh on {event.channel}" in event.message
