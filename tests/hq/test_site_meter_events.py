"""A site's meter_replaced / counter_reset alarm records a meter_event at HQ (once)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from tests.hq.estate import Estate, build_estate
from wesh.hq.ingest import HqSink
from wesh.hq.migrate import migrate
from wesh.hq.models import Meter, MeterEvent, RollupDirty, RollupHour, SiteEvent
from wesh.hq.site_events import parse_index_change
from wesh.sync.sink import SyncAlarm, SyncReading

SITE = "site-B1"
BOX = "box-B1-01"
PATH = "tic.1.index.base"
H10 = datetime(2025, 1, 15, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
REPLACED = (
    f"meter replaced: index 30123456 -> 0 Wh on {BOX}/{PATH} (ADCO 021728123456 -> 021728654321)"
)

# ----------------------------------------------------------------------------- the parser


def test_the_gateway_messages_parse() -> None:
    assert parse_index_change(REPLACED) == (30123456.0, 0.0)
    assert parse_index_change(
        "counter reset: index 1234570 -> 12 L on dw-12/impulsion.1.index"
    ) == (1234570.0, 12.0)
    assert parse_index_change("index went down") == (None, None)
    assert parse_index_change("counter reset: index nan -> 12 L") == (None, 12.0)
    assert parse_index_change("counter reset: index 5 -> x L") == (5.0, None)


#: indexes as meters count them (a 15-digit register at most): `.15g` writes them exactly
finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)


@given(old=finite, new=finite, unit=st.sampled_from(["", " Wh", " L"]))
def test_any_index_pair_written_as_the_gateway_writes_it_parses_back(
    old: float, new: float, unit: str
) -> None:
    message = f"counter reset: index {old:.15g} -> {new:.15g}{unit} on b/impulsion.1.index"
    parsed_old, parsed_new = parse_index_change(message)
    assert parsed_old == float(f"{old:.15g}")
    assert parsed_new == float(f"{new:.15g}")


@given(st.text())
def test_any_text_parses_to_numbers_or_none_without_raising(text: str) -> None:
    for value in parse_index_change(text):
        assert value is None or isinstance(value, float)


# ----------------------------------------------------------------------------- ingestion


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


@pytest.fixture
def estate(store: Engine) -> Estate:
    return build_estate(store, {"B1": [("B1-01", 50.0, "dwelling")]})


def add_meter(store: Engine, estate: Estate) -> int:
    with store.begin() as conn:
        return int(
            conn.execute(
                insert(Meter).returning(Meter.id),
                {
                    "box_id": estate.boxes[SITE, BOX],
                    "serial": "021728123456",
                    "kind": "electricity",
                    "input": "tic.1",
                    "installed_at": datetime(2020, 1, 1, tzinfo=UTC),
                },
            ).scalar_one()
        )


def reading(at: datetime, value: float) -> SyncReading:
    return SyncReading(SITE, BOX, PATH, at, value, "Wh", "index", "measured", "hour_last")


def alarm(message: str = REPLACED, kind: str = "meter_replaced") -> SyncAlarm:
    return SyncAlarm(SITE, BOX, f"{BOX}/{PATH}", H10 + 1.75 * HOUR, kind, "warning", message)


def hour_consumption(store: Engine, channel_id: int) -> dict[datetime, float | None]:
    with store.connect() as conn:
        rows = conn.execute(
            select(RollupHour.hour_start, RollupHour.consumption).where(
                RollupHour.channel_id == channel_id
            )
        ).all()
    return {start.astimezone(UTC): value for start, value in rows}


def count(store: Engine, model: type[MeterEvent] | type[SiteEvent] | type[RollupDirty]) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_replacement_alarm_records_a_meter_event_and_bridges_the_hour(
    store: Engine, estate: Estate
) -> None:
    meter_id = add_meter(store, estate)
    channel_id = estate.channels[SITE, BOX, PATH]
    sink = HqSink(store, now=lambda: H10 + 5 * HOUR)
    # the old meter's last reading synced is 30,123,000 at 11:00; the gateway saw it
    # reach 30,123,456 before the new meter (from 0) read 40 at 12:00
    sink.ingest(
        [reading(H10, 30_122_500), reading(H10 + HOUR, 30_123_000), reading(H10 + 2 * HOUR, 40)]
    )
    sink.refresh()
    assert hour_consumption(store, channel_id)[H10 + 2 * HOUR] == 40  # the "restart" guess
    sink.ingest_alarm(alarm())
    with Session(store) as session:
        event = session.execute(select(MeterEvent)).scalar_one()
    assert (event.meter_id, event.channel_id, event.kind) == (meter_id, channel_id, "replaced")
    assert event.at.astimezone(UTC) == H10 + 1.75 * HOUR
    assert (event.old_index, event.new_index) == (30_123_456, 0)
    assert count(store, RollupDirty) >= 1
    sink.refresh()
    hours = hour_consumption(store, channel_id)
    assert hours[H10 + HOUR] == 500
    assert hours[H10 + 2 * HOUR] == 456 + 40  # bridged: neither negative nor absurd
    # the same alarm re-sent adds nothing, and marks nothing stale
    sink.ingest_alarm(alarm())
    assert (count(store, MeterEvent), count(store, SiteEvent), count(store, RollupDirty)) == (
        1,
        1,
        0,
    )


def test_an_unparsable_message_records_the_event_without_indexes(
    store: Engine, estate: Estate
) -> None:
    add_meter(store, estate)
    HqSink(store).ingest_alarm(alarm("index went down", "counter_reset"))
    with store.connect() as conn:
        row = conn.execute(
            select(MeterEvent.kind, MeterEvent.old_index, MeterEvent.new_index)
        ).one()
    assert tuple(row) == ("reset", None, None)


def test_without_a_meter_row_the_site_event_stays_and_a_warning_says_why(
    store: Engine, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    assert estate.boxes
    with caplog.at_level(logging.WARNING, logger="wesh.hq.site_events"):
        HqSink(store).ingest_alarm(alarm())
    assert (count(store, SiteEvent), count(store, MeterEvent)) == (1, 0)
    assert "no meter in service" in caplog.text


def test_other_alarms_and_unknown_channels_record_no_meter_event(
    store: Engine, estate: Estate
) -> None:
    add_meter(store, estate)
    sink = HqSink(store)
    sink.ingest_alarm(alarm("box down", "box_down"))
    sink.ingest_alarm(
        SyncAlarm(SITE, BOX, f"{BOX}/tic.9.index.base", H10, "meter_replaced", "warning", REPLACED)
    )
    assert (count(store, SiteEvent), count(store, MeterEvent)) == (2, 0)
