"""SqliteSink: idempotent hand-over, exact values, rejections, alarms and statuses."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.sync.sink import (
    IngestResult,
    ReadingSink,
    SiteStatus,
    SqliteSink,
    SyncAlarm,
    SyncReading,
    reading_problem,
)

T0 = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)


def reading(i: int, **changes: object) -> SyncReading:
    base = SyncReading(
        site="site-a",
        box=f"dw-{i % 7}",
        path="impulsion.1.index" if i % 2 else "temp.1",
        at=T0 + timedelta(minutes=i),
        value=1_000_000 + i if i % 2 else 19.5 + i / 1000,
        unit="L" if i % 2 else "°C",
        kind="index" if i % 2 else "gauge",
        quality="measured",
    )
    fields = {name: getattr(base, name) for name in base.__slots__}
    fields.update(changes)
    return SyncReading(**fields)  # type: ignore[arg-type]


def test_is_a_reading_sink(tmp_path: Path) -> None:
    with SqliteSink(tmp_path / "sink.sqlite3") as sink:
        assert isinstance(sink, ReadingSink)


def test_ingest_is_idempotent_and_exact(tmp_path: Path) -> None:
    batch = [reading(i) for i in range(100)]
    with SqliteSink(tmp_path / "sink.sqlite3") as sink:
        assert sink.ingest(batch) == IngestResult(100, 0, 0)
        assert sink.ingest([*batch[:30], reading(100)]) == IngestResult(1, 30, 0)
        assert sink.count() == 101
    with SqliteSink(tmp_path / "sink.sqlite3") as sink:  # survives a reopen
        stored = sink.readings()
    assert sorted(stored, key=repr) == sorted([*batch, reading(100)], key=repr)
    for got in stored:
        assert type(got.value) is (int if got.kind == "index" else float)


def test_aggregates_are_distinct_readings(tmp_path: Path) -> None:
    with SqliteSink(":memory:") as sink:
        result = sink.ingest([reading(1), reading(1, aggregate="hour_last")])
        assert result == IngestResult(2, 0, 0)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"at": datetime(2024, 1, 1)}, "naive"),  # noqa: DTZ001
        ({"value": math.nan}, "not finite"),
        ({"value": True}, "bool"),
        ({"value": 2**70}, "64 bits"),
        ({"kind": "state"}, "kind"),
        ({"quality": "bad"}, "quality"),
        ({"aggregate": "day"}, "aggregate"),
        ({"box": ""}, "empty"),
    ],
)
def test_bad_readings_are_rejected_and_the_rest_kept(
    changes: dict[str, object], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = reading(3, **changes)
    problem = reading_problem(bad)
    assert problem is not None
    assert reason in problem
    with SqliteSink(":memory:") as sink:
        assert sink.ingest([reading(1), bad, reading(2)]) == IngestResult(2, 0, 1)
        assert sink.count() == 2
    assert "rejected" in caplog.text


def test_other_timezones_are_normalised() -> None:
    paris = timezone(timedelta(hours=2))
    with SqliteSink(":memory:") as sink:
        sink.ingest([reading(1, at=(T0 + timedelta(hours=2)).replace(tzinfo=paris))])
        assert sink.ingest([reading(1, at=T0)]) == IngestResult(0, 1, 0)
        assert sink.readings()[0].at == T0
        assert sink.readings()[0].at.tzinfo is UTC


def test_alarms_and_statuses(tmp_path: Path) -> None:
    alarm = SyncAlarm("site-a", "dw-1", None, T0, "box_down", "alarm", "dw-1 ne répond plus")
    status = SiteStatus("site-a", T0, 40, 1, 1234, 12, 200, None, -0.5)
    with SqliteSink(tmp_path / "s.sqlite3") as sink:
        sink.ingest_alarm(alarm)
        sink.ingest_alarm(alarm)
        sink.ingest_status(status)
        sink.ingest_status(status)
        assert sink.alarms() == [alarm]
        assert sink.alarms(site="other") == []
        assert sink.statuses() == [status]


def test_closed_sink_refuses() -> None:
    sink = SqliteSink(":memory:")
    sink.close()
    sink.close()
    with pytest.raises(UsageError):
        sink.ingest([reading(1)])


def test_threads_share_one_sink(tmp_path: Path) -> None:
    with SqliteSink(tmp_path / "s.sqlite3") as sink:
        results: list[IngestResult] = []

        def work(offset: int) -> None:
            for k in range(20):
                results.append(sink.ingest([reading(offset + k * 10 + j) for j in range(10)]))

        threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.inserted for r in results) == sink.count() == 500
        # overlapping ranges: 4 workers x 200 readings over [0, 500): duplicates counted
        assert sum(r.inserted + r.duplicates for r in results) == 800


values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(
    value=values,
    at=st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_round_trip_of_values_and_times(value: float, at: datetime) -> None:
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    kind = "index" if isinstance(value, int) else "gauge"
    original = reading(1, value=value, at=at, kind=kind)
    with SqliteSink(":memory:") as sink:
        sink.ingest([original])
        (got,) = sink.readings()
    assert got == original
    assert type(got.value) is type(value)
