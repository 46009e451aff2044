r"""Answers of a simulated box to M2M commands (wes.md §6), as text: pure logic, no I/O.

Framing (inferred from jwes, wes.md §6.1): the box echoes the command line, then sends
``=`` and the value; every line ends with CRLF::

    client: gT100\n                box: gT100\r\n=1840\r\n
    client: srl1=1\n               box: srl1=1\r\n=RLMB=10\r\n

Commands (wes.md §6.2, §6.3)::

    gI000          MAC address, 12 hex digits
    gT<m>00        TIC m apparent power (VA)
    gT<m>0<p>      p = 1..3: current of phase p (A); p = 4..6: IMAX of phase p-3
    gT<m>1<k>      k = 0..5: tariff index k+1 in the meter's order (Wh, no leading zeros)
    gT<m>16        current period name; gT<m>17 tomorrow's colour
    gP<c>0<k>      counter c: k = 0 flow, 1 index, 2 day, 3 month, 4 year (with unit)
    gW<digits>     1-Wire probe number <digits> (gW001 and gW0001 are probe 1)
    gr00<n>        relay n state, 1 or 0
    gr<k>09        all relays of 1-Wire card k (no card fitted: 00000000)
    srl<n>=0|1     set relay n (1, 2; 9 both); reply RLMB=<relay1><relay2>
    srl1<k><r>=v   set a 1-Wire relay (no card fitted: RLW<k+1>=00000000)
    svs<n>=0|1     set virtual switch n; reply SW=<one digit per switch>

An unknown or malformed command gets the echo then ``=ERR`` (our choice).
"""

from __future__ import annotations

import re

from wesh.errors import UsageError
from wesh.sim.box import SimulatedBox
from wesh.sim.cgxvalues import PTEC_TEXT
from wesh.sim.faults import NO_FAULTS, RequestFaults
from wesh.sim.model import BoxState

__all__ = ["EOL", "ERROR", "m2m_answer", "m2m_value"]

EOL = "\r\n"
ERROR = "ERR"
_GET_TIC = re.compile(r"^gT([1-3])([0-2])([0-9])$")
_GET_PULSE = re.compile(r"^gP([1-6])0([0-4])$")
_GET_PROBE = re.compile(r"^gW(\d{2,4})$")
_GET_RELAY = re.compile(r"^gr00([12])$")
_GET_CARD = re.compile(r"^gr([1-9])09$")
_SET_RELAY = re.compile(r"^srl(\d{1,3})=([01])$")
_SET_SWITCH = re.compile(r"^svs(\d{1,2})=([01])$")


def _tic_value(state: BoxState, meter: int, group: int, item: int) -> str:
    reading = state.tics[meter - 1].reading
    if group == 0:
        if reading is None:
            return "0"
        if item == 0:
            return str(reading.power_va)
        series = reading.iinst_a if item <= 3 else reading.imax_a
        phase = item if item <= 3 else item - 3
        return str(series[phase - 1]) if phase <= len(series) else "0"
    if group == 1:
        if item <= 5:
            indexes = list(reading.indexes_wh.values()) if reading is not None else []
            return str(indexes[item]) if item < len(indexes) else "0"
        if item == 6:
            return (
                "TIC NDERR." if reading is None else PTEC_TEXT.get(reading.period, reading.period)
            )
        if item == 7:
            return "----"
        return ERROR
    if item in (0, 1):  # day total kWh, day cost €: not tracked
        return "0"
    return ERROR


def _pulse_value(state: BoxState, counter: int, item: int) -> str:
    if counter > len(state.counters):
        return ERROR
    c = state.counters[counter - 1]
    if item == 0:
        return f"{c.flow:.2f}"
    if item == 1:
        return f"{c.index:.3f}"
    pulses = (c.pulses_today, c.pulses_month, c.pulses_year)[item - 2]
    return f"{c.in_units(pulses):.2f} {c.config.unit}"


def m2m_value(model: SimulatedBox, command: str, *, faults: RequestFaults = NO_FAULTS) -> str:
    """Return the value part of the answer to ``command`` (``ERR`` when not understood).

    Set commands change ``model``.
    """
    state = model.state(skew_s=faults.skew_s, unplugged=faults.unplugged)
    if command == "gI000":
        return state.identity.mac
    if match := _GET_TIC.match(command):
        return _tic_value(state, int(match[1]), int(match[2]), int(match[3]))
    if match := _GET_PULSE.match(command):
        return _pulse_value(state, int(match[1]), int(match[2]))
    if match := _GET_PROBE.match(command):
        value = state.probes.get(int(match[1]))
        return "----" if value is None else f"{value:.1f}"
    if match := _GET_RELAY.match(command):
        return str(int(state.relays[int(match[1]) - 1]))
    if _GET_CARD.match(command):
        return "0" * 8
    if match := _SET_RELAY.match(command):
        number, on = int(match[1]), match[2] == "1"
        if number >= 100:
            return f"RLW{(number // 10) % 10 + 1}=" + "0" * 8
        try:
            model.set_relay(number, on)
        except UsageError:
            return ERROR
        return "RLMB=" + "".join(str(int(r)) for r in model.state().relays)
    if match := _SET_SWITCH.match(command):
        try:
            model.set_switch(int(match[1]), match[2] == "1")
        except UsageError:
            return ERROR
        return "SW=" + "".join(str(int(s)) for s in model.state().switches)
    return ERROR


def m2m_answer(model: SimulatedBox, command: str, *, faults: RequestFaults = NO_FAULTS) -> str:
    """Return the whole answer to one command line: the echo, then ``=value``, CRLF each."""
    command = command.strip()
    return f"{command}{EOL}={m2m_value(model, command, faults=faults)}{EOL}"
