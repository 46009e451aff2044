"""``wesh sim``: run simulated devices (a farm of WES servers) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from wesh.wes.model import Firmware

if TYPE_CHECKING:
    from wesh.sim.farm import FarmConfig, SimFarm

__all__ = ["sim"]


@click.group()
def sim() -> None:
    """Run simulated devices (WES servers) on loopback."""


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date-time: {text!r}") from exc
    if when.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2025-01-15T06:00+01:00")
    return when


@sim.command("wes")
@click.option("--count", "-n", type=click.IntRange(1, 20_000), default=1, show_default=True)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port mode: box i gets HTTP port P+i on 127.0.0.1 (default 18080; 0: any free ports).",
)
@click.option(
    "--base-address", default=None, help="Address mode: box i listens on this 127.x address + i."
)
@click.option(
    "--ftp-base-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port mode: first FTP port (default base port + count).",
)
@click.option(
    "--m2m-base-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port mode: first M2M port (default base port + 2 x count).",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Address mode: HTTP port (default 80 as root, else 8080).",
)
@click.option(
    "--ftp-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Address mode: FTP port (default 21 as root, else 2121).",
)
@click.option(
    "--m2m-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Address mode: M2M port (default 1500).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--start",
    "start_text",
    default=None,
    help="Simulated start time, ISO 8601 with offset (default: now).",
)
@click.option(
    "--faults",
    default="",
    help=(
        'Fault specification, e.g. "3:latency=2;5:leak=60;7:temp=8;0:overload;*:truncated@0.1" '
        "(docs/sim.md); change them at run time with --admin-port."
    ),
)
@click.option(
    "--firmware",
    type=click.Choice([*(f.value for f in Firmware), "mixed"]),
    default=Firmware.V084A10.value,
    show_default=True,
)
@click.option(
    "--hardware",
    type=click.Choice(["V1", "V2"]),
    default="V2",
    show_default=True,
)
@click.option(
    "--flats",
    type=click.IntRange(1, 1000),
    default=40,
    show_default=True,
    help="Dwellings per building (each building also has a common-areas box).",
)
@click.option(
    "--ftp/--no-ftp",
    default=True,
    show_default=True,
    help="Run the FTP servers (and keep CSV logs).",
)
@click.option("--m2m/--no-m2m", default=True, show_default=True, help="Run the M2M TCP servers.")
@click.option(
    "--admin-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the admin JSON API on 127.0.0.1:PORT.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many real seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the boxes as one JSON document.")
@click.option("--verbose", "-v", is_flag=True, help="Log what the boxes do.")
def wes_command(
    *,
    count: int,
    base_port: int | None,
    base_address: str | None,
    ftp_base_port: int | None,
    m2m_base_port: int | None,
    http_port: int | None,
    ftp_port: int | None,
    m2m_port: int | None,
    seed: int,
    speed: float,
    start_text: str | None,
    faults: str,
    firmware: str,
    hardware: str,
    flats: int,
    ftp: bool,
    m2m: bool,
    admin_port: int | None,
    seconds: float | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Run COUNT simulated WES servers until interrupted (Ctrl-C or SIGTERM)."""
    # Imported here: the servers pull aiohttp and aioftp, other commands need not.
    from wesh.sim.farm import FarmConfig  # noqa: PLC0415
    from wesh.sim.faults import FaultSpec  # noqa: PLC0415
    from wesh.sim.model import Hardware  # noqa: PLC0415

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if base_port is None and base_address is None:
        base_port = 18080
    config = FarmConfig(
        count=count,
        seed=seed,
        speed=speed,
        start=_parse_start(start_text),
        base_port=base_port,
        base_address=base_address,
        ftp_base_port=ftp_base_port,
        m2m_base_port=m2m_base_port,
        http_port=http_port,
        ftp_port=ftp_port,
        m2m_port=m2m_port,
        firmware=firmware if firmware == "mixed" else Firmware(firmware),
        hardware=Hardware(hardware),
        flats=flats,
        faults=FaultSpec.parse(faults),
        ftp=ftp,
        m2m=m2m,
        admin_port=admin_port,
    )
    config.validate()
    asyncio.run(_serve(config, seconds=seconds, as_json=as_json))


async def _serve(config: FarmConfig, *, seconds: float | None, as_json: bool) -> None:
    from wesh.sim.farm import SimFarm  # noqa: PLC0415

    farm = SimFarm(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await farm.start()
    try:
        _print_farm(farm, as_json=as_json)
        if seconds is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
    finally:
        await farm.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)
    click.echo("wesh sim: stopped.", err=True)


def _print_farm(farm: SimFarm, *, as_json: bool) -> None:
    boxes = farm.describe()
    if as_json:
        document = {"boxes": boxes, "admin": farm.admin_url, "start": farm.clock.now().isoformat()}
        click.echo(json.dumps(document))
    else:
        for box in boxes:
            faults = box["faults"]
            click.echo(
                f"{box['index']:>5}  {box['name']:<10} {box['kind']:<8} {box['firmware']:<10} "
                f"{box['http']}  ftp={box['ftp'] or '-'}  m2m={box['m2m'] or '-'}"
                + (f"  faults={','.join(faults)}" if isinstance(faults, list) and faults else "")
            )
        if farm.admin_url:
            click.echo(f"admin API: {farm.admin_url}")
        click.echo(
            f"{len(boxes)} WES boxes running (accounts admin/wes, user/wes, FTP adminftp/wesftp); "
            "Ctrl-C to stop.",
            err=True,
        )
    sys.stdout.flush()
