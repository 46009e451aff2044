from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.tic.decoder import decode
from wesh.tic.encoder import EOT, ETX, STX, encode_frame
from wesh.tic.horodate import PARIS, parse_horodate
from wesh.tic.model import Frame, Mode
from wesh.tic.simulator import (
    MeterProfile,
    OverloadEpisode,
    Tariff,
    TempoColour,
    TicMeterSimulator,
    add_noise,
    line_seconds,
)

WINTER_EVENING = datetime(2025, 1, 15, 21, 50, tzinfo=PARIS)
SUMMER_NOON = datetime(2025, 6, 15, 12, 0, tzinfo=PARIS)


def labels(frame: Frame) -> list[str]:
    return [g.label for g in frame.groups]


def stge(frame: Frame) -> int:
    return int(frame.values()["STGE"], 16)


# ---------------------------------------------------------------- determinism and wire validity


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": Mode.HISTORIQUE, "tariff": "HC"},
        {"mode": Mode.HISTORIQUE, "phases": 3, "tariff": "TEMPO"},
        {"mode": Mode.STANDARD, "tariff": "BASE"},
        {"mode": Mode.STANDARD, "phases": 3, "producer": True, "tariff": "HC"},
    ],
)
def test_same_seed_same_bytes_and_every_group_valid(kwargs: dict[str, object]) -> None:
    def stream(seed: int) -> bytes:
        sim = TicMeterSimulator(start=WINTER_EVENING, seed=seed, **kwargs)  # type: ignore[arg-type]
        return b"".join(tf.data for tf in sim.frames(count=30))

    first = stream(7)
    assert first == stream(7)
    assert first != stream(8)
    frames = decode(first)
    assert len(frames) == 30
    assert all(f.complete and not f.errors for f in frames)
    assert all(g.valid for f in frames for g in f.groups)
    assert {f.mode for f in frames} == {kwargs["mode"]}


def test_frames_are_paced_at_the_line_rate() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=1, mode=Mode.HISTORIQUE)
    timed = list(sim.frames(count=5))
    for before, after in itertools.pairwise(timed):
        expected = line_seconds(len(before.data), Mode.HISTORIQUE) + 0.025
        assert (after.at - before.at).total_seconds() == pytest.approx(expected, abs=1e-5)
    # A historique frame of ~170 bytes takes about 1.4 s at 1200 baud.
    assert 1.0 < (timed[1].at - timed[0].at).total_seconds() < 3.0
    assert timed[0].data[0] == STX and timed[0].data[-1] == ETX


def test_until_stops_the_stream() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=1, mode=Mode.STANDARD)
    end = WINTER_EVENING + timedelta(seconds=10)
    timed = list(sim.frames(until=end))
    assert timed and all(tf.at < end for tf in timed)
    assert len(timed) >= 9  # about one standard frame a second


def test_time_cannot_go_back_and_must_be_aware() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=1)
    sim.advance_to(WINTER_EVENING + timedelta(minutes=1))
    with pytest.raises(UsageError):
        sim.frame_at(WINTER_EVENING)
    with pytest.raises(UsageError):
        sim.advance_to(datetime(2025, 1, 16))  # noqa: DTZ001 - the point of the test
    with pytest.raises(UsageError):
        TicMeterSimulator(start=datetime(2025, 1, 16), seed=1)  # noqa: DTZ001


@pytest.mark.parametrize(
    "kwargs",
    [{"phases": 2}, {"tariff": "EJP"}, {"identity": "12"}, {"subscribed_kva": 99}],
)
def test_bad_profiles_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        TicMeterSimulator(start=WINTER_EVENING, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- historique


def test_historique_mono_hc_label_order_and_values() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=3, mode=Mode.HISTORIQUE, tariff=Tariff.HC)
    frame = sim.frame_at(WINTER_EVENING)
    assert labels(frame) == [
        "ADCO", "OPTARIF", "ISOUSC", "HCHC", "HCHP", "PTEC", "IINST", "IMAX", "PAPP",
        "HHPHC", "MOTDETAT",
    ]  # fmt: skip
    values = frame.values()
    assert values["OPTARIF"] == "HC.."
    assert values["ISOUSC"] == "30"  # 6 kVA / 200 V
    assert values["PTEC"] == "HP.."
    papp = int(values["PAPP"])
    assert papp % 10 == 0
    assert papp == sim.power_va
    assert abs(int(values["IINST"]) - papp / 230) <= 1.5
    assert int(values["HCHC"]) == sim.indexes_wh["HCHC"]
    assert sim.tariff_period == "HP"
    after = sim.frame_at(datetime(2025, 1, 15, 22, 0, 30, tzinfo=PARIS))
    assert after.values()["PTEC"] == "HC.."
    assert sim.tariff_period == "HC"


