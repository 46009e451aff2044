"""Inventory files: every fixture imported with its expected counts and per-line errors.

Each file of ``tests/fixtures/hq/inventory`` (``.csv``, ``.toml``) comes with
``<file>.expect.json``: ``created`` (counts per record kind) and ``errors`` (line and text
of each), or ``raises`` when the file as a whole is refused. A new file is a new test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from wesh.errors import ConfigError
from wesh.hq.ingest import ingest
from wesh.hq.inventory import (
    RECORDS,
    apply_inventory,
    import_inventory,
    load_inventory,
    parse_inventory,
    record,
)
from wesh.hq.migrate import migrate
from wesh.hq.models import Box, Channel, Dwelling, Gateway, Meter, MeterEvent, Tenancy
from wesh.hq.rollups import refresh_rollups
from wesh.hq.timeutil import to_epoch_us
from wesh.sync.sink import SyncReading

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hq" / "inventory"
FILES = sorted(path for path in FIXTURES.iterdir() if path.suffix in (".csv", ".toml"))
TABLES = (
    "agency",
    "residence",
    "building",
    "dwelling",
    "tenancy",
    "gateway",
    "box",
    "channel",
    "meter",
    "meter_event",
)


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


def expectation(path: Path) -> dict[str, Any]:
    return json.loads((path.parent / f"{path.name}.expect.json").read_text(encoding="utf-8"))


def test_every_fixture_has_an_expectation() -> None:
    assert FILES
    for path in FILES:
        assert (path.parent / f"{path.name}.expect.json").exists(), path.name
    for path in FIXTURES.glob("*.expect.json"):
        assert (path.parent / path.name.removesuffix(".expect.json")).exists(), path.name


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_fixture_imports_as_expected(store: Engine, path: Path) -> None:
    expected = expectation(path)
    if "raises" in expected:
        with pytest.raises(ConfigError) as caught:
            import_inventory(store, path)
        assert caught.value.where == f"{path.name}:{expected['raises']['line']}"
        assert expected["raises"]["contains"] in str(caught.value)
        assert dump(store) == {table: [] for table in TABLES}  # nothing applied
        return
    first = import_inventory(store, path)
    assert dict(first.created) == expected["created"]
    assert not first.updated
    got = [(error.where, error.message) for error in first.errors]
    assert len(got) == len(expected["errors"]), got
    for (where, message), want in zip(got, expected["errors"], strict=True):
        assert where == f"{path.name}:{want['line']}", (where, message)
        assert want["contains"] in message, (message, want["contains"])
    assert first.ok is not expected["errors"]
    # Again: nothing new, nothing changed, the same errors.
    before = dump(store)
    second = import_inventory(store, path)
    assert not second.created
    assert not second.updated
    assert dict(second.unchanged) == expected["created"]
    assert [(e.where, e.message) for e in second.errors] == got
    assert dump(store) == before


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in TABLES
        }


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_the_csv_and_toml_estates_are_the_same(engine: Engine, tmp_path: Path) -> None:
    from wesh.hq.db import make_engine  # noqa: PLC0415

    migrate(engine)
    import_inventory(engine, FIXTURES / "estate.toml")
    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        migrate(other)
        import_inventory(other, FIXTURES / "estate.csv")
        assert dump(other) == dump(engine)
    finally:
        other.dispose()


def test_the_estate_is_stored_with_its_defaults(store: Engine) -> None:
    result = import_inventory(store, FIXTURES / "estate.toml")
    assert result.ok
    with Session(store) as session:
        dwelling = session.execute(select(Dwelling).where(Dwelling.code == "TIL-A-02")).scalar_one()
        assert (dwelling.label, dwelling.kind, dwelling.floor, dwelling.surface_m2) == (
            "TIL-A-02",
            "dwelling",
            1,
            71.0,
        )
        box = session.execute(select(Box).where(Box.box_ref == "dw-01")).scalar_one()
        assert (box.mac, box.driver, box.model) == ("0004A3123456", "wes", "WES v2")
        assert box.installed_at == datetime(2022, 8, 29, 22, tzinfo=UTC)  # Paris midnight
        channels = {
            c.path: (c.kind, c.unit, c.is_index, c.label)
            for c in session.execute(select(Channel).where(Channel.box_id == box.id)).scalars()
        }
        assert channels == {
            "tic.1.index.base": ("electricity", "Wh", True, None),
            "impulsion.1.index": ("cold_water", "L", True, "Eau froide"),
            "temp.1": ("temperature", "°C", False, "Séjour"),
        }
        gateway = session.execute(select(Gateway).where(Gateway.site_id == "til-b")).scalar_one()
        assert gateway.phone_number is None
        tenancies = session.execute(
            select(Tenancy.tenant_ref, Tenancy.end_date).order_by(Tenancy.start_date)
        ).all()
        assert [tuple(t) for t in tenancies] == [("T-0042", date(2024, 6, 30)), ("T-0107", None)]
        event = session.execute(select(MeterEvent)).scalar_one()
        water = channels_by_path(session, box.id)["impulsion.1.index"]
        assert (event.kind, event.channel_id, event.old_index, event.new_index) == (
            "replaced",
            water,
            183_402.0,
            0.0,
        )
        assert event.at == datetime(2024, 2, 12, 8, 30, tzinfo=UTC)
        old = session.execute(select(Meter).where(Meter.serial == "EF-2019-0001")).scalar_one()
        assert old.removed_at == event.at


def channels_by_path(session: Session, box_id: int) -> dict[str, int]:
    return {
        c.path: c.id
        for c in session.execute(select(Channel).where(Channel.box_id == box_id)).scalars()
    }


def test_records_update_only_the_fields_they_give(store: Engine) -> None:
    import_inventory(store, FIXTURES / "estate.toml")
    result = apply_inventory(
        store,
        [
            record("dwelling", code="TIL-A-01", surface_m2="50,5"),
            record("dwelling", code="TIL-A-02", floor=1),  # unchanged
            record("channel", site="til-a", box="dw-01", path="temp.1", label="Chambre"),
            record("box", site="til-a", box="dw-09", dwelling="TIL-A-02", driver="tic"),
        ],
    )
    assert result.ok
    assert dict(result.updated) == {"dwelling": 1, "channel": 1}
    assert dict(result.unchanged) == {"dwelling": 1}
    assert dict(result.created) == {"box": 1}
    with Session(store) as session:
        dwelling = session.execute(select(Dwelling).where(Dwelling.code == "TIL-A-01")).scalar_one()
        assert (dwelling.surface_m2, dwelling.label, dwelling.floor) == (50.5, "Logement 1", 0)


def test_record_refuses_bad_fields_with_api_location() -> None:
    with pytest.raises(ConfigError, match=r"dwelling\.surface_m2: must be positive") as caught:
        record("dwelling", code="X", building="B", surface_m2=0)
    assert caught.value.where == "api"
    with pytest.raises(ConfigError, match="unknown record 'dweling'"):
        record("dweling", code="X")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="field 'mac' does not apply to a channel"):
        record("channel", site="s", box="b", path="temp.1", mac="00")
    with pytest.raises(ConfigError, match="channel: missing path"):
        record("channel", site="s", box="b")
    with pytest.raises(ConfigError, match="is_index: 'peut-être' is not true or false"):
        record("channel", site="s", box="b", path="temp.1", is_index="peut-être")
    assert (
        record("channel", site="s", box="b", path="temp.1", is_index="oui").fields["is_index"]
        is True
    )


def test_a_record_the_database_refuses_is_reported_and_the_others_kept(store: Engine) -> None:
    import_inventory(store, FIXTURES / "estate.toml")
    records = [
        record(
            "tenancy",
            dwelling="TIL-A-02",
            tenant_ref="T-1",
            start_date="2024-05-01",
            end_date="2024-04-01",
            where="t.csv:2",
        ),
        record(
            "tenancy",
            dwelling="TIL-A-02",
            tenant_ref="T-2",
            start_date="2023-01-01",
            where="t.csv:3",
        ),
        record("dwelling", code="TIL-A-03", building="TIL-A", where="t.csv:4"),
    ]
    result = apply_inventory(store, records)
    assert [(e.where, "tenancy:" in e.message) for e in result.errors] == [("t.csv:2", True)]
    assert dict(result.created) == {"dwelling": 1, "tenancy": 1}


def test_a_meter_event_imported_later_rerolls_its_channel(store: Engine, tmp_path: Path) -> None:
    import_inventory(store, FIXTURES / "estate.toml")
    start = datetime(2024, 5, 1, tzinfo=UTC)
    path = "impulsion.1.index"
    values = [5_000, 5_010, 5_020, 7, 12]  # a new meter between the third and the fourth
    ingest(
        store,
        [
            SyncReading(
                "til-a", "dw-01", path, start + timedelta(hours=n), v, "L", "index", "measured"
            )
            for n, v in enumerate(values)
        ],
    )
    refresh_rollups(store)  # ingestion only marks the rollups stale
    fourth = to_epoch_us(start + timedelta(hours=3))
    assert hour_consumption(store, fourth) == 7.0  # under 1 % of 5,020: a restart from zero
    events = tmp_path / "events.csv"
    events.write_text(
        "record,site,box,serial,kind,at,old_index,new_index\n"
        "meter_event,til-a,dw-01,EF-2024-0377,reset,2024-05-01T02:30:00Z,5026,2\n",
        encoding="utf-8",
    )
    result = import_inventory(store, events)
    assert result.ok, result.errors
    assert hour_consumption(store, fourth) == 6.0 + 5.0


def hour_consumption(engine: Engine, hour_us: int) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT consumption FROM rollup_hour WHERE hour_start = :h"), {"h": hour_us}
            ).scalar_one()
        )


def test_loading_refuses_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"a \.csv or \.toml file"):
        load_inventory(tmp_path / "inventory.xlsx")
    with pytest.raises(ConfigError, match="cannot read the inventory"):
        load_inventory(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="no header line"):
        parse_inventory("# only a comment\n\n", source="x.csv", fmt="csv")
    with pytest.raises(ConfigError, match="no 'record' column"):
        parse_inventory("code,name\nA,B\n", source="x.csv", fmt="csv")
    with pytest.raises(ConfigError, match="appears twice"):
        parse_inventory("record,code,code\n", source="x.csv", fmt="csv")
    with pytest.raises(ConfigError, match="unknown inventory format"):
        parse_inventory("", source="x", fmt="xml")  # type: ignore[arg-type]


def test_every_record_kind_is_documented() -> None:
    documentation = (Path(__file__).resolve().parents[2] / "docs" / "hq-data.md").read_text(
        encoding="utf-8"
    )
    for kind, fields in RECORDS.items():
        assert f"`{kind}`" in documentation, kind
        for name in fields:
            assert f"`{name}`" in documentation, (kind, name)
