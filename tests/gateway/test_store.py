"""The durable local store: schema, values, latest, history, events, status, queue, retention."""

from __future__ import annotations

import logging
import math
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway._store_builders import T0, Clock, event, integrity, poll, query, sample
from wesh.errors import BadInputError, ConfigError, UsageError
from wesh.gateway.store import RetentionPolicy, Store
from wesh.gateway.store_schema import (
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
    decode_value,
    encode_value,
    from_ms,
    to_ms,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "weshd.sqlite3"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[Store]:
    with Store.open(db, clock=clock) as opened:
        yield opened


# ----------------------------------------------------------------------------- opening


def test_open_creates_a_wal_database_with_the_current_schema(store: Store, db: Path) -> None:
    assert db.exists()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    assert query(db, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_full_durability_sets_synchronous_full(db: Path) -> None:
    with Store.open(db, durability="full") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_unknown_durability_is_a_usage_error(db: Path) -> None:
    with pytest.raises(UsageError):
        Store.open(db, durability="sometimes")  # type: ignore[arg-type]


def test_reopen_keeps_data_and_does_not_migrate_again(db: Path, clock: Clock) -> None:
    with Store.open(db, clock=clock) as store:
        store.add_samples(poll("dw-1", 1))
    with Store.open(db, clock=clock) as store:
        assert store.stats().rows == 30
        assert store.queue_depth() == 30
        assert store.latest_one("dw-1/poll.id") is not None
    assert query(db, "SELECT count(*) FROM schema_version") == [(1,)]


def test_a_newer_schema_version_is_refused(db: Path) -> None:
    Store.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="newer than this weshd supports") as caught:
        Store.open(db)
    assert caught.value.where == str(db)
    # the refusal released the lock: a later open (after a downgrade fix) can work
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    conn.commit()
    conn.close()
    Store.open(db).close()


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(BadInputError, match="not a weshd store"):
        Store.open(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database at all, " * 100)
    with pytest.raises(BadInputError, match="not a usable weshd store"):
        Store.open(path)


def test_a_second_store_on_the_same_file_is_refused(store: Store, db: Path) -> None:
    with pytest.raises(ConfigError, match="already open"):
        Store.open(db)


def test_an_unusable_directory_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError):
        Store.open(blocker / "sub" / "weshd.sqlite3")


def test_a_closed_store_refuses_calls_and_closing_twice_is_harmless(db: Path) -> None:
    store = Store.open(db)
    store.close()
    store.close()
    with pytest.raises(UsageError, match="closed"):
        store.add_samples([sample()])
    with pytest.raises(UsageError):
        store.latest()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retention_days": 0},
        {"events_retention_days": -1},
        {"queue_max_rows": 0},
        {"prune_batch_rows": 0},
    ],
)
def test_retention_policy_rejects_non_positive_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        RetentionPolicy(**kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- values


def test_values_keep_their_type(store: Store, db: Path) -> None:
    samples = [
        sample(path="index", value=123_456_789_012, kind="index", unit="Wh"),
        sample(path="float", value=3.0),
        sample(path="negative", value=-12.25),
        sample(path="on", value=True, kind="state", unit=None),
        sample(path="off", value=False, kind="state", unit=None),
        sample(path="text", value="HC..", kind="text", unit=None),
        sample(path="inf", value=math.inf),
    ]
    assert store.add_samples(samples) == len(samples)
    stored = {s.path: s.value for s in store.latest()}
    assert stored == {s.path: s.value for s in samples}
    for s in store.latest():
        assert type(s.value) is type(next(x for x in samples if x.path == s.path).value)
    types = dict(
        query(
            db,
            "SELECT c.path, typeof(r.value) FROM readings r JOIN channels c ON c.id = r.channel_id",
        )
    )
    assert types["index"] == "integer"
    assert types["float"] == "real"
    assert types["text"] == "text"


def test_long_texts_are_cut_and_logged_once(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    long = "x" * (MAX_TEXT_CHARS + 50)
    with caplog.at_level(logging.WARNING):
        store.add_samples([sample(path="text", value=long, kind="text", unit=None)])
        store.add_samples(
            [sample(path="text", value=long, kind="text", unit=None, at=T0 + timedelta(seconds=1))]
        )
    latest = store.latest_one("dw-1/text")
    assert latest is not None
    assert latest.value == "x" * MAX_TEXT_CHARS
    assert sum("cut to" in r.getMessage() for r in caplog.records) == 1


def test_bad_samples_are_skipped_and_the_good_ones_kept(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    batch = [
        sample(path="good.1", value=1.5),
        sample(path="nan", value=math.nan),
        sample(path="naive", at=datetime(2024, 3, 1, 12, 0)),  # noqa: DTZ001 - on purpose
        sample(path="huge", value=2**70, kind="index"),
        sample(path="badkind", kind="weird"),
        sample(path="badquality", quality="guessed"),
        sample(path="good.2", value=7, kind="index", unit="L"),
    ]
    with caplog.at_level(logging.WARNING):
        assert store.add_samples(batch) == 2
    assert [s.path for s in store.latest()] == ["good.1", "good.2"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    for channel in ("dw-1/nan", "dw-1/naive", "dw-1/huge", "dw-1/badkind", "dw-1/badquality"):
        assert channel in messages


def test_box_time_is_kept_apart_and_normalised_to_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    box_time = datetime(2024, 3, 1, 13, 0, 30, tzinfo=paris)
    store.add_samples([sample(box_time=box_time)])
    latest = store.latest_one("dw-1/temp.1")
    assert latest is not None
    assert latest.box_time == box_time
    assert latest.box_time.tzinfo == UTC
    assert latest.at == T0


def test_a_naive_box_time_is_dropped_not_the_sample(store: Store) -> None:
    store.add_samples([sample(box_time=datetime(2024, 3, 1, 13, 0))])  # noqa: DTZ001
    latest = store.latest_one("dw-1/temp.1")
    assert latest is not None
    assert latest.box_time is None


values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=MAX_TEXT_CHARS),
)


@given(values)
def test_value_codec_round_trips(value: float | int | str | bool) -> None:
    decoded = decode_value(*encode_value(value))
    assert decoded == value
    assert type(decoded) is type(value)


@given(st.floats(allow_nan=True).filter(math.isnan) | st.integers(min_value=2**63))
def test_value_codec_refuses_nan_and_huge_integers(value: float | int) -> None:
    with pytest.raises(ValueError):
        encode_value(value)


def test_value_codec_refuses_other_types() -> None:
    with pytest.raises(ValueError):
        encode_value(b"bytes")
    with pytest.raises(ValueError):
        decode_value(b"blob", None)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1900, 1, 1)))  # noqa: DTZ001
