"""One event stream's session on its event loop, shared by every SSE response of ssenb.

`SessionResponse.__call__` opens a `StreamSession` around a response body: while it is open
the session is registered as live on its loop (so `stop_streams(loop)` ends it at server stop
and `open_streams(loop)` counts it for status), a listener task turns the client's
`http.disconnect` into the end `"disconnect"`, and `wait(waiter)` is the idle wait: `waiter`
is settled by new data or an end, or, after `heartbeat` seconds of nothing, with True so the
caller writes a `: ping` comment. One heartbeat timer per session, re-armed only
when it fires, checks the idle time: a wait costs no timer of its own (a busy stream waits
once per write). After the body, the response ends cleanly with the
final empty chunk, or, when a producer raised `AbortConnection`, cuts the connection.

`EventStreamResponse` (producer pipe, `_response.py`) and the hub's response
(`hub/_response.py`) only say how their body is written: `SessionResponse.stream()`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .._encoder import encode_comment

__all__ = [
    "PING",
    "AbortConnection",
    "SessionResponse",
    "StreamSession",
    "open_streams",
    "stop_streams",
]

#: the heartbeat comment an idle stream writes
PING = encode_comment("ping")

# per event loop: the sessions of the streams it is serving (for stop and for status)
_LIVE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[StreamSession]] = (
    weakref.WeakKeyDictionary()
)
_STOPPING: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


class AbortConnection(Exception):
    """Raise from a producer to cut the connection mid-body, as a network fault would.

    Events produced before it are sent first; then the connection closes without the final
    empty chunk, so clients see a truncated body (not a clean end) and reconnect.
    """


class StreamSession:
    """The end state, idle wait and live registration of one stream on `loop`.

    `end` is None while the stream runs, then the first reason given to `finish()`: "done",
    "error" (with `error`), "abort", "disconnect" or "shutdown". `finish()` also settles the
    future the sender waits on, so any end is seen within one loop turn.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, heartbeat: float | None) -> None:
        self.loop = loop
        self.heartbeat = heartbeat
        self.end: str | None = None
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self._idle_since = 0.0  # loop time the current wait began
        self._beat: asyncio.TimerHandle | None = None
        self._listener: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Settle the future the sender waits on (with False: not a heartbeat), if any."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(False)

    def finish(self, end: str, error: BaseException | None = None) -> None:
        """End the stream (the first reason given wins) and wake the sender."""
        if self.end is None:
            self.end, self.error = end, error
        self.wake()

    def wait(self, waiter: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Arm the idle wait on `waiter` (a future whoever has data settles, as `finish()`
        does) and return it to await: it is settled with True when `heartbeat` seconds
        pass first."""
        self.waiter = waiter
        if self.heartbeat:
            self._idle_since = now = self.loop.time()
            if self._beat is None:
                self._beat = self.loop.call_at(now + self.heartbeat, self._check)
        return waiter

    def _check(self) -> None:
        # the heartbeat timer: ping a stream idle for `heartbeat` s, else look again when due
        assert self.heartbeat
        self._beat = None
        if self.end is not None:
            return
        waiter, loop = self.waiter, self.loop
        if waiter is None or waiter.done():  # busy writing: look again a heartbeat later
            self._beat = loop.call_later(self.heartbeat, self._check)
            return
        due = self._idle_since + self.heartbeat
        if loop.time() >= due - 0.001:
            waiter.set_result(True)  # the next wait() arms the timer again
        else:
            self._beat = loop.call_at(due, self._check)

    def open(self, receive: Receive) -> None:
        """Register as live (ended at once when the loop's server is stopping) and listen for
        the client hanging up."""
        loop = self.loop
        _LIVE.setdefault(loop, set()).add(self)
        if loop in _STOPPING:
            self.finish("shutdown")
        self._listener = loop.create_task(self._listen(receive), name="ssenb-listen")

    def close(self) -> None:
        """Unregister and stop listening; an end not reached otherwise is a disconnect."""
        live = _LIVE.get(self.loop)
        if live is not None:
            live.discard(self)
        self.finish("disconnect")
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if self._listener is not None:
            self._listener.cancel()

    async def _listen(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.finish("disconnect")
                return


class SessionResponse(StreamingResponse):
    """A `text/event-stream` response whose body `stream()` writes inside a `StreamSession`.

    Sets `Cache-Control: no-cache` and `X-Accel-Buffering: no` (so proxies pass events on at
    once); `heartbeat` seconds of silence send a `: ping` comment (None or 0: never).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        *,
        heartbeat: float | None = 15.0,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if heartbeat is not None and heartbeat < 0:
            raise ValueError(f"heartbeat must be >= 0 seconds or None, not {heartbeat!r}")
        self.heartbeat = heartbeat or None
        self.status_code = status_code
        self.background = background
        self.body_iterator = None  # type: ignore[assignment]  # stream() writes the body
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        merged.update(headers or {})
        self.init_headers(merged)

    def session(self, loop: asyncio.AbstractEventLoop) -> StreamSession:
        """The session this response runs in (a subclass may keep more state in it)."""
        return StreamSession(loop, self.heartbeat)

    async def start(self, send: Send) -> None:
        """Send the status line and headers."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

    async def stream(self, send: Send, session: StreamSession) -> None:
        """Send the start (`start()`) and the body until `session.end` is set or the body is
        over; raise `AbortConnection` to cut the connection."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self.session(asyncio.get_running_loop())
        session.open(receive)
        try:
            await self.stream(send, session)
        finally:
            session.close()
        if session.end == "abort":
            raise AbortConnection("stream aborted by its producer")
        if session.end != "disconnect":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if self.background is not None:
                await self.background()


def stop_streams(loop: asyncio.AbstractEventLoop) -> None:
    """End every stream served by `loop`, now and from now on (call it in that loop)."""
    _STOPPING.add(loop)
    for session in list(_LIVE.get(loop, ())):
        session.finish("shutdown")


def open_streams(loop: asyncio.AbstractEventLoop) -> int:
    """How many event streams `loop` is serving right now."""
    return len(_LIVE.get(loop, ()))
