"""`demo_app()`: a FastAPI app with every demo producer and the live index page.

Each producer family lives in its own module with an `install(app)` function; adding a
family means adding it to `_FAMILIES`, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from . import (
    _basic,
    _hub_demo,
    _jobs,
    _llm,
    _llm_anthropic,
    _llm_gemini,
    _llm_relay,
    _llm_responses,
    _merge,
    _page,
)

__all__ = ["demo_app"]

_FAMILIES: list[Callable[[FastAPI], None]] = [
    _basic.install,
    _llm.install,  # /chat and POST /v1/chat/completions
    _llm_responses.install,  # POST /v1/responses
    _llm_anthropic.install,  # POST /v1/messages
    _llm_gemini.install,  # POST /v1beta/models/{model}:streamGenerateContent
    _jobs.install,
    _merge.install,
    _hub_demo.install,
    _page.install,
]


def demo_app(
    *,
    llm_base_url: str | None = None,
    llm_api_key: str | None = None,
    llm_model: str | None = None,
    llm_dialect: str | None = None,
) -> FastAPI:
    """A new app serving the demo producers (see DESIGN.md's table) and `/`.

    `/chat` streams a mock LLM answer unless an upstream is configured: with `llm_base_url`
    and `llm_api_key` here, or the environment (`SSENB_LLM_BASE_URL` or `OPENAI_BASE_URL`,
    with `SSENB_LLM_API_KEY` or `OPENAI_API_KEY`); both are needed. The upstream speaks
    `llm_dialect` ("openai-chat", "openai-responses", "anthropic" or "gemini"; default from
    `SSENB_LLM_DIALECT`, else guessed from the base URL's host, else openai-chat).
    """
    app = FastAPI(title="ssenb demo producers", docs_url="/docs", redoc_url=None)
    for install in _FAMILIES:
        install(app)
    if llm_base_url or llm_api_key or llm_model or llm_dialect:
        _llm_relay.configure_llm(
            app, base_url=llm_base_url, api_key=llm_api_key, model=llm_model, dialect=llm_dialect
        )
    return app
