"""The alert engine on SQLite, MariaDB and PostgreSQL: one mail per edge, races, grouping,
mute, acknowledgement, escalation, late data.

The rule evaluation is replaced by :class:`FakeEvaluate` (the conditions each test wants);
composing and the outbox are the real ones.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, select

from tests.hq.alerts.conftest import T0, AlertEstate, build_alert_estate
from wesh.errors import TransientError
from wesh.hq.alerts.config import AlertsConfig, config_from_text
from wesh.hq.alerts.data import Inventory, load_inventory
from wesh.hq.alerts.engine import (
    WORKER_ID_LEN,
    AlertEngine,
    AlertingSink,
    EngineReport,
    default_worker_id,
)
from wesh.hq.alerts.evaluate import Evaluation
from wesh.hq.alerts.model import Condition, Level, Place, Subject
from wesh.hq.alerts.state import AlertRecord, Timing, acknowledge, step, with_alert_id
from wesh.hq.alerts.store import alert_history, list_alerts
from wesh.hq.db import make_engine
from wesh.hq.ingest import HqSink
from wesh.hq.migrate import migrate
from wesh.hq.models import Alert, MailOutbox
from wesh.sync.sink import SiteStatus, SyncAlarm, SyncReading

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

CONFIG = """
base_url = "https://hq.example.org"
sender = "wesh@example.org"

[[contacts]]
scope = "*"
emails = ["astreinte@example.org"]

[[contacts]]
scope = "residence:RES-TIL"
emails = ["tilleuls@example.org"]
lang = "en"

[[contacts]]
scope = "*"
emails = ["chef@example.org"]
escalation = true

[rules.leak_night_flow]
hold_for = "0m"
resolve_after = "30m"
reminder_every = "1h"
escalate_after = "3h"

[rules.frost]
hold_for = "1h"
resolve_after = "0m"
reminder_every = "off"

[rules.gateway_silent]
hold_for = "0m"
resolve_after = "0m"
reminder_every = "off"

[rules.box_silent]
hold_for = "0m"
resolve_after = "0m"
reminder_every = "off"
"""


class Clock:
    """A settable clock."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@dataclass
class FakeEvaluate:
    """Return the conditions a test sets, covering ``rules`` (all by default)."""

    conditions: list[Condition] = field(default_factory=list)
    rules: frozenset[str] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    barrier: threading.Barrier | None = None
    fail: Exception | None = None

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
        self.calls.append({"channels": channels, "rules": rules, "now": now})
        if self.fail is not None:
            raise self.fail
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        covered = self.rules or frozenset(c.rule for c in self.conditions) | ALL_TEST_RULES
        subjects = None
        conds = self.conditions
        if channels is not None:
            subjects = frozenset(Subject("channel", cid) for cid in channels)
            conds = [c for c in conds if c.subject in subjects]
        return Evaluation(
            at=now,
            conditions=list(conds),
            rules=covered,
            subjects=subjects,
            errors=[],
            timings_s={},
        )


ALL_TEST_RULES = frozenset({"leak_night_flow", "frost", "gateway_silent", "box_silent"})


@dataclass
class World:
    estate: AlertEstate
    clock: Clock
    fake: FakeEvaluate
    alerts: AlertEngine
    inventory: Inventory

    def place(self, subject: Subject) -> Place:
        place = self.inventory.place(subject)
        assert place is not None
        return place

    def condition(
        self, rule: str, subject: Subject, level: Level = Level.ON, **extra: Any
    ) -> Condition:
        values: dict[str, Any] = {"value": 35.0, "unit": "L/h", "threshold": 20.0}
        values.update(extra)
        return Condition(
            rule=rule,
            subject=subject,
            level=level,
            observed_at=self.clock.at,
            place=self.place(subject),
            since=self.clock.at,
            **values,
        )

    def run(self, *conditions: Condition) -> EngineReport:
        self.fake.conditions = list(conditions)
        report = self.alerts.evaluate()
        assert report.errors == []
        return report

    def mails(self) -> list[dict[str, Any]]:
        with self.estate.engine.connect() as conn:
            rows = conn.execute(select(MailOutbox).order_by(MailOutbox.id)).all()
        return [dict(row._mapping) for row in rows]

    def kinds(self) -> list[tuple[str | None, str]]:
        return [(m["notice_kind"], ",".join(m["recipients"])) for m in self.mails()]


