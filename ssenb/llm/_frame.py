"""LLM streams as data: events from a DataFrame or a list, deltas as rows, latency metrics.

`collect` and `watch` return one row per event (columns time, event, id, data): the events
are rebuilt from those columns, so `summarize(df)` and `frame(df)` read a collected stream
exactly as they read the events themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from itertools import pairwise
from typing import Any, Protocol, cast

import pandas as pd

from .._dialects import Accumulator, LLMResult
from .._models import Event

__all__ = ["events_of", "frame", "metrics", "percentile", "summarize"]


class Watched(Protocol):
    """Anything with a `.df` of events, such as the Subscription `watch` returns."""

    @property
    def df(self) -> pd.DataFrame: ...


Source = pd.DataFrame | Watched | Iterable[Event] | Iterable[tuple[Any, Event]]
COLUMNS = ["time", "kind", "text", "index", "event"]
_CONTENT = ("text", "reasoning", "tool_args")


def _cell(value: Any) -> str:
    """A cell as text; missing values (None, NaN, pd.NA of Arrow-backed columns) are ""."""
    if isinstance(value, str):
        return value
    return "" if value is None or bool(pd.isna(value)) else str(value)


def events_of(source: Source) -> list[tuple[Any, Event]]:
    """`(time, Event)` pairs from a DataFrame of `collect`/`watch`/`read_jsonl`, a `watch`
    Subscription, a list of Events (time None) or of `(time, Event)` pairs."""
    df = getattr(source, "df", None)  # a `watch` Subscription: its rows, with their times
    if isinstance(df, pd.DataFrame) and not isinstance(source, pd.DataFrame):
        source = df
    if isinstance(source, pd.DataFrame):
        missing = {"event", "data"} - set(source.columns)
        if missing:
            raise ValueError(f"not a DataFrame of events: no {', '.join(sorted(missing))} column")
        n = len(source)
        times = list(source["time"]) if "time" in source else [None] * n
        ids = list(source["id"]) if "id" in source else [""] * n
        return [
            (t, Event(event=_cell(e) or "message", data=_cell(d), id=_cell(i)))
            for t, e, d, i in zip(times, source["event"], source["data"], ids, strict=True)
        ]
    out: list[tuple[Any, Event]] = []
    for item in cast("Iterable[Any]", source):
        if isinstance(item, Event):
            out.append((None, item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Event):
            out.append((item[0], item[1]))
        else:
            raise TypeError(f"expected Events or (time, Event) pairs, not {type(item).__name__}")
    return out


def summarize(source: Source, provider: str | None = None) -> LLMResult:
    """The assembled answer of a stream (events or a collected DataFrame); `provider` skips
    detection ("openai-chat", "openai-responses", "anthropic", "gemini", "ssenb")."""
    acc = Accumulator(provider)
    for _, event in events_of(source):
        acc.feed(event)
    return acc.result()


def frame(source: Source, provider: str | None = None) -> pd.DataFrame:
    """One row per delta: `time` (the carrying event's), `kind` (text, reasoning, tool_args,
    usage, finish, error), `text`, `index` (choice, block or tool call) and `event` (the
    carrying event's position). `attrs` holds the provider and the first event's time."""
    acc = Accumulator(provider)
    pairs = events_of(source)
    rows: list[tuple[Any, str, str, int, int]] = []
    for position, (when, event) in enumerate(pairs):
        for d in acc.feed(event):
            rows.append((when, d.kind, d.text, d.index, position))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if pairs and isinstance(source, pd.DataFrame) and "time" in source:
        df["time"] = df["time"].astype(source["time"].dtype)
    df["index"] = df["index"].astype("int64")
    df["event"] = df["event"].astype("int64")
    df.attrs["provider"] = acc.provider
    df.attrs["start"] = pairs[0][0] if pairs else None
    return df


def _seconds(values: pd.Series, origin: Any) -> list[float]:
    if pd.api.types.is_datetime64_any_dtype(values):
        return [float(s) for s in (values - pd.Timestamp(origin)).dt.total_seconds()]
    return [float(v) - float(origin) for v in values]


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1, linear interpolation) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def metrics(df: pd.DataFrame, *, start: Any = None) -> dict[str, Any]:
    """Latency figures of one answer from its `frame`: `ttft` (s from `start`, default the
    first event's time, to the first text/reasoning/tool_args delta), `itl_p50`/`itl_p99`
    (s between consecutive content deltas), `tokens` (content deltas), `tokens_per_s` (after
    the first), `duration`, `output_tokens` (as reported), `finish_reason`, `errors`.
    Times that are unknown (plain Events) give None for the time-based figures."""
    content = df[df["kind"].isin(_CONTENT) & (df["text"] != "")]
    origin = start if start is not None else df.attrs.get("start")
    finish = df.loc[df["kind"] == "finish", "text"]
    out: dict[str, Any] = {
        "provider": df.attrs.get("provider"),
        "tokens": len(content),
        "ttft": None,
        "itl_p50": None,
        "itl_p99": None,
        "tokens_per_s": None,
        "duration": None,
        "output_tokens": None,
        "finish_reason": finish.iloc[-1] if len(finish) else None,
        "errors": int((df["kind"] == "error").sum()),
    }
    for text in df.loc[df["kind"] == "usage", "text"]:
        out["output_tokens"] = json.loads(text).get("output_tokens", out["output_tokens"])
    times = content["time"]
    if origin is None or pd.isna(origin) or times.isna().any() or not len(times):
        return out
    seconds = _seconds(times, origin)
    gaps = [b - a for a, b in pairwise(seconds)]
    out["ttft"] = seconds[0]
    out["duration"] = seconds[-1]
    out["itl_p50"] = percentile(gaps, 0.5)
    out["itl_p99"] = percentile(gaps, 0.99)
    span = seconds[-1] - seconds[0]
    out["tokens_per_s"] = (len(seconds) - 1) / span if span > 0 else None
    return out
