"""`ssenb.View`: the base class of every live view, and how to write your own.

A view is plain state plus pure rendering, so it is testable without a server, a kernel or
widgets. Subclass it, then `ssenb.register_view("name", MyView, match=...)`:

    class Latest(ssenb.View):
        kind = "latest"              # its name in headers and CSS (`ssenb-latest`)
        interval = 0.25              # least seconds between two renders of this view

        def __init__(self, *, title: str = "") -> None:   # built as cls(title=url)
            super().__init__(title=title)
            self.last = None

        def _add(self, events, now):         # on the ssenb loop: keep it cheap
            self.last = events[-1].data

        def _body_html(self, now):           # escape every piece of event data
            return f"<pre>{self.esc(self.last)}</pre>"

What to override:

- `_add(events, now)`: fold a batch of events into the state (the base has already counted
  them in `count` and noted `first_at` / `last_at`). It runs on the ssenb loop thread for
  every batch, whatever the rate, so keep raw events or a few numbers and format nothing.
- `_body_html(now)`: the view's body as HTML. Put event data through `self.esc()` (and
  long values through `self.shorten(text, limit)`): event data is untrusted.
- optionally `_summary(now)`: a few plain words for the header and the text line;
  `progress()`: `(percent, bar_style)` to drive the widget's progress bar, with
  `_bar_html()` drawing the same bar in the saved snapshot; `on_status(status, error)` to
  react to "connecting", "open", "reconnecting", "done", "stopped", "error".

How state reaches the widget: nothing is pushed. One renderer on the loop calls `html(now,
bar=False)` at most every `interval` seconds and sends the HTML widget's value only when the
markup changed, within a budget of 20 comm messages per second per view (`_display.Frame`).
So a view at 50 k events/s costs one `_add` per batch plus a few renders per second, and
whatever `html()` returns last is also the final snapshot kept in the saved notebook, where
nbconvert, GitHub and nbviewer show it without a kernel. `text(now)` gives the one-line form
for terminals and plain Python.

Time is always passed in (`time.monotonic()` seconds), never read inside, so tests control it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from time import monotonic
from typing import ClassVar

from .._models import Event

__all__ = ["FINAL", "WHOLE_WORDS", "View", "esc", "fmt_count", "fmt_rate", "keep_words", "shorten"]

FINAL = frozenset({"done", "stopped", "error"})

_COLOURS = {
    "connecting": "#9e9e9e",
    "open": "#2e7d32",
    "reconnecting": "#f9a825",
    "done": "#1565c0",
    "stopped": "#616161",
    "error": "#c62828",
}


# Jupyter's output CSS (JupyterLab, and nbconvert's HTML, so nbviewer too) sets
# `word-break: break-all` on every `<pre>` in an output: long text then wraps inside words
# ("strea" at the end of one line, "m" on the next). A view's text blocks keep words whole
# and break only a word longer than the line.
WHOLE_WORDS = "word-break:normal;overflow-wrap:anywhere"
_PRE = re.compile(r'<pre(?=[\s>])(\s+style="([^"]*)")?')


def keep_words(markup: str) -> str:
    """Give every `<pre>` of a view's own markup `WHOLE_WORDS` (unless it sets word-break).

    Safe on rendered views: event data in them is escaped, so it never contains `<pre`.
    """

    def fix(m: re.Match[str]) -> str:
        style = m.group(2)
        if style is None:
            return f'<pre style="{WHOLE_WORDS}"'
        if "word-break" in style:
            return m.group(0)
        return f'<pre style="{WHOLE_WORDS};{style}"'

    return _PRE.sub(fix, markup)


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
    """Base class of every view: counts events, tracks status and error, renders the header.

    Subclasses set `kind`, may lower or raise `interval` (the least time between two renders
    of this view, in seconds), implement `_add` and `_body_html`, and optionally `_summary`,
    `progress` with `_bar_html`, and `on_status` (see the module doc). Built as
    `cls(title=url)`, so a subclass's own arguments must be keyword arguments with defaults.
    """

    kind: ClassVar[str] = "view"
    interval: ClassVar[float] = 0.25
    esc = staticmethod(esc)  # for subclasses: escape untrusted data (quotes too)
    shorten = staticmethod(shorten)  # for subclasses: cut text to a length with an ellipsis

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

    def prepare(self) -> None:
        """Work the next redraw needs that may run in a worker thread (a chart parses the rows
        that arrived since the last one here): `watch` calls it off its loop before each
        render, so reading the stream goes on meanwhile. Base: nothing. It must be safe
        against `html()` running at the same time (use a lock)."""

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
        body = keep_words(self._body_html(now))
        return (
            f'<div class="ssenb-view ssenb-{self.kind}" style="line-height:1.4">'
            f"{self.header_html(now)}{self._bar_html() if bar else ''}{body}</div>"
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
