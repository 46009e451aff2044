"""Deterministic consumption models of a dwelling and of a building's common areas.

Pure logic: no I/O, no wall clock. Time is cut into one-minute **slots** (POSIX
seconds // 60). For each slot a model gives constant :class:`SlotRates` (flows of the
pulse counters, clamp powers, heating power); the box integrates them with exact integer
arithmetic, and at the end of each complete slot the model updates its slow state
(indoor temperature, humidity). Every random draw is a hash of
``(seed, box, channel, slot or day)``, so the state at a time does not depend on how
often, or in which steps, the model was advanced.

Dwelling (one WES per flat)::

    counter 1  cold water  1 pulse = 1 l     showers, toilets, taps, washing machine
    counter 2  hot water   1 pulse = 1 l     showers, taps, dishes
    counter 3  heat        1 pulse = 1 Wh    collective heating, thermostat per flat
    SONDE1     indoor temperature (°C)       follows heating, outdoor and free gains
    SONDE2     humidity (%RH)                seasonal base, raised by showers

Common areas (one WES per building)::

    counter 1  gas         1 pulse = 10 l    boiler: heating of the building + hot water
    clamp 1    lift        bursts of trips, busiest at 07-09 h and 17-20 h
    clamp 2    ventilation and boiler-room pumps (pumps run in the heating season)
    SONDE1..3  boiler room, entrance hall, outdoor (°C)

Heating season: a day whose mean outdoor temperature is below 15 °C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from wesh.sim.clock import CALENDAR
from wesh.sim.rng import rng_for, uniform
from wesh.sim.weather import OutdoorClimate, seasonal_mean_c

__all__ = [
    "CommonAreaModel",
    "ConsumptionModel",
    "DwellingModel",
    "SlotRates",
    "WaterDraw",
    "water_plan",
]

SLOT_S = 60
HEATING_LIMIT_C = 15.0
_KEY_WATER = 0x57A7
_KEY_PARAMS = 0x9A4A
_KEY_NOISE = 0x4015
_KEY_LIFT = 0x11F7
_GAS_WH_PER_PULSE = 105  # 10 l of natural gas at 10.5 kWh/m3


@dataclass(frozen=True, slots=True)
class SlotRates:
    """What flows during one slot.

    Attributes:
        pulse_mpm: milli-pulses per minute of each pulse counter (index 0 = counter 1).
        clamp_w: active power of each clamp (W).
        clamp_va: apparent power of each clamp (VA).
        outdoor_c: outdoor temperature at the middle of the slot.
        heat_w: heating power delivered (W) (dwelling: the flat; common: the boiler).
        heating: the day is in the heating season.
        shower: a shower is running.
    """

    pulse_mpm: tuple[int, ...]
    clamp_w: tuple[int, ...] = ()
    clamp_va: tuple[int, ...] = ()
    outdoor_c: float = 0.0
    heat_w: float = 0.0
    heating: bool = False
    shower: bool = False


class ConsumptionModel(Protocol):
    """A model of what one box measures, slot by slot.

    ``probe_kinds`` says what each value of :meth:`probes` is (``"temperature"`` or
    ``"humidity"``), in order.
    """

    probe_kinds: tuple[str, ...]

    def rates(self, slot: int) -> SlotRates:
        """Return the constant rates of ``slot`` (depends on the state at its start)."""
        ...

    def end_slot(self, slot: int, rates: SlotRates) -> None:
        """Update the slow state at the end of a complete slot."""
        ...

    def probes(self) -> tuple[float, ...]:
        """Return the 1-Wire probe values now (SONDE1, SONDE2...), unrounded."""
        ...

    def typical_daily_pulses(self, counter: int, day: int) -> int:
        """Return a typical day's pulses of ``counter`` on local ``day`` (to seed totals)."""
        ...


# --------------------------------------------------------------------------- water


@dataclass(frozen=True, slots=True)
class WaterDraw:
    """One draw of water: ``minutes`` long from ``start_min`` (minute of the local day)."""

    start_min: int
    minutes: int
    cold_ml_min: int
    hot_ml_min: int
    shower: bool = False


def _weekday(day: int) -> int:
    """Monday = 0 for a day number since 1970-01-01 (a Thursday)."""
    return (day + 3) % 7


