"""Headquarters store: ingestion throughput and monthly consumption queries.

Usage: ``.venv/bin/python bench/hq.py [--quick] [--engines sqlite,mariadb,postgresql]``

**Ingest** — the hourly readings of every channel of ``B`` buildings of the reference
estate (``wesh.hq.generate``'s inventory: 41 boxes, 288 channels a building) for ``H``
hours, in the order the sync delivers them (hour by hour, site by site), stored:

* ``ingest``: through the ingestion API (``SyncReading`` objects in; resolution of
  (site, box, path), checks, idempotent insert, re-roll of the hourly and daily rollups
  the readings touch: rollups are refreshed lazily, and the final refresh is timed too),
  in two shapes: calls of 5,000 readings to :func:`wesh.hq.ingest.ingest` (one channel
  cache for the run, as a long-lived caller keeps), and calls of one site-hour (288
  readings) to :class:`wesh.hq.ingest.HqSink`,
  what the sync receiver hands over for each hourly packet (the sink also counts them in
  the site's sync ledger);
* ``raw``: the same rows as tuples, channel ids resolved beforehand, with the driver's
  ``executemany`` of a plain ``INSERT``, one transaction per call of the other side
  (the floor: what the engine costs with no checks, no idempotence and no rollups).

Each side runs on its own fresh database of the same engine, in the same process;
figures are medians of three runs (one with ``--quick``).

**Query** — monthly consumption of one building (41 boxes, every kind) over a year:
``consumption`` (served from ``rollup_day``) versus ``consumption_raw`` (steps of the
raw readings), on a database filled by ``wesh.hq.generate`` with hourly readings for
the whole year (``--quick``: September to December). The two answers are checked equal.
Medians of seven runs after one warm-up.

MariaDB and PostgreSQL run on private servers started with ``tests/hq/servers.py``
(skipped with a note when their programs are missing). The machine is shared: read the
figures as orders of magnitude, and the ratios as the result.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, select  # noqa: E402
from tests.hq.servers import STARTERS, PrivateServer, ServerFailed, ServerUnavailable  # noqa: E402

from wesh.hq.db import make_engine  # noqa: E402
from wesh.hq.generate import GenerateOptions, generate  # noqa: E402
from wesh.hq.ingest import ChannelResolver, HqSink, ingest  # noqa: E402
from wesh.hq.models import Box, Channel, Gateway  # noqa: E402
from wesh.hq.rollups import refresh_rollups  # noqa: E402
from wesh.hq.timeutil import day_bounds, to_epoch_us  # noqa: E402
from wesh.sync.sink import SyncReading  # noqa: E402

END = date(2024, 12, 31)
BATCH = 5000
RAW_INSERT = (
    "INSERT INTO reading (channel_id, at, value, provenance, quality, aggregate) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


# ----------------------------------------------------------------------------- databases


class Databases:
    """Fresh databases of one engine: SQLite files, or databases on a private server."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.server: PrivateServer | None = None
        self.count = 0
        if kind != "sqlite":
            self.server = STARTERS[kind]()  # type: ignore[index]

    def new(self) -> str:
        self.count += 1
        if self.server is None:
            return f"sqlite:///{self.workdir / f'bench{self.count}.sqlite3'}"
        return self.server.url(self.server.create_database("wesh_bench"))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- ingest


@dataclass(frozen=True, slots=True)
class Workload:
    readings: list[SyncReading]
    keys: list[tuple[str, str, str]]  # (site, box, path) of each reading, for the raw side
    packets: list[tuple[int, int]]  # [start, end) of each site-hour in ``readings``

    def slices(self, mode: str) -> list[tuple[int, int]]:
        """``bulk``: 5,000 readings a call; ``packet``: one site-hour (288 readings) a call."""
        if mode == "packet":
            return self.packets
        return [
            (a, min(a + BATCH, len(self.readings))) for a in range(0, len(self.readings), BATCH)
        ]


def inventory(engine: Engine, buildings: int) -> None:
    """The estate's inventory (and one modelled day before the readings)."""
    generate(engine, GenerateOptions(end=END, buildings=buildings, days=1, raw_days=0))


