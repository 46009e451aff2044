"""Initial headquarters schema: patrimony, equipment, readings, rollups, sync, alerts.

Written by hand to match :mod:`wesh.hq.models` at this revision (instants are BIGINT epoch
microseconds, values DOUBLE, JSON TEXT; see docs/hq-schema.md).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}
CHANNEL_KINDS = (
    "'electricity', 'cold_water', 'hot_water', 'gas', 'heat', 'temperature', "
    "'humidity', 'current', 'voltage', 'power', 'other'"
)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _at(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    """Return an instant column: epoch microseconds (wesh.hq.models.UtcTimestamp)."""
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _real(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Double(), nullable=True)


def _fk(
    column: str, table: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def _rollup(table: str, bucket: sa.Column[Any]) -> None:
    op.create_table(
        table,
        sa.Column("channel_id", sa.Integer(), nullable=False),
        bucket,
        _real("consumption"),
        _real("min"),
        _real("max"),
        _real("mean"),
        sa.Column("count", sa.Integer(), nullable=False),
        _at("first_at"),
        _real("first_value"),
        _at("last_at"),
        _real("last_value"),
        _fk("channel_id", table, "channel", "CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", bucket.name, name=f"pk_{table}"),
        **MYSQL,
    )


def upgrade() -> None:
    """Create every table."""
    # --- patrimony
    op.create_table(
        "agency",
        _id(),
        _str("code", 64),
        _str("name", 200),
        sa.PrimaryKeyConstraint("id", name="pk_agency"),
        sa.UniqueConstraint("code", name="uq_agency_code"),
        **MYSQL,
    )
    op.create_table(
        "residence",
        _id(),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        _str("code", 64),
        _str("name", 200),
        _str("address", 400, nullable=True),
        _fk("agency_id", "residence", "agency"),
        sa.PrimaryKeyConstraint("id", name="pk_residence"),
        sa.UniqueConstraint("code", name="uq_residence_code"),
        **MYSQL,
    )
    op.create_index("ix_residence_agency_id", "residence", ["agency_id"])
    op.create_table(
        "building",
        _id(),
        sa.Column("residence_id", sa.Integer(), nullable=False),
        _str("code", 64),
        _str("name", 200),
        _fk("residence_id", "building", "residence"),
        sa.PrimaryKeyConstraint("id", name="pk_building"),
        sa.UniqueConstraint("code", name="uq_building_code"),
        **MYSQL,
    )
    op.create_index("ix_building_residence_id", "building", ["residence_id"])
    op.create_table(
        "dwelling",
        _id(),
        sa.Column("building_id", sa.Integer(), nullable=False),
        _str("code", 64),
        _str("kind", 16),
        _str("label", 200),
        sa.Column("floor", sa.Integer(), nullable=True),
        _real("surface_m2"),
        _str("heating_type", 32, nullable=True),
        sa.CheckConstraint("kind IN ('dwelling', 'common_area')", name=op.f("ck_dwelling_kind")),
        sa.CheckConstraint(
            "surface_m2 IS NULL OR surface_m2 > 0", name=op.f("ck_dwelling_surface_m2")
        ),
        _fk("building_id", "dwelling", "building"),
        sa.PrimaryKeyConstraint("id", name="pk_dwelling"),
        sa.UniqueConstraint("code", name="uq_dwelling_code"),
        **MYSQL,
    )
    op.create_index("ix_dwelling_building_id", "dwelling", ["building_id"])
    op.create_table(
        "tenancy",
        _id(),
        sa.Column("dwelling_id", sa.Integer(), nullable=False),
        _str("tenant_ref", 64),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        _at("purged_at"),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_tenancy_period")
        ),
        _fk("dwelling_id", "tenancy", "dwelling"),
        sa.PrimaryKeyConstraint("id", name="pk_tenancy"),
        **MYSQL,
    )
    op.create_index("ix_tenancy_dwelling_id_start_date", "tenancy", ["dwelling_id", "start_date"])

    # --- equipment
    op.create_table(
        "gateway",
        _id(),
        sa.Column("building_id", sa.Integer(), nullable=True),
        _str("site_id", 64),
        _str("name", 200, nullable=True),
        _str("phone_number", 32, nullable=True),
        _str("key_id", 64, nullable=True),
        _at("last_seen_at"),
        _fk("building_id", "gateway", "building"),
        sa.PrimaryKeyConstraint("id", name="pk_gateway"),
        sa.UniqueConstraint("site_id", name="uq_gateway_site_id"),
        **MYSQL,
    )
    op.create_index("ix_gateway_building_id", "gateway", ["building_id"])
    op.create_table(
        "box",
        _id(),
        sa.Column("gateway_id", sa.Integer(), nullable=False),
        _str("box_ref", 64),
        sa.Column("dwelling_id", sa.Integer(), nullable=True),
        _str("driver", 16),
        _str("host", 255, nullable=True),
        _str("mac", 12, nullable=True),
        _str("serial", 64, nullable=True),
        _str("model", 64, nullable=True),
        _str("firmware", 64, nullable=True),
        _at("installed_at"),
        sa.CheckConstraint("driver IN ('wes', 'tic')", name=op.f("ck_box_driver")),
        _fk("gateway_id", "box", "gateway"),
        _fk("dwelling_id", "box", "dwelling"),
        sa.PrimaryKeyConstraint("id", name="pk_box"),
        sa.UniqueConstraint("gateway_id", "box_ref", name="uq_box_gateway_id_box_ref"),
        **MYSQL,
    )
    op.create_index("ix_box_dwelling_id", "box", ["dwelling_id"])
    op.create_table(
        "meter",
        _id(),
        sa.Column("box_id", sa.Integer(), nullable=False),
        _str("serial", 64),
        _str("kind", 16),
        _str("input", 64, nullable=True),
        _str("model", 64, nullable=True),
        _at("installed_at", nullable=False),
        _at("removed_at"),
        sa.CheckConstraint(f"kind IN ({CHANNEL_KINDS})", name=op.f("ck_meter_kind")),
        _fk("box_id", "meter", "box"),
        sa.PrimaryKeyConstraint("id", name="pk_meter"),
        **MYSQL,
    )
    op.create_index("ix_meter_box_id_input", "meter", ["box_id", "input"])
    op.create_index("ix_meter_serial", "meter", ["serial"])
    op.create_table(
        "channel",
        _id(),
        sa.Column("box_id", sa.Integer(), nullable=False),
        _str("path", 64),
        _str("kind", 16),
        _str("unit", 16, nullable=True),
        sa.Column("is_index", sa.Boolean(), nullable=False),
        _real("resolution"),
        _str("label", 200, nullable=True),
        sa.CheckConstraint(f"kind IN ({CHANNEL_KINDS})", name=op.f("ck_channel_kind")),
        _fk("box_id", "channel", "box"),
        sa.PrimaryKeyConstraint("id", name="pk_channel"),
        sa.UniqueConstraint("box_id", "path", name="uq_channel_box_id_path"),
        **MYSQL,
    )
    op.create_table(
        "meter_event",
        _id(),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        _str("kind", 16),
        _at("at", nullable=False),
        _real("old_index"),
        _real("new_index"),
        _str("note", 400, nullable=True),
        sa.CheckConstraint(
            "kind IN ('installed', 'replaced', 'removed', 'reset')",
            name=op.f("ck_meter_event_kind"),
        ),
        _fk("meter_id", "meter_event", "meter"),
        _fk("channel_id", "meter_event", "channel"),
        sa.PrimaryKeyConstraint("id", name="pk_meter_event"),
        **MYSQL,
    )
    op.create_index("ix_meter_event_channel_id_at", "meter_event", ["channel_id", "at"])
    op.create_index("ix_meter_event_meter_id", "meter_event", ["meter_id"])

    # --- readings and rollups
    op.create_table(
        "reading",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        _str("provenance", 16),
        _str("quality", 16),
        _str("aggregate", 16),
        sa.CheckConstraint(
            "provenance IN ('measured', 'estimated', 'manual', 'corrected')",
            name=op.f("ck_reading_provenance"),
        ),
        sa.CheckConstraint("quality IN ('good', 'suspect')", name=op.f("ck_reading_quality")),
        sa.CheckConstraint(
            "aggregate IN ('sample', 'hour_mean', 'hour_last')", name=op.f("ck_reading_aggregate")
        ),
        _fk("channel_id", "reading", "channel", "CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", "at", name="pk_reading"),
        **MYSQL,
    )
    _rollup("rollup_hour", _at("hour_start", nullable=False))
    _rollup("rollup_day", sa.Column("day", sa.Date(), nullable=False))

    # --- synchronisation and alerts
    op.create_table(
        "sync_ledger",
        _str("site_id", 64),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("received_count", sa.BigInteger(), nullable=False),
        sa.Column("gaps", sa.Text(), nullable=True),
        _at("last_status_at"),
        sa.Column("status", sa.Text(), nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("site_id", name="pk_sync_ledger"),
        **MYSQL,
    )
    op.create_table(
        "site_event",
        _id(),
        _str("dedup_key", 64),
        _str("site_id", 64),
        _str("box_ref", 64, nullable=True),
        _str("channel_path", 64, nullable=True),
        sa.Column("box_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        _at("at", nullable=False),
        _str("kind", 64),
        _str("severity", 16),
        _str("message", 1000),
        _at("received_at", nullable=False),
        _at("handled_at"),
        _fk("box_id", "site_event", "box", "SET NULL"),
        _fk("channel_id", "site_event", "channel", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_site_event"),
        sa.UniqueConstraint("dedup_key", name="uq_site_event_dedup_key"),
        **MYSQL,
    )
    op.create_index("ix_site_event_box_id", "site_event", ["box_id"])
    op.create_index("ix_site_event_channel_id", "site_event", ["channel_id"])
    op.create_index("ix_site_event_site_id_at", "site_event", ["site_id", "at"])
    op.create_table(
        "alert",
        _id(),
        _str("rule", 64),
        _str("subject_kind", 16),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        _str("state", 16),
        _at("started_at", nullable=False),
        _at("fired_at"),
        _at("resolved_at"),
        _real("last_value"),
        sa.Column("data", sa.Text(), nullable=True),
        _str("acked_by", 200, nullable=True),
        _at("acked_at"),
        _at("muted_until"),
        sa.CheckConstraint(
            "state IN ('pending', 'firing', 'resolved')", name=op.f("ck_alert_state")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        **MYSQL,
    )
    op.create_index(
        "ix_alert_rule_subject_kind_subject_id", "alert", ["rule", "subject_kind", "subject_id"]
    )
    op.create_index("ix_alert_state", "alert", ["state"])


def downgrade() -> None:
    """Drop every table (and its indexes), children first."""
    for table in (
        "alert",
        "site_event",
        "sync_ledger",
        "rollup_day",
        "rollup_hour",
        "reading",
        "meter_event",
        "channel",
        "meter",
        "box",
        "gateway",
        "tenancy",
        "dwelling",
        "building",
        "residence",
        "agency",
    ):
        op.drop_table(table)
