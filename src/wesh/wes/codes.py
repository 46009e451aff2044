"""Catalogue of the WES CGX variable codes (wes.md §4.2).

A CGX command line ``c <code> <printf format>`` asks the firmware for the value(s) of
``<code>`` and prints them with the format. This module knows, for each code, what it
means, how many values the firmware passes and of which C type (``int``, ``float`` =
double, ``str`` = ``char*``, ``block`` = a ready-made XML block printed as is), and which
element of the stock ``data.cgx`` holds it (``section``/``elements``).

Codes were reassigned between firmware versions, so there are two catalogues:
:data:`CODES` (firmware ≥ V0.84A10, the default) and the one returned by
``codes_for(Firmware.V083H)`` (older firmware). They differ on ``TC1``/``TC2`` (old:
meter 2 HCHP/HCHC; new: H_CREUSE of meter 1/2), ``TJ1``/``TJ2`` (old: meter 2
EJPHN/EJPHPM; new: INJECTION of meter 1/2), and on the C types of a few codes (pulse
index ``pIU<n>``: one double before, int + double after; clamp index ``P W<n>``: int Wh
before, double kWh after; pulse consumptions ``pC*<n>``: text with unit before).

Canonical codes keep the space of the vendor's spelling (``"P A1"``, ``"l E1"``); the
space is optional in a template (``PA1`` matches ``P A1``), a TAB counts as a space, and
the **longest** known code that prefixes the command text wins (wes.md §4.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from wesh.wes.model import Firmware

__all__ = ["CODES", "LEGACY_CODES", "CType", "CodeInfo", "codes_for", "match_code"]

CType = Literal["int", "float", "str", "block"]


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What one CGX code gives.

    ``ctypes`` are the C types of the values the firmware passes, in order (their count
    is the arity). ``section`` and ``elements`` name where the stock ``data.cgx`` shows
    them (one element per value group: ``PPT`` gives 4 elements, ``g d`` one ``date``
    from 3 ints); both are ``None``/empty for codes absent from the stock page.
    ``firmware`` notes which firmware the meaning belongs to; ``note`` cites conflicts.
    """

    code: str
    meaning: str
    ctypes: tuple[CType, ...]
    section: str | None = None
    elements: tuple[str, ...] = ()
    firmware: str | None = None
    note: str | None = None

    @property
    def arity(self) -> int:
        """How many values the firmware passes for this code."""
        return len(self.ctypes)

    @property
    def ctype(self) -> CType:
        """The C type of the first (usually only) value."""
        return self.ctypes[0] if self.ctypes else "str"

    @property
    def element(self) -> str | None:
        """The stock ``data.cgx`` element when there is exactly one."""
        return self.elements[0] if len(self.elements) == 1 else None


_I: tuple[CType, ...] = ("int",)
_F: tuple[CType, ...] = ("float",)
_S: tuple[CType, ...] = ("str",)

_TIC_INDEX_NAMES = (
    "BBRHCJB",
    "BBRHPJB",
    "BBRHCJW",
    "BBRHPJW",
    "BBRHCJR",
    "BBRHPJR",
)
_SUPPLIER_NAMES = (
    "HC_Semaine",
    "HP_Semaine",
    "HC_WeekEnd",
    "HP_WeekEnd",
    "HC_Mercredi",
    "HP_Mercredi",
)


def _info(
    code: str,
    meaning: str,
    ctypes: tuple[CType, ...],
    section: str | None = None,
    *elements: str,
    firmware: str | None = None,
    note: str | None = None,
) -> CodeInfo:
    return CodeInfo(code, meaning, ctypes, section, tuple(elements), firmware, note)


