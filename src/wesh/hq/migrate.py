"""Create or upgrade the headquarters schema with Alembic, configured from code.

``migrate(url)`` brings any database (empty, or at an older revision) to the newest
revision and returns it; running it again does nothing. No ``alembic.ini`` is needed: the
scripts are the package's ``migrations`` folder. Revisions are written by hand, one file per
change, and a test checks that the newest one matches :mod:`wesh.hq.models` exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from wesh.errors import ConfigError, WeshError
from wesh.hq.db import make_engine, translate_errors

__all__ = [
    "VERSION_TABLE",
    "current_revision",
    "downgrade",
    "head_revision",
    "migrate",
]

_LOG = logging.getLogger(__name__)

VERSION_TABLE: Final = "alembic_version"
"""The table where Alembic records the schema's revision."""


@contextmanager
def _script_location() -> Iterator[Path]:
    with as_file(files("wesh.hq").joinpath("migrations")) as path:
        yield Path(path)


def _config(location: Path, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision shipped with this version of wesh."""
    with _script_location() as location:
        head = ScriptDirectory.from_config(_config(location)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise WeshError("no migration scripts found")
    return head


def _known(revision: str) -> bool:
    with _script_location() as location:
        scripts = ScriptDirectory.from_config(_config(location))
        try:
            return scripts.get_revision(revision) is not None
        except (CommandError, RevisionError):
            return False


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or ``None`` if it was never migrated."""
    with translate_errors(engine), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _engine(url_or_engine: Engine | URL | str | Path | None) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _run(engine: Engine, action: str, revision: str) -> str | None:
    with _script_location() as location, translate_errors(engine), engine.begin() as conn:
        config = _config(location, conn)
        try:
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
        except (CommandError, RevisionError) as exc:
            raise ConfigError(f"cannot {action} the schema to {revision!r}: {exc}") from exc
        return MigrationContext.configure(conn).get_current_revision()


def migrate(
    url_or_engine: Engine | URL | str | Path | None = None, *, revision: str = "head"
) -> str:
    """Create the schema in an empty database, or upgrade it; return the revision reached.

    Args:
        url_or_engine: an engine, or a URL as for :func:`wesh.hq.db.make_engine` (the
            engine made for it is disposed of afterwards).
        revision: the revision to reach (default: the newest).

    Raises:
        ConfigError: unknown revision, or the database is at a revision this version of
            wesh does not know (a newer wesh migrated it).
        ConnectionFailed, WeshError: the database could not be reached or refused a step.
    """
    with _engine(url_or_engine) as engine:
        before = current_revision(engine)
        if before is not None and not _known(before):
            raise ConfigError(
                f"the database is at schema revision {before!r}, unknown to this version of"
                " wesh (was it migrated by a newer one?)",
                host=engine.url.render_as_string(),
            )
        reached = _run(engine, "upgrade", revision)
        if reached is None:  # pragma: no cover - upgrade always stamps
            raise WeshError("the migration left no revision")
        if before != reached:
            _LOG.info("schema of %s: %s -> %s", engine.url.render_as_string(), before, reached)
        return reached


def downgrade(url_or_engine: Engine | URL | str | Path | None, revision: str) -> str | None:
    """Downgrade the schema to ``revision`` (``"base"`` drops every table); return it.

    Raises:
        ConfigError: unknown revision.
    """
    with _engine(url_or_engine) as engine:
        return _run(engine, "downgrade", revision)
