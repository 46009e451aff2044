"""Running the demo's chain: the clock, the work directory, and every part started in order.

:func:`run_chain` (one ``asyncio.run``) starts, in order, the simulated boxes, the HQ
store (schema, inventory import, weshd.toml export), weshd on that file, the sync pair,
and a libwesh client; it refreshes the :class:`~wesh.demo.screen.Screen` every second
for ``seconds``, then stops everything in reverse order (an exit stack: also on errors
and Ctrl-C). Everything shares one :class:`DemoClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from rich.console import Console, RenderableType
from rich.live import Live

from wesh.demo.building import (
    BASE_ADDRESS,
    BOX_COUNT,
    DWELLING_COUNT,
    POLL_INTERVAL_S,
    SEED,
    SITE,
    WATCHED,
    DemoBox,
    alerts_toml,
    inventory_toml,
    with_local_settings,
)
from wesh.demo.screen import (
    AlertLine,
    Answer,
    Lang,
    Screen,
    local_time,
    message,
    plain_line,
    render,
)
from wesh.errors import ConfigError, UsageError, WeshError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wesh.client import AsyncWeshClient
    from wesh.gateway.config import GatewayConfig
    from wesh.gateway.daemon import Gateway
    from wesh.hq.alerts.capture import CapturedMail, CaptureServer
    from wesh.hq.alerts.engine import AlertEngine
    from wesh.hq.alerts.outbox import OutboxWorker
    from wesh.sim import SimFarm
    from wesh.sync.pair import SyncPair

__all__ = [
    "DEFAULT_SPEED",
    "FAULT_AT",
    "FAULT_BOX",
    "SIM_START",
    "SMS_LOSS",
    "Alerting",
    "Chain",
    "DemoClock",
    "Paths",
    "Settings",
    "aiosmtpd_installed",
    "hold_workdir",
    "logs_to",
    "open_alerting",
    "run_chain",
    "start_alerting",
    "start_chain",
]

DEFAULT_SPEED: Final = 360.0  # simulated seconds per wall second: an hour every 10 s
#: 05:45 in Paris on a winter Wednesday: the 05:00 hour gives HQ its first indexes.
SIM_START: Final = datetime(2025, 1, 15, 4, 45, tzinfo=UTC)
SMS_LOSS: Final = 0.1
_SMS_FAULT_SEED: Final = 5  # the SMS lost are the same in every run: a few, both ways
_TICK_S: Final = 1.0
_PLAIN_EVERY_S: Final = 5.0
_MARKER: Final = ".wesh-demo"
#: The box that stops answering during the demo, and when (share of the live part): about
#: 06:30 simulated, so that "box silent" (2 h without a reading, counted from the end of
#: its last hour) fires at about 09:00 and is mailed well before the end (11:15).
FAULT_BOX: Final = "B001-L04"
FAULT_AT: Final = 0.12
#: The one line said when aiosmtpd (the ``demo`` extra) is missing.
_NO_AIOSMTPD: Final[Mapping[Lang, str]] = {
    "fr": "⑤ Alertes\u00a0: partie sautée (aiosmtpd absent)\u00a0; "
    "installez wesh[demo] pour voir le courriel d'alerte (pip install 'wesh[demo]').",
    "en": "⑤ Alerts: part skipped (aiosmtpd missing); "
    "install wesh[demo] to see the alert mail (pip install 'wesh[demo]').",
}
_LOG = logging.getLogger(__name__)


class DemoClock:
    """Simulated time: still at ``start`` until :meth:`begin`, then ``speed`` times faster.

    Shared by the simulated boxes (it is a :class:`wesh.sim.clock.Clock`), weshd, the
    sync pair and the HQ sink. ``monotonic`` is the real-time source.
    """

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise UsageError("the simulated start must be timezone-aware")
        if not speed > 0:
            raise UsageError(f"the speed must be positive, not {speed}")
        self.speed = speed
        self._start_ts = start.timestamp()
        self._monotonic = monotonic
        self._origin: float | None = None

    def begin(self) -> None:
        """Let simulated time run from now on (idempotent)."""
        if self._origin is None:
            self._origin = self._monotonic()

    def timestamp(self) -> float:
        """Return the simulated time as POSIX seconds."""
        if self._origin is None:
            return self._start_ts
        return self._start_ts + (self._monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        """Return the simulated time, aware UTC."""
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)


@dataclass(frozen=True, slots=True)
class Paths:
    """The files of a run, all under the work directory."""

    workdir: Path

    @property
    def db(self) -> Path:
        """The HQ database."""
        return self.workdir / "hq.sqlite3"

    @property
    def inventory(self) -> Path:
        """The inventory imported into it."""
        return self.workdir / "inventory.toml"

    @property
    def config(self) -> Path:
        """The configuration weshd runs with, exported from the inventory."""
        return self.workdir / "weshd.toml"

    @property
    def socket(self) -> Path:
        """The socket of weshd's API."""
        return self.workdir / "weshd.sock"

    @property
    def sync_dir(self) -> Path:
        """The sync agent's and receiver's state files."""
        return self.workdir / "sync"

    @property
    def alerts_config(self) -> Path:
        """The alert engine's configuration (rules, contacts, the capturing SMTP server)."""
        return self.workdir / "alerts.toml"

    @property
    def log(self) -> Path:
        """Every log record of the run."""
        return self.workdir / "demo.log"

    def shown(self, path: Path) -> str:
        """Return the path as the user would type it: relative to the current folder if inside."""
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


