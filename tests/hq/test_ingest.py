"""Ingestion: idempotence, rejections, batches and bounded memory, auto-creation, HqSink."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import wesh.hq.ingest as ingest_module
from tests.hq.estate import Estate, build_estate
from wesh.errors import TransientError, UsageError
from wesh.hq.db import make_engine
from wesh.hq.ingest import ChannelResolver, HqSink, ingest
from wesh.hq.migrate import migrate
from wesh.hq.models import Channel, Gateway, Reading, RollupDirty, SiteEvent, SyncLedger
from wesh.hq.rollups import refresh_rollups
from wesh.hq.timeutil import to_epoch_us
from wesh.sync.sink import IngestResult, ReadingSink, SiteStatus, SyncAlarm, SyncReading

SITE = "site-B1"
START = datetime(2024, 3, 30, 20, tzinfo=UTC)  # across the spring-forward night
HOUR = timedelta(hours=1)


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
                ("B1-01", 50.0, "dwelling"),
                ("B1-02", 70.0, "dwelling"),
                ("B1-PC", None, "common_area"),
            ]
        },
    )


def hourly(box: str, hours: int, *, start: datetime = START) -> list[SyncReading]:
    out = []
    for n in range(hours):
        at = start + n * HOUR
        out.append(
            SyncReading(
                SITE,
                box,
                "tic.1.index.base",
                at,
                10_000 + 125 * n,
                "Wh",
                "index",
                "measured",
                "hour_last",
            )
        )
        out.append(
            SyncReading(
                SITE,
                box,
                "impulsion.1.index",
                at,
                500 + 7 * n,
                "L",
                "index",
                "estimated",
                "hour_last",
            )
        )
        out.append(
            SyncReading(
                SITE, box, "temp.1", at, 19.0 + n % 4 / 2, "°C", "gauge", "measured", "hour_mean"
            )
        )
    return out


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    stats = "consumption, min, max, mean, count, first_at, first_value, last_at, last_value"
    tables = {
        "reading": "channel_id, at, value, provenance, quality, aggregate",
        "rollup_hour": f"channel_id, hour_start, {stats}",
        "rollup_day": f"channel_id, day, {stats}",
    }
    with engine.connect() as conn:
        return {
            table: [
                tuple(row)
                for row in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1, 2"))
            ]
            for table, columns in tables.items()
        }


def test_the_same_batch_twice_inserts_nothing_the_second_time(
    store: Engine, estate: Estate
) -> None:
    readings = hourly("box-B1-01", 30) + hourly("box-B1-02", 30)
    first = ingest(store, readings)
    assert first == IngestResult(inserted=len(readings), duplicates=0, rejected=0)
    assert refresh_rollups(store) == 1  # 6 channels, consecutive ids, the same hours: one row
    before = dump(store)
    assert len(before["rollup_hour"]) == len(readings)
    second = ingest(store, readings)
    assert second == IngestResult(inserted=0, duplicates=len(readings), rejected=0)
    assert refresh_rollups(store) == 0  # nothing new: nothing marked stale
    assert dump(store) == before


def test_stored_rows_carry_provenance_quality_and_aggregate(store: Engine, estate: Estate) -> None:
    suspect = SyncReading(SITE, "box-B1-01", "temp.1", START, 85.0, "°C", "gauge", "suspect")
    ingest(store, [*hourly("box-B1-01", 1), suspect])
    with store.connect() as conn:
        rows = conn.execute(
            select(
                Channel.path, Reading.value, Reading.provenance, Reading.quality, Reading.aggregate
            )
            .join(Channel, Channel.id == Reading.channel_id)
            .order_by(Channel.path)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("impulsion.1.index", 500.0, "estimated", "good", "hour_last"),
        ("temp.1", 19.0, "measured", "good", "hour_mean"),  # the first one sent wins
        ("tic.1.index.base", 10_000.0, "measured", "good", "hour_last"),
    ]
    alone = SyncReading(SITE, "box-B1-02", "temp.1", START, 85.0, "°C", "gauge", "suspect")
    assert ingest(store, [alone]).inserted == 1
    refresh_rollups(store)
    with store.connect() as conn:
        quality = conn.execute(select(Reading.quality).where(Reading.value == 85.0)).scalar_one()
        hours = conn.execute(text("SELECT count(*) FROM rollup_hour")).scalar_one()
    assert quality == "suspect"
    assert hours == 3  # the suspect value makes no bucket


def test_duplicates_inside_one_batch_are_counted_once(store: Engine, estate: Estate) -> None:
    readings = hourly("box-B1-01", 3)
    result = ingest(store, readings + readings[:4])
    assert result == IngestResult(inserted=9, duplicates=4, rejected=0)


def test_the_first_reading_sent_wins_inside_a_batch(store: Engine, estate: Estate) -> None:
    def temp(value: float, quality: str = "measured") -> SyncReading:
        return SyncReading(SITE, "box-B1-01", "temp.1", START, value, "°C", "gauge", quality)  # type: ignore[arg-type]

    result = ingest(store, [temp(30.0), temp(12.0, "suspect"), temp(11.0)])
    assert result == IngestResult(inserted=1, duplicates=2, rejected=0)
    with store.connect() as conn:
        stored = conn.execute(select(Reading.value, Reading.quality)).all()
    assert [tuple(row) for row in stored] == [(30.0, "good")]  # not the smallest value


@pytest.mark.parametrize("with_a_bad_one", [False, True])
def test_the_two_half_past_two_of_the_october_night_are_two_instants(
    store: Engine, estate: Estate, with_a_bad_one: bool
) -> None:
    early = datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 00:30Z
    late = early.replace(fold=1)  # 01:30Z: equal to ``early`` for Python (same zone)
    readings = [
        SyncReading(SITE, "box-B1-01", "temp.1", at, value, "°C", "gauge", "measured")
        for at, value in ((early, 18.0), (late, 17.5))
    ]
    if with_a_bad_one:  # the reading-by-reading path
        readings.append(dataclasses.replace(readings[0], path="temp.9"))
    result = ingest(store, readings)
    assert result == IngestResult(inserted=2, duplicates=0, rejected=int(with_a_bad_one))
    with store.connect() as conn:
        stored = conn.execute(select(Reading.at, Reading.value).order_by(Reading.at)).all()
    assert [tuple(row) for row in stored] == [
        (datetime(2024, 10, 27, 0, 30, tzinfo=UTC), 18.0),
        (datetime(2024, 10, 27, 1, 30, tzinfo=UTC), 17.5),
    ]


def test_bad_readings_are_rejected_with_a_reason_and_the_rest_kept(
    store: Engine, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    good = hourly("box-B1-01", 2)
    bad = [
        SyncReading("site-nowhere", "box-B1-01", "temp.1", START, 1.0, "°C", "gauge", "measured"),
        SyncReading(SITE, "box-nowhere", "temp.1", START, 1.0, "°C", "gauge", "measured"),
        SyncReading(SITE, "box-B1-01", "temp.9", START, 1.0, "°C", "gauge", "measured"),
        SyncReading(SITE, "box-B1-02", "temp.1", START, float("nan"), "°C", "gauge", "measured"),
        SyncReading(
            SITE, "box-B1-02", "temp.1", START.replace(tzinfo=None), 1.0, "°C", "gauge", "measured"
        ),
        SyncReading(SITE, "box-B1-02", "tic.1.index.base", START, 1, "Wh", "gauge", "measured"),
        SyncReading(SITE, "box-B1-02", "impulsion.1.index", START, 1, "m3", "index", "measured"),
        SyncReading(SITE, "box-B1-02", "impulsion.1.index", START, 1, "L", "index", "great"),  # type: ignore[arg-type]
        SyncReading(SITE, "box-B1-02", "impulsion.1.index", START, True, "L", "index", "measured"),
    ]
    bad += bad[:3]  # the same channels again: counted, not logged again
    with caplog.at_level(logging.WARNING, logger="wesh.hq.ingest"):
        result = ingest(store, good[:3] + bad + good[3:])
    assert result == IngestResult(inserted=len(good), duplicates=0, rejected=len(bad))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 9
    for needle in (
        "unknown site 'site-nowhere'",
        "unknown box 'box-nowhere'",
        "unknown channel 'temp.9'",
        "value not finite",
        "naive timestamp",
        "gauge reading on an index channel",
        "unit 'm3' differs from the channel's 'L'",
        "unknown quality 'great'",
        "value of type bool",
    ):
        assert sum(needle in message for message in messages) == 1, needle


def test_indexes_beyond_2_53_are_refused_and_gauges_may_be_any_finite_number(
    store: Engine, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    """A DOUBLE holds every integer up to 2**53 exactly: an index beyond would be rounded."""
    box, index, gauge = "box-B1-01", "tic.1.index.base", "temp.1"

    def at(n: int) -> datetime:
        return START + n * HOUR

    good = [
        SyncReading(SITE, box, index, at(0), 2**53, "Wh", "index", "measured"),
        SyncReading(SITE, box, index, at(1), -(2.0**53), "Wh", "index", "measured"),
        SyncReading(SITE, box, gauge, at(0), 1e300, "°C", "gauge", "measured"),
        SyncReading(SITE, box, gauge, at(1), 2**62, "°C", "gauge", "measured"),
    ]
    bad = [
        SyncReading(SITE, box, index, at(2), 2**53 + 1, "Wh", "index", "measured"),
        SyncReading(SITE, box, index, at(3), 1e16, "Wh", "index", "measured"),
        SyncReading(SITE, box, index, at(4), -1e300, "Wh", "index", "measured"),
    ]
    with caplog.at_level(logging.WARNING, logger="wesh.hq.ingest"):
        result = ingest(store, good + bad)
    assert result == IngestResult(inserted=len(good), duplicates=0, rejected=len(bad))
    messages = [record.getMessage() for record in caplog.records]
    assert any("index 9007199254740993 beyond 2**53" in message for message in messages)
    assert any("index 1e+16 beyond 2**53" in message for message in messages)
    with store.connect() as conn:
        values = sorted(conn.execute(select(Reading.value)).scalars())
    assert values == [-(2.0**53), 2.0**53, 2.0**62, 1e300]


def test_unknown_channels_of_known_boxes_are_created_on_request(
    store: Engine, estate: Estate
) -> None:
    new = [
        SyncReading(
            SITE,
            "box-B1-01",
            "tic.1.power_va",
            START + n * HOUR,
            300 + n,
            "VA",
            "gauge",
            "measured",
        )
        for n in range(3)
    ]
    unknown_box = SyncReading(SITE, "box-new", "temp.1", START, 1.0, "°C", "gauge", "measured")
    assert ingest(store, new) == IngestResult(0, 0, 3)
    assert ingest(store, [*new, unknown_box], auto_create=True) == IngestResult(3, 0, 1)
    refresh_rollups(store)
    with store.connect() as conn:
        channel = conn.execute(
            select(Channel.id, Channel.kind, Channel.unit, Channel.is_index).where(
                Channel.path == "tic.1.power_va"
            )
        ).one()
        hours = conn.execute(
            text("SELECT count(*) FROM rollup_hour WHERE channel_id = :c"), {"c": channel.id}
        ).scalar_one()
    assert (channel.kind, channel.unit, channel.is_index) == ("power", "VA", False)
    assert hours == 3


def test_batches_stream_with_bounded_memory_and_give_the_same_rollups(
    store: Engine, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = hourly("box-B1-01", 40) + hourly("box-B1-02", 40)
    pulled = 0

    def source() -> Iterator[SyncReading]:
        nonlocal pulled
        for reading in readings:
            pulled += 1
            yield reading

    seen: list[tuple[int, int]] = []
    real = ingest_module._ingest_batch

    def spy(conn: Any, batch: Any, *args: Any, **kwargs: Any) -> IngestResult:
        seen.append((len(batch), pulled))
        return real(conn, batch, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "_ingest_batch", spy)
    result = ingest(store, source(), batch_size=7)
    assert result.inserted == len(readings)
    done = 0
    for size, pulled_then in seen:
        assert size <= 7
        assert pulled_then - done <= 7  # never more than one batch read ahead
        done += size
    refresh_rollups(store)
    small_batches = dump(store)
    monkeypatch.undo()
    with store.begin() as conn:
        for table in ("rollup_day", "rollup_hour", "reading"):
            conn.execute(text(f"DELETE FROM {table}"))
    ingest(store, readings)  # one batch
    refresh_rollups(store)
    assert _approx(dump(store)) == _approx(small_batches)


def _approx(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]
        for name, rows in tables.items()
    }


def test_batch_size_must_be_positive(store: Engine, estate: Estate) -> None:
    with pytest.raises(UsageError):
        ingest(store, [], batch_size=0)
    assert ingest(store, []) == IngestResult(0, 0, 0)


def test_the_resolver_reloads_a_site_after_its_refresh_delay(store: Engine, estate: Estate) -> None:
    now = [0.0]
    resolver = ChannelResolver(refresh_s=60.0, clock=lambda: now[0])
    reading = SyncReading(SITE, "box-B1-01", "temp.2", START, 55.0, "%", "gauge", "measured")
    assert ingest(store, [reading], resolver=resolver).rejected == 1
    with store.begin() as conn:
        box_id = estate.boxes[SITE, "box-B1-01"]
        conn.execute(
            Channel.__table__.insert().values(
                box_id=box_id, path="temp.2", kind="humidity", unit="%", is_index=False
            )
        )
    now[0] = 30.0
    assert ingest(store, [reading], resolver=resolver).rejected == 1  # cached miss
    now[0] = 61.0
    assert ingest(store, [reading], resolver=resolver).inserted == 1


# A delivery: readings good and bad in any order, checked against an oracle written from
# docs/hq-data.md ("Ingestion"), whichever path (whole batch, or reading by reading) runs.

PARIS_SUMMER = timezone(timedelta(hours=2))
KNOWN = {  # (box, path) -> (kind, unit) of the estate's site-B1 channels
    (box, path): ("index" if is_index else "gauge", unit)
    for box in ("box-B1-01", "box-B1-02")
    for path, _, unit, is_index in (
        ("tic.1.index.base", "", "Wh", True),
        ("impulsion.1.index", "", "L", True),
        ("temp.1", "", "°C", False),
    )
}


#: Ways a reading can be wrong (the last one is valid: extreme but storable values).
FLAWS = (
    "site",
    "box",
    "path",
    "value",
    "int64",
    "naive",
    "kind",
    "unit",
    "quality",
    "aggregate",
    "extreme",
)


class Float(float):
    """A subclass of float (as numpy's float64 is): not stored."""


def flawed(reading: SyncReading, flaw: str, pick: int) -> SyncReading:
    """``reading`` made wrong in one way (``pick`` chooses among the bad values)."""
    values: dict[str, Any] = {
        "site": {"site": "site-nowhere"},
        "box": {"box": "box-nowhere"},
        "path": {"path": "temp.9"},
        "value": {"value": [float("nan"), float("inf"), True, "1", None, Float(1.5)][pick % 6]},
        "int64": {"value": [2**63, -(2**63) - 1, 10**400][pick % 3]},
        "naive": {"at": reading.at.replace(tzinfo=None)},
        "kind": {"kind": "gauge" if reading.kind == "index" else "index"},
        "unit": {"unit": "m3"},
        "quality": {"quality": "great"},
        "aggregate": {"aggregate": "weekly"},
        "extreme": {"value": [-(2**63), 2**63 - 1, 1e300, -1e300][pick % 4]},
    }
    return dataclasses.replace(reading, **values[flaw])


@st.composite
def deliveries(draw: st.DrawFn) -> list[SyncReading]:
    bad = draw(st.booleans())  # half the examples are clean: the whole-batch path runs
    readings = []
    for _ in range(draw(st.integers(0, 40))):
        box, path = draw(st.sampled_from(sorted(KNOWN)))
        kind, unit = KNOWN[box, path]
        at = START + draw(st.integers(0, 5)) * HOUR
        if draw(st.booleans()):
            at = at.astimezone(PARIS_SUMMER)  # the same instant, written another way
        value: float = draw(st.integers(0, 10**9)) if kind == "index" else draw(st.floats(-30, 60))
        reading = SyncReading(
            SITE,
            box,
            path,
            at,
            value,
            draw(st.sampled_from([unit, None])),
            kind,  # type: ignore[arg-type]
            draw(st.sampled_from(["measured", "estimated", "suspect"])),
            draw(st.sampled_from(["sample", "hour_mean", "hour_last"])),
        )
        if bad and draw(st.integers(0, 3)) == 0:
            reading = flawed(reading, draw(st.sampled_from(FLAWS)), draw(st.integers(0, 5)))
        readings.append(reading)
    return readings


def oracle(
    estate: Estate, readings: list[SyncReading]
) -> tuple[dict[tuple[int, int], tuple[float, str, str, str]], int]:
    """The stored rows by key, and how many readings are rejected."""
    stored: dict[tuple[int, int], tuple[float, str, str, str]] = {}
    rejected = 0
    for r in readings:
        channel = estate.channels.get((r.site, r.box, r.path))
        value = r.value
        valid_value = (type(value) is float and value == value and abs(value) != float("inf")) or (
            type(value) is int and -(2**63) <= value < 2**63
        )
        if r.kind == "index" and valid_value:
            valid_value = abs(value) <= 2**53  # exact in a DOUBLE
        if (
            channel is None
            or not valid_value
            or r.at.tzinfo is None
            or r.quality not in ("measured", "estimated", "suspect")
            or r.aggregate not in ("sample", "hour_mean", "hour_last")
            or r.kind != KNOWN[r.box, r.path][0]
            or r.unit not in (None, KNOWN[r.box, r.path][1])
        ):
            rejected += 1
            continue
        key = (channel, to_epoch_us(r.at))
        stored.setdefault(
            key,
            (
                float(value),
                "estimated" if r.quality == "estimated" else "measured",
                "suspect" if r.quality == "suspect" else "good",
                r.aggregate,
            ),
        )
    return stored, rejected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(readings=deliveries(), batch_size=st.integers(1, 50), again=st.booleans())
def test_any_delivery_stores_what_the_oracle_says(
    store: Engine, estate: Estate, readings: list[SyncReading], batch_size: int, again: bool
) -> None:
    with store.begin() as conn:
        conn.execute(text("DELETE FROM rollup_dirty"))
        conn.execute(text("DELETE FROM reading"))
    expected, rejected = oracle(estate, readings)
    resolver = ChannelResolver()
    result = ingest(store, readings, batch_size=batch_size, resolver=resolver)
    accepted = len(readings) - rejected
    assert result == IngestResult(len(expected), accepted - len(expected), rejected)
    if again:  # the same delivery again, through the same (warm) channel cache
        second = ingest(store, readings, batch_size=batch_size, resolver=resolver)
        assert second == IngestResult(0, accepted, rejected)
    with store.connect() as conn:
        rows = conn.execute(
            select(
                Reading.channel_id,
                Reading.at,
                Reading.value,
                Reading.provenance,
                Reading.quality,
                Reading.aggregate,
            )
        ).all()
        spans = conn.execute(
            select(
                RollupDirty.first_channel_id,
                RollupDirty.last_channel_id,
                RollupDirty.start_at,
                RollupDirty.end_at,
            )
        ).all()
    assert {(row[0], to_epoch_us(row[1])): tuple(row[2:]) for row in rows} == expected
    for channel, at_us in expected:  # every stored reading lies in a stale span of its channel
        assert any(
            first <= channel <= last and to_epoch_us(lo) <= at_us < to_epoch_us(hi)
            for first, last, lo, hi in spans
        ), (channel, at_us)


def test_one_bad_reading_in_a_clean_batch_is_the_only_one_lost(
    store: Engine, estate: Estate
) -> None:
    for flaw in FLAWS:
        for pick in range(6):
            with store.begin() as conn:
                conn.execute(text("DELETE FROM reading"))
            readings = hourly("box-B1-01", 3) + hourly("box-B1-02", 3)
            readings[7] = flawed(readings[7], flaw, pick)
            expected, rejected = oracle(estate, readings)
            # extreme values: any finite gauge is stored, an index beyond 2**53 is not
            assert rejected == (0 if flaw == "extreme" and readings[7].kind == "gauge" else 1)
            assert ingest(store, readings) == IngestResult(len(expected), 0, rejected), flaw
            with store.connect() as conn:
                rows = conn.execute(
                    select(
                        Reading.channel_id,
                        Reading.at,
                        Reading.value,
                        Reading.provenance,
                        Reading.quality,
                        Reading.aggregate,
                    )
                ).all()
            stored = {(row[0], to_epoch_us(row[1])): tuple(row[2:]) for row in rows}
            assert stored == expected, (flaw, pick)


# ----------------------------------------------------------------------------- durability


def test_the_sqlite_store_syncs_every_commit(tmp_path: Path) -> None:
    """What the receiver acknowledges must survive a power cut: WAL synced at each commit."""
    engine = make_engine(tmp_path / "hq.sqlite3")
    try:
        for _ in range(2):  # a pooled connection, then a second one: each is set up
            with engine.connect() as conn, engine.connect() as other:
                for each in (conn, other):
                    assert each.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                    assert each.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- the sink


def test_hq_sink_is_a_reading_sink(store: Engine, estate: Estate) -> None:
    sink = HqSink(store)
    assert isinstance(sink, ReadingSink)


def test_hq_sink_counts_readings_in_the_ledger_and_marks_the_gateway_seen(
    store: Engine, estate: Estate
) -> None:
    clock = [datetime(2024, 4, 1, 8, tzinfo=UTC)]
    sink = HqSink(store, now=lambda: clock[0], batch_size=5)
    readings = hourly("box-B1-01", 4)
    assert sink.ingest(readings) == IngestResult(12, 0, 0)
    clock[0] += timedelta(minutes=5)
    assert sink.ingest(readings) == IngestResult(0, 12, 0)
    with Session(store) as conn:
        ledger = conn.execute(select(SyncLedger).where(SyncLedger.site_id == SITE)).scalar_one()
        seen = conn.execute(
            select(Gateway.last_seen_at).where(Gateway.site_id == SITE)
        ).scalar_one()
    assert ledger.received_count == 24
    assert ledger.updated_at == clock[0]
    assert seen == clock[0]


def test_hq_sink_stores_each_alarm_once_with_its_box_and_channel(
    store: Engine, estate: Estate
) -> None:
    sink = HqSink(store, now=lambda: datetime(2024, 4, 1, tzinfo=UTC))
    alarm = SyncAlarm(
        SITE,
        "box-B1-01",
        "box-B1-01/tic.1.index.base",
        START,
        "counter_reset",
        "warning",
        "index went down",
    )
    other = SyncAlarm(SITE, None, None, START, "box_down", "alarm", "x" * 2000)
    unknown = SyncAlarm("site-nowhere", "box-1", "temp.1", START, "box_down", "alarm", "down")
    for item in (alarm, alarm, other, unknown, other):
        sink.ingest_alarm(item)
    with Session(store) as conn:
        events = conn.execute(select(SiteEvent).order_by(SiteEvent.id)).scalars().all()
    assert len(events) == 3
    first = events[0]
    assert (first.site_id, first.box_ref, first.channel_path, first.kind) == (
        SITE,
        "box-B1-01",
        "tic.1.index.base",
        "counter_reset",
    )
    assert first.box_id == estate.boxes[SITE, "box-B1-01"]
    assert first.channel_id == estate.channels[SITE, "box-B1-01", "tic.1.index.base"]
    assert first.at == START
    assert len(events[1].message) == 1000
    assert (events[2].site_id, events[2].box_id, events[2].channel_id) == (
        "site-nowhere",
        None,
        None,
    )


def test_hq_sink_keeps_the_newest_status(store: Engine, estate: Estate) -> None:
    sink = HqSink(store, now=lambda: datetime(2024, 4, 1, tzinfo=UTC))
    newer = SiteStatus(SITE, START + HOUR, 40, 1, 12, 3, 50, 71, -0.4)
    older = SiteStatus(SITE, START, 41, 0, 0, 2, 50, None, None)
    sink.ingest_status(newer)
    sink.ingest_status(older)
    with Session(store) as conn:
        ledger = conn.execute(select(SyncLedger).where(SyncLedger.site_id == SITE)).scalar_one()
        count = conn.execute(select(func.count()).select_from(SyncLedger)).scalar_one()
    assert count == 1
    assert ledger.last_status_at == newer.at
    assert ledger.status["boxes_down"] == 1
    assert ledger.status["at"] == (START + HOUR).isoformat()
    assert ledger.status["clock_offset_s"] == -0.4


def test_hq_sink_keeps_a_hand_over_whose_refresh_collides(
    store: Engine,
    estate: Estate,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def collide(engine: Engine) -> int:
        raise TransientError("database operation failed: deadlock")

    monkeypatch.setattr(ingest_module, "refresh_rollups", collide)
    sink = HqSink(store)
    readings = hourly("box-B1-01", 2)
    with caplog.at_level(logging.WARNING, logger="wesh.hq.ingest"):
        assert sink.ingest(readings) == IngestResult(len(readings), 0, 0)
    assert "refresh postponed" in caplog.text
    with pytest.raises(TransientError):  # asked for explicitly, it says so
        sink.refresh()
    monkeypatch.undo()
    assert sink.refresh() == 1  # the spans waited
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Reading)).scalar_one() == 6


