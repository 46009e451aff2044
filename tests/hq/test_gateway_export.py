"""wesh.hq.gateway_export: the inventory becomes a weshd TOML that weshd's loader accepts."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from wesh.errors import BadInputError, ConfigError
from wesh.gateway.config import load_config
from wesh.hq.db import make_engine, session_factory, transaction
from wesh.hq.gateway_export import (
    BoxExport,
    ChannelExport,
    SiteExport,
    check_gateway_toml,
    export_gateway_config,
    render_gateway_toml,
    toml_string,
)
from wesh.hq.generate import GenerateOptions, generate
from wesh.hq.migrate import migrate
from wesh.hq.models import Box, Channel, Dwelling, Gateway
from wesh.wes.m2m import normalise_mac


def _estate(engine: Engine, buildings: int = 2) -> None:
    generate(
        engine,
        GenerateOptions(end=date(2024, 6, 30), buildings=buildings, flats=3, days=1, raw_days=0),
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "weshd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_through_weshds_loader(engine: Engine, tmp_path: Path) -> None:
    _estate(engine)
    text = export_gateway_config(engine, "b002")
    config = load_config(_write(tmp_path, text))
    assert config.site.id == "b002"
    assert config.site.timezone == "Europe/Paris"
    with engine.connect() as conn:
        gateway = conn.execute(select(Gateway).where(Gateway.site_id == "b002")).one()
        assert config.site.name == gateway.name
        boxes = conn.execute(
            select(Box.id, Box.box_ref, Box.host, Box.mac, Box.driver, Dwelling.code)
            .join(Dwelling, Dwelling.id == Box.dwelling_id)
            .where(Box.gateway_id == gateway.id)
        ).all()
        assert sorted(b.id for b in config.boxes) == sorted(b.box_ref for b in boxes)
        for box in boxes:
            exported = config.box(box.box_ref)
            assert exported is not None
            assert exported.driver == box.driver == "wes"
            assert exported.serves == box.code
            assert exported.host == box.host
            assert exported.expected_mac == normalise_mac(box.mac)
            channels = conn.execute(
                select(Channel.path, Channel.kind, Channel.unit, Channel.is_index, Channel.label)
                .where(Channel.box_id == box.id)
                .order_by(Channel.id)
            ).all()
            assert [(c.path, c.meaning, c.unit, c.index, c.label) for c in exported.channels] == [
                tuple(row) for row in channels
            ]
    # the other building's boxes are not in this site's file
    assert all(box.id.startswith("b002-") for box in config.boxes)
    assert len(config.boxes) == 4


def test_unknown_site_names_the_known_ones(engine: Engine) -> None:
    _estate(engine)
    with pytest.raises(BadInputError, match=r"'b404'.*known: b001, b002"):
        export_gateway_config(engine, "b404")


def _edit(engine: Engine, statement: object) -> None:
    with transaction(engine) as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_an_inventory_weshd_would_refuse_is_a_config_error(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    _estate(engine, buildings=1)
    _edit(engine, update(Box).where(Box.box_ref == "b001-l02").values(host="10.0.0.11"))
    _edit(engine, update(Box).where(Box.box_ref == "b001-l01").values(host="10.0.0.11"))
    with pytest.raises(ConfigError, match=r"site 'b001'.*both use 10\.0\.0\.11:80"):
        export_gateway_config(engine, "b001")
    _edit(engine, update(Box).where(Box.box_ref == "b001-l02").values(host="not a host!"))
    with pytest.raises(ConfigError, match="not a host name or IP address"):
        export_gateway_config(engine, "b001")


def _sqlite(tmp_path: Path) -> Engine:
    return make_engine(tmp_path / "hq.sqlite3")


def test_tic_box_and_box_without_dwelling(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    migrate(engine)
    with session_factory(engine).begin() as session:
        gateway = Gateway(site_id="chaufferie-1", name=None)
        session.add(gateway)
        session.flush()
        box = Box(gateway_id=gateway.id, box_ref="tic-1", driver="tic", host="/dev/ttyUSB0")
        session.add(box)
        session.flush()
        session.add(
            Channel(
                box_id=box.id,
                path="tic.1.index.base",
                kind="electricity",
                unit="Wh",
                is_index=True,
                label='Compteur "chaufferie" \\ sous-sol',
            )
        )
    config = load_config(_write(tmp_path, export_gateway_config(engine, "chaufferie-1")))
    assert config.site.name == "chaufferie-1"  # no gateway or building name: the id
    (tic,) = config.boxes
    assert tic.driver == "tic" and tic.device == "/dev/ttyUSB0" and tic.host is None
    assert tic.serves == "tic-1"
    assert tic.channels[0].label == 'Compteur "chaufferie" \\ sous-sol'
    assert tic.channels[0].index is True


def test_a_tic_box_without_device_is_refused(tmp_path: Path) -> None:
    site = SiteExport(
        "s1", "Site", (BoxExport("tic-1", "tic", "pc", None, None, None, channels=()),)
    )
    text = render_gateway_toml(site)
    assert "device" not in text
    with pytest.raises(ConfigError, match="needs a serial device"):
        check_gateway_toml(text, "s1")


def test_render_is_plain_toml() -> None:
    channel = ChannelExport("temp.1", "temperature", "°C", False, "Séjour\tnord\n2e")
    box = BoxExport("b-1", "wes", "L01", "Logement 1", "10.0.0.1", "02B11C796806", (channel,))
    data = tomllib.loads(render_gateway_toml(SiteExport("s-1", "Résidence « Test »", (box,))))
    assert data["site"] == {"id": "s-1", "name": "Résidence « Test »", "timezone": "Europe/Paris"}
    assert data["boxes"][0]["channels"] == [
        {
            "path": "temp.1",
            "meaning": "temperature",
            "label": "Séjour\tnord\n2e",
            "unit": "°C",
            "index": False,
        }
    ]
    assert "password" not in data["boxes"][0]


@given(st.text())
def test_toml_string_round_trips_any_text(text: str) -> None:
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text
