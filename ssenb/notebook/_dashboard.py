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
from collections.abc import Generator
from typing import Any

from . import _display, _loop
from ._watch import TICK, Subscription

__all__ = ["Dashboard", "dashboard"]


class Dashboard:
    """Several subscriptions' views in a grid of `columns` columns; made by `dashboard()`."""

    def __init__(self, subs: tuple[Subscription, ...], columns: int | None = None) -> None:
        if not subs:
            raise TypeError("dashboard() wants at least one Subscription (from ssenb.watch)")
        for sub in subs:
            if not isinstance(sub, Subscription):
                raise TypeError(f"dashboard() takes Subscriptions (from ssenb.watch), not {sub!r}")
        if columns is not None and (not isinstance(columns, int) or columns < 1):
            raise ValueError(f"columns must be a positive int or None, not {columns!r}")
        self.subs = subs
        self.columns = columns or min(len(subs), 3)
        self._done = threading.Event()
        self._board: _display.Board | None = None
        if _display.in_kernel():
            frames = [_display.Frame(sub.view, on_stop=sub.stop) for sub in subs]
            self._board = _display.Board(frames, self.columns)
        self._future = _loop.submit(self._render())

    @property
    def running(self) -> bool:
        """True until every subscription ended and the final views were sent."""
        return not self._done.is_set()

    def html(self) -> str:
        """Every view's HTML side by side (the static snapshot, safe without a kernel)."""
        cells = "".join(
            f'<div style="min-width:0;overflow:hidden">{sub._snapshot()}</div>' for sub in self.subs
        )
        return (
            '<div class="ssenb-dashboard" style="display:grid;gap:12px;'
            f'grid-template-columns:repeat({self.columns},minmax(0,1fr))">{cells}</div>'
        )

    def text(self) -> str:
        """One status line per view."""
        return "\n".join(sub.view.text() for sub in self.subs)

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


def dashboard(*subs: Subscription, columns: int | None = None) -> Dashboard:
    """Show several subscriptions' live views side by side; returns the `Dashboard`.

    Args:
        subs: subscriptions from `ssenb.watch(...)` (start them with `display=False` so each
            view shows only here).
        columns: views per row (default: up to 3).

    Each view keeps its own message budget; the saved notebook holds every view's final
    snapshot, side by side, as static HTML.

    Example:
        ticks = ssenb.watch(f"{srv.url}/ticks?rate=50", view="chart", display=False)
        log = ssenb.watch(f"{srv.url}/stream?n=20", display=False)
        ssenb.dashboard(ticks, log)
    """
    board = Dashboard(subs, columns)
    if board._board is not None:
        _display.show(board)
    return board
