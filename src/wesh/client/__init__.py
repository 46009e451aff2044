"""libwesh: the Python client of weshd (sync and async) and the ``weshclient`` command.

Example::

    from wesh.client import WeshClient

    with WeshClient() as client:  # the default socket, /run/wesh/weshd.sock
        value = client.value("dw-12", "pince.1.voltage")
        print(value.value, value.unit, value.age_s)

Results are the models of :mod:`wesh.gateway.schema`; errors are
:class:`~wesh.errors.WeshError` subclasses.
"""

from wesh.client.api import DEFAULT_SOCKET, AsyncWeshClient, WeshClient
from wesh.gateway.schema import (
    BoxClock,
    BoxInfo,
    BoxRuntimeStatus,
    ChannelInfo,
    CommandResult,
    EventInfo,
    Health,
    HistoryPage,
    HistoryPoint,
    PollInterval,
    Value,
)

__all__ = [
    "DEFAULT_SOCKET",
    "AsyncWeshClient",
    "BoxClock",
    "BoxInfo",
    "BoxRuntimeStatus",
    "ChannelInfo",
    "CommandResult",
    "EventInfo",
    "Health",
    "HistoryPage",
    "HistoryPoint",
    "PollInterval",
    "Value",
    "WeshClient",
]
