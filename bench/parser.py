"""Parser throughput: ssenb's EventParser vs httpx-sse 0.4.3's decode path vs a naive splitter.

All three read the same in-memory stream through `httpx.Response.iter_*` in 64 KiB chunks, so
the byte source costs the same for each. Workloads: LLM-token events (27 B, one `data:` line,
no id) and 1 KB events with `id:`, `event:` and `data:` lines. Each parser must count exactly the
events in the stream. Prints the median of several runs and ratios measured in the same run.
`--baseline DIR` adds the EventParser of another checkout (e.g. a `git worktree` of an older
commit) as one more row, interleaved with the others, so a parser change is judged in one run.

    python bench/parser.py [--quick] [--json out.json] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import EventSource as HxEventSource

from ssenb import EventParser

CHUNK = 64 * 1024


def token_stream(n: int) -> bytes:
    return b"".join(b'data: {"content": "w%05d"}\n\n' % (i % 100000) for i in range(n))


def ticks_stream(n: int) -> bytes:
    return b"".join(b'id: %d\ndata: {"t": %d.5, "value": 0.25}\n\n' % (i, i) for i in range(n))


def kb_stream(n: int) -> bytes:
    body = b"x" * 990
    return b"".join(b"id: %d\nevent: blob\ndata: %s\n\n" % (i, body) for i in range(n))


def _response(blob: bytes) -> httpx.Response:
    chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def _run_with(parser_class: Any) -> Callable[[bytes], int]:
    def run(blob: bytes) -> int:
        parser = parser_class()
        n = 0
        for chunk in _response(blob).iter_bytes():
            n += len(parser.feed(chunk))
        return n

    return run


run_ssenb = _run_with(EventParser)


def load_baseline(root: str) -> Any:
    """EventParser from the ssenb package under `root`, imported as `ssenb_baseline` (the
    core uses relative imports only, so both versions live side by side in one process)."""
    init = Path(root, "ssenb", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        "ssenb_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no ssenb package under {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ssenb_baseline"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("ssenb_baseline._parser").EventParser


def run_httpx_sse(blob: bytes) -> int:
    return sum(1 for _ in HxEventSource(_response(blob)).iter_sse())


def run_naive(blob: bytes) -> int:
    """The seed's client: split text lines, strip, keep `data: ` lines (wrong, but a floor)."""
    n = 0
    rest = ""
    for text in _response(blob).iter_text():
        lines = (rest + text).split("\n")
        rest = lines.pop()
        for line in lines:
            line = line.strip()
            if line.startswith("data: "):
                n += 1
    return n


PARSERS: dict[str, Callable[[bytes], int]] = {
    "ssenb": run_ssenb,
    "httpx-sse 0.4.3": run_httpx_sse,
    "naive splitter": run_naive,
}


def measure(blob: bytes, expected: int, repeats: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in PARSERS}
    for _ in range(repeats):
        for name, fn in PARSERS.items():
            start = time.perf_counter()
            count = fn(blob)
            elapsed = time.perf_counter() - start
            if count != expected:
                raise AssertionError(f"{name} counted {count} events, expected {expected}")
            rates[name].append(expected / elapsed)
    return {name: statistics.median(r) for name, r in rates.items()}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small streams, one run (smoke test)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--baseline", help="another ssenb checkout whose parser runs alongside")
    args = ap.parse_args(argv)
    if args.baseline:
        PARSERS["ssenb @ baseline"] = _run_with(load_baseline(args.baseline))
    n_small, n_kb, repeats = (20_000, 2_000, 1) if args.quick else (500_000, 50_000, 5)
    workloads = {
        "tokens 27 B": (token_stream(n_small), n_small),
        "ticks id+data": (ticks_stream(n_small // 2), n_small // 2),
        "1 KB, id+event": (kb_stream(n_kb), n_kb),
    }
    results = {name: measure(blob, n, repeats) for name, (blob, n) in workloads.items()}
    print(f"{'workload':<16} {'parser':<16} {'events/s':>12} {'vs httpx-sse':>13} {'vs naive':>9}")
    for workload, rates in results.items():
        for name, rate in rates.items():
            hx = rate / rates["httpx-sse 0.4.3"]
            nv = rate / rates["naive splitter"]
            print(f"{workload:<16} {name:<16} {rate:>12,.0f} {hx:>12.2f}x {nv:>8.2f}x")
    small = results["tokens 27 B"]
    ratio = small["ssenb"] / small["httpx-sse 0.4.3"]
    verdict = "MET" if ratio >= 3.5 else "MISSED"
    print(f"target: ssenb >= 3.5x httpx-sse on small events -> {ratio:.2f}x {verdict}")
    if args.baseline:
        for workload, rates in results.items():
            change = rates["ssenb"] / rates["ssenb @ baseline"]
            print(f"{workload:<16} ssenb / baseline = {change:.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"parser": results, "ratio_small_vs_httpx_sse": ratio}, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
