"""The pure alert state machine: examples, then Hypothesis properties over random histories."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hq.alerts.conftest import PLACE, T0, condition
from wesh.errors import UsageError
from wesh.hq import models
from wesh.hq.alerts.model import (
    ALERT_STATES,
    EVENT_KINDS,
    NOTICE_KINDS,
    SEVERITIES,
    Level,
    Notice,
)
from wesh.hq.alerts.state import (
    OPEN_STATES,
    AlertRecord,
    Step,
    Timing,
    acknowledge,
    step,
    with_alert_id,
)
from wesh.hq.db import make_engine
from wesh.hq.migrate import migrate

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _run(
    record: AlertRecord | None,
    level: Level | None,
    timing: Timing,
    now: datetime,
    **options: object,
) -> Step:
    cond = None if level is None or level is Level.OFF else condition(level, at=now)
    covered = level is not None
    result = step(record, cond, timing, now, covered=covered, **options)  # type: ignore[arg-type]
    if result.record is not None and result.record.id is None:
        result = with_alert_id(result, 1)
    return result


def _kinds(result: Step) -> list[str]:
    return [notice.kind for notice in result.notices]


# --- examples --------------------------------------------------------------------------


def test_nothing_open_and_off_or_hold_does_nothing() -> None:
    for level in (Level.OFF, Level.HOLD, None):
        assert _run(None, level, Timing(), T0) == Step(None)


def test_on_with_no_hold_fires_at_once_with_one_notice() -> None:
    result = _run(None, Level.ON, Timing(), T0)
    assert result.record is not None
    assert result.record.state == "firing"
    assert result.record.fired_at == T0
    assert result.record.notified_at == T0
    assert _kinds(result) == ["fired"]
    notice = result.notices[0]
    assert notice.alert_id == 1
    assert (notice.value, notice.unit, notice.threshold) == (42.0, "L/h", 20.0)
    assert notice.place == PLACE
    assert [event.kind for event in result.events] == ["pending", "fired"]


def test_the_same_verdict_again_sends_nothing() -> None:
    first = _run(None, Level.ON, Timing(), T0)
    again = _run(first.record, Level.ON, Timing(), T0 + 5 * MIN)
    assert again.notices == ()
    assert again.record is not None
    assert again.record.state == "firing"


def test_hold_for_keeps_it_pending_then_fires() -> None:
    timing = Timing(hold_for=30 * MIN)
    first = _run(None, Level.ON, timing, T0)
    assert first.record is not None
    assert first.record.state == "pending"
    assert first.notices == ()
    early = _run(first.record, Level.ON, timing, T0 + 29 * MIN)
    assert early.record is not None
    assert early.record.state == "pending"
    fired = _run(early.record, Level.ON, timing, T0 + 30 * MIN)
    assert fired.record is not None
    assert fired.record.state == "firing"
    assert _kinds(fired) == ["fired"]


def test_pending_that_goes_off_is_cancelled_without_mail() -> None:
    timing = Timing(hold_for=HOUR)
    first = _run(None, Level.ON, timing, T0)
    off = _run(first.record, Level.OFF, timing, T0 + 10 * MIN)
    assert off.record is not None
    assert off.record.state == "resolved"
    assert off.record.fired_at is None
    assert off.notices == ()
    assert [event.kind for event in off.events] == ["cancelled"]


def test_hold_never_fires_a_pending_alert() -> None:
    timing = Timing(hold_for=10 * MIN)
    first = _run(None, Level.ON, timing, T0)
    held = _run(first.record, Level.HOLD, timing, T0 + HOUR)
    assert held.record is not None
    assert held.record.state == "pending"


def test_resolve_after_is_hysteresis_in_time() -> None:
    timing = Timing(resolve_after=HOUR)
    fired = _run(None, Level.ON, timing, T0)
    off1 = _run(fired.record, Level.OFF, timing, T0 + 10 * MIN)
    assert off1.record is not None
    assert off1.record.state == "firing"
    assert off1.record.off_since == T0 + 10 * MIN
    hold = _run(off1.record, Level.HOLD, timing, T0 + 40 * MIN)  # restarts the timer
    assert hold.record is not None
    assert hold.record.off_since is None
    off2 = _run(hold.record, Level.OFF, timing, T0 + 50 * MIN)
    off3 = _run(off2.record, Level.OFF, timing, T0 + 50 * MIN + 59 * MIN)
    assert off3.record is not None
    assert off3.record.state == "firing"
    done = _run(off3.record, Level.OFF, timing, T0 + 50 * MIN + HOUR)
    assert done.record is not None
    assert done.record.state == "resolved"
    assert done.record.resolved_at == T0 + 50 * MIN  # since when it is OFF
    assert _kinds(done) == ["resolved"]
    assert done.notices[0].resolved_at == T0 + 50 * MIN


def test_not_covered_changes_nothing_but_timers() -> None:
    timing = Timing(resolve_after=HOUR, reminder_every=HOUR)
    fired = _run(None, Level.ON, timing, T0)
    off = _run(fired.record, Level.OFF, timing, T0 + MIN)
    skipped = _run(off.record, None, timing, T0 + 2 * HOUR)
    assert skipped.record is not None
    assert skipped.record.state == "firing"  # an OFF streak is not extended by silence
    assert skipped.record.off_since == T0 + MIN
    assert _kinds(skipped) == ["reminder"]


def test_reminders_are_spaced_and_numbered() -> None:
    timing = Timing(reminder_every=HOUR)
    record = _run(None, Level.ON, timing, T0).record
    kinds: list[tuple[str, int, datetime]] = []
    for minutes in range(5, 4 * 60 + 1, 5):
        now = T0 + minutes * MIN
        result = _run(record, Level.ON, timing, now)
        kinds += [(n.kind, n.sequence, now) for n in result.notices]
        record = result.record
    assert kinds == [
        ("reminder", 1, T0 + HOUR),
        ("reminder", 2, T0 + 2 * HOUR),
        ("reminder", 3, T0 + 3 * HOUR),
        ("reminder", 4, T0 + 4 * HOUR),
    ]


def test_ack_stops_reminders_and_escalation_but_not_the_resolved_mail() -> None:
    timing = Timing(reminder_every=HOUR, escalate_after=2 * HOUR)
    record = _run(None, Level.ON, timing, T0).record
    assert record is not None
    acked = acknowledge(record, by="m.dupont", note="plombier appelé", now=T0 + 10 * MIN)
    assert acked.record is not None
    assert acked.record.acked_by == "m.dupont"
    assert [e.kind for e in acked.events] == ["acked"]
    assert acked.events[0].actor == "m.dupont"
    later = _run(acked.record, Level.ON, timing, T0 + 5 * HOUR)
    assert later.notices == ()
    resolved = _run(later.record, Level.OFF, timing, T0 + 6 * HOUR)
    assert _kinds(resolved) == ["resolved"]
    assert resolved.notices[0].acked_by == "m.dupont"


def test_ack_twice_keeps_the_first_and_refuses_resolved_or_anonymous() -> None:
    record = _run(None, Level.ON, Timing(), T0).record
    assert record is not None
    first = acknowledge(record, by="a", note=None, now=T0)
    assert first.record is not None
    again = acknowledge(first.record, by="b", note=None, now=T0 + MIN)
    assert again.changed is False
    assert again.record is not None
    assert again.record.acked_by == "a"
    with pytest.raises(UsageError):
        acknowledge(record, by=" ", note=None, now=T0)
    resolved = dataclasses.replace(record, state="resolved")
    with pytest.raises(UsageError, match="resolved"):
        acknowledge(resolved, by="a", note=None, now=T0)


def test_escalation_once_after_the_delay() -> None:
    timing = Timing(escalate_after=2 * HOUR)
    record = _run(None, Level.ON, timing, T0).record
    found = []
    for minutes in range(10, 6 * 60, 10):
        result = _run(record, Level.ON, timing, T0 + minutes * MIN)
        found += [(n.kind, T0 + minutes * MIN) for n in result.notices]
        record = result.record
    assert found == [("escalated", T0 + 2 * HOUR)]


def test_muted_fire_is_suppressed_then_announced_when_unmuted() -> None:
    timing = Timing()
    muted = _run(None, Level.ON, timing, T0, muted=True)
    assert muted.notices == ()
    assert [e.kind for e in muted.events] == ["pending", "fired", "suppressed"]
    assert muted.record is not None
    assert muted.record.notified_at is None
    still = _run(muted.record, Level.ON, timing, T0 + MIN, muted=True)
    assert still.notices == ()
    assert still.events == ()  # suppressed once, not at every evaluation
    unmuted = _run(still.record, Level.ON, timing, T0 + 2 * MIN)
    assert _kinds(unmuted) == ["fired"]
    assert unmuted.events[0].data == {"announced": True, "late": True}


def test_muted_episode_that_resolves_unannounced_sends_nothing() -> None:
    muted = _run(None, Level.ON, Timing(), T0, muted=True)
    resolved = _run(muted.record, Level.OFF, Timing(), T0 + MIN, muted=True)
    assert resolved.notices == ()
    resolved2 = _run(muted.record, Level.OFF, Timing(), T0 + MIN)  # mute lifted meanwhile
    assert resolved2.notices == ()


def test_grouped_child_sends_nothing_until_its_parent_closes() -> None:
    timing = Timing(reminder_every=HOUR)
    child = _run(None, Level.ON, timing, T0, parent_alert_id=99)
    assert child.notices == ()
    assert child.record is not None
    assert child.record.grouped_under == 99
    assert {e.kind for e in child.events} == {"pending", "grouped", "fired"}
    later = _run(child.record, Level.ON, timing, T0 + 3 * HOUR, parent_alert_id=99)
    assert later.notices == ()
    ungrouped = _run(later.record, Level.ON, timing, T0 + 4 * HOUR)
    assert _kinds(ungrouped) == ["fired"]
    assert ungrouped.record is not None
    assert ungrouped.record.grouped_under is None
    assert "ungrouped" in [e.kind for e in ungrouped.events]


def test_fired_notice_lists_grouped_places() -> None:
    result = _run(None, Level.ON, Timing(), T0, grouped=(PLACE, PLACE))
    assert result.notices[0].grouped == (PLACE, PLACE)


def test_a_resolved_record_is_history_and_a_new_on_opens_a_new_episode() -> None:
    first = _run(None, Level.ON, Timing(), T0)
    resolved = _run(first.record, Level.OFF, Timing(), T0 + MIN)
    assert resolved.record is not None
    reopened = step(resolved.record, condition(Level.ON, at=T0 + HOUR), Timing(), T0 + HOUR)
    assert reopened.record is not None
    assert reopened.record.id is None  # a new row
    assert reopened.notices[0].alert_id == 0
    assert with_alert_id(reopened, 5).notices[0].alert_id == 5


def test_a_condition_of_another_rule_is_refused() -> None:
    record = _run(None, Level.ON, Timing(), T0).record
    with pytest.raises(UsageError):
        step(record, condition(rule="frost"), Timing(), T0)


def test_timing_refuses_zero_or_negative_intervals() -> None:
    with pytest.raises(UsageError):
        Timing(reminder_every=timedelta(0))
    with pytest.raises(UsageError):
        Timing(hold_for=-MIN)

    @dataclass(frozen=True)
    class Policy:
        hold_for: timedelta = MIN
        resolve_after: timedelta = HOUR
        reminder_every: timedelta | None = None
        escalate_after: timedelta | None = 3 * HOUR

    assert Timing.of(Policy()) == Timing(MIN, HOUR, None, 3 * HOUR)


# --- properties over random histories --------------------------------------------------

VERDICTS = st.sampled_from(["on", "off", "hold", "skip", "ack"])
OPS = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=90),  # minutes since the previous evaluation
        VERDICTS,
        st.booleans(),  # muted
        st.sampled_from([None, None, None, 99]),  # grouped under
    ),
    max_size=60,
)
DURATIONS = st.sampled_from([0, 5, 30, 60, 120])
OPTIONAL = st.sampled_from([None, 30, 60, 180])


@dataclass
class Episode:
    id: int
    notices: list[tuple[datetime, Notice]] = field(default_factory=list)
    opened_at: datetime | None = None
    saw_off: bool = False
    off_run_start: datetime | None = None
    acked_at: datetime | None = None


@settings(max_examples=400, deadline=None)
@given(
    ops=OPS,
    hold=DURATIONS,
    resolve=DURATIONS,
    remind=OPTIONAL,
    escalate=OPTIONAL,
)
def test_properties_of_random_histories(
    ops: list[tuple[int, str, bool, int | None]],
    hold: int,
    resolve: int,
    remind: int | None,
    escalate: int | None,
) -> None:
    timing = Timing(
        hold_for=hold * MIN,
        resolve_after=resolve * MIN,
        reminder_every=None if remind is None else remind * MIN,
        escalate_after=None if escalate is None else escalate * MIN,
    )
    now = T0
    record: AlertRecord | None = None
    episodes: list[Episode] = []
    for minutes, verdict, muted, parent in ops:
        now += minutes * MIN
        episode = episodes[-1] if episodes and record is not None else None
        if verdict == "ack":
            if record is None:
                continue
            result = acknowledge(record, by="manager", note=None, now=now)
            assert result.notices == ()
            if episode is not None and episode.acked_at is None:
                episode.acked_at = now
            record = result.record
            continue
        level = {"on": Level.ON, "off": Level.OFF, "hold": Level.HOLD, "skip": None}[verdict]
        before_state = record.state if record is not None else None
        result = _step_for(record, level, timing, now, muted=muted, parent=parent)
        if result.record is not None and result.record.id is None:
            episode = Episode(id=len(episodes) + 1, opened_at=now)
            episodes.append(episode)
            result = with_alert_id(result, episode.id)
        after = result.record
        # HOLD and "not evaluated" never change the state of an open episode
        if level in (Level.HOLD, None) and before_state is not None:
            assert after is not None
            assert after.state == before_state
        if episode is None or after is None:
            assert result.notices == ()
            record = None
            continue
        # bookkeeping of the verdicts this episode saw
        if level is Level.OFF:
            episode.saw_off = True
            if episode.off_run_start is None:
                episode.off_run_start = now
        elif level in (Level.ON, Level.HOLD):
            episode.off_run_start = None
        # firing edge: on ON, after hold_for, never after an OFF
        if before_state in (None, "pending") and after.state == "firing":
            assert level is Level.ON
            assert episode.opened_at is not None
            assert now - episode.opened_at >= timing.hold_for
            assert not episode.saw_off
        # resolving edge: OFF for resolve_after without ON/HOLD in between
        if before_state == "firing" and after.state == "resolved":
            assert level is Level.OFF
            assert episode.off_run_start is not None
            assert now - episode.off_run_start >= timing.resolve_after
            announced = after.notified_at is not None
            assert [n.kind for n in result.notices] == (
                ["resolved"] if announced and not muted else []
            )
        # liveness: firing, not muted, not grouped => announced
        if after.state == "firing" and not muted and parent is None:
            assert after.notified_at is not None
        # ON since opening for hold_for => firing
        opened = episode.opened_at
        if level is Level.ON and not episode.saw_off and opened and now - opened >= timing.hold_for:
            assert after.state in ("firing", "resolved")
        if muted:
            assert result.notices == ()
        if parent is not None:
            assert all(n.kind == "resolved" for n in result.notices)
        for notice in result.notices:
            assert notice.alert_id == episode.id
            episode.notices.append((now, notice))
        record = after if after.is_open else None
    for episode in episodes:
        _check_episode(episode, timing)


def _step_for(
    record: AlertRecord | None,
    level: Level | None,
    timing: Timing,
    now: datetime,
    *,
    muted: bool,
    parent: int | None,
) -> Step:
    cond = None if level is None or level is Level.OFF else condition(level, at=now)
    return step(
        record, cond, timing, now, covered=level is not None, muted=muted, parent_alert_id=parent
    )


def _check_episode(episode: Episode, timing: Timing) -> None:
    kinds = [notice.kind for _, notice in episode.notices]
    assert kinds.count("fired") <= 1
    assert kinds.count("resolved") <= 1
    assert kinds.count("escalated") <= 1
    if kinds:
        assert kinds[0] == "fired"  # nothing before the announcement
    if "resolved" in kinds:
        assert kinds[-1] == "resolved"
    fired_at = episode.notices[0][0] if kinds else None
    previous = fired_at
    sequences: list[int] = []
    for at, notice in episode.notices:
        if notice.kind == "reminder":
            assert timing.reminder_every is not None
            assert previous is not None
            assert at - previous >= timing.reminder_every
            previous = at
            sequences.append(notice.sequence)
        if notice.kind in ("reminder", "escalated") and episode.acked_at is not None:
            assert at < episode.acked_at
        if notice.kind == "escalated":
            assert timing.escalate_after is not None
            assert fired_at is not None
            assert at - fired_at >= timing.escalate_after
    assert sequences == sorted(set(sequences))


def test_the_vocabulary_is_the_one_the_migrated_schema_allows(tmp_path: Path) -> None:
    """The CHECK constraints that migration 0003 wrote (a frozen copy) list these words."""
    engine = make_engine(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        migrate(engine)
        with engine.connect() as conn:
            tables = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
    finally:
        engine.dispose()

    def allowed(table: str, column: str) -> tuple[str, ...]:
        found = re.search(rf"\b{column} IN \(([^)]*)\)", tables[table])
        assert found is not None, (table, column)
        return tuple(re.findall(r"'([^']*)'", found.group(1)))

    assert allowed("alert", "state") == ALERT_STATES == models.ALERT_STATES
    assert allowed("alert", "severity") == SEVERITIES == models.SEVERITIES
    assert allowed("alert_event", "kind") == EVENT_KINDS == models.ALERT_EVENT_KINDS
    assert allowed("mail_outbox", "notice_kind") == NOTICE_KINDS == models.NOTICE_KINDS
    assert set(OPEN_STATES) < set(ALERT_STATES)
