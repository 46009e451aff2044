"""The JSON schema of weshd's local API: pydantic models, no logic.

This module is shared by the server (:mod:`wesh.gateway.api`) and the client
(:mod:`wesh.client`); it imports nothing but pydantic, so that ``libwesh`` can use it
without pulling in the daemon.

Every datetime is timezone-aware (ISO-8601 with an offset on the wire). Open sets of
names that the gateway may extend (channel meanings, event kinds) are plain strings so
that an older client keeps working against a newer daemon.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "API_PREFIX",
    "BoxClock",
    "BoxInfo",
    "BoxRuntimeStatus",
    "ChannelInfo",
    "ClockRequest",
    "CommandAction",
    "CommandRequest",
    "CommandResult",
    "ErrorInfo",
    "EventInfo",
    "Health",
    "HistoryPage",
    "HistoryPoint",
    "PollInterval",
    "PollIntervalRequest",
    "Quality",
    "SampleKind",
    "Scalar",
    "Value",
]

API_PREFIX = "/api/v1"
"""Every endpoint of the API lives under this path."""

Quality = Literal["measured", "estimated", "suspect"]
SampleKind = Literal["index", "gauge", "state", "text"]
CommandAction = Literal["on", "off", "toggle"]
Scalar = bool | int | float | str
"""A reading's value. ``bool`` first so that ``true`` stays a bool, not ``1``."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class BoxRuntimeStatus(_Model):
    """What the poller knows about one box right now (filled by the poller)."""

    box: str
    up: bool | None = Field(None, description="None: never polled since start")
    since: AwareDatetime | None = Field(None, description="when `up` last changed")
    last_ok: AwareDatetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_due: AwareDatetime | None = None
    last_lag_s: float | None = Field(None, description="delay of the last poll after its due time")


class BoxInfo(_Model):
    """One box of the configuration and its runtime status."""

    id: str
    driver: str = Field(description='"wes" or "tic"')
    serves: str = Field(description='dwelling or common area, e.g. "logement-12"')
    label: str | None = None
    enabled: bool
    poll_interval_s: float
    address: str | None = Field(None, description='"host:port" (WES) or the serial device (TIC)')
    channel_count: int = Field(0, description="configured channels")
    status: BoxRuntimeStatus | None = None


class ChannelInfo(_Model):
    """A channel of a box: configured, or seen in the readings, or both."""

    box: str
    channel: str = Field(description='"<box>/<path>"')
    path: str
    meaning: str | None = None
    label: str | None = None
    unit: str | None = None
    kind: SampleKind | None = Field(None, description="None until a first value was read")
    configured: bool
    last_at: AwareDatetime | None = None


class Value(_Model):
    """The last value of one channel, with its unit and age."""

    box: str
    channel: str
    path: str
    value: Scalar
    unit: str | None = None
    quality: Quality
    kind: SampleKind
    meaning: str | None = None
    label: str | None = None
    at: AwareDatetime = Field(description="poll time (UTC)")
    age_s: float = Field(description="seconds between `at` and the answer")
    box_time: AwareDatetime | None = Field(None, description="the box's own clock, if known")


class HistoryPoint(_Model):
    """One stored value of a channel."""

    at: AwareDatetime
    value: Scalar
    quality: Quality
    box_time: AwareDatetime | None = None


class HistoryPage(_Model):
    """Values of one channel over ``[since, until)``, oldest first, one page at a time.

    When ``next_since`` is set, more values exist: ask again with ``since=next_since``.
    """

    box: str
    channel: str
    path: str
    unit: str | None = None
    since: AwareDatetime
    until: AwareDatetime
    points: list[HistoryPoint]
    next_since: AwareDatetime | None = None


class EventInfo(_Model):
    """One gateway event (box down/up, counter reset, command, …)."""

    id: int
    at: AwareDatetime
    box: str | None = None
    channel: str | None = None
    kind: str
    severity: Literal["info", "warning", "alarm"]
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class CommandRequest(_Model):
    """Body of a relay or switch command."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action: CommandAction


class CommandResult(_Model):
    """What was done by a relay or switch command."""

    box: str
    kind: Literal["relay", "switch"]
    number: int
    action: CommandAction
    ok: bool = True
    at: AwareDatetime


class Health(_Model):
    """Overall health: ``ok``, or ``degraded`` with the reasons."""

    status: Literal["ok", "degraded"]
    site: str
    version: str
    now: AwareDatetime
    boxes_total: int
    boxes_up: int
    boxes_down: int
    boxes_unknown: int = Field(description="enabled boxes never polled yet")
    store_degraded: bool
    queue_depth: int
    reasons: list[str] = Field(default_factory=list)


class ErrorInfo(_Model):
    """The JSON body of every error answer (4xx and 5xx)."""

    error: str = Field(description='a stable code, e.g. "unknown_box", "unauthorized"')
    message: str
    box: str | None = None
    channel: str | None = None
    details: list[dict[str, Any]] | None = None


# --- run-time control (PUT /boxes/{box}/interval, /boxes/{box}/clock) ---------------


class PollIntervalRequest(_Model):
    """Body of ``PUT /boxes/{box}/interval``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    poll_interval_s: float | None = Field(
        ge=1, le=86_400, description="seconds; null: back to the configured interval"
    )


class PollInterval(_Model):
    """A box's poll interval: configured, run-time override, in force."""

    box: str
    configured_s: float = Field(description="from weshd.toml")
    override_s: float | None = Field(None, description="set at run time; null: none")
    effective_s: float = Field(description="the interval in force")
    enabled: bool


class ClockRequest(_Model):
    """Body of ``POST /boxes/{box}/clock``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    at: AwareDatetime | None = Field(None, description="the time to set; null: the gateway's")


class BoxClock(_Model):
    """A box's clock as last read, and whether weshd can set it."""

    box: str
    driver: str
    settable: bool = Field(description="whether weshd can set this box's clock")
    now: AwareDatetime = Field(description="the gateway's clock when answering")
    box_time: AwareDatetime | None = Field(None, description="the box's clock at its last read")
    read_at: AwareDatetime | None = Field(None, description="the gateway's clock at that read")
    offset_s: float | None = Field(None, description="box_time - read_at (box ahead: > 0)")
