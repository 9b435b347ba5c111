"""How Redis hub subscribers read (`_hub_redis_read.py`), against a real `redis-server`: the
caught-up ones share one blocking read per process, a slow one leaves it and gets a `gap`
event when the trimming passes it, and 1,000 subscribers across two server processes each
get every event exactly once, also when they all move to the other process mid-stream.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import pytest
from _redis import RedisProc, redis_server, require_redis_server, serve_process, store

from ssenb import EventParser, Hub
from ssenb.server.hub._redis_read import POOL, RedisSubscription, _Tail

__all__ = ["redis_server"]  # fixture

require_redis_server()


def _connections(hub: Any) -> int:
    """Redis connections of `hub`'s stream, from every process (they carry its name)."""
    backend = store(hub)
    return sum(c.get("name") == backend.client_name for c in backend.client.client_list())


def _data(chunks: list[bytes]) -> list[str]:
    return [e.data for e in EventParser().feed(b"".join(chunks))]


# -- joining the shared read ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "joins", "skip", "handed"),
    [
        ("5-3", True, None, []),
        ("9-0", True, (9, 0), []),
        ("5-2", True, None, ["c"]),
        ("5-1", True, None, ["b", "c"]),
        ("5-0", True, None, ["a", "b", "c"]),
        ("4-9", False, None, []),
    ],
    ids=["at-the-tail", "ahead-skips-until-its-id", "one-behind", "inside-the-last-batch",
         "just-before-the-last-batch", "older-catches-up-alone"],
)  # fmt: skip
def test_a_subscriber_joins_the_tail_only_without_a_hole(
    redis_server: RedisProc, cursor: str, joins: bool, skip: Any, handed: list[str]
) -> None:
    hub = redis_server.hub()

    async def run() -> tuple[bool, Any, list[bytes]]:
        loop = asyncio.get_running_loop()
        tail = _Tail(store(hub).reader, loop)
        tail.task = loop.create_future()  # running (no read: the state is set by hand)
        tail.cursor = "5-3"
        tail.last = ("5-0", ["5-1", "5-2", "5-3"], [b"a", b"b", b"c"])
        sub = RedisSubscription(store(hub).reader, None)
        sub._cursor = cursor
        joined = tail.attach(sub)
        tail.task.cancel()
        return joined, sub._skip, sub._pending

    joined, got_skip, pending = asyncio.run(run())
    assert (joined, got_skip, pending) == (joins, skip, [h.encode() for h in handed])
    hub.close()


def test_subscribers_in_one_process_share_one_blocking_read(redis_server: RedisProc) -> None:
    hub = redis_server.hub()
    n = 300

    async def run() -> list[list[bytes]]:
        subs = [hub.subscribe() for _ in range(n)]
        firsts = [asyncio.ensure_future(anext(s)) for s in subs]
        await asyncio.sleep(0.5)  # all live on the tail
        clients = _connections(hub)
        assert clients <= POOL + 2, f"{clients} Redis connections for {n} subscribers"
        await asyncio.to_thread(hub.publish_many, ["a", "b", "c"])
        got = await asyncio.wait_for(asyncio.gather(*firsts), 10)
        for chunks, sub in zip(got, subs, strict=True):
            while len(chunks) < 3:  # a batch may hold only the first (the read woke early)
                chunks += await asyncio.wait_for(anext(sub), 5)
            sub.close()
        return got

    got = asyncio.run(run())
    assert all(_data(chunks) == ["a", "b", "c"] for chunks in got)
    hub.close()


def test_open_fixes_the_position_before_anything_is_read(redis_server: RedisProc) -> None:
    hub = redis_server.hub()
    before = hub.publish("before")

    async def run() -> list[bytes]:
        sub = hub.subscribe()
        await sub.open()  # what a response awaits before its headers go out
        assert sub.last_event_id == before
        await asyncio.to_thread(hub.publish, "after")
        return await asyncio.wait_for(anext(sub), 5)

    assert _data(asyncio.run(run())) == ["after"]
    hub.close()


