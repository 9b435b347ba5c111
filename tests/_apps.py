"""A small Starlette app with one endpoint per client behaviour under test.

Each endpoint is the smallest server that provokes one rule of DESIGN.md's "End of a
stream": drops mid-body, clean ends with and without ids, 204, error statuses, a wrong
content type, silence, byte-exact chunk cuts, a redirect, gzip, disconnect detection. The
app records what it received in an `AppState` (thread-safe: uvicorn runs in another thread)
so tests can assert on requests and disconnects the server really saw.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.responses import StreamingResponse as _Streaming
from starlette.routing import Route

from ssenb import Event, EventSource, RetryPolicy

SSE = "text/event-stream"

# The byte-exact stream: each entry is one write, cut inside a UTF-8 character, between CR
# and LF, and inside the CRLF that ends an event. EXACT_DATA is what a parser must see.
EXACT_CHUNKS: tuple[bytes, ...] = (
    b"\xef\xbb",  # a BOM split in two
    b"\xbfdata: caf\xc3",
    b"\xa9 \xe2\x82",
    b"\xac\r",
    b"\n\r",
    b"\nid: 7\r\ndata: \xf0\x9f",
    b"\x98\x80 line" + "\u2028".encode() + b"sep\r\r",
    b"data: cr-only\r",
    b"\r",
)
EXACT_DATA: tuple[str, ...] = ("café €", "😀 line\u2028sep", "cr-only")


class Abort(Exception):
    """Raised inside a streaming body: uvicorn then cuts the connection mid-body."""


def _not_abort(record: logging.LogRecord) -> bool:
    """Keep uvicorn's log free of the tracebacks of deliberate cuts (and only those)."""
    return not (record.exc_info and isinstance(record.exc_info[1], Abort))


@dataclass
class AppState:
    """What the app saw: every request (path, method, headers) and every disconnect."""

    requests: list[dict[str, str]] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.requests.clear()
        self.disconnects.clear()
        self.disconnected.clear()

    def seen(self, request: Request) -> None:
        record = {k: v for k, v in request.headers.items()}
        record["path"] = request.url.path
        record["method"] = request.method
        self.requests.append(record)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)


def _stream(body: AsyncIterator[bytes], **headers: str) -> _Streaming:
    return _Streaming(body, media_type=SSE, headers={"Cache-Control": "no-cache", **headers})


