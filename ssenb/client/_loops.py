"""The two wire loops behind `EventSource`: one over `httpx.Client`, one over
`httpx.AsyncClient` (the sync one never touches asyncio).

Both are thin: every decision (statuses, resuming, delays, counters, typed errors) is the
pure `StreamPlan`'s, and stopping is the `Closer`'s. Bytes come from `iter_bytes` /
`aiter_bytes`, which undo gzip (raw bytes would not), straight into the core `EventParser`,
never through httpx's line splitting (it cuts at U+2028). They yield one list per read, so
per event there is no Python work at all here: the done sentinel is found in C.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import httpx

from .._errors import SSEError, SSEEventTooLarge
from .._models import Event
from ._closing import Closer
from ._policy import BODY_HEAD, StreamPlan, Verdict

__all__ = ["Request", "async_batches", "sync_batches", "until_done"]

_data = itemgetter(1)  # Event.data, read in C


@dataclass(frozen=True, slots=True)
class Request:
    """What every attempt sends; the plan adds `Last-Event-ID` and the SSE headers.

    `resume_url` (None: re-send this request) is what a reconnection GETs instead, for a
    stream whose caller said `resume="get"` or gave a URL (MCP's streamable HTTP transport
    resumes a POST's stream that way)."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Any
    json: Any
    timeout: httpx.Timeout
    done: str | None
    resume_url: str | None = None

    def kwargs(self, plan: StreamPlan) -> dict[str, Any]:
        return {
            # UTF-8, as browsers send it: an id such as "é1" must resume, not fail to encode
            "headers": httpx.Headers(plan.request_headers(self.headers), encoding="utf-8"),
            "params": self.params,
            "json": self.json,
            "timeout": self.timeout,
            "follow_redirects": True,
        }

    def attempt(self, plan: StreamPlan) -> tuple[str, str, dict[str, Any]]:
        """(method, url, httpx keyword arguments) of the next attempt."""
        kwargs = self.kwargs(plan)
        if plan.reconnects and self.resume_url is not None:
            kwargs["json"] = None
            if self.resume_url != self.url:
                kwargs["params"] = None
            return "GET", self.resume_url, kwargs
        return self.method, self.url, kwargs


def until_done(events: list[Event], done: str | None) -> tuple[list[Event], bool]:
    """The events before the done sentinel, and whether it was among them."""
    if done is None or done not in map(_data, events):
        return events, False
    return events[: list(map(_data, events)).index(done)], True


def _step(
    feed: Any, chunk: bytes, done: str | None, plan: StreamPlan
) -> tuple[list[Event], bool, SSEError | None]:
    """Parse one read: the events to yield, whether the stream ends here (the `done`
    sentinel, or a server replaying after a clean end), and an error to raise once those
    events are out (an oversized event: nothing before it is lost)."""
    fatal: SSEError | None = None
    try:
        events = feed(chunk)
    except SSEEventTooLarge as exc:
        events, fatal = exc.events, plan.too_large(exc)
    events, over = plan.received(events)  # also learns a `retry:` whose line just completed
    if not events:
        return events, over, fatal
    events, finished = until_done(events, done)
    return events, finished or over, fatal


def _failure(plan: StreamPlan, closer: Closer, exc: httpx.HTTPError) -> SSEError | None:
    """The typed error for an httpx failure: None after close() (end quietly); raised at
    once when it is not a transport problem (too many redirects, a bad gzip body)."""
    if closer.closed:
        return None
    if isinstance(exc, httpx.TransportError):
        return plan.network_error(exc, idle=isinstance(exc, httpx.ReadTimeout))
    plan.set_state("closed")
    raise plan.network_error(exc, idle=False) from exc


def _refused(plan: StreamPlan, verdict: Verdict, body: bytearray) -> SSEError:
    """The error for a response that does not stream; raised when it ends the stream."""
    error = plan.response_error(verdict, bytes(body))
    if plan.state == "closed":
        raise error
    return error


def sync_batches(
    req: Request, plan: StreamPlan, closer: Closer, given: httpx.Client | None
) -> Generator[list[Event], None, None]:
    """Connect, stream and reconnect over `httpx.Client` (no asyncio anywhere), yielding
    the events of each read as one list, until the plan or `closer` says stop."""
    if closer.closed:
        return
    done = req.done
    closer.owner = threading.get_ident()
    client = httpx.Client() if given is None else given
    try:
        while not closer.closed:
            feed = plan.begin().feed
            delivered = 0
            error: SSEError | None = None
            try:
                method, url, kwargs = req.attempt(plan)
                with client.stream(method, url, **kwargs) as response:
                    closer.response = response
                    verdict = plan.opened(response.status_code, response.headers)
                    if verdict == "stop":
                        return
                    if verdict != "stream":
                        body = bytearray()
                        for chunk in response.iter_bytes():
                            body += chunk
                            if len(body) >= BODY_HEAD:
                                break
                        error = _refused(plan, verdict, body)
                    else:
                        for chunk in response.iter_bytes():
                            events, finished, fatal = _step(feed, chunk, done, plan)
                            if events:
                                delivered += len(events)
                                yield events
                            if finished or closer.closed:
                                return
                            if fatal is not None:
                                raise fatal
            except httpx.HTTPError as exc:
                error = _failure(plan, closer, exc)
                if error is None:
                    return
            finally:
                closer.response = None
            if closer.stopped():
                return
            delay = plan.end(delivered, error)
            if delay is None or closer.wait(delay):
                return
    finally:
        closer.closed = True
        plan.close()
        if given is None:
            client.close()


async def async_batches(
    req: Request, plan: StreamPlan, closer: Closer, given: httpx.AsyncClient | None
) -> AsyncGenerator[list[Event], None]:
    """`sync_batches` over `httpx.AsyncClient`; the reconnect wait is cut short by close()."""
    if closer.closed:
        return
    done = req.done
    client = httpx.AsyncClient() if given is None else given
    wake = closer.bind_loop()
    try:
        while not closer.closed:
            feed = plan.begin().feed
            delivered = 0
            error: SSEError | None = None
            try:
                method, url, kwargs = req.attempt(plan)
                async with client.stream(method, url, **kwargs) as response:
                    closer.response = response
                    verdict = plan.opened(response.status_code, response.headers)
                    if verdict == "stop":
                        return
                    if verdict != "stream":
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body += chunk
                            if len(body) >= BODY_HEAD:
                                break
                        error = _refused(plan, verdict, body)
                    else:
                        async for chunk in response.aiter_bytes():
                            events, finished, fatal = _step(feed, chunk, done, plan)
                            if events:
                                delivered += len(events)
                                yield events
                                events = []  # not kept alive through the next read (GC)
                            if finished or closer.closed:
                                return
                            if fatal is not None:
                                raise fatal
            except httpx.HTTPError as exc:
                error = _failure(plan, closer, exc)
                if error is None:
                    return
            finally:
                closer.response = None
            if closer.stopped():
                return
            delay = plan.end(delivered, error)
            if delay is None or await closer.wait_async(wake, delay):
                return
    finally:
        closer.closed = True
        closer.unbind_loop()
        plan.close()
        if given is None:
            await client.aclose()
