"""The one ssenb-owned asyncio loop, running in a daemon thread.

Why a thread of our own rather than tasks on the kernel's loop:

1. A task on ipykernel's loop starves while a cell blocks (`time.sleep`, a long pandas call):
   it ran 0 events during a blocking `time.sleep(1)` in our probe. A loop in its own thread
   keeps consuming, batching and recording whatever the cell does.
2. It never needs `asyncio.run` on a running loop, nor nest_asyncio: the loop is ours, and
   callers in any thread hand it work with `submit` / `call`.
3. One loop for every subscription keeps thread count and startup cost flat (one thread,
   started on first use), and makes each subscription's state single-threaded: everything
   that mutates it runs on this loop.

The thread is a daemon so a kernel shutdown never hangs on it; subscriptions flush their
recordings through their own `atexit` hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["call", "get_loop", "in_loop_thread", "shutdown", "submit"]

T = TypeVar("T")

_log = logging.getLogger("ssenb")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
THREAD_NAME = "ssenb-loop"


def _report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log unhandled loop errors instead of letting them end the thread or print to a cell."""
    _log.warning("ssenb loop: %s", context.get("message"), exc_info=context.get("exception"))


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_report)
    loop.call_soon(ready.set)
    loop.run_forever()


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the running ssenb loop, starting its daemon thread on first use (thread-safe)."""
    global _loop, _thread
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=_run, args=(loop, ready), name=THREAD_NAME, daemon=True)
        thread.start()
        if not ready.wait(10.0):  # pragma: no cover - a thread that cannot start at all
            raise RuntimeError("the ssenb event loop thread did not start")
        _loop, _thread = loop, thread
        return loop


def in_loop_thread() -> bool:
    """True when called from the ssenb loop's own thread (where blocking on it would deadlock)."""
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the ssenb loop from any thread; returns a thread-safe future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def call(fn: Callable[[], T], timeout: float | None = 10.0) -> T:
    """Run `fn()` on the ssenb loop and return its result, blocking the caller until then.

    Used to read loop-owned state (a batcher, a view) consistently from another thread. From
    the loop thread itself it simply calls `fn()`, so it can never deadlock there.
    """
    if in_loop_thread():
        return fn()
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller's thread, not swallowed
            future.set_exception(exc)

    get_loop().call_soon_threadsafe(run)
    return future.result(timeout)


def shutdown(timeout: float = 5.0) -> None:
    """Stop the loop thread (after `ssenb.stop_all()` stopped every subscription on it), so a
    notebook can end with no ssenb thread left; the next `get_loop()` starts a fresh one."""
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop = _thread = None
    if loop is None or thread is None or not thread.is_alive():
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)
    if not thread.is_alive():
        loop.close()
