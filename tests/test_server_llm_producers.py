"""The provider-shaped mock producers on the wire: event names and order, end markers, line
ends, length limits, whole (non-streamed) answers and 422s, over a real uvicorn server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle
from ssenb.server._llm_mock import mock_answer

PROMPT = "Hi there"
GEMINI = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
CHAT = {"messages": [{"role": "user", "content": PROMPT}], "stream": True, "delay": 0}
RESPONSES = {"input": PROMPT, "stream": True, "delay": 0}
MESSAGES = {
    "max_tokens": 500,
    "messages": [{"role": "user", "content": PROMPT}],
    "stream": True,
    "delay": 0,
}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}], "delay": 0}


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-llm-producers") as handle:
        yield handle


def _post(demo: ServerHandle, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{demo.url}{path}", json=body, timeout=20)


def _events(demo: ServerHandle, path: str, body: dict[str, Any]) -> list[Event]:
    response = _post(demo, path, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = response.content.splitlines()
    assert not any(line.startswith(b":") for line in lines)  # no comment heartbeats
    return EventParser().feed(response.content)


def test_responses_events_are_named_by_their_type_and_numbered_in_order(
    demo: ServerHandle,
) -> None:
    events = _events(demo, "/v1/responses", RESPONSES)
    data = [e.json() for e in events]
    assert [e.event for e in events] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert [e.event for e in events[:4]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert events[-1].event == "response.completed"
    assert all(e.data != "[DONE]" for e in events)
    final = data[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == mock_answer(PROMPT)
    assert final["usage"]["output_tokens"] == sum(e.event.endswith("text.delta") for e in events)


def test_anthropic_events_come_in_the_documented_order(demo: ServerHandle) -> None:
    events = _events(demo, "/v1/messages", {**MESSAGES, "thinking": {"type": "enabled"}})
    names = [e.event for e in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(e.json()["type"] == e.event for e in events)
    starts = [e.json() for e in events if e.event == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "thinking"),
        (1, "text"),
    ]
    kinds = [e.json()["delta"]["type"] for e in events if e.event == "content_block_delta"]
    assert kinds.index("signature_delta") == kinds.index("text_delta") - 1  # closes thinking
    assert all(e.data != "[DONE]" and e.id == "" for e in events)


def test_gemini_chunks_are_unnamed_crlf_separated_and_end_without_done(
    demo: ServerHandle,
) -> None:
    response = _post(demo, f"{GEMINI}?alt=sse", CONTENTS)
    raw = response.content
    assert raw.startswith(b"data: {")
    assert raw.endswith(b"}\r\n\r\n")
    assert raw.count(b"\r\n\r\n") == raw.count(b"data: ")
    assert b"event:" not in raw
    assert b"[DONE]" not in raw
    chunks = [e.json() for e in EventParser().feed(raw)]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    text = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert text == mock_answer(PROMPT)


def test_gemini_without_alt_sse_answers_one_json_array(demo: ServerHandle) -> None:
    response = _post(demo, GEMINI, CONTENTS)
    assert response.headers["content-type"] == "application/json"
    chunks = response.json()
    assert isinstance(chunks, list)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


LIMITS = [
    ("/v1/chat/completions", {**CHAT, "max_completion_tokens": 5}, "openai-chat", "length"),
    (
        "/v1/responses",
        {**RESPONSES, "max_output_tokens": 5},
        "openai-responses",
        "max_output_tokens",
    ),
    ("/v1/messages", {**MESSAGES, "max_tokens": 5}, "anthropic", "max_tokens"),
    (
        f"{GEMINI}?alt=sse",
        {**CONTENTS, "generationConfig": {"maxOutputTokens": 5}},
        "gemini",
        "MAX_TOKENS",
    ),
]


@pytest.mark.parametrize(("path", "body", "provider", "reason"), LIMITS, ids=[x[2] for x in LIMITS])
def test_the_max_tokens_field_cuts_the_answer_with_the_providers_reason(
    demo: ServerHandle, path: str, body: dict[str, Any], provider: str, reason: str
) -> None:
    result = ssenb.llm.summarize(_events(demo, path, body))
    assert (result.provider, result.finish_reason) == (provider, reason)
    assert mock_answer(PROMPT).startswith(result.text)
    assert 0 < len(result.text) < len(mock_answer(PROMPT))


NO_TOOLS = [
    (
        "/v1/chat/completions",
        {
            **CHAT,
            "tool_choice": "none",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        },
    ),
    (
        "/v1/messages",
        {
            **MESSAGES,
            "tool_choice": {"type": "none"},
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        },
    ),
    (
        f"{GEMINI}?alt=sse",
        {
            **CONTENTS,
            "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
            "tools": [{"functionDeclarations": [{"name": "f"}]}],
        },
    ),
]


@pytest.mark.parametrize(("path", "body"), NO_TOOLS, ids=["chat", "anthropic", "gemini"])
def test_tools_switched_off_get_a_text_answer(
    demo: ServerHandle, path: str, body: dict[str, Any]
) -> None:
    result = ssenb.llm.summarize(_events(demo, path, body))
    assert (result.text, result.tool_calls) == (mock_answer(PROMPT), [])


def test_whole_answers_without_stream(demo: ServerHandle) -> None:
    message = _post(demo, "/v1/messages", {**MESSAGES, "stream": False}).json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": mock_answer(PROMPT)}]
    assert message["stop_reason"] == "end_turn"
    response = _post(demo, "/v1/responses", {**RESPONSES, "stream": False}).json()
    assert response["object"] == "response"
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == mock_answer(PROMPT)


BAD = [
    ("/v1/messages", {"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ("/v1/messages", {**MESSAGES, "messages": []}, "messages"),
    ("/v1/responses", {"stream": True}, "input"),
    ("/v1/responses", {**RESPONSES, "delay": -1}, "delay"),
    (f"{GEMINI}?alt=sse", {"contents": []}, "contents"),
    (f"{GEMINI}?alt=sse&fail_after=-1", CONTENTS, "fail_after"),
]
BAD_IDS = [
    "no-max-tokens",
    "no-messages",
    "no-input",
    "negative-delay",
    "no-contents",
    "negative-fail-after",
]


@pytest.mark.parametrize(("path", "body", "field"), BAD, ids=BAD_IDS)
def test_bad_bodies_get_422_naming_the_field_before_streaming(
    demo: ServerHandle, path: str, body: dict[str, Any], field: str
) -> None:
    response = _post(demo, path, body)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_the_index_page_lists_the_provider_endpoints(demo: ServerHandle) -> None:
    page = httpx.get(f"{demo.url}/", timeout=10).text
    for path in ("/v1/responses", "/v1/messages", ":streamGenerateContent?alt=sse"):
        assert path in page
