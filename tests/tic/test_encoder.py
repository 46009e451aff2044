from __future__ import annotations

import pytest

from wesh.errors import UsageError
from wesh.tic import Mode, decode, encode_frame, encode_group, make_group

H, S = Mode.HISTORIQUE, Mode.STANDARD


@pytest.mark.parametrize(
    ("label", "value", "mode", "horodate", "expected"),
    [
        ("IMAX", "090", H, None, b"\nIMAX 090 H\r"),
        ("PTEC", "HP..", H, None, b"\nPTEC HP..  \r"),  # the checksum is a space
        ("EASD01", "000000000", S, None, b"\nEASD01\t000000000\t \r"),
        ("ADSC", "012345678910", S, None, b"\nADSC\t012345678910\t;\r"),
        ("DATE", "", S, "H240210121355", b"\nDATE\tH240210121355\t\t;\r"),
        ("SMAXSN", "00986", S, "H240210110331", b"\nSMAXSN\tH240210110331\t00986\t6\r"),
    ],
)
def test_reference_examples(
    label: str, value: str, mode: Mode, horodate: str | None, expected: bytes
) -> None:
    assert encode_group(label, value, mode=mode, horodate=horodate) == expected


@pytest.mark.parametrize(
    ("label", "value", "mode", "horodate"),
    [
        ("", "1", H, None),
        ("ABCDEFGHIJ", "1", H, None),  # 10 characters
        ("Iinst", "001", H, None),
        ("PTEC", "HP JB", H, None),  # space in historique data
        ("PTEC", "", H, None),
        ("MSG1", "Pas de message", S, None),  # lower case is never trusted by the decoder
        ("MSG1", "TAB\tHERE", S, None),
        ("SINSTS", "", S, None),  # empty data needs a horodate
        ("SMAXSN", "00986", S, "X240210110331"),
        ("SMAXSN", "00986", S, "H2402"),
        ("SMAXSN", "H24021011033100986", S, None),  # looks like a lost HT
        ("IMAX", "090", H, "H240210110331"),  # historique has no horodate
        ("IMAX", "0é0", H, None),
    ],
)
def test_refuses_what_the_decoder_would_reject(
    label: str, value: str, mode: Mode, horodate: str | None
) -> None:
    with pytest.raises(UsageError):
        encode_group(label, value, mode=mode, horodate=horodate)


def test_nine_character_labels_exist_in_the_standard_table() -> None:
    frame = encode_frame([("SMAXSN1-1", "01234", "H240210110331")], mode=S)
    [decoded] = decode(frame)
    assert decoded.values() == {"SMAXSN1-1": "01234"}


def test_frame_round_trip_and_mode_required() -> None:
    groups = (make_group("ADCO", "012345678901", mode=H), make_group("IMAX", "090", mode=H))
    [decoded] = decode(encode_frame(groups, mode=H))
    assert decoded.groups == groups
    assert encode_frame(decoded) == encode_frame(groups, mode=H)
    with pytest.raises(UsageError):
        encode_frame([("IMAX", "090")])
