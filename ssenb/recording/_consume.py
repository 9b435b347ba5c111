"""Blocking "read a stream until n / timeout / until / end" for `collect` and `record`.

Why it runs on the runtime's shared loop (`ssenb._runtime.runtime.loop`):

1. It works the same in a plain script, in a running Jupyter kernel and after the user patched
   asyncio with nest_asyncio: the kernel's loop is never touched and nothing here ever calls
   `asyncio.run`. The loop is started once and shared with `watch`, not one thread and one
   loop per call, and connections are closed on that loop, never by the garbage collector.
2. The deadline is honoured even when the server is silent or unreachable: `asyncio.timeout`
   cancels the read, which closes the connection (or abandons a pending connect or DNS
   look-up) at once.
3. The calling thread waits in short slices (`LoopThread.run`), so Ctrl-C reaches it; the
   read is then cancelled, its connection closed, and KeyboardInterrupt re-raised for the
   caller to turn into "return what arrived".
4. A stream that never opened before the deadline is an error (`SSEConnectTimeout`, with
   the last connection failure as its cause), not a quiet empty result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from .._errors import SSEConnectTimeout
from .._models import Event
from .._runtime import runtime

if TYPE_CHECKING:  # pragma: no cover
    from ..client import EventSource

__all__ = ["SSEConnectTimeout", "Sink", "consume"]

#: called with each event and its arrival time (UTC epoch seconds), on the runtime loop
Sink = Callable[[Event, float], None]


class _Witness(httpx.AsyncBaseTransport):
    """httpx's own transport, remembering the last exception a request raised (the cause
    of `SSEConnectTimeout`; the client turns it into a reconnect and keeps it to itself)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.error: BaseException | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except Exception as exc:
            self.error = exc
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Reading:
    """One read: the events counted and whether the stream ever opened."""

    def __init__(self, on_state: Callable[[str], None] | None) -> None:
        self.count = 0
        self.opened = False
        self._on_state = on_state

    def on_state(self, state: str) -> None:
        if state == "open":
            self.opened = True
        if self._on_state is not None:
            self._on_state(state)


async def _read(
    url: str,
    sink: Sink,
    n: int | None,
    timeout: float | None,
    until: Callable[[Event], bool] | None,
    source_kw: dict[str, Any],
    reading: _Reading,
) -> None:
    from ..client import EventSource  # client and recording are separate layers: lazy

    witness: _Witness | None = None
    client = source_kw.pop("client", None)
    if client is None:
        witness = _Witness()
        client = httpx.AsyncClient(transport=witness)
    source = EventSource(url, client=client, on_state=reading.on_state, **source_kw)
    try:
        async with asyncio.timeout(timeout) as deadline:
            async for batch in source.aiter_batches():
                at = time.time()  # one read, one arrival time
                for event in batch:
                    sink(event, at)
                    reading.count += 1
                    if (n is not None and reading.count >= n) or (
                        until is not None and until(event)
                    ):
                        return
    except TimeoutError as exc:
        if not deadline.expired():
            raise  # the client's own idle timeout: a real error
        if not reading.opened:
            cause = witness.error if witness is not None else None
            raise _never_opened(url, timeout, source, cause) from (cause or exc)
    finally:  # close the iteration and its connection here, on this loop, not in the GC
        await source.aclose()
        if witness is not None:
            await client.aclose()


def _never_opened(
    url: str, timeout: float | None, source: EventSource, last: BaseException | None
) -> SSEConnectTimeout:
    attempts = source.reconnects + 1
    why = f": {type(last).__name__}: {last}" if last is not None else ""
    if source.status is not None:
        why = f": the last answer was HTTP {source.status}{why and ' (' + why[2:] + ')'}"
    return SSEConnectTimeout(
        f"the stream did not open within timeout={timeout}s "
        f"({attempts} attempt{'s' if attempts != 1 else ''}){why}",
        attempts=attempts,
        url=url,
        status=source.status,
        headers=source.headers,
        last_event_id=source.last_event_id,
    )


def consume(
    url: str,
    sink: Sink,
    *,
    n: int | None = None,
    timeout: float | None = None,
    until: Callable[[Event], bool] | None = None,
    **source_kw: Any,
) -> int:
    """Feed `sink` every event of `url` until `n` events, `timeout` seconds, `until(event)`
    returning true (that event included) or the end of the stream; returns the count.

    Blocks the calling thread while the read runs on the runtime loop. Raises the client's
    error (an `SSEError`), `SSEConnectTimeout` when the deadline passed before the stream
    ever opened, or the sink's error; KeyboardInterrupt once the read has stopped and closed
    its connection. `sink` runs on the loop thread, one call per event.
    """
    if n is not None and n <= 0:
        return 0
    reading = _Reading(source_kw.pop("on_state", None))
    runtime.loop.run(_read(url, sink, n, timeout, until, dict(source_kw), reading))
    return reading.count
