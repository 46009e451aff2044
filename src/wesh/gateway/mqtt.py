"""MQTT publishing of readings, with Home Assistant discovery (aiomqtt).

Topics (``prefix`` is ``mqtt.topic_prefix``, ``wesh`` by default; all retained)::

    <prefix>/<site>/availability          "online" / "offline" (also the last will)
    <prefix>/<site>/<box>/availability    "online" / "offline" (box up / down)
    <prefix>/<site>/<box>/<path>          {"value": 230.1, "unit": "V", "quality": "measured",
                                           "at": "2024-…Z", "box_time": "2024-…+01:00" | null}
    <discovery>/sensor/<unique_id>/config Home Assistant discovery of each channel

A channel's discovery message is sent before its first state; it names the device class,
unit and state class (indexes of energy, water and gas are ``total_increasing``;
temperature, humidity, current, voltage and power are ``measurement``) and makes the
entity available only while both the gateway and its box are online.

Publishing never blocks polling: :meth:`MqttPublisher.publish_samples` only appends to a
bounded queue, which drops its oldest message (counted in :attr:`MqttPublisher.dropped`)
while the broker is away. The last payload of every retained topic is also kept, so that
after a reconnection (the broker may have restarted without persistence) everything is
published again: discovery, availability and the latest state of every channel.
Reconnection backs off exponentially; the outage is logged once when it starts and once
when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiomqtt

from wesh import __version__

if TYPE_CHECKING:
    from wesh.gateway.channels import Sample
    from wesh.gateway.config import BoxConfig, MqttConfig, SiteConfig

__all__ = [
    "HaSensorClass",
    "MqttMessage",
    "MqttPublisher",
    "availability_topic",
    "discovery_message",
    "ha_sensor_class",
    "state_message",
    "state_topic",
    "topic_segment",
    "unique_id",
]

_LOG = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"


# ----------------------------------------------------------------------------- pure: topics


def topic_segment(text: str) -> str:
    """Make ``text`` one safe topic level: no ``/``, ``+``, ``#`` or NUL, never empty."""
    cleaned = re.sub(r"[/+#\x00]", "_", text)
    return cleaned or "_"


