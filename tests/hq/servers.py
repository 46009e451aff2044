"""Private MariaDB and PostgreSQL servers for the HQ store tests.

Each server runs from a fresh data directory in a temporary folder, listens on 127.0.0.1 on
a free port (and a Unix socket in the folder), trusts its one administrative user without
a password, and trades durability for speed (no fsync). ``stop()`` shuts it down and
removes the folder. Nothing here touches a system-wide server or its configuration.

As root: MariaDB runs with ``--user=root``; PostgreSQL refuses root, so ``initdb`` and
``postgres`` run as ``nobody`` through ``setpriv`` in a folder owned by ``nobody``.

Usable outside pytest (``python -m tests.hq.servers mariadb`` prints a URL and waits).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ServerKind = Literal["mariadb", "postgresql"]

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ServerUnavailable(RuntimeError):
    """The server's programs are not installed on this machine."""


class ServerFailed(RuntimeError):
    """The server's programs are there, but the server did not start."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name, path=_SEARCH_PATH)
        if found:
            return found
    return None


def mariadb_binaries() -> tuple[str, str]:
    """Return the MariaDB server and install-db programs, or raise ServerUnavailable."""
    server = _which("mariadbd", "mysqld")
    install = _which("mariadb-install-db", "mysql_install_db")
    if server is None or install is None:
        raise ServerUnavailable("MariaDB is not installed (Debian package mariadb-server)")
    return server, install


def postgresql_bindir() -> Path:
    """Return the folder of PostgreSQL's ``initdb`` and ``postgres``, or raise."""
    candidates = [Path(path).parent for path in (_which("initdb"), _which("postgres")) if path]
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates += [Path(path) for path in versions]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise ServerUnavailable("PostgreSQL is not installed (Debian package postgresql)")


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class PrivateServer:
    """A running private database server."""

    kind: ServerKind
    workdir: Path
    port: int
    admin_user: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM
    databases: set[str] = field(default_factory=set)

    def url(self, database: str) -> str:
        """Return the SQLAlchemy URL of ``database`` on this server (wesh.hq.db spelling)."""
        scheme = "mysql" if self.kind == "mariadb" else "postgresql"
        return f"{scheme}://{self.admin_user}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        if self.kind == "mariadb":
            import pymysql  # noqa: PLC0415

            conn = pymysql.connect(
                host="127.0.0.1", port=self.port, user=self.admin_user, connect_timeout=10
            )
            try:
                with conn.cursor() as cursor:
                    cursor.execute(statement)
                conn.commit()
            finally:
                conn.close()
        else:
            import psycopg  # noqa: PLC0415

            with psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=self.admin_user,
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            ) as conn:
                conn.execute(statement.encode())

    def ping(self) -> bool:
        """Tell whether the server accepts an administrative connection now."""
        try:
            self._admin("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        return True

    def create_database(self, prefix: str = "wesh_t") -> str:
        """Create an empty database with a unique name (utf8mb4 / UTF8) and return the name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        if self.kind == "mariadb":
            self._admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
        else:
            self._admin(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        self.databases.add(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database` (PostgreSQL: even if in use)."""
        if self.kind == "mariadb":
            self._admin(f"DROP DATABASE IF EXISTS {name}")
        else:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.databases.discard(name)

    def stop(self) -> None:
        """Shut the server down (then kill it if it hangs) and remove its folder."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _run(argv: list[str], log: Path, *, preexec: list[str]) -> None:
    with log.open("ab") as out:
        done = subprocess.run(  # noqa: PLW1510 - the code is checked below with the log
            [*preexec, *argv], stdout=out, stderr=subprocess.STDOUT, timeout=START_TIMEOUT_S
        )
    if done.returncode != 0:
        raise ServerFailed(f"{Path(argv[0]).name} failed ({done.returncode}):\n{_log_tail(log)}")


def _wait_ready(server: PrivateServer, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.kind} exited with {server.process.returncode}:\n{_log_tail(server.log)}"
            )
        if time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(f"{server.kind} did not start in {START_TIMEOUT_S:.0f} s")
        time.sleep(0.05)  # waiting for another process to accept connections


def _port_clash(log: Path) -> bool:
    text = _log_tail(log, 60).lower()
    return "address already in use" in text or "could not create listen socket" in text


def _on_a_free_port(launch: Callable[[int], PrivateServer], log: Path) -> PrivateServer:
    """Launch on a free port until the server listens (another process may take the port)."""
    for _attempt in range(3):
        server = launch(free_port())
        try:
            _wait_ready(server, server.ping)
        except ServerFailed:
            if _port_clash(log):
                continue
            raise
        return server
    raise ServerFailed(f"no free port found:\n{_log_tail(log)}")


def start_mariadb() -> PrivateServer:
    """Start a private MariaDB (root without password over TCP) and return it."""
    server_bin, install_bin = mariadb_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="wesh-mariadb-"))
    data, log = workdir / "data", workdir / "server.log"
    try:
        _run(
            [
                install_bin,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                f"--user={_user_name()}",
            ],
            workdir / "install.log",
            preexec=[],
        )

        def launch(port: int) -> PrivateServer:
            argv = [
                server_bin,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={workdir / 'sock'}",
                f"--pid-file={workdir / 'server.pid'}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-networking=0",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--skip-performance-schema",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_nopad_bin",
                f"--log-error={log}",
            ]
            if os.geteuid() == 0:
                argv.append("--user=root")
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return PrivateServer("mariadb", workdir, port, "root", process, log)

        return _on_a_free_port(launch, log)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _user_name() -> str:
    import pwd  # noqa: PLC0415

    return pwd.getpwuid(os.geteuid()).pw_name


def start_postgresql() -> PrivateServer:
    """Start a private PostgreSQL (user ``wesh``, trusted) and return it."""
    bindir = postgresql_bindir()
    preexec: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as nobody
        setpriv = _which("setpriv")
        if setpriv is None:
            raise ServerUnavailable("running PostgreSQL as root needs setpriv (util-linux)")
        preexec = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        workdir = Path(tempfile.mkdtemp(prefix="wesh-postgresql-", dir="/tmp"))
        shutil.chown(workdir, "nobody", "nogroup")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="wesh-postgresql-"))
    data, log = workdir / "data", workdir / "server.log"
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "wesh",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            workdir / "initdb.log",
            preexec=preexec,
        )

        def launch(port: int) -> PrivateServer:
            argv = [
                *preexec,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(workdir),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=50",
            ]
            with log.open("ab") as out:
                process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
            return PrivateServer("postgresql", workdir, port, "wesh", process, log, signal.SIGINT)

        return _on_a_free_port(launch, log)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


STARTERS: dict[ServerKind, Callable[[], PrivateServer]] = {
    "mariadb": start_mariadb,
    "postgresql": start_postgresql,
}


def main(argv: list[str]) -> int:
    """Start one server, print a database URL, wait for Ctrl-C, stop it."""
    kind = argv[1] if len(argv) > 1 else "mariadb"
    if kind not in STARTERS:
        print("usage: python -m tests.hq.servers mariadb|postgresql")
        return 2
    server = STARTERS[kind]()  # type: ignore[index]
    try:
        print(server.url(server.create_database("wesh_dev")), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv))
