"""`Hub`: one publisher, many subscribers, bounded memory, exact resume with Last-Event-ID.

Why it is fast: an event is encoded once, with its id, and appended to one shared log (a
deque of bytes under consecutive sequence numbers); a subscriber is only a cursor into it.
`publish()` appends and wakes: every subscriber waiting on one event loop awaits one shared
future, so waking them is one `set_result` (one `call_soon_threadsafe` from another thread,
skipped while a wake is already pending). A woken subscriber takes everything between its
cursor and the head at once, so its whole backlog goes out in one write.

Bounds (why it is safe): the log keeps the newest `max(buffer, queue)` events. A subscriber
more than `queue` events behind is dropped: it gets a final `error` event and ends, and its
connection is cut if it has not finished `DROP_GRACE` seconds later; nobody else waits for
it. A resume inside the log continues right after the client's id; an older or unknown id
gets an id-less `gap` event naming the first id still held, then everything held.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from itertools import islice
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._encoder import encode
from .._models import Event
from ._response import AbortConnection, EventStreamResponse, _event_from_mapping

__all__ = ["DROP_GRACE", "Hub", "Subscription"]

#: seconds a dropped subscriber's response may take to finish before its connection is cut
DROP_GRACE = 1.0
_BACKENDS = ("memory",)


def _as_event(item: Event | Mapping[str, Any] | str) -> Event:
    if isinstance(item, Event):
        return item
    if isinstance(item, str):
        return Event(data=item)
    if isinstance(item, Mapping):
        return _event_from_mapping(item)
    raise TypeError(f"publish() takes an Event, dict or str, not {type(item).__name__}")


def _control(event: str, payload: dict[str, Any]) -> bytes:
    # control frames carry no id, so they never move a client's Last-Event-ID
    return encode(Event(event=event, data=orjson.dumps(payload).decode()))


class Subscription:
    """One subscriber: an async iterator of lists of encoded events (bytes), oldest first.

    Each item holds everything pending, so serving it is one write. Ends after `close()`,
    after `Hub.close()` (once the pending events are taken) or, when dropped for falling
    more than `queue` events behind, after one final `error` event.
    """

    def __init__(self, hub: Hub, cursor: int, pending: list[bytes]) -> None:
        self._hub = hub
        self._cursor = cursor  # sequence number of the next event to take
        self._pending = pending  # replay (and gap) taken at subscribe time
        self._closed = False
        self.dropped = False
        self._on_drop: Any = None  # set by the response: arms the connection cut

    @property
    def last_event_id(self) -> str:
        """The id of the last event taken ("" before any)."""
        return self._hub._id_of(self._cursor - 1)

    def close(self) -> None:
        """Stop receiving; the iterator ends at its next step."""
        self._closed = True
        self._hub._forget(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> list[bytes]:
        return await self._step(False)  # type: ignore[return-value]

    async def _step(self, joined: bool) -> list[bytes] | bytes:
        hub = self._hub
        while True:
            if self._pending:
                parts, self._pending = self._pending, []
                return b"".join(parts) if joined else parts
            if self._closed:
                raise StopAsyncIteration
            with hub._lock:
                if self.dropped:
                    self._closed = True
                    final = self._drop_event()
                    return final if joined else [final]
                if self._cursor < hub._next:
                    taken = hub._take(self._cursor, joined)
                    self._cursor = hub._next
                    return taken
                if hub._closed:
                    self._closed = True
                    hub._subs.discard(self)
                    raise StopAsyncIteration
                waiter = hub._waiter(asyncio.get_running_loop())
            await asyncio.shield(waiter)  # shared by every waiter: never cancel it

    def _drop_event(self) -> bytes:
        behind = self._hub._queue
        payload = {
            "error": "SlowSubscriber",
            "message": f"dropped: more than {behind} events behind; reconnect to resume",
            "fatal": True,
            "last_event_id": self.last_event_id,
        }
        return _control("error", payload)


class Hub:
    """Fan events out to many subscribers, each with a bounded queue, with replay by id.

    `publish()` (any thread) encodes once and assigns the integer ids 1, 2, ... to events
    without one. `subscribe(last_event_id)` returns a `Subscription` that
    `EventStreamResponse` serves; `response(request)` does both for an endpoint.
    `backend` selects the store; only "memory" exists for now.
    """

    def __init__(self, *, buffer: int = 10_000, queue: int = 1_000, backend: str = "memory"):
        if backend not in _BACKENDS:
            raise ValueError(
                f"Hub backend {backend!r} is not available; supported: {', '.join(_BACKENDS)}"
                " (a shared backend such as Redis is planned)"
            )
        if buffer < 0 or queue < 1:
            raise ValueError(f"need buffer >= 0 and queue >= 1, got {buffer=}, {queue=}")
        self.backend = backend
        self.buffer, self._queue = buffer, queue
        self._cap = max(buffer, queue)  # events held: replay depth and slowest allowed reader
        self._lock = threading.Lock()
        self._log: deque[bytes] = deque()
        self._first = 1  # sequence number of _log[0]
        self._next = 1  # sequence number the next event gets
        self._ids: dict[str, int] = {}  # caller-given id -> sequence number (held events only)
        self._given: dict[int, str] = {}  # sequence number -> caller-given id
        self._subs: set[Subscription] = set()
        self._wakers: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        self._check_at = 1 + queue  # scan for slow subscribers once _next passes this
        self._dropped = 0
        self._closed = False
        self._cache: tuple[int, int, bytes] = (0, 0, b"")

    # -- publishing ----------------------------------------------------------------------

    def publish(self, event: Event | Mapping[str, Any] | str) -> str:
        """Send one event (Event, dict or str data) to every subscriber; returns its id."""
        return self.publish_many((event,))[-1]

    def publish_many(self, events: Iterable[Event | Mapping[str, Any] | str]) -> list[str]:
        """Send several events with one lock and one wake-up; returns their ids."""
        items = [_as_event(e) for e in events]
        ids: list[str] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("publish() on a closed Hub")
            log, seq = self._log, self._next
            for ev in items:
                etype, data, eid, retry = ev
                if eid:
                    self._ids[eid] = seq
                    self._given[seq] = eid
                    chunk = encode(ev)
                else:
                    eid = str(seq)
                    if retry is None and etype == "message" and "\n" not in data:
                        if "\r" not in data:
                            chunk = f"id: {eid}\ndata: {data}\n\n".encode()
                        else:
                            chunk = encode(Event(etype, data, eid, retry))
                    else:
                        chunk = encode(Event(etype, data, eid, retry))
                log.append(chunk)
                ids.append(eid)
                seq += 1
            self._next = seq
            excess = len(log) - self._cap
            if excess > 0:
                self._evict(excess)
            if seq > self._check_at:
                self._drop_slow()
            self._wake_all()
        return ids

    def _evict(self, n: int) -> None:
        log, given = self._log, self._given
        for _ in range(n):
            log.popleft()
            if given:
                eid = given.pop(self._first, None)
                if eid is not None and self._ids.get(eid) == self._first:
                    del self._ids[eid]
            self._first += 1

    def _drop_slow(self) -> None:
        # cursors only grow, so the slowest one bounds when the next scan can find anything
        head, limit, lowest = self._next, self._queue, self._next
        for sub in list(self._subs):
            if head - sub._cursor > limit:
                self._subs.discard(sub)
                sub.dropped = True
                self._dropped += 1
                if sub._on_drop is not None:
                    sub._on_drop()
            elif sub._cursor < lowest:
                lowest = sub._cursor
        self._check_at = lowest + limit

    def _waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        fut = self._wakers.get(loop)
        if fut is None:
            fut = self._wakers[loop] = loop.create_future()
        return fut

    def _wake_all(self) -> None:
        if not self._wakers:
            return
        wakers, self._wakers = self._wakers, {}
        running = asyncio._get_running_loop()
        for loop, fut in wakers.items():
            if loop is running:
                if not fut.done():
                    fut.set_result(None)
            else:
                try:
                    loop.call_soon_threadsafe(_settle, fut)
                except RuntimeError:  # that loop is closed: its subscribers are gone
                    pass

    # -- subscribing ---------------------------------------------------------------------

    def subscribe(self, last_event_id: str | None = None) -> Subscription:
        """A new subscriber: live from now, or resuming right after `last_event_id`.

        An id older than the log (or unknown to this hub) first yields a `gap` event with
        `first_id` (the oldest id held), then every held event: never a silent loss.
        """
        with self._lock:
            pending: list[bytes] = []
            cursor = self._next
            if last_event_id:
                seq = self._ids.get(last_event_id)
                if seq is None and last_event_id.isascii() and last_event_id.isdigit():
                    n = int(last_event_id)
                    seq = n if n < self._next else None
                if seq is not None and seq >= self._first - 1:
                    cursor = seq + 1
                else:
                    gap = {
                        "last_event_id": last_event_id,
                        "first_id": self._id_of(self._first) if self._log else None,
                        "missed": self._first - seq - 1 if seq is not None else None,
                        "reason": "evicted" if seq is not None else "unknown",
                    }
                    pending.append(_control("gap", gap))
                    cursor = self._first
                if cursor < self._next:
                    pending.extend(self._take(cursor))
                    cursor = self._next
            sub = Subscription(self, cursor, pending)
            if not self._closed:
                self._subs.add(sub)
            else:
                sub._closed = True
            return sub

    def response(
        self,
        request: Request | None = None,
        *,
        last_event_id: str | None = None,
        heartbeat: float | None = 15.0,
    ) -> Response:
        """An endpoint's answer: a subscription (resuming from the request's Last-Event-ID)
        served by `EventStreamResponse`; 204 once the hub is closed, so clients stop."""
        if self._closed:
            return Response(status_code=204)
        if last_event_id is None and request is not None:
            last_event_id = request.headers.get("last-event-id", "").strip() or None
        return _HubResponse(self.subscribe(last_event_id), heartbeat=heartbeat)

    # -- state ---------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """subscribers, published, dropped, buffered (events held), the ids held, and
        behind: how many events the slowest subscriber has yet to take."""
        with self._lock:
            slowest = min((s._cursor for s in self._subs), default=self._next)
            return {
                "subscribers": len(self._subs),
                "behind": self._next - slowest,
                "published": self._next - 1,
                "dropped": self._dropped,
                "buffered": len(self._log),
                "first_id": self._id_of(self._first) if self._log else None,
                "last_id": self._id_of(self._next - 1) if self._log else None,
            }

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every subscriber cleanly (after the events it has pending); later publishes
        raise, later `response()` calls answer 204."""
        with self._lock:
            self._closed = True
            self._wake_all()

    def __repr__(self) -> str:
        s = self.stats
        state = "closed" if self._closed else "open"
        return (
            f"<ssenb.Hub {state}: {s['subscribers']} subscribers, {s['published']} published,"
            f" {s['dropped']} dropped, {s['buffered']} buffered>"
        )

    # -- internals (called with the lock held) --------------------------------------------

    def _id_of(self, seq: int) -> str:
        return self._given.get(seq, str(seq)) if seq > 0 else ""

    def _take(self, cursor: int, joined: bool = False) -> Any:
        head = self._next
        if joined:
            c0, h0, chunk = self._cache
            if c0 != cursor or h0 != head:  # subscribers woken together share one chunk
                chunk = b"".join(self._take(cursor))
                self._cache = (cursor, head, chunk)
            return chunk
        parts = list(islice(reversed(self._log), head - cursor))
        parts.reverse()
        return parts

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _joined(sub: Subscription) -> AsyncIterator[bytes]:
    try:
        while True:
            try:
                chunk = await sub._step(True)
            except StopAsyncIteration:
                return
            yield chunk  # type: ignore[misc]
    finally:
        sub.close()


class _HubResponse(EventStreamResponse):
    """Serves one subscription; cuts the connection of a dropped subscriber that is stuck
    (a frozen client never reads its final event), after `DROP_GRACE` seconds."""

    def __init__(self, sub: Subscription, *, heartbeat: float | None) -> None:
        super().__init__(_joined(sub), heartbeat=heartbeat)
        self.subscription = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        cut: list[asyncio.TimerHandle] = []
        fired: list[bool] = []

        def fire() -> None:
            fired.append(True)
            task.cancel()

        def arm() -> None:
            if not task.done():
                cut.append(loop.call_later(DROP_GRACE, fire))

        def on_drop() -> None:  # runs in the publisher's thread, hub lock held
            try:
                loop.call_soon_threadsafe(arm)
            except RuntimeError:
                pass

        self.subscription._on_drop = on_drop
        if self.subscription.dropped:
            arm()
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            if fired and task.uncancel() == 0:  # our own cut, not a server stop
                raise AbortConnection("slow subscriber dropped") from None
            raise
        finally:
            for handle in cut:
                handle.cancel()
            self.subscription.close()
