"""Realistic simulated TIC meters: pure logic, deterministic, seeded, no I/O, no wall clock.

A :class:`TicMeterSimulator` models one dwelling (or common-areas) electricity meter.
Its state only moves when it is told the simulated time (``advance_to``/``frame_at``);
the same seed, profile and sequence of times always give the same bytes.

Load model (W, per phase)::

    base load (standby) + fridge compressor cycles + morning / lunch / evening
    cooking peaks + evening lighting + washing machine + water heater at night
    (22:00 in HC/Tempo, 01:00 in BASE) + electric heating from November to March
    + injected overload episodes;  producer: minus a PV bell curve around solar noon.

Energy is integrated in steps of at most 10 s; the integer part goes at once to the
total, to the supplier index of the current tariff period and to the distributor
index, so ``EAST == sum(EASF..) == sum(EASD..)`` and historique indexes only ever grow
by the energy drawn. HC hours are 22:00-06:00 Europe/Paris; Tempo days run from 06:00
to 06:00 and their colours are drawn from the seed (red only on winter weekdays).

Frames follow the label order of the specification tables (see
``docs/tic-cli.md``); three-phase historique meters switch to cycles of 20 short
frames + 1 long frame while a phase current exceeds ISOUSC and for one minute after,
and the long frame being sent when an overload starts is cut by EOT.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from wesh.errors import UsageError
from wesh.tic.encoder import EOT, STX, encode_frame, encode_group, make_group
from wesh.tic.horodate import PARIS, format_horodate
from wesh.tic.model import Frame, Group, Mode

__all__ = [
    "MeterProfile",
    "OverloadEpisode",
    "Tariff",
    "TempoColour",
    "TicMeterSimulator",
    "TimedFrame",
    "add_noise",
    "line_seconds",
]

_MASK64 = (1 << 64) - 1
_STEP_S = 10.0
_FRAME_GAP_S = 0.025  # gap between ETX and the next STX: 16.7 to 33.4 ms
_SHORT_FRAMES_PER_CYCLE = 20
_OVERLOAD_HOLD = timedelta(minutes=1)
_UMOY_PERIOD_S = 600
_NONUTILE = "NONUTILE"
_MSG1 = "PAS DE          MESSAGE         "


class Tariff(StrEnum):
    """Tariff option of the simulated contract."""

    BASE = "BASE"
    HC = "HC"
    TEMPO = "TEMPO"


class TempoColour(StrEnum):
    """Colour of a Tempo day."""

    BLEU = "BLEU"
    BLANC = "BLANC"
    ROUGE = "ROUGE"


_TEMPO_CODE = {TempoColour.BLEU: "B", TempoColour.BLANC: "W", TempoColour.ROUGE: "R"}
_TEMPO_DEMAIN = {TempoColour.BLEU: "BLEU", TempoColour.BLANC: "BLAN", TempoColour.ROUGE: "ROUG"}
_TEMPO_BITS = {TempoColour.BLEU: 1, TempoColour.BLANC: 2, TempoColour.ROUGE: 3}
_TEMPO_FIRST_INDEX = {TempoColour.BLEU: 1, TempoColour.BLANC: 3, TempoColour.ROUGE: 5}
_HIST_INDEX_LABELS = {
    Tariff.BASE: ("BASE",),
    Tariff.HC: ("HCHC", "HCHP"),
    Tariff.TEMPO: ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
}
_OPTARIF = {Tariff.BASE: "BASE", Tariff.HC: "HC..", Tariff.TEMPO: "BBR("}
_NGTF = {Tariff.BASE: "BASE", Tariff.HC: "H PLEINE/CREUSE", Tariff.TEMPO: "TEMPO"}


@dataclass(frozen=True, slots=True)
class OverloadEpisode:
    """Extra load on one phase from ``start`` for ``duration`` (to exercise ADPS/ADIR)."""

    start: datetime
    duration: timedelta
    phase: int = 1
    extra_power_va: int = 6000


@dataclass(frozen=True, slots=True)
class MeterProfile:
    """Static description of a simulated meter and its contract.

    ``subscribed_kva`` defaults to 6 (single-phase) or 12 (three-phase); ``identity``
    (ADCO/ADSC) and ``prm`` default to values drawn from the seed.
    """

    mode: Mode = Mode.HISTORIQUE
    phases: int = 1
    tariff: Tariff = Tariff.BASE
    producer: bool = False
    subscribed_kva: int | None = None
    identity: str | None = None
    prm: str | None = None
    overloads: tuple[OverloadEpisode, ...] = ()
    pv_peak_w: int = 3000
    load_curve_minutes: int = 30

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise UsageError(f"a meter has 1 or 3 phases, not {self.phases}")
        if self.subscribed_kva is not None and not 1 <= self.subscribed_kva <= 36:
            raise UsageError(f"subscribed power out of range: {self.subscribed_kva} kVA")
        if self.identity is not None and (len(self.identity) != 12 or not self.identity.isdigit()):
            raise UsageError("a meter identity (ADCO/ADSC) has 12 digits", channel=self.identity)
        if self.prm is not None and (len(self.prm) != 14 or not self.prm.isdigit()):
            raise UsageError("a PRM has 14 digits", channel=self.prm)
        if self.load_curve_minutes not in (10, 15, 30, 60):
            raise UsageError("load_curve_minutes must be 10, 15, 30 or 60")
        for episode in self.overloads:
            if not 1 <= episode.phase <= self.phases:
                raise UsageError(
                    f"overload on phase {episode.phase} of a {self.phases}-phase meter"
                )
            if episode.start.tzinfo is None:
                raise UsageError("overload start must be timezone-aware")

    @property
    def kva(self) -> int:
        """The subscribed (reference) apparent power in kVA."""
        if self.subscribed_kva is not None:
            return self.subscribed_kva
        return 6 if self.phases == 1 else 12

    @property
    def isousc_a(self) -> int:
        """ISOUSC: PREF / 200 V, divided by 3 on a three-phase meter (historique rule)."""
        return round(self.kva * 1000 / 200 / self.phases)


class TimedFrame(NamedTuple):
    """One frame of a simulated stream: when it starts, its bytes and its groups."""

    at: datetime
    data: bytes
    frame: Frame


def line_seconds(nbytes: int, mode: Mode) -> float:
    """Time needed to send ``nbytes`` at the line rate of ``mode`` (10 bits a character)."""
    return nbytes * 10 / mode.baudrate


def _mix(*keys: int) -> float:
    """Deterministic hash of integers to [0, 1) (splitmix64 rounds)."""
    x = 0x9E3779B97F4A7C15
    for key in keys:
        x = (x ^ (key & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        x ^= x >> 30
        x = x * 0x94D049BB133111EB & _MASK64
        x ^= x >> 31
    return x / (1 << 64)


@dataclass(slots=True)
class _Event:
    start: float  # POSIX seconds
    end: float
    power_w: float
    phase: int
    cycle_s: float = 0.0  # > 0: thermostat on/off cycling with 50 % duty


@dataclass(slots=True)
class _Instant:
    """Instantaneous electrical state at one moment."""

    drawn_va: tuple[float, ...]  # per phase, 0 when the phase injects
    injected_va: tuple[float, ...]
    net_w: tuple[float, ...]  # > 0 drawn, < 0 injected
    voltage_v: tuple[float, ...]

    @property
    def currents_a(self) -> tuple[float, ...]:
        return tuple(
            (d + i) / v
            for d, i, v in zip(self.drawn_va, self.injected_va, self.voltage_v, strict=True)
        )


@dataclass(slots=True)
class _Max:
    """A daily maximum and when it was reached."""

    value: float
    at: datetime


@dataclass(slots=True)
class _CurvePoint:
    value: int
    at: datetime


@dataclass(slots=True)
class _Accumulator:
    """Integral over fixed periods (load curve, mean voltage)."""

    period_s: int
    period: int = -1
    complete: bool = False
    total: float = 0.0
    seconds: float = 0.0
    last: list[_CurvePoint] = field(default_factory=list)


class TicMeterSimulator:
    """A deterministic, seeded simulated meter producing frames for a simulated time.

    Build it from keywords (``mode``, ``phases``, ``tariff``, ``producer``...) or pass a
    :class:`MeterProfile`. ``start`` must be timezone-aware; time may only go forward.
    """

    def __init__(
        self,
        *,
        start: datetime,
        seed: int = 0,
        profile: MeterProfile | None = None,
        mode: Mode = Mode.HISTORIQUE,
        phases: int = 1,
        tariff: Tariff | str = Tariff.BASE,
        producer: bool = False,
        subscribed_kva: int | None = None,
        identity: str | None = None,
        overloads: tuple[OverloadEpisode, ...] = (),
    ) -> None:
        if start.tzinfo is None:
            raise UsageError("the simulator start time must be timezone-aware")
        if profile is None:
            try:
                tariff = Tariff(str(tariff).upper())
            except ValueError as exc:
                raise UsageError(f"unknown tariff {tariff!r}: BASE, HC or TEMPO") from exc
            profile = MeterProfile(
                mode=Mode(mode),
                phases=phases,
                tariff=tariff,
                producer=producer,
                subscribed_kva=subscribed_kva,
                identity=identity,
                overloads=overloads,
            )
        self._profile = profile
        self._seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        rng = self._rng
        self._identity = profile.identity or self._make_identity(rng)
        self._prm = profile.prm or "".join(str(rng.randrange(10)) for _ in range(14))
        self._now = start.astimezone(UTC)
        # Appliance sizes drawn once per meter.
        self._base_w = rng.uniform(60, 160)
        self._fridge_w = rng.uniform(90, 150)
        self._fridge_offset_s = rng.uniform(0, 3600)
        self._water_heater_w = rng.choice((1800.0, 2200.0, 2400.0, 3000.0))
        self._heating_w = rng.uniform(900, 2200) * (2.5 if profile.phases == 3 else 1.0)
        self._pf = rng.uniform(0.92, 0.98)
        self._plans: dict[date, list[_Event]] = {}
        self._overload_events = [
            _Event(
                e.start.timestamp(),
                (e.start + e.duration).timestamp(),
                e.extra_power_va * self._pf,
                e.phase - 1,
            )
            for e in profile.overloads
        ]
        # Registers: integer Wh, with a fractional remainder kept apart.
        total_wh = rng.randrange(2_000_000, 40_000_000)
        self._supplier_wh = [0] * 10
        self._distributor_wh = [0] * 4
        self._split_initial(total_wh, rng)
        self._total_wh = total_wh
        self._injected_wh = rng.randrange(500_000, 9_000_000) if profile.producer else 0
        self._reactive_varh = [round(total_wh * f) for f in (0.12, 0.01, 0.005, 0.03)]
        self._pending_wh = 0.0
        self._pending_injected_wh = 0.0
        self._pending_reactive = [0.0] * 4
        # Daily maxima (index 0 = total, then per phase), today and yesterday.
        self._day = self._now.astimezone(PARIS).date()
        self._smax: list[_Max] = []
        self._smax_inj = _Max(0.0, self._now)
        self._smax_prev = self._synthetic_yesterday(rng, drawn=True)
        self._smax_inj_prev = self._synthetic_yesterday(rng, drawn=False)[0]
        self._curve = _Accumulator(profile.load_curve_minutes * 60)
        self._curve_inj = _Accumulator(profile.load_curve_minutes * 60)
        self._umoy = [_Accumulator(_UMOY_PERIOD_S) for _ in range(profile.phases)]
        for acc in (self._curve, self._curve_inj, *self._umoy):
            acc.period = int(self._now.timestamp()) // acc.period_s
            acc.complete = int(self._now.timestamp()) % acc.period_s == 0
        # Overload cycle (three-phase historique short frames).
        self._overload_until: datetime | None = None
        self._short_count = 0
        self._last_frame_long = True
        self._instant = self._instant_at(self._now)
        self._smax = [_Max(va, self._now) for va in self._drawn_totals(self._instant)]

    # ------------------------------------------------------------------ public state

    @property
    def profile(self) -> MeterProfile:
        """The static description of this meter."""
        return self._profile

    @property
    def now(self) -> datetime:
        """The simulated time the state corresponds to (UTC)."""
        return self._now

    @property
    def identity(self) -> str:
        """ADCO (historique) / ADSC (standard): the 12-digit meter address."""
        return self._identity

    @property
    def prm(self) -> str:
        """The 14-digit delivery point identifier."""
        return self._prm

    @property
    def total_index_wh(self) -> int:
        """Total active energy drawn (EAST, or the sum of the historique indexes)."""
        return self._total_wh

    @property
    def injected_wh(self) -> int:
        """Total active energy injected (EAIT); 0 for a consumer."""
        return self._injected_wh

    @property
    def supplier_indexes_wh(self) -> tuple[int, ...]:
        """The ten supplier indexes EASF01..EASF10."""
        return tuple(self._supplier_wh)

    @property
    def distributor_indexes_wh(self) -> tuple[int, ...]:
        """The four distributor indexes EASD01..EASD04."""
        return tuple(self._distributor_wh)

    @property
    def indexes_wh(self) -> dict[str, int]:
        """The tariff indexes by label, as this meter's mode names them."""
        if self._profile.mode is Mode.HISTORIQUE:
            labels = _HIST_INDEX_LABELS[self._profile.tariff]
            return {label: self._supplier_wh[i] for i, label in enumerate(labels)}
        return {f"EASF{i + 1:02d}": wh for i, wh in enumerate(self._supplier_wh)}

    @property
    def power_va(self) -> int:
        """Apparent power drawn, rounded to 10 VA (PAPP / SINSTS)."""
        return _round10(sum(self._instant.drawn_va))

    @property
    def injected_power_va(self) -> int:
        """Apparent power injected (SINSTI); 0 for a consumer."""
        return round(sum(self._instant.injected_va))

    @property
    def active_power_w(self) -> float:
        """Net active power: positive when drawing, negative when injecting."""
        return sum(self._instant.net_w)

    @property
    def phase_powers_va(self) -> tuple[int, ...]:
        """Apparent power drawn on each phase."""
        return tuple(round(va) for va in self._instant.drawn_va)

    @property
    def currents_a(self) -> tuple[int, ...]:
        """RMS current of each phase, in whole amperes."""
        return tuple(round(a) for a in self._instant.currents_a)

    @property
    def voltages_v(self) -> tuple[int, ...]:
        """RMS voltage of each phase, in whole volts."""
        return tuple(round(v) for v in self._instant.voltage_v)

    @property
    def tariff_index(self) -> int:
        """The current supplier tariff index, 1..10 (NTARF)."""
        return self._supplier_index(self._now)

    @property
    def tariff_period(self) -> str:
        """The current period as PTEC names it, without dots: TH, HC, HP, HCJB... HPJR."""
        return self._ptec(self._now).rstrip(".")

    @property
    def tempo_colour(self) -> TempoColour | None:
        """Today's Tempo colour, or ``None`` when the contract is not Tempo."""
        if self._profile.tariff is not Tariff.TEMPO:
            return None
        return self._tempo_colour(self._tempo_day(self._now))

    @property
    def overload(self) -> bool:
        """True when a phase current exceeds the subscribed current (ADPS/ADIR)."""
        return any(a > self._profile.isousc_a for a in self.currents_a)

    # ------------------------------------------------------------------ public API

    def advance_to(self, at: datetime) -> None:
        """Move the simulated time forward to ``at``, integrating energy on the way."""
        if at.tzinfo is None:
            raise UsageError("simulated times must be timezone-aware")
        at = at.astimezone(UTC)
        if at < self._now:
            raise UsageError(
                f"simulated time cannot go back ({at.isoformat()} < {self._now.isoformat()})"
            )
        while self._now < at:
            step_s = min(_STEP_S, (at - self._now).total_seconds())
            mid = self._now + timedelta(seconds=step_s / 2)
            inst = self._instant_at(mid)
            self._integrate(inst, mid, step_s)
            self._update_maxima(inst, mid)
            self._now = min(at, self._now + timedelta(seconds=step_s))
            self._roll_day()
        self._instant = self._instant_at(self._now)
        self._update_maxima(self._instant, self._now)

    def frame_at(self, at: datetime) -> Frame:
        """Advance to ``at`` and return the frame the meter sends then."""
        return self._next_frame(at)[0]

    def frames(
        self, *, count: int | None = None, until: datetime | None = None
    ) -> Iterator[TimedFrame]:
        """Yield the stream from the current time, each frame starting after the last one.

        The simulated time advances by each frame's duration at the line rate plus a
        25 ms gap; stops after ``count`` frames or at ``until`` (endless when neither).
        """
        sent = 0
        at = self._now
        while (count is None or sent < count) and (until is None or at < until):
            frame, data = self._next_frame(at)
            yield TimedFrame(at, data, frame)
            sent += 1
            at = at + timedelta(seconds=line_seconds(len(data), self._profile.mode) + _FRAME_GAP_S)

    # ------------------------------------------------------------------ frames

    def _next_frame(self, at: datetime) -> tuple[Frame, bytes]:
        self.advance_to(at)
        mode = self._profile.mode
        if mode is Mode.STANDARD:
            frame = self._frame(self._standard_groups())
            return frame, encode_frame(frame)
        short = self._short_frame_due()
        if not short:
            self._last_frame_long = True
            frame = self._frame(self._historique_groups())
            return frame, encode_frame(frame)
        frame = self._frame(self._short_groups())
        data = encode_frame(frame)
        if self._last_frame_long:
            # The long frame being sent when the overload starts is cut by EOT.
            cut = self._historique_groups()
            keep = self._rng.randrange(1, len(cut))
            interrupted = bytes((STX,)) + b"".join(
                encode_group(g.label, g.value, mode=mode) for g in cut[:keep]
            )
            data = interrupted + bytes((EOT,)) + data
        self._last_frame_long = False
        return frame, data

    def _frame(self, groups: list[Group]) -> Frame:
        return Frame(mode=self._profile.mode, groups=tuple(groups), complete=True)

    def _short_frame_due(self) -> bool:
        if self._profile.phases != 3:
            return False
        if self.overload:
            self._overload_until = self._now + _OVERLOAD_HOLD
        if self._overload_until is None or self._now >= self._overload_until:
            self._overload_until = None
            self._short_count = 0
            return False
        if self._short_count < _SHORT_FRAMES_PER_CYCLE:
            self._short_count += 1
            return True
        self._short_count = 0
        return False

    def _historique_groups(self) -> list[Group]:
        p = self._profile
        mode = Mode.HISTORIQUE
        g: list[tuple[str, str]] = [
            ("ADCO", self._identity),
            ("OPTARIF", _OPTARIF[p.tariff]),
            ("ISOUSC", f"{p.isousc_a:02d}"),
        ]
        g += [(label, f"{wh:09d}") for label, wh in self.indexes_wh.items()]
        g.append(("PTEC", self._ptec(self._now)))
        if p.tariff is Tariff.TEMPO:
            tomorrow = self._tempo_tomorrow(self._now)
            g.append(("DEMAIN", _TEMPO_DEMAIN[tomorrow] if tomorrow else "----"))
        currents = self.currents_a
        if p.phases == 1:
            g.append(("IINST", f"{_cap(currents[0], 999):03d}"))
            if currents[0] > p.isousc_a:
                g.append(("ADPS", f"{_cap(currents[0], 999):03d}"))
            g.append(("IMAX", "090"))
        else:
            g += [(f"IINST{i + 1}", f"{_cap(a, 999):03d}") for i, a in enumerate(currents)]
            g += [(f"IMAX{i + 1}", "060") for i in range(3)]
            pmax = self._smax_prev[0].value
            g.append(("PMAX", f"{_cap(_round10(pmax * self._pf), 99999):05d}"))
        g.append(("PAPP", f"{_cap(self.power_va, 99999):05d}"))
        g.append(("HHPHC", "A"))
        g.append(("MOTDETAT", "000000"))
        if p.phases == 3:
            g.append(("PPOT", "00"))
        return [make_group(label, value, mode=mode) for label, value in g]

    def _short_groups(self) -> list[Group]:
        mode = Mode.HISTORIQUE
        currents = self.currents_a
        limit = self._profile.isousc_a
        g = [(f"ADIR{i + 1}", f"{_cap(a, 999):03d}") for i, a in enumerate(currents) if a > limit]
        g.append(("ADCO", self._identity))
        g += [(f"IINST{i + 1}", f"{_cap(a, 999):03d}") for i, a in enumerate(currents)]
        return [make_group(label, value, mode=mode) for label, value in g]

    def _standard_groups(self) -> list[Group]:
        p = self._profile
        tri = p.phases == 3
        inst = self._instant
        now = self._now
        out: list[tuple[str, str, str | None]] = [
            ("ADSC", self._identity, None),
            ("VTIC", "02", None),
            ("DATE", "", format_horodate(now)),
            ("NGTF", _NGTF[p.tariff].center(16), None),
            ("LTARF", self._ltarf(now).center(16), None),
            ("EAST", f"{self._total_wh % 10**9:09d}", None),
        ]
        out += [
            (f"EASF{i + 1:02d}", f"{wh % 10**9:09d}", None)
            for i, wh in enumerate(self._supplier_wh)
        ]
        out += [
            (f"EASD{i + 1:02d}", f"{wh % 10**9:09d}", None)
            for i, wh in enumerate(self._distributor_wh)
        ]
        if p.producer:
            out.append(("EAIT", f"{self._injected_wh % 10**9:09d}", None))
            out += [
                (f"ERQ{i + 1}", f"{q % 10**9:09d}", None) for i, q in enumerate(self._reactive_varh)
            ]
        currents = self.currents_a
        out += [(f"IRMS{i + 1}", f"{_cap(a, 999):03d}", None) for i, a in enumerate(currents)]
        out += [
            (f"URMS{i + 1}", f"{_cap(v, 999):03d}", None) for i, v in enumerate(self.voltages_v)
        ]
        out.append(("PREF", f"{p.kva:02d}", None))
        out.append(("PCOUP", f"{p.kva:02d}", None))
        drawn = self._drawn_totals(inst)
        out.append(("SINSTS", f"{_cap(round(drawn[0]), 99999):05d}", None))
        if tri:
            out += [(f"SINSTS{i}", f"{_cap(round(drawn[i]), 99999):05d}", None) for i in (1, 2, 3)]
        out.append(("SMAXSN", *self._max_field(self._smax[0])))
        if tri:
            out += [(f"SMAXSN{i}", *self._max_field(self._smax[i])) for i in (1, 2, 3)]
        out.append(("SMAXSN-1", *self._max_field(self._smax_prev[0])))
        if tri:
            out += [(f"SMAXSN{i}-1", *self._max_field(self._smax_prev[i])) for i in (1, 2, 3)]
        if p.producer:
            out.append(("SINSTI", f"{_cap(self.injected_power_va, 99999):05d}", None))
            out.append(("SMAXIN", *self._max_field(self._smax_inj)))
            out.append(("SMAXIN-1", *self._max_field(self._smax_inj_prev)))
        out += self._curve_fields("CCASN", self._curve)
        if p.producer:
            out += self._curve_fields("CCAIN", self._curve_inj)
        for i, acc in enumerate(self._umoy):
            if acc.last:
                point = acc.last[-1]
                out.append((f"UMOY{i + 1}", f"{point.value:03d}", format_horodate(point.at)))
        out.append(("STGE", f"{self._stge():08X}", None))
        out.append(("MSG1", _MSG1, None))
        out.append(("PRM", self._prm, None))
        relay_closed = self._dry_contact_closed(now)
        out.append(("RELAIS", "001" if relay_closed else "000", None))
        out.append(("NTARF", f"{self._supplier_index(now):02d}", None))
        out.append(("NJOURF", f"{self._day_profile(now, tomorrow=False):02d}", None))
        out.append(("NJOURF+1", f"{self._day_profile(now, tomorrow=True):02d}", None))
        out.append(("PJOURF+1", self._next_day_profile(now), None))
        return [make_group(label, value, mode=Mode.STANDARD, horodate=h) for label, value, h in out]

    @staticmethod
    def _max_field(m: _Max) -> tuple[str, str]:
        return f"{_cap(round(m.value), 99999):05d}", format_horodate(m.at)

    @staticmethod
    def _curve_fields(label: str, acc: _Accumulator) -> list[tuple[str, str, str | None]]:
        points = acc.last[-2:][::-1]
        names = (label, f"{label}-1")
        return [
            (name, f"{_cap(point.value, 99999):05d}", format_horodate(point.at))
            for name, point in zip(names, points, strict=False)
        ]

    def _stge(self) -> int:
        p = self._profile
        now = self._now
        bits = 0 if self._dry_contact_closed(now) else 1
        if sum(self._instant.drawn_va) > p.kva * 1000:
            bits |= 1 << 7
        if p.producer:
            bits |= 1 << 8
        if sum(self._instant.net_w) < 0:
            bits |= 1 << 9
        bits |= (self._supplier_index(now) - 1) << 10
        bits |= (self._distributor_index(now) - 1) << 14
        bits |= 1 << 17  # standard TIC mode
        bits |= 0b11 << 19  # Euridis output on, with security
        bits |= 0b10 << 21  # CPL registered
        bits |= 1 << 23  # CPL synchronised
        if p.tariff is Tariff.TEMPO:
            bits |= _TEMPO_BITS[self._tempo_colour(self._tempo_day(now))] << 24
            tomorrow = self._tempo_tomorrow(now)
            bits |= (_TEMPO_BITS[tomorrow] if tomorrow else 0) << 26
        return bits

    # ------------------------------------------------------------------ calendar

    @staticmethod
    def _is_hc(at: datetime) -> bool:
        hour = at.astimezone(PARIS).hour
        return hour >= 22 or hour < 6

    @staticmethod
    def _tempo_day(at: datetime) -> date:
        local = at.astimezone(PARIS)
        return local.date() if local.hour >= 6 else local.date() - timedelta(days=1)

    def _tempo_colour(self, day: date) -> TempoColour:
        if day.weekday() == 6:
            return TempoColour.BLEU
        r = _mix(self._seed, day.toordinal(), 0x7E3)
        if day.month in (11, 12, 1, 2, 3):
            if day.weekday() < 5 and r < 0.12:
                return TempoColour.ROUGE
            return TempoColour.BLANC if r < 0.32 else TempoColour.BLEU
        return TempoColour.BLANC if r < 0.05 else TempoColour.BLEU

    def _tempo_tomorrow(self, at: datetime) -> TempoColour | None:
        """Tomorrow's colour, announced from 11:00 of the current Tempo day."""
        hour = at.astimezone(PARIS).hour
        if 6 <= hour < 11:
            return None
        return self._tempo_colour(self._tempo_day(at) + timedelta(days=1))

    def _supplier_index(self, at: datetime) -> int:
        tariff = self._profile.tariff
        if tariff is Tariff.BASE:
            return 1
        hp = 0 if self._is_hc(at) else 1
        if tariff is Tariff.HC:
            return 1 + hp
        return _TEMPO_FIRST_INDEX[self._tempo_colour(self._tempo_day(at))] + hp

    def _distributor_index(self, at: datetime) -> int:
        """1 HP high season, 2 HC high season, 3 HP low season, 4 HC low season."""
        if self._profile.tariff is Tariff.BASE:
            return 1
        high = at.astimezone(PARIS).month in (11, 12, 1, 2, 3)
        return (1 if high else 3) + (1 if self._is_hc(at) else 0)

    def _ptec(self, at: datetime) -> str:
        tariff = self._profile.tariff
        if tariff is Tariff.BASE:
            return "TH.."
        period = "HC" if self._is_hc(at) else "HP"
        if tariff is Tariff.HC:
            return f"{period}.."
        return f"{period}J{_TEMPO_CODE[self._tempo_colour(self._tempo_day(at))]}"

    def _ltarf(self, at: datetime) -> str:
        tariff = self._profile.tariff
        if tariff is Tariff.BASE:
            return "BASE"
        if tariff is Tariff.HC:
            return "HEURE  CREUSE" if self._is_hc(at) else "HEURE  PLEINE"
        period = "HC" if self._is_hc(at) else "HP"
        return f"{period} {self._tempo_colour(self._tempo_day(at)).value}"

    def _dry_contact_closed(self, at: datetime) -> bool:
        """Tell whether the dry contact (water heater) is closed: in HC, never in BASE."""
        return self._profile.tariff is not Tariff.BASE and self._is_hc(at)

    def _day_profile(self, at: datetime, *, tomorrow: bool) -> int:
        if self._profile.tariff is not Tariff.TEMPO:
            return 0
        if tomorrow:
            colour = self._tempo_tomorrow(at) or self._tempo_colour(self._tempo_day(at))
        else:
            colour = self._tempo_colour(self._tempo_day(at))
        return _TEMPO_BITS[colour]

    def _next_day_profile(self, at: datetime) -> str:
        tariff = self._profile.tariff
        if tariff is Tariff.BASE:
            blocks = ["00004001"]
        elif tariff is Tariff.HC:
            blocks = ["00004001", "06004002", "22004001"]
        else:
            colour = self._tempo_tomorrow(at) or self._tempo_colour(self._tempo_day(at))
            first = _TEMPO_FIRST_INDEX[colour]
            blocks = [f"0000400{first}", f"0600400{first + 1}", f"2200400{first}"]
        blocks += [_NONUTILE] * (11 - len(blocks))
        return " ".join(blocks)

    # ------------------------------------------------------------------ load model

    def _plan(self, day: date) -> list[_Event]:
        """Appliance events of one local day, drawn from the seed and the date."""
        cached = self._plans.get(day)
        if cached is not None:
            return cached
        rng = random.Random(f"{self._seed}:{day.isoformat()}")  # noqa: S311 - simulation
        phases = self._profile.phases
        midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
        plan: list[_Event] = []

        def event(start_h: float, minutes: float, power_w: float, cycle_s: float = 0.0) -> None:
            start = (midnight + timedelta(hours=start_h)).timestamp()
            phase = rng.randrange(phases)
            plan.append(_Event(start, start + minutes * 60, power_w, phase, cycle_s))

        event(rng.uniform(6.3, 7.8), rng.uniform(3, 6), rng.uniform(1800, 2200))  # kettle
        event(rng.uniform(6.5, 8.2), rng.uniform(5, 12), rng.uniform(1200, 1900))  # hairdryer
        if rng.random() < 0.5:
            event(rng.uniform(11.8, 12.6), rng.uniform(20, 40), rng.uniform(1500, 2800), 90)
        event(rng.uniform(18.9, 20.3), rng.uniform(30, 60), rng.uniform(2000, 3500), 120)  # cooking
        event(18.0 + rng.uniform(-0.5, 0.5), rng.uniform(300, 330), rng.uniform(250, 550))  # lights
        if rng.random() < 0.5:
            start_h = rng.uniform(9, 20)
            event(start_h, 15, rng.uniform(1800, 2200))  # washing machine: heating water
            event(start_h + 0.25, 60, rng.uniform(200, 400), 240)
        heater_h = 22.0 if self._profile.tariff is not Tariff.BASE else 1.0
        event(heater_h + rng.uniform(0, 0.2), rng.uniform(60, 180), self._water_heater_w)
        if day.month in (11, 12, 1, 2, 3):
            for start_h, hours in ((0.0, 6.5), (6.5, 2.5), (9.0, 8.0), (17.0, 7.0)):
                share = rng.uniform(0.6, 1.0) if start_h in (6.5, 17.0) else rng.uniform(0.2, 0.5)
                start = (midnight + timedelta(hours=start_h)).timestamp()
                for phase in range(phases):
                    power_w = self._heating_w * share / phases
                    plan.append(_Event(start, start + hours * 3600, power_w, phase, 600))
        if len(self._plans) > 4:
            self._plans.pop(min(self._plans))
        self._plans[day] = plan
        return plan

    def _events_at(self, at: datetime) -> list[_Event]:
        """Events of today, of yesterday (they may run past midnight) and overloads."""
        day = at.astimezone(PARIS).date()
        return [
            *self._plan(day - timedelta(days=1)),
            *self._plan(day),
            *self._overload_events,
        ]

    def _instant_at(self, at: datetime) -> _Instant:
        phases = self._profile.phases
        t = at.timestamp()
        second = int(t)
        loads = [
            self._base_w / phases * (1 + 0.1 * (_mix(self._seed, second, p) - 0.5))
            for p in range(phases)
        ]
        if (t + self._fridge_offset_s) % 2700 < 900:
            loads[0] += self._fridge_w
        for e in self._events_at(at):
            if e.start <= t < e.end and (
                e.cycle_s == 0 or (t - e.start) % e.cycle_s < e.cycle_s / 2
            ):
                loads[e.phase] += e.power_w * (
                    1 + 0.04 * (_mix(self._seed, second, 17 + e.phase) - 0.5)
                )
        production = self._production_w(at) if self._profile.producer else 0.0
        net = [load - production / phases for load in loads]
        drawn = tuple(max(w, 0.0) / self._pf for w in net)
        injected = tuple(max(-w, 0.0) for w in net)
        hour = at.astimezone(PARIS).hour + at.minute / 60
        voltages = tuple(
            230
            + 3 * math.sin(2 * math.pi * (hour / 24 + p / 3))
            + 2 * (_mix(self._seed, second // 10, 40 + p) - 0.5)
            - 0.01 * (drawn[p] / 230)
            + 0.02 * (injected[p] / 230)
            for p in range(phases)
        )
        return _Instant(drawn, injected, tuple(net), voltages)

    def _production_w(self, at: datetime) -> float:
        """PV output: a bell around solar noon, day length by season, clouds by day."""
        day = at.astimezone(PARIS).date()
        doy = day.timetuple().tm_yday
        day_hours = 12 + 4 * math.cos(2 * math.pi * (doy - 172) / 365)
        utc = at.astimezone(UTC)
        x = (utc.hour + utc.minute / 60 + utc.second / 3600 - 11.8) / day_hours + 0.5
        if not 0 < x < 1:
            return 0.0
        clearness = 0.35 + 0.65 * _mix(self._seed, day.toordinal(), 0x5A)
        passing = 0.85 + 0.15 * math.sin(at.timestamp() / 700 + self._seed)
        bell: float = math.sin(math.pi * x) ** 1.5
        return self._profile.pv_peak_w * bell * clearness * passing

    # ------------------------------------------------------------------ integration

    def _integrate(self, inst: _Instant, mid: datetime, step_s: float) -> None:
        hours = step_s / 3600
        drawn_w = sum(max(w, 0.0) for w in inst.net_w)
        injected_w = sum(max(-w, 0.0) for w in inst.net_w)
        self._pending_wh += drawn_w * hours
        self._pending_injected_wh += injected_w * hours
        reactive = (0.2 * drawn_w, 0.01 * drawn_w, 0.02 * injected_w, 0.1 * injected_w)
        for i, q in enumerate(reactive):
            self._pending_reactive[i] += q * hours
        whole = int(self._pending_wh)
        if whole:
            self._pending_wh -= whole
            self._total_wh += whole
            self._supplier_wh[self._supplier_index(mid) - 1] += whole
            self._distributor_wh[self._distributor_index(mid) - 1] += whole
        whole = int(self._pending_injected_wh)
        self._pending_injected_wh -= whole
        self._injected_wh += whole
        for i in range(4):
            whole = int(self._pending_reactive[i])
            self._pending_reactive[i] -= whole
            self._reactive_varh[i] += whole
        self._accumulate(self._curve, mid, drawn_w, step_s)
        self._accumulate(self._curve_inj, mid, injected_w, step_s)
        for acc, volts in zip(self._umoy, inst.voltage_v, strict=True):
            self._accumulate(acc, mid, volts, step_s)

    @staticmethod
    def _accumulate(acc: _Accumulator, mid: datetime, value: float, step_s: float) -> None:
        period = int(mid.timestamp()) // acc.period_s
        if period != acc.period:
            if acc.complete and acc.seconds > 0:
                end = datetime.fromtimestamp((acc.period + 1) * acc.period_s, tz=UTC)
                acc.last = [*acc.last[-1:], _CurvePoint(round(acc.total / acc.seconds), end)]
            acc.period = period
            acc.complete = True
            acc.total = 0.0
            acc.seconds = 0.0
        acc.total += value * step_s
        acc.seconds += step_s

    def _update_maxima(self, inst: _Instant, at: datetime) -> None:
        for i, va in enumerate(self._drawn_totals(inst)):
            if va > self._smax[i].value:
                self._smax[i] = _Max(va, at)
        injected = sum(inst.injected_va)
        if injected > self._smax_inj.value:
            self._smax_inj = _Max(injected, at)

    def _roll_day(self) -> None:
        day = self._now.astimezone(PARIS).date()
        if day == self._day:
            return
        self._day = day
        self._smax_prev = self._smax
        self._smax_inj_prev = self._smax_inj
        self._smax = [_Max(0.0, self._now) for _ in self._smax_prev]
        self._smax_inj = _Max(0.0, self._now)

    @staticmethod
    def _drawn_totals(inst: _Instant) -> list[float]:
        """Apparent power drawn: the total first, then each phase when three-phase."""
        totals = [sum(inst.drawn_va)]
        if len(inst.drawn_va) == 3:
            totals += list(inst.drawn_va)
        return totals

    # ------------------------------------------------------------------ set-up

    def _make_identity(self, rng: random.Random) -> str:
        if self._profile.mode is Mode.STANDARD or self._profile.producer:
            kind = 63 if self._profile.phases == 3 else 61
        else:
            kind = 63 if self._profile.phases == 3 else 62
        return (
            f"{rng.randrange(1, 40):02d}{rng.randrange(15, 25):02d}{kind}{rng.randrange(10**6):06d}"
        )

    def _split_initial(self, total_wh: int, rng: random.Random) -> None:
        tariff = self._profile.tariff
        if tariff is Tariff.BASE:
            shares = [1.0]
        elif tariff is Tariff.HC:
            shares = [0.4, 0.6]
        else:
            shares = [0.35, 0.45, 0.05, 0.08, 0.03, 0.04]
        left = total_wh
        for i, share in enumerate(shares):
            wh = left if i == len(shares) - 1 else int(total_wh * share)
            self._supplier_wh[i] = wh
            left -= wh
        if tariff is Tariff.BASE:
            self._distributor_wh[0] = total_wh
        else:
            high = int(total_wh * rng.uniform(0.55, 0.65))
            hc_high = int(high * 0.4)
            hc_low = int((total_wh - high) * 0.4)
            self._distributor_wh = [high - hc_high, hc_high, total_wh - high - hc_low, hc_low]

    def _synthetic_yesterday(self, rng: random.Random, *, drawn: bool) -> list[_Max]:
        """Plausible day n-1 maxima for a meter that did not exist yesterday."""
        yesterday = datetime.combine(
            self._now.astimezone(PARIS).date() - timedelta(days=1),
            datetime.min.time(),
            tzinfo=PARIS,
        )
        if not drawn:
            peak = (
                self._profile.pv_peak_w * rng.uniform(0.4, 0.9) if self._profile.producer else 0.0
            )
            return [_Max(peak, yesterday + timedelta(hours=rng.uniform(12.5, 14.5)))]
        when = yesterday + timedelta(hours=rng.uniform(19, 20.5))
        total = rng.uniform(0.35, 0.7) * self._profile.kva * 1000
        out = [_Max(total, when)]
        if self._profile.phases == 3:
            shares = [rng.uniform(0.25, 0.45) for _ in range(3)]
            out += [_Max(total * s, when) for s in shares]
        return out


def _round10(value: float) -> int:
    return round(value / 10) * 10


def _cap(value: int, limit: int) -> int:
    return max(0, min(int(value), limit))


# ---------------------------------------------------------------------- line noise


def add_noise(data: bytes, *, rate: float, rng: random.Random) -> bytes:
    """Return ``data`` with line faults injected, about ``rate`` faults per byte.

    Faults: a flipped data bit, a dropped CR or LF, LF received as 0x0E, the parity
    bit seen as bit 7 (harmless: readers mask it), a burst of garbage bytes, and an
    EOT cutting the stream. ``rate`` 0 returns ``data`` unchanged.
    """
    if not 0 <= rate <= 1:
        raise UsageError(f"noise rate must be between 0 and 1, not {rate}")
    if rate == 0:
        return data
    out = bytearray()
    for byte in data:
        if rng.random() >= rate:
            out.append(byte)
            continue
        fault = rng.randrange(6)
        if fault == 0:
            out.append(byte ^ (1 << rng.randrange(7)))
        elif fault == 1 and byte in (0x0A, 0x0D):
            continue  # dropped
        elif fault == 2 and byte == 0x0A:
            out.append(0x0E)
        elif fault == 3:
            out.append(byte | 0x80)
        elif fault == 4:
            out.append(byte)
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif fault == 5:
            out.append(EOT)
            out.append(byte)
        else:
            out.append(byte ^ (1 << rng.randrange(7)))
    return bytes(out)
