"""Drivers: one module per kind of server weshd can read (``wes``, ``tic``).

See :mod:`wesh.gateway.drivers.base` for the interface and how to add a kind.
"""

from wesh.gateway.drivers.base import Clock, Command, Driver, PollResult, make_driver

__all__ = ["Clock", "Command", "Driver", "PollResult", "make_driver"]
