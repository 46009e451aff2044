"""Tonique: the sync link between building gateways and headquarters.

Pieces (see ``docs/protocol.md``)::

    site agent ── readings ──▶ wesh.sync.readings (compact block)
                                  └─▶ wesh.sync.packet (seal: AES-CCM, per-site key)
                                        └─▶ wesh.sync.fragment (base16 SMS texts)
                                              └─▶ transport (gammu-smsd, MQTT, loopback)
    HQ receiver ◀── the same modules, in reverse ◀──┘

The codec modules (``packet``, ``crypto``, ``schema``, ``readings``, ``fragment``) are
pure: no I/O. Names are loaded on first use, so that importing :mod:`wesh.sync` stays
cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wesh.sync._wire import PacketError, Reason
    from wesh.sync.crypto import Direction, SeqReservation
    from wesh.sync.fragment import Reassembler, decode_text, fragment_packet, parts_for
    from wesh.sync.keys import KeyRing, SiteKey, generate_key, load_key
    from wesh.sync.packet import (
        AckMessage,
        AlarmMessage,
        AnyMessage,
        CommandOp,
        DataMessage,
        Header,
        IntervalTarget,
        OpenedPacket,
        PacketType,
        PartialAck,
        ReplayWindow,
        ReplyMessage,
        ReplyStatus,
        RequestSchema,
        RequestStatus,
        ResendSeqs,
        ResendTimes,
        SchemaMessage,
        SetClock,
        SetInterval,
        SetRelay,
        StatusMessage,
        open_packet,
        parse_header,
        seal_packet,
    )
    from wesh.sync.readings import (
        BaselineBook,
        BlockReading,
        Column,
        ReadingBlock,
        decode_block,
        encode_block,
        iter_readings,
        to_sync_readings,
    )
    from wesh.sync.schema import Schema, SchemaChannel, schema_from_config
    from wesh.sync.sink import (
        IngestResult,
        ReadingSink,
        SiteStatus,
        SqliteSink,
        SyncAlarm,
        SyncReading,
    )

__all__ = [
    "AckMessage",
    "AlarmMessage",
    "AnyMessage",
    "BaselineBook",
    "BlockReading",
    "Column",
    "CommandOp",
    "DataMessage",
    "Direction",
    "Header",
    "IngestResult",
    "IntervalTarget",
    "KeyRing",
    "OpenedPacket",
    "PacketError",
    "PacketType",
    "PartialAck",
    "ReadingBlock",
    "ReadingSink",
    "Reason",
    "Reassembler",
    "ReplayWindow",
    "ReplyMessage",
    "ReplyStatus",
    "RequestSchema",
    "RequestStatus",
    "ResendSeqs",
    "ResendTimes",
    "Schema",
    "SchemaChannel",
    "SchemaMessage",
    "SeqReservation",
    "SetClock",
    "SetInterval",
    "SetRelay",
    "SiteKey",
    "SiteStatus",
    "SqliteSink",
    "StatusMessage",
    "SyncAlarm",
    "SyncReading",
    "decode_block",
    "decode_text",
    "encode_block",
    "fragment_packet",
    "generate_key",
    "iter_readings",
    "load_key",
    "open_packet",
    "parse_header",
    "parts_for",
    "schema_from_config",
    "seal_packet",
    "to_sync_readings",
]

_HOME = {
    "PacketError": "_wire",
    "Reason": "_wire",
    "Direction": "crypto",
    "SeqReservation": "crypto",
    "Reassembler": "fragment",
    "decode_text": "fragment",
    "fragment_packet": "fragment",
    "parts_for": "fragment",
    "KeyRing": "keys",
    "SiteKey": "keys",
    "generate_key": "keys",
    "load_key": "keys",
    "AckMessage": "packet",
    "AlarmMessage": "packet",
    "AnyMessage": "packet",
    "CommandOp": "packet",
    "DataMessage": "packet",
    "Header": "packet",
    "IntervalTarget": "packet",
    "OpenedPacket": "packet",
    "PacketType": "packet",
    "PartialAck": "packet",
    "ReplayWindow": "packet",
    "ReplyMessage": "packet",
    "ReplyStatus": "packet",
    "RequestSchema": "packet",
    "RequestStatus": "packet",
    "ResendSeqs": "packet",
    "ResendTimes": "packet",
    "SchemaMessage": "packet",
    "SetClock": "packet",
    "SetInterval": "packet",
    "SetRelay": "packet",
    "StatusMessage": "packet",
    "open_packet": "packet",
    "parse_header": "packet",
    "seal_packet": "packet",
    "BaselineBook": "readings",
    "BlockReading": "readings",
    "Column": "readings",
    "ReadingBlock": "readings",
    "decode_block": "readings",
    "encode_block": "readings",
    "iter_readings": "readings",
    "to_sync_readings": "readings",
    "Schema": "schema",
    "SchemaChannel": "schema",
    "schema_from_config": "schema",
    "IngestResult": "sink",
    "ReadingSink": "sink",
    "SiteStatus": "sink",
    "SqliteSink": "sink",
    "SyncAlarm": "sink",
    "SyncReading": "sink",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'wesh.sync' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wesh.sync.{module}"), name)
