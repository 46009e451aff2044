"""WES HTTP client against real loopback servers with fault injection.

The fake box is a raw asyncio HTTP/1.1 server (full control of the bytes on the wire:
dripping, huge bodies, dropped connections, garbage); every server is stopped by its
test's fixture.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionFailed,
    DecodeError,
    DeviceReportedError,
    DeviceTimeout,
    PermissionDenied,
    TransientError,
    UsageError,
)
from wesh.sim.clock import ManualClock
from wesh.sim.farm import FarmBox, SimFarm, run_simulators
from wesh.wes.cgx import compact_stock_template
from wesh.wes.client import HttpServerError, IdentityMismatch, WesClient, WesConfig
from wesh.wes.commands import (
    RESET_COUNTER_PARAMS,
    RESET_COUNTER_PATH,
    reboot_command,
    relay_command,
    reset_counter_command,
    switch_command,
    toggle_relay_command,
    toggle_switch_command,
)
from wesh.wes.ftp import WesFtp

MAC = "0011223344AA"

DATA_CGX = """<?xml version="1.0" encoding="utf-8" ?>
<data>
<info>
<date>21/11/25</date>
<time>14:07</time>
<firmware>V0.84A10</firmware>
{serial}</info>
<tic1>
<ADCO>021234567890</ADCO>
<OPTARIF>BASE</OPTARIF>
<ISOUSC>45</ISOUSC>
<PTEC>TH..</PTEC>
<PAP>1840</PAP>
<IINST>8</IINST>
<BASE>012345678</BASE>
</tic1>
<temp>
<SONDE1>19.8</SONDE1>
</temp>
<relais>
<RELAIS1>OFF</RELAIS1>
<RELAIS2>ON</RELAIS2>
</relais>
</data>
"""


def page(mac: str | None = MAC) -> bytes:
    serial = f"<serial>{mac}</serial>\n" if mac else ""
    return DATA_CGX.format(serial=serial).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<data><info><firmware>&lol4;</firmware></info></data>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data><info><firmware>&xxe;</firmware></info></data>
"""


