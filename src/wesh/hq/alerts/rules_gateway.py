"""Gateway health from the last STATUS packet of each site (pure).

* ``queue_backlog``: ``queue_depth`` above ``above`` (ON), above ``clear`` (HOLD).
* ``sms_budget_exhausted``: ``sms_sent_today >= sms_budget`` (a budget > 0).
* ``boxes_down``: ``boxes_down`` above ``above`` (0): value = how many.

A STATUS older than ``max_age_h`` is not trusted to clear anything: what it says turns
ON into HOLD (the alert stays as it is; ``link_silent`` tells that the site is quiet).
The subject is the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from wesh.hq.alerts.model import JsonScalar, Level, Subject
from wesh.hq.alerts.rules import Finding, Params
from wesh.hq.alerts.rules_nodata import LinkState
from wesh.hq.timeutil import HOUR_US, from_epoch_us, to_epoch_us

__all__ = ["gateway_health"]


def _number(status: Mapping[str, Any], key: str) -> float | None:
    value = status.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def gateway_health(
    now: datetime,
    *,
    links: Iterable[LinkState],
    params: Mapping[str, Params],
    rules: Iterable[str],
) -> list[Finding]:
    """Judge the gateway health rules in ``rules`` from each link's last STATUS."""
    wanted = set(rules)
    now_us = to_epoch_us(now)
    out: list[Finding] = []
    for link in links:
        status = link.status
        if status is None or link.status_at_us is None:
            continue
        subject = Subject("gateway", link.gateway_id)
        since = from_epoch_us(link.status_at_us)
        age_h = (now_us - link.status_at_us) / HOUR_US
        depth = _number(status, "queue_depth")
        sent = _number(status, "sms_sent_today")
        budget = _number(status, "sms_budget")
        down = _number(status, "boxes_down")
        checks: list[tuple[str, Level | None, float | None, float | None, str]] = []
        if "queue_backlog" in wanted and depth is not None:
            p = params["queue_backlog"](subject)
            level = Level.ON if depth > p["above"] else Level.HOLD if depth > p["clear"] else None
            checks.append(("queue_backlog", level, depth, p["above"], "readings"))
        if "sms_budget_exhausted" in wanted and sent is not None and budget:
            level = Level.ON if sent >= budget else None
            checks.append(("sms_budget_exhausted", level, sent, budget, "SMS"))
        if "boxes_down" in wanted and down is not None:
            p = params["boxes_down"](subject)
            level = Level.ON if down > p["above"] else None
            checks.append(("boxes_down", level, down, p["above"], "boxes"))
        for rule, level, value, threshold, unit in checks:
            if level is None:
                continue
            stale = age_h > params[rule](subject)["max_age_h"]
            details: dict[str, JsonScalar] = {
                key: status[key]
                for key in ("boxes_up", "boxes_down", "queue_depth", "sms_sent_today", "sms_budget")
                if isinstance(status.get(key), int | float)
            }
            details["status_at"] = since.isoformat()
            if stale:
                details["stale"] = True
            out.append(
                Finding(
                    rule,
                    subject,
                    Level.HOLD if stale else level,
                    since,
                    since=since,
                    value=value,
                    unit=unit,
                    threshold=threshold,
                    details=details,
                )
            )
    return out
