"""Drivers against real peers: the WES simulator on loopback, a TIC line on a pty."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wesh.errors import (
    ConfigError,
    ConnectionFailed,
    DeviceReportedError,
    DeviceTimeout,
    UsageError,
    WeshError,
)
from wesh.gateway.channels import ChannelMapper, check_path
from wesh.gateway.config import BoxConfig, GatewayConfig, load_config
from wesh.gateway.drivers import Command, Driver, PollResult, make_driver
from wesh.gateway.drivers.tic import TicSerialDriver, tic_readings
from wesh.gateway.drivers.wes import WesDriver
from wesh.sim import SimFarm, run_simulators
from wesh.tic.meter import MeterState
from wesh.tic.model import Mode
from wesh.tic.simulator import TicMeterSimulator
from wesh.wes.client import IdentityMismatch

EXAMPLE = Path(__file__).parents[2] / "contrib" / "weshd.example.toml"
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def wes_box(farm: SimFarm, index: int, **keys: Any) -> BoxConfig:
    handle = farm.boxes[index]
    assert handle.m2m is not None
    data: dict[str, Any] = {
        "id": f"box-{index}",
        "serves": "logement-01",
        "host": handle.http.host,
        "port": handle.http.port,
        "m2m_port": handle.m2m.port,
        "timeout_s": 5,
    }
    data.update(keys)
    return BoxConfig.model_validate(data)


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(count=3, base_port=0, seed=1) as running:
        yield running


@contextlib.asynccontextmanager
async def driver_of(box: BoxConfig) -> AsyncIterator[Driver]:
    driver = make_driver(box)
    try:
        yield driver
    finally:
        await driver.aclose()


# ------------------------------------------------------------------------------ the example


@contextlib.asynccontextmanager
async def example_farm(config: GatewayConfig) -> AsyncIterator[tuple[SimFarm, GatewayConfig]]:
    """`wesh sim wes --count 3 --base-port 18080 --seed 1`, in-process.

    If another process holds one of its ports right now, run the same farm on free ports
    and point the example's boxes at them (the fixed layout is checked in test_config).
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            farm = await stack.enter_async_context(run_simulators(count=3, base_port=18080, seed=1))
        except ConfigError as exc:
            if "already in use" not in str(exc):
                raise
            farm = await stack.enter_async_context(run_simulators(count=3, base_port=0, seed=1))
            boxes = []
            for index, box in enumerate(config.boxes):
                handle = farm.boxes[index]
                assert handle.m2m is not None
                update = {"port": handle.http.port, "m2m_port": handle.m2m.port}
                boxes.append(box.model_copy(update=update))
            config = config.model_copy(update={"boxes": boxes})
        yield farm, config


async def test_example_file_polls_every_configured_channel() -> None:
    config = load_config(EXAMPLE)
    async with example_farm(config) as (farm, config):
        mapper = ChannelMapper(config.boxes)
        for index, box in enumerate(config.boxes):
            async with driver_of(box) as driver:
                assert driver.box_id == box.id
                result = await driver.poll()
            assert result.identity == box.expected_mac == farm.boxes[index].state.identity.mac
            assert result.box_time is not None
            mapped = mapper.process(
                box.id, result.readings, poll_time=datetime.now(UTC), box_time=result.box_time
            )
            assert mapped.events == []
            by_path = {sample.path: sample for sample in mapped.samples}
            for channel in box.channels:
                sample = by_path.get(channel.path)
                assert sample is not None, f"{box.id}: no sample for {channel.path}"
                assert sample.label == channel.label
                assert sample.meaning == channel.meaning
                assert sample.quality == "measured"
                if channel.unit is not None:
                    assert sample.unit == channel.unit
            if box.only_configured:
                assert set(by_path) == {channel.path for channel in box.channels}
        # the gas counter counts m3 on the box; the sample is in litres
        gas = farm.boxes[0].state.counters[0]
        assert gas.config.unit == "m3"


# ------------------------------------------------------------------------------ WES driver


async def test_wes_poll_and_identity(farm: SimFarm) -> None:
    box = wes_box(farm, 1, expected_mac=farm.boxes[1].state.identity.mac, pulse_units={1: "l"})
    clock_calls = []

    def clock() -> datetime:
        clock_calls.append(1)
        return T0

    driver = WesDriver(box, clock=clock)
    try:
        result = await driver.poll()
    finally:
        await driver.aclose()
    assert isinstance(result, PollResult)
    assert clock_calls
    assert all(r.poll_time == T0 for r in result.readings)
    paths = {r.path: r for r in result.readings}
    assert paths["impulsion.1.index"].unit == "L"
    assert "tic.1.index.hchc" in paths
    assert result.identity == farm.boxes[1].state.identity.mac


