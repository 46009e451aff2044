"""Typed values of TIC groups: from a label's raw text to a typed object.

:func:`decode_value` looks the label up in :mod:`wesh.tic.labels` and decodes its data
by kind. It raises only :class:`~wesh.errors.DecodeError` (wrong width, non-digits in a
number, unknown enumeration member, impossible horodate...). Labels unknown to the
catalogue are returned as their raw text.

=================================  =========================================================
kind (labels)                      typed value
=================================  =========================================================
INDEX, COUNTER, CURRENT, VOLTAGE,  ``int`` in the label's unit (BASE → Wh, PREF → kVA...)
POWER, INTEGER
  … with a horodate (SMAXSN…)      :class:`Timed` ``[int]`` (value + :class:`Horodate`)
IDENTITY (ADCO, ADSC)              :class:`MeterIdentity`
TARIFF_OPTION (OPTARIF)            :class:`TariffOption`
TARIFF_PERIOD (PTEC)               :class:`TariffPeriod`
COLOUR (DEMAIN)                    :class:`TempoColour`
TEXT (NGTF, LTARF, MSG1, PRM…)     :class:`TicText` (raw text kept, ``.text`` for display)
STATUS (STGE)                      :class:`StatusRegister`
STATUS_WORD (MOTDETAT)             :class:`StatusWord`
PHASES (PPOT)                      :class:`PotentialPresence`
RELAYS (RELAIS)                    :class:`Relays`
PROFILE (PJOURF+1, PPOINTE)        :class:`DayProfile`
TIMESTAMP (DATE)                   :class:`Horodate`
MOBILE_PEAK (DPMx, FPMx)           :class:`Timed` ``[str]`` (data ``"00"`` + horodate)
=================================  =========================================================

Widths: standard-mode numbers must have exactly the spec width (they are zero-padded
[54E §6.2.1.2]); historique numbers may be shorter than the spec width (the concentrator
sends an 8-digit BASE) but never longer. Text fields may be shorter than their width
(real frames pad them, some tools trim them) but never longer. Only printable ASCII is
accepted in catalogued labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from wesh.errors import DecodeError
from wesh.tic.horodate import Horodate, parse_horodate
from wesh.tic.labels import Kind, LabelInfo, lookup
from wesh.tic.model import Mode

__all__ = [
    "CONSTRUCTORS",
    "DEVICE_TYPES",
    "CplStatus",
    "CutOffState",
    "DayProfile",
    "DaySlot",
    "DeviceType",
    "DryContactAction",
    "EuridisOutput",
    "MeterIdentity",
    "MobilePeak",
    "PotentialPresence",
    "Relays",
    "StatusRegister",
    "StatusWord",
    "TariffOption",
    "TariffOptionKind",
    "TariffPeriod",
    "TempoColour",
    "TicText",
    "TicValue",
    "Timed",
    "decode_value",
    "parse_day_profile",
    "parse_identity",
    "parse_potentials",
    "parse_relays",
    "parse_status_register",
    "parse_tariff_option",
]

T = TypeVar("T")

_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ALNUM = re.compile(r"[0-9A-Za-z]+")


# --------------------------------------------------------------------------- enums


class TempoColour(StrEnum):
    """Tempo day colour: DEMAIN's text; also STGE bits 24-27 (0 = none → ``UNKNOWN``)."""

    UNKNOWN = "----"
    BLUE = "BLEU"
    WHITE = "BLAN"
    RED = "ROUG"

    @property
    def name_en(self) -> str:
        """English name."""
        return {"----": "unknown", "BLEU": "blue", "BLAN": "white", "ROUG": "red"}[self.value]

    @property
    def name_fr(self) -> str:
        """French name."""
        return {"----": "inconnue", "BLEU": "bleu", "BLAN": "blanc", "ROUG": "rouge"}[self.value]


