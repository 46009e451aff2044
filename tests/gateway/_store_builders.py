"""Builders shared by the store tests and the crash-test writer process."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wesh.gateway.channels import GatewayEvent, Sample

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable wall clock (UTC, aware)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sample(
    box: str = "dw-1",
    path: str = "temp.1",
    *,
    at: datetime = T0,
    value: float | int | str | bool = 20.5,
    kind: str = "gauge",
    unit: str | None = "°C",
    quality: str = "measured",
    meaning: str = "temperature",
    label: str | None = None,
    box_time: datetime | None = None,
) -> Sample:
    return Sample(
        box=box,
        channel=f"{box}/{path}",
        path=path,
        at=at,
        value=value,
        unit=unit,
        quality=quality,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        meaning=meaning,  # type: ignore[arg-type]
        label=label,
        box_time=box_time,
    )


def poll(box: str, poll_id: int, *, at: datetime | None = None, gauges: int = 29) -> list[Sample]:
    """One poll: an index whose value is the poll id, and gauges carrying it too."""
    at = at if at is not None else T0 + timedelta(seconds=poll_id)
    out = [
        sample(box, "poll.id", at=at, value=poll_id, kind="index", unit="Wh", meaning="electricity")
    ]
    out += [
        sample(box, f"temp.{j}", at=at, value=poll_id + j / 100, meaning="temperature")
        for j in range(gauges)
    ]
    return out


def event(
    kind: str = "box_down",
    severity: str = "warning",
    *,
    at: datetime = T0,
    box: str | None = "dw-1",
    channel: str | None = None,
    message: str = "something happened",
    **data: object,
) -> GatewayEvent:
    return GatewayEvent(
        at=at,
        box=box,
        channel=channel,
        kind=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        message=message,
        data=data,
    )


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` through a separate connection."""
    conn = sqlite3.connect(path)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def query(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run one read query through a separate connection (WAL lets it read beside the store)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
