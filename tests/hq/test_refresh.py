"""Lazy rollups: ingestion marks spans stale, refresh_rollups re-rolls and clears them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, text, update

from tests.hq.estate import Estate, add_meter_event, build_estate, clear_data
from wesh.errors import UsageError
from wesh.hq.ingest import HqSink, ingest
from wesh.hq.migrate import migrate
from wesh.hq.models import RollupDay, RollupDirty, RollupHour
from wesh.hq.queries import building_average_per_m2, consumption, consumption_raw, previous_year
from wesh.hq.rollups import MeterBreak, _rounds, hour_rows, refresh_rollups, reroll
from wesh.hq.timeutil import HOUR_US, to_epoch_us
from wesh.sync.sink import SyncReading

HOUR = timedelta(hours=1)
SITE = "site-B1"
INDEX, GAUGE = "tic.1.index.base", "temp.1"
START = datetime(2024, 5, 1, 22, tzinfo=UTC)  # Paris midnight of 2 May


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


@pytest.fixture
def estate(store: Engine) -> Estate:
    return build_estate(store, {"B1": [("B1-01", 40.0, "dwelling"), ("B1-02", 60.0, "dwelling")]})


def index(box: str, at: datetime, value: float) -> SyncReading:
    return SyncReading(SITE, box, INDEX, at, value, "Wh", "index", "measured")


def gauge(box: str, at: datetime, value: float) -> SyncReading:
    return SyncReading(SITE, box, GAUGE, at, value, "°C", "gauge", "measured")


def series(box: str, hours: int, *, start: datetime = START) -> list[SyncReading]:
    return [index(box, start + n * HOUR, 1_000.0 + 10.0 * n) for n in range(hours)]


def dirty(store: Engine) -> list[tuple[int, int, datetime, datetime]]:
    """The stale spans: (first channel, last channel, start, end), in insertion order."""
    with store.connect() as conn:
        rows = conn.execute(
            select(
                RollupDirty.first_channel_id,
                RollupDirty.last_channel_id,
                RollupDirty.start_at,
                RollupDirty.end_at,
            ).order_by(RollupDirty.id)
        ).all()
    return [(int(first), int(last), lo, hi) for first, last, lo, hi in rows]


def rollups(store: Engine) -> dict[str, list[tuple[Any, ...]]]:
    stats = "consumption, min, max, mean, count, first_at, first_value, last_at, last_value"
    with store.connect() as conn:
        return {
            table: [
                tuple(row)
                for row in conn.execute(text(f"SELECT {key}, {stats} FROM {table} ORDER BY 1, 2"))
            ]
            for table, key in (
                ("rollup_hour", "channel_id, hour_start"),
                ("rollup_day", "channel_id, day"),
            )
        }


def test_ingest_records_one_stale_span_per_channel_and_batch(store: Engine, estate: Estate) -> None:
    first = estate.channels[SITE, "box-B1-01", INDEX]
    second = estate.channels[SITE, "box-B1-02", INDEX]
    readings = series("box-B1-01", 30) + series("box-B1-02", 5, start=START + 2 * HOUR)
    ingest(store, readings, batch_size=20)  # box-B1-01 spans two batches
    assert sorted(dirty(store)) == sorted(  # widened to whole hours
        [
            (first, first, START, START + 20 * HOUR),
            (first, first, START + 20 * HOUR, START + 30 * HOUR),
            (second, second, START + 2 * HOUR, START + 7 * HOUR),
        ]
    )
    assert rollups(store) == {"rollup_hour": [], "rollup_day": []}  # nothing rolled yet


def test_channels_with_the_same_hours_and_consecutive_ids_share_a_row(
    store: Engine, estate: Estate
) -> None:
    ids = sorted(cid for (_, box, _), cid in estate.channels.items() if box == "box-B1-01")
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # the estate's ids are consecutive
    readings = []
    for n in range(3):
        at = START + n * HOUR
        readings += [
            index("box-B1-01", at, 1_000.0 + n),
            gauge("box-B1-01", at, 19.0),
            SyncReading(
                SITE, "box-B1-01", "impulsion.1.index", at, 5.0 + n, "L", "index", "measured"
            ),
        ]
    ingest(store, readings)
    assert dirty(store) == [(ids[0], ids[-1], START, START + 3 * HOUR)]
    assert refresh_rollups(store) == 1
    assert len(rollups(store)["rollup_hour"]) == 9


def test_duplicates_only_mark_nothing(store: Engine, estate: Estate) -> None:
    readings = series("box-B1-01", 4)
    ingest(store, readings)
    assert refresh_rollups(store) == 1
    ingest(store, readings)
    assert dirty(store) == []


def test_refresh_rolls_every_stale_span_and_clears_it(store: Engine, estate: Estate) -> None:
    readings = series("box-B1-01", 30) + [
        gauge("box-B1-02", START + n * HOUR, 19.0) for n in (0, 1)
    ]
    ingest(store, readings, batch_size=7)
    pending = len(dirty(store))
    assert pending >= 5
    assert refresh_rollups(store) == pending
    assert dirty(store) == []
    got = rollups(store)
    assert len(got["rollup_hour"]) == 32
    assert {str(row[1]) for row in got["rollup_day"]} == {"2024-05-02", "2024-05-03"}
    # The same answer as one re-roll of everything in one go.
    with store.begin() as conn:
        conn.execute(text("DELETE FROM rollup_day"))
        conn.execute(text("DELETE FROM rollup_hour"))
        conn.execute(text("DELETE FROM reading"))
    ingest(store, readings)
    assert refresh_rollups(store) == 2
    assert rollups(store) == got


def test_two_refreshes_in_a_row_are_idempotent(store: Engine, estate: Estate) -> None:
    ingest(store, series("box-B1-01", 48), batch_size=10)
    refresh_rollups(store)
    once = rollups(store)
    assert refresh_rollups(store) == 0
    assert rollups(store) == once
    # Re-rolling already fresh spans again (a concurrent refresher's duplicate) changes nothing.
    channel = next(iter(dirty_channels(once)))
    with store.begin() as conn:
        conn.execute(
            RollupDirty.__table__.insert(),
            [
                {
                    "first_channel_id": channel,
                    "last_channel_id": channel,
                    "start_at": START,
                    "end_at": START + 48 * HOUR,
                }
            ]
            * 2,
        )
    assert refresh_rollups(store) == 2
    assert rollups(store) == once


def dirty_channels(tables: dict[str, list[tuple[Any, ...]]]) -> set[int]:
    return {int(row[0]) for row in tables["rollup_hour"]}


def test_limit_and_channels_bound_a_refresh(store: Engine, estate: Estate) -> None:
    first = estate.channels[SITE, "box-B1-01", INDEX]
    ingest(store, series("box-B1-01", 10) + series("box-B1-02", 10), batch_size=4)
    total = len(dirty(store))
    assert refresh_rollups(store, limit=2, batch_size=1) == 2
    assert len(dirty(store)) == total - 2
    refresh_rollups(store, channels=[first])
    assert not any(low <= first <= high for low, high, _, _ in dirty(store))
    assert dirty(store)  # the other channel waits
    assert refresh_rollups(store, channels=[]) == 0
    remaining = len(dirty(store))
    assert refresh_rollups(store) == remaining
    assert dirty(store) == []
    with pytest.raises(UsageError):
        refresh_rollups(store, limit=-1)
    with pytest.raises(UsageError):
        refresh_rollups(store, batch_size=0)


def test_a_late_reading_rerolls_only_its_buckets(store: Engine, estate: Estate) -> None:
    channel = estate.channels[SITE, "box-B1-01", INDEX]
    readings = [r for n, r in enumerate(series("box-B1-01", 48)) if n != 10]
    ingest(store, readings)
    refresh_rollups(store)
    far = START + 30 * HOUR
    with store.begin() as conn:  # a mark that a re-roll of this hour would overwrite
        conn.execute(
            update(RollupHour)
            .where(RollupHour.channel_id == channel, RollupHour.hour_start == far)
            .values(consumption=-1.0)
        )
    ingest(store, [index("box-B1-01", START + 10 * HOUR, 1_100.0)])
    assert dirty(store) == [(channel, channel, START + 10 * HOUR, START + 11 * HOUR)]
    refresh_rollups(store)
    with store.connect() as conn:
        hours = dict(
            conn.execute(
                select(RollupHour.hour_start, RollupHour.consumption).where(
                    RollupHour.channel_id == channel
                )
            ).all()
        )
    assert hours[far] == -1.0  # not re-rolled
    assert hours[START + 10 * HOUR] == 10.0  # 1,090 -> 1,100
    assert hours[START + 11 * HOUR] == 10.0  # was 20: its step now starts from 1,100


def test_a_late_reading_long_before_does_not_reroll_the_time_between(
    store: Engine, estate: Estate
) -> None:
    channel = estate.channels[SITE, "box-B1-01", INDEX]
    ingest(store, series("box-B1-01", 24 * 5))
    refresh_rollups(store)
    middle = START + 60 * HOUR
    with store.begin() as conn:
        conn.execute(
            update(RollupHour)
            .where(RollupHour.channel_id == channel, RollupHour.hour_start == middle)
            .values(consumption=-1.0)
        )
    ingest(store, [index("box-B1-01", START - 24 * HOUR, 900.0)])  # a day before
    ingest(store, [index("box-B1-01", START + 24 * 5 * HOUR, 2_200.0)])  # and a new one
    refresh_rollups(store)
    with store.connect() as conn:
        mark = conn.execute(
            select(RollupHour.consumption).where(
                RollupHour.channel_id == channel, RollupHour.hour_start == middle
            )
        ).scalar_one()
    assert mark == -1.0


def test_queries_after_ingest_are_up_to_date_without_an_explicit_refresh(
    store: Engine, estate: Estate
) -> None:
    ingest(store, series("box-B1-01", 72) + series("box-B1-02", 72))
    scope: dict[str, Any] = {
        "building": "B1",
        "kind": "electricity",
        "start": date(2024, 5, 2),
        "end": date(2024, 5, 5),
        "by": "day",
    }
    first = consumption(store, **scope)
    assert first == consumption_raw(store, **scope)
    assert [row.value for row in first] == [460.0, 480.0, 480.0]
    # A late reading changes the answer at once: 1,500 at 50 h, 2,000 at 50 h 30, 1,510 at
    # 51 h (an unexplained fall: step 0).
    ingest(store, [index("box-B1-01", START + 50.5 * HOUR, 2_000.0)])
    assert dirty(store)
    after = consumption(store, **scope)
    assert after == consumption_raw(store, **scope)
    assert [row.value for row in after] == [460.0, 480.0, 970.0]
    assert dirty(store) == []
    per_m2 = building_average_per_m2(store, **scope)
    assert [row.value_per_m2 for row in per_m2] == [
        None if row.value is None else round(row.value / 100.0, 6) for row in after
    ]
    compared = previous_year(store, **scope)
    assert [row.value for row in compared] == [row.value for row in after]


def test_hq_sink_refreshes_after_each_hand_over_by_default(store: Engine, estate: Estate) -> None:
    sink = HqSink(store)
    sink.ingest(series("box-B1-01", 5))
    assert dirty(store) == []
    assert len(rollups(store)["rollup_hour"]) == 5


def test_hq_sink_spaces_refreshes_out_on_its_timer(store: Engine, estate: Estate) -> None:
    now = [100.0]
    sink = HqSink(store, refresh_every_s=10.0, clock=lambda: now[0])
    sink.ingest(series("box-B1-01", 3))
    assert len(dirty(store)) == 1  # the timer starts at the first hand-over
    now[0] += 5.0
    sink.ingest(series("box-B1-01", 3, start=START + 3 * HOUR))
    assert len(dirty(store)) == 2
    now[0] += 5.0
    sink.ingest(series("box-B1-01", 3, start=START + 6 * HOUR))
    assert dirty(store) == []
    assert len(rollups(store)["rollup_hour"]) == 9
    sink.ingest(series("box-B1-01", 1, start=START + 9 * HOUR))
    assert sink.refresh() == 1


# ----------------------------------------------------------------------------- SQL and Python
#
# The refresh rolls hours of one counted reading in SQL and leaves the others (several
# readings in an hour, meter events in reach) to Python (``hour_rows``). The two must give
# the same rows bit for bit: checked against ``hour_rows`` run over the stored readings.


def exact(value: object) -> object:
    """A float's exact bits (``-0.0`` differs from ``0.0``); other values as they are."""
    return float(value).hex() if isinstance(value, float) else value


