"""`collect(url)`: read a stream into a DataFrame, in a script or a running kernel.

The reading runs on the runtime's shared loop thread (`ssenb.recording._consume`), so a
kernel's running loop is never re-entered (nor `asyncio.run` called, with or without
nest_asyncio) and a silent or unreachable server cannot outlast `timeout`. Nothing that
arrived is lost: an error carries the frame so far as `.partial`, and Ctrl-C returns it with
a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Unpack

import pandas as pd

from .._models import Event
from ..client._options import SourceOptions, check_source_options
from ..recording._consume import Sink, consume
from ..recording._open import Format, Recorder, open_recorder
from ._batcher import DataFrameBatcher

__all__ = ["collect"]


def collect(
    url: str,
    *,
    n: int | None = None,
    timeout: float | None = None,
    until: Callable[[Event], bool] | None = None,
    record: str | os.PathLike[str] | Recorder | None = None,
    record_format: Format | None = None,
    **source_kw: Unpack[SourceOptions],
) -> pd.DataFrame:
    """Read `url` and return its events as a DataFrame (one row per event).

    Stops after `n` events, after `timeout` seconds (even when the server sends nothing),
    after the first event for which `until(event)` is true (that event included), or at the
    end of the stream (`[DONE]` included), whichever comes first. A stream that never opened
    before `timeout` raises `SSEConnectTimeout` (a `TimeoutError`, the last connection
    failure as its cause). `source_kw` goes to `ssenb.EventSource` (headers, params,
    reconnect, idle_timeout, ...); an unknown keyword is a TypeError here.

    With `record=path`, every event is also written as it arrives (flushed on every end),
    to a JSONL file or a Parquet dataset by `open_recorder`'s rule (`record_format`
    "jsonl", "parquet" or None: Parquet for a path ending in `.parquet` or an existing
    directory). An open recorder may be passed instead; it is flushed, not closed.

    Columns: `time` (UTC), `event`, `id`, `retry`, `data` (raw), then `data.<key>` parsed
    from JSON data. An error raises with `.partial` set to the DataFrame so far (on any
    exception that accepts attributes); Ctrl-C returns what arrived with a warning.
    """
    check_source_options("collect", source_kw)
    batcher = DataFrameBatcher(batch_size=10_000, flush_interval=float("inf"))
    recorder = None if record is None else open_recorder(record, format=record_format, source=url)
    sink: Sink = batcher.add
    if recorder is not None:
        add, write = batcher.add, recorder.write

        def both(event: Event, at: float) -> None:
            add(event, at)
            write(event, at)

        sink = both

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
            if recorder is record:
                recorder.flush()
            else:
                recorder.close()
    return batcher.df
