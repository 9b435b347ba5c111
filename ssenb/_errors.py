"""The exception tree. Every error ssenb raises on purpose is an `SSEError`.

    SSEError                      root; carries url, status, headers, body, last_event_id
    ├── SSEStatusError            a status that ends the stream for good (4xx but 408/429)
    ├── SSEContentTypeError       the response is not text/event-stream
    ├── SSEEventTooLarge          one event grew past max_event_bytes (also a ValueError)
    ├── SSEIdleTimeout            no bytes (not even a heartbeat) within idle_timeout
    ├── SSERetriesExhausted       max_retries consecutive failed attempts; cause chained
    ├── SSEStreamInterrupted      a POST (non-GET) stream broke and is not sent again; cause chained
    ├── SSEEncodeError            encode() refused a field that would corrupt the stream
    └── SSEHubUnavailable         a hub's store (Redis) failed a publish; `added` says what landed

Context travels with the error so a notebook user can see what the server said without
re-running anything: `err.status`, `err.headers`, `err.body` (the first bytes, decoded),
`err.last_event_id` (where a resume would start) and `err.events` (events parsed before
the fault, which are never thrown away). `partial` is set by the data layer to what was
collected before the error (a DataFrame).

`SSEResumeWarning` (a `UserWarning`, not an error) says a server did not resume from
`Last-Event-ID`: it replayed events already delivered, which ssenb dropped.

Every value shown in a message (`str(err)`) is shortened by `shorten`: a 10 MB id or URL is
printed as its head, its tail and its length, never whole (the attributes keep it whole).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "SSEConnectTimeout",
    "SSEContentTypeError",
    "SSEEncodeError",
    "SSEError",
    "SSEEventTooLarge",
    "SSEHubUnavailable",
    "SSEIdleTimeout",
    "SSEResumeWarning",
    "SSERetriesExhausted",
    "SSEStatusError",
    "SSEStreamInterrupted",
]

SHOWN_CHARS = 200  # the most characters of one value a message or repr shows


def shorten(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as text of at most about `limit` characters: a long one keeps its head and tail
    around an ellipsis and says how long it was, so a message stays readable and bounded."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 4
    return f"{text[:head]}…{text[len(text) - tail :]} ({len(text):,} chars)"


class SSEError(Exception):
    """Root of every ssenb error; carries the context of the stream it came from."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        last_event_id: str = "",
        events: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body
        self.last_event_id = last_event_id
        self.events: list[Any] = list(events)
        self.partial: Any = None

    def __str__(self) -> str:
        parts = [shorten(self.message, 4 * SHOWN_CHARS)]
        if self.url:
            parts.append(f"url={shorten(self.url)}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.last_event_id:
            parts.append(f"last_event_id={shorten(repr(self.last_event_id))}")
        if self.body:
            parts.append(f"body={self.body[:SHOWN_CHARS]!r}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({shorten(repr(self.message), 4 * SHOWN_CHARS)})"


class SSEStatusError(SSEError):
    """The server answered with a status that must not be retried (4xx other than 408/429)."""


class SSEContentTypeError(SSEError):
    """The response's content type is not text/event-stream (an HTML error page, JSON, ...)."""


class SSEEventTooLarge(SSEError, ValueError):
    """One event (or one unterminated line) grew past `max_event_bytes`."""


class SSEIdleTimeout(SSEError, TimeoutError):
    """Nothing arrived, not even a heartbeat comment, within `idle_timeout` seconds."""


class SSEConnectTimeout(SSEError, TimeoutError):
    """`timeout` passed before the stream ever opened (unreachable host, refused connection,
    a server answering only retryable errors). `__cause__` is the last connection failure
    when one was seen; `attempts` counts the connections tried; `.partial` is what the caller
    holds (an empty DataFrame for `collect`, 0 for `record`)."""

    def __init__(self, message: str, *, attempts: int = 0, **context: Any) -> None:
        super().__init__(message, **context)
        self.attempts = attempts


class SSERetriesExhausted(SSEError):
    """`max_retries` consecutive attempts failed; `__cause__` is the last failure."""

    def __init__(self, message: str, *, attempts: int = 0, **context: Any) -> None:
        super().__init__(message, **context)
        self.attempts = attempts


class SSEStreamInterrupted(SSEError):
    """A stream sent with a method other than GET broke after it opened, and ssenb will not
    send that request again on its own (it could run a tool call or an LLM request twice).

    `received` counts the events delivered before the break, `last_event_id` is where a
    resume would start, `status`/`headers` are the response's; `__cause__` is the failure.
    Pass `resume="resend"` or `resume="get"` (or a URL) to `EventSource` to resume instead.
    """

    def __init__(self, message: str, *, received: int = 0, **context: Any) -> None:
        super().__init__(message, **context)
        self.received = received


class SSEResumeWarning(UserWarning):
    """The server did not resume from `Last-Event-ID`: a reconnection brought back events
    already delivered. ssenb drops them (none is yielded twice); after a clean end the
    stream ends there, after a drop it skips to where it was."""


class SSEEncodeError(SSEError, ValueError):
    """`encode()` refused a field: a newline in `event`/`id`, NUL in `id`, or a bad `retry`."""


class SSEHubUnavailable(SSEError, ConnectionError):
    """A hub's store (Redis) did not take a publish. `added` lists the ids of the events that
    were stored before the failure (a `publish_many` of more than one batch can land in
    part), `last_event_id` the last of them; `url` names the store, password hidden."""

    def __init__(self, message: str, *, added: Sequence[str] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.added: list[str] = list(added)
