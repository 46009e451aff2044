"""wesh.hq.generate: the estate plan, the calendar, the rows, and their agreement with rollups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from wesh.errors import UsageError
from wesh.hq.db import make_engine, session_factory, transaction
from wesh.hq.generate import (
    COMMON_CHANNELS,
    DWELLING_CHANNELS,
    GenerateOptions,
    day_frames,
    generate,
    plan_estate,
)
from wesh.hq.models import (
    Box,
    Building,
    Channel,
    Dwelling,
    Gateway,
    Meter,
    MeterEvent,
    Reading,
    Residence,
    RollupDay,
    RollupHour,
    Tenancy,
)
from wesh.hq.rollups import reroll_windows
from wesh.hq.timeutil import HOUR_US, day_bounds, to_epoch_us

# 12 days around the October change of time (2024-10-27 has 25 hours).
END = date(2024, 10, 31)


def _sqlite(tmp_path: Path, name: str = "hq.sqlite3") -> Engine:
    return make_engine(tmp_path / name)


# ----------------------------------------------------------------------------- pure parts


def test_plan_follows_the_reference_layout() -> None:
    plan = plan_estate(buildings=9, first=date(2024, 1, 1), last=date(2024, 12, 31))
    assert len(plan.buildings) == 9
    assert [r.code for r in plan.residences] == ["R01", "R02", "R03"]
    first = plan.buildings[0]
    assert first.code == "B001" and first.site_id == "b001"
    assert len(first.dwellings) == 41
    common = first.dwellings[0]
    assert common.is_common and common.code == "B001-PC" and common.box_ref == "b001-pc"
    assert common.channels == COMMON_CHANNELS and common.tenancies == ()
    flat = first.dwellings[12]
    assert flat.code == "B001-L12" and flat.box_ref == "b001-l12" and flat.floor == 2
    assert flat.channels == DWELLING_CHANNELS
    assert flat.surface_m2 is not None and 25 <= flat.surface_m2 <= 110
    macs = {d.mac for b in plan.buildings for d in b.dwellings}
    assert len(macs) == 9 * 41
    assert all(len(mac) == 12 for mac in macs)
    # channels per box: 7 in a dwelling, 8 in the common areas (DESIGN.md)
    assert len(DWELLING_CHANNELS) == 7 and len(COMMON_CHANNELS) == 8


def test_plan_is_deterministic_and_seeded() -> None:
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    one = plan_estate(buildings=2, first=first, last=last, seed=3)
    assert one == plan_estate(buildings=2, first=first, last=last, seed=3)
    assert one != plan_estate(buildings=2, first=first, last=last, seed=4)


def test_leases_do_not_overlap_and_some_households_move() -> None:
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    plan = plan_estate(buildings=10, first=first, last=last)
    moves = 0
    for building in plan.buildings:
        for dwelling in building.dwellings[1:]:
            leases = dwelling.tenancies
            assert leases[0].start < first
            assert leases[-1].end is None
            assert all(lease.occupants >= 1 for lease in leases)
            if len(leases) == 2:
                moves += 1
                assert leases[0].end is not None
                assert leases[0].end < leases[1].start <= last
                vacant = leases[0].end + timedelta(days=1)
                assert dwelling.occupants_on(vacant) == 0
                assert dwelling.occupants_on(leases[1].start) == leases[1].occupants
    assert 10 <= moves <= 80  # about one in ten of 400 dwellings


def test_day_frames_know_23_and_25_hour_days() -> None:
    frames = {f.day: f for f in day_frames(date(2024, 3, 30), date(2024, 10, 28))}
    assert frames[date(2024, 3, 31)].hours == 23
    assert frames[date(2024, 10, 27)].hours == 25
    assert frames[date(2024, 6, 1)].hours == 24
    fall = frames[date(2024, 10, 27)]
    assert fall.local_hours[:4] == (0, 1, 2, 2)
    assert frames[date(2024, 3, 31)].local_hours[:3] == (0, 1, 3)
    start, _ = day_bounds(date(2024, 6, 1))
    assert frames[date(2024, 6, 1)].start_us == to_epoch_us(start)
    assert frames[date(2024, 6, 1)].weekend  # a Saturday


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"buildings": 0}, "buildings"),
        ({"days": 0}, "days"),
        ({"raw_days": 400}, "raw days"),
        ({"flats": 100}, "flats"),
        ({"replacement_rate": -1.0}, "replacement rate"),
    ],
)
def test_impossible_options_are_usage_errors(changes: dict[str, float], message: str) -> None:
    options = GenerateOptions(end=END, **changes)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message):
        options.check()


# ----------------------------------------------------------------------------- in a database


def _counts(engine: Engine) -> dict[str, int]:
    tables = {
        "residence": Residence,
        "building": Building,
        "gateway": Gateway,
        "dwelling": Dwelling,
        "tenancy": Tenancy,
        "box": Box,
        "channel": Channel,
        "meter": Meter,
        "meter_event": MeterEvent,
        "reading": Reading,
        "rollup_hour": RollupHour,
        "rollup_day": RollupDay,
    }
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in tables.items()
        }


def test_generate_writes_what_it_reports(engine: Engine) -> None:
    options = GenerateOptions(end=END, buildings=2, flats=3, days=12, raw_days=5)
    progress: list[tuple[int, int]] = []
    report = generate(engine, options, progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 2), (2, 2)]
    counts = _counts(engine)
    channels = 2 * (3 * 7 + 8)
    index_channels = 2 * (3 * 4 + 4)
    raw_hours = 5 * 24 + 1  # 2024-10-27 has 25 hours
    assert counts["building"] == report.buildings == 2
    assert counts["box"] == report.boxes == 8
    assert counts["channel"] == report.channels == channels
    assert counts["rollup_day"] == report.rollup_day == channels * 12
    assert counts["rollup_hour"] == report.rollup_hour == channels * raw_hours
    assert counts["reading"] == report.readings == channels * raw_hours + index_channels
    assert counts["dwelling"] == 8 and counts["gateway"] == 2 and counts["residence"] == 1
    assert counts["tenancy"] >= 6
    assert counts["meter_event"] == report.meter_replacements
    assert report.first == END - timedelta(days=11)
    assert report.raw_from == END - timedelta(days=4)
    assert report.rows == counts["reading"] + counts["rollup_hour"] + counts["rollup_day"]


def test_generated_rollups_equal_the_rollups_of_the_readings(engine: Engine) -> None:
    """What generate writes is what wesh.hq.rollups computes from the same readings.

    Every water and heat meter is replaced once, so steps across replacements are checked
    too; the window crosses the 25-hour day.
    """
    days = 8
    options = GenerateOptions(
        end=END, buildings=1, flats=4, days=days, raw_days=6, replacement_rate=365 / days
    )
    report = generate(engine, options)
    assert report.meter_replacements == 4 * 3
    with engine.connect() as conn:
        hours_before = sorted(conn.execute(select(RollupHour.__table__)).all())
        days_before = sorted(conn.execute(select(RollupDay.__table__)).all())
        kinds = dict(conn.execute(select(Channel.id, Channel.is_index)).all())
    window_start = to_epoch_us(day_bounds(report.raw_from)[0])  # type: ignore[arg-type]
    window_end = to_epoch_us(day_bounds(END)[1])
    with transaction(engine) as conn:
        reroll_windows(
            conn,
            dict.fromkeys(kinds, (window_start, window_end)),
            index_channels=[cid for cid, is_index in kinds.items() if is_index],
        )
    with engine.connect() as conn:
        hours_after = sorted(conn.execute(select(RollupHour.__table__)).all())
        days_after = sorted(conn.execute(select(RollupDay.__table__)).all())
    assert len(hours_after) == len(hours_before)
    for mine, theirs in zip(hours_before, hours_after, strict=True):
        assert _same(mine, theirs), (mine, theirs)
    assert len(days_after) == len(days_before)
    for mine, theirs in zip(days_before, days_after, strict=True):
        assert _same(mine, theirs), (mine, theirs)


def _same(mine: Sequence[object], theirs: Sequence[object]) -> bool:
    """Equal rows: numbers within float rounding, everything else exactly."""
    return len(mine) == len(theirs) and all(
        a == pytest.approx(b, rel=1e-9) if isinstance(a, float) else a == b
        for a, b in zip(mine, theirs, strict=True)
    )


def test_replacements_restart_the_index_and_are_recorded(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    days = 10
    generate(
        engine,
        GenerateOptions(
            end=END, buildings=1, flats=2, days=days, raw_days=days, replacement_rate=365 / days
        ),
    )
    with session_factory(engine)() as conn:
        events = conn.execute(select(MeterEvent)).scalars().all()
        assert len(events) == 2 * 3
        for event in events:
            assert event.kind == "replaced" and event.new_index == 0.0
            assert event.old_index is not None and event.old_index > 0
            new = conn.get(Meter, event.meter_id)
            assert new is not None and new.installed_at == event.at and new.removed_at is None
            closed = conn.execute(
                select(Meter).where(Meter.box_id == new.box_id, Meter.input == new.input,
                                    Meter.id != new.id)
            ).scalar_one()  # fmt: skip
            assert closed.removed_at == event.at
            before = conn.execute(
                select(Reading.value)
                .where(Reading.channel_id == event.channel_id, Reading.at < event.at)
                .order_by(Reading.at.desc())
                .limit(1)
            ).scalar_one()
            after = conn.execute(
                select(Reading.value)
                .where(Reading.channel_id == event.channel_id, Reading.at >= event.at)
                .order_by(Reading.at)
                .limit(1)
            ).scalar_one()
            assert before == event.old_index
            assert 0 <= after < event.old_index
        negatives = conn.execute(
            select(func.count()).select_from(RollupDay).where(RollupDay.consumption < 0)
        ).scalar_one()
        assert negatives == 0


def _daily(engine: Engine) -> dict[tuple[str, str, date], float | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Box.box_ref, Channel.path, RollupDay.day, RollupDay.consumption)
            .join(Channel, Channel.id == RollupDay.channel_id)
            .join(Box, Box.id == Channel.box_id)
        ).all()
    return {(box, path, day): value for box, path, day, value in rows}


def test_day_totals_do_not_depend_on_the_raw_window(tmp_path: Path) -> None:
    common = {"end": END, "buildings": 1, "flats": 3, "days": 9, "seed": 5}
    without = _sqlite(tmp_path, "a.sqlite3")
    generate(without, GenerateOptions(raw_days=0, **common))  # type: ignore[arg-type]
    full = _sqlite(tmp_path, "b.sqlite3")
    generate(full, GenerateOptions(raw_days=9, **common))  # type: ignore[arg-type]
    assert _daily(without) == _daily(full)
    again = _sqlite(tmp_path, "c.sqlite3")
    generate(again, GenerateOptions(raw_days=0, **{**common, "seed": 6}))  # type: ignore[arg-type]
    assert _daily(again) != _daily(without)


def test_a_second_run_into_the_same_database_is_refused(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    options = GenerateOptions(end=END, buildings=1, flats=1, days=2, raw_days=1)
    generate(engine, options)
    before = _counts(engine)
    with pytest.raises(UsageError, match="already holds 'R01'"):
        generate(engine, options)
    assert _counts(engine) == before


def test_a_year_looks_like_housing(tmp_path: Path) -> None:
    """Orders of magnitude a bailleur would recognise, for one building over a year."""
    engine = _sqlite(tmp_path)
    generate(
        engine,
        GenerateOptions(end=date(2024, 12, 31), buildings=1, days=366, raw_days=0, seed=1),
    )
    yearly: dict[tuple[str, str], float] = defaultdict(float)
    january: dict[str, list[float]] = defaultdict(list)
    july: dict[str, list[float]] = defaultdict(list)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Dwelling.kind, Channel.path, RollupDay.day, RollupDay.consumption,
                   RollupDay.mean)
            .join(Channel, Channel.id == RollupDay.channel_id)
            .join(Box, Box.id == Channel.box_id)
            .join(Dwelling, Dwelling.id == Box.dwelling_id)
        ).all()  # fmt: skip
    for kind, path, day, consumption, mean in rows:
        if consumption is not None:
            yearly[kind, path] += consumption
        if day.month == 1 and kind == "dwelling":
            january[path].append(consumption if consumption is not None else mean)
        if day.month == 7 and kind == "dwelling":
            july[path].append(consumption if consumption is not None else mean)
    flats = 40
    elec_kwh = yearly["dwelling", "tic.1.index.base"] / flats / 1000
    cold_m3 = yearly["dwelling", "impulsion.1.index"] / flats / 1000
    hot_m3 = yearly["dwelling", "impulsion.2.index"] / flats / 1000
    heat_mwh = yearly["dwelling", "impulsion.3.index"] / flats / 1e6
    gas_m3 = yearly["common_area", "impulsion.1.index"] / 1000
    assert 1500 < elec_kwh < 6000
    assert 40 < cold_m3 < 150 and 15 < hot_m3 < 80
    assert 2 < heat_mwh < 12
    assert gas_m3 * 10.5 / 1000 > heat_mwh * flats  # the boiler burns more than it delivers
    assert sum(january["impulsion.3.index"]) > 20 * max(1.0, sum(july["impulsion.3.index"]))
    indoor = january["temp.1"] + july["temp.1"]
    assert min(indoor) > 15 and max(indoor) < 30
    humidity = january["temp.2"] + july["temp.2"]
    assert min(humidity) > 30 and max(humidity) < 85


def test_hourly_readings_sum_to_the_day(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    generate(engine, GenerateOptions(end=END, buildings=1, flats=1, days=3, raw_days=3))
    with engine.connect() as conn:
        channel = conn.execute(
            select(Channel.id).where(Channel.path == "impulsion.1.index").limit(1)
        ).scalar_one()
        day = END - timedelta(days=1)
        start, end = day_bounds(day)
        values = (
            conn.execute(
                select(Reading.value)
                .where(Reading.channel_id == channel, Reading.at >= start - timedelta(hours=1))
                .where(Reading.at < end)
                .order_by(Reading.at)
            )
            .scalars()
            .all()
        )
        total = conn.execute(
            select(RollupDay.consumption).where(
                RollupDay.channel_id == channel, RollupDay.day == day
            )
        ).scalar_one()
    assert len(values) == 25
    assert values == sorted(values)
    assert values[-1] - values[0] == total
    assert (to_epoch_us(end) - to_epoch_us(start)) // HOUR_US == 24