_PERIOD_NAMES = {  # code: (English, French)
    "TH..": ("all hours", "toutes les heures"),
    "HC..": ("off-peak hours", "heures creuses"),
    "HP..": ("peak hours", "heures pleines"),
    "HN..": ("normal hours (EJP)", "heures normales"),
    "PM..": ("mobile-peak hours (EJP)", "heures de pointe mobile"),
    "HCJB": ("off-peak hours, blue day", "heures creuses jours bleus"),
    "HCJW": ("off-peak hours, white day", "heures creuses jours blancs"),
    "HCJR": ("off-peak hours, red day", "heures creuses jours rouges"),
    "HPJB": ("peak hours, blue day", "heures pleines jours bleus"),
    "HPJW": ("peak hours, white day", "heures pleines jours blancs"),
    "HPJR": ("peak hours, red day", "heures pleines jours rouges"),
}


class TariffPeriod(StrEnum):
    """Current tariff period (PTEC) [02E §2.3]; the value is the 4-character code."""

    TH = "TH.."
    HC = "HC.."
    HP = "HP.."
    HN = "HN.."
    PM = "PM.."
    HCJB = "HCJB"
    HCJW = "HCJW"
    HCJR = "HCJR"
    HPJB = "HPJB"
    HPJW = "HPJW"
    HPJR = "HPJR"

    @property
    def name_en(self) -> str:
        """English name."""
        return _PERIOD_NAMES[self.value][0]

    @property
    def name_fr(self) -> str:
        """French name."""
        return _PERIOD_NAMES[self.value][1]

    @property
    def off_peak(self) -> bool:
        """True in off-peak (heures creuses) periods."""
        return self.value.startswith("HC")

    @property
    def tempo_colour(self) -> TempoColour | None:
        """The Tempo day colour of a Tempo period, else ``None``."""
        if self.value[2:3] != "J":
            return None
        return {"B": TempoColour.BLUE, "W": TempoColour.WHITE, "R": TempoColour.RED}[self.value[3]]


class TariffOptionKind(StrEnum):
    """Tariff option family (OPTARIF); the value is the code or its prefix."""

    BASE = "BASE"
    OFF_PEAK = "HC.."
    EJP = "EJP."
    TEMPO = "BBR"


_OPTION_NAMES = {
    TariffOptionKind.BASE: ("Base", "Base"),
    TariffOptionKind.OFF_PEAK: ("off-peak hours (HC)", "heures creuses"),
    TariffOptionKind.EJP: ("EJP (peak-day withdrawal)", "EJP (effacement jours de pointe)"),
    TariffOptionKind.TEMPO: ("Tempo", "Tempo"),
}


class CutOffState(IntEnum):
    """STGE bits 1-3: state of the cut-off device (organe de coupure)."""

    CLOSED = 0
    OPEN_OVERPOWER = 1
    OPEN_OVERVOLTAGE = 2
    OPEN_LOAD_SHEDDING = 3
    OPEN_REMOTE_ORDER = 4  # by CPL or Euridis order
    OPEN_OVERHEAT_ABOVE_MAX_CURRENT = 5
    OPEN_OVERHEAT_BELOW_MAX_CURRENT = 6
    UNDEFINED_7 = 7  # not defined by the spec


class EuridisOutput(IntEnum):
    """STGE bits 19-20: state of the Euridis output."""

    OFF = 0
    ON_WITHOUT_SECURITY = 1
    UNDEFINED_2 = 2  # not defined by the spec
    ON_WITH_SECURITY = 3


class CplStatus(IntEnum):
    """STGE bits 21-22: CPL (power-line carrier) status."""

    NEW_UNLOCK = 0
    NEW_LOCK = 1
    REGISTERED = 2
    UNDEFINED_3 = 3  # not defined by the spec


class MobilePeak(IntEnum):
    """STGE bits 28-31: mobile peak (pointe mobile) number, or none."""

    NONE = 0
    PM1 = 1
    PM2 = 2
    PM3 = 3


class DryContactAction(IntEnum):
    """Bits 15-14 of a day-profile action: what the dry contact does."""

    NO_CHANGE = 0
    TEMPO = 1  # per the Tempo configuration, for a Tempo contract
    OPEN = 2
    CLOSE = 3


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Timed(Generic[T]):
    """A value with the horodate the meter attached to it (time of a maximum...)."""

    value: T
    horodate: Horodate


