"""Meter anomaly rules: index going back, implausible jump, TIC alarms (pure).

* ``index_backwards``: an index reading below the one before it, in the last
  ``lookback_h`` hours, by more than ``tolerance`` (raw unit), not explained by a meter
  event of the channel: a ``meter_event`` (reset, replaced...) or the gateway's
  ``counter_reset`` / ``meter_replaced`` site event
  (:func:`wesh.hq.alerts.data.meter_event_times`) after the previous reading and
  before :data:`EVENT_SLACK_US` after the lower one (an hourly aggregate is stamped at its
  hour's start but holds the hour's last value: the event can come later in that hour).
  ON while such a decrease is in the window.
* ``index_jump``: an hour's consumption above ``<kind>_<unit>_h`` (``electricity_kwh_h``
  36, ``cold_water_l_h`` 100,000...) in the last ``lookback_h`` hours, unless a meter
  event of the channel (the same two sources as above) explains the hour's step: one
  after the previous reading and before :data:`EVENT_SLACK_US` after the hour's start
  (:func:`jump_explained`). A ``meter_event`` bridges the step in the
  rollups already; a site event alone does not (the rollup follows the
  unexplained-decrease rule), so a new meter's first index can look like a jump.
* ``tic_overload`` / ``tic_status_alarm``: from the site events weshd sends, edge-
  triggered (:data:`TIC_EVENT_KINDS`: one start event when an episode begins, one end
  event when it ends): ON from a start event until an end event follows it, or until the
  episode is ``max_open_h`` old (an end event lost on the way must not keep an alert
  forever); the engine's ``resolve_after`` then keeps the alert a while, so a meter
  flapping in and out of overload stays one alert.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Final

from wesh.hq.alerts.model import JsonScalar, Level, Subject
from wesh.hq.alerts.rules import NATURAL_UNITS, Finding, Params, natural_factor
from wesh.hq.timeutil import HOUR_US, from_epoch_us, to_epoch_us

__all__ = [
    "EVENT_SLACK_US",
    "TIC_EVENT_KINDS",
    "DecreaseRow",
    "EventRow",
    "index_backwards",
    "index_jump",
    "jump_explained",
    "jump_key",
    "tic_events",
]

#: rule → (start kinds, end kinds) of ``site_event``.
TIC_EVENT_KINDS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    "tic_overload": (frozenset({"tic_overload"}), frozenset({"tic_overload_end"})),
    "tic_status_alarm": (frozenset({"tic_status_alarm"}), frozenset({"tic_status_alarm_end"})),
}

#: How long after a decreasing reading's time a meter event still explains it (µs).
EVENT_SLACK_US: Final = HOUR_US

#: (channel, previous at µs, previous value, at µs, value)
DecreaseRow = tuple[int, int, float, int, float]
#: (subject, at µs, kind, message)
EventRow = tuple[Subject, int, str, str]


def index_backwards(
    now: datetime,
    *,
    decreases: Sequence[DecreaseRow],
    events: Mapping[int, Sequence[int]],
    units: Mapping[int, str | None],
    params: Params,
) -> list[Finding]:
    """Judge ``index_backwards``; ``events`` are each channel's meter event times (sorted).

    An event in ``(previous_at, at + EVENT_SLACK_US)`` explains the decrease.
    """
    now_us = to_epoch_us(now)
    per_channel: dict[int, list[DecreaseRow]] = defaultdict(list)
    for row in decreases:
        cid, previous_at, previous, at, value = row
        times = events.get(cid, ())
        position = bisect.bisect_right(times, previous_at)
        if position < len(times) and times[position] < at + EVENT_SLACK_US:
            continue
        p = params(Subject("channel", cid))
        if at < now_us - p["lookback_h"] * HOUR_US or previous - value <= p["tolerance"]:
            continue
        per_channel[cid].append(row)
    out: list[Finding] = []
    for cid, rows in per_channel.items():
        rows.sort(key=lambda row: row[3])
        first, last = rows[0], rows[-1]
        drop = last[2] - last[4]
        out.append(
            Finding(
                "index_backwards",
                Subject("channel", cid),
                Level.ON,
                from_epoch_us(last[3]),
                since=from_epoch_us(first[3]),
                value=drop,
                unit=units.get(cid),
                threshold=params(Subject("channel", cid))["tolerance"],
                details={
                    "previous_index": last[2],
                    "index": last[4],
                    "delta": -drop,
                    "at": from_epoch_us(last[3]).isoformat(),
                    "events": len(rows),
                },
            )
        )
    return out


def jump_key(kind: str) -> str | None:
    """Return the name of a kind's hourly jump threshold (``electricity_kwh_h``)."""
    natural = NATURAL_UNITS.get(kind)
    return None if natural is None or kind == "other" else f"{kind}_{natural.lower()}_h"


