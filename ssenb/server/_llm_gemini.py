"""`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`: the mock in Gemini's format.

As the Gemini API sends it: unnamed events, CRLF line ends, each data one
`GenerateContentResponse` chunk (`candidates[0].content.parts` with text, `thought: true`
parts when `thinkingConfig.includeThoughts` is set, a whole `functionCall` part for a tool
call), `usageMetadata` in every chunk, `finishReason` (STOP, or MAX_TOKENS when
`maxOutputTokens` cut it) and the output token count in the last one; no `[DONE]`. A
mid-stream failure is one `{"error": {"code": 503, ..., "status": "UNAVAILABLE"}}` chunk.
Without `alt=sse` the chunks come as one JSON array, as the API does. `delay` and
`fail_after` are accepted in the body or the query. Point `google-genai`'s
`http_options={"base_url": <server>}` here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Query, Response
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from ._endpoints import Endpoint, add_endpoint
from ._llm_mock import Extension, Failed, Plan, Tool, make_plan, paced, text_of
from ._response import EventStreamResponse

__all__ = ["GenerateRequest", "install"]

UNAVAILABLE = {
    "code": 503,
    "message": "The model is overloaded. Please try again later.",
    "status": "UNAVAILABLE",
}


class GenerateRequest(Extension):
    """The parts of a generateContent request the mock reads; other fields are accepted."""

    model_config = ConfigDict(extra="allow")
    contents: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    toolConfig: dict[str, Any] | None = None  # (or tool_config: extra fields are kept)
    generationConfig: dict[str, Any] | None = None


def _get(obj: Any, camel: str) -> Any:
    """A field by its JSON name or its proto name (the API accepts both; so does the mock)."""
    if not isinstance(obj, dict):
        return None
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return obj.get(camel, obj.get(snake))


def _plan(req: GenerateRequest, delay: float | None, fail_after: int | None) -> Plan:
    body = req.model_dump()
    users = [c for c in req.contents if c.get("role", "user") == "user"]
    prompt = text_of(users[-1].get("parts")) if users else ""
    mode = _get(_get(_get(body, "toolConfig"), "functionCallingConfig"), "mode")
    declared = [d for t in req.tools or () for d in _get(t, "functionDeclarations") or ()]
    schemas = [_get(d, "parameters") or _get(d, "parametersJsonSchema") or {} for d in declared]
    tools = [
        Tool(str(d.get("name", "")), schema) for d, schema in zip(declared, schemas, strict=True)
    ]
    config = _get(body, "generationConfig") or {}
    think = bool(_get(_get(config, "thinkingConfig"), "includeThoughts"))
    return make_plan(
        prompt,
        delay=req.delay if delay is None else delay,
        ttft=req.ttft,
        jitter=req.jitter,
        tools=[] if mode == "NONE" else tools,
        think=think,
        max_tokens=_get(config, "maxOutputTokens"),
        fail_after=req.fail_after if fail_after is None else fail_after,
    )


def _chunk(
    model: str,
    rid: str,
    parts: list[dict[str, Any]],
    plan: Plan,
    *,
    finish: str | None = None,
    sent: int = 0,
) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        cand["finishReason"] = finish
    cand["index"] = 0
    usage: dict[str, int] = {"promptTokenCount": plan.input_tokens}
    if finish:
        thoughts = sum(k == "reasoning" for k, _ in plan.steps)
        usage["candidatesTokenCount"] = sent - thoughts
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = plan.input_tokens + (sent if finish else 0)
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": rid}


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"


async def _chunks(model: str, plan: Plan) -> AsyncIterator[dict[str, Any]]:
    rid = uuid.uuid4().hex[:23]
    sent = 0
    try:
        async for kind, piece in paced(plan):
            sent += 1
            if kind == "tool":
                continue  # the Gemini API sends a function call whole, in the last chunk
            part: dict[str, Any] = {"text": piece}
            if kind == "reasoning":
                part["thought"] = True
            yield _chunk(model, rid, [part], plan)
    except Failed:
        yield {"error": UNAVAILABLE}
        return
    finish = "MAX_TOKENS" if plan.truncated else "STOP"
    last: list[dict[str, Any]] = [{"text": ""}]
    if plan.tool and not plan.truncated:
        last = [{"functionCall": {"name": plan.tool.name, "args": orjson.loads(plan.arguments)}}]
    yield _chunk(model, rid, last, plan, finish=finish, sent=sent)


async def _stream(model: str, plan: Plan) -> AsyncIterator[bytes]:
    async for chunk in _chunks(model, plan):
        yield _sse(chunk)


def install(app: FastAPI) -> None:
    """Add Gemini's streaming route to `app` and to the index page."""

    # the API serves both versions; google-genai's default is the first, the docs show v1beta
    @app.post("/v1/models/{model}:streamGenerateContent", include_in_schema=False)
    @app.post(
        "/v1beta/models/{model}:streamGenerateContent",
        summary="Gemini-compatible mock streamGenerateContent (alt=sse)",
    )
    async def generate(
        model: str,
        body: GenerateRequest,
        alt: str = "",
        delay: Annotated[float | None, Query(ge=0, le=10)] = None,
        fail_after: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    ) -> Response:
        plan = _plan(body, delay, fail_after)
        if alt == "sse":
            return EventStreamResponse(_stream(model, plan), heartbeat=None)
        return JSONResponse([chunk async for chunk in _chunks(model, plan)])

    add_endpoint(
        app,
        Endpoint(
            "/v1beta/models/{model}:streamGenerateContent?alt=sse",
            "Gemini body: contents, tools, generationConfig; delay, fail_after",
            "GenerateContentResponse chunks (CRLF, no [DONE]); fail_after=N sends a 503 "
            "UNAVAILABLE error chunk; google-genai http_options base_url = <server>",
            '{"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}',
            "POST",
        ),
    )
