"""`wesh demo`: the whole chain on simulated devices, and its pure parts.

The chain test runs everything for real (simulated WES boxes on loopback, weshd, the
sync over loopback SMS, the HQ SQLite store), accelerated, for about 15 seconds.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from wesh.cli import cli
from wesh.demo import (
    SIM_START,
    DemoBox,
    DemoClock,
    consumption_table,
    inventory_toml,
    run_demo,
    trim_hours,
    with_local_settings,
)
from wesh.demo.chain import hold_workdir
from wesh.demo.screen import MESSAGES
from wesh.errors import ConfigError, UsageError
from wesh.gateway.config import config_from_text, load_config
from wesh.hq.db import make_engine
from wesh.hq.gateway_export import export_gateway_config
from wesh.hq.inventory import apply_inventory, parse_inventory
from wesh.hq.migrate import migrate
from wesh.hq.queries import ConsumptionRow
from wesh.sync.schema import schema_from_config

BOXES = [
    DemoBox("B001-PC", True, "127.10.0.1", "02B11C796805", "V0.84A10", 8080, 1500),
    *(
        DemoBox(
            f"B001-L0{i}", False, f"127.10.0.{i + 1}", f"02B11C79680{5 + i}", "V0.84A10", 80, 1500
        )
        for i in range(1, 5)
    ),
]


def test_the_chain_end_to_end(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    workdir = tmp_path / "demo"
    summary = run_demo(
        seconds=14,
        tic_seconds=0.3,
        speed=900,
        workdir=workdir,
        free_ports=True,
        console=console,
    )
    text = out.getvalue()
    # the TIC part came first, briefly
    assert "compteurs TIC décodés en direct" in text
    assert text.index("compteurs TIC décodés en direct") < text.index("① Siège")
    # HQ: readings arrived through the sync, and the consumption table has rows
    assert summary.readings_at_hq > 0
    assert summary.consumption_rows >= 1
    assert "Consommation de bâtiment B001" in text
    assert "$ wesh hq consumption --db " in text
    rows = re.findall(r"│ 2025-01-15T(\d\d):00\+01:00 │\s+(\d+,\d)", text)
    assert 1 <= len(rows) <= summary.consumption_rows
    assert all(hour >= "06" for hour, _ in rows)  # 05:00 is the baseline hour
    # weshclient's library answered, as weshclient would print it
    assert summary.answers_ok > 0
    assert re.search(r"B001-PC pince\.1\.voltage\s+23\d V \(il y a \d+ (s|min)\)", text)
    # SMS were counted, both ways, per simulated hour
    assert summary.sms_up > 0 and summary.sms_down > 0
    assert "SMS bâtiment → siège" in text and "SMS par heure simulée" in text
    assert f"{summary.sms_up} SMS envoyés" in text
    assert 2.5 < summary.simulated_hours < 4.5
    # the files a user explores afterwards; weshd ran with exactly the exported file
    config = load_config(workdir / "weshd.toml")
    assert sorted(box.id for box in config.boxes) == sorted(b.ref for b in BOXES)
    assert all(str(box.host).startswith("127.10.0.") for box in config.boxes)
    assert (workdir / "inventory.toml").is_file()
    assert (workdir / "hq.sqlite3").is_file()
    assert "weshd --config " in text and "weshclient --socket " in text
    # everything was stopped: the API socket is gone
    assert not (workdir / "weshd.sock").exists()


def test_inventory_and_exported_weshd_config_agree(tmp_path: Path) -> None:
    records, errors = parse_inventory(inventory_toml(BOXES), source="inventory.toml", fmt="toml")
    assert errors == []
    engine = make_engine(tmp_path / "hq.sqlite3")
    try:
        migrate(engine)
        result = apply_inventory(engine, records)
        assert result.ok, result.errors
        assert result.created["dwelling"] == 5 and result.created["tenancy"] == 5
        exported = export_gateway_config(engine, "b001")
    finally:
        engine.dispose()
    text = with_local_settings(exported, BOXES, poll_interval_s=2)
    assert text.startswith(exported.split("[site]")[0])  # the export's header comes first
    config = config_from_text(text, source="weshd.toml", base_dir=tmp_path)
    assert config.site.id == "b001"
    assert config.api.socket == tmp_path / "weshd.sock"
    assert config.store_path == tmp_path / "weshd.sqlite3"
    by_id = {box.id: box for box in config.boxes}
    common, dwelling = by_id["B001-PC"], by_id["B001-L01"]
    assert (common.host, common.port, common.m2m_port) == ("127.10.0.1", 8080, 1500)
    assert dwelling.port == 80  # weshd's default: not written
    assert common.expected_mac == "02B11C796805"
    assert common.pulse_units == {1: "m3"} and dwelling.pulse_units == {}
    assert all(box.only_configured and box.poll_interval_s == 2 for box in config.boxes)
    assert dwelling.serves == "B001-L01"
    meanings = {channel.path: channel.meaning for channel in dwelling.channels}
    assert meanings["impulsion.1.index"] == "cold_water"
    assert meanings["temp.2"] == "humidity"
    schema = schema_from_config(config)
    assert len(schema) == 9 + 4 * 8
    gas = schema[schema.index_of("B001-PC", "impulsion.1.index") or 0]
    assert (gas.kind, gas.unit) == ("index", "L")


def test_local_settings_need_the_same_boxes_as_the_export() -> None:
    exported = '[site]\nid = "b001"\nname = "B"\n\n[[boxes]]\nid = "B001-L09"\nhost = "h"\n'
    with pytest.raises(ConfigError, match="B001-L09"):
        with_local_settings(exported, BOXES)
    exported = '[site]\nid = "b001"\nname = "B"\n\n[[boxes]]\nid = "B001-PC"\nhost = "h"\n'
    with pytest.raises(ConfigError, match="lacks the box"):
        with_local_settings(exported, BOXES)


def test_trim_hours_keeps_the_demo_hours_and_the_frame() -> None:
    text = (
        "Title\n┏━┓\n"
        "│ 2025-01-15T04:00+01:00 │ — │\n"
        "│ 2025-01-15T06:00+01:00 │ 1,0 │\n"
        "│ 2025-01-15T09:00+01:00 │ — │\n"
        "│ Total │ 1,0 │\n└─┘\n"
    )
    first = datetime(2025, 1, 15, 5, tzinfo=UTC)
    shown, dropped = trim_hours(text, first, first + timedelta(hours=2))
    assert dropped == 2
    assert shown == "Title\n┏━┓\n│ 2025-01-15T06:00+01:00 │ 1,0 │\n│ Total │ 1,0 │\n└─┘\n"


def test_the_narrow_consumption_table_has_the_commands_figures() -> None:
    first = datetime(2025, 1, 15, 5, tzinfo=UTC)  # 06:00 in Paris
    rows = [
        ConsumptionRow(kind, unit, "label", start, start + timedelta(hours=1), value, 4)
        for hour in range(4)
        if (start := first + timedelta(hours=hour))
        for kind, unit, value in (
            ("heat", "Wh", None if hour == 1 else 4200.0),
            ("electricity", "Wh", 3600.0),
            ("gas", "L", 700.0),
        )
    ]
    out = io.StringIO()
    table = consumption_table(rows, first=first, last=first + timedelta(hours=2), lang="fr")
    Console(file=out, width=80, color_system=None).print(table)
    lines = out.getvalue().splitlines()
    assert "électricité" in lines[0] and "gaz" in lines[0] and "chauffage" in lines[0]
    assert lines[0].index("électricité") < lines[0].index("gaz") < lines[0].index("chauffage")
    assert "(kWh)" in lines[1] and "(m³)" in lines[1]
    body = [line.split() for line in lines if line.strip()[:2] in ("06", "07", "08", "09", "To")]
    assert body == [
        ["06:00", "3,6", "0,70", "4,2"],
        ["07:00", "3,6", "0,70", "—"],
        ["08:00", "3,6", "0,70", "4,2"],
        ["Total", "10,8", "2,10", "8,4"],
    ]


def test_the_clock_stands_still_until_it_begins() -> None:
    now = [100.0]
    clock = DemoClock(SIM_START, 360, monotonic=lambda: now[0])
    now[0] += 5
    assert clock.now() == SIM_START
    clock.begin()
    now[0] += 10
    assert clock.now() == SIM_START + timedelta(hours=1)
    assert clock.timestamp() == SIM_START.timestamp() + 3600
    with pytest.raises(UsageError):
        DemoClock(SIM_START.replace(tzinfo=None), 1)
    with pytest.raises(UsageError):
        DemoClock(SIM_START, 0)


def test_the_work_directory_is_only_wiped_when_it_is_the_demos(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="refusing to wipe"):
        run_demo(seconds=1, tic_seconds=0, workdir=foreign, free_ports=True)
    assert (foreign / "thesis.tex").read_text() == "precious"

    ours = tmp_path / "demo"
    with hold_workdir(ours):
        (ours / "old.txt").write_text("from the last run")
        (ours / "sync").mkdir()
        with pytest.raises(UsageError, match="another wesh demo is running"), hold_workdir(ours):
            pass
        assert (ours / "old.txt").exists()  # the running demo's files are untouched
    with hold_workdir(ours):
        assert sorted(p.name for p in ours.iterdir()) == [".wesh-demo"]


def test_every_message_speaks_both_languages() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == {"fr", "en"}, key
        assert all(texts.values()), key


def test_demo_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    result = CliRunner().invoke(
        cli, ["demo", "--seconds", "1", "--tic-seconds", "0"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "① Headquarters: database .demo/hq.sqlite3 created" in result.output
    assert "Try next, by hand" in result.output
    assert (tmp_path / ".demo" / "weshd.toml").is_file()
    bad = CliRunner().invoke(cli, ["demo", "--speed", "0"])
    assert bad.exit_code == 2
