"""The memory buffer of the weshd store while the disk is full (pure, no I/O).

When a write fails with ``SQLITE_FULL`` or ``ENOSPC``, :class:`~wesh.gateway.store.Store`
keeps the operation (samples, an event, a box status edge) here, in order, and writes
the buffer back once the disk has room. The buffer is bounded: over its cap, the oldest
gauges go first, then states/texts, then indexes, then events (``docs/weshd-store.md``,
"Disk full"). Internal to ``wesh.gateway.store*``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from wesh.gateway.channels import GatewayEvent
from wesh.gateway.store_rows import _Key
from wesh.gateway.store_schema import DROP_RANK


class _Row(NamedTuple):
    """One validated sample, encoded for SQLite."""

    key: _Key
    at_ms: int
    value: int | float | str
    is_bool: int | None
    quality: int
    box_time_ms: int | None


@dataclass(slots=True)
class _SamplesOp:
    rows: list[_Row]


@dataclass(slots=True)
class _EventOp:
    event: GatewayEvent
    event_id: int = 0


@dataclass(slots=True)
class _StatusOp:
    box: str
    at_ms: int
    up: bool
    error: str | None


_Op = _SamplesOp | _EventOp | _StatusOp


class _Buffer:
    """Writes kept in memory, in order, while the disk is full (bounded)."""

    def __init__(self, cap_units: int) -> None:
        self.ops: deque[_Op] = deque()
        self.units = 0
        self.cap_units = cap_units
        #: channel → the newest buffered row (so ``latest()`` stays fresh)
        self.latest: dict[str, _Row] = {}

    def __len__(self) -> int:
        return len(self.ops)

    @staticmethod
    def size(op: _Op) -> int:
        return len(op.rows) if isinstance(op, _SamplesOp) else 1

    def append(self, op: _Op) -> None:
        self.ops.append(op)
        self.units += self.size(op)
        if isinstance(op, _SamplesOp):
            for row in op.rows:
                seen = self.latest.get(row.key.channel)
                if seen is None or row.at_ms >= seen.at_ms:
                    self.latest[row.key.channel] = row

    def head(self, max_units: int) -> list[_Op]:
        """Return the oldest operations, at least one, about ``max_units`` in all."""
        taken: list[_Op] = []
        units = 0
        for op in self.ops:
            if taken and units + self.size(op) > max_units:
                break
            taken.append(op)
            units += self.size(op)
        return taken

    def pop(self, count: int) -> None:
        for _ in range(count):
            self.units -= self.size(self.ops.popleft())
        if not self.ops:
            self.latest.clear()

    def shrink(self) -> dict[str, int]:
        """Drop over the cap (down to 99 % of it): gauges, states/texts, indexes, events."""
        if self.units <= self.cap_units:
            return {}
        excess = self.units - (self.cap_units - self.cap_units // 100)
        dropped: dict[str, int] = {}
        for rank in (1, 2, 3, 4):
            if excess <= 0:
                break
            kept: deque[_Op] = deque()
            for op in self.ops:
                if excess <= 0:
                    kept.append(op)
                elif isinstance(op, _SamplesOp):
                    rows: list[_Row] = []
                    for row in op.rows:
                        if excess > 0 and (DROP_RANK[row.key.kind] or 3) == rank:
                            excess -= 1
                            dropped[row.key.kind] = dropped.get(row.key.kind, 0) + 1
                        else:
                            rows.append(row)
                    if rows:
                        kept.append(_SamplesOp(rows))
                elif rank == 4:
                    excess -= 1
                    name = "events" if isinstance(op, _EventOp) else "status"
                    dropped[name] = dropped.get(name, 0) + 1
                else:
                    kept.append(op)
            self.ops = kept
        self.units = sum(self.size(op) for op in self.ops)
        return dropped
