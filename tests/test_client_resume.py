"""Specification of resuming (`ssenb/client/_resume.py` and the plan's resume rules).

Issue 28: a request other than GET is never sent again unless the caller says how to resume;
a reconnection never yields an event twice, whatever the server does with `Last-Event-ID`.
First the pure rules (no sockets), then the same rules against a real uvicorn server whose
endpoints behave like the servers of other projects (they ignore `Last-Event-ID`, answer an
empty 200 past the end, cut a POST's stream and resume it by GET).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from _apps import LIMIT, QUICK, Abort, _not_abort, collect, wait_until
from conftest import run_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ssenb import (
    Event,
    EventParser,
    EventSource,
    RetryPolicy,
    SSEError,
    SSEResumeWarning,
    SSERetriesExhausted,
    SSEStreamInterrupted,
    encode,
)
from ssenb.client._policy import StreamPlan, check_resume
from ssenb.client._resume import ReplayGuard

SSE = "text/event-stream"
FAST = RetryPolicy(initial=0.25, maximum=4.0, jitter=0.0)


def _ids(*ids: str) -> bytes:
    return b"".join(encode(Event(data=f"d{i}", id=i)) for i in ids)


def _plan(**kwargs: object) -> StreamPlan:
    kwargs.setdefault("policy", FAST)
    return StreamPlan("http://127.0.0.1:1/s", **kwargs)  # type: ignore[arg-type]


def _connection(
    plan: StreamPlan, *reads: bytes, error: SSEError | None = None
) -> tuple[list[str], bool, float | None]:
    """One connection: the data of what the plan lets through, whether it ended the stream
    there, and `end()`'s delay (not called when the plan ended the stream)."""
    parser = plan.begin()
    assert plan.opened(200, {"content-type": SSE}) == "stream"
    got: list[Event] = []
    for body in reads:
        events, over = plan.received(parser.feed(body))
        got += events
        if over:
            plan.close()
            return [ev.data for ev in got], True, None
    return [ev.data for ev in got], False, plan.end(len(got), error)


def _drop() -> SSEError:
    return SSEError("connection failed: RemoteProtocolError")


# ------------------------------------------------------------------ requests other than GET

# method, resume=, body, broken -> "resume", "stop" or "interrupted"
NON_GET = [
    ("POST with ids, clean end: not sent again", "POST", None, _ids("1"), False, "stop"),
    ("POST with ids, drop: interrupted", "POST", None, _ids("1"), True, "interrupted"),
    ("POST without ids, drop: interrupted", "POST", None, b"data: a\n\n", True, "interrupted"),
    ("PUT with ids, drop: interrupted", "PUT", None, _ids("1"), True, "interrupted"),
    ("resend, drop without ids: re-sent", "POST", "resend", b"data: a\n\n", True, "resume"),
    ("resend, drop with ids: re-sent", "POST", "resend", _ids("1"), True, "resume"),
    ("get, drop with ids: GET resume", "POST", "get", _ids("1"), True, "resume"),
    ("get, drop without ids: nothing to resume", "POST", "get", b"data: a\n\n", True,
     "interrupted"),
    ("get, clean end with ids (MCP polling)", "POST", "get", _ids("1"), False, "resume"),
    ("get, clean end without ids", "POST", "get", b"data: a\n\n", False, "stop"),
    ("a URL, drop with ids", "POST", "/resume", _ids("1"), True, "resume"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "resume", "body", "broken", "outcome"),
    [r[1:] for r in NON_GET],
    ids=[r[0] for r in NON_GET],
)
def test_a_request_other_than_get_is_sent_again_only_as_resume_says(
    method: str, resume: str | None, body: bytes, broken: bool, outcome: str
) -> None:
    plan = _plan(method=method, resume=resume)
    error = _drop() if broken else None
    if outcome == "interrupted":
        with pytest.raises(SSEStreamInterrupted) as info:
            _connection(plan, body, error=error)
        assert info.value.__cause__ is error
        assert (info.value.received, info.value.status) == (1, 200)
        assert plan.state == "closed"
    else:
        _, _, delay = _connection(plan, body, error=error)
        assert (delay is not None) is (outcome == "resume")
        assert plan.resumes_by_get is (resume not in (None, "resend"))


def test_interrupted_says_what_arrived_and_how_to_resume() -> None:
    plan = _plan(method="POST")
    _connection(plan, _ids("1", "2"))  # a clean end: over, quietly
    plan = _plan(method="POST")
    plan.begin()
    plan.opened(200, {"content-type": SSE, "mcp-session-id": "s1"})
    plan.received(plan.parser.feed(_ids("7", "8", "9")))
    with pytest.raises(SSEStreamInterrupted, match="resume='resend' or resume='get'") as info:
        plan.end(3, _drop())
    err = info.value
    assert (err.received, err.last_event_id, err.headers["mcp-session-id"]) == (3, "9", "s1")
    assert "POST stream broke after 3 events" in str(err)


