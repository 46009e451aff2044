"""The one exception tree of wesh.

Every error that leaves a wesh API is a :class:`WeshError`. Foreign errors
(``OSError``, ``serial.SerialException``, XML or HTTP library errors) are translated
at one boundary, with ``raise ... from exc``, so callers never have to know which
library sits underneath.

The tree is classified by what a caller can do about it::

    WeshError
    ├── TransientError          retrying later may succeed
    │   ├── ConnectionFailed    could not reach the peer (refused, unplugged, reset)
    │   └── DeviceTimeout       the peer did not answer in time
    ├── AuthenticationError     bad credentials (HTTP 401)
    │   └── PermissionDenied    good credentials, not enough rights (HTTP 403)
    ├── DeviceReportedError     the device answered, and said no
    └── BadInputError           input that can never be accepted as it is
        ├── DecodeError         malformed bytes or text from a device or a file
        ├── ConfigError         a wrong configuration value
        └── UsageError          a wrong argument to an API or command

Each error carries optional context fields (``host``, ``channel``, ``where``) that are
shown in its message and available to callers as attributes.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadInputError",
    "ConfigError",
    "ConnectionFailed",
    "DecodeError",
    "DeviceReportedError",
    "DeviceTimeout",
    "PermissionDenied",
    "TransientError",
    "UsageError",
    "WeshError",
]


class WeshError(Exception):
    """Root of every error raised by wesh.

    Args:
        message: what went wrong, in one sentence.
        host: the device or server concerned, if any.
        channel: the channel or label concerned, if any.
        where: a location in a file or stream (``"weshd.toml:12"``, ``"byte 1043"``).
    """

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        channel: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.channel = channel
        self.where = where

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("where", self.where),
                ("host", self.host),
                ("channel", self.channel),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message


class TransientError(WeshError):
    """A failure that may go away by itself: retrying later may succeed."""


class ConnectionFailed(TransientError):
    """The peer could not be reached (refused, unplugged, reset, unknown host)."""


class DeviceTimeout(TransientError):
    """The peer did not answer within the allowed time."""


class AuthenticationError(WeshError):
    """The peer rejected the credentials (HTTP 401 or equivalent)."""


class PermissionDenied(AuthenticationError):
    """The credentials are valid but lack the rights for this operation (HTTP 403)."""


class DeviceReportedError(WeshError):
    """The device answered, and reported an error of its own."""


class BadInputError(WeshError):
    """Input that can never be accepted as it is; retrying will not help."""


class DecodeError(BadInputError):
    """Malformed bytes or text from a device, a file or a packet."""


class ConfigError(BadInputError):
    """A wrong configuration value; ``where`` names the file and line or key."""


class UsageError(BadInputError):
    """A wrong argument given to an API or a command."""