def test_historique_tri_tempo_long_frame_order() -> None:
    sim = TicMeterSimulator(
        start=WINTER_EVENING, seed=3, mode=Mode.HISTORIQUE, phases=3, tariff=Tariff.TEMPO
    )
    frame = sim.frame_at(WINTER_EVENING)
    assert labels(frame) == [
        "ADCO", "OPTARIF", "ISOUSC", "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR",
        "BBRHPJR", "PTEC", "DEMAIN", "IINST1", "IINST2", "IINST3", "IMAX1", "IMAX2", "IMAX3",
        "PMAX", "PAPP", "HHPHC", "MOTDETAT", "PPOT",
    ]  # fmt: skip
    values = frame.values()
    assert values["ISOUSC"] == "20"  # 12 kVA / 3 / 200 V
    assert values["OPTARIF"] == "BBR("
    colour = sim.tempo_colour
    assert colour is not None
    assert values["PTEC"] == "HPJ" + {"BLEU": "B", "BLANC": "W", "ROUGE": "R"}[colour]
    assert values["DEMAIN"] in {"BLEU", "BLAN", "ROUG"}  # announced after 11:00
    currents = [int(values[f"IINST{i}"]) for i in (1, 2, 3)]
    assert list(sim.currents_a) == currents
    assert int(values["PAPP"]) % 10 == 0
    morning = sim.frame_at(datetime(2025, 1, 16, 8, 0, tzinfo=PARIS))
    assert morning.values()["DEMAIN"] == "----"


def test_historique_mono_overload_sends_adps() -> None:
    start = WINTER_EVENING
    episode = OverloadEpisode(start + timedelta(minutes=1), timedelta(minutes=2), 1, 9000)
    sim = TicMeterSimulator(start=start, seed=1, overloads=(episode,))
    assert "ADPS" not in labels(sim.frame_at(start))
    frame = sim.frame_at(start + timedelta(minutes=2))
    assert sim.overload
    assert labels(frame)[labels(frame).index("IINST") + 1] == "ADPS"
    assert int(frame.values()["ADPS"]) > 30


def test_three_phase_overload_cycles_20_short_frames_and_1_long() -> None:
    start = WINTER_EVENING
    episode = OverloadEpisode(
        start + timedelta(minutes=1), timedelta(minutes=3), phase=2, extra_power_va=7000
    )
    sim = TicMeterSimulator(
        start=start, seed=5, mode=Mode.HISTORIQUE, phases=3, overloads=(episode,)
    )
    timed = list(sim.frames(until=start + timedelta(minutes=7)))
    kinds = ["long" if "OPTARIF" in labels(tf.frame) else "short" for tf in timed]
    first_short = kinds.index("short")
    assert timed[first_short].at >= episode.start
    # The long frame being sent when the overload starts is cut by EOT...
    data = timed[first_short].data
    assert data.index(EOT) < data.rindex(STX)
    assert decode(data) == [timed[first_short].frame]
    # ...then 20 short frames, 1 long, 20 short...
    assert kinds[first_short : first_short + 42] == (["short"] * 20 + ["long"]) * 2
    short = timed[first_short].frame
    assert labels(short) == ["ADIR2", "ADCO", "IINST1", "IINST2", "IINST3"]
    assert int(short.values()["ADIR2"]) > 20
    # Back to long frames only, one minute after the overload ends.
    end = episode.start + episode.duration
    last_short = max(i for i, k in enumerate(kinds) if k == "short")
    hold_end = end + timedelta(minutes=1)
    assert hold_end - timedelta(seconds=3) <= timed[last_short].at <= hold_end
    assert labels(timed[last_short].frame) == ["ADCO", "IINST1", "IINST2", "IINST3"]
    assert set(kinds[last_short + 1 :]) == {"long"}
    assert len(kinds) - last_short > 30


