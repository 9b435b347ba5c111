"""The deployment of docs/deploy.md, for real on loopback: Debian's nginx running the shipped
docs/nginx/ssenb.conf (only its ports substituted) in front of `ssenb serve --workers 2` on
one Redis stream. Events pass unbuffered, Last-Event-ID resumes through nginx on any worker,
upstream connections are kept alive, the Host guard answers nginx without --allow-remote;
and the fault test: 10,000 events to 100 clients while workers are SIGKILLed and restarted
and Redis restarts once, every client getting every event exactly once, in order.

Skipped without nginx or redis-server, except on CI (`CI` set), where that fails.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from _nginx import NGINX, SHIPPED, Nginx, Workers, render, wait_port
from _redis import REDIS_SERVER, RedisProc, redis_server, require_redis_server

import ssenb
from ssenb import EventSource, Hub

__all__ = ["redis_server"]  # fixture

require_redis_server()
if NGINX is None:
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed (CI installs it: .ci/run)", pytrace=False)
    pytest.skip("nginx is not installed", allow_module_level=True)

PUBLIC = "sse.example.org"  # the site's public name, given to ssenb with --allowed-host


class Deployment:
    def __init__(self, workers: Workers, nginx: Nginx, hub_url: str) -> None:
        self.workers, self.nginx, self.hub_url = workers, nginx, hub_url
        self.url = nginx.url


@pytest.fixture(scope="module")
def deployed(
    redis_server: RedisProc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("deploy")
    hub_url = redis_server.url()
    workers = Workers(2, hub_url, "--allowed-host", PUBLIC, logdir=tmp).start()
    try:
        nginx = Nginx(tmp / "nginx", workers.port).start()
        try:
            yield Deployment(workers, nginx, hub_url)
        finally:
            nginx.stop()
    finally:
        workers.stop()


def _read(url: str, last_event_id: str | None, until: Any) -> list[ssenb.Event]:
    got: list[ssenb.Event] = []
    with EventSource(url, last_event_id=last_event_id, idle_timeout=10) as source:
        for event in source:
            got.append(event)
            if until(got):
                break
    return got


# -- the shipped configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    "directive",
    [
        r"proxy_buffering off;",
        r"proxy_cache off;",
        r"gzip off;",
        r"proxy_http_version 1\.1;",
        r'proxy_set_header Connection "";',
        r"keepalive \d+;",
        r"proxy_read_timeout 1h;",
        r"proxy_set_header Last-Event-ID \$http_last_event_id;",
        r"proxy_set_header Host \$host;",
        r"proxy_next_upstream error timeout;",
    ],
    ids=["no-buffering", "no-cache", "no-gzip", "http-1.1", "keepalive-header", "keepalive",
         "long-read-timeout", "last-event-id", "host", "retry-before-response-only"],
)  # fmt: skip
def test_the_shipped_config_has_each_sse_directive(directive: str) -> None:
    text = "\n".join(line.split("#")[0] for line in SHIPPED.read_text().splitlines())
    assert re.search(rf"(?m)^\s*{directive}\s*$", text), directive


def test_the_test_config_is_the_shipped_one_with_only_the_ports_changed() -> None:
    shipped = SHIPPED.read_text()
    diff = [d for d in difflib.ndiff(shipped.splitlines(), render(shipped, 1234, 5678).splitlines())
            if d[:1] in "+-"]  # fmt: skip
    assert [d.split() for d in diff] == [
        ["-", "server", "127.0.0.1:8000;"], ["+", "server", "127.0.0.1:5678;"],
        ["-", "listen", "8080;"], ["+", "listen", "127.0.0.1:1234;"],
    ]  # fmt: skip


# -- through nginx ------------------------------------------------------------------------


def test_an_event_arrives_through_nginx_while_its_stream_stays_open(deployed: Deployment) -> None:
    publisher = Hub(backend=deployed.hub_url)
    with httpx.Client(timeout=10) as client, client.stream("GET", deployed.url + "/hub") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in r.headers
        time.sleep(0.3)  # the worker's blocking XREAD is waiting
        sent = time.monotonic()
        eid = publisher.publish("through nginx")
        first = next(r.iter_raw())  # buffering would hold it until the stream ends
        took = time.monotonic() - sent
    assert first == f"id: {eid}\ndata: through nginx\n\n".encode()
    assert took < 2.5  # 5x a generous 0.5 s
    publisher.close()


def test_last_event_id_resumes_exactly_through_nginx(deployed: Deployment) -> None:
    publisher = Hub(backend=deployed.hub_url)
    ids = publisher.publish_many([f"r{i}" for i in range(40)])
    got: list[ssenb.Event] = []
    for _ in range(4):  # four connections, each resuming where the last one stopped
        got += _read(deployed.url + "/hub", got[-1].id if got else ids[0],
                     lambda ev: len(ev) >= 10 or ev[-1].id == ids[-1])  # fmt: skip
    assert [e.id for e in got] == ids[1:]
    assert [e.data for e in got] == [f"r{i}" for i in range(1, 40)]
    publisher.close()


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1", 200), ("localhost:8080", 200), (PUBLIC, 200), (f"{PUBLIC}:443", 200),
     ("evil.example", 421)],
    ids=["loopback", "localhost-other-port", "allowed-host", "allowed-host-port", "rebinding"],
)  # fmt: skip
def test_the_host_guard_answers_nginx_without_allow_remote(
    deployed: Deployment, host: str, status: int
) -> None:
    r = httpx.get(deployed.url + "/stream?n=1&interval=0", headers={"Host": host}, timeout=10)
    assert r.status_code == status


def _tcp(port: int) -> dict[str, int]:
    """Loopback TCP sockets with `port` at either end, counted by state (/proc/net/tcp)."""
    states = {"01": "established", "06": "time_wait"}
    counts = {"established": 0, "time_wait": 0}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        ports = {int(local.split(":")[1], 16), int(remote.split(":")[1], 16)}
        if port in ports and state in states:
            counts[states[state]] += 1
    return counts


def test_nginx_keeps_its_upstream_connections_alive(deployed: Deployment) -> None:
    port = deployed.workers.port
    before = _tcp(port)["time_wait"]
    for i in range(30):  # a new client connection each time; nginx reuses its upstream one
        assert httpx.post(deployed.url + "/hub", json={"k": i}, timeout=10).status_code == 200
    after = _tcp(port)
    assert after["time_wait"] - before <= 2  # without keepalive: one per request
    assert after["established"] >= 2  # the idle upstream connection, seen from both ends


# -- the fault test ----------------------------------------------------------------------

N_EVENTS, N_CLIENTS, BATCH, PACE = 10_000, 100, 100, 0.12  # 100 batches, one per 0.12 s
# ~40 s on a quiet machine, 80-120 s with eight other jobs on the two cores: each client a
# kill or the Redis restart sends back reads the stream on its own until the publishing
# pauses, rather than rejoining the worker's shared read (a Redis hub limit: docs/deploy.md)
MIN_KILLS, DEADLINE, WINDOW = 5, 150.0, 2_000
Got = list[tuple[str, str, str]]  # (event type, id, data) per event received


class PersistentRedis(RedisProc):
    """A `RedisProc` with an append-only file (fsync per write): a restart keeps the stream,
    so exactly-once can be checked across it."""

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")


async def _publish(
    url: str, stream: str, direct: redis.Redis, log: dict[str, Any], taken: list[int]
) -> None:
    """0..N_EVENTS-1 then [DONE], paced, never more than WINDOW events ahead of the slowest
    client (`taken`: events received per client), so the figure is a stream that flows,
    not a backlog; a publish Redis refuses is retried after what the stream holds (a reply
    lost in the crash must not become a duplicate)."""
    hub = Hub(backend=url, buffer=10 * N_EVENTS)
    start, nxt = time.monotonic(), 0
    try:
        while nxt <= N_EVENTS:
            await asyncio.sleep(max(0.0, start + PACE * (nxt // BATCH) - time.monotonic()))
            while nxt - min(taken) > WINDOW:
                await asyncio.sleep(0.02)
            items = [str(i) for i in range(nxt, min(nxt + BATCH, N_EVENTS))] or ["[DONE]"]
            try:
                await asyncio.to_thread(hub.publish_many, items)
                nxt += len(items) if items != ["[DONE]"] else 1
            except ssenb.SSEHubUnavailable:
                log["refused"] += 1
                await asyncio.sleep(0.2)
                try:
                    last = await asyncio.to_thread(direct.xrevrange, stream, count=1)
                    nxt = int(last[0][1][b"d"]) + 1 if last and last[0][1][b"d"] != b"start" else 0
                except redis.RedisError:
                    pass
    finally:
        log["published"] = time.monotonic()
        hub.close()


async def _chaos(workers: Workers, redis_proc: PersistentRedis, log: dict[str, Any]) -> None:
    """At random points of the publishing: SIGKILL one of the workers once both serve
    (MIN_KILLS times); meanwhile restart Redis once (down for 1.5 s)."""
    rng = random.Random(os.environ.get("SSENB_CHAOS_SEED"))
    span = PACE * N_EVENTS / BATCH
    kills = sorted(rng.uniform(0.5, span - 0.5) for _ in range(MIN_KILLS))
    start = time.monotonic()

    async def restart_redis(at: float) -> None:
        await asyncio.sleep(at)
        while not workers.ready_pids():  # someone is streaming, so someone must be told
            await asyncio.sleep(0.05)
        log["redis_down"] = time.monotonic()
        await asyncio.to_thread(redis_proc.stop)
        await asyncio.sleep(1.5)  # longer than a client's retry delay
        await asyncio.to_thread(redis_proc.start)

    outage = asyncio.ensure_future(restart_redis(rng.uniform(0.3, 0.7) * span))
    for at in kills:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        while len(serving := workers.ready_pids()) < 2:  # a kill lands on live streams
            await asyncio.sleep(0.05)
        log["pids"].update(serving)
        victim = rng.choice(serving)
        workers.kill_worker(victim)
        log["kills"].append(victim)
        while victim in workers.pids():  # until the supervisor has reaped it
            await asyncio.sleep(0.02)
    await outage


async def _client(
    url: str, after: str, http: httpx.AsyncClient, opened: list[int], taken: list[int], k: int
) -> tuple[Got, list[Any]]:
    """Every event of /hub after `after`; also (time, state) changes and control events.
    `opened` counts the clients whose first connection is open, `taken[k]` our events."""
    policy = ssenb.RetryPolicy(initial=0.2, maximum=1.0, jitter=0.5)
    got: Got = []
    timeline: list[Any] = []  # (monotonic time, state or control event type)

    def on_state(state: str) -> None:
        if state == "open" and not any(s == "open" for _, s in timeline):
            opened[0] += 1
        timeline.append((time.monotonic(), state))

    source = EventSource(url, last_event_id=after, retry_policy=policy, max_retries=100,
                         idle_timeout=30, client=http, on_state=on_state)  # fmt: skip
    async with source:
        async for event in source:
            got.append((event.event, event.id, event.data))
            taken[k] += 1
            if event.event != "message":
                timeline.append((time.monotonic(), event.event))
    return got, timeline


def _told_after(timeline: list[Any], down: float) -> bool | None:
    """None when the stream was not open as Redis went down, else whether an error or gap
    event arrived after that."""
    states = [what for at, what in timeline if at < down and what not in ("error", "gap")]
    if not states or states[-1] != "open":
        return None
    return any(at >= down and what in ("error", "gap") for at, what in timeline)


@pytest.mark.slow
@pytest.mark.timeout(int(DEADLINE) + 60)
def test_every_client_gets_every_event_once_through_worker_kills_and_a_redis_restart(
    tmp_path: Path,
) -> None:
    redis_proc = PersistentRedis(tmp_path)
    redis_proc.start()
    stream = "fault"
    url = redis_proc.url(stream)
    direct = redis.Redis(port=redis_proc.port)
    workers = Workers(2, url, logdir=tmp_path).start()
    nginx = Nginx(tmp_path / "nginx", workers.port).start()
    log: dict[str, Any] = {"kills": [], "pids": set(workers.pids()), "refused": 0}
    began = time.monotonic()
    try:
        after = direct.xadd(stream, {"d": "start"}).decode()  # clients resume after this

        async def run() -> list[tuple[Got, list[Any]]]:
            limits = httpx.Limits(max_connections=2 * N_CLIENTS)
            async with httpx.AsyncClient(limits=limits) as http:
                opened, taken = [0], [0] * N_CLIENTS
                clients = [asyncio.ensure_future(_client(nginx.url + "/hub", after, http,
                                                         opened, taken, k))
                           for k in range(N_CLIENTS)]  # fmt: skip
                while opened[0] < N_CLIENTS:  # all subscribed (on the workers' shared reads)
                    await asyncio.sleep(0.05)
                publishing = _publish(url, stream, direct, log, taken)
                await asyncio.gather(publishing, _chaos(workers, redis_proc, log))
                return await asyncio.gather(*clients)

        results = asyncio.run(asyncio.wait_for(run(), DEADLINE))
        stored = [(eid.decode(), f[b"d"].decode()) for eid, f in direct.xrange(stream)][1:]
    finally:
        nginx.stop()
        status = workers.stop()
        redis_proc.stop()
    took = time.monotonic() - began
    told = [_told_after(timeline, log["redis_down"]) for _, timeline in results]
    controls = [k for got, _ in results for k, _, _ in got if k != "message"]
    print(f"\nfault run: {took:.1f} s (published by {log['published'] - began:.1f} s),"
          f" {len(log['kills'])} kills, {log['refused']} refused"
          f" publishes, {told.count(True)} of {told.count(True) + told.count(False)} clients"
          f" streaming as Redis died told so,"
          f" {controls.count('error')} error and {controls.count('gap')} gap events")  # fmt: skip
    # the stream itself: every event once, in order (the publisher never repeated one)
    assert [d for _, d in stored] == [str(i) for i in range(N_EVENTS)] + ["[DONE]"]
    for got, _ in results:  # every client: every event exactly once, in order, with its id
        assert [(eid, data) for kind, eid, data in got if kind == "message"] == stored[:-1]
        assert {kind for kind, _, _ in got} <= {"message", "error", "gap"}
    # the outage cut streams, and those got an error event first, never silence; a worker
    # still writing out a client's backlog may never touch Redis while it is down (that
    # client notices nothing, and loses nothing)
    assert told.count(True) >= 1
    assert controls.count("error") >= told.count(True)
    assert len(log["kills"]) >= MIN_KILLS
    assert workers.log().count("exited (signal SIGKILL)") >= MIN_KILLS  # and were restarted
    assert status == 0
    assert took < DEADLINE
    for pid in log["pids"]:  # every worker ever seen is gone, and nginx too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert nginx.proc is not None
    assert nginx.proc.poll() is not None
