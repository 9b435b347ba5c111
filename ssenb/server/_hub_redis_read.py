"""Reading a Redis stream for many subscribers: one shared `_Tail` per hub and event loop.

A live subscriber costs no Redis connection: one blocking `XREAD` per process (the tail)
reads the newest entries, encodes them once and hands the same bytes to every subscriber
that is caught up. A subscriber that is resuming, or that fell more than `queue` events
behind (a slow client), reads on its own with short non-blocking `XREAD`s from the id it
holds, checked against the stream's trimming in the same transaction, and joins the tail
again once it has caught up. So a thousand subscribers hold one blocking connection, not a
thousand, and nobody waits for a slow one.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aredis

from .._encoder import encode
from .._models import Event
from ._hub import Polling, _control, _plain

if TYPE_CHECKING:
    from ._hub_redis import RedisHub

__all__ = ["BLOCK_MS", "RedisSubscription", "parse_info"]

BLOCK_MS = 1000  # an idle blocking XREAD returns this often, so a closed hub is noticed
_ID = re.compile(r"^\d+-\d+$")


def _sid(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _before(entry_id: str) -> str:
    """The greatest stream id below `entry_id` (XREAD after it starts at `entry_id`)."""
    ms, seq = _sid(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


def _wire(entry_id: bytes, fields: dict[bytes, bytes]) -> bytes:
    eid, data = entry_id.decode(), fields.get(b"d", b"").decode()
    etype, retry = fields.get(b"e", b"message").decode(), fields.get(b"r")
    if retry is None and etype == "message" and _plain(data):
        return f"id: {eid}\ndata: {data}\n\n".encode()
    return encode(Event(etype, data, eid, int(retry) if retry is not None else None))


def _gap(last_event_id: str, first: str | None, reason: str) -> bytes:
    gap = {"last_event_id": last_event_id, "first_id": first, "missed": None}
    return _control("gap", {**gap, "reason": reason})


def _unavailable(stream: str, exc: BaseException) -> str:
    return f"Redis stream {stream!r} unavailable ({type(exc).__name__}: {exc}); reconnect to resume"


def parse_info(raw: Any) -> dict[str, Any]:
    """XINFO STREAM's reply (or {} / an error for a missing key) as first/last/length/trimmed."""
    if not isinstance(raw, dict):
        raw = {}

    def text(value: Any) -> str | None:
        return value.decode() if isinstance(value, bytes) else value

    first, length = raw.get("first-entry"), raw.get("length", 0)
    return {
        "length": length,
        "first": text(first[0]) if first else None,
        "last": text(raw.get("last-generated-id")) or "0-0",
        "trimmed": raw.get("entries-added", 0) > length,
    }


def _overtaken(info: dict[str, Any], cursor: str) -> bool:
    """Entries after `cursor` may be gone: it is older than the oldest held entry (trimmed,
    or from an earlier incarnation of the stream). Conservative: when `cursor` was exactly
    the last entry trimmed nothing is lost, but the stream cannot tell."""
    first = info["first"]
    if first is None:  # empty: entries after `cursor` were issued and are gone
        return _sid(cursor) < _sid(info["last"])
    return _sid(cursor) < _sid(_before(first))


class _Tail:
    """The one blocking `XREAD` of a hub in one event loop, fanned out to the caught-up
    subscribers. It runs while anyone is attached and keeps its last batch, so a subscriber
    that caught up to within that batch joins without another read."""

    def __init__(self, hub: RedisHub, loop: asyncio.AbstractEventLoop) -> None:
        self.hub, self.loop = hub, loop
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
        if _sid(cursor) < _sid(self.cursor):
            if self.last is None or _sid(cursor) < _sid(self.last[0]):
                return False
            _, ids, wire = self.last  # the entries after `cursor` are in the last batch
            behind = [w for i, w in zip(ids, wire, strict=True) if _sid(i) > _sid(cursor)]
            sub._cursor = self.cursor
        self.subs.add(sub)
        sub._tail, sub._skip = self, _sid(cursor) if _sid(cursor) > _sid(self.cursor) else None
        if behind:
            sub._push(behind)
        return True

    def detach(self, sub: RedisSubscription) -> None:
        self.subs.discard(sub)
        if sub._tail is self:
            sub._tail = None
            sub._nudge()

    async def _run(self) -> None:
        hub = self.hub
        client = hub._client_for(self.loop)
        try:
            while self.subs and not hub._closed:
                assert self.cursor is not None
                # shielded: a cancel leaves the blocking read to return within BLOCK_MS on its
                # own; cancelling inside redis-py can hang the loop
                read = client.xread({hub.stream: self.cursor}, hub._count, BLOCK_MS)
                reply = await asyncio.shield(read)
                if not reply:
                    continue
                entries = reply[0][1]
                head: list[bytes] = []
                if len(entries) >= hub._count and _overtaken(await hub._info(client), self.cursor):
                    head.append(_gap(self.cursor, entries[0][0].decode(), "evicted"))
                ids = [eid.decode() for eid, _ in entries]
                wire = [_wire(eid, fields) for eid, fields in entries]
                self.last, self.cursor = (self.cursor, ids, wire), ids[-1]
                batch, joined = head + wire, b"".join(head + wire)
                for sub in list(self.subs):
                    sub._take(ids, batch, joined, len(head))
        except asyncio.CancelledError:
            pass
        except (redis.RedisError, OSError) as exc:
            message = _unavailable(hub.stream, exc)
            for sub in list(self.subs):
                sub._fail(message)
        finally:
            self.cursor = self.last = None
            for sub in list(self.subs):
                self.detach(sub)