def test_time_codec_round_trips_to_the_millisecond(at: datetime) -> None:
    truncated = at.replace(microsecond=at.microsecond // 1000 * 1000)
    assert from_ms(to_ms(at)) == truncated


def test_time_codec_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        to_ms(datetime(2024, 1, 1))  # noqa: DTZ001


def test_samples_round_trip_through_the_store() -> None:
    kinds = st.sampled_from(["index", "gauge", "state", "text"])
    qualities = st.sampled_from(["measured", "estimated", "suspect"])
    instants = st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.sqlite3") as store:
        counter = iter(range(10**9))

        @given(
            value=values,
            kind=kinds,
            quality=qualities,
            at=instants,
            box_time=st.none() | instants,
            unit=st.none() | st.sampled_from(["Wh", "L", "°C"]),
            label=st.none() | st.text(max_size=20),
        )
        def check(value, kind, quality, at, box_time, unit, label) -> None:  # type: ignore[no-untyped-def]
            original = sample(
                path=f"p.{next(counter)}",
                value=value,
                kind=kind,
                quality=quality,
                at=at,
                box_time=box_time,
                unit=unit,
                label=label,
            )
            assert store.add_samples([original]) == 1
            (back,) = store.history(original.channel, since=at, until=at + timedelta(seconds=1))
            assert back == original
            assert type(back.value) is type(original.value)
            assert store.latest_one(original.channel) == original

        check()


# ----------------------------------------------------------------------------- latest & history


def test_latest_follows_the_newest_sample_and_never_goes_back(store: Store) -> None:
    store.add_samples([sample(value=1.0, at=T0)])
    store.add_samples([sample(value=2.0, at=T0 + timedelta(seconds=10))])
    store.add_samples([sample(value=0.5, at=T0 + timedelta(seconds=5))])  # late, older
    latest = store.latest_one("dw-1/temp.1")
    assert latest is not None
    assert latest.value == 2.0
    assert len(store.history("dw-1/temp.1", since=T0, until=T0 + timedelta(hours=1))) == 3


def test_latest_filters_by_box_and_sorts_by_channel(store: Store) -> None:
    store.add_samples(poll("dw-2", 1, gauges=2) + poll("dw-1", 1, gauges=2))
    assert [s.channel for s in store.latest(box="dw-1")] == [
        "dw-1/poll.id",
        "dw-1/temp.0",
        "dw-1/temp.1",
    ]
    assert len(store.latest()) == 6
    assert store.latest(box="nobody") == []
    assert store.latest_one("dw-9/temp.1") is None


def test_history_is_half_open_ordered_and_limited(store: Store) -> None:
    for i in range(10):
        store.add_samples([sample(value=float(i), at=T0 + timedelta(seconds=i))])
    found = store.history(
        "dw-1/temp.1", since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=6)
    )
    assert [s.value for s in found] == [2.0, 3.0, 4.0, 5.0]
    limited = store.history("dw-1/temp.1", since=T0, until=T0 + timedelta(hours=1), limit=3)
    assert [s.value for s in limited] == [0.0, 1.0, 2.0]
    assert store.history("dw-1/unknown", since=T0, until=T0 + timedelta(hours=1)) == []


