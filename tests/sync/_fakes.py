"""Hand-driven agent/receiver tests: a recording transport, a settable clock, a wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wesh.errors import ConnectionFailed
from wesh.sync.crypto import Direction
from wesh.sync.fragment import Reassembler
from wesh.sync.keys import KeyRing, SiteKey
from wesh.sync.packet import AnyMessage, OpenedPacket, open_packet
from wesh.sync.transport import Message, SendReceipt, SendStatus, TransportStats

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    """A settable wall clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeTransport:
    """Records what is sent; ``down`` makes sends fail; nothing arrives by itself."""

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.sent: list[tuple[str, str]] = []
        self.down = False
        self._closed = asyncio.Event()

    async def send(self, peer: str, text: str) -> SendReceipt:
        if self.down:
            raise ConnectionFailed("fake link down", host=self.name)
        self.sent.append((peer, text))
        receipt = SendReceipt(transport=self.name, id=str(len(self.sent)), peer=peer)
        receipt.resolve(SendStatus.SENT)
        return receipt

    async def messages(self) -> AsyncIterator[Message]:
        await self._closed.wait()
        return
        yield  # pragma: no cover - an async generator that never yields

    async def aclose(self) -> None:
        self._closed.set()

    def stats(self) -> TransportStats:
        return TransportStats(sent=len(self.sent))

    def take(self) -> list[tuple[str, str]]:
        """Return and forget what was sent."""
        sent, self.sent = self.sent, []
        return sent


def message(peer: str, text: str, at: datetime = NOW) -> Message:
    return Message(peer=peer, text=text, received_at=at)


def open_all(
    texts: list[tuple[str, str]], key: SiteKey, *, direction: Direction = Direction.UP
) -> list[OpenedPacket]:
    """Reassemble and open sent texts (all of them arrived, in order)."""
    reassembler = Reassembler()
    ring = KeyRing({key.site: key})
    out = []
    for _, text in texts:
        packet = reassembler.feed("x", text, now=0.0)
        if packet is not None:
            out.append(open_packet(packet, keys=ring, direction=direction))
    return out


def bodies(texts: list[tuple[str, str]], key: SiteKey) -> list[AnyMessage]:
    return [opened.message for opened in open_all(texts, key)]


def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(exist_ok=True)
    return path
