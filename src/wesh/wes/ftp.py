"""FTP access to the SD card of a WES (templates in, CSV logs out).

The FTP root is the SD card root, which is also the HTTP document root (``wes.md`` §1,
§5): a template uploaded to ``/wesh.cgx`` is served at ``http://<box>/wesh.cgx``.
Conventions we rely on::

    /DATA.CGX                       stock template of data.cgx (never overwritten by us)
    /<name>.CGX                     custom templates we install (install_template)
    /WEBPROG/CGX/...                vendor pages (firmware >= 0.83H B02; /ASSETS/CGX before)
    /LOGS/<YYYY>/<MM>/<YYYYMMDD>.CSV  CSV logs, OUR choice of layout (wesh.wes.csvlog)

Session policy: passive mode only (``PASV``; the box is not known to speak ``EPSV``),
listings with ``LIST`` (MS-DOS or Unix lines, both parsed), binary transfers, one
operation at a time on one kept-open control connection. Each operation is bounded by
``timeout_s``; after a timeout or an aborted transfer the control connection is closed
(its replies would be out of step) and the next operation logs in again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import aioftp

from wesh.errors import (
    AuthenticationError,
    ConnectionFailed,
    DecodeError,
    DeviceReportedError,
    DeviceTimeout,
    TransientError,
    UsageError,
    WeshError,
)
from wesh.wes.csvlog import CSV_ENCODING, CsvLog, csv_log_path, parse_csv_log

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from wesh.wes.client import WesConfig

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "TEMPLATE_ENCODING",
    "FtpEntry",
    "WesFtp",
    "parse_list_line",
]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MAX_DOWNLOAD_BYTES = 20_000_000
TEMPLATE_ENCODING = "iso-8859-1"
"""Templates are uploaded in ISO-8859-1, as jwes does (``wes.md`` §4.1)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(cgx|CGX|cgi|CGI)$")
_BLOCK_BYTES = 16_384
_UNIX_PARSER = aioftp.Client(encoding="latin-1")  # only its pure LIST-line parsers are used
# MS-DOS style LIST line, as IIS and many embedded servers print it:
#   11-21-25  02:07PM       <DIR>          WEBPROG
#   11-21-2025  14:07            1,234 DATA.CGX
_DOS_LINE_RE = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}\s*(?:[AaPp][Mm])?\s+(?P<size><DIR>|[\d,]+)\s+(?P<name>.+)$"
)


@dataclass(frozen=True, slots=True)
class FtpEntry:
    """One directory entry: full path, name, whether it is a directory, size in bytes."""

    path: str
    name: str
    is_dir: bool
    size_bytes: int | None = None