@dataclass(frozen=True, slots=True)
class Settings:
    """What a run is asked to do (see :func:`wesh.demo.run_demo`)."""

    seconds: float
    speed: float
    start: datetime
    free_ports: bool
    lang: Lang
    paths: Paths


@contextlib.contextmanager
def hold_workdir(workdir: Path) -> Iterator[None]:
    """Hold the work directory for a run: locked, emptied, marked as the demo's.

    A directory that is not empty and has no marker was not made by the demo: refused.
    The marker is locked (``flock``) for the whole run, so a second demo on the same
    directory stops at once instead of wiping the first one's files.
    """
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"{workdir} is not a directory", where=str(workdir))
    marker = workdir / _MARKER
    if workdir.exists() and any(workdir.iterdir()) and not marker.exists():
        raise UsageError(
            f"refusing to wipe {workdir}: it is not empty and was not made by wesh demo",
            where=str(workdir),
        )
    workdir.mkdir(parents=True, exist_ok=True)
    with marker.open("a+", encoding="utf-8") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another wesh demo is running in {workdir}; wait for it to end",
                where=str(workdir),
            ) from None
        for entry in workdir.iterdir():
            if entry == marker:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        held.truncate(0)
        held.write("made by `wesh demo`; emptied at its next start\n")
        held.flush()
        yield


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send every log record (wesh's from INFO, others' from WARNING) to ``path``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    wesh_logger = logging.getLogger("wesh")
    level = wesh_logger.level
    root.addHandler(handler)
    wesh_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        wesh_logger.setLevel(level)
        root.removeHandler(handler)
        handler.close()


async def _start_farm(
    settings: Settings, clock: DemoClock, stack: contextlib.AsyncExitStack
) -> tuple[SimFarm, bool]:
    """Run the simulated boxes on the usual ports if free, else on free ports.

    Returns the farm and whether it got the ports asked for.
    """
    from wesh.sim import run_simulators  # noqa: PLC0415 - heavy imports, demo only

    attempts = (True,) if settings.free_ports else (False, True)
    for free in attempts:
        port = 0 if free else None  # 0: a free port; None: the simulator's usual one
        try:
            farm = await stack.enter_async_context(
                run_simulators(
                    count=BOX_COUNT,
                    flats=DWELLING_COUNT,  # one building: its boiler heats 4 dwellings
                    base_address=BASE_ADDRESS,
                    seed=SEED,
                    speed=settings.speed,
                    clock=clock,
                    http_port=port,
                    ftp_port=port,
                    m2m_port=port,
                )
            )
        except ConfigError:
            if free:
                raise
            continue
        return farm, not free
    raise AssertionError("unreachable")  # pragma: no cover