def workload(engine: Engine, hours: int) -> Workload:
    with engine.connect() as conn:
        channels = conn.execute(
            select(Gateway.site_id, Box.box_ref, Channel.path, Channel.unit, Channel.is_index)
            .join(Box, Box.gateway_id == Gateway.id)
            .join(Channel, Channel.box_id == Box.id)
            .order_by(Gateway.site_id, Box.box_ref, Channel.path)
        ).all()
    start = day_bounds(END)[1]
    readings: list[SyncReading] = []
    packets: list[tuple[int, int]] = []
    for hour in range(hours):
        at = start + timedelta(hours=hour)
        for number, (site, box, path, unit, is_index) in enumerate(channels):
            if not packets or readings[-1].site != site or readings[-1].at != at:
                packets.append((len(readings), len(readings)))
            if is_index:
                value: float = 10_000_000 + number * 1000 + hour * (50 + number % 7)
                kind, aggregate = "index", "hour_last"
            else:
                value = round(20.0 + (number % 13) / 10 + (hour % 24) / 20, 2)
                kind, aggregate = "gauge", "hour_mean"
            readings.append(
                SyncReading(site, box, path, at, value, unit, kind, "measured", aggregate)  # type: ignore[arg-type]
            )
            packets[-1] = (packets[-1][0], len(readings))
    return Workload(readings, [(r.site, r.box, r.path) for r in readings], packets)


def run_ingest(engine: Engine, work: Workload, mode: str) -> float:
    """``bulk``: :func:`ingest` with one channel cache; ``packet``: :class:`HqSink`.

    The time includes bringing every rollup up to date (rollups are refreshed lazily).
    """
    inserted = 0
    resolver = ChannelResolver()
    sink = HqSink(engine)
    started = time.perf_counter()
    for begin, end in work.slices(mode):
        if mode == "packet":
            inserted += sink.ingest(work.readings[begin:end]).inserted
        else:
            readings = work.readings[begin:end]
            inserted += ingest(engine, readings, batch_size=BATCH, resolver=resolver).inserted
    if mode == "packet":  # rollups are lazy: what is still stale is part of the cost
        sink.refresh()
    else:
        refresh_rollups(engine)
    seconds = time.perf_counter() - started
    assert inserted == len(work.readings), inserted
    return len(work.readings) / seconds


def run_raw(engine: Engine, work: Workload, mode: str) -> float:
    with engine.connect() as conn:
        ids = {
            (site, box, path): cid
            for site, box, path, cid in conn.execute(
                select(Gateway.site_id, Box.box_ref, Channel.path, Channel.id)
                .join(Box, Box.gateway_id == Gateway.id)
                .join(Channel, Channel.box_id == Box.id)
            )
        }
    rows = [
        (ids[key], to_epoch_us(r.at), float(r.value), "measured", "good", r.aggregate)
        for key, r in zip(work.keys, work.readings, strict=True)
    ]
    started = time.perf_counter()
    with engine.connect() as conn:
        statement = (
            RAW_INSERT if conn.dialect.paramstyle == "qmark" else RAW_INSERT.replace("?", "%s")
        )
        for begin, end in work.slices(mode):
            with conn.begin():
                conn.exec_driver_sql(statement, rows[begin:end])
    return len(rows) / (time.perf_counter() - started)


def bench_ingest(
    dbs: Databases, buildings: int, hours: int, repeats: int, mode: str
) -> dict[str, float]:
    ingest_rates, raw_rates = [], []
    count = 0
    for repeat in range(repeats):
        pair = []
        for _ in range(2):
            url = dbs.new()
            with engine_for(url) as engine:
                inventory(engine, buildings)
            pair.append(url)
        with engine_for(pair[0]) as engine:
            work = workload(engine, hours)
        count = len(work.readings)
        order: list[tuple[str, Callable[[Engine, Workload, str], float], list[float]]] = [
            (pair[0], run_ingest, ingest_rates),
            (pair[1], run_raw, raw_rates),
        ]
        if repeat % 2:
            order.reverse()
        for url, run, rates in order:
            with engine_for(url) as engine:
                rates.append(run(engine, work, mode))
    ingest_rate = statistics.median(ingest_rates)
    raw_rate = statistics.median(raw_rates)
    return {
        "readings": count,
        "ingest_per_s": ingest_rate,
        "raw_per_s": raw_rate,
        "ratio": ingest_rate / raw_rate,
    }


