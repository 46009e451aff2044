"""Readings: stable paths, base units, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wesh.errors import UsageError
from wesh.wes import (
    Clamp,
    PulseCounter,
    Quantity,
    Reading,
    TicMeter,
    WesInfo,
    WesSnapshot,
    normalise_quantity,
)
from wesh.wes.model import PARIS

BOX = datetime(2025, 11, 21, 14, 7, tzinfo=PARIS)
POLL = datetime(2025, 11, 21, 13, 7, 42, tzinfo=UTC)


def _by_path(snapshot: WesSnapshot, **kwargs: object) -> dict[str, Reading]:
    readings = snapshot.readings(poll_time=POLL, **kwargs)  # type: ignore[arg-type]
    paths = [r.path for r in readings]
    assert len(paths) == len(set(paths)), "paths are unique"
    return {r.path: r for r in readings}


def test_naive_poll_time_is_refused() -> None:
    with pytest.raises(UsageError):
        WesSnapshot().readings(poll_time=datetime(2025, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1.98, "m3", (1980.0, "L")),
        (338.25, "l", (338.25, "L")),
        (12.345, "kWh", (12345.0, "Wh")),
        (12, "Wh", (12, "Wh")),
        (5.0, "€", (5.0, "€")),
        (5.0, None, (5.0, None)),
        (2.0, " M3 ", (2000.0, "L")),
    ],
)
def test_normalise_quantity(value: float, unit: str | None, expected: tuple[float, str]) -> None:
    result = normalise_quantity(value, unit)
    assert result[0] == pytest.approx(expected[0])
    assert result[1] == expected[1]


def test_tic_paths_and_index_filter() -> None:
    meter = TicMeter(
        1,
        optarif="HC",
        period="H. Creuses",
        period_code="HC",
        apparent_power_va=1840,
        phases=3,
        currents_a=(9, 7, None),
        voltages_v=(231, 229, 233),
        imax_a=(60, 60, 60),
        indexes_wh={"base": 0, "hchc": 0, "hchp": 12, "ejphn": 0, "injection": 5},
    )
    readings = _by_path(WesSnapshot(info=WesInfo(box_time=BOX), tic=(meter,)))
    assert readings["tic.1.index.hchc"].value == 0  # belongs to the HC option
    assert "tic.1.index.base" not in readings  # 0 and not the meter's option
    assert "tic.1.index.ejphn" not in readings
    assert readings["tic.1.index.injection"].kind == "index"
    assert readings["tic.1.current.2"].value == 7
    assert "tic.1.current.3" not in readings  # None is not emitted
    assert readings["tic.1.voltage.3"].unit == "V"
    hchp = readings["tic.1.index.hchp"]
    assert (hchp.value, hchp.unit, hchp.kind) == (12, "Wh", "index")
    assert (hchp.box_time, hchp.poll_time) == (BOX, POLL)
    assert readings["tic.1.period"].kind == "text"
    assert readings["tic.1.available"].kind == "state"


def test_absent_meter_gives_only_its_availability() -> None:
    meter = TicMeter(2, available=False, apparent_power_va=0, indexes_wh={"base": 0})
    readings = _by_path(WesSnapshot(tic=(meter,)))
    assert list(readings) == ["tic.2.available"]
    assert readings["tic.2.available"].value is False


def test_pulse_counter_units() -> None:
    counters = (
        PulseCounter(1, pulses_today=4, index=1.98, consumption_day=Quantity(338.25, "l")),
        PulseCounter(2, index=12.5, consumption_month=Quantity(1.5, None)),
        PulseCounter(3, index=7.0, index_unit="kWh"),
        PulseCounter(4, index=3.0, cost_day_eur=0.5),
    )
    readings = _by_path(WesSnapshot(pulses=counters), pulse_units={1: "m3", 2: "kWh", 3: "l"})
    assert readings["impulsion.1.index"].value == pytest.approx(1980.0)
    assert readings["impulsion.1.index"].unit == "L"
    assert readings["impulsion.1.consumption.day"].value == pytest.approx(338.25)
    assert readings["impulsion.1.pulses_today"].kind == "gauge"
    assert (readings["impulsion.2.index"].value, readings["impulsion.2.index"].unit) == (
        12500.0,
        "Wh",
    )
    assert readings["impulsion.2.consumption.month"].unit == "Wh"
    # a unit printed by the box wins over the configured one
    assert (readings["impulsion.3.index"].value, readings["impulsion.3.index"].unit) == (
        7000.0,
        "Wh",
    )
    assert readings["impulsion.4.index"].unit is None
    assert readings["impulsion.4.cost.day"].unit == "EUR"


def test_clamp_voltage_is_shown_per_clamp() -> None:
    snapshot = WesSnapshot(
        clamps=(Clamp(1, current_a=3.42, index_wh=271317), Clamp(2, current_a=0.0)),
        voltage_v=235,
    )
    readings = _by_path(snapshot)
    assert readings["pince.1.voltage"].value == 235
    assert readings["pince.2.voltage"].unit == "V"
    assert readings["pince.1.current"].unit == "A"
    assert readings["pince.1.index"].kind == "index"
    assert "pince.2.index" not in readings


def test_other_channels() -> None:
    snapshot = WesSnapshot(
        info=WesInfo(firmware="V0.84A10", alarm=True, spaceleft_gb=3.5),
        temperatures={3: 19.5, 1: None},
        relays={1: True},
        relays_1w={101: False},
        inputs={2: True},
        analog_v={1: 1.25},
        switches={24: False},
        variables={8: -1.5},
    )
    readings = _by_path(snapshot)
    assert readings["temp.3"].unit == "°C"
    assert "temp.1" not in readings
    assert readings["relais.1"].kind == "state"
    assert readings["relais1w.101"].value is False
    assert readings["entree.2"].value is True
    assert readings["analogique.1"].unit == "V"
    assert readings["switch.24"].value is False
    assert readings["variable.8"].value == -1.5
    assert readings["box.alarm"].value is True
    assert readings["box.spaceleft"].unit == "GB"
    assert all(r.box_time is None for r in readings.values())


def test_paths_are_lower_case_and_dotted() -> None:
    snapshot = WesSnapshot(
        tic=(TicMeter(1, indexes_wh={"hc_semaine": 3}, apparent_power_va=5),),
        relays={1: True},
    )
    for reading in snapshot.readings(poll_time=POLL):
        assert reading.path == reading.path.lower()
        assert " " not in reading.path
