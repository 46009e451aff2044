"""index_backwards: the gateway's counter_reset / meter_replaced site events explain a decrease."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from tests.hq.alerts.rules_fixtures import HOUR, add_readings, index, make_estate, make_store, utc
from tests.hq.estate import Estate
from wesh.hq.alerts import data
from wesh.hq.alerts.config import default_config
from wesh.hq.alerts.evaluate import evaluate
from wesh.hq.alerts.model import Level, Subject
from wesh.hq.alerts.rules import Params
from wesh.hq.alerts.rules_meter import EVENT_SLACK_US, index_backwards, index_jump
from wesh.hq.ingest import HqSink
from wesh.hq.models import SiteEvent
from wesh.hq.timeutil import HOUR_US, to_epoch_us
from wesh.sync.sink import SyncAlarm

NOW = utc(2026, 1, 20, 10, 30)
START = utc(2026, 1, 19, 10)
END = utc(2026, 1, 20, 11)  # hourly readings up to the 10:00 hour
DROP = utc(2026, 1, 20, 7)  # the hour whose reading is the new meter's index
ELECTRICITY = "tic.1.index.base"
_KEYS = itertools.count()


# ----------------------------------------------------------------------------- pure


def _params(_subject: Subject) -> dict[str, float]:
    return {"lookback_h": 24, "tolerance": 0}


PARAMS: Params = _params  # type: ignore[assignment]
PREVIOUS_US = to_epoch_us(DROP - HOUR)
AT_US = to_epoch_us(DROP)


def _judge(*event_times_us: int) -> set[Subject]:
    found = index_backwards(
        NOW,
        decreases=[(7, PREVIOUS_US, 5_000_000.0, AT_US, 120.0)],
        events={7: sorted(event_times_us)} if event_times_us else {},
        units={7: "Wh"},
        params=PARAMS,
    )
    return {f.subject for f in found if f.level is Level.ON}


@pytest.mark.parametrize(
    ("offset_us", "explained"),
    [
        (-2 * HOUR_US, False),  # before the previous reading
        (-HOUR_US, False),  # at the previous reading: it was still the old index
        (-HOUR_US + 1, True),
        (0, True),  # at the lower reading
        (EVENT_SLACK_US - 1, True),  # late in the lower reading's hour
        (EVENT_SLACK_US, False),
        (3 * HOUR_US, False),
    ],
)
def test_an_event_explains_a_decrease_from_the_previous_reading_to_an_hour_after(
    offset_us: int, explained: bool
) -> None:
    assert _judge(AT_US + offset_us) == (set() if explained else {Subject("channel", 7)})


def test_without_any_event_a_decrease_is_on() -> None:
    assert _judge() == {Subject("channel", 7)}


# ----------------------------------------------------------------------------- SQL


@dataclass
class Store:
    engine: Engine
    estate: Estate

    def channel(self, dwelling: str, path: str = ELECTRICITY) -> int:
        return self.estate.channel(dwelling, path)

    def event(
        self,
        kind: str,
        at: datetime,
        *,
        dwelling: str = "B1-01",
        path: str = ELECTRICITY,
        resolved: bool = True,
        site_id: str = "site-B1",
    ) -> None:
        """Store a site event as HqSink does: box_ref and path always, ids when resolved."""
        box_ref = f"box-{dwelling}"
        with self.engine.begin() as conn:
            conn.execute(
                insert(SiteEvent).values(
                    dedup_key=f"test-{next(_KEYS)}",
                    site_id=site_id,
                    box_ref=box_ref,
                    channel_path=path,
                    box_id=self.estate.boxes["site-B1", box_ref] if resolved else None,
                    channel_id=self.channel(dwelling, path) if resolved else None,
                    at=at,
                    kind=kind,
                    severity="warning",
                    message=f"{kind}: index 5000000 -> 120 Wh on {box_ref}/{path}",
                    received_at=at,
                    handled_at=None,
                )
            )

    def backwards(self) -> set[Subject]:
        with self.engine.connect() as conn:
            evaluation = evaluate(conn, default_config(), NOW, rules=["index_backwards"])
        assert not evaluation.errors
        return {
            c.subject
            for c in evaluation.conditions
            if c.rule == "index_backwards" and c.level is Level.ON
        }


def build(engine: Engine) -> Store:
    """Two dwellings; B1-01's electricity meter is replaced in the 07:00 hour (hour_last)."""
    estate = make_estate(engine, dwellings=2)
    replaced = [
        (at, 5_000_000.0 + value if at < DROP else value - 100_000.0 + 120.0)
        for at, value in index(START, END, 300.0)
    ]
    add_readings(engine, estate.channel("B1-01", ELECTRICITY), replaced, aggregate="hour_last")
    add_readings(
        engine,
        estate.channel("B1-02", ELECTRICITY),
        index(START, END, 300.0),
        aggregate="hour_last",
    )
    return Store(engine, estate)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        yield build(engine)
    finally:
        engine.dispose()