def test_history_refuses_bad_arguments(store: Store) -> None:
    with pytest.raises(UsageError):
        store.history("dw-1/temp.1", since=datetime(2024, 1, 1), until=T0)  # noqa: DTZ001
    with pytest.raises(UsageError):
        store.history("dw-1/temp.1", since=T0, until=T0, limit=0)
    with pytest.raises(UsageError):
        store.pending(limit=10**9)


def test_a_metadata_change_keeps_the_old_unit_on_old_readings(store: Store, db: Path) -> None:
    store.add_samples(
        [sample(path="impulsion.1.index", value=5, kind="index", unit="L", label="EF")]
    )
    later = T0 + timedelta(minutes=1)
    store.add_samples(
        [
            sample(
                path="impulsion.1.index", value=6000, kind="index", unit="Wh", label="Gaz", at=later
            )
        ]
    )
    found = store.history("dw-1/impulsion.1.index", since=T0, until=later + timedelta(seconds=1))
    assert [(s.value, s.unit, s.label) for s in found] == [(5, "L", "EF"), (6000, "Wh", "Gaz")]
    latest = store.latest_one("dw-1/impulsion.1.index")
    assert latest is not None
    assert latest.unit == "Wh"
    assert query(db, "SELECT count(*) FROM channels") == [(2,)]


def test_channels_are_cached_across_reopen(db: Path) -> None:
    with Store.open(db) as store:
        store.add_samples(poll("dw-1", 1, gauges=3))
    with Store.open(db) as store:
        store.add_samples(poll("dw-1", 2, gauges=3))
        assert len(store.history("dw-1/temp.2", since=T0, until=T0 + timedelta(hours=1))) == 2
    assert query(db, "SELECT count(*) FROM channels") == [(4,)]


# ----------------------------------------------------------------------------- events & status


def test_events_round_trip_in_order(store: Store) -> None:
    first = store.add_event(event("box_down", at=T0, data_s=1.5, nested={"a": [1, 2]}))
    second = store.add_event(event("box_up", "info", at=T0 + timedelta(seconds=5), box="dw-2"))
    third = store.add_event(event("started", "info", at=T0 + timedelta(seconds=9), box=None))
    assert first < second < third
    listed = store.events()
    assert [i for i, _ in listed] == [first, second, third]
    assert listed[0][1] == event("box_down", at=T0, data_s=1.5, nested={"a": [1, 2]})
    assert [e.kind for _, e in store.events(since=T0 + timedelta(seconds=5))] == [
        "box_up",
        "started",
    ]
    assert [e.kind for _, e in store.events(box="dw-2")] == ["box_up"]
    assert [e.kind for _, e in store.events(limit=2)] == ["box_up", "started"]
    assert [e.kind for _, e in store.events(since=T0, limit=1)] == ["box_down"]


def test_event_data_that_is_not_json_is_stored_as_text(store: Store) -> None:
    store.add_event(event(when=T0, path=Path("/x")))
    ((_, stored),) = store.events()
    assert stored.data == {"when": str(T0), "path": "/x"}


def test_a_naive_event_is_refused(store: Store) -> None:
    with pytest.raises(UsageError):
        store.add_event(event(at=datetime(2024, 1, 1)))  # noqa: DTZ001


