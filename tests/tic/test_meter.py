"""read_frame and MeterState on realistic frames of each kind of meter."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.tic.encoder import checksum, make_group
from wesh.tic.horodate import Horodate
from wesh.tic.meter import MeterReading, MeterState, read_frame
from wesh.tic.model import Frame, Group, Mode
from wesh.tic.values import (
    CplStatus,
    DayProfile,
    MobilePeak,
    TariffOptionKind,
    TariffPeriod,
    TempoColour,
    TicText,
    Timed,
)

H, S = Mode.HISTORIQUE, Mode.STANDARD


def group(label: str, value: str, mode: Mode, horodate: str | None = None) -> Group:
    if len(label) <= 8:
        return make_group(label, value, mode=mode, horodate=horodate)
    # SMAXSN1-1..SMAXSN3-1 have 9 characters: build them by hand (the encoder stops at 8).
    sep = "\t"
    zone = f"{label}{sep}{horodate}{sep}{value}{sep}" if horodate else f"{label}{sep}{value}{sep}"
    return Group(label, value, horodate, chr(checksum(zone.encode())), True, mode)


def frame(mode: Mode, *items: tuple[str, ...], complete: bool = True) -> Frame:
    groups = tuple(group(item[0], item[1], mode, *item[2:]) for item in items)
    return Frame(mode=mode, groups=groups, complete=complete)


# ------------------------------------------------------------------ historique frames

HIST_MONO_BASE = frame(
    H,
    ("ADCO", "021861123456"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "30"),
    ("BASE", "012345678"),
    ("PTEC", "TH.."),
    ("IINST", "002"),
    ("IMAX", "090"),
    ("PAPP", "00450"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
)

HIST_MONO_HC = frame(
    H,
    ("ADCO", "031064998877"),
    ("OPTARIF", "HC.."),
    ("ISOUSC", "45"),
    ("HCHC", "001234567"),
    ("HCHP", "002345678"),
    ("PTEC", "HP.."),
    ("IINST", "047"),
    ("ADPS", "047"),
    ("IMAX", "060"),
    ("PAPP", "10870"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
)

TEMPO_INDEXES = {
    "BBRHCJB": 4_125_300,
    "BBRHPJB": 6_010_020,
    "BBRHCJW": 512_000,
    "BBRHPJW": 700_999,
    "BBRHCJR": 101_010,
    "BBRHPJR": 99_001,
}
HIST_MONO_TEMPO = frame(
    H,
    ("ADCO", "041875000111"),
    ("OPTARIF", "BBR("),
    ("ISOUSC", "45"),
    *((label, f"{n:09d}") for label, n in TEMPO_INDEXES.items()),
    ("PTEC", "HPJW"),
    ("DEMAIN", "ROUG"),
    ("IINST", "012"),
    ("IMAX", "090"),
    ("PAPP", "02890"),
    ("HHPHC", "Y"),
    ("MOTDETAT", "000000"),
)

HIST_TRI_LONG = frame(
    H,
    ("ADCO", "011963999999"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "20"),
    ("BASE", "004567890"),
    ("PTEC", "TH.."),
    ("IINST1", "010"),
    ("IINST2", "012"),
    ("IINST3", "008"),
    ("IMAX1", "060"),
    ("IMAX2", "060"),
    ("IMAX3", "060"),
    ("PMAX", "06330"),
    ("PAPP", "07200"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
    ("PPOT", "00"),
)

HIST_TRI_SHORT = frame(
    H,
    ("ADIR2", "062"),
    ("ADCO", "011963999999"),
    ("IINST1", "010"),
    ("IINST2", "062"),
    ("IINST3", "008"),
)


def test_historique_mono_base():
    r = read_frame(HIST_MONO_BASE)
    assert r.mode is H
    assert r.complete
    assert r.identity is not None
    assert r.identity.device_type_code == "61"
    assert r.tariff_option is not None
    assert r.tariff_option.kind is TariffOptionKind.BASE
    assert r.tariff_period is TariffPeriod.TH
    assert dict(r.indexes_wh) == {"BASE": 12_345_678}
    assert r.total_index_wh == 12_345_678
    assert r.apparent_power_va == 450
    assert r.currents_a == (2,)
    assert r.voltages_v == ()
    assert r.subscribed_current_a == 30
    assert r.subscribed_power_kva is None
    assert not r.three_phase
    assert not r.producer
    assert not r.overload
    assert not r.short_frame
    assert r.status is None
    assert r.meter_time is None
    assert r.injected_index_wh is None
    assert r.warnings == ()
    assert r.values["HHPHC"] == TicText("A")
    assert r.values["IMAX"] == 90
    assert len(r.values) == 10


def test_historique_mono_hc_overload():
    r = read_frame(HIST_MONO_HC)
    assert dict(r.indexes_wh) == {"HCHC": 1_234_567, "HCHP": 2_345_678}
    assert r.total_index_wh == 1_234_567 + 2_345_678
    assert r.tariff_period is TariffPeriod.HP
    assert r.overload  # ADPS present
    assert r.currents_a == (47,)
    assert r.apparent_power_va == 10_870
    assert not r.three_phase


def test_historique_mono_tempo():
    r = read_frame(HIST_MONO_TEMPO)
    assert dict(r.indexes_wh) == TEMPO_INDEXES
    assert r.total_index_wh == sum(TEMPO_INDEXES.values())
    assert r.tariff_option is not None
    assert r.tariff_option.kind is TariffOptionKind.TEMPO
    assert r.tariff_option.circuit1_program == "A"
    assert r.tariff_period is TariffPeriod.HPJW
    assert isinstance(r.tariff_period, TariffPeriod)
    assert r.tariff_period.tempo_colour is TempoColour.WHITE
    assert r.tempo_tomorrow is TempoColour.RED
    assert not r.overload


def test_historique_tri_long():
    r = read_frame(HIST_TRI_LONG)
    assert r.three_phase
    assert not r.short_frame
    assert r.currents_a == (10, 12, 8)
    assert r.total_index_wh == 4_567_890
    assert r.apparent_power_va == 7200
    assert r.values["PMAX"] == 6330
    assert not r.overload


def test_historique_tri_short():
    r = read_frame(HIST_TRI_SHORT)
    assert r.short_frame
    assert r.three_phase
    assert r.overload
    assert r.currents_a == (10, 62, 8)
    assert r.total_index_wh is None
    assert dict(r.indexes_wh) == {}
    assert r.identity is not None
    assert r.identity.three_phase


def test_short_frame_after_overload_without_adir():
    # For one minute after an overload, short frames may carry no ADIR at all.
    r = read_frame(frame(H, ("ADCO", "011963999999"), *((f"IINST{n}", "005") for n in (1, 2, 3))))
    assert r.short_frame
    assert not r.overload


def test_frame_with_only_adco_is_not_short():
    assert not read_frame(frame(H, ("ADCO", "011963999999"))).short_frame


# ------------------------------------------------------------------ standard frames

NONUTILE = " NONUTILE" * 10


def standard_common(*, three_phase: bool) -> list[tuple[str, ...]]:
    phases = (1, 2, 3) if three_phase else (1,)
    return [
        ("IRMS1", "004"),
        *((f"IRMS{n}", f"{n:03d}") for n in phases[1:]),
        ("URMS1", "232"),
        *((f"URMS{n}", f"{230 + n:03d}") for n in phases[1:]),
    ]


STD_MONO = frame(
    S,
    ("ADSC", "021861123456"),
    ("VTIC", "02"),
    ("DATE", "", "E240612143005"),
    ("NGTF", "      BASE      "),
    ("LTARF", "      BASE      "),
    ("EAST", "001234567"),
    ("EASF01", "001234567"),
    *((f"EASF{n:02d}", "000000000") for n in range(2, 11)),
    ("EASD01", "001234567"),
    *((f"EASD{n:02d}", "000000000") for n in range(2, 5)),
    *standard_common(three_phase=False),
    ("PREF", "09"),
    ("PCOUP", "09"),
    ("SINSTS", "00960"),
    ("SMAXSN", "01420", "E240612070102"),
    ("SMAXSN-1", "03310", "E240611192203"),
    ("CCASN", "00812", "E240612140000"),
    ("CCASN-1", "00977", "E240612133000"),
    ("UMOY1", "231", "E240612143000"),
    ("STGE", "003A0001"),
    ("MSG1", "PAS DE          MESSAGE         "),
    ("PRM", "01234567890123"),
    ("RELAIS", "000"),
    ("NTARF", "01"),
    ("NJOURF", "00"),
    ("NJOURF+1", "00"),
    ("PJOURF+1", "00004001" + NONUTILE),
)


def test_standard_mono():
    r = read_frame(STD_MONO)
    assert r.mode is S
    assert r.identity is not None
    assert r.identity.three_phase is False
    assert r.total_index_wh == 1_234_567
    assert r.indexes_wh["EAST"] == 1_234_567
    assert r.indexes_wh["EASD04"] == 0
    assert len(r.indexes_wh) == 15
    assert r.apparent_power_va == 960
    assert r.currents_a == (4,)
    assert r.voltages_v == (232,)
    assert r.subscribed_power_kva == 9
    assert r.subscribed_current_a is None
    assert r.tariff_period == "BASE"
    assert r.tariff_index == 1
    assert r.tariff_option is None
    assert not r.three_phase
    assert not r.producer
    assert not r.overload
    assert r.status is not None
    assert r.status.dry_contact_open
    assert r.relays is not None
    assert r.relays.closed_relays == ()
    assert isinstance(r.meter_time, Horodate)
    assert r.meter_time.raw == "E240612143005"
    smax = r.values["SMAXSN"]
    assert isinstance(smax, Timed)
    assert smax.value == 1420
    assert isinstance(r.values["PJOURF+1"], DayProfile)
    assert r.warnings == ()


STD_TRI_TEMPO = frame(
    S,
    ("ADSC", "041776199277"),
    ("VTIC", "02"),
    ("DATE", "", "H240210121355"),
    ("NGTF", "     TEMPO      "),
    ("LTARF", "    HC BLANC    "),
    ("EAST", "012000000"),
    ("EASF01", "004000000"),
    ("EASF02", "005000000"),
    ("EASF03", "001000000"),
    *((f"EASF{n:02d}", f"{n * 100_000:09d}") for n in range(4, 7)),
    *((f"EASF{n:02d}", "000000000") for n in range(7, 11)),
    *((f"EASD{n:02d}", "003000000") for n in range(1, 5)),
    *standard_common(three_phase=True),
    ("PREF", "12"),
    ("PCOUP", "12"),
    ("SINSTS", "03450"),
    ("SINSTS1", "01150"),
    ("SINSTS2", "01200"),
    ("SINSTS3", "01100"),
    ("SMAXSN", "05120", "H240210110331"),
    *((f"SMAXSN{n}", "01800", "H240210110331") for n in (1, 2, 3)),
    ("SMAXSN-1", "06000", "H240209190000"),
    *((f"SMAXSN{n}-1", "02100", "H240209190000") for n in (1, 2, 3)),
    ("CCASN", "03300", "H240210120000"),
    ("CCASN-1", "03000", "H240210113000"),
    *((f"UMOY{n}", "231", "H240210121000") for n in (1, 2, 3)),
    ("STGE", "463A0800"),
    ("DPM1", "00", " 240210060000"),
    ("FPM1", "00", " 240210220000"),
    ("MSG1", "     PAS DE          MESSAGE    "),
    ("PRM", "09876543210987"),
    ("RELAIS", "001"),
    ("NTARF", "03"),
    ("NJOURF", "00"),
    ("NJOURF+1", "00"),
    ("PJOURF+1", "00004001 06004002 22004001" + " NONUTILE" * 8),
    ("PPOINTE", "00004003 06004004 22004003" + " NONUTILE" * 8),
)


def test_standard_tri_tempo():
    r = read_frame(STD_TRI_TEMPO)
    assert r.three_phase
    assert r.identity is not None
    assert r.identity.year == 2017
    assert r.currents_a == (4, 2, 3)
    assert r.voltages_v == (232, 232, 233)
    assert r.total_index_wh == 12_000_000
    assert r.apparent_power_va == 3450
    assert r.tariff_period == "HC BLANC"
    assert r.tariff_index == 3
    assert r.tempo_tomorrow is TempoColour.BLUE
    assert r.status is not None
    assert r.status.tempo_today is TempoColour.WHITE
    assert r.status.mobile_peak_active is MobilePeak.PM1
    assert r.status.cpl_status is CplStatus.NEW_LOCK
    assert r.relays is not None
    assert r.relays.dry_contact_closed
    smax = r.values["SMAXSN3-1"]
    assert isinstance(smax, Timed)
    assert smax.value == 2100
    dpm = r.values["DPM1"]
    assert isinstance(dpm, Timed)
    assert dpm.horodate.season == " "
    assert r.meter_time is not None
    assert dpm.horodate.at < r.meter_time.at
    assert not r.producer
    assert not r.overload
    assert r.warnings == ()


STD_PRODUCER = frame(
    S,
    ("ADSC", "021775000042"),
    ("VTIC", "02"),
    ("DATE", "", "E230815133512"),
    ("NGTF", "   PRODUCTEUR   "),
    ("LTARF", "  INDEX NON CON "),
    ("EAST", "000000000"),
    *((f"EASF{n:02d}", "000000000") for n in range(1, 11)),
    *((f"EASD{n:02d}", "000000000") for n in range(1, 5)),
    ("EAIT", "001234000"),
    ("ERQ1", "000012000"),
    ("ERQ2", "000001000"),
    ("ERQ3", "000000100"),
    ("ERQ4", "000000010"),
    ("IRMS1", "005"),
    ("URMS1", "238"),
    ("PREF", "06"),
    ("PCOUP", "06"),
    ("SINSTS", "00000"),
    ("SMAXSN", "00000", "E230815000000"),
    ("SMAXSN-1", "00000", "E230814000000"),
    ("SINSTI", "01258"),
    ("SMAXIN", "02960", "E230815133000"),
    ("SMAXIN-1", "03010", "E230814131500"),
    ("CCASN", "00000", "E230815130000"),
    ("CCASN-1", "00000", "E230815123000"),
    ("CCAIN", "01200", "E230815130000"),
    ("CCAIN-1", "01310", "E230815123000"),
    ("UMOY1", "237", "E230815133000"),
    ("STGE", "002A0301"),
    ("MSG1", "PAS DE          MESSAGE         "),
    ("PRM", "01234567890123"),
    ("RELAIS", "000"),
    ("NTARF", "01"),
    ("NJOURF", "00"),
    ("NJOURF+1", "00"),
    ("PJOURF+1", "00004001" + NONUTILE),
)


def test_standard_producer():
    r = read_frame(STD_PRODUCER)
    assert r.producer
    assert r.injected_index_wh == 1_234_000
    assert r.injected_power_va == 1258
    assert dict(r.reactive_indexes_varh) == {
        "ERQ1": 12_000,
        "ERQ2": 1000,
        "ERQ3": 100,
        "ERQ4": 10,
    }
    assert "EAIT" in r.indexes_wh
    assert r.total_index_wh == 0
    assert r.status is not None
    assert r.status.negative_energy
    assert not r.three_phase
    assert r.meter_time is not None
    assert r.meter_time.at.utcoffset() is not None


def test_producer_from_status_only():
    r = read_frame(frame(S, ("ADSC", "021775000042"), ("STGE", "013A0501")))
    assert r.producer
    assert r.tariff_index == 2


def test_standard_overload_from_status_bit_7():
    r = read_frame(frame(S, ("ADSC", "041776199277"), ("STGE", "003A0081")))
    assert r.overload


def test_g1_pilot_aliases():
    r = read_frame(
        frame(S, ("ADSC", "041767000001"), ("SINST1", "00420"), ("SMAXN", "01000", "H240210110331"))
    )
    assert r.apparent_power_va == 420
    assert "SINST1" in r.values


def test_east_missing_falls_back_on_supplier_registers():
    r = read_frame(frame(S, ("EASF01", "000001000"), ("EASF02", "000000500")))
    assert r.total_index_wh == 1500


# ------------------------------------------------------------------ tolerance


def test_bad_value_becomes_none_with_warning(caplog):
    bad = frame(H, ("ADCO", "021861123456"), ("BASE", "01234A678"), ("PAPP", "00450"))
    with caplog.at_level(logging.WARNING, logger="wesh.tic.meter"):
        r = read_frame(bad)
    assert r.total_index_wh is None
    assert "BASE" not in r.values
    assert r.apparent_power_va == 450
    assert len(r.warnings) == 1
    assert "BASE" in r.warnings[0]
    assert any("BASE" in rec.getMessage() for rec in caplog.records)
    assert all(rec.levelno == logging.WARNING for rec in caplog.records)


def test_invalid_checksum_groups_are_ignored():
    good = make_group("PAPP", "00450", mode=H)
    bad = replace(make_group("BASE", "012345678", mode=H), checksum_ok=False, error="checksum")
    r = read_frame(Frame(mode=H, groups=(bad, good), complete=True))
    assert r.total_index_wh is None
    assert r.apparent_power_va == 450
    assert r.warnings == ()


def test_unknown_labels_kept_raw():
    r = read_frame(frame(H, ("ADCO", "021861123456"), ("FOO", "BAR")))
    assert r.values["FOO"] == "BAR"


def test_group_without_any_mode_is_reported():
    r = read_frame(Frame(mode=None, groups=(Group("PAPP", "00450"),), complete=True))
    assert r.values == {}
    assert r.warnings == ("PAPP: mode unknown, group not decoded",)


def test_empty_frame():
    r = read_frame(Frame(mode=None, groups=(), complete=False))
    assert r.mode is None
    assert not r.complete
    assert r.values == {}
    assert r.currents_a == ()


_labels = st.sampled_from(
    ["ADCO", "ADSC", "BASE", "EAST", "PTEC", "STGE", "IINST1", "IRMS2", "DATE", "SMAXSN", "X"]
)
_group = st.builds(
    Group,
    label=_labels | st.text(max_size=9),
    value=st.text(max_size=40),
    horodate=st.none() | st.text(max_size=14),
    checksum=st.just("A"),
    checksum_ok=st.booleans(),
    mode=st.sampled_from([H, S, None]),
)


@given(st.lists(_group, max_size=12), st.sampled_from([H, S, None]), st.booleans())
def test_read_frame_never_raises(groups, mode, complete):
    f = Frame(mode=mode, groups=tuple(groups), complete=complete)
    r = read_frame(f)
    assert isinstance(r, MeterReading)
    assert MeterState().update(f).values == r.values


# ------------------------------------------------------------------ MeterState


def test_state_short_frames_keep_long_frame_indexes():
    state = MeterState()
    long1 = state.update(HIST_TRI_LONG)
    assert not long1.overload
    short = state.update(HIST_TRI_SHORT)
    assert short.short_frame
    assert short.overload
    assert short.currents_a == (10, 62, 8)
    assert short.total_index_wh == 4_567_890
    assert short.apparent_power_va == 7200
    assert short.tariff_period is TariffPeriod.TH
    assert short.values["ADIR2"] == 62
    # The overload ends: a short frame without ADIR2 clears it.
    calm = state.update(frame(H, ("ADCO", "011963999999"), ("IINST1", "009"), ("IINST2", "020")))
    assert calm.short_frame
    assert "ADIR2" not in calm.values
    assert not calm.overload
    assert calm.currents_a == (9, 20, 8)
    # The next long frame replaces everything.
    long2 = state.update(HIST_TRI_LONG)
    assert not long2.short_frame
    assert long2.currents_a == (10, 12, 8)
    assert state.last is long2


def test_state_keeps_values_lost_in_a_later_frame():
    state = MeterState()
    state.update(HIST_MONO_BASE)
    groups = list(HIST_MONO_BASE.groups)
    groups[3] = replace(groups[3], checksum_ok=False, error="checksum")  # BASE
    groups[7] = make_group("PAPP", "0X450", mode=H)  # does not decode
    r = state.update(Frame(mode=H, groups=tuple(groups), complete=True))
    assert r.total_index_wh == 12_345_678
    assert r.apparent_power_va == 450
    assert len(r.warnings) == 1
    # Labels that are simply no longer sent disappear (ADPS after an overload).
    state.update(HIST_MONO_HC)
    r = state.update(
        frame(H, *((g.label, g.value) for g in HIST_MONO_HC.groups if g.label != "ADPS"))
    )
    assert not r.overload


def test_state_incomplete_frame_updates_what_it_carries():
    state = MeterState()
    state.update(HIST_MONO_BASE)
    cut = frame(H, ("ADCO", "021861123456"), ("OPTARIF", "BASE"), ("ISOUSC", "30"), complete=False)
    r = state.update(cut)
    assert not r.complete
    assert r.total_index_wh == 12_345_678
    r = state.update(frame(H, ("ADCO", "021861123456"), ("BASE", "012345999"), complete=False))
    assert r.total_index_wh == 12_345_999
    assert r.apparent_power_va == 450


@pytest.mark.parametrize(
    "other",
    [
        frame(H, ("ADCO", "021861999999"), ("IINST", "001")),  # another meter
        frame(S, ("ADSC", "021861123456"), ("IRMS1", "001")),  # the meter changed mode
    ],
)
def test_state_restarts_on_other_meter_or_mode(other):
    state = MeterState()
    state.update(HIST_MONO_BASE)
    r = state.update(replace(other, complete=False))
    assert r.total_index_wh is None
    assert r.currents_a == (1,)
