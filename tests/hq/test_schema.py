"""The HQ schema on SQLite, MariaDB and PostgreSQL: types, keys, insert_ignore, URLs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, func, inspect, literal_column, select, text

from tests.hq.servers import free_port
from wesh.errors import BadInputError, ConfigError, ConnectionFailed, UsageError, WeshError
from wesh.hq.db import (
    DEFAULT_SQLITE_PATH,
    insert_ignore,
    make_engine,
    normalize_url,
    redact,
    session_factory,
    transaction,
    translate_errors,
)
from wesh.hq.migrate import migrate
from wesh.hq.models import (
    Agency,
    Box,
    Building,
    Channel,
    Dwelling,
    Gateway,
    Reading,
    Residence,
    RollupDay,
    SiteEvent,
    SyncLedger,
    Tenancy,
)
from wesh.hq.timeutil import HOUR_US, hour_floor

PARIS = ZoneInfo("Europe/Paris")
TILLEULS = "Résidence Les Tilleuls \u2013 bât. B"  # with an en dash


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


def _estate(engine: Engine, *, channels: int = 2) -> list[int]:
    """Create agency → … → box and ``channels`` channels; return the channel ids."""
    with session_factory(engine).begin() as session:
        agency = Agency(code="ag-nord", name="Agence Nord")
        session.add(agency)
        session.flush()
        residence = Residence(agency_id=agency.id, code="res-tilleuls", name=TILLEULS)
        session.add(residence)
        session.flush()
        building = Building(residence_id=residence.id, code="res-tilleuls-b", name="Bâtiment B")
        session.add(building)
        session.flush()
        dwelling = Dwelling(
            building_id=building.id,
            code="res-tilleuls-b-012",
            label="Logement 12",
            floor=1,
            surface_m2=64.5,
            heating_type="collective",
        )
        session.add(dwelling)
        session.flush()
        gateway = Gateway(building_id=building.id, site_id="res-les-tilleuls-b1")
        session.add(gateway)
        session.flush()
        box = Box(gateway_id=gateway.id, box_ref="dw-12", dwelling_id=dwelling.id)
        session.add(box)
        session.flush()
        made = [
            Channel(box_id=box.id, path=f"impulsion.{n}.index", kind="cold_water", unit="L")
            for n in range(1, channels + 1)
        ]
        for channel in made:
            channel.is_index = True
        session.add_all(made)
        session.flush()
        return [channel.id for channel in made]


def _readings(channel_id: int, instants: list[datetime], start: int = 0) -> list[dict[str, Any]]:
    return [
        {"channel_id": channel_id, "at": at, "value": float(start + n)}
        for n, at in enumerate(instants)
    ]


# --------------------------------------------------------------------------- instants


DST_INSTANTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    # Spring forward, 2024-03-31: 01:59:59 CET is followed by 03:00 CEST (01:00Z).
    datetime(2024, 3, 31, 0, 59, 59, 999_999, tzinfo=UTC),
    datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
    # Fall back, 2024-10-27: 02:30 happens twice (00:30Z CEST, then 01:30Z CET).
    datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=PARIS),
    datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS),
    datetime(2024, 10, 27, 1, 0, tzinfo=UTC),
    datetime(2031, 7, 14, 12, 0, 0, 123_456, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
]


def test_instants_round_trip_exactly(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    with transaction(store) as conn:
        assert insert_ignore(Reading, _readings(channel, DST_INSTANTS), conn) == len(DST_INSTANTS)
    with transaction(store) as conn:
        back = conn.execute(
            select(Reading.at, Reading.value).where(Reading.channel_id == channel)
        ).all()
    by_value = {int(value): at for at, value in back}
    for n, sent in enumerate(DST_INSTANTS):
        # (compared in UTC: Python never finds an ambiguous wall time equal across zones)
        assert by_value[n] == sent.astimezone(UTC)
        assert by_value[n].tzinfo is UTC
    # The two 02:30 of the fall-back night are two different instants, one hour apart.
    assert by_value[5] - by_value[4] == timedelta(hours=1)


def test_instants_compare_and_bucket_in_sql(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    start = datetime(2024, 10, 26, 22, 0, tzinfo=UTC)  # Paris midnight of the 25-hour day
    instants = [start + timedelta(minutes=20 * n) for n in range(25 * 3)]
    with transaction(store) as conn:
        insert_ignore(Reading, _readings(channel, instants), conn)
        window = conn.execute(
            select(func.count())
            .select_from(Reading)
            .where(
                Reading.at >= start + timedelta(hours=1), Reading.at < start + timedelta(hours=2)
            )
        ).scalar_one()
        assert window == 3
        # The raw column is an integer: the hour start is at - at % 1 h on every engine.
        bucket = literal_column(f"at - at % {HOUR_US}")
        rows = conn.execute(
            select(bucket, func.count()).select_from(Reading.__table__).group_by(bucket)
        ).all()
    assert len(rows) == 25
    expected = {hour_floor(at) for at in instants}
    assert {
        Reading.__table__.c.at.type.process_result_value(b, store.dialect) for b, _ in rows
    } == (expected)
    assert all(count == 3 for _, count in rows)


def test_a_naive_instant_is_refused(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    with pytest.raises(UsageError, match="naive"), transaction(store) as conn:
        naive = datetime(2024, 1, 1)  # noqa: DTZ001
        insert_ignore(Reading, [{"channel_id": channel, "at": naive, "value": 1}], conn)


def test_dates_round_trip(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    days = [date(2024, 3, 31), date(2024, 10, 27), date(2000, 2, 29)]
    with transaction(store) as conn:
        rows = [{"channel_id": channel, "day": day, "count": 1} for day in days]
        assert insert_ignore(RollupDay, rows, conn) == 3
        back = conn.execute(select(RollupDay.day).order_by(RollupDay.day)).scalars().all()
    assert back == sorted(days)


# --------------------------------------------------------------------------- values


BIG_INDEXES = [0, 1, 999_999_999, 123_456_789_012, 2**53 - 1, 2**53]


def test_index_values_stay_exact_integers(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"channel_id": channel, "at": start + timedelta(hours=n), "value": value}
        for n, value in enumerate(BIG_INDEXES)
    ]
    with transaction(store) as conn:
        insert_ignore(Reading, rows, conn)
        back = conn.execute(select(Reading.value).order_by(Reading.at)).scalars().all()
        spread = conn.execute(
            select(func.max(Reading.value) - func.min(Reading.value))
        ).scalar_one()
        # The difference of two neighbouring large indexes (a consumption) is exact too.
        step = conn.execute(
            select(func.max(Reading.value)).where(Reading.value < 2**53 - 1)
        ).scalar_one()
    assert [int(value) for value in back] == BIG_INDEXES
    assert all(float(value).is_integer() for value in back)
    assert int(spread) == 2**53
    assert 2**53 - 1 - int(step) == 2**53 - 1 - 123_456_789_012


def test_gauge_values_round_trip(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    values = [21.37, -12.5, 0.1 + 0.2, 1e-9, 230.4]
    with transaction(store) as conn:
        insert_ignore(
            Reading, _readings(channel, [start + timedelta(seconds=n) for n in range(5)]), conn
        )
        for n, value in enumerate(values):
            conn.execute(
                Reading.__table__.update()
                .where(Reading.at == start + timedelta(seconds=n))
                .values(value=value)
            )
        back = conn.execute(select(Reading.value).order_by(Reading.at)).scalars().all()
    assert back == values


# --------------------------------------------------------------------------- insert_ignore


def test_insert_ignore_is_idempotent(store: Engine) -> None:
    first, second = _estate(store)
    start = datetime(2024, 3, 30, 22, tzinfo=UTC)
    hours = [start + timedelta(hours=n) for n in range(48)]
    batch = _readings(first, hours) + _readings(second, hours)
    with transaction(store) as conn:
        assert insert_ignore(Reading, batch, conn) == 96
    with transaction(store) as conn:
        assert insert_ignore(Reading, batch, conn) == 0  # re-sent: nothing new
    later = [start + timedelta(hours=n) for n in range(40, 60)]
    with transaction(store) as conn:
        assert insert_ignore(Reading, _readings(first, later, start=40), conn) == 12
        assert insert_ignore(Reading, [], conn) == 0
        total = conn.execute(select(func.count()).select_from(Reading)).scalar_one()
    assert total == 108


def test_insert_ignore_keeps_the_first_value(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    with transaction(store) as conn:
        insert_ignore(Reading, [{"channel_id": channel, "at": at, "value": 10.0}], conn)
        insert_ignore(Reading, [{"channel_id": channel, "at": at, "value": 99.0}], conn)
        assert conn.execute(select(Reading.value)).scalar_one() == 10.0
        row = conn.execute(select(Reading.provenance, Reading.quality, Reading.aggregate)).one()
    assert tuple(row) == ("measured", "good", "sample")  # column defaults applied


def test_insert_ignore_in_large_batches(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = _readings(channel, [start + timedelta(minutes=n) for n in range(5_000)])
    with transaction(store) as conn:
        assert insert_ignore(Reading, rows[:2_500], conn) == 2_500
        assert insert_ignore(Reading.__table__, rows, conn) == 2_500


def test_insert_ignore_with_long_rows(store: Engine) -> None:
    """Large rows: MariaDB batches stay one statement each, so every skip is accounted for."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {
            "dedup_key": f"k{n:06d}",
            "site_id": "res-les-tilleuls-b1",
            "at": at + timedelta(seconds=n),
            "kind": "leak",
            "severity": "critical",
            "message": ("fuite d'eau probable \u2013 💧 " * 40)[:1000],
            "received_at": at,
        }
        for n in range(1_500)
    ]
    with transaction(store) as conn:
        assert insert_ignore(SiteEvent, rows[:700], conn) == 700
    with transaction(store) as conn:
        assert insert_ignore(SiteEvent, rows, conn) == 800
        assert insert_ignore(SiteEvent, rows, conn) == 0
    uneven = [*rows[:1_000], {**rows[-1], "dedup_key": "new", "box_id": 424242}]
    with pytest.raises(UsageError, match="same columns"), transaction(store) as conn:
        insert_ignore(SiteEvent, uneven, conn)  # box_id would be dropped silently
    bad = [{**row, "box_id": None} for row in rows[:1_000]]
    bad.append({**rows[-1], "dedup_key": "new", "box_id": 424242})
    with pytest.raises(BadInputError), transaction(store) as conn:
        insert_ignore(SiteEvent, bad, conn)