def unique_id(site: str, box: str, path: str) -> str:
    """Home Assistant's unique id of a channel (letters, digits, ``_`` and ``-`` only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"wesh_{site}_{box}_{path}")


def state_topic(prefix: str, site: str, box: str, path: str) -> str:
    """``<prefix>/<site>/<box>/<path>``."""
    return "/".join((prefix, topic_segment(site), topic_segment(box), topic_segment(path)))


def availability_topic(prefix: str, site: str, box: str | None = None) -> str:
    """Of the gateway (``box=None``) or of one box."""
    parts = [prefix, topic_segment(site)]
    if box is not None:
        parts.append(topic_segment(box))
    return "/".join([*parts, "availability"])


# ----------------------------------------------------------------------------- pure: HA classes


@dataclass(frozen=True, slots=True)
class HaSensorClass:
    """How Home Assistant should see a channel."""

    device_class: str | None
    state_class: str | None
    unit: str | None
    value_template: str = "{{ value_json.value }}"


_INDEX_CLASSES: Mapping[str, tuple[str, frozenset[str]]] = {
    # meaning: (device class, units Home Assistant accepts for it)
    "electricity": ("energy", frozenset({"Wh", "kWh", "MWh"})),
    "heat": ("energy", frozenset({"Wh", "kWh", "MWh"})),
    "cold_water": ("water", frozenset({"L", "m³", "gal", "ft³"})),
    "hot_water": ("water", frozenset({"L", "m³", "gal", "ft³"})),
    "gas": ("gas", frozenset({"m³", "ft³", "CCF"})),
}

_GAUGE_BY_UNIT: Mapping[str, str] = {
    "°C": "temperature",
    "A": "current",
    "V": "voltage",
    "W": "power",
    "VA": "apparent_power",
}

_GAUGE_BY_MEANING: Mapping[str, tuple[str, frozenset[str]]] = {
    "temperature": ("temperature", frozenset({"°C", "°F", "K"})),
    "humidity": ("humidity", frozenset({"%"})),
    "current": ("current", frozenset({"A", "mA"})),
    "voltage": ("voltage", frozenset({"V", "mV"})),
    "power": ("power", frozenset({"W", "kW"})),
}


def ha_sensor_class(meaning: str, kind: str, unit: str | None) -> HaSensorClass:
    """Device class, state class and unit of a channel for Home Assistant.

    Indexes of energy, water and gas are ``total_increasing`` (a counter reset is then
    understood as a new meter); gas in litres is shown in m³ (Home Assistant has no litre
    for gas). Gauges are ``measurement``; states and texts have no class.
    """
    if kind in ("state", "text"):
        return HaSensorClass(None, None, None)
    if kind == "index":
        device_class, units = _INDEX_CLASSES.get(meaning, (None, frozenset()))
        if device_class == "gas" and unit == "L":
            return HaSensorClass("gas", "total_increasing", "m³", "{{ value_json.value / 1000 }}")
        if device_class is None or unit not in units:
            return HaSensorClass(None, "total_increasing", unit)
        return HaSensorClass(device_class, "total_increasing", unit)
    by_meaning = _GAUGE_BY_MEANING.get(meaning)
    if by_meaning is not None and unit in by_meaning[1]:
        return HaSensorClass(by_meaning[0], "measurement", unit)
    if meaning == "power" and unit == "VA":
        return HaSensorClass("apparent_power", "measurement", unit)
    return HaSensorClass(_GAUGE_BY_UNIT.get(unit or ""), "measurement", unit)


# ----------------------------------------------------------------------------- pure: messages


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One message to publish (retained unless said otherwise)."""

    topic: str
    payload: bytes
    retain: bool = True


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def state_message(prefix: str, site: str, sample: Sample) -> MqttMessage:
    """Build the retained state of a channel: its value, unit, quality and times, as JSON."""
    payload = {
        "value": sample.value,
        "unit": sample.unit,
        "quality": sample.quality,
        "at": sample.at.isoformat(),
        "box_time": sample.box_time.isoformat() if sample.box_time else None,
    }
    return MqttMessage(state_topic(prefix, site, sample.box, sample.path), _json(payload))


@dataclass(frozen=True, slots=True)
class _Device:
    name: str
    model: str
    manufacturer: str
    area: str | None


def _device(box: BoxConfig | None, box_id: str) -> _Device:
    if box is None:
        return _Device(box_id, "WES", "Cartelectronic", None)
    name = f"{box.id} ({box.label})" if box.label else box.id
    if box.driver == "tic":
        return _Device(name, "TIC meter (serial)", "Enedis", box.serves)
    return _Device(name, "WES", "Cartelectronic", box.serves)


def discovery_message(
    *,
    prefix: str,
    discovery_prefix: str,
    site: str,
    sample: Sample,
    box: BoxConfig | None = None,
) -> MqttMessage:
    """Build the Home Assistant discovery message of the channel of ``sample``."""
    uid = unique_id(site, sample.box, sample.path)
    sensor = ha_sensor_class(sample.meaning, sample.kind, sample.unit)
    device = _device(box, sample.box)
    config: dict[str, Any] = {
        "name": sample.label or sample.path,
        "unique_id": uid,
        "object_id": uid,
        "state_topic": state_topic(prefix, site, sample.box, sample.path),
        "value_template": sensor.value_template,
        "json_attributes_topic": state_topic(prefix, site, sample.box, sample.path),
        "availability": [
            {"topic": availability_topic(prefix, site)},
            {"topic": availability_topic(prefix, site, sample.box)},
        ],
        "availability_mode": "all",
        "device": {
            "identifiers": [re.sub(r"[^A-Za-z0-9_-]", "_", f"wesh_{site}_{sample.box}")],
            "name": device.name,
            "manufacturer": device.manufacturer,
            "model": device.model,
        },
        "origin": {"name": "wesh", "sw_version": __version__},
    }
    if device.area:
        config["device"]["suggested_area"] = device.area
    for key, value in (
        ("device_class", sensor.device_class),
        ("state_class", sensor.state_class),
        ("unit_of_measurement", sensor.unit),
    ):
        if value is not None:
            config[key] = value
    return MqttMessage(f"{discovery_prefix}/sensor/{uid}/config", _json(config))