def test_the_decrease_alone_is_on(store: Store) -> None:
    assert store.backwards() == {Subject("channel", store.channel("B1-01"))}


@pytest.mark.parametrize("kind", ["meter_replaced", "counter_reset"])
@pytest.mark.parametrize("resolved", [True, False])
def test_a_site_event_of_the_channel_explains_it(store: Store, kind: str, resolved: bool) -> None:
    store.event(kind, DROP + timedelta(minutes=42), resolved=resolved)  # in the 07:00 hour
    assert store.backwards() == set()


@pytest.mark.parametrize(
    "where",
    [
        {"dwelling": "B1-02"},  # another box
        {"path": "impulsion.1.index"},  # another channel of the box
        {"dwelling": "B1-02", "resolved": False},
        {"path": "impulsion.1.index", "resolved": False},
        {"site_id": "site-B9", "resolved": False},  # same box_ref and path, another site
    ],
)
def test_a_site_event_of_another_channel_does_not(store: Store, where: dict[str, object]) -> None:
    store.event("meter_replaced", DROP + timedelta(minutes=42), **where)  # type: ignore[arg-type]
    assert store.backwards() == {Subject("channel", store.channel("B1-01"))}


@pytest.mark.parametrize(
    ("kind", "at"),
    [
        ("meter_replaced", DROP - 2 * HOUR),  # before the previous reading
        ("counter_reset", DROP + HOUR + timedelta(minutes=5)),  # after the lower reading's hour
        ("tic_overload", DROP + timedelta(minutes=42)),  # not a meter event
        ("index_jump", DROP + timedelta(minutes=42)),
    ],
)
def test_a_site_event_far_in_time_or_of_another_kind_does_not(
    store: Store, kind: str, at: datetime
) -> None:
    store.event(kind, at)
    store.event(kind, at, resolved=False)
    assert store.backwards() == {Subject("channel", store.channel("B1-01"))}


def test_the_alarm_as_the_sync_receiver_stores_it_explains_it(store: Store) -> None:
    sink = HqSink(store.engine, now=lambda: NOW)
    at = (DROP + timedelta(minutes=42, seconds=31)).replace(second=0)  # minutes travel
    message = "meter replaced: index 5000000 -> 120 Wh on box-B1-01/tic.1.index.base"
    for box in ("box-B1-02", "box-B1-01"):  # weshd names the channel "<box>/<path>"
        assert store.backwards() == {Subject("channel", store.channel("B1-01"))}
        sink.ingest_alarm(
            SyncAlarm(
                "site-B1", box, f"{box}/{ELECTRICITY}", at, "meter_replaced", "warning", message
            )
        )
    assert store.backwards() == set()


def test_meter_event_times_reads_both_tables_per_channel(store: Store) -> None:
    one, two = store.channel("B1-01"), store.channel("B1-02")
    at = DROP + timedelta(minutes=42)
    store.event("meter_replaced", at)
    store.event("counter_reset", at + timedelta(minutes=1), resolved=False)
    store.event("counter_reset", at, dwelling="B1-02", resolved=False)
    store.event("tic_overload", at)
    with store.engine.connect() as conn:
        times = data.meter_event_times(
            conn, [one, two], lo_us=to_epoch_us(START), hi_us=to_epoch_us(NOW)
        )
        nothing = data.meter_event_times(
            conn, [one], lo_us=to_epoch_us(NOW), hi_us=to_epoch_us(NOW) + HOUR_US
        )
    end_of_minute = to_epoch_us(at) + 60_000_000 - 1  # an ALARM's time is to the minute
    assert times == {one: [end_of_minute, end_of_minute + 60_000_000], two: [end_of_minute]}
    assert nothing == {}


