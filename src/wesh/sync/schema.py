r"""A site's channel schema: which channels DATA packets carry, in which order, how quantised.

Pure logic, no I/O. Channel names never travel in DATA: a DATA block names its schema by
a 4-byte hash and its channels by their position in the schema. Headquarters learns a
site's schema from a SCHEMA packet (the agent sends one when its schema changes, and
whenever HQ asks with ``RequestSchema``), or out of band: the canonical text below,
written to a file by the site (``Schema.canonical()``) and loaded at HQ
(``Schema.from_canonical``).

Canonical text (UTF-8; channels sorted by box then path; one line each, fields
separated by one TAB; ``unit`` empty when there is none; ``resolution`` as a plain
decimal without exponent or trailing zeros)::

    wesh-schema v1\n
    <box>\t<path>\t<index|gauge>\t<unit>\t<resolution>\n      (one per channel)

    hash = SHA-256(canonical text)[0:4]

Four bytes of hash: a site has a handful of schema versions in its life; two of them
colliding has probability about 2^-32 per pair, and the hash is only used inside
authenticated packets (an attacker cannot choose it). ``resolution`` is the quantum a
value is rounded to before it travels (1 Wh, 1 L, 0.1 °C …): the sensor's own resolution,
so quantising loses nothing the sensor knew.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Final, Literal

from wesh.errors import UsageError
from wesh.sync._wire import PacketError, Reason
from wesh.sync.packet import SchemaMessage

if TYPE_CHECKING:
    from wesh.gateway.config import BoxConfig, ChannelConfig, GatewayConfig

__all__ = [
    "DEFAULT_RESOLUTIONS",
    "Schema",
    "SchemaChannel",
    "channel_key",
    "default_resolution",
    "schema_from_config",
    "schema_hash",
]

ChannelKindName = Literal["index", "gauge"]

_MAGIC: Final = b"wesh-schema v1\n"
MAX_CHANNELS: Final = 65_535
_MAX_NAME = 64

#: Default resolution of a channel, by unit (after normalisation), when the path family
#: gives none (:func:`default_resolution`). Overridden per channel in schema_from_config.
DEFAULT_RESOLUTIONS: Final[Mapping[str, float]] = {
    "Wh": 1,
    "L": 1,
    "°C": 0.1,
    "%": 0.1,
    "A": 0.01,
    "V": 1,
    "VA": 1,
    "W": 1,
    "EUR": 0.01,
    "GB": 0.01,
}
_NO_UNIT_RESOLUTION: Final = 0.001


def schema_hash(canonical: bytes) -> bytes:
    """Return the 4-byte hash of a canonical schema text."""
    return hashlib.sha256(canonical).digest()[:4]


def channel_key(box: str, path: str) -> str:
    """Return the ``box/path`` name of a channel (as in weshd's ``Sample.channel``)."""
    return f"{box}/{path}"


def _canonical_resolution(resolution: float) -> str:
    try:
        text = format(Decimal(repr(float(resolution))).normalize(), "f")
    except (InvalidOperation, ValueError, OverflowError):
        raise UsageError(f"bad resolution {resolution!r}", where="resolution") from None
    return text


@dataclass(frozen=True, slots=True)
class SchemaChannel:
    """One channel of a schema.

    ``resolution`` (> 0, finite): values are rounded to a multiple of it before they
    travel. ``kind``: ``index`` (a counter; travels as deltas) or ``gauge``.
    """

    box: str
    path: str
    kind: ChannelKindName
    unit: str | None
    resolution: float

    def __post_init__(self) -> None:
        for name, text in (("box", self.box), ("path", self.path), ("unit", self.unit or "x")):
            if not text or len(text) > _MAX_NAME or any(c in text for c in "\t\n\r"):
                raise UsageError(f"bad channel {name} {text!r}", where=f"SchemaChannel.{name}")
        if self.kind not in ("index", "gauge"):
            raise UsageError(f"kind must be index or gauge, not {self.kind!r}", where="kind")
        res = self.resolution
        if isinstance(res, bool) or not (isinstance(res, int | float) and math.isfinite(res)):
            raise UsageError("resolution must be a finite number", where="resolution")
        if not 1e-9 <= res <= 1e9:
            raise UsageError("resolution must be within 1e-9..1e9", where="resolution")

    @property
    def key(self) -> str:
        """The channel's ``box/path`` name."""
        return channel_key(self.box, self.path)

    @property
    def decimals(self) -> int:
        """Decimal places of the resolution (0 for 1, 10, 1000; 1 for 0.1 or 0.5)."""
        exponent = Decimal(_canonical_resolution(self.resolution)).as_tuple().exponent
        assert isinstance(exponent, int)  # noqa: S101 - finite by construction
        return max(0, -exponent)

    def line(self) -> str:
        """Return the channel's canonical line (without the newline)."""
        return "\t".join(
            (
                self.box,
                self.path,
                self.kind,
                self.unit or "",
                _canonical_resolution(self.resolution),
            )
        )


class Schema:
    """An ordered, hashed list of channels (sorted by box, then path; no duplicates)."""

    __slots__ = ("_by_key", "_canonical", "_hash", "channels")

    def __init__(self, channels: Iterable[SchemaChannel]) -> None:
        ordered = sorted(channels, key=lambda c: (c.box, c.path))
        if len(ordered) > MAX_CHANNELS:
            raise UsageError(f"a schema has at most {MAX_CHANNELS} channels", where="schema")
        self.channels: tuple[SchemaChannel, ...] = tuple(ordered)
        self._by_key: dict[tuple[str, str], int] = {}
        for number, channel in enumerate(self.channels):
            if (channel.box, channel.path) in self._by_key:
                raise UsageError(f"channel {channel.key} appears twice", where="schema")
            self._by_key[channel.box, channel.path] = number
        lines = "".join(f"{c.line()}\n" for c in self.channels)
        self._canonical = _MAGIC + lines.encode("utf-8")
        self._hash = schema_hash(self._canonical)

    @property
    def hash(self) -> bytes:
        """The schema's 4-byte hash."""
        return self._hash

    def canonical(self) -> bytes:
        """Return the canonical text (the SCHEMA packet's content, or a provisioning file)."""
        return self._canonical

    def to_message(self) -> SchemaMessage:
        """Return the SCHEMA message announcing this schema."""
        return SchemaMessage(self._hash, self._canonical)

    @classmethod
    def from_canonical(cls, data: bytes, *, expected_hash: bytes | None = None) -> Schema:
        """Parse a canonical text; ``PacketError(bad_schema)`` if malformed or not canonical."""
        if not data.startswith(_MAGIC):
            raise PacketError(Reason.BAD_SCHEMA, "not a 'wesh-schema v1' text")
        if expected_hash is not None and schema_hash(data) != expected_hash:
            raise PacketError(Reason.BAD_SCHEMA, "schema text does not match its hash")
        try:
            text = data[len(_MAGIC) :].decode("utf-8")
        except UnicodeDecodeError:
            raise PacketError(Reason.BAD_SCHEMA, "schema text is not UTF-8") from None
        if text and not text.endswith("\n"):
            raise PacketError(Reason.BAD_SCHEMA, "schema text does not end with a newline")
        channels: list[SchemaChannel] = []
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split("\t")
            if len(fields) != 5 or fields[2] not in ("index", "gauge"):
                raise PacketError(Reason.BAD_SCHEMA, "malformed line", where=f"line {number}")
            box, path, kind, unit, res = fields
            try:
                resolution = float(Decimal(res))
                channel = SchemaChannel(
                    box, path, "index" if kind == "index" else "gauge", unit or None, resolution
                )
            except (InvalidOperation, ValueError, OverflowError, UsageError):
                raise PacketError(
                    Reason.BAD_SCHEMA, "bad channel", where=f"line {number}"
                ) from None
            channels.append(channel)
        try:
            schema = cls(channels)
        except UsageError as exc:
            raise PacketError(Reason.BAD_SCHEMA, exc.message) from None
        if schema.canonical() != data:
            raise PacketError(Reason.BAD_SCHEMA, "schema text is not in canonical form")
        return schema

    @classmethod
    def from_message(cls, message: SchemaMessage) -> Schema:
        """Parse a SCHEMA message (its text must match its hash)."""
        return cls.from_canonical(message.canonical, expected_hash=message.schema_hash)

    def index_of(self, box: str, path: str) -> int | None:
        """Return the position of a channel, or ``None``."""
        return self._by_key.get((box, path))

    def __len__(self) -> int:
        return len(self.channels)

    def __getitem__(self, number: int) -> SchemaChannel:
        return self.channels[number]

    def __iter__(self) -> Iterator[SchemaChannel]:
        return iter(self.channels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)

    def __repr__(self) -> str:
        return f"Schema({len(self.channels)} channels, hash={self._hash.hex()})"


def default_resolution(path: str, unit: str | None) -> float:
    """Return the default resolution of a channel.

    TIC apparent power (``tic.<n>.power_va``) is 10 VA (the historique PAPP is given in
    steps of 10 VA); otherwise :data:`DEFAULT_RESOLUTIONS` by unit, and 0.001 for a
    channel without a unit.
    """
    if path.startswith("tic.") and path.endswith(".power_va"):
        return 10
    if unit is None:
        return _NO_UNIT_RESOLUTION
    return DEFAULT_RESOLUTIONS.get(unit, _NO_UNIT_RESOLUTION)


_UNIT_ALIASES: Final = {"l": "L", "m3": "L", "m³": "L", "wh": "Wh", "kwh": "Wh"}


def _channel_of(
    box: BoxConfig, channel: ChannelConfig, resolutions: Mapping[str, float]
) -> SchemaChannel | None:
    from wesh.gateway.channels import describe_path  # noqa: PLC0415 - gateway is optional here

    family = describe_path(channel.path)
    kind = family.kind if family is not None else "gauge"
    if channel.index is not None:
        kind = "index" if channel.index else "gauge"
    if kind not in ("index", "gauge"):
        return None
    unit = channel.unit if channel.unit is not None else (family.unit if family else None)
    if unit is not None:
        unit = _UNIT_ALIASES.get(unit.lower(), unit)
    if channel.path.startswith("impulsion.") and unit is None:
        number = int(channel.path.split(".")[1])
        pulse_unit = box.pulse_units.get(number)
        unit = _UNIT_ALIASES[pulse_unit.lower()] if pulse_unit is not None else None
    key = channel_key(box.id, channel.path)
    resolution = resolutions.get(key)
    if resolution is None:
        resolution = default_resolution(channel.path, unit)
        multiplier = channel.multiplier
        if kind == "index" and multiplier >= 1 and float(multiplier).is_integer():
            resolution = max(resolution, multiplier)  # an index moves in whole pulses
    return SchemaChannel(
        box.id, channel.path, "index" if kind == "index" else "gauge", unit, resolution
    )


def schema_from_config(
    config: GatewayConfig,
    *,
    extra: Iterable[SchemaChannel] = (),
    resolutions: Mapping[str, float] | None = None,
) -> Schema:
    """Build a site's schema from weshd's configuration.

    Every configured numeric channel (index or gauge; states and texts are left out) of
    every enabled box. ``resolutions`` overrides the default resolution of a channel by
    its ``box/path`` name; ``extra`` adds channels that are not configured (e.g. seen in
    the store of a box polled without ``only_configured``).
    """
    overrides = resolutions or {}
    channels: dict[tuple[str, str], SchemaChannel] = {}
    for box in config.boxes:
        if not box.enabled:
            continue
        for configured in box.channels:
            channel = _channel_of(box, configured, overrides)
            if channel is not None:
                channels[channel.box, channel.path] = channel
    for channel in extra:
        channels.setdefault((channel.box, channel.path), channel)
    return Schema(channels.values())
