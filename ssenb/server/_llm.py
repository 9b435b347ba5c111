"""LLM token streaming: `/chat` (mock or a relayed real upstream) and an OpenAI-compatible
`POST /v1/chat/completions`.

The seed's endpoint called the blocking OpenAI client inside an async generator, which
froze the whole server for the length of every answer. Here the relay uses
`httpx.AsyncClient` and ssenb's own `EventParser`, so the loop keeps serving; when the
browser or notebook goes away, `EventStreamResponse` cancels the producer, which closes the
upstream request (no zombie generation billing tokens).

The mock answer echoes the prompt (views must escape it) and looks like model output:
words and punctuation as separate tokens, a longer wait for the first token, slight
deterministic jitter. `/chat` numbers its tokens, so a resumed GET continues after the last
one; a relayed answer carries no ids, since a new upstream request would not repeat it.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import orjson
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .._models import Event
from .._parser import EventParser
from ._basic import DONE, numbered
from ._endpoints import Endpoint, add_endpoint
from ._response import EventStreamResponse

__all__ = ["LLMConfig", "configure_llm", "install", "mock_answer", "mock_tokens", "upstream"]

DEFAULT_MODEL = "gpt-4o-mini"
MOCK_MODEL = "ssenb-mock"
_TOKEN = re.compile(r" ?\w+| ?[^\w\s]|\s+")
_FIRST_TOKEN_WAIT = 4  # the first token takes this many `delay`s (time to first token)


def mock_answer(prompt: str) -> str:
    """The mock model's deterministic answer to `prompt` (it quotes the prompt verbatim)."""
    return (
        f'Sure! You asked: "{prompt}". Here is a short answer: Server-Sent Events send '
        "text over one long HTTP response, so a model can stream each token as soon as it "
        "is ready, and you read the reply while it is still being written."
    )


def mock_tokens(prompt: str) -> list[str]:
    """`mock_answer(prompt)` cut like model tokens: words (with their leading space) and
    punctuation separately; joined, they give the answer back exactly."""
    return _TOKEN.findall(mock_answer(prompt))


def _waits(prompt: str, count: int, delay: float) -> list[float]:
    """Per-token waits: `delay` with +-40% jitter seeded by the prompt (reproducible)."""
    rng = random.Random(zlib.crc32(prompt.encode()))
    waits = [delay * rng.uniform(0.6, 1.4) for _ in range(count)]
    if waits:
        waits[0] *= _FIRST_TOKEN_WAIT
    return waits


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


@dataclass(frozen=True)
class LLMConfig:
    """Where `/chat` relays to: an OpenAI-compatible base URL (ending in `/v1`), key, model."""

    base_url: str
    api_key: str
    model: str = DEFAULT_MODEL


def configure_llm(
    app: FastAPI,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> None:
    """Set `app`'s upstream for `/chat`; values left None fall back to the environment."""
    app.state.ssenb_llm = {"base_url": base_url, "api_key": api_key, "model": model}


def upstream(app: FastAPI) -> LLMConfig | None:
    """The real upstream `/chat` relays to, or None for the mock.

    Read per request, so environment changes apply to a running server: arguments of
    `configure_llm`, else `SSENB_LLM_BASE_URL` or `OPENAI_BASE_URL`, `SSENB_LLM_API_KEY` or
    `OPENAI_API_KEY`, `SSENB_LLM_MODEL`. Both a base URL and a key are needed: a stray
    `OPENAI_API_KEY` alone never turns the demo into paid calls (for OpenAI itself, set
    `SSENB_LLM_BASE_URL=https://api.openai.com/v1`).
    """
    conf = getattr(app.state, "ssenb_llm", None) or {}
    env = os.environ.get
    base = conf.get("base_url") or env("SSENB_LLM_BASE_URL") or env("OPENAI_BASE_URL")
    key = conf.get("api_key") or env("SSENB_LLM_API_KEY") or env("OPENAI_API_KEY")
    if not base or not key:
        return None
    model = conf.get("model") or env("SSENB_LLM_MODEL") or DEFAULT_MODEL
    return LLMConfig(base.rstrip("/"), key, model)


async def _mock_chat(tokens: list[str], first: int, waits: list[float]) -> AsyncIterator[Event]:
    for i in range(first, len(tokens) + 1):
        await asyncio.sleep(waits[i - 1])
        yield Event(data=_dumps({"content": tokens[i - 1]}), id=str(i))
    yield DONE


def _new_client() -> httpx.AsyncClient:
    # building the client loads TLS certificates from disk: done in a worker thread
    return httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))


