"""Rollups: the step rule, hour and day buckets, DST days, re-rolls of touched buckets only.

The property tests compare what the store holds after ingesting random series (resets,
meter events, suspect values, late and duplicated deliveries, DST weeks) with an
independent oracle written here from the documented rule (docs/hq-data.md, "Rollups").
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update

from tests.hq.estate import Estate, add_meter_event, build_estate, clear_data
from wesh.errors import UsageError
from wesh.hq.ingest import ingest, record_manual
from wesh.hq.migrate import migrate
from wesh.hq.models import RollupDay, RollupHour
from wesh.hq.rollups import (
    MeterBreak,
    chain_steps,
    refresh_rollups,
    reroll,
    roll_days,
    roll_hours,
    step_consumption,
)
from wesh.hq.timeutil import hours_in_day, paris_day, to_epoch_us
from wesh.sync.sink import SyncReading

SITE, BOX = "site-B1", "box-B1-01"
INDEX, GAUGE = "tic.1.index.base", "temp.1"
HOUR = timedelta(hours=1)


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


@pytest.fixture
def estate(store: Engine) -> Estate:
    return build_estate(store, {"B1": [("B1-01", 50.0, "dwelling")]})


# ----------------------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class Sent:
    """One reading as the test sends it."""

    path: str
    at: datetime
    value: float
    suspect: bool = False

    def reading(self) -> SyncReading:
        kind = "index" if self.path == INDEX else "gauge"
        unit = "Wh" if self.path == INDEX else "°C"
        quality = "suspect" if self.suspect else "measured"
        return SyncReading(SITE, BOX, self.path, self.at, self.value, unit, kind, quality)


def oracle_step(
    prev: float, value: float, events: list[tuple[float | None, float | None]]
) -> float:
    """The documented rule, written out independently of wesh.hq.rollups."""
    if not events:
        if value >= prev:
            return value - prev
        return value if 0 <= value <= 0.01 * abs(prev) else 0.0
    total = 0.0
    ref: float | None = prev
    for old, new in events:
        if ref is not None and old is not None and old > ref:
            total += old - ref
        ref = new
    if ref is not None and value > ref:
        total += value - ref
    return total


def oracle(
    sent: list[Sent], events: list[tuple[datetime, float | None, float | None]], *, is_index: bool
) -> tuple[dict[int, tuple[Any, ...]], dict[date, tuple[Any, ...]]]:
    """Hour and day rollups of one channel: {hour_us: row}, {day: row} (rows as in SQL)."""
    first_seen: dict[datetime, Sent] = {}
    for item in sent:
        first_seen.setdefault(item.at, item)
    counted = sorted((s for s in first_seen.values() if not s.suspect), key=lambda s: s.at)
    steps: list[float | None] = []
    for n, item in enumerate(counted):
        if not is_index or n == 0:
            steps.append(None)
            continue
        prev = counted[n - 1]
        between = [
            (old, new)
            for at, old, new in sorted(events, key=lambda e: e[0])
            if prev.at < at <= item.at
        ]
        steps.append(oracle_step(prev.value, item.value, between))

    def bucket_row(members: list[int]) -> tuple[Any, ...]:
        values = [counted[i].value for i in members]
        known = [steps[i] for i in members if steps[i] is not None]
        return (
            sum(known) if known else None,
            min(values),
            max(values),
            None if is_index else sum(values) / len(values),
            len(values),
            to_epoch_us(counted[members[0]].at),
            counted[members[0]].value,
            to_epoch_us(counted[members[-1]].at),
            counted[members[-1]].value,
        )

    hours: dict[int, list[int]] = defaultdict(list)
    days: dict[date, list[int]] = defaultdict(list)
    for n, item in enumerate(counted):
        hour = item.at.replace(minute=0, second=0, microsecond=0)
        hours[to_epoch_us(hour)].append(n)
        days[paris_day(item.at)].append(n)
    return (
        {hour: bucket_row(members) for hour, members in hours.items()},
        {day: bucket_row(members) for day, members in days.items()},
    )


def stored(
    engine: Engine, channel_id: int
) -> tuple[dict[int, tuple[Any, ...]], dict[date, tuple[Any, ...]]]:
    columns = "consumption, min, max, mean, count, first_at, first_value, last_at, last_value"
    with engine.connect() as conn:
        hours = {
            int(row[0]): tuple(row[1:])
            for row in conn.execute(
                text(f"SELECT hour_start, {columns} FROM rollup_hour WHERE channel_id = :c"),
                {"c": channel_id},
            )
        }
        days = {
            row[0]: tuple(row[1:])
            for row in conn.execute(
                select(
                    RollupDay.day,
                    RollupDay.consumption,
                    RollupDay.min,
                    RollupDay.max,
                    RollupDay.mean,
                    RollupDay.count,
                    RollupDay.first_at,
                    RollupDay.first_value,
                    RollupDay.last_at,
                    RollupDay.last_value,
                ).where(RollupDay.channel_id == channel_id)
            )
        }
    days = {
        day: (*row[:5], to_epoch_us(row[5]), row[6], to_epoch_us(row[7]), row[8])
        for day, row in days.items()
    }
    return hours, days


def same_row(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a is None or b is None:
            if a is not b:
                return False
        elif not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


def assert_same(got: dict[Any, tuple[Any, ...]], want: dict[Any, tuple[Any, ...]]) -> None:
    assert sorted(got) == sorted(want)
    for key, row in want.items():
        assert same_row(got[key], row), (key, got[key], row)


# ----------------------------------------------------------------------------- pure rules


def test_step_is_the_difference_when_the_index_grows() -> None:
    assert step_consumption(100.0, 130.0) == 30.0
    assert step_consumption(100.0, 100.0) == 0.0


def test_step_after_a_reset_to_near_zero_counts_the_new_value() -> None:
    assert step_consumption(50_000.0, 12.0) == 12.0
    assert step_consumption(50_000.0, 500.0) == 500.0  # exactly 1 %


def test_step_after_an_unexplained_fall_counts_nothing() -> None:
    assert step_consumption(50_000.0, 40_000.0) == 0.0
    assert step_consumption(50_000.0, 501.0) == 0.0
    assert step_consumption(10.0, -3.0) == 0.0


def test_step_is_bridged_through_meter_events() -> None:
    replaced = MeterBreak(0, old_index=1_050.0, new_index=0.0)
    assert step_consumption(1_000.0, 20.0, [replaced]) == 50.0 + 20.0
    unknown_old = MeterBreak(0, old_index=None, new_index=100.0)
    assert step_consumption(1_000.0, 130.0, [unknown_old]) == 30.0
    unknown_new = MeterBreak(0, old_index=1_010.0, new_index=None)
    assert step_consumption(1_000.0, 5.0, [unknown_new]) == 10.0
    # two changes between two readings; an old index below the reference counts nothing
    two = [MeterBreak(0, 990.0, 0.0), MeterBreak(1, 40.0, 500.0)]
    assert step_consumption(1_000.0, 520.0, two) == 0.0 + 40.0 + 20.0


@given(
    st.floats(-1e12, 1e12, allow_nan=False),
    st.floats(-1e12, 1e12, allow_nan=False),
    st.lists(
        st.tuples(
            st.none() | st.floats(-1e12, 1e12, allow_nan=False),
            st.none() | st.floats(-1e12, 1e12, allow_nan=False),
        ),
        max_size=3,
    ),
)
def test_step_is_never_negative_and_matches_the_oracle(
    prev: float, value: float, events: list[tuple[float | None, float | None]]
) -> None:
    breaks = [MeterBreak(n, old, new) for n, (old, new) in enumerate(events)]
    step = step_consumption(prev, value, breaks)
    assert step >= 0
    assert step == pytest.approx(oracle_step(prev, value, events))


def test_chain_skips_suspect_points_and_events_before_the_reference() -> None:
    points = [(10, 100.0, True), (20, 5.0, False), (30, 110.0, True), (40, 3.0, True)]
    breaks = [MeterBreak(5, 50.0, 0.0), MeterBreak(35, 120.0, 0.0)]
    steps = [step for *_, step in chain_steps(points, previous=(8, 90.0), breaks=breaks)]
    assert steps == [10.0, None, 10.0, 10.0 + 3.0]


@st.composite
def hourly_points(draw: st.DrawFn) -> list[tuple[int, float, bool]]:
    offsets = sorted(draw(st.sets(st.integers(0, 72 * 60), min_size=1, max_size=40)))
    value = draw(st.integers(0, 10**6))
    out = []
    for minute in offsets:
        if draw(st.booleans()):
            value += draw(st.integers(0, 5000))
        elif draw(st.integers(0, 9)) == 0:
            value = draw(st.integers(0, 10**6))
        out.append((minute * 60_000_000, float(value), draw(st.integers(0, 7)) > 0))
    return out


@given(hourly_points(), st.booleans())
def test_roll_hours_and_days_match_the_oracle(
    points: list[tuple[int, float, bool]], is_index: bool
) -> None:
    base = datetime(2024, 3, 30, tzinfo=UTC)
    sent = [
        Sent(INDEX if is_index else GAUGE, base + timedelta(microseconds=at), value, not counted)
        for at, value, counted in points
    ]
    shifted = [(to_epoch_us(s.at), s.value, not s.suspect) for s in sent]
    hours = roll_hours(7, shifted, is_index=is_index)
    want_hours, want_days = oracle(sent, [], is_index=is_index)
    assert_same({h.hour_us: _astuple(h)[2:] for h in hours}, want_hours)
    days = roll_days(hours)
    assert_same({d.day: _astuple(d)[2:] for d in days}, want_days)


def _astuple(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in row.__dataclass_fields__)


# ----------------------------------------------------------------------------- the store


def _channel_ids(estate: Estate) -> tuple[int, int]:
    return estate.channels[SITE, BOX, INDEX], estate.channels[SITE, BOX, GAUGE]


def _ingest(store: Engine, sent: list[Sent], batch_size: int = 5000) -> None:
    """Ingest, then bring the rollups up to date (ingestion only marks them stale)."""
    ingest(store, [s.reading() for s in sent], batch_size=batch_size)
    refresh_rollups(store)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2024, 3, 31), 23), (date(2024, 10, 27), 25), (date(2024, 6, 12), 24)],
)
def test_dst_days_have_23_or_25_hours(store: Engine, estate: Estate, day: date, hours: int) -> None:
    index_id, gauge_id = _channel_ids(estate)
    assert hours_in_day(day) == hours
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    sent = []
    for n in range(72):  # three UTC days of hourly readings around the Paris day
        at = start + n * HOUR
        sent.append(Sent(INDEX, at, 1_000.0 + 10 * n))
        sent.append(Sent(GAUGE, at, 20.0 + n % 3))
    _ingest(store, sent)
    with store.connect() as conn:
        index_day = conn.execute(
            select(RollupDay.consumption, RollupDay.count).where(
                RollupDay.channel_id == index_id, RollupDay.day == day
            )
        ).one()
        gauge_day = conn.execute(
            select(RollupDay.count, RollupDay.min, RollupDay.max).where(
                RollupDay.channel_id == gauge_id, RollupDay.day == day
            )
        ).one()
    assert index_day == (10.0 * hours, hours)
    assert gauge_day == (hours, 20.0, 22.0)
    for channel_id, is_index in ((index_id, True), (gauge_id, False)):
        want = oracle([s for s in sent if (s.path == INDEX) == is_index], [], is_index=is_index)
        assert_same(stored(store, channel_id)[0], want[0])
        assert_same(stored(store, channel_id)[1], want[1])


WEEKS = [
    datetime(2024, 3, 28, tzinfo=UTC),
    datetime(2024, 10, 24, tzinfo=UTC),
    datetime(2024, 7, 1, tzinfo=UTC),
]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from(WEEKS))
    minutes = sorted(draw(st.sets(st.integers(0, 6 * 24 * 60), min_size=1, max_size=30)))
    sent: list[Sent] = []
    value = float(draw(st.integers(0, 10**7)))
    for minute in minutes:
        at = base + timedelta(minutes=minute)
        choice = draw(st.integers(0, 9))
        if choice == 0:
            value = float(draw(st.integers(0, 10**7)))  # a reset or a jump
        elif choice == 1:
            value = float(draw(st.integers(0, 50)))  # a restart from zero
        else:
            value += draw(st.integers(0, 3000))
        sent.append(Sent(INDEX, at, value, suspect=draw(st.integers(0, 9)) == 0))
        if draw(st.booleans()):
            sent.append(
                Sent(
                    GAUGE, at, draw(st.integers(-40, 160)) / 4, suspect=draw(st.integers(0, 9)) == 0
                )
            )
    event_minutes = draw(st.lists(st.integers(0, 6 * 24 * 60), max_size=2))
    events = [
        (
            base + timedelta(minutes=m),
            draw(st.none() | st.integers(0, 10**7).map(float)),
            draw(st.none() | st.integers(0, 100).map(float)),
        )
        for m in event_minutes
    ]
    deliveries = list(sent) + draw(st.lists(st.sampled_from(sent), max_size=10))  # re-sent
    seed = draw(st.integers(0, 2**32))
    random.Random(seed).shuffle(deliveries)  # late data: any order
    return {
        "sent": sent,
        "deliveries": deliveries,
        "events": events,
        "batch_size": draw(st.integers(1, 12)),
        "split": draw(st.integers(0, len(deliveries))),
        "events_late": draw(st.booleans()),
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_rollups_equal_the_raw_computation(
    store: Engine, estate: Estate, scenario: dict[str, Any]
) -> None:
    clear_data(store)
    index_id, gauge_id = _channel_ids(estate)
    events = scenario["events"]
    if not scenario["events_late"]:
        for at, old, new in events:
            add_meter_event(store, index_id, at, old_index=old, new_index=new)
    deliveries = scenario["deliveries"]
    split = scenario["split"]
    _ingest(store, deliveries[:split], scenario["batch_size"])
    if scenario["events_late"]:  # recorded after some data: re-rolled explicitly
        for at, old, new in events:
            add_meter_event(store, index_id, at, old_index=old, new_index=new)
            reroll(store, index_id, at, at)
    _ingest(store, deliveries[split:], scenario["batch_size"])
    sent = scenario["deliveries"]
    index_want = oracle([s for s in sent if s.path == INDEX], events, is_index=True)
    gauge_want = oracle([s for s in sent if s.path == GAUGE], [], is_index=False)
    index_got, gauge_got = stored(store, index_id), stored(store, gauge_id)
    assert_same(index_got[0], index_want[0])
    assert_same(index_got[1], index_want[1])
    assert_same(gauge_got[0], gauge_want[0])
    assert_same(gauge_got[1], gauge_want[1])


def test_late_data_rerolls_only_the_buckets_it_touches(store: Engine, estate: Estate) -> None:
    index_id, _ = _channel_ids(estate)
    start = datetime(2024, 5, 1, 22, tzinfo=UTC)  # Paris midnight
    sent = [Sent(INDEX, start + n * HOUR, 100.0 * n) for n in range(48) if n != 10]
    _ingest(store, sent)
    # Mark two untouched buckets: a re-roll of them would overwrite the marks.
    far_hour = start + 30 * HOUR
    with store.begin() as conn:
        conn.execute(
            update(RollupHour)
            .where(RollupHour.channel_id == index_id, RollupHour.hour_start == far_hour)
            .values(consumption=-1.0)
        )
        conn.execute(
            update(RollupDay)
            .where(RollupDay.channel_id == index_id, RollupDay.day == date(2024, 5, 3))
            .values(consumption=-1.0)
        )
    late = Sent(INDEX, start + 10 * HOUR, 1_000.0)
    _ingest(store, [late])
    got_hours, got_days = stored(store, index_id)
    want_hours, want_days = oracle([*sent, late], [], is_index=True)
    assert got_hours[to_epoch_us(far_hour)][0] == -1.0  # not re-rolled
    assert got_days[date(2024, 5, 3)][0] == -1.0  # not re-rolled
    for hour in (start + 10 * HOUR, start + 11 * HOUR):  # the late hour and the next one
        assert same_row(got_hours[to_epoch_us(hour)], want_hours[to_epoch_us(hour)])
    assert got_hours[to_epoch_us(start + 11 * HOUR)][0] == 100.0  # was 200 before
    assert same_row(got_days[date(2024, 5, 2)], want_days[date(2024, 5, 2)])


def test_a_meter_event_recorded_later_is_bridged_after_reroll(
    store: Engine, estate: Estate
) -> None:
    index_id, _ = _channel_ids(estate)
    start = datetime(2024, 2, 1, tzinfo=UTC)
    sent = [Sent(INDEX, start + n * HOUR, 5_000.0 + 10 * n) for n in range(5)]
    sent += [Sent(INDEX, start + n * HOUR, 20.0 + 10 * (n - 5)) for n in range(5, 10)]
    _ingest(store, sent)
    # Before the event is known: the fall to 20 (under 1 % of 5,040) is a restart from zero.
    before = stored(store, index_id)[0][to_epoch_us(start + 5 * HOUR)][0]
    assert before == 20.0
    event_at = start + 4 * HOUR + timedelta(minutes=30)
    add_meter_event(store, index_id, event_at, old_index=5_047.0, new_index=0.0)
    reroll(store, index_id, event_at, event_at)
    after = stored(store, index_id)[0][to_epoch_us(start + 5 * HOUR)][0]
    assert after == 7.0 + 20.0
    want = oracle(sent, [(event_at, 5_047.0, 0.0)], is_index=True)
    assert_same(stored(store, index_id)[0], want[0])
    assert_same(stored(store, index_id)[1], want[1])


def test_a_manual_correction_replaces_the_value_and_rerolls(store: Engine, estate: Estate) -> None:
    index_id, _ = _channel_ids(estate)
    start = datetime(2024, 9, 1, tzinfo=UTC)
    sent = [Sent(INDEX, start + n * HOUR, 100.0 * n) for n in range(6)]
    _ingest(store, sent)
    record_manual(
        store, channel_id=index_id, at=start + 2 * HOUR, value=150.0, provenance="corrected"
    )
    corrected = [s if n != 2 else Sent(INDEX, s.at, 150.0) for n, s in enumerate(sent)]
    want = oracle(corrected, [], is_index=True)
    assert_same(stored(store, index_id)[0], want[0])
    assert_same(stored(store, index_id)[1], want[1])
    with store.connect() as conn:
        provenance = conn.execute(
            text("SELECT provenance FROM reading WHERE channel_id = :c AND at = :at"),
            {"c": index_id, "at": to_epoch_us(start + 2 * HOUR)},
        ).scalar_one()
    assert provenance == "corrected"
    # A manual reading where none was: stored and counted.
    record_manual(
        store, channel_id=index_id, at=start + 6 * HOUR + timedelta(minutes=5), value=700.0
    )
    assert stored(store, index_id)[0][to_epoch_us(start + 6 * HOUR)][0] == 200.0


def test_reroll_refuses_bad_arguments(store: Engine, estate: Estate) -> None:
    index_id, _ = _channel_ids(estate)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(UsageError):
        reroll(store, index_id, at, at - HOUR)
    with pytest.raises(UsageError):
        reroll(store, 999_999, at, at)
    with pytest.raises(UsageError):
        reroll(store, index_id, datetime(2024, 1, 1), at)  # noqa: DTZ001 - naive on purpose
    with pytest.raises(UsageError):
        record_manual(store, channel_id=index_id, at=at, value=float("nan"))
    with pytest.raises(UsageError):
        record_manual(store, channel_id=999_999, at=at, value=1.0)
