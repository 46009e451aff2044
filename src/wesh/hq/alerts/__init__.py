"""Alerts at headquarters: rules over the HQ store, an edge-triggered engine, mails.

The flow (``docs/alerts.md``)::

    SQL ──evaluate (rules)──▶ Condition ──state.step──▶ AlertRecord + Notice
                                                         │ one transaction per alert
                                                         ▼
                              compose_notice ──▶ Mail ──▶ mail_outbox ──OutboxWorker──▶ SMTP

Run it::

    from wesh.hq.alerts import AlertEngine, load_config

    engine = AlertEngine(sql_engine, load_config(path), worker_id="hq-1")
    report = engine.evaluate()                 # on a schedule: every rule, every subject
    report = engine.on_ingest([12, 13])        # after readings of channels 12 and 13 arrived

Several workers may run the engine on one database at once: an alert opens once
(``alert.open_key`` is unique), every change is an optimistic update (``alert.version``)
and every mail is enqueued once (``mail_outbox.dedup_key``), in the transaction of the
change that caused it. Names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wesh.hq.alerts.compose import Mail, compose_notice, compose_test_mail
    from wesh.hq.alerts.config import AlertsConfig, RulePolicy, default_config, load_config
    from wesh.hq.alerts.engine import AlertEngine, EngineReport
    from wesh.hq.alerts.evaluate import Evaluation, evaluate
    from wesh.hq.alerts.model import (
        NOTICE_KINDS,
        RULES,
        SUBJECT_KINDS,
        Condition,
        Level,
        Notice,
        NoticeKind,
        Place,
        Severity,
        Subject,
        SubjectKind,
    )
    from wesh.hq.alerts.outbox import OutboxWorker, enqueue, outbox_status
    from wesh.hq.alerts.recipients import Recipient, recipients_for
    from wesh.hq.alerts.smtp import SmtpSettings, send_mail
    from wesh.hq.alerts.state import AlertRecord, Step, Timing, acknowledge, step
    from wesh.hq.alerts.store import AlertEventView, AlertView, alert_history, list_alerts

__all__ = [
    "NOTICE_KINDS",
    "RULES",
    "SUBJECT_KINDS",
    "AlertEngine",
    "AlertEventView",
    "AlertRecord",
    "AlertView",
    "AlertsConfig",
    "Condition",
    "EngineReport",
    "Evaluation",
    "Level",
    "Mail",
    "Notice",
    "NoticeKind",
    "OutboxWorker",
    "Place",
    "Recipient",
    "RulePolicy",
    "Severity",
    "SmtpSettings",
    "Step",
    "Subject",
    "SubjectKind",
    "Timing",
    "acknowledge",
    "alert_history",
    "compose_notice",
    "compose_test_mail",
    "default_config",
    "enqueue",
    "evaluate",
    "list_alerts",
    "load_config",
    "outbox_status",
    "recipients_for",
    "send_mail",
    "step",
]

_HOME = {
    **dict.fromkeys(
        (
            "NOTICE_KINDS",
            "RULES",
            "SUBJECT_KINDS",
            "Condition",
            "Level",
            "Notice",
            "NoticeKind",
            "Place",
            "Severity",
            "Subject",
            "SubjectKind",
        ),
        "model",
    ),
    **dict.fromkeys(("Mail", "compose_notice", "compose_test_mail"), "compose"),
    **dict.fromkeys(("AlertsConfig", "RulePolicy", "default_config", "load_config"), "config"),
    **dict.fromkeys(("AlertEngine", "EngineReport"), "engine"),
    **dict.fromkeys(("Evaluation", "evaluate"), "evaluate"),
    **dict.fromkeys(("OutboxWorker", "enqueue", "outbox_status"), "outbox"),
    **dict.fromkeys(("Recipient", "recipients_for"), "recipients"),
    **dict.fromkeys(("SmtpSettings", "send_mail"), "smtp"),
    **dict.fromkeys(("AlertRecord", "Step", "Timing", "acknowledge", "step"), "state"),
    **dict.fromkeys(("AlertEventView", "AlertView", "alert_history", "list_alerts"), "store"),
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'wesh.hq.alerts' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wesh.hq.alerts.{module}"), name)