async def test_wes_wrong_box_is_refused(farm: SimFarm) -> None:
    box = wes_box(farm, 1, expected_mac=farm.boxes[2].state.identity.mac)
    async with driver_of(box) as driver:
        with pytest.raises(IdentityMismatch) as info:
            await driver.poll()
    assert isinstance(info.value, DeviceReportedError)
    assert info.value.actual == farm.boxes[1].state.identity.mac


async def test_wes_commands_drive_relays_and_switches(farm: SimFarm) -> None:
    box = wes_box(farm, 1)
    handle = farm.boxes[1]
    async with driver_of(box) as driver:
        await driver.command(Command("relay", 1, "on"))
        assert handle.state.relays[0] is True
        await driver.command(Command("relay", 1, "toggle"))
        assert handle.state.relays[0] is False
        await driver.command(Command("switch", 3, "on"))
        assert handle.state.switches[2] is True
        await driver.command(Command("switch", 3, "toggle"))
        assert handle.state.switches[2] is False
        await driver.command(Command("relay", 2, "on"))
        await driver.command(Command("relay", 2, "off"))
        assert handle.state.relays[1] is False
        with pytest.raises(UsageError):
            await driver.command(Command("relay", 7, "on"))


async def test_wes_user_account_cannot_command(farm: SimFarm) -> None:
    box = wes_box(farm, 1, user="user")
    async with driver_of(box) as driver:
        await driver.poll()
        with pytest.raises(WeshError):
            await driver.command(Command("relay", 1, "on"))
    assert farm.boxes[1].state.relays[0] is False


async def test_wes_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = BoxConfig.model_validate(
        {"id": "gone", "serves": "x", "host": "127.0.0.1", "port": port, "timeout_s": 2}
    )
    async with driver_of(box) as driver:
        with pytest.raises(ConnectionFailed):
            await driver.poll()


async def test_wes_timeout_fault(farm: SimFarm) -> None:
    farm.boxes[1].set_fault("timeout")
    box = wes_box(farm, 1, timeout_s=0.5)
    async with driver_of(box) as driver:
        with pytest.raises(DeviceTimeout):
            await driver.poll()


def test_command_validation() -> None:
    with pytest.raises(UsageError):
        Command("relay", 0, "on")
    with pytest.raises(UsageError):
        Command("valve", 1, "on")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Command("relay", 1, "blink")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Command("relay", True, "on")


def test_make_driver_dispatches_on_the_driver_key() -> None:
    wes = BoxConfig.model_validate({"id": "a", "serves": "s", "host": "127.0.0.1"})
    tic = BoxConfig.model_validate(
        {"id": "b", "driver": "tic", "serves": "s", "device": "/dev/null-tic"}
    )
    assert isinstance(make_driver(wes), WesDriver)
    tic_driver = make_driver(tic)
    assert isinstance(tic_driver, TicSerialDriver)
    assert isinstance(tic_driver, Driver)
    bogus = wes.model_copy(update={"driver": "modbus"})
    with pytest.raises(ConfigError, match="unknown driver 'modbus'"):
        make_driver(bogus)
    with pytest.raises(ConfigError):
        make_driver(wes.model_copy(update={"driver": "base"}))


# ------------------------------------------------------------------------------ TIC driver


def frames(sim: TicMeterSimulator, count: int) -> bytes:
    return b"".join(timed.data for timed in sim.frames(count=count))


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tic_box(device: str, **keys: Any) -> BoxConfig:
    data: dict[str, Any] = {
        "id": "tic-1",
        "driver": "tic",
        "serves": "logement-01",
        "device": device,
        "mode": "historique",
        "timeout_s": 5,
        "stale_after_s": 30,
    }
    data.update(keys)
    return BoxConfig.model_validate(data)


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait for the reader thread to get somewhere (not for time: bounded at 10 s)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the reader thread did not get there within 10 s")


async def wait_for_frames(driver: TicSerialDriver, count: int) -> None:
    await wait_until(lambda: driver.frames_received >= count)


async def test_tic_driver_reads_a_pty(pty: tuple[int, str]) -> None:
    master, device = pty
    sim = TicMeterSimulator(start=T0, seed=3, tariff="HC")
    monotonic = FakeMonotonic()
    driver = TicSerialDriver(tic_box(device), clock=lambda: T0, monotonic=monotonic)
    try:
        driver.start()
        await wait_until(lambda: driver.connected)  # opening flushes what was written before
        os.write(master, frames(sim, 3))
        result = await driver.poll()
        await wait_for_frames(driver, 2)
        result = await driver.poll()
        paths = {r.path: r for r in result.readings}
        assert result.identity == sim.identity
        assert paths["tic.1.adco"].value == sim.identity
        assert paths["tic.1.index.hchc"].value == sim.indexes_wh["HCHC"]
        assert paths["tic.1.index.hchp"].value == sim.indexes_wh["HCHP"]
        assert paths["tic.1.index.hchc"].unit == "Wh"
        assert paths["tic.1.index.hchc"].kind == "index"
        assert paths["tic.1.power_va"].unit == "VA"
        assert paths["tic.1.optarif"].value == "HC"
        assert paths["tic.1.period_code"].value in {"HC", "HP"}
        assert all(r.poll_time == T0 for r in result.readings)
        assert all(check_path(path) is None for path in paths)
        with pytest.raises(UsageError):
            await driver.command(Command("relay", 1, "on"))

        monotonic.now += 31  # no frame for longer than stale_after_s
        with pytest.raises(DeviceTimeout, match="no valid TIC frame for 31 s"):
            await driver.poll()
        received = driver.frames_received
        os.write(master, frames(sim, 1))
        await wait_for_frames(driver, received + 1)
        assert (await driver.poll()).identity == sim.identity
    finally:
        await driver.aclose()
    assert driver._thread is not None
    assert not driver._thread.is_alive()
    with pytest.raises(UsageError, match="closed"):
        await driver.poll()


