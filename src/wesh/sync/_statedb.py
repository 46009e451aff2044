"""The small SQLite state file shared by the site agent and the HQ receiver (private).

One connection in autocommit mode, WAL, explicit ``BEGIN IMMEDIATE`` transactions;
SQLite errors leave as :class:`~wesh.errors.TransientError` (opening errors as
:class:`~wesh.errors.ConfigError`), naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wesh.errors import ConfigError, TransientError

__all__ = ["StateDb"]


class StateDb:
    """A state file: ``what`` names it in errors ("agent state", "receiver state")."""

    def __init__(self, path: Path, schema_sql: Sequence[str], *, what: str) -> None:
        self.where = str(path)
        self._what = what
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                self.where, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self.conn.execute("PRAGMA journal_mode = WAL")
            # FULL: what this file records was (or is about to be) acknowledged to the
            # other end; a power cut must not take it back (NORMAL may lose the last
            # commits in WAL mode). Commits come at packet rate, so the fsync is cheap.
            self.conn.execute("PRAGMA synchronous = FULL")
            for statement in schema_sql:
                self.conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the {what}: {exc}", where=self.where) from exc

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def on_rollback(self) -> None:
        """Drop what a rolled-back transaction may have left in caches (subclasses)."""

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.on_rollback()
                raise
        except sqlite3.Error as exc:
            raise TransientError(f"{self._what}: {exc}", where=self.where) from exc

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Return every row of a query."""
        try:
            return list(self.conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise TransientError(f"{self._what}: {exc}", where=self.where) from exc

    def one(self, sql: str, params: Sequence[object] = ()) -> Any:  # noqa: ANN401 - SQLite values
        """Return the first column of the first row, or ``None``."""
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None
