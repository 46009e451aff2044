"""Tonique fragments: a sealed packet ⇄ base16 texts of one SMS each, and their reassembly.

Pure logic, no I/O; the clock is injected (``now``, seconds of any monotonic clock).

A packet that fits one SMS (80 bytes = 160 base16 characters) travels whole; a larger
one is cut into fragments of 77 bytes behind a 3-byte fragment header, each sent as its
own SMS of at most 160 characters::

    whole packet (fits one SMS):   base16( packet )            first byte 0VVDTTTT: bit 7 clear

    fragment:                      base16( F ‖ I ‖ C ‖ chunk )
     byte  0            1          2          3 ... ≤ 79
          +-----------+----------+----------+---------------------------+
          |1 ppppppp  |  index   |  count   | chunk: ≤ 77 packet bytes  |
          |  pid (7)  |  u8      |  u8      | (all full but the last)   |
          +-----------+----------+----------+---------------------------+

    pid     the packet's seq mod 128 (read from the header), groups the fragments
    index   0 .. count-1;  count  2 .. 255 (so a packet has at most 255 * 77 bytes)

Base16 is upper case on output; input may be either case and is stripped of surrounding
white space. Each fragment is its own SMS (not a part of a UDH-concatenated message):
80 bytes a part instead of 76, each part deliverable alone, and none of gammu-smsd's
multipart limits (one incomplete message at a time, partial texts after
``MultipartTimeout``). A lost SMS costs that fragment only: the receiver lists what it
misses (:meth:`Reassembler.partials`, sent in ACKs) and the site re-sends those
fragments, cut identically from the packet it kept.

Fragments are not authenticated: the packet is, once whole. A forged or stale fragment can
spoil one reassembly (the packet then fails its tag and is re-sent), never inject data.
The :class:`Reassembler` bounds what a flood of junk SMS can cost: partial packets per
sender, bytes overall, and a timeout. It ignores late duplicates of a packet only once
the caller confirmed that the packet opened (:meth:`Reassembler.confirm`), so a reassembly
spoilt by a damaged fragment never stops the sender's re-sent copy from reassembling.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from wesh.errors import UsageError
from wesh.sync._wire import (
    CHUNK_BYTES,
    FRAGMENT_HEADER_BYTES,
    MAX_FRAGMENTS,
    SMS_BYTES,
    SMS_CHARS,
    PacketError,
    Reason,
)
from wesh.sync.packet import MAX_PACKET_BYTES, PartialAck

__all__ = [
    "CHUNK_BYTES",
    "FRAGMENT_HEADER_BYTES",
    "PARTIAL_OVERHEAD_BYTES",
    "SMS_BYTES",
    "SMS_CHARS",
    "Fragment",
    "Reassembler",
    "ReassemblerStats",
    "decode_text",
    "fragment_packet",
    "parts_for",
]

#: what one partial packet is counted for in :attr:`Reassembler.max_bytes`, besides its data
PARTIAL_OVERHEAD_BYTES: Final = 256
_HEX = re.compile(r"[0-9A-Fa-f]*")


def parts_for(packet_bytes: int) -> int:
    """How many SMS a sealed packet of that size takes."""
    if packet_bytes <= SMS_BYTES:
        return 1
    return -(-packet_bytes // CHUNK_BYTES)


def fragment_packet(packet: bytes, *, max_chars: int | None = SMS_CHARS) -> list[str]:
    """Cut a sealed packet into texts of at most ``max_chars`` characters.

    ``max_chars=None``: one text, however long (for MQTT and other non-SMS transports).
    The cut is deterministic: cutting the same packet again gives the same texts, so a
    site re-sends a lost fragment by index.
    """
    if len(packet) < 1 or packet[0] & 0x80:
        raise UsageError("not a sealed packet", where="fragment_packet")
    if max_chars is None or len(packet) * 2 <= max_chars:
        return [packet.hex().upper()]
    if max_chars < 2 * (FRAGMENT_HEADER_BYTES + 1):
        raise UsageError("max_chars too small", where="fragment_packet")
    chunk = max_chars // 2 - FRAGMENT_HEADER_BYTES
    count = -(-len(packet) // chunk)
    if count > MAX_FRAGMENTS:
        raise UsageError(
            f"packet of {len(packet)} bytes needs {count} fragments (max {MAX_FRAGMENTS})",
            where="fragment_packet",
        )
    pid = _packet_id(packet)
    return [
        (bytes((0x80 | pid, index, count)) + packet[index * chunk : (index + 1) * chunk])
        .hex()
        .upper()
        for index in range(count)
    ]


def _packet_id(packet: bytes) -> int:
    return packet[6] & 0x7F if len(packet) >= 7 else 0


@dataclass(frozen=True, slots=True)
class Fragment:
    """One decoded fragment text."""

    packet_id: int
    index: int
    count: int
    chunk: bytes


def decode_text(text: str) -> bytes | Fragment:
    """Decode one received text: a whole packet (``bytes``) or a :class:`Fragment`.

    Raises ``PacketError`` (``bad_text``, ``bad_fragment``, ``too_large``).
    """
    text = text.strip()
    if len(text) > 2 * MAX_PACKET_BYTES:
        raise PacketError(Reason.TOO_LARGE, f"text of {len(text)} characters")
    if not text or len(text) % 2 or not _HEX.fullmatch(text):
        raise PacketError(Reason.BAD_TEXT, "not an even number of base16 digits")
    data = bytes.fromhex(text)
    if not data[0] & 0x80:
        return data
    if len(data) < FRAGMENT_HEADER_BYTES + 1:
        raise PacketError(Reason.BAD_FRAGMENT, "fragment without data")
    pid, index, count = data[0] & 0x7F, data[1], data[2]
    if count < 2 or index >= count:
        raise PacketError(Reason.BAD_FRAGMENT, f"fragment {index} of {count}")
    return Fragment(pid, index, count, data[FRAGMENT_HEADER_BYTES:])


@dataclass(slots=True)
class ReassemblerStats:
    """Counters of a :class:`Reassembler` (fragments, not packets, unless said)."""

    whole: int = 0
    """whole packets handed out directly"""
    fragments: int = 0
    """fragments accepted"""
    completed: int = 0
    """packets completed from fragments"""
    duplicates: int = 0
    """fragments ignored: already held, or part of a recently confirmed packet"""
    conflicts: int = 0
    """fragments ignored: same slot, different content (first one kept)"""
    rejected: int = 0
    """texts that were not a packet or a fragment"""
    expired: int = 0
    """partial packets dropped after the timeout"""
    evicted: int = 0
    """partial packets dropped to stay within the memory caps"""


@dataclass(slots=True)
class _Partial:
    count: int
    chunks: dict[int, bytes]
    first_seen: float
    last_seen: float
    size: int = 0


_DONE_KEY = tuple[str, bytes]
#: completed packets whose confirmation (:meth:`Reassembler.confirm`) is awaited
_MAX_PENDING: Final = 256


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=12).digest()


def _fragment_digest(packet_id: int, index: int, count: int, chunk: bytes) -> bytes:
    return _digest(bytes((packet_id, index, count)) + chunk)


@dataclass(slots=True)
class Reassembler:
    """Joins fragments per sender; bounded in memory and time.

    Args:
        timeout_s: a partial packet is dropped when no fragment of it came for this long
            (the ACK asks for missing fragments well before; default one day: SMS can be
            late by hours).
        max_partials_per_sender: at most this many partial packets per sender (the
            least recently fed goes first).
        max_bytes: at most this many bytes held overall, each partial packet counted
            with :data:`PARTIAL_OVERHEAD_BYTES` on top of its fragments (the least
            recently fed partial goes first: a packet whose fragments keep coming
            survives a flood of one-fragment junk).
        max_partials: at most this many partial packets overall (same order).
        remember_completed: digests of fragments of confirmed packets kept, to ignore
            their late duplicates (:meth:`confirm`).
    """

    timeout_s: float = 86_400.0
    max_partials_per_sender: int = 8
    max_bytes: int = 4 << 20
    max_partials: int = 10_000
    remember_completed: int = 4096
    stats: ReassemblerStats = field(default_factory=ReassemblerStats)
    _partials: OrderedDict[tuple[str, int], _Partial] = field(default_factory=OrderedDict)
    _per_sender: dict[str, int] = field(default_factory=dict)
    _bytes: int = 0
    _done: OrderedDict[_DONE_KEY, None] = field(default_factory=OrderedDict)
    _pending: OrderedDict[_DONE_KEY, list[bytes]] = field(default_factory=OrderedDict)

    @property
    def held_bytes(self) -> int:
        """Fragment bytes held now."""
        return self._bytes

    @property
    def partial_count(self) -> int:
        """Partial packets held now."""
        return len(self._partials)

    def feed(self, sender: str, text: str, *, now: float) -> bytes | None:
        """Take one received text; return a whole packet when one is complete, else ``None``.

        Raises ``PacketError`` for a text that is neither a packet nor a fragment
        (counted in ``stats.rejected``); nothing held is lost.
        """
        self.expire(now=now)
        try:
            item = decode_text(text)
        except PacketError:
            self.stats.rejected += 1
            raise
        if isinstance(item, bytes):
            self.stats.whole += 1
            return item
        return self._add(sender, item, now)

    def _add(self, sender: str, frag: Fragment, now: float) -> bytes | None:
        digest = _fragment_digest(frag.packet_id, frag.index, frag.count, frag.chunk)
        if (sender, digest) in self._done:
            self.stats.duplicates += 1
            return None
        key = (sender, frag.packet_id)
        partial = self._partials.get(key)
        if partial is not None and partial.count != frag.count:
            self._drop(key)  # a new packet reusing the id
            partial = None
        if partial is None:
            if self._per_sender.get(sender, 0) >= self.max_partials_per_sender:
                self._evict_oldest_of(sender)
            while len(self._partials) >= self.max_partials:
                self._drop(next(iter(self._partials)))
                self.stats.evicted += 1
            partial = _Partial(frag.count, {}, now, now, PARTIAL_OVERHEAD_BYTES)
            self._partials[key] = partial
            self._bytes += PARTIAL_OVERHEAD_BYTES
            self._per_sender[sender] = self._per_sender.get(sender, 0) + 1
        held = partial.chunks.get(frag.index)
        if held is not None:
            if held == frag.chunk:
                self.stats.duplicates += 1
            else:
                self.stats.conflicts += 1
            return None
        partial.chunks[frag.index] = frag.chunk
        partial.size += len(frag.chunk)
        partial.last_seen = now
        self._bytes += len(frag.chunk)
        self._partials.move_to_end(key)
        self.stats.fragments += 1
        if len(partial.chunks) == partial.count:
            packet = b"".join(partial.chunks[i] for i in range(partial.count))
            self._pending[sender, _digest(packet)] = [
                _fragment_digest(frag.packet_id, index, partial.count, chunk)
                for index, chunk in partial.chunks.items()
            ]
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
            self._drop(key)
            self.stats.completed += 1
            return packet
        while self._bytes > self.max_bytes and self._partials:
            oldest = next(iter(self._partials))
            self._drop(oldest)
            self.stats.evicted += 1
        return None

    def confirm(self, sender: str, packet: bytes) -> None:
        """Record that ``packet`` (returned by :meth:`feed`) opened: ignore its late duplicates.

        Call it once the packet passed :func:`~wesh.sync.packet.open_packet`. A packet
        that failed to open is simply not confirmed: its fragments are not remembered,
        so the sender's re-sent copy reassembles afresh (a corrupted fragment never
        poisons the re-sends).
        """
        for digest in self._pending.pop((sender, _digest(packet)), ()):
            self._done[sender, digest] = None
        while len(self._done) > self.remember_completed:
            self._done.popitem(last=False)

    def _evict_oldest_of(self, sender: str) -> None:
        oldest = next(k for k in self._partials if k[0] == sender)
        self._drop(oldest)
        self.stats.evicted += 1

    def _drop(self, key: tuple[str, int]) -> None:
        partial = self._partials.pop(key)
        self._bytes -= partial.size
        left = self._per_sender[key[0]] - 1
        if left:
            self._per_sender[key[0]] = left
        else:
            del self._per_sender[key[0]]

    def expire(self, *, now: float) -> int:
        """Drop partial packets older than the timeout; return how many."""
        dropped = 0
        while self._partials:
            key, partial = next(iter(self._partials.items()))
            if now - partial.last_seen <= self.timeout_s:
                break
            self._drop(key)
            dropped += 1
        self.stats.expired += dropped
        return dropped

    def partials(self, sender: str) -> list[PartialAck]:
        """Return the fragments still missing of each partial packet of ``sender`` (for an ACK)."""
        return [
            PartialAck(pid, p.count, frozenset(set(range(p.count)) - set(p.chunks)))
            for (who, pid), p in self._partials.items()
            if who == sender
        ]
