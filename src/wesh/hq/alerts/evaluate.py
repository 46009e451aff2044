"""Run the alert rules over the HQ store: ``evaluate(conn, config, now) -> Evaluation``.

::

    evaluate ──data.py (set-based SQL, one query or two per rule family)──▶ plain rows
             ──rules_*.py (pure)──▶ Finding ──place + policy (config)──▶ Condition

* ``channels=None``: the schedule's full evaluation, every enabled rule over every subject
  (``Evaluation.subjects`` is ``None``).
* ``channels=[...]``: evaluation on ingest: only the data rules (leak, comfort,
  consumption, index rules) and only the subjects those channels touch (the channels and
  their dwellings, listed in ``Evaluation.subjects``); "no data", TIC alarm and gateway
  health rules are skipped (the schedule runs them).

A rule family that fails is reported in ``Evaluation.errors`` (what and where) and the
others still run. Disabled rules (for a subject's scope) produce no condition. This
module only reads: the caller refreshes the rollups first
(:func:`wesh.hq.rollups.refresh_rollups`).
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from wesh.errors import UsageError, WeshError
from wesh.hq.alerts import data
from wesh.hq.alerts.config import ALL_RULES, AlertsConfig
from wesh.hq.alerts.data import ChannelInfo, Inventory, load_inventory
from wesh.hq.alerts.model import RULES, Condition, Place, Subject
from wesh.hq.alerts.rules import Finding, Params, natural_factor
from wesh.hq.alerts.rules_comfort import daily_rule, hourly_rule, probe_role
from wesh.hq.alerts.rules_consumption import (
    DwellingUse,
    above_average,
    consumption_high,
    vacant_consumption,
)
from wesh.hq.alerts.rules_gateway import gateway_health
from wesh.hq.alerts.rules_leak import continuous_flow, leak_burst, night_flow, night_spans
from wesh.hq.alerts.rules_meter import (
    EVENT_SLACK_US,
    TIC_EVENT_KINDS,
    EventRow,
    index_backwards,
    index_jump,
    jump_key,
    tic_events,
)
from wesh.hq.alerts.rules_nodata import LinkState, no_data
from wesh.hq.timeutil import HOUR_US, paris_day, to_epoch_us

__all__ = ["INGEST_FAMILIES", "Evaluation", "Scope", "evaluate"]

_LOG = logging.getLogger(__name__)

#: Families run on ingest (``channels`` given): those computed from readings.
INGEST_FAMILIES = ("leak", "comfort", "consumption", "meter")
#: Rules of those families that do not run on ingest (they read alarms, not readings).
_NOT_ON_INGEST = frozenset({"tic_overload", "tic_status_alarm"})


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation found and what it covered.

    Attributes:
        at: the evaluation time.
        conditions: ON and HOLD verdicts (healthy subjects are absent).
        rules: the rules evaluated (those that failed are not in it).
        subjects: ``None``: every subject of those rules was evaluated; else only these.
        errors: rule families that failed (what and where); the others still ran.
        timings_s: seconds spent per family (for the benchmark).
    """

    at: datetime
    conditions: list[Condition]
    rules: frozenset[str]
    subjects: frozenset[Subject] | None
    errors: list[str]
    timings_s: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Scope:
    """What one evaluation looks at: time, settings, inventory, rules and channels."""

    now: datetime
    config: AlertsConfig
    inventory: Inventory
    rules: frozenset[str]
    channels: frozenset[int] | None
    _params: dict[str, Params] = field(default_factory=dict)

    @property
    def now_us(self) -> int:
        """``now`` in epoch microseconds."""
        return to_epoch_us(self.now)

    def params(self, rule: str) -> Params:
        """Return the thresholds of ``rule`` by subject (constant when nothing overrides them)."""
        found = self._params.get(rule)
        if found is not None:
            return found
        config, inventory = self.config, self.inventory
        defaults = config.rules[rule].params
        if not any(override.rule == rule and override.params for override in config.overrides):

            def constant(subject: Subject) -> Mapping[str, float]:
                return defaults

            found = constant
        else:

            def lookup(subject: Subject) -> Mapping[str, float]:
                place = inventory.place(subject)
                return defaults if place is None else config.params(rule, place)

            found = lookup
        self._params[rule] = found
        return found

    def channels_of(
        self, kinds: Collection[str], *, index: bool | None = None
    ) -> list[ChannelInfo]:
        """Return the channels of ``kinds`` (limited to the evaluated channels, if any)."""
        wanted = set(kinds)
        return [
            channel
            for channel in self.inventory.channels.values()
            if channel.kind in wanted
            and (index is None or channel.is_index == index)
            and (self.channels is None or channel.id in self.channels)
        ]

    def max_param(self, rule: str, name: str) -> float:
        """Return the highest value a threshold takes anywhere."""
        return max(self.config.param_values(rule, name))


