"""Load on a real `ssenb.serve()` server over loopback: 1,000 concurrent clients.

Rounds of 1,000 clients connect to endless streams, read their first event, then vanish
abruptly (RST through SO_LINGER 0, plain close, or RST before the response). After each round
the server must be back where it started: no tasks on its loop, no uvicorn connections, no
threads, no file descriptors, and RSS flat between rounds. A consumer that never reads must
not slow the others down, and `stop()` with 1,000 clients attached returns in seconds.
Figures are printed (run with `-s`) and quoted in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import resource
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

import ssenb
from ssenb.server import Hub, ServerHandle

pytestmark = [pytest.mark.slow]

CLIENTS = 1000
ROUNDS = 4
DROPS = ("rst", "close", "rst-before-response")


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    _raise_fd_limit(4 * CLIENTS + 1024)  # both ends of every connection live in this process
    with ssenb.serve(name=f"test-load-{uuid.uuid4().hex[:6]}") as handle:
        yield handle


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _server_tasks(handle: ServerHandle) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # minus this one

    assert handle._loop is not None
    return asyncio.run_coroutine_threadsafe(count(), handle._loop).result(5)


def _connections(handle: ServerHandle) -> int:
    return len(handle._server.server_state.connections)


def _snapshot(handle: ServerHandle) -> dict[str, float]:
    gc.collect()
    return {
        "tasks": _server_tasks(handle),
        "connections": _connections(handle),
        "threads": threading.active_count(),
        "fds": _fds(),
        "rss_mb": round(_rss_mb(), 1),
    }


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def _request(handle: ServerHandle, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{handle.port}\r\n\r\n".encode()


async def _open(handle: ServerHandle, path: str, gate: asyncio.Semaphore, read: bool) -> Any:
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
    writer.write(_request(handle, path))
    if read:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)  # response head
            await asyncio.wait_for(reader.readuntil(b"\n\n"), 20)  # the first event
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            got = bytes(reader._buffer[:200])
            raise AssertionError(f"no first event ({exc!r}); got {got!r}") from None
    return reader, writer


def _drop(writer: asyncio.StreamWriter, how: str) -> None:
    if how == "close":
        writer.close()
        return
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # close now; with linger 0 the kernel sends RST


async def _round(handle: ServerHandle, path: str, n: int) -> tuple[float, int]:
    """Attach `n` clients (a third of them drop before the response); returns (s, peak)."""
    gate = asyncio.Semaphore(200)
    started = time.monotonic()
    hows = [DROPS[i % len(DROPS)] for i in range(n)]
    pairs = await asyncio.gather(
        *[_open(handle, path, gate, read=how != "rst-before-response") for how in hows]
    )
    took = time.monotonic() - started
    peak = handle.streams
    for (_, writer), how in zip(pairs, hows, strict=True):
        _drop(writer, how)
    await asyncio.sleep(0)
    return took, peak


def _endpoints(handle: ServerHandle) -> list[str]:
    paths = ["/ticks?rate=2"]
    if any(getattr(r, "path", None) == "/hub/ticks" for r in getattr(handle.app, "routes", [])):
        paths.append("/hub/ticks")  # one shared Hub ticker fanned out to every client
    return paths


@pytest.mark.timeout(90)
def test_rounds_of_1000_abrupt_clients_leave_nothing_behind(server: ServerHandle) -> None:
    paths = _endpoints(server)
    asyncio.run(_round(server, paths[0], 100))  # warm-up: imports, caches, allocator pools
    assert _wait(lambda: server.streams == 0 and _connections(server) == 0, 10)
    base = _snapshot(server)
    rows = []
    for i in range(ROUNDS):
        path = paths[i % len(paths)]
        took, peak = asyncio.run(_round(server, path, CLIENTS))
        settled = _wait(lambda: server.streams == 0 and _connections(server) == 0, 15)
        # a shared hub ticker stops by itself 2 s after its last subscriber left
        _wait(lambda: _server_tasks(server) <= base["tasks"], 5)
        after = _snapshot(server)
        rows.append({"round": i + 1, "path": path, "connect_s": round(took, 2), "peak": peak})
        rows[-1].update(after)
        assert settled, rows[-1]
        assert peak >= 2 * CLIENTS // 3 - 5, rows[-1]  # every reading client was streaming
    for row in rows:
        print("load round", row)
    print("baseline", base)
    for row in rows:
        assert row["tasks"] <= base["tasks"], row
        assert row["threads"] <= base["threads"], row
        assert row["fds"] <= base["fds"] + 4, row
    growth = rows[-1]["rss_mb"] - rows[0]["rss_mb"]
    print(f"RSS growth rounds 1->{ROUNDS}: {growth:.1f} MB")
    assert growth < 20, rows


async def _read_events(handle: ServerHandle, path: str, seconds: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
    writer.write(_request(handle, path))
    seen, deadline = 0, time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                break
            if not chunk:
                break
            seen += chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
    finally:
        writer.close()
    return seen


async def _stalled_readers(handle: ServerHandle, n: int, path: str) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", handle.port))
        sock.sendall(_request(handle, path))
        socks.append(sock)  # never read from
    return socks


@pytest.mark.timeout(60)
def test_consumers_that_never_read_do_not_slow_the_others(server: ServerHandle) -> None:
    alone = asyncio.run(_read_events(server, "/ticks?rate=100", 1.5))
    rss0 = _rss_mb()
    stalled = asyncio.run(_stalled_readers(server, 50, "/ticks?rate=0"))
    try:
        assert _wait(lambda: server.streams >= 50, 10)
        time.sleep(0.5)  # their socket buffers are full now; their producers wait
        beside = asyncio.run(_read_events(server, "/ticks?rate=100", 1.5))
        rss1 = _rss_mb()
    finally:
        for sock in stalled:
            sock.close()
    print(f"rate=100 reader: {alone} events alone, {beside} beside 50 stalled unthrottled")
    print(f"RSS with 50 stalled unthrottled streams: +{rss1 - rss0:.1f} MB")
    assert alone >= 120
    assert beside >= 0.8 * alone
    assert rss1 - rss0 < 50  # each stalled stream holds about HIGH_WATER, not a backlog
    assert _wait(lambda: server.streams == 0, 10)


async def _read_ids(handle: ServerHandle, path: str, last: int, timeout: float) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
    writer.write(_request(handle, path))
    data = bytearray()
    marker = f"id: {last}\n".encode()
    try:
        async with asyncio.timeout(timeout):
            while marker not in data[-65536 - len(marker) :]:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                data += chunk
    finally:
        writer.close()
    return [int(m) for m in re.findall(rb"id: (\d+)\n", bytes(data))]


@pytest.mark.timeout(60)
def test_a_hub_subscriber_that_never_reads_is_dropped_and_stalls_nobody() -> None:
    hub = Hub(buffer=1000, queue=2000, start=1)
    app = FastAPI()

    @app.get("/h")
    async def h(request: Request) -> Response:
        return hub.response(request)

    total, batch, payload = 20_000, 100, "x" * 200
    with ssenb.serve(app, name=f"test-hub-{uuid.uuid4().hex[:6]}") as handle:
        stalled = asyncio.run(_stalled_readers(handle, 1, "/h"))

        async def run() -> tuple[list[int], float]:
            reader = asyncio.create_task(_read_ids(handle, "/h", total, 30))
            async with asyncio.timeout(10):
                while hub.stats["subscribers"] < 2:
                    await asyncio.sleep(0.01)
            started = time.monotonic()
            for _ in range(total // batch):
                await asyncio.to_thread(hub.publish_many, [payload] * batch)
                await asyncio.sleep(0.001)
            return await reader, time.monotonic() - started

        try:
            ids, took = asyncio.run(run())
            stats = hub.stats
            cut = _wait(lambda: handle.streams == 0, 2 + 3)  # DROP_GRACE is 1 s
        finally:
            stalled[0].close()
    print(f"hub: {total} events published in {took:.2f} s past a stalled subscriber; {stats}")
    assert ids == list(range(1, total + 1))  # the reading subscriber lost nothing
    assert stats["dropped"] == 1  # the stalled one was dropped, not waited for
    assert cut  # and its connection was cut
    assert took < 10


@pytest.mark.timeout(60)
def test_stop_with_1000_clients_attached_returns_within_seconds() -> None:
    _raise_fd_limit(4 * CLIENTS + 1024)
    handle = ssenb.serve(name=f"test-load-stop-{uuid.uuid4().hex[:6]}")

    async def attach_then_stop() -> tuple[float, int, int]:
        gate = asyncio.Semaphore(200)
        paths = _endpoints(handle)
        pairs = await asyncio.gather(
            *[_open(handle, paths[i % len(paths)], gate, read=True) for i in range(CLIENTS)]
        )
        attached = handle.streams
        started = time.monotonic()
        await asyncio.to_thread(handle.stop)
        took = time.monotonic() - started
        ended = 0
        for reader, writer in pairs:
            try:
                while await asyncio.wait_for(reader.read(65536), 5):
                    pass
                ended += 1
            except (ConnectionError, TimeoutError):
                pass
            writer.close()
        return took, attached, ended

    took, attached, ended = asyncio.run(attach_then_stop())
    print(f"stop() with {attached} streams attached: {took:.2f} s; {ended} saw the end")
    assert attached == CLIENTS
    assert took < 3.0
    assert ended == CLIENTS
    assert not handle.running
