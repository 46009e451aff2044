"""weshd's local API: JSON over HTTP on a Unix socket, and optionally on TCP.

:func:`create_app` builds the FastAPI application from a :class:`GatewayState` (the
daemon implements it; tests use a small one); :func:`serve_api` runs it with uvicorn in
the current event loop, on a Unix socket (mode 0660; access is granted by the socket's
group) and/or a TCP address (a bearer token is then required).

Endpoints (all under ``/api/v1``; OpenAPI at ``/openapi.json``, Swagger UI at ``/docs``)::

    GET  /health                          ok or degraded, with the reasons
    GET  /metrics                         Prometheus text
    GET  /boxes                           every box with its runtime status
    GET  /boxes/{box}                     one box
    GET  /boxes/{box}/channels            its channels (configured or seen)
    GET  /latest?box=                     the last value of every channel
    GET  /boxes/{box}/value/{path}        the last value of one channel, with unit and age
    GET  /history?channel=&since=&until=&limit=   one page of a channel's history
    GET  /events?since=&box=&limit=       gateway events, oldest first
    POST /boxes/{box}/relays/{n}          {"action": "on" | "off" | "toggle"}
    POST /boxes/{box}/switches/{n}        idem, for the virtual switches
    GET  /boxes/{box}/interval            the poll interval: configured, override, in force
    PUT  /boxes/{box}/interval            {"poll_interval_s": 300 | null}: override until restart
    GET  /boxes/{box}/clock               the box's clock as last read, and whether it can be set
    POST /boxes/{box}/clock               {"at": "...Z" | null}: set it (501 when the box cannot)

The run-time endpoints (``interval``, ``clock``) need a state that also implements
:class:`RuntimeControl` (the daemon does); otherwise they answer ``501 not_supported``.

Errors are JSON :class:`~wesh.gateway.schema.ErrorInfo` bodies. A
:class:`~wesh.errors.WeshError` raised while serving (by the store, or by the driver
during a command) becomes: PermissionDenied 403, other AuthenticationError 502 (the box
refused the gateway's credentials), DeviceTimeout 504, TransientError 503,
BadInputError 400, DeviceReportedError 502, anything else 500.

Handlers are ``async`` and call the store directly: the store belongs to the event loop's
thread (SQLite) and its reads are short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket as socketlib
import stat
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

import uvicorn
from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from wesh import __version__
from wesh.errors import (
    AuthenticationError,
    BadInputError,
    ConfigError,
    DeviceReportedError,
    DeviceTimeout,
    PermissionDenied,
    TransientError,
    WeshError,
)
from wesh.gateway.drivers.base import Command
from wesh.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from wesh.gateway.schema import (
    API_PREFIX,
    BoxClock,
    BoxInfo,
    BoxRuntimeStatus,
    ChannelInfo,
    ClockRequest,
    CommandRequest,
    CommandResult,
    ErrorInfo,
    EventInfo,
    Health,
    HistoryPage,
    HistoryPoint,
    PollInterval,
    PollIntervalRequest,
    Value,
)

if TYPE_CHECKING:
    from wesh.gateway.channels import GatewayEvent, Sample
    from wesh.gateway.config import BoxConfig, SiteConfig
    from wesh.gateway.store import Store

__all__ = [
    "ApiServers",
    "BoxClock",
    "ClockRequest",
    "GatewayState",
    "PollInterval",
    "PollIntervalRequest",
    "PollIntervalState",
    "RuntimeControl",
    "create_app",
    "parse_tcp_address",
    "serve_api",
]

_LOG = logging.getLogger(__name__)

SOCKET_MODE = 0o660
"""Permissions of the Unix socket: owner and group may connect."""

_TRANSPORT_KEY = "wesh.transport"
_DEFAULT_HISTORY_SPAN = timedelta(hours=24)
_MAX_HISTORY_LIMIT = 10_000
_MAX_EVENTS_LIMIT = 1000


class GatewayState(Protocol):
    """What the API reads from the running gateway (the daemon implements it)."""

    @property
    def site(self) -> SiteConfig:
        """The site the gateway serves."""
        ...

    @property
    def store(self) -> Store:
        """The durable store (read only by the API)."""
        ...

    def boxes(self) -> Sequence[BoxConfig]:
        """Return the configured boxes, enabled or not."""
        ...

    def status(self) -> Mapping[str, BoxRuntimeStatus]:
        """Return the runtime status of the enabled boxes, by id."""
        ...

    async def command(self, box: str, command: Command) -> None:
        """Send a relay or switch command to a box (raises WeshError subclasses)."""
        ...


@dataclass(frozen=True, slots=True)
class PollIntervalState:
    """A box's poll interval: as configured, its run-time override, and whether it is polled."""

    box: str
    configured_s: float
    override_s: float | None
    enabled: bool

    @property
    def effective_s(self) -> float:
        """The interval in force."""
        return self.configured_s if self.override_s is None else self.override_s


