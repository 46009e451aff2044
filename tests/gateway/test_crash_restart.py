"""kill -9 of a polling weshd, at random moments, then restart: nothing corrupt, polling resumes.

What must hold after each ``SIGKILL`` and restart (``docs/weshd.md``, "Crash safety"):
the store opens (lock released by the kernel, stale socket replaced), its integrity check
passes, every poll is stored whole or not at all, no reading is stored twice, the
outbound queue's seq keeps increasing with the readings, and polling goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
from collections import Counter
from pathlib import Path

from tests.gateway._weshd import (
    box_toml,
    config_toml,
    readings_by_poll,
    short_tmp,
    wait_until,
    weshd_command,
    weshd_env,
)
from wesh.gateway.store import Store
from wesh.sim import run_simulators

__all__ = ["short_tmp"]

ROUNDS = 4


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sum(readings_by_poll(db).values())
    except sqlite3.OperationalError:  # not created yet
        return 0


async def _start(path: Path, socket: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *weshd_command("--config", str(path), "--socket", str(socket), "--log-level", "warning"),
        stderr=asyncio.subprocess.DEVNULL,
        env=weshd_env(),
    )
    return proc


async def test_kill_9_while_polling_then_restart(short_tmp: Path) -> None:
    rng = random.Random(20240607)
    async with run_simulators(4, base_port=0, seed=9, speed=60, ftp=False, m2m=False) as farm:
        state = short_tmp / "state"
        db = state / "weshd.sqlite3"
        path = short_tmp / "weshd.toml"
        boxes = [
            box_toml(f"b{i}", box.http.port, interval_s=0.2) for i, box in enumerate(farm.boxes)
        ]
        path.write_text(config_toml(state, boxes, jitter_s=0.05))
        socket = short_tmp / "api.sock"
        for _ in range(ROUNDS):
            target = _rows(db) + rng.randint(10, 300)  # kill after a random amount of work
            proc = await _start(path, socket)
            try:
                await wait_until(
                    lambda: _rows(db) > target,  # noqa: B023 - used within the round
                    timeout_s=20,
                    what="polling to resume",
                )
                proc.send_signal(signal.SIGKILL)
                await asyncio.wait_for(proc.wait(), timeout=10)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            assert socket.exists()  # left behind by the crash; the next start replaces it
        # a last clean run, then stop
        proc = await _start(path, socket)
        try:
            rows = _rows(db)
            await wait_until(lambda: _rows(db) > rows, timeout_s=20, what="polling after restart")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert not socket.exists()

    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT channel_id, at_ms FROM readings "
            "GROUP BY channel_id, at_ms HAVING count(*) > 1)"
        ).fetchone()[0]
        assert duplicates == 0
        queued = conn.execute("SELECT seq, reading_id FROM outbound ORDER BY seq").fetchall()
        reading_ids = [reading for _, reading in queued if reading is not None]
        assert len(reading_ids) == len(set(reading_ids))
        assert reading_ids == sorted(reading_ids)  # seq follows the order of the readings
        starts = conn.execute("SELECT count(*) FROM events WHERE kind = 'started'").fetchone()[0]
        assert starts == ROUNDS + 1
    # every poll whole: a box's polls all carry the same number of readings
    by_box: dict[str, Counter[int]] = {}
    for (box, _at), count in readings_by_poll(db).items():
        by_box.setdefault(box, Counter())[count] += 1
    assert set(by_box) == {"b0", "b1", "b2", "b3"}
    for box, sizes in by_box.items():
        assert len(sizes) == 1, (box, sizes)
    with Store.open(db) as store:  # and the store opens cleanly, with its queue in order
        pending = store.pending(limit=100_000)
        seqs = [seq for seq, _ in pending]
        assert seqs == sorted(set(seqs)) and len(seqs) == len(reading_ids)
