"""Specification of `Closer` (`ssenb/client/_closing.py`): close() reaches an iteration
wherever it is (suspended, blocked in a read, waiting to reconnect, not started) and
wakes it at once. Real threads, loops and sockets; the end-to-end behaviour through
`EventSource` is in test_client.py."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from itertools import chain

import httpx
import pytest
from _apps import LIMIT

from ssenb.client._closing import Closer


def _close_later(closer: Closer, after: float = 0.05) -> threading.Timer:
    timer = threading.Timer(after, closer.close)
    timer.start()
    return timer


def test_wait_sleeps_the_delay_while_open() -> None:
    closer = Closer()
    started = time.monotonic()
    assert closer.wait(0.05) is False
    assert time.monotonic() - started >= 0.04


def test_close_from_another_thread_cuts_a_wait_short() -> None:
    closer = Closer()
    timer = _close_later(closer)
    started = time.monotonic()
    assert closer.wait(LIMIT * 10) is True
    assert time.monotonic() - started < LIMIT
    timer.join()


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["same loop", "another thread"])
async def test_close_cuts_an_async_wait_short(where: str) -> None:
    closer = Closer()
    event = closer.bind_loop()
    if where == "same loop":
        asyncio.get_running_loop().call_later(0.05, closer.close)
    else:
        timer = _close_later(closer)
    started = time.monotonic()
    assert await closer.wait_async(event, LIMIT * 10) is True
    assert time.monotonic() - started < LIMIT
    if where == "another thread":
        timer.join()


@pytest.mark.anyio
async def test_async_wait_times_out_while_open_and_binding_after_close_is_set() -> None:
    closer = Closer()
    assert await closer.wait_async(closer.bind_loop(), 0.02) is False
    closer.close()
    assert closer.bind_loop().is_set()


def test_close_without_an_iteration_is_idle() -> None:
    closer = Closer()
    assert closer.close() == "idle"
    assert closer.closed


def test_close_finishes_a_suspended_generator_at_once() -> None:
    closer = Closer()
    released: list[str] = []

    def iteration() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            released.append("connection")

    assert not closer.active()
    gen = iteration()
    closer.track(gen)
    assert closer.active()
    assert next(gen) == 0
    assert closer.close() == "done"
    assert released == ["connection"]  # before close() returned
    assert not closer.active()
    assert list(gen) == []


def test_close_signals_a_generator_running_on_another_thread() -> None:
    closer = Closer()
    inside = threading.Event()

    def iteration() -> Iterator[int]:
        inside.set()
        while not closer.closed:
            time.sleep(0.005)
        yield 1

    gen = iteration()
    closer.track(gen)
    worker = threading.Thread(target=lambda: list(gen), daemon=True)
    worker.start()
    assert inside.wait(LIMIT)
    assert closer.close() == "signalled"
    worker.join(LIMIT)
    assert not worker.is_alive()


class _Stream:
    """The one method of httpcore's network stream that `shutdown` uses, on a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


def test_shutdown_wakes_a_read_blocked_on_another_thread() -> None:
    closer = Closer()
    ours, theirs = socket.socketpair()
    got: list[bytes] = []
    with ours, theirs:
        reader = threading.Thread(target=lambda: got.append(ours.recv(10)), daemon=True)
        reader.start()
        time.sleep(0.05)
        closer.response = httpx.Response(200, extensions={"network_stream": _Stream(ours)})
        closer.shutdown()
        reader.join(LIMIT)
        assert not reader.is_alive()
    assert got == [b""]  # EOF: the blocked read returned


@pytest.mark.parametrize(
    "response",
    [None, httpx.Response(200), httpx.Response(200, extensions={"network_stream": None})],
    ids=["no response", "no network stream", "stream already gone"],
)
def test_shutdown_without_a_socket_does_nothing(response: httpx.Response | None) -> None:
    closer = Closer()
    closer.response = response
    closer.shutdown()
    assert not closer.closed


def test_close_from_another_thread_empties_the_batch_being_consumed() -> None:
    closer = Closer()
    results: list[str] = []

    def batches() -> Iterator[list[int]]:
        closer.owner = threading.get_ident()
        while not closer.closed:
            yield list(range(1000))

    gen = batches()
    closer.track(gen)
    got: list[int] = []
    for value in chain.from_iterable(closer.clearing(gen)):
        got.append(value)
        if len(got) == 10:  # mid-batch, the generator suspended: close from elsewhere
            other = threading.Thread(target=lambda: results.append(closer.close()))
            other.start()
            other.join(LIMIT)
    assert results == ["signalled"]  # it never touched a generator another thread owns
    assert got == list(range(10))  # nothing of the batch was handed out after close()
    assert not closer.active()
