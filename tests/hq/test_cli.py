"""``wesh hq``: every command through click's CliRunner (and once through ``wesh``)."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from wesh.cli import cli as wesh_cli
from wesh.gateway.config import load_config
from wesh.hq.cli import format_quantity, hq, parse_period_bound
from wesh.hq.cli_common import dump_json, pick_lang
from wesh.hq.db import make_engine
from wesh.hq.ingest import ingest
from wesh.hq.migrate import head_revision
from wesh.hq.models import Box, Building, Dwelling, Reading, RollupDay, RollupHour, Tenancy
from wesh.hq.queries import consumption
from wesh.hq.timeutil import paris_day
from wesh.sync.sink import SyncReading


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(hq, list(args), env={"LANG": "fr_FR.UTF-8", **(env or {})})


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "hq.sqlite3")


@pytest.fixture
def estate(db: str) -> str:
    """A small generated estate: 2 buildings of 3 dwellings, 3 days, the last one hourly."""
    result = run(
        "generate", "--db", db, "--buildings", "2", "--flats", "3", "--days", "3",
        "--raw-days", "1", "--end", "2024-10-31",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return db


# ----------------------------------------------------------------------------- pure helpers


def test_quantities_in_both_languages() -> None:
    assert format_quantity(1234567.891, "fr", 2) == "1 234 567,89"
    assert format_quantity(1234567.891, "en", 2) == "1,234,567.89"
    assert format_quantity(12, "fr") == "12"


def test_period_bounds() -> None:
    assert parse_period_bound("2024-03-15", end=False) == date(2024, 3, 15)
    assert parse_period_bound("2024-03-15", end=True) == date(2024, 3, 15)
    assert parse_period_bound("2024-02", end=False) == date(2024, 2, 1)
    assert parse_period_bound("2024-02", end=True) == date(2024, 2, 29)
    assert parse_period_bound("2024-12", end=True) == date(2024, 12, 31)
    for bad in ("2024", "2024-13", "demain", "2024-02-30"):
        with pytest.raises(ValueError):
            parse_period_bound(bad, end=False)


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("en", "fr_FR.UTF-8", "en"),
        ("fr", "en_GB.UTF-8", "fr"),
        (None, "en_US.UTF-8", "en"),
        (None, "EN", "en"),
        (None, "fr_FR.UTF-8", "fr"),
        (None, "C.UTF-8", "fr"),
        (None, None, "fr"),
    ],
)
def test_language_of_both_groups(option: str | None, env: str | None, expected: str) -> None:
    assert pick_lang(option, env) == expected


def test_json_of_dates_dataclasses_and_sets() -> None:
    @dataclass(frozen=True)
    class Point:
        at: datetime
        tags: tuple[str, ...]

    data = {
        "day": date(2024, 3, 1),
        "point": Point(datetime(2024, 3, 1, 12, tzinfo=UTC), ("a",)),
        "set": frozenset({"b"}),
        "word": "é",
    }
    assert json.loads(dump_json(data)) == {
        "day": "2024-03-01",
        "point": {"at": "2024-03-01T12:00:00+00:00", "tags": ["a"]},
        "set": ["b"],
        "word": "é",
    }
    assert "é" in dump_json(data)  # not escaped
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        dump_json({"what": object()})


# ----------------------------------------------------------------------------- init


def test_init_creates_then_finds_nothing_to_do(db: str) -> None:
    first = run("init", "--db", db)
    assert first.exit_code == 0, first.output
    assert f"prête (révision du schéma {head_revision()})" in first.output
    again = run("init", "--db", db, "--lang", "en")
    assert again.exit_code == 0
    assert f"ready (schema revision {head_revision()})" in again.output
    assert Path(db).exists()


def test_init_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "from-env.sqlite3"
    result = run("init", env={"WESH_HQ_DB": str(path), "LANG": "en_GB.UTF-8"})
    assert result.exit_code == 0, result.output
    assert "ready" in result.output and path.exists()


def test_a_bad_url_is_one_line_in_french(db: str) -> None:
    result = run("init", "--db", "oracle://scott@db/x")
    assert result.exit_code == 1
    assert result.output.startswith("wesh hq : erreur : unsupported database 'oracle'")
    assert result.output.count("\n") == 1


def test_an_unreachable_server_does_not_show_its_password() -> None:
    result = run("init", "--db", "postgresql://wesh:s3cret@127.0.0.1:1/wesh", "--lang", "en")
    assert result.exit_code == 1
    assert result.output.startswith("wesh hq: error: cannot connect")
    assert "s3cret" not in result.output


# ----------------------------------------------------------------------------- generate


def test_generate_reports_and_fills(estate: str) -> None:
    engine = make_engine(estate)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Building)).scalar_one() == 2
            assert conn.execute(select(func.count()).select_from(Box)).scalar_one() == 8
            days = conn.execute(select(func.count()).select_from(RollupDay)).scalar_one()
    finally:
        engine.dispose()
    assert days == 2 * 29 * 3


def test_generate_summary_in_english(db: str) -> None:
    result = run(
        "generate", "--db", db, "--buildings", "1", "--flats", "1", "--days", "2",
        "--raw-days", "1", "--end", "2024-06-30", "--lang", "en",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Generating 1 buildings, 2024-06-29 to 2024-06-30" in result.output
    assert "Done in" in result.output
    assert (
        "1 buildings, 2 boxes, 15 channels; 368 readings, 360 hourly rollups, 30 daily"
        in result.output
    )


def test_generate_twice_is_refused(estate: str) -> None:
    result = run(
        "generate", "--db", estate, "--buildings", "1", "--flats", "1", "--days", "1",
        "--raw-days", "0", "--end", "2024-10-31",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "erreur : the database already holds 'R01'" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--raw-days", "40", "--days", "30"], "raw days must be 0..30"),
        (["--buildings", "0"], "buildings must be 1..9999"),
        (["--end", "31/12/2024"], "date invalide '31/12/2024'"),
    ],
)
def test_generate_refuses_impossible_options(db: str, args: list[str], expected: str) -> None:
    result = run("generate", "--db", db, *args)
    assert result.exit_code != 0
    assert expected in result.output


# ----------------------------------------------------------------------------- export


def test_export_to_stdout_and_to_a_file(estate: str, tmp_path: Path) -> None:
    result = run("export-gateway-config", "b001", "--db", estate)
    assert result.exit_code == 0, result.output
    data = tomllib.loads(result.output)
    assert data["site"]["id"] == "b001"
    assert [box["id"] for box in data["boxes"]] == ["b001-l01", "b001-l02", "b001-l03", "b001-pc"]
    output = tmp_path / "etc" / "weshd.toml"
    output.parent.mkdir()
    written = run("export-gateway-config", "b002", "--db", estate, "-o", str(output))
    assert written.exit_code == 0, written.output
    assert "Configuration de b002 écrite dans" in written.output
    assert "(4 boîtiers)" in written.output
    assert tomllib.loads(output.read_text(encoding="utf-8"))["site"]["id"] == "b002"
    assert not list(output.parent.glob(".*.tmp"))


def test_export_of_an_unknown_site(estate: str) -> None:
    result = run("export-gateway-config", "zz9", "--db", estate, "--lang", "en")
    assert result.exit_code == 1
    assert "wesh hq: error: no gateway with site id 'zz9'" in result.output


def test_export_into_a_missing_directory(estate: str, tmp_path: Path) -> None:
    result = run(
        "export-gateway-config", "b001", "--db", estate, "-o", str(tmp_path / "no" / "x.toml")
    )
    assert result.exit_code == 1
    assert "cannot write" in result.output


# ----------------------------------------------------------------------------- import

INVENTORIES = Path(__file__).parent.parent / "fixtures" / "hq" / "inventory"
INVENTORY_FILES = sorted(p for p in INVENTORIES.iterdir() if not p.name.endswith(".json"))


@pytest.mark.parametrize("path", INVENTORY_FILES, ids=[p.name for p in INVENTORY_FILES])
def test_import_every_fixture(db: str, path: Path) -> None:
    """The CLI reports what the fixture's expectations say, line by line, and its exit status."""
    expect = json.loads(path.with_name(path.name + ".expect.json").read_text(encoding="utf-8"))
    result = run("import", str(path), "--db", db, "--json")
    if "raises" in expect:
        assert result.exit_code == 1
        assert result.output.startswith("wesh hq : erreur : ")
        assert expect["raises"]["contains"] in result.output
        assert f"{path.name}:{expect['raises']['line']}" in result.output
        return
    assert result.exit_code == (1 if expect["errors"] else 0), result.output
    data = json.loads(result.output)
    assert data["created"] == expect["created"]
    for got, wanted in zip(data["errors"], expect["errors"], strict=True):
        assert got["where"].endswith(f"{path.name}:{wanted['line']}")
        assert wanted["contains"] in got["message"]


