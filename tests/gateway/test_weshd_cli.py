"""The weshd command: check-config on good and bad files, and a real weshd subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.gateway._weshd import (
    REPO,
    box_toml,
    config_toml,
    free_port,
    short_tmp,
    wait_until,
    weshd_command,
    weshd_env,
)
from wesh.gateway.cli import weshd
from wesh.sim import run_simulators

__all__ = ["short_tmp"]

FIXTURES = REPO / "tests" / "fixtures" / "gateway"
BAD = sorted((FIXTURES / "bad").glob("*.toml"))
GOOD = sorted((FIXTURES / "good").glob("*.toml"))


def _expected(toml: Path) -> tuple[str, str]:
    fields = dict(
        line.split(": ", 1)
        for line in toml.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
        if ": " in line
    )
    return fields["where"], fields["message"]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_check_config_names_file_line_and_problem(path: Path) -> None:
    where, message = _expected(path)
    result = CliRunner().invoke(weshd, ["check-config", "--config", str(path)])
    assert result.exit_code == 1, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}{where}: "), first
    assert message in result.stderr


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_check_config_accepts_good_files(path: Path) -> None:
    result = CliRunner().invoke(weshd, ["check-config", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["file"] == str(path)


def test_check_config_summary_of_the_example(short_tmp: Path) -> None:
    example = REPO / "contrib" / "weshd.example.toml"
    result = CliRunner().invoke(
        weshd,
        ["check-config", "--config", str(example), "--state-dir", str(short_tmp)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{example}: OK")
    assert "3 (3 enabled: 3 wes)" in result.stdout
    assert f"store     {short_tmp}/weshd.sqlite3" in result.stdout


def test_check_config_json_lists_every_problem(short_tmp: Path) -> None:
    path = short_tmp / "weshd.toml"
    path.write_text(config_toml(short_tmp, [box_toml("a", 1), box_toml("a", 2)], extra="[x]\n"))
    result = CliRunner().invoke(weshd, ["check-config", "--config", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problems"]
    assert all(p["where"].startswith(f"{path}:") for p in report["problems"])


def test_config_path_from_the_environment_and_missing_file(short_tmp: Path) -> None:
    missing = short_tmp / "nope.toml"
    result = CliRunner().invoke(weshd, ["check-config"], env={"WESHD_CONFIG": str(missing)})
    assert result.exit_code == 1
    assert f"configuration file not found: {missing}" in result.stderr


def test_run_with_a_bad_file_exits_1_with_file_and_line(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = short_tmp / "weshd.toml"
    text = config_toml(short_tmp, [box_toml("a", 1)]) + "\n[poll2]\nbogus = 1\n"
    path.write_text(text)
    code = _run_main(["--config", str(path)])
    assert code == 1
    line = text.splitlines().index("[poll2]") + 1
    err = capsys.readouterr().err
    assert err.startswith("weshd: error: ") and f"where={path}:{line}" in err, err


def _run_main(args: list[str]) -> int:
    from wesh.gateway.cli import main  # noqa: PLC0415

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_help_and_version() -> None:
    runner = CliRunner()
    assert "check-config" in runner.invoke(weshd, ["--help"]).output
    assert "--state-dir" in runner.invoke(weshd, ["run", "--help"]).output
    assert "weshd, version" in runner.invoke(weshd, ["--version"]).output


async def _weshclient(socket: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from wesh.cli import weshclient_main; weshclient_main()",
        "--socket",
        str(socket),
        "--lang",
        "en",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=weshd_env(COLUMNS="200"),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_weshd_process_end_to_end_with_sighup_and_sigterm(short_tmp: Path) -> None:
    async with run_simulators(3, base_port=0, seed=5, speed=60, ftp=False, m2m=False) as farm:
        ports = [box.http.port for box in farm.boxes]
        dead = free_port()
        state = short_tmp / "state"
        path = short_tmp / "weshd.toml"
        path.write_text(config_toml(state, [box_toml("pc", ports[0]), box_toml("dead", dead)]))
        socket = short_tmp / "api.sock"  # --socket overrides the file's api.socket
        proc = await asyncio.create_subprocess_exec(
            *weshd_command("--config", str(path), "--socket", str(socket), "--stats-interval", "1"),
            stderr=asyncio.subprocess.PIPE,
            env=weshd_env(),
        )
        assert proc.stderr is not None
        lines: list[str] = []

        async def read_log() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                lines.append(line.decode())

        reader = asyncio.create_task(read_log())
        try:
            await wait_until(socket.exists, timeout_s=20, what="the API socket")
            listing = await _weshclient(socket, "ls")
            assert "pc" in listing and "dead" in listing
            # add a box, then SIGHUP
            path.write_text(
                config_toml(
                    state,
                    [box_toml("pc", ports[0]), box_toml("dead", dead), box_toml("l1", ports[1])],
                )
            )
            proc.send_signal(signal.SIGHUP)
            for _ in range(100):
                listing = await _weshclient(socket, "--json", "ls")
                ids = {box["id"]: box for box in json.loads(listing)}
                status = ids.get("l1", {}).get("status") or {}
                if status.get("up"):
                    break
                await asyncio.sleep(0.1)
            assert status.get("up") is True, listing
            assert ids["dead"]["status"]["up"] is False
            events = json.loads(await _weshclient(socket, "--json", "events"))
            assert "config_reloaded" in [e["kind"] for e in events]
            await wait_until(lambda: "Polling summary:" in "".join(lines), what="a summary")
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await reader
    log = "".join(lines)
    assert proc.returncode == 0, log
    assert not socket.exists()
    assert log.count("Box dead is down") == 1, log  # once, however many polls failed
    assert "SIGHUP: reloading" in log and "reloaded: 1 added" in log
    assert "Polling summary:" in log
    assert "Stopping (SIGTERM)" in log and "weshd stopped" in log
    assert "Traceback" not in log


def test_the_systemd_unit_uses_valid_weshd_command_lines() -> None:
    unit = (REPO / "contrib" / "weshd.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key in ("ExecStart", "ExecStartPre"):
        program, *args = settings[key].split()
        assert program == "/usr/bin/weshd"
        command = weshd.commands[args[0]]
        with command.make_context(args[0], args[1:]) as sub:
            assert sub.params["config_path"] == Path("/etc/wesh/weshd.toml")