def stored_hours(store: Engine) -> list[tuple[object, ...]]:
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT channel_id, hour_start, consumption, min, max, mean, count, first_at, "
                "first_value, last_at, last_value FROM rollup_hour ORDER BY channel_id, hour_start"
            )
        ).all()
    return [tuple(exact(value) for value in row) for row in rows]


def python_hours(store: Engine) -> list[tuple[object, ...]]:
    """``hour_rows`` over every stored reading of every channel (the Python roll)."""
    with store.connect() as conn:
        kinds = dict(conn.execute(text("SELECT id, is_index FROM channel")).all())
        readings = conn.execute(
            text("SELECT channel_id, at, value, quality FROM reading ORDER BY channel_id, at")
        ).all()
        events = conn.execute(
            text(
                "SELECT channel_id, at, old_index, new_index FROM meter_event "
                "WHERE channel_id IS NOT NULL ORDER BY channel_id, at, id"
            )
        ).all()
    points: dict[int, list[tuple[int, float, bool]]] = defaultdict(list)
    for cid, at, value, quality in readings:
        points[int(cid)].append((int(at), float(value), quality == "good"))
    breaks: dict[int, list[MeterBreak]] = defaultdict(list)
    for cid, at, old, new in events:
        breaks[int(cid)].append(MeterBreak(int(at), old, new))
    rows: list[tuple[object, ...]] = []
    for cid in sorted(points):
        made = hour_rows(cid, points[cid], bool(kinds[cid]), None, breaks[cid])
        rows.extend(tuple(exact(value) for value in row) for row in made)
    return rows


