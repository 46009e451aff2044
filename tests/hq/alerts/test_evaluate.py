"""evaluate() over a real store: every rule family on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text, update

from tests.hq.alerts.rules_fixtures import (
    HOUR,
    add_readings,
    add_site_event,
    add_tenancy,
    fill_box,
    gauge,
    index,
    make_estate,
    make_store,
    set_link,
    utc,
)
from tests.hq.estate import Estate, add_meter_event
from wesh.errors import UsageError, WeshError
from wesh.hq.alerts import data
from wesh.hq.alerts.config import ALL_RULES, config_from_text, default_config
from wesh.hq.alerts.data import InventoryCache
from wesh.hq.alerts.evaluate import Evaluation, evaluate
from wesh.hq.alerts.model import Level, Subject
from wesh.hq.alerts.rules_leak import night_spans
from wesh.hq.models import Box, Channel, Gateway
from wesh.hq.timeutil import from_epoch_us

NOW = utc(2026, 1, 20, 10, 30)
START = utc(2026, 1, 15, 10)
END = utc(2026, 1, 20, 11)  # readings up to the 10:00 hour


@dataclass
class Scenario:
    engine: Engine
    estate: Estate

    def channel(self, dwelling: str, path: str) -> Subject:
        return Subject("channel", self.estate.channel(dwelling, path))

    def dwelling(self, code: str) -> Subject:
        return Subject("dwelling", self.estate.dwellings[code])

    def box(self, code: str) -> Subject:
        return Subject("box", self.estate.boxes["site-B1", f"box-{code}"])


def build_scenario(engine: Engine) -> Scenario:
    """Six dwellings, each with one thing wrong (B1-01 to B1-06), and a backed-up gateway."""
    estate = make_estate(engine, dwellings=6)
    s = Scenario(engine, estate)
    # B1-01: 30 L/h of cold water, day and night
    fill_box(engine, estate, "B1-01", START, END, cold_water=index(START, END, 30.0))
    # B1-02: 8 °C for the last five hours
    fill_box(
        engine,
        estate,
        "B1-02",
        START,
        END,
        temperature=gauge(START, END, lambda at: 8.0 if at >= END - 5 * HOUR else 20.0),
    )
    # B1-03: the electricity index falls by 5 kWh three hours ago
    drop_at = END - 3 * HOUR
    fallen = [(at, v - 5000 if at >= drop_at else v) for at, v in index(START, END, 300.0)]
    fill_box(engine, estate, "B1-03", START, END, electricity=fallen)
    # B1-04: the box went silent five hours ago
    fill_box(engine, estate, "B1-04", START, END - 5 * HOUR)
    # B1-05: 2 kWh an hour (48 kWh a day), and the TIC meter reports an overload
    fill_box(engine, estate, "B1-05", START, END, electricity=index(START, END, 2000.0))
    add_site_event(
        engine,
        site_id="site-B1",
        at=NOW - timedelta(minutes=20),
        kind="tic_overload",
        box_id=estate.boxes["site-B1", "box-B1-05"],
        channel_id=estate.channel("B1-05", "tic.1.index.base"),
        message="ADPS 45",
    )
    # B1-06: vacant; hot water at 45 °C; 80 % humidity; a 150 m³ step two hours ago
    fill_box(
        engine,
        estate,
        "B1-06",
        START,
        END,
        hot_water_probe=gauge(START, END, lambda at: 45.0 if at >= END - 3 * HOUR else 58.0),
        humidity=gauge(START, END, 80.0),
        cold_water=index(
            START,
            END,
            lambda at: 150_000.0 if at == END - 2 * HOUR else (5.0 if at.hour % 3 else 0),
        ),
    )
    for code in ("B1-01", "B1-02", "B1-03", "B1-04", "B1-05"):
        add_tenancy(engine, estate.dwellings[code], date(2020, 1, 1))
    add_tenancy(engine, estate.dwellings["B1-06"], date(2020, 1, 1), date(2025, 12, 31))
    set_link(
        engine,
        "site-B1",
        seen=NOW - timedelta(minutes=10),
        status={
            "boxes_up": 5,
            "boxes_down": 0,
            "queue_depth": 5000,
            "sms_sent_today": 10,
            "sms_budget": 50,
        },
        status_at=NOW - timedelta(minutes=15),
    )
    return s


def expected_on(s: Scenario) -> set[tuple[str, Subject]]:
    gateway = Subject("gateway", 1)
    return {
        ("box_silent", s.box("B1-04")),
        ("leak_continuous_flow", s.channel("B1-01", "impulsion.1.index")),
        ("leak_night_flow", s.channel("B1-01", "impulsion.1.index")),
        ("leak_burst", s.channel("B1-06", "impulsion.1.index")),
        ("frost", s.channel("B1-02", "temp.1")),
        ("hot_water_cold", s.channel("B1-06", "temp.ecs")),
        ("humidity_high", s.channel("B1-06", "temp.2")),
        ("consumption_high", s.dwelling("B1-05")),
        ("consumption_above_average", s.dwelling("B1-05")),
        ("consumption_above_average", s.dwelling("B1-01")),
        ("vacant_consumption", s.dwelling("B1-06")),
        ("index_backwards", s.channel("B1-03", "tic.1.index.base")),
        ("index_jump", s.channel("B1-06", "impulsion.1.index")),
        ("tic_overload", s.channel("B1-05", "tic.1.index.base")),
        ("queue_backlog", gateway),
    }


def on(evaluation: Evaluation) -> set[tuple[str, Subject]]:
    return {(c.rule, c.subject) for c in evaluation.conditions if c.level is Level.ON}


def run(engine: Engine, **kwargs: object) -> Evaluation:
    config = kwargs.pop("config", default_config())
    now = kwargs.pop("now", NOW)
    with engine.connect() as conn:
        return evaluate(conn, config, now, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        yield build_scenario(engine)
    finally:
        engine.dispose()


def test_every_family_on_every_engine(engine_url: str) -> None:
    engine = make_store(engine_url)
    try:
        s = build_scenario(engine)
        evaluation = run(engine)
        assert evaluation.errors == []
        assert evaluation.rules == frozenset(ALL_RULES)
        assert evaluation.subjects is None
        assert on(evaluation) == expected_on(s)
        holds = [(c.rule, c.subject) for c in evaluation.conditions if c.level is Level.HOLD]
        assert holds == []
    finally:
        engine.dispose()


def test_conditions_carry_place_values_and_grouping(scenario: Scenario) -> None:
    evaluation = run(scenario.engine)
    found = {(c.rule, c.subject): c for c in evaluation.conditions}
    leak = found["leak_night_flow", scenario.channel("B1-01", "impulsion.1.index")]
    assert leak.place.dwelling_code == "B1-01" and leak.place.building_code == "B1"
    assert leak.place.residence_code == "RES1" and leak.place.agency_code == "AG"
    assert leak.place.channel_kind == "cold_water" and leak.place.site_id == "site-B1"
    assert leak.value == 30.0 and leak.unit == "L/h" and leak.threshold == 20
    assert leak.severity == "warning" and leak.since == utc(2026, 1, 19, 23)
    assert leak.observed_at == utc(2026, 1, 20, 5)  # the data: the night that ended at 06:00
    box = found["box_silent", scenario.box("B1-04")]
    assert box.parent == Subject("gateway", 1) and box.parent_rule == "gateway_silent"
    assert box.severity == "warning" and box.value == 5.5
    assert box.since == END - 6 * HOUR
    frost = found["frost", scenario.channel("B1-02", "temp.1")]
    assert frost.severity == "critical" and frost.value == 8.0
    assert frost.since == END - 5 * HOUR
    backwards = found["index_backwards", scenario.channel("B1-03", "tic.1.index.base")]
    assert backwards.value == 4700.0 and backwards.unit == "Wh"
    vacant = found["vacant_consumption", scenario.dwelling("B1-06")]
    assert vacant.details["kind"] == "electricity" and vacant.value == 7.2
    assert vacant.place.dwelling_code == "B1-06" and vacant.place.channel_path is None


def test_incremental_evaluation_judges_only_what_the_channels_touch(scenario: Scenario) -> None:
    cold = scenario.estate.channel("B1-01", "impulsion.1.index")
    evaluation = run(scenario.engine, channels=[cold])
    assert evaluation.subjects == {Subject("channel", cold), scenario.dwelling("B1-01")}
    assert not evaluation.rules & {"box_silent", "link_silent", "tic_overload", "queue_backlog"}
    assert "leak_night_flow" in evaluation.rules
    assert on(evaluation) == {
        ("leak_continuous_flow", Subject("channel", cold)),
        ("leak_night_flow", Subject("channel", cold)),
        ("consumption_above_average", scenario.dwelling("B1-01")),
    }


def test_rules_argument_limits_the_evaluation(scenario: Scenario) -> None:
    evaluation = run(scenario.engine, rules=["frost", "box_silent"])
    assert evaluation.rules == {"frost", "box_silent"}
    assert {rule for rule, _ in on(evaluation)} == {"frost", "box_silent"}
    with pytest.raises(UsageError, match="unknown rule"):
        run(scenario.engine, rules=["no_such_rule"])
    with pytest.raises(UsageError, match="naive"):
        run(scenario.engine, now=datetime(2026, 1, 20, 10))  # noqa: DTZ001


def test_scope_overrides_and_disabled_rules(scenario: Scenario) -> None:
    config = config_from_text(
        """
