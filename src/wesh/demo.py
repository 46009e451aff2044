"""``make demo``: the furthest-along chain, on simulated devices."""

from __future__ import annotations

__all__ = ["run_demo"]


def run_demo(*, seconds: float | None = None) -> None:
    """Run the demo until interrupted, or for ``seconds``."""
    raise NotImplementedError