def test_import_text_report_then_again_unchanged(db: str) -> None:
    path = INVENTORIES / "estate.csv"
    first = run("import", str(path), "--db", db)
    assert first.exit_code == 0, first.output
    assert "estate.csv : 22 enregistrement(s) appliqué(s) (22 créé(s)" in first.output
    assert "  logement : 3 créé(s), 0 modifié(s), 0 inchangé(s)" in first.output
    again = run("import", str(path), "--db", db, "--lang", "en")
    assert again.exit_code == 0, again.output
    assert "estate.csv: 22 record(s) applied (0 created, 0 updated, 22 unchanged)." in again.output
    assert "  dwelling: 0 created, 0 updated, 3 unchanged" in again.output


def test_import_reports_bad_lines_and_keeps_good_ones(db: str) -> None:
    result = CliRunner().invoke(
        hq, ["import", str(INVENTORIES / "bad-lines.csv"), "--db", db], env={"LANG": "fr_FR"}
    )
    assert result.exit_code == 1
    assert "7 enregistrement(s) appliqué(s)" in result.stdout
    assert "11 enregistrement(s) refusé(s), les autres sont appliqués :" in result.stderr
    assert "  bad-lines.csv:5: dwelling.surface_m2: must be positive, not -3" in result.stderr
    assert "  bad-lines.csv:17: 15 cells for 14 columns" in result.stderr
    # the box created without a host cannot be polled: the export says so, in its terms
    exported = run("export-gateway-config", "site-b1", "--db", db)
    assert exported.exit_code == 1
    assert (
        "gives a configuration weshd would refuse: box 'dw-04': host: a WES box needs a host"
        in (exported.output)
    )