# ----------------------------------------------------------------------------- query


def bench_query(dbs: Databases, first: date, repeats: int) -> dict[str, float]:
    from wesh.hq.queries import consumption, consumption_raw  # noqa: PLC0415

    days = (END - first).days + 1
    url = dbs.new()
    with engine_for(url) as engine:
        started = time.perf_counter()
        report = generate(
            engine, GenerateOptions(end=END, buildings=2, days=days, raw_days=days, seed=1)
        )
        fill_s = time.perf_counter() - started
        scope = {"building": "B001", "start": first, "end": END + timedelta(days=1)}

        def from_rollups() -> object:
            return consumption(engine, **scope, by="month")  # type: ignore[arg-type]

        def from_raw() -> object:
            return consumption_raw(engine, **scope, by="month")  # type: ignore[arg-type]

        same = from_rollups() == from_raw()  # also the warm-up
        rollup_s = median_time(from_rollups, repeats)
        raw_s = median_time(from_raw, repeats)
    return {
        "days": days,
        "readings": report.readings,
        "fill_s": fill_s,
        "rollup_ms": rollup_s * 1000,
        "raw_ms": raw_s * 1000,
        "speedup": raw_s / rollup_s,
        "same": float(same),
    }


def median_time(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument(
        "--engines", default="sqlite,mariadb,postgresql", help="comma-separated engines"
    )
    args = parser.parse_args()
    buildings, hours, repeats = (2, 24, 1) if args.quick else (10, 48, 3)
    query_first, query_repeats = (date(2024, 9, 1), 3) if args.quick else (date(2024, 1, 1), 7)
    results: dict[str, dict[str, dict[str, float]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wesh-bench-hq-") as workdir:
        for kind in args.engines.split(","):
            try:
                dbs = Databases(kind, Path(workdir))
            except (ServerUnavailable, ServerFailed) as exc:
                notes.append(f"{kind}: skipped ({exc})")
                print(f"{kind}: skipped ({exc})", flush=True)
                continue
            try:
                print(f"{kind}: ingest ({buildings} buildings x {hours} h)...", flush=True)
                bulk = bench_ingest(dbs, buildings, hours, repeats, "bulk")
                print(f"{kind}: ingest, 5,000 a call {bulk}", flush=True)
                packet = bench_ingest(dbs, buildings, hours, repeats, "packet")
                print(f"{kind}: ingest, a site-hour a call {packet}", flush=True)
                print(f"{kind}: query ({query_first} to {END})...", flush=True)
                query_figures = bench_query(dbs, query_first, query_repeats)
                print(f"{kind}: query {query_figures}", flush=True)
                results[kind] = {"bulk": bulk, "packet": packet, "query": query_figures}
            finally:
                dbs.close()
    print()
    print(markdown(results, notes, quick=args.quick))
    return 0


def markdown(
    results: dict[str, dict[str, dict[str, float]]], notes: list[str], *, quick: bool
) -> str:
    lines = [
        "| engine | readings | calls of | ingest (readings/s) | raw executemany (readings/s) "
        "| ratio |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for kind, figures in results.items():
        for mode, label in (("bulk", "5,000 readings"), ("packet", "a site-hour (288)")):
            ing = figures[mode]
            lines.append(
                f"| {kind} | {ing['readings']:,.0f} | {label} | {ing['ingest_per_s']:,.0f} "
                f"| {ing['raw_per_s']:,.0f} | {ing['ratio']:.2f} |"
            )
    lines += [
        "",
        "| engine | readings in the year | monthly, rollups (ms) | monthly, raw (ms) "
        "| speed-up | same answer |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for kind, figures in results.items():
        qry = figures["query"]
        lines.append(
            f"| {kind} | {qry['readings']:,.0f} | {qry['rollup_ms']:.1f} | {qry['raw_ms']:.0f} "
            f"| {qry['speedup']:.0f}x | {'yes' if qry['same'] else 'NO'} |"
        )
    lines.append("")
    lines.append(f"Command: `.venv/bin/python bench/hq.py{' --quick' if quick else ''}`.")
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
