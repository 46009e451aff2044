"""WES polling throughput against the simulator, and the cost of a 4,100-box farm.

Usage: ``.venv/bin/python bench/wes.py [--quick] [--json]``

1. **Polls per second.** A simulator farm runs in its own process (``wesh sim wes``);
   this process polls ``/data.cgx`` of several boxes concurrently, alternating two
   phases on the same URLs in the same run:

   * *raw*: an aiohttp GET of the page, body read, nothing else (the limit);
   * *client GET*: ``WesClient.fetch`` (the client's HTTP path: auth, size cap, retries
     machinery), no parsing;
   * *fetch+parse*: ``WesClient.fetch_snapshot`` (the same GET, then the XML parse into
     a ``WesSnapshot``).

   Both send ``Connection: close`` (as WesClient does: the real box is single-threaded).
   Rates are medians over the rounds; the client's CPU time gives polls per CPU-second
   of this process (one core). Goal: fetch+parse >= 0.5 x raw and >= 500 polls/s.

2. **Start-up of the reference estate.** ``wesh sim wes --count 4100`` in a fresh
   process: seconds until it prints its box list (ready to serve, 12,300 listening
   sockets), and its resident memory then, compared with the same command for one box.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from wesh.wes.client import WesClient, WesConfig

ESTATE = 4_100
BASES = (20_000, 34_000, 47_000)
_AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"admin:wes").decode(),
    "Connection": "close",
}


@dataclass
class Farm:
    process: subprocess.Popen[bytes]
    boxes: list[dict[str, object]]
    ready_s: float

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_farm(count: int, extra: list[str] | None = None) -> Farm:
    """Start ``wesh sim wes`` in a subprocess and wait for its JSON box list."""
    last_error = ""
    for base in BASES:
        command = [
            sys.executable,
            "-m",
            "wesh",
            "sim",
            "wes",
            "--count",
            str(count),
            "--base-port",
            str(base),
            "--seed",
            "1",
            "--json",
            *(extra or []),
        ]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        line = process.stdout.readline()
        ready = time.perf_counter() - started
        if line:
            return Farm(process, json.loads(line)["boxes"], ready)
        process.wait()
        assert process.stderr is not None
        last_error = process.stderr.read().decode().strip()
    raise SystemExit(f"bench: cannot start the simulator: {last_error}")


async def _phase(
    workers: list[Callable[[], Awaitable[None]]], seconds: float
) -> tuple[float, float]:
    """Run every worker in a loop for ``seconds``; return (polls/s, polls per CPU-second)."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def loop(poll: Callable[[], Awaitable[None]]) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await poll()
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop(w) for w in workers))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, done / cpu if cpu else float("nan")


async def measure_polls(farm: Farm, *, boxes: int, rounds: int, seconds: float) -> dict[str, float]:
    """Alternate raw and fetch+parse phases on the same URLs; return medians."""
    targets = farm.boxes[:boxes]
    rates: dict[str, list[float]] = {"raw": [], "get": [], "parse": []}
    per_cpu: dict[str, list[float]] = {"raw": [], "get": [], "parse": []}
    async with aiohttp.ClientSession() as session:
        clients = []
        for box in targets:
            url = str(box["http"])
            host, port = url.removeprefix("http://").split(":")
            config = WesConfig(host=host, port=int(port), retries=0, timeout_s=10)
            clients.append(WesClient(config, session=session))

        def raw_worker(url: str) -> Callable[[], Awaitable[None]]:
            async def poll() -> None:
                async with session.get(url, headers=_AUTH) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"bench: {url} answered {response.status}")

            return poll

        def get_worker(client: WesClient) -> Callable[[], Awaitable[None]]:
            async def poll() -> None:
                await client.fetch("/data.cgx")

            return poll

        def parse_worker(client: WesClient) -> Callable[[], Awaitable[None]]:
            async def poll() -> None:
                snapshot = await client.fetch_snapshot()
                if not snapshot.tic:
                    raise SystemExit("bench: empty snapshot")

            return poll

        phases = {
            "raw": [raw_worker(f"{box['http']}/data.cgx") for box in targets],
            "get": [get_worker(client) for client in clients],
            "parse": [parse_worker(client) for client in clients],
        }
        for workers in phases.values():  # warm up every path
            await _phase(workers, seconds / 4)
        for _ in range(rounds):
            for name, workers in phases.items():
                rate, cpu_rate = await _phase(workers, seconds)
                rates[name].append(rate)
                per_cpu[name].append(cpu_rate)
        for client in clients:
            await client.close()
    out: dict[str, float] = {}
    for name in phases:
        out[f"{name}_polls_s"] = statistics.median(rates[name])
        out[f"{name}_polls_cpu_s"] = statistics.median(per_cpu[name])
    return out


