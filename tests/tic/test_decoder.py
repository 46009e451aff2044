"""Tests of wesh.tic.decoder: fixtures replayed in pieces, framing, noise, sanity checks."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from wesh.errors import UsageError
from wesh.tic.decoder import DecoderStats, FrameDecoder, decode, parse_group
from wesh.tic.encoder import checksum, encode_frame, encode_group, make_group
from wesh.tic.model import Frame, Group, Mode

H = Mode.HISTORIQUE
S = Mode.STANDARD
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tic"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.bin"))


# -- helpers -----------------------------------------------------------------------


def run(chunks: Iterable[bytes], **kwargs: Any) -> tuple[list[Frame], FrameDecoder]:
    """Feed every chunk, then flush; check the bounds and the byte accounting."""
    dec = FrameDecoder(**kwargs)
    limit = kwargs.get("max_frame_bytes", 4096)
    frames: list[Frame] = []
    for chunk in chunks:
        frames += dec.feed(chunk)
        assert dec.buffered_bytes <= limit
        check_accounting(dec)
    frames += dec.flush()
    assert dec.buffered_bytes == 0
    check_accounting(dec)
    return frames, dec


def check_accounting(dec: FrameDecoder) -> None:
    st = dec.stats
    placed = st.bytes_skipped + st.bytes_in_frames + st.bytes_dropped + dec.buffered_bytes
    assert placed == st.bytes_in, st


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: object) -> list[bytes]:
    rng = random.Random(str(seed))
    out, pos = [], 0
    while pos < len(data):
        size = rng.choice((1, 2, 3, 7, 16, 64, 255, 1000, 5000))
        out.append(data[pos : pos + size])
        pos += size
    return out


def as_json(frames: Sequence[Frame]) -> list[dict[str, Any]]:
    return [
        {
            "mode": None if f.mode is None else str(f.mode),
            "complete": f.complete,
            "groups": [[g.label, g.value, g.horodate, g.valid] for g in f.groups],
            "errors": list(f.errors),
        }
        for f in frames
    ]


def load(name: str) -> tuple[bytes, dict[str, Any]]:
    data = (FIXTURES / f"{name}.bin").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    return data, expected


def with_checksum(zone: str, mode: Mode) -> bytes:
    """Body of a group: the zone, the separator if historique, a correct checksum."""
    raw = zone.encode("ascii")
    if mode is H:
        return raw + b" " + bytes((checksum(raw),))
    return raw + bytes((checksum(raw),))


# -- fixtures ----------------------------------------------------------------------


def test_fixture_folder_is_populated() -> None:
    assert len(FIXTURE_NAMES) >= 25
    for name in FIXTURE_NAMES:
        assert (FIXTURES / f"{name}.json").exists(), name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("cut", ["whole", "bytewise", "random"])
def test_fixture(name: str, cut: str) -> None:
    data, expected = load(name)
    chunks = {"whole": whole, "bytewise": bytewise, "random": lambda d: random_chunks(d, name)}
    frames, dec = run(chunks[cut](data), **expected["decoder"])
    assert as_json(frames) == expected["frames"]
    stats = dec.stats.as_dict()
    assert {k: stats[k] for k in expected["stats"]} == expected["stats"]


def test_fixture_decode_function_matches() -> None:
    for name in FIXTURE_NAMES:
        data, expected = load(name)
        if not expected["decoder"]:
            assert as_json(decode(data)) == expected["frames"], name


def _ends_inside_a_frame(expected: dict[str, Any]) -> bool:
    frames = expected["frames"]
    return bool(frames) and "missing ETX: end of input" in frames[-1]["errors"]


def test_all_fixtures_concatenated() -> None:
    # Fixtures that end inside a frame go last: their frame ends with the input.
    names = sorted(FIXTURE_NAMES, key=lambda n: _ends_inside_a_frame(load(n)[1]))
    assert sum(_ends_inside_a_frame(load(n)[1]) for n in names) == 1
    data = b"".join(load(n)[0] for n in names)
    expected = [f for n in names for f in load(n)[1]["frames"]]
    results = [
        as_json(run(cut)[0])
        for cut in (whole(data), bytewise(data), random_chunks(data, 1), random_chunks(data, 2))
    ]
    for result in results:
        assert result == expected


def test_fixture_groups_are_realistic() -> None:
    """Every valid group of the fixtures round-trips through the encoder."""
    for name in FIXTURE_NAMES:
        data, _ = load(name)
        for frame in decode(data):
            for g in frame.valid_groups:
                if len(g.label) <= 8:  # wesh's encoder refuses SMAXSN1-1 and its kin
                    assert g.mode is not None
                    assert make_group(g.label, g.value, mode=g.mode, horodate=g.horodate) == g


# -- groups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "label", "value", "horodate", "mode", "chk"),
    [
        (b"IMAX 090 H", "IMAX", "090", None, H, "H"),
        (b"PTEC HP..  ", "PTEC", "HP..", None, H, " "),
        (b"EASD01\t000000000\t ", "EASD01", "000000000", None, S, " "),
        (b"ADSC\t012345678910\t;", "ADSC", "012345678910", None, S, ";"),
        (b"DATE\tH240210121355\t\t;", "DATE", "", "H240210121355", S, ";"),
        (b"DATE\tE210414082625\t\tA", "DATE", "", "E210414082625", S, "A"),
        (b"SMAXSN\tH240210110331\t00986\t6", "SMAXSN", "00986", "H240210110331", S, "6"),
        (b"DPM1\t 200214060000\t00\t\\", "DPM1", "00", " 200214060000", S, "\\"),
        (b"HCHP 019571184 7", "HCHP", "019571184", None, H, "7"),
    ],
)
def test_reference_examples(
    body: bytes, label: str, value: str, horodate: str | None, mode: Mode, chk: str
) -> None:
    assert parse_group(body) == Group(label, value, horodate, chk, True, mode, None)
    assert parse_group(body, mode=mode).valid


@pytest.mark.parametrize("label", ["PJOURF+1", "SMAXSN-1", "SMAXSN1-1", "BBRHCJB", "ERQ1", "A_B"])
def test_unusual_labels_are_valid(label: str) -> None:
    g = parse_group(with_checksum(f"{label}\t00123\t", S))
    assert g.valid, g
    assert g.label == label


def test_historique_group_with_the_standard_checksum_is_invalid() -> None:
    zone = b"PAPP 01920 "  # the standard rule counts the separator
    g = parse_group(zone + bytes((checksum(zone),)))
    assert not g.valid
    assert g.mode is H
    assert g.error == (
        f"bad checksum {chr(checksum(zone))!r} (expected {chr(checksum(zone[:-1]))!r}); "
        "it is the standard rule's value"
    )


def test_standard_group_with_the_historique_checksum_is_invalid() -> None:
    body = b"SINSTS\t00958\t" + bytes((checksum(b"SINSTS\t00958"),))
    g = parse_group(body)
    assert not g.valid
    assert g.mode is S
    assert g.error is not None
    assert g.error.endswith("it is the historique rule's value")


@pytest.mark.parametrize("target", [" ", "\\", "_"])
@pytest.mark.parametrize("mode", [H, S])
def test_checksum_edge_characters(target: str, mode: Mode) -> None:
    rng = random.Random(0)
    for _ in range(10_000):
        label = rng.choice(["EAST", "BASE", "HCHC", "HCHP", "PAPP"])
        g = make_group(label, f"{rng.randrange(10**9):09d}", mode=mode)
        if g.checksum == target:
            break
    else:
        pytest.fail("no value found")
    body = encode_group(g.label, g.value, mode=mode)[1:-1]
    assert body.endswith(target.encode())
    assert parse_group(body) == g
    assert decode(encode_frame([g], mode=mode)) == [Frame(mode, (g,), True)]


@pytest.mark.parametrize(
    ("zone", "mode", "error"),
    [
        ("ABCDEFGHIJ 001", H, "label of 10 characters (1 to 9 allowed)"),
        ("IINSt 001", H, "character 't' not allowed in a label"),
        ("PT.C HP..", H, "character '.' not allowed in a label"),
        ("IINST 0p1", H, "character 'p' not allowed in the data"),
        ("MSG1\tPas de message\t", S, "character 'a' not allowed in the data"),
        ("IINST 0\x011", H, "character '\\x01' not allowed in the data"),
        ("SINSTS\t\t", S, "empty data"),
        ("SMAXSN\tH2402101103\t00986\t", S, "bad horodate 'H2402101103'"),
        ("SMAXSN\tX240210110331\t00986\t", S, "bad horodate 'X240210110331'"),
        ("SMAXSN\tH24021011033a\t00986\t", S, "bad horodate 'H24021011033a'"),
        ("SMAXSN\tH24021011033100986\t", S, "data starts like a horodate (HT lost?)"),
        ("SMAXSN\tH240210110331\t", S, "data starts like a horodate (HT lost?)"),
    ],
)
def test_sanity_checks_catch_what_the_checksum_misses(zone: str, mode: Mode, error: str) -> None:
    g = parse_group(with_checksum(zone, mode))
    assert not g.valid
    assert g.error == error


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "too short: ''"),
        (b"A 1", "too short: 'A 1'"),
        (b"IINST002Y", "no SP or HT before the checksum: 'IINST002Y'"),
        (with_checksum("PTEC HP JB", H), "space inside the data of a historique group: "),
        (with_checksum("PTEC\tHPJB", H), "HT inside a historique group: "),
        (with_checksum("A\tB\tC\tD\t", S), "4 fields, expected 2 or 3: "),
    ],
)
def test_unsplittable_groups(body: bytes, error: str) -> None:
    g = parse_group(body)
    assert not g.valid
    assert g.label == ""
    assert g.error is not None
    assert g.error.startswith(error)


def test_parse_group_masks_bit_7_and_checks_a_forced_mode() -> None:
    body = bytes(b | 0x80 for b in b"IMAX 090 H")
    assert parse_group(body).valid
    g = parse_group(b"IMAX 090 H", mode=S)
    assert not g.valid
    assert g.error == "historique group, the decoder expects standard"


def test_bad_checksum_message() -> None:
    g = parse_group(b"IMAX 091 H")
    assert g.error == "bad checksum 'H' (expected 'I')"
    assert (g.label, g.value, g.checksum) == ("IMAX", "091", "H")


# -- framing -----------------------------------------------------------------------

BASE_FRAME: list[tuple[str, str]] = [
    ("ADCO", "031428097115"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "30"),
    ("BASE", "002565285"),
    ("PTEC", "TH.."),
    ("IINST", "002"),
    ("IMAX", "090"),
    ("PAPP", "00390"),
]


def base_groups() -> tuple[Group, ...]:
    return tuple(make_group(label, value, mode=H) for label, value in BASE_FRAME)


def test_clean_frame() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    frames, dec = run([data])
    assert frames == [Frame(H, base_groups(), True)]
    assert dec.stats.groups_ok == len(BASE_FRAME)
    assert dec.stats.frames_complete == 1
    assert dec.stats.bytes_in_frames == len(data)


def test_partial_first_frame_is_skipped() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    frames, dec = run([data[40:] + data])
    assert frames == [Frame(H, base_groups(), True)]
    assert dec.stats.bytes_skipped == len(data) - 40


def test_eot_drops_the_frame() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    stream = data[:50] + b"\x04" + data
    frames, dec = run(bytewise(stream))
    assert frames == [Frame(H, base_groups(), True)]
    assert dec.stats.frames_interrupted == 1
    assert dec.stats.bytes_dropped == 51


def test_stx_inside_a_frame_emits_it_incomplete() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    first = encode_frame(BASE_FRAME[:3], mode=H)[:-1]  # ETX lost
    frames, dec = run([first + data])
    assert frames == [
        Frame(H, base_groups()[:3], False, ("missing ETX: frame cut by the next STX",)),
        Frame(H, base_groups(), True),
    ]
    assert dec.stats.frames_incomplete == 1


def test_flush_emits_the_pending_frame_and_truncates_its_last_group() -> None:
    data = encode_frame(BASE_FRAME, mode=H)[:-2]  # the last CR and the ETX are missing
    frames, dec = run([data])
    (frame,) = frames
    assert not frame.complete
    assert frame.groups[:-1] == base_groups()[:-1]
    last = frame.groups[-1]
    assert (last.label, last.value, last.valid) == ("PAPP", "00390", False)
    assert frame.errors == (
        f"group 8 'PAPP': truncated: the frame ended before its CR: 'PAPP 00390 {last.checksum}'",
        "missing ETX: end of input",
    )
    assert dec.flush() == []


def test_flush_without_groups_returns_nothing() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"xx\x02\n\r\n") == []
    assert dec.flush() == []
    assert dec.stats.frames_empty == 1
    assert dec.stats.frames_incomplete == 0


def test_empty_complete_frame_is_not_returned() -> None:
    frames, dec = run([b"\x02\x03\x02\r\n\x03"])
    assert frames == []
    assert dec.stats.frames_empty == 2
    assert dec.stats.bytes_dropped == 6


def test_reset_forgets_the_frame_in_progress() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    dec = FrameDecoder()
    assert dec.feed(data[:30]) == []
    assert dec.buffered_bytes == 30
    dec.reset()
    assert dec.buffered_bytes == 0
    assert dec.stats.bytes_dropped == 30
    # the rest of the interrupted frame is now garbage; the next frame is whole
    assert dec.feed(data[30:] + data) == [Frame(H, base_groups(), True)]
    check_accounting(dec)


def test_lost_cr_and_lf_are_repaired_and_noted() -> None:
    parts = [encode_group(label, value, mode=H) for label, value in BASE_FRAME]
    parts[1] = parts[1][:-1]  # CR lost after OPTARIF
    parts[4] = parts[4][1:]  # LF lost before PTEC
    frames, dec = run([b"\x02" + b"".join(parts) + b"\x03"])
    assert frames == [
        Frame(H, base_groups(), True, ("CR missing after group 2", "LF missing before group 5"))
    ]
    assert dec.stats.framing_errors == 2
    assert dec.stats.groups_ok == len(BASE_FRAME)


def test_line_break_substitutes() -> None:
    parts = [encode_group(label, value, mode=H) for label, value in BASE_FRAME]
    parts[0] = b"\x0f" + parts[0][1:]
    parts[2] = parts[2][:-1] + b"\x0c"
    parts[3] = b"\x0b" + parts[3][1:]
    parts[7] = parts[7][:-1] + b"\x0c"
    frames, _ = run([b"\x02" + b"".join(parts) + b"\x03"])
    assert frames == [
        Frame(
            H,
            base_groups(),
            True,
            (
                "LF received as 0x0F before group 1",
                "CR received as 0x0C after group 3",
                "LF received as 0x0B before group 4",
                "CR received as 0x0C after group 8",
            ),
        )
    ]


def test_cr_lost_before_etx() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    frames, _ = run([data[:-2] + b"\x03"])
    assert frames == [Frame(H, base_groups(), True, ("CR missing after group 8 (before ETX)",))]


def test_lf_missing_at_frame_start() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    frames, _ = run([b"\x02" + data[2:]])
    assert frames == [Frame(H, base_groups(), True, ("LF missing before group 1",))]


def test_extra_line_breaks_are_noted() -> None:
    parts = [encode_group(label, value, mode=H) for label, value in BASE_FRAME[:3]]
    data = b"\x02\r" + parts[0] + b"\n" + parts[1] + b"\r" + parts[2] + b"\n\x03"
    frames, _ = run([data])
    assert frames == [
        Frame(
            H,
            base_groups()[:3],
            True,
            (
                "unexpected line breaks b'\\r\\n' before group 1",
                "unexpected line breaks b'\\r\\n\\n' between groups 1 and 2",
                "unexpected line breaks b'\\r\\r\\n' between groups 2 and 3",
                "unexpected line breaks b'\\r\\n' after group 3",
            ),
        )
    ]


def test_lone_line_break_next_to_an_invalid_group_taints_its_neighbour() -> None:
    # "1O" sums to 128: if 'O' (0x4F) loses bit 6 it reads as 0x0F (an LF), and the
    # rest "AB\t0000\t<chk>" has the checksum of the whole group.
    whole_group = encode_group("1OAB", "0000", mode=S)
    assert parse_group(whole_group[3:-1]).valid  # the fragment looks valid
    damaged = whole_group[:2] + b"\x0f" + whole_group[3:]
    frame = encode_frame([("ADSC", "021861348497")], mode=S)
    frames, _ = run([frame[:-1] + damaged + frame[1:]])
    (out,) = frames
    assert [g.valid for g in out.groups] == [True, False, False, True]
    assert out.groups[2].label == "AB"
    assert (
        out.groups[2].error
        == "a lone LF separates it from invalid group 2: may be a fragment of it"
    )
    assert out.errors == (
        "group 2 '': too short: '1'",
        "CR missing after group 2",
        "LF received as 0x0F before group 3",
        "group 3 'AB': a lone LF separates it from invalid group 2: may be a fragment of it",
    )


def test_lone_cr_between_two_valid_groups_keeps_both() -> None:
    a = encode_group("IINST", "002", mode=H)
    b = encode_group("IMAX", "090", mode=H)
    frames, _ = run([b"\x02" + a + b[1:] + b"\x03"])
    assert frames == [
        Frame(
            H,
            (make_group("IINST", "002", mode=H), make_group("IMAX", "090", mode=H)),
            True,
            ("LF missing before group 2",),
        )
    ]


def test_group_after_an_stx_that_cut_a_frame_without_lf_is_invalid() -> None:
    # "0NB" sums to 192: a 'B' (0x42) that loses bit 6 becomes STX, and the rest of the
    # group after it has the checksum of the whole group.
    group = encode_group("0NBC", "0000", mode=S)
    cut_at = group.index(b"B")
    stream = b"\x02" + group[:cut_at] + b"\x02" + group[cut_at + 1 :] + b"\x03"
    assert parse_group(group[cut_at + 1 : -1]).valid
    frames, _ = run([stream])
    first, second = frames
    assert not first.complete
    assert first.errors[-1] == "missing ETX: frame cut by the next STX"
    assert not second.groups[0].valid
    assert second.groups[0].error is not None
    assert second.groups[0].error.startswith("starts right after an STX that cut")
    assert second.mode is None


def test_lf_missing_at_frame_start_after_an_etx_is_accepted() -> None:
    group = encode_group("C", "0000", mode=S)
    frames, _ = run([b"\x02" + group[1:] + b"\x03"])
    assert frames[0].groups[0].valid


def test_mode_detection_and_mixed_frames() -> None:
    hist = [encode_group("IINST", "002", mode=H), encode_group("IMAX", "090", mode=H)]
    std = [encode_group("IRMS1", "002", mode=S)]
    frames, dec = run([b"\x02" + b"".join(hist + std) + b"\x03"])
    (frame,) = frames
    assert frame.mode is H
    assert [g.valid for g in frame.groups] == [True, True, False]
    assert frame.errors == ("group 3 'IRMS1': standard group, in a frame of mode historique",)
    assert dec.stats.groups_malformed == 1
    # on a tie the first valid group decides
    frames, _ = run([b"\x02" + std[0] + hist[0] + b"\x03"])
    assert frames[0].mode is S
    assert [g.valid for g in frames[0].groups] == [True, False]


def test_forced_mode() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    frames, dec = run([data], mode=S)
    (frame,) = frames
    assert frame.mode is None
    assert not frame.valid_groups
    assert frame.errors[0] == "group 1 'ADCO': historique group, the decoder expects standard"
    assert dec.stats.groups_malformed == len(BASE_FRAME)
    frames, _ = run([data], mode=H)
    assert frames == [Frame(H, base_groups(), True)]


def test_invalid_groups_are_counted() -> None:
    parts = [encode_group(label, value, mode=H) for label, value in BASE_FRAME]
    parts[5] = parts[5].replace(b"002", b"003")  # bad checksum
    parts[6] = parts[6].replace(b"IMAX 090", b"IMAX 0p0")  # bit-6 flip: malformed
    frames, dec = run([b"\x02" + b"".join(parts) + b"\x03"])
    assert [g.valid for g in frames[0].groups] == [True] * 5 + [False, False, True]
    assert (dec.stats.groups_ok, dec.stats.groups_bad_checksum, dec.stats.groups_malformed) == (
        6,
        1,
        1,
    )
    assert frames[0].values() == {
        label: value for label, value in BASE_FRAME if label not in ("IINST", "IMAX")
    }


def test_parity_bytes_are_masked_and_counted() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    noisy = bytes(b | 0x80 if i % 3 == 0 else b for i, b in enumerate(data))
    frames, dec = run(random_chunks(noisy, "parity"))
    assert frames == [Frame(H, base_groups(), True)]
    assert dec.stats.parity_bytes == len(range(0, len(data), 3))


def test_feed_accepts_other_bytes_like_objects() -> None:
    data = encode_frame(BASE_FRAME, mode=H)
    dec = FrameDecoder()
    assert dec.feed(bytearray(data[:20])) == []
    assert dec.feed(memoryview(data)[20:]) == [Frame(H, base_groups(), True)]


# -- limits ------------------------------------------------------------------------


def frame_of_size(size: int) -> bytes:
    """A valid historique frame of exactly ``size`` bytes, STX and ETX included."""
    filler = size - 2 - len(encode_group("ADCO", "031428097115", mode=H))
    assert filler >= 0
    groups: list[tuple[str, str]] = [("ADCO", "031428097115")]
    assert filler == 0 or filler >= 9
    while filler:  # groups of 9 to 40 bytes: LF "MSG" SP value SP chk CR
        n = min(filler, 40)
        if 0 < filler - n < 9:
            n = filler - 9
        value = "X" * (n - 8)
        groups.append(("MSG", value))
        filler -= n
    data = encode_frame(groups, mode=H)
    assert len(data) == size, (len(data), size)
    return data


@pytest.mark.parametrize("max_frame_bytes", [64, 300, 4096])
def test_max_frame_bytes_is_inclusive_and_bounded(max_frame_bytes: int) -> None:
    ok = frame_of_size(max_frame_bytes)
    too_big = frame_of_size(max_frame_bytes + 1)
    stream = ok + too_big + ok
    for chunks in (whole(stream), bytewise(stream), random_chunks(stream, max_frame_bytes)):
        frames, dec = run(chunks, max_frame_bytes=max_frame_bytes)
        assert len(frames) == 2
        assert all(f.complete and not f.errors for f in frames)
        assert dec.stats.frames_oversize == 1
        assert dec.stats.bytes_dropped == max_frame_bytes
        assert dec.stats.bytes_skipped == 1


def test_buffer_stays_bounded_without_etx() -> None:
    junk = (b"\x02" + b"\nIINST 002 Y\r" * 1000) * 3
    for chunks in (whole(junk), random_chunks(junk, "junk")):
        frames, dec = run(chunks, max_frame_bytes=512)
        assert len(frames) == 0
        assert dec.stats.frames_oversize == 3


def test_group_longer_than_max_group_bytes_is_malformed() -> None:
    long_value = "0" * 60
    data = encode_frame([("ADSC", "021861348497"), ("PJOURF+1", long_value)], mode=S)
    frames, dec = run([data], max_group_bytes=40)
    (frame,) = frames
    assert [g.valid for g in frame.groups] == [True, False]
    assert frame.errors == (
        "group 2 '': group of 71 bytes (max 40): 'PJOURF+1\\t000000000000000...'",
    )
    assert dec.stats.groups_malformed == 1
    frames, _ = run([data], max_group_bytes=71)
    assert frames[0].groups[1].valid


def test_constructor_arguments() -> None:
    with pytest.raises(UsageError):
        FrameDecoder(max_frame_bytes=8)
    with pytest.raises(UsageError):
        FrameDecoder(max_group_bytes=4)
    with pytest.raises(UsageError):
        FrameDecoder(max_group_bytes=513)  # the checksum shortcut is exact up to 512
    FrameDecoder(max_group_bytes=512)
    with pytest.raises(UsageError):
        FrameDecoder(mode="linky")  # type: ignore[arg-type]
    data = encode_frame(BASE_FRAME, mode=H)
    assert decode(data, mode="historique") == [Frame(H, base_groups(), True)]  # type: ignore[arg-type]


def test_stats_as_dict() -> None:
    stats = DecoderStats()
    d = stats.as_dict()
    assert set(d) >= {
        "bytes_in",
        "bytes_skipped",
        "parity_bytes",
        "frames_complete",
        "frames_incomplete",
        "frames_interrupted",
        "frames_oversize",
        "groups_ok",
        "groups_bad_checksum",
        "groups_malformed",
    }
    assert set(d.values()) == {0}
    stats.groups_ok += 3
    assert stats.as_dict()["groups_ok"] == 3


def test_cache_does_not_change_results() -> None:
    """Decoding many distinct groups (cache cleared on the way) gives the same frames."""
    frames_in = [
        encode_frame([("ADCO", "031428097115"), ("PAPP", f"{i:05d}")], mode=H) for i in range(9000)
    ]
    dec = FrameDecoder()
    out: list[Frame] = []
    for data in frames_in:
        out += dec.feed(data)
    assert [f.groups[1].value for f in out] == [f"{i:05d}" for i in range(9000)]
    assert all(not f.errors for f in out)


# -- checksum_ok says what the specification says; valid adds the decoder's checks ------


@pytest.mark.parametrize(
    ("body", "error_fragment"),
    [
        (b"IINST 0p1", "character 'p' not allowed in the data"),  # bit-6 flip of '0'
        (b"MSG1\tPas de message\t", "character 'a' not allowed in the data"),
        (b"SMAXSN\tH24021011033100986\t", "data starts like a horodate"),
    ],
)
def test_checksum_ok_follows_the_spec_even_when_a_check_fails(
    body: bytes, error_fragment: str
) -> None:
    chk = bytes([(sum(body) & 0x3F) + 0x20])  # the zone is the body in both cases
    group = parse_group(body + (b"" if body.endswith(b"\t") else b" ") + chk)
    assert group.checksum_ok  # the specification accepts it ...
    assert not group.valid  # ... the decoder does not trust it
    assert group.error is not None and error_fragment in group.error


def test_checksum_of_the_other_mode_only_is_not_ok() -> None:
    hist_zone = b"IMAX 090"
    std_rule = bytes([(sum(hist_zone + b" ") & 0x3F) + 0x20])  # mode-2 value on an SP group
    assert std_rule != b"H"
    group = parse_group(hist_zone + b" " + std_rule)
    assert not group.checksum_ok and not group.valid
    std_zone = b"IMAX\t090"
    hist_rule = bytes([(sum(std_zone) & 0x3F) + 0x20])  # mode-1 value on an HT group
    group = parse_group(std_zone + b"\t" + hist_rule)
    assert not group.checksum_ok and not group.valid


def test_group_of_the_other_mode_in_a_frame_keeps_its_checksum_verdict() -> None:
    data = encode_frame([("ADCO", "012345678901"), ("IMAX", "090")], mode=Mode.HISTORIQUE)
    intruder = encode_frame([("PREF", "12")], mode=Mode.STANDARD)[1:-1]
    frames = decode(data[:-1] + intruder + data[-1:])
    assert frames[0].mode is Mode.HISTORIQUE
    pref = frames[0].groups[-1]
    assert pref.label == "PREF" and pref.checksum_ok and not pref.valid
    assert "PREF" not in frames[0].values()
