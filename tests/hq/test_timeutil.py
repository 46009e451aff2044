"""Europe/Paris calendar and epoch instants (wesh.hq.timeutil)."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.hq.timeutil import (
    HOUR_US,
    day_bounds,
    from_epoch_us,
    hour_floor,
    hours_in_day,
    iter_days,
    iter_hours,
    month_bounds,
    month_days,
    paris_day,
    paris_month,
    paris_time,
    to_epoch_us,
)

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
ZONES = st.sampled_from([UTC, PARIS, timezone(timedelta(hours=-5)), ZoneInfo("Asia/Kolkata")])
# EU summer-time rules (last Sunday of March / October, 01:00 UTC) apply from 1996 on.
instants = st.datetimes(
    min_value=datetime(1996, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2199, 12, 31),  # noqa: DTZ001
    timezones=ZONES,
)
days = st.dates(min_value=date(1996, 1, 1), max_value=date(2199, 12, 30))


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - 6) % 7)


# --------------------------------------------------------------------------- epoch instants


@given(instants)
def test_epoch_microseconds_round_trip(at: datetime) -> None:
    back = from_epoch_us(to_epoch_us(at))
    assert back == at.astimezone(UTC)
    assert back.tzinfo is UTC


@given(st.integers(min_value=-(2**41) * 10**6 // 1000, max_value=2**42 * 10**3))
def test_epoch_integers_round_trip(us: int) -> None:
    assert to_epoch_us(from_epoch_us(us)) == us


@given(instants, instants)
def test_epoch_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (to_epoch_us(a) < to_epoch_us(b)) == (a.astimezone(UTC) < b.astimezone(UTC))


def test_epoch_known_values() -> None:
    assert to_epoch_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_epoch_us(datetime(1970, 1, 1, 1, tzinfo=PARIS)) == 0
    assert to_epoch_us(datetime(2024, 3, 31, 3, tzinfo=PARIS)) == 1_711_846_800 * 10**6
    assert to_epoch_us(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    # The fall-back night: 02:30 happens twice, one hour apart.
    first = datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=PARIS)
    second = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS)
    assert to_epoch_us(second) - to_epoch_us(first) == HOUR_US


# --------------------------------------------------------------------------- days


@pytest.mark.parametrize(
    ("day", "hours", "start"),
    [
        (date(2024, 3, 31), 23, datetime(2024, 3, 30, 23, tzinfo=UTC)),
        (date(2024, 10, 27), 25, datetime(2024, 10, 26, 22, tzinfo=UTC)),
        (date(2025, 3, 30), 23, datetime(2025, 3, 29, 23, tzinfo=UTC)),
        (date(2025, 10, 26), 25, datetime(2025, 10, 25, 22, tzinfo=UTC)),
        (date(2024, 7, 14), 24, datetime(2024, 7, 13, 22, tzinfo=UTC)),
        (date(2024, 1, 1), 24, datetime(2023, 12, 31, 23, tzinfo=UTC)),
    ],
)
def test_known_days(day: date, hours: int, start: datetime) -> None:
    begin, end = day_bounds(day)
    assert (begin, end - begin) == (start, timedelta(hours=hours))
    assert hours_in_day(day) == hours
    assert begin.tzinfo is UTC
    assert end.tzinfo is UTC


@given(days)
def test_days_last_23_24_or_25_hours_by_the_eu_rule(day: date) -> None:
    hours = hours_in_day(day)
    if day == _last_sunday(day.year, 3):
        assert hours == 23
    elif day == _last_sunday(day.year, 10):
        assert hours == 25
    else:
        assert hours == 24


@given(days)
def test_days_tile_time(day: date) -> None:
    start, end = day_bounds(day)
    assert end == day_bounds(day + timedelta(days=1))[0]
    assert paris_day(start) == day
    assert paris_day(end - timedelta(microseconds=1)) == day
    assert paris_day(end) == day + timedelta(days=1)
    assert paris_time(start).hour == 0


@given(instants)
def test_an_instant_lies_in_its_paris_day(at: datetime) -> None:
    start, end = day_bounds(paris_day(at))
    assert start <= at < end


@given(days)
def test_hours_of_a_day_are_its_hour_buckets(day: date) -> None:
    start, end = day_bounds(day)
    hours = list(iter_hours(start, end))
    assert len(hours) == hours_in_day(day)
    assert hours[0] == start
    assert all(b - a == HOUR for a, b in itertools.pairwise(hours))
    assert {paris_day(hour) for hour in hours} == {day}


# --------------------------------------------------------------------------- hours


@given(instants)
def test_hour_floor(at: datetime) -> None:
    floor = hour_floor(at)
    assert floor.tzinfo is UTC
    assert floor <= at < floor + HOUR
    assert (floor.minute, floor.second, floor.microsecond) == (0, 0, 0)
    assert to_epoch_us(floor) % HOUR_US == 0
    # Paris offsets are whole hours: a UTC hour is a Paris hour, inside one Paris day.
    assert paris_time(floor).minute == 0
    assert paris_day(floor) == paris_day(floor + HOUR - timedelta(microseconds=1))


@given(instants, st.integers(min_value=0, max_value=200))
def test_iter_hours_rounds_the_start_up(start: datetime, count: int) -> None:
    end = start.astimezone(UTC) + count * HOUR  # (Paris + timedelta is wall-clock arithmetic)
    hours = list(iter_hours(start, end))
    assert all(start <= hour < end for hour in hours)
    assert len(hours) == count
    expected_first = hour_floor(start) if hour_floor(start) == start else hour_floor(start) + HOUR
    assert not hours or hours[0] == expected_first


def test_iter_hours_over_the_fall_back_night() -> None:
    start, end = day_bounds(date(2024, 10, 27))
    local = [paris_time(hour).strftime("%H%z") for hour in iter_hours(start, end)]
    assert local[:5] == ["00+0200", "01+0200", "02+0200", "02+0100", "03+0100"]
    assert len(local) == 25


# --------------------------------------------------------------------------- months


@given(st.integers(min_value=1996, max_value=2199), st.integers(min_value=1, max_value=12))
def test_months_are_their_days(year: int, month: int) -> None:
    start, end = month_bounds(year, month)
    listed = month_days(year, month)
    assert len(listed) == calendar.monthrange(year, month)[1]
    assert listed[0] == date(year, month, 1)
    assert start == day_bounds(listed[0])[0]
    assert end == day_bounds(listed[-1])[1]
    assert (end - start) // HOUR == sum(hours_in_day(day) for day in listed)
    assert paris_month(start) == (year, month)
    assert paris_month(end - timedelta(microseconds=1)) == (year, month)


def test_march_and_october_lose_and_gain_an_hour() -> None:
    march, october = month_bounds(2024, 3), month_bounds(2024, 10)
    assert march[1] - march[0] == timedelta(days=31) - HOUR
    assert october[1] - october[0] == timedelta(days=31) + HOUR
    december = month_bounds(2024, 12)
    assert december[1] == datetime(2024, 12, 31, 23, tzinfo=UTC)


def test_iter_days() -> None:
    assert list(iter_days(date(2024, 2, 28), date(2024, 3, 2))) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    assert list(iter_days(date(2024, 3, 2), date(2024, 3, 2))) == []


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_epoch_us(datetime(2024, 1, 1)),  # noqa: DTZ001
        lambda: paris_day(datetime(2024, 1, 1)),  # noqa: DTZ001
        lambda: hour_floor(datetime(2024, 1, 1)),  # noqa: DTZ001
        lambda: to_epoch_us("2024-01-01"),  # type: ignore[arg-type]
        lambda: day_bounds(datetime(2024, 1, 1, tzinfo=UTC)),
        lambda: month_bounds(2024, 13),
        lambda: month_bounds(10_000, 1),
        lambda: list(iter_hours(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2))),  # noqa: DTZ001
    ],
)
def test_naive_and_wrong_arguments_are_usage_errors(call: object) -> None:
    with pytest.raises(UsageError):
        call()  # type: ignore[operator]
