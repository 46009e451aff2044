"""``make demo`` (``wesh demo``): the whole chain, from simulated boxes to headquarters.

Nothing to install: simulated devices, SQLite files and in-process links, in ``.demo/``
(wiped at start). It runs by itself for about a minute, then stops everything::

    0. wesh.tic.demo      four simulated Téléinfo meters decoded live (a few seconds)
    1. HQ                 .demo/hq.sqlite3 (migrate) ◀── .demo/inventory.toml (import):
                          agency → residence → building B001 → common area + 4 dwellings,
                          tenancies, gateway b001, its 5 boxes and their channels
       export            inventory ──export_gateway_config──▶ .demo/weshd.toml
                          (+ the local settings the inventory does not hold: ports of the
                          simulated boxes, poll interval, state directory, socket)
    2. wesh.sim           5 simulated WES (B001-PC, B001-L01..L04), time x speed
    3. weshd (Gateway)    polls them per .demo/weshd.toml; API on .demo/weshd.sock
    4. Tonique            agent on weshd's store ──SMS (loopback, 10 % lost)──▶ receiver
                          ──HqSink──▶ .demo/hq.sqlite3 (readings, hourly rollups)
    5. screen             libwesh (as weshclient) answers; SMS counted; HQ filling up
    6. the end            `wesh hq consumption --by hour` on what arrived, and the commands
                          to explore further by hand

**One clock.** The simulated boxes run ``speed`` times faster than the wall clock, from
a fixed winter morning; weshd, the sync agent, the receiver and the HQ sink are all
given that same simulated clock, so a reading's time is the simulated instant it was
read and HQ's hours are simulated hours. The clock stands still while the demo sets up
(:class:`DemoClock`) and starts when weshd does.

The screen is a Rich ``Live`` on a terminal (French by default, English with
``lang="en"``), plain periodic lines otherwise. Logs go to ``.demo/demo.log``.

Modules: :mod:`wesh.demo.building` (the inventory and weshd.toml texts, pure),
:mod:`wesh.demo.screen` (messages and rendering, pure), :mod:`wesh.demo.chain` (the
clock and the running chain); this one has :func:`run_demo` and the closing part.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.console import Console

from wesh.demo.building import (
    BASE_ADDRESS,
    BOX_COUNT,
    BUILDING,
    DWELLING_COUNT,
    SEED,
    DemoBox,
    inventory_toml,
    with_local_settings,
)
from wesh.demo.chain import (
    DEFAULT_SPEED,
    SIM_START,
    DemoClock,
    Paths,
    Settings,
    hold_workdir,
    logs_to,
    run_chain,
)
from wesh.demo.screen import (
    Lang,
    Screen,
    consumption_table,
    message,
    number,
    trim_hours,
)
from wesh.errors import UsageError
from wesh.hq.timeutil import PARIS

if TYPE_CHECKING:
    from wesh.hq.queries import ConsumptionRow

__all__ = [
    "DEFAULT_SECONDS",
    "DEFAULT_SPEED",
    "DEFAULT_TIC_SECONDS",
    "SIM_START",
    "DemoBox",
    "DemoClock",
    "DemoSummary",
    "consumption_table",
    "inventory_toml",
    "run_demo",
    "trim_hours",
    "with_local_settings",
]

DEFAULT_SECONDS: Final = 55.0  # the chain's live part
DEFAULT_TIC_SECONDS: Final = 5.0  # the TIC decoding part, before it


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a run showed (for tests and callers): every count is at the end of the run."""

    readings_at_hq: int
    consumption_rows: int
    answers_ok: int
    sms_up: int
    sms_down: int
    simulated_hours: float
    consumption_text: str


def _consumption_args(settings: Settings, first: date, last: date) -> list[str]:
    return [
        "--db",
        settings.paths.shown(settings.paths.db),
        "--building",
        BUILDING,
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
        "--by",
        "hour",
    ]


def _consumption(settings: Settings, first: date, last: date) -> tuple[str, list[ConsumptionRow]]:
    """Run ``wesh hq consumption`` in-process; return its output, and the rows it shows."""
    import click  # noqa: PLC0415

    from wesh.hq.cli import consumption as consumption_command  # noqa: PLC0415
    from wesh.hq.db import make_engine  # noqa: PLC0415
    from wesh.hq.queries import consumption  # noqa: PLC0415

    args = [*_consumption_args(settings, first, last), "--lang", settings.lang]
    args[1] = str(settings.paths.db)
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            consumption_command.main(
                args=args, prog_name="wesh hq consumption", standalone_mode=False
            )
    except click.ClickException as exc:
        buffer.write(exc.format_message() + "\n")
    engine = make_engine(settings.paths.db)
    try:
        rows = consumption(
            engine,
            building=BUILDING,
            start=first,
            end=last + timedelta(days=1),
            by="hour",
        )
    finally:
        engine.dispose()
    return buffer.getvalue(), rows