class WesFtp:
    """FTP client of one WES SD card. Use as ``async with WesFtp(...) as ftp:``."""

    def __init__(
        self,
        host: str,
        port: int = 21,
        *,
        user: str = "adminftp",
        password: str = "wesftp",  # noqa: S107 - factory default of the box (wes.md §5)
        timeout_s: float = 10.0,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.max_download_bytes = max_download_bytes
        self._user = user
        self._password = password
        self._lock = asyncio.Lock()
        self._client: aioftp.Client | None = None
        self._where = f"{host}:{port}"

    @classmethod
    def from_config(cls, config: WesConfig) -> WesFtp:
        """Build from a :class:`~wesh.wes.client.WesConfig` (its ftp_* fields)."""
        return cls(
            config.host,
            config.ftp_port,
            user=config.ftp_user,
            password=config.ftp_password,
            timeout_s=config.timeout_s,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Say QUIT (politely, briefly) and close the control connection (idempotent)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            async with asyncio.timeout(min(self.timeout_s, 2.0)):
                await client.quit()
        except (OSError, TimeoutError, aioftp.AIOFTPException):
            _LOG.debug("FTP %s: QUIT failed, closing anyway", self._where)
        finally:
            client.close()

    # -- operations -------------------------------------------------------------------------

    async def list(self, path: str = "/") -> list[FtpEntry]:
        """List directory ``path`` (``LIST``), sorted by name."""
        target = _check_path(path, self._where)

        async def run(client: aioftp.Client) -> list[FtpEntry]:
            raw: list[bytes] = []
            size = 0
            async with await _open_data(client, f"LIST {target}") as stream:
                while line := await stream.readline():
                    size += len(line)
                    if size > self.max_download_bytes:
                        raise DecodeError(f"listing of {target} is too large", host=self._where)
                    raw.append(line)
            entries = []
            for line in raw:
                entry = parse_list_line(line, target, where=self._where)
                if entry is not None:
                    entries.append(entry)
            return sorted(entries, key=lambda e: e.name)

        return await self._run(f"LIST {target}", run)

    async def download(self, path: str) -> bytes:
        """Download file ``path``; more than ``max_download_bytes`` is a DecodeError."""
        target = _check_path(path, self._where)
        cap = self.max_download_bytes

        async def run(client: aioftp.Client) -> bytes:
            data = bytearray()
            async with await _open_data(client, f"RETR {target}") as stream:
                async for block in stream.iter_by_block(_BLOCK_BYTES):
                    data += block
                    if len(data) > cap:
                        raise DecodeError(f"{target} is larger than {cap} bytes", host=self._where)
            return bytes(data)

        return await self._run(f"RETR {target}", run)

    async def upload(self, path: str, data: bytes) -> None:
        """Upload ``data`` to file ``path`` (binary, replaces an existing file)."""
        target = _check_path(path, self._where)

        async def run(client: aioftp.Client) -> None:
            async with await _open_data(client, f"STOR {target}") as stream:
                await stream.write(data)

        await self._run(f"STOR {target}", run)

    async def mkdir(self, path: str) -> None:
        """Create directory ``path`` (its parent must exist)."""
        target = _check_path(path, self._where)

        async def run(client: aioftp.Client) -> None:
            await client.command("MKD " + target, "257")

        await self._run(f"MKD {target}", run)

    async def delete(self, path: str) -> None:
        """Delete file ``path`` (``DELE``)."""
        target = _check_path(path, self._where)

        async def run(client: aioftp.Client) -> None:
            await client.command("DELE " + target, "2xx")

        await self._run(f"DELE {target}", run)

    async def rmdir(self, path: str) -> None:
        """Remove empty directory ``path`` (``RMD``)."""
        target = _check_path(path, self._where)

        async def run(client: aioftp.Client) -> None:
            await client.command("RMD " + target, "2xx")

        await self._run(f"RMD {target}", run)

    async def install_template(self, name: str, text: str) -> str:
        """Upload a custom CGX template to the card root; return its HTTP path.

        ``name`` is a plain file name (``wesh.cgx``); ``text`` must be ISO-8859-1 text.
        Poll it afterwards with :meth:`WesClient.fetch` on the returned path.
        """
        if not _NAME_RE.match(name):
            raise UsageError(f"bad template name {name!r}: letters, digits, _ - and .cgx")
        try:
            data = text.encode(TEMPLATE_ENCODING)
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"template text is not ISO-8859-1 at character {exc.start}", where=name
            ) from exc
        path = "/" + name
        await self.upload(path, data)
        return path

    async def download_logs(self, day: date) -> CsvLog:
        """Download and parse the CSV log of local day ``day`` (our layout, see csvlog)."""
        data = await self.download(csv_log_path(day))
        return parse_csv_log(data.decode(CSV_ENCODING))

    # -- session ----------------------------------------------------------------------------

    async def _run(self, what: str, operation: Callable[[aioftp.Client], Awaitable[_T]]) -> _T:
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout_s):
                    client = await self._connected()
                    return await operation(client)
            except WeshError as exc:
                self._drop()
                if exc.host is None:
                    exc.host = self._where
                raise
            except aioftp.StatusCodeError as exc:
                raise self._status_error(what, exc) from exc
            except TimeoutError as exc:
                self._drop()
                raise DeviceTimeout(
                    f"FTP {what}: no answer within {self.timeout_s} s", host=self._where
                ) from exc
            except (OSError, aioftp.AIOFTPException, EOFError) as exc:
                self._drop()
                hint = (
                    " (is FTP enabled on the WES?)"
                    if isinstance(exc, ConnectionRefusedError)
                    else ""
                )
                raise ConnectionFailed(
                    f"FTP {what} failed: {exc!r}{hint}", host=self._where
                ) from exc
            except asyncio.CancelledError:
                self._drop()
                raise

    async def _connected(self) -> aioftp.Client:
        if self._client is not None:
            return self._client
        client = aioftp.Client(
            socket_timeout=self.timeout_s,
            connection_timeout=self.timeout_s,
            passive_commands=("pasv",),
            encoding="latin-1",
        )
        try:
            await client.connect(self.host, self.port)
            await client.login(self._user, self._password)
        except aioftp.StatusCodeError as exc:
            client.close()
            if any(str(code).startswith("530") for code in exc.received_codes):
                raise AuthenticationError(
                    f"FTP login refused for {self._user!r}", host=self._where
                ) from exc
            raise
        except BaseException:
            client.close()
            raise
        _LOG.debug("FTP %s: logged in as %s", self._where, self._user)
        self._client = client
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _status_error(self, what: str, exc: aioftp.StatusCodeError) -> WeshError:
        codes = [str(code) for code in exc.received_codes]
        info = " ".join(str(line) for line in exc.info)[:120]
        message = f"FTP {what}: server answered {', '.join(codes)} {info}".rstrip()
        if any(code.startswith("530") for code in codes):
            self._drop()
            return AuthenticationError(message, host=self._where)
        if any(code.startswith("4") for code in codes):
            self._drop()
            return TransientError(message, host=self._where)
        return DeviceReportedError(message, host=self._where)


