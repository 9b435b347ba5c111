"""The measurement core of `ssenb.llm.load`: one streamed request, one concurrency level.

Honesty rules, and how they are kept:

1. TTFT counts from the moment the request's first byte is written (the lean reader's own
   stamp; httpx's `trace` hook on the fallback path), not from when the client began to look
   for a connection: the time spent waiting for a pooled connection or opening one
   (`connect`, its own column) is the client's and the network's, reported beside TTFT.
2. Every timestamp is taken when the bytes of an event arrive: each socket read is stamped
   with `time.perf_counter()` before any parsing (HTTP framing included), and every delta
   parsed out of that read gets that stamp. A batch handed over later (a view, a DataFrame)
   never moves a timestamp. The reads come from `_http.Pool`, a lean HTTP/1.1 reader whose
   cost per read does not grow with the number of streams (httpx's pool does: see
   `_http`); httpx (`aiter_raw`, one item per read) is kept for proxies set in the
   environment, which it honours (`open_client` picks).
3. Client overhead is measured, not guessed: the CPU time of the loop thread (`thread_time`)
   spent parsing and accumulating each read, summed per request, and the whole thread's CPU
   time over each level (`loop_busy` = CPU s / wall s).
4. A saturated client would show up as server latency. A probe task on the same loop sleeps
   in small steps and records how late it wakes (`lag_p50`, `lag_p99`); a level whose loop
   thread was on the CPU for most of its wall time, or whose loop typically (median) woke
   late, is marked `client_bound`, so its figures are read as the client's limit, not the
   server's. The p99 alone is not used: on a shared machine the OS scheduler gives rare
   late wake-ups to any process, which is noise on every figure, not client saturation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .._dialects import Accumulator
from .._parser import EventParser
from ._frame import percentile
from ._http import HTTPError, Pool, usable

__all__ = [
    "BUSY_LIMIT",
    "LAG_LIMIT",
    "Level",
    "Sample",
    "Target",
    "open_client",
    "percentile",
    "run_level",
    "target_for",
]

CONTENT = frozenset({"text", "reasoning", "tool_args"})
BUSY_LIMIT = 0.8  # loop CPU / wall above this: the client, not the server, sets the pace
LAG_LIMIT = 0.002  # s: the loop's median wake-up this late or later: reads wait for the client
PROBE_STEP = 0.005
DEFAULT_PROMPT = "What are Server-Sent Events?"
Client = Pool | httpx.AsyncClient
_clock, _cpu = time.perf_counter, time.thread_time


@dataclass(frozen=True)
class Target:
    """How to ask one endpoint for a stream: method, URL, a body per prompt, the dialect."""

    method: str
    url: str
    provider: str | None
    body: Callable[[str], dict[str, Any] | None]


def _path_dialect(url: str) -> str:
    path = urlsplit(url).path
    if path.endswith("/chat/completions"):
        return "openai-chat"
    if path.endswith("/responses"):
        return "openai-responses"
    if path.endswith("/messages"):
        return "anthropic"
    if ":streamGenerateContent" in path:
        return "gemini"
    return "ssenb"


def target_for(
    url: str, dialect: str = "auto", *, model: str | None = None, body: dict[str, Any] | None = None
) -> Target:
    """The request shape for `url`: its dialect from the path ("auto") or given, the
    provider's documented streaming body with `model` and the extra `body` fields merged in
    (e.g. the mock's `delay`, `ttft`, `jitter`, or a real API's `max_tokens`)."""
    name = _path_dialect(url) if dialect == "auto" else dialect
    extra = dict(body or {})
    m = {"model": model} if model else {}

    def chat(prompt: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        return {**m, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}, **extra}  # fmt: skip

    def responses(prompt: str) -> dict[str, Any]:
        return {**m, "input": prompt, "stream": True, **extra}

    def anthropic(prompt: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        return {"model": model or "claude", "max_tokens": 1024, "messages": messages,
                "stream": True, **extra}  # fmt: skip

    def gemini(prompt: str) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], **extra}

    builders: dict[str, Callable[[str], dict[str, Any]]] = {
        "openai-chat": chat, "openai-responses": responses, "anthropic": anthropic,
        "gemini": gemini,
    }  # fmt: skip
    if name in builders:
        if name == "gemini" and "alt=" not in url:
            url += ("&" if "?" in url else "?") + "alt=sse"
        return Target("POST", url, name, builders[name])
    if name != "ssenb":
        raise ValueError(f"unknown dialect {dialect!r}: use auto, ssenb or one of {list(builders)}")
    params = "".join(f"&{k}={quote(str(v))}" for k, v in extra.items())
    joiner = "&" if "?" in url else "?"
    return Target("GET", url, "ssenb", lambda p: {"_query": f"{joiner}prompt={quote(p)}{params}"})


@dataclass
class Sample:
    """One request as measured: times in s from the sweep's start (`start`) or from the
    request's own start (ttft, itl); `cpu` is loop-thread CPU s spent on its reads."""

    concurrency: int
    request: int
    prompt: str
    start: float
    status: int | None = None
    connect: float | None = None  # s from asking for a connection to sending the request
    ttft: float | None = None
    times: list[float] = field(default_factory=list)  # each content delta's arrival, s
    output_tokens: int | None = None  # as the provider reported (usage), else None
    events: int = 0
    reads: int = 0
    cpu: float = 0.0
    end: float | None = None
    error: str = ""

    def row(self) -> dict[str, Any]:
        """The DataFrame row: latencies in s, tokens, rate, client CPU per event."""
        gaps = [b - a for a, b in pairwise(self.times)]
        span = self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0
        return {
            "concurrency": self.concurrency,
            "request": self.request,
            "start": self.start,
            "connect": self.connect,
            "ttft": self.ttft,
            "itl_p50": percentile(gaps, 0.5),
            "itl_p99": percentile(gaps, 0.99),
            "itl_mean": sum(gaps) / len(gaps) if gaps else None,
            "deltas": len(self.times),
            "output_tokens": self.output_tokens if self.output_tokens else len(self.times),
            "tokens_per_s": (len(self.times) - 1) / span if span > 0 else None,
            "duration": None if self.end is None else self.end - self.start,
            "events": self.events,
            "client_us_per_event": 1e6 * self.cpu / self.events if self.events else None,
            "status": self.status,
            "error": self.error,
        }


