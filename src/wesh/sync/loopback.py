"""In-process transport with fault injection, for tests and for the demo without a modem.

A :class:`LoopbackNetwork` connects named endpoints (:class:`LoopbackTransport`); each
directed link ``source → target`` applies a :class:`FaultPlan` to every message, with its
own random generator seeded from the plan's seed and the link's names, so a run is the
same for the same seed. What a plan can do to one message, in this order::

    loss        the message vanishes (an SMS the network dropped)
    part_loss   each SMS part (153 characters of a text longer than 160) vanishes on its
                own; the parts that came are joined, as gammu-smsd does after its
                MultipartTimeout, and ``Message.parts`` says how many came
    duplicate   a second copy is delivered (with its own delay and damage)
    delay_s     each copy waits uniform(lo, hi) seconds
    corrupt     one character is replaced (by another hex digit if the text is base16)
    truncate    the text is cut short (at least one character is left)
    reorder     the message is held back until the next message on this link was
                delivered (or ``reorder_hold_s`` passed), so it arrives after it

Time comes from ``clock`` and ``sleep`` (the running loop's ``time()`` and
:func:`asyncio.sleep` by default), so tests run delays in virtual time. Undelivered
messages wait in the target's mailbox, which outlives the target's transport: a new
endpoint with the same name (a restarted agent) gets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wesh.errors import ConnectionFailed, UsageError
from wesh.sync.transport import (
    GSM_SAFE_ASCII,
    LONG_TEXT_CHARS,
    Message,
    SendReceipt,
    SendStatus,
    TransportStats,
    check_text,
    split_sms,
)

__all__ = [
    "Copy",
    "Fate",
    "FaultCounts",
    "FaultPlan",
    "LoopbackNetwork",
    "LoopbackTransport",
    "decide_fate",
    "loopback_pair",
]

_LOG = logging.getLogger(__name__)
_HEX = "0123456789ABCDEF"
_SAFE = "".join(sorted(GSM_SAFE_ASCII))


# ----------------------------------------------------------------------------- pure: faults


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What a link does to messages: probabilities per message (``part_loss`` per part)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_s: tuple[float, float] = (0.0, 0.0)
    corrupt: float = 0.0
    truncate: float = 0.0
    part_loss: float = 0.0
    seed: int | str = 0
    reorder_hold_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt", "truncate", "part_loss"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be a probability in [0, 1], not {value}")
        low, high = self.delay_s
        if not 0.0 <= low <= high:
            raise UsageError(f"delay_s must be (low, high) with 0 <= low <= high: {self.delay_s}")
        if self.reorder_hold_s < 0:
            raise UsageError("reorder_hold_s must not be negative")


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy of a message that will be delivered."""

    delay_s: float
    text: str
    parts: int
    corrupted: bool = False
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Fate:
    """What happens to one message: its copies (none if lost) and whether it is held."""

    copies: tuple[Copy, ...]
    lost: bool = False
    held: bool = False
    parts_lost: int = 0


def _damage(plan: FaultPlan, rng: random.Random, text: str, parts: int) -> Copy:
    low, high = plan.delay_s
    delay = rng.uniform(low, high) if high > 0 else 0.0
    corrupted = truncated = False
    if rng.random() < plan.corrupt and text:
        position = rng.randrange(len(text))
        alphabet = _HEX if all(c in _HEX for c in text) else _SAFE
        replacement = rng.choice([c for c in alphabet if c != text[position]])
        text = text[:position] + replacement + text[position + 1 :]
        corrupted = True
    if rng.random() < plan.truncate and len(text) > 1:
        text = text[: rng.randint(1, len(text) - 1)]
        truncated = True
    return Copy(delay, text, parts, corrupted, truncated)


def decide_fate(plan: FaultPlan, rng: random.Random, text: str) -> Fate:
    """Decide what ``plan`` does to one message, drawing from ``rng`` (pure otherwise)."""
    lost = rng.random() < plan.loss
    duplicated = rng.random() < plan.duplicate
    held = rng.random() < plan.reorder
    pieces = split_sms(text)
    kept = [piece for piece in pieces if not rng.random() < plan.part_loss]
    if plan.part_loss == 0.0:
        kept = pieces
    parts_lost = len(pieces) - len(kept)
    if lost or not kept:
        return Fate((), lost=True, parts_lost=parts_lost)
    arriving = "".join(kept)
    copies = [_damage(plan, rng, arriving, len(kept))]
    if duplicated:
        copies.append(_damage(plan, rng, arriving, len(kept)))
    return Fate(tuple(copies), held=held, parts_lost=parts_lost)


@dataclass(frozen=True, slots=True)
class FaultCounts:
    """What a link did so far."""

    sent: int = 0
    lost: int = 0
    parts_lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    corrupted: int = 0
    truncated: int = 0
    delivered: int = 0


