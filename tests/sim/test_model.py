"""Pure-model tests of the WES simulator: determinism, counters, tariffs, heating, events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from wesh.errors import UsageError
from wesh.sim.box import SimulatedBox, make_identity
from wesh.sim.clock import CALENDAR, PARIS, ManualClock, SimClock
from wesh.sim.consumption import SLOT_S, DwellingModel, water_plan
from wesh.sim.model import BoxKind, Firmware, Hardware
from wesh.sim.weather import OutdoorClimate

JANUARY = datetime(2025, 1, 15, 10, 0, tzinfo=UTC).timestamp()
JULY = datetime(2025, 7, 15, 10, 0, tzinfo=UTC).timestamp()


def _box(index: int = 1, seed: int = 7, start: float = JANUARY) -> SimulatedBox:
    return SimulatedBox(make_identity(index, seed=seed), start=start)


def _counters(box: SimulatedBox) -> list[tuple[int, int]]:
    return [(c.index_pulses, c.pulses_today) for c in box.state().counters]


# -- identity and layout ------------------------------------------------------------------


def test_layout_puts_a_common_box_first_in_each_building() -> None:
    kinds = [make_identity(i, flats=40).kind for i in range(83)]
    assert kinds[0] is BoxKind.COMMON
    assert kinds[41] is BoxKind.COMMON
    assert kinds[82] is BoxKind.COMMON
    assert kinds.count(BoxKind.COMMON) == 3
    assert make_identity(41).building == 1
    assert make_identity(42).name == "B002-L01"


def test_identities_are_unique_across_the_reference_estate() -> None:
    ids = [make_identity(i, seed=3) for i in range(4100)]
    assert len({i.mac for i in ids}) == 4100
    assert len({i.adco for i in ids}) == 4100
    assert all(len(i.mac) == 12 and int(i.mac, 16) >= 0 for i in ids)
    assert all(len(i.adco) == 12 and i.adco.isdigit() for i in ids)


def test_identity_depends_on_seed() -> None:
    assert make_identity(5, seed=1).mac != make_identity(5, seed=2).mac


def test_bad_identity_arguments() -> None:
    with pytest.raises(UsageError):
        make_identity(-1)
    with pytest.raises(UsageError):
        make_identity(0, flats=0)


# -- clocks -------------------------------------------------------------------------------


def test_sim_clock_runs_at_its_speed() -> None:
    real = [100.0]
    start = datetime(2025, 3, 1, tzinfo=UTC)
    clock = SimClock(start, speed=60, monotonic=lambda: real[0])
    assert clock.now() == start
    real[0] += 2.5
    assert clock.now() == start + timedelta(minutes=2.5)
    with pytest.raises(UsageError):
        SimClock(start, speed=0)
    with pytest.raises(UsageError):
        SimClock(datetime(2025, 3, 1), speed=1)  # noqa: DTZ001 - the point of the test


def test_manual_clock_never_goes_back() -> None:
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    clock.advance(30)
    assert clock.timestamp() == datetime(2025, 3, 1, 0, 0, 30, tzinfo=UTC).timestamp()
    with pytest.raises(UsageError):
        clock.advance(-1)
    with pytest.raises(UsageError):
        clock.set(datetime(2025, 2, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "utc",
    [
        datetime(2025, 3, 30, 0, 59, tzinfo=UTC),  # spring forward at 01:00 UTC
        datetime(2025, 3, 30, 1, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 0, 59, tzinfo=UTC),  # fall back at 01:00 UTC
        datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 23, 30, tzinfo=UTC),
    ],
)
def test_paris_calendar_matches_zoneinfo(utc: datetime) -> None:
    local = utc.astimezone(PARIS)
    ts = utc.timestamp()
    assert CALENDAR.hour(ts) == pytest.approx(local.hour + local.minute / 60)
    epoch_day = (local.date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    assert CALENDAR.day(ts) == epoch_day


# -- determinism --------------------------------------------------------------------------


def test_same_seed_same_state() -> None:
    a, b = _box(seed=11), _box(seed=11)
    for box in (a, b):
        box.advance_to(JANUARY + 86_400 + 123)
    assert a.state() == b.state()


def test_other_seed_other_state() -> None:
    a, b = _box(seed=11), _box(seed=12)
    for box in (a, b):
        box.advance_to(JANUARY + 86_400)
    assert _counters(a) != _counters(b)


def test_counters_do_not_depend_on_the_steps_taken() -> None:
    one, many = _box(index=3), _box(index=3)
    end = JANUARY + 2 * 86_400 + 17
    one.advance_to(end)
    rng = random.Random(5)
    t = JANUARY
    while t < end:
        t = min(end, t + rng.uniform(1, 4000))
        many.advance_to(t)
    assert _counters(one) == _counters(many)
    assert one.state().probes == many.state().probes


# -- counters -----------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_counters_and_indexes_only_grow(index: int) -> None:
    box = _box(index=index)
    previous = box.state()
    rng = random.Random(index)
    t = JANUARY
    for _ in range(200):
        t += rng.uniform(60, 1800)
        box.advance_to(t)
        state = box.state()
        for old, new in zip(previous.counters, state.counters, strict=True):
            assert new.index_pulses >= old.index_pulses
        for old_c, new_c in zip(previous.clamps, state.clamps, strict=True):
            assert new_c.index_wh >= old_c.index_wh
        old_r, new_r = previous.tics[0].reading, state.tics[0].reading
        assert old_r is not None and new_r is not None
        for label, wh in new_r.indexes_wh.items():
            assert wh >= old_r.indexes_wh[label]
        previous = state


def test_pulses_today_restart_at_local_midnight() -> None:
    start = datetime(2025, 1, 15, 22, 0, tzinfo=PARIS).timestamp()
    box = _box(start=start)
    box.advance_to(start + 3600 * 1.99)  # 23:59
    before = box.state().counters[0]
    box.advance_to(start + 3600 * 2 + 60)  # 00:01
    after = box.state().counters[0]
    assert before.pulses_today > 0
    assert after.pulses_today <= after.index_pulses - before.index_pulses
    assert after.pulses_yesterday >= before.pulses_today


def test_dwelling_draws_water_and_heat_in_winter() -> None:
    box = _box()
    start = box.state()
    box.advance_to(JANUARY + 86_400)
    end = box.state()
    cold, hot, heat, unused = (
        e.index_pulses - s.index_pulses for s, e in zip(start.counters, end.counters, strict=True)
    )
    assert unused == 0
    assert 30 <= cold <= 1500  # litres per day
    assert 20 <= hot <= 1000
    assert heat > 1000  # Wh per day in January
    assert [c.config.unit for c in end.counters[:3]] == ["l", "l", "Wh"]


def test_common_area_burns_gas_and_runs_clamps() -> None:
    box = _box(index=0)
    start = box.state()
    box.advance_to(JANUARY + 86_400)
    end = box.state()
    gas = end.counters[0].index_pulses - start.counters[0].index_pulses
    assert gas * 10 / 1000 > 20  # m3 per day for a 40-flat building in January
    lift, fans = end.clamps[0], end.clamps[1]
    assert lift.enabled and fans.enabled and not end.clamps[2].enabled
    assert fans.index_wh - start.clamps[1].index_wh > 5000
    assert len(end.probes) == 3
    assert end.tics[0].reading is not None and end.tics[0].reading.phases == 3
    assert end.voltage_v == 230


# -- tariff periods -----------------------------------------------------------------------


def test_hc_hp_periods_follow_paris_time() -> None:
    noon = datetime(2025, 1, 15, 12, 0, tzinfo=PARIS).timestamp()
    box = _box(start=noon)
    box.advance_to(noon + 60)
    reading = box.state().tics[0].reading
    assert reading is not None and reading.period == "HP.."
    hc_before = reading.indexes_wh["HCHC"]
    hp_before = reading.indexes_wh["HCHP"]
    box.advance_to(noon + 9 * 3600)  # 21:00: still HP, HC index untouched
    reading = box.state().tics[0].reading
    assert reading is not None
    assert reading.indexes_wh["HCHC"] == hc_before
    assert reading.indexes_wh["HCHP"] > hp_before
    box.advance_to(noon + 11 * 3600)  # 23:00: HC
    reading = box.state().tics[0].reading
    assert reading is not None and reading.period == "HC.."
    hp_night = reading.indexes_wh["HCHP"]
    box.advance_to(noon + 17 * 3600)  # 05:00 next day: still HC
    reading = box.state().tics[0].reading
    assert reading is not None
    assert reading.indexes_wh["HCHP"] == hp_night
    assert reading.indexes_wh["HCHC"] > hc_before


# -- heating and indoor climate ----------------------------------------------------------


class _ConstantClimate(OutdoorClimate):
    def __init__(self, celsius: float) -> None:
        super().__init__(seed=0, building=0)
        self.celsius = celsius

    def temperature_c(self, ts: float) -> float:
        return self.celsius

    def daily_mean_c(self, day: int) -> float:
        return self.celsius


def _heat_over_a_day(celsius: float) -> tuple[float, float]:
    model = DwellingModel(seed=1, box=1, climate=_ConstantClimate(celsius), start=JANUARY)
    first = int(JANUARY) // SLOT_S
    energy_wh = 0.0
    for slot in range(first, first + 1440):
        rates = model.rates(slot)
        energy_wh += rates.heat_w / 60
        model.end_slot(slot, rates)
    return energy_wh, model.probes()[0]


def test_heating_follows_outdoor_temperature() -> None:
    freezing, indoor_freezing = _heat_over_a_day(-5.0)
    cool, indoor_cool = _heat_over_a_day(5.0)
    mild, _ = _heat_over_a_day(12.0)
    summer, indoor_summer = _heat_over_a_day(24.0)
    assert freezing > cool > mild > 0
    assert summer == 0.0
    # the thermostat holds the flat near its setpoint whatever the cold
    assert 17.0 < indoor_freezing < 22.5
    assert 17.0 < indoor_cool < 22.5
    assert indoor_summer > 24.0


def test_showers_raise_humidity() -> None:
    model = DwellingModel(seed=2, box=4, climate=_ConstantClimate(5.0), start=JANUARY)
    first = int(JANUARY) // SLOT_S
    rises = []
    for slot in range(first, first + 2 * 1440):
        before = model.humidity_pct
        rates = model.rates(slot)
        model.end_slot(slot, rates)
        if rates.shower:
            rises.append(model.humidity_pct - before)
    assert rises
    assert max(rises) > 3.0


def test_water_plan_is_deterministic_and_plausible() -> None:
    plan = water_plan(seed=1, box=2, day=20_000, occupants=3)
    assert plan == water_plan(seed=1, box=2, day=20_000, occupants=3)
    assert plan != water_plan(seed=1, box=2, day=20_001, occupants=3)
    assert all(0 <= d.start_min < 1440 and d.minutes >= 1 for d in plan)
    litres = sum((d.cold_ml_min + d.hot_ml_min) * d.minutes for d in plan) / 1000
    assert 100 < litres < 1200


def test_outdoor_temperature_has_seasons_and_days() -> None:
    climate = OutdoorClimate(seed=1, building=0)
    january = [climate.temperature_c(JANUARY + h * 3600) for h in range(24 * 30)]
    july = [climate.temperature_c(JULY + h * 3600) for h in range(24 * 30)]
    assert sum(july) / len(july) - sum(january) / len(january) > 10
    afternoon = datetime(2025, 7, 15, 15, 0, tzinfo=PARIS).timestamp()
    night = datetime(2025, 7, 15, 4, 0, tzinfo=PARIS).timestamp()
    assert climate.temperature_c(afternoon) > climate.temperature_c(night)


# -- events -------------------------------------------------------------------------------


def test_counter_reset_restarts_from_zero_then_counts() -> None:
    box = _box()
    box.advance_to(JANUARY + 3600)
    box.reset_counter(1)
    state = box.state()
    assert state.counters[0].index_pulses == 0
    assert state.counters[1].index_pulses > 0
    box.advance_to(JANUARY + 86_400)
    assert box.state().counters[0].index_pulses > 0
    box.reset_counter()
    assert all(c.index_pulses == 0 for c in box.state().counters)
    with pytest.raises(UsageError):
        box.reset_counter(7)


def test_meter_replacement_gives_new_adco_and_fresh_indexes() -> None:
    box = _box()
    box.advance_to(JANUARY + 600)
    old = box.state().tics[0].reading
    adco = box.replace_meter()
    new = box.state().tics[0].reading
    assert old is not None and new is not None
    assert new.adco == adco != old.adco
    assert new.total_wh == 0
    box.advance_to(JANUARY + 86_400)
    later = box.state().tics[0].reading
    assert later is not None and later.adco == adco and later.total_wh > 0


@pytest.mark.parametrize("keep", [True, False])
def test_reboot_keeps_or_loses_counters(keep: bool) -> None:
    box = _box(index=0)
    box.advance_to(JANUARY + 3600)
    box.set_relay(1, True)
    box.set_switch(3, True)
    before = box.state()
    box.reboot(keep_counters=keep)
    after = box.state()
    assert after.relays == (False, False) and not any(after.switches)
    assert after.booted_at == after.sim_time
    if keep:
        assert after.counters == before.counters and after.clamps == before.clamps
    else:
        assert all(c.index_pulses == 0 for c in after.counters)
        assert all(c.index_wh == 0 for c in after.clamps)
    assert after.tics[0].reading == before.tics[0].reading  # the meter keeps its own indexes


def test_unplugged_and_skew_apply_per_snapshot() -> None:
    box = _box()
    box.advance_to(JANUARY + 60)
    state = box.state(skew_s=-7200, unplugged={1})
    assert state.tics[0].reading is None
    assert state.box_time == state.sim_time - timedelta(hours=2)
    assert box.state().tics[0].reading is not None
    version = box.version
    box.unplugged = {1}
    assert box.version > version
    assert box.state().tics[0].reading is None


def test_commands_change_state() -> None:
    box = _box()
    box.set_relay(9, True)
    assert box.state().relays == (True, True)
    box.toggle_relay(2)
    assert box.state().relays == (True, False)
    box.toggle_switch(24)
    assert box.state().switches[23]
    box.set_variable(8, 2.5)
    assert box.state().variables[7] == 2.5
    for bad in (lambda: box.set_relay(3, True), lambda: box.set_switch(25, True)):
        with pytest.raises(UsageError):
            bad()


def test_old_firmware_and_v1_hardware_shapes() -> None:
    identity = make_identity(1, firmware=Firmware.V083H, hardware=Hardware.V1)
    state = SimulatedBox(identity, start=JANUARY).state()
    assert len(state.switches) == 8
    assert len(state.counters) == 2 and len(state.clamps) == 2 and state.analog_v == ()
    assert identity.firmware_text.startswith("V0.83H")


def test_tic_indexes_follow_the_integrated_power() -> None:
    box = _box(index=2)
    first = box.state().tics[0].reading
    assert first is not None
    energy_wh = 0.0
    step = 10
    t = JANUARY
    for _ in range(24 * 360):  # a day, sampled at the meter's own step
        reading = box.state().tics[0].reading
        assert reading is not None
        energy_wh += reading.active_power_w * step / 3600
        t += step
        box.advance_to(t)
    last = box.state().tics[0].reading
    assert last is not None
    delta = last.total_wh - first.total_wh
    assert delta == pytest.approx(energy_wh, rel=0.05, abs=20)
    assert delta > 100
