"""A small gateway for API, client and CLI tests: a real Store, fixed data, a real server.

``ApiThread`` runs :func:`wesh.gateway.api.serve_api` in its own thread and event loop,
so that synchronous clients (httpx, CliRunner, a subprocess) can talk to it; async tests
may instead call ``serve_api`` in their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wesh.errors import WeshError
from wesh.gateway.api import ApiServers, create_app, serve_api
from wesh.gateway.channels import GatewayEvent, Sample
from wesh.gateway.config import BoxConfig, ChannelConfig, SiteConfig
from wesh.gateway.drivers.base import Command
from wesh.gateway.schema import BoxRuntimeStatus
from wesh.gateway.store import Store

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = "s3cret-token-for-tests-0123456789"
HISTORY_POINTS = 25


def clock() -> datetime:
    return NOW


def boxes() -> list[BoxConfig]:
    return [
        BoxConfig(
            id="dw-12",
            driver="wes",
            serves="logement-12",
            label="Logement 12",
            host="192.0.2.12",
            channels=[
                ChannelConfig(path="pince.1.voltage", meaning="voltage"),
                ChannelConfig(path="impulsion.2.index", meaning="hot_water", label="Eau chaude"),
                ChannelConfig(path="temp.1", meaning="temperature", label="Séjour"),
                ChannelConfig(path="temp.2", meaning="temperature", label="Chambre"),
            ],
        ),
        BoxConfig(id="tic-1", driver="tic", serves="parties-communes", device="/dev/ttyUSB0"),
        BoxConfig(id="dw-13", driver="wes", serves="logement-13", host="192.0.2.13", enabled=False),
    ]


def sample(
    path: str,
    value: float | int | str | bool,
    *,
    at: datetime,
    unit: str | None,
    kind: str = "gauge",
    meaning: str = "other",
    label: str | None = None,
    box: str = "dw-12",
    quality: str = "measured",
) -> Sample:
    return Sample(
        box=box,
        channel=f"{box}/{path}",
        path=path,
        at=at,
        value=value,
        unit=unit,
        quality=quality,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        meaning=meaning,  # type: ignore[arg-type]
        label=label,
        box_time=at + timedelta(seconds=3),
    )


def seed(store: Store) -> None:
    """Latest values 12 s old; 25 history points of the hot water index, one a minute."""
    start = NOW - timedelta(minutes=HISTORY_POINTS)
    for minute in range(HISTORY_POINTS):
        at = start + timedelta(minutes=minute)
        store.add_samples(
            [
                sample(
                    "impulsion.2.index",
                    123_000 + 10 * minute,
                    at=at,
                    unit="L",
                    kind="index",
                    meaning="hot_water",
                    label="Eau chaude",
                )
            ]
        )
    at = NOW - timedelta(seconds=12)
    store.add_samples(
        [
            sample("pince.1.voltage", 230.0, at=at, unit="V", meaning="voltage"),
            sample("temp.1", 19.5, at=at, unit="°C", meaning="temperature", label="Séjour"),
            sample("tic.1.power_va", 1200, at=at, unit="VA", meaning="power"),
            sample(
                "impulsion.2.index",
                123_250,
                at=at,
                unit="L",
                kind="index",
                meaning="hot_water",
                label="Eau chaude",
            ),
        ]
    )
    store.add_event(
        GatewayEvent(
            at=NOW - timedelta(hours=2),
            box="tic-1",
            channel=None,
            kind="box_down",
            severity="warning",
            message="tic-1 is down: no frame for 30 s",
            data={"error": "timeout"},
        )
    )
    store.add_event(
        GatewayEvent(
            at=NOW - timedelta(hours=1),
            box="dw-12",
            channel="dw-12/impulsion.2.index",
            kind="counter_reset",
            severity="alarm",
            message="index went back",
            data={"baseline": 122_000},
        )
    )


@dataclass
class StateStub:
    """A GatewayState over a real Store; commands are recorded (or fail on demand)."""

    store: Store
    site: SiteConfig = field(default_factory=lambda: SiteConfig(id="bat-a", name="Bâtiment A"))
    box_list: list[BoxConfig] = field(default_factory=boxes)
    runtime: dict[str, BoxRuntimeStatus] = field(
        default_factory=lambda: {
            "dw-12": BoxRuntimeStatus(
                box="dw-12", up=True, since=NOW - timedelta(days=1), last_ok=NOW
            ),
            "tic-1": BoxRuntimeStatus(
                box="tic-1",
                up=False,
                since=NOW - timedelta(hours=2),
                last_error="no frame for 30 s",
                consecutive_failures=7,
            ),
        }
    )
    commands: list[tuple[str, Command]] = field(default_factory=list)
    command_errors: dict[int, WeshError] = field(default_factory=dict)

    def boxes(self) -> Sequence[BoxConfig]:
        return self.box_list

    def status(self) -> Mapping[str, BoxRuntimeStatus]:
        return self.runtime

    async def command(self, box: str, command: Command) -> None:
        error = self.command_errors.get(command.number)
        if error is not None:
            raise error
        self.commands.append((box, command))


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a Unix socket path must fit in 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="wesh-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class ApiThread:
    """Serve ``create_app(state)`` on a Unix socket and TCP 127.0.0.1 from a thread."""

    def __init__(self, state: StateStub, *, socket: Path, token: str | None = TOKEN) -> None:
        self.state = state
        self.socket = socket
        self.token = token
        self.servers: ApiServers | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="api-thread", daemon=True)

    @property
    def url(self) -> str:
        assert self.servers is not None and self.servers.tcp is not None
        host, port = self.servers.tcp
        return f"http://{host}:{port}"

    def __enter__(self) -> ApiThread:
        self._thread.start()
        if not self._ready.wait(timeout=20):
            raise RuntimeError("the API server did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the API server did not stop"

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = create_app(self.state, token=self.token, clock=clock)
        async with serve_api(app, socket=self.socket, tcp="127.0.0.1:0") as servers:
            self.servers = servers
            self._ready.set()
            await self._stop.wait()
