"""Parse a WES ``data.cgx`` page (and compact template output) into a :class:`WesSnapshot`.

The page is XML produced line by line from a template (wes.md §2.3)::

    <?xml version="1.0" encoding="utf-8" ?>
    <data>                                   root (any name accepted, with a warning)
      <info> <date>21/11/25</date> <time>14:07</time> <firmware>V0.84A10</firmware> ...
      <tic1> <ADCO>…</ADCO> <PTEC>H. Pleines</PTEC> <PAP>1840</PAP> <H_CREUSE>…</H_CREUSE> …
      <impulsion> <PULSE1>1353</PULSE1> <INDEX1>1234.567</INDEX1> …
      <pince> <I1>3.42</I1> <INDEX1>271.317</INDEX1> … <V>235</V>
      <temp> <SONDE1>19.8</SONDE1> …   <relais> <RELAIS1>ON</RELAIS1> …   <relais1W> …
      <entree> …  <analogique> …  <switch_virtuel> …  <variables> …
    </data>

Only values at depth three (root / section / element) are read; there are no attributes.

Device data is untrusted. The XML is parsed by lxml with entity resolution, DTD loading
and network access off; any ``<!DOCTYPE``/``<!ENTITY`` declaration or undeclared entity
reference is refused, the body is capped at ``max_bytes`` and each value at
:data:`MAX_TEXT` characters. A well-formed page (the usual case) is parsed by one lxml
call and its tree walked once; any other body goes through lxml's incremental parser,
which tells a truncated body from a malformed one. The only exception that leaves this module is
:class:`~wesh.errors.DecodeError`, for: a body too large, a DTD, malformed XML (with line
and column), or a document with no value at all.

Everything else is tolerated and reported in ``WesSnapshot.warnings``: a **truncated**
document (the XML is well formed up to the point where the body ends) keeps every element
closed before the cut, sets ``complete=False`` and says where it stopped; a duplicated
element keeps the first value; an unknown element is kept in ``extras``; a value that is
not a number where one is expected becomes ``None``. Placeholders (``Pas Dispo``,
``TIC NDERR.``, ``----``, ``.``, empty) become ``None`` without a warning.
"""

from __future__ import annotations

import codecs
import functools
import logging
import math
import re
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from wesh.errors import DecodeError
from wesh.wes.codes import CodeInfo, codes_for
from wesh.wes.model import (
    PARIS,
    Clamp,
    Firmware,
    PulseCounter,
    Quantity,
    TicMeter,
    WesInfo,
    WesSnapshot,
)

__all__ = [
    "MAX_TEXT",
    "PLACEHOLDERS",
    "parse_compact",
    "parse_data_cgx",
    "period_code",
    "snapshot_values",
    "tomorrow_code",
]

logger = logging.getLogger(__name__)

#: Longest value text kept; longer values are cut (with a warning).
MAX_TEXT = 256
#: At most this many warnings are kept per document (then one "suppressed" line).
MAX_WARNINGS = 100
#: Texts the box prints for an absent value (compared case-insensitively, stripped).
PLACEHOLDERS = frozenset({"", "pas dispo", "tic nderr.", "----", ".", "--", "-", "n/a"})

#: encodings accepted in the XML declaration (others are read as UTF-8, with a warning)
_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "latin-1",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-15": "iso8859-15",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
}
_DTD_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_ENTITY_RE = re.compile(r"&(?!(?:amp|lt|gt|quot|apos);|#[0-9]+;|#x[0-9a-fA-F]+;)")
_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NUMBER_RE = re.compile(
    r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?)\s*([^\d\s.].{0,20}?)?\s*$"
)
_POWER_RE = re.compile(r"^\s*(\d+)\s*W\s+cos\s*phi\s*([-+]?\d*\.?\d+)\s*$", re.IGNORECASE)
_NUMBERED_RE = re.compile(r"^([A-Za-z_]+?)(\d{1,9})$")
_DATE_RE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s*$")
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_MAC_SEPARATORS_RE = re.compile(r"[\s:.-]")
_MAC_RE = re.compile(r"[0-9A-F]{12}")

#: TIC index elements → normalised names (both firmware spellings)
_TIC_INDEXES = {
    "BASE": "base",
    "HCHC": "hchc",
    "H_CREUSE": "hchc",
    "HCHP": "hchp",
    "H_PLEINE": "hchp",
    "EJPHN": "ejphn",
    "EJPHPM": "ejphpm",
    "BBRHCJB": "bbrhcjb",
    "BBRHPJB": "bbrhpjb",
    "BBRHCJW": "bbrhcjw",
    "BBRHPJW": "bbrhpjw",
    "BBRHCJR": "bbrhcjr",
    "BBRHPJR": "bbrhpjr",
    "INJECTION": "injection",
    "H_WEEKEND": "h_weekend",
    "HC_SEMAINE": "hc_semaine",
    "HP_SEMAINE": "hp_semaine",
    "HC_WEEKEND": "hc_weekend",
    "HP_WEEKEND": "hp_weekend",
    "HC_MERCREDI": "hc_mercredi",
    "HP_MERCREDI": "hp_mercredi",
    "H_SUPER_CREUSE": "h_super_creuse",
}
#: upper-case TIC elements that are not indexes (skipped without a case-insensitive lookup)
_TIC_OTHERS = frozenset(
    {"ADCO", "OPTARIF", "ISOUSC", "PTEC", "PAP", "PAPIJ", "PEJP", "DEMAIN", "PRODUCTEUR"}
    | {"IINST", "IINST1", "IINST2", "IINST3", "IMAX", "IMAX1", "IMAX2", "IMAX3"}
    | {"TENSION1", "TENSION2", "TENSION3"}
)
#: elements known but not modelled: kept in ``extras`` without a warning
_KNOWN_EXTRAS = {
    "tic": {
        "CONSO_JOUR",
        "COUT_JOUR",
        "CONSO_MOIS",
        "COUT_MOIS",
        "CONSO_ANNEE",
        "COUT_ANNEE",
        "PRODUCTION",
        "CAPTION",
    },
    "pince": {
        "MODINJECT",
        "CONSO_JOUR",
        "CONSO_MOIS",
        "CONSO_ANNEE",
        "COUT_JOUR",
        "COUT_MOIS",
        "COUT_ANNEE",
        "INJEC_JOUR",
        "INJEC_MOIS",
        "INJEC_ANNEE",
        "GAIN_JOUR",
        "GAIN_MOIS",
        "GAIN_ANNEE",
        "MAX_JOUR",
        "MAX_MOIS",
        "MAX_ANNEE",
    },
    "jeedom": {"CGXVERSION"},
}
_SECTIONS = frozenset(
    {
        "info",
        "tic1",
        "tic2",
        "tic3",
        "impulsion",
        "pince",
        "temp",
        "relais",
        "relais1W",
        "entree",
        "analogique",
        "switch_virtuel",
        "variables",
        "jeedom",
    }
)

