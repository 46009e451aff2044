"""weshd's configuration: one TOML file, validated by pydantic models.

::

    weshd.toml ──tomllib──▶ dict ──pydantic (extra="forbid")──▶ GatewayConfig
        │                                      │
        └── key_lines(text): key path → line ◀─┘ error locations → "weshd.toml:14"

Every model forbids unknown keys. A wrong value raises :class:`ConfigValidationError`
(a :class:`~wesh.errors.ConfigError`) whose ``where`` names the file and the line of the
offending key (or its key path when no line can be found, e.g. a missing key), and whose
message says the problem in plain words; ``problems`` lists every problem found.
Passwords and tokens are :class:`pydantic.SecretStr`: never in logs, reprs or errors.

Relative paths: ``state_dir`` is relative to the directory of the configuration file;
``store.path`` and ``api.socket`` are relative to ``state_dir``. :func:`load_config`
returns them absolute. The key-by-key reference is ``docs/weshd-config.md``.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import math
import re
import tomllib
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from wesh.errors import ConfigError, DecodeError
from wesh.gateway.channels import DEFAULT_MAX_CLOCK_SKEW_S, ChannelKind, check_path
from wesh.wes.m2m import normalise_mac

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApiConfig",
    "BoxConfig",
    "ChannelConfig",
    "ConfigProblem",
    "ConfigValidationError",
    "GatewayConfig",
    "KeyPath",
    "LocatedError",
    "MqttConfig",
    "PollConfig",
    "SiteConfig",
    "StoreConfig",
    "apply_overrides",
    "config_from_text",
    "dotted_key",
    "error_paths",
    "key_lines",
    "load_config",
    "load_toml",
    "locate_key",
    "read_config_text",
]

_LOG = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/wesh/weshd.toml")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$"
)
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the final NUL
_UNITS_WITH_BASE = {"l": "L", "m3": "L", "m³": "L", "wh": "Wh", "kwh": "Wh"}


def _port(default: int) -> Any:  # noqa: ANN401 - pydantic's Field() is typed Any
    return Field(default=default, ge=1, le=65535)


class LocatedError(ValueError):
    """A validation error that knows the key path (relative to the model) it is about.

    Raised inside a validator, its ``loc`` is appended to pydantic's (:func:`error_paths`),
    so that the problem names the key's line rather than its table's.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _check_host(host: str) -> str:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if not _HOST.match(host):
            raise ValueError(f"{host!r} is not a host name or IP address") from None
    return host


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number")
    return value


class SiteConfig(_Model):
    """The site (building or estate) this gateway serves."""

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "Europe/Paris"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Paris')") from None
        return value


class ChannelConfig(_Model):
    """What one reading path of a box means.

    ``multiplier`` scales the raw value, ``unit`` is the unit of the scaled value (``m3``
    and ``kWh`` are then converted to ``L`` and ``Wh``); ``index`` forces the kind
    (``true``: an index, ``false``: a gauge); ``max_step`` is the largest plausible step
    of an index between two polls, in the normalised unit.
    """

    path: str = Field(min_length=1, max_length=64)
    meaning: ChannelKind
    label: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, min_length=1, max_length=16)
    multiplier: float = 1.0
    index: bool | None = None
    max_step: float | None = Field(default=None, gt=0)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        problem = check_path(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("multiplier")
    @classmethod
    def _valid_multiplier(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise ValueError("multiplier must be a positive number (e.g. 10 for 10 L a pulse)")
        return value

    @field_validator("max_step")
    @classmethod
    def _finite_step(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "max_step")


_WES_KEYS = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "expected_mac",
        "m2m_port",
        "ftp_port",
        "firmware",
        "pulse_units",
    }
)
_TIC_KEYS = frozenset({"device", "mode", "baudrate", "framing", "stale_after_s"})


