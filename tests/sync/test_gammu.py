"""GammuTransport: pure parts, the hook, and the real gammu-smsd on Gammu's dummy phone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.gammu_harness import DummySmsd, eventually, relay, relaying, smsd_factory
from wesh.errors import ConnectionFailed, DecodeError, DeviceTimeout, UsageError
from wesh.sync.gammu import (
    GammuPaths,
    GammuTransport,
    hook_command,
    outbox_name,
    parse_outbox_name,
    smsdrc_text,
)
from wesh.sync.gammu_hook import build_record, main, parse_record, record_bytes, write_record
from wesh.sync.transport import Message, SendStatus, Transport

__all__ = ["smsd_factory"]  # the fixture, imported for pytest

A_NUMBER = "+15550000001"
B_NUMBER = "+15550000002"
LONG = "".join(f"{i:04X}" for i in range(100))  # 400 base16 characters: 3 SMS parts
AT = datetime(2024, 5, 1, 12, 0, 7, tzinfo=UTC)


async def next_message(messages: AsyncIterator[Message], timeout_s: float = 10.0) -> Message:
    async with asyncio.timeout(timeout_s):
        return await anext(messages)


# ----------------------------------------------------------------------------- pure


def test_outbox_name_follows_gammu_naming() -> None:
    name = outbox_name("+33612345678", AT, "w000001abc")
    assert name == "OUTC20240501_120007_00_+33612345678_w000001abc.txt"
    assert parse_outbox_name(name) == "+33612345678"
    assert parse_outbox_name("OUT+15550000001.txt") is None
    with pytest.raises(UsageError):
        outbox_name("0612345678", AT, "t")
    with pytest.raises(UsageError):
        outbox_name("+33612345678", AT, "with_underscore")


@given(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True),
)
def test_outbox_name_round_trip(number: str, tag: str) -> None:
    name = outbox_name(number, AT, tag)
    assert parse_outbox_name(name) == number
    assert name.count("_") == 4 and not name.startswith(".")


def test_smsdrc_has_the_safe_settings(tmp_path: Path) -> None:
    paths = GammuPaths.under(tmp_path)
    text = smsdrc_text(paths, device="/dev/ttyUSB0", extra={"pin": "1234"})
    lines = set(text.splitlines())
    for line in (
        "inboxformat = standard",
        "outboxformat = detail",
        "transmitformat = auto",
        "commtimeout = 0",
        "receivefrequency = 0",
        "pin = 1234",
        "device = /dev/ttyUSB0",
        f"outboxpath = {paths.outbox}/",
        f"runonreceive = {hook_command(paths.spool)}",
    ):
        assert line in lines
    with pytest.raises(UsageError):
        smsdrc_text(paths, device="/dev/x\nconnection = evil")


# ----------------------------------------------------------------------------- the hook alone


def test_hook_record_of_a_multipart_message() -> None:
    env = {
        "SMS_MESSAGES": "3",
        "SMS_1_NUMBER": A_NUMBER,
        "SMS_1_TEXT": LONG[:153],
        "SMS_2_TEXT": LONG[153:306],
        "SMS_3_TEXT": LONG[306:],
        "DECODED_PARTS": "1",
        "DECODED_1_TEXT": LONG,
    }
    record = build_record(env, ["IN_00.txt", "IN_01.txt", "IN_02.txt", ""], now=AT)
    assert (record.number, record.parts, record.text) == (A_NUMBER, 3, LONG)
    assert record.files == ("IN_00.txt", "IN_01.txt", "IN_02.txt")
    assert parse_record(record_bytes(record)) == record


def test_hook_record_without_decoded_text_joins_the_parts() -> None:
    env = {"SMS_MESSAGES": "2", "SMS_1_NUMBER": A_NUMBER, "SMS_1_TEXT": "AB", "SMS_2_TEXT": "CD"}
    assert build_record(env, [], now=AT).text == "ABCD"
    # 8-bit data: no text at all (the receiver quarantines it)
    assert build_record({"SMS_MESSAGES": "1", "SMS_1_NUMBER": A_NUMBER}, [], now=AT).text == ""
    assert build_record({"SMS_MESSAGES": "x"}, [], now=AT).parts == 0


@given(
    st.text(max_size=50),
    st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=5),
    st.lists(st.text(min_size=1, max_size=20), max_size=5),
)
def test_hook_record_round_trip(text: str, part_texts: list[str | None], files: list[str]) -> None:
    env = {"SMS_MESSAGES": str(len(part_texts)), "SMS_1_NUMBER": A_NUMBER, "DECODED_PARTS": "1"}
    env["DECODED_1_TEXT"] = text
    for n, part in enumerate(part_texts, start=1):
        if part is not None:
            env[f"SMS_{n}_TEXT"] = part
    record = build_record(env, files, now=AT)
    assert parse_record(record_bytes(record)) == record


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"[]", b'{"format": "other"}', b'{"format": "wesh-gammu-hook/1"}'],
)
def test_bad_records_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_record(data)


def test_hook_main_writes_one_file_atomically(tmp_path: Path) -> None:
    spool = tmp_path / "spool"  # created by the hook if missing
    env = {"SMS_MESSAGES": "1", "SMS_1_NUMBER": A_NUMBER, "SMS_1_TEXT": "HELLO"}
    assert main([str(spool), "IN1_00.txt"], env) == 0
    (written,) = spool.iterdir()
    assert written.suffix == ".json" and not written.name.startswith(".")
    assert parse_record(written.read_bytes()).text == "HELLO"
    assert main([], env) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([str(blocker / "spool")], env) == 1  # cannot write: smsd keeps its inbox file


def test_hook_as_a_program(tmp_path: Path) -> None:
    env = dict(os.environ, SMS_MESSAGES="1", SMS_1_NUMBER=A_NUMBER, SMS_1_TEXT="HI")
    command = hook_command(tmp_path / "spool dir")  # spaces quoted for sh -c
    done = subprocess.run(f"{command} IN_00.txt ", shell=True, env=env, timeout=30, check=False)
    assert done.returncode == 0
    (written,) = (tmp_path / "spool dir").glob("*.json")
    record = parse_record(written.read_bytes())
    assert (record.text, record.files) == ("HI", ("IN_00.txt",))
    assert sys.executable in command


# ----------------------------------------------------------------------------- transport, no smsd


@pytest.fixture
def paths(tmp_path: Path) -> GammuPaths:
    made = GammuPaths.under(tmp_path / "smsd")
    made.create()
    return made


async def test_send_writes_one_outbox_file(paths: GammuPaths) -> None:
    transport = GammuTransport(paths, poll_s=0.01)
    assert isinstance(transport, Transport)
    try:
        first = await transport.send(A_NUMBER, "HELLO")
        second = await transport.send(A_NUMBER, LONG)
        assert transport.queued() == [first.id, second.id]  # sending order = name order
        assert (paths.outbox / second.id).read_text(encoding="ascii") == LONG
        assert (first.parts, second.parts) == (1, 3)
        assert not [p for p in paths.outbox.iterdir() if p.name.startswith(".")]
        stats = transport.stats()
        assert (stats.sent, stats.sent_parts, stats.confirmed) == (2, 4, 0)
        with pytest.raises(DeviceTimeout) as caught:
            await first.wait(0.05)
        assert A_NUMBER not in str(caught.value) and "…001" in str(caught.value)
        assert first.status is SendStatus.PENDING
    finally:
        await transport.aclose()


async def test_receipts_follow_sent_and_error(
    paths: GammuPaths, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="wesh.sync.gammu")
    transport = GammuTransport(paths, poll_s=0.01, vanish_after_s=0.05)
    try:
        ok = await transport.send(A_NUMBER, "OK")
        bad = await transport.send(A_NUMBER, "BAD")
        gone = await transport.send(A_NUMBER, "GONE")
        (paths.outbox / ok.id).rename(paths.sent / ok.id)
        (paths.outbox / bad.id).rename(paths.error / bad.id)
        (paths.outbox / gone.id).unlink()
        assert await ok.wait(5) is SendStatus.SENT
        assert await bad.wait(5) is SendStatus.FAILED
        assert await gone.wait(5) is SendStatus.FAILED
        assert gone.detail is not None and "vanished" in gone.detail
        stats = transport.stats()
        assert (stats.confirmed, stats.failed) == (1, 2)
        assert "failed" in caplog.text and "…001" in caplog.text
        assert A_NUMBER[1:] not in caplog.text  # phone numbers are redacted in logs
    finally:
        await transport.aclose()


async def test_send_refuses_bad_input_and_reports_a_missing_outbox(
    paths: GammuPaths, caplog: pytest.LogCaptureFixture
) -> None:
    transport = GammuTransport(paths, max_parts=3)
    try:
        for peer, text in [
            ("0612345678", "HI"),
            ("+33612345678", ""),
            ("+33612345678", "é"),
            ("+33612345678", "{}"),
            ("+33612345678", "A" * (153 * 3 + 1)),
        ]:
            with pytest.raises(UsageError):
                await transport.send(peer, text)
        paths.outbox.rmdir()
        with pytest.raises(ConnectionFailed):
            await transport.send("+33612345678", "HI")
        assert transport.stats().errors == 1
        assert transport.stats().sent == 0
        assert "612345678" not in caplog.text
    finally:
        await transport.aclose()
    with pytest.raises(UsageError):
        await transport.send("+33612345678", "HI")


async def test_spool_dot_files_are_never_read_and_bad_records_are_kept_aside(
    paths: GammuPaths,
) -> None:
    transport = GammuTransport(paths, poll_s=0.01)
    (paths.spool / ".20240501T120000000000Z-1-aa.json.tmp").write_text('{"format": "wesh-gam')
    (paths.spool / "20240501T120000000001Z-1-bb.json").write_text("not json")
    no_text = build_record(
        {"SMS_MESSAGES": "1", "SMS_1_NUMBER": A_NUMBER}, ["IN.bin"], now=AT - timedelta(seconds=1)
    )
    write_record(paths.spool, no_text)
    good = build_record(
        {"SMS_MESSAGES": "1", "SMS_1_NUMBER": A_NUMBER, "SMS_1_TEXT": "GOOD"}, [], now=AT
    )
    write_record(paths.spool, good)
    messages = transport.messages()
    try:
        message = await next_message(messages)
        assert (message.peer, message.text, message.parts) == (A_NUMBER, "GOOD", 1)
        assert message.received_at == AT
        assert len(list((paths.spool / "bad").iterdir())) == 2
        assert transport.stats().errors == 2
        assert (paths.spool / ".20240501T120000000000Z-1-aa.json.tmp").exists()
    finally:
        await messages.aclose()
        await transport.aclose()


async def test_a_record_is_deleted_only_when_the_next_message_is_asked_for(
    paths: GammuPaths,
) -> None:
    for text in ("ONE", "TWO"):
        env = {"SMS_MESSAGES": "1", "SMS_1_NUMBER": A_NUMBER, "SMS_1_TEXT": text}
        write_record(paths.spool, build_record(env, [], now=datetime.now(UTC)))
    transport = GammuTransport(paths, poll_s=0.01)
    messages = transport.messages()
    assert (await next_message(messages)).text == "ONE"
    await messages.aclose()  # a crash while processing ONE: it comes again
    again = transport.messages()
    assert (await next_message(again)).text == "ONE"
    assert (await next_message(again)).text == "TWO"
    assert len(list(paths.spool.glob("*.json"))) == 1
    await again.aclose()
    await transport.aclose()
    assert [m async for m in transport.messages()] == []  # closed: the iterator ends


# ----------------------------------------------------------------------------- the real gammu-smsd


async def test_send_single_and_multipart_through_smsd(smsd_factory) -> None:
    smsd = smsd_factory(A_NUMBER, debuglevel=255)
    transport = smsd.transport()
    try:
        short = await transport.send(B_NUMBER, "CAFE0001")
        long = await transport.send(B_NUMBER, LONG)
        assert await short.wait(10) is SendStatus.SENT
        assert await long.wait(10) is SendStatus.SENT
        assert (smsd.paths.sent / long.id).read_text(encoding="utf-8") == LONG
        assert transport.queued() == []
        assert transport.stats().confirmed == 2
        log = smsd.log_text()
        assert f"Transmitted {long.id} (total: 3)" in log  # one message of 3 linked parts
        assert f"Transmitted {short.id} (total: 1)" in log
    finally:
        await transport.aclose()


async def test_receive_single_multipart_and_partial_through_the_hook(smsd_factory) -> None:
    smsd = smsd_factory(B_NUMBER)
    transport = smsd.transport()
    messages = transport.messages()
    try:
        smsd.inject(A_NUMBER, "ABCD")
        smsd.inject("+15550000003", LONG)
        got = {m.peer: m for m in [await next_message(messages), await next_message(messages)]}
        assert (got[A_NUMBER].text, got[A_NUMBER].parts) == ("ABCD", 1)
        assert (got["+15550000003"].text, got["+15550000003"].parts) == (LONG, 3)
        # part 2 lost: after MultipartTimeout (2 s) what came is delivered, joined
        smsd.inject("+15550000004", LONG, drop_parts={2})
        partial = await next_message(messages)
        assert (partial.peer, partial.parts) == ("+15550000004", 2)
        assert partial.text == LONG[:153] + LONG[306:]
        assert transport.stats().received_parts == 6
        assert not list(smsd.paths.spool.glob("*.json"))[1:]  # at most the last one unacked
    finally:
        await messages.aclose()
        await transport.aclose()


async def test_two_instances_a_to_b(smsd_factory) -> None:
    a, b = smsd_factory(A_NUMBER), smsd_factory(B_NUMBER)
    ta, tb = a.transport(), b.transport()
    received = tb.messages()
    try:
        receipts = [await ta.send(b.number, text) for text in ("0123", LONG, "4567")]
        for receipt in receipts:
            assert await receipt.wait(10) is SendStatus.SENT
        assert relay(a, b) == 3
        assert relay(a, b) == 0  # each sent file is carried once
        texts = []
        for _ in range(3):
            message = await next_message(received)
            assert message.peer == A_NUMBER
            texts.append(message.text)
        assert sorted(texts) == sorted(["0123", LONG, "4567"])
        # and back, with the relay running in the background
        back = ta.messages()
        async with relaying(b, a):
            await tb.send(a.number, "ACCE55")
            reply = await next_message(back)
        assert (reply.peer, reply.text) == (B_NUMBER, "ACCE55")
        await back.aclose()
    finally:
        await received.aclose()
        await ta.aclose()
        await tb.aclose()


async def test_messages_survive_an_smsd_restart(smsd_factory) -> None:
    smsd = smsd_factory(A_NUMBER, start=False)
    first = smsd.transport()
    ids = [(await first.send(B_NUMBER, f"{n:04X}")).id for n in range(3)]
    assert first.queued() == ids
    await first.aclose()  # the sending process goes away too
    smsd.inject(B_NUMBER, "BEEF")  # received by the phone while smsd is down
    smsd.start()
    later = smsd.transport()
    receipts = [later.track(name) for name in ids]  # queued by the process before
    messages = later.messages()
    try:
        for receipt in receipts:
            assert await receipt.wait(10) is SendStatus.SENT
        assert [p.name for p in smsd.sent_files()] == ids
        assert [p.read_text() for p in smsd.sent_files()] == ["0000", "0001", "0002"]
        assert (await next_message(messages)).text == "BEEF"
        # and again, with a message queued while smsd is stopped
        smsd.stop()
        queued = await later.send(B_NUMBER, "AFTER")
        with pytest.raises(DeviceTimeout):
            await queued.wait(0.3)
        smsd.start()
        assert await queued.wait(10) is SendStatus.SENT
    finally:
        await messages.aclose()
        await later.aclose()


async def test_a_half_written_inbox_file_is_never_read(smsd_factory) -> None:
    smsd: DummySmsd = smsd_factory(B_NUMBER)
    transport = smsd.transport()
    messages = transport.messages()
    try:
        # what smsd leaves while it is still writing: an inbox file without its hook call
        half = smsd.paths.inbox / "IN20240501_120000_00_+15550000009_00.txt"
        half.write_text("DEAD")
        smsd.inject(A_NUMBER, "FULL")
        message = await next_message(messages)
        assert (message.peer, message.text) == (A_NUMBER, "FULL")
        await eventually(lambda: not list(smsd.phone.glob("sms/1/*")))
        inbox = sorted(p.name for p in smsd.paths.inbox.iterdir())
        assert half.name in inbox and len(inbox) == 2  # smsd's own file is there too
        with pytest.raises(TimeoutError):
            await next_message(messages, timeout_s=0.3)
    finally:
        await messages.aclose()
        await transport.aclose()
