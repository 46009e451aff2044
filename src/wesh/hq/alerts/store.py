"""SQL persistence of alerts: episodes, history, mutes, and the queries of the CLI and web app.

Every function takes a :class:`~sqlalchemy.Connection` inside the caller's transaction
(the engine runs one transaction per alert change, see :mod:`wesh.hq.alerts.engine`).

Multi-worker safety lives here:

* :func:`insert_alert` stores a new episode with its :func:`open_key`; the key is UNIQUE,
  so a second worker opening the same (rule, subject) fails with :class:`StaleAlert`;
* :func:`update_alert` is ``UPDATE ... WHERE id = :id AND version = :seen`` and bumps the
  version; a worker that lost the race gets :class:`StaleAlert` and must reload and
  decide again in a new transaction.

Reads for people (:func:`list_alerts`, :func:`get_alert`, :func:`alert_history`,
:func:`list_mutes`) return frozen views with ``as_json()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Connection, Row, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from wesh.errors import BadInputError, UsageError
from wesh.hq.alerts.model import ALERT_STATES, JsonScalar, Place, Subject, json_ready
from wesh.hq.alerts.state import OPEN_STATES, AlertRecord, AlertState, Event
from wesh.hq.models import MUTE_SCOPES, NOTE_LEN, Alert, AlertEvent, AlertMute

__all__ = [
    "PLACE_SCOPES",
    "AlertEventView",
    "AlertView",
    "MuteView",
    "StaleAlert",
    "add_events",
    "add_mute",
    "alert_history",
    "children_of",
    "get_alert",
    "insert_alert",
    "lift_mute",
    "list_alerts",
    "list_mutes",
    "load_alert",
    "load_open",
    "mute_covers",
    "open_alerts",
    "open_key",
    "recent_events",
    "update_alert",
]

ALERT: Final = cast("Any", Alert.__table__)
EVENT: Final = cast("Any", AlertEvent.__table__)
MUTE: Final = cast("Any", AlertMute.__table__)
#: Scope kinds that are columns of ``alert`` (copied from the place).
PLACE_SCOPES: Final = ("agency", "residence", "building", "dwelling")
_NAME_LEN: Final = 200


class StaleAlert(Exception):
    """Another worker changed or opened this alert first: reload and decide again."""


def open_key(rule: str, subject: Subject) -> str:
    """Return the ``alert.open_key`` of an open episode (64 hex digits of SHA-256)."""
    return hashlib.sha256(f"{rule}|{subject.kind}|{subject.id}".encode()).hexdigest()


# --- records <-> rows --------------------------------------------------------------------


def _place_json(place: Place) -> dict[str, Any]:
    return asdict(place)


def _place_of(value: Any) -> Place:  # noqa: ANN401 - stored JSON
    if not isinstance(value, Mapping):
        raise BadInputError(f"alert place is not a JSON object: {value!r}")
    known = set(Place.__dataclass_fields__)
    return Place(**{key: item for key, item in value.items() if key in known})


def _details_of(value: Any) -> dict[str, JsonScalar]:  # noqa: ANN401 - stored JSON
    if not isinstance(value, Mapping):
        return {}
    return {str(key): item for key, item in value.items()}


#: :class:`AlertRecord` fields stored as they are, and the ``alert`` column of each.
_COLUMNS: Final[Mapping[str, str]] = {
    **{
        name: name
        for name in (
            "rule",
            "state",
            "severity",
            "started_at",
            "opened_at",
            "fired_at",
            "resolved_at",
            "threshold",
            "last_seen_on_at",
            "off_since",
            "notified_at",
            "next_reminder_at",
            "escalated_at",
            "grouped_under",
            "acked_by",
            "acked_at",
            "ack_note",
        )
    },
    "value": "last_value",
    "unit": "value_unit",
}


def record_of_row(row: Row[Any]) -> AlertRecord:
    """Return the :class:`AlertRecord` of an ``alert`` row."""
    m = row._mapping
    return AlertRecord(
        id=int(m["id"]),
        subject=Subject(m["subject_kind"], int(m["subject_id"])),
        place=_place_of(m["place"]),
        details=_details_of(m["data"]),
        reminders_sent=int(m["reminders_sent"]),
        version=int(m["version"]),
        **{name: m[column] for name, column in _COLUMNS.items()},
    )


def _values(record: AlertRecord, *, now: datetime, worker: str | None) -> dict[str, Any]:
    place = record.place
    return {
        **{column: getattr(record, name) for name, column in _COLUMNS.items()},
        "subject_kind": record.subject.kind,
        "subject_id": record.subject.id,
        "open_key": open_key(record.rule, record.subject) if record.is_open else None,
        "place": _place_json(place),
        "agency_id": place.agency_id,
        "residence_id": place.residence_id,
        "building_id": place.building_id,
        "dwelling_id": place.dwelling_id,
        "data": dict(record.details) or None,
        "reminders_sent": record.reminders_sent,
        "updated_at": now,
        "updated_by": worker,
    }


# --- episodes ----------------------------------------------------------------------------


def load_open(conn: Connection, rule: str, subject: Subject) -> AlertRecord | None:
    """Return the open episode of ``rule`` for ``subject``, if any."""
    row = conn.execute(
        select(ALERT).where(ALERT.c.open_key == open_key(rule, subject))
    ).one_or_none()
    return None if row is None else record_of_row(row)


def load_alert(conn: Connection, alert_id: int) -> AlertRecord | None:
    """Return the episode ``alert_id`` (open or resolved), if it exists."""
    row = conn.execute(select(ALERT).where(ALERT.c.id == alert_id)).one_or_none()
    return None if row is None else record_of_row(row)


def open_alerts(conn: Connection, *, rules: Collection[str] | None = None) -> list[AlertRecord]:
    """Return every open (pending or firing) episode, of ``rules`` if given."""
    query = select(ALERT).where(ALERT.c.state.in_(OPEN_STATES))
    if rules is not None:
        query = query.where(ALERT.c.rule.in_(sorted(rules)))
    return [record_of_row(row) for row in conn.execute(query.order_by(ALERT.c.id))]


def children_of(conn: Connection, parent_id: int) -> list[AlertRecord]:
    """Return the open episodes grouped under alert ``parent_id``."""
    query = (
        select(ALERT)
        .where(ALERT.c.grouped_under == parent_id, ALERT.c.state.in_(OPEN_STATES))
        .order_by(ALERT.c.id)
    )
    return [record_of_row(row) for row in conn.execute(query)]


def insert_alert(
    conn: Connection, record: AlertRecord, *, now: datetime, worker: str | None
) -> int:
    """Store a new episode; return its id.

    Raises:
        StaleAlert: the database refused the row, most likely because an open episode
            of this rule and subject exists (another worker opened it): the transaction
            must be rolled back and the decision made again (a second refusal with no
            open episode to be found is a real error).
        UsageError: the record has an id already.
    """
    if record.id is not None:
        raise UsageError(f"alert {record.id} exists: update it, do not insert it")
    values = _values(record, now=now, worker=worker) | {"version": 0}
    try:
        result = conn.execute(insert(ALERT).values(**values))
    except IntegrityError as exc:
        # Most likely the open_key of an episode another worker opened; any other
        # violation is found again by the caller's retry (and reported after it).
        raise StaleAlert(f"{record.rule} on {record.subject}: {exc.orig}") from exc
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise BadInputError("the database returned no id for the new alert")
    return int(key[0])


def update_alert(
    conn: Connection, record: AlertRecord, *, now: datetime, worker: str | None
) -> AlertRecord:
    """Store a changed episode if nobody changed it since it was read; bump its version.

    Returns:
        The record with its new version.

    Raises:
        StaleAlert: its version changed (another worker wrote first): roll back,
            reload, decide again.
    """
    if record.id is None:
        raise UsageError("a new alert has no id: insert it")
    values = _values(record, now=now, worker=worker) | {"version": record.version + 1}
    statement = (
        update(ALERT)
        .where(ALERT.c.id == record.id, ALERT.c.version == record.version)
        .values(**values)
    )
    try:
        count = conn.execute(statement).rowcount
    except IntegrityError as exc:
        raise StaleAlert(f"alert {record.id}: {exc.orig}") from exc
    if count != 1:
        raise StaleAlert(f"alert {record.id} changed since version {record.version}")
    return AlertRecord(**{**_fields(record), "version": record.version + 1})


def _fields(record: AlertRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AlertRecord.__dataclass_fields__}


def add_events(
    conn: Connection, alert_id: int, events: Iterable[Event], *, actor: str | None
) -> int:
    """Record history lines of alert ``alert_id``; return how many."""
    rows = [
        {
            "alert_id": alert_id,
            "at": event.at,
            "kind": event.kind,
            "actor": _cap(event.actor or actor, _NAME_LEN),
            "note": _cap(event.note, NOTE_LEN),
            "data": dict(event.data) or None,
        }
        for event in events
    ]
    if rows:
        conn.execute(insert(EVENT), rows)
    return len(rows)


def _cap(text: str | None, length: int) -> str | None:
    return None if text is None else text[:length]


# --- mutes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MuteView:
    """A mute (``alert_mute`` row)."""

    id: int
    rule: str | None
    scope_kind: str
    scope_id: int
    until_at: datetime | None
    created_by: str
    created_at: datetime
    reason: str | None
    lifted_at: datetime | None
    lifted_by: str | None

    def active(self, now: datetime) -> bool:
        """Whether it applies at ``now`` (not lifted, not expired)."""
        if self.lifted_at is not None and self.lifted_at <= now:
            return False
        return self.until_at is None or now < self.until_at

    def as_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO 8601 UTC times)."""
        return json_ready(asdict(self))


