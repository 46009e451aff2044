"""MQTT publishing and Home Assistant discovery, against a real Mosquitto started here."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.gateway.channels import Sample
from wesh.gateway.config import BoxConfig, MqttConfig, SiteConfig
from wesh.gateway.mqtt import (
    MqttPublisher,
    availability_topic,
    discovery_message,
    ha_sensor_class,
    state_message,
    state_topic,
    topic_segment,
    unique_id,
)

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SITE = SiteConfig(id="bat-a", name="Bâtiment A")
BOXES = [
    BoxConfig(id="dw-12", serves="logement-12", label="Logement 12", host="192.0.2.12"),
    BoxConfig(id="tic-1", driver="tic", serves="parties-communes", device="/dev/ttyUSB0"),
]


def sample(
    path: str,
    value: float | int | str | bool,
    unit: str | None,
    *,
    meaning: str,
    kind: str = "gauge",
    box: str = "dw-12",
    label: str | None = None,
    at: datetime = AT,
) -> Sample:
    return Sample(
        box=box,
        channel=f"{box}/{path}",
        path=path,
        at=at,
        value=value,
        unit=unit,
        quality="measured",
        kind=kind,  # type: ignore[arg-type]
        meaning=meaning,  # type: ignore[arg-type]
        label=label,
    )


SAMPLES = [
    sample("tic.1.index.base", 4_567_890, "Wh", meaning="electricity", kind="index", box="tic-1"),
    sample("impulsion.1.index", 81_230, "L", meaning="cold_water", kind="index"),
    sample("impulsion.2.index", 23_450, "L", meaning="hot_water", kind="index", label="ECS"),
    sample("impulsion.3.index", 9_876_000, "L", meaning="gas", kind="index"),
    sample("impulsion.4.index", 3_210_000, "Wh", meaning="heat", kind="index"),
    sample("temp.1", 19.5, "°C", meaning="temperature", label="Séjour"),
    sample("temp.2", 48.0, "%", meaning="humidity"),
    sample("pince.1.current", 2.5, "A", meaning="current"),
    sample("pince.1.voltage", 231.0, "V", meaning="voltage"),
    sample("pince.1.power_w", 560.0, "W", meaning="power"),
    sample("tic.1.power_va", 1200, "VA", meaning="power", box="tic-1"),
    sample("tic.1.period", "HC..", None, meaning="text", kind="text", box="tic-1"),
    sample("relais.1", True, None, meaning="state", kind="state"),
]

# (device_class, state_class, unit) Home Assistant must be told, by path
EXPECTED_CLASSES = {
    "tic.1.index.base": ("energy", "total_increasing", "Wh"),
    "impulsion.1.index": ("water", "total_increasing", "L"),
    "impulsion.2.index": ("water", "total_increasing", "L"),
    "impulsion.3.index": ("gas", "total_increasing", "m³"),
    "impulsion.4.index": ("energy", "total_increasing", "Wh"),
    "temp.1": ("temperature", "measurement", "°C"),
    "temp.2": ("humidity", "measurement", "%"),
    "pince.1.current": ("current", "measurement", "A"),
    "pince.1.voltage": ("voltage", "measurement", "V"),
    "pince.1.power_w": ("power", "measurement", "W"),
    "tic.1.power_va": ("apparent_power", "measurement", "VA"),
    "tic.1.period": (None, None, None),
    "relais.1": (None, None, None),
}


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("item", SAMPLES, ids=lambda s: s.path)
def test_ha_classes(item: Sample) -> None:
    sensor = ha_sensor_class(item.meaning, item.kind, item.unit)
    assert (sensor.device_class, sensor.state_class, sensor.unit) == EXPECTED_CLASSES[item.path]


def test_unusual_units_keep_no_device_class() -> None:
    assert ha_sensor_class("electricity", "index", "pulses").device_class is None
    assert ha_sensor_class("electricity", "index", "pulses").state_class == "total_increasing"
    assert ha_sensor_class("other", "gauge", "GB").device_class is None
    assert ha_sensor_class("other", "gauge", "GB").state_class == "measurement"
    assert ha_sensor_class("humidity", "gauge", "g/m³").device_class is None


def test_gas_in_litres_is_shown_in_cubic_metres() -> None:
    sensor = ha_sensor_class("gas", "index", "L")
    assert sensor.value_template == "{{ value_json.value / 1000 }}"


def test_discovery_payload() -> None:
    message = discovery_message(
        prefix="wesh",
        discovery_prefix="homeassistant",
        site="bat-a",
        sample=SAMPLES[2],
        box=BOXES[0],
    )
    assert message.topic == "homeassistant/sensor/wesh_bat-a_dw-12_impulsion_2_index/config"
    assert message.retain
    config = json.loads(message.payload)
    assert config["name"] == "ECS"
    assert config["unique_id"] == "wesh_bat-a_dw-12_impulsion_2_index"
    assert config["state_topic"] == "wesh/bat-a/dw-12/impulsion.2.index"
    assert config["value_template"] == "{{ value_json.value }}"
    assert config["availability"] == [
        {"topic": "wesh/bat-a/availability"},
        {"topic": "wesh/bat-a/dw-12/availability"},
    ]
    assert config["availability_mode"] == "all"
    assert config["device"] == {
        "identifiers": ["wesh_bat-a_dw-12"],
        "name": "dw-12 (Logement 12)",
        "manufacturer": "Cartelectronic",
        "model": "WES",
        "suggested_area": "logement-12",
    }
    assert (config["device_class"], config["state_class"]) == ("water", "total_increasing")
    assert config["unit_of_measurement"] == "L"


def test_state_payload() -> None:
    message = state_message("wesh", "bat-a", SAMPLES[5])
    assert message.topic == "wesh/bat-a/dw-12/temp.1"
    assert json.loads(message.payload) == {
        "value": 19.5,
        "unit": "°C",
        "quality": "measured",
        "at": "2024-03-01T12:00:00+00:00",
        "box_time": None,
    }


@given(st.text())
def test_topic_segments_are_single_safe_levels(text: str) -> None:
    segment = topic_segment(text)
    assert segment
    assert not set(segment) & {"/", "+", "#", "\x00"}
    topic = state_topic("wesh", "bat-a", "dw-12", text)
    assert topic.count("/") == 3


@given(st.text(), st.text(), st.text())
def test_unique_ids_use_safe_characters(site: str, box: str, path: str) -> None:
    uid = unique_id(site, box, path)
    assert uid.startswith("wesh_")
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in uid)


def test_availability_topics() -> None:
    assert availability_topic("wesh", "bat-a") == "wesh/bat-a/availability"
    assert availability_topic("wesh", "bat-a", "dw-12") == "wesh/bat-a/dw-12/availability"


# ----------------------------------------------------------------------------- a real broker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Broker:
    """A private Mosquitto on 127.0.0.1 (anonymous, no persistence)."""

    binary: str
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\n",
            encoding="utf-8",
        )
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log_text = (self.directory / "mosquitto.log").read_text(errors="replace")
                    raise RuntimeError(f"mosquitto did not start:\n{log_text}") from None
                time.sleep(0.02)  # waiting for another process to listen
            else:
                return

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def _mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is required under CI (apt-get install mosquitto)")
        pytest.skip("mosquitto is not installed")
    return found


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(_mosquitto_binary(), tmp_path, _free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def stopped_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker not started yet (the test starts it)."""
    waiting = Broker(_mosquitto_binary(), tmp_path, _free_port())
    yield waiting
    waiting.stop()


