"""data.cgx parser: fixture documents (one file per payload) and robustness properties."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import DecodeError
from wesh.wes import Firmware, WesSnapshot, parse_compact, parse_data_cgx
from wesh.wes.datacgx import MAX_WARNINGS, period_code, tomorrow_code

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wes"
DOCUMENTS = sorted(p for p in FIXTURES.iterdir() if p.suffix != ".json")
POLL = datetime(2025, 11, 21, 13, 7, 30, tzinfo=UTC)


def _expectation(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return result


def _resolve(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        if isinstance(obj, tuple):
            obj = obj[int(part)]
        elif isinstance(obj, Mapping):
            obj = obj[int(part)] if part.isdigit() and int(part) in obj else obj[part]
        else:
            obj = getattr(obj, part)
    return obj


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _parse(path: Path, spec: dict[str, Any]) -> WesSnapshot:
    parser = parse_compact if spec.get("parser") == "compact" else parse_data_cgx
    return parser(path.read_bytes(), max_bytes=spec.get("max_bytes", 1_000_000))


def test_every_document_has_an_expectation() -> None:
    assert len(DOCUMENTS) >= 25
    for path in DOCUMENTS:
        assert path.with_suffix(".json").exists(), path.name
    for path in FIXTURES.glob("*.json"):
        assert any(doc.stem == path.stem for doc in DOCUMENTS), path.name


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_fixture(path: Path) -> None:
    spec = _expectation(path)
    if "error" in spec:
        with pytest.raises(DecodeError) as info:
            _parse(path, spec)
        assert spec["error"] in str(info.value)
        if "error_where" in spec:
            assert info.value.where is not None
            assert info.value.where.startswith(spec["error_where"])
        return
    snapshot = _parse(path, spec)
    if "firmware" in spec:
        assert snapshot.firmware == (spec["firmware"] and Firmware(spec["firmware"]))
    assert snapshot.complete is spec.get("complete", True)
    for expected in spec.get("warnings", []):
        assert any(expected in warning for warning in snapshot.warnings), (
            expected,
            snapshot.warnings,
        )
    if "warning_count" in spec:
        assert len(snapshot.warnings) == spec["warning_count"], snapshot.warnings
    units = {int(k): v for k, v in spec.get("pulse_units", {}).items()}
    readings = {r.path: r for r in snapshot.readings(poll_time=POLL, pulse_units=units)}
    assert len(readings) == len(snapshot.readings(poll_time=POLL, pulse_units=units))
    for rpath, expected in spec.get("readings", {}).items():
        assert rpath in readings, (rpath, sorted(readings))
        reading = readings[rpath]
        if isinstance(expected, list):
            value, unit = expected
            assert reading.unit == unit, rpath
        else:
            value = expected
        if isinstance(value, float):
            assert reading.value == pytest.approx(value), rpath
        else:
            assert reading.value == value, rpath
            assert type(reading.value) is type(value), rpath
        assert reading.poll_time == POLL
        assert reading.box_time == snapshot.info.box_time
    for rpath in spec.get("absent", []):
        assert rpath not in readings, rpath
    for dotted, expected in spec.get("model", {}).items():
        assert _plain(_resolve(snapshot, dotted)) == expected, dotted


def test_bytes_and_text_give_the_same_snapshot() -> None:
    body = (FIXTURES / "v084a10_stock.xml").read_bytes()
    assert parse_data_cgx(body) == parse_data_cgx(body.decode("utf-8"))


def test_given_firmware_wins_and_a_contradiction_is_reported() -> None:
    body = (FIXTURES / "v084a10_stock.xml").read_bytes()
    snapshot = parse_data_cgx(body, firmware=Firmware.V083H)
    assert snapshot.firmware is Firmware.V083H
    assert any("but the page says 'V0.84A10'" in w for w in snapshot.warnings)
    # the clamp index printed with a decimal point is still read as kWh
    assert snapshot.clamps[0].index_wh == 271317
    assert any("pince/INDEX1: printed in kWh" in w for w in snapshot.warnings)


def test_firmware_guessed_from_element_names() -> None:
    old = "<data><tic1><HCHC>000000001</HCHC></tic1></data>"
    new = "<data><tic1><H_CREUSE>000000001</H_CREUSE></tic1></data>"
    assert parse_data_cgx(old).firmware is Firmware.V083H
    assert parse_data_cgx(new).firmware is Firmware.V084A10


def test_utf16_body_is_decoded() -> None:
    body = "<data><relais><RELAIS1>ON</RELAIS1></relais></data>".encode("utf-16")
    assert parse_data_cgx(body).relays == {1: True}


def test_warnings_are_capped() -> None:
    body = "<data><x>" + "".join(f"<E{i}>1</E{i}>" for i in range(300)) + "</x></data>"
    snapshot = parse_data_cgx(body)
    assert len(snapshot.warnings) == MAX_WARNINGS + 1
    assert snapshot.warnings[-1] == f"{300 - MAX_WARNINGS} more warnings suppressed"
    assert len(snapshot.extras) == 300


def test_doctype_in_any_case_is_refused() -> None:
    with pytest.raises(DecodeError, match="refused"):
        parse_data_cgx("<!doctype data><data><a><b>1</b></a></data>")


def test_a_mac_with_separators_is_normalised() -> None:
    snapshot = parse_data_cgx("<data><info><serial>00-1e-c0-ab-cd-ef</serial></info></data>")
    assert snapshot.info.mac == "001EC0ABCDEF"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("H. Creuses", "HC"),
        ("H. Pleines", "HP"),
        ("H. Creuse BLEU", "HCJB"),
        ("H. Pleine BLANC", "HPJW"),
        ("H. Pleine ROUGE", "HPJR"),
        ("HC..", "HC"),
        ("TH..", "BASE"),
        ("HN..", "HN"),
        ("PM..", "PM"),
        ("HPJR", "HPJR"),
        ("Toutes Heures", "BASE"),
        ("H. Super Creuses", "HSC"),
        ("TIC NDERR.", None),
        ("what", None),
        (None, None),
    ],
)
def test_period_code(text: str | None, code: str | None) -> None:
    assert period_code(text) == code


def test_tomorrow_code() -> None:
    assert tomorrow_code("Jour BLEU") == "BLEU"
    assert tomorrow_code("Jour ROUGE") == "ROUGE"
    assert tomorrow_code("----") is None
    assert tomorrow_code(None) is None


def test_compact_without_any_pair_is_refused() -> None:
    with pytest.raises(DecodeError):
        parse_compact(b"wesh-compact 1\nwesh-end\n")


def test_compact_unknown_key_and_bad_line_are_warnings() -> None:
    snapshot = parse_compact("wesh-compact 1\nzz9=1\nhello\nip1=5\nwesh-end\n")
    assert snapshot.tic[0].apparent_power_va == 5
    assert any("unknown key 'zz9'" in w for w in snapshot.warnings)
    assert any("not a key=value line" in w for w in snapshot.warnings)
    assert snapshot.extras["compact/zz9"] == "1"


def test_compact_multi_value_count_mismatch() -> None:
    snapshot = parse_compact("wesh-compact 1\nPPT=1 2\nwesh-end\n")
    assert any("PPT needs 4 values, got 2" in w for w in snapshot.warnings)
    assert [c.power_w for c in snapshot.clamps] == [1, 2]


# --------------------------------------------------------------------------- properties

_VALID = [p.read_bytes() for p in DOCUMENTS if "error" not in _expectation(p)]


def _only_decode_error(body: bytes | str) -> None:
    try:
        snapshot = parse_data_cgx(body, max_bytes=50_000)
    except DecodeError:
        return
    assert isinstance(snapshot, WesSnapshot)
    snapshot.readings(poll_time=POLL)


@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_decode_error(body: bytes) -> None:
    _only_decode_error(body)


@given(st.text(max_size=500))
def test_random_text_raises_only_decode_error(body: str) -> None:
    _only_decode_error(body)


@given(
    st.sampled_from(_VALID),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.binary(min_size=0, max_size=8)),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_documents_raise_only_decode_error(
    body: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(body)
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    _only_decode_error(bytes(data))


@given(st.sampled_from(_VALID), st.integers(min_value=0, max_value=10_000))
def test_any_truncation_is_reported(body: bytes, cut: int) -> None:
    cut %= len(body) + 1
    try:
        snapshot = parse_data_cgx(body[:cut])
    except DecodeError:
        return
    full = parse_data_cgx(body)
    if snapshot.complete:
        # a document presented as complete holds every value of the whole one
        assert replace(snapshot, warnings=()) == replace(full, warnings=())
    if not snapshot.complete:
        assert any("truncated" in w for w in snapshot.warnings)


_LEAF = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20
).map(lambda s: s.replace("<", "").replace("&", ""))


@given(
    st.dictionaries(
        st.sampled_from(["tic1", "impulsion", "pince", "temp", "relais", "info", "variables"]),
        st.dictionaries(
            st.sampled_from(
                ["ADCO", "PAP", "PTEC", "BASE", "INDEX1", "I1", "SONDE1", "RELAIS1", "date", "V"]
            ),
            _LEAF,
            max_size=6,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_leaf_text_is_tolerated(sections: dict[str, dict[str, str]]) -> None:
    body = "<data>" + "".join(
        f"<{s}>" + "".join(f"<{e}>{t}</{e}>" for e, t in leaves.items()) + f"</{s}>"
        for s, leaves in sections.items()
    )
    body += "</data>"
    try:
        snapshot = parse_data_cgx(body)
    except DecodeError:
        assert not any(sections.values())
        return
    snapshot.readings(poll_time=POLL)
