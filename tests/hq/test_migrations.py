"""Alembic migrations of the HQ schema on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    inspect,
    text,
)

from wesh.errors import ConfigError
from wesh.hq.migrate import VERSION_TABLE, current_revision, downgrade, head_revision, migrate
from wesh.hq.models import Base

TABLES = set(Base.metadata.tables)


def _differences(engine: Engine, metadata: MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def _snapshot(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    return {
        name: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
            sorted(str(i) for i in inspector.get_indexes(name)),
            sorted(str(f) for f in inspector.get_foreign_keys(name)),
        )
        for name in inspector.get_table_names()
    }


def test_head_is_the_newest_revision() -> None:
    assert head_revision() == "0003"


def test_migrate_creates_every_table_from_empty(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES | {VERSION_TABLE}


def test_a_second_migrate_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    before = _snapshot(engine)
    assert migrate(engine) == head_revision()
    assert _snapshot(engine) == before


def test_migrations_match_the_models(engine: Engine) -> None:
    """Alembic's autogenerate finds no difference between the migrated database and models."""
    migrate(engine)
    assert _differences(engine, Base.metadata) == []


def test_the_model_comparison_can_fail(engine: Engine) -> None:
    migrate(engine)
    changed = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["agency"].append_column(Column("phone", String(20), nullable=True))
    Table("extra", changed, Column("id", Integer, primary_key=True))
    kinds = {diff[0] for diff in _differences(engine, changed) if isinstance(diff, tuple)}
    assert {"add_column", "add_table"} <= kinds


def test_constraint_names_match_the_models(engine: Engine) -> None:
    """Names Alembic does not compare: check constraints, foreign keys, unique keys."""
    migrate(engine)
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        wanted_checks = {
            c.name for c in table.constraints if isinstance(c, CheckConstraint) and c.name
        }
        found_checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert found_checks == wanted_checks, table.name
        wanted_fks = {c.name for c in table.constraints if isinstance(c, ForeignKeyConstraint)}
        found_fks = {f["name"] for f in inspector.get_foreign_keys(table.name)}
        assert found_fks == wanted_fks, table.name
        wanted_uqs = {c.name for c in table.constraints if isinstance(c, UniqueConstraint)}
        found_uqs = {u["name"] for u in inspector.get_unique_constraints(table.name)}
        assert found_uqs == wanted_uqs, table.name
        if engine.dialect.name != "mysql":  # MariaDB names every primary key PRIMARY
            assert inspector.get_pk_constraint(table.name)["name"] == f"pk_{table.name}"


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    migrate(engine)
    assert downgrade(engine, "base") is None
    assert set(inspect(engine).get_table_names()) <= {VERSION_TABLE}
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert _differences(engine, Base.metadata) == []


def test_migrate_takes_a_url(engine_url: str) -> None:
    assert migrate(engine_url) == head_revision()
    assert migrate(engine_url) == head_revision()


def test_an_unknown_target_revision_is_a_config_error(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="nonesuch"):
        migrate(engine, revision="nonesuch")


def test_a_database_from_a_newer_wesh_is_refused(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff9999'"))
    with pytest.raises(ConfigError, match="ffff9999"):
        migrate(engine)
