"""The ``wesh`` command (and the ``weshd`` / ``weshclient`` entry points).

This is the only place that reads the environment and turns :class:`WeshError` into
an exit status and a one-line message on stderr.
"""

from __future__ import annotations

import os
import sys

import click

from wesh import __version__
from wesh.errors import WeshError
from wesh.hq.cli import hq
from wesh.sim.cli import sim
from wesh.sync.cli import sync
from wesh.tic.cli import tic
from wesh.wes.cli import wes

__all__ = ["cli", "main", "weshclient_main", "weshd_main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wesh")
def cli() -> None:
    """wesh: energy, water and comfort readings from buildings to headquarters."""


cli.add_command(tic)
cli.add_command(wes)
cli.add_command(sim)
cli.add_command(hq)
cli.add_command(sync)


@cli.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=None,
    help="How long the chain runs, in wall seconds (default 55).",
)
@click.option(
    "--tic-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="How long the TIC decoding part runs first (default 5; 0: skip it).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1, max=3600),
    default=360.0,
    show_default=True,
    help="Simulated seconds per wall second.",
)
@click.option("--lang", type=click.Choice(["fr", "en"]), help="Language (default from LANG).")
def demo(seconds: float | None, tic_seconds: float | None, speed: float, lang: str | None) -> None:
    """Run the whole chain on simulated devices, then stop (what `make demo` runs).

    Simulated WES boxes are polled by weshd; readings travel as simulated SMS to
    headquarters' SQLite store; `wesh hq consumption` answers at the end. Files go to
    .demo/ (wiped at start); docs/demo.md says how to explore further by hand.
    """
    from wesh.demo import run_demo  # noqa: PLC0415 - keep start-up light for other commands

    if lang is None:
        lang = "en" if os.environ.get("LANG", "").lower().startswith("en") else "fr"
    run_demo(
        seconds=seconds,
        tic_seconds=tic_seconds,
        speed=speed,
        lang="en" if lang == "en" else "fr",
    )


def _run(command: click.Command, args: list[str] | None = None) -> None:
    try:
        command.main(args=args, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WeshError as exc:
        click.echo(f"wesh: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``wesh`` command."""
    _run(cli, args)


def weshd_main(args: list[str] | None = None) -> None:
    """Entry point of the ``weshd`` command (see :mod:`wesh.gateway.cli`)."""
    from wesh.gateway.cli import main as weshd  # noqa: PLC0415 - keep start-up light for `wesh`

    weshd(args)


def weshclient_main(args: list[str] | None = None) -> None:
    """Entry point of the ``weshclient`` command (see :mod:`wesh.client.cli`)."""
    from wesh.client.cli import weshclient  # noqa: PLC0415 - keep start-up light for `wesh`

    _run(weshclient, args)