def _demo_boxes(farm: SimFarm) -> list[DemoBox]:
    boxes = []
    for handle in farm.boxes:
        described = handle.describe()
        if handle.m2m is None:  # pragma: no cover - the demo always runs M2M
            raise UsageError("the demo's boxes need their M2M server")
        boxes.append(
            DemoBox(
                ref=str(described["name"]),
                common=described["kind"] == "common",
                host=handle.http.host,
                mac=str(described["mac"]),
                firmware=str(described["firmware"]),
                http_port=handle.http.port,
                m2m_port=handle.m2m.port,
            )
        )
    return boxes


async def _stop_gateway(gateway: Gateway, task: asyncio.Task[None]) -> None:
    gateway.request_stop("demo over")
    await task


async def _wait_ready(gateway: Gateway, task: asyncio.Task[None], timeout_s: float = 30) -> None:
    ready = asyncio.create_task(gateway.ready.wait())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ready.cancel()
    if task in done:
        task.result()  # raises what stopped weshd
        raise WeshError("weshd stopped before it was ready")
    if ready not in done:
        raise WeshError(f"weshd was not ready within {timeout_s:g} s")


def _hq_counts(engine: Engine) -> tuple[int, int, datetime | None]:
    from sqlalchemy import func, select  # noqa: PLC0415

    from wesh.hq.db import translate_errors  # noqa: PLC0415
    from wesh.hq.models import Reading, RollupHour  # noqa: PLC0415

    with translate_errors(engine), engine.connect() as conn:
        readings = conn.scalar(select(func.count()).select_from(Reading)) or 0
        hours = (
            conn.scalar(
                select(func.count(func.distinct(RollupHour.hour_start))).where(
                    RollupHour.consumption.is_not(None)
                )
            )
            or 0
        )
        last = conn.scalar(select(func.max(Reading.at)))
    return int(readings), int(hours), last


async def _refresh(
    screen: Screen,
    *,
    client: AsyncWeshClient,
    gateway: Gateway,
    pair: SyncPair,
    engine: Engine,
    lang: Lang,
) -> None:
    from wesh.client.cli import format_reading  # noqa: PLC0415

    try:
        screen.boxes = await client.boxes()
    except WeshError as exc:
        screen.answers = [Answer("weshd", "boxes", str(exc), ok=False)]
        return
    answers = []
    for box_ref, path in WATCHED:
        try:
            value = await client.value(box_ref, path)
        except UsageError:  # 404: a configured channel not read yet
            answers.append(Answer(box_ref, path, message(lang, "values.none"), ok=False))
            continue
        except WeshError as exc:
            answers.append(Answer(box_ref, path, exc.message, ok=False))
            continue
        screen.answers_ok += 1
        answers.append(
            Answer(box_ref, path, format_reading(value, lang), ok=True, label=value.label)
        )
    screen.answers = answers
    screen.count_sms(pair.stats())
    with contextlib.suppress(WeshError):
        screen.queue_depth = gateway.store.queue_depth()
    screen.hq_readings, screen.hq_hours, screen.hq_last_hour = _hq_counts(engine)


@dataclass(slots=True)
class Chain:
    """The running chain (see :func:`start_chain`): every part, for the screen and tests."""

    clock: DemoClock
    farm: SimFarm
    boxes: list[DemoBox]
    engine: Engine  # headquarters' database
    gateway: Gateway
    pair: SyncPair
    config: GatewayConfig


def _ignore(key: str, values: Mapping[str, object]) -> None:
    """Say nothing (the default step reporter)."""


