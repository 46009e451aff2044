"""``wesh tic demo``: simulated Téléinfo meters decoded live (``wesh demo`` starts with it).

Four simulated TIC meters (historique single-phase HC, historique three-phase BASE with
an overload episode, standard single-phase Tempo, standard three-phase producer) send
their streams, with a little line noise, at 30 times the line rate. Their bytes are
decoded live by :class:`~wesh.tic.decoder.FrameDecoder`, fed in small pieces as they
"arrive", merged by :class:`~wesh.tic.meter.MeterState`, and shown in one Rich table
per meter. The demo stops by itself after ``seconds`` (15 by default).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from wesh.errors import UsageError
from wesh.tic.decoder import FrameDecoder
from wesh.tic.horodate import PARIS
from wesh.tic.meter import MeterReading, MeterState
from wesh.tic.model import Frame, Mode
from wesh.tic.simulator import OverloadEpisode, Tariff, TicMeterSimulator, add_noise
from wesh.tic.values import TariffPeriod

__all__ = ["DEFAULT_SECONDS", "SPEED", "run_demo"]

DEFAULT_SECONDS = 15.0
SPEED = 30.0  # simulated seconds per wall second
_NOISE_RATE = 0.0001  # line faults per byte
_TICK_S = 0.1
_MAX_PIECE = 64  # the decoder is fed pieces of 1..64 bytes


@dataclass
class _Meter:
    """One simulated meter, its line and the decoding chain behind it."""

    name: str
    sim: TicMeterSimulator
    seed: int
    decoder: FrameDecoder = field(init=False)
    state: MeterState = field(default_factory=MeterState)
    reading: MeterReading | None = None
    frames_ok: int = 0
    frames_bad: int = 0
    sent: int = 0
    _line: bytearray = field(default_factory=bytearray)
    _stream: Iterator[bytes] = field(init=False)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.decoder = FrameDecoder()
        self._rng = random.Random(self.seed)  # noqa: S311 - line noise, not cryptography
        self._stream = (
            add_noise(tf.data, rate=_NOISE_RATE, rng=self._rng) for tf in self.sim.frames()
        )

    @property
    def bytes_per_second(self) -> float:
        """Bytes the line carries per simulated second (10 bits a character)."""
        return self.sim.profile.mode.baudrate / 10

    def receive(self, line_seconds: float) -> None:
        """Deliver what the line carried up to ``line_seconds``, in small pieces."""
        due = int(line_seconds * self.bytes_per_second) - self.sent
        while len(self._line) < due:
            self._line += next(self._stream)
        data, self._line = self._line[:due], self._line[due:]
        self.sent += len(data)
        start = 0
        while start < len(data):
            size = self._rng.randint(1, _MAX_PIECE)
            for frame in self.decoder.feed(bytes(data[start : start + size])):
                self._decoded(frame)
            start += size

    def _decoded(self, frame: Frame) -> None:
        good = frame.complete and not frame.errors and all(g.valid for g in frame.groups)
        if good:
            self.frames_ok += 1
        else:
            self.frames_bad += 1
        self.reading = self.state.update(frame)


def _meters() -> list[_Meter]:
    winter = datetime(2025, 1, 15, 21, 58, tzinfo=PARIS)
    commons = datetime(2025, 1, 15, 18, 55, tzinfo=PARIS)
    overload = OverloadEpisode(commons + timedelta(minutes=2), timedelta(minutes=3), 2, 7000)
    return [
        _Meter(
            "Logement 12 · historique HC",
            TicMeterSimulator(start=winter, seed=12, tariff=Tariff.HC),
            seed=112,
        ),
        _Meter(
            "Communs · historique tri BASE",
            TicMeterSimulator(start=commons, seed=40, phases=3, overloads=(overload,)),
            seed=140,
        ),
        _Meter(
            "Logement 7 · standard Tempo",
            TicMeterSimulator(
                start=datetime(2025, 2, 3, 5, 58, tzinfo=PARIS),
                seed=7,
                mode=Mode.STANDARD,
                tariff=Tariff.TEMPO,
            ),
            seed=107,
        ),
        _Meter(
            "Chaufferie · standard tri PV",
            TicMeterSimulator(
                start=datetime(2025, 6, 15, 12, 30, tzinfo=PARIS),
                seed=3,
                mode=Mode.STANDARD,
                phases=3,
                producer=True,
            ),
            seed=103,
        ),
    ]


def _kwh(wh: int) -> str:
    return f"{wh / 1000:,.3f} kWh".replace(",", " ")


def _number(value: int | None, unit: str) -> str:
    return "—" if value is None else f"{value:,} {unit}".replace(",", " ")


#: The screen's words; the user interface speaks French by default.
LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "waiting": "en attente",
        "for a frame": "d'une trame…",
        "identity": "compteur",
        "mode": "mode",
        "period": "période",
        "indexes": "index",
        "power": "puissance",
        "injected": "injection",
        "currents": "courants",
        "status": "état",
        "meter time": "heure compteur",
        "line time": "heure ligne",
        "frames ok/bad": "trames ok/ko",
        "checksum err.": "erreurs checksum",
        "ok": "normal",
        "OVERLOAD": "DÉPASSEMENT",
        "short": "trame courte",
        "title": "{n} compteurs TIC décodés en direct, débit ligne x{speed}",
    },
    "en": {
        "waiting": "waiting",
        "for a frame": "for a frame…",
        "identity": "identity",
        "mode": "mode",
        "period": "period",
        "indexes": "indexes",
        "power": "power",
        "injected": "injected",
        "currents": "currents",
        "status": "status",
        "meter time": "meter time",
        "line time": "line time",
        "frames ok/bad": "frames ok/bad",
        "checksum err.": "checksum err.",
        "ok": "ok",
        "OVERLOAD": "OVERLOAD",
        "short": "short",
        "title": "{n} TIC meters decoded live, line rate x{speed}",
    },
}


def _indexes(r: MeterReading) -> str:
    """List the registers worth a glance: a historique option's, or EAST and the current one."""
    if r.mode is Mode.STANDARD:
        shown = ["EAST"]
        current = f"EASF{r.tariff_index or 0:02d}"
        if r.indexes_wh.get(current, r.total_index_wh) != r.total_index_wh:
            shown.append(current)
    else:
        shown = list(r.indexes_wh)
    lines = [f"{label} {_kwh(r.indexes_wh[label])}" for label in shown if label in r.indexes_wh]
    return "\n".join(lines) or "—"


