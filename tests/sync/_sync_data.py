"""Data for the agent/receiver tests: a weshd store filled with exact, checkable readings."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wesh.gateway.channels import GatewayEvent, Sample
from wesh.sync.schema import Schema, SchemaChannel

SITE = "site-a"


@dataclass(frozen=True, slots=True)
class Expected:
    """What the sink must hold at the end: (box, path, at, aggregate) -> value."""

    readings: dict[tuple[str, str, datetime, str], int | float]
    alarms: set[tuple[str, datetime]]


def channels(count: int) -> list[SchemaChannel]:
    """Half cold-water indexes (L, resolution 1), half temperatures (°C, 0.1)."""
    out = []
    for c in range(count):
        box = f"dw-{c // 10}"
        if c % 2:
            out.append(SchemaChannel(box, f"impulsion.{c % 10}.index", "index", "L", 1))
        else:
            out.append(SchemaChannel(box, f"temp.{c % 10}", "gauge", "°C", 0.1))
    return out


def schema_of(count: int) -> Schema:
    return Schema(channels(count))


def make_sample(channel: SchemaChannel, at: datetime, value: float) -> Sample:
    index = channel.kind == "index"
    return Sample(
        box=channel.box,
        channel=f"{channel.box}/{channel.path}",
        path=channel.path,
        at=at,
        value=value,
        unit=channel.unit,
        quality="measured",
        kind="index" if index else "gauge",
        meaning="cold_water" if index else "temperature",
    )


def hourly_samples(
    count: int, hours: int, *, end: datetime, seed: int = 1
) -> Iterator[tuple[list[Sample], dict[tuple[str, str, datetime, str], int | float]]]:
    """One sample per channel and hour (at hh:30), hour by hour, ending before ``end``.

    Yields each hour's samples with the hourly aggregates they must become (one sample:
    the mean and the last value are the sample itself). Values are exact at their
    resolution: integers for indexes (increasing), one decimal for temperatures.
    """
    rng = random.Random(seed)
    chans = channels(count)
    index_now = {c.path + c.box: 10_000 * n for n, c in enumerate(chans)}
    start = end.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours + 1)
    for h in range(hours):
        hour = start + timedelta(hours=h)
        samples = []
        expected: dict[tuple[str, str, datetime, str], int | float] = {}
        for c in chans:
            if c.kind == "index":
                index_now[c.path + c.box] += rng.randrange(0, 500)
                value: int | float = index_now[c.path + c.box]
                aggregate = "hour_last"
            else:
                value = rng.randrange(150, 260) / 10
                aggregate = "hour_mean"
            samples.append(make_sample(c, hour + timedelta(minutes=30), value))
            expected[c.box, c.path, hour, aggregate] = value
        yield samples, expected


def alarm(n: int, at: datetime) -> GatewayEvent:
    return GatewayEvent(
        at=at.replace(microsecond=0),
        box=f"dw-{n % 7}",
        channel=None,
        kind="box_down",
        severity="alarm",
        message=f"dw-{n % 7} ne répond plus ({n})",
    )


T_END = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)  # an hour before the virtual loop's epoch
