"""Purge a household's detailed data once its lease has ended (``wesh hq purge-tenancies``).

A tenancy is **purgeable** when its lease has ended (``end_date`` set) before a cutoff day
and it is not purged yet (``purged_at`` NULL). The cutoff is a Paris calendar day: by
default today minus :data:`DEFAULT_GRACE_DAYS`. Leases on common areas are never purged.

For each dwelling with purgeable tenancies, over the channels of the boxes serving it::

    lease (Paris days, both included)   |start_date ............ end_date|
    period (UTC, half-open)            [day_bounds(start)[0]  day_bounds(end)[1])
    minus every lease of the dwelling that is not purgeable (running, ended after the
    cutoff): their periods are another household's data and stay whole

    DELETED  reading      rows with ``at`` in the period          (the load curve, samples)
             rollup_hour  rows with ``hour_start`` in the period  (hourly detail)
    KEPT     rollup_day   every row (charge settlement, yearly statements, building totals)
             reading      the last good reading of each index channel in each purged span
                          (the move-out index: later re-rolls of the next household's first
                          hour take their step from it, never from the index before the lease)
             everything outside the periods, meter events, alarms, the inventory

Periods start and end at Paris midnights (23- and 25-hour days included), which are whole
UTC hours, so no hour bucket is ever cut in two. Overlapping purgeable leases are merged
into disjoint spans; the leases purged in one run are marked ``purged_at`` in the
transaction that finishes their dwelling.

Deletes run in transactions of at most ``batch_rows`` rows (a range ``[lo, b)`` whose end
``b`` is found on the primary key), so an interrupted purge keeps what it finished and a
rerun goes on from there; a finished purge is recorded, and a rerun finds nothing to do.

Readings that arrive later for a purged period are refused by ingestion
(:mod:`wesh.hq.ingest`, with :func:`purged_spans`), so the kept daily rollups stay whole.

Planning (:func:`plan_purge`, :func:`purged_spans`) is pure; :func:`purge_tenancies`
reads the store, re-rolls the stale rollups of the channels concerned first (so that the
kept daily rollups hold everything received), then counts and deletes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute

from wesh.errors import UsageError
from wesh.hq.db import transaction
from wesh.hq.models import Box, Channel, Dwelling, Reading, RollupDay, RollupHour, Tenancy
from wesh.hq.rollups import refresh_rollups
from wesh.hq.timeutil import day_bounds, from_epoch_us, paris_day, to_epoch_us

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_GRACE_DAYS",
    "DwellingPlan",
    "DwellingPurge",
    "Lease",
    "PurgeReport",
    "Span",
    "cutoff_for_grace",
    "is_purgeable",
    "lease_span",
    "plan_purge",
    "purge_tenancies",
    "purged_spans",
    "subtract_spans",
    "union_spans",
]

_LOG = logging.getLogger(__name__)

DEFAULT_GRACE_DAYS: Final = 365
"""Days after a lease's last day before its detailed data is purged (``docs/hq-cli.md``).

