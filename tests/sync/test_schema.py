"""Channel schema: canonical text, hash, parsing refusals, building from weshd's configuration."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sync.codec_helpers import KEY_A, ring
from wesh.errors import UsageError
from wesh.gateway.config import config_from_text
from wesh.sync.packet import PacketError, Reason, open_packet, seal_packet
from wesh.sync.schema import Schema, SchemaChannel, schema_from_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gateway" / "good"

CHANNELS = [
    SchemaChannel("dw-02", "temp.1", "gauge", "°C", 0.1),
    SchemaChannel("dw-01", "tic.1.index.base", "index", "Wh", 1),
    SchemaChannel("dw-01", "impulsion.3.index", "index", "Wh", 1000),
    SchemaChannel("dw-01", "variable.1", "gauge", None, 0.001),
]


def test_canonical_text_and_hash_are_stable() -> None:
    schema = Schema(CHANNELS)
    assert schema.canonical() == (
        b"wesh-schema v1\n"
        b"dw-01\timpulsion.3.index\tindex\tWh\t1000\n"
        b"dw-01\ttic.1.index.base\tindex\tWh\t1\n"
        b"dw-01\tvariable.1\tgauge\t\t0.001\n"
        b"dw-02\ttemp.1\tgauge\t\xc2\xb0C\t0.1\n"
    )
    assert schema.hash == hashlib.sha256(schema.canonical()).digest()[:4]
    assert Schema(reversed(CHANNELS)).hash == schema.hash
    assert schema.index_of("dw-01", "tic.1.index.base") == 1
    assert schema.index_of("dw-09", "temp.1") is None
    assert [c.decimals for c in schema] == [0, 0, 3, 1]


def test_hash_is_pinned() -> None:
    # a change of the canonical form breaks every deployed site: it must be deliberate
    assert Schema(CHANNELS).hash.hex() == "239fca0b"


channel_strategy = st.builds(
    SchemaChannel,
    st.text("abcdefgh-0123456789", min_size=1, max_size=8),
    st.text("abcdefgh.0123456789", min_size=1, max_size=12),
    st.sampled_from(["index", "gauge"]),
    st.none() | st.sampled_from(["Wh", "L", "°C", "%", "A", "VA"]),
    st.sampled_from([0.001, 0.01, 0.1, 0.5, 1, 2.5, 10, 100, 1000]),
)


@given(st.lists(channel_strategy, max_size=30, unique_by=lambda c: (c.box, c.path)))
def test_canonical_round_trip(channels: list[SchemaChannel]) -> None:
    schema = Schema(channels)
    again = Schema.from_canonical(schema.canonical(), expected_hash=schema.hash)
    assert again == schema
    assert again.channels == schema.channels


@given(st.lists(channel_strategy, max_size=10, unique_by=lambda c: (c.box, c.path)))
def test_schema_packet_round_trip(channels: list[SchemaChannel]) -> None:
    schema = Schema(channels)
    packet = seal_packet(schema.to_message(), key=KEY_A, seq=1)
    message = open_packet(packet, keys=ring(KEY_A)).message
    assert Schema.from_message(message) == schema  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"wesh-schema v2\n",
        b"wesh-schema v1\nbox\tpath\tindex\tWh\n",
        b"wesh-schema v1\nbox\tpath\tcounter\tWh\t1\n",
        b"wesh-schema v1\nbox\tpath\tindex\tWh\t1",
        b"wesh-schema v1\nbox\tpath\tindex\tWh\t1.0\n",  # not canonical
        b"wesh-schema v1\nb\tp\tindex\tWh\t1\na\tp\tindex\tWh\t1\n",  # not sorted
        b"wesh-schema v1\na\tp\tindex\tWh\t1\na\tp\tindex\tWh\t1\n",  # duplicate
        b"wesh-schema v1\na\tp\tindex\tWh\t-1\n",
        b"wesh-schema v1\na\tp\tindex\tWh\tnan\n",
        b"wesh-schema v1\na\tp\tindex\tWh\t1e999\n",
        b"wesh-schema v1\n\xff\tp\tindex\tWh\t1\n",
    ],
)
def test_bad_schema_texts(text: bytes) -> None:
    with pytest.raises(PacketError) as info:
        Schema.from_canonical(text)
    assert info.value.reason is Reason.BAD_SCHEMA


def test_hash_mismatch() -> None:
    schema = Schema(CHANNELS)
    with pytest.raises(PacketError) as info:
        Schema.from_canonical(schema.canonical(), expected_hash=b"\x00\x00\x00\x00")
    assert info.value.reason is Reason.BAD_SCHEMA


@pytest.mark.parametrize(
    "channel",
    [
        ("b\tx", "p", "index", None, 1),
        ("b", "", "index", None, 1),
        ("b", "p", "state", None, 1),
        ("b", "p", "gauge", None, 0),
        ("b", "p", "gauge", None, float("inf")),
        ("b", "p", "gauge", "a\nb", 1),
    ],
)
def test_bad_channels(channel: tuple[object, ...]) -> None:
    with pytest.raises(UsageError):
        SchemaChannel(*channel)  # type: ignore[arg-type]


def test_duplicate_channels() -> None:
    with pytest.raises(UsageError):
        Schema([CHANNELS[0], CHANNELS[0]])


CONFIG = """
[site]
id = "b001"
name = "Bâtiment 1"

[[boxes]]
id = "dw-01"
serves = "logement-01"
host = "127.0.0.1"
pulse_units = {3 = "kWh"}

[[boxes.channels]]
path = "tic.1.index.base"
meaning = "electricity"

[[boxes.channels]]
path = "tic.1.power_va"
meaning = "power"

[[boxes.channels]]
path = "impulsion.1.index"
meaning = "cold_water"
unit = "m3"
multiplier = 0.01

[[boxes.channels]]
path = "impulsion.2.index"
meaning = "hot_water"
multiplier = 10
unit = "L"

[[boxes.channels]]
path = "impulsion.3.index"
meaning = "heat"

[[boxes.channels]]
path = "temp.1"
meaning = "temperature"

[[boxes.channels]]
path = "temp.2"
meaning = "humidity"
unit = "%"

[[boxes.channels]]
path = "relais.1"
meaning = "state"

[[boxes]]
id = "dw-02"
serves = "logement-02"
host = "127.0.0.2"
enabled = false

[[boxes.channels]]
path = "temp.1"
meaning = "temperature"
"""


def test_schema_from_config() -> None:
    config = config_from_text(CONFIG)
    schema = schema_from_config(config, resolutions={"dw-01/temp.1": 0.5})
    got = {c.path: (c.kind, c.unit, c.resolution) for c in schema}
    assert got == {
        "tic.1.index.base": ("index", "Wh", 1),
        "tic.1.power_va": ("gauge", "VA", 10),
        "impulsion.1.index": ("index", "L", 1),
        "impulsion.2.index": ("index", "L", 10),
        "impulsion.3.index": ("index", "Wh", 1),
        "temp.1": ("gauge", "°C", 0.5),
        "temp.2": ("gauge", "%", 0.1),
    }
    assert {c.box for c in schema} == {"dw-01"}  # disabled box left out, relay left out
    extra = SchemaChannel("dw-01", "pince.1.current", "gauge", "A", 0.01)
    assert len(schema_from_config(config, extra=[extra])) == 8


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.toml")), ids=lambda p: p.name)
def test_schema_from_every_good_config_fixture(path: Path) -> None:
    config = config_from_text(path.read_text(encoding="utf-8"), base_dir=path.parent)
    schema = schema_from_config(config)
    assert Schema.from_canonical(schema.canonical()) == schema
