"""Async HTTP client of one Cartelectronic WES server.

Transport and session policy (``docs/wes-client.md``)::

    WesClient ──GET /data.cgx, Basic auth sent pre-emptively, "Connection: close"──▶ WES
              ◀── 200 text/xml body (streamed, capped at max_body_bytes) ────────────
              parse_data_cgx → identity check (MAC) → WesSnapshot → readings

* **One connection at a time per client** (an :class:`asyncio.Lock`): the box is
  single-threaded and slow; every request opens and closes its own connection.
* Each attempt is bounded by ``timeout_s`` from connect to the last body byte, so a
  body dripped byte by byte ends in :class:`DeviceTimeout`. The body is read in chunks
  and the connection dropped as soon as it passes ``max_body_bytes``.
* Transient failures (refused/reset connection, timeout, HTTP 5xx) are retried
  ``retries`` times with exponential backoff and jitter; idempotent commands too, but
  never toggles, counter resets or reboot. Everything else fails at once.
* Status mapping: 401 → :class:`AuthenticationError`, 403 → :class:`PermissionDenied`,
  5xx → :class:`HttpServerError` (transient), other non-2xx → :class:`DeviceReportedError`,
  malformed body or HTTP → :class:`DecodeError`. Every error carries ``host=``; no
  aiohttp, OSError or timeout exception escapes.
* Identity: with ``expected_mac`` set, the MAC the box reports (``<info><serial>`` of
  the page, or M2M ``gI000`` when the page has none) must match, else
  :class:`IdentityMismatch`. A swapped box is never accepted silently.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

import aiohttp
from yarl import URL

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
    WeshError,
)
from wesh.wes.commands import (
    Command,
    CounterKind,
    reboot_command,
    relay_command,
    reset_counter_command,
    switch_command,
    toggle_relay_command,
    toggle_switch_command,
)
from wesh.wes.datacgx import parse_compact, parse_data_cgx
from wesh.wes.m2m import WesM2M, normalise_mac
from wesh.wes.model import Firmware, WesSnapshot
from wesh.wes.readings import Reading

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HttpServerError",
    "IdentityMismatch",
    "WesClient",
    "WesConfig",
]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MAX_BODY_BYTES = 1_000_000
_CHUNK_BYTES = 16_384
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/%-]*$")


class HttpServerError(TransientError):
    """The box answered HTTP 5xx (busy, rebooting): retrying later may succeed."""

    def __init__(self, message: str, *, status: int, host: str | None = None) -> None:
        super().__init__(message, host=host)
        self.status = status


class IdentityMismatch(DeviceReportedError):
    """The box at this address is not the expected one (or will not say which it is).

    Attributes:
        expected: the configured MAC (12 upper-case hex digits).
        actual: the MAC the box reported, or ``None`` if it reported none.
    """

    def __init__(self, message: str, *, expected: str, actual: str | None, host: str) -> None:
        super().__init__(message, host=host)
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class WesConfig:
    """How to reach one WES and what to expect of it.

    ``expected_mac`` is normalised to 12 upper-case hex digits. ``retries`` counts the
    extra attempts after a transient failure (``2`` → at most 3 attempts); the n-th
    retry waits ``backoff_s * 2**(n-1)`` seconds (capped at ``backoff_max_s``) times a
    random factor in [0.5, 1]. ``firmware`` forces the data.cgx dialect (else detected).
    ``mac_via_m2m``: when the page carries no MAC, ask the M2M port (``gI000``).
    ``compact``: ``data_path`` is a compact template we installed (``wesh.wes.cgx``),
    read with :func:`~wesh.wes.datacgx.parse_compact` instead of the XML parser.
    """

    host: str
    port: int = 80
    user: str = "admin"
    password: str = field(default="wes", repr=False)
    expected_mac: str | None = None
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    ftp_user: str = "adminftp"
    ftp_password: str = field(default="wesftp", repr=False)
    ftp_port: int = 21
    m2m_port: int = 1500
    data_path: str = "/data.cgx"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    firmware: Firmware | None = None
    mac_via_m2m: bool = True
    compact: bool = False

    def __post_init__(self) -> None:
        def bad(message: str, key: str) -> ConfigError:
            return ConfigError(message, host=self.host or None, where=key)

        if not self.host or any(c.isspace() for c in self.host):
            raise bad(f"bad host {self.host!r}", "host")
        if ":" in self.user or any(c in self.user + self.password for c in "\r\n"):
            raise bad("user may not contain ':'; no line breaks in credentials", "user")
        for key in ("port", "ftp_port", "m2m_port"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise bad(f"{key} must be 1..65535, not {value!r}", key)
        if not self.timeout_s > 0:
            raise bad("timeout_s must be positive", "timeout_s")
        if isinstance(self.retries, bool) or not 0 <= self.retries <= 10:
            raise bad("retries must be 0..10", "retries")
        if not (0 <= self.backoff_s <= self.backoff_max_s):
            raise bad("need 0 <= backoff_s <= backoff_max_s", "backoff_s")
        if self.max_body_bytes < 1:
            raise bad("max_body_bytes must be positive", "max_body_bytes")
        if not _PATH_RE.match(self.data_path):
            raise bad(f"bad data_path {self.data_path!r}", "data_path")
        if self.expected_mac is not None:
            try:
                mac = normalise_mac(self.expected_mac)
            except DecodeError:
                raise bad(f"bad expected_mac {self.expected_mac!r}", "expected_mac") from None
            object.__setattr__(self, "expected_mac", mac)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WesClient:
    """Async client of one WES over HTTP (and M2M for the identity check when needed).

    Use as ``async with WesClient(config) as client:``. Give ``session`` to share an
    :class:`aiohttp.ClientSession` (it is then not closed by the client). ``clock``
    stamps ``poll_time``; ``rng`` and ``sleep`` drive the backoff (tests inject them).
    """

    def __init__(
        self,
        config: WesConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._headers = {
            "Authorization": _basic_auth(config.user, config.password),
            "Connection": "close",
        }
        self._where = f"{config.host}:{config.port}"

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
        """Close the HTTP session if this client created it (idempotent)."""
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    # -- reading ----------------------------------------------------------------------------

    async def fetch(self, path: str) -> bytes:
        """GET ``path`` (a stock page or a custom template) and return its body bytes."""
        target = _check_path(path, host=self._where)
        return await self._retrying(lambda: self._get(target), retry=True)

    async def fetch_snapshot(
        self, path: str | None = None, *, compact: bool | None = None
    ) -> WesSnapshot:
        """GET the data page (or ``path``), parse it and check the box's identity.

        ``compact`` (default: ``config.compact``) reads a compact template's output.
        """
        body = await self.fetch(path or self.config.data_path)
        parse = (
            parse_compact
            if (self.config.compact if compact is None else compact)
            else parse_data_cgx
        )
        try:
            snapshot = parse(
                body, firmware=self.config.firmware, max_bytes=self.config.max_body_bytes
            )
        except DecodeError as exc:
            raise DecodeError(
                exc.message, host=self._where, where=exc.where, channel=exc.channel
            ) from exc
        for warning in snapshot.warnings:
            _LOG.debug("WES %s: %s", self._where, warning)
        await self._check_identity(snapshot.info.mac)
        return snapshot

    async def fetch_readings(
        self, *, pulse_units: Mapping[int, str] | None = None
    ) -> list[Reading]:
        """Fetch a snapshot and flatten it into readings stamped with the poll time.

        ``pulse_units`` gives the configured unit of each pulse counter (``{1: "m3"}``).
        """
        snapshot = await self.fetch_snapshot()
        return snapshot.readings(poll_time=self._clock(), pulse_units=pulse_units)

    async def m2m_mac(self) -> str:
        """Ask the box's MAC over M2M (``gI000``), one short connection."""
        async with WesM2M(
            self.config.host, self.config.m2m_port, timeout_s=self.config.timeout_s
        ) as m2m:
            return await m2m.mac()

    async def _check_identity(self, reported: str | None) -> None:
        expected = self.config.expected_mac
        if expected is None:
            return
        source = "the data page"
        if reported is None and self.config.mac_via_m2m:
            async with self._lock:
                reported = await self.m2m_mac()
            source = "M2M gI000"
        if reported is None:
            raise IdentityMismatch(
                f"box does not report its MAC; expected {expected}",
                expected=expected,
                actual=None,
                host=self._where,
            )
        try:
            actual = normalise_mac(reported)
        except DecodeError:
            actual = reported
        if actual != expected:
            raise IdentityMismatch(
                f"wrong box: {source} says MAC {actual}, expected {expected}",
                expected=expected,
                actual=actual,
                host=self._where,
            )

    # -- commands ---------------------------------------------------------------------------

    async def set_relay(self, n: int, on: bool) -> None:
        """Switch relay ``n`` (1, 2, 9 = both, 1-Wire 101..198) on or off."""
        await self.send(relay_command(n, on))

    async def toggle_relay(self, n: int) -> None:
        """Toggle relay ``n`` (not retried: a retry could toggle twice)."""
        await self.send(toggle_relay_command(n))

    async def set_switch(self, n: int, on: bool) -> None:
        """Set virtual switch ``n`` (1..24) on or off."""
        await self.send(switch_command(n, on))

    async def toggle_switch(self, n: int) -> None:
        """Toggle virtual switch ``n`` (not retried)."""
        await self.send(toggle_switch_command(n))

    async def reset_counter(self, n: int, *, kind: CounterKind = "pulse") -> None:
        """Reset pulse counter or clamp ``n`` (URL is OUR CHOICE, see docs/wes-client.md)."""
        await self.send(reset_counter_command(n, kind=kind))

    async def reboot(self) -> None:
        """Reboot the box; the connection drop that follows the request is expected."""
        await self.send(reboot_command())

    async def send(self, command: Command) -> None:
        """Send one :class:`Command` (needs the admin account; else PermissionDenied)."""
        await self._retrying(
            lambda: self._get(command.target, drop_ok=command.drops_connection),
            retry=command.idempotent,
        )

    # -- transport --------------------------------------------------------------------------

    async def _retrying(self, attempt: Callable[[], Awaitable[_T]], *, retry: bool) -> _T:
        tries = 1 + (self.config.retries if retry else 0)
        for number in range(1, tries + 1):
            try:
                return await attempt()
            except TransientError as exc:
                if number >= tries:
                    raise
                delay = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (number - 1))
                delay *= self._rng.uniform(0.5, 1.0)
                _LOG.debug(
                    "WES %s: attempt %d/%d failed (%s), retrying in %.2f s",
                    self._where,
                    number,
                    tries,
                    exc,
                    delay,
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, target: str) -> URL:
        path, _, query = target.partition("?")
        return URL.build(
            scheme="http",
            host=self.config.host,
            port=self.config.port,
            path=path,
            query_string=query,
        )

    async def _get(self, target: str, *, drop_ok: bool = False) -> bytes:
        async with self._lock:
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    return await self._get_unlocked(target)
            except WeshError:
                raise
            except aiohttp.ClientConnectorError as exc:
                raise ConnectionFailed(f"cannot connect: {exc.os_error}", host=self._where) from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
                if drop_ok:
                    _LOG.debug(
                        "WES %s: connection dropped after %s, as expected", self._where, target
                    )
                    return b""
                raise ConnectionFailed(f"connection lost: {exc}", host=self._where) from exc
            except TimeoutError as exc:  # includes aiohttp.ServerTimeoutError
                raise DeviceTimeout(
                    f"no complete answer to {target} within {self.config.timeout_s} s",
                    host=self._where,
                ) from exc
            except aiohttp.ClientOSError as exc:
                if drop_ok:
                    return b""
                raise ConnectionFailed(f"connection failed: {exc}", host=self._where) from exc
            except aiohttp.ClientResponseError as exc:
                raise DecodeError(
                    f"malformed HTTP response: {exc.message}", host=self._where
                ) from exc
            except aiohttp.InvalidURL as exc:
                raise UsageError(f"invalid URL for {target!r}", host=self._where) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise ConnectionFailed(f"HTTP request failed: {exc!r}", host=self._where) from exc

    async def _get_unlocked(self, target: str) -> bytes:
        session = self._session_for_request()
        async with session.get(
            self._url(target),
            headers=self._headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
        ) as response:
            self._check_status(response.status, target)
            return await self._read_capped(response)

    def _session_for_request(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise UsageError("the shared aiohttp session is closed", host=self._where)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=1),
                auto_decompress=False,
            )
            # aiohttp silently re-sends a GET once when the connection drops (RFC 9112
            # retry of persistent connections). With one connection per request that is
            # pure duplication, and a toggle sent twice undoes itself: turn it off. The
            # knob is private (aiohttp's own test client uses it); shared sessions keep it.
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
        return self._session

    def _check_status(self, status: int, target: str) -> None:
        if 200 <= status < 300:
            return
        if status == 401:
            raise AuthenticationError(
                f"credentials refused (HTTP 401) for {target}", host=self._where
            )
        if status == 403:
            raise PermissionDenied(
                f"account {self.config.user!r} may not use {target} (HTTP 403)", host=self._where
            )
        if status >= 500:
            raise HttpServerError(f"HTTP {status} for {target}", status=status, host=self._where)
        raise DeviceReportedError(f"HTTP {status} for {target}", host=self._where)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self.config.max_body_bytes
        declared = response.content_length
        if declared is not None and declared > cap:
            response.close()
            raise DecodeError(
                f"response declares {declared} bytes, more than {cap}", host=self._where
            )
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            body += chunk
            if len(body) > cap:
                response.close()
                raise DecodeError(f"response body exceeds {cap} bytes", host=self._where)
        return bytes(body)


def _basic_auth(user: str, password: str) -> str:
    """Return the value of a pre-emptive ``Authorization: Basic`` header."""
    raw = f"{user}:{password}"
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    return "Basic " + base64.b64encode(data).decode("ascii")


def _check_path(path: str, *, host: str) -> str:
    if not _PATH_RE.match(path):
        raise UsageError(f"bad path {path!r}: absolute, no query, URL-safe characters", host=host)
    return path
