"""Schema, migrations and value codecs of weshd's local store (pure; no connection kept).

The store is one SQLite file in WAL mode (see ``docs/weshd-store.md``). Tables::

    schema_version (version)                       one row: the migration level of the file
    channels  (id, channel, box, path, unit, kind, meaning, label, first_seen_ms)
              one row per *descriptor*: a channel whose unit/kind/meaning/label changes
              gets a new row, so old readings keep the unit they were taken in
    readings  (id, channel_id → channels, at_ms, value, is_bool, quality, box_time_ms)
    latest    (channel PK, box, channel_id, at_ms, value, is_bool, quality, box_time_ms)
    box_state (box PK, up, since_ms, last_ok_ms, last_error, updated_ms)    current status
    box_status_history (id, box, at_ms, up, error)                         one row per edge
    events    (id, at_ms, box, channel, kind, severity, message, data JSON)
    outbound  (seq AUTOINCREMENT, reading_id | event_id, drop_rank, acked_ms)

Encodings (functions below, round-trip tested with Hypothesis):

* instants are integer milliseconds since 1970-01-01 UTC (``*_ms`` columns); anything
  finer is truncated towards the past, the time zone is normalised to UTC;
* ``value`` has no declared type (BLOB affinity), so SQLite keeps the storage class it
  was given: an ``int`` stays ``INTEGER`` (Wh indexes never become floats), a ``float``
  stays ``REAL`` (even ``3.0``), text stays ``TEXT``; a ``bool`` is stored as 0/1 with
  ``is_bool = 1`` (``NULL`` otherwise, one byte per row);
* ``quality`` is a small integer (:data:`QUALITY_CODES`);
* ``outbound.drop_rank`` says what the queue cap may drop: 1 gauges first, 2 states and
  texts next, ``NULL`` never (indexes and alarms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, get_args

__all__ = [
    "DROP_RANK",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_TEXT_CHARS",
    "MIGRATIONS",
    "QUALITY_CODES",
    "QUALITY_NAMES",
    "SCHEMA_VERSION",
    "SampleKindName",
    "decode_value",
    "encode_value",
    "from_ms",
    "to_ms",
]

SampleKindName = Literal["index", "gauge", "state", "text"]

#: longest text value kept; longer texts are cut (device data is untrusted)
MAX_TEXT_CHARS: Final = 200
INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)

QUALITY_CODES: Final[dict[str, int]] = {"measured": 0, "estimated": 1, "suspect": 2}
QUALITY_NAMES: Final[dict[int, str]] = {code: name for name, code in QUALITY_CODES.items()}

#: sample kind → outbound drop rank (lower is dropped first; None is never dropped)
DROP_RANK: Final[dict[str, int | None]] = {"gauge": 1, "state": 2, "text": 2, "index": None}

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

_KINDS_SQL = ", ".join(f"'{kind}'" for kind in get_args(SampleKindName))

_V1: tuple[str, ...] = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    f"""CREATE TABLE channels (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        box TEXT NOT NULL,
        path TEXT NOT NULL,
        unit TEXT,
        kind TEXT NOT NULL CHECK (kind IN ({_KINDS_SQL})),
        meaning TEXT NOT NULL,
        label TEXT,
        first_seen_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX channels_channel ON channels (channel)",
    """CREATE TABLE readings (
        id INTEGER PRIMARY KEY,
        channel_id INTEGER NOT NULL REFERENCES channels (id),
        at_ms INTEGER NOT NULL,
        value NOT NULL,
        is_bool INTEGER,
        quality INTEGER NOT NULL,
        box_time_ms INTEGER
    )""",
    "CREATE INDEX readings_channel_at ON readings (channel_id, at_ms)",
    """CREATE TABLE latest (
        channel TEXT PRIMARY KEY,
        box TEXT NOT NULL,
        channel_id INTEGER NOT NULL REFERENCES channels (id),
        at_ms INTEGER NOT NULL,
        value NOT NULL,
        is_bool INTEGER,
        quality INTEGER NOT NULL,
        box_time_ms INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX latest_box ON latest (box)",
    """CREATE TABLE box_state (
        box TEXT PRIMARY KEY,
        up INTEGER NOT NULL,
        since_ms INTEGER NOT NULL,
        last_ok_ms INTEGER,
        last_error TEXT,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE box_status_history (
        id INTEGER PRIMARY KEY,
        box TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        up INTEGER NOT NULL,
        error TEXT
    )""",
    "CREATE INDEX box_status_history_box ON box_status_history (box, at_ms)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        box TEXT,
        channel TEXT,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'alarm')),
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX events_at ON events (at_ms)",
    "CREATE INDEX events_box_at ON events (box, at_ms)",
    """CREATE TABLE outbound (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        reading_id INTEGER,
        event_id INTEGER,
        drop_rank INTEGER,
        acked_ms INTEGER,
        CHECK ((reading_id IS NULL) <> (event_id IS NULL))
    )""",
    "CREATE INDEX outbound_pending ON outbound (seq) WHERE acked_ms IS NULL",
    """CREATE INDEX outbound_droppable ON outbound (drop_rank, seq)
        WHERE acked_ms IS NULL AND drop_rank IS NOT NULL""",
    """CREATE INDEX outbound_pending_events ON outbound (seq)
        WHERE acked_ms IS NULL AND event_id IS NOT NULL""",
    "CREATE INDEX outbound_acked ON outbound (seq) WHERE acked_ms IS NOT NULL",
)

#: version → the statements that bring a file from ``version - 1`` to ``version``
MIGRATIONS: Final[dict[int, Sequence[str]]] = {1: _V1}
SCHEMA_VERSION: Final = max(MIGRATIONS)


def to_ms(at: datetime) -> int:
    """Milliseconds since the Unix epoch (UTC) of an aware datetime, truncated.

    Raises:
        ValueError: ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime")
    return (at - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Return the aware UTC datetime of a millisecond count (inverse of :func:`to_ms`)."""
    return _EPOCH + ms * _MS


def encode_value(value: object) -> tuple[int | float | str, int | None]:
    """Map a sample value to ``(stored value, is_bool)``.

    Texts longer than :data:`MAX_TEXT_CHARS` are cut (the caller logs it).

    Raises:
        ValueError: NaN, an integer outside 64 bits, or a type that is not
            ``bool``, ``int``, ``float`` or ``str``.
    """
    if isinstance(value, bool):
        return int(value), 1
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integer outside 64 bits")
        return value, None
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("NaN")
        return value, None
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS], None
    raise ValueError(f"unsupported value type {type(value).__name__}")


def decode_value(stored: object, is_bool: int | None) -> float | int | str | bool:
    """Inverse of :func:`encode_value`.

    Raises:
        ValueError: the stored value has a type the store never writes.
    """
    if is_bool:
        return bool(stored)
    if isinstance(stored, int | float | str):
        return stored
    raise ValueError(f"unexpected stored value of type {type(stored).__name__}")
