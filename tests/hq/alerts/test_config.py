"""The alert configuration: defaults, TOML, scope overrides, errors with file and line."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import ConfigError
from wesh.gateway.config import ConfigValidationError
from wesh.hq.alerts.config import (
    ALL_RULES,
    DEFAULT_RULES,
    AlertsConfig,
    config_from_text,
    default_config,
    load_config,
    parse_duration,
)
from wesh.hq.alerts.model import RULES, Place

EXAMPLE = Path(__file__).parents[3] / "contrib" / "alerts.example.toml"

PLACE = Place(
    agency_id=1,
    agency_code="AG",
    agency_name="Agence",
    residence_id=2,
    residence_code="R01",
    residence_name="Les Tilleuls",
    building_id=3,
    building_code="B001",
    building_name="Bâtiment 1",
    dwelling_id=4,
    dwelling_code="B001-L12",
    dwelling_label="Logement 12",
)
ELSEWHERE = replace(
    PLACE,
    residence_code="R02",
    building_code="B009",
    dwelling_code="B009-L01",
)


def test_defaults_cover_every_rule() -> None:
    config = default_config()
    assert set(config.rules) == set(ALL_RULES) == set(DEFAULT_RULES)
    assert set(ALL_RULES) == {name for names in RULES.values() for name in names}
    frost = config.policy("frost", PLACE)
    assert frost.enabled and frost.severity == "critical"
    assert frost.resolve_after == timedelta(hours=1)
    assert config.param("frost", "below_c", PLACE) == 12
    assert config.param("leak_night_flow", "above_l_h", PLACE) == 20
    assert load_config(None).model_dump() == config.model_dump()
    assert config.lang == "fr" and config.evaluate_every == timedelta(minutes=5)


def test_the_example_file_loads_and_restates_every_default() -> None:
    config = load_config(EXAMPLE)
    assert config.rules == default_config().rules
    text = EXAMPLE.read_text(encoding="utf-8")
    for rule, defaults in DEFAULT_RULES.items():
        assert f"[rules.{rule}]" in text
        section = text.split(f"\n[rules.{rule}]", 1)[1].split("\n[", 1)[0]
        for name in defaults.params:
            assert re.search(rf"\n{name} = ", section), (rule, name)


def test_a_file_changes_only_what_it_names() -> None:
    config = config_from_text('[rules.frost]\nbelow_c = 10\nreminder_every = "off"\n')
    frost = config.rules["frost"]
    assert frost.params["below_c"] == 10 and frost.params["clear_c"] == 14
    assert frost.reminder_every is None
    assert frost.escalate_after == timedelta(hours=12)
    assert config.rules["overheating"] == default_config().rules["overheating"]


OVERRIDES = """
[rules.frost]
below_c = 11

[[overrides]]
scope = "agency:AG"
rule = "frost"
below_c = 10
hold_for = "15m"

[[overrides]]
scope = "residence:R01"
rule = "*"
severity = "warning"

[[overrides]]
scope = "residence:R01"
rule = "frost"
severity = "info"
below_c = 9

[[overrides]]
scope = "building:B001"
rule = "frost"
below_c = 8

[[overrides]]
scope = "dwelling:B001-L12"
rule = "frost"
below_c = 7
reminder_every = "off"

