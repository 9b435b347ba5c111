"""`RedisHub`: the `Hub` surface on a Redis stream, so several server processes share one log.

    hub = ssenb.Hub(backend="redis://127.0.0.1:6379/0?stream=ticks")

`publish()` (any thread: a sync client with its own pool) appends with `XADD ... MAXLEN ~`;
the Redis stream id *is* the SSE id, so a `Last-Event-ID` from any process resumes exactly on
any other. Each subscriber reads with a blocking `XREAD` from the id it holds (the asyncio
client of its event loop) and is served by the same `HubResponse` as the memory hub.

Never a silent loss: a resume id older than the oldest entry once trimming began, newer
than anything the stream ever issued (Redis restarted empty) or not a stream id gets an
id-less `gap` event first; a subscriber the trimming overtook gets one too. Losing Redis
mid-stream ends the stream with an `error` event (no silent retry onto a restarted, empty
Redis), so the client reconnects and its resume is checked as above.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.requests import Request
from starlette.responses import Response

from .._encoder import encode
from .._models import Event
from ._hub import Polling, _as_event, _control, _plain
from ._hub_response import HubResponse

__all__ = ["DEFAULT_STREAM", "RedisHub", "RedisSubscription", "split_url"]

DEFAULT_STREAM = "ssenb:hub"
_ID = re.compile(r"^\d+-\d+$")
_BLOCK_MS = 1000  # an idle XREAD returns this often, so a closed hub is noticed


def split_url(url: str) -> tuple[str, str]:
    """`redis://host:port/db?stream=name` -> (URL for the redis client, stream key)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    stream = next((v for k, v in query if k == "stream"), DEFAULT_STREAM)
    rest = urlencode([(k, v) for k, v in query if k != "stream"])
    return urlunsplit(parts._replace(query=rest)), stream


