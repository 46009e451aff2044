"""``wesh hq alerts``: the alert engine from the command line.

Commands::

    wesh hq alerts list [--state S] [--rule R] [--residence C | --building C] [--since W]
    wesh hq alerts show ID                      one alert and its history
    wesh hq alerts history [ID] [--since W]     what happened (fired, resolved, acked...)
    wesh hq alerts ack ID --by NAME [--note TEXT]
    wesh hq alerts mute (--alert ID | --residence C | --building C | --dwelling C) [--rule R]
                        (--until WHEN | --for DURATION) --by NAME [--reason TEXT]
    wesh hq alerts unmute MUTE_ID --by NAME
    wesh hq alerts test-mail --to ADDR           one mail through the configured SMTP server
    wesh hq alerts evaluate                      one evaluation now; prints the transitions
    wesh hq alerts run                           the worker: evaluations + outbox, until SIGTERM
    wesh hq alerts outbox                        the mails waiting to be sent

Common options: ``--db`` (URL or SQLite path; ``WESH_HQ_DB``; default
``./wesh-hq.sqlite3``), ``--config`` (alerts TOML; ``WESH_ALERTS_CONFIG``; default: the
embedded defaults), ``--lang fr|en`` (default from ``LANG``, else French). ``--json``
prints what the web app will show. Times given (``--since``, ``--until``) are ISO dates
or date-times in Paris local time unless they carry an offset; ``--since 2d`` and
``--for 2h`` are durations. See ``docs/alerts-cli.md``.

The environment is read here only; every user-facing string is in :data:`MESSAGES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import click

from wesh.errors import UsageError, WeshError
from wesh.hq.alerts.model import ALERT_STATES
from wesh.hq.alerts.state import OPEN_STATES
from wesh.hq.cli_common import Failure, Lang, common_options, dump_json, new_console, open_engine

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Connection, Engine

    from wesh.hq.alerts.config import AlertsConfig
    from wesh.hq.alerts.engine import AlertEngine
    from wesh.hq.alerts.outbox import OutboxWorker

__all__ = ["MESSAGES", "alerts", "message", "parse_duration", "parse_when"]

_LOG = logging.getLogger(__name__)

MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "error": {"fr": "wesh hq alerts : erreur : {error}", "en": "wesh hq alerts: error: {error}"},
    "bad_when": {
        "fr": "date invalide {text!r} : AAAA-MM-JJ, AAAA-MM-JJTHH:MM ou une durée (2h, 3d)",
        "en": "bad time {text!r}: YYYY-MM-DD, YYYY-MM-DDTHH:MM or a duration (2h, 3d)",
    },
    "bad_duration": {
        "fr": "durée invalide {text!r} : un nombre suivi de s, m, h, d ou w (30m, 2h, 3d)",
        "en": "bad duration {text!r}: a number followed by s, m, h, d or w (30m, 2h, 3d)",
    },
    "one_scope": {
        "fr": "donnez exactement un de --alert, --residence, --building, --dwelling",
        "en": "give exactly one of --alert, --residence, --building, --dwelling",
    },
    "one_place": {
        "fr": "--residence et --building s'excluent",
        "en": "--residence and --building exclude each other",
    },
    "until_or_for": {
        "fr": "donnez exactement un de --until et --for",
        "en": "give exactly one of --until and --for",
    },
    "unknown_code": {
        "fr": "{scope} {code!r} inconnu(e)",
        "en": "unknown {scope} {code!r}",
    },
    "scope.residence": {"fr": "résidence", "en": "residence"},
    "scope.building": {"fr": "bâtiment", "en": "building"},
    "scope.dwelling": {"fr": "logement", "en": "dwelling"},
    "unknown_rule": {
        "fr": "règle inconnue {rule!r} (connues : {known})",
        "en": "unknown rule {rule!r} (known: {known})",
    },
    "no_alert": {"fr": "alerte {id} introuvable", "en": "no alert {id}"},
    "none": {"fr": "Aucune alerte.", "en": "No alert."},
    "none.history": {"fr": "Aucun événement.", "en": "No event."},
    "title.list": {"fr": "Alertes ({count})", "en": "Alerts ({count})"},
    "title.history": {"fr": "Historique ({count} événements)", "en": "History ({count} events)"},
    "col.id": {"fr": "n°", "en": "id"},
    "col.state": {"fr": "état", "en": "state"},
    "col.severity": {"fr": "gravité", "en": "severity"},
    "col.rule": {"fr": "règle", "en": "rule"},
    "col.where": {"fr": "où", "en": "where"},
    "col.value": {"fr": "valeur", "en": "value"},
    "col.since": {"fr": "depuis", "en": "since"},
    "col.ack": {"fr": "acquittée", "en": "acked"},
    "col.at": {"fr": "quand", "en": "when"},
    "col.event": {"fr": "événement", "en": "event"},
    "col.actor": {"fr": "par", "en": "by"},
    "col.note": {"fr": "note", "en": "note"},
    "col.alert": {"fr": "alerte", "en": "alert"},
    "state.pending": {"fr": "en attente", "en": "pending"},
    "state.firing": {"fr": "active", "en": "firing"},
    "state.resolved": {"fr": "résolue", "en": "resolved"},
    "severity.info": {"fr": "info", "en": "info"},
    "severity.warning": {"fr": "avertissement", "en": "warning"},
    "severity.critical": {"fr": "critique", "en": "critical"},
    "acked": {
        "fr": "Alerte {id} acquittée par {by}.",
        "en": "Alert {id} acknowledged by {by}.",
    },
    "muted": {
        "fr": "Sourdine n° {id} posée ({scope}{rule}) jusqu'au {until}, par {by}.",
        "en": "Mute #{id} set ({scope}{rule}) until {until}, by {by}.",
    },
    "muted.forever": {
        "fr": "Sourdine n° {id} posée ({scope}{rule}) jusqu'à levée, par {by}.",
        "en": "Mute #{id} set ({scope}{rule}) until lifted, by {by}.",
    },
    "all_rules": {"fr": "toutes les règles", "en": "every rule"},
    "unmuted": {"fr": "Sourdine n° {id} levée par {by}.", "en": "Mute #{id} lifted by {by}."},
    "test_mail.sent": {
        "fr": "Courriel de test envoyé à {to} par {server} (sujet : {subject}).",
        "en": "Test mail sent to {to} through {server} (subject: {subject}).",
    },
    "test_mail.refused": {
        "fr": "Refusé pour {address} : {reply}",
        "en": "Refused for {address}: {reply}",
    },
    "test_mail.failed": {
        "fr": "Échec de l'envoi par {server} : {error}",
        "en": "Sending through {server} failed: {error}",
    },
    "evaluate.done": {
        "fr": "Évaluation à {at} : {transitions}, {mails} courriel(s) mis en file.",
        "en": "Evaluation at {at}: {transitions}, {mails} mail(s) queued.",
    },
    "evaluate.nothing": {"fr": "aucun changement", "en": "no change"},
    "transition.opened": {"fr": "ouvertes", "en": "opened"},
    "transition.fired": {"fr": "déclenchées", "en": "fired"},
    "transition.resolved": {"fr": "résolues", "en": "resolved"},
    "transition.cancelled": {"fr": "annulées", "en": "cancelled"},
    "transition.reminders": {"fr": "rappels", "en": "reminders"},
    "transition.escalated": {"fr": "escaladées", "en": "escalated"},
    "transition.suppressed": {"fr": "courriels retenus (sourdine)", "en": "mails withheld (muted)"},
    "evaluate.errors": {
        "fr": "Règles en échec (les autres ont tourné) :",
        "en": "Rules that failed (the others ran):",
    },
    "run.start": {
        "fr": "Veilleur {worker} : évaluation toutes les {every}, envoi des courriels par "
        "{server}. Ctrl-C ou SIGTERM pour arrêter.",
        "en": "Worker {worker}: evaluation every {every}, mails through {server}. "
        "Ctrl-C or SIGTERM stops it.",
    },
    "run.status": {
        "fr": "dernière évaluation {at} · {open} alerte(s) ouverte(s) · {queued} courriel(s) "
        "en attente · {sent} envoyé(s)",
        "en": "last evaluation {at} · {open} open alert(s) · {queued} mail(s) waiting · "
        "{sent} sent",
    },
    "run.stopped": {
        "fr": "Veilleur arrêté : {evaluations} évaluation(s), {sent} courriel(s) envoyé(s).",
        "en": "Worker stopped: {evaluations} evaluation(s), {sent} mail(s) sent.",
    },
    "outbox.status": {
        "fr": "File d'envoi : {queued} courriel(s) en attente dont {due} à envoyer maintenant "
        "et {failing} déjà en échec ; {failed} abandonné(s), {sent} envoyé(s) ; "
        "plus ancien en attente : {oldest}.",
        "en": "Outbox: {queued} mail(s) waiting, {due} due now, {failing} failed before; "
        "{failed} given up, {sent} sent; oldest waiting: {oldest}.",
    },
    "outbox.title": {"fr": "Courriels ({count})", "en": "Mails ({count})"},
    "col.mail_state": {"fr": "état", "en": "state"},
    "col.to": {"fr": "destinataires", "en": "recipients"},
    "col.subject": {"fr": "sujet", "en": "subject"},
    "col.attempts": {"fr": "essais", "en": "attempts"},
    "col.created": {"fr": "créé", "en": "created"},
    "col.error": {"fr": "dernière erreur", "en": "last error"},
    "mail.queued": {"fr": "en attente", "en": "queued"},
    "mail.sent": {"fr": "envoyé", "en": "sent"},
    "mail.failed": {"fr": "abandonné", "en": "given up"},
    "outbox.last_error": {"fr": "Dernière erreur : {error}", "en": "Last error: {error}"},
    "show.title": {
        "fr": "Alerte {id} — {rule} ({state}, {severity})",
        "en": "Alert {id} — {rule} ({state}, {severity})",
    },
    "show.where": {"fr": "où", "en": "where"},
    "show.subject": {"fr": "sujet", "en": "subject"},
    "show.value": {"fr": "valeur", "en": "value"},
    "show.threshold": {"fr": "(seuil {threshold})", "en": "(threshold {threshold})"},
    "show.since": {"fr": "depuis", "en": "since"},
    "show.fired": {"fr": "déclenchée", "en": "fired"},
    "show.resolved": {"fr": "résolue", "en": "resolved"},
    "show.acked": {"fr": "acquittée", "en": "acknowledged"},
    "show.reminders": {"fr": "rappels", "en": "reminders"},
    "show.escalated": {"fr": "escaladée", "en": "escalated"},
    "show.grouped": {"fr": "regroupée sous", "en": "grouped under"},
    "show.details": {"fr": "détails", "en": "details"},
}


def message(lang: Lang, key: str, **values: object) -> str:
    """Return the catalogue string ``key`` in ``lang``, formatted with ``values``."""
    return MESSAGES[key][lang].format(**values)


# ----------------------------------------------------------------------------- pure parsing


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"2h"``, ``"3d"`` (``j`` too), ``"1w"``, ``"1h30m"`` → a positive timedelta.

    The configuration's grammar (:func:`wesh.hq.alerts.config.parse_duration`), positive.

    Raises:
        ValueError: not a positive duration.
    """
    from wesh.hq.alerts.config import parse_duration as parse_any  # noqa: PLC0415

    found = parse_any(text)
    if found is None or found <= timedelta(0):
        raise ValueError(f"not a positive duration: {text!r}")
    return found


