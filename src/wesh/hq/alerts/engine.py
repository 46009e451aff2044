"""The alert engine: evaluate the rules, move alert states, queue the mails.

::

    AlertEngine.evaluate()              (on a schedule: every rule, every subject)
    AlertEngine.on_ingest(channel_ids)  (after readings arrived: data rules of those channels)
        │ refresh_rollups ─▶ evaluate.evaluate ─▶ Evaluation (conditions + what was covered)
        ▼
    for each (rule, subject) with a verdict or an open alert, coarse subjects first:
        one transaction: load ─▶ state.step ─▶ insert/update alert (open_key, version)
                                             ─▶ alert_event rows
                                             ─▶ compose_notice ─▶ outbox.enqueue (dedup_key)

Safe with several workers on one database: an alert opens once (``open_key`` UNIQUE), a
change applies once (``version``), a mail is queued once (``dedup_key``) and in the same
transaction as the change that caused it. A worker that loses a race rolls back,
reloads the alert and decides again.

Grouping: a condition may name a ``parent`` subject and ``parent_rule``; while that parent
alert is open (pending or firing), the child alert is grouped under it and sends no mail
of its own; the parent's fired mail lists the children known at that moment. When the
parent closes, children still firing are announced on their own.

The evaluate and compose functions can be replaced (tests, benchmarks) through the
constructor.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine

from wesh.errors import TransientError, UsageError, WeshError
from wesh.hq.alerts import store
from wesh.hq.alerts.compose import Mail, compose_notice, notice_dedup_key, sender_domain_of
from wesh.hq.alerts.config import AlertsConfig
from wesh.hq.alerts.data import Inventory, InventoryCache
from wesh.hq.alerts.evaluate import Evaluation
from wesh.hq.alerts.evaluate import evaluate as evaluate_rules
from wesh.hq.alerts.model import Condition, Level, Notice, Place, Subject
from wesh.hq.alerts.outbox import enqueue as enqueue_mail
from wesh.hq.alerts.recipients import by_language, recipients_for
from wesh.hq.alerts.state import (
    AlertRecord,
    Event,
    EventKind,
    Step,
    Timing,
    acknowledge,
    step,
    with_alert_id,
)
from wesh.hq.db import transaction
from wesh.hq.ingest import ChannelResolver, HqSink
from wesh.hq.models import CODE_LEN
from wesh.hq.rollups import refresh_rollups
from wesh.sync.sink import IngestResult, SiteStatus, SyncAlarm, SyncReading

__all__ = [
    "WORKER_ID_LEN",
    "AlertEngine",
    "AlertingSink",
    "ComposeFn",
    "EngineReport",
    "EnqueueFn",
    "EvaluateFn",
    "default_worker_id",
]

_LOG = logging.getLogger(__name__)

#: Coarse subjects first: a parent is decided before its children.
_DEPTH: Final = {"site": 0, "gateway": 1, "building": 2, "dwelling": 3, "box": 4, "channel": 5}
_LEVEL_RANK: Final = {Level.ON: 2, Level.HOLD: 1, Level.OFF: 0}
#: Tries of one alert change (lost races and transient database errors).
MAX_ATTEMPTS: Final = 5
#: An alert still ON is rewritten (new value, last seen) at most this often.
OBSERVE_WRITE_EVERY: Final = timedelta(minutes=15)
_OBSERVED_FIELDS: Final = ("value", "unit", "threshold", "details", "last_seen_on_at", "place")

Key = tuple[str, Subject]


class EvaluateFn(Protocol):
    """The signature of :func:`wesh.hq.alerts.evaluate.evaluate`."""

    def __call__(
        self,
        conn: Connection,
        config: AlertsConfig,
        now: datetime,
        *,
        channels: Collection[int] | None = None,
        rules: Collection[str] | None = None,
        inventory: Inventory | None = None,
    ) -> Evaluation:
        """Evaluate the rules."""


class ComposeFn(Protocol):
    """The signature of :func:`wesh.hq.alerts.compose.compose_notice`."""

    def __call__(
        self,
        notice: Notice,
        *,
        to: Sequence[str],
        lang: str,
        base_url: str,
        sender_domain: str,
    ) -> Mail:
        """Compose the mail of a notice."""


class EnqueueFn(Protocol):
    """The signature of :func:`wesh.hq.alerts.outbox.enqueue`."""

    def __call__(
        self,
        conn: Connection,
        mail: Mail,
        *,
        dedup_key: str,
        alert_id: int | None,
        notice_kind: str | None,
        now: datetime,
    ) -> bool:
        """Enqueue a mail; True if new."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