def add_mute(
    conn: Connection,
    *,
    rule: str | None,
    scope_kind: str,
    scope_id: int,
    until: datetime | None,
    by: str,
    reason: str | None,
    now: datetime,
) -> int:
    """Record a mute; return its id.

    Raises:
        UsageError: unknown scope kind, empty ``by``, or ``until`` not after ``now``.
    """
    if scope_kind not in MUTE_SCOPES:
        raise UsageError(f"cannot mute a {scope_kind!r} (one of {', '.join(MUTE_SCOPES)})")
    if not by.strip():
        raise UsageError("a mute needs a name (who mutes)")
    if until is not None and until <= now:
        raise UsageError(f"mute until {until.isoformat()} is not in the future")
    result = conn.execute(
        insert(MUTE).values(
            rule=rule,
            scope_kind=scope_kind,
            scope_id=scope_id,
            until_at=until,
            created_by=by[:_NAME_LEN],
            created_at=now,
            reason=_cap(reason, NOTE_LEN),
        )
    )
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise BadInputError("the database returned no id for the new mute")
    return int(key[0])


def lift_mute(conn: Connection, mute_id: int, *, by: str, now: datetime) -> bool:
    """Lift a mute now; ``False`` if it does not exist or was lifted already."""
    statement = (
        update(MUTE)
        .where(MUTE.c.id == mute_id, MUTE.c.lifted_at.is_(None))
        .values(lifted_at=now, lifted_by=by[:_NAME_LEN])
    )
    return bool(conn.execute(statement).rowcount == 1)


