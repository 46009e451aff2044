"""Daily CSV logs of a simulated box, in the format of :mod:`wesh.wes.csvlog`.

Pure logic. A :class:`LogRecorder` receives a :class:`BoxState` at each sampling instant
(every ``interval_s`` of simulated time, on the box's clock) and keeps, per local day,
the header and the text lines, ready to be written on the SD card at
``/LOGS/YYYY/MM/YYYYMMDD.CSV`` (:func:`wesh.wes.csvlog.csv_log_path`). Only the last
``keep_days`` days are kept, so a long run does not grow without bound.

Columns (one per channel the box really has) are the reading paths of
:mod:`wesh.wes.readings`, in their normalised units, so that a downloaded log and a
live poll give the same readings::

    tic.1.power_va (VA)  tic.1.index.<base|hchc|hchp> (Wh)  impulsion.<n>.index (L or Wh)
    pince.<n>.index (Wh)  temp.<n> (°C, or % for a humidity probe)

An unplugged meter gives empty cells.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date

from wesh.sim.model import BoxKind, BoxState, CounterState
from wesh.wes.csvlog import CsvColumn, csv_log_path, format_csv_header, format_csv_row

__all__ = ["DEFAULT_LOG_INTERVAL_S", "LogRecorder", "log_columns"]

DEFAULT_LOG_INTERVAL_S = 900
_UNITS = {"l": ("L", 1), "m3": ("L", 1000), "Wh": ("Wh", 1), "kWh": ("Wh", 1000)}


def _counter_unit(counter: CounterState) -> tuple[str, int]:
    """Return the normalised unit of a counter and the factor from its own unit."""
    return _UNITS.get(counter.config.unit, (counter.config.unit, 1))


def log_columns(state: BoxState) -> tuple[CsvColumn, ...]:
    """Return the columns logged for a box, from one of its states."""
    columns = [CsvColumn("tic.1.power_va", "VA")]
    reading = state.tics[0].reading
    labels = (
        list(reading.indexes_wh)
        if reading is not None
        else (["BASE"] if state.identity.kind is BoxKind.COMMON else ["HCHC", "HCHP"])
    )
    columns += [CsvColumn(f"tic.1.index.{label.lower()}", "Wh") for label in labels]
    counters = [c for c in state.counters if c.config.name]
    columns += [CsvColumn(f"impulsion.{c.number}.index", _counter_unit(c)[0]) for c in counters]
    columns += [CsvColumn(f"pince.{c.number}.index", "Wh") for c in state.clamps if c.enabled]
    units = ("°C", "%") if state.identity.kind is BoxKind.DWELLING else ("°C",) * 3
    columns += [
        CsvColumn(f"temp.{n}", units[n - 1] if n <= len(units) else None)
        for n in sorted(state.probes)
    ]
    return tuple(columns)


def _row(state: BoxState, columns: tuple[CsvColumn, ...]) -> list[float | None]:
    reading = state.tics[0].reading
    values: dict[str, float | None] = {}
    if reading is not None:
        values["tic.1.power_va"] = reading.power_va
        for label, wh in reading.indexes_wh.items():
            values[f"tic.1.index.{label.lower()}"] = wh
    for counter in state.counters:
        factor = _counter_unit(counter)[1]
        values[f"impulsion.{counter.number}.index"] = (
            counter.index_pulses * factor / counter.config.pulses_per_unit
        )
    for clamp in state.clamps:
        values[f"pince.{clamp.number}.index"] = clamp.index_wh
    for number, value in state.probes.items():
        values[f"temp.{number}"] = value
    return [values.get(column.path) for column in columns]


@dataclass(slots=True)
class _Day:
    lines: list[str] = field(default_factory=list)
    columns: tuple[CsvColumn, ...] = ()


@dataclass(slots=True)
class LogRecorder:
    """Keeps the CSV log lines of the last ``keep_days`` local days of one box."""

    interval_s: int = DEFAULT_LOG_INTERVAL_S
    keep_days: int = 7
    days: OrderedDict[date, _Day] = field(default_factory=OrderedDict)
    version: int = 0

    def record(self, state: BoxState) -> None:
        """Add one line for ``state`` (a header first when the day or the columns change)."""
        day = state.box_time.date()
        entry = self.days.get(day)
        if entry is None:
            entry = self.days[day] = _Day()
            while len(self.days) > self.keep_days:
                self.days.popitem(last=False)
        columns = log_columns(state)
        if columns != entry.columns:
            entry.columns = columns
            entry.lines.append(format_csv_header(columns))
        entry.lines.append(format_csv_row(state.box_time, _row(state, columns)))
        self.version += 1

    def files(self) -> dict[str, str]:
        """Return ``path → text`` of every kept day."""
        return {csv_log_path(day): "".join(entry.lines) for day, entry in self.days.items()}
