"""What every rule shares: the :class:`Finding` a pure rule returns, units, sustained runs.

The rules themselves are pure functions over plain rows, one module per family:

=====================  =====================================================================
module                 rules
=====================  =====================================================================
``rules_nodata``       channel_silent, box_silent, gateway_silent, link_silent
``rules_leak``         leak_continuous_flow, leak_night_flow, leak_burst
``rules_comfort``      frost, overheating, humidity_high, hot_water_cold
``rules_consumption``  consumption_high, consumption_above_average, vacant_consumption
``rules_meter``        index_backwards, index_jump, tic_overload, tic_status_alarm
``rules_gateway``      queue_backlog, sms_budget_exhausted, boxes_down
=====================  =====================================================================

A rule receives its thresholds through a ``Params`` callable (a subject's thresholds after
the scope overrides: :meth:`wesh.hq.alerts.config.AlertsConfig.params`) and returns
:class:`Finding` objects; :mod:`wesh.hq.alerts.evaluate` adds the place and the severity
to make :class:`~wesh.hq.alerts.model.Condition` objects. Meaning and defaults:
``docs/alerts-rules.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from wesh.hq.alerts.model import JsonScalar, Level, Subject

__all__ = [
    "NATURAL_UNITS",
    "Finding",
    "Params",
    "Run",
    "natural_factor",
    "sustained",
]

#: A subject's thresholds for one rule (after scope overrides).
Params = Callable[[Subject], Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Finding:
    """A pure rule's verdict on one subject (a Condition without place and severity)."""

    rule: str
    subject: Subject
    level: Level
    observed_at: datetime
    since: datetime | None = None
    value: float | None = None
    unit: str | None = None
    threshold: float | None = None
    parent: Subject | None = None
    parent_rule: str | None = None
    details: Mapping[str, JsonScalar] = field(default_factory=dict)


#: The unit thresholds are written in, per channel kind (``electricity_kwh``, ``gas_m3``...).
NATURAL_UNITS: Final[Mapping[str, str]] = {
    "electricity": "kWh",
    "heat": "kWh",
    "cold_water": "L",
    "hot_water": "L",
    "gas": "m3",
    "other": "kWh",
}

_FACTORS: Final[Mapping[str, Mapping[str, float]]] = {
    "kWh": {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0},
    "L": {"l": 1.0, "dal": 10.0, "m3": 1000.0, "m³": 1000.0},
    "m3": {"l": 0.001, "dal": 0.01, "m3": 1.0, "m³": 1.0},
}


def natural_factor(kind: str, unit: str | None) -> float | None:
    """Return the factor from a channel's unit to its kind's natural unit, ``None`` if unknown.

    ``natural_factor("electricity", "Wh") == 0.001`` (kWh); water in L, gas in m³.
    """
    natural = NATURAL_UNITS.get(kind)
    if natural is None or unit is None:
        return None
    return _FACTORS[natural].get(unit.strip().lower())


@dataclass(frozen=True, slots=True)
class Run:
    """A sustained-condition verdict over a time series (see :func:`sustained`)."""

    level: Level | None  # None: healthy (back past the clear threshold)
    since: datetime | None  # start of the run beyond the trigger threshold
    length: int  # consecutive values beyond the trigger threshold, newest first
    value: float  # the newest value


def sustained(
    values: Sequence[tuple[datetime, float]],
    *,
    trigger: float,
    clear: float,
    needed: int,
    above: bool,
) -> Run | None:
    """Judge a series (oldest first, consecutive buckets) against a hysteresis band.

    ON when the newest ``needed`` values are all beyond ``trigger`` (``>`` when ``above``,
    else ``<``); ``None`` level (healthy) when the newest value is back past ``clear``
    (``<=`` clear when ``above``, ``>=`` otherwise); HOLD in between (borderline, or
    beyond the trigger for fewer than ``needed`` buckets). Returns ``None`` for an empty
    series. ``since`` is the first bucket of the newest run beyond the trigger.
    """
    if not values:
        return None
    newest = values[-1][1]
    length = 0
    since: datetime | None = None
    for at, value in reversed(values):
        beyond = value > trigger if above else value < trigger
        if not beyond:
            break
        length += 1
        since = at
    if length >= max(1, needed):
        return Run(Level.ON, since, length, newest)
    healthy = newest <= clear if above else newest >= clear
    if healthy:
        return Run(None, None, length, newest)
    return Run(Level.HOLD, since, length, newest)
