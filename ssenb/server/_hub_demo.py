"""The hub demo: `/hub` (fed from a notebook cell) and `/hub/ticks` (one shared ticker).

    handle = ssenb.serve()
    handle.app.state.hub.publish({"msg": "hi"})   # every open /hub tab receives it

`GET /hub` subscribes to `app.state.hub` (resuming after `Last-Event-ID`); `POST /hub` with
a JSON body publishes it, for curl or another process. `/hub/ticks` is one background
producer shared by every client: it starts with the first subscriber and stops once nobody
has listened for `_IDLE_STOP` seconds, so many tabs cost one producer, not one each.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Annotated, Any

import orjson
from fastapi import Body, FastAPI, Request, Response

from ._endpoints import Endpoint, add_endpoint
from .hub import Hub

__all__ = ["TICK_RATE", "install"]

TICK_RATE = 10.0  # events per second on /hub/ticks
_IDLE_STOP = 2.0


async def _ticker(hub: Hub, state: Any) -> None:
    """Publish {t, value} ticks while anyone listens; ids continue across restarts."""
    idle_since: float | None = None
    k = 0
    try:
        while not hub.closed:
            now = time.time()
            if hub.stats["subscribers"]:
                idle_since = None
                value = round(100 * math.sin(2 * math.pi * k / 100), 3)
                hub.publish({"t": now, "value": value})
                k += 1
            elif idle_since is None:
                idle_since = now
            elif now - idle_since > _IDLE_STOP:
                return
            await asyncio.sleep(1 / TICK_RATE)
    finally:
        state.hub_ticker = None


def install(app: FastAPI) -> None:
    """Add `/hub` and `/hub/ticks`; `app.state.hub` is the hub a notebook publishes to."""
    app.state.hub = Hub()
    app.state.ticks_hub = Hub(buffer=1_000)
    app.state.hub_ticker = None

    @app.get("/hub", summary="Subscribe to app.state.hub (publish from a notebook cell)")
    async def hub_stream(request: Request) -> Response:
        hub: Hub = request.app.state.hub
        return hub.response(request)

    @app.post("/hub", summary="Publish a JSON body to every /hub subscriber")
    async def hub_publish(
        request: Request, body: Annotated[Any, Body(description="JSON data")]
    ) -> dict[str, str]:
        # a JSON object is data (or Event fields), a string is the data itself; else JSON text
        item = body if isinstance(body, dict | str) else {"data": orjson.dumps(body).decode()}
        return {"id": request.app.state.hub.publish(item)}

    @app.get("/hub/ticks", summary="One shared ticker fanned out to every client")
    async def hub_ticks(request: Request) -> Response:
        state = request.app.state
        ticks: Hub = state.ticks_hub
        response = ticks.response(request)
        if state.hub_ticker is None and not state.ticks_hub.closed:
            state.hub_ticker = asyncio.get_running_loop().create_task(
                _ticker(state.ticks_hub, state), name="ssenb-hub-ticker"
            )
        return response

    for endpoint in (
        Endpoint("/hub", "Last-Event-ID resumes",
                 "events published with app.state.hub.publish(...) (or POST /hub); resumable,"
                 " a gap event when the id is too old", "/hub"),
        Endpoint("/hub/ticks", "-",
                 f"one shared ticker ({TICK_RATE:g}/s) fanned out to every client; resumable",
                 "/hub/ticks"),
    ):  # fmt: skip
        add_endpoint(app, endpoint)
