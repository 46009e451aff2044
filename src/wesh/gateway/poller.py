"""The poll coordinator of weshd: when each box is polled, and what happens to the answer.

One task per box, all sharing one :class:`asyncio.Semaphore` (``poll.max_concurrency``)::

    box task ──sleep until due──▶ acquire slot ──poll (timeout_s)──▶ release ──▶ next due
                                      │                   │
                                      lag = start - due   ├─ ok:   samples → mapper/guard → batch
                                                          └─ fail: down edge, exponential backoff
    batch ──every batch_window_s──▶ edges, events, then samples in transactions of whole
          polls (Store.add_samples, from a worker thread if asked) ──▶ on_event, on_samples

Schedule (pure functions below, tested alone):

* Box *b* has a grid ``origin_b + k·interval`` whose origin is drawn uniformly in
  ``[0, interval)`` when the box is added, so boxes are spread over the interval; each
  slot is delayed by a fresh jitter uniform in ``[0, min(jitter_s, interval/2)]``.
* A poll that overruns its interval skips the slots it covered (counted, never queued).
* A failed poll marks the box down and retries after ``backoff_initial_s · 2^(n-1)``
  (capped at ``backoff_max_s``) plus jitter, for the n-th consecutive failure; the first
  good poll marks it up and puts it back on its grid.
* Lag is the time from the scheduled instant to the start of the poll (after waiting
  for a concurrency slot); it is recorded for every poll.
* A box's interval may be overridden at run time (:meth:`Poller.set_interval`, from the
  API): the box restarts on a new grid of the new interval, keeping its up/down state.
  The override lasts until it is cleared, the daemon restarts, or a reload brings a
  changed configuration for that box (then the file wins).

State is edge-triggered: a box going down is logged once (WARNING) with a ``box_down``
event, its recovery once (INFO) with ``box_up``; failures in between are counted, not
logged. A slow or dead box holds only its own task and at most one slot for at most
``timeout_s``, so it never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from wesh.errors import DeviceTimeout, UsageError, WeshError
from wesh.gateway.channels import ChannelMapper, GatewayEvent, Sample
from wesh.gateway.config import BoxConfig, PollConfig
from wesh.gateway.drivers import Driver, PollResult
from wesh.gateway.schema import BoxRuntimeStatus
from wesh.wes.client import IdentityMismatch

__all__ = [
    "DEFAULT_BATCH_WINDOW_S",
    "DEFAULT_CHUNK_SAMPLES",
    "Poller",
    "PollerStats",
    "SampleSink",
    "backoff_delay_s",
    "jitter_bound_s",
    "next_slot",
]

_LOG = logging.getLogger(__name__)

#: polls completing within this window are written in one transaction
DEFAULT_BATCH_WINDOW_S = 0.2
#: samples per transaction (whole polls): bounds the time one write holds the loop
DEFAULT_CHUNK_SAMPLES = 1000
#: bound of the in-memory write queue when the store keeps failing (samples)
_MAX_PENDING_SAMPLES = 500_000
#: how many lags the stats window keeps between two ``take_stats`` calls
_MAX_LAG_WINDOW = 200_000

SampleCallback = Callable[[Sequence[Sample]], Awaitable[None]]
EventCallback = Callable[[GatewayEvent], Awaitable[None]]
_T = TypeVar("_T")


class SampleSink(Protocol):
    """The part of :class:`wesh.gateway.store.Store` the poller writes to."""

    def add_samples(self, samples: Sequence[Sample]) -> int:
        """Store samples in one transaction; return the rows written."""
        ...

    def add_event(self, event: GatewayEvent) -> int:
        """Store one event; return its id."""
        ...

    def set_box_status(self, box: str, *, up: bool, at: datetime, error: str | None) -> None:
        """Record a box going up or down."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- pure schedule


def jitter_bound_s(interval_s: float, jitter_s: float) -> float:
    """Return the largest jitter added to a slot: ``min(jitter_s, interval_s / 2)``."""
    return max(0.0, min(jitter_s, interval_s / 2))