def _common() -> Iterator[CodeInfo]:
    """Codes whose meaning does not depend on the firmware family."""
    yield _info("g d", "server date dd/mm/yy", ("int",) * 3, "info", "date")
    yield _info("h d", "server date dd/mm/yy (alias)", ("int",) * 3, "info", "date")
    yield _info("h h", "server time HH:MM", ("int",) * 2, "info", "time")
    yield _info("v v", "firmware version", _S, "info", "firmware")
    yield _info("v h", "hardware / server version", _S, "info", "hardware")
    yield _info("GgV", "hardware generation 1/2", _I)
    yield _info("r a", "MAC address, 6 bytes", ("int",) * 6, "info", "serial")
    yield _info("ff", "free SD space, GB", _F, "info", "spaceleft")
    yield _info("L A", "alarm state 0/1", _I, "info", "alarme")
    # Téléinfo, numbered codes (meter n = 1..3)
    for n in (1, 2, 3):
        tic = f"tic{n}"
        yield _info(f"ea{n}", f"meter {n} ADCO", _S, tic, "ADCO")
        yield _info(f"es{n}", f"meter {n} ADCO (older name)", _S, tic, "ADCO")
        yield _info(f"eo{n}", f"meter {n} OPTARIF", _S, tic, "OPTARIF")
        yield _info(f"eS{n}", f"meter {n} ISOUSC (A)", _I, tic, "ISOUSC")
        yield _info(f"ed{n}", f"meter {n} contract code (wes.md §2.4)", _I)
        yield _info(f"en{n}", f"meter {n} user name", _S)
        yield _info(f"Tn{n}", f"meter {n} current period, text", _S, tic, "PTEC")
        yield _info(f"ip{n}", f"meter {n} apparent power (VA)", _I, tic, "PAP")
        yield _info(f"ij{n}", f"meter {n} injected apparent power (VA)", _I, tic, "PAPIJ")
        for p, suffix in ((0, ""), (1, "1"), (2, "2"), (3, "3")):
            yield _info(f"ii{n}{p}", f"meter {n} IINST{suffix} (A)", _I, tic, f"IINST{suffix}")
            yield _info(f"iM{n}{p}", f"meter {n} IMAX{suffix} (A)", _I, tic, f"IMAX{suffix}")
            if p:
                yield _info(f"iu{n}{p}", f"meter {n} voltage {p} (V)", _I, tic, f"TENSION{p}")
        yield _info(f"Te{n}", f"meter {n} PEJP", _I, tic, "PEJP")
        yield _info(f"TD{n}", f"meter {n} DEMAIN (0.84+)", _S, tic, "DEMAIN")
        yield _info(f"Td{n}", f"meter {n} DEMAIN (before 0.84)", _S, tic, "DEMAIN")
        yield _info(f"Tb{n}1", f"meter {n} BASE (Wh)", _I, tic, "BASE")
        yield _info(f"Tc{n}2", f"meter {n} HCHC (Wh)", _I, tic, "HCHC")
        yield _info(f"Tc{n}1", f"meter {n} HCHP (Wh)", _I, tic, "HCHP")
        yield _info(f"Tj{n}1", f"meter {n} EJPHN (Wh)", _I, tic, "EJPHN")
        yield _info(f"Tj{n}2", f"meter {n} EJPHPM (Wh)", _I, tic, "EJPHPM")
        for k, name in enumerate(_TIC_INDEX_NAMES, start=1):
            yield _info(f"Tr{n}{k}", f"meter {n} {name} (Wh)", _I, tic, name)
        yield _info(f"Tw{n}", f"meter {n} H_WeekEnd (Wh)", _I, tic, "H_WeekEnd")
        for k, name in enumerate(_SUPPLIER_NAMES, start=1):
            yield _info(f"Tm{n}{k}", f"meter {n} {name} (Wh)", _I, tic, name)
        yield _info(f"Ts{n}", f"meter {n} H_SUPER_CREUSE (Wh)", _I, tic, "H_SUPER_CREUSE")
        yield _info(
            f"Tp{n}",
            f"meter {n} PRODUCTEUR flag",
            _I,
            tic,
            "PRODUCTEUR",
            note="S5 (older firmware) used Tp<n> for the tomorrow colour code",
        )
        yield _info(f"ei{n}", f"meter {n} PRODUCTEUR flag", _I, tic, "PRODUCTEUR")
        for k in range(1, 10):
            yield _info(f"TI{n}{k}", f"meter {n} tariff index {k}", _I)
        yield _info(f"Ti{n}1", f"meter {n} index 1 as text", _S)
        yield _info(f"Ti{n}2", f"meter {n} index 2 as text", _S)
        for letter, period in (("j", "JOUR"), ("m", "MOIS"), ("a", "ANNEE")):
            yield _info(
                f"{letter}T{n}", f"meter {n} CONSO_{period} (kWh)", _F, tic, f"CONSO_{period}"
            )
            yield _info(
                f"{letter}E{n}", f"meter {n} COUT_{period} (EUR)", _F, tic, f"COUT_{period}"
            )
    # Téléinfo, older letter-case codes: lower case = meter 1, upper case = meter 2
    for meter, (e, t, i) in ((1, ("e", "T", "i")), (2, ("e", "T", "I"))):
        tic = f"tic{meter}"
        lower = meter == 1
        yield _info(f"{e} {'a' if lower else 'A'}", f"meter {meter} ADCO (old)", _S, tic, "ADCO")
        yield _info(
            f"{e} {'c' if lower else 'C'}", f"meter {meter} ISOUSC (old)", _I, tic, "ISOUSC"
        )
        yield _info(f"{e} {'b' if lower else 'B'}", f"meter {meter} subscription name", _S)
        yield _info(f"{e} {'d' if lower else 'D'}", f"meter {meter} contract code (old)", _I)
        yield _info(f"{e} {'n' if lower else 'N'}", f"meter {meter} user name (old)", _S)
        yield _info(
            f"{t} {'n' if lower else 'N'}", f"meter {meter} period name (old)", _S, tic, "PTEC"
        )
        yield _info(
            f"{t} {'p' if lower else 'P'}", f"meter {meter} raw PTEC (old)", _S, tic, "PTEC"
        )
        yield _info(f"{i} p", f"meter {meter} apparent power (old)", _I, tic, "PAP")
        for p, suffix in ((0, ""), (1, "1"), (2, "2"), (3, "3")):
            yield _info(f"{i}i{p}", f"meter {meter} IINST{suffix} (old)", _I, tic, f"IINST{suffix}")
            yield _info(f"{i}m{p}", f"meter {meter} IMAX{suffix} (old)", _I, tic, f"IMAX{suffix}")
    yield _info("II0", "meter 3 IINST (old)", _I, "tic3", "IINST")
    # older unnumbered index codes, meter 1 (lower case); printed as text on old firmware
    yield _info("Tb1", "meter 1 BASE (old, text)", _S, "tic1", "BASE")
    yield _info("Tc2", "meter 1 HCHC (old, text)", _S, "tic1", "HCHC")
    yield _info("Tc1", "meter 1 HCHP (old, text)", _S, "tic1", "HCHP")
    yield _info("Tj1", "meter 1 EJPHN (old, text)", _S, "tic1", "EJPHN")
    yield _info("Tj2", "meter 1 EJPHPM (old, text)", _S, "tic1", "EJPHPM")
    yield _info("TB1", "meter 2 BASE (old, text)", _S, "tic2", "BASE")
    for k, name in enumerate(_TIC_INDEX_NAMES, start=1):
        yield _info(f"Tr{k}", f"meter 1 {name} (old, text)", _S, "tic1", name)
        yield _info(f"TR{k}", f"meter 2 {name} (old, text)", _S, "tic2", name)
    yield _info("Ta1", "meter 1 INJECTION (S6 2019)", _I, "tic1", "INJECTION")
    # pulse counters n = 1..6
    for n in range(1, 7):
        yield _info(f"pp{n}", f"counter {n} pulses today", _I, "impulsion", f"PULSE{n}")
        yield _info(f"pd{n}", f"counter {n} flow", _F, "impulsion", f"DEBIT{n}")
        yield _info(f"pn{n}", f"counter {n} name", _S)
        yield _info(f"pu{n}", f"counter {n} pulses per unit", _I)
        yield _info(f"GpU{n}", f"counter {n} unit code (0 -, 1 l, 2 m3, 3 Wh, 4 kWh)", _I)
        yield _info(f"po{n}", f"counter {n} unit text", _S)
        for k in range(1, 5):
            yield _info(f"pU{n}{k}", f"counter {n} unit flag {k}", _S)
        for letter, period in (("j", "JOUR"), ("m", "MOIS"), ("a", "ANNEE")):
            yield _info(
                f"pe{letter}{n}", f"counter {n} COUT_{period}", _F, "impulsion", f"COUT_{period}{n}"
            )
    # clamps n = 1..4
    for n in range(1, 5):
        yield _info(f"P A{n}", f"clamp {n} current (A)", _F, "pince", f"I{n}")
        yield _info(f"P P{n}", f"clamp {n} apparent power (VA)", _I, "pince", f"PUISSANCE{n}")
        yield _info(f"PIt{n}", f"clamp {n} injection index (kWh)", _F)
        yield _info(f"PPU{n}", f"clamp {n} power text ('NNN VA' or 'NNN W cos phi 0.NN')", _S)
        yield _info(f"Pa{n}", f"clamp {n} enabled", _I)
        yield _info(f"Pn{n}", f"clamp {n} name", _S)
        for prefix, what in (
            ("PC", "CONSO"),
            ("Pe", "COUT"),
            ("PI", "INJEC"),
            ("Pg", "GAIN"),
            ("PM", "MAX"),
        ):
            for letter, period in (("j", "JOUR"), ("m", "MOIS"), ("a", "ANNEE")):
                element = f"{what}_{period}{n}"
                yield _info(f"{prefix}{letter}{n}", f"clamp {n} {element}", _F, "pince", element)
    yield _info(
        "PPT",
        "real power of clamps 1-4 (W)",
        ("int",) * 4,
        "pince",
        "WATT1",
        "WATT2",
        "WATT3",
        "WATT4",
    )
    yield _info("PVV", "mains voltage (V)", _I, "pince", "V")
    # 1-Wire probes: W<x>T<y> = probe 10x+y+1
    for x in range(3):
        for y in range(10):
            n = 10 * x + y + 1
            yield _info(f"W{x}T{y}", f"1-Wire probe {n} value", _F, "temp", f"SONDE{n}")
            yield _info(f"W{x}N{y}", f"1-Wire probe {n} name", _S)
            yield _info(f"W{x}S{y}", f"1-Wire probe {n} ROM id", ("int",) * 8)
            yield _info(f"W{x}t{y}", f"1-Wire probe {n} type", _S)
    yield _info("W Q", "number of temperature probes", _I)
    yield _info("W H", "number of humidity probes", _I)
    yield _info("WRn", "number of 1-Wire relay cards", _I)
    yield _info("WRo", "<relais1W> block of 1-Wire relay states", ("block",), "relais1W")
    yield _info("o W", "1-Wire relay cards states (XML)", ("block",))
    for k in range(1, 11):
        yield _info(f"WRS{k}", f"1-Wire relay card {k} ROM id", ("int",) * 8)
        yield _info(f"WRN{k}", f"1-Wire relay card {k} name", _S)
        yield _info(f"WRT{k}", f"1-Wire relay card {k} type (3/8)", _I)
        yield _info(f"WRD{k}", f"1-Wire relay card {k} image", _S)
    for k in range(10):
        for r in range(1, 9):
            yield _info(f"WR{k}{r}", f"1-Wire relay card {k + 1} relay {r} name", _S)
    # relays, inputs, analog, switches, variables
    for n in (1, 2):
        yield _info(f"o R{n}", f"relay {n} ON/OFF", _S, "relais", f"RELAIS{n}")
        yield _info(f"o E{n}", f"relay {n} 0/1", _I)
        yield _info(f"o r{n}", f"relay {n} 'checked'", _S)
        yield _info(f"l E{n}", f"input {n} 0/1", _I, "entree", f"ENTREE{n}")
        yield _info(f"l e{n}", f"input {n} ON/OFF", _S)
        yield _info(f"l I{n}", f"input {n} ON/OFF", _S)
        yield _info(f"l n{n}", f"input {n} name", _S)
    for n in range(3):
        yield _info(f"o n{n}", f"relay name (index {n})", _S, note="S6 uses n0/n1 for relays 1/2")
    yield _info(
        "la", "analog inputs 1-4 (V)", ("float",) * 4, "analogique", "AD1", "AD2", "AD3", "AD4"
    )
    for n in range(1, 5):
        yield _info(f"l A{n}", f"analog input {n} (raw int)", _I, "analogique", f"AD{n}")
        yield _info(f"l a{n}", f"analog input {n} name", _S)
    for n in range(1, 25):
        yield _info(f"lSE{n}", f"virtual switch {n} 0/1", _I, "switch_virtuel", f"SWITCH{n}")
    for n in range(1, 9):
        yield _info(f"l V{n}", f"virtual switch {n} 0/1 (old)", _I, "switch_virtuel", f"SWITCH{n}")
        yield _info(f"l N{n}", f"virtual switch {n} name", _S)
        yield _info(f"l v{n}", f"virtual switch {n} ON/OFF", _S)
        yield _info(f"l r{n}", f"virtual switch {n} 'checked'", _S)
        yield _info(f"Vv{n}", f"variable {n}", _F, "variables", f"VARIABLE{n}")
    yield _info("G w", "1-Wire enabled ('checked')", _S)
    yield _info("G W", "1-Wire CSV logging enabled ('checked')", _S)


