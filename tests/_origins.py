"""Origins for the fault tests: raw-socket HTTP/1.1 servers on 127.0.0.1 with exact control
of the bytes, and a restartable Hub-backed ASGI origin.

`ResumableOrigin` serves ids 1..n honouring `Last-Event-ID`, then `data: [DONE]`; each
connection takes the next variant of line end (LF, CRLF, CR) x body framing (chunked,
close-delimited), and writes events in random-sized bursts (one chunk each when chunked).
Every data carries multi-byte UTF-8 so cuts can land inside a character. A resume past n
gets 204.

`ScriptedOrigin` answers the k-th connection with the k-th of its handlers (the last one
repeats): the bad-input matrix builds each row from a few such steps (`sse`, `gzipped`,
`status`, `raw`, `no_headers`, `trickle`).

`HubOrigin` serves an `ssenb.Hub` over uvicorn; `restart()` brings up a new server with a new
Hub (the replay buffer is lost), as a crashed and restarted producer would.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import product
from typing import Any

__all__ = [
    "EOLS",
    "VARIANTS",
    "HubOrigin",
    "Request",
    "ResumableOrigin",
    "ScriptedOrigin",
    "Step",
    "ev",
    "event_bytes",
    "gzipped",
    "no_headers",
    "payload",
    "raw",
    "read_request",
    "send_head",
    "sse",
    "status",
    "trickle",
]

EOLS = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r"}
VARIANTS: tuple[tuple[str, str], ...] = tuple(product(EOLS, ("chunked", "close")))
SSE_HEAD = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def payload(i: int) -> str:
    """The data of event i: JSON with characters of 2, 3 and 4 UTF-8 bytes."""
    return json.dumps({"i": i, "s": "é€😀"}, ensure_ascii=False)


def event_bytes(i: int, eol: bytes = b"\n") -> bytes:
    return b"id: %d%sdata: %s%s%s" % (i, eol, payload(i).encode(), eol, eol)


@dataclass
class Request:
    """The parts of a request an origin looks at."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def last_event_id(self) -> str:
        return self.headers.get("last-event-id", "")


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request head (bodies are not used here); None when the client went away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = ([*lines[0].split(" "), "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


async def send_head(
    writer: asyncio.StreamWriter,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> None:
    """Write a status line and headers (always `Connection: close`)."""
    fields = {**(headers or {}), "Connection": "close"}
    if chunked:
        fields["Transfer-Encoding"] = "chunked"
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in fields.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Step = Handler


def ev(i: int) -> bytes:
    return b"id: %d\ndata: e%d\n\n" % (i, i)


# -- steps for ScriptedOrigin: what one connection gets --------------------------------------


def sse(first: int, last: int, *, cut: bool = False, chunked: bool = False) -> Step:
    """Events first..last; then half an event and a cut (`cut`) or [DONE] and a clean end.
    With `chunked`, the cut lands inside a chunk whose header promised more bytes."""

    async def step(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await send_head(w, 200, SSE_HEAD, chunked=chunked)
        body = b"".join(ev(i) for i in range(first, last + 1))
        tail = b"id: %d\ndata: ha" % (last + 1) if cut else b"data: [DONE]\n\n"
        if chunked:
            w.write(chunk(body))
            w.write(b"%x\r\n%s" % (len(tail) + 10, tail) if cut else chunk(tail) + b"0\r\n\r\n")
        else:
            w.write(body + tail)
        await w.drain()
        await asyncio.sleep(0.01)

    return step


def gzipped(first: int, last: int, *, cut: bool) -> Step:
    """Events gzip-encoded and flushed per event; `cut`: the connection ends mid-stream,
    without the gzip trailer."""

    async def step(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await send_head(w, 200, {**SSE_HEAD, "Content-Encoding": "gzip"})
        z = zlib.compressobj(wbits=31)
        for i in range(first, last + 1):
            w.write(z.compress(ev(i)) + z.flush(zlib.Z_SYNC_FLUSH))
        if cut:
            w.write(z.compress(b"id: 99\ndata: half")[:5])
        else:
            w.write(z.compress(b"data: [DONE]\n\n") + z.flush())
        await w.drain()
        await asyncio.sleep(0.01)

    return step


def status(code: int, ctype: str = "text/plain", body: bytes = b"", **headers: str) -> Step:
    async def step(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        fields = {"Content-Type": ctype, "Content-Length": str(len(body)), **headers}
        await send_head(w, code, fields)
        w.write(body)
        await w.drain()

    return step


def raw(body: bytes) -> Step:
    async def step(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await send_head(w, 200, SSE_HEAD)
        w.write(body)
        await w.drain()

    return step


async def no_headers(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Accepts and reads the request, then never answers (until the client leaves)."""
    await r.read()


def trickle(every: float) -> Step:
    """Ids 1..3, then the next event one byte per `every` seconds, for ever."""

    async def step(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await send_head(w, 200, SSE_HEAD)
        w.write(ev(1) + ev(2) + ev(3))
        for byte in b"id: 4\ndata: " + b"z" * 10_000:
            await w.drain()
            await asyncio.sleep(every)
            w.write(bytes([byte]))

    return step


class _RawServer:
    """A raw asyncio server on 127.0.0.1:0; subclasses implement `handle`."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> _RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request is not None:
                self.requests.append(request)
                await self.handle(request, reader, writer)
        except (ConnectionError, OSError):
            return  # the proxy or the client cut it: expected here
        finally:
            writer.transport.close()

    async def handle(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError


class ResumableOrigin(_RawServer):
    """Ids 1..n from Last-Event-ID + 1, then [DONE]; variants rotate per connection."""

    def __init__(
        self,
        n: int,
        *,
        variants: Sequence[tuple[str, str]] = VARIANTS,
        burst: tuple[int, int] = (1, 40),
        retry_ms: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n = n
        self.variants = tuple(variants)
        self.burst = burst
        self.retry_ms = retry_ms
        self.rand = random.Random(seed)
        self.served: Counter[tuple[str, str]] = Counter()
        self.resumes = 0
        self._encoded = {
            name: [b""] + [event_bytes(i, eol) for i in range(1, n + 1)]
            for name, eol in EOLS.items()
        }

    async def handle(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        last = request.last_event_id
        start = int(last) + 1 if last.isdigit() else 1
        self.resumes += bool(last)
        if start > self.n:
            await send_head(writer, 204)
            return
        eol_name, framing = self.variants[len(self.requests) % len(self.variants)]
        self.served[(eol_name, framing)] += 1
        eol, chunked = EOLS[eol_name], framing == "chunked"
        await send_head(writer, 200, SSE_HEAD, chunked=chunked)
        wrap = chunk if chunked else bytes
        writer.write(wrap(b"retry: %d%s%s" % (self.retry_ms, eol, eol)))
        encoded = self._encoded[eol_name]
        i = start
        while i <= self.n:
            k = min(self.rand.randint(*self.burst), self.n + 1 - i)
            writer.write(wrap(b"".join(encoded[i : i + k])))
            i += k
            await writer.drain()
            await asyncio.sleep(0)  # let the proxy (same loop) interleave
        writer.write(wrap(b"data: [DONE]" + eol + eol))
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()


class ScriptedOrigin(_RawServer):
    """The k-th connection is answered by `steps[k]` (the last step repeats)."""

    def __init__(self, steps: Sequence[Handler]) -> None:
        super().__init__()
        self.steps = list(steps)

    async def handle(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        await step(request, reader, writer)


class HubOrigin:
    """An `ssenb.Hub` behind uvicorn on 127.0.0.1 (route `/events`); `restart()` replaces
    the server and the Hub, so events published before are gone from its replay buffer."""

    def __init__(
        self,
        run_asgi: Callable[..., Any],
        on_port: Callable[[int], None] | None = None,
        **hub_kw: Any,
    ) -> None:
        self._run_asgi = run_asgi
        self._on_port = on_port  # told the new port before the old server goes away
        self._hub_kw = hub_kw
        self._stack = ExitStack()
        self.hub: Any = None
        self.port = 0
        self.restarts = 0

    def start(self) -> HubOrigin:
        from starlette.applications import Starlette
        from starlette.requests import Request as StarletteRequest
        from starlette.routing import Route

        from ssenb import Hub

        old = self._stack
        self._stack = ExitStack()
        hub = Hub(**self._hub_kw)

        async def events(request: StarletteRequest) -> Any:
            return hub.response(request, heartbeat=None)

        app = Starlette(routes=[Route("/events", events)])
        url = self._stack.enter_context(self._run_asgi(app, timeout_graceful_shutdown=0))
        self.port = int(url.rsplit(":", 1)[1])
        if self._on_port is not None:
            self._on_port(self.port)
        if self.hub is not None:
            self.hub.close()
            self.restarts += 1
        self.hub = hub
        old.close()
        return self

    restart = start

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.close()
        self._stack.close()


def ids(events: Iterator[Any] | Sequence[Any]) -> list[str]:
    """The ids of `events`, for compact assertions."""
    return [e.id for e in events]
