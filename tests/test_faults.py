"""Fault injection (issue 11): nothing is lost or repeated when the network misbehaves.

A `FaultProxy` (tests/_proxy.py) on 127.0.0.1 cuts every connection at a random offset moved
to a chosen kind of position (mid-line, inside a UTF-8 character, between CR and LF, inside
chunk framing), ends it with FIN or RST, stalls some connections briefly and some for good
(the client's idle timeout ends those), and refuses connections for a while. Behind it, a
`ResumableOrigin` (tests/_origins.py) rotates LF / CRLF / CR line ends and chunked /
close-delimited bodies per connection and resumes from `Last-Event-ID`. Every consumer
(`EventSource` sync and async, `watch`, `record`) must get ids 1..n exactly once, in order,
with the exact data, and a recording on disk must hold the same. A Hub-backed origin that
restarts mid-stream (replay buffer lost) must show the client a `gap` event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _origins import VARIANTS, HubOrigin, ResumableOrigin, ids, payload
from _proxy import KINDS, FaultProxy, Faults, LoopThread, find_cut
from conftest import run_asgi

import ssenb
from ssenb import Event, EventSource, RetryPolicy

QUICK = RetryPolicy(initial=0.005, maximum=0.05, jitter=0.0)
# Client settings for every consumer: fast retries, an idle timeout that ends a hung
# connection in well under a second, and enough retries to outlast a refusal period.
SOURCE_KW: dict[str, Any] = {"retry_policy": QUICK, "idle_timeout": 0.4, "max_retries": 50}
FAULTS = Faults(hang=0.02, refuse=0.04, stall=0.1)
BIG = 10_000
MIN_CUTS = 50


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as lt:
        yield lt


def _expected(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]


def _check_events(events: list[Event], n: int) -> None:
    """Ids 1..n exactly once and in order, each with its exact data."""
    assert ids(events) == _expected(n)
    bad = [e for e in events if e.data != payload(int(e.id)) or e.event != "message"]
    assert bad == []


def _check_faults(proxy: FaultProxy, origin: ResumableOrigin, *, min_cuts: int) -> None:
    """The run really met the faults it claims to survive."""
    assert proxy.total_cuts >= min_cuts, proxy.cuts
    kinds = proxy.kinds_cut()
    assert all(kinds[k] >= 1 for k in KINDS), kinds
    hows = {how for _kind, how in proxy.cuts}
    assert {"fin", "rst"} <= hows, proxy.cuts
    assert set(origin.served) == set(VARIANTS), origin.served
    assert origin.resumes >= min_cuts


def _setup(loop: LoopThread, n: int, seed: int, faults: Faults = FAULTS) -> tuple[Any, Any]:
    origin = loop.run(ResumableOrigin(n, seed=seed).start())
    proxy = loop.run(FaultProxy(origin.port, faults, seed=seed).start())
    return origin, proxy


# -- the proxy itself --------------------------------------------------------------------

CUT_CASES = [
    ("mid-line", "mid-line", b"id: 1\ndata: abc\n", 1, 1),
    ("mid-line skips line ends", "mid-line", b"ab\n\ncd", 2, 5),
    ("mid-utf8", "mid-utf8", "data: é".encode(), 0, 7),
    ("cr-lf", "cr-lf", b"data: x\r\n\r\n", 0, 8),
    ("chunk-framing", "chunk-framing", b"HTTP/1.1 200 X\r\n\r\n1a\r\ndata", 0, 20),
    ("anywhere", "anywhere", b"xyz", 2, 2),
]


@pytest.mark.parametrize(
    ("kind", "data", "start", "at"), [c[1:] for c in CUT_CASES], ids=[c[0] for c in CUT_CASES]
)
def test_cut_positions_are_of_the_kind_asked(kind: str, data: bytes, start: int, at: int) -> None:
    p = find_cut(kind, data, start)
    assert p == at
    if kind == "mid-utf8":
        with pytest.raises(UnicodeDecodeError):
            data[:p].decode()


def test_no_cut_position_when_the_kind_does_not_occur() -> None:
    assert find_cut("cr-lf", b"data: x\n\n", 0) is None
    assert find_cut("mid-utf8", b"data: ascii\n\n", 0) is None
    assert find_cut("chunk-framing", b"id: 1\r\ndata: 2\r\n\r\n", 0) is None


def test_a_clean_proxy_changes_nothing(loop: LoopThread) -> None:
    _origin, proxy = _setup(loop, 500, seed=1, faults=Faults(cut=0.0, stall=0.0))
    with EventSource(proxy.url + "/s", **SOURCE_KW) as es:
        events = list(es)
        assert es.reconnects == 0
    _check_events(events, 500)
    assert proxy.total_cuts == 0


# -- exactly once through the faults --------------------------------------------------------


@pytest.mark.timeout(30)
def test_sync_event_source_small_run_survives_every_kind_of_cut(loop: LoopThread) -> None:
    """The quick version of the 10,000-event runs below (no stalls for good, no refusals)."""
    origin, proxy = _setup(loop, 2000, seed=7, faults=Faults(offsets=(150, 1500)))
    with EventSource(proxy.url + "/s", **SOURCE_KW) as es:
        events = list(es)
    _check_events(events, 2000)
    _check_faults(proxy, origin, min_cuts=MIN_CUTS)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sync_event_source_gets_10000_events_exactly_once(loop: LoopThread) -> None:
    origin, proxy = _setup(loop, BIG, seed=11)
    started = time.monotonic()
    with EventSource(proxy.url + "/s", **SOURCE_KW) as es:
        events = list(es)
        reconnects = es.reconnects
    _check_events(events, BIG)
    _check_faults(proxy, origin, min_cuts=MIN_CUTS)
    assert reconnects >= proxy.total_cuts  # each cut (and each refusal) is one reconnect
    assert proxy.stalls >= 1
    assert proxy.refusals >= 1
    assert proxy.cuts[("hang", "stall")] >= 1
    assert time.monotonic() - started < 30


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_async_event_source_gets_10000_events_exactly_once(loop: LoopThread) -> None:
    origin, proxy = _setup(loop, BIG, seed=12)
    events: list[Event] = []
    async with EventSource(proxy.url + "/s", **SOURCE_KW) as es:
        async for event in es:
            events.append(event)
    _check_events(events, BIG)
    _check_faults(proxy, origin, min_cuts=MIN_CUTS)


def _check_recording(path: Path, n: int) -> None:
    """The file holds ids 1..n once each, in order, with the exact data, line by line, and
    `read_jsonl` loads the same."""
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["id"] for r in lines] == _expected(n)
    assert [r["data"] for r in lines] == [payload(i) for i in range(1, n + 1)]
    df = ssenb.read_jsonl(path)
    assert df["id"].tolist() == _expected(n)
    assert df["data.i"].tolist() == list(range(1, n + 1))
    assert (df["data.s"] == "é€😀").all()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_watch_with_recording_gets_10000_events_and_the_file_matches(
    loop: LoopThread, tmp_path: Path
) -> None:
    origin, proxy = _setup(loop, BIG, seed=13)
    path = tmp_path / "watch.jsonl"
    sub = ssenb.watch(proxy.url + "/s", display=False, record=path, batch_size=500, **SOURCE_KW)
    try:
        assert sub.wait(45), "watch did not finish"
    finally:
        sub.stop()
    assert sub.error is None
    assert sub.status == "done"
    _check_events(sub.events, BIG)
    assert sub.df["data.i"].tolist() == list(range(1, BIG + 1))
    _check_recording(path, BIG)
    _check_faults(proxy, origin, min_cuts=MIN_CUTS)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_record_gets_10000_events_and_the_file_matches(loop: LoopThread, tmp_path: Path) -> None:
    origin, proxy = _setup(loop, BIG, seed=14)
    path = tmp_path / "record.jsonl"
    assert ssenb.record(proxy.url + "/s", path, **SOURCE_KW) == BIG
    _check_recording(path, BIG)
    _check_faults(proxy, origin, min_cuts=MIN_CUTS)


@pytest.mark.timeout(30)
def test_the_demo_ticks_producer_resumes_exactly_through_the_faults(loop: LoopThread) -> None:
    """The real server stack (uvicorn, EventStreamResponse, /ticks honouring Last-Event-ID,
    chunked LF bodies) behind the proxy: the same events as a clean connection gives."""
    n = 3000
    with run_asgi(ssenb.demo_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        proxy = loop.run(FaultProxy(port, Faults(offsets=(200, 3000)), seed=5).start())
        path = f"/ticks?n={n}&rate=0"
        with EventSource(url + path, **SOURCE_KW) as es:
            clean = list(es)
        with EventSource(proxy.url + path, **SOURCE_KW) as es:
            faulty = list(es)
        loop.run(proxy.stop())
    assert ids(clean) == _expected(n)
    assert ids(faulty) == ids(clean)  # exactly once, in order
    values = [[json.loads(e.data)["value"] for e in run] for run in (clean, faulty)]
    assert values[0] == values[1]  # `t` is the send time: it differs
    assert proxy.total_cuts >= 20


# -- a restarted producer: the lost replay buffer shows as a gap ------------------------------


@contextmanager
def _hub_after_300_events(
    loop: LoopThread,
) -> Iterator[tuple[FaultProxy, HubOrigin, Iterator[Event], list[Event]]]:
    """A hub behind a fault proxy, and a client that has read its first 300 events: yields
    (proxy, origin, the client's event iterator, the events read so far)."""
    proxy = loop.run(FaultProxy(0).start())
    origin = HubOrigin(run_asgi, on_port=lambda port: setattr(proxy, "upstream", port)).start()
    got: list[Event] = []
    try:
        origin.hub.publish_many([f"first-{i}" for i in range(1, 301)])
        start = str(int(origin.hub.stats["first_id"]) - 1)  # replay from this hub's start
        with EventSource(proxy.url + "/events", last_event_id=start, **SOURCE_KW) as es:
            events = iter(es)
            got += [next(events) for _ in range(300)]
            yield proxy, origin, events, got
    finally:
        origin.stop()
        loop.run(proxy.stop())


@pytest.mark.timeout(30)
def test_a_restarted_hub_surfaces_the_lost_buffer_as_a_gap_event(loop: LoopThread) -> None:
    with _hub_after_300_events(loop) as (_proxy, origin, events, got):
        origin.restart()  # new server, new Hub: events 1..300 are gone from its buffer
        origin.hub.publish_many([f"second-{i}" for i in range(1, 6)])
        got += [next(events) for _ in range(6)]
    assert [e.data for e in got[:300]] == [f"first-{i}" for i in range(1, 301)]
    gap = got[300]
    assert gap.event == "gap", got[300:]
    info = json.loads(gap.data)
    assert info["last_event_id"] == got[299].id
    assert info["reason"] == "unknown"
    assert [e.data for e in got[301:]] == [f"second-{i}" for i in range(1, 6)]
    assert origin.restarts == 1


@pytest.mark.timeout(30)
def test_a_restarted_hub_that_already_passed_the_clients_id_still_sends_a_gap(
    loop: LoopThread,
) -> None:
    with _hub_after_300_events(loop) as (proxy, origin, events, got):
        loop.call(proxy.refuse_for, 0.3)  # the client comes back only after ...
        origin.restart()
        origin.hub.publish_many([f"second-{i}" for i in range(1, 501)])  # ... these
        got.append(next(events))
    assert proxy.refusals == 1
    assert got[300].event == "gap", got[300]
