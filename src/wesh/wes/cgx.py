r"""The CGX template language of the WES (Keil RL-TCPnet CGI scripts, wes.md §4).

A template is read line by line; the first character of a line says what to do::

    # comment                         nothing is sent
    t <text>                          <text> is sent, then a newline
    i <file>                          the file is sent verbatim (not interpreted)
    c <code>[ ]<printf format>        the value(s) of <code> are printed with the format
    .                                 end of the script; the rest is ignored

For example ``c P A1 <I1>%.02f</I1>`` prints clamp 1's current as ``<I1>3.42</I1>``.
Codes are looked up in :mod:`wesh.wes.codes` (longest known prefix, inner space
optional, TAB = space); formats follow C ``printf``, including its garbage when the
format does not match the C type of the value (:func:`format_c`).

Choices where the reference is silent (wes.md [?]): a command whose code is unknown, or
for which no value is supplied, prints nothing; one space between the code and the
format is dropped; every emitted line ends with ``\n``; blank lines are ignored.

The module also defines the **compact template** format, for a client that uploads its
own small template by FTP and polls it (:func:`compact_template`; parse the result with
:func:`wesh.wes.datacgx.parse_compact`)::

    wesh-compact 1                     header (a ``t`` line)
    <key>=<value>                      one line per code; key = the code without spaces
    ...                                (``PA1=3.420``, ``hd=21/11/25``, ``PPT=120 0 0 0``)
    wesh-end                           trailer: its absence means the body was cut short
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from wesh.errors import DecodeError, UsageError
from wesh.wes.codes import CodeInfo, codes_for, match_code
from wesh.wes.model import Firmware

__all__ = [
    "COMPACT_CODES",
    "COMPACT_HEADER",
    "COMPACT_TRAILER",
    "CgxLine",
    "LineKind",
    "build_template",
    "compact_template",
    "default_format",
    "format_c",
    "parse_template",
    "render_template",
    "stock_template",
]

LineKind = Literal["comment", "text", "include", "command", "end"]
Values = Callable[[str], tuple[object, ...] | None] | Mapping[str, object]

MAX_TEMPLATE_CHARS = 256 * 1024
MAX_LINE_CHARS = 4096
#: printf width and precision are capped so that a hostile format cannot exhaust memory
MAX_FIELD_WIDTH = 512

COMPACT_HEADER = "wesh-compact 1"
COMPACT_TRAILER = "wesh-end"

_TEMPLATE_FILES = {Firmware.V083H: "DATA_V083H.CGX", Firmware.V084A10: "DATA_V084A10.CGX"}


@dataclass(frozen=True, slots=True)
class CgxLine:
    """One parsed template line.

    ``text`` is the payload: the comment, the text to send, the file to include, or the
    whole command text (``"P A1 <I1>%.02f</I1>"``). For commands, ``code`` is the matched
    canonical code (``"P A1"``; ``None`` if unknown) and ``fmt`` the printf format.
    """

    kind: LineKind
    text: str = ""
    code: str | None = None
    fmt: str | None = None
    lineno: int = 0

    def dump(self) -> str:
        """Return the template source of this line (without the newline)."""
        if self.kind == "comment":
            return f"#{self.text}"
        if self.kind == "text":
            return f"t {self.text}"
        if self.kind == "include":
            return f"i {self.text}"
        if self.kind == "end":
            return "."
        if self.code is not None and self.fmt is not None:
            return f"c {self.code} {self.fmt}" if self.fmt else f"c {self.code}"
        return f"c {self.text}"


# --------------------------------------------------------------------------- printf

_SPEC_RE = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?"
    r"(?P<length>hh|h|ll|l|L|q|j|z|t)?(?P<conv>[diouxXeEfFgGaAcspn%])"
)
_INT_BITS = {"hh": 8, "h": 16, "ll": 64, "q": 64, "L": 64}
#: what a ``char*`` looks like when printed as a number: an address in Cortex-M SRAM
_POINTER = 0x2000_0000


def _as_int(value: object) -> int:
    """Return the integer C would see for ``value`` passed where an int is expected."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # AAPCS: a double occupies two words; an int conversion reads the low word
        return int(struct.unpack("<Q", struct.pack("<d", value))[0] & 0xFFFF_FFFF)
    if value is None:
        return 0
    return _POINTER


