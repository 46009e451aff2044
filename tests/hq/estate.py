"""A tiny estate for the ingestion, rollup and query tests (HQ-B), built with the ORM.

One agency, one residence, buildings with dwellings, a gateway per building (site
``site-<building>``), one box per dwelling (``box-<dwelling>``) and the channels asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select

from wesh.hq.db import session_factory
from wesh.hq.models import (
    Agency,
    Box,
    Building,
    Channel,
    Dwelling,
    Gateway,
    Meter,
    MeterEvent,
    Reading,
    Residence,
    RollupDay,
    RollupHour,
)

#: (path, kind, unit, is_index) of the channels every box gets by default.
DEFAULT_CHANNELS: tuple[tuple[str, str, str | None, bool], ...] = (
    ("tic.1.index.base", "electricity", "Wh", True),
    ("impulsion.1.index", "cold_water", "L", True),
    ("temp.1", "temperature", "°C", False),
)


@dataclass
class Estate:
    """Ids of what :func:`build_estate` made, by natural key."""

    channels: dict[tuple[str, str, str], int] = field(default_factory=dict)  # site, box, path
    dwellings: dict[str, int] = field(default_factory=dict)
    boxes: dict[tuple[str, str], int] = field(default_factory=dict)

    def channel(self, dwelling: str, path: str) -> int:
        building = dwelling.split("-", maxsplit=1)[0]
        return self.channels[f"site-{building}", f"box-{dwelling}", path]


def build_estate(
    engine: Engine,
    buildings: dict[str, Sequence[tuple[str, float | None, str]]],
    *,
    residence: str = "RES1",
    channels: Sequence[tuple[str, str, str | None, bool]] = DEFAULT_CHANNELS,
) -> Estate:
    """Create the estate; ``buildings`` maps a building code to (dwelling, m², kind) rows.

    Dwelling codes must start with their building code and a dash (``B1-01``).
    """
    estate = Estate()
    with session_factory(engine).begin() as session:
        agency = Agency(code="AG", name="Agence")
        session.add(agency)
        session.flush()
        res = Residence(agency_id=agency.id, code=residence, name="Résidence")
        session.add(res)
        session.flush()
        for code, dwellings in buildings.items():
            building = Building(residence_id=res.id, code=code, name=f"Bâtiment {code}")
            session.add(building)
            session.flush()
            gateway = Gateway(building_id=building.id, site_id=f"site-{code}")
            session.add(gateway)
            session.flush()
            for dwelling_code, surface, kind in dwellings:
                dwelling = Dwelling(
                    building_id=building.id,
                    code=dwelling_code,
                    kind=kind,
                    label=dwelling_code,
                    surface_m2=surface,
                )
                session.add(dwelling)
                session.flush()
                estate.dwellings[dwelling_code] = dwelling.id
                box = Box(
                    gateway_id=gateway.id, box_ref=f"box-{dwelling_code}", dwelling_id=dwelling.id
                )
                session.add(box)
                session.flush()
                estate.boxes[f"site-{code}", f"box-{dwelling_code}"] = box.id
                for path, channel_kind, unit, is_index in channels:
                    channel = Channel(
                        box_id=box.id, path=path, kind=channel_kind, unit=unit, is_index=is_index
                    )
                    session.add(channel)
                    session.flush()
                    estate.channels[f"site-{code}", f"box-{dwelling_code}", path] = channel.id
    return estate


def add_meter_event(
    engine: Engine,
    channel_id: int,
    at: datetime,
    *,
    old_index: float | None,
    new_index: float | None,
    kind: str = "replaced",
) -> None:
    """Record a meter event of ``channel_id`` (a meter row for its box is made if needed)."""
    with session_factory(engine).begin() as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        meter = session.execute(
            select(Meter).where(Meter.box_id == channel.box_id, Meter.serial == f"m{channel_id}")
        ).scalar_one_or_none()
        if meter is None:
            meter = Meter(
                box_id=channel.box_id,
                serial=f"m{channel_id}",
                kind=channel.kind,
                input=channel.path.rsplit(".", 1)[0],
                installed_at=datetime(2000, 1, 1, tzinfo=UTC),
            )
            session.add(meter)
            session.flush()
        session.add(
            MeterEvent(
                meter_id=meter.id,
                channel_id=channel_id,
                kind=kind,
                at=at,
                old_index=old_index,
                new_index=new_index,
            )
        )


def clear_data(engine: Engine) -> None:
    """Delete every reading, rollup and meter event (the inventory stays)."""
    with engine.begin() as conn:
        for model in (RollupDay, RollupHour, Reading, MeterEvent):
            conn.execute(delete(model))
