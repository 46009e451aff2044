"""End to end with the real gammu-smsd: simulated boxes → weshd → agent → SMS → receiver.

Two gammu-smsd run on Gammu's dummy phones (the site's and headquarters'); the test moves
each one's sent SMS into the other's dummy inbox, as the GSM network would
(tests/sync/gammu_harness.py). Simulated WES boxes (wesh.sim) are polled by a real weshd
(the in-process Gateway); the agent shares its store, as ``wesh sync agent --with-weshd``
does. Readings must reach the receiver's sink with the values weshd stored, and keep
coming after both gammu-smsd restarted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.gateway._weshd import box_toml, config_toml, short_tmp
from tests.sync.gammu_harness import DummySmsd, relaying, smsd_factory
from wesh.gateway.daemon import Gateway
from wesh.sim import run_simulators
from wesh.sync.agent import AgentConfig, SyncAgent
from wesh.sync.keys import KeyRing, generate_key
from wesh.sync.receiver import ReceiverConfig, SyncReceiver
from wesh.sync.schema import SchemaChannel, schema_from_config
from wesh.sync.sink import SqliteSink

__all__ = ["short_tmp", "smsd_factory"]  # fixtures

SITE_NUMBER = "+15550000001"
HQ_NUMBER = "+15550000002"
CHANNELS = """
only_configured = true
[[boxes.channels]]
path = "temp.1"
meaning = "temperature"
[[boxes.channels]]
path = "tic.1.index.base"
meaning = "electricity"
[[boxes.channels]]
path = "tic.1.power_va"
meaning = "power"
"""


def _quantised(value: float, channel: SchemaChannel) -> int | float:
    """What a value becomes once carried (rounded to the channel's resolution)."""
    res = channel.resolution
    if float(res).is_integer():
        return (2 * int(value) + int(res)) // (2 * int(res)) * int(res)
    steps = int(value / res + 0.5) if value >= 0 else -int(-value / res + 0.5)
    return round(steps * res, channel.decimals)


async def test_readings_travel_through_weshd_and_real_gammu_smsd(
    smsd_factory, short_tmp: Path
) -> None:
    site_smsd: DummySmsd = smsd_factory(SITE_NUMBER)
    hq_smsd: DummySmsd = smsd_factory(HQ_NUMBER)
    async with run_simulators(2, base_port=0, seed=5, speed=60, ftp=False, m2m=False) as farm:
        boxes = [
            box_toml(f"box{i}", box.http.port, interval_s=2.0) + CHANNELS
            for i, box in enumerate(farm.boxes)
        ]
        config_path = short_tmp / "weshd.toml"
        config_path.write_text(config_toml(short_tmp / "state", boxes), encoding="utf-8")
        gateway = Gateway.from_file(config_path, stats_interval_s=0)
        weshd = asyncio.create_task(gateway.run())
        await asyncio.wait_for(gateway.ready.wait(), timeout=10)
        site = gateway.site.id
        schema = schema_from_config(gateway.config)
        assert len(schema) == 6
        key = generate_key(site)
        site_transport = site_smsd.transport()
        hq_transport = hq_smsd.transport()
        agent = SyncAgent(
            config=AgentConfig(
                site=site,
                hq_peer=HQ_NUMBER,
                mode="sample",
                sample_grid_s=1,
                sms_budget_per_day=500,
                upload_interval_s=6.0,
                retry_initial_s=20.0,
                fragment_retry_s=8.0,
                poll_s=1.0,
            ),
            key=key,
            queue=gateway.store,
            state_path=short_tmp / "state" / "sync-agent.sqlite3",
            transport=site_transport,
            schema=schema,
        )
        sink = SqliteSink(short_tmp / "hq-sink.sqlite3")
        receiver = SyncReceiver(
            keys=KeyRing({site: key}),
            sink=sink,
            state_path=short_tmp / "hq-receiver.sqlite3",
            transport=hq_transport,
            config=ReceiverConfig(ack_delay_s=3.0, ack_min_interval_s=3.0),
        )
        tasks = [asyncio.create_task(receiver.run()), asyncio.create_task(agent.run())]
        try:
            async with relaying(site_smsd, hq_smsd), relaying(hq_smsd, site_smsd):
                async with asyncio.timeout(40):
                    while True:  # waiting for two real gammu-smsd, polling 1 s each
                        boxes_seen = {r.box for r in sink.readings()}
                        if boxes_seen == {"box0", "box1"} and sink.count() >= 20:
                            break
                        await asyncio.sleep(0.5)
                # both gammu-smsd restart (a modem reset): the sync goes on
                site_smsd.restart()
                hq_smsd.restart()
                before = sink.count()
                async with asyncio.timeout(40):
                    while sink.count() < before + 12:  # noqa: ASYNC110 - real processes
                        await asyncio.sleep(0.5)
            readings = sink.readings()
            history = {
                (s.box, s.path, s.at.replace(microsecond=0)): s.value
                for channel in schema
                for s in gateway.store.history(
                    f"{channel.box}/{channel.path}",
                    since=datetime.now(UTC) - timedelta(hours=1),
                    until=datetime.now(UTC) + timedelta(hours=1),
                )
            }
        finally:
            agent.stop()
            receiver.stop()
            await asyncio.gather(*tasks)
            await site_transport.aclose()
            await hq_transport.aclose()
            agent.close()
            receiver.close()
            gateway.request_stop("test over")
            await asyncio.wait_for(weshd, timeout=15)
            sink.close()
    by_key = {(c.box, c.path): c for c in schema}
    for reading in readings:
        assert reading.site == site
        assert reading.aggregate == "sample"
        stored = history[reading.box, reading.path, reading.at]
        assert isinstance(stored, int | float)
        assert reading.value == _quantised(stored, by_key[reading.box, reading.path])
    assert site_smsd.error_files() == []
    assert hq_smsd.error_files() == []
