"""Helpers shared by the codec tests (keys, a raw message for sealing arbitrary bodies)."""

from __future__ import annotations

from dataclasses import dataclass

from wesh.sync.keys import KeyRing, SiteKey
from wesh.sync.packet import PacketType

KEY_A = SiteKey("site-a", 4242, bytes(range(32)))
KEY_B = SiteKey("site-b", 4242, bytes(range(1, 33)))  # same key id as A, other site
KEY_C = SiteKey("site-c", 7, bytes(32))


def ring(*keys: SiteKey) -> KeyRing:
    return KeyRing({k.site: k for k in keys})


@dataclass(frozen=True)
class RawMessage:
    """Seals any body bytes under any type (to test what a buggy sender could send)."""

    packet_type: PacketType
    body: bytes

    def encode(self) -> bytes:
        return self.body
