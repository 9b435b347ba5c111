"""LLM load measurement: how many concurrent streams can a client measure accurately?

Compares, in one run, at rising concurrency:
  * ssenb: `ssenb.llm.load` (per-read timestamps, parser per chunk, on ssenb's loop thread);
  * openai: a plain `AsyncOpenAI(...).chat.completions.create(stream=True)` loop, one task
    per stream, each chunk stamped with `perf_counter()` as the SDK yields it.
Both read the same lean streaming server in a second process: raw asyncio HTTP/1.1 that
writes pre-built `chat.completion.chunk` events at exactly `ttft` then every `delay` s, so
the server costs a few microseconds per event and the clients, not it, are what saturates.

A level is *accurate* for a client when its streams' median inter-token gap is within 10%
(or 2 ms) of the configured `delay` with no errors: a saturated client reads late and
several events per read, which shows there first. TTFT is printed for both (from asking
for the stream) but not judged: a fresh loopback connect on this loaded machine takes tens
of ms for either client. Each stream's first request warms its connection and its second
is measured; streams start 4 ms apart. The figures: the most concurrent streams measured
accurately, ssenb / openai (target >= 2), and client CPU per event for each.

    python bench/llm_load.py            # about a minute
    python bench/llm_load.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TTFT, DELAY, TOKENS = 0.2, 0.05, 20
START_EVERY = 0.004  # s between stream starts (both clients): a ramp, not a connect burst
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
            await asyncio.sleep(ttft)
            for n in range(tokens):
                if n:
                    await asyncio.sleep(delay)
                writer.write(token)
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
def server_process(tmp: Path) -> Iterator[str]:
    ready = tmp / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(ready)])
    try:
        for _ in range(200):
            if ready.exists() and ready.read_text():
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{ready.read_text()}"
    finally:
        proc.terminate()
        proc.wait(10)


def _close(measured: float | None, configured: float) -> bool:
    return measured is not None and abs(measured - configured) <= max(0.1 * configured, 0.002)


def run_ssenb(base: str, c: int) -> dict[str, Any]:
    from ssenb import llm

    body = {"ttft": TTFT, "delay": DELAY, "max_completion_tokens": TOKENS}
    df = llm.load(f"{base}/v1/chat/completions", concurrency=c, requests=2 * c, body=body,
                  display=False, timeout=120, ramp=START_EVERY * c,
                  background=True).wait(300)  # fmt: skip
    level = df.attrs["summary"].iloc[0]
    measured = df[df["request"] >= df["request"].min() + c]  # each worker's second request
    ok = measured[measured["error"] == ""]
    gaps = statistics.median(ok["itl_p50"]) if len(ok) else None
    ttft = statistics.median(ok["connect"] + ok["ttft"]) if len(ok) else None
    events = int(df["events"].sum())
    cpu = float(level["loop_busy"]) * float(level["wall"])
    return {"ttft_p50": ttft, "itl_p50": gaps, "errors": int((df["error"] != "").sum()),
            "cpu_us_per_event": 1e6 * cpu / events if events else None,
            "client_bound": bool(level["client_bound"])}  # fmt: skip


async def _openai_level(base: str, c: int) -> tuple[list[float], list[float], int, int]:
    import httpx
    from openai import AsyncOpenAI

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=c)
    http = httpx.AsyncClient(limits=limits, timeout=120)
    client = AsyncOpenAI(base_url=f"{base}/v1", api_key="bench", max_retries=0, http_client=http)
    ttfts: list[float] = []
    gaps: list[float] = []
    errors = chunks = 0

    async def one(k: int) -> None:
        nonlocal errors, chunks
        clock = time.perf_counter
        await asyncio.sleep(START_EVERY * k)
        try:
            for _warm in (True, False):
                begin = clock()
                stream = await client.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": "hi"}], stream=True,
                    extra_body={"ttft": TTFT, "delay": DELAY, "max_completion_tokens": TOKENS},
                )  # fmt: skip
                times = []
                async for chunk in stream:
                    chunks += 1
                    now = clock()
                    if chunk.choices and chunk.choices[0].delta.content:
                        times.append(now - begin)
        except Exception:
            errors += 1
            return
        if times:
            ttfts.append(times[0])
            gaps.append(statistics.median(b - a for a, b in itertools.pairwise(times)))

    async with http:
        await asyncio.gather(*(one(k) for k in range(c)))
    return ttfts, gaps, errors, chunks


def run_openai(base: str, c: int) -> dict[str, Any]:
    cpu0 = time.thread_time()
    ttfts, gaps, errors, chunks = asyncio.run(_openai_level(base, c))
    cpu = time.thread_time() - cpu0
    return {"ttft_p50": statistics.median(ttfts) if ttfts else None,
            "itl_p50": statistics.median(gaps) if gaps else None, "errors": errors,
            "cpu_us_per_event": 1e6 * cpu / chunks if chunks else None}  # fmt: skip


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

    levels = (4, 16) if args.quick else (16, 64, 128, 256, 512, 1024)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp)) as base:
        run_ssenb(base, 2)  # warm-up: imports, the loop thread
        print(f"{'streams':>8} {'client':>7} {'TTFT p50':>10} {'ITL p50':>9} "
              f"{'us/event':>9} {'accurate':>9}")  # fmt: skip
        for c in levels:
            row: dict[str, Any] = {"streams": c}
            for name, fn in (("ssenb", run_ssenb), ("openai", run_openai)):
                r = fn(base, c)
                r["accurate"] = r["errors"] == 0 and _close(r["itl_p50"], DELAY)
                row[name] = r
                print(f"{c:>8} {name:>7} {1e3 * (r['ttft_p50'] or 0):>8.1f}ms "
                      f"{1e3 * (r['itl_p50'] or 0):>7.1f}ms {r['cpu_us_per_event'] or 0:>9.0f} "
                      f"{r['accurate']!s:>9}", flush=True)  # fmt: skip
            rows.append(row)
    most = {n: max([r["streams"] for r in rows if r[n]["accurate"]], default=0)
            for n in ("ssenb", "openai")}  # fmt: skip
    cpu = {n: statistics.median([r[n]["cpu_us_per_event"] or 0 for r in rows])
           for n in ("ssenb", "openai")}  # fmt: skip
    figures = {
        "rows": rows,
        "configured": {"ttft": TTFT, "delay": DELAY, "tokens": TOKENS},
        "most_accurate_streams_ssenb": most["ssenb"],
        "most_accurate_streams_openai": most["openai"],
        "ratio_accurate_streams": most["ssenb"] / most["openai"] if most["openai"] else None,
        "cpu_us_per_event_ssenb": cpu["ssenb"],
        "cpu_us_per_event_openai": cpu["openai"],
        "cpu_ratio_openai_vs_ssenb": cpu["openai"] / cpu["ssenb"] if cpu["ssenb"] else None,
        "top_level_tested": max(levels),
    }
    print(f"most streams measured accurately: ssenb {most['ssenb']}, openai {most['openai']}; "
          f"client CPU per event: ssenb {cpu['ssenb']:.0f} us, "
          f"openai {cpu['openai']:.0f} us")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
