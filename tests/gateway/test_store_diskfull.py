"""A full disk: polling goes on in memory, nothing stored is damaged, recovery keeps order.

The disk is filled deterministically with ``PRAGMA max_page_count`` (through
``Store.set_max_db_bytes``), which makes SQLite fail exactly like a full file system
(``SQLITE_FULL``); ``ENOSPC`` from the OS is injected at the write seam.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.gateway._store_builders import T0, Clock, event, integrity, poll, query
from wesh.errors import TransientError, UsageError
from wesh.gateway.store import RetentionPolicy, Store

RETRY_S = 5.0
READINGS_SQL = "SELECT id, channel_id, at_ms, value, is_bool, quality FROM readings ORDER BY id"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "weshd.sqlite3"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[Store]:
    with Store.open(db, clock=clock, retry_interval_s=RETRY_S) as opened:
        yield opened


def fill_disk(store: Store, *, first_poll: int = 100) -> int:
    """Cap the file at its current size and poll until the store is degraded."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store.set_max_db_bytes(pages * store._conn.execute("PRAGMA page_size").fetchone()[0])
    for poll_id in range(first_poll, first_poll + 100):
        store.add_samples(poll("dw-1", poll_id))
        if store.stats().degraded:
            return poll_id
    raise AssertionError("the store never filled up")


def poll_ids(store: Store) -> list[int]:
    return [
        int(s.value) for s in store.history("dw-1/poll.id", since=T0, until=T0 + timedelta(days=1))
    ]


def test_a_full_disk_keeps_polls_in_memory_and_recovers_in_order(
    store: Store, db: Path, clock: Clock
) -> None:
    for poll_id in range(3):
        store.add_samples(poll("dw-1", poll_id))
    before = query(db, READINGS_SQL)
    failed = fill_disk(store)
    stats = store.stats()
    assert stats.degraded
    assert stats.buffered >= 30

    # polling goes on: nothing raised, nothing written, latest values stay fresh
    for poll_id in range(failed + 1, failed + 4):
        assert store.add_samples(poll("dw-1", poll_id)) == 0
    latest = store.latest_one("dw-1/poll.id")
    assert latest is not None
    assert latest.value == failed + 3
    assert store.events() == []  # disk_full is buffered too
    assert integrity(db) == "ok"
    assert query(db, READINGS_SQL)[: len(before)] == before

    # space comes back, but retries are paced by the clock
    store.set_max_db_bytes(None)
    assert store.add_samples(poll("dw-1", failed + 4)) == 0
    assert store.stats().degraded
    clock.advance(RETRY_S)
    assert store.add_samples(poll("dw-1", failed + 5)) == 6 * 30
    stats = store.stats()
    assert not stats.degraded
    assert stats.buffered == 0
    assert stats.dropped == 0

    # every poll, in order, with strictly increasing seqs
    assert poll_ids(store)[-6:] == list(range(failed, failed + 6))
    pending = store.pending(limit=10_000)
    seqs = [seq for seq, _ in pending]
    assert seqs == sorted(set(seqs))
    queued_polls = [int(s.value) for _, s in pending if s.path == "poll.id"]
    assert queued_polls == sorted(queued_polls)
    assert queued_polls[-6:] == list(range(failed, failed + 6))

    kinds = [e.kind for _, e in store.events()]
    assert kinds == ["disk_full", "disk_ok"]
    ((_, _, alarm),) = store.pending_events()
    assert alarm.kind == "disk_full"
    assert alarm.severity == "alarm"
    assert integrity(db) == "ok"
    assert query(db, READINGS_SQL)[: len(before)] == before

    # later writes go straight to disk again, after the recovered ones
    assert store.add_samples(poll("dw-1", failed + 6)) == 30
    assert store.pending(after_seq=seqs[-1], limit=100)[0][0] > seqs[-1]


def test_disk_full_is_announced_once_however_long_it_lasts(store: Store, clock: Clock) -> None:
    failed = fill_disk(store)
    for poll_id in range(failed + 1, failed + 20):
        clock.advance(RETRY_S)  # every call retries, and fails again
        store.add_samples(poll("dw-1", poll_id))
    store.set_max_db_bytes(None)
    clock.advance(RETRY_S)
    store.add_samples(poll("dw-1", failed + 20))
    kinds = [e.kind for _, e in store.events()]
    assert kinds.count("disk_full") == 1
    assert kinds.count("disk_ok") == 1
    assert poll_ids(store)[-21:] == list(range(failed, failed + 21))


