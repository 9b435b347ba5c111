"""`Hub`: the public entry of the hub, on whichever backend its `backend` URL names."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from ._backend import HubBackend, HubStats, HubSubscription, Publishable
from ._registry import open_backend
from ._response import HubResponse

__all__ = ["Hub"]


class Hub(HubBackend):
    """Fan events out to many subscribers, each with a bounded queue, with replay by id.

    `publish()` (any thread) encodes once and gives each event an id; `subscribe(last_event_id)`
    returns a subscription (live, or resuming exactly after that id; a `gap` event when it
    cannot be exact); `response(request)` serves one for an endpoint. A subscriber more than
    `queue` events behind never slows the others. `buffer` events are kept for replay.

    `backend` names the store by URL scheme (`_registry.py`): "memory" (this process; ids
    count up from `start`, "clock" by default: microseconds now, so a restarted hub never
    reissues an id) or `redis://host:port/db?stream=name` (a Redis stream shared by several
    server processes; ids are stream ids, `buffer` is the stream's MAXLEN, `start` does not
    apply). Whatever the backend, a `Hub` is a `Hub`: `hub.store` is the backend object.
    """

    def __init__(
        self,
        *,
        buffer: int = 10_000,
        queue: int = 1_000,
        backend: str = "memory",
        start: int | str = "clock",
    ) -> None:
        self._store = open_backend(backend, buffer=buffer, queue=queue, start=start)
        self.url = self._store.url
        self.buffer = self._store.buffer

    @property
    def store(self) -> HubBackend:
        """The backend this hub runs on (a `MemoryBackend`, a `RedisBackend`, ...)."""
        return self._store

    @property
    def backend(self) -> str:
        """The backend's name or URL ("memory", or the Redis URL with its password hidden)."""
        return self._store.url

    def publish(self, event: Publishable) -> str:
        """Send one event (Event, dict or str data) to every subscriber; returns its id."""
        return self._store.publish_many((event,))[-1]

    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        """Send several events at once (nothing is sent when one is refused); their ids."""
        return self._store.publish_many(events)

    def subscribe(self, last_event_id: str | None = None) -> HubSubscription:
        """A subscriber: live from now, or resuming right after `last_event_id`.

        An id the store no longer holds (or never issued) first yields an id-less `gap` event
        with `first_id` (the oldest id held), then every held event: never a silent loss.
        """
        return self._store.subscribe(last_event_id)

    def response(
        self, request: Request | None = None, *, last_event_id: str | None = None,
        heartbeat: float | None = 15.0,
    ) -> Response:  # fmt: skip
        """An endpoint's answer: a subscription (resuming from the request's Last-Event-ID)
        served as an event stream; 204 once the hub is closed, so clients stop."""
        if self._store.closed:
            return Response(status_code=204)
        if last_event_id is None and request is not None:
            last_event_id = request.headers.get("last-event-id", "").strip() or None
        return HubResponse(self._store.subscribe(last_event_id), heartbeat=heartbeat)

    @property
    def stats(self) -> HubStats:
        """Counts, the ids held, and `behind`: events the slowest subscriber has yet to take
        (None when the backend cannot tell)."""
        return self._store.stats

    @property
    def closed(self) -> bool:
        return self._store.closed

    def close(self) -> None:
        """End every subscriber cleanly (after the events it has pending); later publishes
        raise, later `response()` calls answer 204."""
        self._store.close()

    def ping(self) -> None:
        """Raise `SSEHubUnavailable` when the backend's store does not answer."""
        self._store.ping()

    def summary(self) -> str:
        return self._store.summary()

    def __repr__(self) -> str:
        return f"<ssenb.Hub {self.summary()}>"
