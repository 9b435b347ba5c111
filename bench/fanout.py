"""Hub fan-out: events delivered per second to 1, 10, 100, 1000 subscribers, zero drops.

The server (uvicorn thread, `ssenb.serve`) and the publisher (this process's main thread,
as a notebook cell would) run here; the subscribers run in a second process on raw asyncio
sockets, parse with `ssenb.EventParser` and check every id (no loss, no repeat, no drop
event). Each hub is measured beside a baseline in the same run: a hub that writes each event
separately (one `asyncio.Queue` per subscriber feeding a plain `StreamingResponse`, the
usual broadcaster). The publisher runs flat out for a fixed time but never gets more than
a window of events (below the queue) ahead of the slowest subscriber's parsed events (the
subscribers' process shares that count through a memory-mapped file), so nobody can be
dropped and the figure is sustained delivery, not socket buffers filling; then p50/p99 latency
(publish -> parsed in the other process) at 50 events/s. Target (DESIGN.md): at 1000
subscribers >= 3x the baseline and >= 500 k delivered events/s.

    python bench/fanout.py                  # about 90 s
    python bench/fanout.py --quick          # smoke run, a few seconds (tests call it)
    python bench/fanout.py --json out.json  # also write the figures
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import mmap
import os
import resource
import struct
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from _subscribers import Subscribers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

import ssenb
from ssenb import EventParser, Hub

QUEUE = 5_000  # each subscriber's bound, both hubs


def _raise_open_files(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


# -- the baseline: one queue per subscriber, one write per event ---------------------------


class PerEventHub:
    """The usual broadcaster: encode once, put on every subscriber's queue, write each."""

    def __init__(self, queue: int = QUEUE) -> None:
        self.queue = queue
        self.queues: set[asyncio.Queue[bytes | None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.next_id = 1
        self.dropped = 0

    def publish_many(self, data: list[str]) -> None:
        first, self.next_id = self.next_id, self.next_id + len(data)
        chunks = [f"id: {first + k}\ndata: {d}\n\n".encode() for k, d in enumerate(data)]
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._fan_out, chunks)

    def _fan_out(self, chunks: list[bytes]) -> None:
        for q in list(self.queues):
            if q.qsize() + len(chunks) >= self.queue:  # too slow: ends its stream
                self.queues.discard(q)
                self.dropped += 1
                q._queue.clear()  # type: ignore[attr-defined]
                q.put_nowait(None)
                continue
            for chunk in chunks:
                q.put_nowait(chunk)

    def subscribers(self) -> int:
        return len(self.queues)

    async def stream(self, q: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await q.get()
                if chunk is None:
                    return
                yield chunk
        finally:
            self.queues.discard(q)

    async def endpoint(self, request: Request) -> Response:
        self.loop = asyncio.get_running_loop()
        q: asyncio.Queue[bytes | None] = asyncio.Queue(self.queue)
        self.queues.add(q)
        return StreamingResponse(self.stream(q), media_type="text/event-stream")


class HubAdapter:
    """`ssenb.Hub` behind the same small interface."""

    def __init__(self) -> None:
        self.hub = Hub(queue=QUEUE, start=1)  # ids 1, 2, ... checked in order by the clients
        self.publish_many = self.hub.publish_many

    def subscribers(self) -> int:
        return int(self.hub.stats["subscribers"])

    @property
    def dropped(self) -> int:
        return int(self.hub.stats["dropped"])

    async def endpoint(self, request: Request) -> Response:
        return self.hub.response(request)


HUBS = {"ssenb Hub": HubAdapter, "per-event writes": PerEventHub}


# -- the subscribers' process -----------------------------------------------------------------


class Sub(asyncio.Protocol):
    """One subscriber on a raw socket: de-chunks the body, parses it, checks every id."""

    def __init__(self, box: dict[str, Any], request: bytes) -> None:
        self.box, self.parser, self.request = box, EventParser(), request
        self.raw, self.need, self.skip = bytearray(), 0, 0  # chunked-encoding state
        self.expect, self.errors, self.dropped = 1, 0, 0
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        transport.write(self.request)

    def _dechunk(self, data: bytes) -> bytes:
        raw, out, pos = self.raw, [], 0
        raw += data
        while pos < len(raw):
            if self.need:  # inside a chunk's payload
                take = min(self.need, len(raw) - pos)
                out.append(bytes(raw[pos : pos + take]))
                pos, self.need = pos + take, self.need - take
                self.skip = 0 if self.need else 2
            elif self.skip:  # the CRLF after a payload
                take = min(self.skip, len(raw) - pos)
                pos, self.skip = pos + take, self.skip - take
            else:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                self.need, pos = int(raw[pos:eol], 16), eol + 2
                if not self.need:
                    break  # the last chunk
        del raw[:pos]
        return b"".join(out)

    def data_received(self, data: bytes) -> None:
        if not self.connected.done():
            self.raw += data
            head, sep, rest = bytes(self.raw).partition(b"\r\n\r\n")
            if not sep:
                return
            self.raw.clear()
            self.connected.set_result(head.startswith(b"HTTP/1.1 200"))
            data = rest
        self.take(self.parser.feed(self._dechunk(data)))

    def take(self, events: list[Any]) -> None:
        """Count and check parsed events (ids 1, 2, ...; bench/hub_redis.py overrides it)."""
        box, expect = self.box, self.expect
        for event in events:
            if event.event != "message":
                self.dropped += 1
                continue
            if int(event.id) != expect:
                self.errors += 1
            expect = int(event.id) + 1
            if expect > box["latency_from"] > 0:
                box["delays"].append(time.time() - float(event.data))
        self.expect = expect


def _quantile(ordered: list[float], q: float) -> float | None:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else None


async def subscribers(url: str, n: int, progress_path: str, sub_class: type[Sub] = Sub) -> None:
    _raise_open_files(n + 100)
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    box: dict[str, Any] = {"latency_from": 0, "delays": []}
    gate = asyncio.Semaphore(100)
    request = f"GET /sub HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def connect() -> tuple[Any, Sub]:
        async with gate:
            factory = lambda: sub_class(box, request)  # noqa: E731
            transport, sub = await loop.create_connection(factory, host, int(port))
            assert await sub.connected, "subscription refused"
            return transport, sub

    conns = await asyncio.gather(*(connect() for _ in range(n)))
    print("ready", flush=True)
    progress = mmap.mmap(os.open(progress_path, os.O_RDWR), 8)

    async def report_progress() -> None:  # the id every subscriber has parsed, every ~1 ms
        while True:
            struct.pack_into("q", progress, 0, min(s.expect for _, s in conns) - 1)
            await asyncio.sleep(0.001)

    reporter = loop.create_task(report_progress())
    lines = asyncio.Queue[str]()
    threading.Thread(
        target=lambda: [loop.call_soon_threadsafe(lines.put_nowait, s) for s in sys.stdin],
        daemon=True,
    ).start()
    while (line := (await lines.get()).split())[0] != "quit":
        if line[0] == "latency":
            box["latency_from"], box["delays"] = int(line[1]), []
        elif line[0] == "wait":  # until every subscriber has taken this id
            last, deadline = int(line[1]), time.monotonic() + 20
            while any(s.expect <= last for _, s in conns) and time.monotonic() < deadline:
                await asyncio.sleep(0.0005)
            delays = sorted(box["delays"])
            report = {
                "done_at": time.time(),
                "complete": all(s.expect > last for _, s in conns),
                "slowest": min(s.expect for _, s in conns) - 1,
                "errors": sum(s.errors for _, s in conns),
                "dropped": sum(s.dropped for _, s in conns),
                "p50_ms": _quantile(delays, 0.5),
                "p99_ms": _quantile(delays, 0.99),
            }
            print(json.dumps(report), flush=True)
    reporter.cancel()
    for transport, _ in conns:
        transport.close()


# -- the publisher's side -----------------------------------------------------------------------


def run(
    kind: str, n: int, seconds: float, latency_seconds: float,
    hubs: dict[str, Any] = HUBS, child_script: str = __file__,
) -> dict[str, Any]:  # fmt: skip
    """One hub, n subscribers: flat-out delivery rate, then latency at 50 events/s.
    (`hubs` and `child_script`, whose `--subscribers` mode runs them, let bench/hub_redis.py
    measure other hubs with the same harness.)"""
    hub = hubs[kind]()
    app = Starlette(routes=[Route("/sub", hub.endpoint)])
    with (
        ssenb.serve(app, name=f"fanout-{uuid.uuid4()}") as handle,
        Subscribers(handle.url, n, child_script, QUEUE) as subs,
    ):
        deadline = time.monotonic() + 20
        while hub.subscribers() < n and time.monotonic() < deadline:
            time.sleep(0.01)
        sent, started = subs.flat_out(hub.publish_many, seconds)
        flat = subs.ask(f"wait {sent}")
        rate = n * sent / (flat["done_at"] - started)
        slow, ticks = subs.latency(hub.publish_many, sent, latency_seconds)
    return {
        "hub": kind,
        "subscribers": n,
        "published": sent + ticks,
        "delivered_per_s": rate,
        "complete": flat["complete"] and slow["complete"],
        "errors": flat["errors"] + slow["errors"],
        "dropped": hub.dropped + slow["dropped"],
        "p50_ms": slow["p50_ms"],
        "p99_ms": slow["p99_ms"],
    }


def parse_args(description: str, sub_class: type[Sub] = Sub) -> argparse.Namespace | None:
    """The options of both hub benchmarks. In `--subscribers` mode (the child process) this
    runs the subscribers, with `sub_class`, and returns None; else it readies the parent."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 and 100 subscribers")
    parser.add_argument("--json", help="write the figures to this path")
    parser.add_argument("--subscribers", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribers:
        url, n, path = args.subscribers
        asyncio.run(subscribers(url, int(n), path, sub_class))
        return None
    _raise_open_files(3000)
    # a baseline writes on after its subscribers hang up: asyncio warns once per write
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    return args


def clean(*results: dict[str, Any]) -> bool:
    """Every event reached every subscriber, in order, and nobody was dropped."""
    return all(r["complete"] and not r["errors"] and not r["dropped"] for r in results)


def finish(args: argparse.Namespace, rows: list[dict[str, Any]], begun: float) -> int:
    """Print the time taken, write the JSON figures; exit status 1 if a row lost events."""
    print(f"total {time.monotonic() - begun:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "rows": rows}, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    if args is None:
        return 0
    begun = time.monotonic()
    counts = (1, 100) if args.quick else (1, 10, 100, 1000)
    seconds, latency_seconds = (0.5, 0.3) if args.quick else (3.0, 1.5)
    print(f"ssenb {ssenb.__version__} hub fan-out{' (quick)' if args.quick else ''}")
    print(
        f"  {'subscribers':>11} {'ssenb Hub ev/s':>15} {'per-event ev/s':>15} {'ratio':>6}"
        f"   {'Hub p50/p99 ms':>15} {'per-event p50/p99':>18}  checks"
    )
    rows = []
    for n in counts:
        hub = run("ssenb Hub", n, seconds, latency_seconds)
        base = run("per-event writes", n, seconds, latency_seconds)
        ratio = hub["delivered_per_s"] / base["delivered_per_s"]
        ok = clean(hub, base)
        rows.append({"subscribers": n, "hub": hub, "baseline": base, "ratio": ratio, "ok": ok})
        print(
            f"  {n:>11} {hub['delivered_per_s']:>15,.0f} {base['delivered_per_s']:>15,.0f}"
            f" {ratio:>5.1f}x   {hub['p50_ms']:>6.2f} / {hub['p99_ms']:<6.2f}"
            f" {base['p50_ms']:>8.2f} / {base['p99_ms']:<7.2f}"
            f"  {'every event, zero drops' if ok else 'LOSS OR DROPS'}",
            flush=True,
        )
    top = rows[-1]
    print(
        f"\ntarget at {top['subscribers']} subscribers: >= 3x per-event writes and >= 500 k ev/s:"
        f" {top['ratio']:.1f}x, {top['hub']['delivered_per_s'] / 1e3:,.0f} k ev/s"
        f"  {'met' if top['ratio'] >= 3 and top['hub']['delivered_per_s'] >= 5e5 else 'NOT met'}"
    )
    return finish(args, rows, begun)


if __name__ == "__main__":
    raise SystemExit(main())
