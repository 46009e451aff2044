"""``wesh sync receiver``: how the HQ store and the alert engine are plugged in."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from wesh.cli import cli
from wesh.errors import ConfigError, UsageError
from wesh.hq.alerts.engine import AlertingSink
from wesh.hq.db import make_engine
from wesh.hq.ingest import DEFAULT_ROLLUP_REFRESH_S, HqSink
from wesh.hq.migrate import migrate
from wesh.sync import receiver as receiver_module
from wesh.sync.keys import keygen


class _CapturingReceiver:
    """Stands in for SyncReceiver: records the sink it was given and returns at once."""

    sinks: ClassVar[list[Any]] = []

    def __init__(self, *, sink: Any, **_: Any) -> None:
        _CapturingReceiver.sinks.append(sink)

    def close(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def run(self) -> None:
        return None


@pytest.fixture
def hq(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'hq.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    keys = tmp_path / "keys"
    keygen("site-1", keys)
    return url, keys


def _run(tmp_path: Path, keys: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "sync", "receiver", *args, "--key-dir", str(keys), "--state",
            str(tmp_path / "receiver.sqlite3"), "--gammu-root", str(tmp_path / "sms"),
        ],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "alerting"),
    [((), False), (("--alerts",), True), (("--alerts-config", "ALERTS"), True)],
)
def test_alerts_wrap_the_hq_sink(
    tmp_path: Path,
    hq: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    alerting: bool,
) -> None:
    url, keys = hq
    config = tmp_path / "alerts.toml"
    config.write_text('lang = "en"\n', encoding="utf-8")
    flags = tuple(str(config) if flag == "ALERTS" else flag for flag in flags)
    monkeypatch.setattr(receiver_module, "SyncReceiver", _CapturingReceiver)
    _CapturingReceiver.sinks.clear()
    result = _run(tmp_path, keys, "--db", url, *flags)
    assert result.exit_code == 0, result.output
    (sink,) = _CapturingReceiver.sinks
    if alerting:
        assert isinstance(sink, AlertingSink)
        assert isinstance(sink.inner, HqSink)
    else:
        assert isinstance(sink, HqSink)


@pytest.mark.parametrize(("flags", "every_s"), [((), 0.0), (("--refresh-every", "30"), 30.0)])
def test_refresh_every_sets_the_hq_sinks_rollup_refresh(
    tmp_path: Path,
    hq: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    every_s: float,
) -> None:
    url, keys = hq
    monkeypatch.setattr(receiver_module, "SyncReceiver", _CapturingReceiver)
    _CapturingReceiver.sinks.clear()
    result = _run(tmp_path, keys, "--db", url, *flags, "--alerts")
    assert result.exit_code == 0, result.output
    (sink,) = _CapturingReceiver.sinks
    assert isinstance(sink, AlertingSink) and isinstance(sink.inner, HqSink)
    assert sink.inner.refresh_every_s == every_s
    if not flags:
        assert every_s == DEFAULT_ROLLUP_REFRESH_S  # HqSink's default


def test_refresh_every_needs_the_hq_database_and_no_negative(
    tmp_path: Path, hq: tuple[str, Path]
) -> None:
    url, keys = hq
    sink = str(tmp_path / "sink.sqlite3")
    result = _run(tmp_path, keys, "--sqlite-sink", sink, "--refresh-every", "5")
    assert isinstance(result.exception, UsageError)
    assert "--refresh-every" in str(result.exception)
    result = _run(tmp_path, keys, "--db", url, "--refresh-every", "-1")
    assert result.exit_code == 2 and "--refresh-every" in result.output


def test_alerts_need_the_hq_database(tmp_path: Path, hq: tuple[str, Path]) -> None:
    _, keys = hq
    result = _run(tmp_path, keys, "--sqlite-sink", str(tmp_path / "sink.sqlite3"), "--alerts")
    assert isinstance(result.exception, UsageError)
    assert "--alerts" in str(result.exception)


def test_a_wrong_alerts_config_line_is_named(tmp_path: Path, hq: tuple[str, Path]) -> None:
    url, keys = hq
    config = tmp_path / "alerts.toml"
    config.write_text('lang = "en"\nnot_a_setting = 3\n', encoding="utf-8")
    result = _run(tmp_path, keys, "--db", url, "--alerts-config", str(config))
    assert isinstance(result.exception, ConfigError)
    assert "not_a_setting" in str(result.exception)
    assert f"{config}:2" in str(result.exception)  # file and line
