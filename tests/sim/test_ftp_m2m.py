"""FTP and M2M sides of the simulated boxes, the admin API, address mode and clean shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import aioftp
import aiohttp
import pytest

from wesh.errors import AuthenticationError, ConfigError, DeviceTimeout, UsageError
from wesh.sim.clock import PARIS, ManualClock
from wesh.sim.farm import SimFarm, run_simulators
from wesh.wes.ftp import WesFtp
from wesh.wes.m2m import WesM2M

from .conftest import ADMIN, START

# -- FTP ----------------------------------------------------------------------------------


async def test_ftp_tree_is_the_web_tree(farm: SimFarm) -> None:
    handle = farm.boxes[2]
    assert handle.ftp is not None
    async with WesFtp(handle.ftp.host, handle.ftp.port, timeout_s=5) as ftp:
        names = {entry.name: entry for entry in await ftp.list("/")}
        assert names["DATA.CGX"].size_bytes and names["LOGS"].is_dir and names["WEBPROG"].is_dir
        stock = await ftp.download("/data.cgx")
        assert stock == handle.box.card.read("/DATA.CGX")
        path = await ftp.install_template("wesh.cgx", "t <w>\nc ip1 <PAP>%d</PAP>\nt </w>\n.\n")
        await ftp.mkdir("/JWES")
        await ftp.upload("/JWES/HIGH.CGX", b"t <h>\nc v v <fw>%s</fw>\nt </h>\n.\n")
    async with aiohttp.ClientSession() as session:
        async with session.get(handle.url + path.upper(), headers=ADMIN) as response:
            assert response.status == 200
            assert (await response.text()).startswith("<w>\n<PAP>")
        async with session.get(handle.url + "/jwes/high.cgx", headers=ADMIN) as response:
            assert await response.text() == "<h>\n<fw>V0.84A10</fw>\n</h>\n"


async def test_ftp_listing_is_ms_dos_style(farm: SimFarm) -> None:
    handle = farm.boxes[0]
    assert handle.ftp is not None
    async with aioftp.Client.context(
        handle.ftp.host, handle.ftp.port, "adminftp", "wesftp", encoding="latin-1"
    ) as client:
        stream = await client.get_stream("LIST /", "1xx")
        lines = (await stream.read()).decode("latin-1").splitlines()
        await stream.finish()
    assert any(line.endswith("<DIR>          LOGS") for line in lines)
    assert any(line.split()[-1] == "DATA.CGX" and line[2] == "-" for line in lines)


async def test_ftp_wrong_password_is_refused(farm: SimFarm) -> None:
    handle = farm.boxes[0]
    assert handle.ftp is not None
    async with WesFtp(handle.ftp.host, handle.ftp.port, password="nope", timeout_s=5) as ftp:
        with pytest.raises(AuthenticationError):
            await ftp.list("/")


async def test_daily_csv_logs_are_on_the_card(farm: SimFarm, clock: ManualClock) -> None:
    handle = farm.boxes[2]
    assert handle.ftp is not None
    clock.advance(86_400)  # a whole local day passes
    day = (START + timedelta(days=1)).astimezone(PARIS).date()
    async with WesFtp(handle.ftp.host, handle.ftp.port, timeout_s=5) as ftp:
        listing = await ftp.list(f"/LOGS/{day:%Y}/{day:%m}")
        log = await ftp.download_logs(day - timedelta(days=1))
        today = await ftp.download_logs(day)
    assert {e.name for e in listing} >= {f"{day:%Y%m%d}.CSV"}
    assert not log.errors and len(log.rows) >= 40  # from 10:30 to midnight, every 15 min
    first, last = log.rows[0], log.rows[-1]
    assert last.values["impulsion.1.index"] >= first.values["impulsion.1.index"]  # type: ignore[operator]
    assert not today.errors and today.rows
    state = handle.state
    assert today.rows[-1].box_time <= state.box_time


# -- M2M ----------------------------------------------------------------------------------


async def test_m2m_answers_with_echo_and_value(farm: SimFarm) -> None:
    handle = farm.boxes[0]
    assert handle.m2m is not None
    reader, writer = await asyncio.open_connection(handle.m2m.host, handle.m2m.port)
    state = handle.state
    reading = state.tics[0].reading
    assert reading is not None
    expected = {
        "gI000": state.identity.mac,
        "gT100": str(reading.power_va),
        "gT101": str(reading.iinst_a[0]),
        "gT110": str(reading.indexes_wh["BASE"]),
        "gP101": f"{state.counters[0].index:.3f}",
        "gW003": f"{state.probes[3]:.1f}",
        "gW0001": f"{state.probes[1]:.1f}",
        "gr001": "0",
        "hello": "ERR",
    }
    for command, value in expected.items():
        writer.write(command.encode() + b"\n")
        await writer.drain()
        assert await reader.readline() == command.encode() + b"\r\n"
        assert await reader.readline() == f"={value}\r\n".encode()
    writer.close()
    await writer.wait_closed()


async def test_m2m_client_commands(farm: SimFarm) -> None:
    handle = farm.boxes[2]
    assert handle.m2m is not None
    async with WesM2M(handle.m2m.host, handle.m2m.port, timeout_s=2) as m2m:
        assert await m2m.mac() == handle.model.identity.mac
        assert await m2m.set_relay(2, True) == "RLMB=01"
        assert await m2m.relay(2) is True
        assert (await m2m.set_switch(3, True)).startswith("SW=001")
        assert await m2m.probe_c(1) == handle.state.probes[1]
        reading = handle.state.tics[0].reading
        assert reading is not None
        assert await m2m.tic_index_wh(1, 2) == reading.indexes_wh["HCHP"]
    assert handle.state.relays == (False, True)
    assert handle.state.switches[2]


async def test_m2m_timeout_fault(farm: SimFarm) -> None:
    handle = farm.boxes[1]
    assert handle.m2m is not None
    handle.set_fault("timeout")
    async with WesM2M(handle.m2m.host, handle.m2m.port, timeout_s=0.2) as m2m:
        with pytest.raises(DeviceTimeout):
            await m2m.mac()
        handle.clear_faults()
        assert await m2m.mac() == handle.model.identity.mac


# -- admin API, address mode, shutdown ------------------------------------------------------


async def test_admin_api(clock: ManualClock) -> None:
    async with (
        run_simulators(2, base_port=0, clock=clock, admin_port=0) as farm,
        aiohttp.ClientSession() as session,
    ):
        assert farm.admin_url is not None
        async with session.get(farm.admin_url + "/boxes") as response:
            boxes = await response.json()
        assert [b["index"] for b in boxes] == [0, 1]
        async with session.post(farm.admin_url + "/boxes/1/faults", data="http500,latency=1") as r:
            assert r.status == 200
            assert (await r.json())["faults"] == ["http500", "latency=1"]
        async with session.post(farm.admin_url + "/boxes/1/faults", data="bogus") as r:
            assert r.status == 400
        async with session.delete(farm.admin_url + "/boxes/1/faults?kind=latency") as r:
            assert (await r.json())["faults"] == ["http500"]
        async with session.post(farm.admin_url + "/faults", data="*:truncated@0.5") as r:
            assert [b["faults"] for b in await r.json()] == [
                ["truncated@0.5"],
                ["http500", "truncated@0.5"],
            ]
        async with session.get(farm.admin_url + "/boxes/0") as response:
            detail = await response.json()
        assert detail["state"]["tic"][0]["available"] is True
        json.dumps(detail)
        async with session.get(farm.admin_url + "/boxes/9") as response:
            assert response.status == 404


async def test_address_mode_gives_each_box_its_own_loopback_address(clock: ManualClock) -> None:
    async with (
        run_simulators(
            3, base_address="127.77.0.1", clock=clock, http_port=0, ftp_port=0, m2m_port=0
        ) as farm,
        aiohttp.ClientSession() as session,
    ):
        hosts = [handle.http.host for handle in farm.boxes]
        assert hosts == ["127.77.0.1", "127.77.0.2", "127.77.0.3"]
        for handle in farm.boxes:
            async with session.get(handle.url + "/data.cgx", headers=ADMIN) as response:
                assert response.status == 200
            assert handle.m2m is not None and handle.m2m.host == handle.http.host


async def test_port_mode_is_deterministic(clock: ManualClock) -> None:
    async with run_simulators(3, base_port=0, clock=clock) as probe:
        free = probe.boxes[0].http.port  # a port that was free a moment ago
    base = 20_000 + free % 20_000
    try:
        async with run_simulators(3, base_port=base, clock=clock) as farm:
            assert [h.http.port for h in farm.boxes] == [base, base + 1, base + 2]
            assert [h.ftp.port for h in farm.boxes if h.ftp] == [base + 3, base + 4, base + 5]
            assert [h.m2m.port for h in farm.boxes if h.m2m] == [base + 6, base + 7, base + 8]
    except ConfigError:
        pytest.skip("port range busy")


async def test_bad_configuration_is_refused(clock: ManualClock) -> None:
    with pytest.raises(UsageError):
        async with run_simulators(2, base_port=1000, base_address="127.0.0.2", clock=clock):
            pass
    with pytest.raises(UsageError):
        async with run_simulators(2, base_address="10.0.0.1", clock=clock):
            pass
    with pytest.raises(UsageError):
        async with run_simulators(3, base_port=65534, clock=clock):
            pass


async def test_a_busy_port_is_a_clear_error_and_nothing_leaks(clock: ManualClock) -> None:
    async with run_simulators(1, base_port=0, clock=clock, ftp=False, m2m=False) as first:
        port = first.boxes[0].http.port
        with pytest.raises(ConfigError, match="cannot listen"):
            async with run_simulators(2, base_port=port - 1, clock=clock):
                pass


async def test_stopping_ends_held_requests_and_connections(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    before = asyncio.all_tasks()
    session = aiohttp.ClientSession()
    async with run_simulators(2, base_port=0, clock=clock, faults="0:timeout") as farm:
        hanging = asyncio.create_task(
            session.get(farm.boxes[0].url + "/data.cgx", headers=ADMIN).__aenter__()
        )
        handle = farm.boxes[1]
        assert handle.m2m is not None and handle.ftp is not None
        _reader, writer = await asyncio.open_connection(handle.m2m.host, handle.m2m.port)
        ftp = aioftp.Client()
        await ftp.connect(handle.ftp.host, handle.ftp.port)
        await ftp.login("adminftp", "wesftp")
        await asyncio.sleep(0.05)  # let the requests reach the servers
        assert not hanging.done()
    with pytest.raises(aiohttp.ClientError):
        await hanging
    writer.close()
    ftp.close()
    await session.close()
    await asyncio.sleep(0)
    leftover = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert not leftover
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
