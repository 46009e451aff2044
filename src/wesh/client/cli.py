"""``weshclient``: the command-line client of weshd.

Commands: ``ls``, ``get``, ``watch``, ``history``, ``relay``, ``switch``, ``interval``,
``clock``, ``events``, ``health``; ``--json`` on each of them (or once before the
command) prints the API's JSON instead of text. Where weshd is: ``--socket``
(``WESH_SOCKET``, default ``/run/wesh/weshd.sock``) or ``--url`` with ``--token``
(``WESH_URL``, ``WESH_TOKEN``).
The environment is read here only.

The interface speaks French, or English with ``--lang en`` or a ``LANG`` starting with
``en``; every user-facing string is in :data:`MESSAGES`. Values are printed with their
unit and age, e.g. ``230 V (il y a 12 s)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

import click
from pydantic import BaseModel
from rich.console import Console
from rich.live import Live
from rich.table import Table

from wesh.client.api import DEFAULT_SOCKET, BoxClock, PollInterval, WeshClient
from wesh.errors import TransientError, UsageError, WeshError
from wesh.gateway.schema import (
    BoxInfo,
    BoxRuntimeStatus,
    CommandAction,
    CommandResult,
    EventInfo,
    Health,
    Scalar,
    Value,
)

__all__ = ["MESSAGES", "format_age", "format_value", "main", "parse_when", "weshclient"]

Lang = Literal["fr", "en"]

MESSAGES: dict[str, dict[Lang, str]] = {
    "ago": {"fr": "il y a {age}", "en": "{age} ago"},
    "unit.s": {"fr": "{n} s", "en": "{n} s"},
    "unit.min": {"fr": "{n} min", "en": "{n} min"},
    "unit.h": {"fr": "{n} h", "en": "{n} h"},
    "unit.d": {"fr": "{n} j", "en": "{n} d"},
    "never": {"fr": "jamais", "en": "never"},
    "on": {"fr": "marche", "en": "on"},
    "off": {"fr": "arrêt", "en": "off"},
    "toggle": {"fr": "inversé", "en": "toggled"},
    "yes": {"fr": "oui", "en": "yes"},
    "no": {"fr": "non", "en": "no"},
    "state.up": {"fr": "en ligne", "en": "up"},
    "state.down": {"fr": "hors ligne", "en": "down"},
    "state.unknown": {"fr": "pas encore interrogé", "en": "not polled yet"},
    "state.disabled": {"fr": "désactivé", "en": "disabled"},
    "quality.estimated": {"fr": "estimé", "en": "estimated"},
    "quality.suspect": {"fr": "douteux", "en": "suspect"},
    "col.box": {"fr": "boîtier", "en": "box"},
    "col.serves": {"fr": "dessert", "en": "serves"},
    "col.label": {"fr": "libellé", "en": "label"},
    "col.driver": {"fr": "pilote", "en": "driver"},
    "col.address": {"fr": "adresse", "en": "address"},
    "col.state": {"fr": "état", "en": "state"},
    "col.last_ok": {"fr": "dernier relevé", "en": "last reading"},
    "col.failures": {"fr": "échecs", "en": "failures"},
    "col.error": {"fr": "dernière erreur", "en": "last error"},
    "col.path": {"fr": "chemin", "en": "path"},
    "col.meaning": {"fr": "nature", "en": "meaning"},
    "col.value": {"fr": "valeur", "en": "value"},
    "col.age": {"fr": "âge", "en": "age"},
    "col.at": {"fr": "date", "en": "time"},
    "col.quality": {"fr": "qualité", "en": "quality"},
    "col.severity": {"fr": "gravité", "en": "severity"},
    "col.kind": {"fr": "type", "en": "kind"},
    "col.message": {"fr": "message", "en": "message"},
    "col.configured": {"fr": "configuré", "en": "configured"},
    "title.boxes": {"fr": "Boîtiers du site", "en": "Boxes of the site"},
    "title.channels": {"fr": "Voies de {box}", "en": "Channels of {box}"},
    "title.watch": {
        "fr": "Dernières valeurs ({now}, toutes les {interval} s)",
        "en": "Latest values ({now}, every {interval} s)",
    },
    "title.history": {"fr": "Historique de {channel}", "en": "History of {channel}"},
    "title.events": {"fr": "Événements", "en": "Events"},
    "none.boxes": {"fr": "Aucun boîtier configuré.", "en": "No box configured."},
    "none.values": {"fr": "Aucune valeur.", "en": "No values."},
    "none.events": {"fr": "Aucun événement.", "en": "No events."},
    "none.history": {
        "fr": "Aucune valeur entre {since} et {until}.",
        "en": "No values between {since} and {until}.",
    },
    "command.done": {
        "fr": "{kind} {number} de {box} : {action}",
        "en": "{kind} {number} of {box}: {action}",
    },
    "kind.relay": {"fr": "Relais", "en": "Relay"},
    "kind.switch": {"fr": "Interrupteur virtuel", "en": "Virtual switch"},
    "health.ok": {"fr": "weshd ({site}) : OK", "en": "weshd ({site}): OK"},
    "health.degraded": {"fr": "weshd ({site}) : DÉGRADÉ", "en": "weshd ({site}): DEGRADED"},
    "health.boxes": {
        "fr": "boîtiers : {up} en ligne, {down} hors ligne, {unknown} pas encore interrogés",
        "en": "boxes: {up} up, {down} down, {unknown} not polled yet",
    },
    "health.queue": {
        "fr": "relevés en attente d'envoi au siège : {queue}",
        "en": "readings waiting for headquarters: {queue}",
    },
    "interval.show": {
        "fr": "Intervalle d'interrogation de {box} : {effective} s (configuré : {configured} s)",
        "en": "Poll interval of {box}: {effective} s (configured: {configured} s)",
    },
    "interval.override": {
        "fr": "modifié jusqu'au prochain redémarrage de weshd",
        "en": "changed until weshd restarts",
    },
    "clock.box": {
        "fr": "Horloge de {box} : {box_time} (relevée le {read_at}, écart {offset} s)",
        "en": "Clock of {box}: {box_time} (read at {read_at}, offset {offset} s)",
    },
    "clock.unknown": {
        "fr": "Horloge de {box} : inconnue (aucun relevé daté par le boîtier)",
        "en": "Clock of {box}: unknown (no reading dated by the box)",
    },
    "clock.settable": {
        "fr": "réglable par weshd : {answer}",
        "en": "settable by weshd: {answer}",
    },
    "clock.set": {"fr": "Horloge de {box} réglée.", "en": "Clock of {box} set."},
    "watch.error": {"fr": "erreur : {error}", "en": "error: {error}"},
    "error": {"fr": "weshclient : erreur : {error}", "en": "weshclient: error: {error}"},
    "bad_when": {
        "fr": "date invalide {text!r} : ISO-8601 (2024-01-31T12:00+01:00) ou durée (2h, 30min, 7d)",
        "en": "bad time {text!r}: ISO-8601 (2024-01-31T12:00+01:00) or a duration (2h, 30min, 7d)",
    },
}


def message(lang: Lang, key: str, **values: object) -> str:
    """Return the catalogue string ``key`` in ``lang``, formatted with ``values``."""
    return MESSAGES[key][lang].format(**values)


def pick_lang(option: str | None, env_lang: str | None) -> Lang:
    """``--lang`` if given, else English when ``LANG`` starts with ``en``, else French."""
    if option in ("fr", "en"):
        return cast("Lang", option)
    return "en" if (env_lang or "").lower().startswith("en") else "fr"


# ----------------------------------------------------------------------------- pure formatting


def format_number(value: float, lang: Lang) -> str:
    """At most 10 significant digits, no float noise; a decimal comma in French."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        text = str(int(value))
    else:
        text = format(value, ".10g")
    return text.replace(".", ",") if lang == "fr" else text


