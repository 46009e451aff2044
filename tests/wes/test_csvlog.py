"""CSV log codec (our documented format)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wesh.errors import DecodeError, UsageError
from wesh.wes.csvlog import (
    LOCAL_TZ,
    CsvColumn,
    csv_log_path,
    format_csv_header,
    format_csv_log,
    format_csv_row,
    parse_csv_log,
    reading_kind,
)

COLUMNS = (
    CsvColumn("tic.1.power_va", "VA"),
    CsvColumn("tic.1.index.base", "Wh"),
    CsvColumn("impulsion.1.index", "L"),
    CsvColumn("temp.1", "°C"),
    CsvColumn("entree.1"),
)

SAMPLE = (
    "Date;Heure;tic.1.power_va (VA);tic.1.index.base (Wh);impulsion.1.index (L);temp.1 (°C);"
    "entree.1\r\n"
    "21/11/2025;14:07:00;1840;12345678;1234,567;19,8;0\r\n"
    "21/11/2025;14:08:00;1850;12345690;1234,6;19.9;1\r\n"
)


def test_path_convention() -> None:
    assert csv_log_path(date(2025, 11, 21)) == "/LOGS/2025/11/20251121.CSV"
    assert csv_log_path(date(2026, 1, 2)) == "/LOGS/2026/01/20260102.CSV"


def test_parse_sample() -> None:
    log = parse_csv_log(SAMPLE)
    assert log.errors == ()
    assert log.columns == COLUMNS
    assert log.units["temp.1"] == "°C"
    assert log.units["entree.1"] is None
    first, second = log.rows
    assert first.line == 2
    assert first.box_time == datetime(2025, 11, 21, 14, 7, tzinfo=LOCAL_TZ)
    assert first.box_time.utcoffset() == timedelta(hours=1)
    assert first.values == {
        "tic.1.power_va": 1840,
        "tic.1.index.base": 12345678,
        "impulsion.1.index": pytest.approx(1234.567),
        "temp.1": pytest.approx(19.8),
        "entree.1": 0,
    }
    assert second.values["temp.1"] == pytest.approx(19.9)  # a point is accepted too


def test_readings_of_a_log() -> None:
    polled = datetime(2025, 11, 22, 8, 0, tzinfo=UTC)
    readings = parse_csv_log(SAMPLE).readings(poll_time=polled)
    assert len(readings) == 10
    first = {r.path: r for r in readings[:5]}
    assert first["tic.1.index.base"].kind == "index"
    assert first["tic.1.index.base"].unit == "Wh"
    assert first["tic.1.power_va"].kind == "gauge"
    assert first["entree.1"].kind == "state"
    assert first["entree.1"].value is False
    assert first["temp.1"].unit == "°C"
    assert all(r.poll_time == polled for r in readings)
    assert first["temp.1"].box_time == datetime(2025, 11, 21, 14, 7, tzinfo=LOCAL_TZ)
    with pytest.raises(UsageError):
        parse_csv_log(SAMPLE).readings(poll_time=datetime(2025, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("tic.1.index.hchc", "index"),
        ("impulsion.2.index", "index"),
        ("pince.1.injection", "index"),
        ("pince.1.index", "index"),
        ("relais.1", "state"),
        ("relais1w.101", "state"),
        ("switch.3", "state"),
        ("tic.2.available", "state"),
        ("temp.1", "gauge"),
        ("impulsion.1.consumption.day", "gauge"),
    ],
)
def test_reading_kind(path: str, kind: str) -> None:
    assert reading_kind(path) == kind


def test_format_sample_exactly() -> None:
    t0 = datetime(2025, 11, 21, 13, 7, tzinfo=UTC)  # 14:07 in Paris
    text = format_csv_log(
        COLUMNS,
        [
            (t0, [1840, 12345678, 1234.567, 19.8, 0]),
            (t0 + timedelta(minutes=1), [1850.0, 12345690, 1234.6, 19.9, 1]),
        ],
    )
    assert text == SAMPLE.replace("19.9", "19,9")


def test_bad_lines_are_reported_and_good_ones_kept() -> None:
    text = (
        "21/11/2025;13:00:00;1;2\n"  # before any header
        "Date;Heure;a (W);b\n"
        "21/11/2025;14:00:00;100;5\n"
        "21/11/2025;14:01:00;100\n"  # too few cells
        "32/11/2025;14:02:00;100;5\n"  # bad date
        "21/11/2025;14:03:00;oops;6\n"  # bad cell: kept as None
        "21/11/2025;14:04:00;;----\n"  # missing values, no error
        "21/11/2025;14:05:00;nan;7\n"  # not finite
        "21/11/2025;14:06"  # truncated last line (file being written)
    )
    log = parse_csv_log(text)
    assert [row.line for row in log.rows] == [3, 6, 7, 8]
    assert log.rows[1].values == {"a": None, "b": 6}
    assert log.rows[2].values == {"a": None, "b": None}
    assert log.rows[3].values == {"a": None, "b": 7}
    wheres = [(e.where, e.channel) for e in log.errors]
    assert wheres == [
        ("line 1", None),
        ("line 4", None),
        ("line 5", None),
        ("line 6", "a"),
        ("line 8", "a"),
        ("line 9", None),
    ]
    assert all(isinstance(e, DecodeError) for e in log.errors)


def test_new_header_mid_file_switches_columns() -> None:
    text = (
        "Date;Heure;a (W)\r\n"
        "01/06/2025;00:00:00;1\r\n"
        "Date;Heure;a (W);b (l)\r\n"
        "01/06/2025;00:01:00;2;3\r\n"
    )
    log = parse_csv_log(text)
    assert log.errors == ()
    assert [row.values for row in log.rows] == [{"a": 1}, {"a": 2, "b": 3}]
    assert log.columns == (CsvColumn("a", "W"), CsvColumn("b", "l"))
    assert log.rows[0].box_time.utcoffset() == timedelta(hours=2)


def test_bad_header_is_reported_and_its_lines_skipped() -> None:
    log = parse_csv_log("Date;Heure;a (W;b\n01/06/2025;00:00:00;1;2\n")
    assert log.rows == ()
    assert [e.where for e in log.errors] == ["line 1", "line 2"]


def test_empty_file() -> None:
    log = parse_csv_log("")
    assert (log.columns, log.rows, log.errors) == ((), (), ())


def test_autumn_repeated_hour_is_disambiguated_by_order() -> None:
    # 2025-10-26: 02:00-03:00 Paris happens twice (CEST then CET).
    start = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST
    times = [start + timedelta(minutes=15 * k) for k in range(8)]
    text = format_csv_log([CsvColumn("x")], [(t, [k]) for k, t in enumerate(times)])
    log = parse_csv_log(text)
    assert log.errors == ()
    assert [row.box_time.astimezone(UTC) for row in log.rows] == times


def test_format_refuses_bad_input() -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(UsageError):
        format_csv_header([CsvColumn("a;b")])
    with pytest.raises(UsageError):
        format_csv_header([CsvColumn("a", "(x)")])
    with pytest.raises(UsageError):
        format_csv_header([CsvColumn("")])
    with pytest.raises(UsageError):
        format_csv_row(datetime(2025, 1, 1), [1])  # noqa: DTZ001 - naive on purpose
    with pytest.raises(UsageError):
        format_csv_row(t, [float("inf")])
    with pytest.raises(UsageError):
        format_csv_log([CsvColumn("a")], [(t, [1, 2])])


_paths = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789/_", min_size=1, max_size=20)
_units = st.none() | st.sampled_from(["W", "VA", "Wh", "l", "m3", "°C", "%", "A", "V"])
_values = (
    st.none() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False)
)


@given(
    columns=st.lists(st.tuples(_paths, _units), min_size=1, max_size=6, unique_by=lambda c: c[0]),
    data=st.data(),
)
def test_round_trip(columns: list[tuple[str, str | None]], data: st.DataObject) -> None:
    cols = [CsvColumn(path, unit) for path, unit in columns]
    start = data.draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),  # noqa: DTZ001
            max_value=datetime(2090, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )
    start = start.replace(microsecond=0)
    # Documented limit: a file that *starts* in the second pass of the autumn repeated
    # hour cannot be told from the first pass (files start at midnight, so never in practice).
    assume(start.astimezone(LOCAL_TZ).fold == 0)
    rows = [
        (
            start + timedelta(minutes=k),
            data.draw(st.lists(_values, min_size=len(cols), max_size=len(cols))),
        )
        for k in range(data.draw(st.integers(0, 5)))
    ]
    log = parse_csv_log(format_csv_log(cols, rows))
    assert log.errors == ()
    assert log.columns == tuple(cols)
    assert len(log.rows) == len(rows)
    for row, (when, values) in zip(log.rows, rows, strict=True):
        assert row.box_time.astimezone(UTC) == when
        assert list(row.values.values()) == [None if v is None else float(v) for v in values]


@given(st.text(max_size=500))
def test_random_text_never_raises(text: str) -> None:
    log = parse_csv_log(text)
    assert all(isinstance(e, DecodeError) for e in log.errors)
