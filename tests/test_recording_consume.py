"""`ssenb.recording._consume.consume`: the blocking reader behind `collect` and `record`."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

import ssenb
from ssenb import Event
from ssenb.recording._consume import consume
from ssenb.server import EventStreamResponse


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/silent")
    async def silent() -> EventStreamResponse:
        async def gen() -> AsyncIterator[Event]:
            yield Event(data="first", id="1")
            await asyncio.sleep(3600)

        return EventStreamResponse(gen(), heartbeat=None)

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
    assert not any(t.name == "ssenb-consume" and t.is_alive() for t in threading.enumerate())
