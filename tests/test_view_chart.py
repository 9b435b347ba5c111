"""The chart view: what it draws is what was received, decimated so spikes survive.

Pure parts first (windows, min/max decimation as a hypothesis property, ticks, the `auto`
rule), then a `ChartView` fed by a real `DataFrameBatcher` (its SVG points are read back
and compared with the DataFrame after the same decimation), then `watch(view="chart")`
against a real server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ssenb
from ssenb import Event
from ssenb.notebook._batcher import DataFrameBatcher
from ssenb.notebook._chart_math import (
    minmax_indices,
    nice_ticks,
    parse_window,
    time_ticks,
)
from ssenb.notebook._view_chart import _CAP, ChartView, chart_view
from ssenb.notebook._views import make_view

XSS = "<img src=x onerror=alert(1)>"

# -- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (None, (None, None)),
        (5000, (5000, None)),
        (30.0, (None, 30.0)),
        ("30s", (None, 30.0)),
        ("500ms", (None, 0.5)),
        ("2min", (None, 120.0)),
        (" 1h ", (None, 3600.0)),
    ],
    ids=["none", "rows", "float-seconds", "30s", "500ms", "2min", "1h"],
)
def test_window_spellings(window: Any, expected: tuple[Any, Any]) -> None:
    assert parse_window(window) == expected


@pytest.mark.parametrize(
    ("window", "error"),
    [(True, TypeError), (1, ValueError), ("soon", ValueError), (0.0, ValueError), ([], TypeError)],
    ids=["bool", "one-row", "words", "zero-seconds", "list"],
)
def test_bad_windows_are_clear_errors(window: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="window"):
        parse_window(window)


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), finite), min_size=1, max_size=400),
    st.integers(1, 64),
)
def test_every_bins_extremes_survive_decimation(points: list[tuple[float, float]], n: int) -> None:
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    lo, hi = float(x.min()), float(x.max())
    kept = minmax_indices(x, y, lo, hi, n)
    assert len(kept) <= 2 * n
    assert list(x[kept]) == sorted(x[kept])  # drawable left to right
    span = hi - lo
    bins = np.minimum(((x - lo) * (n / span)).astype(int), n - 1) if span else np.zeros(x.size)
    for b in set(bins.tolist()):
        inside = bins == b
        drawn = set(y[kept][bins[kept] == b].tolist())
        assert y[inside].min() in drawn
        assert y[inside].max() in drawn


def test_a_one_point_spike_in_a_million_is_drawn() -> None:
    x = np.arange(1_000_000, dtype=float)
    y = np.zeros_like(x)
    y[654_321] = 1e9
    y[123_456] = -5
    kept = minmax_indices(x, y, 0, 999_999, 500)
    assert len(kept) <= 1000
    assert {654_321, 123_456} <= set(kept.tolist())


def test_nan_and_out_of_range_points_are_dropped() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    y = np.array([1.0, np.nan, 3.0, 4.0, 5.0])
    assert minmax_indices(x, y, 0.0, 2.0, 10).tolist() == [0, 2]


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0, 10, [0, 2, 4, 6, 8, 10]),
        (-110, 110, [-100, -50, 0, 50, 100]),
        (0.13, 0.61, [0.2, 0.3, 0.4, 0.5, 0.6]),
        (5, 5, [5]),
    ],
    ids=["unit", "symmetric", "fractions", "flat"],
)
def test_nice_ticks(lo: float, hi: float, ticks: list[float]) -> None:
    assert nice_ticks(lo, hi, 5) == ticks


def test_time_ticks_fall_on_whole_clock_steps() -> None:
    assert time_ticks(1000.5, 1060.2, 5) == [1005, 1020, 1035, 1050]  # every 15 s
    assert all(t % 60 == 0 for t in time_ticks(0, 3600, 5))


def msg(data: Any, event: str = "") -> Event:
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize(
    ("url", "events", "kind"),
    [
        ("http://127.0.0.1:1/ticks?rate=0", [msg({"t": 1, "value": 3})], "chart"),
        ("http://127.0.0.1:1/x", [msg({"t": 1.5, "value": 0.3})], "chart"),
        ("http://127.0.0.1:1/x", [msg({"loss": 0.25, "step": 3, "tag": "a"})], "chart"),
        ("http://127.0.0.1:1/x", [msg({"count": 1, "message": "Update 1"})], "table"),
        ("http://127.0.0.1:1/x", [msg({"count": 1})], "table"),
        ("http://127.0.0.1:1/x", [msg({"ok": True, "on": False})], "table"),
        ("http://127.0.0.1:1/x", [msg({"progress": 40.5})], "progress"),
        ("http://127.0.0.1:1/chat", [], "tokens"),
        ("http://127.0.0.1:1/x", [msg("3.5")], "log"),
    ],
    ids=[
        "ticks-url",
        "floats",
        "mostly-numbers",
        "counter",
        "ints-only",
        "bools",
        "progress",
        "chat",
        "bare-number",
    ],
)
def test_auto_charts_mostly_numeric_data(url: str, events: list[Event], kind: str) -> None:
    view = make_view("auto", url)
    view.on_events(events, 0.0)
    assert view.current().kind == kind


# -- a ChartView fed by a real batcher --------------------------------------------------------


def feed(view: ChartView, rows: list[dict[str, Any]], batch: int = 100) -> pd.DataFrame:
    """Send `rows` as JSON events through a batcher whose frames go to `view`; the frame."""
    batcher = DataFrameBatcher(batch_size=batch, on_batch=view.on_frame)
    for i, row in enumerate(rows):
        event = Event(data=json.dumps(row), id=str(i))
        view.on_events([event], float(i))
        batcher.add(event, time=1_700_000_000.0 + i * 0.01)
    batcher.flush()
    view.fold()
    return batcher.df


POLY = re.compile(r'<polyline data-series="([^"]*)"[^>]*points="([^"]*)"')
PANEL = re.compile(r'data-box="([^"]*)" data-x="([^"]*)" data-y="([^"]*)"')


def drawn(markup: str) -> Iterator[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    """Each series' points, mapped back from pixels to data values, per panel."""
    panels = markup.split('<g class="ssenb-panel"')[1:]
    for panel in panels:
        box, xs, ys = PANEL.search(panel).groups()  # type: ignore[union-attr]
        left, top, w, h = map(float, box.split())
        lo, hi = map(float, xs.split())
        ylo, yhi = map(float, ys.split())
        for name, points in POLY.findall(panel):
            pairs = np.array([list(map(float, p.split(","))) for p in points.split()])
            x = lo + (pairs[:, 0] - left) / w * (hi - lo)
            y = ylo + (top + h - pairs[:, 1]) / h * (yhi - ylo)
            yield name, x, y, (lo, hi, w, (yhi - ylo) / h)