def backoff_delay_s(failures: int, *, initial_s: float, max_s: float) -> float:
    """Return the wait before retrying a box after ``failures`` consecutive failures (≥ 1).

    ``initial_s · 2^(failures - 1)``, capped at ``max_s``.
    """
    if failures < 1:
        raise ValueError("failures must be >= 1")
    exponent = min(failures - 1, 60)
    return float(min(initial_s * (2.0**exponent), max_s))


def next_slot(now: float, *, origin: float, interval_s: float, after: int | None = None) -> int:
    """Return the index of the first grid slot that starts after ``now``.

    Slot *k* starts at ``origin + k · interval_s``. With ``after`` (the slot just polled),
    the result is at least ``after + 1``.
    """
    k = math.floor((now - origin) / interval_s) + 1
    while origin + k * interval_s <= now:  # floating point at the edges
        k += 1
    while origin + (k - 1) * interval_s > now:
        k -= 1
    return k if after is None else max(k, after + 1)


# --------------------------------------------------------------------------- runtime state


@dataclass(slots=True)
class _BoxRun:
    """Mutable runtime state of one box (owned by the poller, never shared)."""

    config: BoxConfig
    driver: Driver
    origin: float
    slot: int = 0
    task: asyncio.Task[None] | None = None
    up: bool | None = None
    since: datetime | None = None
    last_ok: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_due: float | None = None
    last_lag_s: float | None = None
    bug_logged: bool = False
    down_logged: bool = False
    mismatch_reported: bool = False


@dataclass(frozen=True, slots=True)
class _Edge:
    """A box going up or down, to record in the store."""

    box: str
    up: bool
    at: datetime
    error: str | None


@dataclass(frozen=True, slots=True)
class PollerStats:
    """Counters since the poller started, and the lags and durations handed over.

    ``stats(take_lags=True)`` hands over the lag of each poll started (``lags_s``) and
    the duration of each poll completed (``durations_s``, from its start to the answer
    or the error) since the previous such call.
    """

    boxes: int
    boxes_up: int
    boxes_down: int
    polls: int
    failures: int
    timeouts: int
    skipped_slots: int
    samples: int
    pending_samples: int
    lags_s: tuple[float, ...] = field(default=(), repr=False)
    durations_s: tuple[float, ...] = field(default=(), repr=False)


