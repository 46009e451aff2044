"""The "no data" rules at four levels: channel, box, gateway, site link (pure).

::

    link_silent(site)        no packet at all from the site for silent_h (3 h)
      └ gateway_silent(gw)   link alive, but no reading from any box for silent_h (2 h),
      │                      or the last STATUS says boxes_up == 0
      └── box_silent(box)    no reading of any of its channels for silent_h (2 h)
           └ channel_silent  no reading of this channel for silent_h (3 h) while its box
                             has fresh readings

Each level names the coarser one as its ``parent`` (grouping). A subject whose silence
is explained by its parent's (they went quiet together) gets no condition: a dead
gateway gives one gateway alert, not forty box alerts. A subject that was already silent
before its parent went quiet gets ``HOLD`` (its open alert stays as it is, grouped under
the parent). Subjects never heard of (no reading ever, gateway never seen) are not
judged: nothing is expected from them yet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from wesh.hq.alerts.model import Level, Subject
from wesh.hq.alerts.rules import Finding, Params
from wesh.hq.timeutil import HOUR_US, from_epoch_us, to_epoch_us

__all__ = ["LinkState", "no_data"]

_ROUND: Final = 1


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a gateway's site last sent (instants in epoch µs)."""

    gateway_id: int
    site_id: str
    last_seen_us: int | None
    status_at_us: int | None = None
    status: Mapping[str, Any] | None = None


def _hours(us: int) -> float:
    return round(us / HOUR_US, _ROUND)


def _iso(us: int) -> str:
    return from_epoch_us(us).isoformat()


def no_data(
    now: datetime,
    *,
    latest: Mapping[int, int | None],
    channel_box: Mapping[int, int],
    box_gateway: Mapping[int, int],
    links: Iterable[LinkState],
    params: Mapping[str, Params],
    rules: Collection[str],
) -> list[Finding]:
    """Judge silence at every level.

    Args:
        now: the evaluation time.
        latest: newest reading instant (epoch µs) per channel, ``None`` if none ever.
        channel_box: each channel's box.
        box_gateway: each box's gateway.
        links: each gateway's last packet and STATUS.
        params: per rule name, its thresholds by subject (``silent_h``).
        rules: the rules to judge (others give nothing).
    """
    now_us = to_epoch_us(now)
    box_latest: dict[int, int] = {}
    for cid, at in latest.items():
        box = channel_box.get(cid)
        if at is None or box is None:
            continue
        if at > box_latest.get(box, -1):
            box_latest[box] = at
    gateway_latest: dict[int, int] = {}
    for box, at in box_latest.items():
        gateway = box_gateway.get(box)
        if gateway is not None and at > gateway_latest.get(gateway, -1):
            gateway_latest[gateway] = at

    def limit(rule: str, subject: Subject) -> int:
        return int(params[rule](subject)["silent_h"] * HOUR_US)

    out: list[Finding] = []
    link_silent: set[int] = set()
    link_seen: dict[int, int] = {}
    gateway_ok: dict[int, bool] = {}
    link_list = list(links)
    for link in link_list:
        if link.last_seen_us is None:
            continue
        link_seen[link.gateway_id] = link.last_seen_us
        site = Subject("site", link.gateway_id)
        threshold = limit("link_silent", site)
        silence = now_us - link.last_seen_us
        if silence > threshold:
            link_silent.add(link.gateway_id)
            if "link_silent" in rules:
                out.append(
                    Finding(
                        "link_silent",
                        site,
                        Level.ON,
                        now,
                        since=from_epoch_us(link.last_seen_us),
                        value=_hours(silence),
                        unit="h",
                        threshold=threshold / HOUR_US,
                        details={
                            "last_seen_at": _iso(link.last_seen_us),
                            "site": link.site_id,
                        },
                    )
                )

    for link in link_list:
        gid = link.gateway_id
        subject = Subject("gateway", gid)
        threshold = limit("gateway_silent", subject)
        gw_last = gateway_latest.get(gid)
        gw_silence = None if gw_last is None else now_us - gw_last
        status = link.status or {}
        status_dead = (
            link.status_at_us is not None
            and now_us - link.status_at_us <= threshold
            and status.get("boxes_up") == 0
            and int(status.get("boxes_down") or 0) > 0
        )
        silent = (gw_silence is not None and gw_silence > threshold) or status_dead
        gateway_ok[gid] = not silent and gid not in link_silent
        if not silent or "gateway_silent" not in rules:
            continue
        level: Level | None = Level.ON
        if gid in link_silent:
            # silent along with the link: the link alert says it; HOLD only if the
            # readings had stopped well before the link did.
            seen = link_seen.get(gid, now_us)
            level = Level.HOLD if gw_last is not None and seen - gw_last > threshold else None
        if level is None:
            continue
        details: dict[str, Any] = {"site": link.site_id}
        if gw_last is not None:
            details["last_reading_at"] = _iso(gw_last)
        if status_dead:
            details["boxes_up"] = 0
            details["boxes_down"] = int(status.get("boxes_down") or 0)
        out.append(
            Finding(
                "gateway_silent",
                subject,
                level,
                now,
                since=None if gw_last is None else from_epoch_us(gw_last),
                value=None if gw_silence is None else _hours(gw_silence),
                unit="h",
                threshold=threshold / HOUR_US,
                parent=Subject("site", gid),
                parent_rule="link_silent",
                details=details,
            )
        )

    box_alive: dict[int, bool] = {}
    for box, box_last in box_latest.items():
        box_gid = box_gateway.get(box)
        subject = Subject("box", box)
        threshold = limit("box_silent", subject)
        silence = now_us - box_last
        box_alive[box] = silence <= threshold
        if silence <= threshold or "box_silent" not in rules:
            continue
        level = Level.ON
        if box_gid is None or not gateway_ok.get(box_gid, True):
            gateway_last = (
                gateway_latest.get(box_gid, box_last) if box_gid is not None else box_last
            )
            if box_gid is not None and box_gid in link_seen and box_gid in link_silent:
                gateway_last = min(gateway_last, link_seen[box_gid])
            if gateway_last - box_last <= threshold:
                continue
            level = Level.HOLD
        out.append(
            Finding(
                "box_silent",
                subject,
                level,
                now,
                since=from_epoch_us(box_last),
                value=_hours(silence),
                unit="h",
                threshold=threshold / HOUR_US,
                parent=None if box_gid is None else Subject("gateway", box_gid),
                parent_rule=None if box_gid is None else "gateway_silent",
                details={"last_reading_at": _iso(box_last)},
            )
        )

    if "channel_silent" not in rules:
        return out
    for cid, at in latest.items():
        box = channel_box.get(cid)
        if at is None or box is None:
            continue
        subject = Subject("channel", cid)
        threshold = limit("channel_silent", subject)
        silence = now_us - at
        if silence <= threshold:
            continue
        level = Level.ON
        if not box_alive.get(box, False):
            if box_latest[box] - at <= threshold:
                continue
            level = Level.HOLD
        out.append(
            Finding(
                "channel_silent",
                subject,
                level,
                now,
                since=from_epoch_us(at),
                value=_hours(silence),
                unit="h",
                threshold=threshold / HOUR_US,
                parent=Subject("box", box),
                parent_rule="box_silent",
                details={"last_reading_at": _iso(at)},
            )
        )
    return out