def wave(n: int) -> list[dict[str, Any]]:
    return [{"t": i * 0.5, "a": float(np.sin(i / 7)), "b": i * 1.5} for i in range(n)]


@pytest.mark.parametrize("n", [10, 300, 20_000], ids=["10", "300", "20k"])
def test_the_points_drawn_are_the_values_received(n: int) -> None:
    view = ChartView(y=["data.a", "data.b"])
    df = feed(view, wave(n), batch=1000)
    seen = {}
    for name, x, y, (lo, hi, w, per_px) in drawn(view.html(0.0)):
        x_all = df["time"].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
        y_all = df[name].to_numpy(dtype=float)
        if n <= _CAP:  # stored as received: the drawing is the decimation of the frame
            kept = minmax_indices(x_all, y_all, lo, hi, int(w))
        else:  # compacted in store: every point drawn is a row received, extremes kept
            kept = np.searchsorted(x_all, x - (hi - lo) / w * 0.01)
            assert (y.min(), y.max()) == pytest.approx((y_all.min(), y_all.max()), abs=per_px)
        assert np.allclose(y, y_all[kept], rtol=0, atol=per_px * 0.01 + 1e-9), name
        assert np.allclose(x, x_all[kept], rtol=0, atol=(hi - lo) / w * 0.01), name
        seen[name] = len(kept)
    assert set(seen) == {"data.a", "data.b"}
    assert all(k == n for k in seen.values()) if n <= 300 else True
    legend = view.html(0.0).split('class="ssenb-legend"')[1]
    assert f"<b>{df['data.b'].iloc[-1]:.6g}</b>" in legend  # the last value, as received


def test_default_columns_are_the_numeric_data_ones_but_time_like() -> None:
    view = ChartView()
    feed(view, [{"t": 1.0, "value": 2.5, "name": "x", "p": 3}] * 5)
    assert list(view.series) == ["data.value", "data.p"]


@pytest.mark.parametrize(
    ("window", "rows"),
    [(100, 100), ("0.5s", 51), (None, 1000)],
    ids=["rows", "seconds", "everything"],
)
def test_the_rolling_window(window: Any, rows: int) -> None:
    view = ChartView(y="a", window=window)
    feed(view, wave(1000))
    ((_, x, _, _),) = drawn(view.html(0.0))
    assert abs(len(view.series["data.a"].x) - rows) <= 1  # a row at the edge: float time
    assert len(x) <= rows


def test_a_column_as_x_and_split_panels() -> None:
    view = ChartView(y=["a", "b"], x="t", panels="split")
    feed(view, wave(50))
    panels = list(drawn(view.html(0.0)))
    assert [p[0] for p in panels] == ["data.a", "data.b"]  # one panel each
    assert panels[0][3][:2] == (0.0, 24.5)  # x is data.t
    assert view.html(0.0).count("<svg") == 1


def test_a_redraw_costs_the_same_at_a_million_points() -> None:
    small, big = ChartView(y="v"), ChartView(y="v")
    feed(small, [{"v": float(i % 17)} for i in range(10)])
    rows = [{"v": float(i % 17)} for i in range(200_000)]
    rows[123_457] = {"v": 1e6}
    for _ in range(5):  # a million rows
        feed(big, rows, batch=10_000)
    assert big.rows == 1_000_000
    assert big.series["data.v"].x.size <= _CAP + 10_000
    markup = big.html(0.0)
    assert len(markup) < 3 * len(small.html(0.0)) + 40_000
    ((_, _, y, _),) = drawn(markup)
    assert y.max() == pytest.approx(1e6, rel=1e-3)  # the spike survived compaction


