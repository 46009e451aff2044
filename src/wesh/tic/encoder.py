"""TIC frame builder (encoder) for both modes, used by tests and simulators.

Wire format (one frame)::

    STX  group  group  ...  group  ETX            STX=0x02 ETX=0x03 (EOT=0x04 interrupts)

    historique group:   LF label SP data SP chk CR
                           |<-- zone -->|            chk covers label..data (first SP in,
                                                     last SP out)
    standard group:     LF label HT [horodate HT] data HT chk CR
                           |<------------ zone ------------>|   chk covers label..last HT

    chk = (sum(zone bytes) & 0x3F) + 0x20, always in 0x20..0x5F (it may be SP itself)

All characters are 7-bit ASCII; on the line each is sent 7E1 (the parity bit is the
8th bit when the port is opened 8N1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from wesh.errors import UsageError
from wesh.tic.model import Frame, Group, Mode

__all__ = [
    "CR",
    "EOT",
    "ETX",
    "LF",
    "STX",
    "checksum",
    "encode_frame",
    "encode_group",
    "make_group",
]

STX = 0x02
ETX = 0x03
EOT = 0x04
LF = 0x0A
CR = 0x0D

# The spec says "at most 8 characters" but its own standard table has SMAXSN1-1..3-1 (9).
_MAX_LABEL = 9


def checksum(zone: bytes) -> int:
    """Return the TIC checksum byte of a controlled zone: ``(sum & 0x3F) + 0x20``."""
    return (sum(zone) & 0x3F) + 0x20


_LABEL = re.compile(rf"[A-Z0-9+\-_]{{1,{_MAX_LABEL}}}")
_DATA = re.compile(r"[ -_]*")  # 0x20..0x5F: what the decoder trusts (see decoder.py)
_HORODATE = re.compile(r"[EHeh ][0-9]{12}")


def _check(label: str, value: str, mode: Mode, horodate: str | None) -> None:
    """Refuse what the decoder would not return as a valid group."""
    if not _LABEL.fullmatch(label):
        raise UsageError(
            f"TIC label must be 1 to {_MAX_LABEL} characters of A-Z 0-9 + - _", channel=label
        )
    if not _DATA.fullmatch(value):
        raise UsageError("TIC data must be ASCII 0x20..0x5F (no lower case)", channel=label)
    if mode is Mode.HISTORIQUE:
        if horodate is not None:
            raise UsageError("historique groups have no horodate", channel=label)
        if " " in value or not value:
            raise UsageError("historique data must be non-empty, without spaces", channel=label)
        return
    if horodate is not None and not _HORODATE.fullmatch(horodate):
        raise UsageError(f"bad horodate {horodate!r}", channel=label)
    if not value and horodate is None:
        raise UsageError("standard data may be empty only with a horodate", channel=label)
    if horodate is None and len(value) >= 13 and _HORODATE.match(value):
        raise UsageError("standard data must not start like a horodate", channel=label)


def _zone(label: str, value: str, mode: Mode, horodate: str | None) -> bytes:
    _check(label, value, mode, horodate)
    sep = chr(mode.separator)
    if mode is Mode.HISTORIQUE:
        text = f"{label}{sep}{value}"
    elif horodate is None:
        text = f"{label}{sep}{value}{sep}"
    else:
        text = f"{label}{sep}{horodate}{sep}{value}{sep}"
    return text.encode("ascii")


def make_group(label: str, value: str, *, mode: Mode, horodate: str | None = None) -> Group:
    """Build a valid :class:`Group` with its checksum, as the decoder would return it."""
    zone = _zone(label, value, mode, horodate)
    return Group(
        label=label,
        value=value,
        horodate=horodate,
        checksum=chr(checksum(zone)),
        checksum_ok=True,
        mode=mode,
    )


def encode_group(label: str, value: str, *, mode: Mode, horodate: str | None = None) -> bytes:
    """Encode one group, ``LF`` to ``CR`` inclusive, with a correct checksum."""
    zone = _zone(label, value, mode, horodate)
    tail = bytes((checksum(zone), CR))
    if mode is Mode.HISTORIQUE:
        return bytes((LF,)) + zone + bytes((mode.separator,)) + tail
    return bytes((LF,)) + zone + tail


def encode_frame(
    groups: Frame | Iterable[Group | tuple[str, str] | tuple[str, str, str | None]],
    *,
    mode: Mode | None = None,
) -> bytes:
    """Encode a whole frame, ``STX`` to ``ETX`` inclusive.

    ``groups`` is a decoded :class:`Frame` (its mode is used unless ``mode`` is given),
    or an iterable of :class:`Group` or ``(label, value[, horodate])`` tuples, in which
    case ``mode`` is required. Checksums are always recomputed.
    """
    if isinstance(groups, Frame):
        mode = mode or groups.mode
        items: Iterable[Group | tuple[str, str] | tuple[str, str, str | None]] = groups.groups
    else:
        items = groups
    if mode is None:
        raise UsageError("encode_frame needs a mode")
    out = bytearray((STX,))
    for item in items:
        if isinstance(item, Group):
            out += encode_group(item.label, item.value, mode=mode, horodate=item.horodate)
        elif len(item) == 2:
            out += encode_group(item[0], item[1], mode=mode)
        else:
            out += encode_group(item[0], item[1], mode=mode, horodate=item[2])
    out.append(ETX)
    return bytes(out)