def _before(entry_id: str) -> str:
    """The greatest stream id below `entry_id` (XREAD after it starts at `entry_id`)."""
    ms, seq = _sid(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


def _sid(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _wire(entry_id: bytes, fields: dict[bytes, bytes]) -> bytes:
    eid, data = entry_id.decode(), fields.get(b"d", b"").decode()
    etype, retry = fields.get(b"e", b"message").decode(), fields.get(b"r")
    if retry is None and etype == "message" and _plain(data):
        return f"id: {eid}\ndata: {data}\n\n".encode()
    return encode(Event(etype, data, eid, int(retry) if retry is not None else None))


def _error(message: str, last_event_id: str) -> bytes:
    info = {"error": "RedisUnavailable", "message": message, "fatal": False}
    return _control("error", {**info, "last_event_id": last_event_id})


class RedisSubscription(Polling):
    """One subscriber reading the stream with `XREAD BLOCK` from the id it holds.

    Same protocol as `Subscription`: an async iterator of lists of encoded events, and the
    `_poll`/`waiter` pair `HubResponse` serves. A reader task (started at the first poll)
    fills `_pending` and settles `waiter`, reading on only once the consumer took it all (a
    slow client holds one batch, and the trimming may overtake it: then a `gap` event). It
    ends with an `error` event when Redis fails.
    """

    def __init__(self, hub: RedisHub, last_event_id: str | None) -> None:
        self._hub = hub
        self._resume = last_event_id
        self._cursor = ""  # stream id of the last entry taken
        self._pending: list[bytes] = []
        self._closed = False  # no more reading
        self._ended = False  # the reader finished: iteration ends once _pending is empty
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None  # set when the consumer took _pending
        self._loop: asyncio.AbstractEventLoop | None = None
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

    def _poll(self, joined: bool, loop: asyncio.AbstractEventLoop) -> list[bytes] | bytes | None:
        if self._task is None and not self._closed:
            self._loop, self._drained = loop, asyncio.Event()
            self._task = loop.create_task(self._read(), name="ssenb-redis-xread")
        if self._pending:
            parts, self._pending = self._pending, []
            if self._drained is not None:
                self._drained.set()
            return b"".join(parts) if joined else parts
        if self._closed or self._ended:
            self._closed = True
            self._hub._forget(self)
            raise StopAsyncIteration
        self.waiter = loop.create_future()
        return None

    def _push(self, chunks: list[bytes]) -> None:
        self._pending.extend(chunks)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self) -> None:
        self._ended = True
        self._push([])

    async def _read(self) -> None:
        hub = self._hub
        client = hub._client_for(asyncio.get_running_loop())
        try:
            self._cursor = await self._start(client)
            while not self._closed and not hub._closed:
                if self._pending:  # backpressure: read on only once the consumer took it all
                    assert self._drained is not None
                    self._drained.clear()
                    await self._drained.wait()
                    continue
                # shielded: a cancel (disconnect, close) leaves the blocking read to return
                # within _BLOCK_MS on its own; cancelling inside redis-py can hang the loop
                read = client.xread({hub.stream: self._cursor}, hub._count, _BLOCK_MS)
                reply = await asyncio.shield(read)
                if not reply:
                    continue
                entries = reply[0][1]
                chunks: list[bytes] = []
                if len(entries) >= hub._count:  # behind by a full batch: did trimming pass it?
                    chunks.extend(await self._overtaken(client, entries[0][0].decode()))
                chunks.extend(_wire(eid, fields) for eid, fields in entries)
                self._cursor = entries[-1][0].decode()
                self._push(chunks)
        except asyncio.CancelledError:
            pass
        except (redis.RedisError, OSError) as exc:
            message = f"Redis stream {hub.stream!r} unavailable ({type(exc).__name__}: {exc}); "
            self._push([_error(message + "reconnect to resume", self._cursor)])
        finally:
            self._end()

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
        gap = {"last_event_id": self._resume, "first_id": info["first"], "missed": None}
        self._pending.append(_control("gap", {**gap, "reason": reason}))
        return _before(info["first"]) if info["first"] else last

    async def _overtaken(self, client: aredis.Redis, first: str) -> list[bytes]:
        if not _overtaken(await self._hub._info(client), self._cursor):
            return []
        gap = {"last_event_id": self._cursor, "first_id": first, "missed": None}
        return [_control("gap", {**gap, "reason": "evicted"})]


class RedisHub:
    """`Hub` on a Redis stream (see the module docstring); usually made by
    `Hub(backend="redis://host:port/db?stream=name")`.

    `maxlen` bounds the stream (approximately, `MAXLEN ~`; at least `queue`); `queue` is the
    most entries one `XREAD` takes. Events keep their type, data and retry; the SSE id is
    always the stream id (a caller-given id is not used).
    """

    def __init__(
        self, url: str, *, stream: str | None = None, maxlen: int = 10_000, queue: int = 1_000
    ) -> None:
        if maxlen < 0 or queue < 1:
            raise ValueError(f"need maxlen >= 0 and queue >= 1, got {maxlen=}, {queue=}")
        self.url = url
        client_url, default_stream = split_url(url)
        self.stream = stream or default_stream
        self.backend = url
        self.buffer = max(maxlen, queue)
        self._count = queue
        self._client_url = client_url
        self._sync = redis.Redis.from_url(client_url)
        self._clients: dict[asyncio.AbstractEventLoop, aredis.Redis] = {}
        self._lock = threading.Lock()
        self._subs: set[RedisSubscription] = set()
        self._published = 0
        self._closed = False

    def publish(self, event: Event | Mapping[str, Any] | str) -> str:
        """Append one event (Event, dict or str data) to the stream; returns its stream id."""
        return self.publish_many((event,))[-1]

    def publish_many(self, events: Iterable[Event | Mapping[str, Any] | str]) -> list[str]:
        """Append several events in one round trip; returns their stream ids."""
        items = [_as_event(e) for e in events]
        if self._closed:
            raise RuntimeError("publish() on a closed Hub")
        pipe = self._sync.pipeline(transaction=False)
        for etype, data, _eid, retry in items:
            fields: dict[str, str | int] = {"d": data}
            if etype != "message":
                fields["e"] = etype
            if retry is not None:
                fields["r"] = retry
            pipe.xadd(self.stream, fields, maxlen=self.buffer, approximate=True)  # type: ignore[arg-type]
        ids = [i.decode() for i in pipe.execute()]
        with self._lock:
            self._published += len(ids)
        return ids

    def subscribe(self, last_event_id: str | None = None) -> RedisSubscription:
        """A subscriber: live from now, or right after `last_event_id` (a stream id)."""
        sub = RedisSubscription(self, last_event_id)
        with self._lock:
            if self._closed:
                sub._closed = True
            else:
                self._subs.add(sub)
        return sub

    def response(
        self, request: Request | None = None, *, last_event_id: str | None = None,
        heartbeat: float | None = 15.0,
    ) -> Response:  # fmt: skip
        """Serve a subscription (from the request's Last-Event-ID); 204 once closed."""
        if self._closed:
            return Response(status_code=204)
        if last_event_id is None and request is not None:
            last_event_id = request.headers.get("last-event-id", "").strip() or None
        return HubResponse(self.subscribe(last_event_id), heartbeat=heartbeat)  # type: ignore[arg-type]

    @property
    def stats(self) -> dict[str, Any]:
        """Local subscribers and publishes, and what the stream holds (one XINFO call)."""
        info = _parse_info(_xinfo(self._sync, self.stream))
        with self._lock:
            return {
                "subscribers": len(self._subs),
                "behind": None,
                "published": self._published,
                "dropped": 0,
                "buffered": info["length"],
                "first_id": info["first"],
                "last_id": info["last"] if info["length"] else None,
                "stream": self.stream,
            }

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every local subscriber (after what it has taken); later publishes raise."""
        with self._lock:
            self._closed = True
            subs, self._subs = list(self._subs), set()
            clients, self._clients = dict(self._clients), {}
        for sub in subs:
            sub.close()
        for loop, client in clients.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_aclose, client)
        self._sync.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ssenb.RedisHub {state}: stream {self.stream!r}, {len(self._subs)} subscribers>"

    # internals

    def _client_for(self, loop: asyncio.AbstractEventLoop) -> aredis.Redis:
        with self._lock:
            client = self._clients.get(loop)
            if client is None:  # no retry: a restarted Redis must surface, not be papered over
                client = aredis.Redis.from_url(self._client_url, retry=Retry(NoBackoff(), 0))
                self._clients[loop] = client
            return client

    async def _info(self, client: aredis.Redis) -> dict[str, Any]:
        try:
            raw = await client.xinfo_stream(self.stream)
        except redis.ResponseError:  # no such key: nothing was ever added (or Redis restarted)
            raw = {}
        return _parse_info(raw)

    def _forget(self, sub: RedisSubscription) -> None:
        with self._lock:
            self._subs.discard(sub)


_CLOSING: set[asyncio.Future[Any]] = set()


def _aclose(client: aredis.Redis) -> None:
    task = asyncio.ensure_future(client.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


def _xinfo(client: redis.Redis, stream: str) -> dict[Any, Any]:
    try:
        return client.xinfo_stream(stream)  # type: ignore[return-value]
    except redis.ResponseError:
        return {}


def _parse_info(raw: dict[Any, Any]) -> dict[str, Any]:
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