def stored_hours_us(store: Engine) -> list[tuple[object, ...]]:
    """:func:`stored_hours` with instants as epoch µs (as ``hour_rows`` gives them)."""
    return [
        tuple(to_epoch_us(v) if isinstance(v, datetime) else v for v in row)
        for row in stored_hours(store)
    ]


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    """Random index and gauge series of two boxes, delivered in two parts refreshed apart.

    Mostly one reading an hour (SQL's case), sometimes several (Python's: box-B1-02 only,
    so box-B1-01 stays in SQL unless a meter event is in reach); resets around the 1 %
    "near zero" threshold, suspect readings, fractional values, meter events of
    box-B1-01's index, the week of the October DST fold.
    """
    base = draw(st.sampled_from([START, datetime(2024, 10, 26, 20, tzinfo=UTC)]))
    readings: list[SyncReading] = []
    for box in ("box-B1-01", "box-B1-02"):
        value = draw(st.integers(0, 10**6)) / draw(st.sampled_from([1, 4, 10]))
        hours = sorted(draw(st.sets(st.integers(0, 30), min_size=1, max_size=20)))
        times = [base + h * HOUR + timedelta(minutes=draw(st.integers(0, 59))) for h in hours]
        if box == "box-B1-02" and draw(st.booleans()):  # crowded hours
            extra = draw(st.lists(st.integers(0, 30 * 60), min_size=1, max_size=6))
            times = sorted({*times, *(base + timedelta(minutes=m) for m in extra)})
        for at in times:
            change = draw(st.integers(0, 9))
            if change == 0:
                value = draw(st.integers(0, 10**6)) / 10  # a reset or a jump
            elif change == 1:  # a fall around 1 % of the previous value: restart or not
                value = round(value * draw(st.sampled_from([0.0, 0.005, 0.01, 0.02, 0.5])), 1)
            else:
                value += draw(st.integers(0, 3000)) / 10
            quality = "suspect" if draw(st.integers(0, 9)) == 0 else "measured"
            readings.append(SyncReading(SITE, box, INDEX, at, value, "Wh", "index", quality))
            if draw(st.booleans()):
                temperature = draw(st.integers(-400, 400)) / draw(st.sampled_from([3, 10]))
                readings.append(gauge(box, at, temperature))
    events = [
        (base + timedelta(minutes=draw(st.integers(0, 30 * 60))), old, new)
        for old, new in draw(
            st.lists(
                st.tuples(
                    st.none() | st.integers(0, 10**6).map(float),
                    st.none() | st.integers(0, 100).map(float),
                ),
                max_size=2,
            )
        )
    ]
    return {
        "readings": readings,
        "split": draw(st.integers(0, len(readings))),
        "events": events,
        "batch_size": draw(st.integers(1, 40)),
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=deliveries())
def test_refreshed_hours_are_the_python_roll_bit_for_bit(
    store: Engine, estate: Estate, case: dict[str, Any]
) -> None:
    clear_data(store)
    first = estate.channels[SITE, "box-B1-01", INDEX]
    for at, old, new in case["events"]:
        add_meter_event(store, first, at, old_index=old, new_index=new)
    readings, split = case["readings"], case["split"]
    ingest(store, readings[:split], batch_size=case["batch_size"])
    refresh_rollups(store)
    ingest(store, readings[split:], batch_size=case["batch_size"])  # after: previous from before
    refresh_rollups(store)
    assert stored_hours_us(store) == python_hours(store)


