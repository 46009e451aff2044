"""Fault injection: the ``--faults`` language, per-box fault state, and document damage.

Pure logic, no I/O. Grammar (whitespace is ignored; see ``docs/sim.md``)::

    spec    := rule (";" rule)*
    rule    := targets ":" fault ("," fault)*
    targets := target ("," target)*             before the first ":" of the rule
    target  := "*" | N | N "-" M                0-based box indexes, ranges inclusive
    fault   := name ["=" value] ["@" probability]

    "3:latency=2;5:http500;*:truncated@0.1"
    "0-9,20:skew=-2h,unplugged@0.05; 7:reboot=lose"

Fault names (aliases in brackets)::

    latency=S      [slow]               answer S seconds late (HTTP and M2M)
    timeout        [hang]               never answer (HTTP and M2M)
    http500        [500, http_500]      HTTP 500 Internal Server Error
    truncated      [truncate]           XML cut short, HTTP 200
    malformed      [malform]            broken XML (bad entity, mismatched tag...), HTTP 200
    skew=D         [clock_skew]         box clock off by D (s, or with m/h/d), may be negative
    unplugged[=N]  [tic_unplugged]      TIC N (default 1) not read: Pas Dispo / TIC NDERR.
    reset[=N]      [counter_reset]      pulse counter N (default: all) back to zero   (event)
    replace        [meter_replacement]  new meter on TIC1: new ADCO, indexes from 0   (event)
    reboot[=keep|lose]                  the box restarts; pulse/clamp indexes kept or lost (event)
    dead           [unreachable]        every connection is closed at once, unanswered
    leak[=L[/N]]   [water_leak]         + L litres/hour (default 60) on pulse counter N
                                        (default 1, cold water), day and night     (state)
    burst[=L[/N]]                       L litres (default 1200) on counter N over the
                                        next hour                                   (event)
    temp=X[/N]     [temperature]        temperature probes (or probe N) read X °C   (state)
    humidity=P[/N] [hum, rh]            humidity probes (or probe N) read P %RH     (state)
    overload[=N]   [tic_overload]       the meter on TIC N (default 1) is overloaded:
                                        IINST above ISOUSC                          (state)

Without ``@p`` a *condition* applies to every request and an *event* happens once, when
the fault is set. With ``@p`` (0 < p <= 1) each request draws: the condition applies to
that request, or the event happens then, with probability p. Draws come from a
generator seeded by the farm seed and the box index: same seed, same requests, same
faults. *State* faults (leak, temp, humidity, overload) change what the box measures,
from the moment they are set until they are cleared; they take no probability.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from enum import StrEnum

from wesh.errors import UsageError

__all__ = [
    "Fault",
    "FaultKind",
    "FaultRule",
    "FaultSpec",
    "FaultState",
    "RequestFaults",
    "malform_document",
    "truncate_document",
]


class FaultKind(StrEnum):
    """The kinds of fault a box can suffer."""

    LATENCY = "latency"
    TIMEOUT = "timeout"
    HTTP500 = "http500"
    TRUNCATED = "truncated"
    MALFORMED = "malformed"
    SKEW = "skew"
    UNPLUGGED = "unplugged"
    RESET = "reset"
    REPLACE = "replace"
    REBOOT = "reboot"
    DEAD = "dead"
    LEAK = "leak"
    BURST = "burst"
    TEMP = "temp"
    HUMIDITY = "humidity"
    OVERLOAD = "overload"

    @property
    def is_event(self) -> bool:
        """True for faults that happen once (reset, replace, reboot, burst)."""
        return self in (FaultKind.RESET, FaultKind.REPLACE, FaultKind.REBOOT, FaultKind.BURST)

    @classmethod
    def named(cls, name: str) -> FaultKind:
        """Return the kind called ``name`` or one of its aliases (``UsageError`` if none)."""
        return _kind(name)

    @property
    def is_state(self) -> bool:
        """True for faults that change what the box measures until cleared (no ``@p``)."""
        return self in _STATE_KINDS


_ALIASES = {
    "slow": FaultKind.LATENCY,
    "hang": FaultKind.TIMEOUT,
    "500": FaultKind.HTTP500,
    "http_500": FaultKind.HTTP500,
    "truncate": FaultKind.TRUNCATED,
    "malform": FaultKind.MALFORMED,
    "clock_skew": FaultKind.SKEW,
    "tic_unplugged": FaultKind.UNPLUGGED,
    "counter_reset": FaultKind.RESET,
    "meter_replacement": FaultKind.REPLACE,
    "unreachable": FaultKind.DEAD,
    "water_leak": FaultKind.LEAK,
    "temperature": FaultKind.TEMP,
    "hum": FaultKind.HUMIDITY,
    "rh": FaultKind.HUMIDITY,
    "tic_overload": FaultKind.OVERLOAD,
}
_STATE_KINDS = frozenset({FaultKind.LEAK, FaultKind.TEMP, FaultKind.HUMIDITY, FaultKind.OVERLOAD})
DEFAULT_LEAK_L_H = 60.0
DEFAULT_BURST_L = 1200.0
_MAX_VOLUME_L = 100_000.0  # per hour (leak) or per burst: 100 m3
_MAX_COUNTER = 6
_MAX_PROBE = 30
_RANGES = {  # kind: (low, high, unit) of a temp/humidity value
    FaultKind.TEMP: (-55.0, 125.0, "°C"),
    FaultKind.HUMIDITY: (0.0, 100.0, "%RH"),
}
_DURATION_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_LATENCY_S = 3600.0


def _kind(name: str) -> FaultKind:
    key = name.strip().lower()
    try:
        return _ALIASES.get(key) or FaultKind(key)
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise UsageError(f"unknown fault {name!r} (known: {names})") from None


def _is_number(text: str) -> bool:
    """Tell whether ``text`` is ASCII digits (``"²".isdigit()`` is true, ``int("²")`` fails)."""
    return text.isascii() and text.isdigit()


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, not {text!r}") from None


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: its kind, its value (seconds, counter, ``"lose"``...) and probability.

    ``value`` is normalised by :meth:`parse`: seconds as ``float`` for latency and skew,
    an ``int`` (or ``None`` = all / TIC1) for reset, unplugged and overload,
    ``"keep"``/``"lose"`` for reboot, a ``float`` for leak (litres per hour), burst
    (litres), temp (°C) and humidity (%RH), ``None`` otherwise. ``number`` is the pulse
    counter of a leak or burst, or the probe of a temp or humidity fault (``None``: the
    default, counter 1 or every probe of that kind). ``probability`` ``None`` means
    "always" (condition) or "once, now" (event).
    """

    kind: FaultKind
    value: float | int | str | None = None
    probability: float | None = None
    number: int | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``name[=value[/number]][@probability]``."""
        body, _, prob_text = text.partition("@")
        name, has_value, value_text = body.partition("=")
        kind = _kind(name)
        probability = None
        if prob_text.strip():
            probability = _number(prob_text.strip(), "a fault probability")
            if not 0 < probability <= 1:
                raise UsageError(f"a fault probability must be in ]0, 1], not {probability}")
            if kind.is_state:
                raise UsageError(f"{kind} is a lasting state of the box: it takes no probability")
        elif "@" in text:
            raise UsageError(f"missing probability after '@' in {text.strip()!r}")
        value_text = value_text.strip()
        if has_value and not value_text:
            raise UsageError(f"missing value after '=' in {text.strip()!r}")
        value, number = _value(kind, value_text if has_value else None)
        return cls(kind, value, probability, number)

    def __str__(self) -> str:
        text = self.kind.value
        if self.value is not None:
            value = self.value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            text += f"={value}"
            if self.number is not None:
                text += f"/{self.number}"
        if self.probability is not None:
            text += f"@{self.probability:g}"
        return text


def _value(kind: FaultKind, text: str | None) -> tuple[float | int | str | None, int | None]:
    """Return the normalised ``(value, number)`` of a fault's ``=`` text."""
    if kind in (FaultKind.LEAK, FaultKind.BURST, FaultKind.TEMP, FaultKind.HUMIDITY):
        return _measure(kind, text)
    if text is not None and "/" in text:
        raise UsageError(f"{kind} takes no '/number'")
    return _plain_value(kind, text), None