# ---------------------------------------------------------------- standard

STANDARD_MONO = [
    "ADSC", "VTIC", "DATE", "NGTF", "LTARF", "EAST",
    *[f"EASF{i:02d}" for i in range(1, 11)], *[f"EASD{i:02d}" for i in range(1, 5)],
    "IRMS1", "URMS1", "PREF", "PCOUP", "SINSTS", "SMAXSN", "SMAXSN-1",
]  # fmt: skip
STANDARD_TAIL = ["STGE", "MSG1", "PRM", "RELAIS", "NTARF", "NJOURF", "NJOURF+1", "PJOURF+1"]


def test_standard_mono_labels_and_consistency() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=2, mode=Mode.STANDARD, tariff="HC")
    frame = sim.frame_at(WINTER_EVENING + timedelta(minutes=41))
    got = labels(frame)
    assert got[: len(STANDARD_MONO)] == STANDARD_MONO
    assert got[-len(STANDARD_TAIL) :] == STANDARD_TAIL
    assert {"CCASN", "UMOY1"} <= set(got)  # a complete load-curve period has passed
    assert not {"SINSTS1", "IRMS2", "EAIT", "SINSTI"} & set(got)
    v = frame.values()
    assert int(v["EAST"]) == sum(int(v[f"EASF{i:02d}"]) for i in range(1, 11))
    assert int(v["EAST"]) == sum(int(v[f"EASD{i:02d}"]) for i in range(1, 5))
    assert v["NTARF"] == "01" and v["LTARF"].strip() == "HEURE  CREUSE"
    assert v["RELAIS"] == "001"  # the water-heater contact is closed in HC
    status = stge(frame)
    assert status >> 17 & 1 == 1  # standard mode
    assert (status >> 10 & 0xF) + 1 == int(v["NTARF"])
    assert status & 1 == 0  # dry contact closed
    assert len(v["PJOURF+1"]) == 98 and len(v["MSG1"]) == 32 and len(v["NGTF"]) == 16
    horodated = {g.label: g.horodate for g in frame.groups if g.horodate}
    assert set(horodated) >= {"DATE", "SMAXSN", "SMAXSN-1", "CCASN", "UMOY1"}
    date = parse_horodate(horodated["DATE"])
    assert date.at == sim.now.replace(microsecond=0)
    assert date.season == "H"
    assert frame.values()["DATE"] == ""


def test_standard_three_phase_producer_labels() -> None:
    sim = TicMeterSimulator(
        start=SUMMER_NOON, seed=4, mode=Mode.STANDARD, phases=3, producer=True, tariff="BASE"
    )
    frame = sim.frame_at(SUMMER_NOON + timedelta(minutes=35))
    got = labels(frame)
    for label in [
        "EAIT", "ERQ1", "ERQ4", "IRMS3", "URMS3", "SINSTS1", "SINSTS3", "SMAXSN1", "SMAXSN3",
        "SMAXSN1-1", "SMAXSN3-1", "SINSTI", "SMAXIN", "SMAXIN-1", "CCASN", "CCAIN", "UMOY3",
    ]:  # fmt: skip
        assert label in got
    assert got.index("EASD04") < got.index("EAIT") < got.index("ERQ1") < got.index("IRMS1")
    assert got.index("SMAXSN-1") < got.index("SINSTI") < got.index("CCASN") < got.index("STGE")
    assert stge(frame) >> 8 & 1 == 1
    assert parse_horodate(frame.groups[got.index("DATE")].horodate or "").season == "E"


