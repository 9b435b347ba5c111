"""Specification of the client's pure decision core (`ssenb/client/_policy.py`).

No sockets and no sleeping: `classify` maps a response to what happens next, `RetryPolicy`
gives delays as a pure function of (attempt, server retry), and `StreamPlan` decides after
each connection whether to resume, stop quietly or raise, exactly as DESIGN.md's "End of a
stream" says.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssenb import (
    SSEContentTypeError,
    SSEError,
    SSEIdleTimeout,
    SSERetriesExhausted,
    SSEStatusError,
    encode,
)
from ssenb._models import Event
from ssenb.client import RetryPolicy
from ssenb.client._policy import BODY_HEAD, StreamPlan, classify

SSE = "text/event-stream"

# ---------------------------------------------------------------------------- classify

CLASSIFY = [
    ("200 event-stream streams", 200, SSE, "stream"),
    ("charset parameter allowed", 200, "text/event-stream; charset=utf-8", "stream"),
    ("media type is case-insensitive", 200, "Text/Event-Stream", "stream"),
    ("other 2xx with the right type streams", 201, SSE, "stream"),
    ("204 stops quietly", 204, SSE, "stop"),
    ("204 without a type stops quietly", 204, None, "stop"),
    ("json is the wrong type", 200, "application/json", "content-type"),
    ("missing type is the wrong type", 200, None, "content-type"),
    ("html error page", 200, "text/html; charset=utf-8", "content-type"),
    ("prefix is not enough", 200, "text/event-streamx", "content-type"),
    ("400 is fatal", 400, "text/plain", "fatal"),
    ("401 is fatal", 401, None, "fatal"),
    ("404 is fatal", 404, SSE, "fatal"),
    ("unfollowed 304 is fatal", 304, None, "fatal"),
    ("408 is retried", 408, None, "retry"),
    ("429 is retried", 429, None, "retry"),
    ("500 is retried", 500, "text/html", "retry"),
    ("503 is retried", 503, None, "retry"),
]


@pytest.mark.parametrize(
    ("status", "ctype", "verdict"), [c[1:] for c in CLASSIFY], ids=[c[0] for c in CLASSIFY]
)
def test_classify(status: int, ctype: str | None, verdict: str) -> None:
    assert classify(status, ctype) == verdict


# ---------------------------------------------------------------------------- RetryPolicy

P = RetryPolicy(initial=0.5, maximum=8.0, multiplier=2.0, jitter=0.0, max_server_retry=30.0)

BOUNDS = [
    ("attempt 0 (clean end) waits the base", P, 0, None, P.initial),
    ("first failure waits the base", P, 1, None, P.initial),
    ("second failure doubles", P, 2, None, P.initial * P.multiplier),
    ("fourth failure", P, 4, None, P.initial * P.multiplier**3),
    ("capped at maximum", P, 10, None, P.maximum),
    ("server retry replaces initial", P, 1, 2000, 2.0),
    ("server retry grows too", P, 2, 2000, 4.0),
    ("server retry above maximum is honoured", P, 1, 20_000, 20.0),
    ("server retry above maximum does not grow", P, 3, 20_000, 20.0),
    ("server retry bounded by max_server_retry", P, 1, 3_600_000, P.max_server_retry),
    ("server retry 0 means at once", P, 1, 0, 0.0),
    ("retry 0 failing again grows from the floor", P, 2, 0, P.floor * P.multiplier),
    ("retry 0 fifth failure", P, 5, 0, P.floor * P.multiplier**4),
    ("retry 0 with floor 0 spins (opt-in)", dataclasses.replace(P, floor=0.0), 5, 0, 0.0),
    ("a floor above maximum is capped", dataclasses.replace(P, floor=20.0), 3, 0, P.maximum),
    ("huge attempt does not overflow", P, 10**6, None, P.maximum),
    (
        "huge multiplier does not overflow",
        dataclasses.replace(P, multiplier=1e300),
        400,
        None,
        P.maximum,
    ),
    ("multiplier 1 is a constant delay", dataclasses.replace(P, multiplier=1.0), 9, None, 0.5),
]


@pytest.mark.parametrize(
    ("policy", "attempt", "server_ms", "high"), [b[1:] for b in BOUNDS], ids=[b[0] for b in BOUNDS]
)
def test_retry_policy_bounds(
    policy: RetryPolicy, attempt: int, server_ms: int | None, high: float
) -> None:
    low, got = policy.bounds(attempt, server_ms)
    assert got == pytest.approx(high)
    assert low == pytest.approx(high * (1 - policy.jitter))


@given(
    attempt=st.integers(0, 200),
    server_ms=st.none() | st.integers(0, 10**9),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_retry_policy_delay_stays_within_bounds(
    attempt: int, server_ms: int | None, jitter: float, rand: float
) -> None:
    policy = dataclasses.replace(P, jitter=jitter)
    low, high = policy.bounds(attempt, server_ms)
    delay = policy.delay(attempt, server_ms, rand)
    assert low - 1e-12 <= delay <= high + 1e-12
    assert high <= max(policy.maximum, policy.max_server_retry)


def test_retry_policy_jitter_spreads_delays_over_its_range() -> None:
    policy = dataclasses.replace(P, jitter=0.5)
    low, high = policy.bounds(3)
    assert policy.delay(3, rand=0.0) == pytest.approx(low)
    assert policy.delay(3, rand=0.5) == pytest.approx((low + high) / 2)
    delays = {policy.delay(3) for _ in range(50)}
    assert len(delays) > 1
    assert all(low <= d <= high for d in delays)


def test_retry_policy_is_immutable_and_a_value() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.initial = 3.0  # type: ignore[misc]
    assert policy == RetryPolicy()
    assert hash(policy) == hash(RetryPolicy())


INVALID = [
    ("negative initial", {"initial": -1.0}),
    ("nan initial", {"initial": math.nan}),
    ("infinite maximum", {"maximum": math.inf}),
    ("multiplier below 1 would shrink", {"multiplier": 0.5}),
    ("jitter above 1", {"jitter": 1.5}),
    ("negative jitter", {"jitter": -0.1}),
    ("negative max_server_retry", {"max_server_retry": -5.0}),
    ("negative floor", {"floor": -0.1}),
]


@pytest.mark.parametrize("kwargs", [i[1] for i in INVALID], ids=[i[0] for i in INVALID])
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)


# ---------------------------------------------------------------------------- StreamPlan

FAST = RetryPolicy(initial=0.25, maximum=4.0, multiplier=2.0, jitter=0.0)
WITH_ID = encode(Event(data="a", id="1"))
WITH_RETRY = b"retry: 40\n\n" + encode(Event(data="a"))
NO_ID = encode(Event(data="a"))


def _plan(**kwargs: object) -> StreamPlan:
    kwargs.setdefault("policy", FAST)
    return StreamPlan("http://127.0.0.1:1/s", **kwargs)  # type: ignore[arg-type]


def _connection(plan: StreamPlan, body: bytes, error: SSEError | None = None) -> float | None:
    """One connection through the plan: begin, open, stream `body` (one read), end (maybe
    broken). What the plan lets through is in `plan.delivered_now`."""
    parser = plan.begin()
    assert plan.opened(200, {"content-type": SSE}) == "stream"
    events, _ = plan.received(parser.feed(body))
    plan.delivered_now = events  # type: ignore[attr-defined]
    return plan.end(len(events), error)


def _drop() -> SSEError:
    return SSEError("connection failed: RemoteProtocolError")


# mode, method, body, broken -> resumes?
END_RULES = [
    ("auto GET with ids resumes after a clean end", "auto", "GET", WITH_ID, False, True),
    ("auto GET with retry resumes after a clean end", "auto", "GET", WITH_RETRY, False, True),
    ("auto GET without ids stops at a clean end", "auto", "GET", NO_ID, False, False),
    ("auto GET without ids resumes after an error", "auto", "GET", NO_ID, True, True),
    ("auto GET with ids resumes after an error", "auto", "GET", WITH_ID, True, True),
    ("auto POST without ids never re-sent (clean)", "auto", "POST", NO_ID, False, False),
    ("auto POST without ids never re-sent (error)", "auto", "POST", NO_ID, True, False),
    ("auto POST with ids never re-sent (clean)", "auto", "POST", WITH_ID, False, False),
    ("auto POST with ids never re-sent (error)", "auto", "POST", WITH_ID, True, False),
    ("always resumes a clean end without ids", "always", "GET", NO_ID, False, True),
    ("never stops at a clean end with ids", "never", "GET", WITH_ID, False, False),
    ("never stops after an error", "never", "GET", WITH_ID, True, False),
]


@pytest.mark.parametrize(
    ("mode", "method", "body", "broken", "resumes"),
    [r[1:] for r in END_RULES],
    ids=[r[0] for r in END_RULES],
)
def test_end_of_a_stream_rules(
    mode: str, method: str, body: bytes, broken: bool, resumes: bool
) -> None:
    plan = _plan(reconnect=mode, method=method)
    error = _drop() if broken else None
    if resumes:
        delay = _connection(plan, body, error)
        assert delay is not None
        assert plan.state == "reconnecting"
    elif broken:
        with pytest.raises(SSEError) as info:
            _connection(plan, body, error)
        # a broken POST says what arrived (SSEStreamInterrupted), the cause chained
        assert error in (info.value, info.value.__cause__)
        assert plan.state == "closed"
    else:
        assert _connection(plan, body, error) is None
        assert plan.state == "closed"


def test_server_retry_sets_the_delay_and_persists() -> None:
    plan = _plan()
    assert _connection(plan, WITH_RETRY) == pytest.approx(0.040)
    assert _connection(plan, WITH_ID, _drop()) == pytest.approx(0.040)  # progress: attempt 1
    assert plan.server_retry == 40


def test_consecutive_failures_back_off_and_exhaust() -> None:
    plan = _plan(max_retries=3)
    delays = [_connection(plan, b"", _drop()) for _ in range(3)]
    assert delays == [FAST.delay(n, None, 0.0) for n in (1, 2, 3)]
    with pytest.raises(SSERetriesExhausted) as info:
        _connection(plan, b"", _drop())
    err = info.value
    assert err.attempts == 4
    assert isinstance(err.__cause__, SSEError)
    assert err.url == plan.url
    assert plan.state == "closed"


# on a stream with ids: what one more connection brings -> resets the failure count?
GAP, ERROR = encode(Event("gap", "{}")), encode(Event("error", "{}"))
PROGRESS = [
    ("a new id", encode(Event(data="b", id="2")), True),
    ("the same id again (a server replaying itself)", WITH_ID, False),
    ("only an id-less error event (Redis down)", ERROR, False),
    ("an id-less gap, then a new id", GAP + encode(Event(id="3")), True),
]


@pytest.mark.parametrize(
    ("body", "resets"), [r[1:] for r in PROGRESS], ids=[r[0] for r in PROGRESS]
)
def test_on_a_stream_with_ids_only_a_new_id_is_progress(body: bytes, resets: bool) -> None:
    plan = _plan(max_retries=5)
    _connection(plan, WITH_ID, _drop())
    _connection(plan, b"", _drop())
    _connection(plan, body)
    assert plan.failures == (0 if resets else 3)
    if resets:  # a fresh count: max_retries failures again before giving up
        for _ in range(5):
            _connection(plan, b"", _drop())
        with pytest.raises(SSERetriesExhausted):
            _connection(plan, b"", _drop())
    plan = _plan(max_retries=5)  # without ids, any event is progress
    _connection(plan, b"", _drop())
    _connection(plan, NO_ID)
    assert plan.failures == 0


def test_an_empty_connection_fails_after_a_drop_and_ends_it_after_a_clean_end() -> None:
    plan = _plan(max_retries=5)
    _connection(plan, WITH_ID, _drop())  # resumable; a drop is one failure
    assert _connection(plan, b"", _drop()) == FAST.delay(2, None, 0)
    assert _connection(plan, b"") == FAST.delay(3, None, 0)  # empty after a drop: failed
    assert _connection(plan, b"") is None  # empty after a clean end: over, quietly
    assert (plan.state, plan.failures) == ("closed", 3)


def test_max_retries_none_never_gives_up() -> None:
    plan = _plan(max_retries=None)
    delays = [_connection(plan, b"", _drop()) for _ in range(100)]
    assert plan.failures == 100
    assert delays[-1] == FAST.maximum
    assert delays == sorted(delays)


@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
def test_retry_after_lengthens_the_delay_within_max_server_retry(status: int) -> None:
    plan = _plan()
    plan.begin()
    plan.opened(status, {"retry-after": "7", "content-type": "text/plain"})
    err = plan.response_error("retry", b"slow down")
    assert plan.end(0, err) == pytest.approx(7.0)
    plan.begin()
    plan.opened(status, {"retry-after": "99999"})
    assert plan.end(0, plan.response_error("retry", b"")) == FAST.max_server_retry


RESPONSE_ERRORS = [
    ("404 is a fatal status error", 404, "fatal", SSEStatusError, True),
    ("json is a content type error", 200, "content-type", SSEContentTypeError, True),
    ("503 is a retryable status error", 503, "retry", SSEStatusError, False),
]


@pytest.mark.parametrize(
    ("status", "verdict", "kind", "closes"),
    [r[1:] for r in RESPONSE_ERRORS],
    ids=[r[0] for r in RESPONSE_ERRORS],
)
def test_response_errors_carry_context(
    status: int, verdict: str, kind: type[SSEError], closes: bool
) -> None:
    plan = _plan(last_event_id="9")
    plan.begin()
    headers = {"content-type": "application/json", "x-why": "because"}
    plan.opened(status, headers)
    body = "é".encode() * BODY_HEAD + b"\xff"
    err = plan.response_error(verdict, body)  # type: ignore[arg-type]
    assert type(err) is kind
    assert (err.status, err.headers["x-why"], err.last_event_id) == (status, "because", "9")
    assert err.body == body[:BODY_HEAD].decode("utf-8", "replace")
    assert (plan.state == "closed") is closes


def test_network_errors_are_typed_and_chained() -> None:
    plan = _plan(idle_timeout=3.0)
    plan.begin()
    cause = TimeoutError("read timed out")
    idle = plan.network_error(cause, idle=True)
    assert isinstance(idle, SSEIdleTimeout)
    assert isinstance(idle, TimeoutError)
    assert idle.__cause__ is cause
    assert "idle_timeout=3.0" in str(idle)
    other = plan.network_error(ConnectionResetError("reset"), idle=False)
    assert type(other) is SSEError
    assert "ConnectionResetError" in str(other)


def test_request_headers_on_every_attempt() -> None:
    plan = _plan()
    auth = {"Authorization": "Bearer t0ken"}
    first = plan.request_headers(auth)
    assert first == {"Accept": SSE, "Cache-Control": "no-cache", **auth}
    _connection(plan, WITH_ID, _drop())
    plan.begin()
    again = plan.request_headers(auth)
    assert again == {**first, "Last-Event-ID": "1"}


def test_the_last_event_id_survives_a_dropped_half_event() -> None:
    plan = _plan()
    parser = plan.begin()
    parser.feed(WITH_ID + b"id: 2\ndata: half")  # cut before the blank line
    plan.end(1, _drop())
    assert plan.last_event_id == "1"
    assert plan.begin().feed(b"\n\n") == []  # the half event is gone for good


def test_states_are_announced_once_per_change() -> None:
    seen: list[str] = []
    plan = _plan(on_state=seen.append)
    _connection(plan, WITH_ID, _drop())
    _connection(plan, WITH_ID)
    plan.begin()
    plan.opened(204, {})
    plan.close()
    assert seen == ["connecting", "open", "reconnecting", "open", "reconnecting", "closed"]
    assert plan.reconnects == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"reconnect": "sometimes"}, {"max_retries": -1}],
    ids=["unknown reconnect mode", "negative max_retries"],
)
def test_plan_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        _plan(**kwargs)


def test_a_failed_reconnect_carries_no_stale_response() -> None:
    plan = _plan()
    _connection(plan, WITH_ID, _drop())
    assert plan.status == 200
    plan.begin()
    err = plan.network_error(ConnectionRefusedError("refused"), idle=False)
    assert (err.status, err.headers, plan.status) == (None, {}, None)
    assert err.last_event_id == "1"
