"""``wesh wes``: talk to one WES server."""

from __future__ import annotations

import click

__all__ = ["wes"]


@click.group()
def wes() -> None:
    """Cartelectronic WES servers: read a snapshot, parse a saved data.cgx, switch a relay."""
