"""`EventSource`: a spec-exact, resuming SSE client over httpx, sync and async.

This is the public surface only: iteration entry points, live state, closing. What
happens on the wire is in `_loops` (one thin loop per httpx client kind), every decision
in the pure `_policy.StreamPlan`, and reaching a running iteration in `_closing.Closer`.
Sync events are handed out by `itertools.chain` over per-read batches, so no Python code
runs per event; async ones cost one async-generator step each (`aiter_batches` avoids it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from itertools import chain
from types import TracebackType
from typing import Any

import httpx

from .._errors import shorten
from .._models import Event
from ._closing import Closer
from ._loops import Request, async_batches, sync_batches
from ._policy import RetryPolicy, StreamPlan

__all__ = ["EventSource"]


class EventSource:
    """Consume a Server-Sent Events endpoint: `with EventSource(url) as es: for ev in es:`,
    or `async with` / `async for`.

    Reconnects the way DESIGN.md's "End of a stream" says. With `reconnect="auto"`:

    - a GET stream that declared itself resumable (an `id:` or `retry:` seen, or
      `last_event_id=` given) is resumed with `Last-Event-ID` after a drop or a clean end;
      a GET without ids only after an error;
    - a request with any other method (POST, ...) is never sent again unless `resume=`
      says how: `"resend"` sends the same request again (with `Last-Event-ID`), `"get"`
      GETs the same URL with `Last-Event-ID`, a URL (absolute, or a path) GETs that one, as
      MCP's streamable HTTP transport resumes a POST's stream. Without it a clean end stops
      quietly and a drop raises `SSEStreamInterrupted` (what arrived: `received`,
      `last_event_id`, status, headers; the failure chained);
    - a reconnection never yields an event twice: one that brings back ids already
      delivered (the server ignored `Last-Event-ID`) warns with `SSEResumeWarning`, tells
      `on_state` "not-resumed", and ends the stream after a clean end (after a drop it
      skips the replay to where it was); one that brings nothing new after a clean end
      (an empty 200, as `fastapi.sse` sends past its end) ends it quietly.

    `"always"` behaves like a browser's EventSource: it reconnects after every end and yields
    whatever comes back, duplicates included (a non-GET needs `resume=` for it). `"never"`
    makes one attempt. Every mode stops for good on 204 (quietly), on 4xx other than
    408/429 (`SSEStatusError`), on a non-SSE content type (`SSEContentTypeError`), on
    `close()`, and quietly at an event whose data equals `done`. Consecutive attempts that
    bring no event back off from `retry_policy.floor` whatever `retry:` says.

    `connect_timeout` bounds connecting; `idle_timeout` bounds the silence between any two
    reads (set it above the server's heartbeat interval to detect dead connections).
    Headers given here (auth included) go out on every reconnect. A `client` passed in is
    used as is and left open; otherwise one is created per iteration and closed with it.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        json: Any = None,
        last_event_id: str | None = None,
        reconnect: str = "auto",
        max_retries: int | None = 10,
        done: str | None = "[DONE]",
        connect_timeout: float | None = 10.0,
        idle_timeout: float | None = 60.0,
        max_event_bytes: int | None = 16 << 20,
        client: httpx.Client | httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        on_state: Callable[[str], None] | None = None,
        resume: str | None = None,
    ) -> None:
        self.url = str(url)
        timeout = httpx.Timeout(
            connect=connect_timeout, read=idle_timeout, write=connect_timeout, pool=connect_timeout
        )
        self._plan = StreamPlan(
            self.url,
            method=method,
            reconnect=reconnect,
            resume=resume,
            max_retries=max_retries,
            policy=retry_policy,
            last_event_id=last_event_id,
            max_event_bytes=max_event_bytes,
            idle_timeout=idle_timeout,
            on_state=on_state,
        )
        resume_url = None
        if self._plan.resumes_by_get:
            resume_url = (
                self.url if resume == "get" else str(httpx.URL(self.url).join(resume or ""))
            )
        self._req = Request(
            self._plan.method, self.url, dict(headers or {}), params, json, timeout, done,
            resume_url,
        )  # fmt: skip
        self._client = client
        self._closer = Closer()

    # -- public state ---------------------------------------------------------------------

    @property
    def last_event_id(self) -> str:
        """The id a resume sends as `Last-Event-ID` (live while iterating; while a
        reconnection has not yet shown that it resumed, the id it resumed from)."""
        return self._plan.last_event_id

    @property
    def reconnects(self) -> int:
        """How many times a new connection was made after the first."""
        return self._plan.reconnects

    @property
    def status(self) -> int | None:
        """The HTTP status of the latest response (None before the first)."""
        return self._plan.status

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers of the latest response (case-insensitive when from httpx)."""
        return self._plan.headers

    @property
    def state(self) -> str:
        """ "connecting", "open", "reconnecting" or "closed"."""
        return self._plan.state

    @property
    def retry(self) -> int | None:
        """The reconnection time the server asked for (ms), live: a `retry:` line counts as
        soon as it completes, even in an event not yet dispatched. None until one arrives."""
        return self._plan.server_retry

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._plan.policy

    def __repr__(self) -> str:
        return (
            f"<EventSource {self._req.method} {shorten(self.url)} state={self.state} "
            f"last_event_id={shorten(repr(self.last_event_id))} reconnects={self.reconnects}>"
        )

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop for good, at once: from the loop body, another thread, or after the end.

        A suspended sync iteration is closed here (its connection released before this
        returns); one blocked in a read or a reconnect wait on another thread or task is
        woken and ends quietly. An own httpx client is closed with the iteration.
        """
        if self._closer.closed:
            return
        if self._closer.close() != "signalled":
            self._plan.close()

    async def aclose(self) -> None:
        """Async `close()`: also finishes a suspended async iteration and its connection."""
        gen = self._closer.current()
        self.close()
        if isinstance(gen, AsyncGenerator) and not getattr(gen, "ag_running", False):
            await gen.aclose()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _start(self, mode: str) -> None:
        """Refuse a second concurrent iteration and a client of the other kind."""
        if self._closer.active():
            raise RuntimeError("this EventSource is already being iterated")
        wanted = httpx.Client if mode == "sync" else httpx.AsyncClient
        if self._client is not None and not isinstance(self._client, wanted):
            kind = "`with`/`for`" if mode == "sync" else "`async with`/`async for`"
            raise TypeError(f"{kind} needs an {wanted.__module__}.{wanted.__name__} as client=")

    def _sync_client(self) -> httpx.Client | None:
        return self._client if isinstance(self._client, httpx.Client) else None

    def _async_client(self) -> httpx.AsyncClient | None:
        return self._client if isinstance(self._client, httpx.AsyncClient) else None

    # -- sync loop ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        self._start("sync")
        batches = sync_batches(self._req, self._plan, self._closer, self._sync_client())
        self._closer.track(batches)
        # Events are handed out by C (`chain`): no Python frame runs per event.
        return chain.from_iterable(self._closer.clearing(batches))

    def iter_batches(self) -> Iterator[list[Event]]:
        """Iterate over lists of events instead: each holds the events one read completed
        (never empty). Same rules as iterating events, less per-event overhead."""
        self._start("sync")
        gen = sync_batches(self._req, self._plan, self._closer, self._sync_client())
        self._closer.track(gen)
        return gen

    # -- async loop -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        self._start("async")
        gen = self._events_async()
        self._closer.track(gen)
        return gen

    def aiter_batches(self) -> AsyncIterator[list[Event]]:
        """Async `iter_batches()`: one await per read instead of one per event."""
        self._start("async")
        gen = async_batches(self._req, self._plan, self._closer, self._async_client())
        self._closer.track(gen)
        return gen

    async def _events_async(self) -> AsyncGenerator[Event, None]:
        closer = self._closer
        batches = async_batches(self._req, self._plan, self._closer, self._async_client())
        try:
            async for batch in batches:
                closer.batch = batch  # close() empties it: the rest is never yielded
                for event in batch:
                    yield event
        finally:
            closer.batch = None
            await batches.aclose()
