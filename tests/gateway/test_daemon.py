"""The Gateway in-process against simulated WES boxes on loopback (wesh.sim), with faults."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gateway._weshd import box_toml, config_toml, free_port, short_tmp, wait_until
from tests.gateway.test_mqtt import Broker, Seen, _collect, broker
from wesh.client import AsyncWeshClient
from wesh.errors import ConfigError, UsageError
from wesh.gateway.channels import GatewayEvent
from wesh.gateway.daemon import Gateway, SystemdNotifier, lag_summary
from wesh.gateway.drivers import Command
from wesh.sim import SimFarm, run_simulators

__all__ = ["broker", "short_tmp"]  # fixtures, imported for pytest


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(6, base_port=0, seed=3, speed=60, ftp=False, m2m=False) as farm:
        yield farm


def events(gateway: Gateway, box: str | None = None) -> list[GatewayEvent]:
    return [event for _, event in gateway.store.events(box=box, limit=1000)]


def kinds(gateway: Gateway, box: str | None = None) -> list[str]:
    return [event.kind for event in events(gateway, box)]


def polls_of(gateway: Gateway, box: str) -> int:
    return len({s.at for s in gateway.store.history(f"{box}/temp.1", since=_EPOCH, until=_END)})


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_END = datetime(2100, 1, 1, tzinfo=UTC)


async def start(gateway: Gateway) -> asyncio.Task[None]:
    task = asyncio.create_task(gateway.run())
    ready = asyncio.create_task(gateway.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
    assert ready in done, "the gateway did not become ready"
    return task


async def stop(gateway: Gateway, task: asyncio.Task[None]) -> None:
    gateway.request_stop("test over")
    await asyncio.wait_for(task, timeout=15)


async def test_polls_simulated_boxes_through_every_fault(farm: SimFarm, short_tmp: Path) -> None:
    ports = [box.http.port for box in farm.boxes]
    ports[1] = free_port()  # dead: nothing listens there
    farm.boxes[2].set_fault("latency=3")  # slower than its timeout
    farm.boxes[4].set_fault("skew=2h")
    farm.boxes[5].set_fault("malformed")
    boxes = [
        box_toml(f"box{i}", port, timeout_s=1.0 if i == 2 else 2.0) for i, port in enumerate(ports)
    ]
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp / "state", boxes))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        await wait_until(lambda: polls_of(gateway, "box3") >= 2, what="box3 polled twice")
        farm.boxes[3].set_fault("reset=1")  # cold water counter restarts from 0
        await wait_until(
            lambda: (
                "counter_reset" in kinds(gateway, "box3")
                and "box_down" in kinds(gateway, "box1")
                and "box_down" in kinds(gateway, "box2")
                and "box_down" in kinds(gateway, "box5")
                and "clock_skew" in kinds(gateway, "box4")
            ),
            what="one event per fault",
        )
        status = gateway.status()
        # the healthy box kept its schedule while the others failed
        assert status["box0"].up is True
        assert status["box0"].last_lag_s is not None and status["box0"].last_lag_s < 0.5
        first = polls_of(gateway, "box0")
        await wait_until(lambda: polls_of(gateway, "box0") >= first + 4, what="box0 going on")
    finally:
        await stop(gateway, task)
    # after the stop the store is closed; reopen it through a new gateway-less look
    reset = next(e for e in _stored_events(short_tmp) if e.kind == "counter_reset")
    assert reset.channel == "box3/impulsion.1.index"
    stored = _stored_events(short_tmp)
    down = {e.box: e for e in stored if e.kind == "box_down"}
    assert down["box1"].data["error"] == "ConnectionFailed"
    assert down["box2"].data["error"] == "DeviceTimeout"
    assert down["box5"].data["error"] == "DecodeError"
    skew = next(e for e in stored if e.kind == "clock_skew")
    assert skew.box == "box4" and abs(float(skew.data["skew_s"]) - 7200) < 120  # type: ignore[arg-type]
    assert stored[0].kind == "started" and stored[-1].kind == "stopped"
    assert not (short_tmp / "state" / "weshd.sock").exists()  # removed at exit


def _stored_events(root: Path) -> list[GatewayEvent]:
    from wesh.gateway.store import Store  # noqa: PLC0415

    with Store.open(root / "state" / "weshd.sqlite3") as store:
        return [event for _, event in store.events(limit=1000)]


async def test_reload_adds_removes_boxes_and_survives_a_bad_file(
    farm: SimFarm, short_tmp: Path
) -> None:
    ports = [box.http.port for box in farm.boxes]
    path = short_tmp / "weshd.toml"
    state = short_tmp / "state"
    path.write_text(config_toml(state, [box_toml("a", ports[0]), box_toml("b", ports[1])]))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        await wait_until(lambda: polls_of(gateway, "a") >= 2 and polls_of(gateway, "b") >= 1)
        before_a = polls_of(gateway, "a")
        # a broken file: logged, an event, the running configuration stays
        path.write_text(path.read_text() + "\n[[boxes]]\nid = 'c'\nport = 'eighty'\n")
        assert await gateway.reload() is False
        error = next(e for e in events(gateway) if e.kind == "config_error")
        assert "weshd.toml:" in str(error.data["where"])
        assert [b.id for b in gateway.boxes()] == ["a", "b"]
        # add c, remove b, keep a
        path.write_text(config_toml(state, [box_toml("a", ports[0]), box_toml("c", ports[2])]))
        gateway.request_reload()
        await wait_until(lambda: "config_reloaded" in kinds(gateway), what="reload")
        await wait_until(lambda: polls_of(gateway, "c") >= 2, what="new box polled")
        assert set(gateway.status()) == {"a", "c"}
        reloaded = next(e for e in events(gateway) if e.kind == "config_reloaded")
        assert reloaded.data["added"] == ["c"] and reloaded.data["removed"] == ["b"]
        assert polls_of(gateway, "a") > before_a  # box a went on polling, data kept
        assert polls_of(gateway, "b") >= 1  # b's data stays in the store
    finally:
        await stop(gateway, task)


async def test_api_and_commands_end_to_end(farm: SimFarm, short_tmp: Path) -> None:
    ports = [box.http.port for box in farm.boxes]
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp / "s", [box_toml("dw-1", ports[1])]))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        sock = gateway.config.api.socket
        async with AsyncWeshClient(socket=sock) as client:
            await wait_until(lambda: polls_of(gateway, "dw-1") >= 1)
            boxes = await client.boxes()
            assert [b.id for b in boxes] == ["dw-1"] and boxes[0].status is not None
            assert boxes[0].status.up is True
            value = await client.value("dw-1", "impulsion.1.index")
            assert value.kind == "index" and isinstance(value.value, float | int)
            result = await client.relay("dw-1", 1, "on")
            assert result.ok
            assert farm.boxes[1].state.relays[0] is True
            health = await client.health()
            assert health.boxes_up == 1
            metrics = await client.metrics()
            assert "wesh_polls_total" in metrics and "wesh_poll_lag_seconds_bucket" in metrics
        command = next(e for e in events(gateway) if e.kind == "command")
        assert command.data == {"kind": "relay", "number": 1, "action": "on"}
        with pytest.raises(UsageError):
            await gateway.command("nope", Command("relay", 1, "on"))
    finally:
        await stop(gateway, task)


async def test_restart_detects_a_reset_that_happened_while_stopped(
    farm: SimFarm, short_tmp: Path
) -> None:
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp / "s", [box_toml("w", farm.boxes[1].http.port)]))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    await wait_until(lambda: polls_of(gateway, "w") >= 2)
    await stop(gateway, task)
    farm.boxes[1].set_fault("reset=2")  # while weshd is not running
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        await wait_until(lambda: "counter_reset" in kinds(gateway, "w"), what="reset seen")
        reset = next(e for e in events(gateway, "w") if e.kind == "counter_reset")
        assert reset.channel == "w/impulsion.2.index"
        assert kinds(gateway).count("started") == 2
    finally:
        await stop(gateway, task)


async def test_a_second_gateway_on_the_same_state_is_refused(
    farm: SimFarm, short_tmp: Path
) -> None:
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp / "s", [box_toml("w", farm.boxes[0].http.port)]))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        with pytest.raises(ConfigError):
            await Gateway.from_file(path, stats_interval_s=0).run()
    finally:
        await stop(gateway, task)


async def test_systemd_notifications(farm: SimFarm, short_tmp: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(short_tmp / "notify"))
    listener.setblocking(False)
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp / "s", [box_toml("w", farm.boxes[0].http.port)]))
    gateway = Gateway.from_file(
        path,
        stats_interval_s=0,
        notifier=SystemdNotifier(str(short_tmp / "notify")),
        watchdog_interval_s=0.05,
    )
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.append(listener.recv(4096).decode())
            except BlockingIOError:
                return received

    try:
        task = await start(gateway)
        await wait_until(lambda: drain().count("WATCHDOG=1") >= 2, what="watchdog pings")
        await gateway.reload()
        await stop(gateway, task)
        drain()
    finally:
        listener.close()
    first = [m.split("\n")[0] for m in received]
    assert first.index("READY=1") < first.index("RELOADING=1") < first.index("STOPPING=1")
    assert first.count("WATCHDOG=1") >= 2
    assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in received)


def test_notifier_without_socket_is_a_no_op() -> None:
    assert SystemdNotifier(None).notify("READY=1") is False
    assert SystemdNotifier("@/nonexistent-abstract-weshd-test").notify("READY=1") is False


def test_lag_summary() -> None:
    assert lag_summary([]) is None
    assert lag_summary([0.5]) == (0.5, 0.5, 0.5)
    p50, p99, top = lag_summary([i / 100 for i in range(101)])  # type: ignore[misc]
    assert p50 == pytest.approx(0.5) and p99 == pytest.approx(0.99) and top == 1.0


async def test_mqtt_states_and_availability_follow_the_polls(
    farm: SimFarm, short_tmp: Path, broker: Broker
) -> None:
    path = short_tmp / "weshd.toml"
    mqtt = f"[mqtt]\nenabled = true\nhost = '127.0.0.1'\nport = {broker.port}\n"
    boxes = [box_toml("live", farm.boxes[1].http.port), box_toml("dead", free_port())]
    path.write_text(config_toml(short_tmp / "s", boxes, extra=mqtt))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:

        def done(seen: dict[str, Seen]) -> bool:
            live = seen.get("wesh/test-site/live/availability")
            dead = seen.get("wesh/test-site/dead/availability")
            return (
                "wesh/test-site/live/temp.1" in seen
                and live is not None
                and live.payload == b"online"
                and dead is not None
                and dead.payload == b"offline"
            )

        seen = await _collect(broker.port, done)
    finally:
        await stop(gateway, task)
    assert seen["wesh/test-site/availability"].payload == b"online"
    assert any(topic.startswith("homeassistant/sensor/") for topic in seen)