def water_plan(*, seed: int, box: int, day: int, occupants: int) -> tuple[WaterDraw, ...]:
    """Return the water draws of one flat on local day ``day``, drawn from the seed."""
    rng = rng_for(seed, box, _KEY_WATER, day)
    weekend = _weekday(day) >= 5
    draws: list[WaterDraw] = []

    def draw(start_h: float, minutes: int, litres_min: float, hot_share: float) -> None:
        ml_min = litres_min * 1000
        hot = int(ml_min * hot_share)
        draws.append(WaterDraw(int(start_h * 60), minutes, int(ml_min) - hot, hot))

    for _ in range(occupants):
        if rng.random() < 0.85:
            if rng.random() < 0.6:
                start_h = rng.uniform(7.5, 11.0) if weekend else rng.uniform(6.0, 8.5)
            else:
                start_h = rng.uniform(19.0, 22.5)
            ml_min = rng.uniform(7.0, 11.0) * 1000
            hot = int(ml_min * rng.uniform(0.55, 0.7))
            minutes = rng.randint(5, 12)
            draws.append(WaterDraw(int(start_h * 60), minutes, int(ml_min) - hot, hot, True))
        for _ in range(rng.randint(3, 6)):  # toilets
            draw(rng.uniform(6.5, 23.0), 1, 6.0, 0.0)
        for _ in range(rng.randint(3, 8)):  # taps
            draw(rng.uniform(6.5, 23.0), rng.randint(1, 2), rng.uniform(3.0, 5.0), 0.4)
    if rng.random() < 0.5:  # dishes
        draw(rng.uniform(19.5, 21.5), 5, 4.0, 0.7)
    if rng.random() < 0.35:  # washing machine: four fills
        start_h = rng.uniform(9.0, 20.0)
        for k in range(4):
            draw(start_h + k * 0.25, 1, 12.0, 0.0)
    draws.sort(key=lambda d: d.start_min)
    return tuple(draws)


class _WaterDay:
    """Per-minute flows of one day, sparse: minute → (cold ml/min, hot ml/min, shower)."""

    def __init__(self, draws: tuple[WaterDraw, ...]) -> None:
        self.minutes: dict[int, tuple[int, int, bool]] = {}
        for d in draws:
            for m in range(d.start_min, min(d.start_min + d.minutes, 1440)):
                cold, hot, shower = self.minutes.get(m, (0, 0, False))
                self.minutes[m] = (cold + d.cold_ml_min, hot + d.hot_ml_min, shower or d.shower)


# --------------------------------------------------------------------------- dwelling


def _presence(hour: float, weekend: bool) -> float:
    """Share of the occupants at home and awake (0..1) at a local hour."""
    if hour < 6.5 or hour >= 23.0:
        return 0.3  # asleep: some body heat, no activity
    if weekend:
        return 0.8
    if 9.0 <= hour < 17.0:
        return 0.35
    return 0.9


def _solar_w(hour: float, day: int, peak_w: float) -> float:
    """Solar gains through the windows: a bell around 13:00, longer days in summer."""
    doy = day % 365.2425
    half_day_h = 6.0 + 2.0 * math.cos(2 * math.pi * (doy - 172) / 365.25)
    x = (hour - 13.0) / half_day_h
    if abs(x) >= 1:
        return 0.0
    return peak_w * math.cos(x * math.pi / 2) ** 2