WORKER_ID_LEN: Final = CODE_LEN  # alert.updated_by, mail_outbox.claimed_by


def default_worker_id() -> str:
    """Return this process's worker name, ``host:pid`` (cut to fit its SQL columns)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:WORKER_ID_LEN]


@dataclass
class EngineReport:
    """What one run of the engine did (counts per transition, mails queued)."""

    at: datetime
    rules: int = 0
    conditions: int = 0
    opened: int = 0
    fired: int = 0
    resolved: int = 0
    cancelled: int = 0
    reminders: int = 0
    escalated: int = 0
    suppressed: int = 0
    mails_queued: int = 0
    writes: int = 0
    lost_races: int = 0
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def count(self, result: Step) -> None:
        """Add the transitions of one applied step."""
        for event in result.events:
            kind = event.kind
            if kind == "pending":
                self.opened += 1
            elif kind == "fired" and event.data.get("late") is not True:
                self.fired += 1
            elif kind in ("resolved", "cancelled", "escalated", "suppressed"):
                setattr(self, kind, getattr(self, kind) + 1)
            elif kind == "reminder":
                self.reminders += 1

    def as_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["at"] = self.at.isoformat()
        return values


@dataclass(frozen=True, slots=True)
class _Item:
    """One (rule, subject) to decide in this run."""

    rule: str
    subject: Subject
    condition: Condition | None
    covered: bool
    record: AlertRecord | None


@dataclass(frozen=True, slots=True)
class _Run:
    """The context of one run: its time, mutes, inventory and report."""

    now: datetime
    mutes: list[store.MuteView]
    inventory: Inventory
    report: EngineReport


class AlertEngine:
    """Evaluate alert rules and turn their verdicts into alert states and mails.

    Args:
        engine: the HQ store.
        config: the alert configuration.
        worker_id: this worker's name in the store (default: host:pid).
        now: the clock (aware UTC datetimes).
        evaluate: the rule evaluation (default :func:`wesh.hq.alerts.evaluate.evaluate`).
        compose: the mail composer (default :func:`wesh.hq.alerts.compose.compose_notice`).
        enqueue: the outbox (default :func:`wesh.hq.alerts.outbox.enqueue`).
        refresh: refresh stale rollups before evaluating (the rules read them).
    """

    def __init__(
        self,
        engine: Engine,
        config: AlertsConfig,
        *,
        worker_id: str | None = None,
        now: Callable[[], datetime] = _wall_clock,
        evaluate: EvaluateFn | None = None,
        compose: ComposeFn | None = None,
        enqueue: EnqueueFn | None = None,
        refresh: bool = True,
    ) -> None:
        self._engine = engine
        self._config = config
        self._worker = (worker_id or default_worker_id())[:WORKER_ID_LEN]
        self._now = now
        self._evaluate: EvaluateFn = evaluate or evaluate_rules
        self._compose: ComposeFn = compose or compose_notice
        self._enqueue: EnqueueFn = enqueue or enqueue_mail
        self._refresh = refresh
        self._inventory = InventoryCache()
        self._sender_domain = sender_domain_of(config.sender)

    @property
    def worker_id(self) -> str:
        """The name of this worker (``alert.updated_by``, event actor)."""
        return self._worker

    # --- runs ----------------------------------------------------------------------------

    def evaluate(
        self, *, channels: Collection[int] | None = None, rules: Collection[str] | None = None
    ) -> EngineReport:
        """Evaluate the rules now and apply the verdicts.

        Args:
            channels: only the data rules touching these channels (on ingest); ``None``:
                every enabled rule over every subject (the schedule).
            rules: only these rules.

        Raises:
            UsageError: a naive clock or an unknown rule name.
            TransientError, ConnectionFailed: the database failed (changes already
                committed stay; the next run goes on from them).
        """
        started = time.perf_counter()
        now = self._now()
        if now.tzinfo is None:
            raise UsageError("the engine's clock must return timezone-aware datetimes")
        report = EngineReport(at=now)
        if self._refresh:
            refresh_rollups(self._engine, channels=channels)
        with transaction(self._engine) as conn:
            inventory = self._inventory.get(conn)
            evaluation = self._evaluate(
                conn, self._config, now, channels=channels, rules=rules, inventory=inventory
            )
            known = store.open_alerts(conn)
            mutes = store.list_mutes(conn, now=now)
        report.rules = len(evaluation.rules)
        report.conditions = len(evaluation.conditions)
        report.errors.extend(evaluation.errors)
        self._apply(evaluation, known, _Run(now, mutes, inventory, report))
        report.duration_s = time.perf_counter() - started
        if report.writes or report.errors:
            _LOG.info(
                "Alerts: %d conditions, %d opened, %d fired, %d resolved, %d mails queued, "
                "%d errors in %.2f s",
                report.conditions,
                report.opened,
                report.fired,
                report.resolved,
                report.mails_queued,
                len(report.errors),
                report.duration_s,
            )
        return report

    def on_ingest(self, channel_ids: Collection[int]) -> EngineReport:
        """Evaluate the data rules of channels that just received readings (late ones too).

        Call it after a batch of readings is committed (the sync receiver's sink, after
        each hand-over): ``engine.on_ingest({reading.channel_id for reading in batch})``.
        The "no data" rules are left to the schedule (:meth:`evaluate`).
        """
        if not channel_ids:
            return EngineReport(at=self._now())
        return self.evaluate(channels=frozenset(channel_ids))

    def on_readings(
        self, readings: Iterable[SyncReading], *, resolver: ChannelResolver | None = None
    ) -> EngineReport:
        """Like :meth:`on_ingest`, from the readings just stored (their channels resolved).

        ``resolver``: the sink's channel cache (``HqSink.resolver``), to save queries.
        Readings of unknown channels are skipped (ingestion rejected them anyway).
        """
        heads = {(r.site, r.box, r.path) for r in readings}
        if not heads:
            return EngineReport(at=self._now())
        resolver = resolver if resolver is not None else ChannelResolver()
        ids: set[int] = set()
        with transaction(self._engine) as conn:
            for site, box, path in heads:
                found = resolver.resolve(conn, site, box, path)
                if not isinstance(found, str):
                    ids.add(found.id)
        return self.on_ingest(ids)

    # --- people --------------------------------------------------------------------------

    def ack(self, alert_id: int, *, by: str, note: str | None = None) -> store.AlertView:
        """Acknowledge an open alert: reminders and escalation stop.

        Raises:
            UsageError: no such alert, or it is resolved, or ``by`` is empty.
        """
        for _attempt in range(MAX_ATTEMPTS):
            now = self._now()
            try:
                with transaction(self._engine) as conn:
                    record = store.load_alert(conn, alert_id)
                    if record is None:
                        raise UsageError(f"no alert {alert_id}")
                    result = acknowledge(record, by=by, note=note, now=now)
                    if result.changed and result.record is not None:
                        store.update_alert(conn, result.record, now=now, worker=self._worker)
                        store.add_events(conn, alert_id, result.events, actor=by)
                    view = store.get_alert(conn, alert_id)
            except store.StaleAlert:
                continue
            if view is None:  # pragma: no cover - read in the same transaction
                raise UsageError(f"no alert {alert_id}")
            return view
        raise TransientError(f"alert {alert_id} kept changing: acknowledgement not recorded")

    def mute(
        self,
        *,
        rule: str | None,
        scope_kind: str,
        scope_id: int,
        until: datetime | None,
        by: str,
        reason: str | None = None,
    ) -> int:
        """Mute alerts of ``rule`` (``None``: all) in a scope until ``until``; return its id.

        Muted alerts still change state; their mails are withheld (``suppressed`` in the
        history). An alert fired while muted and still firing when the mute ends is
        announced then. Open alerts the mute covers get a ``muted`` history line.
        """
        now = self._now()
        with transaction(self._engine) as conn:
            mute_id = store.add_mute(
                conn,
                rule=rule,
                scope_kind=scope_kind,
                scope_id=scope_id,
                until=until,
                by=by,
                reason=reason,
                now=now,
            )
            self._note_mute(conn, mute_id, "muted", by=by, note=reason, now=now)
        return mute_id

    def unmute(self, mute_id: int, *, by: str) -> bool:
        """Lift a mute now; ``False`` if there is no such mute in force."""
        now = self._now()
        with transaction(self._engine) as conn:
            mutes = {m.id: m for m in store.list_mutes(conn, now=now)}
            lifted = store.lift_mute(conn, mute_id, by=by, now=now)
            if lifted and mute_id in mutes:
                self._note_mute(conn, mute_id, "unmuted", by=by, note=None, now=now, mute=mutes)
        return lifted

    def _note_mute(
        self,
        conn: Connection,
        mute_id: int,
        kind: EventKind,
        *,
        by: str,
        note: str | None,
        now: datetime,
        mute: Mapping[int, store.MuteView] | None = None,
    ) -> None:
        found = mute or {m.id: m for m in store.list_mutes(conn, now=now)}
        view = found.get(mute_id)
        if view is None:
            return
        inventory = self._inventory.get(conn)
        for record in store.open_alerts(conn):
            if _muted_by(
                [view], record.rule, record.id, record.subject, record.place, inventory, now
            ):
                event = Event(kind, now, {"mute": mute_id}, note=note, actor=by)
                store.add_events(conn, record.id or 0, [event], actor=by)

    # --- applying an evaluation ----------------------------------------------------------

    def _apply(
        self,
        evaluation: Evaluation,
        known: list[AlertRecord],
        run: _Run,
    ) -> None:
        """Decide every verdict and open alert, coarse subjects first."""
        open_ids: dict[Key, int] = {(r.rule, r.subject): r.id for r in known if r.id is not None}
        live = set(open_ids.values())
        children = _children(evaluation, known, open_ids)
        for item in _items(evaluation, known):
            key = (item.rule, item.subject)
            parent_id = _parent_of(item, open_ids, live)
            grouped = tuple(_unique(children.get(key, ())))
            try:
                record = self._decide(item, run, parent_id=parent_id, grouped=grouped)
            except WeshError as exc:
                message = f"alert {item.rule} on {item.subject}: {exc}"
                _LOG.error("Alerts: %s", message)
                run.report.errors.append(message[:1000])
                continue
            old = open_ids.pop(key, None)
            if old is not None:
                live.discard(old)
            if record is not None and record.is_open and record.id is not None:
                open_ids[key] = record.id
                live.add(record.id)

    def _decide(
        self, item: _Item, run: _Run, *, parent_id: int | None, grouped: tuple[Place, ...]
    ) -> AlertRecord | None:
        """Apply one verdict in its own transaction; retry lost races. Return the record.

        The first decision uses the record read at the start of the run and opens no
        transaction when there is nothing to write (most alerts, most runs); a retry
        reloads the record inside its transaction.
        """
        record = item.record
        planned = self._plan(item, record, run, parent_id=parent_id, grouped=grouped)
        if planned is None:
            return record if record is not None and record.is_open else None
        last: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                with transaction(self._engine) as conn:
                    if attempt:
                        record = store.load_open(conn, item.rule, item.subject)
                        planned = self._plan(
                            item, record, run, parent_id=parent_id, grouped=grouped
                        )
                    if planned is None:
                        return record
                    return self._write(conn, planned, run)
            except store.StaleAlert as exc:
                run.report.lost_races += 1
                last = exc
            except TransientError as exc:
                last = exc
                time.sleep(0.01 * (attempt + 1))
        raise TransientError(
            f"gave up after {MAX_ATTEMPTS} attempts: {last}", where=f"{item.rule}:{item.subject}"
        )

    def _plan(
        self,
        item: _Item,
        record: AlertRecord | None,
        run: _Run,
        *,
        parent_id: int | None,
        grouped: tuple[Place, ...],
    ) -> Step | None:
        """Return the step to store, or ``None`` when there is nothing to write."""
        now = run.now
        place = item.condition.place if item.condition is not None else None
        if place is None and record is not None:
            place = record.place
        if place is None:
            return None
        alert_id = record.id if record is not None else None
        muted = _muted_by(run.mutes, item.rule, alert_id, item.subject, place, run.inventory, now)
        result = step(
            record,
            item.condition,
            self._timing(item.rule, place),
            now,
            covered=item.covered,
            muted=muted,
            parent_alert_id=parent_id,
            grouped=grouped,
        )
        after = result.record
        if after is None or not (result.changed or result.notices or result.events):
            return None
        quiet = not result.notices and not result.events
        if record is not None and quiet and _only_observed(record, after) and _recent(record, now):
            return None
        return result

    def _write(self, conn: Connection, result: Step, run: _Run) -> AlertRecord:
        """Store a step: the alert row, its history, its mails (one transaction)."""
        now = run.now
        after = result.record
        if after is None:  # pragma: no cover - _plan returns no step without a record
            raise UsageError("nothing to write")
        if after.id is None:
            new_id = store.insert_alert(conn, after, now=now, worker=self._worker)
            result = with_alert_id(result, new_id)
            stored = replace(after, id=new_id, version=0)
        else:
            stored = store.update_alert(conn, after, now=now, worker=self._worker)
        events = list(result.events)
        for notice in result.notices:
            queued, addressed = self._queue(conn, notice, now)
            run.report.mails_queued += queued
            if not addressed:
                why = {"notice": notice.kind, "why": "no_recipient"}
                events.append(Event("suppressed", now, why))
        store.add_events(conn, stored.id or 0, events, actor=self._worker)
        run.report.writes += 1
        run.report.count(Step(stored, result.notices, tuple(events), True))
        return stored

    def _queue(self, conn: Connection, notice: Notice, now: datetime) -> tuple[int, bool]:
        """Compose and enqueue ``notice``; return (mails queued, anybody to mail).

        Escalations go to the escalation contacts, other notices to the usual ones; when
        one list is empty the other is used, so that no notice goes unsent while somebody
        is configured.
        """
        escalation = notice.kind == "escalated"
        recipients = recipients_for(self._config, notice.place, escalation=escalation)
        if not recipients:
            recipients = recipients_for(self._config, notice.place, escalation=not escalation)
        if not recipients:
            _LOG.warning(
                "Alerts: nobody to mail about alert %d (%s at %s): add a [[contacts]] scope",
                notice.alert_id,
                notice.rule,
                notice.place.building_code,
            )
            return 0, False
        queued = 0
        for lang, to in by_language(recipients).items():
            mail = self._compose(
                notice,
                to=to,
                lang=lang,
                base_url=self._config.base_url,
                sender_domain=self._sender_domain,
            )
            key = notice_dedup_key(notice, to=to, lang=lang)
            if self._enqueue(
                conn,
                mail,
                dedup_key=key,
                alert_id=notice.alert_id,
                notice_kind=notice.kind,
                now=now,
            ):
                queued += 1
        return queued, True

    def _timing(self, rule: str, place: Place) -> Timing:
        try:
            return Timing.of(self._config.policy(rule, place))
        except KeyError:  # a rule no longer configured: close its alerts with no delay
            return Timing()


class AlertingSink:
    """A :class:`~wesh.sync.sink.ReadingSink` that stores, then evaluates alerts at once.

    Wraps the HQ sink for the sync receiver::

        sink = AlertingSink(HqSink(engine), AlertEngine(engine, config))
        receiver = Receiver(..., sink=sink)

    After each hand-over of readings, the data rules of their channels run (late data
    included); after an alarm, the TIC alarm rules; after a status, the gateway health
    rules. An alert failure is logged and never fails the ingestion (the data is stored;
    the scheduled :meth:`AlertEngine.evaluate` catches up).
    """

    ALARM_RULES: Final = frozenset({"tic_overload", "tic_status_alarm"})
    STATUS_RULES: Final = frozenset({"queue_backlog", "sms_budget_exhausted", "boxes_down"})

    def __init__(self, inner: HqSink, alerts: AlertEngine) -> None:
        self.inner = inner
        self.alerts = alerts

    def ingest(self, readings: Sequence[SyncReading]) -> IngestResult:
        """Store readings, then evaluate the data rules of their channels."""
        result = self.inner.ingest(readings)
        if result.inserted:
            self._guard(lambda: self.alerts.on_readings(readings, resolver=self.inner.resolver))
        return result

    def ingest_alarm(self, alarm: SyncAlarm) -> None:
        """Store an alarm, then evaluate the alarm rules."""
        self.inner.ingest_alarm(alarm)
        self._guard(lambda: self.alerts.evaluate(rules=self.ALARM_RULES))

    def ingest_status(self, status: SiteStatus) -> None:
        """Record a status, then evaluate the gateway health rules."""
        self.inner.ingest_status(status)
        self._guard(lambda: self.alerts.evaluate(rules=self.STATUS_RULES))

    @staticmethod
    def _guard(run: Callable[[], EngineReport]) -> None:
        try:
            report = run()
        except WeshError:
            _LOG.exception("Alerts: evaluation after ingestion failed (the schedule will retry)")
            return
        for error in report.errors:
            _LOG.warning("Alerts: %s", error)


# --- pure helpers --------------------------------------------------------------------------


def _muted_by(  # noqa: PLR0917 - what a mute can name
    mutes: Iterable[store.MuteView],
    rule: str,
    alert_id: int | None,
    subject: Subject,
    place: Place,
    inventory: Inventory,
    now: datetime,
) -> bool:
    mutes = list(mutes)
    if not mutes:
        return False
    box_id, gateway_id = _equipment_of(subject, inventory)
    return any(
        store.mute_covers(
            mute,
            rule=rule,
            alert_id=alert_id,
            subject=subject,
            place=place,
            box_id=box_id,
            gateway_id=gateway_id,
            now=now,
        )
        for mute in mutes
    )


def _items(evaluation: Evaluation, known: Iterable[AlertRecord]) -> list[_Item]:
    """Return what to decide: every verdict and every open alert, coarse subjects first."""
    verdicts: dict[Key, Condition] = {}
    for cond in evaluation.conditions:
        key = (cond.rule, cond.subject)
        seen = verdicts.get(key)
        if seen is None or _LEVEL_RANK[cond.level] > _LEVEL_RANK[seen.level]:
            verdicts[key] = cond
    records = {(r.rule, r.subject): r for r in known}
    items: list[_Item] = []
    for key in verdicts.keys() | records.keys():
        rule, subject = key
        covered = rule in evaluation.rules and (
            evaluation.subjects is None or subject in evaluation.subjects
        )
        verdict = verdicts.get(key)
        items.append(
            _Item(rule, subject, verdict, covered or verdict is not None, records.get(key))
        )
    items.sort(key=lambda i: (_DEPTH.get(i.subject.kind, 9), i.rule, i.subject.id))
    return items


def _children(
    evaluation: Evaluation, known: Iterable[AlertRecord], open_ids: Mapping[Key, int]
) -> dict[Key, list[Place]]:
    """Return the places grouped under each (rule, subject): this run's and stored ones."""
    children: dict[Key, list[Place]] = {}
    for cond in evaluation.conditions:
        if cond.parent is not None and cond.parent_rule and cond.level is Level.ON:
            children.setdefault((cond.parent_rule, cond.parent), []).append(cond.place)
    by_id = {alert_id: key for key, alert_id in open_ids.items()}
    for record in known:
        parent = by_id.get(record.grouped_under) if record.grouped_under is not None else None
        if parent is not None:
            children.setdefault(parent, []).append(record.place)
    return children


