"""Admin HTTP API of a farm (optional, ``--admin-port``): list boxes, switch faults, read state.

JSON over HTTP on 127.0.0.1, no authentication (a development tool)::

    GET    /boxes                      every box: identity, endpoints, faults
    GET    /boxes/{i}                  one box, with its current state
    POST   /boxes/{i}/faults           body: faults of one box, "latency=2,http500@0.1"
    DELETE /boxes/{i}/faults[?kind=K]  remove every fault (or one kind)
    POST   /faults                     body: a whole --faults specification
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from wesh.errors import UsageError
from wesh.sim.faults import FaultKind, FaultSpec
from wesh.sim.http import bind_socket
from wesh.sim.model import BoxState

if TYPE_CHECKING:
    from wesh.sim.farm import FarmBox, SimFarm

__all__ = ["AdminFrontend", "state_json"]

_MAX_BODY = 16 * 1024


def state_json(state: BoxState) -> dict[str, Any]:
    """Return a JSON-ready view of a box state."""
    tics = []
    for tic in state.tics:
        reading = tic.reading
        tics.append(
            {"number": tic.number, "available": False}
            if reading is None
            else {
                "number": tic.number,
                "available": True,
                "adco": reading.adco,
                "optarif": reading.optarif,
                "period": reading.period,
                "power_va": reading.power_va,
                "currents_a": list(reading.iinst_a),
                "indexes_wh": dict(reading.indexes_wh),
            }
        )
    return {
        "sim_time": state.sim_time.isoformat(),
        "box_time": state.box_time.isoformat(),
        "tic": tics,
        "pulses": [
            {
                "number": c.number,
                "name": c.config.name,
                "unit": c.config.unit,
                "index": c.index,
                "pulses_today": c.pulses_today,
                "flow": c.flow,
            }
            for c in state.counters
        ],
        "clamps": [
            {
                "number": c.number,
                "current_a": c.current_a,
                "power_w": c.power_w,
                "power_va": c.power_va,
                "index_wh": c.index_wh,
            }
            for c in state.clamps
            if c.enabled
        ],
        "probes": dict(state.probes),
        "relays": list(state.relays),
        "switches": list(state.switches),
        "voltage_v": state.voltage_v,
    }


class AdminFrontend:
    """The admin API server of one farm."""

    def __init__(self, farm: SimFarm) -> None:
        self._farm = farm
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_get("/boxes", self._boxes)
        app.router.add_get("/boxes/{index}", self._box)
        app.router.add_post("/boxes/{index}/faults", self._add_faults)
        app.router.add_delete("/boxes/{index}/faults", self._clear_faults)
        app.router.add_post("/faults", self._spec)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def start(self, host: str, port: int) -> str:
        """Start listening; return the base URL."""
        sock = bind_socket(host, port, kind="admin")
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        bound_host, bound_port = sock.getsockname()[:2]
        return f"http://{bound_host}:{bound_port}"

    async def close(self) -> None:
        """Stop the server."""
        await self._runner.cleanup()

    def _handle_of(self, request: web.Request) -> FarmBox:
        text = request.match_info["index"]
        if not text.isdigit() or int(text) >= len(self._farm.boxes):
            raise web.HTTPNotFound(text=f"no box {text}\n")
        return self._farm.boxes[int(text)]

    async def _boxes(self, request: web.Request) -> web.Response:
        return web.json_response(self._farm.describe())

    async def _box(self, request: web.Request) -> web.Response:
        handle = self._handle_of(request)
        return web.json_response({**handle.describe(), "state": state_json(handle.state)})

    async def _add_faults(self, request: web.Request) -> web.Response:
        handle = self._handle_of(request)
        text = await request.text()
        try:
            spec = FaultSpec.parse(f"{handle.index}:{text}")
        except UsageError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        for fault in spec.for_box(handle.index):
            handle.set_fault(fault)
        return web.json_response(handle.describe())

    async def _clear_faults(self, request: web.Request) -> web.Response:
        handle = self._handle_of(request)
        kind = request.query.get("kind")
        try:
            handle.clear_faults(FaultKind.named(kind) if kind else None)
        except UsageError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        return web.json_response(handle.describe())

    async def _spec(self, request: web.Request) -> web.Response:
        try:
            self._farm.apply_faults(await request.text())
        except UsageError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc
        return web.json_response(self._farm.describe())
