"""Wire primitives shared by Tonique's codecs: the codec's error, varints, zigzag, bit streams.

Pure, no I/O. Every reader raises :class:`PacketError` (never ``IndexError``,
``ValueError`` …) on short or malformed input.
"""

from __future__ import annotations

import enum
from typing import Final

from wesh.errors import DecodeError

__all__ = [
    "CHUNK_BYTES",
    "FRAGMENT_HEADER_BYTES",
    "MAX_FRAGMENTS",
    "MAX_VARINT_BITS",
    "SMS_BYTES",
    "SMS_CHARS",
    "BitReader",
    "BitWriter",
    "PacketError",
    "Reader",
    "Reason",
    "Writer",
    "unzigzag",
    "zigzag",
]

MAX_VARINT_BITS: Final = 64

#: SMS geometry shared by the packet's padding and the fragment layer (fragment.py)
SMS_CHARS: Final = 160
"""characters of one single GSM 7-bit SMS"""
SMS_BYTES: Final = SMS_CHARS // 2
"""bytes of one SMS in base16"""
FRAGMENT_HEADER_BYTES: Final = 3
CHUNK_BYTES: Final = SMS_BYTES - FRAGMENT_HEADER_BYTES
"""packet bytes in one fragment"""
MAX_FRAGMENTS: Final = 255


class Reason(enum.StrEnum):
    """Why a packet, fragment or block was rejected (receivers count them by reason)."""

    BAD_TEXT = "bad_text"
    """not base16, or empty"""
    BAD_FRAGMENT = "bad_fragment"
    """fragment header impossible (index >= count, count < 2)"""
    TOO_LARGE = "too_large"
    """over a size limit (packet, fragment count, decompressed block)"""
    TRUNCATED = "truncated"
    """shorter than its header and tag"""
    BAD_VERSION = "bad_version"
    """unknown protocol version"""
    BAD_TYPE = "bad_type"
    """unknown packet type, or a type that does not travel in that direction"""
    BAD_DIRECTION = "bad_direction"
    """a packet of the wrong direction for this receiver (a reflected packet)"""
    UNKNOWN_KEY = "unknown_key"
    """no key with the header's key id (unknown site)"""
    BAD_TAG = "bad_tag"
    """authentication failed: forged, bit-flipped, truncated, or sealed with another key"""
    REPLAY = "replay"
    """sequence number already seen, or older than the replay window"""
    BAD_PADDING = "bad_padding"
    """authenticated plaintext without its padding marker"""
    BAD_BODY = "bad_body"
    """authenticated body that does not parse (a sender bug)"""
    UNKNOWN_SCHEMA = "unknown_schema"
    """DATA for a channel schema the receiver does not know (ask for a SCHEMA packet)"""
    BAD_SCHEMA = "bad_schema"
    """a schema that does not parse or does not match its hash"""
    UNKNOWN_BASELINE = "unknown_baseline"
    """DATA with index deltas against a baseline the receiver does not have"""