BAD_RESUME = [
    ("an unknown word", "GET", "auto", "retry", "resume must be"),
    ("a relative path without /", "POST", "auto", "resume", "resume must be"),
    ("always re-sending a POST unasked", "POST", "always", None, "resume='resend'"),
    ("always re-sending a DELETE unasked", "DELETE", "always", None, "resume='resend'"),
]


@pytest.mark.parametrize(
    ("method", "mode", "resume", "match"),
    [b[1:] for b in BAD_RESUME],
    ids=[b[0] for b in BAD_RESUME],
)
def test_resume_settings_that_say_nothing_usable_are_refused(
    method: str, mode: str, resume: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        check_resume(method, mode, resume)
    with pytest.raises(ValueError, match=match):
        EventSource("http://127.0.0.1:1/x", method=method, reconnect=mode, resume=resume)


def test_usable_resume_settings_are_taken() -> None:
    for method, mode, resume in [
        ("GET", "always", None),
        ("POST", "always", "resend"),
        ("POST", "auto", "get"),
        ("POST", "auto", "https://example.test/resume"),
        ("POST", "never", None),
    ]:
        check_resume(method, mode, resume)


# ------------------------------------------------------------------ a server that replays

# after a clean end of ids 1..3, the next connection brings -> (yielded, ends, warns)
AFTER_CLEAN = [
    ("the whole stream again", [_ids("1", "2", "3")], [], True, True),
    ("the stream again, one read per event", [_ids("1"), _ids("2")], [], True, True),
    ("the last event again, then new ones", [_ids("3", "4")], ["d4"], False, False),
    ("an id-less event, then new ids", [b"data: gap\n\n" + _ids("4")], ["gap", "d4"], False,
     False),
    ("a new id", [_ids("4", "5")], ["d4", "d5"], False, False),
    ("an older counted id never kept", [_ids("0")], [], True, True),
    ("nothing (an empty 200)", [b""], [], True, False),
    ("only comments and retry", [b": hi\nretry: 9\n\n"], [], True, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reads", "yielded", "ends", "warns"),
    [a[1:] for a in AFTER_CLEAN],
    ids=[a[0] for a in AFTER_CLEAN],
)
def test_after_a_clean_end_a_reconnection_never_repeats_an_event(
    reads: list[bytes], yielded: list[str], ends: bool, warns: bool
) -> None:
    states: list[str] = []
    plan = _plan(on_state=states.append)
    assert _connection(plan, _ids("1", "2", "3"))[2] is not None  # clean end: resume
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got, over, delay = _connection(plan, *reads)
    assert got == yielded
    assert (over or delay is None) is ends
    assert [w.category for w in caught] == ([SSEResumeWarning] if warns else [])
    assert ("not-resumed" in states) is warns
    if warns:
        assert "does not resume from Last-Event-ID" in str(caught[0].message)
        assert plan.last_event_id == "3"  # a replay moves no id
    if ends:
        assert plan.state == "closed"


AFTER_DROP = [
    ("a replay from the start", [_ids(*map(str, range(1, 9)))], ["d6", "d7", "d8"]),
    ("a replay split across reads", [_ids("1", "2"), _ids("3", "4", "5"), _ids("6")], ["d6"]),
    ("a replay that ends at the resume id", [_ids("1", "5")], []),
    ("a resumed stream", [_ids("6", "7")], ["d6", "d7"]),
]


@pytest.mark.parametrize(
    ("reads", "yielded"), [a[1:] for a in AFTER_DROP], ids=[a[0] for a in AFTER_DROP]
)
def test_after_a_drop_a_replay_is_skipped_to_where_it_was(
    reads: list[bytes], yielded: list[str]
) -> None:
    plan = _plan()
    _connection(plan, _ids("1", "2", "3", "4", "5"), error=_drop())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SSEResumeWarning)
        got, over, _ = _connection(plan, *reads)
    assert (got, over) == (yielded, False)
    assert plan.last_event_id == (yielded[-1][1:] if yielded else "5")


def test_words_as_ids_skip_a_replay_up_to_the_resume_id() -> None:
    guard = ReplayGuard()
    guard.remember([Event(data=w, id=w) for w in ("alpha", "beta", "gamma")])
    guard.arm("gamma")
    again = [Event(data=w, id=w) for w in ("alpha", "beta", "gamma", "delta")]
    assert guard.screen(again) == ([again[-1]], True)
    assert not guard.judging


def test_the_ids_kept_are_bounded() -> None:
    guard = ReplayGuard()
    for lo in range(0, 20_000, 1000):
        guard.remember([Event(id=f"x{i}") for i in range(lo, lo + 1000)])
    assert len(guard._seen) <= 4096
    assert guard.last == Event(id="x19999")


def test_reconnect_always_behaves_like_a_browser_and_yields_the_replay() -> None:
    plan = _plan(reconnect="always")
    _connection(plan, _ids("1", "2"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _connection(plan, _ids("1", "2"))[:2] == (["d1", "d2"], False)


# ------------------------------------------------------------------ against a real server


def _sse(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type=SSE)


class Peer:
    """Endpoints that behave like other projects' servers; counts what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, last-event-id)

    def seen(self, request: Request) -> str:
        last = request.headers.get("last-event-id", "")
        self.requests.append((request.method, request.url.path, last))
        return last

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r[1] == path)

    def app(self) -> Starlette:
        async def ignores(request: Request) -> Response:
            """ids 1..5, a clean end, Last-Event-ID ignored (sse-starlette's examples)."""
            self.seen(request)

            async def body() -> AsyncIterator[bytes]:
                yield _ids("1", "2", "3", "4", "5")

            return _sse(body())

        async def empty_past_end(request: Request) -> Response:
            """ids 1..3, then an empty 200 on resume (what `fastapi.sse` can answer)."""
            last = self.seen(request)

            async def body() -> AsyncIterator[bytes]:
                if not last:
                    yield _ids("1", "2", "3")

            return _sse(body())

        async def cut_then_replay(request: Request) -> Response:
            """ids 1..10; the first connection is cut after 6; every one starts at 1."""
            first = self.count("/cut") == 0
            self.seen(request)

            async def body() -> AsyncIterator[bytes]:
                for i in range(1, 11):
                    yield _ids(str(i))
                    if first and i == 6:
                        raise Abort

            return _sse(body())

        async def stall(request: Request) -> Response:
            """`retry:` lines (one in a block not yet dispatched), then silence."""
            self.seen(request)
            wire = request.query_params["wire"].encode().decode("unicode_escape").encode()

            async def body() -> AsyncIterator[bytes]:
                yield wire
                await asyncio.sleep(30)

            return _sse(body())

        async def retry0(request: Request) -> Response:
            """`retry: 0`, then the connection is cut: no event, ever."""
            self.seen(request)

            async def body() -> AsyncIterator[bytes]:
                yield b"retry: 0\n\n"
                raise Abort

            return _sse(body())

        async def job(request: Request) -> Response:
            """POST: ids 1..3, then cut. GET with Last-Event-ID k: k+1..6, [DONE]."""
            last = self.seen(request)
            start = int(last) + 1 if last.isdigit() else 1
            if request.method == "POST":
                await request.body()

            async def body() -> AsyncIterator[bytes]:
                for i in range(start, 7):
                    if request.method == "POST" and i == 4:
                        raise Abort
                    yield _ids(str(i))
                yield b"data: [DONE]\n\n"

            return _sse(body())

        return Starlette(
            routes=[
                Route("/ignores", ignores),
                Route("/empty", empty_past_end),
                Route("/cut", cut_then_replay),
                Route("/stall", stall),
                Route("/retry0", retry0),
                Route("/job", job, methods=["GET", "POST"]),
                Route("/job/resume", job, methods=["GET"]),
            ]
        )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Peer]]:
    logging.getLogger("uvicorn.error").addFilter(_not_abort)
    peer = Peer()
    with run_asgi(peer.app()) as url:
        yield url, peer


@pytest.fixture
def peer(served: tuple[str, Peer]) -> tuple[str, Peer]:
    served[1].requests.clear()
    return served


def test_a_server_that_ignores_last_event_id_is_read_once(peer: tuple[str, Peer]) -> None:
    url, server = peer
    started = time.monotonic()
    with pytest.warns(SSEResumeWarning, match="does not resume"):
        got = collect(f"{url}/ignores")
    assert [ev.id for ev in got] == ["1", "2", "3", "4", "5"]
    assert server.requests == [("GET", "/ignores", ""), ("GET", "/ignores", "5")]
    assert time.monotonic() - started < LIMIT


def test_an_empty_200_past_the_end_ends_quietly(peer: tuple[str, Peer]) -> None:
    url, server = peer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = collect(f"{url}/empty")
    assert [ev.id for ev in got] == ["1", "2", "3"]
    assert server.count("/empty") == 2


def test_a_replay_after_a_drop_yields_each_event_once(peer: tuple[str, Peer]) -> None:
    url, server = peer
    with pytest.warns(SSEResumeWarning) as record:
        got = collect(f"{url}/cut")
    assert [ev.id for ev in got] == [str(i) for i in range(1, 11)]
    assert [r[2] for r in server.requests] == ["", "6", "10"]  # then its clean end replays
    said = [str(w.message) for w in record]
    assert ["skipping what it replays" in m for m in said] == [True, False]
    assert "the stream is over" in said[1]


def _parser_reads_lines_at_once() -> bool:
    """Whether the core parser sets `retry` when a line completes inside an open block."""
    parser = EventParser()
    parser.feed(b"data: a\n\nretry: 5000\n")
    return parser.retry == 5000


STALLS = [
    pytest.param(r"retry: 1234\n\n", 1234, id="a retry block, then silence"),
    pytest.param(r"retry: 1234\n", 1234, id="a retry line, no blank line yet"),
    pytest.param(
        r"data: a\n\nretry: 4321\n",
        4321,
        id="a retry line after an event, block open",
        marks=pytest.mark.xfail(
            not _parser_reads_lines_at_once(),
            reason="until the core parser reads each line as it completes (issue 27, hcore)",
        ),
    ),
]


@pytest.mark.parametrize(("wire", "retry"), STALLS)
def test_a_new_retry_counts_as_soon_as_its_line_completes(
    peer: tuple[str, Peer], wire: str, retry: int
) -> None:
    url, _ = peer
    es = EventSource(f"{url}/stall", params={"wire": wire}, reconnect="never")
    reader = threading.Thread(target=lambda: list(es), daemon=True)
    reader.start()
    try:
        wait_until(lambda: es.retry == retry, timeout=LIMIT)
        assert es.state == "open"  # learnt while the stream stalls, before any end
    finally:
        es.close()
        reader.join(LIMIT)
    assert not reader.is_alive()


def test_retry_0_without_progress_backs_off_from_the_floor(peer: tuple[str, Peer]) -> None:
    url, server = peer
    policy = RetryPolicy(initial=0.5, maximum=4.0, jitter=0.0, floor=0.05)
    started = time.monotonic()
    with pytest.raises(SSERetriesExhausted) as info:
        list(EventSource(f"{url}/retry0", retry_policy=policy, max_retries=4))
    took = time.monotonic() - started
    assert info.value.attempts == 5
    assert server.count("/retry0") == 5
    # 0 (retry: 0 honoured once), then 0.1, 0.2, 0.4 from the floor: not 5 attempts in 4 ms
    assert 0.1 + 0.2 + 0.4 <= took < LIMIT


@pytest.mark.parametrize("resume", ["get", "/job/resume"], ids=["same URL", "another path"])
def test_a_post_resumes_by_get_with_last_event_id(peer: tuple[str, Peer], resume: str) -> None:
    url, server = peer
    got = collect(f"{url}/job", method="POST", json={"run": 1}, resume=resume)
    assert [ev.id for ev in got] == ["1", "2", "3", "4", "5", "6"]
    path = "/job" if resume == "get" else resume
    assert server.requests == [("POST", "/job", ""), ("GET", path, "3")]


def test_a_post_is_never_sent_twice_by_default(peer: tuple[str, Peer]) -> None:
    url, server = peer
    got: list[Event] = []
    es = EventSource(f"{url}/job", method="POST", json={"run": 1}, retry_policy=QUICK)
    with pytest.raises(SSEStreamInterrupted) as info:
        got.extend(es)
    assert [ev.id for ev in got] == ["1", "2", "3"]
    assert (info.value.received, info.value.last_event_id, info.value.status) == (3, "3", 200)
    assert server.requests == [("POST", "/job", "")]


# ------------------------------------------------------------------ shortened values

HUGE = "x" * 10_000_000


def test_huge_values_are_shortened_in_messages_and_reprs() -> None:
    err = SSEError(HUGE, url="http://h/" + HUGE, last_event_id=HUGE, body=HUGE)
    for text in (str(err), repr(err)):
        assert len(text) < 3000
        assert re.search(r"…x+' \(10,000,\d{3} chars\)", text)
    assert err.last_event_id == HUGE  # the attribute keeps the value whole
    es = EventSource("http://127.0.0.1:1/" + HUGE, last_event_id=HUGE)
    assert len(repr(es)) < 1000
    plan = _plan(last_event_id=HUGE)
    plan.begin()
    plan.opened(200, {"content-type": "text/" + HUGE})
    assert len(str(plan.response_error("content-type", b""))) < 3000