def test_a_channel_with_crowded_hours_is_rolled_in_python_others_in_sql(
    store: Engine, estate: Estate
) -> None:
    # Three readings in one hour of box-B1-01: their sum depends on the order of the terms.
    crowded = [
        gauge("box-B1-01", START + timedelta(minutes=m), t)
        for m, t in ((0, 0.1), (20, 0.2), (40, 0.3))
    ]
    sole = [gauge("box-B1-02", START + n * HOUR, 0.1 * n) for n in range(3)]
    later = [gauge("box-B1-01", START + n * HOUR, 20.0 + n) for n in (1, 2)]
    ingest(store, crowded + sole + later)
    channel = estate.channels[SITE, "box-B1-01", GAUGE]
    assert reroll(store, channel, START, START + 3 * HOUR) == 3  # hours written
    refresh_rollups(store)
    assert stored_hours_us(store) == python_hours(store)
    with store.connect() as conn:
        mean = conn.execute(
            select(RollupHour.mean).where(
                RollupHour.channel_id == channel, RollupHour.hour_start == START
            )
        ).scalar_one()
    assert mean == (0.1 + 0.2 + 0.3) / 3  # Python's order: ((0.1 + 0.2) + 0.3) / 3


def test_a_stale_span_covering_a_meter_change_is_bridged(store: Engine, estate: Estate) -> None:
    channel = estate.channels[SITE, "box-B1-01", INDEX]
    other = estate.channels[SITE, "box-B1-02", INDEX]
    ingest(store, series("box-B1-01", 5) + series("box-B1-02", 5))
    refresh_rollups(store)
    # The meter is replaced at 5 h 30, between the last reading stored (4 h: 1,040) and the
    # next delivery (from 8 h): the stale span starts after the event, yet its first step
    # is bridged through it: (1,047 - 1,040) + (3 - 0).
    add_meter_event(store, channel, START + 5.5 * HOUR, old_index=1_047.0, new_index=0.0)
    ingest(
        store,
        [index("box-B1-01", START + n * HOUR, 3.0 + 10 * (n - 8)) for n in range(8, 12)]
        + [index("box-B1-02", START + n * HOUR, 1_000.0 + 10.0 * n) for n in range(8, 12)],
    )
    refresh_rollups(store)
    with store.connect() as conn:
        steps = dict(
            conn.execute(
                select(RollupHour.hour_start, RollupHour.consumption).where(
                    RollupHour.channel_id == channel
                )
            ).all()
        )
        others = dict(
            conn.execute(
                select(RollupHour.hour_start, RollupHour.consumption).where(
                    RollupHour.channel_id == other
                )
            ).all()
        )
    assert steps[START + 8 * HOUR] == 7.0 + 3.0
    assert [steps[START + n * HOUR] for n in (9, 10, 11)] == [10.0, 10.0, 10.0]
    assert others[START + 8 * HOUR] == 40.0  # no event: 1,080 - 1,040
    assert stored_hours_us(store) == python_hours(store)


