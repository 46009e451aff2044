"""weshd, the building gateway: configuration, drivers, channels, store, poller, API.

Names are loaded on first use, so that importing a light module of this package (the
API schema, which libwesh imports) does not load the WES client, lxml or the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wesh.gateway.channels import (
        ChannelKind,
        ChannelMapper,
        GatewayEvent,
        IndexGuard,
        MappedPoll,
        Quality,
        Sample,
    )
    from wesh.gateway.config import (
        ApiConfig,
        BoxConfig,
        ChannelConfig,
        ConfigValidationError,
        GatewayConfig,
        MqttConfig,
        PollConfig,
        SiteConfig,
        StoreConfig,
        apply_overrides,
        config_from_text,
        load_config,
    )
    from wesh.gateway.drivers.base import (
        Command,
        Driver,
        PollResult,
        make_driver,
    )

__all__ = [
    "ApiConfig",
    "BoxConfig",
    "ChannelConfig",
    "ChannelKind",
    "ChannelMapper",
    "Command",
    "ConfigValidationError",
    "Driver",
    "GatewayConfig",
    "GatewayEvent",
    "IndexGuard",
    "MappedPoll",
    "MqttConfig",
    "PollConfig",
    "PollResult",
    "Quality",
    "Sample",
    "SiteConfig",
    "StoreConfig",
    "apply_overrides",
    "config_from_text",
    "load_config",
    "make_driver",
]

_HOME = {
    "ChannelKind": "channels",
    "ChannelMapper": "channels",
    "GatewayEvent": "channels",
    "IndexGuard": "channels",
    "MappedPoll": "channels",
    "Quality": "channels",
    "Sample": "channels",
    "ApiConfig": "config",
    "BoxConfig": "config",
    "ChannelConfig": "config",
    "ConfigValidationError": "config",
    "GatewayConfig": "config",
    "MqttConfig": "config",
    "PollConfig": "config",
    "SiteConfig": "config",
    "StoreConfig": "config",
    "apply_overrides": "config",
    "config_from_text": "config",
    "load_config": "config",
    "Command": "drivers.base",
    "Driver": "drivers.base",
    "PollResult": "drivers.base",
    "make_driver": "drivers.base",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'wesh.gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wesh.gateway.{module}"), name)