@runtime_checkable
class RuntimeControl(Protocol):
    """Run-time changes a gateway may offer (the daemon does): poll interval, box clock."""

    def poll_interval(self, box: str) -> PollIntervalState:
        """Return a box's poll interval (``UsageError`` if unknown)."""
        ...

    async def set_poll_interval(self, box: str, interval_s: float | None) -> PollIntervalState:
        """Override a box's poll interval until restart (``None``: as configured)."""
        ...

    def can_set_clock(self, box: str) -> bool:
        """Tell whether the box's driver can set the box's clock."""
        ...

    async def set_clock(self, box: str, at: datetime) -> None:
        """Set the box's clock (raises WeshError subclasses)."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status and an :class:`ErrorInfo` body."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        box: str | None = None,
        channel: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.info = ErrorInfo(error=error, message=message, box=box, channel=channel)


def _error_response(
    status: int, info: ErrorInfo, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(info.model_dump(mode="json", exclude_none=True), status, headers=headers)


def _classify(exc: WeshError) -> tuple[int, str]:
    """HTTP status and error code for a WeshError raised while serving."""
    table: Sequence[tuple[type[WeshError], int, str]] = (
        (PermissionDenied, 403, "permission_denied"),
        (AuthenticationError, 502, "box_authentication_failed"),
        (DeviceTimeout, 504, "box_timeout"),
        (TransientError, 503, "unavailable"),
        (BadInputError, 400, "bad_request"),
        (DeviceReportedError, 502, "box_refused"),
    )
    for cls, status, code in table:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def _install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
        return _error_response(exc.status, exc.info)

    async def on_wesh_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WeshError)  # noqa: S101 - registered for WeshError only
        status, code = _classify(exc)
        if status == 500:
            _LOG.error("API request failed: %s", exc)
        info = ErrorInfo(error=code, message=exc.message, box=exc.host, channel=exc.channel)
        return _error_response(status, info)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        details = jsonable_encoder(exc.errors(), exclude={"ctx", "url", "input"})
        first = details[0] if details else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"invalid request: {where}: {first.get('msg', 'invalid')}"
        info = ErrorInfo(error="invalid_request", message=message, details=details)
        return _error_response(422, info)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        info = ErrorInfo(error=code, message=str(exc.detail))
        return _error_response(exc.status_code, info, headers=exc.headers)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(WeshError, on_wesh_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


# ----------------------------------------------------------------------------- auth


class _BearerAuth:
    """ASGI middleware: API requests that did not come through the Unix socket need the token.

    :func:`serve_api` marks each connection's transport in the ASGI scope; a request with
    no mark (another server, a test client) is treated like TCP. The OpenAPI document and
    the Swagger UI stay readable without a token (they hold no data).
    """

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self._app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get(_TRANSPORT_KEY) != "unix"
            and scope["path"].startswith(API_PREFIX)
            and not self._authorized(scope)
        ):
            message = (
                "a bearer token is required over TCP (Authorization: Bearer <token>)"
                if self._token is not None
                else "the TCP API is disabled: no token is configured"
            )
            info = ErrorInfo(error="unauthorized", message=message)
            response = _error_response(401, info, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if self._token is None:
            return False
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and secrets.compare_digest(
                    given.strip(), self._token
                )
        return False


# ----------------------------------------------------------------------------- model mapping


def _age_s(at: datetime, now: datetime) -> float:
    return round(max(0.0, (now - at).total_seconds()), 3)


def _value(sample: Sample, now: datetime) -> Value:
    return Value(
        box=sample.box,
        channel=sample.channel,
        path=sample.path,
        value=sample.value,
        unit=sample.unit,
        quality=sample.quality,
        kind=sample.kind,
        meaning=sample.meaning,
        label=sample.label,
        at=sample.at,
        age_s=_age_s(sample.at, now),
        box_time=sample.box_time,
    )


def _event(event_id: int, event: GatewayEvent) -> EventInfo:
    return EventInfo(
        id=event_id,
        at=event.at,
        box=event.box,
        channel=event.channel,
        kind=event.kind,
        severity=event.severity,
        message=event.message,
        data=jsonable_encoder(dict(event.data)),
    )


def _address(box: BoxConfig) -> str | None:
    if box.driver == "wes" and box.host:
        return f"{box.host}:{box.port}"
    return box.device


def _box_info(box: BoxConfig, status: BoxRuntimeStatus | None) -> BoxInfo:
    return BoxInfo(
        id=box.id,
        driver=box.driver,
        serves=box.serves,
        label=box.label,
        enabled=box.enabled,
        poll_interval_s=box.poll_interval_s,
        address=_address(box),
        channel_count=len(box.channels),
        status=status,
    )


def _aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ApiError(
            422, "invalid_request", f"{name} must carry a timezone offset, e.g. 2024-01-31T12:00Z"
        )
    return moment


# ----------------------------------------------------------------------------- the app


def create_app(
    state: GatewayState,
    *,
    token: str | None,
    metrics: GatewayMetrics | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> FastAPI:
    """Build the API application.

    Args:
        state: the running gateway (or a stand-in).
        token: the bearer token required on TCP; ``None`` refuses every TCP request.
        metrics: the gateway's metrics (built from ``state`` alone if not given).
        clock: the current time (UTC, aware), for ages and default time ranges.
    """
    app = FastAPI(
        title="weshd",
        version=__version__,
        summary="Local API of the wesh building gateway.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    _install_error_handlers(app)
    app.add_middleware(_BearerAuth, token=token)
    registry = metrics if metrics is not None else GatewayMetrics(state)
    errors: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorInfo, "description": "unknown box, path or channel"},
        401: {"model": ErrorInfo, "description": "TCP without a valid bearer token"},
    }
    command_errors: dict[int | str, dict[str, Any]] = {
        **errors,
        400: {"model": ErrorInfo, "description": "command not supported by the box"},
        403: {"model": ErrorInfo, "description": "the box refused the command"},
        502: {"model": ErrorInfo, "description": "the box answered with an error"},
        503: {"model": ErrorInfo, "description": "the box is unreachable"},
        504: {"model": ErrorInfo, "description": "the box did not answer in time"},
    }

    def boxes_by_id() -> dict[str, BoxConfig]:
        return {box.id: box for box in state.boxes()}

    def known_box(box: str) -> BoxConfig:
        config = boxes_by_id().get(box)
        if config is None:
            raise ApiError(404, "unknown_box", f"unknown box {box!r}", box=box)
        return config

    def unknown_path(box: BoxConfig, path: str) -> ApiError:
        known = sorted(
            {c.path for c in box.channels} | {s.path for s in state.store.latest(box=box.id)}
        )
        hint = f"; known paths: {', '.join(known[:20])}" if known else ""
        return ApiError(
            404,
            "unknown_path",
            f"box {box.id!r} has no channel {path!r}{hint}",
            box=box.id,
            channel=f"{box.id}/{path}",
        )

    @app.get(f"{API_PREFIX}/health", tags=["gateway"])
    async def health() -> Health:
        """Overall health: ``degraded`` when the store cannot write or boxes are down."""
        status = state.status()
        enabled = [box.id for box in state.boxes() if box.enabled]
        states = [status[b].up if b in status else None for b in enabled]
        up, down = states.count(True), states.count(False)
        stats = state.store.stats()
        reasons: list[str] = []
        if stats.degraded:
            reasons.append("the store cannot write (disk full?); readings are kept in memory")
        if down:
            reasons.append(f"{down} box(es) down")
        return Health(
            status="degraded" if reasons else "ok",
            site=state.site.id,
            version=__version__,
            now=clock(),
            boxes_total=len(enabled),
            boxes_up=up,
            boxes_down=down,
            boxes_unknown=len(enabled) - up - down,
            store_degraded=bool(stats.degraded),
            queue_depth=stats.queue_depth,
            reasons=reasons,
        )

    @app.get(
        f"{API_PREFIX}/metrics",
        tags=["gateway"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
    )
    async def metrics_text() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(registry.render(), media_type=CONTENT_TYPE)

    @app.get(f"{API_PREFIX}/boxes", tags=["boxes"])
    async def list_boxes() -> list[BoxInfo]:
        """Every configured box, with its runtime status."""
        status = state.status()
        return [_box_info(box, status.get(box.id)) for box in state.boxes()]

    @app.get(f"{API_PREFIX}/boxes/{{box}}", tags=["boxes"], responses=errors)
    async def get_box(box: str) -> BoxInfo:
        """One box, with its runtime status."""
        return _box_info(known_box(box), state.status().get(box))

    @app.get(f"{API_PREFIX}/boxes/{{box}}/channels", tags=["boxes"], responses=errors)
    async def list_channels(box: str) -> list[ChannelInfo]:
        """List the channels of a box: configured ones and ones seen in its readings."""
        config = known_box(box)
        seen = {sample.path: sample for sample in state.store.latest(box=box)}
        channels: list[ChannelInfo] = []
        for channel in config.channels:
            sample = seen.pop(channel.path, None)
            channels.append(
                ChannelInfo(
                    box=box,
                    channel=f"{box}/{channel.path}",
                    path=channel.path,
                    meaning=channel.meaning,
                    label=channel.label,
                    unit=sample.unit if sample is not None else channel.unit,
                    kind=sample.kind if sample is not None else None,
                    configured=True,
                    last_at=sample.at if sample is not None else None,
                )
            )
        for sample in seen.values():
            channels.append(
                ChannelInfo(
                    box=box,
                    channel=sample.channel,
                    path=sample.path,
                    meaning=sample.meaning,
                    label=sample.label,
                    unit=sample.unit,
                    kind=sample.kind,
                    configured=False,
                    last_at=sample.at,
                )
            )
        return sorted(channels, key=lambda c: c.path)

    @app.get(f"{API_PREFIX}/latest", tags=["values"], responses=errors)
    async def latest(box: Annotated[str | None, Query()] = None) -> list[Value]:
        """Return the last value of every channel (of one box with ``?box=``)."""
        if box is not None:
            known_box(box)
        now = clock()
        samples = state.store.latest(box=box)
        return [_value(s, now) for s in sorted(samples, key=lambda s: s.channel)]

    @app.get(f"{API_PREFIX}/boxes/{{box}}/value/{{path:path}}", tags=["values"], responses=errors)
    async def value(box: str, path: str) -> Value:
        """Return the last value of one channel, with unit and age, e.g. ``pince.1.voltage``."""
        config = known_box(box)
        sample = state.store.latest_one(f"{box}/{path}")
        if sample is not None:
            return _value(sample, clock())
        if any(channel.path == path for channel in config.channels):
            raise ApiError(
                404,
                "no_value",
                f"no value read yet for {box}/{path}",
                box=box,
                channel=f"{box}/{path}",
            )
        raise unknown_path(config, path)

    @app.get(f"{API_PREFIX}/history", tags=["values"], responses=errors)
    async def history(
        channel: Annotated[str, Query(description='"<box>/<path>"', min_length=3)],
        since: Annotated[
            datetime | None, Query(description="start, included (default: until - 24 h)")
        ] = None,
        until: Annotated[datetime | None, Query(description="end, excluded (default: now)")] = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_HISTORY_LIMIT)] = 1000,
    ) -> HistoryPage:
        """One page of a channel's values in ``[since, until)``, oldest first.

        When ``next_since`` is set in the answer, ask again with ``since=next_since``.
        """
        box, _, path = channel.partition("/")
        if not path:
            raise ApiError(
                422, "invalid_request", f"channel must be '<box>/<path>', not {channel!r}"
            )
        config = known_box(box)
        latest_sample = state.store.latest_one(channel)
        if latest_sample is None and all(c.path != path for c in config.channels):
            raise unknown_path(config, path)
        end = _aware(until, "until") or clock()
        start = _aware(since, "since") or end - _DEFAULT_HISTORY_SPAN
        if start >= end:
            raise ApiError(422, "invalid_request", "since must be before until")
        rows = state.store.history(channel, since=start, until=end, limit=limit + 1)
        points = [
            HistoryPoint(at=s.at, value=s.value, quality=s.quality, box_time=s.box_time)
            for s in rows[:limit]
        ]
        unit = latest_sample.unit if latest_sample is not None else (rows[0].unit if rows else None)
        return HistoryPage(
            box=box,
            channel=channel,
            path=path,
            unit=unit,
            since=start,
            until=end,
            points=points,
            next_since=rows[limit].at if len(rows) > limit else None,
        )

    @app.get(f"{API_PREFIX}/events", tags=["events"])
    async def events(
        since: Annotated[datetime | None, Query(description="only events at or after")] = None,
        box: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_EVENTS_LIMIT)] = 100,
    ) -> list[EventInfo]:
        """Gateway events (box down/up, counter resets, commands, …), oldest first."""
        rows = state.store.events(since=_aware(since, "since"), box=box, limit=limit)
        return sorted((_event(event_id, event) for event_id, event in rows), key=lambda e: e.id)

    async def run_command(
        box: str, kind: Literal["relay", "switch"], number: int, request: CommandRequest
    ) -> CommandResult:
        known_box(box)
        await state.command(box, Command(kind=kind, number=number, action=request.action))
        return CommandResult(box=box, kind=kind, number=number, action=request.action, at=clock())

    @app.post(
        f"{API_PREFIX}/boxes/{{box}}/relays/{{number}}", tags=["commands"], responses=command_errors
    )
    async def relay(
        box: str,
        number: Annotated[int, PathParam(ge=1, le=999)],
        request: Annotated[CommandRequest, Body()],
    ) -> CommandResult:
        """Switch a relay of a box on, off, or toggle it."""
        return await run_command(box, "relay", number, request)

    @app.post(
        f"{API_PREFIX}/boxes/{{box}}/switches/{{number}}",
        tags=["commands"],
        responses=command_errors,
    )
    async def switch(
        box: str,
        number: Annotated[int, PathParam(ge=1, le=999)],
        request: Annotated[CommandRequest, Body()],
    ) -> CommandResult:
        """Set a virtual switch of a box on, off, or toggle it."""
        return await run_command(box, "switch", number, request)

    _add_runtime_endpoints(app, state, known_box, command_errors, clock)
    return app


def _add_runtime_endpoints(
    app: FastAPI,
    state: GatewayState,
    known_box: Callable[[str], BoxConfig],
    command_errors: dict[int | str, dict[str, Any]],
    clock: Callable[[], datetime],
) -> None:
    """Add the ``interval`` and ``clock`` endpoints (a state without RuntimeControl: 501)."""
    errors = {
        **command_errors,
        501: {"model": ErrorInfo, "description": "not supported by this box or gateway"},
    }

    def control(box: str) -> RuntimeControl:
        known_box(box)
        if not isinstance(state, RuntimeControl):
            raise ApiError(501, "not_supported", "this gateway has no run-time control", box=box)
        return state

    def interval_model(found: PollIntervalState) -> PollInterval:
        return PollInterval(
            box=found.box,
            configured_s=found.configured_s,
            override_s=found.override_s,
            effective_s=found.effective_s,
            enabled=found.enabled,
        )

    def box_clock(box: str, settable: bool) -> BoxClock:
        config = known_box(box)
        read = [s for s in state.store.latest(box=box) if s.box_time is not None]
        last = max(read, key=lambda s: s.at) if read else None
        return BoxClock(
            box=box,
            driver=config.driver,
            settable=settable,
            now=clock(),
            box_time=last.box_time if last is not None else None,
            read_at=last.at if last is not None else None,
            offset_s=(
                round((last.box_time - last.at).total_seconds(), 3)
                if last is not None and last.box_time is not None
                else None
            ),
        )

    @app.get(f"{API_PREFIX}/boxes/{{box}}/interval", tags=["runtime"], responses=errors)
    async def get_interval(box: str) -> PollInterval:
        """Return a box's poll interval: configured, run-time override, in force."""
        return interval_model(control(box).poll_interval(box))

    @app.put(f"{API_PREFIX}/boxes/{{box}}/interval", tags=["runtime"], responses=errors)
    async def put_interval(
        box: str, request: Annotated[PollIntervalRequest, Body()]
    ) -> PollInterval:
        """Poll a box at another interval until weshd restarts (null: as configured).

        A reload that changes the box's configuration drops the override (the file wins).
        """
        runtime = control(box)
        return interval_model(await runtime.set_poll_interval(box, request.poll_interval_s))

    @app.get(f"{API_PREFIX}/boxes/{{box}}/clock", tags=["runtime"], responses=errors)
    async def get_clock(box: str) -> BoxClock:
        """Return the box's clock as last read, and whether weshd can set it."""
        runtime = control(box)
        return box_clock(box, runtime.can_set_clock(box))

    @app.post(f"{API_PREFIX}/boxes/{{box}}/clock", tags=["runtime"], responses=errors)
    async def set_clock(
        box: str, request: Annotated[ClockRequest | None, Body()] = None
    ) -> BoxClock:
        """Set the box's clock (default: to the gateway's); 501 when the box cannot.

        A WES has no documented HTTP command to set its clock (set it in its web
        interface, or give it an NTP server): weshd answers ``not_supported``.
        """
        runtime = control(box)
        config = known_box(box)
        if not runtime.can_set_clock(box):
            raise ApiError(
                501,
                "not_supported",
                f"box {box!r} ({config.driver}) cannot have its clock set by weshd: "
                "no documented command; set it on the box (web interface or NTP)",
                box=box,
            )
        at = request.at if request is not None and request.at is not None else clock()
        await runtime.set_clock(box, at)
        return box_clock(box, True)


