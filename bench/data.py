"""Data-layer benchmark: batching, recording and loading against the usual pandas/json code.

    python bench/data.py            # about a minute on the 2-core project machine
    python bench/data.py --quick    # a smoke run (small sizes, a few seconds)

Every variant runs in its own child process, so its peak RSS (`ru_maxrss` after its first
run, minus the child's own baseline after imports and input generation) is its alone; times
are the best of three runs of the measured step. Ratios compare variants measured in this
same run; the quick sizes are dominated by fixed costs, so only the full run checks targets.

Targets (DESIGN.md): batcher >= 2x a list of dicts then one DataFrame at <= 1/2 its memory;
recorder >= 3x json.dumps + write per line; read_jsonl >= 6x pandas.read_json(lines=True)
with parse_data=False, >= 3x with parse_data=True, at <= 1/3 of its peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ssenb import Event

SIZES = {"batch": 300_000, "record": 500_000, "read": 500_000}
QUICK = {"batch": 20_000, "record": 40_000, "read": 30_000}
REPEAT = 3  # best of three: the machine's two cores are shared


def make_events(n: int) -> list[Event]:
    """Events shaped like /ticks plus a nested object, as a stream would deliver them."""
    return [
        Event(
            event="tick",
            data=orjson.dumps(
                {"t": 1.7e9 + i / 1000, "value": i * 0.5, "meta": {"src": "a", "seq": i}}
            ).decode(),
            id=str(i),
        )
        for i in range(n)
    ]


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        if isinstance(value, dict):
            _flatten(value, prefix + key + ".", out)
        else:
            out[prefix + key] = value


# --- the measured steps: each returns something so the work is not optimised away --------


def batch_ssenb(events: list[Event], path: Path) -> int:
    from ssenb.notebook import DataFrameBatcher

    batcher = DataFrameBatcher(batch_size=1000, flush_interval=float("inf"))
    add, now = batcher.add, time.time
    for ev in events:
        add(ev, now())
    return len(batcher.df)


def batch_dicts(events: list[Event], path: Path) -> int:
    import pandas as pd

    rows = []
    now = time.time
    for ev in events:
        row = {"time": now(), "event": ev.event, "id": ev.id, "retry": ev.retry, "data": ev.data}
        _flatten(orjson.loads(ev.data), "data.", row)
        rows.append(row)
    df = pd.DataFrame(rows)
    df["time"] = pd.to_datetime(df["time"], unit="s", utc=True)
    return len(df)


def record_ssenb(events: list[Event], path: Path) -> int:
    from ssenb.recording import JSONLRecorder

    path.unlink(missing_ok=True)
    with JSONLRecorder(path, source="http://127.0.0.1:1/ticks") as rec:
        write, now = rec.write, time.time
        for ev in events:
            write(ev, now())
    return rec.written


def record_json(events: list[Event], path: Path) -> int:
    path.unlink(missing_ok=True)
    now = time.time
    with open(path, "a") as f:
        for ev in events:
            line = {"time": now(), "event": ev.event, "id": ev.id, "retry": ev.retry}
            line.update(data=ev.data, source="http://127.0.0.1:1/ticks")
            f.write(json.dumps(line) + "\n")
    return len(events)


def read_raw(events: list[Event], path: Path) -> int:
    from ssenb.recording import read_jsonl

    return len(read_jsonl(path, parse_data=False))


def read_parsed(events: list[Event], path: Path) -> int:
    from ssenb.recording import read_jsonl

    return len(read_jsonl(path))


def read_pandas(events: list[Event], path: Path) -> int:
    import pandas as pd

    return len(pd.read_json(path, lines=True))


STEPS: dict[str, tuple[str, Callable[[list[Event], Path], int]]] = {
    "batch_ssenb": ("batch", batch_ssenb),
    "batch_dicts": ("batch", batch_dicts),
    "record_ssenb": ("record", record_ssenb),
    "record_json": ("record", record_json),
    "read_raw": ("read", read_raw),
    "read_parsed": ("read", read_parsed),
    "read_pandas": ("read", read_pandas),
}


def child(name: str, n: int, path: Path) -> None:
    """Run one step twice in this process; print its best time and peak RSS growth."""
    import pandas  # noqa: F401  (imports are part of the baseline, not the step)
    import pyarrow  # noqa: F401

    kind, step = STEPS[name]
    events = make_events(n) if kind != "read" else []
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = float("inf")
    for i in range(REPEAT):
        started = time.perf_counter()
        rows = step(events, path)
        best = min(best, time.perf_counter() - started)
        if i == 0:  # peak of one run (allocators keep freed pages for the next)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    assert rows == n, (name, rows, n)
    print(json.dumps({"seconds": best, "peak_mb": peak / 1024}))


def run(name: str, n: int, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--n", str(n), "--path", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.n, args.path)
        return
    sizes = QUICK if args.quick else SIZES
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "read.jsonl"
        record_ssenb(make_events(sizes["read"]), recording)
        results = {}
        for name, (kind, _) in STEPS.items():
            path = recording if kind == "read" else Path(tmp) / f"{name}.jsonl"
            results[name] = run(name, sizes[kind], path)
    rows = [
        ("batching", "batch_ssenb", "batch_dicts", 2.0, 0.5),
        ("recording", "record_ssenb", "record_json", 3.0, None),
        ("read_jsonl raw", "read_raw", "read_pandas", 6.0, 1 / 3),
        ("read_jsonl parsed", "read_parsed", "read_pandas", 3.0, 1 / 3),
    ]
    header = f"{'what':<18} {'events':>8} {'ssenb s':>8} {'base s':>8} {'speed':>7} {'target':>7}"
    header += f" {'ssenb MB':>9} {'base MB':>8} {'mem':>6} {'target':>7}"
    print(header)
    figures: dict[str, float] = {}
    for label, ours, base, speed_target, mem_target in rows:
        a, b = results[ours], results[base]
        n = sizes[STEPS[ours][0]]
        speed = b["seconds"] / a["seconds"]
        key = label.replace(" ", "_")
        figures[f"speed_{key}"] = speed
        if b["peak_mb"] >= 1:
            figures[f"memory_{key}"] = a["peak_mb"] / b["peak_mb"]
        mem = f"{a['peak_mb'] / b['peak_mb']:.2f}" if b["peak_mb"] >= 1 else "-"
        mem_goal = f"<={mem_target:.2f}" if mem_target else "-"
        print(
            f"{label:<18} {n:>8} {a['seconds']:>8.3f} {b['seconds']:>8.3f} {speed:>6.1f}x"
            f" {'>=' + format(speed_target, '.0f') + 'x':>7} {a['peak_mb']:>9.0f}"
            f" {b['peak_mb']:>8.0f} {mem:>6} {mem_goal:>7}"
        )
    for name in ("record_ssenb", "record_json"):
        rate = sizes["record"] / results[name]["seconds"]
        figures[f"events_per_s_{name}"] = rate
        print(f"{name}: {rate / 1000:.0f} k events/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