def parse_when(text: str, *, now: datetime, past: bool) -> datetime:
    """Return the instant ``text`` names, aware UTC.

    ISO ``2025-01-15`` (Paris midnight), ``2025-01-15T08:30`` (Paris local time unless an
    offset is given); or a duration counted back from ``now`` (``past``: ``--since 2d``)
    or forward (``--until 3h``).

    Raises:
        ValueError: none of those.
    """
    from wesh.hq.timeutil import PARIS  # noqa: PLC0415

    with contextlib.suppress(ValueError):
        delta = parse_duration(text)
        return (now - delta) if past else (now + delta)
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=PARIS)
    return at.astimezone(UTC)


def _as_json(value: object) -> Any:  # noqa: ANN401 - views of the store, or dataclasses
    as_json = getattr(value, "as_json", None)
    if callable(as_json):
        return as_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(dump_json(value))
    return value


def _local(at: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a datetime (or its ISO text) in Paris local time; ``—`` for none."""
    from wesh.hq.timeutil import PARIS  # noqa: PLC0415

    if at is None or at == "":
        return "—"
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if not isinstance(when, datetime):
        return str(at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(PARIS).strftime(fmt)


def _number(value: object, lang: Lang) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—" if value is None else str(value)
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


def _where(place: Mapping[str, Any] | None) -> str:
    """Say where: ``R01 / B001 / B001-L02 / impulsion.1.index`` from a place's JSON."""
    if not place:
        return "—"
    finer = place.get("dwelling_code") or place.get("box_ref") or place.get("site_id")
    parts = [
        place.get("residence_code"),
        place.get("building_code"),
        finer,
        place.get("channel_path"),
    ]
    return " / ".join(str(p) for p in parts if p)


# ----------------------------------------------------------------------------- plumbing


def _error_line(lang: Lang, error: WeshError) -> str:
    return message(lang, "error", error=error)


#: ``--db``, ``--config`` and ``--lang``; WeshError → a one-line message, exit 1.
_common = common_options(
    _error_line,
    extra=(
        click.option(
            "--config",
            "config_path",
            envvar="WESH_ALERTS_CONFIG",
            show_envvar=True,
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Alerts configuration (TOML; default: the embedded defaults).",
        ),
    ),
)


def _config(path: Path | None) -> AlertsConfig:
    from wesh.hq.alerts.config import load_config  # noqa: PLC0415 - keep start-up light

    return load_config(path)


@contextlib.contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
    """Open the HQ database, migrated to this version's schema (alerts tables included)."""
    from wesh.hq.migrate import migrate  # noqa: PLC0415

    engine = open_engine(db)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def _when(text: str | None, lang: Lang, *, past: bool, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, now=now, past=past)
    except ValueError:
        raise click.BadParameter(message(lang, "bad_when", text=text)) from None


def _check_rule(rule: str | None, lang: Lang) -> None:
    from wesh.hq.alerts.model import RULES  # noqa: PLC0415

    known = [name for names in RULES.values() for name in names]
    if rule is not None and rule not in known:
        raise click.BadParameter(message(lang, "unknown_rule", rule=rule, known=", ".join(known)))


def _place_id(conn: Connection, kind: str, code: str, lang: Lang) -> int:
    """Return the id of a residence, building or dwelling by code (UsageError if unknown)."""
    from sqlalchemy import select  # noqa: PLC0415

    from wesh.hq.db import translate_errors  # noqa: PLC0415
    from wesh.hq.models import Building, Dwelling, Residence  # noqa: PLC0415

    table = {"residence": Residence, "building": Building, "dwelling": Dwelling}[kind].__table__
    with translate_errors(conn.engine):
        found = conn.scalar(select(table.c.id).where(table.c.code == code))
    if found is None:
        shown = message(lang, f"scope.{kind}")
        raise UsageError(message(lang, "unknown_code", scope=shown, code=code), where=kind)
    return int(found)


def _console() -> Console:
    """Database text is not highlighted: it is shown as it is."""
    return new_console(highlight=False)


# ----------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def alerts() -> None:
    """Alerts: list, acknowledge, mute; test the mail; run the evaluation worker."""


# ----------------------------------------------------------------------------- list


@alerts.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(ALERT_STATES),
    help="Only these states (repeatable; default: pending and firing).",
)
@click.option("--all", "all_states", is_flag=True, help="Every state, resolved included.")
@click.option("--rule", help="Only this rule (e.g. frost, leak_night_flow).")
@click.option("--residence", help="Only this residence (code).")
@click.option("--building", help="Only this building (code).")
@click.option("--since", help="Started since (date, date-time, or a duration: 2d).")
@click.option("--limit", type=int, default=200, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def list_(
    *,
    states: tuple[str, ...],
    all_states: bool,
    rule: str | None,
    residence: str | None,
    building: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """List alerts, newest first (open ones unless --state or --all)."""
    from wesh.hq.alerts.store import list_alerts  # noqa: PLC0415

    if residence and building:
        raise click.UsageError(message(lang, "one_place"))
    _check_rule(rule, lang)
    wanted = ALERT_STATES if all_states else (states or OPEN_STATES)
    since_at = _when(since, lang, past=True, now=_now())
    with _engine(db) as engine, engine.connect() as conn:
        scope: tuple[str, int] | None = None
        if residence:
            scope = ("residence", _place_id(conn, "residence", residence, lang))
        elif building:
            scope = ("building", _place_id(conn, "building", building, lang))
        views = list_alerts(
            conn, states=tuple(wanted), rule=rule, scope=scope, since=since_at, limit=limit
        )
    rows = [_as_json(view) for view in views]
    if as_json:
        click.echo(dump_json(rows))
        return
    if not rows:
        click.echo(message(lang, "none"))
        return
    _console().print(_alerts_table(rows, lang))


def _alerts_table(rows: Sequence[Mapping[str, Any]], lang: Lang) -> Any:  # noqa: ANN401
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=message(lang, "title.list", count=len(rows)), title_justify="left")
    for key, justify in (
        ("col.id", "right"),
        ("col.state", "left"),
        ("col.severity", "left"),
        ("col.rule", "left"),
        ("col.where", "left"),
        ("col.value", "right"),
        ("col.since", "left"),
        ("col.ack", "left"),
    ):
        table.add_column(message(lang, key), justify=cast("Any", justify))
    styles = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
    for row in rows:
        state = str(row.get("state", ""))
        value = row.get("value")
        unit = row.get("unit") or ""
        shown = f"{_number(value, lang)} {unit}".strip() if value is not None else "—"
        acked = row.get("acked_by")
        table.add_row(
            str(row.get("id", "")),
            f"[{styles.get(state, '')}]{_state_name(state, lang)}[/]",
            _severity_name(str(row.get("severity", "")), lang),
            _plain(row.get("rule", "")),
            _plain(_where(row.get("place"))),
            _plain(shown),
            _local(row.get("fired_at") or row.get("started_at")),
            _plain(f"{acked} ({_local(row.get('acked_at'))})" if acked else "—"),
        )
    return table


def _plain(value: object) -> str:
    """Text from the database, shown as is (``[wesh]`` is not Rich markup)."""
    from rich.markup import escape  # noqa: PLC0415

    return escape(str(value))


def _state_name(state: str, lang: Lang) -> str:
    key = f"state.{state}"
    return message(lang, key) if key in MESSAGES else state


def _severity_name(severity: str, lang: Lang) -> str:
    key = f"severity.{severity}"
    return message(lang, key) if key in MESSAGES else severity


# ----------------------------------------------------------------------------- show, history


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the alert and its history).")
@_common
def show(
    *, alert_id: int, as_json: bool, db: str | None, config_path: Path | None, lang: Lang
) -> None:
    """Show one alert: what, where, values, state, and its history."""
    from wesh.hq.alerts.store import alert_history, get_alert  # noqa: PLC0415

    with _engine(db) as engine, engine.connect() as conn:
        view = get_alert(conn, alert_id)
        if view is None:
            raise UsageError(message(lang, "no_alert", id=alert_id))
        events = [_as_json(event) for event in alert_history(conn, alert_id)]
    data = _as_json(view)
    if as_json:
        click.echo(dump_json({**data, "history": events}))
        return
    console = _console()
    for line in _describe(data, lang):
        console.print(line, markup=False)
    console.print()
    console.print(_history_table(events, lang, with_alert=False))


