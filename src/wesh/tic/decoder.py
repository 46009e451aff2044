"""Incremental TIC frame decoder (historique and standard modes), pure logic, no I/O.

Wire format (see ``docs/tic.md`` and :mod:`wesh.tic.encoder`)::

    ... garbage ... STX  LF group CR  LF group CR ... LF group CR  ETX  ... STX ...
                    0x02                                         0x03
                    EOT (0x04) anywhere inside a frame interrupts it: the frame is dropped.

    historique group   LF label SP data SP chk CR          zone = label..data
    standard group     LF label HT [horodate HT] data HT chk CR
                                                           zone = label..last HT (inclusive)
    chk = (sum(zone) & 0x3F) + 0x20, in 0x20..0x5F (it may be SP itself)

How the decoder reads a stream:

* Bytes with bit 7 set (a 7E1 line read on an 8N1 port) are masked with ``& 0x7F``.
* Bytes outside ``STX .. ETX`` are skipped. An ``STX`` inside a frame means its ``ETX``
  was lost: the frame so far is returned with ``complete=False``. ``EOT`` drops the
  frame. A frame whose body (between STX and ETX) exceeds ``max_frame_bytes - 2`` is
  dropped and the decoder hunts for the next STX: the buffer never holds more than that.
* A frame is cut into groups at line breaks. LF received as 0x0B/0x0E/0x0F and CR as
  0x0C are read as LF and CR; a lost CR or LF is tolerated. Any of these repairs is
  noted in ``Frame.errors``; a group keeps its value if its checksum is valid.
* A group is valid only under the checksum rule of its own mode, given by the byte
  before the checksum (SP: historique, HT: standard), and only if it passes the sanity
  checks below. The checksum keeps only 6 bits of the sum, so a flip of bit 6 (``0`` <->
  ``p``, ``I`` <-> HT) or an extra line break inside a group goes unnoticed by it; these
  checks catch them:

  - label: 1 to 9 characters of ``A-Z 0-9 + - _`` (9: ``SMAXSN1-1``);
  - data: characters 0x20..0x5F only (upper-case ASCII; lower case is a bit-6 flip),
    no SP in historique, never empty unless the group has a horodate;
  - standard: 2 or 3 HT-separated fields; a horodate is a season (``E H e h`` or SP)
    and 12 digits; a 2-field value may not start like a horodate (a lost HT);
  - a group cut by a single line break from an invalid neighbour may be a fragment of
    that neighbour (a flipped byte can read as CR or LF): it is invalid too; likewise
    the first group of a frame that began by cutting the previous one, without LF.

* Mode: forced by the caller, or detected per frame as the mode of most valid groups.
  A valid group of the other mode is then invalid (a mixed frame is corruption).

The decoder never raises on bad input: every problem is a string in ``Frame.errors``,
an ``error`` on the :class:`~wesh.tic.model.Group`, and a counter in
:class:`DecoderStats`. Results do not depend on how the stream is cut into ``feed``
calls.
"""

from __future__ import annotations

import dataclasses
import re
import types
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from wesh.errors import UsageError
from wesh.tic.model import Frame, Group, Mode

__all__ = ["DecoderStats", "FrameDecoder", "decode", "parse_group"]

_STX = b"\x02"
_ETX = b"\x03"
_EOT = b"\x04"
_HT = 0x09
_SP = 0x20
_LF_SUBSTITUTES = (0x0B, 0x0E, 0x0F)
_CR_SUBSTITUTE = 0x0C
# The specification says 8, but its own SMAXSN1-1..SMAXSN3-1 have 9 characters.
_MAX_LABEL = 9
_HORODATE_LEN = 13
_MIN_GROUP = 5  # "L D C" or "L\tD\tC"
_CACHE_SIZE = 4096
_EXCERPT = 24

_HIST = Mode.HISTORIQUE
_STD = Mode.STANDARD