class _Reading:
    """What each read of one request does, on either HTTP path: stamp, parse, accumulate."""

    __slots__ = ("acc", "asked", "begin", "excerpt", "on_delta", "parser", "sample")

    def __init__(self, sample: Sample, provider: str | None, asked: float,
                 on_delta: Callable[[Sample], None] | None) -> None:  # fmt: skip
        self.sample, self.asked, self.begin, self.on_delta = sample, asked, asked, on_delta
        self.parser, self.acc = EventParser(), Accumulator(provider)
        self.excerpt = b""

    def started(self, now: float) -> None:
        self.begin = now
        self.sample.connect = now - self.asked

    def head(self, status: int) -> None:
        self.sample.status = status

    def data(self, chunk: bytes, now: float) -> None:
        sample = self.sample
        if sample.status is not None and sample.status >= 400:
            self.excerpt = (self.excerpt + chunk)[:200]
            return
        used = _cpu()
        sample.reads += 1
        events = self.parser.feed(chunk)
        sample.events += len(events)
        begin = self.begin
        for event in events:
            for d in self.acc.feed(event):
                if d.kind in CONTENT and d.text:
                    sample.times.append(now - begin)
                elif d.kind == "error" and not sample.error:
                    sample.error = d.text
        sample.cpu += _cpu() - used
        if self.on_delta is not None and events:
            self.on_delta(sample)


async def _via_httpx(
    client: httpx.AsyncClient, method: str, url: str, payload: Any, headers: dict[str, str],
    reading: _Reading,
) -> None:  # fmt: skip
    """The fallback path: httpx's `trace` hook stamps the first byte, `aiter_raw` gives one
    item per socket read (stamped here, before parsing)."""

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_headers.started"):
            reading.started(_clock())

    ext = {"trace": trace}
    async with client.stream(method, url, json=payload, headers=headers, extensions=ext) as resp:
        reading.head(resp.status_code)
        if resp.status_code >= 400:
            reading.data(await resp.aread(), _clock())
            return
        async for chunk in resp.aiter_raw():
            reading.data(chunk, _clock())


