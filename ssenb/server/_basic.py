"""The basic demo producers: `/stream`, `/ticks`, `/flaky`, `/heartbeat`, `/errors`.

Each finite producer numbers its events (`id: 1..n`), ends with `data: [DONE]`, resumes
after the client's `Last-Event-ID`, and answers a resume past its last id with 204, so a
browser or ssenb client neither repeats nor loses an event and stops for good at the end.
Invalid query values get FastAPI's 422 before any streaming starts.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response

from .._models import Event
from ._endpoints import Endpoint, add_endpoint
from ._response import AbortConnection, EventStreamResponse

__all__ = ["DONE", "install", "last_event_id"]

DONE = Event(data="[DONE]")
_BATCH = 512  # events per write-ready chunk on unthrottled paths
# /ticks values: 100 * sin(2 pi id / 1000), rounded, pre-formatted (fast path, deterministic)
_VALUES = [repr(round(100 * math.sin(2 * math.pi * k / 1000), 3)) for k in range(1000)]


def last_event_id(request: Request) -> int:
    """The numeric `Last-Event-ID` of a resuming client, 0 when absent (422 if not a count)."""
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise HTTPException(422, f"Last-Event-ID must be a non-negative integer, not {raw!r}")
    return int(raw)


def numbered(
    request: Request, n: int | None, make: Callable[[int], Any], **response_kw: Any
) -> Response:
    """The stream of events numbered 1..n (None: endless), made by `make(first)` from right
    after the client's `Last-Event-ID`; 204 (stop, do not reconnect) once it is past `n`."""
    first = last_event_id(request) + 1
    if n is not None and first > n:
        return Response(status_code=204)
    return EventStreamResponse(make(first), **response_kw)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


async def _counter(first: int, n: int, interval: float) -> AsyncIterator[Any]:
    if interval == 0:
        for lo in range(first, n + 1, _BATCH):
            yield [
                Event(data=f'{{"count":{i},"message":"Update {i}"}}', id=str(i))
                for i in range(lo, min(lo + _BATCH, n + 1))
            ]
    else:
        for i in range(first, n + 1):
            if i > first:
                await asyncio.sleep(interval)
            yield Event(data=_dumps({"count": i, "message": f"Update {i}"}), id=str(i))
    yield DONE


def _ticks_chunk(lo: int, hi: int) -> bytes:
    t, values = repr(time.time()), _VALUES
    return "".join(
        [f'id: {i}\ndata: {{"t":{t},"value":{values[i % 1000]}}}\n\n' for i in range(lo, hi)]
    ).encode()


async def _ticks(first: int, n: int, rate: float) -> AsyncIterator[Any]:
    last = n if n else math.inf
    i = first
    if rate == 0:
        while i <= last:
            hi = int(min(i + _BATCH, last + 1))
            yield _ticks_chunk(i, hi)
            i = hi
    else:
        t0 = time.monotonic() - 1 / rate  # the first tick is due at once
        while i <= last:
            due = min(int((time.monotonic() - t0) * rate), int(min(last, 2**62)) - first + 1)
            hi = min(first + due, i + 8 * _BATCH)  # after a stall, catch up in bounded chunks
            if hi > i:
                yield _ticks_chunk(i, hi)
                i = hi
            if i <= last:
                await asyncio.sleep(max(0.0, t0 + (i - first + 1) / rate - time.monotonic()))
    if n:
        yield DONE


async def _flaky(first: int, n: int, every: int, retry: int) -> AsyncIterator[Event]:
    for k, i in enumerate(range(first, n + 1)):
        if k == every:
            raise AbortConnection(f"/flaky cuts the connection after {every} events")
        data = _dumps({"n": i, "of": n})
        yield Event(data=data, id=str(i), retry=retry if k == 0 else None)
    yield DONE


async def _heartbeat(first: int, n: int, every: float) -> AsyncIterator[Event]:
    for i in range(first, n + 1):
        await asyncio.sleep(every)
        yield Event(data=_dumps({"n": i, "t": time.time()}), id=str(i))
    yield DONE


async def _failing_source(fail_after: int) -> AsyncIterator[dict[str, Any]]:
    for i in range(1, fail_after + 1):
        yield {"item": i}
        await asyncio.sleep(0.01)
    yield {"item": fail_after + 1, "value": math.nan}  # NaN: not valid JSON
    raise RuntimeError(f"source failed after {fail_after + 1} items")