class PacketError(DecodeError):
    """A packet, fragment or block the codec rejects; ``reason`` says why (:class:`Reason`)."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        host: str | None = None,
        channel: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {message}", host=host, channel=channel, where=where)
        self.reason = reason


def zigzag(value: int) -> int:
    """Map a signed integer to an unsigned one (0, -1, 1, -2 … → 0, 1, 2, 3 …)."""
    return value * 2 if value >= 0 else -value * 2 - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


class Writer:
    """Append-only byte buffer with big-endian integers, LEB128 varints and short strings."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        """Return what was written."""
        return bytes(self._buf)

    def raw(self, data: bytes) -> None:
        """Append bytes as they are."""
        self._buf += data

    def u8(self, value: int) -> None:
        """Append one byte."""
        self._buf.append(value)

    def uint(self, value: int, size: int) -> None:
        """Append an unsigned big-endian integer of ``size`` bytes."""
        self._buf += value.to_bytes(size, "big")

    def varint(self, value: int) -> None:
        """Append an unsigned LEB128 varint (``value`` < 2^64)."""
        if not 0 <= value < 1 << MAX_VARINT_BITS:
            raise ValueError(f"varint out of range: {value}")
        while value > 0x7F:
            self._buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self._buf.append(value)

    def svarint(self, value: int) -> None:
        """Append a signed varint (zigzag)."""
        self.varint(zigzag(value))

    def str8(self, text: str) -> None:
        """Append a UTF-8 string of at most 255 bytes, prefixed by its length."""
        data = text.encode("utf-8")
        if len(data) > 0xFF:
            raise ValueError(f"text longer than 255 bytes: {text[:20]!r}…")
        self._buf.append(len(data))
        self._buf += data


class Reader:
    """Reads what :class:`Writer` wrote; any short or malformed read is a :class:`PacketError`."""

    __slots__ = ("_data", "_pos", "_reason", "_what")

    def __init__(
        self, data: bytes, *, what: str = "body", reason: Reason = Reason.BAD_BODY
    ) -> None:
        self._data = data
        self._pos = 0
        self._what = what
        self._reason = reason

    @property
    def pos(self) -> int:
        """Bytes consumed so far."""
        return self._pos

    def remaining(self) -> int:
        """Bytes left."""
        return len(self._data) - self._pos

    def fail(self, message: str) -> PacketError:
        """Return (for the caller to raise) an error located at the current offset."""
        return PacketError(self._reason, f"{self._what}: {message}", where=f"byte {self._pos}")

    def raw(self, size: int) -> bytes:
        """Read ``size`` bytes."""
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise self.fail(f"needs {size} more bytes, has {self.remaining()}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def rest(self) -> bytes:
        """Read everything left."""
        return self.raw(self.remaining())

    def u8(self) -> int:
        """Read one byte."""
        if self._pos >= len(self._data):
            raise self.fail("ends early")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def uint(self, size: int) -> int:
        """Read an unsigned big-endian integer of ``size`` bytes."""
        return int.from_bytes(self.raw(size), "big")

    def varint(self) -> int:
        """Read an unsigned LEB128 varint (canonical, < 2^64)."""
        value = 0
        shift = 0
        while True:
            byte = self.u8()
            if shift >= MAX_VARINT_BITS or (shift == 63 and byte > 1):
                raise self.fail("varint too long")
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if byte == 0 and shift > 7:
                    raise self.fail("varint not in its shortest form")
                return value

    def svarint(self) -> int:
        """Read a signed (zigzag) varint."""
        return unzigzag(self.varint())

    def str8(self) -> str:
        """Read a length-prefixed UTF-8 string."""
        data = self.raw(self.u8())
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("text is not UTF-8") from None

    def end(self) -> None:
        """Require that everything was read."""
        if self._pos != len(self._data):
            raise self.fail(f"{self.remaining()} unexpected trailing bytes")


class BitWriter:
    """Big-endian bit stream writer (most significant bit first)."""

    __slots__ = ("_acc", "_nbits", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def bits(self, value: int, width: int) -> None:
        """Append the ``width`` low bits of ``value`` (``0 <= value < 2**width``)."""
        if width == 0:
            return
        self._acc = (self._acc << width) | value
        self._nbits += width
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def flag(self, value: bool) -> None:
        """Append one bit."""
        self.bits(1 if value else 0, 1)

    def uvar(self, value: int) -> None:
        """Append a variable-width unsigned integer: 6-bit bit length, then the bits."""
        if not 0 <= value < 1 << 63:
            raise ValueError(f"uvar out of range: {value}")
        length = value.bit_length()
        self.bits(length, 6)
        if length > 1:
            self.bits(value & ((1 << (length - 1)) - 1), length - 1)

    def svar(self, value: int) -> None:
        """Append a signed variable-width integer (zigzag, then :meth:`uvar`)."""
        self.uvar(zigzag(value))

    @property
    def bit_length(self) -> int:
        """Bits written so far."""
        return len(self._out) * 8 + self._nbits

    def getvalue(self) -> bytes:
        """Return the bytes, the last one padded with zero bits."""
        if self._nbits:
            return bytes(self._out) + bytes(((self._acc << (8 - self._nbits)) & 0xFF,))
        return bytes(self._out)


def uvar_bits(value: int) -> int:
    """Bits :meth:`BitWriter.uvar` takes for ``value``."""
    length = value.bit_length()
    return 6 + max(0, length - 1)


class BitReader:
    """Reads what :class:`BitWriter` wrote; reading past the end is a :class:`PacketError`."""

    __slots__ = ("_data", "_pos", "_total")

    def __init__(self, data: bytes) -> None:
        self._data = int.from_bytes(data, "big")
        self._total = len(data) * 8
        self._pos = 0

    def bits(self, width: int) -> int:
        """Read ``width`` bits as an unsigned integer."""
        if width == 0:
            return 0
        end = self._pos + width
        if end > self._total:
            raise PacketError(Reason.BAD_BODY, "bit stream ends early", where=f"bit {self._pos}")
        self._pos = end
        return (self._data >> (self._total - end)) & ((1 << width) - 1)

    def flag(self) -> bool:
        """Read one bit."""
        return self.bits(1) == 1

    def uvar(self) -> int:
        """Read a :meth:`BitWriter.uvar` integer."""
        length = self.bits(6)
        if length <= 1:
            return length
        return (1 << (length - 1)) | self.bits(length - 1)

    def svar(self) -> int:
        """Read a :meth:`BitWriter.svar` integer."""
        return unzigzag(self.uvar())

    def check_padding(self) -> None:
        """Require that fewer than 8 bits are left and that they are all zero."""
        left = self._total - self._pos
        if left >= 8 or self.bits(left) != 0:
            raise PacketError(Reason.BAD_BODY, "trailing bits in the bit stream")
