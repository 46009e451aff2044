"""The driver interface: how weshd reads one box, whatever kind of server it is.

A driver owns the I/O to one configured box (a WES over HTTP, a TIC meter on a serial
port...) and returns raw :class:`~wesh.wes.readings.Reading` objects whose paths follow
the reading-path grammar of ``docs/wes.md``, so a dwelling's electricity has the same
path whichever way it is read. Mapping, checks and storage happen above it.

Adding a kind of server: write ``wesh/gateway/drivers/<kind>.py`` with a function
``create(box, *, clock) -> Driver`` and add ``"<kind>"`` to ``BoxConfig.driver``'s
``Literal`` (plus any new keys it needs); :func:`make_driver` finds the module by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from wesh.errors import ConfigError, UsageError
from wesh.wes.readings import Reading

if TYPE_CHECKING:
    from wesh.gateway.config import BoxConfig

__all__ = ["Clock", "Command", "Driver", "DriverFactory", "PollResult", "make_driver", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the default wall clock: now, in UTC (aware)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of one box returned.

    ``readings`` are raw (path, value, unit, box_time, poll_time, kind); ``box_time`` is
    the box's own clock if it reports one; ``identity`` is the MAC (WES) or meter serial
    (TIC ADCO/ADSC) the box reported, ``None`` if it reported none.
    """

    readings: Sequence[Reading]
    box_time: datetime | None
    identity: str | None


@dataclass(frozen=True, slots=True)
class Command:
    """An output to drive: a relay or a virtual switch, on, off or toggled.

    Raises ``UsageError`` for an unknown kind or action or a number below 1 (the box
    checks its own ranges: relays 1, 2, 9 = both, 101..198 on a 1-Wire card; switches 1..24).
    """

    kind: Literal["relay", "switch"]
    number: int
    action: Literal["on", "off", "toggle"]

    def __post_init__(self) -> None:
        if self.kind not in ("relay", "switch"):
            raise UsageError(f"command kind must be relay or switch, not {self.kind!r}")
        if self.action not in ("on", "off", "toggle"):
            raise UsageError(f"action must be on, off or toggle, not {self.action!r}")
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise UsageError(f"{self.kind} number must be a positive integer, not {self.number!r}")


@runtime_checkable
class Driver(Protocol):
    """One configured box, read by one driver. Only ``WeshError`` subclasses escape."""

    box_id: str

    async def poll(self) -> PollResult:
        """Read the box once (the caller bounds the time with ``box.timeout_s``)."""
        ...

    async def command(self, command: Command) -> None:
        """Drive an output; ``UsageError`` if the box has none of that kind."""
        ...

    async def aclose(self) -> None:
        """Release every resource (sockets, threads); idempotent."""
        ...


class DriverFactory(Protocol):
    """The ``create`` function every driver module exports."""

    def __call__(self, box: BoxConfig, *, clock: Clock) -> Driver:
        """Build the driver of ``box`` (no I/O yet)."""
        ...


def make_driver(box: BoxConfig, *, clock: Clock = utc_now) -> Driver:
    """Build the driver of ``box``: ``wesh.gateway.drivers.<box.driver>.create(box, clock=)``.

    No I/O happens here; connections open on the first poll. Raises ``ConfigError`` if
    no driver module of that name exists.
    """
    name = box.driver
    if not name.isidentifier() or name in {"base", "__init__"}:
        raise ConfigError(f"unknown driver {name!r}", where=f"boxes[{box.id}].driver")
    try:
        module = importlib.import_module(f"wesh.gateway.drivers.{name}")
    except ModuleNotFoundError as exc:
        raise ConfigError(f"unknown driver {name!r}", where=f"boxes[{box.id}].driver") from exc
    factory: DriverFactory = module.create
    return factory(box, clock=clock)
