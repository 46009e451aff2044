"""Tonique packet size on the reference building-day: SMS parts per day, readings per part.

Usage: ``.venv/bin/python bench/sync.py [--quick] [--json] [--day YYYY-MM-DD] [--seed N]``

The reference building of ``DESIGN.md``: 40 dwellings + 1 common area, simulated by
``wesh.sim`` (the same consumption models as the WES simulator), one local day in
winter (heating on). Channels (hourly aggregates: indexes at the end of each hour, gauges
averaged over the hour from one sample a minute):

* dwelling (x40): TIC index (BASE), TIC apparent power (mean), cold water, hot water and
  heat pulse indexes, temperature, humidity: 7 channels;
* common area: three-phase TIC index and apparent power, gas index, 2 clamp currents,
  3 temperatures: 8 channels.

288 channels x 24 hours = 6,912 readings. They are encoded the way the site agent
would (``encode_block`` with the previous hour's acknowledged indexes as baseline),
sealed (AES-CCM, padding to the last SMS), cut into fragments of one SMS each (160 base16
characters = 80 bytes), and counted as SMS parts. The naive encoding in the same run
is one 16-byte record per reading (channel u16, time u32, value f64, quality u8, flags
u8), base16, packed 5 records to a 160-character SMS, without header, key or tag.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from wesh.sim.box import SimulatedBox, make_identity
from wesh.sim.clock import PARIS
from wesh.sim.electricity import SimulatedMeter, Tariff
from wesh.sim.model import BoxState
from wesh.sync.fragment import CHUNK_BYTES, SMS_BYTES, SMS_CHARS, fragment_packet
from wesh.sync.keys import generate_key
from wesh.sync.packet import seal_packet
from wesh.sync.readings import BaselineBook, Column, ReadingBlock, decode_block, encode_block
from wesh.sync.schema import Schema, SchemaChannel

FLATS = 40
HOUR = 3600
GOAL_READINGS_PER_PART = 50

# (path, kind, unit, resolution, extractor name)
DWELLING = (
    ("tic.1.index.base", "index", "Wh", 1, "tic_index"),
    ("tic.1.power_va", "gauge", "VA", 10, "tic_power"),
    ("impulsion.1.index", "index", "L", 1, "counter1"),
    ("impulsion.2.index", "index", "L", 1, "counter2"),
    ("impulsion.3.index", "index", "Wh", 1, "counter3"),
    ("temp.1", "gauge", "°C", 0.1, "probe1"),
    ("temp.2", "gauge", "%", 0.1, "probe2"),
)
COMMON = (
    ("tic.1.index.base", "index", "Wh", 1, "tic_index"),
    ("tic.1.power_va", "gauge", "VA", 10, "tic_power"),
    ("impulsion.1.index", "index", "L", 10, "counter1"),
    ("pince.1.current", "gauge", "A", 0.01, "clamp1"),
    ("pince.2.current", "gauge", "A", 0.01, "clamp2"),
    ("temp.1", "gauge", "°C", 0.1, "probe1"),
    ("temp.2", "gauge", "°C", 0.1, "probe2"),
    ("temp.3", "gauge", "°C", 0.1, "probe3"),
)


def _extract(state: BoxState, name: str) -> float:
    if name == "tic_index":
        reading = state.tics[0].reading
        assert reading is not None
        return float(sum(reading.indexes_wh.values()))
    if name == "tic_power":
        reading = state.tics[0].reading
        assert reading is not None
        return float(reading.power_va)
    if name.startswith("counter"):
        counter = state.counters[int(name[-1]) - 1]
        return counter.index * (1000 if counter.config.unit == "m3" else 1)
    if name.startswith("clamp"):
        return state.clamps[int(name[-1]) - 1].current_a
    return state.probes[int(name[-1])]


def build_day(day: str, seed: int) -> tuple[Schema, ReadingBlock, dict[str, float]]:
    """Simulate the building and return its schema, its day block and the baselines."""
    local = datetime.fromisoformat(day).replace(tzinfo=PARIS)
    start = local.astimezone(UTC)
    t0 = int(start.timestamp())
    channels: list[SchemaChannel] = []
    series: dict[tuple[str, str], list[float | None]] = {}
    baselines: dict[str, float] = {}
    for index in range(FLATS + 1):
        identity = make_identity(index, seed=seed, flats=FLATS)
        common = index == 0
        meter = SimulatedMeter(
            start=t0 - 2 * HOUR,
            seed=seed * 1000 + index,
            identity=identity.adco,
            phases=3 if common else 1,
            tariff=Tariff.BASE,
        )
        box = SimulatedBox(identity, start=t0 - 2 * HOUR, meter=meter, flats=FLATS)
        table = COMMON if common else DWELLING
        for path, kind, unit, res, _ in table:
            channels.append(SchemaChannel(identity.name, path, kind, unit, res))  # type: ignore[arg-type]
        sums: dict[str, list[float]] = {name: [0.0] * 24 for *_, name in table}
        counts = [0] * 24

        def sample(
            state: BoxState, sums: dict[str, list[float]] = sums, counts: list[int] = counts
        ) -> None:
            t = int(state.sim_time.timestamp())
            hour = (t - t0 - 1) // HOUR  # a sample at the end of a minute belongs to its hour
            if 0 <= hour < 24:
                counts[hour] += 1
                for name, totals in sums.items():
                    totals[hour] += _extract(state, name)

        box.set_sampler(sample, every_s=60)
        box.advance_to(t0)
        state = box.state()
        for path, kind, *_rest, name in table:
            if kind == "index":
                baselines[f"{identity.name}/{path}"] = _extract(state, name)
        ends: list[BoxState] = []
        for hour in range(24):
            box.advance_to(t0 + (hour + 1) * HOUR)
            ends.append(box.state())
        for path, kind, *_rest, name in table:
            if kind == "index":
                values: list[float | None] = [_extract(s, name) for s in ends]
            else:
                values = [sums[name][h] / counts[h] for h in range(24)]
            series[identity.name, path] = values
    schema = Schema(channels)
    columns = tuple(
        Column(number, tuple(series[c.box, c.path])) for number, c in enumerate(schema.channels)
    )
    return schema, ReadingBlock(start, HOUR, 24, columns), baselines


def _slice(block: ReadingBlock, first: int, count: int) -> ReadingBlock:
    return ReadingBlock(
        block.at(first),
        block.step_s,
        count,
        tuple(Column(c.channel, c.values[first : first + count]) for c in block.columns),
    )


def _parts_multipart(packet: bytes) -> int:
    chars = len(packet) * 2
    return 1 if chars <= 160 else math.ceil(chars / 153)


def measure(
    schema: Schema,
    block: ReadingBlock,
    baselines: dict[str, float],
    *,
    per_packet_h: int,
    with_baseline: bool = True,
    compress: bool | None = None,
) -> dict[str, Any]:
    """Encode the day in packets of ``per_packet_h`` hours; count bytes and SMS parts."""
    key = generate_key("bench-site", key_id=1)
    book = BaselineBook()
    base_at = block.start - timedelta(seconds=HOUR)
    for name, value in baselines.items():
        book.record(name, base_at, value)
    body = sealed = parts = multipart = 0
    packets = 0
    encode_s = decode_s = 0.0
    for seq, first in enumerate(range(0, block.count, per_packet_h), start=1):
        piece = _slice(block, first, per_packet_h)
        t = time.process_time()
        message = encode_block(
            piece, schema, book=book if with_baseline else None, compress=compress
        )
        packet = seal_packet(message, key=key, seq=seq)
        texts = fragment_packet(packet, max_chars=SMS_CHARS)
        encode_s += time.process_time() - t
        t = time.process_time()
        decoded = decode_block(message, schema, baseline=book)
        decode_s += time.process_time() - t
        book.record_block(decoded, schema)  # HQ stored it, the site got the ACK
        body += len(message.block) + 4
        sealed += len(seal_packet(message, key=key, seq=seq, pad=False))
        parts += len(texts)
        multipart += _parts_multipart(seal_packet(message, key=key, seq=seq, pad=False))
        packets += 1
    readings = sum(1 for c in block.columns for v in c.values if v is not None)
    return {
        "packets": packets,
        "readings": readings,
        "body_bytes": body,
        "sealed_bytes": sealed,
        "parts": parts,
        "parts_multipart": multipart,
        "readings_per_part": readings / parts,
        "bytes_per_reading": body / readings,
        "encode_ms": encode_s * 1000,
        "decode_ms": decode_s * 1000,
    }


def measure_capped(
    schema: Schema, block: ReadingBlock, baselines: dict[str, float], *, max_parts: int
) -> dict[str, Any]:
    """Encode the day in packets of at most ``max_parts`` SMS, each a range of channels."""
    key = generate_key("bench-site", key_id=1)
    book = BaselineBook()
    base_at = block.start - timedelta(seconds=HOUR)
    for name, value in baselines.items():
        book.record(name, base_at, value)
    limit = parts_limit_bytes(max_parts)
    body = sealed = parts = multipart = packets = 0
    t = time.process_time()
    columns = list(block.columns)
    while columns:
        low, high = 1, len(columns)
        while low < high:  # the most columns that fit
            mid = (low + high + 1) // 2
            piece = ReadingBlock(block.start, block.step_s, block.count, tuple(columns[:mid]))
            message = encode_block(piece, schema, book=book)
            if len(seal_packet(message, key=key, seq=1, pad=False)) <= limit:
                low = mid
            else:
                high = mid - 1
        piece = ReadingBlock(block.start, block.step_s, block.count, tuple(columns[:low]))
        message = encode_block(piece, schema, book=book)
        packet = seal_packet(message, key=key, seq=packets + 1)
        body += len(message.block) + 4
        sealed += len(seal_packet(message, key=key, seq=packets + 1, pad=False))
        parts += len(fragment_packet(packet, max_chars=SMS_CHARS))
        multipart += _parts_multipart(seal_packet(message, key=key, seq=1, pad=False))
        packets += 1
        del columns[:low]
    encode_s = time.process_time() - t
    readings = sum(1 for c in block.columns for v in c.values if v is not None)
    return {
        "packets": packets,
        "readings": readings,
        "body_bytes": body,
        "sealed_bytes": sealed,
        "parts": parts,
        "parts_multipart": multipart,
        "readings_per_part": readings / parts,
        "bytes_per_reading": body / readings,
        "encode_ms": encode_s * 1000,
        "decode_ms": 0.0,
    }


def parts_limit_bytes(max_parts: int) -> int:
    """The largest unpadded packet that takes at most ``max_parts`` SMS."""
    return SMS_BYTES if max_parts == 1 else max_parts * CHUNK_BYTES


def naive(block: ReadingBlock) -> dict[str, Any]:
    """One 16-byte record per reading, base16, 5 records per 160-character SMS."""
    records = bytearray()
    for column in block.columns:
        for step, value in enumerate(column.values):
            if value is not None:
                at = int(block.at(step).timestamp())
                records += struct.pack(">HIdBB", column.channel, at, float(value), 0, 0)
    readings = len(records) // 16
    chars = len(records) * 2
    parts = math.ceil(chars / SMS_CHARS)
    return {
        "packets": 1,
        "readings": readings,
        "body_bytes": len(records),
        "sealed_bytes": len(records),
        "parts": parts,
        "parts_multipart": math.ceil(chars / 153),
        "readings_per_part": readings / parts,
        "bytes_per_reading": len(records) / readings,
        "encode_ms": 0.0,
        "decode_ms": 0.0,
    }


def _with_resolution(
    schema: Schema, block: ReadingBlock, unit: str, resolution: float
) -> tuple[Schema, ReadingBlock]:
    channels = [
        SchemaChannel(c.box, c.path, c.kind, c.unit, resolution if c.unit == unit else c.resolution)
        for c in schema.channels
    ]
    return Schema(channels), block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(same run: the day is small)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--day", default="2024-01-15", help="local day (Europe/Paris)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    t = time.process_time()
    schema, block, baselines = build_day(args.day, args.seed)
    sim_s = time.process_time() - t
    hum_schema, _ = _with_resolution(schema, block, "%", 1)
    cases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("day in 1 packet", lambda: measure(schema, block, baselines, per_packet_h=24)),
        ("day in 4 packets (6 h)", lambda: measure(schema, block, baselines, per_packet_h=6)),
        ("day in 24 packets (hourly)", lambda: measure(schema, block, baselines, per_packet_h=1)),
        (
            "day in packets of <= 8 SMS (channel ranges)",
            lambda: measure_capped(schema, block, baselines, max_parts=8),
        ),
        (
            "day in 1 packet, no DEFLATE",
            lambda: measure(schema, block, baselines, per_packet_h=24, compress=False),
        ),
        (
            "day in 1 packet, absolute (no baseline)",
            lambda: measure(schema, block, baselines, per_packet_h=24, with_baseline=False),
        ),
        (
            "day in 1 packet, humidity at 1 %",
            lambda: measure(hum_schema, block, baselines, per_packet_h=24),
        ),
        ("naive 16-byte records", lambda: naive(block)),
    ]
    results = {name: run() for name, run in cases}
    if args.json:
        print(json.dumps({"day": args.day, "seed": args.seed, "results": results}, indent=2))
        return 0
    readings = results["naive 16-byte records"]["readings"]
    print(
        f"Reference building-day {args.day} (seed {args.seed}): {len(schema)} channels, "
        f"{readings:,} readings (simulated in {sim_s:.1f} s CPU)\n"
    )
    print(
        "| encoding | packets | body bytes | sealed bytes | SMS parts (1 SMS each) "
        "| readings / part | parts if one multipart SMS a packet | encode + decode ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['packets']} | {r['body_bytes']:,} | {r['sealed_bytes']:,} "
            f"| **{r['parts']}** | {r['readings_per_part']:.1f} | {r['parts_multipart']} "
            f"| {r['encode_ms']:.0f} + {r['decode_ms']:.0f} |"
        )
    best = results["day in 1 packet"]
    ratio = results["naive 16-byte records"]["parts"] / best["parts"]
    met = "met" if best["readings_per_part"] >= GOAL_READINGS_PER_PART else "NOT met"
    print(
        f"\nGoal (>= {GOAL_READINGS_PER_PART} readings per SMS part, <= 120 parts a "
        f"building-day): **{met}** with one packet a day: {best['parts']} parts, "
        f"{best['readings_per_part']:.1f} readings per part, {ratio:.1f}x fewer parts than naive."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
