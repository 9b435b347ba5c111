"""The reconnect policy and the pure decision core of `EventSource`.

Everything that decides *what happens next* lives here, free of I/O, so the sync loop (over
`httpx.Client`) and the async loop (over `httpx.AsyncClient`) stay thin and cannot drift
apart: which statuses stream, stop or fail; whether a connection that ended is resumed; how
long to wait; how many consecutive failures are allowed; what the typed error carries.

The delays come from `RetryPolicy` (`_backoff`); telling a server that resumed from one that
replays is `ReplayGuard`'s (`_resume`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Literal

from .._errors import (
    SSEContentTypeError,
    SSEError,
    SSEEventTooLarge,
    SSEIdleTimeout,
    SSEResumeWarning,
    SSERetriesExhausted,
    SSEStatusError,
    SSEStreamInterrupted,
    shorten,
)
from .._models import Event
from .._parser import EventParser
from ._backoff import RetryPolicy
from ._resume import ReplayGuard

__all__ = [
    "RECONNECT_MODES",
    "STATES",
    "RetryPolicy",
    "StreamPlan",
    "Verdict",
    "check_resume",
    "classify",
]

RECONNECT_MODES = ("auto", "always", "never")
STATES = ("connecting", "open", "reconnecting", "closed")
BODY_HEAD = 2048  # bytes of an error response's body kept on the error

Verdict = Literal["stream", "stop", "retry", "fatal", "content-type"]


def classify(status: int, content_type: str | None) -> Verdict:
    """What a response's status and content type mean for the stream.

    204 stops quietly (the server's "no more events"); other 2xx stream when the type is
    `text/event-stream` (parameters such as charset allowed); 5xx, 408 and 429 are retryable
    failures; every other status, including 4xx and an unfollowed 3xx, ends it for good.
    """
    if status == 204:
        return "stop"
    if 200 <= status < 300:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        return "stream" if media == "text/event-stream" else "content-type"
    if status >= 500 or status in (408, 429):
        return "retry"
    return "fatal"


class StreamPlan:
    """The bookkeeping of one `EventSource` across its connections; no I/O.

    The loops call `begin()` before each attempt, `opened()` with the response's status,
    `received()` with the events of each read, then either an error constructor or nothing,
    and `end()` when the connection is over: `end()` returns the delay before the next
    attempt, None to stop quietly, or raises the typed error that ends the stream.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        reconnect: str = "auto",
        resume: str | None = None,
        max_retries: int | None = 10,
        policy: RetryPolicy | None = None,
        last_event_id: str | None = None,
        max_event_bytes: int | None = None,
        idle_timeout: float | None = None,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        if reconnect not in RECONNECT_MODES:
            raise ValueError(f"reconnect must be one of {RECONNECT_MODES}, got {reconnect!r}")
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, got {max_retries}")
        self.method = method.upper()
        check_resume(self.method, reconnect, resume)
        self.url = url
        self.reconnect = reconnect
        self.resume = resume
        self.max_retries = max_retries
        self.policy = policy if policy is not None else RetryPolicy()
        self.max_event_bytes = max_event_bytes
        self.idle_timeout = idle_timeout
        self.on_state = on_state
        self.state = "connecting"
        self.status: int | None = None
        self.headers: Mapping[str, str] = {}
        self.server_retry: int | None = None
        self.reconnects = 0
        self.failures = 0
        self.attempts = 0
        self.received_total = 0  # events delivered over every connection
        self.replays = 0  # reconnections found replaying what was delivered
        # A seeded id is the caller declaring the stream resumable.
        self.resumable = bool(last_event_id)
        self.parser = EventParser(last_event_id or "", max_event_bytes)
        self._start_id = self.parser.last_event_id
        self.guard = ReplayGuard()
        self._after_clean = False  # the previous connection ended without an error
        self._head: list[Event] | None = None  # this connection's first and last reads
        self._tail: list[Event] | None = None
        self._heard = 0  # events this connection parsed, copies the guard dropped included

    @property
    def last_event_id(self) -> str:
        """The id a resume would send: the current connection's, live; the one it resumed
        from while a reconnection has not shown that it resumed (a replay moves no id)."""
        return self._start_id if self.guard.judging else self.parser.last_event_id

    def set_state(self, state: str) -> None:
        """Move to `state`, telling `on_state` about real changes only."""
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    def begin(self) -> EventParser:
        """Start an attempt: a fresh parser (an unterminated block from a dropped connection
        is discarded, as the standard says) that carries the last event id over."""
        start = self.last_event_id
        if self.attempts:
            self.reconnects += 1
            if self.reconnect == "auto":
                self.guard.arm(start)  # browsers ("always") take whatever comes back
        self.attempts += 1
        if self.attempts == 1 and self.on_state is not None:
            self.on_state(self.state)  # "connecting": announced once iteration starts
        self.set_state("reconnecting" if self.reconnects else "connecting")
        self.parser = EventParser(start, self.max_event_bytes)
        self._start_id = start
        self._head = self._tail = None
        self._heard = 0
        self.status, self.headers = None, {}  # errors must not carry a stale response
        return self.parser

    @property
    def resumes_by_get(self) -> bool:
        """Reconnections GET `resume` (a URL, or "get": the same one) instead of re-sending."""
        return self.resume not in (None, "resend")

    def request_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """Headers for the next request; the caller's (auth included) on every attempt."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if extra:
            headers.update(extra)
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def opened(self, status: int, headers: Mapping[str, str]) -> Verdict:
        """Record a response and say what to do with it; "open" only when it streams."""
        self.status = status
        self.headers = headers
        verdict = classify(status, headers.get("content-type"))
        if verdict == "stream":
            self.set_state("open")
        return verdict

    def received(self, events: list[Event]) -> tuple[list[Event], bool]:
        """One read's events: those to deliver, and whether the stream ends here (a server
        that replayed after a clean end). Per read, never per event, once resumed."""
        retry = self.parser.retry  # learnt as soon as its line completes, not at dispatch
        if retry is not None:
            self.server_retry = retry
        self._heard += len(events)  # before screening: whether the server said anything
        if self.guard.judging and events:
            events, replayed = self.guard.screen(events)
            if replayed:
                self._replayed()
                if self._after_clean:
                    return [], True
        if events:
            if self._head is None:
                self._head = events
            self._tail = events
        return events, False

    def _replayed(self) -> None:
        """Say once per reconnection that the server did not resume (warning + on_state)."""
        self.replays += 1
        what = "the stream is over" if self._after_clean else "skipping what it replays"
        warnings.warn(
            SSEResumeWarning(
                f"{shorten(self.url)} does not resume from Last-Event-ID "
                f"{shorten(repr(self._start_id))}: it sent events already delivered again; "
                f"{what} (no event is yielded twice; reconnect='always' behaves like a browser)"
            ),
            stacklevel=2,
        )
        if self.on_state is not None:
            self.on_state("not-resumed")

    def _error(self, cls: type[SSEError], message: str, body: str | None = None) -> SSEError:
        """An error of type `cls` carrying this stream's context."""
        return cls(
            message,
            url=self.url,
            status=self.status,
            headers=self.headers,
            body=body,
            last_event_id=self.last_event_id,
        )

    def response_error(self, verdict: Verdict, body: bytes) -> SSEError:
        """The typed error for a response that does not stream, with the first bytes of its
        body. Fatal ones ("fatal", "content-type") close the stream here; raise them."""
        text = body[:BODY_HEAD].decode("utf-8", "replace")
        if verdict == "content-type":
            self.set_state("closed")
            ctype = shorten(repr(self.headers.get("content-type")))
            return self._error(
                SSEContentTypeError, f"expected text/event-stream, got {ctype}", text
            )
        if verdict == "fatal":
            self.set_state("closed")
        return self._error(SSEStatusError, f"HTTP {self.status}", text)

    def network_error(self, exc: BaseException, *, idle: bool) -> SSEError:
        """The typed error for a transport failure (`idle`: the read timeout fired)."""
        if idle:
            err = self._error(SSEIdleTimeout, f"no bytes within idle_timeout={self.idle_timeout}s")
        else:
            what = shorten(f"{type(exc).__name__}: {exc}")
            err = self._error(SSEError, f"connection failed: {what}")
        err.__cause__ = exc
        return err

    def too_large(self, exc: SSEEventTooLarge) -> SSEEventTooLarge:
        """Stamp the connection's context on the parser's oversize error; the stream ends."""
        exc.url, exc.status, exc.headers = self.url, self.status, dict(self.headers)
        exc.last_event_id = self.last_event_id
        self.set_state("closed")
        return exc

    def _again(
        self, error: SSEError | None, progressed: bool, after_clean: bool, heard: int
    ) -> bool:
        """DESIGN.md's "End of a stream": whether this connection's end is resumed."""
        if self.reconnect != "auto":
            return self.reconnect == "always"
        if self.method != "GET" and self.resume is None:
            return False  # never sent again without the caller saying how to resume
        if error is None:  # a clean end; an empty one right after a clean end is final (the
            # stream is over); one that said something (a hub's id-less `error` event while its
            # store is down) is retried, and counts as a failure towards `max_retries`
            return self.resumable and not (after_clean and not progressed and heard == 0)
        if self.resumes_by_get:
            return bool(self.last_event_id)  # a GET without an id would not resume anything
        return self.resumable or self.method == "GET" or self.resume == "resend"

    def end(self, delivered: int, error: SSEError | None) -> float | None:
        """A connection is over: `delivered` events came through it, `error` is why it broke
        (None: a clean end). Returns the delay before reconnecting or None to stop quietly;
        raises `error` (or `SSERetriesExhausted`, `SSEStreamInterrupted`) when it must stop."""
        parser = self.parser
        parser.close()
        if parser.retry is not None:
            self.server_retry = parser.retry
        self.received_total += delivered
        if self._head is not None:
            self.guard.remember(self._head, first=True)
        if self._tail is not None and self._tail is not self._head:
            self.guard.remember(self._tail)
        self._head = self._tail = None  # remembered: keep ids, not a read's worth of events
        # progress: the id moved on (not while a reconnection replays); or, on a stream without
        # ids, any event. On a stream with ids, id-less events alone (a hub's `error` event each
        # time, say) are no progress, so a server that only reports failure cannot keep the
        # retry count at zero
        moved = self.last_event_id != self._start_id
        progressed = moved or (delivered > 0 and not self.last_event_id)
        if parser.retry is not None or moved:
            self.resumable = True
        if progressed:
            self.failures = 0
        after_clean, self._after_clean = self._after_clean, error is None
        if not self._again(error, progressed, after_clean, self._heard):
            opened = self.state == "open"
            self.set_state("closed")
            if error is not None and opened and self.method != "GET":
                raise self._interrupted(error)
            if error is not None:
                raise error
            return None
        # A connection that ended without bringing anything counts as failed, so an empty
        # stream that closes at once cannot spin in a tight loop.
        if error is not None or not progressed:
            self.failures += 1
            if self.max_retries is not None and self.failures > self.max_retries:
                self.set_state("closed")
                last = f": {error.message}" if error is not None else ""
                exhausted = SSERetriesExhausted(
                    f"gave up after {self.failures} consecutive failed attempts{last}",
                    attempts=self.failures,
                    url=self.url,
                    status=self.status,
                    headers=self.headers,
                    last_event_id=self.last_event_id,
                )
                exhausted.__cause__ = error
                raise exhausted
        self.set_state("reconnecting")
        delay = self.policy.delay(self.failures, self.server_retry)
        if error is not None and error.status in (429, 503):
            after = _retry_after(error.headers.get("retry-after"))
            if after is not None:
                delay = max(delay, min(after, self.policy.max_server_retry))
        return delay

    def _interrupted(self, error: SSEError) -> SSEStreamInterrupted:
        """A non-GET stream broke: say what arrived; the request is not sent again."""
        hint = (
            "pass resume='resend' or resume='get' (or a URL) to resume"
            if self.resume is None
            else f"resume={self.resume!r} needs an id to resume from"
        )
        err = SSEStreamInterrupted(
            f"{self.method} stream broke after {self.received_total} events and is not sent "
            f"again ({hint}): {error.message}",
            received=self.received_total,
            url=self.url,
            status=self.status,
            headers=self.headers,
            last_event_id=self.last_event_id,
        )
        err.__cause__ = error
        return err

    def close(self) -> None:
        """The stream is over for good (close(), the done sentinel, 204, a raised error)."""
        self.parser.close()
        self._head = self._tail = None  # no reconnection will be judged: drop the reads
        self.set_state("closed")


def check_resume(method: str, reconnect: str, resume: str | None) -> None:
    """Refuse a `resume=` that says nothing usable, and a browser-style `reconnect="always"`
    that would re-send a non-GET request the caller never said how to resume."""
    targets = ("http://", "https://", "/")
    if resume not in (None, "resend", "get") and not str(resume).startswith(targets):
        raise ValueError(
            "resume must be 'resend', 'get' or a URL (absolute, or a path from '/'), "
            f"got {shorten(repr(resume))}"
        )
    if method != "GET" and reconnect == "always" and resume is None:
        raise ValueError(
            f"reconnect='always' would send this {method} again: say how to resume with "
            "resume='resend' (send the same request again) or resume='get' / a URL (GET it "
            "with Last-Event-ID, as MCP's streamable HTTP transport does)"
        )


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds when given as delta-seconds (HTTP dates are ignored)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
