"""Alert rules over the reference estate: a full evaluation, and one on ingest.

Usage: ``.venv/bin/python bench/alerts.py [--quick] [--buildings N] [--repeats R]``

**Data** — ``wesh.hq.generate`` fills a SQLite database with the reference estate
(100 buildings x (40 dwellings + common areas) = 4,100 boxes, 28,800 channels) and
**one day of hourly readings** (the last of ``--days``, 2 by default: the day before
gives the nights and daily means some rules look back on), then marks every site as
heard from at the end of that day (``gateway.last_seen_at``, ``sync_ledger``), as a
live estate would be. ``--quick``: 10 buildings.

**Figures** (medians of ``--repeats`` runs, evaluation time at the end of the day):

* ``full``: :func:`wesh.hq.alerts.evaluate.evaluate` of every enabled rule over every
  subject (what the schedule runs every ``evaluate_every``), on one connection;
* ``on ingest``: the same with ``channels=`` the 288 channels of one building (what a
  site-hour's packet touches: the data rules only, for those channels);
* ``engine``: :meth:`wesh.hq.alerts.engine.AlertEngine.evaluate` end to end (rollup
  refresh, evaluation, transitions, mails queued): the first run opens the alerts the
  generated data deserves, the next ones are the steady state (nothing changes);
* ``storm``: the same with the frost threshold raised to 21 °C (most living rooms "freeze")
  and a contact: the first run opens, fires and queues thousands of alerts and mails (the
  write path at scale), the next ones keep them open.

The machine is shared: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, select, update  # noqa: E402

from wesh.hq.db import make_engine, transaction  # noqa: E402
from wesh.hq.generate import GenerateOptions, generate  # noqa: E402
from wesh.hq.models import Box, Building, Channel, Gateway, SyncLedger  # noqa: E402
from wesh.hq.timeutil import day_bounds  # noqa: E402

END = date(2025, 1, 15)  # a winter Wednesday: heating on
#: The write path at scale: most living rooms (about 19-21 °C) count as "frost" at 21 °C,
#: so the first run opens, fires and mails thousands of alerts.
STORM = """
[rules.frost]
below_c = 21
clear_c = 22
[[contacts]]
scope = "*"
emails = ["astreinte@example.org"]
"""


def fill(engine: Engine, buildings: int, days: int) -> tuple[float, int, int]:
    """Generate the estate; return (seconds, boxes, readings)."""
    started = time.perf_counter()
    report = generate(
        engine, GenerateOptions(end=END, buildings=buildings, days=days, raw_days=days, seed=1)
    )
    now = day_bounds(END)[1]
    with transaction(engine) as conn:
        conn.execute(update(Gateway).values(last_seen_at=now))
        sites = conn.scalars(select(Gateway.site_id)).all()
        conn.execute(
            SyncLedger.__table__.insert(),
            [
                {"site_id": site, "last_seq": 1, "received_count": 24, "updated_at": now}
                for site in sites
            ],
        )
    return time.perf_counter() - started, report.boxes, report.readings


def one_building_channels(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Channel.id)
                .join(Box, Box.id == Channel.box_id)
                .join(Gateway, Gateway.id == Box.gateway_id)
                .join(Building, Building.id == Gateway.building_id)
                .where(Building.code == "B001")
            )
        )


def median_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    from wesh.hq.alerts.config import config_from_text, default_config  # noqa: PLC0415
    from wesh.hq.alerts.engine import AlertEngine  # noqa: PLC0415
    from wesh.hq.alerts.evaluate import Evaluation, evaluate  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 buildings, 3 runs")
    parser.add_argument("--buildings", type=int, help="buildings (default 100; quick 10)")
    parser.add_argument("--days", type=int, default=2, help="days of hourly readings")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 7; quick 3)")
    args = parser.parse_args()
    buildings = args.buildings or (10 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    config = default_config()
    now = day_bounds(END)[1]
    with tempfile.TemporaryDirectory(prefix="wesh-bench-alerts-") as workdir:
        engine = make_engine(Path(workdir) / "hq.sqlite3")
        try:
            print(f"generating {buildings} buildings, {args.days} day(s) hourly...", flush=True)
            fill_s, boxes, readings = fill(engine, buildings, args.days)
            print(f"  {boxes:,} boxes, {readings:,} readings in {fill_s:.1f} s", flush=True)
            channels = one_building_channels(engine)
            with engine.connect() as conn:

                def full() -> Evaluation:
                    return evaluate(conn, config, now)

                def incremental() -> Evaluation:
                    return evaluate(conn, config, now, channels=channels)

                full()  # warm-up (caches, SQLite pages)
                full_s, full_result = median_time(full, repeats)
                inc_s, inc_result = median_time(incremental, repeats)
            assert isinstance(full_result, Evaluation)
            assert isinstance(inc_result, Evaluation)
            print(f"full evaluation: {full_s:.3f} s (median of {repeats})", flush=True)
            print(f"on ingest ({len(channels)} channels): {inc_s * 1000:.1f} ms", flush=True)
            verdicts = Counter(c.rule for c in full_result.conditions)
            alerts = AlertEngine(engine, config, worker_id="bench", now=lambda: now)
            started = time.perf_counter()
            first = alerts.evaluate()
            first_s = time.perf_counter() - started
            steady_s, _ = median_time(alerts.evaluate, max(1, repeats // 2))
            ingest_s, _ = median_time(lambda: alerts.on_ingest(channels), repeats)
            print("storm: frost threshold raised to 21 °C, one contact...", flush=True)
            stormy = AlertEngine(
                engine, config_from_text(STORM), worker_id="bench-storm", now=lambda: now
            )
            started = time.perf_counter()
            storm = stormy.evaluate()
            storm_s = time.perf_counter() - started
            storm_steady_s, _ = median_time(stormy.evaluate, max(1, repeats // 2))
        finally:
            engine.dispose()
    print()
    print("| estate | readings | full evaluation (s) | on ingest, one building (ms) "
          "| engine: first run (s) | engine: steady (s) | engine: on ingest (ms) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {buildings} buildings, {boxes:,} boxes | {readings:,} | {full_s:.2f} "
        f"| {inc_s * 1000:.0f} | {first_s:.2f} | {steady_s:.2f} | {ingest_s * 1000:.0f} |"
    )
    print()
    print(f"Verdicts of the full evaluation: {len(full_result.conditions):,} "
          f"({', '.join(f'{rule} {n}' for rule, n in verdicts.most_common()) or 'none'}); "
          f"rules failed: {full_result.errors or 'none'}.")  # fmt: skip
    families = ", ".join(f"{name} {t * 1000:.0f} ms" for name, t in full_result.timings_s.items())
    print(f"Time per rule family (last full run): {families}.")
    print(f"Engine's first run: {first}")
    print(
        f"Storm (frost at 21 °C): first run {storm_s:.2f} s: {storm.opened:,} opened, "
        f"{storm.fired:,} fired, {storm.mails_queued:,} mails queued, {storm.writes:,} writes; "
        f"then {storm_steady_s:.2f} s a run with them open (nothing changes)."
    )
    flags = " --quick" if args.quick else ""
    print(f"Command: `.venv/bin/python bench/alerts.py{flags}` (data generated in {fill_s:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
