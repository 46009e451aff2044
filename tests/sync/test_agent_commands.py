"""HQ's commands end to end: a COMMAND from headquarters to the agent's REPLY, through weshd.

Simulated WES boxes are polled by a real weshd (the in-process Gateway, serving its API
on a Unix socket); the agent runs beside it on a queue client of its store, with its
queue calls in a worker thread; a real receiver (on a SQLite sink) stores what the agent
sends and logs its REPLYs. Commands are sealed with the site key and sent over the same
loopback network from a second HQ endpoint, numbered from 600 (above the receiver's own
ACK numbers, and within the agent's 1,024-number replay window of them), as HQ's command
sender would.

Faults: weshd away, a box down, an unknown box, a time range without data, a range from
1970, a held write lock on weshd's store, a restart between a command and its reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gateway._weshd import box_toml, config_toml, free_port, short_tmp, wait_until
from tests.sync._sync_data import SITE, make_sample
from wesh.client import AsyncWeshClient
from wesh.gateway.daemon import Gateway
from wesh.gateway.store import QueueClient, Store
from wesh.sim import SimFarm, run_simulators
from wesh.sync import agent as agent_module
from wesh.sync.agent import AgentConfig, SyncAgent, _ResendAccumulator
from wesh.sync.keys import KeyRing, SiteKey, generate_key
from wesh.sync.loopback import LoopbackNetwork, LoopbackTransport
from wesh.sync.packet import (
    AnyMessage,
    IntervalTarget,
    ResendTimes,
    SetClock,
    SetInterval,
    SetRelay,
    seal_packet,
)
from wesh.sync.receiver import ReceiverConfig, SyncReceiver
from wesh.sync.schema import Schema, SchemaChannel, schema_from_config
from wesh.sync.sink import SqliteSink
from wesh.sync.transport import Message

__all__ = ["short_tmp"]

CHANNELS = """
only_configured = true
[[boxes.channels]]
path = "temp.1"
meaning = "temperature"
[[boxes.channels]]
path = "tic.1.index.base"
meaning = "electricity"
"""
_EPOCH = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(2, base_port=0, seed=9, speed=60, ftp=False, m2m=False) as farm:
        yield farm


@dataclass
class Site:
    """weshd, the agent beside it, the receiver at HQ, and HQ's command sender."""

    gateway: Gateway | None
    agent: SyncAgent
    receiver: SyncReceiver
    sink: SqliteSink
    commands: LoopbackTransport
    key: SiteKey
    queue: QueueClient | Store
    _seq: itertools.count[int]

    async def command(self, command: AnyMessage) -> int:
        """Send a COMMAND from HQ; return its sequence number."""
        seq = next(self._seq)
        packet = seal_packet(command, key=self.key, seq=seq, pad=False)
        await self.commands.send("site", packet.hex().upper())
        return seq

    def replies(self) -> dict[int, str]:
        """The REPLYs the receiver logged: ``{command seq: "STATUS detail"}``."""
        found = {}
        for _at, what, detail in self.receiver.asked(SITE, limit=1000):
            if what == "reply":
                head, _, rest = detail.partition(": ")
                found[int(head.split()[1])] = rest
        return found

    async def reply(self, seq: int, *, timeout_s: float = 8.0) -> str:
        await wait_until(lambda: seq in self.replies(), timeout_s=timeout_s, what=f"reply {seq}")
        return self.replies()[seq]

    async def ask(self, command: AnyMessage) -> str:
        return await self.reply(await self.command(command))


