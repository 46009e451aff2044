"""``wesh tic``: decode and simulate Téléinfo streams."""

from __future__ import annotations

import click

__all__ = ["tic"]


@click.group()
def tic() -> None:
    """Enedis Téléinfo (TIC): decode a stream, simulate a meter."""
