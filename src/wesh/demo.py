"""``make demo`` (``wesh demo``): the whole chain, from simulated boxes to headquarters.

Nothing to install: simulated devices, SQLite files and in-process links, in ``.demo/``
(wiped at start). It runs by itself for about a minute, then stops everything::

    0. wesh.tic.demo      four simulated Téléinfo meters decoded live (a few seconds)
    1. HQ                 .demo/hq.sqlite3 (migrate) ◀── .demo/inventory.toml (import):
                          agency → residence → building B001 → common area + 4 dwellings,
                          tenancies, gateway b001, its 5 boxes and their channels
       export            inventory ──export_gateway_config──▶ .demo/weshd.toml
                          (+ the local settings the inventory does not hold: ports of the
                          simulated boxes, poll interval, state directory, socket)
    2. wesh.sim           5 simulated WES (B001-PC, B001-L01..L04), time x speed
    3. weshd (Gateway)    polls them per .demo/weshd.toml; API on .demo/weshd.sock
    4. Tonique            agent on weshd's store ──SMS (loopback, 10 % lost)──▶ receiver
                          ──HqSink──▶ .demo/hq.sqlite3 (readings, hourly rollups)
    5. screen             libwesh (as weshclient) answers; SMS counted; HQ filling up
    6. the end            `wesh hq consumption --by hour` on what arrived, and the commands
                          to explore further by hand

**One clock.** The simulated boxes run ``speed`` times faster than the wall clock, from
a fixed winter morning; weshd, the sync agent, the receiver and the HQ sink are all
given that same simulated clock, so a reading's time is the simulated instant it was
read and HQ's hours are simulated hours. The clock stands still while the demo sets up
(:class:`DemoClock`) and starts when weshd does.

The screen is a Rich ``Live`` on a terminal (French by default, English with
``lang="en"``), plain periodic lines otherwise. Logs go to ``.demo/demo.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import logging
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from rich import box as rich_box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from wesh.errors import ConfigError, UsageError, WeshError
from wesh.hq.gateway_export import toml_string

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wesh.client import AsyncWeshClient
    from wesh.gateway.daemon import Gateway
    from wesh.gateway.schema import BoxInfo
    from wesh.hq.queries import ConsumptionRow
    from wesh.sim import SimFarm
    from wesh.sync.pair import PairStats, SyncPair

__all__ = [
    "DEFAULT_SECONDS",
    "DEFAULT_SPEED",
    "DEFAULT_TIC_SECONDS",
    "DemoBox",
    "DemoClock",
    "DemoSummary",
    "consumption_table",
    "inventory_toml",
    "run_demo",
    "trim_hours",
    "with_local_settings",
]

Lang = Literal["fr", "en"]

DEFAULT_SECONDS: Final = 55.0  # the chain's live part
DEFAULT_TIC_SECONDS: Final = 5.0  # the TIC decoding part, before it
DEFAULT_SPEED: Final = 360.0  # simulated seconds per wall second: an hour every 10 s
#: 05:45 in Paris on a winter Wednesday: the 05:00 hour gives HQ its first indexes.
SIM_START: Final = datetime(2025, 1, 15, 4, 45, tzinfo=UTC)
SEED: Final = 1
BASE_ADDRESS: Final = "127.10.0.1"  # box i on 127.10.0.(1+i), as `wesh sim wes --base-address`
WESHD_HTTP_PORT: Final = 80  # weshd's defaults (docs/weshd-config.md)
WESHD_M2M_PORT: Final = 1500
SITE: Final = "b001"
BUILDING: Final = "B001"
POLL_INTERVAL_S: Final = 1.0  # wall seconds between two polls of a box
SMS_LOSS: Final = 0.1
_TICK_S: Final = 1.0
_TWO_COLUMNS: Final = 116  # console width from which the screen has two columns
_WIDE: Final = 140  # ... and the values their labels
_PLAIN_EVERY_S: Final = 5.0
_MARKER: Final = ".wesh-demo"
_PARIS_TZ: Final = "Europe/Paris"

# ----------------------------------------------------------------------------- messages

MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "step.hq": {
        "fr": "① Siège : base {db} créée (schéma {revision}), inventaire {inventory} importé "
        "({records} fiches).",
        "en": "① Headquarters: database {db} created (schema {revision}), inventory "
        "{inventory} imported ({records} records).",
    },
    "step.sim": {
        "fr": "② {count} serveurs WES simulés (graine {seed}, temps x{speed}, départ {start}) :",
        "en": "② {count} simulated WES servers (seed {seed}, time x{speed}, start {start}):",
    },
    "step.weshd": {
        "fr": "③ weshd : {config} exporté de l'inventaire ({boxes} boîtiers, {channels} voies),"
        " API sur {socket}.",
        "en": "③ weshd: {config} exported from the inventory ({boxes} boxes, {channels} "
        "channels), API on {socket}.",
    },
    "step.sync": {
        "fr": "④ Synchronisation : agent sur le stockage de weshd → SMS simulés ({loss} % "
        "perdus) → récepteur → base du siège.",
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
        "fr": "Synchronisation (SMS simulés, {loss} % perdus)",
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
        "fr": "Boîtiers (weshd, via libwesh) : {up}/{total} en ligne ; hors ligne : {others}",
        "en": "Boxes (weshd, via libwesh): {up}/{total} up; down: {others}",
    },
    "narrow.sync": {
        "fr": "SMS ↑ {up} · ↓ {down} accusés · {lost} perdus · {in_flight} non acquittés · "
        "dernier n° {seq}, manquants {missing}",
        "en": "SMS ↑ {up} · ↓ {down} ACKs · {lost} lost · {in_flight} not acknowledged · "
        "last number {seq}, missing {missing}",
    },
    "narrow.hours": {
        "fr": "SMS par heure simulée : {hours}",
        "en": "SMS per simulated hour: {hours}",
    },
    "narrow.hq": {
        "fr": "Siège ({db}) : {readings} relevés reçus, {hours} heures de consommation, "
        "dernière {last}",
        "en": "Headquarters ({db}): {readings} readings received, {hours} hours of "
        "consumption, last {last}",
    },
    "plain": {
        "fr": "[{elapsed:>4} s] {now} · boîtiers en ligne {up}/{boxes} · {value} · SMS ↑ {sms_up}"
        " ↓ {sms_down} (perdus {lost}) · siège : {readings} relevés, {hours} h",
        "en": "[{elapsed:>4} s] {now} · boxes up {up}/{boxes} · {value} · SMS ↑ {sms_up}"
        " ↓ {sms_down} (lost {lost}) · HQ: {readings} readings, {hours} h",
    },
    "end.consumption": {
        "fr": "Au siège, ce qui est arrivé par la synchronisation :",
        "en": "At headquarters, what arrived through the sync:",
    },
    "end.no_rows": {
        "fr": "(aucune heure complète n'est encore arrivée au siège : relancez avec --seconds"
        " plus grand)",
        "en": "(no complete hour reached headquarters yet: run again with a larger --seconds)",
    },
    "end.trimmed": {
        "fr": "({count} heures de la journée hors de la démo, sans données, omises ici)",
        "en": "({count} hours of the day outside the demo, without data, left out here)",
    },
    "end.narrow": {
        "fr": "(les heures de la démo, resserrées pour {width} colonnes ; la commande "
        "ci-dessus montre la journée entière)",
        "en": "(the demo's hours, narrowed to {width} columns; the command above shows the "
        "whole day)",
    },
    "end.summary": {
        "fr": "Bilan : {readings} relevés au siège, {sms_up} SMS envoyés et {sms_down} reçus "
        "en {hours} heures simulées ; {answers} réponses de weshd à libwesh.",
        "en": "Summary: {readings} readings at headquarters, {sms_up} SMS sent and {sms_down}"
        " received in {hours} simulated hours; {answers} answers from weshd to libwesh.",
    },
    "end.try": {
        "fr": "À essayer ensuite, à la main (docs/demo.md) :",
        "en": "Try next, by hand (docs/demo.md):",
    },
    "try.consumption": {"fr": "la consommation par jour", "en": "consumption per day"},
    "try.sim": {
        "fr": "les 5 boîtiers simulés, en temps réel (laissez tourner)",
        "en": "the 5 simulated boxes, in real time (leave it running)",
    },
    "try.weshd": {
        "fr": "weshd avec la configuration exportée (un autre terminal)",
        "en": "weshd with the exported configuration (another terminal)",
    },
    "try.client": {"fr": "interroger weshd", "en": "ask weshd"},
    "try.tic": {"fr": "le décodage TIC seul", "en": "TIC decoding alone"},
    "ports.moved": {
        "fr": "(ports habituels occupés : les boîtiers ont pris des ports libres)",
        "en": "(usual ports busy: the boxes took free ports)",
    },
}


def message(lang: Lang, key: str, **values: object) -> str:
    """Return the catalogue string ``key`` in ``lang``, formatted with ``values``."""
    return MESSAGES[key][lang].format(**values)


def _number(value: float, lang: Lang, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


# ----------------------------------------------------------------------------- the building

#: What each dwelling is: (code suffix, floor, surface m², label, tenancies).
_DWELLINGS: Final = (
    ("L01", 0, 48.5, "T2 rez-de-chaussée", (("T-0101", "2019-09-01", None),)),
    ("L02", 1, 67.0, "T3 1er étage", (("T-0102", "2021-03-15", None),)),
    (
        "L03",
        2,
        82.3,
        "T4 2e étage",
        (("T-0087", "2016-05-01", "2024-06-30"), ("T-0140", "2024-08-01", None)),
    ),
    ("L04", 3, 31.0, "T1 3e étage", (("T-0155", "2023-11-01", None),)),
)

#: Channels of a dwelling box: path, kind, unit, label.
_DWELLING_CHANNELS: Final = (
    ("tic.1.index.hchc", "electricity", "Wh", "Électricité heures creuses"),
    ("tic.1.index.hchp", "electricity", "Wh", "Électricité heures pleines"),
    ("tic.1.power_va", "power", "VA", "Puissance apparente"),
    ("impulsion.1.index", "cold_water", "L", "Eau froide"),
    ("impulsion.2.index", "hot_water", "L", "Eau chaude"),
    ("impulsion.3.index", "heat", "Wh", "Chauffage"),
    ("temp.1", "temperature", "°C", "Température séjour"),
    ("temp.2", "humidity", "%", "Humidité salle de bains"),
)

#: Channels of the common-areas box.
_COMMON_CHANNELS: Final = (
    ("tic.1.index.base", "electricity", "Wh", "Électricité communs"),
    ("tic.1.power_va", "power", "VA", "Puissance apparente"),
    ("impulsion.1.index", "gas", "L", "Gaz chaudière"),
    ("pince.1.index", "other", "Wh", "Ascenseur"),
    ("pince.2.index", "other", "Wh", "Ventilation et pompes"),
    ("pince.1.voltage", "voltage", "V", "Tension secteur"),
    ("temp.1", "temperature", "°C", "Chaufferie"),
    ("temp.2", "temperature", "°C", "Hall d'entrée"),
    ("temp.3", "temperature", "°C", "Extérieur"),
)

#: What the screen asks weshd through libwesh, as ``weshclient get BOX PATH`` would.
WATCHED: Final = (
    ("B001-L01", "tic.1.power_va"),
    ("B001-L01", "impulsion.1.index"),
    ("B001-L01", "impulsion.2.index"),
    ("B001-L01", "temp.1"),
    ("B001-PC", "pince.1.voltage"),
    ("B001-PC", "temp.3"),
)


@dataclass(frozen=True, slots=True)
class DemoBox:
    """One simulated box as the inventory and weshd.toml describe it."""

    ref: str  # box id in weshd, e.g. "B001-L01"; also the dwelling's code
    common: bool
    host: str
    mac: str
    firmware: str
    http_port: int
    m2m_port: int


def inventory_toml(boxes: Sequence[DemoBox], *, phone_number: str = "+33600000001") -> str:
    """Return the demo building's inventory, in the TOML of ``wesh hq import`` (pure)."""
    lines = [
        "# The demo building, as `wesh demo` imports it (wesh hq import, docs/hq-cli.md).",
        "# The boxes are simulated, each on its own loopback address (127.10.0.x).",
        "",
        "[[agency]]",
        'code = "AG01"',
        'name = "Agence Centre"',
        "",
        "[[residence]]",
        'code = "R01"',
        'agency = "AG01"',
        'name = "Résidence Les Tilleuls"',
        'address = "12 rue des Tilleuls, 69003 Lyon"',
        "",
        "[[building]]",
        f"code = {toml_string(BUILDING)}",
        'residence = "R01"',
        'name = "Les Tilleuls, bâtiment 1"',
        "",
        "[[dwelling]]",
        f'code = "{BUILDING}-PC"',
        f"building = {toml_string(BUILDING)}",
        'kind = "common_area"',
        'label = "Parties communes"',
        'heating_type = "collective"',
    ]
    for suffix, floor, surface_m2, label, tenancies in _DWELLINGS:
        lines += [
            "",
            "[[dwelling]]",
            f'code = "{BUILDING}-{suffix}"',
            f"building = {toml_string(BUILDING)}",
            'kind = "dwelling"',
            f"label = {toml_string(label)}",
            f"floor = {floor}",
            f"surface_m2 = {surface_m2}",
            'heating_type = "collective"',
        ]
        for tenant, start, end in tenancies:
            lines += [
                "",
                "[[tenancy]]",
                f'dwelling = "{BUILDING}-{suffix}"',
                f"tenant_ref = {toml_string(tenant)}",
                f"start_date = {start}",
            ]
            if end is not None:
                lines.append(f"end_date = {end}")
    lines += [
        "",
        "[[gateway]]",
        f"site = {toml_string(SITE)}",
        f"building = {toml_string(BUILDING)}",
        'name = "Passerelle Les Tilleuls 1"',
        f"phone_number = {toml_string(phone_number)}",
    ]
    for demo_box in boxes:
        lines += [
            "",
            "[[box]]",
            f"site = {toml_string(SITE)}",
            f"box = {toml_string(demo_box.ref)}",
            f"dwelling = {toml_string(demo_box.ref)}",
            'driver = "wes"',
            f"host = {toml_string(demo_box.host)}",
            f"mac = {toml_string(demo_box.mac)}",
            'model = "WES V2"',
            f"firmware = {toml_string(demo_box.firmware)}",
        ]
        channels = _COMMON_CHANNELS if demo_box.common else _DWELLING_CHANNELS
        for path, kind, unit, label in channels:
            lines += [
                "",
                "[[channel]]",
                f"site = {toml_string(SITE)}",
                f"box = {toml_string(demo_box.ref)}",
                f"path = {toml_string(path)}",
                f"kind = {toml_string(kind)}",
                f"unit = {toml_string(unit)}",
                f"label = {toml_string(label)}",
            ]
    return "\n".join(lines) + "\n"


