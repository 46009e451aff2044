"""A process that writes polls into a real Store until it is killed (the crash test's victim).

Run as ``python -m tests.gateway.store_crash_writer DB [--polls N]`` from the repository
root. It resumes after the last complete poll found in the store, prints ``ready`` once
open, then one line per committed poll id. Every poll is 30 samples at
``T0 + poll_id seconds`` whose ``poll.id`` index carries the poll id; every 7th poll
also raises an alarm, every 5th flips the box status, every 10th acknowledges what is
pending and prunes (retention 20 s, small batches), so kills land in every kind of
transaction.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from tests.gateway._store_builders import T0, event, poll
from wesh.gateway.store import RetentionPolicy, Store

BOX = "crash"
RETENTION = RetentionPolicy(
    retention_days=20 / 86_400, events_retention_days=20 / 86_400, prune_batch_rows=45
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db", type=Path)
    parser.add_argument("--polls", type=int, default=0, help="stop after N polls (0: never)")
    args = parser.parse_args()
    with Store.open(args.db, retention=RETENTION) as store:
        last = store.latest_one(f"{BOX}/poll.id")
        poll_id = int(last.value) + 1 if last is not None else 0
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        written = 0
        while not args.polls or written < args.polls:
            at = T0 + timedelta(seconds=poll_id)
            store.add_samples(poll(BOX, poll_id, at=at))
            if poll_id % 7 == 0:
                store.add_event(event("index_jump", "alarm", at=at, box=BOX, poll=poll_id))
            if poll_id % 5 == 0:
                store.set_box_status(BOX, up=poll_id % 10 == 0, at=at, error="flip")
            if poll_id % 10 == 0:
                pending = store.pending(limit=200)
                if pending:
                    store.acknowledge(pending[-1][0], seqs=[s for s, *_ in store.pending_events()])
                store.prune(at)
            sys.stdout.write(f"{poll_id}\n")
            sys.stdout.flush()
            poll_id += 1
            written += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
