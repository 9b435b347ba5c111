"""The chart view's pure parts: rolling windows, min/max decimation, nice axis ticks.

No I/O and no state, so each is tested on its own (`minmax_indices` by a hypothesis
property: every bin's extremes survive) and costs only numpy time.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

__all__ = [
    "Floats",
    "minmax_decimate",
    "minmax_indices",
    "nice_ticks",
    "parse_window",
    "time_ticks",
]

Floats = npt.NDArray[np.float64]
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s|min|m|h)\s*$")
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def parse_window(window: float | str | None) -> tuple[int | None, float | None]:
    """`(rows, seconds)` of a rolling window: an int is rows, a float seconds (x units when
    `x` is a column), a string "500ms", "30s", "2min", "1h"; None keeps everything."""
    if window is None:
        return None, None
    if isinstance(window, bool):
        raise TypeError(f"window must be rows (int), seconds (float) or '30s', not {window!r}")
    if isinstance(window, int):
        if window < 2:
            raise ValueError(f"a window of rows must be >= 2, not {window}")
        return window, None
    if isinstance(window, str):
        m = _WINDOW.match(window)
        if m is None:
            raise ValueError(f"window {window!r}: use e.g. '500ms', '30s', '2min', '1h'")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    elif isinstance(window, float):
        seconds = window
    else:
        raise TypeError(f"window must be rows (int), seconds (float) or '30s', not {window!r}")
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"a window of time must be > 0 seconds, not {window!r}")
    return None, seconds


def minmax_indices(
    x: Floats, y: Floats, lo: float, hi: float, columns: int
) -> npt.NDArray[np.intp]:
    """Indices of the points to draw: in each of `columns` equal bins over [lo, hi], the
    point with the smallest and the one with the largest y (one when they coincide), in x
    order (ties in arrival order). Points outside [lo, hi] and NaNs are dropped; `x` need
    not be sorted. At most 2 * columns indices whatever the input size; every bin's extremes
    survive, so a one-point spike is always drawn."""
    keep = np.flatnonzero(~np.isnan(y) & ~np.isnan(x) & (x >= lo) & (x <= hi))
    if keep.size == 0 or columns < 1:
        return np.empty(0, dtype=np.intp)
    xs, ys = x[keep], y[keep]
    span = hi - lo
    scaled = (xs - lo) * (columns / span) if span > 0 else np.zeros_like(xs)
    bins = np.minimum(scaled.astype(np.int64), columns - 1)
    order = np.lexsort((ys, bins))  # by bin, then by y within a bin
    sorted_bins = bins[order]
    starts = np.flatnonzero(np.r_[True, sorted_bins[1:] != sorted_bins[:-1]])
    ends = np.r_[starts[1:], sorted_bins.size] - 1
    picked = keep[np.unique(np.r_[order[starts], order[ends]])]
    ordered: npt.NDArray[np.intp] = picked[np.lexsort((picked, x[picked]))]
    return ordered


def minmax_decimate(
    x: Floats, y: Floats, lo: float, hi: float, columns: int
) -> tuple[Floats, Floats]:
    """The points `minmax_indices` keeps, as `(x, y)`."""
    index = minmax_indices(x, y, lo, hi, columns)
    return x[index], y[index]


def _nice(step: float) -> float:
    power = 10.0 ** math.floor(math.log10(step))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= step * 0.999)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) inside [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = _nice((hi - lo) / max(count, 1))
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def time_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Epoch seconds on whole clock steps (1 s, 2 s, 5 s, ... 1 min, ... 1 day) in [lo, hi]."""
    if hi - lo < 1:
        return nice_ticks(lo, hi, count)
    want = (hi - lo) / max(count, 1)
    step = next((s for s in _TIME_STEPS if s >= want), _TIME_STEPS[-1])
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
