"""weshd polling a large farm of simulated WES boxes: rate, lag behind schedule, CPU, RSS.

Usage: ``.venv/bin/python bench/gateway.py [--quick] [--boxes N] [--interval S]
[--seconds T] [--json]``

* The simulator (``wesh sim wes``, HTTP only) runs in its own process, in address mode:
  box *i* listens on 127.20.0.1 + *i*, port 18080, as on a real site (one address per box).
* One ``weshd`` process polls every box every ``--interval`` seconds (default 10 s: with
  2,000 boxes, 200 polls/s), with the default poll policy (32 concurrent polls, 2 s
  jitter), its store on a temporary directory.
* After a warm-up of two intervals (the boxes' first polls are spread over the first
  interval; weshd freezes its long-lived objects out of the GC's sight after it), weshd's
  polling summaries (``--stats-interval``, one per interval) give the polls, the samples
  and the lag of every poll behind its scheduled time (p50, p99, max per window);
  weshd's own CPU time and RSS are read from ``/proc/<pid>``, as are the simulator's
  (reported, not counted against weshd).

Goal (issue 4): 2,000 boxes at 10 s, p99 lag < 1 s and RSS < 150 MB on the 2-core machine.
``--quick``: 500 boxes for 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_ADDRESS = "127.20.0.1"
HTTP_PORT = 18080
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SUMMARY = re.compile(
    r"Polling summary: (?P<boxes>\d+) boxes \((?P<up>\d+) up, (?P<down>\d+) down\); "
    r"(?P<polls>\d+) polls in (?P<elapsed>[\d.]+) s \([\d.]+/s\), (?P<samples>\d+) samples, "
    r"(?P<failed>\d+) failed, "
    r"(?P<timeouts>\d+) timed out, (?P<skipped>\d+) slots skipped; lag p50 (?P<p50>[\d.]+) s, "
    r"p99 (?P<p99>[\d.]+) s, max (?P<max>[\d.]+) s; "
    r"poll time p50 (?P<took50>[\d.]+) s, p99 (?P<took99>[\d.]+) s"
)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of a process (``VmRSS``, or ``VmHWM`` for the peak), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{key}:")[1].split()[0]) / 1024


@dataclass
class Window:
    polls: int
    samples: int
    elapsed_s: float
    failed: int
    timeouts: int
    skipped: int
    p50: float
    p99: float
    max: float
    took50: float
    took99: float
    up: int


@dataclass
class Run:
    boxes: int
    interval_s: float
    seconds: float
    profile: str
    samples_per_poll: float = 0.0
    windows: list[Window] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    hwm_mb: float = 0.0
    sim_cpu_s: float = 0.0
    sim_rss_mb: float = 0.0
    sim_ready_s: float = 0.0
    weshd_ready_s: float = 0.0


def start_sim(count: int) -> tuple[subprocess.Popen[bytes], float]:
    """Start the simulator farm in its own process; return it once it serves."""
    command = [
        sys.executable,
        "-m",
        "wesh",
        "sim",
        "wes",
        "--count",
        str(count),
        "--base-address",
        BASE_ADDRESS,
        "--http-port",
        str(HTTP_PORT),
        "--no-ftp",
        "--no-m2m",
        "--seed",
        "1",
        "--json",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        assert process.stderr is not None
        raise SystemExit(f"bench: cannot start the simulator: {process.stderr.read().decode()}")
    return process, time.perf_counter() - started


#: the reference workload's channels of a dwelling (docs/DESIGN.md): TIC indexes and
#: apparent power, cold water, hot water and heat counters, temperature and humidity
REFERENCE_CHANNELS = (
    ("tic.1.index.hchc", "electricity"),
    ("tic.1.index.hchp", "electricity"),
    ("tic.1.power_va", "power"),
    ("impulsion.1.index", "cold_water"),
    ("impulsion.2.index", "hot_water"),
    ("impulsion.3.index", "heat"),
    ("temp.1", "temperature"),
    ("temp.2", "humidity"),
)


def write_config(
    root: Path,
    count: int,
    interval_s: float,
    *,
    profile: str = "all",
    max_concurrency: int | None = None,
) -> Path:
    """A weshd.toml polling every simulated box.

    ``profile`` ``all``: every reading of the page is stored (about 88 a poll);
    ``reference``: only the reference workload's 8 channels (``only_configured``).
    """
    first = [int(part) for part in BASE_ADDRESS.split(".")]
    base = (first[0] << 24) | (first[1] << 16) | (first[2] << 8) | first[3]
    lines = [
        f'state_dir = "{root / "state"}"',
        "[site]",
        'id = "bench"',
        'name = "bench"',
        "[api]",
        'socket = "weshd.sock"',
    ]
    if max_concurrency is not None:
        lines += ["[poll]", f"max_concurrency = {max_concurrency}"]
    for i in range(count):
        address = base + i
        host = ".".join(str((address >> shift) & 255) for shift in (24, 16, 8, 0))
        lines += [
            "[[boxes]]",
            f'id = "box{i:04d}"',
            f'serves = "logement-{i:04d}"',
            f'host = "{host}"',
            f"port = {HTTP_PORT}",
            f"poll_interval_s = {interval_s}",
            "timeout_s = 5",
        ]
        if profile == "reference":
            lines.append("only_configured = true")
            for path, meaning in REFERENCE_CHANNELS:
                lines += ["[[boxes.channels]]", f'path = "{path}"', f'meaning = "{meaning}"']
    path = root / "weshd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(
    count: int, interval_s: float, seconds: float, profile: str, max_concurrency: int | None
) -> Run:
    """Run the simulator and weshd; measure weshd over ``seconds`` after the warm-up."""
    result = Run(boxes=count, interval_s=interval_s, seconds=seconds, profile=profile)
    sim, result.sim_ready_s = start_sim(count)
    root = Path(tempfile.mkdtemp(prefix="weshd-bench-"))
    log_path = root / "weshd.log"
    weshd: subprocess.Popen[bytes] | None = None
    try:
        config = write_config(
            root, count, interval_s, profile=profile, max_concurrency=max_concurrency
        )
        sim_cpu0 = cpu_s(sim.pid)
        with log_path.open("wb") as log:
            started = time.perf_counter()
            weshd = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from wesh.cli import weshd_main; weshd_main()",
                    "--config",
                    str(config),
                    "--stats-interval",
                    str(interval_s),
                ],
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")},
            )
            socket = root / "state" / "weshd.sock"
            while not socket.exists():
                if weshd.poll() is not None:
                    raise SystemExit(f"bench: weshd exited:\n{log_path.read_text()}")
                time.sleep(0.05)
            result.weshd_ready_s = time.perf_counter() - started
            warmup = 2 * interval_s  # first polls spread over an interval, GC settled
            time.sleep(warmup)
            skip = len(_summaries(log_path))
            cpu0, wall0 = cpu_s(weshd.pid), time.perf_counter()
            end = wall0 + seconds
            while time.perf_counter() < end:
                time.sleep(1.0)
                result.rss_mb.append(rss_mb(weshd.pid))
            time.sleep(0.5)  # let the window ending now be logged
            result.cpu_s = cpu_s(weshd.pid) - cpu0
            result.wall_s = time.perf_counter() - wall0
            result.hwm_mb = rss_mb(weshd.pid, "VmHWM")
            result.sim_cpu_s = cpu_s(sim.pid) - sim_cpu0
            result.sim_rss_mb = rss_mb(sim.pid)
            result.windows = _summaries(log_path)[skip:]
            weshd.send_signal(signal.SIGTERM)
            weshd.wait(timeout=60)
    finally:
        if weshd is not None and weshd.poll() is None:
            weshd.kill()
            weshd.wait()
        sim.terminate()
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    errors = [
        line
        for line in log_path.read_text().splitlines()
        if " ERROR " in line or "Traceback" in line
    ]
    shutil.rmtree(root, ignore_errors=True)
    if errors:
        print("bench: weshd logged errors:", *errors[:10], sep="\n  ", file=sys.stderr)
    return result


def _summaries(log: Path) -> list[Window]:
    windows = []
    for match in _SUMMARY.finditer(log.read_text()):
        windows.append(
            Window(
                polls=int(match["polls"]),
                samples=int(match["samples"]),
                elapsed_s=float(match["elapsed"]),
                failed=int(match["failed"]),
                timeouts=int(match["timeouts"]),
                skipped=int(match["skipped"]),
                p50=float(match["p50"]),
                p99=float(match["p99"]),
                max=float(match["max"]),
                took50=float(match["took50"]),
                took99=float(match["took99"]),
                up=int(match["up"]),
            )
        )
    return windows


def figures(result: Run) -> dict[str, float | str]:
    """The headline figures of a run."""
    windows = result.windows
    polls = sum(w.polls for w in windows)
    elapsed = sum(w.elapsed_s for w in windows)
    return {
        "profile": result.profile,
        "samples_per_poll": sum(w.samples for w in windows) / polls if polls else 0.0,
        "boxes": result.boxes,
        "interval_s": result.interval_s,
        "target_polls_s": result.boxes / result.interval_s,
        "polls_s": polls / elapsed if elapsed else 0.0,
        "failed": sum(w.failed for w in windows),
        "skipped_slots": sum(w.skipped for w in windows),
        "lag_p50_s": statistics.median(w.p50 for w in windows) if windows else float("nan"),
        "lag_p99_s": max((w.p99 for w in windows), default=float("nan")),
        "lag_max_s": max((w.max for w in windows), default=float("nan")),
        "poll_time_p50_s": statistics.median(w.took50 for w in windows) if windows else 0.0,
        "poll_time_p99_s": max((w.took99 for w in windows), default=float("nan")),
        "cpu_pct": 100 * result.cpu_s / result.wall_s if result.wall_s else 0.0,
        "cpu_ms_per_poll": 1000 * result.cpu_s / polls if polls else float("nan"),
        "rss_mb": max(result.rss_mb, default=0.0),
        "rss_peak_mb": result.hwm_mb,
        "sim_cpu_pct": 100 * result.sim_cpu_s / result.wall_s if result.wall_s else 0.0,
        "sim_rss_mb": result.sim_rss_mb,
        "weshd_ready_s": result.weshd_ready_s,
        "windows": len(windows),
    }


def report(result: Run, f: dict[str, float | str]) -> None:
    """Print the figures of one run."""
    print(
        f"weshd polling {result.boxes} simulated boxes every {result.interval_s:g} s, "
        f"channels: {result.profile} ({f['samples_per_poll']:.0f} samples a poll), measured "
        f"for {result.wall_s:.0f} s after a {2 * result.interval_s:g} s warm-up "
        f"({os.cpu_count()} CPUs)"
    )
    print(
        f"  polls/s      {f['polls_s']:.1f} (target {f['target_polls_s']:.0f}), "
        f"{f['failed']} failed, {f['skipped_slots']} slots skipped"
    )
    print(
        f"  lag          p50 {float(f['lag_p50_s']) * 1000:.0f} ms, "
        f"p99 {float(f['lag_p99_s']) * 1000:.0f} ms (worst window), "
        f"max {float(f['lag_max_s']) * 1000:.0f} ms"
    )
    print(
        f"  poll time    p50 {float(f['poll_time_p50_s']) * 1000:.0f} ms, "
        f"p99 {float(f['poll_time_p99_s']) * 1000:.0f} ms (start to answer, simulator included)"
    )
    print(
        f"  weshd        CPU {f['cpu_pct']:.0f} % of one core "
        f"({f['cpu_ms_per_poll']:.2f} ms per poll), RSS {f['rss_mb']:.0f} MB "
        f"(peak {f['rss_peak_mb']:.0f} MB), ready in {f['weshd_ready_s']:.1f} s"
    )
    print(f"  simulator    CPU {f['sim_cpu_pct']:.0f} %, RSS {f['sim_rss_mb']:.0f} MB")
    ok = float(f["lag_p99_s"]) < 1.0 and float(f["rss_mb"]) < 150
    print(f"  goal (p99 lag < 1 s, RSS < 150 MB): {'met' if ok else 'NOT met'}")
    print()


def markdown(rows: list[dict[str, float | str]]) -> None:
    """Print the markdown table of docs/BENCHMARKS.md."""
    print(
        "| boxes | interval | channels | samples/poll | polls/s | lag p50 | lag p99 | lag max "
        "| weshd CPU | weshd RSS |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for f in rows:
        print(
            f"| {f['boxes']} | {f['interval_s']:g} s | {f['profile']} | "
            f"{f['samples_per_poll']:.0f} | {f['polls_s']:.1f} | "
            f"{float(f['lag_p50_s']) * 1000:.0f} ms | {float(f['lag_p99_s']) * 1000:.0f} ms | "
            f"{float(f['lag_max_s']) * 1000:.0f} ms | {f['cpu_pct']:.0f} % | "
            f"{f['rss_mb']:.0f} MB |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 boxes for 20 s")
    parser.add_argument("--boxes", type=int, default=None)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument(
        "--channels",
        choices=("all", "reference", "both"),
        default="both",
        help="store every reading of the page, the reference 8 channels, or run both",
    )
    parser.add_argument(
        "--max-concurrency", type=int, default=None, help="poll.max_concurrency (default 32)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    boxes = args.boxes or (500 if args.quick else 2_000)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    profiles = ("reference", "all") if args.channels == "both" else (args.channels,)
    rows = []
    for profile in profiles:
        result = run(boxes, args.interval, seconds, profile, args.max_concurrency)
        rows.append(figures(result))
        if not args.json:
            report(result, rows[-1])
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        markdown(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
