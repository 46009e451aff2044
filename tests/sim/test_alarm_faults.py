"""Faults that feed the alert engine: leak, burst, temp, humidity, overload, dead."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.sim.box import SimulatedBox, make_identity
from wesh.sim.clock import PARIS, ManualClock
from wesh.sim.device import VirtualBox
from wesh.sim.farm import SimFarm, run_simulators
from wesh.sim.faults import Fault, FaultKind, FaultSpec, FaultState
from wesh.wes.datacgx import parse_data_cgx

from .conftest import ADMIN

# 2025-01-15 00:00 Paris: a winter night (no water is drawn from 23:00 to 06:00)
MIDNIGHT = datetime(2025, 1, 15, 0, 0, tzinfo=PARIS).timestamp()
DWELLING = 1  # box 1 of a farm is a dwelling, box 0 the common areas


def pair(index: int = DWELLING, seed: int = 3) -> tuple[SimulatedBox, SimulatedBox]:
    """Two identical boxes: one will leak, the other is the reference."""
    return (
        SimulatedBox(make_identity(index, seed=seed), start=MIDNIGHT),
        SimulatedBox(make_identity(index, seed=seed), start=MIDNIGHT),
    )


def pulses(box: SimulatedBox, counter: int = 1) -> int:
    return box.state().counters[counter - 1].index_pulses


# ------------------------------------------------------------------------------ grammar


def test_parse_the_new_faults_and_their_defaults() -> None:
    assert Fault.parse("leak") == Fault(FaultKind.LEAK, 60.0)
    assert Fault.parse("leak=120/2") == Fault(FaultKind.LEAK, 120.0, number=2)
    assert Fault.parse("water_leak=7.5") == Fault(FaultKind.LEAK, 7.5)
    assert Fault.parse("burst") == Fault(FaultKind.BURST, 1200.0)
    assert Fault.parse("burst=800/1@0.1") == Fault(FaultKind.BURST, 800.0, 0.1, 1)
    assert Fault.parse("temp=8") == Fault(FaultKind.TEMP, 8.0)
    assert Fault.parse("temperature=-3.5/2") == Fault(FaultKind.TEMP, -3.5, number=2)
    assert Fault.parse("humidity=80") == Fault(FaultKind.HUMIDITY, 80.0)
    assert Fault.parse("rh=75/2").kind is FaultKind.HUMIDITY
    assert Fault.parse("overload") == Fault(FaultKind.OVERLOAD)
    assert Fault.parse("tic_overload=2") == Fault(FaultKind.OVERLOAD, 2)
    assert Fault.parse("dead") == Fault(FaultKind.DEAD)
    assert Fault.parse("unreachable@0.5") == Fault(FaultKind.DEAD, probability=0.5)
    assert FaultKind.BURST.is_event and not FaultKind.LEAK.is_event
    assert {k for k in FaultKind if k.is_state} == {
        FaultKind.LEAK,
        FaultKind.TEMP,
        FaultKind.HUMIDITY,
        FaultKind.OVERLOAD,
    }


@pytest.mark.parametrize(
    "text",
    [
        "1:leak=0",
        "1:leak=-5",
        "1:leak=200000",
        "1:leak=60/0",
        "1:leak=60/7",
        "1:leak=60/x",
        "1:leak=/2",
        "1:leak=abc",
        "1:leak@0.5",  # a state takes no probability
        "1:temp",
        "1:temp=200",
        "1:temp=8/31",
        "1:temp=8@0.2",
        "1:humidity=101",
        "1:humidity=-1",
        "1:overload=4",
        "1:overload@0.5",
        "1:dead=1",
        "1:reset=1/2",
        "1:burst=0",
        "1:leak=60/²",  # a digit for str.isdigit, not for int()
        "1:overload=²",
        "1:reset=²",
        "²:http500",
    ],
)
def test_bad_new_faults_are_refused_with_their_rule(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        FaultSpec.parse(text)
    assert caught.value.where == "faults rule 1"


@pytest.mark.parametrize(
    "text",
    ["3:leak=60,temp=8;0:humidity=75/2,overload=2", "*:burst=500/2@0.01,dead@0.5;4:dead"],
)
def test_canonical_text_round_trips(text: str) -> None:
    spec = FaultSpec.parse(text)
    assert FaultSpec.parse(str(spec)) == spec


@given(
    kind=st.sampled_from(["leak", "burst", "temp", "humidity"]),
    amount=st.decimals(min_value=1, max_value=100, places=1),
    number=st.none() | st.integers(1, 6),
)
def test_measure_faults_round_trip(kind: str, amount: object, number: int | None) -> None:
    text = f"{kind}={amount}" + ("" if number is None else f"/{number}")
    fault = Fault.parse(text)
    assert fault.number == number
    assert fault.value == float(str(amount))
    assert Fault.parse(str(fault)) == fault


def test_state_faults_are_not_drawn_per_request() -> None:
    state = FaultState.seeded(1, 1)
    for text in ("leak", "temp=8", "humidity=90", "overload"):
        state.add(Fault.parse(text))
    before = state.rng.getstate()
    draw = state.draw()
    assert draw == FaultState.seeded(1, 1).draw()  # nothing: the states act on the model
    assert state.rng.getstate() == before  # no draw consumed: other faults' luck unchanged
    assert [f.kind for f in state.states()] == [
        FaultKind.LEAK,
        FaultKind.TEMP,
        FaultKind.HUMIDITY,
        FaultKind.OVERLOAD,
    ]
    assert not state.dead
    state.add(Fault.parse("dead"))
    assert state.dead and state.draw().dead


# ------------------------------------------------------------------------------ leak and burst


@settings(max_examples=40, deadline=None)
@given(
    litres_h=st.integers(1, 5000),
    steps=st.lists(st.integers(1, 5400), min_size=1, max_size=8),
)
def test_a_leak_adds_exactly_its_volume_whatever_the_polling(
    litres_h: int, steps: list[int]
) -> None:
    leaking, reference = pair()
    leaking.set_leaks({1: litres_h})
    t = MIDNIGHT
    for step in steps:
        t += step
        leaking.advance_to(t)
    reference.advance_to(t)
    elapsed_s = int(t - MIDNIGHT)
    assert pulses(leaking) - pulses(reference) == litres_h * elapsed_s // 3600
    assert pulses(leaking, 2) == pulses(reference, 2)  # hot water untouched


def test_the_cold_water_index_rises_every_night_hour_with_a_leak() -> None:
    leaking, reference = pair()
    leaking.set_leaks({1: 60})
    for hour in range(1, 6):  # 00:00-05:00 Paris
        before = pulses(leaking), pulses(reference)
        leaking.advance_to(MIDNIGHT + hour * 3600)
        reference.advance_to(MIDNIGHT + hour * 3600)
        assert pulses(reference) == before[1]  # nobody draws water at night
        assert pulses(leaking) == before[0] + 60
    state = leaking.state().counters[0]
    assert state.flow == pytest.approx(1.0)  # 60 l/h = 1 l/min
    leaking.set_leaks({})
    leaking.advance_to(MIDNIGHT + 6 * 3600 - 60)
    assert pulses(leaking) - pulses(reference) == 300
    assert leaking.state().counters[0].flow == 0


def test_a_leak_on_another_counter_and_on_a_gas_counter_in_m3() -> None:
    leaking, reference = pair()
    leaking.set_leaks({2: 30})
    leaking.advance_to(MIDNIGHT + 7200)
    reference.advance_to(MIDNIGHT + 7200)
    assert pulses(leaking, 2) - pulses(reference, 2) == 60
    assert pulses(leaking, 1) == pulses(reference, 1)
    common, common_ref = pair(index=0)  # counter 1: gas, 100 pulses per m3
    common.set_leaks({1: 60})
    common.advance_to(MIDNIGHT + 36_000)
    common_ref.advance_to(MIDNIGHT + 36_000)
    gas, gas_ref = common.state().counters[0], common_ref.state().counters[0]
    assert gas.config.unit == "m3"
    assert gas.index_pulses - gas_ref.index_pulses == 60  # 600 l = 0.6 m3
    assert gas.index - gas_ref.index == pytest.approx(0.6)


def test_a_burst_spreads_its_volume_over_the_next_hour_then_stops() -> None:
    bursting, reference = pair()
    bursting.advance_to(MIDNIGHT + 2 * 3600 + 1234)
    bursting.add_burst(1, 1000)
    start = MIDNIGHT + 2 * 3600 + 1234
    bursting.advance_to(start + 1800)
    reference.advance_to(start + 1800)
    assert pulses(bursting) - pulses(reference) == 500
    assert bursting.state().counters[0].flow == pytest.approx(1000 / 60)
    bursting.advance_to(start + 7200)
    reference.advance_to(start + 7200)
    assert pulses(bursting) - pulses(reference) == 1000
    assert bursting.state().counters[0].flow == 0
    with pytest.raises(UsageError):
        bursting.add_burst(9, 10)


def test_leak_and_burst_faults_act_from_the_clock_time_on() -> None:
    start = datetime.fromtimestamp(MIDNIGHT, tz=UTC)
    clock = ManualClock(start)
    box = VirtualBox(SimulatedBox(make_identity(1, seed=3), start=MIDNIGHT), clock=clock)
    reference = SimulatedBox(make_identity(1, seed=3), start=MIDNIGHT)
    clock.advance(3600)  # an hour passes before the leak starts: it must not count
    box.set_fault("leak=90")
    clock.advance(7200)
    box.set_fault("burst=400")
    assert box.describe()["faults"] == ["leak=90"]  # the burst is an event: done
    clock.advance(3600)
    box.clear_faults("leak")
    clock.advance(3600)
    reference.advance_to(clock.timestamp())
    leaked = box.state().counters[0].index_pulses - reference.state().counters[0].index_pulses
    assert leaked == 90 * 3 + 400


# ------------------------------------------------------------------------------ probes, overload


def _virtual(index: int) -> tuple[VirtualBox, ManualClock]:
    clock = ManualClock(datetime.fromtimestamp(MIDNIGHT, tz=UTC))
    box = SimulatedBox(make_identity(index, seed=3), start=MIDNIGHT)
    return VirtualBox(box, clock=clock), clock


def test_temp_and_humidity_faults_fix_the_probes_until_cleared() -> None:
    box, clock = _virtual(DWELLING)
    normal = dict(box.state().probes)
    box.set_fault("temp=8")
    clock.advance(600)
    probes = box.state().probes
    assert probes[1] == 8.0 and probes[2] != 8.0  # probe 2 is the humidity probe
    box.set_fault("humidity=82.5")
    assert box.state().probes == {1: 8.0, 2: 82.5}
    box.set_fault("temp=31")  # the later fault wins
    assert box.state().probes[1] == 31.0
    box.clear_faults("temp")
    assert box.state().probes[1] == pytest.approx(normal[1], abs=3)
    assert box.state().probes[2] == 82.5
    box.clear_faults()
    assert box.state().probes[2] != 82.5


def test_temp_on_the_common_areas_fixes_every_probe_or_one() -> None:
    box, _ = _virtual(0)
    box.set_fault("temp=8")
    assert box.state().probes == {1: 8.0, 2: 8.0, 3: 8.0}
    box.clear_faults()
    box.set_fault("temp=-2/3")  # the outdoor probe only
    probes = box.state().probes
    assert probes[3] == -2.0 and probes[1] != -2.0


def test_overload_raises_iinst_above_isousc_in_the_page() -> None:
    box, clock = _virtual(DWELLING)
    box.set_fault("overload")
    clock.advance(60)
    reading = box.state().tics[0].reading
    assert reading is not None
    assert reading.iinst_a[0] > reading.isousc_a
    assert reading.power_va >= 230 * reading.iinst_a[0]
    page = box.http("GET", "/data.cgx", {}, authorization=ADMIN["Authorization"]).body
    tic = parse_data_cgx(page).tic[0]
    assert tic.isousc_a == reading.isousc_a
    assert tic.currents_a[0] == reading.iinst_a[0]
    box.clear_faults("overload")
    clock.advance(60)
    reading = box.state().tics[0].reading
    assert reading is not None and reading.iinst_a[0] <= reading.isousc_a


def test_overload_of_a_three_phase_meter_is_on_phase_1() -> None:
    box, _ = _virtual(0)
    box.set_fault("overload=1")
    reading = box.state().tics[0].reading
    assert reading is not None and reading.phases == 3
    assert reading.iinst_a[0] > reading.isousc_a >= max(reading.iinst_a[1:])


# ------------------------------------------------------------------------------ on a running farm


async def test_runtime_faults_through_the_admin_api(clock: ManualClock) -> None:
    async with (
        run_simulators(2, base_port=0, seed=4, clock=clock, admin_port=0) as farm,
        aiohttp.ClientSession() as session,
    ):
        assert farm.admin_url is not None
        url = f"{farm.admin_url}/boxes/1/faults"
        async with session.post(url, data="temp=8,leak=120,overload") as response:
            assert response.status == 200
            assert (await response.json())["faults"] == ["temp=8", "leak=120", "overload"]
        async with session.post(url, data="leak@0.5") as response:
            assert response.status == 400
        box = farm.boxes[1]
        before = box.state.counters[0].index_pulses
        clock.advance(1800)
        async with session.get(box.url + "/data.cgx", headers=ADMIN) as response:
            snapshot = parse_data_cgx(await response.read())
        assert snapshot.tic[0].currents_a[0] > (snapshot.tic[0].isousc_a or 0)
        assert box.state.probes[1] == 8.0
        assert box.state.counters[0].index_pulses - before >= 60
        async with session.delete(url, params={"kind": "overload"}) as response:
            assert (await response.json())["faults"] == ["temp=8", "leak=120"]
        async with session.delete(url, params={"kind": "water_leak"}) as response:
            assert (await response.json())["faults"] == ["temp=8"]  # an alias works too
        async with session.delete(url, params={"kind": "flood"}) as response:
            assert response.status == 400
            assert "unknown fault" in await response.text()


async def test_a_dead_box_closes_every_connection(farm: SimFarm) -> None:
    box = farm.boxes[1]
    box.set_fault("dead")
    assert box.box.down
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(box.url + "/data.cgx", headers=ADMIN) as response:
                await response.read()
    assert box.m2m is not None
    reader, writer = await asyncio.open_connection(box.m2m.host, box.m2m.port)
    writer.write(b"gI000\r\n")
    with contextlib.suppress(ConnectionResetError):  # closed or reset: unanswered
        assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    assert box.ftp is not None
    reader, writer = await asyncio.open_connection(box.ftp.host, box.ftp.port)
    with contextlib.suppress(ConnectionResetError):  # no "220" welcome line
        assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    box.clear_faults("dead")
    async with (
        aiohttp.ClientSession() as session,
        session.get(box.url + "/data.cgx", headers=ADMIN) as response,
    ):
        assert response.status == 200


def test_dead_with_a_probability_is_reproducible() -> None:
    def run() -> list[bool]:
        box, _ = _virtual(DWELLING)
        box.set_fault("dead@0.5")
        assert not box.down
        return [box.draw_faults().dead for _ in range(30)]

    first = run()
    assert first == run()
    assert True in first and False in first


def test_parse_time_unit_sanity() -> None:
    # the night of the tests really is a night in Paris
    local = datetime.fromtimestamp(MIDNIGHT, tz=PARIS)
    assert (local.hour, local.minute) == (0, 0)
    assert local.utcoffset() == timedelta(hours=1)


def test_without_the_fault_the_meter_never_shows_an_overload() -> None:
    """The load model exceeds ISOUSC for a minute now and then: the page never shows it."""
    start = datetime(2025, 1, 13, 0, 0, tzinfo=PARIS).timestamp()
    box = SimulatedBox(make_identity(5, seed=1), start=start)
    spike = start + 19 * 3600 + 21 * 60  # 19:21 Paris: this flat's load is 36 A on 30 A
    box.advance_to(spike)
    raw = box._meter.reading()
    assert raw.iinst_a[0] > raw.isousc_a  # the model does exceed...
    shown = box.state().tics[0].reading
    assert shown is not None
    assert shown.iinst_a[0] == shown.isousc_a == raw.isousc_a  # ...the meter says no more
    assert shown.power_va <= 230 * shown.isousc_a
    box.overloaded = {1}
    shown = box.state().tics[0].reading
    assert shown is not None and shown.iinst_a[0] >= raw.iinst_a[0]
