"""Hub: ids, fan-out to many subscribers, slow-subscriber drops, exact resume, gap events,
publishing from other threads, close. Streams go through a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from _apps import wait_until
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import ssenb
from ssenb import Event, EventParser, Hub
from ssenb.server import ServerHandle
from ssenb.server.hub import DROP_GRACE


def _serve(hub: Hub, heartbeat: float | None = 15.0) -> ServerHandle:
    async def endpoint(request: Request) -> Response:
        return hub.response(request, heartbeat=heartbeat)

    return ssenb.serve(Starlette(routes=[Route("/hub", endpoint)]), name=f"hub-{uuid.uuid4()}")


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Hub, ServerHandle]]:
    """A served hub: buffer=5, queue=5 unless parametrized (indirect) with other settings."""
    hub = Hub(start=1, **getattr(request, "param", {"buffer": 5, "queue": 5}))
    with _serve(hub) as handle:
        yield hub, handle


class Reader:
    """Events of one open stream, parsed as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.iter_raw()
        self.parser = EventParser()
        self.events: list[Event] = []

    def until_id(self, last: str) -> list[Event]:
        while not self.events or self.events[-1].id != last:
            self.events.extend(self.parser.feed(next(self.chunks)))
        return self.events

    def to_end(self) -> list[Event]:
        for chunk in self.chunks:
            self.events.extend(self.parser.feed(chunk))
        return self.events


@contextmanager
def subscribed(url: str, last_event_id: str | None = None) -> Iterator[Reader]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        yield Reader(r)  # headers arrived: the subscription exists


# -- the contract -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "kafka://127.0.0.1:9092"}, "backend 'kafka://127.0.0.1:9092' is not avail"),
        ({"buffer": -1}, "buffer >= 0"),
        ({"queue": 0}, "queue >= 1"),
        ({"start": 0}, "start must be"),
        ({"start": "tomorrow"}, "start must be"),
    ],
    ids=["other-backend", "negative-buffer", "empty-queue", "zero-start", "bad-start"],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Hub(**kwargs)


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        ("plain text", b"id: 1\ndata: plain text\n\n"),
        ({"x": 1}, b'id: 1\ndata: {"x":1}\n\n'),
        ({"event": "note", "data": "hi"}, b"event: note\nid: 1\ndata: hi\n\n"),
        (Event(data="two\nlines"), b"id: 1\ndata: two\ndata: lines\n\n"),
        (Event(data="own", id="abc"), b"id: abc\ndata: own\n\n"),
    ],
    ids=["str-is-data", "dict-is-json", "event-fields", "multiline", "own-id-kept"],
)
def test_publish_encodes_once_with_an_id(item: Any, wire: bytes) -> None:
    hub = Hub(start=1)
    sub = hub.subscribe()
    hub.publish(item)
    assert asyncio.run(anext(sub)) == [wire]


def test_ids_count_up_and_publish_returns_them() -> None:
    hub = Hub(start=1)
    ids = [hub.publish("a"), hub.publish(Event(data="b", id="own")), hub.publish("c")]
    assert ids == ["1", "own", "3"]
    assert hub.publish_many(["d", "e"]) == ["4", "5"]
    with pytest.raises(TypeError, match="bytes"):
        hub.publish(b"raw")  # type: ignore[arg-type]


def test_a_batch_with_a_refused_event_publishes_nothing() -> None:
    hub = Hub(start=1)
    with pytest.raises(ssenb.SSEEncodeError):
        hub.publish_many(["fine", Event(data="x", id="bad\nid"), "never"])
    assert hub.stats["published"] == 0
    assert hub.publish("next") == "1"


def test_stats_count_subscribers_published_dropped_buffered() -> None:
    hub = Hub(start=1, buffer=3, queue=2)
    subs = [hub.subscribe(), hub.subscribe()]
    hub.publish_many(str(i) for i in range(5))
    assert hub.stats == {
        "subscribers": 0,  # both fell more than 2 events behind: dropped
        "behind": 0,
        "published": 5,
        "dropped": 2,
        "buffered": 3,
        "first_id": "3",
        "last_id": "5",
    }
    assert all(s.dropped for s in subs)
    assert "2 dropped" in repr(hub)
    late = hub.subscribe()
    hub.publish("x")
    assert (hub.stats["subscribers"], hub.stats["behind"], late.last_event_id) == (1, 1, "5")