_PERIOD_RAW = {
    "TH": "BASE",
    "HC": "HC",
    "HP": "HP",
    "HN": "HN",
    "PM": "PM",
    **{code: code for code in ("HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR")},
}
_COLOURS = (("BLEU", "B"), ("BLANC", "W"), ("ROUGE", "R"))

# units accepted after a number, lower-cased
#: units a pulse counter may print after its index or consumptions
_PULSE_UNITS = frozenset({"l", "m3", "m³", "wh", "kwh"})
_ENERGY_UNITS = frozenset({"wh", "kwh"})
_AMPS = frozenset({"a"})
_VOLTS = frozenset({"v"})
_VA = frozenset({"va"})
_WATTS = frozenset({"w"})
_GB = frozenset({"go", "gb"})
_CELSIUS = frozenset({"°c", "c", "%"})
#: a text made of these only is a plain number for float() or not a number at all
_PLAIN_NUMBER_CHARS = "0123456789.+-"
#: decimal digits up to this count are exact as a float
_EXACT_DIGITS = 15
_ON = frozenset({"ON", "1", "CHECKED", "TRUE"})
_OFF = frozenset({"OFF", "0", "FALSE"})
_IINST = ("IINST", "IINST1", "IINST2", "IINST3")
_IMAX = ("IMAX", "IMAX1", "IMAX2", "IMAX3")
_TENSION = ("TENSION1", "TENSION2", "TENSION3")
_IINST_NAMES = frozenset({"IINST", "IINST1"})
_IMAX_NAMES = frozenset({"IMAX", "IMAX1"})
_SINGLE_PHASE_NAMES = _IINST_NAMES | _IMAX_NAMES | {"TENSION1"}
#: a numbered group is a pulse counter / a clamp if it holds one of these
_PULSE_KEYS = frozenset({"PULSE", "INDEX", "DEBIT", "CONSO_JOUR"})
_PULSE_EXTRAS = frozenset(
    {"DEBIT", "CONSO_JOUR", "CONSO_VEILLE", "CONSO_MOIS", "CONSO_ANNEE"}
    | {"COUT_JOUR", "COUT_MOIS", "COUT_ANNEE"}
)
_CLAMP_KEYS = frozenset({"I", "INDEX", "INJECT", "PUISSANCE", "WATT"})
# sanity bounds: a value outside them is garbage (a format not matching the C type)
_MAX_INDEX_WH = 10**12
_MAX_POWER_VA = 10**6


def period_code(text: str | None) -> str | None:
    """Normalise a period (``PTEC``) text to a TIC-like code.

    ``H. Creuses`` → ``HC``, ``H. Pleines`` → ``HP``, ``H. Creuse BLEU`` → ``HCJB``,
    ``H. Pleine ROUGE`` → ``HPJR``; raw TIC codes (``TH..``, ``HC..``, ``HN..``,
    ``PM..``, ``HCJB``) map to ``BASE``/``HC``/``HP``/``HN``/``PM``/``HCJB``; texts for
    BASE and EJP are guesses (wes.md [?]): ``Toutes heures``/``Base`` → ``BASE``,
    ``H. Normales`` → ``HN``, ``H. Pointe mobile`` → ``PM``. Unknown → ``None``.
    """
    if text is None:
        return None
    upper = text.strip().upper()
    raw = upper.rstrip(". ")
    if raw in _PERIOD_RAW:
        return _PERIOD_RAW[raw]
    colour = None
    for word, letter in _COLOURS:
        if word in upper:
            colour = letter
            break
    if "SUPER" in upper and "CREUSE" in upper:
        return "HSC"
    if "CREUSE" in upper:
        return f"HCJ{colour}" if colour else "HC"
    if "PLEINE" in upper:
        return f"HPJ{colour}" if colour else "HP"
    if "NORMAL" in upper:
        return "HN"
    if "POINTE" in upper:
        return "PM"
    if "TOUTES" in upper or upper == "BASE":
        return "BASE"
    return None


def tomorrow_code(text: str | None) -> str | None:
    """``Jour BLEU`` → ``BLEU`` (likewise ``BLANC``, ``ROUGE``); anything else → ``None``."""
    if text is None:
        return None
    upper = text.upper()
    return next((word for word, _ in _COLOURS if word in upper), None)


# --------------------------------------------------------------------------- collection

#: Parser of device XML, built once (lxml locks it per parse, so threads may share it):
#: entities unexpanded, no DTD, no network, libxml2's text and depth limits on.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


@dataclass
class _Doc:
    """Values read from one document, before interpretation."""

    leaves: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, str] = field(default_factory=dict)
    complete: bool = True
    dropped: int = 0

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.dropped += 1

    def add(self, section: str, element: str, text: str) -> None:
        if len(text) > MAX_TEXT:
            self.warn(f"{section}/{element}: value longer than {MAX_TEXT} characters, cut")
            text = text[:MAX_TEXT]
        table = self.leaves.get(section)
        if table is None:
            table = self.leaves[section] = {}
        if element in table:
            self.warn(f"{section}/{element}: duplicated element, first value kept")
            return
        table[element] = text

    def finish_warnings(self) -> tuple[str, ...]:
        if self.dropped:
            return (*self.warnings, f"{self.dropped} more warnings suppressed")
        return tuple(self.warnings)


def _decode(body: bytes | str, doc: _Doc) -> str:
    if isinstance(body, str):
        return body
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return body.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"bad UTF-16 text: {exc.reason}", where=f"byte {exc.start}") from exc
    body = body.removeprefix(codecs.BOM_UTF8)
    declared = _ENCODING_RE.match(body[:200])
    encoding = "utf-8"
    if declared is not None:
        name = declared.group(1).decode("ascii").lower().replace("_", "-")
        encoding = _ENCODINGS.get(name, "utf-8")
        if name not in _ENCODINGS:
            doc.warn(f"unsupported encoding {name[:20]!r} declared, read as UTF-8")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        doc.warn(f"text is not valid {encoding} (byte {exc.start}), read as ISO-8859-1")
        return body.decode("latin-1")


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _local(tag: object) -> str:
    name = str(tag)
    return name.rsplit("}", 1)[-1][:64]