def jump_explained(times: Sequence[int], hour_us: int, spanned_h: float = 1.0) -> bool:
    """Whether a meter event (``times``: sorted, µs) explains the step of an hour.

    The step of the hour starting at ``hour_us`` runs from the previous reading to the
    hour's last reading, ``spanned_h`` hours (at least 1) after it. An event in
    ``(hour_us - spanned_h, hour_us + 1 h)`` explains it: for hourly aggregates stamped at
    their hour's start (which hold the hour's last value), the window of
    ``index_backwards``, from the previous reading to :data:`EVENT_SLACK_US` after the
    hour's reading.
    """
    lo_us = hour_us - int(max(1.0, spanned_h) * HOUR_US)
    position = bisect.bisect_right(times, lo_us)
    return position < len(times) and times[position] < hour_us + EVENT_SLACK_US


def index_jump(
    now: datetime,
    *,
    hours: Sequence[tuple[int, int, float]],
    kinds: Mapping[int, tuple[str, str | None]],
    params: Params,
    events: Mapping[int, Sequence[int]] | None = None,
    spanned_h: Mapping[tuple[int, int], float] | None = None,
) -> list[Finding]:
    """Judge ``index_jump`` on ``(channel, hour_us, consumption)`` rows (raw units).

    ``events``: each channel's meter event times (sorted, µs); an hour whose step one
    explains (:func:`jump_explained`, with ``spanned_h[channel, hour_us]`` hours spanned,
    1 by default) is not judged.
    """
    now_us = to_epoch_us(now)
    found: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for cid, hour, consumption in hours:
        times = events.get(cid, ()) if events is not None else ()
        spanned = spanned_h.get((cid, hour), 1.0) if spanned_h is not None else 1.0
        if times and jump_explained(times, hour, spanned):
            continue
        kind, unit = kinds.get(cid, ("other", None))
        key = jump_key(kind)
        factor = natural_factor(kind, unit)
        if key is None or factor is None:
            continue
        p = params(Subject("channel", cid))
        if hour < now_us - p["lookback_h"] * HOUR_US:
            continue
        value = consumption * factor
        if value > p[key]:
            found[cid].append((hour, value, p[key]))
    out: list[Finding] = []
    for cid, rows in found.items():
        kind, _ = kinds[cid]
        first_hour = min(row[0] for row in rows)
        worst = max(rows, key=lambda row: row[1])
        out.append(
            Finding(
                "index_jump",
                Subject("channel", cid),
                Level.ON,
                min(now, from_epoch_us(worst[0] + HOUR_US)),
                since=from_epoch_us(first_hour),
                value=round(worst[1], 3),
                unit=f"{NATURAL_UNITS[kind]}/h",
                threshold=worst[2],
                details={"hours": len(rows), "at": from_epoch_us(worst[0]).isoformat()},
            )
        )
    return out


def tic_events(
    rule: str,
    now: datetime,
    *,
    events: Collection[EventRow],
    params: Params,
) -> list[Finding]:
    """Judge ``tic_overload`` or ``tic_status_alarm`` from site events (any order)."""
    starts, ends = TIC_EVENT_KINDS[rule]
    now_us = to_epoch_us(now)
    per_subject: dict[Subject, list[EventRow]] = defaultdict(list)
    for event in events:
        if event[2] in starts or event[2] in ends:
            per_subject[event[0]].append(event)
    out: list[Finding] = []
    for subject, rows in per_subject.items():
        rows.sort(key=lambda row: (row[1], row[2] in ends))
        p = params(subject)
        burst: list[EventRow] = []
        for row in rows:
            if row[2] in ends:
                burst = []
            else:
                burst.append(row)
        if not burst:
            continue
        newest = burst[-1]
        if now_us - burst[0][1] > p["max_open_h"] * HOUR_US:
            continue
        details: dict[str, JsonScalar] = {"events": len(burst), "message": newest[3][:200]}
        out.append(
            Finding(
                rule,
                subject,
                Level.ON,
                from_epoch_us(newest[1]),
                since=from_epoch_us(burst[0][1]),
                value=float(len(burst)),
                unit="events",
                threshold=None,
                details=details,
            )
        )
    return out
