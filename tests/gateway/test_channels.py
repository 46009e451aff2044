"""ChannelMapper (meanings, multipliers, defaults) and IndexGuard (resets, jumps, skew)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.gateway.channels import (
    PATH_FAMILIES,
    ChannelMapper,
    GatewayEvent,
    IndexGuard,
    Sample,
    check_path,
    describe_path,
    index_consumption,
)
from wesh.gateway.config import BoxConfig
from wesh.wes.readings import Reading, ReadingKind

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
BOX_TIME = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)


def box(channels: list[dict[str, Any]] | None = None, **keys: Any) -> BoxConfig:
    data: dict[str, Any] = {"id": "dw-12", "serves": "logement-12", "host": "127.0.0.1"}
    data.update(keys)
    data["channels"] = channels or []
    return BoxConfig.model_validate(data)


def reading(
    path: str,
    value: float | str | bool,
    unit: str | None = None,
    kind: ReadingKind = "gauge",
    box_time: datetime | None = BOX_TIME,
) -> Reading:
    return Reading(path, value, unit, box_time, T0, kind)


def index_sample(value: float, at: datetime, *, path: str = "impulsion.2.index") -> Sample:
    return Sample(
        box="dw-12",
        channel=f"dw-12/{path}",
        path=path,
        at=at,
        value=value,
        unit="L",
        quality="measured",
        kind="index",
        meaning="hot_water",
    )


# ------------------------------------------------------------------------------ grammar


@pytest.mark.parametrize(
    "path",
    [
        "box.firmware",
        "tic.1.index.hchc",
        "tic.3.index.bbrhpjr",
        "tic.2.current.3",
        "tic.1.adco",
        "impulsion.2.index",
        "impulsion.4.consumption.yesterday",
        "impulsion.1.cost.month",
        "pince.1.voltage",
        "temp.30",
        "relais1w.101",
        "switch.24",
        "analogique.4",
        "variable.8",
    ],
)
def test_known_paths(path: str) -> None:
    assert describe_path(path) is not None
    assert check_path(path) is None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("impulsoin.2.index", "did you mean 'impulsion'?"),
        ("temperature.1", "unknown reading family"),
        ("impulsion.2.idx", "impulsion paths are"),
        ("tic.4.index.base", "tic paths are"),
        ("temp.0", "temp paths are"),
        ("tic.1.current.4", "tic paths are"),
        ("", "unknown reading family"),
    ],
)
def test_bad_paths(path: str, fragment: str) -> None:
    problem = check_path(path)
    assert problem is not None
    assert fragment in problem


def test_every_family_is_documented_in_wes_md() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "wes.md").read_text(encoding="utf-8")
    for family in PATH_FAMILIES:
        assert f"`{family.family}." in doc, family.family


# ------------------------------------------------------------------------------ mapper


def test_configured_channel_gets_meaning_label_unit_multiplier() -> None:
    config = box(
        [
            {
                "path": "impulsion.2.index",
                "meaning": "hot_water",
                "label": "Eau chaude",
                "unit": "L",
                "multiplier": 10,
            },
            {"path": "impulsion.1.index", "meaning": "gas", "unit": "m3", "multiplier": 0.01},
            {"path": "impulsion.3.index", "meaning": "heat", "unit": "kWh"},
            {"path": "temp.2", "meaning": "humidity", "label": "Humidité", "unit": "%"},
        ]
    )
    mapper = ChannelMapper([config])
    samples = mapper.map(
        "dw-12",
        [
            reading("impulsion.2.index", 1234, None, "index"),
            reading("impulsion.1.index", 250.0, None, "index"),
            reading("impulsion.3.index", 1.5, None, "index"),
            reading("temp.2", 42.5, "°C"),
        ],
        poll_time=T0,
    )
    by_path = {s.path: s for s in samples}
    hot = by_path["impulsion.2.index"]
    assert (hot.value, hot.unit, hot.meaning, hot.label, hot.kind) == (
        12340,
        "L",
        "hot_water",
        "Eau chaude",
        "index",
    )
    assert isinstance(hot.value, int)
    assert hot.channel == "dw-12/impulsion.2.index"
    assert hot.box == "dw-12"
    assert hot.at == T0
    assert hot.box_time == BOX_TIME
    assert hot.quality == "measured"
    gas = by_path["impulsion.1.index"]
    assert gas.unit == "L"
    assert gas.value == pytest.approx(2500.0)
    heat = by_path["impulsion.3.index"]
    assert (heat.value, heat.unit) == (1500.0, "Wh")
    humidity = by_path["temp.2"]
    assert (humidity.value, humidity.unit, humidity.meaning) == (42.5, "%", "humidity")


@pytest.mark.parametrize(
    ("path", "value", "unit", "kind", "meaning"),
    [
        ("tic.1.index.base", 123, "Wh", "index", "electricity"),
        ("tic.1.power_va", 450, "VA", "gauge", "power"),
        ("tic.1.current.1", 2, "A", "gauge", "current"),
        ("tic.1.adco", "021962000001", None, "text", "text"),
        ("pince.1.index", 5, "Wh", "index", "electricity"),
        ("pince.2.voltage", 230, "V", "gauge", "voltage"),
        ("temp.3", 19.5, "°C", "gauge", "temperature"),
        ("relais.1", True, None, "state", "state"),
        ("box.firmware", "V0.84A10", None, "text", "text"),
        ("impulsion.1.index", 12.0, None, "index", "other"),
        ("analogique.1", 1.2, "V", "gauge", "voltage"),
        ("something.new", 1, None, "gauge", "other"),
    ],
)
def test_unconfigured_reading_gets_default_meaning(
    path: str, value: float | str | bool, unit: str | None, kind: ReadingKind, meaning: str
) -> None:
    mapper = ChannelMapper([box()])
    (sample,) = mapper.map("dw-12", [reading(path, value, unit, kind)], poll_time=T0)
    assert (sample.value, sample.unit, sample.kind, sample.meaning) == (value, unit, kind, meaning)
    assert sample.label is None


def test_only_configured_drops_the_rest() -> None:
    mapper = ChannelMapper(
        [box([{"path": "temp.1", "meaning": "temperature"}], only_configured=True)]
    )
    samples = mapper.map(
        "dw-12", [reading("temp.1", 20.0, "°C"), reading("temp.2", 40.0, "°C")], poll_time=T0
    )
    assert [s.path for s in samples] == ["temp.1"]


def test_index_override_and_text_unit() -> None:
    mapper = ChannelMapper(
        [
            box(
                [
                    {"path": "variable.1", "meaning": "other", "index": True},
                    {"path": "pince.1.index", "meaning": "electricity", "index": False},
                    {"path": "tic.1.adco", "meaning": "text", "unit": "id"},
                ]
            )
        ]
    )
    samples = mapper.map(
        "dw-12",
        [
            reading("variable.1", 3.0),
            reading("pince.1.index", 10, "Wh", "index"),
            reading("tic.1.adco", "0123", None, "text"),
        ],
        poll_time=T0,
    )
    assert [s.kind for s in samples] == ["index", "gauge", "text"]
    assert samples[2].unit == "id"


def test_mapper_refuses_naive_time_and_unknown_box() -> None:
    mapper = ChannelMapper([box()])
    with pytest.raises(UsageError):
        mapper.map("dw-12", [], poll_time=datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(UsageError, match="unknown box"):
        mapper.map("nope", [], poll_time=T0)
    with pytest.raises(UsageError):
        mapper.guard("nope")


# ------------------------------------------------------------------------------ guard: resets


def guard(channels: list[dict[str, Any]] | None = None, **keys: Any) -> IndexGuard:
    return IndexGuard(box(channels, **keys))


def run(
    g: IndexGuard, values: list[float], *, step_s: float = 60.0
) -> tuple[list[Sample], list[GatewayEvent]]:
    samples: list[Sample] = []
    events: list[GatewayEvent] = []
    for number, value in enumerate(values):
        at = T0 + timedelta(seconds=step_s * number)
        out, evs = g.check([index_sample(value, at)], poll_time=at)
        samples += out
        events += evs
    return samples, events


def test_steady_index_gives_no_event() -> None:
    samples, events = run(guard(), [100, 110, 110, 150])
    assert events == []
    assert all(s.quality == "measured" for s in samples)
    assert index_consumption(samples, events) == [None, 10, 0, 40]


def test_counter_reset_to_near_zero() -> None:
    samples, events = run(guard(), [5000, 5100, 3])
    (event,) = events
    assert event.kind == "counter_reset"
    assert event.severity == "warning"
    assert event.channel == "dw-12/impulsion.2.index"
    assert event.at == samples[2].at
    assert event.data["baseline"] == 0.0
    assert event.data["previous"] == 5100
    assert samples[2].quality == "measured"
    assert index_consumption(samples, events) == [None, 100, 3]


def test_decrease_to_a_large_value_counts_nothing_across() -> None:
    samples, events = run(guard(), [900_000, 900_100, 400_000, 400_050])
    (event,) = events
    assert event.kind == "counter_reset"
    assert event.data["baseline"] == 400_000
    assert index_consumption(samples, events) == [None, 100, 0, 50]


def test_meter_replaced_when_adco_changes() -> None:
    config = box([{"path": "tic.1.index.base", "meaning": "electricity"}])
    mapper = ChannelMapper([config])

    def poll(adco: str, index: int, minute: int) -> tuple[list[Sample], list[GatewayEvent]]:
        at = T0 + timedelta(minutes=minute)
        result = mapper.process(
            "dw-12",
            [
                reading("tic.1.adco", adco, None, "text"),
                reading("tic.1.index.base", index, "Wh", "index"),
            ],
            poll_time=at,
        )
        return result.samples, result.events

    poll("021962000001", 9_000_000, 0)
    _, events = poll("021962000001", 9_000_100, 1)
    assert events == []
    samples, events = poll("031962999999", 12, 2)
    (event,) = events
    assert event.kind == "meter_replaced"
    assert event.data["old_identity"] == "021962000001"
    assert event.data["new_identity"] == "031962999999"
    assert event.data["baseline"] == 0.0
    assert samples[1].quality == "measured"


def test_meter_replaced_detected_even_when_adco_is_not_stored() -> None:
    config = box([{"path": "tic.1.index.base", "meaning": "electricity"}], only_configured=True)
    mapper = ChannelMapper([config])
    for minute, (adco, index) in enumerate([("A", 5_000_000), ("B", 4_000_000)]):
        result = mapper.process(
            "dw-12",
            [
                reading("tic.1.adco", adco, None, "text"),
                reading("tic.1.index.base", index, "Wh", "index"),
            ],
            poll_time=T0 + timedelta(minutes=minute),
        )
        assert [s.path for s in result.samples] == ["tic.1.index.base"]
    assert [e.kind for e in result.events] == ["meter_replaced"]
    assert result.events[0].data["baseline"] == 4_000_000


# ------------------------------------------------------------------------------ guard: jumps


def test_garbage_spike_is_suspect_and_forgotten() -> None:
    samples, events = run(guard(), [1000, 1010, 9_000_000, 1020, 1030])
    assert [s.quality for s in samples] == [
        "measured",
        "measured",
        "suspect",
        "measured",
        "measured",
    ]
    (event,) = events
    assert event.kind == "index_jump"
    assert event.severity == "warning"
    assert event.data["confirmed"] is False
    assert event.data["allowed"] == pytest.approx(1000.0)  # hot water: 1000 L/min
    assert index_consumption(samples, events) == [None, 10, None, 10, 10]


def test_confirmed_jump_becomes_the_new_reference() -> None:
    samples, events = run(guard(), [1000, 9_000_000, 9_000_010, 9_000_030])
    assert [s.quality for s in samples] == ["measured", "suspect", "measured", "measured"]
    assert [e.data["confirmed"] for e in events] == [False, True]
    assert events[1].severity == "info"
    assert events[1].data["baseline"] == 9_000_000
    assert index_consumption(samples, events) == [None, None, 10, 20]


def test_max_step_is_per_poll_interval_and_scales_with_elapsed_time() -> None:
    g = guard(
        [{"path": "impulsion.2.index", "meaning": "hot_water", "max_step": 50}],
        poll_interval_s=60,
    )
    samples, events = run(g, [0, 40, 100])
    assert [s.quality for s in samples] == ["measured", "measured", "suspect"]
    assert events[0].data["allowed"] == 50
    g2 = guard(
        [{"path": "impulsion.2.index", "meaning": "hot_water", "max_step": 50}],
        poll_interval_s=60,
    )
    samples, events = run(g2, [0, 140], step_s=180)  # three intervals elapsed: 150 allowed
    assert events == []


def test_no_default_limit_for_unknown_scale() -> None:
    g = IndexGuard(box())
    at = T0
    first = Sample(
        "dw-12", "dw-12/variable.1", "variable.1", at, 0.0, None, "measured", "index", "other"
    )
    second = Sample(
        "dw-12",
        "dw-12/variable.1",
        "variable.1",
        at + timedelta(minutes=1),
        1e12,
        None,
        "measured",
        "index",
        "other",
    )
    g.check([first], poll_time=at)
    out, events = g.check([second], poll_time=second.at)
    assert events == []
    assert out[0].quality == "measured"


def test_non_finite_index_is_suspect() -> None:
    samples, events = run(guard(), [10, float("nan"), 12])
    assert [s.quality for s in samples] == ["measured", "suspect", "measured"]
    assert [e.kind for e in events] == ["index_jump"]


def test_gauges_text_and_states_pass_untouched() -> None:
    g = guard()
    gauge = Sample(
        "dw-12", "dw-12/temp.1", "temp.1", T0, -50.0, "°C", "measured", "gauge", "temperature"
    )
    text = Sample(
        "dw-12", "dw-12/tic.1.period", "tic.1.period", T0, "HP", None, "measured", "text", "text"
    )
    out, events = g.check([gauge, text], poll_time=T0)
    assert out == [gauge, text]
    assert events == []


def test_reconfigure_keeps_remembered_indexes() -> None:
    config = box()
    first = ChannelMapper([config])
    first.guard("dw-12").check([index_sample(5000, T0)], poll_time=T0)
    second = ChannelMapper([box(poll_interval_s=30)], guards=first.guards)
    at = T0 + timedelta(minutes=1)
    _, events = second.guard("dw-12").check([index_sample(10, at)], poll_time=at)
    assert [e.kind for e in events] == ["counter_reset"]
    fresh = ChannelMapper([config])
    _, events = fresh.guard("dw-12").check([index_sample(10, at)], poll_time=at)
    assert events == []


# ------------------------------------------------------------------------------ clock skew


def test_clock_skew_is_edge_triggered() -> None:
    g = guard(max_clock_skew_s=120)
    kinds = []
    for minute, skew_s in enumerate([30, 600, 610, -900, 60, 59, 500]):
        at = T0 + timedelta(minutes=minute)
        _, events = g.check([], poll_time=at, box_time=at + timedelta(seconds=skew_s))
        kinds.append([(e.kind, e.severity, e.data["state"]) for e in events])
    assert kinds == [
        [],
        [("clock_skew", "warning", "started")],
        [],
        [],
        [("clock_skew", "info", "ended")],
        [],
        [("clock_skew", "warning", "started")],
    ]


def test_clock_skew_unknown_box_time_changes_nothing() -> None:
    g = guard(max_clock_skew_s=120)
    _, events = g.check([], poll_time=T0, box_time=T0 + timedelta(hours=1))
    assert [e.data["skew_s"] for e in events] == [3600]
    _, events = g.check([], poll_time=T0, box_time=None)
    assert events == []
    _, events = g.check([], poll_time=T0, box_time=T0)
    assert [e.data["state"] for e in events] == ["ended"]


def test_process_reports_skew_from_box_time() -> None:
    mapper = ChannelMapper([box()])
    result = mapper.process("dw-12", [], poll_time=T0, box_time=T0 + timedelta(hours=2))
    assert [e.kind for e in result.events] == ["clock_skew"]
    assert result.events[0].box == "dw-12"
    assert result.events[0].channel is None


# ------------------------------------------------------------------------------ properties

_values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**12),
    st.floats(min_value=-1e6, max_value=1e12, allow_nan=False),
)


@settings(max_examples=300)
@given(
    st.lists(_values, min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=7200), min_size=40, max_size=40),
    st.sampled_from(["hot_water", "other"]),
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=1e6)),
)
def test_consumption_is_never_negative(
    values: list[float], gaps: list[int], meaning: str, max_step: float | None
) -> None:
    channel: dict[str, Any] = {"path": "impulsion.2.index", "meaning": meaning}
    if max_step is not None:
        channel["max_step"] = max_step
    g = guard([channel])
    at = T0
    samples: list[Sample] = []
    events: list[GatewayEvent] = []
    for value, gap in zip(values, gaps, strict=False):
        sample = Sample(
            "dw-12",
            "dw-12/impulsion.2.index",
            "impulsion.2.index",
            at,
            value,
            "L",
            "measured",
            "index",
            meaning,
        )  # type: ignore[arg-type]
        out, evs = g.check([sample], poll_time=at)
        samples += out
        events += evs
        at += timedelta(seconds=gap)
    deltas = index_consumption(samples, events)
    assert len(deltas) == len(values)
    assert all(d is None or d >= 0 for d in deltas), (deltas, events)


@given(st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=30))
def test_plausible_growth_is_counted_exactly(steps: list[int]) -> None:
    values = [10_000]
    for step in steps:
        values.append(values[-1] + step)
    samples, events = run(guard(), values)
    assert events == []
    deltas = index_consumption(samples, events)
    assert deltas[0] is None
    assert sum(d for d in deltas if d is not None) == values[-1] - values[0]
