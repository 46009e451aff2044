"""State faults as weshd sees them: a night leak on the cold water, a frost probe, a dead box."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gateway._weshd import box_toml, config_toml, short_tmp, wait_until
from wesh.errors import ConnectionFailed
from wesh.gateway.config import BoxConfig
from wesh.gateway.daemon import Gateway
from wesh.gateway.drivers import make_driver
from wesh.sim.clock import PARIS, ManualClock
from wesh.sim.farm import run_simulators

__all__ = ["short_tmp"]  # fixture, imported for pytest

NIGHT = datetime(2025, 1, 15, 0, 30, tzinfo=PARIS)  # nobody draws water before 06:00
_SINCE, _UNTIL = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def _values(gateway: Gateway, channel: str) -> list[float]:
    history = gateway.store.history(channel, since=_SINCE, until=_UNTIL)
    return [float(s.value) for s in history if isinstance(s.value, int | float)]


async def test_a_night_leak_and_a_frost_probe_reach_weshd(short_tmp: Path) -> None:
    clock = ManualClock(NIGHT)
    async with run_simulators(2, base_port=0, seed=3, clock=clock, ftp=False, m2m=False) as farm:
        box = farm.boxes[1]  # a dwelling: counter 1 cold water (1 pulse = 1 l), SONDE1 °C
        path = short_tmp / "weshd.toml"
        path.write_text(
            config_toml(short_tmp / "state", [box_toml("flat", box.http.port, interval_s=0.2)])
        )
        gateway = Gateway.from_file(path, stats_interval_s=0)
        task = asyncio.create_task(gateway.run())
        water = "flat/impulsion.1.index"

        async def index_after_an_hour() -> float:
            clock.advance(3600)
            seen = len(_values(gateway, water))
            await wait_until(lambda: len(_values(gateway, water)) >= seen + 2, what="polls")
            return _values(gateway, water)[-1]

        try:
            await asyncio.wait_for(gateway.ready.wait(), 10)
            await wait_until(lambda: bool(_values(gateway, water)), what="a first poll")
            start = _values(gateway, water)[-1]
            assert await index_after_an_hour() == start  # a quiet night, no leak yet
            box.set_fault("leak=60")
            box.set_fault("temp=8")
            first = await index_after_an_hour()
            second = await index_after_an_hour()
            assert (first - start, second - first) == (60, 60)  # exactly, at night
            await wait_until(lambda: _values(gateway, "flat/temp.1")[-1] == 8.0, what="frost")
            box.clear_faults("leak")
            assert await index_after_an_hour() == second
        finally:
            gateway.request_stop("test over")
            await asyncio.wait_for(task, timeout=15)


async def test_a_dead_box_fails_at_once_with_connection_failed() -> None:
    async with run_simulators(1, base_port=0, seed=3, ftp=False, m2m=False) as farm:
        box = farm.boxes[0]
        config = BoxConfig.model_validate(
            {"id": "pc", "serves": "parties-communes", "host": box.http.host, "port": box.http.port}
        )
        driver = make_driver(config)
        try:
            assert (await driver.poll()).readings
            box.set_fault("dead")
            with pytest.raises(ConnectionFailed):
                await asyncio.wait_for(driver.poll(), 5)
            box.clear_faults("dead")
            assert (await driver.poll()).readings
        finally:
            await driver.aclose()