def format_value(value: Scalar, unit: str | None, lang: Lang) -> str:
    """``230 V``, ``12,5 °C``, ``marche``, or the text itself."""
    if isinstance(value, bool):
        return message(lang, "on" if value else "off")
    text = format_number(value, lang) if isinstance(value, int | float) else value
    return f"{text} {unit}" if unit else text


def format_age(age_s: float, lang: Lang) -> str:
    """``12 s``, ``5 min``, ``3 h``, ``2 j`` (rounded down)."""
    seconds = max(0, int(age_s))
    for limit, size, key in ((60, 1, "unit.s"), (3600, 60, "unit.min"), (86400, 3600, "unit.h")):
        if seconds < limit:
            return message(lang, key, n=seconds // size)
    return message(lang, "unit.d", n=seconds // 86400)


def format_reading(value: Value, lang: Lang) -> str:
    """``230 V (il y a 12 s)``, with the quality when it is not ``measured``."""
    text = f"{format_value(value.value, value.unit, lang)} "
    text += f"({message(lang, 'ago', age=format_age(value.age_s, lang))})"
    if value.quality != "measured":
        text += f" [{message(lang, 'quality.' + value.quality)}]"
    return text


def format_time(moment: datetime | None, lang: Lang) -> str:
    """Local wall-clock time, or ``jamais``/``never``."""
    if moment is None:
        return message(lang, "never")
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


_DURATION = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d|j|w)$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "j": 86400, "w": 604800}


