"""EventStreamResponse: what producers may yield, the exact wire format, coalescing,
heartbeats, and cleanup on disconnect, on errors and on server stop.

Every test talks to a real uvicorn (`ssenb.serve`) on 127.0.0.1 with raw httpx bytes.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

import ssenb
from ssenb import Event, EventParser, EventStreamResponse
from ssenb.server import AbortConnection

# -- a test app: producers chosen by name, every body write counted ----------------------

CLEANED: dict[str, threading.Event] = {}
PRODUCED_AT: dict[str, list[float]] = {}


def _endless_async(key: str) -> AsyncIterator[Event]:
    async def gen() -> AsyncIterator[Event]:
        try:
            i = 0
            while True:
                i += 1
                yield Event(data=str(i), id=str(i))
                await asyncio.sleep(0.01)
        finally:
            CLEANED[key].set()

    return gen()


def _endless_sync(key: str) -> Iterator[Event]:
    try:
        i = 0
        while True:
            i += 1
            yield Event(data=str(i), id=str(i))
            time.sleep(0.01)
    finally:
        CLEANED[key].set()


async def _paced_async(key: str, n: int, pause: float) -> AsyncIterator[str]:
    for i in range(n):
        await asyncio.sleep(pause)
        PRODUCED_AT[key].append(time.monotonic())
        yield str(i)


def _paced_sync(key: str, n: int, pause: float) -> Iterator[str]:
    for i in range(n):
        time.sleep(pause)
        PRODUCED_AT[key].append(time.monotonic())
        yield str(i)


async def _backlog(n: int) -> AsyncIterator[Event]:
    for i in range(n):
        yield Event(data=f"event {i}", id=str(i))  # never awaits: everything is ready


async def _idle_then_one(pause: float) -> AsyncIterator[str]:
    await asyncio.sleep(pause)
    yield "late"


async def _raises(exc: BaseException) -> AsyncIterator[Any]:
    yield "before"
    raise exc


async def _bad_item() -> AsyncIterator[Any]:
    yield "before"
    yield object()


async def _aborts() -> AsyncIterator[str]:
    yield "one"
    yield "two"
    raise AbortConnection("cut")


def _wrap(items: list[Any], kind: str) -> Any:
    if kind == "list":
        return list(items)
    if kind == "sync-generator":
        return (item for item in items)

    async def agen() -> AsyncIterator[Any]:
        for item in items:
            yield item

    return agen()


WIRE = [
    ("event-fields", [Event(event="tick", data="1", id="7")], b"event: tick\nid: 7\ndata: 1\n\n"),
    ("retry", [Event(data="r", retry=500)], b"retry: 500\ndata: r\n\n"),
    ("dict-of-fields", [{"data": "x", "id": 3}], b"id: 3\ndata: x\n\n"),
    ("dict-json-data", [{"event": "e", "data": {"a": 1}}], b'event: e\ndata: {"a":1}\n\n'),
    ("dict-payload", [{"count": 1}], b'data: {"count":1}\n\n'),
    ("str", ["hello"], b"data: hello\n\n"),
    ("multi-line-str", ["a\nb\r\nc"], b"data: a\ndata: b\ndata: c\n\n"),
    ("bytes-pre-encoded", [b"data: raw\n\n"], b"data: raw\n\n"),
    ("batch", [[Event(data="1"), "2", b"data: 3\n\n"]], b"data: 1\n\ndata: 2\n\ndata: 3\n\n"),
]
KINDS = ["list", "sync-generator", "async-generator"]


async def case(request: Request) -> Response:
    p = request.path_params
    q = request.query_params
    name = p["name"]
    heartbeat = float(q["heartbeat"]) if "heartbeat" in q else 15.0
    factories: dict[str, Callable[[], Any]] = {
        "endless-async": lambda: _endless_async(q["key"]),
        "endless-sync": lambda: _endless_sync(q["key"]),
        "paced-async": lambda: _paced_async(q["key"], int(q["n"]), float(q["pause"])),
        "paced-sync": lambda: _paced_sync(q["key"], int(q["n"]), float(q["pause"])),
        "backlog": lambda: _backlog(int(q["n"])),
        "idle": lambda: _idle_then_one(float(q["pause"])),
        "raises": lambda: _raises(ValueError("bad value")),
        "bad-item": _bad_item,
        "aborts": _aborts,
    }
    if name in factories:
        return EventStreamResponse(factories[name](), heartbeat=heartbeat)
    items = dict((n, i) for n, i, _ in WIRE)[name]
    return EventStreamResponse(
        _wrap(items, p["kind"]), heartbeat=heartbeat, headers={"X-Test": "yes"}
    )


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")


class CountWrites:
    """ASGI wrapper recording the size of every non-empty body write, per path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.writes: dict[str, list[int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sizes = self.writes.setdefault(scope["path"] + "?" + scope["query_string"].decode(), [])

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                sizes.append(len(message["body"]))
            await send(message)

        await self.app(scope, receive, counting)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    app = CountWrites(Starlette(routes=[Route("/ping", ping), Route("/case/{kind}/{name}", case)]))
    with ssenb.serve(app, name=f"test-response-{uuid.uuid4().hex[:6]}") as handle:
        yield handle


def _key() -> str:
    key = uuid.uuid4().hex
    CLEANED[key] = threading.Event()
    PRODUCED_AT[key] = []
    return key


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def _ssenb_tasks(handle: Any) -> list[str]:
    """Names of ssenb's own tasks still alive on the server's loop."""

    async def names() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("ssenb-")]

    return asyncio.run_coroutine_threadsafe(names(), handle._loop).result(5)


def _producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ssenb-producer"]


# -- the wire format ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "items", "wire"), WIRE, ids=[w[0] for w in WIRE])
def test_items_reach_the_wire_exactly(
    server: Any, kind: str, name: str, items: list[Any], wire: bytes
) -> None:
    response = httpx.get(f"{server.url}/case/{kind}/{name}", timeout=5)
    assert response.status_code == 200
    assert response.content == wire


def test_stream_headers_disable_caching_and_proxy_buffering(server: Any) -> None:
    response = httpx.get(f"{server.url}/case/list/str", timeout=5)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-test"] == "yes"


# -- coalescing ------------------------------------------------------------------------


def test_a_backlog_is_coalesced_into_few_large_writes(server: Any) -> None:
    n = 20_000
    path = f"/case/x/backlog?n={n}"
    body = httpx.get(server.url + path, timeout=10).content
    events = EventParser().feed(body)
    assert [e.id for e in events] == [str(i) for i in range(n)]
    writes = server.app.writes[path]
    assert sum(writes) == len(body)
    assert len(writes) <= len(body) // ssenb.server._response.HIGH_WATER + 2


@pytest.mark.parametrize("kind", ["paced-async", "paced-sync"])
def test_each_event_is_written_at_once_when_nothing_else_waits(server: Any, kind: str) -> None:
    key, n, pause = _key(), 5, 0.15
    path = f"/case/x/{kind}?key={key}&n={n}&pause={pause}"
    arrived: list[float] = []
    with httpx.stream("GET", server.url + path, timeout=5) as response:
        for chunk in response.iter_raw():
            arrived.extend([time.monotonic()] * chunk.count(b"\n\n"))
    assert len(arrived) == n
    assert len(server.app.writes[path]) == n
    delays = [a - p for a, p in zip(arrived, PRODUCED_AT[key], strict=True)]
    assert max(delays) < 0.1, delays  # one event per write, sent before the next exists


def test_a_blocking_sync_producer_does_not_stall_the_server(server: Any) -> None:
    key = _key()
    path = f"/case/x/paced-sync?key={key}&n=2&pause=1.0"
    with httpx.stream("GET", server.url + path, timeout=5) as response:
        started = time.monotonic()
        pong = httpx.get(server.url + "/ping", timeout=5)
        answered = time.monotonic() - started
        body = response.read()
    assert pong.text == "pong"
    assert answered < 0.5  # well before the producer's first 1 s sleep ends
    assert [e.data for e in EventParser().feed(body)] == ["0", "1"]


# -- heartbeats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heartbeat", "least", "most"),
    [(0.1, 2, 6), (0, 0, 0)],
    ids=["every-0.1s-while-idle", "disabled-with-0"],
)
def test_heartbeat_comments_fill_idle_time(
    server: Any, heartbeat: float, least: int, most: int
) -> None:
    body = httpx.get(f"{server.url}/case/x/idle?pause=0.45&heartbeat={heartbeat}", timeout=5)
    pings = body.content.count(b": ping\n")
    assert least <= pings <= most
    assert body.content.endswith(b"data: late\n\n")
    assert [e.data for e in EventParser().feed(body.content)] == ["late"]


