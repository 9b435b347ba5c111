"""End to end: producer -> uvicorn -> loopback -> consumer, events counted as parsed objects.

Compares, in one run (ratios are taken within it):
  * ssenb: `/ticks?rate=0` (coalescing EventStreamResponse) read by `ssenb.EventSource`;
  * ssenb's server read by httpx-sse (to separate the server's share from the client's);
  * fastapi.sse (`EventSourceResponse` + `ServerSentEvent(raw_data=...)`) read by httpx-sse;
  * sse-starlette (`EventSourceResponse` over dicts) read by httpx-sse;
for small (~50 B) and 1 KB events, with the server in a thread of this process (the notebook
case: both sides share one GIL) and in a second process. Then p50/p99 latency from
production to parsed event at 50 events/s. Targets (DESIGN.md): ssenb >= 40x fastapi.sse +
httpx-sse in one process; p99 < 5 ms at 50 ev/s.

    python bench/e2e.py            # about a minute
    python bench/e2e.py --quick    # a smoke run of a few seconds (tests call it)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

import ssenb
from ssenb import Event, EventStreamResponse

PAD = "x" * 1000  # 1 KB events: {"i": n, "pad": "xxx..."}


# -- servers -------------------------------------------------------------------------------


def _big_events(n: int) -> AsyncIterator[Event]:
    async def gen() -> AsyncIterator[Event]:
        for i in range(1, n + 1):
            yield Event(data=f'{{"i":{i},"pad":"{PAD}"}}', id=str(i))
        yield Event(data="[DONE]")

    return gen()


def ssenb_app() -> Any:
    app = ssenb.demo_app()  # /ticks is the small-event workload

    @app.get("/big")
    async def big(n: int) -> EventStreamResponse:
        return EventStreamResponse(_big_events(n))

    return app


def fastapi_sse_app() -> Any:
    from fastapi import FastAPI
    from fastapi.sse import EventSourceResponse, ServerSentEvent

    app = FastAPI()

    @app.get("/ticks", response_class=EventSourceResponse)
    async def ticks(n: int) -> AsyncIterator[ServerSentEvent]:
        for i in range(1, n + 1):
            data = f'{{"t":{time.time()!r},"value":{i % 1000}.5}}'
            yield ServerSentEvent(raw_data=data, id=str(i))
        yield ServerSentEvent(raw_data="[DONE]")

    @app.get("/big", response_class=EventSourceResponse)
    async def big(n: int) -> AsyncIterator[ServerSentEvent]:
        for i in range(1, n + 1):
            yield ServerSentEvent(raw_data=f'{{"i":{i},"pad":"{PAD}"}}', id=str(i))
        yield ServerSentEvent(raw_data="[DONE]")

    return app


def sse_starlette_app() -> Any:
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def gen(n: int, big: bool) -> AsyncIterator[dict[str, str]]:
        for i in range(1, n + 1):
            if big:
                data = f'{{"i":{i},"pad":"{PAD}"}}'
            else:
                data = f'{{"t":{time.time()!r},"value":{i % 1000}.5}}'
            yield {"data": data, "id": str(i)}
        yield {"data": "[DONE]"}

    async def ticks(request: Request) -> EventSourceResponse:
        return EventSourceResponse(gen(int(request.query_params["n"]), False))

    async def big(request: Request) -> EventSourceResponse:
        return EventSourceResponse(gen(int(request.query_params["n"]), True))

    return Starlette(routes=[Route("/ticks", ticks), Route("/big", big)])


APPS: dict[str, Callable[[], Any]] = {
    "ssenb": ssenb_app,
    "fastapi.sse": fastapi_sse_app,
    "sse-starlette": sse_starlette_app,
}


@contextmanager
def in_thread(kind: str) -> Iterator[str]:
    with ssenb.serve(APPS[kind](), name=f"bench-{kind}") as handle:
        yield handle.url


@contextmanager
def in_child(kind: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the child stops its server when stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child(kind: str) -> None:
    with ssenb.serve(APPS[kind](), name=f"bench-child-{kind}") as handle:
        print(handle.url, flush=True)
        sys.stdin.read()


# -- clients -------------------------------------------------------------------------------


def read_ssenb(url: str) -> int:
    count = 0
    with ssenb.EventSource(url, reconnect="never") as source:
        for _ in source:
            count += 1
    return count


def read_httpx_sse(url: str) -> int:
    from httpx_sse import connect_sse

    count = 0
    with httpx.Client(timeout=30) as client, connect_sse(client, "GET", url) as source:
        for event in source.iter_sse():
            if event.data == "[DONE]":
                break
            count += 1
    return count


CLIENTS = {"ssenb": read_ssenb, "httpx-sse": read_httpx_sse}


def rate(url: str, client: str, n: int, reps: int) -> float:
    """Median events/s over `reps` runs; each run must deliver exactly `n` events."""
    rates = []
    for _ in range(reps):
        started = time.perf_counter()
        got = CLIENTS[client](url)
        took = time.perf_counter() - started
        if got != n:
            raise AssertionError(f"{url}: expected {n} events, got {got}")
        rates.append(n / took)
    return statistics.median(rates)


def latency(url: str, seconds: float) -> tuple[float, float, int]:
    """p50 and p99 (ms) from `time.time()` stamped at production to the parsed event."""
    delays = []
    deadline = time.monotonic() + seconds
    with ssenb.EventSource(url, reconnect="never") as source:
        for event in source:
            delays.append((time.time() - orjson.loads(event.data)["t"]) * 1000)
            if time.monotonic() > deadline:
                break
    delays.sort()
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    return statistics.median(delays), p99, len(delays)


# -- the run -------------------------------------------------------------------------------

# (label, server kind, client, path, n full, n quick); sized to ~1 s per read at full size
SMALL = [
    ("ssenb + ssenb.EventSource", "ssenb", "ssenb", "/ticks?rate=0&n={n}", 1_000_000, 20_000),
    ("ssenb + httpx-sse", "ssenb", "httpx-sse", "/ticks?rate=0&n={n}", 300_000, 5_000),
    ("fastapi.sse + httpx-sse", "fastapi.sse", "httpx-sse", "/ticks?n={n}", 15_000, 2_000),
    ("sse-starlette + httpx-sse", "sse-starlette", "httpx-sse", "/ticks?n={n}", 40_000, 2_000),
]
BIG = [
    ("ssenb + ssenb.EventSource", "ssenb", "ssenb", "/big?n={n}", 150_000, 5_000),
    ("fastapi.sse + httpx-sse", "fastapi.sse", "httpx-sse", "/big?n={n}", 10_000, 1_000),
    ("sse-starlette + httpx-sse", "sse-starlette", "httpx-sse", "/big?n={n}", 10_000, 1_000),
]
TWO_PROCESS = [SMALL[0], SMALL[2], SMALL[3]]


def measure(rows: list[tuple[str, str, str, str, int, int]], host: Any, quick: bool) -> list:
    results = []
    reps = 1 if quick else 3
    for label, kind, client, path, n_full, n_quick in rows:
        n = n_quick if quick else n_full
        with host(kind) as url:
            rate(url + path.format(n=min(n, 2000)), client, min(n, 2000), 1)  # warm up
            results.append((label, rate(url + path.format(n=n), client, n, reps)))
    return results


def table(title: str, results: list, size: int, reference: str) -> float:
    ref = dict(results)[reference]
    print(f"\n{title}")
    print(f"  {'producer + consumer':<28} {'events/s':>12} {'MB/s':>8} {'x ' + reference:>28}")
    for label, value in results:
        mbs = value * size / 1e6
        print(f"  {label:<28} {value:>12,.0f} {mbs:>8.1f} {value / ref:>27.1f}x")
    return dict(results)["ssenb + ssenb.EventSource"] / ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    started = time.monotonic()
    ref = "fastapi.sse + httpx-sse"
    print(f"ssenb {ssenb.__version__} e2e benchmark{' (quick)' if args.quick else ''}")
    small = measure(SMALL, in_thread, args.quick)
    one = table(
        "one process (server thread + consumer, the notebook case), ~50 B events", small, 52, ref
    )
    big = table("one process, 1 KB events", measure(BIG, in_thread, args.quick), 1030, ref)
    two = table(
        "two processes (server in a child), ~50 B events",
        measure(TWO_PROCESS, in_child, args.quick),
        52,
        ref,
    )
    seconds = 0.6 if args.quick else 4.0
    print("\nlatency at 50 events/s, production -> parsed event (ssenb /ticks + EventSource)")
    lat: list[float] = []
    p50s: list[float] = []
    for label, host in (("one process", in_thread), ("two processes", in_child)):
        with host("ssenb") as url:
            p50, p99, count = latency(url + "/ticks?rate=50", seconds)
        lat.append(p99)
        p50s.append(p50)
        print(f"  {label:<14} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({count} events)")
    print("\ntargets")
    print(
        f"  one process vs fastapi.sse + httpx-sse: {one:.1f}x (target >= 40x)"
        f"  {'met' if one >= 40 else 'NOT met'}"
    )
    print(f"  two processes vs the same:              {two:.1f}x")
    print(
        f"  p99 at 50 ev/s, one process: {lat[0]:.2f} ms (target < 5 ms)"
        f"  {'met' if lat[0] < 5 else 'NOT met'}"
    )
    print(f"\ntotal {time.monotonic() - started:.1f} s")
    if args.json:
        figures = {
            "ratio_one_process_small": one,
            "events_per_s_one_process_small": dict(small)["ssenb + ssenb.EventSource"],
            "events_per_s_reference_small": dict(small)[ref],
            "ratio_one_process_1kb": big,
            "ratio_two_processes_small": two,
            "latency_p50_ms_one_process": p50s[0],
            "latency_p99_ms_one_process": lat[0],
            "latency_p99_ms_two_processes": lat[1],
        }
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
