"""What the weshd store and its queue client share: descriptors, row codecs, queue SQL.

Internal to ``wesh.gateway.store*``. The :class:`~wesh.gateway.store.Store` (weshd's one
writer) and the :class:`~wesh.gateway.store_queue.QueueClient` (the sync agent, in
another process) read the same ``outbound`` rows and must build the same samples and
events from them and acknowledge by the same rules: that is this module. See
``docs/weshd-store.md``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, cast

from wesh.errors import TransientError, UsageError, WeshError
from wesh.gateway.channels import (
    ChannelKind,
    EventKind,
    GatewayEvent,
    Quality,
    Sample,
    SampleKind,
    Severity,
)
from wesh.gateway.store_schema import QUALITY_NAMES, decode_value, from_ms

_MAX_LIMIT: Final = 100_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Key(NamedTuple):
    """What identifies one channel descriptor (a new one when metadata changes)."""

    channel: str
    box: str
    path: str
    unit: str | None
    kind: str
    meaning: str
    label: str | None


def _translate(exc: BaseException, action: str, where: str) -> WeshError:
    """Map a foreign storage error to the wesh tree."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
    ):
        return TransientError(f"store: {action} failed: {exc}", where=where)
    if isinstance(exc, OSError | sqlite3.OperationalError):
        return TransientError(f"store: {action} failed: {exc}", where=where)
    return WeshError(f"store: {action} failed: {exc}", where=where)


_EVENT_COLUMNS: Final = "id, at_ms, box, channel, kind, severity, message, data"
_PENDING_READINGS: Final = (
    "SELECT o.seq, r.channel_id, r.at_ms, r.value, r.is_bool, r.quality, "
    "r.box_time_ms FROM outbound AS o JOIN readings AS r ON r.id = o.reading_id "
    "WHERE o.acked_ms IS NULL AND o.seq > ? AND o.reading_id IS NOT NULL "
    "ORDER BY o.seq LIMIT ?"
)
_PENDING_EVENTS: Final = (
    f"SELECT o.seq, {', '.join('e.' + c for c in _EVENT_COLUMNS.split(', '))} "  # noqa: S608
    "FROM outbound AS o JOIN events AS e ON e.id = o.event_id "
    "WHERE o.acked_ms IS NULL AND o.event_id IS NOT NULL AND o.seq > ? "
    "ORDER BY o.seq LIMIT ?"
)
_COUNT_PENDING: Final = "SELECT count(*) FROM outbound WHERE acked_ms IS NULL"


def _ack_rows(
    conn: sqlite3.Connection, acked_ms: int, upto_seq: int | None, seqs: Sequence[int]
) -> int:
    """Mark queue rows acknowledged (inside the caller's write transaction); count them."""
    count = 0
    if upto_seq is not None:
        count += conn.execute(
            "UPDATE outbound SET acked_ms = ? WHERE acked_ms IS NULL "
            "AND seq <= ? AND reading_id IS NOT NULL",
            (acked_ms, upto_seq),
        ).rowcount
    if seqs:
        count += conn.executemany(
            "UPDATE outbound SET acked_ms = ? WHERE seq = ? AND acked_ms IS NULL",
            [(acked_ms, seq) for seq in seqs],
        ).rowcount
    return count


def _ack_wanted(upto_seq: int | None, seqs: Iterable[int]) -> list[int]:
    """Validate an acknowledgement's arguments; return the sorted distinct ``seqs``."""
    wanted = sorted({int(seq) for seq in seqs})
    if (upto_seq is not None and upto_seq < 0) or (wanted and wanted[0] < 0):
        raise UsageError("queue seqs are positive", where="acknowledge")
    return wanted


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_LIMIT:
        raise UsageError(f"limit must be within 1..{_MAX_LIMIT}", where="limit")


def _sample_of(key: _Key, row: Sequence[Any]) -> Sample:
    """Build a sample from its descriptor and ``(at_ms, value, is_bool, quality, box_time_ms)``."""
    at_ms, value, is_bool, quality, box_time_ms = row
    return Sample(
        box=key.box,
        channel=key.channel,
        path=key.path,
        at=from_ms(at_ms),
        value=decode_value(value, is_bool),
        unit=key.unit,
        quality=cast(Quality, QUALITY_NAMES[quality]),
        kind=cast(SampleKind, key.kind),
        meaning=cast(ChannelKind, key.meaning),
        label=key.label,
        box_time=from_ms(box_time_ms) if box_time_ms is not None else None,
    )


def _event_of(row: Sequence[object]) -> GatewayEvent:
    """Build an event from ``(at_ms, box, channel, kind, severity, message, data)``."""
    at_ms, box, channel, kind, severity, message, data = row
    try:
        details = json.loads(str(data))
    except ValueError:
        details = {"raw": str(data)}
    return GatewayEvent(
        at=from_ms(cast(int, at_ms)),
        box=cast(str | None, box),
        channel=cast(str | None, channel),
        kind=cast(EventKind, kind),
        severity=cast(Severity, severity),
        message=str(message),
        data=details if isinstance(details, dict) else {"value": details},
    )