class RedisSubscription(Polling):
    """One subscriber: live on the shared `_Tail`, or catching up on its own.

    Same protocol as `Subscription`: an async iterator of lists of encoded events, and the
    `_poll`/`waiter` pair `HubResponse` serves. A reader task (started at the first poll)
    finds the start (a `gap` event when a resume cannot be exact), catches up, then joins
    the tail; more than `queue` events untaken, it leaves the tail and reads on by itself
    once the consumer took them (the trimming may overtake it: then a `gap` event). It ends
    with an `error` event when Redis fails.
    """

    def __init__(self, hub: RedisHub, last_event_id: str | None) -> None:
        self._hub = hub
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
        self.dropped = False
        self._on_drop: Any = None
        self.waiter: asyncio.Future[Any] | None = None

    @property
    def last_event_id(self) -> str:
        """The stream id this subscriber is past."""
        return self._cursor

    def close(self) -> None:
        """Stop receiving; the iterator ends at its next step."""
        self._closed = True
        self._hub._forget(self)
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

    def _poll(self, joined: bool, loop: asyncio.AbstractEventLoop) -> list[bytes] | bytes | None:
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
            self._hub._forget(self)
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
            kept = [w for i, w in zip(ids, batch[head:], strict=True) if _sid(i) > skip]
            batch, joined = kept, b"".join(kept)
            if not kept:
                self._skip = skip if _sid(ids[-1]) < skip else None
                return
        self._cursor = ids[-1]
        self._push(batch, joined)
        if len(self._pending) > self._hub._count and self._tail is not None:
            self._tail.detach(self)  # slow: read on alone once the consumer catches up

    def _fail(self, message: str) -> None:
        self._failed = True
        info = {"error": "RedisUnavailable", "message": message, "fatal": False}
        self._push([_control("error", {**info, "last_event_id": self._cursor})])

    async def _read(self) -> None:
        hub, loop = self._hub, asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        try:
            client = hub._client_for(loop)
            tail = hub._tail_for(loop)
            if self._resume is None:  # live from now: join the tail (no round trip if it runs)
                self._cursor = tail.cursor or await asyncio.shield(self._start(client))
                tail.attach(self)
            else:
                self._cursor = await asyncio.shield(self._start(client))
            self._settle()
            while not (self._closed or self._failed or hub._closed):
                if self._pending or self._tail is not None:  # consumer behind, or live
                    wake.clear()
                    await wake.wait()
                    continue
                chunks = await self._catch_up(client)
                if chunks:
                    self._push(chunks)
                elif not tail.attach(self):
                    continue  # the tail moved on meanwhile: catch up again
        except asyncio.CancelledError:
            pass
        except (redis.RedisError, OSError) as exc:
            self._fail(_unavailable(hub.stream, exc))
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
        info = await self._hub._info(client)
        last = info["last"]
        if not self._resume:
            return last
        reason = None
        if not _ID.match(self._resume):
            reason = "unknown"
        elif _sid(self._resume) > _sid(last):
            reason = "unknown"  # newer than anything issued: the stream was recreated
        elif _overtaken(info, self._resume):
            reason = "evicted" if info["trimmed"] else "unknown"  # else: an earlier stream
        if reason is None:
            return self._resume
        self._pending.append(_gap(self._resume, info["first"], reason))
        return _before(info["first"]) if info["first"] else last

    async def _catch_up(self, client: aredis.Redis) -> list[bytes]:
        """The next batch after the cursor (non-blocking), with a `gap` event first when the
        trimming passed the cursor (the stream's state is read in the same transaction)."""
        stream, cursor = self._hub.stream, self._cursor
        pipe = client.pipeline(transaction=True)
        pipe.xinfo_stream(stream)
        pipe.xread({stream: cursor}, count=self._hub._count)
        raw, reply = await asyncio.shield(pipe.execute(raise_on_error=False))
        if isinstance(reply, Exception):
            raise reply
        if not reply:
            return []
        entries = reply[0][1]
        chunks = [_gap(cursor, entries[0][0].decode(), "evicted")]
        if not _overtaken(parse_info(raw), cursor):
            chunks = []
        chunks.extend(_wire(eid, fields) for eid, fields in entries)
        self._cursor = entries[-1][0].decode()
        return chunks