def _new_only() -> Iterator[CodeInfo]:
    """Codes (or C types) of firmware ≥ V0.84A10."""
    fw = "≥V0.84A10"
    for n in (1, 2, 3):
        tic = f"tic{n}"
        yield _info(f"TC{n}", f"meter {n} H_CREUSE (Wh)", _I, tic, "H_CREUSE", firmware=fw)
        yield _info(
            f"TP{n}",
            f"meter {n} H_PLEINE (Wh)",
            _I,
            tic,
            "H_PLEINE",
            firmware=fw,
            note="S5 (older firmware) used TP<n> for the current period code",
        )
        yield _info(f"TJ{n}", f"meter {n} INJECTION (Wh)", _I, tic, "INJECTION", firmware=fw)
    for n in range(1, 7):
        yield _info(
            f"pIU{n}",
            f"counter {n} index, integer part + thousandths",
            ("int", "float"),
            "impulsion",
            f"INDEX{n}",
            firmware=fw,
        )
        for letter, period in (("j", "JOUR"), ("h", "VEILLE"), ("m", "MOIS"), ("a", "ANNEE")):
            yield _info(
                f"pC{letter}{n}",
                f"counter {n} CONSO_{period}",
                _F,
                "impulsion",
                f"CONSO_{period}{n}",
                firmware=fw,
            )
    for n in range(1, 5):
        yield _info(
            f"P W{n}", f"clamp {n} energy index (kWh)", _F, "pince", f"INDEX{n}", firmware=fw
        )
        yield _info(
            f"PPi{n}",
            f"clamp {n} injected energy index (kWh)",
            _F,
            "pince",
            f"INJECT{n}",
            firmware=fw,
            note="S3 reads PPi<n> as MODINJECT",
        )


