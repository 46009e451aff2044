"""A running simulated box: model + SD card + faults + logs, and its request logic.

No sockets here: :class:`VirtualBox` answers an HTTP request as an :class:`HttpReply`
(status, headers, body, or "drop the connection") and an M2M command as text; the
servers in :mod:`wesh.sim.http`, :mod:`wesh.sim.ftp` and :mod:`wesh.sim.m2m` only move
bytes. Before answering, the box integrates its model up to the clock's time.

HTTP behaviour (wes.md §2, §3; ``[I]`` marks our inferences)::

    no or bad Basic credentials        401, WWW-Authenticate: Basic realm="serveur WES"
    user account on an admin page      403 (pages whose name holds "cfg", and commands)
    /                                  /index.htm
    <name>.cgx / <name>.cgi            template on the SD card rendered (text/xml / text/html)
    RL.cgi, RL.cgx, AJAX.cgx + query   commands: rl<n>=ON|OFF (9 = both), frl=<n>,
                                       vs<n>=ON|OFF, fvs=<n> (also sw<n>, fsw), alarme=ON|OFF,
                                       razpls=<n>, razpce=<n> (counter reset, our choice),
                                       reset=yes (reboot: the connection is dropped)
    other files                        served as they are; missing → 404
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from wesh.errors import DecodeError, UsageError
from wesh.sim.box import SimulatedBox
from wesh.sim.cgxvalues import CgxValues
from wesh.sim.clock import Clock
from wesh.sim.faults import (
    NO_FAULTS,
    Fault,
    FaultKind,
    FaultState,
    RequestFaults,
    malform_document,
    truncate_document,
)
from wesh.sim.logs import LogRecorder
from wesh.sim.m2mlogic import m2m_answer
from wesh.sim.model import BoxState, Firmware
from wesh.sim.sdcard import SdCard
from wesh.sim.site import install_site
from wesh.wes.cgx import CgxLine, parse_template, render_template

__all__ = [
    "REALM",
    "Credentials",
    "HttpReply",
    "Role",
    "VirtualBox",
    "pause",
]

_LOG = logging.getLogger(__name__)

REALM = "serveur WES"
_COMMAND_PAGES = frozenset({"rl.cgi", "rl.cgx", "ajax.cgx"})
_TYPES = {
    ".cgx": "text/xml",
    ".xml": "text/xml",
    ".cgi": "text/html",
    ".htm": "text/html",
    ".html": "text/html",
    ".inc": "text/html",
    ".js": "application/javascript",
    ".css": "text/css",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
}
_TEMPLATE_CACHE_SIZE = 64
_templates: OrderedDict[tuple[bytes, Firmware], list[CgxLine]] = OrderedDict()


class Role(StrEnum):
    """Who is asking: the admin account or the read-only user account."""

    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The box's accounts (defaults: wes.md §2.1 and §5; the user account is our choice)."""

    admin: tuple[str, str] = ("admin", "wes")
    user: tuple[str, str] = ("user", "wes")
    ftp: tuple[str, str] = ("adminftp", "wesftp")

    def role(self, authorization: str | None) -> Role | None:
        """Return the role of an ``Authorization`` header, ``None`` if absent or wrong."""
        if not authorization or authorization[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return None
        user, _, password = decoded.partition(":")
        if (user, password) == self.admin:
            return Role.ADMIN
        if (user, password) == self.user:
            return Role.USER
        return None


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The answer to one HTTP request; ``drop`` closes the connection without answering."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


_UNAUTHORIZED = HttpReply(
    401,
    b"<html><body><h1>401 Unauthorized</h1></body></html>\n",
    "text/html",
    (("WWW-Authenticate", f'Basic realm="{REALM}"'),),
)
_FORBIDDEN = HttpReply(403, b"<html><body><h1>403 Forbidden</h1></body></html>\n", "text/html")
_NOT_FOUND = HttpReply(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html")
_SERVER_ERROR = HttpReply(
    500, b"<html><body><h1>500 Internal Server Error</h1></body></html>\n", "text/html"
)
DROP = HttpReply(0, drop=True)


def _parsed_template(data: bytes, firmware: Firmware) -> list[CgxLine]:
    """Parse a template once (cached by content: many boxes share the same files)."""
    key = (data, firmware)
    lines = _templates.get(key)
    if lines is None:
        lines = parse_template(data.decode("latin-1"), firmware=firmware)
        _templates[key] = lines
        if len(_templates) > _TEMPLATE_CACHE_SIZE:
            _templates.popitem(last=False)
    else:
        _templates.move_to_end(key)
    return lines


class VirtualBox:
    """One simulated box at run time (no I/O).

    Args:
        model: the box model.
        clock: the simulated clock.
        credentials: its accounts.
        logs: a recorder for its daily CSV logs (``None``: no logs).
        reboot_s: real seconds the box stays unreachable after a reboot.
        monotonic: the real-time source (for reboot downtime).
    """

    def __init__(
        self,
        model: SimulatedBox,
        *,
        clock: Clock,
        credentials: Credentials | None = None,
        logs: LogRecorder | None = None,
        reboot_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.clock = clock
        self.credentials = credentials or Credentials()
        self.card = SdCard()
        self.faults = FaultState.seeded(model.identity.seed, model.identity.index)
        self.logs = logs
        self.reboot_s = reboot_s
        self._monotonic = monotonic
        self._down_until = 0.0
        self._leaks: dict[int, float] = {}
        self._logs_written = -1
        self._cache: tuple[tuple[object, ...], bytes] | None = None
        install_site(self.card, model.identity.firmware, mtime=clock.timestamp())
        if logs is not None:
            model.set_sampler(logs.record, every_s=logs.interval_s)

    @property
    def index(self) -> int:
        """The box number in its farm."""
        return self.model.identity.index

    # -- state ----------------------------------------------------------------------

    def sync(self) -> None:
        """Integrate the model up to the clock's time."""
        self.model.advance_to(self.clock.timestamp())

    def state(self, faults: RequestFaults = NO_FAULTS) -> BoxState:
        """Return the box's state now, as seen through a request's faults."""
        self.sync()
        return self.model.state(skew_s=faults.skew_s, unplugged=faults.unplugged)

    def write_logs(self) -> None:
        """Write the CSV logs kept by the recorder to the SD card (when they changed)."""
        if self.logs is None or self.logs.version == self._logs_written:
            return
        mtime = self.clock.timestamp()
        for path, text in self.logs.files().items():
            self.card.write(path, text.encode("iso-8859-1"), mtime=mtime)
        self._logs_written = self.logs.version

    @property
    def down(self) -> bool:
        """True while the box is rebooting or dead (connections are dropped)."""
        return self.faults.dead or self._monotonic() < self._down_until

    # -- faults ---------------------------------------------------------------------

    def set_fault(self, fault: Fault | str) -> None:
        """Set a fault (a :class:`Fault` or its text, ``"latency=2"``); plain events happen now.

        A state fault (leak, temp, humidity, overload) acts from the clock's time on.
        """
        parsed = Fault.parse(fault) if isinstance(fault, str) else fault
        if parsed.kind.is_state:
            self.sync()
        self.faults.add(parsed)
        if parsed.kind.is_state:
            self._apply_states()
        for event in self.faults.take_pending():
            self.apply_event(event)

    def clear_faults(self, kind: FaultKind | str | None = None) -> None:
        """Remove every fault, or those of one kind (a state fault ends at the clock's time)."""
        self.sync()
        self.faults.clear(FaultKind.named(kind) if isinstance(kind, str) else kind)
        self._apply_states()

    def _apply_states(self) -> None:
        """Give the model what the state faults set now say (later faults win for probes)."""
        model = self.model
        leaks: dict[int, float] = {}
        probes: dict[int, float] = {}
        overloaded: set[int] = set()
        kinds = model.probe_kinds
        for fault in self.faults.states():
            value = fault.value
            if fault.kind is FaultKind.OVERLOAD:
                overloaded.add(value if isinstance(value, int) else 1)
            elif not isinstance(value, int | float):
                continue
            elif fault.kind is FaultKind.LEAK:
                number = fault.number or 1
                leaks[number] = leaks.get(number, 0.0) + float(value)
            else:
                wanted = "temperature" if fault.kind is FaultKind.TEMP else "humidity"
                numbers: list[int] = (
                    [fault.number]
                    if fault.number is not None
                    else [n for n, kind in enumerate(kinds, start=1) if kind == wanted]
                )
                for number in numbers:
                    if number > len(kinds):
                        _LOG.warning("box %d: no probe %d for %s", self.index, number, fault)
                    probes[number] = float(value)
        if leaks != self._leaks:
            model.set_leaks(leaks)
            self._leaks = leaks
        if probes != dict(model.probe_overrides):
            model.probe_overrides = probes
        if overloaded != model.overloaded:
            model.overloaded = overloaded

    def draw_faults(self) -> RequestFaults:
        """Decide the faults of the next request and apply its events (except reboot)."""
        draw = self.faults.draw()
        for event in draw.events:
            if event.kind is not FaultKind.REBOOT:
                self.apply_event(event)
        return draw

    def apply_event(self, fault: Fault) -> None:
        """Make an event fault happen now (reset, meter replacement, reboot, burst)."""
        self.sync()
        if fault.kind is FaultKind.BURST:
            counter = fault.number or 1
            litres = fault.value
            if isinstance(litres, int | float) and counter <= len(self.model.state().counters):
                self.model.add_burst(counter, float(litres))
                _LOG.info("box %d: burst of %g l on counter %d", self.index, litres, counter)
        elif fault.kind is FaultKind.RESET:
            number = fault.value if isinstance(fault.value, int) else None
            if number is None or number <= len(self.model.state().counters):
                self.model.reset_counter(number)
        elif fault.kind is FaultKind.REPLACE:
            adco = self.model.replace_meter()
            _LOG.info("box %d: TIC1 meter replaced, new ADCO %s", self.index, adco)
        elif fault.kind is FaultKind.REBOOT:
            self.reboot(keep_counters=fault.value != "lose")

    def reboot(self, *, keep_counters: bool = True) -> None:
        """Restart the box: unreachable for ``reboot_s`` seconds."""
        self.sync()
        self.model.reboot(keep_counters=keep_counters)
        self._down_until = self._monotonic() + self.reboot_s
        _LOG.info("box %d: reboot (counters %s)", self.index, "kept" if keep_counters else "lost")

    # -- HTTP -----------------------------------------------------------------------

    def http(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        *,
        authorization: str | None,
        faults: RequestFaults = NO_FAULTS,
    ) -> HttpReply:
        """Answer one request (after the server applied latency and timeout faults)."""
        if faults.dead:
            return DROP
        if any(e.kind is FaultKind.REBOOT for e in faults.events):
            event = next(e for e in faults.events if e.kind is FaultKind.REBOOT)
            self.apply_event(event)
            return DROP
        role = self.credentials.role(authorization)
        if role is None:
            return _UNAUTHORIZED
        if faults.http500:
            return _SERVER_ERROR
        if method not in ("GET", "HEAD", "POST"):
            return HttpReply(405, b"", "text/html", (("Allow", "GET, HEAD, POST"),))
        clean = "/" + unquote(path).lstrip("/")
        if clean == "/":
            clean = "/index.htm"
        name = clean.rsplit("/", 1)[-1].casefold()
        if name in _COMMAND_PAGES:
            if query:
                if role is not Role.ADMIN:
                    return _FORBIDDEN
                if not self.command(query):
                    return DROP  # reset=yes: the box restarts at once
            return self._damaged(self._command_reply(name), faults)
        if "cfg" in name and name.endswith((".htm", ".html", ".cgi")) and role is not Role.ADMIN:
            return _FORBIDDEN
        try:
            real = self.card.real_path(clean)
        except UsageError:
            return _NOT_FOUND  # a name FAT cannot hold
        entry = self.card.entry(clean)
        if real is None or entry is None or entry.data is None:
            return _NOT_FOUND
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        content_type = _TYPES.get(suffix, "application/octet-stream")
        if suffix not in (".cgx", ".cgi"):
            return HttpReply(200, entry.data, content_type)
        return self._damaged(self._render(real, entry.data, entry.version, faults), faults)

    def _render(self, path: str, data: bytes, version: int, faults: RequestFaults) -> HttpReply:
        self.sync()
        suffix = path.rsplit(".", 1)[-1].casefold()
        content_type = "text/xml" if suffix == "cgx" else "text/html"
        per_request = faults.skew_s is not None or bool(faults.unplugged)
        key = (path, version, self.model.version, self.card.writes)
        if not per_request and self._cache is not None and self._cache[0] == key:
            return HttpReply(200, self._cache[1], content_type)
        firmware = self.model.identity.firmware
        try:
            lines = _parsed_template(data, firmware)
        except DecodeError as exc:
            _LOG.warning("box %d: template %s is broken: %s", self.index, path, exc)
            return HttpReply(500, f"template error: {exc}\n".encode(), "text/plain")
        folder = path.rsplit("/", 1)[0]

        def include(name: str) -> str:
            found = self.card.read(f"{folder}/{name}") or self.card.read(name)
            return found.decode("latin-1") if found is not None else ""

        state = self.model.state(skew_s=faults.skew_s, unplugged=faults.unplugged)
        text = render_template(lines, CgxValues(state), include=include, firmware=firmware)
        body = text.encode("latin-1", errors="replace")
        if not per_request:
            self._cache = (key, body)
        return HttpReply(200, body, content_type)

    @staticmethod
    def _damaged(reply: HttpReply, faults: RequestFaults) -> HttpReply:
        if reply.status != 200 or not (faults.truncated or faults.malformed):
            return reply
        body = reply.body
        if faults.malformed:
            body = malform_document(body, faults.damage)
        if faults.truncated:
            body = truncate_document(body, faults.cut)
        return HttpReply(200, body, reply.content_type, reply.headers)

    # -- commands -------------------------------------------------------------------

    def command(self, query: Mapping[str, str]) -> bool:
        """Apply the commands of a query; return ``False`` when the box reboots."""
        self.sync()
        model = self.model
        for key, raw in query.items():
            name = key.casefold()
            value = raw.strip().upper()
            try:
                if name == "reset" and value == "YES":
                    self.reboot()
                    return False
                if name.startswith("rl") and name[2:].isdigit():
                    number = int(name[2:])
                    if number in (1, 2, 9):
                        model.set_relay(number, _on_off(value))
                    # 1-Wire relays (101..198): no card is fitted, nothing happens
                elif name == "frl":
                    model.toggle_relay(int(value))
                elif name[:2] in ("vs", "sw") and name[2:].isdigit():
                    model.set_switch(int(name[2:]), _on_off(value))
                elif name in ("fvs", "fsw"):
                    model.toggle_switch(int(value))
                elif name == "alarme":
                    model.set_alarm(_on_off(value))
                elif name == "razpls":
                    model.reset_counter(int(value))
                elif name == "razpce":
                    model.reset_clamp(int(value))
                else:
                    _LOG.debug("box %d: unknown command %s=%s ignored", self.index, key, raw)
            except (UsageError, ValueError) as exc:
                _LOG.warning("box %d: bad command %s=%s ignored: %s", self.index, key, raw, exc)
        return True

    def _command_reply(self, page: str) -> HttpReply:
        state = self.model.state()
        if page == "rl.cgi":
            return HttpReply(200, b"<html><body>OK</body></html>\n", "text/html")
        lines = ['<?xml version="1.0" encoding="utf-8" ?>', "<data>", "<relais>"]
        lines += [
            f"<RELAIS{n}>{'ON' if on else 'OFF'}</RELAIS{n}>"
            for n, on in enumerate(state.relays, start=1)
        ]
        lines.append("</relais>")
        if page == "ajax.cgx":
            lines.append("<switch_virtuel>")
            lines += [
                f"<SWITCH{n}>{int(on)}</SWITCH{n}>" for n, on in enumerate(state.switches, start=1)
            ]
            lines.append("</switch_virtuel>")
        lines.append("</data>")
        return HttpReply(200, ("\n".join(lines) + "\n").encode(), "text/xml")

    # -- M2M ------------------------------------------------------------------------

    def m2m(self, command: str, faults: RequestFaults = NO_FAULTS) -> str | None:
        """Answer one M2M command line; ``None`` when the box drops the connection."""
        if faults.dead:
            return None
        if any(e.kind is FaultKind.REBOOT for e in faults.events):
            event = next(e for e in faults.events if e.kind is FaultKind.REBOOT)
            self.apply_event(event)
            return None
        self.sync()
        return m2m_answer(self.model, command, faults=faults)

    # -- description ----------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """Return a JSON-ready summary of the box (identity, faults)."""
        identity = self.model.identity
        return {
            "index": identity.index,
            "name": identity.name,
            "kind": identity.kind.value,
            "building": identity.building,
            "firmware": identity.firmware_text,
            "hardware": identity.hardware.value,
            "mac": identity.mac,
            "adco": identity.adco,
            "faults": [str(f) for f in self.faults.faults],
        }


async def pause(seconds: float, closing: asyncio.Event) -> None:
    """Wait ``seconds`` (a latency fault), or less if the farm is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing.wait(), seconds)


def _on_off(value: str) -> bool:
    if value in ("ON", "1"):
        return True
    if value in ("OFF", "0"):
        return False
    raise UsageError(f"expected ON or OFF, not {value!r}")
