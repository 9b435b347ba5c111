"""Specification of resuming (`ssenb/client/_resume.py` and the plan's resume rules).

Issue 28: a request other than GET is never sent again unless the caller says how to resume;
a reconnection never yields an event twice, whatever the server does with `Last-Event-ID`.
Here the pure rules (no sockets); tests/test_client_resume_live.py has the same rules on the
wire, against endpoints that behave like the servers of other projects.
"""

from __future__ import annotations

import re
import warnings

import pytest

from ssenb import (
    Event,
    EventSource,
    RetryPolicy,
    SSEError,
    SSEResumeWarning,
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
    ("only an id-less event (a hub's error while its store is down): retried",
     [b"event: error\ndata: down\n\n"], ["down"], False, False),
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


GREETING = b"event: connected\ndata: ok\n\n"
OPENINGS = [
    ("its greeting, then the stream again", GREETING + _ids("1", "2"), [], True),
    ("its greeting, then new ids", GREETING + _ids("3"), ["d3"], False),
    ("a new id-less notice, then new ids", b"event: gap\ndata: x\n\n" + _ids("3"),
     ["x", "d3"], False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "yielded", "ends"), [o[1:] for o in OPENINGS], ids=[o[0] for o in OPENINGS]
)
def test_a_copy_of_a_connections_opening_event_is_not_new(
    body: bytes, yielded: list[str], ends: bool
) -> None:
    plan = _plan()
    _connection(plan, GREETING, _ids("1", "2"))  # two reads: the greeting is the first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SSEResumeWarning)
        got, over, delay = _connection(plan, body)
    assert (got, over or delay is None) == (yielded, ends)


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