def parse_when(text: str, now: datetime) -> datetime:
    """``now``, a duration back from ``now`` (``2h``, ``-30min``, ``7d``) or ISO-8601.

    A date or time without an offset is local time. Raises :class:`UsageError`.
    """
    text = text.strip()
    if text.lower() in {"now", "maintenant"}:
        return now
    match = _DURATION.match(text)
    if match:
        try:
            return now - timedelta(seconds=float(match[1]) * _UNIT_S[match[2].lower()])
        except OverflowError:
            raise UsageError(f"{text!r} goes back too far") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"bad time {text!r}") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _state_text(status: BoxRuntimeStatus | None, enabled: bool, lang: Lang) -> str:
    if not enabled:
        return message(lang, "state.disabled")
    if status is None or status.up is None:
        return message(lang, "state.unknown")
    return message(lang, "state.up" if status.up else "state.down")


# ----------------------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class _Settings:
    socket: str | None
    url: str | None
    token: str | None
    timeout_s: float
    json: bool
    lang: Lang

    def client(self) -> WeshClient:
        return WeshClient(
            socket=self.socket, url=self.url, token=self.token, timeout_s=self.timeout_s
        )


class _Failure(click.ClickException):
    """A WeshError, shown on one line in the user's language."""

    def __init__(self, text: str) -> None:
        super().__init__(text)

    def show(self, file: Any = None) -> None:  # noqa: ANN401 - click's signature
        click.echo(self.message, err=True)


_F = TypeVar("_F", bound=Callable[..., Any])


def _command(function: _F) -> _F:
    """Add ``--json`` and turn WeshError into a one-line localised message (exit 1)."""

    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:  # noqa: ANN401
        settings = click.get_current_context().find_object(_Settings)
        if settings is None:  # a command run without the group
            settings = _Settings(None, None, None, 10.0, json=False, lang="fr")
        if as_json:
            settings = dataclasses.replace(settings, json=True)
        try:
            return function(settings, *args, **kwargs)
        except WeshError as exc:
            raise _Failure(message(settings.lang, "error", error=exc)) from exc

    functools.update_wrapper(wrapper, function)
    wrapper = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")(wrapper)
    return cast("_F", wrapper)


def _echo_json(data: BaseModel | Sequence[BaseModel]) -> None:
    if isinstance(data, BaseModel):
        payload: object = data.model_dump(mode="json")
    else:
        payload = [item.model_dump(mode="json") for item in data]
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--socket",
    envvar="WESH_SOCKET",
    show_envvar=True,
    help=f"weshd's Unix socket [default: {DEFAULT_SOCKET}].",
)
@click.option("--url", envvar="WESH_URL", show_envvar=True, help="weshd's TCP API instead.")
@click.option("--token", envvar="WESH_TOKEN", show_envvar=True, help="Bearer token for --url.")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=10.0, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (every command).")
@click.option("--lang", type=click.Choice(["fr", "en"]), help="Language (default from LANG).")
@click.pass_context
def weshclient(
    ctx: click.Context,
    *,
    socket: str | None,
    url: str | None,
    token: str | None,
    timeout_s: float,
    as_json: bool,
    lang: str | None,
) -> None:
    """weshclient: read values, history and events from weshd; drive relays."""
    if socket and url:
        # an explicit option beats the environment; two explicit ones are a mistake
        env = click.core.ParameterSource.ENVIRONMENT
        if ctx.get_parameter_source("socket") == env:
            socket = None
        elif ctx.get_parameter_source("url") == env:
            url = None
        else:
            raise click.UsageError("give --socket or --url, not both")
    ctx.obj = _Settings(
        socket=socket,
        url=url,
        token=token,
        timeout_s=timeout_s,
        json=as_json,
        lang=pick_lang(lang, os.environ.get("LANG")),
    )