@pytest.fixture
def world(alert_estate: AlertEstate) -> World:
    clock = Clock()
    fake = FakeEvaluate()
    config = config_from_text(CONFIG)
    alerts = AlertEngine(alert_estate.engine, config, worker_id="w1", now=clock.now, evaluate=fake)
    with alert_estate.engine.connect() as conn:
        inventory = load_inventory(conn)
    return World(alert_estate, clock, fake, alerts, inventory)


def _water(world: World, number: int = 0) -> Subject:
    return Subject("channel", world.estate.water[number])


def test_one_fired_mail_per_language_then_nothing_then_resolved(world: World) -> None:
    subject = _water(world)
    report = world.run(world.condition("leak_night_flow", subject))
    assert (report.opened, report.fired, report.mails_queued) == (1, 1, 2)
    assert sorted(world.kinds()) == [
        ("fired", "astreinte@example.org"),
        ("fired", "tilleuls@example.org"),
    ]
    by_lang = {m["lang"]: m for m in world.mails()}
    assert set(by_lang) == {"fr", "en"}
    assert "https://hq.example.org/alerts/" in by_lang["fr"]["body_text"]
    for _ in range(3):
        world.clock.advance(5 * MIN)
        again = world.run(world.condition("leak_night_flow", subject, value=36.0))
        assert again.mails_queued == 0
    assert len(world.mails()) == 2
    world.clock.advance(5 * MIN)
    world.run()  # OFF: the resolve timer starts
    assert len(world.mails()) == 2
    world.clock.advance(30 * MIN)
    report = world.run()
    assert report.resolved == 1
    assert [m["notice_kind"] for m in world.mails()][2:] == ["resolved", "resolved"]
    with world.estate.engine.connect() as conn:
        views = list_alerts(conn, states=None)
        assert len(views) == 1
        assert views[0].state == "resolved"
        history = [e.kind for e in alert_history(conn, views[0].id)]
    assert history == ["pending", "fired", "resolved"]


def test_unchanged_on_verdicts_are_not_rewritten_every_run(world: World) -> None:
    subject = _water(world)
    world.run(world.condition("leak_night_flow", subject))
    world.clock.advance(5 * MIN)
    assert world.run(world.condition("leak_night_flow", subject)).writes == 0
    world.clock.advance(20 * MIN)
    assert world.run(world.condition("leak_night_flow", subject)).writes == 1


def test_hold_for_delays_the_mail_and_a_short_blip_sends_none(world: World) -> None:
    subject = Subject("channel", world.estate.temperature[0])
    world.run(world.condition("frost", subject, value=9.0, unit="°C", threshold=12.0))
    world.clock.advance(30 * MIN)
    world.run()  # OFF before hold_for: cancelled
    assert world.mails() == []
    world.clock.advance(MIN)
    world.run(world.condition("frost", subject))
    world.clock.advance(HOUR)
    world.run(world.condition("frost", subject))
    assert [m["notice_kind"] for m in world.mails()] == ["fired", "fired"]
    with world.estate.engine.connect() as conn:
        states = [v.state for v in list_alerts(conn, states=None)]
    assert sorted(states) == ["firing", "resolved"]


def test_reminders_then_ack_stops_them_and_escalation(world: World) -> None:
    subject = _water(world)
    cond = world.condition("leak_night_flow", subject)
    world.run(cond)
    for _ in range(12):  # two hours in 10-minute steps
        world.clock.advance(10 * MIN)
        world.run(cond)
    reminders = [m for m in world.mails() if m["notice_kind"] == "reminder"]
    assert len(reminders) == 4  # hours 1 and 2, two languages each
    with world.estate.engine.connect() as conn:
        alert_id = list_alerts(conn)[0].id
    view = world.alerts.ack(alert_id, by="marie", note="plombier appelé")
    assert view.acked_by == "marie"
    before = len(world.mails())
    for _ in range(30):  # five more hours: no reminder, no escalation
        world.clock.advance(10 * MIN)
        world.run(cond)
    assert len(world.mails()) == before
    world.run()
    world.clock.advance(HOUR)
    world.run()
    assert [m["notice_kind"] for m in world.mails()][before:] == ["resolved", "resolved"]
    with world.estate.engine.connect() as conn:
        kinds = [e.kind for e in alert_history(conn, alert_id)]
    assert "acked" in kinds