# ----------------------------------------------------------------------------- serving


def parse_tcp_address(text: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8765"`` for IPv6); port 0 picks a free port."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"not a TCP address 'host:port': {text!r}", where="api.tcp")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class ApiServers:
    """Where the API listens once :func:`serve_api` has started."""

    socket: Path | None
    tcp: tuple[str, int] | None


class _MarkTransport:
    """ASGI wrapper recording which listener a request came through."""

    def __init__(self, app: ASGIApp, transport: Literal["unix", "tcp"]) -> None:
        self._app = app
        self._transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_TRANSPORT_KEY] = self._transport
        await self._app(scope, receive, send)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the daemon and tells when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the daemon."""
        yield

    async def startup(self, sockets: list[socketlib.socket] | None = None) -> None:
        """Start listening, then set :attr:`ready`."""
        await super().startup(sockets=sockets)
        self.ready.set()


def _bind_unix(path: Path, mode: int) -> tuple[socketlib.socket, int]:
    """Listen on a Unix socket file; return the socket and the file's inode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        info = path.lstat()
        if not stat.S_ISSOCK(info.st_mode):
            raise ConfigError(
                f"{path} exists and is not a socket; not removing it", where="api.socket"
            )
        probe = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            _LOG.info("Removing the stale API socket %s", path)
            path.unlink()
        else:
            raise ConfigError(f"another process is listening on {path}", where="api.socket")
        finally:
            probe.close()
    sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)  # before listen(): nobody can connect yet
        sock.listen(128)
        inode = path.stat().st_ino
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {path}: {exc}", where="api.socket") from exc
    sock.setblocking(False)
    return sock, inode


