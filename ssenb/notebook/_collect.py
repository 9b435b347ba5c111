"""`collect(url)`: read a stream into a DataFrame, in a script or a running kernel.

The reading runs in a worker thread with its own asyncio loop (`ssenb.recording._consume`), so
a kernel's running loop is never re-entered and a silent server cannot outlast `timeout`.
Nothing that arrived is lost: an error carries the frame so far as `.partial`, and Ctrl-C
returns it with a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from .._models import Event
from ..recording._consume import consume
from ..recording._recorder import JSONLRecorder
from ._batcher import DataFrameBatcher

__all__ = ["collect"]


def collect(
    url: str,
    *,
    n: int | None = None,
    timeout: float | None = None,
    until: Callable[[Event], bool] | None = None,
    record: str | os.PathLike[str] | None = None,
    **source_kw: Any,
) -> pd.DataFrame:
    """Read `url` and return its events as a DataFrame (one row per event).

    Stops after `n` events, after `timeout` seconds (even when the server sends nothing),
    after the first event for which `until(event)` is true (that event included), or at the
    end of the stream (`[DONE]` included), whichever comes first. `source_kw` goes to
    `ssenb.EventSource` (headers, params, reconnect, idle_timeout, ...). With `record=path`,
    every event is also appended to that JSONL file as it arrives (flushed on every end).

    Columns: `time` (UTC), `event`, `id`, `retry`, `data` (raw), then `data.<key>` parsed
    from JSON data. An error raises with `.partial` set to the DataFrame so far (on any
    exception that accepts attributes); Ctrl-C returns what arrived with a warning.
    """
    batcher = DataFrameBatcher(batch_size=10_000, flush_interval=float("inf"))
    recorder = JSONLRecorder(record, source=url) if record is not None else None
    sink = batcher.add
    if recorder is not None:
        write = recorder.write

        def sink(event: Event, at: float) -> None:
            batcher.add(event, at)
            write(event, at)

    try:
        consume(url, sink, n=n, timeout=timeout, until=until, **source_kw)
    except KeyboardInterrupt:
        frame = batcher.df
        warnings.warn(
            f"interrupted: returning the {len(frame)} events that arrived",
            RuntimeWarning,
            stacklevel=2,
        )
        return frame
    except Exception as exc:
        try:
            exc.partial = batcher.df  # type: ignore[attr-defined]
        except AttributeError:
            pass  # a built-in exception without a __dict__: nothing to attach to
        raise
    finally:
        if recorder is not None:
            recorder.close()
    return batcher.df
