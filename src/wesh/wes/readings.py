"""Normalised readings: one dotted path, one value, one unit, two timestamps.

A :class:`~wesh.wes.model.WesSnapshot` flattens into a list of :class:`Reading`; this is
what the gateway stores and forwards. Paths are lower-case, dotted and stable; the full
catalogue is in ``docs/wes.md`` ("Reading paths"). In short::

    tic.<n>.available            state  bool      (the only tic reading of an absent meter)
    tic.<n>.index.<name>         index  Wh        base, hchc, hchp, ejphn, bbrhcjb, injection...
    tic.<n>.power_va             gauge  VA
    tic.<n>.injected_power_va    gauge  VA
    tic.<n>.current.<phase>      gauge  A         phase 1 only on a single-phase meter
    tic.<n>.voltage.<phase>      gauge  V
    tic.<n>.imax.<phase>         gauge  A
    tic.<n>.isousc               gauge  A
    tic.<n>.pejp                 gauge  None
    tic.<n>.period / period_code / tomorrow / tomorrow_code / adco / optarif      text
    impulsion.<n>.index          index  L (l, m3) | Wh (Wh, kWh) | counter unit
    impulsion.<n>.pulses_today   gauge  None
    impulsion.<n>.flow           gauge  None (counter unit per minute)
    impulsion.<n>.consumption.<day|yesterday|month|year>   gauge  L | Wh | as printed
    impulsion.<n>.cost.<day|month|year>                    gauge  EUR
    pince.<n>.current            gauge  A
    pince.<n>.index              index  Wh
    pince.<n>.injection          index  Wh
    pince.<n>.power_va / power_w gauge  VA / W
    pince.<n>.cos_phi            gauge  None
    pince.<n>.voltage            gauge  V         the box's mains voltage, shown per clamp
    temp.<n>                     gauge  °C
    relais.<n>, relais1w.<id>, entree.<n>, switch.<n>      state  bool
    analogique.<n>               gauge  V
    variable.<n>                 gauge  None
    box.firmware                 text
    box.alarm                    state  bool
    box.spaceleft                gauge  GB

A reading is emitted only when its value is known (not ``None``). A tariff index that reads
0 Wh is emitted only when it belongs to the meter's tariff option (an old stock page prints
every index, zeros included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from wesh.errors import UsageError

if TYPE_CHECKING:
    from wesh.wes.model import PulseCounter, Quantity, TicMeter, WesSnapshot

__all__ = ["Reading", "ReadingKind", "normalise_quantity", "snapshot_readings"]

ReadingKind = Literal["index", "gauge", "state", "text"]
Value = float | int | str | bool | None

#: unit as printed or configured (lower-cased) → (factor, normalised unit)
_UNIT_NORMALISATION: dict[str, tuple[int, str]] = {
    "l": (1, "L"),
    "litre": (1, "L"),
    "litres": (1, "L"),
    "m3": (1000, "L"),
    "m³": (1000, "L"),
    "wh": (1, "Wh"),
    "kwh": (1000, "Wh"),
}

#: tariff option (normalised OPTARIF) → the indexes that belong to it
_OPTION_INDEXES: dict[str, frozenset[str]] = {
    "BASE": frozenset({"base"}),
    "HC": frozenset({"hchc", "hchp"}),
    "EJP": frozenset({"ejphn", "ejphpm"}),
    "BBR": frozenset({"bbrhcjb", "bbrhpjb", "bbrhcjw", "bbrhpjw", "bbrhcjr", "bbrhpjr"}),
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One normalised value of one channel of one box.

    ``box_time`` is the box's own clock (minute resolution, may drift), ``poll_time`` the
    collector's clock when the page was fetched. ``kind`` says how to aggregate: ``index``
    (monotonic counter: take differences), ``gauge`` (instantaneous: average), ``state``
    (boolean), ``text``.
    """

    path: str
    value: Value
    unit: str | None
    box_time: datetime | None
    poll_time: datetime
    kind: ReadingKind


def normalise_quantity(value: float, unit: str | None) -> tuple[float, str | None]:
    """Convert a volume or an energy to base units: litres (``L``) or Wh.

    ``m3`` → 1000 ``L``, ``kWh`` → 1000 ``Wh``; other units (or ``None``) pass through.
    """
    if unit is None:
        return value, None
    rule = _UNIT_NORMALISATION.get(unit.strip().lower())
    if rule is None:
        return value, unit
    factor, base = rule
    return (value * factor if factor != 1 else value), base


def _relevant_indexes(optarif: str | None) -> frozenset[str]:
    if not optarif:
        return frozenset()
    for prefix, names in _OPTION_INDEXES.items():
        if optarif.upper().startswith(prefix):
            return names
    return frozenset()


class _Out:
    """Accumulates readings sharing one pair of timestamps."""

    def __init__(self, box_time: datetime | None, poll_time: datetime) -> None:
        self.items: list[Reading] = []
        self.box_time = box_time
        self.poll_time = poll_time

    def add(self, path: str, value: Value, unit: str | None, kind: ReadingKind) -> None:
        if value is None:
            return
        self.items.append(Reading(path, value, unit, self.box_time, self.poll_time, kind))