def test_insert_ignore_refuses_other_violations(store: Engine) -> None:
    """Only duplicates are skipped: a bad row is an error (MariaDB's IGNORE included)."""
    (channel,) = _estate(store, channels=1)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    good = {"channel_id": channel, "at": at, "value": 1.0}
    unknown_channel = {"channel_id": channel + 999, "at": at, "value": 1.0}
    with pytest.raises(BadInputError), transaction(store) as conn:
        insert_ignore(Reading, [good, unknown_channel], conn)
    bad_provenance = {**good, "provenance": "guessed"}
    with pytest.raises(BadInputError), transaction(store) as conn:
        insert_ignore(Reading, [bad_provenance], conn)
    with transaction(store) as conn:  # the failed transactions left nothing behind
        assert conn.execute(select(func.count()).select_from(Reading)).scalar_one() == 0


def test_duplicate_codes_are_refused(store: Engine) -> None:
    with pytest.raises(BadInputError), transaction(store) as conn:
        conn.execute(
            Agency.__table__.insert(), [{"code": "a", "name": "A"}, {"code": "a", "name": "B"}]
        )


def test_codes_compare_exactly_on_every_engine(store: Engine) -> None:
    """Case and trailing spaces matter (MariaDB: utf8mb4_nopad_bin), as on the others."""
    codes = ["ag-b1", "AG-B1", "ag-b1 ", "ag-é", "ag-e"]
    with transaction(store) as conn:
        assert insert_ignore(Agency, [{"code": c, "name": c} for c in codes], conn) == 5
        found = conn.execute(select(Agency.code).where(Agency.code == "ag-b1")).scalars().all()
    assert found == ["ag-b1"]