@weshclient.command("ls")
@click.argument("box", required=False)
@_command
def ls_command(settings: _Settings, box: str | None) -> None:
    """List the boxes, or the channels of BOX with their last values."""
    lang = settings.lang
    with settings.client() as client:
        if box is None:
            boxes = client.boxes()
            if settings.json:
                _echo_json(boxes)
            else:
                _print_boxes(boxes, lang)
            return
        channels = client.channels(box)
        values = {v.path: v for v in client.latest(box)}
    if settings.json:
        _echo_json(channels)
        return
    table = Table(title=message(lang, "title.channels", box=box))
    for key in ("col.path", "col.label", "col.meaning", "col.value", "col.configured"):
        table.add_column(message(lang, key))
    for channel in channels:
        value = values.get(channel.path)
        table.add_row(
            channel.path,
            channel.label or "",
            channel.meaning or "",
            format_reading(value, lang) if value is not None else "—",
            message(lang, "yes" if channel.configured else "no"),
        )
    _console().print(table)


def _print_boxes(boxes: Sequence[BoxInfo], lang: Lang) -> None:
    if not boxes:
        click.echo(message(lang, "none.boxes"))
        return
    table = Table(title=message(lang, "title.boxes"))
    for key in (
        "col.box",
        "col.serves",
        "col.driver",
        "col.address",
        "col.state",
        "col.last_ok",
        "col.failures",
        "col.error",
    ):
        table.add_column(message(lang, key))
    for box in boxes:
        status = box.status
        table.add_row(
            box.id if not box.label else f"{box.id} ({box.label})",
            box.serves,
            box.driver,
            box.address or "",
            _state_text(status, box.enabled, lang),
            format_time(status.last_ok if status else None, lang),
            str(status.consecutive_failures) if status else "",
            (status.last_error or "") if status else "",
        )
    _console().print(table)


@weshclient.command("get")
@click.argument("box")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@_command
def get_command(settings: _Settings, box: str, paths: tuple[str, ...]) -> None:
    """Print the last value of PATH on BOX with unit and age (e.g. get dw-12 pince.1.voltage)."""
    with settings.client() as client:
        values = [client.value(box, path) for path in paths]
    if settings.json:
        _echo_json(values[0] if len(values) == 1 else values)
    elif len(values) == 1:
        click.echo(format_reading(values[0], settings.lang))
    else:
        for value in values:
            click.echo(f"{value.path}: {format_reading(value, settings.lang)}")


def _values_table(values: Sequence[Value], lang: Lang, title: str) -> Table:
    table = Table(title=title)
    for key in ("col.box", "col.path", "col.label", "col.value", "col.age", "col.quality"):
        table.add_column(message(lang, key))
    for value in values:
        quality = "" if value.quality == "measured" else message(lang, "quality." + value.quality)
        table.add_row(
            value.box,
            value.path,
            value.label or "",
            format_value(value.value, value.unit, lang),
            format_age(value.age_s, lang),
            quality,
        )
    return table


@weshclient.command("watch")
@click.argument("box", required=False)
@click.argument("paths", metavar="[PATH]...", nargs=-1)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print once and stop.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many refreshes.")
@_command
def watch_command(
    settings: _Settings,
    *,
    box: str | None,
    paths: tuple[str, ...],
    interval_s: float,
    once: bool,
    count: int | None,
) -> None:
    """Show the latest values (of BOX, of some PATHs), refreshed every --interval seconds."""
    lang = settings.lang
    wanted = set(paths)
    if once:
        count = 1

    def fetch(client: WeshClient) -> list[Value]:
        values = client.latest(box)
        return [v for v in values if not wanted or v.path in wanted]

    def title() -> str:
        now = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
        return message(lang, "title.watch", now=now, interval=format_number(interval_s, lang))

    with settings.client() as client:
        if count == 1:
            values = fetch(client)
            if settings.json:
                _echo_json(values)
            else:
                _console().print(_values_table(values, lang, title()))
            return
        _watch_loop(settings, client, fetch=fetch, title=title, interval_s=interval_s, count=count)


