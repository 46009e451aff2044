"""SMS fragments: cutting, reassembly with loss, duplicates, reordering, timeout, memory caps."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, ring
from wesh.errors import UsageError
from wesh.sync.fragment import (
    CHUNK_BYTES,
    SMS_CHARS,
    Fragment,
    Reassembler,
    decode_text,
    fragment_packet,
    parts_for,
)
from wesh.sync.packet import DataMessage, PacketError, PartialAck, Reason, open_packet, seal_packet
from wesh.sync.transport import check_text


def packet_of(size: int, seq: int = 1) -> bytes:
    return seal_packet(
        DataMessage(b"abcd", bytes(range(256)) * (size // 256) + bytes(size % 256)),
        key=KEY_A,
        seq=seq,
    )


def test_small_packet_is_one_plain_text() -> None:
    packet = seal_packet(DataMessage(b"abcd", b"x"), key=KEY_A, seq=1)
    texts = fragment_packet(packet)
    assert texts == [packet.hex().upper()]
    assert len(texts[0]) == SMS_CHARS
    assert decode_text(texts[0]) == packet
    assert decode_text(texts[0].lower() + "\n") == packet


@given(st.integers(0, 8000), st.integers(1, 2**32 - 1))
def test_fragments_fit_one_sms_each_and_rebuild_the_packet(size: int, seq: int) -> None:
    packet = packet_of(size, seq)
    texts = fragment_packet(packet)
    assert len(texts) == parts_for(len(packet))
    for text in texts:
        assert len(text) <= SMS_CHARS
        check_text(text)  # the transports' own rule: GSM-safe printable ASCII
    if len(texts) > 1:
        frags = [decode_text(t) for t in texts]
        assert all(isinstance(f, Fragment) for f in frags)
        assert {f.packet_id for f in frags} == {seq & 0x7F}  # type: ignore[union-attr]
        assert all(len(f.chunk) == CHUNK_BYTES for f in frags[:-1])  # type: ignore[union-attr]
    reassembler = Reassembler()
    out = [reassembler.feed("+33600000001", t, now=0.0) for t in texts]
    assert out[-1] == packet
    assert all(o is None for o in out[:-1])
    assert reassembler.partial_count == 0
    assert reassembler.held_bytes == 0


def test_cut_is_deterministic() -> None:
    packet = packet_of(3000)
    assert fragment_packet(packet) == fragment_packet(packet)


@given(st.integers(200, 4000), st.randoms(use_true_random=False))
def test_any_order_with_duplicates(size: int, rnd: random.Random) -> None:
    packet = packet_of(size)
    texts = fragment_packet(packet)
    feed = texts + rnd.sample(texts, k=min(3, len(texts)))
    rnd.shuffle(feed)
    reassembler = Reassembler()
    results = []
    for text in feed:
        out = reassembler.feed("peer", text, now=0.0)
        if out is not None:
            reassembler.confirm("peer", out)  # it opened
        results.append(out)
    assert [r for r in results if r is not None] == [packet]
    assert reassembler.stats.completed == 1
    assert reassembler.stats.duplicates == len(feed) - len(texts)


def test_a_lost_part_costs_one_retransmission() -> None:
    packet = packet_of(2000, seq=300)
    texts = fragment_packet(packet)
    reassembler = Reassembler()
    for index, text in enumerate(texts):
        if index != 5:
            assert reassembler.feed("+33611111111", text, now=10.0) is None
    partials = reassembler.partials("+33611111111")
    assert partials == [PartialAck(300 & 0x7F, len(texts), frozenset({5}))]
    assert reassembler.partials("someone else") == []
    # the site re-sends only what the ACK asks for, cut from the packet it kept
    resent = [fragment_packet(packet)[i] for i in partials[0].missing]
    assert reassembler.feed("+33611111111", resent[0], now=500.0) == packet
    assert open_packet(packet, keys=ring(KEY_A)).seq == 300


def test_senders_are_kept_apart() -> None:
    a, b = packet_of(500, seq=1), packet_of(600, seq=1)  # same packet id
    reassembler = Reassembler()
    ta, tb = fragment_packet(a), fragment_packet(b)
    done = []
    for x, y in zip(ta, tb, strict=False):
        done.append(reassembler.feed("A", x, now=0.0))
        done.append(reassembler.feed("B", y, now=0.0))
    for rest in tb[len(ta) :]:
        done.append(reassembler.feed("B", rest, now=0.0))
    assert [d for d in done if d is not None] == [a, b]


def test_partial_packets_time_out() -> None:
    texts = fragment_packet(packet_of(1000))
    reassembler = Reassembler(timeout_s=3600)
    reassembler.feed("peer", texts[0], now=0.0)
    reassembler.feed("peer", texts[1], now=3000.0)
    assert reassembler.expire(now=6600.0) == 0  # idle for 3600 s only
    assert reassembler.partial_count == 1
    assert reassembler.expire(now=6601.0) == 1
    assert reassembler.partial_count == 0
    assert reassembler.held_bytes == 0
    assert reassembler.stats.expired == 1
    for text in texts[2:]:  # the rest arrives too late: a new, incomplete partial
        assert reassembler.feed("peer", text, now=6700.0) is None


def test_conflicting_fragment_keeps_the_first() -> None:
    packet = packet_of(400)
    texts = fragment_packet(packet)
    forged = bytearray(bytes.fromhex(texts[1]))
    forged[-1] ^= 0xFF
    reassembler = Reassembler()
    reassembler.feed("peer", texts[1], now=0.0)
    reassembler.feed("peer", forged.hex(), now=0.0)
    assert reassembler.stats.conflicts == 1
    out = [reassembler.feed("peer", t, now=0.0) for t in texts]
    assert packet in out


def test_new_packet_reusing_the_id_replaces_the_stale_partial() -> None:
    old, new = packet_of(1000, seq=5), packet_of(300, seq=5 + 128)
    reassembler = Reassembler()
    reassembler.feed("peer", fragment_packet(old)[0], now=0.0)
    out = [reassembler.feed("peer", t, now=1.0) for t in fragment_packet(new)]
    assert out[-1] == new


def test_late_duplicates_of_a_confirmed_packet_are_ignored() -> None:
    packet = packet_of(500)
    texts = fragment_packet(packet)
    reassembler = Reassembler()
    for text in texts:
        out = reassembler.feed("peer", text, now=0.0)
    assert out == packet
    reassembler.confirm("peer", packet)  # it opened
    assert reassembler.feed("peer", texts[2], now=5.0) is None
    assert reassembler.partial_count == 0
    assert reassembler.stats.duplicates == 1


def test_a_corrupted_reassembly_does_not_poison_the_resend() -> None:
    """A damaged fragment spoils one reassembly; the sender's re-sent copy still completes."""
    packet = packet_of(200, seq=12)
    texts = fragment_packet(packet)
    assert len(texts) == 3
    damaged = texts[1][:20] + ("0" if texts[1][20] != "0" else "1") + texts[1][21:]
    reassembler = Reassembler()
    outs = [reassembler.feed("peer", t, now=0.0) for t in (texts[0], damaged, texts[2])]
    bad = outs[-1]
    assert bad is not None and bad != packet
    with pytest.raises(PacketError):
        open_packet(bad, keys=ring(KEY_A))  # not confirmed
    outs = [reassembler.feed("peer", t, now=60.0) for t in texts]  # the site re-sends
    assert outs[-1] == packet
    reassembler.confirm("peer", packet)
    assert all(reassembler.feed("peer", t, now=61.0) is None for t in texts)
    assert reassembler.partial_count == 0


