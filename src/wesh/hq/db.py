"""Engines, transactions and the idempotent insert of the headquarters store.

One URL picks the engine (``docs/hq-schema.md``)::

    None, ""                         ./wesh-hq.sqlite3 (SQLite, nothing to install)
    /var/lib/wesh/hq.sqlite3         a bare path: SQLite
    sqlite:///rel.db, sqlite:////abs.db
    mysql://user:pw@host/wesh        MariaDB (driver PyMySQL, utf8mb4); also mariadb://
    postgresql://user:pw@host/wesh   PostgreSQL (driver psycopg 3); also postgres://

Errors leave as :mod:`wesh.errors`: a bad URL is a :class:`~wesh.errors.ConfigError`, a
server that cannot be reached a :class:`~wesh.errors.ConnectionFailed` whose message shows
the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Executable, Table, create_engine, event, insert, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from wesh.errors import (
    BadInputError,
    ConfigError,
    ConnectionFailed,
    TransientError,
    UsageError,
    WeshError,
)

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "insert_ignore",
    "make_engine",
    "normalize_url",
    "redact",
    "session_factory",
    "transaction",
    "translate_errors",
]

_LOG = logging.getLogger(__name__)

DEFAULT_SQLITE_PATH: Final = Path("wesh-hq.sqlite3")
"""Where the store lives when no URL is given (relative to the working directory)."""

SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
#: Most rows in one executemany of :func:`insert_ignore`.
_MAX_ROWS: Final = 2_000
#: Bytes of one MariaDB batch of :func:`insert_ignore` (PyMySQL splits at 1,024,000).
_MYSQL_BATCH_BYTES: Final = 600_000

_SCHEMES: Final = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}

#: MariaDB session settings: strict about bad data, all warnings kept for insert_ignore.
_MYSQL_INIT: Final = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION', max_error_count = 65535"
)
_MYSQL_DUPLICATE_KEY: Final = 1062
#: MariaDB error codes of rows that can never be stored as they are: NULL in a NOT NULL
#: column, out of range, too long, incorrect value, CHECK constraint failed.
_MYSQL_BAD_DATA: Final = frozenset({1048, 1264, 1366, 1406, 3819, 4025})
#: SQLAlchemy keeps an INSERT's row count only when asked to.
_ROWCOUNT: Final = {"preserve_rowcount": True}


def redact(url: str | URL) -> str:
    """Return ``url`` as text with its password (if any) replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable URL>"


