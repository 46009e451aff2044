"""An agent and a receiver wired through a loopback link, in one process (demo and tests).

::

    async with run_sync_pair(queue=gateway.store, site="site-a", schema=schema,
                             sink=SqliteSink(path), state_dir=tmp) as pair:
        ...                               # weshd writes; readings reach the sink
        pair.stats()                      # SMS sent each way, readings stored, ...

The site's key is made on the fly (not written anywhere) unless one is given. The link is
a :class:`~wesh.sync.loopback.LoopbackNetwork` with an optional :class:`FaultPlan`; its
``texts_up`` count is the number of SMS the site would have sent. Everything started
here is stopped on exit (the agent's and receiver's state files stay, for a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wesh.sync.agent import AgentConfig, AgentStatus, OutboundQueue, SyncAgent
from wesh.sync.keys import KeyRing, SiteKey, generate_key
from wesh.sync.loopback import FaultPlan, LoopbackNetwork
from wesh.sync.receiver import ReceiverConfig, SiteLedger, SyncReceiver
from wesh.sync.schema import Schema
from wesh.sync.sink import ReadingSink

__all__ = ["PairStats", "SyncPair", "quick_configs", "run_sync_pair"]

HQ_PEER = "hq"
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PairStats:
    """What crossed the link so far."""

    texts_up: int
    texts_down: int
    lost_up: int
    lost_down: int
    agent: AgentStatus
    ledger: SiteLedger | None


@dataclass(slots=True)
class SyncPair:
    """The running pair (see :func:`run_sync_pair`)."""

    agent: SyncAgent
    receiver: SyncReceiver
    network: LoopbackNetwork
    site: str

    def stats(self) -> PairStats:
        """Return the link's counters, the agent's status and the site's ledger."""
        up = self.network.counts(self.site, HQ_PEER)
        down = self.network.counts(HQ_PEER, self.site)
        return PairStats(
            texts_up=up.sent,
            texts_down=down.sent,
            lost_up=up.lost,
            lost_down=down.lost,
            agent=self.agent.status(),
            ledger=self.receiver.ledger(self.site),
        )


def quick_configs(site: str) -> tuple[AgentConfig, ReceiverConfig]:
    """Return configurations that show data moving within seconds (a demo, not a budget).

    Samples on a one-minute grid, no SMS budget, short retries and ACK delays.
    """
    agent = AgentConfig(
        site=site,
        hq_peer=HQ_PEER,
        mode="sample",
        sample_grid_s=60,
        sms_budget_per_day=0,
        upload_interval_s=0.0,
        retry_initial_s=5.0,
        retry_max_s=60.0,
        fragment_retry_s=2.0,
        status_interval_s=300.0,
        poll_s=1.0,
    )
    receiver = ReceiverConfig(ack_delay_s=0.5, ack_min_interval_s=1.0)
    return agent, receiver


@contextlib.asynccontextmanager
async def run_sync_pair(
    *,
    queue: OutboundQueue,
    site: str,
    schema: Schema,
    sink: ReadingSink,
    state_dir: Path,
    key: SiteKey | None = None,
    faults: FaultPlan | None = None,
    agent_config: AgentConfig | None = None,
    receiver_config: ReceiverConfig | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    boxes: Callable[[], tuple[int, int]] | None = None,
) -> AsyncIterator[SyncPair]:
    """Run an agent (reading ``queue``) and a receiver (writing ``sink``) until exit.

    ``agent_config`` defaults to :func:`quick_configs`; its ``hq_peer`` must be ``"hq"``.
    State files: ``<state_dir>/sync-agent.sqlite3`` and ``<state_dir>/sync-receiver.sqlite3``.
    """
    key = key or generate_key(site)
    default_agent, default_receiver = quick_configs(site)
    network = LoopbackNetwork(faults=faults, now=clock)
    site_end = network.endpoint(site)
    hq_end = network.endpoint(HQ_PEER)
    agent = SyncAgent(
        config=agent_config or default_agent,
        key=key,
        queue=queue,
        state_path=state_dir / "sync-agent.sqlite3",
        transport=site_end,
        schema=schema,
        clock=clock,
        boxes=boxes,
    )
    receiver = SyncReceiver(
        keys=KeyRing({site: key}),
        sink=sink,
        state_path=state_dir / "sync-receiver.sqlite3",
        transport=hq_end,
        config=receiver_config or default_receiver,
        clock=clock,
    )
    tasks = [
        asyncio.create_task(receiver.run(), name="sync-pair-receiver"),
        asyncio.create_task(agent.run(), name="sync-pair-agent"),
    ]
    try:
        yield SyncPair(agent, receiver, network, site)
    finally:
        agent.stop()
        receiver.stop()
        for task, result in zip(
            tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True
        ):
            if isinstance(result, Exception):
                _LOG.error("Sync pair: %s ended with an error: %s", task.get_name(), result)
        await site_end.aclose()
        await hq_end.aclose()
        agent.close()
        receiver.close()
