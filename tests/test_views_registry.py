"""Choosing a view: the registry (`ssenb.register_view`), names, and `view="auto"`.

`view="auto"` asks every registered `match(url, events)` by priority, then registration
order: first by URL alone, then with the first events; JSON objects fall back to the table,
anything else to the log. A third-party view registers the same way the built-ins do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

import ssenb
from ssenb import Event
from ssenb.notebook import _views
from ssenb.notebook._view_llm import TokenView
from ssenb.notebook._view_log import LogView, TableView
from ssenb.notebook._view_progress import ProgressView, RateView
from ssenb.notebook._views import VIEWS, AutoView, View, choose, make_view, register_view


def msg(data: object, event: str = "message", id: str = "") -> Event:
    """An event whose data is `data` as JSON (strings are sent as they are)."""
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data), id=id)


# -- choosing a view ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:1/chat?prompt=hi", "tokens"),
        ("http://127.0.0.1:1/v1/chat/completions", "tokens"),
        ("http://127.0.0.1:1/jobs/abc/progress", "progress"),
        ("http://127.0.0.1:1/ticks?rate=0", "chart"),
        ("http://127.0.0.1:1/stream?n=3", "table"),
        ("http://127.0.0.1:1/errors", None),
    ],
    ids=["chat", "openai", "job-progress", "ticks", "stream", "unknown"],
)
def test_endpoint_picks_the_view(url: str, kind: str | None) -> None:
    assert choose(url) == kind
    # the chart ranks below the built-ins (priority -1): they see the first events first
    waits = kind is None or kind == "chart"
    assert type(make_view("auto", url)).__name__ == (
        "AutoView" if waits else type(VIEWS[kind]()).__name__  # type: ignore[index]
    )


@pytest.mark.parametrize(
    ("events", "kind"),
    [
        ([msg({"content": "Hi"})], "tokens"),
        ([msg({"object": "chat.completion.chunk", "choices": [{"delta": {}}]})], "tokens"),
        ([msg({"progress": 3, "status": "running"})], "progress"),
        ([msg("{}", event="progress")], "progress"),
        ([msg({"t": 1.5, "value": 0.3})], "chart"),
        ([msg({"count": 1, "message": "Update 1"})], "table"),
        ([msg("[DONE]"), msg({"count": 1})], "table"),
        ([msg("plain words")], "log"),
        ([msg([1, 2])], "log"),
    ],
    ids=[
        "chat",
        "openai",
        "progress-key",
        "progress-event",
        "ticks",
        "object",
        "skip-done",
        "text",
        "json-list",
    ],
)
def test_event_shape_picks_the_view(events: list[Event], kind: str) -> None:
    view = make_view("auto", "http://127.0.0.1:1/errors")
    view.on_events(events, 0.0)
    assert view.current().kind == kind


def test_auto_view_waits_then_becomes_the_right_view() -> None:
    view = make_view("auto", "http://127.0.0.1:1/errors")
    assert isinstance(view, AutoView)
    assert "waiting for events" in view.html()
    view.on_status("open")
    view.on_events([msg({"progress": 40, "status": "running"}, event="progress")], 0.0)
    assert isinstance(view.current(), ProgressView)
    assert (view.progress(), view.count, view.current().status) == ((40, "info"), 1, "open")


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("log", LogView),
        ("table", TableView),
        ("tokens", TokenView),
        ("progress", ProgressView),
        ("rate", RateView),
        ("auto", TableView),
    ],
    ids=["log", "table", "tokens", "progress", "rate", "auto-by-url"],
)
def test_make_view_by_name(spec: str, cls: type[View]) -> None:
    assert type(make_view(spec, "http://127.0.0.1:1/stream")) is cls


def test_make_view_keeps_an_instance_and_rejects_unknown_names() -> None:
    mine = LogView(newest_first=True)
    assert make_view(mine) is mine
    with pytest.raises(ValueError, match="unknown view 'pie'"):
        make_view("pie")


# -- the registry: third-party views and view="auto" --------------------------------------


class Where(View):
    """A third-party view: the latest position of `{"lat", "lon"}` events."""

    kind = "where"

    def __init__(self, *, title: str = "") -> None:
        super().__init__(title=title)
        self.at = ""

    def _add(self, events: Sequence[Event], now: float) -> None:
        value = json.loads(events[-1].data)
        self.at = f"{value['lat']}, {value['lon']}"

    def _body_html(self, now: float) -> str:
        return f"<div>at {self.esc(self.at)}</div>"


def has_position(url: str, events: Sequence[Event]) -> bool:
    return any({"lat", "lon"} <= set(json.loads(ev.data)) for ev in events[:1])


@pytest.fixture
def registry() -> Iterator[None]:
    """Registrations a test makes are undone afterwards."""
    saved = dict(_views._REGISTRY)
    yield
    _views._REGISTRY.clear()
    _views._REGISTRY.update(saved)


POSITION = [msg({"lat": 52.5, "lon": 13.4})]
REGISTRY_CASES = [
    # (how Where is registered, url, events) -> the kind "auto" shows
    ("by shape", {"match": has_position}, "/feed", POSITION, "where"),
    ("shape, no match", {"match": has_position}, "/feed", [msg({"n": 1})], "table"),
    ("by name only", {}, "/feed", POSITION, "chart"),  # numbers: the chart
    ("built-in URL first", {"match": has_position}, "/stream", POSITION, "table"),
    ("higher priority wins", {"match": has_position, "priority": 1}, "/stream", POSITION, "where"),
    ("buggy match is a no", {"match": lambda u, e: 1 / 0}, "/feed", POSITION, "chart"),
]


@pytest.mark.parametrize(
    ("how", "path", "events", "kind"),
    [c[1:] for c in REGISTRY_CASES],
    ids=[c[0] for c in REGISTRY_CASES],
)
def test_auto_asks_registered_views_by_priority_then_order(
    registry: None, how: dict, path: str, events: list[Event], kind: str
) -> None:
    ssenb.register_view("where", Where, **how)
    view = make_view("auto", "http://127.0.0.1:1" + path)
    view.on_events(events, view.started)
    assert view.current().kind == kind
    if kind == "where":
        assert "at 52.5, 13.4" in view.html()


def test_a_registered_view_is_chosen_by_name_and_listed(registry: None) -> None:
    assert (ssenb.register_view, ssenb.View) == (register_view, View)
    register_view("where", Where)
    assert type(make_view("where", "u")) is Where
    assert _views.registered()[-2:] == ["where", "chart"]  # the chart ranks last (-1)
    register_view("log", Where)  # registering a name again replaces it, in its old place
    assert (_views.registered()[0], VIEWS["log"]) == ("log", Where)


def test_unknown_names_list_every_registered_view(registry: None) -> None:
    register_view("where", Where)
    with pytest.raises(ValueError, match="unknown view 'pie'") as info:
        make_view("pie")
    for name in ("auto", "chart", "log", "progress", "rate", "table", "tokens", "where"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("auto", Where), ValueError),
        (("", Where), ValueError),
        (("x", dict), TypeError),
        (
            (
                "x",
                Where(),
            ),
            TypeError,
        ),
        (("x", Where, "not callable"), TypeError),
    ],
    ids=["auto-is-reserved", "empty-name", "not-a-view", "an-instance", "match-not-callable"],
)
def test_bad_registrations_fail_clearly(registry: None, args: tuple, error: type) -> None:
    name, cls, *match = args
    with pytest.raises(error):
        register_view(name, cls, match=match[0] if match else None)