def normalize_url(url: str | Path | URL | None) -> URL:
    """Return the SQLAlchemy URL (with its driver) that ``url`` designates.

    Raises:
        ConfigError: not a URL of a supported engine.
    """
    if isinstance(url, URL):
        parsed = url
    elif url is None or (isinstance(url, str) and not url.strip()):
        parsed = URL.create("sqlite", database=str(DEFAULT_SQLITE_PATH))
    elif isinstance(url, Path) or "://" not in url:
        parsed = URL.create("sqlite", database=str(Path(url).expanduser()))
    else:
        try:
            parsed = make_url(url.strip())
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(f"not a database URL: {redact(url)!r}") from exc
    driver = _SCHEMES.get(parsed.drivername)
    if driver is None:
        known = "sqlite://, mysql://, mariadb://, postgresql://"
        raise ConfigError(
            f"unsupported database {parsed.drivername!r} in {redact(parsed)!r} (use {known})"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "mysql+pymysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def make_engine(url: str | Path | URL | None = None, *, echo: bool = False) -> Engine:
    """Return an engine for ``url`` (see the module docstring); no connection is made yet.

    SQLite gets WAL journaling with ``synchronous=FULL`` (every commit is on disk when it
    returns: it survives a power cut), foreign keys and a busy timeout on every connection;
    MariaDB utf8mb4, strict SQL mode and pre-pinged, recycled pooled connections;
    PostgreSQL pre-pinged pooled connections.

    Raises:
        ConfigError: bad or unsupported URL, or its driver is not installed.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"echo": echo}
    if backend == "mysql":
        options.update(
            pool_pre_ping=True,
            pool_recycle=3600,
            connect_args={"init_command": _MYSQL_INIT},
        )
    elif backend == "postgresql":
        options.update(pool_pre_ping=True)
    elif parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folder of the SQLite database {parsed.database!r}: {exc}"
            ) from exc
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot use database {redact(parsed)!r}: {exc}") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        row = cursor.execute("PRAGMA database_list").fetchone()
        if row is not None and row[2]:  # a file, not an in-memory database
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL, not NORMAL: with NORMAL a power cut may undo the last commits, which
            # the sync receiver may have acknowledged already (the site then drops the
            # data: lost). FULL syncs the WAL at each commit; batches are large.
            cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def translate_errors(engine_or_url: Engine | URL | str | None = None) -> Iterator[None]:
    """Translate SQLAlchemy and driver errors raised inside the block into wesh errors.

    * a :class:`~wesh.errors.WeshError` raised by a column type is re-raised as is;
    * cannot connect (refused, unknown host, bad credentials, no such database) →
      :class:`~wesh.errors.ConnectionFailed` naming the redacted URL (an SQLite file that
      cannot be opened: :class:`~wesh.errors.ConfigError`);
    * other operational errors (lock timeouts, deadlocks, lost connection) →
      :class:`~wesh.errors.TransientError`;
    * constraint violations (unique, foreign key, check, not null) →
      :class:`~wesh.errors.BadInputError`;
    * bad URL or missing driver → :class:`~wesh.errors.ConfigError`;
    * anything else from SQLAlchemy → :class:`~wesh.errors.WeshError`.
    """
    try:
        yield
    except StatementError as exc:
        if isinstance(exc.orig, WeshError):
            raise exc.orig from exc
        raise _translate(exc, engine_or_url) from exc
    except SQLAlchemyError as exc:
        raise _translate(exc, engine_or_url) from exc


def _where(engine_or_url: Engine | URL | str | None) -> str | None:
    if engine_or_url is None:
        return None
    if isinstance(engine_or_url, Engine):
        return redact(engine_or_url.url)
    return redact(engine_or_url)


def _is_sqlite(engine_or_url: Engine | URL | str | None) -> bool:
    if isinstance(engine_or_url, Engine):
        return engine_or_url.dialect.name == "sqlite"
    if isinstance(engine_or_url, URL):
        return engine_or_url.get_backend_name() == "sqlite"
    return isinstance(engine_or_url, str) and engine_or_url.startswith("sqlite")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _translate(exc: SQLAlchemyError, engine_or_url: Engine | URL | str | None) -> WeshError:
    where = _where(engine_or_url)
    detail = _first_line(exc)
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return ConfigError(f"bad database configuration: {detail}", host=where)
    if isinstance(exc, IntegrityError | DataError) or _mysql_code(exc) in _MYSQL_BAD_DATA:
        return BadInputError(f"rejected by the database: {detail}", host=where)
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _is_connect_error(exc)):
        if _is_sqlite(engine_or_url):  # a file that cannot be opened: retrying will not help
            return ConfigError(f"cannot open the SQLite database: {detail}", host=where)
        return ConnectionFailed(f"cannot connect to the database: {detail}", host=where)
    if isinstance(exc, OperationalError):
        return TransientError(f"database operation failed: {detail}", host=where)
    return WeshError(f"database error: {detail}", host=where)


def _mysql_code(exc: SQLAlchemyError) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_connect_error(exc: DBAPIError) -> bool:
    """Tell a failure to connect from an error inside an established session."""
    if exc.statement is None:  # raised by connect(), not by a statement
        return True
    code = _mysql_code(exc)
    # MariaDB: can't connect (2002/2003/2005/2006/2013), access denied (1044/1045),
    # unknown database (1049).
    return code in {1044, 1045, 1049, 2002, 2003, 2005, 2006, 2013}


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside a transaction: committed on success, rolled back on error.

    Errors are translated as by :func:`translate_errors`.
    """
    with translate_errors(engine), engine.begin() as conn:
        yield conn


def _table(table: Table | type[DeclarativeBase]) -> Table:
    if isinstance(table, Table):
        return table
    found = getattr(table, "__table__", None)
    if not isinstance(found, Table):
        raise TypeError(f"{table!r} is not a table or a mapped class")
    return found


def _ignore_statement(target: Table, backend: str) -> Executable:
    if backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert(target).on_conflict_do_nothing()
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert(target).on_conflict_do_nothing()
    if backend == "mysql":
        return insert(target).prefix_with("IGNORE")
    raise ConfigError(f"insert_ignore does not support the {backend!r} database")


def _rows_per_statement(backend: str, first: Mapping[str, Any]) -> int:
    if backend != "mysql":
        return _MAX_ROWS
    # PyMySQL sends an executemany as one multi-row INSERT unless it exceeds ~1 MB, and
    # SHOW WARNINGS only sees the last statement: keep each batch well under that size.
    row_bytes = 16 + sum(8 + 4 * len(str(value)) for value in first.values())
    return max(1, min(_MAX_ROWS, _MYSQL_BATCH_BYTES // row_bytes))


def insert_ignore(
    table: Table | type[DeclarativeBase],
    rows: Sequence[Mapping[str, Any]],
    conn: Connection,
) -> int:
    """Insert ``rows`` into ``table``, skipping those whose key already exists.

    Only uniqueness conflicts (primary key or unique constraint) are skipped, on every
    engine: SQLite and PostgreSQL use ``INSERT ... ON CONFLICT DO NOTHING``; MariaDB uses
    ``INSERT IGNORE`` and any other warning it turned into a skip (foreign key, check
    constraint, truncation) raises :class:`~wesh.errors.BadInputError`. Rows are sent as
    executemany batches of at most 2,000 rows (one compiled statement per table); every
    row must have the same keys (missing columns get their model defaults).

    Returns:
        How many rows were inserted (``len(rows)`` minus the duplicates).

    Raises:
        UsageError: rows with different keys (SQLAlchemy would drop extra keys silently).
        BadInputError: a row violates a constraint other than a duplicate key.
        TransientError, ConnectionFailed, WeshError: see :func:`translate_errors`.
    """
    if not rows:
        return 0
    target = _table(table)
    columns = rows[0].keys()
    for number, row in enumerate(rows):
        if row.keys() != columns:
            raise UsageError(
                f"insert_ignore: row {number} of {target.name} does not have the same columns"
                f" as row 0 ({sorted(row.keys())} != {sorted(columns)})"
            )
    backend = conn.dialect.name
    statement = _ignore_statement(target, backend)
    per_statement = _rows_per_statement(backend, rows[0])
    inserted = 0
    with translate_errors(conn.engine):
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            count = conn.execute(statement, list(chunk), execution_options=_ROWCOUNT).rowcount
            if backend == "mysql":
                _check_mysql_warnings(target, len(chunk), count, conn)
            inserted += count
    return inserted


def _check_mysql_warnings(target: Table, sent: int, inserted: int, conn: Connection) -> None:
    """Raise unless every row INSERT IGNORE skipped was a duplicate key, and only those."""
    skipped = sent - inserted
    warnings = conn.execute(text("SHOW WARNINGS")).all()
    problems = [row for row in warnings if int(row[1]) != _MYSQL_DUPLICATE_KEY]
    duplicates = len(warnings) - len(problems)
    if problems or duplicates != skipped:
        shown = "; ".join(str(row[2]) for row in problems[:3]) or "rows skipped without a reason"
        raise BadInputError(
            f"{len(problems) or skipped} row(s) rejected by {target.name}: {shown}",
            host=redact(conn.engine.url),
        )
