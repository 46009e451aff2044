"""``wesh wes``: talk to one WES server (HTTP, FTP, M2M) or parse a saved page.

Errors are :class:`~wesh.errors.WeshError` and reach :func:`wesh.cli.main`, which prints
them on one line and exits 1. Passwords may come from the environment
(``WESH_WES_PASSWORD``, ``WESH_WES_FTP_PASSWORD``), read here only.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, fields, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from wesh.errors import BadInputError, DecodeError
from wesh.wes.cgx import compact_stock_template
from wesh.wes.client import WesClient, WesConfig
from wesh.wes.csvlog import CsvLog
from wesh.wes.datacgx import parse_compact, parse_data_cgx
from wesh.wes.ftp import WesFtp
from wesh.wes.m2m import DEFAULT_M2M_PORT, WesM2M
from wesh.wes.model import Firmware, WesSnapshot
from wesh.wes.readings import Reading

__all__ = ["wes"]

_T = TypeVar("_T")
_CONTEXT = {"help_option_names": ["-h", "--help"]}
_MAX_FILE_BYTES = 10_000_000


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def _now() -> datetime:
    return datetime.now(UTC)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _echo_json(data: object) -> None:
    click.echo(json.dumps(_jsonable(data), ensure_ascii=False, indent=2))


def _reading_rows(readings: Sequence[Reading]) -> list[dict[str, object]]:
    return [
        {
            "path": r.path,
            "value": r.value,
            "unit": r.unit,
            "kind": r.kind,
            "box_time": r.box_time,
            "poll_time": r.poll_time,
        }
        for r in readings
    ]


def _print_readings(title: str, readings: Sequence[Reading]) -> None:
    table = Table(title=title)
    table.add_column("path")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for reading in readings:
        table.add_row(reading.path, str(reading.value), reading.unit or "")
    Console().print(table)


def _show_snapshot(
    source: str, snapshot: WesSnapshot, readings: list[Reading], *, as_json: bool
) -> None:
    if as_json:
        _echo_json(
            {
                "source": source,
                "info": asdict(snapshot.info),
                "firmware_family": snapshot.firmware.value if snapshot.firmware else None,
                "complete": snapshot.complete,
                "warnings": list(snapshot.warnings),
                "readings": _reading_rows(readings),
            }
        )
        return
    info = snapshot.info
    box_time = info.box_time.isoformat() if info.box_time else "?"
    title = f"{source} — firmware {info.firmware or '?'}, box time {box_time}"
    if info.mac:
        title += f", MAC {info.mac}"
    _print_readings(title, readings)
    for warning in snapshot.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not snapshot.complete:
        click.echo("warning: the page was cut short; values after the cut are missing", err=True)


def _http_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--port", type=click.IntRange(1, 65535), default=80, show_default=True),
            click.option("--user", default="admin", show_default=True, help="Web account."),
            click.option(
                "--password",
                default="wes",
                envvar="WESH_WES_PASSWORD",
                show_envvar=True,
                help="Web password (default: the factory 'wes').",
            ),
            click.option(
                "--timeout",
                "timeout_s",
                type=click.FloatRange(min=0.1),
                default=10.0,
                show_default=True,
                help="Seconds per attempt.",
            ),
        ]
    ):
        function = option(function)
    return function


def _ftp_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--port", type=click.IntRange(1, 65535), default=21, show_default=True),
            click.option("--user", default="adminftp", show_default=True),
            click.option(
                "--password",
                default="wesftp",
                envvar="WESH_WES_FTP_PASSWORD",
                show_envvar=True,
                help="FTP password (default: the factory 'wesftp').",
            ),
            click.option(
                "--timeout",
                "timeout_s",
                type=click.FloatRange(min=0.1),
                default=10.0,
                show_default=True,
            ),
        ]
    ):
        function = option(function)
    return function


def _firmware(value: str | None) -> Firmware | None:
    return Firmware(value) if value else None


@click.group(context_settings=_CONTEXT)
def wes() -> None:
    """Cartelectronic WES servers: read a snapshot, parse a saved data.cgx, switch a relay."""


@wes.command(context_settings=_CONTEXT)
@click.argument("host")
@_http_options
@click.option("--mac", help="Expected MAC address; another box is refused.")
@click.option("--path", "data_path", default="/data.cgx", show_default=True, help="Page to read.")
@click.option("--compact", is_flag=True, help="The page is a wesh compact template.")
@click.option("--m2m-port", type=click.IntRange(1, 65535), default=DEFAULT_M2M_PORT)
@click.option(
    "--firmware", type=click.Choice([f.value for f in Firmware]), help="Force the dialect."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: info and readings.")
def get(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    timeout_s: float,
    mac: str | None,
    data_path: str,
    compact: bool,
    m2m_port: int,
    firmware: str | None,
    as_json: bool,
) -> None:
    """Read one box's snapshot and print its readings (path, value, unit)."""
    config = WesConfig(
        host,
        port,
        user=user,
        password=password,
        expected_mac=mac,
        timeout_s=timeout_s,
        data_path=data_path,
        compact=compact,
        m2m_port=m2m_port,
        firmware=_firmware(firmware),
    )

    async def main() -> tuple[WesSnapshot, datetime]:
        async with WesClient(config) as client:
            snapshot = await client.fetch_snapshot()
            return snapshot, _now()

    snapshot, polled = _run(main())
    _show_snapshot(
        f"{host}:{port}{data_path}", snapshot, snapshot.readings(poll_time=polled), as_json=as_json
    )