def test_a_dropped_subscriber_gets_one_error_event_then_ends() -> None:
    hub = Hub(start=1, buffer=10, queue=3)
    sub = hub.subscribe()
    hub.publish("first")

    async def consume() -> list[list[bytes]]:
        items = [await anext(sub)]  # takes id 1
        hub.publish_many(["a", "b", "c", "d"])  # 4 > queue behind
        return items + [batch async for batch in sub]

    items = asyncio.run(consume())
    assert items[0] == [b"id: 1\ndata: first\n\n"]
    (final,) = EventParser().feed(b"".join(items[1]))
    assert len(items) == 2
    assert (final.event, final.id) == ("error", "")
    assert final.json() == {
        "error": "SlowSubscriber",
        "message": "dropped: more than 3 events behind; reconnect to resume",
        "fatal": True,
        "last_event_id": "1",
    }


# -- fan-out --------------------------------------------------------------------------------


def test_100_subscribers_receive_identical_sequences_from_one_publisher_thread() -> None:
    hub, n = Hub(start=1, queue=5_000), 2_000
    with _serve(hub) as handle:

        async def main() -> list[list[Event]]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(timeout=20, limits=limits) as client:
                streams = [client.stream("GET", handle.url + "/hub") for _ in range(100)]
                responses = [await s.__aenter__() for s in streams]
                assert hub.stats["subscribers"] == 100

                def publish() -> None:  # a notebook cell: another thread than the server's
                    for lo in range(0, n, 50):
                        hub.publish_many({"i": i} for i in range(lo, lo + 50))
                        time.sleep(0.001)

                threading.Thread(target=publish).start()

                async def read(r: httpx.Response) -> list[Event]:
                    parser, got = EventParser(), []
                    async for chunk in r.aiter_raw():
                        got.extend(parser.feed(chunk))
                        if got and got[-1].id == str(n):
                            break
                    return got

                try:
                    return await asyncio.gather(*(read(r) for r in responses))
                finally:
                    for s in streams:
                        await s.__aexit__(None, None, None)

        results = asyncio.run(asyncio.wait_for(main(), 60))
    expected = [Event(data=f'{{"i":{i}}}', id=str(i + 1)) for i in range(n)]
    assert all(got == expected for got in results)
    assert hub.stats["dropped"] == 0


