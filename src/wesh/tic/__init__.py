"""Enedis Téléinfo (TIC): decoder, label catalogue, typed values, encoder, serial reader.

This package imports nothing else of wesh but :mod:`wesh.errors`. Typical use::

    from wesh.tic import FrameDecoder, read_frame

    decoder = FrameDecoder()
    for frame in decoder.feed(chunk):
        reading = read_frame(frame)      # indexes_wh, apparent_power_va, tariff_period, ...
"""

from wesh.tic.decoder import DecoderStats, FrameDecoder, decode, parse_group
from wesh.tic.encoder import checksum, encode_frame, encode_group, make_group
from wesh.tic.horodate import PARIS, Horodate, format_horodate, parse_horodate
from wesh.tic.labels import Kind, LabelInfo, Unit, catalogue, lookup
from wesh.tic.meter import MeterReading, MeterState, read_frame
from wesh.tic.model import Frame, Group, Mode
from wesh.tic.serial import ReconnectPolicy, TicSerialReader
from wesh.tic.simulator import MeterProfile, TicMeterSimulator, add_noise
from wesh.tic.values import (
    DayProfile,
    MeterIdentity,
    PotentialPresence,
    Relays,
    StatusRegister,
    StatusWord,
    TariffOption,
    TariffPeriod,
    TempoColour,
    TicText,
    TicValue,
    Timed,
    decode_value,
)

__all__ = [
    "PARIS",
    "DayProfile",
    "DecoderStats",
    "Frame",
    "FrameDecoder",
    "Group",
    "Horodate",
    "Kind",
    "LabelInfo",
    "MeterIdentity",
    "MeterProfile",
    "MeterReading",
    "MeterState",
    "Mode",
    "PotentialPresence",
    "ReconnectPolicy",
    "Relays",
    "StatusRegister",
    "StatusWord",
    "TariffOption",
    "TariffPeriod",
    "TempoColour",
    "TicMeterSimulator",
    "TicSerialReader",
    "TicText",
    "TicValue",
    "Timed",
    "Unit",
    "add_noise",
    "catalogue",
    "checksum",
    "decode",
    "decode_value",
    "encode_frame",
    "encode_group",
    "format_horodate",
    "lookup",
    "make_group",
    "parse_group",
    "parse_horodate",
    "read_frame",
]
