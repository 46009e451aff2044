"""SMS through the real gammu-smsd, files backend: outbox files out, hook spool in.

Directories (one gammu-smsd per modem; :meth:`GammuPaths.under` lays them out)::

    outbox/  we write  OUTC<YYYYMMDD>_<HHMMSS>_00_<+number>_<tag>.txt   (smsd sends, then
    sent/    smsd moves it here once the modem took it  ─┐                 moves the file)
    error/   … or here when sending failed             ─┴─ we watch both for the receipt
    inbox/   smsd writes IN….txt here (NOT read by us: not atomic, parts in separate files)
    spool/   the RunOnReceive hook (wesh.sync.gammu_hook) writes one <time>-….json per
             received message, atomically; we read and delete them

Sending: the text (GSM-safe ASCII, see :mod:`wesh.sync.transport`) is written to
``outbox/.<name>``, synced, then renamed to ``<name>``: smsd ignores dot-files, so it never
reads half a file. A text longer than 160 characters is one file, which smsd sends as one
concatenated SMS (parts of 153 characters with a UDH). Names sort in sending order
(smsd takes the alphabetically first): the time, then a per-process sequence number,
then random hex. The queue is the outbox itself: nothing lives only in memory, so
messages survive a restart of smsd or of this process (:meth:`GammuTransport.queued`,
:meth:`GammuTransport.track`). Because the text is plain ASCII, the locale of smsd cannot
mangle it (gammu.md pitfall 2), though smsd should still run under ``LANG=C.UTF-8``.

Receiving: see :mod:`wesh.sync.gammu_hook` for why the hook, and not the inbox, is read.
A record is deleted when the consumer asks for the next message, so a crash while
processing one delivers it again (at least once). A record that cannot be read is moved
to ``spool/bad/`` and counted in ``errors``; nothing is deleted unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import shlex
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wesh.errors import ConnectionFailed, DecodeError, TransientError, UsageError
from wesh.sync.gammu_hook import parse_record
from wesh.sync.transport import (
    SMS_MAX_PARTS,
    Message,
    SendReceipt,
    SendStatus,
    TransportStats,
    check_e164,
    check_text,
    redact_in,
    sms_parts,
)

__all__ = [
    "GammuPaths",
    "GammuTransport",
    "hook_command",
    "outbox_name",
    "parse_outbox_name",
    "smsdrc_text",
]

_LOG = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- pure: names, config


def outbox_name(number: str, at: datetime, tag: str) -> str:
    """Name an outbox file that smsd sends to ``number`` (gammu.md section 5.1).

    ``tag`` must be letters and digits only (smsd splits the name on ``_``).
    """
    check_e164(number)
    if not tag.isascii() or not tag.isalnum():
        raise UsageError(f"outbox tag {tag!r} must be ASCII letters and digits", where="tag")
    return f"OUTC{at.astimezone(UTC):%Y%m%d_%H%M%S}_00_{number}_{tag}.txt"


def parse_outbox_name(name: str) -> str | None:
    """Return the recipient of an outbox file named by :func:`outbox_name`, else ``None``."""
    if not (name.startswith("OUTC") and name.endswith(".txt")):
        return None
    fields = name[4:-4].split("_")
    if len(fields) != 5 or not fields[3].startswith("+"):
        return None
    return fields[3]


def hook_command(spool: Path | str, *, python: str = sys.executable) -> str:
    """Return the ``runonreceive`` command that feeds ``spool`` (smsd runs it with ``sh -c``)."""
    return shlex.join([python, "-m", "wesh.sync.gammu_hook", str(spool)])


@dataclass(frozen=True, slots=True)
class GammuPaths:
    """The directories shared by gammu-smsd and :class:`GammuTransport`."""

    outbox: Path
    sent: Path
    error: Path
    inbox: Path
    spool: Path

    @classmethod
    def under(cls, root: Path | str) -> GammuPaths:
        """``root/{outbox,sent,error,inbox,spool}``."""
        base = Path(root)
        return cls(
            outbox=base / "outbox",
            sent=base / "sent",
            error=base / "error",
            inbox=base / "inbox",
            spool=base / "spool",
        )

    def create(self) -> None:
        """Create every directory (smsd does not create them)."""
        for path in (self.outbox, self.sent, self.error, self.inbox, self.spool):
            path.mkdir(parents=True, exist_ok=True)


def smsdrc_text(
    paths: GammuPaths,
    *,
    device: str,
    connection: str = "at",
    model: str = "",
    logfile: Path | str = "syslog",
    runonreceive: str | None = None,
    extra: Mapping[str, str | int] | None = None,
) -> str:
    """Write a gammu-smsd configuration (files backend) wired to :class:`GammuTransport`.

    It carries the settings gammu.md found necessary: ``inboxformat = standard`` (not the
    buggy ``unicode`` of 1.42), ``outboxformat = detail``, ``transmitformat = auto``, and
    fast polling (``receivefrequency = 0``, ``commtimeout = 0``, ``loopsleep = 1``).
    ``extra`` adds or overrides ``[smsd]`` keys (``pin``, ``multiparttimeout``, …).
    """
    smsd: dict[str, str | int] = {
        "service": "files",
        "logfile": str(logfile),
        "debuglevel": 0,
        "inboxpath": f"{paths.inbox}/",
        "outboxpath": f"{paths.outbox}/",
        "sentsmspath": f"{paths.sent}/",
        "errorsmspath": f"{paths.error}/",
        "inboxformat": "standard",
        "outboxformat": "detail",
        "transmitformat": "auto",
        "receivefrequency": 0,
        "commtimeout": 0,
        "loopsleep": 1,
        "statusfrequency": 0,
        "multiparttimeout": 600,
        "runonreceive": runonreceive or hook_command(paths.spool),
    }
    smsd.update(extra or {})
    gammu: dict[str, str | int] = {"model": model, "connection": connection, "device": device}
    for key, value in [*gammu.items(), *smsd.items()]:
        if "\n" in str(value) or "\r" in str(value):
            raise UsageError(f"{key} must be one line", where=key)
    lines = ["[gammu]", *(f"{k} = {v}" for k, v in gammu.items()), "", "[smsd]"]
    lines += [f"{k} = {v}" for k, v in smsd.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- I/O helpers


def _write_atomic(directory: Path, name: str, text: str) -> None:
    temporary = directory / f".{name}"
    try:
        with temporary.open("x", encoding="ascii", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    handle_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle_fd)
    finally:
        os.close(handle_fd)


def _spool_names(spool: Path) -> list[str]:
    with os.scandir(spool) as entries:
        return sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(".json") and not entry.name.startswith(".")
        )


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    sent_parts: int = 0
    confirmed: int = 0
    failed: int = 0
    received: int = 0
    received_parts: int = 0
    errors: int = 0


@dataclass(slots=True)
class _Tracked:
    receipt: SendReceipt
    missing_since: float | None = None
    extra: list[SendReceipt] = field(default_factory=list)


# ----------------------------------------------------------------------------- the transport


class GammuTransport:
    """SMS through a running gammu-smsd (files backend); see the module docstring.

    Args:
        paths: the directories shared with smsd (its config must match; see
            :func:`smsdrc_text`).
        name: the transport's name in receipts, logs and errors.
        poll_s: how often the spool, ``sent/`` and ``error/`` are looked at.
        max_parts: longest text accepted, in SMS parts.
        vanish_after_s: a queued file found in none of outbox, ``sent/`` and ``error/`` for
            this long is reported failed (someone removed it).
        now: the wall clock (names of outbox files).
    """

    def __init__(
        self,
        paths: GammuPaths,
        *,
        name: str = "gammu",
        poll_s: float = 0.25,
        max_parts: int = SMS_MAX_PARTS,
        vanish_after_s: float = 10.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 1 <= max_parts <= SMS_MAX_PARTS:
            raise UsageError(f"max_parts must be 1..{SMS_MAX_PARTS}", where="max_parts")
        self.name = name
        self.paths = paths
        self._poll_s = poll_s
        self._max_parts = max_parts
        self._vanish_after_s = vanish_after_s
        self._now = now
        self._sequence = itertools.count()
        self._tracked: dict[str, _Tracked] = {}
        self._counters = _Counters()
        self._watcher: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._spool_missing_logged = False

    # ---------------------------------------------------------------- sending

    async def send(self, peer: str, text: str) -> SendReceipt:
        """Write ``text`` for ``peer`` into smsd's outbox; the receipt follows ``sent/``.

        Raises:
            UsageError: ``peer`` is not E.164, or the text cannot be carried.
            TransientError: the outbox cannot be written (missing, disk full); nothing
                was queued.
        """
        check_e164(peer)
        check_text(text, max_parts=self._max_parts)
        if self._closed.is_set():
            raise UsageError("transport is closed", host=self.name)
        tag = f"w{next(self._sequence) % 1_000_000:06d}{secrets.token_hex(3)}"
        name = outbox_name(peer, self._now(), tag)
        try:
            await asyncio.to_thread(_write_atomic, self.paths.outbox, name, text)
        except FileNotFoundError as exc:
            self._counters.errors += 1
            raise ConnectionFailed(
                "gammu-smsd outbox is missing", host=self.name, where=str(self.paths.outbox)
            ) from exc
        except OSError as exc:
            self._counters.errors += 1
            raise TransientError(
                f"cannot write to gammu-smsd outbox: {exc.strerror or exc}",
                host=self.name,
                where=str(self.paths.outbox),
            ) from exc
        parts = sms_parts(text)
        self._counters.sent += 1
        self._counters.sent_parts += parts
        _LOG.debug("queued SMS %s (%d parts)", redact_in(name, peer), parts)
        return self._track(name, peer, parts)

    def queued(self) -> list[str]:
        """Names of the files waiting in the outbox, in sending order (a durable queue)."""
        try:
            with os.scandir(self.paths.outbox) as entries:
                return sorted(
                    e.name
                    for e in entries
                    if e.name.startswith("OUT") and not e.name.startswith(".")
                )
        except OSError as exc:
            raise ConnectionFailed(
                "gammu-smsd outbox cannot be listed", host=self.name, where=str(self.paths.outbox)
            ) from exc

    def track(self, name: str) -> SendReceipt:
        """Return a receipt for an outbox file queued earlier (by this or another process)."""
        peer = parse_outbox_name(name)
        if peer is None or "/" in name:
            raise UsageError(f"{name!r} is not an outbox file name of wesh", where="name")
        parts = 1
        with contextlib.suppress(OSError):
            parts = sms_parts("x" * (self.paths.outbox / name).stat().st_size)
        return self._track(name, peer, parts)

    def _track(self, name: str, peer: str, parts: int) -> SendReceipt:
        receipt = SendReceipt(transport=self.name, id=name, peer=peer, parts=parts)
        known = self._tracked.get(name)
        if known is None:
            self._tracked[name] = _Tracked(receipt)
        else:
            known.extra.append(receipt)
        self._start_watcher()
        return receipt

    def _start_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name=f"{self.name}-sent-watch")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._tracked and not self._closed.is_set():
            for name, tracked in list(self._tracked.items()):
                outcome = self._outcome(name)
                if outcome is None:
                    if (self.paths.outbox / name).exists():
                        tracked.missing_since = None
                        continue
                    if tracked.missing_since is None:
                        tracked.missing_since = loop.time()
                        continue
                    if loop.time() - tracked.missing_since < self._vanish_after_s:
                        continue
                    outcome = SendStatus.FAILED, "the outbox file vanished"
                status, detail = outcome
                del self._tracked[name]
                for receipt in [tracked.receipt, *tracked.extra]:
                    receipt.resolve(status, detail)
                if status is SendStatus.SENT:
                    self._counters.confirmed += 1
                else:
                    self._counters.failed += 1
                    peer = tracked.receipt.peer
                    _LOG.warning("SMS %s failed: %s", redact_in(name, peer), detail)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._closed.wait()

    def _outcome(self, name: str) -> tuple[SendStatus, str | None] | None:
        if (self.paths.sent / name).exists():
            return SendStatus.SENT, None
        if (self.paths.error / name).exists():
            return SendStatus.FAILED, "gammu-smsd moved it to error/ (see its log)"
        return None

    # ---------------------------------------------------------------- receiving

    async def messages(self) -> AsyncIterator[Message]:
        """Received messages from the hook's spool, oldest first, at least once.

        A record is deleted when the next message is asked for; if the consumer stops
        (or crashes) first, it is delivered again next time. Use one consumer at a time.
        """
        spool = self.paths.spool
        while not self._closed.is_set():
            try:
                names = await asyncio.to_thread(_spool_names, spool)
            except OSError as exc:
                names = []
                if not self._spool_missing_logged:
                    self._spool_missing_logged = True
                    self._counters.errors += 1
                    _LOG.warning("SMS spool %s cannot be read: %s", spool, exc)
            else:
                if self._spool_missing_logged:
                    self._spool_missing_logged = False
                    _LOG.info("SMS spool %s is readable again", spool)
            for spool_name in names:
                if self._closed.is_set():
                    return
                path = spool / spool_name
                message = self._read(path)
                if message is None:
                    continue
                self._counters.received += 1
                self._counters.received_parts += message.parts
                yield message
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._closed.wait()

    def _read(self, path: Path) -> Message | None:
        try:
            record = parse_record(path.read_bytes(), where=str(path))
        except FileNotFoundError:
            return None
        except (OSError, DecodeError) as exc:
            self._counters.errors += 1
            self._quarantine(path, exc)
            return None
        if not record.text:
            self._counters.errors += 1
            files = redact_in(" ".join(record.files), record.number)
            self._quarantine(path, f"no text (8-bit data?) in inbox files {files}")
            return None
        return Message(
            peer=record.number,
            text=record.text,
            received_at=record.received_at,
            parts=max(1, record.parts),
        )

    def _quarantine(self, path: Path, reason: Exception | str) -> None:
        bad = path.parent / "bad"
        try:
            bad.mkdir(exist_ok=True)
            path.rename(bad / path.name)
        except OSError as exc:
            _LOG.error("unreadable SMS spool record %s (%s) cannot be moved: %s", path, reason, exc)
        else:
            _LOG.warning("unreadable SMS spool record moved to %s: %s", bad / path.name, reason)

    # ---------------------------------------------------------------- lifecycle, stats

    async def aclose(self) -> None:
        """Stop watching; queued files stay in the outbox and are still sent by smsd."""
        self._closed.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def stats(self) -> TransportStats:
        """Return a snapshot of the counters."""
        c = self._counters
        return TransportStats(
            sent=c.sent,
            sent_parts=c.sent_parts,
            confirmed=c.confirmed,
            failed=c.failed,
            received=c.received,
            received_parts=c.received_parts,
            errors=c.errors,
        )
