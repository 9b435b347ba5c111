"""The reconnect policy and the pure decision core of `EventSource`.

Everything that decides *what happens next* lives here, free of I/O, so the sync loop (over
`httpx.Client`) and the async loop (over `httpx.AsyncClient`) stay thin and cannot drift
apart: which statuses stream, stop or fail; whether a connection that ended is resumed; how
long to wait; how many consecutive failures are allowed; what the typed error carries.

`RetryPolicy` is immutable and its `bounds()` is a pure function of (attempt, server
`retry:`), so tests check delays without sleeping.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .._errors import (
    SSEContentTypeError,
    SSEError,
    SSEEventTooLarge,
    SSEIdleTimeout,
    SSERetriesExhausted,
    SSEStatusError,
)
from .._parser import EventParser

__all__ = ["RECONNECT_MODES", "STATES", "RetryPolicy", "StreamPlan", "Verdict", "classify"]

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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before reconnecting; immutable, so it can be shared and injected.

    The base delay is the server's last `retry:` (capped at `max_server_retry` seconds, so a
    hostile or mistaken server cannot park a client for hours), else `initial`. Consecutive
    failures grow it by `multiplier` up to `maximum` (or the server's base when that is
    larger); `jitter` spreads clients that failed together over [(1 - jitter) * d, d].

    Args (seconds unless noted):
        initial: delay when the server sent no `retry:`.
        maximum: ceiling of the exponential backoff.
        multiplier: growth per consecutive failure (>= 1).
        jitter: fraction of the delay that is randomised, 0..1.
        max_server_retry: ceiling applied to the server's `retry:` and `Retry-After`.
    """

    initial: float = 0.5
    maximum: float = 15.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_server_retry: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "max_server_retry"):
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, got {value}")
        if not (1 <= self.multiplier < math.inf):
            raise ValueError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if not (0 <= self.jitter <= 1):
            raise ValueError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    def bounds(self, attempt: int, server_retry_ms: int | None = None) -> tuple[float, float]:
        """The (lowest, highest) delay in seconds before reconnect number `attempt`.

        `attempt` counts consecutive failures (0 or 1: the base delay, 2: base * multiplier,
        ...); `server_retry_ms` is the last `retry:` the stream sent, in milliseconds.
        """
        if server_retry_ms is None:
            base = self.initial
        else:
            base = min(server_retry_ms / 1000, self.max_server_retry)
        cap = max(self.maximum, base)
        steps = max(attempt - 1, 0)
        if base == 0 or self.multiplier == 1 or steps == 0:
            high = min(base, cap)
        elif steps * math.log(self.multiplier) >= math.log(cap / base):
            high = cap  # avoids overflow in multiplier ** steps
        else:
            high = min(cap, base * self.multiplier**steps)
        return high * (1 - self.jitter), high

    def delay(
        self, attempt: int, server_retry_ms: int | None = None, rand: float | None = None
    ) -> float:
        """A delay within `bounds()`; `rand` in [0, 1) picks it (random when None)."""
        low, high = self.bounds(attempt, server_retry_ms)
        r = random.random() if rand is None else rand
        return low + (high - low) * r


