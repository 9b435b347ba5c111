"""`ssenb.dashboard(sub1, sub2, ...)`: several live views side by side in one output.

Each subscription's view gets a frame of its own in a grid (`_display.Board`), ticked by one
renderer on the ssenb loop: every frame keeps its own budget of 20 comm messages per second,
so a dashboard of n views sends at most 20 n, whatever the event rates. When every
subscription has ended, the output becomes the static snapshot of all final views side by
side (plain HTML, kept in the saved notebook like a single view's). Start the watches with
`display=False` so each view is shown only in the dashboard.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any

from .._models import Event
from . import _display, _loop
from ._view_base import View
from ._views import make_view
from ._watch import TICK, Subscription

__all__ = ["Dashboard", "dashboard"]

Item = Subscription | tuple[Subscription, str | View]


class _Tee(View):
    """Stands in as a subscription's view: its own view as before, plus a dashboard's extra
    views of the same events (each caught up on the events kept so far when added)."""

    def __init__(self, primary: View) -> None:
        super().__init__(title=primary.title)
        self.primary = primary
        self.extras: list[View] = []

    def add(self, sub: Subscription, view: View) -> None:
        """On the loop: feed `view` what `sub` kept, then every new batch."""
        view.on_status(sub.status, sub.error)
        view.on_events(sub.events, time.monotonic())
        self.extras.append(view)
        self._bind(sub, view)

    def _bind(self, sub: Subscription, view: View) -> None:
        if getattr(view.current(), "batcher", False) is None:  # a chart reads the batcher
            view.current().batcher = sub._batcher  # type: ignore[attr-defined]

    def on_events(self, events: Sequence[Event], now: float) -> None:
        self.primary.on_events(events, now)
        for view in self.extras:
            view.on_events(events, now)
        self.count = self.primary.count

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        super().on_status(status, error)
        for view in (self.primary, *self.extras):
            view.on_status(status, error)

    def current(self) -> View:
        return self.primary.current()

    def prepare(self) -> None:
        for view in (self.primary, *self.extras):
            view.prepare()

    def progress(self) -> tuple[int, str] | None:
        return self.primary.progress()

    def html(self, now: float | None = None, *, bar: bool = True) -> str:
        return self.primary.html(now, bar=bar)

    def text(self, now: float | None = None) -> str:
        return self.primary.text(now)


def _extra(sub: Subscription, view: str | View) -> View:
    """A second view of `sub`'s events (made and attached on the ssenb loop)."""
    extra = make_view(view, sub.url)

    def attach() -> None:
        tee = sub.view if isinstance(sub.view, _Tee) else _Tee(sub.view)
        sub.view = tee
        tee.add(sub, extra)

    _loop.call(attach)
    return extra