@pytest.mark.parametrize("engine_url", ["mariadb", "postgresql"], indirect=True)
def test_on_server_engines(engine_url: str) -> None:
    engine = make_store(engine_url)
    try:
        store = build(engine)
        assert store.backwards() == {Subject("channel", store.channel("B1-01"))}
        store.event("meter_replaced", DROP + timedelta(minutes=42), dwelling="B1-02")
        store.event(
            "counter_reset", DROP + timedelta(minutes=42), site_id="site-B9", resolved=False
        )
        assert store.backwards() == {Subject("channel", store.channel("B1-01"))}
        store.event("counter_reset", DROP + timedelta(minutes=42), resolved=False)
        assert store.backwards() == set()
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- index_jump


def _jump_params(_subject: Subject) -> dict[str, float]:
    return {"lookback_h": 24, "electricity_kwh_h": 36}


JUMP_PARAMS: Params = _jump_params  # type: ignore[assignment]


def _jumps(*event_times_us: int, spanned_h: float = 1.0) -> set[Subject]:
    found = index_jump(
        NOW,
        hours=[(7, AT_US, 45_000.0)],  # 45 kWh in the hour: above 36 kWh/h
        kinds={7: ("electricity", "Wh")},
        params=JUMP_PARAMS,
        events={7: sorted(event_times_us)} if event_times_us else {},
        spanned_h={(7, AT_US): spanned_h},
    )
    return {f.subject for f in found if f.level is Level.ON}


@pytest.mark.parametrize(
    ("offset_us", "explained"),
    [
        (-2 * HOUR_US, False),
        (-HOUR_US, False),  # at the previous reading
        (-HOUR_US + 1, True),
        (42 * 60_000_000, True),  # the alarm, minutes into the hour
        (EVENT_SLACK_US - 1, True),
        (EVENT_SLACK_US, False),
    ],
)
def test_an_event_explains_the_step_of_an_hour(offset_us: int, explained: bool) -> None:
    assert _jumps(AT_US + offset_us) == (set() if explained else {Subject("channel", 7)})


def test_without_any_event_a_jump_is_on_and_a_longer_step_widens_the_window() -> None:
    assert _jumps() == {Subject("channel", 7)}
    assert _jumps(AT_US - 2 * HOUR_US) == {Subject("channel", 7)}
    assert _jumps(AT_US - 2 * HOUR_US, spanned_h=3) == set()


def build_jump(engine: Engine) -> Store:
    """B1-01's meter is replaced in the 07:00 hour by one whose first index is about 46 kWh."""
    estate = make_estate(engine, dwellings=2)
    replaced = [
        (at, 5_000_000.0 + value if at < DROP else value - 60_000.0)
        for at, value in index(START, END, 300.0)
    ]
    add_readings(engine, estate.channel("B1-01", ELECTRICITY), replaced, aggregate="hour_last")
    add_readings(
        engine,
        estate.channel("B1-02", ELECTRICITY),
        index(START, END, 300.0),
        aggregate="hour_last",
    )
    return Store(engine, estate)


def jumps(store: Store) -> set[Subject]:
    with store.engine.connect() as conn:
        evaluation = evaluate(conn, default_config(), NOW, rules=["index_jump"])
    assert not evaluation.errors
    return {
        c.subject for c in evaluation.conditions if c.rule == "index_jump" and c.level is Level.ON
    }


@pytest.mark.parametrize("kind", ["meter_replaced", "counter_reset"])
@pytest.mark.parametrize("resolved", [True, False])
def test_a_site_event_explains_the_jump_of_a_new_meter(
    tmp_path: Path, kind: str, resolved: bool
) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        store = build_jump(engine)
        assert jumps(store) == {Subject("channel", store.channel("B1-01"))}
        store.event(kind, DROP + timedelta(minutes=42), dwelling="B1-02")  # another channel
        store.event("tic_overload", DROP + timedelta(minutes=42))  # another kind
        store.event(kind, DROP + 3 * HOUR)  # far in time
        assert jumps(store) == {Subject("channel", store.channel("B1-01"))}
        store.event(kind, DROP + timedelta(minutes=42), resolved=resolved)
        assert jumps(store) == set()
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine_url", ["mariadb", "postgresql"], indirect=True)
def test_a_site_event_explains_the_jump_on_server_engines(engine_url: str) -> None:
    engine = make_store(engine_url)
    try:
        store = build_jump(engine)
        assert jumps(store) == {Subject("channel", store.channel("B1-01"))}
        store.event("counter_reset", DROP + timedelta(minutes=42), resolved=False)
        assert jumps(store) == set()
    finally:
        engine.dispose()
