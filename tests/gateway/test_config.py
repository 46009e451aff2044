"""weshd configuration: fixtures (good/bad, globbed), the example file, errors, overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import ConfigError
from wesh.gateway.config import (
    ConfigValidationError,
    GatewayConfig,
    apply_overrides,
    config_from_text,
    key_lines,
    load_config,
)
from wesh.sim import make_identity

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gateway"
GOOD = sorted((FIXTURES / "good").glob("*.toml"))
BAD = sorted((FIXTURES / "bad").glob("*.toml"))
EXAMPLE = Path(__file__).parents[2] / "contrib" / "weshd.example.toml"


def _expected(path: Path) -> dict[str, str]:
    lines = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_fixture_folders_are_not_empty() -> None:
    assert len(GOOD) >= 5
    assert len(BAD) >= 25
    for bad in BAD:
        assert bad.with_suffix(".expected").is_file(), f"{bad.name} has no .expected"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_fixture_loads(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, GatewayConfig)
    assert config.site.id == "b001"
    assert config.state_dir.is_absolute()
    assert config.api.socket.is_absolute()


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_fixture_names_file_line_and_problem(path: Path) -> None:
    expected = _expected(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.where is not None
    assert error.where.startswith(str(path)), error.where
    assert error.where.endswith(expected["where"]), f"{error.where} vs {expected['where']}"
    assert expected["message"] in str(error), str(error)
    assert isinstance(error, ConfigValidationError)
    assert error.problems[0].where == error.where


# ------------------------------------------------------------------------------ the example


def test_example_validates() -> None:
    config = load_config(EXAMPLE)
    assert [box.id for box in config.boxes] == ["b001-pc", "b001-l01", "b001-l02"]
    assert config.state_dir == (EXAMPLE.parent / ".weshd-state").resolve()
    assert config.api.socket == config.state_dir / "weshd.sock"
    assert config.store_path == config.state_dir / "weshd.sqlite3"
    assert config.mqtt is not None
    assert not config.mqtt.enabled
    labels = {ch.label for box in config.boxes for ch in box.channels}
    assert {"Eau froide", "Eau chaude", "Chauffage", "Température séjour"} <= labels


def test_example_matches_the_simulator_layout() -> None:
    """`wesh sim wes --count 3 --base-port 18080 --seed 1`: ports and MACs are deterministic."""
    config = load_config(EXAMPLE)
    for index, box in enumerate(config.boxes):
        identity = make_identity(index, seed=1)
        assert box.host == "127.0.0.1"
        assert box.port == 18080 + index
        assert box.ftp_port == 18083 + index
        assert box.m2m_port == 18086 + index
        assert box.expected_mac == identity.mac
        assert box.serves == ("parties-communes" if index == 0 else f"logement-{index:02d}")


def test_example_documents_every_line() -> None:
    """Every key line has a comment, or sits in a block that starts with one."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    undocumented = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("["):
            continue
        if "#" in line:
            continue
        block_start = number - 1
        while (
            block_start > 0
            and lines[block_start - 1].strip()
            and not lines[block_start - 1].strip().startswith("[[")
        ):
            block_start -= 1
        block = lines[block_start - 1 : number]
        if not any("#" in item for item in block):
            undocumented.append(number)
    assert not undocumented, f"lines without a comment in their block: {undocumented}"


# ------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="configuration file not found") as info:
        load_config(missing)
    assert info.value.where == str(missing)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[site]\nid = "b"\nname = "Bâtiment"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_all_problems_are_listed_in_file_order() -> None:
    text = """
[site]
id = "b001"
name = "x"

[[boxes]]
id = "a"
serves = "logement-01"
host = "127.0.0.1"
port = "x"

[[boxes]]
id = "b"
serves = "logement-02"
host = "127.0.0.1"
timeout_s = -1
colour = "blue"
"""
    with pytest.raises(ConfigValidationError) as info:
        config_from_text(text, source="weshd.toml")
    wheres = [problem.where for problem in info.value.problems]
    assert wheres == ["weshd.toml:10", "weshd.toml:16", "weshd.toml:17"]
    assert "and 2 more problem(s)" in info.value.message
    assert info.value.problems[2].key == "boxes[1].colour"


def test_secrets_never_shown() -> None:
    text = """
[site]
id = "b001"
name = "x"

[api]
tcp = "127.0.0.1:8765"
token = "short-secret"

[[boxes]]
id = "a"
serves = "logement-01"
host = "127.0.0.1"
password = "hunter2-the-password"
"""
    with pytest.raises(ConfigValidationError) as info:
        config_from_text(text, source="weshd.toml")
    assert "short-secret" not in str(info.value.problems)
    good = config_from_text(text.replace("short-secret", "a-long-enough-secret-token"))
    assert "hunter2" not in repr(good)
    assert "a-long-enough" not in repr(good)
    assert good.boxes[0].password.get_secret_value() == "hunter2-the-password"
    assert good.api.token_value() == "a-long-enough-secret-token"


def test_wrong_password_type_does_not_echo_it() -> None:
    text = '[site]\nid = "b"\nname = "x"\n[[boxes]]\nid = "a"\nserves = "s"\nhost = "h"\n'
    with pytest.raises(ConfigValidationError) as info:
        config_from_text(text + "password = 123456789\n", source="w.toml")
    assert "123456789" not in str(info.value)
    assert info.value.where == "w.toml:8"


def test_mac_is_normalised() -> None:
    text = '[site]\nid = "b"\nname = "x"\n[[boxes]]\nid = "a"\nserves = "s"\nhost = "h"\n'
    for written in ("02:b1:1c:79:68:06", "02-B1-1C-79-68-06", "02b11c796806", "02.b1.1c.79.68.06"):
        config = config_from_text(text + f'expected_mac = "{written}"\n')
        assert config.boxes[0].expected_mac == "02B11C796806"


def test_socket_path_too_long(tmp_path: Path) -> None:
    text = (
        f'state_dir = "{tmp_path}"\n[site]\nid = "b"\nname = "x"\n[api]\nsocket = "{"s" * 120}"\n'
    )
    with pytest.raises(ConfigValidationError, match="longer than 107 bytes") as info:
        config_from_text(text, source="w.toml")
    assert info.value.where == "w.toml:6"


def test_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef-token\n", encoding="utf-8")
    text = '[site]\nid = "b"\nname = "x"\n[api]\ntcp = "127.0.0.1:1"\ntoken_file = "token"\n'
    config = config_from_text(text, base_dir=tmp_path)
    assert config.api.token_file == token
    assert config.api.token_value() == "0123456789abcdef-token"
    token.unlink()
    with pytest.raises(ConfigError, match="cannot read the API token file"):
        config.api.token_value()


# ------------------------------------------------------------------------------ paths


def test_relative_paths(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "weshd.toml"
    conf.parent.mkdir()
    conf.write_text(
        'state_dir = "state"\n[site]\nid = "b"\nname = "x"\n'
        '[store]\npath = "db/w.sqlite3"\n[api]\nsocket = "api.sock"\n',
        encoding="utf-8",
    )
    config = load_config(conf)
    assert config.state_dir == tmp_path / "etc" / "state"
    assert config.store_path == tmp_path / "etc" / "state" / "db" / "w.sqlite3"
    assert config.api.socket == tmp_path / "etc" / "state" / "api.sock"


def test_defaults() -> None:
    config = config_from_text('[site]\nid = "b"\nname = "x"\n')
    assert config.state_dir == Path("/var/lib/wesh")
    assert config.store_path == Path("/var/lib/wesh/weshd.sqlite3")
    assert config.api.socket == Path("/run/wesh/weshd.sock")
    assert config.api.tcp is None
    assert config.mqtt is None
    assert config.poll.max_concurrency == 32
    assert config.site.timezone == "Europe/Paris"
    assert config.boxes == []


def test_overrides_move_what_was_under_state_dir(tmp_path: Path) -> None:
    config = config_from_text(
        '[site]\nid = "b"\nname = "x"\n[api]\nsocket = "weshd.sock"\n', base_dir=tmp_path
    )
    moved = apply_overrides(config, state_dir=tmp_path / "other")
    assert moved.state_dir == tmp_path / "other"
    assert moved.api.socket == tmp_path / "other" / "weshd.sock"
    assert moved.store_path == tmp_path / "other" / "weshd.sqlite3"
    both = apply_overrides(config, state_dir=tmp_path / "o2", socket=tmp_path / "s.sock")
    assert both.api.socket == tmp_path / "s.sock"
    assert apply_overrides(config) is config
    absolute = config_from_text('[site]\nid = "b"\nname = "x"\n')
    kept = apply_overrides(absolute, state_dir=tmp_path)
    assert kept.api.socket == Path("/run/wesh/weshd.sock")


# ------------------------------------------------------------------------------ key_lines


def test_key_lines_tables_arrays_inline_and_strings() -> None:
    text = """# comment with [brackets] and key = value
top = "a # not a comment"
multi = '''
[not_a_table]
x = 1
'''

[site]
id = "b"   # trailing
"quoted key" = 1

[[boxes]]
id = "one"
nested.deep = 2

[[boxes.channels]]
path = "temp.1"

[[boxes.channels]]
path = "temp.2"

[[boxes]]
id = "two"
channels = [
  { path = "temp.3", meaning = "temperature" },
  {
    path = "temp.4" },
]
pulse_units = { 1 = "m3" }
"""
    lines = key_lines(text)
    assert lines[("top",)] == 2
    assert lines[("multi",)] == 3
    assert ("not_a_table",) not in lines
    assert lines[("site", "id")] == 9
    assert lines[("site", "quoted key")] == 10
    assert lines[("boxes", 0)] == 12
    assert lines[("boxes", 0, "nested", "deep")] == 14
    assert lines[("boxes", 0, "channels", 0, "path")] == 17
    assert lines[("boxes", 0, "channels", 1, "path")] == 20
    assert lines[("boxes", 1, "id")] == 23
    assert lines[("boxes", 1, "channels", 0, "meaning")] == 25
    assert lines[("boxes", 1, "channels", 1, "path")] == 27
    assert lines[("boxes", 1, "pulse_units", "1")] == 29


@given(st.text(max_size=300))
def test_key_lines_never_raises(text: str) -> None:
    lines = key_lines(text)
    assert all(line >= 1 for line in lines.values())


_PORT_LINE = re.compile(r"^port = ", re.MULTILINE)


@given(
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
)
def test_error_line_points_at_the_bad_key(
    blank_lines: list[int], bad_index: int, inline: bool
) -> None:
    """Whatever the layout, a bad port is reported on the line that holds it."""
    parts = ['[site]\nid = "b"\nname = "x"\n']
    boxes = len(blank_lines)
    bad_index %= boxes
    for number, blanks in enumerate(blank_lines):
        port = '"bad"' if number == bad_index else str(1000 + number)
        body = f'id = "box{number}"\nserves = "s"\nhost = "h"\n' + "\n" * blanks
        if inline and number % 2:
            body += 'channels = [ { path = "temp.1", meaning = "temperature" } ]\n'
        parts.append(f"\n[[boxes]]\n{body}port = {port}\n")
    text = "".join(parts)
    with pytest.raises(ConfigValidationError) as info:
        config_from_text(text, source="w.toml")
    line = int(info.value.where.rsplit(":", 1)[1])
    assert text.splitlines()[line - 1] == 'port = "bad"'
    assert info.value.problems[0].key == f"boxes[{bad_index}].port"
