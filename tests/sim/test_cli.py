"""``wesh sim wes``: endpoints, JSON listing, clean stop on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest
from click.testing import CliRunner

from wesh.cli import cli
from wesh.sim.farm import Endpoint, FarmConfig

from .conftest import ADMIN


def test_port_mode_endpoints_of_the_documented_example() -> None:
    config = FarmConfig(count=3, base_port=18080, seed=1)
    assert [config.endpoints(i) for i in range(3)] == [
        (
            Endpoint("127.0.0.1", 18080 + i),
            Endpoint("127.0.0.1", 18083 + i),
            Endpoint("127.0.0.1", 18086 + i),
        )
        for i in range(3)
    ]
    explicit = FarmConfig(count=3, base_port=18080, ftp_base_port=2100, m2m_base_port=2200)
    assert explicit.endpoints(2)[1:] == (Endpoint("127.0.0.1", 2102), Endpoint("127.0.0.1", 2202))


def test_address_mode_endpoints() -> None:
    config = FarmConfig(count=300, base_address="127.10.0.1", http_port=8080, ftp_port=2121)
    http, ftp, m2m = config.endpoints(299)
    assert http == Endpoint("127.10.1.44", 8080)
    assert ftp == Endpoint("127.10.1.44", 2121)
    assert m2m == Endpoint("127.10.1.44", 1500)


def test_bad_options_are_reported_without_a_traceback() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["sim", "wes", "--faults", "1:earthquake", "--seconds", "1"])
    assert result.exit_code != 0
    assert "earthquake" in str(result.exception) + result.output
    result = runner.invoke(cli, ["sim", "wes", "--start", "2025-01-01T00:00", "--seconds", "1"])
    assert result.exit_code != 0 and "time zone" in result.output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_runs_until_signalled_then_stops_cleanly(signum: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wesh",
        "sim",
        "wes",
        "--count",
        "3",
        "--base-port",
        "0",
        "--seed",
        "1",
        "--start",
        "2025-01-15T10:00:00+01:00",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        document = json.loads(line)
        boxes = document["boxes"]
        assert [b["name"] for b in boxes] == ["B001-PC", "B001-L01", "B001-L02"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(boxes[2]["http"] + "/data.cgx", headers=ADMIN) as response,
        ):
            assert response.status == 200
            assert "<tic1>" in await response.text()
        process.send_signal(signum)
        code = await asyncio.wait_for(process.wait(), timeout=30)
        errors = (await process.stderr.read()).decode()
        assert code == 0, errors
        assert "stopped" in errors and "Traceback" not in errors
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
