"""Fill a headquarters store with a realistic estate and a year of data (``wesh hq generate``).

The estate is DESIGN.md's reference workload, scaled by ``buildings``::

    agency AG-01 ─< residence R01..  (4 buildings each, French names)
                      └─< building B001..  ─ gateway site "b001" (phone, key id)
                            ├─ B001-PC   common areas  ─ box b001-pc   8 channels
                            └─ B001-L01..L40 dwellings ─ box b001-lNN  7 channels
                                                        (floor, m², tenancies)

    dwelling box   tic.1.index.base (electricity Wh)  tic.1.power_va (VA)
                   impulsion.1.index (cold water L)  impulsion.2.index (hot water L)
                   impulsion.3.index (heat Wh)       temp.1 (°C)  temp.2 (humidity %)
    common box     tic.1.index.base (electricity Wh)  tic.1.power_va (VA)
                   impulsion.1.index (gas L)  pince.1.index, pince.2.index (lift,
                   ventilation: kind "other", sub-meters of the TIC meter, so that
                   electricity totals do not count them twice)  temp.1..3 (°C)

**Strategy** (the whole year hourly would be 4,100 boxes x 7.02 channels x 8,760 h
= 252 M readings: hours of inserting, not minutes)::

    the year ─────────────────────────────────────────────┬── last raw_days days ──┐
    rollup_day only, modelled directly (1 row/channel/day) │ readings every hour     │
                                                           │ + rollup_hour          │
                                                           │ + rollup_day (from the │
                                                           │   hours)               │

* Each channel gets a **daily** value from a per-box generator: electricity and water
  from the household (occupants, weekday, season, vacancy between two tenancies), heat
  from a degree-day model of the dwelling (surface, insulation, set point) and the
  building's weather (:class:`wesh.sim.weather.OutdoorClimate`), gas from the boiler
  feeding the building's heat and hot water. Daily values do not depend on
  ``raw_days``: the daily stream and the hourly stream are two generators.
* In the raw window, each day's total is cut into hours with a typical local-hour
  profile and noise; integer increments sum exactly to the day's total, so a day's
  rollup is the same whether computed from its hours or modelled. Index readings are
  the index at the end of the hour, stored at the hour start (``aggregate="hour_last"``,
  as the sync sends them); gauges are hourly means (``"hour_mean"``).
* Outside the window, rollup_day's statistics (``min``/``max``/``mean``, ``first_*`` and
  ``last_*``, ``count`` = the hours of the day) are computed as if hourly readings had
  existed, from the profile without noise: the monthly and yearly queries see a whole
  year; ``--by hour`` queries and raw queries only see the window.
* Each index channel gets one anchor reading at the hour before the window: the index
  at the window's start, so that consumption computed from raw readings covers the
  window's first hour too. It has no rollup_hour row.
* About one water or heat meter in a hundred is replaced during the year, at a local
  midnight: the meter table gets a new row and a ``replaced`` meter_event (old index,
  new index 0), and the raw index restarts from 0 (consumption never goes negative).

Reference figures (100 buildings, 365 days, raw_days 31): 28,800 channels, 10.5 M
rollup_day rows, 21.4 M readings and as many rollup_hour rows; see docs/hq-cli.md for
the time taken. Everything is deterministic for a seed and an end day.

Rows are written with the driver's ``executemany`` in one transaction per building
(instants as epoch microseconds, as :class:`wesh.hq.models.UtcTimestamp` stores them).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, insert, select, update

from wesh.errors import UsageError
from wesh.hq.db import transaction
from wesh.hq.migrate import migrate
from wesh.hq.models import (
    Agency,
    Base,
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
    Tenancy,
)
from wesh.hq.timeutil import HOUR_US, day_bounds, iter_days, paris_time, to_epoch_us
from wesh.sim.rng import mix
from wesh.sim.weather import OutdoorClimate

__all__ = [
    "COMMON_CHANNELS",
    "DWELLING_CHANNELS",
    "ChannelSpec",
    "GenerateOptions",
    "GenerateReport",
    "ProgressCallback",
    "generate",
    "plan_estate",
]

_LOG = logging.getLogger(__name__)

DEFAULT_BUILDINGS: Final = 100
DEFAULT_FLATS: Final = 40
DEFAULT_DAYS: Final = 365
DEFAULT_RAW_DAYS: Final = 31
BUILDINGS_PER_RESIDENCE: Final = 4
FLATS_PER_FLOOR: Final = 4

_AGENCY_CODE: Final = "AG-01"
_AGENCY_NAME: Final = "Agence Île-de-France Nord"
_RESIDENCE_NAMES: Final = (
    "Les Tilleuls",
    "Les Acacias",
    "Le Parc",
    "Les Peupliers",
    "Les Érables",
    "La Roseraie",
    "Les Glycines",
    "Le Moulin",
    "Les Charmilles",
    "Les Sorbiers",
    "Le Clos Fleuri",
    "Les Marronniers",
)
_STREETS: Final = (
    "rue Jean Jaurès",
    "avenue Victor Hugo",
    "rue Pasteur",
    "allée des Lilas",
    "rue de la République",
    "boulevard Gambetta",
)
_TOWNS: Final = (
    "93200 Saint-Denis",
    "95100 Argenteuil",
    "93300 Aubervilliers",
    "92230 Gennevilliers",
)
_KEY_PLAN: Final = 0x9E5A
_KEY_DAILY: Final = 0xDA11
_KEY_HOURLY: Final = 0x4011
_KEY_INDEX: Final = 0x1DE7


# ----------------------------------------------------------------------------- channels


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel of a generated box: its weshd reading path and what it measures."""

    path: str
    kind: str
    unit: str
    is_index: bool
    label: str
    meter_input: str
    resolution: float