def list_mutes(conn: Connection, *, now: datetime, active_only: bool = True) -> list[MuteView]:
    """Return the mutes (only those in force at ``now`` by default), newest first."""
    query = select(MUTE)
    if active_only:
        query = query.where(
            MUTE.c.lifted_at.is_(None), or_(MUTE.c.until_at.is_(None), MUTE.c.until_at > now)
        )
    rows = conn.execute(query.order_by(MUTE.c.id.desc()))
    return [MuteView(**dict(row._mapping)) for row in rows]


def mute_covers(
    mute: MuteView,
    *,
    rule: str,
    alert_id: int | None,
    subject: Subject,
    place: Place,
    box_id: int | None,
    gateway_id: int | None,
    now: datetime,
) -> bool:
    """Whether ``mute`` silences the alert of ``rule`` on ``subject`` at ``now``.

    ``box_id``/``gateway_id`` are the box and gateway of the subject (for mutes of a
    box or gateway covering its channels and boxes), ``None`` when it has none.
    """
    if not mute.active(now) or (mute.rule is not None and mute.rule != rule):
        return False
    kind, sid = mute.scope_kind, mute.scope_id
    if kind == "alert":
        return alert_id is not None and alert_id == sid
    matches: dict[str, Sequence[int | None]] = {
        "agency": (place.agency_id,),
        "residence": (place.residence_id,),
        "building": (place.building_id,),
        "dwelling": (place.dwelling_id,),
        "box": (box_id,),
        "gateway": (gateway_id,),
        "channel": (subject.id if subject.kind == "channel" else None,),
    }
    return sid in matches.get(kind, ())


