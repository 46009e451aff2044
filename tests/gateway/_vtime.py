"""A virtual-time asyncio event loop for scheduling tests (no sleeping for time).

``asyncio.sleep``, ``asyncio.timeout`` and ``loop.call_later`` all follow
``loop.time()``; this loop's ``time()`` is a counter that jumps straight to the next
timer whenever nothing is ready to run, so an hour of polling runs in milliseconds and
every instant is exact. Real I/O still works (the selector is polled without waiting);
only tests without threads should rely on it, since virtual time does not wait for
a thread to finish.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")

EPOCH = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


class _VirtualSelector:
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = self._inner.select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual-time loop would block forever: nothing is scheduled")
        self._loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting for a timer."""

    def __init__(self) -> None:
        self._vnow = 1000.0
        super().__init__(selector=_VirtualSelector(self))  # type: ignore[arg-type]

    def time(self) -> float:
        return self._vnow

    def advance(self, seconds: float) -> None:
        self._vnow += max(0.0, seconds)

    def wall(self) -> datetime:
        """The wall clock matching this loop's time (EPOCH at loop time 1000)."""
        return EPOCH + timedelta(seconds=self._vnow - 1000.0)


def run_virtual(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` to completion on a fresh virtual-time loop and close it."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())  # type: ignore[arg-type]


def wall_clock() -> datetime:
    """The current virtual loop's wall clock (for ``clock=`` arguments); else real UTC now."""
    loop = asyncio.get_running_loop()
    return loop.wall() if isinstance(loop, VirtualTimeLoop) else datetime.now(UTC)
