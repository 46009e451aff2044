"""Channels: raw readings of a box → normalised :class:`Sample` objects, index checks.

Pure logic, no I/O. Three pieces, used by the poller after each poll::

    PollResult.readings ──ChannelMapper.map──▶ [Sample]  (meaning, label, unit, multiplier)
                        ──IndexGuard.check───▶ [Sample] + [GatewayEvent]
                                               (resets, meter replacement, jumps, clock skew)
                        ──TicAlarmGuard.check─▶ [GatewayEvent]
                                               (TIC overload, status-register alarms)

``ChannelMapper.process`` does all three (the box's :class:`IndexGuard` owns its
:class:`TicAlarmGuard`, so both survive a configuration reload). The reading-path
grammar (``docs/wes.md``, "Reading paths") is the table :data:`PATH_FAMILIES` below;
the configuration validates channel paths against it and the mapper derives a default
meaning from it.

**Consumption rule** (for the store and headquarters; :func:`index_consumption` is the
reference implementation). For one index channel, in time order:

* skip samples whose quality is ``suspect``;
* when an event of the channel at the sample's time carries ``data["baseline"]``
  (``counter_reset``, ``meter_replaced``, a confirmed ``index_jump``), the consumption of
  that sample is ``value - baseline`` (never negative) and the sample becomes the new
  reference;
* otherwise it is ``value - previous value``, which the guard guarantees is >= 0.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from wesh.errors import DecodeError, UsageError
from wesh.tic.values import CutOffState, StatusRegister, parse_status_register
from wesh.wes.readings import Reading, normalise_quantity

if TYPE_CHECKING:
    from wesh.gateway.config import BoxConfig, ChannelConfig

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_S",
    "DEFAULT_MAX_RATE_PER_MIN",
    "PATH_FAMILIES",
    "QUEUED_EVENT_KINDS",
    "TIC_OVERLOAD_CONFIRM_POLLS",
    "ChannelKind",
    "ChannelMapper",
    "EventKind",
    "GatewayEvent",
    "IndexGuard",
    "MappedPoll",
    "PathFamily",
    "Quality",
    "Sample",
    "SampleKind",
    "Severity",
    "TicAlarmGuard",
    "check_path",
    "describe_path",
    "index_consumption",
    "status_alarms",
]

Quality = Literal["measured", "estimated", "suspect"]
ChannelKind = Literal[
    "electricity",
    "cold_water",
    "hot_water",
    "gas",
    "heat",
    "temperature",
    "humidity",
    "current",
    "voltage",
    "power",
    "state",
    "text",
    "other",
]
SampleKind = Literal["index", "gauge", "state", "text"]
EventKind = Literal[
    "box_down",
    "box_up",
    "counter_reset",
    "meter_replaced",
    "index_jump",
    "clock_skew",
    "identity_mismatch",
    "disk_full",
    "disk_ok",
    "data_dropped",
    "config_reloaded",
    "config_error",
    "started",
    "stopped",
    "command",
    "tic_overload",
    "tic_overload_end",
    "tic_status_alarm",
    "tic_status_alarm_end",
]
Severity = Literal["info", "warning", "alarm"]

#: Events below severity ``alarm`` that headquarters still needs, queued for the sync as
#: alarms are (``Store(queued_severities=...)`` alone would not): the end of a TIC alarm
#: episode resolves its alert at once; a ``counter_reset`` or ``meter_replaced`` (kept
#: ``warning``) explains the index decrease HQ will see, so that its ``index_backwards``
#: rule does not take it for a fault.
QUEUED_EVENT_KINDS: frozenset[str] = frozenset(
    {"tic_overload_end", "tic_status_alarm_end", "counter_reset", "meter_replaced"}
)

DEFAULT_MAX_CLOCK_SKEW_S = 300.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One normalised reading: what the store keeps.

    ``channel`` is ``"<box>/<path>"``; ``at`` is the poll time (UTC, aware) used for
    storage, ``box_time`` the box's own clock, kept apart. ``unit`` is the unit after the
    multiplier, normalised (``Wh``, ``L``, ``°C``, ``%``, ``A``, ``V``, ``VA``, ``W``).
    """

    box: str
    channel: str
    path: str
    at: datetime
    value: float | int | str | bool
    unit: str | None
    quality: Quality
    kind: SampleKind
    meaning: ChannelKind
    label: str | None = None
    box_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """Something that happened to the gateway, a box or a channel (JSON-serialisable data)."""

    at: datetime
    box: str | None
    channel: str | None
    kind: EventKind
    severity: Severity
    message: str
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MappedPoll:
    """The outcome of :meth:`ChannelMapper.process`: samples and the events they raised."""

    samples: list[Sample]
    events: list[GatewayEvent]


