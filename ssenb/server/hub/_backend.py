"""What a hub backend is: the interface every store behind `ssenb.Hub` implements.

A backend holds the events (a log in memory, a Redis stream, ...), gives them ids, and hands
each subscriber what it has not taken yet. `HubBackend` is the store's surface (publish,
subscribe, stats, ping, close); `HubSubscription` is one subscriber's, which the hub's
response serves and `async for` iterates. Both are abstract base classes: a backend that
misses a method fails when it is made, not when a client first connects.

The wire format is shared: events are encoded once, with their id, and control frames
(`gap`, `error`) carry no id, so they never move a client's Last-Event-ID.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NotRequired, Self, TypedDict
from urllib.parse import urlsplit, urlunsplit

import orjson

from ..._encoder import encode
from ..._models import Event

__all__ = [
    "HubBackend",
    "HubStats",
    "HubSubscription",
    "Publishable",
    "control_frame",
    "encode_with_id",
    "redact",
]

#: what `publish()` takes: an `Event`, a mapping (Event fields, or any dict as JSON data), str data
Publishable = Event | Mapping[str, Any] | str


class HubStats(TypedDict):
    """`Hub.stats`: counts, and the ids the store holds."""

    subscribers: int  # subscribers of this process
    behind: int | None  # events the slowest one has yet to take (None: the backend can't tell)
    published: int  # events published through this hub object
    dropped: int  # subscribers dropped for falling too far behind
    buffered: int  # events held for replay
    first_id: str | None  # the oldest id held (None: nothing held)
    last_id: str | None  # the newest id held
    stream: NotRequired[str]  # Redis: the stream key


def control_frame(event: str, payload: dict[str, Any]) -> bytes:
    """An id-less control event (`gap`, `error`) with a JSON payload."""
    return encode(Event(event=event, data=orjson.dumps(payload).decode()))


def encode_with_id(etype: str, data: str, eid: str, retry: int | None) -> bytes:
    """One stored event on the wire, with its id; plain one-line messages skip the encoder."""
    if retry is None and etype == "message" and "\n" not in data and "\r" not in data:
        return f"id: {eid}\ndata: {data}\n\n".encode()
    return encode(Event(etype, data, eid, retry))


def redact(url: str) -> str:
    """`url` with its password (if any) shown as ***: what reprs, errors and logs print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class HubSubscription(ABC):
    """One subscriber: an async iterator of lists of encoded events (bytes), oldest first.

    Each item holds everything pending, so serving it is one write. It ends after `close()`,
    after its hub closes (once the pending events are taken), or with a final control event
    (an `error` when dropped for lagging or when the store fails).

    The response that serves it uses, besides iteration: `open()` (awaited before the headers
    go out), `poll()` with `waiter`, and `on_drop`, which the backend calls (in the publisher's
    thread) when it drops the subscriber, so a frozen client can be cut off.
    """

    def __init__(self) -> None:
        self.waiter: asyncio.Future[Any] | None = None  # armed by poll(), settled on news
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[bytes]:
        loop = asyncio.get_running_loop()
        while (taken := self.poll(loop)) is None:
            assert self.waiter is not None
            await self.waiter
        return taken if isinstance(taken, list) else [taken]

    async def open(self) -> None:  # noqa: B027  # optional: most stores need nothing here
        """Fix the subscriber's position: whatever is published after this returns reaches it.
        (A store that positions at `subscribe()` has nothing to do.)"""

    @property
    @abstractmethod
    def last_event_id(self) -> str:
        """The id this subscriber is past: resuming with it continues exactly."""

    @abstractmethod
    def poll(
        self, loop: asyncio.AbstractEventLoop, joined: bool = False
    ) -> list[bytes] | bytes | None:
        """Take everything pending (`joined`: as one bytes object); None when there is nothing
        yet, after arming `waiter`, a future of `loop` that the next event, close or end settles.
        Raises StopAsyncIteration once the subscription is over."""

    @abstractmethod
    def close(self) -> None:
        """Stop receiving; the iteration ends at its next step."""


class HubBackend(ABC):
    """A store of events that fans them out to subscribers, with replay by id.

    Made by the registry (`_registry.py`) as `Backend(url, buffer=, queue=, start=)`.
    `url` names it in reprs and errors, without a password. `publish_many` may be called from
    any thread; a subscription is served on one event loop.
    """

    url: str
    buffer: int  # events held for replay

    def publish(self, event: Publishable) -> str:
        """Send one event (Event, dict or str data) to every subscriber; returns its id."""
        return self.publish_many((event,))[-1]

    @abstractmethod
    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        """Send several events at once (all or none refused for bad input); their ids."""

    @abstractmethod
    def subscribe(self, last_event_id: str | None = None) -> HubSubscription:
        """A subscriber: live from now, or resuming right after `last_event_id`; a resume
        that cannot be exact first yields a `gap` event (never a silent loss)."""

    @property
    @abstractmethod
    def stats(self) -> HubStats:
        """Counts and the ids held (may ask the store: `SSEHubUnavailable` when it is gone)."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once `close()` was called."""

    @abstractmethod
    def close(self) -> None:
        """End every local subscriber (after what it has pending); later publishes raise."""

    @abstractmethod
    def ping(self) -> None:
        """Raise `SSEHubUnavailable` when the store does not answer (a health check)."""

    def summary(self) -> str:
        """A short state line for reprs (no I/O, no password)."""
        return f"{'closed' if self.closed else 'open'} on {self.url}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"
