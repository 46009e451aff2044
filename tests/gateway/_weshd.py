"""Helpers of the weshd integration tests: configurations for simulated boxes, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory under /tmp (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="weshd-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    """A loopback TCP port nobody listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def box_toml(
    box_id: str,
    port: int,
    *,
    interval_s: float = 0.5,
    timeout_s: float = 2.0,
    extra: Mapping[str, object] | None = None,
) -> str:
    """One ``[[boxes]]`` table for a simulated WES on 127.0.0.1:port."""
    lines = [
        "[[boxes]]",
        f'id = "{box_id}"',
        f'serves = "logement-{box_id}"',
        'host = "127.0.0.1"',
        f"port = {port}",
        f"poll_interval_s = {interval_s}",
        f"timeout_s = {timeout_s}",
    ]
    for key, value in (extra or {}).items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def config_toml(
    state_dir: Path,
    boxes: Sequence[str],
    *,
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 2.0,
    jitter_s: float = 0.1,
    extra: str = "",
) -> str:
    """A whole weshd.toml: site, state_dir, socket in the state dir, fast polling."""
    head = f"""\
state_dir = "{state_dir}"

[site]
id = "test-site"
name = "Test site"

[api]
socket = "weshd.sock"

[poll]
max_concurrency = 8
jitter_s = {jitter_s}
backoff_initial_s = {backoff_initial_s}
backoff_max_s = {backoff_max_s}

{extra}
"""
    return head + "\n".join(boxes)


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Wait (checking every 20 ms) until ``predicate()`` is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def weshd_command(*args: str) -> list[str]:
    """The command line of ``weshd`` run with this interpreter."""
    return [sys.executable, "-c", "from wesh.cli import weshd_main; weshd_main()", *args]


def weshd_env(**extra: str) -> dict[str, str]:
    """An environment for a weshd subprocess: nothing inherited from a systemd unit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WESHD_", "NOTIFY_", "WATCH"))}
    env.update(extra)
    return env


def readings_by_poll(db: Path) -> dict[tuple[str, int], int]:
    """Rows per (box, poll time in ms) of a store file, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT c.box, r.at_ms, count(*) FROM readings AS r "
            "JOIN channels AS c ON c.id = r.channel_id GROUP BY c.box, r.at_ms"
        ).fetchall()
    return {(box, at): n for box, at, n in rows}


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> None:
    """Make sure a subprocess started by a test is gone."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=timeout_s)
