"""weshd's runtime: the :class:`Gateway` that ties configuration, store, poller and API.

::

    weshd.toml ──load_config──▶ Gateway.run()
                                  ├─ Store.open(state_dir)            (kept open until exit)
                                  ├─ drivers (make_driver) + ChannelMapper (guards seeded
                                  │   from the store's latest values)
                                  ├─ Poller.run()  ──samples/events──▶ Store, MQTT
                                  ├─ API on the Unix socket (and TCP)  ◀── weshclient, curl
                                  ├─ housekeeping: store.prune() hourly, a polling summary
                                  │   in the log, systemd watchdog
                                  └─ signals: SIGTERM/SIGINT stop, SIGHUP reload

Lifecycle: ``started`` event → API listening → ``READY=1`` to systemd → polling … →
``STOPPING=1`` → poller stopped (pending samples written, drivers closed) → API closed
(socket removed) → MQTT "offline" → ``stopped`` event → store closed.

Reload (SIGHUP): the file is read again with the same command-line overrides. A bad file
is logged with a ``config_error`` event and the old configuration stays. A good one
reconfigures the poller (added, removed and changed boxes; the others are undisturbed),
the MQTT publisher and the API's view, with a ``config_reloaded`` event. The store stays
open: nothing is lost. ``site``, ``state_dir``, ``store``, ``api`` and ``mqtt`` are read
at start only (a change is logged as needing a restart).

Run-time control (the API's ``/interval`` and ``/clock`` endpoints): a box's poll interval
may be overridden until the daemon restarts, the override is cleared, or a reload brings
a changed configuration for that box (the file then wins; an unchanged box keeps its
override). Setting a box's clock goes to its driver if the driver has a
``set_clock(at)`` coroutine; no driver has one today (a WES has no documented HTTP
command for its clock), so the API answers ``501 not_supported``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import socket
import statistics
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from wesh import __version__
from wesh.errors import ConfigError, DeviceTimeout, UsageError, WeshError
from wesh.gateway.api import ApiServers, PollIntervalState, create_app, serve_api
from wesh.gateway.channels import ChannelMapper, EventKind, GatewayEvent, Sample, Severity
from wesh.gateway.config import (
    BoxConfig,
    GatewayConfig,
    SiteConfig,
    apply_overrides,
    load_config,
)
from wesh.gateway.drivers import Command, Driver, make_driver
from wesh.gateway.metrics import GatewayMetrics
from wesh.gateway.mqtt import MqttPublisher
from wesh.gateway.poller import DEFAULT_BATCH_WINDOW_S, Poller, PollerStats
from wesh.gateway.schema import BoxRuntimeStatus
from wesh.gateway.store import RetentionPolicy, Store

__all__ = ["Gateway", "SystemdNotifier", "lag_summary"]

_LOG = logging.getLogger(__name__)

_RESTART_ONLY = ("site", "state_dir", "store", "api", "mqtt")
_MAX_LAGS = 500_000
DriverFactory = Callable[[BoxConfig], Driver]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SystemdNotifier:
    """Sends ``sd_notify`` datagrams (``READY=1``, ``STOPPING=1``...) to systemd.

    ``address`` is ``$NOTIFY_SOCKET`` (read by the CLI): a path, or ``@name`` for the
    abstract namespace. Without one every call is a no-op. A failure is logged once.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether systemd asked for notifications."""
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) in one datagram; True if sent."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                _LOG.warning("Cannot notify systemd at %s: %s", self.address, exc)
            return False
        return True


def lag_summary(lags_s: Sequence[float]) -> tuple[float, float, float] | None:
    """Return (p50, p99, max) of poll lags in seconds, ``None`` without lags."""
    if not lags_s:
        return None
    if len(lags_s) == 1:
        return lags_s[0], lags_s[0], lags_s[0]
    cuts = statistics.quantiles(lags_s, n=100, method="inclusive")
    return cuts[49], cuts[98], max(lags_s)


class Gateway:
    """The running weshd (it also serves the API as its ``GatewayState``).

    Args:
        config: the validated configuration (overrides already applied).
        config_path: the file to read again on reload (``None``: reload is refused).
        state_dir / socket: command-line overrides, applied again on every reload.
        clock: wall clock (UTC, aware).
        notifier: systemd notifications (default: none).
        driver_factory: builds a box's driver (tests may inject fakes).
        stats_interval_s: period of the polling summary in the log (0: never).
        prune_interval_s: period of the store's retention pass.
        watchdog_interval_s: period of ``WATCHDOG=1`` (``None``: no watchdog).
        batch_window_s: polls completing within this window share one transaction.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | None = None,
        state_dir: Path | None = None,
        socket: Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
        notifier: SystemdNotifier | None = None,
        driver_factory: DriverFactory | None = None,
        stats_interval_s: float = 300.0,
        prune_interval_s: float = 3600.0,
        watchdog_interval_s: float | None = None,
        batch_window_s: float = DEFAULT_BATCH_WINDOW_S,
    ) -> None:
        self._config = config
        self._config_path = config_path
        self._overrides = (state_dir, socket)
        self._clock = clock
        self._notifier = notifier or SystemdNotifier(None)
        self._driver_factory = driver_factory or (lambda box: make_driver(box, clock=clock))
        self._stats_interval_s = stats_interval_s
        self._prune_interval_s = prune_interval_s
        self._watchdog_interval_s = watchdog_interval_s
        self._batch_window_s = batch_window_s
        self._store: Store | None = None
        self._poller: Poller | None = None
        self._mapper: ChannelMapper | None = None
        self._mqtt: MqttPublisher | None = None
        self._drivers: dict[str, Driver] = {}
        self._online: set[str] = set()
        self._stop = asyncio.Event()
        self._stop_reason = "stop requested"
        self._reload = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.api: ApiServers | None = None
        self._lags_for_metrics = array("d")
        self._lags_for_log = array("d")
        self._durations_for_log = array("d")
        self._reloads = 0

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        state_dir: Path | None = None,
        socket: Path | None = None,
        **options: object,
    ) -> Gateway:
        """Load ``path`` (with the overrides) and build a gateway that reloads from it."""
        config = apply_overrides(load_config(path), state_dir=state_dir, socket=socket)
        return cls(config, config_path=path, state_dir=state_dir, socket=socket, **options)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- GatewayState

    @property
    def config(self) -> GatewayConfig:
        """The configuration in force."""
        return self._config

    @property
    def site(self) -> SiteConfig:
        """The site this gateway serves."""
        return self._config.site

    @property
    def store(self) -> Store:
        """The open store (only while running)."""
        if self._store is None:
            raise UsageError("the gateway is not running")
        return self._store

    def boxes(self) -> Sequence[BoxConfig]:
        """Return the configured boxes, enabled or not."""
        return list(self._config.boxes)

    def status(self) -> Mapping[str, BoxRuntimeStatus]:
        """Return the runtime status of the enabled boxes, by id."""
        return self._poller.status() if self._poller is not None else {}

    async def command(self, box: str, command: Command) -> None:
        """Drive a relay or switch of a box, within its ``timeout_s``; record an event."""
        config = self._config.box(box)
        if config is None:
            raise UsageError(f"unknown box {box!r}", host=box)
        driver = self._drivers.get(box)
        if not config.enabled or driver is None:
            raise UsageError(f"box {box!r} is disabled", host=box)
        what = f"{command.kind} {command.number} {command.action}"
        data = {"kind": command.kind, "number": command.number, "action": command.action}
        try:
            async with asyncio.timeout(config.timeout_s):
                await driver.command(command)
        except TimeoutError as exc:
            error: WeshError = DeviceTimeout(f"no answer within {config.timeout_s:g} s", host=box)
            await self._event("command", "warning", f"{box}: {what} failed: {error}", box, data)
            raise error from exc
        except WeshError as exc:
            await self._event("command", "warning", f"{box}: {what} failed: {exc}", box, data)
            raise
        await self._event("command", "info", f"{box}: {what}", box, data)

    # ----------------------------------------------------------------- run-time control

    def _enabled_box(self, box: str) -> BoxConfig:
        config = self._config.box(box)
        if config is None:
            raise UsageError(f"unknown box {box!r}", host=box)
        if not config.enabled:
            raise UsageError(f"box {box!r} is disabled", host=box)
        return config

    def poll_interval(self, box: str) -> PollIntervalState:
        """Return a box's configured poll interval, its run-time override and the one in force."""
        config = self._config.box(box)
        if config is None:
            raise UsageError(f"unknown box {box!r}", host=box)
        if self._poller is None:
            return PollIntervalState(box, config.poll_interval_s, None, config.enabled)
        configured, override = self._poller.interval_of(box)
        return PollIntervalState(box, configured, override, config.enabled)

    async def set_poll_interval(self, box: str, interval_s: float | None) -> PollIntervalState:
        """Override a box's poll interval until restart (``None``: back to the configured one).

        Raises:
            UsageError: unknown or disabled box, interval out of ``(0, 86400]``, not running.
        """
        self._enabled_box(box)
        if self._poller is None:
            raise UsageError("the gateway is not running")
        before = self.poll_interval(box)
        await self._poller.set_interval(box, interval_s)
        after = self.poll_interval(box)
        if after.effective_s != before.effective_s or after.override_s != before.override_s:
            what = (
                f"poll interval {after.effective_s:g} s (configured {after.configured_s:g} s)"
                if after.override_s is not None
                else f"poll interval back to the configured {after.configured_s:g} s"
            )
            data = {"kind": "poll_interval", "interval_s": after.effective_s}
            await self._event("command", "info", f"{box}: {what}", box, data)
        return after

    def can_set_clock(self, box: str) -> bool:
        """Tell whether a box's driver can set the box's clock (none can today)."""
        self._enabled_box(box)
        return callable(getattr(self._drivers.get(box), "set_clock", None))

    async def set_clock(self, box: str, at: datetime) -> None:
        """Set a box's clock to ``at`` through its driver, within its ``timeout_s``.

        Raises:
            UsageError: unknown or disabled box, or a driver that cannot set a clock.
            WeshError: what the driver raised (box unreachable, refused...).
        """
        config = self._enabled_box(box)
        setter = getattr(self._drivers.get(box), "set_clock", None)
        if not callable(setter):
            raise UsageError(f"box {box!r} ({config.driver}) cannot set its clock", host=box)
        data = {"kind": "clock", "at": at.isoformat()}
        try:
            async with asyncio.timeout(config.timeout_s):
                await setter(at)
        except TimeoutError as exc:
            error: WeshError = DeviceTimeout(f"no answer within {config.timeout_s:g} s", host=box)
            await self._event("command", "warning", f"{box}: clock not set: {error}", box, data)
            raise error from exc
        except WeshError as exc:
            await self._event("command", "warning", f"{box}: clock not set: {exc}", box, data)
            raise
        await self._event("command", "info", f"{box}: clock set to {at.isoformat()}", box, data)

    # ----------------------------------------------------------------- control

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the gateway to stop (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def request_reload(self) -> None:
        """Ask the gateway to read its configuration again (what SIGHUP does)."""
        self._reload.set()

    # ----------------------------------------------------------------- run

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Run until :meth:`request_stop` (or a signal); raise ``ConfigError`` on bad setup."""
        config = self._config
        retention = RetentionPolicy(
            retention_days=config.store.retention_days,
            events_retention_days=config.store.events_retention_days,
            queue_max_rows=config.store.queue_max_rows,
        )
        loop = asyncio.get_running_loop()
        if install_signal_handlers:  # first: a signal during start-up is not fatal
            self._install_signals(loop)
        try:
            self._store = Store.open(config.store_path, retention=retention, clock=self._clock)
            try:
                await self._run()
            finally:
                self._store.close()
                self._store = None
        finally:
            if install_signal_handlers:
                self._remove_signals(loop)

    async def _run(self) -> None:
        config = self._config
        store = self.store
        token = config.api.token_value()
        enabled = [box for box in config.boxes if box.enabled]
        self._drivers = await self._build_drivers(config.boxes, {})
        self._mapper = ChannelMapper(config.boxes)
        self._seed_guards(self._mapper, config.boxes)
        if config.mqtt is not None and config.mqtt.enabled:
            self._mqtt = MqttPublisher(config.mqtt, site=config.site, boxes=config.boxes)
        self._poller = Poller(
            drivers=self._drivers,
            boxes={box.id: box for box in config.boxes},
            mapper=self._mapper,
            store=store,
            poll=config.poll,
            clock=self._clock,
            batch_window_s=self._batch_window_s,
            on_samples=self._on_samples,
            on_event=self._on_event,
            initial_up={box: row.up for box, row in store.box_status().items()},
        )
        metrics = GatewayMetrics(self, poll_stats=self._metrics_counters, mqtt=self._mqtt)
        app = create_app(self, token=token, metrics=metrics, clock=self._clock)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._poller.stop)  # closes the drivers on any exit
            if self._mqtt is not None:
                await stack.enter_async_context(self._mqtt)
            self.api = await stack.enter_async_context(
                serve_api(app, socket=config.api.socket, tcp=config.api.tcp)
            )
            poll_task = asyncio.create_task(self._poller.run(), name="weshd-poller")
            helpers = [
                asyncio.create_task(self._reloader(), name="weshd-reload"),
                asyncio.create_task(self._pruner(), name="weshd-prune"),
                asyncio.create_task(self._gc_freezer(), name="weshd-gc"),
            ]
            if self._stats_interval_s > 0:
                helpers.append(asyncio.create_task(self._summary(), name="weshd-summary"))
            if self._watchdog_interval_s:
                helpers.append(asyncio.create_task(self._watchdog(), name="weshd-watchdog"))
            _LOG.info(
                "weshd %s running: site %s, %d box(es) polled, store %s",
                __version__,
                config.site.id,
                len(enabled),
                config.store_path,
            )
            await self._event(
                "started",
                "info",
                f"weshd {__version__} started: {len(enabled)} of {len(config.boxes)} "
                "box(es) enabled",
                data={"version": __version__, "pid": os.getpid(), "boxes": len(enabled)},
            )
            self.ready.set()
            self._notifier.notify("READY=1", f"STATUS=polling {len(enabled)} box(es)")
            stop_wait = asyncio.create_task(self._stop.wait())
            try:
                done, _ = await asyncio.wait(
                    {poll_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if poll_task in done:  # the poller never ends by itself: a bug
                    poll_task.result()
                    raise RuntimeError("the poller stopped unexpectedly")
            finally:
                stop_wait.cancel()
                self._notifier.notify("STOPPING=1", f"STATUS={self._stop_reason}")
                _LOG.info("Stopping (%s)", self._stop_reason)
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                await self._poller.stop()
                await poll_task
        self.ready.clear()
        await self._event("stopped", "info", f"weshd stopped ({self._stop_reason})")
        _LOG.info("weshd stopped")

    # ----------------------------------------------------------------- drivers and guards

    async def _build_drivers(
        self, boxes: Sequence[BoxConfig], current: Mapping[str, Driver]
    ) -> dict[str, Driver]:
        """Return a driver per enabled box: reused when its box is unchanged, else new."""
        old_boxes = {box.id: box for box in self._config.boxes}
        drivers: dict[str, Driver] = {}
        created: list[Driver] = []
        try:
            for box in boxes:
                if not box.enabled:
                    continue
                driver = current.get(box.id)
                if driver is not None and old_boxes.get(box.id) == box:
                    drivers[box.id] = driver
                    continue
                new = self._driver_factory(box)
                created.append(new)
                drivers[box.id] = new
        except BaseException:
            for driver in created:
                with contextlib.suppress(WeshError):
                    await driver.aclose()
            raise
        return drivers

    def _seed_guards(self, mapper: ChannelMapper, boxes: Sequence[BoxConfig]) -> None:
        """Give each box's index guard the last stored values, so a reset is seen at restart."""
        known = {box.id for box in boxes}
        by_box: dict[str, list[Sample]] = defaultdict(list)
        for sample in self.store.latest():
            if sample.box in known and sample.quality != "suspect":
                by_box[sample.box].append(sample)
        for box_id, samples in by_box.items():
            at = max(sample.at for sample in samples)
            mapper.guard(box_id).check(samples, poll_time=at)

    # ----------------------------------------------------------------- consumers

    async def _on_samples(self, samples: Sequence[Sample]) -> None:
        mqtt = self._mqtt
        if mqtt is None:
            return
        mqtt.publish_samples(samples)
        for box in {sample.box for sample in samples} - self._online:
            self._online.add(box)
            mqtt.set_availability(box, up=True)

    async def _on_event(self, event: GatewayEvent) -> None:
        mqtt = self._mqtt
        if mqtt is None or event.box is None or event.kind not in ("box_up", "box_down"):
            return
        up = event.kind == "box_up"
        if up:
            self._online.add(event.box)
        else:
            self._online.discard(event.box)
        mqtt.set_availability(event.box, up=up)

    async def _event(
        self,
        kind: EventKind,
        severity: Severity,
        message: str,
        box: str | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        event = GatewayEvent(self._clock(), box, None, kind, severity, message, dict(data or {}))
        try:
            self.store.add_event(event)
        except WeshError as exc:
            _LOG.error("Could not record the %s event: %s", kind, exc)
            return
        await self._on_event(event)

    # ----------------------------------------------------------------- reload

    async def reload(self) -> bool:
        """Read the configuration again and apply it; False (old one kept) on error."""
        async with self._reload_lock:
            self._notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                return await self._reload_once()
            finally:
                self._notifier.notify("READY=1", "STATUS=configuration reloaded")

    async def _reload_once(self) -> bool:
        path = self._config_path
        if path is None:
            _LOG.warning("Reload requested, but no configuration file is known; ignored")
            return False
        old = self._config
        try:
            new = apply_overrides(
                load_config(path), state_dir=self._overrides[0], socket=self._overrides[1]
            )
            drivers = await self._build_drivers(new.boxes, self._drivers)
        except ConfigError as exc:
            _LOG.error("Reload of %s failed, keeping the running configuration: %s", path, exc)
            await self._event(
                "config_error",
                "warning",
                f"configuration not reloaded: {exc}",
                data={"where": exc.where, "error": exc.message},
            )
            return False
        fixed = [name for name in _RESTART_ONLY if getattr(new, name) != getattr(old, name)]
        if fixed:
            _LOG.warning("Reload: changes to %s need a restart of weshd", ", ".join(fixed))
            new = new.model_copy(update={name: getattr(old, name) for name in _RESTART_ONLY})
        old_ids = {box.id: box for box in old.boxes}
        new_ids = {box.id: box for box in new.boxes}
        added = sorted(set(new_ids) - set(old_ids))
        removed = sorted(set(old_ids) - set(new_ids))
        changed = sorted(b for b in set(new_ids) & set(old_ids) if new_ids[b] != old_ids[b])
        assert self._mapper is not None and self._poller is not None  # noqa: S101 - running
        mapper = ChannelMapper(new.boxes, guards=self._mapper.guards)
        self._config = new
        self._drivers = drivers
        self._mapper = mapper
        await self._poller.reconfigure(drivers, new_ids, mapper, poll=new.poll)
        if self._mqtt is not None:
            self._mqtt.update_boxes(new.boxes)
        self._reloads += 1
        summary = f"{len(added)} added, {len(removed)} removed, {len(changed)} changed"
        _LOG.info("Configuration %s reloaded: %s", path, summary)
        await self._event(
            "config_reloaded",
            "info",
            f"configuration reloaded: {summary}",
            data={
                "added": added,
                "removed": removed,
                "changed": changed,
                "restart_needed": fixed,
            },
        )
        return True

    async def _reloader(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            await self.reload()

    # ----------------------------------------------------------------- housekeeping

    async def _pruner(self) -> None:
        while True:
            await asyncio.sleep(self._prune_interval_s)
            for _ in range(100):  # a few batches at a time, then wait for the next round
                try:
                    deleted = await asyncio.to_thread(self.store.prune, self._clock())
                except WeshError as exc:
                    _LOG.warning("Pruning the store failed: %s", exc)
                    break
                if deleted == 0:
                    break
                await asyncio.sleep(1.0)

    def _collect_lags(self) -> PollerStats | None:
        poller = self._poller
        if poller is None:
            return None
        stats = poller.stats(take_lags=True)
        for window, values in (
            (self._lags_for_metrics, stats.lags_s),
            (self._lags_for_log, stats.lags_s),
            (self._durations_for_log, stats.durations_s),
        ):
            if len(window) < _MAX_LAGS:
                window.extend(values[: _MAX_LAGS - len(window)])
        return stats

    def _metrics_counters(self) -> PollerStats:
        stats = self._collect_lags()
        assert stats is not None  # noqa: S101 - metrics are only served while running
        lags, self._lags_for_metrics = tuple(self._lags_for_metrics), array("d")
        return dataclasses.replace(stats, lags_s=lags)

    async def _summary(self) -> None:
        loop = asyncio.get_running_loop()
        previous = self._collect_lags()
        since = loop.time()
        while True:
            await asyncio.sleep(self._stats_interval_s)
            stats = self._collect_lags()
            if stats is None or previous is None:
                continue
            now = loop.time()
            lags, self._lags_for_log = self._lags_for_log, array("d")
            durations, self._durations_for_log = self._durations_for_log, array("d")
            # in a thread: on a large queue the query takes a while (and prune may hold the lock)
            store_stats = await asyncio.to_thread(self.store.stats)
            self._log_summary(
                stats,
                previous,
                elapsed_s=now - since,
                lags=lags,
                durations=durations,
                queue_depth=store_stats.queue_depth,
            )
            previous, since = stats, now

    @staticmethod
    def _log_summary(
        stats: PollerStats,
        previous: PollerStats,
        *,
        elapsed_s: float,
        lags: Sequence[float],
        durations: Sequence[float],
        queue_depth: int,
    ) -> None:
        polls = stats.polls - previous.polls
        summary = lag_summary(lags) or (0.0, 0.0, 0.0)
        took = lag_summary(durations) or (0.0, 0.0, 0.0)
        _LOG.info(
            "Polling summary: %d boxes (%d up, %d down); %d polls in %.1f s (%.1f/s), "
            "%d samples, %d failed, %d timed out, %d slots skipped; lag p50 %.3f s, "
            "p99 %.3f s, max %.3f s; poll time p50 %.3f s, p99 %.3f s; store queue %d, "
            "pending %d",
            stats.boxes,
            stats.boxes_up,
            stats.boxes_down,
            polls,
            elapsed_s,
            polls / elapsed_s if elapsed_s > 0 else 0.0,
            stats.samples - previous.samples,
            stats.failures - previous.failures,
            stats.timeouts - previous.timeouts,
            stats.skipped_slots - previous.skipped_slots,
            *summary,
            took[0],
            took[1],
            queue_depth,
            stats.pending_samples,
        )

    async def _gc_freezer(self) -> None:
        """Move long-lived objects out of the cyclic collector's sight, now and then.

        The store's and the guards' caches hold hundreds of thousands of objects that
        live as long as the process; without this every full collection walks them all
        (0.2-0.5 s with 2,000 boxes, several times a minute), stalling the schedule. Once
        every box has been polled, and then hourly: collect, then ``gc.freeze()``.
        """
        intervals = [box.poll_interval_s for box in self._config.boxes if box.enabled]
        warmup_s = min(max(intervals, default=0.0) + self._config.poll.jitter_s + 2.0, 900.0)
        await asyncio.sleep(warmup_s)
        while True:
            started = time.perf_counter()
            gc.collect()
            gc.freeze()
            _LOG.debug(
                "GC: %d objects frozen (%.3f s)",
                gc.get_freeze_count(),
                time.perf_counter() - started,
            )
            await asyncio.sleep(3600.0)

    async def _watchdog(self) -> None:
        assert self._watchdog_interval_s is not None  # noqa: S101 - started only when set
        while True:
            self._notifier.notify("WATCHDOG=1")
            await asyncio.sleep(self._watchdog_interval_s)

    # ----------------------------------------------------------------- signals

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self) -> None:
        _LOG.info("SIGHUP: reloading the configuration")
        self.request_reload()

    @staticmethod
    def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
