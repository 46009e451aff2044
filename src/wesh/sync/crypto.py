"""Tonique's AEAD: AES-256-CCM with an 8-byte tag, keyed per site, nonces that never repeat.

Pure logic, no I/O. Keys come from :mod:`wesh.sync.keys` (``SiteKey``: ``site``,
``key_id`` u16, 32 random bytes); this module only needs their three attributes
(:class:`KeyLike`).

Choice of AEAD
--------------
``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESCCM` with
``tag_length=8``. CCM is the one AEAD of ``cryptography``'s high-level API that takes a
short tag (GCM, ChaCha20-Poly1305, SIV and GCM-SIV have 16-byte tags only), and unlike a
truncated GCM tag, a short CCM tag has no known structural weakness: forging is as hard
as guessing the tag. Security margin:

* **forgery**: one forged packet is accepted with probability 2^-64 per attempt and per
  candidate key (key ids are random u16 and may be shared by a few sites, so the receiver
  tries each key with that id: ``k`` keys give ``k``·2^-64). Every attempt costs the
  attacker one SMS to headquarters, which counts rejects: 10^9 SMS (30 years at one a
  second) against a key id shared by 4 sites succeed with probability 2·10^-10;
* **confidentiality**: AES-256 in counter mode; at most 2^32 packets per (key, direction)
  are far below CCM's bounds;
* an 8-byte tag instead of 16 saves 8 bytes per packet, 10 % of an SMS.

Key derivation
--------------
The AEAD key is ``HKDF-SHA256(ikm=site key, salt="", info="wesh/tonique/v1/aead" ‖ 0x00 ‖
site id)``, 32 bytes. Binding the site id into the key means a packet sealed for one site
can never be opened as another's, even if two sites were given the same key bytes.

Nonce
-----
CCM is **catastrophically broken by a repeated nonce** (keystream reuse reveals the XOR of
two plaintexts and makes forgeries easy). The 7-byte nonce is built from values that never
repeat under one key::

     0        2        3                 7
    +--------+--------+-----------------+
    | key_id |  dir   |      seq        |   7 bytes, big-endian
    |  u16   |  u8    |      u32        |
    +--------+--------+-----------------+

``dir`` is 0 for site → HQ (up), 1 for HQ → site (down); each direction has its own
sequence space. ``seq`` starts at 1 and **must never be reused** under a key: re-sending
the *same* sealed bytes is fine (same nonce, same plaintext, same ciphertext), sealing
*new* content under an old number is not. A sender persists a high-water mark before
using numbers (:class:`SeqReservation`); a sender that lost its state must get a new key
(a new key id), never restart at 1. With a 7-byte nonce CCM's length field has 8 bytes:
any packet length is allowed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wesh.errors import UsageError

__all__ = [
    "MAX_KEY_ID",
    "MAX_SEQ",
    "NONCE_BYTES",
    "TAG_BYTES",
    "Direction",
    "KeyLike",
    "KeyLookup",
    "SeqReservation",
    "aead_open",
    "aead_seal",
    "make_nonce",
]

TAG_BYTES: Final = 8
NONCE_BYTES: Final = 7
MAX_SEQ: Final = 0xFFFF_FFFF
MAX_KEY_ID: Final = 0xFFFF
_INFO: Final = b"wesh/tonique/v1/aead\x00"


class Direction(IntEnum):
    """Which way a packet travels; in the header, the nonce and (so) the AAD."""

    UP = 0
    """site → headquarters (DATA, ALARM, STATUS, REPLY, SCHEMA)"""
    DOWN = 1
    """headquarters → site (ACK, COMMAND)"""


class KeyLike(Protocol):
    """What the codec needs of a key (``wesh.sync.keys.SiteKey`` has it)."""

    @property
    def site(self) -> str:
        """The site id the key belongs to."""

    @property
    def key_id(self) -> int:
        """The key id, u16, carried in every header."""

    @property
    def key(self) -> bytes:
        """The secret bytes (16 to 64)."""


class KeyLookup(Protocol):
    """Where a receiver finds candidate keys (``wesh.sync.keys.KeyRing`` is one)."""

    def for_key_id(self, key_id: int) -> list[KeyLike]:  # pragma: no cover - protocol
        """Every key with this id (ids are random: a few sites may share one)."""
        ...


@functools.lru_cache(maxsize=4096)
def _cipher(site: str, key: bytes) -> AESCCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + site.encode("utf-8")
    ).derive(key)
    return AESCCM(derived, tag_length=TAG_BYTES)


def cipher_for(key: KeyLike) -> AESCCM:
    """Return the AEAD object of a site key (derived with HKDF, cached)."""
    if not 16 <= len(key.key) <= 64:
        raise UsageError("a site key has 16 to 64 bytes", where="key")
    return _cipher(key.site, bytes(key.key))


def make_nonce(key_id: int, direction: Direction, seq: int) -> bytes:
    """Return the 7-byte nonce of a packet (layout in the module docstring)."""
    if not 0 <= key_id <= MAX_KEY_ID:
        raise UsageError(f"key_id must be 0..{MAX_KEY_ID}, not {key_id}", where="key_id")
    if not 1 <= seq <= MAX_SEQ:
        raise UsageError(f"seq must be 1..{MAX_SEQ}, not {seq}", where="seq")
    return key_id.to_bytes(2, "big") + bytes((int(direction),)) + seq.to_bytes(4, "big")


def aead_seal(key: KeyLike, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate: ``ciphertext ‖ tag`` (8 bytes longer than the plaintext)."""
    return cipher_for(key).encrypt(nonce, plaintext, aad)


def aead_open(key: KeyLike, nonce: bytes, sealed: bytes, aad: bytes) -> bytes | None:
    """Check and decrypt ``ciphertext ‖ tag``; ``None`` when the tag does not match."""
    if len(sealed) < TAG_BYTES:
        return None
    try:
        return cipher_for(key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        return None


@dataclass(slots=True)
class SeqReservation:
    """Hands out sequence numbers that are never reused, even across crashes.

    Persist :attr:`reserved_upto` *before sending* any packet sealed with a number up to
    it; on restart, continue from the persisted mark + 1 (the unused rest of the block is
    skipped, never reused)::

        res = SeqReservation(next_seq=persisted_mark + 1)   # 1 for a new key
        seq = res.take()
        if res.must_persist:                                 # a new block was opened
            save(res.reserved_upto)
            res.persisted()

    ``take`` raises ``UsageError`` when the sequence space is exhausted: the site then
    needs a new key.
    """

    next_seq: int = 1
    block: int = 256
    reserved_upto: int = 0
    must_persist: bool = False

    def take(self) -> int:
        """Return the next sequence number (opens a new reserved block when needed)."""
        seq = self.next_seq
        if not 1 <= seq <= MAX_SEQ:
            raise UsageError("sequence space exhausted: give the site a new key", where="seq")
        if seq > self.reserved_upto:
            self.reserved_upto = min(MAX_SEQ, seq + max(1, self.block) - 1)
            self.must_persist = True
        self.next_seq = seq + 1
        return seq

    def persisted(self) -> None:
        """Record that :attr:`reserved_upto` is safely on disk."""
        self.must_persist = False
