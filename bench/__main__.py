"""The whole performance suite in one command: `python -m bench [--quick] [--only a,b]`.

Runs each benchmark in its own process, one after another (never two at once: the machine has
two cores), streaming its tables as it goes; every script measures ssenb beside its peers in
the same run and takes medians or bests of several bounded repetitions itself. Then prints one
table of targets (from DESIGN.md) with the measured figure and a verdict, writes all figures
to `bench/results/latest.json` and draws `bench/results/summary.png`.
"""

from __future__ import annotations

import argparse
import json
import operator
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    *("parser", "e2e", "fanout", "hub_redis", "nginx", "data", "dataset", "widgets", "kernel"),
    *("chart", "llm_load"),
)

# (script, figure key, what, comparison, target)
TARGETS: list[tuple[str, str, str, Callable[[float, float], bool], float]] = [
    ("parser", "ratio_small_vs_httpx_sse", "parser, small events vs httpx-sse", operator.ge, 3.5),
    ("e2e", "ratio_one_process_small", "in-kernel e2e vs fastapi.sse + httpx-sse", operator.ge, 40),
    ("e2e", "latency_p99_ms_one_process", "p99 latency at 50 ev/s (ms)", operator.lt, 5),
    (
        "fanout",
        "ratio_at_most_subscribers",
        "hub vs per-event writes (most subs)",
        operator.ge,
        3,
    ),
    (
        "fanout",
        "delivered_per_s_at_most_subscribers",
        "hub delivered ev/s (most subs)",
        operator.ge,
        500_000,
    ),
    (
        "hub_redis",
        "redis_vs_memory_at_most_subscribers",
        "hub on Redis / hub in process, ev/s (most subs)",
        operator.ge,
        0.5,
    ),
    (
        "nginx",
        "two_workers_vs_memory",
        "nginx + 2 Redis workers / hub in process",
        operator.ge,
        1 / 3,
    ),
    ("data", "speed_read_jsonl_raw", "read_jsonl (raw) vs pandas.read_json", operator.ge, 6),
    ("data", "speed_read_jsonl_parsed", "read_jsonl (parsed) vs pandas.read_json", operator.ge, 3),
    ("data", "memory_read_jsonl_parsed", "read_jsonl peak memory vs pandas", operator.le, 1 / 3),
    ("data", "speed_recording", "recorder vs json.dumps per line", operator.ge, 3),
    ("data", "speed_batching", "batcher vs list of dicts", operator.ge, 2),
    ("data", "memory_batching", "batcher peak memory vs list of dicts", operator.le, 0.5),
    ("widgets", "worst_messages_per_s", "widget messages/s per view (worst)", operator.le, 20),
    ("kernel", "events_per_s_watch", "watch() ingest in a kernel, ev/s", operator.ge, 500_000),
    ("kernel", "busy_p99_ms", "trivial cell p99 during that ingest (ms)", operator.le, 60),
    ("chart", "ratio_chart_vs_no_view", "ingest with a live chart vs no view", operator.ge, 0.8),
    (
        "llm_load",
        "ratio_accurate_streams",
        "llm.load vs openai loop, accurate streams",
        operator.ge,
        2,
    ),
]


def run(name: str, quick: bool, out: Path) -> dict[str, Any] | None:
    """Run bench/<name>.py in a child process; its stdout streams through; return its JSON."""
    script = HERE / f"{name}.py"
    if not script.exists():
        print(f"\n== {name}: not present, skipped")
        return None
    cmd = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else [])]
    print(f"\n== {name} ({' '.join(cmd[1:])})", flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=HERE.parent, timeout=900, check=False)
    print(f"== {name}: {time.monotonic() - started:.0f} s, exit {proc.returncode}", flush=True)
    if proc.returncode != 0 or not out.exists():
        return None
    figures: dict[str, Any] = json.loads(out.read_text())
    if name == "fanout":  # rows per subscriber count -> the figures at the largest count
        top = max(figures["rows"], key=lambda r: r["subscribers"])
        figures["most_subscribers"] = top["subscribers"]
        figures["ratio_at_most_subscribers"] = top["ratio"]
        figures["delivered_per_s_at_most_subscribers"] = top["hub"]["delivered_per_s"]
    if name == "hub_redis":
        top = max(figures["rows"], key=lambda r: r["subscribers"])
        figures["most_subscribers"] = top["subscribers"]
        figures["redis_vs_memory_at_most_subscribers"] = top["ratio"]
        figures["redis_delivered_per_s_at_most_subscribers"] = top["redis"]["delivered_per_s"]
    if name == "nginx":  # one row: 1 and 2 workers and the in-process hub, same run
        figures.update({k: v for k, v in figures["rows"][0].items() if isinstance(v, float)})
        figures["most_subscribers"] = figures["rows"][0]["subscribers"]
    return figures


def verdicts(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for script, key, what, cmp, target in TARGETS:
        value = figures.get(script, {}).get(key)
        met = None if value is None else bool(cmp(value, target))
        signs: dict[Any, str] = {operator.ge: ">=", operator.le: "<=", operator.lt: "<"}
        sign = signs[cmp]
        shown = f"{target:.3g}" if target < 1 else f"{target:g}"
        rows.append({"what": what, "value": value, "target": f"{sign} {shown}", "met": met})
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One bar per target: the measured figure as a multiple of its target (1.0 = just met)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    shown = [r for r in rows if r["value"] is not None]
    scores = []
    for r in shown:
        sign, number = r["target"].split()
        target = float(number)
        higher_is_better = sign == ">="
        scores.append(r["value"] / target if higher_is_better else target / max(r["value"], 1e-9))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.2))
    colours = ["#2e7d32" if s >= 1 else "#c62828" for s in scores]
    ax.barh([r["what"] for r in shown], scores, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("measured / target (log; right of the line = target met)")
    ax.invert_yaxis()
    for y, (s, r) in enumerate(zip(scores, shown, strict=True)):
        ax.text(s, y, f"  {r['value']:,.3g}", va="center", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="ssenb performance suite")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~1 min)")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(SCRIPTS)}")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where JSON and PNG go")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCRIPTS)
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            result = run(name, args.quick, Path(tmp) / f"{name}.json")
            if result is not None:
                figures[name] = result
    rows = verdicts(figures)
    print(f"\n{'target':<46} {'measured':>12} {'target':>10}  verdict")
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:,.3g}"
        verdict = {True: "met", False: "MISSED", None: "not run"}[r["met"]]
        print(f"{r['what']:<46} {value:>12} {r['target']:>10}  {verdict}")
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    record = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "figures": figures,
        "targets": rows,
    }
    (args.out / f"latest{suffix}.json").write_text(json.dumps(record, indent=2))
    plot(rows, args.out / f"summary{suffix}.png")
    print(f"\nwrote {args.out / f'latest{suffix}.json'} and summary{suffix}.png")
    return (
        0 if all(r["met"] is not False for r in rows if r["value"] is not None) or args.quick else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
