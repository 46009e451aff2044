"""Fuzz: random and mutated packets, texts, bodies and blocks raise nothing but the codec's error.

Every decoder of the sync codec is fed junk here: if anything but ``PacketError`` (a
``DecodeError``) escapes, or a mutated packet is accepted, the test fails.
"""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, KEY_B, RawMessage, ring
from wesh.sync.fragment import Reassembler, decode_text, fragment_packet
from wesh.sync.packet import (
    AlarmMessage,
    DataMessage,
    PacketError,
    PacketType,
    ReplyMessage,
    ReplyStatus,
    SchemaMessage,
    StatusMessage,
    open_packet,
    seal_packet,
)
from wesh.sync.readings import BaselineBook, Column, ReadingBlock, decode_block, encode_block
from wesh.sync.schema import Schema, SchemaChannel

KEYS = ring(KEY_A, KEY_B)
SCHEMA = Schema(
    [
        SchemaChannel("dw-01", "tic.1.index.base", "index", "Wh", 1),
        SchemaChannel("dw-01", "temp.1", "gauge", "°C", 0.1),
        SchemaChannel("dw-01", "impulsion.1.index", "index", "L", 10),
    ]
)
START = datetime(2024, 1, 15, tzinfo=UTC)
BLOCK = ReadingBlock(
    START,
    3600,
    6,
    (
        Column(0, (50, 60, 70, 80, 90, 100)),
        Column(1, (None, 15.2, 15.3, None, 16.0, 16.1), ("measured",) * 5 + ("suspect",)),
        Column(2, (100, 102, 103, 90, 91, 200), resets=frozenset({4})),
    ),
)
VALID = [
    seal_packet(encode_block(BLOCK, SCHEMA), key=KEY_A, seq=10),
    seal_packet(ReplyMessage(3, ReplyStatus.BUSY, "budget"), key=KEY_A, seq=11),
    seal_packet(
        StatusMessage(START, 40, 1, 12_000, 30, 200, 71, 0.25, 9), key=KEY_B, seq=12, pad=False
    ),
    seal_packet(AlarmMessage(START, "alarm", "leak", "fuite", "dw-01"), key=KEY_A, seq=13),
    seal_packet(SCHEMA.to_message(), key=KEY_A, seq=14),
]


def open_or_reject(packet: bytes) -> None:
    with contextlib.suppress(PacketError):
        open_packet(packet, keys=KEYS)


@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    open_or_reject(data)


@given(st.binary(min_size=7, max_size=7), st.binary(max_size=300))
def test_random_packets_with_a_known_key_id(header: bytes, rest: bytes) -> None:
    head = bytearray(header)
    head[0] = 0x20 | (head[0] & 0x1F)
    head[1:3] = KEY_A.key_id.to_bytes(2, "big")
    open_or_reject(bytes(head) + rest)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[bytes, bytes]:
    packet = draw(st.sampled_from(VALID))
    data = bytearray(packet)
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "delete", "splice"]))
    if kind == "flip":
        for bit in draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=8)):
            data[bit // 8] ^= 1 << (bit % 8)
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=40))
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        at = draw(st.integers(0, len(data) - 1))
        del data[at : at + draw(st.integers(1, 8))]
    else:
        other = draw(st.sampled_from(VALID))
        cut = draw(st.integers(1, min(len(data), len(other)) - 1))
        data = data[:cut] + bytearray(other[cut:])
    return packet, bytes(data)


@given(mutations())
def test_mutated_packets_are_rejected(pair: tuple[bytes, bytes]) -> None:
    original, mutated = pair
    if mutated == original:
        open_packet(mutated, keys=KEYS)
        return
    try:
        open_packet(mutated, keys=KEYS)
    except PacketError:
        return
    raise AssertionError("a mutated packet was accepted")


@given(st.text(max_size=400))
def test_random_texts(text: str) -> None:
    reassembler = Reassembler(max_bytes=100_000)
    with contextlib.suppress(PacketError):
        reassembler.feed("peer", text, now=0.0)
    with contextlib.suppress(PacketError):
        decode_text(text)


@given(st.lists(st.binary(min_size=1, max_size=80), max_size=30))
def test_random_fragment_streams(chunks: list[bytes]) -> None:
    reassembler = Reassembler(max_bytes=50_000, max_partials=20)
    for n, chunk in enumerate(chunks):
        try:
            out = reassembler.feed(f"p{n % 3}", chunk.hex(), now=float(n))
        except PacketError:
            continue
        if out is not None:
            open_or_reject(out)


@given(st.randoms(use_true_random=False), st.integers(0, 5))
def test_reordered_lost_and_damaged_fragments(rnd: random.Random, damage: int) -> None:
    packet = VALID[0] + b""
    big = seal_packet(DataMessage(b"abcd", bytes(1500)), key=KEY_A, seq=99)
    for target in (packet, big):
        texts = fragment_packet(target)
        rnd.shuffle(texts)
        texts = texts[: len(texts) - rnd.randrange(2)]
        for _ in range(damage if texts else 0):
            i = rnd.randrange(len(texts))
            chars = list(texts[i])
            j = rnd.randrange(6, len(chars)) if len(chars) > 6 else 0
            chars[j] = rnd.choice("0123456789ABCDEF")
            texts[i] = "".join(chars)
        reassembler = Reassembler()
        for text in texts:
            try:
                out = reassembler.feed("peer", text, now=0.0)
            except PacketError:
                continue
            if out is not None:
                try:
                    opened = open_packet(out, keys=KEYS)
                except PacketError:
                    continue
                assert out == target  # anything that opens is the genuine packet
                assert opened.seq in (10, 99)


@given(st.sampled_from(list(PacketType)), st.binary(max_size=400))
def test_authentic_garbage_bodies(ptype: PacketType, body: bytes) -> None:
    """A buggy sender with a valid key: bodies that do not parse are bad_body, nothing else."""
    packet = seal_packet(RawMessage(ptype, body), key=KEY_A, seq=5, pad=False)  # type: ignore[arg-type]
    open_or_reject(packet)


@given(st.binary(max_size=400), st.booleans())
def test_authentic_garbage_blocks(block: bytes, with_book: bool) -> None:
    book = BaselineBook()
    for hour in range(-48, 1):
        for channel in SCHEMA:
            book.record(channel.key, START + timedelta(hours=hour), 0)
    message = DataMessage(SCHEMA.hash, block)
    with contextlib.suppress(PacketError):
        decode_block(message, SCHEMA, baseline=book if with_book else None)


@st.composite
def mutated_blocks(draw: st.DrawFn) -> bytes:
    data = bytearray(encode_block(BLOCK, SCHEMA, compress=draw(st.booleans())).block)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@given(mutated_blocks())
def test_mutated_blocks(block: bytes) -> None:
    with contextlib.suppress(PacketError):
        decode_block(DataMessage(SCHEMA.hash, block), SCHEMA)


@given(st.binary(max_size=300))
def test_random_schema_texts(data: bytes) -> None:
    with contextlib.suppress(PacketError):
        Schema.from_canonical(b"wesh-schema v1\n" + data)
    with contextlib.suppress(PacketError):
        Schema.from_message(SchemaMessage(b"abcd", data))
