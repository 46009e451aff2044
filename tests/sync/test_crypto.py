"""The AEAD of Tonique: AES-CCM with an 8-byte tag, per-site HKDF keys, unique nonces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, KEY_B
from wesh.errors import UsageError
from wesh.sync.crypto import (
    MAX_SEQ,
    NONCE_BYTES,
    TAG_BYTES,
    Direction,
    SeqReservation,
    aead_open,
    aead_seal,
    cipher_for,
    make_nonce,
)
from wesh.sync.keys import SiteKey

nonce_inputs = st.tuples(
    st.integers(0, 0xFFFF), st.sampled_from(list(Direction)), st.integers(1, MAX_SEQ)
)


def test_nonce_layout() -> None:
    assert make_nonce(0x1234, Direction.DOWN, 0x01020304) == bytes.fromhex("12340101020304")
    assert len(make_nonce(1, Direction.UP, 1)) == NONCE_BYTES


@given(nonce_inputs, nonce_inputs)
def test_nonce_is_injective(a: tuple[int, Direction, int], b: tuple[int, Direction, int]) -> None:
    assert (make_nonce(*a) == make_nonce(*b)) == (a == b)


@pytest.mark.parametrize("seq", [0, MAX_SEQ + 1, -1])
def test_nonce_refuses_seq_out_of_range(seq: int) -> None:
    with pytest.raises(UsageError):
        make_nonce(1, Direction.UP, seq)


def test_nonce_refuses_key_id_out_of_range() -> None:
    with pytest.raises(UsageError):
        make_nonce(0x10000, Direction.UP, 1)


@given(st.binary(max_size=300), st.binary(max_size=20))
def test_seal_open_round_trip_and_tag_size(plaintext: bytes, aad: bytes) -> None:
    nonce = make_nonce(KEY_A.key_id, Direction.UP, 5)
    sealed = aead_seal(KEY_A, nonce, plaintext, aad)
    assert len(sealed) == len(plaintext) + TAG_BYTES
    assert aead_open(KEY_A, nonce, sealed, aad) == plaintext


def test_open_refuses_other_key_site_nonce_aad_or_flip() -> None:
    nonce = make_nonce(KEY_A.key_id, Direction.UP, 5)
    sealed = aead_seal(KEY_A, nonce, b"reading block", b"hdr")
    assert aead_open(KEY_B, nonce, sealed, b"hdr") is None
    assert aead_open(KEY_A, make_nonce(KEY_A.key_id, Direction.UP, 6), sealed, b"hdr") is None
    assert aead_open(KEY_A, nonce, sealed, b"hdR") is None
    for bit in range(len(sealed) * 8):
        flipped = bytearray(sealed)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert aead_open(KEY_A, nonce, bytes(flipped), b"hdr") is None
    assert aead_open(KEY_A, nonce, sealed[:-1], b"hdr") is None
    assert aead_open(KEY_A, nonce, sealed[:3], b"hdr") is None


def test_same_key_bytes_for_two_sites_give_two_keys() -> None:
    twin = SiteKey("site-twin", KEY_A.key_id, KEY_A.key)
    nonce = make_nonce(KEY_A.key_id, Direction.UP, 9)
    sealed = aead_seal(KEY_A, nonce, b"x" * 20, b"")
    assert aead_open(twin, nonce, sealed, b"") is None
    assert aead_seal(twin, nonce, b"x" * 20, b"") != sealed


def test_short_key_is_refused() -> None:
    with pytest.raises(UsageError):
        cipher_for(SiteKey("s", 1, b"short"))


def test_seq_reservation_never_repeats_across_crashes() -> None:
    persisted = 0
    used: list[int] = []
    res = SeqReservation(block=10)
    for crash_after in (3, 15, 1, 27, 0, 9):
        for _ in range(crash_after):
            seq = res.take()
            if res.must_persist:
                persisted = res.reserved_upto
                res.persisted()
            used.append(seq)
        res = SeqReservation(next_seq=persisted + 1, block=10)  # restart from disk
    assert len(used) == len(set(used))
    assert used == sorted(used)


def test_seq_reservation_asks_to_persist_once_per_block() -> None:
    res = SeqReservation(block=4)
    flags = []
    for _ in range(9):
        res.take()
        flags.append(res.must_persist)
        res.persisted()
    assert flags == [True, False, False, False, True, False, False, False, True]
    assert res.reserved_upto == 12


def test_seq_reservation_exhausted() -> None:
    res = SeqReservation(next_seq=MAX_SEQ)
    assert res.take() == MAX_SEQ
    with pytest.raises(UsageError):
        res.take()
