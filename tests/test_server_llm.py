"""`/chat` and `POST /v1/chat/completions`, as DESIGN.md's table and issue 6 say.

Over real uvicorn servers (`ssenb.serve`). The OpenAI-compatible endpoint is read with the
official `openai` client (sync, async, and its `.stream()` helper). The "real upstream" relay
is tested against a second ssenb server acting as the OpenAI-compatible upstream (token
protected, so the relayed key is checked too); no mock anywhere.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

import ssenb
from ssenb import Event, EventParser
from ssenb.server import EventStreamResponse, ServerHandle
from ssenb.server._llm import _waits, configure_llm, mock_answer, mock_tokens, upstream

XSS = "<img src=x onerror=alert(1)>"
KEY = "sk-test-relay"
ENV = ("SSENB_LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "SSENB_LLM_API_KEY")


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:  # a developer's real key must not turn these tests into API calls
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-llm") as handle:
        yield handle


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[ServerHandle]:
    """A second ssenb demo server: the OpenAI-compatible upstream, requiring KEY."""
    with ssenb.serve(name="test-llm-upstream", token=KEY) as handle:
        yield handle


def _relay_server(base_url: str, key: str) -> ServerHandle:
    app = ssenb.demo_app()
    configure_llm(app, base_url=base_url, api_key=key, model="relay-model")
    return ssenb.serve(app, name="test-llm-relay")


def _read(url: str, **kw: object) -> tuple[int, list[Event]]:
    response = httpx.get(url, timeout=20, **kw)  # type: ignore[arg-type]
    return response.status_code, EventParser().feed(response.content)


def _contents(events: list[Event]) -> list[str]:
    return [e.json()["content"] for e in events if e.event == "message" and e.data != "[DONE]"]


# -- the mock answer ---------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [XSS, "Hello", "Ünïcødé, 😀 and \"quotes\""],
                         ids=["html", "plain", "unicode"])  # fmt: skip
def test_mock_chat_streams_tokens_with_ids_echoing_the_prompt(
    demo: ServerHandle, prompt: str
) -> None:
    status, events = _read(f"{demo.url}/chat", params={"prompt": prompt, "delay": 0})
    assert status == 200
    tokens = _contents(events)
    assert "".join(tokens) == mock_answer(prompt)
    assert prompt in "".join(tokens)  # verbatim: escaping is the view's job
    assert [e.id for e in events[:-1]] == [str(i) for i in range(1, len(tokens) + 1)]
    assert events[-1].data == "[DONE]"


def test_mock_tokens_look_like_model_tokens() -> None:
    tokens = mock_tokens("Hello")
    assert tokens[:5] == ["Sure", "!", " You", " asked", ":"]  # words and punctuation apart
    assert all(t.strip() or t == " " for t in tokens)
    assert len(tokens) > 30


def test_token_timing_is_jittered_deterministic_and_slower_for_the_first_token() -> None:
    waits = _waits("Hello", 40, 0.05)
    assert waits == _waits("Hello", 40, 0.05)  # same prompt, same timing
    assert waits != _waits("Bye", 40, 0.05)
    assert all(0.6 * 0.05 <= w <= 1.4 * 0.05 for w in waits[1:])
    assert len({round(w, 6) for w in waits[1:]}) > 10  # jitter, not a metronome
    assert waits[0] >= 4 * 0.6 * 0.05  # time to first token


def test_mock_chat_takes_about_delay_per_token(demo: ServerHandle) -> None:
    delay, n = 0.02, len(mock_tokens("Hello"))
    started = time.monotonic()
    _read(f"{demo.url}/chat", params={"prompt": "Hello", "delay": delay})
    took = time.monotonic() - started
    assert 0.6 * delay * n <= took < 5 * 1.4 * delay * (n + 3)


def test_a_resumed_chat_continues_after_the_last_token(demo: ServerHandle) -> None:
    url = f"{demo.url}/chat?prompt=Hello&delay=0"
    _, events = _read(url, headers={"Last-Event-ID": "5"})
    assert "".join(_contents(events)) == "".join(mock_tokens("Hello")[5:])
    assert events[0].id == "6"
    with ssenb.EventSource(url, last_event_id="50") as source:
        assert [e.id for e in source] == [str(i) for i in range(51, len(mock_tokens("Hello")) + 1)]


@pytest.mark.parametrize("last", ["all", "past"], ids=["at-the-last-token", "beyond-it"])
def test_a_resume_past_the_last_token_gets_204(demo: ServerHandle, last: str) -> None:
    n = len(mock_tokens("Hello"))
    last_id = str(n if last == "all" else n + 10)
    response = httpx.get(f"{demo.url}/chat?prompt=Hello", headers={"Last-Event-ID": last_id})
    assert (response.status_code, response.content) == (204, b"")


BAD_CHAT = [("", "prompt"), ("prompt=", "prompt"), ("prompt=x&delay=-1", "delay"),
            ("prompt=x&delay=11", "delay")]  # fmt: skip


@pytest.mark.parametrize(("query", "field"), BAD_CHAT, ids=[q or "no-prompt" for q, _ in BAD_CHAT])
def test_bad_chat_parameters_get_422_before_streaming(
    demo: ServerHandle, query: str, field: str
) -> None:
    response = httpx.get(f"{demo.url}/chat?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


# -- configuration of a real upstream ----------------------------------------------------------

CONFIGS = [
    ({}, None),
    ({"OPENAI_API_KEY": "k"}, None),  # a stray key alone never means paid calls
    ({"OPENAI_BASE_URL": "http://u/v1"}, None),
    ({"OPENAI_BASE_URL": "http://u/v1/", "OPENAI_API_KEY": "k"}, ("http://u/v1", "k")),
    ({"SSENB_LLM_BASE_URL": "http://s/v1", "OPENAI_BASE_URL": "http://u/v1",
      "OPENAI_API_KEY": "k"}, ("http://s/v1", "k")),
]  # fmt: skip


@pytest.mark.parametrize(("env", "expected"), CONFIGS, ids=["none", "key-only", "url-only",
                         "openai-env", "ssenb-env-wins"])  # fmt: skip
def test_the_upstream_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[str, str] | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = upstream(ssenb.demo_app())
    assert (config.base_url, config.api_key) == expected if config else expected is None


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    app = ssenb.demo_app()
    configure_llm(app, base_url="http://arg/v1", model="m")
    config = upstream(app)
    assert config is not None
    assert (config.base_url, config.api_key, config.model) == ("http://arg/v1", "env-key", "m")


def test_demo_app_takes_the_upstream_as_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSENB_LLM_BASE_URL", "OPENAI_BASE_URL", "SSENB_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert upstream(ssenb.demo_app()) is None  # the mock by default
    config = upstream(ssenb.demo_app(llm_base_url="http://arg/v1", llm_api_key="k", llm_model="m"))
    assert config is not None
    assert (config.base_url, config.api_key, config.model) == ("http://arg/v1", "k", "m")


# -- relaying a real upstream ------------------------------------------------------------------


def test_chat_relays_the_upstream_without_blocking_the_loop(upstream_server: ServerHandle) -> None:
    prompt = "relay me"
    parser, events, other, other_took = EventParser(), [], None, 0.0
    with (
        _relay_server(f"{upstream_server.url}/v1", KEY) as relay,
        httpx.stream("GET", f"{relay.url}/chat", params={"prompt": prompt}, timeout=20) as r,
    ):
        for chunk in r.iter_bytes():
            events += parser.feed(chunk)
            if other is None and events:  # mid-answer, the relay still serves others
                started = time.monotonic()
                other = httpx.get(f"{relay.url}/stream?n=1&interval=0", timeout=5)
                other_took = time.monotonic() - started
    assert other is not None
    assert other.status_code == 200
    assert other_took < 1.0
    assert "".join(_contents(events)) == mock_answer(prompt)
    assert events[-1].data == "[DONE]"
    assert all(e.id == "" for e in events)  # an upstream answer cannot be resumed


def test_a_client_disconnect_cancels_the_upstream_request(upstream_server: ServerHandle) -> None:
    with _relay_server(f"{upstream_server.url}/v1", KEY) as relay:
        with httpx.stream("GET", f"{relay.url}/chat?prompt=long", timeout=20) as response:
            chunks = response.iter_bytes()  # kept: a dropped iterator closes the connection
            for chunk in chunks:
                if b"content" in chunk:
                    break  # one token in; the whole answer would take ~3 s more
            assert upstream_server.streams == 1
            disconnected = time.monotonic()
        while upstream_server.streams and time.monotonic() - disconnected < 5:
            time.sleep(0.01)
        assert upstream_server.streams == 0, "the upstream never saw the disconnect"
        assert relay.streams == 0
        assert time.monotonic() - disconnected < 1.5


UPSTREAM_FAILURES = [("{up}/v1", "wrong-key", 401), ("{up}/nowhere", KEY, 404),
                     ("http://127.0.0.1:{dead}/v1", KEY, None)]  # fmt: skip


@pytest.mark.parametrize(("base", "key", "status"), UPSTREAM_FAILURES,
                         ids=["wrong-key-401", "wrong-path-404", "nobody-listening"])  # fmt: skip
def test_upstream_failures_become_one_fatal_error_event(
    upstream_server: ServerHandle, base: str, key: str, status: int | None
) -> None:
    base = base.format(up=upstream_server.url, dead=_closed_port())
    with _relay_server(base, key) as relay:
        code, events = _read(f"{relay.url}/chat?prompt=hi")
        with ssenb.EventSource(f"{relay.url}/chat?prompt=hi") as source:
            seen = list(source)
            assert source.reconnects == 0  # a clean end without ids: the client stops
    assert code == 200
    assert [e.event for e in events] == [e.event for e in seen] == ["error"]
    assert events[0].json()["status"] == status
    assert events[0].json()["fatal"] is True


def _odd_upstream() -> FastAPI:
    """An OpenAI-compatible upstream that misbehaves in the ways real ones do."""
    app = FastAPI()

    def chunk(content: str) -> str:
        return orjson.dumps({"choices": [{"index": 0, "delta": {"content": content}}]}).decode()

    @app.post("/{case}/chat/completions")
    async def completions(case: str) -> Response:
        if case == "json-200":
            return JSONResponse({"choices": []})
        events = [chunk("Hi"), chunk(" there")]
        if case == "error":
            events.append(orjson.dumps({"error": {"message": "overloaded"}}).decode())
        return EventStreamResponse(events)

    return app


ODD = [("no-done", ["Hi", " there", "[DONE]"]), ("error", ["Hi", " there", "error"]),
       ("json-200", ["error"])]  # fmt: skip


@pytest.mark.parametrize(("case", "expected"), ODD, ids=[c for c, _ in ODD])
def test_odd_upstreams_end_cleanly(case: str, expected: list[str]) -> None:
    with (
        ssenb.serve(_odd_upstream(), name="test-llm-odd") as odd,
        _relay_server(f"{odd.url}/{case}", KEY) as relay,
    ):
        _, events = _read(f"{relay.url}/chat?prompt=hi")
    ends = ["error" if e.event == "error" else e.data for e in events]
    assert _contents(events) + [x for x in ends if x in ("error", "[DONE]")] == expected


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the OpenAI-compatible endpoint, read by the official client -------------------------------

FAST = {"delay": 0}  # ssenb's extension field: no pause between tokens
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": XSS}]


def _client(demo: ServerHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{demo.url}/v1", api_key="unused", max_retries=0)


def test_openai_sync_client_streams_chunks(demo: ServerHandle) -> None:
    with _client(demo) as client:
        chunks = list(
            client.chat.completions.create(
                model="my-model", messages=MESSAGES, stream=True, extra_body=FAST
            )
        )
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"my-model"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == mock_answer(XSS)
    assert [c.choices[0].finish_reason for c in chunks][-2:] == [None, "stop"]


def test_openai_usage_chunk_on_request(demo: ServerHandle) -> None:
    with _client(demo) as client:
        chunks = list(
            client.chat.completions.create(
                model="m", messages=MESSAGES, stream=True, extra_body=FAST,
                stream_options={"include_usage": True},
            )
        )  # fmt: skip
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(mock_tokens(XSS))
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_sync_client_without_stream_gets_one_completion(demo: ServerHandle) -> None:
    with _client(demo) as client:
        completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "m"
    assert completion.choices[0].message.content == mock_answer(XSS)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > completion.usage.completion_tokens


def test_openai_async_client_streams_chunks(demo: ServerHandle) -> None:
    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=f"{demo.url}/v1", api_key="x") as client:
            stream = await client.chat.completions.create(
                model="m", messages=MESSAGES, stream=True, extra_body=FAST
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()) == mock_answer(XSS)


def test_openai_stream_helper_assembles_the_completion(demo: ServerHandle) -> None:
    with (
        _client(demo) as client,
        client.chat.completions.stream(model="m", messages=MESSAGES, extra_body=FAST) as stream,
    ):
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert {"content.delta", "content.done"} <= kinds
    assert final.choices[0].message.content == mock_answer(XSS)
    assert final.choices[0].finish_reason == "stop"


def test_completions_wire_format_has_no_ids_and_ends_with_done(demo: ServerHandle) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
            "stream": True, "delay": 0}  # fmt: skip
    response = httpx.post(f"{demo.url}/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content.endswith(b"\n\ndata: [DONE]\n\n")
    assert b"\nid:" not in response.content  # a POST answer is never requested twice
    events = EventParser().feed(response.content)
    text = "".join(e.json()["choices"][0]["delta"].get("content", "") for e in events[:-2])
    assert text == mock_answer("parts")


BAD_BODIES = [
    ({"model": "m"}, ["body", "messages"]),
    ({"messages": []}, ["body", "messages"]),
    ({"messages": [{"content": "no role"}]}, ["body", "messages", 0, "role"]),
    ({"messages": [{"role": "user", "content": "x"}], "delay": -1}, ["body", "delay"]),
]


@pytest.mark.parametrize(("body", "loc"), BAD_BODIES,
                         ids=["no-messages", "empty", "no-role", "negative-delay"])  # fmt: skip
def test_bad_completion_bodies_get_422_naming_the_field(
    demo: ServerHandle, body: dict[str, object], loc: list[object]
) -> None:
    response = httpx.post(f"{demo.url}/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_the_index_page_lists_the_llm_endpoints(demo: ServerHandle) -> None:
    page = httpx.get(f"{demo.url}/").text
    assert "GET /chat" in page
    assert "POST /v1/chat/completions" in page
