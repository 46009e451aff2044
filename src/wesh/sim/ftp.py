"""FTP server of a simulated box (aioftp) over its in-memory SD card.

One :class:`aioftp.Server` per box, account ``adminftp``/``wesftp`` (wes.md §5), root =
the SD card root = the web root, so a template uploaded here is served over HTTP at
once. Listings are MS-DOS style (``11-21-25  02:07PM  <DIR>  LOGS``), which is what the
jwes client expects from the box [I]. Before every file-system operation the box's
model is brought to the current time and its CSV logs are written to ``/LOGS``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import socket
import stat
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import PurePath, PurePosixPath
from typing import Any, cast

import aioftp
from aioftp.pathio import AbstractPathIO, universal_exception

from wesh.errors import UsageError
from wesh.sim.clock import PARIS
from wesh.sim.device import VirtualBox
from wesh.sim.sdcard import SdCard

__all__ = ["BoxFtpServer", "SdPathIO", "make_ftp_server"]

_WELCOME = "Serveur FTP W.E.S."


class _SdFile(io.BytesIO):
    """An open file: written back to the card when closed (for write modes)."""

    def __init__(self, data: bytes, *, path: str, writable: bool) -> None:
        super().__init__(data)
        self.sd_path = path
        self.writable_file = writable


def _text(path: PurePath) -> str:
    return "/" + str(path).lstrip("/") if str(path) != "." else "/"


class SdPathIO(AbstractPathIO[PurePosixPath]):
    """aioftp path I/O over the SD card of one box (bound with :func:`functools.partial`)."""

    def __init__(
        self,
        timeout: float | None = None,
        connection: aioftp.Connection | None = None,
        state: object = None,
        *,
        box: VirtualBox,
    ) -> None:
        super().__init__(timeout=timeout, connection=connection)
        self._box = box

    @property
    def _card(self) -> SdCard:
        return self._box.card

    def _refresh(self) -> None:
        self._box.sync()
        self._box.write_logs()

    @universal_exception
    async def exists(self, path: PurePosixPath) -> bool:
        """Tell whether ``path`` exists (after writing the latest logs)."""
        self._refresh()
        return self._card.entry(_text(path)) is not None

    @universal_exception
    async def is_dir(self, path: PurePosixPath) -> bool:
        """Tell whether ``path`` is a directory."""
        entry = self._card.entry(_text(path))
        return entry is not None and entry.is_dir

    @universal_exception
    async def is_file(self, path: PurePosixPath) -> bool:
        """Tell whether ``path`` is a file."""
        entry = self._card.entry(_text(path))
        return entry is not None and not entry.is_dir

    @universal_exception
    async def mkdir(
        self, path: PurePosixPath, *, parents: bool = False, exist_ok: bool = False
    ) -> None:
        """Create a directory."""
        mtime = self._box.clock.timestamp()
        self._card.mkdir(_text(path), parents=parents, exist_ok=exist_ok, mtime=mtime)

    @universal_exception
    async def rmdir(self, path: PurePosixPath) -> None:
        """Remove an empty directory."""
        self._card.remove(_text(path), directory=True)

    @universal_exception
    async def unlink(self, path: PurePosixPath) -> None:
        """Remove a file."""
        self._card.remove(_text(path), directory=False)

    def list(self, path: PurePosixPath) -> AsyncIterator[PurePosixPath]:
        """List the entries of a directory (after writing the latest logs)."""
        self._refresh()
        names = [entry.name for entry in self._card.listdir(_text(path))]

        async def lister() -> AsyncIterator[PurePosixPath]:
            for name in names:
                yield path / name

        return lister()

    @universal_exception
    async def stat(self, path: PurePosixPath) -> os.stat_result:
        """Return size, times and mode of ``path``."""
        entry = self._card.entry(_text(path))
        if entry is None:
            raise FileNotFoundError(_text(path))
        mode = (stat.S_IFDIR | 0o777) if entry.is_dir else (stat.S_IFREG | 0o666)
        mtime = int(entry.mtime)
        return os.stat_result((mode, 0, 0, 1, 0, 0, entry.size, mtime, mtime, mtime))

    @universal_exception
    async def _open(self, path: PurePosixPath, mode: str = "rb") -> io.BytesIO:
        text = _text(path)
        entry = self._card.entry(text)
        if mode == "rb":
            self._refresh()
            entry = self._card.entry(text)
            if entry is None or entry.data is None:
                raise FileNotFoundError(text)
            return _SdFile(entry.data, path=text, writable=False)
        if mode not in ("wb", "ab", "r+b"):
            raise ValueError(f"invalid mode: {mode}")
        if entry is not None and entry.is_dir:
            raise IsADirectoryError(text)
        start = b"" if mode == "wb" or entry is None or entry.data is None else entry.data
        file = _SdFile(start, path=text, writable=True)
        if mode == "ab":
            file.seek(0, io.SEEK_END)
        return file

    @universal_exception
    async def seek(self, file: io.BytesIO, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move in an open file."""
        return file.seek(offset, whence)

    @universal_exception
    async def write(self, file: io.BytesIO, data: bytes) -> int:
        """Write to an open file."""
        return file.write(data)

    @universal_exception
    async def read(self, file: io.BytesIO, block_size: int = -1) -> bytes:
        """Read from an open file."""
        return file.read(block_size)

    @universal_exception
    async def close(self, file: io.BytesIO) -> None:
        """Close a file; a written file is stored on the card."""
        if isinstance(file, _SdFile) and file.writable_file:
            try:
                self._card.write(file.sd_path, file.getvalue(), mtime=self._box.clock.timestamp())
            except UsageError as exc:
                raise OSError(str(exc)) from exc

    @universal_exception
    async def rename(self, source: PurePosixPath, destination: PurePosixPath) -> PurePosixPath:
        """Move a file or directory."""
        self._card.rename(_text(source), _text(destination))
        return destination


