"""Headquarters store: ingestion throughput and monthly consumption queries.

Usage: ``.venv/bin/python bench/hq.py [--quick] [--engines sqlite,mariadb,postgresql]
[--repeats N] [--modes bulk,packet,packet-spaced] [--no-query] [--gc-as-is]``

**Ingest** — the hourly readings of every channel of ``B`` buildings of the reference
estate (``wesh.hq.generate``'s inventory: 41 boxes, 288 channels a building) for ``H``
hours (10 buildings, 48 hours; ``--quick`` 2 and 24), in the order the sync delivers
them (hour by hour, site by site), stored:

* ``ingest``: through the ingestion API (``SyncReading`` objects in; resolution of
  (site, box, path), checks, idempotent insert, the stale spans recorded), in these
  shapes: ``bulk``, calls of 5,000 readings to :func:`wesh.hq.ingest.ingest` (one
  channel cache for the run, as a long-lived caller keeps), and ``packet``, calls of one
  site-hour (288 readings) to :class:`wesh.hq.ingest.HqSink`, what the sync receiver
  hands over for each hourly packet (the sink also counts them in the site's sync
  ledger, and refreshes the rollups after each call by default; ``packet-spaced``: at
  most every 5 s, ``HqSink(refresh_every_s=5)``). Rollups are refreshed lazily: the
  refresh of what the calls left stale is timed apart, and reported both ways: the
  calls alone, and the calls plus that refresh (every rollup up to date);
* ``raw``: the same rows as tuples, channel ids resolved beforehand, with the driver's
  ``executemany`` of a plain ``INSERT``, one transaction per call of the other side
  (the floor: what the engine costs with no checks, no idempotence and no rollups).

Each side runs on its own fresh database of the same engine and settings (``make_engine``:
on SQLite WAL with ``synchronous=FULL``, one ``fsync`` of the WAL per commit on both
sides, so the figures include it), in the same process, the two sides alternating which
goes first; figures are medians of three runs (one with ``--quick``), with the slowest and
fastest run, each run's ratio against the raw run beside it, and the ratio of CPU times
(this process's: meaningful for SQLite). Before each timed run the objects alive (the
workload the bench holds) are frozen out of the garbage collector (``gc.freeze``: see
:func:`quiet_heap`; ``--gc-as-is`` to measure without).

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
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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
Figures = dict[str, Any]
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
        """``bulk``: 5,000 readings a call; ``packet*``: one site-hour (288 readings) a call."""
        if mode.startswith("packet"):
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


@dataclass(frozen=True, slots=True)
class IngestRun:
    """Seconds spent in the ingestion calls and in the final refresh of the rollups.

    Wall-clock seconds, and this process's CPU seconds (``*_cpu_s``: less sensitive to
    the other work of a shared machine; SQLite works in this process, MariaDB and
    PostgreSQL in their servers, so the CPU figures mean something for SQLite only).
    """

    ingest_s: float
    refresh_s: float
    ingest_cpu_s: float
    refresh_cpu_s: float


def clocks() -> tuple[float, float]:
    """Wall-clock and CPU seconds, now."""
    return time.perf_counter(), time.process_time()


#: ``HqSink(refresh_every_s=...)`` of each site-hour shape.
SINK_REFRESH_S = {"packet": None, "packet-spaced": 5.0}


@contextlib.contextmanager
def quiet_heap(freeze: bool) -> Iterator[None]:
    """Keep the objects alive before a timed run out of the garbage collector's passes.

    The bench holds its whole workload in memory (``SyncReading`` objects, the raw
    rows): a full collection during a timed run walks all of it, which a receiver,
    holding one hand-over at a time, never does. The raw side allocates almost nothing
    while timed, so those passes would fall on the ingestion side alone.
    """
    if not freeze:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_ingest(engine: Engine, work: Workload, mode: str, *, freeze: bool) -> IngestRun:
    """``bulk``: :func:`ingest` with one channel cache; ``packet*``: :class:`HqSink`.

    Rollups are refreshed lazily: what is still stale after the last call is refreshed
    at the end and timed apart (``packet``: the sink has refreshed after each call, its
    default; ``packet-spaced``: at most every 5 s).
    """
    inserted = 0
    resolver = ChannelResolver()
    spacing = SINK_REFRESH_S.get(mode)
    sink = HqSink(engine) if spacing is None else HqSink(engine, refresh_every_s=spacing)
    with quiet_heap(freeze):
        started, started_cpu = clocks()
        for begin, end in work.slices(mode):
            if mode in SINK_REFRESH_S:
                inserted += sink.ingest(work.readings[begin:end]).inserted
            else:
                readings = work.readings[begin:end]
                inserted += ingest(engine, readings, batch_size=BATCH, resolver=resolver).inserted
        ingested, ingested_cpu = clocks()
        if mode in SINK_REFRESH_S:
            sink.refresh()
        else:
            refresh_rollups(engine)
        refreshed, refreshed_cpu = clocks()
    assert inserted == len(work.readings), inserted
    return IngestRun(
        ingested - started,
        refreshed - ingested,
        ingested_cpu - started_cpu,
        refreshed_cpu - ingested_cpu,
    )


def run_raw(engine: Engine, work: Workload, mode: str, *, freeze: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds of a plain ``executemany`` of the same rows and slices."""
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
    with quiet_heap(freeze):
        started, started_cpu = clocks()
        with engine.connect() as conn:
            statement = (
                RAW_INSERT if conn.dialect.paramstyle == "qmark" else RAW_INSERT.replace("?", "%s")
            )
            for begin, end in work.slices(mode):
                with conn.begin():
                    conn.exec_driver_sql(statement, rows[begin:end])
        ended, ended_cpu = clocks()
    return ended - started, ended_cpu - started_cpu


