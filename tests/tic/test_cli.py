"""``wesh tic decode`` and ``wesh tic simulate``: CliRunner, and real processes and pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from wesh.cli import cli
from wesh.errors import ConnectionFailed, UsageError
from wesh.tic.cli import frame_to_json, is_serial_source, pace
from wesh.tic.decoder import decode
from wesh.tic.encoder import encode_frame, make_group
from wesh.tic.model import Frame, Group, Mode

START = "2025-01-15T21:59:50"
WESH = [sys.executable, "-m", "wesh"]


def run(*args: str, input: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def simulate(*args: str) -> bytes:
    code, out, _ = run("tic", "simulate", "--speed", "0", "--start", START, *args)
    assert code == 0
    return out


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("command", [[], ["decode"], ["simulate"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = run("tic", *command, "--help")
    assert code == 0
    assert b"Usage:" in out


# ---------------------------------------------------------------- simulate


def test_simulate_writes_n_valid_frames_deterministically() -> None:
    out = simulate("--frames", "5", "--seed", "3", "--tariff", "HC")
    assert out == simulate("--frames", "5", "--seed", "3", "--tariff", "HC")
    frames = decode(out)
    assert len(frames) == 5
    assert all(f.complete and f.mode is Mode.HISTORIQUE for f in frames)
    assert all(g.valid for f in frames for g in f.groups)
    assert frames[0].values()["PTEC"] == "HP.."
    assert simulate("--frames", "5", "--seed", "4") != out


def test_simulate_seconds_is_simulated_time() -> None:
    out = simulate("--mode", "standard", "--phases", "3", "--producer", "--seconds", "10")
    frames = decode(out)
    assert 8 <= len(frames) <= 11  # about one standard frame a second at 9600 baud
    labels = {g.label for g in frames[0].groups}
    assert {"SINSTS3", "EAIT", "SINSTI"} <= labels


def test_simulate_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "line.bin"
    code, out, _ = run(
        "tic", "simulate", "--speed", "0", "--start", START, "--frames", "3", "-o", str(path)
    )
    assert code == 0 and out == b""
    assert path.read_bytes() == simulate("--frames", "3")


def test_simulate_noise_is_seeded_and_visible() -> None:
    clean = simulate("--frames", "40")
    noisy = simulate("--frames", "40", "--noise", "0.01")
    assert noisy == simulate("--frames", "40", "--noise", "0.01")
    assert noisy != clean
    assert any(not g.valid for f in decode(noisy) for g in f.groups)


def test_simulate_overload_on_three_phases_sends_short_frames() -> None:
    out = simulate("--phases", "3", "--overload", "5", "--seconds", "60", "--seed", "2")
    frames = decode(out)
    assert any(f.groups[0].label == "ADIR1" for f in frames)


def test_simulate_rejects_conflicting_options() -> None:
    with pytest.raises(UsageError):
        run("tic", "simulate", "--frames", "1", "--seconds", "1")
    with pytest.raises(UsageError):
        run("tic", "simulate", "--start", "yesterday", "--frames", "1")
    code, _, err = run("tic", "simulate", "--phases", "2")
    assert code == 2 and "phases" in err


def test_pace_follows_the_line_rate() -> None:
    now = [100.0]
    sleeps: list[float] = []
    written: list[bytes] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    chunks = [(b"a" * 120, 1.0), (b"b" * 120, 1.0), (b"c" * 60, 0.5)]
    total = pace(chunks, written.append, speed=2, clock=lambda: now[0], sleep=sleep)
    assert total == 300
    assert written == [c for c, _ in chunks]
    assert sleeps == pytest.approx([0.5, 0.5])  # the first chunk goes at once
    sleeps.clear()
    pace(chunks, written.append, speed=0, clock=lambda: now[0], sleep=sleep)
    assert sleeps == []


# ---------------------------------------------------------------- decode


@pytest.fixture
def noisy_file(tmp_path: Path) -> Path:
    path = tmp_path / "noisy.tic"
    path.write_bytes(simulate("--frames", "30", "--mode", "standard", "--noise", "0.002"))
    return path


def test_decode_file_json_one_object_per_frame(noisy_file: Path) -> None:
    code, out, err = run("tic", "decode", str(noisy_file), "--json")
    assert code == 0
    lines = out.decode().splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects == [frame_to_json(f) for f in decode(noisy_file.read_bytes())]
    for obj in objects:
        assert set(obj) >= {"mode", "complete", "groups", "errors"}
        assert obj["mode"] in ("standard", None)
        for group in obj["groups"]:
            assert set(group) >= {"label", "value", "horodate", "checksum_ok"}
    assert any(g["horodate"] for o in objects for g in o["groups"])
    assert any(not g["checksum_ok"] for o in objects for g in o["groups"])
    stats = json.loads(err.strip().splitlines()[-1])["stats"]
    assert stats["frames_complete"] >= 20


def test_decode_stdin_with_forced_mode() -> None:
    data = simulate("--frames", "4")
    code, out, _ = run("tic", "decode", "-", "--json", "--mode", "historique", input=data)
    assert code == 0
    assert [json.loads(line)["mode"] for line in out.decode().splitlines()] == ["historique"] * 4


def test_decode_rich_rendering(noisy_file: Path) -> None:
    code, out, _ = run("tic", "decode", str(noisy_file))
    assert code == 0
    text = out.decode()
    assert "Frame 1 · standard" in text
    assert "total active energy drawn" in text  # meaning, from the catalogue
    assert " Wh" in text and " VA" in text  # values with their units
    assert "✓" in text and "✗" in text
    assert "2025-01-15 21:59:50 H" in text  # DATE horodate, as Paris time
    assert "Decoder counters" in text and "frames complete" in text


def test_decode_reports_incomplete_frames() -> None:
    good = encode_frame([("ADCO", "012345678901"), ("PAPP", "00390")], mode=Mode.HISTORIQUE)
    code, out, _ = run("tic", "decode", "-", "--json", input=good + good[:15])
    assert code == 0
    objects = [json.loads(line) for line in out.decode().splitlines()]
    assert [o["complete"] for o in objects] == [True, False]


def test_decode_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        run("tic", "decode", str(tmp_path / "nope.bin"))


def test_decode_a_missing_serial_device_is_connection_failed() -> None:
    with pytest.raises(ConnectionFailed, match="cannot open TIC port"):
        run("tic", "decode", "/dev/wesh-no-such-adapter", "--json")


def test_frame_to_json_keeps_group_errors() -> None:
    bad = Group("PAPP", "0039", checksum="!", checksum_ok=False, error="bad checksum")
    frame = Frame(
        Mode.HISTORIQUE, (make_group("ADCO", "1", mode=Mode.HISTORIQUE), bad), True, ("x",)
    )
    obj = frame_to_json(frame)
    assert obj["groups"][1] == {
        "label": "PAPP",
        "value": "0039",
        "horodate": None,
        "checksum": "!",
        "checksum_ok": False,
        "valid": False,
        "mode": None,
        "error": "bad checksum",
    }
    assert obj["errors"] == ["x"]
    json.dumps(obj)


def test_serial_sources_are_recognised(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        assert is_serial_source(os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert is_serial_source("loop://")
    assert is_serial_source("socket://127.0.0.1:4001")
    assert is_serial_source("/dev/ttyUSB0")
    regular = tmp_path / "capture.bin"
    regular.write_bytes(b"")
    assert not is_serial_source(str(regular))
    assert not is_serial_source(str(tmp_path / "missing"))


# ---------------------------------------------------------------- real processes


def test_pipe_simulate_into_decode() -> None:
    """`wesh tic simulate --frames 20 --speed 0 | wesh tic decode - --json`."""
    simulator = subprocess.Popen(
        [*WESH, "tic", "simulate", "--frames", "20", "--speed", "0", "--mode", "standard"],
        stdout=subprocess.PIPE,
    )
    assert simulator.stdout is not None
    decoder = subprocess.run(
        [*WESH, "tic", "decode", "-", "--json"],
        stdin=simulator.stdout,
        capture_output=True,
        timeout=60,
        check=True,
    )
    simulator.stdout.close()
    assert simulator.wait(timeout=60) == 0
    objects = [json.loads(line) for line in decoder.stdout.decode().splitlines()]
    assert len(objects) == 20
    assert all(o["complete"] and o["mode"] == "standard" and not o["errors"] for o in objects)
    assert all(g["checksum_ok"] for o in objects for g in o["groups"])
    assert json.loads(decoder.stderr)["stats"]["frames_complete"] == 20


def test_errors_are_one_line_on_stderr() -> None:
    done = subprocess.run(
        [*WESH, "tic", "simulate", "--frames", "1", "--seconds", "1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.decode() == "wesh: error: give --frames or --seconds, not both\n"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_live_pty_from_simulate_to_decode(processes: list[subprocess.Popen[bytes]]) -> None:
    simulator = subprocess.Popen(
        [*WESH, "tic", "simulate", "--pty", "--speed", "20", "--tariff", "BASE"],
        stderr=subprocess.PIPE,
    )
    processes.append(simulator)
    assert simulator.stderr is not None
    banner = simulator.stderr.readline().decode()
    path = banner.split(" on ")[1].split()[0]
    assert path.startswith("/dev/")
    decoder = subprocess.Popen(
        [*WESH, "tic", "decode", path, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    processes.append(decoder)
    assert decoder.stdout is not None
    objects = [json.loads(decoder.stdout.readline()) for _ in range(3)]
    assert all(o["mode"] == "historique" and o["complete"] for o in objects)
    assert all(g["checksum_ok"] for o in objects for g in o["groups"])
    assert {g["label"] for g in objects[-1]["groups"]} >= {"ADCO", "BASE", "PAPP"}