class Dashboard:
    """Several subscriptions' views in a grid of `columns` columns; made by `dashboard()`."""

    def __init__(self, items: tuple[Item, ...], columns: int | None = None) -> None:
        if not items:
            raise TypeError("dashboard() wants at least one Subscription (from ssenb.watch)")
        subs: list[Subscription] = []
        views: list[View] = []
        for item in items:
            pair: tuple[object, object] = (
                (item[0], item[1]) if isinstance(item, tuple) and len(item) == 2 else (item, None)
            )
            sub, view = pair
            if not isinstance(sub, Subscription) or not (
                view is None or isinstance(view, str | View)
            ):
                wants = "Subscriptions (from ssenb.watch) or (sub, view) pairs"
                raise TypeError(f"dashboard() takes {wants}, not {item!r}")
            subs.append(sub)
            views.append(sub.view if view is None else _extra(sub, view))
        if columns is not None and (not isinstance(columns, int) or columns < 1):
            raise ValueError(f"columns must be a positive int or None, not {columns!r}")
        self.subs = tuple(subs)
        self.views = views  # what each cell shows: the subscription's view, or an extra one
        self.columns = columns or min(len(subs), 3)
        self._done = threading.Event()
        self._board: _display.Board | None = None
        if _display.in_kernel():
            frames = [_display.Frame(v, on_stop=s.stop) for s, v in zip(subs, views, strict=True)]
            self._board = _display.Board(frames, self.columns)
        self._future = _loop.submit(self._render())

    @property
    def running(self) -> bool:
        """True until every subscription ended and the final views were sent."""
        return not self._done.is_set()

    def html(self) -> str:
        """Every view's HTML side by side (the static snapshot, safe without a kernel)."""
        cells = "".join(
            f'<div style="min-width:0;overflow:hidden">{self._html(sub, view)}</div>'
            for sub, view in zip(self.subs, self.views, strict=True)
        )
        return (
            '<div class="ssenb-dashboard" style="display:grid;gap:12px;'
            f'grid-template-columns:repeat({self.columns},minmax(0,1fr))">{cells}</div>'
        )

    @staticmethod
    def _html(sub: Subscription, view: View) -> str:
        if not sub.running or _loop.in_loop_thread():
            return view.html()
        markup: str = _loop.call(view.html)  # views render on the loop that feeds them
        return markup

    def text(self) -> str:
        """One status line per view."""
        return "\n".join(view.text() for view in self.views)

    def __repr__(self) -> str:
        return f"<Dashboard of {len(self.subs)} views: {', '.join(s.url for s in self.subs)}>"

    def _bundle(self) -> dict[str, Any]:
        plain, markup = self.text(), self.html()
        if self._board is None:
            return {"text/plain": plain, "text/html": markup}
        return self._board.bundle(plain, markup)

    def _ipython_display_(self) -> None:
        if self._board is None:
            print(self.text())
            return
        self._board.show(self._bundle, _display.execution_count())

    def stop(self) -> None:
        """Stop every subscription (their data is kept) and show the final dashboard."""
        for sub in self.subs:
            sub.stop()
        self.wait(5.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every view has ended; then refresh the display from this cell."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for sub in self.subs:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not sub.wait(left):
                return False
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        self._done.wait(left)
        if self._board is not None and self._done.is_set():
            self._board.resend(self._bundle)
        return self._done.is_set()

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self._future).__await__()

    async def _render(self) -> None:
        """Tick each view's frame within its budget; the final tick once its stream ended."""
        try:
            while True:
                now = time.monotonic()
                frames = self._board.frames if self._board is not None else [None] * len(self.subs)
                ended = 0
                for sub, frame in zip(self.subs, frames, strict=True):
                    if sub.running:
                        if frame is not None:
                            frame.tick(now)
                        continue
                    ended += 1
                    if frame is not None and not frame.finished:
                        frame.tick(now, final=True)
                if ended == len(self.subs):
                    break
                await asyncio.sleep(TICK)
            if self._board is not None:
                self._board.finish(self._bundle)
        finally:
            self._done.set()


def dashboard(*items: Item, columns: int | None = None) -> Dashboard:
    """Show several subscriptions' live views side by side; returns the `Dashboard`.

    Args:
        items: subscriptions from `ssenb.watch(...)` (start them with `display=False` so
            each view shows only here), or `(sub, view)` for another view of the same
            events: a view name ("log", "chart", ...) or a `ssenb.View`.
        columns: views per row (default: up to 3).

    Each view keeps its own message budget; the saved notebook holds every view's final
    snapshot, side by side, as static HTML.

    Example:
        ticks = ssenb.watch(f"{srv.url}/ticks?rate=50", view="chart", display=False)
        log = ssenb.watch(f"{srv.url}/stream?n=20", display=False)
        ssenb.dashboard(ticks, log, (ticks, "log"))  # the ticks also as a log

    An extra view makes `sub.view` a stand-in that feeds both; `sub.view.current()` is
    still the subscription's own view.
    """
    board = Dashboard(items, columns)
    if board._board is not None:
        _display.show(board)
    return board
