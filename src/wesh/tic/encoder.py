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


def _zone(label: str, value: str, mode: Mode, horodate: str | None) -> bytes:
    if not label or len(label) > _MAX_LABEL:
        raise UsageError(f"TIC label must have 1 to {_MAX_LABEL} characters", channel=label)
    sep = chr(mode.separator)
    if mode is Mode.HISTORIQUE:
        if horodate is not None:
            raise UsageError("historique groups have no horodate", channel=label)
        text = f"{label}{sep}{value}"
    elif horodate is None:
        text = f"{label}{sep}{value}{sep}"
    else:
        text = f"{label}{sep}{horodate}{sep}{value}{sep}"
    try:
        zone = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise UsageError("TIC text must be ASCII", channel=label) from exc
    forbidden = {STX, ETX, EOT, LF, CR}
    if any(b in forbidden for b in zone):
        raise UsageError("TIC text must not contain STX, ETX, EOT, LF or CR", channel=label)
    return zone


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