class StreamPlan:
    """The bookkeeping of one `EventSource` across its connections; no I/O.

    The loops call `begin()` before each attempt, `opened()` with the response's status,
    then either an error constructor or nothing, and `end()` when the connection is over:
    `end()` returns the delay before the next attempt, None to stop quietly, or raises the
    typed error that ends the stream.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        reconnect: str = "auto",
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
        self.url = url
        self.method = method.upper()
        self.reconnect = reconnect
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
        # A seeded id is the caller declaring the stream resumable.
        self.resumable = bool(last_event_id)
        self.parser = EventParser(last_event_id or "", max_event_bytes)
        self._start_id = self.parser.last_event_id

    @property
    def last_event_id(self) -> str:
        """The id a resume would send: the current connection's, live."""
        return self.parser.last_event_id

    def set_state(self, state: str) -> None:
        """Move to `state`, telling `on_state` about real changes only."""
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    def begin(self) -> EventParser:
        """Start an attempt: a fresh parser (an unterminated block from a dropped connection
        is discarded, as the standard says) that carries the last event id over."""
        if self.attempts:
            self.reconnects += 1
        self.attempts += 1
        if self.attempts == 1 and self.on_state is not None:
            self.on_state(self.state)  # "connecting": announced once iteration starts
        self.set_state("reconnecting" if self.reconnects else "connecting")
        self.parser = EventParser(self.parser.last_event_id, self.max_event_bytes)
        self._start_id = self.parser.last_event_id
        self.status, self.headers = None, {}  # errors must not carry a stale response
        return self.parser

    def request_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """Headers for the next request; the caller's (auth included) on every attempt."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if extra:
            headers.update(extra)
        if self.parser.last_event_id:
            headers["Last-Event-ID"] = self.parser.last_event_id
        return headers

    def opened(self, status: int, headers: Mapping[str, str]) -> Verdict:
        """Record a response and say what to do with it; "open" only when it streams."""
        self.status = status
        self.headers = headers
        verdict = classify(status, headers.get("content-type"))
        if verdict == "stream":
            self.set_state("open")
        return verdict

    def _error(self, cls: type[SSEError], message: str, body: str | None = None) -> SSEError:
        """An error of type `cls` carrying this stream's context."""
        return cls(
            message,
            url=self.url,
            status=self.status,
            headers=self.headers,
            body=body,
            last_event_id=self.parser.last_event_id,
        )

    def response_error(self, verdict: Verdict, body: bytes) -> SSEError:
        """The typed error for a response that does not stream, with the first bytes of its
        body. Fatal ones ("fatal", "content-type") close the stream here; raise them."""
        text = body[:BODY_HEAD].decode("utf-8", "replace")
        if verdict == "content-type":
            self.set_state("closed")
            ctype = self.headers.get("content-type")
            return self._error(
                SSEContentTypeError, f"expected text/event-stream, got {ctype!r}", text
            )
        if verdict == "fatal":
            self.set_state("closed")
        return self._error(SSEStatusError, f"HTTP {self.status}", text)

    def network_error(self, exc: BaseException, *, idle: bool) -> SSEError:
        """The typed error for a transport failure (`idle`: the read timeout fired)."""
        if idle:
            err = self._error(SSEIdleTimeout, f"no bytes within idle_timeout={self.idle_timeout}s")
        else:
            err = self._error(SSEError, f"connection failed: {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err

    def too_large(self, exc: SSEEventTooLarge) -> SSEEventTooLarge:
        """Stamp the connection's context on the parser's oversize error; the stream ends."""
        exc.url, exc.status, exc.headers = self.url, self.status, dict(self.headers)
        exc.last_event_id = self.parser.last_event_id
        self.set_state("closed")
        return exc

    def end(self, delivered: int, error: SSEError | None) -> float | None:
        """A connection is over: `delivered` events came through it, `error` is why it broke
        (None: a clean end). Returns the delay before reconnecting or None to stop quietly;
        raises `error` (or `SSERetriesExhausted`) when the stream must not go on."""
        parser = self.parser
        parser.close()
        if parser.retry is not None:
            self.server_retry = parser.retry
        # progress: the id moved on; or, on a stream without ids, any event. On a stream with
        # ids, id-less events alone (a hub's `error` event each time, say) are no progress, so
        # a server that only reports failure cannot keep the retry count at zero
        moved = parser.last_event_id != self._start_id
        progressed = moved or (delivered > 0 and not parser.last_event_id)
        if parser.retry is not None or parser.last_event_id != self._start_id:
            self.resumable = True
        if progressed:
            self.failures = 0
        if self.reconnect == "never":
            again = False
        elif self.reconnect == "always":
            again = True
        elif error is None:
            again = self.resumable
        else:
            again = self.resumable or self.method == "GET"
        if not again:
            self.set_state("closed")
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
                    last_event_id=self.parser.last_event_id,
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

    def close(self) -> None:
        """The stream is over for good (close(), the done sentinel, 204, a raised error)."""
        self.parser.close()
        self.set_state("closed")


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds when given as delta-seconds (HTTP dates are ignored)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
