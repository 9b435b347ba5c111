"""`Hub`: one publisher, many subscribers, bounded memory, exact resume with Last-Event-ID.

Fast: an event is encoded once, with its id, into one shared log (a deque of bytes under
consecutive sequence numbers); a subscriber is a cursor into it. `publish()` appends and
settles the futures of the subscribers waiting (one `call_soon_threadsafe` per event loop
when called from another thread). A woken subscriber takes everything from its cursor to
the head as one bytes object (shared by subscribers woken together): one write per wake.

Bounded: the log keeps the newest `max(buffer, queue)` events. A subscriber more than
`queue` events behind is dropped with a final `error` event (its connection is cut if it is
still stuck `DROP_GRACE` s later); nobody else waits for it. A resume inside the log goes on
right after the client's id; an older or unknown id gets an id-less `gap` event naming the
first id still held, then everything held: never a silent loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any, Self

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .._encoder import encode
from .._models import Event
from ._hub_response import DROP_GRACE, HubResponse
from ._response import _event_from_mapping

__all__ = ["DROP_GRACE", "Hub", "Subscription"]

_BACKENDS = ("memory",)
_REDIS = ("redis://", "rediss://", "unix://")


def _as_event(item: Event | Mapping[str, Any] | str) -> Event:
    if isinstance(item, Event):
        return item
    if isinstance(item, str):
        return Event(data=item)
    if isinstance(item, Mapping):
        return _event_from_mapping(item)
    raise TypeError(f"publish() takes an Event, dict or str, not {type(item).__name__}")


def _plain(data: str) -> bool:
    return "\n" not in data and "\r" not in data


def _control(event: str, payload: dict[str, Any]) -> bytes:
    # control frames carry no id, so they never move a client's Last-Event-ID
    return encode(Event(event=event, data=orjson.dumps(payload).decode()))


class Polling:
    """Async iteration over `_poll`: each step takes what is pending, or awaits `waiter` (a
    future armed by `_poll` and settled by the next publish or close). Both hub backends'
    subscriptions share it."""

    waiter: asyncio.Future[Any] | None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[bytes]:
        loop = asyncio.get_running_loop()
        while (taken := self._poll(False, loop)) is None:
            await self.waiter  # type: ignore[misc]
        return taken  # type: ignore[return-value]

    async def open(self) -> None:
        """Awaited before the response headers go out: the subscriber's position is fixed
        once it returns (the memory hub fixes it at subscribe time)."""

    def _poll(self, joined: bool, loop: asyncio.AbstractEventLoop) -> list[bytes] | bytes | None:
        raise NotImplementedError


class Subscription(Polling):
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
        self.waiter: asyncio.Future[Any] | None = None

    @property
    def last_event_id(self) -> str:
        """The id this subscriber is past: resuming with it continues exactly."""
        return self._hub._id_of(self._cursor - 1)

    def close(self) -> None:
        """Stop receiving; the iterator ends at its next step."""
        self._closed = True
        self._hub._forget(self)

    def _poll(self, joined: bool, loop: asyncio.AbstractEventLoop) -> list[bytes] | bytes | None:
        """Take everything pending (joined: as one bytes); None when there is nothing yet,
        after arming `self.waiter`, a future the next publish (or close) settles."""
        if self._pending:
            parts, self._pending = self._pending, []
            return b"".join(parts) if joined else parts
        if self._closed:
            raise StopAsyncIteration
        hub = self._hub
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
            self.waiter = loop.create_future()
            hub._waiting.setdefault(loop, {})[self] = self.waiter
            return None

    def _drop_event(self) -> bytes:
        message = f"dropped: more than {self._hub._queue} events behind; reconnect to resume"
        info = {"error": "SlowSubscriber", "message": message, "fatal": True}
        return _control("error", {**info, "last_event_id": self.last_event_id})


class Hub:
    """Fan events out to many subscribers, each with a bounded queue, with replay by id.

    `publish()` (any thread) encodes once and assigns increasing integer ids to events without
    one, starting at `start`. The default, "clock", starts at the current time in microseconds,
    so a hub that restarts behind the same URL never reissues an id an earlier incarnation
    gave out: a client resuming with an old id gets a `gap` event, never silent loss.
    `start=1` gives 1, 2, ... (fine when nothing resumes across restarts).
    `subscribe(last_event_id)` returns a `Subscription` that
    `EventStreamResponse` serves; `response(request)` does both for an endpoint.
    `backend` selects the store: "memory", or a `redis://host:port/db?stream=name` URL, which
    returns a `RedisHub` (`_hub_redis.py`; `buffer` becomes the stream's MAXLEN, ids are the
    stream's ids, `start` does not apply).
    """

    def __new__(cls, *args: Any, backend: str = "memory", **kwargs: Any) -> Any:
        if isinstance(backend, str) and backend.startswith(_REDIS):
            from ._hub_redis import RedisHub

            if kwargs.pop("start", "clock") != "clock":
                raise ValueError("start does not apply to a Redis hub: ids are stream ids")
            buffer, queue = kwargs.pop("buffer", 10_000), kwargs.pop("queue", 1_000)
            return RedisHub(backend, maxlen=buffer, queue=queue, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        buffer: int = 10_000,
        queue: int = 1_000,
        backend: str = "memory",
        start: int | str = "clock",
    ):
        if backend not in _BACKENDS:  # redis:// URLs were dispatched in __new__
            raise ValueError(
                f"Hub backend {backend!r} is not available; use 'memory' or a redis:// URL"
            )
        if buffer < 0 or queue < 1:
            raise ValueError(f"need buffer >= 0 and queue >= 1, got {buffer=}, {queue=}")
        self.backend = backend
        self.buffer, self._queue = buffer, queue
        self._cap = max(buffer, queue)  # events held: replay depth and slowest allowed reader
        self._lock = threading.Lock()
        self._log: deque[bytes] = deque()
        if start == "clock":
            start = time.time_ns() // 1000
        if not isinstance(start, int) or start < 1:
            raise ValueError(f"start must be 'clock' or an int >= 1, got {start!r}")
        self._start = start  # ids below it were never issued by this hub
        self._first = start  # sequence number of _log[0]
        self._next = start  # sequence number the next event gets
        self._ids: dict[str, int] = {}  # caller-given id -> sequence number (held events only)
        self._given: dict[int, str] = {}  # sequence number -> caller-given id
        self._subs: set[Subscription] = set()
        # per event loop, the subscribers waiting there (each on its own future)
        self._waiting: dict[asyncio.AbstractEventLoop, dict[Subscription, asyncio.Future[Any]]] = {}
        self._check_at = start + queue  # scan for slow subscribers once _next passes this
        self._dropped = 0
        self._closed = False
        self._cache: tuple[int, int, bytes] = (0, 0, b"")

    def publish(self, event: Event | Mapping[str, Any] | str) -> str:
        """Send one event (Event, dict or str data) to every subscriber; returns its id."""
        return self.publish_many((event,))[-1]

    def publish_many(self, events: Iterable[Event | Mapping[str, Any] | str]) -> list[str]:
        """Send several events with one lock and one wake-up; returns their ids."""
        items = [_as_event(e) for e in events]
        ids: list[str] = []
        chunks: list[bytes]
        given: list[tuple[int, str]]
        with self._lock:
            if self._closed:
                raise RuntimeError("publish() on a closed Hub")
            seq, chunks, given = self._next, [], []  # encode all first: a refusal changes nothing
            for etype, data, eid, retry in items:
                if eid:
                    given.append((seq, eid))
                    chunk = encode(Event(etype, data, eid, retry))
                else:
                    eid = str(seq)
                    if retry is None and etype == "message" and _plain(data):
                        chunk = f"id: {eid}\ndata: {data}\n\n".encode()
                    else:
                        chunk = encode(Event(etype, data, eid, retry))
                chunks.append(chunk)
                ids.append(eid)
                seq += 1
            log = self._log
            log.extend(chunks)
            for at, eid in given:
                self._ids[eid], self._given[at] = at, eid
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
                    with contextlib.suppress(RuntimeError):  # its loop closed: nobody to cut
                        sub._on_drop()
            elif sub._cursor < lowest:
                lowest = sub._cursor
        self._check_at = lowest + limit

    def _wake_all(self) -> None:
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, {}
        running = asyncio._get_running_loop()
        for loop, futures in waiting.items():
            if loop is running:
                _settle(futures)
            else:
                try:
                    loop.call_soon_threadsafe(_settle, futures)
                except RuntimeError:  # that loop is closed: its subscribers are gone
                    pass

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
                    seq = n if self._start - 1 <= n < self._next else None
                if seq is not None and seq >= self._first - 1:
                    cursor = seq + 1
                else:
                    first = self._id_of(self._first) if self._log else None
                    missed, why = (
                        (None, "unknown") if seq is None else (self._first - seq - 1, "evicted")
                    )
                    gap = {"first_id": first, "missed": missed, "reason": why}
                    pending.append(_control("gap", {"last_event_id": last_event_id, **gap}))
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
        self, request: Request | None = None, *, last_event_id: str | None = None,
        heartbeat: float | None = 15.0,
    ) -> Response:  # fmt: skip
        """An endpoint's answer: a subscription (resuming from the request's Last-Event-ID)
        served by `EventStreamResponse`; 204 once the hub is closed, so clients stop."""
        if self._closed:
            return Response(status_code=204)
        if last_event_id is None and request is not None:
            last_event_id = request.headers.get("last-event-id", "").strip() or None
        return HubResponse(self.subscribe(last_event_id), heartbeat=heartbeat)

    @property
    def stats(self) -> dict[str, Any]:
        """Counts, the ids held, and `behind`: events the slowest subscriber has yet to take."""
        with self._lock:
            slowest = min((s._cursor for s in self._subs), default=self._next)
            return {
                "subscribers": len(self._subs),
                "behind": self._next - slowest,
                "published": self._next - self._start,
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
        s, state = self.stats, "closed" if self._closed else "open"
        counts = ", ".join(f"{s[k]} {k}" for k in ("subscribers", "published", "dropped"))
        return f"<ssenb.Hub {state}: {counts}, {s['buffered']} buffered>"

    # internals, called with the lock held

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


def _settle(futures: dict[Subscription, asyncio.Future[Any]]) -> None:
    for fut in futures.values():
        if not fut.done():
            fut.set_result(None)
