"""The live view of a load sweep, and the per-level summary table it and `load` share.

The view is an ordinary `ssenb.View` registered as "llm-load" (chosen by name only), so the
same `Frame` shows it with the same budget (at most 20 messages/s however many streams run),
and its final HTML is the snapshot a saved notebook keeps: readable offline, no widget JS.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pandas as pd

from .._models import Event
from ..notebook._view_base import View, esc
from ..notebook._views import register_view
from ._load import Level, Sample, percentile

__all__ = ["LoadView", "summarize_levels"]

SUMMARY_COLUMNS = [
    "concurrency", "peak_streams", "requests", "errors", "ttft_p50", "ttft_p99", "itl_p50",
    "itl_p99", "tokens_per_s", "stream_tokens_per_s", "client_us_per_event", "loop_busy",
    "lag_p50", "lag_p99", "client_bound", "wall",
]  # fmt: skip


def summarize_levels(rows: pd.DataFrame, levels: Sequence[Level]) -> pd.DataFrame:
    """One row per concurrency level: latency percentiles over its requests (ITL over every
    gap of every stream), total tokens/s over the level's wall time, and the client's load."""
    out: list[dict[str, Any]] = []
    for level in levels:
        mine = rows[rows["concurrency"] == level.concurrency] if len(rows) else rows
        ok = mine[mine["error"] == ""] if len(mine) else mine
        gaps = [b - a for s in level.samples if not s.error for a, b in pairwise(s.times)]
        ttfts = [float(t) for t in ok["ttft"].dropna()] if len(ok) else []
        tokens = int(ok["deltas"].sum()) if len(ok) else 0
        events = sum(s.events for s in level.samples)
        cpu = sum(s.cpu for s in level.samples)
        rates = [float(r) for r in ok["tokens_per_s"].dropna()] if len(ok) else []
        out.append({
            "concurrency": level.concurrency,
            "peak_streams": level.peak,
            "requests": len(mine),
            "errors": int((mine["error"] != "").sum()) if len(mine) else 0,
            "ttft_p50": percentile(ttfts, 0.5),
            "ttft_p99": percentile(ttfts, 0.99),
            "itl_p50": percentile(gaps, 0.5),
            "itl_p99": percentile(gaps, 0.99),
            "tokens_per_s": tokens / level.wall if level.wall > 0 else None,
            "stream_tokens_per_s": percentile(rates, 0.5),
            "client_us_per_event": 1e6 * cpu / events if events else None,
            "loop_busy": level.busy,
            "lag_p50": level.lag_p50,
            "lag_p99": level.lag_p99,
            "client_bound": level.client_bound,
            "wall": level.wall,
        })  # fmt: skip
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{1000 * value:.1f} ms"


class LoadView(View):
    """Requests done / in flight, TTFT and ITL so far, tokens/s, per level and live."""

    kind = "llm-load"
    interval = 0.25

    def __init__(self, *, title: str = "") -> None:
        super().__init__(title=title)
        self.levels: list[int] = []
        self.level: int | None = None
        self.done = 0
        self.in_flight = 0
        self.errors = 0
        self.ttfts: dict[int, list[float]] = {}
        self.gaps: dict[int, list[float]] = {}
        self.tokens: dict[int, int] = {}
        self.level_started: dict[int, float] = {}
        self.walls: dict[int, float] = {}
        self.bound: dict[int, bool] = {}
        self.note = ""

    # -- fed by the sweep, on the loop thread -----------------------------------------------
    def start_level(self, concurrency: int, now: float) -> None:
        self.level = concurrency
        self.levels.append(concurrency)
        self.level_started[concurrency] = now
        for table in (self.ttfts, self.gaps):
            table[concurrency] = []
        self.tokens[concurrency] = 0

    def end_level(self, level: Level) -> None:
        self.walls[level.concurrency] = level.wall
        self.bound[level.concurrency] = level.client_bound

    def on_start(self, sample: Sample) -> None:
        self.in_flight += 1

    def on_done(self, sample: Sample) -> None:
        self.in_flight -= 1
        self.done += 1
        self.count += sample.events
        c = sample.concurrency
        if sample.error:
            self.errors += 1
            return
        if sample.ttft is not None:
            self.ttfts[c].append(sample.ttft)
        self.gaps[c].extend(b - a for a, b in pairwise(sample.times))
        self.tokens[c] += len(sample.times)

    def on_events(self, events: Sequence[Event], now: float) -> None:
        """Not fed with raw events: the sweep calls `on_start` / `on_done` instead."""

    # -- rendering ----------------------------------------------------------------------
    def _summary(self, now: float) -> str:
        parts = [f"{self.done} done", f"{self.in_flight} in flight"]
        if self.errors:
            parts.append(f"{self.errors} errors")
        if self.level is not None:
            c = self.level
            parts.append(f"c={c} TTFT p50 {_ms(percentile(self.ttfts[c], 0.5))}")
            parts.append(f"ITL p50 {_ms(percentile(self.gaps[c], 0.5))}")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)

    def _body_html(self, now: float) -> str:
        if not self.levels:
            return ""
        head = "".join(f"<th>{h}</th>" for h in ("concurrency", "TTFT p50", "TTFT p99",
                       "ITL p50", "ITL p99", "tokens/s", "client"))  # fmt: skip
        rows = []
        for c in self.levels:
            wall = self.walls.get(c, now - self.level_started[c])
            rate = f"{self.tokens[c] / wall:,.0f}" if wall > 0 else "–"
            bound = self.bound.get(c)
            client = "running" if bound is None else "saturated" if bound else "ok"
            cells = (c, _ms(percentile(self.ttfts[c], 0.5)), _ms(percentile(self.ttfts[c], 0.99)),
                     _ms(percentile(self.gaps[c], 0.5)), _ms(percentile(self.gaps[c], 0.99)),
                     rate, client)  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in cells) + "</tr>")
        return (
            '<table class="ssenb-load" style="font-family:monospace;text-align:right">'
            f"<tr>{head}</tr>{''.join(rows)}</table>"
        )


register_view("llm-load", LoadView)
