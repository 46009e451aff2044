"""Alert engine: the full ``alert`` table, ``alert_event``, ``alert_mute``, ``mail_outbox``.

Written by hand to match :class:`wesh.hq.models.Alert`, ``AlertEvent``, ``AlertMute`` and
``MailOutbox`` (see docs/hq-schema.md). The ``alert`` table of 0001 was a placeholder that no
wesh code wrote to: it is dropped and created again with its final columns (an ALTER of a
UNIQUE column and a self-referencing foreign key would need a table copy on SQLite anyway).
Downgrading restores the placeholder, empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}


def _at(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    """Return an instant column: epoch microseconds (wesh.hq.models.UtcTimestamp)."""
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _int(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _real(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Double(), nullable=True)


def _check(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def _fk(column: str, table: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    """Replace the placeholder ``alert`` table; create the history, mute and outbox tables."""
    op.drop_table("alert")
    op.create_table(
        "alert",
        _int("id"),
        _str("rule", 64),
        _str("subject_kind", 16),
        _int("subject_id"),
        _str("state", 16),
        _str("open_key", 64, nullable=True),
        _str("severity", 16),
        _int("version"),
        sa.Column("place", sa.Text(), nullable=True),
        _int("agency_id", nullable=True),
        _int("residence_id", nullable=True),
        _int("building_id", nullable=True),
        _int("dwelling_id", nullable=True),
        _at("started_at", nullable=False),
        _at("opened_at", nullable=False),
        _at("fired_at"),
        _at("resolved_at"),
        _real("last_value"),
        _str("value_unit", 16, nullable=True),
        _real("threshold"),
        sa.Column("data", sa.Text(), nullable=True),
        _at("last_seen_on_at"),
        _at("off_since"),
        _at("notified_at"),
        _int("reminders_sent"),
        _at("next_reminder_at"),
        _at("escalated_at"),
        _int("grouped_under", nullable=True),
        _str("acked_by", 200, nullable=True),
        _at("acked_at"),
        _str("ack_note", 1000, nullable=True),
        _at("muted_until"),
        _at("updated_at", nullable=False),
        _str("updated_by", 64, nullable=True),
        _check("alert", "state", ("pending", "firing", "resolved")),
        _check("alert", "severity", ("info", "warning", "critical")),
        _fk("grouped_under", "alert", "alert", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        sa.UniqueConstraint("open_key", name="uq_alert_open_key"),
        **MYSQL,
    )
    op.create_index(
        "ix_alert_rule_subject_kind_subject_id", "alert", ["rule", "subject_kind", "subject_id"]
    )
    op.create_index("ix_alert_state", "alert", ["state"])
    op.create_index("ix_alert_grouped_under", "alert", ["grouped_under"])
    op.create_table(
        "alert_event",
        _int("id"),
        _int("alert_id"),
        _at("at", nullable=False),
        _str("kind", 16),
        _str("actor", 200, nullable=True),
        _str("note", 1000, nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        _check(
            "alert_event",
            "kind",
            (
                "pending",
                "fired",
                "resolved",
                "reminder",
                "escalated",
                "acked",
                "muted",
                "unmuted",
                "suppressed",
                "grouped",
                "ungrouped",
                "cancelled",
            ),
        ),
        _fk("alert_id", "alert_event", "alert", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_event"),
        **MYSQL,
    )
    op.create_index("ix_alert_event_alert_id_at", "alert_event", ["alert_id", "at"])
    op.create_table(
        "alert_mute",
        _int("id"),
        _str("rule", 64, nullable=True),
        _str("scope_kind", 16),
        _int("scope_id"),
        _at("until_at"),
        _str("created_by", 200),
        _at("created_at", nullable=False),
        _str("reason", 1000, nullable=True),
        _at("lifted_at"),
        _str("lifted_by", 200, nullable=True),
        _check(
            "alert_mute",
            "scope_kind",
            ("agency", "residence", "building", "dwelling", "box", "channel", "gateway", "alert"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_mute"),
        **MYSQL,
    )
    op.create_index("ix_alert_mute_scope_kind_scope_id", "alert_mute", ["scope_kind", "scope_id"])
    op.create_table(
        "mail_outbox",
        _int("id"),
        _str("dedup_key", 128),
        _int("alert_id", nullable=True),
        _str("notice_kind", 16, nullable=True),
        _str("lang", 2),
        sa.Column("recipients", sa.Text(), nullable=False),
        _str("subject", 400),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        _str("message_id", 255),
        _at("created_at", nullable=False),
        _at("next_attempt_at", nullable=False),
        _int("attempts"),
        _str("last_error", 1000, nullable=True),
        _str("claimed_by", 64, nullable=True),
        _at("claimed_until"),
        _at("sent_at"),
        _at("failed_at"),
        _check("mail_outbox", "notice_kind", ("fired", "reminder", "escalated", "resolved")),
        _fk("alert_id", "mail_outbox", "alert", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
        sa.UniqueConstraint("dedup_key", name="uq_mail_outbox_dedup_key"),
        **MYSQL,
    )
    op.create_index("ix_mail_outbox_alert_id", "mail_outbox", ["alert_id"])
    op.create_index(
        "ix_mail_outbox_sent_at_failed_at_next_attempt_at",
        "mail_outbox",
        ["sent_at", "failed_at", "next_attempt_at"],
    )


def downgrade() -> None:
    """Drop the alert engine's tables and restore the placeholder ``alert`` of 0001."""
    for table in ("mail_outbox", "alert_mute", "alert_event", "alert"):
        op.drop_table(table)
    op.create_table(
        "alert",
        _int("id"),
        _str("rule", 64),
        _str("subject_kind", 16),
        _int("subject_id"),
        _str("state", 16),
        _at("started_at", nullable=False),
        _at("fired_at"),
        _at("resolved_at"),
        _real("last_value"),
        sa.Column("data", sa.Text(), nullable=True),
        _str("acked_by", 200, nullable=True),
        _at("acked_at"),
        _at("muted_until"),
        _check("alert", "state", ("pending", "firing", "resolved")),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        **MYSQL,
    )
    op.create_index(
        "ix_alert_rule_subject_kind_subject_id", "alert", ["rule", "subject_kind", "subject_id"]
    )
    op.create_index("ix_alert_state", "alert", ["state"])
