"""Typed values: every example of the TIC reference note, errors, and properties."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import DecodeError
from wesh.tic.horodate import Horodate
from wesh.tic.labels import HISTORIQUE_LABELS, STANDARD_LABELS, Kind
from wesh.tic.model import Mode
from wesh.tic.values import (
    CplStatus,
    CutOffState,
    DayProfile,
    DryContactAction,
    EuridisOutput,
    MeterIdentity,
    MobilePeak,
    PotentialPresence,
    Relays,
    StatusRegister,
    StatusWord,
    TariffOption,
    TariffOptionKind,
    TariffPeriod,
    TempoColour,
    TicText,
    Timed,
    decode_value,
    parse_day_profile,
    parse_identity,
    parse_status_register,
    parse_tariff_option,
)

H, S = Mode.HISTORIQUE, Mode.STANDARD


# ----------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("label", "mode", "value", "expected"),
    [
        ("BASE", H, "012345678", 12_345_678),
        ("BASE", H, "01234567", 1_234_567),  # concentrator: 8 chars [02E §2.2]
        ("HCHP", H, "019571184", 19_571_184),  # hekmon/linkytic#9
        ("BBRHCJB", H, "000000000", 0),
        ("IMAX", H, "090", 90),
        ("IMAX", H, "060", 60),  # real Linky mono, not the spec's "always 90"
        ("ISOUSC", H, "30", 30),
        ("ISOUSC", H, "45", 45),
        ("IINST", H, "002", 2),
        ("IINST3", H, "013", 13),
        ("ADPS", H, "032", 32),
        ("ADIR2", H, "062", 62),
        ("PAPP", H, "00750", 750),
        ("PMAX", H, "06330", 6330),
        ("PEJP", H, "30", 30),
        ("GAZ", H, "0012345", 12345),
        ("TENSION", H, "233", 233),  # non-spec label seen in the field
        ("EAST", S, "000000000", 0),
        ("EASD01", S, "000000000", 0),
        ("EASF10", S, "123456789", 123_456_789),
        ("ERQ2", S, "000012345", 12345),
        ("IRMS1", S, "005", 5),
        ("URMS2", S, "231", 231),
        ("PREF", S, "09", 9),
        ("PCOUP", S, "12", 12),
        ("SINSTS", S, "01258", 1258),
        ("SINSTI", S, "01258", 1258),
        ("SINST1", S, "00420", 420),  # G1 pilot variant
        ("VTIC", S, "02", 2),
        ("NTARF", S, "03", 3),
        ("NJOURF", S, "00", 0),
        ("NJOURF+1", S, "09", 9),
    ],
)
def test_numbers(label, mode, value, expected):
    got = decode_value(label, value, mode=mode)
    assert type(got) is int
    assert got == expected


@pytest.mark.parametrize(
    ("label", "mode", "value"),
    [
        ("BASE", H, "0123456789"),  # longer than 9
        ("BASE", H, "01234567A"),
        ("BASE", H, ""),
        ("BASE", H, " 12345678"),
        ("BASE", H, "+12345678"),
        ("BASE", H, "1_2345678"),
        ("BASE", H, "12345678\u0663"),  # Arabic-Indic digit: str.isdigit() says yes
        ("IINST", H, "1000"),
        ("EAST", S, "00000000"),  # standard widths are exact
        ("EAST", S, "0000000000"),
        ("IRMS1", S, "5"),
        ("PREF", S, "9"),
        ("SINSTS", S, "-0001"),
        ("VTIC", S, "2"),
    ],
)
def test_bad_numbers(label, mode, value):
    with pytest.raises(DecodeError) as err:
        decode_value(label, value, mode=mode)
    assert err.value.channel == label


# ----------------------------------------------------------------- horodated values


@pytest.mark.parametrize(
    ("label", "horodate", "value", "expected"),
    [
        ("SMAXSN", "H240210110331", "00986", 986),
        ("SMAXSN-1", "E230815183012", "05120", 5120),
        ("SMAXSN2-1", "E230815183012", "01200", 1200),
        ("SMAXIN", "E230815133000", "02960", 2960),
        ("CCASN", "E230815120000", "00412", 412),
        ("CCAIN-1", "e230815113000", "00000", 0),
        ("UMOY1", "H240210121000", "232", 232),
        ("SMAXN", "H240210110331", "00986", 986),  # G1 pilot variant
    ],
)
def test_horodated_numbers(label, horodate, value, expected):
    got = decode_value(label, value, mode=S, horodate=horodate)
    assert isinstance(got, Timed)
    assert got.value == expected
    assert isinstance(got.horodate, Horodate)
    assert got.horodate.raw == horodate


def test_smaxsn_example_time():
    got = decode_value("SMAXSN", "00986", mode=S, horodate="H240210110331")
    assert isinstance(got, Timed)
    assert (got.horodate.at.hour, got.horodate.at.minute) == (11, 3)
    assert got.horodate.at.utcoffset() == timedelta(hours=1)


def test_date_is_its_horodate():
    got = decode_value("DATE", "", mode=S, horodate="E210414082625")
    assert isinstance(got, Horodate)
    assert got.season == "E"
    assert (got.at.year, got.at.month, got.at.day) == (2021, 4, 14)


def test_mobile_peak_with_season_space():
    got = decode_value("DPM1", "00", mode=S, horodate=" 200214060000")
    assert isinstance(got, Timed)
    assert got.value == "00"
    assert got.horodate.season == " "
    assert got.horodate.local.hour == 6


@pytest.mark.parametrize(
    ("label", "value", "horodate"),
    [
        ("SMAXSN", "00986", None),  # horodate missing
        ("SMAXSN", "00986", "X240210110331"),
        ("SMAXSN", "00986", "H241310110331"),  # month 13
        ("SMAXSN", "0986", "H240210110331"),
        ("DATE", "", None),
        ("DATE", "x", "E210414082625"),  # DATE data must be empty
        ("DPM1", "0", " 200214060000"),
        ("DPM1", "AB", " 200214060000"),
        ("FPM3", "00", "  00214060000"),
    ],
)
def test_bad_horodated(label, value, horodate):
    with pytest.raises(DecodeError) as err:
        decode_value(label, value, mode=S, horodate=horodate)
    assert err.value.channel == label


def test_horodate_ignored_on_labels_without_one():
    assert decode_value("EAST", "000001000", mode=S, horodate="H240210110331") == 1000


# ----------------------------------------------------------------- enumerations


@pytest.mark.parametrize(
    ("value", "member", "off_peak", "colour", "fr"),
    [
        ("TH..", TariffPeriod.TH, False, None, "toutes les heures"),
        ("HC..", TariffPeriod.HC, True, None, "heures creuses"),
        ("HP..", TariffPeriod.HP, False, None, "heures pleines"),
        ("HN..", TariffPeriod.HN, False, None, "heures normales"),
        ("PM..", TariffPeriod.PM, False, None, "heures de pointe mobile"),
        ("HCJB", TariffPeriod.HCJB, True, TempoColour.BLUE, "heures creuses jours bleus"),
        ("HCJW", TariffPeriod.HCJW, True, TempoColour.WHITE, "heures creuses jours blancs"),
        ("HCJR", TariffPeriod.HCJR, True, TempoColour.RED, "heures creuses jours rouges"),
        ("HPJB", TariffPeriod.HPJB, False, TempoColour.BLUE, "heures pleines jours bleus"),
        ("HPJW", TariffPeriod.HPJW, False, TempoColour.WHITE, "heures pleines jours blancs"),
        ("HPJR", TariffPeriod.HPJR, False, TempoColour.RED, "heures pleines jours rouges"),
    ],
)
def test_tariff_periods(value, member, off_peak, colour, fr):
    got = decode_value("PTEC", value, mode=H)
    assert got is member
    assert member.off_peak is off_peak
    assert member.tempo_colour is colour
    assert member.name_fr == fr
    assert member.name_en


@pytest.mark.parametrize("value", ["HC", "HC. ", "hc..", "BASE", "HPJX", ""])
def test_unknown_tariff_period(value):
    with pytest.raises(DecodeError):
        decode_value("PTEC", value, mode=H)


@pytest.mark.parametrize(
    ("value", "member", "fr"),
    [
        ("----", TempoColour.UNKNOWN, "inconnue"),
        ("BLEU", TempoColour.BLUE, "bleu"),
        ("BLAN", TempoColour.WHITE, "blanc"),
        ("ROUG", TempoColour.RED, "rouge"),
    ],
)
def test_tempo_colours(value, member, fr):
    assert decode_value("DEMAIN", value, mode=H) is member
    assert member.name_fr == fr
    assert member.name_en


@pytest.mark.parametrize("value", ["BLUE", "ROUGE", "----1", "bleu"])
def test_unknown_colour(value):
    with pytest.raises(DecodeError):
        decode_value("DEMAIN", value, mode=H)


@pytest.mark.parametrize(
    ("value", "kind", "circuit1", "circuit2"),
    [
        ("BASE", TariffOptionKind.BASE, None, None),
        ("HC..", TariffOptionKind.OFF_PEAK, None, None),
        ("EJP.", TariffOptionKind.EJP, None, None),
        # `(` = 0x28 = 0b0101000: bits 4-3 = 01 → A, bits 2-0 = 000 → P0 [inference].
        ("BBR(", TariffOptionKind.TEMPO, "A", "P0"),
        ("BBR2", TariffOptionKind.TEMPO, "B", "P2"),  # 0b0110010
        ("BBR?", TariffOptionKind.TEMPO, "C", "P7"),  # 0b0111111
        ("BBR'", TariffOptionKind.TEMPO, None, "P7"),  # bits 4-3 = 00: no program A/B/C
        ("BBRx", TariffOptionKind.TEMPO, None, None),  # bit 6 set: not the coded form
    ],
)
def test_tariff_options(value, kind, circuit1, circuit2):
    got = decode_value("OPTARIF", value, mode=H)
    assert isinstance(got, TariffOption)
    assert (got.raw, got.kind, got.circuit1_program, got.circuit2_program) == (
        value,
        kind,
        circuit1,
        circuit2,
    )
    assert got.name_fr
    assert got.name_en


@pytest.mark.parametrize("value", ["BAS", "BASE.", "HC.", "EJP ", "TEMPO", "BBR", "BBR()"])
def test_unknown_tariff_option(value):
    with pytest.raises(DecodeError):
        parse_tariff_option(value)
    with pytest.raises(DecodeError):
        decode_value("OPTARIF", value, mode=H)


# ----------------------------------------------------------------- identity


@pytest.mark.parametrize(
    ("value", "constructor", "year", "type_code", "number", "three_phase"),
    [
        ("041776199277", "04", 2017, "76", "199277", True),  # real, reference note §3.2
        ("021861123456", "02", 2018, "61", "123456", False),
        ("032062000001", "03", 2020, "62", "000001", False),
        ("011963999999", "01", 2019, "63", "999999", True),
        ("041964000000", "04", 2019, "64", "000000", False),
        ("041965000000", "04", 2019, "65", "000000", False),
        ("041966000000", "04", 2019, "66", "000000", None),
        ("041967000000", "04", 2019, "67", "000000", False),
        ("041968000000", "04", 2019, "68", "000000", True),
        ("041970000000", "04", 2019, "70", "000000", False),
        ("041971000000", "04", 2019, "71", "000000", True),
        ("041975000000", "04", 2019, "75", "000000", False),
        ("012345678910", "01", 2023, "45", "678910", None),  # unknown type
        ("039822123456", "03", 1998, "22", "123456", None),  # old CBE: year 1998 [inference]
    ],
)
def test_identity(value, constructor, year, type_code, number, three_phase):
    for label, mode in (("ADCO", H), ("ADSC", S)):
        got = decode_value(label, value, mode=mode)
        assert isinstance(got, MeterIdentity)
        assert (got.constructor_code, got.year, got.device_type_code, got.number) == (
            constructor,
            year,
            type_code,
            number,
        )
        assert got.three_phase is three_phase
        assert got.raw == value


def test_identity_names():
    ident = parse_identity("041776199277")
    assert ident.constructor is not None
    assert "Landis" in ident.constructor
    assert ident.device_type is not None
    assert "three-phase" in ident.device_type.description
    assert "triphasé" in ident.device_type.description_fr
    assert parse_identity("991776199277").constructor is None
    assert parse_identity("041799199277").device_type is None


@pytest.mark.parametrize("value", ["04177619927", "0417761992777", "04177619927A", ""])
def test_bad_identity(value):
    with pytest.raises(DecodeError):
        decode_value("ADSC", value, mode=S)


# ----------------------------------------------------------------- STGE


def test_stge_463a0800():
    # teleinfo-nom tri Tempo: LTARF "HC BLANC", NTARF 03, DPM1/FPM1 around the frame date.
    got = decode_value("STGE", "463A0800", mode=S)
    assert isinstance(got, StatusRegister)
    assert got.supplier_index == 3
    assert got.tempo_today is TempoColour.WHITE
    assert got.tempo_tomorrow is TempoColour.BLUE
    assert got.mobile_peak_active is MobilePeak.PM1
    assert got.mobile_peak_notice is MobilePeak.NONE
    assert not got.producer
    assert got.standard_mode
    assert got.tic_mode is S
    assert got.cut_off is CutOffState.CLOSED
    assert got.euridis_output is EuridisOutput.ON_WITH_SECURITY
    assert got.cpl_status is CplStatus.NEW_LOCK


def test_stge_013a0501():
    # openHAB tri producer: LTARF "HP BLEU", NTARF 02.
    got = parse_status_register("013A0501")
    assert got.producer
    assert not got.negative_energy
    assert got.supplier_index == 2
    assert got.tempo_today is TempoColour.BLUE
    assert got.tempo_tomorrow is TempoColour.UNKNOWN
    assert got.dry_contact_open


def test_stge_002a0301():
    # LogisDom producer injecting (SINSTI 01258).
    got = parse_status_register("002A0301")
    assert got.producer
    assert got.negative_energy
    assert got.supplier_index == 1
    assert got.euridis_output is EuridisOutput.ON_WITHOUT_SECURITY


def test_stge_00da0401():
    got = parse_status_register("00DA0401")
    assert got.cpl_status is CplStatus.REGISTERED
    assert got.cpl_synchronised
    assert got.supplier_index == 2


def test_stge_every_field():
    # bit 0 dry contact, 1-3 cut-off = 5, 4 cover, 6 overvoltage, 7 overpower, 8 producer,
    # 9 negative, 10-13 = 9 (index 10), 14-15 = 3 (index 4), 16 clock, 17 standard,
    # 19-20 = 01, 21-22 = 10, 23 sync, 24-25 = 3, 26-27 = 2, 28-29 = 2, 30-31 = 3.
    value = (
        1
        | 5 << 1
        | 1 << 4
        | 1 << 6
        | 1 << 7
        | 1 << 8
        | 1 << 9
        | 9 << 10
        | 3 << 14
        | 1 << 16
        | 1 << 17
        | 1 << 19
        | 2 << 21
        | 1 << 23
        | 3 << 24
        | 2 << 26
        | 2 << 28
        | 3 << 30
    )
    got = parse_status_register(f"{value:08x}")  # lower-case hex accepted
    assert got.value == value
    assert got.dry_contact_open
    assert got.cut_off is CutOffState.OPEN_OVERHEAT_ABOVE_MAX_CURRENT
    assert got.terminal_cover_open
    assert got.overvoltage
    assert got.reference_power_exceeded
    assert got.producer
    assert got.negative_energy
    assert got.supplier_index == 10
    assert got.distributor_index == 4
    assert got.clock_degraded
    assert got.standard_mode
    assert got.euridis_output is EuridisOutput.ON_WITHOUT_SECURITY
    assert got.cpl_status is CplStatus.REGISTERED
    assert got.cpl_synchronised
    assert got.tempo_today is TempoColour.RED
    assert got.tempo_tomorrow is TempoColour.WHITE
    assert got.mobile_peak_notice is MobilePeak.PM2
    assert got.mobile_peak_active is MobilePeak.PM3


def test_stge_all_zero_and_undefined_codes():
    zero = parse_status_register("00000000")
    assert zero.tic_mode is H
    assert zero.supplier_index == 1
    assert zero.distributor_index == 1
    assert not zero.dry_contact_open
    odd = parse_status_register(f"{7 << 1 | 15 << 10 | 2 << 19 | 3 << 21:08X}")
    assert odd.cut_off is CutOffState.UNDEFINED_7
    assert odd.supplier_index is None
    assert odd.euridis_output is EuridisOutput.UNDEFINED_2
    assert odd.cpl_status is CplStatus.UNDEFINED_3


@pytest.mark.parametrize("value", ["463A080", "463A08000", "463A08G0", " 463A080", "0x3A0800"])
def test_bad_stge(value):
    with pytest.raises(DecodeError):
        decode_value("STGE", value, mode=S)


@given(st.integers(0, 2**32 - 1))
def test_stge_fields_rebuild_the_value(value):
    got = parse_status_register(f"{value:08X}")
    colours = list(TempoColour)  # UNKNOWN, BLUE, WHITE, RED = 0..3
    supplier = 15 if got.supplier_index is None else got.supplier_index - 1
    rebuilt = (
        got.dry_contact_open
        | got.cut_off << 1
        | got.terminal_cover_open << 4
        | got.overvoltage << 6
        | got.reference_power_exceeded << 7
        | got.producer << 8
        | got.negative_energy << 9
        | supplier << 10
        | (got.distributor_index - 1) << 14
        | got.clock_degraded << 16
        | got.standard_mode << 17
        | got.euridis_output << 19
        | got.cpl_status << 21
        | got.cpl_synchronised << 23
        | colours.index(got.tempo_today) << 24
        | colours.index(got.tempo_tomorrow) << 26
        | got.mobile_peak_notice << 28
        | got.mobile_peak_active << 30
    )
    unused = 1 << 5 | 1 << 18
    undefined_supplier = (value >> 10 & 15) > 9
    mask = ~unused & (0xFFFFFFFF if not undefined_supplier else ~(15 << 10) & 0xFFFFFFFF)
    assert rebuilt & mask == value & mask


# ----------------------------------------------------------------- RELAIS, PPOT, MOTDETAT


@pytest.mark.parametrize(
    ("value", "closed"),
    [
        ("140", (3, 4, 8)),  # spec example
        ("001", (1,)),  # spec example
        ("000", ()),
        ("255", (1, 2, 3, 4, 5, 6, 7, 8)),
    ],
)
def test_relays(value, closed):
    got = decode_value("RELAIS", value, mode=S)
    assert isinstance(got, Relays)
    assert got.closed_relays == closed
    assert got.dry_contact_closed is (1 in closed)
    assert len(got.closed) == 8


@pytest.mark.parametrize("value", ["256", "999", "14", "0140", "1A0"])
def test_bad_relays(value):
    with pytest.raises(DecodeError):
        decode_value("RELAIS", value, mode=S)


@given(st.integers(0, 255))
def test_relays_round_trip(mask):
    got = decode_value("RELAIS", f"{mask:03d}", mode=S)
    assert isinstance(got, Relays)
    assert sum(on << bit for bit, on in enumerate(got.closed)) == mask


@pytest.mark.parametrize(
    ("value", "absent"),
    [("00", ()), ("02", (1,)), ("0E", (1, 2, 3)), ("0a", (1, 3)), ("F1", ())],
)
def test_potentials(value, absent):
    got = decode_value("PPOT", value, mode=H)
    assert isinstance(got, PotentialPresence)
    assert got.absent_phases == absent
    assert got.all_present is (not absent)


@pytest.mark.parametrize("value", ["0", "000", "0G", "  "])
def test_bad_potentials(value):
    with pytest.raises(DecodeError):
        decode_value("PPOT", value, mode=H)


@pytest.mark.parametrize(("value", "nominal"), [("000000", True), ("400000", False)])
def test_status_word(value, nominal):
    got = decode_value("MOTDETAT", value, mode=H)
    assert got == StatusWord(value)
    assert isinstance(got, StatusWord)
    assert got.nominal is nominal


@pytest.mark.parametrize("value", ["00000", "0000000", "00 000"])
def test_bad_status_word(value):
    with pytest.raises(DecodeError):
        decode_value("MOTDETAT", value, mode=H)


# ----------------------------------------------------------------- day profiles

SPEC_PROFILE = "00004001 06004002 22004001"
FULL_PROFILE = SPEC_PROFILE + " NONUTILE" * 8


def test_day_profile_spec_example():
    assert len(FULL_PROFILE) == 98
    for value in (SPEC_PROFILE, FULL_PROFILE):
        got = decode_value("PJOURF+1", value, mode=S)
        assert isinstance(got, DayProfile)
        assert [(s.start, s.tariff_index) for s in got.slots] == [
            (time(0, 0), 1),
            (time(6, 0), 2),
            (time(22, 0), 1),
        ]
        assert all(s.dry_contact is DryContactAction.TEMPO for s in got.slots)
        assert all(not any(s.virtual_contacts) for s in got.slots)
    assert parse_day_profile(FULL_PROFILE).unused == 8


def test_day_profile_action_bits():
    # 0xC01F: dry contact close (11), virtual contact 1 (bit 4), tariff index 15 = no change.
    # 0x8400: dry contact open (10), virtual contact 7 (bit 10), tariff index 0 = no change.
    # 0x000A: no dry-contact change, index 10.
    got = parse_day_profile("0130C01F 23598400 1200000A")
    first, second, third = got.slots
    assert first.dry_contact is DryContactAction.CLOSE
    assert first.virtual_contacts == (True, False, False, False, False, False, False)
    assert first.tariff_index is None
    assert second.start == time(23, 59)
    assert second.dry_contact is DryContactAction.OPEN
    assert second.virtual_contacts[6]
    assert second.tariff_index is None
    assert third.dry_contact is DryContactAction.NO_CHANGE
    assert third.tariff_index == 10


def test_ppointe_all_unused():
    got = decode_value("PPOINTE", " ".join(["NONUTILE"] * 11), mode=S)
    assert isinstance(got, DayProfile)
    assert got.slots == ()
    assert got.unused == 11


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "2400 4001",
        "24004001",  # hour 24
        "06604001",  # minute 60
        "0600400G",
        "060040011",
        "NONUTILI",
        " ".join(["NONUTILE"] * 12),
    ],
)
def test_bad_day_profile(value):
    with pytest.raises(DecodeError):
        decode_value("PJOURF+1", value, mode=S)


# ----------------------------------------------------------------- texts


@pytest.mark.parametrize(
    ("label", "value", "display"),
    [
        ("MSG1", "PAS DE          MESSAGE         ", "PAS DE MESSAGE"),
        ("MSG1", "     PAS DE          MESSAGE    ", "PAS DE MESSAGE"),
        ("NGTF", "   PRODUCTEUR   ", "PRODUCTEUR"),
        ("NGTF", "PRODUCTEUR", "PRODUCTEUR"),  # openHAB fixture, trimmed
        ("LTARF", "    HC BLANC    ", "HC BLANC"),
        ("LTARF", "     HP BLEU    ", "HP BLEU"),
        ("MSG2", "                ", ""),
        ("PRM", "01234567890123", "01234567890123"),
    ],
)
def test_texts_keep_raw(label, value, display):
    got = decode_value(label, value, mode=S)
    assert isinstance(got, TicText)
    assert got.raw == value
    assert got.text == display
    assert str(got) == display


def test_hhphc_text():
    got = decode_value("HHPHC", "A", mode=H)
    assert got == TicText("A")


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("MSG1", "X" * 33),
        ("MSG2", "X" * 17),
        ("LTARF", "HC BLANC\x7f"),
        ("NGTF", "caf\u00e9"),
        ("PRM", "0123456789012"),
        ("PRM", "0123456789012A"),
        ("HHPHC", "AB"),
    ],
)
def test_bad_texts(label, value):
    with pytest.raises(DecodeError):
        decode_value(label, value, mode=S if label != "HHPHC" else H)


# ----------------------------------------------------------------- unknown labels, modes


def test_unknown_labels_return_raw_text():
    assert decode_value("FOO", "whatever\x01", mode=H) == "whatever\x01"
    assert decode_value("PAPP", "00750", mode=S) == "00750"  # a historique label in standard
    assert decode_value("EAST", "000000001", mode=H) == "000000001"


# ----------------------------------------------------------------- properties

ALL = [*HISTORIQUE_LABELS.values(), *STANDARD_LABELS.values()]
_text = st.text(st.characters(codec="utf-8"), max_size=110) | st.text(
    "0123456789ABCDEFabcdef .-+HE", max_size=110
)
_horodates = st.none() | st.text(max_size=15) | st.from_regex(r"[ HEhe][0-9]{12}", fullmatch=True)


@pytest.mark.parametrize("info", ALL, ids=lambda i: f"{i.mode}-{i.label}")
@given(value=_text, horodate=_horodates)
def test_decode_raises_only_decode_error(info, value, horodate):
    try:
        decode_value(info.label, value, mode=info.mode, horodate=horodate)
    except DecodeError as exc:
        assert exc.channel == info.label


NUMERIC = [
    i
    for i in ALL
    if i.kind in (Kind.INDEX, Kind.COUNTER, Kind.CURRENT, Kind.VOLTAGE, Kind.POWER, Kind.INTEGER)
]


@pytest.mark.parametrize("info", NUMERIC, ids=lambda i: f"{i.mode}-{i.label}")
@given(data=st.data())
def test_numbers_round_trip(info, data):
    assert info.width is not None
    number = data.draw(st.integers(0, 10**info.width - 1))
    horodate = "H240210110331" if info.horodated else None
    got = decode_value(info.label, f"{number:0{info.width}d}", mode=info.mode, horodate=horodate)
    assert (got.value if isinstance(got, Timed) else got) == number
