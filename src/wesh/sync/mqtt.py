"""Tonique over MQTT (aiomqtt), for buildings that have IP: the same texts as by SMS.

Topics (``prefix`` is ``wesh/sync`` by default)::

    <prefix>/<site>/up      site → HQ   published by the site, subscribed by HQ (``+``)
    <prefix>/<site>/down    HQ → site   published by HQ, subscribed by that site

Every packet is published with QoS 1 and never retained (a retained packet would be
delivered again to every new subscriber). The payload is the text itself, in ASCII.

One class serves both ends: ``role="site"`` (``send("hq", text)``; messages come from
``hq_id``) and ``role="hq"`` (``send(site, text)``; messages come from each site id).
Each end keeps a persistent session (``clean_session=False`` and a fixed client id), so
the broker queues QoS 1 messages while it is away.

A background task connects, subscribes and reads; when the connection drops it reconnects
with exponential backoff, logging the outage once when it starts and once when it ends.
:meth:`MqttTransport.send` publishes at once and waits for the broker's PUBACK; when the
broker is away it raises :class:`~wesh.errors.ConnectionFailed` (a transient error): the
caller keeps the data and sends again later. A publication whose PUBACK was lost may
arrive twice; that is within the transports' "at least once" contract.

Limit: paho acknowledges a received message before the consumer has processed it (aiomqtt
has no manual acknowledgement), so a crash at that instant loses the message on the HQ
side; the codec's acknowledgements and the agent's retransmissions cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self

import aiomqtt

from wesh.errors import ConnectionFailed, UsageError
from wesh.sync.transport import (
    LONG_TEXT_CHARS,
    Message,
    SendReceipt,
    SendStatus,
    TransportStats,
    check_text,
)

__all__ = ["MqttTransport", "check_site_id", "down_topic", "up_topic"]

_LOG = logging.getLogger(__name__)
_SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

Role = Literal["site", "hq"]


def check_site_id(site: object, *, where: str = "site") -> str:
    """Return ``site`` if it can be one topic level (letters, digits, ``._-``; ≤ 64)."""
    if not isinstance(site, str) or not _SITE_ID.fullmatch(site):
        raise UsageError(
            f"{site!r} is not a site id (letters, digits, '.', '_', '-'; at most 64)",
            where=where,
        )
    return site


def up_topic(prefix: str, site: str) -> str:
    """Return the topic of a site's packets to HQ."""
    return f"{prefix}/{site}/up"


def down_topic(prefix: str, site: str) -> str:
    """Return the topic of HQ's packets to a site."""
    return f"{prefix}/{site}/down"


