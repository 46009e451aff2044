"""WES FTP client against a real aioftp server on loopback, rooted in a temp directory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aioftp
import pytest

from wesh.errors import (
    AuthenticationError,
    ConnectionFailed,
    DecodeError,
    DeviceReportedError,
    DeviceTimeout,
    UsageError,
)
from wesh.sim.clock import ManualClock
from wesh.sim.farm import run_simulators
from wesh.wes.client import WesConfig
from wesh.wes.csvlog import CsvColumn, csv_log_path, format_csv_log
from wesh.wes.ftp import WesFtp, parse_list_line


@pytest.fixture
async def ftp_server(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    root = tmp_path / "sd"
    root.mkdir()
    (root / "DATA.CGX").write_bytes(
        b"t <data>\r\nc v v <firmware>%s</firmware>\r\nt </data>\r\n.\r\n"
    )
    (root / "WEBPROG" / "CGX").mkdir(parents=True)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_list_download_upload_mkdir_delete(ftp_server: tuple[int, Path]) -> None:
    port, root = ftp_server
    async with WesFtp("127.0.0.1", port, timeout_s=5) as ftp:
        entries = await ftp.list("/")
        assert [(e.name, e.is_dir) for e in entries] == [("DATA.CGX", False), ("WEBPROG", True)]
        assert entries[0].path == "/DATA.CGX"
        assert entries[0].size_bytes == (root / "DATA.CGX").stat().st_size
        assert (await ftp.download("/DATA.CGX")).startswith(b"t <data>")

        await ftp.mkdir("/JWES")
        await ftp.upload("/JWES/HIGH.CGX", b"t <x/>\r\n.\r\n")
        assert (root / "JWES" / "HIGH.CGX").read_bytes() == b"t <x/>\r\n.\r\n"
        assert [e.name for e in await ftp.list("/JWES")] == ["HIGH.CGX"]
        await ftp.delete("/JWES/HIGH.CGX")
        await ftp.rmdir("/JWES")
        assert not (root / "JWES").exists()


async def test_install_template_then_it_is_on_the_card(ftp_server: tuple[int, Path]) -> None:
    port, root = ftp_server
    config = WesConfig("127.0.0.1", ftp_port=port, timeout_s=5)
    async with WesFtp.from_config(config) as ftp:
        path = await ftp.install_template("wesh.cgx", "t <temp>°C</temp>\r\n.\r\n")
        assert path == "/wesh.cgx"
        with pytest.raises(UsageError):
            await ftp.install_template("../evil.cgx", "t x")
        with pytest.raises(UsageError):
            await ftp.install_template("euro.cgx", "t €")
    assert (root / "wesh.cgx").read_bytes() == "t <temp>°C</temp>\r\n.\r\n".encode("iso-8859-1")


async def test_download_logs_of_a_day(ftp_server: tuple[int, Path]) -> None:
    port, root = ftp_server
    day = date(2025, 11, 21)
    text = format_csv_log(
        [CsvColumn("temp.1", "°C")],
        [(datetime(2025, 11, 21, 13, 0, tzinfo=UTC), [19.5])],
    )
    file = root / csv_log_path(day).lstrip("/")
    file.parent.mkdir(parents=True)
    file.write_bytes(text.encode("iso-8859-1") + b"21/11/2025;garbage\r\n")
    async with WesFtp("127.0.0.1", port, timeout_s=5) as ftp:
        log = await ftp.download_logs(day)
        assert [row.values for row in log.rows] == [{"temp.1": 19.5}]
        assert log.units == {"temp.1": "°C"}
        assert len(log.errors) == 1
        with pytest.raises(DeviceReportedError):
            await ftp.download_logs(date(2025, 11, 22))  # 550: no such file


async def test_missing_file_keeps_the_session_usable(ftp_server: tuple[int, Path]) -> None:
    port, _ = ftp_server
    async with WesFtp("127.0.0.1", port, timeout_s=5) as ftp:
        with pytest.raises(DeviceReportedError) as info:
            await ftp.download("/nope.cgx")
        assert info.value.host == f"127.0.0.1:{port}"
        assert (await ftp.download("/DATA.CGX")).startswith(b"t ")


async def test_download_cap_aborts_and_reconnects(ftp_server: tuple[int, Path]) -> None:
    port, root = ftp_server
    (root / "BIG.CSV").write_bytes(b"x" * 300_000)
    async with WesFtp("127.0.0.1", port, timeout_s=5, max_download_bytes=50_000) as ftp:
        with pytest.raises(DecodeError):
            await ftp.download("/BIG.CSV")
        # The aborted transfer closed the control connection; the next call logs in again.
        assert next(e.name for e in await ftp.list("/")) == "BIG.CSV"


async def test_bad_login(ftp_server: tuple[int, Path]) -> None:
    port, _ = ftp_server
    async with WesFtp("127.0.0.1", port, password="nope", timeout_s=5) as ftp:
        with pytest.raises(AuthenticationError):
            await ftp.list("/")


async def test_refused_and_bad_paths() -> None:
    async with WesFtp("127.0.0.1", free_port(), timeout_s=5) as ftp:
        with pytest.raises(ConnectionFailed) as info:
            await ftp.list("/")
        assert "FTP enabled" in str(info.value)
        with pytest.raises(UsageError):
            await ftp.download("DATA.CGX")
        with pytest.raises(UsageError):
            await ftp.download("/a/../../etc/passwd")
        with pytest.raises(UsageError):
            await ftp.delete("/x\r\nDELE /DATA.CGX")


async def test_silent_server_times_out() -> None:
    done = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets; returns when the client hangs up
        writer.close()
        done.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with WesFtp("127.0.0.1", port, timeout_s=0.2) as ftp:
            with pytest.raises(DeviceTimeout):
                await ftp.list("/")
        await done.wait()  # the client closed its socket after the timeout
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"11-21-25  02:07PM       <DIR>          WEBPROG\r\n", ("WEBPROG", True, None)),
        (b"11-21-2025  14:07            1,234 DATA.CGX", ("DATA.CGX", False, 1234)),
        (b"-rw-r--r--   1 owner group        42 Nov 21 14:07 wesh.cgx", ("wesh.cgx", False, 42)),
        (b"drwxr-xr-x   1 owner group         0 Nov 21 14:07 LOGS", ("LOGS", True, 0)),
        (b"11-21-25  02:07PM       <DIR>          .", None),
        (b"total 12", None),
        (b"\xff\xfe garbage", None),
    ],
)
def test_list_line_parsing(line: bytes, expected: tuple[str, bool, int | None] | None) -> None:
    entry = parse_list_line(line, "/", where="box")
    if expected is None:
        assert entry is None
    else:
        assert entry is not None
        assert (entry.name, entry.is_dir, entry.size_bytes) == expected
        assert entry.path == "/" + expected[0]


async def test_against_the_simulator() -> None:
    clock = ManualClock(datetime(2025, 1, 15, 9, 30, tzinfo=UTC))
    async with run_simulators(1, base_port=0, seed=11, clock=clock) as farm:
        handle = farm.boxes[0]
        assert handle.ftp is not None
        async with WesFtp(handle.ftp.host, handle.ftp.port, timeout_s=5) as ftp:
            root = {e.name: e for e in await ftp.list("/")}  # MS-DOS style listing
            assert root["LOGS"].is_dir and not root["DATA.CGX"].is_dir
            assert root["DATA.CGX"].size_bytes == len(await ftp.download("/DATA.CGX"))
            await ftp.upload("/NOTE.TXT", b"hello")
            assert await ftp.download("/note.txt") == b"hello"  # FAT: case-insensitive
            await ftp.delete("/NOTE.TXT")
            with pytest.raises(DeviceReportedError):
                await ftp.download("/NOTE.TXT")
