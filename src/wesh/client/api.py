"""libwesh: the Python client of weshd's local API, sync and async.

Both clients speak JSON over HTTP, on weshd's Unix socket (``socket=``, the default
``/run/wesh/weshd.sock``) or over TCP (``url=`` and ``token=``), and return the typed
models of :mod:`wesh.gateway.schema`. Every failure is a :class:`~wesh.errors.WeshError`:

=============================================  ==========================================
what happened                                  raised
=============================================  ==========================================
no socket file, connection refused, reset      :class:`~wesh.errors.ConnectionFailed`
no permission on the socket, HTTP 403          :class:`~wesh.errors.PermissionDenied`
no answer in time, HTTP 504                    :class:`~wesh.errors.DeviceTimeout`
HTTP 401 (missing or wrong token)              :class:`~wesh.errors.AuthenticationError`
HTTP 400, 404 (unknown box or path), 422       :class:`~wesh.errors.UsageError`
HTTP 501 (not supported by the box or weshd)   :class:`~wesh.errors.UsageError`
HTTP 503 (box unreachable, store degraded)     :class:`~wesh.errors.TransientError`
HTTP 500, 502 (the box or weshd said no)       :class:`~wesh.errors.DeviceReportedError`
an answer that is not the documented JSON      :class:`~wesh.errors.DecodeError`
=============================================  ==========================================

The request building and answer decoding are shared by both clients (``_Request`` and
:func:`_decode`); the clients only send.
"""

from __future__ import annotations

import os
import socket as socketlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

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
from wesh.gateway.schema import (
    API_PREFIX,
    BoxClock,
    BoxInfo,
    ChannelInfo,
    CommandAction,
    CommandRequest,
    CommandResult,
    ErrorInfo,
    EventInfo,
    Health,
    HistoryPage,
    HistoryPoint,
    PollInterval,
    Value,
)

__all__ = ["DEFAULT_SOCKET", "AsyncWeshClient", "BoxClock", "PollInterval", "WeshClient"]

DEFAULT_SOCKET = Path("/run/wesh/weshd.sock")
"""Where weshd listens by default."""

_BASE_UDS = "http://weshd"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Request(Generic[_T]):
    """One API call, independent of the client that sends it."""

    method: str
    path: str
    adapter: TypeAdapter[_T]
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None


_TEXT: TypeAdapter[str] = TypeAdapter(str)
_HEALTH = TypeAdapter(Health)
_BOX = TypeAdapter(BoxInfo)
_BOXES = TypeAdapter(list[BoxInfo])
_CHANNELS = TypeAdapter(list[ChannelInfo])
_VALUE = TypeAdapter(Value)
_VALUES = TypeAdapter(list[Value])
_HISTORY = TypeAdapter(HistoryPage)
_EVENTS = TypeAdapter(list[EventInfo])
_COMMAND = TypeAdapter(CommandResult)
_INTERVAL = TypeAdapter(PollInterval)
_CLOCK = TypeAdapter(BoxClock)


def _seg(text: str) -> str:
    if not text:
        raise UsageError("an empty box id or path is not allowed")
    return quote(text, safe="")


