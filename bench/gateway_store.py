"""weshd store write throughput: ``Store.add_samples`` with realistic poll batches.

Usage: ``.venv/bin/python bench/gateway_store.py [--quick] [--json]``

Polls of 30 samples (1 index + 29 gauges, like a dwelling WES) from 2,000 boxes are
written into a fresh store in a temporary directory:

* ``poll``: one ``add_samples`` call (one transaction) per poll of 30 samples;
* ``batch``: 40 polls per call (1,200 samples), what the poller's 0.2 s batch window
  gives at 200 polls/s;
* the same with ``durability="full"`` (one fsync per transaction).

Then the sync agent's side (``pending`` + ``acknowledge`` by 1,000), ``prune`` of the
acknowledged rows, and reopening a store (it counts the queue, not the readings).
Figures are medians of three runs; the machine is shared: read them as orders of
magnitude.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wesh.gateway.channels import Sample
from wesh.gateway.store import RetentionPolicy, Store

T0 = datetime(2024, 3, 1, tzinfo=UTC)
BOXES = 2_000
SAMPLES_PER_POLL = 30


def make_poll(box: int, poll_id: int) -> list[Sample]:
    at = T0 + timedelta(seconds=10 * poll_id + box * 0.005)
    name = f"dw-{box}"
    out = [
        Sample(
            box=name,
            channel=f"{name}/tic.1.index.base",
            path="tic.1.index.base",
            at=at,
            value=12_345_678 + poll_id * 7,
            unit="Wh",
            quality="measured",
            kind="index",
            meaning="electricity",
        )
    ]
    out += [
        Sample(
            box=name,
            channel=f"{name}/temp.{j}",
            path=f"temp.{j}",
            at=at,
            value=19.5 + (poll_id + j) % 30 / 10,
            unit="°C",
            quality="measured",
            kind="gauge",
            meaning="temperature",
        )
        for j in range(SAMPLES_PER_POLL - 1)
    ]
    return out


def median_rate(run: Callable[[], tuple[int, float]], repeats: int = 3) -> float:
    rates = []
    for _ in range(repeats):
        count, seconds = run()
        rates.append(count / seconds)
    return statistics.median(rates)


def write_run(polls: int, per_call: int, durability: str) -> tuple[int, float]:
    batches = [make_poll(i % BOXES, i // BOXES) for i in range(polls)]
    calls = [
        [s for poll in batches[i : i + per_call] for s in poll]
        for i in range(0, len(batches), per_call)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite3", durability=durability)  # type: ignore[arg-type]
        try:
            start = time.perf_counter()
            for call in calls:
                store.add_samples(call)
            elapsed = time.perf_counter() - start
        finally:
            store.close()
    return polls * SAMPLES_PER_POLL, elapsed


def queue_run(polls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        retention = RetentionPolicy(retention_days=1, prune_batch_rows=20_000)
        with Store.open(path, retention=retention) as store:
            for i in range(polls):
                store.add_samples(make_poll(i % BOXES, i // BOXES))
            rows = store.stats().rows
            size = store.stats().db_bytes
            start = time.perf_counter()
            acked = 0
            while batch := store.pending(limit=1_000):
                acked += store.acknowledge(batch[-1][0])
            drain = time.perf_counter() - start
            start = time.perf_counter()
            pruned = 0
            while deleted := store.prune(T0 + timedelta(days=400)):
                pruned += deleted
            prune = time.perf_counter() - start
        # reopen a full store: time to open (counts rows and queue)
        with Store.open(path) as store:
            for i in range(polls):
                store.add_samples(make_poll(i % BOXES, i // BOXES + 10_000))
        start = time.perf_counter()
        store = Store.open(path)
        reopen = time.perf_counter() - start
        queued = store.queue_depth()
        store.close()
    return {
        "bytes_per_sample": size / rows,
        "drain_rows_per_s": acked / drain,
        "prune_rows_per_s": pruned / prune,
        "reopen_s": reopen,
        "reopen_queue_rows": queued,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    polls = 2_000 if args.quick else 8_000
    results = {
        "samples_per_s_poll_normal": median_rate(lambda: write_run(polls, 1, "normal")),
        "samples_per_s_batch40_normal": median_rate(lambda: write_run(polls, 40, "normal")),
        "samples_per_s_poll_full": median_rate(lambda: write_run(polls // 4, 1, "full")),
        "samples_per_s_batch40_full": median_rate(lambda: write_run(polls, 40, "full")),
        **queue_run(polls),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"store: {polls} polls of {SAMPLES_PER_POLL} samples from {BOXES} boxes")
    for name, value in results.items():
        print(f"  {name:32} {value:14,.2f}")
    need = 200 * SAMPLES_PER_POLL
    print(f"  target: 200 polls/s = {need:,} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
