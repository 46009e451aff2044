"""Exactly once: 100,000 readings over a lossy, duplicating, reordering, corrupting link.

Agent and receiver run on a virtual-time event loop (no real waiting), through the
loopback transport with FaultPlan(loss=0.3, duplicate=0.1, reorder=0.1, corrupt=0.05) in
both directions, SMS-sized fragments. At the end every reading is in the sink once, with
exactly the value it had at the source; every alarm arrived; weshd's queue is empty.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway._vtime import run_virtual
from tests.sync._sync_data import SITE, T_END, alarm, hourly_samples, schema_of
from wesh.gateway.store import Store
from wesh.sync.agent import AgentConfig
from wesh.sync.loopback import FaultPlan
from wesh.sync.pair import HQ_PEER, run_sync_pair
from wesh.sync.receiver import ReceiverConfig
from wesh.sync.sink import SqliteSink

CHANNELS = 100
HOURS = 1000  # 100 channels x 1000 hours = 100,000 hourly readings


def test_every_reading_arrives_once_and_intact(tmp_path: Path) -> None:
    expected: dict[tuple[str, str, object, str], int | float] = {}
    with Store.open(tmp_path / "weshd.sqlite3") as store:
        for n, (samples, wanted) in enumerate(hourly_samples(CHANNELS, HOURS, end=T_END)):
            store.add_samples(samples)
            expected.update(wanted)
            if n % 25 == 0:
                store.add_event(alarm(n, samples[0].at))
        assert len(expected) == CHANNELS * HOURS >= 100_000
        faults = FaultPlan(
            loss=0.3, duplicate=0.1, reorder=0.1, corrupt=0.05, delay_s=(0.5, 20.0), seed=7
        )
        agent_config = AgentConfig(
            site=SITE,
            hq_peer=HQ_PEER,
            sms_budget_per_day=0,
            retry_initial_s=120.0,
            retry_max_s=1800.0,
            fragment_retry_s=60.0,
            upload_interval_s=0.0,
            seed=3,
        )
        receiver_config = ReceiverConfig(ack_delay_s=25.0, ack_min_interval_s=10.0)

        async def scenario() -> tuple[object, ...]:
            loop = asyncio.get_running_loop()
            clock = loop.wall  # type: ignore[attr-defined]
            with SqliteSink(tmp_path / "sink.sqlite3") as sink:
                async with run_sync_pair(
                    queue=store,
                    site=SITE,
                    schema=schema_of(CHANNELS),
                    sink=sink,
                    state_dir=tmp_path,
                    faults=faults,
                    agent_config=agent_config,
                    receiver_config=receiver_config,
                    clock=clock,
                ) as pair:
                    for _ in range(24 * 60):  # a virtual day at most
                        await asyncio.sleep(60)
                        if store.queue_depth() == 0 and sink.count() >= len(expected):
                            break
                    stats = pair.stats()
                    up = pair.network.counts(SITE, HQ_PEER)
                    down = pair.network.counts(HQ_PEER, SITE)
                return stats, up, down, sink.readings(), sink.alarms()

        stats, up, down, readings, alarms = run_virtual(scenario)
        assert store.queue_depth() == 0
    # the link really misbehaved, both ways
    for counts in (up, down):
        assert counts.lost > 0
        assert counts.duplicated > 0
        assert counts.reordered > 0
        assert counts.corrupted > 0
    # every reading once, with its exact value and type
    got = {(r.box, r.path, r.at, r.aggregate): r.value for r in readings}
    assert len(got) == len(readings)
    assert got.keys() == expected.keys()
    wrong = [
        (k, v, got[k]) for k, v in expected.items() if got[k] != v or type(got[k]) is not type(v)
    ]
    assert wrong == []
    assert all(r.site == SITE and r.quality == "measured" for r in readings)
    assert len(alarms) == HOURS // 25
    assert stats.agent.items_waiting == stats.agent.items_in_flight == 0
    assert stats.agent.alarms_waiting == 0
    ledger = stats.ledger
    assert ledger is not None
    assert ledger.readings_inserted == len(expected)
    assert ledger.readings_rejected == 0
