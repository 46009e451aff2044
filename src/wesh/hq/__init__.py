"""Headquarters store: SQL schema, migrations, inventory, ingestion, rollups, queries.

Open (and create or upgrade) a store (``docs/hq-schema.md``)::

    from wesh.hq import make_engine, migrate

    engine = make_engine("postgresql://wesh@db.example/wesh")   # or None: ./wesh-hq.sqlite3
    migrate(engine)                                              # -> "0001"

SQLite (a file, the default), MariaDB and PostgreSQL run the same code and migrations.
Names are loaded on first use, so that importing :mod:`wesh.hq` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wesh.hq.db import insert_ignore, make_engine, session_factory, transaction
    from wesh.hq.ingest import HqSink
    from wesh.hq.migrate import current_revision, head_revision, migrate
    from wesh.hq.models import (
        Agency,
        Alert,
        Base,
        Box,
        Building,
        Channel,
        Dwelling,
        Gateway,
        Meter,
        MeterEvent,
        Reading,
        Residence,
        RollupDay,
        RollupHour,
        SiteEvent,
        SyncLedger,
        Tenancy,
    )
    from wesh.hq.purge import purge_tenancies
    from wesh.hq.rollups import refresh_rollups

__all__ = [
    "Agency",
    "Alert",
    "Base",
    "Box",
    "Building",
    "Channel",
    "Dwelling",
    "Gateway",
    "HqSink",
    "Meter",
    "MeterEvent",
    "Reading",
    "Residence",
    "RollupDay",
    "RollupHour",
    "SiteEvent",
    "SyncLedger",
    "Tenancy",
    "current_revision",
    "head_revision",
    "insert_ignore",
    "make_engine",
    "migrate",
    "purge_tenancies",
    "refresh_rollups",
    "session_factory",
    "transaction",
]

_HOME = {
    "insert_ignore": "db",
    "make_engine": "db",
    "session_factory": "db",
    "transaction": "db",
    "current_revision": "migrate",
    "head_revision": "migrate",
    "migrate": "migrate",
    "HqSink": "ingest",
    "purge_tenancies": "purge",
    "refresh_rollups": "rollups",
    **{name: "models" for name in __all__ if name[0].isupper() and name != "HqSink"},
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'wesh.hq' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wesh.hq.{module}"), name)