def _watch_loop(
    settings: _Settings,
    client: WeshClient,
    *,
    fetch: Callable[[WeshClient], list[Value]],
    title: Callable[[], str],
    interval_s: float,
    count: int | None,
) -> None:
    lang = settings.lang
    console = _console()
    # a live table on a terminal; otherwise one JSON line or one table per refresh
    live = (
        Live(console=console, auto_refresh=False)
        if console.is_terminal and not settings.json
        else None
    )

    def show(values: list[Value] | None, error: str | None) -> None:
        if error is not None:
            if live is None:
                click.echo(error, err=True)
            else:
                live.update(f"{title()}\n{error}", refresh=True)
        elif settings.json:
            click.echo(json.dumps([v.model_dump(mode="json") for v in values or []]))
        elif live is None:
            console.print(_values_table(values or [], lang, title()))
        else:
            live.update(_values_table(values or [], lang, title()), refresh=True)

    done = 0
    try:
        if live is not None:
            live.start()
        while count is None or done < count:
            if done:
                time.sleep(interval_s)
            done += 1
            try:
                show(fetch(client), None)
            except TransientError as exc:
                # keep watching: weshd may be restarting (a bad argument still stops)
                show(None, message(lang, "watch.error", error=exc))
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()


@weshclient.command("history")
@click.argument("box")
@click.argument("path")
@click.option("--since", default="24h", show_default=True, help="ISO-8601 or a duration ago.")
@click.option("--until", default="now", show_default=True, help="ISO-8601 or a duration ago.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=10_000, show_default=True, help="At most."
)
@_command
def history_command(
    settings: _Settings, *, box: str, path: str, since: str, until: str, limit: int
) -> None:
    """Print the values of PATH on BOX between --since and --until, oldest first."""
    lang = settings.lang
    now = datetime.now(UTC)
    try:
        start, end = parse_when(since, now), parse_when(until, now)
    except UsageError:
        bad = since if until == "now" else f"{since} / {until}"
        raise click.BadParameter(message(lang, "bad_when", text=bad)) from None
    with settings.client() as client:
        first = client.history(box, path, since=start, until=end, limit=min(limit, 10_000))
        points = list(first.points)
        cursor = first.next_since
        while cursor is not None and len(points) < limit:
            page = client.history(
                box, path, since=cursor, until=end, limit=min(limit - len(points), 10_000)
            )
            points.extend(page.points)
            cursor = page.next_since
    page = first.model_copy(update={"points": points[:limit], "next_since": cursor})
    if settings.json:
        _echo_json(page)
        return
    if not page.points:
        click.echo(
            message(
                lang,
                "none.history",
                since=format_time(page.since, lang),
                until=format_time(page.until, lang),
            )
        )
        return
    table = Table(title=message(lang, "title.history", channel=page.channel))
    for key in ("col.at", "col.value", "col.quality"):
        table.add_column(message(lang, key))
    for point in page.points:
        quality = "" if point.quality == "measured" else message(lang, "quality." + point.quality)
        table.add_row(
            format_time(point.at, lang), format_value(point.value, page.unit, lang), quality
        )
    _console().print(table)


def _command_output(settings: _Settings, result: CommandResult) -> None:
    if settings.json:
        _echo_json(result)
        return
    lang = settings.lang
    click.echo(
        message(
            lang,
            "command.done",
            kind=message(lang, "kind." + result.kind),
            number=result.number,
            box=result.box,
            action=message(lang, result.action),
        )
    )


_ACTION = click.Choice(["on", "off", "toggle"])


@weshclient.command("relay")
@click.argument("box")
@click.argument("number", type=click.IntRange(min=1))
@click.argument("action", type=_ACTION)
@_command
def relay_command(settings: _Settings, box: str, number: int, action: str) -> None:
    """Switch relay NUMBER of BOX on, off, or toggle it."""
    with settings.client() as client:
        result = client.relay(box, number, cast("CommandAction", action))
    _command_output(settings, result)


@weshclient.command("switch")
@click.argument("box")
@click.argument("number", type=click.IntRange(min=1))
@click.argument("action", type=_ACTION)
@_command
def switch_command(settings: _Settings, box: str, number: int, action: str) -> None:
    """Set virtual switch NUMBER of BOX on, off, or toggle it."""
    with settings.client() as client:
        result = client.switch(box, number, cast("CommandAction", action))
    _command_output(settings, result)


def _print_interval(found: PollInterval, lang: Lang) -> None:
    click.echo(
        message(
            lang,
            "interval.show",
            box=found.box,
            effective=format_number(found.effective_s, lang),
            configured=format_number(found.configured_s, lang),
        )
    )
    if found.override_s is not None:
        click.echo(message(lang, "interval.override"))


