"""The headquarters schema: SQLAlchemy 2 declarative models (``docs/hq-schema.md``).

::

    agency ─< residence ─< building ─< dwelling (kind: dwelling | common_area) ─< tenancy
                               │           ▲
                               └─< gateway ─< box (serves a dwelling) ─< channel ─< reading
                                  (site_id)    │                          │   ├─< rollup_hour
                                               └─< meter ─< meter_event >─┘   └─< rollup_day
    sync_ledger (per site)    site_event (alarms received)
    alert (alert engine state) ─< alert_event (history)    alert_mute    mail_outbox

One code base for SQLite, MariaDB and PostgreSQL:

* instants are :class:`UtcTimestamp` columns: aware UTC datetimes in Python, BIGINT
  microseconds since the epoch in SQL (:mod:`wesh.hq.timeutil`);
* reading values are DOUBLE: indexes (Wh, L) are whole numbers, exact up to 2**53;
* JSON documents are TEXT (:class:`JsonText`);
* closed vocabularies are short VARCHARs with a CHECK constraint, not native enums (adding
  a value is then a plain migration on every engine);
* MariaDB tables are InnoDB, ``utf8mb4`` with the ``utf8mb4_nopad_bin`` collation, so
  that uniqueness and comparisons of codes behave as on SQLite and PostgreSQL (exact,
  case- and trailing-space-sensitive).

The migrations (``migrations/versions/``) are written by hand to match these models; a
test checks that Alembic's autogenerate finds no difference on each engine.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wesh.hq.alerts import model as alert_model
from wesh.hq.timeutil import from_epoch_us, to_epoch_us

__all__ = [
    "AGGREGATES",
    "ALERT_EVENT_KINDS",
    "ALERT_STATES",
    "BOX_DRIVERS",
    "CHANNEL_KINDS",
    "DWELLING_KINDS",
    "METER_EVENT_KINDS",
    "MUTE_SCOPES",
    "NOTICE_KINDS",
    "PROVENANCES",
    "QUALITIES",
    "SEVERITIES",
    "Agency",
    "Alert",
    "AlertEvent",
    "AlertMute",
    "Base",
    "Box",
    "Building",
    "Channel",
    "Dwelling",
    "Gateway",
    "JsonText",
    "MailOutbox",
    "Meter",
    "MeterEvent",
    "Reading",
    "Residence",
    "RollupDay",
    "RollupDirty",
    "RollupHour",
    "SiteEvent",
    "SyncLedger",
    "Tenancy",
    "UtcTimestamp",
]

# Vocabularies (each column holding one has a CHECK constraint listing it).
DWELLING_KINDS: Final = ("dwelling", "common_area")
BOX_DRIVERS: Final = ("wes", "tic")
CHANNEL_KINDS: Final = (
    "electricity",
    "cold_water",
    "hot_water",
    "gas",
    "heat",
    "temperature",
    "humidity",
    "current",
    "voltage",
    "power",
    "other",
)
METER_EVENT_KINDS: Final = ("installed", "replaced", "removed", "reset")
PROVENANCES: Final = ("measured", "estimated", "manual", "corrected")
QUALITIES: Final = ("good", "suspect")
AGGREGATES: Final = ("sample", "hour_mean", "hour_last")
# The alert vocabularies are the engine's (one definition, in wesh.hq.alerts.model).
ALERT_STATES: Final = alert_model.ALERT_STATES
SEVERITIES: Final = alert_model.SEVERITIES
ALERT_EVENT_KINDS: Final = alert_model.EVENT_KINDS
MUTE_SCOPES: Final = (
    "agency",
    "residence",
    "building",
    "dwelling",
    "box",
    "channel",
    "gateway",
    "alert",
)
NOTICE_KINDS: Final = alert_model.NOTICE_KINDS

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: MariaDB table options (ignored by the other engines).
MYSQL_OPTIONS: Final = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}

# String lengths (MariaDB needs them; they are limits on every engine).
CODE_LEN: Final = 64  # agency/residence/building/dwelling codes, site and box ids
NAME_LEN: Final = 200
PATH_LEN: Final = 64  # weshd reading paths (gateway config limit)
SHORT_LEN: Final = 16  # vocabulary values, units
NOTE_LEN: Final = 1000  # free text (notes, reasons, error messages)
DEDUP_LEN: Final = 128  # mail_outbox.dedup_key


class UtcTimestamp(TypeDecorator[datetime]):
    """An instant: aware UTC ``datetime`` in Python, BIGINT epoch microseconds in SQL.

    Binding a naive datetime raises :class:`~wesh.errors.UsageError` (wrapped by
    SQLAlchemy in a ``StatementError``; :func:`wesh.hq.db.translate_errors` unwraps it).
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        """Return the epoch microseconds of ``value``."""
        return None if value is None else to_epoch_us(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        """Return the aware UTC datetime of stored epoch microseconds."""
        return None if value is None else from_epoch_us(int(value))


class JsonText(TypeDecorator[Any]):
    """A JSON document stored as TEXT (compact, keys sorted, UTF-8 kept as is)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:  # noqa: ANN401
        """Return the JSON text of ``value``."""
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:  # noqa: ANN401
        """Return the Python value of stored JSON text."""
        return None if value is None else json.loads(value)


def _one_of(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


class Base(DeclarativeBase):
    """Declarative base of every HQ table (naming convention for constraints)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- patrimony -------------------------------------------------------------------------


class Agency(Base):
    """A regional agency of the landlord."""

    __tablename__ = "agency"
    __table_args__ = (MYSQL_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))


