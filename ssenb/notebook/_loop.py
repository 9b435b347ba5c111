"""The shared ssenb loop, as the notebook layer calls it: thin wrappers over the runtime.

The loop itself (a daemon thread started on first use, why it is ours and not the kernel's)
is `ssenb._runtime.LoopThread`; every subscription, magic, `collect` and `record` share the
one in `runtime.loop`. These names stay so the notebook modules need no runtime knowledge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._runtime import LOOP_THREAD, runtime

__all__ = [
    "THREAD_NAME",
    "call",
    "get_loop",
    "in_loop_thread",
    "shutdown",
    "submit",
    "wait_for",
]

T = TypeVar("T")
THREAD_NAME = LOOP_THREAD


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the running ssenb loop, starting its daemon thread on first use (thread-safe)."""
    return runtime.loop.get_loop()


def in_loop_thread() -> bool:
    """True when called from the ssenb loop's own thread (where blocking on it would deadlock)."""
    return runtime.loop.in_thread()


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the ssenb loop from any thread; returns a thread-safe future."""
    return runtime.loop.submit(coro)


def call(fn: Callable[[], T], timeout: float | None = 10.0) -> T:
    """Run `fn()` on the ssenb loop and return its result (inline from the loop thread)."""
    return runtime.loop.call(fn, timeout)


def shutdown(timeout: float = 5.0) -> None:
    """Stop the loop thread (after every subscription on it stopped); the next use starts a
    fresh one."""
    runtime.loop.stop(timeout)


def wait_for(
    done: threading.Event, timeout: float | None, stop: Callable[[], object], what: str
) -> None:
    """Block a cell until `done` is set or `timeout` s pass, in short slices so an interrupt
    (Ctrl-C, the kernel's stop button) lands at once: then `stop()` runs and it re-raises.
    Refused on the ssenb loop itself, which would wait for itself forever."""
    if in_loop_thread():
        raise RuntimeError(f"wait() on the ssenb loop would block it forever: use `await {what}`")
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not done.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                break
            done.wait(left)
    except KeyboardInterrupt:
        stop()
        raise