class BoxFtpServer(aioftp.Server):
    """An aioftp server whose listings look like the box's (MS-DOS style, Paris time)."""

    _closing = False
    owner: VirtualBox | None = None  # set by make_ftp_server: its box, when it is down

    async def start_on(self, sock: socket.socket) -> tuple[str, int]:
        """Start listening on an already bound socket; return its ``(host, port)``.

        Same set-up as :meth:`aioftp.Server.start`, which cannot take a socket.
        """
        host, port = sock.getsockname()[:2]
        self._closing = False
        self._start_server_extra_arguments = {}
        self.connections = {}
        self.server_host, self.server_port = host, port
        self.server = await asyncio.start_server(self.dispatcher, sock=sock, ssl=self.ssl)
        return host, port

    async def dispatcher(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection; end quietly when :meth:`close` cancels it.

        asyncio (3.11) reports a cancelled connection handler as an unhandled error, and
        aioftp's ``close`` cancels every handler: only that cancellation is absorbed.
        A box that is down (dead, rebooting) closes the connection at once.
        """
        if self.owner is not None and self.owner.down:
            writer.close()
            return
        try:
            await super().dispatcher(reader, writer)
        except asyncio.CancelledError:
            if not self._closing:
                raise

    async def close(self) -> None:
        """Stop listening and end every connection."""
        self._closing = True
        await super().close()

    async def build_list_string(self, connection: aioftp.Connection, path: PurePosixPath) -> str:
        """Return one MS-DOS style listing line for ``path``."""
        stats = await connection.path_io.stat(path)
        when = datetime.fromtimestamp(stats.st_mtime, tz=PARIS)
        stamp = when.strftime("%m-%d-%y  %I:%M%p")
        size = "<DIR>         " if stat.S_ISDIR(stats.st_mode) else f"{stats.st_size:>14}"
        return f"{stamp}       {size} {path.name}"


def make_ftp_server(box: VirtualBox) -> BoxFtpServer:
    """Return the (not yet started) FTP server of ``box``."""
    login, password = box.credentials.ftp
    factory = functools.partial(SdPathIO, box=box)
    server = BoxFtpServer(
        [aioftp.User(login, password, base_path="/", home_path="/")],
        path_io_factory=cast("type[AbstractPathIO[Any]]", factory),
        welcome_message=_WELCOME,
        system_type="Windows_NT",
        idle_timeout=300,
    )
    server.owner = box
    return server