# Translation tables and character sets, built once.
_HIGH_BYTES = bytes(range(0x80, 0x100))
_MASK_BIT7 = bytes(b & 0x7F for b in range(256))
_NORMALISE = bytes(
    0x0A if b in _LF_SUBSTITUTES else 0x0D if b == _CR_SUBSTITUTE else b for b in range(256)
)
_SUBSTITUTES = bytes((*_LF_SUBSTITUTES, _CR_SUBSTITUTE))
_NOT_SUBSTITUTES = bytes(b for b in range(256) if b not in _SUBSTITUTES)
_LABEL_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_"
_DATA_CHARS = bytes(range(0x20, 0x60))
_SEASONS = b"EHeh "
_LINE_BREAKS = re.compile(rb"([\r\n]+)")
_HORODATE_START = re.compile(r"[EHeh ][0-9]{12}")

_BAD_CHECKSUM = "bad checksum"


@dataclass(slots=True)
class DecoderStats:
    """Counters of a :class:`FrameDecoder`, all starting at 0.

    Every input byte ends up in exactly one of ``bytes_skipped`` (outside frames),
    ``bytes_in_frames`` (frames returned), ``bytes_dropped`` (frames dropped: EOT,
    oversize, empty, :meth:`FrameDecoder.reset`) or the decoder's pending buffer
    (:attr:`FrameDecoder.buffered_bytes`).
    """

    bytes_in: int = 0
    bytes_skipped: int = 0
    bytes_in_frames: int = 0
    bytes_dropped: int = 0
    parity_bytes: int = 0
    frames_complete: int = 0
    frames_incomplete: int = 0
    frames_interrupted: int = 0
    frames_oversize: int = 0
    frames_empty: int = 0
    groups_ok: int = 0
    groups_bad_checksum: int = 0
    groups_malformed: int = 0
    framing_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dictionary."""
        return {name: getattr(self, name) for name in self.__slots__}


def _excerpt(raw: bytes) -> str:
    text = raw.decode("ascii")
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def _spec_checksum_ok(body: bytes, mode: Mode | None) -> bool:
    """Whether the checksum matches the rule of the group's own mode, and nothing else."""
    if mode is None or len(body) < 3:
        return False
    zone = body[:-2] if mode is _HIST else body[:-1]
    return (sum(zone) & 0x3F) + 0x20 == body[-1]


def _unsplit(body: bytes, mode: Mode | None, reason: str) -> Group:
    """Build the invalid group for a body that could not be cut into fields."""
    return Group(
        label="",
        value="",
        checksum=chr(body[-1]) if body else "",
        checksum_ok=_spec_checksum_ok(body, mode),
        mode=mode,
        error=f"{reason}: {_excerpt(body)!r}",
    )


def _field_problem(label: bytes, value: bytes) -> str:
    """Say what is wrong with a label or a value that failed the quick checks."""
    if not 0 < len(label) <= _MAX_LABEL:
        return f"label of {len(label)} characters (1 to {_MAX_LABEL} allowed)"
    bad = label.translate(None, _LABEL_CHARS)
    if bad:
        return f"character {chr(bad[0])!r} not allowed in a label"
    bad = value.translate(None, _DATA_CHARS)
    return f"character {chr(bad[0])!r} not allowed in the data"


