"""LLM load measurement: how many concurrent streams can a client measure accurately?

Compares, in one run, at rising concurrency:
  * ssenb: `ssenb.llm.load` (its lean HTTP/1.1 reader, per-read timestamps, parser per read,
    on ssenb's loop thread);
  * openai: a plain `AsyncOpenAI(...).chat.completions.create(stream=True)` loop, one task
    per stream, each chunk stamped with `perf_counter()` as the SDK yields it.
Both read the same lean streaming server in a second process: raw asyncio HTTP/1.1 that
writes pre-built `chat.completion.chunk` events at `ttft` after reading the request, then
every `delay` s on an absolute schedule (a late wake-up never shifts the later tokens), so
the server costs a few microseconds per event and the clients, not it, are what saturates.

A level is *accurate* for a client when, over its measured requests, the median TTFT and the
median of the streams' median inter-token gaps are both within 10% (or 2 ms) of the
configured `ttft` and `delay`, with no errors: a saturated client reads late (TTFT grows) and
several events per read (the gaps collapse). TTFT is counted the same way for both, from the
request's first byte written (httpx's `trace` hook for openai's client, ssenb's own stamp):
waiting for a pooled connection is the client's cost, not the server's latency (it shows as
CPU, then as late reads once the loop saturates). Each stream's first request warms its
connection and its second is measured; the first requests start over min(4 ms x streams, 1 s)
and each lasts ~2.2 s, so all the measured requests of a level are open at once (`peak` in
the JSON rows). A client is not tried at higher levels after two inaccurate ones in a row.
The figures: the most concurrent streams measured accurately, ssenb / openai (target >= 2),
and client CPU per event (the loop thread's CPU over the level / events) for each.

    python bench/llm_load.py            # about two minutes
    python bench/llm_load.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TTFT, DELAY, TOKENS = 0.2, 0.05, 40  # a request lasts ~2.2 s: longer than any ramp
START_EVERY, RAMP_MAX = 0.004, 1.0  # s between stream starts (both clients), at most 1 s in all
WORD = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
        "model": "bench", "system_fingerprint": None}  # fmt: skip


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    data = json.dumps({**WORD, "choices": [choice]}, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One keep-alive connection: read a request (headers + Content-Length body), stream."""
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")  # fmt: skip
    first = _http_chunk(_chunk({"role": "assistant", "content": ""}))
    token = _http_chunk(_chunk({"content": " tok"}))
    end = _http_chunk(_chunk({}, "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n"
    loop = asyncio.get_running_loop()
    try:
        while True:
            raw = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            ttft, delay = float(body.get("ttft", TTFT)), float(body.get("delay", DELAY))
            tokens = int(body.get("max_completion_tokens", TOKENS))
            writer.write(head + first)
            due = loop.time() + ttft
            for _ in range(tokens):
                await asyncio.sleep(due - loop.time())
                writer.write(token)
                due += delay
            writer.write(end)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(ready: Path) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=4096)
        ready.write_text(str(server.sockets[0].getsockname()[1]))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def server_process(tmp: Path) -> Iterator[tuple[str, int]]:
    """The streaming server in a child process: its base URL and pid."""
    ready = tmp / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(ready)])
    try:
        for _ in range(200):
            if ready.exists() and ready.read_text():
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{ready.read_text()}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _cpu_of(pid: int) -> float | None:
    """CPU s a process used so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _close(measured: float | None, configured: float) -> bool:
    return measured is not None and abs(measured - configured) <= max(0.1 * configured, 0.002)


def _ramp(c: int) -> float:
    return min(START_EVERY * c, RAMP_MAX)


def run_ssenb(base: str, c: int) -> dict[str, Any]:
    from ssenb import llm

    body = {"ttft": TTFT, "delay": DELAY, "max_completion_tokens": TOKENS}
    df = llm.load(f"{base}/v1/chat/completions", concurrency=c, requests=2 * c, body=body,
                  display=False, timeout=120, ramp=_ramp(c), background=True).wait(300)  # fmt: skip
    level = df.attrs["summary"].iloc[0]
    measured = df[df["request"] >= df["request"].min() + c]  # each worker's second request
    ok = measured[measured["error"] == ""]
    gaps = statistics.median(ok["itl_p50"]) if len(ok) else None
    ttft = statistics.median(ok["ttft"]) if len(ok) else None  # from the first byte written
    events = int(df["events"].sum())
    cpu = float(level["loop_busy"]) * float(level["wall"])
    return {"ttft_p50": ttft, "itl_p50": gaps, "errors": int((df["error"] != "").sum()),
            "cpu_us_per_event": 1e6 * cpu / events if events else None,
            "connect_p50": statistics.median(ok["connect"]) if len(ok) else None,
            "peak": int(level["peak_streams"]),
            "client_bound": bool(level["client_bound"])}  # fmt: skip


def _openai_http() -> Any:
    """The HTTP stack the openai SDK itself uses by default (httpx2 in recent SDKs, else httpx)."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


