"""Ending an `EventSource` iteration at once, from wherever `close()` is called.

An iteration can be in one of four places when its owner wants it to stop: suspended at a
`yield` (the loop body called close()), blocked in a socket read on another thread or
task, sleeping before a reconnect, or not started at all. `Closer` reaches each of them
without touching the hot path: a suspended sync generator is closed directly (its `finally`
releases the connection before close() returns); a blocked read is woken by shutting the
socket down (closing it would not wake a read on another thread); a reconnect wait is an
event that close() sets, on the right loop when the wait is async.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any, Literal

import httpx

__all__ = ["Closer"]

Iteration = Generator[Any, None, None] | AsyncGenerator[Any, None]


class Closer:
    """The stop switch shared by an `EventSource` and its running iteration.

    The iteration registers itself (`track`), its live response (`response`) and, when
    async, its loop (`bind_loop`); it checks `closed` between connections and waits with
    `wait`/`wait_async`, which return True when woken by `close()`.
    """

    __slots__ = ("_async", "_gen", "_wake", "batch", "closed", "owner", "response")

    def __init__(self) -> None:
        self.closed = False
        self.response: httpx.Response | None = None
        self.owner: int | None = None  # thread running a sync iteration
        self.batch: list[Any] | None = None  # the batch an event iteration is consuming
        self._wake = threading.Event()
        self._async: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._gen: weakref.ref[Any] | None = None

    def track(self, gen: Iteration) -> None:
        """Remember the iteration weakly, so dropping it still closes it (CPython)."""
        self._gen = weakref.ref(gen)

    def clearing(self, batches: Iterator[list[Any]]) -> Iterator[list[Any]]:
        """Pass batches through to a C-level `chain`, remembering the one being consumed so
        close() can empty it: none of its remaining events is yielded after close()."""
        try:
            for batch in batches:
                self.batch = batch
                yield batch
        finally:
            self.batch = None
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def current(self) -> Iteration | None:
        """The tracked iteration while something still holds it."""
        return self._gen() if self._gen is not None else None

    def active(self) -> bool:
        """Whether a tracked iteration exists (started or not) and has not finished."""
        gen = self.current()
        if gen is None:
            return False
        frame = getattr(gen, "gi_frame" if isinstance(gen, Generator) else "ag_frame", None)
        return frame is not None

    def stopped(self) -> bool:
        """`closed`, read anew (a call, so a type checker does not assume it unchanged)."""
        return self.closed

    def bind_loop(self) -> asyncio.Event:
        """Called by an async iteration on its loop: the event its reconnect waits on."""
        event = asyncio.Event()
        self._async = (asyncio.get_running_loop(), event)
        if self.closed:
            event.set()
        return event

    def unbind_loop(self) -> None:
        self._async = None

    def close(self) -> Literal["idle", "done", "signalled"]:
        """Flip the switch and reach the iteration wherever it is. Returns "idle" when no
        iteration is using the stream's state now (the caller may finish it), "done" when a
        suspended sync iteration was closed here, "signalled" when a running one will stop
        by itself at once."""
        self.closed = True
        self._wake.set()
        if self._async is not None:
            loop, event = self._async
            try:
                same = asyncio.get_running_loop() is loop
            except RuntimeError:
                same = False
            if same:
                event.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
        batch = self.batch
        if batch is not None:
            batch.clear()  # atomic: the consuming `chain` sees the batch end here
        gen = self.current()
        if gen is None:
            return "idle"
        if isinstance(gen, Generator):
            if self.owner in (None, threading.get_ident()):
                try:
                    gen.close()  # suspended on this thread: finish it now
                    return "done"
                except ValueError:  # closing from inside the iteration (a state hook)
                    pass
            # Another thread iterates: never touch its generator (it could be resumed at
            # this very moment); wake a blocked read, and it stops at its next step.
            self.shutdown()
            return "signalled"
        self.shutdown()
        return "signalled" if getattr(gen, "ag_running", False) else "idle"

    def shutdown(self) -> None:
        """Shut the live socket down so a read blocked on it returns now (EOF)."""
        response = self.response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        shutdown = getattr(sock, "shutdown", None)  # asyncio wraps it in a TransportSocket
        if shutdown is not None:
            try:
                shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait(self, delay: float) -> bool:
        """Sleep `delay` seconds unless closed first; True when closed."""
        return self._wake.wait(delay)

    async def wait_async(self, event: asyncio.Event, delay: float) -> bool:
        """Async `wait` on the event from `bind_loop`; True when closed."""
        try:
            await asyncio.wait_for(event.wait(), delay)
        except TimeoutError:
            return self.closed
        return True
