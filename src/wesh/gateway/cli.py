"""The ``weshd`` command: run the gateway in the foreground, or check a configuration.

::

    weshd [run] [--config F] [--state-dir DIR] [--socket PATH] [--log-level LEVEL]
                [--stats-interval S]
    weshd check-config [--config F] [--json]

This is the only place of the gateway that reads the environment: ``WESHD_CONFIG``,
``WESHD_STATE_DIR``, ``WESHD_SOCKET`` (the options' defaults), ``WESHD_LOG_LEVEL``, and
systemd's ``NOTIFY_SOCKET``, ``WATCHDOG_USEC``/``WATCHDOG_PID`` and ``JOURNAL_STREAM``.
Exit status: 0 after a clean stop (SIGTERM, SIGINT), 1 for a configuration error (the
message names ``file:line``), 2 for a usage error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from wesh import __version__
from wesh.errors import ConfigError, WeshError
from wesh.gateway.config import DEFAULT_CONFIG_PATH, GatewayConfig, apply_overrides, load_config

__all__ = ["main", "weshd"]

_LOG = logging.getLogger("wesh.gateway")
_LEVELS = ("debug", "info", "warning", "error")


class _DefaultRun(click.Group):
    """A group whose default subcommand is ``run``: ``weshd --config F`` runs the daemon."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Insert ``run`` unless the first argument names a subcommand or asks for help."""
        if not args or (
            args[0] not in self.commands and args[0] not in ("-h", "--help", "--version")
        ):
            args = ["run", *args]
        return super().parse_args(ctx, args)


_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="WESHD_CONFIG",
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="Configuration file (env WESHD_CONFIG).",
)
_STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="WESHD_STATE_DIR",
    default=None,
    help="Directory of the store; overrides state_dir of the file (env WESHD_STATE_DIR).",
)
_SOCKET_OPTION = click.option(
    "--socket",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="WESHD_SOCKET",
    default=None,
    help="Unix socket of the API; overrides api.socket of the file (env WESHD_SOCKET).",
)


@click.group(
    cls=_DefaultRun,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="weshd")
def weshd() -> None:
    """weshd, the building gateway: polls the WES servers and meters, keeps their readings.

    Without a subcommand, `run` is implied: `weshd --config /etc/wesh/weshd.toml`.
    """


@weshd.command()
@_CONFIG_OPTION
@_STATE_DIR_OPTION
@_SOCKET_OPTION
@click.option(
    "--log-level",
    type=click.Choice(_LEVELS, case_sensitive=False),
    envvar="WESHD_LOG_LEVEL",
    default="info",
    show_default=True,
    help="Least severe messages logged (env WESHD_LOG_LEVEL).",
)
@click.option(
    "--stats-interval",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds between two polling summaries in the log (0: none).",
)
def run(
    config_path: Path,
    state_dir: Path | None,
    socket: Path | None,
    log_level: str,
    stats_interval: float,
) -> None:
    """Run the gateway in the foreground until SIGTERM or SIGINT; SIGHUP reloads."""
    from wesh.gateway.daemon import Gateway, SystemdNotifier  # noqa: PLC0415 - heavy imports

    _setup_logging(log_level)
    notifier = SystemdNotifier(os.environ.get("NOTIFY_SOCKET"))
    gateway = Gateway.from_file(
        config_path,
        state_dir=state_dir,
        socket=socket,
        notifier=notifier,
        stats_interval_s=stats_interval,
        watchdog_interval_s=_watchdog_interval_s(),
    )
    try:
        asyncio.run(gateway.run(install_signal_handlers=True))
    except WeshError:
        notifier.notify("STOPPING=1")
        raise


@weshd.command("check-config")
@_CONFIG_OPTION
@_STATE_DIR_OPTION
@_SOCKET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def check_config(
    config_path: Path, state_dir: Path | None, socket: Path | None, as_json: bool
) -> None:
    """Validate a configuration without running: exit 0 with a summary, or 1 and the problems."""
    try:
        config = apply_overrides(load_config(config_path), state_dir=state_dir, socket=socket)
    except ConfigError as exc:
        problems = getattr(exc, "problems", None) or [exc]
        if as_json:
            listed = [
                {"where": getattr(p, "where", None), "message": getattr(p, "message", str(p))}
                for p in problems
            ]
            click.echo(json.dumps({"ok": False, "file": str(config_path), "problems": listed}))
        else:
            for problem in problems:
                where = getattr(problem, "where", None)
                message = getattr(problem, "message", str(problem))
                click.echo(f"{where}: {message}" if where else message, err=True)
        sys.exit(1)
    summary = _summary(config_path, config)
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False))
        return
    boxes = summary["boxes"]
    enabled = [b for b in boxes if b["enabled"]]
    drivers = ", ".join(
        f"{sum(1 for b in enabled if b['driver'] == d)} {d}"
        for d in sorted({b["driver"] for b in enabled})
    )
    click.echo(f"{config_path}: OK")
    click.echo(f"  site      {summary['site']['id']} ({summary['site']['name']})")
    click.echo(
        f"  boxes     {len(boxes)} ({len(enabled)} enabled{': ' + drivers if drivers else ''})"
    )
    click.echo(f"  store     {summary['store']}")
    api = f"unix:{summary['api']['socket']}"
    if summary["api"]["tcp"]:
        api += f", tcp:{summary['api']['tcp']} (token)"
    click.echo(f"  api       {api}")
    click.echo(f"  mqtt      {summary['mqtt'] or 'off'}")


def _summary(path: Path, config: GatewayConfig) -> dict[str, Any]:
    mqtt = config.mqtt
    return {
        "file": str(path),
        "site": {"id": config.site.id, "name": config.site.name},
        "state_dir": str(config.state_dir),
        "store": str(config.store_path),
        "api": {"socket": str(config.api.socket), "tcp": config.api.tcp},
        "mqtt": f"{mqtt.host}:{mqtt.port}" if mqtt is not None and mqtt.enabled else None,
        "poll": config.poll.model_dump(),
        "boxes": [
            {
                "id": box.id,
                "driver": box.driver,
                "enabled": box.enabled,
                "poll_interval_s": box.poll_interval_s,
                "channels": len(box.channels),
            }
            for box in config.boxes
        ],
    }


def _setup_logging(level: str) -> None:
    """Log to stderr; without timestamps under systemd (the journal adds its own)."""
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journal:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    if level.lower() != "debug":  # keep third-party chatter out of the journal
        for noisy in ("uvicorn", "uvicorn.error", "aiomqtt", "aioftp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _watchdog_interval_s() -> float | None:
    """Half of systemd's ``WATCHDOG_USEC`` if it is meant for this process, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return max(0.5, int(usec) / 2_000_000)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``weshd``: errors become one line on stderr and an exit status."""
    try:
        weshd.main(args=args, prog_name="weshd", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WeshError as exc:
        click.echo(f"weshd: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