def test_hq_sink_ledger_rows_are_made_when_missing_and_never_go_back_in_time(
    store: Engine, estate: Estate
) -> None:
    clock = [datetime(2024, 4, 1, 8, tzinfo=UTC)]
    sink = HqSink(store, now=lambda: clock[0])
    stranger = SyncReading("site-nowhere", "box-1", "temp.1", START, 1.0, "°C", "gauge", "measured")
    assert sink.ingest([stranger, stranger]) == IngestResult(0, 0, 2)
    assert sink.ingest(hourly("box-B1-01", 1)) == IngestResult(3, 0, 0)
    with store.begin() as conn:
        conn.execute(SyncLedger.__table__.delete().where(SyncLedger.site_id == SITE))
    late = clock[0]
    clock[0] -= timedelta(hours=1)  # a hand-over stamped earlier (another worker's clock)
    assert sink.ingest(hourly("box-B1-02", 2)) == IngestResult(6, 0, 0)
    with Session(store) as conn:
        ledgers = {
            row.site_id: (row.received_count, row.updated_at)
            for row in conn.execute(select(SyncLedger)).scalars()
        }
        seen = conn.execute(
            select(Gateway.last_seen_at).where(Gateway.site_id == SITE)
        ).scalar_one()
    assert ledgers == {"site-nowhere": (2, late), SITE: (6, clock[0])}  # made again: 6
    assert seen == late  # the gateway's last contact does not go back
