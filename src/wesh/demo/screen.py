"""What ``wesh demo`` shows: its messages (French and English) and its screens (pure).

:class:`Screen` holds what was last read from the running chain; :func:`render` draws it
for a terminal (two columns from 116 columns, a compact column below), :func:`plain_line`
is its one-line form for output that is not a terminal. :func:`consumption_table` and
:func:`trim_hours` shape the headquarters' consumption table shown at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal

from rich import box as rich_box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from wesh.demo.building import BUILDING
from wesh.hq.timeutil import PARIS

if TYPE_CHECKING:
    from wesh.gateway.schema import BoxInfo
    from wesh.hq.queries import ConsumptionRow
    from wesh.sync.pair import PairStats

__all__ = [
    "MESSAGES",
    "AlertLine",
    "Answer",
    "Lang",
    "Screen",
    "consumption_table",
    "local_time",
    "message",
    "number",
    "plain_line",
    "render",
    "trim_hours",
]

Lang = Literal["fr", "en"]

_TWO_COLUMNS: Final = 116  # console width from which the screen has two columns
_WIDE: Final = 140  # ... and the values their labels

MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "step.hq": {
        "fr": "① Siège\u00a0: base {db} créée (schéma {revision}), inventaire {inventory} importé "
        "({records} fiches).",
        "en": "① Headquarters: database {db} created (schema {revision}), inventory "
        "{inventory} imported ({records} records).",
    },
    "step.sim": {
        "fr": "② {count} serveurs WES simulés (graine {seed}, temps x{speed}, départ "
        "{start})\u00a0:",
        "en": "② {count} simulated WES servers (seed {seed}, time x{speed}, start {start}):",
    },
    "step.weshd": {
        "fr": "③ weshd\u00a0: {config} exporté de l'inventaire ({boxes} boîtiers, "
        "{channels} voies), API sur {socket}.",
        "en": "③ weshd: {config} exported from the inventory ({boxes} boxes, {channels} "
        "channels), API on {socket}.",
    },
    "step.sync": {
        "fr": "④ Synchronisation\u00a0: agent sur le stockage de weshd → SMS simulés "
        "({loss}\u00a0% perdus) → récepteur → base du siège.",
        "en": "④ Sync: agent on weshd's store → simulated SMS ({loss} % lost) → receiver → "
        "headquarters' database.",
    },
    "title": {
        "fr": "wesh demo · bâtiment {building} · heure simulée {now} (x{speed}) · {elapsed} s"
        " / {total} s",
        "en": "wesh demo · building {building} · simulated time {now} (x{speed}) · {elapsed} s"
        " / {total} s",
    },
    "boxes.title": {"fr": "Boîtiers (weshd, via libwesh)", "en": "Boxes (weshd, via libwesh)"},
    "col.box": {"fr": "boîtier", "en": "box"},
    "col.state": {"fr": "état", "en": "state"},
    "col.last": {"fr": "dernier relevé", "en": "last reading"},
    "col.failures": {"fr": "échecs", "en": "failures"},
    "state.up": {"fr": "en ligne", "en": "up"},
    "state.down": {"fr": "hors ligne", "en": "down"},
    "state.unknown": {"fr": "pas encore lu", "en": "not read yet"},
    "values.title": {
        "fr": "weshclient --socket {socket} get …",
        "en": "weshclient --socket {socket} get …",
    },
    "values.none": {"fr": "pas encore de valeur", "en": "no value yet"},
    "sync.title": {
        "fr": "Synchronisation (SMS simulés, {loss}\u00a0% perdus)",
        "en": "Sync (simulated SMS, {loss} % lost)",
    },
    "sync.up": {"fr": "SMS bâtiment → siège", "en": "SMS building → HQ"},
    "sync.down": {"fr": "SMS siège → bâtiment (accusés)", "en": "SMS HQ → building (ACKs)"},
    "sync.lost": {"fr": "SMS perdus (renvoyés)", "en": "SMS lost (sent again)"},
    "sync.queue": {"fr": "relevés en attente dans weshd", "en": "readings queued in weshd"},
    "sync.in_flight": {"fr": "paquets non acquittés", "en": "packets not acknowledged"},
    "sync.last_seq": {"fr": "dernier n° reçu au siège", "en": "last number received at HQ"},
    "sync.missing": {"fr": "n° manquants", "en": "numbers missing"},
    "hours.title": {"fr": "SMS par heure simulée", "en": "SMS per simulated hour"},
    "col.hour": {"fr": "heure", "en": "hour"},
    "col.up": {"fr": "↑ envoyés", "en": "↑ sent"},
    "col.down": {"fr": "↓ accusés", "en": "↓ ACKs"},
    "hq.title": {"fr": "Siège ({db})", "en": "Headquarters ({db})"},
    "hq.readings": {"fr": "relevés reçus", "en": "readings received"},
    "hq.hours": {"fr": "heures de consommation", "en": "hours of consumption"},
    "hq.last": {"fr": "dernière heure reçue", "en": "last hour received"},
    "none": {"fr": "—", "en": "—"},
    "narrow.boxes": {
        "fr": "Boîtiers (weshd, via libwesh)\u00a0: {up}/{total} en ligne\u00a0; hors ligne\u00a0: "
        "{others}",
        "en": "Boxes (weshd, via libwesh): {up}/{total} up; down: {others}",
    },
    "narrow.sync": {
        "fr": "SMS ↑ {up} · ↓ {down} (accusés) · perdus {lost} · paquets non acquittés "
        "{in_flight} · dernier n° {seq}, manquants {missing}",
        "en": "SMS ↑ {up} · ↓ {down} (ACKs) · lost {lost} · packets not acknowledged "
        "{in_flight} · last number {seq}, missing {missing}",
    },
    "narrow.hours": {
        "fr": "SMS par heure simulée\u00a0: {hours}",
        "en": "SMS per simulated hour: {hours}",
    },
    "narrow.hq": {
        "fr": "Siège ({db})\u00a0: {readings} relevés reçus, {hours} heures de consommation, "
        "dernière {last}",
        "en": "Headquarters ({db}): {readings} readings received, {hours} hours of "
        "consumption, last {last}",
    },
    "plain": {
        "fr": "[{elapsed:>4} s] {now} · boîtiers en ligne {up}/{boxes} · {value} · SMS ↑ {sms_up}"
        " ↓ {sms_down} (perdus {lost}) · siège\u00a0: {readings} relevés, {hours} h"
        " · alertes {alerts}, courriels {mails}",
        "en": "[{elapsed:>4} s] {now} · boxes up {up}/{boxes} · {value} · SMS ↑ {sms_up}"
        " ↓ {sms_down} (lost {lost}) · HQ: {readings} readings, {hours} h"
        " · alerts {alerts}, mails {mails}",
    },
    "step.alerts": {
        "fr": "⑤ Alertes\u00a0: moteur d'alertes du siège ({config}) évalué toutes les "
        "{every} simulées, courriels vers un serveur SMTP de capture sur 127.0.0.1:{port}.",
        "en": "⑤ Alerts: headquarters' alert engine ({config}) evaluated every simulated "
        "{every}, mails to a capturing SMTP server on 127.0.0.1:{port}.",
    },
    "step.no_alerts": {
        "fr": "⑤ Alertes\u00a0: pas de serveur SMTP de capture ({error})\u00a0; partie sautée.",
        "en": "⑤ Alerts: no capturing SMTP server ({error}); part skipped.",
    },
    "alerts.title": {"fr": "Alertes (siège)", "en": "Alerts (headquarters)"},
    "alerts.fault": {
        "fr": "panne injectée\u00a0: {box} ne répond plus depuis {at}",
        "en": "fault injected: {box} unreachable since {at}",
    },
    "alerts.fault_soon": {
        "fr": "panne prévue\u00a0: {box} cessera de répondre vers {at}",
        "en": "fault planned: {box} stops answering around {at}",
    },
    "alerts.none": {"fr": "aucune alerte ouverte", "en": "no open alert"},
    "alerts.mails": {"fr": "courriels capturés", "en": "mails captured"},
    "alerts.state.pending": {"fr": "en attente", "en": "pending"},
    "alerts.state.firing": {"fr": "active", "en": "firing"},
    "narrow.alerts": {
        "fr": "Alertes\u00a0: {alerts} · courriels capturés\u00a0: {mails}",
        "en": "Alerts: {alerts} · mails captured: {mails}",
    },
    "end.mails": {
        "fr": "Les courriels d'alerte partis du siège, capturés par le serveur SMTP local "
        "({count})\u00a0:",
        "en": "The alert mails headquarters sent, captured by the local SMTP server ({count}):",
    },
    "end.mail": {
        "fr": "Celui de la panne injectée, tel que le gestionnaire le reçoit\u00a0:",
        "en": "The one about the injected fault, as the manager receives it:",
    },
    "end.no_mail": {
        "fr": "(aucun courriel d'alerte n'est encore parti\u00a0: relancez avec --seconds plus "
        "grand)",
        "en": "(no alert mail was sent yet: run again with a larger --seconds)",
    },
    "try.alerts": {
        "fr": "les alertes du siège et leur historique",
        "en": "headquarters' alerts and their history",
    },
    "end.consumption": {
        "fr": "Au siège, ce qui est arrivé par la synchronisation\u00a0:",
        "en": "At headquarters, what arrived through the sync:",
    },
    "end.no_rows": {
        "fr": "(aucune heure complète n'est encore arrivée au siège\u00a0: relancez avec --seconds"
        " plus grand)",
        "en": "(no complete hour reached headquarters yet: run again with a larger --seconds)",
    },
    "end.trimmed": {
        "fr": "({count} heures de la journée hors de la démo, sans données, omises ici)",
        "en": "({count} hours of the day outside the demo, without data, left out here)",
    },
    "end.narrow": {
        "fr": "(les heures de la démo, resserrées pour {width} colonnes\u00a0; la commande "
        "ci-dessus montre la journée entière)",
        "en": "(the demo's hours, narrowed to {width} columns; the command above shows the "
        "whole day)",
    },
    "end.summary": {
        "fr": "Bilan\u00a0: {readings} relevés au siège en {hours} heures simulées,\n"
        "{sms_up} SMS envoyés et {sms_down} reçus, {answers} réponses de weshd à libwesh.",
        "en": "Summary: {readings} readings at headquarters in {hours} simulated hours,\n"
        "{sms_up} SMS sent and {sms_down} received, {answers} answers from weshd to libwesh.",
    },
    "end.try": {
        "fr": "À essayer ensuite, à la main (docs/demo.md)\u00a0:",
        "en": "Try next, by hand (docs/demo.md):",
    },
    "try.consumption": {"fr": "la consommation par jour", "en": "consumption per day"},
    "try.sim": {
        "fr": "les 5 boîtiers simulés, en temps réel (laissez tourner)",
        "en": "the 5 simulated boxes, in real time (leave it running)",
    },
    "try.sync": {
        "fr": "ce que le siège a reçu du bâtiment, numéro par numéro",
        "en": "what headquarters received from the building, number by number",
    },
    "try.weshd": {
        "fr": "weshd avec la configuration exportée (un autre terminal)",
        "en": "weshd with the exported configuration (another terminal)",
    },
    "try.client": {"fr": "interroger weshd", "en": "ask weshd"},
    "try.tic": {"fr": "le décodage TIC seul", "en": "TIC decoding alone"},
    "ports.moved": {
        "fr": "(ports habituels occupés\u00a0: les boîtiers ont pris des ports libres)",
        "en": "(usual ports busy: the boxes took free ports)",
    },
}


def message(lang: Lang, key: str, **values: object) -> str:
    """Return the catalogue string ``key`` in ``lang``, formatted with ``values``."""
    return MESSAGES[key][lang].format(**values)


def number(value: float, lang: Lang, decimals: int = 0) -> str:
    """Format with French separators (narrow space, decimal comma) or English ones."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


