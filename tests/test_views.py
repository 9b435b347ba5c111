"""Live views: what each view shows for a stream, escaping, choosing, and the message budget.

Views are plain state plus rendering, so these tests feed them events directly (no server, no
kernel); time is passed in, so rates and latencies are exact. Widget messages are counted by
wrapping `ipywidgets.Widget._send`, the one place every comm message leaves a widget.
"""

from __future__ import annotations

import json
import re

import ipywidgets
import pytest

from ssenb import Event
from ssenb.notebook._views import (
    MAX_MESSAGES_PER_SECOND,
    VIEWS,
    AutoView,
    Frame,
    LogView,
    ProgressView,
    RateView,
    TableView,
    TokenView,
    View,
    kind_for_events,
    kind_for_url,
    make_view,
)

XSS = "<img src=x onerror=alert(1)>"


def msg(data: object, event: str = "message", id: str = "") -> Event:
    """An event whose data is `data` as JSON (strings are sent as they are)."""
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data), id=id)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every comm message sent by any widget, as the sending widget's model id."""
    log: list[str] = []
    original = ipywidgets.Widget._send

    def counting(self: ipywidgets.Widget, msg: dict, buffers: list | None = None) -> None:
        log.append(self.model_id)
        original(self, msg, buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", counting)
    return log


# -- untrusted data is text ---------------------------------------------------------------

XSS_CASES = [
    ("log", [msg(XSS)]),
    ("log", [msg(XSS, event=XSS, id=XSS)]),
    ("table", [msg({"html": XSS, XSS: 1})]),
    ("table", [msg(XSS)]),
    ("tokens", [msg({"content": XSS})]),
    ("tokens", [msg({"choices": [{"delta": {"content": XSS}, "finish_reason": XSS}]})]),
    ("tokens", [msg({"error": XSS}, event="error")]),
    ("progress", [msg({"progress": 5, "status": "running", "message": XSS}, event="progress")]),
    ("progress", [msg({"error": XSS}, event="error")]),
    ("rate", [msg({"t": 1, "value": XSS})]),
]


@pytest.mark.parametrize(
    ("kind", "events"),
    XSS_CASES,
    ids=[
        "log-data",
        "log-event-and-id",
        "table-cell-and-column",
        "table-plain-data",
        "tokens-chat",
        "tokens-openai-and-finish",
        "tokens-error",
        "progress-message",
        "progress-error",
        "rate-last-value",
    ],
)
def test_event_data_is_escaped_in_every_view(kind: str, events: list[Event]) -> None:
    view = VIEWS[kind](title=XSS)
    view.on_events(events, view.started + 0.1)
    view.on_status("error", RuntimeError(XSS))
    page = view.html(view.started + 1.0)
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# -- the event log ------------------------------------------------------------------------


def test_log_keeps_a_bounded_scrollback_and_says_how_many_are_hidden() -> None:
    view = LogView(scrollback=5)
    view.on_events([msg(f"line {i}", id=str(i)) for i in range(1000)], view.started)
    page = view.html()
    shown = re.findall(r"\[(\d+)\] line", page)
    assert shown == [str(i) for i in range(995, 1000)]
    assert "995 earlier events not shown" in page
    assert view.count == 1000


@pytest.mark.parametrize(
    ("newest_first", "order"),
    [(False, ["0", "1", "2"]), (True, ["2", "1", "0"])],
    ids=["oldest-first", "newest-first"],
)
def test_log_order(newest_first: bool, order: list[str]) -> None:
    view = LogView(newest_first=newest_first)
    view.on_events([msg("x", id=str(i)) for i in range(3)], view.started)
    assert re.findall(r"\[(\d+)\]", view.html()) == order


def test_log_names_non_message_events_and_cuts_huge_data() -> None:
    view = LogView(width=20)
    view.on_events([msg("y" * 10_000, event="tick", id="7")], view.started)
    page = view.html()
    assert "[7] tick: " + "y" * 19 + "…" in page
    assert "y" * 21 not in page


# -- the table ----------------------------------------------------------------------------


def test_table_shows_the_last_rows_with_json_keys_as_columns() -> None:
    view = TableView(rows=3)
    events = [msg({"count": i, "message": f"Update {i}"}, id=str(i)) for i in range(10)]
    view.on_events(events, view.started)
    page = view.html()
    assert re.findall(r"<th[^>]*>([^<]+)</th>", page) == [
        "id",
        "event",
        "data.count",
        "data.message",
    ]
    assert re.findall(r"<td[^>]*>Update (\d+)</td>", page) == ["7", "8", "9"]


# -- tokens -------------------------------------------------------------------------------


def test_tokens_from_chat_assemble_text_with_ttft_and_rate() -> None:
    view = TokenView()
    t0 = view.started
    words = ["Hello", " wide", " world"]
    for i, word in enumerate(words):
        view.on_events([msg({"content": word})], t0 + 0.2 + 0.1 * i)
    view.on_events([msg("[DONE]")], t0 + 0.5)
    assert view.answer == "".join(words)
    assert view.ttft == pytest.approx(0.2)
    assert view.tokens_per_second() == pytest.approx((len(words) - 1) / 0.2)
    assert "Hello wide world" in view.html(t0 + 1)
    assert "first token 200 ms" in view.text(t0 + 1)


def test_tokens_from_openai_chunks_keep_the_finish_reason() -> None:
    view = TokenView()

    def chunk(content: str | None, finish: str | None = None) -> Event:
        delta = {} if content is None else {"content": content}
        return msg(
            {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    view.on_events([chunk("A"), chunk("B"), chunk(None, "stop"), msg("[DONE]")], view.started)
    assert (view.answer, view.tokens, view.finish_reason) == ("AB", 2, "stop")
    assert "finish: stop" in view.text()


def test_tokens_show_an_error_event_and_keep_the_text() -> None:
    view = TokenView()
    view.on_events([msg({"content": "partial"}), msg({"error": "quota"}, event="error")], 0.0)
    page = view.html()
    assert "partial" in page
    assert "quota" in page


# -- progress -----------------------------------------------------------------------------


def _job(steps: int) -> list[Event]:
    return [
        msg({"progress": p, "status": "running", "message": f"step {p}"}, event="progress")
        for p in range(0, steps + 1, 25)
    ]


COMPLETE = msg({"status": "completed", "message": "all done"}, event="complete")
FAILED = msg({"error": "disk full"}, event="error")
PROGRESS_CASES = [
    (_job(50), "running", (50, "info"), "step 50"),
    ([*_job(75), COMPLETE], "completed", (100, "success"), "all done"),
    ([*_job(25), FAILED], "failed", (25, "danger"), "disk full"),
    ([msg({"progress": 250})], "running", (100, "info"), ""),
]


@pytest.mark.parametrize(
    ("events", "state", "bar", "line"),
    PROGRESS_CASES,
    ids=["running", "completed", "error-event", "clamped"],
)
def test_progress_events_drive_bar_and_status_line(
    events: list[Event], state: str, bar: tuple[int, str], line: str
) -> None:
    view = ProgressView()
    view.on_events(events, view.started)
    assert (view.state, view.progress()) == (state, bar)
    assert line in view.html()


def test_progress_marks_a_failed_stream_as_failed() -> None:
    view = ProgressView()
    view.on_events(_job(25), view.started)
    view.on_status("error", ConnectionError("dropped"))
    assert view.progress() == (25, "danger")
    assert "ConnectionError: dropped" in view.html()


# -- rate ---------------------------------------------------------------------------------


def test_rate_counts_events_per_second_per_bucket() -> None:
    view = RateView(bucket=0.5, points=10)
    t0 = view.started
    for step in range(8):  # 4 s: 100 events every 0.5 s, then a silent second
        view.on_events([msg({"t": step, "value": step})] * 100, t0 + 0.5 * step + 0.1)
    assert view.series(t0 + 4.0) == [200.0] * 8
    assert view.series(t0 + 5.0)[-2:] == [0.0, 0.0]
    assert view.rate(t0 + 4.0) == 200.0
    assert "<polyline" in view.html(t0 + 4.0)
    assert "now 200/s" in view.text(t0 + 4.0)


# -- choosing a view ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:1/chat?prompt=hi", "tokens"),
        ("http://127.0.0.1:1/v1/chat/completions", "tokens"),
        ("http://127.0.0.1:1/jobs/abc/progress", "progress"),
        ("http://127.0.0.1:1/ticks?rate=0", "rate"),
        ("http://127.0.0.1:1/stream?n=3", "table"),
        ("http://127.0.0.1:1/errors", None),
    ],
    ids=["chat", "openai", "job-progress", "ticks", "stream", "unknown"],
)
def test_endpoint_picks_the_view(url: str, kind: str | None) -> None:
    assert kind_for_url(url) == kind


@pytest.mark.parametrize(
    ("events", "kind"),
    [
        ([msg({"content": "Hi"})], "tokens"),
        ([msg({"object": "chat.completion.chunk", "choices": [{"delta": {}}]})], "tokens"),
        ([msg({"progress": 3, "status": "running"})], "progress"),
        ([msg("{}", event="progress")], "progress"),
        ([msg({"t": 1.5, "value": 0.3})], "rate"),
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
    assert kind_for_events(events) == kind


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


# -- the frame: coalesced widget updates --------------------------------------------------


@pytest.mark.parametrize("kind", ["log", "table", "tokens", "progress", "rate"])
def test_frame_sends_at_most_20_messages_a_second_at_50k_events_a_second(
    kind: str, sends: list[str]
) -> None:
    """3 s of 50 k ev/s, fed and ticked every millisecond: every 1 s window holds <= 20."""
    view = VIEWS[kind]()
    frame = Frame(view)
    t0 = view.started
    sends.clear()
    at: list[float] = []  # when each message was sent (simulated clock)
    for ms in range(3000):
        now = t0 + ms / 1000
        data = {"progress": ms / 30, "content": "w", "t": ms, "value": ms, "count": ms}
        view.on_events([msg(data, id=str(ms))] * 50, now)
        before = len(sends)
        sent = frame.tick(now)
        assert len(sends) - before == sent  # the reported count is the real one
        at += [now] * sent
    busiest = max(sum(1 for t in at if s <= t < s + 1) for s in at)
    assert 0 < busiest <= MAX_MESSAGES_PER_SECOND
    view.on_status("done")
    assert frame.tick(t0 + 3.0005, final=True) >= 1  # the end state is always sent
    assert view.count == 150_000
    assert f"{view.count:,} events" in frame.html.value
    assert (frame.button.disabled, frame.button.description) == (True, "Done")


def test_frame_sends_nothing_when_nothing_changed(sends: list[str]) -> None:
    view = LogView()
    frame = Frame(view)
    view.on_events([msg("a")], view.started)
    assert frame.tick(view.started + 1) == 1
    sends.clear()
    assert frame.tick(view.started + 2) == 0
    assert sends == []


def test_frame_shows_the_bar_only_when_the_view_drives_one() -> None:
    view = AutoView()
    frame = Frame(view)
    assert frame.bar.layout.display == "none"
    view.on_events([msg({"progress": 60}, event="progress")], view.started)
    frame.tick(view.started + 1)
    assert frame.bar.layout.display is None
    frame.tick(view.started + 2)
    assert (frame.bar.value, frame.bar.bar_style) == (60, "info")


def test_progress_bar_is_drawn_once_live_and_kept_in_the_snapshot() -> None:
    view = ProgressView()
    frame = Frame(view)
    view.on_events(_job(50), view.started)
    frame.tick(view.started + 1)
    assert frame.bar.value == 50
    assert "width:50.0%" not in frame.html.value  # the widget bar shows it live
    assert "width:50.0%" in view.html()  # the saved snapshot draws its own


def test_stop_button_calls_stop() -> None:
    calls: list[int] = []
    frame = Frame(LogView(), on_stop=lambda: calls.append(1))
    frame.button.click()
    assert calls == [1]


def test_text_line_is_plain() -> None:
    view = LogView(title="http://127.0.0.1:1/x")
    view.on_events([msg("a")] * 3, view.started)
    view.on_status("done")
    assert view.text() == "[ssenb] done | http://127.0.0.1:1/x | 3 events"
