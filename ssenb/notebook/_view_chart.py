"""The chart view: live line charts of the stream's numeric data, as plain inline SVG.

`watch(url, view="chart", y="data.value")` draws `data.<key>` columns of the subscription's
DataFrame batcher against the arrival time or another column. Why it is built this way:

1. No JavaScript: the chart is an SVG inside the view's HTML, so it works wherever core
   ipywidgets do (JupyterLab, Notebook 7, VS Code, Colab) and the final snapshot stays in
   the saved notebook as static HTML. The Frame sends it at most 20 times a second.
2. The data comes from the batcher, in bulk: at each redraw the rows flushed since the last
   one (`DataFrameBatcher.since`) are parsed in one go by the batcher's own parser, so the
   columns and types are those of `.df`, nothing runs per event, and an unshown chart costs
   nothing. A chart fed by hand takes frames (`on_frame`, e.g. as a batcher's `on_batch`).
3. Redraws cost the same at 10 or 10^6 points: each series keeps at most `_CAP` points
   (when it grows past that it is compacted by `minmax_indices` into `_CAP / 4` bins), and
   a redraw decimates those into one bin per pixel column. Keeping each bin's minimum and
   maximum (not a mean or every n-th point) keeps every spike visible.
4. Rows may arrive from another thread (a cell reading `.df` flushes): folding them in
   happens under a lock.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._models import Event
from ..recording._flatten import flatten_data
from ._batcher import DataFrameBatcher
from ._chart_math import (
    Floats,
    minmax_decimate,
    minmax_indices,
    nice_ticks,
    parse_window,
    time_ticks,
)
from ._view_base import View, esc
from ._view_progress import RateView

__all__ = [
    "ChartView",
    "chart_view",
    "match_chart",
    "minmax_decimate",
    "minmax_indices",
    "nice_ticks",
    "parse_window",
    "time_ticks",
]

Panels = Literal["shared", "split"]
_CAP = 8192  # points kept per series before compaction
_MAX_SERIES = 8
_QUEUED = 32  # frames waiting for a render before they are folded on arrival
_TIME_NAMES = frozenset({"t", "ts", "time", "timestamp"})  # never a default y: an x
_COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#555")


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _clock(epoch: float, fine: bool) -> str:
    stamp = datetime.fromtimestamp(epoch)
    return stamp.strftime("%H:%M:%S") + (f".{stamp.microsecond // 1000:03d}" if fine else "")


def match_chart(url: str, events: Sequence[Event]) -> bool:
    """`view="auto"` picks the chart for `/ticks`, and for JSON objects whose fields are
    mostly numbers with at least one non-integer (`{"t": .., "value": 0.5}`, metrics,
    prices, sensors); counters like `{"count": 1}` stay tables."""
    if urlsplit(url).path.rstrip("/").endswith("/ticks"):
        return True
    for ev in events:
        if ev.data == "[DONE]":
            continue
        try:
            value: Any = json.loads(ev.data)
        except ValueError:
            return False
        if not isinstance(value, dict) or not value:
            return False
        numbers = [
            v for v in value.values() if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        return 2 * len(numbers) > len(value) and any(isinstance(v, float) for v in numbers)
    return False


def _epoch(values: npt.NDArray[Any]) -> Floats:
    ns = values.astype("datetime64[ns]").astype(np.int64)
    return ns.astype(np.float64) / 1e9


def _numeric_frame(frame: pd.DataFrame) -> dict[str, Floats]:
    """A frame's numeric and datetime columns as float arrays (datetimes in epoch seconds)."""
    out: dict[str, Floats] = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            out[name] = _epoch(values.to_numpy(dtype="datetime64[ns]"))
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[name] = np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    return out


def _numeric_arrow(arr: pa.Array) -> Floats | None:
    kind = arr.type
    if pa.types.is_timestamp(kind):
        return _epoch(arr.to_numpy(zero_copy_only=False))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        floats = pc.cast(arr, pa.float64()).fill_null(math.nan)
        return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)
    return None


