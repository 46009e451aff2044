"""The alert engine's configuration: rules, thresholds, contacts, mail (``alerts.toml``).

::

    alerts.toml ──tomllib──▶ dict ──pydantic (extra="forbid")──▶ AlertsConfig
         │                    defaults (DEFAULT_RULES) merged per rule ─┘
         └── key_lines(text) (wesh.gateway.config): errors name "alerts.toml:14"

No file is needed: :func:`default_config` gives every rule its default settings
(:data:`DEFAULT_RULES`, documented in ``docs/alerts-rules.md``). A file changes only what it
names::

    [rules.frost]                 # a rule's settings, for the whole estate
    below_c = 10                  # a rule-specific threshold ("param")
    hold_for = "30m"              # durations: "90s", "30m", "6h", "2d", "1h30m"
    reminder_every = "off"        # "off" (or 0): no reminders

    [[overrides]]                 # the same keys for one scope of the patrimony
    scope = "residence:R01"       # agency:CODE, residence:CODE, building:CODE, dwelling:CODE
    rule = "frost"                # a rule name, or "*" for every rule (base keys only)
    below_c = 8

A rule's settings for a subject are looked up from the most specific scope to the least:
dwelling > building > residence > agency > ``[rules.<name>]`` > defaults
(:meth:`AlertsConfig.policy`, :meth:`AlertsConfig.param`). Within one level, a rule's own
override beats a ``"*"`` override, and a later override beats an earlier one.

Errors raise :class:`~wesh.gateway.config.ConfigValidationError` (a
:class:`~wesh.errors.ConfigError`) whose ``where`` is ``file:line`` of the offending key,
with every problem listed in ``problems`` (the approach of weshd's configuration: the
file is read and parsed by the same helpers, :func:`~wesh.gateway.config.read_config_text`
and :func:`~wesh.gateway.config.load_toml`).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from wesh.gateway.config import (
    ConfigProblem,
    ConfigValidationError,
    KeyPath,
    LocatedError,
    dotted_key,
    error_paths,
    key_lines,
    load_toml,
    locate_key,
    read_config_text,
)
from wesh.hq.alerts.mail_text import Lang
from wesh.hq.alerts.model import RULES, Place, Severity
from wesh.hq.alerts.outbox import OutboxSettings
from wesh.hq.alerts.smtp import SmtpSettings

__all__ = [
    "ALL_RULES",
    "DEFAULT_RULES",
    "SCOPE_KINDS",
    "AlertsConfig",
    "ContactSettings",
    "OverrideSettings",
    "ProbeSettings",
    "RuleDefaults",
    "RulePolicy",
    "RuleSettings",
    "SmtpSettings",
    "config_from_text",
    "default_config",
    "load_config",
    "parse_duration",
]

_LOG = logging.getLogger(__name__)

#: Every rule name, in family order.
ALL_RULES: Final[tuple[str, ...]] = tuple(name for names in RULES.values() for name in names)
#: Scope kinds of overrides, least specific first.
SCOPE_KINDS: Final[tuple[str, ...]] = ("agency", "residence", "building", "dwelling")
_BASE_KEYS: Final = (
    "enabled",
    "severity",
    "hold_for",
    "resolve_after",
    "reminder_every",
    "escalate_after",
)
_SCOPE = re.compile(r"^(agency|residence|building|dwelling):(\S.{0,63})$")
_CONTACT_SCOPE = re.compile(r"^(?:\*|(agency|residence|building|dwelling):(\S.{0,63}))$")
_DURATION = re.compile(r"(\d+(?:[.,]\d+)?)\s*(min|w|d|j|h|m|s)")
_UNITS_S: Final = {
    "w": 604_800.0,
    "d": 86_400.0,
    "j": 86_400.0,  # jour
    "h": 3_600.0,
    "min": 60.0,
    "m": 60.0,
    "s": 1.0,
}
_OFF: Final = frozenset({"off", "never", "none", "no"})


# ----------------------------------------------------------------------------- durations


_MAX_DURATION_S: Final = 3650 * 86_400.0  # longer is a typo, and overflows timedelta


def parse_duration(value: object, *, optional: bool = False) -> timedelta | None:
    """Return a duration from ``"1h30m"``, ``"2d"``, ``"90s"``, seconds or a timedelta.

    Units: ``s``, ``m``/``min``, ``h``, ``d``/``j``, ``w``; case-insensitive; a decimal
    comma is accepted (``"1,5h"``). The one duration grammar of the alerts (configuration
    and ``wesh hq alerts`` options).

    With ``optional``, ``"off"``/``"never"``/``0`` mean ``None`` (no such timer).

    Raises:
        ValueError: not a duration (pydantic turns it into a located problem).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("a duration must be a string such as '30m', '6h' or '2d'")  # noqa: TRY004
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if optional and text in _OFF:
            return None
        pos = 0
        seconds = 0.0
        compact = text.replace(" ", "")
        for match in _DURATION.finditer(compact):
            if match.start() != pos:
                break
            seconds += float(match.group(1).replace(",", ".")) * _UNITS_S[match.group(2)]
            pos = match.end()
        if not compact or pos != len(compact):
            raise ValueError(
                f"{value!r} is not a duration: write e.g. '90s', '30m', '6h', '2d' or '1h30m'"
            )
    else:
        raise ValueError("a duration must be a string such as '30m', '6h' or '2d'")  # noqa: TRY004
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be zero or positive")
    if seconds > _MAX_DURATION_S:
        raise ValueError(f"{value!r} is too long: at most 10 years ('3650d')")
    if optional and seconds == 0:
        return None
    return timedelta(seconds=seconds)