def _weshd_config(tmp: Path, farm: SimFarm) -> Path:
    boxes = [
        box_toml("dw-1", farm.boxes[0].http.port, interval_s=1.0) + CHANNELS,
        box_toml("dw-2", farm.boxes[1].http.port, interval_s=1.0) + CHANNELS,
        box_toml("dead", free_port(), interval_s=1.0, timeout_s=0.5) + CHANNELS,
    ]
    text = config_toml(tmp / "state", boxes).replace('id = "test-site"', f'id = "{SITE}"')
    path = tmp / "weshd.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running_site(
    tmp: Path,
    farm: SimFarm | None,
    *,
    weshd_socket: str | None = None,
    extra: Sequence[SchemaChannel] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    **config: object,
) -> AsyncIterator[Site]:
    """Start weshd (when ``farm`` is given), the agent and the receiver; stop them all."""
    key = generate_key(SITE, key_id=4242)
    network = LoopbackNetwork()
    gateway = task = None
    async with contextlib.AsyncExitStack() as stack:
        if farm is not None:
            gateway = Gateway.from_file(_weshd_config(tmp, farm), stats_interval_s=0)
            task = asyncio.create_task(gateway.run())
            await asyncio.wait_for(gateway.ready.wait(), timeout=10)

            async def stop_weshd() -> None:
                assert gateway is not None and task is not None
                gateway.request_stop("test over")
                await asyncio.wait_for(task, timeout=15)

            stack.push_async_callback(stop_weshd)
            schema = Schema([*schema_from_config(gateway.config), *extra])
            queue: QueueClient | Store = stack.enter_context(
                Store.open_queue(gateway.config.store_path)
            )
            weshd_socket = str(gateway.config.api.socket)
        else:
            schema = schema_from_config_free()
            queue = stack.enter_context(Store.open(tmp / "weshd.sqlite3"))
        settings: dict[str, object] = {
            "site": SITE,
            "hq_peer": "hq",
            "mode": "sample",
            "sample_grid_s": 1,
            "sms_budget_per_day": 0,
            "upload_interval_s": 0.0,
            "max_chars": None,
            "pad": False,
            "poll_s": 0.2,
            "retry_initial_s": 5.0,
            "weshd_socket": weshd_socket,
            "weshd_timeout_s": 5.0,
            "queue_in_thread": True,
        }
        settings.update(config)
        sync_agent = SyncAgent(
            config=AgentConfig(**settings),  # type: ignore[arg-type]
            key=key,
            queue=queue,
            state_path=tmp / "agent.sqlite3",
            transport=network.endpoint("site"),
            schema=schema,
            clock=clock,
        )
        stack.callback(sync_agent.close)
        sink = stack.enter_context(SqliteSink(tmp / "sink.sqlite3"))
        receiver = SyncReceiver(
            keys=KeyRing({SITE: key}),
            sink=sink,
            state_path=tmp / "receiver.sqlite3",
            transport=network.endpoint("hq"),
            config=ReceiverConfig(ack_delay_s=0.1, ack_min_interval_s=0.1, max_chars=None),
        )
        stack.callback(receiver.close)
        tasks = [asyncio.create_task(sync_agent.run()), asyncio.create_task(receiver.run())]

        async def stop_tasks() -> None:
            sync_agent.stop()
            receiver.stop()
            await asyncio.gather(*tasks)

        stack.push_async_callback(stop_tasks)
        yield Site(
            gateway,
            sync_agent,
            receiver,
            sink,
            network.endpoint("hq-commands"),
            key,
            queue,
            itertools.count(600),
        )


def schema_from_config_free() -> Schema:
    return Schema([SchemaChannel("dw-1", "temp.1", "gauge", "°C", 0.1)])


def numeric_slots(gateway: Gateway, channel: SchemaChannel, start: datetime, end: datetime) -> int:
    """Distinct one-second slots with a numeric value in weshd's history."""
    return len(
        {
            int(s.at.timestamp())
            for s in gateway.store.history(
                f"{channel.box}/{channel.path}", since=start, until=end, limit=100_000
            )
            if isinstance(s.value, int | float) and not isinstance(s.value, bool)
        }
    )


# ----------------------------------------------------------------------------- the commands


async def test_set_relay_through_weshd(farm: SimFarm, short_tmp: Path) -> None:
    async with running_site(short_tmp, farm) as site:
        assert farm.boxes[0].state.relays[0] is False
        assert await site.ask(SetRelay("dw-1", "relais.1", on=True)) == "OK dw-1 relais.1 on"
        assert farm.boxes[0].state.relays[0] is True
        assert await site.ask(SetRelay("dw-1", "relais.1", on=False)) == "OK dw-1 relais.1 off"
        assert farm.boxes[0].state.relays[0] is False
        # faults: an unknown box, not a relay, no such relay, a box down
        reply = await site.ask(SetRelay("nope", "relais.1", on=True))
        assert reply.startswith("BAD_ARGUMENT") and "unknown box 'nope'" in reply
        assert (await site.ask(SetRelay("dw-1", "temp.1", on=True))).startswith("BAD_ARGUMENT")
        assert (await site.ask(SetRelay("dw-1", "relais.7", on=True))).startswith("BAD_ARGUMENT")
        reply = await site.ask(SetRelay("dead", "relais.1", on=True))
        assert reply.startswith("BUSY retry later:"), reply
        assert site.gateway is not None
        kinds = [e.data.get("kind") for _, e in site.gateway.store.events(box="dw-1", limit=50)]
        assert kinds.count("relay") == 3  # on, off, and the refused relay 7
        assert site.agent.status().counters["commands_run"] == 6