# --------------------------------------------------------------------------- text and JSON


def test_unicode_names_round_trip(store: Engine) -> None:
    names = [TILLEULS, "Cité des Œillets — entrée Ⅲ", "Résidence 🏢 (4-byte UTF-8)"]
    with session_factory(store).begin() as session:
        session.add_all(Agency(code=f"ag-{n}", name=name) for n, name in enumerate(names))
    with session_factory(store)() as session:
        back = session.scalars(select(Agency.name).order_by(Agency.code)).all()
        found = session.scalars(select(Agency.code).where(Agency.name == TILLEULS)).one()
    assert back == names
    assert found == "ag-0"


def test_json_columns_round_trip(store: Engine) -> None:
    status = {"boxes_up": 40, "boxes_down": 1, "note": "bât. B \u2013 modem 📶", "signal_pct": None}
    gaps = [[12, 15], [40, 40]]
    with session_factory(store).begin() as session:
        session.add(
            SyncLedger(site_id="res-les-tilleuls-b1", last_seq=41, gaps=gaps, status=status)
        )
    with session_factory(store)() as session:
        ledger = session.get(SyncLedger, "res-les-tilleuls-b1")
        assert ledger is not None
        assert (ledger.gaps, ledger.status, ledger.received_count) == (gaps, status, 0)


