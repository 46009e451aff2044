"""Shared test configuration."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Undo what a command run in-process did to the root logger.

    ``weshd``, ``wesh sim`` and ``wesh sync`` call ``logging.basicConfig`` as programs
    should; under ``CliRunner`` the stream they attach to is closed after the command,
    and later tests would print "--- Logging error ---" into their own captured output.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
