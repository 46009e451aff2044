"""Packet format v1: round trips of every type, header, padding, rejects, replay window."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, KEY_B, KEY_C, RawMessage, ring
from wesh.errors import DecodeError, UsageError
from wesh.sync.crypto import MAX_SEQ, Direction, aead_seal, make_nonce
from wesh.sync.keys import SiteKey
from wesh.sync.packet import (
    HEADER_BYTES,
    OVERHEAD_BYTES,
    AckMessage,
    AlarmMessage,
    DataMessage,
    Header,
    IntervalTarget,
    PacketError,
    PacketType,
    PartialAck,
    Reason,
    ReplayWindow,
    ReplyMessage,
    ReplyStatus,
    RequestSchema,
    RequestStatus,
    ResendSeqs,
    ResendTimes,
    SchemaMessage,
    SetClock,
    SetInterval,
    SetRelay,
    StatusMessage,
    open_packet,
    parse_header,
    seal_packet,
)

times = st.integers(0, 0xFFFF_FFFF).map(lambda s: datetime.fromtimestamp(s, UTC))
short_text = st.text(max_size=40)
name = st.text(min_size=1, max_size=30)
seqs = st.integers(1, MAX_SEQ)
hash4 = st.binary(min_size=4, max_size=4)


@st.composite
def acks(draw: st.DrawFn) -> AckMessage:
    cumulative = draw(st.integers(0, MAX_SEQ - 1))
    selective = draw(st.frozensets(st.integers(cumulative + 1, min(MAX_SEQ, cumulative + 3000))))
    partial = draw(
        st.lists(
            st.integers(2, 255).flatmap(
                lambda count: st.builds(
                    PartialAck,
                    st.integers(0, 127),
                    st.just(count),
                    st.frozensets(st.integers(0, count - 1)),
                )
            ),
            max_size=4,
        )
    )
    return AckMessage(cumulative, selective, tuple(partial))


@st.composite
def resend_seqs(draw: st.DrawFn) -> ResendSeqs:
    first = draw(seqs)
    return ResendSeqs(first, draw(st.integers(first, MAX_SEQ)))


@st.composite
def resend_times(draw: st.DrawFn) -> ResendTimes:
    start = draw(st.integers(0, 0xFFFF_FFFE))
    end = draw(st.integers(start + 1, 0xFFFF_FFFF))
    return ResendTimes(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))


messages = st.one_of(
    st.builds(DataMessage, hash4, st.binary(max_size=2000)),
    st.builds(
        AlarmMessage,
        times,
        st.sampled_from(["info", "warning", "alarm"]),
        short_text,
        short_text,
        st.none() | name,
        st.none() | name,
    ),
    acks(),
    st.builds(
        StatusMessage,
        times,
        *[st.integers(0, 10**9)] * 5,
        st.none() | st.integers(0, 100),
        st.none() | st.integers(-(10**9), 10**9).map(lambda ms: ms / 1000),
        st.none() | seqs,
    ),
    resend_seqs(),
    resend_times(),
    st.builds(
        SetInterval, st.sampled_from(list(IntervalTarget)), st.integers(1, 604800), st.none() | name
    ),
    st.builds(SetRelay, short_text, short_text, st.booleans()),
    st.builds(SetClock, times, st.none() | name),
    st.just(RequestStatus()),
    st.builds(RequestSchema, st.none() | hash4),
    st.builds(ReplyMessage, seqs, st.sampled_from(list(ReplyStatus)), short_text),
    st.builds(SchemaMessage, hash4, st.binary(max_size=3000)),
)


@given(messages, seqs, st.booleans())
def test_every_type_round_trips(message: object, seq: int, pad: bool) -> None:
    packet = seal_packet(message, key=KEY_A, seq=seq, pad=pad)  # type: ignore[arg-type]
    opened = open_packet(packet, keys=ring(KEY_A, KEY_B, KEY_C))
    assert opened.message == message
    assert opened.site == "site-a"
    assert opened.seq == seq
    assert opened.header.type == message.packet_type  # type: ignore[attr-defined]


def test_header_layout() -> None:
    packet = seal_packet(RequestStatus(), key=KEY_A, seq=0x01020304)
    # version 1, direction down (1), type COMMAND (5); key id 4242; seq
    assert packet[:HEADER_BYTES] == bytes([0b001_1_0101]) + (4242).to_bytes(2, "big") + bytes(
        [1, 2, 3, 4]
    )
    header = parse_header(packet)
    assert (header.type, header.direction, header.key_id, header.seq, header.version) == (
        PacketType.COMMAND,
        Direction.DOWN,
        4242,
        0x01020304,
        1,
    )
    assert packet[0] & 0x80 == 0  # whole packets are told from fragments by bit 7


def test_padding_fills_the_last_sms() -> None:
    small = seal_packet(ReplyMessage(1, ReplyStatus.OK), key=KEY_A, seq=1)
    assert len(small) == 80
    assert len(seal_packet(ReplyMessage(1, ReplyStatus.OK), key=KEY_A, seq=1, pad=False)) == (
        OVERHEAD_BYTES + 1 + 1 + 1 + 1
    )
    for size in (70, 100, 500, 3000):
        packet = seal_packet(DataMessage(b"abcd", bytes(size)), key=KEY_A, seq=2)
        assert len(packet) % 77 == 0
        assert len(packet) - 77 < OVERHEAD_BYTES + 4 + size + 1 <= len(packet)


def test_padding_hides_the_length_within_an_sms() -> None:
    sizes = {
        len(
            seal_packet(
                AlarmMessage(datetime(2024, 1, 1, tzinfo=UTC), "alarm", "k", "m" * n),
                key=KEY_A,
                seq=1,
            )
        )
        for n in range(40)
    }
    assert sizes == {80}


def test_direction_is_enforced() -> None:
    packet = seal_packet(ReplyMessage(1, ReplyStatus.OK), key=KEY_A, seq=1)
    open_packet(packet, keys=ring(KEY_A), direction=Direction.UP)
    with pytest.raises(PacketError) as info:
        open_packet(packet, keys=ring(KEY_A), direction=Direction.DOWN)
    assert info.value.reason is Reason.BAD_DIRECTION


def test_a_type_in_the_wrong_direction_is_refused_even_if_authentic() -> None:
    packet = bytearray(seal_packet(ReplyMessage(1, ReplyStatus.OK), key=KEY_A, seq=1))
    packet[0] |= 0x10  # REPLY claimed to travel down
    with pytest.raises(PacketError) as info:
        open_packet(bytes(packet), keys=ring(KEY_A))
    assert info.value.reason is Reason.BAD_TYPE


def test_forged_with_another_key_is_refused() -> None:
    forged = SiteKey("site-a", KEY_A.key_id, bytes(32))
    packet = seal_packet(DataMessage(b"abcd", b"evil"), key=forged, seq=5)
    with pytest.raises(PacketError) as info:
        open_packet(packet, keys=ring(KEY_A, KEY_B))
    assert info.value.reason is Reason.BAD_TAG
    assert isinstance(info.value, DecodeError)


def test_key_id_shared_by_two_sites_opens_with_the_right_one() -> None:
    packet = seal_packet(DataMessage(b"abcd", b"b's data"), key=KEY_B, seq=5)
    assert open_packet(packet, keys=ring(KEY_A, KEY_B)).site == "site-b"


def test_unknown_key_id() -> None:
    packet = seal_packet(DataMessage(b"abcd", b""), key=KEY_C, seq=5)
    with pytest.raises(PacketError) as info:
        open_packet(packet, keys=ring(KEY_A))
    assert info.value.reason is Reason.UNKNOWN_KEY


def test_every_bit_flip_is_refused() -> None:
    packet = seal_packet(ReplyMessage(9, ReplyStatus.FAILED, "relay stuck"), key=KEY_A, seq=77)
    keys = ring(KEY_A)
    reasons = set()
    for bit in range(len(packet) * 8):
        flipped = bytearray(packet)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(PacketError) as info:
            open_packet(bytes(flipped), keys=keys)
        reasons.add(info.value.reason)
    assert Reason.BAD_TAG in reasons
    assert reasons <= {
        Reason.BAD_TAG,
        Reason.BAD_VERSION,
        Reason.BAD_TYPE,
        Reason.UNKNOWN_KEY,
    }


def test_truncated_and_extended_packets_are_refused() -> None:
    packet = seal_packet(DataMessage(b"abcd", bytes(300)), key=KEY_A, seq=3)
    keys = ring(KEY_A)
    for cut in (0, 1, HEADER_BYTES, OVERHEAD_BYTES - 1):
        with pytest.raises(PacketError) as info:
            open_packet(packet[:cut], keys=keys)
        assert info.value.reason is Reason.TRUNCATED
    for cut in (OVERHEAD_BYTES, 100, len(packet) - 1):
        with pytest.raises(PacketError) as info:
            open_packet(packet[:cut], keys=keys)
        assert info.value.reason is Reason.BAD_TAG
    with pytest.raises(PacketError) as info:
        open_packet(packet + b"\x00", keys=keys)
    assert info.value.reason is Reason.BAD_TAG


def test_authentic_but_malformed_bodies_are_bad_body() -> None:
    keys = ring(KEY_A)
    cases = [
        (PacketType.ALARM, b"\x00\x00"),
        (PacketType.ACK, b"\x80"),
        (PacketType.STATUS, bytes(4) + b"\xf0"),
        (PacketType.COMMAND, b"\x63"),
        (PacketType.COMMAND, bytes([5])),
        (PacketType.REPLY, b"\x00\x00\x00"),
        (PacketType.REPLY, b"\x01\x63\x00"),
        (PacketType.SCHEMA, b"abcd\xff\xff"),
        (PacketType.DATA, b"abc"),
        (PacketType.ACK, b"\x00\x00\x00\x01"),  # trailing byte
    ]
    for ptype, body in cases:
        packet = seal_packet(RawMessage(ptype, body), key=KEY_A, seq=1)  # type: ignore[arg-type]
        with pytest.raises(PacketError) as info:
            open_packet(packet, keys=keys)
        assert info.value.reason is Reason.BAD_BODY, (ptype, body)
        assert info.value.host == "site-a"


def test_missing_padding_marker() -> None:
    header = Header(PacketType.REPLY, Direction.UP, KEY_A.key_id, 4).to_bytes()
    sealed = aead_seal(KEY_A, make_nonce(KEY_A.key_id, Direction.UP, 4), b"\x01\x00\x00", header)
    with pytest.raises(PacketError) as info:
        open_packet(header + sealed, keys=ring(KEY_A))
    assert info.value.reason is Reason.BAD_PADDING


def test_schema_bomb_is_refused() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(bytes(5 << 20)) + packer.flush()
    packet = seal_packet(RawMessage(PacketType.SCHEMA, b"abcd" + bomb), key=KEY_A, seq=1, pad=False)  # type: ignore[arg-type]
    with pytest.raises(PacketError) as info:
        open_packet(packet, keys=ring(KEY_A))
    assert info.value.reason is Reason.TOO_LARGE


@pytest.mark.parametrize(
    "message",
    [
        AlarmMessage(datetime(2024, 1, 1, tzinfo=UTC), "alarm", "k", "é" * 200),
        AlarmMessage(datetime(2024, 1, 1), "alarm", "k", "m"),  # noqa: DTZ001
        AlarmMessage(datetime(2024, 1, 1, tzinfo=UTC), "panic", "k", "m"),
        StatusMessage(datetime(2024, 1, 1, tzinfo=UTC), -1, 0, 0, 0, 0),
        StatusMessage(datetime(2024, 1, 1, tzinfo=UTC), 0, 0, 0, 0, 0, modem_signal_pct=101),
        ResendSeqs(5, 4),
        ResendTimes(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)),
        SetInterval(IntervalTarget.POLL, 0),
        ReplyMessage(0, ReplyStatus.OK),
        SetClock(datetime(1969, 1, 1, tzinfo=UTC)),
    ],
)
def test_unencodable_messages_are_usage_errors(message: object) -> None:
    with pytest.raises(UsageError):
        seal_packet(message, key=KEY_A, seq=1)  # type: ignore[arg-type]


def test_seq_zero_and_huge_packets_are_refused() -> None:
    with pytest.raises(UsageError):
        seal_packet(RequestStatus(), key=KEY_A, seq=0)
    with pytest.raises(UsageError):
        seal_packet(DataMessage(b"abcd", bytes(20_000)), key=KEY_A, seq=1)


def test_ack_ranges_are_compact() -> None:
    ack = AckMessage(100, frozenset(range(102, 160)) | {200})
    assert len(ack.encode()) <= 1 + 1 + 2 + 2 + 2 + 1
    assert ack.acknowledges(100) and ack.acknowledges(150) and not ack.acknowledges(101)


# ----------------------------------------------------------------------------- replay window


def test_replay_window_rejects_replays_and_acks_truthfully() -> None:
    window = ReplayWindow(size=64)
    for seq in (1, 2, 4, 5, 3, 7):
        window.check(seq)
        window.accept(seq)
    assert window.cumulative == 5
    assert window.ack() == AckMessage(5, frozenset({7}))
    for seq in (1, 3, 5, 7):
        with pytest.raises(PacketError) as info:
            window.check(seq)
        assert info.value.reason is Reason.REPLAY
    window.check(6)


def test_replay_window_refuses_what_fell_out_of_it() -> None:
    window = ReplayWindow(size=16)
    window.accept(1)
    window.accept(100)
    with pytest.raises(PacketError):
        window.check(84)
    window.check(85)
    assert window.cumulative == 1  # 2..99 never came: never claimed


def test_abandon_below_settles_the_gap() -> None:
    window = ReplayWindow(size=64)
    for seq in (1, 2, 300, 301):
        window.accept(seq)
    window.abandon_below(300)
    assert window.cumulative == 301
    assert window.ack() == AckMessage(301)


def test_replay_window_state_round_trips() -> None:
    window = ReplayWindow(size=32)
    for seq in (1, 2, 5, 9, 40):
        window.accept(seq)
    again = ReplayWindow.from_dict(window.to_dict())
    assert again.to_dict() == window.to_dict()
    assert again.ack() == window.ack()
    with pytest.raises(UsageError):
        ReplayWindow.from_dict({"size": 8})
    with pytest.raises(UsageError):
        ReplayWindow.from_dict({"size": 8, "cumulative": 5, "highest": 2, "bits": "0"})


@given(st.lists(st.integers(1, 400), max_size=200), st.integers(8, 128))
def test_replay_window_matches_a_model(arrivals: list[int], size: int) -> None:
    window = ReplayWindow(size=size)
    accepted: set[int] = set()
    highest = 0
    for seq in arrivals:
        model_ok = seq not in accepted and seq > highest - size
        try:
            window.check(seq)
        except PacketError:
            assert not model_ok
            continue
        assert model_ok
        window.accept(seq)
        accepted.add(seq)
        highest = max(highest, seq)
    ack = window.ack(max_ranges=10_000)
    assert all(s in accepted for s in range(1, ack.cumulative + 1))
    assert ack.selective <= accepted


def test_the_ack_example_of_the_protocol_document() -> None:
    ack = AckMessage(
        100, frozenset(range(102, 160)) | {200}, (PartialAck(17, 40, frozenset({3, 9})),)
    )
    assert ack.encode() == bytes.fromhex("64 02 01 39 28 00 01 11 28 08 02 00 00 00")
    assert AckMessage.decode(ack.encode()) == ack
    docs = Path(__file__).parents[2] / "docs" / "protocol.md"
    assert "`64 02 01 39 28 00 01 11 28 08 02 00 00 00`" in docs.read_text(encoding="utf-8")