def test_escalation_goes_to_the_escalation_contact_once(world: World) -> None:
    cond = world.condition("leak_night_flow", _water(world))
    world.run(cond)
    for _ in range(40):
        world.clock.advance(10 * MIN)
        world.run(cond)
    escalated = [m for m in world.mails() if m["notice_kind"] == "escalated"]
    assert [m["recipients"] for m in escalated] == [["chef@example.org"]]


def test_mute_withholds_mails_and_unmute_announces(world: World) -> None:
    cond = world.condition("leak_night_flow", _water(world))
    mute_id = world.alerts.mute(
        rule=None,
        scope_kind="residence",
        scope_id=world.estate.residence,
        until=None,
        by="marie",
        reason="travaux",
    )
    report = world.run(cond)
    assert report.fired == 1
    assert report.suppressed == 1
    assert world.mails() == []
    with world.estate.engine.connect() as conn:
        alert_id = list_alerts(conn)[0].id
        kinds = [e.kind for e in alert_history(conn, alert_id)]
    assert kinds == ["pending", "fired", "suppressed"]
    world.clock.advance(5 * MIN)
    world.run(cond)
    assert world.mails() == []
    assert world.alerts.unmute(mute_id, by="marie") is True
    assert world.alerts.unmute(mute_id, by="marie") is False
    world.clock.advance(5 * MIN)
    world.run(cond)
    assert [m["notice_kind"] for m in world.mails()] == ["fired", "fired"]
    with world.estate.engine.connect() as conn:
        kinds = [e.kind for e in alert_history(conn, alert_id)]
    assert kinds[-2:] == ["unmuted", "fired"]


def test_a_mute_elsewhere_changes_nothing(world: World) -> None:
    world.alerts.mute(
        rule="frost", scope_kind="box", scope_id=world.estate.boxes[0], until=None, by="m"
    )
    world.alerts.mute(
        rule=None, scope_kind="box", scope_id=world.estate.boxes[1], until=T0 + HOUR, by="m"
    )
    world.run(world.condition("leak_night_flow", _water(world, 0)))
    assert len(world.mails()) == 2


def test_dead_gateway_one_mail_listing_its_boxes(world: World) -> None:
    gateway = Subject("gateway", world.estate.gateway)
    boxes = [Subject("box", box) for box in world.estate.boxes]
    parent = world.condition("gateway_silent", gateway, value=3.0, unit="h", threshold=2.0)
    children = [
        world.condition(
            "box_silent",
            box,
            value=3.0,
            unit="h",
            threshold=2.0,
            parent=gateway,
            parent_rule="gateway_silent",
        )
        for box in boxes
    ]
    report = world.run(*children, parent)
    assert report.fired == 4
    mails = world.mails()
    assert {m["notice_kind"] for m in mails} == {"fired"}
    assert len(mails) == 2  # one per language, for the gateway only
    for mail in mails:
        for number in range(1, 4):
            assert f"box-{number}" in mail["body_text"]
    with world.estate.engine.connect() as conn:
        views = {v.subject_kind: v for v in list_alerts(conn)}
        grouped = [v.grouped_under for v in list_alerts(conn) if v.subject_kind == "box"]
    assert grouped == [views["gateway"].id] * 3
    # a later run changes nothing
    world.clock.advance(5 * MIN)
    assert world.run(*children, parent).mails_queued == 0
    # the gateway comes back but one box stays silent: that box is announced on its own
    world.clock.advance(5 * MIN)
    report = world.run(children[0])
    assert report.resolved == 3
    kinds = [(m["notice_kind"], m["alert_id"]) for m in world.mails()[2:]]
    assert sorted(k for k, _ in kinds) == ["fired", "fired", "resolved", "resolved"]
    with world.estate.engine.connect() as conn:
        still = list_alerts(conn)
    assert [(v.subject_kind, v.grouped_under) for v in still] == [("box", None)]
    assert {alert_id for kind, alert_id in kinds if kind == "fired"} == {still[0].id}