# -- cleanup -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["endless-async", "endless-sync"])
def test_client_disconnect_cleans_the_producer_up(server: Any, kind: str) -> None:
    key = _key()
    with httpx.stream("GET", f"{server.url}/case/x/{kind}?key={key}", timeout=5) as response:
        parser = EventParser()
        seen: list[Event] = []
        for chunk in response.iter_raw():
            seen += parser.feed(chunk)
            if len(seen) >= 3:
                break
    assert CLEANED[key].wait(2.0), "the producer's finally did not run"
    assert _wait_until(lambda: server.streams == 0, 2.0)
    assert _wait_until(lambda: not _producer_threads(), 2.0)
    assert _wait_until(lambda: not _ssenb_tasks(server), 2.0)


def test_stop_ends_open_endless_streams_quickly_and_cleanly() -> None:
    app = Starlette(routes=[Route("/case/{kind}/{name}", case)])
    handle = ssenb.serve(app, name=f"test-stop-{uuid.uuid4().hex[:6]}")
    keys = [_key() for _ in range(3)]
    kinds = ["endless-async", "endless-sync", "endless-async"]
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=5))
        streams = [
            stack.enter_context(client.stream("GET", f"{handle.url}/case/x/{kind}?key={key}"))
            for kind, key in zip(kinds, keys, strict=True)
        ]
        iterators = [s.iter_raw() for s in streams]
        for it in iterators:
            assert b"data: 1" in next(it)
        assert handle.streams == 3
        started = time.monotonic()
        handle.stop()
        took = time.monotonic() - started
        rest = [b"".join(it) for it in iterators]  # a clean end: no RemoteProtocolError
    assert took < 1.5, took
    assert all(CLEANED[k].wait(2.0) for k in keys)
    assert all(isinstance(r, bytes) for r in rest)
    assert not handle.running
    assert _wait_until(lambda: not _producer_threads(), 2.0)
    assert not [t for t in threading.enumerate() if t.name == f"ssenb-server-{handle.name}"]


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [("raises", "ValueError", "bad value"), ("bad-item", "TypeError", "yielded object")],
    ids=["producer-raises", "unsupported-item"],
)
def test_a_failing_producer_ends_with_an_error_event(
    server: Any, name: str, error: str, message: str
) -> None:
    body = httpx.get(f"{server.url}/case/x/{name}", timeout=5).content  # a clean end
    events = EventParser().feed(body)
    assert [e.event for e in events] == ["message", "error"]
    assert events[0].data == "before"
    payload = orjson.loads(events[1].data)
    assert payload["error"] == error
    assert message in payload["message"]
    assert payload["fatal"] is True
    assert any(error in line for line in server.logs(20))


def test_abort_connection_truncates_the_body_after_what_was_produced(
    server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    parser, events = EventParser(), []

    def read_all() -> None:
        with httpx.stream("GET", f"{server.url}/case/x/aborts", timeout=5) as response:
            for chunk in response.iter_raw():
                events.extend(parser.feed(chunk))

    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        read_all()
    assert [e.data for e in events] == ["one", "two"]
    assert not any("AbortConnection" in line for line in server.logs(50))
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("producer", "heartbeat", "error"),
    [
        ("text", 15.0, TypeError),
        (b"bytes", 15.0, TypeError),
        (Event(data="x"), 15.0, TypeError),
        ({"data": "x"}, 15.0, TypeError),
        (42, 15.0, TypeError),
        ([], -1.0, ValueError),
    ],
    ids=["a-str", "bytes", "one-event", "one-dict", "not-iterable", "negative-heartbeat"],
)
def test_bad_arguments_are_rejected_at_once(producer: Any, heartbeat: float, error: type) -> None:
    with pytest.raises(error):
        EventStreamResponse(producer, heartbeat=heartbeat)