class DwellingModel:
    """A flat: water draws, heating and indoor climate (see the module docstring).

    Args:
        seed: the farm seed.
        box: the box number (keys its random draws).
        climate: the outdoor temperature of the building.
        start: POSIX time at which the state starts.
    """

    counters = 3
    probe_kinds: tuple[str, ...] = ("temperature", "humidity")

    def __init__(self, *, seed: int, box: int, climate: OutdoorClimate, start: float) -> None:
        self.seed = seed
        self.box = box
        self.climate = climate
        rng = rng_for(seed, box, _KEY_PARAMS)
        self.occupants = rng.choices((1, 2, 3, 4, 5), weights=(30, 30, 20, 15, 5))[0]
        self.ua_w_k = rng.uniform(60.0, 110.0)
        self.capacity_j_k = self.ua_w_k * rng.uniform(20.0, 40.0) * 3600
        self.setpoint_c = round(rng.uniform(19.0, 21.5), 1)
        self.heater_max_w = 6000.0
        self.solar_peak_w = rng.uniform(150.0, 600.0)
        self._water_day = -1
        self._water = _WaterDay(())
        day = CALENDAR.day(start)
        heating = self.climate.daily_mean_c(day) < HEATING_LIMIT_C
        outdoor = self.climate.temperature_c(start)
        self.indoor_c = self.setpoint_c if heating else max(outdoor + 3.0, 18.0)
        self.humidity_pct = self._base_humidity(day)

    # -- per slot -----------------------------------------------------------------

    def _water_at(self, day: int, minute: int) -> tuple[int, int, bool]:
        if day != self._water_day:
            self._water = _WaterDay(
                water_plan(seed=self.seed, box=self.box, day=day, occupants=self.occupants)
            )
            self._water_day = day
        return self._water.minutes.get(minute, (0, 0, False))

    def _gains_w(self, hour: float, day: int) -> float:
        people = self.occupants * 80.0 * _presence(hour, _weekday(day) >= 5)
        return 150.0 + people + _solar_w(hour, day, self.solar_peak_w)

    def _setpoint(self, hour: float) -> float:
        return self.setpoint_c - (1.0 if hour >= 22.0 or hour < 6.0 else 0.0)

    def rates(self, slot: int) -> SlotRates:
        """Return the constant rates of ``slot``."""
        mid = slot * SLOT_S + SLOT_S / 2
        local = CALENDAR.local_seconds(mid)
        day = int(local // 86400)
        hour = (local % 86400) / 3600
        cold, hot, shower = self._water_at(day, int(hour * 60))
        outdoor = self.climate.temperature_c(mid)
        heat = 0.0
        heating = self.climate.daily_mean_c(day) < HEATING_LIMIT_C
        if heating:
            setpoint = self._setpoint(hour)
            demand = self.ua_w_k * (setpoint - outdoor) - self._gains_w(hour, day)
            heat = min(max(demand + 1500.0 * (setpoint - self.indoor_c), 0.0), self.heater_max_w)
        heat_mpm = round(heat * 1000 / 60)  # 1 pulse = 1 Wh
        return SlotRates(
            pulse_mpm=(cold, hot, heat_mpm),  # 1 pulse = 1 l: ml/min = milli-pulses/min
            outdoor_c=outdoor,
            heat_w=heat,
            heating=heating,
            shower=shower,
        )

    def end_slot(self, slot: int, rates: SlotRates) -> None:
        """Move the indoor temperature and humidity on by one slot."""
        mid = slot * SLOT_S + SLOT_S / 2
        local = CALENDAR.local_seconds(mid)
        day = int(local // 86400)
        hour = (local % 86400) / 3600
        outdoor = rates.outdoor_c
        ua = self.ua_w_k
        if self.indoor_c > 25.5 and outdoor < self.indoor_c:
            ua *= 3.0  # windows open
        balance = rates.heat_w + self._gains_w(hour, day) - ua * (self.indoor_c - outdoor)
        self.indoor_c += SLOT_S * balance / self.capacity_j_k
        target = self._base_humidity(day) + (35.0 if rates.shower else 0.0)
        tau_s = 300.0 if target > self.humidity_pct else 2400.0
        self.humidity_pct += (target - self.humidity_pct) * (1 - math.exp(-SLOT_S / tau_s))

    def _base_humidity(self, day: int) -> float:
        season = min(max((seasonal_mean_c(day) - 4.0) / 17.0, 0.0), 1.0)
        return 38.0 + 17.0 * season + 3.0 * (self.occupants - 2) / 3

    def probes(self) -> tuple[float, ...]:
        """Return (indoor temperature °C, humidity %RH)."""
        return (self.indoor_c, min(max(self.humidity_pct, 10.0), 99.0))

    def typical_daily_pulses(self, counter: int, day: int) -> int:
        """Return a typical day's pulses of ``counter`` (1 cold, 2 hot, 3 heat)."""
        if counter == 1:
            return 65 * self.occupants
        if counter == 2:
            return 45 * self.occupants
        if counter == 3:
            return int(self.ua_w_k * 24 * max(0.0, 17.0 - seasonal_mean_c(day)))
        return 0


# --------------------------------------------------------------------------- common areas


class CommonAreaModel:
    """The common areas of a building: boiler gas, lift, ventilation, three probes.

    ``flats`` is the number of dwellings the boiler heats.
    """

    counters = 1
    probe_kinds: tuple[str, ...] = ("temperature", "temperature", "temperature")

    def __init__(
        self,
        *,
        seed: int,
        box: int,
        climate: OutdoorClimate,
        start: float,
        flats: int = 40,
    ) -> None:
        self.seed = seed
        self.box = box
        self.climate = climate
        self.flats = max(flats, 1)
        rng = rng_for(seed, box, _KEY_PARAMS)
        self.building_ua_w_k = self.flats * rng.uniform(70.0, 95.0)
        self.boiler_max_w = self.building_ua_w_k * 30.0
        self.lift_w = rng.uniform(5500.0, 8000.0)
        self.ventilation_w = rng.uniform(300.0, 500.0)
        self.pumps_w = rng.uniform(450.0, 800.0)
        outdoor = self.climate.temperature_c(start)
        self.boiler_room_c = 26.0
        self.hall_c = 0.7 * 19.0 + 0.3 * outdoor
        self.outdoor_c = outdoor

    def _hot_water_w(self, hour: float) -> float:
        """Boiler power for the building's hot water: loop losses + morning/evening peaks."""
        peak = math.exp(-(((hour - 7.5) / 1.2) ** 2)) + 0.8 * math.exp(
            -(((hour - 20.0) / 1.5) ** 2)
        )
        return self.flats * (60.0 + 180.0 * peak)

    def _lift_trips(self, slot: int, hour: float) -> int:
        if hour < 6.0 or hour >= 23.5:
            rate = 0.05
        elif 7.0 <= hour < 9.0 or 17.0 <= hour < 20.0:
            rate = 1.2
        else:
            rate = 0.4
        return int(rate * self.flats / 40 + uniform(self.seed, self.box, _KEY_LIFT, slot))

    def rates(self, slot: int) -> SlotRates:
        """Return the constant rates of ``slot``."""
        mid = slot * SLOT_S + SLOT_S / 2
        local = CALENDAR.local_seconds(mid)
        day = int(local // 86400)
        hour = (local % 86400) / 3600
        outdoor = self.climate.temperature_c(mid)
        heating = self.climate.daily_mean_c(day) < HEATING_LIMIT_C
        demand = self.building_ua_w_k * max(0.0, 19.0 - outdoor) if heating else 0.0
        if hour >= 22.0 or hour < 5.0:
            demand *= 0.8  # night reduction
        boiler = min(demand + self._hot_water_w(hour), self.boiler_max_w) / 0.92
        gas_mpm = round(boiler / 60 / _GAS_WH_PER_PULSE * 1000)
        trips = self._lift_trips(slot, hour)
        lift_w = 180 + round(trips * self.lift_w * 25 / 60)
        lift_va = round(lift_w / (0.8 if trips else 0.6))
        noise = uniform(self.seed, self.box, _KEY_NOISE, slot) - 0.5
        fans_w = round(self.ventilation_w * (1 + 0.05 * noise) + (self.pumps_w if heating else 0))
        fans_va = round(fans_w / 0.85)
        return SlotRates(
            pulse_mpm=(gas_mpm,),
            clamp_w=(lift_w, fans_w),
            clamp_va=(lift_va, fans_va),
            outdoor_c=outdoor,
            heat_w=boiler,
            heating=heating,
        )

    def end_slot(self, slot: int, rates: SlotRates) -> None:
        """Move the boiler-room and hall temperatures on by one slot."""
        load = rates.heat_w / self.boiler_max_w if self.boiler_max_w else 0.0
        room_target = 20.0 + 12.0 * min(load, 1.0)
        self.boiler_room_c += (room_target - self.boiler_room_c) * (1 - math.exp(-SLOT_S / 3600))
        outdoor = rates.outdoor_c
        hall_target = 0.7 * 19.0 + 0.3 * outdoor if rates.heating else outdoor + 3.0
        self.hall_c += (hall_target - self.hall_c) * (1 - math.exp(-SLOT_S / 14400))
        self.outdoor_c = rates.outdoor_c

    def probes(self) -> tuple[float, ...]:
        """Return (boiler room, entrance hall, outdoor) temperatures in °C."""
        return (self.boiler_room_c, self.hall_c, self.outdoor_c)

    def typical_daily_pulses(self, counter: int, day: int) -> int:
        """Return a typical day's gas pulses (10 l each)."""
        if counter != 1:
            return 0
        heat_wh = self.building_ua_w_k * max(0.0, 19.0 - seasonal_mean_c(day)) * 24
        return int((heat_wh + self.flats * 3000) / 0.92 / _GAS_WH_PER_PULSE)
