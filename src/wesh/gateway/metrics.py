"""Prometheus metrics of weshd, in a registry of their own (never the global one).

Most figures are read at scrape time from the gateway's state (box status, store
statistics), so nothing has to be pushed to keep them fresh::

    wesh_box_up{box}                        1 up, 0 down (boxes never polled are absent)
    wesh_box_consecutive_failures{box}      failed polls in a row
    wesh_boxes{state="up|down|unknown"}     enabled boxes by state
    wesh_store_rows                         rows of readings kept
    wesh_store_db_bytes                     size of the database files
    wesh_store_queue_depth                  readings not yet acknowledged by headquarters
    wesh_store_degraded                     1 while the store cannot write (disk full)
    wesh_polls_total, wesh_poll_failures_total, wesh_poll_timeouts_total
                                            from the poller's counters, when given
    wesh_poll_lag_seconds                   histogram of the delay of polls after their due time
    wesh_mqtt_connected, wesh_mqtt_published_total, wesh_mqtt_dropped_total
                                            from the MQTT publisher, when given

The poll lags are handed over by the poller at each scrape (``lags_s``) and observed
into the histogram then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wesh.errors import WeshError

if TYPE_CHECKING:
    from wesh.gateway.api import GatewayState

__all__ = ["CONTENT_TYPE", "LAG_BUCKETS_S", "GatewayMetrics", "MqttCounters", "PollCounters"]

_LOG = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :meth:`GatewayMetrics.render`'s output."""

LAG_BUCKETS_S = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))


class PollCounters(Protocol):
    """What the poller reports (its ``PollerStats`` fits): totals since start, fresh lags."""

    @property
    def polls(self) -> int: ...  # noqa: D102
    @property
    def failures(self) -> int: ...  # noqa: D102
    @property
    def timeouts(self) -> int: ...  # noqa: D102
    @property
    def lags_s(self) -> Sequence[float]: ...  # noqa: D102


class MqttCounters(Protocol):
    """What the MQTT publisher reports (:class:`wesh.gateway.mqtt.MqttPublisher` fits)."""

    @property
    def connected(self) -> bool: ...  # noqa: D102
    @property
    def published(self) -> int: ...  # noqa: D102
    @property
    def dropped(self) -> int: ...  # noqa: D102


class GatewayMetrics:
    """The metrics of one gateway.

    Args:
        state: the gateway state read at each scrape (box status, store statistics).
        poll_stats: returns the poller's counters and hands over the lags recorded since
            the previous call (e.g. ``lambda: poller.stats(take_lags=True)``).
        mqtt: the MQTT publisher, if MQTT is enabled.
    """

    def __init__(
        self,
        state: GatewayState,
        *,
        poll_stats: Callable[[], PollCounters] | None = None,
        mqtt: MqttCounters | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._poll_stats = poll_stats
        self.poll_lag = Histogram(
            "wesh_poll_lag_seconds",
            "Delay of polls after their due time.",
            buckets=LAG_BUCKETS_S,
            registry=None,
        )
        # collected in registration order: the state collector hands the fresh lags to
        # the histogram before the histogram itself is collected
        self.registry.register(_StateCollector(state, poll_stats=self._take_poll_counters))
        if poll_stats is not None:
            self.registry.register(self.poll_lag)
        if mqtt is not None:
            self.registry.register(_MqttCollector(mqtt))

    def _take_poll_counters(self) -> PollCounters | None:
        if self._poll_stats is None:
            return None
        counters = self._poll_stats()
        for lag_s in counters.lags_s:
            self.poll_lag.observe(max(0.0, lag_s))
        return counters

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class _StateCollector(Collector):
    """Figures read from the gateway state at scrape time."""

    def __init__(
        self, state: GatewayState, *, poll_stats: Callable[[], PollCounters | None]
    ) -> None:
        self._state = state
        self._poll_stats = poll_stats

    def collect(self) -> Iterable[Metric]:
        yield from self._boxes()
        yield from self._store()
        counters = self._poll_stats()
        if counters is not None:
            yield _counter("wesh_polls", "Polls done since start.", counters.polls)
            yield _counter("wesh_poll_failures", "Polls that failed.", counters.failures)
            yield _counter("wesh_poll_timeouts", "Polls that timed out.", counters.timeouts)

    def _boxes(self) -> Iterator[Metric]:
        status = self._state.status()
        enabled = [box.id for box in self._state.boxes() if box.enabled]
        up = GaugeMetricFamily(
            "wesh_box_up", "1 if the box answered its last poll.", labels=["box"]
        )
        failures = GaugeMetricFamily(
            "wesh_box_consecutive_failures", "Failed polls in a row.", labels=["box"]
        )
        counts = {"up": 0, "down": 0, "unknown": 0}
        for box in enabled:
            runtime = status.get(box)
            if runtime is None or runtime.up is None:
                counts["unknown"] += 1
                continue
            counts["up" if runtime.up else "down"] += 1
            up.add_metric([box], 1.0 if runtime.up else 0.0)
            failures.add_metric([box], float(runtime.consecutive_failures))
        by_state = GaugeMetricFamily("wesh_boxes", "Enabled boxes by state.", labels=["state"])
        for name, count in counts.items():
            by_state.add_metric([name], float(count))
        yield from (up, failures, by_state)

    def _store(self) -> Iterator[Metric]:
        try:
            stats = self._state.store.stats()
        except WeshError as exc:
            _LOG.warning("Store statistics unavailable for the metrics: %s", exc)
            return
        figures: Mapping[str, tuple[str, float]] = {
            "wesh_store_rows": ("Rows of readings kept.", float(stats.rows)),
            "wesh_store_db_bytes": ("Size of the database files.", float(stats.db_bytes)),
            "wesh_store_queue_depth": (
                "Readings not yet acknowledged by headquarters.",
                float(stats.queue_depth),
            ),
            "wesh_store_degraded": (
                "1 while the store cannot write (disk full).",
                1.0 if stats.degraded else 0.0,
            ),
        }
        for name, (documentation, value) in figures.items():
            yield _gauge(name, documentation, value)


class _MqttCollector(Collector):
    """Figures of the MQTT publisher."""

    def __init__(self, mqtt: MqttCounters) -> None:
        self._mqtt = mqtt

    def collect(self) -> Iterable[Metric]:
        mqtt = self._mqtt
        yield _gauge(
            "wesh_mqtt_connected", "1 while connected to the broker.", float(mqtt.connected)
        )
        yield _counter("wesh_mqtt_published", "Messages published.", mqtt.published)
        yield _counter(
            "wesh_mqtt_dropped", "Messages dropped while the broker was away.", mqtt.dropped
        )