def _describe(data: Mapping[str, Any], lang: Lang) -> list[str]:
    """Return one alert as labelled lines (``show``)."""
    place = data.get("place") or {}
    names = [
        place.get(key)
        for key in ("residence_name", "building_name", "dwelling_label", "channel_label")
    ]
    value, unit = data.get("value"), data.get("unit") or ""
    shown = f"{_number(value, lang)} {unit}".strip() if value is not None else "—"
    if data.get("threshold") is not None:
        threshold = f"{_number(data['threshold'], lang)} {unit}".strip()
        shown += " " + message(lang, "show.threshold", threshold=threshold)
    acked = "—"
    if data.get("acked_by"):
        acked = f"{data['acked_by']} ({_local(data.get('acked_at'))})"
        if data.get("ack_note"):
            acked += f" : {data['ack_note']}" if lang == "fr" else f": {data['ack_note']}"
    details = data.get("details") or {}
    rows = [
        ("show.where", f"{_where(place)} ({', '.join(str(n) for n in names if n)})"),
        ("show.subject", f"{data.get('subject_kind')} {data.get('subject_id')}"),
        ("show.value", shown),
        ("show.since", _local(data.get("started_at"))),
        ("show.fired", _local(data.get("fired_at"))),
        ("show.resolved", _local(data.get("resolved_at"))),
        ("show.acked", acked),
        ("show.reminders", str(data.get("reminders_sent", 0))),
        ("show.escalated", _local(data.get("escalated_at"))),
        ("show.grouped", str(data.get("grouped_under") or "—")),
        ("show.details", ", ".join(f"{k}={v}" for k, v in details.items()) or "—"),
    ]
    width = max(len(message(lang, key)) for key, _ in rows)
    title = message(
        lang,
        "show.title",
        id=data.get("id"),
        rule=data.get("rule"),
        state=_state_name(str(data.get("state")), lang),
        severity=_severity_name(str(data.get("severity")), lang),
    )
    return [title, *(f"  {message(lang, key):<{width}}  {text}" for key, text in rows)]