[rules.box_silent]
enabled = false

[[overrides]]
scope = "dwelling:B1-02"
rule = "frost"
below_c = 5

[[overrides]]
scope = "building:B1"
rule = "leak_night_flow"
severity = "critical"
"""
    )
    evaluation = run(scenario.engine, config=config)
    rules = {rule for rule, _ in on(evaluation)}
    assert "box_silent" not in evaluation.rules and "box_silent" not in rules
    assert "frost" not in rules  # 8 °C is above B1-02's own 5 °C threshold
    (leak,) = [c for c in evaluation.conditions if c.rule == "leak_night_flow"]
    assert leak.severity == "critical"


def test_an_override_may_enable_a_rule_for_one_scope_only(scenario: Scenario) -> None:
    config = config_from_text(
        """
[rules.frost]
enabled = false

[[overrides]]
scope = "residence:RES1"
rule = "frost"
enabled = true
"""
    )
    assert "frost" in {rule for rule, _ in on(run(scenario.engine, config=config))}


def test_a_failing_family_is_reported_and_the_others_run(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise WeshError("night flows unavailable", where="rollup_hour")

    monkeypatch.setattr(data, "night_flows", broken)
    evaluation = run(scenario.engine)
    assert len(evaluation.errors) == 1 and "leak_night_flow" in evaluation.errors[0]
    assert "night flows unavailable" in evaluation.errors[0]
    assert not evaluation.rules & {"leak_night_flow", "leak_continuous_flow", "leak_burst"}
    assert ("frost", scenario.channel("B1-02", "temp.1")) in on(evaluation)


def test_a_decrease_explained_by_a_meter_event_is_not_an_alert(scenario: Scenario) -> None:
    channel = scenario.estate.channel("B1-03", "tic.1.index.base")
    add_meter_event(
        scenario.engine,
        channel,
        END - 3 * HOUR - timedelta(minutes=30),
        old_index=1,
        new_index=2,
        kind="reset",
    )
    assert ("index_backwards", Subject("channel", channel)) not in on(run(scenario.engine))


def test_without_any_tenancy_vacancy_is_not_judged(tmp_path: Path) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=2)
        for code in ("B1-01", "B1-02"):
            fill_box(engine, estate, code, START, END)
        assert "vacant_consumption" not in {rule for rule, _ in on(run(engine))}
        add_tenancy(engine, estate.dwellings["B1-01"], date(2020, 1, 1))
        assert ("vacant_consumption", Subject("dwelling", estate.dwellings["B1-02"])) in on(
            run(engine)
        )
    finally:
        engine.dispose()


def test_a_healthy_estate_gives_nothing(tmp_path: Path) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=6)
        for code in estate.dwellings:
            fill_box(engine, estate, code, START, END)
            add_tenancy(engine, estate.dwellings[code], date(2020, 1, 1))
        set_link(engine, "site-B1", seen=NOW - timedelta(minutes=5))
        evaluation = run(engine)
        assert evaluation.conditions == [] and evaluation.errors == []
        assert Counter(evaluation.rules) == Counter(ALL_RULES)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("now", "hours"),
    [(utc(2026, 3, 29, 10), 5), (utc(2026, 10, 25, 10), 7), (utc(2026, 1, 20, 10), 6)],
)
def test_night_window_in_sql_follows_paris_time(tmp_path: Path, now: datetime, hours: int) -> None:
    """Flow only inside the Paris nights: a UTC-shifted window would see dry hours."""
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=1)
        spans = night_spans(now, start_h=0, end_h=6, count=4)
        assert (spans[0][1] - spans[0][0]) // 3_600_000_000 == hours
        inside = [(from_epoch_us(lo), from_epoch_us(hi)) for lo, hi in spans]

        def flow(at: datetime) -> float:
            return 40.0 if any(lo <= at < hi for lo, hi in inside) else 0.0

        start = now - timedelta(days=5)
        cold = estate.channel("B1-01", "impulsion.1.index")
        add_readings(engine, cold, index(start, now, flow))
        evaluation = run(engine, now=now, rules=["leak_continuous_flow", "leak_night_flow"])
        found = {c.rule: c for c in evaluation.conditions}
        assert found["leak_continuous_flow"].level is Level.ON
        assert found["leak_continuous_flow"].value == 4
        assert found["leak_night_flow"].value == 40.0
        assert found["leak_night_flow"].details["hours"] == hours
    finally:
        engine.dispose()


def test_silence_levels_in_sql(scenario: Scenario) -> None:
    engine = scenario.engine
    later = NOW + timedelta(hours=4)  # every box is now silent, the link too
    evaluation = run(
        engine, now=later, rules=["channel_silent", "box_silent", "gateway_silent", "link_silent"]
    )
    assert on(evaluation) == {("link_silent", Subject("site", 1))}
    # B1-04 was silent long before the others: its box alert holds (grouped), no new one
    holds = {(c.rule, c.subject) for c in evaluation.conditions if c.level is Level.HOLD}
    assert holds == {("box_silent", scenario.box("B1-04"))}
    set_link_seen = NOW + timedelta(hours=3, minutes=50)
    with engine.begin() as conn:
        conn.execute(update(Gateway).values(last_seen_at=set_link_seen))
    evaluation = run(
        engine, now=later, rules=["channel_silent", "box_silent", "gateway_silent", "link_silent"]
    )
    assert on(evaluation) == {("gateway_silent", Subject("gateway", 1))}
    holds = {(c.rule, c.subject) for c in evaluation.conditions if c.level is Level.HOLD}
    assert holds == {("box_silent", scenario.box("B1-04"))}


def test_inventory_cache_reloads_when_the_inventory_changes(scenario: Scenario) -> None:
    cache = InventoryCache()
    with scenario.engine.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first
    with scenario.engine.begin() as conn:
        box = scenario.estate.boxes["site-B1", "box-B1-01"]
        conn.execute(
            insert(Channel).values(box_id=box, path="temp.9", kind="temperature", is_index=False)
        )
    with scenario.engine.connect() as conn:
        second = cache.get(conn)
    assert second is not first and len(second.channels) == len(first.channels) + 1
    assert Box.__tablename__ == "box"


def test_an_sql_error_in_one_family_leaves_the_transaction_usable(
    engine_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL aborts a transaction on error: the family runs in a savepoint there."""
    engine = make_store(engine_url)
    try:
        estate = make_estate(engine, dwellings=1)
        fill_box(
            engine,
            estate,
            "B1-01",
            START,
            END,
            temperature=gauge(START, END, 5.0),
        )

        def broken(conn: object, **kwargs: object) -> None:
            conn.execute(text("SELECT no_such_column FROM no_such_table"))  # type: ignore[attr-defined]

        monkeypatch.setattr(data, "night_flows", broken)
        with engine.begin() as conn:
            evaluation = evaluate(conn, default_config(), NOW)
            assert conn.execute(text("SELECT COUNT(*) FROM channel")).scalar_one() == 6
        assert len(evaluation.errors) == 1 and "leak_night_flow" in evaluation.errors[0]
        assert ("frost", Subject("channel", estate.channel("B1-01", "temp.1"))) in on(evaluation)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("aggregate", "silent"), [("sample", True), ("hour_mean", False)])