def with_local_settings(
    exported: str, boxes: Sequence[DemoBox], *, poll_interval_s: float = POLL_INTERVAL_S
) -> str:
    """Add to an exported weshd.toml what the inventory does not hold (pure).

    The state directory (the file's own folder) and the API socket in it, a quick
    ``[poll]`` policy, and for each box its ports (when not weshd's defaults), its poll
    interval,
    ``only_configured`` (the inventory's channels only: what headquarters expects) and,
    for the common box, the gas counter's unit (``pulse_units``: the box counts m³).

    Raises:
        ConfigError: the export and the boxes do not name the same boxes.
    """
    by_ref = {demo_box.ref: demo_box for demo_box in boxes}
    out: list[str] = []
    seen: set[str] = set()
    lines = exported.splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "[site]":
            out += [
                "# Local settings added by `wesh demo` (not held by the inventory):",
                "# the state directory is this file's folder; the API socket lives in it.",
                'state_dir = "."',
                "",
            ]
        out.append(line)
        if line.startswith("id = ") and number > 0 and lines[number - 1].strip() == "[[boxes]]":
            ref = str(tomllib.loads(line)["id"])
            demo_box = by_ref.get(ref)
            if demo_box is None:
                raise ConfigError(f"the export has a box {ref!r} the demo did not start")
            seen.add(ref)
            if demo_box.http_port != WESHD_HTTP_PORT:
                out.append(f"port = {demo_box.http_port}  # local: the simulated box's")
            if demo_box.m2m_port != WESHD_M2M_PORT:
                out.append(f"m2m_port = {demo_box.m2m_port}")
            out += [
                f"poll_interval_s = {poll_interval_s:g}",
                "only_configured = true              # the inventory's channels only",
            ]
            if demo_box.common:
                out.append('pulse_units = { 1 = "m3" }         # the gas counter counts m³')
    missing = sorted(set(by_ref) - seen)
    if missing:
        raise ConfigError(f"the export lacks the box(es) {', '.join(missing)}")
    out += [
        "",
        "# ------------------------------------------------------------------ local settings",
        "",
        "[api]",
        'socket = "weshd.sock"',
        "",
        "[poll]",
        "jitter_s = 0.2",
        "backoff_initial_s = 2.0",
        "backoff_max_s = 10.0",
    ]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the clock


