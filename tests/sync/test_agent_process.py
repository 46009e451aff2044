"""The agent as its own process beside a running weshd, sharing weshd's store.

A weshd-like writer process (a real ``Store``, holding weshd's writer lock all along)
appends an hour of readings at a time, alarms and box states, and prunes with a short
retention; ``wesh sync agent`` (no ``--with-weshd``) opens the same store as a queue
client and is killed with SIGKILL and restarted while the writer keeps writing;
``wesh sync receiver`` stores what arrives over a private Mosquitto. Every reading
reaches the sink once with its exact value, every alarm arrives, weshd's queue ends
empty and the file intact.

Run as ``python -m tests.sync.test_agent_process writer DB ...`` the module is that writer.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.gateway._store_builders import integrity
from tests.gateway._weshd import short_tmp
from tests.gateway.test_mqtt import Broker, broker
from tests.sync._sync_data import SITE, alarm, hourly_samples
from tests.sync.test_crash import Node, _count
from wesh.errors import ConfigError
from wesh.gateway.store import RetentionPolicy, Store
from wesh.sync.agent import read_agent_status
from wesh.sync.cli import sync
from wesh.sync.keys import keygen
from wesh.sync.sink import SqliteSink

__all__ = ["broker", "short_tmp"]  # fixtures

CHANNELS = 20
HOURS = 48
ALARM_EVERY = 8  # hours
PACE_S = 0.15  # the writer's pause between two hours (weshd polling)


# ----------------------------------------------------------------------------- the writer


def _writer(argv: list[str]) -> int:
    """Append ``hours`` hours of readings to weshd's store, paced, then wait for stdin EOF."""
    parser = argparse.ArgumentParser(prog="writer")
    parser.add_argument("db", type=Path)
    parser.add_argument("--end", required=True)
    parser.add_argument("--hours", type=int, default=HOURS)
    parser.add_argument("--pace", type=float, default=PACE_S)
    args = parser.parse_args(argv)
    retention = RetentionPolicy(  # acknowledged readings go at once: prune runs beside the agent
        retention_days=60 / 86_400, events_retention_days=60 / 86_400, prune_batch_rows=100
    )
    end = datetime.fromisoformat(args.end)
    with Store.open(args.db, retention=retention) as store:
        print("ready", flush=True)
        chunks = hourly_samples(CHANNELS, args.hours, end=end)
        for hour, (samples, _expected) in enumerate(chunks):
            store.add_samples(samples)
            if hour % ALARM_EVERY == 0:
                store.add_event(alarm(hour, samples[0].at))
            store.set_box_status("dw-0", up=hour % 2 == 0, at=samples[0].at, error="flip")
            store.prune(datetime.now(UTC))
            print(f"hour {hour}", flush=True)
            time.sleep(args.pace)  # weshd's polling pace, not a test waiting
        print("done", flush=True)
        sys.stdin.read()  # weshd stays up until the test closes our stdin
    return 0