class BoxConfig(_Model):
    """One box weshd polls: a WES server or a TIC meter on a serial port.

    ``driver = "wes"`` (default) or ``driver = "tic"``.
    Keys of the other driver are refused. ``password`` is a secret.
    """

    id: str = Field(pattern=_ID)
    driver: Literal["wes", "tic"] = "wes"
    serves: str = Field(pattern=_ID)
    label: str | None = Field(default=None, max_length=100)
    poll_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    enabled: bool = True
    only_configured: bool = False
    max_clock_skew_s: float = Field(default=DEFAULT_MAX_CLOCK_SKEW_S, gt=0)
    channels: list[ChannelConfig] = Field(default_factory=list)
    # wes
    host: str | None = None
    port: int = _port(80)
    user: str = "admin"
    password: SecretStr = SecretStr("wes")
    expected_mac: str | None = None
    m2m_port: int = _port(1500)
    ftp_port: int = _port(21)
    firmware: Literal["V0.83H", "V0.84A10"] | None = None
    pulse_units: dict[int, Literal["l", "m3", "Wh", "kWh"]] = Field(default_factory=dict)
    # tic
    device: str | None = None
    mode: Literal["auto", "historique", "standard"] = "auto"
    baudrate: int | None = Field(default=None, gt=0, le=115_200)
    framing: Literal["7E1", "8N1"] = "7E1"
    stale_after_s: float = Field(default=30.0, gt=0)

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str | None) -> str | None:
        return None if value is None else _check_host(value)

    @field_validator("user")
    @classmethod
    def _valid_user(cls, value: str) -> str:
        if not value or ":" in value or any(c in value for c in "\r\n"):
            raise ValueError("user must be non-empty, without ':' or line breaks")
        return value

    @field_validator("password")
    @classmethod
    def _valid_password(cls, value: SecretStr) -> SecretStr:
        if any(c in value.get_secret_value() for c in "\r\n"):
            raise ValueError("password may not contain line breaks")
        return value

    @field_validator("expected_mac")
    @classmethod
    def _normalise_mac(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalise_mac(value)
        except DecodeError:
            raise ValueError(
                f"{value!r} is not a MAC address (12 hex digits, e.g. '02:B1:1C:79:68:06')"
            ) from None

    @field_validator("pulse_units")
    @classmethod
    def _valid_counters(cls, value: dict[int, str]) -> dict[int, str]:
        for number in value:
            if not 1 <= number <= 999:
                raise ValueError(f"pulse counter number must be 1..999, not {number}")
        return value

    @field_validator("device")
    @classmethod
    def _valid_device(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c in value for c in "\r\n\0")):
            raise ValueError("device must be a serial port path or a pyserial URL")
        return value

    @model_validator(mode="after")
    def _driver_keys(self) -> Self:
        given = self.model_fields_set
        if self.driver == "wes":
            if self.host is None:
                raise LocatedError('a WES box needs a host (driver = "wes")', "host")
            foreign = sorted(given & _TIC_KEYS)
        else:
            if self.device is None:
                raise LocatedError(
                    'a TIC box needs a serial device, e.g. device = "/dev/ttyUSB0"', "device"
                )
            foreign = sorted(given & _WES_KEYS)
        if foreign:
            raise LocatedError(
                f"{foreign[0]!r} does not apply to a box with driver = {self.driver!r}",
                foreign[0],
            )
        seen: dict[str, int] = {}
        for number, channel in enumerate(self.channels):
            if channel.path in seen:
                raise LocatedError(
                    f"channel {channel.path!r} is configured twice in box {self.id!r} "
                    f"(first as channels[{seen[channel.path]}])",
                    "channels",
                    number,
                    "path",
                )
            seen[channel.path] = number
            problem = self._channel_problem(channel)
            if problem is not None:
                raise LocatedError(problem, "channels", number, problem_key(problem))
        return self

    def _channel_problem(self, channel: ChannelConfig) -> str | None:
        if self.driver == "tic" and not channel.path.startswith("tic."):
            return f"a TIC box only has tic.* paths, not {channel.path!r}"
        parts = channel.path.split(".")
        if parts[0] == "impulsion" and channel.unit is not None:
            number = int(parts[1])
            unit = self.pulse_units.get(number)
            if unit is not None and channel.unit != _UNITS_WITH_BASE[unit.lower()]:
                return (
                    f"unit: pulse counter {number} already has pulse_units = {unit!r} "
                    f"(values arrive in {_UNITS_WITH_BASE[unit.lower()]}); remove this unit "
                    "or set it to that"
                )
        return None