@dataclass(slots=True)
class _LinkCounts:
    sent: int = 0
    lost: int = 0
    parts_lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    corrupted: int = 0
    truncated: int = 0
    delivered: int = 0

    def snapshot(self) -> FaultCounts:
        return FaultCounts(
            self.sent,
            self.lost,
            self.parts_lost,
            self.duplicated,
            self.reordered,
            self.delayed,
            self.corrupted,
            self.truncated,
            self.delivered,
        )


@dataclass(slots=True, eq=False)
class _Flight:
    """A copy on its way (an entry of the network's delivery heap)."""

    at: float
    order: int
    link: _Link
    message: Message | None = None  # built at delivery time
    text: str = ""
    parts: int = 1
    active: bool = True

    def __lt__(self, other: _Flight) -> bool:
        return (self.at, self.order) < (other.at, other.order)


@dataclass(slots=True, eq=False)
class _Link:
    source: str
    target: str
    plan: FaultPlan
    rng: random.Random
    counts: _LinkCounts = field(default_factory=_LinkCounts)
    held: list[_Flight] = field(default_factory=list)


@dataclass(slots=True)
class _Mailbox:
    messages: deque[Message] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


# ----------------------------------------------------------------------------- the network


class LoopbackNetwork:
    """Named endpoints exchanging messages in-process, through fault-injecting links.

    Args:
        faults: the plan of every link without one of its own (:meth:`set_faults`).
        clock: monotonic seconds (default: the running loop's ``time()``).
        sleep: waits that many seconds (default: :func:`asyncio.sleep`).
        now: the wall clock stamped on received messages.
        max_chars: longest text accepted (as on MQTT; SMS texts are far shorter).
    """

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        now: Callable[[], datetime] | None = None,
        max_chars: int = LONG_TEXT_CHARS,
    ) -> None:
        self._default_plan = faults or FaultPlan()
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self._now = now or (lambda: datetime.now(UTC))
        self.max_chars = max_chars
        self._links: dict[tuple[str, str], _Link] = {}
        self._mailboxes: dict[str, _Mailbox] = {}
        self._endpoints: dict[str, LoopbackTransport] = {}
        self._offline: set[str] = set()
        self._heap: list[_Flight] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()

    # ---------------------------------------------------------------- configuration

    def endpoint(self, name: str) -> LoopbackTransport:
        """Attach an endpoint (replacing a closed one of the same name, which keeps its mail)."""
        if not name:
            raise UsageError("an endpoint needs a name")
        current = self._endpoints.get(name)
        if current is not None and not current.closed:
            raise UsageError(f"endpoint {name!r} is already attached (close it first)")
        endpoint = LoopbackTransport(self, name)
        self._endpoints[name] = endpoint
        self._mailboxes.setdefault(name, _Mailbox())
        return endpoint

    def set_faults(self, source: str, target: str, plan: FaultPlan) -> None:
        """Give the link ``source → target`` its own plan (and a fresh generator)."""
        self._links[source, target] = self._new_link(source, target, plan)

    def set_online(self, name: str, *, online: bool) -> None:
        """Take an endpoint's connection down (its sends raise ConnectionFailed) or up."""
        if online:
            self._offline.discard(name)
        else:
            self._offline.add(name)

    def counts(self, source: str, target: str) -> FaultCounts:
        """Return what the link ``source → target`` did so far."""
        link = self._links.get((source, target))
        return link.counts.snapshot() if link else FaultCounts()

    @property
    def in_flight(self) -> int:
        """Copies not delivered yet (delayed or held)."""
        return sum(1 for flight in self._heap if flight.active)

    async def drain(self) -> None:
        """Wait until every copy in flight was delivered (held ones included)."""
        while self.in_flight:
            self._idle.clear()
            self._ensure_pump()
            await self._idle.wait()

    def _new_link(self, source: str, target: str, plan: FaultPlan) -> _Link:
        return _Link(source, target, plan, random.Random(f"{plan.seed}/{source}->{target}"))  # noqa: S311 - simulation

    def _link(self, source: str, target: str) -> _Link:
        link = self._links.get((source, target))
        if link is None:
            link = self._links[source, target] = self._new_link(source, target, self._default_plan)
        return link

    def _time(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    # ---------------------------------------------------------------- carrying

    def _carry(self, source: str, target: str, text: str) -> None:
        if target not in self._mailboxes:
            raise UsageError(f"no endpoint named {target!r} on this network", where="peer")
        if source in self._offline:
            raise ConnectionFailed("loopback endpoint is offline", host=source)
        link = self._link(source, target)
        fate = decide_fate(link.plan, link.rng, text)
        counts = link.counts
        counts.sent += 1
        counts.lost += fate.lost
        counts.parts_lost += fate.parts_lost
        counts.duplicated += len(fate.copies) > 1
        counts.reordered += fate.held and bool(fate.copies)
        now = self._time()
        latest = now
        flights = []
        for copy in fate.copies:
            counts.delayed += copy.delay_s > 0
            counts.corrupted += copy.corrupted
            counts.truncated += copy.truncated
            at = now + copy.delay_s
            latest = max(latest, at)
            flights.append(_Flight(at, next(self._order), link, text=copy.text, parts=copy.parts))
        released, link.held = link.held, []
        for flight in released:  # held before: now goes after this message
            if flight.active:
                flight.active = False
                flights.append(
                    _Flight(latest, next(self._order), link, text=flight.text, parts=flight.parts)
                )
        if fate.held:
            for flight in flights[: len(fate.copies)]:
                flight.at += link.plan.reorder_hold_s
                link.held.append(flight)
        for flight in flights:
            if flight.at <= now and not self._heap_has_due(now):
                self._deliver(flight)
            else:
                heapq.heappush(self._heap, flight)
        if self.in_flight:
            self._ensure_pump()

    def _heap_has_due(self, now: float) -> bool:
        return any(f.active and f.at <= now for f in self._heap)

    def _deliver(self, flight: _Flight) -> None:
        flight.active = False
        link = flight.link
        if flight in link.held:
            link.held.remove(flight)
        message = Message(
            peer=link.source, text=flight.text, received_at=self._now(), parts=flight.parts
        )
        mailbox = self._mailboxes[link.target]
        mailbox.messages.append(message)
        mailbox.changed.set()
        link.counts.delivered += 1

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump(), name="loopback-pump")
        self._wake.set()

    async def _run_pump(self) -> None:
        while True:
            while self._heap and not self._heap[0].active:
                heapq.heappop(self._heap)
            if not self._heap:
                self._idle.set()
                return
            now = self._time()
            if self._heap[0].at <= now:
                self._deliver(heapq.heappop(self._heap))
                continue
            self._wake.clear()
            sleeper = asyncio.ensure_future(self._sleep(self._heap[0].at - now))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _detach(self, endpoint: LoopbackTransport) -> None:
        self._mailboxes[endpoint.name].changed.set()
        if any(not e.closed for e in self._endpoints.values()):
            return
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _mailbox(self, name: str) -> _Mailbox:
        return self._mailboxes[name]


