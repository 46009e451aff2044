"""Loopback transport: delivery, each fault alone, determinism, virtual time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway._vtime import run_virtual
from wesh.errors import ConnectionFailed, UsageError
from wesh.sync.loopback import FaultPlan, LoopbackNetwork, decide_fate, loopback_pair
from wesh.sync.transport import Message, SendStatus, Transport, split_sms

LONG = "".join(f"{i:04X}" for i in range(100))  # 400 base16 characters: 3 SMS parts
TEXTS = [f"{n:08X}" for n in range(40)]


class FakeClock:
    """Injected time: sleeping moves the clock at once (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


async def take(messages: AsyncIterator[Message], count: int) -> list[Message]:
    async with asyncio.timeout(5):
        return [await anext(messages) for _ in range(count)]


def pending(mailbox_owner) -> int:
    return len(mailbox_owner._network._mailbox(mailbox_owner.name).messages)


# ----------------------------------------------------------------------------- perfect links


async def test_perfect_link_delivers_in_order_both_ways() -> None:
    site, hq = loopback_pair("site-a", "hq")
    assert isinstance(site, Transport) and isinstance(hq, Transport)
    received = hq.messages()
    back = site.messages()
    try:
        receipt = await site.send("hq", LONG)
        assert receipt.status is SendStatus.SENT and receipt.parts == 3
        assert await receipt.wait(0) is SendStatus.SENT
        for text in TEXTS[:3]:
            await site.send("hq", text)
        got = await take(received, 4)
        assert [m.text for m in got] == [LONG, *TEXTS[:3]]
        assert {m.peer for m in got} == {"site-a"}
        assert [m.parts for m in got] == [3, 1, 1, 1]
        assert got[0].received_at.tzinfo is not None
        await hq.send("site-a", "ACK1")
        assert (await take(back, 1))[0].text == "ACK1"
        assert site.stats().sent == 4 and site.stats().sent_parts == 6
        assert hq.stats().received == 4 and hq.stats().received_parts == 6
    finally:
        await received.aclose()
        await back.aclose()
        await site.aclose()
        await hq.aclose()


async def test_bad_peer_bad_text_offline_and_closed() -> None:
    network = LoopbackNetwork()
    site, hq = network.endpoint("site"), network.endpoint("hq")
    with pytest.raises(UsageError):
        network.endpoint("hq")  # attached already
    with pytest.raises(UsageError):
        await site.send("nobody", "AB")
    for text in ("", "ü", "A~B", "A" * 65_537):
        with pytest.raises(UsageError):
            await site.send("hq", text)
    network.set_online("site", online=False)
    with pytest.raises(ConnectionFailed):
        await site.send("hq", "AB")
    assert site.stats().errors == 1 and site.stats().sent == 0
    network.set_online("site", online=True)
    await site.send("hq", "AB")
    await site.aclose()
    with pytest.raises(UsageError):
        await site.send("hq", "AB")
    await hq.aclose()


async def test_mail_waits_for_a_restarted_endpoint_and_iterators_end_on_close() -> None:
    network = LoopbackNetwork()
    site, hq = network.endpoint("site"), network.endpoint("hq")
    iterator = hq.messages()
    reader = asyncio.create_task(anext(iterator, None))
    await asyncio.sleep(0)
    await hq.aclose()
    assert await reader is None  # the iterator ended with the endpoint
    await site.send("hq", "WHILE0DOWN")
    again = network.endpoint("hq")
    received = again.messages()
    assert [m.text for m in await take(received, 1)] == ["WHILE0DOWN"]
    await received.aclose()
    await again.aclose()
    await site.aclose()


async def test_several_sites_one_hq() -> None:
    network = LoopbackNetwork()
    sites = [network.endpoint(f"site-{n}") for n in range(3)]
    hq = network.endpoint("hq")
    received = hq.messages()
    for n, site in enumerate(sites):
        await site.send("hq", f"{n:02X}")
    got = await take(received, 3)
    assert sorted((m.peer, m.text) for m in got) == [
        ("site-0", "00"),
        ("site-1", "01"),
        ("site-2", "02"),
    ]
    await hq.send("site-1", "FF")
    back = sites[1].messages()
    assert [m.text for m in await take(back, 1)] == ["FF"]
    await back.aclose()
    await received.aclose()
    for endpoint in [*sites, hq]:
        await endpoint.aclose()


# ------------------------------------------------------------------------ faults, one at a time


async def run_plan(
    plan: FaultPlan, texts: list[str]
) -> tuple[list[Message], LoopbackNetwork, FakeClock]:
    clock = FakeClock()
    network = LoopbackNetwork(clock=clock.time, sleep=clock.sleep)
    site, hq = network.endpoint("site"), network.endpoint("hq")
    network.set_faults("site", "hq", plan)
    for text in texts:
        await site.send("hq", text)
    await network.drain()
    got = []
    messages = hq.messages()
    while pending(hq):
        got.append(await anext(messages))
    await messages.aclose()
    await site.aclose()
    await hq.aclose()
    return got, network, clock


async def test_loss() -> None:
    got, network, _ = await run_plan(FaultPlan(loss=1.0), TEXTS)
    assert got == [] and network.counts("site", "hq").lost == len(TEXTS)
    got, network, _ = await run_plan(FaultPlan(loss=0.3, seed=7), TEXTS * 25)
    lost = network.counts("site", "hq").lost
    assert 0.24 * 1000 < lost < 0.36 * 1000
    assert len(got) == 1000 - lost


async def test_duplicate() -> None:
    got, network, _ = await run_plan(FaultPlan(duplicate=1.0), TEXTS[:5])
    assert [m.text for m in got] == [t for t in TEXTS[:5] for _ in range(2)]
    assert network.counts("site", "hq").duplicated == 5


async def test_corrupt_changes_one_hex_digit() -> None:
    got, network, _ = await run_plan(FaultPlan(corrupt=1.0, seed=3), TEXTS)
    assert network.counts("site", "hq").corrupted == len(TEXTS)
    for message, original in zip(got, TEXTS, strict=True):
        assert len(message.text) == len(original)
        assert sum(a != b for a, b in zip(message.text, original, strict=True)) == 1
        assert all(c in "0123456789ABCDEF" for c in message.text)


async def test_truncate_keeps_a_shorter_prefix() -> None:
    got, _, _ = await run_plan(FaultPlan(truncate=1.0, seed=4), TEXTS)
    for message, original in zip(got, TEXTS, strict=True):
        assert 1 <= len(message.text) < len(original) and original.startswith(message.text)


async def test_reorder_delivers_everything_some_out_of_order() -> None:
    got, network, _ = await run_plan(FaultPlan(reorder=0.3, seed=5), TEXTS)
    texts = [m.text for m in got]
    assert sorted(texts) == sorted(TEXTS) and texts != TEXTS
    assert network.counts("site", "hq").reordered > 0
    # a held message goes right after the next one
    got, _, _ = await run_plan(FaultPlan(reorder=1.0), TEXTS[:3])
    assert [m.text for m in got] == TEXTS[:3]  # each held one released by the next; last by time


async def test_delay_uses_the_injected_clock() -> None:
    clock = FakeClock()
    network = LoopbackNetwork(clock=clock.time, sleep=clock.sleep)
    site, hq = network.endpoint("site"), network.endpoint("hq")
    network.set_faults("site", "hq", FaultPlan(delay_s=(10.0, 20.0), seed=1))
    for text in TEXTS[:10]:
        await site.send("hq", text)
    assert pending(hq) == 0 and network.in_flight == 10
    await network.drain()
    assert pending(hq) == 10 and 10.0 <= clock.now <= 20.0
    assert sum(clock.slept) <= 20.0  # virtual: nothing waited in real time
    assert network.counts("site", "hq").delayed == 10
    await site.aclose()
    await hq.aclose()


async def test_part_loss_delivers_the_parts_that_came() -> None:
    got, network, _ = await run_plan(FaultPlan(part_loss=0.4, seed=11), [LONG] * 30)
    pieces = split_sms(LONG)
    counts = network.counts("site", "hq")
    assert counts.parts_lost > 0
    assert sum(3 - m.parts for m in got) + 3 * counts.lost == counts.parts_lost
    for message in got:
        assert message.parts < 3 or message.text == LONG
        # the text is the surviving parts, in order
        kept = [p for p in pieces if p in message.text]
        assert "".join(kept) == message.text and len(kept) == message.parts


def test_delays_run_in_virtual_time_with_the_default_clock() -> None:
    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        site, hq = loopback_pair(faults=FaultPlan(delay_s=(0, 3600), reorder=0.2, seed=9))
        messages = hq.messages()
        for text in TEXTS:
            await site.send("hq", text)
        got = await asyncio.wait_for(take_all(messages, len(TEXTS)), timeout=7200)
        await messages.aclose()
        await site.aclose()
        await hq.aclose()
        return got, loop.time() - start

    async def take_all(messages: AsyncIterator[Message], count: int) -> list[str]:
        return [(await anext(messages)).text for _ in range(count)]

    first, elapsed = run_virtual(main)
    second, _ = run_virtual(main)
    assert sorted(first) == sorted(TEXTS) and first != TEXTS
    assert first == second  # same seed, same story
    assert 1800 < elapsed <= 3600 + 5


# ---------------------------------------------------------------------- determinism, properties


async def test_same_seed_same_story_other_seed_other_story() -> None:
    plan = FaultPlan(
        loss=0.2, duplicate=0.2, reorder=0.2, delay_s=(0, 5), corrupt=0.1, truncate=0.1, seed=42
    )
    first, _, _ = await run_plan(plan, TEXTS)
    again, _, _ = await run_plan(plan, TEXTS)
    other, _, _ = await run_plan(FaultPlan(**{**_fields(plan), "seed": 43}), TEXTS)
    assert [(m.text, m.parts) for m in first] == [(m.text, m.parts) for m in again]
    assert [m.text for m in first] != [m.text for m in other]


def _fields(plan: FaultPlan) -> dict[str, object]:
    return {name: getattr(plan, name) for name in plan.__slots__}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": -0.1},
        {"duplicate": 1.5},
        {"delay_s": (2.0, 1.0)},
        {"delay_s": (-1.0, 1.0)},
        {"reorder_hold_s": -1},
    ],
)
def test_fault_plan_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        FaultPlan(**kwargs)  # type: ignore[arg-type]


