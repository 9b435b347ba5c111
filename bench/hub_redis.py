"""The hub on Redis vs in memory: events delivered per second to 1, 100, 1000 subscribers.

Same harness as bench/fanout.py (the server in a uvicorn thread here, the publisher in this
process's main thread, the subscribers in a second process on raw asyncio sockets that parse
every event and check order; the publisher never runs more than a window ahead of the slowest
subscriber, so the figure is sustained delivery with zero drops), once with the in-memory
`Hub` and once with `Hub(backend="redis://...")` on a throwaway `redis-server` started here on
a loopback port (Debian's package; `.ci/run` installs it). Both go through the identical
subscriber code, which checks that ids only increase (Redis stream ids are `ms-seq`). The
Redis hub pays for a round trip per published batch (`XADD` pipeline) and one shared blocking
`XREAD` per process; what it buys is one stream shared by every server process.

    python bench/hub_redis.py                  # about a minute
    python bench/hub_redis.py --quick          # smoke run, a few seconds (tests call it)
    python bench/hub_redis.py --json out.json  # also write the figures
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any

from fanout import QUEUE, HubAdapter, Sub, clean, finish, parse_args
from fanout import run as fanout_run

import ssenb
from ssenb import Hub

REDIS: dict[str, str] = {}  # the URL of the redis-server started by main()


class StreamIdSub(Sub):
    """A fan-out subscriber for any increasing ids (ints or Redis `ms-seq`): `expect` is the
    number of events taken plus one, as the harness's progress and `wait` use it."""

    last: tuple[int, ...] = ()

    def take(self, events: list[Any]) -> None:
        box, taken, last = self.box, self.expect - 1, self.last
        for event in events:
            if event.event != "message":
                self.dropped += 1
                continue
            key = tuple(map(int, event.id.split("-")))
            if key <= last:
                self.errors += 1
            last, taken = key, taken + 1
            if taken >= box["latency_from"] > 0:
                box["delays"].append(time.time() - float(event.data))
        self.expect, self.last = taken + 1, last


class RedisAdapter(HubAdapter):
    """`Hub(backend="redis://...")` on a fresh stream, behind fanout's hub interface."""

    def __init__(self) -> None:
        self.hub = Hub(backend=f"{REDIS['url']}?stream=bench-{uuid.uuid4().hex[:8]}", queue=QUEUE)
        self.publish_many = self.hub.publish_many

    @property
    def dropped(self) -> int:
        return 0  # the Redis hub never drops: a slow subscriber reads on alone (gaps would show)


HUBS = {"in memory": HubAdapter, "on Redis": RedisAdapter}


def start_redis(workdir: str) -> subprocess.Popen[bytes]:
    """A throwaway `redis-server` on a free loopback port, no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.02)
    REDIS["url"] = f"redis://127.0.0.1:{port}/0"
    return proc


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], StreamIdSub)
    if args is None:
        return 0
    begun = time.monotonic()
    counts = (1, 100) if args.quick else (1, 100, 1000)
    seconds, latency_seconds = (0.5, 0.3) if args.quick else (3.0, 1.5)
    print(f"ssenb {ssenb.__version__} hub on Redis vs in memory{' (quick)' if args.quick else ''}")
    print(
        f"  {'subscribers':>11} {'memory ev/s':>13} {'Redis ev/s':>13} {'Redis/memory':>12}"
        f"   {'memory p50/p99 ms':>17} {'Redis p50/p99 ms':>17}  checks"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(tmp)
        try:
            for n in counts:
                mem, red = (
                    fanout_run(kind, n, seconds, latency_seconds, HUBS, __file__) for kind in HUBS
                )
                ratio = red["delivered_per_s"] / mem["delivered_per_s"]
                ok = clean(mem, red)
                row = {"subscribers": n, "memory": mem, "redis": red, "ratio": ratio, "ok": ok}
                rows.append(row)
                print(
                    f"  {n:>11} {mem['delivered_per_s']:>13,.0f} {red['delivered_per_s']:>13,.0f}"
                    f" {ratio:>11.2f}x   {mem['p50_ms']:>7.2f} / {mem['p99_ms']:<7.2f}"
                    f" {red['p50_ms']:>7.2f} / {red['p99_ms']:<7.2f}"
                    f"  {'every event, in order' if ok else 'LOSS OR DISORDER'}",
                    flush=True,
                )
        finally:
            redis.kill()
            redis.wait(10)
    return finish(args, rows, begun)


if __name__ == "__main__":
    raise SystemExit(main())