# ----------------------------------------------------------------------------- the publisher


class MqttPublisher:
    """Publishes samples and availability to an MQTT broker, with HA discovery.

    Use as an async context manager (it runs a background task while open), then call
    :meth:`publish_samples`, :meth:`set_availability` and :meth:`update_boxes` from the
    poller's callbacks: they never block.

    Args:
        config: the ``[mqtt]`` section (host, port, credentials, prefixes).
        site: the site; its id is the second topic level.
        boxes: the configured boxes (device names in Home Assistant).
        queue_max: messages kept while the broker is away (oldest dropped first).
        backoff_initial_s / backoff_max_s: reconnection delays (doubling).
        timeout_s: time allowed to connect and for each publication.
        stop_flush_s: at exit, time allowed to send what is queued and "offline".
        sleep: the sleep used between reconnection attempts (tests may pass another).
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        site: SiteConfig,
        boxes: Sequence[BoxConfig] = (),
        queue_max: int = 10_000,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        timeout_s: float = 10.0,
        stop_flush_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._site = site.id
        self._boxes: dict[str, BoxConfig] = {box.id: box for box in boxes}
        self._queue: deque[MqttMessage] = deque()
        self._queue_max = max(1, queue_max)
        self._retained: dict[str, MqttMessage] = {}
        self._discovered: dict[str, tuple[object, ...]] = {}  # channel -> what its config says
        self._discovery_topics: dict[str, set[str]] = {}  # box -> discovery topics
        self._wake = asyncio.Event()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._timeout_s = timeout_s
        self._stop_flush_s = stop_flush_s
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight: MqttMessage | None = None
        self._outage_logged = False
        self._overflow_logged = False
        self.connected = False
        self.connections = 0
        self.published = 0
        self.dropped = 0

    # ---------------------------------------------------------------- producer side (sync)

    @property
    def queue_depth(self) -> int:
        """Messages waiting to be published."""
        return len(self._queue)

    def publish_samples(self, samples: Iterable[Sample]) -> None:
        """Queue the state (and, the first time, the discovery) of each sample's channel."""
        prefix = self._config.topic_prefix
        for sample in samples:
            signature = (sample.meaning, sample.kind, sample.unit, sample.label)
            if self._discovered.get(sample.channel) != signature:
                self._discovered[sample.channel] = signature
                message = discovery_message(
                    prefix=prefix,
                    discovery_prefix=self._config.discovery_prefix,
                    site=self._site,
                    sample=sample,
                    box=self._boxes.get(sample.box),
                )
                self._discovery_topics.setdefault(sample.box, set()).add(message.topic)
                self._enqueue(message)
            self._enqueue(state_message(prefix, self._site, sample))

    def set_availability(self, box: str, *, up: bool) -> None:
        """Queue the availability of a box (after an up or down edge)."""
        topic = availability_topic(self._config.topic_prefix, self._site, box)
        self._enqueue(MqttMessage(topic, ONLINE if up else OFFLINE))

    def update_boxes(self, boxes: Sequence[BoxConfig]) -> None:
        """Take a new configuration: removed boxes disappear from Home Assistant."""
        new = {box.id: box for box in boxes}
        for box_id in set(self._boxes) - set(new):
            for topic in sorted(self._discovery_topics.pop(box_id, set())):
                self._enqueue(MqttMessage(topic, b""))  # an empty retained config deletes
            self.set_availability(box_id, up=False)
            self._discovered = {
                channel: sig
                for channel, sig in self._discovered.items()
                if not channel.startswith(f"{box_id}/")
            }
        self._boxes = new

    def _enqueue(self, message: MqttMessage) -> None:
        if message.retain:
            self._retained[message.topic] = message
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
            if not self._overflow_logged:
                self._overflow_logged = True
                _LOG.warning(
                    "MQTT queue full (%d messages): dropping the oldest until the broker is back",
                    self._queue_max,
                )
        self._queue.append(message)
        self._wake.set()

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start the background task (connect, publish, reconnect)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="weshd-mqtt")

    async def aclose(self) -> None:
        """Send what is queued and "offline" (within ``stop_flush_s``), then disconnect."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        if not self.connected:
            task.cancel()
        try:
            await asyncio.wait_for(task, timeout=self._stop_flush_s)
        except (TimeoutError, asyncio.CancelledError):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        self.connected = False

    # ---------------------------------------------------------------- consumer side (task)

    def _client(self) -> aiomqtt.Client:
        config = self._config
        password = config.password.get_secret_value() if config.password else None
        will = aiomqtt.Will(
            availability_topic(config.topic_prefix, self._site), OFFLINE, qos=1, retain=True
        )
        return aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=password,
            identifier=f"weshd-{self._site}",
            will=will,
            timeout=self._timeout_s,
        )

    async def _run(self) -> None:
        delay_s = self._backoff_initial_s
        while not self._is_stopping():
            try:
                async with self._client() as client:
                    self._connected()
                    delay_s = self._backoff_initial_s
                    await self._session(client)
                    return  # stopping: everything was sent
            except (aiomqtt.MqttError, OSError) as exc:
                self._disconnected(exc)
            if self._is_stopping():
                return
            await self._sleep(delay_s)
            delay_s = min(delay_s * 2, self._backoff_max_s)

    def _is_stopping(self) -> bool:
        return self._stopping

    def _connected(self) -> None:
        self.connected = True
        self.connections += 1
        self._overflow_logged = False
        if self._outage_logged:
            _LOG.info("MQTT broker %s:%d reachable again", self._config.host, self._config.port)
        self._outage_logged = False

    def _disconnected(self, exc: Exception) -> None:
        was_connected, self.connected = self.connected, False
        if self._inflight is not None:
            self._queue.appendleft(self._inflight)
            self._inflight = None
            if len(self._queue) > self._queue_max:
                self._queue.pop()
                self.dropped += 1
        if not self._outage_logged:
            self._outage_logged = True
            _LOG.warning(
                "MQTT broker %s:%d %s (%s); retrying with backoff, readings are queued",
                self._config.host,
                self._config.port,
                "lost" if was_connected else "unreachable",
                exc,
            )

    async def _session(self, client: aiomqtt.Client) -> None:
        site_topic = availability_topic(self._config.topic_prefix, self._site)
        await client.publish(site_topic, ONLINE, qos=1, retain=True)
        pending = {message.topic for message in self._queue}
        for message in list(self._retained.values()):
            if message.topic not in pending:
                await self._publish(client, message)
        drain = asyncio.create_task(self._drain(client))
        watch = asyncio.create_task(self._watch(client))
        try:
            done, _ = await asyncio.wait({drain, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (drain, watch):
                task.cancel()
            await asyncio.gather(drain, watch, return_exceptions=True)
        for task in done:
            task.result()  # raises MqttError on a lost connection
        await client.publish(site_topic, OFFLINE, qos=1, retain=True)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Return (raise MqttError) when the connection drops, even if nothing is sent."""
        async for _ in client.messages:
            pass

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Publish queued messages until stopping with an empty queue."""
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._publish(client, self._queue.popleft())

    async def _publish(self, client: aiomqtt.Client, message: MqttMessage) -> None:
        self._inflight = message
        await client.publish(
            message.topic, message.payload, qos=1, retain=message.retain, timeout=self._timeout_s
        )
        self._inflight = None
        self.published += 1
