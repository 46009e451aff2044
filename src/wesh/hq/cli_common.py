"""Plumbing shared by ``wesh hq`` and ``wesh hq alerts``: language, errors, database, output.

Both command groups speak French or English (:func:`pick_lang`), show a
:class:`~wesh.errors.WeshError` as one line in that language (:class:`Failure`,
:func:`common_options`), open the HQ database from ``--db`` (:func:`open_engine`) and print
JSON (:func:`dump_json`) or Rich tables (:func:`new_console`). Each group keeps its own
message catalogue; this module has none, and imports neither group.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

import click

from wesh.errors import WeshError

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

__all__ = [
    "CommandDecorator",
    "Failure",
    "Lang",
    "common_options",
    "dump_json",
    "new_console",
    "open_engine",
    "pick_lang",
    "stdout_is_terminal",
]

Lang = Literal["fr", "en"]

F = TypeVar("F", bound=Callable[..., None])


def pick_lang(option: str | None, env_lang: str | None) -> Lang:
    """``--lang`` if given, else English when ``LANG`` starts with ``en``, else French."""
    if option in ("fr", "en"):
        return cast("Lang", option)
    return "en" if (env_lang or "").lower().startswith("en") else "fr"


class CommandDecorator(Protocol):
    """What :func:`common_options` returns: a decorator keeping the command's type."""

    def __call__(self, func: F, /) -> F:
        """Return ``func`` with the common options."""
        ...


class Failure(click.ClickException):
    """A WeshError, shown on one line in the user's language (exit status 1)."""

    def show(self, file: Any = None) -> None:  # noqa: ANN401 - click's signature
        """Print the message alone on standard error (no ``Error:`` prefix)."""
        click.echo(self.message, err=True)


def common_options(
    error_line: Callable[[Lang, WeshError], str],
    *,
    extra: Sequence[Callable[[Any], Any]] = (),
) -> CommandDecorator:
    """Return a decorator adding ``--db``, the ``extra`` options and ``--lang`` to a command.

    The command receives ``lang`` already picked (:func:`pick_lang`, ``LANG`` read here);
    a :class:`WeshError` it raises becomes ``error_line(lang, exc)`` on standard error
    and exit status 1.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> None:  # noqa: ANN401
            lang = pick_lang(kwargs.get("lang"), os.environ.get("LANG"))
            kwargs["lang"] = lang
            try:
                func(*args, **kwargs)
            except WeshError as exc:
                raise Failure(error_line(lang, exc)) from exc

        decorated: Any = click.option(
            "--lang", type=click.Choice(["fr", "en"]), help="Language (default from LANG)."
        )(wrapper)
        for option in extra:
            decorated = option(decorated)
        decorated = click.option(
            "--db",
            envvar="WESH_HQ_DB",
            show_envvar=True,
            default=None,
            help="Database URL or SQLite path (default ./wesh-hq.sqlite3).",
        )(decorated)
        return cast("F", decorated)

    return decorate


def open_engine(db: str | None) -> Engine:
    """Return an engine on the HQ database ``--db`` names (the caller disposes of it)."""
    from wesh.hq.db import make_engine  # noqa: PLC0415 - keep `wesh` start-up light

    return make_engine(db)


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, frozenset | set | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump_json(data: object) -> str:
    """Return ``data`` as indented JSON (dates in ISO 8601, dataclasses as objects)."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)


def stdout_is_terminal() -> bool:
    """Return whether standard output is a terminal."""
    return sys.stdout.isatty()


def new_console(*, highlight: bool = True) -> Console:
    """Return a console as wide as the terminal, or wide enough not to wrap when redirected."""
    from rich.console import Console  # noqa: PLC0415

    return Console(width=None if stdout_is_terminal() else 200, highlight=highlight)