async def measure(
    client: Client,
    target: Target,
    sample: Sample,
    origin: float,
    headers: dict[str, str],
    on_delta: Callable[[Sample], None] | None = None,
) -> Sample:
    """Stream one answer into `sample`; errors (HTTP, transport, provider) end up in
    `sample.error`, never raised, so one failed request never stops a sweep."""
    body = target.body(sample.prompt)
    url, payload = target.url, body
    if body is not None and "_query" in body:
        url, payload = url + body["_query"], None
    asked = time.perf_counter()
    sample.start = asked - origin
    reading = _Reading(sample, target.provider, asked, on_delta)
    try:
        if isinstance(client, Pool):
            await client.request(target.method, url, reading, json_body=payload, headers=headers)
        else:
            await _via_httpx(client, target.method, url, payload, headers, reading)
    except (httpx.HTTPError, HTTPError) as exc:
        sample.error = sample.error or f"{type(exc).__name__}: {exc}"
    finally:
        sample.end = time.perf_counter() - origin
    if sample.status is not None and sample.status >= 400 and not sample.error:
        sample.error = f"HTTP {sample.status}: {reading.excerpt.decode('utf-8', 'replace')}"
    sample.ttft = sample.times[0] if sample.times else None
    sample.output_tokens = reading.acc.usage.get("output_tokens")
    if not sample.error and not sample.times:
        sample.error = "no tokens"
    return sample


def open_client(url: str, timeout: float, keepalive: int) -> Pool | httpx.AsyncClient:
    """The HTTP client a sweep of `url` measures through (use it as `async with`): the lean
    `Pool` wherever it can go (`_http.usable`), else httpx with the environment's proxy."""
    if usable(url):
        return Pool(timeout)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=keepalive)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


@dataclass
class Level:
    """What one concurrency level measured besides its samples: the client's own load."""

    concurrency: int
    wall: float = 0.0
    cpu: float = 0.0
    lags: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0  # the most streams that were really open at once (fewer requests: fewer)

    @property
    def busy(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def lag_p50(self) -> float:
        return percentile(self.lags, 0.5) or 0.0

    @property
    def lag_p99(self) -> float:
        return percentile(self.lags, 0.99) or 0.0

    @property
    def client_bound(self) -> bool:
        return self.busy > BUSY_LIMIT or self.lag_p50 > LAG_LIMIT


async def _probe(level: Level) -> None:
    """Record how late the loop wakes from short sleeps (a busy client wakes late)."""
    clock = time.perf_counter
    while True:
        before = clock()
        await asyncio.sleep(PROBE_STEP)
        level.lags.append(max(0.0, clock() - before - PROBE_STEP))


async def run_level(
    client: Client,
    target: Target,
    concurrency: int,
    *,
    prompts: list[str],
    requests: int | None,
    duration: float | None,
    headers: dict[str, str],
    origin: float,
    first_index: int = 0,
    ramp: float = 0.0,
    on_start: Callable[[Sample], None] | None = None,
    on_delta: Callable[[Sample], None] | None = None,
    on_done: Callable[[Sample], None] | None = None,
) -> Level:
    """`concurrency` workers, each sending its next request as soon as its last ended, until
    `requests` were sent or `duration` s passed (whichever is given; both: the first).
    `ramp` s spreads the workers' first requests evenly (0: all at once), so a server is not
    measured on the burst of `concurrency` simultaneous request starts unless that is asked."""
    level = Level(concurrency)
    counter = iter(range(10**9))
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    deadline = None if duration is None else wall0 + duration

    async def worker(k: int) -> None:
        if ramp > 0:
            await asyncio.sleep(ramp * k / concurrency)
        for n in counter:
            if requests is not None and n >= requests:
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            i = first_index + n
            sample = Sample(concurrency, i, prompts[i % len(prompts)], 0.0)
            level.samples.append(sample)
            if on_start is not None:
                on_start(sample)
            level.in_flight += 1
            level.peak = max(level.peak, level.in_flight)
            try:
                await measure(client, target, sample, origin, headers, on_delta)
            finally:
                level.in_flight -= 1
            if on_done is not None:
                on_done(sample)

    probe = asyncio.create_task(_probe(level))
    try:
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    finally:
        probe.cancel()
        level.wall = time.perf_counter() - wall0
        level.cpu = time.thread_time() - cpu0
    return level
