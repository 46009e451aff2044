"""A farm of simulated WES boxes in one process: addresses, start, stop, handles.

Two ways to give every box its own endpoints (see ``docs/sim.md``)::

    port mode     (base_port=P, count=N)     all on 127.0.0.1
        box i:  HTTP P+i   FTP P+N+i   M2M P+2N+i       (or ftp_base_port/m2m_base_port)
        base_port=0: every socket gets a free port from the system (tests)

    address mode  (base_address=A)           one loopback address per box
        box i:  A+i, HTTP 80 (8080 unless root), FTP 21 (2121 unless root), M2M 1500

``wesh sim wes --count 3 --base-port 18080`` gives HTTP 18080-18082, FTP 18083-18085
and M2M 18086-18088. Use :func:`run_simulators` in tests and programs::

    async with run_simulators(count=3, base_port=0, seed=1) as farm:
        box = farm.boxes[0]
        box.url, box.state, box.set_fault("latency=2")
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wesh.errors import ConfigError, UsageError
from wesh.sim.admin import AdminFrontend
from wesh.sim.box import DEFAULT_FLATS, SimulatedBox, make_identity
from wesh.sim.clock import Clock, SimClock
from wesh.sim.device import Credentials, VirtualBox
from wesh.sim.faults import Fault, FaultKind, FaultSpec
from wesh.sim.ftp import BoxFtpServer, make_ftp_server
from wesh.sim.http import HttpFrontend, bind_socket
from wesh.sim.logs import DEFAULT_LOG_INTERVAL_S, LogRecorder
from wesh.sim.m2m import M2MFrontend
from wesh.sim.model import BoxState, Firmware, Hardware

__all__ = ["Endpoint", "FarmBox", "FarmConfig", "SimFarm", "run_simulators"]

_LOG = logging.getLogger(__name__)
_MAX_BOXES = 20_000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one server of a box listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FarmConfig:
    """Everything that describes a farm (validated by :meth:`validate`).

    ``firmware`` is one family for every box, or ``"mixed"`` (odd boxes get V0.83H).
    Give ``base_port`` (port mode) or ``base_address`` (address mode), not both; with
    neither, ports are chosen by the system (as ``base_port=0``).
    """

    count: int
    seed: int = 0
    speed: float = 1.0
    start: datetime | None = None
    base_port: int | None = None
    base_address: str | None = None
    ftp_base_port: int | None = None
    m2m_base_port: int | None = None
    http_port: int | None = None
    ftp_port: int | None = None
    m2m_port: int | None = None
    firmware: Firmware | str = Firmware.V084A10
    hardware: Hardware = Hardware.V2
    flats: int = DEFAULT_FLATS
    faults: FaultSpec = field(default_factory=FaultSpec)
    ftp: bool = True
    m2m: bool = True
    credentials: Credentials = field(default_factory=Credentials)
    log_interval_s: int = DEFAULT_LOG_INTERVAL_S
    log_days: int = 7
    reboot_s: float = 2.0
    admin_port: int | None = None

    def validate(self) -> None:
        """Raise :class:`UsageError` on inconsistent settings."""
        if not 1 <= self.count <= _MAX_BOXES:
            raise UsageError(f"count must be 1..{_MAX_BOXES}, not {self.count}")
        if self.base_port is not None and self.base_address is not None:
            raise UsageError("give a base port or a base address, not both")
        if not self.speed > 0:
            raise UsageError(f"speed must be positive, not {self.speed}")
        if self.firmware != "mixed":
            Firmware(self.firmware)
        if self.base_address is not None:
            try:
                first = ipaddress.IPv4Address(self.base_address)
            except ValueError as exc:
                raise UsageError(f"not an IPv4 address: {self.base_address!r}") from exc
            if int(first) + self.count - 1 > int(ipaddress.IPv4Address("127.255.255.254")) or (
                not first.is_loopback
            ):
                raise UsageError("box addresses must stay inside 127.0.0.0/8")
        for name in ("base_port", "ftp_base_port", "m2m_base_port"):
            value = getattr(self, name)
            if value is not None and not (value == 0 or 1 <= value <= 65535 - self.count + 1):
                raise UsageError(f"{name} {value} leaves no room for {self.count} boxes")
        if self.start is not None and self.start.tzinfo is None:
            raise UsageError("the start time must be timezone-aware")

    def firmware_of(self, index: int) -> Firmware:
        """Return the firmware family of box ``index``."""
        if self.firmware == "mixed":
            return Firmware.V083H if index % 2 else Firmware.V084A10
        return Firmware(self.firmware)

    def endpoints(self, index: int) -> tuple[Endpoint, Endpoint, Endpoint]:
        """Return the (HTTP, FTP, M2M) endpoints of box ``index`` (port 0: any free port)."""
        if self.base_address is not None:
            root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
            host = str(ipaddress.IPv4Address(self.base_address) + index)
            http = self.http_port if self.http_port is not None else (80 if root else 8080)
            ftp = self.ftp_port if self.ftp_port is not None else (21 if root else 2121)
            m2m = self.m2m_port if self.m2m_port is not None else 1500
            return Endpoint(host, http), Endpoint(host, ftp), Endpoint(host, m2m)
        base = self.base_port or 0
        if base == 0:
            return Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 0)
        ftp_base = self.ftp_base_port if self.ftp_base_port is not None else base + self.count
        m2m_base = self.m2m_base_port if self.m2m_base_port is not None else base + 2 * self.count
        return (
            Endpoint("127.0.0.1", base + index),
            Endpoint("127.0.0.1", ftp_base + index),
            Endpoint("127.0.0.1", m2m_base + index),
        )


class FarmBox:
    """The handle of one running box: its endpoints, model and fault switches."""

    def __init__(
        self,
        box: VirtualBox,
        *,
        http: Endpoint,
        ftp: Endpoint | None,
        m2m: Endpoint | None,
    ) -> None:
        self.box = box
        self.http = http
        self.ftp = ftp
        self.m2m = m2m

    @property
    def index(self) -> int:
        """The box number in its farm."""
        return self.box.index

    @property
    def url(self) -> str:
        """The base URL of its web server (``http://127.0.0.1:18080``)."""
        return f"http://{self.http.host}:{self.http.port}"

    @property
    def model(self) -> SimulatedBox:
        """The box's model (change relays, read raw state...)."""
        return self.box.model

    @property
    def state(self) -> BoxState:
        """What the box measures now."""
        return self.box.state()

    def set_fault(self, fault: Fault | str) -> None:
        """Set a fault: a :class:`Fault` or its text (``"latency=2"``, ``"http500@0.1"``)."""
        self.box.set_fault(fault)

    def clear_faults(self, kind: FaultKind | str | None = None) -> None:
        """Remove every fault, or those of one kind."""
        self.box.clear_faults(kind)

    def describe(self) -> dict[str, object]:
        """Return a JSON-ready description (identity, endpoints, faults)."""
        return {
            **self.box.describe(),
            "http": self.url,
            "ftp": None if self.ftp is None else str(self.ftp),
            "m2m": None if self.m2m is None else str(self.m2m),
        }


class SimFarm:
    """Many simulated boxes served from one process (see the module docstring)."""

    def __init__(
        self,
        config: FarmConfig,
        *,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        config.validate()
        self.config = config
        start = config.start or datetime.now(tz=UTC).replace(microsecond=0)
        self.clock: Clock = clock or SimClock(start, config.speed, monotonic=monotonic)
        self._monotonic = monotonic
        self.boxes: list[FarmBox] = []
        self.admin_url: str | None = None
        self._closing = asyncio.Event()
        self._locks: dict[int, asyncio.Lock] = {}
        self._http = HttpFrontend(closing=self._closing, locks=self._lock)
        self._m2m = M2MFrontend(closing=self._closing, locks=self._lock)
        self._ftp: list[BoxFtpServer] = []
        self._admin: AdminFrontend | None = None
        self._started = False

    def _lock(self, box: VirtualBox) -> asyncio.Lock:
        lock = self._locks.get(box.index)
        if lock is None:
            lock = self._locks[box.index] = asyncio.Lock()
        return lock

    def _make_box(self, index: int) -> VirtualBox:
        config = self.config
        identity = make_identity(
            index,
            seed=config.seed,
            flats=config.flats,
            firmware=config.firmware_of(index),
            hardware=config.hardware,
        )
        model = SimulatedBox(identity, start=self.clock.timestamp(), flats=config.flats)
        logs = (
            LogRecorder(interval_s=config.log_interval_s, keep_days=config.log_days)
            if config.ftp
            else None
        )
        box = VirtualBox(
            model,
            clock=self.clock,
            credentials=config.credentials,
            logs=logs,
            reboot_s=config.reboot_s,
            monotonic=self._monotonic,
        )
        for fault in config.faults.for_box(index):
            box.set_fault(fault)
        return box

    async def start(self) -> None:
        """Create the boxes and start their servers (all or nothing)."""
        if self._started:
            raise UsageError("this farm is already running")
        self._started = True
        try:
            await self._http.start()
            for index in range(self.config.count):
                await self._start_box(index)
            if self.config.admin_port is not None:
                self._admin = AdminFrontend(self)
                self.admin_url = await self._admin.start("127.0.0.1", self.config.admin_port)
        except BaseException:
            await self.close()
            raise
        _LOG.info("%d simulated WES boxes running", len(self.boxes))

    async def _start_box(self, index: int) -> None:
        config = self.config
        box = self._make_box(index)
        http_ep, ftp_ep, m2m_ep = config.endpoints(index)
        socks = [bind_socket(http_ep.host, http_ep.port, kind="HTTP")]
        try:
            if config.ftp:
                socks.append(bind_socket(ftp_ep.host, ftp_ep.port, kind="FTP"))
            if config.m2m:
                socks.append(bind_socket(m2m_ep.host, m2m_ep.port, kind="M2M"))
        except ConfigError:
            for sock in socks:
                sock.close()
            raise
        http = Endpoint(*await self._http.add_box(box, socks[0]))
        ftp = m2m = None
        rest = socks[1:]
        if config.ftp:
            server = make_ftp_server(box)
            self._ftp.append(server)
            ftp = Endpoint(*await server.start_on(rest.pop(0)))
        if config.m2m:
            m2m = Endpoint(*await self._m2m.add_box(box, rest.pop(0)))
        self.boxes.append(FarmBox(box, http=http, ftp=ftp, m2m=m2m))

    async def close(self) -> None:
        """Stop every server and end held requests; idempotent."""
        self._closing.set()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        await self._http.close()
        await self._m2m.close()
        servers, self._ftp = self._ftp, []
        for server in servers:
            if getattr(server, "server", None) is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await server.close()

    def apply_faults(self, spec: FaultSpec | str) -> None:
        """Add the faults of a specification to the boxes it names."""
        parsed = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        for handle in self.boxes:
            for fault in parsed.for_box(handle.index):
                handle.set_fault(fault)

    def describe(self) -> list[dict[str, object]]:
        """Return a JSON-ready description of every box."""
        return [handle.describe() for handle in self.boxes]


@contextlib.asynccontextmanager
async def run_simulators(
    count: int,
    *,
    base_port: int | None = None,
    base_address: str | None = None,
    seed: int = 0,
    speed: float = 1.0,
    start: datetime | None = None,
    faults: FaultSpec | str = "",
    firmware: Firmware | str = Firmware.V084A10,
    clock: Clock | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    ftp: bool = True,
    m2m: bool = True,
    **options: object,
) -> AsyncIterator[SimFarm]:
    """Run a farm of ``count`` boxes for the duration of the ``async with`` block.

    Other :class:`FarmConfig` fields can be given as keywords (``flats=``,
    ``credentials=``, ``reboot_s=``...). ``clock`` replaces the farm's clock and
    ``monotonic`` its real-time source (reboot downtime), for tests.
    """
    spec = FaultSpec.parse(faults) if isinstance(faults, str) else faults
    config = FarmConfig(
        count=count,
        seed=seed,
        speed=speed,
        start=start,
        base_port=base_port,
        base_address=base_address,
        firmware=firmware,
        faults=spec,
        ftp=ftp,
        m2m=m2m,
        **options,  # type: ignore[arg-type]
    )
    farm = SimFarm(config, clock=clock, monotonic=monotonic)
    await farm.start()
    try:
        yield farm
    finally:
        await farm.close()
