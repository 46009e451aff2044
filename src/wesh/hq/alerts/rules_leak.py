"""Water leak rules over hourly consumption of water index channels (pure).

* ``leak_continuous_flow``: every hour of the night window (Paris local time, default
  00:00-06:00) had some flow (above ``zero_l_h``) for ``nights`` consecutive nights. A
  night with fewer than ``min_hours`` hours of data neither counts nor breaks the run.
  Fewer flowing nights give nothing (a dry hour is the clear signal; no HOLD band).
* ``leak_night_flow``: the last night's mean flow above ``above_l_h`` (ON), back at or
  below ``clear_l_h`` (healthy), HOLD between.
* ``leak_burst``: an hour of the last ``window_h`` hours above ``above_l_h``, or above
  ``factor`` times the channel's mean hour of the last ``baseline_days`` days and above
  ``min_l_h``.

Flows are litres per hour (a rollup hour's consumption in litres). :func:`night_spans`
computes the nights in UTC, across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from wesh.hq.alerts.model import Level, Subject
from wesh.hq.alerts.rules import Finding, Params
from wesh.hq.timeutil import HOUR_US, PARIS, from_epoch_us, paris_day, to_epoch_us

__all__ = ["NightData", "continuous_flow", "leak_burst", "night_flow", "night_spans"]

#: Per night number (0 = the most recent ended night): (hours with data, lowest hour, total)
#: in the channel's raw unit.
NightData = Mapping[int, tuple[int, float, float]]

_Data = TypeVar("_Data")


def _local(day: date, hour: float) -> datetime:
    whole = int(hour)
    minutes = round((hour - whole) * 60)
    if whole >= 24:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=PARIS)
    return datetime.combine(day, time(whole, minutes), tzinfo=PARIS)


def _water_channels(
    data: Mapping[int, _Data], factors: Mapping[int, float], params: Params
) -> Iterator[tuple[Subject, Mapping[str, float], float, _Data]]:
    """Yield each channel of ``data`` whose litre factor is known, with its parameters."""
    for cid, found in data.items():
        factor = factors.get(cid)
        if factor is None:
            continue
        subject = Subject("channel", cid)
        yield subject, params(subject), factor, found


def _nights_with_data(
    per_night: NightData, count: int, min_hours: float
) -> Iterator[tuple[int, tuple[int, float, float]]]:
    """Yield the nights among the last ``count``, newest first, with ``min_hours`` of data."""
    for number in range(count):
        found = per_night.get(number)
        if found is not None and found[0] >= min_hours:
            yield number, found


def night_spans(
    now: datetime, *, start_h: float, end_h: float, count: int
) -> list[tuple[int, int]]:
    """Return the last ``count`` nights that ended by ``now``, newest first, as UTC µs spans.

    A night runs from ``start_h`` to ``end_h`` Paris local time; when ``start_h >= end_h``
    it starts the evening before (22 → 6). Local times are converted with the zone's
    rules of that date, so a night across a DST change lasts 5 or 7 hours, not 6.
    """
    spans: list[tuple[int, int]] = []
    day = paris_day(now) + timedelta(days=1)
    while len(spans) < count:
        day -= timedelta(days=1)
        end = _local(day, end_h)
        start = _local(day if start_h < end_h else day - timedelta(days=1), start_h)
        if end > now:
            continue
        spans.append((to_epoch_us(start), to_epoch_us(end)))
    return spans


def continuous_flow(
    now: datetime,
    *,
    nights: Mapping[int, NightData],
    spans: Sequence[tuple[int, int]],
    factors: Mapping[int, float],
    params: Params,
) -> list[Finding]:
    """Judge ``leak_continuous_flow`` for each channel of ``nights`` (see the module)."""
    out: list[Finding] = []
    for subject, p, factor, per_night in _water_channels(nights, factors, params):
        needed = max(1, int(p["nights"]))
        zero = p["zero_l_h"]
        min_hours = p["min_hours"]
        count = 0
        since: int | None = None
        lowest: float | None = None
        lookback = min(len(spans), int(p["lookback_nights"]))
        for number, found in _nights_with_data(per_night, lookback, min_hours):
            low = found[1] * factor
            if low <= zero:
                break
            count += 1
            since = spans[number][0]
            lowest = low if lowest is None else min(lowest, low)
        if count < needed or since is None or lowest is None:
            continue
        out.append(
            Finding(
                "leak_continuous_flow",
                subject,
                Level.ON,
                from_epoch_us(spans[0][1]),
                since=from_epoch_us(since),
                value=float(count),
                unit="nights",
                threshold=float(needed),
                details={"nights": count, "min_flow_l_h": round(lowest, 1)},
            )
        )
    return out


def night_flow(
    now: datetime,
    *,
    nights: Mapping[int, NightData],
    spans: Sequence[tuple[int, int]],
    factors: Mapping[int, float],
    params: Params,
) -> list[Finding]:
    """Judge ``leak_night_flow`` on the most recent night with enough data (of the last two)."""
    out: list[Finding] = []
    for subject, p, factor, per_night in _water_channels(nights, factors, params):
        for number, found in _nights_with_data(per_night, min(2, len(spans)), p["min_hours"]):
            mean = found[2] * factor / found[0]
            if mean > p["above_l_h"]:
                level = Level.ON
            elif mean > p["clear_l_h"]:
                level = Level.HOLD
            else:
                break
            out.append(
                Finding(
                    "leak_night_flow",
                    subject,
                    level,
                    from_epoch_us(spans[number][1]),
                    since=from_epoch_us(spans[number][0]),
                    value=round(mean, 1),
                    unit="L/h",
                    threshold=p["above_l_h"],
                    details={
                        "night_mean_l_h": round(mean, 1),
                        "hours": found[0],
                        "clear_threshold": p["clear_l_h"],
                    },
                )
            )
            break
    return out


def leak_burst(
    now: datetime,
    *,
    hours: Mapping[int, Sequence[tuple[int, float]]],
    baseline_l_h: Mapping[int, float],
    factors: Mapping[int, float],
    params: Params,
) -> list[Finding]:
    """Judge ``leak_burst`` on each channel's recent hours ``(hour_us, consumption)``."""
    now_us = to_epoch_us(now)
    out: list[Finding] = []
    for subject, p, factor, series in _water_channels(hours, factors, params):
        if not series:
            continue
        lo_us = now_us - int(p["window_h"] * HOUR_US)
        recent = [(hour, value * factor) for hour, value in series if hour >= lo_us]
        if not recent:
            continue
        peak_hour, peak = max(recent, key=lambda item: (item[1], item[0]))
        baseline = baseline_l_h.get(subject.id)
        relative = (
            None if baseline is None or baseline <= 0 else max(p["factor"] * baseline, p["min_l_h"])
        )
        if peak > p["above_l_h"]:
            threshold = p["above_l_h"]
        elif relative is not None and peak > relative:
            threshold = relative
        else:
            continue
        details: dict[str, float | str] = {"flow_l_h": round(peak, 1)}
        if baseline is not None:
            details["baseline_l_h"] = round(baseline, 2)
        out.append(
            Finding(
                "leak_burst",
                subject,
                Level.ON,
                min(now, from_epoch_us(peak_hour + HOUR_US)),
                since=from_epoch_us(peak_hour),
                value=round(peak, 1),
                unit="L/h",
                threshold=round(threshold, 1),
                details=details,
            )
        )
    return out
