"""``wesh sync``: keys, the site agent, the HQ receiver, and their status.

::

    wesh sync keygen SITE [--dir DIR] [--force]
    wesh sync agent --config weshd.toml [--with-weshd] [--transport gammu --hq-number +33...]
                    [--weshd-socket PATH | --weshd-url URL]
                    (beside a running weshd by default; --with-weshd runs weshd in it too;
                    HQ's commands reach weshd through its API, by default its socket)
    wesh sync receiver --db URL [--alerts | --alerts-config alerts.toml]
                       [--refresh-every SECONDS] [--transport gammu|mqtt] [--state PATH]
    wesh sync status [--config weshd.toml | --agent-state PATH] [--receiver-state PATH] [--json]

The environment is read here only: ``WESH_SYNC_KEY_DIR`` (key directory),
``WESH_SYNC_HQ_NUMBER`` (HQ's phone number), ``WESH_SYNC_MQTT_PASSWORD``,
``WESH_TOKEN`` (weshd's API token with ``--weshd-url``).
Heavy modules are imported inside the commands, so that ``wesh`` starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wesh.errors import ConfigError, ConnectionFailed, UsageError, WeshError

if TYPE_CHECKING:
    from wesh.gateway.config import GatewayConfig
    from wesh.sync.transport import Transport

__all__ = ["sync"]

_LOG = logging.getLogger(__name__)

DEFAULT_KEY_DIR = Path("/etc/wesh/sync-keys")
_PATH = click.Path(path_type=Path)


@click.group(name="sync")
def sync() -> None:
    """Tonique: carry readings from building gateways to headquarters (SMS or MQTT)."""


# ----------------------------------------------------------------------------- keygen


@sync.command()
@click.argument("site")
@click.option(
    "--dir",
    "directory",
    type=_PATH,
    default=DEFAULT_KEY_DIR,
    show_default=True,
    envvar="WESH_SYNC_KEY_DIR",
    help="Key directory (made 0700).",
)
@click.option("--force", is_flag=True, help="Replace an existing key (the site needs the new one).")
@click.option("--key-id", type=click.IntRange(1, 65535), default=None, help="Key id (random).")
def keygen(site: str, directory: Path, force: bool, key_id: int | None) -> None:
    """Make the secret key of SITE (a file of mode 0600; copy it to the site's gateway)."""
    from wesh.sync.keys import keygen as make_key  # noqa: PLC0415
    from wesh.sync.keys import load_key  # noqa: PLC0415

    path = make_key(site, directory, force=force, key_id=key_id)
    key = load_key(directory, site)
    click.echo(f"Key of site {site} (key id {key.key_id}) written to {path}.")
    click.echo("Copy this file to the site's gateway, into its key directory, mode 0600.")


# ----------------------------------------------------------------------------- transports


def _transport_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--transport",
            type=click.Choice(["gammu", "mqtt"]),
            default="gammu",
            show_default=True,
            help="SMS through gammu-smsd, or an MQTT broker.",
        ),
        click.option(
            "--gammu-root",
            type=_PATH,
            default=Path("/var/spool/wesh-sms"),
            show_default=True,
            help="gammu-smsd's directories (outbox, sent, error, inbox, spool) are under it.",
        ),
        click.option("--mqtt-host", default="127.0.0.1", show_default=True),
        click.option("--mqtt-port", type=int, default=1883, show_default=True),
        click.option("--mqtt-user", default=None),
        click.option("--mqtt-prefix", default="wesh/sync", show_default=True),
        click.option(
            "--key-dir",
            type=_PATH,
            default=DEFAULT_KEY_DIR,
            show_default=True,
            envvar="WESH_SYNC_KEY_DIR",
            help="Directory of the site keys.",
        ),
        click.option("--seconds", type=float, default=None, help="Stop after this many seconds."),
        click.option("-v", "--verbose", count=True, help="More log output (-vv: debug)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@contextlib.asynccontextmanager
async def _open_transport(
    options: dict[str, Any], *, role: str, site: str | None
) -> AsyncIterator[Transport]:
    if options["transport"] == "gammu":
        from wesh.sync.gammu import GammuPaths, GammuTransport  # noqa: PLC0415

        gammu = GammuTransport(GammuPaths.under(options["gammu_root"]))
        try:
            yield gammu
        finally:
            await gammu.aclose()
        return
    from wesh.sync.mqtt import MqttTransport  # noqa: PLC0415

    password = click.get_current_context().meta.get("mqtt_password")
    async with MqttTransport(
        host=options["mqtt_host"],
        port=options["mqtt_port"],
        role="site" if role == "site" else "hq",
        site=site,
        prefix=options["mqtt_prefix"],
        username=options["mqtt_user"],
        password=password,
    ) as mqtt:
        with contextlib.suppress(ConnectionFailed):  # it keeps trying; packets wait meanwhile
            await mqtt.wait_connected(10.0)
        yield mqtt


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _stop_on_signals(stop: Callable[[], None], seconds: float | None) -> asyncio.Task[None]:
    """Call ``stop`` on SIGTERM/SIGINT, or after ``seconds``; cancel the task returned."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop)

    async def later() -> None:
        if seconds is not None:
            await asyncio.sleep(seconds)
            stop()

    return asyncio.create_task(later())


# ----------------------------------------------------------------------------- agent


@sync.command()
@click.option(
    "--config", "config_path", type=_PATH, required=True, help="weshd's configuration file."
)
@click.option("--state", type=_PATH, default=None, help="Agent state file (next to the store).")
@click.option(
    "--hq-number",
    envvar="WESH_SYNC_HQ_NUMBER",
    default=None,
    help="HQ's phone number (gammu); MQTT uses HQ's id 'hq'.",
)
@click.option(
    "--with-weshd",
    is_flag=True,
    help="Run weshd in this process too (default: weshd runs as its own process).",
)
@click.option("--mode", type=click.Choice(["hour", "sample"]), default="hour", show_default=True)
@click.option("--sample-grid", type=int, default=60, show_default=True, help="Seconds.")
@click.option("--budget", type=click.IntRange(0), default=200, show_default=True, help="SMS/day.")
@click.option("--retry-initial", type=float, default=900.0, show_default=True, help="Seconds.")
@click.option("--retry-max", type=float, default=6 * 3600.0, show_default=True, help="Seconds.")
@click.option("--status-interval", type=float, default=6 * 3600.0, show_default=True)
@click.option(
    "--upload-interval",
    type=float,
    default=6 * 3600.0,
    show_default=True,
    help="Readings gather this long before they go (seconds; 0: at once; alarms never wait).",
)
@click.option("--close-delay", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option(
    "--weshd-socket",
    type=_PATH,
    default=None,
    help="weshd's API socket, for HQ's commands (default: [api] socket of the config).",
)
@click.option("--weshd-url", default=None, help="weshd's TCP API instead of its socket.")
@click.option(
    "--weshd-token", envvar="WESH_TOKEN", default=None, help="Bearer token for --weshd-url."
)
@_transport_options
def agent(config_path: Path, **options: object) -> None:
    """Send weshd's readings and alarms to headquarters (see docs/sync.md).

    By default the agent runs beside weshd (its own process): it opens weshd's store as
    a queue client (no writer lock; weshd must have created the store). With --with-weshd
    one process runs both. One agent per store (a lock file next to the store).
    """
    opts: dict[str, Any] = dict(options)
    _setup_logging(opts["verbose"])
    click.get_current_context().meta["mqtt_password"] = _mqtt_password()
    asyncio.run(_run_agent(config_path, opts))


def _mqtt_password() -> str | None:
    import os  # noqa: PLC0415 - the environment is read at the CLI edge only

    return os.environ.get("WESH_SYNC_MQTT_PASSWORD")


def _agent_config(config: GatewayConfig, options: dict[str, Any]) -> Any:  # noqa: ANN401
    from wesh.sync.agent import AgentConfig  # noqa: PLC0415

    gammu = options["transport"] == "gammu"
    hq_peer = options["hq_number"] if gammu else "hq"
    if not hq_peer:
        raise UsageError("--hq-number (or WESH_SYNC_HQ_NUMBER) is needed with gammu")
    weshd_url = options.get("weshd_url")
    weshd_socket = options.get("weshd_socket")
    if weshd_url and weshd_socket:
        raise UsageError("give --weshd-socket or --weshd-url, not both")
    if not weshd_url and weshd_socket is None:
        weshd_socket = config.api.socket
    return AgentConfig(
        site=config.site.id,
        hq_peer=hq_peer,
        mode=options["mode"],
        sample_grid_s=options["sample_grid"],
        sms_budget_per_day=options["budget"] if gammu else 0,
        retry_initial_s=options["retry_initial"],
        retry_max_s=max(options["retry_initial"], options["retry_max"]),
        status_interval_s=options["status_interval"],
        upload_interval_s=options["upload_interval"] if gammu else 0.0,
        close_delay_s=options["close_delay"],
        max_chars=160 if gammu else None,
        pad=gammu,
        timezone=config.site.timezone,
        weshd_socket=str(weshd_socket) if weshd_socket is not None else None,
        weshd_url=weshd_url or None,
        weshd_token=options.get("weshd_token") or None,
        queue_in_thread=True,
    )


@contextlib.contextmanager
def _one_agent(store_path: Path) -> Iterator[None]:
    """Hold ``<store>.sync-agent.lock``: a second agent would re-send under the same key."""
    lock_path = store_path.with_name(store_path.name + ".sync-agent.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("ab")
    except OSError as exc:
        raise ConfigError(f"cannot open the agent lock file: {exc}", where=str(lock_path)) from exc
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(
                "another sync agent runs for this weshd store (separately or with --with-weshd)",
                where=str(store_path),
            ) from exc
        yield


async def _run_agent(config_path: Path, options: dict[str, Any]) -> None:
    from wesh.gateway.config import load_config  # noqa: PLC0415
    from wesh.gateway.store import Store  # noqa: PLC0415
    from wesh.sync.agent import SyncAgent  # noqa: PLC0415
    from wesh.sync.keys import load_key  # noqa: PLC0415
    from wesh.sync.schema import schema_from_config  # noqa: PLC0415

    config = load_config(config_path)
    site = config.site.id
    key = load_key(options["key_dir"], site)
    agent_config = _agent_config(config, options)
    state_path = options["state"] or config.store_path.parent / "sync-agent.sqlite3"
    schema = schema_from_config(config)
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(_one_agent(config.store_path))
        boxes: Callable[[], tuple[int, int]] | None = None
        if options["with_weshd"]:
            from wesh.gateway.daemon import Gateway  # noqa: PLC0415

            gateway = Gateway(config, config_path=config_path)
            weshd = asyncio.create_task(gateway.run(), name="weshd")
            stack.push_async_callback(_stop_gateway, gateway, weshd)
            ready = asyncio.create_task(gateway.ready.wait())
            await asyncio.wait({weshd, ready}, return_when=asyncio.FIRST_COMPLETED)
            if weshd.done():
                ready.cancel()
                await weshd  # raises what stopped weshd
                return
            queue: Any = gateway.store

            def boxes() -> tuple[int, int]:
                status = gateway.status().values()
                return sum(1 for s in status if s.up), sum(1 for s in status if s.up is False)

        else:  # beside weshd: its queue only, through our own connection
            queue = stack.enter_context(Store.open_queue(config.store_path))
            enabled = {box.id for box in config.boxes if box.enabled}

            def boxes() -> tuple[int, int]:
                try:
                    states = [up for box, up in queue.box_states().items() if box in enabled]
                except WeshError as exc:  # STATUS then says "unknown" (0 and 0)
                    _LOG.warning("Sync agent: cannot read weshd's box states: %s", exc)
                    return 0, 0
                return sum(states), len(states) - sum(states)

        transport = await stack.enter_async_context(
            _open_transport(options, role="site", site=site)
        )
        sync_agent = SyncAgent(
            config=agent_config,
            key=key,
            queue=queue,
            state_path=state_path,
            transport=transport,
            schema=schema,
            boxes=boxes,
        )
        stack.callback(sync_agent.close)
        timer = _stop_on_signals(sync_agent.stop, options["seconds"])
        _LOG.info(
            "Sync agent of site %s running %s weshd (store %s)",
            site,
            "with" if options["with_weshd"] else "beside",
            config.store_path,
        )
        try:
            await sync_agent.run()
        finally:
            timer.cancel()


async def _stop_gateway(gateway: Any, task: asyncio.Task[None]) -> None:  # noqa: ANN401
    gateway.request_stop("sync agent stopping")
    await task


# ----------------------------------------------------------------------------- receiver


@sync.command()
@click.option(
    "--db", "db_url", default=None, help="HQ database URL (sqlite:///..., mysql+pymysql://...)."
)
@click.option("--sqlite-sink", type=_PATH, default=None, help="A plain SQLite sink instead of HQ.")
@click.option("--auto-create", is_flag=True, help="Create unknown channels at HQ.")
@click.option(
    "--refresh-every",
    "refresh_every",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="With --db: refresh the stale rollups at most this often "
    "(default: after every hand-over; 30 suits a backlog or several receivers).",
)
@click.option(
    "--alerts",
    "alerts",
    is_flag=True,
    help="Evaluate the alert rules as data arrives (with --db; embedded default rules).",
)
@click.option(
    "--alerts-config",
    type=_PATH,
    default=None,
    help="Alert rules, contacts and SMTP (alerts.toml); implies --alerts.",
)
@click.option(
    "--state",
    type=_PATH,
    default=Path("/var/lib/wesh/sync-receiver.sqlite3"),
    show_default=True,
    help="Receiver state file.",
)
@click.option("--ack-delay", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option(
    "--ack-min-interval",
    type=float,
    default=30.0,
    show_default=True,
    help="At most one ACK per site this often (seconds).",
)
@_transport_options
def receiver(
    db_url: str | None,
    sqlite_sink: Path | None,
    auto_create: bool,
    alerts: bool,
    alerts_config: Path | None,
    **options: object,
) -> None:
    """Receive the sites' packets and store their readings at headquarters.

    With --alerts (or --alerts-config), the alert rules of the channels, alarms and
    status reports received run at once (late data included); mails are queued in the
    HQ outbox, which `wesh hq alerts run` sends and where it also runs the scheduled
    "no data" rules.
    """
    if (db_url is None) == (sqlite_sink is None):
        raise UsageError("give exactly one of --db URL and --sqlite-sink PATH")
    if (alerts or alerts_config is not None) and db_url is None:
        raise UsageError("--alerts needs the HQ database (--db URL)")
    if options["refresh_every"] is not None and db_url is None:
        raise UsageError("--refresh-every needs the HQ database (--db URL)")
    opts: dict[str, Any] = dict(options)
    opts["alerts"] = alerts or alerts_config is not None
    opts["alerts_config"] = alerts_config
    _setup_logging(opts["verbose"])
    click.get_current_context().meta["mqtt_password"] = _mqtt_password()
    asyncio.run(_run_receiver(db_url, sqlite_sink, auto_create, opts))


async def _run_receiver(
    db_url: str | None, sqlite_sink: Path | None, auto_create: bool, options: dict[str, Any]
) -> None:
    from wesh.sync.keys import KeyRing  # noqa: PLC0415
    from wesh.sync.receiver import ReceiverConfig, SyncReceiver  # noqa: PLC0415
    from wesh.sync.sink import ReadingSink, SqliteSink  # noqa: PLC0415

    keys = KeyRing.load(options["key_dir"])
    if not len(keys):
        raise ConfigError("no site key in the key directory", where=str(options["key_dir"]))
    gammu = options["transport"] == "gammu"
    config = ReceiverConfig(
        ack_delay_s=options["ack_delay"],
        ack_min_interval_s=options["ack_min_interval"],
        max_chars=160 if gammu else None,
        pad=gammu,
    )
    async with contextlib.AsyncExitStack() as stack:
        sink: ReadingSink
        if sqlite_sink is not None:
            sink = stack.enter_context(SqliteSink(sqlite_sink))
        else:
            # the CLI is where the HQ store is plugged in (wesh.sync never imports wesh.hq)
            from wesh.hq.db import make_engine  # noqa: PLC0415
            from wesh.hq.ingest import HqSink  # noqa: PLC0415

            engine = make_engine(db_url)
            stack.callback(engine.dispose)
            refresh_every = options["refresh_every"]
            sink = (
                HqSink(engine, auto_create=auto_create)
                if refresh_every is None  # HqSink's default
                else HqSink(engine, auto_create=auto_create, refresh_every_s=refresh_every)
            )
            if options["alerts"]:
                from wesh.hq.alerts.config import load_config  # noqa: PLC0415
                from wesh.hq.alerts.engine import AlertEngine, AlertingSink  # noqa: PLC0415

                alerts_config = load_config(options["alerts_config"])
                sink = AlertingSink(sink, AlertEngine(engine, alerts_config))
        transport = await stack.enter_async_context(_open_transport(options, role="hq", site=None))
        sync_receiver = SyncReceiver(
            keys=keys, sink=sink, state_path=options["state"], transport=transport, config=config
        )
        stack.callback(sync_receiver.close)
        timer = _stop_on_signals(sync_receiver.stop, options["seconds"])
        try:
            await sync_receiver.run()
        finally:
            timer.cancel()


# ----------------------------------------------------------------------------- status


@sync.command()
@click.option("--config", "config_path", type=_PATH, default=None, help="weshd's configuration.")
@click.option("--agent-state", type=_PATH, default=None, help="The agent's state file.")
@click.option("--receiver-state", type=_PATH, default=None, help="The receiver's state file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(
    config_path: Path | None, agent_state: Path | None, receiver_state: Path | None, as_json: bool
) -> None:
    """Show what the agent has not sent yet, or what the receiver misses per site."""
    from wesh.sync.agent import read_agent_status  # noqa: PLC0415
    from wesh.sync.receiver import read_ledgers  # noqa: PLC0415

    if config_path is not None and agent_state is None:
        from wesh.gateway.config import load_config  # noqa: PLC0415

        agent_state = load_config(config_path).store_path.parent / "sync-agent.sqlite3"
    if agent_state is None and receiver_state is None:
        raise UsageError("give --config, --agent-state or --receiver-state")
    report: dict[str, Any] = {}
    if agent_state is not None:
        report["agent"] = read_agent_status(agent_state).to_dict()
    if receiver_state is not None:
        report["sites"] = [ledger.to_dict() for ledger in read_ledgers(receiver_state)]
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    if "agent" in report:
        _print_agent(report["agent"])
    if "sites" in report and not report["sites"]:
        click.echo("The receiver has heard of no site yet.")
    for ledger in report.get("sites", []):
        _print_ledger(ledger)


def _print_agent(agent: dict[str, Any]) -> None:
    click.echo(f"Site {agent['site']} (agent)")
    click.echo(
        f"  waiting: {agent['items_waiting']} reading(s), "
        f"oldest {agent['oldest_waiting_at'] or '-'}; {agent['alarms_waiting']} alarm(s); "
        f"{agent['open_hours']} hour(s) still open"
    )
    click.echo(
        f"  in flight: {agent['packets_in_flight']} packet(s) "
        f"({agent['items_in_flight']} reading(s))"
    )
    budget = agent["sms_budget"] or "no budget"
    click.echo(f"  SMS today ({agent['sms_day'] or '-'}): {agent['sms_sent_today']} / {budget}")
    schema = agent["schema_hash"] or "-"
    acked = "acknowledged" if agent["schema_acknowledged"] else "not acknowledged yet"
    click.echo(f"  schema {schema}: {acked}; last ACK {agent['last_ack_at'] or 'never'}")
    counters = ", ".join(f"{k} {v}" for k, v in sorted(agent["counters"].items()))
    click.echo(
        f"  weshd queue: read up to seq {agent['reading_cursor']}, acknowledged up to "
        f"{agent['store_acked_upto']}"
    )
    click.echo(f"  counters: {counters or '-'}")


def _print_ledger(ledger: dict[str, Any]) -> None:
    click.echo(f"Site {ledger['site']} (receiver, sender {ledger['peer'] or '-'})")
    click.echo(
        f"  packets {ledger['packets']} (+{ledger['duplicate_packets']} seen again), "
        f"readings {ledger['readings_inserted']} new, {ledger['readings_duplicate']} duplicate, "
        f"{ledger['readings_rejected']} rejected; alarms {ledger['alarms']}"
    )
    missing = ledger["missing"]
    shown = ", ".join(str(s) for s in missing[:20]) + (" ..." if len(missing) > 20 else "")
    click.echo(
        f"  received up to {ledger['cumulative']} (highest {ledger['highest']}); "
        f"missing: {shown or 'none'}"
    )
    click.echo(
        f"  asked again: {ledger['asked_fragments']} fragment(s), {ledger['asked_schemas']} "
        f"schema(s); ACKs sent {ledger['acks_sent']}; quarantined {ledger['quarantined']}"
    )
    click.echo(f"  last seen {ledger['last_seen_at'] or '-'}; last status {ledger['last_status']}")