@alerts.command()
@click.argument("alert_id", type=int, required=False)
@click.option("--since", help="Events since (date, date-time, or a duration: 2d).")
@click.option("--limit", type=int, default=500, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def history(
    *,
    alert_id: int | None,
    since: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """Show what happened to one alert, or to all (oldest first): fired, resolved, acked..."""
    from wesh.hq.alerts.store import alert_history, recent_events  # noqa: PLC0415
    from wesh.hq.db import translate_errors  # noqa: PLC0415

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    since_at = _when(since, lang, past=True, now=_now())
    with _engine(db) as engine, engine.connect() as conn:
        if alert_id is not None:
            found = alert_history(conn, alert_id)
            events = [
                e
                for e in (_as_json(event) for event in found)
                if since_at is None or _after(e.get("at"), since_at)
            ][-limit:]
        else:
            with translate_errors(conn.engine):
                found = recent_events(conn, since=since_at, limit=limit)
            events = [_as_json(event) for event in found]
    if as_json:
        click.echo(dump_json(events))
        return
    if not events:
        click.echo(message(lang, "none.history"))
        return
    _console().print(_history_table(events, lang, with_alert=alert_id is None))


def _after(at: object, since: datetime) -> bool:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return isinstance(at, datetime) and at >= since


def _history_table(events: Sequence[Mapping[str, Any]], lang: Lang, *, with_alert: bool) -> Any:  # noqa: ANN401
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=message(lang, "title.history", count=len(events)), title_justify="left")
    table.add_column(message(lang, "col.at"))
    if with_alert:
        table.add_column(message(lang, "col.alert"), justify="right")
    table.add_column(message(lang, "col.event"))
    table.add_column(message(lang, "col.actor"))
    table.add_column(message(lang, "col.note"))
    for event in events:
        cells = [_local(event.get("at"), "%Y-%m-%d %H:%M:%S")]
        if with_alert:
            cells.append(str(event.get("alert_id", "")))
        cells += [
            _plain(event.get("kind", "")),
            _plain(event.get("actor") or "—"),
            _plain(event.get("note") or ""),
        ]
        table.add_row(*cells)
    return table


# ----------------------------------------------------------------------------- ack, mute


def _alert_engine(engine: Engine, config: AlertsConfig) -> AlertEngine:
    from wesh.hq.alerts.engine import AlertEngine, default_worker_id  # noqa: PLC0415

    return AlertEngine(engine, config, worker_id=default_worker_id())


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--by", "by", required=True, help="Who acknowledges (name or e-mail).")
@click.option("--note", help="Why, what is being done.")
@_common
def ack(
    *,
    alert_id: int,
    by: str,
    note: str | None,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """Acknowledge an alert: no more reminders nor escalation (the resolved mail still goes)."""
    config = _config(config_path)
    with _engine(db) as engine:
        _alert_engine(engine, config).ack(alert_id, by=by, note=note)
    click.echo(message(lang, "acked", id=alert_id, by=by))


@alerts.command()
@click.option("--alert", "alert_id", type=int, help="One alert (its id).")
@click.option("--residence", help="Every alert of a residence (code).")
@click.option("--building", help="Every alert of a building (code).")
@click.option("--dwelling", help="Every alert of a dwelling (code).")
@click.option("--rule", help="Only this rule (default: every rule).")
@click.option("--until", "until_text", help="Until then (date, date-time; 'never': until lifted).")
@click.option("--for", "for_text", help="For this long (30m, 2h, 3d, 1w).")
@click.option("--by", "by", required=True, help="Who mutes (name or e-mail).")
@click.option("--reason", help="Why.")
@_common
def mute(
    *,
    alert_id: int | None,
    residence: str | None,
    building: str | None,
    dwelling: str | None,
    rule: str | None,
    until_text: str | None,
    for_text: str | None,
    by: str,
    reason: str | None,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """Mute alerts: no mail for them (the engine still tracks them); prints the mute's id."""
    scopes = {
        "alert": alert_id,
        "residence": residence,
        "building": building,
        "dwelling": dwelling,
    }
    given = [(kind, value) for kind, value in scopes.items() if value is not None]
    if len(given) != 1:
        raise click.UsageError(message(lang, "one_scope"))
    if (until_text is None) == (for_text is None):
        raise click.UsageError(message(lang, "until_or_for"))
    _check_rule(rule, lang)
    now = _now()
    until: datetime | None
    if for_text is not None:
        try:
            until = now + parse_duration(for_text)
        except ValueError:
            raise click.BadParameter(message(lang, "bad_duration", text=for_text)) from None
    elif cast("str", until_text).strip().lower() in ("never", "jamais"):
        until = None
    else:
        until = _when(until_text, lang, past=False, now=now)
    kind, value = given[0]
    config = _config(config_path)
    with _engine(db) as engine:
        if kind == "alert":
            scope_id = int(cast("int", value))
        else:
            with engine.connect() as conn:
                scope_id = _place_id(conn, kind, str(value), lang)
        mute_id = _alert_engine(engine, config).mute(
            rule=rule, scope_kind=kind, scope_id=scope_id, until=until, by=by, reason=reason
        )
    scope = f"{kind} {value}"
    rule_text = f", {rule}" if rule else f", {message(lang, 'all_rules')}"
    if until is None:
        click.echo(message(lang, "muted.forever", id=mute_id, scope=scope, rule=rule_text, by=by))
    else:
        click.echo(
            message(
                lang, "muted", id=mute_id, scope=scope, rule=rule_text, until=_local(until), by=by
            )
        )


@alerts.command()
@click.argument("mute_id", type=int)
@click.option("--by", "by", required=True, help="Who lifts the mute.")
@_common
def unmute(*, mute_id: int, by: str, db: str | None, config_path: Path | None, lang: Lang) -> None:
    """Lift a mute (its id, as ``mute`` printed it)."""
    config = _config(config_path)
    with _engine(db) as engine:
        _alert_engine(engine, config).unmute(mute_id, by=by)
    click.echo(message(lang, "unmuted", id=mute_id, by=by))


# ----------------------------------------------------------------------------- test-mail


@alerts.command("test-mail")
@click.option("--to", "to", required=True, multiple=True, help="Recipient (repeatable).")
@_common
def test_mail(*, to: tuple[str, ...], db: str | None, config_path: Path | None, lang: Lang) -> None:
    """Send one test mail through the configured SMTP server; say what went wrong if not."""
    from wesh.hq.alerts.compose import compose_test_mail, sender_domain_of  # noqa: PLC0415
    from wesh.hq.alerts.smtp import send_mail  # noqa: PLC0415

    config = _config(config_path)
    server = f"{config.smtp.host}:{config.smtp.port}"
    mail = compose_test_mail(
        to=list(to), lang=lang, sender_domain=sender_domain_of(config.sender), now=_now()
    )
    try:
        delivery = asyncio.run(send_mail(config.smtp, mail, sender=config.sender))
    except WeshError as exc:
        failed = message(lang, "test_mail.failed", server=server, error=exc)
        raise Failure(message(lang, "error", error=failed)) from exc
    if delivery.accepted:
        click.echo(
            message(
                lang,
                "test_mail.sent",
                to=", ".join(delivery.accepted),
                server=server,
                subject=mail.subject,
            )
        )
    problems = {**delivery.refused, **delivery.deferred}
    for address, reply in problems.items():
        click.echo(message(lang, "test_mail.refused", address=address, reply=reply), err=True)
    if problems:
        raise SystemExit(1)


# ----------------------------------------------------------------------------- evaluate


@alerts.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_common
def evaluate(*, as_json: bool, db: str | None, config_path: Path | None, lang: Lang) -> None:
    """Evaluate every rule once now; print the transitions and the mails queued."""
    config = _config(config_path)
    with _engine(db) as engine:
        report = _alert_engine(engine, config).evaluate()
    data = _as_json(report)
    if as_json:
        click.echo(dump_json(data))
        return
    _print_report(data, lang)


_TRANSITIONS: Final = (
    "opened",
    "fired",
    "resolved",
    "cancelled",
    "reminders",
    "escalated",
    "suppressed",
)


def _print_report(data: Mapping[str, Any], lang: Lang) -> None:
    shown = ", ".join(
        f"{message(lang, f'transition.{kind}')} {data[kind]}"
        for kind in _TRANSITIONS
        if data.get(kind)
    )
    click.echo(
        message(
            lang,
            "evaluate.done",
            at=_local(data.get("at"), "%Y-%m-%d %H:%M:%S"),
            transitions=shown or message(lang, "evaluate.nothing"),
            mails=data.get("mails_queued", 0),
        )
    )
    errors = data.get("errors") or ()
    if errors:
        click.echo(message(lang, "evaluate.errors"), err=True)
        for error in errors:
            click.echo(f"  {error}", err=True)


# ----------------------------------------------------------------------------- outbox


@alerts.command()
@click.option(
    "--list",
    "list_state",
    type=click.Choice(["all", "queued", "sent", "failed"]),
    help="Also list the mails (newest first) of this state.",
)
@click.option("--limit", type=int, default=50, show_default=True, help="Mails listed at most.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def outbox(
    *,
    list_state: str | None,
    limit: int,
    as_json: bool,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """Say how many mails wait to be sent, how old the oldest is, and the last error."""
    from wesh.hq.alerts.outbox import list_outbox, outbox_status  # noqa: PLC0415

    with _engine(db) as engine, engine.connect() as conn:
        status = outbox_status(conn, now=_now())
        entries = []
        if list_state is not None:
            state = None if list_state == "all" else list_state
            entries = list_outbox(conn, state=cast("Any", state), limit=limit)
    data = _as_json(status)
    if as_json:
        if list_state is not None:
            data = {**data, "mails": [_as_json(entry) for entry in entries]}
        click.echo(dump_json(data))
        return
    _print_outbox(data, lang)
    if entries:
        _console().print(_outbox_table([_as_json(entry) for entry in entries], lang))


def _print_outbox(data: Mapping[str, Any], lang: Lang) -> None:
    click.echo(
        message(
            lang,
            "outbox.status",
            queued=data.get("queued", 0),
            due=data.get("due", 0),
            failing=data.get("failing", 0),
            failed=data.get("failed", 0),
            sent=data.get("sent", 0),
            oldest=_local(data.get("oldest_queued_at")),
        )
    )
    if data.get("last_error"):
        click.echo(message(lang, "outbox.last_error", error=data["last_error"]))


def _outbox_table(rows: Sequence[Mapping[str, Any]], lang: Lang) -> Any:  # noqa: ANN401
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=message(lang, "outbox.title", count=len(rows)), title_justify="left")
    for key in ("col.id", "col.mail_state", "col.created", "col.to", "col.subject"):
        table.add_column(message(lang, key))
    table.add_column(message(lang, "col.attempts"), justify="right")
    table.add_column(message(lang, "col.error"))
    for row in rows:
        table.add_row(
            str(row.get("id", "")),
            message(lang, f"mail.{row.get('state')}"),
            _local(row.get("created_at")),
            _plain(", ".join(row.get("recipients") or ())),
            _plain(row.get("subject", "")),
            str(row.get("attempts", 0)),
            _plain(row.get("last_error") or ""),
        )
    return table


# ----------------------------------------------------------------------------- run


@alerts.command()
@click.option("--worker-id", help="This worker's name (default host:pid).")
@click.option(
    "--outbox-every",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between outbox passes (default: [outbox] every_s of the config, 15).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="wesh's log messages on standard error from this level.",
)
@_common
def run(
    *,
    worker_id: str | None,
    outbox_every: float | None,
    log_level: str,
    db: str | None,
    config_path: Path | None,
    lang: Lang,
) -> None:
    """Run the worker until SIGTERM or Ctrl-C: evaluations on schedule, and the outbox.

    Several workers may run at once on one database: no mail is sent twice.
    """
    _log_to_stderr(log_level)
    config = _config(config_path)
    from wesh.hq.alerts.engine import default_worker_id  # noqa: PLC0415

    worker = worker_id or default_worker_id()
    server = f"{config.smtp.host}:{config.smtp.port}"
    every = config.evaluate_every
    click.echo(message(lang, "run.start", worker=worker, every=every, server=server), err=True)
    with _engine(db) as engine:
        every_s = config.outbox.every_s if outbox_every is None else outbox_every
        asyncio.run(_run_worker(engine, config, worker, every_s, lang))


def _log_to_stderr(level: str) -> None:
    """Send wesh's log records from ``level`` (others' from WARNING) to standard error."""
    import sys  # noqa: PLC0415

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("wesh").setLevel(level.upper())


@dataclasses.dataclass(slots=True)
class _RunState:
    evaluations: int = 0
    sent: int = 0
    last_at: datetime | None = None
    open_alerts: int = 0
    queued: int = 0


async def _run_worker(
    engine: Engine, config: AlertsConfig, worker: str, outbox_every: float, lang: Lang
) -> None:
    from rich.status import Status  # noqa: PLC0415

    from wesh.hq.alerts.engine import AlertEngine  # noqa: PLC0415
    from wesh.hq.alerts.outbox import OutboxWorker  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    alert_engine = AlertEngine(engine, config, worker_id=worker)
    mailer = OutboxWorker.from_settings(
        engine, config.smtp, config.outbox, sender=config.sender, worker_id=worker
    )
    state = _RunState()
    console = _console()
    status = Status(_run_line(state, lang), console=console)
    live = console.is_terminal
    if live:
        status.start()
    try:
        evaluations = asyncio.create_task(
            _evaluate_loop(alert_engine, config, state, stop), name="alerts-evaluate"
        )
        mails = asyncio.create_task(
            _outbox_loop(mailer, state, stop, outbox_every), name="alerts-outbox"
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            if live:
                _refresh_counts(engine, state)
                status.update(_run_line(state, lang))
        for task in (evaluations, mails):
            await task
    finally:
        if live:
            status.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    click.echo(
        message(lang, "run.stopped", evaluations=state.evaluations, sent=state.sent), err=True
    )


async def _evaluate_loop(
    alert_engine: AlertEngine,
    config: AlertsConfig,
    state: _RunState,
    stop: asyncio.Event,
) -> None:
    every_s = max(1.0, config.evaluate_every.total_seconds())
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(alert_engine.evaluate)
        except WeshError as exc:  # the database is away: say so, try again next time
            _LOG.warning("Alert evaluation failed: %s", exc)
        else:
            state.evaluations += 1
            state.last_at = _now()
            _LOG.info("Alert evaluation: %s", _as_json(report))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def _outbox_loop(
    mailer: OutboxWorker,
    state: _RunState,
    stop: asyncio.Event,
    every_s: float,
) -> None:
    while not stop.is_set():
        try:
            report = await mailer.run_once()
        except WeshError as exc:
            _LOG.warning("Outbox pass failed: %s", exc)
        else:
            state.sent += report.sent
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


def _refresh_counts(engine: Engine, state: _RunState) -> None:
    """Count the open alerts and the mails waiting, for the status line."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from wesh.hq.db import translate_errors  # noqa: PLC0415
    from wesh.hq.models import Alert, MailOutbox  # noqa: PLC0415

    waiting = (MailOutbox.sent_at.is_(None), MailOutbox.failed_at.is_(None))
    try:
        with translate_errors(engine), engine.connect() as conn:
            state.open_alerts = int(
                conn.scalar(select(func.count()).where(Alert.open_key.is_not(None))) or 0
            )
            state.queued = int(conn.scalar(select(func.count()).where(*waiting)) or 0)
    except WeshError as exc:  # the database is away: the loops say so in the logs
        _LOG.debug("Status counts unavailable: %s", exc)


def _run_line(state: _RunState, lang: Lang) -> str:
    return message(
        lang,
        "run.status",
        at=_local(state.last_at, "%H:%M:%S"),
        open=state.open_alerts,
        queued=state.queued,
        sent=state.sent,
    )
