"""Heating and comfort rules over temperature and humidity probes (pure).

==================  ==============================  ==============================
rule                ON                              healthy again
==================  ==============================  ==============================
``frost``           hourly mean < below_c (12 °C)   newest hour ≥ clear_c (14 °C)
                    for ``hours`` (3) hours
``overheating``     hourly mean > above_c (28 °C)   newest hour ≤ clear_c (26 °C)
                    for ``hours`` (6) hours
``humidity_high``   daily mean > above_pct (70 %)   newest day ≤ clear_pct (65 %)
                    for ``days`` (3) days
``hot_water_cold``  hot-water probe hourly mean     newest hour ≥ clear_c (55 °C)
                    < below_c (50 °C) for 2 hours
==================  ==============================  ==============================

In between: HOLD (hysteresis). Which probe is which is decided by
:func:`probe_role` from the channel's label and path (``[probes]`` in the configuration):
hot-water probes get only ``hot_water_cold``; outdoor probes no rule; plant-room probes
``frost`` but not ``overheating``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from wesh.hq.alerts.model import Subject
from wesh.hq.alerts.rules import Finding, Params, sustained
from wesh.hq.timeutil import PARIS, from_epoch_us

__all__ = ["ProbeRole", "daily_rule", "hourly_rule", "probe_role"]

ProbeRole = Literal["room", "hot_water", "outdoor", "plant_room"]
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)

#: rule → (trigger key, clear key, length key, above?, unit)
_SPECS: Mapping[str, tuple[str, str, str, bool, str]] = {
    "frost": ("below_c", "clear_c", "hours", False, "°C"),
    "overheating": ("above_c", "clear_c", "hours", True, "°C"),
    "hot_water_cold": ("below_c", "clear_c", "hours", False, "°C"),
    "humidity_high": ("above_pct", "clear_pct", "days", True, "%"),
}


def probe_role(
    label: str | None,
    path: str,
    *,
    hot_water: re.Pattern[str],
    outdoor: re.Pattern[str],
    plant_room: re.Pattern[str],
) -> ProbeRole:
    """Say what a temperature probe measures from its label and path (first match wins)."""
    text = f"{label or ''} {path}"
    if hot_water.search(text):
        return "hot_water"
    if outdoor.search(text):
        return "outdoor"
    if plant_room.search(text):
        return "plant_room"
    return "room"


def hourly_rule(
    rule: str,
    now: datetime,
    *,
    series: Mapping[int, Sequence[tuple[int, float]]],
    params: Params,
) -> list[Finding]:
    """Judge ``frost``, ``overheating`` or ``hot_water_cold`` on hourly means (oldest first)."""
    points = {
        cid: [(from_epoch_us(hour), value) for hour, value in values]
        for cid, values in series.items()
    }
    return _sustained_rule(rule, now, points=points, params=params, step=_HOUR, length="hours")


def daily_rule(
    rule: str,
    now: datetime,
    *,
    series: Mapping[int, Sequence[tuple[date, float]]],
    params: Params,
) -> list[Finding]:
    """Judge ``humidity_high`` on daily means (Paris days, oldest first)."""
    points = {
        cid: [
            (datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC), value)
            for day, value in values
        ]
        for cid, values in series.items()
    }
    return _sustained_rule(rule, now, points=points, params=params, step=_DAY, length="days")


def _sustained_rule(
    rule: str,
    now: datetime,
    *,
    points: Mapping[int, Sequence[tuple[datetime, float]]],
    params: Params,
    step: timedelta,
    length: str,
) -> list[Finding]:
    """Judge ``rule`` on each channel's means, one per ``step`` starting at its instant.

    A finding holds until the end of the newest mean's ``step`` (at most ``now``); its
    details count the run in ``length`` (``"hours"`` or ``"days"``).
    """
    trigger_key, clear_key, length_key, above, unit = _SPECS[rule]
    out: list[Finding] = []
    for cid, values in points.items():
        subject = Subject("channel", cid)
        p = params(subject)
        run = sustained(
            values,
            trigger=p[trigger_key],
            clear=p[clear_key],
            needed=int(p[length_key]),
            above=above,
        )
        if run is None or run.level is None:
            continue
        out.append(
            Finding(
                rule,
                subject,
                run.level,
                min(now, values[-1][0] + step),
                since=run.since,
                value=round(run.value, 1),
                unit=unit,
                threshold=p[trigger_key],
                details={length: run.length, "clear_threshold": p[clear_key]},
            )
        )
    return out
