"""Choosing a view, and binding it to widgets under a message budget.

`make_view("auto", url)` picks by endpoint (`/chat` -> tokens, `/progress` -> progress,
`/ticks` -> rate, `/stream` -> table) and, for other URLs, by the shape of the first events.

`Frame` shows a view with three ipywidgets: an optional `IntProgress`, one `HTML` holding the
escaped header and body, and a Stop button. `Frame.tick(now)` is called by one throttled
renderer on the ssenb loop: it sets only traits whose value changed, one comm message per
widget (`hold_sync`), and spaces ticks so that a view never sends more than
`MAX_MESSAGES_PER_SECOND` messages in any one-second window, whatever the event rate; the
final `tick(now, final=True)` always sends, so the end state reaches the frontend. Traits are
only ever *set* from the loop thread (safe with ipykernel >= 7.1), never `with output:`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from .._models import Event
from ._view_base import View
from ._view_llm import TokenView, matches
from ._view_log import LogView, TableView
from ._view_progress import ProgressView, RateView

__all__ = [
    "VIEWS",
    "AutoView",
    "Frame",
    "LogView",
    "ProgressView",
    "RateView",
    "TableView",
    "TokenView",
    "View",
    "kind_for_events",
    "kind_for_url",
    "make_view",
]

MAX_MESSAGES_PER_SECOND = 20
VIEWS: dict[str, type[View]] = {
    "log": LogView,
    "table": TableView,
    "tokens": TokenView,
    "progress": ProgressView,
    "rate": RateView,
}


def kind_for_url(url: str) -> str | None:
    """The view kind an endpoint path implies, or None when the path says nothing."""
    path = urlsplit(url).path.rstrip("/")
    if matches(url, ()):
        return "tokens"
    if path.endswith("/progress"):
        return "progress"
    if path.endswith("/ticks"):
        return "rate"
    if path.endswith("/stream"):
        return "table"
    return None


def kind_for_events(events: Sequence[Event]) -> str:
    """The view kind the first events' shape implies (log when nothing more specific fits)."""
    for ev in events:
        if ev.event == "progress":
            return "progress"
        if ev.data == "[DONE]":
            continue
        if matches("", [ev]):
            return "tokens"
        try:
            value: Any = json.loads(ev.data)
        except ValueError:
            return "log"
        if not isinstance(value, dict):
            return "log"
        if "progress" in value:
            return "progress"
        if {"t", "value"} <= set(value):
            return "rate"
        return "table"
    return "log"


class AutoView(View):
    """Waits for the first events, then becomes the view their shape calls for."""

    kind = "auto"
    interval = 0.05

    def __init__(self, *, title: str = "") -> None:
        super().__init__(title=title)
        self.inner: View | None = None

    def on_events(self, events: Sequence[Event], now: float) -> None:
        """Pick the concrete view from the first non-empty batch, then delegate to it."""
        if not events:
            return
        if self.inner is None:
            self.inner = VIEWS[kind_for_events(events)](title=self.title)
            self.inner.started = self.started
            self.inner.on_status(self.status, self.error)
        self.inner.on_events(events, now)
        self.count = self.inner.count

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        super().on_status(status, error)
        if self.inner is not None:
            self.inner.on_status(status, error)

    def current(self) -> View:
        """The concrete view once chosen, else this placeholder."""
        return self.inner if self.inner is not None else self

    def progress(self) -> tuple[int, str] | None:
        return self.inner.progress() if self.inner is not None else None

    def html(self, now: float | None = None, *, bar: bool = True) -> str:
        if self.inner is not None:
            return self.inner.html(now, bar=bar)
        return super().html(now, bar=bar)

    def text(self, now: float | None = None) -> str:
        return self.inner.text(now) if self.inner is not None else super().text(now)

    def _body_html(self, now: float) -> str:
        return '<div style="font-family:monospace;color:#757575">waiting for events…</div>'


def make_view(view: str | View, url: str = "") -> View:
    """A view from a name ("auto", "log", "table", "tokens", "progress", "rate") or instance."""
    if isinstance(view, View):
        view.title = view.title or url
        return view
    if view == "auto":
        kind = kind_for_url(url)
        return AutoView(title=url) if kind is None else VIEWS[kind](title=url)
    try:
        return VIEWS[view](title=url)
    except KeyError:
        names = ", ".join(["auto", *VIEWS])
        raise ValueError(f"unknown view {view!r}: use one of {names} or a View") from None