async def test_set_poll_interval_through_weshd(farm: SimFarm, short_tmp: Path) -> None:
    async with (
        running_site(short_tmp, farm) as site,
        AsyncWeshClient(socket=site.agent.config.weshd_socket) as client,
    ):
        reply = await site.ask(SetInterval(IntervalTarget.POLL, 300, "dw-1"))
        assert reply == "OK dw-1: every 300 s until restart"
        assert (await client.poll_interval("dw-1")).effective_s == 300
        assert (await client.poll_interval("dw-2")).effective_s == 1.0
        reply = await site.ask(SetInterval(IntervalTarget.POLL, 120))  # every enabled box
        assert reply == "OK 3 box(es): every 120 s until restart"
        for box in ("dw-1", "dw-2", "dead"):
            assert (await client.poll_interval(box)).effective_s == 120
        # back to the configured interval: set it
        await site.ask(SetInterval(IntervalTarget.POLL, 1, "dw-2"))
        assert (await client.poll_interval("dw-2")).override_s is None
        reply = await site.ask(SetInterval(IntervalTarget.POLL, 7 * 86_400, "dw-1"))
        assert reply == "BAD_ARGUMENT poll interval above 86400 s"
        reply = await site.ask(SetInterval(IntervalTarget.POLL, 60, "nope"))
        assert reply.startswith("BAD_ARGUMENT") and "unknown box" in reply
        # the agent's own intervals are still answered at once
        assert await site.ask(SetInterval(IntervalTarget.STATUS, 600)) == "OK"


async def test_set_clock_is_refused_clearly(farm: SimFarm, short_tmp: Path) -> None:
    async with running_site(short_tmp, farm) as site:
        assert site.gateway is not None
        await wait_until(
            lambda: bool(site.gateway and site.gateway.store.latest(box="dw-1")), what="a poll"
        )
        now = datetime.now(UTC).replace(microsecond=0)
        reply = await site.ask(SetClock(now, "dw-1"))
        assert reply.startswith("UNSUPPORTED dw-1 (wes): not settable; box "), reply
        reply = await site.ask(SetClock(now))  # the gateway's own clock
        assert reply.startswith("UNSUPPORTED gateway clock: NTP;")
        reply = await site.ask(SetClock(now - timedelta(hours=2), "dw-1"))
        assert reply.startswith("STALE HQ's time is +7")
        reply = await site.ask(SetClock(now, "nope"))
        assert reply.startswith("BAD_ARGUMENT") and "unknown box" in reply


async def test_resend_times_sends_history_again_and_hq_keeps_one_copy(
    farm: SimFarm, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_module, "_RESEND_PAGE", 3)  # many pages and transactions
    monkeypatch.setattr(agent_module, "_RESEND_TX", 2)
    gone = SchemaChannel("gone", "temp.1", "gauge", "°C", 0.1)  # a box weshd no longer has
    async with running_site(short_tmp, farm, extra=[gone]) as site:
        gateway = site.gateway
        assert gateway is not None
        start = datetime.now(UTC).replace(microsecond=0)
        await wait_until(lambda: site.sink.count() >= 12, what="readings at HQ")
        # freeze polling (itself a command), then let everything reach HQ
        await site.ask(SetInterval(IntervalTarget.POLL, 86_400))
        await asyncio.sleep(0.5)  # a poll in flight lands
        await wait_until(
            lambda: site.queue.queue_depth() == 0 and site.agent.status().items_in_flight == 0,
            what="the queue drained",
        )
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        schema = schema_from_config(gateway.config)
        expected = sum(numeric_slots(gateway, c, start, end) for c in schema)
        assert expected >= 12
        count_before = site.sink.count()
        ledger = site.receiver.ledger(SITE)
        assert ledger is not None
        duplicates_before = ledger.readings_duplicate
        reply = await site.ask(ResendTimes(start, end))
        assert reply == f"OK {expected} reading(s) queued, 1 channel(s) unknown"

        def resent() -> int:
            found = site.receiver.ledger(SITE)
            return 0 if found is None else found.readings_duplicate - duplicates_before

        await wait_until(lambda: resent() >= expected, what="the re-sent readings")
        assert resent() == expected
        assert site.sink.count() == count_before  # idempotent at HQ: nothing new
        assert site.agent.status().counters["readings_resent"] == expected
        await wait_until(  # HQ's ACK reached the agent: nothing of the range waits any more
            lambda: site.agent.status().items_in_flight == 0, what="the resend acknowledged"
        )
        # a range without data, and a range from 1970 to now (everything again)
        assert await site.ask(ResendTimes(datetime(2020, 1, 1, tzinfo=UTC), start)) == (
            "OK 0 reading(s) queued, 1 channel(s) unknown"
        )
        reply = await site.ask(ResendTimes(_EPOCH, end))
        assert reply.startswith("OK ") and int(reply.split()[1]) >= expected
        await wait_until(lambda: resent() >= 2 * expected, what="the second resend")
        assert site.sink.count() == count_before