def _duration(value: object) -> timedelta:
    found = parse_duration(value)
    assert found is not None  # noqa: S101 - parse_duration returns None only when optional
    return found


def _optional_duration(value: object) -> timedelta | None:
    return None if value is None else parse_duration(value, optional=True)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
OptionalDuration = Annotated[timedelta | None, BeforeValidator(_optional_duration)]


# ----------------------------------------------------------------------------- defaults


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """A rule's engine settings for one subject (after the scope overrides)."""

    enabled: bool
    severity: Severity
    hold_for: timedelta
    resolve_after: timedelta
    reminder_every: timedelta | None
    escalate_after: timedelta | None


@dataclass(frozen=True, slots=True)
class RuleDefaults:
    """A rule's embedded defaults: engine settings and rule-specific thresholds."""

    severity: Severity
    params: Mapping[str, float]
    hold_for: timedelta = timedelta(0)
    resolve_after: timedelta = timedelta(minutes=30)
    reminder_every: timedelta | None = None
    escalate_after: timedelta | None = None
    enabled: bool = True


_H = timedelta(hours=1)
_DAY = timedelta(days=1)
_NIGHT = {"night_start_h": 0.0, "night_end_h": 6.0, "min_hours": 4.0}

#: The embedded defaults of every rule (see ``docs/alerts-rules.md`` for their meaning).
DEFAULT_RULES: Final[Mapping[str, RuleDefaults]] = {
    # no data
    "channel_silent": RuleDefaults("warning", {"silent_h": 3}, reminder_every=3 * _DAY),
    "box_silent": RuleDefaults(
        "warning", {"silent_h": 2}, reminder_every=_DAY, escalate_after=2 * _DAY
    ),
    "gateway_silent": RuleDefaults(
        "critical", {"silent_h": 2}, reminder_every=_DAY, escalate_after=_DAY
    ),
    "link_silent": RuleDefaults(
        "critical", {"silent_h": 3}, reminder_every=_DAY, escalate_after=_DAY
    ),
    # leak
    "leak_continuous_flow": RuleDefaults(
        "critical",
        {"nights": 3, "zero_l_h": 1, "lookback_nights": 4, **_NIGHT},
        resolve_after=_H,
        reminder_every=_DAY,
        escalate_after=2 * _DAY,
    ),
    "leak_night_flow": RuleDefaults(
        "warning",
        {"above_l_h": 20, "clear_l_h": 10, **_NIGHT},
        resolve_after=_H,
        reminder_every=2 * _DAY,
    ),
    "leak_burst": RuleDefaults(
        "critical",
        {
            "above_l_h": 500,
            "factor": 10,
            "min_l_h": 100,
            "window_h": 3,
            "baseline_days": 7,
            "min_baseline_h": 24,
        },
        resolve_after=_H,
        escalate_after=12 * _H,
    ),
    # comfort
    "frost": RuleDefaults(
        "critical",
        {"below_c": 12, "clear_c": 14, "hours": 3},
        resolve_after=_H,
        reminder_every=12 * _H,
        escalate_after=12 * _H,
    ),
    "overheating": RuleDefaults(
        "warning", {"above_c": 28, "clear_c": 26, "hours": 6}, resolve_after=_H
    ),
    "humidity_high": RuleDefaults(
        "warning",
        {"above_pct": 70, "clear_pct": 65, "days": 3},
        resolve_after=_H,
        reminder_every=7 * _DAY,
    ),
    "hot_water_cold": RuleDefaults(
        "critical",
        {"below_c": 50, "clear_c": 55, "hours": 2},
        resolve_after=_H,
        reminder_every=_DAY,
        escalate_after=_DAY,
    ),
    # consumption (per day; a negative threshold turns a kind off)
    "consumption_high": RuleDefaults(
        "warning",
        {
            "electricity_kwh": 30,
            "cold_water_l": 1000,
            "hot_water_l": 500,
            "heat_kwh": 150,
            "gas_m3": -1,
            "clear_ratio": 0.9,
            "days": 1,
            "common_areas": 0,
        },
        resolve_after=_H,
    ),
    "consumption_above_average": RuleDefaults(
        "info",
        {"factor": 3, "clear_factor": 2.5, "min_dwellings": 5, "days": 1},
        resolve_after=_H,
    ),
    "vacant_consumption": RuleDefaults(
        "warning",
        {
            "electricity_kwh": 3,
            "cold_water_l": 50,
            "hot_water_l": 20,
            "heat_kwh": -1,
            "gas_m3": -1,
        },
        resolve_after=_H,
    ),
    # meter
    "index_backwards": RuleDefaults("warning", {"lookback_h": 24, "tolerance": 0}),
    "index_jump": RuleDefaults(
        "warning",
        {
            "electricity_kwh_h": 36,
            "cold_water_l_h": 100_000,
            "hot_water_l_h": 100_000,
            "heat_kwh_h": 100,
            "gas_m3_h": 200,
            "lookback_h": 24,
        },
    ),
    "tic_overload": RuleDefaults("warning", {"max_open_h": 24}, resolve_after=_H),
    "tic_status_alarm": RuleDefaults("warning", {"max_open_h": 72}, resolve_after=_H),
    # gateway health (from the last STATUS packet)
    "queue_backlog": RuleDefaults(
        "warning",
        {"above": 2000, "clear": 500, "max_age_h": 6},
        hold_for=_H,
        reminder_every=_DAY,
    ),
    "sms_budget_exhausted": RuleDefaults("warning", {"max_age_h": 6}),
    "boxes_down": RuleDefaults(
        "info", {"above": 0, "max_age_h": 6}, hold_for=timedelta(minutes=30)
    ),
}


