"""The serial reader on real pyserial ports: ``loop://`` and a pty, never mocks."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import ConnectionFailed, DeviceTimeout, UsageError
from wesh.tic.encoder import encode_frame, encode_group
from wesh.tic.horodate import PARIS
from wesh.tic.model import Frame, Mode
from wesh.tic.serial import ReconnectPolicy, SerialPort, TicSerialReader, count_valid_groups
from wesh.tic.simulator import TicMeterSimulator

START = datetime(2025, 1, 15, 21, 50, tzinfo=PARIS)


def simulated(mode: Mode, count: int, seed: int = 1) -> tuple[bytes, list[Frame]]:
    sim = TicMeterSimulator(start=START, seed=seed, mode=mode, tariff="HC")
    timed = list(sim.frames(count=count))
    return b"".join(tf.data for tf in timed), [tf.frame for tf in timed]


def garbage(size: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    assert count_valid_groups(data) == 0
    return data


def with_parity(data: bytes) -> bytes:
    """The bytes as an 8N1 port sees a 7E1 line: the even-parity bit in bit 7."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


class FakeClock:
    def __init__(self, step: float = 0.05) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class LoopFactory:
    """Opens ``loop://`` ports already holding bytes that depend on the requested speed."""

    def __init__(self, content: Callable[[int], bytes]) -> None:
        self.content = content
        self.opened: list[int] = []
        self.ports: list[serial.SerialBase] = []

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
        port = serial.serial_for_url("loop://", baudrate=baudrate, timeout=0.01)
        data = self.content(baudrate)
        assert len(data) < 4096, "a loop:// port holds 4096 bytes; more would block write()"
        port.write(data)
        self.opened.append(baudrate)
        self.ports.append(port)
        return port


def take(reader: TicSerialReader, count: int) -> list[Frame]:
    with contextlib.closing(reader.frames()) as frames:
        got = [frame for _, frame in zip(range(count), frames, strict=False)]
    assert not reader.connected  # closing the iterator closes the port
    return got


# ---------------------------------------------------------------- loop://


def test_frames_written_on_a_loop_port_are_decoded() -> None:
    data, expected = simulated(Mode.HISTORIQUE, 8)
    factory = LoopFactory(lambda _: data)
    reader = TicSerialReader("loop://", mode=Mode.HISTORIQUE, port_factory=factory)
    assert take(reader, 8) == expected
    assert factory.opened == [1200]
    assert reader.baudrate == 1200
    assert reader.stats.frames_complete == 8


def test_auto_speed_picks_9600_when_1200_gives_garbage() -> None:
    data, expected = simulated(Mode.STANDARD, 4)
    factory = LoopFactory(lambda rate: data if rate == 9600 else garbage(3000))
    reader = TicSerialReader("tic", port_factory=factory, clock=FakeClock())
    assert reader.baudrate is None
    # The bytes read while probing are decoded too: the first frame is not lost.
    assert take(reader, 4) == expected
    assert factory.opened == [1200, 9600]
    assert not factory.ports[0].is_open  # the 1200-baud port was closed
    assert reader.baudrate == 9600


def test_auto_speed_keeps_1200_for_a_historique_line() -> None:
    data, expected = simulated(Mode.HISTORIQUE, 4)
    factory = LoopFactory(lambda rate: data if rate == 1200 else garbage(3000))
    reader = TicSerialReader("tic", port_factory=factory, clock=FakeClock())
    assert take(reader, 4) == expected
    assert factory.opened == [1200]
    assert reader.baudrate == 1200


def test_no_speed_gives_groups_raises_device_timeout() -> None:
    factory = LoopFactory(lambda rate: garbage(2000, seed=rate))
    sleeps: list[float] = []
    reader = TicSerialReader(
        "tic",
        port_factory=factory,
        clock=FakeClock(step=0.5),
        sleep=sleeps.append,
        reconnect=ReconnectPolicy(initial_delay_s=1, max_attempts=2),
    )
    with pytest.raises(DeviceTimeout, match="1200 or 9600"):
        take(reader, 1)
    assert factory.opened == [1200, 9600] * 3
    assert sleeps == [1, 2]
    assert not any(port.is_open for port in factory.ports)