def _tic(out: _Out, meter: TicMeter) -> None:
    base = f"tic.{meter.number}"
    out.add(f"{base}.available", meter.available, None, "state")
    if not meter.available:
        return
    relevant = _relevant_indexes(meter.optarif)
    for name, wh in meter.indexes_wh.items():
        if wh != 0 or name in relevant:
            out.add(f"{base}.index.{name}", wh, "Wh", "index")
    out.add(f"{base}.power_va", meter.apparent_power_va, "VA", "gauge")
    out.add(f"{base}.injected_power_va", meter.injected_power_va, "VA", "gauge")
    for family, values, unit in (
        ("current", meter.currents_a, "A"),
        ("voltage", meter.voltages_v, "V"),
        ("imax", meter.imax_a, "A"),
    ):
        for phase, value in enumerate(values, start=1):
            out.add(f"{base}.{family}.{phase}", value, unit, "gauge")
    out.add(f"{base}.isousc", meter.isousc_a, "A", "gauge")
    out.add(f"{base}.pejp", meter.pejp, None, "gauge")
    out.add(f"{base}.producer", meter.producer, None, "state")
    for name in ("period", "period_code", "tomorrow", "tomorrow_code", "adco", "optarif"):
        out.add(f"{base}.{name}", getattr(meter, name), None, "text")


def _quantity(out: _Out, path: str, quantity: Quantity | None, unit: str | None) -> None:
    if quantity is None:
        return
    value, norm_unit = normalise_quantity(quantity.value, quantity.unit or unit)
    out.add(path, value, norm_unit, "gauge")


def _pulse(out: _Out, counter: PulseCounter, configured_unit: str | None) -> None:
    base = f"impulsion.{counter.number}"
    unit = counter.index_unit or configured_unit
    if counter.index is not None:
        value, norm_unit = normalise_quantity(counter.index, unit)
        out.add(f"{base}.index", value, norm_unit, "index")
    out.add(f"{base}.pulses_today", counter.pulses_today, None, "gauge")
    out.add(f"{base}.flow", counter.flow, None, "gauge")
    for period in ("day", "yesterday", "month", "year"):
        quantity = getattr(counter, f"consumption_{period}")
        _quantity(out, f"{base}.consumption.{period}", quantity, unit)
    for period in ("day", "month", "year"):
        out.add(f"{base}.cost.{period}", getattr(counter, f"cost_{period}_eur"), "EUR", "gauge")


def snapshot_readings(
    snapshot: WesSnapshot,
    *,
    poll_time: datetime,
    pulse_units: Mapping[int, str] | None = None,
) -> list[Reading]:
    """Flatten a snapshot into readings (the implementation of ``WesSnapshot.readings``).

    Raises:
        UsageError: ``poll_time`` is naive.
    """
    if poll_time.tzinfo is None or poll_time.utcoffset() is None:
        raise UsageError("poll_time must be timezone-aware", where="poll_time")
    out = _Out(snapshot.info.box_time, poll_time)
    info = snapshot.info
    out.add("box.firmware", info.firmware, None, "text")
    out.add("box.alarm", info.alarm, None, "state")
    out.add("box.spaceleft", info.spaceleft_gb, "GB", "gauge")
    for meter in snapshot.tic:
        _tic(out, meter)
    units = pulse_units or {}
    for counter in snapshot.pulses:
        _pulse(out, counter, units.get(counter.number))
    for clamp in snapshot.clamps:
        base = f"pince.{clamp.number}"
        out.add(f"{base}.current", clamp.current_a, "A", "gauge")
        out.add(f"{base}.index", clamp.index_wh, "Wh", "index")
        out.add(f"{base}.injection", clamp.inject_wh, "Wh", "index")
        out.add(f"{base}.power_va", clamp.power_va, "VA", "gauge")
        out.add(f"{base}.power_w", clamp.power_w, "W", "gauge")
        out.add(f"{base}.cos_phi", clamp.cos_phi, None, "gauge")
        out.add(f"{base}.voltage", snapshot.voltage_v, "V", "gauge")
    for number, celsius in sorted(snapshot.temperatures.items()):
        out.add(f"temp.{number}", celsius, "°C", "gauge")
    families: tuple[
        tuple[str, Mapping[int, bool] | Mapping[int, float], str | None, ReadingKind], ...
    ] = (
        ("relais", snapshot.relays, None, "state"),
        ("relais1w", snapshot.relays_1w, None, "state"),
        ("entree", snapshot.inputs, None, "state"),
        ("analogique", snapshot.analog_v, "V", "gauge"),
        ("switch", snapshot.switches, None, "state"),
        ("variable", snapshot.variables, None, "gauge"),
    )
    for prefix, mapping, unit, kind in families:
        for number, value in sorted(mapping.items()):
            out.add(f"{prefix}.{number}", value, unit, kind)
    return out.items
