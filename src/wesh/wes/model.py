"""Typed model of one WES snapshot (pure data, no I/O).

Everything a ``data.cgx`` page (or a compact template, see :mod:`wesh.wes.cgx`) says about
one Cartelectronic WES server at one instant. Values are already normalised by the parser
(:mod:`wesh.wes.datacgx`): placeholders became ``None``, indexes are in Wh, voltages of
``0`` V are ``None`` (no measurement), and the clamp index is in Wh whatever the firmware.

Units are in the field names (``power_va``, ``index_wh``, ``current_a``). Readings with a
path, a unit, the box time and the poll time come from :meth:`WesSnapshot.readings`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from wesh.wes.readings import Reading, snapshot_readings

__all__ = [
    "PARIS",
    "Clamp",
    "Firmware",
    "PulseCounter",
    "Quantity",
    "TicMeter",
    "WesInfo",
    "WesSnapshot",
    "firmware_version",
]

#: The time zone of every WES clock (the box shows local French time, without offset).
PARIS = ZoneInfo("Europe/Paris")

_VERSION_RE = re.compile(r"V?\s*(\d{1,4})\.(\d{1,4})([A-Z]?)(\d{0,4})", re.IGNORECASE)


def firmware_version(text: str) -> tuple[int, int, str, int] | None:
    """Split a firmware string (``"V0.84A10"``, ``"V0.83H B04"``) into a sortable tuple.

    Returns ``(major, minor, letter, number)``, e.g. ``(0, 84, "A", 10)``, or ``None`` when
    the text does not look like a WES firmware version. A build suffix (``" B04"``) is
    ignored.
    """
    match = _VERSION_RE.match(text.strip())
    if match is None:
        return None
    major, minor, letter, number = match.groups()
    return int(major), int(minor), letter.upper(), int(number) if number else 0


class Firmware(StrEnum):
    """The two firmware families whose ``data.cgx`` differ (wes.md §7).

    ``V083H`` stands for every firmware before V0.84A10: tariff indexes ``HCHC``/``HCHP``,
    pulse ``INDEXn`` printed ``%.0f``, clamp ``INDEXn`` printed ``%d`` (Wh).
    ``V084A10`` stands for V0.84A10 and later: ``H_CREUSE``/``H_PLEINE``, pulse
    ``INDEXn`` printed ``%d.%03.0f``, clamp ``INDEXn`` printed ``%.03f`` (kWh).
    """

    V083H = "V0.83H"
    V084A10 = "V0.84A10"

    @classmethod
    def detect(cls, text: str | None) -> Firmware | None:
        """Return the family of a firmware string, or ``None`` if it cannot be read."""
        if not text:
            return None
        return _family(text)


@functools.lru_cache(maxsize=64)
def _family(text: str) -> Firmware | None:
    """:meth:`Firmware.detect` of a non-empty text (cached: every poll of a box repeats it)."""
    version = firmware_version(text)
    if version is None:
        return None
    return Firmware.V084A10 if version >= (0, 84, "A", 10) else Firmware.V083H


@dataclass(frozen=True, slots=True)
class Quantity:
    """A value printed with its unit by the box, e.g. ``338.25 l`` or ``1.98 m3``.

    ``unit`` is the unit as printed (``"l"``, ``"m3"``, ``"kWh"``...), ``None`` if the box
    printed a bare number.
    """

    value: float
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class WesInfo:
    """The ``<info>`` block: box clock, firmware and identity.

    ``box_time`` is the box's local clock (``<date>`` + ``<time>``, minute resolution) as
    an aware datetime in Europe/Paris; ``mac`` is 12 upper-case hex digits.
    """

    box_time: datetime | None = None
    firmware: str | None = None
    mac: str | None = None
    hardware: str | None = None
    spaceleft_gb: float | None = None
    alarm: bool | None = None


@dataclass(frozen=True, slots=True)
class TicMeter:
    """One Téléinfo input (``<tic1>``...``<tic3>``).

    ``available`` is false when the box says no meter is read (``ADCO`` = ``Pas Dispo``
    or ``PTEC`` = ``TIC NDERR.``); the other fields then keep what the box printed
    (usually zeros) but :meth:`WesSnapshot.readings` emits only ``tic.<n>.available``.

    ``currents_a``, ``voltages_v`` and ``imax_a`` hold one value per phase: one element
    for a single-phase meter (from ``IINST``/``TENSION1``/``IMAX``), three for a
    three-phase one (``IINST1..3``...). ``indexes_wh`` uses normalised lower-case names:
    ``base``, ``hchc`` (``HCHC`` or ``H_CREUSE``), ``hchp`` (``HCHP`` or ``H_PLEINE``),
    ``ejphn``, ``ejphpm``, ``bbrhcjb``...``bbrhpjr``, ``injection``, and any other index
    element lower-cased (``h_super_creuse``, ``hc_semaine``...).
    """

    number: int
    available: bool = True
    adco: str | None = None
    optarif: str | None = None
    isousc_a: int | None = None
    period: str | None = None
    period_code: str | None = None
    tomorrow: str | None = None
    tomorrow_code: str | None = None
    apparent_power_va: int | None = None
    injected_power_va: int | None = None
    phases: int = 1
    currents_a: tuple[int | None, ...] = ()
    voltages_v: tuple[int | None, ...] = ()
    imax_a: tuple[int | None, ...] = ()
    pejp: int | None = None
    producer: bool | None = None
    indexes_wh: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PulseCounter:
    """One pulse counter (``<impulsion>`` elements with number ``n``).

    ``index`` is in the counter's configured unit (litres, m³, Wh or kWh), which the stock
    page does not print: ``index_unit`` is set only when the box printed a unit after the
    number. ``pulses_today`` counts the pulses of the current day. Consumptions are
    :class:`Quantity` because the box may print them with a unit (``338.25 l``).
    """

    number: int
    pulses_today: int | None = None
    index: float | None = None
    index_unit: str | None = None
    flow: float | None = None
    consumption_day: Quantity | None = None
    consumption_yesterday: Quantity | None = None
    consumption_month: Quantity | None = None
    consumption_year: Quantity | None = None
    cost_day_eur: float | None = None
    cost_month_eur: float | None = None
    cost_year_eur: float | None = None


@dataclass(frozen=True, slots=True)
class Clamp:
    """One current clamp (``<pince>`` elements with number ``n``).

    ``index_wh`` and ``inject_wh`` are in Wh whatever the firmware printed (``%d`` Wh
    before V0.84A10, ``%.03f`` kWh after). ``power_w`` and ``cos_phi`` come from the
    ``WATTn`` element or from a ``"271 W cos phi 0.87"`` power string.
    """

    number: int
    current_a: float | None = None
    index_wh: int | None = None
    inject_wh: int | None = None
    power_va: int | None = None
    power_w: int | None = None
    cos_phi: float | None = None


@dataclass(frozen=True, slots=True)
class WesSnapshot:
    """Everything one ``data.cgx`` page said.

    Mappings are keyed by the channel number printed by the box (``SONDE3`` → 3,
    ``RELAIS101`` → 101 in ``relays_1w``). ``voltage_v`` is the mains voltage measured
    by the box (``<pince><V>``), ``None`` without the 9 V AC adapter.

    ``firmware`` is the family used to read the page (given by the caller, else detected).
    ``complete`` is false when the document was cut short: the values read before the cut
    are kept, and ``warnings`` says where it stopped. ``extras`` keeps the raw text of every
    element that the model does not hold (``"section/ELEMENT"`` → text), so nothing the
    box said is lost. ``warnings`` lists every problem met while reading, in order.
    """

    info: WesInfo = field(default_factory=WesInfo)
    tic: tuple[TicMeter, ...] = ()
    pulses: tuple[PulseCounter, ...] = ()
    clamps: tuple[Clamp, ...] = ()
    voltage_v: int | None = None
    temperatures: Mapping[int, float | None] = field(default_factory=dict)
    relays: Mapping[int, bool] = field(default_factory=dict)
    relays_1w: Mapping[int, bool] = field(default_factory=dict)
    inputs: Mapping[int, bool] = field(default_factory=dict)
    analog_v: Mapping[int, float] = field(default_factory=dict)
    switches: Mapping[int, bool] = field(default_factory=dict)
    variables: Mapping[int, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    firmware: Firmware | None = None
    complete: bool = True
    extras: Mapping[str, str] = field(default_factory=dict)

    def readings(
        self,
        *,
        poll_time: datetime,
        pulse_units: Mapping[int, str] | None = None,
    ) -> list[Reading]:
        """Flatten this snapshot into normalised readings (see :mod:`wesh.wes.readings`).

        Args:
            poll_time: when the page was fetched (timezone-aware).
            pulse_units: the configured unit of each pulse counter (``{1: "m3"}``), used
                when the page does not print it; units ``l``/``m3`` give litres,
                ``Wh``/``kWh`` give Wh.
        """
        return snapshot_readings(self, poll_time=poll_time, pulse_units=pulse_units)