def test_event_data_is_escaped_in_names_and_notes() -> None:
    view = ChartView()
    feed(view, [{XSS: 1.5}] * 3)
    markup = view.html(0.0)
    assert XSS not in markup
    assert "&lt;img" in markup
    missing = ChartView(y=XSS)
    feed(missing, [{"a": 1.5}])
    assert XSS not in missing.html(0.0)


def test_before_data_the_chart_says_why_it_is_empty() -> None:
    view = ChartView(y="data.nope")
    assert "waiting for numeric data" in view.html(0.0)
    feed(view, [{"a": 1.5}])
    assert "no numeric column data.nope yet" in view.html(0.0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"panels": "tiled"}, ValueError), ({"x": 3}, TypeError), ({"window": "soon"}, ValueError)],
    ids=["panels", "x", "window"],
)
def test_bad_options_are_clear_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ChartView(**kwargs)


def test_chart_options_choose_the_chart_and_refuse_other_views() -> None:
    assert chart_view("log") == "log"
    assert isinstance(chart_view("auto", y="data.value"), ChartView)
    with pytest.raises(TypeError, match="chart options"):
        chart_view("log", y="data.value")


# -- watch() against a real server -------------------------------------------------------------


def test_watch_view_chart_draws_the_subscriptions_dataframe() -> None:
    with ssenb.serve(name="chart-watch") as srv:
        sub = ssenb.watch(f"{srv.url}/ticks?n=2000&rate=0", y="data.value", window=1000)
        assert sub.wait(30)
        assert sub.status == "done"
    view = sub.view
    assert isinstance(view, ChartView)
    df = sub.df.iloc[-1000:]
    ((name, _, y, (lo, hi, w, per_px)),) = drawn(view.html())
    x_all = df["time"].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
    kept = minmax_indices(x_all, df[name].to_numpy(dtype=float), lo, hi, int(w))
    assert np.allclose(y, df[name].to_numpy(dtype=float)[kept], atol=per_px * 0.01)
    assert view.rows == 2000
    assert re.search(r">\d\d:\d\d:\d\d(\.\d{3})?</text>", view.html())  # clock labels
    assert "2,000 events" in view.html()
    assert "average" in view.html()


def test_watch_auto_on_ticks_is_a_chart_with_rate_counters() -> None:
    with ssenb.serve(name="chart-auto") as srv:
        sub = ssenb.watch(f"{srv.url}/ticks?n=300&rate=0", display=False)
        sub.wait(30)
    assert sub.view.current().kind == "chart"
    assert "<polyline" in sub.view.html()
    assert list(sub.view.current().series) == ["data.value"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="chart options"):
        ssenb.watch(f"{srv.url}/ticks", view="log", y="data.value")


@pytest.mark.parametrize(
    ("seen", "ids"),
    [(0, list(range(26, 51))), (45, list(range(46, 51))), (50, [])],
    ids=["from-the-start-after-trims", "the-newest-five", "nothing-new"],
)
def test_the_batcher_hands_the_chart_new_rows_in_bulk(seen: int, ids: list[int]) -> None:
    batcher = DataFrameBatcher(batch_size=10, max_rows=25)
    for i in range(1, 51):
        batcher.add(Event(data=json.dumps({"v": i * 0.5}), id=str(i)))
    total, batches = batcher.since(seen)
    assert total == 50
    assert [int(i) for b in batches for i in b.column("id").to_pylist()] == ids


def test_prepare_folds_new_rows_in_a_worker_thread_while_html_reads() -> None:
    """`watch` calls `prepare` off its loop before each redraw; a concurrent `html` must see
    every row exactly once whichever of the two folds it."""
    batcher = DataFrameBatcher(batch_size=100)
    view = ChartView(y="data.v")
    view.batcher = batcher
    for i in range(1, 2001):
        batcher.add(Event(data=json.dumps({"v": float(i)}), id=str(i)))
        if i % 250 == 0:
            worker = threading.Thread(target=view.prepare)
            worker.start()
            view.html()
            worker.join()
    batcher.flush()
    view.prepare()
    assert view.rows == 2000
    assert list(view.series["data.v"].y) == [float(i) for i in range(1, 2001)]


@pytest.mark.parametrize(
    "make",
    [
        lambda chart: chart,
        lambda chart: _auto_holding(chart),
    ],
    ids=["chart", "auto view delegating to its chart"],
)
def test_prepare_reaches_the_chart_through_wrappers(make: Any) -> None:
    batcher = DataFrameBatcher(batch_size=1)
    chart = ChartView()
    chart.batcher = batcher
    batcher.add(Event(data='{"v": 1.5}', id="1"))
    make(chart).prepare()
    assert chart.rows == 1


def _auto_holding(chart: ChartView) -> Any:
    from ssenb.notebook._views import AutoView

    auto = AutoView(url="http://x/ticks")
    auto.inner = chart
    return auto