def bench_ingest(
    dbs: Databases, buildings: int, hours: int, repeats: int, mode: str, *, freeze: bool
) -> Figures:
    """Median rates of ``repeats`` interleaved runs, each side on a fresh database.

    ``ingest_per_s``: the ingestion calls alone; ``total_per_s``: the calls and the
    refresh of what they left stale (every rollup up to date); ``raw_per_s``: the
    baseline. Ratios are of the medians; ``*_min``/``*_max`` give the spread of the runs.
    """
    runs: list[IngestRun] = []
    raw_s: list[tuple[float, float]] = []
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
        for side in ("ingest", "raw") if repeat % 2 == 0 else ("raw", "ingest"):
            if side == "ingest":
                with engine_for(pair[0]) as engine:
                    runs.append(run_ingest(engine, work, mode, freeze=freeze))
            else:
                with engine_for(pair[1]) as engine:
                    raw_s.append(run_raw(engine, work, mode, freeze=freeze))
    ingest_rates = [count / run.ingest_s for run in runs]
    total_rates = [count / (run.ingest_s + run.refresh_s) for run in runs]
    refresh_rates = [count / run.refresh_s for run in runs]
    raw_rates = [count / seconds for seconds, _ in raw_s]
    raw = statistics.median(raw_rates)
    cpu_raw = statistics.median(count / cpu for _, cpu in raw_s)
    cpu_ingest = statistics.median(count / run.ingest_cpu_s for run in runs)
    cpu_total = statistics.median(count / (run.ingest_cpu_s + run.refresh_cpu_s) for run in runs)
    return {
        "readings": count,
        "runs": repeats,
        "ingest_per_s": statistics.median(ingest_rates),
        "ingest_min": min(ingest_rates),
        "ingest_max": max(ingest_rates),
        "refresh_per_s": statistics.median(refresh_rates),
        "total_per_s": statistics.median(total_rates),
        "total_min": min(total_rates),
        "total_max": max(total_rates),
        "raw_per_s": raw,
        "raw_min": min(raw_rates),
        "raw_max": max(raw_rates),
        "ratio": statistics.median(ingest_rates) / raw,
        "total_ratio": statistics.median(total_rates) / raw,
        "cpu_ratio": cpu_ingest / cpu_raw,
        "cpu_total_ratio": cpu_total / cpu_raw,
        "pair_ratios": ", ".join(  # each run against the raw run next to it
            f"{i / r:.2f}/{t / r:.2f}"
            for i, t, r in zip(ingest_rates, total_rates, raw_rates, strict=True)
        ),
    }


