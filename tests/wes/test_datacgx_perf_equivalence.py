"""The fast data.cgx/compact parser returns exactly what the parser before it returned.

``parse_data_cgx`` was rewritten for speed: a well-formed page is parsed by one lxml call
and its tree walked once (the incremental reader now only serves bodies that are not well
formed), and each typed read tries a plain-number path before the tolerant one. Nothing a
caller sees may change. The oracles:

* every fixture that existed at the rewrite, read with each firmware hint, gives the
  snapshot (every field, warnings and extras in their order) or the error that the old
  parser gave: ``REFERENCE`` holds digests of its results;
* any well-formed document gives the same values and warnings through the tree walk as
  through the incremental reader (which the old parser used for everything);
* each typed read gives the same value, warnings and bookkeeping through its plain path
  as through its tolerant path alone (the old code);
* 200 Hypothesis snapshots per firmware, rendered through the stock templates, read back
  as the snapshot (the old parser's behaviour, see ``test_cgx``).

If a deliberate behaviour change alters a digest, check the new result by hand (the
failure shows its canonical form) and update ``REFERENCE``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from wesh.errors import DecodeError
from wesh.wes import (
    Firmware,
    compact_stock_template,
    parse_compact,
    parse_data_cgx,
    render_template,
    snapshot_values,
    stock_template,
)
from wesh.wes.datacgx import (
    _PARSER,
    PLACEHOLDERS,
    _Doc,
    _read_events,
    _read_tree,
    _Section,
)
from wesh.wes.model import PARIS

from .test_cgx import _snapshot

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wes"
HINTS = (None, Firmware.V083H, Firmware.V084A10)

#: fixture → digest of the parse result with firmware hint None, V0.83H, V0.84A10, computed
#: with the parser as it was before the speed rewrite (commit 21fd30d)
REFERENCE = {
    "compact_truncated.txt": ("39b053ace2cc", "29e73bc5af01", "39b053ace2cc"),
    "compact_v084a10.txt": ("09dcfbbd4112", "515167520eac", "09dcfbbd4112"),
    "edge_billion_laughs.xml": ("131e6d30fbb8", "131e6d30fbb8", "131e6d30fbb8"),
    "edge_duplicate.xml": ("891b4319ad3a", "4398561ea01f", "891b4319ad3a"),
    "edge_empty.xml": ("9cecc145466a", "9cecc145466a", "9cecc145466a"),
    "edge_garbage.xml": ("d0cfa08e058d", "3017894862ab", "d0cfa08e058d"),
    "edge_latin1.xml": ("6b4934bfe299", "9d67d0fa7c43", "6b4934bfe299"),
    "edge_long_text.xml": ("d90a537c9944", "6b788f91bb31", "d90a537c9944"),
    "edge_malformed.xml": ("3f4560293f68", "3f4560293f68", "3f4560293f68"),
    "edge_missing.xml": ("bd7a9d76abcc", "09d8ee8fda48", "d7e8d78c2dca"),
    "edge_no_values.xml": ("2032c82224e1", "2032c82224e1", "2032c82224e1"),
    "edge_oversized.xml": ("7e24a7a59130", "7e24a7a59130", "7e24a7a59130"),
    "edge_pas_dispo.xml": ("a67c25df8184", "921b53d68d62", "a67c25df8184"),
    "edge_trailing_garbage.xml": ("a60a0873ec85", "af3e364c8f6b", "515cb43137e3"),
    "edge_truncated.xml": ("3e9a3da05db8", "9b41f08dff87", "3e9a3da05db8"),
    "edge_undeclared_entity.xml": ("007c38b47b93", "007c38b47b93", "007c38b47b93"),
    "edge_unit_suffixes.xml": ("802cb77b1d11", "802cb77b1d11", "d3c03968843c"),
    "edge_unknown.xml": ("75f2705e20a6", "75f2705e20a6", "0c187b6435c5"),
    "edge_xxe.xml": ("131e6d30fbb8", "131e6d30fbb8", "131e6d30fbb8"),
    "jeedom_custom.xml": ("5bf26a7c156a", "7836bb851be8", "5bf26a7c156a"),
    "producer.xml": ("8ba1222ed124", "1e2b3d36bf06", "8ba1222ed124"),
    "relais_1w.xml": ("81e26bbf5d17", "82e80c544983", "81e26bbf5d17"),
    "rl_cgx_response.xml": ("884e92400d7a", "0f214e29c202", "90b451a9cad4"),
    "tempo.xml": ("2eadc226e2a7", "ba884915a8a9", "2eadc226e2a7"),
    "three_phase.xml": ("15d7ec3883e9", "2d101768992c", "15d7ec3883e9"),
    "v083h_stock.xml": ("5081584826b4", "5081584826b4", "670d8a3aa1f2"),
    "v084a10_stock.xml": ("dc6247d47209", "a4c6f2f42727", "dc6247d47209"),
    "wes_v1_two_clamps.xml": ("03129b80dd42", "03129b80dd42", "bf2d81a9a6c2"),
}

# --------------------------------------------------------------------------- fixtures

# libxml2's own wording, which may change with its version, is left out of the digests;
# positions (line, column) are kept
_LIBXML_TEXT = re.compile(
    r"((?:malformed XML|no data in document|unreadable XML): |ignored \(line \d+\): ).*",
    re.DOTALL,
)


def _canonical(value: object) -> object:
    """JSON-able form of a parse result; fields left at their default are omitted."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for spec in dataclasses.fields(value):
            item = getattr(value, spec.name)
            if spec.default is not dataclasses.MISSING:
                default: object = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                default = spec.default_factory()
            else:
                default = dataclasses.MISSING
            if item == default and type(item) is type(default):
                continue
            out[spec.name] = _canonical(item)
        return {type(value).__name__: out}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return _LIBXML_TEXT.sub(r"\1…", value)
    if isinstance(value, Mapping):
        return [[_canonical(k), _canonical(v)] for k, v in value.items()]
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat(), "tz": str(value.tzinfo)}
    return value


