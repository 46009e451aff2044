"""The one interface of Tonique's transports: carry short ASCII texts to a peer and back.

A transport moves opaque texts (the packet codec's base16 fragments) between a site and
headquarters. It knows nothing of packets: it validates the text, sends it, confirms or
reports the sending, and hands over what arrives. Three implementations share it:

=========================  ===============================  ===============================
transport                  peer                             one ``send`` becomes
=========================  ===============================  ===============================
``GammuTransport``         E.164 number (``+33612345678``)  one outbox file of gammu-smsd
                                                            (one SMS, or one multipart SMS)
``MqttTransport``          site id or HQ id                 one QoS 1 publication
``LoopbackTransport``      endpoint name                    one in-process delivery, with
                                                            optional fault injection
=========================  ===============================  ===============================

Texts are limited to the printable characters of the GSM 7-bit basic alphabet that are
also ASCII (so that one character is one septet and the SMS part count is exact, whatever
the transport): at most :data:`SMS_SINGLE_CHARS` characters fit one SMS, longer texts are
split by the SMS layer into parts of :data:`SMS_PART_CHARS` characters, at most
:data:`SMS_MAX_PARTS` of them. MQTT and loopback take longer texts (a whole packet in one
text): :data:`LONG_TEXT_CHARS` characters by default.

Delivery is *at least once, in no particular order*: a message may be lost (SMS), repeated
(a redelivery after a crash, an MQTT retry) or arrive after a later one; the codec's
fragment layer deals with that.
"""

from __future__ import annotations

import asyncio
import enum
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from wesh.errors import DeviceTimeout, UsageError

__all__ = [
    "GSM_SAFE_ASCII",
    "LONG_TEXT_CHARS",
    "SMS_MAX_PARTS",
    "SMS_PART_CHARS",
    "SMS_SINGLE_CHARS",
    "Message",
    "SendReceipt",
    "SendStatus",
    "Transport",
    "TransportStats",
    "check_e164",
    "check_text",
    "redact_in",
    "redact_peer",
    "sms_parts",
    "split_sms",
]

SMS_SINGLE_CHARS = 160
"""Characters of one GSM 7-bit SMS without a user data header."""
SMS_PART_CHARS = 153
"""Characters of one part of a concatenated SMS (the 6-byte UDH takes 7 septets)."""
SMS_MAX_PARTS = 50
"""gammu's GSM_MAX_MULTI_SMS: the most parts of one concatenated message."""
LONG_TEXT_CHARS = 65_536
"""Default longest text of the transports that are not SMS (MQTT, loopback)."""

# GSM 03.38 basic alphabet ∩ printable ASCII: everything from space to "~" except the
# characters that are missing (backtick) or need the escape table ([ \ ] ^ { | } ~).
GSM_SAFE_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset("`[\\]^{|}~")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True, slots=True)
class Message:
    """One received message.

    Attributes:
        peer: who sent it: an E.164 number (SMS) or a site/HQ id (MQTT, loopback).
        text: the text as received: one SMS, or a multipart SMS reassembled by the
            SMS layer (possibly incomplete when a part never came: see ``parts``).
        received_at: when this side received it (aware, UTC).
        parts: how many SMS parts made it into ``text`` (1 for MQTT and loopback).
    """

    peer: str
    text: str
    received_at: datetime
    parts: int = 1


@dataclass(frozen=True, slots=True)
class TransportStats:
    """Counters of a transport since it was created (a snapshot).

    Attributes:
        sent: messages accepted by :meth:`Transport.send`.
        sent_parts: SMS parts of those messages (``sent`` for MQTT and loopback).
        confirmed: sent messages the transport confirmed (gammu ``sent/``, MQTT PUBACK).
        failed: sent messages the transport reported failed (gammu ``error/``).
        received: messages handed out by :meth:`Transport.messages`.
        received_parts: SMS parts of those messages.
        errors: sends refused because the transport was down, and received items that
            could not be read (each logged; the item is kept aside, never lost).
    """

    sent: int = 0
    sent_parts: int = 0
    confirmed: int = 0
    failed: int = 0
    received: int = 0
    received_parts: int = 0
    errors: int = 0


class SendStatus(enum.StrEnum):
    """Where a sent message stands."""

    PENDING = "pending"
    """Queued: written to the outbox, or being published."""
    SENT = "sent"
    """Handed to the network (gammu moved it to ``sent/``; the broker acknowledged it)."""
    FAILED = "failed"
    """The transport gave up on it (gammu moved it to ``error/``)."""


