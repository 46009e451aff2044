"""Alembic environment of the headquarters schema (run by :mod:`wesh.hq.migrate`).

The caller hands over an open connection in ``config.attributes["connection"]``; there is
no ``alembic.ini`` and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from wesh.hq.models import Base

config = context.config
connection = config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise TypeError("run the HQ migrations through wesh.hq.migrate (no connection given)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
