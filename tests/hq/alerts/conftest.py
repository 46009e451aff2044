"""Shared fixtures of the alert tests (owned by the engine's helper; others add theirs in
their own test files).

* ``place`` and ``make_condition``: pure values for the state machine and mails;
* ``store``: a migrated, empty database on each engine (``engine_url``: sqlite, mariadb,
  postgresql);
* ``alert_estate``: ``store`` with a small estate (one agency, residence, building,
  gateway, three dwellings with a box each, a temperature and a cold-water channel per box).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from wesh.hq.alerts.model import Condition, Level, Place, Subject
from wesh.hq.db import session_factory
from wesh.hq.migrate import migrate
from wesh.hq.models import Agency, Box, Building, Channel, Dwelling, Gateway, Residence

T0 = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)

PLACE = Place(
    agency_id=1,
    agency_code="AG-NORD",
    agency_name="Agence Nord",
    residence_id=1,
    residence_code="RES-TIL",
    residence_name="Résidence Les Tilleuls",
    building_id=1,
    building_code="RES-TIL-B1",
    building_name="Bâtiment B1",
    dwelling_id=12,
    dwelling_code="RES-TIL-B1-012",
    dwelling_label="Logement 12",
    site_id="site-b1",
    box_ref="box-12",
    channel_path="impulsion.1.index",
    channel_kind="cold_water",
    channel_label="Eau froide",
)

SUBJECT = Subject("channel", 7)

MakeCondition = Callable[..., Condition]


def condition(
    level: Level = Level.ON,
    *,
    rule: str = "leak_night_flow",
    subject: Subject = SUBJECT,
    at: datetime = T0,
    **extra: Any,
) -> Condition:
    """A condition with sensible defaults (keywords override any field)."""
    values: dict[str, Any] = {
        "place": PLACE,
        "since": at,
        "value": 42.0,
        "unit": "L/h",
        "threshold": 20.0,
        "severity": "warning",
    }
    values.update(extra)
    return Condition(rule=rule, subject=subject, level=level, observed_at=at, **values)


@pytest.fixture
def place() -> Place:
    """A dwelling's cold-water channel in the Tilleuls residence."""
    return PLACE


@pytest.fixture
def make_condition() -> MakeCondition:
    """:func:`condition`: ``make_condition(Level.ON, rule=..., subject=..., at=...)``."""
    return condition


@pytest.fixture
def store(engine: Engine) -> Engine:
    """A migrated, empty HQ database (each engine)."""
    migrate(engine)
    return engine


@dataclass
class AlertEstate:
    """Ids of the small estate of :func:`alert_estate`."""

    engine: Engine
    agency: int = 0
    residence: int = 0
    building: int = 0
    gateway: int = 0
    dwellings: list[int] = field(default_factory=list)
    boxes: list[int] = field(default_factory=list)
    temperature: list[int] = field(default_factory=list)  # channel ids, one per box
    water: list[int] = field(default_factory=list)


def build_alert_estate(engine: Engine, *, dwellings: int = 3) -> AlertEstate:
    """Create one agency → residence → building → gateway and ``dwellings`` boxes."""
    made = AlertEstate(engine)
    with session_factory(engine).begin() as session:
        agency = Agency(code="AG-NORD", name="Agence Nord")
        session.add(agency)
        session.flush()
        residence = Residence(agency_id=agency.id, code="RES-TIL", name="Résidence Les Tilleuls")
        session.add(residence)
        session.flush()
        building = Building(residence_id=residence.id, code="RES-TIL-B1", name="Bâtiment B1")
        session.add(building)
        session.flush()
        gateway = Gateway(building_id=building.id, site_id="site-b1")
        session.add(gateway)
        session.flush()
        made.agency, made.residence, made.building = agency.id, residence.id, building.id
        made.gateway = gateway.id
        for number in range(1, dwellings + 1):
            dwelling = Dwelling(
                building_id=building.id, code=f"RES-TIL-B1-{number:03d}", label=f"Logt {number}"
            )
            session.add(dwelling)
            session.flush()
            box = Box(gateway_id=gateway.id, box_ref=f"box-{number}", dwelling_id=dwelling.id)
            session.add(box)
            session.flush()
            temperature = Channel(box_id=box.id, path="temp.1", kind="temperature", unit="°C")
            water = Channel(
                box_id=box.id, path="impulsion.1.index", kind="cold_water", unit="L", is_index=True
            )
            session.add_all([temperature, water])
            session.flush()
            made.dwellings.append(dwelling.id)
            made.boxes.append(box.id)
            made.temperature.append(temperature.id)
            made.water.append(water.id)
    return made


@pytest.fixture
def alert_estate(store: Engine) -> AlertEstate:
    """:func:`store` with :func:`build_alert_estate` (three dwellings)."""
    return build_alert_estate(store)