async def test_tic_driver_first_poll_without_frames_times_out(pty: tuple[int, str]) -> None:
    _, device = pty
    driver = TicSerialDriver(tic_box(device, timeout_s=0.3))
    try:
        with pytest.raises(DeviceTimeout, match="no valid TIC frame received yet"):
            await driver.poll()
    finally:
        await driver.aclose()


async def test_tic_driver_missing_port(tmp_path: Path) -> None:
    driver = TicSerialDriver(tic_box(str(tmp_path / "ttyUSB9"), timeout_s=0.5))
    try:
        with pytest.raises(ConnectionFailed, match="TIC port unusable"):
            await driver.poll()
    finally:
        await driver.aclose()


async def test_tic_driver_aclose_without_poll_is_harmless() -> None:
    driver = TicSerialDriver(tic_box("/dev/null-tic"))
    await driver.aclose()
    await driver.aclose()


@pytest.mark.parametrize(
    ("mode", "tariff", "phases", "producer"),
    [
        (Mode.HISTORIQUE, "BASE", 1, False),
        (Mode.HISTORIQUE, "HC", 1, False),
        (Mode.HISTORIQUE, "TEMPO", 1, False),
        (Mode.HISTORIQUE, "BASE", 3, False),
        (Mode.STANDARD, "HC", 1, False),
        (Mode.STANDARD, "BASE", 3, True),
    ],
)
def test_tic_readings_follow_the_wes_grammar(
    mode: Mode, tariff: str, phases: int, producer: bool
) -> None:
    sim = TicMeterSimulator(
        start=T0, seed=5, mode=mode, tariff=tariff, phases=phases, producer=producer
    )
    state = MeterState()
    for timed in sim.frames(count=4):
        reading = state.update(timed.frame)
    readings = tic_readings(reading, poll_time=T0)
    paths = {r.path: r for r in readings}
    bad = [path for path in paths if check_path(path) is not None]
    assert not bad
    assert paths["tic.1.available"].value is True
    assert paths["tic.1.adco"].value == sim.identity
    indexes = {p for p, r in paths.items() if r.kind == "index"}
    assert indexes
    assert all(paths[p].unit == "Wh" for p in indexes)
    if phases == 3 and mode is Mode.HISTORIQUE:
        assert {"tic.1.current.1", "tic.1.current.2", "tic.1.current.3"} <= set(paths)
        assert {"tic.1.imax.1", "tic.1.imax.2", "tic.1.imax.3"} <= set(paths)
    if mode is Mode.STANDARD:
        assert "tic.1.index.east" in paths
        assert paths["tic.1.index.east"].value == sim.total_index_wh
        assert paths["tic.1.power_va"].box_time is not None
        assert abs(paths["tic.1.power_va"].box_time - sim.now) < timedelta(minutes=1)
        if producer:
            assert paths["tic.1.index.injection"].value == sim.injected_wh
            assert "tic.1.injected_power_va" in paths
    else:
        assert paths["tic.1.power_va"].box_time is None
        assert "tic.1.isousc" in paths


async def test_tic_and_wes_paths_agree_for_a_dwelling(farm: SimFarm) -> None:
    """A dwelling's HC meter read by a WES or on a serial port: same paths."""
    async with driver_of(wes_box(farm, 1)) as driver:
        result = await driver.poll()
    wes_paths = {r.path for r in result.readings if r.path.startswith("tic.1.")}
    sim = TicMeterSimulator(start=T0, seed=3, tariff="HC")
    state = MeterState()
    for timed in sim.frames(count=2):
        reading = state.update(timed.frame)
    serial_paths = {r.path for r in tic_readings(reading, poll_time=T0)}
    common = {
        "tic.1.available",
        "tic.1.index.hchc",
        "tic.1.index.hchp",
        "tic.1.power_va",
        "tic.1.current.1",
        "tic.1.imax.1",
        "tic.1.isousc",
        "tic.1.period",
        "tic.1.period_code",
        "tic.1.adco",
        "tic.1.optarif",
    }
    assert common <= wes_paths
    assert common <= serial_paths
