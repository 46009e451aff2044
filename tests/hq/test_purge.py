"""Tenancy purge: the pure planner, and exact deletions on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from tests.hq.estate import Estate, build_estate
from wesh.errors import UsageError
from wesh.hq.db import session_factory
from wesh.hq.ingest import DEFAULT_PURGE_CHECK_S, ChannelResolver, HqSink, ingest
from wesh.hq.migrate import migrate
from wesh.hq.models import RollupHour, Tenancy
from wesh.hq.purge import (
    Lease,
    Span,
    cutoff_for_grace,
    is_purgeable,
    lease_span,
    plan_purge,
    purge_tenancies,
    purged_spans,
    subtract_spans,
    union_spans,
)
from wesh.hq.rollups import refresh_rollups, reroll
from wesh.hq.timeutil import to_epoch_us
from wesh.sync.sink import ReadingQuality, SyncReading

HOUR = timedelta(hours=1)
SITE = "site-B1"
INDEX, WATER, GAUGE = "tic.1.index.base", "impulsion.1.index", "temp.1"
PATHS = (INDEX, WATER, GAUGE)
FIRST = datetime(2024, 10, 18, 22, tzinfo=UTC)  # Paris midnight of 19 October (CEST)
HOURS = 12 * 24 + 1  # to 31 October 00:00 Paris (CET): 289 hourly readings
NOW = datetime(2024, 11, 30, 9, tzinfo=UTC)
CUTOFF = date(2024, 10, 28)  # leases whose last day is 27 October or before


def us(at: datetime) -> int:
    return to_epoch_us(at)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ----------------------------------------------------------------------------- pure planning


def lease(
    tid: int, start: date, end: date | None, *, dwelling: int = 1, purged: bool = False
) -> Lease:
    return Lease(tid, dwelling, start, end, purged)


def test_lease_periods_follow_paris_midnights_across_dst() -> None:
    # 31 March 2024: 23 hours; 27 October 2024: 25 hours.
    assert lease_span(date(2024, 3, 31), date(2024, 3, 31)) == Span(
        us(utc(2024, 3, 30, 23)), us(utc(2024, 3, 31, 22))
    )
    assert lease_span(date(2024, 10, 27), date(2024, 10, 27)) == Span(
        us(utc(2024, 10, 26, 22)), us(utc(2024, 10, 27, 23))
    )
    running = lease_span(date(2024, 1, 1), None)
    assert running.lo_us == us(utc(2023, 12, 31, 23)) and running.hi_us > us(utc(9999, 1, 1))


def test_cutoff_and_purgeable() -> None:
    assert cutoff_for_grace(date(2025, 6, 30), 365) == date(2024, 6, 30)
    assert cutoff_for_grace(date(2025, 6, 30), 0) == date(2025, 6, 30)
    with pytest.raises(UsageError, match="negative"):
        cutoff_for_grace(date(2025, 6, 30), -1)
    with pytest.raises(UsageError, match="before year 1"):
        cutoff_for_grace(date(2025, 6, 30), 10**9)
    cutoff = date(2024, 6, 30)
    assert is_purgeable(lease(1, date(2024, 1, 1), date(2024, 6, 29)), cutoff)
    assert not is_purgeable(lease(1, date(2024, 1, 1), date(2024, 6, 30)), cutoff)
    assert not is_purgeable(lease(1, date(2024, 1, 1), None), cutoff)
    assert not is_purgeable(lease(1, date(2024, 1, 1), date(2024, 1, 2), purged=True), cutoff)


def test_span_arithmetic() -> None:
    assert union_spans([Span(5, 9), Span(1, 3), Span(3, 4), Span(8, 12), Span(7, 7)]) == [
        Span(1, 4),
        Span(5, 12),
    ]
    assert subtract_spans([Span(0, 100)], [Span(10, 20), Span(15, 30), Span(90, 200)]) == [
        Span(0, 10),
        Span(30, 90),
    ]
    assert subtract_spans([Span(0, 10), Span(20, 30)], [Span(0, 30)]) == []
    assert subtract_spans([Span(0, 10)], []) == [Span(0, 10)]


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=6),
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=6),
)
def test_subtract_spans_is_set_difference(
    kept: list[tuple[int, int]], holes: list[tuple[int, int]]
) -> None:
    spans = [Span(lo, lo + n) for lo, n in kept]
    removed = [Span(lo, lo + n) for lo, n in holes]
    got = subtract_spans(spans, removed)
    points = {p for s in got for p in range(s.lo_us, s.hi_us)}
    expected = {p for s in spans for p in range(s.lo_us, s.hi_us)} - {
        p for s in removed for p in range(s.lo_us, s.hi_us)
    }
    assert points == expected
    assert all(a.hi_us < b.lo_us for a, b in itertools.pairwise(got))  # disjoint, apart


def test_plan_protects_leases_that_are_not_purgeable() -> None:
    cutoff = date(2024, 7, 1)
    leases = [
        # dwelling 1: an ended lease, then a running one that began before it ended
        lease(1, date(2024, 1, 1), date(2024, 3, 31)),
        lease(2, date(2024, 3, 15), None),
        # dwelling 2: two purgeable leases, one inside the other, and one ended too recently
        lease(3, date(2023, 1, 1), date(2024, 1, 31), dwelling=2),
        lease(4, date(2023, 6, 1), date(2023, 6, 30), dwelling=2),
        lease(5, date(2024, 1, 20), date(2024, 7, 1), dwelling=2),
        # dwelling 3: purged already, nothing to do
        lease(6, date(2023, 1, 1), date(2023, 2, 1), dwelling=3, purged=True),
        # dwelling 4: wholly covered by a running lease: marked, nothing deleted now
        lease(7, date(2024, 2, 1), date(2024, 2, 29), dwelling=4),
        lease(8, date(2024, 1, 1), None, dwelling=4),
    ]
    plans = {plan.dwelling_id: plan for plan in plan_purge(leases, cutoff)}
    assert sorted(plans) == [1, 2, 4]
    assert plans[1].tenancy_ids == (1,)
    assert plans[1].spans == (
        Span(lease_span(date(2024, 1, 1), None).lo_us, lease_span(date(2024, 3, 15), None).lo_us),
    )
    assert plans[2].tenancy_ids == (3, 4)
    assert plans[2].spans == (
        Span(lease_span(date(2023, 1, 1), None).lo_us, lease_span(date(2024, 1, 20), None).lo_us),
    )
    assert plans[4].tenancy_ids == (7,)
    assert plans[4].spans == ()


def test_purged_spans_keep_what_leases_not_purged_cover() -> None:
    leases = [
        # dwelling 1: purged, overlapping a lease not purged yet (ended, or running)
        lease(1, date(2024, 1, 1), date(2024, 3, 31), purged=True),
        lease(2, date(2024, 3, 15), date(2024, 5, 31)),
        lease(3, date(2024, 1, 10), date(2024, 1, 20), purged=True),
        # dwelling 2: purged, nothing else; a running lease of dwelling 3 covers its purged one
        lease(4, date(2023, 6, 1), date(2023, 6, 30), dwelling=2, purged=True),
        lease(5, date(2024, 1, 1), date(2024, 1, 31), dwelling=3, purged=True),
        lease(6, date(2023, 12, 1), None, dwelling=3),
        lease(7, date(2024, 1, 1), None, dwelling=4),
    ]
    got = {item.tenancy_id: spans for item, spans in purged_spans(leases)}
    assert got == {
        1: (
            Span(
                lease_span(date(2024, 1, 1), None).lo_us,
                lease_span(date(2024, 3, 15), None).lo_us,
            ),
        ),
        3: (lease_span(date(2024, 1, 10), date(2024, 1, 20)),),
        4: (lease_span(date(2023, 6, 1), date(2023, 6, 30)),),
        5: (),
    }
    # what a purge deleted is what ingestion now refuses: the planner's spans
    cutoff = date(2024, 5, 31)  # lease 2 ends on it: not purgeable
    before = [replace_purged(item, False) if item.tenancy_id in (1, 3) else item for item in leases]
    (plan,) = [plan for plan in plan_purge(before, cutoff) if plan.dwelling_id == 1]
    assert plan.spans == tuple(union_spans([*got[1], *got[3]]))


def replace_purged(item: Lease, purged: bool) -> Lease:
    return Lease(item.tenancy_id, item.dwelling_id, item.start, item.end, purged)


def test_purged_leases_protect_nothing() -> None:
    leases = [
        lease(1, date(2024, 1, 1), date(2024, 2, 29), purged=True),
        lease(2, date(2024, 2, 1), date(2024, 3, 31)),
    ]
    (plan,) = plan_purge(leases, date(2024, 6, 1))
    assert plan.spans == (lease_span(date(2024, 2, 1), date(2024, 3, 31)),)


# ----------------------------------------------------------------------------- on each engine


@pytest.fixture
def store(engine: Engine) -> Engine:
    migrate(engine)
    return engine


@pytest.fixture
def estate(store: Engine) -> Estate:
    made = build_estate(
        store,
        {
            "B1": [
                ("B1-01", 40.0, "dwelling"),
                ("B1-02", 60.0, "dwelling"),
                ("B1-PC", None, "common_area"),
            ]
        },
    )
    readings = estate_readings(made)
    assert ingest(store, readings).inserted == len(readings)
    refresh_rollups(store)
    tenancies = [
        ("B1-01", "A", date(2024, 10, 25), date(2024, 10, 27)),  # ends on the 25-hour day
        ("B1-01", "B", date(2024, 10, 28), None),  # the next household, running
        ("B1-02", "X", date(2024, 10, 20), date(2024, 10, 27)),
        ("B1-02", "Y", date(2024, 10, 27), date(2024, 10, 28)),  # ended on the cutoff: kept
        ("B1-PC", "PC", date(2024, 10, 20), date(2024, 10, 22)),  # common areas: never
    ]
    with session_factory(store).begin() as session:
        for code, ref, start, end in tenancies:
            session.add(
                Tenancy(
                    dwelling_id=made.dwellings[code], tenant_ref=ref, start_date=start, end_date=end
                )
            )
    return made


def estate_readings(made: Estate) -> list[SyncReading]:
    """Hourly readings of every channel of the estate, 19 to 31 October."""
    readings: list[SyncReading] = []
    for dwelling in made.dwellings:
        for n in range(HOURS):
            at = FIRST + n * HOUR
            quality: ReadingQuality = "measured"
            if dwelling == "B1-01" and at == utc(2024, 10, 27, 22):
                quality = "suspect"  # the last reading of A's period: not a move-out index
            box = f"box-{dwelling}"
            readings += [
                SyncReading(SITE, box, INDEX, at, 1_000 + 10 * n, "Wh", "index", quality),
                SyncReading(SITE, box, WATER, at, 500 + 3 * n, "L", "index", "measured"),
                SyncReading(SITE, box, GAUGE, at, 19.0 + n % 5, "°C", "gauge", "measured"),
            ]
    return readings


def snapshot(store: Engine) -> dict[str, set[tuple[Any, ...]]]:
    with store.connect() as conn:
        return {
            table: {tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))}
            for table in ("reading", "rollup_hour", "rollup_day")
        }


def purged_at(store: Engine) -> dict[str, datetime | None]:
    with store.connect() as conn:
        return dict(conn.execute(select(Tenancy.tenant_ref, Tenancy.purged_at)).all())


def expected_after(estate: Estate, before: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[Any]]:
    """The tables once A and X are purged, computed from literal UTC bounds."""
    gone = {
        # A: 25 Oct 00:00 CEST to 28 Oct 00:00 CET (27 October has 25 hours)
        "B1-01": (us(utc(2024, 10, 24, 22)), us(utc(2024, 10, 27, 23))),
        # X: 20 Oct 00:00 CEST to 27 Oct 00:00 CEST, where Y (not purgeable) begins
        "B1-02": (us(utc(2024, 10, 19, 22)), us(utc(2024, 10, 26, 22))),
    }
    spans = {estate.channel(code, path): span for code, span in gone.items() for path in PATHS}
    kept_indexes = {
        (estate.channel("B1-01", INDEX), us(utc(2024, 10, 27, 21))),  # 22:00 is suspect
        (estate.channel("B1-01", WATER), us(utc(2024, 10, 27, 22))),
        (estate.channel("B1-02", INDEX), us(utc(2024, 10, 26, 21))),
        (estate.channel("B1-02", WATER), us(utc(2024, 10, 26, 21))),
    }

    def inside(cid: int, at: int) -> bool:
        span = spans.get(cid)
        return span is not None and span[0] <= at < span[1]

    return {
        "reading": {
            row
            for row in before["reading"]
            if not inside(row[0], row[1]) or (row[0], row[1]) in kept_indexes
        },
        "rollup_hour": {row for row in before["rollup_hour"] if not inside(row[0], row[1])},
        "rollup_day": before["rollup_day"],
    }


def test_purge_deletes_exactly_the_ended_leases_detail(store: Engine, estate: Estate) -> None:
    before = snapshot(store)
    expected = expected_after(estate, before)
    report = purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    after = snapshot(store)
    assert after == expected
    assert report.readings == len(before["reading"]) - len(after["reading"]) == 3 * 73 + 3 * 168 - 4
    assert (
        report.hours
        == len(before["rollup_hour"]) - len(after["rollup_hour"])
        == 3 * 73 - 1 + 3 * 168
    )
    assert report.kept_readings == 4
    assert report.kept_days == 3 * 3 + 3 * 7  # the daily rollups of the purged spans stay
    assert [item.dwelling for item in report.dwellings] == ["B1-01", "B1-02"]
    assert report.tenancies == 2
    assert purged_at(store) == {"A": NOW, "B": None, "X": NOW, "Y": None, "PC": None}
    data = report.as_dict()
    assert data["dwellings"][0]["spans"] == [
        {
            "start": "2024-10-24T22:00:00+00:00",
            "end": "2024-10-27T23:00:00+00:00",
            "first_day": "2024-10-25",
            "last_day": "2024-10-27",
        }
    ]


def test_the_next_household_keeps_its_first_step(store: Engine, estate: Estate) -> None:
    """Re-rolling the first hour after a purged lease still steps from the move-out index."""
    cid = estate.channel("B1-01", WATER)
    first_hour = utc(2024, 10, 27, 23)

    def stored() -> Any:
        with store.connect() as conn:
            return conn.execute(
                select(RollupHour.consumption).where(
                    RollupHour.channel_id == cid, RollupHour.hour_start == first_hour
                )
            ).scalar_one()

    assert stored() == 3.0
    purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    reroll(store, cid, first_hour, first_hour + HOUR)
    assert stored() == 3.0


def test_dry_run_changes_nothing_and_rerun_does_nothing(store: Engine, estate: Estate) -> None:
    before = snapshot(store)
    dry = purge_tenancies(store, cutoff=CUTOFF, now=NOW, dry_run=True)
    assert snapshot(store) == before
    assert set(purged_at(store).values()) == {None}
    done = purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    assert dry.dry_run and not done.dry_run
    assert dry.dwellings == done.dwellings
    after = snapshot(store)
    again = purge_tenancies(store, cutoff=CUTOFF, now=NOW + timedelta(days=1))
    assert again.dwellings == () and again.tenancies == 0
    assert snapshot(store) == after
    assert purged_at(store)["A"] == NOW


def test_small_batches_and_an_interruption(store: Engine, estate: Estate) -> None:
    expected = expected_after(estate, snapshot(store))
    calls: list[tuple[int, int]] = []

    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        purge_tenancies(store, cutoff=CUTOFF, now=NOW, batch_rows=50, progress=interrupt)
    assert calls[0] == (0, calls[0][1]) and calls[2][0] <= 100  # two batches of at most 50 rows
    assert set(purged_at(store).values()) == {None}  # nothing recorded as done
    progress: list[tuple[int, int]] = []
    report = purge_tenancies(
        store, cutoff=CUTOFF, now=NOW, batch_rows=50, progress=lambda d, t: progress.append((d, t))
    )
    assert snapshot(store) == expected
    assert report.readings + report.hours == progress[-1][0] == progress[-1][1]
    assert len(progress) > 10
    steps = [b[0] - a[0] for a, b in itertools.pairwise(progress)]
    assert all(0 <= step <= 50 for step in steps)
    assert purged_at(store)["A"] == NOW


def test_a_cutoff_in_the_future_is_refused(store: Engine, estate: Estate) -> None:
    with pytest.raises(UsageError, match="after today"):
        purge_tenancies(store, cutoff=date(2024, 12, 1), now=NOW)
    with pytest.raises(UsageError, match="batch_rows"):
        purge_tenancies(store, cutoff=CUTOFF, now=NOW, batch_rows=0)


# ----------------------------------------------------------------------------- late data


#: Readings of the purged periods: A (73 hours) and X (168 hours), three channels each.
PURGED_READINGS = 3 * 73 + 3 * 168


def test_late_readings_of_a_purged_period_are_refused(
    store: Engine, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    """A site re-sending a purged period: refused, so the kept days stay whole."""
    expected = expected_after(estate, snapshot(store))
    purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    resent = estate_readings(estate)
    with caplog.at_level(logging.WARNING, logger="wesh.hq.ingest"):
        result = ingest(store, resent, batch_size=500)
    assert result.inserted == 0
    assert result.rejected == PURGED_READINGS  # the kept move-out indexes too: not re-stored
    assert result.duplicates == len(resent) - PURGED_READINGS
    refresh_rollups(store)
    assert snapshot(store) == expected  # no reading back, every daily rollup as it was
    reasons = {record.getMessage() for record in caplog.records}
    assert (
        f"Ingest: readings of {SITE}/box-B1-01/{WATER} rejected: "
        "period purged after the lease of B1-01 (2024-10-25 to 2024-10-27)" in reasons
    )
    assert any(
        "period purged after the lease of B1-02 (2024-10-20 to 2024-10-27)" in r for r in reasons
    )


def test_a_running_receiver_notices_a_purge(store: Engine, estate: Estate) -> None:
    """The sink's resolver loaded the site before the purge: it reloads it within the delay."""
    expected = expected_after(estate, snapshot(store))
    clock = [1000.0]
    sink = HqSink(store)
    sink.resolver = ChannelResolver(clock=lambda: clock[0])
    resent = estate_readings(estate)
    assert sink.ingest(resent[:3]).duplicates == 3  # the site is cached, no purged period yet
    assert not sink.resolver.purged
    purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    clock[0] += DEFAULT_PURGE_CHECK_S
    result = sink.ingest(resent)
    assert (result.inserted, result.rejected) == (0, PURGED_READINGS)
    sink.refresh()
    assert snapshot(store) == expected
    assert len(sink.resolver.purged) == 6  # the channels of B1-01 and B1-02