async def _openai_level(base: str, c: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    hx = _openai_http()

    clock = time.perf_counter
    first_byte: dict[asyncio.Task[Any] | None, float] = {}

    class Traced(hx.AsyncHTTPTransport):  # type: ignore[misc]
        """Stamps the moment a request's first byte goes out, per task (httpcore's trace)."""

        async def handle_async_request(self, request: Any) -> Any:
            task = asyncio.current_task()

            async def trace(name: str, info: dict[str, Any]) -> None:
                if name == "http11.send_request_headers.started":
                    first_byte[task] = clock()

            request.extensions = {**request.extensions, "trace": trace}
            return await super().handle_async_request(request)

    limits = hx.Limits(max_connections=None, max_keepalive_connections=c)  # no cap, no re-connects
    http = hx.AsyncClient(transport=Traced(limits=limits), timeout=120)
    client = AsyncOpenAI(base_url=f"{base}/v1", api_key="bench", max_retries=0, http_client=http)
    extra = {"ttft": TTFT, "delay": DELAY, "max_completion_tokens": TOKENS}
    ttfts: list[float] = []
    gaps: list[float] = []
    connects: list[float] = []
    errors = chunks = in_flight = peak = 0

    async def one(k: int) -> None:
        nonlocal errors, chunks, in_flight, peak
        await asyncio.sleep(_ramp(c) * k / c)
        times: list[float] = []
        try:
            for warm in (True, False):
                asked = clock()
                in_flight += 1
                peak = peak if warm else max(peak, in_flight)
                try:
                    stream = await client.chat.completions.create(
                        model="bench", messages=[{"role": "user", "content": "hi"}],
                        stream=True, extra_body=extra,
                    )  # fmt: skip
                    times = []
                    async for chunk in stream:
                        chunks += 1
                        now = clock()
                        if chunk.choices and chunk.choices[0].delta.content:
                            times.append(now)
                finally:
                    in_flight -= 1
        except Exception:
            errors += 1
            return
        begin = first_byte[asyncio.current_task()]
        connects.append(begin - asked)
        if times:
            ttfts.append(times[0] - begin)
            gaps.append(statistics.median(b - a for a, b in itertools.pairwise(times)))

    async with http:
        await asyncio.gather(*(one(k) for k in range(c)))
    return {"ttft_p50": statistics.median(ttfts) if ttfts else None,
            "itl_p50": statistics.median(gaps) if gaps else None, "errors": errors,
            "chunks": chunks, "peak": peak,
            "connect_p50": statistics.median(connects) if connects else None}  # fmt: skip


def run_openai(base: str, c: int) -> dict[str, Any]:
    cpu0 = time.thread_time()
    r = asyncio.run(_openai_level(base, c))
    cpu, chunks = time.thread_time() - cpu0, r.pop("chunks")
    r["cpu_us_per_event"] = 1e6 * cpu / chunks if chunks else None
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    import tempfile

    levels = (4, 16) if args.quick else (16, 64, 128, 256, 512, 1024, 2048)
    rows = []
    misses = {"ssenb": 0, "openai": 0}  # inaccurate levels in a row
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp)) as (base, pid):
        run_ssenb(base, 2)  # warm-up: imports, the loop thread
        print(f"{'streams':>8} {'client':>7} {'TTFT p50':>10} {'ITL p50':>9} "
              f"{'us/event':>9} {'accurate':>9}")  # fmt: skip
        for c in levels:
            row: dict[str, Any] = {"streams": c}
            for name, fn in (("ssenb", run_ssenb), ("openai", run_openai)):
                if misses[name] >= 2:
                    continue
                cpu0, wall0 = _cpu_of(pid), time.perf_counter()
                r = fn(base, c)
                cpu1, wall = _cpu_of(pid), time.perf_counter() - wall0
                # the server's share of one core over the level (near 1: it set the pace)
                r["server_busy"] = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / wall
                r["accurate"] = (r["errors"] == 0 and _close(r["itl_p50"], DELAY)
                                 and _close(r["ttft_p50"], TTFT))  # fmt: skip
                misses[name] = 0 if r["accurate"] else misses[name] + 1
                row[name] = r
                print(f"{c:>8} {name:>7} {1e3 * (r['ttft_p50'] or 0):>8.1f}ms "
                      f"{1e3 * (r['itl_p50'] or 0):>7.1f}ms {r['cpu_us_per_event'] or 0:>9.0f} "
                      f"{r['accurate']!s:>9}", flush=True)  # fmt: skip
            if len(row) == 1:
                break
            rows.append(row)
    names = ("ssenb", "openai")
    most = {n: max([r["streams"] for r in rows if r.get(n, {}).get("accurate")], default=0)
            for n in names}  # fmt: skip
    both = [r for r in rows if "ssenb" in r and "openai" in r]  # levels both clients ran
    cpu = {n: statistics.median([r[n]["cpu_us_per_event"] or 0 for r in both]) for n in names}
    figures = {
        "rows": rows,
        "configured": {"ttft": TTFT, "delay": DELAY, "tokens": TOKENS},
        "most_accurate_streams_ssenb": most["ssenb"],
        "most_accurate_streams_openai": most["openai"],
        "ratio_accurate_streams": most["ssenb"] / most["openai"] if most["openai"] else None,
        "cpu_us_per_event_ssenb": cpu["ssenb"],
        "cpu_us_per_event_openai": cpu["openai"],
        "cpu_ratio_openai_vs_ssenb": cpu["openai"] / cpu["ssenb"] if cpu["ssenb"] else None,
        "top_level_tested": max(r["streams"] for r in rows),
    }
    ratio = figures["ratio_accurate_streams"]
    shown = "n/a" if ratio is None else f"{ratio:.1f}x"
    print(f"most streams measured accurately: ssenb {most['ssenb']}, openai {most['openai']} "
          f"({shown}, target >= 2x); client CPU per event (levels both ran): "
          f"ssenb {cpu['ssenb']:.0f} us, openai {cpu['openai']:.0f} us")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
