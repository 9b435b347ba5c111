"""Specification of `EventSource` (`ssenb/client/_source.py`) against a real uvicorn server.

Every test talks HTTP over 127.0.0.1 to the app in tests/_apps.py (served by the
`sse_app` fixture), which records the requests and disconnects it saw, so the assertions are
about what really crossed the wire: resumes with nothing lost or repeated, requests never
re-sent, typed errors with context, timeouts, and connections released at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from _apps import EXACT_CHUNKS, EXACT_DATA, AppState

from ssenb import (
    Event,
    EventParser,
    EventSource,
    RetryPolicy,
    SSEContentTypeError,
    SSEError,
    SSEEventTooLarge,
    SSEIdleTimeout,
    SSERetriesExhausted,
    SSEStatusError,
)
from ssenb.client._policy import BODY_HEAD

App = tuple[str, AppState]
QUICK = RetryPolicy(initial=0.01, maximum=0.05, jitter=0.0)
LIMIT = 5.0  # seconds: generous bound (>= 5x what each step needs) that only catches hangs


def _collect(url: str, **kwargs: Any) -> list[Event]:
    with EventSource(url, retry_policy=QUICK, **kwargs) as es:
        return list(es)


async def _acollect(url: str, **kwargs: Any) -> list[Event]:
    async with EventSource(url, retry_policy=QUICK, **kwargs) as es:
        return [ev async for ev in es]


# ------------------------------------------------------------------ resume, ids, headers

FLAKY = [
    ("cut every event", 12, 1),
    ("cut every 7", 30, 7),
    ("cut every 50 of 400", 400, 50),
]


@pytest.mark.parametrize(("n", "every"), [f[1:] for f in FLAKY], ids=[f[0] for f in FLAKY])
def test_dropped_stream_resumes_with_nothing_lost_or_repeated(
    sse_app: App, n: int, every: int
) -> None:
    url, state = sse_app
    auth = {"Authorization": "Bearer s3cret"}
    with EventSource(f"{url}/flaky?n={n}&every={every}", headers=auth) as es:
        events = list(es)
        cuts = (n - 1) // every
        assert [ev.data for ev in events] == [str(i) for i in range(1, n + 1)]
        assert [ev.id for ev in events] == [ev.data for ev in events]
        assert es.reconnects == cuts
        assert es.last_event_id == str(n)
        assert es.state == "closed"
    sent = state.requests
    assert len(sent) == cuts + 1
    assert all(r["authorization"] == auth["Authorization"] for r in sent)
    assert all(r["accept"] == "text/event-stream" for r in sent)
    assert all(r["cache-control"] == "no-cache" for r in sent)
    assert "last-event-id" not in sent[0]
    assert [r["last-event-id"] for r in sent[1:]] == [str(every * k) for k in range(1, cuts + 1)]


def test_given_last_event_id_seeds_the_first_request(sse_app: App) -> None:
    url, state = sse_app
    events = _collect(f"{url}/flaky?n=10&every=100", last_event_id="6")
    assert [ev.data for ev in events] == ["7", "8", "9", "10"]
    assert state.requests[0]["last-event-id"] == "6"


def test_resume_past_the_end_gets_204_and_stops_quietly(sse_app: App) -> None:
    url, state = sse_app
    with EventSource(f"{url}/flaky?n=5", last_event_id="5") as es:
        assert list(es) == []
        assert es.status == 204
    assert state.count("/flaky") == 1


@pytest.mark.anyio
async def test_sync_and_async_give_the_same_events(sse_app: App) -> None:
    url, _ = sse_app
    target = f"{url}/flaky?n=60&every=9"
    got_async = await _acollect(target)
    got_sync = _collect(target)
    assert got_async == got_sync
    assert [ev.data for ev in got_sync] == [str(i) for i in range(1, 61)]


def test_done_sentinel_ends_quietly_and_none_disables_it(sse_app: App) -> None:
    url, state = sse_app
    ended = _collect(f"{url}/flaky?n=3&every=100")
    assert [ev.data for ev in ended] == ["1", "2", "3"]
    assert state.count("/flaky") == 1
    raw = _collect(f"{url}/flaky?n=3&every=100", done=None)
    assert [ev.data for ev in raw] == ["1", "2", "3", "[DONE]"]
    assert state.count("/flaky") == 3  # with ids it resumed after the end; 204 stopped it


# ------------------------------------------------------------------ when not to reconnect


def test_get_without_ids_ends_at_a_clean_close(sse_app: App) -> None:
    url, state = sse_app
    with EventSource(f"{url}/plain?n=5") as es:
        assert [ev.data for ev in es] == [f"p{i}" for i in range(5)]
        assert (es.reconnects, es.last_event_id, es.state) == (0, "", "closed")
    assert state.count("/plain") == 1


def test_get_without_ids_retries_after_an_error(sse_app: App) -> None:
    url, state = sse_app
    with pytest.raises(SSERetriesExhausted) as info:
        _collect(f"{url}/plain?n=0&drop=1", max_retries=2)
    assert info.value.attempts == 3
    assert isinstance(info.value.__cause__, SSEError)
    assert state.count("/plain") == 3


@pytest.mark.parametrize("drop", [0, 1], ids=["clean end", "dropped mid-body"])
def test_post_without_ids_is_never_resent(sse_app: App, drop: int) -> None:
    url, state = sse_app
    body = {"prompt": "hi", "n": 2}
    got: list[Event] = []
    es = EventSource(f"{url}/post?drop={drop}", method="POST", json=body, retry_policy=QUICK)
    if drop:
        with pytest.raises(SSEError, match="connection failed") as info:
            got.extend(es)
        assert isinstance(info.value.__cause__, httpx.TransportError)
    else:
        got.extend(es)
    assert [ev.json() for ev in got] == [{"echo": body, "i": i} for i in range(3)]
    assert state.count("/post") == 1
    assert state.requests[0]["method"] == "POST"


def test_204_stops_for_good(sse_app: App) -> None:
    url, state = sse_app
    with EventSource(f"{url}/nocontent", reconnect="always") as es:
        assert list(es) == []
        assert (es.status, es.state) == (204, "closed")
    assert state.count("/nocontent") == 1


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410], ids=lambda c: f"HTTP {c}")
def test_4xx_raises_with_status_headers_and_body(sse_app: App, code: int) -> None:
    url, state = sse_app
    with pytest.raises(SSEStatusError) as info:
        _collect(f"{url}/status/{code}", reconnect="always")
    err = info.value
    assert err.status == code
    assert err.headers["x-why"] == "testing"
    assert err.body is not None
    assert err.body.startswith(f"nope {code}: ")
    assert len(err.body) <= BODY_HEAD
    assert err.url == f"{url}/status/{code}"
    assert state.count(f"/status/{code}") == 1


@pytest.mark.parametrize("code", [408, 429, 500, 503], ids=lambda c: f"HTTP {c}")
def test_retryable_statuses_are_retried_then_exhausted(sse_app: App, code: int) -> None:
    url, state = sse_app
    with pytest.raises(SSERetriesExhausted) as info:
        _collect(f"{url}/status/{code}", max_retries=2)
    cause = info.value.__cause__
    assert isinstance(cause, SSEStatusError)
    assert (cause.status, info.value.status, info.value.attempts) == (code, code, 3)
    assert state.count(f"/status/{code}") == 3


def test_wrong_content_type_raises_with_the_body(sse_app: App) -> None:
    url, state = sse_app
    with pytest.raises(SSEContentTypeError) as info:
        _collect(f"{url}/json", reconnect="always")
    err = info.value
    assert err.status == 200
    assert err.headers["content-type"] == "application/json"
    assert err.body == '{"error":"not an event stream"}'
    assert state.count("/json") == 1


def test_connection_refused_is_a_typed_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/stream"
    with pytest.raises(SSEError, match="ConnectError") as info:
        _collect(dead, reconnect="never")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    with pytest.raises(SSERetriesExhausted) as exhausted:
        _collect(dead, max_retries=1)
    assert exhausted.value.attempts == 2
    assert exhausted.value.status is None


# ------------------------------------------------------------------ timeouts


def test_idle_timeout_fires_after_the_events_that_came(sse_app: App) -> None:
    url, _ = sse_app
    got: list[Event] = []
    started = time.monotonic()
    es = EventSource(f"{url}/silent?first=2", idle_timeout=0.3, reconnect="never")
    with pytest.raises(SSEIdleTimeout) as info:
        got.extend(es)
    assert time.monotonic() - started < 0.3 * LIMIT * 2
    assert [ev.data for ev in got] == ["s0", "s1"]
    assert info.value.last_event_id == "s1"
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_idle_timeout_counts_as_a_failed_attempt_when_it_reconnects(sse_app: App) -> None:
    url, state = sse_app
    with pytest.raises(SSERetriesExhausted) as info:
        _collect(f"{url}/silent", idle_timeout=0.2, max_retries=1)
    assert isinstance(info.value.__cause__, SSEIdleTimeout)
    assert state.count("/silent") == 2


def test_heartbeats_keep_a_quiet_stream_alive(sse_app: App) -> None:
    url, state = sse_app
    events = _collect(f"{url}/pings?n=2&gap=0.6&every=0.1", idle_timeout=0.4)
    assert [ev.data for ev in events] == ["1", "2"]
    assert state.count("/pings") == 1


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
async def test_aclose_inside_an_async_loop_stops_at_once(sse_app: App) -> None:
    url, state = sse_app
    got: list[Event] = []
    es = EventSource(f"{url}/endless")
    async for ev in es:
        got.append(ev)
        if len(got) == 2:
            await es.aclose()
    assert [ev.data for ev in got] == ["1", "2"]
    assert state.disconnected.wait(LIMIT)


def test_a_given_client_is_used_and_left_open(sse_app: App) -> None:
    url, state = sse_app
    with httpx.Client(headers={"X-Team": "blue"}) as client:
        for _ in range(2):
            assert [ev.data for ev in _collect(f"{url}/plain?n=2", client=client)] == ["p0", "p1"]
        assert not client.is_closed
    assert [r["x-team"] for r in state.requests] == ["blue", "blue"]


@pytest.mark.anyio
async def test_a_client_of_the_wrong_kind_is_refused(sse_app: App) -> None:
    url, _ = sse_app
    with httpx.Client() as client, pytest.raises(TypeError, match="AsyncClient"):
        async for _ in EventSource(url, client=client):
            pass  # pragma: no cover


# ------------------------------------------------------------------ bytes on the wire


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_cut_inside_utf8_and_between_cr_and_lf_parses_exactly(
    sse_app: App, mode: str
) -> None:
    url, _ = sse_app
    target = f"{url}/exact"
    got = _collect(target) if mode == "sync" else await _acollect(target)
    whole = EventParser().feed(b"".join(EXACT_CHUNKS))  # the same stream in one piece
    assert got == whole
    assert tuple(ev.data for ev in got) == EXACT_DATA


def test_redirects_are_followed(sse_app: App) -> None:
    url, state = sse_app
    with EventSource(f"{url}/redirect") as es:
        assert [ev.data for ev in es] == ["p0", "p1", "p2"]
        assert es.status == 200
    assert [r["path"] for r in state.requests] == ["/redirect", "/plain"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_gzip_bodies_are_decoded(sse_app: App, mode: str) -> None:
    url, _ = sse_app
    es = EventSource(f"{url}/gzip?n=4")
    got = list(es) if mode == "sync" else [ev async for ev in es]
    assert es.headers["content-encoding"] == "gzip"
    assert [(ev.id, ev.data) for ev in got] == [(str(i), f"g{i}") for i in range(1, 5)]


def test_an_oversize_event_raises_after_the_events_before_it(sse_app: App) -> None:
    url, _ = sse_app
    got: list[Event] = []
    es = EventSource(f"{url}/big?size=5000", max_event_bytes=1000)
    with pytest.raises(SSEEventTooLarge) as info:
        got.extend(es)
    assert [ev.data for ev in got] == ["before"]
    assert (info.value.url, info.value.status) == (es.url, 200)
    assert es.state == "closed"


def test_states_follow_the_connection(sse_app: App) -> None:
    url, _ = sse_app
    seen: list[str] = []
    _collect(f"{url}/flaky?n=6&every=3", on_state=seen.append)
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


@pytest.mark.parametrize("drop", [0, 1], ids=["clean end", "dropped mid-body"])
def test_reconnect_always_resends_even_a_post_without_ids(sse_app: App, drop: int) -> None:
    url, state = sse_app
    target = f"{url}/post?drop={drop}&limit=3"  # the 4th request gets 204
    got = _collect(target, method="POST", json={"q": 1}, reconnect="always")
    assert [ev.json()["i"] for ev in got] == [0, 1, 2] * 3
    assert state.count("/post") == 4
