"""Ingestion: idempotence, rejections, batches and bounded memory, auto-creation, HqSink."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import wesh.hq.ingest as ingest_module
from tests.hq.estate import Estate, build_estate
from wesh.errors import UsageError
from wesh.hq.ingest import ChannelResolver, HqSink, ingest
from wesh.hq.migrate import migrate
from wesh.hq.models import Channel, Gateway, Reading, SiteEvent, SyncLedger
from wesh.hq.rollups import refresh_rollups
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
