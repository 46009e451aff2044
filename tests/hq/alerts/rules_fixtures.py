"""Helpers of the rule and evaluation tests (helper A2): an estate with data in SQL.

``make_store(url)`` migrates a database; ``make_estate`` builds dwellings with the
channels of :data:`CHANNELS`; ``add_readings`` stores readings and re-rolls their
rollups; the others write the sync ledger, site events, tenancies and meter events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, update

from tests.hq.estate import Estate, build_estate
from wesh.hq.db import make_engine
from wesh.hq.migrate import migrate
from wesh.hq.models import Gateway, Reading, SiteEvent, SyncLedger, Tenancy
from wesh.hq.rollups import reroll

HOUR = timedelta(hours=1)

#: (path, kind, unit, is_index) of every test box.
CHANNELS: tuple[tuple[str, str, str | None, bool], ...] = (
    ("tic.1.index.base", "electricity", "Wh", True),
    ("impulsion.1.index", "cold_water", "L", True),
    ("impulsion.2.index", "hot_water", "L", True),
    ("temp.1", "temperature", "°C", False),
    ("temp.2", "humidity", "%", False),
    ("temp.ecs", "temperature", "°C", False),
)


def make_store(url: str) -> Engine:
    """Migrate the database at ``url`` and return an engine on it."""
    migrate(url)
    return make_engine(url)


def make_estate(
    engine: Engine,
    *,
    dwellings: int = 6,
    building: str = "B1",
    surface_m2: float = 50.0,
    channels: Sequence[tuple[str, str, str | None, bool]] = CHANNELS,
) -> Estate:
    """Build one building of ``dwellings`` dwellings ``B1-01``... with a box each."""
    rows = [(f"{building}-{n:02d}", surface_m2, "dwelling") for n in range(1, dwellings + 1)]
    return build_estate(engine, {building: rows}, channels=channels)


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Return the hour starts in ``[start, end)``."""
    out = []
    at = start
    while at < end:
        out.append(at)
        at += HOUR
    return out


def gauge(start: datetime, end: datetime, value: float | Callable[[datetime], float]) -> list:
    """Return hourly ``(at, value)`` points of a gauge."""
    return [(at, value(at) if callable(value) else value) for at in hours(start, end)]


def index(
    start: datetime,
    end: datetime,
    per_hour: float | Callable[[datetime], float],
    *,
    first: float = 100_000.0,
) -> list:
    """Return hourly index points growing by ``per_hour`` (the step INTO each hour)."""
    points = []
    value = first
    for at in hours(start, end):
        value += per_hour(at) if callable(per_hour) else per_hour
        points.append((at, value))
    return points


def add_readings(
    engine: Engine,
    channel_id: int,
    points: Iterable[tuple[datetime, float]],
    *,
    aggregate: str = "sample",
) -> None:
    """Store readings of a channel and re-roll its rollups over their span."""
    rows = [
        {"channel_id": channel_id, "at": at, "value": float(v), "aggregate": aggregate}
        for at, v in points
    ]
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(insert(Reading), rows)
    first = min(row["at"] for row in rows)
    last = max(row["at"] for row in rows)
    reroll(engine, channel_id, first, last + HOUR)


def fill_box(
    engine: Engine,
    estate: Estate,
    dwelling: str,
    start: datetime,
    end: datetime,
    **overrides: list,
) -> None:
    """Give every channel of a dwelling's box normal hourly data (``overrides`` by kind key).

    Keys of ``overrides``: ``electricity``, ``cold_water``, ``hot_water``, ``temperature``,
    ``humidity``, ``hot_water_probe``.
    """
    normal: dict[str, Any] = {
        "electricity": index(start, end, 300.0),
        "cold_water": index(start, end, lambda at: 0.0 if at.hour % 3 == 0 else 5.0),
        "hot_water": index(start, end, lambda at: 0.0 if at.hour % 2 == 0 else 3.0),
        "temperature": gauge(start, end, 20.0),
        "humidity": gauge(start, end, 50.0),
        "hot_water_probe": gauge(start, end, 58.0),
    }
    normal.update(overrides)
    paths = {
        "electricity": "tic.1.index.base",
        "cold_water": "impulsion.1.index",
        "hot_water": "impulsion.2.index",
        "temperature": "temp.1",
        "humidity": "temp.2",
        "hot_water_probe": "temp.ecs",
    }
    for key, path in paths.items():
        add_readings(engine, estate.channel(dwelling, path), normal[key])


def set_link(
    engine: Engine,
    site_id: str,
    *,
    seen: datetime | None,
    status: dict[str, Any] | None = None,
    status_at: datetime | None = None,
) -> None:
    """Write the gateway's ``last_seen_at`` and its sync ledger (last STATUS)."""
    with engine.begin() as conn:
        conn.execute(update(Gateway).where(Gateway.site_id == site_id).values(last_seen_at=seen))
        conn.execute(
            insert(SyncLedger).values(
                site_id=site_id,
                last_seq=1,
                received_count=1,
                gaps=None,
                last_status_at=status_at,
                status=status,
                updated_at=seen,
            )
        )


def add_site_event(
    engine: Engine,
    *,
    site_id: str,
    at: datetime,
    kind: str,
    box_id: int | None = None,
    channel_id: int | None = None,
    message: str = "",
) -> None:
    """Store an alarm received from a site."""
    with engine.begin() as conn:
        conn.execute(
            insert(SiteEvent).values(
                dedup_key=f"{site_id}|{channel_id}|{at.isoformat()}|{kind}"[:64],
                site_id=site_id,
                box_ref=None,
                channel_path=None,
                box_id=box_id,
                channel_id=channel_id,
                at=at,
                kind=kind,
                severity="warning",
                message=message,
                received_at=at,
                handled_at=None,
            )
        )


def add_tenancy(engine: Engine, dwelling_id: int, start: date, end: date | None = None) -> None:
    """Record a lease of a dwelling."""
    with engine.begin() as conn:
        conn.execute(
            insert(Tenancy).values(
                dwelling_id=dwelling_id,
                tenant_ref=f"t{dwelling_id}",
                start_date=start,
                end_date=end,
            )
        )


def utc(*args: int) -> datetime:
    """``datetime(*args, tzinfo=UTC)``."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