def test_producer_injects_at_summer_noon() -> None:
    sim = TicMeterSimulator(start=SUMMER_NOON, seed=4, mode=Mode.STANDARD, producer=True)
    before = sim.injected_wh
    injecting = []
    for minute in range(1, 121):
        frame = sim.frame_at(SUMMER_NOON + timedelta(minutes=minute))
        injecting.append(int(frame.values()["SINSTI"]) > 0)
        if injecting[-1]:
            assert stge(frame) >> 9 & 1 == 1  # negative energy direction
    assert any(injecting)
    assert sim.injected_wh > before
    night = sim.frame_at(datetime(2025, 6, 16, 2, 0, tzinfo=PARIS))
    assert night.values()["SINSTI"] == "00000"


def test_tempo_status_and_colours() -> None:
    seen: set[TempoColour] = set()
    for half_days in range(120):
        # Colours depend only on the seed and the date: a fresh meter per instant is enough.
        at = WINTER_EVENING + timedelta(hours=12 * half_days)
        sim = TicMeterSimulator(start=at, seed=9, mode=Mode.STANDARD, tariff="TEMPO")
        frame = sim.frame_at(at)
        colour = sim.tempo_colour
        assert colour is not None
        seen.add(colour)
        status = stge(frame)
        assert status >> 24 & 3 == {"BLEU": 1, "BLANC": 2, "ROUGE": 3}[colour]
        ntarf = int(frame.values()["NTARF"])
        assert (status >> 10 & 0xF) + 1 == ntarf
        first = {"BLEU": 1, "BLANC": 3, "ROUGE": 5}[colour]
        assert ntarf in (first, first + 1)
        assert colour in frame.values()["LTARF"]
        local = at.astimezone(PARIS)
        tempo_day = local.date() if local.hour >= 6 else local.date() - timedelta(days=1)
        if tempo_day.weekday() == 6:
            assert colour is TempoColour.BLEU
        if colour is TempoColour.ROUGE:
            assert tempo_day.weekday() < 5 and tempo_day.month in (11, 12, 1, 2, 3)
    assert seen == set(TempoColour)


# ---------------------------------------------------------------- energy


def test_indexes_integrate_the_power() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=11, mode=Mode.STANDARD, tariff="HC")
    start_wh = sim.total_index_wh
    energy_wh = 0.0
    at = WINTER_EVENING
    for _ in range(3600):
        power = sim.active_power_w
        at += timedelta(seconds=1)
        sim.advance_to(at)
        energy_wh += (power + sim.active_power_w) / 2 / 3600
    assert energy_wh > 50
    assert sim.total_index_wh - start_wh == pytest.approx(energy_wh, rel=0.03, abs=2)


def test_a_winter_day_is_realistic() -> None:
    sim = TicMeterSimulator(
        start=datetime(2025, 1, 15, 0, 0, tzinfo=PARIS), seed=12, mode=Mode.HISTORIQUE, tariff="HC"
    )
    start = dict(sim.indexes_wh)
    powers: dict[int, list[int]] = {}
    for minute in range(0, 24 * 60, 5):
        sim.advance_to(datetime(2025, 1, 15, 0, 0, tzinfo=PARIS) + timedelta(minutes=minute))
        powers.setdefault(minute // 60, []).append(sim.power_va)
    day_wh = {k: sim.indexes_wh[k] - start[k] for k in start}
    assert 5_000 < sum(day_wh.values()) < 60_000
    assert day_wh["HCHC"] > 0 and day_wh["HCHP"] > 0
    assert max(powers[19] + powers[20]) > 1500  # cooking
    assert min(powers[3] + powers[4]) < 1500  # night standby
    assert max(max(p) for p in powers.values()) < 6000 * 1.2


def test_day_roll_moves_today_max_to_yesterday() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=3, mode=Mode.STANDARD)
    evening = sim.frame_at(datetime(2025, 1, 15, 23, 59, 50, tzinfo=PARIS))
    today_max = evening.values()["SMAXSN"]
    today_at = next(g.horodate for g in evening.groups if g.label == "SMAXSN")
    after = sim.frame_at(datetime(2025, 1, 16, 0, 0, 10, tzinfo=PARIS))
    assert after.values()["SMAXSN-1"] == today_max
    assert next(g.horodate for g in after.groups if g.label == "SMAXSN-1") == today_at


