"""The small interface every live view implements, and the shared header line.

A view is plain state plus pure rendering, so it is testable without a server, a kernel or
widgets:

- `on_events(events, now)` folds a batch of events into the view's state. It is called on
  the ssenb loop thread, so it must be cheap: keep raw events, parse only what is shown.
- `on_status(status, error)` records the subscription's state ("connecting", "open",
  "reconnecting", "done", "stopped", "error") and the error that ended it.
- `html(now, bar=...)` returns the whole view as HTML (header line, a bar for progress views
  unless `bar=False` because a live widget bar shows it, then the body) for the live widget
  and for the static snapshot kept in the notebook file; every piece of event data in it goes
  through `html.escape`, because event data is untrusted.
- `progress()` returns `(percent, bar_style)` when the view drives a progress bar, else None.
- `text(now)` returns one plain line for terminals and plain Python.

Time is always passed in (`time.monotonic()` seconds), never read inside, so tests control it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from time import monotonic
from typing import ClassVar

from .._models import Event

__all__ = ["FINAL", "View", "esc", "fmt_count", "fmt_rate", "shorten"]

FINAL = frozenset({"done", "stopped", "error"})

_COLOURS = {
    "connecting": "#9e9e9e",
    "open": "#2e7d32",
    "reconnecting": "#f9a825",
    "done": "#1565c0",
    "stopped": "#616161",
    "error": "#c62828",
}


def esc(value: object) -> str:
    """HTML-escape anything (quotes too) so event data always shows as text."""
    return html.escape(str(value), quote=True)


def shorten(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis, so one huge event cannot flood a view."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def fmt_count(n: float) -> str:
    """1234567 -> '1,234,567'."""
    return f"{n:,.0f}"


def fmt_rate(per_second: float) -> str:
    """Events per second, short: '850/s', '12.3 k/s', '1.2 M/s'."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f} M/s"
    if per_second >= 1e4:
        return f"{per_second / 1e3:.1f} k/s"
    return f"{per_second:,.0f}/s"


class View:
    """Base class: counts events, tracks status and error, renders the header line.

    Subclasses set `kind`, may lower or raise `interval` (the least time between two renders
    of this view, in seconds) and implement `_body_html`, and optionally `_summary` (extra words
    for the header and the text line) and `progress`.
    """

    kind: ClassVar[str] = "view"
    interval: ClassVar[float] = 0.25

    def __init__(self, *, title: str = "") -> None:
        self.title = title
        self.count = 0
        self.status = "connecting"
        self.error: BaseException | None = None
        self.started = monotonic()
        self.first_at: float | None = None
        self.last_at: float | None = None

    # -- fed on the loop thread -------------------------------------------------------------
    def on_events(self, events: Sequence[Event], now: float) -> None:
        """Fold a batch of events into the view (base: count them and note arrival times)."""
        if not events:
            return
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.count += len(events)
        self._add(events, now)

    def _add(self, events: Sequence[Event], now: float) -> None:
        """Subclass hook for `on_events`."""

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        """Record the subscription's status and, when it failed, the error (kept for display)."""
        self.status = status
        if error is not None:
            self.error = error

    def current(self) -> View:
        """The view that is really showing (an `AutoView` answers with its choice)."""
        return self

    # -- rendering ------------------------------------------------------------------------
    def progress(self) -> tuple[int, str] | None:
        """`(percent, bar_style)` for views that drive a progress bar; None for the others."""
        return None

    def _summary(self, now: float) -> str:
        """Extra plain words for the header and the text line (already safe: no event data)."""
        return ""

    def _body_html(self, now: float) -> str:
        return ""

    def header_html(self, now: float) -> str:
        """The status line: a coloured dot, status, title, count, summary, and any error."""
        colour = _COLOURS.get(self.status, "#9e9e9e")
        parts = [
            f'<span style="color:{colour}">&#9679;</span> <b>{esc(self.status)}</b>',
        ]
        if self.title:
            parts.append(f"<code>{esc(shorten(self.title, 120))}</code>")
        parts.append(f"{fmt_count(self.count)} events")
        summary = self._summary(now)
        if summary:
            parts.append(esc(summary))
        line = " &middot; ".join(parts)
        if self.error is not None:
            message = shorten(f"{type(self.error).__name__}: {self.error}", 500)
            line += f'<div style="color:#c62828">{esc(message)}</div>'
        return f'<div class="ssenb-head" style="font-family:monospace">{line}</div>'

    def _bar_html(self) -> str:
        """A plain-HTML progress bar for the snapshot (progress views only)."""
        return ""

    def html(self, now: float | None = None, *, bar: bool = True) -> str:
        """The whole view as escaped HTML: the live widget's value (`bar=False`: the widget
        has a real progress bar) and the saved snapshot (`bar=True`)."""
        now = monotonic() if now is None else now
        return (
            f'<div class="ssenb-view ssenb-{self.kind}" style="line-height:1.4">'
            f"{self.header_html(now)}"
            f"{self._bar_html() if bar else ''}{self._body_html(now)}</div>"
        )

    def text(self, now: float | None = None) -> str:
        """One plain status line, for plain Python and terminals."""
        now = monotonic() if now is None else now
        parts = [f"[ssenb] {self.status}"]
        if self.title:
            parts.append(self.title)
        parts.append(f"{fmt_count(self.count)} events")
        summary = self._summary(now)
        if summary:
            parts.append(summary)
        if self.error is not None:
            parts.append(f"{type(self.error).__name__}: {shorten(str(self.error), 200)}")
        return " | ".join(parts)