class Writer:
    """The writer process and a thread that follows its output."""

    def __init__(self, db: Path, end: datetime, log: Path) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.done = threading.Event()
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sync.test_agent_process",
                "writer",
                str(db),
                "--end",
                end.isoformat(),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.thread = threading.Thread(target=self._follow, name="writer-output")
        self.thread.start()

    def _follow(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode().strip()
            self.lines.append(line)
            if line == "ready":
                self.ready.set()
            elif line == "done":
                self.done.set()
        self.ready.set()  # the process ended: let waiters look
        self.done.set()

    def finish(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=30)
        self._release()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._release()

    def _release(self) -> None:
        self.thread.join(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.log.close()


# ----------------------------------------------------------------------------- helpers


def _config(path: Path, state: Path) -> Path:
    path.write_text(
        f'state_dir = "{state}"\n[site]\nid = "{SITE}"\nname = "Agent process test"\n'
        '[api]\nsocket = "weshd.sock"\n',
        encoding="utf-8",
    )
    return path


def _mqtt(broker: Broker, keys: Path) -> list[str]:
    return [
        "--transport", "mqtt", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port),
        "--key-dir", str(keys),
    ]  # fmt: skip


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _wait_running(node: Node, timeout_s: float = 30) -> None:
    """Wait until the last start of ``node`` (run with ``-v``) says it runs (signals handled)."""
    deadline = time.monotonic() + timeout_s
    while "Sync agent of site" not in _since_last_start(node.log):
        assert node.running, _tail(node.log)
        assert time.monotonic() < deadline, _tail(node.log)
        time.sleep(0.05)  # waiting for another process


def _since_last_start(path: Path) -> str:
    return path.read_text(errors="replace").rpartition("--- start")[2] if path.exists() else ""


# ----------------------------------------------------------------------------- tests


def test_a_separate_agent_killed_beside_a_writing_weshd_delivers_exactly_once(
    tmp_path: Path, broker: Broker
) -> None:
    rng = random.Random(20240401)
    keys = tmp_path / "keys"
    keygen(SITE, keys)
    state = tmp_path / "state"
    db = state / "weshd.sqlite3"
    config = _config(tmp_path / "weshd.toml", state)
    sink_path = tmp_path / "sink.sqlite3"
    agent = Node(
        "agent",
        [
            "agent", "--config", str(config), "--budget", "0", "--retry-initial", "1",
            "--retry-max", "4", "--close-delay", "0", "--status-interval", "30", "-v",
            *_mqtt(broker, keys),
        ],
        tmp_path / "agent.log",
    )  # fmt: skip
    receiver = Node(
        "receiver",
        [
            "receiver", "--sqlite-sink", str(sink_path), "--state",
            str(tmp_path / "receiver.sqlite3"), "--ack-delay", "0.1", "--ack-min-interval",
            "0.2", *_mqtt(broker, keys),
        ],
        tmp_path / "receiver.log",
    )  # fmt: skip
    end = datetime.now(UTC) - timedelta(hours=2)
    expected: dict[tuple[str, str, datetime, str], int | float] = {}
    for _samples, wanted in hourly_samples(CHANNELS, HOURS, end=end):
        expected.update(wanted)
    alarms = len(range(0, HOURS, ALARM_EVERY))
    writer = Writer(db, end, tmp_path / "writer.log")
    kills = 0
    try:
        assert writer.ready.wait(30), _tail(tmp_path / "writer.log")
        assert writer.process.poll() is None, _tail(tmp_path / "writer.log")
        with pytest.raises(ConfigError, match="already open"):
            Store.open(db)  # weshd holds its store: the agent cannot be a second Store
        receiver.start()
        agent.start()
        while not writer.done.is_set():  # kill -9 the agent while weshd keeps writing
            time.sleep(rng.uniform(0.4, 1.5))  # let it work a random while (other processes)
            agent.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.3))  # weshd writes while the agent is down
            agent.start()
        assert writer.process.poll() is None, _tail(tmp_path / "writer.log")
        assert kills >= 3, f"only {kills} kills: the writer went too fast"
        assert len(writer.lines) == HOURS + 2  # ready, every hour, done
        _wait_running(agent)
        agent_state = state / "sync-agent.sqlite3"
        deadline = time.monotonic() + 60
        while True:
            assert agent.running, _tail(tmp_path / "agent.log")
            assert receiver.running, _tail(tmp_path / "receiver.log")
            status = read_agent_status(agent_state)
            if (
                _count(sink_path, "sink_readings") == len(expected)
                and _count(sink_path, "sink_alarms") == alarms
                and status.items_waiting == status.items_in_flight == status.open_hours == 0
                and status.alarms_waiting == 0
                and status.store_acked_upto == status.reading_cursor > 0
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"not converged: {status}\n{_tail(tmp_path / 'agent.log')}")
            time.sleep(0.2)  # waiting for other processes
        assert agent.stop() == 0, _tail(tmp_path / "agent.log")
        assert receiver.stop() == 0, _tail(tmp_path / "receiver.log")
        assert writer.finish() == 0, _tail(tmp_path / "writer.log")
    finally:
        agent.kill()
        receiver.kill()
        writer.kill()
    assert "Traceback" not in _tail(tmp_path / "agent.log")
    assert "database is locked" not in (tmp_path / "agent.log").read_text()
    with Store.open(db) as store:
        assert store.queue_depth() == 0
    assert integrity(db) == "ok"
    with SqliteSink(sink_path) as sink:
        got = {(r.box, r.path, r.at, r.aggregate): r.value for r in sink.readings()}
        stored_alarms = sink.alarms()
    assert got == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())
    assert len(stored_alarms) == alarms


def test_without_a_store_the_separate_agent_refuses_and_creates_nothing(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keygen(SITE, keys)
    state = tmp_path / "state"
    config = _config(tmp_path / "weshd.toml", state)
    result = CliRunner().invoke(
        sync,
        ["agent", "--config", str(config), "--transport", "mqtt", "--key-dir", str(keys)],
    )
    assert isinstance(result.exception, ConfigError), result.output
    assert "start weshd first" in str(result.exception)
    assert not (state / "weshd.sqlite3").exists()
    assert not (state / "sync-agent.sqlite3").exists()


def test_with_weshd_still_works_and_a_second_agent_is_refused(
    short_tmp: Path, broker: Broker
) -> None:
    keys = short_tmp / "keys"
    keygen(SITE, keys)
    state = short_tmp / "state"
    config = _config(short_tmp / "weshd.toml", state)
    both = Node(
        "weshd+agent",
        ["agent", "--config", str(config), "--with-weshd", "-v", *_mqtt(broker, keys)],
        short_tmp / "both.log",
    )
    both.start()
    try:
        _wait_running(both)  # weshd made its store, the agent runs on it
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "wesh",
                "sync",
                "agent",
                "--config",
                str(config),
                *_mqtt(broker, keys),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert b"another sync agent runs" in second.stderr
        assert both.running
        assert both.stop() == 0, _tail(short_tmp / "both.log")
    finally:
        both.kill()
    Store.open(state / "weshd.sqlite3").close()  # weshd let its store go
    assert read_agent_status(state / "sync-agent.sqlite3").site == SITE


if __name__ == "__main__":
    if sys.argv[1:2] != ["writer"]:
        sys.exit("usage: python -m tests.sync.test_agent_process writer DB --end ISO")
    sys.exit(_writer(sys.argv[2:]))
