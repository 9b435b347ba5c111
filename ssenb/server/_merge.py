"""`/merge`: several sources merged into one stream as their items arrive, tagged by source.

The seed's merge had two bugs: a source that raised never queued its end sentinel, so the
stream hung forever, and its tasks were cancelled only after a normal end, so a client
disconnect leaked them. Here each source runs in its own task that always reports its end
(a failure becomes an `error` event naming the source, and the others go on), and the
generator's `finally` cancels and awaits every task, whichever way the stream ends.

The event id is the cursor of every source (`"3,2"`: 3 items of A and 2 of B delivered), so
a resumed connection restarts each source exactly after its last delivered item.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response

from .._models import Event
from ._basic import DONE
from ._endpoints import Endpoint, add_endpoint
from ._response import EventStreamResponse

__all__ = ["install", "merge", "source_names"]

MAX_SOURCES = 20
_PACE = (1.0, 1.5, 2.0, 2.5)  # source k waits interval * _PACE[k % 4] between items


def source_names(count: int) -> list[str]:
    """Source labels: A, B, C, ..."""
    return list(string.ascii_uppercase[:count])


class SourceFailed(RuntimeError):
    """A demo source failing mid-way (`fail=<index>`)."""


async def _source(k: int, first: int, n: int, period: float, fails: bool) -> AsyncIterator[int]:
    """Source k's values from item `first` on; a failing one raises after n // 2 values."""
    for pos in range(first, n + 1):
        await asyncio.sleep(period)
        if fails and pos == n // 2 + 1:
            raise SourceFailed(f"source {string.ascii_uppercase[k]} failed after {pos - 1} values")
        yield pos * (k + 1)


def _lengths(sources: int, n: int, fail: int | None) -> list[int]:
    """Items each source delivers: n values, or n // 2 values and one error for `fail`."""
    return [n // 2 + 1 if k == fail else n for k in range(sources)]


async def _feed(
    k: int, items: AsyncIterator[int], queue: asyncio.Queue[tuple[int, str, Any]]
) -> None:
    try:
        async for value in items:
            await queue.put((k, "value", value))
    except Exception as exc:  # reported as this source's error event; the others go on
        await queue.put((k, "error", exc))
    await queue.put((k, "end", None))  # always: the merge never waits for a dead source


async def merge(
    positions: list[int], n: int, interval: float, fail: int | None
) -> AsyncIterator[Event]:
    """Run every unfinished source as a task and yield their items as they arrive."""
    names = source_names(len(positions))
    lengths = _lengths(len(positions), n, fail)
    queue: asyncio.Queue[tuple[int, str, Any]] = asyncio.Queue(maxsize=64)
    tasks = [
        asyncio.create_task(
            _feed(k, _source(k, pos + 1, n, interval * _PACE[k % 4], k == fail), queue),
            name=f"ssenb-merge-{names[k]}",
        )
        for k, pos in enumerate(positions)
        if pos < lengths[k]
    ]
    try:
        active = len(tasks)
        while active:
            k, kind, payload = await queue.get()
            if kind == "end":
                active -= 1
                continue
            positions[k] += 1
            eid = ",".join(map(str, positions))
            if kind == "value":
                data = {"source": names[k], "value": payload, "n": positions[k]}
                yield Event(data=orjson.dumps(data).decode(), id=eid)
            else:
                info = {
                    "source": names[k],
                    "error": type(payload).__name__,
                    "message": str(payload),
                    "fatal": False,
                }
                yield Event(event="error", data=orjson.dumps(info).decode(), id=eid)
        yield DONE
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _cursor(request: Request, lengths: list[int]) -> list[int]:
    """Per-source positions from `Last-Event-ID` (all 0 when absent; 422 when malformed)."""
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return [0] * len(lengths)
    parts = raw.split(",")
    if len(parts) != len(lengths) or not all(p.isdigit() for p in parts):
        raise HTTPException(422, f"Last-Event-ID must be {len(lengths)} counts like '2,3'")
    return [min(int(p), length) for p, length in zip(parts, lengths, strict=True)]


def install(app: FastAPI) -> None:
    """Add `/merge` to `app` and to the index page."""

    @app.get("/merge", summary="Several sources merged as they arrive, tagged by source")
    async def merge_endpoint(
        request: Request,
        sources: Annotated[int, Query(ge=1, le=MAX_SOURCES)] = 2,
        n: Annotated[int, Query(ge=1, le=100_000)] = 5,
        interval: Annotated[float, Query(ge=0, le=60)] = 0.2,
        fail: Annotated[int | None, Query(ge=0, lt=MAX_SOURCES)] = None,
    ) -> Response:
        if fail is not None and fail >= sources:
            raise HTTPException(422, f"fail must name a source index 0..{sources - 1}")
        lengths = _lengths(sources, n, fail)
        positions = _cursor(request, lengths)
        if positions == lengths:
            return Response(status_code=204)
        return EventStreamResponse(merge(positions, n, interval, fail))

    add_endpoint(
        app,
        Endpoint(
            "/merge",
            "sources=2 (1..20), n=5, interval=0.2, fail=<index>",
            "sources A, B, ... merged as they arrive ({source, value}); a failing source "
            "gives an error event and the rest go on; [DONE] after all",
            "/merge?sources=3&n=5&fail=1",
        ),
    )