def test_the_two_utc_hours_of_the_dst_fold_are_two_buckets_of_one_25_hour_day(
    store: Engine, estate: Estate
) -> None:
    # 27 October 2024: Paris 02:30 happens twice, at 00:30 and 01:30 UTC.
    fold = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    day_start = datetime(2024, 10, 26, 22, tzinfo=UTC)  # Paris midnight (+02:00)
    readings = [index("box-B1-01", day_start + n * HOUR, 100.0 * n) for n in range(25)]
    readings += [index("box-B1-01", fold + timedelta(minutes=m), 250.0 + m) for m in (5, 10)]
    readings += [gauge("box-B1-02", fold, 1.0), gauge("box-B1-02", fold + HOUR, 2.0)]
    ingest(store, readings)
    refresh_rollups(store)
    assert stored_hours_us(store) == python_hours(store)
    channel = estate.channels[SITE, "box-B1-02", GAUGE]
    with store.connect() as conn:
        hours = conn.execute(
            select(RollupHour.hour_start, RollupHour.mean)
            .where(RollupHour.channel_id == channel)
            .order_by(RollupHour.hour_start)
        ).all()
        day = conn.execute(
            select(RollupDay.day, RollupDay.count, RollupDay.mean).where(
                RollupDay.channel_id == channel
            )
        ).one()
        index_day = conn.execute(
            select(RollupDay.count, RollupDay.consumption).where(
                RollupDay.channel_id == estate.channels[SITE, "box-B1-01", INDEX],
                RollupDay.day == date(2024, 10, 27),
            )
        ).one()
    assert [(hour.hour, mean) for hour, mean in hours] == [(0, 1.0), (1, 2.0)]
    assert tuple(day) == (date(2024, 10, 27), 2, 1.5)
    assert tuple(index_day) == (27, 2_400.0)  # 25 hours, one holding two more readings