def _links(conn: Connection) -> list[LinkState]:
    return [
        LinkState(link.gateway_id, link.site_id, link.last_seen_us, link.status_at_us, link.status)
        for link in data.gateway_links(conn)
    ]


def _run_no_data(conn: Connection, scope: Scope) -> list[Finding]:
    inventory = scope.inventory
    return no_data(
        scope.now,
        latest=data.latest_reading_at(conn),
        channel_box={cid: channel.box_id for cid, channel in inventory.channels.items()},
        box_gateway={bid: box.gateway_id for bid, box in inventory.boxes.items()},
        links=_links(conn),
        params={rule: scope.params(rule) for rule in RULES["no_data"]},
        rules=scope.rules,
    )


_WATER = ("cold_water", "hot_water")


def _run_leak(conn: Connection, scope: Scope) -> list[Finding]:
    water = scope.channels_of(_WATER, index=True)
    factors = {
        channel.id: factor
        for channel in water
        if (factor := natural_factor(channel.kind, channel.unit)) is not None
    }
    ids = sorted(factors)
    out: list[Finding] = []
    night_rules: list[str] = [
        rule for rule in ("leak_continuous_flow", "leak_night_flow") if rule in scope.rules
    ]
    windows: dict[tuple[float, float], dict[str, list[int]]] = {}
    for rule in night_rules:
        params = scope.params(rule)
        for cid in factors:
            p = params(Subject("channel", cid))
            windows.setdefault((p["night_start_h"], p["night_end_h"]), {}).setdefault(
                rule, []
            ).append(cid)
    count = max(2, int(scope.max_param("leak_continuous_flow", "lookback_nights")))
    for (start_h, end_h), by_rule in windows.items():
        spans = night_spans(scope.now, start_h=start_h, end_h=end_h, count=count)
        only = ids if len(windows) == 1 else sorted({c for cids in by_rule.values() for c in cids})
        flows = data.night_flows(conn, nights=spans, channel_ids=only)
        for rule, cids in by_rule.items():
            nights = {
                cid: {n: (f.hours, f.min, f.total) for n, f in flows[cid].items()}
                for cid in cids
                if cid in flows
            }
            judge = continuous_flow if rule == "leak_continuous_flow" else night_flow
            out.extend(
                judge(
                    scope.now,
                    nights=nights,
                    spans=spans,
                    factors=factors,
                    params=scope.params(rule),
                )
            )
    if "leak_burst" in scope.rules:
        window_h = scope.max_param("leak_burst", "window_h")
        hour_us = scope.now_us - scope.now_us % HOUR_US
        # a burst is above min_l_h (or above_l_h) in any case: only such hours are read
        lowest = min(
            *scope.config.param_values("leak_burst", "min_l_h"),
            *scope.config.param_values("leak_burst", "above_l_h"),
        )
        floor = max(0.0, lowest / max(factors.values(), default=1.0))
        recent: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for cid, hour, rate, _ in data.hour_rates(
            conn,
            lo_us=hour_us - int(window_h * HOUR_US),
            hi_us=hour_us + HOUR_US,
            floor=floor,
            channel_ids=ids,
        ):
            recent[cid].append((hour, rate))
        days = int(scope.max_param("leak_burst", "baseline_days"))
        today = paris_day(scope.now)
        coverage = data.day_coverage(
            conn,
            first=today - timedelta(days=days),
            last=today - timedelta(days=1),
            channel_ids=ids,
        )
        params = scope.params("leak_burst")
        baseline = {
            cid: total * factors[cid] / hours
            for cid, (total, hours) in coverage.items()
            if cid in factors and hours >= params(Subject("channel", cid))["min_baseline_h"]
        }
        out.extend(
            leak_burst(
                scope.now,
                hours=recent,
                baseline_l_h=baseline,
                factors=factors,
                params=scope.params("leak_burst"),
            )
        )
    return out