def _measure(kind: FaultKind, text: str | None) -> tuple[float, int | None]:
    """Parse ``L[/N]`` (leak, burst) or ``X[/N]`` (temp, humidity)."""
    if text is None:
        if kind is FaultKind.LEAK:
            return DEFAULT_LEAK_L_H, None
        if kind is FaultKind.BURST:
            return DEFAULT_BURST_L, None
        unit = _RANGES[kind][2]
        raise UsageError(f"{kind} needs a value in {unit}: {kind}=8 or {kind}=8/2 (probe 2)")
    amount_text, slash, number_text = text.partition("/")
    amount = _number(amount_text.strip(), f"a {kind} value")
    number: int | None = None
    limit = _MAX_PROBE if kind in _RANGES else _MAX_COUNTER
    if slash:
        digits = number_text.strip()
        if not _is_number(digits) or not 1 <= int(digits) <= limit:
            what = "probe" if kind in _RANGES else "pulse counter"
            raise UsageError(f"bad {what} number {digits!r} in {kind}={text} (1..{limit})")
        number = int(digits)
    if kind in _RANGES:
        low, high, unit = _RANGES[kind]
        if not low <= amount <= high:
            raise UsageError(f"{kind} must be between {low:g} and {high:g} {unit}, not {amount:g}")
    elif not 0 < amount <= _MAX_VOLUME_L:
        per = " per hour" if kind is FaultKind.LEAK else ""
        raise UsageError(f"{kind} must be above 0 and at most {_MAX_VOLUME_L:g} litres{per}")
    return amount, number


