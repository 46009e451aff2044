"""Standard-mode horodates: spec examples, season handling, errors, round-trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import DecodeError, UsageError
from wesh.tic.horodate import (
    PARIS,
    SUMMER,
    WINTER,
    Horodate,
    format_horodate,
    paris_day,
    parse_horodate,
    to_paris,
)


@pytest.mark.parametrize(
    ("text", "wall", "season", "degraded", "offset_h"),
    [
        # Spec examples [54E §6.2.1.1].
        ("H081225223518", (2008, 12, 25, 22, 35, 18), "H", False, 1),
        ("E090714074553", (2009, 7, 14, 7, 45, 53), "E", False, 2),
        # Real frames quoted in the reference note.
        ("E210414082625", (2021, 4, 14, 8, 26, 25), "E", False, 2),
        ("H240210121355", (2024, 2, 10, 12, 13, 55), "H", False, 1),
        # Degraded clock: lower-case letter.
        ("h240210121355", (2024, 2, 10, 12, 13, 55), "H", True, 1),
        ("e090714074553", (2009, 7, 14, 7, 45, 53), "E", True, 2),
        # DPM/FPM: season space = Europe/Paris wall time.
        (" 200214060000", (2020, 2, 14, 6, 0, 0), " ", False, 1),
        (" 200714060000", (2020, 7, 14, 6, 0, 0), " ", False, 2),
    ],
)
def test_parse_examples(text, wall, season, degraded, offset_h):
    h = parse_horodate(text)
    assert isinstance(h, Horodate)
    assert (h.at.year, h.at.month, h.at.day, h.at.hour, h.at.minute, h.at.second) == wall
    assert h.at.utcoffset() == timedelta(hours=offset_h)
    assert h.season == season
    assert h.degraded is degraded
    assert h.raw == text


def test_season_letters_map_to_fixed_offsets():
    assert parse_horodate("H081225223518").at.tzinfo is WINTER
    assert parse_horodate("E090714074553").at.tzinfo is SUMMER
    assert parse_horodate(" 200214060000").at.tzinfo is PARIS


def test_letter_resolves_the_ambiguous_autumn_hour():
    # 2023-10-29 02:30 happened twice in Paris: first in summer time, then in winter time.
    first = parse_horodate("E231029023000")
    second = parse_horodate("H231029023000")
    assert second.at - first.at == timedelta(hours=1)
    assert first.at.astimezone(UTC) == datetime(2023, 10, 29, 0, 30, tzinfo=UTC)
    assert second.at.astimezone(UTC) == datetime(2023, 10, 29, 1, 30, tzinfo=UTC)
    assert first.local.fold == 0
    assert second.local.fold == 1


def test_space_season_takes_first_ambiguous_instant():
    h = parse_horodate(" 231029023000")
    assert h.at.astimezone(UTC) == datetime(2023, 10, 29, 0, 30, tzinfo=UTC)


def test_local_is_paris_wall_time():
    h = parse_horodate("H240210121355")
    assert h.local.tzinfo is PARIS
    assert h.local.hour == 12


@pytest.mark.parametrize(
    "text",
    [
        "",
        "H08122522351",  # 12 characters
        "H0812252235180",  # 14 characters
        "X081225223518",  # bad season
        "h08122522351a",  # non-digit
        "H08-225223518",
        "H\uff10\uff181225223518",  # full-width digits
        "H081325223518",  # month 13
        "H080230223518",  # February 30
        "H081225253518",  # hour 25
        "H081225246018",  # minute 60
        "H081225223560",  # second 60
        "H081200223518",  # day 0
        "H080025223518",  # month 0
        "\t081225223518",
    ],
)
def test_malformed_raise_decode_error(text):
    with pytest.raises(DecodeError):
        parse_horodate(text)


def test_february_29_only_in_leap_years():
    assert parse_horodate("H080229223518").at.day == 29
    with pytest.raises(DecodeError, match="impossible"):
        parse_horodate("H090229000000")


@given(st.text(max_size=20))
def test_parse_raises_only_decode_error(text):
    try:
        h = parse_horodate(text)
    except DecodeError:
        return
    assert h.raw == text
    assert h.at.tzinfo is not None


def test_format_default_season_follows_paris():
    winter = datetime(2024, 2, 10, 11, 13, 55, tzinfo=UTC)
    summer = datetime(2021, 4, 14, 6, 26, 25, tzinfo=UTC)
    assert format_horodate(winter) == "H240210121355"
    assert format_horodate(summer) == "E210414082625"
    assert format_horodate(summer, degraded=True) == "e210414082625"


def test_format_explicit_seasons():
    at = datetime(2020, 2, 14, 5, 0, tzinfo=UTC)
    assert format_horodate(at, season=" ") == " 200214060000"
    assert format_horodate(at, season=" ", degraded=True) == " 200214060000"
    assert format_horodate(at, season="E") == "E200214070000"
    assert format_horodate(at, season="H") == "H200214060000"


def test_format_drops_microseconds():
    at = datetime(2024, 2, 10, 12, 13, 55, 999_999, tzinfo=WINTER)
    assert format_horodate(at) == "H240210121355"


@pytest.mark.parametrize(
    ("at", "season"),
    [
        (datetime(2024, 2, 10, 12, 13, 55), None),  # noqa: DTZ001 - naive on purpose
        (datetime(2024, 2, 10, tzinfo=UTC), "h"),
        (datetime(2024, 2, 10, tzinfo=UTC), "X"),
        (datetime(1999, 12, 31, 22, tzinfo=UTC), None),  # 1999-12-31 23:00 Paris
        (datetime(2099, 12, 31, 23, 30, tzinfo=UTC), None),  # 2100 in Paris
    ],
)
def test_format_rejects_bad_arguments(at, season):
    with pytest.raises(UsageError):
        format_horodate(at, season=season)


def test_to_paris_and_paris_day():
    at = datetime(2024, 6, 30, 22, 30, tzinfo=UTC)  # 00:30 on July 1st in Paris
    assert to_paris(at).hour == 0
    assert paris_day(at).isoformat() == "2024-07-01"
    with pytest.raises(UsageError):
        to_paris(datetime(2024, 6, 30))  # noqa: DTZ001 - naive on purpose


# Hypothesis bounds are naive by design; time zones are drawn separately.
_FIRST = datetime(2000, 1, 1)  # noqa: DTZ001
_LAST = datetime(2099, 12, 31, 23, 59, 59)  # noqa: DTZ001
_walls = st.datetimes(min_value=_FIRST, max_value=_LAST)


@given(wall=_walls, letter=st.sampled_from("HEhe "))
def test_text_round_trip(wall, letter):
    text = letter + wall.strftime("%y%m%d%H%M%S")
    h = parse_horodate(text)
    assert format_horodate(h.at, degraded=h.degraded, season=h.season) == text


@given(
    at=st.datetimes(
        min_value=_FIRST + timedelta(days=1),
        max_value=_LAST - timedelta(days=1),
        timezones=st.just(UTC),
    ).map(lambda d: d.replace(microsecond=0)),
    degraded=st.booleans(),
)
def test_instant_round_trip(at, degraded):
    text = format_horodate(at, degraded=degraded)
    h = parse_horodate(text)
    assert h.at == at
    assert h.degraded is degraded
    assert h.at.utcoffset() == to_paris(at).utcoffset()


@given(
    at=st.datetimes(
        min_value=_FIRST + timedelta(days=1),
        max_value=_LAST - timedelta(days=1),
        timezones=st.sampled_from([UTC, PARIS, timezone(timedelta(hours=-5))]),
    ).map(lambda d: d.replace(microsecond=0)),
    season=st.sampled_from("HE"),
)
def test_explicit_season_round_trip(at, season):
    h = parse_horodate(format_horodate(at, season=season))
    # Compare instants: aware datetimes in a Paris fold never compare equal across zones.
    assert h.at.timestamp() == at.timestamp()
    assert h.season == season