@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 12),
            st.integers(0, 4),
            st.integers(0, 200),
            st.integers(1, 30),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_dirty_runs_merge_as_their_channels_would(rows: list[tuple[int, int, int, int]]) -> None:
    day = 24 * HOUR_US
    dirty_rows = [
        (first, first + extra, hour * HOUR_US, hour * HOUR_US + length * HOUR_US)
        for first, extra, hour, length in rows
    ]
    per_channel: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for first, last, lo, hi in dirty_rows:
        for cid in range(first, last + 1):
            per_channel[cid].append((lo, hi))
    want: dict[int, list[tuple[int, int]]] = {}
    for cid, spans in per_channel.items():
        merged: list[list[int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1] + day:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        want[cid] = [(lo, hi) for lo, hi in merged]
    got: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for spans in _rounds(dirty_rows):
        for cid, span in spans.items():
            got[cid].append(span)
    assert dict(got) == want


def test_readings_before_1970_are_bucketed_as_python_does(store: Engine, estate: Estate) -> None:
    # SQL's % keeps the sign of the dividend; Python's floors: such spans stay in Python.
    start = datetime(1969, 12, 31, 19, 30, tzinfo=UTC)  # to 22:30, one an hour
    ingest(
        store,
        [index("box-B1-01", start + n * HOUR, 100.0 + n) for n in range(4)]
        + [gauge("box-B1-02", start + n * HOUR, 1.5 * n) for n in range(4)],
    )
    refresh_rollups(store)
    hours = stored_hours_us(store)
    assert hours == python_hours(store)
    assert {row[1] for row in hours} == {
        to_epoch_us(start) - 30 * 60 * 10**6 + n * HOUR_US for n in range(4)
    }


def statements_of(store: Engine, run: Any) -> list[str]:
    """The statements on wesh's tables that ``run()`` executes."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if any(word in statement for word in ("rollup", "reading", "channel", "meter_event")):
            seen.append(statement)

    event.listen(store, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(store, "before_cursor_execute", record)
    return seen


def test_a_refresh_costs_few_statements(store: Engine, estate: Estate) -> None:
    assert len(statements_of(store, lambda: refresh_rollups(store))) == 1  # nothing stale
    hour = [
        reading
        for box in ("box-B1-01", "box-B1-02")
        for reading in (index(box, START, 1_000.0), gauge(box, START, 20.0))
    ]
    ingest(store, hour)
    done = statements_of(store, lambda: refresh_rollups(store))
    # MAX(id), the stale rows, kinds, next readings, meter events, DELETE hours, two
    # INSERT ... SELECT, the count, DELETE + INSERT days, DELETE the stale rows.
    assert len(done) <= 12, done
    read_back = "SELECT channel_id, at, value, quality FROM reading"  # the Python roll's
    assert not any(statement.startswith(read_back) for statement in done)
    assert len(rollups(store)["rollup_hour"]) == 4