def _old_only() -> Iterator[CodeInfo]:
    """Codes (or C types) of firmware before V0.84A10."""
    fw = "<V0.84A10"
    yield _info("TC2", "meter 2 HCHC (old, text)", _S, "tic2", "HCHC", firmware=fw)
    yield _info("TC1", "meter 2 HCHP (old, text)", _S, "tic2", "HCHP", firmware=fw)
    yield _info("TJ1", "meter 2 EJPHN (old, text)", _S, "tic2", "EJPHN", firmware=fw)
    yield _info("TJ2", "meter 2 EJPHPM (old, text)", _S, "tic2", "EJPHPM", firmware=fw)
    yield _info("TP1", "meter 1 current period code (S5)", _I, firmware=fw)
    yield _info("TP2", "meter 2 current period code (S5)", _I, firmware=fw)
    yield _info("TP3", "meter 3 current period code (S5)", _I, firmware=fw)
    for n in range(1, 7):
        yield _info(f"pIU{n}", f"counter {n} index", _F, "impulsion", f"INDEX{n}", firmware=fw)
        for letter, period in (("j", "JOUR"), ("h", "VEILLE"), ("m", "MOIS"), ("a", "ANNEE")):
            yield _info(
                f"pC{letter}{n}",
                f"counter {n} CONSO_{period}, text with unit",
                _S,
                "impulsion",
                f"CONSO_{period}{n}",
                firmware=fw,
            )
    for n in range(1, 5):
        yield _info(
            f"P W{n}", f"clamp {n} energy index (Wh)", _I, "pince", f"INDEX{n}", firmware=fw
        )
        yield _info(
            f"PPi{n}",
            f"clamp {n} injected energy index (Wh)",
            _I,
            "pince",
            f"INJECT{n}",
            firmware=fw,
        )