class DemoClock:
    """Simulated time: still at ``start`` until :meth:`begin`, then ``speed`` times faster.

    Shared by the simulated boxes (it is a :class:`wesh.sim.clock.Clock`), weshd, the
    sync pair and the HQ sink. ``monotonic`` is the real-time source.
    """

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise UsageError("the simulated start must be timezone-aware")
        if not speed > 0:
            raise UsageError(f"the speed must be positive, not {speed}")
        self.speed = speed
        self._start_ts = start.timestamp()
        self._monotonic = monotonic
        self._origin: float | None = None

    def begin(self) -> None:
        """Let simulated time run from now on (idempotent)."""
        if self._origin is None:
            self._origin = self._monotonic()

    def timestamp(self) -> float:
        """Return the simulated time as POSIX seconds."""
        if self._origin is None:
            return self._start_ts
        return self._start_ts + (self._monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        """Return the simulated time, aware UTC."""
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)


# ----------------------------------------------------------------------------- screen state


@dataclass(frozen=True, slots=True)
class _Answer:
    box: str
    path: str
    text: str
    ok: bool
    label: str | None = None


@dataclass(slots=True)
class _Screen:
    """Everything the screen shows, refreshed every second."""

    elapsed_s: float = 0.0
    sim_now: datetime = SIM_START
    boxes: list[BoxInfo] = field(default_factory=list)
    answers: list[_Answer] = field(default_factory=list)
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


