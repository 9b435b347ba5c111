"""The `Recorder` protocol, the one way to open a recorder, and the blocking `record()`.

`record()`, `collect(record=...)` and `watch(record=...)` all open their recorder with
`open_recorder(target, format=..., source=url)`, so all three write JSONL or Parquet by the
same rule:

- `target` is a path, or an open recorder (anything with the `Recorder` surface), which is
  returned as is: the caller keeps owning it (closing it is theirs).
- `format="jsonl"`: a `JSONLRecorder` appending to the file `target`.
- `format="parquet"`: a `DatasetRecorder` writing a partitioned Parquet dataset into the
  folder `target` (read it with `ssenb.read_dataset`).
- `format=None` (the default): Parquet when the path ends in `.parquet` or is an existing
  directory, JSONL for any other path.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self, Unpack, runtime_checkable

from .._errors import SSEError
from .._models import Event
from ..client._options import SourceOptions, check_source_options
from ._consume import consume
from ._recorder import JSONLRecorder

__all__ = ["Format", "Recorder", "open_recorder", "record"]

#: the formats a recorder writes
Format = Literal["jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("jsonl", "parquet")


@runtime_checkable
class Recorder(Protocol):
    """What every recorder offers (`JSONLRecorder`, `DatasetRecorder`, or one of yours).

    `write` is called on the ssenb loop thread for each event, with its arrival time (UTC
    epoch seconds); it must be fast and must not block. `written` counts the events taken so
    far (on disk or buffered); `flush` puts what is buffered on disk; `close` flushes and
    releases everything (idempotent). A context manager closes it on exit.
    """

    @property
    def path(self) -> Path: ...
    @property
    def written(self) -> int: ...
    @property
    def source(self) -> str | None: ...
    def write(self, event: Event, time: float | None = None) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet" or path.is_dir()


def open_recorder(
    target: str | os.PathLike[str] | Recorder,
    *,
    format: Format | None = None,
    source: str = "",
) -> Recorder:
    """Open the recorder for `target` by the module's rule (see the module doc): an existing
    recorder is returned as is; a path opens a `JSONLRecorder` or, for `format="parquet"`,
    a path ending in `.parquet` or an existing directory, a `DatasetRecorder`. `source` (the
    stream's URL) is stored with every event."""
    if format not in (None, *FORMATS):
        raise ValueError(f"format must be 'jsonl', 'parquet' or None, not {format!r}")
    if not isinstance(target, (str, os.PathLike)):
        if isinstance(target, Recorder):
            return target
        raise TypeError(f"record= takes a path or a recorder, not {type(target).__name__}")
    path = Path(target)
    if format == "parquet" or (format is None and _is_parquet(path)):
        from ._dataset import DatasetRecorder  # pyarrow and pandas only when asked

        return DatasetRecorder(path, source=source or None)
    return JSONLRecorder(path, source=source or None)


def record(
    url: str,
    path: str | os.PathLike[str] | Recorder,
    *,
    n: int | None = None,
    timeout: float | None = None,
    format: Format | None = None,
    **source_kw: Unpack[SourceOptions],
) -> int:
    """Record `url` into `path` until `n` events, `timeout` seconds or the end of the
    stream; blocks and returns the number of events written.

    The file format follows `open_recorder`'s rule: JSONL appended to `path` by default,
    a partitioned Parquet dataset with `format="parquet"`, for a path ending in `.parquet`
    or for an existing directory (read it with `ssenb.read_dataset`). A recorder passed as
    `path` is written to and flushed, not closed.

    Every event received is on disk when this returns or raises: the recorder is flushed on
    the end, on an error and on Ctrl-C (which returns the count with a warning saying what
    is on disk). A stream that never opened before `timeout` raises `SSEConnectTimeout`
    and leaves no file. An `SSEError` carries `.partial`, the number of events on disk.
    `source_kw` goes to `ssenb.EventSource` (an unknown keyword is a TypeError here).
    `ssenb.watch(url, record=path)` is the background form.
    """
    check_source_options("record", source_kw)
    recorder = open_recorder(path, format=format, source=url)
    owned = recorder is not path
    interrupted = False
    try:
        consume(url, recorder.write, n=n, timeout=timeout, **source_kw)
    except KeyboardInterrupt:
        interrupted = True
    except SSEError as exc:
        exc.partial = _finish(recorder, owned)
        raise
    except BaseException:
        _finish(recorder, owned)
        raise
    written = _finish(recorder, owned)
    if interrupted:
        warnings.warn(
            f"interrupted: {written} events recorded, all on disk in {recorder.path}",
            RuntimeWarning,
            stacklevel=2,
        )
    return written


def _finish(recorder: Recorder, owned: bool) -> int:
    """Close an own recorder (flush a given one); the count of events now on disk."""
    if owned:
        recorder.close()
    else:
        recorder.flush()
    return recorder.written
