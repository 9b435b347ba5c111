"""LLM token streaming: `/chat` (mock or a relayed real upstream) and an OpenAI-compatible
`POST /v1/chat/completions`.

The mock answer (`_llm_mock`) echoes the prompt (views must escape it) and looks like model
output: words and punctuation as separate tokens, a longer wait for the first token, slight
deterministic jitter. `/chat` numbers its tokens, so a resumed GET continues after the last
one; a relayed answer (`_llm_relay`: any of the four provider APIs) carries no ids, since a
new upstream request would not repeat it.

The chat-completions mock streams as OpenAI documents: `chat.completion.chunk`s (the first
with the role), `tool_calls` fragments by index when the request offers tools, a chunk with
`finish_reason` (stop, tool_calls, or length when `max_completion_tokens` cut it), a usage
chunk with empty `choices` when `stream_options.include_usage`, then `[DONE]`. A mid-stream
failure (`fail_after`) is a `{"error": {...}}` chunk and no `[DONE]`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .._models import Event
from ._basic import DONE, numbered
from ._endpoints import Endpoint, add_endpoint
from ._llm_mock import (
    MOCK_MODEL,
    Extension,
    Failed,
    Plan,
    Tool,
    _waits,
    dumps,
    make_plan,
    mock_answer,
    mock_tokens,
    paced,
    text_of,
)
from ._llm_relay import DEFAULT_MODEL, LLMConfig, configure_llm, relay, upstream
from ._response import EventStreamResponse

__all__ = [
    "DEFAULT_MODEL",
    "MOCK_MODEL",
    "LLMConfig",
    "_waits",
    "configure_llm",
    "install",
    "mock_answer",
    "mock_tokens",
    "relay",
    "upstream",
]

SERVER_ERROR = {"message": "The server had an error while processing your request.",
                "type": "server_error", "param": None, "code": None}  # fmt: skip


async def _mock_chat(tokens: list[str], first: int, waits: list[float]) -> AsyncIterator[Event]:
    for i in range(first, len(tokens) + 1):
        await asyncio.sleep(waits[i - 1])
        yield Event(data=dumps({"content": tokens[i - 1]}), id=str(i))
    yield DONE


# -- the OpenAI-compatible endpoint ------------------------------------------------------------


class ChatMessage(BaseModel):
    """One chat message; content is text or a list of parts (text parts are read)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(Extension):
    """The parts of an OpenAI chat request the mock reads; other fields are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MOCK_MODEL, min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


def _prompt_of(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return text_of(message.content)
    return ""


def _plan(req: ChatRequest) -> Plan:
    offered = [t.get("function") or {} for t in req.tools or () if t.get("type") == "function"]
    tools = [Tool(str(f.get("name", "")), f.get("parameters") or {}) for f in offered]
    return make_plan(
        _prompt_of(req),
        delay=req.delay,
        ttft=req.ttft,
        jitter=req.jitter,
        tools=[] if req.tool_choice == "none" else tools,
        max_tokens=req.max_completion_tokens or req.max_tokens,
        fail_after=req.fail_after,
    )


def _finish(plan: Plan) -> str:
    return "length" if plan.truncated else "tool_calls" if plan.tool else "stop"


async def _completion_chunks(req: ChatRequest, plan: Plan) -> AsyncIterator[Event]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.model,
        "system_fingerprint": None,
    }
    usage = req.stream_options is not None and req.stream_options.include_usage
    extra = {"usage": None} if usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return Event(data=dumps({**base, "choices": [choice], **extra}))

    call_id = f"call_{uuid.uuid4().hex[:24]}"
    first: dict[str, Any] = {
        "role": "assistant",
        "content": None if plan.tool else "",
        "refusal": None,
    }
    if plan.tool:
        fn = {"name": plan.tool.name, "arguments": ""}
        first["tool_calls"] = [{"index": 0, "id": call_id, "type": "function", "function": fn}]
    yield chunk(first)
    try:
        async for kind, piece in paced(plan):
            if kind == "tool":
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            else:
                yield chunk({"content": piece})
    except Failed:
        yield Event(data=dumps({"error": SERVER_ERROR}))
        return
    yield chunk({}, _finish(plan))
    if usage:
        yield Event(data=dumps({**base, "choices": [], "usage": _usage(plan)}))
    yield DONE


def _usage(plan: Plan) -> dict[str, int]:
    prompt, completion = plan.input_tokens, plan.output_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def _completion(req: ChatRequest, plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.pieces("text") or None,
                               "refusal": None}  # fmt: skip
    if plan.tool:
        fn = {"name": plan.tool.name, "arguments": plan.pieces("tool")}
        call = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": fn}
        message["tool_calls"] = [call]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(plan)}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": _usage(plan),
    }


def install(app: FastAPI) -> None:
    """Add `/chat` and `POST /v1/chat/completions` to `app` and to the index page."""

    @app.get("/chat", summary="LLM tokens {content}, then [DONE]; mock unless configured")
    async def chat(
        request: Request,
        prompt: Annotated[str, Query(min_length=1, max_length=4000)],
        delay: Annotated[float, Query(ge=0, le=10)] = 0.05,
    ) -> Response:
        config = upstream(app)
        if config is not None:
            return EventStreamResponse(relay(config, prompt))
        tokens = mock_tokens(prompt)
        waits = _waits(prompt, len(tokens), delay)
        return numbered(request, len(tokens), lambda first: _mock_chat(tokens, first, waits))

    @app.post("/v1/chat/completions", summary="OpenAI-compatible mock chat completions")
    async def completions(body: ChatRequest) -> Response:
        plan = _plan(body)
        if body.stream:
            return EventStreamResponse(_completion_chunks(body, plan))
        return JSONResponse(_completion(body, plan))

    for endpoint in (
        Endpoint("/chat", "prompt, delay=0.05",
                 "LLM tokens {content} with ids, then [DONE]; relays a real upstream when "
                 "SSENB_LLM_BASE_URL + OPENAI_API_KEY are set (any of the four APIs)",
                 "/chat?prompt=What%20are%20Server-Sent%20Events%3F"),
        Endpoint("/v1/chat/completions", "OpenAI body: model, messages, stream, stream_options",
                 "chat.completion.chunk objects (tool_calls when tools are offered), then [DONE] "
                 "(one chat.completion without stream); fail_after=N sends an error chunk; "
                 "openai client base_url = <server>/v1",
                 '{"messages": [{"role": "user", "content": "Hi"}], "stream": true}', "POST"),
    ):  # fmt: skip
        add_endpoint(app, endpoint)
