"""Specification of the wire loops (`ssenb/client/_loops.py`) against a real uvicorn server.

Every test talks HTTP over 127.0.0.1 to the app in tests/_apps.py (served by the
`sse_app` fixture), which records the requests it saw, so the assertions are about what
really crossed the wire: resumes with nothing lost or repeated, requests never re-sent,
typed errors with context, timeouts, exact bytes, redirects and gzip. Both loops (sync
over httpx.Client, async over httpx.AsyncClient) are driven through `EventSource`.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest
from _apps import EXACT_CHUNKS, EXACT_DATA, LIMIT, QUICK, App, collect

from ssenb import (
    Event,
    EventParser,
    EventSource,
    SSEContentTypeError,
    SSEError,
    SSEEventTooLarge,
    SSEIdleTimeout,
    SSERetriesExhausted,
    SSEStatusError,
    SSEStreamInterrupted,
)
from ssenb.client._loops import Request, until_done
from ssenb.client._policy import BODY_HEAD, StreamPlan


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
    events = collect(f"{url}/flaky?n=10&every=100", last_event_id="6")
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
    got_sync = collect(target)
    assert got_async == got_sync
    assert [ev.data for ev in got_sync] == [str(i) for i in range(1, 61)]


def test_done_sentinel_ends_quietly_and_none_disables_it(sse_app: App) -> None:
    url, state = sse_app
    ended = collect(f"{url}/flaky?n=3&every=100")
    assert [ev.data for ev in ended] == ["1", "2", "3"]
    assert state.count("/flaky") == 1
    raw = collect(f"{url}/flaky?n=3&every=100", done=None)
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
        collect(f"{url}/plain?n=0&drop=1", max_retries=2)
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
        with pytest.raises(SSEStreamInterrupted, match="connection failed") as info:
            got.extend(es)
        assert (info.value.received, info.value.status, info.value.last_event_id) == (3, 200, "")
        assert isinstance(info.value.__cause__, SSEError)
        assert isinstance(info.value.__cause__.__cause__, httpx.TransportError)
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
        collect(f"{url}/status/{code}", reconnect="always")
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
        collect(f"{url}/status/{code}", max_retries=2)
    cause = info.value.__cause__
    assert isinstance(cause, SSEStatusError)
    assert (cause.status, info.value.status, info.value.attempts) == (code, code, 3)
    assert state.count(f"/status/{code}") == 3


def test_wrong_content_type_raises_with_the_body(sse_app: App) -> None:
    url, state = sse_app
    with pytest.raises(SSEContentTypeError) as info:
        collect(f"{url}/json", reconnect="always")
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
        collect(dead, reconnect="never")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    with pytest.raises(SSERetriesExhausted) as exhausted:
        collect(dead, max_retries=1)
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
        collect(f"{url}/silent", idle_timeout=0.2, max_retries=1)
    assert isinstance(info.value.__cause__, SSEIdleTimeout)
    assert state.count("/silent") == 2


def test_heartbeats_keep_a_quiet_stream_alive(sse_app: App) -> None:
    url, state = sse_app
    events = collect(f"{url}/pings?n=2&gap=0.8&every=0.1", idle_timeout=0.5)
    assert [ev.data for ev in events] == ["1", "2"]
    assert state.count("/pings") == 1


# ------------------------------------------------------------------ bytes on the wire


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_cut_inside_utf8_and_between_cr_and_lf_parses_exactly(
    sse_app: App, mode: str
) -> None:
    url, _ = sse_app
    target = f"{url}/exact"
    got = collect(target) if mode == "sync" else await _acollect(target)
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


@pytest.mark.parametrize("drop", [0, 1], ids=["clean end", "dropped mid-body"])
def test_reconnect_always_resends_a_post_only_with_resume_resend(sse_app: App, drop: int) -> None:
    url, state = sse_app
    target = f"{url}/post?drop={drop}&limit=3"  # the 4th request gets 204
    with pytest.raises(ValueError, match="resume='resend'"):
        EventSource(target, method="POST", json={"q": 1}, reconnect="always")
    got = collect(target, method="POST", json={"q": 1}, reconnect="always", resume="resend")
    assert [ev.json()["i"] for ev in got] == [0, 1, 2] * 3
    assert state.count("/post") == 4


# ------------------------------------------------------------------ pure helpers


UNTIL_DONE = [
    ("no sentinel", ["a", "b"], "[DONE]", ["a", "b"], False),
    ("sentinel last", ["a", "[DONE]"], "[DONE]", ["a"], True),
    ("sentinel first drops the rest", ["[DONE]", "b"], "[DONE]", [], True),
    ("None disables it", ["a", "[DONE]"], None, ["a", "[DONE]"], False),
    ("a custom sentinel", ["a", "END", "c"], "END", ["a"], True),
]


@pytest.mark.parametrize(
    ("data", "done", "kept", "finished"),
    [u[1:] for u in UNTIL_DONE],
    ids=[u[0] for u in UNTIL_DONE],
)
def test_until_done(data: list[str], done: str | None, kept: list[str], finished: bool) -> None:
    events = [Event(data=d) for d in data]
    got, over = until_done(events, done)
    assert ([ev.data for ev in got], over) == (kept, finished)


def test_request_kwargs_add_the_plans_headers_and_follow_redirects() -> None:
    timeout = httpx.Timeout(connect=1.0, read=2.0, write=1.0, pool=1.0)
    req = Request("POST", "http://127.0.0.1:1/x", {"X-A": "1"}, {"q": "v"}, {"k": 1}, timeout, None)
    plan = StreamPlan(req.url, method=req.method, last_event_id="4")
    kwargs = req.kwargs(plan)
    assert kwargs["headers"] == plan.request_headers(req.headers)
    assert kwargs["headers"]["Last-Event-ID"] == "4"
    assert (kwargs["params"], kwargs["json"], kwargs["timeout"]) == (req.params, req.json, timeout)
    assert kwargs["follow_redirects"] is True


def test_params_are_merged_into_the_query(sse_app: App) -> None:
    url, state = sse_app
    got = collect(f"{url}/plain?drop=0", params={"n": 2})
    assert [ev.data for ev in got] == ["p0", "p1"]
    assert state.count("/plain") == 1
