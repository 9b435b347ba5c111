"""The chart view's cost on in-kernel ingest: events/s of a watch drawing a live chart,
beside the same watch with nothing shown.

Both read a real `/ticks?rate=0` stream from `ssenb.serve()` in this process for a fixed
time, alternately, five times each: `watch(url, view="rate", display=False)` (no widgets,
data never parsed) and `watch(url, view="chart", display=True)` (the new rows parsed in bulk
at each redraw, the SVG rendered, the widget synced within the Frame budget). The best rate
of each is reported (load on a shared machine only ever slows a run), and their ratio.
Target: the chart keeps >= 0.8x the ingest rate.

    python bench/chart.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ssenb

TARGET = 0.8
MODES = {"no view": {"view": "rate", "display": False}, "chart": {"view": "chart", "display": True}}


def measure(url: str, seconds: float, **kwargs: object) -> tuple[float, int]:
    """(events/s, SVG points drawn at the end) of one watch running for `seconds`."""
    sub = ssenb.watch(f"{url}/ticks?rate=0", **kwargs)  # type: ignore[arg-type]
    while not sub.events and sub.running:
        time.sleep(0.01)
    start, first = time.monotonic(), len(sub.events)
    time.sleep(seconds)
    count = len(sub.events) - first
    elapsed = time.monotonic() - start
    sub.stop()
    points = sub.view.html().count(",") if kwargs.get("view") == "chart" else 0
    return count / elapsed, points


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="0.5 s runs, 2 rounds (smoke test)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    seconds, rounds = (0.5, 2) if args.quick else (2.0, 5)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    points = 0
    with ssenb.serve(name="bench-chart") as srv:
        for _ in range(rounds):
            for mode, kwargs in MODES.items():
                rate, drawn = measure(srv.url, seconds, **kwargs)
                rates[mode].append(rate)
                points = max(points, drawn)
    base = max(rates["no view"])
    chart = max(rates["chart"])
    ratio = chart / base
    print(f"{'watch':<10} {'events/s (best)':>16} {'runs':>40}")
    for mode, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{mode:<10} {max(values):>16,.0f} {runs:>40}")
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"chart / no view: {ratio:.2f}x (target >= {TARGET}) {verdict}; {points} points drawn")
    figures = {
        "events_per_s_no_view": base,
        "events_per_s_chart": chart,
        "ratio_chart_vs_no_view": ratio,
        "points_drawn": float(points),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