@wes.command(context_settings=_CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--firmware", type=click.Choice([f.value for f in Firmware]), help="Force the dialect."
)
@click.option("--compact", is_flag=True, help="The file is the output of a compact template.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: info and readings.")
def parse(*, file: Path, firmware: str | None, compact: bool, as_json: bool) -> None:
    """Parse a saved data.cgx page (FILE, or - for stdin) and print its readings."""
    if str(file) == "-":
        body = sys.stdin.buffer.read(_MAX_FILE_BYTES + 1)
    else:
        try:
            with file.open("rb") as stream:
                body = stream.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise BadInputError(f"cannot read {file}: {exc.strerror}", where=str(file)) from exc
    parser = parse_compact if compact else parse_data_cgx
    try:
        snapshot = parser(body, firmware=_firmware(firmware), max_bytes=_MAX_FILE_BYTES)
    except DecodeError as exc:
        raise DecodeError(exc.message, where=f"{file}: {exc.where or ''}".rstrip(": ")) from exc
    readings = snapshot.readings(poll_time=_now())
    _show_snapshot(str(file), snapshot, readings, as_json=as_json)


_ACTIONS = click.Choice(["on", "off", "toggle"], case_sensitive=False)


@wes.command(context_settings=_CONTEXT)
@click.argument("host")
@click.argument("number", type=int)
@click.argument("action", type=_ACTIONS)
@_http_options
def relay(
    *, host: str, number: int, action: str, port: int, user: str, password: str, timeout_s: float
) -> None:
    """Switch relay NUMBER (1, 2, 9 = both, 1-Wire 101..198) on, off, or toggle it."""
    config = WesConfig(host, port, user=user, password=password, timeout_s=timeout_s)

    async def main() -> None:
        async with WesClient(config) as client:
            if action.lower() == "toggle":
                await client.toggle_relay(number)
            else:
                await client.set_relay(number, action.lower() == "on")

    _run(main())
    click.echo(f"relay {number}: {action.lower()} sent to {host}")


@wes.command(context_settings=_CONTEXT)
@click.argument("host")
@click.argument("number", type=int)
@click.argument("action", type=_ACTIONS)
@_http_options
def switch(
    *, host: str, number: int, action: str, port: int, user: str, password: str, timeout_s: float
) -> None:
    """Set virtual switch NUMBER (1..24) on, off, or toggle it."""
    config = WesConfig(host, port, user=user, password=password, timeout_s=timeout_s)

    async def main() -> None:
        async with WesClient(config) as client:
            if action.lower() == "toggle":
                await client.toggle_switch(number)
            else:
                await client.set_switch(number, action.lower() == "on")

    _run(main())
    click.echo(f"switch {number}: {action.lower()} sent to {host}")


@wes.command(context_settings=_CONTEXT)
@click.argument("host")
@click.argument("commands", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_M2M_PORT, show_default=True)
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=5.0, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: command → reply.")
def m2m(
    *, host: str, commands: tuple[str, ...], port: int, timeout_s: float, as_json: bool
) -> None:
    """Send raw M2M commands (gI000, gT100, srl1=1...) on TCP port 1500 and print replies."""

    async def main() -> list[tuple[str, str]]:
        async with WesM2M(host, port, timeout_s=timeout_s) as client:
            return [(cmd, await client.command(cmd)) for cmd in commands]

    replies = _run(main())
    if as_json:
        _echo_json(dict(replies))
    else:
        for cmd, reply in replies:
            click.echo(f"{cmd}\t{reply}")


