"""What a simulated WES box is (identity) and what it measures at one moment (state).

Pure data. :class:`BoxState` is an immutable snapshot taken by
:meth:`wesh.sim.box.SimulatedBox.state`; values are rounded the way the box prints them
(probes to 0.1, clamp currents to 0.01), so a snapshot can be compared with what a client
parsed from the box's pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from wesh.sim.electricity import TicReading
from wesh.wes.model import Firmware

__all__ = [
    "BoxIdentity",
    "BoxKind",
    "BoxState",
    "ClampState",
    "CounterConfig",
    "CounterState",
    "Firmware",
    "Hardware",
    "TicState",
]


class BoxKind(StrEnum):
    """What a box watches: one flat, or the common areas of a building."""

    DWELLING = "dwelling"
    COMMON = "common"


class Hardware(StrEnum):
    """WES hardware generation: V1 (2 pulse counters, 2 clamps) or V2 (4 and 4, analog inputs)."""

    V1 = "V1"
    V2 = "V2"

    @property
    def pulse_counters(self) -> int:
        """Number of pulse counters."""
        return 2 if self is Hardware.V1 else 4

    @property
    def clamps(self) -> int:
        """Number of current clamps."""
        return 2 if self is Hardware.V1 else 4

    @property
    def analog_inputs(self) -> int:
        """Number of analog inputs."""
        return 0 if self is Hardware.V1 else 4


@dataclass(frozen=True, slots=True)
class BoxIdentity:
    """Who a box is: fixed for its life (the TIC meter behind it may change).

    ``index`` is the box number in its farm (0-based); ``building`` and ``position``
    place it (position 0 is the common-areas box of the building); ``mac`` is 12
    upper-case hex digits; ``adco`` is the address of the meter on TIC1 at start.
    """

    index: int
    seed: int
    kind: BoxKind
    building: int
    position: int
    firmware: Firmware
    hardware: Hardware
    mac: str
    adco: str
    name: str

    @property
    def firmware_text(self) -> str:
        """The firmware string the box prints (``"V0.84A10"``, ``"V0.83H B04"``)."""
        return "V0.83H B04" if self.firmware is Firmware.V083H else str(self.firmware)

    @property
    def hardware_text(self) -> str:
        """The hardware string the box prints (``"WES V2"``)."""
        return f"WES {self.hardware}"


@dataclass(frozen=True, slots=True)
class CounterConfig:
    """How a pulse counter is configured: name, unit (``l``, ``m3``, ``Wh``, ``kWh``), weight."""

    name: str
    unit: str
    pulses_per_unit: int = 1


@dataclass(frozen=True, slots=True)
class TicState:
    """One TIC input: ``reading`` is ``None`` when no meter is read (``Pas Dispo``)."""

    number: int
    reading: TicReading | None

    @property
    def available(self) -> bool:
        """True when a meter is read on this input."""
        return self.reading is not None


@dataclass(frozen=True, slots=True)
class CounterState:
    """One pulse counter at one moment.

    ``index_pulses`` counts every pulse since the counter was last reset; ``pulses_today``
    (``yesterday``, ``month``, ``year``) count those of the current local day (the
    previous one, the month, the year). ``flow`` is in units per minute.
    """

    number: int
    config: CounterConfig
    index_pulses: int
    pulses_today: int
    pulses_yesterday: int
    pulses_month: int
    pulses_year: int
    flow: float

    @property
    def index(self) -> float:
        """The index in the counter's unit."""
        return self.index_pulses / self.config.pulses_per_unit

    def in_units(self, pulses: int) -> float:
        """Convert a number of pulses to the counter's unit."""
        return pulses / self.config.pulses_per_unit


@dataclass(frozen=True, slots=True)
class ClampState:
    """One current clamp at one moment (index and injection in Wh)."""

    number: int
    name: str
    enabled: bool
    current_a: float
    power_va: int
    power_w: int
    index_wh: int
    inject_wh: int = 0

    @property
    def cos_phi(self) -> float:
        """Power factor (1.0 when no power flows)."""
        return round(self.power_w / self.power_va, 2) if self.power_va else 1.0


@dataclass(frozen=True, slots=True)
class BoxState:
    """Everything a box measures at one moment.

    ``sim_time`` is the simulated (true) time; ``box_time`` is what the box's clock
    says (Europe/Paris, shifted by a clock-skew fault). ``voltage_v`` is 0 without the
    9 V AC adapter. ``probes`` maps the 1-Wire probe number to its value (°C or %RH),
    rounded to 0.1.
    """

    identity: BoxIdentity
    sim_time: datetime
    box_time: datetime
    tics: tuple[TicState, ...]
    counters: tuple[CounterState, ...]
    clamps: tuple[ClampState, ...]
    voltage_v: int
    probes: Mapping[int, float]
    relays: tuple[bool, ...]
    inputs: tuple[bool, ...]
    analog_v: tuple[float, ...]
    switches: tuple[bool, ...]
    variables: tuple[float, ...]
    alarm: bool
    spaceleft_gb: float
    booted_at: datetime
