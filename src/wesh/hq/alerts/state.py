"""The alert state machine: pure, edge-triggered, one alert episode at a time.

:func:`step` takes what is stored about one (rule, subject) — an :class:`AlertRecord`, or
``None`` when nothing is open — and what the latest evaluation said about it, and returns
the record to store, the :class:`~wesh.hq.alerts.model.Notice` objects to mail and the
history :class:`Event` objects to record. No I/O, no clock: ``now`` is an argument.

::

             ON                 ON, now - opened_at >= hold_for
    (none) ─────▶ pending ──────────────────────────────────────▶ firing
                     │ OFF                                          │ OFF for >= resolve_after
                     ▼                                              ▼
                 resolved (cancelled: never fired, never mailed)  resolved

Verdicts (:class:`~wesh.hq.alerts.model.Level`, or ``None`` for "not evaluated"):

* ``ON`` opens an episode (``pending``); a pending episode fires once it has been open for
  ``hold_for`` and the verdict is still ``ON``; ``ON`` clears the resolve timer.
* ``HOLD`` (between the trigger and clear thresholds) keeps the state: a pending episode
  does not fire on it, a firing one does not start resolving (the resolve timer restarts).
* ``OFF`` cancels a pending episode at once, and resolves a firing one once every
  verdict for ``resolve_after`` has been ``OFF`` (hysteresis in time).
* ``None`` (the evaluation did not cover the subject) changes nothing but the timers.

Notices (at most one ``fired`` and one ``resolved`` per episode, ever):

* ``fired`` when the episode fires, unless it is muted or grouped under an open alert
  of a coarser subject: then it is *not announced* (``notified_at`` stays ``None``) and is
  announced later if it is still firing once the mute ends or the parent closes;
* ``reminder`` every ``reminder_every`` after the announcement while not acknowledged;
* ``escalated`` once, ``escalate_after`` after the announcement, if not acknowledged;
* ``resolved`` when an announced episode resolves.

While muted, notices are withheld and a ``suppressed`` event is recorded instead (reminders
still count, so that no burst follows the mute). While grouped, no reminder or escalation:
the parent's mails speak for it. Acknowledging (:func:`acknowledge`) stops reminders and
escalation; the resolved mail is still sent.

A new episode's record has ``id=None`` and its notices ``alert_id=0``: the store assigns
the id and the engine fills it in (:func:`with_alert_id`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol

from wesh.errors import UsageError
from wesh.hq.alerts.model import (
    AlertState,
    Condition,
    EventKind,
    JsonScalar,
    Level,
    Notice,
    NoticeKind,
    Place,
    Severity,
    Subject,
)

__all__ = [
    "OPEN_STATES",
    "AlertRecord",
    "AlertState",
    "Event",
    "EventKind",
    "Step",
    "Timing",
    "acknowledge",
    "notice_of",
    "step",
    "with_alert_id",
]

OPEN_STATES: Final[tuple[AlertState, ...]] = ("pending", "firing")
_ZERO: Final = timedelta(0)


class _PolicyLike(Protocol):
    @property
    def hold_for(self) -> timedelta: ...
    @property
    def resolve_after(self) -> timedelta: ...
    @property
    def reminder_every(self) -> timedelta | None: ...
    @property
    def escalate_after(self) -> timedelta | None: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """The durations of one rule for one subject (see ``docs/alerts.md``).

    Attributes:
        hold_for: how long an episode stays pending before it fires (0: at once).
        resolve_after: how long the verdict must stay OFF before a firing episode resolves.
        reminder_every: interval of reminders while not acknowledged (``None``: never).
        escalate_after: delay after the announcement before the one escalation mail
            (``None``: never).
    """

    hold_for: timedelta = _ZERO
    resolve_after: timedelta = _ZERO
    reminder_every: timedelta | None = None
    escalate_after: timedelta | None = None

    def __post_init__(self) -> None:
        """Refuse negative or zero-interval durations (they would mail in a loop)."""
        if self.hold_for < _ZERO or self.resolve_after < _ZERO:
            raise UsageError(f"negative hold_for or resolve_after in {self}")
        for name in ("reminder_every", "escalate_after"):
            value = getattr(self, name)
            if value is not None and value <= _ZERO:
                raise UsageError(f"{name} must be positive or None, not {value}")

    @classmethod
    def of(cls, policy: _PolicyLike) -> Timing:
        """Return the timing of a rule policy (``wesh.hq.alerts.config.RulePolicy``)."""
        return cls(
            hold_for=policy.hold_for,
            resolve_after=policy.resolve_after,
            reminder_every=policy.reminder_every,
            escalate_after=policy.escalate_after,
        )


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """What is stored about one alert episode (a row of ``alert``, see its columns)."""

    id: int | None
    rule: str
    subject: Subject
    state: AlertState
    severity: Severity
    place: Place
    started_at: datetime
    opened_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    value: float | None = None
    unit: str | None = None
    threshold: float | None = None
    details: Mapping[str, JsonScalar] = field(default_factory=dict)
    last_seen_on_at: datetime | None = None
    off_since: datetime | None = None
    notified_at: datetime | None = None
    reminders_sent: int = 0
    next_reminder_at: datetime | None = None
    escalated_at: datetime | None = None
    grouped_under: int | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    version: int = 0

    @property
    def is_open(self) -> bool:
        """Pending or firing."""
        return self.state != "resolved"


@dataclass(frozen=True, slots=True)
class Event:
    """A line of an alert's history (``alert_event``; the actor is added by the engine)."""

    kind: EventKind
    at: datetime
    data: Mapping[str, JsonScalar] = field(default_factory=dict)
    note: str | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What :func:`step` decided.

    Attributes:
        record: the record to store (``None``: nothing open, nothing to store).
        notices: the notices to mail (already filtered: none while muted or grouped).
        events: the history lines to record.
        changed: the record differs from the one given (something to write).
    """

    record: AlertRecord | None
    notices: tuple[Notice, ...] = ()
    events: tuple[Event, ...] = ()
    changed: bool = False


def notice_of(
    record: AlertRecord,
    kind: NoticeKind,
    *,
    sequence: int = 0,
    grouped: tuple[Place, ...] = (),
) -> Notice:
    """Return the notice ``kind`` of ``record`` (its values as they stand)."""
    return Notice(
        kind=kind,
        alert_id=record.id or 0,
        rule=record.rule,
        subject=record.subject,
        place=record.place,
        severity=record.severity,
        started_at=record.started_at,
        fired_at=record.fired_at,
        resolved_at=record.resolved_at if kind == "resolved" else None,
        sequence=sequence,
        value=record.value,
        unit=record.unit,
        threshold=record.threshold,
        details=dict(record.details),
        grouped=grouped,
        acked_by=record.acked_by,
        acked_at=record.acked_at,
    )


def with_alert_id(result: Step, alert_id: int) -> Step:
    """Return ``result`` with the record's and notices' alert id set (a new episode)."""
    record = result.record
    if record is not None:
        record = dataclasses.replace(record, id=alert_id)
    notices = tuple(dataclasses.replace(notice, alert_id=alert_id) for notice in result.notices)
    return Step(record, notices, result.events, result.changed)


def _open(condition: Condition, now: datetime) -> AlertRecord:
    return AlertRecord(
        id=None,
        rule=condition.rule,
        subject=condition.subject,
        state="pending",
        severity=condition.severity,
        place=condition.place,
        started_at=min(condition.since or now, now),
        opened_at=now,
        value=condition.value,
        unit=condition.unit,
        threshold=condition.threshold,
        details=dict(condition.details),
        last_seen_on_at=now,
    )


def _observe(
    record: AlertRecord, condition: Condition | None, level: Level | None, now: datetime
) -> AlertRecord:
    """Fold a verdict into an open record (values, ON/OFF timers), state unchanged."""
    if level is Level.ON and condition is not None:
        return dataclasses.replace(
            record,
            severity=condition.severity,
            place=condition.place,
            value=condition.value,
            unit=condition.unit,
            threshold=condition.threshold,
            details=dict(condition.details),
            last_seen_on_at=now,
            off_since=None,
        )
    if level is Level.HOLD:
        return dataclasses.replace(record, off_since=None) if record.off_since else record
    if level is Level.OFF and record.off_since is None:
        return dataclasses.replace(record, off_since=now)
    return record


class _Out:
    """Notices and events collected during one step."""

    __slots__ = ("events", "muted", "notices")

    def __init__(self, *, muted: bool) -> None:
        self.muted = muted
        self.notices: list[Notice] = []
        self.events: list[Event] = []

    def event(self, kind: EventKind, at: datetime, **data: JsonScalar) -> None:
        self.events.append(Event(kind, at, data))

    def notice(self, notice: Notice, at: datetime) -> bool:
        """Queue ``notice`` unless muted (then record it as suppressed); True if queued."""
        if self.muted:
            self.event("suppressed", at, notice=notice.kind, sequence=notice.sequence)
            return False
        self.notices.append(notice)
        return True


def step(
    record: AlertRecord | None,
    condition: Condition | None,
    timing: Timing,
    now: datetime,
    *,
    covered: bool = True,
    muted: bool = False,
    parent_alert_id: int | None = None,
    grouped: tuple[Place, ...] = (),
) -> Step:
    """Apply one evaluation's verdict to one alert episode.

    Args:
        record: the open episode of this rule and subject, or ``None`` (a resolved
            record counts as none: a new ``ON`` opens a new episode).
        condition: the verdict of this evaluation, or ``None``: OFF if ``covered``,
            else "not evaluated" (only timers move).
        timing: the rule's durations for this subject.
        now: the evaluation time (aware).
        covered: whether the evaluation looked at this rule and subject.
        muted: whether a mute applies (notices are withheld and recorded as suppressed).
        parent_alert_id: the open alert of the coarser subject covering this one, if
            any (the episode is then grouped under it: no mail of its own).
        grouped: places of subjects grouped under this one, listed in its fired mail.

    Returns:
        The record to store, the notices to mail and the events to record.
    """
    if condition is not None and record is not None and condition.rule != record.rule:
        raise UsageError(f"condition of {condition.rule} applied to an alert of {record.rule}")
    level = condition.level if condition is not None else (Level.OFF if covered else None)
    out = _Out(muted=muted)
    before = record if record is not None and record.is_open else None
    if before is None:
        if level is not Level.ON or condition is None:
            return Step(None)
        current = _open(condition, now)
        out.event("pending", now)
    else:
        current = _observe(before, condition, level, now)
    current = _group(current, parent_alert_id, now, out)
    if current.state == "pending":
        current = _pending(current, level, timing, now, out)
    if current.state == "firing":
        current = _firing(current, level, timing, now, out, grouped=grouped)
    return Step(current, tuple(out.notices), tuple(out.events), current != before)


def _group(
    record: AlertRecord, parent_alert_id: int | None, now: datetime, out: _Out
) -> AlertRecord:
    if record.grouped_under == parent_alert_id:
        return record
    if parent_alert_id is None:
        out.event("ungrouped", now, parent=record.grouped_under)
    else:
        out.event("grouped", now, parent=parent_alert_id)
    return dataclasses.replace(record, grouped_under=parent_alert_id)


def _pending(
    record: AlertRecord, level: Level | None, timing: Timing, now: datetime, out: _Out
) -> AlertRecord:
    if level is Level.OFF:
        out.event("cancelled", now)
        return dataclasses.replace(record, state="resolved", resolved_at=now)
    if level is Level.ON and now - record.opened_at >= timing.hold_for:
        return dataclasses.replace(record, state="firing", fired_at=now)
    return record


def _firing(
    record: AlertRecord,
    level: Level | None,
    timing: Timing,
    now: datetime,
    out: _Out,
    *,
    grouped: tuple[Place, ...],
) -> AlertRecord:
    off_since = record.off_since
    if level is Level.OFF and off_since is not None and now - off_since >= timing.resolve_after:
        return _resolve(record, off_since, now, out)
    if record.notified_at is None:
        return _announce(record, timing, now, out, grouped)
    if record.acked_at is not None or record.grouped_under is not None:
        return record
    return _escalate(_remind(record, timing, now, out), timing, now, out)


def _announce(
    record: AlertRecord, timing: Timing, now: datetime, out: _Out, grouped: tuple[Place, ...]
) -> AlertRecord:
    """Send the fired notice of a firing episode not announced yet, if it may be."""
    first = record.fired_at == now
    if record.grouped_under is not None:
        if first:
            out.event("fired", now, announced=False, why="grouped")
        return record
    if out.muted:
        if first:
            out.event("fired", now, announced=False, why="muted")
            out.event("suppressed", now, notice="fired", sequence=0)
        return record
    out.notice(notice_of(record, "fired", grouped=grouped), now)
    out.event("fired", now, announced=True, late=not first)
    reminder_at = None
    if timing.reminder_every is not None and record.acked_at is None:
        reminder_at = now + timing.reminder_every
    return dataclasses.replace(record, notified_at=now, next_reminder_at=reminder_at)


def _remind(record: AlertRecord, timing: Timing, now: datetime, out: _Out) -> AlertRecord:
    every = timing.reminder_every
    if every is None:
        return record
    if record.next_reminder_at is None:  # reminders switched on after the announcement
        return dataclasses.replace(record, next_reminder_at=now + every)
    if now < record.next_reminder_at:
        return record
    sequence = record.reminders_sent + 1
    reminded = dataclasses.replace(record, reminders_sent=sequence, next_reminder_at=now + every)
    mailed = out.notice(notice_of(reminded, "reminder", sequence=sequence), now)
    out.event("reminder", now, sequence=sequence, announced=mailed)
    return reminded


def _escalate(record: AlertRecord, timing: Timing, now: datetime, out: _Out) -> AlertRecord:
    after = timing.escalate_after
    if after is None or record.escalated_at is not None or record.notified_at is None:
        return record
    if now - record.notified_at < after:
        return record
    escalated = dataclasses.replace(record, escalated_at=now)
    mailed = out.notice(notice_of(escalated, "escalated"), now)
    out.event("escalated", now, announced=mailed)
    return escalated


def _resolve(record: AlertRecord, off_since: datetime, now: datetime, out: _Out) -> AlertRecord:
    resolved = dataclasses.replace(
        record, state="resolved", resolved_at=off_since, next_reminder_at=None
    )
    mailed = False
    if record.notified_at is not None:
        mailed = out.notice(notice_of(resolved, "resolved"), now)
    out.event("resolved", now, announced=mailed)
    return resolved


def acknowledge(record: AlertRecord, *, by: str, note: str | None, now: datetime) -> Step:
    """Acknowledge an open episode: reminders and escalation stop (resolved mail still sent).

    Acknowledging twice keeps the first acknowledgement (and changes nothing).

    Raises:
        UsageError: the episode is resolved, or ``by`` is empty.
    """
    if not by.strip():
        raise UsageError("an acknowledgement needs a name (who acknowledges)")
    if not record.is_open:
        raise UsageError(f"alert {record.id} is resolved: nothing to acknowledge")
    if record.acked_at is not None:
        return Step(record)
    acked = dataclasses.replace(
        record, acked_by=by, acked_at=now, ack_note=note, next_reminder_at=None
    )
    event = Event("acked", now, {}, note=note, actor=by)
    return Step(acked, (), (event,), True)