def _numeric_batches(batches: list[pa.RecordBatch]) -> dict[str, Floats]:
    """Envelope batches' `time` and parsed `data.<key>` columns (the batcher's own parser,
    so the same columns and types as `.df`), numeric ones as float arrays."""
    table = pa.Table.from_batches(batches)
    columns = [("time", table.column("time").combine_chunks())]
    columns += flatten_data(table.column("event"), table.column("data"))
    return {name: v for name, arr in columns if (v := _numeric_arrow(arr)) is not None}


class _Series:
    """One column's points (x, y, and the row number of each, for a window of rows)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.x: Floats = np.empty(0)
        self.y: Floats = np.empty(0)
        self.row: Floats = np.empty(0)
        self.last: float | None = None

    def extend(self, x: Floats, y: Floats, row: Floats) -> None:
        self.x, self.y = np.r_[self.x, x], np.r_[self.y, y]
        self.row = np.r_[self.row, row]
        good = y[~np.isnan(y)]
        if good.size:
            self.last = float(good[-1])

    def trim(self, rows: int | None, seconds: float | None, total: int, newest: float) -> None:
        keep: npt.NDArray[np.bool_] | None = None
        if rows is not None:
            keep = self.row >= total - rows
        if seconds is not None:
            recent = self.x >= newest - seconds
            keep = recent if keep is None else keep & recent
        if keep is not None and not keep.all():
            self.x, self.y, self.row = self.x[keep], self.y[keep], self.row[keep]
        if self.x.size > _CAP:  # compact: each bin keeps its extremes (and their rows)
            lo, hi = float(np.nanmin(self.x)), float(np.nanmax(self.x))
            index = minmax_indices(self.x, self.y, lo, hi, _CAP // 4)
            self.x, self.y, self.row = self.x[index], self.y[index], self.row[index]


class ChartView(View):
    """Live line charts of numeric columns, one SVG, with axes, a legend and last values.

    Args:
        y: a column (`"data.value"`, or just `"value"`) or a list of them; None charts every
            numeric `data.<key>` column (up to 8) except time-like ones (`t`, `ts`, `time`).
        x: a numeric or datetime column to plot against; None: the arrival time (`time`),
            labelled HH:MM:SS.
        window: rolling window: rows (int, `5000`), seconds (float, `30.0`, or `"30s"`,
            `"2min"`; x units when `x` is a numeric column); None keeps everything.
        panels: "shared" (one set of axes) or "split" (one panel per series, stacked).
        width, height: the SVG's size in pixels (`height` per panel when split).
    """

    kind = "chart"
    interval = 0.25

    def __init__(
        self,
        *,
        y: str | Sequence[str] | None = None,
        x: str | None = None,
        window: float | str | None = None,
        panels: Panels = "shared",
        width: int = 560,
        height: int = 160,
        title: str = "",
    ) -> None:
        super().__init__(title=title)
        if panels not in ("shared", "split"):
            raise ValueError(f"panels must be 'shared' or 'split', not {panels!r}")
        if isinstance(y, str):
            y = [y]
        self.columns = None if y is None else [c if "." in c else f"data.{c}" for c in y]
        if x is not None and not isinstance(x, str):
            raise TypeError(f"x must be a column name or None, not {x!r}")
        self.x_column = None if x is None else (x if x == "time" or "." in x else f"data.{x}")
        self.rows_window, self.seconds_window = parse_window(window)
        self.panels: Panels = panels
        self.width, self.height = max(int(width), 120), max(int(height), 60)
        self.series: dict[str, _Series] = {}
        self.rows = 0  # rows folded in so far
        self.note = ""  # why nothing is drawn yet, when something is missing
        self.rate = RateView(title=title)
        self._frames: deque[pd.DataFrame] = deque()
        self._lock = threading.Lock()
        self.batcher: DataFrameBatcher | None = None  # set by watch(): rows are read from it
        self.seen = 0  # rows of `batcher` folded in

    # -- data in ----------------------------------------------------------------------------
    def on_frame(self, frame: pd.DataFrame) -> None:
        """The batcher's `on_batch`: queue one flushed batch (any thread; folded on render,
        or here once many wait, so an unshown chart holds no more than its series)."""
        self._frames.append(frame)
        if len(self._frames) >= _QUEUED:
            self.fold()

    def _add(self, events: Sequence[Event], now: float) -> None:
        self.rate.on_events(events, now)  # the header's rate counters; the data comes framed

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        super().on_status(status, error)
        self.rate.on_status(status, error)

    def _pick(self, numeric: dict[str, Floats]) -> list[str]:
        if self.columns is not None:
            return self.columns[:_MAX_SERIES]
        names = [
            name
            for name in numeric
            if name.startswith("data.")
            and name.split(".", 1)[1] not in _TIME_NAMES
            and name != self.x_column
        ]
        return names[:_MAX_SERIES]

    def prepare(self) -> None:
        """Fold new rows in a worker thread (see `View.prepare`): Arrow's JSON parser releases
        the GIL, so most of a fold overlaps with reading the stream instead of pausing it."""
        self.fold()

    def fold(self) -> None:
        """Fold new rows into the series (rendering calls it): queued frames, and the rows
        the bound batcher flushed since the last fold, parsed in one go."""
        with self._lock:
            while self._frames:
                frame = self._frames.popleft()
                self._ingest(len(frame), _numeric_frame(frame))
            if self.batcher is not None:
                self.seen, batches = self.batcher.since(self.seen)
                if batches:
                    rows = sum(b.num_rows for b in batches)
                    self._ingest(rows, _numeric_batches(batches))

    def _ingest(self, n: int, numeric: dict[str, Floats]) -> None:
        if n == 0:
            return
        row = np.arange(self.rows, self.rows + n, dtype=np.float64)
        self.rows += n
        x = numeric.get(self.x_column or "time")
        if x is None:
            self.note = f"no numeric column {self.x_column} yet"
            return
        for name in self._pick(numeric) if not self.series or self.columns is None else []:
            if name not in self.series and len(self.series) < _MAX_SERIES:
                self.series[name] = _Series(name)
        missing = [name for name in self.series if name not in numeric]
        for name, series in self.series.items():
            if name in numeric:
                series.extend(x, numeric[name], row)
        self.note = f"no numeric column {', '.join(missing)} yet" if missing else ""
        if not self.series:
            self.note = "no numeric data columns yet"
        newest = float(np.nanmax(x)) if np.isfinite(x).any() else math.nan
        for series in self.series.values():
            series.trim(self.rows_window, self.seconds_window, self.rows, newest)

    # -- drawing ----------------------------------------------------------------------------
    def x_range(self) -> tuple[float, float] | None:
        """The x span drawn: the window ending at the newest point, or all points."""
        xs = [s.x for s in self.series.values() if s.x.size]
        if not xs:
            return None
        lo, hi = min(float(np.nanmin(x)) for x in xs), max(float(np.nanmax(x)) for x in xs)
        if self.seconds_window is not None:
            lo = hi - self.seconds_window
        return lo, hi if hi > lo else lo + 1.0

    def _summary(self, now: float) -> str:
        return self.rate._summary(now)

    def _body_html(self, now: float) -> str:
        self.fold()
        span = self.x_range()
        if span is None:
            note = self.note or "waiting for numeric data…"
            return f'<div style="font-family:monospace;color:#757575">{esc(note)}</div>'
        groups = [list(self.series)] if self.panels == "shared" else [[n] for n in self.series]
        svg = "".join(self._panel(names, span, i) for i, names in enumerate(groups))
        total = self.height * len(groups)
        legend = " ".join(self._legend(i, s) for i, s in enumerate(self.series.values()))
        note = f' <span style="color:#757575">{esc(self.note)}</span>' if self.note else ""
        return (
            f'<div style="font-family:monospace"><svg width="{self.width}" height="{total}"'
            f' viewBox="0 0 {self.width} {total}" role="img" aria-label="live chart"'
            f' style="background:#fff;max-width:100%">{svg}</svg>'
            f'<div class="ssenb-legend">{legend}{note}</div></div>'
        )

    def _legend(self, i: int, series: _Series) -> str:
        last = "–" if series.last is None else _fmt(series.last)
        colour = _COLOURS[i % len(_COLOURS)]
        return (
            f'<span style="white-space:nowrap;margin-right:1em"><span style="color:{colour}">'
            f"&#9632;</span> {esc(series.name)} <b>{esc(last)}</b></span>"
        )

    def _panel(self, names: list[str], span: tuple[float, float], index: int) -> str:
        left, right, top, bottom = 56, 8, 6, 18
        top += index * self.height
        w, h = self.width - left - right, self.height - 6 - bottom
        lo, hi = span
        drawn = {n: minmax_decimate(self.series[n].x, self.series[n].y, lo, hi, w) for n in names}
        ys = [v for _, y in drawn.values() for v in (y.min(), y.max()) if y.size]
        ylo, yhi = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if yhi - ylo < 1e-12 * max(abs(ylo), 1.0):
            ylo, yhi = ylo - 1.0, yhi + 1.0
        pad = (yhi - ylo) * 0.05
        ylo, yhi = ylo - pad, yhi + pad

        def px(v: Floats | float) -> Any:
            return left + (v - lo) / (hi - lo) * w

        def py(v: Floats | float) -> Any:
            return top + h - (v - ylo) / (yhi - ylo) * h

        timed = self.x_column is None or self.x_column == "time"
        parts = [
            f'<g class="ssenb-panel" data-box="{left} {top} {w} {h}"'
            f' data-x="{float(lo)!r} {float(hi)!r}" data-y="{float(ylo)!r} {float(yhi)!r}">'
            f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>'
        ]
        for tick in nice_ticks(ylo, yhi, max(h // 30, 2)):
            y = py(tick)
            parts.append(
                f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end"'
                f' fill="#555">{esc(_fmt(tick))}</text>'
            )
        ticks = time_ticks(lo, hi, 5) if timed else nice_ticks(lo, hi, 5)
        fine = timed and hi - lo < 5
        for tick in ticks:
            label = _clock(tick, fine) if timed else _fmt(tick)
            parts.append(
                f'<text x="{px(tick):.1f}" y="{top + h + 13}" font-size="10"'
                f' text-anchor="middle" fill="#555">{esc(label)}</text>'
            )
        for name, (dx, dy) in drawn.items():
            colour = _COLOURS[list(self.series).index(name) % len(_COLOURS)]
            points = " ".join(f"{a:.2f},{b:.2f}" for a, b in zip(px(dx), py(dy), strict=True))
            parts.append(
                f'<polyline data-series="{esc(name)}" fill="none" stroke="{colour}"'
                f' stroke-width="1.3" points="{points}"/>'
            )
            if dx.size:  # the newest point, so a single point shows too
                cx, cy = px(dx[-1]), py(dy[-1])
                parts.append(f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="2.2" fill="{colour}"/>')
        parts.append("</g>")
        return "".join(parts)


def chart_view(
    view: str | View,
    y: str | Sequence[str] | None = None,
    x: str | None = None,
    window: float | str | None = None,
    panels: Panels | None = None,
) -> str | View:
    """`watch()`'s view argument with its chart options applied: unchanged when none is
    given, else a `ChartView` (for `view="chart"` or `"auto"`: the options say "chart")."""
    if y is None and x is None and window is None and panels is None:
        return view
    if view not in ("auto", "chart"):
        raise TypeError(f"y=, x=, window= and panels= are chart options: not for view={view!r}")
    return ChartView(y=y, x=x, window=window, panels=panels or "shared")
