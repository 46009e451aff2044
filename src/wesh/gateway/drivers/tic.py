"""The TIC serial driver: an Enedis meter read directly on a serial port (no WES).

::

    serial port ──TicSerialReader (thread)──▶ Frame ──MeterState──▶ MeterReading (last, merged)
                                                                     │
    poll() ◀── tic_readings(): tic.1.index.<name>, tic.1.power_va ◀──┘ (if fresh)

A background thread reads the port for as long as the driver lives and keeps the last
merged :class:`~wesh.tic.meter.MeterReading`; ``poll`` turns it into readings with the
same paths as a WES box's TIC input (``tic.1.*``), so a dwelling's electricity has the
same path whichever way it is read. Index names are the lower-cased TIC labels
(``base``, ``hchc``, ``hchp``, ``bbrhcjb``..., standard mode ``east``, ``easf01``...,
``EAIT`` → ``injection``). Beyond a WES's paths it gives ``tic.1.overload`` (the meter's
own flag: ADPS, ADIRn or STGE bit 7) and, in standard mode, ``tic.1.status`` (STGE as
8 hex digits), from which weshd raises ``tic_overload`` and ``tic_status_alarm``.

* The first ``poll`` starts the thread; until a first frame (or a first error) arrives,
  a poll waits for it up to 80 % of ``timeout_s``. Afterwards polls answer at once from
  the last frame.
* No valid frame for more than ``stale_after_s`` → :class:`~wesh.errors.DeviceTimeout`
  (or :class:`~wesh.errors.ConnectionFailed` when the port cannot be opened).
* A port that cannot be opened, or that the reader gives up on, is retried by the thread
  with a growing delay (1 s → 30 s); the failure is logged once, at WARNING.
* ``aclose`` stops the thread (the reader notices within its 0.2 s read timeout).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from wesh.errors import ConfigError, ConnectionFailed, DeviceTimeout, UsageError, WeshError
from wesh.gateway.config import BoxConfig
from wesh.gateway.drivers.base import Clock, Command, PollResult, utc_now
from wesh.tic.horodate import Horodate
from wesh.tic.meter import MeterReading, MeterState
from wesh.tic.model import Frame, Mode
from wesh.tic.serial import ReconnectPolicy, TicSerialReader
from wesh.tic.values import TariffPeriod, TempoColour
from wesh.wes.datacgx import period_code
from wesh.wes.readings import Reading, ReadingKind

__all__ = ["TicSerialDriver", "create", "tic_readings"]

_LOG = logging.getLogger(__name__)

_RETRY_INITIAL_S = 1.0
_RETRY_MAX_S = 30.0
_INDEX_NAMES = {"EAIT": "injection"}
_TOMORROW = {TempoColour.BLUE: "BLEU", TempoColour.WHITE: "BLANC", TempoColour.RED: "ROUGE"}

ReaderFactory = Callable[[str], TicSerialReader]


def tic_readings(reading: MeterReading, *, poll_time: datetime, number: int = 1) -> list[Reading]:
    """Return the readings of one meter state, with the WES paths of TIC input ``number``."""
    base = f"tic.{number}"
    horodate = reading.meter_time
    box_time = horodate.at if isinstance(horodate, Horodate) else None
    out: list[Reading] = []

    def add(
        path: str, value: float | str | bool | None, unit: str | None, kind: ReadingKind
    ) -> None:
        if value is not None:
            out.append(Reading(f"{base}.{path}", value, unit, box_time, poll_time, kind))

    add("available", True, None, "state")
    for label, wh in reading.indexes_wh.items():
        add(f"index.{_INDEX_NAMES.get(label, label.lower())}", wh, "Wh", "index")
    add("power_va", reading.apparent_power_va, "VA", "gauge")
    add("injected_power_va", reading.injected_power_va, "VA", "gauge")
    for family, values in (("current", reading.currents_a), ("voltage", reading.voltages_v)):
        for phase, value in enumerate(values, start=1):
            add(f"{family}.{phase}", value, "A" if family == "current" else "V", "gauge")
    imax: list[object] = [reading.values.get(label) for label in ("IMAX1", "IMAX2", "IMAX3")]
    if not any(isinstance(v, int) for v in imax):
        imax = [reading.values.get("IMAX")]
    for phase, amps in enumerate(imax, start=1):
        if isinstance(amps, int) and not isinstance(amps, bool):
            add(f"imax.{phase}", amps, "A", "gauge")
    add("isousc", reading.subscribed_current_a, "A", "gauge")
    pejp = reading.values.get("PEJP")
    if isinstance(pejp, int) and not isinstance(pejp, bool):
        add("pejp", pejp, None, "gauge")
    if reading.status is not None:
        add("producer", reading.producer, None, "state")
        add("status", reading.status.raw, None, "text")
    add("overload", reading.overload, None, "state")
    period = reading.tariff_period
    if period is not None:
        text = period.value if isinstance(period, TariffPeriod) else str(period).strip()
        add("period", text, None, "text")
        add("period_code", period_code(text), None, "text")
    tomorrow = reading.tempo_tomorrow
    if tomorrow is not None and tomorrow is not TempoColour.UNKNOWN:
        add("tomorrow", tomorrow.value, None, "text")
        add("tomorrow_code", _TOMORROW.get(tomorrow), None, "text")
    if reading.identity is not None:
        add("adco", reading.identity.raw, None, "text")
    if reading.tariff_option is not None:
        add("optarif", reading.tariff_option.raw.rstrip(". ") or None, None, "text")
    return out


class TicSerialDriver:
    """Driver of one TIC meter on a serial port (see the module docstring).

    ``monotonic`` measures frame ages (tests inject it); ``reader_factory`` builds the
    :class:`TicSerialReader` of a port (tests may pass one with a ``port_factory``).
    """

    def __init__(
        self,
        box: BoxConfig,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        reader_factory: ReaderFactory | None = None,
    ) -> None:
        if box.driver != "tic" or box.device is None:
            raise ConfigError("not a TIC box", where=f"boxes[{box.id}].driver")
        self.box_id = box.id
        self._device = box.device
        self._mode = None if box.mode == "auto" else Mode(box.mode)
        self._baudrate = box.baudrate
        self._framing = box.framing
        self._stale_after_s = box.stale_after_s
        self._first_wait_s = box.timeout_s * 0.8
        self._clock = clock
        self._monotonic = monotonic
        self._reader_factory = reader_factory or self._default_reader
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: TicSerialReader | None = None
        self._last: MeterReading | None = None
        self._last_at: float | None = None
        self._error: WeshError | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._frames = 0

    # ------------------------------------------------------------------ driver API

    @property
    def frames_received(self) -> int:
        """How many frames with at least one valid group were merged so far."""
        return self._frames

    @property
    def connected(self) -> bool:
        """True while the serial port is open."""
        with self._lock:
            reader = self._reader
        return reader is not None and reader.connected

    def start(self) -> None:
        """Start the reading thread (idempotent; ``poll`` calls it)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name=f"weshd-tic-{self.box_id}", daemon=True
            )
            self._thread.start()

    async def poll(self) -> PollResult:
        """Return the readings of the last frame if fresh; else raise why it is not."""
        if self._stop.is_set():
            raise UsageError("driver closed", host=self._device)
        self.start()
        reading = self._fresh()
        if reading is None and self._warming_up():
            await self._wait_frame(self._first_wait_s)
            reading = self._fresh()
        if reading is None:
            raise self._failure()
        readings = tic_readings(reading, poll_time=self._clock())
        identity = reading.identity.raw if reading.identity is not None else None
        box_time = readings[0].box_time if readings else None
        return PollResult(readings=readings, box_time=box_time, identity=identity)

    async def command(self, command: Command) -> None:
        """Refuse: a meter read on a serial port has no outputs (``UsageError``)."""
        raise UsageError(f"a TIC meter on a serial port has no {command.kind}s", host=self._device)

    async def aclose(self) -> None:
        """Stop the thread and close the port (idempotent)."""
        self._stop.set()
        with self._lock:
            reader, thread = self._reader, self._thread
        if reader is not None:
            reader.stop()
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, 5.0)
            if thread.is_alive():
                _LOG.warning("TIC reader thread of %s did not stop within 5 s", self.box_id)
        self._wake_all()

    # ------------------------------------------------------------------ state

    def _fresh(self) -> MeterReading | None:
        with self._lock:
            if self._last is None or self._last_at is None:
                return None
            if self._monotonic() - self._last_at > self._stale_after_s:
                return None
            return self._last

    def _warming_up(self) -> bool:
        """Tell whether no frame and no error came yet (worth waiting a little)."""
        with self._lock:
            return self._last is None and self._error is None

    def _failure(self) -> WeshError:
        with self._lock:
            error, last_at = self._error, self._last_at
        if isinstance(error, ConnectionFailed | UsageError):
            return ConnectionFailed(f"TIC port unusable: {error.message}", host=self._device)
        if last_at is None:
            return DeviceTimeout("no valid TIC frame received yet", host=self._device)
        age = self._monotonic() - last_at
        return DeviceTimeout(
            f"no valid TIC frame for {age:.0f} s (limit {self._stale_after_s:g} s)",
            host=self._device,
        )

    async def _wait_frame(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._last is not None or self._error is not None:
                return
            self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                await future
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def _wake_all(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody waits any more
                continue

    # ------------------------------------------------------------------ thread

    def _default_reader(self, device: str) -> TicSerialReader:
        return TicSerialReader(
            device,
            mode=self._mode,
            baudrate=self._baudrate,
            framing=self._framing,
            reconnect=ReconnectPolicy(initial_delay_s=0.5, max_delay_s=_RETRY_MAX_S),
        )

    def _run(self) -> None:
        delay = _RETRY_INITIAL_S
        warned = False
        state = MeterState()
        while not self._stop.is_set():
            try:
                reader = self._reader_factory(self._device)
            except WeshError as exc:
                self._set_error(exc, warned=warned)
                warned = True
                self._stop.wait(delay)
                delay = min(_RETRY_MAX_S, delay * 2)
                continue
            with self._lock:
                self._reader = reader
            if self._stop.is_set():
                reader.close()
                break
            try:
                for frame in reader.frames():
                    if self._merge(state, frame):
                        delay = _RETRY_INITIAL_S
                        if warned:
                            _LOG.info("TIC meter of %s is sending frames again", self.box_id)
                            warned = False
            except WeshError as exc:
                self._set_error(exc, warned=warned)
                warned = True
            finally:
                reader.close()
                with self._lock:
                    self._reader = None
            self._stop.wait(delay)
            delay = min(_RETRY_MAX_S, delay * 2)

    def _merge(self, state: MeterState, frame: Frame) -> bool:
        if not frame.valid_groups:
            return False
        reading = state.update(frame)
        with self._lock:
            self._last = reading
            self._last_at = self._monotonic()
            self._error = None
            self._frames += 1
        self._wake_all()
        return True

    def _set_error(self, exc: WeshError, *, warned: bool) -> None:
        with self._lock:
            self._error = exc
        self._wake_all()
        if warned:
            _LOG.debug("TIC port of %s still failing: %s", self.box_id, exc)
        else:
            _LOG.warning("TIC port of %s failing: %s; retrying", self.box_id, exc)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def create(box: BoxConfig, *, clock: Clock = utc_now) -> TicSerialDriver:
    """Driver factory looked up by :func:`~wesh.gateway.drivers.base.make_driver`."""
    return TicSerialDriver(box, clock=clock)
