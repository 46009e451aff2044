"""Standard-mode horodates, and the one place where Europe/Paris time is computed.

Wire format [54E §6.2.1.1], 13 characters::

    S  AA  MM  JJ  hh  mm  ss        e.g.  H081225223518  = 25/12/2008 22:35:18, winter
    |  |   |   |   |   |   +- second 00..59      E090714074553  = 14/07/2009 07:45:53, summer
    |  |   |   |   |   +----- minute 00..59       200214060000  = DPM/FPM, season "not applicable"
    |  |   |   |   +--------- hour   00..23
    |  |   |   +------------- day    01..31 (valid for the month)
    |  |   +----------------- month  01..12
    |  +--------------------- year   00..99 → 2000..2099
    +------------------------ season: H winter, E summer (upper case: RTC normal),
                              h / e: RTC in degraded mode (autonomy exceeded, not yet
                              resynchronised), SP: not applicable (DPM/FPM groups)

The spec only says "heure d'hiver / heure d'été". Mapping ``H`` → UTC+01:00 and
``E`` → UTC+02:00 (the French legal times) is our **inference**; it makes the ambiguous
hour of the autumn change unambiguous. A horodate whose season is a space is read as
Europe/Paris wall time (``fold=0``: the first of two ambiguous instants; a wall time
that does not exist in spring is kept as written).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from wesh.errors import DecodeError, UsageError

__all__ = [
    "PARIS",
    "SUMMER",
    "WINTER",
    "Horodate",
    "format_horodate",
    "paris_day",
    "parse_horodate",
    "to_paris",
]

PARIS = ZoneInfo("Europe/Paris")
"""The legal time zone of every TIC meter (metropolitan France)."""

WINTER = timezone(timedelta(hours=1), "UTC+01:00")
"""Offset of season ``H`` (heure d'hiver) [inference]."""

SUMMER = timezone(timedelta(hours=2), "UTC+02:00")
"""Offset of season ``E`` (heure d'été) [inference]."""

_SEASONS = {"H": WINTER, "E": SUMMER}
_LENGTH = 13


@dataclass(frozen=True, slots=True)
class Horodate:
    """A decoded horodate.

    ``at`` is timezone-aware: fixed UTC+01:00 / UTC+02:00 for seasons ``H`` / ``E``,
    Europe/Paris for season ``" "``. ``season`` is ``"H"``, ``"E"`` or ``" "`` (upper
    case); ``degraded`` is true when the meter sent it in lower case (its clock is in
    degraded mode). ``raw`` is the text as received.
    """

    at: datetime
    season: str
    degraded: bool
    raw: str

    @property
    def local(self) -> datetime:
        """The instant as Europe/Paris wall time."""
        return to_paris(self.at)


def parse_horodate(text: str) -> Horodate:
    """Decode ``SAAMMJJhhmmss``; raise :class:`DecodeError` on anything malformed."""
    if len(text) != _LENGTH:
        raise DecodeError(f"horodate must have {_LENGTH} characters, got {len(text)}")
    letter, digits = text[0], text[1:]
    if not (digits.isascii() and digits.isdigit()):
        raise DecodeError(f"horodate {text!r}: date and time must be 12 digits")
    if letter not in ("H", "E", "h", "e", " "):
        raise DecodeError(f"horodate {text!r}: season must be H, E, h, e or space")
    season = letter.upper()
    yy, mo, dd, hh, mi, ss = (int(digits[i : i + 2]) for i in range(0, 12, 2))
    tz = _SEASONS.get(season, PARIS)
    try:
        at = datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=tz)
    except ValueError as exc:
        raise DecodeError(f"horodate {text!r}: impossible date or time ({exc})") from exc
    return Horodate(at=at, season=season, degraded=letter in "he", raw=text)


def format_horodate(at: datetime, *, degraded: bool = False, season: str | None = None) -> str:
    """Encode ``at`` as a 13-character horodate (the inverse of :func:`parse_horodate`).

    ``season`` defaults to the Europe/Paris legal time at ``at`` (``E`` in summer,
    ``H`` in winter) and the wall time is written in that offset. An explicit ``"H"`` or
    ``"E"`` writes the wall time in UTC+01:00 / UTC+02:00; ``" "`` writes Europe/Paris
    wall time (as DPM/FPM groups do). ``degraded`` writes the letter in lower case.
    Microseconds are dropped. Raises :class:`UsageError` for a naive datetime, an
    unknown season or a year outside 2000..2099.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError("format_horodate needs a timezone-aware datetime")
    if season is None:
        wall = to_paris(at)
        season = "E" if wall.utcoffset() == SUMMER.utcoffset(None) else "H"
    elif season in _SEASONS:
        wall = at.astimezone(_SEASONS[season])
    elif season == " ":
        wall = to_paris(at)
    else:
        raise UsageError(f"horodate season must be 'H', 'E' or ' ', not {season!r}")
    if not 2000 <= wall.year <= 2099:
        raise UsageError(f"horodate year must be 2000..2099, not {wall.year}")
    letter = season.lower() if degraded else season
    return f"{letter}{wall:%y%m%d%H%M%S}"


def to_paris(at: datetime) -> datetime:
    """Convert an aware datetime to Europe/Paris wall time (kept as is if already there).

    Raises :class:`UsageError` for a naive datetime, which would otherwise be taken
    as the host's local time.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError("a timezone-aware datetime is required")
    return at.astimezone(PARIS)


def paris_day(at: datetime) -> date:
    """Return the Europe/Paris calendar day of an aware datetime."""
    return to_paris(at).date()
