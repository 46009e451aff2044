"""The label catalogue against the tables of the TIC reference note (§2.4, §3.1, §3.2, §3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wesh.tic.encoder import make_group
from wesh.tic.labels import (
    HISTORIQUE_LABELS,
    STANDARD_LABELS,
    Kind,
    LabelInfo,
    Unit,
    catalogue,
    lookup,
)
from wesh.tic.model import Mode

H, S = Mode.HISTORIQUE, Mode.STANDARD

TEMPO = ["BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"]

# §3.1, in table order: label -> (width, unit).
HISTORIQUE_SPEC = {
    "ADCO": (12, Unit.NONE),
    "OPTARIF": (4, Unit.NONE),
    "ISOUSC": (2, Unit.A),
    "BASE": (9, Unit.WH),
    "HCHC": (9, Unit.WH),
    "HCHP": (9, Unit.WH),
    "EJPHN": (9, Unit.WH),
    "EJPHPM": (9, Unit.WH),
    **dict.fromkeys(TEMPO, (9, Unit.WH)),
    "PEJP": (2, Unit.MIN),
    "PTEC": (4, Unit.NONE),
    "DEMAIN": (4, Unit.NONE),
    "IINST": (3, Unit.A),
    **{f"IINST{n}": (3, Unit.A) for n in (1, 2, 3)},
    "ADPS": (3, Unit.A),
    "IMAX": (3, Unit.A),
    **{f"IMAX{n}": (3, Unit.A) for n in (1, 2, 3)},
    "PMAX": (5, Unit.W),
    "PAPP": (5, Unit.VA),
    "HHPHC": (1, Unit.NONE),
    "MOTDETAT": (6, Unit.NONE),
    "PPOT": (2, Unit.NONE),
    **{f"ADIR{n}": (3, Unit.A) for n in (1, 2, 3)},
    "GAZ": (7, Unit.DAL),
    "AUTRE": (7, Unit.DAL),
}

# §3.2: label -> (width, unit, H, T, P).
_p = (1, 2, 3)
STANDARD_SPEC: dict[str, tuple[int, Unit, bool, bool, bool]] = {
    "ADSC": (12, Unit.NONE, False, False, False),
    "VTIC": (2, Unit.NONE, False, False, False),
    "DATE": (0, Unit.NONE, True, False, False),
    "NGTF": (16, Unit.NONE, False, False, False),
    "LTARF": (16, Unit.NONE, False, False, False),
    "EAST": (9, Unit.WH, False, False, False),
    **{f"EASF{n:02d}": (9, Unit.WH, False, False, False) for n in range(1, 11)},
    **{f"EASD{n:02d}": (9, Unit.WH, False, False, False) for n in range(1, 5)},
    "EAIT": (9, Unit.WH, False, False, True),
    **{f"ERQ{n}": (9, Unit.VARH, False, False, True) for n in range(1, 5)},
    **{f"IRMS{n}": (3, Unit.A, False, n > 1, False) for n in _p},
    **{f"URMS{n}": (3, Unit.V, False, n > 1, False) for n in _p},
    "PREF": (2, Unit.KVA, False, False, False),
    "PCOUP": (2, Unit.KVA, False, False, False),
    "SINSTS": (5, Unit.VA, False, False, False),
    **{f"SINSTS{n}": (5, Unit.VA, False, True, False) for n in _p},
    "SMAXSN": (5, Unit.VA, True, False, False),
    **{f"SMAXSN{n}": (5, Unit.VA, True, True, False) for n in _p},
    "SMAXSN-1": (5, Unit.VA, True, False, False),
    **{f"SMAXSN{n}-1": (5, Unit.VA, True, True, False) for n in _p},
    "SINSTI": (5, Unit.VA, False, False, True),
    "SMAXIN": (5, Unit.VA, True, False, True),
    "SMAXIN-1": (5, Unit.VA, True, False, True),
    "CCASN": (5, Unit.W, True, False, False),
    "CCASN-1": (5, Unit.W, True, False, False),
    "CCAIN": (5, Unit.W, True, False, True),
    "CCAIN-1": (5, Unit.W, True, False, True),
    **{f"UMOY{n}": (3, Unit.V, True, n > 1, False) for n in _p},
    "STGE": (8, Unit.NONE, False, False, False),
    **{f"DPM{n}": (2, Unit.NONE, True, False, False) for n in _p},
    **{f"FPM{n}": (2, Unit.NONE, True, False, False) for n in _p},
    "MSG1": (32, Unit.NONE, False, False, False),
    "MSG2": (16, Unit.NONE, False, False, False),
    "PRM": (14, Unit.NONE, False, False, False),
    "RELAIS": (3, Unit.NONE, False, False, False),
    "NTARF": (2, Unit.NONE, False, False, False),
    "NJOURF": (2, Unit.NONE, False, False, False),
    "NJOURF+1": (2, Unit.NONE, False, False, False),
    "PJOURF+1": (98, Unit.NONE, False, False, False),
    "PPOINTE": (98, Unit.NONE, False, False, False),
}

# §2.4: labels with a horodate.
HORODATED = {
    "DATE",
    "SMAXSN",
    "SMAXSN1",
    "SMAXSN2",
    "SMAXSN3",
    "SMAXSN-1",
    "SMAXSN1-1",
    "SMAXSN2-1",
    "SMAXSN3-1",
    "SMAXIN",
    "SMAXIN-1",
    "CCASN",
    "CCASN-1",
    "CCAIN",
    "CCAIN-1",
    "UMOY1",
    "UMOY2",
    "UMOY3",
    "DPM1",
    "DPM2",
    "DPM3",
    "FPM1",
    "FPM2",
    "FPM3",
}

NINE_CHARACTER_LABELS = {"SMAXSN1-1", "SMAXSN2-1", "SMAXSN3-1"}

DEVIATIONS = {
    (H, "TENSION"): None,
    (S, "SINST1"): "SINSTS",
    (S, "SMAXN"): "SMAXSN",
    (S, "SMAXN-1"): "SMAXSN-1",
}


def spec_labels(mode):
    return [label for label, info in catalogue(mode).items() if not info.deviation]


def test_historique_table_matches_spec_in_order():
    assert spec_labels(H) == list(HISTORIQUE_SPEC)
    for label, (width, unit) in HISTORIQUE_SPEC.items():
        info = HISTORIQUE_LABELS[label]
        assert (info.width, info.unit) == (width, unit), label
        assert not info.horodated
        assert not info.producer_only


def test_standard_table_matches_spec():
    assert set(spec_labels(S)) == set(STANDARD_SPEC)
    for label, (width, unit, horodated, tri, producer) in STANDARD_SPEC.items():
        info = STANDARD_LABELS[label]
        got = (info.width, info.unit, info.horodated, info.three_phase_only, info.producer_only)
        assert got == (width, unit, horodated, tri, producer), label


def test_standard_order_follows_spec_table():
    order = spec_labels(S)
    assert order[:6] == ["ADSC", "VTIC", "DATE", "NGTF", "LTARF", "EAST"]
    assert order.index("STGE") < order.index("DPM1") < order.index("FPM1") < order.index("DPM2")
    assert order[-2:] == ["PJOURF+1", "PPOINTE"]


def test_horodated_labels_are_those_of_the_spec():
    spec = {label for label, info in STANDARD_LABELS.items() if info.horodated}
    assert spec - {"SMAXN", "SMAXN-1"} == HORODATED


@pytest.mark.parametrize(("key", "alias"), DEVIATIONS.items())
def test_deviations_are_flagged(key, alias):
    mode, label = key
    info = lookup(label, mode)
    assert info is not None
    assert info.deviation
    assert info.alias_of == alias
    assert info.source
    if alias is not None:
        target = lookup(alias, mode)
        assert target is not None
        assert not target.deviation
        assert (target.kind, target.unit, target.width, target.horodated) == (
            info.kind,
            info.unit,
            info.width,
            info.horodated,
        )


def test_only_known_deviations():
    found = {
        (info.mode, label)
        for mode in Mode
        for label, info in catalogue(mode).items()
        if info.deviation
    }
    assert found == set(DEVIATIONS)


@pytest.mark.parametrize(
    "info", [*HISTORIQUE_LABELS.values(), *STANDARD_LABELS.values()], ids=lambda i: i.label
)
def test_every_entry_is_complete(info: LabelInfo):
    # The spec says "label <= 8 characters" but its own table has SMAXSN1-1..SMAXSN3-1.
    assert 1 <= len(info.label) <= (9 if info.label in NINE_CHARACTER_LABELS else 8)
    assert info.meaning
    assert info.meaning_fr
    assert info.source
    assert info.meaning != info.meaning_fr
    if len(info.label) <= 8:
        make_group(info.label, "0", mode=info.mode)  # the encoder can send it
    if info.kind is Kind.INDEX:
        assert info.unit in (Unit.WH, Unit.VARH)
        assert info.index_name
        assert info.index_name_fr
    else:
        assert info.index_name is None
    if info.kind in (Kind.CURRENT,):
        assert info.unit is Unit.A
    if info.kind is Kind.VOLTAGE:
        assert info.unit is Unit.V
    if info.kind is Kind.POWER:
        assert info.unit in (Unit.VA, Unit.W, Unit.KVA)
    if info.phase is not None:
        assert info.label.endswith(str(info.phase)) or info.label.endswith(f"{info.phase}-1")
    assert not (info.single_phase_only and info.three_phase_only)


@pytest.mark.parametrize(
    ("label", "mode", "phase", "number", "tri", "mono"),
    [
        ("IINST", H, None, None, False, True),
        ("IINST2", H, 2, None, True, False),
        ("ADIR3", H, 3, None, True, False),
        ("IRMS1", S, 1, None, False, False),
        ("IRMS2", S, 2, None, True, False),
        ("UMOY3", S, 3, None, True, False),
        ("SMAXSN2-1", S, 2, None, True, False),
        ("EASF10", S, None, 10, False, False),
        ("EASD04", S, None, 4, False, False),
        ("ERQ3", S, None, 3, False, False),
        ("DPM2", S, None, 2, False, False),
        ("MSG2", S, None, 2, False, False),
    ],
)
def test_numbering(label, mode, phase, number, tri, mono):
    info = lookup(label, mode)
    assert info is not None
    assert (info.phase, info.number, info.three_phase_only, info.single_phase_only) == (
        phase,
        number,
        tri,
        mono,
    )


def test_index_names():
    assert HISTORIQUE_LABELS["HCHC"].index_name == "HC"
    assert HISTORIQUE_LABELS["BBRHPJR"].index_name == "Tempo HP Red"
    assert HISTORIQUE_LABELS["BBRHPJR"].index_name_fr == "Tempo HP jours Rouges"
    assert STANDARD_LABELS["EASF03"].index_name_fr == "fournisseur 3"
    assert STANDARD_LABELS["EAST"].is_energy_index
    assert not STANDARD_LABELS["SINSTS"].is_energy_index


def test_lookup_is_per_mode():
    assert lookup("ADCO", H) is HISTORIQUE_LABELS["ADCO"]
    assert lookup("ADCO", S) is None
    assert lookup("ADSC", H) is None
    assert lookup("PAPP", S) is None
    assert lookup("NOPE", H) is None
    assert lookup("adco", H) is None
    assert catalogue(H) is HISTORIQUE_LABELS
    assert catalogue(S) is STANDARD_LABELS
    assert all(info.mode is H for info in HISTORIQUE_LABELS.values())
    assert all(info.mode is S for info in STANDARD_LABELS.values())


def test_catalogue_is_read_only():
    with pytest.raises(TypeError):
        HISTORIQUE_LABELS["X"] = HISTORIQUE_LABELS["ADCO"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        HISTORIQUE_LABELS["ADCO"].width = 3  # type: ignore[misc]


DOC = Path(__file__).resolve().parents[2] / "docs" / "tic-labels.md"


def doc_rows():
    """Label rows of the tables in docs/tic-labels.md §6, per mode heading."""
    rows: dict[tuple[Mode, str], list[str]] = {}
    mode = None
    text = DOC.read_text(encoding="utf-8")
    for line in text[text.index("## 6. Label tables") :].splitlines():
        if line.startswith("#### "):
            mode = Mode(line[5:].strip())
        elif line.startswith("| `") and mode is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[mode, cells[0].strip("`")] = cells
    return rows


def test_documentation_tables_match_catalogue():
    rows = doc_rows()
    expected = {(m, label) for m in Mode for label in catalogue(m)}
    assert set(rows) == expected
    for (mode, label), cells in rows.items():
        info = catalogue(mode)[label]
        assert cells[3] == info.kind.value, label
        assert cells[4] == str(info.width), label
        assert cells[5] == (info.unit.value or "—"), label
        flags = cells[6].split()
        assert ("H" in flags) is info.horodated, label
        assert ("T" in flags) is info.three_phase_only, label
        assert ("P" in flags) is info.producer_only, label
        assert ("deviation" in flags) is info.deviation, label