def _local(at: datetime, fmt: str = "%H:%M") -> str:
    from zoneinfo import ZoneInfo  # noqa: PLC0415 - cheap, but only needed here

    return at.astimezone(ZoneInfo(_PARIS_TZ)).strftime(fmt)


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


def _boxes_table(screen: _Screen, lang: Lang) -> Table:
    table = _table(message(lang, "boxes.title"), header=True)
    table.add_column(message(lang, "col.box"), no_wrap=True)
    table.add_column(message(lang, "col.state"), no_wrap=True)
    table.add_column(message(lang, "col.last"), no_wrap=True)
    table.add_column(message(lang, "col.failures"), justify="right")
    for info in screen.boxes:
        status = info.status
        last = _local(status.last_ok) if status is not None and status.last_ok else "—"
        failures = str(status.consecutive_failures) if status is not None else ""
        table.add_row(info.id, _box_state(info, lang), last, failures)
    return table


def _values_table(screen: _Screen, socket: str, lang: Lang, *, labels: bool) -> Table:
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


def _sync_table(screen: _Screen, lang: Lang) -> Table:
    table = _table(message(lang, "sync.title", loss=round(SMS_LOSS * 100)), min_width=46)
    table.add_column("what")
    table.add_column("value", justify="right")
    none = message(lang, "none")
    rows = (
        ("sync.up", _number(screen.sms_up, lang)),
        ("sync.down", _number(screen.sms_down, lang)),
        ("sync.lost", _number(screen.sms_lost, lang)),
        ("sync.in_flight", str(screen.in_flight)),
        ("sync.queue", none if screen.queue_depth is None else _number(screen.queue_depth, lang)),
        ("sync.last_seq", none if screen.last_seq is None else str(screen.last_seq)),
        ("sync.missing", ", ".join(map(str, screen.missing[:8])) or none),
    )
    for key, value in rows:
        table.add_row(message(lang, key), value)
    return table


def _hours_table(screen: _Screen, lang: Lang, *, last: int = 6) -> Table:
    table = _table(message(lang, "hours.title"), header=True, min_width=46)
    table.add_column(message(lang, "col.hour"))
    table.add_column(message(lang, "col.up"), justify="right")
    table.add_column(message(lang, "col.down"), justify="right")
    for hour, (up, down) in sorted(screen.per_hour.items())[-last:]:
        table.add_row(_local(hour), str(up), str(down))
    return table


def _hq_table(screen: _Screen, db: str, lang: Lang) -> Table:
    table = _table(message(lang, "hq.title", db=db), min_width=46)
    table.add_column("what")
    table.add_column("value", justify="right")
    last = screen.hq_last_hour
    table.add_row(message(lang, "hq.readings"), _number(screen.hq_readings, lang))
    table.add_row(message(lang, "hq.hours"), str(screen.hq_hours))
    table.add_row(message(lang, "hq.last"), _local(last) if last else message(lang, "none"))
    return table