The yearly charge settlement works from the daily rollups, which are kept; a year after
the move-out, the final settlement of the household's last charge year is normally done
and its disputes are open, so hourly detail is no longer needed for it."""

DEFAULT_BATCH_ROWS: Final = 10_000
"""Most rows deleted in one transaction."""

_FOREVER_US: Final = 2**62
"""The end of a running lease's period (year 148,000: after any reading)."""


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A half-open UTC interval ``[lo_us, hi_us)`` in epoch microseconds."""

    lo_us: int
    hi_us: int

    @property
    def start(self) -> datetime:
        """The first instant (aware UTC)."""
        return from_epoch_us(self.lo_us)

    @property
    def end(self) -> datetime:
        """The first instant after the span (aware UTC)."""
        return from_epoch_us(self.hi_us)


@dataclass(frozen=True, slots=True)
class Lease:
    """A tenancy as the planner sees it (dates are Paris days, both included)."""

    tenancy_id: int
    dwelling_id: int
    start: date
    end: date | None
    purged: bool


@dataclass(frozen=True, slots=True)
class DwellingPlan:
    """What to purge for one dwelling: disjoint sorted ``spans``; leases to mark purged."""

    dwelling_id: int
    tenancy_ids: tuple[int, ...]
    spans: tuple[Span, ...]


# ----------------------------------------------------------------------------- pure planning


def cutoff_for_grace(today: date, grace_days: int) -> date:
    """Return the cutoff day: leases whose last day is before it ended over ``grace_days`` ago.

    Raises:
        UsageError: ``grace_days`` < 0.
    """
    if grace_days < 0:
        raise UsageError(f"the grace period must not be negative, not {grace_days} days")
    try:
        return today - timedelta(days=grace_days)
    except OverflowError as exc:
        raise UsageError(f"a grace period of {grace_days} days goes before year 1") from exc


def is_purgeable(lease: Lease, cutoff: date) -> bool:
    """Tell whether a lease ended before ``cutoff`` and is not purged yet."""
    return not lease.purged and lease.end is not None and lease.end < cutoff


def lease_span(start: date, end: date | None) -> Span:
    """Return the UTC period of a lease from Paris midnight of ``start`` to after ``end``.

    A running lease (``end`` None) lasts for ever.
    """
    lo = to_epoch_us(day_bounds(start)[0])
    hi = _FOREVER_US if end is None else to_epoch_us(day_bounds(end)[1])
    return Span(lo, hi)


def union_spans(spans: Iterable[Span]) -> list[Span]:
    """Return the union of ``spans`` as disjoint sorted spans (touching spans merge)."""
    out: list[Span] = []
    for span in sorted(spans):
        if span.hi_us <= span.lo_us:
            continue
        if out and span.lo_us <= out[-1].hi_us:
            if span.hi_us > out[-1].hi_us:
                out[-1] = Span(out[-1].lo_us, span.hi_us)
        else:
            out.append(span)
    return out


def subtract_spans(spans: Iterable[Span], removed: Iterable[Span]) -> list[Span]:
    """Return the parts of ``spans`` outside every span of ``removed`` (disjoint, sorted)."""
    holes = union_spans(removed)
    out: list[Span] = []
    for span in union_spans(spans):
        lo = span.lo_us
        for hole in holes:
            if hole.hi_us <= lo:
                continue
            if hole.lo_us >= span.hi_us:
                break
            if hole.lo_us > lo:
                out.append(Span(lo, hole.lo_us))
            lo = max(lo, hole.hi_us)
            if lo >= span.hi_us:
                break
        if lo < span.hi_us:
            out.append(Span(lo, span.hi_us))
    return out


def plan_purge(leases: Iterable[Lease], cutoff: date) -> list[DwellingPlan]:
    """Return, per dwelling with purgeable leases, the spans to purge (by dwelling id).

    The spans are the union of the purgeable leases' periods minus the periods of the
    dwelling's leases that are neither purgeable nor purged (running, or ended on or after
    ``cutoff``). Every purgeable lease is listed, even one whose period is wholly covered
    by another lease: that part will go with the covering lease, once it is purged.
    """
    by_dwelling: dict[int, list[Lease]] = defaultdict(list)
    for lease in leases:
        by_dwelling[lease.dwelling_id].append(lease)
    plans: list[DwellingPlan] = []
    for dwelling_id, group in sorted(by_dwelling.items()):
        purgeable = [lease for lease in group if is_purgeable(lease, cutoff)]
        if not purgeable:
            continue
        protected = [
            lease_span(lease.start, lease.end)
            for lease in group
            if not lease.purged and not is_purgeable(lease, cutoff)
        ]
        spans = subtract_spans(
            (lease_span(lease.start, lease.end) for lease in purgeable), protected
        )
        plans.append(
            DwellingPlan(
                dwelling_id,
                tuple(sorted(lease.tenancy_id for lease in purgeable)),
                tuple(spans),
            )
        )
    return plans


def purged_spans(leases: Iterable[Lease]) -> list[tuple[Lease, tuple[Span, ...]]]:
    """Return each purged lease with the parts of its period a purge has deleted.

    A purged lease's period (:func:`lease_span`) minus the periods of the leases of its
    dwelling that are not purged yet (their data stays until they are purged), as
    :func:`plan_purge` computed it; leases in order of dwelling, then of tenancy id. Used
    by ingestion to refuse readings that arrive later for a purged period.
    """
    by_dwelling: dict[int, list[Lease]] = defaultdict(list)
    for lease in leases:
        by_dwelling[lease.dwelling_id].append(lease)
    out: list[tuple[Lease, tuple[Span, ...]]] = []
    for _, group in sorted(by_dwelling.items()):
        protected = [lease_span(lease.start, lease.end) for lease in group if not lease.purged]
        for lease in sorted(group, key=lambda item: item.tenancy_id):
            if lease.purged:
                spans = subtract_spans([lease_span(lease.start, lease.end)], protected)
                out.append((lease, tuple(spans)))
    return out


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class DwellingPurge:
    """What a purge did (or, dry run, would do) for one dwelling.

    ``readings`` and ``hours`` count the ``reading`` and ``rollup_hour`` rows deleted;
    ``kept_readings`` the move-out indexes kept and ``kept_days`` the ``rollup_day`` rows
    of the purged spans, which stay.
    """

    dwelling_id: int
    dwelling: str
    tenancy_ids: tuple[int, ...]
    spans: tuple[Span, ...]
    channels: int
    readings: int
    hours: int
    kept_readings: int
    kept_days: int

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (instants in ISO 8601 UTC, days as Paris dates)."""
        return {
            "dwelling": self.dwelling,
            "tenancies": list(self.tenancy_ids),
            "spans": [_span_dict(span) for span in self.spans],
            "channels": self.channels,
            "readings_deleted": self.readings,
            "hours_deleted": self.hours,
            "readings_kept": self.kept_readings,
            "days_kept": self.kept_days,
        }


