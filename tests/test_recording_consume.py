"""`ssenb.recording._consume.consume`: the blocking reader behind `collect` and `record`,
on the runtime's shared loop; a stream that never opened is an error, on time."""

from __future__ import annotations

import _thread
import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

import ssenb
from ssenb import Event
from ssenb.recording import SSEConnectTimeout
from ssenb.recording._consume import consume
from ssenb.server import EventStreamResponse

ENVELOPE = ["time", "event", "id", "retry", "data"]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/silent")
    async def silent() -> EventStreamResponse:
        async def gen() -> AsyncIterator[Event]:
            yield Event(data="first", id="1")
            await asyncio.sleep(3600)

        return EventStreamResponse(gen(), heartbeat=None)

    @app.get("/unavailable")
    async def unavailable() -> Response:
        return Response("busy", status_code=503)

    return app


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    with (
        ssenb.serve(name="test_record_consume_demo") as demo,
        ssenb.serve(_app(), name="test_record_consume") as own,
    ):
        yield demo.url, own.url


def _run(url: str, **kwargs: Any) -> tuple[int, list[Event], float]:
    got: list[Event] = []
    started = time.monotonic()
    count = consume(url, lambda ev, at: got.append(ev), **kwargs)
    return count, got, time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "kwargs", "ids"),
    [
        ("/stream?n=4&interval=0", {}, ["1", "2", "3", "4"]),
        ("/ticks?n=0&rate=0", {"n": 3}, ["1", "2", "3"]),
        ("/ticks?n=0&rate=0", {"until": lambda ev: ev.id == "2"}, ["1", "2"]),
        ("/ticks?n=0&rate=0", {"n": 0}, []),
    ],
    ids=["end-of-stream", "n", "until-includes-its-event", "n-zero"],
)
def test_stops_at_the_first_rule_met(
    urls: tuple[str, str], path: str, kwargs: dict[str, Any], ids: list[str]
) -> None:
    count, got, _ = _run(urls[0] + path, **kwargs)
    assert count == len(got)
    assert [ev.id for ev in got] == ids


def test_timeout_is_honoured_when_the_server_is_silent(urls: tuple[str, str]) -> None:
    count, got, took = _run(urls[1] + "/silent", timeout=0.3)
    assert count == 1
    assert [ev.data for ev in got] == ["first"]
    assert 0.3 <= took < 5 * 0.3


def test_works_inside_a_running_event_loop(urls: tuple[str, str]) -> None:
    """As in a Jupyter cell: the caller's loop is running and is never re-entered."""

    async def cell() -> int:
        return consume(urls[0] + "/stream?n=3&interval=0", lambda ev, at: None)

    assert asyncio.run(cell()) == 3


def test_client_errors_are_raised_in_the_caller(urls: tuple[str, str]) -> None:
    with pytest.raises(ssenb.SSEStatusError, match="404"):
        _run(urls[0] + "/no-such-endpoint")


def test_sink_errors_are_raised_in_the_caller(urls: tuple[str, str]) -> None:
    def sink(ev: Event, at: float) -> None:
        raise LookupError(ev.id)

    with pytest.raises(LookupError, match="1"):
        consume(urls[0] + "/stream?n=3&interval=0", sink)


def test_ctrl_c_stops_the_worker_then_reaches_the_caller(urls: tuple[str, str]) -> None:
    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _run(urls[1] + "/silent")
    assert time.monotonic() - started < 5 * 0.3
    assert consume(urls[0] + "/stream?n=2&interval=0", lambda ev, at: None) == 2  # loop goes on


def test_reads_run_on_the_shared_runtime_loop_not_a_thread_per_call(urls: tuple[str, str]) -> None:
    names: set[str] = set()
    before = threading.active_count()
    for _ in range(3):
        consume(urls[0] + "/stream?n=2&interval=0", lambda ev, at: names.add(_current()))
    assert names == {"ssenb-loop"}
    assert threading.active_count() <= before + 1  # at most the shared loop, started once


def _current() -> str:
    return threading.current_thread().name


# --- a stream that never opened is an error, within the timeout ---------------------------


@pytest.fixture(scope="module")
def dead_ends(urls: tuple[str, str]) -> Iterator[dict[str, str]]:
    """Loopback places where no stream ever opens: a closed port, a listener that accepts
    TCP and never answers, a server that answers 503 every time."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()[1]
    closed.close()
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    yield {
        "refused": f"http://127.0.0.1:{refused}/s",
        "never-answers": f"http://127.0.0.1:{mute.getsockname()[1]}/s",
        "always-503": urls[1] + "/unavailable",
    }
    mute.close()


DEAD_ENDS = [
    ("refused", httpx.ConnectError, None),
    ("never-answers", TimeoutError, None),
    ("always-503", TimeoutError, 503),
]
CALLERS = ["consume", "collect", "record-jsonl", "record-parquet"]
TIMEOUT = 1.0
PROMISE = 0.5  # a timeout holds within this


def _call(caller: str, url: str, tmp_path: Path) -> Any:
    if caller == "consume":
        return consume(url, lambda ev, at: None, timeout=TIMEOUT)
    if caller == "collect":
        return ssenb.collect(url, timeout=TIMEOUT, record=tmp_path / "c.jsonl")
    fmt = "jsonl" if caller == "record-jsonl" else "parquet"
    return ssenb.record(url, tmp_path / "out", timeout=TIMEOUT, format=fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("where", "cause", "status"), DEAD_ENDS, ids=[d[0] for d in DEAD_ENDS])
def test_a_stream_that_never_opened_raises_within_the_timeout_and_leaves_no_file(
    dead_ends: dict[str, str],
    tmp_path: Path,
    caller: str,
    where: str,
    cause: type[BaseException],
    status: int | None,
) -> None:
    started = time.monotonic()
    with pytest.raises(SSEConnectTimeout, match=r"did not open within timeout=1\.0s") as info:
        _call(caller, dead_ends[where], tmp_path)
    took = time.monotonic() - started
    assert TIMEOUT <= took < TIMEOUT + 5 * PROMISE
    err = info.value
    assert isinstance(err, ssenb.SSEError)
    assert isinstance(err, TimeoutError)
    assert isinstance(err.__cause__, cause)
    assert err.url == dead_ends[where]
    assert err.status == status
    assert err.attempts >= 1
    if caller == "collect":
        assert list(err.partial.columns) == ENVELOPE
        assert len(err.partial) == 0
    elif caller.startswith("record"):
        assert err.partial == 0
    assert list(tmp_path.iterdir()) == []  # no empty file or folder left behind


def test_an_unknown_source_keyword_fails_at_the_call(dead_ends: dict[str, str]) -> None:
    started = time.monotonic()
    for call in (ssenb.collect, lambda url, **kw: ssenb.record(url, "never.jsonl", **kw)):
        with pytest.raises(TypeError, match="'idle_timout'"):
            call(dead_ends["refused"], idle_timout=1)
    assert time.monotonic() - started < 1  # no connection was tried
    assert not Path("never.jsonl").exists()
