"""The simulator's pages, read back by wesh's own parser and client, equal the model state."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from wesh.sim.clock import ManualClock
from wesh.sim.farm import run_simulators
from wesh.sim.model import BoxKind, BoxState, Firmware
from wesh.wes.client import WesClient, WesConfig
from wesh.wes.datacgx import parse_data_cgx
from wesh.wes.model import WesSnapshot

from .conftest import ADMIN

_PERIOD = {"TH..": "BASE", "HC..": "HC", "HP..": "HP"}


def _assert_matches(snapshot: WesSnapshot, state: BoxState) -> None:
    firmware = state.identity.firmware
    new = firmware is Firmware.V084A10
    assert snapshot.complete and not snapshot.warnings
    assert snapshot.firmware is firmware
    assert snapshot.info.firmware == state.identity.firmware_text
    assert snapshot.info.box_time == state.box_time.replace(second=0, microsecond=0)
    # TIC
    tic, reading = snapshot.tic[0], state.tics[0].reading
    assert reading is not None and tic.available
    assert tic.adco == reading.adco
    assert tic.optarif == reading.optarif.rstrip(".")
    assert tic.isousc_a == reading.isousc_a
    assert tic.period_code == _PERIOD[reading.period]
    assert tic.apparent_power_va == reading.power_va
    assert tic.phases == reading.phases
    assert tuple(tic.currents_a) == reading.iinst_a
    for label, wh in reading.indexes_wh.items():
        assert tic.indexes_wh[label.lower()] == wh
    assert len(snapshot.tic) == (3 if new else 2)  # tic3 appeared with V0.84A10
    assert not any(t.available for t in snapshot.tic[1:])
    # pulse counters
    for parsed, counter in zip(snapshot.pulses, state.counters, strict=True):
        assert parsed.pulses_today == counter.pulses_today
        expected = round(counter.index, 3) if new else float(f"{counter.index:.0f}")
        assert parsed.index == pytest.approx(expected, abs=1e-9)
    # clamps and voltage
    for parsed_clamp, clamp in zip(snapshot.clamps, state.clamps, strict=True):
        assert parsed_clamp.current_a == clamp.current_a
        assert parsed_clamp.index_wh == clamp.index_wh
    assert snapshot.voltage_v == (state.voltage_v or None)
    # probes, relays, switches, variables
    assert dict(snapshot.temperatures) == dict(state.probes)
    assert tuple(snapshot.relays[n] for n in sorted(snapshot.relays)) == state.relays
    assert tuple(snapshot.switches[n] for n in sorted(snapshot.switches)) == state.switches
    assert tuple(snapshot.variables[n] for n in sorted(snapshot.variables)) == state.variables
    assert tuple(snapshot.inputs[n] for n in sorted(snapshot.inputs)) == state.inputs


@pytest.mark.parametrize("firmware", list(Firmware))
async def test_stock_page_round_trips_through_the_parser(
    firmware: Firmware, clock: ManualClock
) -> None:
    async with (
        run_simulators(3, base_port=0, seed=21, clock=clock, firmware=firmware) as farm,
        aiohttp.ClientSession() as session,
    ):
        farm.boxes[1].model.set_relay(2, True)
        farm.boxes[1].model.set_switch(5, True)
        farm.boxes[1].model.set_variable(3, 12.5)
        for step in range(3):
            clock.advance(3600 * 7 + 61 * step)
            for handle in farm.boxes:
                async with session.get(handle.url + "/data.cgx", headers=ADMIN) as response:
                    page = await response.read()
                state = handle.state
                assert state.identity.kind is (
                    BoxKind.COMMON if handle.index == 0 else BoxKind.DWELLING
                )
                _assert_matches(parse_data_cgx(page), state)


async def test_wes_client_reads_the_simulator(clock: ManualClock) -> None:
    async with run_simulators(2, base_port=0, seed=3, clock=clock) as farm:
        handle = farm.boxes[1]
        config = WesConfig(
            host=handle.http.host,
            port=handle.http.port,
            m2m_port=handle.m2m.port if handle.m2m else 1500,
            expected_mac=handle.model.identity.mac,
        )
        async with WesClient(config) as client:
            snapshot = await client.fetch_snapshot()
            _assert_matches(snapshot, handle.state)
            await client.set_relay(1, True)
            assert handle.state.relays == (True, False)
            clock.advance(600)
            readings = {r.path: r for r in await client.fetch_readings()}
        state = handle.state
        assert readings["temp.1"].value == state.probes[1]
        assert readings["impulsion.1.index"].value == state.counters[0].index
        assert readings["relais.1"].value is True
        box_time = readings["temp.1"].box_time
        assert box_time is not None
        assert state.box_time - box_time < timedelta(minutes=1)
