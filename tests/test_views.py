"""Live views: what each view shows for a stream, escaping, and the registry that chooses.

Views are plain state plus rendering, so these tests feed them events directly (no server, no
kernel, no widgets); time is passed in, so rates and latencies are exact. The widget frame
and its message budget are tested in test_display.py.
"""

from __future__ import annotations

import json
import re

import pytest

from ssenb import Event
from ssenb.notebook._view_base import WHOLE_WORDS
from ssenb.notebook._view_llm import TokenView
from ssenb.notebook._view_log import LogView, TableView
from ssenb.notebook._view_progress import ProgressView, RateView
from ssenb.notebook._views import VIEWS

XSS = "<img src=x onerror=alert(1)>"


def msg(data: object, event: str = "message", id: str = "") -> Event:
    """An event whose data is `data` as JSON (strings are sent as they are)."""
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data), id=id)


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


def test_text_line_is_plain() -> None:
    view = LogView(title="http://127.0.0.1:1/x")
    view.on_events([msg("a")] * 3, view.started)
    view.on_status("done")
    assert view.text() == "[ssenb] done | http://127.0.0.1:1/x | 3 events"


# -- long text keeps its words whole (Jupyter's CSS breaks <pre> text anywhere) -------------


@pytest.mark.parametrize("kind", ["log", "tokens"])
def test_text_blocks_never_break_inside_words(kind: str) -> None:
    view = VIEWS[kind]()
    view.on_events([msg({"content": "a model can stream each token"})], view.started)
    pres = re.findall(r"<pre[^>]*>", view.html())
    assert pres
    assert all(WHOLE_WORDS in pre for pre in pres), pres
