"""`HubResponse`: how a `Hub` subscription is served (see `_hub.py`).

One task per subscriber and no producer pipe: the hub already is the buffer, so each wake
takes the subscriber's whole backlog (one bytes object, shared by the subscribers woken
together) and writes it at once. It reuses `EventStreamResponse`'s headers and its stream
registry, so heartbeats, client disconnect and server stop behave exactly the same.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from . import _response as _r
from ._response import AbortConnection, EventStreamResponse

if TYPE_CHECKING:
    from ._hub import Subscription

__all__ = ["DROP_GRACE", "HubResponse"]

#: seconds a dropped subscriber's response may take to finish before its connection is cut
DROP_GRACE = 1.0


class HubResponse(EventStreamResponse):
    """`EventStreamResponse` for one subscription, served by one task (the hub is the
    buffer, so no producer task or pipe in between): each wake writes the whole backlog.
    Headers, heartbeats, disconnect and server stop behave as in `EventStreamResponse`; a
    dropped subscriber still stuck after `DROP_GRACE` s (a frozen client) is cut off."""

    def __init__(self, sub: Subscription, *, heartbeat: float | None) -> None:
        super().__init__((), heartbeat=heartbeat)
        self.subscription = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop, task, sub = asyncio.get_running_loop(), asyncio.current_task(), self.subscription
        assert task is not None
        pipe = _r._Pipe(loop)  # only its end state, waiter and stop registration are used
        live = _r._LIVE.setdefault(loop, set())
        live.add(pipe)
        if loop in _r._STOPPING:
            pipe.finish("shutdown")
        listener = loop.create_task(_r._listen(receive, pipe), name="ssenb-listen")
        cut: list[bool] = []

        def fire() -> None:
            if not task.done():
                cut.append(True)
                task.cancel()

        # the hub calls this in the publisher's thread
        sub._on_drop = lambda: loop.call_soon_threadsafe(loop.call_later, DROP_GRACE, fire)
        if sub.dropped:
            loop.call_later(DROP_GRACE, fire)
        try:
            await sub.open()  # the position is fixed before the client sees the headers
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})  # fmt: skip
            await self._serve(send, pipe)
        except asyncio.CancelledError:
            if cut and task.uncancel() == 0:  # our own cut, not a server stop
                raise AbortConnection("slow subscriber dropped") from None
            raise
        finally:
            live.discard(pipe)
            pipe.finish("disconnect")  # no-op when it already ended otherwise
            listener.cancel()
            sub.close()
        if pipe.end != "disconnect":
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _serve(self, send: Send, pipe: _r._Pipe) -> None:
        sub, loop, heartbeat = self.subscription, pipe.loop, self.heartbeat
        while True:
            try:
                chunk = sub._poll(True, loop) if pipe.end != "disconnect" else None
            except StopAsyncIteration:
                pipe.finish("done")
                return
            if pipe.end is not None:  # stopped: what was published before still goes out
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                return
            if chunk is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                continue
            waiter = pipe.waiter = sub.waiter  # a publish, close, stop or disconnect sets it
            timer = loop.call_later(heartbeat, pipe.wake, True) if heartbeat else None
            try:
                idle = await waiter  # type: ignore[misc]
            finally:
                pipe.waiter = None
                if timer is not None:
                    timer.cancel()
            if idle is True and pipe.end is None:
                await send({"type": "http.response.body", "body": _r._PING, "more_body": True})
