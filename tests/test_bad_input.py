"""The bad-input matrix (issue 11): one row per kind of bad input, its expected outcome
written down, and in every row the events received before the fault are kept.

Each row is a `ScriptedOrigin` (tests/_origins.py) on 127.0.0.1: connection k is answered by
step k (the last repeats). Most rows first stream ids 1..3 and cut the connection, so the
fault meets a client that already holds events and resumes with `Last-Event-ID: 3`.

| row                          | expected outcome                                             |
| ---------------------------- | ------------------------------------------------------------ |
| non-SSE content type         | SSEContentTypeError with status and body excerpt; no retry   |
| HTML error page with 500     | retried max_retries times, SSERetriesExhausted from a 500    |
| 4xx with a body              | SSEStatusError with the body excerpt; no retry               |
| 204                          | quiet end                                                    |
| redirect                     | followed, Last-Event-ID kept, the stream completes           |
| gzip stream cut mid-body     | decoded, resumed, completes                                  |
| chunked body cut mid-chunk   | resumed, completes                                           |
| NUL bytes, invalid UTF-8     | NUL kept in data, invalid bytes become U+FFFD, NUL id ignored |
| retry: of 5,000 digits       | clamped (no int-string-limit ValueError), resumed, completes |
| retry: in a pending block    | acts at once: the resume waits 10 ms, not the policy's 3 s    |
| absurd retry in a pending block | clamped, the policy caps the wait, completes              |
| a non-ASCII id               | resumed: Last-Event-ID carries its UTF-8 bytes, as browsers send |
| a 10 MB id                   | ignored like a NUL id: the resume sends Last-Event-ID 3       |
| never sends headers          | SSEIdleTimeout (after the retries: SSERetriesExhausted)      |
| slow-loris body              | SSEIdleTimeout when a gap exceeds idle_timeout               |
| 100 MB line                  | SSEEventTooLarge, memory bounded, reading stops early        |
| JSONL torn + malformed lines | JSONLDecodeError naming the line, .partial; skip keeps rest  |
| a field changing type        | SchemaWarning, the column becomes text, no row lost          |
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from _origins import (
    SSE_HEAD,
    Request,
    ScriptedOrigin,
    Step,
    ev,
    gzipped,
    no_headers,
    raw,
    send_head,
    sse,
    status,
    trickle,
)
from _proxy import LoopThread

import ssenb
from ssenb import (
    Event,
    EventSource,
    RetryPolicy,
    SSEContentTypeError,
    SSEError,
    SSEEventTooLarge,
    SSEIdleTimeout,
    SSERetriesExhausted,
    SSEStatusError,
)
from ssenb.recording import JSONLDecodeError, SchemaWarning

QUICK = RetryPolicy(initial=0.005, maximum=0.02, jitter=0.0)


# -- the matrix -----------------------------------------------------------------------------


@dataclass
class Row:
    steps: list[Step]
    error: type[BaseException] | None
    kept: list[Event]
    source_kw: dict[str, Any] = field(default_factory=dict)
    check: Callable[[BaseException | None, ScriptedOrigin], None] | None = None


def _kept(*ids: int) -> list[Event]:
    return [Event(data=f"e{i}", id=str(i)) for i in ids]


def _check_content_type(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert isinstance(err, SSEContentTypeError)
    assert err.status == 200
    assert "<h1>Maintenance</h1>" in (err.body or "")
    assert err.last_event_id == "3"
    assert len(origin.requests) == 2


def _check_500(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert isinstance(err, SSERetriesExhausted)
    cause = err.__cause__
    assert isinstance(cause, SSEStatusError)
    assert cause.status == 500
    assert "Internal Server Error" in (cause.body or "")
    assert len(origin.requests) == 1 + 3  # the stream, then max_retries=2 retries + 1 last try
    assert {r.last_event_id for r in origin.requests[1:]} == {"3"}


def _check_4xx(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert isinstance(err, SSEStatusError)
    assert err.status == 403
    assert err.body is not None
    assert err.body.startswith("token expired")
    assert err.headers["x-why"] == "auth"
    assert len(origin.requests) == 2


def _check_redirect(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert [r.target for r in origin.requests] == ["/s", "/s", "/moved"]
    assert origin.requests[2].last_event_id == "3"


def _check_resumed(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert [r.last_event_id for r in origin.requests] == ["", "3"]


def _check_idle(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert isinstance(err, SSERetriesExhausted)
    assert isinstance(err.__cause__, SSEIdleTimeout)
    assert err.last_event_id == "3"


def _check_loris(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert isinstance(err, SSEIdleTimeout)
    assert err.last_event_id == "3"


def _check_resumed_from_3(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert [r.last_event_id for r in origin.requests] == ["", "3"]
    assert max(len(line) for r in origin.requests for line in r.headers.values()) < 4096


def _check_resumed_from_e2(err: BaseException | None, origin: ScriptedOrigin) -> None:
    assert [r.last_event_id for r in origin.requests] == ["", "é2".encode().decode("latin-1")]


def _stamped(step: Step) -> Step:
    """`step`, noting in the request when it was answered (read by the check)."""

    async def timed(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        req.headers["x-answered"] = str(time.monotonic())
        await step(req, r, w)

    return timed


def _check_quick_resume(err: BaseException | None, origin: ScriptedOrigin) -> None:
    _check_resumed_from_3(err, origin)
    first, second = (float(r.headers["x-answered"]) for r in origin.requests)
    assert second - first < 1.0  # retry: 10 applied, not the policy's 3 s


def _resumes(body: bytes, kw: dict[str, Any], check: Any = None, kept: Any = ()) -> Row:
    """Ids 1..3 in `body`, `kept` events, half of id 4 and a cut; then ids 4..6 and [DONE]."""
    steps = [_stamped(raw(body + b"id: 4\ndata: ha")), _stamped(sse(4, 6))]
    return Row(steps, None, [*_kept(1, 2, 3), *kept, *_kept(4, 5, 6)], kw,
               check or _check_resumed_from_3)  # fmt: skip


SLOW = {"retry_policy": RetryPolicy(initial=3.0, maximum=3.0, jitter=0.0)}
CAPPED = {"retry_policy": replace(QUICK, max_server_retry=0.05)}  # caps any retry: at 50 ms
E123 = ev(1) + ev(2) + ev(3)
NON_ASCII = "id: é1\ndata: e1\n\nid: é2\ndata: e2\n\ndata: ha".encode()  # resumed as UTF-8
BIG_ID = b"id: " + b"x" * (10 << 20) + b"\ndata: big\n\n"
NUL_BYTES = b"id: 1\ndata: a\x00b\xff\xfe\xc3(\n\nid: 2\x00\ndata: c\xe2\x82\n\ndata: [DONE]\n\n"
ROWS: dict[str, Row] = {
    "non-SSE content type": Row(
        [sse(1, 3, cut=True), status(200, "text/html", b"<h1>Maintenance</h1>")],
        SSEContentTypeError,
        _kept(1, 2, 3),
        check=_check_content_type,
    ),
    "HTML 500 page": Row(
        [sse(1, 3, cut=True), status(500, "text/html", b"<h1>Internal Server Error</h1>")],
        SSERetriesExhausted,
        _kept(1, 2, 3),
        {"max_retries": 2},
        _check_500,
    ),
    "4xx with a body": Row(
        [
            sse(1, 3, cut=True),
            status(403, body=b"token expired " + b"." * 5000, **{"X-Why": "auth"}),
        ],
        SSEStatusError,
        _kept(1, 2, 3),
        check=_check_4xx,
    ),
    "204": Row([sse(1, 3, cut=True), status(204)], None, _kept(1, 2, 3)),
    "redirect": Row(
        [sse(1, 3, cut=True), status(307, Location="/moved"), sse(4, 6)],
        None,
        _kept(*range(1, 7)),
        check=_check_redirect,
    ),
    "gzip stream cut mid-body": Row(
        [gzipped(1, 3, cut=True), gzipped(4, 6, cut=False)],
        None,
        _kept(*range(1, 7)),
        check=_check_resumed,
    ),
    "chunked body cut mid-chunk": Row(
        [sse(1, 3, cut=True, chunked=True), sse(4, 6, chunked=True)],
        None,
        _kept(*range(1, 7)),
        check=_check_resumed,
    ),
    "NUL bytes and invalid UTF-8": Row(
        [raw(NUL_BYTES)],
        None,
        [Event(data="a\x00b\ufffd\ufffd\ufffd(", id="1"), Event(data="c\ufffd", id="1")],
    ),
    "retry of 5,000 digits": _resumes(b"retry: " + b"9" * 5000 + b"\n\n" + E123, CAPPED),
    "retry: in a pending block": _resumes(E123 + b"retry: 10\n", SLOW, _check_quick_resume),
    "absurd retry in a pending block": _resumes(E123 + b"retry: 000" + b"9" * 30 + b"\n", CAPPED),
    "a non-ASCII id": Row([raw(NON_ASCII), sse(3, 3)], None, [Event(data="e1", id="é1"),
                          Event(data="e2", id="é2"), *_kept(3)], check=_check_resumed_from_e2),
    "a 10 MB id": _resumes(E123 + BIG_ID, {}, kept=[Event(data="big", id="3")]),
    "never sends headers": Row(
        [sse(1, 3, cut=True), no_headers],
        SSERetriesExhausted,
        _kept(1, 2, 3),
        {"idle_timeout": 0.2, "max_retries": 1},
        _check_idle,
    ),
    "slow-loris body": Row(
        [trickle(every=1.0)],
        SSEIdleTimeout,
        _kept(1, 2, 3),
        {"idle_timeout": 0.2, "reconnect": "never"},
        _check_loris,
    ),
}


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as lt:
        yield lt


def _serve(loop: LoopThread, steps: list[Step]) -> ScriptedOrigin:
    return loop.run(ScriptedOrigin(steps).start())


def _consume(url: str, **kw: Any) -> tuple[list[Event], BaseException | None]:
    """Iterate to the end; the events received and the error that ended it (or None)."""
    got: list[Event] = []
    options = {"retry_policy": QUICK, "idle_timeout": 2.0, **kw}
    try:
        with EventSource(url, **options) as es:
            for event in es:
                got.append(event)
    except SSEError as exc:
        return got, exc
    return got, None


async def _aconsume(url: str, **kw: Any) -> tuple[list[Event], BaseException | None]:
    """`_consume` with `async for`."""
    got: list[Event] = []
    options = {"retry_policy": QUICK, "idle_timeout": 2.0, **kw}
    try:
        async with EventSource(url, **options) as es:
            async for event in es:
                got.append(event)
    except SSEError as exc:
        return got, exc
    return got, None


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_row(loop: LoopThread, name: str, mode: str) -> None:
    row = ROWS[name]
    origin = _serve(loop, row.steps)
    url = origin.url + "/s"
    if mode == "sync":
        got, err = _consume(url, **row.source_kw)
    else:
        got, err = asyncio.run(_aconsume(url, **row.source_kw))
    assert got == row.kept  # what came before the fault is kept, in order, once
    if row.error is None:
        assert err is None
    else:
        assert type(err) is row.error, err
    if row.check is not None:
        row.check(err, origin)


@pytest.mark.timeout(20)
def test_a_slow_loris_under_the_idle_timeout_is_bounded_by_collect_timeout(
    loop: LoopThread,
) -> None:
    """A byte every 0.05 s never trips idle_timeout (that bounds silence, like heartbeats):
    a deadline is what ends it, and the events that completed are returned."""
    origin = _serve(loop, [trickle(every=0.05)])
    df = ssenb.collect(origin.url + "/s", timeout=0.6, idle_timeout=0.2, retry_policy=QUICK)
    assert df["id"].tolist() == ["1", "2", "3"]


@pytest.mark.timeout(30)
def test_a_100_mb_line_raises_too_large_with_bounded_memory(loop: LoopThread) -> None:
    sent = [0]

    async def huge(req: Request, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await send_head(w, 200, SSE_HEAD)
        w.write(ev(1) + ev(2) + b"data: ")
        block = b"x" * (256 << 10)
        while sent[0] < 100 << 20:
            w.write(block)
            await w.drain()
            sent[0] += len(block)
        w.write(b"\n\n")

    origin = _serve(loop, [huge])
    limit = 16 << 20  # the default max_event_bytes
    tracemalloc.start()
    try:
        got, err = _consume(origin.url + "/s", max_event_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == _kept(1, 2)
    assert isinstance(err, SSEEventTooLarge)
    assert err.last_event_id == "2"
    assert peak < 4 * limit  # bounded by the limit, not by the 100 MB line
    assert sent[0] < 60 << 20  # the client stopped reading soon after the limit


def test_nul_and_invalid_utf8_survive_a_recording(loop: LoopThread, tmp_path: Path) -> None:
    origin = _serve(loop, [raw(NUL_BYTES)])
    path = tmp_path / "nul.jsonl"
    assert ssenb.record(origin.url + "/s", path, retry_policy=QUICK) == 2
    df = ssenb.read_jsonl(path, parse_data=False)
    assert df["data"].tolist() == ["a\x00b\ufffd\ufffd\ufffd(", "c\ufffd"]


@pytest.mark.timeout(20)
def test_a_jsonl_file_with_torn_and_malformed_lines(loop: LoopThread, tmp_path: Path) -> None:
    """Recorded lines, then a malformed line, more recorded lines and a torn tail (a killed
    recorder): raise names the bad line with the rows before it; skip keeps every good row;
    recording again after the torn tail starts on a fresh line."""
    path = tmp_path / "rec.jsonl"
    origin = _serve(loop, [sse(1, 3)])
    assert ssenb.record(origin.url + "/s", path, retry_policy=QUICK) == 3
    with path.open("ab") as f:
        f.write(b'{"time": 1.0, "event": "message", "id": "x", "data": tru\n')  # malformed
        f.write(b'["not", "an", "object"]\n')
    assert ssenb.record(origin.url + "/s", path, retry_policy=QUICK) == 3
    with path.open("ab") as f:
        f.write(b'{"time": 2.0, "event": "message", "id": "9", "da')  # torn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the torn tail's warning
        with pytest.raises(JSONLDecodeError) as info:
            ssenb.read_jsonl(path)
    assert info.value.line == 4
    assert info.value.partial["id"].tolist() == ["1", "2", "3"]
    with pytest.warns(RuntimeWarning, match="skipped"):
        df = ssenb.read_jsonl(path, on_error="skip")
    assert df["id"].tolist() == ["1", "2", "3", "1", "2", "3"]
    assert ssenb.record(origin.url + "/s", path, retry_policy=QUICK) == 3  # after the torn tail
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        df = ssenb.read_jsonl(path, on_error="skip")
    assert df["id"].tolist() == ["1", "2", "3"] * 3


@pytest.mark.timeout(20)
def test_a_field_that_changes_type_across_batches(loop: LoopThread) -> None:
    """`v` is an int for 4 events, then text: SchemaWarning, the column is text, all 8 rows
    kept with their values."""
    values = [1, 2, 3, 4, "five", "six", 7, 8]
    body = b"".join(
        b"id: %d\ndata: %s\n\n" % (i, json.dumps({"v": v}).encode())
        for i, v in enumerate(values, 1)
    )
    origin = _serve(loop, [raw(body + b"data: [DONE]\n\n")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sub = ssenb.watch(origin.url + "/s", display=False, batch_size=2, retry_policy=QUICK)
        assert sub.wait(10)
        df = sub.df
    assert sub.error is None
    assert any(issubclass(w.category, SchemaWarning) for w in caught)
    assert df["id"].tolist() == [str(i) for i in range(1, 9)]
    assert [str(v) for v in df["data.v"]] == [str(v) for v in values]