def _render(
    screen: _Screen, *, paths: _Paths, speed: float, total_s: float, lang: Lang, width: int
) -> RenderableType:
    title = Text(
        message(
            lang,
            "title",
            building=BUILDING,
            now=_local(screen.sim_now, "%Y-%m-%d %H:%M"),
            speed=f"{speed:g}",
            elapsed=f"{screen.elapsed_s:.0f}",
            total=f"{total_s:g}",
        ),
        style="bold",
    )
    values = _values_table(screen, paths.shown(paths.socket), lang, labels=width >= _WIDE)
    if width < _TWO_COLUMNS:  # a small terminal: the same, in about 20 lines
        return Group(title, Text(), *_narrow(screen, values, paths, lang))
    left = Group(_boxes_table(screen, lang), Text(), values)
    right = Group(
        _sync_table(screen, lang),
        Text(),
        _hours_table(screen, lang),
        Text(),
        _hq_table(screen, paths.shown(paths.db), lang),
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    grid.add_row(left, right)
    return Group(title, Text(), grid)


def _narrow(screen: _Screen, values: Table, paths: _Paths, lang: Lang) -> list[RenderableType]:
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
        f"{_local(hour)} ↑{sent} ↓{acks}" for hour, (sent, acks) in sorted(screen.per_hour.items())
    )
    last = screen.hq_last_hour
    hq = message(
        lang,
        "narrow.hq",
        db=paths.shown(paths.db),
        readings=_number(screen.hq_readings, lang),
        hours=screen.hq_hours,
        last=_local(last) if last else none,
    )
    return [
        boxes,
        Text(),
        values,
        Text(),
        Text(message(lang, "sync.title", loss=round(SMS_LOSS * 100)), style="bold"),
        Text(sync),
        Text(message(lang, "narrow.hours", hours=hours[-160:] or none)),
        Text(),
        Text(hq, style="bold"),
    ]