def _span_dict(span: Span) -> dict[str, str]:
    return {
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "first_day": paris_day(span.start).isoformat(),
        "last_day": (paris_day(span.end) - timedelta(days=1)).isoformat(),
    }


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """The result of :func:`purge_tenancies`."""

    cutoff: date
    dry_run: bool
    dwellings: tuple[DwellingPurge, ...]

    @property
    def tenancies(self) -> int:
        """Leases purged (or to purge)."""
        return sum(len(item.tenancy_ids) for item in self.dwellings)

    @property
    def readings(self) -> int:
        """``reading`` rows deleted (or to delete)."""
        return sum(item.readings for item in self.dwellings)

    @property
    def hours(self) -> int:
        """``rollup_hour`` rows deleted (or to delete)."""
        return sum(item.hours for item in self.dwellings)

    @property
    def kept_readings(self) -> int:
        """Move-out indexes kept."""
        return sum(item.kept_readings for item in self.dwellings)

    @property
    def kept_days(self) -> int:
        """``rollup_day`` rows of the purged spans, kept."""
        return sum(item.kept_days for item in self.dwellings)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form of the report."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "tenancies": self.tenancies,
            "readings_deleted": self.readings,
            "hours_deleted": self.hours,
            "readings_kept": self.kept_readings,
            "days_kept": self.kept_days,
            "dwellings": [item.as_dict() for item in self.dwellings],
        }


# ----------------------------------------------------------------------------- SQL


@dataclass(frozen=True, slots=True)
class _Target:
    """One dwelling's plan with what the store says about it."""

    plan: DwellingPlan
    code: str
    channels: tuple[tuple[int, bool], ...]  # (channel id, is index)


@dataclass(slots=True)
class _Work:
    """Rows of one channel and span still to delete from one table."""

    table: type[Reading] | type[RollupHour]
    channel_id: int
    lo: datetime
    hi: datetime
    keep: datetime | None  # a reading to keep (the move-out index)


def _load_leases(conn: Connection, cutoff: date) -> list[Lease]:
    """Return every lease of the dwellings (not common areas) with a purgeable lease."""
    candidates = select(Tenancy.dwelling_id).where(
        Tenancy.purged_at.is_(None), Tenancy.end_date.is_not(None), Tenancy.end_date < cutoff
    )
    rows = conn.execute(
        select(
            Tenancy.id, Tenancy.dwelling_id, Tenancy.start_date, Tenancy.end_date, Tenancy.purged_at
        )
        .join(Dwelling, Dwelling.id == Tenancy.dwelling_id)
        .where(Dwelling.kind == "dwelling", Tenancy.dwelling_id.in_(candidates))
        .order_by(Tenancy.dwelling_id, Tenancy.id)
    ).all()
    return [
        Lease(int(tid), int(did), start, end, purged is not None)
        for tid, did, start, end, purged in rows
    ]


