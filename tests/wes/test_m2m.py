"""WES M2M TCP client, against a real loopback TCP server (fake box) started per test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import ConnectionFailed, DecodeError, DeviceTimeout, UsageError
from wesh.sim.clock import ManualClock
from wesh.sim.farm import run_simulators
from wesh.wes.m2m import LineDecoder, WesM2M, normalise_mac, parse_reply

ANSWERS = {
    "gI000": "0011223344AA",
    "gT100": "1840",
    "gT101": "8",
    "gT110": "12345678",
    "gT115": "42",
    "gP100": "1.50",
    "gP101": "1234.567",
    "gP102": "338.25 l",
    "gW001": "19.8",
    "gW030": "-2.5",
    "gr001": "1",
    "gr002": "0",
    "srl1=1": "RLMB=10",
    "srl101=0": "RLW1=00000000",
    "svs1=1": "SW=10000000",
    "gP200": "abc",
}


@dataclass
class FakeBox:
    """A line-based TCP server answering like a WES M2M port."""

    echo: bool = True
    eol: bytes = b"\r\n"
    drip: bool = False
    silent: bool = False
    close_after_reply: bool = False
    answers: dict[str, str] = field(default_factory=lambda: dict(ANSWERS))
    connections: int = 0
    received: list[str] = field(default_factory=list)
    got_command: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    max_in_flight: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while line := await reader.readline():
                cmd = line.decode().strip()
                self.received.append(cmd)
                self.got_command.set()
                if self.silent:
                    continue
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                await asyncio.sleep(0)  # let a misbehaving client interleave, if it would
                answer = self.answers.get(cmd, "ERR")
                out = (
                    cmd.encode() + self.eol + b"=" + answer.encode() + self.eol
                    if self.echo
                    else answer.encode() + self.eol
                )
                if self.drip:
                    for i in range(len(out)):
                        writer.write(out[i : i + 1])
                        await writer.drain()
                else:
                    writer.write(out)
                    await writer.drain()
                self.in_flight -= 1
                if self.close_after_reply:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


@pytest.fixture
async def box_factory() -> AsyncIterator[Callable[..., asyncio.Future[FakeBox]]]:
    boxes: list[FakeBox] = []

    async def make(**kwargs: object) -> FakeBox:
        box = FakeBox(**kwargs)  # type: ignore[arg-type]
        await box.start()
        boxes.append(box)
        return box

    yield make  # type: ignore[misc]
    for box in boxes:
        await box.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- pure codec ---------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\n\r", b"\r"])
def test_line_decoder_accepts_every_terminator(eol: bytes) -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"gI000" + eol + b"=0011223344AA" + eol) == ["gI000", "=0011223344AA"]


@given(
    lines=st.lists(st.text(alphabet="abcdefgXYZ0123456789= .", min_size=1), max_size=8),
    eols=st.lists(st.sampled_from([b"\n", b"\r\n", b"\n\r", b"\r"]), min_size=8, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_line_decoder_is_independent_of_fragmentation(
    lines: list[str], eols: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(line.encode() + eol for line, eol in zip(lines, eols, strict=False))
    decoder = LineDecoder()
    got: list[str] = []
    start = 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        got += decoder.feed(stream[start:cut])
        start = cut
    assert got == [line.strip() for line in lines if line.strip()]


@given(st.binary(max_size=300))
def test_line_decoder_random_bytes_only_decode_error(data: bytes) -> None:
    decoder = LineDecoder(max_line_bytes=64)
    with contextlib.suppress(DecodeError):
        decoder.feed(data)


def test_line_decoder_caps_line_length() -> None:
    decoder = LineDecoder(max_line_bytes=10)
    with pytest.raises(DecodeError):
        decoder.feed(b"x" * 11)
    decoder = LineDecoder(max_line_bytes=10)
    with pytest.raises(DecodeError):
        decoder.feed(b"x" * 20 + b"\n")


def test_parse_reply_framings() -> None:
    assert parse_reply("gI000", []) is None
    assert parse_reply("gI000", ["gI000"]) is None
    echoed = parse_reply("gI000", ["gI000", "=0011223344AA"])
    assert echoed is not None and echoed.value == "0011223344AA" and echoed.echoed
    plain = parse_reply("srl1=1", ["RLMB=10"])
    assert plain is not None and plain.value == "RLMB=10" and not plain.echoed
    assert parse_reply("gW001", ["=19.8"]) == parse_reply("gW001", ["19.8"])
    assert parse_reply("gW001", [" gW001 ", "19.8"]) == parse_reply("gW001", ["gW001", "=19.8"])


def test_normalise_mac() -> None:
    assert normalise_mac("00:11:22:33:44:aa") == "0011223344AA"
    assert normalise_mac("00-11-22-33-44-AA") == "0011223344AA"
    with pytest.raises(DecodeError):
        normalise_mac("0011223344")
    with pytest.raises(DecodeError):
        normalise_mac("ERR")


# -- against a loopback server --------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\n\r"])
@pytest.mark.parametrize("echo", [True, False])
async def test_mac_in_every_framing(box_factory, eol: bytes, echo: bool) -> None:
    box = await box_factory(echo=echo, eol=eol)
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        assert await m2m.mac() == "0011223344AA"
        # A stray terminator left by the previous reply must not shift the next one.
        assert await m2m.tic_power_va(1) == 1840
        assert await m2m.probe_c(1) == pytest.approx(19.8)
    assert box.connections == 1


async def test_reply_dripped_byte_by_byte(box_factory) -> None:
    box = await box_factory(drip=True, eol=b"\n\r")
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        assert await m2m.mac() == "0011223344AA"
        assert await m2m.set_relay(1, True) == "RLMB=10"


async def test_typed_helpers(box_factory) -> None:
    box = await box_factory()
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        assert await m2m.tic_current_a(1) == 8
        assert await m2m.tic_index_wh(1, 1) == 12345678
        assert await m2m.tic_index_wh(1, 6) == 42
        assert await m2m.pulse(1, 0) == pytest.approx(1.5)
        assert await m2m.pulse(1, 1) == pytest.approx(1234.567)
        assert await m2m.pulse(1, 2) == pytest.approx(338.25)
        assert await m2m.probe_c(30) == pytest.approx(-2.5)
        assert await m2m.relay(1) is True
        assert await m2m.relay(2) is False
        assert await m2m.set_relay(101, False) == "RLW1=00000000"
        assert await m2m.set_switch(1, True) == "SW=10000000"
    assert box.received == [
        "gT101",
        "gT110",
        "gT115",
        "gP100",
        "gP101",
        "gP102",
        "gW030",
        "gr001",
        "gr002",
        "srl101=0",
        "svs1=1",
    ]


async def test_non_numeric_reply_is_decode_error(box_factory) -> None:
    box = await box_factory()
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        with pytest.raises(DecodeError) as info:
            await m2m.pulse(2, 0)
        assert info.value.host == f"127.0.0.1:{box.port}"
        assert await m2m.command("gX999") == "ERR"
        box.answers["gI000"] = "ERR"
        with pytest.raises(DecodeError):
            await m2m.mac()
        box.answers["gr001"] = "maybe"
        with pytest.raises(DecodeError):
            await m2m.relay(1)


async def test_bad_arguments_are_usage_errors() -> None:
    m2m = WesM2M("127.0.0.1", 1)  # never connects: arguments are checked first
    with pytest.raises(UsageError):
        await m2m.command("gI000\nsrl1=1")
    with pytest.raises(UsageError):
        await m2m.probe_c(31)
    with pytest.raises(UsageError):
        await m2m.set_relay(3, True)
    with pytest.raises(UsageError):
        await m2m.tic_index_wh(1, 7)
    assert not m2m.connected


async def test_timeout_closes_and_next_command_reconnects(box_factory) -> None:
    box = await box_factory(silent=True)
    async with WesM2M("127.0.0.1", box.port, timeout_s=0.2) as m2m:
        with pytest.raises(DeviceTimeout) as info:
            await m2m.mac()
        assert info.value.host == f"127.0.0.1:{box.port}"
        assert not m2m.connected
        box.silent = False
        assert await m2m.mac() == "0011223344AA"
    assert box.connections == 2


async def test_connection_refused() -> None:
    async with WesM2M("127.0.0.1", free_port(), timeout_s=2) as m2m:
        with pytest.raises(ConnectionFailed):
            await m2m.mac()


async def test_reconnects_when_box_closed_the_kept_connection(box_factory) -> None:
    box = await box_factory(close_after_reply=True)
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        assert await m2m.mac() == "0011223344AA"
        await asyncio.sleep(0)  # let the server's close reach us (no wall-clock wait)
        assert await m2m.tic_power_va(1) == 1840
        assert await m2m.probe_c(1) == pytest.approx(19.8)
    assert box.connections == 3


async def test_box_that_closes_without_answering(box_factory) -> None:
    box = await box_factory(answers={})

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        box.connections += 1
        box.writers.add(writer)
        await reader.readline()
        writer.close()

    box.handle = hang_up  # type: ignore[method-assign]
    await box.stop()
    await box.start()
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        with pytest.raises(ConnectionFailed):
            await m2m.mac()
    assert box.connections == 1  # a fresh connection is not retried


async def test_concurrent_commands_never_overlap(box_factory) -> None:
    box = await box_factory(drip=True)
    async with WesM2M("127.0.0.1", box.port, timeout_s=5) as m2m:
        results = await asyncio.gather(
            m2m.mac(), m2m.tic_power_va(1), m2m.probe_c(1), m2m.set_relay(1, True)
        )
    assert results == ["0011223344AA", 1840, pytest.approx(19.8), "RLMB=10"]
    assert box.max_in_flight == 1
    assert box.connections == 1


async def test_cancelled_command_drops_the_connection(box_factory) -> None:
    box = await box_factory(silent=True)
    async with WesM2M("127.0.0.1", box.port, timeout_s=5) as m2m:
        task = asyncio.create_task(m2m.mac())
        await box.got_command.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not m2m.connected


async def test_readings_by_path(box_factory) -> None:
    box = await box_factory()
    polled = datetime(2025, 11, 21, 13, 0, tzinfo=UTC)
    async with WesM2M("127.0.0.1", box.port, timeout_s=2) as m2m:
        readings = await m2m.readings(
            ["tic.1.power_va", "tic.1.current.1", "impulsion.1.index", "temp.30", "relais.2"],
            poll_time=polled,
        )
        with pytest.raises(UsageError):
            await m2m.readings(["tic.1.index.base"])
    assert [(r.path, r.value, r.unit, r.kind) for r in readings] == [
        ("tic.1.power_va", 1840, "VA", "gauge"),
        ("tic.1.current.1", 8, "A", "gauge"),
        ("impulsion.1.index", pytest.approx(1234.567), None, "index"),
        ("temp.30", pytest.approx(-2.5), "°C", "gauge"),
        ("relais.2", False, None, "state"),
    ]
    assert all(r.poll_time == polled and r.box_time is None for r in readings)
    assert box.received[-5:] == ["gT100", "gT101", "gP101", "gW030", "gr002"]


async def test_against_the_simulator() -> None:
    clock = ManualClock(datetime(2025, 1, 15, 9, 30, tzinfo=UTC))
    async with run_simulators(1, base_port=0, seed=11, clock=clock) as farm:
        handle = farm.boxes[0]
        assert handle.m2m is not None
        async with WesM2M(handle.m2m.host, handle.m2m.port, timeout_s=2) as m2m:
            assert await m2m.mac() == handle.model.identity.mac
            readings = {
                r.path: r.value
                for r in await m2m.readings(["tic.1.power_va", "temp.1", "relais.1"])
            }
            assert await m2m.set_relay(1, True) == "RLMB=10"
            assert await m2m.relay(1) is True
        state = handle.state
        reading = state.tics[0].reading
        assert reading is not None
        assert readings["tic.1.power_va"] == reading.power_va
        assert readings["temp.1"] == pytest.approx(state.probes[1])
        assert readings["relais.1"] is False
        assert state.relays[0] is True
