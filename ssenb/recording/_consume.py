"""Blocking "read a stream until n / timeout / until / end" for `collect` and `record`.

Why a worker thread with its own asyncio loop:

1. It works the same in a plain script and inside a running Jupyter kernel: the kernel's
   loop is never touched, `asyncio.run` only ever runs in a thread that has no loop, and no
   nest_asyncio is needed.
2. The deadline is honoured even when the server is silent: the async client is cancelled
   by `asyncio.timeout`, which closes the connection at once, where a blocking sync read
   would sit until its idle timeout.
3. The calling thread only waits on an event in short slices, so Ctrl-C reaches it; it then
   cancels the worker, waits for it to close the connection, and re-raises
   KeyboardInterrupt for the caller to turn into "return what arrived".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from .._models import Event

__all__ = ["Sink", "consume"]

#: called with each event and its arrival time (UTC epoch seconds), in the worker thread
Sink = Callable[[Event, float], None]

_JOIN_AFTER_CANCEL = 10.0


class _Worker:
    def __init__(
        self,
        url: str,
        sink: Sink,
        n: int | None,
        timeout: float | None,
        until: Callable[[Event], bool] | None,
        source_kw: dict[str, Any],
    ) -> None:
        self.url, self.sink, self.n, self.timeout, self.until = url, sink, n, timeout, until
        self.source_kw = source_kw
        self.count = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the waiting thread, never lost
            self.error = exc
        finally:
            self.done.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                await self._read()
        except TimeoutError:
            if not deadline.expired():
                raise  # the client's own idle timeout: a real error
        except asyncio.CancelledError:
            pass  # cancelled by the waiting thread (Ctrl-C)

    async def _read(self) -> None:
        from ..client import EventSource  # client and record are separate layers: lazy

        if self.n is not None and self.n <= 0:
            return
        sink, until, n = self.sink, self.until, self.n
        async with EventSource(self.url, **self.source_kw) as source:
            events = aiter(source)
            try:
                async for event in events:
                    sink(event, time.time())
                    self.count += 1
                    if (n is not None and self.count >= n) or (until is not None and until(event)):
                        return
            finally:  # close the iterator here, on this loop, not later in the GC
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()

    def cancel(self) -> None:
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # the loop already finished


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

    Raises the client's error (an `SSEError`) or the sink's; KeyboardInterrupt after the
    worker has stopped and closed its connection.
    """
    worker = _Worker(url, sink, n, timeout, until, source_kw)
    thread = threading.Thread(target=worker.run, name="ssenb-consume", daemon=True)
    thread.start()
    try:
        while not worker.done.wait(0.1):
            pass
    except KeyboardInterrupt:
        worker.cancel()
        thread.join(_JOIN_AFTER_CANCEL)
        raise
    thread.join()
    if worker.error is not None:
        raise worker.error
    return worker.count