def _targets(conn: Connection, plans: Sequence[DwellingPlan]) -> list[_Target]:
    ids = [plan.dwelling_id for plan in plans]
    codes: dict[int, str] = {}
    channels: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        codes.update(
            (int(did), str(code))
            for did, code in conn.execute(
                select(Dwelling.id, Dwelling.code).where(Dwelling.id.in_(chunk))
            )
        )
        for did, cid, is_index in conn.execute(
            select(Box.dwelling_id, Channel.id, Channel.is_index)
            .join(Box, Box.id == Channel.box_id)
            .where(Box.dwelling_id.in_(chunk))
            .order_by(Channel.id)
        ):
            if did is not None:
                channels[int(did)].append((int(cid), bool(is_index)))
    return [
        _Target(plan, codes[plan.dwelling_id], tuple(channels[plan.dwelling_id])) for plan in plans
    ]


def _column(table: type[Reading] | type[RollupHour]) -> InstrumentedAttribute[datetime]:
    return Reading.at if table is Reading else RollupHour.hour_start


def _count(conn: Connection, work: _Work) -> int:
    column = _column(work.table)
    query = select(func.count()).where(
        work.table.channel_id == work.channel_id, column >= work.lo, column < work.hi
    )
    if work.keep is not None:
        query = query.where(column != work.keep)
    return int(conn.execute(query).scalar_one())


