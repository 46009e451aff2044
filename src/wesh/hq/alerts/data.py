"""What the alert rules read from the HQ store: set-based SQL, plain rows out.

Every fetcher is one statement per 500 channels (named in a constant ``IN`` list, so that
each engine seeks the rollup key ranges it needs) over a whole family of subjects; none
loops over channels:

=========================  ============================================================
fetcher                    reads
=========================  ============================================================
:func:`load_inventory`     agency/residence/building, dwelling, gateway, box, channel
:func:`latest_reading_at`  the newest reading per channel (``at``, ``aggregate``: seeks)
:func:`gateway_links`      gateway ⟕ sync_ledger: last packet, last STATUS document
:func:`hour_values`        rollup_hour (mean or consumption) of channels over a span
:func:`night_flows`        rollup_hour grouped by channel and night (count, min, sum)
:func:`day_values`         rollup_day (mean or consumption) of channels over days
:func:`day_coverage`       rollup_day consumption and the hours it covers, per channel
:func:`dwelling_days`      rollup_day summed per dwelling, kind and unit over days
:func:`occupied_dwellings` tenancy rows covering a day
:func:`index_decreases`    rollup_hour joined to its previous hour (first below last)
:func:`hour_rates`         rollup_hour consumption per hour since the previous reading
:func:`meter_event_times`  meter_event, and the gateway's reset/replacement
                           site_event, per channel over a span
:func:`site_events`        site_event of some kinds over a span
=========================  ============================================================

Instants are epoch microseconds (the stored form, :mod:`wesh.hq.timeutil`). The
:class:`Inventory` turns subjects into :class:`~wesh.hq.alerts.model.Place` objects;
:class:`InventoryCache` keeps one between evaluations and reloads it when the inventory
tables change (row counts and highest ids) or after ``max_age_s``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, Date, bindparam, text
from sqlalchemy.sql.elements import TextClause

from wesh.hq.alerts.model import Place, Subject

__all__ = [
    "METER_SITE_EVENT_KINDS",
    "BoxInfo",
    "ChannelInfo",
    "Decrease",
    "DwellingInfo",
    "GatewayInfo",
    "GatewayLink",
    "Inventory",
    "InventoryCache",
    "NightFlow",
    "SiteEventRow",
    "day_coverage",
    "day_values",
    "dwelling_days",
    "gateway_links",
    "hour_rates",
    "hour_values",
    "index_decreases",
    "latest_reading_at",
    "load_inventory",
    "meter_event_times",
    "night_flows",
    "occupied_dwellings",
    "site_events",
]

_LOG = logging.getLogger(__name__)
_CHUNK: Final = 500
_HOUR_US: Final = 3_600_000_000
_UNPLACED: Final = Place(0, "-", "-", 0, "-", "-", 0, "-", "(sans bâtiment)")


# ----------------------------------------------------------------------------- inventory


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel as the rules see it."""

    id: int
    box_id: int
    path: str
    kind: str
    unit: str | None
    is_index: bool
    label: str | None


@dataclass(frozen=True, slots=True)
class BoxInfo:
    """A box: its gateway and the dwelling it serves (if any)."""

    id: int
    gateway_id: int
    box_ref: str
    dwelling_id: int | None


@dataclass(frozen=True, slots=True)
class DwellingInfo:
    """A dwelling or common area."""

    id: int
    building_id: int
    code: str
    label: str
    kind: str
    surface_m2: float | None


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """A building gateway (``site_id`` names its sync link)."""

    id: int
    site_id: str
    building_id: int | None