@dataclass(frozen=True, slots=True)
class Answer:
    """What libwesh answered for one channel (or why not)."""

    box: str
    path: str
    text: str
    ok: bool
    label: str | None = None


@dataclass(slots=True)
class Screen:
    """Everything the screen shows, refreshed every second (and where it comes from)."""

    start: datetime  # simulated
    speed: float
    total_s: float
    socket: str  # as the user would type them
    db: str
    loss_pct: int
    elapsed_s: float = 0.0
    sim_now: datetime = field(init=False)
    boxes: list[BoxInfo] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    answers_ok: int = 0
    sms_up: int = 0
    sms_down: int = 0
    sms_lost: int = 0
    per_hour: dict[datetime, list[int]] = field(default_factory=dict)  # hour → [up, down]
    queue_depth: int | None = None
    in_flight: int = 0
    last_seq: int | None = None
    missing: tuple[int, ...] = ()
    hq_readings: int = 0
    hq_hours: int = 0
    hq_last_hour: datetime | None = None
    alerts: list[AlertLine] = field(default_factory=list)  # the open alerts
    mails: int = 0  # captured by the local SMTP server
    fault: str | None = None  # what was (or will be) injected, already worded
    alerts_on: bool = False

    def __post_init__(self) -> None:
        self.sim_now = self.start

    def count_sms(self, stats: PairStats) -> None:
        """Attribute the SMS sent since the last call to the current simulated hour."""
        hour = self.sim_now.replace(minute=0, second=0, microsecond=0)
        counts = self.per_hour.setdefault(hour, [0, 0])
        counts[0] += stats.texts_up - self.sms_up
        counts[1] += stats.texts_down - self.sms_down
        self.sms_up, self.sms_down = stats.texts_up, stats.texts_down
        self.sms_lost = stats.lost_up + stats.lost_down
        self.in_flight = stats.agent.packets_in_flight
        if stats.ledger is not None:
            self.last_seq = stats.ledger.highest or None
            self.missing = stats.ledger.missing


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One open alert as the screen shows it."""

    rule: str
    where: str
    state: str  # pending | firing


def local_time(at: datetime, fmt: str = "%H:%M") -> str:
    """Return ``at`` as Paris local time (``06:00``)."""
    return at.astimezone(PARIS).strftime(fmt)


def _box_state(info: BoxInfo, lang: Lang) -> Text:
    status = info.status
    if status is None or status.up is None:
        return Text(message(lang, "state.unknown"), style="yellow")
    if status.up:
        return Text(message(lang, "state.up"), style="green")
    return Text(message(lang, "state.down"), style="bold red")


def _table(title: str, *, header: bool = False, min_width: int | None = None) -> Table:
    """Return a compact table: a bold title, no borders (a rule under the header, if any)."""
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=rich_box.SIMPLE_HEAD if header else None,
        show_header=header,
        show_edge=False,
        padding=(0, 1),
        min_width=min_width,
    )


def _boxes_table(screen: Screen, lang: Lang) -> Table:
    table = _table(message(lang, "boxes.title"), header=True)
    table.add_column(message(lang, "col.box"), no_wrap=True)
    table.add_column(message(lang, "col.state"), no_wrap=True)
    table.add_column(message(lang, "col.last"), no_wrap=True)
    table.add_column(message(lang, "col.failures"), justify="right")
    for info in screen.boxes:
        status = info.status
        last = local_time(status.last_ok) if status is not None and status.last_ok else "—"
        failures = str(status.consecutive_failures) if status is not None else ""
        table.add_row(info.id, _box_state(info, lang), last, failures)
    return table


def _values_table(screen: Screen, socket: str, lang: Lang, *, labels: bool) -> Table:
    table = _table(message(lang, "values.title", socket=socket))
    table.add_column("get", no_wrap=True)
    table.add_column("answer", no_wrap=True)
    if labels:
        table.add_column("label", no_wrap=True, style="dim")
    for answer in screen.answers:
        cells: list[RenderableType] = [
            f"{answer.box} {answer.path}",
            answer.text if answer.ok else Text(answer.text, style="yellow"),
        ]
        table.add_row(*cells, *([answer.label or ""] if labels else []))
    return table


def _sync_table(screen: Screen, lang: Lang) -> Table:
    table = _table(message(lang, "sync.title", loss=screen.loss_pct), min_width=46)
    table.add_column("what")
    table.add_column("value", justify="right")
    none = message(lang, "none")
    rows = (
        ("sync.up", number(screen.sms_up, lang)),
        ("sync.down", number(screen.sms_down, lang)),
        ("sync.lost", number(screen.sms_lost, lang)),
        ("sync.in_flight", str(screen.in_flight)),
        ("sync.queue", none if screen.queue_depth is None else number(screen.queue_depth, lang)),
        ("sync.last_seq", none if screen.last_seq is None else str(screen.last_seq)),
        ("sync.missing", ", ".join(map(str, screen.missing[:8])) or none),
    )
    for key, value in rows:
        table.add_row(message(lang, key), value)
    return table


def _hours_table(screen: Screen, lang: Lang, *, last: int = 6) -> Table:
    table = _table(message(lang, "hours.title"), header=True, min_width=46)
    table.add_column(message(lang, "col.hour"))
    table.add_column(message(lang, "col.up"), justify="right")
    table.add_column(message(lang, "col.down"), justify="right")
    for hour, (up, down) in sorted(screen.per_hour.items())[-last:]:
        table.add_row(local_time(hour), str(up), str(down))
    return table


def _hq_table(screen: Screen, db: str, lang: Lang) -> Table:
    table = _table(message(lang, "hq.title", db=db), min_width=46)
    table.add_column("what")
    table.add_column("value", justify="right")
    last = screen.hq_last_hour
    table.add_row(message(lang, "hq.readings"), number(screen.hq_readings, lang))
    table.add_row(message(lang, "hq.hours"), str(screen.hq_hours))
    table.add_row(message(lang, "hq.last"), local_time(last) if last else message(lang, "none"))
    return table


def _alert_text(alert: AlertLine, lang: Lang) -> Text:
    state = (
        message(lang, f"alerts.state.{alert.state}")
        if alert.state in ("pending", "firing")
        else alert.state
    )
    style = "bold red" if alert.state == "firing" else "yellow"
    return Text(f"{alert.rule} {alert.where} ({state})", style=style)


def _alerts_table(screen: Screen, lang: Lang) -> Table:
    table = _table(message(lang, "alerts.title"), min_width=46)
    table.add_column("what")
    table.add_column("value", justify="right")
    if screen.fault:
        table.add_row(Text(screen.fault, style="magenta"), "")
    for alert in screen.alerts[:4]:
        table.add_row(_alert_text(alert, lang), "")
    if not screen.alerts:
        table.add_row(message(lang, "alerts.none"), "")
    table.add_row(message(lang, "alerts.mails"), str(screen.mails))
    return table


def render(screen: Screen, *, lang: Lang, width: int) -> RenderableType:
    """Return the whole screen for a terminal ``width`` columns wide."""
    title = Text(
        message(
            lang,
            "title",
            building=BUILDING,
            now=local_time(screen.sim_now, "%Y-%m-%d %H:%M"),
            speed=f"{screen.speed:g}",
            elapsed=f"{screen.elapsed_s:.0f}",
            total=f"{screen.total_s:g}",
        ),
        style="bold",
    )
    values = _values_table(screen, screen.socket, lang, labels=width >= _WIDE)
    if width < _TWO_COLUMNS:  # a small terminal: the same, in about 20 lines
        return Group(title, Text(), *_narrow(screen, values, lang))
    left = Group(_boxes_table(screen, lang), Text(), values)
    right_parts: list[RenderableType] = [
        _sync_table(screen, lang),
        Text(),
        _hours_table(screen, lang),
        Text(),
        _hq_table(screen, screen.db, lang),
    ]
    if screen.alerts_on:
        right_parts += [Text(), _alerts_table(screen, lang)]
    right = Group(*right_parts)
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    grid.add_row(left, right)
    return Group(title, Text(), grid)


def _narrow(screen: Screen, values: Table, lang: Lang) -> list[RenderableType]:
    """Return the screen's parts as short lines, for a terminal narrower than two columns."""
    none = message(lang, "none")
    down = [info.id for info in screen.boxes if info.status is None or not info.status.up]
    boxes = Text(
        message(
            lang,
            "narrow.boxes",
            up=len(screen.boxes) - len(down),
            total=len(screen.boxes),
            others=", ".join(down) or none,
        ),
        style="bold red" if down else "bold",
    )
    sync = message(
        lang,
        "narrow.sync",
        up=screen.sms_up,
        down=screen.sms_down,
        lost=screen.sms_lost,
        in_flight=screen.in_flight,
        seq=none if screen.last_seq is None else screen.last_seq,
        missing=", ".join(map(str, screen.missing[:5])) or none,
    )
    hours = " · ".join(
        f"{local_time(hour)} ↑{sent} ↓{acks}"
        for hour, (sent, acks) in sorted(screen.per_hour.items())
    )
    last = screen.hq_last_hour
    hq = message(
        lang,
        "narrow.hq",
        db=screen.db,
        readings=number(screen.hq_readings, lang),
        hours=screen.hq_hours,
        last=local_time(last) if last else none,
    )
    parts: list[RenderableType] = [
        boxes,
        Text(),
        values,
        Text(),
        Text(message(lang, "sync.title", loss=screen.loss_pct), style="bold"),
        Text(sync),
        Text(message(lang, "narrow.hours", hours=hours[-160:] or none)),
        Text(),
        Text(hq, style="bold"),
    ]
    if screen.alerts_on:
        shown = " · ".join(str(_alert_text(a, lang)) for a in screen.alerts[:3])
        parts.append(
            Text(
                message(
                    lang,
                    "narrow.alerts",
                    alerts=shown or message(lang, "alerts.none"),
                    mails=screen.mails,
                ),
                style="bold red" if screen.alerts else "bold",
            )
        )
        if screen.fault:
            parts.append(Text(screen.fault, style="magenta"))
    return parts