def _run_comfort(conn: Connection, scope: Scope) -> list[Finding]:
    probes = scope.config.probes
    patterns = {
        "hot_water": re.compile(probes.hot_water),
        "outdoor": re.compile(probes.outdoor),
        "plant_room": re.compile(probes.plant_room),
    }
    roles = {
        channel.id: probe_role(channel.label, channel.path, **patterns)
        for channel in scope.channels_of(("temperature",))
    }
    eligible = {
        "frost": {"room", "plant_room"},
        "overheating": {"room"},
        "hot_water_cold": {"hot_water"},
    }
    out: list[Finding] = []
    hourly = [rule for rule in eligible if rule in scope.rules]
    if hourly and roles:
        longest = max(scope.max_param(rule, "hours") for rule in hourly)
        hour_us = scope.now_us - scope.now_us % HOUR_US
        series = data.hour_values(
            conn,
            column="mean",
            lo_us=hour_us - int((longest + 6) * HOUR_US),
            hi_us=hour_us + HOUR_US,
            channel_ids=[cid for cid, role in roles.items() if role != "outdoor"],
        )
        for rule in hourly:
            mine = {
                cid: values for cid, values in series.items() if roles.get(cid) in eligible[rule]
            }
            out.extend(hourly_rule(rule, scope.now, series=mine, params=scope.params(rule)))
    if "humidity_high" in scope.rules:
        humid = scope.channels_of(("humidity",))
        if humid:
            days = int(scope.max_param("humidity_high", "days"))
            today = paris_day(scope.now)
            daily = data.day_values(
                conn,
                column="mean",
                first=today - timedelta(days=days + 1),
                last=today - timedelta(days=1),
                channel_ids=[channel.id for channel in humid],
            )
            out.extend(
                daily_rule(
                    "humidity_high", scope.now, series=daily, params=scope.params("humidity_high")
                )
            )
    return out


def _uses(
    rows: Mapping[tuple[int, str, str | None], Mapping[date, float]],
    inventory: Inventory,
    *,
    last: date,
    days_of: Callable[[int], int],
) -> list[DwellingUse]:
    totals: dict[int, dict[str, dict[date, float]]] = defaultdict(lambda: defaultdict(dict))
    for (dwelling, kind, unit), per_day in rows.items():
        factor = natural_factor(kind, unit)
        if factor is None:
            continue
        days = days_of(dwelling)
        first = last - timedelta(days=days - 1)
        for day, value in per_day.items():
            if first <= day <= last:
                kept = totals[dwelling][kind]
                kept[day] = kept.get(day, 0.0) + value * factor
    uses: list[DwellingUse] = []
    for dwelling_id, kinds in totals.items():
        info = inventory.dwellings.get(dwelling_id)
        if info is None:
            continue
        means = {name: sum(values.values()) / len(values) for name, values in kinds.items()}
        span = max(len(values) for values in kinds.values())
        uses.append(
            DwellingUse(dwelling_id, info.building_id, info.kind, info.surface_m2, means, span)
        )
    return uses


def _days_of(params: Params) -> Callable[[int], int]:
    def days_of(dwelling: int) -> int:
        return max(1, int(params(Subject("dwelling", dwelling)).get("days", 1)))

    return days_of


def _run_consumption(conn: Connection, scope: Scope) -> list[Finding]:
    inventory = scope.inventory
    dwellings: set[int] | None = None
    if scope.channels is not None:
        touched = {inventory.dwelling_of_channel(cid) for cid in scope.channels}
        buildings = {
            inventory.dwellings[d].building_id
            for d in touched
            if d is not None and d in inventory.dwellings
        }
        dwellings = {d.id for d in inventory.dwellings.values() if d.building_id in buildings}
        if not dwellings:
            return []
    rules = [rule for rule in RULES["consumption"] if rule in scope.rules]
    longest = max(
        int(scope.max_param(rule, "days")) if "days" in scope.config.rules[rule].params else 1
        for rule in rules
    )
    last = paris_day(scope.now) - timedelta(days=1)
    rows = data.dwelling_days(
        conn, inventory, first=last - timedelta(days=longest - 1), last=last, dwelling_ids=dwellings
    )
    out: list[Finding] = []
    for rule in rules:
        params = scope.params(rule)
        uses = _uses(rows, inventory, last=last, days_of=_days_of(params))
        if rule == "consumption_high":
            out.extend(consumption_high(scope.now, uses=uses, params=params))
        elif rule == "consumption_above_average":
            out.extend(above_average(scope.now, uses=uses, params=params))
        else:
            occupied, tenancies = data.occupied_dwellings(conn, last)
            if tenancies == 0:
                _LOG.info("Alerts: no tenancy recorded; vacant_consumption judges nothing")
                continue
            out.extend(vacant_consumption(scope.now, uses=uses, occupied=occupied, params=params))
    return out


