"""The queue client: weshd's outbound queue opened beside a running Store (another process).

The client takes no lock and never creates nor migrates the file; it reads the queue and
acknowledges while weshd's Store writes, prunes and caps the same file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.gateway._store_builders import T0, Clock, event, integrity, poll, query, sample
from wesh.errors import ConfigError, TransientError, UsageError
from wesh.gateway.store import QueueClient, RetentionPolicy, Store
from wesh.gateway.store_schema import SCHEMA_VERSION


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


@pytest.fixture
def client(store: Store, db: Path, clock: Clock) -> Iterator[QueueClient]:
    with Store.open_queue(db, clock=clock) as opened:
        yield opened


def _raw(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


# ----------------------------------------------------------------------------- opening


def test_the_client_opens_beside_a_running_store_and_the_store_beside_it(
    db: Path, clock: Clock
) -> None:
    with Store.open(db, clock=clock) as store:
        store.add_samples(poll("dw-1", 1))
        with Store.open_queue(db) as client:
            assert client.queue_depth() == 30
    with Store.open_queue(db) as client, Store.open(db, clock=clock) as store:
        store.add_samples(poll("dw-1", 2))
        assert client.queue_depth() == 60


def test_a_missing_store_is_refused_and_not_created(db: Path) -> None:
    with pytest.raises(ConfigError, match="start weshd first"):
        Store.open_queue(db)
    assert not db.exists()
    assert not db.parent.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "an empty database"),
        (b"this is not a database at all, just some text" * 100, "not a usable weshd store"),
    ],
)
def test_empty_and_non_sqlite_files_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "weshd.sqlite3"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        QueueClient.open(path)
    assert path.read_bytes() == content  # nothing written


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    _raw(path, "CREATE TABLE things (x)")
    with pytest.raises(ConfigError, match="not a weshd store"):
        QueueClient.open(path)


@pytest.mark.parametrize(("delta", "message"), [(-1, "older"), (1, "newer")])
def test_another_schema_version_is_refused_and_not_migrated(
    db: Path, delta: int, message: str
) -> None:
    Store.open(db).close()
    _raw(db, f"UPDATE schema_version SET version = {SCHEMA_VERSION + delta}")
    with pytest.raises(ConfigError, match=message):
        Store.open_queue(db)
    assert query(db, "SELECT version FROM schema_version") == [(SCHEMA_VERSION + delta,)]


def test_a_store_not_in_wal_mode_is_refused(db: Path) -> None:
    Store.open(db).close()
    _raw(db, "PRAGMA journal_mode = DELETE")
    with pytest.raises(ConfigError, match="WAL"):
        Store.open_queue(db)
    assert query(db, "PRAGMA journal_mode") == [("delete",)]


def test_a_schema_change_under_the_client_is_a_config_error(
    store: Store, client: QueueClient, db: Path
) -> None:
    store.add_samples(poll("dw-1", 1))
    _raw(db, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer"):
        client.pending()
    with pytest.raises(ConfigError, match="newer"):
        client.acknowledge(upto_seq=100)
    _raw(db, f"UPDATE schema_version SET version = {SCHEMA_VERSION}")
    assert client.acknowledge(upto_seq=100) == 30


def test_bad_arguments_and_a_closed_client(store: Store, db: Path) -> None:
    with pytest.raises(UsageError):
        Store.open_queue(db, ack_attempts=0)
    client = Store.open_queue(db)
    with pytest.raises(UsageError):
        client.pending(limit=0)
    with pytest.raises(UsageError):
        client.acknowledge(upto_seq=-1)
    client.close()
    client.close()
    with pytest.raises(UsageError, match="closed"):
        client.pending()
    with pytest.raises(UsageError, match="closed"):
        client.acknowledge(upto_seq=1)


# ----------------------------------------------------------------------------- the queue


def test_the_client_sees_the_queue_exactly_as_the_store_does(
    store: Store, client: QueueClient
) -> None:
    store.add_samples(
        [
            sample("dw-1", "index", value=12_345, kind="index", unit="Wh", meaning="electricity"),
            sample("dw-1", "temp.1", value=3.0),
            sample("dw-1", "door", value=True, kind="state", unit=None, meaning="state"),
            sample("dw-1", "serial", value="ABC", kind="text", unit=None, meaning="text"),
            sample("dw-2", "temp.1", value=19.5, box_time=T0 - timedelta(seconds=3)),
        ]
    )
    store.add_event(event("index_jump", "alarm", box="dw-1", jump=3))
    store.add_event(event("box_down", "warning"))  # not queued
    assert client.pending() == store.pending()
    assert client.pending(after_seq=2, limit=2) == store.pending(after_seq=2, limit=2)
    assert client.pending_events() == store.pending_events()
    assert [type(s.value) for _, s in client.pending()] == [int, float, bool, str, float]
    assert client.queue_depth() == store.queue_depth() == 6


def test_channels_created_after_opening_are_learned(store: Store, client: QueueClient) -> None:
    store.add_samples([sample("dw-1", "temp.1", value=1.5)])
    assert len(client.pending()) == 1
    store.add_samples([sample("dw-9", "temp.7", value=2.5, unit="K", label="new")])
    store.add_samples([sample("dw-1", "temp.1", value=3.5, unit="K")])  # a new descriptor
    assert client.pending() == store.pending()
    assert client.pending()[-1][1].unit == "K"


def test_acknowledge_follows_the_store_rules(store: Store, client: QueueClient) -> None:
    store.add_samples(poll("dw-1", 1, gauges=2))  # seqs 1..3
    store.add_event(event("index_jump", "alarm"))  # seq 4
    store.add_samples(poll("dw-1", 2, gauges=2))  # seqs 5..7
    assert client.acknowledge(upto_seq=6) == 5  # readings only: the alarm stays
    assert [seq for seq, *_ in client.pending_events()] == [4]
    assert [seq for seq, _ in client.pending()] == [7]
    assert client.acknowledge(upto_seq=6) == 0  # repeating is harmless
    assert client.acknowledge(seqs=[4, 7, 99]) == 2
    assert client.acknowledge() == 0
    assert client.queue_depth() == 0
    assert store.pending() == []
    assert store.pending_events() == []


def test_the_store_counts_acknowledgements_made_by_the_client(
    store: Store, client: QueueClient
) -> None:
    store.add_samples(poll("dw-1", 1))
    assert store.queue_depth() == 30
    client.acknowledge(upto_seq=10)
    assert store.queue_depth() == 20
    assert store.stats().queue_depth == 20
    store.add_samples(poll("dw-1", 2))
    assert store.queue_depth() == 50
    assert store.stats().oldest_pending_at == T0 + timedelta(seconds=1)


def test_the_queue_cap_counts_acknowledgements_made_by_the_client(db: Path, clock: Clock) -> None:
    # weshd's own count would say 30 * 6 = 180 rows; only 30 wait, under the cap of 100
    capped = RetentionPolicy(queue_max_rows=100)
    with Store.open(db, clock=clock, retention=capped) as store, Store.open_queue(db) as client:
        for poll_id in range(6):
            store.add_samples(poll("dw-1", poll_id))
            client.acknowledge(upto_seq=client.pending(limit=1000)[-1][0])
        store.add_samples(poll("dw-1", 6))
        assert store.stats().dropped == 0
        assert client.queue_depth() == 30
        for poll_id in range(7, 11):  # the cap still works: 150 -> 100, gauges first
            store.add_samples(poll("dw-1", poll_id))
        assert store.stats().dropped == 50
        assert client.queue_depth() == store.queue_depth() == 100
        indexes = [s.value for _, s in client.pending(limit=1000) if s.kind == "index"]
        assert indexes == [6, 7, 8, 9, 10]


def test_prune_keeps_what_the_client_has_not_acknowledged(
    store: Store, client: QueueClient, clock: Clock, db: Path
) -> None:
    for poll_id in range(4):
        store.add_samples(poll("dw-1", poll_id))
    client.acknowledge(upto_seq=60)
    clock.advance(1000 * 86_400)
    assert store.prune(clock()) > 0
    assert [s.value for _, s in client.pending() if s.kind == "index"] == [2, 3]
    assert query(db, "SELECT count(*) FROM readings") == [(60,)]


def test_box_states_are_read_as_last_persisted(store: Store, client: QueueClient) -> None:
    assert client.box_states() == {}
    store.set_box_status("dw-1", up=True, at=T0, error=None)
    store.set_box_status("dw-2", up=False, at=T0, error="timeout")
    assert client.box_states() == {"dw-1": True, "dw-2": False}


# ----------------------------------------------------------------------------- locking


def test_a_locked_store_is_retried_with_backoff_then_transient(
    store: Store, db: Path, clock: Clock
) -> None:
    store.add_samples(poll("dw-1", 1))
    pauses: list[float] = []
    client = Store.open_queue(
        db, clock=clock, busy_timeout_s=0, ack_attempts=3, ack_backoff_s=0.05, sleep=pauses.append
    )
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # weshd in the middle of a long write
        with pytest.raises(TransientError, match="acknowledge") as caught:
            client.acknowledge(upto_seq=30)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert pauses == [0.05, 0.1]
        assert len(client.pending()) == 30  # reading is not blocked by the writer
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        client.close()
    assert store.queue_depth() == 30  # nothing was acknowledged


def test_a_lock_released_during_the_backoff_lets_the_acknowledgement_through(
    store: Store, db: Path, clock: Clock
) -> None:
    store.add_samples(poll("dw-1", 1))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            holder.execute("COMMIT")

    try:
        with Store.open_queue(db, clock=clock, busy_timeout_s=0, sleep=pause) as client:
            assert client.acknowledge(upto_seq=30) == 30
    finally:
        holder.close()
    assert pauses == [0.05, 0.1]
    assert store.queue_depth() == 0


def test_a_full_disk_on_acknowledge_is_transient_and_changes_nothing(
    store: Store, db: Path, clock: Clock
) -> None:
    for poll_id in range(20):
        store.add_samples(poll("dw-1", poll_id))
    pauses: list[float] = []
    with Store.open_queue(db, clock=clock, sleep=pauses.append) as client:
        page_count = client._conn.execute("PRAGMA page_count").fetchone()[0]
        client._conn.execute(f"PRAGMA max_page_count = {page_count}")
        with pytest.raises(TransientError, match="full"):
            client.acknowledge(seqs=range(1, 601))  # the acked index needs new pages
        assert pauses == []  # not a lock: no retry
        assert client.queue_depth() == 600
        client._conn.execute("PRAGMA max_page_count = 1000000")
        assert client.acknowledge(seqs=range(1, 601)) == 600
    assert integrity(db) == "ok"


# ----------------------------------------------------------------------------- concurrency


def test_a_writing_store_and_a_draining_client_lose_and_duplicate_nothing(
    db: Path, clock: Clock
) -> None:
    """weshd writes polls, alarms, status edges and prunes; the client drains meanwhile."""
    polls = 400
    retention = RetentionPolicy(
        retention_days=1 / 86_400, events_retention_days=1 / 86_400, prune_batch_rows=50
    )
    done = threading.Event()
    failures: list[BaseException] = []

    def weshd(store: Store) -> None:
        try:
            for poll_id in range(polls):
                at = T0 + timedelta(seconds=poll_id)
                store.add_samples(poll("dw-1", poll_id, at=at, gauges=9))
                if poll_id % 7 == 0:
                    store.add_event(event("index_jump", "alarm", at=at, poll=poll_id))
                if poll_id % 5 == 0:
                    store.set_box_status("dw-1", up=poll_id % 10 == 0, at=at, error="flip")
                if poll_id % 10 == 0:
                    store.prune(at + timedelta(days=1))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)
        finally:
            done.set()

    got: dict[int, tuple[int, str]] = {}  # seq -> (poll id, path)
    alarms: dict[int, int] = {}  # seq -> poll id
    transient = 0
    with Store.open(db, clock=clock, retention=retention) as store:
        with Store.open_queue(db, clock=clock, busy_timeout_s=0.05, ack_backoff_s=0.001) as client:
            writer = threading.Thread(target=weshd, args=(store,), name="weshd")
            writer.start()
            try:
                cursor = 0
                while True:
                    finished = done.is_set()  # before reading: a last pass after the end
                    try:
                        events = client.pending_events()
                        rows = client.pending(after_seq=cursor, limit=37)
                        for seq, _event_id, alarm in events:
                            assert alarms.setdefault(seq, int(alarm.data["poll"])) == int(
                                alarm.data["poll"]
                            )
                        for seq, reading in rows:
                            assert seq not in got, f"seq {seq} read twice"
                            got[seq] = (int(reading.at.timestamp() - T0.timestamp()), reading.path)
                        if rows:
                            cursor = rows[-1][0]
                        client.acknowledge(
                            upto_seq=cursor or None, seqs=[seq for seq, *_ in events]
                        )
                    except TransientError:
                        transient += 1
                        continue
                    if finished and not rows and not events:
                        break
            finally:
                writer.join(timeout=60)
            assert not failures, failures
            assert client.queue_depth() == 0
        assert store.queue_depth() == 0
        store.prune(T0 + timedelta(days=2))
    expected = {
        (poll_id, path)
        for poll_id in range(polls)
        for path in ["poll.id", *(f"temp.{j}" for j in range(9))]
    }
    assert sorted(got) == list(got)  # seq order
    assert set(got.values()) == expected
    assert len(got) == len(expected)
    assert sorted(alarms.values()) == list(range(0, polls, 7))
    assert integrity(db) == "ok"
    assert query(db, "SELECT count(*) FROM outbound WHERE acked_ms IS NULL") == [(0,)]