@dataclass(frozen=True, slots=True)
class TicText:
    """Free text (NGTF, LTARF, MSG1, MSG2, PRM, HHPHC), kept exactly as received."""

    raw: str

    @property
    def text(self) -> str:
        """The text for display: surrounding spaces stripped, inner runs collapsed."""
        return " ".join(self.raw.split())

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class TariffOption:
    """OPTARIF: the tariff option.

    For Tempo (``BBRx``) the 4th character encodes the programs [02E §2.3]: bit 6 = 0,
    bit 5 = 1, bits 4-3 = circuit 1 program (01 A, 10 B, 11 C), bits 2-0 = circuit 2
    program P0..P7. That bit reading is our **inference** from the spec text; a
    character that does not fit it leaves the programs ``None``.
    """

    raw: str
    kind: TariffOptionKind
    circuit1_program: str | None = None
    circuit2_program: str | None = None

    @property
    def name_en(self) -> str:
        """English name."""
        return _OPTION_NAMES[self.kind][0]

    @property
    def name_fr(self) -> str:
        """French name."""
        return _OPTION_NAMES[self.kind][1]


@dataclass(frozen=True, slots=True)
class DeviceType:
    """A Euridis device type code: what kind of meter it is."""

    description: str
    description_fr: str
    three_phase: bool | None
    source: str


_54E_22 = "[54E §2.2]"
_EURIDIS = "Euridis identifier list V3.04A, via hekmon/linkytic"
DEVICE_TYPES: MappingProxyType[str, DeviceType] = MappingProxyType(
    {
        "61": DeviceType("Linky single-phase 60 A G3, high power input",
                         "Linky monophasé 60 A G3, arrivée puissance haute", False, _54E_22),
        "62": DeviceType("Linky single-phase 90 A G1, low power input",
                         "Linky monophasé 90 A G1, arrivée puissance basse", False, _54E_22),
        "63": DeviceType("Linky three-phase 60 A G1, low power input",
                         "Linky triphasé 60 A G1, arrivée puissance basse", True, _54E_22),
        "64": DeviceType("Linky single-phase 60 A G3, low power input",
                         "Linky monophasé 60 A G3, arrivée puissance basse", False, _54E_22),
        "65": DeviceType("Linky single-phase 90 A, G3 CPL experimentation",
                         "Linky monophasé 90 A, expérimentation CPL G3", False, _EURIDIS),
        "66": DeviceType("module of the modular meter", "module du compteur modulaire",
                         None, _EURIDIS),
        "67": DeviceType("Linky single-phase 90 A, G1 pilot, low power input",
                         "Linky monophasé 90 A, pilote G1, arrivée basse", False, _EURIDIS),
        "68": DeviceType("Linky three-phase 60 A, G1 pilot, low power input",
                         "Linky triphasé 60 A, pilote G1, arrivée basse", True, _EURIDIS),
        "70": DeviceType("Linky single-phase 60 A, G3 development",
                         "Linky monophasé 60 A, mise au point G3", False, _54E_22),
        "71": DeviceType("Linky three-phase 60 A, G3 development",
                         "Linky triphasé 60 A, mise au point G3", True, _54E_22),
        "75": DeviceType("Linky single-phase 90 A G3, low power input",
                         "Linky monophasé 90 A G3, arrivée puissance basse", False, _54E_22),
        "76": DeviceType("Linky three-phase 60 A G3, low power input",
                         "Linky triphasé 60 A G3, arrivée puissance basse", True, _54E_22),
    }
)  # fmt: skip
"""Device type codes (3rd pair of digits of the ADS) of Linky meters."""

