"""The fan-out benchmarks' subscribers' process, seen from the publisher's side.

bench/fanout.py, bench/hub_redis.py (through fanout's `run`) and bench/nginx.py measure a hub
the same way: a child process (`<script> --subscribers URL N PATH`) holds the subscribers and
writes the id all of them have parsed into an 8-byte memory-mapped file; the publisher runs
flat out but never more than a window ahead of that id (so nobody is dropped and the figure
is sustained delivery), then publishes at 50 events/s for the latency. `Subscribers` is that
protocol, once.
"""

from __future__ import annotations

import json
import mmap
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

Publish = Callable[[list[str]], object]  # e.g. `Hub.publish_many`


class Subscribers:
    """`with Subscribers(url, n, script, queue) as subs:` starts n subscribers on `url` in
    `script`'s `--subscribers` mode and waits until they are connected; leaving the block
    tells them to quit (or kills them after an error). `queue` is each subscriber's bound on
    the hub: the publisher keeps below it."""

    def __init__(self, url: str, n: int, script: str, queue: int) -> None:
        self.url, self.n, self.script = url, n, script
        # events ahead of the slowest subscriber: below its queue, and at most ~0.5 M
        # deliveries in flight in all, so the last ones drain within seconds
        self.window = max(200, min(queue - 500, 500_000 // n))

    def __enter__(self) -> Subscribers:
        self._shared = tempfile.NamedTemporaryFile()
        self._shared.write(bytes(8))
        self._shared.flush()
        self._progress = mmap.mmap(self._shared.fileno(), 8)
        argv = [self.script, "--subscribers", self.url, str(self.n), self._shared.name]
        self.child = subprocess.Popen(
            [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert self._out().readline().strip() == "ready", "subscribers failed"
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.ask("quit")
                self.child.wait(20)
        finally:
            if self.child.poll() is None:
                self.child.kill()
                self.child.wait()
            self._progress.close()
            self._shared.close()

    def _out(self) -> Any:
        assert self.child.stdout is not None
        return self.child.stdout

    def ask(self, line: str) -> dict[str, Any]:
        """Send a command; `wait ID` returns the child's report once all have parsed ID."""
        assert self.child.stdin is not None
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()
        return json.loads(self._out().readline()) if line.startswith("wait") else {}

    def _parsed(self) -> int:
        done: int = struct.unpack_from("q", self._progress)[0]
        return done

    def flat_out(self, publish: Publish, seconds: float) -> tuple[int, float]:
        """Publish batches of 100 for `seconds`, never more than the window ahead of the
        slowest subscriber; returns (events sent, wall-clock time the first was sent)."""
        sent, batch, started = 0, 100, time.time()
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            done, stuck = self._parsed(), time.monotonic() + 10
            while sent - done > self.window:
                time.sleep(0.0002)
                if (now := self._parsed()) > done:
                    done, stuck = now, time.monotonic() + 10
                elif time.monotonic() > stuck:
                    raise RuntimeError("the subscribers stopped making progress")
            publish([repr(time.time())] * batch)
            sent += batch
        return sent, started

    def latency(self, publish: Publish, sent: int, seconds: float) -> tuple[dict[str, Any], int]:
        """After `sent` events: one event every 20 ms for `seconds` (at least 5), timed from
        publish to parse; returns the child's report and how many were sent."""
        self.ask(f"latency {sent + 1}")
        ticks = max(5, int(50 * seconds))
        t0 = time.monotonic()
        for k in range(ticks):
            time.sleep(max(0.0, t0 + k / 50 - time.monotonic()))
            publish([repr(time.time())])
        return self.ask(f"wait {sent + ticks}"), ticks