@contextlib.asynccontextmanager
async def start_chain(
    settings: Settings,
    *,
    clock: DemoClock,
    report: Callable[[str, Mapping[str, object]], None] = _ignore,
    poll_interval_s: float = POLL_INTERVAL_S,
    poll_backoff_s: tuple[float, float] = (2.0, 10.0),
    agent_options: Mapping[str, object] | None = None,
    sms_loss: float = SMS_LOSS,
) -> AsyncIterator[Chain]:
    """Start the boxes, headquarters, weshd and the sync pair; stop them all on exit.

    ``report(key, values)`` is told each step (``step.hq``, ``step.sim``, ``step.weshd``,
    ``step.sync``, and ``ports.moved``) with the values of its message. The clock begins
    when weshd starts. ``poll_interval_s`` and ``poll_backoff_s`` (first and longest wait
    before polling a box that stopped answering) are weshd's, in wall seconds.
    ``agent_options`` override fields of the demo's agent configuration (e.g.
    ``status_interval_s``); ``sms_loss`` is the share of SMS the
    link loses (the same ones at every run). Used by the demo and by the alert
    scenario test (``tests/hq/alerts/test_scenario.py``).
    """
    from wesh.gateway.config import load_config  # noqa: PLC0415 - heavy imports, demo only
    from wesh.gateway.daemon import Gateway  # noqa: PLC0415
    from wesh.hq.db import make_engine  # noqa: PLC0415
    from wesh.hq.gateway_export import export_gateway_config  # noqa: PLC0415
    from wesh.hq.ingest import HqSink  # noqa: PLC0415
    from wesh.hq.inventory import import_inventory  # noqa: PLC0415
    from wesh.hq.migrate import migrate  # noqa: PLC0415
    from wesh.sync.agent import AgentConfig  # noqa: PLC0415
    from wesh.sync.loopback import FaultPlan  # noqa: PLC0415
    from wesh.sync.pair import HQ_PEER, quick_configs, run_sync_pair  # noqa: PLC0415
    from wesh.sync.schema import schema_from_config  # noqa: PLC0415

    paths = settings.paths
    async with contextlib.AsyncExitStack() as stack:
        farm, usual_ports = await _start_farm(settings, clock, stack)
        boxes = _demo_boxes(farm)
        # 1. headquarters: schema, inventory, weshd.toml exported from it
        engine = make_engine(paths.db)
        stack.callback(engine.dispose)
        revision = migrate(engine)
        paths.inventory.write_text(inventory_toml(boxes), encoding="utf-8")
        imported = import_inventory(engine, paths.inventory)
        if not imported.ok:
            raise imported.errors[0]
        report(
            "step.hq",
            {
                "db": paths.shown(paths.db),
                "revision": revision,
                "inventory": paths.shown(paths.inventory),
                "records": imported.applied,
            },
        )
        exported = export_gateway_config(engine, SITE)
        paths.config.write_text(
            with_local_settings(
                exported, boxes, poll_interval_s=poll_interval_s, backoff_s=poll_backoff_s
            ),
            encoding="utf-8",
        )
        config = load_config(paths.config)
        # 2. the simulated boxes
        report(
            "step.sim",
            {
                "count": len(boxes),
                "seed": SEED,
                "speed": f"{settings.speed:g}",
                "start": local_time(settings.start, "%Y-%m-%d %H:%M"),
                "listing": tuple(
                    f"   {handle.describe()['name']:<9} {handle.url}  m2m={handle.m2m}"
                    for handle in farm.boxes
                ),
            },
        )
        if not usual_ports and not settings.free_ports:
            report("ports.moved", {})
        # 3. weshd, on the exported file, on the simulated clock
        gateway = Gateway(config, config_path=paths.config, clock=clock.now, stats_interval_s=0)
        clock.begin()
        weshd = asyncio.create_task(gateway.run(), name="demo-weshd")
        stack.push_async_callback(_stop_gateway, gateway, weshd)
        await _wait_ready(gateway, weshd)
        report(
            "step.weshd",
            {
                "config": paths.shown(paths.config),
                "boxes": len(config.boxes),
                "channels": sum(len(b.channels) for b in config.boxes),
                "socket": paths.shown(paths.socket),
            },
        )
        # 4. the sync: agent on weshd's store, receiver into HQ, over lossy SMS
        _, receiver_config = quick_configs(config.site.id)
        agent_fields: dict[str, Any] = {  # times in simulated seconds, except poll_s
            "site": config.site.id,
            "hq_peer": HQ_PEER,
            "mode": "hour",  # hourly indexes and means, as a real site sends them
            "close_delay_s": 120.0,
            "upload_interval_s": 0.0,  # each hour as soon as it closes (a site waits longer)
            "sms_budget_per_day": 200,
            "retry_initial_s": 600.0,
            "retry_max_s": 3600.0,
            "fragment_retry_s": 120.0,
            "status_interval_s": 6 * 3600.0,
            "max_chars": 160,
            "poll_s": 0.5,
            "seed": SEED,
            **(agent_options or {}),
        }
        agent_config = AgentConfig(**agent_fields)

        def boxes_up_down() -> tuple[int, int]:
            states = [s.up for s in gateway.status().values()]
            return sum(1 for up in states if up), sum(1 for up in states if up is False)

        pair = await stack.enter_async_context(
            run_sync_pair(
                queue=gateway.store,
                site=config.site.id,
                schema=schema_from_config(config),
                sink=HqSink(engine, now=clock.now),
                state_dir=paths.sync_dir,
                faults=FaultPlan(loss=sms_loss, seed=_SMS_FAULT_SEED),
                agent_config=agent_config,
                receiver_config=receiver_config,
                clock=clock.now,
                boxes=boxes_up_down,
            )
        )
        report("step.sync", {"loss": round(sms_loss * 100)})
        yield Chain(clock, farm, boxes, engine, gateway, pair, config)