# ----------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _check_params(rule: str, given: Mapping[str, Any], *loc: str | int) -> dict[str, float]:
    """Return the rule-specific keys of ``given`` as floats (unknown keys are errors)."""
    allowed = DEFAULT_RULES[rule].params if rule != "*" else {}
    params: dict[str, float] = {}
    for key, value in given.items():
        if key in _BASE_KEYS:
            continue
        if key not in allowed:
            choices = sorted((*_BASE_KEYS, *allowed))
            close = difflib.get_close_matches(str(key), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LocatedError(
                f"unknown key {key!r} for rule {rule!r}{hint}; allowed keys: {', '.join(choices)}",
                *loc,
                key,
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LocatedError(f"{key} must be a number, got {value!r}"[:200], *loc, key)
        if not math.isfinite(float(value)):
            raise LocatedError(f"{key} must be a finite number", *loc, key)
        params[key] = float(value)
    return params


class RuleSettings(_Model):
    """One rule's settings for the whole estate (defaults merged with ``[rules.<name>]``)."""

    enabled: bool = True
    severity: Severity = "warning"
    hold_for: Duration = timedelta(0)
    resolve_after: Duration = timedelta(0)
    reminder_every: OptionalDuration = None
    escalate_after: OptionalDuration = None
    params: dict[str, float] = Field(default_factory=dict)

    def policy(self) -> RulePolicy:
        """Return the engine settings as a :class:`RulePolicy`."""
        return RulePolicy(
            self.enabled,
            self.severity,
            self.hold_for,
            self.resolve_after,
            self.reminder_every,
            self.escalate_after,
        )


def _scope_key(scope: str) -> tuple[str, str]:
    match = _SCOPE.match(scope)
    if match is None:
        raise ValueError(
            f"scope must be agency:CODE, residence:CODE, building:CODE or dwelling:CODE, "
            f"not {scope!r}"
        )
    return match.group(1), match.group(2)


class OverrideSettings(_Model):
    """A rule's settings for one scope (``[[overrides]]``); unset keys are inherited."""

    scope: str
    rule: str
    enabled: bool | None = None
    severity: Severity | None = None
    hold_for: Duration | None = None
    resolve_after: Duration | None = None
    reminder_every: OptionalDuration = None
    escalate_after: OptionalDuration = None
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_params(cls, data: Any) -> Any:  # noqa: ANN401 - raw TOML
        if not isinstance(data, Mapping) or "params" in data:
            return data
        rule = data.get("rule")
        if not isinstance(rule, str):
            return data
        if rule != "*" and rule not in DEFAULT_RULES:
            close = difflib.get_close_matches(rule, ALL_RULES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LocatedError(f"unknown rule {rule!r}{hint}", "rule")
        rest = {key: value for key, value in data.items() if key not in ("scope", "rule")}
        params = _check_params(rule, rest)
        kept = {key: value for key, value in data.items() if key not in params}
        return {**kept, "params": params}

    @field_validator("scope")
    @classmethod
    def _valid_scope(cls, value: str) -> str:
        _scope_key(value)
        return value

    def scope_key(self) -> tuple[str, str]:
        """Return ``(kind, code)`` of the scope."""
        return _scope_key(self.scope)


class ContactSettings(_Model):
    """People to mail for a scope: ``"*"`` (everything), ``agency:CODE``, ``residence:CODE``..."""

    scope: str = "*"
    emails: list[str] = Field(min_length=1)
    name: str | None = None
    lang: Lang | None = None
    escalation: bool = False

    @field_validator("scope")
    @classmethod
    def _valid_scope(cls, value: str) -> str:
        if _CONTACT_SCOPE.match(value) is None:
            raise ValueError(
                f"scope must be '*', agency:CODE, residence:CODE, building:CODE or "
                f"dwelling:CODE, not {value!r}"
            )
        return value

    @field_validator("emails")
    @classmethod
    def _valid_emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", email) or len(email) > 254:
                raise ValueError(f"{email!r} is not an e-mail address")
        return value


class ProbeSettings(_Model):
    """How temperature probes are told apart (regular expressions on label and path).

    A temperature channel whose label or path matches ``hot_water`` is a hot-water probe
    (``hot_water_cold``; never ``frost``/``overheating``); one matching ``outdoor`` is
    outside (no comfort rule); one matching ``plant_room`` (boiler room) gets ``frost``
    but not ``overheating``.
    """

    hot_water: str = r"(?i)\b(ecs|dhw)\b|hot[ _-]?water|eau[ _-]chaude|bouclage"
    outdoor: str = r"(?i)ext[ée]rieur|outdoor|outside|\bext\b"
    plant_room: str = r"(?i)chaufferie|boiler|plant[ _-]?room|sous[ _-]station"

    @field_validator("hot_water", "outdoor", "plant_room")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


_PolicyKey = tuple[str, str, str, str, str | None]


class AlertsConfig(_Model):
    """The whole alert configuration (see the module docstring)."""

    lang: Lang = "fr"
    base_url: str = "http://localhost:8000"
    sender: str = "wesh@localhost"
    evaluate_every: Duration = timedelta(minutes=5)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    contacts: list[ContactSettings] = Field(default_factory=list)
    rules: dict[str, RuleSettings] = Field(default_factory=dict)
    overrides: list[OverrideSettings] = Field(default_factory=list)

    _index: dict[tuple[str, str, str], list[OverrideSettings]] = PrivateAttr(default_factory=dict)
    _cache: dict[tuple[str, _PolicyKey], tuple[RulePolicy, dict[str, float]]] = PrivateAttr(
        default_factory=dict
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _merge_rules(cls, value: Any) -> Any:  # noqa: ANN401 - raw TOML
        if not isinstance(value, Mapping):
            return value
        unknown = [name for name in value if name not in DEFAULT_RULES]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), ALL_RULES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LocatedError(f"unknown rule {unknown[0]!r}{hint}", unknown[0])
        merged: dict[str, Any] = {}
        for name, defaults in DEFAULT_RULES.items():
            given = value.get(name, {})
            if isinstance(given, RuleSettings):
                merged[name] = given
                continue
            if not isinstance(given, Mapping):
                raise LocatedError(f"[rules.{name}] must be a table", name)
            if "params" in given:
                raise LocatedError("write thresholds as keys of the rule's table", name, "params")
            params = _check_params(name, given, name)
            base = {
                "enabled": defaults.enabled,
                "severity": defaults.severity,
                "hold_for": defaults.hold_for,
                "resolve_after": defaults.resolve_after,
                "reminder_every": defaults.reminder_every,
                "escalate_after": defaults.escalate_after,
            }
            base.update({key: item for key, item in given.items() if key in _BASE_KEYS})
            merged[name] = {**base, "params": {**defaults.params, **params}}
        return merged

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    def model_post_init(self, context: Any, /) -> None:  # noqa: ANN401 - pydantic's signature
        """Index the overrides by (rule, scope kind, code)."""
        for override in self.overrides:
            kind, code = override.scope_key()
            self._index.setdefault((override.rule, kind, code), []).append(override)

    # ------------------------------------------------------------------- lookups

    def _resolved(self, rule: str, place: Place) -> tuple[RulePolicy, dict[str, float]]:
        if rule not in self.rules:
            raise KeyError(f"unknown rule {rule!r}")
        key: _PolicyKey = (
            place.agency_code,
            place.residence_code,
            place.building_code,
            place.dwelling_code or "",
            None,
        )
        found = self._cache.get((rule, key))
        if found is not None:
            return found
        settings = self.rules[rule]
        fields: dict[str, Any] = {name: getattr(settings, name) for name in _BASE_KEYS}
        params = dict(settings.params)
        codes = (place.agency_code, place.residence_code, place.building_code, place.dwelling_code)
        for kind, code in zip(SCOPE_KINDS, codes, strict=True):
            if code is None or not self._index:
                continue
            for name in ("*", rule):
                for override in self._index.get((name, kind, code), ()):
                    for field in override.model_fields_set & set(_BASE_KEYS):
                        fields[field] = getattr(override, field)
                    params.update(override.params)
        made = (RulePolicy(**fields), params)
        self._cache[rule, key] = made
        return made

    def policy(self, rule: str, place: Place) -> RulePolicy:
        """Return the rule's engine settings for a subject at ``place`` (scope overrides).

        Raises:
            KeyError: not a rule name.
        """
        return self._resolved(rule, place)[0]

    def params(self, rule: str, place: Place) -> Mapping[str, float]:
        """Return every rule-specific threshold of ``rule`` for a subject at ``place``."""
        return self._resolved(rule, place)[1]

    def param(self, rule: str, name: str, place: Place) -> float:
        """Return one rule-specific threshold for a subject at ``place`` (scope overrides).

        Raises:
            KeyError: not a rule name, or not a threshold of that rule.
        """
        return self._resolved(rule, place)[1][name]

    def param_values(self, rule: str, name: str) -> list[float]:
        """Return every value a threshold takes anywhere (default and overrides)."""
        values = [self.rules[rule].params[name]]
        values.extend(
            override.params[name]
            for override in self.overrides
            if override.rule == rule and name in override.params
        )
        return values

    def may_run(self, rule: str) -> bool:
        """Return whether ``rule`` is enabled somewhere (by default or by an override)."""
        if self.rules[rule].enabled:
            return True
        return any(
            override.enabled
            for override in self.overrides
            if override.rule in (rule, "*") and override.enabled is not None
        )


# ----------------------------------------------------------------------------- loading


def default_config() -> AlertsConfig:
    """Return the configuration with every embedded default (no file needed)."""
    return AlertsConfig()


_SECRET_KEYS = frozenset({"password"})


def _plain(error: Mapping[str, Any], loc: KeyPath) -> str:
    kind = error["type"]
    key = loc[-1] if loc else None
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "extra_forbidden":
        return f"unknown key {key!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind != "value_error" and "input" in error and key not in _SECRET_KEYS:
        value = error["input"]
        if not isinstance(value, dict | list):
            message += f", got {repr(value)[:60]}"
    return message


def _problems(exc: ValidationError, source: str, text: str) -> list[ConfigProblem]:
    lines = key_lines(text)
    found: list[tuple[int, ConfigProblem]] = []
    for loc, error in error_paths(exc):
        line, _ = locate_key(loc, lines)
        key = dotted_key(loc)
        where = f"{source}:{line}" if line is not None else f"{source}:{key}"
        found.append((line or 0, ConfigProblem(where, key, f"{key}: {_plain(error, loc)}")))
    found.sort(key=lambda item: item[0])
    return [problem for _, problem in found]


def config_from_text(text: str, *, source: str = "<alerts config>") -> AlertsConfig:
    """Parse and validate a TOML text; ``source`` names it in errors (``"alerts.toml"``).

    Raises:
        ConfigValidationError: a ``ConfigError`` naming ``source:line`` of the first problem.
    """
    data = load_toml(text, source=source)
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigValidationError(_problems(exc, source, text)) from None


def load_config(path: Path | str | None) -> AlertsConfig:
    """Read an alerts TOML file; ``None`` gives the embedded defaults.

    Raises:
        ConfigValidationError: unreadable file or a wrong key (``where`` = ``file:line``).
    """
    if path is None:
        return default_config()
    path = Path(path)
    text = read_config_text(path)
    config = config_from_text(text, source=str(path))
    _LOG.debug(
        "alerts configuration %s: %d contact(s), %d override(s)",
        path,
        len(config.contacts),
        len(config.overrides),
    )
    return config