def test_box_status_history_has_rows_on_change_only(store: Store, db: Path) -> None:
    at = T0
    for up, error in [
        (True, None),
        (True, None),
        (False, "timeout"),
        (False, "refused"),
        (True, None),
    ]:
        at += timedelta(seconds=10)
        store.set_box_status("dw-1", up=up, at=at, error=error)
    rows = query(db, "SELECT up, error FROM box_status_history WHERE box = 'dw-1' ORDER BY id")
    assert rows == [(1, None), (0, "timeout"), (1, None)]
    status = store.box_status()["dw-1"]
    assert status.up is True
    assert status.since == T0 + timedelta(seconds=50)
    assert status.last_ok == T0 + timedelta(seconds=50)
    assert status.last_error == "refused"


def test_box_status_survives_a_restart(db: Path, clock: Clock) -> None:
    with Store.open(db, clock=clock) as store:
        store.set_box_status("dw-1", up=False, at=T0, error="refused")
        store.set_box_status("dw-2", up=True, at=T0, error=None)
        store.set_box_status("dw-2", up=True, at=T0 + timedelta(seconds=60), error=None)
    with Store.open(db, clock=clock) as store:
        status = store.box_status()
        assert status["dw-1"].up is False
        assert status["dw-1"].last_error == "refused"
        assert status["dw-2"].since == T0
        assert status["dw-2"].last_ok == T0 + timedelta(seconds=60)
        # same state after restart: not an edge
        store.set_box_status("dw-1", up=False, at=T0 + timedelta(seconds=90), error="refused")
    assert query(db, "SELECT count(*) FROM box_status_history") == [(2,)]


def test_last_ok_rides_along_with_the_next_write(store: Store, db: Path) -> None:
    store.set_box_status("dw-1", up=True, at=T0, error=None)
    store.set_box_status("dw-1", up=True, at=T0 + timedelta(seconds=60), error=None)
    assert query(db, "SELECT last_ok_ms FROM box_state") == [(to_ms(T0),)]
    store.add_samples([sample()])
    assert query(db, "SELECT last_ok_ms FROM box_state") == [(to_ms(T0 + timedelta(seconds=60)),)]


# ----------------------------------------------------------------------------- queue


def test_every_sample_is_queued_in_seq_order(store: Store) -> None:
    store.add_samples(poll("dw-1", 1, gauges=4))
    store.add_samples(poll("dw-2", 1, gauges=4))
    pending = store.pending()
    seqs = [seq for seq, _ in pending]
    assert seqs == sorted(seqs) == list(range(1, 11))
    assert [s.box for _, s in pending] == ["dw-1"] * 5 + ["dw-2"] * 5
    assert store.pending(after_seq=7) == pending[7:]
    assert store.pending(after_seq=2, limit=3) == pending[2:5]
    assert store.queue_depth() == 10


def test_alarms_are_queued_and_acknowledged_by_seq_only(store: Store) -> None:
    store.add_samples(poll("dw-1", 1, gauges=2))  # seqs 1..3
    alarm_id = store.add_event(event("index_jump", "alarm", channel="dw-1/poll.id", baseline=7))
    store.add_event(event("box_up", "info"))  # not queued
    store.add_samples(poll("dw-1", 2, gauges=2))  # seqs 5..7
    assert store.queue_depth() == 7
    (alarm,) = store.pending_events()
    seq, event_id, stored = alarm
    assert (seq, event_id) == (4, alarm_id)
    assert stored.kind == "index_jump"
    assert stored.data == {"baseline": 7}
    assert [s for s, _ in store.pending()] == [1, 2, 3, 5, 6, 7]
    # a range of readings never acknowledges an unsent alarm
    assert store.acknowledge(upto_seq=7) == 6
    assert store.pending() == []
    assert store.pending_events() == [alarm]
    assert store.acknowledge(seqs=[seq]) == 1
    assert store.pending_events() == []
    assert store.queue_depth() == 0
    # acknowledging again counts nothing
    assert store.acknowledge(upto_seq=7, seqs=[1, 4, 99]) == 0


def test_the_end_of_an_alarm_episode_travels_like_the_alarm(store: Store) -> None:
    store.add_event(event("tic_overload", "alarm", channel="dw-1/tic.1.overload"))
    store.add_event(event("tic_overload_end", "info", channel="dw-1/tic.1.overload"))
    store.add_event(event("tic_status_alarm_end", "info", channel="dw-1/tic.1.status"))
    store.add_event(event("box_up", "info"))  # an ordinary info event stays local
    kinds = [stored.kind for _, _, stored in store.pending_events()]
    assert kinds == ["tic_overload", "tic_overload_end", "tic_status_alarm_end"]


