"""weshd, the building gateway: configuration, drivers, channels, store, poller, API.

Each module's public names are re-exported here (one block per module, one name a line).
"""

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
from wesh.gateway.drivers.base import Command, Driver, PollResult, make_driver

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
