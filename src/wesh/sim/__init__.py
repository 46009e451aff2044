"""Simulators: WES servers (HTTP, FTP, M2M) with realistic consumption and faults.

Run a farm of boxes on loopback (``docs/sim.md``)::

    from wesh.sim import run_simulators

    async with run_simulators(count=3, base_port=18080, seed=1, speed=60) as farm:
        farm.boxes[0].url            # "http://127.0.0.1:18080"
        farm.boxes[0].state          # BoxState: what the box measures now
        farm.boxes[1].set_fault("latency=2")

The pure model (:class:`SimulatedBox`, no I/O) can be used alone. Names are loaded on
first use, so that importing :mod:`wesh.sim` (the ``wesh`` command does) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wesh.sim.box import SimulatedBox, make_identity
    from wesh.sim.clock import ManualClock, SimClock
    from wesh.sim.device import Credentials, VirtualBox
    from wesh.sim.farm import Endpoint, FarmBox, FarmConfig, SimFarm, run_simulators
    from wesh.sim.faults import Fault, FaultKind, FaultSpec
    from wesh.sim.model import BoxIdentity, BoxKind, BoxState, Hardware

__all__ = [
    "BoxIdentity",
    "BoxKind",
    "BoxState",
    "Credentials",
    "Endpoint",
    "FarmBox",
    "FarmConfig",
    "Fault",
    "FaultKind",
    "FaultSpec",
    "Hardware",
    "ManualClock",
    "SimClock",
    "SimFarm",
    "SimulatedBox",
    "VirtualBox",
    "make_identity",
    "run_simulators",
]

_HOME = {
    "SimulatedBox": "box",
    "make_identity": "box",
    "ManualClock": "clock",
    "SimClock": "clock",
    "Credentials": "device",
    "VirtualBox": "device",
    "Endpoint": "farm",
    "FarmBox": "farm",
    "FarmConfig": "farm",
    "SimFarm": "farm",
    "run_simulators": "farm",
    "Fault": "faults",
    "FaultKind": "faults",
    "FaultSpec": "faults",
    "BoxIdentity": "model",
    "BoxKind": "model",
    "BoxState": "model",
    "Hardware": "model",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'wesh.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wesh.sim.{module}"), name)
