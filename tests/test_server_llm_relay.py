"""`demo_app(llm_base_url=..., llm_dialect=...)`: `/chat` relays any of the four provider APIs.

Upstreams are real servers on loopback: a second ssenb demo server (its provider-shaped mock
producers), and a small app that serves the byte-exact provider recordings of
tests/fixtures/llm, so the relay meets each provider's exact wire format, including an
error mid-stream. The relay's request (path, auth header, body) is checked as the upstream
received it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle
from ssenb.server._llm_mock import mock_answer
from ssenb.server._llm_relay import DEFAULT_MODELS, _dialect_of, upstream

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
ENV = (
    "SSENB_LLM_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "SSENB_LLM_API_KEY",
    "SSENB_LLM_DIALECT",
    "SSENB_LLM_MODEL",
)
KEY = "sk-relay-test"


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:  # a developer's real key must not turn these tests into API calls
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def mock_upstream() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-relay-upstream") as handle:
        yield handle


class Recordings:
    """Serves one recording per request path; remembers each request it got."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.seen: list[tuple[str, dict[str, str], Any]] = []

    async def serve(self, request: Request) -> Response:
        self.seen.append((request.url.path, dict(request.headers), await request.json()))
        body = (FIXTURES / self.files[request.url.path]).read_bytes()
        return Response(body, media_type="text/event-stream")


@pytest.fixture(scope="module")
def recordings() -> Iterator[tuple[str, Recordings]]:
    rec = Recordings()
    app = Starlette(routes=[Route("/{path:path}", rec.serve, methods=["POST"])])
    with ssenb.serve(app, name="test-relay-recordings") as handle:
        yield handle.url, rec


def _chat(base: str, dialect: str, prompt: str = "relay me", model: str = "m") -> list[Event]:
    app = ssenb.demo_app(llm_base_url=base, llm_api_key=KEY, llm_model=model, llm_dialect=dialect)
    with ssenb.serve(app, name="test-relay") as relay:
        response = httpx.get(f"{relay.url}/chat", params={"prompt": prompt}, timeout=20)
    assert response.status_code == 200
    return EventParser().feed(response.content)


def _contents(events: list[Event]) -> str:
    return "".join(
        e.json()["content"] for e in events if e.event == "message" and e.data != "[DONE]"
    )


MOCKS = [
    ("openai-chat", "/v1"),
    ("openai-responses", "/v1"),
    ("anthropic", "/v1"),
    ("gemini", "/v1beta"),
]


@pytest.mark.parametrize(("dialect", "root"), MOCKS, ids=[d for d, _ in MOCKS])
def test_chat_relays_each_dialects_answer(
    mock_upstream: ServerHandle, dialect: str, root: str
) -> None:
    events = _chat(f"{mock_upstream.url}{root}", dialect, "relay me")
    assert _contents(events) == mock_answer("relay me")
    assert events[-1].data == "[DONE]"
    assert all(e.id == "" for e in events)  # an upstream answer cannot be resumed


BEARER = ("authorization", f"Bearer {KEY}")
GEMINI_PATH = "/v1beta/models/m:streamGenerateContent"
RECORDED = [  # dialect, path, recording, what /chat relays, the auth header sent
    ("openai-chat", "/v1/chat/completions", "openai_chat.txt", "Server-Sent Events stream text.",
     BEARER),
    ("openai-chat", "/v1/chat/completions", "openai_chat_choices.txt", "Yes, indeed", BEARER),
    ("openai-responses", "/v1/responses", "openai_responses.txt", "Hi! How can I help?", BEARER),
    ("anthropic", "/v1/messages", "anthropic.txt", "Hello!", ("x-api-key", KEY)),
    ("gemini", GEMINI_PATH, "gemini.txt", "Server-Sent Events let a server push text to the "
     "browser over HTTP.", ("x-goog-api-key", KEY)),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "path", "file", "text", "auth"), RECORDED,
                         ids=[r[2][:-4] for r in RECORDED])  # fmt: skip
def test_the_relay_speaks_each_providers_request_and_reads_its_stream(
    recordings: tuple[str, Recordings], dialect: str, path: str, file: str, text: str,
    auth: tuple[str, str],
) -> None:  # fmt: skip
    url, rec = recordings
    rec.files[path] = file
    root = "/v1beta" if dialect == "gemini" else "/v1"
    events = _chat(f"{url}{root}", dialect, "What is SSE?")
    assert _contents(events) == text  # reasoning stays out of /chat's tokens
    assert events[-1].data == "[DONE]"
    got_path, headers, body = rec.seen[-1]
    assert got_path == path
    assert headers[auth[0]] == auth[1]
    assert "What is SSE?" in str(body)
    assert headers["accept"] == "text/event-stream"


ERRORS = [
    ("anthropic", "/v1/messages", "anthropic_overloaded.txt", "Hel", "overloaded_error"),
    (
        "gemini",
        "/v1beta/models/m:streamGenerateContent",
        "gemini_error.txt",
        "Server-Sent",
        "UNAVAILABLE",
    ),
    ("openai-responses", "/v1/responses", "openai_responses_error.txt", "Par", "server_error"),
]


@pytest.mark.parametrize(
    ("dialect", "path", "file", "text", "kind"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_a_providers_error_mid_stream_becomes_one_fatal_error_event(
    recordings: tuple[str, Recordings], dialect: str, path: str, file: str, text: str, kind: str
) -> None:
    url, rec = recordings
    rec.files[path] = file
    events = _chat(f"{url}{'/v1beta' if dialect == 'gemini' else '/v1'}", dialect)
    assert _contents(events) == text
    errors = [e for e in events if e.event == "error"]
    assert len(errors) == 1
    assert errors[0] is events[-1]
    assert kind in errors[0].json()["message"]
    assert errors[0].json()["fatal"] is True


@pytest.mark.parametrize(
    ("base", "dialect"),
    [
        ("https://api.anthropic.com/v1", "anthropic"),
        ("https://generativelanguage.googleapis.com/v1beta", "gemini"),
        ("https://api.openai.com/v1", "openai-chat"),
        ("http://127.0.0.1:8000/v1", "openai-chat"),
    ],
    ids=["anthropic", "gemini", "openai", "local"],
)
def test_the_dialect_is_guessed_from_the_host_unless_given(
    monkeypatch: pytest.MonkeyPatch, base: str, dialect: str
) -> None:
    assert _dialect_of(base) == dialect
    monkeypatch.setenv("SSENB_LLM_BASE_URL", base)
    monkeypatch.setenv("SSENB_LLM_API_KEY", KEY)
    config = upstream(ssenb.demo_app())
    assert config is not None
    assert config.dialect == dialect
    assert config.model == DEFAULT_MODELS[dialect]
    monkeypatch.setenv("SSENB_LLM_DIALECT", "openai-responses")
    assert upstream(ssenb.demo_app()).dialect == "openai-responses"  # type: ignore[union-attr]
    monkeypatch.setenv("SSENB_LLM_DIALECT", "cohere")
    with pytest.raises(ValueError, match="SSENB_LLM_DIALECT='cohere'"):
        upstream(ssenb.demo_app())


def test_an_unknown_dialect_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="openai-chat, openai-responses, anthropic, gemini"):
        ssenb.demo_app(llm_base_url="http://x/v1", llm_api_key=KEY, llm_dialect="cohere")
