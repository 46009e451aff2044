"""The --faults language, per-box fault draws and document damage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from wesh.errors import UsageError
from wesh.sim.faults import (
    Fault,
    FaultKind,
    FaultRule,
    FaultSpec,
    FaultState,
    malform_document,
    truncate_document,
)


def test_parse_the_example_of_the_brief() -> None:
    spec = FaultSpec.parse("3:latency=2;5:http500;*:truncated@0.1")
    assert spec.for_box(3) == (
        Fault(FaultKind.LATENCY, 2.0),
        Fault(FaultKind.TRUNCATED, probability=0.1),
    )
    assert spec.for_box(5) == (
        Fault(FaultKind.HTTP500),
        Fault(FaultKind.TRUNCATED, probability=0.1),
    )
    assert spec.for_box(0) == (Fault(FaultKind.TRUNCATED, probability=0.1),)


def test_ranges_lists_values_and_aliases() -> None:
    spec = FaultSpec.parse(
        " 0-2, 7 : skew=-2h , tic_unplugged@0.5 ; 4:reboot=lose,counter_reset=2 "
    )
    assert spec.for_box(1) == (
        Fault(FaultKind.SKEW, -7200.0),
        Fault(FaultKind.UNPLUGGED, None, 0.5),
    )
    assert spec.for_box(7) == spec.for_box(0)
    assert spec.for_box(3) == ()
    assert spec.for_box(4) == (Fault(FaultKind.REBOOT, "lose"), Fault(FaultKind.RESET, 2))
    assert Fault.parse("meter_replacement").kind is FaultKind.REPLACE
    assert Fault.parse("500").kind is FaultKind.HTTP500
    assert Fault.parse("skew=90").value == 90.0
    assert Fault.parse("skew=1.5m").value == 90.0
    assert Fault.parse("reboot").value == "keep"
    assert Fault.parse("reset=all").value is None


@pytest.mark.parametrize(
    "text",
    [
        "3:latency=2;5:http500;*:truncated@0.1",
        "0-9,20:skew=-7200,unplugged=2@0.05;7:reboot=lose",
        "*:timeout@0.25,malformed,replace,reset=3",
    ],
)
def test_canonical_text_round_trips(text: str) -> None:
    spec = FaultSpec.parse(text)
    assert FaultSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    [
        "latency=2",  # no target
        "x:http500",
        "3-1:http500",
        "1:",
        "1:earthquake",
        "1:latency",
        "1:latency=-1",
        "1:latency=abc",
        "1:http500=3",
        "1:truncated@0",
        "1:truncated@1.5",
        "1:truncated@",
        "1:skew=2 weeks",
        "1:reboot=maybe",
        "1:reset=9",
        "1:unplugged=4",
        "1:latency=",
    ],
)
def test_bad_specs_are_rejected_with_the_rule(text: str) -> None:
    with pytest.raises(UsageError) as info:
        FaultSpec.parse(text)
    assert info.value.where is not None and info.value.where.startswith("faults rule")


def test_empty_spec_means_no_fault() -> None:
    assert FaultSpec.parse("") == FaultSpec()
    assert FaultSpec.parse(" ; ").for_box(0) == ()


def test_conditions_apply_to_every_request() -> None:
    state = FaultState.seeded(1, 2)
    state.add(Fault(FaultKind.LATENCY, 1.5))
    state.add(Fault(FaultKind.HTTP500))
    state.add(Fault(FaultKind.SKEW, 60.0))
    for _ in range(5):
        draw = state.draw()
        assert draw.latency_s == 1.5 and draw.http500 and draw.skew_s == 60.0
        assert not draw.truncated and not draw.timeout and draw.events == ()


def test_plain_events_happen_once_and_probabilistic_ones_repeat() -> None:
    state = FaultState.seeded(1, 2)
    state.add(Fault(FaultKind.REPLACE))
    assert state.draw().events == ()
    assert [f.kind for f in state.take_pending()] == [FaultKind.REPLACE]
    assert state.take_pending() == []
    state.add(Fault(FaultKind.RESET, probability=0.5))
    hits = sum(bool(state.draw().events) for _ in range(400))
    assert 140 < hits < 260


def test_draws_are_seeded() -> None:
    def run(seed: int) -> list[bool]:
        state = FaultState.seeded(seed, 3)
        state.add(Fault(FaultKind.TRUNCATED, probability=0.3))
        return [state.draw().truncated for _ in range(100)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert 10 < sum(run(1)) < 50


def test_clear_by_kind() -> None:
    state = FaultState.seeded(0, 0)
    state.add(Fault(FaultKind.HTTP500))
    state.add(Fault(FaultKind.LATENCY, 1.0))
    state.clear(FaultKind.HTTP500)
    assert not state.draw().http500 and state.draw().latency_s == 1.0
    state.clear()
    assert state.draw() == state.draw() and not state.draw().any_damage


_xml_text = st.text(alphabet="abcdef 0123456789", max_size=12)
_documents = st.lists(
    st.tuples(st.sampled_from(["PAP", "ADCO", "SONDE1", "I1"]), _xml_text), min_size=1, max_size=8
).map(
    lambda items: (
        '<?xml version="1.0" encoding="utf-8" ?>\n<data>\n'
        + "".join(f"<{tag}>{text}</{tag}>\n" for tag, text in items)
        + "</data>\n"
    ).encode()
)


def _parses(body: bytes) -> bool:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return False
    return True


@given(_documents, st.floats(min_value=0.0, max_value=1.0))
def test_a_truncated_document_never_parses(body: bytes, cut: float) -> None:
    assert _parses(body)
    cut_body = truncate_document(body, cut)
    assert 0 < len(cut_body) < len(body)
    assert body.startswith(cut_body)
    # the newline after </data> is whitespace: a cut there leaves a complete document
    if len(cut_body) < len(body.rstrip()):
        assert not _parses(cut_body)


@given(_documents, st.integers(min_value=0, max_value=50))
def test_a_malformed_document_never_parses(body: bytes, damage: int) -> None:
    assert not _parses(malform_document(body, damage))


_faults = st.one_of(
    st.builds(Fault, st.just(FaultKind.LATENCY), st.integers(0, 3600).map(float)),
    st.builds(Fault, st.just(FaultKind.SKEW), st.integers(-86_400, 86_400).map(float)),
    st.builds(Fault, st.just(FaultKind.RESET), st.none() | st.integers(1, 6)),
    st.builds(Fault, st.just(FaultKind.UNPLUGGED), st.none() | st.integers(1, 3)),
    st.builds(Fault, st.just(FaultKind.REBOOT), st.sampled_from(["keep", "lose"])),
    st.builds(
        Fault,
        st.sampled_from(
            [FaultKind.TIMEOUT, FaultKind.HTTP500, FaultKind.TRUNCATED, FaultKind.MALFORMED]
        ),
    ),
).flatmap(
    lambda f: st.builds(
        Fault,
        st.just(f.kind),
        st.just(f.value),
        st.none() | st.integers(1, 1000).map(lambda n: n / 1000),
    )
)
_targets = st.none() | st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=1,
    max_size=3,
).map(tuple)
_specs = st.lists(
    st.builds(FaultRule, _targets, st.lists(_faults, min_size=1, max_size=4).map(tuple)),
    max_size=4,
).map(lambda rules: FaultSpec(tuple(rules)))


@given(_specs)
def test_fault_specs_round_trip_through_their_text(spec: FaultSpec) -> None:
    assert FaultSpec.parse(str(spec)) == spec


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_usage_error(text: str) -> None:
    try:
        spec = FaultSpec.parse(text)
    except UsageError:
        return
    assert FaultSpec.parse(str(spec)) == spec