def _remove_socket(path: Path, inode: int) -> None:
    """Remove the socket file if it is still the one we created."""
    with contextlib.suppress(FileNotFoundError):
        if path.lstat().st_ino == inode:
            path.unlink()


def _bind_tcp(host: str, port: int) -> socketlib.socket:
    try:
        infos = socketlib.getaddrinfo(host, port, type=socketlib.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socketlib.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}", where="api.tcp") from exc
    try:
        sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}", where="api.tcp") from exc
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        interface="asgi3",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


async def _start(server: _Server, sock: socketlib.socket) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve(sockets=[sock]), name="weshd-api")
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not server.ready.is_set():
        ready.cancel()
        await task  # raises what made the start fail
        raise ConfigError("the API server stopped while starting")
    return task


@contextlib.asynccontextmanager
async def serve_api(
    app: ASGIApp,
    *,
    socket: Path | None,
    tcp: str | None,
    socket_mode: int = SOCKET_MODE,
) -> AsyncIterator[ApiServers]:
    """Serve ``app`` on a Unix socket and/or TCP while the context is open.

    The socket file is created with ``socket_mode`` (a stale one left by a crash is
    removed; a live one is an error) and removed at exit. ``tcp`` is ``"host:port"``;
    port 0 picks a free one (see :attr:`ApiServers.tcp`). Raises
    :class:`~wesh.errors.ConfigError` if an address cannot be used.
    """
    if socket is None and tcp is None:
        raise ConfigError("the API needs a Unix socket or a TCP address", where="api")
    servers: list[tuple[_Server, asyncio.Task[None]]] = []
    socket_inode: int | None = None
    bound: tuple[str, int] | None = None
    try:
        if socket is not None:
            sock, socket_inode = _bind_unix(socket, socket_mode)
            server = _Server(_uvicorn_config(_MarkTransport(app, "unix")))
            servers.append((server, await _start(server, sock)))
            _LOG.info("API listening on unix:%s", socket)
        if tcp is not None:
            sock = _bind_tcp(*parse_tcp_address(tcp))
            name = sock.getsockname()
            bound = (str(name[0]), int(name[1]))
            server = _Server(_uvicorn_config(_MarkTransport(app, "tcp")))
            servers.append((server, await _start(server, sock)))
            _LOG.info("API listening on tcp:%s:%d", bound[0], bound[1])
        yield ApiServers(socket=socket, tcp=bound)
    finally:
        for server, _task in servers:
            server.should_exit = True
        for _server, task in servers:
            await task
        if socket is not None and socket_inode is not None:
            _remove_socket(socket, socket_inode)