def _catalogue(*parts: Iterator[CodeInfo]) -> Mapping[str, CodeInfo]:
    table: dict[str, CodeInfo] = {}
    for part in parts:
        for info in part:
            table[info.code] = info
    return MappingProxyType(table)


#: Codes of firmware ≥ V0.84A10 (the default catalogue).
CODES: Mapping[str, CodeInfo] = _catalogue(_common(), _new_only())
#: Codes of firmware before V0.84A10.
LEGACY_CODES: Mapping[str, CodeInfo] = _catalogue(_common(), _old_only())


def _spaceless_index(codes: Mapping[str, CodeInfo]) -> Mapping[str, CodeInfo]:
    index: dict[str, CodeInfo] = {}
    for code, info in codes.items():
        index.setdefault(code, info)
    for code, info in codes.items():
        index.setdefault(code.replace(" ", ""), info)
    return MappingProxyType(index)


_INDEX = {False: _spaceless_index(CODES), True: _spaceless_index(LEGACY_CODES)}
_MAX_CODE_LEN = max(len(key) for table in _INDEX.values() for key in table)


def codes_for(firmware: Firmware | None) -> Mapping[str, CodeInfo]:
    """Return the catalogue of a firmware family (``None`` → the ≥ V0.84A10 catalogue)."""
    return LEGACY_CODES if _is_legacy(firmware) else CODES


def _is_legacy(firmware: Firmware | None) -> bool:
    return firmware is not None and str(firmware) == "V0.83H"


def match_code(env: str, *, firmware: Firmware | None = None) -> tuple[CodeInfo, str] | None:
    """Find the code at the start of a command text and return it with the format.

    ``env`` is the text after ``c `` (``"P A1 <I1>%.02f</I1>"``). TABs count as spaces; the
    longest known code (with or without its inner space) that prefixes ``env`` wins; one
    space after the code is dropped from the returned format. ``None`` if no code matches.
    """
    text = env.replace("\t", " ")
    index = _INDEX[_is_legacy(firmware)]
    for length in range(min(len(text), _MAX_CODE_LEN), 0, -1):
        info = index.get(text[:length])
        if info is not None:
            fmt = text[length:]
            return info, fmt[1:] if fmt.startswith(" ") else fmt
    return None