def test_tenancy_periods_and_cascade(store: Engine) -> None:
    (channel,) = _estate(store, channels=1)
    with session_factory(store).begin() as session:
        dwelling = session.scalars(select(Dwelling)).one()
        session.add(
            Tenancy(dwelling_id=dwelling.id, tenant_ref="t-81f3", start_date=date(2020, 9, 1))
        )
    with (
        pytest.raises(BadInputError),
        session_factory(store).begin() as session,
        translate_errors(store),
    ):
        session.add(
            Tenancy(
                dwelling_id=dwelling.id,
                tenant_ref="t-0000",
                start_date=date(2024, 1, 2),
                end_date=date(2024, 1, 1),
            )
        )
        session.flush()
    with transaction(store) as conn:
        insert_ignore(Reading, _readings(channel, [datetime(2024, 1, 1, tzinfo=UTC)]), conn)
        conn.execute(delete(Channel).where(Channel.id == channel))
        assert conn.execute(select(func.count()).select_from(Reading)).scalar_one() == 0


# --------------------------------------------------------------------------- engines and URLs


@pytest.mark.parametrize("engine_url", ["mariadb"], indirect=True)
def test_schema_tables_use_innodb_utf8mb4_on_mariadb(store: Engine) -> None:
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, engine, table_collation FROM information_schema.tables"
                " WHERE table_schema = DATABASE()"
            )
        ).all()
    assert len(rows) == len(inspect(store).get_table_names())
    for name, engine_name, collation in rows:
        assert engine_name == "InnoDB", name
        assert collation == "utf8mb4_nopad_bin", name


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "x.sqlite3")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        engine.dispose()
    memory = make_engine("sqlite://")
    try:
        with memory.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        memory.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mysql://u:pw@db/wesh", "mysql+pymysql://u:***@db/wesh?charset=utf8mb4"),
        ("mariadb://u@db:3307/wesh", "mysql+pymysql://u@db:3307/wesh?charset=utf8mb4"),
        ("mysql://u@db/wesh?charset=latin1", "mysql+pymysql://u@db/wesh?charset=latin1"),
        ("postgres://u:pw@db/wesh", "postgresql+psycopg://u:***@db/wesh"),
        ("postgresql+psycopg://db/wesh", "postgresql+psycopg://db/wesh"),
        ("sqlite:////var/lib/wesh/hq.db", "sqlite:////var/lib/wesh/hq.db"),
        ("/var/lib/wesh/hq.db", "sqlite:////var/lib/wesh/hq.db"),
        ("hq.db", "sqlite:///hq.db"),
        (None, f"sqlite:///{DEFAULT_SQLITE_PATH}"),
        ("  ", f"sqlite:///{DEFAULT_SQLITE_PATH}"),
    ],
)
def test_urls_pick_the_engine_and_driver(given: str | None, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize("url", ["oracle://db/x", "mysql://db:port/x", "http//x://y"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        make_engine(url)


def test_default_store_is_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert migrate(None) == migrate("")
    assert (tmp_path / DEFAULT_SQLITE_PATH).is_file()


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_unreachable_server_is_connection_failed_without_password(scheme: str) -> None:
    url = f"{scheme}://wesh:s3cret-pw@127.0.0.1:{free_port()}/wesh"
    with pytest.raises(ConnectionFailed) as caught:
        migrate(url)
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "s3cret-pw" not in redact(url)


def test_an_sqlite_file_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(ConfigError, match="SQLite"):
        migrate(f"sqlite:///{tmp_path / 'taken' / 'hq.sqlite3'}")
    (tmp_path / "folder.sqlite3").mkdir()
    with pytest.raises(ConfigError, match="SQLite"):
        migrate(tmp_path / "folder.sqlite3")


def test_errors_inside_a_transaction_are_wesh_errors(store: Engine) -> None:
    with pytest.raises(WeshError) as caught, transaction(store) as conn:
        conn.execute(text("SELECT no_such_column FROM agency"))
    assert not isinstance(caught.value, ConnectionFailed)


# --------------------------------------------------------------------------- the fixtures


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_server_programs_skip_or_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    from tests.hq import conftest, servers  # noqa: PLC0415

    def missing() -> servers.PrivateServer:
        raise servers.ServerUnavailable("MariaDB is not installed")

    monkeypatch.setitem(conftest.STARTERS, "mariadb", missing)
    monkeypatch.setenv("CI", ci)
    # Catch everything: a skip where a failure is due must not make this test skip.
    with pytest.raises(BaseException, match="not installed") as caught:
        next(conftest._start("mariadb"))
    assert caught.type is outcome