[[overrides]]
scope = "dwelling:B001-L12"
rule = "frost"
below_c = 6
"""


def test_overrides_most_specific_scope_wins() -> None:
    config = config_from_text(OVERRIDES)
    assert config.param("frost", "below_c", PLACE) == 6  # the later dwelling override
    policy = config.policy("frost", PLACE)
    assert policy.severity == "info"  # the rule's own override beats "*" at one level
    assert policy.hold_for == timedelta(minutes=15)  # inherited from the agency
    assert policy.reminder_every is None  # set to "off" by the dwelling
    assert config.param("frost", "clear_c", PLACE) == 14
    assert config.policy("overheating", PLACE).severity == "warning"  # "*" override
    # another residence of the same agency
    assert config.param("frost", "below_c", ELSEWHERE) == 10
    assert config.policy("frost", ELSEWHERE).severity == "critical"
    # another agency: the [rules.frost] value
    other = replace(ELSEWHERE, agency_code="AG2")
    assert config.param("frost", "below_c", other) == 11
    # a gateway's place (no dwelling) stops at the building
    assert config.param("frost", "below_c", replace(PLACE, dwelling_code=None)) == 8
    assert config.param_values("frost", "below_c") == [11, 10, 9, 8, 7, 6]


def test_may_run_sees_rules_enabled_by_an_override() -> None:
    config = config_from_text(
        '[rules.frost]\nenabled = false\n[[overrides]]\nscope = "building:B001"\n'
        'rule = "frost"\nenabled = true\n'
    )
    assert config.may_run("frost")
    assert not config.policy("frost", ELSEWHERE).enabled
    assert config.policy("frost", PLACE).enabled
    assert not config_from_text("[rules.frost]\nenabled = false\n").may_run("frost")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[rules.frost]\nblow_c = 3\n", 2, "did you mean 'below_c'"),
        ("[rules.frozt]\nbelow_c = 3\n", 1, "unknown rule 'frozt' (did you mean 'frost'?)"),
        ('\n\n[rules.frost]\nhold_for = "3 weeks"\n', 4, "is not a duration"),
        ('[rules.frost]\nbelow_c = "cold"\n', 2, "below_c must be a number"),
        ('[rules.frost]\nseverity = "dire"\n', 2, "severity"),
        ('[[overrides]]\nscope = "street:X"\nrule = "frost"\n', 2, "scope must be"),
        ('[[overrides]]\nscope = "building:B1"\nrule = "frost"\nabove_c = 3\n', 4, "above_c"),
        ('[[overrides]]\nscope = "building:B1"\nrule = "*"\nbelow_c = 3\n', 4, "below_c"),
        ('[[overrides]]\nscope = "building:B1"\nrule = "forst"\n', 3, "unknown rule 'forst'"),
        ('[[contacts]]\nemails = ["not an address"]\n', 2, "is not an e-mail address"),
        ('lang = "de"\n', 1, "lang"),
        ("[smtp]\nport = 0\n", 2, "port"),
        ("[probes]\nhot_water = '(unclosed'\n", 2, "not a regular expression"),
        ("[rules.frost\nbelow_c = 3\n", 1, "TOML syntax error"),
        ("colour = 'blue'\n", 1, "unknown key 'colour'"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        config_from_text(text, source="alerts.toml")
    assert isinstance(caught.value, ConfigError)
    assert caught.value.where == f"alerts.toml:{line}", caught.value.problems
    assert message in str(caught.value)


def test_every_problem_is_listed_in_file_order() -> None:
    text = (
        '[rules.frost]\nblow_c = 3\n\n[[overrides]]\nscope = "building:B1"\nrule = "frost"\n'
        'hold_for = "soon"\n'
    )
    with pytest.raises(ConfigValidationError) as caught:
        config_from_text(text, source="a.toml")
    assert [problem.where for problem in caught.value.problems] == ["a.toml:2", "a.toml:7"]


def test_load_config_reports_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"lang = '\xff'\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(bad)
    good = tmp_path / "alerts.toml"
    good.write_text('base_url = "https://wesh.example.org/"\n', encoding="utf-8")
    assert load_config(good).base_url == "https://wesh.example.org"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("6h", 21600), ("2d", 172800), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_optional_durations_may_be_off() -> None:
    for off in ("off", "never", "OFF", 0, "0s"):
        assert parse_duration(off, optional=True) is None
    assert parse_duration("0s") == timedelta(0)
    for bad in ("", "h", "5x", "-1h", "1h 5", True, [1]):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_absurdly_long_durations_are_refused() -> None:
    assert parse_duration("3650d") == timedelta(days=3650)
    for bad in ("3651d", 86_400.0 * 1e9, "99999999999999d"):
        with pytest.raises(ValueError, match="too long"):
            parse_duration(bad)


@given(
    days=st.integers(0, 30),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
)
def test_duration_text_round_trips(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{days}d{hours}h{minutes}m{seconds}s"
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    assert parse_duration(text) == expected


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers()))
def test_duration_parsing_raises_only_value_errors(text: str | float) -> None:
    try:
        found = parse_duration(text)
    except ValueError as exc:
        assert "duration" in str(exc) or "too long" in str(exc)
    else:
        assert found is not None and found >= timedelta(0)


def test_config_is_immutable() -> None:
    config = default_config()
    with pytest.raises(ValueError, match="frozen"):
        config.lang = "en"  # type: ignore[misc]
    assert isinstance(config, AlertsConfig)


@given(st.text(max_size=200))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    try:
        config = config_from_text(text, source="fuzz.toml")
    except ConfigValidationError as exc:
        assert exc.where is not None and exc.where.startswith("fuzz.toml")
        assert exc.problems
    else:
        assert set(config.rules) == set(ALL_RULES)


_SCALARS = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=5), st.booleans()
)


@given(
    rule=st.sampled_from([*ALL_RULES, "nope"]),
    values=st.dictionaries(
        st.sampled_from(["below_c", "hold_for", "severity", "enabled", "x", "nights"]),
        _SCALARS,
        max_size=3,
    ),
)
def test_any_rule_table_is_a_config_or_a_located_error(rule: str, values: dict) -> None:
    lines = [f"[rules.{rule}]"]
    for key, value in values.items():
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, str):
            shown = '"' + value.replace("\\\\", "").replace('"', "") + '"'
        else:
            shown = repr(value) if value == value and abs(value) != float("inf") else "0"
        lines.append(f"{key} = {shown}")
    try:
        config_from_text("\n".join(lines) + "\n", source="f.toml")
    except ConfigValidationError as exc:
        assert re.fullmatch(r"f\.toml:\d+", exc.where or ""), exc.problems


def test_the_configuration_takes_the_options_units() -> None:
    assert parse_duration("1w") == timedelta(weeks=1)
    assert parse_duration("2j") == timedelta(days=2)
    assert parse_duration("1,5h") == timedelta(minutes=90)
    assert parse_duration("10MIN") == timedelta(minutes=10)
