"""Parquet datasets: `DatasetRecorder` write rate vs `JSONLRecorder`, and a filtered read (one
hour, two columns) with `read_dataset` vs loading everything with `read_jsonl` and filtering.

Both recorders get the same events (ticks-like JSON data, times spread over 6 hours, so the
dataset has 6 `hour=` folders), each timed from the first `write` to a finished `close()`.
Prints medians of several runs and ratios measured in the same run.

    python bench/dataset.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from ssenb import Event
from ssenb.recording import DatasetRecorder, JSONLRecorder, read_dataset, read_jsonl

T0 = 1_795_000_800.0  # 2026-11-18 12:00:00 UTC
HOURS = 6


def events(n: int) -> list[tuple[Event, float]]:
    step = HOURS * 3600 / n
    return [
        (
            Event(data=orjson.dumps({"t": i * 0.1, "value": (i % 97) / 7}).decode(), id=str(i)),
            T0 + i * step,
        )
        for i in range(n)
    ]


def write_rate(
    make: Callable[[Path], JSONLRecorder | DatasetRecorder], evs: list, out: Path
) -> float:
    start = time.perf_counter()
    with make(out) as rec:
        write = rec.write
        for event, at in evs:
            write(event, at)
    return len(evs) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few events, one run (smoke test)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    n, repeats = (30_000, 1) if args.quick else (600_000, 3)
    evs = events(n)
    tmp = Path(tempfile.mkdtemp(prefix="ssenb-bench-dataset-"))
    try:
        jsonl_rates, ds_rates, full_s, filt_s = [], [], [], []
        hour = time.gmtime(T0 + 3600).tm_hour
        for r in range(repeats):
            jpath, dpath = tmp / f"r{r}.jsonl", tmp / f"ds{r}"
            jsonl_rates.append(write_rate(JSONLRecorder, evs, jpath))
            ds_rates.append(write_rate(DatasetRecorder, evs, dpath))
            start = time.perf_counter()
            full = read_jsonl(jpath)
            want = full.loc[full["time"].dt.hour == hour, ["time", "data.value"]]
            full_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            got = read_dataset(dpath, columns=["time", "data.value"], filters=[("hour", "=", hour)])
            filt_s.append(time.perf_counter() - start)
            if got["data.value"].tolist() != want["data.value"].tolist():
                raise AssertionError("read_dataset and read_jsonl disagree")
        jsonl_size = (tmp / "r0.jsonl").stat().st_size
        ds_size = sum(p.stat().st_size for p in (tmp / "ds0").rglob("*.parquet"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fig = {
        "events": n,
        "jsonl_write_ev_s": statistics.median(jsonl_rates),
        "dataset_write_ev_s": statistics.median(ds_rates),
        "read_jsonl_all_s": statistics.median(full_s),
        "read_dataset_hour_2cols_s": statistics.median(filt_s),
        "jsonl_mb": jsonl_size / 1e6,
        "dataset_mb": ds_size / 1e6,
    }
    fig["ratio_write_dataset_vs_jsonl"] = fig["dataset_write_ev_s"] / fig["jsonl_write_ev_s"]
    fig["ratio_filtered_read_speedup"] = fig["read_jsonl_all_s"] / fig["read_dataset_hour_2cols_s"]
    print(
        f"{n:,} events over {HOURS} h; "
        f"JSONL {fig['jsonl_mb']:.1f} MB, dataset {fig['dataset_mb']:.1f} MB"
    )
    print(f"{'what':<44} {'figure':>14} {'ratio':>8}")
    print(f"{'write: JSONLRecorder':<44} {fig['jsonl_write_ev_s']:>10,.0f} ev/s {'1.00x':>8}")
    print(
        f"{'write: DatasetRecorder (hour partitions)':<44} {fig['dataset_write_ev_s']:>10,.0f} ev/s"
        f" {fig['ratio_write_dataset_vs_jsonl']:>7.2f}x"
    )
    print(
        f"{'read: read_jsonl all, then filter':<44} {fig['read_jsonl_all_s']:>12.3f} s {'1.00x':>8}"
    )
    print(
        f"{'read: read_dataset one hour, two columns':<44}"
        f" {fig['read_dataset_hour_2cols_s']:>12.3f} s"
        f" {fig['ratio_filtered_read_speedup']:>7.2f}x faster"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"dataset": fig}, fh, indent=2)
    return fig


if __name__ == "__main__":
    main()