def _config(port: int) -> MqttConfig:
    return MqttConfig(enabled=True, host="127.0.0.1", port=port)


def _publisher(port: int, **kwargs: object) -> MqttPublisher:
    return MqttPublisher(
        _config(port),
        site=SITE,
        boxes=BOXES,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        timeout_s=5,
        **kwargs,  # type: ignore[arg-type]
    )


async def _until(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait for a condition that another process or task makes true."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - set by a broker process or a task
            await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Seen:
    payload: bytes
    retain: bool


async def _collect(
    port: int, done: Callable[[dict[str, Seen]], bool], timeout_s: float = 10
) -> dict[str, Seen]:
    """Subscribe to everything and gather the last message of each topic until ``done``."""
    seen: dict[str, Seen] = {}
    async with aiomqtt.Client("127.0.0.1", port, identifier="test-subscriber") as client:
        await client.subscribe("#", qos=1)
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                seen[str(message.topic)] = Seen(payload, bool(message.retain))
                if done(seen):
                    break
    return seen


def _has(*topics: str) -> Callable[[dict[str, Seen]], bool]:
    return lambda seen: all(topic in seen for topic in topics)


def _state(seen: dict[str, Seen], box: str, path: str) -> object:
    return json.loads(seen[f"wesh/bat-a/{box}/{path}"].payload)["value"]


ALL_TOPICS = [
    *(f"wesh/bat-a/{s.box}/{s.path}" for s in SAMPLES),
    *(f"homeassistant/sensor/{unique_id('bat-a', s.box, s.path)}/config" for s in SAMPLES),
    "wesh/bat-a/availability",
    "wesh/bat-a/dw-12/availability",
]


async def test_discovery_and_retained_states(broker: Broker) -> None:
    async with _publisher(broker.port) as publisher:
        publisher.publish_samples(SAMPLES)
        publisher.set_availability("dw-12", up=True)
        live = await _collect(broker.port, _has(*ALL_TOPICS))
        assert set(ALL_TOPICS) <= set(live)
        # a subscriber that comes later gets everything from the broker's retained store
        later = await _collect(broker.port, _has(*ALL_TOPICS))
        assert all(later[topic].retain for topic in ALL_TOPICS)
        assert publisher.connected
        assert publisher.dropped == 0
        assert publisher.published >= len(ALL_TOPICS) - 1
    for item in SAMPLES:
        uid = unique_id("bat-a", item.box, item.path)
        config = json.loads(later[f"homeassistant/sensor/{uid}/config"].payload)
        got = (
            config.get("device_class"),
            config.get("state_class"),
            config.get("unit_of_measurement"),
        )
        assert got == EXPECTED_CLASSES[item.path], item.path
        assert config["state_topic"] == f"wesh/bat-a/{item.box}/{item.path}"
        assert config["unique_id"] == uid
        assert _state(later, item.box, item.path) == item.value
    assert later["wesh/bat-a/dw-12/availability"].payload == b"online"
    tic = json.loads(
        later[
            f"homeassistant/sensor/{unique_id('bat-a', 'tic-1', 'tic.1.power_va')}/config"
        ].payload
    )
    assert tic["device"]["manufacturer"] == "Enedis"
    # leaving says "offline" for the whole gateway (retained)
    after = await _collect(broker.port, _has("wesh/bat-a/availability"))
    assert after["wesh/bat-a/availability"].payload == b"offline"


async def test_availability_follows_box_edges(broker: Broker) -> None:
    async with _publisher(broker.port) as publisher:
        publisher.publish_samples(SAMPLES[:1])
        publisher.set_availability("tic-1", up=True)
        publisher.set_availability("tic-1", up=False)
        seen = await _collect(
            broker.port,
            lambda s: (
                s.get("wesh/bat-a/tic-1/availability", Seen(b"", False)).payload == b"offline"
            ),
        )
        assert seen["wesh/bat-a/availability"].payload == b"online"


async def test_broker_restart_reconnects_and_republishes(broker: Broker) -> None:
    async with _publisher(broker.port) as publisher:
        publisher.publish_samples(SAMPLES)
        publisher.set_availability("dw-12", up=True)
        await _collect(broker.port, _has(*ALL_TOPICS))
        broker.stop()  # no persistence: every retained message is lost
        await _until(lambda: not publisher.connected)
        later = sample("temp.1", 21.0, "°C", meaning="temperature", at=AT + timedelta(minutes=1))
        publisher.publish_samples([later])  # queued while the broker is away
        broker.start()
        await _until(lambda: publisher.connections == 2)
        seen = await _collect(
            broker.port,
            lambda s: _has(*ALL_TOPICS)(s) and _state(s, "dw-12", "temp.1") == 21.0,
        )
        assert set(ALL_TOPICS) <= set(seen)
        assert seen["wesh/bat-a/availability"].payload == b"online"
        assert seen["wesh/bat-a/dw-12/availability"].payload == b"online"
        assert _state(seen, "dw-12", "pince.1.voltage") == 231.0
        assert publisher.dropped == 0


async def test_queue_drops_oldest_while_the_broker_is_away(stopped_broker: Broker) -> None:
    series = [
        sample("temp.1", float(n), "°C", meaning="temperature", at=AT + timedelta(minutes=n))
        for n in range(30)
    ]
    async with _publisher(stopped_broker.port, queue_max=10) as publisher:
        for item in series:
            publisher.publish_samples([item])  # never blocks, never raises
        assert publisher.queue_depth == 10
        assert publisher.dropped == 21  # 30 states + 1 discovery, 10 kept
        assert not publisher.connected
        stopped_broker.start()
        await _until(lambda: publisher.connected)
        uid = unique_id("bat-a", "dw-12", "temp.1")
        config_topic = f"homeassistant/sensor/{uid}/config"
        seen = await _collect(
            stopped_broker.port,
            lambda s: config_topic in s and _state(s, "dw-12", "temp.1") == 29.0,
        )
        # the discovery message was dropped from the queue but not forgotten
        assert json.loads(seen[config_topic].payload)["device_class"] == "temperature"


async def test_removed_box_disappears_from_home_assistant(broker: Broker) -> None:
    tic_config = f"homeassistant/sensor/{unique_id('bat-a', 'tic-1', 'tic.1.power_va')}/config"
    async with _publisher(broker.port) as publisher:
        publisher.publish_samples(SAMPLES)
        await _collect(broker.port, _has(tic_config))
        publisher.update_boxes(BOXES[:1])
        await _until(lambda: publisher.queue_depth == 0)
        seen = await _collect(
            broker.port,
            lambda s: (
                s.get("wesh/bat-a/tic-1/availability", Seen(b"", False)).payload == b"offline"
            ),
        )
        assert tic_config not in seen  # the empty retained config deleted it


async def test_close_while_backing_off_is_quick(stopped_broker: Broker) -> None:
    backing_off = asyncio.Event()

    async def sleep(delay_s: float) -> None:
        backing_off.set()
        await asyncio.sleep(delay_s * 100)  # closing must not wait for this

    publisher = _publisher(stopped_broker.port, sleep=sleep)
    async with asyncio.timeout(5):
        async with publisher:
            publisher.publish_samples(SAMPLES[:2])
            await asyncio.wait_for(backing_off.wait(), timeout=10)
            assert publisher.connections == 0
    assert publisher.queue_depth == 4  # 2 discoveries + 2 states, kept


async def test_publisher_with_its_own_sleep(stopped_broker: Broker) -> None:
    delays: list[float] = []
    started = asyncio.Event()

    async def sleep(delay_s: float) -> None:
        delays.append(delay_s)
        if len(delays) == 4:
            started.set()
        await asyncio.sleep(0)

    publisher = _publisher(stopped_broker.port, sleep=sleep)
    async with publisher:
        await asyncio.wait_for(started.wait(), timeout=10)
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # doubling up to backoff_max_s
