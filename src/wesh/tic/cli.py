"""``wesh tic``: decode and simulate Téléinfo streams.

``wesh tic decode SOURCE`` reads a file, stdin (``-``, decoded as bytes arrive) or a
serial line (a char device such as ``/dev/ttyUSB0`` or ``/dev/pts/3``, or a pyserial URL
such as ``socket://host:port``) and prints each frame, as Rich tables or as one JSON
object per line. ``wesh tic simulate`` writes the live stream of a simulated meter,
paced at the line rate, to stdout, a file or a new pty::

    wesh tic simulate --frames 20 --speed 0 | wesh tic decode - --json
    wesh tic simulate --pty --mode standard      # prints /dev/pts/N on stderr

``wesh tic demo`` decodes four simulated meters live, for a short while.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import stat
import sys
import time
import tty
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime, timedelta
from typing import IO, Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from wesh.errors import DecodeError, UsageError
from wesh.tic.decoder import DecoderStats, FrameDecoder
from wesh.tic.horodate import PARIS, parse_horodate
from wesh.tic.labels import lookup
from wesh.tic.model import Frame, Mode
from wesh.tic.serial import TicSerialReader
from wesh.tic.simulator import OverloadEpisode, Tariff, TicMeterSimulator, add_noise, line_seconds

__all__ = ["frame_to_json", "is_serial_source", "pace", "tic"]

_CONTEXT = {"help_option_names": ["-h", "--help"]}
_CHUNK = 4096
_WRITE_CHUNK = 64  # bytes written at a time when pacing, so readers see a live line
_FRAME_GAP_S = 0.025
_PIPE_WIDTH = 120  # columns of the tables when stdout is not a terminal


@click.group(context_settings=_CONTEXT)
def tic() -> None:
    """Enedis Téléinfo (TIC): decode a stream, simulate a meter."""


# ---------------------------------------------------------------------- decode


def is_serial_source(source: str) -> bool:
    """Tell whether ``source`` names a serial line rather than a file.

    A pyserial URL (``loop://``, ``socket://host:port``...), a path under ``/dev/``, or
    any existing character device (a pty) is a serial line.
    """
    if "://" in source or source.startswith("/dev/"):
        return True
    try:
        return stat.S_ISCHR(os.stat(source).st_mode)
    except OSError:
        return False


def frame_to_json(frame: Frame) -> dict[str, Any]:
    """Return the JSON object printed for one frame by ``wesh tic decode --json``."""
    return {
        "mode": frame.mode.value if frame.mode else None,
        "complete": frame.complete,
        "groups": [
            {
                "label": g.label,
                "value": g.value,
                "horodate": g.horodate,
                "checksum": g.checksum,
                "checksum_ok": g.checksum_ok,
                "valid": g.valid,
                "mode": g.mode.value if g.mode else None,
                "error": g.error,
            }
            for g in frame.groups
        ],
        "errors": list(frame.errors),
    }


def _stream_frames(stream: IO[bytes], decoder: FrameDecoder) -> Generator[Frame, None, None]:
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    while True:
        data = read(_CHUNK)
        if not data:
            break
        yield from decoder.feed(data)
    yield from decoder.flush()


def _file_frames(path: str, decoder: FrameDecoder) -> Generator[Frame, None, None]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the check
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with stream:
        try:
            yield from _stream_frames(stream, decoder)
        except OSError as exc:
            raise DecodeError(f"read failed: {exc}", where=path) from exc


def _value_text(label: str, value: str, mode: Mode | None) -> tuple[str, str]:
    """Return (meaning, value with its unit) for display."""
    info = lookup(label, mode) if mode else None
    if info is None:
        return "", value
    unit = str(info.unit)
    if unit and value.isdigit():
        return info.meaning, f"{int(value):,} {unit}".replace(",", " ")
    return info.meaning, value.strip() or value


def _horodate_text(raw: str | None) -> str:
    if raw is None:
        return ""
    try:
        horodate = parse_horodate(raw)
    except DecodeError:
        return raw
    return f"{horodate.local:%Y-%m-%d %H:%M:%S} {horodate.season.strip()}".rstrip()


def render_frame(frame: Frame, number: int) -> Table:
    """Render one frame as a Rich table: label, meaning, value and unit, horodate, checksum."""
    state = "complete" if frame.complete else "[red]incomplete[/red]"
    mode = frame.mode.value if frame.mode else "unknown mode"
    table = Table(
        title=f"Frame {number} · {mode} · {state}", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("Label", style="bold", no_wrap=True)
    table.add_column("Meaning", no_wrap=True, overflow="ellipsis", max_width=38)
    table.add_column("Value", overflow="fold")
    table.add_column("Horodate", no_wrap=True)
    table.add_column("✓", justify="center", no_wrap=True)
    for group in frame.groups:
        meaning, value = _value_text(group.label, group.value, frame.mode or group.mode)
        mark = "[green]✓[/green]" if group.valid else "[red]✗[/red]"
        if group.error:
            value = f"{value} [red]({group.error})[/red]"
        table.add_row(group.label, meaning, value, _horodate_text(group.horodate), mark)
    for error in frame.errors:
        table.add_row("", f"[red]{error}[/red]", "", "", "")
    return table


def _stats_table(stats: DecoderStats) -> Table:
    table = Table(title="Decoder counters", title_justify="left")
    table.add_column("Counter")
    table.add_column("Value", justify="right")
    for name, value in stats.as_dict().items():
        table.add_row(name.replace("_", " "), str(value))
    return table


@tic.command()
@click.argument("source")
@click.option(
    "--mode",
    type=click.Choice(["auto", "historique", "standard"]),
    default="auto",
    show_default=True,
    help="Expected mode; auto detects it per frame.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame and line.")
@click.option(
    "--baudrate",
    type=click.IntRange(min=50),
    default=None,
    help="Serial speed (default: the mode's, or probe 1200 then 9600).",
)
@click.option(
    "--framing",
    type=click.Choice(["7E1", "8N1"]),
    default="7E1",
    show_default=True,
    help="Serial character framing.",
)
def decode(source: str, mode: str, as_json: bool, baudrate: int | None, framing: str) -> None:
    """Decode a TIC stream from SOURCE: a file, - (stdin) or a serial line.

    A serial line is a pyserial URL (loop://, socket://host:port), a path under /dev/
    or any character device (a pty made by `wesh tic simulate --pty`). With --json,
    each frame is one line {"mode", "complete", "groups", "errors"} and the counters
    go to stderr at the end.
    """
    forced = None if mode == "auto" else Mode(mode)
    reader: TicSerialReader | None = None
    decoder = FrameDecoder(mode=forced)
    if source == "-":
        frames: Generator[Frame, None, None] = _stream_frames(sys.stdin.buffer, decoder)
    elif is_serial_source(source):
        reader = TicSerialReader(source, mode=forced, baudrate=baudrate, framing=framing)
        frames = reader.frames()
    else:
        frames = _file_frames(source, decoder)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, _PIPE_WIDTH)
    number = 0
    try:
        with contextlib.closing(frames):
            for frame in frames:
                number += 1
                if as_json:
                    click.echo(json.dumps(frame_to_json(frame), ensure_ascii=False))
                else:
                    console.print(render_frame(frame, number))
                    sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except KeyboardInterrupt:  # a live line ends with Ctrl-C: show the counters first
        _print_stats(reader.stats if reader else decoder.stats, console, as_json=as_json)
        raise
    _print_stats(reader.stats if reader else decoder.stats, console, as_json=as_json)


def _print_stats(stats: DecoderStats, console: Console, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"stats": stats.as_dict()}), err=True)
        return
    with contextlib.suppress(BrokenPipeError):
        console.print(_stats_table(stats))


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# ---------------------------------------------------------------------- simulate


def pace(
    chunks: Iterable[tuple[bytes, float]],
    write: Callable[[bytes], object],
    *,
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Write each ``(data, line_seconds)`` chunk when the line would have sent it.

    Chunk *n* is written once ``sum(line_seconds[:n]) / speed`` wall seconds have passed
    (``speed`` 0: at once). Sleeping catches up with the line, never ahead of it, so the
    average rate stays exact. Returns the number of bytes written.
    """
    start = clock()
    elapsed_line_s = 0.0
    written = 0
    for data, seconds in chunks:
        if speed > 0:
            delay = start + elapsed_line_s / speed - clock()
            if delay > 0:
                sleep(delay)
        write(data)
        written += len(data)
        elapsed_line_s += seconds
    return written


def _line_chunks(
    frames: Iterable[bytes], mode: Mode, *, split: bool
) -> Iterator[tuple[bytes, float]]:
    """Cut each frame into small writes, each with its time on the line."""
    for data in frames:
        pieces = (
            [data[i : i + _WRITE_CHUNK] for i in range(0, len(data), _WRITE_CHUNK)]
            if split
            else [data]
        )
        for i, piece in enumerate(pieces):
            gap = _FRAME_GAP_S if i == len(pieces) - 1 else 0.0
            yield piece, line_seconds(len(piece), mode) + gap


class _PtySink:
    """The master side of a new pty: a reader opens the slave path printed on stderr."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing before a reader configures it
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.dropped = 0

    def write(self, data: bytes) -> None:
        # Like a real line: what nobody reads in time is lost, the meter never waits.
        try:
            sent = os.write(self.master, data)
        except BlockingIOError:
            sent = 0
        self.dropped += len(data) - sent

    def close(self) -> None:
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _writer(stream: IO[bytes]) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write


def _parse_start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(tz=PARIS).replace(microsecond=0)
    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--start: not an ISO 8601 date and time: {text!r}") from exc
    return start if start.tzinfo else start.replace(tzinfo=PARIS)


@tic.command()
@click.option(
    "--mode",
    type=click.Choice(["historique", "standard"]),
    default="historique",
    show_default=True,
)
@click.option("--phases", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option(
    "--tariff",
    type=click.Choice([t.value for t in Tariff], case_sensitive=False),
    default="HC",
    show_default=True,
)
@click.option("--producer", is_flag=True, help="Add solar production (standard mode groups).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same meter.")
@click.option("--start", default=None, help="Simulated start, ISO 8601 (naive: Paris time).")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Multiple of the line rate; 0 writes as fast as possible.",
)
@click.option("--frames", "count", type=click.IntRange(min=1), default=None)
@click.option("--seconds", type=click.FloatRange(min=0), default=None, help="Simulated duration.")
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Line faults per byte (bit flips, lost CR/LF, garbage, EOT).",
)
@click.option(
    "--overload",
    "overload_after",
    type=click.FloatRange(min=0),
    default=None,
    help="Start a 2-minute overload on phase 1 this many simulated seconds in.",
)
@click.option("--output", "-o", default="-", show_default=True, help="File path, or - (stdout).")
@click.option("--pty", "use_pty", is_flag=True, help="Write to a new pty; its path goes to stderr.")
def simulate(
    *,
    mode: str,
    phases: str,
    tariff: str,
    producer: bool,
    seed: int,
    start: str | None,
    speed: float,
    count: int | None,
    seconds: float | None,
    noise: float,
    overload_after: float | None,
    output: str,
    use_pty: bool,
) -> None:
    """Write the live TIC stream of a simulated meter, paced at the line rate.

    1200 baud (historique) or 9600 baud (standard), 10 bits a character, divided by
    --speed. Runs until --frames or --seconds (simulated) are reached, or Ctrl-C.
    """
    if count is not None and seconds is not None:
        raise UsageError("give --frames or --seconds, not both")
    if use_pty and output != "-":
        raise UsageError("give --pty or --output, not both")
    begin = _parse_start(start)
    overloads: tuple[OverloadEpisode, ...] = ()
    if overload_after is not None:
        at = begin + timedelta(seconds=overload_after)
        overloads = (OverloadEpisode(at, timedelta(minutes=2), phase=1, extra_power_va=9000),)
    sim = TicMeterSimulator(
        start=begin,
        seed=seed,
        mode=Mode(mode),
        phases=int(phases),
        tariff=tariff,
        producer=producer,
        overloads=overloads,
    )
    until = None if seconds is None else begin + timedelta(seconds=seconds)
    rng = random.Random(seed)  # noqa: S311 - line noise, not cryptography
    stream = (
        add_noise(tf.data, rate=noise, rng=rng) for tf in sim.frames(count=count, until=until)
    )
    chunks = _line_chunks(stream, sim.profile.mode, split=speed > 0)
    if use_pty:
        sink = _PtySink()
        click.echo(f"wesh: simulated {mode} meter on {sink.path} (Ctrl-C to stop)", err=True)
        try:
            pace(chunks, sink.write, speed=speed)
        finally:
            sink.close()
        return
    if output == "-":
        try:
            pace(chunks, _writer(sys.stdout.buffer), speed=speed)
        except BrokenPipeError:
            _silence_stdout()
        return
    try:
        with open(output, "wb") as file:
            pace(chunks, _writer(file), speed=speed)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------- demo


@tic.command("demo")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop after this many seconds (default 15).",
)
@click.option("--lang", type=click.Choice(["fr", "en"]), help="Language (default from LANG).")
def demo_command(seconds: float | None, lang: str | None) -> None:
    """Decode four simulated meters live (both modes, single- and three-phase).

    On a terminal the tables are redrawn as frames arrive; otherwise the tables are
    printed once, at the end.
    """
    from wesh.tic.demo import run_demo  # noqa: PLC0415 - Rich Live only when asked for

    if lang is None:
        lang = "en" if os.environ.get("LANG", "").lower().startswith("en") else "fr"
    run_demo(seconds=seconds, lang=lang)