def _plain_value(kind: FaultKind, text: str | None) -> float | int | str | None:
    if kind is FaultKind.LATENCY:
        if text is None:
            raise UsageError("latency needs a value in seconds: latency=2")
        seconds = _number(text, "a latency")
        if not 0 <= seconds <= _MAX_LATENCY_S:
            raise UsageError(f"latency must be between 0 and {_MAX_LATENCY_S:g} s")
        return seconds
    if kind is FaultKind.SKEW:
        if text is None:
            raise UsageError("skew needs a duration: skew=-90s, skew=2h")
        match = _DURATION_RE.match(text.lower())
        if match is None:
            raise UsageError(f"bad clock skew {text!r}: a number with s, m, h or d")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    if kind in (FaultKind.RESET, FaultKind.UNPLUGGED, FaultKind.OVERLOAD):
        if text is None or (kind is FaultKind.RESET and text.lower() == "all"):
            return None
        if not _is_number(text) or not 1 <= int(text) <= (6 if kind is FaultKind.RESET else 3):
            raise UsageError(f"bad {kind} number {text!r}")
        return int(text)
    if kind is FaultKind.REBOOT:
        mode = (text or "keep").lower()
        if mode not in ("keep", "lose"):
            raise UsageError(f"reboot takes keep or lose, not {text!r}")
        return mode
    if text is not None:
        raise UsageError(f"{kind} takes no value")
    return None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Faults for a set of boxes: ``targets`` ``None`` means every box."""

    targets: tuple[tuple[int, int], ...] | None
    faults: tuple[Fault, ...]

    def applies_to(self, index: int) -> bool:
        """Tell whether box ``index`` is a target of this rule."""
        if self.targets is None:
            return True
        return any(low <= index <= high for low, high in self.targets)

    def __str__(self) -> str:
        if self.targets is None:
            targets = "*"
        else:
            targets = ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.targets)
        return f"{targets}:" + ",".join(str(f) for f in self.faults)


def _targets(text: str) -> tuple[tuple[int, int], ...] | None:
    parts = [p.strip() for p in text.split(",")]
    if "*" in parts:
        return None
    out: list[tuple[int, int]] = []
    for part in parts:
        low, dash, high = part.partition("-")
        if not _is_number(low.strip()) or (dash and not _is_number(high.strip())):
            raise UsageError(f"bad box target {part!r}: *, N or N-M")
        lo, hi = int(low), int(high) if dash else int(low)
        if hi < lo:
            raise UsageError(f"empty box range {part!r}")
        out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A parsed ``--faults`` specification: rules applied in order."""

    rules: tuple[FaultRule, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse a specification (see the module docstring); empty text means no fault."""
        rules: list[FaultRule] = []
        for number, chunk in enumerate(text.split(";"), start=1):
            if not chunk.strip():
                continue
            where = f"faults rule {number}"
            targets_text, colon, faults_text = chunk.partition(":")
            if not colon or not faults_text.strip():
                raise UsageError(
                    f"a fault rule is 'targets:fault,...', not {chunk.strip()!r}", where=where
                )
            try:
                targets = _targets(targets_text)
                faults = tuple(Fault.parse(f) for f in faults_text.split(",") if f.strip())
            except UsageError as exc:
                raise UsageError(exc.message, where=where) from exc
            rules.append(FaultRule(targets, faults))
        return cls(tuple(rules))

    def for_box(self, index: int) -> tuple[Fault, ...]:
        """Return the faults of box ``index``, in rule order."""
        return tuple(f for rule in self.rules if rule.applies_to(index) for f in rule.faults)

    def __str__(self) -> str:
        return ";".join(str(rule) for rule in self.rules)


@dataclass(frozen=True, slots=True)
class RequestFaults:
    """What the faults do to one request (drawn by :meth:`FaultState.draw`).

    ``cut`` (0..1) says where a truncated document is cut; ``damage`` picks the kind of
    malformation. ``skew_s`` and ``unplugged`` override the box's own clock offset and
    unplugged inputs for this request when not ``None``/empty. ``events`` must be
    applied to the box before answering. ``dead``: close the connection unanswered.
    """

    latency_s: float = 0.0
    timeout: bool = False
    dead: bool = False
    http500: bool = False
    truncated: bool = False
    malformed: bool = False
    skew_s: float | None = None
    unplugged: frozenset[int] = frozenset()
    events: tuple[Fault, ...] = ()
    cut: float = 0.5
    damage: int = 0

    @property
    def any_damage(self) -> bool:
        """True when the answer itself is altered (500, cut or malformed)."""
        return self.http500 or self.truncated or self.malformed


NO_FAULTS = RequestFaults()


@dataclass(slots=True)
class FaultState:
    """The faults currently set on one box, and its seeded generator of draws."""

    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    pending: list[Fault] = field(default_factory=list)

    @classmethod
    def seeded(cls, seed: int, index: int) -> FaultState:
        """Return an empty state whose draws are seeded by farm seed and box index."""
        return cls(random.Random(f"faults:{seed}:{index}"))  # noqa: S311 - simulation

    def add(self, fault: Fault) -> None:
        """Set a fault: conditions and probabilistic events stay; a plain event is queued once."""
        if fault.kind.is_event and fault.probability is None:
            self.pending.append(fault)
        else:
            self.faults.append(fault)

    def clear(self, kind: FaultKind | None = None) -> None:
        """Remove every fault (or those of one kind)."""
        if kind is None:
            self.faults.clear()
            self.pending.clear()
        else:
            self.faults = [f for f in self.faults if f.kind is not kind]
            self.pending = [f for f in self.pending if f.kind is not kind]

    @property
    def dead(self) -> bool:
        """True while a ``dead`` fault without probability is set (nothing answers)."""
        return any(f.kind is FaultKind.DEAD and f.probability is None for f in self.faults)

    def states(self) -> list[Fault]:
        """Return the *state* faults set (leak, temp, humidity, overload), in order."""
        return [f for f in self.faults if f.kind.is_state]

    def take_pending(self) -> list[Fault]:
        """Return and forget the events waiting to happen once."""
        pending, self.pending = self.pending, []
        return pending

    def draw(self) -> RequestFaults:
        """Decide what the faults do to the next request (state faults are not drawn)."""
        drawn = [f for f in self.faults if not f.kind.is_state]
        if not drawn:
            return NO_FAULTS
        rng = self.rng
        active = [f for f in drawn if f.probability is None or rng.random() < f.probability]
        if not active:
            return NO_FAULTS
        latency = 0.0
        skew: float | None = None
        unplugged: set[int] = set()
        flags: set[FaultKind] = set()
        events: list[Fault] = []
        for fault in active:
            kind = fault.kind
            if kind is FaultKind.LATENCY and isinstance(fault.value, float):
                latency += fault.value
            elif kind is FaultKind.SKEW and isinstance(fault.value, float):
                skew = (skew or 0.0) + fault.value
            elif kind is FaultKind.UNPLUGGED:
                unplugged.add(fault.value if isinstance(fault.value, int) else 1)
            elif kind.is_event:
                events.append(fault)
            else:
                flags.add(kind)
        return RequestFaults(
            latency_s=latency,
            timeout=FaultKind.TIMEOUT in flags,
            dead=FaultKind.DEAD in flags,
            http500=FaultKind.HTTP500 in flags,
            truncated=FaultKind.TRUNCATED in flags,
            malformed=FaultKind.MALFORMED in flags,
            skew_s=skew,
            unplugged=frozenset(unplugged),
            events=tuple(events),
            cut=rng.uniform(0.1, 0.9),
            damage=rng.randrange(4),
        )


def truncate_document(body: bytes, cut: float) -> bytes:
    """Return ``body`` cut at fraction ``cut`` (0..1), never whole, never empty."""
    if len(body) < 2:
        return body[:0]
    at = min(max(int(len(body) * cut), 1), len(body) - 1)
    return body[:at]


def malform_document(body: bytes, damage: int) -> bytes:
    """Return ``body`` with one XML error, chosen by ``damage`` (0..3).

    0: an end tag renamed (mismatch); 1: a bare ``&`` in a text; 2: a NUL character;
    3: text after the root element.
    """
    kind = damage % 4
    middle = len(body) // 2
    if kind == 0:
        at = body.find(b"</", middle)
        if at < 0:
            at = body.find(b"</")
        if at >= 0:
            return body[: at + 2] + b"X" + body[at + 2 :]
        kind = 3
    if kind == 1:
        at = body.find(b">", middle)
        if at >= 0:
            return body[: at + 1] + b"& " + body[at + 1 :]
        kind = 3
    if kind == 2:
        return body[:middle] + b"\x00" + body[middle:]
    return body + b"<data>\n"
