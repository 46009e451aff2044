"""HTTP commands of a WES server, as pure request builders (no I/O).

Each builder validates its arguments and returns a :class:`Command`: the path and the
query of one GET request, plus whether it may be retried safely. The client
(:mod:`wesh.wes.client`) sends them; the simulator may use the same table to decode them.

Known URLs (``docs/wes-client.md`` and ``wes.md`` §3)::

    RL.cgi?rl<n>=ON|OFF       relay n on/off   (n = 1, 2; 9 = both; 1-Wire 101..198)
    RL.cgi?frl=<n>            toggle relay n
    AJAX.cgx?vs<n>=ON|OFF     virtual switch n on/off (n = 1..24)
    AJAX.cgx?fvs=<n>          toggle virtual switch n
    AJAX.cgx?reset=yes        reboot; the box drops the connection

The counter-reset URL is **our choice**: nothing public documents one. It lives in
:data:`RESET_COUNTER_PATH` and :data:`RESET_COUNTER_PARAMS` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wesh.errors import UsageError

__all__ = [
    "MAX_SWITCH",
    "RELAY_PATH",
    "RESET_COUNTER_PARAMS",
    "RESET_COUNTER_PATH",
    "SWITCH_PATH",
    "Command",
    "CounterKind",
    "reboot_command",
    "relay_command",
    "reset_counter_command",
    "switch_command",
    "toggle_relay_command",
    "toggle_switch_command",
    "validate_relay",
]

RELAY_PATH = "/RL.cgi"
"""Relay commands (S1/S2 use ``RL.cgi``; ``RL.cgx`` and ``AJAX.cgx`` also work on real boxes)."""

SWITCH_PATH = "/AJAX.cgx"
"""Virtual switch commands and reboot."""

MAX_SWITCH = 24
"""Highest virtual switch number on recent firmware."""

RESET_COUNTER_PATH = "/AJAX.cgx"
"""Counter reset: OUR CHOICE, no public source documents this command."""

CounterKind = Literal["pulse", "clamp"]

RESET_COUNTER_PARAMS: dict[CounterKind, str] = {"pulse": "razpls", "clamp": "razpce"}
"""Query parameter per counter kind: ``AJAX.cgx?razpls=<n>`` (pulse), ``?razpce=<n>`` (clamp).

OUR CHOICE ("RAZ" = *remise à zéro*); see ``docs/wes-client.md``.
"""

_MAX_COUNTER: dict[CounterKind, int] = {"pulse": 6, "clamp": 4}


@dataclass(frozen=True, slots=True)
class Command:
    """One GET request to send to a WES.

    Attributes:
        path: absolute path on the box (``"/RL.cgi"``).
        query: query parameters, in order.
        idempotent: sending it twice has the same effect as once (safe to retry).
        drops_connection: the box is expected to drop the connection (reboot).
    """

    path: str
    query: tuple[tuple[str, str], ...]
    idempotent: bool
    drops_connection: bool = False

    @property
    def target(self) -> str:
        """The request target, ``path?k=v&k=v`` (values are plain ASCII tokens)."""
        return self.path + "?" + "&".join(f"{key}={value}" for key, value in self.query)


def validate_relay(n: int) -> int:
    """Return ``n`` if it names a relay the WES knows, else raise :class:`UsageError`.

    Valid: 1 and 2 (internal relays), 9 (both internal relays), and 1-Wire relays
    ``1<k><r>`` = 101..198 where k = card - 1 (0..9) and r = relay 1..8, or 9 for the
    whole card (``119`` = all relays of card 2).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise UsageError(f"relay number must be an integer, not {n!r}", channel=str(n))
    if n in (1, 2, 9):
        return n
    if 101 <= n <= 199 and n % 10 != 0:
        return n
    raise UsageError(
        f"no relay {n}: use 1, 2, 9 (both) or a 1-Wire relay 101..199 (last digit 1-9)",
        channel=str(n),
    )


def _validate_switch(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SWITCH:
        raise UsageError(f"no virtual switch {n!r}: use 1..{MAX_SWITCH}", channel=str(n))
    return n


def _on_off(on: bool) -> str:
    return "ON" if on else "OFF"


def relay_command(n: int, on: bool) -> Command:
    """Switch relay ``n`` on or off: ``RL.cgi?rl<n>=ON|OFF``."""
    validate_relay(n)
    return Command(RELAY_PATH, ((f"rl{n}", _on_off(on)),), idempotent=True)


def toggle_relay_command(n: int) -> Command:
    """Toggle relay ``n``: ``RL.cgi?frl=<n>`` (not idempotent: never retried)."""
    validate_relay(n)
    return Command(RELAY_PATH, (("frl", str(n)),), idempotent=False)


def switch_command(n: int, on: bool) -> Command:
    """Set virtual switch ``n`` on or off: ``AJAX.cgx?vs<n>=ON|OFF``."""
    _validate_switch(n)
    return Command(SWITCH_PATH, ((f"vs{n}", _on_off(on)),), idempotent=True)


def toggle_switch_command(n: int) -> Command:
    """Toggle virtual switch ``n``: ``AJAX.cgx?fvs=<n>`` (never retried)."""
    _validate_switch(n)
    return Command(SWITCH_PATH, (("fvs", str(n)),), idempotent=False)


def reset_counter_command(n: int, *, kind: CounterKind = "pulse") -> Command:
    """Reset the index of pulse counter or clamp ``n`` (OUR CHOICE of URL, see module doc)."""
    if kind not in RESET_COUNTER_PARAMS:
        raise UsageError(f"unknown counter kind {kind!r}: use 'pulse' or 'clamp'")
    top = _MAX_COUNTER[kind]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
        raise UsageError(f"no {kind} counter {n!r}: use 1..{top}", channel=str(n))
    return Command(RESET_COUNTER_PATH, ((RESET_COUNTER_PARAMS[kind], str(n)),), idempotent=False)


def reboot_command() -> Command:
    """Reboot the box: ``AJAX.cgx?reset=yes``; the box drops the connection."""
    return Command(SWITCH_PATH, (("reset", "yes"),), idempotent=False, drops_connection=True)
