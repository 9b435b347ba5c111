"""`POST /v1/messages`: the mock model in Anthropic's Messages streaming format.

As Anthropic documents it: `message_start` (usage with input_tokens), per content block
`content_block_start`, `content_block_delta` (text_delta, thinking_delta then a
signature_delta, input_json_delta for a tool_use block) and `content_block_stop`, a `ping`
after the first block starts, `message_delta` (stop_reason end_turn, tool_use or max_tokens,
cumulative output_tokens), `message_stop`; no `[DONE]`. A mid-stream failure is one
`event: error` with `{"type": "error", "error": {"type": "overloaded_error", ...}}`. Point
the `anthropic` client's `base_url` at the server root.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from .._models import Event
from ._endpoints import Endpoint, add_endpoint
from ._llm_mock import MOCK_MODEL, Extension, Failed, Plan, Tool, dumps, make_plan, paced, text_of
from ._response import EventStreamResponse

__all__ = ["MessagesRequest", "install"]

OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}


class MessagesRequest(Extension):
    """The parts of a Messages request the mock reads; other fields are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MOCK_MODEL, min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


def _plan(req: MessagesRequest) -> Plan:
    prompt = next(
        (text_of(m.get("content")) for m in reversed(req.messages) if m.get("role") == "user"), ""
    )
    offered = req.tools if (req.tool_choice or {}).get("type") != "none" else None
    tools = [Tool(str(t.get("name", "")), t.get("input_schema") or {}) for t in offered or ()]
    think = (req.thinking or {}).get("type") in ("enabled", "adaptive")
    return make_plan(
        prompt,
        delay=req.delay,
        ttft=req.ttft,
        jitter=req.jitter,
        tools=tools,
        think=think,
        max_tokens=req.max_tokens,
        fail_after=req.fail_after,
    )


def _event(kind: str, **fields: Any) -> Event:
    return Event(event=kind, data=dumps({"type": kind, **fields}))


def _stop_reason(plan: Plan) -> str:
    return "max_tokens" if plan.truncated else "tool_use" if plan.tool else "end_turn"


def _blocks(plan: Plan, tool_id: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.pieces("reasoning"):
        blocks.append(
            {"type": "thinking", "thinking": plan.pieces("reasoning"), "signature": "ssenb-mock"}
        )
    if plan.tool:
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id,
                "name": plan.tool.name,
                "input": _input(plan.pieces("tool")),
            }
        )
    elif plan.pieces("text") or not blocks:
        blocks.append({"type": "text", "text": plan.pieces("text")})
    return blocks


def _input(text: str) -> Any:
    try:
        return orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}  # cut short by max_tokens: not a whole JSON object


def _message(req: MessagesRequest, plan: Plan | None, msg_id: str, tool_id: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": _blocks(plan, tool_id) if plan is not None else [],
        "model": req.model,
        "stop_reason": _stop_reason(plan) if plan is not None else None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }


async def _stream(req: MessagesRequest, plan: Plan) -> AsyncIterator[Event]:
    msg_id, tool_id = f"msg_{uuid.uuid4().hex[:24]}", f"toolu_{uuid.uuid4().hex[:24]}"
    start = _message(req, None, msg_id, tool_id)
    start["usage"] = {"input_tokens": plan.input_tokens, "output_tokens": 1}
    yield _event("message_start", message=start)
    index, open_kind, sent = -1, "", 0
    starts = {
        "reasoning": {"type": "thinking", "thinking": "", "signature": ""},
        "text": {"type": "text", "text": ""},
        "tool": {
            "type": "tool_use",
            "id": tool_id,
            "name": plan.tool.name if plan.tool else "",
            "input": {},
        },
    }
    deltas = {
        "reasoning": ("thinking_delta", "thinking"),
        "text": ("text_delta", "text"),
        "tool": ("input_json_delta", "partial_json"),
    }
    try:
        async for kind, piece in paced(plan):
            if kind != open_kind:
                if open_kind:
                    for ev in _close(index, open_kind):
                        yield ev
                index, open_kind = index + 1, kind
                yield _event("content_block_start", index=index, content_block=starts[kind])
                if index == 0:
                    yield _event("ping")
            step, key = deltas[kind]
            yield _event("content_block_delta", index=index, delta={"type": step, key: piece})
            sent += 1
    except Failed:
        yield Event(event="error", data=dumps({"type": "error", "error": OVERLOADED}))
        return
    if open_kind:
        for ev in _close(index, open_kind):
            yield ev
    delta = {"stop_reason": _stop_reason(plan), "stop_sequence": None}
    yield _event("message_delta", delta=delta, usage={"output_tokens": sent})
    yield _event("message_stop")


def _close(index: int, kind: str) -> list[Event]:
    out = []
    if kind == "reasoning":  # a thinking block ends with its signature
        delta = {"type": "signature_delta", "signature": "ssenb-mock"}
        out.append(_event("content_block_delta", index=index, delta=delta))
    return [*out, _event("content_block_stop", index=index)]


def install(app: FastAPI) -> None:
    """Add `POST /v1/messages` to `app` and to the index page."""

    @app.post("/v1/messages", summary="Anthropic Messages-compatible mock (stream: true)")
    async def messages(body: MessagesRequest) -> Response:
        plan = _plan(body)
        if body.stream:
            return EventStreamResponse(_stream(body, plan), heartbeat=None)
        msg_id, tool_id = f"msg_{uuid.uuid4().hex[:24]}", f"toolu_{uuid.uuid4().hex[:24]}"
        message = _message(body, plan, msg_id, tool_id)
        message["usage"] = {"input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens}
        return JSONResponse(message)

    add_endpoint(
        app,
        Endpoint(
            "/v1/messages",
            "Anthropic body: model, max_tokens, messages, stream, tools, thinking",
            "message_start, content_block_* (text, thinking, tool_use), message_delta, "
            "message_stop; fail_after=N sends an overloaded_error; anthropic client base_url = "
            "<server>",
            '{"model": "m", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}], '
            '"stream": true}',
            "POST",
        ),
    )