def _run_meter(conn: Connection, scope: Scope) -> list[Finding]:
    inventory = scope.inventory
    ids = sorted(
        cid
        for cid, channel in inventory.channels.items()
        if channel.is_index and (scope.channels is None or cid in scope.channels)
    )
    out: list[Finding] = []
    if "index_backwards" in scope.rules:
        lookback = scope.max_param("index_backwards", "lookback_h")
        decreases = data.index_decreases(
            conn, lo_us=scope.now_us - int(lookback * HOUR_US), channel_ids=ids
        )
        events: Mapping[int, list[int]] = {}
        if decreases:
            events = data.meter_event_times(
                conn,
                {d.channel_id for d in decreases},
                lo_us=min(d.previous_at_us for d in decreases),
                hi_us=scope.now_us,
            )
        out.extend(
            index_backwards(
                scope.now,
                decreases=[
                    (d.channel_id, d.previous_at_us, d.previous, d.at_us, d.value)
                    for d in decreases
                ],
                events=events,
                units={cid: c.unit for cid, c in inventory.channels.items()},
                params=scope.params("index_backwards"),
            )
        )
    if "index_jump" in scope.rules:
        lookback = scope.max_param("index_jump", "lookback_h")
        kinds = {cid: (c.kind, c.unit) for cid, c in inventory.channels.items() if c.is_index}
        floors = [
            min(scope.config.param_values("index_jump", key)) / factor
            for kind, unit in set(kinds.values())
            if (key := jump_key(kind)) is not None and (factor := natural_factor(kind, unit))
        ]
        if floors:
            rates = data.hour_rates(
                conn,
                lo_us=scope.now_us - int(lookback * HOUR_US),
                hi_us=scope.now_us + HOUR_US,
                floor=max(0.0, min(floors)),
                channel_ids=ids,
            )
            jump_events: Mapping[int, list[int]] = {}
            if rates:  # the hours above the lowest threshold: few, usually none
                jump_events = data.meter_event_times(
                    conn,
                    {cid for cid, *_ in rates},
                    lo_us=min(hour - int(max(1.0, h) * HOUR_US) for _, hour, _, h in rates),
                    hi_us=max(hour for _, hour, _, _ in rates) + EVENT_SLACK_US,
                )
            out.extend(
                index_jump(
                    scope.now,
                    hours=[(cid, hour, rate) for cid, hour, rate, _ in rates],
                    kinds=kinds,
                    params=scope.params("index_jump"),
                    events=jump_events,
                    spanned_h={(cid, hour): h for cid, hour, _, h in rates},
                )
            )
    tic = [rule for rule in TIC_EVENT_KINDS if rule in scope.rules]
    if tic and scope.channels is None:
        lookback = max(scope.max_param(rule, "max_open_h") for rule in tic)
        kinds_wanted = {kind for rule in tic for group in TIC_EVENT_KINDS[rule] for kind in group}
        site_gateway = {g.site_id: g.id for g in inventory.gateways.values()}
        rows: list[EventRow] = []
        for event in data.site_events(
            conn,
            kinds=kinds_wanted,
            lo_us=scope.now_us - int(lookback * HOUR_US),
            hi_us=scope.now_us,
        ):
            if event.channel_id is not None and event.channel_id in inventory.channels:
                subject = Subject("channel", event.channel_id)
            elif event.box_id is not None and event.box_id in inventory.boxes:
                subject = Subject("box", event.box_id)
            elif event.site_id in site_gateway:
                subject = Subject("gateway", site_gateway[event.site_id])
            else:
                continue
            rows.append((subject, event.at_us, event.kind, event.message))
        for rule in tic:
            out.extend(tic_events(rule, scope.now, events=rows, params=scope.params(rule)))
    return out


def _run_gateway(conn: Connection, scope: Scope) -> list[Finding]:
    return gateway_health(
        scope.now,
        links=_links(conn),
        params={rule: scope.params(rule) for rule in RULES["gateway_health"]},
        rules=scope.rules,
    )


Runner = Callable[[Connection, Scope], list[Finding]]

_FAMILIES: Mapping[str, Runner] = {
    "no_data": _run_no_data,
    "leak": _run_leak,
    "comfort": _run_comfort,
    "consumption": _run_consumption,
    "meter": _run_meter,
    "gateway_health": _run_gateway,
}


