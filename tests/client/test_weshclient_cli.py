"""weshclient: formatting (pure), every command through CliRunner, and a real subprocess."""

from __future__ import annotations

import json
import math
import string
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from tests.client._api_server import TOKEN, ApiThread, StateStub, clock, seed, short_dir
from wesh.client import cli as client_cli
from wesh.client.cli import (
    MESSAGES,
    format_age,
    format_number,
    format_value,
    parse_when,
    pick_lang,
    weshclient,
)
from wesh.errors import UsageError
from wesh.gateway.schema import BoxRuntimeStatus
from wesh.gateway.store import Store

CLEAN_ENV = {"WESH_SOCKET": None, "WESH_URL": None, "WESH_TOKEN": None, "LANG": "fr_FR.UTF-8"}


# ----------------------------------------------------------------------------- pure formatting


@pytest.mark.parametrize(
    ("value", "unit", "lang", "expected"),
    [
        (230.0, "V", "fr", "230 V"),
        (12.5, "°C", "fr", "12,5 °C"),
        (12.5, "°C", "en", "12.5 °C"),
        (123_456, "L", "fr", "123456 L"),
        (0.1 + 0.2, None, "en", "0.3"),
        (True, None, "fr", "marche"),
        (False, None, "en", "off"),
        ("HC..", None, "fr", "HC.."),
        (1e20, "Wh", "en", "1e+20 Wh"),
    ],
)
def test_format_value(
    value: float | str | bool, unit: str | None, lang: str, expected: str
) -> None:
    assert format_value(value, unit, lang) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("age_s", "fr", "en"),
    [
        (0, "0 s", "0 s"),
        (12.7, "12 s", "12 s"),
        (59.9, "59 s", "59 s"),
        (60, "1 min", "1 min"),
        (3599, "59 min", "59 min"),
        (3600, "1 h", "1 h"),
        (86_399, "23 h", "23 h"),
        (86_400 * 3, "3 j", "3 d"),
        (-5, "0 s", "0 s"),
    ],
)
def test_format_age(age_s: float, fr: str, en: str) -> None:
    assert format_age(age_s, "fr") == fr
    assert format_age(age_s, "en") == en


@given(st.floats(min_value=-1e300, max_value=1e300))  # rounding near float max overflows
def test_numbers_read_back(value: float) -> None:
    english = format_number(value, "en")
    assert math.isclose(float(english), value, rel_tol=1e-9, abs_tol=0)
    assert format_number(value, "fr") == english.replace(".", ",")


NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("maintenant", NOW),
        ("2h", NOW - timedelta(hours=2)),
        ("-30min", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("7j", NOW - timedelta(days=7)),
        ("90s", NOW - timedelta(seconds=90)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("2024-02-29T08:00:00+01:00", datetime(2024, 2, 29, 7, 0, tzinfo=UTC)),
        ("2024-02-29T08:00Z", datetime(2024, 2, 29, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


def test_parse_when_naive_is_local_time() -> None:
    moment = parse_when("2024-02-29T08:00:00", NOW)
    assert moment.tzinfo is not None
    assert moment.replace(tzinfo=None) == datetime(2024, 2, 29, 8, 0)  # noqa: DTZ001


@pytest.mark.parametrize(
    "text", ["yesterday", "2h ago", "", "12", "2024-13-01", "99999999d", "1e9h"]
)
def test_parse_when_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_when(text, NOW)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "min", "h", "d"]))
def test_parse_when_durations(amount: int, unit: str) -> None:
    seconds = {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit] * amount
    try:
        expected = NOW - timedelta(seconds=seconds)
    except OverflowError:
        with pytest.raises(UsageError, match="too far"):
            parse_when(f"{amount}{unit}", NOW)
    else:
        assert parse_when(f"{amount}{unit}", NOW) == expected


def test_catalogue_is_complete() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == {"fr", "en"}, key
        fields = [
            {name for _, name, _, _ in string.Formatter().parse(text) if name}
            for text in texts.values()
        ]
        assert fields[0] == fields[1], key


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        (None, "en_GB.UTF-8", "en"),
        (None, "fr_FR.UTF-8", "fr"),
        (None, None, "fr"),
        (None, "C.UTF-8", "fr"),
        ("fr", "en_US", "fr"),
        ("en", None, "en"),
    ],
)
def test_language(option: str | None, env: str | None, expected: str) -> None:
    assert pick_lang(option, env) == expected


# ----------------------------------------------------------------------------- commands


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "weshd.sqlite3", clock=clock)
    seed(store)
    yield store
    store.close()


@pytest.fixture
def state(store: Store) -> StateStub:
    return StateStub(store)


@pytest.fixture
def api(state: StateStub) -> Iterator[ApiThread]:
    with short_dir() as directory, ApiThread(state, socket=directory / "weshd.sock") as running:
        yield running


