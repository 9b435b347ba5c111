"""`RedisHub`: the `Hub` surface on a Redis stream, so several server processes share one log.

    hub = ssenb.Hub(backend="redis://127.0.0.1:6379/0?stream=ticks")

`publish()` (any thread: a sync client with its own pool) appends with `XADD ... MAXLEN ~`;
the Redis stream id *is* the SSE id, so a `Last-Event-ID` from any process resumes exactly on
any other. Subscribers read through `_hub_redis_read.py`: one shared blocking `XREAD` per
process and event loop for the caught-up ones, short reads of their own for those resuming
or behind; each is served by the same `HubResponse` as the memory hub.

Never a silent loss: a resume id older than the oldest entry once trimming began, newer
than anything the stream ever issued (Redis restarted empty) or not a stream id gets an
id-less `gap` event first; a subscriber the trimming overtook gets one too. Losing Redis
mid-stream ends the stream with an `error` event (no silent retry onto a restarted, empty
Redis), so the client reconnects and its resume is checked as above.
"""

from __future__ import annotations

import asyncio
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

from .._errors import SSEHubUnavailable
from .._models import Event
from ._hub import _as_event
from ._hub_redis_read import BLOCK_MS, RedisSubscription, _Tail, parse_info
from ._hub_response import HubResponse

__all__ = ["DEFAULT_STREAM", "RedisHub", "RedisSubscription", "redact", "split_url"]

DEFAULT_STREAM = "ssenb:hub"
_POOL = 32  # Redis connections per event loop: the tail's blocking read plus short reads
_BATCH = 1_000  # events per script call
# XADD each entry (ARGV: maxlen, then per entry its field count and fields): ~2x a pipeline of
# XADDs, as Redis parses one command instead of one per event
_XADD_MANY = """
local ids, i, n = {}, 2, #ARGV
while i <= n do
  local k = tonumber(ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                             unpack(ARGV, i + 1, i + k))
  i = i + 1 + k
end
return ids
"""
_TIMEOUT = 10.0  # seconds a Redis reply (beyond a blocking read's own wait) may take


def redact(url: str) -> str:
    """`url` with its password (if any) shown as ***: what reprs, errors and logs print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def split_url(url: str) -> tuple[str, str]:
    """`redis://host:port/db?stream=name` -> (URL for the redis client, stream key)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    stream = next((v for k, v in query if k == "stream"), DEFAULT_STREAM)
    rest = urlencode([(k, v) for k, v in query if k != "stream"])
    return urlunsplit(parts._replace(query=rest)), stream


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
        self.url = redact(url)  # the password stays in the clients only
        client_url, default_stream = split_url(url)
        self.stream = stream or default_stream
        self.backend = self.url
        self.buffer = max(maxlen, queue)
        self._count = queue
        self._client_url = client_url
        self._name = f"ssenb:{self.stream}"  # how CLIENT LIST names our connections
        self._sync = redis.Redis.from_url(  # a frozen Redis raises, never hangs a cell
            client_url, client_name=self._name, socket_timeout=_TIMEOUT,
            socket_connect_timeout=_TIMEOUT,
        )  # fmt: skip
        self._xadd_many = self._sync.register_script(_XADD_MANY)
        self._clients: dict[asyncio.AbstractEventLoop, aredis.Redis] = {}
        self._tails: dict[asyncio.AbstractEventLoop, _Tail] = {}
        self._lock = threading.Lock()
        self._subs: set[RedisSubscription] = set()
        self._published = 0
        self._closed = False

    def publish(self, event: Event | Mapping[str, Any] | str) -> str:
        """Append one event (Event, dict or str data) to the stream; returns its stream id."""
        return self.publish_many((event,))[-1]

    def publish_many(self, events: Iterable[Event | Mapping[str, Any] | str]) -> list[str]:
        """Append several events in one round trip (one script call per 1,000, so each such
        batch lands contiguous in the stream); returns their stream ids."""
        items = [_as_event(e) for e in events]
        if self._closed:
            raise RuntimeError("publish() on a closed Hub")
        ids: list[str] = []
        try:
            for start in range(0, len(items), _BATCH):
                args: list[str | int] = [self.buffer]
                for etype, data, _eid, retry in items[start : start + _BATCH]:
                    fields: list[str | int] = ["d", data]
                    if etype != "message":
                        fields += ["e", etype]
                    if retry is not None:
                        fields += ["r", retry]
                    args += [len(fields), *fields]
                ids += [i.decode() for i in self._xadd_many(keys=[self.stream], args=args)]
        except (redis.RedisError, OSError) as exc:
            with self._lock:
                self._published += len(ids)
            landed = f"{len(ids)} of {len(items)} events were stored" if ids else "nothing stored"
            raise SSEHubUnavailable(
                f"Redis stream {self.stream!r} did not take the publish ({type(exc).__name__}:"
                f" {exc}); {landed}",
                url=self.url, last_event_id=ids[-1] if ids else "", added=ids,
            ) from exc  # fmt: skip
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
        try:
            info = parse_info(_xinfo(self._sync, self.stream))
        except (redis.RedisError, OSError) as exc:
            message = f"Redis stream {self.stream!r} unavailable ({type(exc).__name__}: {exc})"
            raise SSEHubUnavailable(message, url=self.url) from exc
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
            self._tails = {}
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
                pool = aredis.BlockingConnectionPool.from_url(
                    self._client_url, max_connections=_POOL, timeout=30,
                    retry=Retry(NoBackoff(), 0), client_name=self._name,
                    socket_timeout=BLOCK_MS / 1000 + _TIMEOUT, socket_connect_timeout=_TIMEOUT,
                )  # fmt: skip
                client = self._clients[loop] = aredis.Redis.from_pool(pool)
            return client

    def _tail_for(self, loop: asyncio.AbstractEventLoop) -> _Tail:
        """The shared blocking read of `loop` (created on first use, runs while attached)."""
        with self._lock:
            tail = self._tails.get(loop)
            if tail is None:
                tail = self._tails[loop] = _Tail(self, loop)
            return tail

    async def _info(self, client: aredis.Redis) -> dict[str, Any]:
        try:
            raw = await client.xinfo_stream(self.stream)
        except redis.ResponseError:  # no such key: nothing was ever added (or Redis restarted)
            raw = {}
        return parse_info(raw)

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