# ----------------------------------------------------------------------------- path grammar


@dataclass(frozen=True, slots=True)
class PathFamily:
    """One line of the reading-path grammar: a pattern and what its readings are."""

    family: str
    shape: str
    pattern: re.Pattern[str]
    meaning: ChannelKind
    kind: SampleKind
    unit: str | None


def _f(  # noqa: PLR0917 - one table row
    family: str, shape: str, regex: str, meaning: ChannelKind, kind: SampleKind, unit: str | None
) -> PathFamily:
    return PathFamily(family, shape, re.compile(regex), meaning, kind, unit)


_N = r"[1-9][0-9]{0,2}"
_TIC = r"tic\.[1-3]"
_TIC_TEXT = r"(?:period|period_code|tomorrow|tomorrow_code|adco|optarif)"

#: The reading-path grammar of ``docs/wes.md`` as a table; first match wins.
PATH_FAMILIES: tuple[PathFamily, ...] = (
    _f("box", "box.firmware", r"box\.firmware", "text", "text", None),
    _f("box", "box.alarm", r"box\.alarm", "state", "state", None),
    _f("box", "box.spaceleft", r"box\.spaceleft", "other", "gauge", "GB"),
    _f("tic", "tic.<n>.available", rf"{_TIC}\.available", "state", "state", None),
    _f("tic", "tic.<n>.producer", rf"{_TIC}\.producer", "state", "state", None),
    _f("tic", "tic.<n>.overload", rf"{_TIC}\.overload", "state", "state", None),
    _f("tic", "tic.<n>.status", rf"{_TIC}\.status", "text", "text", None),
    _f(
        "tic",
        "tic.<n>.index.<name>",
        rf"{_TIC}\.index\.[a-z0-9_]{{1,32}}",
        "electricity",
        "index",
        "Wh",
    ),
    _f("tic", "tic.<n>.power_va", rf"{_TIC}\.power_va", "power", "gauge", "VA"),
    _f("tic", "tic.<n>.injected_power_va", rf"{_TIC}\.injected_power_va", "power", "gauge", "VA"),
    _f("tic", "tic.<n>.current.<phase>", rf"{_TIC}\.current\.[1-3]", "current", "gauge", "A"),
    _f("tic", "tic.<n>.voltage.<phase>", rf"{_TIC}\.voltage\.[1-3]", "voltage", "gauge", "V"),
    _f("tic", "tic.<n>.imax.<phase>", rf"{_TIC}\.imax\.[1-3]", "current", "gauge", "A"),
    _f("tic", "tic.<n>.isousc", rf"{_TIC}\.isousc", "current", "gauge", "A"),
    _f("tic", "tic.<n>.pejp", rf"{_TIC}\.pejp", "other", "gauge", None),
    _f(
        "tic",
        "tic.<n>.<period|period_code|tomorrow|tomorrow_code|adco|optarif>",
        rf"{_TIC}\.{_TIC_TEXT}",
        "text",
        "text",
        None,
    ),
    _f("impulsion", "impulsion.<n>.index", rf"impulsion\.{_N}\.index", "other", "index", None),
    _f(
        "impulsion",
        "impulsion.<n>.pulses_today",
        rf"impulsion\.{_N}\.pulses_today",
        "other",
        "gauge",
        None,
    ),
    _f("impulsion", "impulsion.<n>.flow", rf"impulsion\.{_N}\.flow", "other", "gauge", None),
    _f(
        "impulsion",
        "impulsion.<n>.consumption.<day|yesterday|month|year>",
        rf"impulsion\.{_N}\.consumption\.(?:day|yesterday|month|year)",
        "other",
        "gauge",
        None,
    ),
    _f(
        "impulsion",
        "impulsion.<n>.cost.<day|month|year>",
        rf"impulsion\.{_N}\.cost\.(?:day|month|year)",
        "other",
        "gauge",
        "EUR",
    ),
    _f("pince", "pince.<n>.current", rf"pince\.{_N}\.current", "current", "gauge", "A"),
    _f("pince", "pince.<n>.index", rf"pince\.{_N}\.index", "electricity", "index", "Wh"),
    _f("pince", "pince.<n>.injection", rf"pince\.{_N}\.injection", "electricity", "index", "Wh"),
    _f("pince", "pince.<n>.power_va", rf"pince\.{_N}\.power_va", "power", "gauge", "VA"),
    _f("pince", "pince.<n>.power_w", rf"pince\.{_N}\.power_w", "power", "gauge", "W"),
    _f("pince", "pince.<n>.cos_phi", rf"pince\.{_N}\.cos_phi", "other", "gauge", None),
    _f("pince", "pince.<n>.voltage", rf"pince\.{_N}\.voltage", "voltage", "gauge", "V"),
    _f("temp", "temp.<n>", rf"temp\.{_N}", "temperature", "gauge", "°C"),
    _f("relais", "relais.<n>", rf"relais\.{_N}", "state", "state", None),
    _f("relais1w", "relais1w.<id>", r"relais1w\.[0-9]{1,3}", "state", "state", None),
    _f("entree", "entree.<n>", rf"entree\.{_N}", "state", "state", None),
    _f("switch", "switch.<n>", rf"switch\.{_N}", "state", "state", None),
    _f("analogique", "analogique.<n>", rf"analogique\.{_N}", "voltage", "gauge", "V"),
    _f("variable", "variable.<n>", rf"variable\.{_N}", "other", "gauge", None),
)