CONSTRUCTORS: MappingProxyType[str, str] = MappingProxyType(
    {
        "01": "Crouzet / Monetel", "02": "Sagem / Sagemcom",
        "03": "Schlumberger / Actaris / Itron", "04": "Landis+Gyr / Siemens Metering",
        "05": "Sauter / Stepper Energie / Zellweger", "06": "Itron", "07": "MAEC",
        "08": "Matra-Chauvin Arnoux / Enerdis", "09": "Faure-Herman", "10": "Sevme / SIS",
        "11": "Magnol / Elster / Honeywell", "12": "Gaz Thermique",
        "14": "Ghielmetti / Dialog E.S. / Micronique", "15": "Mecelec",
        "16": "Legrand / Baco", "17": "SERD-Schlumberger",
        "18": "Schneider / Merlin Gerin / Gardy", "19": "General Electric / Power Control",
        "20": "Nuovo Pignone / Dresser", "21": "SCLE", "22": "EDF", "23": "GDF / GDF-Suez",
        "24": "Hager - General Electric", "25": "Delta Dore", "26": "RIZ",
        "27": "Iskraemeco", "28": "GMT", "29": "Analog Devices", "30": "Michaud",
        "31": "Hexing Electrical", "32": "Siame", "33": "Larsen & Toubro",
        "34": "Elster / Honeywell",
        "35": "Electronic Afzar Azma", "36": "Advanced Electronic Company", "37": "AEM",
        "38": "Zhejiang Chint Instrument & Meter", "39": "ZIV",
        "70": "Landis+Gyr (export)", "71": "Stepper Energie (export)",
        "81": "Sagem / Sagemcom", "82": "Landis+Gyr / Siemens Metering",
        "83": "Elster / Honeywell", "84": "Sagem / Sagemcom", "85": "Itron",
    }
)  # fmt: skip
"""Constructor codes (1st pair of digits of the ADS), Euridis identifier list V3.04A
(27/03/2019) as quoted by hekmon/linkytic ``const.py`` — a secondary source."""


@dataclass(frozen=True, slots=True)
class MeterIdentity:
    """ADCO / ADSC: the meter's Euridis secondary address (ADS), its serial number.

    12 digits: constructor (2), year of manufacture (2), device type (2), number (6)
    [54E §2.2]. The year is 20yy, except 90..99 read as 1990..1999 for old CBE meters
    (our **inference**; the spec gives two digits only).
    """

    raw: str
    constructor_code: str
    year: int
    device_type_code: str
    number: str

    @property
    def constructor(self) -> str | None:
        """The constructor's name, if the code is known."""
        return CONSTRUCTORS.get(self.constructor_code)

    @property
    def device_type(self) -> DeviceType | None:
        """What the device type code means, if known (Linky types only)."""
        return DEVICE_TYPES.get(self.device_type_code)

    @property
    def three_phase(self) -> bool | None:
        """True for a three-phase meter type, False for single-phase, None if unknown."""
        info = self.device_type
        return None if info is None else info.three_phase


@dataclass(frozen=True, slots=True)
class StatusRegister:
    """STGE, the 32-bit status register [54E §6.2.3.14] (8 hex digits, MSB first)."""

    raw: str
    value: int
    dry_contact_open: bool  # bit 0
    cut_off: CutOffState  # bits 1-3
    terminal_cover_open: bool  # bit 4 (distributor terminal cover)
    overvoltage: bool  # bit 6, on at least one phase
    reference_power_exceeded: bool  # bit 7
    producer: bool  # bit 8
    negative_energy: bool  # bit 9, active energy direction
    supplier_index: int | None  # bits 10-13: 1..10 (None for undefined codes 10..15)
    distributor_index: int  # bits 14-15: 1..4
    clock_degraded: bool  # bit 16
    standard_mode: bool  # bit 17
    euridis_output: EuridisOutput  # bits 19-20
    cpl_status: CplStatus  # bits 21-22
    cpl_synchronised: bool  # bit 23
    tempo_today: TempoColour  # bits 24-25
    tempo_tomorrow: TempoColour  # bits 26-27
    mobile_peak_notice: MobilePeak  # bits 28-29
    mobile_peak_active: MobilePeak  # bits 30-31

    @property
    def tic_mode(self) -> Mode:
        """The TIC mode the meter reports (bit 17)."""
        return Mode.STANDARD if self.standard_mode else Mode.HISTORIQUE


