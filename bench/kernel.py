"""A responsive kernel under full ingest: `watch()` ev/s and trivial-cell round trips, in a
real Jupyter kernel (jupyter_client), with the demo server in the same kernel.

In one run, in one kernel (the notebook case: server thread, ssenb loop thread and the
kernel's main thread share one GIL):
  * idle: the round trip of a trivial cell (`execute_request` sent -> reply and idle);
  * `EventSource` alone: a cell reads `/ticks?rate=0&n=N` in a loop (the reference rate);
  * `watch()` alone: `/ticks?rate=0&n=N` with its view (widgets, as in JupyterLab) and
    DataFrame; its rate is events / (arrival of the last event - the call to `watch`), and
    the final `.df` is then built and checked (N rows);
  * `watch()` again while trivial cells are sent one after another, their round trips kept
    (the default `yield_every`, then `yield_every=None`: what the knob buys).
Targets (issue 27): watch >= 500 k ev/s; round trip p99 <= 60 ms while it ingests.

    python bench/kernel.py [--quick] [--json out.json] [--n N] [--pause S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
SETUP = """
import json, time, ssenb
srv = ssenb.serve(name="bench-kernel")
def _read(n):
    got = 0
    with ssenb.EventSource(srv.url + f"/ticks?rate=0&n={n}", reconnect="never") as es:
        for batch in es.iter_batches():
            got += len(batch)
    return got
"""
SOURCE = """
_t = time.perf_counter(); _got = 0
with ssenb.EventSource(srv.url + "/ticks?rate=0&n={n}", reconnect="never") as _es:
    for _ev in _es:
        _got += 1
_took = time.perf_counter() - _t
print(json.dumps({{"events": _got, "seconds": _took}}))
"""
WATCH = """
sub = ssenb.watch(srv.url + "/ticks?rate=0&n={n}"{kw})
"""
RESULT = """
sub.wait(300)
_v = sub.view
_rows = len(sub.df)
print(json.dumps({"status": sub.status, "events": _v.count, "rows": _rows,
                  "seconds": _v.last_at - _v.started, "kind": _v.current().kind}))