@dataclass(slots=True)
class Alerting:
    """The demo's alert part: a capturing SMTP server, the alert engine, the outbox worker.

    Both run on the demo's clock; :meth:`step` is one evaluation and one outbox pass.
    """

    server: CaptureServer
    engine: AlertEngine
    mailer: OutboxWorker
    evaluate_every: float  # simulated seconds
    evaluations: int = 0
    errors: int = 0

    def step(self) -> None:
        """Evaluate the rules (transitions, mails queued in the outbox)."""
        try:
            self.engine.evaluate()
        except WeshError as exc:  # the database is busy or a rule failed: next time
            self.errors += 1
            _LOG.warning("Demo: alert evaluation failed: %s", exc)
        else:
            self.evaluations += 1

    async def send(self) -> None:
        """Send what the outbox holds to the capturing server."""
        try:
            await self.mailer.run_once()
        except WeshError as exc:
            self.errors += 1
            _LOG.warning("Demo: outbox pass failed: %s", exc)


@contextlib.contextmanager
def start_alerting(
    chain: Chain, paths: Paths, lang: Lang, *, evaluate_every: str = "10m"
) -> Iterator[Alerting]:
    """Run a capturing SMTP server on loopback and the alert engine over the chain's HQ.

    Writes ``alerts.toml`` (the rules' defaults, the residence's manager as contact, the
    capturing server as SMTP server). The engine and the outbox worker use the chain's
    clock.

    Raises:
        ConfigError: no capturing server (aiosmtpd missing, or no port).
    """
    from wesh.hq.alerts.capture import CaptureServer  # noqa: PLC0415 - demo only
    from wesh.hq.alerts.config import load_config as load_alerts_config  # noqa: PLC0415
    from wesh.hq.alerts.engine import AlertEngine  # noqa: PLC0415
    from wesh.hq.alerts.outbox import OutboxWorker  # noqa: PLC0415

    with CaptureServer() as server:
        paths.alerts_config.write_text(
            alerts_toml(smtp_port=server.port, lang=lang, evaluate_every=evaluate_every),
            encoding="utf-8",
        )
        config = load_alerts_config(paths.alerts_config)
        engine = AlertEngine(chain.engine, config, worker_id="demo", now=chain.clock.now)
        mailer = OutboxWorker.from_settings(
            chain.engine,
            config.smtp,
            config.outbox,
            sender=config.sender,
            worker_id="demo",
            now=chain.clock.now,
        )
        yield Alerting(server, engine, mailer, config.evaluate_every.total_seconds())


