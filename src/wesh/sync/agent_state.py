"""The sync agent's own SQLite state file (``sync-agent.sqlite3``): tables and status.

One file holds everything the agent must not lose across a restart; every step of
:class:`wesh.sync.agent.SyncAgent` commits its changes here in one transaction::

    meta            key → value: site, key_id, cursors (reading_cursor, event_cursor),
                    store_acked_upto, seq_reserved, down_window (HQ's numbers), schema_hash,
                    sms_day / sms_today / sms_budget, status_due_ms, last_ack_ms, intervals
                    set by HQ (status_interval_s, upload_interval_s), counters (count.<name>)
    accum           open hour accumulators, per (box, path, hour_s)
    closed          per channel, the last hour closed
    items           closed hours and samples waiting (packet_seq NULL) or in flight
    alarms          alarms waiting or in flight, until HQ acknowledges them
    packets         sealed packets in flight: attempts, next send, baselines used
    baselines       index values HQ acknowledged (deltas are written from them)
    schemas         schemas announced, acknowledged or asked for by HQ
    extra_channels  channels met in the queue but missing from weshd's configuration
    commands        HQ commands waiting for weshd's API (answered FAILED after a restart)

:func:`read_agent_status` reads it without an agent (``wesh sync status``).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from wesh.errors import ConfigError
from wesh.sync._statedb import StateDb

__all__ = [
    "EPOCH",
    "HOUR_ITEM",
    "HOUR_S",
    "QUALITY_NAME",
    "QUALITY_RANK",
    "SAMPLE_ITEM",
    "AgentState",
    "AgentStatus",
    "from_s",
    "read_agent_status",
    "status_of",
    "to_s",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_S: Final = 3600
HOUR_ITEM, SAMPLE_ITEM = 0, 1  # item families (items.family)
QUALITY_RANK: Final = {"measured": 0, "estimated": 1, "suspect": 2}  # items.quality, worst wins
QUALITY_NAME: Final = ("measured", "estimated", "suspect")


def to_s(at: datetime) -> int:
    """Return the whole seconds since the epoch of ``at`` (floored)."""
    return math.floor((at - EPOCH).total_seconds())


def from_s(seconds: int) -> datetime:
    """Return the aware UTC time ``seconds`` after the epoch."""
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """A snapshot of the agent's state (``wesh sync status``)."""

    site: str
    reading_cursor: int
    event_cursor: int
    store_acked_upto: int
    open_hours: int
    items_waiting: int
    items_in_flight: int
    oldest_waiting_at: datetime | None
    alarms_waiting: int
    packets_in_flight: int
    next_seq: int
    sms_day: str
    sms_sent_today: int
    sms_budget: int
    schema_hash: str | None
    schema_acknowledged: bool
    last_ack_at: datetime | None
    counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable view."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


_SCHEMA_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS accum (box TEXT NOT NULL, path TEXT NOT NULL, "
    "hour_s INTEGER NOT NULL, n INTEGER NOT NULL, total REAL NOT NULL, last_at_ms INTEGER "
    "NOT NULL, last_value NOT NULL, quality INTEGER NOT NULL, min_seq INTEGER NOT NULL, "
    "PRIMARY KEY (box, path, hour_s)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS closed (box TEXT NOT NULL, path TEXT NOT NULL, "
    "upto_s INTEGER NOT NULL, PRIMARY KEY (box, path)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, family INTEGER NOT NULL, "
    "box TEXT NOT NULL, path TEXT NOT NULL, at_s INTEGER NOT NULL, value NOT NULL, "
    "quality INTEGER NOT NULL, is_index INTEGER NOT NULL, min_seq INTEGER NOT NULL, "
    "packet_seq INTEGER, absolute INTEGER NOT NULL DEFAULT 0, UNIQUE (family, box, path, at_s))",
    "CREATE INDEX IF NOT EXISTS items_waiting ON items (family, at_s) WHERE packet_seq IS NULL",
    "CREATE INDEX IF NOT EXISTS items_packet ON items (packet_seq) WHERE packet_seq IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS items_min_seq ON items (min_seq)",
    "CREATE TABLE IF NOT EXISTS alarms (event_seq INTEGER PRIMARY KEY, at_s INTEGER NOT NULL, "
    "severity TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, box TEXT, channel TEXT, "
    "packet_seq INTEGER, acked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS packets (seq INTEGER PRIMARY KEY, type INTEGER NOT NULL, "
    "prio INTEGER NOT NULL, sealed BLOB NOT NULL, texts INTEGER NOT NULL, based INTEGER NOT "
    "NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, next_ms INTEGER NOT NULL, "
    "sent_ms INTEGER NOT NULL DEFAULT 0, schema_hash BLOB)",
    "CREATE TABLE IF NOT EXISTS baselines (key TEXT NOT NULL, at_s INTEGER NOT NULL, "
    "value NOT NULL, PRIMARY KEY (key, at_s)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS schemas (hash BLOB PRIMARY KEY, canonical BLOB NOT NULL, "
    "created_ms INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, "
    "wanted INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS extra_channels (box TEXT NOT NULL, path TEXT NOT NULL, "
    "kind TEXT NOT NULL, unit TEXT, resolution REAL NOT NULL, PRIMARY KEY (box, path)) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS commands (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, "
    "received_ms INTEGER NOT NULL)",
)

