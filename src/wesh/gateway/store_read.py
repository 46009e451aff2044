"""Queries of weshd's stored values: latest values, history and events (read only).

The :class:`~wesh.gateway.store.Store` validates the arguments, holds its lock and
calls these with its connection and its channel descriptors (``keys_by_id``);
values buffered in memory while the disk is full (``buffered``) count for the latest
values only: history and events show what is stored. Internal to ``wesh.gateway.store*``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from wesh.gateway.channels import GatewayEvent, Sample
from wesh.gateway.store_buffer import _Row
from wesh.gateway.store_rows import _EVENT_COLUMNS, _event_of, _Key, _sample_of

__all__ = [
    "query_events",
    "query_history",
    "query_latest",
    "query_latest_one",
    "row_sample",
    "stored_sample",
]


def stored_sample(keys_by_id: Mapping[int, _Key], row: Sequence[Any]) -> Sample:
    """Build a sample from ``(channel_id, at_ms, value, is_bool, quality, box_time_ms)``."""
    return _sample_of(keys_by_id[row[0]], row[1:])


def row_sample(row: _Row) -> Sample:
    """Build a sample from a row not stored yet (buffered in memory)."""
    return _sample_of(row.key, (row.at_ms, row.value, row.is_bool, row.quality, row.box_time_ms))


def query_latest(
    conn: sqlite3.Connection,
    keys_by_id: Mapping[int, _Key],
    buffered: Mapping[str, _Row],
    *,
    box: str | None,
) -> list[Sample]:
    """Return the last value of every channel (of one box), sorted by channel."""
    query = "SELECT channel, channel_id, at_ms, value, is_bool, quality, box_time_ms "
    query += "FROM latest WHERE box = ?" if box is not None else "FROM latest"
    params: tuple[object, ...] = (box,) if box is not None else ()
    found = {
        row[0]: stored_sample(keys_by_id, row[1:]) for row in conn.execute(query, params).fetchall()
    }
    for channel, row in buffered.items():
        if box is None or row.key.box == box:
            found[channel] = row_sample(row)
    return [found[channel] for channel in sorted(found)]


def query_latest_one(
    conn: sqlite3.Connection,
    keys_by_id: Mapping[int, _Key],
    buffered: Mapping[str, _Row],
    channel: str,
) -> Sample | None:
    """Return the last value of one channel, ``None`` if unseen."""
    row = buffered.get(channel)
    if row is not None:
        return row_sample(row)
    found = conn.execute(
        "SELECT channel_id, at_ms, value, is_bool, quality, box_time_ms "
        "FROM latest WHERE channel = ?",
        (channel,),
    ).fetchone()
    return stored_sample(keys_by_id, found) if found else None


def query_history(
    conn: sqlite3.Connection,
    keys_by_id: Mapping[int, _Key],
    ids: Sequence[int],
    *,
    since_ms: int,
    until_ms: int,
    limit: int,
) -> list[Sample]:
    """Return the readings of channel descriptors ``ids`` with ``since <= at < until``."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = conn.execute(
        "SELECT channel_id, at_ms, value, is_bool, quality, box_time_ms FROM readings "  # noqa: S608
        f"WHERE channel_id IN ({marks}) AND at_ms >= ? AND at_ms < ? "
        "ORDER BY at_ms, id LIMIT ?",
        (*ids, since_ms, until_ms, limit),
    ).fetchall()
    return [stored_sample(keys_by_id, row) for row in rows]


def query_events(
    conn: sqlite3.Connection, *, since_ms: int | None, box: str | None, limit: int
) -> list[tuple[int, GatewayEvent]]:
    """Return stored events as ``(id, event)``, oldest first (see :meth:`Store.events`)."""
    where: list[str] = []
    params: list[object] = []
    if since_ms is not None:
        where.append("at_ms >= ?")
        params.append(since_ms)
    if box is not None:
        where.append("box = ?")
        params.append(box)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    order = "ORDER BY at_ms, id" if since_ms is not None else "ORDER BY id DESC"
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events {clause}{order} LIMIT ?",  # noqa: S608
        (*params, limit),
    ).fetchall()
    if since_ms is None:
        rows.reverse()
    return [(row[0], _event_of(row[1:])) for row in rows]