def measure_startup(count: int) -> dict[str, float]:
    """Time to ready and RSS of a ``count``-box farm and of a one-box farm."""
    small = start_farm(1, ["--no-ftp", "--no-m2m"])
    small_rss, small_ready = small.rss_mb(), small.ready_s
    small.stop()
    big = start_farm(count)
    big_rss, big_ready = big.rss_mb(), big.ready_s
    big.stop()
    return {
        "boxes": count,
        "ready_s": big_ready,
        "rss_mb": big_rss,
        "one_box_ready_s": small_ready,
        "one_box_rss_mb": small_rss,
        "per_box_kb": (big_rss - small_rss) * 1024 / count,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rounds, seconds, boxes = (3, 1.0, 8) if args.quick else (5, 3.0, 16)

    farm = start_farm(boxes)
    try:
        polls = asyncio.run(measure_polls(farm, boxes=boxes, rounds=rounds, seconds=seconds))
    finally:
        farm.stop()
    startup = measure_startup(ESTATE)
    ratio = polls["parse_polls_s"] / polls["raw_polls_s"]
    results = {**polls, "ratio": ratio, **{f"startup_{k}": v for k, v in startup.items()}}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    cpus = os.cpu_count()
    print(
        f"WES polling against the simulator ({boxes} boxes, {rounds} rounds of {seconds:g} s, "
        f"{cpus} CPUs, medians)"
    )
    print(f"{'path':<14}{'polls/s':>10}{'polls/CPU-s':>14}")
    print(f"{'raw GET':<14}{polls['raw_polls_s']:>10.0f}{polls['raw_polls_cpu_s']:>14.0f}")
    print(f"{'client GET':<14}{polls['get_polls_s']:>10.0f}{polls['get_polls_cpu_s']:>14.0f}")
    print(f"{'fetch+parse':<14}{polls['parse_polls_s']:>10.0f}{polls['parse_polls_cpu_s']:>14.0f}")
    print(f"ratio fetch+parse / raw: {ratio:.2f}  (goal >= 0.5; >= 500 polls/s)")
    print()
    print(
        f"start-up of {ESTATE} boxes: ready in {startup['ready_s']:.1f} s, "
        f"RSS {startup['rss_mb']:.0f} MB (one box: {startup['one_box_ready_s']:.1f} s, "
        f"{startup['one_box_rss_mb']:.0f} MB; {startup['per_box_kb']:.0f} kB per box)"
    )
    print()
    print("Markdown:")
    print()
    print("| WES poll path (sim in its own process) | polls/s | polls per client CPU-s | vs raw |")
    print("|---|---:|---:|---:|")
    print(
        f"| raw aiohttp GET of /data.cgx (the limit) | {polls['raw_polls_s']:.0f} | "
        f"{polls['raw_polls_cpu_s']:.0f} | 1.00 |"
    )
    print(
        f"| WesClient.fetch (GET, no parse) | {polls['get_polls_s']:.0f} | "
        f"{polls['get_polls_cpu_s']:.0f} | {polls['get_polls_s'] / polls['raw_polls_s']:.2f} |"
    )
    print(
        f"| WesClient.fetch_snapshot (GET + parse) | {polls['parse_polls_s']:.0f} | "
        f"{polls['parse_polls_cpu_s']:.0f} | {ratio:.2f} |"
    )
    print()
    print("| simulator farm | ready in | RSS |")
    print("|---|---:|---:|")
    print(
        f"| 1 box (HTTP only) | {startup['one_box_ready_s']:.1f} s | "
        f"{startup['one_box_rss_mb']:.0f} MB |"
    )
    print(
        f"| {ESTATE} boxes (HTTP + FTP + M2M, 12,300 sockets) | {startup['ready_s']:.1f} s | "
        f"{startup['rss_mb']:.0f} MB |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