def problem_key(problem: str) -> str:
    """Return the key a channel problem is about (``unit`` or ``path``), for its location."""
    return "unit" if problem.startswith("unit:") else "path"


class StoreConfig(_Model):
    """The local SQLite store (``path`` default: ``<state_dir>/weshd.sqlite3``)."""

    path: Path | None = None
    # Raw 60 s polls of a 41-box site cost about 250 MB a day: keep a month locally.
    # Rows still queued for headquarters are never pruned, whatever their age.
    retention_days: int = Field(default=31, ge=1, le=36_500)
    events_retention_days: int = Field(default=400, ge=1, le=36_500)
    queue_max_rows: int = Field(default=5_000_000, ge=1_000)


class ApiConfig(_Model):
    """The local JSON API: a Unix socket, and optionally TCP with a bearer token."""

    socket: Path = Path("/run/wesh/weshd.sock")
    tcp: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None

    @field_validator("tcp")
    @classmethod
    def _valid_tcp(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"tcp must be 'host:port' with a port 1..65535, not {value!r}")
        _check_host(host)
        return value

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("token must have at least 16 characters")
        return value

    @model_validator(mode="after")
    def _token_for_tcp(self) -> Self:
        if self.token is not None and self.token_file is not None:
            raise LocatedError("give token or token_file, not both", "token_file")
        if self.tcp is not None and self.token is None and self.token_file is None:
            raise LocatedError(
                "an API on TCP needs a token (token = ... or token_file = ...)", "tcp"
            )
        return self

    def token_value(self) -> str | None:
        """Return the bearer token, read from ``token_file`` if needed (else ``ConfigError``)."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is None:
            return None
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the API token file: {exc.strerror}", where=str(self.token_file)
            ) from exc
        if len(token) < 16:
            raise ConfigError(
                "the API token must have at least 16 characters", where=str(self.token_file)
            )
        return token


class PollConfig(_Model):
    """Polling policy shared by all boxes."""

    max_concurrency: int = Field(default=32, ge=1, le=4096)
    jitter_s: float = Field(default=2.0, ge=0)
    backoff_initial_s: float = Field(default=10.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise LocatedError("backoff_max_s must be >= backoff_initial_s", "backoff_max_s")
        return self


class MqttConfig(_Model):
    """Publishing to an MQTT broker (and Home Assistant discovery)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = _port(1883)
    username: str | None = None
    password: SecretStr | None = None
    topic_prefix: str = Field(default="wesh", pattern=r"^[A-Za-z0-9_./-]{1,64}$")
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_./-]{1,64}$")

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return _check_host(value)


