"""MqttTransport against a real Mosquitto started by the test (tests/gateway's fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from tests.gateway.test_mqtt import Broker, broker, stopped_broker
from wesh.errors import ConnectionFailed, TransientError, UsageError
from wesh.sync.mqtt import MqttTransport, check_site_id, down_topic, up_topic
from wesh.sync.transport import Message, SendStatus, Transport

__all__ = ["broker", "stopped_broker"]  # fixtures, imported for pytest

LONG = "".join(f"{i:04X}" for i in range(9_818))  # 39,272 characters: the largest packet, whole


def transport(port: int, role: str, site: str | None = None, **kwargs: object) -> MqttTransport:
    return MqttTransport(
        host="127.0.0.1",
        port=port,
        role=role,  # type: ignore[arg-type]
        site=site,
        timeout_s=2,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        **kwargs,  # type: ignore[arg-type]
    )


async def take(
    messages: AsyncIterator[Message], count: int, timeout_s: float = 10
) -> list[Message]:
    async with asyncio.timeout(timeout_s):
        return [await anext(messages) for _ in range(count)]


async def until(predicate, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)  # waiting for the broker, not for time


def test_topics_and_ids() -> None:
    assert up_topic("wesh/sync", "res-b1") == "wesh/sync/res-b1/up"
    assert down_topic("wesh/sync", "res-b1") == "wesh/sync/res-b1/down"
    for bad in ("", "a/b", "a+b", "#", "x" * 65, 3):
        with pytest.raises(UsageError):
            check_site_id(bad)
    with pytest.raises(UsageError):
        MqttTransport(host="h", role="site")  # a site needs its id
    with pytest.raises(UsageError):
        MqttTransport(host="h", role="hq", site="x")
    with pytest.raises(UsageError):
        MqttTransport(host="h", role="relay", site="x")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        MqttTransport(host="h", role="hq", prefix="wesh/#")


async def test_site_and_hq_exchange_through_mosquitto(broker: Broker) -> None:
    async with (
        transport(broker.port, "site", "site-a") as site,
        transport(broker.port, "site", "site-b") as other,
        transport(broker.port, "hq") as hq,
        aiomqtt.Client("127.0.0.1", broker.port) as spy,
    ):
        assert isinstance(site, Transport)
        await spy.subscribe("wesh/sync/#", qos=1)
        await asyncio.gather(*(t.wait_connected(10) for t in (site, other, hq)))
        at_hq, at_site, at_other = hq.messages(), site.messages(), other.messages()
        receipt = await site.send("hq", LONG)
        assert receipt.status is SendStatus.SENT and await receipt.wait(0) is SendStatus.SENT
        await other.send("hq", "B0")
        got = await take(at_hq, 2)
        assert sorted((m.peer, m.text, m.parts) for m in got) == [
            ("site-a", LONG, 1),
            ("site-b", "B0", 1),
        ]
        await hq.send("site-a", "ACCE55")
        assert [(m.peer, m.text) for m in await take(at_site, 1)] == [("hq", "ACCE55")]
        seen = await take_raw(spy, 3)
        assert sorted(seen) == sorted(
            [
                ("wesh/sync/site-a/up", LONG.encode(), 1, False),
                ("wesh/sync/site-b/up", b"B0", 1, False),
                ("wesh/sync/site-a/down", b"ACCE55", 1, False),
            ]
        )
        with pytest.raises(TimeoutError):
            await take(at_other, 1, timeout_s=0.2)  # site-b does not get site-a's packets
        assert (site.stats().sent, hq.stats().received) == (1, 2)
        for iterator in (at_hq, at_site, at_other):
            await iterator.aclose()
    # nothing is retained: a new subscriber gets no packet
    async with aiomqtt.Client("127.0.0.1", broker.port) as late:
        await late.subscribe("wesh/sync/#", qos=1)
        with pytest.raises(TimeoutError):
            await take_raw(late, 1, timeout_s=0.3)


async def take_raw(
    client: aiomqtt.Client, count: int, timeout_s: float = 10
) -> list[tuple[str, bytes, int, bool]]:
    seen = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            seen.append((str(message.topic), bytes(message.payload), message.qos, message.retain))  # type: ignore[arg-type]
            if len(seen) == count:
                break
    return seen


async def test_bad_peers_texts_and_payloads(broker: Broker) -> None:
    async with (
        transport(broker.port, "site", "site-a") as site,
        transport(broker.port, "hq") as hq,
        aiomqtt.Client("127.0.0.1", broker.port) as raw,
    ):
        await asyncio.gather(site.wait_connected(10), hq.wait_connected(10))
        with pytest.raises(UsageError):
            await site.send("site-b", "AB")  # a site talks to HQ only
        with pytest.raises(UsageError):
            await hq.send("a/b", "AB")
        with pytest.raises(UsageError):
            await hq.send("site-a", "ü")
        with pytest.raises(UsageError):
            await hq.send("site-a", "A" * 65_537)
        received = hq.messages()
        await raw.publish("wesh/sync/site-a/up", "é".encode(), qos=1)  # not ASCII
        await raw.publish("wesh/sync/site-a/up", b"", qos=1)  # empty
        await raw.publish("wesh/sync/site-a/up", b"C0FFEE", qos=1)
        assert [m.text for m in await take(received, 1)] == ["C0FFEE"]
        assert hq.stats().errors == 2
        await received.aclose()
    with pytest.raises(UsageError):
        await site.send("hq", "AB")  # closed


async def test_broker_down_send_raises_then_reconnects(stopped_broker: Broker) -> None:
    async with (
        transport(stopped_broker.port, "site", "site-a") as site,
        transport(stopped_broker.port, "hq") as hq,
    ):
        with pytest.raises(TransientError):
            await site.send("hq", "AB")  # nothing queued: the agent keeps its data
        assert site.stats().errors == 1 and not site.connected
        stopped_broker.start()
        await asyncio.gather(site.wait_connected(10), hq.wait_connected(10))
        received = hq.messages()
        await site.send("hq", "0001")
        assert [m.text for m in await take(received, 1)] == ["0001"]
        # the broker goes away and comes back on the same port
        stopped_broker.stop()
        await until(lambda: not site.connected and not hq.connected)
        with pytest.raises(ConnectionFailed):
            await site.send("hq", "0002")
        stopped_broker.start()
        await asyncio.gather(site.wait_connected(10), hq.wait_connected(10))
        await site.send("hq", "0003")  # resubscribed after the reconnection
        assert [m.text for m in await take(received, 1)] == ["0003"]
        assert site.connections == 2
        await received.aclose()


async def test_hq_away_gets_what_was_sent_meanwhile(broker: Broker) -> None:
    async with transport(broker.port, "hq") as hq:
        await hq.wait_connected(10)  # the broker now knows HQ's persistent session
    async with transport(broker.port, "site", "site-a") as site:
        await site.wait_connected(10)
        for n in range(3):
            await site.send("hq", f"{n:04X}")
    async with transport(broker.port, "hq") as back:
        received = back.messages()
        assert [m.text for m in await take(received, 3)] == ["0000", "0001", "0002"]
        await received.aclose()
