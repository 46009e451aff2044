"""What a meter says: a decoded frame summarised as one :class:`MeterReading`.

:func:`read_frame` decodes every valid group of a :class:`~wesh.tic.model.Frame` with
:func:`~wesh.tic.values.decode_value` and answers the questions a utility engineer asks
(which meter, which tariff, how much energy, how much power now, one or three phases,
producer, overload) without knowing the labels of each mode. It never raises: a value
that fails to decode is left out, the derived fields become ``None``, and the reason is
both appended to ``warnings`` and logged.

Three-phase historique meters interleave *short frames* (``ADIR1..3`` for the phases
above their setting, ``ADCO``, ``IINST1..3``) with long frames while an overload lasts
and for one minute after [02E §2.5.4]. :class:`MeterState` merges successive frames: a
short frame updates currents and overload warnings and keeps the indexes of the last
long frame; a frame cut short (EOT) or a group lost to a bad checksum keeps the
previous value of what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from wesh.errors import DecodeError
from wesh.tic.horodate import Horodate
from wesh.tic.labels import Kind, LabelInfo, Unit, catalogue, lookup
from wesh.tic.model import Frame, Mode
from wesh.tic.values import (
    MeterIdentity,
    Relays,
    StatusRegister,
    TariffOption,
    TariffPeriod,
    TempoColour,
    TicText,
    TicValue,
    decode_value,
)

__all__ = ["SHORT_FRAME_LABELS", "MeterReading", "MeterState", "read_frame"]

_LOG = logging.getLogger(__name__)

SHORT_FRAME_LABELS = frozenset({"ADIR1", "ADIR2", "ADIR3", "ADCO", "IINST1", "IINST2", "IINST3"})
"""Labels a historique three-phase short frame may contain [02E Table 5]."""

_ADIR = frozenset({"ADIR1", "ADIR2", "ADIR3"})
_PHASE_CURRENTS = ("IINST1", "IINST2", "IINST3")

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One frame (or the merge of successive frames) in plain terms.

    Energies are ``int`` Wh (``indexes_wh`` maps each active-energy register present to
    its value; ``total_index_wh`` is BASE or EAST, else the sum of the option's
    registers). Currents and voltages are per phase (one entry on a single-phase
    meter, three on a three-phase one; ``None`` for a phase not received). Every
    decoded group is in ``values``, keyed by label.
    """

    mode: Mode | None
    complete: bool
    identity: MeterIdentity | None
    tariff_option: TariffOption | None
    tariff_period: TariffPeriod | str | None
    tariff_index: int | None
    tempo_tomorrow: TempoColour | None
    indexes_wh: Mapping[str, int] = field(hash=False)
    reactive_indexes_varh: Mapping[str, int] = field(hash=False)
    total_index_wh: int | None
    injected_index_wh: int | None
    apparent_power_va: int | None
    injected_power_va: int | None
    currents_a: tuple[int | None, ...]
    voltages_v: tuple[int | None, ...]
    subscribed_current_a: int | None
    subscribed_power_kva: int | None
    three_phase: bool
    producer: bool
    overload: bool
    short_frame: bool
    status: StatusRegister | None
    relays: Relays | None
    meter_time: Horodate | None
    values: Mapping[str, TicValue] = field(hash=False)
    warnings: tuple[str, ...] = ()


def _aliases(mode: Mode) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for label, info in catalogue(mode).items():
        if info.alias_of is not None:
            out[info.alias_of] = (*out.get(info.alias_of, ()), label)
    return out


_ALIASES = {mode: _aliases(mode) for mode in Mode}


class _Values:
    """Typed access to decoded values, following field-seen aliases (SINST1 → SINSTS)."""

    def __init__(self, mode: Mode | None, values: Mapping[str, TicValue]) -> None:
        self.mode = mode
        self.values = values

    def get(self, label: str, cls: type[V]) -> V | None:
        names = (label, *(_ALIASES[self.mode].get(label, ()) if self.mode else ()))
        for name in names:
            value = self.values.get(name)
            if isinstance(value, cls) and not isinstance(value, bool):
                return value
        return None

    def number(self, label: str) -> int | None:
        return self.get(label, int)

    def infos(self) -> list[tuple[LabelInfo, TicValue]]:
        if self.mode is None:
            return []
        found = ((lookup(label, self.mode), value) for label, value in self.values.items())
        return [(info, value) for info, value in found if info is not None]


def _decode(frame: Frame) -> tuple[dict[str, TicValue], list[str], set[str]]:
    """Decode the valid groups; return values, warnings and labels that failed."""
    values: dict[str, TicValue] = {}
    warnings: list[str] = []
    failed: set[str] = set()
    for group in frame.groups:
        if not group.valid:
            if group.label:
                failed.add(group.label)
            continue
        mode = group.mode or frame.mode
        if mode is None:
            warnings.append(f"{group.label}: mode unknown, group not decoded")
            _LOG.warning("TIC group %s not decoded: mode unknown", group.label)
            continue
        try:
            values[group.label] = decode_value(
                group.label, group.value, mode=mode, horodate=group.horodate
            )
        except DecodeError as exc:
            failed.add(group.label)
            values.pop(group.label, None)
            warnings.append(str(exc))
            _LOG.warning("TIC group %s not decoded: %s", group.label, exc)
    return values, warnings, failed


def _is_short(mode: Mode | None, labels: set[str]) -> bool:
    return (
        mode is Mode.HISTORIQUE
        and bool(labels)
        and labels <= SHORT_FRAME_LABELS
        and bool(labels & (_ADIR | set(_PHASE_CURRENTS)))
    )


