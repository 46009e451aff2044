"""Write a building gateway's weshd TOML from the HQ inventory (``wesh hq export-gateway-config``).

The inventory is the source of truth: what headquarters knows about a site (its gateway,
boxes and channels) becomes the file weshd runs with, so the two never disagree::

    gateway (site_id, name)             ──▶ [site] id, name, timezone = "Europe/Paris"
    box (box_ref, driver, host, mac)    ──▶ [[boxes]] id, driver, host | device, expected_mac
        dwelling (code, label)          ──▶           serves, label
        channel (path, kind, unit,      ──▶   [[boxes.channels]] path, meaning, unit,
                 is_index, label)                                index, label

* A TIC box (``driver = "tic"``) keeps its serial device (``/dev/ttyUSB0`` or a pyserial
  URL) in the inventory's ``host`` column.
* What the inventory does not hold is left to weshd's defaults (ports, account, poll
  interval, ``state_dir``); passwords are never exported: the file says where to put one.
* The text is checked with :func:`wesh.gateway.config.config_from_text` before it is
  returned: an inventory that would give a file weshd refuses raises
  :class:`~wesh.errors.ConfigError` naming the box and the key.

:func:`load_site` reads the inventory (I/O); :func:`render_gateway_toml` is pure.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, select

from wesh.errors import BadInputError, ConfigError
from wesh.gateway.config import ConfigValidationError, GatewayConfig, config_from_text
from wesh.hq.db import translate_errors
from wesh.hq.models import Box, Building, Channel, Dwelling, Gateway

__all__ = [
    "BoxExport",
    "ChannelExport",
    "SiteExport",
    "check_gateway_toml",
    "export_gateway_config",
    "load_site",
    "render_gateway_toml",
    "toml_string",
]

TIMEZONE: Final = "Europe/Paris"


@dataclass(frozen=True, slots=True)
class ChannelExport:
    """One channel as the inventory knows it."""

    path: str
    meaning: str
    unit: str | None
    is_index: bool
    label: str | None


@dataclass(frozen=True, slots=True)
class BoxExport:
    """One box of the site, with the dwelling it serves and its channels."""

    box_ref: str
    driver: str
    serves: str
    label: str | None
    host: str | None
    mac: str | None
    channels: tuple[ChannelExport, ...]


@dataclass(frozen=True, slots=True)
class SiteExport:
    """A site (one gateway) and its boxes."""

    site_id: str
    name: str
    boxes: tuple[BoxExport, ...]


# ----------------------------------------------------------------------------- reading


def load_site(engine: Engine, site_id: str) -> SiteExport:
    """Read the gateway ``site_id`` and its boxes and channels from the inventory.

    Raises:
        BadInputError: no gateway has that site id.
    """
    with translate_errors(engine), engine.connect() as conn:
        gateway = conn.execute(
            select(Gateway.id, Gateway.name, Building.name.label("building"))
            .outerjoin(Building, Building.id == Gateway.building_id)
            .where(Gateway.site_id == site_id)
        ).one_or_none()
        if gateway is None:
            known = conn.execute(select(Gateway.site_id).order_by(Gateway.site_id).limit(6))
            listed = ", ".join(row[0] for row in known) or "none"
            raise BadInputError(
                f"no gateway with site id {site_id!r} in the inventory (known: {listed})"
            )
        boxes = conn.execute(
            select(
                Box.id, Box.box_ref, Box.driver, Box.host, Box.mac, Dwelling.code, Dwelling.label
            )
            .outerjoin(Dwelling, Dwelling.id == Box.dwelling_id)
            .where(Box.gateway_id == gateway.id)
            .order_by(Box.box_ref)
        ).all()
        channels: dict[int, list[ChannelExport]] = {}
        rows = conn.execute(
            select(
                Channel.box_id,
                Channel.path,
                Channel.kind,
                Channel.unit,
                Channel.is_index,
                Channel.label,
            )
            .join(Box, Box.id == Channel.box_id)
            .where(Box.gateway_id == gateway.id)
            .order_by(Channel.box_id, Channel.id)
        )
        for box_id, path, kind, unit, is_index, label in rows:
            channels.setdefault(box_id, []).append(
                ChannelExport(path, kind, unit, bool(is_index), label)
            )
    return SiteExport(
        site_id=site_id,
        name=gateway.name or gateway.building or site_id,
        boxes=tuple(
            BoxExport(
                box_ref=box.box_ref,
                driver=box.driver,
                serves=box.code or box.box_ref,
                label=box.label,
                host=box.host,
                mac=box.mac,
                channels=tuple(channels.get(box.id, ())),
            )
            for box in boxes
        ),
    )


# ----------------------------------------------------------------------------- rendering


def toml_string(value: str) -> str:
    """Return ``value`` as a TOML basic string (quotes, backslashes, controls escaped)."""
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _box_lines(box: BoxExport) -> list[str]:
    lines = [
        "",
        f"# {'-' * 75} {box.serves}",
        "",
        "[[boxes]]",
        f"id = {toml_string(box.box_ref)}",
    ]
    if box.label:
        lines.append(f"label = {toml_string(box.label[:100])}")
    lines += [f"driver = {toml_string(box.driver)}", f"serves = {toml_string(box.serves)}"]
    if box.driver == "tic":
        if box.host:
            lines.append(f"device = {toml_string(box.host)}")
    else:
        if box.host:
            lines.append(f"host = {toml_string(box.host)}")
        if box.mac:
            lines.append(f"expected_mac = {toml_string(box.mac)}")
        lines.append('# password = "..."                 # the box password, if not the default')
    for channel in box.channels:
        lines += [
            "",
            "[[boxes.channels]]",
            f"path = {toml_string(channel.path)}",
            f"meaning = {toml_string(channel.meaning)}",
        ]
        if channel.label:
            lines.append(f"label = {toml_string(channel.label[:100])}")
        if channel.unit:
            lines.append(f"unit = {toml_string(channel.unit)}")
        lines.append(f"index = {'true' if channel.is_index else 'false'}")
    return lines


def render_gateway_toml(site: SiteExport) -> str:
    """Return the weshd configuration text of ``site`` (pure; not validated)."""
    lines = [
        f"# weshd.toml of site {site.site_id}, written by `wesh hq export-gateway-config` from",
        "# the headquarters inventory. Change the inventory and export again rather than",
        "# editing this file. Keys not written here take weshd's defaults",
        "# (docs/weshd-config.md).",
        "",
        "[site]",
        f"id = {toml_string(site.site_id)}",
        f"name = {toml_string(site.name[:200])}",
        f"timezone = {toml_string(TIMEZONE)}",
    ]
    for box in site.boxes:
        lines += _box_lines(box)
    return "\n".join(lines) + "\n"


def check_gateway_toml(text: str, site_id: str) -> GatewayConfig:
    """Validate an exported text as weshd would; ``ConfigError`` says what in the inventory."""
    try:
        return config_from_text(text, source=f"{site_id}.toml", base_dir=Path("/"))
    except ConfigValidationError as exc:
        problems = "; ".join(
            _inventory_terms(problem.message, text) for problem in exc.problems[:5]
        )
        raise ConfigError(
            f"the inventory of site {site_id!r} gives a configuration weshd would refuse: "
            f"{problems} (fix the inventory and export again)",
            where=site_id,
        ) from exc


_BOX_KEY: Final = re.compile(r"^boxes\[(\d+)\]\.?")
_SECTION_NOTE: Final = re.compile(r" \(in the section starting at line \d+\)")


def _inventory_terms(problem: str, text: str) -> str:
    """Say a problem of the generated file in the inventory's terms (the box, not boxes[3])."""
    problem = _SECTION_NOTE.sub("", problem)
    match = _BOX_KEY.match(problem)
    if match is None:
        return problem
    try:
        boxes = tomllib.loads(text).get("boxes", [])
        box_ref = boxes[int(match.group(1))]["id"]
    except (tomllib.TOMLDecodeError, IndexError, KeyError, TypeError):
        return problem
    return f"box {box_ref!r}: {problem[match.end() :]}"


def export_gateway_config(engine: Engine, site_id: str) -> str:
    """Return the checked weshd TOML of site ``site_id`` from the inventory.

    Raises:
        BadInputError: unknown site.
        ConfigError: the inventory would give a configuration weshd refuses.
    """
    text = render_gateway_toml(load_site(engine, site_id))
    check_gateway_toml(text, site_id)
    return text