def make_app(state: AppState) -> Starlette:
    """Build the test app bound to `state`."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _not_abort not in uvicorn_log.filters:
        uvicorn_log.addFilter(_not_abort)

    def int_param(request: Request, name: str, default: int) -> int:
        return int(request.query_params.get(name, default))

    async def flaky(request: Request) -> Response:
        """Ids 1..n, resumable from Last-Event-ID; every `every` events of a connection it
        sends half of the next event and cuts the connection. A resume past n gets 204."""
        state.seen(request)
        n, every = int_param(request, "n", 30), int_param(request, "every", 7)
        retry = int_param(request, "retry", 5)
        last = request.headers.get("last-event-id", "")
        start = int(last) + 1 if last.isdigit() else 1
        if start > n:
            return Response(status_code=204)

        async def body() -> AsyncIterator[bytes]:
            yield f"retry: {retry}\n\n".encode()
            for sent, i in enumerate(range(start, n + 1), 1):
                yield f"id: {i}\ndata: {i}\n\n".encode()
                if sent % every == 0 and i < n:
                    yield f"id: {i + 1}\ndata: half".encode()
                    await asyncio.sleep(0.005)
                    raise Abort
            yield b"data: [DONE]\n\n"

        return _stream(body())

    async def plain(request: Request) -> Response:
        """n events without ids, then a clean end (or a cut when drop=1)."""
        state.seen(request)
        n, drop = int_param(request, "n", 5), int_param(request, "drop", 0)

        async def body() -> AsyncIterator[bytes]:
            for i in range(n):
                yield f"data: p{i}\n\n".encode()
            if drop:
                await asyncio.sleep(0.005)
                raise Abort

        return _stream(body())

    async def post(request: Request) -> Response:
        """POST without ids: echoes the JSON body in 3 events, then ends (or cuts: drop=1).
        With limit=k, requests after the k-th get 204."""
        state.seen(request)
        payload = await request.json()
        drop, limit = int_param(request, "drop", 0), int_param(request, "limit", 0)
        if limit and state.count("/post") > limit:
            return Response(status_code=204)

        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"data: {json.dumps({'echo': payload, 'i': i})}\n\n".encode()
            if drop:
                await asyncio.sleep(0.005)
                raise Abort

        return _stream(body())

    async def nocontent(request: Request) -> Response:
        state.seen(request)
        return Response(status_code=204)

    async def status(request: Request) -> Response:
        state.seen(request)
        code = int(request.path_params["code"])
        headers = {"X-Why": "testing", "Retry-After": "0"}
        return PlainTextResponse(f"nope {code}: " + "x" * 5000, status_code=code, headers=headers)

    async def not_sse(request: Request) -> Response:
        state.seen(request)
        return JSONResponse({"error": "not an event stream"})

    async def silent(request: Request) -> Response:
        """`first` events, then nothing at all until the client goes away."""
        state.seen(request)
        first = int_param(request, "first", 0)

        async def body() -> AsyncIterator[bytes]:
            try:
                for i in range(first):
                    yield f"id: s{i}\ndata: s{i}\n\n".encode()
                await asyncio.sleep(3600)
                yield b""
            finally:
                state.disconnects.append(request.url.path)
                state.disconnected.set()

        return _stream(body())

    async def endless(request: Request) -> Response:
        """An event every 5 ms for ever; records the disconnect the server detects."""
        state.seen(request)

        async def body() -> AsyncIterator[bytes]:
            i = 0
            try:
                while True:
                    i += 1
                    yield f"id: {i}\ndata: {i}\n\n".encode()
                    await asyncio.sleep(0.005)
            finally:
                state.disconnects.append(request.url.path)
                state.disconnected.set()

        return _stream(body())

    async def exact(request: Request) -> Response:
        """EXACT_CHUNKS, one write each; it carries an id, so a resume gets 204."""
        state.seen(request)
        if "last-event-id" in request.headers:
            return Response(status_code=204)

        async def body() -> AsyncIterator[bytes]:
            for chunk in EXACT_CHUNKS:
                yield chunk
                await asyncio.sleep(0.02)  # separate TCP segments, so reads see the cuts

        return _stream(body())

    async def redirect(request: Request) -> Response:
        state.seen(request)
        return RedirectResponse("/plain?n=3", status_code=307)

    async def gzipped(request: Request) -> Response:
        """n events with ids, gzip-encoded, flushed per event so each arrives at once."""
        state.seen(request)
        n = int_param(request, "n", 5)

        async def body() -> AsyncIterator[bytes]:
            z = zlib.compressobj(wbits=31)
            for i in range(1, n + 1):
                yield z.compress(f"id: {i}\ndata: g{i}\n\n".encode()) + z.flush(zlib.Z_SYNC_FLUSH)
                await asyncio.sleep(0.002)
            yield z.compress(b"data: [DONE]\n\n") + z.flush()

        return _stream(body(), **{"Content-Encoding": "gzip"})

    async def pings(request: Request) -> Response:
        """n events `gap` seconds apart, with a comment every `every` seconds in between."""
        state.seen(request)
        n = int_param(request, "n", 2)
        gap = float(request.query_params.get("gap", 0.6))
        every = float(request.query_params.get("every", 0.1))

        async def body() -> AsyncIterator[bytes]:
            for i in range(1, n + 1):
                for _ in range(round(gap / every)):
                    await asyncio.sleep(every)
                    yield b": ping\n\n"
                yield f"id: {i}\ndata: {i}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return _stream(body())

    async def big(request: Request) -> Response:
        """A small event, one of `size` characters, another small one, then [DONE]."""
        state.seen(request)
        size = int_param(request, "size", 10_000)

        async def body() -> AsyncIterator[bytes]:
            yield b"id: 1\ndata: before\n\n"
            yield b"id: 2\ndata: " + b"x" * size + b"\n\n"
            yield b"id: 3\ndata: after\n\ndata: [DONE]\n\n"

        return _stream(body())

    async def empty(request: Request) -> Response:
        """A resumable stream (it sends `retry:`) that ends without any event."""
        state.seen(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 1\n\n"

        return _stream(body())

    async def many(request: Request) -> Response:
        """n tiny events with ids written `batch` to a write: the throughput workload."""
        state.seen(request)
        n, batch = int_param(request, "n", 1000), int_param(request, "batch", 256)

        async def body() -> AsyncIterator[bytes]:
            for lo in range(0, n, batch):
                hi = min(n, lo + batch)
                yield "".join([f"id: {i}\ndata: {i}\n\n" for i in range(lo, hi)]).encode()
            yield b"data: [DONE]\n\n"

        return _stream(body())

    routes = [
        Route("/flaky", flaky),
        Route("/plain", plain),
        Route("/post", post, methods=["POST"]),
        Route("/nocontent", nocontent),
        Route("/status/{code}", status),
        Route("/json", not_sse),
        Route("/silent", silent),
        Route("/endless", endless),
        Route("/exact", exact),
        Route("/redirect", redirect),
        Route("/gzip", gzipped),
        Route("/pings", pings),
        Route("/big", big),
        Route("/empty", empty),
        Route("/many", many),
    ]
    return Starlette(routes=routes)


#: what the `sse_app` fixture yields: the base URL and the app's record of requests
App = tuple[str, AppState]
#: fast, deterministic reconnects for client tests
QUICK = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.0)
LIMIT = 5.0  # seconds: generous bound (>= 5x what each step needs) that only catches hangs


def collect(url: str, **kwargs: Any) -> list[Event]:
    """Every event of `url` through `EventSource` with QUICK reconnects."""
    with EventSource(url, retry_policy=QUICK, **kwargs) as es:
        return list(es)


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