@given(
    seed=st.integers(0, 2**32),
    mode=st.sampled_from(Mode),
    phases=st.sampled_from([1, 3]),
    tariff=st.sampled_from(Tariff),
    producer=st.booleans(),
    steps=st.lists(st.integers(1, 3 * 3600), min_size=1, max_size=5),
)
def test_registers_never_decrease_and_stay_consistent(
    seed: int, mode: Mode, phases: int, tariff: Tariff, producer: bool, steps: list[int]
) -> None:
    profile = MeterProfile(mode=mode, phases=phases, tariff=tariff, producer=producer)
    # Spans the spring DST change; arithmetic in UTC (Paris wall-clock sums are not monotonic).
    start = datetime(2025, 3, 30, 0, 0, tzinfo=PARIS).astimezone(UTC)
    sim = TicMeterSimulator(start=start, seed=seed, profile=profile)
    at = start
    previous = (sim.supplier_indexes_wh, sim.distributor_indexes_wh, sim.injected_wh)
    for step in steps:
        at += timedelta(seconds=step)
        frame = sim.frame_at(at)
        now = (sim.supplier_indexes_wh, sim.distributor_indexes_wh, sim.injected_wh)
        assert all(b >= a for a, b in zip(previous[0], now[0], strict=True))
        assert all(b >= a for a, b in zip(previous[1], now[1], strict=True))
        assert now[2] >= previous[2]
        assert sum(now[0]) == sum(now[1]) == sim.total_index_wh
        assert sim.power_va % 10 == 0
        assert all(g.valid for g in frame.groups)
        assert decode(encode_frame(frame)) == [frame]
        previous = now


def test_state_properties_for_reuse() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=1, mode=Mode.HISTORIQUE, phases=3)
    assert sim.now == WINTER_EVENING.astimezone(UTC)
    assert len(sim.identity) == 12 and sim.identity[4:6] == "63"
    assert len(sim.prm) == 14
    assert list(sim.indexes_wh) == ["BASE"]
    assert sim.tariff_period == "TH"
    assert sim.tariff_index == 1
    assert len(sim.currents_a) == len(sim.voltages_v) == len(sim.phase_powers_va) == 3
    assert all(200 < v < 260 for v in sim.voltages_v)
    assert sim.profile.isousc_a == 20
    standard = TicMeterSimulator(start=WINTER_EVENING, seed=1, mode=Mode.STANDARD)
    assert next(iter(standard.indexes_wh)) == "EASF01"
    assert len(standard.indexes_wh) == 10


# ---------------------------------------------------------------- noise


def test_noise_zero_rate_is_identity_and_rate_is_checked() -> None:
    data = bytes(range(128))
    assert add_noise(data, rate=0, rng=random.Random(1)) == data
    with pytest.raises(UsageError):
        add_noise(data, rate=1.5, rng=random.Random(1))


def test_noise_is_seeded_and_the_decoder_survives_it() -> None:
    sim = TicMeterSimulator(start=WINTER_EVENING, seed=1, mode=Mode.HISTORIQUE, tariff="HC")
    clean = b"".join(tf.data for tf in sim.frames(count=200))
    noisy = add_noise(clean, rate=0.002, rng=random.Random(3))
    assert noisy == add_noise(clean, rate=0.002, rng=random.Random(3))
    assert noisy != clean
    frames = decode(noisy)
    good = [f for f in frames if f.complete and not f.errors]
    bad = [f for f in frames if f.errors or not all(g.valid for g in f.groups)]
    assert 100 < len(good) < 200
    assert bad


@given(data=st.binary(max_size=300), seed=st.integers(0, 1000), rate=st.floats(0, 1))
def test_noise_only_adds_known_faults(data: bytes, seed: int, rate: float) -> None:
    noisy = add_noise(data, rate=rate, rng=random.Random(seed))
    # Faults drop at most the CR/LF bytes and add at most 8 bytes per original byte.
    assert len(noisy) >= len(data) - data.count(b"\r") - data.count(b"\n")
    assert len(noisy) <= 9 * len(data)
