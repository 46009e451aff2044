"""The WES driver: one Cartelectronic WES server read over HTTP with :class:`WesClient`.

``poll`` fetches ``data.cgx`` once (no retry inside a poll: the poller owns retries and
backoff, and bounds each poll by ``timeout_s``), checks the box's identity against
``expected_mac`` (a wrong box raises :class:`~wesh.wes.client.IdentityMismatch`, a
``DeviceReportedError``), and flattens the snapshot into readings with the box's
``pulse_units``. Commands drive relays and virtual switches (admin account needed).
"""

from __future__ import annotations

import logging

from wesh.errors import ConfigError
from wesh.gateway.config import BoxConfig
from wesh.gateway.drivers.base import Clock, Command, PollResult, utc_now
from wesh.wes.client import WesClient, WesConfig
from wesh.wes.model import Firmware

__all__ = ["WesDriver", "create"]

_LOG = logging.getLogger(__name__)


def wes_config(box: BoxConfig) -> WesConfig:
    """Return the :class:`WesConfig` of a ``driver = "wes"`` box (``ConfigError`` otherwise)."""
    if box.driver != "wes" or box.host is None:
        raise ConfigError("not a WES box", where=f"boxes[{box.id}].driver")
    return WesConfig(
        host=box.host,
        port=box.port,
        user=box.user,
        password=box.password.get_secret_value(),
        expected_mac=box.expected_mac,
        timeout_s=box.timeout_s,
        retries=0,
        m2m_port=box.m2m_port,
        ftp_port=box.ftp_port,
        firmware=Firmware(box.firmware) if box.firmware else None,
    )


class WesDriver:
    """Driver of one WES box (see the module docstring)."""

    def __init__(
        self, box: BoxConfig, *, clock: Clock = utc_now, client: WesClient | None = None
    ) -> None:
        self.box_id = box.id
        self._pulse_units = {number: unit for number, unit in box.pulse_units.items()}
        self._clock = clock
        self._client = client or WesClient(wes_config(box), clock=clock)
        self._expected_mac = box.expected_mac

    async def poll(self) -> PollResult:
        """Fetch and parse the data page once; raise only ``WeshError`` subclasses."""
        snapshot = await self._client.fetch_snapshot()
        if not snapshot.complete:
            _LOG.debug("WES %s: page cut short; keeping the values read", self.box_id)
        readings = snapshot.readings(poll_time=self._clock(), pulse_units=self._pulse_units)
        identity = self._expected_mac or snapshot.info.mac
        return PollResult(readings=readings, box_time=snapshot.info.box_time, identity=identity)

    async def command(self, command: Command) -> None:
        """Switch or toggle a relay or a virtual switch."""
        number, action = command.number, command.action
        if command.kind == "relay":
            if action == "toggle":
                await self._client.toggle_relay(number)
            else:
                await self._client.set_relay(number, action == "on")
        elif action == "toggle":
            await self._client.toggle_switch(number)
        else:
            await self._client.set_switch(number, action == "on")

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        await self._client.close()


def create(box: BoxConfig, *, clock: Clock = utc_now) -> WesDriver:
    """Driver factory looked up by :func:`~wesh.gateway.drivers.base.make_driver`."""
    return WesDriver(box, clock=clock)