def test_the_memory_buffer_is_bounded_and_drops_gauges_first(db: Path, clock: Clock) -> None:
    with Store.open(db, clock=clock, retry_interval_s=RETRY_S, buffer_max_samples=100) as store:
        failed = fill_disk(store)
        for poll_id in range(failed + 1, failed + 10):
            store.add_samples(poll("dw-1", poll_id))
            assert store.stats().buffered <= 100
        dropped = store.stats().dropped
        assert dropped >= 10 * 30 + 1 - 100
        store.set_max_db_bytes(None)
        clock.advance(RETRY_S)
        store.flush()
        assert not store.stats().degraded
        # every index survived, the newest gauges survived
        assert poll_ids(store)[-10:] == list(range(failed, failed + 10))
        newest = store.history("dw-1/temp.5", since=T0, until=T0 + timedelta(days=1))
        assert newest[-1].value == failed + 9 + 5 / 100
        reports = [e for _, e in store.events() if e.data.get("by_kind")]
        assert sum(int(str(e.data["dropped"])) for e in reports) == dropped
        assert all(set(e.data["by_kind"]) == {"buffer.gauge"} for e in reports)  # type: ignore[arg-type]
        kinds = [e.kind for _, e in store.events()]
        assert kinds[0] == "disk_full"
        assert "disk_ok" in kinds
    assert integrity(db) == "ok"


def test_enospc_from_the_os_is_a_full_disk(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_samples(poll("dw-1", 1))

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(store, "_insert_samples", no_space)
        assert store.add_samples(poll("dw-1", 2)) == 0
        assert store.stats().degraded
    clock.advance(RETRY_S)
    assert store.add_samples(poll("dw-1", 3)) == 60
    assert poll_ids(store) == [1, 2, 3]
    ((_, full), (_, ok)) = store.events()
    assert (full.kind, ok.kind) == ("disk_full", "disk_ok")
    assert "No space left" in str(full.data["error"])


def test_events_and_status_edges_wait_in_line_while_full(
    store: Store, db: Path, clock: Clock
) -> None:
    failed = fill_disk(store)
    assert store.add_event(event("box_down", at=T0 + timedelta(seconds=1))) == 0
    store.set_box_status("dw-1", up=False, at=T0 + timedelta(seconds=1), error="timeout")
    assert store.box_status()["dw-1"].up is False  # known at once, written later
    store.add_samples(poll("dw-1", failed + 1))
    store.set_max_db_bytes(None)
    clock.advance(RETRY_S)
    event_id = store.add_event(event("box_up", "info", at=T0 + timedelta(seconds=2)))
    assert event_id > 0
    # the call that found space again is written in line, then disk_ok closes the episode
    assert [e.kind for _, e in store.events()] == ["disk_full", "box_down", "box_up", "disk_ok"]
    assert query(db, "SELECT up, error FROM box_status_history") == [(0, "timeout")]
    assert poll_ids(store)[-2:] == [failed, failed + 1]


def test_pruning_frees_space_and_the_store_recovers(db: Path, clock: Clock) -> None:
    retention = RetentionPolicy(retention_days=1)
    with Store.open(db, clock=clock, retention=retention, retry_interval_s=RETRY_S) as store:
        for poll_id in range(20):
            store.add_samples(poll("dw-1", poll_id))
        store.acknowledge(upto_seq=10**9)
        failed = fill_disk(store, first_poll=20)
        assert store.prune(T0 + timedelta(days=2)) > 0  # deleting needs no new pages
        clock.advance(RETRY_S)
        assert store.add_samples(poll("dw-1", failed + 1)) == 60
        assert not store.stats().degraded
    assert integrity(db) == "ok"


def test_flush_retries_at_once(store: Store) -> None:
    failed = fill_disk(store)
    store.set_max_db_bytes(None)
    assert store.flush() == 30
    assert poll_ids(store)[-1] == failed


def test_closing_while_full_says_what_is_lost(
    db: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(db, clock=clock)
    fill_disk(store)
    with caplog.at_level(logging.ERROR):
        store.close()
    assert any("unwritten" in r.getMessage() for r in caplog.records)
    assert integrity(db) == "ok"


def test_a_locked_database_is_a_transient_error_not_a_full_disk(db: Path, clock: Clock) -> None:
    with Store.open(db, clock=clock, busy_timeout_s=0) as store:
        store.add_samples(poll("dw-1", 1))
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(TransientError, match="locked"):
                store.add_samples(poll("dw-1", 2))
            with pytest.raises(TransientError):
                store.acknowledge(upto_seq=5)
            assert not store.stats().degraded
            assert store.stats().buffered == 0
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.add_samples(poll("dw-1", 3)) == 30
        assert store.acknowledge(upto_seq=5) == 5
        assert poll_ids(store) == [1, 3]


def test_close_never_raises_when_the_last_writes_fail(
    db: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(db, clock=clock, busy_timeout_s=0)
    store.set_box_status("dw-1", up=True, at=T0, error=None)
    store.set_box_status("dw-1", up=True, at=T0 + timedelta(seconds=60), error=None)  # dirty
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.WARNING):
            store.close()
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert any("last writes at close failed" in r.getMessage() for r in caplog.records)
    with pytest.raises(UsageError):
        store.latest()
    with Store.open(db, clock=clock) as reopened:
        assert reopened.box_status()["dw-1"].last_ok == T0