# ----------------------------------------------------------------------------- query


def bench_query(dbs: Databases, first: date, repeats: int) -> Figures:
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
    parser.add_argument("--repeats", type=int, help="ingest runs per shape (default 3, quick 1)")
    parser.add_argument(
        "--modes",
        default="bulk,packet",
        help="ingest shapes: bulk (5,000 a call), packet (a site-hour), packet-spaced",
    )
    parser.add_argument("--no-query", action="store_true", help="skip the query benchmark")
    parser.add_argument(
        "--gc-as-is",
        action="store_true",
        help="do not freeze the bench's own objects out of the garbage collector (quiet_heap)",
    )
    args = parser.parse_args()
    buildings, hours, repeats = (2, 24, 1) if args.quick else (10, 48, 3)
    repeats = args.repeats or repeats
    query_first, query_repeats = (date(2024, 9, 1), 3) if args.quick else (date(2024, 1, 1), 7)
    results: dict[str, dict[str, Figures]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wesh-bench-hq-") as workdir:
        for kind in args.engines.split(","):
            try:
                dbs = Databases(kind, Path(workdir))
            except (ServerUnavailable, ServerFailed) as exc:
                notes.append(f"{kind}: skipped ({exc})")
                print(f"{kind}: skipped ({exc})", flush=True)
                continue
            results[kind] = {}
            try:
                for mode in args.modes.split(","):
                    print(f"{kind}: ingest {mode} ({buildings} buildings x {hours} h)", flush=True)
                    results[kind][mode] = bench_ingest(
                        dbs, buildings, hours, repeats, mode, freeze=not args.gc_as_is
                    )
                    print(f"{kind}: ingest {mode} {results[kind][mode]}", flush=True)
                if not args.no_query:
                    print(f"{kind}: query ({query_first} to {END})...", flush=True)
                    results[kind]["query"] = bench_query(dbs, query_first, query_repeats)
                    print(f"{kind}: query {results[kind]['query']}", flush=True)
            finally:
                dbs.close()
    print()
    print(markdown(results, notes, command=" ".join(["bench/hq.py", *sys.argv[1:]])))
    return 0


_SHAPES = {
    "bulk": "5,000 readings, `ingest`",
    "packet": "a site-hour (288), `HqSink()`",
    "packet-spaced": "a site-hour (288), `HqSink(refresh_every_s=5)`",
}


def markdown(results: dict[str, dict[str, Figures]], notes: list[str], *, command: str) -> str:
    lines = [
        "| engine | calls of | readings x runs | ingest calls (readings/s) | + final refresh "
        "| raw executemany | ratio, calls | ratio, with refresh | per run (calls/with) "
        "| CPU ratio (calls/with) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for kind, figures in results.items():
        for mode, label in _SHAPES.items():
            if mode not in figures:
                continue
            ing = figures[mode]

            def spread(name: str, ing: Figures = ing) -> str:
                middle = ing[f"{name}_per_s"]
                return f"{middle:,.0f} ({ing[f'{name}_min']:,.0f}-{ing[f'{name}_max']:,.0f})"

            lines.append(
                f"| {kind} | {label} | {ing['readings']:,.0f} x {ing['runs']} "
                f"| {spread('ingest')} | {spread('total')} | {spread('raw')} "
                f"| {ing['ratio']:.2f} | {ing['total_ratio']:.2f} | {ing['pair_ratios']} "
                f"| {ing['cpu_ratio']:.2f}/{ing['cpu_total_ratio']:.2f} |"
            )
    queries = {kind: figures["query"] for kind, figures in results.items() if "query" in figures}
    if queries:
        lines += [
            "",
            "| engine | readings in the year | monthly, rollups (ms) | monthly, raw (ms) "
            "| speed-up | same answer |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for kind, qry in queries.items():
            lines.append(
                f"| {kind} | {qry['readings']:,.0f} | {qry['rollup_ms']:.1f} "
                f"| {qry['raw_ms']:.0f} | {qry['speedup']:.0f}x "
                f"| {'yes' if qry['same'] else 'NO'} |"
            )
    lines.append("")
    lines.append(f"Command: `.venv/bin/python {command}`.")
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
