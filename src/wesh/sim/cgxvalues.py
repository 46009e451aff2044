"""The values a simulated box gives to CGX codes, for the template engine of :mod:`wesh.wes.cgx`.

:class:`CgxValues` is the ``values`` callable of :func:`wesh.wes.cgx.render_template`:
given a canonical code (``"P A1"``, ``"ea1"``, ``"pIU2"``), it returns the tuple of values
the firmware would pass to ``printf``, typed as the code's C types in the catalogue of
the box's firmware (:func:`wesh.wes.codes.codes_for`). Most codes are found through the
stock element they fill (catalogue ``section``/``elements``: ``tic1``/``HCHP``), so a code
whose meaning changed between firmware families (``TC1``) gets the right value for each.
Codes the simulator has no value for return ``None`` (the engine prints nothing).

Placeholders of absent hardware (wes.md §2.4, §9): ``ADCO`` = ``Pas Dispo``, ``PTEC`` =
``TIC NDERR.``, ``DEMAIN`` = ``----``, ``OPTARIF`` empty (the template adds a ``.``),
zeros for numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from wesh.sim.model import BoxState, ClampState, CounterState, Firmware
from wesh.wes.codes import CodeInfo, codes_for

__all__ = ["PTEC_TEXT", "CgxValues"]

#: What the box prints in ``PTEC`` for the period the meter sends (wes.md §2.4).
PTEC_TEXT = {
    "TH..": "Toutes Heures",
    "HC..": "H. Creuses",
    "HP..": "H. Pleines",
    "HN..": "H. Normales",
    "PM..": "H. Pointe Mobile",
    "HCJB": "H. Creuse BLEU",
    "HPJB": "H. Pleine BLEU",
    "HCJW": "H. Creuse BLANC",
    "HPJW": "H. Pleine BLANC",
    "HCJR": "H. Creuse ROUGE",
    "HPJR": "H. Pleine ROUGE",
}
_CONTRACT_CODE = {"BASE": 0, "HC..": 1, "EJP.": 2, "BBR(": 3}
_UNIT_CODE = {"l": 1, "m3": 2, "Wh": 3, "kWh": 4}
_INDEX_ALIASES = {"H_CREUSE": "HCHC", "H_PLEINE": "HCHP"}
_NUMBERED = re.compile(r"^(?P<name>[A-Z_]+?)(?P<n>\d+)$")

Values = tuple[object, ...]


def _typed(info: CodeInfo, values: Values) -> Values:
    """Coerce values to the C types of ``info`` (int, float, str), keeping blocks as text."""
    out: list[object] = []
    for ctype, value in zip(info.ctypes, values, strict=False):
        if ctype == "int":
            out.append(round(value) if isinstance(value, int | float) else value)
        elif ctype == "float":
            out.append(float(value) if isinstance(value, int | float) else value)
        else:
            out.append(str(value) if not isinstance(value, str) else value)
    return tuple(out)


class CgxValues:
    """The CGX values of one :class:`BoxState` (callable: ``code → tuple | None``)."""

    def __init__(self, state: BoxState, *, firmware: Firmware | None = None) -> None:
        self.state = state
        self.firmware = firmware if firmware is not None else state.identity.firmware
        self._catalogue = codes_for(self.firmware)
        self._sections: dict[str, Callable[[str], Values | None]] = {
            "info": self._info,
            "impulsion": self._pulses,
            "pince": self._clamps,
            "temp": self._temp,
            "relais": self._relays,
            "entree": self._inputs,
            "analogique": self._analog,
            "switch_virtuel": self._switches,
            "variables": self._variables,
            "relais1W": lambda _element: ("",),
        }

    def __call__(self, code: str) -> tuple[object, ...] | None:
        """Return the values of ``code``, typed for its format, or ``None``."""
        info = self._catalogue.get(code)
        if info is None:
            return None
        values = self._special(info)
        if values is None and info.section is not None and info.elements:
            if len(info.elements) > 1:
                parts = [self._element(info.section, e) for e in info.elements]
                if any(p is None for p in parts):
                    return None
                values = tuple(v for p in parts if p is not None for v in p)
            else:
                values = self._element(info.section, info.elements[0])
        if values is None:
            return None
        if (
            info.ctypes == ("str",)
            and (info.section or "").startswith("tic")
            and isinstance(values[0], int)
        ):
            values = (f"{values[0]:09d}",)  # older firmware prints indexes as text
        if info.ctypes == ("int", "float") and len(values) == 1:
            values = _split_thousandths(values[0])
        return _typed(info, values)

    # -- sections -------------------------------------------------------------------

    def _element(self, section: str, element: str) -> Values | None:
        if section.startswith("tic") and section[3:].isdigit():
            return self._tic(int(section[3:]), element)
        handler = self._sections.get(section)
        return handler(element) if handler is not None else None

    def _info(self, element: str) -> Values | None:
        s = self.state
        t = s.box_time
        match element:
            case "date":
                return (t.day, t.month, t.year % 100)
            case "time":
                return (t.hour, t.minute)
            case "firmware":
                return (s.identity.firmware_text,)
            case "hardware":
                return (s.identity.hardware_text,)
            case "serial":
                mac = s.identity.mac
                return tuple(int(mac[i : i + 2], 16) for i in range(0, 12, 2))
            case "spaceleft":
                return (s.spaceleft_gb,)
            case "alarme":
                return (int(s.alarm),)
        return None

    def _tic(self, number: int, element: str) -> Values | None:
        if not 1 <= number <= len(self.state.tics):
            return None
        reading = self.state.tics[number - 1].reading
        if reading is None:
            return _absent_tic(element)
        phases = reading.phases
        match element:
            case "ADCO":
                return (reading.adco,)
            case "OPTARIF":
                return (reading.optarif,)
            case "ISOUSC":
                return (reading.isousc_a,)
            case "PTEC":
                return (PTEC_TEXT.get(reading.period, reading.period),)
            case "PAP":
                return (reading.power_va,)
            case "PAPIJ" | "PEJP" | "INJECTION" | "PRODUCTEUR":
                return (0,)
            case "DEMAIN":
                return ("----",)
            case "IINST":
                return (reading.iinst_a[0] if phases == 1 else 0,)
            case "IMAX":
                return (reading.imax_a[0] if phases == 1 else 0,)
        match = _NUMBERED.match(element)
        if match is not None and match["name"] in ("IINST", "IMAX", "TENSION"):
            phase = int(match["n"])
            series = {
                "IINST": reading.iinst_a,
                "IMAX": reading.imax_a,
                "TENSION": reading.voltages_v,
            }[match["name"]]
            if match["name"] != "TENSION" and phases == 1:
                return (0,)
            return (series[phase - 1] if phase <= len(series) else 0,)
        label = _INDEX_ALIASES.get(element, element)
        if element.isupper() or element in _INDEX_ALIASES or "_" in element:
            return (reading.indexes_wh.get(label, 0),)
        return None

    def _counter(self, number: int) -> CounterState | None:
        counters = self.state.counters
        return counters[number - 1] if 1 <= number <= len(counters) else None

    def _pulses(self, element: str) -> Values | None:
        match = _NUMBERED.match(element)
        if match is None:
            return None
        counter = self._counter(int(match["n"]))
        if counter is None:
            return None
        name = match["name"]
        if name == "PULSE":
            return (counter.pulses_today,)
        if name == "INDEX":
            return (counter.index,)
        if name == "DEBIT":
            return (counter.flow,)
        amounts = {
            "CONSO_JOUR": counter.pulses_today,
            "CONSO_VEILLE": counter.pulses_yesterday,
            "CONSO_MOIS": counter.pulses_month,
            "CONSO_ANNEE": counter.pulses_year,
        }
        if name in amounts:
            value = counter.in_units(amounts[name])
            return (value,) if self.firmware is Firmware.V084A10 else (_with_unit(counter, value),)
        if name.startswith("COUT_"):
            return (0.0,)
        return None

    def _clamp(self, number: int) -> ClampState | None:
        clamps = self.state.clamps
        return clamps[number - 1] if 1 <= number <= len(clamps) else None

    def _clamps(self, element: str) -> Values | None:
        if element == "V":
            return (self.state.voltage_v,)
        match = _NUMBERED.match(element)
        if match is None:
            return None
        clamp = self._clamp(int(match["n"]))
        if clamp is None:
            return None
        name = match["name"]
        new = self.firmware is Firmware.V084A10
        match name:
            case "I":
                return (clamp.current_a,)
            case "INDEX":
                return (clamp.index_wh / 1000,) if new else (clamp.index_wh,)
            case "INJECT":
                return (clamp.inject_wh / 1000,) if new else (clamp.inject_wh,)
            case "PUISSANCE":
                return (clamp.power_va,)
            case "WATT":
                return (clamp.power_w,)
        if name.startswith(("CONSO_", "COUT_", "INJEC_", "GAIN_", "MAX_")):
            return (0.0,)
        return None

    def _temp(self, element: str) -> Values | None:
        match = _NUMBERED.match(element)
        if match is None or match["name"] != "SONDE":
            return None
        value = self.state.probes.get(int(match["n"]))
        return None if value is None else (value,)

    def _relays(self, element: str) -> Values | None:
        match = _NUMBERED.match(element)
        relays = self.state.relays
        if match is None or not 1 <= int(match["n"]) <= len(relays):
            return None
        return ("ON" if relays[int(match["n"]) - 1] else "OFF",)

    def _inputs(self, element: str) -> Values | None:
        return _flag(element, self.state.inputs)

    def _switches(self, element: str) -> Values | None:
        return _flag(element, self.state.switches)

    def _analog(self, element: str) -> Values | None:
        match = _NUMBERED.match(element)
        analog = self.state.analog_v
        if match is None or not 1 <= int(match["n"]) <= len(analog):
            return None
        return (analog[int(match["n"]) - 1],)

    def _variables(self, element: str) -> Values | None:
        match = _NUMBERED.match(element)
        variables = self.state.variables
        if match is None or not 1 <= int(match["n"]) <= len(variables):
            return None
        return (variables[int(match["n"]) - 1],)

    # -- codes outside the stock page ------------------------------------------------

    def _special(self, info: CodeInfo) -> Values | None:
        code = info.code
        s = self.state
        tail = code[-1:]
        n = int(tail) if tail.isdigit() else 0
        prefix = code[:-1]
        if code in ("T p", "T P"):  # raw PTEC from the meter (old firmware)
            reading = s.tics[0 if code == "T p" else 1].reading
            return ("TIC NDERR.",) if reading is None else (reading.period,)
        if code == "GgV":
            return (2 if s.identity.hardware == "V2" else 1,)
        if code == "W Q":
            return (len(s.probes),)
        if code in ("W H", "WRn"):
            return (0,)
        if code in ("o W", "WRo"):
            return ("",)
        if prefix in ("pn", "pu", "GpU", "po"):
            counter = self._counter(n)
            if counter is None:
                return None
            config = counter.config
            return {
                "pn": (config.name,),
                "pu": (config.pulses_per_unit,),
                "GpU": (_UNIT_CODE.get(config.unit, 0),),
                "po": (config.unit,),
            }[prefix]
        if prefix in ("Pn", "Pa", "PPU", "PIt"):
            clamp = self._clamp(n)
            if clamp is None:
                return None
            if prefix == "PPU":
                text = (
                    f"{clamp.power_w} W cos phi {clamp.cos_phi:.2f}"
                    if clamp.power_va
                    else f"{clamp.power_va} VA"
                )
                return (text,)
            return {
                "Pn": (clamp.name,),
                "Pa": (int(clamp.enabled),),
                "PIt": (clamp.inject_wh / 1000,),
            }[prefix]
        if prefix in ("o E", "o r", "l e", "l I", "l v", "l r"):
            if prefix.startswith("o"):
                flags = s.relays
            elif prefix in ("l v", "l r"):
                flags = s.switches
            else:
                flags = s.inputs
            if not 1 <= n <= len(flags):
                return None
            on = flags[n - 1]
            if prefix == "o E":
                return (int(on),)
            if prefix in ("o r", "l r"):
                return ("checked" if on else "",)
            return ("ON" if on else "OFF",)
        if prefix in ("ed", "en") and 1 <= n <= len(s.tics):
            reading = s.tics[n - 1].reading
            if prefix == "en":
                return (f"Compteur {n}",)
            return (12 if reading is None else _CONTRACT_CODE.get(reading.optarif, 12),)
        return None


def _absent_tic(element: str) -> Values:
    """Return what the box prints for a TIC input without a meter."""
    match element:
        case "ADCO":
            return ("Pas Dispo",)
        case "OPTARIF":
            return ("",)
        case "PTEC":
            return ("TIC NDERR.",)
        case "DEMAIN":
            return ("----",)
    return (0,)


def _flag(element: str, flags: tuple[bool, ...]) -> Values | None:
    match = _NUMBERED.match(element)
    if match is None or not 1 <= int(match["n"]) <= len(flags):
        return None
    return (int(flags[int(match["n"]) - 1]),)


def _split_thousandths(value: object) -> Values:
    """``12.345`` → ``(12, 345.0)``: the two arguments of the ``%d.%03.0f`` pulse index."""
    number = float(value) if isinstance(value, int | float) else 0.0
    whole = int(number)
    return (whole, round((number - whole) * 1000, 6))


def _with_unit(counter: CounterState, value: float) -> str:
    """Old firmware prints pulse consumptions as text with the unit (``338.25 l``)."""
    return f"{value:.2f} {counter.config.unit}"