def _result(path: Path, hint: Firmware | None) -> str:
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    parser = parse_compact if spec.get("parser") == "compact" else parse_data_cgx
    result: object
    try:
        result = parser(
            path.read_bytes(), firmware=hint, max_bytes=spec.get("max_bytes", 1_000_000)
        )
    except DecodeError as exc:
        result = ["DecodeError", exc.message, exc.where]
    return json.dumps(_canonical(result), ensure_ascii=False, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_fixture_reads_as_before(name: str) -> None:
    path = FIXTURES / name
    assert path.exists(), name
    for hint, expected in zip(HINTS, REFERENCE[name], strict=True):
        text = _result(path, hint)
        assert _digest(text) == expected, (hint, text)


def test_the_reference_covers_the_fixtures_of_the_rewrite() -> None:
    assert len(REFERENCE) >= 28
    assert all(len(digests) == len(HINTS) for digests in REFERENCE.values())


# --------------------------------------------------------------------------- tree walk


def _state(doc: _Doc) -> object:
    return (
        [(section, list(table.items())) for section, table in doc.leaves.items()],
        doc.warnings,
        doc.dropped,
        doc.complete,
        list(doc.extras.items()),
    )


def _collect(read: Callable[[_Doc], None]) -> tuple[object, str | None]:
    doc = _Doc()
    try:
        read(doc)
    except DecodeError as exc:
        return _state(doc), exc.message
    return _state(doc), None


def _tree_and_events(body: str) -> None:
    data = body.encode("utf-8")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.LxmlError:
        assume(False)
        return
    namespaced = b"xmlns" in data
    tree = _collect(lambda doc: _read_tree(root, doc, namespaced=namespaced))
    events = _collect(lambda doc: _read_events(data, doc))
    assert tree == events


_TAGS = st.sampled_from(
    ["data", "info", "tic1", "pince", "temp", "PAP", "SONDE1", "INDEX1", "vera", "x", "a-b.c"]
)
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
_TEXT = st.one_of(
    st.text(_CHARS, max_size=12).map(escape),
    st.sampled_from(["", " ", "\n", "1840", " 19.8 ", "Pas Dispo", "&amp;", "&#49;&#x41;"]),
    st.text(st.sampled_from("ab1"), min_size=250, max_size=270),  # around MAX_TEXT
    st.text(_CHARS, max_size=8).map(lambda s: f"<![CDATA[{s.replace(']]>', '')}]]>"),
    st.tuples(st.sampled_from(["1", "x", ""]), st.sampled_from(["2", ""])).map(
        lambda parts: f"{parts[0]}<!-- c -->{parts[1]}"
    ),
)
_MISC = st.sampled_from(["", "\n", " ", "<!-- note -->", "<?pi data?>"])


@st.composite
def _element(draw: st.DrawFn, depth: int, prefix: str = "") -> str:
    tag = prefix + draw(_TAGS)
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return f"<{tag}>{draw(_TEXT)}</{tag}>"
        return f"<{tag}/>"
    children = draw(st.lists(_element(depth + 1), max_size=4))
    text = draw(_MISC)
    return f"<{tag}>{text}" + "".join(c + draw(_MISC) for c in children) + f"</{tag}>"


@st.composite
def _document(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(["data", "wes"]))
    namespace = draw(st.sampled_from(["", ' xmlns="urn:wes"', ' xmlns:w="urn:w"']))
    prefix = "w:" if namespace.startswith(" xmlns:w") else ""
    blocks = draw(st.lists(st.one_of(_element(2), _element(2, prefix)), max_size=6))
    head = draw(st.sampled_from(["", '<?xml version="1.0"?>\n', "<!-- head -->"]))
    body = "".join(block + draw(_MISC) for block in blocks)
    return f"{head}<{root}{namespace}>{draw(_MISC)}{body}</{root}>{draw(_MISC)}"


@settings(max_examples=300)
@given(_document())
def test_tree_walk_reads_as_the_incremental_reader(body: str) -> None:
    _tree_and_events(body)


def test_tree_walk_reads_the_edge_fixtures_as_the_incremental_reader() -> None:
    for name in ("edge_unknown.xml", "edge_duplicate.xml", "edge_long_text.xml"):
        text = (FIXTURES / name).read_text(encoding="utf-8")
        _tree_and_events(text.split("?>", 1)[1])


# --------------------------------------------------------------------------- typed reads

_RAW = st.one_of(
    st.text(max_size=6),
    st.text(st.sampled_from("0123456789.+- eE_inftyaNk\t\u0661\u0662"), max_size=14),
    st.integers(-(10**16), 10**16).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(places=3, allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(
        [
            *PLACEHOLDERS,
            *("Pas Dispo", "ON", "off", "Checked", "1e999", "-0", "+5", "5.", ".5", "0" * 20),
            *("12 kWh", "12.5 Wh", "1.98 m3", "3 A", "231 V", "19.5 °C", " 42 ", "1_000"),
        ]
    ),
)
_BOUNDS = st.sampled_from([(0, 10**12), (0, 10_000), (-(10**6), 10**6), (-100, 200), (5, 999)])
_UNITS = st.sampled_from(
    [frozenset(), frozenset({"a"}), frozenset({"wh", "kwh"}), frozenset({"l", "m3", "kwh"})]
)


def _sections(raw: str) -> tuple[_Section, _Section]:
    def make() -> _Section:
        return _Section(_Doc(), Firmware.V084A10, "s", {"E": raw, "F": "1"})

    return make(), make()


def _seen(section: _Section, value: object) -> object:
    return value, type(value), section.doc.warnings, list(section.unread)


@given(_RAW, _UNITS)
def test_number_plain_path(raw: str, units: frozenset[str]) -> None:
    fast, slow = _sections(raw)
    text = slow.value("E")
    expected = None if text is None else slow._number("E", text, units)
    assert _seen(fast, fast.number("E", units)) == _seen(slow, expected)


@given(_RAW, _BOUNDS, _UNITS)
def test_integer_plain_path(raw: str, bounds: tuple[int, int], units: frozenset[str]) -> None:
    fast, slow = _sections(raw)
    low, high = bounds
    value = fast.integer("E", low=low, high=high, units=units)
    assert _seen(fast, value) == _seen(slow, slow._integer("E", low, high, units))


@given(_RAW, _BOUNDS, _UNITS)
def test_real_plain_path(raw: str, bounds: tuple[int, int], units: frozenset[str]) -> None:
    fast, slow = _sections(raw)
    low, high = bounds
    value = fast.real("E", low=low, high=high, units=units)
    assert _seen(fast, value) == _seen(slow, slow._real("E", low, high, units))


@given(_RAW, st.sampled_from([None, False, True]))
def test_energy_plain_path(raw: str, kwh_default: bool | None) -> None:
    fast, slow = _sections(raw)
    value = fast.energy_wh("E", kwh_default=kwh_default)
    assert _seen(fast, value) == _seen(slow, slow._energy_wh("E", kwh_default))


_WORDS = st.sampled_from(
    [
        *("ON", "on", " On ", "OFF", "off", "0", "1", " 1", "TRUE", "true", "CHECKED"),
        *("checked", "FALSE", "false", "no", "yes", "x", "2", "-", "", "ONN", "0FF", "O N"),
    ]
)


@given(st.one_of(_WORDS, _RAW))
def test_flag_plain_path(raw: str) -> None:
    fast, slow = _sections(raw)
    assert _seen(fast, fast.flag("E")) == _seen(slow, slow._flag("E"))


def test_the_shared_parser_serves_threads() -> None:
    # the module-level lxml parser is shared; lxml locks it for each parse
    pages = [(FIXTURES / name).read_bytes() for name in ("v084a10_stock.xml", "tempo.xml")]
    expected = [parse_data_cgx(page) for page in pages]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(parse_data_cgx, pages * 50))
    assert results == expected * 50


@pytest.mark.parametrize("section", ["tic1><BASE", "pince><INDEX1"])
def test_an_energy_index_too_large_for_wh_is_a_warning(section: str) -> None:
    # the parser before the rewrite let an OverflowError out here (round(inf))
    close = "</" + "></".join(reversed(section.split("><"))) + ">"
    snapshot = parse_data_cgx(f"<data><{section}>1.8e305{close}</data>")
    assert any("not an energy index: '1.8e305'" in w for w in snapshot.warnings)


# --------------------------------------------------------------------------- stock pages


@pytest.mark.parametrize("firmware", list(Firmware))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_stock_pages_read_back_as_the_snapshot(firmware: Firmware, data: st.DataObject) -> None:
    snapshot = data.draw(_snapshot(firmware))
    page = render_template(stock_template(firmware), snapshot_values(snapshot), firmware=firmware)
    parsed = parse_data_cgx(page.encode("utf-8"))
    assert parsed == snapshot
    assert parsed.warnings == ()
    assert list(parsed.extras) == []
    assert parse_data_cgx(page) == parsed
    _tree_and_events(page)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_compact_pages_read_back_as_the_snapshot(data: st.DataObject) -> None:
    snapshot = data.draw(_snapshot(Firmware.V084A10))
    body = render_template(compact_stock_template(), snapshot_values(snapshot))
    parsed = parse_compact(body.encode("utf-8"))
    assert parsed.warnings == ()
    assert parsed.complete
    assert parse_compact(body) == parsed
    # the compact template carries most of the page, and zeros for what the drawn
    # snapshot leaves unset (flows, clamp powers): every reading both have agrees
    poll = datetime(2030, 1, 1, tzinfo=PARIS)
    original = {r.path: (r.value, r.unit) for r in snapshot.readings(poll_time=poll)}
    compact = {r.path: (r.value, r.unit) for r in parsed.readings(poll_time=poll)}
    shared = original.keys() & compact.keys()
    assert len(shared) >= 50
    assert {path: compact[path] for path in shared} == {path: original[path] for path in shared}
