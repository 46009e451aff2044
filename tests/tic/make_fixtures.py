"""Write the TIC decoder fixtures: ``tests/fixtures/tic/<name>.bin`` + ``<name>.json``.

Run ``.venv/bin/python tests/tic/make_fixtures.py`` after changing a definition below.

Expectations are written from the definitions here (what each frame was built from and
which damage was done to it), never by running the decoder, so the fixture tests can
fail. Streams are built with :mod:`wesh.tic.encoder` except the examples quoted in the
protocol reference, which are literal bytes. See ``tests/fixtures/tic/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wesh.tic.encoder import checksum
from wesh.tic.model import Mode

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "tic"
H = Mode.HISTORIQUE
S = Mode.STANDARD
STX, ETX, EOT = b"\x02", b"\x03", b"\x04"

Spec = tuple[str, str] | tuple[str, str, str | None]


def chk(zone: bytes) -> str:
    return chr(checksum(zone))


@dataclass
class Expect:
    """One expected frame."""

    mode: Mode | None
    groups: list[list[Any]]
    complete: bool = True
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": None if self.mode is None else str(self.mode),
            "complete": self.complete,
            "groups": self.groups,
            "errors": self.errors,
        }


@dataclass
class Fixture:
    name: str
    description: str
    data: bytes = b""
    frames: list[Expect] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)


def enc(label: str, value: str, mode: Mode, horodate: str | None = None) -> bytes:
    """Encode one group, LF to CR (wesh's encoder refuses 9-character labels)."""
    if mode is H:
        zone = f"{label} {value}".encode()
        return b"\n" + zone + b" " + chk(zone).encode() + b"\r"
    text = f"{label}\t{value}\t" if horodate is None else f"{label}\t{horodate}\t{value}\t"
    zone = text.encode()
    return b"\n" + zone + chk(zone).encode() + b"\r"


def groups_bytes(mode: Mode, specs: Iterable[Spec]) -> list[bytes]:
    return [enc(s[0], s[1], mode, s[2] if len(s) == 3 else None) for s in specs]


def expected_groups(specs: Iterable[Spec]) -> list[list[Any]]:
    return [[s[0], s[1], s[2] if len(s) == 3 else None, True] for s in specs]


def clean(mode: Mode, specs: list[Spec]) -> tuple[bytes, Expect]:
    """A clean frame and its expectation."""
    return STX + b"".join(groups_bytes(mode, specs)) + ETX, Expect(mode, expected_groups(specs))


# -- realistic frames (label order of the specification tables) ------------------------

HIST_BASE: list[Spec] = [
    ("ADCO", "031428097115"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "30"),
    ("BASE", "002565285"),
    ("PTEC", "TH.."),
    ("IINST", "002"),
    ("IMAX", "090"),
    ("PAPP", "00390"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
]

HIST_HC: list[Spec] = [
    ("ADCO", "021861348497"),
    ("OPTARIF", "HC.."),
    ("ISOUSC", "45"),
    ("HCHC", "019571184"),
    ("HCHP", "027404431"),
    ("PTEC", "HP.."),
    ("IINST", "008"),
    ("IMAX", "090"),
    ("PAPP", "01920"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
]

HIST_TEMPO: list[Spec] = [
    ("ADCO", "040122334455"),
    ("OPTARIF", "BBR("),
    ("ISOUSC", "45"),
    ("BBRHCJB", "004812273"),
    ("BBRHPJB", "007921840"),
    ("BBRHCJW", "000812345"),
    ("BBRHPJW", "001290443"),
    ("BBRHCJR", "000254113"),
    ("BBRHPJR", "000498020"),
    ("PTEC", "HPJB"),
    ("DEMAIN", "BLAN"),
    ("IINST", "012"),
    ("IMAX", "090"),
    ("PAPP", "02830"),
    ("HHPHC", "Y"),
    ("MOTDETAT", "000000"),
]

HIST_TRI_LONG: list[Spec] = [
    ("ADCO", "041776199277"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "20"),
    ("BASE", "045678901"),
    ("PTEC", "TH.."),
    ("IINST1", "003"),
    ("IINST2", "011"),
    ("IINST3", "002"),
    ("IMAX1", "060"),
    ("IMAX2", "060"),
    ("IMAX3", "060"),
    ("PMAX", "08450"),
    ("PAPP", "03680"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
    ("PPOT", "00"),
]


def hist_tri_short(adir: dict[int, str], currents: tuple[str, str, str]) -> list[Spec]:
    specs: list[Spec] = [(f"ADIR{p}", v) for p, v in sorted(adir.items())]
    specs.append(("ADCO", "041776199277"))
    specs += [(f"IINST{p + 1}", c) for p, c in enumerate(currents)]
    return specs


STAMP = "H240210121355"
PJOURF = (
    "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE "
    "NONUTILE NONUTILE"
)
MSG1 = "PAS DE          MESSAGE         "


def std_mono() -> list[Spec]:
    return [
        ("ADSC", "021861348497"),
        ("VTIC", "02"),
        ("DATE", "", STAMP),
        ("NGTF", "H PLEINE/CREUSE "),
        ("LTARF", "  HEURE  PLEINE "),
        ("EAST", "008765432"),
        ("EASF01", "003456789"),
        ("EASF02", "005308643"),
        *[(f"EASF{k:02d}", "000000000") for k in range(3, 11)],
        ("EASD01", "003456789"),
        ("EASD02", "005308643"),
        ("EASD03", "000000000"),
        ("EASD04", "000000000"),
        ("IRMS1", "004"),
        ("URMS1", "231"),
        ("PREF", "09"),
        ("PCOUP", "09"),
        ("SINSTS", "00958"),
        ("SMAXSN", "05102", "H240210071214"),
        ("SMAXSN-1", "06512", "H240209193327"),
        ("CCASN", "00862", "H240210120000"),
        ("CCASN-1", "00910", "H240210113000"),
        ("UMOY1", "232", "H240210121000"),
        ("STGE", "003A0001"),
        ("MSG1", MSG1),
        ("PRM", "21483245652310"),
        ("RELAIS", "000"),
        ("NTARF", "02"),
        ("NJOURF", "00"),
        ("NJOURF+1", "00"),
        ("PJOURF+1", PJOURF),
    ]


def std_tri_tempo() -> list[Spec]:
    stamp = "H240115183012"
    return [
        ("ADSC", "041776199277"),
        ("VTIC", "02"),
        ("DATE", "", stamp),
        ("NGTF", "      TEMPO     "),
        ("LTARF", "    HC BLANC    "),
        ("EAST", "012503338"),
        ("EASF01", "004102245"),
        ("EASF02", "005003118"),
        ("EASF03", "001203400"),
        ("EASF04", "001502221"),
        ("EASF05", "000301117"),
        ("EASF06", "000391237"),
        *[(f"EASF{k:02d}", "000000000") for k in range(7, 11)],
        ("EASD01", "005604466"),
        ("EASD02", "006898872"),
        ("EASD03", "000000000"),
        ("EASD04", "000000000"),
        ("IRMS1", "006"),
        ("IRMS2", "004"),
        ("IRMS3", "009"),
        ("URMS1", "229"),
        ("URMS2", "232"),
        ("URMS3", "230"),
        ("PREF", "12"),
        ("PCOUP", "12"),
        ("SINSTS", "04321"),
        ("SINSTS1", "01372"),
        ("SINSTS2", "00921"),
        ("SINSTS3", "02028"),
        ("SMAXSN", "06890", "H240115075521"),
        ("SMAXSN1", "02450", "H240115075521"),
        ("SMAXSN2", "01987", "H240115071002"),
        ("SMAXSN3", "02560", "H240115180433"),
        ("SMAXSN-1", "07120", "H240114191246"),
        ("SMAXSN1-1", "02601", "H240114191246"),
        ("SMAXSN2-1", "02110", "H240114083015"),
        ("SMAXSN3-1", "02702", "H240114190017"),
        ("CCASN", "04102", "H240115180000"),
        ("CCASN-1", "03987", "H240115173000"),
        ("UMOY1", "230", "H240115183000"),
        ("UMOY2", "233", "H240115183000"),
        ("UMOY3", "231", "H240115183000"),
        ("STGE", "463A0800"),
        ("DPM1", "00", " 240115060000"),
        ("FPM1", "00", " 240116060000"),
        ("MSG1", MSG1),
        ("PRM", "09183746502918"),
        ("RELAIS", "001"),
        ("NTARF", "03"),
        ("NJOURF", "00"),
        ("NJOURF+1", "00"),
        ("PJOURF+1", PJOURF),
        ("PPOINTE", PJOURF),
    ]


def std_producer() -> list[Spec]:
    stamp = "E230621134502"
    return [
        ("ADSC", "021961054433"),
        ("VTIC", "02"),
        ("DATE", "", stamp),
        ("NGTF", "     BASE       "),
        ("LTARF", "      BASE      "),
        ("EAST", "004211970"),
        ("EASF01", "004211970"),
        *[(f"EASF{k:02d}", "000000000") for k in range(2, 11)],
        ("EASD01", "004211970"),
        ("EASD02", "000000000"),
        ("EASD03", "000000000"),
        ("EASD04", "000000000"),
        ("EAIT", "001873342"),
        ("ERQ1", "000412003"),
        ("ERQ2", "000091238"),
        ("ERQ3", "000013420"),
        ("ERQ4", "000322871"),
        ("IRMS1", "011"),
        ("URMS1", "238"),
        ("PREF", "06"),
        ("PCOUP", "06"),
        ("SINSTS", "00000"),
        ("SMAXSN", "01254", "E230621071233"),
        ("SMAXSN-1", "03310", "E230620202401"),
        ("SINSTI", "02612"),
        ("SMAXIN", "03050", "E230621125940"),
        ("SMAXIN-1", "03122", "E230620131518"),
        ("CCASN", "00000", "E230621133000"),
        ("CCASN-1", "00000", "E230621130000"),
        ("CCAIN", "02588", "E230621133000"),
        ("CCAIN-1", "02490", "E230621130000"),
        ("UMOY1", "237", "E230621134000"),
        ("STGE", "013A0301"),
        ("MSG1", MSG1),
        ("PRM", "30001610071843"),
        ("RELAIS", "000"),
        ("NTARF", "01"),
        ("NJOURF", "00"),
        ("NJOURF+1", "00"),
        ("PJOURF+1", PJOURF),
    ]


# -- fixtures ------------------------------------------------------------------------

FIXTURES: list[Fixture] = []


def fixture(fn: Callable[[], Fixture]) -> Callable[[], Fixture]:
    FIXTURES.append(fn())
    return fn


def simple(name: str, description: str, mode: Mode, *frames: list[Spec]) -> Fixture:
    fx = Fixture(name, description)
    for specs in frames:
        data, exp = clean(mode, specs)
        fx.data += data
        fx.frames.append(exp)
    fx.stats = {"frames_complete": len(frames), "bytes_skipped": 0, "groups_bad_checksum": 0}
    return fx


@fixture
def _hist_mono_base() -> Fixture:
    return simple("hist_mono_base", "CBEMM/Linky historique, option BASE", H, HIST_BASE)


@fixture
def _hist_mono_hc() -> Fixture:
    second = [("HCHP", "027404433") if s[0] == "HCHP" else s for s in HIST_HC]
    return simple("hist_mono_hc", "historique, option HC, two frames", H, HIST_HC, second)


@fixture
def _hist_mono_tempo() -> Fixture:
    return simple("hist_mono_tempo", "historique Tempo (OPTARIF BBR(, DEMAIN)", H, HIST_TEMPO)


@fixture
def _hist_tri_burst() -> Fixture:
    fx = Fixture(
        "hist_tri_burst",
        "three-phase historique: long frame, long frame cut by EOT when an overload "
        "starts, short frames (ADIR), long frame",
    )
    long_data, long_exp = clean(H, HIST_TRI_LONG)
    fx.data += long_data
    fx.frames.append(long_exp)
    cut = b"".join(groups_bytes(H, HIST_TRI_LONG)[:7])
    fx.data += STX + cut + EOT
    shorts = [
        hist_tri_short({2: "023"}, ("003", "023", "002")),
        hist_tri_short({2: "024", 3: "021"}, ("004", "024", "021")),
        hist_tri_short({1: "025", 2: "024", 3: "022"}, ("025", "024", "022")),
    ]
    for specs in shorts:
        data, exp = clean(H, specs)
        fx.data += data
        fx.frames.append(exp)
    fx.data += long_data
    fx.frames.append(long_exp)
    fx.stats = {"frames_interrupted": 1, "frames_complete": 5, "bytes_dropped": len(cut) + 2}
    return fx


@fixture
def _std_mono() -> Fixture:
    return simple("std_mono", "Linky standard, single phase, HP/HC", S, std_mono())


@fixture
def _std_tri_tempo() -> Fixture:
    return simple(
        "std_tri_tempo",
        "Linky standard, three-phase Tempo, mobile peak DPM1/FPM1",
        S,
        std_tri_tempo(),
    )


@fixture
def _std_producer() -> Fixture:
    return simple(
        "std_producer", "Linky standard producer (EAIT, ERQ1-4, SINSTI, CCAIN)", S, std_producer()
    )


@fixture
def _std_degraded_rtc() -> Fixture:
    specs: list[Spec] = [
        ("ADSC", "021861348497"),
        ("DATE", "", "h240210121355"),
        ("SMAXSN", "05102", "e230810071214"),
        ("SINSTS", "00958"),
    ]
    return simple(
        "std_degraded_rtc", "standard horodates with lower-case seasons (degraded RTC)", S, specs
    )


# Examples quoted in the protocol reference, as literal bytes.


@fixture
def _ref_historique() -> Fixture:
    fx = Fixture("ref_historique", "tic.md examples: IMAX 090 H, PTEC HP.. with SP checksum")
    fx.data = b"\x02\nIMAX 090 H\r\nPTEC HP..  \r\x03"
    fx.frames = [Expect(H, [["IMAX", "090", None, True], ["PTEC", "HP..", None, True]])]
    return fx


@fixture
def _ref_standard() -> Fixture:
    fx = Fixture(
        "ref_standard",
        "tic.md examples: ADSC, DATE with empty data, EASD01 with SP checksum, SMAXSN, "
        "DPM1 with a space season, DATE E210414082625",
    )
    fx.data = (
        b"\x02\nADSC\t012345678910\t;\r\nDATE\tH240210121355\t\t;\r\nEASD01\t000000000\t \r"
        b"\nSMAXSN\tH240210110331\t00986\t6\r\nDPM1\t 200214060000\t00\t\\\r\x03"
        b"\x02\nDATE\tE210414082625\t\tA\r\x03"
    )
    fx.frames = [
        Expect(
            S,
            [
                ["ADSC", "012345678910", None, True],
                ["DATE", "", "H240210121355", True],
                ["EASD01", "000000000", None, True],
                ["SMAXSN", "00986", "H240210110331", True],
                ["DPM1", "00", " 200214060000", True],
            ],
        ),
        Expect(S, [["DATE", "", "E210414082625", True]]),
    ]
    return fx


@fixture
def _ref_eot() -> Fixture:
    fx = Fixture(
        "ref_eot",
        "tic.md EOT example 'HCHP 019571184 7\\r\\x04\\x02\\n': the interrupted frame is dropped",
    )
    head = b"".join(groups_bytes(H, HIST_HC[:4]))
    rest = b"".join(groups_bytes(H, HIST_HC))
    fx.data = b"\x02" + head + b"\nHCHP 019571184 7\r\x04\x02" + rest + b"\x03"
    # the frame after the EOT is the whole HC frame, its STX right after the EOT
    fx.frames = [Expect(H, expected_groups(HIST_HC))]
    fx.stats = {"frames_interrupted": 1, "frames_complete": 1, "bytes_skipped": 0}
    return fx


# Checksum edge cases: values found by search so that the checksum is SP, '\', '_'.


def find_group(mode: Mode, target: str, candidates: list[tuple[str, str, str | None]]) -> Spec:
    """The first (label, value[, horodate]) of the candidates whose checksum is ``target``."""
    for label, fmt, horodate in candidates:
        for n in range(100000):
            value = fmt.format(n)
            if enc(label, value, mode, horodate)[-2:-1] == target.encode():
                return (label, value) if horodate is None else (label, value, horodate)
    raise AssertionError(target)


@fixture
def _checksum_edges() -> Fixture:
    fx = Fixture("checksum_edges", "groups whose checksum is SP, backslash or underscore")
    hist: list[tuple[str, str, str | None]] = [
        ("PAPP", "{:05d}", None),
        ("BASE", "{:09d}", None),
        ("IINST", "{:03d}", None),
    ]
    std: list[tuple[str, str, str | None]] = [
        ("SINSTS", "{:05d}", None),
        ("EAST", "{:09d}", None),
        ("IRMS1", "{:03d}", None),
    ]
    for mode, candidates in ((H, hist), (S, std)):
        specs = [find_group(mode, target, candidates) for target in (" ", "\\", "_")]
        if mode is S:
            stamps = ("H240210110331", "H240210071214", "E230621071233", "H240115075521")
            specs.append(find_group(S, " ", [("SMAXSN", "{:05d}", h) for h in stamps]))
        data, exp = clean(mode, specs)
        fx.data += data
        fx.frames.append(exp)
    return fx


# Noise.


def parity7e1(data: bytes) -> bytes:
    """Add the even parity bit as bit 7, as seen on an 8N1 port."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


@fixture
def _noise_parity() -> Fixture:
    fx = Fixture("noise_parity", "7E1 stream read on an 8N1 port: parity in bit 7")
    raw = b""
    for mode, specs in ((H, HIST_HC), (S, std_mono())):
        data, exp = clean(mode, specs)
        raw += data
        fx.frames.append(exp)
    fx.data = parity7e1(raw)
    fx.stats = {"parity_bytes": sum(1 for b in fx.data if b & 0x80), "groups_malformed": 0}
    assert fx.stats["parity_bytes"] > 100
    return fx


def damaged(
    name: str, description: str, mode: Mode, specs: list[Spec], edit: Callable[[list[bytes]], None]
) -> tuple[Fixture, list[list[Any]]]:
    fx = Fixture(name, description)
    parts = groups_bytes(mode, specs)
    edit(parts)
    fx.data = STX + b"".join(parts) + ETX
    return fx, expected_groups(specs)


@fixture
def _noise_lost_cr() -> Fixture:
    def edit(parts: list[bytes]) -> None:
        parts[2] = parts[2][:-1]  # ISOUSC loses its CR

    fx, groups = damaged("noise_lost_cr", "the CR of group 3 is lost", H, HIST_HC, edit)
    fx.frames = [Expect(H, groups, errors=["CR missing after group 3"])]
    fx.stats = {"framing_errors": 1, "groups_ok": len(HIST_HC)}
    return fx


@fixture
def _noise_lost_lf() -> Fixture:
    def edit(parts: list[bytes]) -> None:
        parts[3] = parts[3][1:]  # HCHC loses its LF

    fx, groups = damaged("noise_lost_lf", "the LF of group 4 is lost", H, HIST_HC, edit)
    fx.frames = [Expect(H, groups, errors=["LF missing before group 4"])]
    return fx


@fixture
def _noise_lf_substitutes() -> Fixture:
    specs = std_mono()

    def edit(parts: list[bytes]) -> None:
        parts[0] = b"\x0e" + parts[0][1:]
        parts[4] = b"\x0f" + parts[4][1:]
        parts[9] = b"\x0b" + parts[9][1:]

    fx, groups = damaged(
        "noise_lf_substitutes",
        "LF received as 0x0E, 0x0F and 0x0B (hardware quirk)",
        S,
        specs,
        edit,
    )
    fx.frames = [
        Expect(
            S,
            groups,
            errors=[
                "LF received as 0x0E before group 1",
                "LF received as 0x0F before group 5",
                "LF received as 0x0B before group 10",
            ],
        )
    ]
    return fx


@fixture
def _noise_cr_substitute() -> Fixture:
    def edit(parts: list[bytes]) -> None:
        parts[2] = parts[2][:-1] + b"\x0c"
        parts[-1] = parts[-1][:-1] + b"\x0c"

    fx, groups = damaged("noise_cr_substitute", "CR received as 0x0C", H, HIST_TEMPO, edit)
    n = len(HIST_TEMPO)
    fx.frames = [
        Expect(
            H,
            groups,
            errors=["CR received as 0x0C after group 3", f"CR received as 0x0C after group {n}"],
        )
    ]
    return fx


@fixture
def _noise_lf_and_cr_substitutes() -> Fixture:
    def edit(parts: list[bytes]) -> None:
        parts[5] = parts[5][:-1] + b"\x0c"
        parts[6] = b"\x0e" + parts[6][1:]

    fx, groups = damaged(
        "noise_lf_and_cr_substitutes", "CR as 0x0C followed by LF as 0x0E", H, HIST_BASE, edit
    )
    fx.frames = [
        Expect(
            H,
            groups,
            errors=["CR received as 0x0C after group 6", "LF received as 0x0E before group 7"],
        )
    ]
    return fx


@fixture
def _noise_cr_lost_before_etx() -> Fixture:
    def edit(parts: list[bytes]) -> None:
        parts[-1] = parts[-1][:-1]

    fx, groups = damaged(
        "noise_cr_lost_before_etx", "the last CR is lost before ETX", S, std_producer(), edit
    )
    n = len(groups)
    fx.frames = [Expect(S, groups, errors=[f"CR missing after group {n} (before ETX)"])]
    return fx


@fixture
def _noise_bit_flips() -> Fixture:
    fx = Fixture(
        "noise_bit_flips",
        "single-bit errors: bit 0 in PAPP (checksum), bit 6 in IINST '0'->'p' (invisible to "
        "the checksum, caught by the character check), bit 6 in EAST (idem, standard)",
    )
    parts = groups_bytes(H, HIST_HC)
    papp = parts[8]
    assert papp.startswith(b"\nPAPP 01920")
    parts[8] = papp.replace(b"01920", b"01921")  # bit 0 of the last digit
    parts[6] = parts[6].replace(b"008", b"p08")  # IINST, bit 6
    fx.data = STX + b"".join(parts) + ETX
    groups = expected_groups(HIST_HC)
    groups[8] = ["PAPP", "01921", None, False]
    groups[6] = ["IINST", "p08", None, False]
    papp_chk = chk(b"PAPP 01920")
    fx.frames.append(
        Expect(
            H,
            groups,
            errors=[
                "group 7 'IINST': character 'p' not allowed in the data",
                f"group 9 'PAPP': bad checksum {papp_chk!r} (expected {chk(b'PAPP 01921')!r})",
            ],
        )
    )
    specs = std_mono()
    parts = groups_bytes(S, specs)
    assert parts[5].startswith(b"\nEAST\t008765432")
    parts[5] = parts[5].replace(b"008765432", b"0087654s2")  # '3' -> 's' (bit 6)
    fx.data += STX + b"".join(parts) + ETX
    groups = expected_groups(specs)
    groups[5] = ["EAST", "0087654s2", None, False]
    fx.frames.append(
        Expect(S, groups, errors=["group 6 'EAST': character 's' not allowed in the data"])
    )
    fx.stats = {"groups_bad_checksum": 1, "groups_malformed": 2}
    return fx


@fixture
def _noise_flip_to_line_breaks() -> Fixture:
    fx = Fixture(
        "noise_flip_to_line_breaks",
        "a bit flip turns 'J' of PTEC HPJB into LF, and 'M' of MOTDETAT into CR",
    )
    parts = groups_bytes(H, HIST_TEMPO)
    i_ptec, i_mot = 9, 15
    ptec, mot = parts[i_ptec], parts[i_mot]
    assert ptec.startswith(b"\nPTEC HPJB ") and mot.startswith(b"\nMOTDETAT ")
    parts[i_ptec] = ptec.replace(b"HPJB", b"HP\nB")
    parts[i_mot] = b"\n\r" + mot[2:]
    fx.data = STX + b"".join(parts) + ETX
    groups = expected_groups(HIST_TEMPO)
    ptec_chk = ptec[-2:-1].decode()
    mot_chk = mot[-2:-1].decode()
    groups[i_ptec : i_ptec + 1] = [["", "", None, False], ["", "", None, False]]
    groups[-1] = ["OTDETAT", "000000", None, False]
    n_mot = len(groups)
    fx.frames.append(
        Expect(
            H,
            groups,
            errors=[
                f"group {i_ptec + 1} '': no SP or HT before the checksum: 'PTEC HP'",
                f"CR missing after group {i_ptec + 1}",
                f"group {i_ptec + 2} '': too short: 'B {ptec_chk}'",
                f"unexpected line breaks b'\\r\\n\\r' between groups {n_mot - 1} and {n_mot}",
                f"group {n_mot} 'OTDETAT': bad checksum {mot_chk!r} "
                f"(expected {chk(b'OTDETAT 000000')!r})",
            ],
        )
    )
    fx.stats = {"groups_malformed": 2, "groups_bad_checksum": 1}
    return fx


@fixture
def _noise_garbage() -> Fixture:
    fx = Fixture("noise_garbage", "joined mid-frame, garbage (with stray ETX/EOT) between frames")
    full = b"".join(groups_bytes(H, HIST_BASE))
    tail = full[len(full) // 2 :] + ETX  # the end of a frame already under way
    junk1 = b"\x00\x7f\xff\x03\x04 \r\n noise \x0e\x0c\xfe"
    junk2 = b"\x80\x81\x83\x84\x11\x13" * 5
    data1, exp1 = clean(H, HIST_BASE)
    data2, exp2 = clean(H, HIST_HC)
    fx.data = tail + data1 + junk1 + data2 + junk2
    fx.frames = [exp1, exp2]
    fx.stats = {
        "bytes_skipped": len(tail) + len(junk1) + len(junk2),
        "frames_complete": 2,
        "parity_bytes": 2 + len(junk2) * 4 // 6,
    }
    return fx


@fixture
def _noise_lost_etx() -> Fixture:
    fx = Fixture("noise_lost_etx", "the ETX of the first frame is lost: the next STX cuts it")
    data1, exp1 = clean(H, HIST_BASE)
    data2, exp2 = clean(H, HIST_HC)
    fx.data = data1[:-1] + data2
    exp1.complete = False
    exp1.errors = ["missing ETX: frame cut by the next STX"]
    fx.frames = [exp1, exp2]
    fx.stats = {"frames_incomplete": 1, "frames_complete": 1}
    return fx


@fixture
def _noise_truncated() -> Fixture:
    fx = Fixture("noise_truncated", "the input ends in the middle of a group")
    data, exp = clean(S, std_mono())
    cut = data.index(b"\nSINSTS\t") + len(b"\nSINSTS\t009")
    fx.data = data[:cut]
    exp.groups = exp.groups[: [g[0] for g in exp.groups].index("SINSTS") + 1]
    n = len(exp.groups)
    exp.groups[-1] = ["", "", None, False]
    exp.complete = False
    exp.errors = [
        f"group {n} '': truncated: the frame ended before its CR: 'SINSTS\\t009'",
        "missing ETX: end of input",
    ]
    fx.frames = [exp]
    fx.stats = {"frames_incomplete": 1, "groups_malformed": 1}
    return fx


@fixture
def _noise_oversize() -> Fixture:
    fx = Fixture(
        "noise_oversize",
        "a frame of more than 4096 bytes (ETX lost among repeated groups) is dropped",
    )
    body = b"".join(groups_bytes(H, HIST_BASE)) * 40
    assert len(body) > 4096
    data2, exp2 = clean(H, HIST_HC)
    fx.data = STX + body + ETX + data2
    fx.frames = [exp2]
    fx.stats = {
        "frames_oversize": 1,
        "bytes_dropped": 4096,
        "bytes_skipped": len(body) + 2 - 4096,
        "frames_complete": 1,
    }
    return fx


@fixture
def _noise_eot() -> Fixture:
    fx = Fixture("noise_eot", "EOT in the middle of a standard frame: the frame is dropped")
    parts = groups_bytes(S, std_mono())
    data2, exp2 = clean(S, std_tri_tempo())
    cut = b"".join(parts[:12]) + parts[12][:6]
    fx.data = STX + cut + EOT + b"\r\n" + data2
    fx.frames = [exp2]
    fx.stats = {"frames_interrupted": 1, "bytes_skipped": 2, "bytes_dropped": len(cut) + 2}
    return fx


@fixture
def _mode_mixup() -> Fixture:
    fx = Fixture(
        "mode_mixup",
        "a historique group carrying the standard checksum and a standard group carrying "
        "the historique checksum are invalid",
    )
    std_zone, hist_rule = b"SINSTS\t00958\t", chk(b"SINSTS\t00958")
    wrong_h = f"PAPP 01920 {chk(b'PAPP 01920 ')}".encode()
    wrong_s = std_zone + hist_rule.encode()
    good = groups_bytes(H, [("ADCO", "021861348497"), ("IINST", "008")])
    fx.data = STX + good[0] + b"\n" + wrong_h + b"\r" + good[1] + ETX
    good_s = groups_bytes(S, [("ADSC", "021861348497"), ("IRMS1", "004")])
    fx.data += STX + good_s[0] + b"\n" + wrong_s + b"\r" + good_s[1] + ETX
    fx.frames = [
        Expect(
            H,
            [
                ["ADCO", "021861348497", None, True],
                ["PAPP", "01920", None, False],
                ["IINST", "008", None, True],
            ],
            errors=[
                f"group 2 'PAPP': bad checksum {chk(b'PAPP 01920 ')!r} "
                f"(expected {chk(b'PAPP 01920')!r}); it is the standard rule's value"
            ],
        ),
        Expect(
            S,
            [
                ["ADSC", "021861348497", None, True],
                ["SINSTS", "00958", None, False],
                ["IRMS1", "004", None, True],
            ],
            errors=[
                f"group 2 'SINSTS': bad checksum {hist_rule!r} "
                f"(expected {chk(std_zone)!r}); it is the historique rule's value"
            ],
        ),
    ]
    return fx


@fixture
def _mixed_frame() -> Fixture:
    fx = Fixture(
        "mixed_frame",
        "a valid historique group inside a standard frame is invalid (mixed frames are corruption)",
    )
    std = groups_bytes(S, [("ADSC", "021861348497"), ("VTIC", "02"), ("IRMS1", "004")])
    hist = groups_bytes(H, [("IINST", "004")])
    fx.data = STX + std[0] + std[1] + hist[0] + std[2] + ETX
    fx.frames = [
        Expect(
            S,
            [
                ["ADSC", "021861348497", None, True],
                ["VTIC", "02", None, True],
                ["IINST", "004", None, False],
                ["IRMS1", "004", None, True],
            ],
            errors=["group 3 'IINST': historique group, in a frame of mode standard"],
        )
    ]
    return fx


def write_all() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    names = set()
    for fx in FIXTURES:
        assert fx.name not in names, fx.name
        names.add(fx.name)
        (OUT / f"{fx.name}.bin").write_bytes(fx.data)
        doc = {
            "description": fx.description,
            "decoder": fx.decoder,
            "frames": [f.as_json() for f in fx.frames],
            "stats": fx.stats,
        }
        (OUT / f"{fx.name}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    write_all()
