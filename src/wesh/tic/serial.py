"""Read a TIC stream from a serial port: USB adapter, pty or pyserial URL, to :class:`Frame`.

::

    port (pyserial: /dev/ttyUSB0, /dev/pts/3, loop://, socket://host:port, rfc2217://...)
      │  7E1 by default (the meter's framing); 8N1 also works: bit 7 is then the
      │  parity bit and the decoder masks it
      ▼
    bytes ──▶ FrameDecoder (incremental, bounded, resyncs) ──▶ Frame ...

* **Speed detection.** Without ``baudrate`` and ``mode`` the reader opens the port at
  1200 baud (historique), reads for a probe window and keeps the speed if it sees at
  least ``min_probe_groups`` groups whose checksum is valid in either mode; otherwise
  it tries 9600 (standard). The bytes read at the chosen speed are decoded, not lost.
* **Reconnect on unplug.** A read or open failure (``SerialException``/``OSError``,
  e.g. a USB adapter pulled out) is logged once; the port is closed, the decoder reset
  (the partial frame is dropped), and the port reopened after a growing delay. The
  recovery is logged once. After ``ReconnectPolicy.max_attempts`` failed attempts in
  a row, :class:`~wesh.errors.ConnectionFailed` is raised.
* **Errors.** Only wesh errors leave this module: a port that cannot be opened the
  first time raises ``ConnectionFailed``, a malformed port name or speed ``UsageError``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol, Self

import serial

from wesh.errors import ConnectionFailed, DeviceTimeout, UsageError
from wesh.tic.decoder import DecoderStats, FrameDecoder
from wesh.tic.encoder import checksum
from wesh.tic.model import Frame, Mode

__all__ = [
    "PortFactory",
    "ReconnectPolicy",
    "SerialPort",
    "TicSerialReader",
    "count_valid_groups",
]

_LOGGER = logging.getLogger(__name__)

AUTO_BAUDRATES = (1200, 9600)
_FRAMINGS = {
    "7E1": (serial.SEVENBITS, serial.PARITY_EVEN),
    "8N1": (serial.EIGHTBITS, serial.PARITY_NONE),
}
_PROBE_LIMIT = 16384
_GROUP = re.compile(rb"\n([^\n\r]{3,80})\r")


class SerialPort(Protocol):
    """The part of a pyserial port the reader uses."""

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most the port timeout."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


class PortFactory(Protocol):
    """Open a port: ``serial.serial_for_url`` or a test seam with the same keywords."""

    def __call__(
        self,
        url: str,
        *,
        baudrate: int,
        bytesize: int,
        parity: str,
        stopbits: float,
        timeout: float,
    ) -> SerialPort:
        """Return an open port."""
        ...


def _open_with_pyserial(
    url: str, *, baudrate: int, bytesize: int, parity: str, stopbits: float, timeout: float
) -> SerialPort:
    port: SerialPort = serial.serial_for_url(
        url, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits, timeout=timeout
    )
    return port


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Delays between attempts to reopen a lost port (exponential, capped).

    ``max_attempts`` failed attempts in a row raise ``ConnectionFailed`` (``None``:
    try for ever, as a daemon should).
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    factor: float = 2.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s or self.factor < 1:
            raise UsageError("reconnect delays must be 0 <= initial <= max and factor >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise UsageError("max_attempts must be at least 1 (or None)")

    def delays(self) -> Iterator[float]:
        """Yield the delay before each successive attempt."""
        delay = self.initial_delay_s
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            yield delay
            attempt += 1
            delay = min(self.max_delay_s, delay * self.factor)


def count_valid_groups(data: bytes | bytearray) -> int:
    """Count ``LF ... CR`` groups of ``data`` whose checksum is valid in either mode.

    Bit 7 is masked first (8N1 reading of a 7E1 line). Used to recognise the line speed:
    read at the wrong speed, a TIC line gives bytes where valid groups are very rare.
    """
    text = bytes(b & 0x7F for b in data)
    count = 0
    for match in _GROUP.finditer(text):
        body = match.group(1)
        if body[-2] == 0x20 and checksum(body[:-2]) == body[-1]:
            count += 1  # historique: the SP before the checksum is not in the zone
        elif body[-2] == 0x09 and checksum(body[:-1]) == body[-1]:
            count += 1  # standard: the HT before the checksum is in the zone
    return count


class TicSerialReader:
    """Decoded frames from a serial TIC line, with speed detection and reconnection.

    Iterate over it (or over :meth:`frames`) in one thread; :meth:`stop` may be called
    from any thread and ends the iteration within ``read_timeout_s``.

    Args:
        port: a device path (``/dev/ttyUSB0``, a pty) or a pyserial URL (``loop://``,
            ``socket://host:port``).
        mode: the expected mode (``None``: detected per frame). Fixes the speed when
            ``baudrate`` is not given.
        baudrate: the line speed; ``None`` with ``mode=None`` probes 1200 then 9600.
        framing: ``"7E1"`` (the meter's) or ``"8N1"`` (bit 7 carries the parity).
        probe_seconds: how long to listen at each speed when probing.
        min_probe_groups: valid groups needed to accept a speed.
        read_timeout_s: the port read timeout (bounds the reaction to :meth:`stop`).
        reconnect: delays between attempts to reopen a lost port.
        port_factory: opens a port (default ``serial.serial_for_url``).
        clock: monotonic seconds (probe window); sleep: waits between attempts
            (default: a wait that :meth:`stop` interrupts).
    """

    def __init__(
        self,
        port: str,
        *,
        mode: Mode | None = None,
        baudrate: int | None = None,
        framing: str = "7E1",
        probe_seconds: float = 3.0,
        min_probe_groups: int = 3,
        read_timeout_s: float = 0.2,
        read_size: int = 512,
        max_frame_bytes: int = 4096,
        reconnect: ReconnectPolicy | None = None,
        port_factory: PortFactory = _open_with_pyserial,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if framing not in _FRAMINGS:
            raise UsageError(f"framing must be 7E1 or 8N1, not {framing!r}", host=port)
        if baudrate is not None and baudrate <= 0:
            raise UsageError(f"invalid baud rate {baudrate}", host=port)
        if probe_seconds <= 0 or read_timeout_s <= 0 or read_size <= 0 or min_probe_groups < 1:
            raise UsageError("probe window, read timeout, read size and groups must be > 0")
        self._url = port
        self._mode = mode
        self._bytesize, self._parity = _FRAMINGS[framing]
        if baudrate is not None:
            self._candidates: tuple[int, ...] = (baudrate,)
        elif mode is not None:
            self._candidates = (mode.baudrate,)
        else:
            self._candidates = AUTO_BAUDRATES
        self._baudrate: int | None = baudrate or (mode.baudrate if mode else None)
        self._probe_seconds = probe_seconds
        self._min_probe_groups = min_probe_groups
        self._read_timeout_s = read_timeout_s
        self._read_size = read_size
        self._reconnect = reconnect or ReconnectPolicy()
        self._factory = port_factory
        self._clock = clock
        self._stop = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._stop.wait
        self._decoder = FrameDecoder(mode=mode, max_frame_bytes=max_frame_bytes)
        self._port: SerialPort | None = None
        self._reconnects = 0

    # ------------------------------------------------------------------ state

    @property
    def port(self) -> str:
        """The device path or URL read."""
        return self._url

    @property
    def baudrate(self) -> int | None:
        """The line speed in use (``None`` until detected)."""
        return self._baudrate

    @property
    def stats(self) -> DecoderStats:
        """The decoder's counters (frames, groups, checksum errors...)."""
        return self._decoder.stats

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._port is not None

    @property
    def reconnects(self) -> int:
        """How many times the port was lost and reopened."""
        return self._reconnects

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the iteration to end (thread-safe); a blocked read is cancelled."""
        self._stop.set()
        port = self._port
        cancel = getattr(port, "cancel_read", None)
        if callable(cancel):
            try:
                cancel()
            except (OSError, ValueError):  # the port is closing under us: nothing to cancel
                _LOGGER.debug("cancel_read failed on %s", self._url)

    def close(self) -> None:
        """Stop and close the port."""
        self.stop()
        self._close_port()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    # ------------------------------------------------------------------ reading

    def frames(self) -> Generator[Frame, None, None]:
        """Yield decoded frames until :meth:`stop` (EOT-interrupted frames are dropped).

        Raises:
            ConnectionFailed: the port cannot be opened at first, or could not be
                reopened within ``ReconnectPolicy.max_attempts``.
            DeviceTimeout: no speed gave valid groups within the attempts allowed.
            UsageError: the port name or the speed is not acceptable to pyserial.
        """
        try:
            if self._port is None:
                yield from self._decoder.feed(self._connect_first())
            while not self._stop.is_set():
                port = self._port
                if port is None:
                    break
                try:
                    data = port.read(self._read_size)
                except (serial.SerialException, OSError) as exc:
                    if self._stop.is_set():
                        break
                    self._lost(exc)
                    continue
                if data:
                    yield from self._decoder.feed(data)
        finally:
            self._close_port()

    def _connect_first(self) -> bytes:
        """Open the port (probing the speed if needed); return the bytes already read."""
        if len(self._candidates) == 1:
            self._port = self._open(self._candidates[0], first=True)
            return b""
        delays = self._reconnect.delays()
        while not self._stop.is_set():
            for rate in self._candidates:
                if self._stop.is_set():
                    return b""
                port = self._open(rate, first=True)
                data = self._probe(port)
                if count_valid_groups(data) >= self._min_probe_groups:
                    _LOGGER.info("TIC line on %s: %d baud", self._url, rate)
                    self._port = port
                    self._baudrate = rate
                    return data
                port.close()
            delay = next(delays, None)
            if delay is None:
                break
            _LOGGER.warning(
                "no valid TIC group on %s at %s baud; listening again",
                self._url,
                " or ".join(map(str, self._candidates)),
            )
            self._sleep(delay)
        if self._stop.is_set():
            return b""
        raise DeviceTimeout(
            f"no valid TIC group at {' or '.join(map(str, self._candidates))} baud", host=self._url
        )

    def _probe(self, port: SerialPort) -> bytes:
        deadline = self._clock() + self._probe_seconds
        data = bytearray()
        while not self._stop.is_set() and self._clock() < deadline:
            try:
                chunk = port.read(self._read_size)
            except (serial.SerialException, OSError) as exc:
                port.close()
                message = f"TIC port failed while probing: {exc}"
                raise ConnectionFailed(message, host=self._url) from exc
            data += chunk
            if len(data) > _PROBE_LIMIT:
                del data[: len(data) - _PROBE_LIMIT]
            if chunk and count_valid_groups(data) >= self._min_probe_groups:
                break
        return bytes(data)

    def _open(self, baudrate: int, *, first: bool) -> SerialPort:
        try:
            return self._factory(
                self._url,
                baudrate=baudrate,
                bytesize=self._bytesize,
                parity=self._parity,
                stopbits=serial.STOPBITS_ONE,
                timeout=self._read_timeout_s,
            )
        except ValueError as exc:
            raise UsageError(f"cannot use TIC port: {exc}", host=self._url) from exc
        except (serial.SerialException, OSError) as exc:
            if first:
                raise ConnectionFailed(f"cannot open TIC port: {exc}", host=self._url) from exc
            raise

    def _lost(self, exc: BaseException) -> None:
        """Log once, close, reopen with backoff; raise ``ConnectionFailed`` when giving up."""
        _LOGGER.warning("TIC port %s lost (%s); reconnecting", self._url, exc)
        self._close_port()
        self._decoder.reset()
        baudrate = self._baudrate or self._candidates[0]
        attempts = 0
        last: BaseException = exc
        for delay in self._reconnect.delays():
            self._sleep(delay)
            if self._stop.is_set():
                return
            attempts += 1
            try:
                self._port = self._open(baudrate, first=False)
            except (serial.SerialException, OSError) as retry_exc:
                last = retry_exc
                _LOGGER.debug("TIC port %s: attempt %d failed: %s", self._url, attempts, retry_exc)
                continue
            self._reconnects += 1
            _LOGGER.info("TIC port %s back after %d attempt(s)", self._url, attempts)
            return
        raise ConnectionFailed(
            f"TIC port lost and not back after {attempts} attempt(s): {last}", host=self._url
        ) from last

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                _LOGGER.debug("closing %s failed: %s", self._url, exc)
