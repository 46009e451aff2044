"""M2M raw TCP server of the simulated boxes (wes.md §6), one listening socket per box.

Lines in, answers out (:mod:`wesh.sim.m2mlogic`); a connection stays open for many
commands, answered one at a time. Faults: latency delays an answer, timeout leaves a
command unanswered (the connection then stays silent until the client closes it), a
reboot event closes the connection. Lines longer than 256 bytes close the connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from wesh.sim.device import VirtualBox, pause

__all__ = ["M2MFrontend"]

_LOG = logging.getLogger(__name__)
_MAX_LINE = 256


class M2MFrontend:
    """Serves the M2M side of many boxes; tracks its connections to close them on stop."""

    def __init__(
        self, *, closing: asyncio.Event, locks: Callable[[VirtualBox], asyncio.Lock]
    ) -> None:
        self._closing = closing
        self._locks = locks
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def add_box(self, box: VirtualBox, sock: socket.socket) -> tuple[str, int]:
        """Serve ``box`` on a bound socket; return its ``(host, port)``."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            self._writers.add(writer)
            try:
                await self._serve(box, reader, writer)
            except asyncio.CancelledError:
                # Only close() cancels these tasks (the farm is stopping). asyncio's
                # stream callback would report a cancelled handler as an error: end quietly.
                return
            finally:
                self._writers.discard(writer)
                writer.close()
                if task is not None:
                    self._tasks.discard(task)

        server = await asyncio.start_server(handle, sock=sock, limit=_MAX_LINE)
        self._servers.append(server)
        host, port = sock.getsockname()[:2]
        return host, port

    async def _serve(
        self, box: VirtualBox, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if box.down:
            return
        while not self._closing.is_set():
            try:
                raw = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                _LOG.debug("box %d: M2M line too long, closing", box.index)
                return
            except ConnectionError:
                return
            if not raw:
                return
            command = raw.decode("latin-1").strip()
            if not command:
                continue
            async with self._locks(box):
                faults = box.draw_faults()
                if faults.latency_s > 0:
                    await pause(faults.latency_s, self._closing)
                answer = None if faults.timeout else box.m2m(command, faults)
            if faults.timeout:
                await self._closing.wait()
                return
            if answer is None or box.down:
                return  # reboot: the connection drops
            writer.write(answer.encode("latin-1"))
            try:
                await writer.drain()
            except ConnectionError:
                return

    async def close(self) -> None:
        """Stop listening, close every connection, wait for their handlers."""
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