probability = st.floats(0, 1)


@given(
    text=st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=800),
    loss=probability,
    duplicate=probability,
    corrupt=probability,
    truncate=probability,
    part_loss=probability,
    seed=st.integers(),
)
def test_decide_fate_properties(
    text: str,
    loss: float,
    duplicate: float,
    corrupt: float,
    truncate: float,
    part_loss: float,
    seed: int,
) -> None:
    plan = FaultPlan(
        loss=loss, duplicate=duplicate, corrupt=corrupt, truncate=truncate, part_loss=part_loss
    )
    fate = decide_fate(plan, random.Random(seed), text)
    again = decide_fate(plan, random.Random(seed), text)
    assert fate == again
    assert len(fate.copies) <= 2
    assert fate.lost == (not fate.copies)
    for copy in fate.copies:
        assert 1 <= len(copy.text) <= len(text)
        assert 1 <= copy.parts <= len(split_sms(text))
        assert all(c in "0123456789ABCDEF" for c in copy.text)
        if not (copy.corrupted or copy.truncated or fate.parts_lost):
            assert copy.text == text


@pytest.mark.parametrize("seed", range(5))
async def test_without_loss_every_message_arrives_duplicates_counted(seed: int) -> None:
    plan = FaultPlan(duplicate=0.3, reorder=0.3, delay_s=(0, 30), seed=seed)
    got, network, _ = await run_plan(plan, TEXTS)
    counts = network.counts("site", "hq")
    assert sorted({m.text for m in got}) == sorted(TEXTS)
    assert len(got) == len(TEXTS) + counts.duplicated == counts.delivered
    assert network.in_flight == 0