async def test_resend_times_in_hour_mode_sends_the_hours_again(
    farm: SimFarm, short_tmp: Path
) -> None:
    def later() -> datetime:  # the agent lives two hours ahead: today's hours are closed
        return datetime.now(UTC) + timedelta(hours=2)

    async with running_site(short_tmp, farm, mode="hour", clock=later) as site:
        gateway = site.gateway
        assert gateway is not None
        await wait_until(lambda: site.sink.count() >= 4, what="hourly readings at HQ")
        await site.ask(SetInterval(IntervalTarget.POLL, 86_400))
        await asyncio.sleep(0.5)
        await wait_until(
            lambda: site.queue.queue_depth() == 0 and site.agent.status().items_in_flight == 0,
            what="the queue drained",
        )
        now = datetime.now(UTC)
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        end = start + timedelta(hours=3)
        hours = {
            (c.path, c.box, s.at.replace(minute=0, second=0, microsecond=0))
            for c in schema_from_config(gateway.config)
            for s in gateway.store.history(f"{c.box}/{c.path}", since=start, until=end)
            if isinstance(s.value, int | float) and not isinstance(s.value, bool)
        }
        assert len(hours) >= 3
        ledger = site.receiver.ledger(SITE)
        assert ledger is not None
        duplicates_before, count_before = ledger.readings_duplicate, site.sink.count()
        assert await site.ask(ResendTimes(start, end)) == f"OK {len(hours)} reading(s) queued"

        def resent() -> int:
            found = site.receiver.ledger(SITE)
            return 0 if found is None else found.readings_duplicate - duplicates_before

        await wait_until(lambda: resent() >= len(hours), what="the re-sent hours")
        assert resent() == len(hours)
        assert site.sink.count() == count_before
        aggregates = {r.aggregate for r in site.sink.readings()}
        assert {"hour_mean", "hour_last"} <= aggregates


