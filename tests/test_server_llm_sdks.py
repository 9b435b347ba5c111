"""The four provider-shaped producers, read by each provider's official SDK.

A real uvicorn server (`ssenb.serve`) on loopback; the SDKs are pointed at it with their
documented `base_url` options. For every SDK way of streaming (raw events, and the
assembling helpers) the SDK's answer (text, reasoning, the tool call's name and arguments,
finish reason, token usage) must equal `ssenb.llm.summarize` of the same request's stream
collected by ssenb. A mid-stream failure (`fail_after`) reaches each SDK as its own error
and `summarize` as the provider's error object, with the text so far kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

import ssenb
from ssenb.server import ServerHandle

PROMPT = "Why <b>stream</b> tokens?"
SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["location", "days"],
}
FAST = {"delay": 0}
Answer = dict[str, Any]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-llm-sdks") as handle:
        yield handle


def _answer(text: str, reasoning: str, tool: Any, finish: Any, usage: tuple[Any, Any]) -> Answer:
    name, args = tool if tool else (None, None)
    parsed = json.loads(args) if isinstance(args, str) else args
    return {
        "text": text,
        "reasoning": reasoning,
        "tool": (name, parsed),
        "finish": finish,
        "usage": usage,
    }


def _ssenb(server: ServerHandle, path: str, body: dict[str, Any]) -> Answer:
    """What ssenb makes of the same request: collected, then summarized."""
    df = ssenb.collect(f"{server.url}{path}", method="POST", json=body, timeout=30)
    r = ssenb.llm.summarize(df)
    tool = (r.tool_calls[0]["name"], r.tool_calls[0]["arguments"]) if r.tool_calls else None
    usage = (r.usage.get("input_tokens"), r.usage.get("output_tokens"))
    return _answer(r.text, r.reasoning, tool, r.finish_reason, usage)


# -- OpenAI Chat Completions -----------------------------------------------------------------

CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]


def _chat_body(tools: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **FAST,
    }
    return body | ({"tools": CHAT_TOOLS} if tools else {})


def _chat_create(client: openai.OpenAI, body: dict[str, Any]) -> Answer:
    text, args, name, finish, usage = "", "", None, None, (None, None)
    extra = {k: body[k] for k in FAST}
    rest = {k: v for k, v in body.items() if k not in FAST}
    for chunk in client.chat.completions.create(**rest, extra_body=extra):
        if chunk.usage:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or ():
                name = name or (call.function.name if call.function else None)
                args += (call.function.arguments if call.function else None) or ""
            finish = choice.finish_reason or finish
    return _answer(text, "", (name, args) if name else None, finish, usage)


def _chat_stream_helper(client: openai.OpenAI, body: dict[str, Any]) -> Answer:
    rest = {k: v for k, v in body.items() if k not in (*FAST, "stream")}
    with client.chat.completions.stream(**rest, extra_body=FAST) as stream:
        done = stream.get_final_completion()
    choice = done.choices[0]
    calls = choice.message.tool_calls or []
    tool = (calls[0].function.name, calls[0].function.arguments) if calls else None  # type: ignore[union-attr]
    usage = (done.usage.prompt_tokens, done.usage.completion_tokens) if done.usage else (None, None)
    return _answer(choice.message.content or "", "", tool, choice.finish_reason, usage)


# -- OpenAI Responses -------------------------------------------------------------------------

RESP_TOOLS = [{"type": "function", "name": "get_weather", "parameters": SCHEMA}]


def _responses_body(tools: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "input": PROMPT, "stream": True, **FAST}
    return body | ({"tools": RESP_TOOLS} if tools else {"reasoning": {"summary": "auto"}})


def _responses_of(final: Any) -> Answer:
    reasoning = "".join(s.text for o in final.output if o.type == "reasoning" for s in o.summary)
    calls = [o for o in final.output if o.type == "function_call"]
    tool = (calls[0].name, calls[0].arguments) if calls else None
    usage = (final.usage.input_tokens, final.usage.output_tokens)
    return _answer(final.output_text, reasoning, tool, final.status, usage)


def _responses_create(client: openai.OpenAI, body: dict[str, Any]) -> Answer:
    rest = {k: v for k, v in body.items() if k not in FAST}
    final = None
    for event in client.responses.create(**rest, extra_body=FAST):
        if event.type == "response.completed":
            final = event.response
    return _responses_of(final)


def _responses_stream_helper(client: openai.OpenAI, body: dict[str, Any]) -> Answer:
    rest = {k: v for k, v in body.items() if k not in (*FAST, "stream")}
    with client.responses.stream(**rest, extra_body=FAST) as stream:
        for _ in stream:
            pass
        return _responses_of(stream.get_final_response())


# -- Anthropic Messages -----------------------------------------------------------------------

ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": SCHEMA}]


def _messages_body(tools: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": PROMPT}],
        **FAST,
    }
    extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    return body | ({"tools": ANTHROPIC_TOOLS} if tools else extra)


def _message_of(message: Any) -> Answer:
    text = "".join(b.text for b in message.content if b.type == "text")
    reasoning = "".join(b.thinking for b in message.content if b.type == "thinking")
    calls = [b for b in message.content if b.type == "tool_use"]
    tool = (calls[0].name, calls[0].input) if calls else None
    usage = (message.usage.input_tokens, message.usage.output_tokens)
    return _answer(text, reasoning, tool, message.stop_reason, usage)


def _messages_create(client: anthropic.Anthropic, body: dict[str, Any]) -> Answer:
    rest = {k: v for k, v in body.items() if k not in FAST}
    text, reasoning, name, args, finish, usage_in, usage_out = "", "", None, "", None, None, None
    for event in client.messages.create(**rest, extra_body=FAST):
        if event.type == "message_start":
            usage_in = event.message.usage.input_tokens
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            name = event.content_block.name
        elif event.type == "content_block_delta":
            d = event.delta
            text += d.text if d.type == "text_delta" else ""
            reasoning += d.thinking if d.type == "thinking_delta" else ""
            args += d.partial_json if d.type == "input_json_delta" else ""
        elif event.type == "message_delta":
            finish, usage_out = event.delta.stop_reason, event.usage.output_tokens
    return _answer(text, reasoning, (name, args) if name else None, finish, (usage_in, usage_out))


def _messages_stream_helper(client: anthropic.Anthropic, body: dict[str, Any]) -> Answer:
    rest = {k: v for k, v in body.items() if k not in (*FAST, "stream")}
    with client.messages.stream(**rest, extra_body=FAST) as stream:
        return _message_of(stream.get_final_message())


# -- Google Gemini ----------------------------------------------------------------------------

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def _gemini_body(tools: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}], **FAST}
    decl = {"name": "get_weather", "parametersJsonSchema": SCHEMA}
    think = {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    return body | ({"tools": [{"functionDeclarations": [decl]}]} if tools else think)


def _gemini_stream(client: genai.Client, body: dict[str, Any]) -> Answer:
    tools = None
    if "tools" in body:
        fn = gt.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA)
        tools = [gt.Tool(function_declarations=[fn])]
    thinking = gt.ThinkingConfig(include_thoughts=True) if "tools" not in body else None
    config = gt.GenerateContentConfig(
        tools=tools, thinking_config=thinking, http_options=gt.HttpOptions(extra_body=FAST)
    )
    text, reasoning, tool, finish, usage = "", "", None, None, (None, None)
    for chunk in client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=PROMPT, config=config
    ):
        cand = chunk.candidates[0] if chunk.candidates else None
        for part in (cand.content.parts if cand and cand.content else None) or ():
            if part.text and part.thought:
                reasoning += part.text
            elif part.text:
                text += part.text
            if part.function_call:
                tool = (part.function_call.name, part.function_call.args)
        if cand and cand.finish_reason:
            finish = cand.finish_reason.value
        if chunk.usage_metadata:
            meta = chunk.usage_metadata
            usage = (meta.prompt_token_count, meta.candidates_token_count)
    return _answer(text, reasoning, tool, finish, usage)


# -- the table --------------------------------------------------------------------------------

Client = Callable[[str], Any]
CLIENTS: dict[str, Client] = {
    "openai": lambda url: openai.OpenAI(base_url=f"{url}/v1", api_key="sk-local", max_retries=0),
    "anthropic": lambda url: anthropic.Anthropic(base_url=url, api_key="sk-local", max_retries=0),
    "gemini": lambda url: genai.Client(api_key="local", http_options=gt.HttpOptions(base_url=url)),
}
CASES = [
    ("openai", "/v1/chat/completions", _chat_body, _chat_create),
    ("openai", "/v1/chat/completions", _chat_body, _chat_stream_helper),
    ("openai", "/v1/responses", _responses_body, _responses_create),
    ("openai", "/v1/responses", _responses_body, _responses_stream_helper),
    ("anthropic", "/v1/messages", _messages_body, _messages_create),
    ("anthropic", "/v1/messages", _messages_body, _messages_stream_helper),
    ("gemini", GEMINI_PATH, _gemini_body, _gemini_stream),
]
IDS = [
    "chat-create",
    "chat-stream-helper",
    "responses-create",
    "responses-stream-helper",
    "messages-create",
    "messages-stream-helper",
    "gemini-generate-content-stream",
]


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-call"])
@pytest.mark.parametrize(("sdk", "path", "body", "read"), CASES, ids=IDS)
def test_each_sdk_assembles_what_summarize_reads(
    server: ServerHandle, sdk: str, path: str, body: Any, read: Any, tools: bool
) -> None:
    request = body(tools)
    theirs = read(CLIENTS[sdk](server.url), request)
    ours = _ssenb(server, path, request)
    assert theirs == ours
    if tools:  # the mock calls the first tool with arguments from its schema
        assert ours["tool"] == ("get_weather", {"location": PROMPT, "days": len(PROMPT)})
        assert ours["text"] == ""
    else:
        assert PROMPT in ours["text"]
        assert ours["tool"] == (None, None)
    assert None not in ours["usage"]
    assert ours["finish"] in {"stop", "tool_calls", "completed", "end_turn", "tool_use", "STOP"}


# -- failing mid-stream, on request -----------------------------------------------------------

FAIL = {"delay": 0, "fail_after": 3}


def _until_error(pieces: Iterable[str], expected: type[Exception]) -> tuple[str, Any]:
    """The text read before the SDK raised, and the exception (which must be `expected`)."""
    text = ""
    try:
        for piece in pieces:
            text += piece
    except expected as exc:
        return text, exc
    raise AssertionError(f"the stream ended without {expected.__name__}")


def _chat_fails(url: str) -> tuple[str, Any]:
    client = CLIENTS["openai"](url)
    messages = [{"role": "user", "content": PROMPT}]
    chunks = client.chat.completions.create(
        model="m", messages=messages, stream=True, extra_body=FAIL
    )
    pieces = ("".join(c.delta.content or "" for c in chunk.choices) for chunk in chunks)
    text, exc = _until_error(pieces, openai.APIError)
    return text, exc.body


def _responses_fails(url: str) -> tuple[str, Any]:
    text, error, last = "", None, None
    client = CLIENTS["openai"](url)
    for event in client.responses.create(model="m", input=PROMPT, stream=True, extra_body=FAIL):
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "error":
            error = {"code": event.code, "message": event.message}
        last = event.type
    assert last == "response.failed"
    return text, error


def _messages_fails(url: str) -> tuple[str, Any]:
    client = CLIENTS["anthropic"](url)
    messages = [{"role": "user", "content": PROMPT}]
    with client.messages.stream(
        model="m", max_tokens=99, messages=messages, extra_body=FAIL
    ) as stream:
        text, exc = _until_error(stream.text_stream, anthropic.APIStatusError)
    return text, exc.body["error"]


def _gemini_fails(url: str) -> tuple[str, Any]:
    client = CLIENTS["gemini"](url)
    config = gt.GenerateContentConfig(http_options=gt.HttpOptions(extra_body=FAIL))
    chunks = client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=PROMPT, config=config
    )
    text, exc = _until_error((chunk.text or "" for chunk in chunks), genai_errors.ServerError)
    return text, exc.details["error"]


@pytest.mark.parametrize(
    ("read", "path", "body", "kind"),
    [
        (_chat_fails, "/v1/chat/completions", _chat_body(False), "server_error"),
        (_responses_fails, "/v1/responses", _responses_body(False), "server_error"),
        (_messages_fails, "/v1/messages", _messages_body(False), "overloaded_error"),
        (_gemini_fails, GEMINI_PATH, _gemini_body(False), "UNAVAILABLE"),
    ],
    ids=["chat", "responses", "messages", "gemini"],
)
def test_a_mid_stream_failure_is_each_providers_error_and_keeps_the_text(
    server: ServerHandle, read: Any, path: str, body: dict[str, Any], kind: str
) -> None:
    theirs_text, theirs_error = read(server.url)
    for extra in ("reasoning", "generationConfig", "thinking"):  # fail among text tokens
        body.pop(extra, None)
    df = ssenb.collect(f"{server.url}{path}", method="POST", json={**body, **FAIL}, timeout=30)
    ours = ssenb.llm.summarize(df)
    assert ours.text == theirs_text != ""
    assert {k: ours.error[k] for k in theirs_error} == theirs_error
    assert kind in json.dumps(ours.error)
    frame = ssenb.llm.frame(df)
    assert list(frame["kind"]).count("text") == 3
    assert "error" in list(frame["kind"])