def test_acknowledge_by_seqs_and_bad_seqs(store: Store) -> None:
    store.add_samples(poll("dw-1", 1, gauges=4))
    assert store.acknowledge(seqs=[2, 4, 4]) == 2
    assert [s for s, _ in store.pending()] == [1, 3, 5]
    with pytest.raises(UsageError):
        store.acknowledge(upto_seq=-1)
    with pytest.raises(UsageError):
        store.acknowledge(seqs=[-3])


def test_seqs_are_never_reused_after_ack_and_prune(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(retention_days=1)
    with Store.open(db, clock=clock, retention=retention) as store:
        store.add_samples(poll("dw-1", 1, gauges=4))
        store.acknowledge(upto_seq=5)
        assert store.prune(T0 + timedelta(days=3)) == 10  # 5 queue rows, 5 readings
        assert query(db, "SELECT count(*) FROM outbound") == [(0,)]
    with Store.open(db, clock=clock, retention=retention) as store:
        store.add_samples(poll("dw-1", 2, gauges=1, at=T0 + timedelta(days=3)))
        assert [s for s, _ in store.pending()] == [6, 7]


def test_queue_cap_drops_oldest_gauges_first_and_says_so(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(queue_max_rows=20)
    with Store.open(db, clock=clock, retention=retention) as store:
        store.add_event(event("meter_replaced", "alarm"))  # seq 1, never dropped
        for i in range(1, 5):
            store.add_samples(poll("dw-1", i, gauges=9))  # 10 rows per poll
        assert store.queue_depth() == 20
        queued = store.pending(limit=100)
        kinds = [s.kind for _, s in queued]
        assert kinds.count("index") == 4  # every index kept
        # the newest gauges kept, the oldest dropped
        gauges = [(s.value, s.at) for _, s in queued if s.kind == "gauge"]
        assert len(gauges) == 15
        assert min(at for _, at in gauges) >= T0 + timedelta(seconds=2)
        assert len(store.pending_events()) == 1
        assert store.stats().dropped == 21
        # readings dropped from the queue stay in the local history
        assert store.stats().rows == 40
        drops = [e for _, e in store.events() if e.data.get("by_kind")]
        assert len(drops) == 1
        assert drops[0].kind == "data_dropped"
        assert drops[0].data["dropped"] > 0


def test_queue_cap_drop_reports_are_paced(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(queue_max_rows=10)
    with Store.open(db, clock=clock, retention=retention) as store:
        for i in range(1, 6):
            store.add_samples(poll("dw-1", i, gauges=9))
        assert len([e for _, e in store.events() if e.data.get("by_kind")]) == 1
        clock.advance(61)
        store.add_samples(poll("dw-1", 6, gauges=9))
        reports = [e for _, e in store.events() if e.data.get("by_kind")]
        assert len(reports) == 2
        assert sum(int(e.data["dropped"]) for e in reports) == store.stats().dropped  # type: ignore[call-overload]


def test_queue_cap_never_drops_indexes(
    db: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    retention = RetentionPolicy(queue_max_rows=3)
    with (
        Store.open(db, clock=clock, retention=retention) as store,
        caplog.at_level(logging.WARNING),
    ):
        for i in range(6):
            store.add_samples(
                [sample(path="index", value=i, kind="index", at=T0 + timedelta(seconds=i))]
            )
        assert store.queue_depth() == 6
        assert any("only indexes and alarms" in r.getMessage() for r in caplog.records)


def test_states_are_dropped_after_gauges(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(queue_max_rows=4)
    with Store.open(db, clock=clock, retention=retention) as store:
        store.add_samples(
            [
                sample(path="relay", value=True, kind="state", unit=None),
                sample(path="temp", value=1.0),
                sample(path="index", value=1, kind="index"),
                sample(path="temp2", value=2.0),
            ]
        )
        store.add_samples([sample(path="temp3", value=3.0, at=T0 + timedelta(seconds=1))])
        assert [s.path for _, s in store.pending()] == ["relay", "index", "temp2", "temp3"]
        store.add_samples(
            [
                sample(path="index", value=2, kind="index", at=T0 + timedelta(seconds=2)),
                sample(path="index", value=3, kind="index", at=T0 + timedelta(seconds=3)),
            ]
        )
        assert [s.path for _, s in store.pending()] == ["relay", "index", "index", "index"]
        store.add_samples(
            [sample(path="index", value=4, kind="index", at=T0 + timedelta(seconds=4))]
        )
        assert [s.path for _, s in store.pending()] == ["index"] * 4


# ----------------------------------------------------------------------------- retention


def test_prune_deletes_old_acknowledged_data_only(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(retention_days=10, events_retention_days=5)
    with Store.open(db, clock=clock, retention=retention) as store:
        old, new = T0, T0 + timedelta(days=20)
        store.add_samples(poll("dw-1", 1, at=old, gauges=4))  # seqs 1..5
        store.add_event(event("box_down", at=old))
        store.add_event(event("meter_replaced", "alarm", at=old))  # queued, seq 6
        store.set_box_status("dw-1", up=False, at=old, error="x")
        store.add_samples(poll("dw-1", 2, at=new, gauges=4))  # seqs 7..11
        # nothing acknowledged: old readings and the alarm stay; the info event goes
        assert store.prune(new) == 2  # one event, one status edge
        assert store.stats().rows == 10
        store.acknowledge(upto_seq=3)
        # readings 1..3 acknowledged; 4, 5 still queued: only the prefix goes
        assert store.prune(new) == 3 + 3
        assert store.stats().rows == 7
        store.acknowledge(upto_seq=11, seqs=[6])
        assert store.prune(new) == 8 + 2 + 1
        assert store.stats().rows == 5
        assert store.events() == []
        assert [s.at for s in store.latest()] == [new] * 5
        assert store.prune(new) == 0
    assert integrity(db) == "ok"


def test_prune_is_bounded_per_call(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(retention_days=1, prune_batch_rows=7)
    with Store.open(db, clock=clock, retention=retention) as store:
        for i in range(5):
            store.add_samples(poll("dw-1", i, gauges=9))
        store.acknowledge(upto_seq=50)
        later = T0 + timedelta(days=2)
        counts = []
        while (deleted := store.prune(later)) > 0:
            counts.append(deleted)
            assert deleted <= 7 * 4
        assert sum(counts) == 100
        assert store.stats().rows == 0
        # the table emptied once; new ids follow on and the count stays exact
        store.add_samples(poll("dw-1", 9, at=later))
        store.acknowledge(upto_seq=10**6)
        for i in range(10, 13):
            store.add_samples(poll("dw-1", i, at=later + timedelta(days=3)))
        while store.prune(later + timedelta(days=2)):
            pass
        assert store.stats().rows == 90


def test_the_row_count_is_exact_after_reopen(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(retention_days=1, prune_batch_rows=13)
    with Store.open(db, clock=clock, retention=retention) as store:
        for i in range(6):
            store.add_samples(poll("dw-1", i, at=T0 + timedelta(hours=i * 12), gauges=9))
        store.acknowledge(upto_seq=35)
        store.prune(T0 + timedelta(days=2, hours=1))
        rows = store.stats().rows
    assert query(db, "SELECT count(*) FROM readings") == [(rows,)]
    assert 0 < rows < 60
    with Store.open(db, clock=clock, retention=retention) as store:
        assert store.stats().rows == rows


def test_prune_refuses_a_naive_now(store: Store) -> None:
    with pytest.raises(UsageError):
        store.prune(datetime(2024, 1, 1))  # noqa: DTZ001


# ----------------------------------------------------------------------------- stats & threads


def test_stats_describe_the_store(store: Store, clock: Clock) -> None:
    empty = store.stats()
    assert (empty.rows, empty.queue_depth, empty.buffered, empty.dropped) == (0, 0, 0, 0)
    assert empty.oldest_pending_at is None
    assert empty.last_write_at is None
    assert not empty.degraded
    clock.advance(3)
    store.add_samples(poll("dw-1", 1, at=T0 - timedelta(minutes=1)))
    stats = store.stats()
    assert stats.rows == 30
    assert stats.queue_depth == 30
    assert stats.db_bytes > 0
    assert stats.oldest_pending_at == T0 - timedelta(minutes=1)
    assert stats.last_write_at == T0 + timedelta(seconds=3)


def test_threads_may_share_the_store(store: Store) -> None:
    def writer(box: str) -> None:
        for i in range(50):
            store.add_samples(poll(box, i, gauges=5))
            store.pending(limit=10)

    threads = [threading.Thread(target=writer, args=(f"dw-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.stats().rows == 4 * 50 * 6
    seqs = [seq for seq, _ in store.pending(limit=10_000)]
    assert seqs == sorted(set(seqs))
    assert len(seqs) == 1200
