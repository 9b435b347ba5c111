"""The stream session (`_session.py`) both SSE responses run in: the same headers and
heartbeat rules, one live registry (status counts, server stop ends every kind of stream at
once), client disconnect seen within a loop turn, and a response of one's own built on it.
Real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from _apps import wait_until
from _hubs import subscribed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Send

import ssenb
from ssenb import EventStreamResponse, Hub
from ssenb.server import ServerHandle
from ssenb.server._session import PING, SessionResponse, StreamSession
from ssenb.server.hub import HubResponse

ENDS: list[str | None] = []  # how each Countdown stream ended, as its session saw it


class Countdown(SessionResponse):
    """A response of one's own: writes n, n-1, ... 1 as comments, one per 0.05 s."""

    def __init__(self, n: int) -> None:
        super().__init__(heartbeat=None)
        self.n = n

    async def stream(self, send: Send, session: StreamSession) -> None:
        await self.start(send)
        try:
            for k in range(self.n, 0, -1):
                if session.end is not None:  # the client left, or the server stops
                    return
                await send({"type": "http.response.body", "body": f": {k}\n".encode(),
                            "more_body": True})  # fmt: skip
                await asyncio.sleep(0.05)
            session.finish("done")
        finally:
            ENDS.append(session.end)


async def _forever() -> AsyncIterator[str]:
    while True:
        await asyncio.sleep(0.05)
        yield "tick"


@pytest.fixture
def server() -> Iterator[tuple[Hub, ServerHandle]]:
    hub = Hub(start=1)

    async def producer(request: Request) -> Response:
        return EventStreamResponse(_forever())

    async def hub_stream(request: Request) -> Response:
        return hub.response(request)

    async def countdown(request: Request) -> Response:
        return Countdown(int(request.query_params.get("n", "3")))

    routes = [Route("/producer", producer), Route("/hub", hub_stream), Route("/count", countdown)]
    with ssenb.serve(Starlette(routes=routes), name=f"session-{uuid.uuid4()}") as handle:
        yield hub, handle
    hub.close()


@pytest.mark.parametrize(
    "make",
    [lambda: EventStreamResponse(iter(())), lambda: HubResponse(Hub().subscribe())],
    ids=["event-stream", "hub"],
)
def test_both_responses_send_the_same_stream_headers(make: Any) -> None:
    response = make()
    assert response.media_type == "text/event-stream"
    assert (response.headers["cache-control"], response.headers["x-accel-buffering"]) == (
        "no-cache", "no",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("heartbeat", "kept"),
    [(15.0, 15.0), (0.5, 0.5), (0, None), (None, None)],
    ids=["default", "short", "zero-is-off", "none-is-off"],
)
@pytest.mark.parametrize("cls", [EventStreamResponse, HubResponse], ids=["event-stream", "hub"])
def test_heartbeat_rules_are_the_same(
    cls: Any, heartbeat: float | None, kept: float | None
) -> None:
    first = iter(()) if cls is EventStreamResponse else Hub().subscribe()
    assert cls(first, heartbeat=heartbeat).heartbeat == kept
    with pytest.raises(ValueError, match="heartbeat must be >= 0"):
        cls(first, heartbeat=-1)


def test_one_registry_counts_every_kind_of_stream_and_stop_ends_them_at_once(
    server: tuple[Hub, ServerHandle],
) -> None:
    _, handle = server
    with (
        subscribed(handle.url + "/producer") as producer,
        subscribed(handle.url + "/hub") as subscriber,
        subscribed(handle.url + "/count?n=1000") as countdown,
    ):
        wait_until(lambda: handle.streams == 3)
        started = time.monotonic()
        handle.stop()
        for reader in (producer, subscriber, countdown):
            reader.to_end()  # every body ends cleanly
    assert time.monotonic() - started < 5 * 1.0
    assert ENDS[-1] == "shutdown"


def test_a_client_leaving_ends_the_session_and_unregisters_it(
    server: tuple[Hub, ServerHandle],
) -> None:
    _, handle = server
    with subscribed(handle.url + "/count?n=1000") as reader:
        next(reader.chunks)
        assert handle.streams == 1
    wait_until(lambda: handle.streams == 0 and ENDS[-1:] == ["disconnect"])


def test_a_response_of_ones_own_ends_cleanly_with_the_final_chunk(
    server: tuple[Hub, ServerHandle],
) -> None:
    _, handle = server
    response = httpx.get(handle.url + "/count?n=3", timeout=5)
    assert (response.status_code, response.text) == (200, ": 3\n: 2\n: 1\n")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert ENDS[-1] == "done"


def test_the_idle_wait_gives_true_only_when_the_heartbeat_is_due() -> None:
    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        session = StreamSession(loop, heartbeat=0.05)
        started = loop.time()
        idle = await session.wait(loop.create_future())
        waited = loop.time() - started
        news = loop.create_future()
        loop.call_soon(news.set_result, None)  # data before the heartbeat is due
        got = await session.wait(news)
        pending = session.wait(loop.create_future())
        loop.call_soon(session.finish, "done")  # a wait ended by the end of the stream
        ended = await pending
        session.close()
        return [idle, 0.04 <= waited < 5 * 0.05, got, ended]

    assert asyncio.run(run()) == [True, True, None, False]  # only a heartbeat gives True
    assert PING == b": ping\n"  # a comment line: no event, no id
