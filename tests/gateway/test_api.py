"""weshd's API through real uvicorn servers (Unix socket and TCP), a real Store, httpx."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.client._api_server import (
    HISTORY_POINTS,
    NOW,
    TOKEN,
    ApiThread,
    StateStub,
    clock,
    seed,
    short_dir,
)
from wesh.client import AsyncWeshClient, WeshClient
from wesh.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionFailed,
    DeviceReportedError,
    DeviceTimeout,
    PermissionDenied,
    TransientError,
    UsageError,
)
from wesh.gateway.api import create_app, parse_tcp_address, serve_api
from wesh.gateway.drivers.base import Command
from wesh.gateway.metrics import GatewayMetrics
from wesh.gateway.schema import API_PREFIX, BoxRuntimeStatus
from wesh.gateway.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "weshd.sqlite3", clock=clock)
    seed(store)
    yield store
    store.close()


@pytest.fixture
def state(store: Store) -> StateStub:
    return StateStub(store)


@pytest.fixture
def api(state: StateStub) -> Iterator[ApiThread]:
    with short_dir() as directory, ApiThread(state, socket=directory / "weshd.sock") as running:
        yield running


@pytest.fixture
def uds(api: ApiThread) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(uds=str(api.socket))
    with httpx.Client(transport=transport, base_url="http://weshd") as client:
        yield client


# ----------------------------------------------------------------------------- raw HTTP


def test_value_by_path_has_unit_and_age(uds: httpx.Client) -> None:
    answer = uds.get(f"{API_PREFIX}/boxes/dw-12/value/pince.1.voltage")
    assert answer.status_code == 200
    body = answer.json()
    assert body["value"] == 230.0
    assert body["unit"] == "V"
    assert body["age_s"] == 12.0
    assert body["quality"] == "measured"
    assert body["channel"] == "dw-12/pince.1.voltage"
    assert body["box_time"] == "2024-03-01T11:59:51Z"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/boxes/nope/value/pince.1.voltage", "unknown_box"),
        ("/boxes/dw-12/value/pince.9.voltage", "unknown_path"),
        ("/boxes/dw-12/value/temp.2", "no_value"),
        ("/boxes/nope", "unknown_box"),
        ("/boxes/nope/channels", "unknown_box"),
        ("/latest?box=nope", "unknown_box"),
        ("/history?channel=dw-12/pince.9.voltage", "unknown_path"),
        ("/history?channel=nope/temp.1", "unknown_box"),
        ("/no/such/endpoint", "not_found"),
    ],
)
def test_unknown_things_are_404_with_a_json_error(uds: httpx.Client, url: str, error: str) -> None:
    answer = uds.get(API_PREFIX + url)
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == error
    assert body["message"]


def test_unknown_path_error_lists_known_paths(uds: httpx.Client) -> None:
    body = uds.get(f"{API_PREFIX}/boxes/dw-12/value/pince.9.voltage").json()
    assert "pince.1.voltage" in body["message"]
    assert body["box"] == "dw-12"
    assert body["channel"] == "dw-12/pince.9.voltage"


def test_boxes_and_status(uds: httpx.Client) -> None:
    boxes = {b["id"]: b for b in uds.get(f"{API_PREFIX}/boxes").json()}
    assert set(boxes) == {"dw-12", "tic-1", "dw-13"}
    assert boxes["dw-12"]["status"]["up"] is True
    assert boxes["dw-12"]["address"] == "192.0.2.12:80"
    assert boxes["tic-1"]["address"] == "/dev/ttyUSB0"
    assert boxes["tic-1"]["status"]["consecutive_failures"] == 7
    assert boxes["dw-13"]["enabled"] is False
    assert boxes["dw-13"]["status"] is None
    one = uds.get(f"{API_PREFIX}/boxes/tic-1").json()
    assert one["status"]["up"] is False


def test_channels_merge_configured_and_seen(uds: httpx.Client) -> None:
    channels = {c["path"]: c for c in uds.get(f"{API_PREFIX}/boxes/dw-12/channels").json()}
    assert set(channels) == {
        "impulsion.2.index",
        "pince.1.voltage",
        "temp.1",
        "temp.2",
        "tic.1.power_va",
    }
    assert channels["tic.1.power_va"]["configured"] is False
    assert channels["tic.1.power_va"]["unit"] == "VA"
    assert channels["temp.2"]["configured"] is True
    assert channels["temp.2"]["last_at"] is None
    assert channels["impulsion.2.index"]["label"] == "Eau chaude"
    assert channels["impulsion.2.index"]["kind"] == "index"


def test_latest_all_and_per_box(uds: httpx.Client) -> None:
    values = uds.get(f"{API_PREFIX}/latest").json()
    assert [v["path"] for v in values] == [
        "impulsion.2.index",
        "pince.1.voltage",
        "temp.1",
        "tic.1.power_va",
    ]
    assert all(v["age_s"] == 12.0 for v in values)
    assert uds.get(f"{API_PREFIX}/latest", params={"box": "tic-1"}).json() == []


def test_history_pages_cover_the_range_once(uds: httpx.Client) -> None:
    params = {
        "channel": "dw-12/impulsion.2.index",
        "since": (NOW - timedelta(hours=1)).isoformat(),
        "until": NOW.isoformat(),
        "limit": "10",
    }
    seen: list[int] = []
    pages = 0
    while True:
        page = uds.get(f"{API_PREFIX}/history", params=params).json()
        pages += 1
        assert page["unit"] == "L"
        seen.extend(point["value"] for point in page["points"])
        if page["next_since"] is None:
            break
        params["since"] = page["next_since"]
    assert pages == 3
    expected = [123_000 + 10 * minute for minute in range(HISTORY_POINTS)] + [123_250]
    assert seen == expected


def test_history_defaults_to_the_last_24_hours(uds: httpx.Client) -> None:
    page = uds.get(f"{API_PREFIX}/history", params={"channel": "dw-12/impulsion.2.index"}).json()
    assert page["until"] == "2024-03-01T12:00:00Z"
    assert page["since"] == "2024-02-29T12:00:00Z"
    assert len(page["points"]) == HISTORY_POINTS + 1


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "dw-12/temp.1", "since": "2024-03-01T10:00:00"},  # naive
        {"channel": "dw-12/temp.1", "since": "2024-03-01T12:00Z", "until": "2024-03-01T11:00Z"},
        {"channel": "dw-12/temp.1", "limit": "0"},
        {"channel": "dw-12/temp.1", "since": "yesterday"},
        {"channel": "dw-12"},
    ],
)
def test_bad_history_requests_are_422(uds: httpx.Client, params: dict[str, str]) -> None:
    answer = uds.get(f"{API_PREFIX}/history", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"


def test_events_oldest_first_with_filters(uds: httpx.Client) -> None:
    events = uds.get(f"{API_PREFIX}/events").json()
    assert [e["kind"] for e in events] == ["box_down", "counter_reset"]
    assert events[1]["data"] == {"baseline": 122_000}
    only = uds.get(f"{API_PREFIX}/events", params={"box": "tic-1"}).json()
    assert [e["kind"] for e in only] == ["box_down"]
    recent = uds.get(
        f"{API_PREFIX}/events", params={"since": (NOW - timedelta(minutes=90)).isoformat()}
    ).json()
    assert [e["kind"] for e in recent] == ["counter_reset"]


def test_health_reports_boxes_down(uds: httpx.Client, state: StateStub) -> None:
    health = uds.get(f"{API_PREFIX}/health").json()
    assert health["status"] == "degraded"
    assert (health["boxes_up"], health["boxes_down"], health["boxes_unknown"]) == (1, 1, 0)
    assert health["reasons"] == ["1 box(es) down"]
    assert health["queue_depth"] > 0
    state.runtime["tic-1"] = BoxRuntimeStatus(box="tic-1", up=True)
    assert uds.get(f"{API_PREFIX}/health").json()["status"] == "ok"
    del state.runtime["tic-1"]
    health = uds.get(f"{API_PREFIX}/health").json()
    assert (health["status"], health["boxes_unknown"]) == ("ok", 1)


def test_metrics_text(uds: httpx.Client) -> None:
    answer = uds.get(f"{API_PREFIX}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'wesh_box_up{box="dw-12"} 1.0' in text
    assert 'wesh_box_up{box="tic-1"} 0.0' in text
    assert 'wesh_box_consecutive_failures{box="tic-1"} 7.0' in text
    assert 'wesh_boxes{state="down"} 1.0' in text
    assert "wesh_store_rows 29.0" in text
    assert "wesh_store_degraded 0.0" in text
    assert "wesh_store_queue_depth" in text


def test_commands_reach_the_gateway(uds: httpx.Client, state: StateStub) -> None:
    answer = uds.post(f"{API_PREFIX}/boxes/dw-12/relays/2", json={"action": "on"})
    assert answer.status_code == 200
    assert answer.json() == {
        "box": "dw-12",
        "kind": "relay",
        "number": 2,
        "action": "on",
        "ok": True,
        "at": "2024-03-01T12:00:00Z",
    }
    answer = uds.post(f"{API_PREFIX}/boxes/dw-12/switches/5", json={"action": "toggle"})
    assert answer.status_code == 200
    assert state.commands == [
        ("dw-12", Command(kind="relay", number=2, action="on")),
        ("dw-12", Command(kind="switch", number=5, action="toggle")),
    ]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PermissionDenied("the box refused"), 403, "permission_denied"),
        (AuthenticationError("bad box password"), 502, "box_authentication_failed"),
        (ConnectionFailed("unreachable"), 503, "unavailable"),
        (TransientError("busy"), 503, "unavailable"),
        (DeviceTimeout("no answer"), 504, "box_timeout"),
        (UsageError("no relay 9 on this box"), 400, "bad_request"),
        (DeviceReportedError("said no"), 502, "box_refused"),
    ],
)
def test_command_errors_become_http_codes(
    uds: httpx.Client, state: StateStub, error: Exception, status: int, code: str
) -> None:
    state.command_errors[9] = error  # type: ignore[assignment]
    answer = uds.post(f"{API_PREFIX}/boxes/dw-12/relays/9", json={"action": "off"})
    assert answer.status_code == status
    assert answer.json()["error"] == code
    assert answer.json()["message"] == str(error)


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/boxes/dw-12/relays/1", {"action": "blink"}, 422),
        ("/boxes/dw-12/relays/1", {"action": "on", "extra": 1}, 422),
        ("/boxes/dw-12/relays/0", {"action": "on"}, 422),
        ("/boxes/dw-12/relays/x", {"action": "on"}, 422),
        ("/boxes/nope/relays/1", {"action": "on"}, 404),
    ],
)
def test_bad_commands(
    uds: httpx.Client, state: StateStub, url: str, body: dict[str, object], status: int
) -> None:
    answer = uds.post(API_PREFIX + url, json=body)
    assert answer.status_code == status
    assert state.commands == []


# ----------------------------------------------------------------------------- TCP and token


def test_tcp_requires_the_bearer_token(api: ApiThread) -> None:
    with httpx.Client(base_url=api.url) as client:
        missing = client.get(f"{API_PREFIX}/health")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"] == "unauthorized"
        wrong = client.get(f"{API_PREFIX}/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = client.get(f"{API_PREFIX}/health", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        post = client.post(f"{API_PREFIX}/boxes/dw-12/relays/1", json={"action": "on"})
        assert post.status_code == 401
        good = client.get(f"{API_PREFIX}/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200
        # the schema holds no data: readable without a token
        assert client.get("/openapi.json").status_code == 200


def test_tcp_without_a_configured_token_refuses_everything(state: StateStub) -> None:
    with short_dir() as directory, ApiThread(state, socket=directory / "s", token=None) as api:
        with httpx.Client(base_url=api.url) as client:
            answer = client.get(f"{API_PREFIX}/health", headers={"Authorization": "Bearer x"})
            assert answer.status_code == 401
            assert "no token" in answer.json()["message"]
        with WeshClient(socket=api.socket) as local:
            assert local.health().site == "bat-a"


def test_openapi_lists_every_endpoint(uds: httpx.Client) -> None:
    document = uds.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    p = API_PREFIX
    assert operations == {
        ("GET", f"{p}/health"),
        ("GET", f"{p}/metrics"),
        ("GET", f"{p}/boxes"),
        ("GET", f"{p}/boxes/{{box}}"),
        ("GET", f"{p}/boxes/{{box}}/channels"),
        ("GET", f"{p}/latest"),
        ("GET", f"{p}/boxes/{{box}}/value/{{path}}"),
        ("GET", f"{p}/history"),
        ("GET", f"{p}/events"),
        ("POST", f"{p}/boxes/{{box}}/relays/{{number}}"),
        ("POST", f"{p}/boxes/{{box}}/switches/{{number}}"),
        ("GET", f"{p}/boxes/{{box}}/interval"),
        ("PUT", f"{p}/boxes/{{box}}/interval"),
        ("GET", f"{p}/boxes/{{box}}/clock"),
        ("POST", f"{p}/boxes/{{box}}/clock"),
    }
    schemas = document["components"]["schemas"]
    for name in ("Value", "BoxInfo", "HistoryPage", "EventInfo", "Health", "ErrorInfo"):
        assert name in schemas
    value = document["paths"][f"{p}/boxes/{{box}}/value/{{path}}"]["get"]
    assert value["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorInfo"
    }
    assert uds.get("/docs").status_code == 200


# ----------------------------------------------------------------------------- libwesh, sync


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_sync_client_over_both_transports(api: ApiThread, transport: str) -> None:
    client = (
        WeshClient(socket=api.socket)
        if transport == "unix"
        else WeshClient(url=api.url, token=TOKEN)
    )
    with client:
        value = client.value("dw-12", "temp.1")
        assert (value.value, value.unit, value.label, value.age_s) == (19.5, "°C", "Séjour", 12.0)
        assert [b.id for b in client.boxes()] == ["dw-12", "tic-1", "dw-13"]
        assert client.box("tic-1").status is not None
        assert len(client.channels("dw-12")) == 5
        assert len(client.latest()) == 4
        points = list(
            client.iter_history(
                "dw-12", "impulsion.2.index", since=NOW - timedelta(hours=1), page_size=7
            )
        )
        assert len(points) == HISTORY_POINTS + 1
        assert points == sorted(points, key=lambda p: p.at)
        assert [e.kind for e in client.events(box="dw-12")] == ["counter_reset"]
        result = client.relay("dw-12", 1, "off")
        assert (result.kind, result.number, result.action) == ("relay", 1, "off")
        assert client.switch("dw-12", 3, "on").kind == "switch"
        assert client.health().status == "degraded"
        assert "wesh_box_up" in client.metrics()
        with pytest.raises(UsageError, match=r"no channel 'temp\.9'"):
            client.value("dw-12", "temp.9")


def test_sync_client_maps_http_errors(api: ApiThread, state: StateStub) -> None:
    with (
        WeshClient(url=api.url, token="wrong-token") as client,
        pytest.raises(AuthenticationError, match="--token"),
    ):
        client.health()
    state.command_errors[1] = PermissionDenied("relay locked")
    state.command_errors[2] = ConnectionFailed("box unreachable")
    state.command_errors[3] = DeviceTimeout("no answer")
    state.command_errors[4] = DeviceReportedError("said no")
    with WeshClient(socket=api.socket) as client:
        with pytest.raises(PermissionDenied, match="relay locked"):
            client.relay("dw-12", 1, "on")
        with pytest.raises(TransientError, match="box unreachable") as caught:
            client.relay("dw-12", 2, "on")
        assert not isinstance(caught.value, DeviceTimeout)
        with pytest.raises(DeviceTimeout):
            client.relay("dw-12", 3, "on")
        with pytest.raises(DeviceReportedError):
            client.relay("dw-12", 4, "on")
        with pytest.raises(UsageError) as unknown:
            client.box("nope")
        assert unknown.value.host == "nope"
        assert unknown.value.where == f"unix:{api.socket}"


# ----------------------------------------------------------------------------- libwesh, async


async def test_async_client_against_serve_api_in_this_loop(store: Store) -> None:
    state = StateStub(store)
    app = create_app(state, token=TOKEN, clock=clock)
    with short_dir() as directory:
        sock = directory / "weshd.sock"
        async with serve_api(app, socket=sock, tcp="127.0.0.1:0") as servers:
            assert servers.tcp is not None
            assert stat.S_IMODE(sock.stat().st_mode) == 0o660
            url = f"http://{servers.tcp[0]}:{servers.tcp[1]}"
            async with (
                AsyncWeshClient(socket=sock) as local,
                AsyncWeshClient(url=url, token=TOKEN) as remote,
            ):
                for client in (local, remote):
                    value = await client.value("dw-12", "pince.1.voltage")
                    assert (value.value, value.unit, value.age_s) == (230.0, "V", 12.0)
                    assert len(await client.boxes()) == 3
                    page = await client.history(
                        "dw-12", "impulsion.2.index", since=NOW - timedelta(hours=1), limit=5
                    )
                    assert len(page.points) == 5
                    assert page.next_since is not None
                    points = [
                        p
                        async for p in client.iter_history(
                            "dw-12", "impulsion.2.index", since=NOW - timedelta(hours=1)
                        )
                    ]
                    assert len(points) == HISTORY_POINTS + 1
                    assert (await client.relay("dw-12", 1, "toggle")).action == "toggle"
                    assert (await client.health()).site == "bat-a"
                    assert len(await client.events()) == 2
                    with pytest.raises(UsageError):
                        await client.latest("nope")
                async with AsyncWeshClient(url=url) as anonymous:
                    with pytest.raises(AuthenticationError):
                        await anonymous.health()
        assert not sock.exists()
    assert len(state.commands) == 2


# ----------------------------------------------------------------------------- serving


async def test_stale_socket_is_replaced_and_live_one_refused(store: Store) -> None:
    app = create_app(StateStub(store), token=None, clock=clock)
    with short_dir() as directory:
        path = directory / "run" / "weshd.sock"
        path.parent.mkdir()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()  # a crash leaves the file behind
        assert path.exists()
        async with serve_api(app, socket=path, tcp=None) as servers:
            assert servers.tcp is None
            async with AsyncWeshClient(socket=path) as client:
                assert (await client.health()).site == "bat-a"
            with pytest.raises(ConfigError, match="another process is listening"):
                async with serve_api(app, socket=path, tcp=None):
                    pass
            assert path.exists()  # the refused second server left ours alone
        assert not path.exists()
        path.write_text("not a socket")
        with pytest.raises(ConfigError, match="not a socket"):
            async with serve_api(app, socket=path, tcp=None):
                pass
        assert path.read_text() == "not a socket"


async def test_busy_tcp_port_is_a_config_error(store: Store) -> None:
    app = create_app(StateStub(store), token=TOKEN, clock=clock)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with short_dir() as directory:
            sock = directory / "weshd.sock"
            with pytest.raises(ConfigError, match="cannot listen"):
                async with serve_api(app, socket=sock, tcp=f"127.0.0.1:{port}"):
                    pass
            assert not sock.exists()  # the Unix server that did start was stopped
    finally:
        busy.close()


async def test_serve_api_needs_somewhere_to_listen(store: Store) -> None:
    app = create_app(StateStub(store), token=None, clock=clock)
    with pytest.raises(ConfigError):
        async with serve_api(app, socket=None, tcp=None):
            pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8765", ("127.0.0.1", 8765)), ("[::1]:0", ("::1", 0)), ("gw:80", ("gw", 80))],
)
def test_parse_tcp_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_tcp_address(text) == expected


@pytest.mark.parametrize("text", ["8765", ":8765", "host:", "host:port", "host:70000"])
def test_parse_tcp_address_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_tcp_address(text)


def test_metrics_with_poller_counters_and_mqtt(store: Store) -> None:
    class Counters:
        polls = 10
        failures = 2
        timeouts = 1
        lags_s: tuple[float, ...] = (0.05, 0.7, 3.0)

    class Mqtt:
        connected = True
        published = 42
        dropped = 3

    taken: list[int] = []

    def poll_stats() -> Counters:
        taken.append(1)
        return Counters()

    metrics = GatewayMetrics(StateStub(store), poll_stats=poll_stats, mqtt=Mqtt())
    text = metrics.render().decode()
    assert "wesh_polls_total 10.0" in text
    assert "wesh_poll_failures_total 2.0" in text
    assert "wesh_poll_timeouts_total 1.0" in text
    assert 'wesh_poll_lag_seconds_bucket{le="0.1"} 1.0' in text
    assert 'wesh_poll_lag_seconds_bucket{le="1.0"} 2.0' in text
    assert "wesh_poll_lag_seconds_count 3.0" in text
    assert "wesh_mqtt_connected 1.0" in text
    assert "wesh_mqtt_published_total 42.0" in text
    assert "wesh_mqtt_dropped_total 3.0" in text
    # lags are handed over at each scrape and accumulate in the histogram
    assert "wesh_poll_lag_seconds_count 6.0" in metrics.render().decode()
    assert len(taken) == 2
    # two gateways in one process do not share a registry
    other = GatewayMetrics(StateStub(store)).render().decode()
    assert "wesh_polls_total" not in other


def test_socket_permissions_follow_the_mode(api: ApiThread) -> None:
    info = os.stat(api.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660


async def test_server_stops_with_a_client_still_connected(store: Store) -> None:
    app = create_app(StateStub(store), token=None, clock=clock)
    with short_dir() as directory:
        sock = directory / "weshd.sock"
        client = AsyncWeshClient(socket=sock)
        try:
            async with serve_api(app, socket=sock, tcp=None):
                await client.health()  # keeps a keep-alive connection open
            with pytest.raises(ConnectionFailed, match="no weshd socket"):
                await asyncio.wait_for(client.health(), timeout=10)
        finally:
            await client.aclose()