def test_a_slow_subscriber_holds_a_bounded_backlog_then_gets_a_gap_event(
    redis_server: RedisProc,
) -> None:
    hub = redis_server.hub(buffer=10, queue=10)

    async def run() -> list[bytes]:
        sub = hub.subscribe()
        first = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(hub.publish, "first")
        got = await asyncio.wait_for(first, 5)
        await asyncio.to_thread(hub.publish_many, [str(i) for i in range(500)])
        await asyncio.sleep(0.3)  # the consumer takes nothing meanwhile
        assert len(sub._pending) <= 2 * 10  # left the shared read once > queue untaken
        while not got[-1].endswith(b"data: 499\n\n"):
            got += await asyncio.wait_for(anext(sub), 5)
        return got

    got = asyncio.run(run())
    assert got[0].endswith(b"data: first\n\n")
    runs: list[list[int]] = [[]]  # the events between gap events
    for chunk in got[1:]:
        if chunk.startswith(b"event: gap\n"):
            assert b'"reason":"evicted"' in chunk
            runs.append([])
        else:
            runs[-1].append(int(chunk.rsplit(b"data: ", 1)[1]))
    assert len(runs) >= 2  # the trimming passed it: reported, not silent
    numbers = [i for run_ in runs for i in run_]
    assert numbers == sorted(set(numbers))  # in order, nothing twice
    assert numbers[-1] == 499
    assert runs[0] == list(range(len(runs[0])))  # before a gap: from the first, no hole
    for run_ in filter(None, runs[1:]):
        assert run_ == list(range(run_[0], run_[0] + len(run_)))  # nothing skipped silently
    hub.close()


# -- 1,000 subscribers, two server processes ------------------------------------------------


async def _subscriber(base: str, last_id: str, until: int, ids: list[str]) -> None:
    """One raw HTTP/1.0 subscriber (the body is the bare stream) reading until it holds
    `until` ids; light enough to run a thousand in one test process."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET /hub HTTP/1.0\r\nHost: {host}:{port}\r\nLast-Event-ID: {last_id}\r\n\r\n"
    writer.write(request.encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        parser, controls = EventParser(), []
        while len(ids) < until and (chunk := await reader.read(65536)):
            for event in parser.feed(chunk):
                if event.id:
                    ids.append(event.id)
                else:
                    controls.append(event.data)
        assert len(ids) >= until, f"the stream ended after {len(ids)} ids: {controls}"
    finally:
        writer.close()


def test_a_thousand_subscribers_across_two_processes_each_get_everything_once(
    redis_server: RedisProc,
) -> None:
    n, events = 1_000, 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * n:  # the test process holds n sockets, each server n/2 (inherited limit)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4 * n, hard), hard))
    url = redis_server.url()
    publisher = Hub(backend=url)
    marker = publisher.publish("marker")

    async def client(bases: tuple[str, str]) -> list[str]:
        ids: list[str] = []
        await _subscriber(bases[0], marker, events // 2, ids)
        ids = ids[: events // 2]  # then move to the other process mid-stream
        await _subscriber(bases[1], ids[-1], events, ids)
        return ids

    async def run(a: str, b: str) -> tuple[list[list[str]], list[str], int, float]:
        pairs = [(a, b), (b, a)]
        tasks = [asyncio.ensure_future(client(pairs[i % 2])) for i in range(n)]
        await asyncio.sleep(1.0)  # most are connected and live when publishing starts
        start, ids = time.monotonic(), list[str]()
        for i in range(0, events, 10):
            ids += await asyncio.to_thread(
                publisher.publish_many, [str(j) for j in range(i, i + 10)]
            )
            await asyncio.sleep(0.01)
        connections = await asyncio.to_thread(_connections, publisher)
        got = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return got, ids, connections, time.monotonic() - start

    with serve_process(url) as a, serve_process(url) as b:
        got, ids, connections, seconds = asyncio.run(run(a, b))
    publisher.close()
    wrong = [i for i, g in enumerate(got) if g != ids]
    assert not wrong, f"{len(wrong)} of {n} subscribers lost or repeated events"
    assert connections <= 2 * (POOL + 1) + 2, f"{connections} Redis connections for {n}"
    print(f"{n} subscribers x {events} events across 2 processes in {seconds:.2f} s")