def _status(r: MeterReading, words: dict[str, str]) -> Text:
    if not r.overload:
        return Text(words["ok"], style="green")
    text = Text(words["OVERLOAD"], style="bold red")
    adir = [label for label in ("ADIR1", "ADIR2", "ADIR3", "ADPS") if label in r.values]
    if adir:
        text.append(" " + " ".join(adir), style="red")
    if r.short_frame:
        text.append(" " + words["short"], style="yellow")
    return text


def _meter_table(meter: _Meter, lang: str = "fr") -> Table:
    w = LABELS[lang]
    table = Table(title=meter.name, title_justify="left", box=box.ROUNDED, show_header=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", no_wrap=True, overflow="ellipsis")
    r = meter.reading
    if r is None:
        table.add_row(w["waiting"], w["for a frame"])
    else:
        phases = "tri" if r.three_phase else "mono"
        table.add_row(w["identity"], r.identity.raw if r.identity else "—")
        table.add_row(w["mode"], f"{r.mode.value if r.mode else '?'} · {phases}")
        period = r.tariff_period
        if isinstance(period, TariffPeriod):
            table.add_row(
                w["period"], f"{period.value} {period.name_fr if lang == 'fr' else period.name_en}"
            )
        else:
            table.add_row(w["period"], (period or "—").strip())
        table.add_row(w["indexes"], _indexes(r))
        table.add_row(w["power"], _number(r.apparent_power_va, "VA"))
        if r.producer:
            table.add_row(w["injected"], _number(r.injected_power_va, "VA"))
            if r.injected_index_wh is not None:
                table.add_row("", f"EAIT {_kwh(r.injected_index_wh)}")
        currents = " / ".join("—" if a is None else str(a) for a in r.currents_a)
        table.add_row(w["currents"], f"{currents} A" if currents else "—")
        table.add_row(w["status"], _status(r, w))
        meter_time = f"{r.meter_time.local:%Y-%m-%d %H:%M:%S}" if r.meter_time else "—"
        table.add_row(w["meter time"], meter_time)
    table.add_row(w["line time"], f"{meter.sim.now.astimezone(PARIS):%Y-%m-%d %H:%M:%S}")
    bad = f"[red]{meter.frames_bad}[/red]" if meter.frames_bad else "0"
    table.add_row(w["frames ok/bad"], f"{meter.frames_ok} / {bad}")
    table.add_row(w["checksum err."], str(meter.decoder.stats.groups_bad_checksum))
    return table


def _render(meters: list[_Meter], elapsed_s: float, lang: str = "fr") -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column()
    grid.add_column()
    tables = [_meter_table(m, lang) for m in meters]
    for i in range(0, len(tables), 2):
        grid.add_row(*tables[i : i + 2])
    title = Text.assemble(
        ("wesh demo", "bold"),
        " · " + LABELS[lang]["title"].format(n=len(meters), speed=f"{SPEED:g}"),
        f" · {elapsed_s:4.1f} s",
    )
    return Group(title, grid)


def run_demo(
    *,
    seconds: float | None = None,
    console: Console | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    lang: str = "fr",
) -> None:
    """Run the demo for ``seconds`` (default 15): live on a terminal, else print the end.

    ``clock`` and ``sleep`` (wall time) may be replaced, e.g. by tests. The screen
    speaks French unless ``lang="en"``.
    """
    if lang not in LABELS:
        raise UsageError(f"language must be 'fr' or 'en', not {lang!r}")
    console = console or Console()
    duration = DEFAULT_SECONDS if seconds is None else max(0.0, seconds)
    meters = _meters()
    start = clock()

    def step() -> float:
        elapsed = min(clock() - start, duration)
        for meter in meters:
            meter.receive(elapsed * SPEED)
        return elapsed

    # Decoding warnings are counted in the tables: without a logging set-up, keep them
    # off the screen (Python would print them through its last-resort handler).
    quiet = logging.NullHandler()
    logger = logging.getLogger("wesh")
    logger.addHandler(quiet)
    try:
        if console.is_terminal:
            with Live(_render(meters, 0, lang), console=console, refresh_per_second=8) as live:
                elapsed = 0.0
                while elapsed < duration:
                    sleep(_TICK_S)
                    elapsed = step()
                    live.update(_render(meters, elapsed, lang))
        else:
            elapsed = 0.0
            while elapsed < duration:
                sleep(min(_TICK_S, duration - elapsed))
                elapsed = step()
            console.print(_render(meters, elapsed, lang))
    finally:
        logger.removeHandler(quiet)
