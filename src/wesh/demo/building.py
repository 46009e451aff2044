"""The demo's building, as headquarters' inventory and weshd's configuration describe it.

Pure text, no I/O: :func:`inventory_toml` writes the inventory that ``wesh demo``
imports (one agency, residence and building, a common area and four dwellings with their
tenancies, the gateway, five boxes and their channels); :func:`with_local_settings` adds
to the weshd.toml exported from that inventory what the inventory does not hold (ports,
poll interval, state directory, socket), so that weshd runs with exactly one file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from wesh.errors import ConfigError
from wesh.hq.gateway_export import toml_string

__all__ = [
    "ALERT_CONTACT",
    "ALERT_SENDER",
    "BASE_ADDRESS",
    "BOX_COUNT",
    "BUILDING",
    "DWELLING_COUNT",
    "POLL_INTERVAL_S",
    "SEED",
    "SITE",
    "WATCHED",
    "DemoBox",
    "alerts_toml",
    "inventory_toml",
    "with_local_settings",
]

SITE: Final = "b001"
BUILDING: Final = "B001"
SEED: Final = 1
BASE_ADDRESS: Final = "127.10.0.1"  # box i on 127.10.0.(1+i), as `wesh sim wes --base-address`
WESHD_HTTP_PORT: Final = 80  # weshd's defaults (docs/weshd-config.md)
WESHD_M2M_PORT: Final = 1500
POLL_INTERVAL_S: Final = 1.0  # wall seconds between two polls of a box

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
DWELLING_COUNT: Final = len(_DWELLINGS)
BOX_COUNT: Final = DWELLING_COUNT + 1  # and the common areas'

#: Who the demo's alert mails go to (the residence's manager).
ALERT_CONTACT: Final = "gestionnaire.tilleuls@bailleur.example"
ALERT_SENDER: Final = "alertes@siege.bailleur.example"

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
    exported: str,
    boxes: Sequence[DemoBox],
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    backoff_s: tuple[float, float] = (2.0, 10.0),
) -> str:
    """Add to an exported weshd.toml what the inventory does not hold (pure).

    The state directory (the file's own folder) and the API socket in it, a quick
    ``[poll]`` policy, and for each box its ports (when not weshd's defaults), its poll
    interval,
    ``only_configured`` (the inventory's channels only: what headquarters expects) and,
    for the common box, the gas counter's unit (``pulse_units``: the box counts m³).
    ``backoff_s`` is the first and longest wait (wall seconds) before polling a box that
    stopped answering.

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
        f"backoff_initial_s = {backoff_s[0]:g}",
        f"backoff_max_s = {backoff_s[1]:g}",
    ]
    return "\n".join(out) + "\n"


def alerts_toml(*, smtp_port: int, lang: str = "fr", evaluate_every: str = "10m") -> str:
    """Return the demo's alert configuration (``wesh hq alerts --config``), pure text.

    The rules keep their defaults; mails go to the residence's manager through the
    capturing SMTP server the demo runs on loopback (``smtp_port``), in clear.
    """
    return "\n".join(
        [
            "# The demo's alert configuration (wesh hq alerts ... --config .demo/alerts.toml).",
            "# Every rule keeps its default settings (docs/alerts-rules.md).",
            f"lang = {toml_string(lang)}",
            'base_url = "http://localhost:8000"',
            f"sender = {toml_string(ALERT_SENDER)}",
            f"evaluate_every = {toml_string(evaluate_every)}",
            "",
            "[smtp]  # local: the capturing SMTP server the demo runs on loopback",
            'host = "127.0.0.1"',
            f"port = {smtp_port}",
            'starttls = "never"',
            "",
            "[[contacts]]",
            'scope = "residence:R01"',
            'name = "Gestionnaire Les Tilleuls"',
            f"emails = [{toml_string(ALERT_CONTACT)}]",
            "",
        ]
    )
