"""WES model: firmware families and the dataclasses' contract."""

from __future__ import annotations

import dataclasses

import pytest

from wesh.wes import Clamp, Firmware, TicMeter, WesInfo, WesSnapshot
from wesh.wes.model import firmware_version


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("V0.84A10", Firmware.V084A10),
        ("V0.84A12", Firmware.V084A10),
        ("V0.84B", Firmware.V084A10),
        ("V0.85A1", Firmware.V084A10),
        ("V1.00", Firmware.V084A10),
        ("v0.84a10", Firmware.V084A10),
        ("V0.84A9", Firmware.V083H),
        ("V0.84", Firmware.V083H),
        ("V0.83H", Firmware.V083H),
        ("V0.83H B04", Firmware.V083H),
        ("V0.83I", Firmware.V083H),
        ("V0.61D", Firmware.V083H),
        ("", None),
        (None, None),
        ("WES", None),
    ],
)
def test_firmware_detect(text: str | None, family: Firmware | None) -> None:
    assert Firmware.detect(text) is family


def test_firmware_version_tuple() -> None:
    assert firmware_version("V0.84A10") == (0, 84, "A", 10)
    assert firmware_version("V0.83H B04") == (0, 83, "H", 0)
    assert firmware_version("nonsense") is None


def test_firmware_values_are_the_reference_strings() -> None:
    assert Firmware("V0.83H") is Firmware.V083H
    assert str(Firmware.V084A10) == "V0.84A10"


@pytest.mark.parametrize("cls", [WesInfo, TicMeter, Clamp, WesSnapshot])
def test_models_are_frozen_and_slotted(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert "__slots__" in cls.__dict__
    instance = cls(1) if cls in (TicMeter, Clamp) else cls()
    field = dataclasses.fields(instance)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, field, None)


def test_units_are_in_field_names() -> None:
    names = {f.name for f in dataclasses.fields(TicMeter)}
    assert {"apparent_power_va", "isousc_a", "currents_a", "voltages_v", "indexes_wh"} <= names
    names = {f.name for f in dataclasses.fields(Clamp)}
    assert {"current_a", "index_wh", "inject_wh", "power_va", "power_w"} <= names