def _as_float(value: object) -> float:
    """Return the double C would see for ``value`` passed where a double is expected."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool | int):
        bits = int(value) & 0xFFFF_FFFF
    elif value is None:
        bits = 0
    else:
        bits = _POINTER
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def _wrap(value: int, bits: int, *, signed: bool) -> int:
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _pad(body: str, width: int, flags: str, *, sign_len: int = 0, zero_ok: bool = True) -> str:
    if len(body) >= width:
        return body
    if "-" in flags:
        return body.ljust(width)
    if "0" in flags and zero_ok:
        return body[:sign_len] + body[sign_len:].rjust(width - sign_len, "0")
    return body.rjust(width)


def _format_int(value: int, conv: str, flags: str, width: int, prec: int | None) -> str:
    negative = value < 0
    magnitude = -value if negative else value
    if conv in "di":
        digits = str(magnitude)
        sign = "-" if negative else "+" if "+" in flags else " " if " " in flags else ""
    elif conv == "o":
        digits = format(magnitude, "o")
        sign = ""
    elif conv in "xX":
        digits = format(magnitude, conv)
        sign = "0x" if "#" in flags and magnitude and conv == "x" else ""
        sign = "0X" if "#" in flags and magnitude and conv == "X" else sign
    else:  # u
        digits = str(magnitude)
        sign = ""
    if prec is not None:
        digits = "" if prec == 0 and magnitude == 0 else digits.rjust(prec, "0")
    if conv == "o" and "#" in flags and not digits.startswith("0"):
        digits = "0" + digits
    return _pad(sign + digits, width, flags, sign_len=len(sign), zero_ok=prec is None)


def _format_float(value: float, conv: str, flags: str, width: int, prec: int | None) -> str:
    if conv in "aA":
        text = value.hex() if math.isfinite(value) else str(value)
        text = text.upper() if conv == "A" else text
        return _pad(text, width, flags)
    precision = 6 if prec is None else prec
    finite = math.isfinite(value)
    safe_flags = flags if finite else flags.replace("0", "")
    spec = f"%{safe_flags}{width or ''}.{precision}{conv}"
    return spec % value


def _format_one(spec: re.Match[str], args: list[object]) -> str:
    """Render one conversion, consuming arguments from ``args`` (missing → 0/NULL)."""
    flags, conv, length = spec["flags"], spec["conv"], spec["length"] or ""

    def take() -> object:
        return args.pop(0) if args else None

    width = 0
    if spec["width"] == "*":
        star = _wrap(_as_int(take()), 32, signed=True)
        if star < 0:
            flags += "-"
        width = abs(star)
    elif spec["width"]:
        width = int(spec["width"])
    prec: int | None = None
    if spec["prec"] is not None:
        if spec["prec"] == "*":
            star = _wrap(_as_int(take()), 32, signed=True)
            prec = star if star >= 0 else None
        else:
            prec = int(spec["prec"] or "0")
    width = min(width, MAX_FIELD_WIDTH)
    prec = None if prec is None else min(prec, MAX_FIELD_WIDTH)
    if conv == "%":
        return "%"
    arg = take()
    if conv == "n":
        return ""
    if conv in "diouxX":
        bits = _INT_BITS.get(length, 32)
        value = _wrap(_as_int(arg), bits, signed=conv in "di")
        return _format_int(value, conv, flags, width, prec)
    if conv in "eEfFgGaA":
        return _format_float(_as_float(arg), conv, flags, width, prec)
    if conv == "c":
        char = arg[:1] if isinstance(arg, str) and arg else chr(_as_int(arg) & 0xFF)
        return _pad(char, width, flags, zero_ok=False)
    if conv == "p":
        return _pad(f"0x{_as_int(arg) & 0xFFFF_FFFF:x}", width, flags, zero_ok=False)
    # s
    if isinstance(arg, str):
        text = arg
    elif arg is None or arg == 0:
        text = "(null)"
    else:
        text = "?"
    if prec is not None:
        text = text[:prec]
    return _pad(text, width, flags, zero_ok=False)


def format_c(fmt: str, args: tuple[object, ...] | list[object]) -> str:
    """Format like C ``printf`` on the WES (32-bit ARM), never raising.

    Supports flags ``-+ #0``, width and precision (also ``*``), length modifiers
    (``hh h l ll L q j z t``; ``l`` is 32 bits as on ARM) and conversions
    ``d i o u x X e E f F g G a A c s p n %``. As on the device, a value of the wrong
    type prints garbage: a double read as an int gives the low word of its IEEE bits,
    an int read as a double gives a denormal (prints ``0.000``), a missing argument
    reads as 0 (``(null)`` for ``%s``), a number read as ``%s`` prints ``?``. An
    incomplete conversion is copied literally; extra arguments are ignored.
    """
    pending = list(args)
    return "".join(
        part if isinstance(part, str) else _format_one(part, pending) for part in _compile(fmt)
    )


@functools.lru_cache(maxsize=4096)
def _compile(fmt: str) -> tuple[str | re.Match[str], ...]:
    """Split a format into literal text and conversion specifications (cached)."""
    parts: list[str | re.Match[str]] = []
    pos = 0
    while True:
        percent = fmt.find("%", pos)
        if percent < 0:
            parts.append(fmt[pos:])
            return tuple(parts)
        parts.append(fmt[pos:percent])
        spec = _SPEC_RE.match(fmt, percent)
        if spec is None:
            parts.append("%")
            pos = percent + 1
            continue
        parts.append(spec)
        pos = spec.end()


def default_format(info: CodeInfo) -> str:
    """Return a printf format matching the C types of a code (used by compact templates)."""
    if info.code in ("g d", "h d"):
        return "%02d/%02d/%02d"
    if info.code == "h h":
        return "%02d:%02d"
    if info.code == "r a":
        return "%02X" * 6
    if info.ctypes == ("int", "float"):
        return "%d.%03.0f"
    if info.code.startswith("pIU"):
        return "%.0f"
    by_type = {"int": "%d", "float": "%.03f", "str": "%s", "block": "%s"}
    return " ".join(by_type[ctype] for ctype in info.ctypes)


# --------------------------------------------------------------------------- templates


def parse_template(text: str, *, firmware: Firmware | None = None) -> list[CgxLine]:
    """Parse a CGX template into lines (stops at the ``.`` line).

    Raises:
        DecodeError: a line starts with an unknown character, a ``t``/``c``/``i`` letter
            is not followed by a space, a command or include is empty, or the template
            or a line is too long. ``where`` gives the line number.
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        raise DecodeError(f"template larger than {MAX_TEMPLATE_CHARS} characters")
    text = text.removeprefix("\ufeff")
    lines: list[CgxLine] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        where = f"line {lineno}"
        if len(line) > MAX_LINE_CHARS:
            raise DecodeError(f"template line longer than {MAX_LINE_CHARS}", where=where)
        if not line.strip():
            continue
        kind = line[0]
        if kind == "#":
            lines.append(CgxLine("comment", line[1:], lineno=lineno))
            continue
        if kind == ".":
            lines.append(CgxLine("end", line[1:], lineno=lineno))
            break
        if kind not in "tic":
            raise DecodeError(f"unknown CGX line type {kind!r}", where=where)
        if len(line) > 1 and line[1] not in " \t":
            raise DecodeError(f"a space must follow {kind!r}: {line[:20]!r}", where=where)
        payload = line[2:]
        if kind == "t":
            lines.append(CgxLine("text", payload, lineno=lineno))
        elif kind == "i":
            if not payload.strip():
                raise DecodeError("include without a file name", where=where)
            lines.append(CgxLine("include", payload.strip(), lineno=lineno))
        else:
            if not payload.strip():
                raise DecodeError("command without a code", where=where)
            found = match_code(payload, firmware=firmware)
            if found is None:
                lines.append(CgxLine("command", payload, lineno=lineno))
            else:
                info, fmt = found
                lines.append(CgxLine("command", payload, info.code, fmt, lineno=lineno))
    return lines