class SendReceipt:
    """A handle on one message accepted by :meth:`Transport.send`.

    ``await receipt.wait(timeout_s)`` returns the outcome. "Sent" means handed to the
    network, not delivered: SMS delivery is never confirmed here.

    Attributes:
        transport: the name of the transport that accepted the message.
        id: the transport's id of the message (gammu: the outbox file name).
        peer: the recipient.
        parts: SMS parts the text takes (1 for MQTT and loopback).
    """

    __slots__ = ("_done", "_status", "detail", "id", "parts", "peer", "transport")

    def __init__(self, *, transport: str, id: str, peer: str, parts: int = 1) -> None:
        self.transport = transport
        self.id = id
        self.peer = peer
        self.parts = parts
        self.detail: str | None = None
        self._status = SendStatus.PENDING
        self._done = asyncio.Event()

    @property
    def status(self) -> SendStatus:
        """The current status (``PENDING`` until the transport knows better)."""
        return self._status

    def done(self) -> bool:
        """Whether the outcome is known (sent or failed)."""
        return self._status is not SendStatus.PENDING

    async def wait(self, timeout_s: float | None = None) -> SendStatus:
        """Wait for the outcome: ``SENT`` or ``FAILED``.

        Raises:
            DeviceTimeout: still pending after ``timeout_s`` seconds (the message stays
                queued: the transport may still send it later).
        """
        if self.done():
            return self._status
        try:
            async with asyncio.timeout(timeout_s):
                await self._done.wait()
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"message not sent within {timeout_s} s (still queued)",
                host=self.transport,
                where=redact_in(self.id, self.peer),
            ) from exc
        return self._status

    def resolve(self, status: SendStatus, detail: str | None = None) -> None:
        """Set the outcome (transports call this once; later calls are ignored)."""
        if self.done() or status is SendStatus.PENDING:
            return
        self._status = status
        self.detail = detail
        self._done.set()

    def __repr__(self) -> str:
        return (
            f"SendReceipt(transport={self.transport!r}, id={redact_in(self.id, self.peer)!r}, "
            f"peer={redact_peer(self.peer)!r}, status={self._status.value!r})"
        )


@runtime_checkable
class Transport(Protocol):
    """What the site agent and the HQ receiver need from a transport."""

    name: str

    async def send(self, peer: str, text: str) -> SendReceipt:
        """Queue ``text`` for ``peer``; return at once with a receipt.

        Raises:
            TransientError: the transport is down (spool missing, broker away); nothing
                was queued, the caller keeps the data and retries later.
            UsageError: a bad peer or text (empty, too long, not GSM-safe ASCII).
        """
        ...

    def messages(self) -> AsyncIterator[Message]:
        """Received messages, forever (until :meth:`aclose`), at least once each."""
        ...

    async def aclose(self) -> None:
        """Stop background work and release resources (idempotent)."""
        ...

    def stats(self) -> TransportStats:
        """Return a snapshot of the counters."""
        ...


# ----------------------------------------------------------------------------- pure helpers


def sms_parts(text: str) -> int:
    """SMS parts a GSM-safe ASCII ``text`` takes (160 in one, else 153 per part)."""
    if len(text) <= SMS_SINGLE_CHARS:
        return 1
    return math.ceil(len(text) / SMS_PART_CHARS)


def split_sms(text: str) -> list[str]:
    """Cut ``text`` into the texts of its SMS parts, in order (as the SMS layer does)."""
    if len(text) <= SMS_SINGLE_CHARS:
        return [text]
    return [text[i : i + SMS_PART_CHARS] for i in range(0, len(text), SMS_PART_CHARS)]


def check_text(
    text: object,
    *,
    max_parts: int = SMS_MAX_PARTS,
    max_chars: int | None = None,
    where: str = "text",
) -> str:
    """Return ``text`` if a transport can carry it, else raise :class:`UsageError`.

    It must be a non-empty string of GSM-safe printable ASCII (:data:`GSM_SAFE_ASCII`)
    taking at most ``max_parts`` SMS parts, or, when ``max_chars`` is given (transports
    that are not SMS), at most ``max_chars`` characters.
    """
    if not isinstance(text, str):
        raise UsageError(f"text must be a str, not {type(text).__name__}", where=where)
    if not text:
        raise UsageError("text is empty", where=where)
    for index, char in enumerate(text):
        if char not in GSM_SAFE_ASCII:
            raise UsageError(
                f"character {char!r} at {index} is not GSM-safe printable ASCII", where=where
            )
    if max_chars is not None:
        if len(text) > max_chars:
            raise UsageError(f"text of {len(text)} characters is over {max_chars}", where=where)
        return text
    parts = sms_parts(text)
    if parts > max_parts:
        raise UsageError(
            f"text of {len(text)} characters takes {parts} SMS parts (at most {max_parts})",
            where=where,
        )
    return text


def check_e164(number: object, *, where: str = "peer") -> str:
    """Return ``number`` if it is an E.164 number (``+`` and 7 to 15 digits)."""
    if not isinstance(number, str) or not _E164.fullmatch(number):
        shown = redact_peer(number) if isinstance(number, str) else type(number).__name__
        raise UsageError(
            f"{shown!r} is not an E.164 phone number (+ and 7 to 15 digits)", where=where
        )
    return number


def redact_peer(peer: str) -> str:
    """Shorten a phone number for logs to its last 3 digits (``+33612345678`` → ``…678``).

    Anything that does not look like a phone number (a site id) is returned unchanged.
    """
    digits = peer.lstrip("+")
    if len(digits) > 3 and digits.replace("*", "").replace("#", "").isdigit():
        return "…" + peer[-3:]
    return peer


def redact_in(text: str, peer: str) -> str:
    """Replace ``peer`` by :func:`redact_peer` of it wherever it appears in ``text``."""
    shown = redact_peer(peer)
    return text.replace(peer, shown) if peer and shown != peer else text
