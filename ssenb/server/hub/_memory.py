"""The in-memory hub backend: one process, bounded memory, exact resume with Last-Event-ID.

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
from collections.abc import Iterable
from itertools import islice
from typing import Any

from ..._encoder import encode
from ..._models import Event
from .._response import as_event
from ._backend import HubBackend, HubStats, HubSubscription, Publishable, control_frame

__all__ = ["MemoryBackend", "MemorySubscription"]


class MemorySubscription(HubSubscription):
    """One subscriber of a `MemoryBackend`: a cursor into its log (see `HubSubscription`).

    Dropped for falling more than `queue` events behind, it ends with one `error` event.
    """

    def __init__(self, hub: MemoryBackend, cursor: int, pending: list[bytes]) -> None:
        super().__init__()
        self._hub = hub
        self._cursor = cursor  # sequence number of the next event to take
        self._pending = pending  # replay (and gap) taken at subscribe time
        self._closed = False

    @property
    def last_event_id(self) -> str:
        return self._hub._id_of(self._cursor - 1)

    def close(self) -> None:
        self._closed = True
        self._hub._forget(self)

    def poll(
        self, loop: asyncio.AbstractEventLoop, joined: bool = False
    ) -> list[bytes] | bytes | None:
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
        return control_frame("error", {**info, "last_event_id": self.last_event_id})


class MemoryBackend(HubBackend):
    """The default store: a bounded log in this process (see the module docstring).

    `publish()` (any thread) encodes once and assigns increasing integer ids to events without
    one, starting at `start`. The default, "clock", starts at the current time in microseconds,
    so a hub that restarts behind the same URL never reissues an id an earlier incarnation
    gave out: a client resuming with an old id gets a `gap` event, never silent loss.
    `start=1` gives 1, 2, ... (fine when nothing resumes across restarts). Caller-given ids
    are kept and resume exactly too.
    """

    def __init__(
        self, url: str = "memory", *, buffer: int = 10_000, queue: int = 1_000,
        start: int | str = "clock",
    ) -> None:  # fmt: skip
        if url not in ("memory", "memory://"):
            raise ValueError(f"the memory backend takes no address: 'memory', not {url!r}")
        if buffer < 0 or queue < 1:
            raise ValueError(f"need buffer >= 0 and queue >= 1, got {buffer=}, {queue=}")
        if start == "clock":
            start = time.time_ns() // 1000
        if not isinstance(start, int) or start < 1:
            raise ValueError(f"start must be 'clock' or an int >= 1, got {start!r}")
        self.url = "memory"
        self.buffer, self._queue = buffer, queue
        self._cap = max(buffer, queue)  # events held: replay depth and slowest allowed reader
        self._lock = threading.Lock()
        self._log: deque[bytes] = deque()
        self._start = start  # ids below it were never issued by this hub
        self._first = start  # sequence number of _log[0]
        self._next = start  # sequence number the next event gets
        self._ids: dict[str, int] = {}  # caller-given id -> sequence number (held events only)
        self._given: dict[int, str] = {}  # sequence number -> caller-given id
        self._subs: set[MemorySubscription] = set()
        # per event loop, the subscribers waiting there (each on its own future)
        self._waiting: dict[
            asyncio.AbstractEventLoop, dict[MemorySubscription, asyncio.Future[Any]]
        ] = {}
        self._check_at = start + queue  # scan for slow subscribers once _next passes this
        self._dropped = 0
        self._closed = False
        self._cache: tuple[int, int, bytes] = (0, 0, b"")

    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        """Send several events with one lock and one wake-up; returns their ids."""
        items = [as_event(e) for e in events]
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
                    # encode_with_id() inlined: this loop is the publisher's cost per event
                    plain = "\n" not in data and "\r" not in data
                    if retry is None and etype == "message" and plain:
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
                if sub.on_drop is not None:
                    with contextlib.suppress(RuntimeError):  # its loop closed: nobody to cut
                        sub.on_drop()
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

    def subscribe(self, last_event_id: str | None = None) -> MemorySubscription:
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
                    pending.append(control_frame("gap", {"last_event_id": last_event_id, **gap}))
                    cursor = self._first
                if cursor < self._next:
                    pending.extend(self._parts(cursor))
                    cursor = self._next
            sub = MemorySubscription(self, cursor, pending)
            if not self._closed:
                self._subs.add(sub)
            else:
                sub._closed = True
            return sub

    @property
    def stats(self) -> HubStats:
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

    def ping(self) -> None:
        """An in-process store always answers."""

    def summary(self) -> str:
        s, state = self.stats, "closed" if self._closed else "open"
        return (
            f"{state}: {s['subscribers']} subscribers, {s['published']} published,"
            f" {s['dropped']} dropped, {s['buffered']} buffered"
        )

    # internals, called with the lock held

    def _id_of(self, seq: int) -> str:
        return self._given.get(seq, str(seq)) if seq > 0 else ""

    def _take(self, cursor: int, joined: bool = False) -> list[bytes] | bytes:
        head = self._next
        if joined:
            c0, h0, chunk = self._cache
            if c0 != cursor or h0 != head:  # subscribers woken together share one chunk
                chunk = b"".join(self._parts(cursor))
                self._cache = (cursor, head, chunk)
            return chunk
        return self._parts(cursor)

    def _parts(self, cursor: int) -> list[bytes]:
        parts = list(islice(reversed(self._log), self._next - cursor))
        parts.reverse()
        return parts

    def _forget(self, sub: MemorySubscription) -> None:
        with self._lock:
            self._subs.discard(sub)


def _settle(futures: dict[MemorySubscription, asyncio.Future[Any]]) -> None:
    for fut in futures.values():
        if not fut.done():
            fut.set_result(None)