@dataclass(frozen=True, slots=True)
class Relays:
    """RELAIS: 8 relays; ``closed[0]`` is relay 1, the real dry contact (bit 0)."""

    raw: str
    closed: tuple[bool, ...]

    @property
    def closed_relays(self) -> tuple[int, ...]:
        """Numbers (1..8) of the closed relays."""
        return tuple(n for n, on in enumerate(self.closed, start=1) if on)

    @property
    def dry_contact_closed(self) -> bool:
        """State of relay 1, the physical dry contact."""
        return self.closed[0]


@dataclass(frozen=True, slots=True)
class DaySlot:
    """One block of a day profile: from ``start``, apply ``action`` [54E p.27-28].

    ``virtual_contacts[0]`` is bit 4 of the action (virtual contact 1) ...
    ``virtual_contacts[6]`` is bit 10 (contact 7). ``tariff_index`` is 1..10, or
    ``None`` for "no change" (codes 0 and 11-15).
    """

    start: time
    action: int
    dry_contact: DryContactAction
    virtual_contacts: tuple[bool, ...]
    tariff_index: int | None


@dataclass(frozen=True, slots=True)
class DayProfile:
    """PJOURF+1 / PPOINTE: up to 11 blocks ``HHMMSSSS``; unused ones are ``NONUTILE``."""

    raw: str
    slots: tuple[DaySlot, ...]
    unused: int


@dataclass(frozen=True, slots=True)
class PotentialPresence:
    """PPOT: bit n (1..3) set when the potential of phase n is absent [02E §2.5.5]."""

    raw: str
    absent_phases: tuple[int, ...]

    @property
    def all_present(self) -> bool:
        """True when all three phases have their potential."""
        return not self.absent_phases


@dataclass(frozen=True, slots=True)
class StatusWord:
    """MOTDETAT: reserved to the distributor; kept raw. ``000000`` is the nominal value."""

    raw: str

    @property
    def nominal(self) -> bool:
        """True for the usual ``000000``."""
        return self.raw == "000000"


TicValue = (
    int
    | str
    | TicText
    | Horodate
    | Timed[int]
    | Timed[str]
    | TariffPeriod
    | TariffOption
    | TempoColour
    | MeterIdentity
    | StatusRegister
    | StatusWord
    | PotentialPresence
    | Relays
    | DayProfile
)
"""Anything :func:`decode_value` returns (``str`` for a label unknown to the catalogue)."""


# --------------------------------------------------------------------------- parsers


def _fail(info: LabelInfo, value: str, why: str) -> DecodeError:
    shown = value if len(value) <= 40 else value[:40] + "..."
    return DecodeError(f"{info.label} {shown!r}: {why}", channel=info.label)


def _number(info: LabelInfo, value: str) -> int:
    if not _DIGITS.fullmatch(value):
        raise _fail(info, value, "expected decimal digits")
    width = info.width
    if width is not None:
        if info.mode is Mode.STANDARD and len(value) != width:
            raise _fail(info, value, f"expected exactly {width} digits")
        if len(value) > width:
            raise _fail(info, value, f"expected at most {width} digits")
    return int(value)


def parse_identity(value: str) -> MeterIdentity:
    """Decode a 12-digit ADS (ADCO / ADSC)."""
    if len(value) != 12 or not _DIGITS.fullmatch(value):
        raise DecodeError(f"meter address {value[:40]!r}: expected 12 digits")
    yy = int(value[2:4])
    return MeterIdentity(
        raw=value,
        constructor_code=value[0:2],
        year=(1900 if yy >= 90 else 2000) + yy,
        device_type_code=value[4:6],
        number=value[6:12],
    )


def parse_tariff_option(value: str) -> TariffOption:
    """Decode OPTARIF: ``BASE``, ``HC..``, ``EJP.`` or ``BBRx`` (Tempo)."""
    for kind in (TariffOptionKind.BASE, TariffOptionKind.OFF_PEAK, TariffOptionKind.EJP):
        if value == kind.value:
            return TariffOption(raw=value, kind=kind)
    if len(value) != 4 or not value.startswith("BBR"):
        raise DecodeError(f"unknown tariff option {value[:40]!r}")
    code = ord(value[3])
    circuit1 = circuit2 = None
    if code & 0x40 == 0 and code & 0x20:
        circuit1 = {1: "A", 2: "B", 3: "C"}.get((code >> 3) & 0b11)
        circuit2 = f"P{code & 0b111}"
    return TariffOption(value, TariffOptionKind.TEMPO, circuit1, circuit2)