def test_nobody_configured_is_recorded(alert_estate: AlertEstate) -> None:
    clock = Clock()
    fake = FakeEvaluate()
    alerts = AlertEngine(
        alert_estate.engine, config_from_text(""), worker_id="w", now=clock.now, evaluate=fake
    )
    with alert_estate.engine.connect() as conn:
        inventory = load_inventory(conn)
    world = World(alert_estate, clock, fake, alerts, inventory)
    world.run(world.condition("leak_night_flow", _water(world)))
    assert world.mails() == []
    with alert_estate.engine.connect() as conn:
        alert_id = list_alerts(conn)[0].id
        events = alert_history(conn, alert_id)
    assert events[-1].kind == "suppressed"
    assert events[-1].data == {"notice": "fired", "why": "no_recipient"}


def test_on_ingest_covers_only_its_channels(world: World) -> None:
    first, second = _water(world, 0), _water(world, 1)
    world.run(world.condition("leak_night_flow", first), world.condition("leak_night_flow", second))
    assert len(world.mails()) == 4
    world.clock.advance(HOUR)
    world.fake.conditions = []
    report = world.alerts.on_ingest([first.id])  # late data: first is fine now
    assert world.fake.calls[-1]["channels"] == frozenset({first.id})
    assert report.errors == []
    world.clock.advance(HOUR)
    world.alerts.on_ingest([first.id])
    with world.estate.engine.connect() as conn:
        open_subjects = [v.subject for v in list_alerts(conn)]
    assert open_subjects == [second]  # not covered: left alone
    assert world.alerts.on_ingest([]).conditions == 0


def test_late_data_opens_an_alert_on_ingest(world: World) -> None:
    subject = _water(world, 2)
    world.fake.conditions = [world.condition("leak_night_flow", subject)]
    report = world.alerts.on_ingest([subject.id])
    assert report.fired == 1
    assert len(world.mails()) == 2


@pytest.fixture
def second_engine(alert_estate: AlertEstate) -> Iterator[Engine]:
    other = make_engine(alert_estate.engine.url)
    try:
        yield other
    finally:
        other.dispose()


def test_two_workers_racing_send_one_mail(alert_estate: AlertEstate, second_engine: Engine) -> None:
    clock = Clock()
    barrier = threading.Barrier(2)
    fake = FakeEvaluate(barrier=barrier)
    config = config_from_text(CONFIG)
    workers = [
        AlertEngine(alert_estate.engine, config, worker_id="w1", now=clock.now, evaluate=fake),
        AlertEngine(second_engine, config, worker_id="w2", now=clock.now, evaluate=fake),
    ]
    with alert_estate.engine.connect() as conn:
        inventory = load_inventory(conn)
    world = World(alert_estate, clock, fake, workers[0], inventory)
    subjects = [_water(world, n) for n in range(3)] + [
        Subject("channel", cid) for cid in alert_estate.temperature
    ]
    conditions = [world.condition("leak_night_flow", s) for s in subjects]
    reports: list[EngineReport] = []
    failures: list[BaseException] = []

    def work(worker: AlertEngine) -> None:
        try:
            reports.append(worker.evaluate())
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            failures.append(exc)

    for round_number in range(4):  # ON, ON, OFF (resolve timer starts), OFF (resolved)
        fake.conditions = conditions if round_number < 2 else []
        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        assert all(r.errors == [] for r in reports)
        clock.advance(31 * MIN)
    assert len(reports) == 8
    with alert_estate.engine.connect() as conn:
        alerts = conn.execute(select(func.count()).select_from(Alert)).scalar_one()
    mails = world.mails()
    assert alerts == len(subjects)
    fired = [m for m in mails if m["notice_kind"] == "fired"]
    assert len(fired) == 2 * len(subjects)  # one per language, not per worker
    assert len({m["dedup_key"] for m in mails}) == len(mails)
    # round 4 resolved them: resolved mails once each too
    assert len([m for m in mails if m["notice_kind"] == "resolved"]) == 2 * len(subjects)