def test_an_hourly_aggregate_counts_from_its_hour_end(
    tmp_path: Path, aggregate: str, silent: bool
) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=2)
        fill_box(engine, estate, "B1-01", START, END)
        last = utc(2026, 1, 20, 8)  # the 08:00-09:00 hour: 1.5 h ago at 10:30 once over
        for path in ("temp.1", "temp.2", "temp.ecs"):
            add_readings(
                engine,
                estate.channel("B1-02", path),
                gauge(START, last + HOUR, 20.0),
                aggregate=aggregate,
            )
        evaluation = run(engine, rules=["box_silent", "channel_silent"])
        box = Subject("box", estate.boxes["site-B1", "box-B1-02"])
        assert (("box_silent", box) in on(evaluation)) is silent
    finally:
        engine.dispose()


@pytest.mark.parametrize(("history_days", "fires"), [(5, True), (0.5, False)])
def test_a_burst_relative_to_a_short_history_is_not_judged(
    tmp_path: Path, history_days: float, fires: bool
) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=1)
        start = END - timedelta(days=history_days)
        cold = estate.channel("B1-01", "impulsion.1.index")
        add_readings(engine, cold, index(start, END, lambda at: 150.0 if at == END - HOUR else 3.0))
        evaluation = run(engine, rules=["leak_burst"])
        assert (("leak_burst", Subject("channel", cold)) in on(evaluation)) is fires
    finally:
        engine.dispose()


def test_the_first_hour_after_an_outage_is_no_burst_nor_jump(tmp_path: Path) -> None:
    """The gap's consumption lands in one hour: it is spread over the gap's hours."""
    engine = make_store(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        estate = make_estate(engine, dwellings=1)
        cold = estate.channel("B1-01", "impulsion.1.index")
        power = estate.channel("B1-01", "tic.1.index.base")
        gap = (END - 26 * HOUR, END - 2 * HOUR)  # no reading for 24 hours
        for channel, per_hour in ((cold, 40.0), (power, 2000.0)):
            points = [(at, v) for at, v in index(START, END, per_hour) if not gap[0] <= at < gap[1]]
            add_readings(engine, channel, points)
        evaluation = run(engine, rules=["leak_burst", "index_jump"])
        assert on(evaluation) == set()
        # the same hour without the gap would be a jump: 40 kWh in one hour
        add_readings(engine, power, [(END, 100_000.0 + 2000.0 * 121 + 40_000.0)])
        later = run(engine, now=END + HOUR, rules=["index_jump"])
        assert on(later) == {("index_jump", Subject("channel", power))}
    finally:
        engine.dispose()