async def _error_events(fail_after: int) -> AsyncIterator[Event]:
    """The error-event pattern done right: per-item errors go on, a fatal one ends it."""
    yield Event(event="connected", data=_dumps({"status": "ok"}))
    try:
        async for item in _failing_source(fail_after):
            try:
                data = json.dumps(item, allow_nan=False, separators=(",", ":"))
            except ValueError as exc:
                info = {"item": item["item"], "error": str(exc)}
                yield Event(event="item_error", data=_dumps(info))
            else:
                yield Event(data=data)
    except Exception as exc:  # after the 200 went out, errors travel as events
        err = {"error": type(exc).__name__, "message": str(exc), "fatal": True}
        yield Event(event="error", data=_dumps(err))


def _errors_total(fail_after: int) -> int:
    """Events `/errors` numbers: connected, the items, one item_error, the fatal error."""
    return fail_after + 3


async def _errors(first: int, fail_after: int) -> AsyncIterator[Event]:
    """`_error_events` numbered 1..n from `first` on, then `[DONE]`: a browser that
    reconnects after the clean end resumes past the last id and gets 204, so it stops
    instead of replaying the stream every few seconds."""
    n = 0
    async for event in _error_events(fail_after):
        n += 1
        if n >= first:
            yield event._replace(id=str(n))
    yield DONE


def install(app: FastAPI) -> None:
    """Add the basic producers to `app` (and to the index page's endpoint list)."""

    @app.get("/stream", summary="Counter events, then [DONE]")
    async def stream(
        request: Request,
        n: Annotated[int, Query(ge=1, le=10**7)] = 10,
        interval: Annotated[float, Query(ge=0, le=60)] = 0.5,
    ) -> Response:
        return numbered(request, n, lambda first: _counter(first, n, interval))

    @app.get("/ticks", summary="Numeric ticks; the throughput workload")
    async def ticks(
        request: Request,
        n: Annotated[int, Query(ge=0, le=10**12)] = 0,
        rate: Annotated[float, Query(ge=0, le=10**7)] = 10,
    ) -> Response:
        return numbered(request, n or None, lambda first: _ticks(first, n, rate))

    @app.get("/flaky", summary="Drops the connection every `every` events")
    async def flaky(
        request: Request,
        n: Annotated[int, Query(ge=1, le=10**6)] = 100,
        every: Annotated[int, Query(ge=1, le=10**6)] = 5,
        retry: Annotated[int, Query(ge=0, le=600_000)] = 500,
    ) -> Response:
        return numbered(request, n, lambda first: _flaky(first, n, every, retry))

    @app.get("/heartbeat", summary="Slow events, heartbeat comments while idle")
    async def heartbeat(
        request: Request,
        every: Annotated[float, Query(ge=0, le=3600)] = 2,
        heartbeat: Annotated[float, Query(gt=0, le=3600)] = 0.5,
        n: Annotated[int, Query(ge=1, le=10**6)] = 5,
    ) -> Response:
        return numbered(request, n, lambda first: _heartbeat(first, n, every), heartbeat=heartbeat)

    @app.get("/errors", summary="connected, data, item_error, a fatal error, then [DONE]")
    async def errors(
        request: Request, fail_after: Annotated[int, Query(ge=0, le=10_000)] = 3
    ) -> Response:
        total = _errors_total(fail_after)
        return numbered(request, total, lambda first: _errors(first, fail_after))

    for endpoint in (
        Endpoint("/stream", "n=10, interval=0.5", "counter events with ids 1..n, then [DONE]",
                 "/stream?n=20&interval=0.2"),
        Endpoint("/ticks", "n=0 (endless), rate=10 (0 = unthrottled)",
                 "numeric {t, value} ticks with ids, resumable", "/ticks?rate=5"),
        Endpoint("/flaky", "n=100, every=5, retry=500 (ms)",
                 "cuts the connection every <every> events; resumable; [DONE] at n",
                 "/flaky?n=30&every=5&retry=300"),
        Endpoint("/heartbeat", "every=2, heartbeat=0.5, n=5",
                 "an event every <every> s, \": ping\" comments every <heartbeat> s",
                 "/heartbeat?every=1&n=5"),
        Endpoint("/errors", "fail_after=3",
                 "connected, data, item_error, a fatal error event, with ids, then [DONE]",
                 "/errors"),
    ):  # fmt: skip
        add_endpoint(app, endpoint)