def aiosmtpd_installed() -> bool:
    """Whether the capturing SMTP server can run (aiosmtpd, the ``demo`` extra, importable)."""
    try:
        import aiosmtpd.smtp  # noqa: F401, PLC0415 - an optional dependency
    except ImportError:
        return False
    return True


def open_alerting(
    stack: contextlib.ExitStack[bool | None] | contextlib.AsyncExitStack[bool | None],
    chain: Chain,
    paths: Paths,
    lang: Lang,
    console: Console,
) -> Alerting | None:
    """Start the demo's alert part on ``stack``, or say in one line why it is skipped.

    Without aiosmtpd (``pip install wesh`` without the ``demo`` extra) the line says to
    install ``wesh[demo]``; the rest of the demo runs. Any other :class:`ConfigError`
    (no port) is said the same way. Returns ``None`` when the part is skipped.
    """
    if not aiosmtpd_installed():
        console.print(_NO_AIOSMTPD[lang], highlight=False, markup=False)
        return None
    try:
        return stack.enter_context(start_alerting(chain, paths, lang))
    except ConfigError as exc:
        console.print(message(lang, "step.no_alerts", error=exc.message), highlight=False)
        return None


def _open_alerts(engine: Engine) -> list[AlertLine]:
    from wesh.hq.alerts.store import list_alerts  # noqa: PLC0415
    from wesh.hq.db import translate_errors  # noqa: PLC0415

    with translate_errors(engine), engine.connect() as conn:
        views = list_alerts(conn, states=("pending", "firing"), limit=10)
    lines = []
    for view in views:
        place = view.place
        where = place.dwelling_code or place.box_ref or place.site_id or place.building_code
        if place.channel_path:
            where = f"{where} {place.channel_path}"
        lines.append(AlertLine(view.rule, where or "", view.state))
    return lines


async def run_chain(settings: Settings, console: Console) -> Screen:
    """Set everything up, show it running for ``settings.seconds``, stop everything."""
    from wesh.client import AsyncWeshClient  # noqa: PLC0415 - heavy imports, demo only

    lang, paths = settings.lang, settings.paths
    clock = DemoClock(settings.start, settings.speed)
    screen = Screen(
        start=settings.start,
        speed=settings.speed,
        total_s=settings.seconds,
        socket=paths.shown(paths.socket),
        db=paths.shown(paths.db),
        loss_pct=round(SMS_LOSS * 100),
    )

    def say(key: str, values: Mapping[str, object]) -> None:
        console.print(message(lang, key, **values), highlight=False)
        for line in cast("tuple[str, ...]", values.get("listing", ())):
            console.print(line, highlight=False)

    alerting: Alerting | None = None
    async with contextlib.AsyncExitStack() as stack:
        chain = await stack.enter_async_context(start_chain(settings, clock=clock, report=say))
        # 5. the alerts: engine and outbox on the demo's clock, mails captured on loopback
        alerting = open_alerting(stack, chain, paths, lang, console)
        if alerting is not None:
            screen.alerts_on = True
            console.print(
                message(
                    lang,
                    "step.alerts",
                    config=paths.shown(paths.alerts_config),
                    every=f"{alerting.evaluate_every / 60:g} min",
                    port=alerting.server.port,
                ),
                highlight=False,
            )
        client = await stack.enter_async_context(AsyncWeshClient(socket=paths.socket))
        # 6. the screen
        await _show(screen, settings, console, client=client, chain=chain, alerting=alerting)
        mails = alerting.server.messages if alerting is not None else []
    if alerting is not None:
        _print_mail(console, mails, paths, lang)
    return screen


