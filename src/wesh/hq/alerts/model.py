"""The alert engine's shared vocabulary: subjects, places, conditions, notices.

Pure data, no I/O. The pieces of :mod:`wesh.hq.alerts` talk in these types::

    SQL ──data.py──▶ rules (pure) ──▶ Condition ──state.py──▶ AlertRecord + Notice
                                                                 │  (store.py, one transaction)
                                                                 ▼
                                   compose.py ──▶ Mail ──▶ outbox.py ──SMTP──▶ managers

A rule looks at data and says, for one :class:`Subject`, whether its condition holds
(:class:`Level`): ``ON`` (beyond the trigger threshold), ``OFF`` (back past the clear
threshold) or ``HOLD`` (between the two: hysteresis, keep the current state). The state
machine, not the rule, decides when an alert fires, reminds, escalates and resolves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal, get_args

__all__ = [
    "ALERT_STATES",
    "EVENT_KINDS",
    "NOTICE_KINDS",
    "RULES",
    "SEVERITIES",
    "SUBJECT_KINDS",
    "AlertState",
    "Condition",
    "EventKind",
    "JsonScalar",
    "Level",
    "Notice",
    "NoticeKind",
    "Place",
    "Severity",
    "Subject",
    "SubjectKind",
    "json_ready",
]

# The vocabulary, once: each Literal is the type, its tuple the values (the HQ schema's
# CHECK constraints hold the same words; tests/hq/alerts/test_state.py compares them).
SubjectKind = Literal["channel", "box", "gateway", "site", "dwelling", "building"]
SUBJECT_KINDS: Final[tuple[SubjectKind, ...]] = get_args(SubjectKind)
Severity = Literal["info", "warning", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
NoticeKind = Literal["fired", "reminder", "escalated", "resolved"]
NOTICE_KINDS: Final[tuple[NoticeKind, ...]] = get_args(NoticeKind)
AlertState = Literal["pending", "firing", "resolved"]
ALERT_STATES: Final[tuple[AlertState, ...]] = get_args(AlertState)
#: What happens to an alert (``alert_event.kind``).
EventKind = Literal[
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
]
EVENT_KINDS: Final[tuple[EventKind, ...]] = get_args(EventKind)
JsonScalar = str | int | float | bool | None

#: Every rule the engine knows, by family (names are stable: they are stored in SQL,
#: used in the configuration and in the mails' templates).
RULES: Final[Mapping[str, tuple[str, ...]]] = {
    "no_data": ("channel_silent", "box_silent", "gateway_silent", "link_silent"),
    "leak": ("leak_continuous_flow", "leak_night_flow", "leak_burst"),
    "comfort": ("frost", "overheating", "humidity_high", "hot_water_cold"),
    "consumption": ("consumption_high", "consumption_above_average", "vacant_consumption"),
    "meter": ("index_backwards", "index_jump", "tic_overload", "tic_status_alarm"),
    "gateway_health": ("queue_backlog", "sms_budget_exhausted", "boxes_down"),
}


class Level(StrEnum):
    """What a rule says about its condition now."""

    ON = "on"  # the condition holds (beyond the trigger threshold)
    OFF = "off"  # it does not (back past the clear threshold, or no longer observed)
    HOLD = "hold"  # between the thresholds: keep the current state (hysteresis)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about: a row of the HQ schema (``kind`` names the table).

    ``site`` is the sync link of a gateway: its ``id`` is the gateway's id.
    """

    kind: SubjectKind
    id: int

    def __str__(self) -> str:
        """``"box:12"``."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a subject is, for the mails and for choosing recipients.

    Codes and names are copied from the inventory; the finer fields are ``None`` when
    the subject is coarser (a gateway has no dwelling, a building alert no channel).
    """

    agency_id: int
    agency_code: str
    agency_name: str
    residence_id: int
    residence_code: str
    residence_name: str
    building_id: int
    building_code: str
    building_name: str
    dwelling_id: int | None = None
    dwelling_code: str | None = None
    dwelling_label: str | None = None
    site_id: str | None = None
    box_ref: str | None = None
    channel_path: str | None = None
    channel_kind: str | None = None
    channel_label: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule's verdict on one subject at one evaluation.

    Attributes:
        rule: a name of :data:`RULES`.
        subject: what it is about.
        level: on / off / hold (see :class:`Level`).
        observed_at: the time of the newest data the verdict is based on (evaluation
            time for "no data" rules).
        since: when the condition started to hold according to the data (the first
            silent hour, the first night of flow...), ``None`` if unknown or OFF.
        value: the number that triggered it (flow in L/h, °C, hours silent...).
        unit: its unit (``"L/h"``, ``"°C"``, ``"h"``, ``"%"``, ``"kWh"``...).
        threshold: the threshold it was compared with.
        severity: how bad it is when it fires.
        place: where the subject is.
        parent: a coarser subject whose alert of ``parent_rule`` covers this one: while
            that alert fires, this one is grouped under it and sends no mail of its own
            (a dead gateway does not also send 40 "box silent" mails).
        parent_rule: the rule of that parent alert.
        details: further values for the mail (JSON scalars only, keys in English).
    """

    rule: str
    subject: Subject
    level: Level
    observed_at: datetime
    place: Place
    since: datetime | None = None
    value: float | None = None
    unit: str | None = None
    threshold: float | None = None
    severity: Severity = "warning"
    parent: Subject | None = None
    parent_rule: str | None = None
    details: Mapping[str, JsonScalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell people about an alert (one mail per language and recipient set).

    Made by the state machine on an edge (``fired``, ``resolved``) or a timer
    (``reminder``, ``escalated``); never one per evaluation.

    Attributes:
        kind: which edge or timer.
        alert_id: the ``alert`` row (stable across workers: the mail's identity).
        sequence: 0 for ``fired``/``resolved``/``escalated``; the reminder's number (1, 2...).
        started_at: when the condition began (``Condition.since``, else first seen ON).
        fired_at: when it fired; ``resolved_at``: when it resolved (``resolved`` only).
        value, unit, threshold, details: the values that triggered it (for
            ``resolved``: the last values seen).
        grouped: places of the subjects grouped under this alert (children it covers).
        acked_by, acked_at: who acknowledged it, if anyone (reminders stop once acked).
    """

    kind: NoticeKind
    alert_id: int
    rule: str
    subject: Subject
    place: Place
    severity: Severity
    started_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    sequence: int = 0
    value: float | None = None
    unit: str | None = None
    threshold: float | None = None
    details: Mapping[str, JsonScalar] = field(default_factory=dict)
    grouped: tuple[Place, ...] = ()
    acked_by: str | None = None
    acked_at: datetime | None = None


def json_ready(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``values`` (``asdict`` of a view) with datetimes in ISO 8601, nested too."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, Mapping):
            out[key] = json_ready(value)
        else:
            out[key] = value
    return out
