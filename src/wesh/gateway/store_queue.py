"""The outbound queue of a weshd store, for a sync agent in another process.

weshd holds the :class:`~wesh.gateway.store.Store` (the one writer); the sync agent
opens a :class:`QueueClient` on the same file (:meth:`Store.open_queue`): its own
connection, no lock, reads and acknowledgements only. See ``docs/weshd-store.md``,
"Queue client".
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from wesh.errors import ConfigError, TransientError, UsageError, WeshError
from wesh.gateway.channels import GatewayEvent, Sample
from wesh.gateway.store_rows import (
    _COUNT_PENDING,
    _PENDING_EVENTS,
    _PENDING_READINGS,
    _ack_rows,
    _ack_wanted,
    _check_limit,
    _event_of,
    _Key,
    _sample_of,
    _translate,
    _utc_now,
)
from wesh.gateway.store_schema import SCHEMA_VERSION, to_ms

__all__ = ["QueueClient"]

#: the store's logger (records keep the name they had before the module split)
_LOG = logging.getLogger("wesh.gateway.store")


def _is_busy(exc: BaseException) -> bool:
    """Tell whether ``exc`` is "database is locked" (another connection holds the lock)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class QueueClient:
    """The outbound queue of a weshd store, for a sync agent in another process.

    weshd keeps its :class:`Store` (the one writer, holding the lock file) open; this
    client opens its own connection to the same file and offers exactly what the sync
    agent needs (``wesh.sync.agent.OutboundQueue``): :meth:`pending`,
    :meth:`pending_events`, :meth:`acknowledge`, :meth:`queue_depth`, plus
    :meth:`box_states` for the agent's STATUS. Everything else of the store stays
    weshd's.

    Why SQLite alone is enough (``docs/weshd-store.md``, "Queue client"):

    * the file is in WAL mode: reads here never block weshd's writes nor wait for them;
      each query sees a committed snapshot, and seqs commit in order (one writer at a
      time), so reading after a cursor never skips a row;
    * the only write here, an acknowledgement, is one short ``BEGIN IMMEDIATE``
      transaction; weshd's writes are short too; each side waits ``busy_timeout`` for
      the other, and an acknowledgement still refused is retried a few times with a
      growing pause, then raises :class:`~wesh.errors.TransientError` (nothing changed;
      the agent retries later);
    * weshd's retention never deletes an unacknowledged row (``prune`` deletes
      acknowledged queue rows, readings below the oldest queued one, events not queued);
      only its queue cap drops unacknowledged *gauges* (and states, texts) from the queue,
      by design and reported: an acknowledgement of a dropped row changes nothing;
    * weshd notices acknowledgements made here (``PRAGMA data_version``) and counts its
      queue again, so its queue cap and metrics follow.

    One agent per store: a second consumer would acknowledge what the first has not sent
    (``wesh sync agent`` takes a lock file for that). Thread-safe; every method is short
    and synchronous.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path,
        clock: Callable[[], datetime],
        ack_attempts: int,
        ack_backoff_s: float,
        sleep: Callable[[float], None],
    ) -> None:
        """Use :meth:`open` (or :meth:`Store.open_queue`)."""
        self._conn = conn
        self._where = str(path)
        self._clock = clock
        self._ack_attempts = ack_attempts
        self._ack_backoff_s = ack_backoff_s
        self._sleep = sleep
        self._mutex = threading.RLock()
        self._closed = False
        self._keys_by_id: dict[int, _Key] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout_s: float = 1.0,
        ack_attempts: int = 3,
        ack_backoff_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> QueueClient:
        """Open the queue of the existing weshd store at ``path`` (no lock, no migration).

        Args:
            path: weshd's database file; it must exist, be in WAL mode and have this
                code's schema version.
            clock: wall clock (UTC, aware) for acknowledgement times.
            busy_timeout_s: how long one statement waits for weshd's write lock.
            ack_attempts: tries of an acknowledgement refused with "database is locked"
                before :class:`~wesh.errors.TransientError`.
            ack_backoff_s: the pause after the first refusal, doubled after each.
            sleep: how to pause between tries (tests inject their own).

        Raises:
            ConfigError: no file, not SQLite, not a weshd store, not in WAL mode, or a
                schema version other than this code's (older: start the matching weshd
                first, it migrates; newer: upgrade wesh).
            TransientError: the file is locked beyond ``busy_timeout_s`` while opening.
            UsageError: arguments out of range.
        """
        if busy_timeout_s < 0 or ack_attempts < 1 or ack_backoff_s < 0:
            raise UsageError("busy_timeout_s, ack_attempts, ack_backoff_s out of range")
        where = str(path)
        if not path.is_file():
            raise ConfigError(
                "no weshd store here: the queue client never creates one (start weshd first)",
                where=where,
            )
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=16,
            )
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the store: {exc}", where=where) from exc
        client = cls(
            conn,
            path=path,
            clock=clock,
            ack_attempts=ack_attempts,
            ack_backoff_s=ack_backoff_s,
            sleep=sleep,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            client._check_schema()
            client._check_journal()
        except sqlite3.Error as exc:
            conn.close()
            if _is_busy(exc):
                raise TransientError(f"cannot open the store: {exc}", where=where) from exc
            raise ConfigError(f"not a usable weshd store: {exc}", where=where) from exc
        except BaseException:
            conn.close()
            raise
        return client

    def _check_schema(self) -> None:
        """Refuse a file that is not a weshd store of exactly this schema version."""
        conn = self._conn
        tables = {
            str(name)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "schema_version" not in tables:
            what = "an SQLite database, but not a weshd store" if tables else "an empty database"
            raise ConfigError(
                f"{what}: the queue client needs a store made by weshd", where=self._where
            )
        found = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        if found < SCHEMA_VERSION:
            raise ConfigError(
                f"the store has schema version {found}, older than this code's "
                f"({SCHEMA_VERSION}): start the matching weshd first (it migrates the store)",
                where=self._where,
            )
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"the store has schema version {found}, newer than this code's "
                f"({SCHEMA_VERSION}): upgrade wesh on this gateway",
                where=self._where,
            )

    def _check_journal(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"the store is not in WAL mode ({mode}): weshd makes it so; "
                "a queue client cannot share it safely",
                where=self._where,
            )

    def close(self) -> None:
        """Close the connection (idempotent). weshd's store is not affected."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """One read transaction (one snapshot), schema checked; errors translated."""
        with self._mutex:
            if self._closed:
                raise UsageError("the queue client is closed", where=self._where)
            conn = self._conn
            try:
                conn.execute("BEGIN")
                try:
                    self._check_schema()
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise _translate(exc, action, self._where) from exc

    # ------------------------------------------------------------------ queue

    def pending(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, Sample]]:
        """Unacknowledged queued readings with ``seq > after_seq``, in seq order.

        Same as :meth:`Store.pending`.

        Raises:
            UsageError: a limit out of ``1..100000``, or the client is closed.
            ConfigError: weshd's store changed schema version meanwhile.
            TransientError: the file could not be read now (retry later).
        """
        _check_limit(limit)
        with self._reading("read the queue") as conn:
            rows = conn.execute(_PENDING_READINGS, (after_seq, limit)).fetchall()
            self._learn_channels({row[1] for row in rows})
        return [(row[0], _sample_of(self._keys_by_id[row[1]], row[2:])) for row in rows]

    def pending_events(
        self, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, int, GatewayEvent]]:
        """Unacknowledged queued events as ``(seq, event id, event)``, in seq order.

        Same as :meth:`Store.pending_events` (errors as :meth:`pending`).
        """
        _check_limit(limit)
        with self._reading("read the queue") as conn:
            rows = conn.execute(_PENDING_EVENTS, (after_seq, limit)).fetchall()
        return [(seq, event_id, _event_of(rest)) for seq, event_id, *rest in rows]

    def _learn_channels(self, ids: set[int]) -> None:
        """Load the descriptors of channels weshd created since we last looked."""
        missing = sorted(cid for cid in ids if cid not in self._keys_by_id)
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for cid, *key in self._conn.execute(
                "SELECT id, channel, box, path, unit, kind, meaning, label FROM channels "  # noqa: S608
                f"WHERE id IN ({marks})",
                chunk,
            ):
                self._keys_by_id[cid] = _Key(*key)
        lost = [cid for cid in missing if cid not in self._keys_by_id]
        if lost:  # readings reference channels (foreign key): a damaged file
            raise WeshError(f"store: readings of unknown channels {lost[:5]}", where=self._where)

    def acknowledge(self, upto_seq: int | None = None, *, seqs: Iterable[int] = ()) -> int:
        """Mark queue rows as received by headquarters; same rules as :meth:`Store.acknowledge`.

        ``upto_seq`` acknowledges queued readings only; ``seqs`` exactly those rows. One
        short ``BEGIN IMMEDIATE`` transaction; when weshd holds the write lock beyond
        ``busy_timeout_s``, tried again ``ack_attempts - 1`` times after a growing pause.

        Returns:
            how many rows were newly acknowledged.

        Raises:
            UsageError: a negative seq, or the client is closed.
            ConfigError: weshd's store changed schema version meanwhile.
            TransientError: still locked after every try, disk full or I/O error;
                nothing was acknowledged (the agent retries later).
        """
        wanted = _ack_wanted(upto_seq, seqs)
        with self._mutex:
            if self._closed:
                raise UsageError("the queue client is closed", where=self._where)
            if upto_seq is None and not wanted:
                return 0
            for attempt in range(1, self._ack_attempts + 1):
                try:
                    return self._acknowledge_once(upto_seq, wanted)
                except sqlite3.Error as exc:
                    if not _is_busy(exc) or attempt == self._ack_attempts:
                        raise _translate(exc, "acknowledge", self._where) from exc
                    pause_s = self._ack_backoff_s * 2 ** (attempt - 1)
                    _LOG.debug(
                        "Store queue: acknowledgement refused (%s); try %d/%d in %.2f s",
                        exc,
                        attempt + 1,
                        self._ack_attempts,
                        pause_s,
                    )
                    self._sleep(pause_s)
                except OSError as exc:
                    raise _translate(exc, "acknowledge", self._where) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _acknowledge_once(self, upto_seq: int | None, wanted: Sequence[int]) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._check_schema()
            count = _ack_rows(conn, to_ms(self._clock()), upto_seq, wanted)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return count

    def queue_depth(self) -> int:
        """Unacknowledged queue rows (readings and events), counted now."""
        with self._reading("count the queue") as conn:
            return int(conn.execute(_COUNT_PENDING).fetchone()[0])

    def box_states(self) -> dict[str, bool]:
        """Every box weshd has recorded, up (``True``) or down, as last persisted.

        weshd persists a box's state at an up/down edge and with its next write, so this
        may lag the daemon's view by one poll.
        """
        with self._reading("read box states") as conn:
            return {
                str(box): bool(up)
                for box, up in conn.execute("SELECT box, up FROM box_state ORDER BY box")
            }