# --- views for people --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert episode as the CLI and the web app show it."""

    id: int
    rule: str
    subject_kind: str
    subject_id: int
    state: AlertState
    severity: str
    place: Place
    started_at: datetime
    opened_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    value: float | None
    unit: str | None
    threshold: float | None
    details: Mapping[str, JsonScalar]
    notified_at: datetime | None
    reminders_sent: int
    escalated_at: datetime | None
    grouped_under: int | None
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    updated_at: datetime
    updated_by: str | None
    version: int

    @property
    def subject(self) -> Subject:
        """The subject of the alert."""
        return Subject(self.subject_kind, self.subject_id)  # type: ignore[arg-type]

    def as_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO 8601 UTC times, the place as an object)."""
        return json_ready(asdict(self))


def _view(row: Row[Any]) -> AlertView:
    record = record_of_row(row)
    m = row._mapping
    return AlertView(
        id=int(m["id"]),
        rule=record.rule,
        subject_kind=record.subject.kind,
        subject_id=record.subject.id,
        state=record.state,
        severity=record.severity,
        place=record.place,
        started_at=record.started_at,
        opened_at=record.opened_at,
        fired_at=record.fired_at,
        resolved_at=record.resolved_at,
        value=record.value,
        unit=record.unit,
        threshold=record.threshold,
        details=record.details,
        notified_at=record.notified_at,
        reminders_sent=record.reminders_sent,
        escalated_at=record.escalated_at,
        grouped_under=record.grouped_under,
        acked_by=record.acked_by,
        acked_at=record.acked_at,
        ack_note=record.ack_note,
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
        version=record.version,
    )


def get_alert(conn: Connection, alert_id: int) -> AlertView | None:
    """Return alert ``alert_id``, if it exists."""
    row = conn.execute(select(ALERT).where(ALERT.c.id == alert_id)).one_or_none()
    return None if row is None else _view(row)


def list_alerts(
    conn: Connection,
    *,
    states: Collection[str] | None = OPEN_STATES,
    rule: str | None = None,
    scope: tuple[str, int] | None = None,
    since: datetime | None = None,
    limit: int | None = 100,
) -> list[AlertView]:
    """Return alerts, newest first.

    Args:
        conn: the store.
        states: only these states (default: open ones; ``None``: all).
        rule: only this rule.
        scope: ``(kind, id)``: ``agency``, ``residence``, ``building``, ``dwelling`` (the
            place), or a subject kind (``box``, ``channel``, ``gateway``, ``site``).
        since: only alerts still open at or changed since this instant.
        limit: at most this many (``None``: all).

    Raises:
        UsageError: an unknown state or scope kind, or a naive ``since``.
    """
    query = select(ALERT)
    if states is not None:
        unknown = set(states) - set(ALERT_STATES)
        if unknown:
            raise UsageError(f"unknown alert state(s): {', '.join(sorted(unknown))}")
        query = query.where(ALERT.c.state.in_(sorted(states)))
    if rule is not None:
        query = query.where(ALERT.c.rule == rule)
    if scope is not None:
        kind, sid = scope
        if kind in PLACE_SCOPES:
            query = query.where(ALERT.c[f"{kind}_id"] == sid)
        elif kind in ("box", "channel", "gateway", "site"):
            query = query.where(and_(ALERT.c.subject_kind == kind, ALERT.c.subject_id == sid))
        else:
            raise UsageError(f"unknown scope kind {kind!r}")
    if since is not None:
        if since.tzinfo is None:
            raise UsageError("since must be timezone-aware")
        query = query.where(or_(ALERT.c.state.in_(OPEN_STATES), ALERT.c.updated_at >= since))
    query = query.order_by(ALERT.c.started_at.desc(), ALERT.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_view(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class AlertEventView:
    """A line of an alert's history."""

    id: int
    alert_id: int
    at: datetime
    kind: str
    actor: str | None
    note: str | None
    data: Mapping[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO 8601 UTC times)."""
        return json_ready(asdict(self))


def alert_history(conn: Connection, alert_id: int) -> list[AlertEventView]:
    """Return the history of alert ``alert_id``, oldest first."""
    query = select(EVENT).where(EVENT.c.alert_id == alert_id).order_by(EVENT.c.at, EVENT.c.id)
    return [AlertEventView(**dict(row._mapping)) for row in conn.execute(query)]


def recent_events(
    conn: Connection, *, since: datetime | None = None, limit: int = 100
) -> list[AlertEventView]:
    """Return the newest ``limit`` history lines of every alert (since ``since``), oldest first.

    Raises:
        UsageError: ``limit`` < 1 or a naive ``since``.
    """
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    query = select(EVENT).order_by(EVENT.c.at.desc(), EVENT.c.id.desc()).limit(limit)
    if since is not None:
        if since.tzinfo is None:
            raise UsageError("since must be timezone-aware")
        query = query.where(EVENT.c.at >= since)
    rows = conn.execute(query).all()
    return [AlertEventView(**dict(row._mapping)) for row in reversed(rows)]