class GatewayConfig(_Model):
    """The whole weshd configuration."""

    site: SiteConfig
    state_dir: Path = Path("/var/lib/wesh")
    store: StoreConfig = Field(default_factory=StoreConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    poll: PollConfig = Field(default_factory=PollConfig)
    mqtt: MqttConfig | None = None
    boxes: list[BoxConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_boxes(self) -> Self:
        seen: dict[str, int] = {}
        for number, box in enumerate(self.boxes):
            if box.id in seen:
                raise LocatedError(
                    f"box id {box.id!r} is used twice (first by boxes[{seen[box.id]}])",
                    "boxes",
                    number,
                    "id",
                )
            seen[box.id] = number
        endpoints: dict[tuple[str, int], str] = {}
        for number, box in enumerate(self.boxes):
            if box.driver != "wes" or box.host is None:
                continue
            key = (box.host, box.port)
            if key in endpoints:
                raise LocatedError(
                    f"boxes {endpoints[key]!r} and {box.id!r} both use {box.host}:{box.port}",
                    "boxes",
                    number,
                    "port",
                )
            endpoints[key] = box.id
        devices: dict[str, str] = {}
        for number, box in enumerate(self.boxes):
            if box.device is None:
                continue
            if box.device in devices:
                raise LocatedError(
                    f"boxes {devices[box.device]!r} and {box.id!r} both read {box.device}",
                    "boxes",
                    number,
                    "device",
                )
            devices[box.device] = box.id
        return self

    @property
    def store_path(self) -> Path:
        """The SQLite file: ``store.path`` or ``<state_dir>/weshd.sqlite3``."""
        path = self.store.path or Path("weshd.sqlite3")
        return path if path.is_absolute() else self.state_dir / path

    def box(self, box_id: str) -> BoxConfig | None:
        """Return the box of that id, if configured."""
        return next((box for box in self.boxes if box.id == box_id), None)


# ----------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem of a configuration file.

    ``where`` is ``file:line`` (or ``file:key.path``), ``key`` the key path
    (``boxes[2].port``), ``message`` the problem in plain words.
    """

    where: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ConfigValidationError(ConfigError):
    """A configuration file with problems; ``problems`` lists them all, in file order."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{first.message}{more}", where=first.where)
        self.problems = tuple(problems)


# ----------------------------------------------------------------------------- TOML lines

KeyPath = tuple[str | int, ...]


class _Scanner:
    """Find the line of every key of a TOML document.

    Handles tables, arrays of tables, dotted keys, inline tables and arrays of inline
    tables. Tolerant: it never raises.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.counts: dict[KeyPath, int] = {}

    def run(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while self.pos < len(self.text):
            self._skip_blank()
            if self.pos >= len(self.text):
                break
            char = self.text[self.pos]
            if char == "\n":
                self._advance(1)
                continue
            if char == "[":
                table = self._header()
            else:
                self._key_value(table)
            self._skip_to_eol()
        return self.lines

    # -- primitives
    def _advance(self, n: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def _skip_blank(self, *, newlines: bool = False) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self._advance(1)
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def _skip_to_eol(self) -> None:
        end = self.text.find("\n", self.pos)
        self._advance((len(self.text) if end < 0 else end + 1) - self.pos)

    def _string(self) -> str:
        quote = self._peek()
        if self._peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            end = len(self.text) if end < 0 else end + 3
            while self.text[end : end + 1] == quote:
                end += 1
            value = self.text[self.pos + 3 : end - 3]
            self._advance(end - self.pos)
            return value
        start = self.pos + 1
        index = start
        while index < len(self.text) and self.text[index] not in (quote, "\n"):
            index += 2 if quote == '"' and self.text[index] == "\\" else 1
        value = self.text[start:index]
        self._advance(min(index + 1, len(self.text)) - self.pos)
        return value

    def _key(self) -> list[str]:
        parts: list[str] = []
        while self.pos < len(self.text):
            self._skip_blank()
            char = self._peek()
            if char in ('"', "'"):
                parts.append(self._string())
            else:
                match = re.compile(r"[A-Za-z0-9_-]+").match(self.text, self.pos)
                if match is None:
                    break
                parts.append(match.group())
                self._advance(match.end() - self.pos)
            self._skip_blank()
            if self._peek() != ".":
                break
            self._advance(1)
        return parts

    # -- structure
    def _header(self) -> KeyPath:
        array = self._peek(2) == "[["
        self._advance(2 if array else 1)
        names = self._key()
        self._advance(2 if array and self._peek(2) == "]]" else 1)
        path = self._resolve(names)
        if array:
            index = self.counts.get(path, 0)
            self.counts[path] = index + 1
            self.lines.setdefault(path, self.line)
            path = (*path, index)
        self.lines[path] = self.line
        return path

    def _resolve(self, names: list[str]) -> KeyPath:
        """Insert the current index of each array of tables met before a header's last name."""
        path: KeyPath = ()
        for number, name in enumerate(names):
            path = (*path, name)
            if number < len(names) - 1 and path in self.counts:
                path = (*path, self.counts[path] - 1)
        return path

    def _key_value(self, table: KeyPath) -> None:
        line = self.line
        names = self._key()
        if not names or self._peek() != "=":
            return
        path = (*table, *names)
        for depth in range(len(table) + 1, len(path) + 1):
            self.lines.setdefault(path[:depth], line)
        self.lines[path] = line
        self._advance(1)
        self._skip_blank()
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        char = self._peek()
        if char in ('"', "'"):
            self._string()
        elif char == "{":
            self._inline_table(path)
        elif char == "[":
            self._array(path)
        else:
            match = re.compile(r"[^\s,\]}#]*").match(self.text, self.pos)
            if match is not None:
                self._advance(match.end() - self.pos)

    def _inline_table(self, path: KeyPath) -> None:
        self._advance(1)
        while self.pos < len(self.text):
            self._skip_blank(newlines=True)
            char = self._peek()
            if char in ("}", ""):
                self._advance(1)
                return
            if char == ",":
                self._advance(1)
                continue
            line = self.line
            names = self._key()
            if not names or self._peek() != "=":
                self._advance(1)
                continue
            key = (*path, *names)
            self.lines[key] = line
            self._advance(1)
            self._skip_blank()
            self._value(key)

    def _array(self, path: KeyPath) -> None:
        self._advance(1)
        index = 0
        while self.pos < len(self.text):
            self._skip_blank(newlines=True)
            char = self._peek()
            if char in ("]", ""):
                self._advance(1)
                return
            if char == ",":
                self._advance(1)
                index += 1
                continue
            self.lines.setdefault((*path, index), self.line)
            before = self.pos
            self._value((*path, index))
            if self.pos == before:
                self._advance(1)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path of a TOML text (``("boxes", 2, "port")``) to its 1-based line."""
    return _Scanner(text).run()


def dotted_key(loc: KeyPath) -> str:
    """Return a key path as it reads in TOML: ``boxes[2].port`` (``(top level)`` if empty)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


_SECRET_KEYS = frozenset({"password", "token"})


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    """Return the model class that holds the last key of ``loc``."""
    model: type[BaseModel] | None = GatewayConfig
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:  # noqa: ANN401 - typing objects
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _plain(error: Mapping[str, Any], loc: KeyPath) -> str:
    """Say one pydantic error in plain words."""
    kind = error["type"]
    key = loc[-1] if loc else None
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {key!r}{hint}{listing}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind != "value_error" and "input" in error and key not in _SECRET_KEYS:
        value = error["input"]
        if not isinstance(value, dict | list):
            shown = repr(value)
            message += f", got {shown[:60]}"
    return message


def locate_key(loc: KeyPath, lines: Mapping[KeyPath, int]) -> tuple[int | None, bool]:
    """Return the line of ``loc`` or of its nearest enclosing key; ``True`` if exact."""
    for depth in range(len(loc), 0, -1):
        line = lines.get(loc[:depth])
        if line is not None:
            return line, depth == len(loc)
    return None, False


def error_paths(exc: ValidationError) -> Iterator[tuple[KeyPath, ErrorDetails]]:
    """Yield each of pydantic's errors with the key path it is about.

    Validator wrappers (``function-after[...]``, ``literal[...]``, ``[key]``) are dropped
    from the path, and a :class:`LocatedError`'s own path is appended.
    """
    for error in exc.errors(include_url=False):
        loc: KeyPath = tuple(
            part
            for part in error["loc"]
            if not isinstance(part, str)
            or not (part.startswith(("function-", "literal[")) or part == "[key]")
        )
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, LocatedError):
            loc = (*loc, *ctx_error.loc)
        yield loc, error


