"""weshd's run-time endpoints against a real Gateway polling simulated boxes.

``/boxes/{box}/interval`` (GET, PUT) changes a box's poll interval until restart (a
reload keeps it unless the box's configuration changed); ``/boxes/{box}/clock`` (GET,
POST) shows the box's clock and answers 501 because a WES cannot have its clock set
over HTTP — unless a driver offers ``set_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.client._api_server import StateStub, short_dir
from tests.gateway._weshd import box_toml, config_toml, short_tmp, wait_until
from wesh.client import AsyncWeshClient
from wesh.errors import UsageError
from wesh.gateway.api import create_app, serve_api
from wesh.gateway.config import BoxConfig
from wesh.gateway.daemon import Gateway
from wesh.gateway.drivers import Driver, make_driver
from wesh.gateway.store import Store
from wesh.sim import SimFarm, run_simulators

__all__ = ["short_tmp"]

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_END = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(2, base_port=0, seed=4, speed=60, ftp=False, m2m=False) as farm:
        yield farm


def polls_of(gateway: Gateway, box: str) -> list[datetime]:
    return sorted({s.at for s in gateway.store.history(f"{box}/temp.1", since=_EPOCH, until=_END)})


def write_config(path: Path, farm: SimFarm, *, timeout_s: float = 2.0) -> None:
    boxes = [
        box_toml("dw-1", farm.boxes[0].http.port, interval_s=1.0, timeout_s=timeout_s),
        box_toml("dw-2", farm.boxes[1].http.port, interval_s=1.0),
        box_toml("dw-off", 9, extra={"enabled": False}),
    ]
    path.write_text(config_toml(path.parent / "s", boxes), encoding="utf-8")


async def start(gateway: Gateway) -> asyncio.Task[None]:
    task = asyncio.create_task(gateway.run())
    await asyncio.wait_for(gateway.ready.wait(), timeout=10)
    return task


async def stop(gateway: Gateway, task: asyncio.Task[None]) -> None:
    gateway.request_stop("test over")
    await asyncio.wait_for(task, timeout=15)


async def test_poll_interval_override_applies_and_survives_an_unchanged_reload(
    farm: SimFarm, short_tmp: Path
) -> None:
    path = short_tmp / "weshd.toml"
    write_config(path, farm)
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    try:
        async with AsyncWeshClient(socket=gateway.config.api.socket) as client:
            await wait_until(lambda: len(polls_of(gateway, "dw-1")) >= 2, what="two polls")
            found = await client.poll_interval("dw-1")
            assert (found.configured_s, found.override_s, found.effective_s) == (1.0, None, 1.0)
            found = await client.set_poll_interval("dw-1", 86_400)
            assert (found.override_s, found.effective_s, found.enabled) == (86_400, 86_400, True)
            # the box really slows down: no poll for 2.5 s (with 1 s: two or three)
            before = len(polls_of(gateway, "dw-1"))
            others = len(polls_of(gateway, "dw-2"))
            await asyncio.sleep(2.5)
            assert len(polls_of(gateway, "dw-1")) <= before + 1  # one may have been in flight
            assert len(polls_of(gateway, "dw-2")) >= others + 2  # the other box goes on
            # a reload of an unchanged file keeps the override
            assert await gateway.reload()
            assert (await client.poll_interval("dw-1")).effective_s == 86_400
            # back to the configured interval: polls resume
            found = await client.set_poll_interval("dw-1", None)
            assert (found.override_s, found.effective_s) == (None, 1.0)
            count = len(polls_of(gateway, "dw-1"))
            await wait_until(
                lambda: len(polls_of(gateway, "dw-1")) >= count + 2, what="polls again"
            )
            # an override, then a reload that changes the box: the file wins
            await client.set_poll_interval("dw-1", 30)
            write_config(path, farm, timeout_s=3.0)
            assert await gateway.reload()
            found = await client.poll_interval("dw-1")
            assert (found.override_s, found.effective_s) == (None, 1.0)
        changes = [
            e.message
            for _, e in gateway.store.events(box="dw-1", limit=100)
            if e.kind == "command" and e.data.get("kind") == "poll_interval"
        ]
        assert len(changes) == 3
        assert any("86400 s (configured 1 s)" in text for text in changes)
    finally:
        await stop(gateway, task)


async def test_poll_interval_errors(farm: SimFarm, short_tmp: Path) -> None:
    path = short_tmp / "weshd.toml"
    write_config(path, farm)
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    sock = gateway.config.api.socket
    try:
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://weshd/api/v1"
        ) as http:
            answer = await http.put("/boxes/nope/interval", json={"poll_interval_s": 10})
            assert answer.status_code == 404 and answer.json()["error"] == "unknown_box"
            answer = await http.put("/boxes/dw-off/interval", json={"poll_interval_s": 10})
            assert answer.status_code == 400 and "disabled" in answer.json()["message"]
            for bad in (0.5, 86_401, "fast"):
                answer = await http.put("/boxes/dw-1/interval", json={"poll_interval_s": bad})
                assert answer.status_code == 422, bad
            answer = await http.put("/boxes/dw-1/interval", json={"seconds": 10})
            assert answer.status_code == 422
            answer = await http.get("/boxes/dw-off/interval")
            assert answer.status_code == 200 and answer.json()["enabled"] is False
        async with AsyncWeshClient(socket=sock) as client:
            with pytest.raises(UsageError, match="unknown box"):
                await client.set_poll_interval("nope", 10)
            assert (await client.poll_interval("dw-1")).override_s is None
    finally:
        await stop(gateway, task)


async def test_a_wes_clock_cannot_be_set_and_says_so(farm: SimFarm, short_tmp: Path) -> None:
    path = short_tmp / "weshd.toml"
    write_config(path, farm)
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = await start(gateway)
    sock = gateway.config.api.socket
    try:
        await wait_until(lambda: len(polls_of(gateway, "dw-1")) >= 1, what="a poll")
        async with AsyncWeshClient(socket=sock) as client:
            found = await client.clock("dw-1")
            assert found.box == "dw-1" and found.driver == "wes" and found.settable is False
            assert found.box_time is not None and found.read_at is not None
            assert found.offset_s is not None and abs(found.offset_s) < 600
            with pytest.raises(UsageError, match="cannot have its clock set") as caught:
                await client.set_clock("dw-1")
            assert caught.value.host == "dw-1"
            with pytest.raises(UsageError, match="unknown box"):
                await client.clock("nope")
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://weshd/api/v1"
        ) as http:
            answer = await http.post("/boxes/dw-1/clock", json={"at": "2024-01-01T00:00:00Z"})
            assert answer.status_code == 501 and answer.json()["error"] == "not_supported"
            answer = await http.post("/boxes/dw-1/clock", json={"at": "2024-01-01T00:00:00"})
            assert answer.status_code == 422  # no offset
        assert not [e for _, e in gateway.store.events(limit=100) if e.data.get("kind") == "clock"]
    finally:
        await stop(gateway, task)


class _ClockDriver:
    """A real WES driver plus a ``set_clock`` (what a future driver would offer)."""

    def __init__(self, inner: Driver, seen: list[datetime]) -> None:
        self._inner = inner
        self._seen = seen

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def set_clock(self, at: datetime) -> None:
        self._seen.append(at)


async def test_a_driver_with_set_clock_is_used(farm: SimFarm, short_tmp: Path) -> None:
    path = short_tmp / "weshd.toml"
    write_config(path, farm)
    seen: list[datetime] = []

    def factory(box: BoxConfig) -> Driver:
        return _ClockDriver(make_driver(box), seen)  # type: ignore[return-value]

    gateway = Gateway.from_file(path, stats_interval_s=0, driver_factory=factory)
    task = await start(gateway)
    try:
        async with AsyncWeshClient(socket=gateway.config.api.socket) as client:
            assert (await client.clock("dw-1")).settable is True
            at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
            found = await client.set_clock("dw-1", at)
            assert found.settable is True
            await client.set_clock("dw-2")
        assert seen[0] == at
        assert abs(seen[1] - datetime.now(UTC)) < timedelta(seconds=30)
        clock_events = [
            e for _, e in gateway.store.events(limit=100) if e.data.get("kind") == "clock"
        ]
        assert [e.box for e in clock_events] == ["dw-1", "dw-2"]
    finally:
        await stop(gateway, task)


async def test_a_state_without_runtime_control_answers_501(tmp_path: Path) -> None:
    with Store.open(tmp_path / "weshd.sqlite3") as store, short_dir() as directory:
        app = create_app(StateStub(store), token=None)
        sock = directory / "api.sock"
        async with (
            serve_api(app, socket=sock, tcp=None),
            AsyncWeshClient(socket=sock) as client,
        ):
            for call in (client.poll_interval("dw-12"), client.clock("dw-12")):
                with pytest.raises(UsageError, match="no run-time control"):
                    await call
            with pytest.raises(UsageError, match="unknown box"):
                await client.poll_interval("nope")
