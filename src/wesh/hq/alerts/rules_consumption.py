"""Consumption rules per dwelling, over complete Paris days (pure).

Inputs are a dwelling's daily consumption per channel kind, in the kind's natural unit
(kWh for electricity and heat, L for water, m³ for gas: :data:`~wesh.hq.alerts.rules.
NATURAL_UNITS`); thresholds are per day and per kind, named ``<kind>_<unit>``
(``electricity_kwh``, ``cold_water_l``...); a negative threshold turns a kind off.
The subject is the dwelling; when several kinds are beyond their thresholds, the
condition reports the worst (highest ratio to its threshold) and lists the others.

* ``consumption_high``: mean daily consumption over the last ``days`` days above the
  kind's threshold (ON), above ``clear_ratio`` x threshold (HOLD). Common areas only
  with ``common_areas = 1``.
* ``consumption_above_average``: a dwelling's consumption per m² above ``factor`` x its
  building's (total / total surface of the dwellings with data and a surface; at least
  ``min_dwellings`` of them); HOLD above ``clear_factor``.
* ``vacant_consumption``: a dwelling without a tenancy covering the day consuming more
  than the kind's threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from wesh.hq.alerts.model import JsonScalar, Level, Subject
from wesh.hq.alerts.rules import NATURAL_UNITS, Finding, Params

__all__ = [
    "DwellingUse",
    "above_average",
    "consumption_high",
    "threshold_key",
    "vacant_consumption",
]

#: The ratio reported against a zero threshold (any consumption is beyond it).
_NO_LIMIT_RATIO = 1e6


@dataclass(frozen=True, slots=True)
class DwellingUse:
    """A dwelling's mean daily consumption per kind (natural units) over a window."""

    dwelling_id: int
    building_id: int
    kind: str  # "dwelling" or "common_area"
    surface_m2: float | None
    per_day: Mapping[str, float]  # channel kind → mean per day
    days: int


def threshold_key(kind: str) -> str:
    """Return the name of a kind's per-day threshold (``electricity_kwh``)."""
    return f"{kind}_{NATURAL_UNITS[kind].lower()}"


def _worst(
    rule: str,
    now: datetime,
    subject: Subject,
    beyond: list[tuple[float, str, float, float, Level]],
    extra: Mapping[str, JsonScalar],
    *,
    unit_of_value: str | None = None,
) -> Finding:
    """Build one finding from ``(ratio, kind, value, threshold, level)`` entries."""
    beyond.sort(reverse=True)
    ratio, kind, value, threshold, _ = beyond[0]
    level = Level.ON if any(entry[4] is Level.ON for entry in beyond) else Level.HOLD
    details: dict[str, JsonScalar] = {"kind": kind, "ratio": round(ratio, 2), **extra}
    if len(beyond) > 1:
        details["also"] = ", ".join(entry[1] for entry in beyond[1:])
    return Finding(
        rule,
        subject,
        level,
        now,
        value=round(value, 3),
        unit=unit_of_value or NATURAL_UNITS[kind],
        threshold=round(threshold, 3),
        details=details,
    )


def consumption_high(
    now: datetime, *, uses: Collection[DwellingUse], params: Params
) -> list[Finding]:
    """Judge ``consumption_high`` for each dwelling."""
    out: list[Finding] = []
    for use in uses:
        subject = Subject("dwelling", use.dwelling_id)
        p = params(subject)
        if use.kind != "dwelling" and p["common_areas"] < 1:
            continue
        beyond: list[tuple[float, str, float, float, Level]] = []
        for kind, value in use.per_day.items():
            key = threshold_key(kind) if kind in NATURAL_UNITS else None
            limit = p.get(key, -1.0) if key else -1.0
            if limit < 0:
                continue
            if value > limit:
                level = Level.ON
            elif value > limit * p["clear_ratio"]:
                level = Level.HOLD
            else:
                continue
            ratio = value / limit if limit > 0 else _NO_LIMIT_RATIO
            beyond.append((ratio, kind, value, limit, level))
        if beyond:
            out.append(_worst("consumption_high", now, subject, beyond, {"days": use.days}))
    return out


def above_average(now: datetime, *, uses: Collection[DwellingUse], params: Params) -> list[Finding]:
    """Judge ``consumption_above_average`` (dwellings, not common areas, with a surface)."""
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for use in uses:
        if use.kind != "dwelling" or not use.surface_m2:
            continue
        for kind, value in use.per_day.items():
            entry = totals[use.building_id, kind]
            entry[0] += value
            entry[1] += use.surface_m2
            entry[2] += 1
    out: list[Finding] = []
    for use in uses:
        if use.kind != "dwelling" or not use.surface_m2:
            continue
        subject = Subject("dwelling", use.dwelling_id)
        p = params(subject)
        beyond: list[tuple[float, str, float, float, Level]] = []
        mean_of: dict[str, float] = {}
        for kind, value in use.per_day.items():
            total, surface, count = totals[use.building_id, kind]
            if count < p["min_dwellings"] or surface <= 0 or total <= 0:
                continue
            mean = total / surface
            ratio = (value / use.surface_m2) / mean
            if ratio > p["factor"]:
                level = Level.ON
            elif ratio > p["clear_factor"]:
                level = Level.HOLD
            else:
                continue
            mean_of[kind] = mean
            beyond.append((ratio, kind, ratio, p["factor"], level))
        if beyond:
            worst_kind = max(beyond)[1]
            unit = NATURAL_UNITS.get(worst_kind, "")
            per_m2 = use.per_day[worst_kind] / use.surface_m2
            out.append(
                _worst(
                    "consumption_above_average",
                    now,
                    subject,
                    beyond,
                    {
                        "per_m2": round(per_m2, 4),
                        "building_mean": round(mean_of[worst_kind], 4),
                        "per_m2_unit": f"{unit}/m²",
                        "surface_m2": use.surface_m2,
                        "days": use.days,
                    },
                    unit_of_value="×",  # noqa: RUF001 - the unit of a ratio
                )
            )
    return out


def vacant_consumption(
    now: datetime,
    *,
    uses: Collection[DwellingUse],
    occupied: Collection[int],
    params: Params,
) -> list[Finding]:
    """Judge ``vacant_consumption``: dwellings (not common areas) absent from ``occupied``."""
    out: list[Finding] = []
    for use in uses:
        if use.kind != "dwelling" or use.dwelling_id in occupied:
            continue
        subject = Subject("dwelling", use.dwelling_id)
        p = params(subject)
        beyond: list[tuple[float, str, float, float, Level]] = []
        for kind, value in use.per_day.items():
            key = threshold_key(kind) if kind in NATURAL_UNITS else None
            limit = p.get(key, -1.0) if key else -1.0
            if limit < 0 or value <= limit:
                continue
            ratio = value / limit if limit > 0 else _NO_LIMIT_RATIO
            beyond.append((ratio, kind, value, limit, Level.ON))
        if beyond:
            out.append(
                _worst(
                    "vacant_consumption",
                    now,
                    subject,
                    beyond,
                    {"days": use.days, "tenancy": "none"},
                )
            )
    return out
