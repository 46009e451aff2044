"""Counter-based randomness for the simulator: the same keys always give the same draw.

Consumption models must not depend on how often they are asked for their state, so
they draw from a hash of ``(seed, box, channel, time slot)`` instead of from a
sequential generator. :func:`mix` is splitmix64 folded over the keys.
"""

from __future__ import annotations

import random

__all__ = ["mix", "rng_for", "uniform"]

_MASK64 = (1 << 64) - 1


def mix(*keys: int) -> int:
    """Return a 64-bit hash of integer keys (splitmix64 rounds, one per key)."""
    x = 0x9E3779B97F4A7C15
    for key in keys:
        x = ((x ^ (key & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        x ^= x >> 30
        x = (x * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x


def uniform(*keys: int) -> float:
    """Return a deterministic float in ``[0, 1)`` for the keys."""
    return mix(*keys) / (1 << 64)


def rng_for(*keys: int) -> random.Random:
    """Return a sequential generator seeded from the keys (for plans drawn once a day)."""
    return random.Random(mix(*keys))  # noqa: S311 - simulation, not cryptography
