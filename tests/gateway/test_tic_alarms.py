"""TIC overload and status-register alarms: edge-triggered GatewayEvents, pure and in weshd."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway._weshd import box_toml, config_toml, short_tmp, wait_until
from wesh.gateway.channels import (
    TIC_OVERLOAD_CONFIRM_POLLS,
    ChannelMapper,
    GatewayEvent,
    TicAlarmGuard,
    check_path,
)
from wesh.gateway.config import BoxConfig
from wesh.gateway.daemon import Gateway
from wesh.gateway.drivers.tic import tic_readings
from wesh.sim import SimFarm, run_simulators
from wesh.tic.decoder import decode
from wesh.tic.encoder import encode_frame
from wesh.tic.meter import MeterState
from wesh.tic.model import Mode
from wesh.wes.readings import Reading

__all__ = ["short_tmp"]  # fixture, imported for pytest

T0 = datetime(2025, 1, 15, 18, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def historique(*, iinst: int, adps: bool, isousc: int = 45) -> list[tuple[str, str]]:
    groups = [
        ("ADCO", "031762120162"),
        ("OPTARIF", "BASE"),
        ("ISOUSC", f"{isousc:02d}"),
        ("BASE", "012345678"),
        ("PTEC", "TH.."),
        ("IINST", f"{iinst:03d}"),
    ]
    if adps:
        groups.append(("ADPS", f"{iinst:03d}"))
    return [*groups, ("IMAX", "090"), ("PAPP", f"{iinst * 230:05d}"), ("MOTDETAT", "000000")]


def standard(stge: str, *, sinsts: int = 3000) -> list[tuple[str, str]]:
    return [
        ("ADSC", "041876543210"),
        ("VTIC", "02"),
        ("EAST", "000123456"),
        ("IRMS1", "013"),
        ("URMS1", "231"),
        ("PREF", "09"),
        ("SINSTS", f"{sinsts:05d}"),
        ("STGE", stge),
    ]


def serial_readings(groups: list[tuple[str, str]], mode: Mode, at: datetime) -> list[Reading]:
    """What the serial TIC driver would return for a meter sending these groups."""
    frames = decode(encode_frame(groups, mode=mode))
    assert len(frames) == 1 and not frames[0].errors
    return tic_readings(MeterState().update(frames[0]), poll_time=at)


def wes_readings(at: datetime, *, iinst: int, isousc: int = 30) -> list[Reading]:
    """The TIC part of a WES page: no ADPS, only IINST and ISOUSC."""
    return [
        Reading("tic.1.available", True, None, None, at, "state"),
        Reading("tic.1.current.1", iinst, "A", None, at, "gauge"),
        Reading("tic.1.isousc", isousc, "A", None, at, "gauge"),
        Reading("tic.1.power_va", iinst * 230, "VA", None, at, "gauge"),
    ]


def run(guard: TicAlarmGuard, polls: Sequence[list[Reading]]) -> list[list[GatewayEvent]]:
    return [guard.check(readings, poll_time=T0 + n * MINUTE) for n, readings in enumerate(polls)]


# ------------------------------------------------------------------------------ overload


def test_a_historique_adps_overload_is_one_episode() -> None:
    at = [T0 + n * MINUTE for n in range(6)]
    polls = [
        serial_readings(historique(iinst=12, adps=False), Mode.HISTORIQUE, at[0]),
        serial_readings(historique(iinst=52, adps=True), Mode.HISTORIQUE, at[1]),
        serial_readings(historique(iinst=53, adps=True), Mode.HISTORIQUE, at[2]),
        serial_readings(historique(iinst=51, adps=True), Mode.HISTORIQUE, at[3]),
        serial_readings(historique(iinst=12, adps=False), Mode.HISTORIQUE, at[4]),
        serial_readings(historique(iinst=13, adps=False), Mode.HISTORIQUE, at[5]),
    ]
    assert all(check_path(r.path) is None for poll in polls for r in poll)
    events = run(TicAlarmGuard("flat1"), polls)
    assert [[e.kind for e in poll] for poll in events] == [
        [],
        [],  # one poll is not an episode yet
        ["tic_overload"],
        [],
        ["tic_overload_end"],
        [],
    ]
    start, end = events[2][0], events[4][0]
    assert start.severity == "alarm" and end.severity == "info"
    assert start.box == "flat1" and start.channel == "flat1/tic.1.overload"
    assert start.at == at[2]
    assert start.data == {
        "tic": 1,
        "iinst_a": 53,
        "currents_a": [53],
        "isousc_a": 45,
        "power_va": 53 * 230,
        "source": "meter",
        "since": at[1].isoformat(),
    }
    assert start.message == "TIC1 overload: IINST 53 A > ISOUSC 45 A (12190 VA)"
    assert end.data["duration_s"] == 180.0 and end.data["since"] == at[1].isoformat()
    assert end.message == "TIC1 overload over after 3 min (IINST 12 A)"


def test_a_wes_overload_is_iinst_above_isousc() -> None:
    polls = [wes_readings(T0, iinst=i) for i in (25, 31, 35, 30, 29)]
    events = run(TicAlarmGuard("flat2"), polls)
    assert [[e.kind for e in poll] for poll in events] == [
        [],
        [],
        ["tic_overload"],
        ["tic_overload_end"],  # IINST = ISOUSC is not above it
        [],
    ]
    assert events[2][0].data["source"] == "iinst_above_isousc"
    assert events[2][0].data["isousc_a"] == 30


def test_a_one_poll_spike_is_not_an_episode() -> None:
    polls = [wes_readings(T0, iinst=i) for i in (25, 36, 25, 33, 25, 25)]
    assert all(poll == [] for poll in run(TicAlarmGuard("flat"), polls))


def test_an_unreadable_meter_neither_starts_nor_ends_an_episode() -> None:
    unplugged = [Reading("tic.1.available", False, None, None, T0, "state")]
    polls = [
        wes_readings(T0, iinst=40),
        unplugged,
        wes_readings(T0, iinst=40),
        unplugged,
        [],
        wes_readings(T0, iinst=20),
    ]
    kinds = [[e.kind for e in poll] for poll in run(TicAlarmGuard("flat"), polls)]
    assert kinds == [[], [], ["tic_overload"], [], [], ["tic_overload_end"]]


def test_a_standard_meter_overload_is_stge_bit_7() -> None:
    at = [T0 + n * MINUTE for n in range(4)]
    polls = [
        serial_readings(standard("003A4080", sinsts=9800), Mode.STANDARD, at[n]) for n in range(3)
    ] + [serial_readings(standard("003A4000"), Mode.STANDARD, at[3])]
    events = run(TicAlarmGuard("meter"), polls)
    assert [[e.kind for e in poll] for poll in events] == [
        [],
        ["tic_overload"],
        [],
        ["tic_overload_end"],
    ]
    start = events[1][0]
    assert start.data["source"] == "meter" and start.data["stge"] == "003A4080"
    assert start.message == "TIC1 overload: reference power exceeded (9800 VA)"


@given(st.lists(st.booleans(), max_size=40))
def test_episodes_are_runs_of_confirmed_overloads(overloads: list[bool]) -> None:
    guard = TicAlarmGuard("flat")
    kinds = [
        e.kind
        for n, over in enumerate(overloads)
        for e in guard.check(wes_readings(T0, iinst=50 if over else 10), poll_time=T0 + n * MINUTE)
    ]
    runs = "".join("x" if over else "." for over in overloads).split(".")
    confirmed = [run for run in runs if len(run) >= TIC_OVERLOAD_CONFIRM_POLLS]
    assert kinds.count("tic_overload") == len(confirmed)
    open_at_end = bool(runs) and len(runs[-1]) >= TIC_OVERLOAD_CONFIRM_POLLS
    assert kinds.count("tic_overload_end") == len(confirmed) - open_at_end
    assert all(a != b for a, b in itertools.pairwise(kinds))  # they alternate


# ------------------------------------------------------------------------------ status register


def test_status_register_alarms_name_their_bits_and_end() -> None:
    stges = [
        "003A4000",  # normal
        "003A4042",  # cut-off open on overpower (bits 1-3 = 1) + overvoltage (bit 6)
        "003A4042",  # same: nothing new
        "003A4052",  # + terminal cover open (bit 4): new
        "003A4040",  # only the overvoltage left: still an episode
        "003A4000",  # normal again
        "ZZZ",  # damaged: says nothing
    ]
    polls = [serial_readings(standard(s), Mode.STANDARD, T0) if s != "ZZZ" else [] for s in stges]
    polls[-1] = [Reading("tic.1.status", "ZZZ", None, None, T0, "text")]
    events = run(TicAlarmGuard("meter"), polls)
    assert [[e.kind for e in poll] for poll in events] == [
        [],
        ["tic_status_alarm"],
        [],
        ["tic_status_alarm"],
        [],
        ["tic_status_alarm_end"],
        [],
    ]
    first, second, end = events[1][0], events[3][0], events[5][0]
    assert first.severity == second.severity == "alarm" and end.severity == "info"
    assert first.channel == "meter/tic.1.status"
    assert first.data == {
        "tic": 1,
        "stge": "003A4042",
        "alarms": ["cut_off_open_overpower", "overvoltage"],
        "cut_off": "open_overpower",
        "terminal_cover_open": False,
        "overvoltage": True,
        "new": ["cut_off_open_overpower", "overvoltage"],
    }
    assert first.message == (
        "TIC1 status alarm: cut_off_open_overpower, overvoltage (STGE 003A4042)"
    )
    assert second.data["new"] == ["terminal_cover_open"]
    assert end.data["cleared"] == ["overvoltage"]
    assert end.message == "TIC1 status back to normal (STGE 003A4000)"


def test_every_alarm_message_fits_an_sms_alarm() -> None:
    """The sync carries 120 bytes of the message (not the data): the numbers are in it."""
    polls = [serial_readings(standard("003A40DC", sinsts=99999), Mode.STANDARD, T0)] * 2
    events = [e for poll in run(TicAlarmGuard("B001-L01"), polls) for e in poll]
    assert {e.kind for e in events} == {"tic_overload", "tic_status_alarm"}
    assert all(len(e.message.encode()) <= 120 for e in events)


# ------------------------------------------------------------------------------ the mapper


def _box(box_id: str) -> BoxConfig:
    return BoxConfig.model_validate({"id": box_id, "serves": "logement-01", "host": "127.0.0.1"})


def test_the_mapper_reports_them_and_a_reload_keeps_the_episode() -> None:
    boxes = [_box("flat")]
    mapper = ChannelMapper(boxes)
    for n in range(2):
        mapped = mapper.process("flat", wes_readings(T0, iinst=40), poll_time=T0 + n * MINUTE)
    assert [e.kind for e in mapped.events] == ["tic_overload"]
    assert not any(s.path == "tic.1.overload" for s in mapped.samples)  # a WES has none
    reloaded = ChannelMapper(boxes, guards=mapper.guards)
    again = reloaded.process("flat", wes_readings(T0, iinst=40), poll_time=T0 + 2 * MINUTE)
    assert again.events == []
    done = reloaded.process("flat", wes_readings(T0, iinst=10), poll_time=T0 + 3 * MINUTE)
    assert [e.kind for e in done.events] == ["tic_overload_end"]


# ------------------------------------------------------------------------------ in weshd


@pytest.fixture
async def farm() -> AsyncIterator[SimFarm]:
    async with run_simulators(2, base_port=0, seed=3, speed=60, ftp=False, m2m=False) as farm:
        yield farm


def _polls(gateway: Gateway, box: str) -> int:
    since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    return len(gateway.store.history(f"{box}/tic.1.power_va", since=since, until=until))


def _kinds(gateway: Gateway, box: str) -> list[str]:
    return [event.kind for _, event in gateway.store.events(box=box, limit=1000)]


async def test_weshd_emits_one_overload_per_episode_and_queues_it(
    farm: SimFarm, short_tmp: Path
) -> None:
    path = short_tmp / "weshd.toml"
    boxes = [box_toml(f"box{i}", box.http.port, interval_s=0.2) for i, box in enumerate(farm.boxes)]
    path.write_text(config_toml(short_tmp / "state", boxes))
    gateway = Gateway.from_file(path, stats_interval_s=0)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        farm.boxes[1].set_fault("overload")
        await wait_until(lambda: "tic_overload" in _kinds(gateway, "box1"), what="an overload")
        polls = _polls(gateway, "box1")
        await wait_until(lambda: _polls(gateway, "box1") >= polls + 4, what="four more polls")
        assert _kinds(gateway, "box1").count("tic_overload") == 1
        farm.boxes[1].clear_faults("overload")
        await wait_until(lambda: "tic_overload_end" in _kinds(gateway, "box1"), what="the end")
        events = [e for _, e in gateway.store.events(box="box1", limit=1000)]
        overload = next(e for e in events if e.kind == "tic_overload")
        assert overload.severity == "alarm"
        assert overload.data["source"] == "iinst_above_isousc"
        assert overload.data["iinst_a"] > overload.data["isousc_a"]  # type: ignore[operator]
        assert [e.kind for e in events].count("tic_overload") == 1
        assert "tic_overload" not in _kinds(gateway, "box0")
        queued = [e.kind for _, _, e in gateway.store.pending_events(after_seq=0, limit=100)]
        assert "tic_overload" in queued  # severity alarm: it travels to HQ as an ALARM
    finally:
        gateway.request_stop("test over")
        await asyncio.wait_for(task, timeout=15)
