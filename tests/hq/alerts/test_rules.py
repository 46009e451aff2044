"""The pure rules: each fires when it must, holds in its hysteresis band, stays quiet."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.hq.alerts.config import DEFAULT_RULES
from wesh.hq.alerts.model import Level, Subject
from wesh.hq.alerts.rules import Finding, natural_factor, sustained
from wesh.hq.alerts.rules_comfort import daily_rule, hourly_rule, probe_role
from wesh.hq.alerts.rules_consumption import (
    DwellingUse,
    above_average,
    consumption_high,
    vacant_consumption,
)
from wesh.hq.alerts.rules_gateway import gateway_health
from wesh.hq.alerts.rules_leak import continuous_flow, leak_burst, night_flow, night_spans
from wesh.hq.alerts.rules_meter import index_backwards, index_jump, tic_events
from wesh.hq.alerts.rules_nodata import LinkState, no_data
from wesh.hq.timeutil import HOUR_US, PARIS, to_epoch_us

NOW = datetime(2026, 1, 20, 10, 30, tzinfo=UTC)
NOW_US = to_epoch_us(NOW)
H = timedelta(hours=1)


def defaults(rule: str, **changes: float):
    values = {**DEFAULT_RULES[rule].params, **changes}
    return lambda subject: values


def by_rule(findings: list[Finding]) -> dict[tuple[str, Subject], Finding]:
    return {(f.rule, f.subject): f for f in findings}


# ----------------------------------------------------------------------------- shared


def test_natural_factor_converts_to_the_threshold_units() -> None:
    assert natural_factor("electricity", "Wh") == 0.001
    assert natural_factor("cold_water", "m3") == 1000.0
    assert natural_factor("gas", "L") == 0.001
    assert natural_factor("temperature", "°C") is None
    assert natural_factor("electricity", "furlong") is None


def _series(values: list[float]) -> list[tuple[datetime, float]]:
    start = NOW - len(values) * H
    return [(start + n * H, v) for n, v in enumerate(values)]


def test_sustained_fires_after_enough_buckets_and_holds_in_the_band() -> None:
    cold = _series([20, 11, 11, 11])
    run = sustained(cold, trigger=12, clear=14, needed=3, above=False)
    assert run is not None and run.level is Level.ON and run.length == 3
    assert run.since == cold[1][0]
    short = sustained(_series([20, 20, 11, 11]), trigger=12, clear=14, needed=3, above=False)
    assert short is not None and short.level is Level.HOLD
    band = sustained(_series([11, 11, 11, 13]), trigger=12, clear=14, needed=3, above=False)
    assert band is not None and band.level is Level.HOLD
    warm = sustained(_series([11, 11, 11, 14]), trigger=12, clear=14, needed=3, above=False)
    assert warm is not None and warm.level is None
    assert sustained([], trigger=12, clear=14, needed=3, above=False) is None


@given(
    values=st.lists(st.floats(-20, 40, allow_nan=False), min_size=1, max_size=12),
    trigger=st.floats(-20, 40, allow_nan=False),
    lower=st.floats(0, 10, allow_nan=False),
    needed=st.integers(1, 6),
)
def test_sustained_is_monotonic_in_its_trigger(
    values: list[float], trigger: float, lower: float, needed: int
) -> None:
    """A higher-than trigger that fires still fires when lowered (and the reverse for below)."""
    series = _series(values)
    high = sustained(series, trigger=trigger, clear=trigger - 2, needed=needed, above=True)
    low = sustained(
        series, trigger=trigger - lower, clear=trigger - lower - 2, needed=needed, above=True
    )
    assert high is not None and low is not None
    if high.level is Level.ON:
        assert low.level is Level.ON
    cold = sustained(series, trigger=trigger, clear=trigger + 2, needed=needed, above=False)
    colder = sustained(
        series, trigger=trigger + lower, clear=trigger + lower + 2, needed=needed, above=False
    )
    assert cold is not None and colder is not None
    if cold.level is Level.ON:
        assert colder.level is Level.ON


# ----------------------------------------------------------------------------- no data

NO_DATA_PARAMS = {rule: defaults(rule) for rule in DEFAULT_RULES}
ALL_NO_DATA = ("channel_silent", "box_silent", "gateway_silent", "link_silent")
# gateway 1: boxes 10 (channels 100, 101) and 11 (channels 110, 111)
CHANNEL_BOX = {100: 10, 101: 10, 110: 11, 111: 11}
BOX_GATEWAY = {10: 1, 11: 1}


def _ago(hours: float) -> int:
    return NOW_US - int(hours * HOUR_US)


def _no_data(latest: Mapping[int, int | None], links: list[LinkState]) -> dict:
    return by_rule(
        no_data(
            NOW,
            latest=latest,
            channel_box=CHANNEL_BOX,
            box_gateway=BOX_GATEWAY,
            links=links,
            params=NO_DATA_PARAMS,
            rules=ALL_NO_DATA,
        )
    )


ALIVE = [LinkState(1, "site-1", _ago(0.2))]


def test_a_healthy_estate_has_no_silence() -> None:
    assert _no_data({100: _ago(1), 101: _ago(1), 110: _ago(0.5), 111: _ago(1)}, ALIVE) == {}


def test_a_silent_channel_of_a_live_box_fires_under_its_box() -> None:
    found = _no_data({100: _ago(1), 101: _ago(4), 110: _ago(1), 111: _ago(1)}, ALIVE)
    assert set(found) == {("channel_silent", Subject("channel", 101))}
    finding = found["channel_silent", Subject("channel", 101)]
    assert finding.level is Level.ON
    assert finding.parent == Subject("box", 10) and finding.parent_rule == "box_silent"
    assert finding.value == 4.0 and finding.threshold == 3.0 and finding.unit == "h"


def test_a_channel_at_its_threshold_is_not_silent() -> None:
    found = _no_data({100: _ago(1), 101: _ago(3), 110: _ago(1), 111: _ago(1)}, ALIVE)
    assert found == {}


def test_a_dead_box_fires_once_not_once_per_channel() -> None:
    found = _no_data({100: _ago(5), 101: _ago(5), 110: _ago(1), 111: _ago(1)}, ALIVE)
    assert set(found) == {("box_silent", Subject("box", 10))}
    box = found["box_silent", Subject("box", 10)]
    assert box.parent == Subject("gateway", 1) and box.parent_rule == "gateway_silent"


def test_a_channel_silent_before_its_box_died_is_held_under_it() -> None:
    found = _no_data({100: _ago(5), 101: _ago(12), 110: _ago(1), 111: _ago(1)}, ALIVE)
    assert found["channel_silent", Subject("channel", 101)].level is Level.HOLD
    assert found["box_silent", Subject("box", 10)].level is Level.ON


def test_a_dead_gateway_with_a_live_link_fires_the_gateway_only() -> None:
    found = _no_data({100: _ago(5), 101: _ago(5), 110: _ago(5), 111: _ago(5)}, ALIVE)
    assert set(found) == {("gateway_silent", Subject("gateway", 1))}
    gateway = found["gateway_silent", Subject("gateway", 1)]
    assert gateway.parent == Subject("site", 1) and gateway.parent_rule == "link_silent"


def test_a_silent_link_fires_the_site_only() -> None:
    links = [LinkState(1, "site-1", _ago(4))]
    found = _no_data({100: _ago(4.5), 101: _ago(4.5), 110: _ago(4.5), 111: _ago(4.5)}, links)
    assert set(found) == {("link_silent", Subject("site", 1))}
    assert found["link_silent", Subject("site", 1)].value == 4.0


def test_a_status_saying_no_box_is_up_fires_the_gateway() -> None:
    links = [
        LinkState(
            1, "site-1", _ago(0.1), _ago(0.1), {"boxes_up": 0, "boxes_down": 2, "queue_depth": 0}
        )
    ]
    found = _no_data({100: _ago(1), 101: _ago(1), 110: _ago(1), 111: _ago(1)}, links)
    finding = found["gateway_silent", Subject("gateway", 1)]
    assert finding.level is Level.ON and finding.details["boxes_down"] == 2


def test_never_heard_subjects_are_not_judged() -> None:
    links = [LinkState(1, "site-1", None)]
    assert _no_data({100: None, 101: None, 110: None, 111: None}, links) == {}


# ----------------------------------------------------------------------------- leak


def test_night_spans_follow_paris_time_across_dst() -> None:
    # 2026-03-29: clocks go forward at 02:00 → the night 00:00-06:00 lasts 5 hours
    spring = night_spans(datetime(2026, 3, 29, 12, tzinfo=UTC), start_h=0, end_h=6, count=2)
    assert (spring[0][1] - spring[0][0]) // HOUR_US == 5
    assert spring[0][0] == to_epoch_us(datetime(2026, 3, 28, 23, tzinfo=UTC))
    assert (spring[1][1] - spring[1][0]) // HOUR_US == 6
    # 2026-10-25: clocks go back at 03:00 → 7 hours
    autumn = night_spans(datetime(2026, 10, 25, 12, tzinfo=UTC), start_h=0, end_h=6, count=1)
    assert (autumn[0][1] - autumn[0][0]) // HOUR_US == 7
    assert autumn[0][0] == to_epoch_us(datetime(2026, 10, 24, 22, tzinfo=UTC))


def test_night_spans_only_count_ended_nights_and_may_start_the_evening_before() -> None:
    at_3am_paris = datetime(2026, 1, 20, 2, tzinfo=UTC)
    spans = night_spans(at_3am_paris, start_h=0, end_h=6, count=1)
    assert spans[0][1] <= to_epoch_us(at_3am_paris)
    assert spans[0][0] == to_epoch_us(datetime(2026, 1, 18, 23, tzinfo=UTC))
    evening = night_spans(NOW, start_h=22, end_h=6, count=1)
    assert (evening[0][1] - evening[0][0]) // HOUR_US == 8


SPANS = night_spans(NOW, start_h=0, end_h=6, count=7)


def test_continuous_flow_fires_after_three_flowing_nights() -> None:
    nights = {7: {0: (6, 4.0, 40.0), 1: (6, 3.0, 30.0), 2: (6, 5.0, 50.0), 3: (6, 0.0, 10.0)}}
    found = continuous_flow(
        NOW, nights=nights, spans=SPANS, factors={7: 1.0}, params=defaults("leak_continuous_flow")
    )
    assert len(found) == 1
    assert found[0].level is Level.ON and found[0].value == 3
    assert found[0].details["min_flow_l_h"] == 3.0
    assert found[0].since == datetime(2026, 1, 17, 23, tzinfo=UTC)


def test_continuous_flow_needs_enough_nights_and_clears_on_a_dry_hour() -> None:
    two = {7: {0: (6, 4.0, 40.0), 1: (6, 3.0, 30.0), 2: (6, 0.0, 5.0)}}
    found = continuous_flow(
        NOW, nights=two, spans=SPANS, factors={7: 1.0}, params=defaults("leak_continuous_flow")
    )
    assert found == []
    dry = {7: {0: (6, 0.0, 40.0), 1: (6, 3.0, 30.0), 2: (6, 3.0, 30.0), 3: (6, 3.0, 30.0)}}
    assert (
        continuous_flow(
            NOW, nights=dry, spans=SPANS, factors={7: 1.0}, params=defaults("leak_continuous_flow")
        )
        == []
    )


def test_continuous_flow_skips_nights_without_enough_data() -> None:
    gappy = {7: {0: (6, 4.0, 40.0), 1: (2, 3.0, 6.0), 2: (6, 3.0, 30.0), 3: (6, 3.0, 30.0)}}
    found = continuous_flow(
        NOW, nights=gappy, spans=SPANS, factors={7: 1.0}, params=defaults("leak_continuous_flow")
    )
    assert found[0].level is Level.ON and found[0].value == 3


def test_night_flow_band() -> None:
    params = defaults("leak_night_flow")
    high = night_flow(
        NOW, nights={7: {0: (6, 20, 150)}}, spans=SPANS, factors={7: 1.0}, params=params
    )
    assert high[0].level is Level.ON and high[0].value == 25.0
    band = night_flow(
        NOW, nights={7: {0: (6, 10, 90)}}, spans=SPANS, factors={7: 1.0}, params=params
    )
    assert band[0].level is Level.HOLD
    low = night_flow(NOW, nights={7: {0: (6, 0, 60)}}, spans=SPANS, factors={7: 1.0}, params=params)
    assert low == []
    # m³ meters: 0.025 m³/h = 25 L/h
    cubic = night_flow(
        NOW, nights={7: {0: (6, 0.02, 0.15)}}, spans=SPANS, factors={7: 1000.0}, params=params
    )
    assert cubic[0].level is Level.ON


def test_leak_burst_absolute_relative_and_quiet() -> None:
    params = defaults("leak_burst")
    hour = NOW_US - NOW_US % HOUR_US
    recent = {
        1: [(hour - HOUR_US, 600.0)],
        2: [(hour, 150.0)],
        3: [(hour, 150.0)],
        4: [(hour, 40.0)],
    }
    baseline = {1: 5.0, 2: 10.0, 3: 20.0, 4: 1.0}
    found = by_rule(
        leak_burst(
            NOW,
            hours=recent,
            baseline_l_h=baseline,
            factors=dict.fromkeys(recent, 1.0),
            params=params,
        )
    )
    assert found["leak_burst", Subject("channel", 1)].threshold == 500
    assert found["leak_burst", Subject("channel", 2)].threshold == 100  # 10 x 10 L/h
    assert ("leak_burst", Subject("channel", 3)) not in found  # 150 < 10 x 20
    assert ("leak_burst", Subject("channel", 4)) not in found  # under min_l_h
    old = {1: [(hour - 5 * HOUR_US, 900.0)]}
    assert leak_burst(NOW, hours=old, baseline_l_h={}, factors={1: 1.0}, params=params) == []


# ----------------------------------------------------------------------------- comfort

PATTERNS = {
    "hot_water": re.compile(r"(?i)\b(ecs|dhw)\b|hot[ _-]?water|eau[ _-]chaude"),
    "outdoor": re.compile(r"(?i)ext[ée]rieur|outdoor|\bext\b"),
    "plant_room": re.compile(r"(?i)chaufferie|boiler"),
}


@pytest.mark.parametrize(
    ("label", "path", "role"),
    [
        ("Température séjour", "temp.1", "room"),
        ("Température extérieure", "temp.3", "outdoor"),
        ("Température chaufferie", "temp.1", "plant_room"),
        ("Départ ECS", "temp.4", "hot_water"),
        (None, "temp.ecs", "hot_water"),
        ("Eau chaude sanitaire", "temp.2", "hot_water"),
    ],
)
def test_probe_role(label: str | None, path: str, role: str) -> None:
    assert probe_role(label, path, **PATTERNS) == role


def _hourly(values: list[float]) -> list[tuple[int, float]]:
    start = NOW_US - NOW_US % HOUR_US - len(values) * HOUR_US
    return [(start + n * HOUR_US, v) for n, v in enumerate(values)]


def test_frost_overheating_and_hot_water_cold() -> None:
    frost = by_rule(
        hourly_rule(
            "frost",
            NOW,
            series={1: _hourly([15, 11, 10, 9]), 2: _hourly([11, 11, 13]), 3: _hourly([19, 20])},
            params=defaults("frost"),
        )
    )
    assert frost["frost", Subject("channel", 1)].level is Level.ON
    assert frost["frost", Subject("channel", 1)].value == 9
    assert frost["frost", Subject("channel", 2)].level is Level.HOLD
    assert ("frost", Subject("channel", 3)) not in frost
    hot = hourly_rule(
        "overheating", NOW, series={1: _hourly([29] * 6)}, params=defaults("overheating")
    )
    assert hot[0].level is Level.ON
    short = hourly_rule(
        "overheating", NOW, series={1: _hourly([29] * 5)}, params=defaults("overheating")
    )
    assert short[0].level is Level.HOLD
    tepid = hourly_rule(
        "hot_water_cold", NOW, series={1: _hourly([58, 45, 44])}, params=defaults("hot_water_cold")
    )
    assert tepid[0].level is Level.ON and tepid[0].threshold == 50


def test_humidity_high_over_days() -> None:
    days = [(date(2026, 1, d), v) for d, v in ((16, 60), (17, 72), (18, 75), (19, 71))]
    found = daily_rule("humidity_high", NOW, series={1: days}, params=defaults("humidity_high"))
    assert found[0].level is Level.ON and found[0].details["days"] == 3
    dry = [(date(2026, 1, 17), 72), (date(2026, 1, 18), 75), (date(2026, 1, 19), 64)]
    assert daily_rule("humidity_high", NOW, series={1: dry}, params=defaults("humidity_high")) == []


# ----------------------------------------------------------------------------- consumption


def _use(
    dwelling: int, per_day: dict[str, float], *, surface: float = 50.0, kind: str = "dwelling"
):
    return DwellingUse(dwelling, 1, kind, surface, per_day, 1)


def test_consumption_high_reports_the_worst_kind() -> None:
    uses = [
        _use(1, {"electricity": 45.0, "cold_water": 1200.0}),
        _use(2, {"electricity": 28.0}),
        _use(3, {"electricity": 10.0}),
        _use(4, {"electricity": 99.0}, kind="common_area"),
    ]
    found = by_rule(consumption_high(NOW, uses=uses, params=defaults("consumption_high")))
    first = found["consumption_high", Subject("dwelling", 1)]
    assert first.level is Level.ON and first.details["kind"] == "electricity"
    assert first.details["also"] == "cold_water" and first.unit == "kWh"
    assert found["consumption_high", Subject("dwelling", 2)].level is Level.HOLD
    assert ("consumption_high", Subject("dwelling", 3)) not in found
    assert ("consumption_high", Subject("dwelling", 4)) not in found  # common areas: off


def test_consumption_above_building_average_per_m2() -> None:
    uses = [_use(n, {"electricity": 5.0}) for n in range(1, 7)]
    uses.append(_use(7, {"electricity": 40.0}))
    uses.append(_use(8, {"electricity": 40.0}, surface=200.0))  # big flat: normal per m²
    found = by_rule(above_average(NOW, uses=uses, params=defaults("consumption_above_average")))
    assert set(found) == {("consumption_above_average", Subject("dwelling", 7))}
    assert found["consumption_above_average", Subject("dwelling", 7)].value > 3
    few = above_average(NOW, uses=uses[-3:], params=defaults("consumption_above_average"))
    assert few == []  # fewer than min_dwellings with data


def test_vacant_consumption() -> None:
    uses = [_use(1, {"electricity": 5.0}), _use(2, {"electricity": 5.0}), _use(3, {"heat": 90.0})]
    found = by_rule(
        vacant_consumption(NOW, uses=uses, occupied={2}, params=defaults("vacant_consumption"))
    )
    assert set(found) == {("vacant_consumption", Subject("dwelling", 1))}  # heat: off


# ----------------------------------------------------------------------------- meter


def test_index_backwards_with_and_without_a_meter_event() -> None:
    rows = [(1, _ago(5), 1000.0, _ago(4), 10.0), (2, _ago(5), 1000.0, _ago(4), 900.0)]
    found = by_rule(
        index_backwards(
            NOW,
            decreases=rows,
            events={1: [_ago(4.5)]},
            units={1: "Wh", 2: "Wh"},
            params=defaults("index_backwards"),
        )
    )
    assert set(found) == {("index_backwards", Subject("channel", 2))}
    finding = found["index_backwards", Subject("channel", 2)]
    assert finding.value == 100 and finding.unit == "Wh"
    assert finding.details["previous_index"] == 1000.0


def test_index_backwards_outside_the_window_or_tolerance_is_ignored() -> None:
    rows = [(1, _ago(30), 1000.0, _ago(29), 10.0), (2, _ago(2), 1000.0, _ago(1), 999.0)]
    assert (
        index_backwards(
            NOW,
            decreases=rows,
            events={},
            units={},
            params=defaults("index_backwards", tolerance=5),
        )
        == []
    )


def test_index_jump_per_kind() -> None:
    hours = [(1, _ago(2), 40_000.0), (2, _ago(2), 30_000.0), (3, _ago(2), 200_000.0)]
    kinds = {1: ("electricity", "Wh"), 2: ("electricity", "Wh"), 3: ("cold_water", "L")}
    found = by_rule(index_jump(NOW, hours=hours, kinds=kinds, params=defaults("index_jump")))
    assert set(found) == {
        ("index_jump", Subject("channel", 1)),
        ("index_jump", Subject("channel", 3)),
    }
    assert found["index_jump", Subject("channel", 1)].value == 40.0
    assert found["index_jump", Subject("channel", 1)].unit == "kWh/h"


def test_tic_events_are_episodes_from_start_to_end() -> None:
    a, b, c, d = (Subject("box", n) for n in (1, 2, 3, 4))
    events = [
        (a, _ago(3), "tic_overload", "ADPS 45"),  # still open three hours later
        (b, _ago(0.5), "tic_overload", ""),
        (b, _ago(0.4), "tic_overload_end", ""),  # over
        (c, _ago(30), "tic_overload", ""),  # no end for 30 h: presumed over
        (d, _ago(5), "tic_overload", "first"),
        (d, _ago(4), "tic_overload_end", ""),
        (d, _ago(2), "tic_overload", "again"),
        (a, _ago(0.2), "tic_status_alarm", "surtension"),
    ]
    found = by_rule(tic_events("tic_overload", NOW, events=events, params=defaults("tic_overload")))
    assert set(found) == {("tic_overload", a), ("tic_overload", d)}
    assert found["tic_overload", a].details["message"] == "ADPS 45"
    assert found["tic_overload", a].since == NOW - 3 * H
    assert found["tic_overload", d].details == {"events": 1, "message": "again"}
    status = tic_events("tic_status_alarm", NOW, events=events, params=defaults("tic_status_alarm"))
    assert [f.subject for f in status] == [a]


# ----------------------------------------------------------------------------- gateway


def _health(status: dict, *, age_h: float = 0.5) -> dict:
    links = [LinkState(1, "site-1", _ago(0.1), _ago(age_h), status)]
    rules = ("queue_backlog", "sms_budget_exhausted", "boxes_down")
    return by_rule(
        gateway_health(NOW, links=links, params={r: defaults(r) for r in rules}, rules=rules)
    )


def test_gateway_health_from_status() -> None:
    healthy = {"queue_depth": 10, "sms_sent_today": 3, "sms_budget": 50, "boxes_down": 0}
    assert _health(healthy) == {}
    bad = {"queue_depth": 5000, "sms_sent_today": 50, "sms_budget": 50, "boxes_down": 2}
    found = _health(bad)
    g = Subject("gateway", 1)
    assert found["queue_backlog", g].level is Level.ON
    assert found["sms_budget_exhausted", g].level is Level.ON
    assert found["boxes_down", g].value == 2
    assert _health({"queue_depth": 1000})["queue_backlog", g].level is Level.HOLD


def test_a_stale_status_only_holds() -> None:
    found = _health({"queue_depth": 5000}, age_h=8)
    assert found["queue_backlog", Subject("gateway", 1)].level is Level.HOLD


# ----------------------------------------------------------------------------- properties


@given(
    now=st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - made aware below
        max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    ),
    count=st.integers(1, 5),
)
def test_night_spans_are_paris_nights_that_ended(now: datetime, count: int) -> None:
    aware = now.replace(tzinfo=UTC)
    spans = night_spans(aware, start_h=0, end_h=6, count=count)
    assert len(spans) == count
    for lo, hi in spans:
        assert hi <= to_epoch_us(aware)
        assert (hi - lo) // HOUR_US in (5, 6, 7)
        start = datetime.fromtimestamp(lo / 1e6, tz=UTC).astimezone(PARIS)
        assert (start.hour, start.minute) == (0, 0)
    for (lo1, _), (lo0, _) in zip(spans[1:], spans, strict=False):
        assert 23 * HOUR_US <= lo0 - lo1 <= 25 * HOUR_US


@given(
    value=st.floats(0, 200, allow_nan=False),
    limit=st.floats(0.1, 200, allow_nan=False),
    lower=st.floats(0, 1, allow_nan=False),
)
def test_consumption_high_is_monotonic_in_its_threshold(
    value: float, limit: float, lower: float
) -> None:
    def level(threshold: float) -> Level | None:
        found = consumption_high(
            NOW,
            uses=[_use(1, {"electricity": value})],
            params=defaults("consumption_high", electricity_kwh=threshold),
        )
        return found[0].level if found else None

    if level(limit) is Level.ON:
        assert level(limit * lower) is Level.ON


silences = st.one_of(st.none(), st.floats(0, 12, allow_nan=False))


@given(
    ages=st.fixed_dictionaries({cid: silences for cid in CHANNEL_BOX}),
    link_age=st.one_of(st.none(), st.floats(0, 12, allow_nan=False)),
)
def test_no_data_never_reports_a_child_beside_its_firing_parent(
    ages: dict[int, float | None], link_age: float | None
) -> None:
    """Grouping: a fresh ON condition never has its parent ON in the same evaluation."""
    latest = {cid: None if age is None else _ago(age) for cid, age in ages.items()}
    links = [LinkState(1, "site-1", None if link_age is None else _ago(link_age))]
    found = _no_data(latest, links)
    for (_, _subject), finding in found.items():
        if finding.level is Level.ON and finding.parent is not None:
            parent = found.get((finding.parent_rule, finding.parent))
            assert parent is None or parent.level is not Level.ON


@pytest.mark.parametrize(
    ("rule", "fires", "holds", "healthy"),
    [
        ("frost", [15, 11, 11, 11], [11, 11, 11, 13], [11, 11, 11, 14]),
        ("overheating", [25] + [29] * 6, [29] * 6 + [27], [29] * 6 + [26]),
        ("hot_water_cold", [58, 49, 49], [49, 49, 52], [49, 49, 55]),
    ],
)
def test_hourly_comfort_rules_fire_hold_and_clear(
    rule: str, fires: list[float], holds: list[float], healthy: list[float]
) -> None:
    def level(values: list[float]) -> Level | None:
        found = hourly_rule(rule, NOW, series={1: _hourly(values)}, params=defaults(rule))
        return found[0].level if found else None

    assert level(fires) is Level.ON
    assert level(holds) is Level.HOLD
    assert level(healthy) is None


def test_humidity_band_holds() -> None:
    days = [(date(2026, 1, d), v) for d, v in ((17, 72), (18, 75), (19, 68))]
    found = daily_rule("humidity_high", NOW, series={1: days}, params=defaults("humidity_high"))
    assert found[0].level is Level.HOLD


def test_above_average_band_holds() -> None:
    uses = [_use(n, {"electricity": 5.0}) for n in range(1, 7)]
    uses.append(_use(7, {"electricity": 19.0}))  # 19 / 49 x 7 = 2.7 x the average per m²
    found = above_average(NOW, uses=uses, params=defaults("consumption_above_average"))
    assert [(f.subject, f.level) for f in found] == [(Subject("dwelling", 7), Level.HOLD)]
