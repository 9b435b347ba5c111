"""ssenb's client against the MCP Python SDK's streamable HTTP server, with an event store.

Issue 28 found `EventSource(url, method="POST", json=tools_call)` running the tool 5 times
in 2.4 s, and `initialize` making 10 sessions: the SDK puts ids on a POST's stream, and
ssenb re-sent the POST. MCP resumes a POST's stream with a GET carrying `Last-Event-ID`
(`resume="get"`). The server here is the SDK's own (`MCPServer.streamable_http_app` under
uvicorn on 127.0.0.1, port 0); the event store is the SDK's `EventStore` interface over a
list. Its tool counts its runs, reports progress, and closes its SSE stream half-way
(`ctx.close_sse_stream()`, the SDK's polling pattern), so the client must resume.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from _apps import LIMIT, wait_until
from conftest import run_asgi

from ssenb import Event, EventSource

mcp_server = pytest.importorskip("mcp.server.mcpserver")
streamable = pytest.importorskip("mcp.server.streamable_http")

VERSION = "2025-11-25"  # the handshake revision with priming events and close_sse_stream
STEPS = 6
RETRY = 300  # ms the SDK's priming events ask a client to wait before resuming
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class ListStore(streamable.EventStore):  # type: ignore[misc]
    """The SDK's EventStore interface over a list: ids 1, 2, ... across every stream."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []  # (event id, stream id, message)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        at = next((i for i, e in enumerate(self.events) if e[0] == last_event_id), None)
        if at is None:
            return None
        stream = self.events[at][1]
        for event_id, sid, message in self.events[at + 1 :]:
            if sid == stream and message is not None:
                await send_callback(streamable.EventMessage(message, event_id))
        return stream

    def messages_after(self, event_id: str) -> list[str]:
        """Ids of the stored messages (not priming events) of `event_id`'s stream after it."""
        at = next(i for i, e in enumerate(self.events) if e[0] == event_id)
        stream = self.events[at][1]
        return [e[0] for e in self.events[at + 1 :] if e[1] == stream and e[2] is not None]


@dataclass
class Mcp:
    url: str
    store: ListStore
    runs: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, Last-Event-ID)


def _counting(app: Any, requests: list[tuple[str, str]]) -> Any:
    """Wrap an ASGI app to record each HTTP request's method and Last-Event-ID."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            requests.append((scope["method"], headers.get(b"last-event-id", b"").decode()))
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def mcp() -> Iterator[Mcp]:
    server = mcp_server.MCPServer("ssenb-peer")
    store = ListStore()
    runs: list[int] = []

    @server.tool()
    async def work(steps: int, ctx: mcp_server.Context) -> str:  # type: ignore[type-arg]
        """Count this run, report each step; close the SSE stream after step 2, then finish
        the rest at once, well before the client's GET (after `retry:` = RETRY ms): the
        whole rest is then in the store. (A GET that arrives while the tool still runs can
        miss a message stored between the SDK's replay and its live tail, an ordering gap
        the SDK documents; that is the server's, not a client's, to close.)"""
        runs.append(steps)
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            if step == 1:
                await asyncio.sleep(0.02)
            if step == 2:
                await ctx.close_sse_stream()  # the client must resume with a GET
        return f"done after {steps} steps"

    requests: list[tuple[str, str]] = []
    app = server.streamable_http_app(event_store=store, retry_interval=RETRY)
    with run_asgi(_counting(app, requests), lifespan="on") as url:
        yield Mcp(f"{url}/mcp", store, runs, requests)


def _rpc(rid: int, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def _initialize(mcp: Mcp) -> dict[str, str]:
    """The handshake through ssenb (a POST read to its end), then `initialized`."""
    init = _rpc(1, "initialize", protocolVersion=VERSION, capabilities={},
                clientInfo={"name": "ssenb", "version": "0"})  # fmt: skip
    with EventSource(mcp.url, method="POST", json=init, headers=ACCEPT) as es:
        replies = [json.loads(ev.data) for ev in es if ev.data]  # not the priming events
        session = es.headers["mcp-session-id"]
    assert [r["id"] for r in replies] == [1]
    headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": VERSION}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(mcp.url, json=note, headers=headers, timeout=LIMIT).status_code == 202
    return headers


def _call(steps: int) -> dict[str, Any]:
    return _rpc(2, "tools/call", name="work", arguments={"steps": steps},
                _meta={"progressToken": "p"})  # fmt: skip


def _until_result(es: EventSource) -> tuple[list[Event], dict[str, Any] | None]:
    """Messages up to the JSON-RPC response to request 2 (the GET stays open after it);
    priming events (an id, empty data) are left out."""
    got: list[Event] = []
    for ev in es:
        if not ev.data:
            continue
        got.append(ev)
        message = json.loads(ev.data)
        if message.get("id") == 2:
            return got, message
    return got, None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_initialize_makes_one_session(mcp: Mcp) -> None:
    _initialize(mcp)
    assert mcp.requests == [("POST", ""), ("POST", "")]  # initialize, initialized: once each


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_tool_call_runs_once_and_resumes_by_get_with_exactly_the_missed_ids(mcp: Mcp) -> None:
    headers = _initialize(mcp)
    mcp.requests.clear()
    es = EventSource(mcp.url, method="POST", json=_call(STEPS), headers=headers,
                     resume="get", idle_timeout=LIMIT)  # fmt: skip
    with es:
        got, result = _until_result(es)
    assert result is not None
    assert result["result"]["structuredContent"] == {"result": f"done after {STEPS} steps"}
    assert mcp.runs == [STEPS]  # the tool ran exactly once
    (post, _), (get, resumed_from) = mcp.requests
    assert (post, get) == ("POST", "GET")  # one POST, then one GET with Last-Event-ID
    before = [ev for ev in got if int(ev.id) <= int(resumed_from)]
    after = [ev.id for ev in got if int(ev.id) > int(resumed_from)]
    assert after == mcp.store.messages_after(resumed_from)  # exactly the missed ids
    assert len({ev.id for ev in got}) == len(got)  # none twice
    progress = [json.loads(ev.data)["params"]["progress"] for ev in got[:-1]]
    assert progress == list(range(1, STEPS + 1))
    assert 1 <= len(before) <= 2  # step 1 (and 2, if sent before the close) on the POST


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_without_resume_the_call_is_never_sent_again(mcp: Mcp) -> None:
    headers = _initialize(mcp)
    mcp.requests.clear()
    with EventSource(mcp.url, method="POST", json=_call(STEPS), headers=headers) as es:
        got, result = _until_result(es)  # the server closes the stream: a clean end
        assert es.state == "closed"
    assert result is None
    progress = [json.loads(ev.data)["params"]["progress"] for ev in got]
    assert progress in ([1], [1, 2])  # what the POST's stream carried before the close
    assert mcp.requests == [("POST", "")]
    answered = lambda: any(getattr(e[2], "id", None) == 2 for e in mcp.store.events)  # noqa: E731
    wait_until(answered, LIMIT)
    assert mcp.runs == [STEPS]  # the tool finished on its own, having run once
    assert mcp.requests == [("POST", "")]
