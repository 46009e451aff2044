"""The inventory: patrimony and equipment, created or updated in bulk from CSV or TOML.

::

    inventory.csv / .toml ──parse_inventory──▶ [InventoryRecord] + per-line errors   (pure)
                          ──apply_inventory──▶ rows created / updated / unchanged    (SQL)
                                               + per-line errors (unknown parent...)

One vocabulary for both formats (``docs/hq-data.md``, "Inventory files"): a **record**
(``agency``, ``residence``, ``building``, ``dwelling``, ``tenancy``, ``gateway``, ``box``,
``channel``, ``meter``, ``meter_event``) with named **fields**; each record has a natural
key (a code, or ``site`` + ``box`` + ``path``...) and is created, or updated when its key
exists. A field left empty (CSV) or absent (TOML) is left as it is; on creation it takes
its default.

* **CSV**: a header naming a ``record`` column and any fields; one record per line.
  Separator ``,`` or ``;`` (found in the header), UTF-8 (a BOM is fine), ``#`` lines and
  blank lines skipped, decimal commas accepted in numbers.
* **TOML**: arrays of tables named after the records (``[[dwelling]]``), the same keys.

**Bad input loses nothing**: every bad record is reported (a :class:`ConfigError` whose
``where`` is ``file:LINE``) and every good one is applied. Records are applied parents
first (agencies, then residences...), whatever their order in the file; a record whose
parent is unknown (in the file and in the store) is an error of its own line.
A ``meter_event`` re-rolls the rollups of its channel (:func:`wesh.hq.rollups.reroll`).
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import Connection, Engine, Table, insert, select, update

from wesh.errors import ConfigError, DecodeError, TransientError, WeshError
from wesh.gateway.channels import check_path, describe_path
from wesh.gateway.config import key_lines
from wesh.hq.db import transaction
from wesh.hq.models import (
    BOX_DRIVERS,
    CHANNEL_KINDS,
    CODE_LEN,
    DWELLING_KINDS,
    METER_EVENT_KINDS,
    NAME_LEN,
    PATH_LEN,
    SHORT_LEN,
    Agency,
    Box,
    Building,
    Channel,
    Dwelling,
    Gateway,
    Meter,
    MeterEvent,
    Residence,
    Tenancy,
)
from wesh.hq.rollups import reroll
from wesh.hq.timeutil import PARIS
from wesh.wes.m2m import normalise_mac

__all__ = [
    "RECORDS",
    "FieldSpec",
    "ImportResult",
    "InventoryRecord",
    "RecordKind",
    "apply_inventory",
    "import_inventory",
    "load_inventory",
    "parse_inventory",
    "record",
]

_LOG = logging.getLogger(__name__)

RecordKind = Literal[
    "agency",
    "residence",
    "building",
    "dwelling",
    "tenancy",
    "gateway",
    "box",
    "channel",
    "meter",
    "meter_event",
]

#: Records per transaction; a failing chunk is replayed record by record.
_CHUNK: Final = 500


# ----------------------------------------------------------------------------- fields


def _text(limit: int) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"must be text, not {type(value).__name__}")
        text = str(value).strip()
        if not text:
            raise ValueError("must not be empty")
        if len(text) > limit:
            raise ValueError(f"is {len(text)} characters long (at most {limit})")
        if any(char in text for char in "\r\n\0"):
            raise ValueError("must be on one line")
        return text

    return convert


def _one_of(values: Sequence[str]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        text = str(value).strip()
        if text not in values:
            close = difflib.get_close_matches(text, values, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{text!r} is not one of {', '.join(values)}{hint}")
        return text

    return convert


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("must be a number, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u202f", "").replace("\xa0", "")
        if _DECIMAL_COMMA.fullmatch(text):
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise TypeError(f"must be a number, not {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _positive(value: object) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError(f"must be positive, not {number:g}")
    return number


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


_TRUE = frozenset({"true", "yes", "oui", "1", "vrai"})
_FALSE = frozenset({"false", "no", "non", "0", "faux"})


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _date(value: object) -> date:
    if isinstance(value, datetime):
        raise TypeError("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _instant(value: object) -> datetime:
    """Return an aware instant; a bare date is its Paris midnight."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=PARIS).astimezone(UTC)
    else:
        text = str(value).strip()
        if len(text) == 10:
            return _instant(_date(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date and time (2024-03-31T02:30:00+02:00, or a date)"
            ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"'{value}' has no UTC offset (write +01:00, +02:00 or Z)")
    return parsed.astimezone(UTC)


def _path(value: object) -> str:
    text = _text(PATH_LEN)(value)
    problem = check_path(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _mac(value: object) -> str:
    try:
        return normalise_mac(str(value))
    except DecodeError:
        raise ValueError(f"{value!r} is not a MAC address (12 hex digits)") from None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record: its converter and whether it is required on creation."""

    convert: Callable[[object], Any]
    required: bool = False
    key: bool = False  # part of the record's natural key (always required)


_CODE = _text(CODE_LEN)
_NAME = _text(NAME_LEN)

#: Every record and its fields, in the order records are applied.
RECORDS: Final[dict[RecordKind, dict[str, FieldSpec]]] = {
    "agency": {"code": FieldSpec(_CODE, key=True), "name": FieldSpec(_NAME)},
    "residence": {
        "code": FieldSpec(_CODE, key=True),
        "agency": FieldSpec(_CODE, required=True),
        "name": FieldSpec(_NAME),
        "address": FieldSpec(_text(400)),
    },
    "building": {
        "code": FieldSpec(_CODE, key=True),
        "residence": FieldSpec(_CODE, required=True),
        "name": FieldSpec(_NAME),
    },
    "dwelling": {
        "code": FieldSpec(_CODE, key=True),
        "building": FieldSpec(_CODE, required=True),
        "kind": FieldSpec(_one_of(DWELLING_KINDS)),
        "label": FieldSpec(_NAME),
        "floor": FieldSpec(_integer),
        "surface_m2": FieldSpec(_positive),
        "heating_type": FieldSpec(_text(32)),
    },
    "tenancy": {
        "dwelling": FieldSpec(_CODE, key=True),
        "start_date": FieldSpec(_date, key=True),
        "tenant_ref": FieldSpec(_CODE, required=True),
        "end_date": FieldSpec(_date),
    },
    "gateway": {
        "site": FieldSpec(_CODE, key=True),
        "building": FieldSpec(_CODE),
        "name": FieldSpec(_NAME),
        "phone_number": FieldSpec(_text(32)),
        "key_id": FieldSpec(_CODE),
    },
    "box": {
        "site": FieldSpec(_CODE, key=True),
        "box": FieldSpec(_CODE, key=True),
        "dwelling": FieldSpec(_CODE),
        "driver": FieldSpec(_one_of(BOX_DRIVERS)),
        "host": FieldSpec(_text(255)),
        "mac": FieldSpec(_mac),
        "serial": FieldSpec(_CODE),
        "model": FieldSpec(_CODE),
        "firmware": FieldSpec(_CODE),
        "installed_at": FieldSpec(_instant),
    },
    "channel": {
        "site": FieldSpec(_CODE, key=True),
        "box": FieldSpec(_CODE, key=True),
        "path": FieldSpec(_path, key=True),
        "kind": FieldSpec(_one_of(CHANNEL_KINDS)),
        "unit": FieldSpec(_text(SHORT_LEN)),
        "is_index": FieldSpec(_boolean),
        "resolution": FieldSpec(_positive),
        "label": FieldSpec(_NAME),
    },
    "meter": {
        "site": FieldSpec(_CODE, key=True),
        "box": FieldSpec(_CODE, key=True),
        "serial": FieldSpec(_CODE, key=True),
        "kind": FieldSpec(_one_of(CHANNEL_KINDS), required=True),
        "input": FieldSpec(_text(PATH_LEN)),
        "model": FieldSpec(_CODE),
        "installed_at": FieldSpec(_instant, required=True),
        "removed_at": FieldSpec(_instant),
    },
    "meter_event": {
        "site": FieldSpec(_CODE, key=True),
        "box": FieldSpec(_CODE, key=True),
        "serial": FieldSpec(_CODE, key=True),
        "kind": FieldSpec(_one_of(METER_EVENT_KINDS), key=True),
        "at": FieldSpec(_instant, key=True),
        "path": FieldSpec(_path),
        "old_index": FieldSpec(_number),
        "new_index": FieldSpec(_number),
        "note": FieldSpec(_text(400)),
    },
}

_ALL_FIELDS: Final = sorted({name for fields in RECORDS.values() for name in fields})


@dataclass(frozen=True, slots=True)
class InventoryRecord:
    """One record of an inventory: its kind, its converted fields, where it was read."""

    kind: RecordKind
    fields: Mapping[str, Any]
    where: str

    def key(self) -> tuple[Any, ...]:
        """Return the record's natural key."""
        return tuple(self.fields[name] for name, spec in RECORDS[self.kind].items() if spec.key)


@dataclass(slots=True)
class ImportResult:
    """What an import did: counts per record kind, and every problem found."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    errors: list[ConfigError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether every record was applied."""
        return not self.errors

    @property
    def applied(self) -> int:
        """How many records were applied (created, updated or unchanged)."""
        return (
            sum(self.created.values()) + sum(self.updated.values()) + sum(self.unchanged.values())
        )


# ----------------------------------------------------------------------------- parsing


#: French names people may write, for the "did you mean" hint (only English is accepted).
_FRENCH: Final = {
    "agence": "agency",
    "batiment": "building",
    "bâtiment": "building",
    "logement": "dwelling",
    "bail": "tenancy",
    "location": "tenancy",
    "passerelle": "gateway",
    "boitier": "box",
    "boîtier": "box",
    "voie": "channel",
    "compteur": "meter",
    "evenement": "meter_event",
    "événement": "meter_event",
}


def _unknown_record(kind: str) -> str:
    close = _FRENCH.get(kind.lower()) or next(
        iter(difflib.get_close_matches(kind, list(RECORDS), n=1)), None
    )
    hint = f" (did you mean {close!r}?)" if close else ""
    return f"unknown record {kind!r}{hint}; records: {', '.join(RECORDS)}"


def _build(
    kind: str, values: Mapping[str, object], where: str, lines: Mapping[str, str]
) -> InventoryRecord:
    """Convert raw values into a record; raise ConfigError naming the first bad field."""
    spec = RECORDS.get(kind)  # type: ignore[call-overload]
    if spec is None:
        raise ConfigError(_unknown_record(kind), where=where)
    converted: dict[str, Any] = {}
    for name, value in values.items():
        if name not in spec:
            raise ConfigError(
                f"{kind}: field {name!r} does not apply to a {kind} "
                f"(its fields: {', '.join(spec)})",
                where=lines.get(name, where),
            )
        try:
            converted[name] = spec[name].convert(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{kind}.{name}: {exc}", where=lines.get(name, where)) from None
    missing = [
        name for name, field_spec in spec.items() if field_spec.key and name not in converted
    ]
    if missing:
        raise ConfigError(f"{kind}: missing {', '.join(missing)}", where=where)
    return InventoryRecord(kind, converted, where)  # type: ignore[arg-type]


def record(kind: RecordKind, *, where: str = "api", **fields: object) -> InventoryRecord:
    """Make a record from Python values (the same checks as files; ``None`` = not given).

    Raises:
        ConfigError: unknown record or field, bad value, missing key field.
    """
    given = {name: value for name, value in fields.items() if value is not None}
    return _build(kind, given, where, {})


def parse_inventory(
    text: str, *, source: str, fmt: Literal["csv", "toml"]
) -> tuple[list[InventoryRecord], list[ConfigError]]:
    """Parse an inventory text; return its good records and one error per bad record.

    Raises:
        ConfigError: the text as a whole is unusable (TOML syntax, CSV header).
    """
    if fmt == "csv":
        return _parse_csv(text, source)
    if fmt == "toml":
        return _parse_toml(text, source)
    raise ConfigError(f"unknown inventory format {fmt!r} (csv or toml)", where=source)


def _parse_csv(text: str, source: str) -> tuple[list[InventoryRecord], list[ConfigError]]:
    text = text.removeprefix("\ufeff")
    header_line = next(
        (line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")),
        "",
    )
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    records: list[InventoryRecord] = []
    errors: list[ConfigError] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                _check_header(header, f"{source}:{line}")
                continue
            where = f"{source}:{line}"
            if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
                errors.append(
                    ConfigError(f"{len(row)} cells for {len(header)} columns", where=where)
                )
                continue
            cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
            kind = cells.pop("record", "")
            values = {name: value for name, value in cells.items() if value}
            if not kind:
                message = "empty record cell (agency, residence, ..., meter_event)"
                errors.append(ConfigError(message, where=where))
                continue
            try:
                records.append(_build(kind.lower(), values, where, {}))
            except ConfigError as exc:
                errors.append(exc)
    except csv.Error as exc:
        raise ConfigError(f"CSV syntax error: {exc}", where=f"{source}:{reader.line_num}") from exc
    if header is None:
        raise ConfigError("no header line (record,code,...)", where=f"{source}:1")
    return records, errors


def _check_header(header: list[str], where: str) -> None:
    if "record" not in header:
        raise ConfigError("the header has no 'record' column", where=where)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ConfigError(f"column {name!r} appears twice", where=where)
        seen.add(name)
        if name != "record" and name not in _ALL_FIELDS:
            close = difflib.get_close_matches(name, _ALL_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown column {name!r}{hint}", where=where)


def _parse_toml(text: str, source: str) -> tuple[list[InventoryRecord], list[ConfigError]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{match.group(1)}" if match else source
        raise ConfigError(f"TOML syntax error: {exc}", where=where) from exc
    lines = key_lines(text)
    records: list[InventoryRecord] = []
    errors: list[ConfigError] = []
    for kind, tables in document.items():
        head = lines.get((kind,))
        where = f"{source}:{head}" if head else f"{source}:{kind}"
        if kind not in RECORDS:
            errors.append(ConfigError(_unknown_record(kind), where=where))
            continue
        if not isinstance(tables, list) or not all(isinstance(item, dict) for item in tables):
            errors.append(
                ConfigError(f"{kind} must be an array of tables ([[{kind}]])", where=where)
            )
            continue
        for number, values in enumerate(tables):
            line = lines.get((kind, number)) or head
            here = f"{source}:{line}" if line else f"{source}:{kind}[{number}]"
            key_at = {
                name: f"{source}:{lines[(kind, number, name)]}"
                for name in values
                if (kind, number, name) in lines
            }
            try:
                records.append(_build(kind, values, here, key_at))
            except ConfigError as exc:
                errors.append(exc)
    return records, errors


def load_inventory(path: Path | str) -> tuple[list[InventoryRecord], list[ConfigError]]:
    """Read and parse an inventory file (``.csv`` or ``.toml``, by its suffix).

    Raises:
        ConfigError: unreadable file, unknown suffix, not UTF-8, unusable as a whole.
    """
    file = Path(path)
    fmt = file.suffix.lower().lstrip(".")
    if fmt not in ("csv", "toml"):
        raise ConfigError(
            f"an inventory is a .csv or .toml file, not {file.name!r}", where=str(file)
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the inventory: {exc.strerror or exc}", where=str(file)
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "the inventory is not UTF-8 text (save it as UTF-8)", where=f"{file.name}:{line}"
        ) from exc
    return parse_inventory(text, source=file.name, fmt=fmt)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- applying


class _Unknown(Exception):
    """A parent named by a record does not exist."""


@dataclass(slots=True)
class _Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


#: the patrimony levels above a dwelling, each with its parent level (None: the top)
_PARENT: dict[str, str | None] = {"agency": None, "residence": "agency", "building": "residence"}


class _Applier:
    """Upserts records on one connection, with caches of the ids it looked up."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ids: dict[tuple[str, tuple[Any, ...]], int] = {}
        self.rerolls: list[tuple[int, datetime]] = []
        self.missing: list[str] = []  # fields the current record needs to be created
        self.where = ""

    # -- lookups
    def _id(self, what: str, key: tuple[Any, ...], query: Any) -> int:  # noqa: ANN401
        cached = self.ids.get((what, key))
        if cached is not None:
            return cached
        found = self.conn.execute(query).scalar_one_or_none()
        if found is None:
            shown = "/".join(str(part) for part in key)
            raise _Unknown(f"unknown {what} {shown!r} (not in the file nor in the store)")
        self.ids[what, key] = int(found)
        return int(found)

    def agency(self, code: str) -> int:
        return self._id("agency", (code,), select(Agency.id).where(Agency.code == code))

    def residence(self, code: str) -> int:
        return self._id("residence", (code,), select(Residence.id).where(Residence.code == code))

    def building(self, code: str) -> int:
        return self._id("building", (code,), select(Building.id).where(Building.code == code))

    def dwelling(self, code: str) -> int:
        return self._id("dwelling", (code,), select(Dwelling.id).where(Dwelling.code == code))

    def gateway(self, site: str) -> int:
        return self._id("site", (site,), select(Gateway.id).where(Gateway.site_id == site))

    def box(self, site: str, ref: str) -> int:
        gateway = self.gateway(site)
        return self._id(
            "box", (site, ref), select(Box.id).where(Box.gateway_id == gateway, Box.box_ref == ref)
        )

    # -- upsert
    def upsert(
        self,
        table: Table,
        kind: str,
        *,
        where: Mapping[str, Any],
        values: Mapping[str, Any],
        defaults: Mapping[str, Any],
        outcome: _Outcome,
    ) -> int:
        """Create the row matching ``where`` (with defaults), or update the given values."""
        columns = list(values)
        query = select(table.c.id, *(table.c[name] for name in columns)).where(
            *(table.c[name] == value for name, value in where.items())
        )
        found = self.conn.execute(query).first()
        if found is None:
            if self.missing:
                raise ConfigError(
                    f"{kind}: missing {', '.join(self.missing)} (needed to create it)",
                    where=self.where,
                )
            row = {**defaults, **where, **values}
            result = self.conn.execute(insert(table).values(**row))
            key = result.inserted_primary_key
            new_id = int(key[0]) if key and key[0] is not None else self._find_id(table, where)
            outcome.created.append(kind)
            return new_id
        row_id = int(found[0])
        changed = {
            name: value
            for name, value, old in zip(columns, values.values(), found[1:], strict=True)
            if old != value
        }
        if changed:
            self.conn.execute(update(table).where(table.c.id == row_id).values(**changed))
            outcome.updated.append(kind)
        else:
            outcome.unchanged.append(kind)
        return row_id

    def _find_id(self, table: Table, where: Mapping[str, Any]) -> int:
        query = select(table.c.id).where(*(table.c[name] == value for name, value in where.items()))
        return int(self.conn.execute(query).scalar_one())

    # -- records
    def apply(self, item: InventoryRecord, outcome: _Outcome) -> None:
        """Apply one record (raises _Unknown, ConfigError or a database WeshError)."""
        f = dict(item.fields)
        kind = item.kind
        table = _TABLES[kind]
        spec = RECORDS[kind]
        self.missing = [name for name in spec if spec[name].required and name not in f]
        self.where = item.where
        if kind in _PARENT:  # agency, residence, building: a code, a name, a parent
            code = f.pop("code")
            parent = _PARENT[kind]
            if parent is not None and parent in f:
                f[f"{parent}_id"] = getattr(self, parent)(f.pop(parent))
            self.ids[kind, (code,)] = self.upsert(
                table,
                kind,
                where={"code": code},
                values=f,
                defaults={"name": code},
                outcome=outcome,
            )
        elif kind == "dwelling":
            code = f.pop("code")
            if "building" in f:
                f["building_id"] = self.building(f.pop("building"))
            defaults = {"label": code, "kind": "dwelling"}
            self.ids["dwelling", (code,)] = self.upsert(
                table, kind, where={"code": code}, values=f, defaults=defaults, outcome=outcome
            )
        elif kind == "tenancy":
            where = {
                "dwelling_id": self.dwelling(f.pop("dwelling")),
                "start_date": f.pop("start_date"),
            }
            self.upsert(table, kind, where=where, values=f, defaults={}, outcome=outcome)
        elif kind == "gateway":
            site = f.pop("site")
            if "building" in f:
                f["building_id"] = self.building(f.pop("building"))
            self.ids["site", (site,)] = self.upsert(
                table, kind, where={"site_id": site}, values=f, defaults={}, outcome=outcome
            )
        elif kind == "box":
            site, ref = f.pop("site"), f.pop("box")
            where = {"gateway_id": self.gateway(site), "box_ref": ref}
            if "dwelling" in f:
                f["dwelling_id"] = self.dwelling(f.pop("dwelling"))
            self.ids["box", (site, ref)] = self.upsert(
                table, kind, where=where, values=f, defaults={"driver": "wes"}, outcome=outcome
            )
        elif kind == "channel":
            self._channel(item, f, outcome)
        elif kind == "meter":
            site, ref = f.pop("site"), f.pop("box")
            where = {"box_id": self.box(site, ref), "serial": f.pop("serial")}
            self.upsert(table, kind, where=where, values=f, defaults={}, outcome=outcome)
        else:
            self._meter_event(f, outcome)

    def _channel(self, item: InventoryRecord, f: dict[str, Any], outcome: _Outcome) -> None:
        site, ref, path = f.pop("site"), f.pop("box"), f.pop("path")
        box_id = self.box(site, ref)
        where = {"box_id": box_id, "path": path}
        exists = self.conn.execute(
            select(Channel.id).where(Channel.box_id == box_id, Channel.path == path)
        ).first()
        family = describe_path(path)
        defaults: dict[str, Any] = {}
        if family is not None:
            defaults = {"unit": family.unit, "is_index": family.kind == "index"}
            if family.meaning in CHANNEL_KINDS and family.meaning != "other":
                defaults["kind"] = family.meaning
        if exists is None and "kind" not in f and "kind" not in defaults:
            kinds = ", ".join(kind for kind in CHANNEL_KINDS if kind != "other")
            raise ConfigError(
                f"channel: kind is required for {path!r} ({kinds} or other)", where=item.where
            )
        defaults.setdefault("is_index", False)
        self.upsert(
            _TABLES["channel"], "channel", where=where, values=f, defaults=defaults, outcome=outcome
        )

    def _meter_event(self, f: dict[str, Any], outcome: _Outcome) -> None:
        site, ref, serial = f.pop("site"), f.pop("box"), f.pop("serial")
        box_id = self.box(site, ref)
        meter = self.conn.execute(
            select(Meter.id, Meter.input).where(Meter.box_id == box_id, Meter.serial == serial)
        ).first()
        if meter is None:
            raise _Unknown(
                f"unknown meter {serial!r} of box {site}/{ref} (not in the file nor in the store)"
            )
        path = f.pop("path", None)
        if path is None and meter.input:
            path = f"{meter.input}.index"
        channel_id = None
        if path is not None:
            channel_id = self.conn.execute(
                select(Channel.id).where(Channel.box_id == box_id, Channel.path == path)
            ).scalar_one_or_none()
            if channel_id is None and "path" in f:
                raise _Unknown(f"unknown channel {path!r} of box {site}/{ref}")
        where = {
            "meter_id": int(meter.id),
            "kind": f.pop("kind"),
            "at": f.pop("at"),
            "channel_id": channel_id,
        }
        before = len(outcome.unchanged)
        self.upsert(
            _TABLES["meter_event"],
            "meter_event",
            where=where,
            values=f,
            defaults={},
            outcome=outcome,
        )
        if channel_id is not None and len(outcome.unchanged) == before:
            self.rerolls.append((int(channel_id), where["at"]))


_TABLES: Final[dict[str, Table]] = {
    "agency": Agency.__table__,  # type: ignore[dict-item]
    "residence": Residence.__table__,  # type: ignore[dict-item]
    "building": Building.__table__,  # type: ignore[dict-item]
    "dwelling": Dwelling.__table__,  # type: ignore[dict-item]
    "tenancy": Tenancy.__table__,  # type: ignore[dict-item]
    "gateway": Gateway.__table__,  # type: ignore[dict-item]
    "box": Box.__table__,  # type: ignore[dict-item]
    "channel": Channel.__table__,  # type: ignore[dict-item]
    "meter": Meter.__table__,  # type: ignore[dict-item]
    "meter_event": MeterEvent.__table__,  # type: ignore[dict-item]
}


def _ordered(records: Iterable[InventoryRecord]) -> list[InventoryRecord]:
    rank = {kind: position for position, kind in enumerate(RECORDS)}
    return sorted(records, key=lambda item: rank[item.kind])  # stable: file order within a kind


def apply_inventory(engine: Engine, records: Iterable[InventoryRecord]) -> ImportResult:
    """Create or update the records, parents first; collect one error per failing record.

    Records go in transactions of 500; when one fails, its transaction is replayed record by
    record so that only the failing records are lost (each reported with its ``where``).

    Raises:
        ConnectionFailed, TransientError: the database itself failed.
    """
    result = ImportResult()
    ordered = _ordered(records)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        try:
            outcome, rerolls = _apply_chunk(engine, chunk)
        except _RecordProblem:
            outcome, rerolls = _Outcome(), []
            for item in chunk:
                try:
                    one, again = _apply_chunk(engine, [item])
                except _RecordProblem as exc:
                    result.errors.append(exc.error(item))
                    continue
                outcome.created += one.created
                outcome.updated += one.updated
                outcome.unchanged += one.unchanged
                rerolls += again
        result.created.update(outcome.created)
        result.updated.update(outcome.updated)
        result.unchanged.update(outcome.unchanged)
        for channel_id, at in rerolls:
            reroll(engine, channel_id, at, at)
    result.errors.sort(key=_error_order)
    return result


class _RecordProblem(Exception):
    """One record could not be applied (unknown parent, missing field, refused by SQL)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause

    def error(self, item: InventoryRecord) -> ConfigError:
        if isinstance(self.cause, ConfigError):
            return self.cause
        message = self.cause.message if isinstance(self.cause, WeshError) else str(self.cause)
        return ConfigError(f"{item.kind}: {message}", where=item.where)


def _apply_chunk(
    engine: Engine, chunk: Sequence[InventoryRecord]
) -> tuple[_Outcome, list[tuple[int, datetime]]]:
    outcome = _Outcome()
    try:
        with transaction(engine) as conn:
            applier = _Applier(conn)
            for item in chunk:
                applier.apply(item, outcome)
    except TransientError:
        raise
    except (_Unknown, ConfigError, WeshError) as exc:
        raise _RecordProblem(exc) from exc
    return outcome, applier.rerolls


def _error_order(error: ConfigError) -> tuple[str, int]:
    where = error.where or ""
    source, _, line = where.rpartition(":")
    return (source, int(line)) if line.isdigit() else (where, 0)


def import_inventory(engine: Engine, path: Path | str) -> ImportResult:
    """Load an inventory file and apply it (see the module docstring).

    Returns:
        Counts per record kind and every problem, per line (``errors`` sorted by line).

    Raises:
        ConfigError: the file as a whole is unusable (unreadable, not UTF-8, TOML syntax,
            CSV header); nothing is applied.
        ConnectionFailed, TransientError: the database failed.
    """
    records, errors = load_inventory(path)
    result = apply_inventory(engine, records)
    result.errors = sorted([*errors, *result.errors], key=_error_order)
    applied = result.applied
    _LOG.info(
        "Inventory %s: %d record(s) applied (%d created, %d updated), %d error(s)",
        Path(path).name,
        applied,
        sum(result.created.values()),
        sum(result.updated.values()),
        len(result.errors),
    )
    return result