# --- with the real rules: late data through the receiver's sink ------------------------

REAL_CONFIG = """
sender = "wesh@example.org"

[[contacts]]
scope = "*"
emails = ["astreinte@example.org"]

[rules.frost]
hold_for = "0m"
resolve_after = "0m"
"""


def _temperatures(start: datetime, hours: int, value_c: float) -> list[SyncReading]:
    return [
        SyncReading(
            site="site-b1",
            box="box-1",
            path="temp.1",
            at=start + n * HOUR,
            value=value_c,
            unit="°C",
            kind="gauge",
            quality="measured",
            aggregate="hour_mean",
        )
        for n in range(hours)
    ]


def test_late_data_through_the_sink_fires_and_resolves_with_the_real_rules(
    alert_estate: AlertEstate,
) -> None:
    clock = Clock(T0)
    alerts = AlertEngine(
        alert_estate.engine, config_from_text(REAL_CONFIG), worker_id="hq", now=clock.now
    )
    sink = AlertingSink(HqSink(alert_estate.engine, now=clock.now), alerts)
    assert alerts.evaluate().fired == 0
    # five cold hours arrive late, all at once (the SMS link was down)
    result = sink.ingest(_temperatures(T0 - 5 * HOUR, 5, 8.0))
    assert result.inserted == 5
    with alert_estate.engine.connect() as conn:
        views = list_alerts(conn)
    assert [(v.rule, v.subject) for v in views] == [
        ("frost", Subject("channel", alert_estate.temperature[0]))
    ]
    assert views[0].state == "firing"
    assert views[0].place.dwelling_code == "RES-TIL-B1-001"
    with alert_estate.engine.connect() as conn:
        mails = conn.execute(select(MailOutbox)).all()
    assert [m.notice_kind for m in mails] == ["fired"]
    # the same readings again: nothing new
    assert sink.ingest(_temperatures(T0 - 5 * HOUR, 5, 8.0)).inserted == 0
    # warm hours arrive: resolved
    clock.advance(3 * HOUR)
    sink.ingest(_temperatures(T0, 3, 16.0))
    with alert_estate.engine.connect() as conn:
        assert list_alerts(conn) == []
        kinds = [m.notice_kind for m in conn.execute(select(MailOutbox)).all()]
    assert kinds == ["fired", "resolved"]


def test_alerting_sink_runs_the_right_rules_and_never_fails_ingestion(world: World) -> None:
    sink = AlertingSink(HqSink(world.estate.engine, now=world.clock.now), world.alerts)
    sink.ingest_status(
        SiteStatus(
            site="site-b1",
            at=T0,
            boxes_up=3,
            boxes_down=0,
            queue_depth=0,
            sms_sent_today=1,
            sms_budget=100,
            modem_signal_pct=None,
            clock_offset_s=None,
        )
    )
    assert world.fake.calls[-1]["rules"] == AlertingSink.STATUS_RULES
    sink.ingest_alarm(
        SyncAlarm(
            site="site-b1",
            box="box-1",
            channel=None,
            at=T0,
            kind="tic_overload",
            severity="warning",
            message="ADPS",
        )
    )
    assert world.fake.calls[-1]["rules"] == AlertingSink.ALARM_RULES
    world.fake.fail = TransientError("database went away")
    result = sink.ingest(_temperatures(T0 - 2 * HOUR, 2, 20.0))
    assert result.inserted == 2  # stored even though the evaluation failed
    assert world.fake.calls[-1]["channels"] == frozenset({world.estate.temperature[0]})


def test_report_as_json(world: World) -> None:
    report = world.run(world.condition("leak_night_flow", _water(world)))
    data = report.as_json()
    json.dumps(data)
    assert data["fired"] == 1
    assert data["at"] == T0.isoformat()


