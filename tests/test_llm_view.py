"""The tokens view over every provider's stream shape, and `view="auto"` choosing it.

Pure view tests feed the byte-exact recordings (tests/fixtures/llm); the live ones `watch`
each demo producer over a real uvicorn server, as a notebook user would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.notebook._view_llm import FALLBACK_NOTE, TokenView, matches
from ssenb.notebook._views import AutoView, LogView, TableView, make_view
from ssenb.server import ServerHandle
from ssenb.server._llm_mock import mock_answer

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
XSS = "<img src=x onerror=alert(1)>"


def _events(name: str) -> list[Event]:
    return EventParser().feed((FIXTURES / name).read_bytes())


def _view(name: str) -> TokenView:
    view = TokenView()
    for i, ev in enumerate(_events(name)):  # one event per 10 ms after a 200 ms wait
        view.on_events([ev], view.started + 0.2 + 0.01 * i)
    view.on_status("done")
    return view


SHOWN = [
    ("openai_chat.txt", "Server-Sent Events stream text.", "finish: stop"),
    ("openai_responses.txt", "Hi! How can I help?", "finish: completed"),
    ("anthropic.txt", "Hello!", "finish: end_turn"),
    (
        "gemini.txt",
        "Server-Sent Events let a server push text to the browser over HTTP.",
        "finish: STOP",
    ),
    ("ssenb_chat.txt", "Sure! Hi.", "4 tokens"),
]


@pytest.mark.parametrize(("name", "answer", "words"), SHOWN, ids=[s[0][:-4] for s in SHOWN])
def test_every_dialect_shows_its_answer_ttft_and_rate(name: str, answer: str, words: str) -> None:
    view = _view(name)
    assert view.answer == answer
    assert view.ttft is not None
    assert 0.19 < view.ttft < 0.3
    assert view.tokens_per_second() is not None
    assert words in view.text()
    assert answer.replace("'", "&#x27;") in view.html()


@pytest.mark.parametrize("name", ["openai_responses.txt", "anthropic_thinking.txt", "gemini.txt"])
def test_reasoning_is_shown_apart_and_collapsed(name: str) -> None:
    view = _view(name)
    page = view.html()
    details = re.search(r"<details><summary>reasoning.*?</details>", page, re.S)
    assert details is not None
    reasoning = view.acc.result().reasoning
    assert reasoning[:20].replace("'", "&#x27;") in details.group(0)
    assert " open" not in details.group(0)[:20]  # collapsed
    assert reasoning[:20] not in view.answer


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("openai_chat_tools.txt", "get_time"),
        ("openai_responses_tools.txt", "get_weather"),
        ("anthropic_tools.txt", "get_weather"),
        ("gemini_tools.txt", "get_weather"),
    ],
    ids=["chat", "responses", "anthropic", "gemini"],
)
def test_tool_calls_are_shown_as_they_assemble(name: str, call: str) -> None:
    view, shown = TokenView(), []
    for ev in _events(name):
        view.on_events([ev], 0.0)
        match = re.search(rf"<b>{call}</b>\((.*?)\)</div>", view.html())
        shown.append(match.group(1) if match else None)
    final = [s for s in shown if s is not None]
    assert json.loads(final[-1].replace("&quot;", '"'))  # whole arguments at the end
    if not name.startswith("gemini"):  # Gemini sends a call whole; the others in fragments
        assert len(set(final)) > 2


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("anthropic_overloaded.txt", "overloaded_error: Overloaded"),
        ("gemini_error.txt", "UNAVAILABLE: The model is overloaded"),
        ("openai_responses_error.txt", "server_error: The server had an error"),
    ],
    ids=["anthropic-overloaded", "gemini-503", "responses-failed"],
)
def test_provider_errors_mid_stream_are_shown_as_errors(name: str, error: str) -> None:
    view = _view(name)
    page = view.html()
    assert re.search(rf'<div style="color:#c62828">{re.escape(error)}', page)
    assert view.answer in page  # the text so far stays
    assert view.status == "error"  # although the stream itself ended cleanly
    assert error in view.text()


def test_an_unrecognised_stream_falls_back_to_the_log_with_a_note() -> None:
    view = TokenView(title="http://x/chat")
    events = [Event(data=json.dumps({"weather": XSS, "n": i})) for i in range(5)]
    view.on_events(events[:2], 0.0)
    assert view.fallback is None  # a couple of odd events: still waiting for a dialect
    view.on_events(events[2:], 0.1)
    assert isinstance(view.fallback, LogView)
    page = view.html()
    assert FALLBACK_NOTE in page
    assert page.count("weather") == 5  # the early events too
    assert "<img" not in page


def test_malformed_json_is_shown_in_that_events_row_and_the_text_goes_on() -> None:
    view = TokenView()
    chunk = '{"choices": [{"index": 0, "delta": {"content": "%s"}}]}'
    view.on_events(
        [Event(data=chunk % "A"), Event(data='{"choices": [{'), Event(data=chunk % "B")], 0.0
    )
    assert view.answer == "AB"
    assert "malformed JSON" in view.html()


@pytest.mark.parametrize("name", ["openai_chat_tools.txt", "anthropic_tools.txt"])
def test_tool_names_and_arguments_are_escaped(name: str) -> None:
    data = (FIXTURES / name).read_text().replace("get_weather", XSS.replace('"', ""))
    view = TokenView()
    view.on_events(EventParser().feed(data.encode()), 0.0)
    assert "<img" not in view.html()
    assert "&lt;img" in view.html()


URLS = [
    ("http://h/chat?prompt=hi", True),
    ("http://h/v1/chat/completions", True),
    ("http://h/v1/responses", True),
    ("http://h/v1/messages", True),
    ("http://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", True),
    ("http://h/stream", False),
    ("http://h/messages/archive", False),
]


@pytest.mark.parametrize(("url", "expected"), URLS, ids=[u for u, _ in URLS])
def test_llm_endpoints_match_by_url(url: str, expected: bool) -> None:
    assert matches(url, []) is expected


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.txt")))
def test_auto_picks_tokens_from_the_events_of_every_dialect(name: str) -> None:
    view = make_view("auto", "http://h/some/proxy")
    assert isinstance(view, AutoView)
    view.on_events(_events(name)[:1], 0.0)
    assert isinstance(view.current(), TokenView)


def test_auto_keeps_a_table_for_other_json() -> None:
    view = make_view("auto", "http://h/x")
    view.on_events([Event(data='{"count": 1, "message": "m"}')], 0.0)
    assert isinstance(view.current(), TableView)


# -- live: watch each producer -----------------------------------------------------------------

PROMPT = "Stream me"
LIVE = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}], "stream": True}),
    ("/v1/responses", {"input": PROMPT, "stream": True, "reasoning": {"summary": "auto"}}),
    (
        "/v1/messages",
        {
            "max_tokens": 999,
            "stream": True,
            "thinking": {"type": "enabled"},
            "messages": [{"role": "user", "content": PROMPT}],
        },
    ),
    (
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": PROMPT}]}]},
    ),
]


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-llm-view") as handle:
        yield handle


@pytest.mark.parametrize(("path", "body"), LIVE, ids=["chat", "responses", "messages", "gemini"])
def test_watch_shows_each_producer_live(demo: ServerHandle, path: str, body: Any) -> None:
    sub = ssenb.watch(
        f"{demo.url}{path}", method="POST", json={**body, "delay": 0.002}, display=False
    )
    try:
        assert sub.wait(timeout=20)
        view = sub.view.current()
        assert isinstance(view, TokenView)
        assert view.answer == mock_answer(PROMPT)
        assert view.ttft is not None
        assert view.finish_reason in {"stop", "completed", "end_turn", "STOP"}
        assert ssenb.llm.summarize(sub.df).text == view.answer
        assert ssenb.llm.summarize(sub) == ssenb.llm.summarize(sub.df)  # a Subscription too
    finally:
        sub.stop()


def test_watch_shows_a_provider_error_mid_stream(demo: ServerHandle) -> None:
    body = {
        "max_tokens": 99,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
        "delay": 0,
        "fail_after": 4,
    }
    sub = ssenb.watch(f"{demo.url}/v1/messages", method="POST", json=body, display=False)
    try:
        assert sub.wait(timeout=20)
        view = sub.view.current()
        assert isinstance(view, TokenView)
        assert view.tokens == 4
        assert view.problem == "overloaded_error: Overloaded"
        assert "overloaded_error" in view.html()
    finally:
        sub.stop()