DWELLING_CHANNELS: Final = (
    ChannelSpec("tic.1.index.base", "electricity", "Wh", True, "Électricité", "tic.1", 1.0),
    ChannelSpec("tic.1.power_va", "power", "VA", False, "Puissance apparente", "tic.1", 1.0),
    ChannelSpec("impulsion.1.index", "cold_water", "L", True, "Eau froide", "impulsion.1", 1.0),
    ChannelSpec("impulsion.2.index", "hot_water", "L", True, "Eau chaude", "impulsion.2", 1.0),
    ChannelSpec("impulsion.3.index", "heat", "Wh", True, "Chauffage", "impulsion.3", 1.0),
    ChannelSpec("temp.1", "temperature", "°C", False, "Température séjour", "temp.1", 0.1),
    ChannelSpec("temp.2", "humidity", "%", False, "Humidité salle de bains", "temp.2", 0.1),
)
COMMON_CHANNELS: Final = (
    ChannelSpec(
        "tic.1.index.base", "electricity", "Wh", True, "Électricité parties communes", "tic.1", 1
    ),
    ChannelSpec("tic.1.power_va", "power", "VA", False, "Puissance apparente", "tic.1", 1.0),
    ChannelSpec("impulsion.1.index", "gas", "L", True, "Gaz chaufferie", "impulsion.1", 10.0),
    ChannelSpec("pince.1.index", "other", "Wh", True, "Ascenseur", "pince.1", 1.0),
    ChannelSpec("pince.2.index", "other", "Wh", True, "Ventilation et pompes", "pince.2", 1.0),
    ChannelSpec("temp.1", "temperature", "°C", False, "Température chaufferie", "temp.1", 0.1),
    ChannelSpec("temp.2", "temperature", "°C", False, "Température hall d'entrée", "temp.2", 0.1),
    ChannelSpec("temp.3", "temperature", "°C", False, "Température extérieure", "temp.3", 0.1),
)
_REPLACEABLE: Final = frozenset({"impulsion.1.index", "impulsion.2.index", "impulsion.3.index"})
DEFAULT_REPLACEMENT_RATE: Final = 0.01  # per water/heat meter and year
_FIRMWARE: Final = "V0.84A10"
_MODEL: Final = "WES V2"


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class TenancyPlan:
    """One household's lease (``end`` ``None``: still running)."""

    tenant_ref: str
    start: date
    end: date | None
    occupants: int


@dataclass(frozen=True, slots=True)
class DwellingPlan:
    """A dwelling or the common areas of a building, and the box that measures it."""

    position: int  # 0: common areas, 1..flats: dwellings
    code: str
    box_ref: str
    label: str
    floor: int | None
    surface_m2: float | None
    ua_w_per_k: float  # heat loss of the flat (W per kelvin)
    setpoint_c: float
    tenancies: tuple[TenancyPlan, ...]
    mac: str
    host: str

    @property
    def is_common(self) -> bool:
        """True for the common-areas box."""
        return self.position == 0

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """The channels of its box."""
        return COMMON_CHANNELS if self.is_common else DWELLING_CHANNELS

    def occupants_on(self, day: date) -> int:
        """Return how many people live there on ``day`` (0 between two leases)."""
        for lease in self.tenancies:
            if lease.start <= day and (lease.end is None or day <= lease.end):
                return lease.occupants
        return 0


@dataclass(frozen=True, slots=True)
class BuildingPlan:
    """One building of the estate, with its gateway and boxes."""

    number: int  # 0-based
    code: str
    name: str
    residence: int  # 0-based
    site_id: str
    phone_number: str
    dwellings: tuple[DwellingPlan, ...]  # [0] is the common areas


@dataclass(frozen=True, slots=True)
class ResidencePlan:
    """A residence: a name, an address, its buildings' numbers."""

    code: str
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class EstatePlan:
    """Everything :func:`plan_estate` decided: residences and buildings."""

    residences: tuple[ResidencePlan, ...]
    buildings: tuple[BuildingPlan, ...]


_TYPOLOGY: Final = (  # (share, label, surface range m², occupants range)
    (0.10, "T1", (27.0, 34.0), (1, 1)),
    (0.25, "T2", (42.0, 52.0), (1, 2)),
    (0.35, "T3", (60.0, 72.0), (2, 4)),
    (0.22, "T4", (75.0, 88.0), (3, 5)),
    (0.08, "T5", (90.0, 105.0), (4, 6)),
)


def _typology(rng: random.Random) -> tuple[str, float, tuple[int, int]]:
    draw = rng.random()
    for share, label, (low, high), occupants in _TYPOLOGY:
        if draw < share:
            return label, round(rng.uniform(low, high), 1), occupants
        draw -= share
    _, label, (low, high), occupants = _TYPOLOGY[-1]
    return label, round(rng.uniform(low, high), 1), occupants


def _tenant_ref(seed: int, building: int, position: int, lease: int) -> str:
    return f"T-{mix(seed, building, position, lease, 0x7E4A) & 0xFFFFFFFFFF:010X}"


