"""`watch()`: consume a stream in the background, live in the notebook, and keep everything.

Why it works this way:

1. The consumer runs on ssenb's own loop in a daemon thread (`_loop`), so it keeps reading,
   batching and recording while a cell blocks, and a kernel interrupt (which lands in the
   main thread) never reaches it.
2. Everything that mutates a subscription (its events, batcher, view) runs on that loop, so
   there are no locks; other threads read through `_loop.call` or atomic copies.
3. Widgets are created in the cell that calls `watch()` and afterwards only have traits set,
   from one throttled renderer (`Frame.tick`: at most 20 comm messages per second per view),
   never `with output:`. A final tick sends the end state. Everything that touches IPython or
   widgets is in `_display`; this module holds data and control only.
4. Messages sent from the loop are stamped with another cell as parent, so a notebook
   executed by nbclient (which keeps only the messages of the cell it runs) would save them
   stale: `wait()`, `stop()` and `await sub` refresh every display from the *current* cell.
5. While streaming, the display bundle carries the widget view and an escaped HTML snapshot;
   when the stream ends every display becomes the final snapshot alone (`Frame.finish`), so
   a saved notebook reads the same in nbconvert, GitHub and nbviewer, offline, no kernel.
6. Without a kernel (plain Python, terminal IPython) there are no widgets: a text status line
   goes to stderr at most once a second and once at the end.
7. Ingest goes a read at a time (`aiter_batches` -> batcher columns -> view), no Python per
   event, and keeps the kernel responsive (GIL pauses, short GCs: see `_ingest`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any, Unpack

from .. import _state
from .._models import Event
from ..client import EventSource, SourceOptions, check_source_options
from ..recording import Format, Recorder, open_recorder
from . import _cells, _display, _loop
from ._batcher import DataFrameBatcher
from ._display import Frame
from ._ingest import Pacer, hold_gc
from ._shown import Shown
from ._view_base import FINAL, View
from ._view_chart import Panels, chart_view
from ._views import make_view

__all__ = ["Subscription", "watch"]

TICK = 0.05  # seconds between renderer wake-ups (views and the frame throttle further)
TEXT_EVERY = 1.0  # seconds between plain-text status lines
STOP_TIMEOUT = 5.0
YIELD_EVERY = 0.02  # seconds of ingest between two pauses that hand the GIL to the kernel
_log = logging.getLogger("ssenb")
RecordFormat = Format


class Subscription(Shown):
    """A background stream consumer with a live view; made by `watch()`.

    Attributes read from any thread: `.df` (a DataFrame of everything kept so far), `.events`
    (a list copy), `.status` ("connecting", "open", "reconnecting", then "done", "stopped" or
    "error"), `.error` (the exception that ended it, or None), `.view` (the live view).
    `stop()` ends it and keeps all data; `wait(timeout)` blocks until it ends; `await sub`
    waits without blocking the kernel and returns `.df`.
    """

    def __init__(
        self,
        url: str,
        *,
        view: str | View = "auto",
        record: str | os.PathLike[str] | Recorder | None = None,
        record_format: RecordFormat | None = None,
        batch_size: int = 1000,
        flush_interval: float = 0.5,
        max_rows: int | None = None,
        display: bool | None = None,
        yield_every: float | None = YIELD_EVERY,
        **source_kw: Unpack[SourceOptions],
    ) -> None:
        check_source_options("Subscription", source_kw)
        self._pacer = Pacer(yield_every)  # checks the knob here, not in the background
        self.url = str(url)
        self.view = make_view(view, self.url)
        self._user_on_state = source_kw.get("on_state")  # called too, before ours
        options: SourceOptions = {**source_kw, "on_state": self._on_state}
        self._source = EventSource(self.url, **options)
        self._batcher = DataFrameBatcher(
            batch_size=batch_size, flush_interval=flush_interval, max_rows=max_rows
        )
        self._status = "connecting"
        self.error: BaseException | None = None
        self._stopping = False
        self._done = threading.Event()
        self._text = display is None and not _display.in_kernel()
        self._recorder: Recorder | None = None
        self._owns_recorder = record is not None and not isinstance(record, Recorder)
        if record is not None:
            self._recorder = open_recorder(record, format=record_format, source=self.url)
        self.record_path = None if self._recorder is None else self._recorder.path
        self._frame: Frame | None = None
        if display is not False and not self._text:
            self._frame = Frame(self.view, on_stop=self.stop)
        self.started_at = time.time()
        self._task: asyncio.Task[None] | None = None
        _state.register_subscription(self)
        self._future = _loop.submit(self._main())

    # -- public state ---------------------------------------------------------------------
    @property
    def status(self) -> str:
        """connecting, open, reconnecting; then done, stopped or error."""
        return self._status

    @property
    def events(self) -> list[Event]:
        """Every event kept (the newest `max_rows` when set), as a new list, rebuilt from the
        batcher's columns at each read (~0.5 s per million events; `.df` is faster): holding
        every event as an object would make each full GC pause the kernel for 100s of ms."""
        return self._batcher.events()

    @property
    def df(self) -> Any:
        """The events so far as a DataFrame (DESIGN.md columns); the batcher is thread-safe."""
        return self._batcher.df

    @property
    def name(self) -> str:
        """A label for `ssenb.status()`: the kind of view showing it."""
        return f"watch ({self.view.current().kind})"

    @property
    def running(self) -> bool:
        """True until the subscription has ended and flushed everything."""
        return not self._done.is_set()

    def __repr__(self) -> str:
        return (
            f"<Subscription {self.url} status={self._status} events={self.view.count}"
            + (f" error={type(self.error).__name__}" if self.error else "")
            + ">"
        )

    # -- control --------------------------------------------------------------------------
    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the subscription now, keeping every event received; idempotent, any thread."""
        if not self._done.is_set():
            self._stopping = True
            self._source.close()
            try:
                _loop.get_loop().call_soon_threadsafe(self._cancel)
            except RuntimeError:  # pragma: no cover - the loop is gone (interpreter exit)
                pass
            if _loop.in_loop_thread():
                return
            self._done.wait(timeout)
        self._sync_display()

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream ends (or `timeout` s pass); True when it has ended.

        Safe in a cell: the consumer is on its own thread. An interrupt (Ctrl-C, the kernel's
        stop button) while waiting stops the subscription, keeps the data, and re-raises.
        """
        _loop.wait_for(self._done, timeout, self.stop, "sub")
        self._sync_display()
        return self._done.is_set()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> Any:
        try:
            await asyncio.wrap_future(self._future)
        except asyncio.CancelledError:
            self.stop()
            raise
        self._sync_display()
        return self.df

    # -- the consumer, on the ssenb loop --------------------------------------------------
    def _on_state(self, state: str) -> None:
        if self._user_on_state is not None:
            try:
                self._user_on_state(state)
            except Exception:
                _log.exception("ssenb: on_state callback of %s failed", self.url)
        if state == "closed" or self._done.is_set():
            return
        self._status = state
        if _loop.in_loop_thread():
            self.view.on_status(state)

    def _feed(self, batch: list[Event]) -> None:
        """Hand one read's events to the view at once; a failing view is logged only."""
        try:
            self.view.on_events(batch, time.monotonic())
            if getattr(self.view.current(), "batcher", False) is None:  # a chart reads it
                self.view.current().batcher = self._batcher  # type: ignore[attr-defined]
        except Exception:
            _log.exception("ssenb: view %s failed on %d events", self.view.kind, len(batch))

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        renderer = asyncio.create_task(self._render())
        status, error = "done", None
        batcher, recorder, pacer = self._batcher, self._recorder, self._pacer
        try:
            with hold_gc():
                async with self._source as source:
                    async for batch in source.aiter_batches():  # one step per read, not per event
                        now = time.time()
                        batcher.add_batch(batch, time=now)
                        if recorder is not None:
                            for event in batch:
                                recorder.write(event, time=now)
                        self._feed(batch)
                        batch = []  # dropped before the next read: it dies young (GC)
                        await pacer.step()
        except asyncio.CancelledError:
            status = "stopped"
        except Exception as exc:
            status, error = "error", exc
        if self._stopping and status == "done":
            status = "stopped"
        renderer.cancel()
        self._finish(status, error)

    def _finish(self, status: str, error: BaseException | None) -> None:
        """Flush and close the data first, then show the end; always mark the end."""
        try:
            try:
                self._batcher.flush()
                if self._recorder is not None:  # a recorder passed in is the caller's to close
                    (self._recorder.close if self._owns_recorder else self._recorder.flush)()
            except Exception as exc:  # a full disk must still end the subscription cleanly
                status, error = "error", error or exc
            self.error = error
            self._status = status
            self.view.on_status(status, error)
            if self._frame is not None:
                self._frame.tick(time.monotonic(), final=True)
                self._frame.finish(self._bundle)
            elif self._text:
                print(self.view.text(), file=sys.stderr, flush=True)
        except Exception:
            _log.exception("ssenb: showing the end of %s failed", self.url)
        finally:
            self._done.set()
            _state.unregister_subscription(self)

    async def _render(self) -> None:
        """The throttled renderer: flush a quiet batcher, tick the frame."""
        last_text = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            try:
                self._batcher.tick()  # flush_interval holds while the stream is quiet
                now = time.monotonic()
                if self._frame is not None:
                    await asyncio.to_thread(self.view.prepare)  # parsing, off the loop
                    self._frame.tick(time.monotonic())
                elif self._text and now - last_text >= TEXT_EVERY:
                    last_text = now
                    print(self.view.text(now), file=sys.stderr, flush=True)
            except Exception:  # a rendering bug must not stop consuming, nor spin
                _log.exception("ssenb: rendering %s failed", self.url)
                await asyncio.sleep(1.0)


