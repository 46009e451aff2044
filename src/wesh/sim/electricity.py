"""The electricity meter seen by a box's TIC input, behind a small interface.

The box only needs a :class:`TicReading` at a given time; :class:`ElectricityModel` is
that seam. :class:`SimulatedMeter` implements it with :class:`wesh.tic.TicMeterSimulator`
(the realistic, seeded meter of :mod:`wesh.tic.simulator`) and adds what happens on a
building site: the meter can be **replaced** (new ADCO, indexes restart from zero).
Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from wesh.tic.simulator import Tariff, TicMeterSimulator

__all__ = ["ElectricityModel", "SimulatedMeter", "Tariff", "TicReading"]

_OPTARIF = {Tariff.BASE: "BASE", Tariff.HC: "HC..", Tariff.TEMPO: "BBR("}


@dataclass(frozen=True, slots=True)
class TicReading:
    """What a meter says on its TIC output (historique labels), at one moment.

    Attributes:
        adco: 12-digit meter address.
        optarif: tariff option as the meter sends it (``"BASE"``, ``"HC.."``, ``"BBR("``).
        isousc_a: subscribed current.
        period: current tariff period as PTEC sends it (``"TH.."``, ``"HC.."``, ``"HP.."``).
        power_va: apparent power (PAPP).
        active_power_w: active power drawn (not on the TIC; used for heat gains).
        iinst_a: instantaneous current, one per phase.
        imax_a: maximum current, one per phase.
        voltages_v: voltage, one per phase.
        indexes_wh: tariff indexes by historique label (``BASE`` or ``HCHC``/``HCHP``...).
    """

    adco: str
    optarif: str
    isousc_a: int
    period: str
    power_va: int
    active_power_w: float
    iinst_a: tuple[int, ...]
    imax_a: tuple[int, ...]
    voltages_v: tuple[int, ...]
    indexes_wh: Mapping[str, int]

    @property
    def phases(self) -> int:
        """Number of phases (1 or 3)."""
        return len(self.iinst_a)

    @property
    def total_wh(self) -> int:
        """Sum of the tariff indexes."""
        return sum(self.indexes_wh.values())


class ElectricityModel(Protocol):
    """A meter that integrates its own consumption as simulated time goes on."""

    def advance_to(self, ts: float) -> None:
        """Integrate up to POSIX time ``ts`` (never backwards)."""
        ...

    def reading(self) -> TicReading:
        """Return what the meter says now."""
        ...

    def replace(self, *, adco: str) -> None:
        """Swap the meter for a new one with address ``adco`` and indexes at zero."""
        ...


class SimulatedMeter:
    """An :class:`ElectricityModel` backed by :class:`wesh.tic.TicMeterSimulator`.

    ``identity`` is the ADCO; ``seed`` drives the load; ``start`` is a POSIX time.
    """

    def __init__(
        self,
        *,
        start: float,
        seed: int,
        identity: str,
        phases: int = 1,
        tariff: Tariff = Tariff.HC,
    ) -> None:
        self._seed = seed
        self._phases = phases
        self._tariff = tariff
        self._generation = 0
        self._meter = self._new_meter(start, identity)
        self._offsets: dict[str, int] = {}

    def _new_meter(self, start: float, identity: str) -> TicMeterSimulator:
        return TicMeterSimulator(
            start=datetime.fromtimestamp(start, tz=UTC),
            seed=(self._seed + 7919 * self._generation) & 0xFFFFFFFF,
            phases=self._phases,
            tariff=self._tariff,
            identity=identity,
        )

    def advance_to(self, ts: float) -> None:
        """Integrate up to POSIX time ``ts`` (earlier times are ignored)."""
        at = datetime.fromtimestamp(ts, tz=UTC)
        if at > self._meter.now:
            self._meter.advance_to(at)

    def reading(self) -> TicReading:
        """Return what the meter says now."""
        m = self._meter
        profile = m.profile
        indexes = {label: wh - self._offsets.get(label, 0) for label, wh in m.indexes_wh.items()}
        period = m.tariff_period
        return TicReading(
            adco=m.identity,
            optarif=_OPTARIF[profile.tariff],
            isousc_a=profile.isousc_a,
            period=period + "." * (4 - len(period)),
            power_va=m.power_va,
            active_power_w=max(m.active_power_w, 0.0),
            iinst_a=m.currents_a,
            imax_a=(90,) if profile.phases == 1 else (60, 60, 60),
            voltages_v=m.voltages_v,
            indexes_wh=MappingProxyType(indexes),
        )

    def replace(self, *, adco: str) -> None:
        """Swap the meter for a new one with address ``adco`` and indexes at zero."""
        now = self._meter.now.timestamp()
        self._generation += 1
        self._meter = self._new_meter(now, adco)
        self._offsets = dict(self._meter.indexes_wh)
