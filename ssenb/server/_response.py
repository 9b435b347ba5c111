"""`EventStreamResponse`: a coalescing `text/event-stream` response.

Writes, not bytes, bound an event stream (a loopback `send()` costs ~4 us, so one write per
event caps near 175k events/s). So the producer never writes: it runs beside the sender and
appends encoded events to a buffer; the sender writes everything already waiting as one chunk.
When the producer waits between events each event is written at once; when it is faster than
the socket the buffer fills to `HIGH_WATER` and the producer waits for the sender
(backpressure). Sync producers run in their own daemon thread so a blocking `next()` never
stalls the event loop. Client disconnect and server stop end the stream within one loop turn
and clean the producer up (async generators are closed, producer threads told to stop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .._encoder import encode, encode_comment
from .._models import Event

__all__ = ["HIGH_WATER", "AbortConnection", "EventStreamResponse", "open_streams", "stop_streams"]

#: bytes buffered before a producer waits for the sender (also the largest usual write)
HIGH_WATER = 64 * 1024
_FIELDS = frozenset(Event._fields)
_PING = encode_comment("ping")
_log = logging.getLogger("ssenb.server")

# per event loop: the pipes of the streams it is serving (for stop and for status)
_LIVE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[_Pipe]] = (
    weakref.WeakKeyDictionary()
)
_STOPPING: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


class AbortConnection(Exception):
    """Raise from a producer to cut the connection mid-body, as a network fault would.

    Events produced before it are sent first; then the connection closes without the final
    empty chunk, so clients see a truncated body (not a clean end) and reconnect.
    """


def _event_from_mapping(item: Mapping[str, Any]) -> Event:
    # a mapping made of Event fields (with "data") is an event; anything else is JSON data
    if "data" in item and _FIELDS.issuperset(item):
        data = item["data"]
        eid = item.get("id")
        return Event(
            event=item.get("event") or "message",
            data=data if isinstance(data, str) else orjson.dumps(data).decode(),
            id="" if eid is None else str(eid),
            retry=item.get("retry"),
        )
    return Event(data=orjson.dumps(item).decode())


def to_bytes(item: Any) -> bytes:
    """Encode one producer item: `Event`, mapping, str (data), bytes (pre-encoded) or a list.

    A list or tuple (not an `Event`) is a batch: its items are encoded and joined, the fast
    path for producers that generate many events at a time.
    """
    kind = type(item)
    if kind is bytes:
        return item
    if kind is Event or isinstance(item, Event):
        return encode(item)
    if kind is str:
        return encode(Event(data=item))
    if isinstance(item, Mapping):
        return encode(_event_from_mapping(item))
    if isinstance(item, list | tuple):
        return b"".join([to_bytes(i) for i in item])
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise TypeError(
        f"a producer yielded {kind.__name__}; yield Event, dict, str, bytes or a list of them"
    )


def _error_event(exc: BaseException) -> bytes:
    payload = {"error": type(exc).__name__, "message": str(exc), "fatal": True}
    return encode(Event(event="error", data=orjson.dumps(payload).decode()))


class _Pipe:
    """Buffer between one producer and the sender, plus the stream's end state."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.chunks: deque[bytes] = deque()
        self.size = 0  # bytes buffered by an async producer (loop thread only)
        self.produced = 0  # bytes appended by a producer thread (that thread only)
        self.consumed = 0  # bytes the sender took from a producer thread (loop thread only)
        self.end: str | None = None  # "done", "error", "abort", "disconnect", "shutdown"
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.space: asyncio.Future[None] | None = None
        self.thread_space = threading.Event()
        self.thread_stop = threading.Event()
        self.wake_pending = False

    def wake(self, heartbeat: bool = False) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(heartbeat)

    def push(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        self.wake()

    def finish(self, end: str, error: BaseException | None = None) -> None:
        if self.end is None:
            self.end, self.error = end, error
        self.thread_stop.set()
        self.thread_space.set()
        self.wake()

    def take(self) -> bytes:
        chunks = self.chunks
        n = len(chunks)
        body = chunks.popleft() if n == 1 else b"".join([chunks.popleft() for _ in range(n)])
        self.size = 0
        self.consumed += len(body)
        space = self.space
        if space is not None and not space.done():
            space.set_result(None)
        self.thread_space.set()
        return body

    def _thread_wake(self) -> None:
        self.wake_pending = False
        self.wake()


async def _pump_async(source: AsyncIterable[Any], pipe: _Pipe) -> None:
    iterator: AsyncIterator[Any] = aiter(source)
    try:
        async for item in iterator:
            pipe.push(to_bytes(item))
            if pipe.size >= HIGH_WATER:
                pipe.space = pipe.loop.create_future()
                await pipe.space
    except AbortConnection:
        pipe.finish("abort")
    except Exception as exc:  # the stream reports it as an error event, the log keeps it
        _log.error("event producer failed", exc_info=exc)
        pipe.finish("error", exc)
    else:
        pipe.finish("done")
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _pump_thread(source: Iterable[Any], pipe: _Pipe) -> None:
    loop, stop = pipe.loop, pipe.thread_stop
    end: str = "done"
    error: BaseException | None = None

    def notify(callback: Any, *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed under us: nobody is listening any more
            stop.set()

    iterator: Iterator[Any] = iter(source)
    try:
        for item in iterator:
            if stop.is_set():
                return
            data = to_bytes(item)
            pipe.chunks.append(data)
            pipe.produced += len(data)
            if not pipe.wake_pending:
                pipe.wake_pending = True
                notify(pipe._thread_wake)
            while pipe.produced - pipe.consumed >= HIGH_WATER and not stop.is_set():
                pipe.thread_space.clear()
                if pipe.produced - pipe.consumed >= HIGH_WATER:
                    pipe.thread_space.wait(0.5)
    except AbortConnection:
        end = "abort"
    except Exception as exc:
        _log.error("event producer failed", exc_info=exc)
        end, error = "error", exc
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if not stop.is_set():
        notify(pipe.finish, end, error)


class EventStreamResponse(StreamingResponse):
    """Stream what `producer` yields as Server-Sent Events, coalescing waiting events.

    `producer` is a sync or async iterable (a generator, say) of `Event`s, mappings (Event
    fields, or any other dict sent as JSON data), strings (data), bytes (already encoded) or
    lists of these (batches). `heartbeat` seconds of silence send a `: ping` comment
    (None or 0: never) so proxies and idle timeouts keep the connection. A producer raising
    `AbortConnection` cuts the connection mid-body; any other exception is logged and sent
    as a final `error` event, then the stream ends cleanly.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        producer: AsyncIterable[Any] | Iterable[Any],
        *,
        heartbeat: float | None = 15.0,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if isinstance(producer, str | bytes | bytearray | Mapping | Event):
            raise TypeError("producer must be an iterable of events, not a single value")
        if not isinstance(producer, AsyncIterable | Iterable):
            raise TypeError(f"producer must be a (sync or async) iterable, not {producer!r}")
        if heartbeat is not None and heartbeat < 0:
            raise ValueError(f"heartbeat must be >= 0 seconds or None, not {heartbeat!r}")
        self.producer = producer
        self.heartbeat = heartbeat or None
        self.status_code = status_code
        self.background = background
        self.body_iterator = None  # type: ignore[assignment]  # the producer replaces it
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        merged.update(headers or {})
        self.init_headers(merged)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        pipe = _Pipe(loop)
        live = _LIVE.setdefault(loop, set())
        live.add(pipe)
        if loop in _STOPPING:
            pipe.finish("shutdown")
        listener = loop.create_task(_listen(receive, pipe), name="ssenb-listen")
        task: asyncio.Task[None] | None = None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if isinstance(self.producer, AsyncIterable):
                task = loop.create_task(_pump_async(self.producer, pipe), name="ssenb-pump")
            else:
                threading.Thread(
                    target=_pump_thread,
                    args=(self.producer, pipe),
                    name="ssenb-producer",
                    daemon=True,
                ).start()
            await self._send_all(send, pipe)
        finally:
            live.discard(pipe)
            pipe.finish("disconnect")
            listener.cancel()
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if pipe.end == "abort":
            raise AbortConnection("stream aborted by its producer")
        if pipe.end != "disconnect":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if self.background is not None:
                await self.background()

    async def _send_all(self, send: Send, pipe: _Pipe) -> None:
        loop, heartbeat = pipe.loop, self.heartbeat
        while True:
            if pipe.end is not None:
                if pipe.chunks and pipe.end != "disconnect":
                    body = pipe.take()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if pipe.end == "error" and pipe.error is not None:
                    err = _error_event(pipe.error)
                    await send({"type": "http.response.body", "body": err, "more_body": True})
                return
            if pipe.chunks:
                body = pipe.take()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                continue
            waiter: asyncio.Future[bool] = loop.create_future()
            pipe.waiter = waiter
            timer = loop.call_later(heartbeat, pipe.wake, True) if heartbeat else None
            try:
                idle = await waiter
            finally:
                pipe.waiter = None
                if timer is not None:
                    timer.cancel()
            if idle and not pipe.chunks and pipe.end is None:
                await send({"type": "http.response.body", "body": _PING, "more_body": True})


async def _listen(receive: Receive, pipe: _Pipe) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            pipe.finish("disconnect")
            return


def stop_streams(loop: asyncio.AbstractEventLoop) -> None:
    """End every stream served by `loop`, now and from now on (call it in that loop)."""
    _STOPPING.add(loop)
    for pipe in list(_LIVE.get(loop, ())):
        pipe.finish("shutdown")


def open_streams(loop: asyncio.AbstractEventLoop) -> int:
    """How many event streams `loop` is serving right now."""
    return len(_LIVE.get(loop, ()))
