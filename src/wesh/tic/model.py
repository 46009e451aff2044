"""Typed objects produced by the TIC decoder (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Frame", "Group", "Mode"]


class Mode(StrEnum):
    """TIC transmission mode.

    ``HISTORIQUE``: SP separator, 1200 baud, checksum excludes the separator before it.
    ``STANDARD``: HT separator, 9600 baud, checksum includes the separator before it.
    """

    HISTORIQUE = "historique"
    STANDARD = "standard"

    @property
    def separator(self) -> int:
        """The byte separating the fields of a group in this mode."""
        return 0x20 if self is Mode.HISTORIQUE else 0x09

    @property
    def baudrate(self) -> int:
        """The line speed of this mode."""
        return 1200 if self is Mode.HISTORIQUE else 9600


@dataclass(frozen=True, slots=True)
class Group:
    """One information group (``LF label SEP [horodate SEP] data SEP checksum CR``).

    ``label``/``value`` are the ASCII text of the group (empty when the group could not
    be split). ``horodate`` is the raw 13-character horodate of a standard-mode group,
    else ``None``. ``checksum_ok`` says exactly what the specification says of the
    group: its checksum matches the rule of its own mode (historique for SP, standard
    for HT), and never the other mode's rule. ``error`` is ``None`` for a valid group,
    else why it is not valid: a bad checksum, or a check that catches what the weak
    6-bit checksum lets through (a bit-6 flip, a group of the other mode inside a
    frame, a fragment next to a damaged line break). Use :attr:`valid`.
    """

    label: str
    value: str
    horodate: str | None = None
    checksum: str = ""
    checksum_ok: bool = True
    mode: Mode | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        """True when the group can be trusted: checksum right and every check passed."""
        return self.checksum_ok and self.error is None


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame (``STX group... ETX``), or the part of it received before an interruption.

    ``mode`` is the mode detected for the frame (``None`` when no group was valid);
    ``complete`` is false for a frame cut by EOT, by an unexpected STX, by the
    maximum-size limit or by the end of the input. ``errors`` lists what was wrong
    with the frame as a whole and with each invalid group, in order.
    """

    mode: Mode | None
    groups: tuple[Group, ...]
    complete: bool
    errors: tuple[str, ...] = ()
    #: Every group is valid (computed; the decoder sets it without re-checking).
    all_valid: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "all_valid", all(g.valid for g in self.groups))

    @property
    def valid_groups(self) -> tuple[Group, ...]:
        """The valid groups (see :attr:`Group.valid`)."""
        if self.all_valid:
            return self.groups
        return tuple(g for g in self.groups if g.valid)

    def values(self) -> dict[str, str]:
        """Map each valid label to its data (the last occurrence wins)."""
        if self.all_valid:  # the common case, on every consumer's hot path
            return {g.label: g.value for g in self.groups}
        return {g.label: g.value for g in self.groups if g.valid}