# --- the engine over SQL decides exactly as the pure state machine ---------------------

ONE_CONTACT = """
sender = "wesh@example.org"

[[contacts]]
scope = "*"
emails = ["astreinte@example.org"]

[[contacts]]
scope = "*"
emails = ["chef@example.org"]
escalation = true

[rules.leak_night_flow]
hold_for = "{hold}m"
resolve_after = "{resolve}m"
reminder_every = "{remind}"
escalate_after = "{escalate}"
"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(
    ops=[(1, "on")] + [(10, "on")] * 18 + [(1, "off")], hold=0, resolve=0, remind=60, escalate=120
)
@example(
    ops=[(1, "on"), (30, "skip"), (30, "ack"), (90, "on"), (5, "off")],
    hold=0,
    resolve=30,
    remind=20,
    escalate=None,
)
@given(
    ops=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=90),
            st.sampled_from(["on", "on", "off", "hold", "skip", "ack"]),
        ),
        max_size=30,
    ),
    hold=st.sampled_from([0, 30, 60]),
    resolve=st.sampled_from([0, 30, 90]),
    remind=st.sampled_from([None, 20, 60]),
    escalate=st.sampled_from([None, 120]),
)
def test_the_engine_mails_what_the_state_machine_decides(
    ops: list[tuple[int, str]], hold: int, resolve: int, remind: int | None, escalate: int | None
) -> None:
    text = ONE_CONTACT.format(
        hold=hold,
        resolve=resolve,
        remind="off" if remind is None else f"{remind}m",
        escalate="off" if escalate is None else f"{escalate}m",
    )
    config = config_from_text(text)
    with tempfile.TemporaryDirectory() as folder:
        sql = make_engine(f"sqlite:///{folder}/hq.sqlite3")
        try:
            migrate(sql)
            estate = build_alert_estate(sql, dwellings=1)
            expected, found = _replay(sql, estate, config, ops)
        finally:
            sql.dispose()
    assert found == expected


def _replay(
    sql: Engine, estate: AlertEstate, config: AlertsConfig, ops: list[tuple[int, str]]
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Run ``ops`` through the engine and through ``state.step``; return both notice lists."""
    clock = Clock()
    fake = FakeEvaluate()
    alerts = AlertEngine(sql, config, worker_id="w", now=clock.now, evaluate=fake, refresh=False)
    with sql.connect() as conn:
        place = load_inventory(conn).place(Subject("channel", estate.water[0]))
    assert place is not None
    subject = Subject("channel", estate.water[0])
    timing = Timing.of(config.policy("leak_night_flow", place))
    record: AlertRecord | None = None
    expected: list[tuple[str, int]] = []
    episodes = 0
    for minutes, verdict in ops:
        clock.advance(minutes * MIN)
        if verdict == "ack":
            if record is not None and record.is_open and record.id is not None:
                record = acknowledge(record, by="m", note=None, now=clock.at).record
                alerts.ack(record.id if record else 0, by="m")
            continue
        level = {"on": Level.ON, "hold": Level.HOLD}.get(verdict)
        cond = None
        if level is not None:
            cond = Condition(
                "leak_night_flow", subject, level, clock.at, place, since=clock.at, value=30.0
            )
        covered = verdict != "skip"
        result = step(record, cond, timing, clock.at, covered=covered)
        if result.record is not None and result.record.id is None:
            episodes += 1
            result = with_alert_id(result, episodes)
        expected += [(n.kind, n.sequence) for n in result.notices]
        record = result.record if result.record is not None and result.record.is_open else None
        fake.conditions = [cond] if cond is not None else []
        fake.rules = frozenset({"leak_night_flow"}) if covered else frozenset({"frost"})
        alerts.evaluate()
    with sql.connect() as conn:
        keys = conn.execute(select(MailOutbox.dedup_key).order_by(MailOutbox.id)).scalars()
        found = [(key.split(":")[1], int(key.split(":")[2])) for key in keys]
    return expected, found


def test_the_default_worker_name_fits_its_columns() -> None:
    name = default_worker_id()
    assert ":" in name
    assert len(name) <= WORKER_ID_LEN == 64
