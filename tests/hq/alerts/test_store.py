"""Alert persistence on SQLite, MariaDB and PostgreSQL: episodes, races, history, mutes."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from tests.hq.alerts.conftest import PLACE, T0, AlertEstate
from wesh.errors import UsageError
from wesh.hq.alerts.model import Subject
from wesh.hq.alerts.state import AlertRecord, Event
from wesh.hq.alerts.store import (
    MuteView,
    StaleAlert,
    add_events,
    add_mute,
    alert_history,
    children_of,
    get_alert,
    insert_alert,
    lift_mute,
    list_alerts,
    list_mutes,
    load_alert,
    load_open,
    mute_covers,
    open_alerts,
    open_key,
    recent_events,
    update_alert,
)

HOUR = timedelta(hours=1)
SUBJECT = Subject("channel", 7)


def _record(**changes: object) -> AlertRecord:
    base = AlertRecord(
        id=None,
        rule="leak_night_flow",
        subject=SUBJECT,
        state="firing",
        severity="warning",
        place=PLACE,
        started_at=T0 - HOUR,
        opened_at=T0,
        fired_at=T0,
        value=42.5,
        unit="L/h",
        threshold=20.0,
        details={"nights": 3, "window": "00:00-06:00"},
        last_seen_on_at=T0,
        notified_at=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_open_key_is_stable_and_fits() -> None:
    key = open_key("frost", Subject("channel", 12))
    assert key == open_key("frost", Subject("channel", 12))
    assert key != open_key("frost", Subject("box", 12))
    assert len(key) == 64


def test_insert_then_load_round_trips(store: Engine) -> None:
    with store.begin() as conn:
        alert_id = insert_alert(conn, _record(), now=T0, worker="w1")
    with store.connect() as conn:
        loaded = load_open(conn, "leak_night_flow", SUBJECT)
        assert loaded == _record(id=alert_id)
        assert load_alert(conn, alert_id) == loaded
        assert open_alerts(conn) == [loaded]
        assert open_alerts(conn, rules={"frost"}) == []
        view = get_alert(conn, alert_id)
    assert view is not None
    assert view.place == PLACE
    assert view.updated_by == "w1"
    assert view.subject == SUBJECT
    as_json = view.as_json()
    json.dumps(as_json)
    assert as_json["place"]["residence_code"] == "RES-TIL"
    assert as_json["fired_at"] == T0.isoformat()


def test_a_second_open_episode_is_refused(store: Engine) -> None:
    with store.begin() as conn:
        insert_alert(conn, _record(), now=T0, worker="w1")
    with pytest.raises(StaleAlert), store.begin() as conn:
        insert_alert(conn, _record(state="pending"), now=T0, worker="w2")
    with store.connect() as conn:
        assert len(open_alerts(conn)) == 1


def test_update_is_optimistic(store: Engine) -> None:
    with store.begin() as conn:
        alert_id = insert_alert(conn, _record(), now=T0, worker="w1")
    with store.connect() as conn:
        seen = load_alert(conn, alert_id)
    assert seen is not None
    with store.begin() as conn:
        first = update_alert(conn, dataclasses.replace(seen, reminders_sent=1), now=T0, worker="w1")
    assert first.version == 1
    with pytest.raises(StaleAlert), store.begin() as conn:  # same version again: lost race
        update_alert(conn, dataclasses.replace(seen, reminders_sent=2), now=T0, worker="w2")
    with store.connect() as conn:
        assert load_alert(conn, alert_id) == dataclasses.replace(seen, reminders_sent=1, version=1)


def test_resolving_frees_the_key_for_a_new_episode(store: Engine) -> None:
    with store.begin() as conn:
        alert_id = insert_alert(conn, _record(), now=T0, worker=None)
        record = load_alert(conn, alert_id)
        assert record is not None
        update_alert(
            conn,
            dataclasses.replace(record, state="resolved", resolved_at=T0 + HOUR),
            now=T0 + HOUR,
            worker=None,
        )
        assert load_open(conn, "leak_night_flow", SUBJECT) is None
        second = insert_alert(conn, _record(opened_at=T0 + 2 * HOUR), now=T0, worker=None)
    assert second != alert_id
    with store.connect() as conn:
        assert [v.id for v in list_alerts(conn, states=None)] == [second, alert_id]
        assert [v.id for v in list_alerts(conn)] == [second]
        assert [v.id for v in list_alerts(conn, states=["resolved"])] == [alert_id]


def test_history_and_children(store: Engine) -> None:
    with store.begin() as conn:
        parent = insert_alert(
            conn, _record(rule="gateway_silent", subject=Subject("gateway", 1)), now=T0, worker=None
        )
        child = insert_alert(
            conn,
            _record(rule="box_silent", subject=Subject("box", 3), grouped_under=parent),
            now=T0,
            worker=None,
        )
        add_events(
            conn,
            child,
            [
                Event("pending", T0),
                Event("grouped", T0, {"parent": parent}),
                Event("acked", T0 + HOUR, note="n" * 2000, actor="marie"),
            ],
            actor="worker-1",
        )
    with store.connect() as conn:
        assert [c.id for c in children_of(conn, parent)] == [child]
        history = alert_history(conn, child)
    assert [e.kind for e in history] == ["pending", "grouped", "acked"]
    assert history[1].data == {"parent": parent}
    assert history[0].actor == "worker-1"
    assert history[2].actor == "marie"
    assert history[2].note is not None
    assert len(history[2].note) == 1000  # capped, not refused
    json.dumps([e.as_json() for e in history])
    with store.connect() as conn:
        assert [e.kind for e in recent_events(conn)] == ["pending", "grouped", "acked"]
        assert [e.kind for e in recent_events(conn, limit=2)] == ["grouped", "acked"]
        assert [e.kind for e in recent_events(conn, since=T0 + HOUR)] == ["acked"]
        with pytest.raises(UsageError):
            recent_events(conn, limit=0)


def test_list_alerts_filters(alert_estate: AlertEstate) -> None:
    store = alert_estate.engine
    place = dataclasses.replace(
        PLACE,
        agency_id=alert_estate.agency,
        residence_id=alert_estate.residence,
        building_id=alert_estate.building,
        dwelling_id=alert_estate.dwellings[0],
    )
    with store.begin() as conn:
        first = insert_alert(conn, _record(place=place), now=T0, worker=None)
        second = insert_alert(
            conn,
            _record(rule="frost", subject=Subject("box", 2), place=place, started_at=T0),
            now=T0,
            worker=None,
        )
    with store.connect() as conn:
        assert [v.id for v in list_alerts(conn, rule="frost")] == [second]
        assert [v.id for v in list_alerts(conn, scope=("residence", alert_estate.residence))] == [
            second,
            first,
        ]
        assert list_alerts(conn, scope=("residence", alert_estate.residence + 100)) == []
        assert [v.id for v in list_alerts(conn, scope=("box", 2))] == [second]
        assert [v.id for v in list_alerts(conn, limit=1)] == [second]
        with pytest.raises(UsageError):
            list_alerts(conn, scope=("planet", 1))
        with pytest.raises(UsageError):
            list_alerts(conn, states=["exploded"])


def test_mutes(store: Engine) -> None:
    with store.begin() as conn:
        forever = add_mute(
            conn,
            rule=None,
            scope_kind="residence",
            scope_id=1,
            until=None,
            by="marie",
            reason="travaux",
            now=T0,
        )
        brief = add_mute(
            conn,
            rule="frost",
            scope_kind="box",
            scope_id=5,
            until=T0 + HOUR,
            by="paul",
            reason=None,
            now=T0,
        )
        with pytest.raises(UsageError):
            add_mute(
                conn,
                rule=None,
                scope_kind="planet",
                scope_id=1,
                until=None,
                by="x",
                reason=None,
                now=T0,
            )
        with pytest.raises(UsageError):
            add_mute(
                conn, rule=None, scope_kind="box", scope_id=1, until=T0, by="x", reason=None, now=T0
            )
    with store.connect() as conn:
        assert [m.id for m in list_mutes(conn, now=T0)] == [brief, forever]
        assert [m.id for m in list_mutes(conn, now=T0 + 2 * HOUR)] == [forever]
    with store.begin() as conn:
        assert lift_mute(conn, forever, by="marie", now=T0 + HOUR) is True
        assert lift_mute(conn, forever, by="marie", now=T0 + HOUR) is False
        assert lift_mute(conn, 999, by="marie", now=T0 + HOUR) is False
    with store.connect() as conn:
        assert list_mutes(conn, now=T0 + 2 * HOUR) == []
        every = list_mutes(conn, now=T0 + 2 * HOUR, active_only=False)
    assert {m.id for m in every} == {forever, brief}
    json.dumps([m.as_json() for m in every])


def test_mute_covers() -> None:
    def mute(kind: str, sid: int, rule: str | None = None, **extra: object) -> MuteView:
        values: dict[str, object] = {
            "id": 1,
            "rule": rule,
            "scope_kind": kind,
            "scope_id": sid,
            "until_at": None,
            "created_by": "m",
            "created_at": T0,
            "reason": None,
            "lifted_at": None,
            "lifted_by": None,
        }
        values.update(extra)
        return MuteView(**values)  # type: ignore[arg-type]

    def covers(m: MuteView, *, rule: str = "frost", now: object = T0) -> bool:
        return mute_covers(
            m,
            rule=rule,
            alert_id=77,
            subject=Subject("channel", 7),
            place=PLACE,
            box_id=5,
            gateway_id=9,
            now=now,  # type: ignore[arg-type]
        )

    assert covers(mute("residence", PLACE.residence_id))
    assert covers(mute("agency", PLACE.agency_id))
    assert covers(mute("dwelling", 12))
    assert covers(mute("box", 5))
    assert covers(mute("gateway", 9))
    assert covers(mute("channel", 7))
    assert covers(mute("alert", 77))
    assert not covers(mute("alert", 78))
    assert not covers(mute("box", 6))
    assert covers(mute("box", 5, rule="frost"))
    assert not covers(mute("box", 5, rule="frost"), rule="overheating")
    assert not covers(mute("box", 5, until_at=T0))  # expired
    assert not covers(mute("box", 5, lifted_at=T0))
    assert covers(mute("box", 5, lifted_at=T0 + HOUR))