def _plain_line(screen: _Screen, lang: Lang) -> str:
    up = sum(1 for info in screen.boxes if info.status is not None and info.status.up)
    value = next(
        (f"{a.box} {a.path} = {a.text}" for a in screen.answers if a.ok),
        message(lang, "values.none"),
    )
    return message(
        lang,
        "plain",
        elapsed=f"{screen.elapsed_s:.0f}",
        now=_local(screen.sim_now, "%Y-%m-%d %H:%M"),
        up=up,
        boxes=len(screen.boxes),
        value=value,
        sms_up=screen.sms_up,
        sms_down=screen.sms_down,
        lost=screen.sms_lost,
        readings=screen.hq_readings,
        hours=screen.hq_hours,
    )


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a run showed (for tests and callers): every count is at the end of the run."""

    readings_at_hq: int
    consumption_rows: int
    answers_ok: int
    sms_up: int
    sms_down: int
    simulated_hours: float
    consumption_text: str


@dataclass(frozen=True, slots=True)
class _Paths:
    """The files of a run, all under the work directory."""

    workdir: Path

    @property
    def db(self) -> Path:
        return self.workdir / "hq.sqlite3"

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory.toml"

    @property
    def config(self) -> Path:
        return self.workdir / "weshd.toml"

    @property
    def socket(self) -> Path:
        return self.workdir / "weshd.sock"

    @property
    def sync_dir(self) -> Path:
        return self.workdir / "sync"

    @property
    def log(self) -> Path:
        return self.workdir / "demo.log"

    def shown(self, path: Path) -> str:
        """Return the path as the user would type it: relative to the current folder if inside."""
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


@dataclass(frozen=True, slots=True)
class _Settings:
    seconds: float
    speed: float
    start: datetime
    free_ports: bool
    lang: Lang
    paths: _Paths


@contextlib.contextmanager
def _workdir(workdir: Path) -> Iterator[None]:
    """Hold the work directory for a run: locked, emptied, marked as the demo's.

    A directory that is not empty and has no marker was not made by the demo: refused.
    The marker is locked (``flock``) for the whole run, so a second demo on the same
    directory stops at once instead of wiping the first one's files.
    """
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"{workdir} is not a directory", where=str(workdir))
    marker = workdir / _MARKER
    if workdir.exists() and any(workdir.iterdir()) and not marker.exists():
        raise UsageError(
            f"refusing to wipe {workdir}: it is not empty and was not made by wesh demo",
            where=str(workdir),
        )
    workdir.mkdir(parents=True, exist_ok=True)
    with marker.open("a+", encoding="utf-8") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another wesh demo is running in {workdir}; wait for it to end",
                where=str(workdir),
            ) from None
        for entry in workdir.iterdir():
            if entry == marker:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        held.truncate(0)
        held.write("made by `wesh demo`; emptied at its next start\n")
        held.flush()
        yield


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Send every log record (wesh's from INFO, others' from WARNING) to ``path``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    wesh_logger = logging.getLogger("wesh")
    level = wesh_logger.level
    root.addHandler(handler)
    wesh_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        wesh_logger.setLevel(level)
        root.removeHandler(handler)
        handler.close()


async def _start_farm(
    settings: _Settings, clock: DemoClock, stack: contextlib.AsyncExitStack
) -> tuple[SimFarm, bool]:
    """Run the simulated boxes on the usual ports if free, else on free ports.

    Returns the farm and whether it got the ports asked for.
    """
    from wesh.sim import run_simulators  # noqa: PLC0415 - heavy imports, demo only

    attempts = (True,) if settings.free_ports else (False, True)
    for free in attempts:
        port = 0 if free else None  # 0: a free port; None: the simulator's usual one
        try:
            farm = await stack.enter_async_context(
                run_simulators(
                    count=len(_DWELLINGS) + 1,
                    flats=len(_DWELLINGS),  # one building: its boiler heats 4 dwellings
                    base_address=BASE_ADDRESS,
                    seed=SEED,
                    speed=settings.speed,
                    clock=clock,
                    http_port=port,
                    ftp_port=port,
                    m2m_port=port,
                )
            )
        except ConfigError:
            if free:
                raise
            continue
        return farm, not free
    raise AssertionError("unreachable")  # pragma: no cover


def _demo_boxes(farm: SimFarm) -> list[DemoBox]:
    boxes = []
    for handle in farm.boxes:
        described = handle.describe()
        if handle.m2m is None:  # pragma: no cover - the demo always runs M2M
            raise UsageError("the demo's boxes need their M2M server")
        boxes.append(
            DemoBox(
                ref=str(described["name"]),
                common=described["kind"] == "common",
                host=handle.http.host,
                mac=str(described["mac"]),
                firmware=str(described["firmware"]),
                http_port=handle.http.port,
                m2m_port=handle.m2m.port,
            )
        )
    return boxes


async def _stop_gateway(gateway: Gateway, task: asyncio.Task[None]) -> None:
    gateway.request_stop("demo over")
    await task


async def _wait_ready(gateway: Gateway, task: asyncio.Task[None], timeout_s: float = 30) -> None:
    ready = asyncio.create_task(gateway.ready.wait())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ready.cancel()
    if task in done:
        task.result()  # raises what stopped weshd
        raise WeshError("weshd stopped before it was ready")
    if ready not in done:
        raise WeshError(f"weshd was not ready within {timeout_s:g} s")


def _hq_counts(engine: Engine) -> tuple[int, int, datetime | None]:
    from sqlalchemy import func, select  # noqa: PLC0415

    from wesh.hq.db import translate_errors  # noqa: PLC0415
    from wesh.hq.models import Reading, RollupHour  # noqa: PLC0415

    with translate_errors(engine), engine.connect() as conn:
        readings = conn.scalar(select(func.count()).select_from(Reading)) or 0
        hours = (
            conn.scalar(
                select(func.count(func.distinct(RollupHour.hour_start))).where(
                    RollupHour.consumption.is_not(None)
                )
            )
            or 0
        )
        last = conn.scalar(select(func.max(Reading.at)))
    return int(readings), int(hours), last


async def _refresh(
    screen: _Screen,
    *,
    client: AsyncWeshClient,
    gateway: Gateway,
    pair: SyncPair,
    engine: Engine,
    lang: Lang,
) -> None:
    from wesh.client.cli import format_reading  # noqa: PLC0415

    try:
        screen.boxes = await client.boxes()
    except WeshError as exc:
        screen.answers = [_Answer("weshd", "boxes", str(exc), ok=False)]
        return
    answers = []
    for box_ref, path in WATCHED:
        try:
            value = await client.value(box_ref, path)
        except WeshError as exc:
            text = message(lang, "values.none") if "no_value" in str(exc) else exc.message
            answers.append(_Answer(box_ref, path, text, ok=False))
            continue
        screen.answers_ok += 1
        answers.append(
            _Answer(box_ref, path, format_reading(value, lang), ok=True, label=value.label)
        )
    screen.answers = answers
    screen.count_sms(pair.stats())
    with contextlib.suppress(WeshError):
        screen.queue_depth = gateway.store.queue_depth()
    screen.hq_readings, screen.hq_hours, screen.hq_last_hour = _hq_counts(engine)


async def _run_chain(settings: _Settings, console: Console) -> _Screen:
    """Set everything up, show it running for ``settings.seconds``, stop everything."""
    from wesh.client import AsyncWeshClient  # noqa: PLC0415 - heavy imports, demo only
    from wesh.gateway.config import load_config  # noqa: PLC0415
    from wesh.gateway.daemon import Gateway  # noqa: PLC0415
    from wesh.hq.db import make_engine  # noqa: PLC0415
    from wesh.hq.gateway_export import export_gateway_config  # noqa: PLC0415
    from wesh.hq.ingest import HqSink  # noqa: PLC0415
    from wesh.hq.inventory import import_inventory  # noqa: PLC0415
    from wesh.hq.migrate import migrate  # noqa: PLC0415
    from wesh.sync.agent import AgentConfig  # noqa: PLC0415
    from wesh.sync.loopback import FaultPlan  # noqa: PLC0415
    from wesh.sync.pair import HQ_PEER, quick_configs, run_sync_pair  # noqa: PLC0415
    from wesh.sync.schema import schema_from_config  # noqa: PLC0415

    lang, paths = settings.lang, settings.paths
    clock = DemoClock(settings.start, settings.speed)
    screen = _Screen(sim_now=settings.start)
    async with contextlib.AsyncExitStack() as stack:
        farm, usual_ports = await _start_farm(settings, clock, stack)
        boxes = _demo_boxes(farm)
        # 1. headquarters: schema, inventory, weshd.toml exported from it
        engine = make_engine(paths.db)
        stack.callback(engine.dispose)
        revision = migrate(engine)
        paths.inventory.write_text(inventory_toml(boxes), encoding="utf-8")
        imported = import_inventory(engine, paths.inventory)
        if not imported.ok:
            raise imported.errors[0]
        console.print(
            message(
                lang,
                "step.hq",
                db=paths.shown(paths.db),
                revision=revision,
                inventory=paths.shown(paths.inventory),
                records=imported.applied,
            ),
            highlight=False,
        )
        exported = export_gateway_config(engine, SITE)
        paths.config.write_text(with_local_settings(exported, boxes), encoding="utf-8")
        config = load_config(paths.config)
        # 2. the simulated boxes
        console.print(
            message(
                lang,
                "step.sim",
                count=len(boxes),
                seed=SEED,
                speed=f"{settings.speed:g}",
                start=_local(settings.start, "%Y-%m-%d %H:%M"),
            ),
            highlight=False,
        )
        for handle in farm.boxes:
            console.print(
                f"   {handle.describe()['name']:<9} {handle.url}  m2m={handle.m2m}",
                highlight=False,
            )
        if not usual_ports and not settings.free_ports:
            console.print(message(lang, "ports.moved"), highlight=False)
        # 3. weshd, on the exported file, on the simulated clock
        gateway = Gateway(config, config_path=paths.config, clock=clock.now, stats_interval_s=0)
        clock.begin()
        weshd = asyncio.create_task(gateway.run(), name="demo-weshd")
        stack.push_async_callback(_stop_gateway, gateway, weshd)
        await _wait_ready(gateway, weshd)
        channels = sum(len(b.channels) for b in config.boxes)
        console.print(
            message(
                lang,
                "step.weshd",
                config=paths.shown(paths.config),
                boxes=len(config.boxes),
                channels=channels,
                socket=paths.shown(paths.socket),
            ),
            highlight=False,
        )
        # 4. the sync: agent on weshd's store, receiver into HQ, over lossy SMS
        _, receiver_config = quick_configs(config.site.id)
        agent_config = AgentConfig(  # times in simulated seconds, except poll_s
            site=config.site.id,
            hq_peer=HQ_PEER,
            mode="hour",  # hourly indexes and means, as a real site sends them
            close_delay_s=120.0,
            upload_interval_s=0.0,  # each hour as soon as it closes (a site waits longer)
            sms_budget_per_day=200,
            retry_initial_s=600.0,
            retry_max_s=3600.0,
            fragment_retry_s=120.0,
            status_interval_s=6 * 3600.0,
            max_chars=160,
            poll_s=0.5,
            seed=SEED,
        )

        def boxes_up_down() -> tuple[int, int]:
            states = [s.up for s in gateway.status().values()]
            return sum(1 for up in states if up), sum(1 for up in states if up is False)

        pair = await stack.enter_async_context(
            run_sync_pair(
                queue=gateway.store,
                site=config.site.id,
                schema=schema_from_config(config),
                sink=HqSink(engine, now=clock.now),
                state_dir=paths.sync_dir,
                faults=FaultPlan(loss=SMS_LOSS, seed=SEED),
                agent_config=agent_config,
                receiver_config=receiver_config,
                clock=clock.now,
                boxes=boxes_up_down,
            )
        )
        console.print(message(lang, "step.sync", loss=round(SMS_LOSS * 100)), highlight=False)
        client = await stack.enter_async_context(AsyncWeshClient(socket=paths.socket))
        # 5. the screen
        await _show(
            screen,
            settings,
            console,
            client=client,
            gateway=gateway,
            pair=pair,
            engine=engine,
            clock=clock,
        )
    return screen


async def _show(
    screen: _Screen,
    settings: _Settings,
    console: Console,
    *,
    client: AsyncWeshClient,
    gateway: Gateway,
    pair: SyncPair,
    engine: Engine,
    clock: DemoClock,
) -> None:
    lang, paths = settings.lang, settings.paths
    started = time.monotonic()

    async def tick() -> None:
        screen.elapsed_s = min(time.monotonic() - started, settings.seconds)
        screen.sim_now = clock.now()
        await _refresh(screen, client=client, gateway=gateway, pair=pair, engine=engine, lang=lang)

    def render() -> RenderableType:
        return _render(
            screen,
            paths=paths,
            speed=settings.speed,
            total_s=settings.seconds,
            lang=lang,
            width=console.width,
        )

    if console.is_terminal:
        with Live(render(), console=console, refresh_per_second=4, transient=False) as live:
            while screen.elapsed_s < settings.seconds:
                await asyncio.sleep(_TICK_S)
                await tick()
                live.update(render())
        return
    next_line = 0.0
    while screen.elapsed_s < settings.seconds:
        await asyncio.sleep(_TICK_S)
        await tick()
        if screen.elapsed_s >= next_line or screen.elapsed_s >= settings.seconds:
            console.print(_plain_line(screen, lang), highlight=False, soft_wrap=True)
            next_line += _PLAIN_EVERY_S
    console.print(render())


def _consumption_args(settings: _Settings, first: date, last: date) -> list[str]:
    return [
        "--db",
        settings.paths.shown(settings.paths.db),
        "--building",
        BUILDING,
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
        "--by",
        "hour",
    ]


def _consumption(settings: _Settings, first: date, last: date) -> tuple[str, list[ConsumptionRow]]:
    """Run ``wesh hq consumption`` in-process; return its output, and the rows it shows."""
    import click  # noqa: PLC0415

    from wesh.hq.cli import consumption as consumption_command  # noqa: PLC0415
    from wesh.hq.db import make_engine  # noqa: PLC0415
    from wesh.hq.queries import consumption  # noqa: PLC0415

    args = [*_consumption_args(settings, first, last), "--lang", settings.lang]
    args[1] = str(settings.paths.db)
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            consumption_command.main(
                args=args, prog_name="wesh hq consumption", standalone_mode=False
            )
    except click.ClickException as exc:
        buffer.write(exc.format_message() + "\n")
    engine = make_engine(settings.paths.db)
    try:
        rows = consumption(
            engine,
            building=BUILDING,
            start=first,
            end=last + timedelta(days=1),
            by="hour",
        )
    finally:
        engine.dispose()
    return buffer.getvalue(), rows


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
        table.add_row(_local(start), *(cell(values.get((k, u, start)), u) for k, u in series))
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


def _paris_day(at: datetime) -> date:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    return at.astimezone(ZoneInfo(_PARIS_TZ)).date()


def _print_end(screen: _Screen, settings: _Settings, console: Console) -> DemoSummary:
    lang, paths = settings.lang, settings.paths
    first, last = _paris_day(settings.start), _paris_day(screen.sim_now)
    text, rows = _consumption(settings, first, last)
    hours = len({row.label for row in rows if row.value is not None})
    command = "wesh hq consumption " + " ".join(_consumption_args(settings, first, last))
    console.print()
    console.print(message(lang, "end.consumption"), style="bold", highlight=False)
    console.print(f"$ {command}", highlight=False, soft_wrap=True)
    first_hour = settings.start.replace(minute=0, second=0, microsecond=0)
    shown, dropped = trim_hours(text, first_hour, screen.sim_now)
    if max(map(len, shown.splitlines()), default=0) <= console.width:
        console.print(shown, markup=False, highlight=False, soft_wrap=True, end="")
        if dropped:
            console.print(message(lang, "end.trimmed", count=dropped), style="dim", highlight=False)
    else:  # the command's table would wrap: the same figures, narrower
        console.print(consumption_table(rows, first=first_hour, last=screen.sim_now, lang=lang))
        console.print(message(lang, "end.narrow", width=console.width), style="dim")
    if hours == 0:
        console.print(message(lang, "end.no_rows"), highlight=False)
    simulated_h = (screen.sim_now - settings.start).total_seconds() / 3600
    console.print(
        message(
            lang,
            "end.summary",
            readings=_number(screen.hq_readings, lang),
            sms_up=screen.sms_up,
            sms_down=screen.sms_down,
            hours=_number(simulated_h, lang, 1),
            answers=screen.answers_ok,
        ),
        highlight=False,
    )
    socket = paths.shown(paths.socket)
    config = paths.shown(paths.config)
    db = paths.shown(paths.db)
    tries = (
        (
            "try.consumption",
            f"wesh hq consumption --db {db} --building {BUILDING} "
            f"--from {first:%Y-%m} --to {last:%Y-%m} --by day",
        ),
        (
            "try.sim",
            f"wesh sim wes --count {len(_DWELLINGS) + 1} --flats {len(_DWELLINGS)} "
            f"--base-address {BASE_ADDRESS} --seed {SEED}",
        ),
        ("try.weshd", f"weshd --config {config}"),
        (
            "try.client",
            f"weshclient --socket {socket} ls; weshclient --socket {socket} watch B001-L01",
        ),
        ("try.tic", "wesh tic demo"),
    )
    console.print()
    console.print(message(lang, "end.try"), style="bold", highlight=False)
    for key, line in tries:
        console.print(f"  # {message(lang, key)}", style="dim", highlight=False)
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    return DemoSummary(
        readings_at_hq=screen.hq_readings,
        consumption_rows=hours,
        answers_ok=screen.answers_ok,
        sms_up=screen.sms_up,
        sms_down=screen.sms_down,
        simulated_hours=simulated_h,
        consumption_text=text,
    )


def run_demo(
    *,
    seconds: float | None = None,
    tic_seconds: float | None = None,
    speed: float = DEFAULT_SPEED,
    lang: Lang = "fr",
    workdir: Path | str = ".demo",
    free_ports: bool = False,
    start: datetime = SIM_START,
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo: the TIC part (``tic_seconds``, 0: none), then the chain for ``seconds``.

    ``workdir`` is wiped first (refused if it holds anything not made by the demo).
    The simulated boxes listen on 127.10.0.1 to 127.10.0.5, on the simulator's usual
    ports (as ``wesh sim wes --base-address 127.10.0.1``), or on free ports if those are
    taken or ``free_ports`` (tests). Returns what the run showed.

    Raises:
        UsageError: bad arguments or work directory.
        WeshError: a part of the chain failed to start.
    """
    from wesh.tic.demo import run_demo as run_tic_demo  # noqa: PLC0415

    console = console or Console()
    duration = DEFAULT_SECONDS if seconds is None else max(1.0, seconds)
    tic_duration = DEFAULT_TIC_SECONDS if tic_seconds is None else max(0.0, tic_seconds)
    if lang not in ("fr", "en"):
        raise UsageError(f"language must be 'fr' or 'en', not {lang!r}")
    paths = _Paths(Path(workdir).expanduser().absolute())
    settings = _Settings(duration, speed, start, free_ports, lang, paths)
    DemoClock(start, speed)  # checks start and speed before anything starts
    with _workdir(paths.workdir):
        if tic_duration > 0:
            run_tic_demo(seconds=tic_duration, console=console)
            console.print()
        with _logs_to(paths.log):
            screen = asyncio.run(_run_chain(settings, console))
        return _print_end(screen, settings, console)