def _lookup(values: Values, code: str) -> tuple[object, ...] | None:
    if callable(values):
        return values(code)
    if code not in values:
        return None
    value = values[code]
    if value is None:
        return None
    return value if isinstance(value, tuple) else (value,)


def render_template(
    template: str | list[CgxLine],
    values: Values,
    *,
    include: Callable[[str], str] | None = None,
    firmware: Firmware | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> str:
    """Render a template as the WES would.

    Args:
        template: the template text, or lines from :func:`parse_template`.
        values: ``code → tuple of values`` (a mapping, or a callable returning ``None``
            for an unknown code); a mapping may hold a bare value for one-value codes.
        include: returns the text of an included file (``None``: includes print nothing).
        firmware: the catalogue used to read codes and their C types.
        on_warning: called with a message for each unknown code, missing value or
            missing include.

    Raises:
        DecodeError: the template text is malformed (see :func:`parse_template`).
    """
    lines = parse_template(template, firmware=firmware) if isinstance(template, str) else template
    catalogue = codes_for(firmware)
    out: list[str] = []

    def warn(message: str) -> None:
        if on_warning is not None:
            on_warning(message)

    for line in lines:
        if line.kind == "end":
            break
        if line.kind == "text":
            out.append(line.text + "\n")
        elif line.kind == "include":
            if include is None:
                warn(f"line {line.lineno}: include {line.text!r} not available")
            else:
                out.append(include(line.text))
        elif line.kind == "command":
            info = catalogue.get(line.code) if line.code is not None else None
            if info is None or line.fmt is None:
                warn(f"line {line.lineno}: unknown code in {line.text[:30]!r}")
                continue
            args = _lookup(values, info.code)
            if args is None:
                warn(f"line {line.lineno}: no value for code {info.code!r}")
                continue
            if info.ctypes == ("block",) and not line.fmt.strip():
                out.append(str(args[0]) if args else "")
            else:
                out.append(format_c(line.fmt, args) + "\n")
    return "".join(out)


def build_template(
    items: Iterable[CgxLine | str | tuple[str, str]],
    *,
    firmware: Firmware | None = None,
) -> str:
    """Write a template from text lines and ``(code, format)`` commands.

    A ``str`` item becomes a ``t`` line, a ``(code, fmt)`` pair a ``c`` line; a
    :class:`CgxLine` is written back as it is. A final ``.`` line is added.

    Raises:
        UsageError: an item holds a newline, or a code is unknown to the catalogue.
    """
    out: list[str] = []
    for item in items:
        if isinstance(item, CgxLine):
            line = item.dump()
        elif isinstance(item, str):
            line = f"t {item}"
        else:
            code, fmt = item
            if match_code(code, firmware=firmware) is None:
                raise UsageError(f"unknown CGX code {code!r}", channel=code)
            line = f"c {code} {fmt}"
        if "\n" in line or "\r" in line:
            raise UsageError(f"template line holds a newline: {line[:30]!r}")
        out.append(line)
        if isinstance(item, CgxLine) and item.kind == "end":
            break
    if not out or out[-1] != ".":
        out.append(".")
    return "\n".join(out) + "\n"


#: The codes of the stock compact template (``templates/COMPACT.CGX``, firmware ≥ V0.84A10).
COMPACT_CODES: tuple[str, ...] = (
    "g d",
    "h h",
    "v v",
    "r a",
    *(
        code
        for n in (1, 2)
        for code in (
            f"ea{n}",
            f"eo{n}",
            f"eS{n}",
            f"Tn{n}",
            f"ip{n}",
            f"ij{n}",
            f"ii{n}0",
            f"ii{n}1",
            f"ii{n}2",
            f"ii{n}3",
            f"iu{n}1",
            f"iu{n}2",
            f"iu{n}3",
            f"TD{n}",
            f"Tb{n}1",
            f"TC{n}",
            f"TP{n}",
            f"Tj{n}1",
            f"Tj{n}2",
            *(f"Tr{n}{k}" for k in range(1, 7)),
            f"TJ{n}",
        )
    ),
    *(code for n in range(1, 5) for code in (f"pp{n}", f"pIU{n}", f"pd{n}")),
    *(code for n in range(1, 5) for code in (f"P A{n}", f"P W{n}", f"PPi{n}", f"P P{n}")),
    "PPT",
    "PVV",
    *(f"W0T{y}" for y in range(10)),
    "o R1",
    "o R2",
    "l E1",
    "l E2",
    "la",
    *(f"lSE{n}" for n in range(1, 9)),
    *(f"Vv{n}" for n in range(1, 9)),
)


def compact_template(
    codes: Iterable[str] = COMPACT_CODES, *, firmware: Firmware | None = None
) -> str:
    """Write a compact template: one ``key=value`` line per code (see the module doc).

    Raises:
        UsageError: a code is unknown to the catalogue of ``firmware``.
    """
    catalogue = codes_for(firmware)
    items: list[str | tuple[str, str]] = [COMPACT_HEADER]
    for code in codes:
        info = catalogue.get(code)
        if info is None:
            raise UsageError(f"unknown CGX code {code!r}", channel=code)
        if info.ctypes == ("block",):
            raise UsageError(f"code {code!r} prints an XML block, not a value", channel=code)
        items.append((code, f"{code.replace(' ', '')}={default_format(info)}"))
    items.append(COMPACT_TRAILER)
    header = (
        "# wesh compact template: one key=value line per code; read it with wesh.wes.parse_compact"
    )
    return f"{header}\n" + build_template(items, firmware=firmware)


def stock_template(firmware: Firmware) -> str:
    """Return the stock ``DATA.CGX`` of a firmware family (package data, reconstructed)."""
    name = _TEMPLATE_FILES[Firmware(firmware)]
    return resources.files("wesh.wes").joinpath("templates", name).read_text(encoding="utf-8")


def compact_stock_template() -> str:
    """Return the example compact template shipped as ``templates/COMPACT.CGX``."""
    path = resources.files("wesh.wes").joinpath("templates", "COMPACT.CGX")
    return path.read_text(encoding="utf-8")