def _parse_detailed(body: bytes) -> Group:
    """Parse the 7-bit bytes between LF and CR, judged by its own mode only.

    This is the reference parser: it says what is wrong with a bad group.
    :func:`_parse_body` gives the same results, faster for valid groups.
    """
    if len(body) < _MIN_GROUP:
        return _unsplit(body, None, "too short")
    sep = body[-2]
    chk = body[-1]
    if sep == _SP:
        mode = _HIST
        zone = body[:-2]
        fields = zone.split(b" ")
    elif sep == _HT:
        mode = _STD
        zone = body[:-1]
        fields = body[:-2].split(b"\t")
    else:
        return _unsplit(body, None, "no SP or HT before the checksum")

    problem: str | None = None
    horodate: bytes | None = None
    if mode is _HIST:
        if b"\t" in zone:
            return _unsplit(body, mode, "HT inside a historique group")
        if len(fields) != 2:
            return _unsplit(body, mode, "space inside the data of a historique group")
        label, value = fields
    elif len(fields) == 2:
        label, value = fields
        if (
            len(value) >= _HORODATE_LEN
            and value[0] in _SEASONS
            and value[1:_HORODATE_LEN].isdigit()
        ):
            problem = "data starts like a horodate (HT lost?)"
    elif len(fields) == 3:
        label, horodate, value = fields
        if not (
            len(horodate) == _HORODATE_LEN and horodate[0] in _SEASONS and horodate[1:].isdigit()
        ):
            problem = f"bad horodate {_excerpt(horodate)!r}"
    else:
        return _unsplit(body, mode, f"{len(fields)} fields, expected 2 or 3")

    if problem is None:
        if (
            not 0 < len(label) <= _MAX_LABEL
            or label.translate(None, _LABEL_CHARS)
            or value.translate(None, _DATA_CHARS)
        ):
            problem = _field_problem(label, value)
        elif not value and horodate is None:
            problem = "empty data"
    expected = (sum(zone) & 0x3F) + 0x20
    if problem is None and chk != expected:
        problem = f"{_BAD_CHECKSUM} {chr(chk)!r} (expected {chr(expected)!r})"
        other = body[:-2] if mode is _STD else body[:-1]
        if chk == (sum(other) & 0x3F) + 0x20:
            other_mode = _HIST if mode is _STD else _STD
            problem += f"; it is the {other_mode} rule's value"
    return Group(
        label.decode("ascii"),
        value.decode("ascii"),
        None if horodate is None else horodate.decode("ascii"),
        chr(chk),
        chk == expected,
        mode,
        problem,
    )


def _slot_setters(
    cls: type, names: tuple[str, ...], *, post_init_ok: bool = False
) -> list[Callable[[object, object], None]]:
    """Return the slot setters of a frozen dataclass with exactly these fields.

    A ``__post_init__`` is refused unless the caller sets what it would compute.
    """
    fields = tuple(f.name for f in dataclasses.fields(cls))
    slots = [cls.__dict__.get(name) for name in names]
    if (
        fields != names
        or (hasattr(cls, "__post_init__") and not post_init_ok)
        or not all(isinstance(slot, types.MemberDescriptorType) for slot in slots)
    ):
        return []
    return [slot.__set__ for slot in slots]  # type: ignore[union-attr]


_GroupMaker = Callable[[str, str, str | None, str, bool, Mode | None, str | None], Group]
_FrameMaker = Callable[[Mode | None, tuple[Group, ...], bool, tuple[str, ...], bool], Frame]


def _group_maker() -> _GroupMaker:
    """Return a positional ``Group(...)`` that does not go through ``__init__``.

    A frozen dataclass sets each field with ``object.__setattr__`` in ``__init__``,
    which costs more than parsing a group. The slot descriptors do the same about twice
    as fast. The model is checked here, at import: if it changed, ``Group`` is used.
    """
    setters = _slot_setters(
        Group, ("label", "value", "horodate", "checksum", "checksum_ok", "mode", "error")
    )
    if not setters:
        return Group
    set_label, set_value, set_horodate, set_chk, set_ok, set_mode, set_error = setters
    new = object.__new__

    def new_group(  # noqa: PLR0917 -- Group's own positional fields
        label: str,
        value: str,
        horodate: str | None,
        chk: str,
        ok: bool,
        mode: Mode | None,
        error: str | None,
    ) -> Group:
        group: Group = new(Group)
        set_label(group, label)
        set_value(group, value)
        set_horodate(group, horodate)
        set_chk(group, chk)
        set_ok(group, ok)
        set_mode(group, mode)
        set_error(group, error)
        return group

    return new_group


