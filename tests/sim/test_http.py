"""HTTP side of the simulated boxes, on loopback: auth, paths, templates, commands, faults."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
import pytest
from lxml import etree

from wesh.errors import DecodeError
from wesh.sim.clock import PARIS, ManualClock
from wesh.sim.farm import SimFarm, run_simulators
from wesh.wes.datacgx import parse_data_cgx

from .conftest import ADMIN, USER, FakeMonotonic, basic


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
    async with session.get(url, headers=headers) as response:
        return response.status, response.headers, await response.read()


def _parses(body: bytes) -> bool:
    try:
        etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return True


# -- authentication -----------------------------------------------------------------------


async def test_no_credentials_get_401_with_the_wes_realm(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    url = farm.boxes[0].url + "/data.cgx"
    for headers in (None, basic("admin", "nope"), {"Authorization": "Basic !!!"}):
        status, response_headers, _ = await _get(session, url, headers)
        assert status == 401
        assert "serveur WES" in response_headers["WWW-Authenticate"]
        assert response_headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_user_account_reads_but_cannot_administer(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    url = farm.boxes[1].url
    assert (await _get(session, url + "/index.htm", USER))[0] == 200
    assert (await _get(session, url + "/", USER))[0] == 200
    assert (await _get(session, url + "/data.cgx", USER))[0] == 200
    assert (await _get(session, url + "/INFOCFG.HTM", USER))[0] == 403
    assert (await _get(session, url + "/INFOCFG.HTM", ADMIN))[0] == 200
    assert (await _get(session, url + "/RL.cgi?rl1=ON", USER))[0] == 403
    assert farm.boxes[1].state.relays == (False, False)


# -- paths and content ------------------------------------------------------------------


async def test_paths_are_case_insensitive_and_cgx_is_xml(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    base = farm.boxes[2].url
    bodies = set()
    for path in ("/data.cgx", "/DATA.CGX", "/DATA.cgx", "/Data.Cgx"):
        status, headers, body = await _get(session, base + path, ADMIN)
        assert status == 200
        assert headers["Content-Type"] == "text/xml"
        bodies.add(body)
    assert len(bodies) == 1
    body = bodies.pop()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8" ?>\n<data>\n')
    assert _parses(body)
    assert (await _get(session, base + "/nothing.cgx", ADMIN))[0] == 404
    assert (await _get(session, base + "/a:b%3F.cgx", ADMIN))[0] == 404
    assert (await _get(session, base + "/../../DATA.CGX", ADMIN))[0] == 200
    status, headers, _ = await _get(session, base + "/webprog/cgx/pceval.cgx", ADMIN)
    assert status == 200 and headers["Content-Type"] == "text/xml"


async def test_status_line_is_exactly_http11_200_ok(farm: SimFarm) -> None:
    endpoint = farm.boxes[0].http
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    token = ADMIN["Authorization"]
    writer.write(
        f"GET /data.cgx HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.rstrip().endswith(b"</data>")


async def test_a_template_written_on_the_card_is_served_at_once(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[2]
    template = "t <mine>\nc ip1 <PAP>%d</PAP>\nc W0T0 <T>%.01f</T>\nt </mine>\n.\nignored\n"
    box.box.card.write("/WEBPROG/CGX/MINE.CGX", template.encode())
    status, headers, body = await _get(session, box.url + "/webprog/cgx/mine.cgx", ADMIN)
    state = box.state
    reading = state.tics[0].reading
    assert reading is not None
    assert status == 200 and headers["Content-Type"] == "text/xml"
    assert body.decode() == (
        f"<mine>\n<PAP>{reading.power_va}</PAP>\n<T>{state.probes[1]:.1f}</T>\n</mine>\n"
    )


async def test_a_broken_template_is_a_500_not_a_crash(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[0]
    box.box.card.write("/BAD.CGX", b"x what is this\n")
    assert (await _get(session, box.url + "/bad.cgx", ADMIN))[0] == 500
    assert (await _get(session, box.url + "/data.cgx", ADMIN))[0] == 200


# -- commands -----------------------------------------------------------------------------


async def test_relay_and_switch_commands_change_state(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[2]
    base = box.url
    status, headers, body = await _get(session, base + "/RL.cgx?rl1=ON", ADMIN)
    assert status == 200 and headers["Content-Type"] == "text/xml"
    assert b"<RELAIS1>ON</RELAIS1>" in body and b"<RELAIS2>OFF</RELAIS2>" in body
    assert box.state.relays == (True, False)
    await _get(session, base + "/RL.cgi?frl=2", ADMIN)
    assert box.state.relays == (True, True)
    await _get(session, base + "/rl.cgi?rl9=OFF", ADMIN)
    assert box.state.relays == (False, False)
    await _get(session, base + "/AJAX.cgx?vs3=ON", ADMIN)
    await _get(session, base + "/ajax.CGX?fvs=24", ADMIN)
    switches = box.state.switches
    assert switches[2] and switches[23] and sum(switches) == 2
    await _get(session, base + "/AJAX.cgx?alarme=ON", ADMIN)
    assert box.state.alarm
    # bad values are ignored, the box still answers
    assert (await _get(session, base + "/RL.cgi?rl1=MAYBE&frl=7", ADMIN))[0] == 200
    assert box.state.relays == (False, False)
    # the data page shows the new state
    _, _, page = await _get(session, base + "/data.cgx", ADMIN)
    snapshot = parse_data_cgx(page)
    assert snapshot.switches[3] is True and snapshot.switches[1] is False


async def test_post_form_commands(farm: SimFarm, session: aiohttp.ClientSession) -> None:
    box = farm.boxes[1]
    async with session.post(box.url + "/RL.cgi", data={"rl2": "ON"}, headers=ADMIN) as response:
        assert response.status == 200
    assert box.state.relays == (False, True)


async def test_counter_reset_commands(farm: SimFarm, session: aiohttp.ClientSession) -> None:
    dwelling, common = farm.boxes[2], farm.boxes[0]
    assert dwelling.state.counters[0].index_pulses > 0
    await _get(session, dwelling.url + "/AJAX.cgx?razpls=1", ADMIN)
    assert dwelling.state.counters[0].index_pulses == 0
    assert dwelling.state.counters[1].index_pulses > 0
    await _get(session, common.url + "/AJAX.cgx?razpce=2", ADMIN)
    assert common.state.clamps[1].index_wh == 0
    assert common.state.clamps[0].index_wh > 0


async def test_reboot_command_drops_the_connection_and_the_box_comes_back(
    farm: SimFarm, session: aiohttp.ClientSession, monotonic: FakeMonotonic
) -> None:
    box = farm.boxes[2]
    await _get(session, box.url + "/RL.cgi?rl1=ON", ADMIN)
    with pytest.raises(aiohttp.ClientError):
        await _get(session, box.url + "/AJAX.CGX?reset=yes", ADMIN)
    with pytest.raises(aiohttp.ClientError):
        await _get(session, box.url + "/data.cgx", ADMIN)  # still booting
    monotonic.now += 5
    status, _, _ = await _get(session, box.url + "/data.cgx", ADMIN)
    assert status == 200
    assert box.state.relays == (False, False)


# -- faults -------------------------------------------------------------------------------


async def test_http500_fault(farm: SimFarm, session: aiohttp.ClientSession) -> None:
    box = farm.boxes[0]
    box.set_fault("http500")
    assert (await _get(session, box.url + "/data.cgx", ADMIN))[0] == 500
    assert (await _get(session, farm.boxes[1].url + "/data.cgx", ADMIN))[0] == 200
    box.clear_faults("http500")
    assert (await _get(session, box.url + "/data.cgx", ADMIN))[0] == 200


async def test_truncated_and_malformed_faults(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[2]
    _, _, good = await _get(session, box.url + "/data.cgx", ADMIN)
    box.set_fault("truncated")
    status, _, cut = await _get(session, box.url + "/data.cgx", ADMIN)
    assert status == 200 and good.startswith(cut) and len(cut) < len(good)
    snapshot = parse_data_cgx(cut)
    assert not snapshot.complete
    box.clear_faults()
    box.set_fault("malformed")
    for _ in range(4):
        status, _, bad = await _get(session, box.url + "/data.cgx", ADMIN)
        assert status == 200 and not _parses(bad)
        try:
            snapshot = parse_data_cgx(bad)
        except DecodeError:
            continue
        assert snapshot.warnings  # the parser tolerated it, but said so


async def test_latency_fault(farm: SimFarm, session: aiohttp.ClientSession) -> None:
    box = farm.boxes[1]
    box.set_fault("latency=0.3")
    started = time.monotonic()
    status, _, _ = await _get(session, box.url + "/data.cgx", ADMIN)
    assert status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await _get(session, farm.boxes[2].url + "/data.cgx", ADMIN)
    assert time.monotonic() - started < 0.3


async def test_timeout_fault_never_answers_but_the_box_lives_on(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[1]
    box.set_fault("timeout")
    with pytest.raises(TimeoutError):
        async with session.get(
            box.url + "/data.cgx", headers=ADMIN, timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass
    box.clear_faults()
    assert (await _get(session, box.url + "/data.cgx", ADMIN))[0] == 200


async def test_probabilistic_faults_are_reproducible(clock: ManualClock) -> None:
    async def run() -> list[int]:
        statuses = []
        async with (
            run_simulators(1, base_port=0, seed=9, clock=clock, faults="*:http500@0.5") as farm,
            aiohttp.ClientSession() as session,
        ):
            for _ in range(20):
                statuses.append((await _get(session, farm.boxes[0].url + "/data.cgx", ADMIN))[0])
        return statuses

    first = await run()
    assert first == await run()
    assert {200, 500} <= set(first)


async def test_skew_and_unplugged_faults_show_in_the_page(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[2]
    box.set_fault("skew=-3h")
    box.set_fault("unplugged")
    _, _, page = await _get(session, box.url + "/data.cgx", ADMIN)
    snapshot = parse_data_cgx(page)
    state = box.state
    expected = (state.sim_time - timedelta(hours=3)).astimezone(PARIS).replace(second=0)
    assert snapshot.info.box_time == expected
    assert b"<ADCO>Pas Dispo</ADCO>" in page and b"<PTEC>TIC NDERR.</PTEC>" in page
    assert not snapshot.tic[0].available


async def test_meter_replacement_and_counter_reset_faults(
    farm: SimFarm, session: aiohttp.ClientSession
) -> None:
    box = farm.boxes[2]
    old = parse_data_cgx((await _get(session, box.url + "/data.cgx", ADMIN))[2])
    box.set_fault("replace")
    box.set_fault("reset=2")
    new = parse_data_cgx((await _get(session, box.url + "/data.cgx", ADMIN))[2])
    assert new.tic[0].adco != old.tic[0].adco
    assert sum(new.tic[0].indexes_wh.values()) == 0
    assert new.pulses[1].index == 0 and old.pulses[1].index
    assert new.pulses[0].index == old.pulses[0].index
    assert box.describe()["faults"] == []  # plain events happen once and are gone


async def test_one_request_at_a_time_per_box(farm: SimFarm) -> None:
    box = farm.boxes[0]
    box.set_fault("latency=0.2")
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(_get(session, box.url + "/data.cgx", ADMIN) for _ in range(3)))
    assert time.monotonic() - started >= 0.6
