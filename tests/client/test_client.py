"""libwesh: errors at the transport seam (httpx.MockTransport, dead sockets) and the
runnable examples of docs/weshd-api.md against a real API."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.client._api_server import TOKEN, ApiThread, StateStub, clock, seed, short_dir
from wesh.client import DEFAULT_SOCKET, AsyncWeshClient, WeshClient
from wesh.errors import (
    AuthenticationError,
    ConnectionFailed,
    DecodeError,
    DeviceReportedError,
    DeviceTimeout,
    PermissionDenied,
    TransientError,
    UsageError,
    WeshError,
)
from wesh.gateway.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "weshd-api.md"


def _mock(status: int, body: object = None, *, text: str | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, UsageError),
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, UsageError),
        (422, UsageError),
        (418, UsageError),
        (500, DeviceReportedError),
        (502, DeviceReportedError),
        (503, TransientError),
        (504, DeviceTimeout),
        (507, TransientError),
    ],
)
def test_status_codes_map_to_the_exception_tree(status: int, expected: type[WeshError]) -> None:
    body = {"error": "x", "message": "it went wrong", "box": "dw-12", "channel": "dw-12/temp.1"}
    with (
        WeshClient(url="http://gw:8765", token=TOKEN, transport=_mock(status, body)) as client,
        pytest.raises(expected) as caught,
    ):
        client.health()
    assert type(caught.value) is expected
    assert caught.value.message.startswith("it went wrong")
    assert caught.value.host == "dw-12"
    assert caught.value.channel == "dw-12/temp.1"
    assert caught.value.where == "http://gw:8765"


def test_error_without_json_body_keeps_the_status() -> None:
    transport = _mock(502, text="<html>Bad Gateway</html>")
    with (
        WeshClient(url="http://gw:8765", transport=transport) as client,
        pytest.raises(DeviceReportedError, match="HTTP 502: <html>Bad Gateway"),
    ):
        client.boxes()


@pytest.mark.parametrize(
    "transport",
    [_mock(200, text="not json"), _mock(200, {"unexpected": True}), _mock(200, [{"id": 1}])],
)
def test_unexpected_answers_are_decode_errors(transport: httpx.MockTransport) -> None:
    with (
        WeshClient(url="http://gw:8765", transport=transport) as client,
        pytest.raises(DecodeError, match="unexpected answer to GET /boxes/dw-12/value"),
    ):
        client.value("dw-12", "temp.1")


def test_requests_are_built_as_documented() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, json={"error": "x", "message": "stop"})

    with WeshClient(
        url="http://gw:8765/", token=TOKEN, transport=httpx.MockTransport(handler)
    ) as c:
        for call in (
            lambda: c.value("dw-12", "pince.1.voltage"),
            lambda: c.history(
                "dw-12", "temp.1", since=datetime.fromisoformat("2024-03-01T10:00+01:00")
            ),
            lambda: c.relay("dw-12", 2, "toggle"),
            lambda: c.events(box="tic-1", limit=5),
            lambda: c.latest("dw 12"),
        ):
            with pytest.raises(DeviceReportedError):
                call()
    assert [str(r.url) for r in seen] == [
        "http://gw:8765/api/v1/boxes/dw-12/value/pince.1.voltage",
        "http://gw:8765/api/v1/history?channel=dw-12%2Ftemp.1&limit=1000"
        "&since=2024-03-01T10%3A00%3A00%2B01%3A00",
        "http://gw:8765/api/v1/boxes/dw-12/relays/2",
        "http://gw:8765/api/v1/events?limit=5&box=tic-1",
        "http://gw:8765/api/v1/latest?box=dw+12",
    ]
    assert seen[2].method == "POST"
    assert seen[2].content == b'{"action":"toggle"}'
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.history("dw-12", "temp.1", since=datetime(2024, 3, 1)),  # noqa: DTZ001
        lambda c: c.events(since=datetime(2024, 3, 1)),  # noqa: DTZ001
        lambda c: c.value("", "temp.1"),
        lambda c: c.value("dw-12", ""),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_request(call: object) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with (
        WeshClient(url="http://gw:1", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(UsageError),
    ):
        call(client)  # type: ignore[operator]


def test_constructor_checks() -> None:
    with pytest.raises(UsageError, match="not both"):
        WeshClient(socket="/tmp/x.sock", url="http://gw:1")
    with pytest.raises(UsageError, match="not an http"):
        WeshClient(url="ftp://gw")
    with WeshClient() as client:
        assert client.where == f"unix:{DEFAULT_SOCKET}"


def _connect_error(cause: OSError) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(str(cause), request=request) from cause

    return httpx.MockTransport(handler)


def test_socket_permission_error_says_what_to_do() -> None:
    transport = _connect_error(PermissionError(13, "Permission denied"))
    with (
        WeshClient(socket="/run/wesh/weshd.sock", transport=transport) as client,
        pytest.raises(PermissionDenied, match="join the group"),
    ):
        client.health()


@pytest.fixture
def dead_socket() -> Iterator[Path]:
    """A socket file nobody listens on (what a crashed weshd leaves)."""
    with short_dir() as directory:
        path = directory / "weshd.sock"
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()
        yield path


def test_no_socket_file(tmp_path: Path) -> None:
    with (
        WeshClient(socket=tmp_path / "none.sock") as client,
        pytest.raises(ConnectionFailed, match=r"no weshd socket at .*is weshd running"),
    ):
        client.boxes()


def test_refused_socket(dead_socket: Path) -> None:
    with (
        WeshClient(socket=dead_socket) as client,
        pytest.raises(ConnectionFailed, match="refused"),
    ):
        client.boxes()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_socket_without_permission(dead_socket: Path) -> None:
    dead_socket.chmod(0)
    with WeshClient(socket=dead_socket) as client, pytest.raises(PermissionDenied):
        client.boxes()


def test_refused_tcp() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    with (
        WeshClient(url=f"http://127.0.0.1:{port}", token=TOKEN) as client,
        pytest.raises(ConnectionFailed, match="refused"),
    ):
        client.health()


def test_silent_server_is_a_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts in the backlog, never answers
        port = silent.getsockname()[1]
        with (
            WeshClient(url=f"http://127.0.0.1:{port}", timeout_s=0.3) as client,
            pytest.raises(DeviceTimeout),
        ):
            client.health()


async def test_async_client_maps_errors_too(tmp_path: Path) -> None:
    async with AsyncWeshClient(socket=tmp_path / "none.sock") as client:
        with pytest.raises(ConnectionFailed, match="no weshd socket"):
            await client.boxes()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized", "message": "token needed"})

    transport = httpx.MockTransport(handler)
    async with AsyncWeshClient(url="http://gw:1", transport=transport) as client:
        with pytest.raises(AuthenticationError, match="token needed"):
            await client.health()


# ----------------------------------------------------------------------------- docs examples


def _doc_examples() -> list[tuple[str, str, str]]:
    """``(name, code, expected output)`` of every example marked ``<!-- example: name -->``."""
    text = DOC.read_text(encoding="utf-8")
    pattern = re.compile(
        r"<!-- example: (?P<name>[\w-]+) -->\s*```python\n(?P<code>.*?)```\s*"
        r"```text\n(?P<output>.*?)```",
        re.DOTALL,
    )
    return [(m["name"], m["code"], m["output"]) for m in pattern.finditer(text)]


def test_the_doc_has_examples() -> None:
    names = [name for name, _, _ in _doc_examples()]
    assert {"libwesh-sync", "libwesh-async", "libwesh-errors"} <= set(names)


@pytest.mark.parametrize(("name", "code", "output"), _doc_examples(), ids=lambda v: str(v)[:20])
def test_doc_examples_run(tmp_path: Path, name: str, code: str, output: str) -> None:
    store = Store.open(tmp_path / "weshd.sqlite3", clock=clock)
    seed(store)
    try:
        with short_dir() as directory, ApiThread(StateStub(store), socket=directory / "w") as api:
            code = code.replace("/run/wesh/weshd.sock", str(api.socket))
            code = code.replace("http://127.0.0.1:8765", api.url)
            code = code.replace('"my-long-secret-token"', repr(TOKEN))
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{DOC.name}:{name}", "exec"), {"__name__": "__doc__"})
    finally:
        store.close()
    assert printed.getvalue() == output