def _problems(exc: ValidationError, source: str, text: str) -> list[ConfigProblem]:
    lines = key_lines(text)
    found: list[tuple[int, ConfigProblem]] = []
    for loc, error in error_paths(exc):
        key = dotted_key(loc)
        line, exact = locate_key(loc, lines)
        if error["type"] == "missing" and loc:
            line, exact = locate_key(loc[:-1], lines)
        message = f"{key}: {_plain(error, loc)}"
        if line is None:
            where = f"{source}:{key}"
        else:
            where = f"{source}:{line}"
            if not exact and error["type"] != "missing":
                message += f" (in the section starting at line {line})"
        found.append((line or 0, ConfigProblem(where, key, message)))
    found.sort(key=lambda item: item[0])
    return [problem for _, problem in found]


# ----------------------------------------------------------------------------- loading


def _resolve_paths(config: GatewayConfig, base_dir: Path) -> GatewayConfig:
    state_dir = config.state_dir.expanduser()
    if not state_dir.is_absolute():
        state_dir = (base_dir / state_dir).resolve()
    socket = config.api.socket.expanduser()
    if not socket.is_absolute():
        socket = state_dir / socket
    token_file = config.api.token_file
    if token_file is not None and not token_file.expanduser().is_absolute():
        token_file = (base_dir / token_file).resolve()
    store_path = config.store.path
    if store_path is not None and not store_path.expanduser().is_absolute():
        store_path = state_dir / store_path
    return config.model_copy(
        update={
            "state_dir": state_dir,
            "api": config.api.model_copy(update={"socket": socket, "token_file": token_file}),
            "store": config.store.model_copy(update={"path": store_path}),
        }
    )


