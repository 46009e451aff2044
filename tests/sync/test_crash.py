"""Crash: the agent and the receiver (real ``wesh sync`` processes) killed with SIGKILL.

A private Mosquitto carries the packets (persistent sessions: what is sent to a dead
process waits for it). While the agent is down the test appends readings and an alarm to
weshd's store (as weshd would; the agent reads it as a queue client). Over several rounds the agent,
the receiver or both are killed at random points; then both run to the end. Every
reading is in the sink once with its exact value, every alarm arrived, weshd's queue is
empty: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gateway.test_mqtt import Broker, broker
from tests.sync._sync_data import SITE, alarm, hourly_samples
from wesh.gateway.store import Store
from wesh.sync.agent import read_agent_status
from wesh.sync.keys import keygen
from wesh.sync.sink import SqliteSink

__all__ = ["broker"]  # fixture

CHANNELS = 20
HOURS_PER_ROUND = 15
ROUNDS = 8


class Node:
    """One ``wesh sync`` process, restartable, killed with SIGKILL."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wesh", "sync", *self.args],
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code


def _count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_kill_9_of_agent_and_receiver_loses_and_duplicates_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    rng = random.Random(20240331)
    keys = tmp_path / "keys"
    keygen(SITE, keys)
    state = tmp_path / "state"
    config = tmp_path / "weshd.toml"
    config.write_text(
        f'state_dir = "{state}"\n[site]\nid = "{SITE}"\nname = "Crash test"\n'
        '[api]\nsocket = "weshd.sock"\n',
        encoding="utf-8",
    )
    sink_path = tmp_path / "sink.sqlite3"
    transport = [
        "--transport", "mqtt", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port),
        "--key-dir", str(keys),
    ]  # fmt: skip
    agent = Node(
        "agent",
        [
            "agent", "--config", str(config), "--budget", "0", "--retry-initial", "1",
            "--retry-max", "4", "--close-delay", "0", "--status-interval", "30", *transport,
        ],
        tmp_path / "agent.log",
    )  # fmt: skip
    receiver = Node(
        "receiver",
        [
            "receiver", "--sqlite-sink", str(sink_path), "--state",
            str(tmp_path / "receiver.sqlite3"), "--ack-delay", "0.1", "--ack-min-interval",
            "0.2", *transport,
        ],
        tmp_path / "receiver.log",
    )  # fmt: skip
    now = datetime.now(UTC)
    chunks = list(
        hourly_samples(CHANNELS, HOURS_PER_ROUND * (ROUNDS + 1), end=now - timedelta(hours=2))
    )
    expected: dict[tuple[str, str, datetime, str], int | float] = {}
    alarms = 0
    kills = {"agent": 0, "receiver": 0}
    try:
        for round_ in range(ROUNDS + 1):
            agent.kill()  # the store admits one process: write while the agent is down
            with Store.open(state / "weshd.sqlite3") as store:
                part = chunks[round_ * HOURS_PER_ROUND : (round_ + 1) * HOURS_PER_ROUND]
                for samples, wanted in part:
                    store.add_samples(samples)
                    expected.update(wanted)
                store.add_event(alarm(round_, part[0][0][0].at))
                alarms += 1
            agent.start()
            if not receiver.running:
                receiver.start()
            if round_ == ROUNDS:
                break
            time.sleep(rng.uniform(0.3, 3.0))  # let them work for a random while
            victims = rng.choice([[agent], [receiver], [agent, receiver]])
            for victim in victims:
                victim.kill()
                kills[victim.name] += 1
            if receiver not in victims and rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 1.0))
                receiver.kill()
                kills["receiver"] += 1
        assert kills["agent"] >= 3
        assert kills["receiver"] >= 3
        agent_state = state / "sync-agent.sqlite3"
        deadline = time.monotonic() + 60
        while True:  # both run now; wait for the agent to see everything acknowledged
            assert agent.running, (tmp_path / "agent.log").read_text()[-3000:]
            assert receiver.running, (tmp_path / "receiver.log").read_text()[-3000:]
            status = read_agent_status(agent_state)
            done = (
                _count(sink_path, "sink_readings") == len(expected)
                and status.items_waiting == status.items_in_flight == status.open_hours == 0
                and status.alarms_waiting == 0
                and status.store_acked_upto == status.reading_cursor > 0
            )
            if done:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"not converged: {status}")
            time.sleep(0.2)  # waiting for two other processes
        assert agent.stop() == 0
        assert receiver.stop() == 0
    finally:
        agent.kill()
        receiver.kill()
    with Store.open(state / "weshd.sqlite3") as store:
        assert store.queue_depth() == 0
    with SqliteSink(sink_path) as sink:
        got = {(r.box, r.path, r.at, r.aggregate): r.value for r in sink.readings()}
        stored_alarms = sink.alarms()
    assert got == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())
    assert len(stored_alarms) == alarms
