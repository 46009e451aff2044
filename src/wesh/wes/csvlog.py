"""CSV log files on the WES SD card: OUR format, codec only (no I/O).

Nothing public describes the box's CSV logs (``wes.md`` §5, §10). This module fixes a
plausible format so the client, the simulator and the tests agree; it is documented
in ``docs/wes-client.md`` as our choice, to be checked against a real box::

    path      /LOGS/<YYYY>/<MM>/<YYYYMMDD>.CSV       one file per local (Europe/Paris) day
    encoding  ISO-8859-1, lines end with CRLF (any of CRLF, LF, CR accepted)
    header    Date;Heure;<path> (<unit>);<path> (<unit>);...
    row       DD/MM/YYYY;HH:MM:SS;<value>;<value>;...

    Date;Heure;tic.1.power_va (VA);tic.1.index.base (Wh);impulsion.1.index (L);temp.1 (°C)
    21/11/2025;14:07:00;1840;12345678;1234,567;19,8

* Column paths are the reading paths of :mod:`wesh.wes.readings` (``tic.1.power_va``,
  ``temp.1``...), so a log row becomes the same :class:`Reading` a live poll gives.

* Separator ``;``, decimal **comma** (French spreadsheet convention); a point is
  accepted when reading. Integral values are written without decimals.
* Time is the box's local wall-clock time (Europe/Paris). In the repeated hour of the
  autumn change, a time going backwards within a file is read as the second pass.
* An empty cell (or ``----``) is a missing value (``None``). The unit, in parentheses
  after the column path, is optional.
* A line starting with ``Date;Heure`` is a header; a header in the middle of a file
  (the box restarted, or its channels changed) starts new columns for the lines after it.

Reading is tolerant: a bad line is reported (:class:`DecodeError` with ``where="line N"``)
and skipped; a bad cell is reported and read as ``None``; every good value is kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from wesh.errors import DecodeError, UsageError
from wesh.wes.readings import Reading, ReadingKind

__all__ = [
    "CSV_ENCODING",
    "LOCAL_TZ",
    "LOG_ROOT",
    "CsvColumn",
    "CsvLog",
    "CsvLogRow",
    "csv_log_path",
    "format_csv_header",
    "format_csv_log",
    "format_csv_row",
    "parse_csv_log",
    "reading_kind",
]

LOG_ROOT = "/LOGS"
CSV_ENCODING = "iso-8859-1"
LOCAL_TZ = ZoneInfo("Europe/Paris")
_SEP = ";"
_EOL = "\r\n"
_HEADER_START = ("Date", "Heure")
_PLACEHOLDERS = frozenset({"", "----", "-"})
_COLUMN_RE = re.compile(r"^(?P<path>[^()]+?)\s*(?:\((?P<unit>[^()]*)\))?$")
_FORBIDDEN = re.compile(r"[;()\r\n\"]")
_MAX_LINE_CHARS = 65_536
_STATE_FAMILIES = frozenset({"relais", "relais1w", "entree", "switch"})


@dataclass(frozen=True, slots=True)
class CsvColumn:
    """One data column: a reading path (``"tic1/PAP"``) and its unit (``"VA"``) if any."""

    path: str
    unit: str | None = None

    def header(self) -> str:
        """Return the header cell: ``path (unit)`` or ``path``."""
        return f"{self.path} ({self.unit})" if self.unit else self.path


@dataclass(frozen=True, slots=True)
class CsvLogRow:
    """One good line of a log.

    Attributes:
        line: 1-based line number in the file.
        box_time: the box's timestamp (aware, Europe/Paris).
        values: value per column path; ``None`` when missing or unreadable.
    """

    line: int
    box_time: datetime
    values: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class CsvLog:
    """A parsed log file: its columns, good rows, and one error per bad line or cell."""

    columns: tuple[CsvColumn, ...] = ()
    rows: tuple[CsvLogRow, ...] = ()
    errors: tuple[DecodeError, ...] = ()
    units: Mapping[str, str | None] = field(default_factory=dict)

    def readings(self, *, poll_time: datetime) -> list[Reading]:
        """Every known value as a :class:`Reading` (``box_time`` = the row's time).

        ``poll_time`` is when the file was downloaded. The kind follows the path: an
        ``index``/``injection`` path is an index, relays, inputs, switches and
        ``*.available`` are states (``bool``), the rest gauges.
        """
        if poll_time.tzinfo is None:
            raise UsageError("poll_time must be timezone-aware", where="poll_time")
        out: list[Reading] = []
        for row in self.rows:
            for path, value in row.values.items():
                if value is None:
                    continue
                kind = reading_kind(path)
                typed: float | bool = bool(value) if kind == "state" else value
                out.append(
                    Reading(path, typed, self.units.get(path), row.box_time, poll_time, kind)
                )
        return out


def reading_kind(path: str) -> ReadingKind:
    """Guess how a reading path aggregates (see :mod:`wesh.wes.readings`)."""
    parts = path.split(".")
    if "index" in parts or (parts[0] == "pince" and parts[-1] == "injection"):
        return "index"
    if parts[0] in _STATE_FAMILIES or parts[-1] in ("available", "producer", "alarm"):
        return "state"
    return "gauge"


def csv_log_path(day: date) -> str:
    """Return the file holding the log of local day ``day``: ``/LOGS/YYYY/MM/YYYYMMDD.CSV``."""
    return f"{LOG_ROOT}/{day.year:04d}/{day.month:02d}/{day:%Y%m%d}.CSV"


# -- writing -------------------------------------------------------------------------------


def format_csv_header(columns: Sequence[CsvColumn]) -> str:
    """Return the header line (with its CRLF) for ``columns``."""
    for column in columns:
        for text in (column.path, column.unit or ""):
            if _FORBIDDEN.search(text) or text != text.strip():
                raise UsageError(f"column name or unit not allowed in a CSV log: {text!r}")
        if not column.path:
            raise UsageError("empty column path in a CSV log")
    return _SEP.join([*_HEADER_START, *(c.header() for c in columns)]) + _EOL


def format_csv_row(box_time: datetime, values: Sequence[float | None]) -> str:
    """Return one data line (with its CRLF); ``box_time`` must be aware (written in Paris time)."""
    if box_time.tzinfo is None:
        raise UsageError("CSV log times must be timezone-aware")
    local = box_time.astimezone(LOCAL_TZ)
    cells = [f"{local:%d/%m/%Y}", f"{local:%H:%M:%S}", *(_format_value(v) for v in values)]
    return _SEP.join(cells) + _EOL


def format_csv_log(
    columns: Sequence[CsvColumn],
    rows: Iterable[tuple[datetime, Sequence[float | None]]],
) -> str:
    """Return a whole log file: header then one line per ``(box_time, values)``."""
    parts = [format_csv_header(columns)]
    for box_time, values in rows:
        if len(values) != len(columns):
            raise UsageError(f"{len(values)} values for {len(columns)} columns")
        parts.append(format_csv_row(box_time, values))
    return "".join(parts)


def _format_value(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"not a finite number for a CSV log: {value!r}")
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value)).replace(".", ",")


# -- reading -------------------------------------------------------------------------------


def parse_csv_log(text: str) -> CsvLog:
    """Parse a log file; bad lines and cells are reported in ``errors``, never raised.

    Lines before the first header are errors (their columns are unknown).
    """
    columns: tuple[CsvColumn, ...] = ()
    all_columns: dict[str, CsvColumn] = {}
    rows: list[CsvLogRow] = []
    errors: list[DecodeError] = []
    previous: datetime | None = None
    for number, line in enumerate(re.split(r"\r\n|\n|\r", text), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        if len(line) > _MAX_LINE_CHARS:
            errors.append(DecodeError("line too long", where=where))
            continue
        cells = [cell.strip() for cell in line.split(_SEP)]
        if tuple(cells[:2]) == _HEADER_START:
            try:
                columns = tuple(_parse_column(cell) for cell in cells[2:])
            except DecodeError as exc:
                errors.append(DecodeError(exc.message, where=where))
                columns = ()
                continue
            all_columns.update((c.path, c) for c in columns)
            previous = None
            continue
        if not columns:
            errors.append(DecodeError("data line before any valid header", where=where))
            continue
        if len(cells) != len(columns) + 2:
            errors.append(
                DecodeError(f"{len(cells)} cells, expected {len(columns) + 2}", where=where)
            )
            continue
        try:
            box_time = _parse_time(cells[0], cells[1], previous)
        except DecodeError as exc:
            errors.append(DecodeError(exc.message, where=where))
            continue
        previous = box_time
        values: dict[str, float | None] = {}
        for column, cell in zip(columns, cells[2:], strict=True):
            try:
                values[column.path] = _parse_value(cell)
            except DecodeError as exc:
                errors.append(DecodeError(exc.message, where=where, channel=column.path))
                values[column.path] = None
        rows.append(CsvLogRow(line=number, box_time=box_time, values=values))
    return CsvLog(
        columns=tuple(all_columns.values()),
        rows=tuple(rows),
        errors=tuple(errors),
        units={path: c.unit for path, c in all_columns.items()},
    )


def _parse_column(cell: str) -> CsvColumn:
    match = _COLUMN_RE.match(cell)
    if not match:
        raise DecodeError(f"bad column header {cell[:60]!r}")
    unit = (match.group("unit") or "").strip() or None
    return CsvColumn(path=match.group("path").strip(), unit=unit)


def _parse_time(day_text: str, time_text: str, previous: datetime | None) -> datetime:
    naive = None
    for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            naive = datetime.strptime(f"{day_text} {time_text}", fmt)  # noqa: DTZ007 - local
            break
        except ValueError:
            continue
    if naive is None:
        raise DecodeError(f"bad date/time {day_text[:20]!r} {time_text[:20]!r}")
    local = naive.replace(tzinfo=LOCAL_TZ)
    if previous is not None and local.astimezone(UTC) < previous.astimezone(UTC):
        # Wall time went backwards: in the repeated hour of the autumn change, the
        # second pass (fold=1) is meant.
        second = local.replace(fold=1)
        if second.utcoffset() != local.utcoffset():
            local = second
    return local


def _parse_value(cell: str) -> float | None:
    if cell in _PLACEHOLDERS:
        return None
    try:
        value = float(cell.replace(",", "."))
    except ValueError:
        raise DecodeError(f"not a number: {cell[:40]!r}") from None
    if not math.isfinite(value):
        raise DecodeError(f"not a finite number: {cell[:40]!r}")
    return value