def _parent_of(item: _Item, open_ids: Mapping[Key, int], live: Collection[int]) -> int | None:
    cond = item.condition
    if cond is not None and cond.parent is not None and cond.parent_rule:
        return open_ids.get((cond.parent_rule, cond.parent))
    if item.record is not None and item.record.grouped_under in live:
        return item.record.grouped_under
    return None


def _unique(places: Iterable[Place]) -> list[Place]:
    seen: set[Place] = set()
    out: list[Place] = []
    for place in places:
        if place not in seen:
            seen.add(place)
            out.append(place)
    return out


def _only_observed(before: AlertRecord, after: AlertRecord) -> bool:
    """Whether only values seen while ON changed (value, last seen...): no decision."""
    changed = {
        name
        for name in AlertRecord.__dataclass_fields__
        if getattr(before, name) != getattr(after, name)
    }
    return changed <= set(_OBSERVED_FIELDS)


def _recent(record: AlertRecord, now: datetime) -> bool:
    seen = record.last_seen_on_at
    return seen is not None and now - seen < OBSERVE_WRITE_EVERY


def _equipment_of(subject: Subject, inventory: Inventory) -> tuple[int | None, int | None]:
    """Return the (box, gateway) ids of a subject, ``None`` where it has none."""
    box_id: int | None = None
    gateway_id: int | None = None
    if subject.kind == "channel":
        channel = inventory.channels.get(subject.id)
        box_id = channel.box_id if channel is not None else None
    elif subject.kind == "box":
        box_id = subject.id
    elif subject.kind in ("gateway", "site"):
        gateway_id = subject.id
    if box_id is not None:
        box = inventory.boxes.get(box_id)
        gateway_id = box.gateway_id if box is not None else None
    return box_id, gateway_id