def test_mode_or_baudrate_fix_the_speed_without_probing() -> None:
    data, expected = simulated(Mode.STANDARD, 2)
    factory = LoopFactory(lambda _: data)
    reader = TicSerialReader("tic", baudrate=9600, port_factory=factory)
    assert take(reader, 2) == expected
    assert factory.opened == [9600]


def test_stop_from_the_consumer_ends_the_iteration() -> None:
    data, _ = simulated(Mode.HISTORIQUE, 10)
    reader = TicSerialReader("tic", mode=Mode.HISTORIQUE, port_factory=LoopFactory(lambda _: data))
    got = []
    for frame in reader:
        got.append(frame)
        if len(got) == 3:
            reader.stop()
    assert len(got) >= 3
    assert reader.stopped and not reader.connected


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        TicSerialReader("loop://", framing="9O2")
    with pytest.raises(UsageError):
        TicSerialReader("loop://", baudrate=-5)
    with pytest.raises(UsageError):
        ReconnectPolicy(initial_delay_s=5, max_delay_s=1)
    with pytest.raises(UsageError):
        take(TicSerialReader("nosuchscheme://x", mode=Mode.HISTORIQUE), 1)


def test_a_missing_device_is_connection_failed() -> None:
    reader = TicSerialReader("/dev/wesh-no-such-tic-adapter", mode=Mode.HISTORIQUE)
    with pytest.raises(ConnectionFailed) as info:
        take(reader, 1)
    assert info.value.host == "/dev/wesh-no-such-tic-adapter"
    assert isinstance(info.value.__cause__, OSError)


# ---------------------------------------------------------------- pty


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def ptys() -> Iterator[list[Pty]]:
    opened: list[Pty] = []
    yield opened
    for pty in opened:
        pty.close()


class PtyFactory:
    """Opens the current pty with real pyserial, then the "meter" writes its bytes.

    ``fail`` makes the next opens fail (adapter still unplugged); each successful
    open after the first one plugs a new pty, as a USB adapter that comes back.
    """

    def __init__(self, ptys: list[Pty], sessions: list[bytes]) -> None:
        self.ptys = ptys
        self.sessions = sessions
        self.fail = 0
        self.attempts = 0
        ptys.append(Pty())

    def __call__(self, url: str, **kwargs: object) -> SerialPort:
        self.attempts += 1
        if self.fail:
            self.fail -= 1
            raise serial.SerialException(f"could not open port {url}: No such device")
        pty = self.ptys[-1]
        port: SerialPort = serial.serial_for_url(pty.path, **kwargs)  # type: ignore[arg-type]
        pty.write(self.sessions.pop(0))  # after open: pyserial flushes input when opening
        return port

    def unplug(self, failures: int) -> None:
        os.close(self.ptys[-1].master)
        self.fail = failures
        self.ptys.append(Pty())


def test_frames_written_on_a_pty_are_decoded(ptys: list[Pty]) -> None:
    data, expected = simulated(Mode.HISTORIQUE, 10)
    factory = PtyFactory(ptys, [data])
    reader = TicSerialReader(ptys[0].path, mode=Mode.HISTORIQUE, port_factory=factory)
    assert take(reader, 10) == expected


def test_an_8n1_port_reads_a_7e1_line(ptys: list[Pty]) -> None:
    data, expected = simulated(Mode.STANDARD, 3)
    factory = PtyFactory(ptys, [with_parity(data)])
    reader = TicSerialReader(ptys[0].path, framing="8N1", baudrate=9600, port_factory=factory)
    assert take(reader, 3) == expected
    assert reader.stats.parity_bytes > 0


def test_auto_speed_on_a_pty(ptys: list[Pty]) -> None:
    data, expected = simulated(Mode.STANDARD, 3)
    factory = PtyFactory(ptys, [garbage(1500), data])
    reader = TicSerialReader(
        ptys[0].path, port_factory=factory, clock=FakeClock(1.0), read_timeout_s=0.01
    )
    assert take(reader, 3) == expected
    assert reader.baudrate == 9600