def _iso(moment: datetime, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")
    return moment.isoformat()


class _Calls:
    """Builders of every API call (pure: no I/O)."""

    @staticmethod
    def health() -> _Request[Health]:
        return _Request("GET", "/health", _HEALTH)

    @staticmethod
    def metrics() -> _Request[str]:
        return _Request("GET", "/metrics", _TEXT)

    @staticmethod
    def boxes() -> _Request[list[BoxInfo]]:
        return _Request("GET", "/boxes", _BOXES)

    @staticmethod
    def box(box: str) -> _Request[BoxInfo]:
        return _Request("GET", f"/boxes/{_seg(box)}", _BOX)

    @staticmethod
    def channels(box: str) -> _Request[list[ChannelInfo]]:
        return _Request("GET", f"/boxes/{_seg(box)}/channels", _CHANNELS)

    @staticmethod
    def latest(box: str | None) -> _Request[list[Value]]:
        params = {"box": box} if box is not None else None
        return _Request("GET", "/latest", _VALUES, params=params)

    @staticmethod
    def value(box: str, path: str) -> _Request[Value]:
        return _Request("GET", f"/boxes/{_seg(box)}/value/{_seg(path)}", _VALUE)

    @staticmethod
    def history(
        box: str, path: str, since: datetime | None, until: datetime | None, limit: int
    ) -> _Request[HistoryPage]:
        params = {"channel": f"{box}/{path}", "limit": str(limit)}
        if since is not None:
            params["since"] = _iso(since, "since")
        if until is not None:
            params["until"] = _iso(until, "until")
        return _Request("GET", "/history", _HISTORY, params=params)

    @staticmethod
    def events(since: datetime | None, box: str | None, limit: int) -> _Request[list[EventInfo]]:
        params = {"limit": str(limit)}
        if since is not None:
            params["since"] = _iso(since, "since")
        if box is not None:
            params["box"] = box
        return _Request("GET", "/events", _EVENTS, params=params)

    @staticmethod
    def command(kind: str, box: str, number: int, action: CommandAction) -> _Request[CommandResult]:
        body = CommandRequest(action=action).model_dump()
        path = f"/boxes/{_seg(box)}/{kind}/{int(number)}"
        return _Request("POST", path, _COMMAND, body=body)

    @staticmethod
    def poll_interval(box: str) -> _Request[PollInterval]:
        return _Request("GET", f"/boxes/{_seg(box)}/interval", _INTERVAL)

    @staticmethod
    def set_poll_interval(box: str, interval_s: float | None) -> _Request[PollInterval]:
        body = {"poll_interval_s": None if interval_s is None else float(interval_s)}
        return _Request("PUT", f"/boxes/{_seg(box)}/interval", _INTERVAL, body=body)

    @staticmethod
    def clock(box: str) -> _Request[BoxClock]:
        return _Request("GET", f"/boxes/{_seg(box)}/clock", _CLOCK)

    @staticmethod
    def set_clock(box: str, at: datetime | None) -> _Request[BoxClock]:
        body = {"at": None if at is None else _iso(at, "at")}
        return _Request("POST", f"/boxes/{_seg(box)}/clock", _CLOCK, body=body)


_STATUS_ERRORS: dict[int, type[WeshError]] = {
    400: UsageError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: UsageError,
    422: UsageError,
    500: DeviceReportedError,
    501: UsageError,
    502: DeviceReportedError,
    503: TransientError,
    504: DeviceTimeout,
}

_HINTS: dict[int, str] = {
    401: "give the API token with --token or WESH_TOKEN",
    403: "the gateway or the box refused this operation",
}


def _error_from_response(response: httpx.Response, where: str) -> WeshError:
    status = response.status_code
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = UsageError if status < 500 else TransientError
    try:
        info = ErrorInfo.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip()[:200] or response.reason_phrase
        return cls(f"weshd answered HTTP {status}: {text}", where=where)
    message = info.message
    hint = _HINTS.get(status)
    if hint is not None and hint not in message:
        message = f"{message}; {hint}"
    return cls(message, host=info.box, channel=info.channel, where=where)


def _decode(response: httpx.Response, request: _Request[_T], where: str) -> _T:
    if response.status_code >= 400:
        raise _error_from_response(response, where)
    if request.adapter is _TEXT:
        return request.adapter.validate_python(response.text)
    try:
        return request.adapter.validate_json(response.content)
    except ValidationError as exc:
        raise DecodeError(
            f"unexpected answer to {request.method} {request.path}: {exc.error_count()} error(s)",
            where=where,
        ) from exc


def _root_oserror(exc: BaseException) -> OSError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


_HINT = "is weshd running? Choose another with --socket or --url (WESH_SOCKET, WESH_URL)"


def _connection_error(
    cause: OSError | None, text: str, where: str, socket: Path | None
) -> WeshError:
    if isinstance(cause, TimeoutError):
        return DeviceTimeout(f"weshd did not accept the connection in time ({text})", where=where)
    if isinstance(cause, PermissionError):
        return PermissionDenied(
            f"not allowed to open {socket or where}: join the group that owns the socket",
            where=where,
        )
    if socket is not None and isinstance(cause, FileNotFoundError):
        return ConnectionFailed(f"no weshd socket at {socket}: {_HINT}", where=where)
    if isinstance(cause, ConnectionRefusedError):
        return ConnectionFailed(f"weshd refused the connection: {_HINT}", where=where)
    return ConnectionFailed(f"cannot reach weshd ({text}): {_HINT}", where=where)


def _translate(exc: httpx.HTTPError, where: str, socket: Path | None) -> WeshError:
    if isinstance(exc, httpx.TimeoutException):
        return DeviceTimeout(f"weshd did not answer in time ({type(exc).__name__})", where=where)
    if isinstance(exc, httpx.TransportError):
        text = str(exc) or type(exc).__name__
        return _connection_error(_root_oserror(exc), text, where, socket)
    return WeshError(f"HTTP error talking to weshd: {exc}", where=where)


def _probe_unix(path: Path, timeout_s: float, where: str) -> None:
    """Connect once to the socket and close, so that a failure leaks nothing.

    httpcore's synchronous Unix-socket connect leaves its socket open when ``connect``
    fails (a ResourceWarning); probing first keeps the failure on our side.
    """
    probe = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    try:
        probe.settimeout(timeout_s)
        probe.connect(str(path))
    except OSError as exc:
        raise _connection_error(exc, str(exc), where, path) from exc
    finally:
        probe.close()


@dataclass(frozen=True, slots=True)
class _Target:
    socket: Path | None
    base_url: str
    where: str
    headers: dict[str, str]


def _target(socket: str | os.PathLike[str] | None, url: str | None, token: str | None) -> _Target:
    if socket is not None and url is not None:
        raise UsageError("give either socket= or url=, not both")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if url is not None:
        parsed = httpx.URL(url)
        if parsed.scheme not in {"http", "https"} or not parsed.host:
            raise UsageError(f"not an http(s) URL: {url!r}")
        return _Target(None, url.rstrip("/") + API_PREFIX, url, headers)
    path = Path(socket) if socket is not None else DEFAULT_SOCKET
    return _Target(path, _BASE_UDS + API_PREFIX, f"unix:{path}", headers)


class WeshClient:
    """Synchronous client of weshd.

    Args:
        socket: path of weshd's Unix socket (default :data:`DEFAULT_SOCKET`).
        url: base URL of weshd's TCP API, e.g. ``"http://127.0.0.1:8765"`` (instead of
            ``socket``).
        token: the bearer token, required over TCP.
        timeout_s: time allowed for each request.
        transport: an httpx transport to use instead (tests).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        socket: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._target = _target(socket, url, token)
        self._timeout_s = timeout_s
        self._probe = transport is None and self._target.socket is not None
        if transport is None and self._target.socket is not None:
            transport = httpx.HTTPTransport(uds=str(self._target.socket))
        self._http = httpx.Client(
            base_url=self._target.base_url,
            headers=self._target.headers,
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def where(self) -> str:
        """The API this client talks to (``unix:/path`` or the URL)."""
        return self._target.where

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, request: _Request[_T]) -> _T:
        socket = self._target.socket
        if self._probe and socket is not None:
            _probe_unix(socket, self._timeout_s, self.where)
            self._probe = False
        try:
            response = self._http.request(
                request.method, request.path, params=request.params, json=request.body
            )
        except httpx.HTTPError as exc:
            self._probe = socket is not None and isinstance(exc, httpx.TransportError)
            raise _translate(exc, self.where, socket) from exc
        return _decode(response, request, self.where)

    def health(self) -> Health:
        """Overall health of the gateway."""
        return self._send(_Calls.health())

    def metrics(self) -> str:
        """Return the Prometheus metrics, as text."""
        return self._send(_Calls.metrics())

    def boxes(self) -> list[BoxInfo]:
        """Every configured box with its status."""
        return self._send(_Calls.boxes())

    def box(self, box: str) -> BoxInfo:
        """One box with its status; :class:`UsageError` if unknown."""
        return self._send(_Calls.box(box))

    def channels(self, box: str) -> list[ChannelInfo]:
        """Return the channels of one box (configured or seen)."""
        return self._send(_Calls.channels(box))

    def latest(self, box: str | None = None) -> list[Value]:
        """Return the last value of every channel (of one box, or of all)."""
        return self._send(_Calls.latest(box))

    def value(self, box: str, path: str) -> Value:
        """Return the last value of one channel, e.g. ``value("dw-12", "pince.1.voltage")``."""
        return self._send(_Calls.value(box, path))

    def history(
        self,
        box: str,
        path: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> HistoryPage:
        """One page of a channel's history (oldest first); see :meth:`iter_history`."""
        return self._send(_Calls.history(box, path, since, until, limit))

    def iter_history(
        self,
        box: str,
        path: str,
        *,
        since: datetime,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[HistoryPoint]:
        """Every stored value of a channel in ``[since, until)``, page after page."""
        cursor: datetime | None = since
        while cursor is not None:
            page = self.history(box, path, since=cursor, until=until, limit=page_size)
            yield from page.points
            until = page.until
            cursor = page.next_since

    def events(
        self, *, since: datetime | None = None, box: str | None = None, limit: int = 100
    ) -> list[EventInfo]:
        """Gateway events, oldest first (of one box, or of all)."""
        return self._send(_Calls.events(since, box, limit))

    def relay(self, box: str, number: int, action: CommandAction) -> CommandResult:
        """Switch relay ``number`` of ``box`` ``"on"``, ``"off"`` or ``"toggle"``."""
        return self._send(_Calls.command("relays", box, number, action))

    def switch(self, box: str, number: int, action: CommandAction) -> CommandResult:
        """Set virtual switch ``number`` of ``box`` ``"on"``, ``"off"`` or ``"toggle"``."""
        return self._send(_Calls.command("switches", box, number, action))

    def poll_interval(self, box: str) -> PollInterval:
        """Return the poll interval of ``box``: configured, run-time override, in force."""
        return self._send(_Calls.poll_interval(box))

    def set_poll_interval(self, box: str, interval_s: float | None) -> PollInterval:
        """Poll ``box`` every ``interval_s`` until weshd restarts (``None``: as configured)."""
        return self._send(_Calls.set_poll_interval(box, interval_s))

    def clock(self, box: str) -> BoxClock:
        """Return the clock of ``box`` as last read, and whether weshd can set it."""
        return self._send(_Calls.clock(box))

    def set_clock(self, box: str, at: datetime | None = None) -> BoxClock:
        """Set the clock of ``box`` (default: to the gateway's); ``UsageError`` if it cannot."""
        return self._send(_Calls.set_clock(box, at))


class AsyncWeshClient:
    """Asynchronous client of weshd; same arguments and methods as :class:`WeshClient`."""

    def __init__(
        self,
        *,
        socket: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._target = _target(socket, url, token)
        if transport is None and self._target.socket is not None:
            transport = httpx.AsyncHTTPTransport(uds=str(self._target.socket))
        self._http = httpx.AsyncClient(
            base_url=self._target.base_url,
            headers=self._target.headers,
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def where(self) -> str:
        """The API this client talks to (``unix:/path`` or the URL)."""
        return self._target.where

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, request: _Request[_T]) -> _T:
        try:
            response = await self._http.request(
                request.method, request.path, params=request.params, json=request.body
            )
        except httpx.HTTPError as exc:
            raise _translate(exc, self.where, self._target.socket) from exc
        return _decode(response, request, self.where)

    async def health(self) -> Health:
        """Overall health of the gateway."""
        return await self._send(_Calls.health())

    async def metrics(self) -> str:
        """Return the Prometheus metrics, as text."""
        return await self._send(_Calls.metrics())

    async def boxes(self) -> list[BoxInfo]:
        """Every configured box with its status."""
        return await self._send(_Calls.boxes())

    async def box(self, box: str) -> BoxInfo:
        """One box with its status; :class:`UsageError` if unknown."""
        return await self._send(_Calls.box(box))

    async def channels(self, box: str) -> list[ChannelInfo]:
        """Return the channels of one box (configured or seen)."""
        return await self._send(_Calls.channels(box))

    async def latest(self, box: str | None = None) -> list[Value]:
        """Return the last value of every channel (of one box, or of all)."""
        return await self._send(_Calls.latest(box))

    async def value(self, box: str, path: str) -> Value:
        """Return the last value of one channel."""
        return await self._send(_Calls.value(box, path))

    async def history(
        self,
        box: str,
        path: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> HistoryPage:
        """One page of a channel's history (oldest first); see :meth:`iter_history`."""
        return await self._send(_Calls.history(box, path, since, until, limit))

    async def iter_history(
        self,
        box: str,
        path: str,
        *,
        since: datetime,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[HistoryPoint]:
        """Every stored value of a channel in ``[since, until)``, page after page."""
        cursor: datetime | None = since
        while cursor is not None:
            page = await self.history(box, path, since=cursor, until=until, limit=page_size)
            for point in page.points:
                yield point
            until = page.until
            cursor = page.next_since

    async def events(
        self, *, since: datetime | None = None, box: str | None = None, limit: int = 100
    ) -> list[EventInfo]:
        """Gateway events, oldest first (of one box, or of all)."""
        return await self._send(_Calls.events(since, box, limit))

    async def relay(self, box: str, number: int, action: CommandAction) -> CommandResult:
        """Switch relay ``number`` of ``box`` ``"on"``, ``"off"`` or ``"toggle"``."""
        return await self._send(_Calls.command("relays", box, number, action))

    async def switch(self, box: str, number: int, action: CommandAction) -> CommandResult:
        """Set virtual switch ``number`` of ``box`` ``"on"``, ``"off"`` or ``"toggle"``."""
        return await self._send(_Calls.command("switches", box, number, action))

    async def poll_interval(self, box: str) -> PollInterval:
        """Return the poll interval of ``box``: configured, run-time override, in force."""
        return await self._send(_Calls.poll_interval(box))

    async def set_poll_interval(self, box: str, interval_s: float | None) -> PollInterval:
        """Poll ``box`` every ``interval_s`` until weshd restarts (``None``: as configured)."""
        return await self._send(_Calls.set_poll_interval(box, interval_s))

    async def clock(self, box: str) -> BoxClock:
        """Return the clock of ``box`` as last read, and whether weshd can set it."""
        return await self._send(_Calls.clock(box))

    async def set_clock(self, box: str, at: datetime | None = None) -> BoxClock:
        """Set the clock of ``box`` (default: to the gateway's); ``UsageError`` if it cannot."""
        return await self._send(_Calls.set_clock(box, at))