def _frame_maker() -> _FrameMaker:
    """Return a positional ``Frame(...)`` that does not go through ``__init__``.

    The decoder knows whether every group is valid, so it sets ``all_valid`` itself
    instead of letting ``__post_init__`` check each group again.
    """
    setters = _slot_setters(
        Frame, ("mode", "groups", "complete", "errors", "all_valid"), post_init_ok=True
    )
    if not setters:
        return lambda mode, groups, complete, errors, _all_valid: Frame(
            mode, groups, complete, errors
        )
    set_mode, set_groups, set_complete, set_errors, set_all_valid = setters
    new = object.__new__

    def new_frame(
        mode: Mode | None,
        groups: tuple[Group, ...],
        complete: bool,
        errors: tuple[str, ...],
        all_valid: bool,
    ) -> Frame:
        frame: Frame = new(Frame)
        set_mode(frame, mode)
        set_groups(frame, groups)
        set_complete(frame, complete)
        set_errors(frame, errors)
        set_all_valid(frame, all_valid)
        return frame

    return new_frame


_new_group = _group_maker()
_new_frame = _frame_maker()

# Valid groups only (checksum checked apart), on the ASCII text of the group.
_HIST_GROUP = re.compile(r"([A-Z0-9+\-_]{1,9}) ([!-_]+) (.)", re.DOTALL)
_STD_GROUP = re.compile(r"([A-Z0-9+\-_]{1,9})\t(?:([EHeh ][0-9]{12})\t)?([ -_]*)\t(.)", re.DOTALL)


# Adler-32's low half is 1 + the byte sum modulo 65521 and its high half is a multiple
# of 64, so for 7-bit bodies of at most _MAX_GROUP_LIMIT bytes (512 * 127 < 65521)
# (adler32 - 1) & 0x3F is exactly the TIC checksum's sum & 0x3F, computed in C.
_adler32 = zlib.adler32
_MAX_GROUP_LIMIT = 512


def _parse_body(body: bytes) -> Group:
    """Parse the 7-bit bytes between LF and CR (same result as :func:`_parse_detailed`).

    Only for bodies of at most ``_MAX_GROUP_LIMIT`` bytes (see ``_adler32``).
    """
    text = body.decode("ascii")
    if (m := _HIST_GROUP.fullmatch(text)) is not None:
        if ((_adler32(body[:-2]) - 1) & 0x3F) + 0x20 == body[-1]:
            label, value, chk = m.groups()
            return _new_group(label, value, None, chk, True, _HIST, None)
    elif (m := _STD_GROUP.fullmatch(text)) is not None:
        label, horodate, value, chk = m.groups()
        if (
            ((_adler32(body[:-1]) - 1) & 0x3F) + 0x20 == body[-1]
            and (value or horodate)
            and (horodate or len(value) < _HORODATE_LEN or not _HORODATE_START.match(value))
        ):
            return _new_group(label, value, horodate, chk, True, _STD, None)
    return _parse_detailed(body)


def _break_note(brk: bytes, before: int | None, after: int | None) -> str | None:
    """Describe a damaged line break between groups ``before`` and ``after`` (1-based).

    ``None`` stands for the frame start or end; the expected breaks are LF at the start,
    CR LF between groups and CR at the end.
    """
    if before is None:
        if brk == b"\n":
            return None
        if brk == b"\r":
            return f"LF missing before group {after}"
        return f"unexpected line breaks {brk!r} before group {after}"
    if after is None:
        if brk == b"\r":
            return None
        if brk == b"\n":
            return f"CR missing after group {before}"
        return f"unexpected line breaks {brk!r} after group {before}"
    if brk == b"\r\n":
        return None
    if brk == b"\n":
        return f"CR missing after group {before}"
    if brk == b"\r":
        return f"LF missing before group {after}"
    return f"unexpected line breaks {brk!r} between groups {before} and {after}"