@dataclass
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def user(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        return base64.b64decode(auth[6:]).decode().split(":", 1)[0]

    @property
    def credentials(self) -> tuple[str, str] | None:
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user, password


Handler = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


def response(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class FakeWes:
    """A tiny HTTP/1.1 server behaving like a WES; ``handler`` decides each answer."""

    handler: Handler
    requests: list[RawRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    bytes_sent: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            request = RawRequest(method, target, headers)
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await self.handler(request, writer)
            finally:
                self.in_flight -= 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    def config(self, **kwargs: object) -> WesConfig:
        options: dict[str, object] = {"timeout_s": 2.0, "retries": 2, "backoff_s": 0.01}
        options.update(kwargs)
        return WesConfig("127.0.0.1", self.port, **options)  # type: ignore[arg-type]


@pytest.fixture
async def make_box() -> AsyncIterator[Callable[[Handler], Awaitable[FakeWes]]]:
    boxes: list[FakeWes] = []

    async def make(handler: Handler) -> FakeWes:
        box = FakeWes(handler)
        await box.start()
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        await box.stop()


class Sleeps:
    """Injected sleep: records backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wes_like(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """Basic auth with admin/wes (all pages) and user/user (no commands, no admin pages)."""
    creds = request.credentials
    if creds not in {("admin", "wes"), ("user", "user")}:
        writer.write(
            response("401 Unauthorized", headers={"WWW-Authenticate": 'Basic realm="serveur WES"'})
        )
        return
    path = request.target.split("?", 1)[0].lower()
    admin_only = path in {"/rl.cgi", "/ajax.cgx", "/infocfg.htm"}
    if admin_only and creds[0] != "admin":
        writer.write(response("403 Forbidden"))
        return
    if path == "/data.cgx":
        writer.write(response("200 OK", page(), {"Content-Type": "text/xml"}))
    elif admin_only:
        writer.write(response("200 OK", b"<data/>", {"Content-Type": "text/xml"}))
    else:
        writer.write(response("404 Not Found"))


# -- configuration ---------------------------------------------------------------------------


def test_config_validation_and_mac_normalisation() -> None:
    config = WesConfig("wes1", expected_mac="00:11:22:33:44:aa")
    assert config.expected_mac == MAC
    assert "wes" not in repr(config).replace("wes1", "")  # passwords are not shown
    for bad in (
        {"port": 0},
        {"timeout_s": 0},
        {"retries": -1},
        {"expected_mac": "nope"},
        {"data_path": "data.cgx"},
        {"max_body_bytes": 0},
    ):
        with pytest.raises(ConfigError):
            WesConfig("wes1", **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        WesConfig("")


# -- reading ---------------------------------------------------------------------------------


async def test_fetch_snapshot_sends_preemptive_basic_auth_and_connection_close(make_box) -> None:
    box = await make_box(wes_like)
    async with WesClient(box.config(expected_mac=MAC)) as client:
        snapshot = await client.fetch_snapshot()
    assert snapshot.info.firmware == "V0.84A10"
    assert snapshot.info.mac == MAC
    assert len(box.requests) == 1  # no 401 round trip first
    request = box.requests[0]
    assert request.credentials == ("admin", "wes")
    assert request.headers["connection"].lower() == "close"
    assert request.target == "/data.cgx"


async def test_fetch_readings_stamps_poll_time_from_injected_clock(make_box) -> None:
    box = await make_box(wes_like)
    when = datetime(2025, 11, 21, 13, 7, 30, tzinfo=UTC)
    async with WesClient(box.config(), clock=lambda: when) as client:
        readings = await client.fetch_readings()
    by_path = {r.path: r for r in readings}
    assert by_path["tic.1.power_va"].value == 1840
    assert by_path["tic.1.power_va"].unit == "VA"
    assert by_path["temp.1"].value == pytest.approx(19.8)
    assert all(r.poll_time == when for r in readings)
    assert by_path["temp.1"].box_time is not None
    assert by_path["temp.1"].box_time.astimezone(UTC) == datetime(2025, 11, 21, 13, 7, tzinfo=UTC)


async def test_401_and_403_are_distinct(make_box) -> None:
    box = await make_box(wes_like)
    async with WesClient(box.config(password="bad")) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.fetch_snapshot()
        assert not isinstance(info.value, PermissionDenied)
        assert info.value.host == f"127.0.0.1:{box.port}"
    async with WesClient(box.config(user="user", password="user")) as client:
        await client.fetch_snapshot()  # a read-only account may read
        with pytest.raises(PermissionDenied) as denied:
            await client.set_relay(1, True)
        assert denied.value.host == f"127.0.0.1:{box.port}"
    assert len(box.requests) == 3  # neither is retried


async def test_500_then_success_is_retried_with_backoff(make_box) -> None:
    failures = 2

    async def flaky(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            writer.write(response("500 Internal Server Error"))
        else:
            await wes_like(request, writer)

    box = await make_box(flaky)
    sleeps = Sleeps()
    async with WesClient(box.config(backoff_s=1.0), sleep=sleeps) as client:
        snapshot = await client.fetch_snapshot()
    assert snapshot.info.firmware == "V0.84A10"
    assert len(box.requests) == 3
    assert len(sleeps.delays) == 2
    assert 0.5 <= sleeps.delays[0] <= 1.0  # 1 s x jitter in [0.5, 1]
    assert 1.0 <= sleeps.delays[1] <= 2.0  # doubled


async def test_persistent_500_gives_transient_error_after_retries(make_box) -> None:
    async def broken(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response("503 Service Unavailable"))

    box = await make_box(broken)
    async with WesClient(box.config(retries=3), sleep=Sleeps()) as client:
        with pytest.raises(HttpServerError) as info:
            await client.fetch_snapshot()
    assert info.value.status == 503
    assert isinstance(info.value, TransientError)
    assert len(box.requests) == 4


async def test_timeout_when_the_box_never_answers(make_box) -> None:
    async def silent(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # hold the connection until the server stops

    box = await make_box(silent)
    async with WesClient(box.config(timeout_s=0.2, retries=1), sleep=Sleeps()) as client:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout) as info:
            await client.fetch_snapshot()
        assert time.monotonic() - started < 2.0
    assert info.value.host == f"127.0.0.1:{box.port}"
    assert len(box.requests) == 2


async def test_connection_refused_is_connection_failed() -> None:
    sleeps = Sleeps()
    config = WesConfig("127.0.0.1", free_port(), timeout_s=2, retries=2, backoff_s=0.01)
    async with WesClient(config, sleep=sleeps) as client:
        with pytest.raises(ConnectionFailed) as info:
            await client.fetch_snapshot()
    assert info.value.host is not None
    assert len(sleeps.delays) == 2


async def test_slow_drip_body_hits_the_total_timeout(make_box) -> None:
    body = page()

    async def drip(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode())
        for i in range(len(body)):
            writer.write(body[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.02)  # each byte is "in time"; the whole body is not

    box = await make_box(drip)
    async with WesClient(box.config(timeout_s=0.3, retries=0)) as client:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout):
            await client.fetch_snapshot()
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("declare_length", [True, False])
async def test_huge_body_is_aborted_early(make_box, declare_length: bool) -> None:
    total = 100 * 1024 * 1024
    chunk = b"<x>" + b"a" * 65_530 + b"</x>"

    async def huge(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        box = boxes[0]
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n"
        head += f"Content-Length: {total}\r\n" if declare_length else ""
        writer.write(head.encode() + b"\r\n")
        while box.bytes_sent < total:
            writer.write(chunk)
            box.bytes_sent += len(chunk)
            await writer.drain()

    boxes = [await make_box(huge)]
    async with WesClient(
        boxes[0].config(max_body_bytes=200_000, retries=0, timeout_s=10)
    ) as client:
        with pytest.raises(DecodeError) as info:
            await client.fetch("/data.cgx")
    assert "200000" in str(info.value)
    # The client stopped reading long before the end (socket buffers hold a few MB at most).
    assert boxes[0].bytes_sent < 20 * 1024 * 1024


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, b"not xml at all", b"<data><info>"])
async def test_malicious_or_malformed_body_is_decode_error(make_box, body: bytes) -> None:
    async def serve(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", body, {"Content-Type": "text/xml"}))

    box = await make_box(serve)
    async with WesClient(box.config()) as client:
        try:
            snapshot = await client.fetch_snapshot()
        except DecodeError as exc:
            assert exc.host == f"127.0.0.1:{box.port}"
        else:  # a cut-short page is kept, but flagged, and never holds expanded entities
            assert body == b"<data><info>"
            assert not snapshot.complete
    assert len(box.requests) == 1  # a bad body is not retried


async def test_garbage_http_is_decode_error(make_box) -> None:
    async def garbage(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    box = await make_box(garbage)
    async with WesClient(box.config(retries=0)) as client:
        with pytest.raises((DecodeError, ConnectionFailed)):
            await client.fetch_snapshot()


async def test_404_is_device_reported_and_not_retried(make_box) -> None:
    box = await make_box(wes_like)
    async with WesClient(box.config()) as client:
        with pytest.raises(DeviceReportedError) as info:
            await client.fetch("/missing.cgx")
        assert not isinstance(info.value, IdentityMismatch)
        with pytest.raises(UsageError):
            await client.fetch("/data.cgx?x=1")
    assert len(box.requests) == 1


async def test_identity_mismatch_from_the_page(make_box) -> None:
    box = await make_box(wes_like)
    async with WesClient(box.config(expected_mac="00:11:22:33:44:BB")) as client:
        with pytest.raises(IdentityMismatch) as info:
            await client.fetch_snapshot()
    assert info.value.expected == "0011223344BB"
    assert info.value.actual == MAC
    assert info.value.host == f"127.0.0.1:{box.port}"


async def _m2m_box(mac: str) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                cmd = line.decode().strip()
                writer.write(f"{cmd}\r\n={mac if cmd == 'gI000' else 'ERR'}\r\n".encode())
                await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(("m2m_mac", "ok"), [(MAC, True), ("0011223344CC", False)])
async def test_identity_via_m2m_when_the_page_has_no_mac(make_box, m2m_mac: str, ok: bool) -> None:
    async def no_serial(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", page(mac=None), {"Content-Type": "text/xml"}))

    box = await make_box(no_serial)
    m2m = await _m2m_box(m2m_mac)
    try:
        m2m_port = m2m.sockets[0].getsockname()[1]
        config = box.config(expected_mac=MAC, m2m_port=m2m_port)
        async with WesClient(config) as client:
            if ok:
                assert (await client.fetch_snapshot()).info.mac is None
            else:
                with pytest.raises(IdentityMismatch) as info:
                    await client.fetch_snapshot()
                assert info.value.actual == "0011223344CC"
    finally:
        m2m.close()
        await m2m.wait_closed()


async def test_identity_unverifiable_is_refused(make_box) -> None:
    async def no_serial(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", page(mac=None), {"Content-Type": "text/xml"}))

    box = await make_box(no_serial)
    async with WesClient(box.config(expected_mac=MAC, mac_via_m2m=False)) as client:
        with pytest.raises(IdentityMismatch) as info:
            await client.fetch_snapshot()
    assert info.value.actual is None
    # Without M2M port open, the M2M attempt fails loudly rather than accepting the box.
    async with WesClient(box.config(expected_mac=MAC, m2m_port=free_port())) as client:
        with pytest.raises(ConnectionFailed):
            await client.fetch_snapshot()


async def test_concurrent_fetches_never_overlap_on_the_server(make_box) -> None:
    async def slow(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.01)  # a window in which an overlapping client would show
        await wes_like(request, writer)

    box = await make_box(slow)
    # A shared session allows many connections: only the client's lock serialises.
    async with (
        aiohttp.ClientSession() as session,
        WesClient(box.config(), session=session) as client,
    ):
        results = await asyncio.gather(
            *(client.fetch_snapshot() for _ in range(5)),
            client.set_relay(1, True),
            client.fetch("/data.cgx"),
        )
    assert len(results) == 7
    assert len(box.requests) == 7
    assert box.max_in_flight == 1


async def test_shared_session_is_not_closed(make_box) -> None:
    box = await make_box(wes_like)
    async with aiohttp.ClientSession() as session:
        async with WesClient(box.config(), session=session) as client:
            await client.fetch_snapshot()
        assert not session.closed


# -- commands --------------------------------------------------------------------------------


async def test_command_urls(make_box) -> None:
    box = await make_box(wes_like)
    async with WesClient(box.config()) as client:
        await client.set_relay(1, True)
        await client.set_relay(2, False)
        await client.set_relay(101, True)
        await client.toggle_relay(2)
        await client.set_switch(3, True)
        await client.set_switch(24, False)
        await client.toggle_switch(5)
        await client.reset_counter(2)
        await client.reset_counter(1, kind="clamp")
        with pytest.raises(UsageError):
            await client.set_relay(3, True)
        with pytest.raises(UsageError):
            await client.set_switch(25, True)
        with pytest.raises(UsageError):
            await client.reset_counter(7)
    assert [r.target for r in box.requests] == [
        "/RL.cgi?rl1=ON",
        "/RL.cgi?rl2=OFF",
        "/RL.cgi?rl101=ON",
        "/RL.cgi?frl=2",
        "/AJAX.cgx?vs3=ON",
        "/AJAX.cgx?vs24=OFF",
        "/AJAX.cgx?fvs=5",
        f"{RESET_COUNTER_PATH}?{RESET_COUNTER_PARAMS['pulse']}=2",
        f"{RESET_COUNTER_PATH}?{RESET_COUNTER_PARAMS['clamp']}=1",
    ]
    assert all(r.credentials == ("admin", "wes") for r in box.requests)


async def test_set_is_retried_but_toggle_is_not(make_box) -> None:
    async def busy(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response("500 Internal Server Error"))

    box = await make_box(busy)
    async with WesClient(box.config(retries=2), sleep=Sleeps()) as client:
        with pytest.raises(HttpServerError):
            await client.set_relay(1, True)
        assert len(box.requests) == 3
        with pytest.raises(HttpServerError):
            await client.toggle_relay(1)
        assert len(box.requests) == 4
        with pytest.raises(HttpServerError):
            await client.reboot()
        assert len(box.requests) == 5


async def test_reboot_accepts_the_dropped_connection(make_box) -> None:
    async def reboot(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()  # no answer at all: the box went down

    box = await make_box(reboot)
    async with WesClient(box.config(), sleep=Sleeps()) as client:
        await client.reboot()
        with pytest.raises(ConnectionFailed):
            await client.fetch("/data.cgx")  # the same drop is an error for a normal request
    assert [r.target for r in box.requests] == ["/AJAX.cgx?reset=yes"] + ["/data.cgx"] * 3


async def test_reboot_of_an_unreachable_box_fails() -> None:
    config = WesConfig("127.0.0.1", free_port(), timeout_s=2)
    async with WesClient(config) as client:
        with pytest.raises(ConnectionFailed):
            await client.reboot()


async def test_a_toggle_is_sent_once_even_when_the_connection_drops(make_box) -> None:
    async def drop(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    box = await make_box(drop)
    async with WesClient(box.config(retries=3), sleep=Sleeps()) as client:
        with pytest.raises(ConnectionFailed):
            await client.toggle_relay(1)
        with pytest.raises(ConnectionFailed):
            await client.toggle_switch(1)
    assert [r.target for r in box.requests] == ["/RL.cgi?frl=1", "/AJAX.cgx?fvs=1"]


COMPACT_BODY = (
    b"wesh-compact 1\ngd=21/11/25\nhh=14:07\nvv=V0.84A10\nra=0011223344AA\nip1=1840\nwesh-end\n"
)


async def test_compact_template_polling_and_identity(make_box) -> None:
    async def compact(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if request.target == "/WESH.CGX":
            writer.write(response("200 OK", COMPACT_BODY, {"Content-Type": "text/xml"}))
        else:
            writer.write(response("404 Not Found"))

    box = await make_box(compact)
    config = box.config(compact=True, data_path="/WESH.CGX", expected_mac=MAC)
    async with WesClient(config) as client:
        readings = {r.path: r for r in await client.fetch_readings()}
        assert readings["tic.1.power_va"].value == 1840
        snapshot = await client.fetch_snapshot()
        assert snapshot.info.mac == MAC and snapshot.complete
    config = box.config(compact=True, data_path="/WESH.CGX", expected_mac="0011223344BB")
    async with WesClient(config) as client:
        with pytest.raises(IdentityMismatch):
            await client.fetch_snapshot()


# -- integration with the simulator (wesh.sim) -------------------------------------------------

SIM_START = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


class FrozenMonotonic:
    """Real-time source of the farm (reboot downtime), moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim_farm() -> AsyncIterator[tuple[SimFarm, ManualClock, FrozenMonotonic]]:
    clock = ManualClock(SIM_START)
    monotonic = FrozenMonotonic()
    async with run_simulators(
        2, base_port=0, seed=3, clock=clock, firmware="mixed", monotonic=monotonic
    ) as farm:
        yield farm, clock, monotonic


def sim_config(handle: FarmBox, **kwargs: object) -> WesConfig:
    assert handle.ftp is not None and handle.m2m is not None
    options: dict[str, object] = {
        "timeout_s": 2.0,
        "retries": 1,
        "backoff_s": 0.0,
        "ftp_port": handle.ftp.port,
        "m2m_port": handle.m2m.port,
    }
    options.update(kwargs)
    return WesConfig(handle.http.host, handle.http.port, **options)  # type: ignore[arg-type]


async def test_sim_poll_matches_the_box_state(sim_farm) -> None:
    farm, clock, _ = sim_farm
    for handle in farm.boxes:
        mac = handle.model.identity.mac
        async with WesClient(sim_config(handle, expected_mac=mac), clock=clock.now) as client:
            snapshot = await client.fetch_snapshot()
            readings = {r.path: r for r in await client.fetch_readings()}
        state = handle.state
        assert snapshot.info.firmware is not None
        assert snapshot.firmware is not None
        assert snapshot.firmware.value == state.identity.firmware.value
        reading = state.tics[0].reading
        assert reading is not None
        assert readings["tic.1.power_va"].value == reading.power_va
        assert readings["tic.1.power_va"].poll_time == clock.now()
        assert readings["relais.1"].value is state.relays[0]


async def test_sim_identity_is_checked(sim_farm) -> None:
    farm, _, _ = sim_farm
    first, second = farm.boxes
    # Box 1's address, box 0's MAC: a swapped box is refused.
    config = sim_config(second, expected_mac=first.model.identity.mac)
    async with WesClient(config) as client:
        with pytest.raises(IdentityMismatch) as info:
            await client.fetch_snapshot()
    assert info.value.actual == second.model.identity.mac


async def test_sim_compact_template_installed_by_ftp_then_polled(sim_farm) -> None:
    farm, _, _ = sim_farm
    handle = farm.boxes[0]
    config = sim_config(handle)
    async with WesFtp.from_config(config) as ftp:
        path = await ftp.install_template("WESH.CGX", compact_stock_template())
    mac = handle.model.identity.mac
    compact = sim_config(handle, data_path=path, compact=True, expected_mac=mac, m2m_port=1)
    async with WesClient(compact) as client:  # the MAC comes from the template: no M2M
        snapshot = await client.fetch_snapshot()
    assert snapshot.info.mac == mac
    assert snapshot.complete


async def test_sim_commands_change_the_box(sim_farm) -> None:
    farm, _, _ = sim_farm
    handle = farm.boxes[0]
    async with WesClient(sim_config(handle)) as client:
        await client.set_relay(1, True)
        await client.toggle_relay(2)
        await client.set_switch(4, True)
        await client.toggle_switch(5)
        readings = {r.path: r.value for r in await client.fetch_readings()}
        await client.reset_counter(1)
    state = handle.state
    assert state.relays == (True, True)
    assert state.switches[3] and state.switches[4]
    assert readings["relais.1"] is True and readings["switch.4"] is True
    assert state.counters[0].index == 0


async def test_sim_read_only_account(sim_farm) -> None:
    farm, _, _ = sim_farm
    handle = farm.boxes[0]
    async with WesClient(sim_config(handle, user="user", password="wes")) as client:
        await client.fetch_snapshot()
        with pytest.raises(PermissionDenied):
            await client.set_relay(1, True)
        with pytest.raises(PermissionDenied):
            await client.reboot()
    async with WesClient(sim_config(handle, password="nope")) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.fetch_snapshot()
        assert not isinstance(info.value, PermissionDenied)


async def test_sim_faults(sim_farm) -> None:
    farm, _, _ = sim_farm
    handle = farm.boxes[1]
    sleeps = Sleeps()
    async with WesClient(sim_config(handle, timeout_s=0.3, retries=2), sleep=sleeps) as client:
        handle.set_fault("http500")
        with pytest.raises(HttpServerError):
            await client.fetch_snapshot()
        assert len(sleeps.delays) == 2
        handle.clear_faults()
        handle.set_fault("timeout")
        with pytest.raises(DeviceTimeout):
            await client.fetch_snapshot()
        handle.clear_faults()
        handle.set_fault("malformed")
        for _ in range(4):  # the four kinds of damage: refused, or kept with a warning
            try:
                snapshot = await client.fetch_snapshot()
            except DecodeError as exc:
                assert exc.host == f"{handle.http.host}:{handle.http.port}"
            else:
                assert snapshot.warnings
        handle.clear_faults()
        handle.set_fault("truncated")
        try:
            snapshot = await client.fetch_snapshot()
        except DecodeError:
            pass  # cut before the first value
        else:
            assert not snapshot.complete
        handle.clear_faults()
        handle.set_fault("unplugged")
        readings = {r.path: r.value for r in await client.fetch_readings()}
        assert readings["tic.1.available"] is False
        assert "tic.1.power_va" not in readings
        handle.clear_faults()
        assert (await client.fetch_snapshot()).complete


async def test_sim_reboot_drops_the_connection_and_the_box_comes_back(sim_farm) -> None:
    farm, _, monotonic = sim_farm
    handle = farm.boxes[0]
    async with WesClient(sim_config(handle, retries=0)) as client:
        await client.reboot()
        with pytest.raises(TransientError):
            await client.fetch_snapshot()  # still rebooting
        monotonic.now += 3600
        assert (await client.fetch_snapshot()).complete


# -- command builders (pure) -----------------------------------------------------------------

VALID_RELAYS = {1, 2, 9} | {100 + 10 * card + relay for card in range(10) for relay in range(1, 10)}


@given(st.integers(min_value=-10, max_value=1000))
def test_relay_numbers(n: int) -> None:
    try:
        command = relay_command(n, True)
    except UsageError:
        assert n not in VALID_RELAYS
    else:
        assert n in VALID_RELAYS
        assert command.target == f"/RL.cgi?rl{n}=ON"
        assert command.idempotent


@given(st.integers(min_value=-5, max_value=40), st.booleans())
def test_switch_numbers(n: int, on: bool) -> None:
    try:
        command = switch_command(n, on)
    except UsageError:
        assert not 1 <= n <= 24
    else:
        assert command.target == f"/AJAX.cgx?vs{n}={'ON' if on else 'OFF'}"
        assert not toggle_switch_command(n).idempotent


def test_non_integer_channels_are_refused() -> None:
    for bad in (True, 1.0, "1"):
        with pytest.raises(UsageError):
            relay_command(bad, True)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        reset_counter_command(1, kind="gas")  # type: ignore[arg-type]
    assert reboot_command().drops_connection
    assert not toggle_relay_command(1).idempotent