class Residence(Base):
    """A residence (a group of buildings at one address) managed by an agency."""

    __tablename__ = "residence"
    __table_args__ = (MYSQL_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"), index=True)
    code: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    address: Mapped[str | None] = mapped_column(String(400))


class Building(Base):
    """A building of a residence."""

    __tablename__ = "building"
    __table_args__ = (MYSQL_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    residence_id: Mapped[int] = mapped_column(ForeignKey("residence.id"), index=True)
    code: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))


class Dwelling(Base):
    """A dwelling (``logement``) or the common areas (``parties communes``) of a building."""

    __tablename__ = "dwelling"
    __table_args__ = (
        _one_of("kind", DWELLING_KINDS),
        CheckConstraint("surface_m2 IS NULL OR surface_m2 > 0", name="surface_m2"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"), index=True)
    code: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    kind: Mapped[str] = mapped_column(String(SHORT_LEN), default="dwelling")
    label: Mapped[str] = mapped_column(String(NAME_LEN))
    floor: Mapped[int | None] = mapped_column(Integer)
    surface_m2: Mapped[float | None] = mapped_column(Double)
    heating_type: Mapped[str | None] = mapped_column(String(32))


class Tenancy(Base):
    """An occupancy period of a dwelling by one household.

    ``start_date`` and ``end_date`` are Paris calendar days, both included; ``end_date``
    is NULL while the lease runs. ``tenant_ref`` is a pseudonymous reference (no name).
    ``purged_at`` records when detailed readings of the period were purged.
    """

    __tablename__ = "tenancy"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="period"),
        Index("ix_tenancy_dwelling_id_start_date", "dwelling_id", "start_date"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dwelling_id: Mapped[int] = mapped_column(ForeignKey("dwelling.id"))
    tenant_ref: Mapped[str] = mapped_column(String(CODE_LEN))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    purged_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


# --- equipment -------------------------------------------------------------------------


class Gateway(Base):
    """A building gateway running weshd; ``site_id`` is its config's ``[site] id``."""

    __tablename__ = "gateway"
    __table_args__ = (MYSQL_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"), index=True)
    site_id: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(CODE_LEN))
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class Box(Base):
    """A WES server or TIC reader known to a gateway as ``box_ref`` (its weshd box id)."""

    __tablename__ = "box"
    __table_args__ = (
        UniqueConstraint("gateway_id", "box_ref"),
        _one_of("driver", BOX_DRIVERS),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateway.id"))
    box_ref: Mapped[str] = mapped_column(String(CODE_LEN))
    dwelling_id: Mapped[int | None] = mapped_column(ForeignKey("dwelling.id"), index=True)
    driver: Mapped[str] = mapped_column(String(SHORT_LEN), default="wes")
    host: Mapped[str | None] = mapped_column(String(255))
    mac: Mapped[str | None] = mapped_column(String(12))
    serial: Mapped[str | None] = mapped_column(String(CODE_LEN))
    model: Mapped[str | None] = mapped_column(String(CODE_LEN))
    firmware: Mapped[str | None] = mapped_column(String(CODE_LEN))
    installed_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class Meter(Base):
    """A meter or sensor wired to a box input (``input``: a reading-path prefix).

    ``kind`` is a channel kind (``electricity`` ... ``humidity``). A meter in service has
    ``removed_at`` NULL; a replacement closes the old row and opens a new one.
    """

    __tablename__ = "meter"
    __table_args__ = (
        _one_of("kind", CHANNEL_KINDS),
        Index("ix_meter_box_id_input", "box_id", "input"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("box.id"))
    serial: Mapped[str] = mapped_column(String(CODE_LEN), index=True)
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    input: Mapped[str | None] = mapped_column(String(PATH_LEN))
    model: Mapped[str | None] = mapped_column(String(CODE_LEN))
    installed_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    removed_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class Channel(Base):
    """One reading path of a box: what it measures, its unit, index or gauge."""

    __tablename__ = "channel"
    __table_args__ = (
        UniqueConstraint("box_id", "path"),
        _one_of("kind", CHANNEL_KINDS),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("box.id"))
    path: Mapped[str] = mapped_column(String(PATH_LEN))
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    unit: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    is_index: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution: Mapped[float | None] = mapped_column(Double)
    label: Mapped[str | None] = mapped_column(String(NAME_LEN))


class MeterEvent(Base):
    """An explicit event in a meter's life; a change keeps the old and new indexes.

    ``replaced`` belongs to the NEW meter: ``old_index`` is the last index of the meter it
    replaces, ``new_index`` the first index of the new one. ``reset``: the register went
    back (``old_index`` before, ``new_index`` after). ``channel_id`` names the index
    channel the indexes belong to (a TIC meter has one event per tariff index).
    """

    __tablename__ = "meter_event"
    __table_args__ = (
        _one_of("kind", METER_EVENT_KINDS),
        Index("ix_meter_event_channel_id_at", "channel_id", "at"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id"), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    at: Mapped[datetime] = mapped_column(UtcTimestamp)
    old_index: Mapped[float | None] = mapped_column(Double)
    new_index: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str | None] = mapped_column(String(400))


# --- readings and rollups --------------------------------------------------------------


class Reading(Base):
    """A raw value of a channel at an instant; ``(channel_id, at)`` is the key.

    Re-sent data is idempotent (insert-or-ignore on the key). For an hourly aggregate
    (``aggregate`` ``hour_mean``/``hour_last``) ``at`` is the hour start.
    """

    __tablename__ = "reading"
    __table_args__ = (
        _one_of("provenance", PROVENANCES),
        _one_of("quality", QUALITIES),
        _one_of("aggregate", AGGREGATES),
        MYSQL_OPTIONS,
    )

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(UtcTimestamp, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    provenance: Mapped[str] = mapped_column(String(SHORT_LEN), default="measured")
    quality: Mapped[str] = mapped_column(String(SHORT_LEN), default="good")
    aggregate: Mapped[str] = mapped_column(String(SHORT_LEN), default="sample")


class RollupHour(Base):
    """Per channel and UTC hour (= one Paris local hour): consumption and statistics.

    ``consumption`` (index channels only) never goes negative: resets and meter changes are
    bridged with :class:`MeterEvent`. ``first_*``/``last_*`` are the bucket's first and last
    readings, so that a neighbour bucket can be re-rolled alone.
    """

    __tablename__ = "rollup_hour"
    __table_args__ = (MYSQL_OPTIONS,)

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), primary_key=True
    )
    hour_start: Mapped[datetime] = mapped_column(UtcTimestamp, primary_key=True)
    consumption: Mapped[float | None] = mapped_column(Double)
    min: Mapped[float | None] = mapped_column(Double)
    max: Mapped[float | None] = mapped_column(Double)
    mean: Mapped[float | None] = mapped_column(Double)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    first_value: Mapped[float | None] = mapped_column(Double)
    last_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    last_value: Mapped[float | None] = mapped_column(Double)


class RollupDay(Base):
    """Per channel and Paris calendar day (23, 24 or 25 hours): consumption and statistics."""

    __tablename__ = "rollup_day"
    __table_args__ = (MYSQL_OPTIONS,)

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    consumption: Mapped[float | None] = mapped_column(Double)
    min: Mapped[float | None] = mapped_column(Double)
    max: Mapped[float | None] = mapped_column(Double)
    mean: Mapped[float | None] = mapped_column(Double)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    first_value: Mapped[float | None] = mapped_column(Double)
    last_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    last_value: Mapped[float | None] = mapped_column(Double)


class RollupDirty(Base):
    """Stale rollups: channels ``first_channel_id..last_channel_id`` in ``[start_at, end_at)``.

    :func:`wesh.hq.ingest.ingest` adds, per batch, one row per run of consecutive channel
    ids that received readings in the same hours (every id of the run did); :func:`wesh.hq.
    rollups.refresh_rollups` re-rolls the spans and deletes their rows. Rows may repeat or
    overlap (re-rolling is idempotent). No foreign key: a row names a range of channels.
    """

    __tablename__ = "rollup_dirty"
    __table_args__ = (MYSQL_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    first_channel_id: Mapped[int] = mapped_column(Integer, index=True)
    last_channel_id: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    end_at: Mapped[datetime] = mapped_column(UtcTimestamp)


# --- synchronisation and alerts --------------------------------------------------------


class SyncLedger(Base):
    """What headquarters received from one site: sequence, gaps, last status."""

    __tablename__ = "sync_ledger"
    __table_args__ = (MYSQL_OPTIONS,)

    site_id: Mapped[str] = mapped_column(String(CODE_LEN), primary_key=True)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    received_count: Mapped[int] = mapped_column(BigInteger, default=0)
    gaps: Mapped[Any] = mapped_column(JsonText, nullable=True)
    last_status_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    status: Mapped[Any] = mapped_column(JsonText, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class SiteEvent(Base):
    """An alarm received from a site (a sync ALARM packet): the alert engine's input.

    ``dedup_key`` (a digest of site, box, channel, at and kind, computed by the writer)
    makes re-sent alarms idempotent. ``box_id``/``channel_id`` are resolved when known.
    """

    __tablename__ = "site_event"
    __table_args__ = (
        Index("ix_site_event_site_id_at", "site_id", "at"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(CODE_LEN), unique=True)
    site_id: Mapped[str] = mapped_column(String(CODE_LEN))
    box_ref: Mapped[str | None] = mapped_column(String(CODE_LEN))
    channel_path: Mapped[str | None] = mapped_column(String(PATH_LEN))
    box_id: Mapped[int | None] = mapped_column(
        ForeignKey("box.id", ondelete="SET NULL"), index=True
    )
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel.id", ondelete="SET NULL"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcTimestamp)
    kind: Mapped[str] = mapped_column(String(CODE_LEN))
    severity: Mapped[str] = mapped_column(String(SHORT_LEN))
    message: Mapped[str] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    handled_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)


class Alert(Base):
    """One episode of one alert rule for one subject (the alert engine's state).

    ``state`` goes ``pending`` → ``firing`` → ``resolved``; a resolved row is history and a
    new episode opens a new row. ``open_key`` (a digest of rule and subject, see
    :func:`wesh.hq.alerts.store.open_key`) is set while the alert is open (pending or
    firing) and NULL once resolved: the UNIQUE constraint allows one open alert per rule
    and subject, whichever worker opens it. Every change bumps ``version`` (optimistic
    locking: ``UPDATE ... WHERE id = :id AND version = :seen``). ``place`` is the
    :class:`~wesh.hq.alerts.model.Place` of the subject as JSON (to write mails even when
    the rule no longer reports the subject). ``grouped_under`` names the open alert of a
    coarser subject that covers this one (no mail of its own meanwhile).
    ``agency_id`` ... ``dwelling_id`` copy the place's ids (no foreign keys: history
    outlives the inventory) so that alerts can be listed per scope.

    ``started_at`` is when the condition began according to the data (shown in mails);
    ``opened_at`` the first evaluation that saw it (``hold_for`` counts from there).
    """

    __tablename__ = "alert"
    __table_args__ = (
        _one_of("state", ALERT_STATES),
        _one_of("severity", SEVERITIES),
        Index("ix_alert_rule_subject_kind_subject_id", "rule", "subject_kind", "subject_id"),
        Index("ix_alert_state", "state"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(CODE_LEN))
    subject_kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    subject_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(SHORT_LEN), default="pending")
    open_key: Mapped[str | None] = mapped_column(String(CODE_LEN), unique=True)
    severity: Mapped[str] = mapped_column(String(SHORT_LEN), default="warning")
    version: Mapped[int] = mapped_column(Integer, default=0)
    place: Mapped[Any] = mapped_column(JsonText, nullable=True)
    agency_id: Mapped[int | None] = mapped_column(Integer)
    residence_id: Mapped[int | None] = mapped_column(Integer)
    building_id: Mapped[int | None] = mapped_column(Integer)
    dwelling_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    opened_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    fired_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    last_value: Mapped[float | None] = mapped_column(Double)
    value_unit: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    threshold: Mapped[float | None] = mapped_column(Double)
    data: Mapped[Any] = mapped_column(JsonText, nullable=True)
    last_seen_on_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    off_since: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    notified_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    grouped_under: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), index=True
    )
    acked_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    acked_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    ack_note: Mapped[str | None] = mapped_column(String(NOTE_LEN))
    muted_until: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    updated_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    updated_by: Mapped[str | None] = mapped_column(String(CODE_LEN))


class AlertEvent(Base):
    """The history of an alert: transitions, notices, acks, mutes (for the CLI and web app).

    ``kind`` is one of :data:`ALERT_EVENT_KINDS`; ``actor`` the worker or the user;
    ``data`` extra values as JSON (the notice's recipients, the suppressed notice...).
    """

    __tablename__ = "alert_event"
    __table_args__ = (
        _one_of("kind", ALERT_EVENT_KINDS),
        Index("ix_alert_event_alert_id_at", "alert_id", "at"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcTimestamp)
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    actor: Mapped[str | None] = mapped_column(String(NAME_LEN))
    note: Mapped[str | None] = mapped_column(String(NOTE_LEN))
    data: Mapped[Any] = mapped_column(JsonText, nullable=True)


class AlertMute(Base):
    """A mute: no mail for alerts of ``rule`` (NULL: every rule) within a scope.

    ``scope_kind``/``scope_id`` name a row (an agency, residence, building, dwelling,
    box, channel, gateway, or one ``alert``). The mute applies until ``until_at`` (NULL:
    until lifted) and stops at ``lifted_at``. Muted alerts still change state; their
    notices are recorded as ``suppressed`` events instead of being mailed.
    """

    __tablename__ = "alert_mute"
    __table_args__ = (
        _one_of("scope_kind", MUTE_SCOPES),
        Index("ix_alert_mute_scope_kind_scope_id", "scope_kind", "scope_id"),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str | None] = mapped_column(String(CODE_LEN))
    scope_kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    scope_id: Mapped[int] = mapped_column(Integer)
    until_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    reason: Mapped[str | None] = mapped_column(String(NOTE_LEN))
    lifted_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    lifted_by: Mapped[str | None] = mapped_column(String(NAME_LEN))


class MailOutbox(Base):
    """A mail to send, recorded before sending (durable outbox, ``wesh.hq.alerts.outbox``).

    ``dedup_key`` makes enqueuing idempotent (one row per alert, notice, language and
    recipient set, whichever worker enqueues it). A worker claims due rows
    (``claimed_by``/``claimed_until``: a lease), sends them, then sets ``sent_at`` or
    ``attempts``/``next_attempt_at``/``last_error`` (backoff). ``failed_at`` marks a mail
    given up on (permanent error); such rows are kept for inspection.
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (
        _one_of("notice_kind", NOTICE_KINDS),
        Index(
            "ix_mail_outbox_sent_at_failed_at_next_attempt_at",
            "sent_at",
            "failed_at",
            "next_attempt_at",
        ),
        MYSQL_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(DEDUP_LEN), unique=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), index=True
    )
    notice_kind: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    lang: Mapped[str] = mapped_column(String(2))
    recipients: Mapped[Any] = mapped_column(JsonText)
    subject: Mapped[str] = mapped_column(String(400))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcTimestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(NOTE_LEN))
    claimed_by: Mapped[str | None] = mapped_column(String(CODE_LEN))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    sent_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
    failed_at: Mapped[datetime | None] = mapped_column(UtcTimestamp)