def run(api: ApiThread, *args: str, env: dict[str, str | None] | None = None) -> Result:
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    return runner.invoke(weshclient, ["--socket", str(api.socket), *args], catch_exceptions=False)


def test_get_prints_value_unit_and_age(api: ApiThread) -> None:
    result = run(api, "get", "dw-12", "pince.1.voltage")
    assert result.exit_code == 0
    assert result.stdout == "230 V (il y a 12 s)\n"
    english = run(api, "--lang", "en", "get", "dw-12", "temp.1")
    assert english.stdout == "19.5 °C (12 s ago)\n"
    several = run(api, "get", "dw-12", "temp.1", "impulsion.2.index")
    assert several.stdout == (
        "temp.1: 19,5 °C (il y a 12 s)\nimpulsion.2.index: 123250 L (il y a 12 s)\n"
    )


def test_get_json(api: ApiThread) -> None:
    result = run(api, "get", "dw-12", "pince.1.voltage", "--json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert (body["value"], body["unit"], body["age_s"]) == (230.0, "V", 12.0)
    same = run(api, "--json", "get", "dw-12", "pince.1.voltage")
    assert json.loads(same.stdout) == body


def test_get_unknown_path_is_a_clear_error(api: ApiThread) -> None:
    result = run(api, "get", "dw-12", "temp.9")
    assert result.exit_code == 1
    assert result.stdout == ""
    # the last line: another test's logging handler may have written before it
    assert result.stderr.splitlines()[-1].startswith(
        "weshclient : erreur : box 'dw-12' has no channel 'temp.9'; known paths:"
    )
    english = run(api, "get", "nope", "temp.1", env={"LANG": "en_US.UTF-8"})
    assert english.exit_code == 1
    assert english.stderr.splitlines()[-1].startswith("weshclient: error: unknown box 'nope'")


def test_ls_boxes(api: ApiThread) -> None:
    result = run(api, "ls")
    assert result.exit_code == 0
    out = result.stdout
    assert "Boîtiers du site" in out
    assert "dw-12 (Logement 12)" in out
    assert "en ligne" in out
    assert "hors ligne" in out
    assert "no frame for 30 s" in out
    assert "désactivé" in out
    listed = json.loads(run(api, "ls", "--json").stdout)
    assert [b["id"] for b in listed] == ["dw-12", "tic-1", "dw-13"]


def test_ls_channels_of_a_box(api: ApiThread) -> None:
    result = run(api, "--lang", "en", "ls", "dw-12")
    assert result.exit_code == 0
    out = result.stdout
    assert "Channels of dw-12" in out
    assert "230 V (12 s ago)" in out
    assert "temp.2" in out
    channels = json.loads(run(api, "ls", "dw-12", "--json").stdout)
    assert len(channels) == 5


def test_watch_once(api: ApiThread) -> None:
    result = run(api, "watch", "dw-12", "--once")
    assert result.exit_code == 0
    assert "Dernières valeurs" in result.stdout
    assert "19,5 °C" in result.stdout
    only = run(api, "watch", "dw-12", "temp.1", "--once", "--json")
    assert [v["path"] for v in json.loads(only.stdout)] == ["temp.1"]


def test_watch_refreshes_and_survives_a_lost_gateway(
    api: ApiThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(client_cli.time, "sleep", sleeps.append)
    result = run(api, "watch", "--count", "3", "--interval", "2", "--json")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(len(json.loads(line)) == 4 for line in lines)
    assert sleeps == [2.0, 2.0]
    # no gateway at all: each refresh reports the error, then the watch ends normally
    missing = CliRunner(env=CLEAN_ENV).invoke(
        weshclient, ["--socket", "/nonexistent/weshd.sock", "watch", "--count", "2", "--json"]
    )
    assert missing.exit_code == 0
    assert missing.stderr.count("erreur : no weshd socket") == 2
    # but a wrong argument stops at once
    assert run(api, "watch", "nope", "--count", "2").exit_code == 1


def test_watch_without_a_terminal_prints_each_refresh(
    api: ApiThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_cli.time, "sleep", lambda _s: None)
    result = run(api, "--lang", "en", "watch", "dw-12", "temp.1", "--count", "2")
    assert result.exit_code == 0
    assert result.stdout.count("Latest values") == 2
    assert result.stdout.count("19.5 °C") == 2


def test_history(api: ApiThread) -> None:
    window = ["--since", "2024-03-01T11:50:00Z", "--until", "2024-03-01T11:55:00+00:00"]
    result = run(api, "history", "dw-12", "impulsion.2.index", *window)
    assert result.exit_code == 0
    assert "Historique de dw-12/impulsion.2.index" in result.stdout
    assert "123150 L" in result.stdout
    assert "123190 L" in result.stdout
    page = json.loads(run(api, "history", "dw-12", "impulsion.2.index", *window, "--json").stdout)
    assert [p["value"] for p in page["points"]] == [123150, 123160, 123170, 123180, 123190]
    assert page["next_since"] is None
    limited = json.loads(
        run(api, "history", "dw-12", "impulsion.2.index", *window, "--limit", "2", "--json").stdout
    )
    assert len(limited["points"]) == 2
    assert limited["next_since"] == "2024-03-01T11:52:00Z"
    empty = run(api, "--lang", "en", "history", "dw-12", "temp.1", *window)
    assert empty.stdout.startswith("No values between")


def test_history_bad_time(api: ApiThread) -> None:
    result = run(api, "history", "dw-12", "temp.1", "--since", "yesterday")
    assert result.exit_code == 2
    assert "date invalide 'yesterday'" in result.stderr


def test_relay_and_switch(api: ApiThread, state: StateStub) -> None:
    result = run(api, "relay", "dw-12", "1", "on")
    assert (result.exit_code, result.stdout) == (0, "Relais 1 de dw-12 : marche\n")
    result = run(api, "--lang", "en", "switch", "dw-12", "4", "toggle")
    assert result.stdout == "Virtual switch 4 of dw-12: toggled\n"
    result = run(api, "relay", "dw-12", "2", "off", "--json")
    assert json.loads(result.stdout)["action"] == "off"
    assert [(c.kind, c.number, c.action) for _, c in state.commands] == [
        ("relay", 1, "on"),
        ("switch", 4, "toggle"),
        ("relay", 2, "off"),
    ]
    assert run(api, "relay", "dw-12", "1", "blink").exit_code == 2
    assert run(api, "relay", "dw-12", "0", "on").exit_code == 2


def test_events(api: ApiThread) -> None:
    result = run(api, "events")
    assert result.exit_code == 0
    assert "counter_reset" in result.stdout
    assert "box_down" in result.stdout
    only = json.loads(run(api, "events", "--box", "tic-1", "--json").stdout)
    assert [e["kind"] for e in only] == ["box_down"]
    since = json.loads(run(api, "events", "--since", "2024-03-01T10:30Z", "--json").stdout)
    assert [e["kind"] for e in since] == ["counter_reset"]
    none = run(api, "--lang", "en", "events", "--since", "1s")
    assert none.stdout == "No events.\n"


def test_health_exit_status(api: ApiThread, state: StateStub) -> None:
    degraded = run(api, "health")
    assert degraded.exit_code == 1
    assert degraded.stdout.startswith("weshd (bat-a) : DÉGRADÉ\n")
    assert "1 box(es) down" in degraded.stdout
    state.runtime["tic-1"] = BoxRuntimeStatus(box="tic-1", up=True)
    ok = run(api, "--lang", "en", "health")
    assert ok.exit_code == 0
    assert ok.stdout.splitlines()[:2] == [
        "weshd (bat-a): OK",
        "boxes: 2 up, 0 down, 0 not polled yet",
    ]
    assert json.loads(run(api, "health", "--json").stdout)["status"] == "ok"


def test_tcp_url_and_token_from_the_environment(api: ApiThread) -> None:
    runner = CliRunner(env={**CLEAN_ENV, "WESH_URL": api.url})
    without = runner.invoke(weshclient, ["get", "dw-12", "temp.1"])
    assert without.exit_code == 1
    assert "--token" in without.stderr
    runner = CliRunner(env={**CLEAN_ENV, "WESH_URL": api.url, "WESH_TOKEN": TOKEN})
    assert runner.invoke(weshclient, ["get", "dw-12", "temp.1"]).stdout == "19,5 °C (il y a 12 s)\n"
    # an explicit --url beats WESH_SOCKET from the environment
    runner = CliRunner(env={**CLEAN_ENV, "WESH_SOCKET": "/nonexistent.sock"})
    result = runner.invoke(
        weshclient, ["--url", api.url, "--token", TOKEN, "get", "dw-12", "temp.1"]
    )
    assert result.exit_code == 0
    # two explicit places are a usage error
    result = CliRunner(env=CLEAN_ENV).invoke(
        weshclient, ["--socket", str(api.socket), "--url", api.url, "ls"]
    )
    assert result.exit_code == 2


def test_no_gateway_hint() -> None:
    result = CliRunner(env=CLEAN_ENV).invoke(weshclient, ["--socket", "/nonexistent.sock", "ls"])
    assert result.exit_code == 1
    assert "is weshd running?" in result.stderr


def test_real_subprocess(api: ApiThread) -> None:
    script = Path(sys.executable).with_name("weshclient")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from wesh.cli import weshclient_main; weshclient_main()"]
    )
    env = {"PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8", "WESH_SOCKET": str(api.socket)}
    done = subprocess.run(
        [*command, "get", "dw-12", "pince.1.voltage"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "230 V (12 s ago)\n", "")
    failed = subprocess.run(
        [*command, "get", "dw-12", "nope.1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("weshclient: error: box 'dw-12' has no channel 'nope.1'")