@pytest.mark.parametrize("served", [{"queue": 10_000}], ids=["queue=10000"], indirect=True)
def test_publishing_from_many_threads_at_once_loses_and_repeats_nothing(served: Any) -> None:
    hub, handle = served
    with subscribed(handle.url + "/hub") as reader:
        threads = [
            threading.Thread(target=lambda t=t: [hub.publish(f"{t}-{k}") for k in range(500)])
            for t in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = reader.until_id("2000")
    assert [e.id for e in events] == [str(i) for i in range(1, 2001)]
    assert sorted(e.data for e in events) == sorted(
        f"{t}-{k}" for t in range(4) for k in range(500)
    )


def _stalled_socket(url: str) -> socket.socket:
    """A client that sends its request and never reads: its receive window stays tiny."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /hub HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def _run_with_reader(stall: bool, n: int = 12_000) -> tuple[float, list[str], Hub, int, int]:
    """Publish n 1 KB events, paced by one healthy reader; optionally with a frozen peer."""
    hub = Hub(start=1, buffer=2_000, queue=2_000)
    pad = "x" * 1000
    with _serve(hub) as handle, subscribed(handle.url + "/hub") as reader:
        stalled = _stalled_socket(handle.url) if stall else None
        wait_until(lambda: hub.stats["subscribers"] == (2 if stall else 1))
        got: list[str] = []

        def read() -> None:
            for chunk in reader.chunks:
                got.extend(e.id for e in reader.parser.feed(chunk))
                if got and got[-1] == str(n):
                    return

        thread = threading.Thread(target=read)
        started = time.perf_counter()
        thread.start()
        for lo in range(0, n, 100):
            wait_until(lambda lo=lo: lo - len(got) < 1_000)  # a steady publisher, not a flood
            hub.publish_many(f'{{"i":{i},"pad":"{pad}"}}' for i in range(lo, lo + 100))
        thread.join(30)
        took = time.perf_counter() - started
        if stalled is not None:
            wait_until(lambda: hub.stats["dropped"] == 1)
            wait_until(lambda: handle.streams == 1, timeout=DROP_GRACE * 5 + 5)  # its stream ended
            stalled.close()
        return took, got, hub, hub.stats["subscribers"], handle.streams


def test_a_stalled_subscriber_is_dropped_and_the_others_keep_full_speed() -> None:
    alone, got_alone, *_ = _run_with_reader(stall=False)
    beside, got_beside, hub, subscribers, streams = _run_with_reader(stall=True)
    assert got_alone == got_beside == [str(i) for i in range(1, 12_001)]
    assert (hub.stats["dropped"], subscribers, streams) == (1, 1, 1)
    assert beside < 5 * alone + 1.0, (alone, beside)


# -- resume -------------------------------------------------------------------------------

# buffer=5: after 12 events the hub holds ids 8..12; the client then publishes a marker, 13
RESUME = [
    (None, [], None),
    ("12", [], None),
    ("9", ["10", "11", "12"], None),
    ("7", ["8", "9", "10", "11", "12"], None),
    ("6", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": 1, "reason": "evicted"}),
    ("1", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": 6, "reason": "evicted"}),
    ("99", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": None, "reason": "unknown"}),
    ("abc", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": None, "reason": "unknown"}),
]


@pytest.mark.parametrize(
    ("last_event_id", "replayed", "gap"),
    RESUME,
    ids=["fresh", "up-to-date", "inside", "just-before-oldest", "one-too-old", "far-too-old",
         "future-id", "not-ours"],
)  # fmt: skip
def test_resume_is_exact_inside_the_buffer_and_a_gap_beyond(
    served: Any, last_event_id: str | None, replayed: list[str], gap: dict[str, Any] | None
) -> None:
    hub, handle = served
    hub.publish_many(f"e{i}" for i in range(1, 13))
    with subscribed(handle.url + "/hub", last_event_id) as reader:
        hub.publish("marker")
        events = reader.until_id("13")
    if gap is None:
        assert [e.event for e in events] == ["message"] * (len(replayed) + 1)
    else:
        assert (events[0].event, events[0].id) == ("gap", "")  # control frames carry no id
        assert events[0].json() == {"last_event_id": last_event_id, **gap}
        events = events[1:]
    assert [e.id for e in events] == [*replayed, "13"]
    assert [e.data for e in events] == [f"e{i}" for i in map(int, replayed)] + ["marker"]


def test_own_ids_resume_exactly_too(served: Any) -> None:
    hub, handle = served
    for name in ("a", "b", "c"):
        hub.publish(Event(data=name.upper(), id=name))
    with subscribed(handle.url + "/hub", "a") as reader:
        hub.publish(Event(data="D", id="d"))
        got = [(e.id, e.data) for e in reader.until_id("d")]
    assert got == [("b", "B"), ("c", "C"), ("d", "D")]


@pytest.mark.parametrize("served", [{"buffer": 50, "queue": 3}], ids=["queue=3"], indirect=True)
def test_a_client_dropped_for_lag_resumes_exactly_with_event_source(served: Any) -> None:
    hub, handle = served
    seen: list[Event] = []

    def first() -> None:
        wait_until(lambda: hub.stats["subscribers"] == 1)
        hub.publish("first")

    threading.Thread(target=first).start()
    with ssenb.EventSource(handle.url + "/hub", reconnect="auto") as source:
        for event in source:
            seen.append(event)
            if event.id == "1":  # now fall 20 events behind before reading on
                hub.publish_many(f"late {i}" for i in range(20))
            if event.id == "21":
                break
    errors = [e for e in seen if e.event == "error"]
    assert [orjson.loads(e.data)["last_event_id"] for e in errors] == ["1"]
    assert [e.id for e in seen if e.event == "message"] == [str(i) for i in range(1, 22)]
    assert source.reconnects == 1


# -- the end ------------------------------------------------------------------------------


def test_close_ends_every_subscriber_cleanly_and_later_requests_get_204(served: Any) -> None:
    hub, handle = served
    with subscribed(handle.url + "/hub") as one, subscribed(handle.url + "/hub") as two:
        hub.publish("last words")
        hub.close()
        ends = [one.to_end(), two.to_end()]  # the body ends: no hang, no error event
    assert ends == [[Event(data="last words", id="1")]] * 2
    assert httpx.get(handle.url + "/hub", timeout=5).status_code == 204
    with pytest.raises(RuntimeError, match="closed"):
        hub.publish("too late")
    assert hub.stats["subscribers"] == 0


def test_an_idle_subscriber_gets_heartbeat_comments_and_no_ids() -> None:
    hub = Hub(start=1)
    with _serve(hub, heartbeat=0.05) as handle, subscribed(handle.url + "/hub") as reader:
        body = b""
        while body.count(b": ping\n") < 2:
            body += next(reader.chunks)
    assert set(body.split(b"\n")) <= {b": ping", b""}


def test_a_client_hanging_up_unsubscribes_it(served: Any) -> None:
    hub, handle = served
    with subscribed(handle.url + "/hub"):
        assert hub.stats["subscribers"] == 1
    wait_until(lambda: hub.stats["subscribers"] == 0 and handle.streams == 0)


def test_stopping_the_server_ends_hub_streams_at_once() -> None:
    hub = Hub(start=1)
    handle = _serve(hub)
    with subscribed(handle.url + "/hub") as reader:
        hub.publish("before stop")
        started = time.monotonic()
        handle.stop()
        events = reader.to_end()  # the body ends cleanly: no hang, no error event
    assert events == [Event(data="before stop", id="1")]
    assert time.monotonic() - started < 5 * 1.0