async def test_weshd_away_is_a_retryable_failure(short_tmp: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with running_site(short_tmp, None, weshd_socket=str(short_tmp / "none.sock")) as site:
        for command in (
            SetRelay("dw-1", "relais.1", on=True),
            SetInterval(IntervalTarget.POLL, 60, "dw-1"),
            SetClock(now, "dw-1"),
            ResendTimes(now - timedelta(hours=1), now),
        ):
            reply = await site.ask(command)
            assert reply.startswith("BUSY retry later: no weshd socket at"), reply
        assert site.agent.status().counters["commands_run"] == 4


async def test_without_a_weshd_address_the_commands_are_unsupported(short_tmp: Path) -> None:
    async with running_site(short_tmp, None, weshd_socket=None) as site:
        reply = await site.ask(SetRelay("dw-1", "relais.1", on=True))
        assert reply == "UNSUPPORTED no weshd API configured"


# ----------------------------------------------------------------------------- by hand


class _Transport:
    """Records what the agent sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, peer: str, text: str) -> None:
        self.sent.append(text)

    async def messages(self) -> AsyncIterator[Message]:
        await asyncio.Event().wait()
        yield  # type: ignore[misc]

    async def aclose(self) -> None:
        return None


def _replies(sent: list[str], key: SiteKey) -> list[tuple[int, str, str]]:
    from wesh.sync.crypto import Direction  # noqa: PLC0415
    from wesh.sync.packet import ReplyMessage, open_packet  # noqa: PLC0415

    found = []
    for text in sent:
        opened = open_packet(bytes.fromhex(text), keys=KeyRing({SITE: key}), direction=Direction.UP)
        if isinstance(opened.message, ReplyMessage):
            body = opened.message
            found.append((body.command_seq, body.status.name, body.detail))
    return found


async def test_a_command_interrupted_by_a_restart_is_answered_failed(tmp_path: Path) -> None:
    key = generate_key(SITE, key_id=4243)
    config = AgentConfig(
        site=SITE,
        hq_peer="hq",
        sms_budget_per_day=0,
        max_chars=None,
        pad=False,
        weshd_socket=str(tmp_path / "none.sock"),
    )
    transport = _Transport()
    with Store.open(tmp_path / "weshd.sqlite3") as store:

        def make() -> SyncAgent:
            return SyncAgent(
                config=config,
                key=key,
                queue=store,
                state_path=tmp_path / "agent.sqlite3",
                transport=transport,  # type: ignore[arg-type]
                schema=schema_from_config_free(),
            )

        first = make()
        packet = seal_packet(SetRelay("dw-1", "relais.1", on=True), key=key, seq=7, pad=False)
        first.handle_message(Message("hq", packet.hex().upper(), datetime.now(UTC)))
        first.close()  # before the worker ran it
        second = make()
        try:
            await second.step()
            assert (7, "FAILED", "interrupted by a restart; send it again") in _replies(
                transport.sent, key
            )
            assert await second.run_commands() == 0  # not run again
            # the same packet again is a replay: ignored
            second.handle_message(Message("hq", packet.hex().upper(), datetime.now(UTC)))
            assert await second.run_commands() == 0
            # a new command runs exactly once (weshd is away here: answered BUSY, not run again)
            other = seal_packet(SetRelay("dw-1", "relais.1", on=False), key=key, seq=8, pad=False)
            second.handle_message(Message("hq", other.hex().upper(), datetime.now(UTC)))
            assert await second.run_commands() == 1
            assert await second.run_commands() == 0
            await second.step()
            assert next(r for r in _replies(transport.sent, key) if r[0] == 8)[1] == "BUSY"
        finally:
            second.close()


async def test_an_acknowledgement_waiting_for_weshd_does_not_block_the_loop(
    tmp_path: Path,
) -> None:
    temp = SchemaChannel("dw-1", "temp.1", "gauge", "°C", 0.1)
    key = generate_key(SITE, key_id=4244)
    blocked: dict[bool, tuple[float, int]] = {}
    for in_thread in (True, False):
        path = tmp_path / f"weshd-{in_thread}.sqlite3"
        with Store.open(path) as store:
            start = datetime.now(UTC) - timedelta(hours=3)
            samples = [make_sample(temp, start + timedelta(minutes=m), 20.0) for m in range(5)]
            store.add_samples(samples)
        with (
            Store.open_queue(path, busy_timeout_s=0.4, ack_attempts=2, ack_backoff_s=0.05) as queue,
            contextlib.closing(sqlite3.connect(path, timeout=5)) as holder,
        ):
            agent = SyncAgent(
                config=AgentConfig(
                    site=SITE,
                    hq_peer="hq",
                    mode="sample",
                    sms_budget_per_day=0,
                    max_chars=None,
                    pad=False,
                    queue_in_thread=in_thread,
                ),
                key=key,
                queue=queue,
                state_path=tmp_path / f"agent-{in_thread}.sqlite3",
                transport=_Transport(),  # type: ignore[arg-type]
                schema=schema_from_config_free(),
            )
            try:
                await agent.step()  # reads the samples into items
                # HQ "acknowledged" them: nothing holds the watermark back any more
                with agent._state.tx() as conn:
                    conn.execute("DELETE FROM items")
                holder.execute("BEGIN IMMEDIATE")  # weshd holds its write lock
                ticks = 0

                async def ticker() -> None:
                    nonlocal ticks
                    while True:
                        await asyncio.sleep(0.01)
                        ticks += 1

                beat = asyncio.create_task(ticker())
                began = time.monotonic()
                await agent.step()  # the acknowledgement waits, then gives up (retried later)
                took = time.monotonic() - began
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
                holder.execute("ROLLBACK")
                blocked[in_thread] = (took, ticks)
                assert agent.status().store_acked_upto == 0  # not acknowledged yet
                await agent.step()  # the lock is gone: now it is
                assert agent.status().store_acked_upto > 0
            finally:
                agent.close()
    took, ticks = blocked[True]
    assert took >= 0.7 and ticks >= 0.5 * took / 0.01  # the loop kept running
    took, ticks = blocked[False]
    assert took >= 0.7 and ticks <= 2  # in the loop, it stalls (the old behaviour)


# ----------------------------------------------------------------------------- pure folding


def test_the_resend_accumulator_folds_like_the_queue_reader() -> None:
    base = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    gauge = _ResendAccumulator(step_s=3600, is_index=False, hourly=True)
    index = _ResendAccumulator(step_s=3600, is_index=True, hourly=True)
    out_gauge, out_index = [], []
    for minute, value, quality in [
        (0, 10, "measured"),
        (30, 20, "estimated"),
        (59, "n/a", "measured"),  # not numeric: skipped
        (61, 40, "measured"),
        (62, True, "measured"),  # a state: skipped
    ]:
        at = base + timedelta(minutes=minute)
        for fold, out in ((gauge, out_gauge), (index, out_index)):
            item = fold.add(at, value, quality)
            if item is not None:
                out.append(item)
    out_gauge.append(gauge.flush())
    out_index.append(index.flush())
    hour = int(base.timestamp())
    assert out_gauge == [(hour, 15.0, 1), (hour + 3600, 40.0, 0)]
    assert out_index == [(hour, 20, 1), (hour + 3600, 40, 0)]
    assert gauge.flush() is None
    grid = _ResendAccumulator(step_s=60, is_index=False, hourly=False)
    assert grid.add(base, 1.5, "measured") is None
    assert grid.add(base + timedelta(seconds=30), 2.5, "suspect") is None
    assert grid.add(base + timedelta(seconds=61), float("nan"), "measured") is None
    assert grid.flush() == (hour, 2.5, 2)  # the last value of the step


def test_replace_keeps_the_weshd_token_out_of_repr() -> None:
    config = AgentConfig(site=SITE, hq_peer="hq", weshd_url="http://x", weshd_token="secret!")
    assert "secret!" not in repr(config)
    assert replace(config, weshd_token=None).weshd_token is None
    with pytest.raises(Exception, match="not both"):
        AgentConfig(site=SITE, hq_peer="hq", weshd_url="http://x", weshd_socket="/s")


# ----------------------------------------------------------------------------- CLI options


def test_the_cli_points_the_agent_at_weshds_socket(tmp_path: Path) -> None:
    from wesh.gateway.config import load_config  # noqa: PLC0415
    from wesh.sync.cli import _agent_config  # noqa: PLC0415

    path = tmp_path / "weshd.toml"
    path.write_text(config_toml(tmp_path / "state", [box_toml("dw-1", 8080)]), encoding="utf-8")
    config = load_config(path)
    options: dict[str, object] = {
        "transport": "mqtt",
        "hq_number": None,
        "mode": "hour",
        "sample_grid": 60,
        "budget": 200,
        "retry_initial": 900.0,
        "retry_max": 3600.0,
        "status_interval": 3600.0,
        "upload_interval": 0.0,
        "close_delay": 600.0,
        "weshd_socket": None,
        "weshd_url": None,
        "weshd_token": None,
    }
    made = _agent_config(config, options)
    assert made.weshd_socket == str(config.api.socket) == str(tmp_path / "state" / "weshd.sock")
    assert made.weshd_url is None and made.queue_in_thread is True
    made = _agent_config(
        config, {**options, "weshd_url": "http://127.0.0.1:8765", "weshd_token": "t"}
    )
    assert (made.weshd_socket, made.weshd_url, made.weshd_token) == (
        None,
        "http://127.0.0.1:8765",
        "t",
    )
    made = _agent_config(config, {**options, "weshd_socket": tmp_path / "other.sock"})
    assert made.weshd_socket == str(tmp_path / "other.sock")
    with pytest.raises(Exception, match="not both"):
        _agent_config(config, {**options, "weshd_socket": tmp_path / "s", "weshd_url": "http://x"})