def _print_mail(console: Console, mails: list[CapturedMail], paths: Paths, lang: Lang) -> None:
    """List the alert mails captured, then print the one about the injected fault in full."""
    db, config = paths.shown(paths.db), paths.shown(paths.alerts_config)
    console.print()
    if not mails:
        console.print(message(lang, "end.no_mail"), highlight=False)
    else:
        console.print(message(lang, "end.mails", count=len(mails)), style="bold", highlight=False)
        for captured in mails:
            console.print(f"  {captured.subject}", highlight=False, markup=False)
        mail = next((m for m in mails if FAULT_BOX in m.subject), mails[0])
        console.print()
        console.print(message(lang, "end.mail"), style="bold", highlight=False)
        parsed = mail.message
        for header in ("From", "To", "Date", "Subject"):
            console.print(f"  {header}: {parsed[header]}", highlight=False, markup=False)
        console.print()
        for line in mail.body("plain").splitlines():
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    console.print()
    console.print(f"  # {message(lang, 'try.alerts')}", style="dim", highlight=False)
    console.print(
        f"  wesh hq alerts list --all --db {db} --config {config}", highlight=False, soft_wrap=True
    )


async def _show(
    screen: Screen,
    settings: Settings,
    console: Console,
    *,
    client: AsyncWeshClient,
    chain: Chain,
    alerting: Alerting | None,
) -> None:
    lang, clock = settings.lang, chain.clock
    started = time.monotonic()
    fault_at_s = settings.seconds * FAULT_AT
    fault_set = False
    last_evaluation: float | None = None
    if alerting is not None:
        planned = settings.start + timedelta(seconds=fault_at_s * settings.speed)
        screen.fault = message(lang, "alerts.fault_soon", box=FAULT_BOX, at=local_time(planned))

    async def tick() -> None:
        nonlocal fault_set, last_evaluation
        screen.elapsed_s = min(time.monotonic() - started, settings.seconds)
        screen.sim_now = clock.now()
        if alerting is not None and not fault_set and screen.elapsed_s >= fault_at_s:
            fault_set = True
            _inject_fault(chain.farm)
            screen.fault = message(
                lang, "alerts.fault", box=FAULT_BOX, at=local_time(screen.sim_now)
            )
        await _refresh(
            screen,
            client=client,
            gateway=chain.gateway,
            pair=chain.pair,
            engine=chain.engine,
            lang=lang,
        )
        if alerting is not None:
            sim_s = clock.timestamp()
            if last_evaluation is None or sim_s - last_evaluation >= alerting.evaluate_every:
                last_evaluation = sim_s
                alerting.step()
            await alerting.send()
            with contextlib.suppress(WeshError):
                screen.alerts = _open_alerts(chain.engine)
            screen.mails = len(alerting.server.messages)

    def draw() -> RenderableType:
        return render(screen, lang=lang, width=console.width)

    if console.is_terminal:
        with Live(draw(), console=console, refresh_per_second=4, transient=False) as live:
            while screen.elapsed_s < settings.seconds:
                await asyncio.sleep(_TICK_S)
                await tick()
                live.update(draw())
        return
    next_line = 0.0
    while screen.elapsed_s < settings.seconds:
        await asyncio.sleep(_TICK_S)
        await tick()
        if screen.elapsed_s >= next_line or screen.elapsed_s >= settings.seconds:
            console.print(plain_line(screen, lang), highlight=False, soft_wrap=True)
            next_line += _PLAIN_EVERY_S
    console.print(draw())


def _inject_fault(farm: SimFarm) -> None:
    """Make the demo's chosen box stop answering (the simulator's ``dead`` fault)."""
    for handle in farm.boxes:
        if handle.describe()["name"] == FAULT_BOX:
            handle.set_fault("dead")
            _LOG.info("Demo: %s made unreachable (fault 'dead')", FAULT_BOX)
