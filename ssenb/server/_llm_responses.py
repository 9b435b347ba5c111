"""`POST /v1/responses`: the mock model in the OpenAI Responses streaming format.

As OpenAI documents it: every event named (`event: response.created` ...) with a `type`
and a `sequence_number` in its data; `response.created`, `response.in_progress`, per output
item `response.output_item.added` ... `.done` (a reasoning item with
`reasoning_summary_text.delta`s when `reasoning.summary` is asked for, a message with
`content_part.added`, `output_text.delta`s, `output_text.done`, `content_part.done`, or a
`function_call` with `function_call_arguments.delta`s and `.done`), then
`response.completed` (or `response.incomplete` when `max_output_tokens` cut it) with usage;
no `[DONE]`. A mid-stream failure is an `error` event followed by `response.failed`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from .._models import Event
from ._endpoints import Endpoint, add_endpoint
from ._llm_mock import MOCK_MODEL, Extension, Failed, Plan, Tool, dumps, make_plan, paced, text_of
from ._response import EventStreamResponse

__all__ = ["ResponsesRequest", "install"]

SERVER_ERROR = {
    "code": "server_error",
    "message": "The server had an error while processing your request.",
}


class ResponsesRequest(Extension):
    """The parts of a Responses request the mock reads; other fields are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MOCK_MODEL, min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    max_output_tokens: int | None = Field(None, ge=1)


