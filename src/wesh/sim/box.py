"""One simulated WES box: identity, integration of its channels, commands and fault events.

Pure logic: no I/O, no wall clock. The box only moves when told the simulated time
(:meth:`SimulatedBox.advance_to`); it integrates, slot by slot, the rates given by its
consumption model (:mod:`wesh.sim.consumption`) into pulse counters and clamp indexes,
with integer arithmetic::

    counter accumulator  += milli-pulses/min * seconds      a pulse every 60 000
    clamp accumulator    += W * seconds (J)                 a Wh every 3 600

so counters only grow (until a reset, a reboot that loses them, or a meter
replacement). The TIC meter integrates itself (:mod:`wesh.sim.electricity`).

Faults that change what the box measures (set by :mod:`wesh.sim.device`)::

    leak     a constant extra flow on a counter, day and night (:meth:`set_leaks`)
    burst    an extra volume spread evenly over the next hour (:meth:`add_burst`)
    probes   probes that read a fixed value (:attr:`probe_overrides`)
    overload TIC inputs whose meter reports IINST above ISOUSC (:attr:`overloaded`)

Extra flows are integrated apart from the model's, exactly, in ml·s/h::

    extra residue += ml/h * seconds * pulses per unit     a pulse every 3600 * ml per unit

so a leak of L l/h on a 1 pulse/l counter adds exactly L pulses per hour.

Layout of a farm (:func:`make_identity`): boxes are grouped by building of
``flats + 1`` boxes; position 0 of a building is its common-areas box, positions
1..flats are dwellings.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from wesh.errors import UsageError
from wesh.sim.clock import CALENDAR, PARIS
from wesh.sim.consumption import (
    SLOT_S,
    CommonAreaModel,
    ConsumptionModel,
    DwellingModel,
    SlotRates,
)
from wesh.sim.electricity import ElectricityModel, SimulatedMeter, Tariff, TicReading
from wesh.sim.model import (
    BoxIdentity,
    BoxKind,
    BoxState,
    ClampState,
    CounterConfig,
    CounterState,
    Firmware,
    Hardware,
    TicState,
)
from wesh.sim.rng import mix, rng_for
from wesh.sim.weather import OutdoorClimate

__all__ = ["DEFAULT_FLATS", "SimulatedBox", "make_identity"]

DEFAULT_FLATS = 40
_TIC_INPUTS = 3
_RELAYS = 2
_INPUTS = 2
_VARIABLES = 8
_MILLI_PER_PULSE_MIN = 60_000  # milli-pulses/min * s → pulses
_J_PER_WH = 3600
_KEY_INDEX = 0x1DE7
_KEY_METER = 0x3E7E
_S_PER_H = 3600
_BURST_S = 3600
_ML_PER_UNIT = {"l": 1000, "m3": 1_000_000}  # other units: the value counts as litres
_OVERLOAD_MIN_EXCESS_A = 5

_DWELLING_COUNTERS = (
    CounterConfig("Eau froide", "l", 1),
    CounterConfig("Eau chaude", "l", 1),
    CounterConfig("Chaleur", "Wh", 1),
)
_COMMON_COUNTERS = (CounterConfig("Gaz", "m3", 100),)
_UNUSED_COUNTER = CounterConfig("", "l", 1)
_COMMON_CLAMPS = ("Ascenseur", "Ventilation")


def make_identity(
    index: int,
    *,
    seed: int = 0,
    flats: int = DEFAULT_FLATS,
    firmware: Firmware = Firmware.V084A10,
    hardware: Hardware = Hardware.V2,
    kind: BoxKind | None = None,
) -> BoxIdentity:
    """Return the identity of box ``index`` of a farm (see the module docstring).

    ``kind`` overrides the layout. The MAC (``02`` locally administered prefix) and the
    ADCO are unique within a farm: they embed the box index.
    """
    if index < 0:
        raise UsageError(f"box index must be >= 0, not {index}")
    if flats < 1:
        raise UsageError(f"a building has at least one flat, not {flats}")
    building, position = divmod(index, flats + 1)
    if kind is None:
        kind = BoxKind.COMMON if position == 0 else BoxKind.DWELLING
    tail = (mix(seed, 0xAC) + index) & 0xFFFFFF
    mac = f"02{(mix(seed, 0xAD) >> 48) & 0xFFFF:04X}{tail:06X}"
    adco_kind = 63 if kind is BoxKind.COMMON else 62
    adco = f"{(seed % 90) + 1:02d}{18 + index % 7:02d}{adco_kind}{index % 1_000_000:06d}"
    name = f"B{building + 1:03d}-" + ("PC" if kind is BoxKind.COMMON else f"L{position:02d}")
    return BoxIdentity(
        index=index,
        seed=seed,
        kind=kind,
        building=building,
        position=position,
        firmware=firmware,
        hardware=hardware,
        mac=mac,
        adco=adco,
        name=name,
    )


@dataclass(slots=True)
class _Counter:
    """Mutable state of one pulse counter."""

    config: CounterConfig
    pulses: int = 0
    residue: int = 0  # milli-pulses/min * s not yet a whole pulse
    day_start: int = 0
    yesterday: int = 0
    month_start: int = 0
    year_start: int = 0
    leak_ml_h: int = 0  # a constant extra flow (leak fault)
    bursts: list[tuple[int, int]] = field(default_factory=list)  # (ml/h, until POSIX s)
    extra_residue: int = 0  # ml/h * s * pulses per unit, not yet a whole pulse

    def reset(self) -> None:
        self.pulses = self.residue = self.day_start = self.month_start = self.year_start = 0
        self.extra_residue = 0

    @property
    def has_extra(self) -> bool:
        return bool(self.leak_ml_h or self.bursts)

    @property
    def pulse_step(self) -> int:
        """Extra residue worth one pulse."""
        return _S_PER_H * _ML_PER_UNIT.get(self.config.unit.lower(), 1000)

    def extra_ml_h(self, t: int) -> int:
        """Return the extra flow at POSIX time ``t`` (ml/h)."""
        return self.leak_ml_h + sum(ml_h for ml_h, until in self.bursts if t < until)

    def integrate_extra(self, start: int, end: int) -> None:
        """Add the extra flows of ``[start, end)`` (exact integer arithmetic)."""
        ml_s = self.leak_ml_h * (end - start)
        for ml_h, until in self.bursts:
            ml_s += ml_h * max(0, min(end, until) - start)
        self.extra_residue += ml_s * self.config.pulses_per_unit
        step = self.pulse_step
        if self.extra_residue >= step:
            whole, self.extra_residue = divmod(self.extra_residue, step)
            self.pulses += whole
        if self.bursts:
            self.bursts = [(ml_h, until) for ml_h, until in self.bursts if until > end]


@dataclass(slots=True)
class _Clamp:
    """Mutable state of one clamp."""

    name: str
    index_wh: int = 0
    residue_j: int = 0


class SimulatedBox:
    """A WES box: its channels integrated over simulated time, its relays and switches.

    Args:
        identity: who the box is (:func:`make_identity`).
        start: POSIX time where its state starts.
        meter: the electricity meter on TIC1 (default: a :class:`SimulatedMeter`, HC
            for a dwelling, three-phase BASE for the common areas).
        flats: flats heated by the building's boiler (common-areas box).
    """

    def __init__(
        self,
        identity: BoxIdentity,
        *,
        start: float,
        meter: ElectricityModel | None = None,
        flats: int = DEFAULT_FLATS,
    ) -> None:
        self.identity = identity
        seed, index = identity.seed, identity.index
        self._t = int(start)
        climate = OutdoorClimate(seed=seed, building=identity.building)
        common = identity.kind is BoxKind.COMMON
        self._model: ConsumptionModel = (
            CommonAreaModel(seed=seed, box=index, climate=climate, start=start, flats=flats)
            if common
            else DwellingModel(seed=seed, box=index, climate=climate, start=start)
        )
        self._meter: ElectricityModel = meter or SimulatedMeter(
            start=start,
            seed=mix(seed, index, _KEY_METER) & 0xFFFFFFFF,
            identity=identity.adco,
            phases=3 if common else 1,
            tariff=Tariff.BASE if common else Tariff.HC,
        )
        self._meter_generation = 0
        hardware = identity.hardware
        configs = _COMMON_COUNTERS if common else _DWELLING_COUNTERS
        self._counters = [
            _Counter(configs[i] if i < len(configs) else _UNUSED_COUNTER)
            for i in range(hardware.pulse_counters)
        ]
        clamp_names = _COMMON_CLAMPS if common else ()
        self._clamps = [
            _Clamp(clamp_names[i] if i < len(clamp_names) else "") for i in range(hardware.clamps)
        ]
        self._clamp_count = len(clamp_names)
        self._voltage_v = 230 if common else 0
        self._relays = [False] * _RELAYS
        self._inputs = [False] * _INPUTS
        self._analog_v = [0.0] * hardware.analog_inputs
        self._switches = [False] * (8 if identity.firmware is Firmware.V083H else 24)
        self._variables = [0.0] * _VARIABLES
        self._alarm = False
        self._skew_s = 0.0
        self._unplugged: frozenset[int] = frozenset()
        self._overloaded: frozenset[int] = frozenset()
        self._probe_overrides: Mapping[int, float] = MappingProxyType({})
        self._extra = False  # some counter has a leak or a burst
        self.booted_at = self._t
        self.version = 0
        self._rates: tuple[int, SlotRates] | None = None
        self._sampler: Callable[[BoxState], None] | None = None
        self._sample_every_s = 0
        self._day = CALENDAR.day(self._t)
        self._seed_indexes(start)

    # -- set-up ---------------------------------------------------------------------

    def _seed_indexes(self, start: float) -> None:
        """Give counters and clamps plausible indexes and day/month/year totals."""
        rng = rng_for(self.identity.seed, self.identity.index, _KEY_INDEX)
        local = datetime.fromtimestamp(start, tz=PARIS)
        day_fraction = CALENDAR.second_of_day(start) / 86400
        for number, counter in enumerate(self._counters, start=1):
            typical = self._model.typical_daily_pulses(number, self._day)
            if not counter.config.name:
                continue
            counter.pulses = typical * rng.randint(365, 8 * 365)
            today = int(typical * day_fraction * rng.uniform(0.6, 1.4))
            counter.day_start = counter.pulses - today
            counter.yesterday = int(typical * rng.uniform(0.7, 1.3))
            counter.month_start = counter.day_start - typical * (local.day - 1)
            counter.year_start = counter.day_start - typical * (local.timetuple().tm_yday - 1)
        for number, clamp in enumerate(self._clamps, start=1):
            if number <= self._clamp_count:
                clamp.index_wh = rng.randint(500_000, 40_000_000)

    def set_sampler(self, sampler: Callable[[BoxState], None] | None, *, every_s: int) -> None:
        """Call ``sampler`` with the state at each multiple of ``every_s`` crossed by time.

        ``every_s`` must be a multiple of 60 (the integration slot).
        """
        if sampler is not None and (every_s <= 0 or every_s % SLOT_S):
            raise UsageError(f"sampling period must be a positive multiple of {SLOT_S} s")
        self._sampler = sampler
        self._sample_every_s = every_s

    # -- time -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated POSIX time the state corresponds to."""
        return float(self._t)

    @property
    def skew_s(self) -> float:
        """How far the box's clock is from the true (simulated) time, in seconds."""
        return self._skew_s

    @skew_s.setter
    def skew_s(self, seconds: float) -> None:
        self._skew_s = float(seconds)
        self.version += 1

    @property
    def unplugged(self) -> frozenset[int]:
        """TIC inputs whose meter is not read (``Pas Dispo``)."""
        return self._unplugged

    @unplugged.setter
    def unplugged(self, inputs: Collection[int]) -> None:
        self._unplugged = frozenset(inputs)
        self.version += 1

    @property
    def overloaded(self) -> frozenset[int]:
        """TIC inputs whose meter reports an overload (IINST above ISOUSC)."""
        return self._overloaded

    @overloaded.setter
    def overloaded(self, inputs: Collection[int]) -> None:
        self._overloaded = frozenset(inputs)
        self.version += 1

    @property
    def probe_kinds(self) -> tuple[str, ...]:
        """What each 1-Wire probe measures: ``"temperature"`` or ``"humidity"``."""
        return self._model.probe_kinds

    @property
    def probe_overrides(self) -> Mapping[int, float]:
        """Probes (by number) that read a fixed value instead of the model's."""
        return self._probe_overrides

    @probe_overrides.setter
    def probe_overrides(self, values: Mapping[int, float]) -> None:
        self._probe_overrides = MappingProxyType(dict(values))
        self.version += 1

    def set_leaks(self, leaks: Mapping[int, float]) -> None:
        """Set the constant extra flow of each pulse counter (number → litres/hour).

        Counters not named have no leak. Call :meth:`advance_to` the current time first:
        the new flows count from the box's time on. Unknown counters are ignored.
        """
        for number, counter in enumerate(self._counters, start=1):
            counter.leak_ml_h = round(max(leaks.get(number, 0.0), 0.0) * 1000)
        self._extra = any(c.has_extra for c in self._counters)
        self.version += 1

    def add_burst(self, number: int, litres: float) -> None:
        """Add ``litres`` on pulse counter ``number``, spread evenly over the next hour."""
        counter = self._counters[self._check("pulse counter", number, len(self._counters))]
        counter.bursts.append((round(litres * 1000 * _S_PER_H / _BURST_S), self._t + _BURST_S))
        self._extra = True

    def _slot_rates(self, slot: int) -> SlotRates:
        cached = self._rates
        if cached is not None and cached[0] == slot:
            return cached[1]
        rates = self._model.rates(slot)
        self._rates = (slot, rates)
        return rates

    def advance_to(self, ts: float) -> None:
        """Integrate every channel up to POSIX time ``ts`` (earlier times are ignored)."""
        target = int(ts)
        if target <= self._t:
            return
        self.version += 1
        counters, clamps = self._counters, self._clamps[: self._clamp_count]
        while self._t < target:
            slot = self._t // SLOT_S
            slot_end = (slot + 1) * SLOT_S
            end = min(target, slot_end)
            rates = self._slot_rates(slot)
            dt = end - self._t
            for counter, mpm in zip(counters, rates.pulse_mpm, strict=False):
                counter.residue += mpm * dt
                if counter.residue >= _MILLI_PER_PULSE_MIN:
                    whole, counter.residue = divmod(counter.residue, _MILLI_PER_PULSE_MIN)
                    counter.pulses += whole
            if self._extra:
                for counter in counters:
                    if counter.has_extra:
                        counter.integrate_extra(self._t, end)
            for clamp, watts in zip(clamps, rates.clamp_w, strict=False):
                clamp.residue_j += watts * dt
                if clamp.residue_j >= _J_PER_WH:
                    whole, clamp.residue_j = divmod(clamp.residue_j, _J_PER_WH)
                    clamp.index_wh += whole
            self._t = end
            if end == slot_end:
                self._model.end_slot(slot, rates)
                day = CALENDAR.day(end)
                if day != self._day:
                    self._roll_day(end)
                    self._day = day
                if self._sampler is not None and end % self._sample_every_s == 0:
                    self._meter.advance_to(end)
                    self._sampler(self.state())
        if self._extra:
            self._extra = any(c.has_extra for c in counters)
        self._meter.advance_to(target)

    def _roll_day(self, ts: float) -> None:
        local = datetime.fromtimestamp(ts, tz=PARIS)
        for counter in self._counters:
            counter.yesterday = counter.pulses - counter.day_start
            counter.day_start = counter.pulses
            if local.day == 1:
                counter.month_start = counter.pulses
                if local.month == 1:
                    counter.year_start = counter.pulses

    # -- snapshot -------------------------------------------------------------------

    def state(self, *, skew_s: float | None = None, unplugged: Collection[int] = ()) -> BoxState:
        """Return what the box measures now (call :meth:`advance_to` first).

        ``skew_s`` replaces the box's clock offset, and ``unplugged`` adds TIC inputs
        read as absent, for this snapshot only (per-request faults).
        """
        rates = self._slot_rates(self._t // SLOT_S)
        skew = self._skew_s if skew_s is None else skew_s
        absent = self._unplugged.union(unplugged)
        reading = None if 1 in absent else self._meter.reading()
        if reading is not None:
            overloaded = 1 in self._overloaded
            reading = _overloaded(reading) if overloaded else _within_subscription(reading)
        tics = (TicState(1, reading), *(TicState(n, None) for n in range(2, _TIC_INPUTS + 1)))
        counters = tuple(
            CounterState(
                number=n,
                config=c.config,
                index_pulses=c.pulses,
                pulses_today=c.pulses - c.day_start,
                pulses_yesterday=c.yesterday,
                pulses_month=c.pulses - c.month_start,
                pulses_year=c.pulses - c.year_start,
                flow=(rates.pulse_mpm[n - 1] if n <= len(rates.pulse_mpm) else 0)
                / 1000
                / c.config.pulses_per_unit
                + (c.extra_ml_h(self._t) * 60 / c.pulse_step if c.has_extra else 0.0),
            )
            for n, c in enumerate(self._counters, start=1)
        )
        volts = self._voltage_v or 230
        clamps = []
        for n, clamp in enumerate(self._clamps, start=1):
            enabled = n <= self._clamp_count
            va = rates.clamp_va[n - 1] if enabled and n <= len(rates.clamp_va) else 0
            watts = rates.clamp_w[n - 1] if enabled and n <= len(rates.clamp_w) else 0
            clamps.append(
                ClampState(
                    number=n,
                    name=clamp.name,
                    enabled=enabled,
                    current_a=round(va / volts, 2),
                    power_va=va,
                    power_w=watts,
                    index_wh=clamp.index_wh,
                )
            )
        probes = {n: round(v, 1) for n, v in enumerate(self._model.probes(), start=1)}
        for number, value in self._probe_overrides.items():
            if number in probes:
                probes[number] = round(value, 1)
        sim_time = datetime.fromtimestamp(self._t, tz=UTC)
        return BoxState(
            identity=self.identity,
            sim_time=sim_time,
            box_time=(sim_time + timedelta(seconds=skew)).astimezone(PARIS),
            tics=tics,
            counters=counters,
            clamps=tuple(clamps),
            voltage_v=self._voltage_v,
            probes=MappingProxyType(probes),
            relays=tuple(self._relays),
            inputs=tuple(self._inputs),
            analog_v=tuple(self._analog_v),
            switches=tuple(self._switches),
            variables=tuple(self._variables),
            alarm=self._alarm,
            spaceleft_gb=3.712,
            booted_at=datetime.fromtimestamp(self.booted_at, tz=UTC),
        )

    # -- commands -------------------------------------------------------------------

    def _check(self, what: str, number: int, count: int) -> int:
        if isinstance(number, bool) or not 1 <= number <= count:
            raise UsageError(f"no {what} {number} on this box (1..{count})")
        self.version += 1
        return number - 1

    def set_relay(self, number: int, on: bool) -> None:
        """Switch relay ``number`` (1, 2; 9 = both) on or off."""
        if number == 9:
            self._relays = [on] * _RELAYS
            self.version += 1
            return
        self._relays[self._check("relay", number, _RELAYS)] = on

    def toggle_relay(self, number: int) -> None:
        """Toggle relay ``number`` (1, 2; 9 = both)."""
        if number == 9:
            self._relays = [not r for r in self._relays]
            self.version += 1
            return
        i = self._check("relay", number, _RELAYS)
        self._relays[i] = not self._relays[i]

    def set_switch(self, number: int, on: bool) -> None:
        """Set virtual switch ``number``."""
        self._switches[self._check("virtual switch", number, len(self._switches))] = on

    def toggle_switch(self, number: int) -> None:
        """Toggle virtual switch ``number``."""
        i = self._check("virtual switch", number, len(self._switches))
        self._switches[i] = not self._switches[i]

    def set_variable(self, number: int, value: float) -> None:
        """Set variable ``number`` (1..8)."""
        self._variables[self._check("variable", number, _VARIABLES)] = float(value)

    def set_input(self, number: int, on: bool) -> None:
        """Set the state of digital input ``number`` (what is wired to it)."""
        self._inputs[self._check("input", number, _INPUTS)] = on

    def set_analog(self, number: int, volts: float) -> None:
        """Set the voltage on analog input ``number`` (WES V2 only)."""
        self._analog_v[self._check("analog input", number, len(self._analog_v))] = float(volts)

    def set_alarm(self, on: bool) -> None:
        """Set the alarm state (LCD-screen option)."""
        self._alarm = on
        self.version += 1

    # -- events (commands and faults) -----------------------------------------------

    def reset_counter(self, number: int | None = None) -> None:
        """Reset pulse counter ``number`` (all when ``None``) to zero."""
        self.version += 1
        if number is None:
            for counter in self._counters:
                counter.reset()
            return
        self._counters[self._check("pulse counter", number, len(self._counters))].reset()

    def reset_clamp(self, number: int | None = None) -> None:
        """Reset the energy index of clamp ``number`` (all when ``None``) to zero."""
        self.version += 1
        targets = (
            self._clamps
            if number is None
            else [self._clamps[self._check("clamp", number, len(self._clamps))]]
        )
        for clamp in targets:
            clamp.index_wh = clamp.residue_j = 0

    def replace_meter(self) -> str:
        """Replace the meter on TIC1: a new ADCO, indexes from zero. Return the new ADCO."""
        self.version += 1
        self._meter_generation += 1
        base = int(self.identity.adco[-6:])
        adco = f"{self.identity.adco[:6]}{(base + 500_000 * self._meter_generation) % 10**6:06d}"
        self._meter.replace(adco=adco)
        return adco

    def reboot(self, *, keep_counters: bool = True) -> None:
        """Restart the box: relays and switches off; pulse and clamp indexes lost if asked."""
        self.version += 1
        self.booted_at = self._t
        self._relays = [False] * _RELAYS
        self._switches = [False] * len(self._switches)
        self._variables = [0.0] * _VARIABLES
        self._alarm = False
        if not keep_counters:
            self.reset_counter()
            self.reset_clamp()


def _within_subscription(reading: TicReading) -> TicReading:
    """Return ``reading`` with no phase above ISOUSC (and PAPP within 230 V x ISOUSC).

    The meter model lets the load exceed the subscription for a minute now and then (a
    few minutes per dwelling-week); a real breaker would tolerate it, but an overload
    alarm nobody asked for would spoil a scenario: only the ``overload`` fault makes one.
    """
    isousc = reading.isousc_a
    if isousc <= 0 or max(reading.iinst_a, default=0) <= isousc:
        return reading
    currents = tuple(min(i, isousc) for i in reading.iinst_a)
    power_va = min(reading.power_va, 230 * isousc * len(currents))
    return replace(reading, iinst_a=currents, power_va=power_va)


def _overloaded(reading: TicReading) -> TicReading:
    """Return ``reading`` with phase 1 drawing more than the subscribed current.

    IINST1 becomes at least ISOUSC + max(5 A, 20 %); PAPP follows (230 V per ampere).
    This is what a historique meter signals with ADPS (or ADIR1 on three phases).
    """
    isousc = reading.isousc_a
    floor_a = isousc + max(_OVERLOAD_MIN_EXCESS_A, isousc // 5)
    currents = (max(reading.iinst_a[0], floor_a), *reading.iinst_a[1:])
    power_va = max(reading.power_va, 230 * sum(currents))
    return replace(reading, iinst_a=currents, power_va=power_va)