def _invalidate(group: Group, error: str) -> Group:
    """Mark a group invalid for a reason of its own; ``checksum_ok`` stays as it was."""
    return dataclasses.replace(group, error=error)


def _wrong_mode(group: Group, mode: Mode, forced: bool) -> Group:
    why = "the decoder expects" if forced else "in a frame of mode"
    return _invalidate(group, f"{group.mode} group, {why} {mode}")


def parse_group(body: bytes, *, mode: Mode | None = None) -> Group:
    """Parse one group from the bytes between its LF and its CR; never raises.

    The group's mode comes from the byte before its checksum (SP: historique, HT:
    standard) and only that mode's checksum rule is accepted. With ``mode`` given, a
    group of the other mode is invalid. Bytes with bit 7 set are masked first.
    """
    if not body.isascii():
        body = body.translate(_MASK_BIT7)
    body = bytes(body)
    group = _parse_body(body) if len(body) <= _MAX_GROUP_LIMIT else _parse_detailed(body)
    if mode is not None and group.valid and group.mode is not mode:
        return _wrong_mode(group, mode, forced=True)
    return group


class FrameDecoder:
    """Incremental decoder: feed it bytes as they come, get whole frames back.

    Args:
        mode: force a mode (groups of the other mode are invalid), or ``None`` to
            detect it per frame.
        max_frame_bytes: largest frame accepted, STX and ETX included; longer frames
            are dropped and counted. The internal buffer never exceeds it.
        max_group_bytes: largest group accepted (between LF and CR); longer ones are
            malformed.
    """

    __slots__ = (
        "_after_cut",
        "_buf",
        "_expected",
        "_in_frame",
        "_max_body",
        "_max_group",
        "_mode",
        "_odd",
        "_stats",
        "_valid_hist",
        "_valid_std",
    )

    def __init__(
        self, *, mode: Mode | None = None, max_frame_bytes: int = 4096, max_group_bytes: int = 256
    ) -> None:
        if max_frame_bytes < 2 + _MIN_GROUP + 2:
            raise UsageError(f"max_frame_bytes must be at least {2 + _MIN_GROUP + 2}")
        if not _MIN_GROUP <= max_group_bytes <= _MAX_GROUP_LIMIT:
            raise UsageError(
                f"max_group_bytes must be {_MIN_GROUP} to {_MAX_GROUP_LIMIT}"
                " (the longest real group, PJOURF+1, has 109 bytes)"
            )
        try:
            self._mode = None if mode is None else Mode(mode)
        except ValueError as exc:
            raise UsageError(f"unknown TIC mode {mode!r}") from exc
        self._max_body = max_frame_bytes - 2
        self._max_group = max_group_bytes
        self._stats = DecoderStats()
        self._buf = bytearray()
        self._in_frame = False
        self._after_cut = False
        # Valid groups of each mode by their bytes: frames repeat most of their groups,
        # so most groups are a dictionary look-up. (Two attributes, not a dictionary
        # keyed by mode: hashing an Enum member runs Python code.)
        self._valid_hist: dict[bytes, Group] = {}
        self._valid_std: dict[bytes, Group] = {}
        # The mode expected for the frame being parsed, and how many of its groups
        # are not valid groups of that mode.
        self._expected = self._mode or _HIST
        self._odd = 0

    @property
    def stats(self) -> DecoderStats:
        """The live counters of this decoder."""
        return self._stats

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the frame in progress held by the decoder (STX included)."""
        return 1 + len(self._buf) if self._in_frame else 0

    def reset(self) -> None:
        """Forget the frame in progress (e.g. after a serial reconnect); keep the stats."""
        self._stats.bytes_dropped += self.buffered_bytes
        self._buf.clear()
        self._in_frame = False
        self._after_cut = False

    def flush(self) -> list[Frame]:
        """End of input: return the pending partial frame (``complete=False``), if any."""
        if not self._in_frame:
            return []
        body = bytes(self._buf)
        after_cut = self._after_cut
        self._buf.clear()
        self._in_frame = False
        self._after_cut = False
        frame = self._frame(body, False, after_cut, 1 + len(body))
        if frame is not None:
            frame = dataclasses.replace(frame, errors=(*frame.errors, "missing ETX: end of input"))
            return [frame]
        return []

    def feed(self, data: bytes) -> list[Frame]:
        """Decode ``data`` (any slice of the stream); return the frames it completes."""
        if type(data) is not bytes:
            data = bytes(data)
        st = self._stats
        size = len(data)
        st.bytes_in += size
        if not data.isascii():
            st.parity_bytes += size - len(data.translate(None, _HIGH_BYTES))
            data = data.translate(_MASK_BIT7)
        frames: list[Frame] = []
        buf = self._buf
        in_frame = self._in_frame
        after_cut = self._after_cut
        max_body = self._max_body
        find = data.find
        make_frame = self._frame
        forced = self._mode
        valid_hist = self._valid_hist
        valid_std = self._valid_std
        lookup = self._lookup
        skipped = fast_frames = fast_groups = fast_bytes = 0
        pos = 0
        while pos < size:
            if not in_frame:  # hunting: skip to the next STX
                start = find(_STX, pos)
                if start < 0:
                    skipped += size - pos
                    break
                skipped += start - pos
                pos = start + 1
                in_frame = True
                after_cut = False
            # Inside a frame: the next terminator must come within the room left.
            room = max_body - len(buf)
            window = pos + room + 1
            window = size if window > size else window
            end = find(_ETX, pos, window)
            part = data[pos:end] if end >= 0 else data[pos:window]
            if _STX in part or _EOT in part:  # the frame is cut short
                cut = part.find(_STX)
                eot = part.find(_EOT)
                if cut < 0 or 0 <= eot < cut:
                    cut = eot
                part = part[:cut]
                end = pos + cut
            elif end < 0:  # no terminator within reach
                if size - pos <= room:  # input ended: wait for more
                    buf += part
                    break
                # No terminator within max_frame_bytes: drop, hunt for the next STX.
                st.frames_oversize += 1
                st.bytes_dropped += 1 + len(buf) + room + 1
                buf.clear()
                in_frame = False
                pos += room + 1
                continue
            if buf:
                buf += part
                body = bytes(buf)
                buf.clear()
            else:
                body = part
            term = data[end]
            pos = end + 1
            if term == 0x03:
                in_frame = False
                if body.startswith(b"\n") and body.endswith(b"\r"):
                    # Fast path: LF group CR LF group CR ... LF group CR, every group
                    # valid in the mode to expect (forced, or the separator before the
                    # last checksum). Any damage, a stray or substituted line break
                    # included, leaves some piece invalid: the full path then decides.
                    expected = forced or (_HIST if body[-3:-2] == b" " else _STD)
                    self._expected = expected
                    self._odd = 0
                    get = (valid_hist if expected is _HIST else valid_std).get
                    groups = [get(p) or lookup(p) for p in body[1:-1].split(b"\r\n")]
                    if not self._odd:
                        frames.append(_new_frame(expected, tuple(groups), True, (), True))
                        fast_frames += 1
                        fast_groups += len(groups)
                        fast_bytes += len(body) + 2
                        continue
                frame = make_frame(body, True, after_cut, len(body) + 2)
            elif term == 0x04:  # EOT: the meter interrupted the frame
                st.frames_interrupted += 1
                st.bytes_dropped += len(body) + 2
                in_frame = False
                continue
            else:  # STX: the ETX was lost; this STX starts the next frame
                frame = make_frame(body, False, after_cut, len(body) + 1)
                if frame is not None:
                    frame = dataclasses.replace(
                        frame, errors=(*frame.errors, "missing ETX: frame cut by the next STX")
                    )
                after_cut = True
            if frame is not None:
                frames.append(frame)
        self._after_cut = after_cut
        self._in_frame = in_frame
        st.bytes_skipped += skipped
        st.frames_complete += fast_frames
        st.groups_ok += fast_groups
        st.bytes_in_frames += fast_bytes
        return frames

    # -- frame parsing ----------------------------------------------------------------

    def _lookup(self, piece: bytes) -> Group:
        """Parse a piece that is not a known valid group of the expected mode.

        Valid groups are cached per mode; invalid ones are rare and parsed again.
        """
        if len(piece) > self._max_group:
            group = Group(
                label="",
                value="",
                checksum_ok=False,
                error=f"group of {len(piece)} bytes (max {self._max_group}): {_excerpt(piece)!r}",
            )
        else:
            group = _parse_body(piece)
        if group.checksum_ok and group.error is None:  # Group.valid, inlined (hot path)
            cache = self._valid_hist if group.mode is _HIST else self._valid_std
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[piece] = group
            if group.mode is self._expected:
                return group
        self._odd += 1
        return group

    def _group(self, piece: bytes) -> Group:
        return self._valid_hist.get(piece) or self._valid_std.get(piece) or self._lookup(piece)

    def _frame(self, body: bytes, complete: bool, after_cut: bool, size: int) -> Frame | None:
        """Turn a frame body (between STX and its terminator) into a Frame, or None."""
        st = self._stats
        groups: list[Group] | None = None
        notes: list[list[str]] | None = None
        if body.startswith(b"\n") and body.endswith(b"\r"):
            # Regular shape (see feed); groups may be of either mode, or invalid.
            group = self._group
            groups = [group(p) for p in body[1:-1].split(b"\r\n")]
            if not all(g.valid for g in groups):
                groups = None
        if groups is None:
            groups, notes = self._slow_groups(body, complete, after_cut)
        if not groups:
            st.frames_empty += 1
            st.bytes_dropped += size
            return None
        st.bytes_in_frames += size
        if complete:
            st.frames_complete += 1
        else:
            st.frames_incomplete += 1

        valid_modes = [g.mode for g in groups if g.valid]
        n_hist = valid_modes.count(_HIST)
        n_std = len(valid_modes) - n_hist
        mode = self._mode
        forced = mode is not None
        if mode is None and valid_modes:
            # Majority of the valid groups; on a tie, the first valid group decides.
            mode = valid_modes[0] if n_hist == n_std else _HIST if n_hist > n_std else _STD
        wrong = n_std if mode is _HIST else n_hist if mode is _STD else 0
        if wrong and mode is not None:
            groups = [
                _wrong_mode(g, mode, forced) if g.valid and g.mode is not mode else g
                for g in groups
            ]
        n_ok = len(valid_modes) - wrong
        st.groups_ok += n_ok
        if n_ok == 0:
            mode = None
        if n_ok == len(groups) and notes is None:
            return _new_frame(mode, tuple(groups), complete, (), True)
        return _new_frame(
            mode, tuple(groups), complete, tuple(self._errors(groups, notes)), n_ok == len(groups)
        )

    def _errors(self, groups: list[Group], notes: list[list[str]] | None) -> list[str]:
        """Frame errors in stream order; count bad groups and framing notes."""
        st = self._stats
        errors: list[str] = []
        for i, g in enumerate(groups):
            if notes is not None and notes[i]:
                errors += notes[i]
                st.framing_errors += len(notes[i])
            if not g.valid:
                error = g.error or "invalid"
                if error.startswith(_BAD_CHECKSUM):
                    st.groups_bad_checksum += 1
                else:
                    st.groups_malformed += 1
                errors.append(f"group {i + 1} {g.label!r}: {error}")
        if notes is not None and notes[-1]:
            errors += notes[-1]
            st.framing_errors += len(notes[-1])
        return errors

    def _slow_groups(
        self, body: bytes, complete: bool, after_cut: bool
    ) -> tuple[list[Group], list[list[str]]]:
        """Cut a damaged frame body into groups, noting every framing repair.

        Returns the groups and, per group, the framing notes that precede its errors
        (plus one last list for the frame end).
        """
        raw = body
        has_substitutes = bool(body.translate(None, _NOT_SUBSTITUTES))
        if has_substitutes:
            body = body.translate(_NORMALISE)
        tokens = _LINE_BREAKS.split(body)
        # tokens alternate piece, line break, piece, ...; only the first and the last
        # piece may be empty, since line-break runs are maximal.
        pieces = tokens[0::2]
        breaks = tokens[1::2]
        offsets: list[int] = []
        offset = 0
        for i, token in enumerate(tokens):
            if i % 2:
                offsets.append(offset)
            offset += len(token)
        first = 0 if pieces[0] else 1
        last = len(pieces) if pieces[-1] else len(pieces) - 1
        count = last - first
        if count <= 0:
            return [], []
        notes: list[list[str]] = [[] for _ in range(count + 1)]
        groups: list[Group] = []
        for j in range(first, last):
            piece = pieces[j]
            groups.append(self._group(piece))
        intrinsic = [g.valid for g in groups]
        lone: list[tuple[int, int, str]] = []  # (group a, group b, "CR"/"LF")

        # Each line-break run j sits between piece j and piece j+1.
        for j, brk in enumerate(breaks):
            a = j - first  # index of the group before, or -1
            b = a + 1  # index of the group after, or count
            has_a = a >= 0
            has_b = b < count
            note = _break_note(brk, a + 1 if has_a else None, b + 1 if has_b else None)
            if note is not None:
                notes[b if has_b else count].append(note)
                if has_a and has_b and len(brk) == 1:
                    lone.append((a, b, "CR" if brk == b"\r" else "LF"))
            if has_substitutes:
                start = offsets[j]
                for c in raw[start : start + len(brk)]:
                    if c in _SUBSTITUTES:
                        kind = "CR" if c == _CR_SUBSTITUTE else "LF"
                        if (kind == "LF" and has_b) or not has_a:
                            where = f"before group {b + 1}"
                        else:
                            where = f"after group {a + 1}"
                        notes[b if has_b else count].append(f"{kind} received as 0x{c:02X} {where}")

        if first == 0:  # the body does not start with a line break
            notes[0].insert(0, "LF missing before group 1")
            if after_cut and groups[0].valid:
                groups[0] = _invalidate(
                    groups[0],
                    "starts right after an STX that cut the previous frame: may be the tail "
                    "of a corrupted group",
                )
        if last == len(pieces):  # the body does not end with a line break
            if complete:
                notes[count].append(f"CR missing after group {count} (before ETX)")
            else:
                groups[-1] = _invalidate(
                    groups[-1],
                    f"truncated: the frame ended before its CR: {_excerpt(pieces[last - 1])!r}",
                )
                intrinsic[-1] = False
        for a, b, kind in lone:
            if intrinsic[a] and not intrinsic[b]:
                keep, bad = a, b
            elif intrinsic[b] and not intrinsic[a]:
                keep, bad = b, a
            else:
                continue
            if groups[keep].valid:
                groups[keep] = _invalidate(
                    groups[keep],
                    f"a lone {kind} separates it from invalid group {bad + 1}: "
                    "may be a fragment of it",
                )
        return groups, notes


def decode(data: bytes, *, mode: Mode | None = None) -> list[Frame]:
    """Decode a whole capture: feed it to a fresh decoder, then flush."""
    decoder = FrameDecoder(mode=mode)
    return decoder.feed(data) + decoder.flush()