@weshclient.command("interval")
@click.argument("box")
@click.argument("seconds", required=False)
@_command
def interval_command(settings: _Settings, box: str, seconds: str | None) -> None:
    """Print the poll interval of BOX, or set it to SECONDS until weshd restarts.

    SECONDS is a number of seconds (1 to 86400), or "config" to go back to the
    configured interval.
    """
    wanted: float | None = None
    if seconds is not None and seconds != "config":
        try:
            wanted = float(seconds)
        except ValueError:
            raise click.BadParameter(f"{seconds!r}: seconds or 'config'") from None
    with settings.client() as client:
        if seconds is None:
            found = client.poll_interval(box)
        else:
            found = client.set_poll_interval(box, wanted)
    if settings.json:
        _echo_json(found)
        return
    _print_interval(found, settings.lang)


def _print_clock(found: BoxClock, lang: Lang) -> None:
    if found.box_time is None:
        click.echo(message(lang, "clock.unknown", box=found.box))
    else:
        click.echo(
            message(
                lang,
                "clock.box",
                box=found.box,
                box_time=format_time(found.box_time, lang),
                read_at=format_time(found.read_at, lang),
                offset=format_number(found.offset_s or 0.0, lang),
            )
        )
    answer = message(lang, "yes" if found.settable else "no")
    click.echo(message(lang, "clock.settable", answer=answer))


@weshclient.command("clock")
@click.argument("box")
@click.option("--set", "set_it", is_flag=True, help="Set the box's clock (to --at or now).")
@click.option("--at", help="The time to set (ISO-8601; default: the gateway's clock).")
@_command
def clock_command(settings: _Settings, box: str, set_it: bool, at: str | None) -> None:
    """Print the clock of BOX as last read; with --set, set it (when the box can)."""
    lang = settings.lang
    moment = None
    if at is not None:
        if not set_it:
            raise click.UsageError("--at goes with --set")
        try:
            moment = parse_when(at, datetime.now(UTC))
        except UsageError:
            raise click.BadParameter(message(lang, "bad_when", text=at)) from None
    with settings.client() as client:
        found = client.set_clock(box, moment) if set_it else client.clock(box)
    if settings.json:
        _echo_json(found)
        return
    if set_it:
        click.echo(message(lang, "clock.set", box=box))
    _print_clock(found, lang)


@weshclient.command("events")
@click.option("--box", help="Only the events of this box.")
@click.option("--since", help="ISO-8601 or a duration ago (e.g. 24h).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@_command
def events_command(settings: _Settings, box: str | None, since: str | None, limit: int) -> None:
    """Print the gateway's events (boxes down and up, counter resets, commands…)."""
    lang = settings.lang
    start = None
    if since is not None:
        try:
            start = parse_when(since, datetime.now(UTC))
        except UsageError:
            raise click.BadParameter(message(lang, "bad_when", text=since)) from None
    with settings.client() as client:
        events = client.events(since=start, box=box, limit=limit)
    if settings.json:
        _echo_json(events)
        return
    _print_events(events, lang)


def _print_events(events: Sequence[EventInfo], lang: Lang) -> None:
    if not events:
        click.echo(message(lang, "none.events"))
        return
    table = Table(title=message(lang, "title.events"))
    for key in ("col.at", "col.severity", "col.box", "col.kind", "col.message"):
        table.add_column(message(lang, key))
    for event in events:
        table.add_row(
            format_time(event.at, lang), event.severity, event.box or "", event.kind, event.message
        )
    _console().print(table)


@weshclient.command("health")
@_command
def health_command(settings: _Settings) -> None:
    """Print weshd's health; exit status 1 when degraded."""
    with settings.client() as client:
        health = client.health()
    if settings.json:
        _echo_json(health)
    else:
        _print_health(health, settings.lang)
    if health.status != "ok":
        raise SystemExit(1)


def _print_health(health: Health, lang: Lang) -> None:
    click.echo(message(lang, f"health.{health.status}", site=health.site))
    click.echo(
        message(
            lang,
            "health.boxes",
            up=health.boxes_up,
            down=health.boxes_down,
            unknown=health.boxes_unknown,
        )
    )
    click.echo(message(lang, "health.queue", queue=health.queue_depth))
    for reason in health.reasons:
        click.echo(f"- {reason}")


def main(args: Sequence[str] | None = None) -> None:
    """Run ``weshclient`` (exit status 0, 1 on error or degraded health, 2 on bad usage)."""
    weshclient.main(args=list(args) if args is not None else None, prog_name="weshclient")