class Frame:
    """The widgets of one view and the budgeted sync of its state to the frontend.

    Create it on the thread that displays it (the cell's); call `tick` from one thread only
    (the ssenb loop). `on_stop` runs when the Stop button is clicked.
    """

    def __init__(self, view: View, on_stop: Callable[[], object] | None = None) -> None:
        import ipywidgets as w

        self.view = view
        # layouts are passed in, not set afterwards: each later set would be one more message
        shown = None if view.progress() is not None else "none"
        self.html = w.HTML(value=view.html(bar=False))
        self.bar = w.IntProgress(
            value=0,
            min=0,
            max=100,
            bar_style="info",
            layout=w.Layout(width="min(480px, 100%)", display=shown),
        )
        self.button = w.Button(
            description="Stop",
            icon="stop",
            tooltip="stop this subscription (data is kept)",
            layout=w.Layout(width="auto", align_self="flex-start"),
        )
        if on_stop is not None:
            self.button.on_click(lambda _button: on_stop())
        self.box = w.VBox([self.bar, self.html, self.button])
        self.next_at = 0.0
        self.sent = 0
        self.finished = False
        self._lock = threading.Lock()  # a tick (loop) and a resend (cell) never interleave
        self.handles: list[Any] = []  # IPython DisplayHandles showing this frame
        self.shown_in: int | None = None  # execution count of the cell that showed it last

    def bundle(self, plain: str, snapshot: str) -> dict[str, Any]:
        """The display bundle: the live widget, plus the HTML snapshot that frontends
        without a widget manager (GitHub, nbviewer, nbconvert) show instead."""
        return {**self.box._repr_mimebundle_(), "text/html": snapshot, "text/plain": plain}

    def show(self, bundle: Callable[[], dict[str, Any]], cell: int | None) -> None:
        """Display once per cell `cell` (a repeat in the same cell, e.g. `watch(...)` as the
        last line, shows nothing), with a display id so the snapshot can be updated."""
        from IPython.display import display

        if cell is not None and cell == self.shown_in:
            return
        self.shown_in = cell
        self.handles.append(display(bundle(), raw=True, display_id=True))

    def update(self, bundle: dict[str, Any]) -> None:
        """Refresh every display of this frame with `bundle` (the new snapshot)."""
        for handle in self.handles:
            handle.update(bundle, raw=True)

    def resend(self, bundle: dict[str, Any]) -> None:
        """From the current cell: re-send all widget state and refresh the snapshot, so a
        notebook saved or executed now (nbclient) stores the final values, not stale ones."""
        with self._lock:
            for widget in self.widgets():
                widget.send_state()
        self.update(bundle)

    def widgets(self) -> list[Any]:
        """Every widget whose state a saved notebook needs (for `send_state` from a cell)."""
        return [self.box, self.bar, self.bar.layout, self.html, self.button, self.button.layout]

    def _live(self) -> View:
        return self.view.current() if isinstance(self.view, AutoView) else self.view

    def tick(self, now: float, final: bool = False) -> int:
        """Sync what changed if the budget allows (always when `final`); returns messages sent.

        A live tick sends at most `per_tick` messages (1, or 2 with a bar: the bar and the
        HTML) and is followed by a pause of at least the view's `interval` and `per_tick / 20`
        s, so a one-second window holds at most 20 messages from live ticks. The final tick
        sends everything left.
        """
        if self.finished or (not final and now < self.next_at):
            return 0
        with self._lock:
            return self._tick(now, final)

    def _tick(self, now: float, final: bool) -> int:
        budget = 99 if final else 2
        sent = 0
        progress = self.view.progress()
        if progress is not None:
            if self.bar.layout.display == "none":
                self.bar.layout.display = None  # once, when the view first drives a bar
                sent += 1
            value, style = progress
            if (self.bar.value, self.bar.bar_style) != (value, style):
                with self.bar.hold_sync():
                    self.bar.value = value
                    self.bar.bar_style = style
                sent += 1
        if sent < budget:
            markup = self.view.html(now, bar=False)
            if markup != self.html.value:
                self.html.value = markup
                sent += 1
        if final:
            with self.button.hold_sync():
                self.button.disabled = True
                self.button.description = self.view.status.capitalize()
            sent += 1
            self.finished = True
        per_tick = 2 if progress is not None else 1  # the most a live tick may send
        gap = max(self._live().interval, per_tick / MAX_MESSAGES_PER_SECOND)
        self.next_at = now + gap * 1.01  # 1 % slack: clock jitter never fits an extra tick
        self.sent += sent
        return sent