def _dwelling_plan(
    seed: int, building: int, position: int, *, first: date, last: date, insulation: float
) -> DwellingPlan:
    rng = random.Random(mix(seed, _KEY_PLAN, building, position))  # noqa: S311 - simulation
    site = f"b{building + 1:03d}"
    mac = f"02B1{(mix(seed, 0xAC) + building * 64 + position) & 0xFFFFFFFF:08X}"
    host = f"10.{building // 250}.{building % 250}.{position + 10}"
    if position == 0:
        return DwellingPlan(
            position=0,
            code=f"B{building + 1:03d}-PC",
            box_ref=f"{site}-pc",
            label="Parties communes",
            floor=None,
            surface_m2=None,
            ua_w_per_k=0.0,
            setpoint_c=0.0,
            tenancies=(),
            mac=mac,
            host=host,
        )
    typology, surface, (low, high) = _typology(rng)
    first_start = first - timedelta(days=rng.randint(60, 15 * 365))
    leases = [TenancyPlan(_tenant_ref(seed, building, position, 0), first_start, None, 0)]
    span = (last - first).days
    if span > 120 and rng.random() < 0.1:  # one household leaves during the period
        leave = first + timedelta(days=rng.randint(30, span - 60))
        vacancy = rng.randint(10, 45)
        leases = [
            TenancyPlan(leases[0].tenant_ref, first_start, leave, 0),
            TenancyPlan(
                _tenant_ref(seed, building, position, 1),
                leave + timedelta(days=vacancy + 1),
                None,
                0,
            ),
        ]
    tenancies = tuple(
        TenancyPlan(lease.tenant_ref, lease.start, lease.end, rng.randint(low, high))
        for lease in leases
    )
    return DwellingPlan(
        position=position,
        code=f"B{building + 1:03d}-L{position:02d}",
        box_ref=f"{site}-l{position:02d}",
        label=f"Logement {position:02d} ({typology})",
        floor=(position - 1) // FLATS_PER_FLOOR,
        surface_m2=surface,
        ua_w_per_k=surface * insulation * rng.uniform(0.85, 1.15),
        setpoint_c=rng.uniform(19.0, 21.5),
        tenancies=tenancies,
        mac=mac,
        host=host,
    )