async def _open_data(client: aioftp.Client, command: str) -> aioftp.DataConnectionThrottleStreamIO:
    """Open a passive data connection and send ``command`` on the control connection.

    Unlike ``aioftp.Client.get_stream``, the data connection is closed when the command
    is refused (``550``), so a missing file does not leak a socket.
    """
    reader, writer = await client.get_passive_connection("I")
    try:
        await client.command(command, "1xx")
    except BaseException:
        writer.close()
        raise
    return aioftp.DataConnectionThrottleStreamIO(
        client, reader, writer, throttles={"_": client.throttle}, timeout=client.socket_timeout
    )


def parse_list_line(line: bytes, directory: str = "/", *, where: str = "") -> FtpEntry | None:
    """Parse one LIST line (MS-DOS or Unix style); ``None`` for ``.``, ``..`` or junk.

    Junk is logged (with ``where``, the box) and skipped, never raised.
    """
    if not line.strip():
        return None
    dos = _DOS_LINE_RE.match(line.decode("latin-1").rstrip("\r\n"))
    if dos:
        name, is_dir, size = dos["name"], dos["size"] == "<DIR>", dos["size"].replace(",", "")
    else:
        try:
            name_path, info = _UNIX_PARSER.parse_list_line(line)
        except (ValueError, KeyError, IndexError):
            _LOG.warning("FTP %s: unreadable LIST line skipped: %r", where, line[:80])
            return None
        name, is_dir, size = name_path.name, info.get("type") == "dir", str(info.get("size", ""))
    if name in ("", ".", ".."):
        return None
    return FtpEntry(
        path=str(PurePosixPath(directory) / name),
        name=name,
        is_dir=is_dir,
        size_bytes=int(size) if size.isdigit() else None,
    )


def _check_path(path: str, where: str) -> str:
    if not path.startswith("/") or any(c in path for c in "\r\n\0"):
        raise UsageError(f"bad FTP path {path!r}: must be absolute, one line", host=where)
    if ".." in PurePosixPath(path).parts:
        raise UsageError(f"bad FTP path {path!r}: '..' is not allowed", host=where)
    return path