_FAMILY_NAMES = tuple(dict.fromkeys(f.family for f in PATH_FAMILIES))


def describe_path(path: str) -> PathFamily | None:
    """Return the grammar line a reading path matches, or ``None``."""
    for family in PATH_FAMILIES:
        if family.pattern.fullmatch(path):
            return family
    return None


def check_path(path: str) -> str | None:
    """Return what is wrong with a channel path in plain words, or ``None`` if it is valid."""
    if describe_path(path) is not None:
        return None
    head = path.split(".", 1)[0]
    if head not in _FAMILY_NAMES:
        close = difflib.get_close_matches(head, _FAMILY_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"unknown reading family {head!r} in {path!r}{hint}; "
            f"known families: {', '.join(_FAMILY_NAMES)}"
        )
    shapes = [f.shape for f in PATH_FAMILIES if f.family == head]
    return f"{path!r} is not a reading path; {head} paths are: {', '.join(shapes)}"


# ----------------------------------------------------------------------------- mapping


def _scale(value: float | int, multiplier: float) -> float | int:
    if multiplier == 1:
        return value
    if isinstance(value, int) and float(multiplier).is_integer():
        return value * int(multiplier)
    return value * multiplier


class ChannelMapper:
    """Apply each box's channel configuration to its raw readings.

    ``map`` is pure and stateless. ``process`` maps, then runs the box's
    :class:`IndexGuard` (stateful). To keep the guards' memory across a configuration
    reload: ``ChannelMapper(new_boxes, guards=old.guards)``.
    """

    def __init__(
        self, boxes: Sequence[BoxConfig], *, guards: Mapping[str, IndexGuard] | None = None
    ) -> None:
        self._boxes = {box.id: box for box in boxes}
        self._channels: dict[str, dict[str, ChannelConfig]] = {
            box.id: {ch.path: ch for ch in box.channels} for box in boxes
        }
        kept = guards or {}
        self._guards: dict[str, IndexGuard] = {}
        for box in boxes:
            guard = kept.get(box.id)
            if guard is None:
                guard = IndexGuard(box)
            else:
                guard.reconfigure(box)
            self._guards[box.id] = guard

    @property
    def guards(self) -> Mapping[str, IndexGuard]:
        """The index guard of each box (pass them to the next mapper on reload)."""
        return dict(self._guards)

    def guard(self, box_id: str) -> IndexGuard:
        """Return the index guard of ``box_id`` (``UsageError`` if unknown)."""
        self.box(box_id)
        return self._guards[box_id]

    def box(self, box_id: str) -> BoxConfig:
        """Return the configuration of ``box_id`` (``UsageError`` if unknown)."""
        try:
            return self._boxes[box_id]
        except KeyError:
            raise UsageError(f"unknown box {box_id!r}", host=box_id) from None

    def map(self, box_id: str, readings: Sequence[Reading], *, poll_time: datetime) -> list[Sample]:
        """Turn one poll's readings into samples stamped ``poll_time`` (aware).

        Configured channels get their meaning, label, multiplier and unit; others get a
        default meaning from the path, or are dropped when the box says
        ``only_configured``. Raises ``UsageError`` for an unknown box or a naive time.
        """
        if poll_time.tzinfo is None or poll_time.utcoffset() is None:
            raise UsageError("poll_time must be timezone-aware", where="poll_time")
        box = self.box(box_id)
        channels = self._channels[box_id]
        samples: list[Sample] = []
        for reading in readings:
            config = channels.get(reading.path)
            if config is None and box.only_configured:
                continue
            samples.append(self._sample(box_id, reading, config, poll_time))
        return samples

    def process(
        self,
        box_id: str,
        readings: Sequence[Reading],
        *,
        poll_time: datetime,
        box_time: datetime | None = None,
    ) -> MappedPoll:
        """Map one poll, then check it with the guard: samples (qualities set) and events."""
        samples = self.map(box_id, readings, poll_time=poll_time)
        meters = {
            reading.path.removesuffix(".adco"): str(reading.value)
            for reading in readings
            if reading.path.startswith("tic.") and reading.path.endswith(".adco")
        }
        guard = self._guards[box_id]
        checked, events = guard.check(
            samples, poll_time=poll_time, box_time=box_time, meters=meters
        )
        events.extend(guard.tic_alarms.check(readings, poll_time=poll_time))
        return MappedPoll(checked, events)

    @staticmethod
    def _sample(
        box_id: str, reading: Reading, config: ChannelConfig | None, poll_time: datetime
    ) -> Sample:
        family = describe_path(reading.path)
        value = reading.value
        assert value is not None  # noqa: S101 - readings never carry None (readings.py)
        unit = reading.unit
        kind: SampleKind = reading.kind
        if config is None:
            meaning: ChannelKind = family.meaning if family else "other"
            label = None
        else:
            meaning = config.meaning
            label = config.label
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric:
                assert isinstance(value, int | float)  # noqa: S101 - narrowed above
                value = _scale(value, config.multiplier)
                if config.unit is not None:
                    unit = config.unit
                value, unit = normalise_quantity(value, unit)
                if config.index is not None:
                    kind = "index" if config.index else "gauge"
            elif config.unit is not None:
                unit = config.unit
        return Sample(
            box=box_id,
            channel=f"{box_id}/{reading.path}",
            path=reading.path,
            at=poll_time,
            value=value,
            unit=unit,
            quality="measured",
            kind=kind,
            meaning=meaning,
            label=label,
            box_time=reading.box_time,
        )