def _wanted_rules(
    config: AlertsConfig, rules: Collection[str] | None, incremental: bool
) -> frozenset[str]:
    if rules is not None:
        unknown = sorted(set(rules) - set(ALL_RULES))
        if unknown:
            raise UsageError(f"unknown rule(s): {', '.join(unknown)}")
    chosen = set(ALL_RULES if rules is None else rules)
    if incremental:
        allowed = {name for family in INGEST_FAMILIES for name in RULES[family]}
        chosen &= allowed - _NOT_ON_INGEST
    return frozenset(name for name in chosen if config.may_run(name))


def _to_condition(finding: Finding, place: Place, config: AlertsConfig) -> Condition | None:
    policy = config.policy(finding.rule, place)
    if not policy.enabled:
        return None
    return Condition(
        rule=finding.rule,
        subject=finding.subject,
        level=finding.level,
        observed_at=finding.observed_at,
        place=place,
        since=finding.since,
        value=finding.value,
        unit=finding.unit,
        threshold=finding.threshold,
        severity=policy.severity,
        parent=finding.parent,
        parent_rule=finding.parent_rule,
        details=dict(finding.details),
    )


def evaluate(
    conn: Connection,
    config: AlertsConfig,
    now: datetime,
    *,
    channels: Collection[int] | None = None,
    rules: Collection[str] | None = None,
    inventory: Inventory | None = None,
) -> Evaluation:
    """Evaluate the rules at ``now``; see the module docstring.

    Args:
        conn: a connection to the HQ store (only read).
        config: thresholds and per-scope settings.
        now: the evaluation time (aware).
        channels: evaluate only what these channels touch (on ingest), else everything.
        rules: only these rules (default: every enabled rule).
        inventory: the places of channels, boxes, dwellings and gateways, if the caller
            keeps it between evaluations (:class:`wesh.hq.alerts.data.InventoryCache`);
            loaded otherwise.

    Raises:
        UsageError: naive ``now`` or an unknown rule name.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError(f"now {now.isoformat()} is naive: give a timezone-aware datetime")
    now = now.astimezone(UTC)
    incremental = channels is not None
    wanted = _wanted_rules(config, rules, incremental)
    if inventory is None:
        inventory = load_inventory(conn)
    channel_ids = None if channels is None else frozenset(int(cid) for cid in channels)
    scope = Scope(
        now=now,
        config=config,
        inventory=inventory,
        rules=wanted,
        channels=channel_ids,
    )
    subjects: frozenset[Subject] | None = None
    if channel_ids is not None:
        subjects = frozenset(inventory.subjects_of_channels(channel_ids))
    conditions: list[Condition] = []
    done: set[str] = set()
    errors: list[str] = []
    timings: dict[str, float] = {}
    for family, runner in _FAMILIES.items():
        names = wanted & set(RULES[family])
        if not names:
            continue
        started = time.perf_counter()
        # PostgreSQL aborts the whole transaction on an error: a savepoint per family keeps
        # the caller's transaction usable (SQLite and MariaDB only fail the statement).
        savepoint = conn.begin_nested() if conn.dialect.name == "postgresql" else None
        try:
            findings = runner(conn, scope)
        except (WeshError, SQLAlchemyError, ValueError, KeyError, TypeError) as exc:
            if savepoint is not None:
                savepoint.rollback()
            message = f"rules {', '.join(sorted(names))}: {type(exc).__name__}: {exc}"
            _LOG.exception("Alerts: family %s failed", family)
            errors.append(message[:1000])
            continue
        finally:
            timings[family] = time.perf_counter() - started
        if savepoint is not None:
            savepoint.commit()
        done |= names
        conditions.extend(_conditions(findings, names, subjects, inventory, config))
    return Evaluation(
        at=now,
        conditions=conditions,
        rules=frozenset(done),
        subjects=subjects,
        errors=errors,
        timings_s=timings,
    )


def _conditions(
    findings: Iterable[Finding],
    names: Collection[str],
    subjects: frozenset[Subject] | None,
    inventory: Inventory,
    config: AlertsConfig,
) -> Iterable[Condition]:
    for finding in findings:
        if finding.rule not in names:
            continue
        if subjects is not None and finding.subject not in subjects:
            continue
        place = inventory.place(finding.subject)
        if place is None:
            continue
        condition = _to_condition(finding, place, config)
        if condition is not None:
            yield condition
