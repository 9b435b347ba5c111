"""The ssenb runtime: the one thread-plus-loop mechanism and the typed registries.

Layer "runtime": above the pure core, below client and server. Everything in ssenb that runs
in the background goes through here:

1. `LoopThread` is the one way ssenb runs an asyncio loop: a daemon thread that starts on
   first use, takes coroutines from any thread (`submit` -> a concurrent Future), runs a
   function on the loop (`call`), blocks a caller safely until a coroutine ends (`run`:
   Ctrl-C cancels the work, waits for it to close its connection, then re-raises), and stops
   within a timeout (`stop`: every task still on it is cancelled, async generators closed,
   the loop closed). `runtime.loop` is the shared one that `watch`, `collect`, `record` and
   the magics use; each `serve()`d server runs uvicorn on a `LoopThread` of its own, so a
   busy server never delays a consumer.
2. Why a loop thread of our own: a task on ipykernel's loop starves while a cell blocks, and
   a loop in our own thread never needs `asyncio.run` on a running loop, nor nest_asyncio;
   each subscription's state stays single-threaded on it.
3. The registries of servers, subscriptions and recorders are typed by the small Protocols
   below (what `ssenb.status()` prints and what `ssenb.stop_all()` calls). They live in one
   `Runtime` object created once per process: reloading `ssenb` (or this module) keeps it, so
   a notebook user who reloads the package never orphans a server holding a port.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "LOOP_THREAD",
    "LoopThread",
    "RecorderLike",
    "Runtime",
    "ServerLike",
    "SubscriptionLike",
    "runtime",
]

T = TypeVar("T")
_log = logging.getLogger("ssenb")

#: the name of the shared loop's thread
LOOP_THREAD = "ssenb-loop"
_START_TIMEOUT = 10.0
_CANCEL_GRACE = 2.0  # seconds tasks get to finish once cancelled by `LoopThread.stop`


@runtime_checkable
class ServerLike(Protocol):
    """A background server as the runtime knows it (`ssenb.ServerHandle` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    @property
    def status(self) -> str: ...
    def stop(self) -> None: ...


@runtime_checkable
class SubscriptionLike(Protocol):
    """A live stream consumer (`ssenb.Subscription` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def status(self) -> str: ...
    def stop(self) -> None: ...


@runtime_checkable
class RecorderLike(Protocol):
    """An open recorder (`JSONLRecorder`, `DatasetRecorder`): what status and stop_all need."""

    @property
    def written(self) -> int: ...
    @property
    def path(self) -> Any: ...
    @property
    def source(self) -> str | None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def _report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log unhandled loop errors instead of letting them end the thread or print to a cell."""
    _log.warning("ssenb loop: %s", context.get("message"), exc_info=context.get("exception"))


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`, turning SystemExit/KeyboardInterrupt into an ordinary error: raised in a
    task they would escape `run_forever` and end the loop thread for everyone on it."""
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise RuntimeError(f"a task on the ssenb loop raised {type(exc).__name__}") from exc


class LoopThread:
    """One asyncio loop running in one daemon thread, started on first use (thread-safe).

    `stop()` ends it; the next use starts a fresh one, so a notebook can end with no ssenb
    thread left and still use ssenb again afterwards.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<LoopThread {self.name} {'running' if self.alive else 'stopped'}>"

    @property
    def alive(self) -> bool:
        """True while the thread runs its loop."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop while the thread runs it (None before the first start and after stop)."""
        loop = self._loop
        return loop if loop is not None and self.alive else None

    @property
    def thread(self) -> threading.Thread | None:
        """The current thread (None before the first start)."""
        return self._thread

    def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_report)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=_CANCEL_GRACE))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, starting its thread first if needed."""
        with self._lock:
            if self._loop is not None and self.alive:
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._main, args=(loop, ready), name=self.name, daemon=True
            )
            thread.start()
            if not ready.wait(_START_TIMEOUT):  # pragma: no cover - a thread that cannot start
                raise RuntimeError(f"the {self.name} event loop thread did not start")
            self._loop, self._thread = loop, thread
            return loop

    def in_thread(self) -> bool:
        """True when called from this loop's own thread (blocking on it there deadlocks)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop from any thread; returns a thread-safe future
        (cancelling it cancels the task)."""
        return asyncio.run_coroutine_threadsafe(_contained(coro), self.get_loop())

    def call(self, fn: Callable[[], T], timeout: float | None = 10.0) -> T:
        """Run `fn()` on the loop and return its result, blocking the caller until then.

        Used to read loop-owned state (a batcher, a view) consistently from another thread.
        From the loop thread itself it simply calls `fn()`, so it can never deadlock there.
        """
        if self.in_thread():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller's thread, not swallowed
                future.set_exception(exc)

        self.get_loop().call_soon_threadsafe(run)
        return future.result(timeout)

    def run(self, coro: Coroutine[Any, Any, T], *, cancel_wait: float = 10.0) -> T:
        """Run `coro` on the loop and block the calling thread until it ends; its result or
        its exception comes back here.

        The caller waits in short slices, so Ctrl-C (a kernel interrupt) reaches it: the task
        is then cancelled, given `cancel_wait` seconds to close its connection and flush, and
        KeyboardInterrupt is re-raised for the caller to turn into "keep what arrived". From
        the loop thread itself it raises RuntimeError (await the coroutine there instead).
        """
        if self.in_thread():
            coro.close()
            raise RuntimeError(f"cannot block {self.name} on itself: await the coroutine instead")
        loop = self.get_loop()
        thread = self._thread
        done = threading.Event()
        tasks: list[asyncio.Task[T]] = []
        abandoned = False

        def start() -> None:  # on the loop: the task's own done callback fires only once
            if abandoned:  # Ctrl-C before it started: it never runs
                coro.close()
                done.set()
                return
            task = loop.create_task(_contained(coro))
            task.add_done_callback(lambda _: done.set())  # once its `finally` blocks ran
            tasks.append(task)

        def cancel() -> None:
            nonlocal abandoned
            abandoned = True
            if tasks:
                tasks[0].cancel()

        loop.call_soon_threadsafe(start)
        try:
            while not done.wait(0.05):
                if thread is None or not thread.is_alive():  # stopped before `start` ran
                    raise RuntimeError(f"{self.name} was stopped before the work ended")
        except KeyboardInterrupt:
            try:
                loop.call_soon_threadsafe(cancel)
            except RuntimeError:  # the loop is closed: nothing runs any more
                raise KeyboardInterrupt from None
            done.wait(cancel_wait)
            raise
        task = tasks[0]
        if task.cancelled():
            raise RuntimeError(f"{self.name} was stopped (ssenb.stop_all()) before the work ended")
        return task.result()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the loop (tasks still on it are cancelled, async generators closed, the loop
        closed) and join the thread; True when it is gone within `timeout`."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = None
        if loop is None or thread is None or not thread.is_alive():
            return True
        if thread is threading.current_thread():
            loop.stop()  # finishing happens when this callback returns
            return False
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # closed meanwhile
            return True
        thread.join(timeout)
        return not thread.is_alive()


class Runtime:
    """The process-wide runtime: the shared loop and the typed registries."""

    def __init__(self) -> None:
        #: the loop `watch`, `collect`, `record` and the magics run on
        self.loop = LoopThread(LOOP_THREAD)
        #: running servers by name (`serve(name=...)`); re-serving a name replaces it
        self.servers: dict[str, ServerLike] = {}
        #: live subscriptions by `id(obj)`
        self.subscriptions: dict[int, SubscriptionLike] = {}
        #: open recorders by `id(obj)` (registered when opened, removed on close)
        self.recorders: dict[int, RecorderLike] = {}
        #: one-time process hooks (the atexit registration, the shared log buffer)
        self.flags: dict[str, Any] = {}

    def stop_all(self) -> int:
        """Stop subscriptions, the shared loop (work still on it is cancelled), close open
        recorders (flushed: what arrived is on disk), then stop every server, each within its
        own timeout; returns how many servers were running."""
        for sub in list(self.subscriptions.values()):
            sub.stop()
        self.loop.stop()
        for rec in list(self.recorders.values()):
            rec.close()
        servers = list(self.servers.values())
        running = sum(1 for s in servers if s.running)
        for server in servers:
            server.stop()  # each stops its own LoopThread
        return running


def _flush_recorders() -> None:
    """At interpreter exit, put what open recorders buffered on disk (their timer threads are
    daemons and would die with it). Flushing is safe while a writer still runs."""
    for rec in list(runtime.recorders.values()):
        try:
            rec.flush()
        except Exception:  # exiting: one recorder's failure must not stop the others
            _log.warning("ssenb: flushing %r at exit failed", rec, exc_info=True)


#: the one runtime of this process; reloading this module keeps it (and what it registered)
runtime: Runtime = globals().get("runtime") or Runtime()
if not runtime.flags.get("atexit-recorders"):
    atexit.register(_flush_recorders)
    runtime.flags["atexit-recorders"] = True