def test_per_sender_cap() -> None:
    reassembler = Reassembler(max_partials_per_sender=3)
    for seq in range(10):
        reassembler.feed("flooder", fragment_packet(packet_of(500, seq=seq + 1))[0], now=float(seq))
    assert reassembler.partial_count == 3
    assert reassembler.stats.evicted == 7
    assert {p.packet_id for p in reassembler.partials("flooder")} == {8, 9, 10}


def test_junk_flood_stays_within_the_memory_caps() -> None:
    rnd = random.Random(7)
    reassembler = Reassembler(max_bytes=200_000, max_partials=500)
    legit = fragment_packet(packet_of(3000, seq=42))
    completed = []
    for n in range(20_000):
        header = bytes([0x80 | rnd.randrange(128), rnd.randrange(1, 255), 255])
        junk = (header + rnd.randbytes(rnd.randrange(1, 78))).hex()
        reassembler.feed(f"+3361{rnd.randrange(10**6):06d}", junk, now=n / 10)
        assert reassembler.held_bytes <= 200_000
        assert reassembler.partial_count <= 500
        if n % 400 == 0 and n // 400 < len(legit):
            out = reassembler.feed("+33699999999", legit[n // 400], now=n / 10)
            if out is not None:
                completed.append(out)
    assert reassembler.stats.evicted > 0
    assert reassembler.stats.fragments > 10_000
    assert completed == [packet_of(3000, seq=42)]  # fed now and then, it survived the flood


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", Reason.BAD_TEXT),
        ("ABC", Reason.BAD_TEXT),
        ("ZZ", Reason.BAD_TEXT),
        ("AB CD", Reason.BAD_TEXT),
        ("80", Reason.BAD_FRAGMENT),
        ("800101" + "00", Reason.BAD_FRAGMENT),  # count 1
        ("800303" + "00", Reason.BAD_FRAGMENT),  # index >= count
        ("00" * 20_000, Reason.TOO_LARGE),
    ],
)
def test_bad_texts(text: str, reason: Reason) -> None:
    reassembler = Reassembler()
    with pytest.raises(PacketError) as info:
        reassembler.feed("peer", text, now=0.0)
    assert info.value.reason is reason
    assert reassembler.stats.rejected == 1


def test_fragment_refuses_non_packets_and_tiny_sizes() -> None:
    with pytest.raises(UsageError):
        fragment_packet(b"\x80abc")
    with pytest.raises(UsageError):
        fragment_packet(packet_of(500), max_chars=6)
    assert len(fragment_packet(packet_of(5000), max_chars=None)) == 1
    assert all(len(t) <= 152 for t in fragment_packet(packet_of(2000), max_chars=152))
