"""Reading a Redis stream for many subscribers: one shared `_Tail` per hub and event loop.

A live subscriber costs no Redis connection: one blocking `XREAD` per process (the tail)
reads the newest entries, encodes them once and hands the same bytes to every subscriber
that is caught up. A subscriber that is resuming, or that fell more than `queue` events
behind (a slow client), reads on its own with short non-blocking `XREAD`s from the id it
holds, checked against the stream's trimming in the same transaction, and joins the tail
again once it has caught up. So a thousand subscribers hold one blocking connection, not a
thousand, and nobody waits for a slow one.

`RedisReader` is this side of one Redis hub: its async clients and tails per event loop and
its local subscribers. It knows nothing of publishing (`_redis.py` owns one).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._backend import HubSubscription, control_frame
from ._redis_ids import (
    STREAM_ID,
    StreamInfo,
    before,
    entries_of,
    gap_frame,
    overtaken,
    parse_info,
    sid,
    unavailable,
    wire,
)

__all__ = ["BLOCK_MS", "POOL", "TIMEOUT", "RedisReader", "RedisSubscription"]

BLOCK_MS = 1000  # an idle blocking XREAD returns this often, so a closed hub is noticed
POOL = 32  # Redis connections per event loop: the tail's blocking read plus short reads
TIMEOUT = 10.0  # seconds a Redis reply (beyond a blocking read's own wait) may take


class RedisReader:
    """The subscribers of one Redis stream in this process, and what they read with.

    `count` is the most entries one `XREAD` takes (the hub's `queue`). Each event loop gets
    its own async client (a pool of `POOL` connections, no retry: a restarted Redis must
    surface, not be papered over; a busy pool is waited for, since every call on a held
    connection ends within its socket timeout) and its own `_Tail`.
    """

    def __init__(self, client_url: str, stream: str, *, count: int, name: str) -> None:
        self.stream, self.count = stream, count
        self._client_url, self._name = client_url, name
        self._clients: dict[asyncio.AbstractEventLoop, aredis.Redis] = {}
        self._tails: dict[asyncio.AbstractEventLoop, _Tail] = {}
        self._lock = threading.Lock()
        self._subs: set[RedisSubscription] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, last_event_id: str | None) -> RedisSubscription:
        """A subscriber: live from now, or right after `last_event_id` (a stream id)."""
        sub = RedisSubscription(self, last_event_id)
        with self._lock:
            if self.closed:
                sub._closed = True
            else:
                self._subs.add(sub)
        return sub

    def forget(self, sub: RedisSubscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def client_for(self, loop: asyncio.AbstractEventLoop) -> aredis.Redis:
        """The async client of `loop` (made on first use)."""
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                pool = aredis.BlockingConnectionPool.from_url(
                    self._client_url, max_connections=POOL, timeout=None,
                    retry=Retry(NoBackoff(), 0), client_name=self._name,
                    socket_timeout=BLOCK_MS / 1000 + TIMEOUT, socket_connect_timeout=TIMEOUT,
                )  # fmt: skip
                client = self._clients[loop] = aredis.Redis.from_pool(pool)
            return client

    def tail_for(self, loop: asyncio.AbstractEventLoop) -> _Tail:
        """The shared blocking read of `loop` (made on first use, runs while attached)."""
        with self._lock:
            tail = self._tails.get(loop)
            if tail is None:
                tail = self._tails[loop] = _Tail(self, loop)
            return tail

    async def info(self, client: aredis.Redis) -> StreamInfo:
        try:
            raw = await client.xinfo_stream(self.stream)
        except redis.ResponseError:  # no such key: nothing was ever added (or Redis restarted)
            raw = {}
        return parse_info(raw)

    def close(self) -> None:
        """End every subscriber (after what it has taken) and close the async clients."""
        with self._lock:
            self.closed = True
            subs, self._subs = list(self._subs), set()
            clients, self._clients = dict(self._clients), {}
            self._tails = {}
        for sub in subs:
            sub.close()
        for loop, client in clients.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_aclose, client)


_CLOSING: set[asyncio.Future[Any]] = set()


def _aclose(client: aredis.Redis) -> None:
    task = asyncio.ensure_future(client.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


class _Tail:
    """The one blocking `XREAD` of a hub in one event loop, fanned out to the caught-up
    subscribers. It runs while anyone is attached and keeps its last batch, so a subscriber
    that caught up to within that batch joins without another read."""

    def __init__(self, reader: RedisReader, loop: asyncio.AbstractEventLoop) -> None:
        self.reader, self.loop = reader, loop
        self.cursor: str | None = None  # id of the last entry read; None while stopped
        self.subs: set[RedisSubscription] = set()
        self.last: tuple[str, list[str], list[bytes]] | None = None  # (after, ids, wire)
        self.task: asyncio.Task[None] | None = None

    def attach(self, sub: RedisSubscription) -> bool:
        """Join `sub` (its cursor) to the live feed; False when the tail is ahead of it."""
        cursor = sub._cursor
        if self.task is None or self.task.done():  # stopped: start again from this cursor
            self.cursor, self.last = cursor, None
            self.task = self.loop.create_task(self._run(), name="ssenb-redis-tail")
        assert self.cursor is not None
        behind: list[bytes] = []
        if sid(cursor) < sid(self.cursor):
            if self.last is None or sid(cursor) < sid(self.last[0]):
                return False
            _, ids, wired = self.last  # the entries after `cursor` are in the last batch
            behind = [w for i, w in zip(ids, wired, strict=True) if sid(i) > sid(cursor)]
            sub._cursor = self.cursor
        self.subs.add(sub)
        sub._tail, sub._skip = self, sid(cursor) if sid(cursor) > sid(self.cursor) else None
        if behind:
            sub._push(behind)
        return True

    def detach(self, sub: RedisSubscription) -> None:
        self.subs.discard(sub)
        if sub._tail is self:
            sub._tail = None
            sub._nudge()

    async def _run(self) -> None:
        reader = self.reader
        client, stream, count = reader.client_for(self.loop), reader.stream, reader.count
        try:
            while self.subs and not reader.closed:
                assert self.cursor is not None
                # shielded: a cancel leaves the blocking read to return within BLOCK_MS on its
                # own; cancelling inside redis-py can hang the loop
                read = client.xread({stream: self.cursor}, count, BLOCK_MS)
                entries = entries_of(await asyncio.shield(read))
                if not entries:
                    continue
                head: list[bytes] = []
                if len(entries) >= count and overtaken(await reader.info(client), self.cursor):
                    head.append(gap_frame(self.cursor, entries[0][0].decode(), "evicted"))
                ids = [eid.decode() for eid, _ in entries]
                wired = [wire(eid, fields) for eid, fields in entries]
                self.last, self.cursor = (self.cursor, ids, wired), ids[-1]
                batch, joined = head + wired, b"".join(head + wired)
                for sub in list(self.subs):
                    sub._take(ids, batch, joined, len(head))
        except asyncio.CancelledError:
            pass
        except (redis.RedisError, OSError) as exc:
            message = unavailable(stream, exc)
            for sub in list(self.subs):
                sub._fail(message)
        finally:
            self.cursor = self.last = None
            for sub in list(self.subs):
                self.detach(sub)


class RedisSubscription(HubSubscription):
    """One subscriber: live on the shared `_Tail`, or catching up on its own.

    A `HubSubscription` (see there) that never drops: a reader task (started at the first poll)
    finds the start (a `gap` event when a resume cannot be exact), catches up, then joins
    the tail; more than `queue` events untaken, it leaves the tail and reads on by itself
    once the consumer took them (the trimming may overtake it: then a `gap` event). It ends
    with an `error` event when Redis fails.
    """

    def __init__(self, reader: RedisReader, last_event_id: str | None) -> None:
        super().__init__()
        self._reader = reader
        self._resume = last_event_id
        self._cursor = ""  # stream id of the last entry queued for the consumer
        self._pending: list[bytes] = []
        self._joined: bytes | None = None  # _pending as one bytes, when it is one batch
        self._closed = False  # no more reading
        self._ended = False  # the reader finished: iteration ends once _pending is empty
        self._failed = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # the consumer took everything, or left the tail
        self._tail: _Tail | None = None  # set while live on the shared read
        self._skip: tuple[int, int] | None = None  # joined ahead of the tail: skip up to this
        self._loop: asyncio.AbstractEventLoop | None = None
        self._positioned: asyncio.Future[None] | None = None  # settled once the start is known

    @property
    def last_event_id(self) -> str:
        """The stream id this subscriber is past."""
        return self._cursor

    def close(self) -> None:
        self._closed = True
        self._reader.forget(self)
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            try:
                if asyncio._get_running_loop() is loop:
                    task.cancel()
                else:
                    loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop is closed
                pass

    async def open(self) -> None:
        """Take the position now: a response awaits this before its headers go out, so
        whatever is published once a client has the headers reaches it (as with the memory
        hub, whose position is taken at subscribe time)."""
        self._begin(asyncio.get_running_loop())
        if self._positioned is not None:
            await asyncio.shield(self._positioned)

    def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is None and not self._closed:
            self._loop, self._wake = loop, asyncio.Event()
            self._positioned = loop.create_future()
            self._task = loop.create_task(self._read(), name="ssenb-redis-subscriber")

    def poll(
        self, loop: asyncio.AbstractEventLoop, joined: bool = False
    ) -> list[bytes] | bytes | None:
        self._begin(loop)
        if self._pending:
            parts, whole, self._pending, self._joined = self._pending, self._joined, [], None
            if self._tail is None:  # the reader waits for this to read on
                self._nudge()
            if joined:
                return whole if whole is not None else b"".join(parts)
            return parts
        if self._closed or self._ended:
            self._closed = True
            self._reader.forget(self)
            raise StopAsyncIteration
        self.waiter = loop.create_future()
        return None

    def _nudge(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _push(self, chunks: list[bytes], joined: bytes | None = None) -> None:
        self._joined = joined if not self._pending else None
        self._pending.extend(chunks)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self, ids: list[str], batch: list[bytes], joined: bytes, head: int) -> None:
        """One batch from the tail (`head` control frames first, then one per id)."""
        if self._skip is not None:  # joined ahead of the tail: drop what it already has
            skip, self._skip = self._skip, None
            kept = [w for i, w in zip(ids, batch[head:], strict=True) if sid(i) > skip]
            batch, joined = kept, b"".join(kept)
            if not kept:
                self._skip = skip if sid(ids[-1]) < skip else None
                return
        self._cursor = ids[-1]
        self._push(batch, joined)
        if len(self._pending) > self._reader.count and self._tail is not None:
            self._tail.detach(self)  # slow: read on alone once the consumer catches up

    def _fail(self, message: str) -> None:
        self._failed = True
        info = {"error": "RedisUnavailable", "message": message, "fatal": False}
        self._push([control_frame("error", {**info, "last_event_id": self._cursor})])

    async def _read(self) -> None:
        reader, loop = self._reader, asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        try:
            client = reader.client_for(loop)
            tail = reader.tail_for(loop)
            if self._resume is None:  # live from now: join the tail (no round trip if it runs)
                live = tail.cursor
                self._cursor = live if live else await asyncio.shield(self._start(client))
                tail.attach(self)
            else:
                self._cursor = await asyncio.shield(self._start(client))
            self._settle()
            while not (self._closed or self._failed or reader.closed):
                if self._pending or self._tail is not None:  # consumer behind, or live
                    wake.clear()
                    await wake.wait()
                    continue
                chunks, at_end = await self._catch_up(client)
                if chunks:
                    self._push(chunks)
                # at the stream's end (a short batch): join the tail now, not after one more
                # read, or a busy stream keeps a resumed subscriber reading alone for good
                if (at_end or not chunks) and not tail.attach(self):
                    continue  # the tail moved on meanwhile: catch up again
        except asyncio.CancelledError:
            pass
        except (redis.RedisError, OSError) as exc:
            self._fail(unavailable(reader.stream, exc))
        finally:
            if self._tail is not None:
                self._tail.detach(self)
            self._ended = True
            self._push([])
            self._settle()

    def _settle(self) -> None:
        if self._positioned is not None and not self._positioned.done():
            self._positioned.set_result(None)

    async def _start(self, client: aredis.Redis) -> str:
        """The id to read after; queues a `gap` event when the resume id cannot be exact."""
        info = await self._reader.info(client)
        last = info["last"]
        if not self._resume:
            return last
        reason = None
        if not STREAM_ID.match(self._resume):
            reason = "unknown"
        elif sid(self._resume) > sid(last):
            reason = "unknown"  # newer than anything issued: the stream was recreated
        elif overtaken(info, self._resume):
            reason = "evicted" if info["trimmed"] else "unknown"  # else: an earlier stream
        if reason is None:
            return self._resume
        self._pending.append(gap_frame(self._resume, info["first"], reason))
        return before(info["first"]) if info["first"] else last

    async def _catch_up(self, client: aredis.Redis) -> tuple[list[bytes], bool]:
        """The next batch after the cursor (non-blocking), with a `gap` event first when the
        trimming passed the cursor (the stream's state is read in the same transaction);
        and whether it reached the stream's end (fewer entries than asked for)."""
        stream, cursor = self._reader.stream, self._cursor
        pipe = client.pipeline(transaction=True)
        pipe.xinfo_stream(stream)
        pipe.xread({stream: cursor}, count=self._reader.count)
        raw, reply = await asyncio.shield(pipe.execute(raise_on_error=False))
        if isinstance(reply, Exception):
            raise reply
        entries = entries_of(reply)
        if not entries:
            return [], True
        chunks = [gap_frame(cursor, entries[0][0].decode(), "evicted")]
        if not overtaken(parse_info(raw), cursor):
            chunks = []
        chunks.extend(wire(eid, fields) for eid, fields in entries)
        self._cursor = entries[-1][0].decode()
        return chunks, len(entries) < self._reader.count
