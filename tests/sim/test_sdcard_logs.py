"""The virtual SD card and the daily CSV logs of a simulated box."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.sim.box import SimulatedBox, make_identity
from wesh.sim.logs import LogRecorder
from wesh.sim.model import Firmware
from wesh.sim.sdcard import SdCard, split_path
from wesh.wes.csvlog import parse_csv_log

START = datetime(2025, 1, 15, 22, 0, tzinfo=UTC).timestamp()


def test_names_are_case_insensitive_and_case_preserving() -> None:
    card = SdCard()
    card.write("/WEBPROG/CGX/Data_Jeedom.CGX", b"t x\n")
    assert card.read("/webprog/cgx/DATA_JEEDOM.cgx") == b"t x\n"
    assert card.real_path("/webprog/cgx/data_jeedom.cgx") == "/WEBPROG/CGX/Data_Jeedom.CGX"
    card.write("/webprog/cgx/data_jeedom.cgx", b"t y\n")
    assert [e.name for e in card.listdir("/WebProg/CGX")] == ["Data_Jeedom.CGX"]
    entry = card.entry("/WEBPROG/CGX/DATA_JEEDOM.CGX")
    assert entry is not None and entry.version == 2 and entry.data == b"t y\n"


def test_paths_never_escape_the_root() -> None:
    assert split_path("/../../etc/passwd") == ["etc", "passwd"]
    assert split_path("a/./b/../c") == ["a", "c"]
    with pytest.raises(UsageError):
        split_path("/a:b")


def test_directories_and_files() -> None:
    card = SdCard()
    card.mkdir("/JWES")
    with pytest.raises(UsageError):
        card.mkdir("/jwes")
    card.mkdir("/jwes", exist_ok=True)
    card.write("/JWES/HIGH.CGX", b"t 1\n", parents=False)
    with pytest.raises(UsageError):
        card.remove("/JWES", directory=True)  # not empty
    with pytest.raises(UsageError):
        card.write("/NOPE/X.CGX", b"", parents=False)
    card.rename("/jwes/high.cgx", "/JWES/LOW.CGX")
    assert card.read("/JWES/LOW.CGX") == b"t 1\n" and card.read("/JWES/HIGH.CGX") is None
    card.remove("/JWES/LOW.CGX", directory=False)
    card.remove("/JWES", directory=True)
    assert card.entry("/JWES") is None
    assert card.read("/") is None  # a directory has no content


@given(st.lists(st.text(alphabet="abcXYZ_.", min_size=1, max_size=6), min_size=1, max_size=4))
def test_written_files_are_found_in_any_case(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    card = SdCard()
    try:
        card.write(path, b"data")
    except UsageError:
        return  # "." and ".." only, or a name that is also a directory
    real = card.real_path(path.swapcase())
    if real is not None:
        assert card.read(real) == b"data"


@pytest.mark.parametrize("firmware", list(Firmware))
def test_logs_parse_back_to_the_sampled_states(firmware: Firmware) -> None:
    box = SimulatedBox(make_identity(1, seed=4, firmware=firmware), start=START)
    recorder = LogRecorder(interval_s=900)
    states = []

    def sample(state: object) -> None:
        states.append(state)
        recorder.record(state)  # type: ignore[arg-type]

    box.set_sampler(sample, every_s=900)
    box.advance_to(START + 6 * 3600)  # crosses midnight in Paris
    files = recorder.files()
    assert sorted(files) == ["/LOGS/2025/01/20250115.CSV", "/LOGS/2025/01/20250116.CSV"]
    rows = [row for text in files.values() for row in parse_csv_log(text).rows]
    assert len(rows) == len(states) == 24
    for row, state in zip(rows, states, strict=True):
        assert row.box_time == state.box_time
        reading = state.tics[0].reading
        assert row.values["tic.1.index.hchc"] == reading.indexes_wh["HCHC"]
        assert row.values["tic.1.power_va"] == reading.power_va
        assert row.values["impulsion.1.index"] == state.counters[0].index
        assert row.values["impulsion.3.index"] == state.counters[2].index
        assert row.values["temp.1"] == state.probes[1]
        assert row.values["temp.2"] == state.probes[2]


def test_gas_logs_are_in_litres() -> None:
    box = SimulatedBox(make_identity(0, seed=4), start=START)
    recorder = LogRecorder(interval_s=900)
    box.set_sampler(recorder.record, every_s=900)
    box.advance_to(START + 900)
    log = parse_csv_log(next(iter(recorder.files().values())))
    assert [c.header() for c in log.columns][:3] == [
        "tic.1.power_va (VA)",
        "tic.1.index.base (Wh)",
        "impulsion.1.index (L)",
    ]
    gas = box.state().counters[0]
    assert log.rows[-1].values["impulsion.1.index"] == gas.index_pulses * 10


def test_logs_keep_only_the_last_days() -> None:
    box = SimulatedBox(make_identity(0, seed=4), start=START)
    recorder = LogRecorder(interval_s=3600, keep_days=2)
    box.set_sampler(recorder.record, every_s=3600)
    box.advance_to(START + 4 * 86_400)
    assert len(recorder.files()) == 2
    with pytest.raises(UsageError):
        box.set_sampler(recorder.record, every_s=90)


def test_rename_may_change_case_only() -> None:
    card = SdCard()
    card.write("/data_perso.cgx", b"t 1\n")
    card.rename("/data_perso.cgx", "/DATA_PERSO.CGX")
    assert card.real_path("/data_perso.cgx") == "/DATA_PERSO.CGX"
    card.write("/other.cgx", b"")
    with pytest.raises(UsageError):
        card.rename("/other.cgx", "/Data_Perso.cgx")
