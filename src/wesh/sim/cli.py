"""``wesh sim``: run simulated devices."""

from __future__ import annotations

import click

__all__ = ["sim"]


@click.group()
def sim() -> None:
    """Run simulated devices (WES servers) on loopback."""