def watch(
    url: str,
    *,
    view: str | View = "auto",
    record: str | os.PathLike[str] | Recorder | None = None,
    record_format: RecordFormat | None = None,
    batch_size: int = 1000,
    flush_interval: float = 0.5,
    max_rows: int | None = None,
    display: bool | None = None,
    yield_every: float | None = YIELD_EVERY,
    y: str | Sequence[str] | None = None,
    x: str | None = None,
    window: float | str | None = None,
    panels: Panels | None = None,
    **source_kw: Unpack[SourceOptions],
) -> Subscription:
    """Consume `url` in the background and show it live; returns the `Subscription` at once.

    Args:
        view: "auto" (each registered view's `match` is asked, see `ssenb.register_view`),
            a registered name ("log", "table", "tokens", "progress", "chart", "rate", ...),
            or a `ssenb.View` instance (e.g. a `LogView(newest_first=True)`).
        record: a path to record every event to (JSONL appended and flushed at least every
            0.2 s, or a Parquet dataset folder; flushed on stop, error or interrupt), or an open
            `Recorder` (flushed at the end, left open: it is yours to close).
        record_format: "jsonl" or "parquet"; None picks as `ssenb.recording.open_recorder`
            does (a `.parquet` path or an existing folder is a Parquet dataset, else JSONL).
        batch_size, flush_interval, max_rows: the DataFrame batcher's flush size, flush
            period, and cap on rows kept (newest).
        display: None shows the view (widgets in a kernel, a text line elsewhere); False
            shows nothing.
        yield_every: trades ingest for a responsive kernel: after every `yield_every` s of
            ingest the consumer pauses 2 ms (releasing the GIL) so a cell runs at once.
            Lower: snappier cells; higher: faster ingest; None: never pause (cells then
            wait their turn while a fast stream is read).
        y, x, window, panels: the chart view's columns, x column, rolling window and axes.
        source_kw: passed to `EventSource` (method, headers, json, reconnect, ...); an
            unknown keyword is a `TypeError` here, not a failure in the background.

    Re-running the cell that started a watch stops that watch first (in frontends that send
    a cell id: JupyterLab, Notebook 7, VS Code), so a cell re-run never leaves a stream
    consuming in the background; the old `Subscription` keeps its data.

    Example:
        sub = ssenb.watch(f"{srv.url}/ticks?rate=100")
        ...
        sub.stop(); sub.df.tail()
    """
    check_source_options("watch", source_kw)
    cell = _display.current_cell()
    _cells.stop_previous(cell)  # re-running a cell replaces the watches it started before
    sub = Subscription(
        url,
        view=chart_view(view, y, x, window, panels),
        record=record,
        record_format=record_format,
        batch_size=batch_size,
        flush_interval=flush_interval,
        max_rows=max_rows,
        display=display,
        yield_every=yield_every,
        **source_kw,
    )
    _cells.remember(cell, sub)
    if sub._frame is not None and _display.in_kernel():
        _display.show(sub)
    return sub


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, stop live subscriptions so their recordings are flushed."""
    for sub in list(_state.subscriptions.values()):
        if isinstance(sub, Subscription) and sub.status not in FINAL:
            sub.stop(timeout=1.0)
