"""Specification of `EventSource` (`ssenb/client/_source.py`): its surface and closing.

Against a real uvicorn server on 127.0.0.1 (tests/_apps.py, which records disconnects):
leaving a loop early, close() from the loop body or another thread, states, batches, the
client it is given. What happens on the wire is specified in test_client_loops.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time

import httpx
import pytest
from _apps import LIMIT, QUICK, App, collect

from ssenb import Event, EventSource, RetryPolicy, SSERetriesExhausted

# ------------------------------------------------------------------ closing


def _leave_early(url: str, with_block: bool) -> None:
    if with_block:
        with EventSource(url) as es:
            for _ in es:
                break
    else:
        for _ in EventSource(url):
            break


@pytest.mark.parametrize("with_block", [True, False], ids=["with block", "bare for loop"])
def test_leaving_the_loop_early_closes_the_connection(sse_app: App, with_block: bool) -> None:
    url, state = sse_app
    _leave_early(f"{url}/endless", with_block)
    assert state.disconnected.wait(LIMIT)
    assert state.disconnects == ["/endless"]


@pytest.mark.anyio
@pytest.mark.parametrize("with_block", [True, False], ids=["async with", "bare async for"])
async def test_leaving_an_async_loop_early_closes_the_connection(
    sse_app: App, with_block: bool
) -> None:
    url, state = sse_app
    es = EventSource(f"{url}/endless")
    if with_block:
        async with es:
            async for _ in es:
                break
        assert es.state == "closed"  # closed by the time `async with` is left
    else:
        async for _ in es:
            break  # the dropped generator is finalised by the loop's asyncgen hook
    for _ in range(int(LIMIT / 0.01)):
        if state.disconnected.is_set():
            break
        await asyncio.sleep(0.01)
    assert state.disconnects == ["/endless"]
    assert es.state == "closed"


def test_close_inside_the_loop_stops_at_once(sse_app: App) -> None:
    url, _ = sse_app
    got: list[Event] = []
    with EventSource(f"{url}/many?n=1000&batch=500") as es:
        for ev in es:
            got.append(ev)
            if len(got) == 3:
                es.close()
        assert es.state == "closed"
    assert len(got) == 3


CROSS_THREAD = [
    ("sync, blocked in a read", "sync", "/silent?first=1", ["s0"]),
    ("async, blocked in a read", "async", "/silent?first=1", ["s0"]),
    ("sync, waiting to reconnect", "sync", "/status/503", []),
    ("async, waiting to reconnect", "async", "/status/503", []),
]


@pytest.mark.parametrize(
    ("mode", "path", "expected"), [c[1:] for c in CROSS_THREAD], ids=[c[0] for c in CROSS_THREAD]
)
def test_close_from_another_thread_ends_the_iteration_quietly(
    sse_app: App, mode: str, path: str, expected: list[str]
) -> None:
    url, state = sse_app
    slow = RetryPolicy(initial=30.0, jitter=0.0)  # a reconnect wait far beyond LIMIT
    es = EventSource(f"{url}{path}", idle_timeout=60.0, retry_policy=slow)
    got: list[Event] = []
    errors: list[BaseException] = []

    async def consume_async() -> None:
        async for ev in es:
            got.append(ev)

    def consume() -> None:
        try:
            if mode == "sync":
                got.extend(es)
            else:
                asyncio.run(consume_async())  # a fresh loop in this fresh thread
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    deadline = time.monotonic() + LIMIT
    while es.state in ("connecting", "open") and len(got) < len(expected):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # let it block in the read or the wait
    started = time.monotonic()
    es.close()
    worker.join(LIMIT)
    assert not worker.is_alive()
    assert time.monotonic() - started < LIMIT / 2  # far below the 30 s wait or 60 s idle
    assert errors == []
    assert [ev.data for ev in got] == expected
    assert es.state == "closed"
    if path.startswith("/silent"):
        assert state.disconnected.wait(LIMIT)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["await aclose()", "close()"])
async def test_closing_inside_an_async_loop_stops_at_once(sse_app: App, how: str) -> None:
    url, _ = sse_app
    got: list[Event] = []
    es = EventSource(f"{url}/many?n=1000&batch=500")  # many events in each read
    async for ev in es:
        got.append(ev)
        if len(got) == 3:
            if how == "close()":
                es.close()
            else:
                await es.aclose()
    assert [ev.id for ev in got] == ["0", "1", "2"]
    assert es.state == "closed"


def test_a_given_client_is_used_and_left_open(sse_app: App) -> None:
    url, state = sse_app
    with httpx.Client(headers={"X-Team": "blue"}) as client:
        for _ in range(2):
            assert [ev.data for ev in collect(f"{url}/plain?n=2", client=client)] == ["p0", "p1"]
        assert not client.is_closed
    assert [r["x-team"] for r in state.requests] == ["blue", "blue"]


@pytest.mark.anyio
async def test_a_client_of_the_wrong_kind_is_refused(sse_app: App) -> None:
    url, _ = sse_app
    with httpx.Client() as client, pytest.raises(TypeError, match="AsyncClient"):
        async for _ in EventSource(url, client=client):
            pass  # pragma: no cover


def test_states_follow_the_connection(sse_app: App) -> None:
    url, _ = sse_app
    seen: list[str] = []
    collect(f"{url}/flaky?n=6&every=3", on_state=seen.append)
    assert seen == ["connecting", "open", "reconnecting", "open", "closed"]


def test_a_second_concurrent_iteration_is_refused(sse_app: App) -> None:
    url, _ = sse_app
    with EventSource(f"{url}/plain?n=3") as es:
        first = iter(es)
        assert next(first).data == "p0"
        with pytest.raises(RuntimeError, match="already being iterated"):
            iter(es)
        assert [ev.data for ev in first] == ["p1", "p2"]
    assert list(es) == []  # closed for good: iterating again yields nothing


# ------------------------------------------------------------------ batches


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_batches_hold_the_same_events_in_order(sse_app: App, mode: str) -> None:
    url, _ = sse_app
    target = f"{url}/flaky?n=40&every=9"
    es = EventSource(target, retry_policy=QUICK)
    sync = mode == "sync"
    batches = list(es.iter_batches()) if sync else [b async for b in es.aiter_batches()]
    assert all(batches)
    assert [ev for batch in batches for ev in batch] == collect(target)
    assert es.state == "closed"


def test_leaving_a_batch_loop_early_closes_the_connection(sse_app: App) -> None:
    url, state = sse_app
    with EventSource(f"{url}/endless") as es:
        for batch in es.iter_batches():
            assert batch
            break
    assert state.disconnected.wait(LIMIT)


def test_repr_shows_where_the_stream_is(sse_app: App) -> None:
    url, _ = sse_app
    es = EventSource(f"{url}/flaky?n=2", method="get")
    list(es)
    text = repr(es)
    assert text.startswith(f"<EventSource GET {url}/flaky?n=2 state=closed")
    assert "last_event_id='2'" in text


@pytest.mark.anyio
async def test_cancelling_the_consuming_task_propagates_and_releases(sse_app: App) -> None:
    url, state = sse_app
    es = EventSource(f"{url}/endless")
    got: list[Event] = []

    async def consume() -> None:
        async with es:
            async for ev in es:
                got.append(ev)

    task = asyncio.create_task(consume())
    async with asyncio.timeout(LIMIT):
        while len(got) < 2:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert es.state == "closed"
    for _ in range(int(LIMIT / 0.01)):
        if state.disconnected.is_set():
            break
        await asyncio.sleep(0.01)
    assert state.disconnects == ["/endless"]


def test_timeouts_map_to_connect_and_per_read_idle() -> None:
    es = EventSource("http://127.0.0.1:1/x", connect_timeout=2.5, idle_timeout=45.0)
    timeout = es._req.timeout
    assert (timeout.connect, timeout.read) == (2.5, 45.0)
    assert (timeout.write, timeout.pool) == (2.5, 2.5)  # no total deadline on a stream


def test_connect_timeout_bounds_a_server_that_never_accepts() -> None:
    """A listening socket whose accept queue is full (backlog 0, never accepted) drops new
    SYNs, so connecting hangs: loopback's way to provoke a connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port, fillers = listener.getsockname()[1], []
        for _ in range(4):  # fill the queue (backlog + 1 on Linux) with never-accepted peers
            peer = socket.socket()
            peer.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                peer.connect(("127.0.0.1", port))
            fillers.append(peer)
        policy = RetryPolicy(initial=0.05, maximum=0.05, jitter=0.0)
        started = time.monotonic()
        with pytest.raises(SSERetriesExhausted) as info:  # noqa: PT012
            es = EventSource(f"http://127.0.0.1:{port}/x", connect_timeout=0.3,
                             max_retries=1, retry_policy=policy)  # fmt: skip
            list(es)
        elapsed = time.monotonic() - started
        for peer in fillers:
            peer.close()
    assert "ConnectTimeout" in str(info.value.__cause__)
    assert info.value.attempts == 2
    assert 0.6 <= elapsed < 5 * 0.7  # two bounded attempts, not a hang


# The contract in DESIGN.md, "Public API": names, order and defaults.
CONTRACT = {
    "method": "GET",
    "headers": None,
    "params": None,
    "json": None,
    "last_event_id": None,
    "reconnect": "auto",
    "max_retries": 10,
    "done": "[DONE]",
    "connect_timeout": 10.0,
    "idle_timeout": 60.0,
    "max_event_bytes": 16 << 20,
    "client": None,
}


def test_signature_keeps_the_design_contract() -> None:
    params = list(inspect.signature(EventSource).parameters.values())
    assert params[0].name == "url"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = {p.name: p.default for p in params[1:]}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    assert list(keyword)[: len(CONTRACT)] == list(CONTRACT)
    assert {k: keyword[k] for k in CONTRACT} == CONTRACT
    assert {"retry_policy": None, "on_state": None}.items() <= keyword.items()
