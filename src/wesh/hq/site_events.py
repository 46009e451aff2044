"""Meter events recorded from the sites' alarms (``meter_replaced``, ``counter_reset``).

A gateway that sees an index go down raises a sync ALARM (``counter_reset``, or
``meter_replaced`` when the TIC meter's ADCO changed). :meth:`wesh.hq.ingest.HqSink.ingest_alarm`
stores it as a ``site_event`` and, the first time only (the site_event's ``dedup_key``
decides, in the same transaction), calls :func:`record_meter_event` here: a
``meter_event`` of the channel's current meter, with the indexes read from the alarm's
message (:func:`parse_index_change`), and the channel's hour marked stale so that the
re-roll bridges the consumption through the event (``docs/hq-data.md``).

The message formats (``wesh.gateway.channels``)::

    counter reset: index 1234570 -> 12 L on dw-12/impulsion.1.index
    meter replaced: index 30123456 -> 0 Wh on dw-12/tic.1.index.base (ADCO 0123 -> 0456)
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, insert, select

from wesh.hq.models import Channel, Meter, MeterEvent
from wesh.hq.rollups import mark_dirty
from wesh.hq.timeutil import to_epoch_us

__all__ = ["METER_EVENT_OF_ALARM", "parse_index_change", "record_meter_event"]

_LOG = logging.getLogger(__name__)

#: Alarm kind → the ``meter_event.kind`` it records.
METER_EVENT_OF_ALARM: Final[dict[str, str]] = {
    "meter_replaced": "replaced",
    "counter_reset": "reset",
}

_INDEX_CHANGE: Final = re.compile(r"\bindex\s+(\S+)\s*->\s*(\S+)")
_MAX_MESSAGE: Final = 2000  # longer text is cut before matching (device data is untrusted)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_index_change(message: str) -> tuple[float | None, float | None]:
    """Return ``(old_index, new_index)`` read from an alarm message; ``None`` where unreadable.

    ``"counter reset: index 1234570 -> 12 L on ..."`` gives ``(1234570.0, 12.0)``; a
    message without ``index A -> B`` gives ``(None, None)``; a side that is not a finite
    number gives ``None`` on that side. Never raises.
    """
    found = _INDEX_CHANGE.search(message[:_MAX_MESSAGE])
    if found is None:
        return None, None
    return _number(found.group(1)), _number(found.group(2))


def _current_meter(conn: Connection, channel_id: int, at: datetime) -> int | None:
    """Return the id of the meter in service on the channel's input at ``at``, if any.

    The meter of a channel is the box's meter whose ``input`` is the channel's path or a
    prefix of it (``tic.1`` for ``tic.1.index.base``); the longest input wins, then the
    latest installed. Meters removed before ``at`` or installed after it are not candidates.
    """
    channel = conn.execute(
        select(Channel.box_id, Channel.path).where(Channel.id == channel_id)
    ).first()
    if channel is None:
        return None
    box_id, path = channel
    rows = conn.execute(
        select(Meter.id, Meter.input, Meter.installed_at, Meter.removed_at).where(
            Meter.box_id == box_id
        )
    ).all()
    best: tuple[int, datetime, int] | None = None
    for meter_id, meter_input, installed_at, removed_at in rows:
        if not meter_input or not (path == meter_input or path.startswith(f"{meter_input}.")):
            continue
        if installed_at > at or (removed_at is not None and removed_at <= at):
            continue
        key = (len(meter_input), installed_at, int(meter_id))
        if best is None or key > best:
            best = key
    return None if best is None else best[2]


def record_meter_event(
    conn: Connection, *, channel_id: int, alarm_kind: str, at: datetime, message: str
) -> bool:
    """Record the ``meter_event`` an alarm stands for; mark the channel's hour stale.

    Inside the caller's transaction (the one that inserted the site_event, so that the
    event is recorded once). Alarms of other kinds than :data:`METER_EVENT_OF_ALARM`'s
    are ignored. A channel without a meter row in service at ``at`` gets no event (the
    schema requires ``meter_id``; inventing a meter would corrupt the equipment
    history): a warning says so, and the site_event stays.

    Returns:
        Whether a ``meter_event`` was inserted.
    """
    kind = METER_EVENT_OF_ALARM.get(alarm_kind)
    if kind is None:
        return False
    meter_id = _current_meter(conn, channel_id, at)
    if meter_id is None:
        _LOG.warning(
            "Ingest: %s alarm of channel %d at %s: no meter in service on that channel;"
            " no meter_event recorded (the site_event is kept)",
            alarm_kind,
            channel_id,
            at.isoformat(),
        )
        return False
    old_index, new_index = parse_index_change(message)
    conn.execute(
        insert(MeterEvent),
        {
            "meter_id": meter_id,
            "channel_id": channel_id,
            "kind": kind,
            "at": at,
            "old_index": old_index,
            "new_index": new_index,
            "note": f"from the site's {alarm_kind} alarm"[:400],
        },
    )
    at_us = to_epoch_us(at)
    mark_dirty(conn, {channel_id: (at_us, at_us + 1)})
    return True