def _prompt(req: ResponsesRequest) -> str:
    if isinstance(req.input, str):
        return req.input
    users = [item for item in req.input if item.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def _plan(req: ResponsesRequest) -> Plan:
    offered = [t for t in req.tools or () if t.get("type") == "function"]
    tools = [Tool(str(t.get("name", "")), t.get("parameters") or {}) for t in offered]
    think = bool((req.reasoning or {}).get("summary"))
    return make_plan(
        _prompt(req),
        delay=req.delay,
        ttft=req.ttft,
        jitter=req.jitter,
        tools=[] if req.tool_choice == "none" else tools,
        think=think,
        max_tokens=req.max_output_tokens,
        fail_after=req.fail_after,
    )


class _Writer:
    """Numbers events and keeps the output items as they complete."""

    def __init__(self, req: ResponsesRequest, plan: Plan) -> None:
        self.seq = 0
        self.plan = plan
        suffix = uuid.uuid4().hex
        self.ids = {k: f"{k}_{suffix}" for k in ("resp", "rs", "msg", "fc")}
        self.call_id = f"call_{suffix[:24]}"
        self.output: list[dict[str, Any]] = []
        self.base = {
            "id": self.ids["resp"],
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "model": req.model,
            "output": [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": req.reasoning or {},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": req.tool_choice or "auto",
            "tools": req.tools or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "metadata": {},
        }

    def event(self, kind: str, **fields: Any) -> Event:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return Event(event=kind, data=dumps(data))

    def response(self, **changes: Any) -> dict[str, Any]:
        return {**self.base, **changes}

    def final(self, usage: bool = True) -> dict[str, Any]:
        plan = self.plan
        status = "incomplete" if plan.truncated else "completed"
        details = {"reason": "max_output_tokens"} if plan.truncated else None
        counts = {
            "input_tokens": plan.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": plan.output_tokens,
            "output_tokens_details": {
                "reasoning_tokens": sum(k == "reasoning" for k, _ in plan.steps)
            },
            "total_tokens": plan.input_tokens + plan.output_tokens,
        }
        return self.response(
            status=status,
            incomplete_details=details,
            output=self.output,
            usage=counts if usage else None,
        )

    def opening(self, kind: str, index: int) -> list[Event]:
        item: dict[str, Any]
        part: dict[str, Any]
        if kind == "reasoning":
            item = {"id": self.ids["rs"], "type": "reasoning", "summary": []}
            part = {"type": "summary_text", "text": ""}
            return [
                self.event("response.output_item.added", output_index=index, item=item),
                self.event(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part=part,
                ),
            ]
        if kind == "tool":
            item = {
                "id": self.ids["fc"],
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": self.call_id,
                "name": self.plan.tool.name if self.plan.tool else "",
            }
            return [self.event("response.output_item.added", output_index=index, item=item)]
        item = {
            "id": self.ids["msg"],
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        return [
            self.event("response.output_item.added", output_index=index, item=item),
            self.event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def delta(self, kind: str, index: int, piece: str) -> Event:
        if kind == "reasoning":
            return self.event(
                "response.reasoning_summary_text.delta",
                item_id=self.ids["rs"],
                output_index=index,
                summary_index=0,
                delta=piece,
            )
        if kind == "tool":
            return self.event(
                "response.function_call_arguments.delta",
                item_id=self.ids["fc"],
                output_index=index,
                delta=piece,
            )
        return self.event(
            "response.output_text.delta",
            item_id=self.ids["msg"],
            output_index=index,
            content_index=0,
            delta=piece,
            logprobs=[],
        )

    def closing(self, kind: str, index: int) -> list[Event]:
        item: dict[str, Any]
        part: dict[str, Any]
        text = self.plan.pieces(kind)
        if kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            item = {"id": self.ids["rs"], "type": "reasoning", "summary": [part]}
            events = [
                self.event(
                    "response.reasoning_summary_text.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    text=text,
                ),
                self.event(
                    "response.reasoning_summary_part.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part=part,
                ),
            ]
        elif kind == "tool":
            item = {
                "id": self.ids["fc"],
                "type": "function_call",
                "status": "completed",
                "arguments": text,
                "call_id": self.call_id,
                "name": self.plan.tool.name if self.plan.tool else "",
            }
            events = [
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=text,
                )
            ]
        else:
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            item = {
                "id": self.ids["msg"],
                "type": "message",
                "status": "completed",
                "content": [part],
                "role": "assistant",
            }
            events = [
                self.event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
                self.event(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                ),
            ]
        self.output.append(item)
        return [*events, self.event("response.output_item.done", output_index=index, item=item)]


async def _stream(req: ResponsesRequest, plan: Plan) -> AsyncIterator[Event]:
    w = _Writer(req, plan)
    yield w.event("response.created", response=w.response())
    yield w.event("response.in_progress", response=w.response())
    index, open_kind = -1, ""
    try:
        async for kind, piece in paced(plan):
            if kind != open_kind:
                for ev in w.closing(open_kind, index) if open_kind else ():
                    yield ev
                index, open_kind = index + 1, kind
                for ev in w.opening(kind, index):
                    yield ev
            yield w.delta(kind, index, piece)
    except Failed:
        yield w.event("error", **SERVER_ERROR, param=None)
        yield w.event("response.failed", response=w.response(status="failed", error=SERVER_ERROR))
        return
    for ev in w.closing(open_kind, index) if open_kind else ():
        yield ev
    final = w.final()
    yield w.event(f"response.{final['status']}", response=final)


def _whole(req: ResponsesRequest, plan: Plan) -> dict[str, Any]:
    w = _Writer(req, plan)
    for index, kind in enumerate(dict.fromkeys(k for k, _ in plan.steps)):
        w.closing(kind, index)
    return w.final()


def install(app: FastAPI) -> None:
    """Add `POST /v1/responses` to `app` and to the index page."""

    @app.post("/v1/responses", summary="OpenAI Responses-compatible mock (stream: true)")
    async def responses(body: ResponsesRequest) -> Response:
        plan = _plan(body)
        if body.stream:
            return EventStreamResponse(_stream(body, plan), heartbeat=None)
        return JSONResponse(_whole(body, plan))

    add_endpoint(
        app,
        Endpoint(
            "/v1/responses",
            "OpenAI body: model, input, stream, tools, reasoning",
            "response.created ... response.output_text.delta ... response.completed (no [DONE]); "
            "fail_after=N sends error + response.failed; openai client base_url = <server>/v1",
            '{"input": "Hi", "stream": true}',
            "POST",
        ),
    )