def _bits(value: int, first: int, count: int = 1) -> int:
    return (value >> first) & ((1 << count) - 1)


_STGE_COLOURS = (TempoColour.UNKNOWN, TempoColour.BLUE, TempoColour.WHITE, TempoColour.RED)


def parse_status_register(value: str) -> StatusRegister:
    """Decode STGE, 8 hexadecimal digits (bit 0 = least significant bit)."""
    if len(value) != 8 or not _HEX.fullmatch(value):
        raise DecodeError(f"status register {value[:40]!r}: expected 8 hexadecimal digits")
    v = int(value, 16)
    supplier = _bits(v, 10, 4)
    return StatusRegister(
        raw=value,
        value=v,
        dry_contact_open=bool(_bits(v, 0)),
        cut_off=CutOffState(_bits(v, 1, 3)),
        terminal_cover_open=bool(_bits(v, 4)),
        overvoltage=bool(_bits(v, 6)),
        reference_power_exceeded=bool(_bits(v, 7)),
        producer=bool(_bits(v, 8)),
        negative_energy=bool(_bits(v, 9)),
        supplier_index=supplier + 1 if supplier <= 9 else None,
        distributor_index=_bits(v, 14, 2) + 1,
        clock_degraded=bool(_bits(v, 16)),
        standard_mode=bool(_bits(v, 17)),
        euridis_output=EuridisOutput(_bits(v, 19, 2)),
        cpl_status=CplStatus(_bits(v, 21, 2)),
        cpl_synchronised=bool(_bits(v, 23)),
        tempo_today=_STGE_COLOURS[_bits(v, 24, 2)],
        tempo_tomorrow=_STGE_COLOURS[_bits(v, 26, 2)],
        mobile_peak_notice=MobilePeak(_bits(v, 28, 2)),
        mobile_peak_active=MobilePeak(_bits(v, 30, 2)),
    )


def parse_relays(value: str) -> Relays:
    """Decode RELAIS: 3 decimal digits of an 8-bit mask, relay 1 = bit 0."""
    if len(value) != 3 or not _DIGITS.fullmatch(value) or int(value) > 255:
        raise DecodeError(f"relays {value[:40]!r}: expected 3 digits, 000..255")
    mask = int(value)
    return Relays(raw=value, closed=tuple(bool(mask >> bit & 1) for bit in range(8)))


def parse_potentials(value: str) -> PotentialPresence:
    """Decode PPOT: 2 hexadecimal digits, bit n set when phase n (1..3) is absent."""
    if len(value) != 2 or not _HEX.fullmatch(value):
        raise DecodeError(f"potentials {value[:40]!r}: expected 2 hexadecimal digits")
    byte = int(value, 16)
    return PotentialPresence(raw=value, absent_phases=tuple(n for n in (1, 2, 3) if byte >> n & 1))


_PROFILE_BLOCKS = 11
_UNUSED = "NONUTILE"


def _day_slot(block: str) -> DaySlot:
    if len(block) != 8 or not _DIGITS.fullmatch(block[:4]) or not _HEX.fullmatch(block[4:]):
        raise DecodeError(f"day-profile block {block[:40]!r}: expected HHMMSSSS or NONUTILE")
    hour, minute = int(block[:2]), int(block[2:4])
    if hour > 23 or minute > 59:
        raise DecodeError(f"day-profile block {block!r}: impossible start time")
    action = int(block[4:], 16)
    index = _bits(action, 0, 4)
    return DaySlot(
        start=time(hour, minute),
        action=action,
        dry_contact=DryContactAction(_bits(action, 14, 2)),
        virtual_contacts=tuple(bool(_bits(action, 4 + n)) for n in range(7)),
        tariff_index=index if 1 <= index <= 10 else None,
    )