"""
TRIVIAL = "_ = 1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Driver:
    """A thin synchronous jupyter_client driver: run a cell, time its round trip."""

    def __init__(self, km: KernelManager) -> None:
        self.client = km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120.0) -> tuple[float, str]:
        """Execute `code`; (seconds from sending to its reply and idle status, stdout)."""
        started = time.perf_counter()
        msg_id = self.client.execute(code)
        while True:  # the reply comes on shell once the code ran
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        out, error = "", ""
        while True:  # then its output and the idle status on iopub
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out += content["text"]
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        took = time.perf_counter() - started
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed: {error or reply['content']}")
        return took, out

    def value(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run(code)[1].strip().splitlines()[-1])
        return result

    def running(self) -> bool:
        return self.run("print(sub.running)")[1].strip() == "True"

    def close(self) -> None:
        self.client.stop_channels()


@contextmanager
def kernel(cwd: Path) -> Iterator[Driver]:
    km = KernelManager(kernel_name="python3")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    km.start_kernel(cwd=str(cwd), env=env)
    driver = Driver(km)
    try:
        yield driver
    finally:
        driver.close()
        km.shutdown_kernel(now=True)


def round_trips(driver: Driver, count: int) -> list[float]:
    return [driver.run(TRIVIAL)[0] * 1000 for _ in range(count)]


def under_watch(
    driver: Driver, n: int, kw: str, probe: bool, limit: float = 300
) -> tuple[dict[str, Any], list[float]]:
    """Watch n events; with `probe`, send trivial cells one after another while it runs."""
    driver.run(WATCH.format(n=n, kw=kw))
    trips: list[float] = []
    deadline = time.monotonic() + limit
    while probe and time.monotonic() < deadline:
        took, out = driver.run("print(sub.running)")
        if out.strip() != "True":
            break
        trips.append(took * 1000)
    figures = driver.value(RESULT)
    assert figures["status"] == "done", figures
    assert figures["rows"] == n, figures
    return figures, trips


def _rate(figures: dict[str, Any]) -> float:
    return float(figures["events"] / figures["seconds"])


def measure(n: int, idle: int, kw: str, reps: int) -> dict[str, Any]:
    """Everything in one kernel, one after another: idle cells, EventSource alone, watch
    alone, watch with cells probing it (the knob's default), the same with yield_every=None."""
    with tempfile.TemporaryDirectory() as tmp, kernel(Path(tmp)) as driver:
        driver.run(SETUP)
        driver.run("_read(20_000)")  # warm up: imports, first connection
        under_watch(driver, 20_000, kw, probe=False)  # and the first watch (widgets, comms)
        idle_trips = round_trips(driver, idle)
        source = [driver.value(SOURCE.format(n=n)) for _ in range(reps)]
        for s in source:
            assert s["events"] == n, s
        source_rate = statistics.median(s["events"] / s["seconds"] for s in source)
        alone = [under_watch(driver, n, kw, probe=False)[0] for _ in range(reps)]
        watch_rate = statistics.median(map(_rate, alone))
        probed, trips = under_watch(driver, n, kw, probe=True)
        free, free_trips = under_watch(driver, n, kw + ", yield_every=None", probe=True)
    return {
        "events": n,
        "view": alone[0]["kind"],
        "events_per_s_source": source_rate,
        "events_per_s_watch": watch_rate,
        "watch_vs_source": watch_rate / source_rate,
        "idle_p50_ms": statistics.median(idle_trips),
        "idle_p99_ms": percentile(idle_trips, 0.99),
        "events_per_s_watch_probed": _rate(probed),
        "busy_p50_ms": statistics.median(trips) if trips else None,
        "busy_p99_ms": percentile(trips, 0.99) if trips else None,
        "busy_cells": len(trips),
        "events_per_s_no_yield_probed": _rate(free),
        "no_yield_p50_ms": statistics.median(free_trips) if free_trips else None,
        "no_yield_p99_ms": percentile(free_trips, 0.99) if free_trips else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--n", type=int, help="events per read (default 3 M, quick 300 k)")
    ap.add_argument("--kw", default="", help="extra watch() keywords, e.g. ', view=\"log\"'")
    args = ap.parse_args(argv)
    n = args.n or (300_000 if args.quick else 3_000_000)
    reps = 1 if args.quick else 2
    started = time.monotonic()
    print(f"kernel ingest benchmark{' (quick)' if args.quick else ''}: /ticks?rate=0&n={n:,}")
    fig = measure(n, 30 if args.quick else 100, args.kw, reps)
    print(f"  EventSource alone in a cell            {fig['events_per_s_source']:>10,.0f} ev/s")
    print(
        f"  watch() alone (view {fig['view']}, DataFrame)  {fig['events_per_s_watch']:>10,.0f} ev/s"
        f"  ({fig['watch_vs_source']:.2f}x EventSource)"
    )
    print(
        f"  trivial cell, idle kernel              p50 {fig['idle_p50_ms']:6.1f} ms"
        f"  p99 {fig['idle_p99_ms']:6.1f} ms"
    )
    for label, rate, p50, p99 in (
        ("watch + cells (default)", "events_per_s_watch_probed", "busy_p50_ms", "busy_p99_ms"),
        (
            "watch + cells, yield_every=None",
            "events_per_s_no_yield_probed",
            "no_yield_p50_ms",
            "no_yield_p99_ms",
        ),
    ):
        if fig[p50] is not None:
            print(
                f"  {label:<32} {fig[rate]:>10,.0f} ev/s  cell p50 {fig[p50]:6.1f} ms"
                f"  p99 {fig[p99]:6.1f} ms"
            )
    ok_rate = fig["events_per_s_watch"] >= 500_000
    ok_p99 = fig["busy_p99_ms"] is not None and fig["busy_p99_ms"] <= 60
    print(
        f"  targets: watch >= 500 k ev/s {'met' if ok_rate else 'NOT met'};"
        f" busy p99 <= 60 ms {'met' if ok_p99 else 'NOT met'}"
    )
    print(f"total {time.monotonic() - started:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