def test_import_then_export_gives_a_file_weshd_loads(db: str, tmp_path: Path) -> None:
    assert run("import", str(INVENTORIES / "estate.toml"), "--db", db).exit_code == 0
    output = tmp_path / "til-a.toml"
    result = run("export-gateway-config", "til-a", "--db", db, "-o", str(output))
    assert result.exit_code == 0, result.output
    config = load_config(output)
    assert config.site.id == "til-a"
    assert sorted(box.id for box in config.boxes) == ["dw-01", "dw-02", "pc"]
    dw01 = config.box("dw-01")
    assert dw01 is not None and dw01.serves == "TIL-A-01"
    assert [c.path for c in dw01.channels] == ["tic.1.index.base", "impulsion.1.index", "temp.1"]


def test_import_of_a_missing_file(db: str, tmp_path: Path) -> None:
    result = run("import", str(tmp_path / "absent.csv"), "--db", db, "--lang", "en")
    assert result.exit_code == 1
    assert result.output.startswith("wesh hq: error: ")


# ----------------------------------------------------------------------------- wesh


def test_the_group_is_part_of_wesh(db: str) -> None:
    result = CliRunner().invoke(wesh_cli, ["hq", "init", "--db", db, "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "ready" in result.output


# ----------------------------------------------------------------------------- consumption


def _consumption(db: str, *args: str) -> Result:
    return run("consumption", "--db", db, *args)


def test_consumption_json_is_the_query_answer(estate: str) -> None:
    result = _consumption(
        estate, "--building", "B001", "--from", "2024-10-29", "--to", "2024-10-31", "--by", "day",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {k: data[k] for k in ("building", "from", "to", "by", "kind")} == {
        "building": "B001",
        "from": "2024-10-29",
        "to": "2024-10-31",
        "by": "day",
        "kind": None,
    }
    engine = make_engine(estate)
    try:
        expected = consumption(
            engine, building="B001", start=date(2024, 10, 29), end=date(2024, 11, 1), by="day"
        )
    finally:
        engine.dispose()
    assert data["rows"] == [row.as_dict() for row in expected]
    kinds = {row["kind"] for row in data["rows"]}
    assert kinds == {"electricity", "cold_water", "hot_water", "heat", "gas", "other"}
    assert len(data["rows"]) == 3 * (len(kinds) + 0)  # 3 days x one series a kind
    assert all(row["value"] is not None for row in data["rows"])


def test_consumption_table_in_french_and_english(estate: str) -> None:
    args = ("--dwelling", "B001-L02", "--from", "2024-10", "--to", "2024-10", "--kind", "heat")
    as_json = json.loads(_consumption(estate, *args, "--json").output)
    (row,) = as_json["rows"]  # one month, one series
    assert row["label"] == "2024-10" and row["unit"] == "Wh"
    assert row["start"] == "2024-09-30T22:00:00+00:00"  # Paris midnight, summer time
    french = _consumption(estate, *args)
    assert french.exit_code == 0, french.output
    assert "Consommation de logement B001-L02 du 2024-10-01 au 2024-10-31" in french.output
    assert "chauffage (kWh)" in french.output
    assert format_quantity(row["value"] / 1000, "fr", 1) in french.output
    english = _consumption(estate, *args, "--lang", "en")
    assert "Consumption of dwelling B001-L02 from 2024-10-01 to 2024-10-31" in english.output
    assert "heat (kWh)" in english.output and "Total" in english.output
    assert format_quantity(row["value"] / 1000, "en", 1) in english.output


def test_consumption_csv_by_hour(estate: str) -> None:
    result = _consumption(
        estate, "--building", "B002", "--from", "2024-10-31", "--to", "2024-10-31", "--by",
        "hour", "--kind", "cold_water", "--csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 24
    assert rows[0]["label"] == "2024-10-31T00:00+01:00"
    assert {row["kind"] for row in rows} == {"cold_water"}
    assert sum(float(row["value"]) for row in rows) > 0


def test_consumption_per_m2(estate: str) -> None:
    result = _consumption(
        estate, "--building", "B001", "--from", "2024-10-29", "--to", "2024-10-31",
        "--per-m2", "--kind", "electricity", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]
    assert row["dwellings"] == 3 and row["surface_m2"] > 0 and row["value_per_m2"] > 0
    text = _consumption(
        estate, "--building", "B001", "--from", "2024-10-29", "--to", "2024-10-31",
        "--per-m2", "--kind", "electricity",
    )  # fmt: skip
    assert "électricité (kWh/m²)" in text.output
    assert "(3 logements)" in text.output


def test_consumption_beside_the_previous_year(estate: str) -> None:
    result = _consumption(
        estate, "--building", "B001", "--from", "2024-10-30", "--to", "2024-10-31", "--by",
        "day", "--kind", "gas", "--compare-previous-year",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "année précédente" in result.output and "évolution" in result.output
    assert "2024-10-30" in result.output and "gaz (m³)" in result.output
    data = json.loads(
        _consumption(
            estate, "--building", "B001", "--from", "2024-10-30", "--to", "2024-10-31",
            "--by", "day", "--kind", "gas", "--compare-previous-year", "--json",
        ).output
    )  # fmt: skip
    assert [row["previous_label"] for row in data["rows"]] == ["2023-10-30", "2023-10-31"]
    assert all(row["previous"] is None and row["change_pct"] is None for row in data["rows"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "2024-10", "--to", "2024-10"], "exactement un de --dwelling"),
        (["--building", "B001", "--residence", "R01", "--from", "2024-10", "--to", "2024-10"],
         "exactement un de --dwelling"),
        (["--dwelling", "B001-L01", "--from", "2024-10", "--to", "2024-10", "--per-m2"],
         "--per-m2 ne s'applique qu'à un bâtiment"),
        (["--building", "B001", "--from", "2024-10", "--to", "2024-10", "--by", "hour",
          "--compare-previous-year"], "compare des jours ou des mois"),
        (["--building", "B001", "--from", "2024-10", "--to", "2024-09"], "est avant --from"),
        (["--building", "B001", "--from", "octobre", "--to", "2024-10"], "date invalide"),
        (["--building", "B001", "--from", "2024-10", "--to", "2024-10", "--json", "--csv"],
         "s'excluent"),
    ],
)  # fmt: skip
def test_consumption_usage_errors(estate: str, args: list[str], expected: str) -> None:
    result = _consumption(estate, *args)
    assert result.exit_code == 2
    assert expected in result.output


def test_consumption_of_an_unknown_building(estate: str) -> None:
    result = _consumption(estate, "--building", "B999", "--from", "2024-10", "--to", "2024-10")
    assert result.exit_code == 1
    assert "erreur : no building with code 'B999'" in result.output


# ----------------------------------------------------------------------------- help


HQ_COMMANDS = (
    "init", "import", "export-gateway-config", "consumption", "generate", "purge-tenancies",
    "refresh",
)  # fmt: skip


def test_every_command_is_listed_with_its_help() -> None:
    listing = CliRunner().invoke(wesh_cli, ["hq", "--help"])
    assert listing.exit_code == 0, listing.output
    for name in HQ_COMMANDS:
        assert f"  {name} " in listing.output
        shown = CliRunner().invoke(wesh_cli, ["hq", name, "--help"])
        assert shown.exit_code == 0, shown.output
        assert "--db" in shown.output and "--lang" in shown.output
    for name in ("import", "consumption", "purge-tenancies", "refresh"):
        assert "--json" in CliRunner().invoke(hq, [name, "-h"]).output


ALERTS_COMMANDS = (
    "list", "show", "history", "ack", "mute", "unmute", "test-mail", "evaluate", "run", "outbox",
)  # fmt: skip


def test_the_alerts_group_is_part_of_wesh_hq() -> None:
    listing = CliRunner().invoke(wesh_cli, ["hq", "--help"])
    assert "  alerts " in listing.output
    group = CliRunner().invoke(wesh_cli, ["hq", "alerts", "--help"])
    assert group.exit_code == 0, group.output
    for name in ALERTS_COMMANDS:
        assert f"  {name} " in group.output
        shown = CliRunner().invoke(wesh_cli, ["hq", "alerts", name, "--help"])
        assert shown.exit_code == 0, shown.output
        assert "--db" in shown.output and "--lang" in shown.output


# ----------------------------------------------------------------------------- purge-tenancies


def _end_lease(db: str, dwelling: str, end: date) -> None:
    """End the running lease of a generated dwelling on ``end`` (its last day)."""
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            dwelling_id = conn.execute(
                select(Dwelling.id).where(Dwelling.code == dwelling)
            ).scalar_one()
            conn.execute(
                update(Tenancy)
                .where(Tenancy.dwelling_id == dwelling_id, Tenancy.end_date.is_(None))
                .values(end_date=end)
            )
    finally:
        engine.dispose()


def _count(db: str, model: type[Reading] | type[RollupHour] | type[RollupDay]) -> int:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def test_purge_dry_run_then_purge_then_nothing(estate: str) -> None:
    _end_lease(estate, "B001-L02", date(2024, 10, 31))
    counts = {model: _count(estate, model) for model in (Reading, RollupHour, RollupDay)}
    dry = run(
        "purge-tenancies", "--db", estate, "--ended-before", "2024-11-01", "--dry-run", "--json"
    )
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["tenancies"] == 1
    (item,) = planned["dwellings"]
    assert item["dwelling"] == "B001-L02" and item["channels"] == 7
    assert item["spans"][-1]["last_day"] == "2024-10-31"
    assert item["readings_deleted"] > 0 and item["hours_deleted"] > 0
    assert item["readings_kept"] == 4  # electricity, cold and hot water, heat
    assert {model: _count(estate, model) for model in counts} == counts  # nothing changed

    text = run("purge-tenancies", "--db", estate, "--ended-before", "2024-11-01")
    assert text.exit_code == 0, text.output
    assert "  B001-L02 : " in text.output and "→ 2024-10-31" in text.output
    assert "1 bail(s) terminé(s) avant le 2024-11-01 purgé(s) dans 1 logement(s)" in text.output
    assert _count(estate, Reading) == counts[Reading] - planned["readings_deleted"]
    assert _count(estate, RollupHour) == counts[RollupHour] - planned["hours_deleted"]
    assert _count(estate, RollupDay) == counts[RollupDay]

    again = run("purge-tenancies", "--db", estate, "--ended-before", "2024-11-01", "--lang", "en")
    assert again.exit_code == 0, again.output
    assert "No lease ended before 2024-11-01 is left to purge." in again.output


def test_purge_default_grace_is_a_year(estate: str) -> None:
    before = paris_day(datetime.now(UTC))
    result = run("purge-tenancies", "--db", estate, "--dry-run", "--json")
    after = paris_day(datetime.now(UTC))
    assert result.exit_code == 0, result.output
    cutoff = date.fromisoformat(json.loads(result.stdout)["cutoff"])
    assert cutoff in {before - timedelta(days=365), after - timedelta(days=365)}
    grace = run("purge-tenancies", "--db", estate, "--grace", "0", "--dry-run", "--json")
    assert json.loads(grace.stdout)["cutoff"] in {before.isoformat(), after.isoformat()}


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        (["--ended-before", "2024-01-01", "--grace", "30"], 2,
         "--ended-before et --grace s'excluent"),
        (["--ended-before", "2024-13-01"], 2, "date invalide '2024-13-01' : AAAA-MM-JJ"),
        (["--grace", "-1"], 2, "-1"),
        (["--ended-before", "2999-01-01"], 1,
         "wesh hq : erreur : the cutoff 2999-01-01 is after today"),
    ],
)  # fmt: skip
def test_purge_refuses_bad_options(
    estate: str, args: list[str], status: int, expected: str
) -> None:
    result = run("purge-tenancies", "--db", estate, *args)
    assert result.exit_code == status, result.output
    assert expected in result.output


# ----------------------------------------------------------------------------- refresh


def _temperature(site: str, box: str, at: datetime) -> SyncReading:
    return SyncReading(site, box, "temp.1", at, 20.5, "°C", "gauge", "measured")


def test_refresh_rolls_what_ingestion_left_stale(estate: str) -> None:
    engine = make_engine(estate)
    try:
        readings = [
            _temperature("b001", "b001-l01", datetime(2024, 11, 1, h, tzinfo=UTC)) for h in range(3)
        ]
        assert ingest(engine, readings).inserted == 3
    finally:
        engine.dispose()
    hours = _count(estate, RollupHour)
    result = run("refresh", "--db", estate, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pending_before"] >= 1
    assert summary["refreshed"] == summary["pending_before"]
    assert summary["pending_after"] == 0
    assert _count(estate, RollupHour) == hours + 3
    text = run("refresh", "--db", estate)
    assert text.exit_code == 0, text.output
    assert "Agrégats à jour : rien à réagréger." in text.output


def test_refresh_reports_in_english(estate: str) -> None:
    engine = make_engine(estate)
    try:
        ingest(engine, [_temperature("b002", "b002-l01", datetime(2024, 11, 2, tzinfo=UTC))])
    finally:
        engine.dispose()
    result = run("refresh", "--db", estate, "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "1 stale span(s) re-rolled in" in result.output and "; 0 pending." in result.output