def parse_day_profile(value: str) -> DayProfile:
    """Decode PJOURF+1 / PPOINTE: up to 11 space-separated blocks [54E §6.2.3.22].

    The spec's frame has exactly 11 blocks (98 characters); fewer are accepted, as in
    the spec's own example ``00004001 06004002 22004001``.
    """
    blocks = value.split()
    if not blocks or len(blocks) > _PROFILE_BLOCKS:
        raise DecodeError(f"day profile {value[:40]!r}: expected 1 to 11 blocks")
    slots = tuple(_day_slot(b) for b in blocks if b != _UNUSED)
    return DayProfile(raw=value, slots=slots, unused=len(blocks) - len(slots))


# --------------------------------------------------------------------------- dispatch


def _text(info: LabelInfo, value: str) -> TicText:
    if info.width is not None and len(value) > info.width:
        raise _fail(info, value, f"text longer than {info.width} characters")
    if info.label == "PRM" and (len(value) != 14 or not _DIGITS.fullmatch(value)):
        raise _fail(info, value, "expected 14 digits")
    return TicText(value)


def _status_word(info: LabelInfo, value: str) -> StatusWord:
    if len(value) != info.width or not _ALNUM.fullmatch(value):
        raise _fail(info, value, f"expected {info.width} letters or digits")
    return StatusWord(value)


def _enum(info: LabelInfo, value: str) -> TariffPeriod | TempoColour:
    cls = TariffPeriod if info.kind is Kind.TARIFF_PERIOD else TempoColour
    try:
        return cls(value)
    except ValueError:
        raise _fail(info, value, "unknown code") from None


def _wrap(parse: Callable[[str], TicValue]) -> Callable[[LabelInfo, str], TicValue]:
    def decode(info: LabelInfo, value: str) -> TicValue:
        try:
            return parse(value)
        except DecodeError as exc:
            raise DecodeError(f"{info.label}: {exc.message}", channel=info.label) from exc

    return decode


_DECODERS: dict[Kind, Callable[[LabelInfo, str], TicValue]] = {
    Kind.INDEX: _number,
    Kind.COUNTER: _number,
    Kind.CURRENT: _number,
    Kind.VOLTAGE: _number,
    Kind.POWER: _number,
    Kind.INTEGER: _number,
    Kind.IDENTITY: _wrap(parse_identity),
    Kind.TARIFF_OPTION: _wrap(parse_tariff_option),
    Kind.TARIFF_PERIOD: _enum,
    Kind.COLOUR: _enum,
    Kind.TEXT: _text,
    Kind.STATUS: _wrap(parse_status_register),
    Kind.STATUS_WORD: _status_word,
    Kind.PHASES: _wrap(parse_potentials),
    Kind.RELAYS: _wrap(parse_relays),
    Kind.PROFILE: _wrap(parse_day_profile),
}


def _horodate(info: LabelInfo, horodate: str | None) -> Horodate:
    if horodate is None:
        raise DecodeError(f"{info.label}: horodate missing", channel=info.label)
    try:
        return parse_horodate(horodate)
    except DecodeError as exc:
        raise DecodeError(f"{info.label}: {exc.message}", channel=info.label) from exc


def decode_value(label: str, value: str, *, mode: Mode, horodate: str | None = None) -> TicValue:
    """Decode the data of one group into a typed value (see the module table).

    ``horodate`` is the raw horodate of a standard-mode group; it is required for the
    horodated labels and ignored for the others. Raises only :class:`DecodeError`.
    """
    info = lookup(label, mode)
    if info is None:
        return value
    if not _PRINTABLE.fullmatch(value):
        raise _fail(info, value, "non-printable or non-ASCII character")
    if info.kind is Kind.TIMESTAMP:
        if value:
            raise _fail(info, value, "data must be empty, the date is in the horodate")
        return _horodate(info, horodate)
    if info.kind is Kind.MOBILE_PEAK:
        if len(value) != 2 or not _DIGITS.fullmatch(value):
            raise _fail(info, value, "expected 2 digits")
        return Timed(value, _horodate(info, horodate))
    decoded = _DECODERS[info.kind](info, value)
    if info.horodated and isinstance(decoded, int):
        return Timed(decoded, _horodate(info, horodate))
    return decoded
