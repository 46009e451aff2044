"""HTTP front end of the simulated boxes: one aiohttp application, one listening socket per box.

The box a request is for is found from the local address of its connection (host and
port), so thousands of boxes share one application and one runner. The protocol logic
lives in :meth:`wesh.sim.device.VirtualBox.http`; this module adds what needs time or
sockets: one request at a time per box (the real box is single-threaded), latency,
requests that are never answered, dropped connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from aiohttp import web

from wesh.errors import ConfigError
from wesh.sim.device import HttpReply, VirtualBox, pause

__all__ = ["SERVER_HEADER", "HttpFrontend", "bind_socket"]

_LOG = logging.getLogger(__name__)

#: ``Server`` header: the Keil RL-TCPnet web server's name [I] (no capture was found).
SERVER_HEADER = "Keil-EWEB/2.1"
_MAX_FORM_BYTES = 64 * 1024


def bind_socket(host: str, port: int, *, kind: str = "HTTP") -> socket.socket:
    """Return a TCP socket bound to ``host:port`` (port 0: any free port), ready to listen.

    Raises:
        ConfigError: the address cannot be used (in use, not local, no permission).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen for {kind} on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    return sock


class HttpFrontend:
    """Serves the HTTP side of many boxes.

    ``closing`` is set when the farm stops: requests held by a *timeout* fault then end
    (their connections are dropped).
    """

    def __init__(
        self, *, closing: asyncio.Event, locks: Callable[[VirtualBox], asyncio.Lock]
    ) -> None:
        self._closing = closing
        self._locks = locks
        self._boxes: dict[tuple[str, int], VirtualBox] = {}
        app = web.Application(client_max_size=_MAX_FORM_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True
        )
        self._started = False

    async def start(self) -> None:
        """Prepare the shared runner (before :meth:`add_box`)."""
        await self._runner.setup()
        self._started = True

    async def add_box(self, box: VirtualBox, sock: socket.socket) -> tuple[str, int]:
        """Serve ``box`` on a bound socket; return its ``(host, port)``."""
        host, port = sock.getsockname()[:2]
        self._boxes[host, port] = box
        site = web.SockSite(self._runner, sock, backlog=128)
        await site.start()
        return host, port

    async def close(self) -> None:
        """Stop every site and the runner."""
        if self._started:
            await self._runner.cleanup()
            self._started = False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        box = self._boxes.get(tuple(sockname[:2])) if sockname else None
        if box is None or box.down:
            return _drop(request)
        query = dict(request.query)
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            query.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        async with self._locks(box):
            faults = box.draw_faults()
            if faults.latency_s > 0:
                await pause(faults.latency_s, self._closing)
            if not faults.timeout:
                reply = box.http(
                    request.method,
                    request.path,
                    query,
                    authorization=request.headers.get("Authorization"),
                    faults=faults,
                )
        if faults.timeout:
            await self._closing.wait()  # the client gives up first (its disconnect cancels us)
            return _drop(request)
        if reply.drop:
            return _drop(request)
        return _response(reply)


def _response(reply: HttpReply) -> web.Response:
    headers = {"Server": SERVER_HEADER, **dict(reply.headers)}
    if reply.content_type is not None:
        headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (the response written after is discarded)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)
