"""`HubResponse`: how a hub subscription is served, by any backend.

One task per subscriber and no producer pipe: the store already is the buffer, so each wake
takes the subscriber's whole backlog (one bytes object, shared by the subscribers woken
together) and writes it at once. It runs in the same `StreamSession` as
`EventStreamResponse` (`_session.py`), so headers, heartbeats, client disconnect and server
stop behave exactly the same.
"""

from __future__ import annotations

import asyncio

from starlette.types import Send

from .._session import PING, AbortConnection, SessionResponse, StreamSession
from ._backend import HubSubscription

__all__ = ["DROP_GRACE", "HubResponse"]

#: seconds a dropped subscriber's response may take to finish before its connection is cut
DROP_GRACE = 1.0


class HubResponse(SessionResponse):
    """Serve one subscription: each wake writes the whole backlog. A dropped subscriber still
    stuck after `DROP_GRACE` s (a frozen client) is cut off."""

    def __init__(self, sub: HubSubscription, *, heartbeat: float | None = 15.0) -> None:
        super().__init__(heartbeat=heartbeat)
        self.subscription = sub

    async def stream(self, send: Send, session: StreamSession) -> None:
        loop, task, sub = session.loop, asyncio.current_task(), self.subscription
        assert task is not None
        cut: list[bool] = []

        def fire() -> None:
            if not task.done():
                cut.append(True)
                task.cancel()

        def on_drop() -> None:  # the backend calls this in the publisher's thread
            loop.call_soon_threadsafe(loop.call_later, DROP_GRACE, fire)

        sub.on_drop = on_drop
        if sub.dropped:
            loop.call_later(DROP_GRACE, fire)
        try:
            await sub.open()  # the position is fixed before the client sees the headers
            await self.start(send)
            await _serve(send, session, sub)
        except asyncio.CancelledError:
            if cut and task.uncancel() == 0:  # our own cut, not a server stop
                raise AbortConnection("slow subscriber dropped") from None
            raise
        finally:
            sub.close()


async def _serve(send: Send, session: StreamSession, sub: HubSubscription) -> None:
    loop = session.loop
    while True:
        try:
            chunk = sub.poll(loop, True) if session.end != "disconnect" else None
        except StopAsyncIteration:
            session.finish("done")
            return
        if session.end is not None:  # stopped: what was published before still goes out
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            return
        if chunk is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            continue
        assert sub.waiter is not None  # armed by poll(); a publish, close, stop or hang-up sets it
        if await session.wait(sub.waiter) is True and session.end is None:
            await send({"type": "http.response.body", "body": PING, "more_body": True})