# ----------------------------------------------------------------------------- an endpoint


class LoopbackTransport:
    """One endpoint of a :class:`LoopbackNetwork` (make it with :meth:`~LoopbackNetwork.endpoint`).

    ``send`` accepts a message at once (its receipt is already ``SENT``: a lost message
    is lost silently, as an SMS is). ``messages`` yields what reached this endpoint's
    mailbox, with ``peer`` = the sending endpoint's name.
    """

    def __init__(self, network: LoopbackNetwork, name: str) -> None:
        self.name = name
        self.closed = False
        self._network = network
        self._counter = itertools.count(1)
        self._sent = self._received = self._received_parts = self._errors = 0
        self._sent_parts = 0

    async def send(self, peer: str, text: str) -> SendReceipt:
        """Hand ``text`` to the link towards ``peer``.

        Raises:
            UsageError: unknown peer, closed endpoint, or a text no transport carries.
            ConnectionFailed: this endpoint was taken offline (:meth:`LoopbackNetwork.set_online`).
        """
        check_text(text, max_chars=self._network.max_chars)
        if self.closed:
            raise UsageError("transport is closed", host=self.name)
        try:
            self._network._carry(self.name, peer, text)
        except ConnectionFailed:
            self._errors += 1
            raise
        parts = len(split_sms(text))
        self._sent += 1
        self._sent_parts += parts
        receipt = SendReceipt(
            transport=self.name, id=f"{self.name}-{next(self._counter)}", peer=peer, parts=parts
        )
        receipt.resolve(SendStatus.SENT)
        return receipt

    async def messages(self) -> AsyncIterator[Message]:
        """Messages that reached this endpoint, in arrival order, until :meth:`aclose`."""
        mailbox = self._network._mailbox(self.name)
        while not self.closed:
            if mailbox.messages:
                message = mailbox.messages.popleft()
                self._received += 1
                self._received_parts += message.parts
                yield message
                continue
            mailbox.changed.clear()
            await mailbox.changed.wait()

    async def aclose(self) -> None:
        """Detach from the network; mail arriving later waits for the next endpoint."""
        if not self.closed:
            self.closed = True
            await self._network._detach(self)

    def stats(self) -> TransportStats:
        """Return a snapshot of the counters (every accepted send counts as confirmed)."""
        return TransportStats(
            sent=self._sent,
            sent_parts=self._sent_parts,
            confirmed=self._sent,
            received=self._received,
            received_parts=self._received_parts,
            errors=self._errors,
        )


def loopback_pair(
    a: str = "site",
    b: str = "hq",
    *,
    faults: FaultPlan | None = None,
    faults_back: FaultPlan | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    now: Callable[[], datetime] | None = None,
) -> tuple[LoopbackTransport, LoopbackTransport]:
    """Two connected endpoints; ``faults`` on ``a → b``, ``faults_back`` (default: same) back."""
    network = LoopbackNetwork(clock=clock, sleep=sleep, now=now)
    first, second = network.endpoint(a), network.endpoint(b)
    network.set_faults(a, b, faults or FaultPlan())
    network.set_faults(b, a, faults_back or faults or FaultPlan())
    return first, second
