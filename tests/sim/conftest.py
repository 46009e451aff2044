"""Fixtures of the simulator tests: a small farm on free loopback ports, frozen in time."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from wesh.sim.clock import ManualClock
from wesh.sim.farm import SimFarm, run_simulators

START = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", "wes")
USER = basic("user", "wes")


class FakeMonotonic:
    """A real-time source the tests move by hand (reboot downtime)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def farm(clock: ManualClock, monotonic: FakeMonotonic) -> AsyncIterator[SimFarm]:
    async with run_simulators(
        3, base_port=0, seed=5, clock=clock, firmware="mixed", monotonic=monotonic
    ) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
