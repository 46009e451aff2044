"""Lazy rollups: ingestion marks spans stale, refresh_rollups re-rolls and clears them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from tests.hq.estate import Estate, build_estate
from wesh.errors import UsageError
from wesh.hq.ingest import HqSink, ingest
from wesh.hq.migrate import migrate
from wesh.hq.models import RollupDirty, RollupHour
from wesh.hq.queries import building_average_per_m2, consumption, consumption_raw, previous_year
from wesh.hq.rollups import refresh_rollups
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
