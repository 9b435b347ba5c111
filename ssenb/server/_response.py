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
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.types import Send

from .._encoder import encode
from .._models import Event
from ._session import (
    PING,
    AbortConnection,
    SessionResponse,
    StreamSession,
    open_streams,
    stop_streams,
)

__all__ = [
    "HIGH_WATER",
    "AbortConnection",
    "EventStreamResponse",
    "as_event",
    "event_from_mapping",
    "open_streams",
    "stop_streams",
    "to_bytes",
]

#: bytes buffered before a producer waits for the sender (also the largest usual write)
HIGH_WATER = 64 * 1024
_FIELDS = frozenset(Event._fields)
_log = logging.getLogger("ssenb.server")


def event_from_mapping(item: Mapping[str, Any]) -> Event:
    """A mapping made of Event fields (with "data") is that event; any other is JSON data."""
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
        raw: bytes = item
        return raw
    if kind is Event or isinstance(item, Event):
        return encode(item)
    if kind is str:
        return encode(Event(data=item))
    if isinstance(item, Mapping):
        return encode(event_from_mapping(item))
    if isinstance(item, list | tuple):
        return b"".join([to_bytes(i) for i in item])
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise TypeError(
        f"a producer yielded {kind.__name__}; yield Event, dict, str, bytes or a list of them"
    )


def as_event(item: Event | Mapping[str, Any] | str) -> Event:
    """One published item as an `Event`: an Event, a mapping (as `event_from_mapping`) or a
    str (the data); anything else is a TypeError."""
    if isinstance(item, Event):
        return item
    if isinstance(item, str):
        return Event(data=item)
    if isinstance(item, Mapping):
        return event_from_mapping(item)
    raise TypeError(f"publish() takes an Event, dict or str, not {type(item).__name__}")


def _error_event(exc: BaseException) -> bytes:
    payload = {"error": type(exc).__name__, "message": str(exc), "fatal": True}
    return encode(Event(event="error", data=orjson.dumps(payload).decode()))


class _Pipe(StreamSession):
    """The session of one `EventStreamResponse`, plus the buffer between its producer and
    the sender."""

    def __init__(self, loop: asyncio.AbstractEventLoop, heartbeat: float | None) -> None:
        super().__init__(loop, heartbeat)
        self.chunks: deque[bytes] = deque()
        self.size = 0  # bytes buffered by an async producer (loop thread only)
        self.produced = 0  # bytes appended by a producer thread (that thread only)
        self.consumed = 0  # bytes the sender took from a producer thread (loop thread only)
        self.space: asyncio.Future[None] | None = None
        self.thread_space = threading.Event()
        self.thread_stop = threading.Event()
        self.wake_pending = False

    def push(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        self.wake()

    def finish(self, end: str, error: BaseException | None = None) -> None:
        super().finish(end, error)
        self.thread_stop.set()  # a producer thread stops at its next item
        self.thread_space.set()

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

    def notify(callback: Callable[..., None], *args: Any) -> None:
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


class EventStreamResponse(SessionResponse):
    """Stream what `producer` yields as Server-Sent Events, coalescing waiting events.

    `producer` is a sync or async iterable (a generator, say) of `Event`s, mappings (Event
    fields, or any other dict sent as JSON data), strings (data), bytes (already encoded) or
    lists of these (batches). `heartbeat` seconds of silence send a `: ping` comment
    (None or 0: never) so proxies and idle timeouts keep the connection. A producer raising
    `AbortConnection` cuts the connection mid-body; any other exception is logged and sent
    as a final `error` event, then the stream ends cleanly.
    """

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
        super().__init__(
            heartbeat=heartbeat, status_code=status_code, headers=headers, background=background
        )
        self.producer = producer

    def session(self, loop: asyncio.AbstractEventLoop) -> _Pipe:
        return _Pipe(loop, self.heartbeat)

    async def stream(self, send: Send, session: StreamSession) -> None:
        assert isinstance(session, _Pipe)
        pipe, loop = session, session.loop
        task: asyncio.Task[None] | None = None
        try:
            await self.start(send)
            if isinstance(self.producer, AsyncIterable):
                task = loop.create_task(_pump_async(self.producer, pipe), name="ssenb-pump")
            else:
                threading.Thread(
                    target=_pump_thread,
                    args=(self.producer, pipe),
                    name="ssenb-producer",
                    daemon=True,
                ).start()
            await _send_all(send, pipe)
        finally:
            pipe.finish("disconnect")  # no-op when it ended otherwise; stops a producer thread
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass


async def _send_all(send: Send, pipe: _Pipe) -> None:
    loop = pipe.loop
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
        idle = await pipe.wait(loop.create_future())
        if idle is True and not pipe.chunks and pipe.end is None:
            await send({"type": "http.response.body", "body": PING, "more_body": True})