def _read_xml(text: str, doc: _Doc) -> None:
    """Check the text, then collect its leaves into ``doc``.

    A well-formed document is parsed in one call and its tree walked once
    (:func:`_read_tree`); any other goes through the incremental reader
    (:func:`_read_events`), which tells a truncated body from a malformed one.
    """
    if "<!" in text:
        dtd = _DTD_RE.search(text)
        if dtd is not None:
            raise DecodeError(
                "DTD/entity declarations are refused in device XML",
                where=_position(text, dtd.start()),
            )
    if "&" in text:
        entity = _ENTITY_RE.search(text)
        if entity is not None:
            raise DecodeError("undeclared entity reference", where=_position(text, entity.start()))
    # drop the XML declaration (the text is re-encoded as UTF-8), keeping line numbers
    declaration = _DECL_RE.match(text)
    if declaration is not None:
        text = "\n" * declaration.group().count("\n") + text[declaration.end() :]
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DecodeError(
            "text holds unpaired surrogates", where=_position(text, exc.start)
        ) from exc
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.LxmlError:
        _read_events(data, doc)
        return
    # tags hold a namespace ("{uri}name") only where the document declares one
    _read_tree(root, doc, namespaced=b"xmlns" in data)


def _read_tree(root: etree._Element, doc: _Doc, *, namespaced: bool) -> None:
    """Collect the values of a well-formed document: the same as :func:`_read_events`."""
    leaves = doc.leaves
    tag = _local(root.tag)
    if tag != "data":
        doc.warn(f"root element is <{tag[:30]}>, not <data>")
    seen_any = False
    nested_warned: set[str] = set()
    for block in root:
        section: str = block.tag  # type: ignore[assignment]  # parsed tags are str
        if namespaced or len(section) > 64:
            section = _local(section)
        children = list(block)
        if not children:
            text = block.text or ""
            if text.strip():
                seen_any = True
                doc.add("", section, text)
            continue
        table: dict[str, str] | None = None
        for leaf in children:
            if len(leaf):
                if section not in nested_warned:
                    nested_warned.add(section)
                    deepest = leaf[0]  # the first element to end, as the event reader sees it
                    while len(deepest):
                        deepest = deepest[0]
                    tag = _local(deepest.tag)[:30]
                    doc.warn(f"{section}: nested elements ignored (<{tag}>)")
                continue
            element: str = leaf.tag  # type: ignore[assignment]
            if namespaced or len(element) > 64:
                element = _local(element)
            text = leaf.text or ""
            if table is None:
                seen_any = True
                table = leaves.setdefault(section, {})
            if len(text) <= MAX_TEXT and element not in table:
                table[element] = text
            else:
                doc.add(section, element, text)
    if not seen_any:
        raise DecodeError("document holds no value")


def _read_events(data: bytes, doc: _Doc) -> None:
    """Collect the values of a document that is not well formed, or raise ``DecodeError``."""
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    depth = 0
    section = ""
    root_closed = False
    nested_warned: set[str] = set()
    seen_any = False

    def drain() -> None:
        nonlocal depth, section, root_closed, seen_any
        for event, element in parser.read_events():
            tag = _local(element.tag)
            if event == "start":
                depth += 1
                if depth == 1 and tag != "data":
                    doc.warn(f"root element is <{tag[:30]}>, not <data>")
                elif depth == 2:
                    section = tag
                continue
            if depth == 3 and len(element) == 0:
                seen_any = True
                doc.add(section, tag, element.text or "")
            elif depth > 3 and section not in nested_warned:
                nested_warned.add(section)
                doc.warn(f"{section}: nested elements ignored (<{tag[:30]}>)")
            elif depth == 2:
                if len(element) == 0 and (element.text or "").strip():
                    seen_any = True
                    doc.add("", tag, element.text or "")
                element.clear()
            elif depth == 1:
                root_closed = True
            depth -= 1

    try:
        parser.feed(data)
        drain()
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        drain()
        if root_closed and seen_any:
            doc.warn(f"content after the root element ignored (line {line}): {exc.msg}")
            return
        raise DecodeError(
            f"malformed XML: {exc.msg}", where=f"line {line}, column {column}"
        ) from exc
    except etree.LxmlError as exc:
        raise DecodeError(f"unreadable XML: {exc}") from exc
    try:
        parser.close()
    except etree.LxmlError as exc:
        drain()
        line, column = getattr(exc, "position", (0, 0))
        message = getattr(exc, "msg", str(exc))
        if root_closed:
            doc.warn(f"content after the root element ignored (line {line}): {message}")
        elif not seen_any:
            raise DecodeError(f"no data in document: {message}", where=f"line {line}") from exc
        else:
            doc.complete = False
            doc.warn(
                f"document truncated at line {line}, column {column}: values after it are missing"
            )
        return
    drain()
    if not seen_any:
        raise DecodeError("document holds no value")