def _check_socket(config: GatewayConfig, source: str, text: str) -> None:
    if len(str(config.api.socket).encode()) > _MAX_SOCKET_PATH:
        line = key_lines(text).get(("api", "socket"))
        raise ConfigValidationError(
            [
                ConfigProblem(
                    f"{source}:{line}" if line else f"{source}:api.socket",
                    "api.socket",
                    f"api.socket: the socket path {str(config.api.socket)!r} is longer than "
                    f"{_MAX_SOCKET_PATH} bytes, the limit of a Unix socket path",
                )
            ]
        )


def load_toml(text: str, *, source: str) -> dict[str, Any]:
    """Parse a TOML text; a syntax error names ``source:line`` (and the column).

    Raises:
        ConfigValidationError: not TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        plain = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if match:
            where = f"{source}:{match.group(1)}"
            plain += f" (column {match.group(2)})"
        else:
            where = source
        problem = ConfigProblem(where, "", f"TOML syntax error: {plain}")
        raise ConfigValidationError([problem]) from exc


def read_config_text(path: Path) -> str:
    """Return a configuration file's UTF-8 text.

    Raises:
        ConfigValidationError: missing, unreadable or not UTF-8 (``where`` is the path).
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigValidationError(
            [ConfigProblem(str(path), "", f"configuration file not found: {path}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigValidationError(
            [ConfigProblem(str(path), "", f"configuration file is not UTF-8 text ({exc.reason})")]
        ) from exc
    except OSError as exc:
        raise ConfigValidationError(
            [ConfigProblem(str(path), "", f"cannot read configuration file: {exc.strerror}")]
        ) from exc


def config_from_text(
    text: str, *, source: str = "<config>", base_dir: Path | None = None
) -> GatewayConfig:
    """Parse and validate a TOML text; ``source`` names it in errors (``"weshd.toml"``).

    Relative paths resolve against ``base_dir`` (default: the current directory).
    Raises :class:`ConfigValidationError` (a ``ConfigError``).
    """
    data = load_toml(text, source=source)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigValidationError(_problems(exc, source, text)) from None
    config = _resolve_paths(config, base_dir or Path.cwd())
    _check_socket(config, source, text)
    return config


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate a configuration file (``ConfigError`` naming file and line)."""
    path = Path(path)
    text = read_config_text(path)
    config = config_from_text(text, source=str(path), base_dir=path.resolve().parent)
    _LOG.debug("configuration %s: site %s, %d box(es)", path, config.site.id, len(config.boxes))
    return config


def apply_overrides(
    config: GatewayConfig, *, state_dir: Path | None = None, socket: Path | None = None
) -> GatewayConfig:
    """Return ``config`` with CLI/environment overrides (relative paths: current directory).

    A new ``state_dir`` carries along the socket and store file that were under the old
    one (unless ``socket`` is given too).
    """
    if state_dir is None and socket is None:
        return config
    api, store = config.api, config.store
    new_state = config.state_dir
    if state_dir is not None:
        new_state = state_dir.expanduser().resolve()
        if api.socket.is_relative_to(config.state_dir):
            api = api.model_copy(
                update={"socket": new_state / api.socket.relative_to(config.state_dir)}
            )
        if store.path is not None and store.path.is_relative_to(config.state_dir):
            store = store.model_copy(
                update={"path": new_state / store.path.relative_to(config.state_dir)}
            )
    if socket is not None:
        api = api.model_copy(update={"socket": socket.expanduser().resolve()})
    updated = config.model_copy(update={"state_dir": new_state, "api": api, "store": store})
    _check_socket(updated, "override", "")
    return updated