def _grouped(pairs: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Return ``{owner: [id, ...]}`` from ``(owner, id)`` pairs, in their order."""
    found: dict[int, list[int]] = defaultdict(list)
    for owner, item in pairs:
        found[owner].append(item)
    return dict(found)


@dataclass
class Inventory:
    """The patrimony and equipment, by id, and the :class:`Place` of every subject."""

    buildings: Mapping[int, Place]
    dwellings: Mapping[int, DwellingInfo]
    gateways: Mapping[int, GatewayInfo]
    boxes: Mapping[int, BoxInfo]
    channels: Mapping[int, ChannelInfo]
    _places: dict[Subject, Place | None] = field(default_factory=dict, repr=False)
    _boxes_of_gateway: dict[int, list[int]] | None = field(default=None, repr=False)
    _channels_of_box: dict[int, list[int]] | None = field(default=None, repr=False)

    def boxes_of_gateway(self, gateway_id: int) -> list[int]:
        """Return the ids of a gateway's boxes."""
        if self._boxes_of_gateway is None:
            self._boxes_of_gateway = _grouped((b.gateway_id, b.id) for b in self.boxes.values())
        return self._boxes_of_gateway.get(gateway_id, [])

    def channels_of_box(self, box_id: int) -> list[int]:
        """Return the ids of a box's channels."""
        if self._channels_of_box is None:
            self._channels_of_box = _grouped((c.box_id, c.id) for c in self.channels.values())
        return self._channels_of_box.get(box_id, [])

    def dwelling_of_channel(self, channel_id: int) -> int | None:
        """Return the dwelling a channel's box serves, if any."""
        channel = self.channels.get(channel_id)
        box = None if channel is None else self.boxes.get(channel.box_id)
        return None if box is None else box.dwelling_id

    def subjects_of_channels(self, channel_ids: Iterable[int]) -> set[Subject]:
        """Return the subjects data rules may judge from these channels' data."""
        found: set[Subject] = set()
        for cid in channel_ids:
            if cid not in self.channels:
                continue
            found.add(Subject("channel", cid))
            dwelling = self.dwelling_of_channel(cid)
            if dwelling is not None:
                found.add(Subject("dwelling", dwelling))
        return found

    def place(self, subject: Subject) -> Place | None:
        """Return where a subject is (``None``: no such row)."""
        if subject in self._places:
            return self._places[subject]
        made = self._make_place(subject)
        self._places[subject] = made
        return made

    def _building_place(self, building_id: int | None) -> Place:
        if building_id is None:
            return _UNPLACED
        return self.buildings.get(building_id, _UNPLACED)

    def _dwelling_place(self, base: Place, dwelling_id: int | None) -> Place:
        dwelling = None if dwelling_id is None else self.dwellings.get(dwelling_id)
        if dwelling is None:
            return base
        return _with(
            self._building_place(dwelling.building_id),
            dwelling_id=dwelling.id,
            dwelling_code=dwelling.code,
            dwelling_label=dwelling.label,
        )

    def _make_place(self, subject: Subject) -> Place | None:
        kind, sid = subject.kind, subject.id
        if kind == "building":
            return self.buildings.get(sid)
        if kind == "dwelling":
            dwelling = self.dwellings.get(sid)
            if dwelling is None:
                return None
            return self._dwelling_place(self._building_place(dwelling.building_id), sid)
        if kind in ("gateway", "site"):
            gateway = self.gateways.get(sid)
            if gateway is None:
                return None
            return _with(self._building_place(gateway.building_id), site_id=gateway.site_id)
        if kind == "box":
            box = self.boxes.get(sid)
            if box is None:
                return None
            gateway = self.gateways.get(box.gateway_id)
            base = self.place(Subject("gateway", box.gateway_id)) or _UNPLACED
            place = self._dwelling_place(base, box.dwelling_id)
            site = gateway.site_id if gateway is not None else None
            return _with(place, site_id=site, box_ref=box.box_ref)
        if kind == "channel":
            channel = self.channels.get(sid)
            if channel is None:
                return None
            box_place = self.place(Subject("box", channel.box_id))
            if box_place is None:
                return None
            return _with(
                box_place,
                channel_path=channel.path,
                channel_kind=channel.kind,
                channel_label=channel.label,
            )
        return None


def _with(place: Place, **changes: Any) -> Place:  # noqa: ANN401
    fields = {name: getattr(place, name) for name in Place.__dataclass_fields__}
    fields.update(changes)
    return Place(**fields)


_BUILDINGS = text(
    "SELECT b.id, b.code, b.name, r.id, r.code, r.name, a.id, a.code, a.name "
    "FROM building b JOIN residence r ON r.id = b.residence_id "
    "JOIN agency a ON a.id = r.agency_id"
)
_DWELLINGS = text("SELECT id, building_id, code, label, kind, surface_m2 FROM dwelling")
_GATEWAYS = text("SELECT id, site_id, building_id FROM gateway")
_BOXES = text("SELECT id, gateway_id, box_ref, dwelling_id FROM box")
_CHANNELS = text("SELECT id, box_id, path, kind, unit, is_index, label FROM channel")
_FINGERPRINT = text(
    "SELECT (SELECT COUNT(*) FROM channel), (SELECT MAX(id) FROM channel), "
    "(SELECT COUNT(*) FROM box), (SELECT MAX(id) FROM box), "
    "(SELECT COUNT(*) FROM dwelling), (SELECT MAX(id) FROM dwelling), "
    "(SELECT COUNT(*) FROM gateway), (SELECT MAX(id) FROM gateway), "
    "(SELECT COUNT(*) FROM building), (SELECT MAX(id) FROM building)"
)


def load_inventory(conn: Connection) -> Inventory:
    """Read the whole inventory (five statements)."""
    buildings = {
        int(row[0]): Place(
            agency_id=int(row[6]),
            agency_code=row[7],
            agency_name=row[8],
            residence_id=int(row[3]),
            residence_code=row[4],
            residence_name=row[5],
            building_id=int(row[0]),
            building_code=row[1],
            building_name=row[2],
        )
        for row in conn.execute(_BUILDINGS)
    }
    dwellings = {
        int(row[0]): DwellingInfo(
            int(row[0]),
            int(row[1]),
            row[2],
            row[3],
            row[4],
            None if row[5] is None else float(row[5]),
        )
        for row in conn.execute(_DWELLINGS)
    }
    gateways = {
        int(row[0]): GatewayInfo(int(row[0]), row[1], None if row[2] is None else int(row[2]))
        for row in conn.execute(_GATEWAYS)
    }
    boxes = {
        int(row[0]): BoxInfo(
            int(row[0]), int(row[1]), row[2], None if row[3] is None else int(row[3])
        )
        for row in conn.execute(_BOXES)
    }
    channels = {
        int(row[0]): ChannelInfo(
            int(row[0]), int(row[1]), row[2], row[3], row[4], bool(row[5]), row[6]
        )
        for row in conn.execute(_CHANNELS)
    }
    return Inventory(buildings, dwellings, gateways, boxes, channels)


class InventoryCache:
    """Keep an :class:`Inventory` between evaluations; reload it when the tables change.

    A change is seen from the row counts and highest ids of the inventory tables (one
    cheap statement per :meth:`get`); renames are seen after ``max_age_s``.
    """

    def __init__(
        self, *, max_age_s: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._inventory: Inventory | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._loaded_at = 0.0

    def get(self, conn: Connection) -> Inventory:
        """Return the inventory, reloaded if it changed or is older than ``max_age_s``."""
        fingerprint = tuple(conn.execute(_FINGERPRINT).one())
        now = self._clock()
        if (
            self._inventory is None
            or fingerprint != self._fingerprint
            or now - self._loaded_at >= self._max_age_s
        ):
            self._inventory = load_inventory(conn)
            self._fingerprint = fingerprint
            self._loaded_at = now
        return self._inventory

    def clear(self) -> None:
        """Forget the inventory (the next :meth:`get` reloads it)."""
        self._inventory = None


# ----------------------------------------------------------------------------- helpers


def _chunks(ids: Collection[int] | None) -> Iterator[list[int] | None]:
    if ids is None:
        yield None
        return
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _run(
    conn: Connection,
    sql: str,
    params: Mapping[str, Any],
    *,
    channel_ids: Collection[int] | None = None,
    id_column: str = "h.channel_id",
    dates: Sequence[str] = (),
    lists: Sequence[str] = (),
) -> Iterator[Any]:
    """Run ``sql`` once per chunk of ids.

    ``#IDS#`` marks the id filter; ``#PIDS#`` the same on a self-joined rollup ``p``, so
    that it too is read by key ranges.
    """
    for chunk in _chunks(channel_ids):
        statement_text = sql.replace(
            "#IDS#", "" if chunk is None else f"AND {id_column} IN :ids"
        ).replace("#PIDS#", "" if chunk is None else "AND p.channel_id IN :ids")
        statement: TextClause = text(statement_text)
        binds = [bindparam(name, type_=Date) for name in dates]
        binds.extend(bindparam(name, expanding=True) for name in lists)
        values = dict(params)
        if chunk is not None:
            binds.append(bindparam("ids", expanding=True))
            values["ids"] = chunk
        if binds:
            statement = statement.bindparams(*binds)
        yield from conn.execute(statement, values)


#: Rollup statements name their channels in a constant ``IN`` list (``_CHUNK`` ids at a
#: time) rather than joining ``channel``: every engine then seeks exactly the key ranges
#: ``(channel_id, bucket)`` it needs. (MariaDB cannot use a range on the second column of
#: the key inside a join: a join read every rollup row of each channel; SQLite would walk
#: a whole rollup table in key order when asked for that order.)


# ----------------------------------------------------------------------------- no data


def latest_reading_at(
    conn: Connection, channel_ids: Collection[int] | None = None
) -> dict[int, int | None]:
    """Return when each channel's newest reading ends (epoch µs, ``None``: no reading).

    A sample is a point (its ``at``); an hourly aggregate (``hour_mean``, ``hour_last``) is
    stamped at its hour's start but covers the hour, so it counts from the hour's end: a
    gateway that sends each hour when it is over is not "silent" for that hour. Two index
    seeks per channel (the newest row's ``at`` and ``aggregate``).
    """
    sql = (
        "SELECT c.id, "
        "(SELECT r.at FROM reading r WHERE r.channel_id = c.id ORDER BY r.at DESC LIMIT 1), "
        "(SELECT r.aggregate FROM reading r WHERE r.channel_id = c.id ORDER BY r.at DESC "
        "LIMIT 1) FROM channel c WHERE 1 = 1 #IDS#"
    )
    out: dict[int, int | None] = {}
    for cid, at, aggregate in _run(conn, sql, {}, channel_ids=channel_ids, id_column="c.id"):
        if at is None:
            out[int(cid)] = None
        else:
            out[int(cid)] = int(at) + (0 if aggregate in (None, "sample") else _HOUR_US)
    return out


@dataclass(frozen=True, slots=True)
class GatewayLink:
    """What headquarters last heard from a gateway's site (instants in epoch µs)."""

    gateway_id: int
    site_id: str
    last_seen_us: int | None  # any packet (gateway.last_seen_at, sync_ledger.updated_at)
    status_at_us: int | None  # the last STATUS packet's own time
    status: Mapping[str, Any] | None  # its content (boxes_up, queue_depth, sms_budget...)


def gateway_links(conn: Connection) -> list[GatewayLink]:
    """Return every gateway with its sync ledger (last packet, last STATUS)."""
    rows = conn.execute(
        text(
            "SELECT g.id, g.site_id, g.last_seen_at, l.updated_at, l.last_status_at, l.status "
            "FROM gateway g LEFT JOIN sync_ledger l ON l.site_id = g.site_id"
        )
    )
    out: list[GatewayLink] = []
    for gid, site, seen, updated, status_at, document in rows:
        candidates = [int(value) for value in (seen, updated) if value is not None]
        status: Mapping[str, Any] | None = None
        if document is not None:
            try:
                loaded = json.loads(document)
            except ValueError:
                _LOG.warning("Alerts: sync_ledger.status of site %s is not JSON", site)
                loaded = None
            status = loaded if isinstance(loaded, dict) else None
        out.append(
            GatewayLink(
                int(gid),
                site,
                max(candidates) if candidates else None,
                None if status_at is None else int(status_at),
                status,
            )
        )
    return out


# ----------------------------------------------------------------------------- rollups


def hour_values(
    conn: Connection,
    *,
    column: str,
    lo_us: int,
    hi_us: int,
    channel_ids: Collection[int],
) -> dict[int, list[tuple[int, float]]]:
    """Return ``{channel: [(hour_us, value), ...]}`` (oldest first) of ``rollup_hour``.

    ``column`` is ``"mean"`` (gauges) or ``"consumption"`` (indexes); NULL values skipped.
    """
    if column not in ("mean", "consumption", "max", "min"):
        raise ValueError(f"not a rollup column: {column!r}")
    sql = (
        f"SELECT h.channel_id, h.hour_start, h.{column} FROM rollup_hour h "  # noqa: S608
        f"WHERE h.hour_start >= :lo AND h.hour_start < :hi AND h.{column} IS NOT NULL #IDS#"
    )
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for cid, hour, value in _run(conn, sql, {"lo": lo_us, "hi": hi_us}, channel_ids=channel_ids):
        out[int(cid)].append((int(hour), float(value)))
    for values in out.values():
        values.sort()
    return dict(out)


@dataclass(frozen=True, slots=True)
class NightFlow:
    """A water channel's hours of one night: how many, the lowest and the total (raw units)."""

    hours: int
    min: float
    total: float


def night_flows(
    conn: Connection,
    *,
    nights: Sequence[tuple[int, int]],
    channel_ids: Collection[int],
) -> dict[int, dict[int, NightFlow]]:
    """Return ``{channel: {night number: NightFlow}}`` of index channels.

    ``nights`` are UTC spans ``[lo_us, hi_us)``; the number is the position in that list.
    One GROUP BY over ``rollup_hour``; hours without a consumption are not counted.
    """
    if not nights:
        return {}
    cases = " ".join(
        f"WHEN h.hour_start >= :lo{n} AND h.hour_start < :hi{n} THEN {n}"
        for n in range(len(nights))
    )
    spans = " OR ".join(
        f"(h.hour_start >= :lo{n} AND h.hour_start < :hi{n})" for n in range(len(nights))
    )
    sql = (
        "SELECT t.channel_id, t.night, COUNT(*), MIN(t.consumption), SUM(t.consumption) "  # noqa: S608
        f"FROM (SELECT h.channel_id, h.consumption, CASE {cases} END AS night "
        "FROM rollup_hour h WHERE h.consumption IS NOT NULL "
        f"AND ({spans}) #IDS#) t GROUP BY t.channel_id, t.night"
    )
    params: dict[str, Any] = {}
    for n, (lo, hi) in enumerate(nights):
        params[f"lo{n}"] = lo
        params[f"hi{n}"] = hi
    out: dict[int, dict[int, NightFlow]] = defaultdict(dict)
    for cid, night, count, low, total in _run(conn, sql, params, channel_ids=channel_ids):
        if night is None:
            continue
        out[int(cid)][int(night)] = NightFlow(int(count), float(low), float(total))
    return dict(out)


def day_values(
    conn: Connection,
    *,
    column: str,
    first: date,
    last: date,
    channel_ids: Collection[int],
) -> dict[int, list[tuple[date, float]]]:
    """Return ``{channel: [(day, value), ...]}`` (oldest first) of ``rollup_day``."""
    if column not in ("mean", "consumption"):
        raise ValueError(f"not a rollup column: {column!r}")
    sql = (
        f"SELECT d.channel_id, d.day, d.{column} FROM rollup_day d "  # noqa: S608
        f"WHERE d.day >= :first AND d.day <= :last AND d.{column} IS NOT NULL #IDS#"
    )
    out: dict[int, list[tuple[date, float]]] = defaultdict(list)
    for cid, day, value in _run(
        conn,
        sql,
        {"first": first, "last": last},
        channel_ids=channel_ids,
        id_column="d.channel_id",
        dates=("first", "last"),
    ):
        out[int(cid)].append((_as_date(day), float(value)))
    for values in out.values():
        values.sort()
    return dict(out)


def day_coverage(
    conn: Connection,
    *,
    first: date,
    last: date,
    channel_ids: Collection[int],
) -> dict[int, tuple[float, float]]:
    """Return ``{channel: (consumption, hours covered)}`` of index channels over days.

    The hours a day covers are its readings' span (``last_at - first_at``) plus one hour:
    hourly readings stamped at the hour start cover the hour after the last one.
    """
    sql = (
        "SELECT d.channel_id, d.consumption, d.first_at, d.last_at FROM rollup_day d "
        "WHERE d.day >= :first AND d.day <= :last AND d.consumption IS NOT NULL #IDS#"
    )
    out: dict[int, tuple[float, float]] = {}
    for cid, consumption, first_at, last_at in _run(
        conn,
        sql,
        {"first": first, "last": last},
        channel_ids=channel_ids,
        id_column="d.channel_id",
        dates=("first", "last"),
    ):
        hours = 1.0
        if first_at is not None and last_at is not None:
            hours = min(25.0, (int(last_at) - int(first_at)) / _HOUR_US + 1.0)
        total, covered = out.get(int(cid), (0.0, 0.0))
        out[int(cid)] = (total + float(consumption), covered + hours)
    return out


def _as_date(value: Any) -> date:  # noqa: ANN401 - a driver's date
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def dwelling_days(
    conn: Connection,
    inventory: Inventory,
    *,
    first: date,
    last: date,
    dwelling_ids: Collection[int] | None = None,
) -> dict[tuple[int, str, str | None], dict[date, float]]:
    """Return ``{(dwelling, kind, unit): {day: consumption}}`` of index channels.

    The channels are the index channels (kind ``other``, sub-meters, left out) of the
    boxes serving the dwellings (all of them, or ``dwelling_ids``), read from
    ``rollup_day`` and summed per dwelling, kind and unit.
    """
    owner: dict[int, tuple[int, str, str | None]] = {}
    for channel in inventory.channels.values():
        if not channel.is_index or channel.kind == "other":
            continue
        box = inventory.boxes.get(channel.box_id)
        if box is None or box.dwelling_id is None:
            continue
        if dwelling_ids is not None and box.dwelling_id not in dwelling_ids:
            continue
        owner[channel.id] = (box.dwelling_id, channel.kind, channel.unit)
    daily = day_values(conn, column="consumption", first=first, last=last, channel_ids=owner)
    out: dict[tuple[int, str, str | None], dict[date, float]] = defaultdict(dict)
    for cid, values in daily.items():
        sums = out[owner[cid]]
        for day, value in values:
            sums[day] = sums.get(day, 0.0) + value
    return dict(out)


def occupied_dwellings(conn: Connection, day: date) -> tuple[set[int], int]:
    """Return the dwellings with a tenancy covering ``day``, and how many tenancy rows exist."""
    statement = text(
        "SELECT DISTINCT dwelling_id FROM tenancy WHERE start_date <= :day "
        "AND (end_date IS NULL OR end_date >= :day)"
    ).bindparams(bindparam("day", type_=Date))
    occupied = {int(row[0]) for row in conn.execute(statement, {"day": day})}
    total = int(conn.execute(text("SELECT COUNT(*) FROM tenancy")).scalar_one())
    return occupied, total


# ----------------------------------------------------------------------------- meters


@dataclass(frozen=True, slots=True)
class Decrease:
    """An index reading below the one before it (instants in epoch µs, raw units)."""

    channel_id: int
    previous_at_us: int
    previous: float
    at_us: int
    value: float


def index_decreases(
    conn: Connection, *, lo_us: int, channel_ids: Collection[int]
) -> list[Decrease]:
    """Return the decreases of index channels in the hours since ``lo_us``.

    Between hours: an hour's first value below the last value of the hour just before
    (a self-join on the rollup key: a decrease across an hour without data is not seen).
    Inside an hour (its lowest value below its first, or its highest above its last):
    the hour's raw readings are read to find the pair.
    """
    sql = (
        "SELECT h.channel_id, h.hour_start, h.first_at, h.first_value, h.last_value, "
        "h.min, h.max, p.last_at, p.last_value FROM rollup_hour h "
        "LEFT JOIN rollup_hour p ON p.channel_id = h.channel_id "
        "AND p.hour_start = h.hour_start - :hour AND p.hour_start >= :plo #PIDS# "
        "WHERE h.hour_start >= :lo "
        "AND (h.first_value < p.last_value OR h.min < h.first_value "
        "OR h.max > h.last_value) #IDS#"
    )
    found: list[Decrease] = []
    inside: list[tuple[int, int]] = []
    params = {"lo": lo_us, "plo": lo_us - _HOUR_US, "hour": _HOUR_US}
    for row in _run(conn, sql, params, channel_ids=channel_ids):
        cid, hour, first_at, first, last, low, high, prev_at, prev = row
        if prev is not None and first is not None and float(first) < float(prev):
            found.append(Decrease(int(cid), int(prev_at), float(prev), int(first_at), float(first)))
        if (low is not None and first is not None and float(low) < float(first)) or (
            high is not None and last is not None and float(high) > float(last)
        ):
            inside.append((int(cid), int(hour)))
    for cid, hour in inside:
        rows = conn.execute(
            text(
                "SELECT at, value FROM reading WHERE channel_id = :cid AND at >= :lo "
                "AND at < :hi AND quality = 'good' ORDER BY at"
            ),
            {"cid": cid, "lo": hour, "hi": hour + _HOUR_US},
        ).all()
        for (at0, v0), (at1, v1) in itertools.pairwise(rows):
            if float(v1) < float(v0):
                found.append(Decrease(cid, int(at0), float(v0), int(at1), float(v1)))
    return found


def hour_rates(
    conn: Connection,
    *,
    lo_us: int,
    hi_us: int,
    channel_ids: Collection[int],
    floor: float | None = None,
) -> list[tuple[int, int, float, float]]:
    """Return ``(channel, hour_us, consumption per hour, hours spanned)`` of index hours.

    An hour's consumption is the sum of the steps of its readings, which start at the
    channel's previous reading: after hours without data, one hour holds the whole gap's
    consumption. The rate divides it by the hours from that previous reading (found by a
    correlated seek on ``rollup_hour``) to the hour's last reading, at least one. Hours in
    ``[lo_us, hi_us)``; ``floor`` keeps hours whose consumption is above it (a rate is
    never above its consumption).
    """
    sql = (
        "SELECT h.channel_id, h.hour_start, h.consumption, h.last_at, "  # noqa: S608
        "(SELECT p.last_at FROM rollup_hour p WHERE p.channel_id = h.channel_id "
        "AND p.hour_start < h.hour_start ORDER BY p.hour_start DESC LIMIT 1) "
        "FROM rollup_hour h WHERE h.hour_start >= :lo AND h.hour_start < :hi "
        "AND h.consumption IS NOT NULL "
        f"{'AND h.consumption > :floor ' if floor is not None else ''}#IDS#"
    )
    params: dict[str, Any] = {"lo": lo_us, "hi": hi_us}
    if floor is not None:
        params["floor"] = floor
    out: list[tuple[int, int, float, float]] = []
    for cid, hour, consumption, last_at, previous_at in _run(
        conn, sql, params, channel_ids=channel_ids
    ):
        span = 1.0
        if last_at is not None and previous_at is not None:
            span = max(1.0, (int(last_at) - int(previous_at)) / _HOUR_US)
        out.append((int(cid), int(hour), float(consumption) / span, span))
    return out


#: ``site_event`` kinds by which a gateway explains an index decrease it saw (weshd's
#: ``IndexGuard``): they count as meter events of their channel.
METER_SITE_EVENT_KINDS: Final = ("counter_reset", "meter_replaced")
#: An ALARM packet carries its time to the minute: a site event is taken at its minute's end.
_SITE_EVENT_SLACK_US: Final = 60_000_000 - 1


def meter_event_times(
    conn: Connection, channel_ids: Collection[int], *, lo_us: int, hi_us: int
) -> dict[int, list[int]]:
    """Return ``{channel: [event at_us, ...]}`` (sorted) of meter events in ``[lo_us, hi_us]``.

    A meter event is a ``meter_event`` row, or a ``site_event`` of a kind in
    :data:`METER_SITE_EVENT_KINDS` (the gateway saw the counter reset or the meter
    replaced) of the channel: the one HQ resolved (``channel_id``), else, when it could not
    (an alarm ahead of its channel's first readings), the channel of the same site,
    ``box_ref`` and path (``channel_path``: the sink strips the ``<box>/`` prefix). A site
    event's time is known to the minute: it counts at the end of its minute. One
    statement (three parts: ``UNION ALL``) per 500 channels.
    """
    if not channel_ids:
        return {}
    sql = (
        "SELECT e.channel_id, e.at, 0 FROM meter_event e "
        "WHERE e.at >= :lo AND e.at <= :hi AND e.channel_id IN :ids "
        "UNION ALL SELECT s.channel_id, s.at, 1 FROM site_event s "
        "WHERE s.kind IN :kinds AND s.at >= :slo AND s.at <= :hi AND s.channel_id IN :ids "
        "UNION ALL SELECT c.id, s.at, 1 FROM channel c "
        "JOIN box b ON b.id = c.box_id JOIN gateway g ON g.id = b.gateway_id "
        "JOIN site_event s ON s.site_id = g.site_id AND s.box_ref = b.box_ref "
        "AND s.channel_path = c.path "
        "WHERE s.channel_id IS NULL AND s.kind IN :kinds AND s.at >= :slo AND s.at <= :hi "
        "AND c.id IN :ids"
    )
    params = {
        "lo": lo_us,
        "slo": lo_us - _SITE_EVENT_SLACK_US,
        "hi": hi_us,
        "kinds": list(METER_SITE_EVENT_KINDS),
    }
    out: dict[int, list[int]] = defaultdict(list)
    for cid, at, from_site in _run(conn, sql, params, channel_ids=channel_ids, lists=("kinds",)):
        out[int(cid)].append(int(at) + (_SITE_EVENT_SLACK_US if from_site else 0))
    for times in out.values():
        times.sort()
    return dict(out)


@dataclass(frozen=True, slots=True)
class SiteEventRow:
    """An alarm received from a site."""

    id: int
    site_id: str
    box_id: int | None
    channel_id: int | None
    at_us: int
    kind: str
    message: str


def site_events(
    conn: Connection,
    *,
    kinds: Collection[str],
    lo_us: int,
    hi_us: int,
) -> list[SiteEventRow]:
    """Return the site events of ``kinds`` in ``[lo_us, hi_us]``, oldest first."""
    statement = text(
        "SELECT id, site_id, box_id, channel_id, at, kind, message FROM site_event "
        "WHERE kind IN :kinds AND at >= :lo AND at <= :hi ORDER BY at, id"
    ).bindparams(bindparam("kinds", expanding=True))
    return [
        SiteEventRow(
            int(row[0]),
            row[1],
            None if row[2] is None else int(row[2]),
            None if row[3] is None else int(row[3]),
            int(row[4]),
            row[5],
            row[6],
        )
        for row in conn.execute(statement, {"kinds": list(kinds), "lo": lo_us, "hi": hi_us})
    ]