def _check_size(body: bytes | str, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise DecodeError(f"document larger than {max_bytes} bytes", where=f"byte {max_bytes}")


def parse_data_cgx(
    body: bytes | str, *, firmware: Firmware | None = None, max_bytes: int = 1_000_000
) -> WesSnapshot:
    """Parse a ``data.cgx`` page (stock or custom template with the same element names).

    Args:
        body: the HTTP body, as received (bytes) or already decoded.
        firmware: the firmware family, if known; otherwise read from ``<firmware>`` or
            guessed from the element names (``H_CREUSE`` → V0.84A10).
        max_bytes: larger bodies are refused.

    Raises:
        DecodeError: body too large, DTD or entity declaration, malformed XML, no value.
    """
    _check_size(body, max_bytes)
    doc = _Doc()
    text = _decode(body, doc)
    _read_xml(text, doc)
    return _build(doc, firmware)


@functools.lru_cache(maxsize=8)
def _compact_keys(firmware: Firmware | None) -> dict[str, CodeInfo]:
    """Return the code catalogue of ``firmware`` keyed by code without spaces (read-only)."""
    return {code.replace(" ", ""): info for code, info in codes_for(firmware).items()}


def parse_compact(
    body: bytes | str, *, firmware: Firmware | None = None, max_bytes: int = 1_000_000
) -> WesSnapshot:
    """Parse the output of a compact template (:func:`wesh.wes.cgx.compact_template`).

    Each ``key=value`` line is mapped through the code catalogue to the element of the
    stock page it stands for, then read exactly like ``data.cgx``. A missing trailer
    means the body was cut: ``complete`` is false.

    Raises:
        DecodeError: body too large, or no ``key=value`` line at all.
    """
    _check_size(body, max_bytes)
    doc = _Doc()
    text = _decode(body, doc)
    pairs: list[tuple[int, str, str]] = []
    header = trailer = False
    lines = text.splitlines()
    for lineno, raw in enumerate(lines, start=1):
        key, equals, value = raw.partition("=")
        if equals:
            pairs.append((lineno, key.strip(), value.rstrip()))
            continue
        line = raw.strip()
        if not line:
            continue
        if line == "wesh-compact 1":
            header = True
        elif line == "wesh-end":
            trailer = True
        else:
            doc.warn(f"line {lineno}: not a key=value line: {line[:30]!r}")
    if not pairs:
        raise DecodeError("no key=value line in compact body")
    if not header:
        doc.warn("compact header 'wesh-compact 1' missing")
    if not trailer:
        doc.complete = False
        doc.warn("compact trailer 'wesh-end' missing: body truncated")
        if not text.endswith("\n") and pairs and pairs[-1][0] == len(lines):
            lineno, key, _ = pairs.pop()
            doc.warn(f"line {lineno}: last line {key[:20]!r} dropped, it may be cut")
    fw = firmware
    if fw is None:
        fw = next((Firmware.detect(v) for _, k, v in pairs if k == "vv"), None)
    index = _compact_keys(fw)
    for lineno, key, value in pairs:
        info = index.get(key)
        if info is None or info.section is None or not info.elements:
            if info is None:
                doc.warn(f"line {lineno}: unknown key {key[:20]!r}")
            doc.extras[f"compact/{key[:20]}"] = value[:MAX_TEXT]
            continue
        if len(info.elements) == 1:
            table = doc.leaves.get(info.section)
            element = info.elements[0]
            if table is not None and len(value) <= MAX_TEXT and element not in table:
                table[element] = value  # the plain case of _Doc.add
            else:
                doc.add(info.section, element, value)
            continue
        parts = value.split()
        if len(parts) != len(info.elements):
            doc.warn(f"line {lineno}: {key} needs {len(info.elements)} values, got {len(parts)}")
        for element, part in zip(info.elements, parts, strict=False):
            doc.add(info.section, element, part)
    return _build(doc, fw)


# --------------------------------------------------------------------------- interpretation


class _Section:
    """Typed reads of the values of one section, recording warnings.

    Each element read leaves ``unread``; what is left at the end goes to ``extras``.
    Unit sets hold lower-case units.
    """

    __slots__ = ("doc", "firmware", "name", "table", "unread")

    def __init__(
        self, doc: _Doc, firmware: Firmware | None, name: str, table: dict[str, str]
    ) -> None:
        self.doc = doc
        self.firmware = firmware
        self.name = name
        self.table = table
        self.unread = dict(table)

    def warn(self, element: str, message: str) -> None:
        """Record a warning about one element."""
        self.doc.warn(f"{self.name}/{element}: {message}")

    def text(self, element: str) -> str | None:
        """Return the raw text of an element (``None`` if absent)."""
        raw = self.table.get(element)
        if raw is not None:
            self.unread.pop(element, None)
        return raw

    def value(self, element: str) -> str | None:
        """Return the stripped text, ``None`` for absent elements and placeholders."""
        raw = self.table.get(element)
        if raw is None:
            return None
        self.unread.pop(element, None)
        stripped = raw.strip()
        return None if stripped.lower() in PLACEHOLDERS else stripped

    def number(
        self, element: str, units: frozenset[str] = frozenset()
    ) -> tuple[float, str | None] | None:
        """Return a number and its unit suffix; garbage or a wrong unit → ``None`` + warning."""
        raw = self.table.get(element)
        if raw is None:
            return None
        if not raw.strip(_PLAIN_NUMBER_CHARS):
            try:
                value = float(raw)
            except ValueError:
                pass
            else:
                if math.isfinite(value):
                    self.unread.pop(element, None)
                    return value, None
        text = self.value(element)
        if text is None:
            return None
        return self._number(element, text, units)

    def _number(
        self, element: str, text: str, units: frozenset[str]
    ) -> tuple[float, str | None] | None:
        match = _NUMBER_RE.match(text)
        if match is None:
            self.warn(element, f"not a number: {text[:30]!r}")
            return None
        unit = match.group(2).strip() if match.group(2) else None
        number = float(match.group(1))
        if not math.isfinite(number):
            self.warn(element, f"number out of range: {text[:30]!r}")
            return None
        if unit is not None and unit.lower() not in units:
            self.warn(element, f"unexpected unit {unit!r}")
            return None
        return number, unit

    # Each typed read first tries the plain case (a text of digits, sign and point only,
    # read by float() exactly as _NUMBER_RE would, and within bounds) and otherwise goes
    # the tolerant way, which strips, spots placeholders, reads units and warns.

    def integer(
        self,
        element: str,
        *,
        low: int = 0,
        high: int = 10**12,
        units: frozenset[str] = frozenset(),
    ) -> int | None:
        """Return an integer within ``[low, high]``; garbage → ``None`` + warning."""
        raw = self.table.get(element)
        if raw is None:
            return None
        self.unread.pop(element, None)
        if raw.isdecimal() and len(raw) <= _EXACT_DIGITS:
            whole = int(raw)  # the same as int(float(raw)) at this length
            if low <= whole <= high:
                return whole
        elif not raw.strip(_PLAIN_NUMBER_CHARS):
            try:
                value = float(raw)
            except ValueError:
                pass
            else:
                if low <= value <= high and value == int(value):
                    return int(value)
        return self._integer(element, low, high, units)

    def _integer(self, element: str, low: int, high: int, units: frozenset[str]) -> int | None:
        found = self.number(element, units)
        if found is None:
            return None
        value = found[0]
        if value != int(value):
            self.warn(element, f"not an integer: {value}")
            return None
        if not low <= value <= high:
            self.warn(element, f"{int(value)} out of range [{low}, {high}]")
            return None
        return int(value)

    def real(
        self,
        element: str,
        *,
        low: float = -1e9,
        high: float = 1e9,
        units: frozenset[str] = frozenset(),
    ) -> float | None:
        """Return a float within ``[low, high]``; garbage → ``None`` + warning."""
        raw = self.table.get(element)
        if raw is None:
            return None
        self.unread.pop(element, None)
        if not raw.strip(_PLAIN_NUMBER_CHARS):
            try:
                value = float(raw)
            except ValueError:
                pass
            else:
                if low <= value <= high:
                    return value
        return self._real(element, low, high, units)

    def _real(self, element: str, low: float, high: float, units: frozenset[str]) -> float | None:
        found = self.number(element, units)
        if found is None:
            return None
        if not low <= found[0] <= high:
            self.warn(element, f"{found[0]} out of range [{low}, {high}]")
            return None
        return found[0]

    def flag(self, element: str) -> bool | None:
        """``ON``/``1``/``checked`` → True, ``OFF``/``0`` → False, else ``None`` + warning."""
        raw = self.table.get(element)
        if raw is None:
            return None
        if raw in _ON:
            self.unread.pop(element, None)
            return True
        if raw in _OFF:
            self.unread.pop(element, None)
            return False
        return self._flag(element)

    def _flag(self, element: str) -> bool | None:
        text = self.value(element)
        if text is None:
            return None
        upper = text.upper()
        if upper in _ON:
            return True
        if upper in _OFF:
            return False
        self.warn(element, f"not an on/off value: {text[:30]!r}")
        return None

    def energy_wh(self, element: str, *, kwh_default: bool | None) -> int | None:
        """Return an energy index in Wh from ``NNN`` (Wh), ``NNN.NNN`` (kWh) or an explicit unit."""
        raw = self.table.get(element)
        if raw is None:
            return None
        self.unread.pop(element, None)
        if raw.isdecimal() and len(raw) <= _EXACT_DIGITS:
            if not kwh_default:  # Wh, as expected
                whole = int(raw)
                if whole <= _MAX_INDEX_WH:
                    return whole
        elif not raw.strip(_PLAIN_NUMBER_CHARS):
            try:
                value = float(raw)
            except ValueError:
                pass
            else:
                kwh = "." in raw
                if (kwh_default is None or kwh == kwh_default) and 0 <= value <= _MAX_INDEX_WH:
                    wh = round(value * 1000) if kwh else value
                    if wh <= _MAX_INDEX_WH and wh == int(wh):
                        return int(wh)
        return self._energy_wh(element, kwh_default)

    def _energy_wh(self, element: str, kwh_default: bool | None) -> int | None:
        text = self.value(element)
        if text is None:
            return None
        found = self._number(element, text, _ENERGY_UNITS)
        if found is None:
            return None
        value, unit = found
        if unit is not None:
            kwh = unit.lower() == "kwh"
        else:
            kwh = "." in text
            if kwh_default is not None and kwh != kwh_default:
                self.warn(
                    element,
                    f"printed in {'kWh' if kwh else 'Wh'}, unlike firmware {self.firmware}",
                )
        wh = value * 1000 if kwh else value
        if kwh and math.isfinite(wh):
            wh = round(wh)
        if not 0 <= wh <= _MAX_INDEX_WH or wh != int(wh):  # "1.8e305" kWh is infinite Wh
            self.warn(element, f"not an energy index: {text[:30]!r}")
            return None
        return int(wh)


class _Reader:
    """The sections of one document, each read through one :class:`_Section`."""

    __slots__ = ("absent", "doc", "firmware", "sections")

    def __init__(self, doc: _Doc, firmware: Firmware | None) -> None:
        self.doc = doc
        self.firmware = firmware
        self.sections: dict[str, _Section] = {}
        #: what a section the document lacks reads as: nothing, so it never warns
        self.absent = _Section(doc, firmware, "", {})

    def section(self, name: str) -> _Section:
        """Return the reader of one section (empty if the document has none)."""
        found = self.sections.get(name)
        if found is None:
            table = self.doc.leaves.get(name)
            if table is None:
                return self.absent
            found = self.sections[name] = _Section(self.doc, self.firmware, name, table)
        return found

    def unread(self) -> Iterator[tuple[str, str, str]]:
        """Yield ``(section, element, text)`` of every value never read, in document order."""
        for section, table in self.doc.leaves.items():
            view = self.sections.get(section)
            for element, text in (table if view is None else view.unread).items():
                yield section, element, text


@functools.lru_cache(maxsize=4096)
def _split_numbered(element: str) -> tuple[str, int] | None:
    """``"PULSE12"`` → ``("PULSE", 12)``; a name without a trailing number → ``None``."""
    match = _NUMBERED_RE.match(element)
    if match is None:
        return None
    return match.group(1).upper(), int(match.group(2))


def _numbered(table: dict[str, str]) -> dict[int, dict[str, str]]:
    """Group ``NAMEn`` elements by ``n``: ``{1: {"PULSE": "PULSE1", ...}}``."""
    groups: dict[int, dict[str, str]] = {}
    for element in table:
        split = _split_numbered(element)
        if split is not None:
            groups.setdefault(split[1], {})[split[0]] = element
    return groups


def _detect_firmware(doc: _Doc, given: Firmware | None) -> Firmware | None:
    info = doc.leaves.get("info", {})
    detected = Firmware.detect(info.get("firmware"))
    if given is not None:
        family = given if isinstance(given, Firmware) else Firmware(given)
        if detected is not None and detected is not family:
            doc.warn(f"read as firmware {given}, but the page says {info.get('firmware')!r}")
        return family
    if detected is not None:
        return detected
    for meter in ("tic1", "tic2", "tic3"):
        names = {name.upper() for name in doc.leaves.get(meter, {})}
        if names & {"H_CREUSE", "H_PLEINE"}:
            return Firmware.V084A10
        if names & {"HCHC", "HCHP"}:
            return Firmware.V083H
    return None


def _info(reader: _Reader) -> WesInfo:
    info = reader.section("info")
    box_time = None
    date, time = info.value("date"), info.value("time")
    if date is not None or time is not None:
        dmatch = _DATE_RE.match(date or "")
        tmatch = _TIME_RE.match(time or "")
        if dmatch is None or tmatch is None:
            reader.doc.warn(f"info: unreadable box clock {date!r} {time!r}")
        else:
            day, month, year = (int(part) for part in dmatch.groups())
            year += 2000 if year < 100 else 0
            hour, minute = int(tmatch.group(1)), int(tmatch.group(2))
            second = int(tmatch.group(3) or 0)
            try:
                box_time = datetime(year, month, day, hour, minute, second, tzinfo=PARIS)
            except ValueError:
                reader.doc.warn(f"info: impossible box clock {date!r} {time!r}")
    mac = None
    serial = info.value("serial")
    if serial is not None:
        digits = _MAC_SEPARATORS_RE.sub("", serial).upper()
        if _MAC_RE.fullmatch(digits):
            mac = digits
        else:
            info.warn("serial", f"not a MAC address: {serial[:30]!r}")
    hardware = info.value("hardware")
    server = info.value("serverversion")
    space = info.real("spaceleft", low=0, units=_GB)
    storage = info.real("storage", low=0, units=_GB)
    return WesInfo(
        box_time=box_time,
        firmware=info.value("firmware"),
        mac=mac,
        hardware=hardware if hardware is not None else server,
        spaceleft_gb=space if space is not None else storage,
        alarm=info.flag("alarme"),
    )


def _tic(reader: _Reader, number: int) -> TicMeter:
    section = f"tic{number}"
    tic = reader.section(section)
    table = tic.table
    adco_raw = (tic.text("ADCO") or "").strip()
    ptec_raw = (tic.text("PTEC") or "").strip()
    available = adco_raw.lower() not in ("pas dispo", "tic nderr.") and ptec_raw.lower() != (
        "tic nderr."
    )
    adco = tic.value("ADCO")
    optarif = tic.value("OPTARIF")
    optarif = optarif.rstrip(". ") or None if optarif is not None else None
    period = tic.value("PTEC")
    integer = tic.integer
    iinst = [integer(element, high=10_000, units=_AMPS) for element in _IINST]
    imax = [integer(element, high=10_000, units=_AMPS) for element in _IMAX]
    tension = [integer(element, high=100_000, units=_VOLTS) or None for element in _TENSION]
    three_phase = any((iinst[2], iinst[3], imax[2], imax[3], tension[1], tension[2]))
    currents: tuple[int | None, ...]
    imaxes: tuple[int | None, ...]
    voltages: tuple[int | None, ...]
    if three_phase:
        currents = (iinst[1], iinst[2], iinst[3])
        imaxes = (imax[1], imax[2], imax[3])
        voltages = (tension[0], tension[1], tension[2])
    else:
        has: AbstractSet[str] = table.keys()
        if not has >= _SINGLE_PHASE_NAMES:  # else every check below holds in any case
            has = {name.upper() for name in table}
        currents = (iinst[0] if "IINST" in has else iinst[1],) if has & _IINST_NAMES else ()
        imaxes = (imax[0] if "IMAX" in has else imax[1],) if has & _IMAX_NAMES else ()
        voltages = (tension[0],) if "TENSION1" in has else ()
    indexes: dict[str, int] = {}
    for element in table:
        if element in _TIC_OTHERS:
            continue
        name = _TIC_INDEXES.get(element) or _TIC_INDEXES.get(element.upper())
        if name is None:
            continue
        wh = tic.energy_wh(element, kwh_default=False)
        if wh is None:
            continue
        if name in indexes:
            reader.doc.warn(f"{section}/{element}: second spelling of index {name}, first kept")
            continue
        indexes[name] = wh
    producer = integer("PRODUCTEUR", high=10**9)
    tomorrow = tic.value("DEMAIN")
    return TicMeter(
        number=number,
        available=available,
        adco=adco,
        optarif=optarif,
        isousc_a=integer("ISOUSC", high=10_000, units=_AMPS),
        period=period,
        period_code=period_code(period),
        tomorrow=tomorrow,
        tomorrow_code=tomorrow_code(tomorrow),
        apparent_power_va=integer("PAP", high=_MAX_POWER_VA, units=_VA),
        injected_power_va=integer("PAPIJ", high=_MAX_POWER_VA, units=_VA),
        phases=3 if three_phase else 1,
        currents_a=currents,
        voltages_v=voltages,
        imax_a=imaxes,
        pejp=integer("PEJP", high=10**6),
        producer=None if producer is None else producer != 0,
        indexes_wh=indexes,
    )


def _quantity(pulses: _Section, element: str | None) -> Quantity | None:
    if element is None:
        return None
    found = pulses.number(element, _PULSE_UNITS)
    return None if found is None else Quantity(found[0], found[1])


def _pulses(reader: _Reader) -> tuple[PulseCounter, ...]:
    pulses = reader.section("impulsion")
    counters = []
    for number, names in sorted(_numbered(pulses.table).items()):
        if names.keys().isdisjoint(_PULSE_KEYS):
            continue
        index = unit = None
        if "INDEX" in names:
            found = pulses.number(names["INDEX"], _PULSE_UNITS)
            if found is not None:
                index, unit = found
        count = None
        if "PULSE" in names:
            count = pulses.integer(names["PULSE"], high=2**32)
        if names.keys().isdisjoint(_PULSE_EXTRAS):  # the stock page: PULSEn and INDEXn
            counters.append(
                PulseCounter(number=number, pulses_today=count, index=index, index_unit=unit)
            )
            continue

        def real(key: str, names: dict[str, str] = names) -> float | None:
            element = names.get(key)
            return None if element is None else pulses.real(element)

        counters.append(
            PulseCounter(
                number=number,
                pulses_today=count,
                index=index,
                index_unit=unit,
                flow=real("DEBIT"),
                consumption_day=_quantity(pulses, names.get("CONSO_JOUR")),
                consumption_yesterday=_quantity(pulses, names.get("CONSO_VEILLE")),
                consumption_month=_quantity(pulses, names.get("CONSO_MOIS")),
                consumption_year=_quantity(pulses, names.get("CONSO_ANNEE")),
                cost_day_eur=real("COUT_JOUR"),
                cost_month_eur=real("COUT_MOIS"),
                cost_year_eur=real("COUT_ANNEE"),
            )
        )
    return tuple(counters)


def _clamps(reader: _Reader) -> tuple[tuple[Clamp, ...], int | None]:
    pince = reader.section("pince")
    kwh_default = None if reader.firmware is None else reader.firmware is Firmware.V084A10
    numbered = sorted(_numbered(pince.table).items())
    clamps = []
    watts = {}
    for number, names in numbered:
        if "WATT" in names:
            watts[number] = pince.integer(
                names["WATT"], low=-_MAX_POWER_VA, high=_MAX_POWER_VA, units=_WATTS
            )
    for number, names in numbered:
        if names.keys().isdisjoint(_CLAMP_KEYS):
            continue
        power_va = power_w = None
        cos_phi = None
        if "PUISSANCE" in names:
            text = pince.value(names["PUISSANCE"])
            match = None if text is None or text.isdecimal() else _POWER_RE.match(text)
            if match is not None:
                power_w, cos_phi = int(match.group(1)), float(match.group(2))
            else:
                power_va = pince.integer(names["PUISSANCE"], high=_MAX_POWER_VA, units=_VA)
        clamps.append(
            Clamp(
                number=number,
                current_a=None
                if "I" not in names
                else pince.real(names["I"], low=-1e4, high=1e4, units=_AMPS),
                index_wh=None
                if "INDEX" not in names
                else pince.energy_wh(names["INDEX"], kwh_default=kwh_default),
                inject_wh=None
                if "INJECT" not in names
                else pince.energy_wh(names["INJECT"], kwh_default=kwh_default),
                power_va=power_va,
                power_w=watts[number] if watts.get(number) is not None else power_w,
                cos_phi=cos_phi,
            )
        )
    voltage = pince.integer("V", high=100_000, units=_VOLTS)
    return tuple(clamps), (None if voltage == 0 else voltage)


def _flags(reader: _Reader, section: str, prefix: str) -> dict[int, bool]:
    """Read the on/off elements ``PREFIXn`` of a section; unreadable ones are left out."""
    view = reader.section(section)
    out: dict[int, bool] = {}
    for element, raw in view.table.items():
        split = _split_numbered(element)
        if split is None or split[0] != prefix:
            continue
        if raw in _ON:  # the plain case of _Section.flag
            view.unread.pop(element, None)
            out[split[1]] = True
        elif raw in _OFF:
            view.unread.pop(element, None)
            out[split[1]] = False
        else:
            value = view.flag(element)
            if value is not None:
                out[split[1]] = value
    return out


def _reals(
    reader: _Reader,
    section: str,
    prefix: str,
    *,
    keep_none: bool = False,
    low: float = -1e9,
    high: float = 1e9,
    units: frozenset[str] = frozenset(),
) -> dict[int, float | None]:
    """Read the numbers ``PREFIXn`` of a section; unreadable ones are ``None`` or left out."""
    view = reader.section(section)
    out: dict[int, float | None] = {}
    for element in view.table:
        split = _split_numbered(element)
        if split is None or split[0] != prefix:
            continue
        value = view.real(element, low=low, high=high, units=units)
        if value is not None or keep_none:
            out[split[1]] = value
    return out


def _build(doc: _Doc, given: Firmware | None) -> WesSnapshot:
    firmware = _detect_firmware(doc, given)
    reader = _Reader(doc, firmware)
    info = _info(reader)
    tic = tuple(_tic(reader, n) for n in (1, 2, 3) if f"tic{n}" in doc.leaves)
    pulses = _pulses(reader)
    clamps, voltage = _clamps(reader)
    temps = _reals(reader, "temp", "SONDE", keep_none=True, low=-100, high=200, units=_CELSIUS)
    relays = _flags(reader, "relais", "RELAIS")
    relays_1w = _flags(reader, "relais1W", "RELAIS")
    inputs = _flags(reader, "entree", "ENTREE")
    analog = _reals(reader, "analogique", "AD", units=_VOLTS)
    switches = _flags(reader, "switch_virtuel", "SWITCH")
    variables = _reals(reader, "variables", "VARIABLE")
    for section, element, text in reader.unread():
        doc.extras[f"{section}/{element}"] = text
        family = "tic" if section.startswith("tic") else section
        split = _split_numbered(element) if family == "pince" else None
        name = split[0] if split is not None else element.upper()
        if name not in _KNOWN_EXTRAS.get(family, ()):
            where = "unknown section" if section not in _SECTIONS else "unknown element"
            doc.warn(f"{section}/{element}: {where}, kept in extras")
    return WesSnapshot(
        info=info,
        tic=tic,
        pulses=pulses,
        clamps=clamps,
        voltage_v=voltage,
        temperatures=temps,
        relays=relays,
        relays_1w=relays_1w,
        inputs=inputs,
        analog_v={k: v for k, v in analog.items() if v is not None},
        switches=switches,
        variables={k: v for k, v in variables.items() if v is not None},
        warnings=doc.finish_warnings(),
        firmware=firmware,
        complete=doc.complete,
        extras=dict(doc.extras),
    )


# --------------------------------------------------------------------------- rendering


def snapshot_values(
    snapshot: WesSnapshot, *, firmware: Firmware | None = None
) -> Callable[[str], tuple[object, ...] | None]:
    """Return the CGX values that make a template render ``snapshot`` (the parser's inverse).

    Returns a ``code → values`` function for :func:`wesh.wes.cgx.render_template`, with
    the C types of ``firmware``'s catalogue (default: the snapshot's own firmware).
    Unknown values print as the box prints them: ``Pas Dispo``, ``TIC NDERR.``, ``----``
    or zero.
    """
    fw = firmware if firmware is not None else snapshot.firmware
    catalogue = codes_for(fw)
    table = _element_values(snapshot, fw)

    def values(code: str) -> tuple[object, ...] | None:
        info = catalogue.get(code)
        if info is None or info.section is None:
            return None
        if code in ("g d", "h d"):
            when = snapshot.info.box_time
            return (0, 0, 0) if when is None else (when.day, when.month, when.year % 100)
        if code == "h h":
            when = snapshot.info.box_time
            return (0, 0) if when is None else (when.hour, when.minute)
        if code == "r a":
            mac = snapshot.info.mac or "000000000000"
            return tuple(int(mac[i : i + 2], 16) for i in range(0, 12, 2))
        if code == "WRo":
            return (_relais1w_block(snapshot),)
        out: list[object] = []
        for element, ctype in zip(info.elements, info.ctypes, strict=False):
            value = table.get((info.section, element))
            if ctype == "str" and element.upper() in _TIC_INDEXES:
                value = f"{value if isinstance(value, int) else 0:09d}"
            out.append(_typed(value, ctype))
        if info.ctypes == ("int", "float"):  # pulse index, %d.%03.0f
            index = float(table.get((info.section, info.elements[0])) or 0.0)  # type: ignore[arg-type]
            whole, thousandths = divmod(round(index * 1000), 1000)
            return whole, float(thousandths)
        return tuple(out)

    return values


def _typed(value: object, ctype: str) -> object:
    if ctype == "str":
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:09d}"  # indexes printed as text by older firmware
        return "" if value is None else str(value)
    if ctype == "float":
        return 0.0 if value is None else float(value)  # type: ignore[arg-type]
    if value is None:
        return 0
    if isinstance(value, float):
        return round(value)
    return int(value) if isinstance(value, bool | int) else 0


