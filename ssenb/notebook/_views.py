"""The view registry: names, `register_view`, and how `view="auto"` chooses.

Every view, built-in or not, is one `register_view(name, cls, match=..., priority=...)`
call. `make_view("auto", url)` asks the registered `match(url, events)` functions, highest
`priority` first, then in registration order: first with no events (the URL alone decides, so
`/chat` shows the tokens view before its first token, unless a view of higher priority is
registered, which then gets to see the events), then with the first batch of events. When
nothing matches, a stream of JSON objects gets the table and anything else the log. The
registry is pure (no widgets): `_display.Frame` shows whatever it returns.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._models import Event
from ._view_base import View
from ._view_chart import ChartView, match_chart
from ._view_llm import TokenView, matches
from ._view_log import LogView, TableView
from ._view_progress import ProgressView, RateView

__all__ = [
    "VIEWS",
    "AutoView",
    "Match",
    "choose",
    "make_view",
    "register_view",
    "registered",
    "unregister_view",
    "view_class",
]

Match = Callable[[str, Sequence[Event]], bool]
"""`match(url, events) -> bool`: does this view fit? Called with `events=()` first."""


@dataclass(frozen=True)
class _Entry:
    cls: type[View]
    match: Match | None
    priority: int
    order: int


_REGISTRY: dict[str, _Entry] = {}
_ORDER = itertools.count()
_RESERVED = frozenset({"auto"})


def register_view(
    name: str, cls: type[View], *, match: Match | None = None, priority: int = 0
) -> None:
    """Make `cls` available as `watch(url, view=name)`, and to `view="auto"` through `match`.

    Args:
        name: the view's name (not "auto"). Registering a name again replaces that view and
            keeps its place in the order (re-running a notebook cell is harmless).
        cls: a `ssenb.View` subclass, built as `cls(title=url)`.
        match: `match(url, events) -> bool`, asked by `view="auto"`: first with `events=()`
            (decide by URL, or say False to wait for events), then with the first batch.
            It must be cheap and must not raise; an exception counts as "no". None: the view
            is only ever chosen by name.
        priority: higher is asked first; equal priorities go in registration order (the
            built-ins are registered first, at 0).
    """
    if not isinstance(name, str) or not name.strip() or name in _RESERVED:
        raise ValueError(f"a view name must be a non-empty string other than 'auto', not {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, View)):
        raise TypeError(f"register_view({name!r}, ...) wants a ssenb.View subclass, not {cls!r}")
    if match is not None and not callable(match):
        raise TypeError(f"match must be callable(url, events) -> bool, not {match!r}")
    old = _REGISTRY.get(name)
    order = old.order if old is not None else next(_ORDER)
    _REGISTRY[name] = _Entry(cls, match, int(priority), order)


class _Registered(Mapping[str, type[View]]):
    """`VIEWS`: a live, read-only name -> class view of the registry, in `registered()` order."""

    def __getitem__(self, name: str) -> type[View]:
        return _REGISTRY[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(registered())

    def __len__(self) -> int:
        return len(_REGISTRY)


VIEWS: Mapping[str, type[View]] = _Registered()


def unregister_view(name: str) -> None:
    """Remove a registered view (built-ins too); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def registered() -> list[str]:
    """The registered view names, in the order `view="auto"` asks them."""
    ranked = sorted(_REGISTRY.items(), key=lambda item: (-item[1].priority, item[1].order))
    return [name for name, _ in ranked]


def view_class(name: str) -> type[View]:
    """The class registered as `name`; ValueError naming every choice for an unknown one."""
    entry = _REGISTRY.get(name)
    if entry is None:
        names = ", ".join(["auto", *sorted(_REGISTRY)])
        raise ValueError(f"unknown view {name!r}: use one of {names}, or a View instance")
    return entry.cls


def choose(url: str, events: Sequence[Event] = ()) -> str | None:
    """The first registered view whose `match(url, events)` says yes, or None."""
    for name in registered():
        match = _REGISTRY[name].match
        try:
            if match is not None and match(url, events):
                return name
        except Exception:  # a third-party matcher's bug must not stop the stream
            continue
    return None


def _outranked(name: str) -> bool:
    """Whether a view with a higher priority than `name` has a `match` to ask."""
    rank = _REGISTRY[name].priority
    return any(e.match is not None and e.priority > rank for e in _REGISTRY.values())


def _fallback(events: Sequence[Event]) -> str:
    """Nothing matched: JSON objects get the table, anything else the log."""
    for value in _values(events):
        return "table" if isinstance(value, dict) else "log"
    return "log"


# -- the built-in matchers: today's rules, by endpoint and by the first event's shape ----

_NOT_JSON = object()


def _values(events: Sequence[Event]) -> list[Any]:
    """The first event's parsed data (skipping `[DONE]`), as a one-item list (or empty)."""
    for ev in events:
        if ev.data == "[DONE]":
            continue
        try:
            return [json.loads(ev.data)]
        except ValueError:
            return [_NOT_JSON]
    return []


def _path_ends(url: str, *suffixes: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith(suffixes)


def _match_progress(url: str, events: Sequence[Event]) -> bool:
    if _path_ends(url, "/progress"):
        return True
    for ev in events:
        if ev.event == "progress":
            return True
        if ev.data != "[DONE]":
            break
    return any(isinstance(v, dict) and "progress" in v for v in _values(events))


def _match_table(url: str, events: Sequence[Event]) -> bool:
    return _path_ends(url, "/stream")


# the built-ins, one line each ("log" and "table" are also the fallbacks). The chart, for
# `/ticks` and mostly numeric data, is asked last (priority -1): its rule is broad, so any
# other view that claims a shape wins; the rate view (events/s) is chosen by name only.
register_view("log", LogView)
register_view("table", TableView, match=_match_table)
register_view("progress", ProgressView, match=_match_progress)
register_view("tokens", TokenView, match=matches)
register_view("rate", RateView)
register_view("chart", ChartView, match=match_chart, priority=-1)


class AutoView(View):
    """Waits for the first events, then becomes the view the registry chooses for them."""

    kind = "auto"
    interval = 0.05

    def __init__(self, *, url: str = "", title: str = "") -> None:
        super().__init__(title=title or url)
        self.url = url
        self.inner: View | None = None

    def on_events(self, events: Sequence[Event], now: float) -> None:
        """Pick the concrete view from the first non-empty batch, then delegate to it."""
        if not events:
            return
        if self.inner is None:
            name = choose(self.url, events) or _fallback(events)
            self.inner = view_class(name)(title=self.title)
            self.inner.started = self.started
            self.inner.on_status(self.status, self.error)
        self.inner.on_events(events, now)
        self.count = self.inner.count  # the placeholder reports what its view counted
        self.first_at, self.last_at = self.inner.first_at, self.inner.last_at

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        super().on_status(status, error)
        if self.inner is not None:
            self.inner.on_status(status, error)

    def current(self) -> View:
        """The concrete view once chosen, else this placeholder."""
        return self.inner if self.inner is not None else self

    def prepare(self) -> None:
        if self.inner is not None:
            self.inner.prepare()

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
    """A view from a registered name, "auto" (chosen by `match`), or a View instance."""
    if isinstance(view, View):
        view.title = view.title or url
        return view
    if not isinstance(view, str):
        raise TypeError(f"view must be a name or a ssenb.View instance, not {view!r}")
    if view == "auto":
        name = choose(url)
        if name is None or _outranked(name):  # a view that ranks higher may want the events
            return AutoView(url=url)
        return view_class(name)(title=url)
    return view_class(view)(title=url)
