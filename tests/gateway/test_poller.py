"""Poller unit tests: schedule, jitter, concurrency, backoff, edges, isolation, batching.

Everything runs on a virtual-time event loop (``_vtime``): an hour of polling takes
milliseconds and every instant is exact. Drivers are small fakes at the driver seam.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway._vtime import run_virtual, wall_clock
from tests.gateway._weshd import wait_until
from wesh.errors import ConnectionFailed, DecodeError, TransientError, UsageError, WeshError
from wesh.gateway.channels import ChannelMapper, GatewayEvent, Sample
from wesh.gateway.config import BoxConfig, PollConfig
from wesh.gateway.drivers import Command, PollResult
from wesh.gateway.poller import Poller, backoff_delay_s, jitter_bound_s, next_slot
from wesh.wes.client import IdentityMismatch
from wesh.wes.readings import Reading

# --------------------------------------------------------------------------- fakes


class Concurrency:
    def __init__(self) -> None:
        self.active = 0
        self.peak = 0


class FakeDriver:
    """A box at the driver seam: answers after ``delay_s``, or fails as ``behaviour`` says."""

    def __init__(
        self,
        box_id: str,
        *,
        delay_s: float = 0.01,
        behaviour: Callable[[int], WeshError | BaseException | None] | None = None,
        counter: Concurrency | None = None,
        value: Callable[[int], float] | None = None,
    ) -> None:
        self.box_id = box_id
        self.delay_s = delay_s
        self.behaviour = behaviour
        self.counter = counter
        self.value = value or (lambda n: 20.0 + n)
        self.starts: list[float] = []
        self.closed = False

    async def poll(self) -> PollResult:
        loop = asyncio.get_running_loop()
        n = len(self.starts)
        self.starts.append(loop.time())
        if self.counter is not None:
            self.counter.active += 1
            self.counter.peak = max(self.counter.peak, self.counter.active)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            if self.counter is not None:
                self.counter.active -= 1
        error = self.behaviour(n) if self.behaviour else None
        if error is not None:
            raise error
        now = wall_clock()
        readings = [
            Reading("temp.1", self.value(n), "°C", None, now, "gauge"),
            Reading("impulsion.1.index", 1000 + n, "L", None, now, "index"),
        ]
        return PollResult(readings=readings, box_time=None, identity=None)

    async def command(self, command: Command) -> None:
        raise UsageError("no outputs")

    async def aclose(self) -> None:
        self.closed = True


class FakeStore:
    def __init__(self) -> None:
        self.batches: list[list[Sample]] = []
        self.events: list[GatewayEvent] = []
        self.edges: list[tuple[str, bool, str | None]] = []
        self.fail_next = 0

    def add_samples(self, samples: Sequence[Sample]) -> int:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("database is locked")
        self.batches.append(list(samples))
        return len(samples)

    def add_event(self, event: GatewayEvent) -> int:
        self.events.append(event)
        return len(self.events)

    def set_box_status(self, box: str, *, up: bool, at: datetime, error: str | None) -> None:
        assert at.tzinfo is not None
        self.edges.append((box, up, error))

    @property
    def samples(self) -> list[Sample]:
        return [s for batch in self.batches for s in batch]

    def kinds(self, box: str | None = None) -> list[str]:
        return [e.kind for e in self.events if box is None or e.box == box]


def box(box_id: str, *, interval: float = 10.0, timeout: float = 5.0, **extra: object) -> BoxConfig:
    return BoxConfig.model_validate(
        {
            "id": box_id,
            "serves": f"logement-{box_id}",
            "host": "127.0.0.1",
            "port": 10000 + sum(map(ord, box_id)),
            "poll_interval_s": interval,
            "timeout_s": timeout,
            **extra,
        }
    )


def make_poller(
    drivers: dict[str, FakeDriver],
    boxes: dict[str, BoxConfig],
    store: FakeStore,
    *,
    poll: PollConfig | None = None,
    seed: int = 1,
    **options: object,
) -> Poller:
    return Poller(
        drivers=drivers,
        boxes=boxes,
        mapper=ChannelMapper(list(boxes.values())),
        store=store,
        poll=poll or PollConfig(jitter_s=0.5, backoff_initial_s=10, backoff_max_s=80),
        clock=wall_clock,
        rng=random.Random(seed),
        **options,  # type: ignore[arg-type]
    )


async def run_for(poller: Poller, seconds: float) -> None:
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(seconds)
    await poller.stop()
    await task


def farm(
    count: int, *, interval: float = 10.0, **driver_options: object
) -> tuple[dict[str, FakeDriver], dict[str, BoxConfig]]:
    ids = [f"b{i:03d}" for i in range(count)]
    drivers = {i: FakeDriver(i, **driver_options) for i in ids}  # type: ignore[arg-type]
    boxes = {i: box(i, interval=interval) for i in ids}
    return drivers, boxes


# --------------------------------------------------------------------------- pure schedule


def test_backoff_sequence_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay_s(n, initial_s=10, max_s=600) for n in range(1, 10)]
    assert delays == [10, 20, 40, 80, 160, 320, 600, 600, 600]
    assert backoff_delay_s(10_000, initial_s=10, max_s=600) == 600
    with pytest.raises(ValueError, match="failures"):
        backoff_delay_s(0, initial_s=10, max_s=600)


def test_jitter_bound_is_at_most_half_the_interval() -> None:
    assert jitter_bound_s(60, 2) == 2
    assert jitter_bound_s(1, 2) == 0.5
    assert jitter_bound_s(10, 0) == 0


@given(
    now=st.floats(-1e6, 1e6),
    origin=st.floats(-1e6, 1e6),
    interval=st.floats(0.01, 1e4),
    after=st.none() | st.integers(-1000, 10**9),
)
def test_next_slot_is_the_first_slot_after_now(
    now: float, origin: float, interval: float, after: int | None
) -> None:
    k = next_slot(now, origin=origin, interval_s=interval, after=after)
    assert origin + k * interval > now
    if after is not None:
        assert k >= after + 1
    if after is None or k > after + 1:
        assert origin + (k - 1) * interval <= now


# --------------------------------------------------------------------------- schedule


def test_boxes_are_spread_over_the_interval_and_keep_their_jittered_grid() -> None:
    drivers, boxes = farm(40, interval=10.0)
    store = FakeStore()

    async def main() -> Poller:
        poller = make_poller(drivers, boxes, store, poll=PollConfig(jitter_s=1.0))
        await run_for(poller, 300)
        return poller

    poller = run_virtual(main)
    firsts = sorted(d.starts[0] - 1000.0 for d in drivers.values())
    assert firsts[0] >= 0 and firsts[-1] <= 11.0
    # spread: the 40 first polls cover most of the interval, not a burst at t=0
    assert firsts[-1] - firsts[0] > 7.0
    assert len({round(t, 6) for t in firsts}) == 40
    for driver in drivers.values():
        gaps = [b - a for a, b in zip(driver.starts, driver.starts[1:], strict=False)]
        assert 28 <= len(driver.starts) <= 31
        assert all(9.0 - 1e-9 <= gap <= 11.0 + 1e-9 for gap in gaps), gaps
        # no drift: the n-th poll stays within its slot [origin + n*10, + jitter]
        base = driver.starts[0]
        for n, start in enumerate(driver.starts):
            assert -1.0 - 1e-9 <= start - (base + n * 10.0) <= 1.0 + 1e-9
    stats = poller.stats(take_lags=True)
    assert stats.polls == sum(len(d.starts) for d in drivers.values())
    assert stats.failures == 0 and stats.skipped_slots == 0
    assert max(stats.lags_s) < 1e-6
    assert poller.stats(take_lags=True).lags_s == ()  # the window was handed over


def test_global_concurrency_limit_is_respected_and_waiting_counts_as_lag() -> None:
    counter = Concurrency()
    drivers, boxes = farm(50, interval=1.0, delay_s=0.5, counter=counter)
    store = FakeStore()

    async def main() -> Poller:
        poller = make_poller(drivers, boxes, store, poll=PollConfig(max_concurrency=5))
        await run_for(poller, 60)
        return poller

    poller = run_virtual(main)
    assert counter.peak == 5
    stats = poller.stats(take_lags=True)
    # 50 polls of 0.5 s a second need 25 slots, only 5 exist: polls queue and lag
    assert max(stats.lags_s) > 1.0
    assert stats.durations_s and all(abs(d - 0.5) < 1e-6 for d in stats.durations_s)
    assert stats.polls == pytest.approx(5 / 0.5 * 60, rel=0.05)


def test_a_slow_box_never_delays_the_others() -> None:
    drivers, boxes = farm(10, interval=1.0, delay_s=0.01)
    drivers["b000"].delay_s = 5.0
    boxes["b000"] = box("b000", interval=1.0, timeout=10.0)
    store = FakeStore()

    async def main() -> tuple[Poller, dict[str, Any]]:
        poller = make_poller(drivers, boxes, store, poll=PollConfig(max_concurrency=4))
        await run_for(poller, 100)
        return poller, poller.status()

    poller, status = run_virtual(main)
    for box_id, driver in drivers.items():
        if box_id == "b000":
            # each 5 s poll covers the next slots (skipped), then the next free one
            assert 15 <= len(driver.starts) <= 20
            continue
        assert 99 <= len(driver.starts) <= 101
        assert status[box_id].last_lag_s is not None and status[box_id].last_lag_s < 1e-6
    assert poller.stats().skipped_slots >= 70
    assert status["b000"].up is True


def test_a_hanging_box_times_out_and_the_others_keep_their_schedule() -> None:
    drivers, boxes = farm(5, interval=2.0)
    drivers["b001"].delay_s = 3600.0
    boxes["b001"] = box("b001", interval=2.0, timeout=3.0)
    store = FakeStore()

    async def main() -> tuple[Poller, dict[str, Any]]:
        poller = make_poller(
            drivers,
            boxes,
            store,
            poll=PollConfig(max_concurrency=2, jitter_s=0, backoff_initial_s=5, backoff_max_s=5),
        )
        await run_for(poller, 60)
        return poller, poller.status()

    poller, status = run_virtual(main)
    stats = poller.stats(take_lags=True)
    hung = len(drivers["b001"].starts)  # the last one may be in flight at stop
    assert hung > 5 and hung - 1 <= stats.timeouts <= hung
    assert all(29 <= len(d.starts) <= 31 for k, d in drivers.items() if k != "b001")
    assert max(stats.lags_s) < 1e-6
    down = [e for e in store.events if e.kind == "box_down"]
    assert [e.box for e in down] == ["b001"]
    assert "no answer within 3 s" in down[0].message
    assert status["b001"].last_error is not None


# --------------------------------------------------------------------------- backoff and edges


def test_dead_box_backs_off_exponentially_then_returns_to_its_grid() -> None:
    # fails its first 6 polls, then answers
    drivers = {
        "dead": FakeDriver(
            "dead", behaviour=lambda n: ConnectionFailed("refused") if n < 6 else None
        )
    }
    boxes = {"dead": box("dead", interval=10.0)}
    store = FakeStore()
    poll = PollConfig(jitter_s=0, backoff_initial_s=10, backoff_max_s=80)

    async def main() -> None:
        poller = make_poller(drivers, boxes, store, poll=poll)
        await run_for(poller, 400)

    run_virtual(main)
    starts = drivers["dead"].starts
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    # retries after 10, 20, 40, 80, 80 (+ the 0.01 s the failing poll took), then the grid
    assert gaps[:5] == pytest.approx([10.01, 20.01, 40.01, 80.01, 80.01])
    grid = (starts[0] - 1000.0) % 10.0
    for start in starts[7:]:
        assert (start - 1000.0) % 10.0 == pytest.approx(grid, abs=1e-6)
    assert store.kinds() == ["box_down", "box_up"]
    assert [edge[1] for edge in store.edges] == [False, True]


def test_down_and_recovery_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    def behaviour(n: int) -> WeshError | None:
        return ConnectionFailed("connection refused", host="flaky") if 2 <= n < 8 else None

    drivers = {"flaky": FakeDriver("flaky", behaviour=behaviour), "ok": FakeDriver("ok")}
    boxes = {"flaky": box("flaky", interval=5.0), "ok": box("ok", interval=5.0)}
    store = FakeStore()
    poll = PollConfig(jitter_s=0, backoff_initial_s=1, backoff_max_s=4)

    async def main() -> None:
        poller = make_poller(drivers, boxes, store, poll=poll)
        await run_for(poller, 200)

    caplog.set_level(logging.DEBUG, logger="wesh.gateway.poller")
    run_virtual(main)
    records = [r for r in caplog.records if r.name == "wesh.gateway.poller"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    infos = [r for r in records if r.levelno == logging.INFO and "flaky" in r.getMessage()]
    assert len(warnings) == 1 and "flaky is down" in warnings[0].getMessage()
    assert "connection refused" in warnings[0].getMessage()
    assert warnings[0].args  # %-style, not pre-formatted
    assert len(infos) == 1 and "back up" in infos[0].getMessage()
    assert not [r for r in records if r.levelno >= logging.ERROR]
    assert store.kinds("flaky") == ["box_down", "box_up"]
    assert store.kinds("ok") == []
    assert len(drivers["flaky"].starts) > 30  # it was polled again after recovering


def test_restart_state_makes_the_first_poll_an_edge_when_it_differs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drivers = {
        "was-down": FakeDriver("was-down"),
        "was-up": FakeDriver("was-up", behaviour=lambda n: ConnectionFailed("refused")),
        "still-down": FakeDriver("still-down", behaviour=lambda n: ConnectionFailed("refused")),
        "new": FakeDriver("new"),
    }
    boxes = {k: box(k) for k in drivers}
    store = FakeStore()

    async def main() -> Poller:
        poller = make_poller(
            drivers,
            boxes,
            store,
            initial_up={"was-down": False, "was-up": True, "still-down": False},
        )
        await run_for(poller, 100)
        return poller.status()

    caplog.set_level(logging.INFO, logger="wesh.gateway.poller")
    status = run_virtual(main)
    assert store.kinds("was-down") == ["box_up"]
    assert store.kinds("was-up") == ["box_down"]
    assert store.kinds("still-down") == []  # no new event, but one log line
    assert store.kinds("new") == []
    still = [r for r in caplog.records if "still-down" in r.getMessage()]
    assert len(still) == 1 and "still down" in still[0].getMessage()
    assert status["new"].up is True


def test_identity_mismatch_raises_an_alarm_once_per_outage() -> None:
    def behaviour(n: int) -> WeshError | None:
        return IdentityMismatch(
            "wrong box", expected="02AAAAAAAAAA", actual="02BBBBBBBBBB", host="x"
        )

    drivers = {"swapped": FakeDriver("swapped", behaviour=behaviour)}
    store = FakeStore()

    async def main() -> None:
        poller = make_poller(drivers, {"swapped": box("swapped")}, store)
        await run_for(poller, 300)

    run_virtual(main)
    assert sorted(store.kinds()) == ["box_down", "identity_mismatch"]
    alarm = next(e for e in store.events if e.kind == "identity_mismatch")
    assert alarm.severity == "alarm" and alarm.data["actual"] == "02BBBBBBBBBB"


def test_a_bug_in_a_driver_is_logged_once_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    drivers = {
        "buggy": FakeDriver("buggy", behaviour=lambda n: KeyError("oops")),
        "fine": FakeDriver("fine"),
    }
    boxes = {k: box(k, interval=1.0) for k in drivers}
    store = FakeStore()
    poll = PollConfig(jitter_s=0, backoff_initial_s=1, backoff_max_s=2)

    async def main() -> None:
        poller = make_poller(drivers, boxes, store, poll=poll)
        await run_for(poller, 60)

    caplog.set_level(logging.INFO, logger="wesh.gateway.poller")
    run_virtual(main)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "buggy" in tracebacks[0].getMessage()
    assert len(drivers["buggy"].starts) > 20
    assert 59 <= len(drivers["fine"].starts) <= 61


def test_malformed_answers_mark_the_box_down_without_stopping_it() -> None:
    def behaviour(n: int) -> WeshError | None:
        return DecodeError("mismatched tag", where="line 3") if n % 2 else None

    drivers = {"bad": FakeDriver("bad", behaviour=behaviour)}
    store = FakeStore()
    poll = PollConfig(jitter_s=0, backoff_initial_s=1, backoff_max_s=1)

    async def main() -> None:
        poller = make_poller(drivers, {"bad": box("bad", interval=2.0)}, store, poll=poll)
        await run_for(poller, 20)

    run_virtual(main)
    kinds = store.kinds()
    assert kinds[:4] == ["box_down", "box_up", "box_down", "box_up"]
    assert len({s.at for s in store.samples}) == len(drivers["bad"].starts) // 2 + (
        len(drivers["bad"].starts) % 2
    )


# --------------------------------------------------------------------------- data path


def test_samples_are_mapped_checked_and_written_in_batches() -> None:
    published: list[int] = []
    events: list[str] = []

    async def on_samples(samples: Sequence[Sample]) -> None:
        published.append(len(samples))

    async def on_event(event: GatewayEvent) -> None:
        events.append(event.kind)

    drivers, boxes = farm(100, interval=1.0)
    store = FakeStore()

    async def main() -> Poller:
        poller = make_poller(
            drivers,
            boxes,
            store,
            poll=PollConfig(max_concurrency=100, jitter_s=0),
            batch_window_s=0.2,
            on_samples=on_samples,
            on_event=on_event,
        )
        await run_for(poller, 10)
        return poller

    poller = run_virtual(main)
    polls = poller.stats().polls
    assert len(store.samples) == 2 * polls  # every sample written, the last ones at stop
    assert len(store.batches) < polls / 10  # ~20 polls per transaction
    assert sum(published) == len(store.samples)
    s = store.samples[0]
    assert s.channel == f"{s.box}/{s.path}" and s.at.tzinfo is not None
    assert {x.kind for x in store.samples} == {"gauge", "index"}
    assert events == []


def test_counter_reset_becomes_an_event() -> None:
    drivers = {"w": FakeDriver("w")}
    drivers["w"].value = lambda n: 20.0
    original = drivers["w"].poll

    async def poll() -> PollResult:
        result = await original()
        n = len(drivers["w"].starts) - 1
        index = 5000 + n if n < 3 else n  # restarts from ~0 at the 4th poll
        readings = [r for r in result.readings if r.path != "impulsion.1.index"]
        readings.append(Reading("impulsion.1.index", index, "L", None, wall_clock(), "index"))
        return PollResult(readings=readings, box_time=None, identity=None)

    drivers["w"].poll = poll  # type: ignore[method-assign]
    store = FakeStore()

    async def main() -> None:
        poller = make_poller(drivers, {"w": box("w", interval=10.0)}, store)
        await run_for(poller, 60)

    run_virtual(main)
    resets = [e for e in store.events if e.kind == "counter_reset"]
    assert len(resets) == 1 and resets[0].channel == "w/impulsion.1.index"


def test_store_failures_keep_the_samples_for_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drivers, boxes = farm(3, interval=1.0)
    store = FakeStore()
    store.fail_next = 3

    async def main() -> Poller:
        poller = make_poller(drivers, boxes, store, batch_window_s=0.5)
        await run_for(poller, 10)
        return poller

    caplog.set_level(logging.INFO, logger="wesh.gateway.poller")
    poller = run_virtual(main)
    assert len(store.samples) == 2 * poller.stats().polls
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_stop_writes_what_is_pending_and_closes_every_driver() -> None:
    drivers, boxes = farm(3, interval=1.0)
    store = FakeStore()

    async def main() -> None:
        poller = make_poller(drivers, boxes, store, batch_window_s=3600)
        await run_for(poller, 5)
        await poller.stop()  # idempotent

    run_virtual(main)
    assert store.samples
    assert all(d.closed for d in drivers.values())


def test_stop_before_run_closes_the_drivers() -> None:
    drivers, boxes = farm(2)

    async def main() -> None:
        poller = make_poller(drivers, boxes, FakeStore())
        await poller.stop()
        with pytest.raises(RuntimeError):
            await poller.run()

    run_virtual(main)
    assert all(d.closed for d in drivers.values())


def test_status_reports_every_enabled_box() -> None:
    drivers, boxes = farm(2, interval=10.0)
    boxes["off"] = box("off", enabled=False)
    drivers["off"] = FakeDriver("off")
    drivers["b001"].behaviour = lambda n: ConnectionFailed("refused")
    store = FakeStore()
    seen: dict[str, object] = {}

    async def main() -> None:
        poller = make_poller(drivers, boxes, store)
        before = poller.status()
        seen["before"] = before
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(25)
        seen["during"] = poller.status()
        seen["now"] = wall_clock()
        await poller.stop()
        await task

    run_virtual(main)
    before = seen["before"]
    assert isinstance(before, dict) and set(before) == {"b000", "b001"}
    assert all(s.up is None for s in before.values())
    during = seen["during"]
    assert isinstance(during, dict)
    ok, dead = during["b000"], during["b001"]
    assert ok.up is True and ok.last_ok is not None and ok.consecutive_failures == 0
    assert ok.next_due is not None and ok.next_due > seen["now"]  # type: ignore[operator]
    assert dead.up is False and dead.consecutive_failures >= 1 and "refused" in dead.last_error
    assert drivers["off"].starts == [] and drivers["off"].closed


# --------------------------------------------------------------------------- reconfigure


def test_reconfigure_adds_removes_and_restarts_only_what_changed() -> None:
    drivers, boxes = farm(3, interval=5.0)
    drivers["b002"].behaviour = lambda n: ConnectionFailed("refused")
    store = FakeStore()
    kept: dict[str, object] = {}

    async def main() -> None:
        poller = make_poller(drivers, boxes, store)
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(30)
        unchanged_task = poller._runs["b000"].task
        new_boxes = {
            "b000": boxes["b000"],  # unchanged
            "b002": box("b002", interval=5.0, timeout=2.0),  # changed: still down
            "b100": box("b100", interval=5.0),  # added
        }
        new_drivers = {
            "b000": drivers["b000"],
            "b002": FakeDriver("b002", behaviour=lambda n: ConnectionFailed("refused")),
            "b100": FakeDriver("b100"),
        }
        kept["drivers"] = new_drivers
        await poller.reconfigure(new_drivers, new_boxes, ChannelMapper(list(new_boxes.values())))
        kept["same_task"] = poller._runs["b000"].task is unchanged_task
        kept["b002_up"] = poller.status()["b002"].up
        await asyncio.sleep(30)
        kept["status"] = set(poller.status())
        await poller.stop()
        await task

    run_virtual(main)
    new_drivers = kept["drivers"]
    assert isinstance(new_drivers, dict)
    assert kept["same_task"] is True
    assert kept["b002_up"] is False  # state kept across the restart of its task
    assert kept["status"] == {"b000", "b002", "b100"}
    assert drivers["b001"].closed and drivers["b002"].closed  # removed, replaced
    assert len(new_drivers["b100"].starts) >= 5
    assert 11 <= len(drivers["b000"].starts) <= 13  # undisturbed for 60 s
    assert store.kinds("b002") == ["box_down"]  # no second down edge after the reload


def test_batches_are_cut_into_transactions_of_whole_polls() -> None:
    drivers, boxes = farm(60, interval=1.0)
    store = FakeStore()

    async def main() -> None:
        poller = make_poller(
            drivers,
            boxes,
            store,
            poll=PollConfig(max_concurrency=60, jitter_s=0),
            batch_window_s=2.0,
            chunk_samples=25,
        )
        await run_for(poller, 10)

    run_virtual(main)
    assert len(store.batches) > 10
    assert all(len(batch) <= 25 for batch in store.batches)
    where: dict[tuple[str, datetime], int] = {}
    for number, batch in enumerate(store.batches):
        for sample in batch:
            assert where.setdefault((sample.box, sample.at), number) == number  # never split


async def test_writing_from_a_worker_thread() -> None:
    drivers, boxes = farm(20, interval=0.05, delay_s=0.001)
    store = FakeStore()
    store.fail_next = 1
    published: list[int] = []

    async def on_samples(samples: Sequence[Sample]) -> None:
        published.append(len(samples))

    poller = Poller(
        drivers=drivers,
        boxes=boxes,
        mapper=ChannelMapper(list(boxes.values())),
        store=store,
        poll=PollConfig(jitter_s=0.01, backoff_initial_s=1),
        batch_window_s=0.02,
        write_in_thread=True,
        on_samples=on_samples,
    )
    task = asyncio.create_task(poller.run())
    await wait_until(lambda: len(store.samples) >= 400, what="400 samples")
    await poller.stop()
    await task
    assert len(store.samples) == 2 * poller.stats().polls >= 400
    assert sum(published) == len(store.samples)
    assert [edge[1] for edge in store.edges] == [True] * 20


def test_a_dead_box_whose_configuration_changed_is_retried_at_its_next_slot() -> None:
    drivers = {"d": FakeDriver("d", behaviour=lambda n: ConnectionFailed("refused"))}
    boxes = {"d": box("d", interval=10.0)}
    store = FakeStore()
    poll = PollConfig(jitter_s=0, backoff_initial_s=500, backoff_max_s=500)
    fixed = FakeDriver("d")

    async def main() -> None:
        poller = make_poller(drivers, boxes, store, poll=poll)
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(30)  # down, next retry in 500 s
        assert len(drivers["d"].starts) == 1
        new = {"d": box("d", interval=10.0, timeout=3.0)}
        await poller.reconfigure({"d": fixed}, new, ChannelMapper(list(new.values())))
        await asyncio.sleep(11)
        await poller.stop()
        await task

    run_virtual(main)
    assert len(fixed.starts) == 1
    assert store.kinds() == ["box_down", "box_up"]