def _relais1w_block(snapshot: WesSnapshot) -> str:
    if not snapshot.relays_1w:
        return ""
    lines = ["<relais1W>"]
    lines += [
        f"<RELAIS{n}>{'ON' if on else 'OFF'}</RELAIS{n}>"
        for n, on in sorted(snapshot.relays_1w.items())
    ]
    lines.append("</relais1W>")
    return "\n".join(lines) + "\n"


def _element_values(snapshot: WesSnapshot, fw: Firmware | None) -> dict[tuple[str, str], object]:
    """Map ``(section, element)`` to the typed value the firmware would pass."""
    table: dict[tuple[str, str], object] = {}
    info = snapshot.info
    table["info", "firmware"] = info.firmware
    table["info", "hardware"] = info.hardware
    table["info", "spaceleft"] = info.spaceleft_gb
    table["info", "alarme"] = None if info.alarm is None else int(info.alarm)
    for meter in snapshot.tic:
        s = f"tic{meter.number}"
        table[s, "ADCO"] = meter.adco if meter.adco is not None else "Pas Dispo"
        table[s, "OPTARIF"] = meter.optarif or ""
        table[s, "ISOUSC"] = meter.isousc_a
        table[s, "PTEC"] = (
            meter.period if meter.period is not None else ("" if meter.available else "TIC NDERR.")
        )
        table[s, "PAP"] = meter.apparent_power_va
        table[s, "PAPIJ"] = meter.injected_power_va
        table[s, "PEJP"] = meter.pejp
        table[s, "DEMAIN"] = meter.tomorrow if meter.tomorrow is not None else "----"
        table[s, "PRODUCTEUR"] = None if meter.producer is None else int(meter.producer)
        if meter.phases == 3:
            for p in range(3):
                for family, values in (
                    ("IINST", meter.currents_a),
                    ("IMAX", meter.imax_a),
                    ("TENSION", meter.voltages_v),
                ):
                    table[s, f"{family}{p + 1}"] = values[p] if p < len(values) else None
        else:
            table[s, "IINST"] = meter.currents_a[0] if meter.currents_a else None
            table[s, "IMAX"] = meter.imax_a[0] if meter.imax_a else None
            table[s, "TENSION1"] = meter.voltages_v[0] if meter.voltages_v else None
        names = {
            v: k
            for k, v in _TIC_INDEXES.items()
            if k not in ("HCHC", "HCHP", "H_CREUSE", "H_PLEINE")
        }
        for name, wh in meter.indexes_wh.items():
            if name == "hchc":
                table[s, "HCHC"] = table[s, "H_CREUSE"] = wh
            elif name == "hchp":
                table[s, "HCHP"] = table[s, "H_PLEINE"] = wh
            elif name in names:
                element = {
                    "h_weekend": "H_WeekEnd",
                    "hc_semaine": "HC_Semaine",
                    "hp_semaine": "HP_Semaine",
                    "hc_weekend": "HC_WeekEnd",
                    "hp_weekend": "HP_WeekEnd",
                    "hc_mercredi": "HC_Mercredi",
                    "hp_mercredi": "HP_Mercredi",
                }.get(name, names[name])
                table[s, element] = wh
    for counter in snapshot.pulses:
        n = counter.number
        table["impulsion", f"PULSE{n}"] = counter.pulses_today
        table["impulsion", f"INDEX{n}"] = counter.index
        table["impulsion", f"DEBIT{n}"] = counter.flow
        for period, quantity in (
            ("JOUR", counter.consumption_day),
            ("VEILLE", counter.consumption_yesterday),
            ("MOIS", counter.consumption_month),
            ("ANNEE", counter.consumption_year),
        ):
            if quantity is not None:
                text = f"{quantity.value:.2f} {quantity.unit}" if quantity.unit else quantity.value
                table["impulsion", f"CONSO_{period}{n}"] = (
                    text if fw is Firmware.V083H else quantity.value
                )
        table["impulsion", f"COUT_JOUR{n}"] = counter.cost_day_eur
        table["impulsion", f"COUT_MOIS{n}"] = counter.cost_month_eur
        table["impulsion", f"COUT_ANNEE{n}"] = counter.cost_year_eur
    for clamp in snapshot.clamps:
        n = clamp.number
        table["pince", f"I{n}"] = clamp.current_a
        kwh = fw is not Firmware.V083H
        for element, energy in (("INDEX", clamp.index_wh), ("INJECT", clamp.inject_wh)):
            table["pince", f"{element}{n}"] = (
                None if energy is None else (energy / 1000 if kwh else energy)
            )
        table["pince", f"PUISSANCE{n}"] = clamp.power_va
        table["pince", f"WATT{n}"] = clamp.power_w
    table["pince", "V"] = snapshot.voltage_v
    for n, celsius in snapshot.temperatures.items():
        table["temp", f"SONDE{n}"] = celsius
    for n, on in snapshot.relays.items():
        table["relais", f"RELAIS{n}"] = "ON" if on else "OFF"
    for section, prefix, mapping in (
        ("entree", "ENTREE", snapshot.inputs),
        ("switch_virtuel", "SWITCH", snapshot.switches),
    ):
        for n, state in mapping.items():
            table[section, f"{prefix}{n}"] = int(state)
    for n, volts in snapshot.analog_v.items():
        table["analogique", f"AD{n}"] = volts
    for n, value in snapshot.variables.items():
        table["variables", f"VARIABLE{n}"] = value
    return table
