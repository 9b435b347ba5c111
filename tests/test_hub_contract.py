"""The hub contract: what `Hub` does on every registered backend, one suite for all of them.

Backends: `memory`; `redis` (a real redis-server on a loopback port, tests/_redis.py; skipped
without one, except on CI); and `tagged`, a third backend registered here, built on the
memory one in a dozen lines (ids `<tag>.1`, `<tag>.2`, ...), which shows the seam: a new
backend is one class and one registry line, and this suite is what it has to pass. Streams go
through a real uvicorn on 127.0.0.1. What only one backend does (the memory hub's drop of a
slow subscriber, Redis's shared read) is tested in test_server_hub*.py.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from _apps import wait_until
from _hubs import serve_hub, stalled_socket, subscribed
from _redis import redis_server, require_redis_server

from ssenb import Event, EventParser, Hub
from ssenb.server._response import as_event
from ssenb.server.hub import (
    HubBackend,
    HubSubscription,
    MemoryBackend,
    Publishable,
    backends,
    register_backend,
)

__all__ = ["redis_server"]  # fixture


class TaggedBackend(MemoryBackend):
    """`tagged://name`: the memory store with ids `name.1`, `name.2`, ... (its own id form)."""

    def __init__(self, url: str, *, buffer: int, queue: int, start: int | str) -> None:
        super().__init__(buffer=buffer, queue=queue, start=start)
        self.url, self.tag = url, urlsplit(url).netloc or "t"
        self._numbers, self._order = itertools.count(1), threading.Lock()

    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        with self._order:  # ids in publish order, also across threads
            items = [as_event(e) for e in events]
            n = self._numbers
            return super().publish_many(
                Event(e.event, e.data, f"{self.tag}.{next(n)}", e.retry) for e in items
            )


register_backend("tagged", TaggedBackend, replace=True)


@dataclass
class Backend:
    """How the suite makes hubs on one backend, and an id of its form it never issued."""

    name: str
    url: Callable[[], str]  # a fresh store each call
    never_issued: str
    hubs: list[Hub]

    def hub(self, **kwargs: Any) -> Hub:
        hub = Hub(backend=self.url(), **kwargs)
        self.hubs.append(hub)
        return hub


CASES = {
    "memory": ("memory", "999999999999999999"),
    "redis": ("redis://", "99999999999999-0"),
    "tagged": ("tagged://t", "t.999999"),
}


@pytest.fixture(params=list(CASES))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    url, never = CASES[request.param]
    make: Callable[[], str] = lambda: url  # noqa: E731
    if request.param == "redis":
        require_redis_server()
        make = request.getfixturevalue("redis_server").url
    case = Backend(request.param, make, never, [])
    yield case
    for hub in case.hubs:
        hub.close()


def test_every_registered_backend_is_in_this_suite() -> None:
    """A backend registered without a case here would go untested: add it to CASES."""
    kinds = {path.rpartition(":")[2] for path in backends().values()}
    assert kinds == {"MemoryBackend", "RedisBackend", "TaggedBackend"}


def test_a_hub_is_a_hub_on_every_backend(backend: Backend) -> None:
    hub = backend.hub()
    assert isinstance(hub, Hub)
    assert isinstance(hub, HubBackend)
    assert isinstance(hub.store, HubBackend)
    assert not isinstance(hub.store, Hub)  # the backend itself, not another facade
    assert isinstance(hub.subscribe(), HubSubscription)
    assert hub.backend == hub.url == hub.store.url
    hub.ping()  # the store answers
    assert repr(hub).startswith("<ssenb.Hub ")
    assert not hub.closed


# -- publishing -----------------------------------------------------------------------------


async def _first_batch(hub: Hub, item: Any) -> tuple[str, list[bytes]]:
    sub = hub.subscribe()
    await sub.open()  # the position is fixed: what is published next reaches it
    eid = await asyncio.to_thread(hub.publish, item)
    return eid, await asyncio.wait_for(anext(sub), 5)


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        ("plain text", "id: {id}\ndata: plain text\n\n"),
        ({"x": 1}, 'id: {id}\ndata: {{"x":1}}\n\n'),
        ({"event": "note", "data": "hi"}, "event: note\nid: {id}\ndata: hi\n\n"),
        (Event(data="two\nlines"), "id: {id}\ndata: two\ndata: lines\n\n"),
        (Event(data="r", retry=250), "id: {id}\nretry: 250\ndata: r\n\n"),
    ],
    ids=["str-is-data", "dict-is-json", "event-fields", "multiline", "retry"],
)
def test_publish_encodes_each_event_once_with_the_id_it_returns(
    backend: Backend, item: Any, wire: str
) -> None:
    eid, got = asyncio.run(_first_batch(backend.hub(), item))
    assert got == [wire.format(id=eid).encode()]


def test_subscribers_get_every_event_in_publish_order_with_its_id(backend: Backend) -> None:
    hub, n, subscribers = backend.hub(queue=5_000), 1_000, 40
    ids: list[str] = []
    with serve_hub(hub) as handle:

        async def main() -> list[list[Event]]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(timeout=20, limits=limits) as client:
                streams = [client.stream("GET", handle.url + "/hub") for _ in range(subscribers)]
                responses = [await s.__aenter__() for s in streams]
                assert hub.stats["subscribers"] == subscribers

                def publish() -> None:  # a notebook cell: another thread than the server's
                    for lo in range(0, n, 50):
                        ids.extend(hub.publish_many({"i": i} for i in range(lo, lo + 50)))
                        time.sleep(0.001)

                publisher = threading.Thread(target=publish)
                publisher.start()

                async def read(r: httpx.Response) -> list[Event]:
                    parser, got = EventParser(), list[Event]()
                    async for chunk in r.aiter_raw():
                        got.extend(parser.feed(chunk))
                        if len(got) >= n:
                            break
                    return got

                try:
                    return await asyncio.gather(*(read(r) for r in responses))
                finally:
                    publisher.join()
                    for s in streams:
                        await s.__aexit__(None, None, None)

        results = asyncio.run(asyncio.wait_for(main(), 60))
    expected = [Event(data=f'{{"i":{i}}}', id=eid) for i, eid in enumerate(ids)]
    assert all(got == expected for got in results)
    assert len(set(ids)) == n


def test_publishing_from_many_threads_loses_and_repeats_nothing(backend: Backend) -> None:
    hub, per_thread = backend.hub(queue=10_000), 250
    returned: dict[int, list[str]] = {}
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub") as reader:

        def publish(t: int) -> None:
            returned[t] = [hub.publish(f"{t}-{k}") for k in range(per_thread)]

        threads = [threading.Thread(target=publish, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        while len(reader.events) < 4 * per_thread:
            reader.events.extend(reader.parser.feed(next(reader.chunks)))
    events = reader.events
    assert sorted(e.id for e in events) == sorted(i for ids in returned.values() for i in ids)
    for t, ids in returned.items():  # each thread's events arrive in its order, with its ids
        mine = [(e.id, e.data) for e in events if e.data.startswith(f"{t}-")]
        assert mine == [(eid, f"{t}-{k}") for k, eid in enumerate(ids)]


# -- resume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 4, 9], ids=["after-the-first", "inside", "up-to-date"])
def test_resume_after_a_held_id_is_exact(backend: Backend, k: int) -> None:
    hub = backend.hub()
    ids = hub.publish_many(f"e{i}" for i in range(10))
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub", ids[k]) as reader:
        marker = hub.publish("marker")
        events = reader.until_id(marker)
    assert [e.id for e in events] == [*ids[k + 1 :], marker]
    assert [e.data for e in events] == [f"e{i}" for i in range(k + 1, 10)] + ["marker"]


@pytest.mark.parametrize("resume", ["trimmed", "never-issued", "abc"])
def test_a_resume_that_cannot_be_exact_starts_with_a_gap_event(
    backend: Backend, resume: str
) -> None:
    hub = backend.hub(buffer=100, queue=10)
    ids = hub.publish_many(str(i) for i in range(1_000))
    held = hub.stats["buffered"]
    assert 100 <= held < 1_000
    last = {"trimmed": ids[0], "never-issued": backend.never_issued}.get(resume, resume)
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub", last) as reader:
        events = reader.until_id(ids[-1])
    gap, replayed = events[0], events[1:]
    assert (gap.event, gap.id) == ("gap", "")  # control frames carry no id
    info = gap.json()
    assert (info["last_event_id"], info["first_id"]) == (last, replayed[0].id)
    assert info["reason"] in (("evicted", "unknown") if resume == "trimmed" else ("unknown",))
    assert [e.id for e in replayed] == ids[-held:]  # then everything held, nothing twice
    assert [e.data for e in replayed] == [str(i) for i in range(1_000 - held, 1_000)]


def test_what_is_published_once_the_client_has_the_headers_reaches_it(backend: Backend) -> None:
    for k in range(5):  # a fresh hub each time: nothing is warmed up
        hub = backend.hub()
        with serve_hub(hub) as handle, subscribed(handle.url + "/hub") as reader:
            eid = hub.publish(f"r{k}")
            assert [(e.id, e.data) for e in reader.until_id(eid)] == [(eid, f"r{k}")]


# -- slow subscribers -----------------------------------------------------------------------


def _no_silent_hole(chunks: list[bytes], published: list[str]) -> list[str]:
    """The message ids in `chunks`, checked: in publish order, and every skip over published
    ids is announced by a control event (`gap`, or the `error` that ends the stream)."""
    position, announced, got = -1, False, []
    for event in EventParser().feed(b"".join(chunks)):
        if event.event in ("gap", "error"):
            announced = True
            continue
        at = published.index(event.id)
        assert at > position, "out of order or repeated"
        assert at == position + 1 or announced, f"silent hole before {event.id}"
        position, announced, got = at, False, [*got, event.id]
    return got


def test_a_slow_subscriber_never_delays_the_others_nor_loses_silently(backend: Backend) -> None:
    hub = backend.hub(buffer=50, queue=20)

    async def run() -> tuple[list[bytes], list[bytes], list[str]]:
        slow, fast = hub.subscribe(), hub.subscribe()
        await asyncio.gather(slow.open(), fast.open())
        ids: list[str] = []
        got: list[bytes] = []
        for i in range(0, 300, 10):  # the slow one takes nothing while the fast one reads
            ids += await asyncio.to_thread(hub.publish_many, [str(j) for j in range(i, i + 10)])
            while not got or not got[-1].endswith(f"data: {i + 9}\n\n".encode()):
                got += await asyncio.wait_for(anext(fast), 5)
        late: list[bytes] = []
        async with asyncio.timeout(10):
            async for batch in slow:
                late += batch
                if late[-1].endswith(b"data: 299\n\n"):
                    break
        return got, late, ids

    fast_got, slow_got, ids = asyncio.run(run())
    assert _no_silent_hole(fast_got, ids) == ids
    slow_ids = _no_silent_hole(slow_got, ids)
    final = EventParser().feed(b"".join(slow_got))[-1]
    assert slow_ids[-1:] == ids[-1:] or final.event == "error"  # caught up, or told it is out


def test_a_client_that_never_reads_stalls_nobody(backend: Backend) -> None:
    hub, n, pad = backend.hub(buffer=1_000, queue=1_000), 3_000, "x" * 1_000
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub") as reader:
        stalled = stalled_socket(handle.url)
        try:
            wait_until(lambda: hub.stats["subscribers"] == 2)
            ids: list[str] = []
            for lo in range(0, n, 100):  # a steady publisher, paced by the healthy reader
                ids += hub.publish_many(f'{{"i":{i},"pad":"{pad}"}}' for i in range(lo, lo + 100))
                while len(reader.events) < lo:
                    reader.events.extend(reader.parser.feed(next(reader.chunks)))
            got = reader.until_id(ids[-1])
        finally:
            stalled.close()
    assert [e.id for e in got] == ids


# -- the end --------------------------------------------------------------------------------


def test_close_ends_every_subscriber_cleanly_and_later_requests_get_204(backend: Backend) -> None:
    hub = backend.hub()
    with serve_hub(hub) as handle:
        with subscribed(handle.url + "/hub") as one, subscribed(handle.url + "/hub") as two:
            eid = hub.publish("last words")
            for reader in (one, two):  # taken (a Redis subscriber ends after what it took)
                reader.until_id(eid)
            hub.close()
            ends = [one.to_end(), two.to_end()]  # the body ends: no hang, no error event
        assert ends == [[Event(data="last words", id=eid)]] * 2
        assert httpx.get(handle.url + "/hub", timeout=5).status_code == 204
    with pytest.raises(RuntimeError, match="closed"):
        hub.publish("too late")
    assert hub.closed


def test_stopping_the_server_ends_hub_streams_at_once(backend: Backend) -> None:
    hub = backend.hub()
    handle = serve_hub(hub)
    with subscribed(handle.url + "/hub") as reader:
        eid = hub.publish("before stop")
        reader.until_id(eid)
        started = time.monotonic()
        handle.stop()
        events = reader.to_end()  # the body ends cleanly: no hang, no error event
    assert events == [Event(data="before stop", id=eid)]
    assert time.monotonic() - started < 5 * 1.0


def test_an_idle_subscriber_gets_heartbeat_comments_and_no_ids(backend: Backend) -> None:
    hub = backend.hub()
    with serve_hub(hub, heartbeat=0.05) as handle, subscribed(handle.url + "/hub") as reader:
        body = b""
        while body.count(b": ping\n") < 2:
            body += next(reader.chunks)
    assert set(body.split(b"\n")) <= {b": ping", b""}


def test_a_client_hanging_up_unsubscribes_it(backend: Backend) -> None:
    hub = backend.hub()
    with serve_hub(hub) as handle:
        with subscribed(handle.url + "/hub"):
            wait_until(lambda: hub.stats["subscribers"] == 1)
        wait_until(lambda: hub.stats["subscribers"] == 0 and handle.streams == 0)


def test_stats_count_subscribers_and_publishes_and_name_the_ids_held(backend: Backend) -> None:
    hub = backend.hub()
    empty = hub.stats
    assert (empty["subscribers"], empty["published"], empty["buffered"]) == (0, 0, 0)
    assert (empty["first_id"], empty["last_id"]) == (None, None)
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub"), subscribed(handle.url + "/hub"):
        ids = hub.publish_many(f"s{i}" for i in range(5))
        wait_until(lambda: hub.stats["subscribers"] == 2)
        stats = hub.stats
    assert stats["published"] == stats["buffered"] == 5
    assert (stats["first_id"], stats["last_id"], stats["dropped"]) == (ids[0], ids[-1], 0)
    assert stats["behind"] is None or stats["behind"] >= 0
    assert set(stats) >= {"subscribers", "behind", "published", "dropped", "buffered"}
    assert orjson.dumps(stats)  # plain JSON values, for status pages