# ----------------------------------------------------------------------------- index guard

#: Default plausibility limit of an index per minute of elapsed time, by meaning, in the
#: normalised unit; a larger step is an ``index_jump``. 30 kWh/min ≈ 1.8 MW: garbage only.
DEFAULT_MAX_RATE_PER_MIN: Mapping[tuple[ChannelKind, str], float] = {
    ("electricity", "Wh"): 30_000.0,
    ("heat", "Wh"): 30_000.0,
    ("cold_water", "L"): 1_000.0,
    ("hot_water", "L"): 1_000.0,
    ("gas", "L"): 5_000.0,
}


@dataclass(slots=True)
class _IndexState:
    value: float
    at: datetime
    candidate: tuple[float, datetime] | None = None


class IndexGuard:
    """Checks the index channels of ONE box over successive polls, and the box's clock.

    * A decrease is a ``counter_reset`` (or ``meter_replaced`` when the TIC meter's ADCO
      changed): the sample stays ``measured`` and the event carries ``data["baseline"]``,
      from which the consumption of that sample is counted: 0 when the new value is
      within one plausible step (the counter restarted from zero), else the new value
      itself (consumption across the reset is unknown, counted as nothing).
    * A step above the plausible limit (``max_step`` per poll interval, or
      :data:`DEFAULT_MAX_RATE_PER_MIN` per minute, scaled by the time elapsed) makes the
      sample ``suspect`` with an ``index_jump`` event; the previous value stays the
      reference. When the next sample continues plausibly from the suspect value, the
      jump is confirmed (an ``index_jump`` event with ``baseline`` = that value); when it
      continues from the old reference, the spike was garbage and is forgotten.
    * ``|box_time - poll_time|`` above the box's ``max_clock_skew_s`` gives one
      ``clock_skew`` warning when it starts and one info event when it ends.

    Keep the guard of a box across configuration reloads (:meth:`reconfigure`).
    """

    def __init__(self, box: BoxConfig) -> None:
        self._states: dict[str, _IndexState] = {}
        self._meters: dict[str, str] = {}
        self._skewed = False
        self.reconfigure(box)
        self.tic_alarms = TicAlarmGuard(box.id)

    @property
    def box_id(self) -> str:
        """The box this guard checks."""
        return self._box.id

    def reconfigure(self, box: BoxConfig) -> None:
        """Take the box's new configuration; what is remembered of its channels is kept."""
        self._box = box
        self._max_step = {ch.path: ch.max_step for ch in box.channels if ch.max_step is not None}

    def check(
        self,
        samples: Sequence[Sample],
        *,
        poll_time: datetime,
        box_time: datetime | None = None,
        meters: Mapping[str, str] | None = None,
    ) -> tuple[list[Sample], list[GatewayEvent]]:
        """Check one poll; return the samples (qualities set) and the events raised.

        ``meters`` maps a meter prefix (``"tic.1"``) to its identity (ADCO) in this poll;
        by default it is read from the ``tic.<n>.adco`` samples.
        """
        events: list[GatewayEvent] = []
        skew = self._check_skew(poll_time, box_time)
        if skew is not None:
            events.append(skew)
        if meters is None:
            meters = {
                sample.path.removesuffix(".adco"): str(sample.value)
                for sample in samples
                if sample.path.startswith("tic.") and sample.path.endswith(".adco")
            }
        replaced = self._replaced_meters(meters)
        out: list[Sample] = []
        for sample in samples:
            if sample.kind != "index" or isinstance(sample.value, bool | str):
                out.append(sample)
                continue
            prefix = sample.path.split(".index", 1)[0] if sample.path.startswith("tic.") else ""
            checked, event = self._check_index(sample, float(sample.value), replaced.get(prefix))
            out.append(checked)
            if event is not None:
                events.append(event)
        return out, events

    # -- clock ------------------------------------------------------------------------------

    def _check_skew(self, poll_time: datetime, box_time: datetime | None) -> GatewayEvent | None:
        if box_time is None:
            return None
        limit = self._box.max_clock_skew_s
        skew_s = (box_time - poll_time).total_seconds()
        skewed = abs(skew_s) > limit
        if skewed == self._skewed:
            return None
        self._skewed = skewed
        data = {
            "skew_s": round(skew_s, 3),
            "limit_s": limit,
            "box_time": box_time.isoformat(),
            "poll_time": poll_time.isoformat(),
            "state": "started" if skewed else "ended",
        }
        box_id = self._box.id
        if skewed:
            message = f"box clock is {skew_s:+.0f} s off (limit {limit:g} s)"
            return GatewayEvent(poll_time, box_id, None, "clock_skew", "warning", message, data)
        message = f"box clock back within {limit:g} s ({skew_s:+.0f} s)"
        return GatewayEvent(poll_time, box_id, None, "clock_skew", "info", message, data)

    # -- meters -----------------------------------------------------------------------------

    def _replaced_meters(self, meters: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        replaced: dict[str, tuple[str, str]] = {}
        for prefix, identity in meters.items():
            old = self._meters.get(prefix)
            self._meters[prefix] = identity
            if old is not None and old != identity:
                replaced[prefix] = (old, identity)
        return replaced

    # -- indexes ----------------------------------------------------------------------------

    def _allowed_step(self, sample: Sample, since: datetime) -> float | None:
        interval_s = self._box.poll_interval_s
        elapsed_s = max((sample.at - since).total_seconds(), interval_s)
        max_step = self._max_step.get(sample.path)
        if max_step is not None:
            return max_step * elapsed_s / interval_s
        rate = DEFAULT_MAX_RATE_PER_MIN.get((sample.meaning, sample.unit or ""))
        return None if rate is None else rate * elapsed_s / 60.0

    def _check_index(
        self, sample: Sample, value: float, meter: tuple[str, str] | None
    ) -> tuple[Sample, GatewayEvent | None]:
        key = sample.path
        state = self._states.get(key)
        if not math.isfinite(value):
            return _suspect(sample), _event(
                sample, "index_jump", "warning", f"index is not a number ({value})", {}
            )
        if state is None:
            self._states[key] = _IndexState(value, sample.at)
            return sample, None
        allowed = self._allowed_step(sample, state.at)
        if meter is not None:
            old, new = meter
            self._states[key] = _IndexState(value, sample.at)
            message = (
                f"meter replaced: index {_index_text(state.value)} -> {_index_text(value)}"
                f"{_unit_text(sample)} on {sample.channel} (ADCO {old} -> {new})"
            )
            data = {
                "previous": state.value,
                "value": value,
                "baseline": _baseline(value, allowed, state.value),
                "old_identity": old,
                "new_identity": new,
            }
            return sample, _event(sample, "meter_replaced", "warning", message, data)
        step = value - state.value
        if step < 0:
            self._states[key] = _IndexState(value, sample.at)
            message = (
                f"counter reset: index {_index_text(state.value)} -> {_index_text(value)}"
                f"{_unit_text(sample)} on {sample.channel}"
            )
            data = {
                "previous": state.value,
                "value": value,
                "baseline": _baseline(value, allowed, state.value),
            }
            return sample, _event(sample, "counter_reset", "warning", message, data)
        if allowed is None or step <= allowed:
            self._states[key] = _IndexState(value, sample.at)
            return sample, None
        candidate = state.candidate
        if candidate is not None:
            from_candidate = value - candidate[0]
            allowed_from = self._allowed_step(sample, candidate[1])
            if from_candidate >= 0 and (allowed_from is None or from_candidate <= allowed_from):
                self._states[key] = _IndexState(value, sample.at)
                message = f"index jump to {candidate[0]:g} confirmed; new reference"
                data = {
                    "previous": state.value,
                    "value": value,
                    "baseline": candidate[0],
                    "confirmed": True,
                }
                return sample, _event(sample, "index_jump", "info", message, data)
        state.candidate = (value, sample.at)
        message = f"implausible index step {step:g} {sample.unit or ''} (limit {allowed:g})"
        data = {
            "previous": state.value,
            "value": value,
            "step": step,
            "allowed": allowed,
            "confirmed": False,
        }
        return _suspect(sample), _event(sample, "index_jump", "warning", message, data)


def _event(
    sample: Sample,
    kind: EventKind,
    severity: Severity,
    message: str,
    data: Mapping[str, object],
) -> GatewayEvent:
    return GatewayEvent(sample.at, sample.box, sample.channel, kind, severity, message, data)


def _index_text(value: float) -> str:
    """Write an index in full (``12345678``, not ``1.23457e+07``: ``:g`` keeps 6 digits)."""
    return f"{value:.15g}"


def _unit_text(sample: Sample) -> str:
    return f" {sample.unit}" if sample.unit else ""


def _suspect(sample: Sample) -> Sample:
    return Sample(
        box=sample.box,
        channel=sample.channel,
        path=sample.path,
        at=sample.at,
        value=sample.value,
        unit=sample.unit,
        quality="suspect",
        kind=sample.kind,
        meaning=sample.meaning,
        label=sample.label,
        box_time=sample.box_time,
    )


def _baseline(value: float, allowed: float | None, previous: float) -> float:
    """Where consumption restarts after a reset: 0 if the counter restarted from zero."""
    near_zero = allowed if allowed is not None else abs(previous) * 0.01
    return 0.0 if 0 <= value <= near_zero else value


# ----------------------------------------------------------------------------- TIC alarms

#: Consecutive polls that must see an overload before it is an episode: a one-poll
#: spike (a kettle on top of the heating, a minute long) is not worth an alarm.
TIC_OVERLOAD_CONFIRM_POLLS = 2

_TIC_PATH = re.compile(r"tic\.([1-3])\.(.+)")


@dataclass(slots=True)
class _TicInput:
    """What one poll says about one TIC input (``None``: not said)."""

    available: bool | None = None
    overload: bool | None = None
    currents_a: dict[int, float] = field(default_factory=dict)
    isousc_a: float | None = None
    power_va: float | None = None
    status: str | None = None

    def overloaded(self) -> tuple[bool | None, str]:
        """Return (overload, source): the meter's own flag, else IINST > ISOUSC."""
        if self.overload is not None:
            return self.overload, "meter"
        if self.currents_a and self.isousc_a:
            return any(i > self.isousc_a for i in self.currents_a.values()), "iinst_above_isousc"
        return None, ""

    def data(self, number: int) -> dict[str, object]:
        currents = [_plain(self.currents_a[p]) for p in sorted(self.currents_a)]
        out: dict[str, object] = {"tic": number}
        if currents:
            out["iinst_a"] = max(currents)
            out["currents_a"] = currents
        if self.isousc_a is not None:
            out["isousc_a"] = _plain(self.isousc_a)
        if self.power_va is not None:
            out["power_va"] = _plain(self.power_va)
        if self.status is not None:
            out["stge"] = self.status
        return out


@dataclass(slots=True)
class _TicEpisode:
    """Memory of one TIC input across polls."""

    overload_polls: int = 0
    overload_since: datetime | None = None
    overloaded: bool = False  # an episode was announced and has not ended
    alarms: frozenset[str] = frozenset()


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def status_alarms(status: StatusRegister) -> frozenset[str]:
    """Name the abnormal states of a status register (STGE) [54E §6.2.3.14].

    ``cut_off_<state>`` when the cut-off device is open (bits 1-3: ``open_overpower``,
    ``open_overvoltage``, ``open_load_shedding``, ``open_remote_order``,
    ``open_overheat_above_max_current``, ``open_overheat_below_max_current``),
    ``terminal_cover_open`` (bit 4, tampering) and ``overvoltage`` (bit 6). Bit 7
    (reference power exceeded) is an overload, reported by ``tic_overload`` instead.
    """
    names: set[str] = set()
    if status.cut_off is not CutOffState.CLOSED:
        names.add(f"cut_off_{status.cut_off.name.lower()}")
    if status.terminal_cover_open:
        names.add("terminal_cover_open")
    if status.overvoltage:
        names.add("overvoltage")
    return frozenset(names)


class TicAlarmGuard:
    """Edge-triggered alarms of the TIC meters of ONE box, from each poll's readings.

    * ``tic_overload`` (alarm) when a meter has reported an overload at
      :data:`TIC_OVERLOAD_CONFIRM_POLLS` consecutive polls: the meter's own flag
      (``tic.<n>.overload``: ADPS, ADIRn or STGE bit 7, from the serial TIC driver), else
      IINST above ISOUSC on any phase (``tic.<n>.current.<p>`` > ``tic.<n>.isousc``, what a
      WES shows); ``tic_overload_end`` (info) at the first poll without it.
    * ``tic_status_alarm`` (alarm) when the status register (``tic.<n>.status``, standard
      mode) shows an abnormal state (:func:`status_alarms`), and again if new states are
      added while it lasts; ``tic_status_alarm_end`` (info) when none is left.

    A poll that says nothing about a meter (unplugged, no such reading) changes nothing.
    Events carry the channel ``<box>/tic.<n>.overload`` or ``<box>/tic.<n>.status``.
    """

    def __init__(self, box_id: str) -> None:
        self.box_id = box_id
        self._inputs: dict[int, _TicEpisode] = {}

    def check(self, readings: Sequence[Reading], *, poll_time: datetime) -> list[GatewayEvent]:
        """Return the events of one poll's raw readings (in TIC input order)."""
        inputs: dict[int, _TicInput] = {}
        for reading in readings:
            if not reading.path.startswith("tic."):
                continue
            match = _TIC_PATH.fullmatch(reading.path)
            if match is None:
                continue
            _take(inputs.setdefault(int(match.group(1)), _TicInput()), match.group(2), reading)
        events: list[GatewayEvent] = []
        for number in sorted(inputs):
            seen = inputs[number]
            if seen.available is False:
                continue
            episode = self._inputs.setdefault(number, _TicEpisode())
            events.extend(self._overload(number, seen, episode, poll_time))
            events.extend(self._status(number, seen, episode, poll_time))
        return events

    def _overload(
        self, number: int, seen: _TicInput, episode: _TicEpisode, at: datetime
    ) -> list[GatewayEvent]:
        overloaded, source = seen.overloaded()
        if overloaded is None:
            return []
        channel = f"{self.box_id}/tic.{number}.overload"
        data = {**seen.data(number), "source": source}
        if overloaded:
            episode.overload_polls += 1
            if episode.overload_since is None:
                episode.overload_since = at
            if episode.overloaded or episode.overload_polls < TIC_OVERLOAD_CONFIRM_POLLS:
                return []
            episode.overloaded = True
            data["since"] = episode.overload_since.isoformat()
            message = f"TIC{number} overload: " + _overload_text(seen)
            return [GatewayEvent(at, self.box_id, channel, "tic_overload", "alarm", message, data)]
        since, was = episode.overload_since, episode.overloaded
        episode.overload_polls, episode.overload_since, episode.overloaded = 0, None, False
        if not was or since is None:
            return []
        minutes = round((at - since).total_seconds() / 60)
        data["since"] = since.isoformat()
        data["duration_s"] = round((at - since).total_seconds(), 3)
        current = data.get("iinst_a")
        tail = f" (IINST {current} A)" if current is not None else ""
        message = f"TIC{number} overload over after {minutes} min{tail}"
        return [GatewayEvent(at, self.box_id, channel, "tic_overload_end", "info", message, data)]

    def _status(
        self, number: int, seen: _TicInput, episode: _TicEpisode, at: datetime
    ) -> list[GatewayEvent]:
        if seen.status is None:
            return []
        try:
            status = parse_status_register(seen.status)
        except DecodeError:
            return []  # a damaged register says nothing
        alarms, before = status_alarms(status), episode.alarms
        episode.alarms = alarms
        channel = f"{self.box_id}/tic.{number}.status"
        data: dict[str, object] = {
            "tic": number,
            "stge": status.raw,
            "alarms": sorted(alarms),
            "cut_off": status.cut_off.name.lower(),
            "terminal_cover_open": status.terminal_cover_open,
            "overvoltage": status.overvoltage,
        }
        added = alarms - before
        if added:
            data["new"] = sorted(added)
            message = f"TIC{number} status alarm: {', '.join(sorted(alarms))} (STGE {status.raw})"
            return [
                GatewayEvent(at, self.box_id, channel, "tic_status_alarm", "alarm", message, data)
            ]
        if before and not alarms:
            data["cleared"] = sorted(before)
            message = f"TIC{number} status back to normal (STGE {status.raw})"
            kind: EventKind = "tic_status_alarm_end"
            return [GatewayEvent(at, self.box_id, channel, kind, "info", message, data)]
        return []


def _take(seen: _TicInput, rest: str, reading: Reading) -> None:
    """Note what one ``tic.<n>.<rest>`` reading says."""
    value = reading.value
    if rest in ("available", "overload"):
        if isinstance(value, bool):
            setattr(seen, rest, value)
        return
    if rest == "status":
        if isinstance(value, str):
            seen.status = value.strip().upper()
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return
    if rest.startswith("current.") and rest[8:].isdigit():
        seen.currents_a[int(rest[8:])] = value
    elif rest == "isousc":
        seen.isousc_a = value
    elif rest == "power_va":
        seen.power_va = value


def _overload_text(seen: _TicInput) -> str:
    power = f" ({_plain(seen.power_va)} VA)" if seen.power_va is not None else ""
    if seen.currents_a and seen.isousc_a:
        current = _plain(max(seen.currents_a.values()))
        return f"IINST {current} A > ISOUSC {_plain(seen.isousc_a)} A{power}"
    return f"reference power exceeded{power}"


def index_consumption(
    samples: Sequence[Sample], events: Sequence[GatewayEvent]
) -> list[float | None]:
    """Consumption of each sample of ONE index channel (the documented rule).

    ``None`` for the first sample (no reference yet) and for ``suspect`` samples; else
    the non-negative amount consumed since the previous counted sample.
    """
    baselines = {
        (event.channel, event.at): event.data["baseline"]
        for event in events
        if "baseline" in event.data
    }
    out: list[float | None] = []
    previous: float | None = None
    for sample in samples:
        if sample.quality == "suspect" or isinstance(sample.value, bool | str):
            out.append(None)
            continue
        value = float(sample.value)
        baseline = baselines.get((sample.channel, sample.at))
        if isinstance(baseline, int | float):
            out.append(value - baseline)
        elif previous is None:
            out.append(None)
        else:
            out.append(value - previous)
        previous = value
    return out
