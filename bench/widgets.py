"""Widget messages per second per view, at the highest event rate this machine produces.

A real `/ticks?rate=0` stream from `ssenb.serve()` is read with `EventSource.iter_batches()`
into each live view, and the view's `Frame` is ticked as often as the watch loop ticks it
(every read, at least every 5 ms). Every comm message leaving a widget is counted by wrapping
`ipywidgets.Widget._send`; the busiest one-second window is reported beside the naive
"one message per event" design. Target: <= 20 messages per second per view.

    python bench/widgets.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ipywidgets

import ssenb
from ssenb.notebook._display import Frame
from ssenb.notebook._views import make_view

VIEWS = ("log", "table", "tokens", "progress", "rate")
TARGET = 20


def measure(url: str, kind: str, seconds: float) -> tuple[float, int, int]:
    """Return (events/s, busiest 1 s window of messages, total messages) for one view."""
    sent: list[float] = []
    original = ipywidgets.Widget._send

    def counting(self: ipywidgets.Widget, msg: dict, buffers: list | None = None) -> None:
        sent.append(time.monotonic())
        original(self, msg, buffers)

    ipywidgets.Widget._send = counting  # type: ignore[method-assign]
    try:
        view = make_view(kind, url)
        frame = Frame(view)
        sent.clear()
        count = 0
        start = time.monotonic()
        with ssenb.EventSource(url + "/ticks?rate=0") as source:
            for batch in source.iter_batches():
                now = time.monotonic()
                view.on_events(batch, now)
                frame.tick(now)
                count += len(batch)
                if now - start >= seconds:
                    break
        elapsed = time.monotonic() - start
        view.on_status("done")
        frame.tick(time.monotonic(), final=True)
    finally:
        ipywidgets.Widget._send = original  # type: ignore[method-assign]
    busiest = max((sum(1 for t in sent if s <= t < s + 1) for s in sent), default=0)
    return count / elapsed, busiest, len(sent)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="0.5 s per view (smoke test)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    seconds = 0.5 if args.quick else 3.0
    results: dict[str, dict[str, float]] = {}
    with ssenb.serve(name="bench-widgets") as srv:
        print(
            f"{'view':<10} {'events/s':>10} {'naive msg/s':>12} {'ssenb msg/s':>12} {'target':>7}"
        )
        for kind in VIEWS:
            rate, busiest, _ = measure(srv.url, kind, seconds)
            results[kind] = {"events_per_s": rate, "busiest_messages_per_s": busiest}
            verdict = "met" if busiest <= TARGET else "MISSED"
            print(f"{kind:<10} {rate:>10,.0f} {rate:>12,.0f} {busiest:>12} {'<=20':>7} {verdict}")
    worst = max(r["busiest_messages_per_s"] for r in results.values())
    print(f"worst view: {worst:.0f} messages/s (target <= {TARGET})")
    if args.json:
        Path(args.json).write_text(json.dumps({"views": results, "worst_messages_per_s": worst}))
    return results


if __name__ == "__main__":
    main()