def _per_phase(v: _Values, names: tuple[str, ...], phases: int) -> tuple[int | None, ...]:
    got = tuple(v.number(name) for name in names[:phases])
    return got if any(x is not None for x in got) else ()


def _summarise(
    mode: Mode | None,
    values: Mapping[str, TicValue],
    warnings: list[str],
    *,
    complete: bool,
    short_frame: bool,
) -> MeterReading:
    v = _Values(mode, values)
    infos = v.infos()
    status = v.get("STGE", StatusRegister)
    identity = v.get("ADCO" if mode is Mode.HISTORIQUE else "ADSC", MeterIdentity)

    three_phase = any(info.three_phase_only for info, _ in infos) or bool(
        identity is not None and identity.three_phase
    )
    producer = any(info.producer_only for info, _ in infos) or bool(status and status.producer)
    overload = any(info.label in _ADIR or info.label == "ADPS" for info, _ in infos) or bool(
        status and status.reference_power_exceeded
    )

    indexes = {
        info.label: value
        for info, value in infos
        if info.kind is Kind.INDEX and info.unit is Unit.WH and isinstance(value, int)
    }
    reactive = {
        info.label: value
        for info, value in infos
        if info.kind is Kind.INDEX and info.unit is Unit.VARH and isinstance(value, int)
    }
    phases = 3 if three_phase else 1
    if mode is Mode.STANDARD:
        supplier = [n for label, n in indexes.items() if label.startswith("EASF")]
        total = v.number("EAST")
        if total is None and supplier:
            total = sum(supplier)
        currents = _per_phase(v, ("IRMS1", "IRMS2", "IRMS3"), phases)
        voltages = _per_phase(v, ("URMS1", "URMS2", "URMS3"), phases)
        ltarf = v.get("LTARF", TicText)
        period: TariffPeriod | str | None = ltarf.text if ltarf else None
        tariff_index = v.number("NTARF")
        apparent = v.number("SINSTS")
    else:
        registers = [n for label, n in indexes.items() if label != "BASE"]
        total = v.number("BASE")
        if total is None and registers:
            total = sum(registers)
        currents = (
            _per_phase(v, _PHASE_CURRENTS, 3) if three_phase else _per_phase(v, ("IINST",), 1)
        )
        voltages = _per_phase(v, ("TENSION",), 1)
        period = v.get("PTEC", TariffPeriod)
        tariff_index = None
        apparent = v.number("PAPP")
    if tariff_index is None and status is not None:
        tariff_index = status.supplier_index

    tomorrow = v.get("DEMAIN", TempoColour)
    if tomorrow is None and status is not None:
        tomorrow = status.tempo_tomorrow

    return MeterReading(
        mode=mode,
        complete=complete,
        identity=identity,
        tariff_option=v.get("OPTARIF", TariffOption),
        tariff_period=period,
        tariff_index=tariff_index,
        tempo_tomorrow=tomorrow,
        indexes_wh=MappingProxyType(indexes),
        reactive_indexes_varh=MappingProxyType(reactive),
        total_index_wh=total,
        injected_index_wh=v.number("EAIT"),
        apparent_power_va=apparent,
        injected_power_va=v.number("SINSTI"),
        currents_a=currents,
        voltages_v=voltages,
        subscribed_current_a=v.number("ISOUSC"),
        subscribed_power_kva=v.number("PREF"),
        three_phase=three_phase,
        producer=producer,
        overload=overload,
        short_frame=short_frame,
        status=status,
        relays=v.get("RELAIS", Relays),
        meter_time=v.get("DATE", Horodate),
        values=MappingProxyType(dict(values)),
        warnings=tuple(warnings),
    )


def read_frame(frame: Frame) -> MeterReading:
    """Summarise one decoded frame; never raises (bad values become ``None`` + warning)."""
    values, warnings, _ = _decode(frame)
    return _summarise(
        frame.mode,
        values,
        warnings,
        complete=frame.complete,
        short_frame=_is_short(frame.mode, set(values)),
    )


class MeterState:
    """The latest known state of one meter, merged over successive frames.

    * a complete long frame replaces everything, except labels whose group was lost
      (bad checksum) or did not decode, which keep their previous value;
    * a historique short frame updates currents and ``ADIRn`` and keeps the rest of the
      last long frame;
    * a frame cut short (``complete`` false) updates what it carries;
    * a change of mode or of meter address starts again from scratch.
    """

    def __init__(self) -> None:
        self._mode: Mode | None = None
        self._values: dict[str, TicValue] = {}
        self._last: MeterReading | None = None

    @property
    def last(self) -> MeterReading | None:
        """The reading returned by the last :meth:`update`, if any."""
        return self._last

    def update(self, frame: Frame) -> MeterReading:
        """Merge ``frame`` into the state and return the merged reading."""
        values, warnings, failed = _decode(frame)
        mode = frame.mode
        if mode is not None and (mode is not self._mode or self._other_meter(values)):
            self._values = {}
            self._mode = mode
        short = _is_short(mode, set(values))
        if short:
            merged = {k: v for k, v in self._values.items() if k not in _ADIR}
            merged.update(values)
        elif frame.complete and values:
            merged = {k: v for k, v in self._values.items() if k in failed}
            merged.update(values)
        else:
            merged = {**self._values, **values}
        self._values = merged
        self._last = _summarise(
            self._mode, merged, warnings, complete=frame.complete, short_frame=short
        )
        return self._last

    def _other_meter(self, values: Mapping[str, TicValue]) -> bool:
        for label in ("ADCO", "ADSC"):
            new, old = values.get(label), self._values.get(label)
            if isinstance(new, MeterIdentity) and isinstance(old, MeterIdentity):
                return new.raw != old.raw
        return False
