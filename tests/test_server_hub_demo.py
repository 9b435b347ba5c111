"""The demo app's hub: `/hub` fed from a notebook cell (or POST), `/hub/ticks` one ticker
shared by every client, both listed on `/`. Real servers from `ssenb.serve()`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle, _hub_demo


@pytest.fixture
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name=f"hub-demo-{uuid.uuid4()}") as handle:
        handle.app.state.hub = ssenb.Hub(start=1)  # ids 1, 2, ... read well in these tests
        yield handle


def test_a_restarted_demo_server_answers_an_old_id_with_gap_not_silence() -> None:
    """The demo hub's ids come from the clock: the next incarnation never reuses them."""
    name = f"hub-restart-{uuid.uuid4()}"
    with ssenb.serve(name=name) as first:
        old_id = first.app.state.hub.publish({"n": 1})
    with ssenb.serve(name=name) as second:  # same name, same port: the buffer is gone
        hub = second.app.state.hub
        for n in range(2, 6):
            hub.publish({"n": n})
        hub.publish("[DONE]")
        with ssenb.EventSource(second.url + "/hub", last_event_id=old_id) as source:
            events = list(source)
    assert events[0].event == "gap"
    assert [e.json()["n"] for e in events[1:]] == [2, 3, 4, 5]


def _when_subscribed(hub: Any, action: Any, count: int = 1) -> threading.Thread:
    """Run `action` in another thread (a notebook cell) once `count` clients listen."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while hub.stats["subscribers"] < count and time.monotonic() < deadline:
            time.sleep(0.005)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_index_page_lists_both_hub_endpoints(demo: ServerHandle) -> None:
    page = httpx.get(demo.url + "/", timeout=5).text
    assert "GET /hub</code>" in page
    assert "GET /hub/ticks</code>" in page


def test_a_notebook_cell_publishes_to_the_running_server(demo: ServerHandle) -> None:
    hub = demo.app.state.hub  # the tutorial's line: handle.app.state.hub.publish(...)
    _when_subscribed(hub, lambda: hub.publish_many([{"msg": "hi"}, "[DONE]"]))
    with ssenb.EventSource(demo.url + "/hub") as source:
        events = list(source)  # ends at [DONE]
    assert events == [Event(data='{"msg":"hi"}', id="1")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"msg": "hi"}, Event(data='{"msg":"hi"}', id="1")),
        ("plain words", Event(data="plain words", id="1")),
        ([1, 2], Event(data="[1,2]", id="1")),
        ({"event": "note", "data": "typed"}, Event(event="note", data="typed", id="1")),
        ({"data": "mine", "id": "m-1"}, Event(data="mine", id="m-1")),
    ],
    ids=["object-as-json", "string-as-data", "array-as-json", "event-fields", "own-id"],
)
def test_post_publishes_a_json_body(demo: ServerHandle, body: Any, expected: Event) -> None:
    answer = httpx.post(demo.url + "/hub", json=body, timeout=5).json()
    with httpx.stream("GET", demo.url + "/hub", headers={"Last-Event-ID": "0"}) as r:
        (event,) = EventParser().feed(next(r.iter_raw()))  # replayed from the buffer
    assert event == expected
    assert answer == {"id": expected.id}


def test_many_clients_share_one_ticker_and_resume_it(demo: ServerHandle) -> None:
    state = demo.app.state

    async def main() -> list[list[Event]]:
        async with httpx.AsyncClient(timeout=10) as client:

            async def read(n: int) -> list[Event]:
                parser, got = EventParser(), []
                async with client.stream("GET", demo.url + "/hub/ticks") as r:
                    async for chunk in r.aiter_raw():
                        got.extend(parser.feed(chunk))
                        if len(got) >= n:
                            return got[:n]
                return got

            return await asyncio.gather(*(read(8) for _ in range(5)))

    results = asyncio.run(asyncio.wait_for(main(), 20))
    ticker = state.hub_ticker
    by_id: dict[str, str] = {}
    for got in results:
        ids = [int(e.id) for e in got]
        assert ids == list(range(ids[0], ids[0] + 8))  # consecutive, nothing lost
        for e in got:  # one producer: the same id carries the same stamp for everyone
            assert by_id.setdefault(e.id, e.data) == e.data
    assert ticker is not None
    assert state.ticks_hub.stats["dropped"] == 0
    last = results[0][-1].id
    with httpx.stream(
        "GET", demo.url + "/hub/ticks", headers={"Last-Event-ID": last}, timeout=10
    ) as r:
        (resumed, *_) = EventParser().feed(next(r.iter_raw()))
        assert state.hub_ticker is ticker  # still that one producer
    assert int(resumed.id) == int(last) + 1


def test_the_ticker_stops_when_nobody_listens(
    demo: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hub_demo, "_IDLE_STOP", 0.2)
    with httpx.stream("GET", demo.url + "/hub/ticks", timeout=10) as r:
        next(r.iter_raw())
        assert demo.app.state.hub_ticker is not None
    deadline = time.monotonic() + 5
    while demo.app.state.hub_ticker is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert demo.app.state.hub_ticker is None