class Poller:
    """Coordinator: polls every enabled box on its jittered schedule (module docstring).

    Args:
        drivers: one driver per box id; the poller owns them and closes them.
        boxes: the box configurations, by id (disabled boxes are listed but not polled).
        mapper: turns a driver's raw readings into samples.
        store: where samples, events and up/down edges go.
        poll: concurrency, jitter and backoff settings.
        clock: wall clock for timestamps (UTC, aware).
        rng: randomness for grid origins and jitter (seed it in tests).
        batch_window_s: polls completing within this window share one transaction.
        on_samples: awaited with each written batch (the MQTT publisher), errors logged.
        on_event: awaited with each event after it is stored, errors logged.
        initial_up: the up/down state each box had when the daemon last stopped (from
            the store), so that the first poll after a restart is an edge if it differs.
        write_in_thread: write sample batches from a worker thread (the store must be
            thread-safe), so that a large transaction does not hold up the schedule.
        chunk_samples: a batch is written in transactions of whole polls holding about
            this many samples; without a thread, the schedule runs between two of them.

    The schedule follows the running loop's clock (``loop.time()``); tests drive it
    with a virtual-time loop rather than a fake ``sleep``.
    """

    def __init__(
        self,
        *,
        drivers: Mapping[str, Driver],
        boxes: Mapping[str, BoxConfig],
        mapper: ChannelMapper,
        store: SampleSink,
        poll: PollConfig,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        batch_window_s: float = DEFAULT_BATCH_WINDOW_S,
        on_samples: SampleCallback | None = None,
        on_event: EventCallback | None = None,
        initial_up: Mapping[str, bool] | None = None,
        write_in_thread: bool = False,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> None:
        self._drivers = dict(drivers)
        self._boxes = dict(boxes)
        self._mapper = mapper
        self._store = store
        self._poll = poll
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - scheduling jitter, not secrets
        self._batch_window_s = batch_window_s
        self._on_samples = on_samples
        self._on_event = on_event
        self._runs: dict[str, _BoxRun] = {}
        #: run-time interval overrides: box id -> (the configuration it overrides, seconds)
        self._overrides: dict[str, tuple[BoxConfig, float]] = {}
        self._initial_up = dict(initial_up or {})
        self._write_in_thread = write_in_thread
        # one dedicated thread: writes stay in order and use one malloc arena, not six
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="weshd-writer")
            if write_in_thread
            else None
        )
        self._chunk_samples = chunk_samples
        self._semaphore = asyncio.Semaphore(poll.max_concurrency)
        self._pending_polls: list[list[Sample]] = []  # samples of each poll, in order
        self._pending_count = 0
        self._pending_records: list[_Edge | GatewayEvent] = []  # in order
        self._wake_writer = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False
        self._polls = 0
        self._failures = 0
        self._timeouts = 0
        self._skipped = 0
        self._samples = 0
        self._lags = array("d")
        self._durations = array("d")
        self._store_failing = False

    # ----------------------------------------------------------------- public API

    async def run(self) -> None:
        """Poll until :meth:`stop` is called; then flush, close the drivers and return."""
        if self._running or self._closed:
            raise RuntimeError("a Poller runs once")
        self._running = True
        loop = asyncio.get_running_loop()
        writer = asyncio.create_task(self._writer(), name="weshd-writer")
        try:
            now = loop.time()
            for box_id, config in self._boxes.items():
                if config.enabled:
                    self._add_run(box_id, self._effective(box_id), self._drivers[box_id], now=now)
            await self._stopping.wait()
        finally:
            await self._cancel_runs(list(self._runs), keep=True)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._flush()
            await self._close_drivers(self._drivers.values())
            self._shutdown_executor()
            self._closed = True
            self._stopped.set()

    async def stop(self) -> None:
        """Stop polling, write what is pending and close the drivers (idempotent)."""
        self._stopping.set()
        if self._running:
            await self._stopped.wait()
        elif not self._closed:
            self._closed = True
            await self._close_drivers(self._drivers.values())
            self._shutdown_executor()

    async def reconfigure(
        self,
        drivers: Mapping[str, Driver],
        boxes: Mapping[str, BoxConfig],
        mapper: ChannelMapper,
        *,
        poll: PollConfig | None = None,
    ) -> None:
        """Apply a new configuration without losing data (SIGHUP).

        Removed (or disabled) boxes stop, their poll in flight dropped. A box whose
        configuration or driver object changed restarts with the new driver, keeping its
        up/down state and (same interval) its grid; it is polled at its next slot, even
        if it was down (the change may have fixed it). Index guards live in the mapper
        (pass the old guards to the new one). Unchanged boxes go on undisturbed. Drivers
        no longer used are closed. A new ``poll`` policy applies from the next poll of
        each box (a new concurrency limit from the next slot taken).
        """
        if poll is not None and poll != self._poll:
            if poll.max_concurrency != self._poll.max_concurrency:
                self._semaphore = asyncio.Semaphore(poll.max_concurrency)
            self._poll = poll
        old_drivers = self._drivers
        self._drivers = dict(drivers)
        self._boxes = dict(boxes)
        self._mapper = mapper
        for box_id, (base, _seconds) in list(self._overrides.items()):
            if self._boxes.get(box_id) != base:  # removed or changed: the file wins
                del self._overrides[box_id]
                _LOG.info("Poll interval override of %s dropped: its configuration changed", box_id)
        if self._running and not self._stopping.is_set():
            restart = [
                box_id
                for box_id, run in self._runs.items()
                if box_id not in boxes
                or not boxes[box_id].enabled
                or run.config != self._effective(box_id)
                or run.driver is not self._drivers.get(box_id)
            ]
            previous = {box_id: self._runs[box_id] for box_id in restart}
            await self._cancel_runs(restart)
            now = asyncio.get_running_loop().time()
            added = 0
            for box_id, config in boxes.items():
                if config.enabled and box_id not in self._runs:
                    added += box_id not in previous
                    self._add_run(
                        box_id,
                        self._effective(box_id),
                        self._drivers[box_id],
                        now=now,
                        previous=previous.get(box_id),
                    )
            _LOG.info(
                "Poller reconfigured: %d boxes polled (%d added, %d restarted or removed)",
                len(self._runs),
                added,
                len(restart),
            )
        in_use = {id(driver) for driver in self._drivers.values()}
        await self._close_drivers(d for d in old_drivers.values() if id(d) not in in_use)

    def status(self) -> dict[str, BoxRuntimeStatus]:
        """Return the runtime status of every enabled box, by id."""
        result: dict[str, BoxRuntimeStatus] = {}
        wall_now = self._clock()
        loop_now = _loop_time()
        for box_id, config in self._boxes.items():
            if not config.enabled:
                continue
            run = self._runs.get(box_id)
            if run is None:
                result[box_id] = BoxRuntimeStatus(
                    box=box_id,
                    up=None,
                    since=None,
                    last_ok=None,
                    last_error=None,
                    consecutive_failures=0,
                    next_due=None,
                    last_lag_s=None,
                )
                continue
            next_due = None
            if run.next_due is not None and loop_now is not None:
                next_due = wall_now + timedelta(seconds=run.next_due - loop_now)
            result[box_id] = BoxRuntimeStatus(
                box=box_id,
                up=run.up,
                since=run.since,
                last_ok=run.last_ok,
                last_error=run.last_error,
                consecutive_failures=run.consecutive_failures,
                next_due=next_due,
                last_lag_s=run.last_lag_s,
            )
        return result

    def stats(self, *, take_lags: bool = False) -> PollerStats:
        """Return the counters; with ``take_lags`` also hand over (and reset) the lag window."""
        lags: tuple[float, ...] = ()
        durations: tuple[float, ...] = ()
        if take_lags:
            lags, self._lags = tuple(self._lags), array("d")
            durations, self._durations = tuple(self._durations), array("d")
        runs = self._runs.values()
        return PollerStats(
            boxes=len(self._runs),
            boxes_up=sum(1 for run in runs if run.up is True),
            boxes_down=sum(1 for run in runs if run.up is False),
            polls=self._polls,
            failures=self._failures,
            timeouts=self._timeouts,
            skipped_slots=self._skipped,
            samples=self._samples,
            pending_samples=self._pending_count,
            lags_s=lags,
            durations_s=durations,
        )

    async def flush(self) -> None:
        """Write the pending samples and events now."""
        await self._flush()

    def interval_of(self, box_id: str) -> tuple[float, float | None]:
        """Return a box's configured interval and its run-time override (``None``: none).

        Raises:
            UsageError: the box is not configured.
        """
        config = self._boxes.get(box_id)
        if config is None:
            raise UsageError(f"unknown box {box_id!r}", host=box_id)
        override = self._overrides.get(box_id)
        if override is not None and override[0] != config:
            override = None
        return config.poll_interval_s, None if override is None else override[1]

    async def set_interval(self, box_id: str, interval_s: float | None) -> None:
        """Poll an enabled box every ``interval_s`` from now on (``None``: as configured).

        The box restarts on a new grid (its poll in flight, if any, is dropped), keeping
        its up/down state. The override lasts until cleared, until the daemon restarts,
        or until a reload brings a changed configuration for this box.

        Raises:
            UsageError: unknown or disabled box, or an interval out of ``(0, 86400]``.
        """
        config = self._boxes.get(box_id)
        if config is None:
            raise UsageError(f"unknown box {box_id!r}", host=box_id)
        if not config.enabled:
            raise UsageError(f"box {box_id!r} is disabled", host=box_id)
        if interval_s is not None and not (0 < interval_s <= 86_400 and math.isfinite(interval_s)):
            raise UsageError(f"a poll interval must be in (0, 86400] s, not {interval_s}")
        if interval_s is None or interval_s == config.poll_interval_s:
            self._overrides.pop(box_id, None)
        else:
            self._overrides[box_id] = (config, float(interval_s))
        run = self._runs.get(box_id)
        wanted = self._effective(box_id)
        if run is None or run.config == wanted or not self._running or self._stopping.is_set():
            return
        await self._cancel_runs([box_id])
        now = asyncio.get_running_loop().time()
        self._add_run(box_id, wanted, run.driver, now=now, previous=run)
        _LOG.info("Box %s now polled every %g s", box_id, wanted.poll_interval_s)

    def _effective(self, box_id: str) -> BoxConfig:
        """Return the configuration a box is polled with (its interval maybe overridden)."""
        config = self._boxes[box_id]
        override = self._overrides.get(box_id)
        if override is None or override[0] != config:
            return config
        return config.model_copy(update={"poll_interval_s": override[1]})

    # ----------------------------------------------------------------- box tasks

    def _add_run(
        self,
        box_id: str,
        config: BoxConfig,
        driver: Driver,
        *,
        now: float,
        previous: _BoxRun | None = None,
    ) -> None:
        interval = config.poll_interval_s
        if previous is not None and previous.config.poll_interval_s == interval:
            origin = previous.origin
        else:
            origin = now + self._rng.uniform(0.0, interval)
        run = _BoxRun(config=config, driver=driver, origin=origin)
        if previous is None:
            run.up = self._initial_up.pop(box_id, None)
        else:
            run.up, run.since = previous.up, previous.since
            run.last_ok, run.last_error = previous.last_ok, previous.last_error
            run.consecutive_failures = previous.consecutive_failures
        self._runs[box_id] = run
        run.slot = next_slot(now, origin=origin, interval_s=interval) if origin <= now else 0
        if (
            previous is not None
            and previous.config == config
            and previous.up is False
            and previous.next_due is not None
        ):
            due = previous.next_due  # same box, still dead: keep its backoff
        else:
            due = self._slot_due(run, run.slot)
        run.next_due = due
        run.task = asyncio.create_task(self._box_loop(box_id, run), name=f"weshd-poll-{box_id}")

    async def _cancel_runs(self, box_ids: Iterable[str], *, keep: bool = False) -> None:
        """Cancel the tasks of these boxes; forget their state unless ``keep``."""
        ids = list(box_ids)
        runs = [self._runs[box_id] if keep else self._runs.pop(box_id) for box_id in ids]
        tasks = [run.task for run in runs if run.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for run in runs:
            run.task = None

    def _shutdown_executor(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # idle by now: every write was awaited
            self._executor = None

    async def _close_drivers(self, drivers: Iterable[Driver]) -> None:
        for driver in drivers:
            try:
                await driver.aclose()
            except WeshError as exc:
                _LOG.warning("Closing the driver of %s failed: %s", driver.box_id, exc)

    def _slot_due(self, run: _BoxRun, slot: int) -> float:
        interval = run.config.poll_interval_s
        jitter = self._rng.uniform(0.0, jitter_bound_s(interval, self._poll.jitter_s))
        return run.origin + slot * interval + jitter

    async def _box_loop(self, box_id: str, run: _BoxRun) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = run.next_due if run.next_due is not None else loop.time()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._semaphore:
                started = loop.time()
                lag = max(0.0, started - due)
                run.last_lag_s = lag
                if len(self._lags) < _MAX_LAG_WINDOW:
                    self._lags.append(lag)
                recovering = run.consecutive_failures > 0
                ok = await self._poll_once(box_id, run)
            now = loop.time()
            if len(self._durations) < _MAX_LAG_WINDOW:
                self._durations.append(now - started)
            interval = run.config.poll_interval_s
            if ok and recovering:  # back on the grid after the backoff
                run.slot = next_slot(now, origin=run.origin, interval_s=interval)
                run.next_due = self._slot_due(run, run.slot)
            elif ok:
                slot = next_slot(now, origin=run.origin, interval_s=interval, after=run.slot)
                self._skipped += slot - run.slot - 1
                run.slot = slot
                run.next_due = self._slot_due(run, slot)
            else:
                delay_s = backoff_delay_s(
                    run.consecutive_failures,
                    initial_s=self._poll.backoff_initial_s,
                    max_s=self._poll.backoff_max_s,
                )
                jitter = self._rng.uniform(0.0, max(0.0, self._poll.jitter_s))
                run.next_due = now + delay_s + jitter

    async def _poll_once(self, box_id: str, run: _BoxRun) -> bool:
        """Poll one box; return True if it answered. Never raises (but CancelledError)."""
        at = self._clock()
        timeout_s = run.config.timeout_s
        error: WeshError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                result = await run.driver.poll()
            samples, events = self._to_samples(box_id, result, at)
        except TimeoutError:
            self._timeouts += 1
            error = DeviceTimeout(f"no answer within {timeout_s:g} s", host=box_id)
        except WeshError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a driver's or mapper's bug: keep polling the others
            if not run.bug_logged:
                run.bug_logged = True
                _LOG.exception("Unexpected error polling %s (logged once)", box_id)
            error = WeshError(f"internal error: {type(exc).__name__}: {exc}", host=box_id)
        self._polls += 1
        if error is not None:
            if isinstance(error, IdentityMismatch) and not run.mismatch_reported:
                run.mismatch_reported = True
                self._queue_event(
                    GatewayEvent(
                        at=at,
                        box=box_id,
                        channel=None,
                        kind="identity_mismatch",
                        severity="alarm",
                        message=f"{box_id}: not the expected box: {error}",
                        data={"expected": error.expected, "actual": error.actual},
                    )
                )
            self._failures += 1
            run.consecutive_failures += 1
            run.last_error = str(error)
            if run.up is not False:
                self._went_down(box_id, run, error, at)
            elif not run.down_logged:  # down before a restart: say so once, no new event
                run.down_logged = True
                _LOG.warning("Box %s is still down: %s", box_id, error)
            return False
        run.consecutive_failures = 0
        run.last_ok = at
        run.last_error = None
        run.bug_logged = run.mismatch_reported = False
        if run.up is not True:
            self._went_up(box_id, run, at)
        self._samples += len(samples)
        if samples:
            self._pending_polls.append(samples)
            self._pending_count += len(samples)
        self._pending_records.extend(events)
        self._wake_writer.set()
        return True

    def _to_samples(
        self, box_id: str, result: PollResult, at: datetime
    ) -> tuple[list[Sample], list[GatewayEvent]]:
        mapped = self._mapper.process(
            box_id, result.readings, poll_time=at, box_time=result.box_time
        )
        return mapped.samples, mapped.events

    # ----------------------------------------------------------------- edges

    def _went_down(self, box_id: str, run: _BoxRun, error: WeshError, at: datetime) -> None:
        was_never_polled = run.up is None
        run.up, run.since, run.down_logged = False, at, True
        _LOG.warning(
            "Box %s is down: %s (retrying with backoff, logged again on recovery)",
            box_id,
            error,
        )
        self._store_box_status(box_id, up=False, at=at, error=str(error))
        self._queue_event(
            GatewayEvent(
                at=at,
                box=box_id,
                channel=None,
                kind="box_down",
                severity="warning",
                message=f"{box_id} is not answering: {error}",
                data={"error": type(error).__name__, "first_poll": was_never_polled},
            )
        )

    def _went_up(self, box_id: str, run: _BoxRun, at: datetime) -> None:
        previous, since = run.up, run.since
        run.up, run.since = True, at
        if previous is None:
            _LOG.debug("Box %s answered its first poll", box_id)
            self._store_box_status(box_id, up=True, at=at, error=None)
            return
        down_s = (at - since).total_seconds() if since is not None else None
        _LOG.info("Box %s is back up (down for %s s)", box_id, _fmt_s(down_s))
        self._store_box_status(box_id, up=True, at=at, error=None)
        self._queue_event(
            GatewayEvent(
                at=at,
                box=box_id,
                channel=None,
                kind="box_up",
                severity="info",
                message=f"{box_id} answers again",
                data={"down_s": down_s} if down_s is not None else {},
            )
        )

    def _store_box_status(self, box_id: str, *, up: bool, at: datetime, error: str | None) -> None:
        self._pending_records.append(_Edge(box_id, up, at, error))
        self._wake_writer.set()

    def _queue_event(self, event: GatewayEvent) -> None:
        self._pending_records.append(event)
        self._wake_writer.set()

    # ----------------------------------------------------------------- writing

    async def _writer(self) -> None:
        while True:
            await self._wake_writer.wait()
            await asyncio.sleep(self._batch_window_s)
            # shielded: a batch being written when the poller stops is finished, not lost
            await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._flush_lock:  # one batch at a time, in order
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        self._wake_writer.clear()
        records, self._pending_records = self._pending_records, []
        polls, self._pending_polls = self._pending_polls, []
        self._pending_count = 0
        if records:
            done, error = await self._run_write(self._write_records, records)
            if error is not None:
                self._store_failed(error)
                self._requeue(records[done:], polls)
                return
            for record in records:
                if isinstance(record, GatewayEvent):
                    await self._call(self._on_event, record)
        written = 0
        for chunk in _chunks(polls, self._chunk_samples):
            if written and not self._write_in_thread:
                await asyncio.sleep(0)  # let the schedule run between two transactions
            samples = [sample for poll in chunk for sample in poll]
            _, error = await self._run_write(self._write_samples, samples)
            if error is not None:
                self._store_failed(error)
                self._requeue([], polls[written:])
                return
            written += len(chunk)
            await self._call(self._on_samples, samples)
        if self._store_failing:
            self._store_failing = False
            _LOG.info("Writing to the store works again")

    async def _run_write(
        self, write: Callable[[_T], tuple[int, WeshError | None]], payload: _T
    ) -> tuple[int, WeshError | None]:
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, write, payload)
        return write(payload)

    def _requeue(self, records: list[_Edge | GatewayEvent], polls: list[list[Sample]]) -> None:
        """Put back what could not be written, in front of what came since (bounded)."""
        self._pending_records[:0] = records
        kept = polls + self._pending_polls
        count = sum(len(poll) for poll in kept)
        while count > _MAX_PENDING_SAMPLES and kept:
            count -= len(kept.pop(0))  # the oldest polls go first
        self._pending_polls, self._pending_count = kept, count

    def _write_records(
        self, records: Sequence[_Edge | GatewayEvent]
    ) -> tuple[int, WeshError | None]:
        """Write edges and events in order; return how many were written and the error."""
        done = 0
        try:
            for record in records:
                if isinstance(record, _Edge):
                    self._store.set_box_status(
                        record.box, up=record.up, at=record.at, error=record.error
                    )
                else:
                    self._store.add_event(record)
                done += 1
        except WeshError as exc:
            return done, exc
        return done, None

    def _write_samples(self, samples: Sequence[Sample]) -> tuple[int, WeshError | None]:
        """Write whole polls' samples in one transaction."""
        try:
            return self._store.add_samples(samples), None
        except WeshError as exc:
            return 0, exc

    def _store_failed(self, exc: WeshError) -> None:
        if not self._store_failing:
            self._store_failing = True
            _LOG.error("Writing to the store failed, keeping data in memory: %s", exc)

    async def _call(self, callback: Callable[[_T], Awaitable[None]] | None, payload: _T) -> None:
        if callback is None:
            return
        try:
            await callback(payload)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a consumer's bug must not stop polling
            _LOG.exception("A consumer of the poller failed")


def _chunks(polls: list[list[Sample]], max_samples: int) -> Iterator[list[list[Sample]]]:
    """Group whole polls into chunks of at most ``max_samples`` (one poll may exceed it)."""
    chunk: list[list[Sample]] = []
    size = 0
    for poll in polls:
        if chunk and size + len(poll) > max_samples:
            yield chunk
            chunk, size = [], 0
        chunk.append(poll)
        size += len(poll)
    if chunk:
        yield chunk


def _loop_time() -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


def _fmt_s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.0f}"