def test_reconnect_after_unplug(ptys: list[Pty], caplog: pytest.LogCaptureFixture) -> None:
    before, before_frames = simulated(Mode.HISTORIQUE, 4, seed=1)
    after, after_frames = simulated(Mode.HISTORIQUE, 4, seed=2)
    half = encode_frame(before_frames[0])[:40]  # a frame cut by the unplug
    factory = PtyFactory(ptys, [before + half, after])
    sleeps: list[float] = []
    reader = TicSerialReader(
        ptys[0].path,
        mode=Mode.HISTORIQUE,
        port_factory=factory,
        sleep=sleeps.append,
        reconnect=ReconnectPolicy(initial_delay_s=0.5, max_delay_s=1.5),
    )
    caplog.set_level(logging.DEBUG, logger="wesh.tic.serial")
    got = []
    with contextlib.closing(reader.frames()) as frames:
        for frame in frames:
            got.append(frame)
            if len(got) == 4:
                factory.unplug(failures=3)
            if len(got) == 8:
                break
    assert got == before_frames + after_frames  # the cut frame was dropped, not glued
    assert sleeps == [0.5, 1.0, 1.5, 1.5]
    assert factory.attempts == 1 + 4
    assert reader.reconnects == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1 and "lost" in warnings[0].getMessage()
    assert len(infos) == 1 and "back after 4 attempt" in infos[0].getMessage()


def test_giving_up_after_max_attempts_is_connection_failed(ptys: list[Pty]) -> None:
    data, _ = simulated(Mode.HISTORIQUE, 2)
    factory = PtyFactory(ptys, [data])
    sleeps: list[float] = []
    reader = TicSerialReader(
        ptys[0].path,
        mode=Mode.HISTORIQUE,
        port_factory=factory,
        sleep=sleeps.append,
        reconnect=ReconnectPolicy(initial_delay_s=0.1, max_attempts=3),
    )
    got = []
    with pytest.raises(ConnectionFailed, match="not back after 3") as info:
        for frame in reader:
            got.append(frame)
            if len(got) == 2:
                factory.unplug(failures=100)
    assert isinstance(info.value.__cause__, serial.SerialException)
    assert sleeps == [0.1, 0.2, 0.4]
    assert not reader.connected


def test_stop_from_another_thread_wakes_a_blocked_read(ptys: list[Pty]) -> None:
    factory = PtyFactory(ptys, [b""])
    reader = TicSerialReader(
        ptys[0].path, mode=Mode.STANDARD, port_factory=factory, read_timeout_s=60
    )
    opened = threading.Event()
    got: list[Frame] = []

    def consume() -> None:
        for frame in reader:
            got.append(frame)

    original = factory.__call__

    def open_and_signal(url: str, **kwargs: object) -> SerialPort:
        port = original(url, **kwargs)
        opened.set()
        return port

    reader._factory = open_and_signal  # type: ignore[assignment]
    thread = threading.Thread(target=consume)
    thread.start()
    try:
        assert opened.wait(10)
        reader.stop()
        thread.join(10)
        assert not thread.is_alive()  # a 60 s read was cancelled
    finally:
        reader.close()
        thread.join(10)
    assert got == []


# ---------------------------------------------------------------- speed probe


def test_count_valid_groups_in_both_modes() -> None:
    hist = encode_group("PTEC", "HP..", mode=Mode.HISTORIQUE)  # checksum is SP
    std = encode_group("DATE", "", mode=Mode.STANDARD, horodate="H240210121355")
    assert count_valid_groups(hist + std + with_parity(hist)) == 3
    broken = bytearray(hist)
    broken[3] ^= 0x01
    assert count_valid_groups(bytes(broken)) == 0


@given(st.binary(max_size=2000))
def test_count_valid_groups_never_raises(data: bytes) -> None:
    assert 0 <= count_valid_groups(data) <= data.count(b"\r") + data.count(b"\x8d")