def plan_estate(
    *, buildings: int, first: date, last: date, flats: int = DEFAULT_FLATS, seed: int = 0
) -> EstatePlan:
    """Return the estate: ``buildings`` buildings of ``flats`` dwellings and common areas.

    Leases are drawn so that about one dwelling in ten changes household between
    ``first`` and ``last`` (with a vacancy of 10 to 45 days). Deterministic for a seed.
    """
    if buildings < 1 or flats < 1:
        raise UsageError("an estate needs at least one building of at least one dwelling")
    residences = []
    for number in range((buildings + BUILDINGS_PER_RESIDENCE - 1) // BUILDINGS_PER_RESIDENCE):
        name = _RESIDENCE_NAMES[number % len(_RESIDENCE_NAMES)]
        lap = number // len(_RESIDENCE_NAMES)
        residences.append(
            ResidencePlan(
                code=f"R{number + 1:02d}",
                name=f"Résidence {name}" + (f" {lap + 1}" if lap else ""),
                address=f"{2 * number + 1} {_STREETS[number % len(_STREETS)]}, "
                f"{_TOWNS[number % len(_TOWNS)]}",
            )
        )
    plans = []
    for building in range(buildings):
        insulation = 0.9 + 0.7 * (mix(seed, _KEY_PLAN, building) / 2**64)  # W/K per m²
        residence = building // BUILDINGS_PER_RESIDENCE
        plans.append(
            BuildingPlan(
                number=building,
                code=f"B{building + 1:03d}",
                name=f"{residences[residence].name}, bâtiment "
                f"{building % BUILDINGS_PER_RESIDENCE + 1}",
                residence=residence,
                site_id=f"b{building + 1:03d}",
                phone_number=f"+3363998{building % 10000:04d}",
                dwellings=tuple(
                    _dwelling_plan(
                        seed, building, position, first=first, last=last, insulation=insulation
                    )
                    for position in range(flats + 1)
                ),
            )
        )
    return EstatePlan(tuple(residences), tuple(plans))


# ----------------------------------------------------------------------------- calendar


@dataclass(frozen=True, slots=True)
class DayFrame:
    """One Paris calendar day: its UTC start, its hours and their local hour of day."""

    day: date
    start_us: int
    local_hours: tuple[int, ...]  # 23, 24 or 25 entries
    weekend: bool
    epoch_day: int  # days since 1970-01-01 (the simulator's day numbers)

    @property
    def hours(self) -> int:
        """How many hours the day lasts."""
        return len(self.local_hours)


def day_frames(first: date, last: date) -> list[DayFrame]:
    """Return the frames of the Paris days ``first`` .. ``last`` (both included)."""
    frames = []
    for day in iter_days(first, last + timedelta(days=1)):
        start, end = day_bounds(day)
        hours = int((end - start).total_seconds()) // 3600
        local = tuple(paris_time(start + timedelta(hours=h)).hour for h in range(hours))
        frames.append(
            DayFrame(
                day=day,
                start_us=to_epoch_us(start),
                local_hours=local,
                weekend=day.weekday() >= 5,
                epoch_day=(day - date(1970, 1, 1)).days,
            )
        )
    return frames


# ----------------------------------------------------------------------------- profiles

# Typical share of a day's consumption in each local hour (0..23), unnormalised.
_ELEC: Final = (6, 5, 4, 4, 4, 5, 8, 13, 12, 9, 8, 9, 10, 9, 8, 8, 9, 12, 17, 20, 19, 16, 12, 8)
_WATER: Final = (
    1,
    0.5,
    0.3,
    0.3,
    0.5,
    2,
    10,
    14,
    10,
    6,
    4,
    4,
    5,
    4,
    3,
    3,
    4,
    6,
    8,
    10,
    11,
    8,
    5,
    2,
)
_HEAT: Final = (7, 7, 7, 7, 7, 8, 13, 13, 12, 9, 9, 9, 9, 9, 9, 9, 10, 12, 12, 12, 12, 11, 9, 8)
_LIFT: Final = (1, 0.5, 0.5, 0.5, 0.5, 1, 4, 9, 8, 4, 3, 3, 4, 3, 3, 3, 4, 7, 9, 8, 5, 3, 2, 1)
_FLAT: Final = (1,) * 24
_COMMON_ELEC: Final = (
    8,
    7,
    7,
    7,
    7,
    8,
    10,
    12,
    11,
    9,
    9,
    9,
    9,
    9,
    9,
    9,
    10,
    12,
    13,
    13,
    12,
    11,
    10,
    9,
)
# Gauge shapes: value = mean + amplitude * shape[local hour], shapes within -1..1.
_DAILY_SINE: Final = tuple(math.sin(2 * math.pi * (h - 9) / 24) for h in range(24))  # top 15 h
_INDOOR: Final = tuple(math.sin(2 * math.pi * (h - 13) / 24) for h in range(24))  # top 19 h
_HUMID: Final = (
    -0.6, -0.6, -0.7, -0.7, -0.7, -0.5, 0.2, 1.0, 0.7, 0.2, -0.1, -0.2,
    -0.3, -0.3, -0.3, -0.3, -0.2, 0.0, 0.2, 0.5, 0.8, 0.6, 0.0, -0.4,
)  # fmt: skip
_POWER: Final = tuple(w * 24 / sum(_ELEC) - 1 for w in _ELEC)
_BOILER_ROOM: Final = tuple(0.3 * s for s in _DAILY_SINE)


@dataclass(frozen=True, slots=True)
class _IndexShape:
    """A day's hourly shares of an index profile, for one list of local hours."""

    shares: tuple[float, ...]
    first_share: float
    mean_cum_share: float


@dataclass(frozen=True, slots=True)
class _GaugeShape:
    """Statistics of a gauge shape over one list of local hours."""

    values: tuple[float, ...]
    low: float
    high: float
    mean: float


@cache
def _index_shape(profile: tuple[float, ...], hours: tuple[int, ...]) -> _IndexShape:
    weights = [profile[h] for h in hours]
    total = sum(weights)
    shares = tuple(w / total for w in weights)
    cum = 0.0
    cums = []
    for share in shares:
        cum += share
        cums.append(cum)
    return _IndexShape(shares, shares[0], sum(cums) / len(cums))


@cache
def _gauge_shape(shape: tuple[float, ...], hours: tuple[int, ...]) -> _GaugeShape:
    values = tuple(shape[h] for h in hours)
    return _GaugeShape(values, min(values), max(values), sum(values) / len(values))


def _noise(rng: random.Random, spread: float) -> float:
    """Return a factor in ``1 ± spread`` (triangular, mean 1)."""
    return 1.0 + spread * (rng.random() + rng.random() - 1.0)


# ----------------------------------------------------------------------------- daily model


@dataclass(slots=True)
class _Series:
    """What the daily model says about one channel, day by day."""

    spec: ChannelSpec
    profile: tuple[float, ...]  # index profile, or gauge shape
    values: list[float] = field(default_factory=list)  # index: day totals; gauge: day means
    amplitudes: list[float] = field(default_factory=list)  # gauges only
    noise: float = 0.0  # gauges: hourly noise (absolute); index: hourly share noise


def _climate(frames: Sequence[DayFrame], seed: int, building: int) -> list[float]:
    climate = OutdoorClimate(seed=seed, building=building)
    return [climate.daily_mean_c(frame.epoch_day) for frame in frames]


def _dwelling_series(
    plan: DwellingPlan, frames: Sequence[DayFrame], outdoor: Sequence[float], rng: random.Random
) -> dict[str, _Series]:
    specs = {spec.path: spec for spec in DWELLING_CHANNELS}
    elec = _Series(specs["tic.1.index.base"], _ELEC, noise=0.35)
    power = _Series(specs["tic.1.power_va"], _POWER, noise=0.0)
    cold = _Series(specs["impulsion.1.index"], _WATER, noise=0.6)
    hot = _Series(specs["impulsion.2.index"], _WATER, noise=0.6)
    heat = _Series(specs["impulsion.3.index"], _HEAT, noise=0.2)
    indoor = _Series(specs["temp.1"], _INDOOR, noise=0.15)
    humid = _Series(specs["temp.2"], _HUMID, noise=1.5)
    base_wh = rng.uniform(1500.0, 2600.0)
    person_wh = rng.uniform(1100.0, 1900.0)
    cold_l = rng.uniform(75.0, 110.0)
    hot_l = rng.uniform(38.0, 60.0)
    for frame, outdoor_c in zip(frames, outdoor, strict=True):
        hours = frame.hours
        occupants = plan.occupants_on(frame.day)
        winter = max(0.0, min(1.0, (15.0 - outdoor_c) / 15.0))
        week = 1.12 if frame.weekend else 1.0
        if occupants:
            elec_wh = (base_wh + person_wh * occupants) * (1 + 0.3 * winter) * week
            elec_wh *= _noise(rng, 0.2)
            cold_day = cold_l * occupants * week * _noise(rng, 0.35)
            hot_day = hot_l * occupants * week * _noise(rng, 0.35)
            setpoint = plan.setpoint_c
        else:  # vacant: standby, frost protection
            elec_wh, cold_day, hot_day, setpoint = 700.0 * _noise(rng, 0.1), 0.0, 0.0, 14.0
        heating = outdoor_c < 15.0
        gap_k = max(0.0, setpoint - 3.0 - outdoor_c) if heating else 0.0
        heat_wh = plan.ua_w_per_k * gap_k * hours * _noise(rng, 0.08)
        scale = hours / 24
        elec.values.append(round(elec_wh * scale))
        cold.values.append(round(cold_day * scale))
        hot.values.append(round(hot_day * scale))
        heat.values.append(round(heat_wh))
        power.values.append(elec_wh / 24 / 0.92)
        power.amplitudes.append(elec_wh / 24 / 0.92)
        if heating:
            inside = setpoint + rng.uniform(-0.4, 0.4)
        else:
            inside = 21.0 + 0.45 * (outdoor_c - 15.0) + rng.uniform(-0.5, 0.5)
        indoor.values.append(inside)
        indoor.amplitudes.append(0.5 + 0.3 * rng.random())
        humid.values.append(48.0 + 8.0 * (1 - winter) + 2.5 * occupants + rng.uniform(-3, 3))
        humid.amplitudes.append(4.0 + 3.0 * rng.random() if occupants else 1.0)
    return {s.spec.path: s for s in (elec, power, cold, hot, heat, indoor, humid)}


def _common_series(
    frames: Sequence[DayFrame],
    outdoor: Sequence[float],
    rng: random.Random,
    heat_wh: Sequence[float],
    hot_l: Sequence[float],
) -> dict[str, _Series]:
    specs = {spec.path: spec for spec in COMMON_CHANNELS}
    elec = _Series(specs["tic.1.index.base"], _COMMON_ELEC, noise=0.2)
    power = _Series(specs["tic.1.power_va"], _POWER, noise=0.0)
    gas = _Series(specs["impulsion.1.index"], _HEAT, noise=0.25)
    lift = _Series(specs["pince.1.index"], _LIFT, noise=0.5)
    vent = _Series(specs["pince.2.index"], _FLAT, noise=0.1)
    boiler = _Series(specs["temp.1"], _BOILER_ROOM, noise=0.3)
    hall = _Series(specs["temp.2"], _INDOOR, noise=0.2)
    outside = _Series(specs["temp.3"], _DAILY_SINE, noise=0.4)
    lift_day = rng.uniform(5000.0, 9000.0)
    vent_day = rng.uniform(8000.0, 12000.0)
    for number, (frame, outdoor_c) in enumerate(zip(frames, outdoor, strict=True)):
        scale = frame.hours / 24
        winter = max(0.0, min(1.0, (15.0 - outdoor_c) / 15.0))
        heating = outdoor_c < 15.0
        lift_wh = lift_day * (0.8 if frame.weekend else 1.0) * _noise(rng, 0.25) * scale
        vent_wh = (vent_day + (7000.0 if heating else 0.0)) * _noise(rng, 0.05) * scale
        other_wh = (5500.0 + 3500.0 * winter) * _noise(rng, 0.15) * scale
        elec_wh = lift_wh + vent_wh + other_wh
        boiler_wh = heat_wh[number] / 0.92 + hot_l[number] * 58.0 / 0.85 + 8000.0 * scale
        gas_l = boiler_wh / 0.9 / 10.5 * _noise(rng, 0.03)  # 10.5 Wh per litre of gas
        lift.values.append(round(lift_wh))
        vent.values.append(round(vent_wh))
        elec.values.append(round(elec_wh))
        gas.values.append(round(gas_l))
        power.values.append(elec_wh / frame.hours / 0.92)
        power.amplitudes.append(0.3 * elec_wh / frame.hours / 0.92)
        boiler.values.append((27.0 if heating else 22.0) + 0.3 * outdoor_c + rng.uniform(-1, 1))
        boiler.amplitudes.append(1.0)
        hall.values.append(max(8.0, 17.0 + 0.35 * (outdoor_c - 10.0)) + rng.uniform(-0.5, 0.5))
        hall.amplitudes.append(1.0 + 0.5 * rng.random())
        outside.values.append(outdoor_c)
        outside.amplitudes.append(3.0 + 2.0 * rng.random())
    return {s.spec.path: s for s in (elec, power, gas, lift, vent, boiler, hall, outside)}


# ----------------------------------------------------------------------------- rows


@dataclass(slots=True)
class _Rows:
    """Rows of one building, in the column order of :data:`_COLUMNS`."""

    reading: list[tuple[Any, ...]] = field(default_factory=list)
    rollup_hour: list[tuple[Any, ...]] = field(default_factory=list)
    rollup_day: list[tuple[Any, ...]] = field(default_factory=list)
    replacements: list[tuple[int, int, float]] = field(default_factory=list)  # ch, at_us, old


def _index_rows(
    rows: _Rows,
    channel_id: int,
    series: _Series,
    frames: Sequence[DayFrame],
    *,
    raw_from: int,
    start_index: int,
    replace_day: int | None,
    rng: random.Random,
) -> None:
    """Append the rows of an index channel: day totals, and hours in the raw window."""
    index = start_index
    profile = series.profile
    spread = series.noise
    day_rows = rows.rollup_day
    for number, frame in enumerate(frames):
        total = int(series.values[number])
        if number == raw_from:  # the anchor: the index at the window's start
            rows.reading.append(
                (
                    channel_id,
                    frame.start_us - HOUR_US,
                    float(index),
                    "measured",
                    "good",
                    "hour_last",
                )
            )
        if number == replace_day:  # a new meter from this local midnight
            rows.replacements.append((channel_id, frame.start_us, float(index)))
            index = 0
        hours = frame.local_hours
        shape = _index_shape(profile, hours)
        last_at = frame.start_us + (len(hours) - 1) * HOUR_US
        if number < raw_from:
            first_value = float(index + round(total * shape.first_share))
            index += total
            day_rows.append(
                (channel_id, frame.day, float(total), first_value, float(index), None,
                 len(hours), frame.start_us, first_value, last_at, float(index))
            )  # fmt: skip
            continue
        weights = [share * _noise(rng, spread) for share in shape.shares]
        scale = total / sum(weights)
        at = frame.start_us
        before = index
        cum = 0.0
        done = 0
        first_value = 0.0
        for position, weight in enumerate(weights):
            cum += weight * scale
            reached = round(cum) if position < len(weights) - 1 else total
            step = reached - done
            done = reached
            value = float(before + reached)
            if position == 0:
                first_value = value
            rows.reading.append((channel_id, at, value, "measured", "good", "hour_last"))
            rows.rollup_hour.append(
                (channel_id, at, float(step), value, value, None, 1, at, value, at, value)
            )
            at += HOUR_US
        index = before + total
        day_rows.append(
            (channel_id, frame.day, float(total), first_value, float(index), None,
             len(hours), frame.start_us, first_value, last_at, float(index))
        )  # fmt: skip


def _gauge_rows(
    rows: _Rows,
    channel_id: int,
    series: _Series,
    frames: Sequence[DayFrame],
    *,
    raw_from: int,
    rng: random.Random,
) -> None:
    """Append the rows of a gauge channel: day statistics, and hours in the raw window."""
    profile = series.profile
    noise = series.noise
    day_rows = rows.rollup_day
    for number, frame in enumerate(frames):
        mean = series.values[number]
        amplitude = series.amplitudes[number]
        shape = _gauge_shape(profile, frame.local_hours)
        last_at = frame.start_us + (frame.hours - 1) * HOUR_US
        if number < raw_from:
            first = round(mean + amplitude * shape.values[0], 2)
            last = round(mean + amplitude * shape.values[-1], 2)
            day_rows.append(
                (channel_id, frame.day, None, round(mean + amplitude * shape.low, 2),
                 round(mean + amplitude * shape.high, 2), mean + amplitude * shape.mean,
                 frame.hours, frame.start_us, first, last_at, last)
            )  # fmt: skip
            continue
        at = frame.start_us
        values = []
        for part in shape.values:
            value = round(mean + amplitude * part + noise * (rng.random() - 0.5) * 2, 2)
            values.append(value)
            rows.reading.append((channel_id, at, value, "measured", "good", "hour_mean"))
            rows.rollup_hour.append(
                (channel_id, at, None, value, value, value, 1, at, value, at, value)
            )
            at += HOUR_US
        day_rows.append(
            (channel_id, frame.day, None, min(values), max(values), sum(values) / len(values),
             len(values), frame.start_us, values[0], last_at, values[-1])
        )  # fmt: skip


def _start_index(seed: int, building: int, position: int, number: int, kind: str) -> int:
    draw = mix(seed, _KEY_INDEX, building, position, number) / 2**64
    base = {"electricity": 5e6, "cold_water": 5e4, "hot_water": 3e4, "heat": 1e7, "gas": 1e6}
    return int(base.get(kind, 1e6) * (1 + 10 * draw))


def building_rows(
    plan: BuildingPlan,
    frames: Sequence[DayFrame],
    raw_from: int,
    channel_ids: dict[tuple[int, str], int],
    *,
    seed: int,
    replacement_rate: float = DEFAULT_REPLACEMENT_RATE,
) -> _Rows:
    """Return every reading and rollup row of one building (pure; deterministic)."""
    outdoor = _climate(frames, seed, plan.number)
    rows = _Rows()
    heat_total = [0.0] * len(frames)
    hot_total = [0.0] * len(frames)
    boxes: list[tuple[DwellingPlan, dict[str, _Series]]] = []
    for dwelling in plan.dwellings[1:]:
        daily = random.Random(mix(seed, _KEY_DAILY, plan.number, dwelling.position))  # noqa: S311
        by_path = _dwelling_series(dwelling, frames, outdoor, daily)
        for number, value in enumerate(by_path["impulsion.3.index"].values):
            heat_total[number] += value
        for number, value in enumerate(by_path["impulsion.2.index"].values):
            hot_total[number] += value
        boxes.append((dwelling, by_path))
    common = plan.dwellings[0]
    daily = random.Random(mix(seed, _KEY_DAILY, plan.number, 0))  # noqa: S311
    boxes.insert(0, (common, _common_series(frames, outdoor, daily, heat_total, hot_total)))
    for dwelling, series_by_path in boxes:
        hourly = random.Random(mix(seed, _KEY_HOURLY, plan.number, dwelling.position))  # noqa: S311
        for number, spec in enumerate(dwelling.channels):
            channel_id = channel_ids[(dwelling.position, spec.path)]
            series = series_by_path[spec.path]
            if spec.is_index:
                replace_day = _replacement_day(
                    seed, plan.number, dwelling.position, spec, frames=frames, rate=replacement_rate
                )
                start = _start_index(seed, plan.number, dwelling.position, number, spec.kind)
                _index_rows(
                    rows, channel_id, series, frames,
                    raw_from=raw_from, start_index=start, replace_day=replace_day, rng=hourly,
                )  # fmt: skip
            else:
                _gauge_rows(rows, channel_id, series, frames, raw_from=raw_from, rng=hourly)
    return rows


def _replacement_day(
    seed: int,
    building: int,
    position: int,
    spec: ChannelSpec,
    *,
    frames: Sequence[DayFrame],
    rate: float,
) -> int | None:
    """Return the day (number in ``frames``) a water or heat meter is replaced, if any."""
    if spec.path not in _REPLACEABLE or position == 0 or len(frames) < 2:
        return None
    key = mix(seed, 0x4E91, building, position, _REPLACEABLE_ORDER[spec.path])
    if key / 2**64 >= rate * len(frames) / 365:
        return None
    return 1 + (key >> 7) % (len(frames) - 1)


_REPLACEABLE_ORDER: Final = {path: number for number, path in enumerate(sorted(_REPLACEABLE))}


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """What to generate.

    ``days`` Paris days ending ``end`` (included), the last ``raw_days`` of them with
    hourly readings; ``buildings`` of ``flats`` dwellings (and their common areas).
    """

    end: date
    buildings: int = DEFAULT_BUILDINGS
    flats: int = DEFAULT_FLATS
    days: int = DEFAULT_DAYS
    raw_days: int = DEFAULT_RAW_DAYS
    seed: int = 0
    replacement_rate: float = DEFAULT_REPLACEMENT_RATE

    def check(self) -> None:
        """Raise :class:`UsageError` for impossible options."""
        if not 1 <= self.buildings <= 9999:
            raise UsageError(f"buildings must be 1..9999, not {self.buildings}")
        if not 1 <= self.flats <= 99:
            raise UsageError(f"flats must be 1..99, not {self.flats}")
        if not 1 <= self.days <= 3660:
            raise UsageError(f"days must be 1..3660, not {self.days}")
        if not 0 <= self.raw_days <= self.days:
            raise UsageError(f"raw days must be 0..{self.days} (the days), not {self.raw_days}")
        if not 0 <= self.replacement_rate <= 365 / self.days:
            raise UsageError(
                f"replacement rate must be 0..{365 / self.days:.3g} a year "
                f"(at most every meter once), not {self.replacement_rate}"
            )

    @property
    def first(self) -> date:
        """The first day generated."""
        return self.end - timedelta(days=self.days - 1)


@dataclass(slots=True)
class GenerateReport:
    """What :func:`generate` wrote, and how long it took."""

    buildings: int = 0
    boxes: int = 0
    channels: int = 0
    readings: int = 0
    rollup_hour: int = 0
    rollup_day: int = 0
    meter_replacements: int = 0
    first: date | None = None
    end: date | None = None
    raw_from: date | None = None
    seconds: float = 0.0
    model_seconds: float = 0.0  # computing the rows (the rest is writing them)

    @property
    def rows(self) -> int:
        """All reading and rollup rows written."""
        return self.readings + self.rollup_hour + self.rollup_day


ProgressCallback = Callable[[int, int], None]
"""Called with (buildings done, buildings in all) after each building."""


_COLUMNS: Final = {
    "reading": ("channel_id", "at", "value", "provenance", "quality", "aggregate"),
    "rollup_hour": (
        "channel_id", "hour_start", "consumption", "min", "max", "mean", "count",
        "first_at", "first_value", "last_at", "last_value",
    ),
    "rollup_day": (
        "channel_id", "day", "consumption", "min", "max", "mean", "count",
        "first_at", "first_value", "last_at", "last_value",
    ),
}  # fmt: skip


def _insert_sql(conn: Connection, table: Table) -> str:
    """Return an INSERT with the driver's positional placeholders (qmark or format)."""
    columns = _COLUMNS[table.name]
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"VALUES ({', '.join([mark] * len(columns))})"
    )