class MqttTransport:
    """One end of Tonique over an MQTT broker; see the module docstring.

    Use ``async with MqttTransport(...) as transport:`` (or :meth:`start` and
    :meth:`aclose`).

    Args:
        host, port: the broker.
        role: ``"site"`` or ``"hq"``.
        site: this site's id (role ``site`` only).
        hq_id: the peer name of headquarters.
        prefix: the first topic levels.
        client_id: the MQTT client id (default ``wesh-sync-<role>-<site or hq_id>``);
            several HQ workers need distinct ids (and a shared subscription upstream).
        username, password, tls: broker credentials and an optional TLS context.
        timeout_s: time allowed to connect, subscribe, and for each PUBACK.
        backoff_initial_s, backoff_max_s: reconnection delays (doubling).
        max_chars: longest text accepted (a whole packet fits in one text).
        sleep: waits between reconnection attempts (tests may pass another).
        now: the wall clock stamped on received messages.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 1883,
        role: Role,
        site: str | None = None,
        hq_id: str = "hq",
        prefix: str = "wesh/sync",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_chars: int = LONG_TEXT_CHARS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if role not in ("site", "hq"):
            raise UsageError(f"role must be 'site' or 'hq', not {role!r}", where="role")
        if role == "site":
            site = check_site_id(site)
        elif site is not None:
            raise UsageError("site is only for role 'site'", where="site")
        check_site_id(hq_id, where="hq_id")
        if not prefix or any(c in prefix for c in "+#\x00") or prefix.endswith("/"):
            raise UsageError(f"bad topic prefix {prefix!r}", where="prefix")
        self.role: Role = role
        self.site = site
        self.hq_id = hq_id
        self.prefix = prefix
        self.name = f"mqtt-{role}-{site or hq_id}"
        self._host = host
        self._port = port
        self._client_id = client_id or f"wesh-sync-{role}-{site or hq_id}"
        self._username = username
        self._password = password
        self._tls = tls
        self._keepalive_s = keepalive_s
        self._timeout_s = timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._max_chars = max_chars
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._inbox: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._up = asyncio.Event()
        self._outage_logged = False
        self._retained_logged = False
        self._ids = 0
        self.connections = 0
        self._sent = self._received = self._errors = 0

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the connection task (returns at once; the broker may still be away)."""
        if self._closed:
            raise UsageError("transport is closed", host=self.name)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    @property
    def connected(self) -> bool:
        """Whether a connection to the broker is up (and subscribed)."""
        return self._client is not None

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until connected and subscribed.

        Raises:
            ConnectionFailed: not connected within ``timeout_s``.
        """
        await self.start()
        try:
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"MQTT broker not reachable within {timeout_s} s", host=self._where()
            ) from exc

    async def aclose(self) -> None:
        """Disconnect and stop; iterators of :meth:`messages` end."""
        self._closed = True
        self._arrived.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._client = None

    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    # ---------------------------------------------------------------- sending

    async def send(self, peer: str, text: str) -> SendReceipt:
        """Publish ``text`` to ``peer`` (QoS 1, not retained) and wait for the PUBACK.

        Raises:
            UsageError: a bad peer (site role: not ``hq_id``; HQ role: not a site id),
                a text no transport carries, or a closed transport.
            ConnectionFailed: the broker is away or did not acknowledge in time; the
                message may or may not have gone (at least once).
        """
        check_text(text, max_chars=self._max_chars)
        if self.role == "site":
            if peer != self.hq_id:
                raise UsageError(f"a site sends to {self.hq_id!r} only, not {peer!r}", where="peer")
            topic = up_topic(self.prefix, self.site or "")
        else:
            topic = down_topic(self.prefix, check_site_id(peer, where="peer"))
        if self._closed:
            raise UsageError("transport is closed", host=self.name)
        await self.start()
        client = self._client
        if client is None:
            self._errors += 1
            raise ConnectionFailed("MQTT broker is not connected", host=self._where())
        try:
            await client.publish(
                topic, text.encode("ascii"), qos=1, retain=False, timeout=self._timeout_s
            )
        except aiomqtt.MqttError as exc:
            self._errors += 1
            raise ConnectionFailed(f"MQTT publish failed: {exc}", host=self._where()) from exc
        self._sent += 1
        self._ids += 1
        receipt = SendReceipt(transport=self.name, id=f"{self.name}-{self._ids}", peer=peer)
        receipt.resolve(SendStatus.SENT)
        return receipt

    # ---------------------------------------------------------------- receiving

    async def messages(self) -> AsyncIterator[Message]:
        """Received messages, in arrival order, until :meth:`aclose`."""
        await self.start()
        while not self._closed:
            if self._inbox:
                message = self._inbox.popleft()
                self._received += 1
                yield message
                continue
            self._arrived.clear()
            await self._arrived.wait()

    def _subscription(self) -> str:
        if self.role == "site":
            return down_topic(self.prefix, self.site or "")
        return up_topic(self.prefix, "+")

    def _peer_of(self, topic: str) -> str | None:
        levels = topic.split("/")
        base = self.prefix.split("/")
        if len(levels) != len(base) + 2 or levels[: len(base)] != base:
            return None
        site, direction = levels[-2], levels[-1]
        if self.role == "site":
            return self.hq_id if (site, direction) == (self.site, "down") else None
        return site if direction == "up" and _SITE_ID.fullmatch(site) else None

    def _take(self, incoming: aiomqtt.Message) -> None:
        topic = str(incoming.topic)
        peer = self._peer_of(topic)
        text = None
        with contextlib.suppress(UnicodeDecodeError):
            text = bytes(incoming.payload).decode("ascii")
        if peer is None or not text:
            self._errors += 1
            _LOG.warning("dropped an MQTT message on %s: unexpected topic or non-ASCII", topic)
            return
        if incoming.retain and not self._retained_logged:
            self._retained_logged = True
            _LOG.warning("a retained packet on %s (packets should never be retained)", topic)
        self._inbox.append(Message(peer=peer, text=text, received_at=self._now()))
        self._arrived.set()

    # ---------------------------------------------------------------- the connection task

    def _new_client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self._host,
            self._port,
            identifier=self._client_id,
            clean_session=False,
            username=self._username,
            password=self._password,
            tls_context=self._tls,
            keepalive=self._keepalive_s,
            timeout=self._timeout_s,
        )

    async def _run(self) -> None:
        delay_s = self._backoff_initial_s
        while not self._closed:
            try:
                async with self._new_client() as client:
                    await client.subscribe(self._subscription(), qos=1)
                    self._connected(client)
                    delay_s = self._backoff_initial_s
                    async for incoming in client.messages:
                        self._take(incoming)
                self._disconnected(None)  # the stream ended: the connection is gone
            except (aiomqtt.MqttError, OSError) as exc:
                self._disconnected(exc)
            if self._is_closed():
                return
            await self._sleep(delay_s)
            delay_s = min(delay_s * 2, self._backoff_max_s)

    def _connected(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.connections += 1
        self._up.set()
        if self._outage_logged:
            self._outage_logged = False
            _LOG.info("MQTT broker %s reachable again (%s)", self._where(), self.name)

    def _is_closed(self) -> bool:
        return self._closed

    def _disconnected(self, exc: Exception | None) -> None:
        was_up = self._client is not None
        self._client = None
        self._up.clear()
        if not self._outage_logged:
            self._outage_logged = True
            _LOG.warning(
                "MQTT broker %s %s (%s); reconnecting with backoff (%s)",
                self._where(),
                "lost" if was_up else "unreachable",
                exc or "connection closed",
                self.name,
            )

    def stats(self) -> TransportStats:
        """Return a snapshot of the counters (a send counts once its PUBACK came)."""
        return TransportStats(
            sent=self._sent,
            sent_parts=self._sent,
            confirmed=self._sent,
            received=self._received,
            received_parts=self._received,
            errors=self._errors,
        )