_COUNTERS: Final = (
    "samples_read",
    "local_only",
    "merged",
    "late_samples",
    "items_made",
    "items_acked",
    "alarms_acked",
    "packets_sent",
    "packets_resent",
    "fragments_resent",
    "reencoded",
    "acks_received",
    "rejected_down",
    "budget_blocked",
    "send_errors",
    "commands_run",
    "readings_resent",
)


class AgentState(StateDb):
    """The agent's SQLite file, with its ``meta`` table cached."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA_SQL, what="agent state")
        self._meta: dict[str, Any] = {}
        self._load_meta()

    def _load_meta(self) -> None:
        self._meta = {str(k): v for k, v in self.rows("SELECT key, value FROM meta")}

    def on_rollback(self) -> None:
        """Reload the cache: it may hold what was rolled back."""
        self._load_meta()

    def meta(self, key: str, default: Any = None) -> Any:  # noqa: ANN401 - SQLite values
        """Return a ``meta`` value (cached), or ``default``."""
        value = self._meta.get(key)
        return default if value is None else value

    def set_meta(self, conn: sqlite3.Connection, key: str, value: object) -> None:
        """Write a ``meta`` value in the transaction ``conn``."""
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        self._meta[key] = value

    def delete_meta(self, conn: sqlite3.Connection, *keys: str) -> None:
        """Delete ``meta`` values in the transaction ``conn``."""
        conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in keys])
        for key in keys:
            self._meta.pop(key, None)

    def bump(self, conn: sqlite3.Connection, name: str, by: int = 1) -> None:
        """Add ``by`` to the counter ``name`` in the transaction ``conn``."""
        if by:
            key = f"count.{name}"
            self.set_meta(conn, key, int(self._meta.get(key, 0)) + by)


def read_agent_status(path: Path, *, budget: int | None = None) -> AgentStatus:
    """Read an agent state file without an agent (``wesh sync status``)."""
    if not path.exists():
        raise ConfigError("no agent state here", where=str(path))
    state = AgentState(path)
    try:
        return status_of(state, budget=budget)
    finally:
        state.close()


def status_of(state: AgentState, *, budget: int | None) -> AgentStatus:
    """Return a snapshot of an open state file (``budget``: the configured one, if known)."""
    waiting = state.rows("SELECT count(*), min(at_s) FROM items WHERE packet_seq IS NULL")[0]
    schema_row = state.rows(
        "SELECT hash, acked FROM schemas WHERE hash = (SELECT value FROM meta "
        "WHERE key = 'schema_hash')"
    )
    last_ack = state.meta("last_ack_ms")
    return AgentStatus(
        site=str(state.meta("site", "")),
        reading_cursor=int(state.meta("reading_cursor", 0)),
        event_cursor=int(state.meta("event_cursor", 0)),
        store_acked_upto=int(state.meta("store_acked_upto", 0)),
        open_hours=int(state.one("SELECT count(*) FROM accum")),
        items_waiting=int(waiting[0]),
        items_in_flight=int(state.one("SELECT count(*) FROM items WHERE packet_seq IS NOT NULL")),
        oldest_waiting_at=None if waiting[1] is None else from_s(int(waiting[1])),
        alarms_waiting=int(state.one("SELECT count(*) FROM alarms WHERE acked = 0")),
        packets_in_flight=int(state.one("SELECT count(*) FROM packets")),
        next_seq=int(state.meta("seq_reserved", 0)) + 1,
        sms_day=str(state.meta("sms_day", "")),
        sms_sent_today=int(state.meta("sms_today", 0)),
        sms_budget=int(state.meta("sms_budget", 0)) if budget is None else budget,
        schema_hash=bytes(schema_row[0][0]).hex() if schema_row else None,
        schema_acknowledged=bool(schema_row[0][1]) if schema_row else False,
        last_ack_at=None if last_ack is None else EPOCH + timedelta(milliseconds=int(last_ack)),
        counters={
            str(key)[6:]: int(value)
            for key, value in state.rows("SELECT key, value FROM meta WHERE key LIKE 'count.%'")
        },
    )
