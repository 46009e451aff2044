"""Run the real gammu-smsd on Gammu's dummy phone, wired to GammuTransport (test helper).

Reused by the agent/receiver end-to-end tests. The recipe and its pitfalls are in
/work/shared/gammu.md; in short:

* the dummy phone is a directory; a Gammu SMS-backup (INI) file dropped into
  ``phone/sms/1/<n>`` is an incoming SMS (written elsewhere, then renamed);
* a sent SMS leaves no trace on the phone side: smsd moves the outbox file to ``sent/``;
  :func:`relay` carries such files to another instance's dummy inbox, as the GSM network
  would, cutting long texts into 153-character parts with a concatenation UDH;
* smsd runs under ``LANG=C.UTF-8``, as a foreground child with ``-X`` (self-kill) and
  ``-f`` (give up fast); it is ready when ``phone/operations.log`` appears.

Usage::

    async def test_x(smsd_factory):
        a = smsd_factory("+15550000001")          # started; stopped at teardown
        b = smsd_factory("+15550000002")
        ta, tb = a.transport(), b.transport()
        receipt = await ta.send(b.number, "HELLO")
        await receipt.wait(10)
        relay(a, b)                                # A's sent/ -> B's dummy inbox
        message = await anext(tb.messages())
        async with relaying(a, b), relaying(b, a):  # a GSM network both ways, in background
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wesh.sync.gammu import GammuPaths, GammuTransport, hook_command, smsdrc_text
from wesh.sync.transport import split_sms

T = TypeVar("T")

__all__ = [
    "DummySmsd",
    "eventually",
    "gammu_smsd_binary",
    "relay",
    "relaying",
    "smsd_factory",
]


def gammu_smsd_binary() -> str:
    """The gammu-smsd program; missing: a failure under CI=true, else a skip."""
    found = shutil.which("gammu-smsd")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gammu-smsd is required under CI (apt-get install gammu-smsd)")
        pytest.skip("gammu-smsd is not installed")
    return found


async def eventually(
    predicate: Callable[[], T | None], *, timeout_s: float = 10.0, step_s: float = 0.05
) -> T:
    """Wait until ``predicate()`` is truthy (polling a real external process)."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(step_s)


def _backup_section(index: int, sender: str, text: str, sent: str, udh: str | None) -> str:
    section = (
        f"[SMSBackup{index:03d}]\n"
        f'Number = "{sender}"\n'
        f"Sent = {sent}\n"
        "State = UnRead\n"
        "Coding = Default_No_Compression\n"
        f"Text00 = {text.encode('utf-16-be').hex()}\n"
    )
    if udh is not None:
        section += f"UDH = {udh}\n"
    return section + "\n"


