"""`replay(path)`: serve a recording again, as a stream, from the demo server.

Each call loads the recording (so a file still growing is re-read) and registers it under a
key derived from its path and speed: re-running a cell reuses the same URL instead of piling
up routes. One route, `/replay/{key}`, is added once to the served app (routes added to a
running Starlette/FastAPI app are live at once). Each connection starts from the beginning,
or just after the last event whose id equals its `Last-Event-ID`, and keeps the recorded
gaps between events divided by `speed`. The stream ends with `[DONE]` (the client's `done`
sentinel, so a reader stops quietly); a resume past the last event gets 204, which ends a
client for good, as with every finite demo producer.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from .. import _state
from .._models import Event
from ._loader import _bad_reason, _complete_end

__all__ = ["replay"]

ROUTE = "/replay/{key}"
_recordings: dict[str, tuple[list[float], list[Event], float]] = {}


def _load(path: Path) -> tuple[list[float], list[Event]]:
    """(times, events) of a recording; bad lines are skipped (the loader reports them)."""
    end = _complete_end(path)
    times: list[float] = []
    events: list[Event] = []
    with open(path, "rb") as f:
        data = f.read(end)
    for line in data.splitlines():
        if not line.strip() or _bad_reason(line) is not None:
            continue
        obj = orjson.loads(line)
        times.append(float(obj.get("time") or 0.0))
        events.append(
            Event(
                event=obj.get("event") or "message",
                data=obj.get("data") or "",
                id=obj.get("id") or "",
                retry=obj.get("retry"),
            )
        )
    return times, events


async def _produce(
    times: list[float], events: list[Event], start: int, speed: float
) -> AsyncIterator[Event]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    for i in range(start, len(events)):
        if speed > 0 and i > start:
            due = began + (times[i] - times[start]) / speed
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield events[i]
    yield Event(data="[DONE]")


def _start_index(events: list[Event], last_id: str | None) -> int | None:
    """Where a connection starts: 0, just after `last_id`'s last event, or None (past the end)."""
    if not last_id:
        return 0
    for i in range(len(events) - 1, -1, -1):
        if events[i].id == last_id:
            return i + 1 if i + 1 < len(events) else None
    return 0


async def _endpoint(request: Any) -> Any:
    from starlette.responses import Response

    from ..server import EventStreamResponse

    found = _recordings.get(request.path_params["key"])
    if found is None:
        return Response("unknown recording", status_code=404)
    times, events, speed = found
    start = _start_index(events, request.headers.get("last-event-id"))
    if start is None:
        return Response(status_code=204)
    return EventStreamResponse(_produce(times, events, start, speed), heartbeat=15.0)


def _demo_server() -> Any:
    handle = _state.servers.get("demo")
    if handle is not None and getattr(handle, "running", False):
        return handle
    from ..server import serve

    return serve(name="demo")


def replay(path: str | os.PathLike[str], *, speed: float = 1.0) -> str:
    """A URL on the running (or a newly started) demo server that streams the recording at
    `path` with its event types, ids, retry values and relative timing.

    `speed=2` halves the gaps, `speed=0` sends everything at once. Every connection replays
    from the start, or resumes after its `Last-Event-ID`. Ends with `[DONE]`.
    """
    if speed < 0:
        raise ValueError(f"speed must be >= 0, not {speed!r}")
    path = Path(path).resolve()
    times, events = _load(path)
    key = hashlib.sha1(f"{path}|{speed}".encode()).hexdigest()[:12]
    _recordings[key] = (times, events, float(speed))
    handle = _demo_server()
    router = handle.app.router
    if not any(getattr(r, "path", None) == ROUTE for r in router.routes):
        router.add_route(ROUTE, _endpoint, methods=["GET"], include_in_schema=False)
    return f"{handle.url}/replay/{key}"
