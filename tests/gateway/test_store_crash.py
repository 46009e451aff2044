"""``kill -9`` of a process writing into the store loses at most the poll in flight.

A real writer process (``tests/gateway/store_crash_writer.py``) appends polls of 30
samples, alarms, status edges, acknowledgements and prunes in a loop; the test kills it
with SIGKILL at random points, reopens the file and checks it, ten times over.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.gateway._store_builders import T0, integrity, query
from wesh.gateway.store_schema import to_ms

ROOT = Path(__file__).resolve().parents[2]
POLL_SIZE = 30
T0_MS = to_ms(T0)


def spawn(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.store_crash_writer", str(db), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        assert proc.stderr is not None
        raise AssertionError(f"writer died (rc={proc.returncode}): {proc.stderr.read()}")
    return line.strip()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def check_store(db: Path, *, committed: int, previous_max_seq: int) -> tuple[int, int]:
    """Check the file after a crash; return (last complete poll id, max seq)."""
    assert integrity(db) == "ok"
    per_poll = Counter(
        {
            (at_ms - T0_MS) // 1000: count
            for at_ms, count in query(db, "SELECT at_ms, count(*) FROM readings GROUP BY at_ms")
        }
    )
    polls = sorted(per_poll)
    assert polls, "no poll survived"
    lo, hi = polls[0], polls[-1]
    assert polls == list(range(lo, hi + 1)), "a poll in the middle is missing"
    # every poll is whole; only the oldest may have lost a prefix to retention
    assert all(per_poll[p] == POLL_SIZE for p in polls[1:]), per_poll
    assert 1 <= per_poll[lo] <= POLL_SIZE
    # every poll reported as committed survived the kill
    assert hi >= committed
    assert query(db, "SELECT value FROM latest WHERE channel = 'crash/poll.id'") == [(hi,)]
    # reading ids stay consecutive (the store counts rows as max - min + 1)
    ((count, low, high),) = query(db, "SELECT count(*), min(id), max(id) FROM readings")
    assert count == high - low + 1

    queue = query(db, "SELECT seq, reading_id, event_id, acked_ms FROM outbound ORDER BY seq")
    seqs = [row[0] for row in queue]
    reading_ids = [row[1] for row in queue if row[1] is not None]
    assert len(set(seqs)) == len(seqs)
    assert reading_ids == sorted(reading_ids)
    assert len(set(reading_ids)) == len(reading_ids)
    (top_sequence,) = query(db, "SELECT seq FROM sqlite_sequence WHERE name = 'outbound'")[0]
    max_seq = max([*seqs, previous_max_seq])
    assert top_sequence >= max_seq >= previous_max_seq
    # a queued reading is never pruned; a poll's queue rows are whole
    unacked = {row[1] for row in queue if row[1] is not None and row[3] is None}
    present = {row[0] for row in query(db, "SELECT id FROM readings")}
    assert unacked <= present
    queued_per_poll = Counter(
        (at_ms - T0_MS) // 1000
        for (at_ms,) in query(
            db,
            "SELECT r.at_ms FROM outbound o JOIN readings r ON r.id = o.reading_id "
            "WHERE o.acked_ms IS NULL",
        )
    )
    # the writer acknowledges up to any seq: only the oldest queued poll may be partial
    queued_polls = sorted(queued_per_poll)
    assert all(queued_per_poll[p] == POLL_SIZE for p in queued_polls[1:]), queued_per_poll
    assert queued_polls == list(range(queued_polls[0], hi + 1)) if queued_polls else True

    alarms = [json.loads(data)["poll"] for (data,) in query(db, "SELECT data FROM events")]
    assert len(alarms) == len(set(alarms))
    assert all(p % 7 == 0 for p in alarms)
    return hi, max_seq


def test_kill_9_at_random_points_loses_at_most_the_poll_in_flight(tmp_path: Path) -> None:
    rng = random.Random(20_240_301)
    db = tmp_path / "crash.sqlite3"
    last_poll, max_seq = -1, 0
    for _ in range(10):
        proc = spawn(db)
        try:
            assert read_line(proc) == "ready"
            first = int(read_line(proc))
            assert first == last_poll + 1, "the writer did not resume after the last poll"
            committed = first
            for _ in range(rng.randrange(0, 40)):
                committed = int(read_line(proc))
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL
        finally:
            stop(proc)
        last_poll, max_seq = check_store(db, committed=committed, previous_max_seq=max_seq)

    # a clean run after all those crashes appends after the last poll, with higher seqs
    proc = spawn(db, "--polls", "12")
    try:
        assert read_line(proc) == "ready"
        lines = [int(read_line(proc)) for _ in range(12)]
        assert proc.wait() == 0
    finally:
        stop(proc)
    assert lines == list(range(last_poll + 1, last_poll + 13))
    hi, new_max_seq = check_store(db, committed=lines[-1], previous_max_seq=max_seq)
    assert hi == last_poll + 12
    assert new_max_seq > max_seq
