"""``wesh wes`` commands, against loopback servers (the CLI runs in a worker thread)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aioftp
import pytest
from click.testing import CliRunner, Result

from tests.wes.test_client import MAC, FakeWes, wes_like
from tests.wes.test_m2m import FakeBox
from wesh.cli import cli
from wesh.errors import AuthenticationError, DecodeError, PermissionDenied
from wesh.sim.clock import ManualClock
from wesh.sim.farm import run_simulators
from wesh.wes.cgx import compact_stock_template
from wesh.wes.client import IdentityMismatch

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wes"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["wes", *args], catch_exceptions=True)


async def invoke_async(*args: str) -> Result:
    return await asyncio.to_thread(invoke, *args)


@pytest.fixture
async def box() -> AsyncIterator[FakeWes]:
    server = FakeWes(wes_like)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["get"],
        ["parse"],
        ["relay"],
        ["switch"],
        ["m2m"],
        ["ftp"],
        ["ftp", "ls"],
        ["ftp", "get"],
        ["ftp", "put"],
        ["ftp", "install-compact"],
        ["logs"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


async def test_get_prints_a_table(box: FakeWes) -> None:
    result = await invoke_async("get", "127.0.0.1", "--port", str(box.port), "--mac", MAC)
    assert result.exit_code == 0, result.output
    assert "tic.1.power_va" in result.output
    assert "1840" in result.output
    assert "V0.84A10" in result.output


async def test_get_json(box: FakeWes) -> None:
    result = await invoke_async("get", "127.0.0.1", "--port", str(box.port), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["info"]["mac"] == MAC
    assert data["info"]["firmware"] == "V0.84A10"
    paths = {r["path"]: r for r in data["readings"]}
    assert paths["tic.1.power_va"] == {
        **paths["tic.1.power_va"],
        "value": 1840,
        "unit": "VA",
        "kind": "gauge",
    }
    assert paths["temp.1"]["box_time"].startswith("2025-11-21T14:07:00")


async def test_get_errors_are_wesh_errors(box: FakeWes) -> None:
    port = str(box.port)
    result = await invoke_async("get", "127.0.0.1", "--port", port, "--password", "bad")
    assert isinstance(result.exception, AuthenticationError)
    result = await invoke_async("get", "127.0.0.1", "--port", port, "--mac", "0011223344BB")
    assert isinstance(result.exception, IdentityMismatch)


async def test_relay_and_switch(box: FakeWes) -> None:
    port = str(box.port)
    assert (await invoke_async("relay", "127.0.0.1", "1", "on", "--port", port)).exit_code == 0
    assert (await invoke_async("relay", "127.0.0.1", "2", "TOGGLE", "--port", port)).exit_code == 0
    assert (await invoke_async("switch", "127.0.0.1", "3", "off", "--port", port)).exit_code == 0
    denied = await invoke_async(
        "relay", "127.0.0.1", "1", "off", "--port", port, "--user", "user", "--password", "user"
    )
    assert isinstance(denied.exception, PermissionDenied)
    bad = await invoke_async("relay", "127.0.0.1", "1", "maybe", "--port", port)
    assert bad.exit_code == 2
    assert [r.target for r in box.requests] == [
        "/RL.cgi?rl1=ON",
        "/RL.cgi?frl=2",
        "/AJAX.cgx?vs3=OFF",
        "/RL.cgi?rl1=OFF",
    ]


async def test_password_from_environment(box: FakeWes) -> None:
    def run() -> Result:
        return CliRunner(env={"WESH_WES_PASSWORD": "bad"}).invoke(
            cli, ["wes", "get", "127.0.0.1", "--port", str(box.port)]
        )

    result = await asyncio.to_thread(run)
    assert isinstance(result.exception, AuthenticationError)


async def test_m2m_command() -> None:
    fake = FakeBox(echo=True, eol=b"\n\r")
    await fake.start()
    try:
        result = await invoke_async(
            "m2m", "127.0.0.1", "gI000", "srl1=1", "--port", str(fake.port), "--json"
        )
    finally:
        await fake.stop()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"gI000": MAC, "srl1=1": "RLMB=10"}


@pytest.fixture
async def ftp_root(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    root = tmp_path / "sd"
    root.mkdir()
    (root / "DATA.CGX").write_bytes(b"t <data/>\r\n.\r\n")
    user = aioftp.User(
        "adminftp",
        "wesftp",
        base_path=root,
        home_path="/",
        permissions=[aioftp.Permission("/", readable=True, writable=True)],
    )
    server = aioftp.Server([user])
    await server.start("127.0.0.1", 0)
    try:
        yield server.address[1], root
    finally:
        await server.close()


async def test_ftp_commands(ftp_root: tuple[int, Path], tmp_path: Path) -> None:
    port, root = ftp_root
    p = str(port)
    listing = await invoke_async("ftp", "ls", "127.0.0.1", "/", "--port", p, "--json")
    assert listing.exit_code == 0, listing.output
    assert [e["name"] for e in json.loads(listing.output)] == ["DATA.CGX"]

    got = await invoke_async("ftp", "get", "127.0.0.1", "/DATA.CGX", "--port", p)
    assert got.exit_code == 0 and got.stdout_bytes == b"t <data/>\r\n.\r\n"

    local = tmp_path / "mine.cgx"
    local.write_bytes(b"t x\r\n.\r\n")
    put = await invoke_async("ftp", "put", "127.0.0.1", str(local), "/MINE.CGX", "--port", p)
    assert put.exit_code == 0, put.output
    assert (root / "MINE.CGX").read_bytes() == b"t x\r\n.\r\n"

    installed = await invoke_async("ftp", "install-compact", "127.0.0.1", "--port", p)
    assert installed.exit_code == 0, installed.output
    assert (root / "WESH.CGX").read_text("iso-8859-1") == compact_stock_template()


async def test_logs_command(ftp_root: tuple[int, Path]) -> None:
    port, root = ftp_root
    (root / "LOGS" / "2025" / "11").mkdir(parents=True)
    (root / "LOGS" / "2025" / "11" / "20251121.CSV").write_bytes(
        "Date;Heure;temp.1 (°C)\r\n21/11/2025;14:00:00;19,5\r\nbad line\r\n".encode("iso-8859-1")
    )
    result = await invoke_async("logs", "127.0.0.1", "2025-11-21", "--port", str(port), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(r["path"], r["value"], r["unit"]) for r in data["readings"]] == [
        ("temp.1", 19.5, "°C")
    ]
    assert data["errors"] == ["1 cells, expected 3 (where=line 3)"]
    table = await invoke_async("logs", "127.0.0.1", "2025-11-21", "--port", str(port))
    assert table.exit_code == 0 and "19.5" in table.output


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.xml")), ids=lambda p: p.stem)
def test_parse_every_fixture_cleanly(fixture: Path) -> None:
    result = invoke("parse", str(fixture), "--json")
    if result.exception is None:
        data = json.loads(result.output)
        assert {"info", "readings", "warnings", "complete"} <= data.keys()
    else:
        assert isinstance(result.exception, DecodeError), result.exception
        assert str(fixture) in str(result.exception)


def test_parse_table_and_stdin() -> None:
    stock = FIXTURES / "v084a10_stock.xml"
    result = invoke("parse", str(stock))
    assert result.exit_code == 0, result.output
    assert "path" in result.output and "value" in result.output
    from_stdin = CliRunner().invoke(cli, ["wes", "parse", "-", "--json"], input=stock.read_bytes())
    assert from_stdin.exit_code == 0
    assert json.loads(from_stdin.output)["readings"]


def test_parse_compact_fixture() -> None:
    result = invoke("parse", str(FIXTURES / "compact_v084a10.txt"), "--compact", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["readings"]


def test_parse_missing_file() -> None:
    result = invoke("parse", "/nonexistent/data.cgx")
    assert result.exit_code != 0


async def test_cli_against_the_simulator() -> None:
    clock = ManualClock(datetime(2025, 1, 15, 9, 30, tzinfo=UTC))
    async with run_simulators(1, base_port=0, seed=7, clock=clock) as farm:
        handle = farm.boxes[0]
        assert handle.ftp is not None and handle.m2m is not None
        mac = handle.model.identity.mac
        got = await invoke_async(
            "get", handle.http.host, "--port", str(handle.http.port), "--mac", mac,
            "--m2m-port", str(handle.m2m.port), "--json",
        )  # fmt: skip
        assert got.exit_code == 0, got.output
        readings = {r["path"]: r["value"] for r in json.loads(got.output)["readings"]}
        reading = handle.state.tics[0].reading
        assert reading is not None
        assert readings["tic.1.power_va"] == reading.power_va

        relay = await invoke_async(
            "relay", handle.http.host, "2", "on", "--port", str(handle.http.port)
        )
        assert relay.exit_code == 0 and handle.state.relays[1] is True

        m2m = await invoke_async("m2m", handle.m2m.host, "gI000", "--port", str(handle.m2m.port))
        assert m2m.output.strip() == f"gI000\t{mac}"

        clock.advance(86_400)
        day = "2025-01-15"
        logs = await invoke_async(
            "logs", handle.ftp.host, day, "--port", str(handle.ftp.port), "--json"
        )
        assert logs.exit_code == 0, logs.output
        data = json.loads(logs.output)
        assert data["errors"] == []
        assert any(r["path"] == "tic.1.power_va" for r in data["readings"])
