"""The TIC live-decoding demo (`wesh tic demo`, the first part of `wesh demo`)."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from rich.console import Console

from wesh.cli import cli
from wesh.errors import UsageError
from wesh.tic.demo import DEFAULT_SECONDS, run_demo

NAMES = [
    "Logement 12 · historique HC",
    "Communs · historique tri BASE",
    "Logement 7 · standard Tempo",
    "Chaufferie · standard tri PV",
]


class FakeTime:
    """A wall clock that only moves when the demo sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def demo_output(
    seconds: float | None, *, terminal: bool = False, lang: str = "en"
) -> tuple[str, FakeTime]:
    fake = FakeTime()
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=terminal, color_system=None)
    run_demo(seconds=seconds, console=console, clock=fake.clock, sleep=fake.sleep, lang=lang)
    return out.getvalue(), fake


def test_run_demo_one_second_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    run_demo(seconds=1, lang="en")
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    for row in ("identity", "indexes", "power", "currents", "frames ok/bad", "checksum err."):
        assert out.count(row) == 4
    assert "kWh" in out and "VA" in out


def test_the_overload_episode_shows_and_periods_change() -> None:
    out, fake = demo_output(8)
    assert fake.slept == pytest.approx(8)
    assert "OVERLOAD ADIR2" in out  # three-phase meter, 4 simulated minutes in
    assert "HC.. off-peak hours" in out  # the HC meter crossed 22:00
    assert "EAIT" in out  # the producer
    assert "2025-02-03 06:0" in out  # the standard meter's own clock (DATE)
    assert " 8.0 s" in out


def test_the_overload_ends() -> None:
    out, _ = demo_output(DEFAULT_SECONDS)
    assert "OVERLOAD" not in out  # 7.5 simulated minutes: over, and its minute passed
    assert "frames ok/bad" in out


def test_the_default_run_ends_by_itself() -> None:
    out, fake = demo_output(None)
    assert fake.slept == pytest.approx(DEFAULT_SECONDS)
    assert DEFAULT_SECONDS <= 20
    assert f"{DEFAULT_SECONDS:4.1f} s" in out


def test_live_display_on_a_terminal() -> None:
    out, _ = demo_output(2, terminal=True)
    assert out.count("Logement 12 · historique HC") >= 2  # redrawn while running
    assert "frames ok/bad" in out


def test_the_screen_speaks_french_by_default() -> None:
    out, _ = demo_output(8, lang="fr")
    assert "compteurs TIC décodés en direct" in out
    assert "DÉPASSEMENT ADIR2" in out
    assert "HC.. heures creus" in out  # cut to fit 80 columns
    for row in ("compteur", "index", "puissance", "courants", "trames ok/ko"):
        assert row in out
    assert "frames ok/bad" not in out
    with pytest.raises(UsageError):
        demo_output(1, lang="de")


def test_tic_demo_command() -> None:
    result = CliRunner().invoke(
        cli, ["tic", "demo", "--seconds", "0.3", "--lang", "en"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "TIC meters decoded live" in result.stdout
    for name in NAMES:
        assert name in result.stdout
