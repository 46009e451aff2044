"""Consumption queries: rollups against raw readings, scopes, buckets, DST, comparisons, m²."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.hq.estate import Estate, add_meter_event, build_estate, clear_data
from wesh.errors import UsageError
from wesh.hq.ingest import ingest
from wesh.hq.migrate import migrate
from wesh.hq.queries import (
    ConsumptionRow,
    building_average_per_m2,
    consumption,
    consumption_raw,
    previous_year,
)
from wesh.hq.timeutil import PARIS
from wesh.sync.sink import SyncReading

HOUR = timedelta(hours=1)
ELEC, WATER, TEMP = "tic.1.index.base", "impulsion.1.index", "temp.1"
UNITS = {ELEC: "Wh", WATER: "L", TEMP: "°C"}


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


@pytest.fixture
def estate(store: Engine) -> Estate:
    return build_estate(
        store,
        {
            "B1": [
                ("B1-01", 40.0, "dwelling"),
                ("B1-02", 60.0, "dwelling"),
                ("B1-PC", None, "common_area"),
            ],
            "B2": [("B2-01", 80.0, "dwelling"), ("B2-02", None, "dwelling")],
        },
    )


def reading(dwelling: str, path: str, at: datetime, value: float) -> SyncReading:
    building = dwelling.split("-", 1)[0]
    kind = "gauge" if path == TEMP else "index"
    return SyncReading(
        f"site-{building}", f"box-{dwelling}", path, at, value, UNITS[path], kind, "measured"
    )


def hourly_rates(
    start: datetime, hours: int, rates: dict[tuple[str, str], int]
) -> list[SyncReading]:
    """Indexes growing by ``rate`` an hour from 1,000 (a reading at every hour start)."""
    out = []
    for n in range(hours + 1):
        at = start + n * HOUR
        for (dwelling, path), rate in rates.items():
            out.append(reading(dwelling, path, at, 1_000 + rate * n))
            out.append(reading(dwelling, TEMP, at, 19.5))
    return out


RATES = {
    ("B1-01", ELEC): 100,
    ("B1-02", ELEC): 200,
    ("B1-PC", ELEC): 50,
    ("B1-01", WATER): 3,
    ("B2-01", ELEC): 400,
}


def test_daily_consumption_across_the_25_hour_day(store: Engine, estate: Estate) -> None:
    # From Paris midnight 2024-10-26 to Paris midnight 2024-10-29: 24 + 25 + 24 hours.
    start = datetime(2024, 10, 26, tzinfo=PARIS).astimezone(UTC)
    ingest(store, hourly_rates(start - HOUR, 24 + 25 + 24 + 1, RATES))
    rows = consumption(
        store,
        dwelling="B1-01",
        kind="electricity",
        start=date(2024, 10, 26),
        end=date(2024, 10, 29),
        by="day",
    )
    assert [(r.label, r.value, r.unit, r.channels) for r in rows] == [
        ("2024-10-26", 2_400.0, "Wh", 1),
        ("2024-10-27", 2_500.0, "Wh", 1),
        ("2024-10-28", 2_400.0, "Wh", 1),
    ]
    assert rows[1].end - rows[1].start == timedelta(hours=25)
    hours = consumption(
        store,
        dwelling="B1-01",
        kind="electricity",
        start=datetime(2024, 10, 27, tzinfo=PARIS),
        end=date(2024, 10, 28),
        by="hour",
    )
    assert len(hours) == 25
    assert {r.value for r in hours} == {100.0}
    assert [r.label for r in hours[1:4]] == [
        "2024-10-27T01:00+02:00",
        "2024-10-27T02:00+02:00",
        "2024-10-27T02:00+01:00",
    ]


def test_scopes_kinds_and_series(store: Engine, estate: Estate) -> None:
    start = datetime(2024, 3, 30, tzinfo=PARIS).astimezone(UTC)
    ingest(store, hourly_rates(start - HOUR, 24 + 23, RATES))  # 30 March, 31 March (23 h)
    span = {"start": date(2024, 3, 30), "end": date(2024, 4, 1)}
    building = consumption(store, building="B1", **span, by="day")
    assert [(r.kind, r.unit, r.label, r.value, r.channels) for r in building] == [
        ("cold_water", "L", "2024-03-30", 72.0, 3),  # every box has one; one has data
        ("cold_water", "L", "2024-03-31", 69.0, 3),
        ("electricity", "Wh", "2024-03-30", 350.0 * 24, 3),
        ("electricity", "Wh", "2024-03-31", 350.0 * 23, 3),
    ]
    residence = consumption(store, residence="RES1", kind="electricity", **span, by="month")
    assert [(r.label, r.value, r.channels) for r in residence] == [("2024-03", 750.0 * 47, 5)]
    assert residence[0].start == datetime(2024, 3, 30, tzinfo=PARIS)  # the month cut by the range
    assert residence[0].end == datetime(2024, 4, 1, tzinfo=PARIS)
    nothing = consumption(store, dwelling="B2-02", **span, by="day")
    assert [(r.kind, r.value) for r in nothing] == [
        ("cold_water", None),
        ("cold_water", None),
        ("electricity", None),
        ("electricity", None),
    ]
    assert consumption(store, dwelling="B2-02", kind="gas", **span) == []  # no such series
    quiet = consumption(
        store, dwelling="B2-01", kind="electricity", start=date(2024, 4, 1), end=date(2024, 4, 3)
    )
    assert [(r.label, r.value) for r in quiet] == [("2024-04-01", None), ("2024-04-02", None)]
    for by in ("hour", "day", "month"):
        for scope in ({"dwelling": "B1-02"}, {"building": "B1"}, {"residence": "RES1"}):
            assert consumption(store, **scope, **span, by=by) == consumption_raw(
                store, **scope, **span, by=by
            )


def test_bad_arguments_are_refused(store: Engine, estate: Estate) -> None:
    span = {"start": date(2024, 1, 1), "end": date(2024, 2, 1)}
    with pytest.raises(UsageError, match="exactly one"):
        consumption(store, **span)
    with pytest.raises(UsageError, match="exactly one"):
        consumption(store, building="B1", dwelling="B1-01", **span)
    with pytest.raises(UsageError, match="no building with code 'B9'"):
        consumption(store, building="B9", **span)
    with pytest.raises(UsageError, match="unknown kind"):
        consumption(store, building="B1", kind="eau", **span)
    with pytest.raises(UsageError, match="by must be"):
        consumption(store, building="B1", **span, by="week")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not after"):
        consumption(store, building="B1", start=date(2024, 2, 1), end=date(2024, 1, 1))
    with pytest.raises(UsageError, match="naive"):
        consumption(store, building="B1", start=datetime(2024, 1, 1), end=date(2024, 2, 1))  # noqa: DTZ001
    with pytest.raises(UsageError, match="Paris midnights"):
        consumption(
            store, building="B1", start=datetime(2024, 1, 1, tzinfo=UTC), end=date(2024, 2, 1)
        )
    with pytest.raises(UsageError, match="whole hours"):
        consumption(
            store,
            building="B1",
            start=datetime(2024, 1, 1, 0, 30, tzinfo=UTC),
            end=date(2024, 2, 1),
            by="hour",
        )
    with pytest.raises(UsageError):
        previous_year(store, building="B1", **span, by="hour")  # type: ignore[arg-type]


def test_previous_year_sets_each_month_beside_the_same_one(store: Engine, estate: Estate) -> None:
    readings = []
    for year, rate in ((2023, 10), (2024, 15)):
        start = datetime(year, 2, 27, tzinfo=PARIS).astimezone(UTC)
        readings += [
            reading("B1-01", ELEC, start + (n - 1) * HOUR, 1_000 + rate * n)
            for n in range(24 * 4 + 1)
        ]
    ingest(store, readings)
    months = previous_year(
        store, dwelling="B1-01", kind="electricity", start=date(2024, 2, 1), end=date(2024, 4, 1)
    )
    assert [(m.label, m.value, m.previous_label, m.previous, m.change_pct) for m in months] == [
        ("2024-02", 15.0 * 24 * 3, "2023-02", 10.0 * 24 * 2, 125.0),  # 27-29 Feb / 27-28 Feb
        ("2024-03", 15.0 * 24, "2023-03", 10.0 * 24 * 2, -25.0),
    ]
    days = previous_year(
        store,
        dwelling="B1-01",
        kind="electricity",
        start=date(2024, 2, 28),
        end=date(2024, 3, 2),
        by="day",
    )
    assert [(d.label, d.value, d.previous_label, d.previous) for d in days] == [
        ("2024-02-28", 360.0, "2023-02-28", 240.0),
        ("2024-02-29", 360.0, None, None),
        ("2024-03-01", 360.0, "2023-03-01", 240.0),
    ]


def test_building_average_per_m2_counts_dwellings_with_a_surface(
    store: Engine, estate: Estate
) -> None:
    start = datetime(2024, 5, 1, tzinfo=PARIS).astimezone(UTC)
    rates = {**RATES, ("B2-02", ELEC): 1_000}
    ingest(store, hourly_rates(start - HOUR, 48, rates))
    b1 = building_average_per_m2(
        store,
        building="B1",
        kind="electricity",
        start=date(2024, 5, 1),
        end=date(2024, 5, 3),
        by="day",
    )
    assert [(r.label, r.value_per_m2, r.surface_m2, r.dwellings) for r in b1] == [
        ("2024-05-01", 300.0 * 24 / 100.0, 100.0, 2),  # common areas left out
        ("2024-05-02", 300.0 * 24 / 100.0, 100.0, 2),
    ]
    b2 = building_average_per_m2(store, building="B2", start=date(2024, 5, 1), end=date(2024, 6, 1))
    assert [(r.kind, r.label, r.value_per_m2, r.surface_m2, r.dwellings) for r in b2] == [
        ("cold_water", "2024-05", None, 80.0, 1),  # no data
        ("electricity", "2024-05", 400.0 * 48 / 80.0, 80.0, 1),  # B2-02 has no surface
    ]
    assert b1[0].as_dict()["start"] == "2024-04-30T22:00:00+00:00"


def test_rows_serialise_to_json_ready_dicts() -> None:
    row = ConsumptionRow(
        "electricity",
        "Wh",
        "2024-01",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
        1.5,
        2,
    )
    assert row.as_dict() == {
        "kind": "electricity",
        "unit": "Wh",
        "label": "2024-01",
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-02-01T00:00:00+00:00",
        "value": 1.5,
        "channels": 2,
    }


@st.composite
def deliveries(draw: st.DrawFn) -> list[SyncReading]:
    base = draw(
        st.sampled_from([datetime(2024, 3, 29, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC)])
    )
    out = []
    for dwelling, path in (("B1-01", ELEC), ("B1-02", ELEC), ("B1-PC", WATER)):
        value = draw(st.integers(0, 10**6))
        for minute in sorted(draw(st.sets(st.integers(0, 4 * 24 * 60), max_size=25))):
            step = draw(st.integers(-3, 2000))
            value = draw(st.integers(0, 100)) if step < 0 else value + step
            out.append(reading(dwelling, path, base + timedelta(minutes=minute), value))
    random.Random(draw(st.integers(0, 2**32))).shuffle(out)
    return out


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=deliveries(), batch=st.integers(1, 20), first=st.integers(0, 4), days=st.integers(1, 3))
def test_rollups_answer_as_the_raw_readings_do(
    store: Engine, estate: Estate, sent: list[SyncReading], batch: int, first: int, days: int
) -> None:
    clear_data(store)
    add_meter_event(
        store,
        estate.channel("B1-02", ELEC),
        datetime(2024, 3, 31, 1, tzinfo=UTC),
        old_index=5e5,
        new_index=0.0,
    )
    ingest(store, sent, batch_size=batch)
    start = (
        min(r.at for r in sent).astimezone(PARIS).date() + timedelta(days=first - 1)
        if sent
        else date(2024, 3, 29)
    )
    end = start + timedelta(days=days)
    for by in ("day", "month"):
        for scope in ({"dwelling": "B1-02"}, {"building": "B1"}):
            assert consumption(store, **scope, start=start, end=end, by=by) == consumption_raw(
                store, **scope, start=start, end=end, by=by
            )
    hour_start = datetime(start.year, start.month, start.day, tzinfo=UTC)
    assert consumption(
        store, building="B1", start=hour_start, end=hour_start + 30 * HOUR, by="hour"
    ) == consumption_raw(
        store, building="B1", start=hour_start, end=hour_start + 30 * HOUR, by="hour"
    )