def test_a_new_lease_not_purged_protects_its_period(store: Engine, estate: Estate) -> None:
    """Readings of a purged period that a lease added since covers are that household's."""
    purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    resolver = ChannelResolver()
    with session_factory(store).begin() as session:  # X's last day, re-let to Z
        session.add(
            Tenancy(
                dwelling_id=estate.dwellings["B1-02"],
                tenant_ref="Z",
                start_date=date(2024, 10, 26),
                end_date=date(2024, 10, 26),
            )
        )
    day = [
        SyncReading(
            SITE,
            "box-B1-02",
            GAUGE,
            utc(2024, 10, 25, 22) + n * HOUR,
            55.5,
            "°C",
            "gauge",
            "measured",
        )
        for n in range(-1, 25)
    ]
    result = ingest(store, day, resolver=resolver)
    # the hour before is X's (refused), the hour after Y's (never purged: a duplicate)
    assert (result.inserted, result.duplicates, result.rejected) == (24, 1, 1)


def test_a_channel_created_on_a_purged_dwelling_refuses_the_period_too(
    store: Engine, estate: Estate
) -> None:
    purge_tenancies(store, cutoff=CUTOFF, now=NOW)
    late = [
        SyncReading(SITE, "box-B1-01", "temp.2", at, 20.5, "°C", "gauge", "measured")
        for at in (utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))  # A's, then B's
    ]
    result = ingest(store, late, auto_create=True)
    assert (result.inserted, result.rejected) == (1, 1)
