"""Fixtures of the HQ store tests: one fresh database per test on each engine.

``engine_url`` is parametrised over ``sqlite``, ``mariadb`` and ``postgresql``: a test using
it runs three times, each time on a new empty database (a temporary SQLite file, or a
database with a unique name on a private server, dropped after the test). The private
servers (``tests/hq/servers.py``) start lazily, at most once per session, on the first test
that needs them, and stop at the end of the session.

A test limited to some engines::

    @pytest.mark.parametrize("engine_url", ["sqlite", "postgresql"], indirect=True)
    def test_something(engine_url: str) -> None: ...

Missing server programs skip the test, except under ``CI=true`` where they fail it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.hq.servers import STARTERS, PrivateServer, ServerKind, ServerUnavailable
from wesh.hq.db import make_engine

ENGINES = ["sqlite", "mariadb", "postgresql"]


def _start(kind: ServerKind) -> Iterator[PrivateServer]:
    try:
        server = STARTERS[kind]()
    except ServerUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc}: required under CI (.ci/run installs it)")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[PrivateServer]:
    """A private MariaDB for the whole session (started on first use)."""
    yield from _start("mariadb")


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PrivateServer]:
    """A private PostgreSQL for the whole session (started on first use)."""
    yield from _start("postgresql")


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on the engine named by the parameter."""
    kind: str = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'hq.sqlite3'}"
        return
    if kind not in ("mariadb", "postgresql"):
        raise ValueError(f"unknown engine {kind!r} (one of {ENGINES})")
    server: PrivateServer = request.getfixturevalue(f"{kind}_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def engine(engine_url: str) -> Iterator[Engine]:
    """An engine on :func:`engine_url`'s fresh database, disposed of after the test."""
    made = make_engine(engine_url)
    try:
        yield made
    finally:
        made.dispose()
