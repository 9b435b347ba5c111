"""The Redis hub backend against a real `redis-server` on a free loopback port: ids are stream
ids, exact resume (also on another server process), gap events, a Redis restart surfaced to
the client.

Skipped when `redis-server` is not installed, except on CI (`CI` set), where that fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import ssenb
from ssenb import Event, EventParser, Hub
from ssenb.server import ServerHandle
from ssenb.server._hub_redis import RedisHub

pytest.importorskip("redis")
REDIS_SERVER = shutil.which("redis-server")
if REDIS_SERVER is None:
    if os.environ.get("CI"):
        pytest.fail("redis-server is not installed (CI installs it: .ci/run)", pytrace=False)
    pytest.skip("redis-server is not installed", allow_module_level=True)


class RedisProc:
    """A throwaway `redis-server` on 127.0.0.1 (no persistence), restartable on its port."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, stream: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0?stream={stream}"

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--maxclients", "4000"]  # fmt: skip
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProc]:
    server = RedisProc(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    """A redis-server of this test's own (the test stops and restarts it)."""
    server = RedisProc(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _hub(server: RedisProc, **kwargs: Any) -> RedisHub:
    hub = Hub(backend=server.url(f"t-{uuid.uuid4().hex[:8]}"), **kwargs)
    assert isinstance(hub, RedisHub)
    return hub


def _serve(hub: Any) -> ServerHandle:
    async def endpoint(request: Request) -> Response:
        return hub.response(request, heartbeat=0.5)

    return ssenb.serve(Starlette(routes=[Route("/hub", endpoint)]), name=f"rh-{uuid.uuid4()}")


def _events(url: str, last_event_id: str | None = None, *, until: Any) -> list[Event]:
    """Read `url` until `until(events)` is true (or the stream ends)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[Event] = []
    parser = EventParser()
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            events.extend(parser.feed(chunk))
            if until(events):
                break
    return events


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- the backend ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "backend_kind"),
    [("memory", "memory"), ("redis://127.0.0.1:1/0?stream=x", "redis")],
    ids=["memory-stays-default", "redis-url-dispatches"],
)
def test_backend_selects_the_class(url: str, backend_kind: str) -> None:
    hub = Hub(backend=url)
    assert isinstance(hub, RedisHub if backend_kind == "redis" else Hub)
    if isinstance(hub, RedisHub):
        assert hub.stream == "x"


def test_start_does_not_apply_to_redis() -> None:
    with pytest.raises(ValueError, match="start does not apply"):
        Hub(backend="redis://127.0.0.1:1/0", start=1)


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        ("plain text", "id: {id}\ndata: plain text\n\n"),
        ({"x": 1}, 'id: {id}\ndata: {{"x":1}}\n\n'),
        ({"event": "note", "data": "hi"}, "event: note\nid: {id}\ndata: hi\n\n"),
        (Event(data="two\nlines"), "id: {id}\ndata: two\ndata: lines\n\n"),
        (Event(data="r", retry=250), "id: {id}\nretry: 250\ndata: r\n\n"),
    ],
    ids=["str-is-data", "dict-is-json", "event-type", "multiline", "retry"],
)
def test_ids_are_redis_stream_ids(redis_server: RedisProc, item: Any, wire: str) -> None:
    hub = _hub(redis_server)

    async def run() -> list[bytes]:
        sub = hub.subscribe()
        first = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0.2)  # the XREAD is blocking
        eid = await asyncio.to_thread(hub.publish, item)
        got = await asyncio.wait_for(first, 5)
        return [eid.encode(), *got]

    eid, *got = asyncio.run(run())
    stored = hub._sync.xrange(hub.stream)
    assert [e for e, _ in stored] == [eid]
    assert got == [wire.format(id=eid.decode()).encode()]
    hub.close()


def test_served_stream_resumes_exactly_with_last_event_id(redis_server: RedisProc) -> None:
    hub = _hub(redis_server)
    ids = hub.publish_many([f"e{i}" for i in range(10)])
    with _serve(hub) as handle:
        url = handle.url + "/hub"
        got = _events(url, ids[3], until=lambda ev: ev and ev[-1].id == ids[-1])
    assert [e.id for e in got] == ids[4:]
    assert [e.data for e in got] == [f"e{i}" for i in range(4, 10)]
    hub.close()


@pytest.mark.parametrize(
    ("resume", "reason"),
    [("trimmed", "evicted"), ("not-an-id", "unknown"), ("99999999999999-0", "unknown")],
    ids=["older-than-the-stream", "not-a-stream-id", "newer-than-the-stream"],
)
def test_resume_that_cannot_be_exact_gets_a_gap_event(
    redis_server: RedisProc, resume: str, reason: str
) -> None:
    hub = _hub(redis_server, buffer=100, queue=10)
    ids = hub.publish_many([str(i) for i in range(1000)])  # MAXLEN ~ 100 trims the oldest
    held = hub._sync.xlen(hub.stream)
    assert held < 1000
    last = ids[0] if resume == "trimmed" else resume
    with _serve(hub) as handle:
        got = _events(handle.url + "/hub", last, until=lambda ev: ev and ev[-1].id == ids[-1])
    gap = orjson.loads(got[0].data)
    assert (got[0].event, got[0].id, gap["reason"], gap["last_event_id"]) == (
        "gap", "", reason, last,
    )  # fmt: skip
    assert [e.id for e in got[1:]] == ids[-held:]  # then everything held, nothing twice
    hub.close()


def test_a_subscriber_overtaken_by_trimming_gets_a_gap_event(redis_server: RedisProc) -> None:
    hub = _hub(redis_server, buffer=10, queue=10)

    async def run() -> list[bytes]:
        sub = hub.subscribe()
        first = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(hub.publish, "first")
        taken = await asyncio.wait_for(first, 5)
        await asyncio.to_thread(hub.publish, "second")
        await asyncio.sleep(0.2)  # read, but not taken yet: the reader waits for the consumer
        await asyncio.to_thread(hub.publish_many, [str(i) for i in range(500)])
        return taken + await anext(sub) + await asyncio.wait_for(anext(sub), 5)

    got = asyncio.run(run())
    assert got[0].endswith(b"data: first\n\n")
    assert got[1].endswith(b"data: second\n\n")
    assert got[2].startswith(b"event: gap\n")
    assert b'"reason":"evicted"' in got[2]
    held = [int(chunk.rsplit(b"data: ", 1)[1]) for chunk in got[3:]]
    assert len(held) == 10  # then one batch (queue=10) from the oldest held entry, in order
    assert held == list(range(held[0], held[0] + 10))
    hub.close()


def test_close_ends_subscribers_and_refuses_publishing(redis_server: RedisProc) -> None:
    hub = _hub(redis_server)

    async def run() -> list[list[bytes]]:
        sub = hub.subscribe()
        pending = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0.2)
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
        return []

    asyncio.run(run())
    with pytest.raises(RuntimeError, match="closed"):
        hub.publish("late")
    assert hub.response(None).status_code == 204


# -- several servers, one stream ----------------------------------------------------------


def test_a_client_moving_to_the_other_server_loses_and_repeats_nothing(
    redis_server: RedisProc,
) -> None:
    stream = f"t-{uuid.uuid4().hex[:8]}"
    hubs = [Hub(backend=redis_server.url(stream)) for _ in range(2)]
    publisher = Hub(backend=redis_server.url(stream))
    with _serve(hubs[0]) as a, _serve(hubs[1]) as b:
        ids = publisher.publish_many([f"x{i}" for i in range(50)])
        first = _events(a.url + "/hub", ids[0], until=lambda ev: len(ev) >= 20)[:20]
        rest = _events(b.url + "/hub", first[-1].id, until=lambda ev: ev and ev[-1].id == ids[-1])
    got = first + rest
    assert [e.id for e in got] == ids[1:]
    assert [e.data for e in got] == [f"x{i}" for i in range(1, 50)]
    for hub in (*hubs, publisher):
        hub.close()


@contextmanager
def serve_process(hub_url: str) -> Iterator[str]:
    """`ssenb serve --port 0 --hub URL` as a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssenb", "serve", "--port", "0", "--hub", hub_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert " at " in banner, proc.stderr.read() if proc.stderr else banner
        yield banner.split(" at ")[1].split()[0].rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_two_processes_serve_one_stream_and_resume_across_them(redis_server: RedisProc) -> None:
    hub_url = redis_server.url(f"t-{uuid.uuid4().hex[:8]}")
    publisher = Hub(backend=hub_url)
    with serve_process(hub_url) as a, serve_process(hub_url) as b:
        ids = [httpx.post(a + "/hub", json={"n": i}).json()["id"] for i in range(5)]
        ids += [httpx.post(b + "/hub", json={"n": i}).json()["id"] for i in range(5, 10)]
        ids += publisher.publish_many([orjson.dumps({"n": i}).decode() for i in range(10, 30)])
        first = _events(a + "/hub", ids[0], until=lambda ev: len(ev) >= 12)[:12]
        rest = _events(b + "/hub", first[-1].id, until=lambda ev: ev and ev[-1].id == ids[-1])
    got = first + rest
    assert [e.id for e in got] == ids[1:]
    assert [orjson.loads(e.data)["n"] for e in got] == list(range(1, 30))
    publisher.close()


def test_a_redis_restart_mid_stream_is_reported_never_silent(own_redis: RedisProc) -> None:
    hub = _hub(own_redis)
    with _serve(hub) as handle:
        url = handle.url + "/hub"
        ids = hub.publish_many(["before-1", "before-2"])
        before = _events(url, ids[0], until=lambda ev: ev and ev[-1].id == ids[-1])
        assert [e.data for e in before] == ["before-2"]
        with httpx.Client(timeout=10) as client, client.stream("GET", url) as live:
            parser, seen = EventParser(), []
            chunks = live.iter_raw()
            _wait(lambda: hub.stats["subscribers"] == 1)
            time.sleep(0.2)
            own_redis.stop()
            for chunk in chunks:  # the stream must end with an error event, not hang
                seen.extend(parser.feed(chunk))
        assert [e.event for e in seen] == ["error"]
        assert orjson.loads(seen[0].data)["error"] == "RedisUnavailable"
        own_redis.start()  # empty: the stream is gone, new ids restart from the clock
        after = hub.publish("after")
        got = _events(url, ids[-1], until=lambda ev: ev and ev[-1].id == after)
    assert got[0].event == "gap"
    assert orjson.loads(got[0].data)["reason"] == "unknown"
    assert [e.data for e in got[1:]] == ["after"]
    hub.close()
