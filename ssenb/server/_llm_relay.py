"""`/chat`'s real upstream: any of the four provider APIs, relayed as `{"content"}` tokens.

The seed's endpoint called the blocking OpenAI client inside an async generator, which
froze the whole server for the length of every answer. Here the relay uses
`httpx.AsyncClient`, ssenb's own `EventParser` and the dialect accumulator (`_dialects`,
the one place that knows the stream shapes), so the loop keeps serving and every provider
reads the same way; when the browser or notebook goes away, `EventStreamResponse` cancels
the producer, which closes the upstream request (no zombie generation billing tokens).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from .._dialects import PROVIDERS, Accumulator
from .._models import Event
from .._parser import EventParser
from ._basic import DONE
from ._llm_mock import dumps

__all__ = ["DEFAULT_MODEL", "LLMConfig", "configure_llm", "relay", "request_for", "upstream"]

DEFAULT_MODEL = "gpt-4o-mini"
#: the model asked for when none is configured, per dialect (small, cheap ones)
DEFAULT_MODELS = {
    "openai-chat": DEFAULT_MODEL,
    "openai-responses": DEFAULT_MODEL,
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.5-flash",
}
RELAYED = tuple(p for p in PROVIDERS if p != "ssenb")


@dataclass(frozen=True)
class LLMConfig:
    """Where `/chat` relays to: a base URL (OpenAI's and Anthropic's end in `/v1`, Gemini's
    in `/v1beta`), the key, the model and the dialect (one of RELAYED)."""

    base_url: str
    api_key: str
    model: str = DEFAULT_MODEL
    dialect: str = "openai-chat"


def configure_llm(
    app: FastAPI,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    dialect: str | None = None,
) -> None:
    """Set `app`'s upstream for `/chat`; values left None fall back to the environment."""
    if dialect is not None and dialect not in RELAYED:
        raise ValueError(f"unknown dialect {dialect!r}: use one of {', '.join(RELAYED)}")
    app.state.ssenb_llm = {
        "base_url": base_url,
        "api_key": api_key,
        "model": model,
        "dialect": dialect,
    }


def _dialect_of(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    if "anthropic" in host:
        return "anthropic"
    if host.startswith("generativelanguage."):
        return "gemini"
    return "openai-chat"


def upstream(app: FastAPI) -> LLMConfig | None:
    """The real upstream `/chat` relays to, or None for the mock.

    Read per request, so environment changes apply to a running server: arguments of
    `configure_llm`, else `SSENB_LLM_BASE_URL` or `OPENAI_BASE_URL`, `SSENB_LLM_API_KEY` or
    `OPENAI_API_KEY`, `SSENB_LLM_MODEL` (default: a small model of the dialect's provider),
    `SSENB_LLM_DIALECT` (default: from the base URL's host, else openai-chat). Both a base
    URL and a key are needed: a stray `OPENAI_API_KEY` alone never turns the demo into paid
    calls.
    """
    conf = getattr(app.state, "ssenb_llm", None) or {}
    env = os.environ.get
    base = conf.get("base_url") or env("SSENB_LLM_BASE_URL") or env("OPENAI_BASE_URL")
    key = conf.get("api_key") or env("SSENB_LLM_API_KEY") or env("OPENAI_API_KEY")
    if not base or not key:
        return None
    dialect = conf.get("dialect") or env("SSENB_LLM_DIALECT") or _dialect_of(base)
    if dialect not in RELAYED:
        raise ValueError(f"SSENB_LLM_DIALECT={dialect!r}: use one of {', '.join(RELAYED)}")
    model = conf.get("model") or env("SSENB_LLM_MODEL") or DEFAULT_MODELS[dialect]
    return LLMConfig(base.rstrip("/"), key, model, dialect)


def request_for(config: LLMConfig, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`(url, headers, json body)` of a streamed one-message request in `config`'s dialect."""
    base, key, model = config.base_url, config.api_key, config.model
    accept = {"Accept": "text/event-stream"}
    message = {"role": "user", "content": prompt}
    if config.dialect == "openai-responses":
        body = {"model": model, "input": prompt, "stream": True}
        return f"{base}/responses", {**accept, "Authorization": f"Bearer {key}"}, body
    if config.dialect == "anthropic":
        headers = {**accept, "x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {"model": model, "max_tokens": 1024, "messages": [message], "stream": True}
        return f"{base}/messages", headers, body
    if config.dialect == "gemini":
        url = f"{base}/models/{model}:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        return url, {**accept, "x-goog-api-key": key}, body
    body = {"model": model, "stream": True, "messages": [message]}
    return f"{base}/chat/completions", {**accept, "Authorization": f"Bearer {key}"}, body


def _new_client() -> httpx.AsyncClient:
    # building the client loads TLS certificates from disk: done in a worker thread
    return httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))


def _upstream_error(kind: str, message: str, status: int | None = None) -> Event:
    info = {"error": kind, "status": status, "message": message, "fatal": True}
    return Event(event="error", data=dumps(info))


async def relay(config: LLMConfig, prompt: str) -> AsyncIterator[Event]:
    """Stream a real upstream's answer as `{"content"}` events, then `[DONE]`.

    Upstream failures (status, content type, network, the provider's error event, even
    mid-stream) become one fatal `error` event. Cancelling the iteration closes the upstream
    request at once.
    """
    url, headers, body = request_for(config, prompt)
    client = await asyncio.to_thread(_new_client)
    try:
        async with client, client.stream("POST", url, json=body, headers=headers) as response:
            ctype = response.headers.get("content-type", "")
            if response.status_code != 200 or not ctype.startswith("text/event-stream"):
                text = (await response.aread())[:500].decode(errors="replace")
                yield _upstream_error("UpstreamError", text or ctype, response.status_code)
                return
            parser, acc = EventParser(), Accumulator(config.dialect)
            choices = config.dialect in ("openai-chat", "gemini")  # index = alternative answer
            async for chunk in response.aiter_bytes():
                for event in parser.feed(chunk):
                    for delta in acc.feed(event):
                        if delta.kind == "text" and (delta.index == 0 or not choices):
                            yield Event(data=dumps({"content": delta.text}))
                        elif delta.kind == "error" and acc.error is not None:
                            yield _upstream_error("UpstreamError", delta.text)
                            return
                    if acc.done:
                        yield DONE
                        return
    except httpx.HTTPError as exc:
        yield _upstream_error(type(exc).__name__, str(exc) or repr(exc))
        return
    yield DONE  # the upstream ended cleanly without an end marker of its own