def _write(conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if table.name == "rollup_day" and conn.dialect.name == "sqlite":
        rows = [(row[0], row[1].isoformat(), *row[2:]) for row in rows]
    sql = _insert_sql(conn, table)
    for start in range(0, len(rows), 50_000):
        conn.exec_driver_sql(sql, rows[start : start + 50_000])


def _refuse_existing(conn: Connection, plan: EstatePlan) -> None:
    """Refuse a database that already holds a residence, building or site of the plan."""
    wanted = (
        (Residence.code, [r.code for r in plan.residences]),
        (Building.code, [b.code for b in plan.buildings]),
        (Gateway.site_id, [b.site_id for b in plan.buildings]),
    )
    for column, values in wanted:
        for start in range(0, len(values), 500):
            found = conn.execute(
                select(column).where(column.in_(values[start : start + 500])).limit(1)
            ).scalar_one_or_none()
            if found is not None:
                raise UsageError(
                    f"the database already holds {found!r}: generate into a new (empty) database"
                )


def _insert_returning_ids(
    conn: Connection, model: type[Base], rows: list[dict[str, Any]], key: str
) -> dict[Any, int]:
    """Insert rows, return ``{row[key]: id}`` (read back by the unique key)."""
    table = _table(model)
    conn.execute(insert(table), rows)
    column = table.c[key]
    found = conn.execute(
        select(column, table.c.id).where(column.in_([row[key] for row in rows]))
    ).all()
    return {value: ident for value, ident in found}


def _inventory(
    conn: Connection,
    plan: EstatePlan,
    building: BuildingPlan,
    residence_ids: dict[str, int],
    seed: int,
) -> dict[tuple[int, str], int]:
    """Write one building's patrimony and equipment; return its channel ids."""
    residence = plan.residences[building.residence]
    building_id = _insert_returning_ids(
        conn,
        Building,
        [{"residence_id": residence_ids[residence.code], "code": building.code,
          "name": building.name}],
        "code",
    )[building.code]  # fmt: skip
    gateway_id = _insert_returning_ids(
        conn,
        Gateway,
        [{"building_id": building_id, "site_id": building.site_id, "name": building.name,
          "phone_number": building.phone_number, "key_id": f"k-{building.site_id}-1"}],
        "site_id",
    )[building.site_id]  # fmt: skip
    dwelling_ids = _insert_returning_ids(
        conn,
        Dwelling,
        [
            {
                "building_id": building_id,
                "code": d.code,
                "kind": "common_area" if d.is_common else "dwelling",
                "label": d.label,
                "floor": d.floor,
                "surface_m2": d.surface_m2,
                "heating_type": "collective",
            }
            for d in building.dwellings
        ],
        "code",
    )
    tenancies = [
        {"dwelling_id": dwelling_ids[d.code], "tenant_ref": lease.tenant_ref,
         "start_date": lease.start, "end_date": lease.end}
        for d in building.dwellings
        for lease in d.tenancies
    ]  # fmt: skip
    if tenancies:
        conn.execute(insert(Tenancy), tenancies)
    installed = datetime(2019, 1, 1, tzinfo=UTC) - timedelta(days=building.number)
    conn.execute(
        insert(Box),
        [
            {"gateway_id": gateway_id, "box_ref": d.box_ref, "dwelling_id": dwelling_ids[d.code],
             "driver": "wes", "host": d.host, "mac": d.mac, "serial": f"WES{d.mac[4:]}",
             "model": _MODEL, "firmware": _FIRMWARE, "installed_at": installed}
            for d in building.dwellings
        ],
    )  # fmt: skip
    box_ids = {
        ref: ident
        for ref, ident in conn.execute(
            select(Box.box_ref, Box.id).where(Box.gateway_id == gateway_id)
        ).all()
    }
    conn.execute(
        insert(Channel),
        [
            {"box_id": box_ids[d.box_ref], "path": spec.path, "kind": spec.kind,
             "unit": spec.unit, "is_index": spec.is_index, "resolution": spec.resolution,
             "label": spec.label}
            for d in building.dwellings
            for spec in d.channels
        ],
    )  # fmt: skip
    position_of_box = {box_ids[d.box_ref]: d.position for d in building.dwellings}
    channel_ids = {
        (position_of_box[box_id], path): ident
        for box_id, path, ident in conn.execute(
            select(Channel.box_id, Channel.path, Channel.id).where(
                Channel.box_id.in_(list(box_ids.values()))
            )
        ).all()
    }
    meters = []
    for d in building.dwellings:
        inputs: dict[str, str] = {}
        for spec in d.channels:
            inputs.setdefault(
                spec.meter_input, spec.kind if spec.kind != "power" else "electricity"
            )
        for number, (meter_input, kind) in enumerate(inputs.items()):
            serial = f"{mix(seed, building.number, d.position, number) % 10**12:012d}"
            meters.append(
                {"box_id": box_ids[d.box_ref], "serial": serial, "kind": kind,
                 "input": meter_input, "model": None, "installed_at": installed,
                 "removed_at": None}
            )  # fmt: skip
    conn.execute(insert(Meter), meters)
    return channel_ids


def _record_replacements(
    conn: Connection, replacements: list[tuple[int, int, float]], seed: int
) -> None:
    """Close the old meter, open a new one, and write the ``replaced`` event."""
    from wesh.hq.timeutil import from_epoch_us  # noqa: PLC0415 - one use

    for channel_id, at_us, old_index in replacements:
        box_id, path = conn.execute(
            select(Channel.box_id, Channel.path).where(Channel.id == channel_id)
        ).one()
        meter_input = path.rsplit(".", 1)[0]
        old = conn.execute(
            select(Meter.id, Meter.kind).where(
                Meter.box_id == box_id, Meter.input == meter_input, Meter.removed_at.is_(None)
            )
        ).one()
        at = from_epoch_us(at_us)
        conn.execute(update(Meter).where(Meter.id == old.id), {"removed_at": at})
        conn.execute(
            insert(Meter),
            {"box_id": box_id, "serial": f"{mix(seed, channel_id, at_us) % 10**12:012d}",
             "kind": old.kind, "input": meter_input, "installed_at": at},
        )  # fmt: skip
        new_id = conn.execute(
            select(Meter.id).where(
                Meter.box_id == box_id, Meter.input == meter_input, Meter.removed_at.is_(None)
            )
        ).scalar_one()
        conn.execute(
            insert(MeterEvent),
            {"meter_id": new_id, "channel_id": channel_id, "kind": "replaced", "at": at,
             "old_index": old_index, "new_index": 0.0,
             "note": "compteur remplacé (données générées)"},
        )  # fmt: skip


def generate(
    engine: Engine,
    options: GenerateOptions,
    *,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> GenerateReport:
    """Create (or upgrade) the schema and fill it with a generated estate and its data.

    Refuses (``UsageError``) a database that already holds one of the buildings. One
    transaction per building: an interrupted run leaves whole buildings.
    """
    options.check()
    started = clock()
    first, end = options.first, options.end
    migrate(engine)
    frames = day_frames(first, end)
    raw_from = len(frames) - options.raw_days
    plan = plan_estate(
        buildings=options.buildings, first=first, last=end, flats=options.flats,
        seed=options.seed,
    )  # fmt: skip
    report = GenerateReport(
        first=first, end=end, raw_from=end + timedelta(days=1 - options.raw_days)
    )
    with transaction(engine) as conn:
        _refuse_existing(conn, plan)
        agency_id = conn.execute(
            select(Agency.id).where(Agency.code == _AGENCY_CODE)
        ).scalar_one_or_none()
        if agency_id is None:
            agency_id = _insert_returning_ids(
                conn,
                Agency,
                [{"code": _AGENCY_CODE, "name": _AGENCY_NAME}],
                "code",
            )[_AGENCY_CODE]
        residence_ids = _insert_returning_ids(
            conn,
            Residence,
            [{"agency_id": agency_id, "code": r.code, "name": r.name, "address": r.address}
             for r in plan.residences],
            "code",
        )  # fmt: skip
    tables = {"reading": _table(Reading), "rollup_hour": _table(RollupHour)}
    tables["rollup_day"] = _table(RollupDay)
    for done, building in enumerate(plan.buildings, start=1):
        with transaction(engine) as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB
            channel_ids = _inventory(conn, plan, building, residence_ids, options.seed)
            before = clock()
            rows = building_rows(
                building, frames, raw_from, channel_ids,
                seed=options.seed, replacement_rate=options.replacement_rate,
            )  # fmt: skip
            report.model_seconds += clock() - before
            for name, table in tables.items():
                _write(conn, table, getattr(rows, name))
            _record_replacements(conn, rows.replacements, options.seed)
        report.buildings += 1
        report.boxes += len(building.dwellings)
        report.channels += len(channel_ids)
        report.readings += len(rows.reading)
        report.rollup_hour += len(rows.rollup_hour)
        report.rollup_day += len(rows.rollup_day)
        report.meter_replacements += len(rows.replacements)
        if progress is not None:
            progress(done, len(plan.buildings))
    report.seconds = clock() - started
    _LOG.info(
        "generated %d buildings, %d channels, %d rows in %.1f s",
        report.buildings, report.channels, report.rows, report.seconds,
    )  # fmt: skip
    return report


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - declarative tables are Tables
    return table


def iter_channel_specs(
    plan: EstatePlan,
) -> Iterator[tuple[BuildingPlan, DwellingPlan, ChannelSpec]]:
    """Yield every (building, dwelling, channel) of an estate plan."""
    for building in plan.buildings:
        for dwelling in building.dwellings:
            for spec in dwelling.channels:
                yield building, dwelling, spec