def _move_out_index(conn: Connection, channel_id: int, span: Span) -> datetime | None:
    """Return the last good reading of an index channel in ``span`` (the purge keeps it)."""
    return conn.execute(
        select(Reading.at)
        .where(
            Reading.channel_id == channel_id,
            Reading.at >= span.start,
            Reading.at < span.end,
            Reading.quality == "good",
        )
        .order_by(Reading.at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _days_in(conn: Connection, channel_ids: Sequence[int], span: Span) -> int:
    if not channel_ids:
        return 0
    first, stop = paris_day(span.start), paris_day(span.end)
    return int(
        conn.execute(
            select(func.count()).where(
                RollupDay.channel_id.in_(channel_ids), RollupDay.day >= first, RollupDay.day < stop
            )
        ).scalar_one()
    )


def _survey(conn: Connection, target: _Target) -> tuple[list[_Work], DwellingPurge]:
    """Return the deletions a dwelling needs and their counts (nothing is changed)."""
    works: list[_Work] = []
    readings = hours = kept = days = 0
    channel_ids = [cid for cid, _ in target.channels]
    for span in target.plan.spans:
        days += _days_in(conn, channel_ids, span)
        for cid, is_index in target.channels:
            keep = _move_out_index(conn, cid, span) if is_index else None
            kept += keep is not None
            for table in (Reading, RollupHour):
                work = _Work(table, cid, span.start, span.end, keep if table is Reading else None)
                rows = _count(conn, work)
                if rows:
                    works.append(work)
                    if table is Reading:
                        readings += rows
                    else:
                        hours += rows
    report = DwellingPurge(
        dwelling_id=target.plan.dwelling_id,
        dwelling=target.code,
        tenancy_ids=target.plan.tenancy_ids,
        spans=target.plan.spans,
        channels=len(target.channels),
        readings=readings,
        hours=hours,
        kept_readings=kept,
        kept_days=days,
    )
    return works, report


def _delete_some(conn: Connection, work: _Work, budget: int) -> tuple[int, bool]:
    """Delete up to ``budget`` rows of ``work`` from its start; return (rows, finished)."""
    column = _column(work.table)
    boundary = conn.execute(
        select(column)
        .where(work.table.channel_id == work.channel_id, column >= work.lo, column < work.hi)
        .order_by(column)
        .limit(1)
        .offset(budget)
    ).scalar_one_or_none()
    hi = work.hi if boundary is None else boundary
    statement = delete(work.table).where(
        work.table.channel_id == work.channel_id, column >= work.lo, column < hi
    )
    if work.keep is not None:
        statement = statement.where(column != work.keep)
    deleted = int(conn.execute(statement).rowcount)
    work.lo = hi
    return deleted, boundary is None


def _purge_dwelling(
    engine: Engine,
    works: list[_Work],
    tenancy_ids: Sequence[int],
    *,
    now: datetime,
    batch_rows: int,
    done: Callable[[int], None],
) -> tuple[int, int]:
    """Delete ``works`` in transactions of at most ``batch_rows`` rows; mark the leases.

    Returns the ``reading`` and ``rollup_hour`` rows deleted.
    """
    pending = list(works)
    deleted = {Reading: 0, RollupHour: 0}
    while True:
        with transaction(engine) as conn:
            budget = batch_rows
            in_batch = 0
            while pending and budget > 0:
                rows, finished = _delete_some(conn, pending[0], budget)
                deleted[pending[0].table] += rows
                in_batch += rows
                budget -= max(rows, 1)
                if finished:
                    pending.pop(0)
            if not pending:
                conn.execute(
                    update(Tenancy)
                    .where(Tenancy.id.in_(tenancy_ids), Tenancy.purged_at.is_(None))
                    .values(purged_at=now)
                )
        done(in_batch)
        if not pending:
            return deleted[Reading], deleted[RollupHour]


def purge_tenancies(
    engine: Engine,
    *,
    cutoff: date,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeReport:
    """Purge the detailed data of the leases that ended before ``cutoff`` (module docstring).

    Args:
        engine: the HQ store.
        cutoff: a Paris day; leases whose ``end_date`` is before it are purged. It may not
            be after today (a lease whose end lies ahead is still running).
        now: the clock (``purged_at``, today); default the current time.
        dry_run: count what would be deleted, change nothing (stale rollups stay stale).
        batch_rows: most rows deleted in one transaction.
        progress: called with (rows deleted so far, rows to delete) after each transaction.

    Returns:
        What was deleted and kept, per dwelling (for a dry run: what would be).

    Raises:
        UsageError: ``cutoff`` after today, a naive ``now``, ``batch_rows`` < 1.
        TransientError, ConnectionFailed: the database failed; what was committed stays
            done and a rerun goes on from there.
    """
    now = datetime.now(UTC) if now is None else now
    today = paris_day(now)
    if cutoff > today:
        raise UsageError(
            f"the cutoff {cutoff.isoformat()} is after today ({today.isoformat()}): "
            "a lease that ends later is still running"
        )
    if batch_rows < 1:
        raise UsageError(f"batch_rows must be at least 1, not {batch_rows}")
    with transaction(engine) as conn:
        plans = plan_purge(_load_leases(conn, cutoff), cutoff)
        targets = _targets(conn, plans)
    if not dry_run:
        channel_ids = [cid for target in targets for cid, _ in target.channels]
        if channel_ids:
            refresh_rollups(engine, channels=channel_ids)
    surveyed: list[tuple[_Target, list[_Work], DwellingPurge]] = []
    with transaction(engine) as conn:
        for target in targets:
            works, report = _survey(conn, target)
            surveyed.append((target, works, report))
    result = PurgeReport(cutoff, dry_run, tuple(report for _, _, report in surveyed))
    if dry_run:
        return result
    total = result.readings + result.hours
    deleted = 0

    def done(rows: int) -> None:
        nonlocal deleted
        deleted += rows
        if progress is not None:
            progress(deleted, max(total, deleted))

    if progress is not None:
        progress(0, total)
    finished: list[DwellingPurge] = []
    for target, works, report in surveyed:
        readings, hours = _purge_dwelling(
            engine,
            works,
            target.plan.tenancy_ids,
            now=now,
            batch_rows=batch_rows,
            done=done,
        )
        finished.append(replace(report, readings=readings, hours=hours))
        _LOG.info(
            "Purged dwelling %s (tenancies %s): %d readings, %d hourly rollups",
            report.dwelling,
            ",".join(str(tid) for tid in report.tenancy_ids),
            readings,
            hours,
        )
    result = replace(result, dwellings=tuple(finished))
    return result