def _upstream_error(kind: str, message: str, status: int | None = None) -> Event:
    info = {"error": kind, "status": status, "message": message, "fatal": True}
    return Event(event="error", data=_dumps(info))


async def relay(config: LLMConfig, prompt: str) -> AsyncIterator[Event]:
    """Stream a real upstream's answer as `{"content"}` events, then `[DONE]`.

    Upstream failures (status, content type, network, an `error` payload) become one fatal
    `error` event. Cancelling the iteration closes the upstream request at once.
    """
    body = {
        "model": config.model,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "text/event-stream"}
    client = await asyncio.to_thread(_new_client)
    url = f"{config.base_url}/chat/completions"
    try:
        async with client, client.stream("POST", url, json=body, headers=headers) as response:
            ctype = response.headers.get("content-type", "")
            if response.status_code != 200 or not ctype.startswith("text/event-stream"):
                text = (await response.aread())[:500].decode(errors="replace")
                yield _upstream_error("UpstreamError", text or ctype, response.status_code)
                return
            parser = EventParser()
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    if event.data == "[DONE]":
                        yield DONE
                        return
                    try:
                        obj = orjson.loads(event.data)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(obj, dict) or event.event == "error" or "error" in obj:
                        yield _upstream_error("UpstreamError", event.data)
                        return
                    for choice in obj.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            yield Event(data=_dumps({"content": content}))
    except httpx.HTTPError as exc:
        yield _upstream_error(type(exc).__name__, str(exc) or repr(exc))
        return
    yield DONE  # the upstream ended cleanly without its own [DONE]


# -- the OpenAI-compatible endpoint ------------------------------------------------------------


class ChatMessage(BaseModel):
    """One chat message; content is text or a list of parts (text parts are read)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The parts of an OpenAI chat request the mock reads; other fields are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MOCK_MODEL, min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    delay: float = Field(0.05, ge=0, le=10, description="ssenb extension: seconds per token")


def _prompt_of(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
            return content or ""
    return ""


def _usage(prompt: str, completion: int) -> dict[str, int]:
    prompt_tokens = len(_TOKEN.findall(prompt))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


async def _completion_chunks(req: ChatRequest, prompt: str) -> AsyncIterator[Event]:
    tokens = mock_tokens(prompt)
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
        return Event(data=_dumps({**base, "choices": [choice], **extra}))

    yield chunk({"role": "assistant", "content": ""})
    for token, wait in zip(tokens, _waits(prompt, len(tokens), req.delay), strict=True):
        await asyncio.sleep(wait)
        yield chunk({"content": token})
    yield chunk({}, "stop")
    if usage:
        yield Event(data=_dumps({**base, "choices": [], "usage": _usage(prompt, len(tokens))}))
    yield DONE


def _completion(req: ChatRequest, prompt: str) -> dict[str, Any]:
    tokens = mock_tokens(prompt)
    message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(prompt, len(tokens)),
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
        prompt = _prompt_of(body)
        if body.stream:
            return EventStreamResponse(_completion_chunks(body, prompt))
        return JSONResponse(_completion(body, prompt))

    for endpoint in (
        Endpoint("/chat", "prompt, delay=0.05",
                 "LLM tokens {content} with ids, then [DONE]; relays a real upstream when "
                 "SSENB_LLM_BASE_URL + OPENAI_API_KEY are set",
                 "/chat?prompt=What%20are%20Server-Sent%20Events%3F"),
        Endpoint("/v1/chat/completions", "OpenAI body: model, messages, stream, stream_options",
                 "chat.completion.chunk objects, then [DONE] (one chat.completion without "
                 "stream); point the openai client's base_url at <server>/v1",
                 '{"messages": [{"role": "user", "content": "Hi"}], "stream": true}', "POST"),
    ):  # fmt: skip
        add_endpoint(app, endpoint)
