"""M2M answers of a box model (pure): framing, values, and any junk line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.sim.box import SimulatedBox, make_identity
from wesh.sim.faults import RequestFaults
from wesh.sim.m2mlogic import ERROR, m2m_answer, m2m_value
from wesh.wes.m2m import LineDecoder, parse_reply

START = datetime(2025, 1, 15, 9, 30, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def common() -> SimulatedBox:
    box = SimulatedBox(make_identity(0, seed=2), start=START)
    box.advance_to(START + 3600)
    return box


def test_values_of_the_common_area_box(common: SimulatedBox) -> None:
    state = common.state()
    reading = state.tics[0].reading
    assert reading is not None
    assert m2m_value(common, "gT100") == str(reading.power_va)
    assert [m2m_value(common, f"gT10{p}") for p in (1, 2, 3)] == [str(a) for a in reading.iinst_a]
    assert [m2m_value(common, f"gT10{p}") for p in (4, 5, 6)] == ["60", "60", "60"]
    assert m2m_value(common, "gT110") == str(reading.indexes_wh["BASE"])
    assert m2m_value(common, "gT111") == "0"
    assert m2m_value(common, "gT116") == "Toutes Heures"
    assert m2m_value(common, "gT200") == "0"  # no meter on TIC2
    assert m2m_value(common, "gT216") == "TIC NDERR."
    gas = state.counters[0]
    assert m2m_value(common, "gP101") == f"{gas.index:.3f}"
    assert m2m_value(common, "gP102") == f"{gas.pulses_today / 100:.2f} m3"
    assert m2m_value(common, "gW002") == f"{state.probes[2]:.1f}"
    assert m2m_value(common, "gW004") == "----"


def test_unplugged_fault_applies_to_one_answer(common: SimulatedBox) -> None:
    assert m2m_value(common, "gT216", faults=RequestFaults(unplugged=frozenset({2}))) == (
        "TIC NDERR."
    )
    assert m2m_value(common, "gT116", faults=RequestFaults(unplugged=frozenset({1}))) == (
        "TIC NDERR."
    )
    assert m2m_value(common, "gT116") != "TIC NDERR."


def test_set_commands() -> None:
    box = SimulatedBox(make_identity(1, seed=2), start=START)
    assert m2m_value(box, "srl9=1") == "RLMB=11"
    assert m2m_value(box, "srl1=0") == "RLMB=01"
    assert m2m_value(box, "srl3=1") == ERROR
    assert m2m_value(box, "srl112=1") == "RLW2=00000000"
    assert m2m_value(box, "svs24=1") == "SW=" + "0" * 23 + "1"
    assert m2m_value(box, "svs25=1") == ERROR
    assert box.state().relays == (False, True)


@given(
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
)
def test_any_command_gets_an_echo_and_one_value(command: str) -> None:
    box = SimulatedBox(make_identity(1, seed=2), start=START)
    answer = m2m_answer(box, command)
    lines = LineDecoder().feed(answer.encode("latin-1"))
    assert answer.endswith("\r\n") and len(lines) == 2
    reply = parse_reply(command, lines)
    assert reply is not None and reply.echoed
    assert reply.value == m2m_value(box, command) or command.startswith(("srl", "svs"))