class DummySmsd:
    """One gammu-smsd (files backend) on a dummy phone, in its own directory.

    Attributes:
        number: this instance's own phone number (the sender of what it sends).
        root: its directory: ``phone/`` (dummy device), ``smsd/`` (GammuPaths), smsdrc, log.
        paths: the directories shared with GammuTransport.
    """

    def __init__(
        self,
        root: Path,
        number: str,
        *,
        multipart_timeout_s: int = 2,
        debuglevel: int = 1,
    ) -> None:
        self.root = root
        self.number = number
        self.paths = GammuPaths.under(root / "smsd")
        self.phone = root / "phone"
        self.config = root / "smsdrc"
        self.log = root / "smsd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._reference = int(time.time()) % 200
        self._location = 0
        (self.phone / "sms" / "1").mkdir(parents=True, exist_ok=True)  # the device dir must exist
        (root / "staging").mkdir(exist_ok=True)
        (root / "relayed").mkdir(exist_ok=True)
        self.paths.create()
        self.config.write_text(
            smsdrc_text(
                self.paths,
                device=str(self.phone),
                connection="none",
                model="dummy",
                logfile=self.log,
                runonreceive=hook_command(self.paths.spool),
                extra={
                    "debuglevel": debuglevel,
                    "checksecurity": 0,
                    "checkbattery": 0,
                    "checksignal": 0,
                    "checknetwork": 0,
                    "multiparttimeout": multipart_timeout_s,
                },
            ),
            encoding="utf-8",
        )

    # ---------------------------------------------------------------- process

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> DummySmsd:
        """Start smsd and wait until the dummy phone is connected (about 0.1 s)."""
        assert self.process is None, "already started"
        ready = self.phone / "operations.log"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")  # pitfall 2: UTF-8 locale
        self.process = subprocess.Popen(
            [gammu_smsd_binary(), "-c", str(self.config), "-X", "300", "-f", "3"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gammu-smsd did not start:\n{self.log_text()}")
            time.sleep(0.01)  # waiting for the external process, not for time
        return self

    def stop(self) -> int | None:
        """Stop smsd (SIGTERM, then SIGKILL); return its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait(timeout=10)
        return process.returncode

    def restart(self) -> DummySmsd:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"

    # ---------------------------------------------------------------- transport

    def transport(self, **kwargs: Any) -> GammuTransport:
        kwargs.setdefault("poll_s", 0.05)
        kwargs.setdefault("name", f"gammu{self.number[-3:]}")
        return GammuTransport(self.paths, **kwargs)

    # ---------------------------------------------------------------- incoming SMS

    def inject(
        self,
        sender: str,
        text: str,
        *,
        drop_parts: Collection[int] = (),
        sent_at: datetime | None = None,
    ) -> int:
        """Make the dummy phone receive ``text`` from ``sender``; return its part count.

        A text longer than 160 characters becomes a concatenated SMS (153 per part, UDH);
        ``drop_parts`` (1-based) leaves parts out, as a network losing them would.
        Only GSM-safe ASCII is supported (what the transports carry).
        """
        parts = split_sms(text)
        sent = (sent_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
        self._reference = (self._reference + 1) % 256
        body = ""
        for index, part in enumerate(parts, start=1):
            if index in drop_parts:
                continue
            udh = None
            if len(parts) > 1:
                udh = f"050003{self._reference:02X}{len(parts):02X}{index:02X}"
            body += _backup_section(index - 1, sender, part, sent, udh)
        if body:
            self._drop_into_inbox(body)
        return len(parts)

    def _drop_into_inbox(self, body: str) -> None:
        inbox = self.phone / "sms" / "1"
        inbox.mkdir(parents=True, exist_ok=True)
        while True:
            self._location += 1
            target = inbox / str(self._location)
            if not target.exists():
                break
        staging = self.root / "staging" / f"in{self._location}"
        staging.write_text(body, encoding="utf-8")
        staging.rename(target)  # atomic: smsd never reads half a backup file

    # ---------------------------------------------------------------- outgoing SMS

    def sent_files(self) -> list[Path]:
        return sorted(self.paths.sent.glob("OUT*.txt"))

    def error_files(self) -> list[Path]:
        return sorted(self.paths.error.glob("OUT*"))


def relay(
    source: DummySmsd,
    *targets: DummySmsd,
    drop_parts: Collection[int] = (),
    only: Callable[[Path], bool] | None = None,
) -> int:
    """Carry what ``source`` sent to the dummy inbox of the target whose number it was.

    Each file of ``source``'s ``sent/`` addressed to a target is injected there as an SMS
    from ``source.number``, then moved to ``source.root/relayed/`` (so a second call does
    not carry it again). Files for other numbers stay. Returns the count carried.
    """
    by_number = {target.number: target for target in targets}
    carried = 0
    for path in source.sent_files():
        if only is not None and not only(path):
            continue
        recipient = path.name[4:-4].split("_")[3]
        target = by_number.get(recipient)
        if target is None:
            continue
        text = path.read_text(encoding="utf-8")
        target.inject(source.number, text, drop_parts=drop_parts)
        path.rename(source.root / "relayed" / path.name)
        carried += 1
    return carried


@contextlib.asynccontextmanager
async def relaying(
    source: DummySmsd, *targets: DummySmsd, period_s: float = 0.05, **options: Any
) -> AsyncIterator[None]:
    """Run :func:`relay` in the background (every ``period_s``) while the block runs.

    For two-way traffic, nest two: ``relaying(site, hq)`` and ``relaying(hq, site)``.
    """

    async def loop() -> None:
        while True:
            relay(source, *targets, **options)
            await asyncio.sleep(period_s)  # polling the real smsd's sent/ folder

    task = asyncio.create_task(loop(), name="gammu-relay")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        relay(source, *targets, **options)  # what was sent at the very end


@pytest.fixture
def smsd_factory(tmp_path: Path) -> Iterator[Callable[..., DummySmsd]]:
    """Make started DummySmsd instances (``factory(number, **options)``); all stopped after."""
    gammu_smsd_binary()
    started: list[DummySmsd] = []

    def factory(number: str, *, start: bool = True, **options: Any) -> DummySmsd:
        instance = DummySmsd(tmp_path / f"smsd{len(started)}", number, **options)
        started.append(instance)
        return instance.start() if start else instance

    yield factory
    for instance in started:
        instance.stop()
