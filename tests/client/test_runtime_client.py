"""libwesh and weshclient for the run-time endpoints (poll interval, box clock).

A stub gateway implementing ``RuntimeControl`` is served on a real socket; client and
server share the models of ``wesh.gateway.schema``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.client._api_server import NOW, ApiThread, StateStub, seed, short_dir
from wesh.client import WeshClient
from wesh.client.cli import weshclient
from wesh.errors import ConnectionFailed, UsageError
from wesh.gateway.api import PollIntervalState
from wesh.gateway.store import Store

CLEAN_ENV = {"WESH_SOCKET": None, "WESH_URL": None, "WESH_TOKEN": None, "LANG": "fr_FR.UTF-8"}


@dataclass
class RuntimeStub(StateStub):
    """The test gateway, with a run-time interval and a clock only ``dw-12`` can set."""

    overrides: dict[str, float] = field(default_factory=dict)
    clocks_set: list[tuple[str, datetime]] = field(default_factory=list)

    def _config(self, box: str):
        found = next((b for b in self.box_list if b.id == box), None)
        if found is None:
            raise UsageError(f"unknown box {box!r}", host=box)
        return found

    def poll_interval(self, box: str) -> PollIntervalState:
        config = self._config(box)
        return PollIntervalState(
            box, config.poll_interval_s, self.overrides.get(box), config.enabled
        )

    async def set_poll_interval(self, box: str, interval_s: float | None) -> PollIntervalState:
        if not self._config(box).enabled:
            raise UsageError(f"box {box!r} is disabled", host=box)
        if interval_s is None:
            self.overrides.pop(box, None)
        else:
            self.overrides[box] = interval_s
        return self.poll_interval(box)

    def can_set_clock(self, box: str) -> bool:
        return self._config(box).id == "dw-12"

    async def set_clock(self, box: str, at: datetime) -> None:
        self.clocks_set.append((box, at))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiThread]:
    with Store.open(tmp_path / "weshd.sqlite3") as store, short_dir() as directory:
        seed(store)
        with ApiThread(RuntimeStub(store), socket=directory / "weshd.sock") as thread:
            yield thread


def run(api: ApiThread, *args: str):
    return CliRunner().invoke(
        weshclient, ["--socket", str(api.socket), *args], env=CLEAN_ENV, catch_exceptions=False
    )


def test_libwesh_interval_and_clock(api: ApiThread) -> None:
    with WeshClient(socket=api.socket) as client:
        found = client.poll_interval("dw-12")
        assert (found.configured_s, found.override_s, found.effective_s) == (60.0, None, 60.0)
        found = client.set_poll_interval("dw-12", 300)
        assert (found.override_s, found.effective_s) == (300.0, 300.0)
        assert client.set_poll_interval("dw-12", None).override_s is None
        with pytest.raises(UsageError, match="disabled"):
            client.set_poll_interval("dw-13", 30)
        with pytest.raises(UsageError, match="unknown box"):
            client.poll_interval("nope")
        clock = client.clock("dw-12")
        assert clock.settable is True and clock.read_at is not None
        assert clock.offset_s == 3.0  # the seeded readings carry box_time = at + 3 s
        set_to = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
        client.set_clock("dw-12", set_to)
        client.set_clock("dw-12")
        assert api.state.clocks_set == [("dw-12", set_to), ("dw-12", NOW)]  # type: ignore[attr-defined]
        assert client.clock("tic-1").box_time is None
        with pytest.raises(UsageError, match="cannot have its clock set") as caught:
            client.set_clock("tic-1")
        assert caught.value.host == "tic-1"
        with pytest.raises(UsageError, match="timezone-aware"):
            client.set_clock("dw-12", datetime(2024, 1, 1))  # noqa: DTZ001


def test_weshclient_interval(api: ApiThread) -> None:
    result = run(api, "interval", "dw-12")
    assert result.exit_code == 0
    assert result.output == "Intervalle d'interrogation de dw-12 : 60 s (configuré : 60 s)\n"
    result = run(api, "--lang", "en", "interval", "dw-12", "90")
    assert result.output.splitlines() == [
        "Poll interval of dw-12: 90 s (configured: 60 s)",
        "changed until weshd restarts",
    ]
    result = run(api, "interval", "dw-12", "--json")
    assert json.loads(result.output) == {
        "box": "dw-12",
        "configured_s": 60.0,
        "override_s": 90.0,
        "effective_s": 90.0,
        "enabled": True,
    }
    result = run(api, "--json", "interval", "dw-12", "config")
    assert json.loads(result.output)["override_s"] is None
    result = run(api, "interval", "dw-12", "0.5")
    assert result.exit_code == 1 and "poll_interval_s" in result.output
    result = run(api, "interval", "dw-12", "vite")
    assert result.exit_code == 2


def test_weshclient_clock(api: ApiThread) -> None:
    result = run(api, "--lang", "en", "clock", "dw-12")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("Clock of dw-12: ") and "offset 3 s" in lines[0]
    assert lines[1] == "settable by weshd: yes"
    result = run(api, "clock", "dw-12", "--set", "--at", "2024-03-01T12:30:00+01:00", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["settable"] is True
    result = run(api, "clock", "tic-1", "--set")
    assert result.exit_code == 1
    assert "weshclient : erreur" in result.output and "cannot have its clock set" in result.output
    result = run(api, "clock", "tic-1")
    assert result.output.splitlines() == [
        "Horloge de tic-1 : inconnue (aucun relevé daté par le boîtier)",
        "réglable par weshd : non",
    ]
    assert run(api, "clock", "dw-12", "--at", "now").exit_code == 2


def test_weshd_away_is_a_connection_error(tmp_path: Path) -> None:
    with WeshClient(socket=tmp_path / "none.sock") as client:
        with pytest.raises(ConnectionFailed):
            client.poll_interval("dw-12")
        with pytest.raises(ConnectionFailed):
            client.set_clock("dw-12")