def _paris_day(at: datetime) -> date:
    return at.astimezone(PARIS).date()


def _print_end(screen: Screen, settings: Settings, console: Console) -> DemoSummary:
    lang, paths = settings.lang, settings.paths
    first, last = _paris_day(settings.start), _paris_day(screen.sim_now)
    text, rows = _consumption(settings, first, last)
    hours = len({row.label for row in rows if row.value is not None})
    command = "wesh hq consumption " + " ".join(_consumption_args(settings, first, last))
    console.print()
    console.print(message(lang, "end.consumption"), style="bold", highlight=False)
    console.print(f"$ {command}", highlight=False, soft_wrap=True)
    first_hour = settings.start.replace(minute=0, second=0, microsecond=0)
    shown, dropped = trim_hours(text, first_hour, screen.sim_now)
    if max(map(len, shown.splitlines()), default=0) <= console.width:
        console.print(shown, markup=False, highlight=False, soft_wrap=True, end="")
        if dropped:
            console.print(message(lang, "end.trimmed", count=dropped), style="dim", highlight=False)
    else:  # the command's table would wrap: the same figures, narrower
        console.print(consumption_table(rows, first=first_hour, last=screen.sim_now, lang=lang))
        console.print(message(lang, "end.narrow", width=console.width), style="dim")
    if hours == 0:
        console.print(message(lang, "end.no_rows"), highlight=False)
    simulated_h = (screen.sim_now - settings.start).total_seconds() / 3600
    console.print(
        message(
            lang,
            "end.summary",
            readings=number(screen.hq_readings, lang),
            sms_up=screen.sms_up,
            sms_down=screen.sms_down,
            hours=number(simulated_h, lang, 1),
            answers=screen.answers_ok,
        ),
        highlight=False,
    )
    socket = paths.shown(paths.socket)
    config = paths.shown(paths.config)
    db = paths.shown(paths.db)
    sync = paths.shown(paths.sync_dir)
    tries = (
        (
            "try.consumption",
            f"wesh hq consumption --db {db} --building {BUILDING} "
            f"--from {first:%Y-%m} --to {last:%Y-%m} --by day",
        ),
        (
            "try.sim",
            f"wesh sim wes --count {BOX_COUNT} --flats {DWELLING_COUNT} "
            f"--base-address {BASE_ADDRESS} --seed {SEED}",
        ),
        ("try.sync", f"wesh sync status --receiver-state {sync}/sync-receiver.sqlite3"),
        ("try.weshd", f"weshd --config {config}"),
        (
            "try.client",
            f"weshclient --socket {socket} ls; weshclient --socket {socket} watch B001-L01",
        ),
        ("try.tic", "wesh tic demo"),
    )
    console.print()
    console.print(message(lang, "end.try"), style="bold", highlight=False)
    for key, line in tries:
        console.print(f"  # {message(lang, key)}", style="dim", highlight=False)
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    return DemoSummary(
        readings_at_hq=screen.hq_readings,
        consumption_rows=hours,
        answers_ok=screen.answers_ok,
        sms_up=screen.sms_up,
        sms_down=screen.sms_down,
        simulated_hours=simulated_h,
        consumption_text=text,
    )


def run_demo(
    *,
    seconds: float | None = None,
    tic_seconds: float | None = None,
    speed: float = DEFAULT_SPEED,
    lang: Lang = "fr",
    workdir: Path | str = ".demo",
    free_ports: bool = False,
    start: datetime = SIM_START,
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo: the TIC part (``tic_seconds``, 0: none), then the chain for ``seconds``.

    ``workdir`` is wiped first (refused if it holds anything not made by the demo).
    The simulated boxes listen on 127.10.0.1 to 127.10.0.5, on the simulator's usual
    ports (as ``wesh sim wes --base-address 127.10.0.1``), or on free ports if those are
    taken or ``free_ports`` (tests). Returns what the run showed.

    Raises:
        UsageError: bad arguments or work directory.
        WeshError: a part of the chain failed to start.
    """
    from wesh.tic.demo import run_demo as run_tic_demo  # noqa: PLC0415

    console = console or Console()
    duration = DEFAULT_SECONDS if seconds is None else max(1.0, seconds)
    tic_duration = DEFAULT_TIC_SECONDS if tic_seconds is None else max(0.0, tic_seconds)
    if lang not in ("fr", "en"):
        raise UsageError(f"language must be 'fr' or 'en', not {lang!r}")
    paths = Paths(Path(workdir).expanduser().absolute())
    settings = Settings(duration, speed, start, free_ports, lang, paths)
    DemoClock(start, speed)  # checks start and speed before anything starts
    with hold_workdir(paths.workdir):
        if tic_duration > 0:
            run_tic_demo(seconds=tic_duration, console=console, lang=lang)
            console.print()
        with logs_to(paths.log):
            screen = asyncio.run(run_chain(settings, console))
        return _print_end(screen, settings, console)
