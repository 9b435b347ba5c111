"""The Redis hub backend: the hub on a Redis stream, so several server processes share one log.

    hub = ssenb.Hub(backend="redis://127.0.0.1:6379/0?stream=ticks")

`publish()` (any thread: a sync client with its own pool) appends with `XADD ... MAXLEN ~`;
the Redis stream id *is* the SSE id, so a `Last-Event-ID` from any process resumes exactly on
any other. Subscribers read through `_redis_read.py`: one shared blocking `XREAD` per
process and event loop for the caught-up ones, short reads of their own for those resuming
or behind.

Never a silent loss: a resume id older than the oldest entry once trimming began, newer
than anything the stream ever issued (Redis restarted empty) or not a stream id gets an
id-less `gap` event first; a subscriber the trimming overtook gets one too. Losing Redis
mid-stream ends the stream with an `error` event (no silent retry onto a restarted, empty
Redis), so the client reconnects and its resume is checked as above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis

from ..._errors import SSEHubUnavailable
from .._response import as_event
from ._backend import HubBackend, HubStats, Publishable, redact
from ._redis_ids import parse_info
from ._redis_read import TIMEOUT, RedisReader, RedisSubscription

__all__ = ["DEFAULT_STREAM", "RedisBackend", "split_url"]

DEFAULT_STREAM = "ssenb:hub"
_T = TypeVar("_T")
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


def split_url(url: str) -> tuple[str, str]:
    """`redis://host:port/db?stream=name` -> (URL for the redis client, stream key)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    stream = next((v for k, v in query if k == "stream"), DEFAULT_STREAM)
    rest = urlencode([(k, v) for k, v in query if k != "stream"])
    # by hand, not urlunsplit: that drops the // of unix:///path (no host), which redis refuses
    client_url = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    return client_url, stream


class RedisBackend(HubBackend):
    """The hub on a Redis stream (see the module docstring), chosen by a `redis://`,
    `rediss://` (TLS) or `unix://` (socket) URL; `?stream=name` picks the stream key.

    `buffer` bounds the stream (approximately, `MAXLEN ~`; at least `queue`); `queue` is the
    most entries one `XREAD` takes. Events keep their type, data and retry; the SSE id is
    always the stream id (a caller-given id is not used), so `start` does not apply.
    """

    def __init__(
        self, url: str, *, buffer: int = 10_000, queue: int = 1_000, start: int | str = "clock"
    ) -> None:
        if "://" not in url:
            raise ValueError(f"the Redis backend takes a URL (redis://host:port/db), not {url!r}")
        if start != "clock":
            raise ValueError("start does not apply to a Redis hub: ids are stream ids")
        if buffer < 0 or queue < 1:
            raise ValueError(f"need buffer >= 0 and queue >= 1, got {buffer=}, {queue=}")
        self.url = redact(url)  # the password stays in the clients only
        client_url, self.stream = split_url(url)
        self.buffer = max(buffer, queue)
        self.client_name = f"ssenb:{self.stream}"  # how CLIENT LIST names our connections
        self._sync = redis.Redis.from_url(  # a frozen Redis raises, never hangs a cell
            client_url, client_name=self.client_name, socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )  # fmt: skip
        self._xadd_many = self._sync.register_script(_XADD_MANY)
        self.reader = RedisReader(client_url, self.stream, count=queue, name=self.client_name)
        self._lock = threading.Lock()
        self._published = 0

    @property
    def client(self) -> redis.Redis:
        """The sync client (publishing, stats): for inspecting the stream."""
        return self._sync

    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        """Append several events in one round trip (one script call per 1,000, so each such
        batch lands contiguous in the stream); returns their stream ids."""
        items = [as_event(e) for e in events]
        if self.reader.closed:
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
                added: list[bytes] = self._xadd_many(keys=[self.stream], args=args)
                ids += [i.decode() for i in added]
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
        return self.reader.subscribe(last_event_id)

    @property
    def stats(self) -> HubStats:
        """Local subscribers and publishes, and what the stream holds (one XINFO call)."""
        info = parse_info(self._ask(lambda: _xinfo(self._sync, self.stream)))
        with self._lock:
            return {
                "subscribers": self.reader.subscribers,
                "behind": None,
                "published": self._published,
                "dropped": 0,
                "buffered": info["length"],
                "first_id": info["first"],
                "last_id": info["last"] if info["length"] else None,
                "stream": self.stream,
            }

    def ping(self) -> None:
        """PING Redis; `SSEHubUnavailable` when it does not answer."""
        self._ask(self._sync.ping)

    @property
    def closed(self) -> bool:
        return self.reader.closed

    def close(self) -> None:
        """End every local subscriber (after what it has taken); later publishes raise."""
        self.reader.close()
        self._sync.close()

    def summary(self) -> str:
        state = "closed" if self.closed else "open"
        subs = self.reader.subscribers
        return f"{state}: stream {self.stream!r} on {self.url}, {subs} subscribers"

    def _ask(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            message = f"Redis stream {self.stream!r} unavailable ({type(exc).__name__}: {exc})"
            raise SSEHubUnavailable(message, url=self.url) from exc


def _xinfo(client: redis.Redis, stream: str) -> Any:
    try:
        return client.xinfo_stream(stream)
    except redis.ResponseError:  # no such key: nothing was ever added (or Redis restarted)
        return {}