@wes.group(context_settings=_CONTEXT)
def ftp() -> None:
    """Use the box's SD card over FTP: list, download, upload, install a template."""


def _ftp_client(host: str, port: int, user: str, password: str, timeout_s: float) -> WesFtp:
    return WesFtp(host, port, user=user, password=password, timeout_s=timeout_s)


@ftp.command("ls", context_settings=_CONTEXT)
@click.argument("host")
@click.argument("path", default="/")
@_ftp_options
@click.option("--json", "as_json", is_flag=True)
def ftp_ls(
    *, host: str, path: str, port: int, user: str, password: str, timeout_s: float, as_json: bool
) -> None:
    """List directory PATH on the card."""

    async def main() -> list[Any]:
        async with _ftp_client(host, port, user, password, timeout_s) as client:
            return await client.list(path)

    entries = _run(main())
    if as_json:
        _echo_json(entries)
        return
    for entry in entries:
        size = (
            "<DIR>"
            if entry.is_dir
            else str(entry.size_bytes if entry.size_bytes is not None else "?")
        )
        click.echo(f"{size:>12}  {entry.name}")


@ftp.command("get", context_settings=_CONTEXT)
@click.argument("host")
@click.argument("remote")
@click.argument(
    "local", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-"
)
@_ftp_options
def ftp_get(
    *, host: str, remote: str, local: Path, port: int, user: str, password: str, timeout_s: float
) -> None:
    """Download REMOTE to LOCAL (default: stdout)."""

    async def main() -> bytes:
        async with _ftp_client(host, port, user, password, timeout_s) as client:
            return await client.download(remote)

    data = _run(main())
    if str(local) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        local.write_bytes(data)
        click.echo(f"{remote}: {len(data)} bytes written to {local}", err=True)


@ftp.command("put", context_settings=_CONTEXT)
@click.argument("host")
@click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("remote")
@_ftp_options
def ftp_put(
    *, host: str, local: Path, remote: str, port: int, user: str, password: str, timeout_s: float
) -> None:
    """Upload LOCAL to REMOTE on the card."""
    data = local.read_bytes()

    async def main() -> None:
        async with _ftp_client(host, port, user, password, timeout_s) as client:
            await client.upload(remote, data)

    _run(main())
    click.echo(f"{local}: {len(data)} bytes uploaded to {remote}")


@ftp.command("install-compact", context_settings=_CONTEXT)
@click.argument("host")
@click.option("--name", default="WESH.CGX", show_default=True, help="File name on the card.")
@_ftp_options
def ftp_install_compact(
    *, host: str, name: str, port: int, user: str, password: str, timeout_s: float
) -> None:
    """Install wesh's compact template; then poll it with `get --path /NAME --compact`."""

    async def main() -> str:
        async with _ftp_client(host, port, user, password, timeout_s) as client:
            return await client.install_template(name, compact_stock_template())

    path = _run(main())
    click.echo(f"installed {path}; poll it with: wesh wes get {host} --path {path} --compact")


@wes.command(context_settings=_CONTEXT)
@click.argument("host")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@_ftp_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: rows, errors, readings.")
def logs(
    *,
    host: str,
    day: datetime,
    port: int,
    user: str,
    password: str,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Download and parse the CSV log of DAY (YYYY-MM-DD) from the card."""

    async def main() -> CsvLog:
        async with _ftp_client(host, port, user, password, timeout_s) as client:
            return await client.download_logs(day.date())

    log = _run(main())
    readings = log.readings(poll_time=_now())
    if as_json:
        _echo_json(
            {
                "day": day.date(),
                "columns": log.columns,
                "errors": [str(e) for e in log.errors],
                "readings": _reading_rows(readings),
            }
        )
        return
    table = Table(title=f"{host} log of {day.date().isoformat()}")
    table.add_column("time")
    for column in log.columns:
        table.add_column(column.header(), justify="right")
    for row in log.rows:
        cells = [row.values.get(c.path) for c in log.columns]
        table.add_row(
            row.box_time.strftime("%H:%M:%S"), *("" if v is None else f"{v:g}" for v in cells)
        )
    Console().print(table)
    for error in log.errors:
        click.echo(f"warning: {error}", err=True)