def plain_line(screen: Screen, lang: Lang) -> str:
    """Return one line saying where things are, for output that is not a terminal."""
    up = sum(1 for info in screen.boxes if info.status is not None and info.status.up)
    value = next(
        (f"{a.box} {a.path} = {a.text}" for a in screen.answers if a.ok),
        message(lang, "values.none"),
    )
    return message(
        lang,
        "plain",
        elapsed=f"{screen.elapsed_s:.0f}",
        now=local_time(screen.sim_now, "%Y-%m-%d %H:%M"),
        up=up,
        boxes=len(screen.boxes),
        value=value,
        sms_up=screen.sms_up,
        sms_down=screen.sms_down,
        lost=screen.sms_lost,
        readings=screen.hq_readings,
        hours=screen.hq_hours,
        alerts=len(screen.alerts),
        mails=screen.mails,
    )


_KINDS: Final = ("electricity", "cold_water", "hot_water", "gas", "heat", "other")


def consumption_table(
    rows: Sequence[ConsumptionRow], *, first: datetime, last: datetime, lang: Lang
) -> Table:
    """Return the hours ``[first, last]`` of ``rows`` as a narrow table (pure).

    The columns, units and numbers of ``wesh hq consumption`` (kWh, m³, French or English
    number format), with local hours (``06:00``) as the periods: for terminals too
    narrow for the command's own table.
    """
    from wesh.hq.cli import format_quantity  # noqa: PLC0415
    from wesh.hq.cli import message as hq_message  # noqa: PLC0415

    shown = [row for row in rows if first <= row.start <= last]
    series = sorted(
        {(row.kind, row.unit) for row in shown},
        key=lambda item: (_KINDS.index(item[0]) if item[0] in _KINDS else 99, item[1] or ""),
    )
    scale = {"Wh": (1000.0, "kWh", 1), "L": (1000.0, "m³", 2)}

    def cell(value: float | None, unit: str | None) -> str:
        if value is None:
            return "—"
        divisor, _, decimals = scale.get(unit or "", (1.0, unit or "", 1))
        return format_quantity(value / divisor, lang, decimals)

    table = Table(box=rich_box.SIMPLE_HEAD, show_edge=False, padding=(0, 1))
    table.add_column(message(lang, "col.hour"), no_wrap=True)
    for kind, unit in series:
        name = hq_message(lang, f"kind.{kind}") if kind in _KINDS else kind
        shown_unit = scale.get(unit or "", (1.0, unit or "", 1))[1]
        table.add_column(f"{name}\n({shown_unit})", justify="right")
    values = {(row.kind, row.unit, row.start): row.value for row in shown}
    starts = sorted({row.start for row in shown})
    for start in starts:
        table.add_row(local_time(start), *(cell(values.get((k, u, start)), u) for k, u in series))
    totals = []
    for kind, unit in series:
        known = [v for s in starts if (v := values.get((kind, unit, s))) is not None]
        totals.append(cell(sum(known), unit) if known else "—")
    table.add_section()
    table.add_row(hq_message(lang, "total"), *totals)
    return table


def trim_hours(text: str, first: datetime, last: datetime) -> tuple[str, int]:
    """Drop the rows of a ``--by hour`` table outside ``[first, last]`` (pure).

    A row is a line whose first cell is an hour label (``2025-01-15T07:00+01:00``);
    other lines are kept. Returns the text and how many rows were dropped.
    """
    kept: list[str] = []
    dropped = 0
    for line in text.splitlines():
        cells = line.split("│")
        if len(cells) > 2:
            try:
                hour = datetime.fromisoformat(cells[1].strip())
            except ValueError:
                hour = None
            if hour is not None and hour.tzinfo is not None and not first <= hour <= last:
                dropped += 1
                continue
        kept.append(line)
    return "\n".join(kept) + ("\n" if text.endswith("\n") else ""), dropped
