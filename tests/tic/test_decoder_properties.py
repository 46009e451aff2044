"""Hypothesis properties of wesh.tic.decoder: round trip, robustness, error detection."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wesh.tic.decoder import (
    FrameDecoder,
    _new_frame,
    _new_group,
    _parse_body,
    _parse_detailed,
    decode,
    parse_group,
)
from wesh.tic.encoder import checksum, encode_frame, encode_group, make_group
from wesh.tic.model import Frame, Group, Mode

from .test_decoder import check_accounting

H = Mode.HISTORIQUE
S = Mode.STANDARD

LABEL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x60))  # what TIC data may hold
DIGITS = "0123456789"

labels = st.text(LABEL_CHARS, min_size=1, max_size=8)
hist_values = st.text(PRINTABLE.replace(" ", ""), min_size=1, max_size=16)
horodates = st.builds(
    lambda season, digits: season + digits,
    st.sampled_from("EHeh "),
    st.text(DIGITS, min_size=12, max_size=12),
)


def _looks_horodated(value: str) -> bool:
    return len(value) >= 13 and value[0] in "EHeh " and value[1:13].isdigit()


std_values = st.text(PRINTABLE, min_size=1, max_size=32).filter(lambda v: not _looks_horodated(v))

Spec = tuple[str, str, str | None]


@st.composite
def frames(draw: st.DrawFn, *, realistic_horodated: bool = False) -> tuple[Mode, list[Spec]]:
    """A mode and the groups of a valid frame of that mode."""
    mode = draw(st.sampled_from([H, S]))
    if mode is H:
        groups = st.tuples(labels, hist_values, st.none())
    else:
        # Horodated labels carry numbers (or nothing, like DATE) in the specification.
        data = st.text(DIGITS, max_size=9) if realistic_horodated else st.text(PRINTABLE)
        groups = st.tuples(labels, std_values, st.none()) | st.tuples(labels, data, horodates)
    return mode, draw(st.lists(groups, min_size=1, max_size=12))


def expected(mode: Mode, specs: Sequence[Spec]) -> Frame:
    return Frame(mode, tuple(make_group(lb, v, mode=mode, horodate=h) for lb, v, h in specs), True)


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)] if sizes else len(data)
        out.append(data[pos : pos + size])
        pos += size
        i += 1
    return out


def feed_all(chunks: Sequence[bytes], **kwargs: int) -> tuple[list[Frame], dict[str, int]]:
    dec = FrameDecoder(**kwargs)
    bound = kwargs.get("max_frame_bytes", 4096)
    out: list[Frame] = []
    for chunk in chunks:
        out += dec.feed(chunk)
        assert dec.buffered_bytes <= bound
        check_accounting(dec)
    out += dec.flush()
    check_accounting(dec)
    return out, dec.stats.as_dict()


chunk_sizes = st.lists(st.integers(1, 300), max_size=20)


@given(frames(), chunk_sizes)
def test_round_trip(frame: tuple[Mode, list[Spec]], sizes: list[int]) -> None:
    mode, specs = frame
    data = encode_frame(specs, mode=mode)
    assert decode(data) == [expected(mode, specs)]
    assert feed_all(cut(data, sizes))[0] == [expected(mode, specs)]
    assert decode(data, mode=mode) == [expected(mode, specs)]


@given(st.lists(frames(), min_size=1, max_size=5), chunk_sizes)
def test_round_trip_of_a_stream(stream: list[tuple[Mode, list[Spec]]], sizes: list[int]) -> None:
    data = b"".join(encode_frame(specs, mode=mode) for mode, specs in stream)
    frames_out, stats = feed_all(cut(data, sizes))
    assert frames_out == [expected(mode, specs) for mode, specs in stream]
    assert stats["bytes_skipped"] == stats["bytes_dropped"] == 0
    assert stats["groups_ok"] == sum(len(specs) for _, specs in stream)


# Bytes that matter to the decoder come often; any byte may come.
noisy_bytes = st.lists(
    st.sampled_from(b"\x02\x03\x04\n\r\t \x0b\x0c\x0e\x0f\x82\x83AZ09") | st.integers(0, 255),
    max_size=1500,
).map(bytes)


@given(noisy_bytes, chunk_sizes, st.integers(9, 300), st.integers(5, 80))
def test_random_bytes_never_raise_and_stay_bounded(
    data: bytes, sizes: list[int], max_frame: int, max_group: int
) -> None:
    limits = {"max_frame_bytes": max_frame, "max_group_bytes": max_group}
    whole = feed_all([data], **limits)
    pieces = feed_all(cut(data, sizes), **limits)
    assert pieces == whole
    for frame in whole[0]:
        assert frame.groups
        assert (frame.mode is None) == (not frame.valid_groups)
        assert len(frame.errors) >= len(frame.groups) - len(frame.valid_groups)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    stream = draw(st.lists(frames(), min_size=1, max_size=4))
    data = bytearray(b"".join(encode_frame(specs, mode=mode) for mode, specs in stream))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif op == "delete" and len(data) > 1:
            del data[pos]
        else:
            data[pos] = draw(st.sampled_from(b"\x02\x03\x04\n\r\t \x0b\x0c\x0e\x0f"))
    return bytes(data)


@given(mutated_streams(), chunk_sizes, st.integers(40, 600))
def test_mutated_streams_never_raise_and_do_not_depend_on_chunking(
    data: bytes, sizes: list[int], max_frame: int
) -> None:
    whole = feed_all([data], max_frame_bytes=max_frame)
    assert feed_all(cut(data, sizes), max_frame_bytes=max_frame) == whole
    assert feed_all(cut(data, [1]), max_frame_bytes=max_frame) == whole


def _key(g: Group) -> tuple[str, str, str | None, Mode | None]:
    return (g.label, g.value, g.horodate, g.mode)


@given(frames(realistic_horodated=True), st.data())
def test_a_single_bit_flip_in_a_zone_is_always_detected(
    frame: tuple[Mode, list[Spec]], data: st.DataObject
) -> None:
    mode, specs = frame
    index = data.draw(st.integers(0, len(specs) - 1), label="group")
    encoded = [encode_group(lb, v, mode=mode, horodate=h) for lb, v, h in specs]
    # zone: label .. data (historique), label .. the HT before the checksum (standard)
    zone_len = len(encoded[index]) - (4 if mode is H else 3)
    pos = data.draw(st.integers(0, zone_len - 1), label="position")
    bit = data.draw(st.integers(0, 6), label="bit")  # bit 7 is the parity, masked
    offset = 1 + sum(len(g) for g in encoded[:index]) + 1 + pos
    stream = bytearray(encode_frame(specs, mode=mode))
    stream[offset] ^= 1 << bit
    original = expected(mode, specs)
    out = decode(bytes(stream))

    assert out != [original]
    allowed = Counter(_key(g) for g in original.groups)
    allowed[_key(original.groups[index])] -= 1
    got = Counter(_key(g) for f in out for g in f.valid_groups)
    assert got <= allowed, (got - allowed, bytes(stream))


@given(frames(), st.integers(1, 400))
def test_joining_mid_stream_loses_only_the_first_frame(
    frame: tuple[Mode, list[Spec]], skip: int
) -> None:
    mode, specs = frame
    data = encode_frame(specs, mode=mode)
    assume(skip < len(data))
    out = decode(data[skip:] + data)
    assert out[-1] == expected(mode, specs)
    assert len(out) <= 2


# A flipped bit can turn a label character into a line break or a frame delimiter:
# J..O lose bit 6 -> 0x0A..0x0F (LF, 0x0B, 0x0C, CR, 0x0E, 0x0F), '+' and '-' lose bit
# 5 -> 0x0B and CR, B/C/D lose bit 6 -> STX/ETX/EOT. When the label characters up to it
# sum to 0 mod 64, what follows has the checksum of the whole group: the worst case.
BREAKERS = {"J": 6, "K": 6, "L": 6, "M": 6, "N": 6, "O": 6, "+": 5, "-": 5, "B": 6, "C": 6, "D": 6}


# The shortest label text whose bytes sum to each residue mod 64.
ADJUST: dict[int, str] = {}
for _text in [*LABEL_CHARS, *(a + b for a in LABEL_CHARS for b in LABEL_CHARS)]:
    ADJUST.setdefault(sum(_text.encode()) % 64, _text)
assert len(ADJUST) == 64


@st.composite
def dangerous_labels(draw: st.DrawFn) -> tuple[str, int, int]:
    """A label, the position of a character to flip, and the bit that breaks it."""
    char = draw(st.sampled_from(sorted(BREAKERS)))
    head = draw(st.text(LABEL_CHARS, max_size=3))
    prefix = head + ADJUST[-(sum(head.encode()) + ord(char)) % 64]
    suffix = draw(st.text(LABEL_CHARS, min_size=1, max_size=7 - len(prefix)))
    assert sum((prefix + char).encode()) % 64 == 0
    return prefix + char + suffix, len(prefix), BREAKERS[char]


@given(frames(realistic_horodated=True), dangerous_labels(), st.data())
def test_a_flip_into_a_line_break_never_yields_a_valid_fragment(
    frame: tuple[Mode, list[Spec]], dangerous: tuple[str, int, int], data: st.DataObject
) -> None:
    mode, specs = frame
    label, pos, bit = dangerous
    index = data.draw(st.integers(0, len(specs)), label="group")
    value = "0123" if mode is H else "00 12"
    horodate = data.draw(st.none() | horodates) if mode is S else None
    specs = [*specs[:index], (label, value, horodate), *specs[index:]]
    encoded = [encode_group(lb, v, mode=mode, horodate=h) for lb, v, h in specs]
    offset = 1 + sum(len(g) for g in encoded[:index]) + 1 + pos
    stream = bytearray(encode_frame(specs, mode=mode))
    stream[offset] ^= 1 << bit
    assert stream[offset] in b"\x02\x03\x04\n\x0b\x0c\r\x0e\x0f"
    original = expected(mode, specs)
    out = decode(bytes(stream))

    allowed = Counter(_key(g) for g in original.groups)
    allowed[_key(original.groups[index])] -= 1
    got = Counter(_key(g) for f in out for g in f.valid_groups)
    assert got <= allowed, (got - allowed, bytes(stream))


# The decoder parses groups with a fast path (regular expressions) and falls back on a
# reference parser that explains errors: both must agree on every input.
group_bodies = st.lists(
    st.sampled_from(b" \t0123456789ABEHIJKMNOPZehp+-_.\\`\x01\x0e") | st.integers(0, 127),
    max_size=40,
).map(bytes)


@st.composite
def near_valid_bodies(draw: st.DrawFn) -> bytes:
    """Group bodies close to the rules (too long, odd characters, odd horodates...),
    most with the checksum their separator calls for, so that only the rules decide."""
    mode = draw(st.sampled_from([H, S]))
    label = draw(st.text(LABEL_CHARS + "a.", max_size=10))
    value = draw(
        st.text(PRINTABLE + "`\tae~", max_size=20)
        | st.builds(str.__add__, horodates, st.text(DIGITS + "A", max_size=5))
    )
    horodate = draw(st.none() | horodates | st.text("EHeh X0123456789", max_size=14))
    sep = " " if mode is H else "\t"
    if mode is H:
        zone = f"{label}{sep}{value}"
    elif horodate is None:
        zone = f"{label}{sep}{value}{sep}"
    else:
        zone = f"{label}{sep}{horodate}{sep}{value}{sep}"
    raw = zone.encode()
    tail = (b" " if mode is H else b"") + bytes((checksum(raw),))
    if draw(st.integers(0, 9)) == 0:
        tail = draw(st.binary(max_size=3).map(lambda b: bytes(c & 0x7F for c in b)))
    return raw + tail


@given(group_bodies | near_valid_bodies())
def test_fast_group_parser_agrees_with_the_reference(body: bytes) -> None:
    assert _parse_body(body) == _parse_detailed(body)


@given(st.integers(520, 2000), st.integers(0x20, 0x5F))
def test_long_bodies_use_the_exact_sum(length: int, fill: int) -> None:
    # Above 512 bytes the Adler-32 shortcut could wrap: parse_group must not use it.
    data = bytes([fill]) * length
    for body in (b"LABEL " + data + b" ", b"LABEL\t" + data + b"\t"):
        for chk in range(0x20, 0x60):
            group = parse_group(body + bytes((chk,)))
            assert group == _parse_detailed(body + bytes((chk,)))


def test_fast_constructors_build_equal_objects() -> None:
    g = Group("EAST", "000123456", None, "X", True, H, None)
    assert _new_group("EAST", "000123456", None, "X", True, H, None) == g
    fast = _new_frame(S, (g,), False, ("e",), True)
    slow = Frame(S, (g,), False, ("e",))
    assert fast == slow
    assert fast.all_valid is slow.all_valid is True
    bad = dataclasses.replace(g, checksum_ok=False)
    assert not Frame(S, (g, bad), True).all_valid
    assert Frame(S, (g, bad), True).values() == {"EAST": "000123456"}
    # a frozen object stays frozen
    made = _new_group("A", "1", None, "X", True, H, None)
    with pytest.raises(AttributeError):
        made.label = "B"  # type: ignore[misc]
