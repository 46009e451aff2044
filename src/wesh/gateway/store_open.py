"""Opening weshd's store file: the writer lock, the connection, schema migrations.

:func:`lock_file` keeps a second :class:`~wesh.gateway.store.Store` off the file (one
writer); :func:`connect_writer` opens the connection in WAL mode with the store's
pragmas and brings the schema to :data:`~wesh.gateway.store_schema.SCHEMA_VERSION`
(``docs/weshd-store.md``, "Migrations" and "Durability and concurrency"). Internal to
``wesh.gateway.store*``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import sqlite3
from pathlib import Path
from typing import IO, Literal

from wesh.errors import BadInputError, ConfigError, TransientError
from wesh.gateway.store_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Durability", "connect_writer", "is_disk_full", "lock_file"]

#: the store's logger (records keep the name they had before the module split)
_LOG = logging.getLogger("wesh.gateway.store")

Durability = Literal["normal", "full"]


def is_disk_full(exc: BaseException) -> bool:
    """Tell whether ``exc`` is ``SQLITE_FULL`` (the disk or the size cap) or ``ENOSPC``."""
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc)
    return False


def _check_wal(mode: object, where: str) -> None:
    if str(mode).lower() != "wal":
        raise ConfigError(f"the store cannot use WAL mode (got {mode})", where=where)


def lock_file(path: Path) -> IO[bytes]:
    """Take an exclusive advisory lock next to the database (one Store per file)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = lock_path.open("ab")
    except OSError as exc:
        raise ConfigError(f"cannot open the store lock file: {exc}", where=str(lock_path)) from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise ConfigError(
            "the store is already open (another weshd, or a second Store in this process)",
            where=str(path),
        ) from exc
    return handle


def _check_version(found: int, *, foreign: bool, where: str) -> None:
    if foreign:
        raise BadInputError("an SQLite database, but not a weshd store", where=where)
    if found > SCHEMA_VERSION:
        raise ConfigError(
            f"the store has schema version {found}, newer than this weshd supports "
            f"({SCHEMA_VERSION}); upgrade weshd or use another store path",
            where=where,
        )


def _migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; return the version found on disk."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        has_version = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        foreign = False
        found = 0
        if has_version:
            found = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        else:
            foreign = bool(
                conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
            )
        _check_version(found, foreign=foreign, where=where)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            _LOG.info("Store %s migrated to schema version %d", where, version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def connect_writer(
    path: Path, *, durability: Durability, busy_timeout_s: float
) -> sqlite3.Connection:
    """Open weshd's writer connection: WAL, pragmas, schema created or migrated."""
    where = str(path)
    try:
        conn = sqlite3.connect(
            where,
            timeout=busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the store: {exc}", where=where) from exc
    try:
        _check_wal(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], where)
        conn.execute(f"PRAGMA synchronous = {durability.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA cache_size = -16384")
        _migrate(conn, where)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_disk_full(exc):
            raise TransientError(f"cannot open the store: {exc}", where=where) from exc
        raise BadInputError(f"not a usable weshd store: {exc}", where=where) from exc
    except BaseException:
        conn.close()
        raise
    return conn
