"""Partitioned Parquet datasets: `DatasetRecorder`, `read_dataset`, `jsonl_to_dataset`.

Why it is shaped like this:

1. Hive-style folders (`date=2026-11-23/hour=23/part-....parquet`) are what pandas, pyarrow
   datasets, DuckDB (`hive_partitioning=true`) and Polars all understand, and a filter on
   `date`/`hour` skips whole folders without opening a file.
2. Files store the recording's envelope (`time` as UTC timestamp, `event`, `id`, `retry`,
   raw `data`, `source`), so every file has the same schema whatever the payloads are;
   `data.<key>` columns are parsed on read by `_flatten`, the code `read_jsonl` uses.
3. A part file is written under a dot-prefixed temp name in its folder (pyarrow ignores
   dot files, and the name does not end in `.parquet`, so `**/*.parquet` globs skip it), and
   committed with one `os.replace`: a reader sees a whole file or none. It is committed when
   the hour changes, at `max_rows`/`max_bytes`, after `max_age` seconds, and on `close()`;
   a killed recorder leaves only an invisible temp file, losing at most `max_age` seconds.
4. `write()` appends one tuple to a list (atomic under the GIL, no lock, no clock read); the
   timer thread turns what is buffered into one row group every `flush_interval` seconds.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .._models import Event
from ._flatten import ENVELOPE, epoch_to_timestamp, flatten_data, to_frame
from ._loader import _batches, _complete_end
from ._timed import TimedRecorder

__all__ = ["DatasetRecorder", "Progress", "TextProgress", "jsonl_to_dataset", "read_dataset"]

Partition = Literal["hour", "size"]
#: the columns of every part file
SCHEMA = pa.schema([*ENVELOPE, pa.field("source", pa.string())])
_EMPTY = pa.schema([*SCHEMA, ("date", pa.string()), ("hour", pa.int32())])
_ROW_GROUP = 1 << 16
_CONVERT_BLOCK = 1 << 20  # jsonl_to_dataset: ~37 MB peak (8 MiB blocks: ~110 MB), same speed


def _folder(partition: Partition, seconds: float) -> str:
    t = time.gmtime(seconds)
    day = time.strftime("date=%Y-%m-%d", t)
    return f"{day}/hour={t.tm_hour:02d}" if partition == "hour" else day


class _PartWriter:
    """Tables of rows (float `time` first) into committed part files, one open at a time."""

    def __init__(
        self,
        root: Path,
        partition: Partition,
        max_rows: int | None,
        max_bytes: int | None,
        max_age: float | None,
    ) -> None:
        if partition not in ("hour", "size"):
            raise ValueError(f"partition must be 'hour' or 'size', not {partition!r}")
        self.root, self.partition = root, partition
        self.max_rows, self.max_bytes, self.max_age = max_rows, max_bytes, max_age
        self.files: list[Path] = []  # committed
        self.rows = 0  # committed rows
        self.created = not root.exists()  # a folder of ours: removed if it stays empty
        self._key: int | None = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp = self._final = Path()
        self._opened = 0.0
        self._open_rows = 0
        root.mkdir(parents=True, exist_ok=True)

    def _bucket(self, seconds: np.ndarray) -> np.ndarray:
        return (seconds // (3600 if self.partition == "hour" else 86400)).astype(np.int64)

    def write(self, seconds: pa.Array, rest: list[pa.Array]) -> None:
        """Append rows (UTC epoch seconds and the other columns), split by hour or day."""
        keys = self._bucket(np.nan_to_num(seconds.to_numpy(zero_copy_only=False)))
        cuts = np.flatnonzero(np.diff(keys)) + 1
        for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(keys)], strict=True):
            key = int(keys[start])
            cols = [epoch_to_timestamp(seconds.slice(start, stop - start))]
            cols += [c.slice(start, stop - start) for c in rest]
            self._append(
                key, pa.Table.from_arrays(cols, schema=SCHEMA), float(seconds[start].as_py() or 0)
            )

    def _append(self, key: int, table: pa.Table, first: float) -> None:
        if self._writer is not None and key != self._key:
            self.commit()
        while table.num_rows:
            if self._writer is None:
                self._open(key, first)
            room = table.num_rows
            if self.max_rows:
                room = min(room, self.max_rows - self._open_rows)
            assert self._writer is not None
            self._writer.write_table(table.slice(0, room), row_group_size=_ROW_GROUP)
            self._open_rows += room
            table = table.slice(room)
            if self._full():
                self.commit()

    def _full(self) -> bool:
        if self.max_rows and self._open_rows >= self.max_rows:
            return True
        if self.max_bytes and self._tmp.stat().st_size >= self.max_bytes:
            return True
        return bool(self.max_age) and time.monotonic() - self._opened >= (self.max_age or 0)

    def _open(self, key: int, first: float) -> None:
        folder = self.root / _folder(self.partition, first)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():x}-{uuid.uuid4().hex[:12]}.parquet"
        self._final = folder / name
        self._tmp = folder / f".{name}.tmp"
        self._writer = pq.ParquetWriter(str(self._tmp), SCHEMA, compression="zstd")
        self._key, self._opened, self._open_rows = key, time.monotonic(), 0

    def commit(self) -> None:
        """Close the open file and move it into place with one atomic `os.replace`."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self._final)
        self.files.append(self._final)
        self.rows += self._open_rows
        self._open_rows = 0


class DatasetRecorder(TimedRecorder):
    """Record events into a Hive-partitioned Parquet dataset folder (see the module doc).

    `partition="hour"` gives `date=YYYY-MM-DD/hour=HH/` folders (by each event's UTC time),
    `"size"` gives `date=YYYY-MM-DD/` folders; both roll to a new file at `max_rows` rows,
    about `max_bytes` bytes or `max_age` seconds. Buffered rows become a row group every
    `flush_interval` seconds. Thread-safe `write()`; context manager; `close()` commits.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        partition: Partition = "hour",
        max_rows: int | None = 1_000_000,
        max_bytes: int | None = 128 << 20,
        max_age: float | None = 60.0,
        source: str | None = None,
        flush_interval: float = 1.0,
    ) -> None:
        super().__init__(path, source, flush_interval)
        self._parts = _PartWriter(self.path, partition, max_rows, max_bytes, max_age)
        self._rows: list[tuple[float, str, str, int | None, str]] = []
        self._start("ssenb-dataset", flush_interval)

    def _tick(self) -> None:
        self.flush()
        with self._lock:
            if self._parts._writer is not None and self._parts._full():  # max_age
                self._parts.commit()

    def write(self, event: Event, time: float | None = None) -> None:
        """Buffer one event (received at `time`, UTC epoch seconds; now by default)."""
        if self._closing:
            raise ValueError(f"recorder for {self.path} is closed")
        self._rows.append(
            (_now() if time is None else time, event.event, event.id, event.retry, event.data)
        )
        if len(self._rows) >= _ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered as one row group of the open (uncommitted) file."""
        with self._lock:
            rows = self._rows
            n = len(rows)
            if not n:
                return
            batch = rows[:n]  # rows appended meanwhile stay for the next flush
            del rows[:n]
            times, events, ids, retries, data = zip(*batch, strict=True)
            self._parts.write(
                pa.array(times, pa.float64()),
                [
                    pa.array(events, pa.string()),
                    pa.array(ids, pa.string()),
                    pa.array(retries, pa.int64()),
                    pa.array(data, pa.string()),
                    pa.repeat(pa.scalar(self.source, pa.string()), n),
                ],
            )

    @property
    def written(self) -> int:
        """Events written so far (committed, in the open file, or buffered)."""
        return self._parts.rows + self._parts._open_rows + len(self._rows)

    @property
    def files(self) -> list[Path]:
        """The part files committed so far."""
        return list(self._parts.files)

    def close(self) -> None:
        """Flush, commit the open file and stop the timer thread (idempotent). A folder this
        recorder created and wrote nothing to is removed."""
        self._stop()
        self.flush()
        with self._lock:
            self._parts.commit()
            if self._parts.created and not self._parts.files:
                try:
                    self.path.rmdir()  # only when empty
                except OSError:
                    pass


_now = time.time


def read_dataset(
    path: str | os.PathLike[str],
    *,
    columns: list[str] | None = None,
    filters: Any = None,
    parse_data: bool = True,
) -> pd.DataFrame:
    """Load a dataset folder into a DataFrame with `read_jsonl`'s columns (`time`, `event`,
    `id`, `retry`, `data`, `data.<key>`), reading only the files and columns needed.

    `columns` may name envelope columns, `data.<key>` columns (parsed from `data`) and the
    partition columns `date`/`hour`. `filters` is a pyarrow expression or a pyarrow/pandas
    list of `(column, op, value)` tuples over stored columns (`date`, `hour`, `time`,
    `event`, ...): a filter on `date`/`hour` skips whole folders.
    """
    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    if not dataset.files:  # nothing committed yet: an empty frame, not an Arrow error
        dataset = ds.dataset(_EMPTY.empty_table())
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    stored = list(ENVELOPE.names)
    wanted = columns if columns is not None else stored
    keys = [c for c in wanted if c.startswith("data.")]
    if keys and not parse_data:
        raise ValueError(f"{keys[0]!r} needs parse_data=True")
    need = [c for c in wanted if not c.startswith("data.")]
    parse = parse_data and (columns is None or bool(keys))
    if parse:
        need += [c for c in ("event", "data") if c not in need]
    if columns is None:
        need.append("source")
    table = dataset.to_table(columns=need, filter=expr)
    out = {name: table.column(name) for name in need}
    if parse and table.num_rows:
        for name, arr in flatten_data(out["event"], out["data"]):
            out[name] = arr
    order = (
        [*wanted] if columns is not None else [*stored, *(k for k in out if k.startswith("data."))]
    )
    for name in order:
        if name not in out:  # an asked data.<key> no selected row carries
            out[name] = pa.nulls(table.num_rows, pa.string())
    frame = to_frame(pa.table([out[n] for n in order], names=order))
    if columns is None:
        frame.attrs["sources"] = [s for s in pc.unique(out["source"]).to_pylist() if s]
    return frame


#: a progress callback: called with (bytes done, bytes total) as a conversion goes
Progress = Callable[[int, int], None]


class TextProgress:
    """The default progress report: one plain text line on stderr, redrawn in place at most
    10 times a second, and always once at the end, so its last state (what a saved notebook
    keeps) is the final count: `r.jsonl -> dataset: 100% |###...| 12.3 / 12.3 MB`."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream
        self._start = self._last = time.monotonic()
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        final = done >= total
        if self._finished or (not final and now - self._last < 0.1):
            return
        self._finished = final
        self._last = now
        frac = min(done / total, 1.0) if total else 1.0
        rate = done / max(now - self._start, 1e-9) / 1e6
        bar = "#" * int(frac * 30)
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(
            f"\r{self.label}: {frac:4.0%} |{bar:<30}| "
            f"{done / 1e6:,.1f} / {total / 1e6:,.1f} MB, {rate:,.1f} MB/s" + ("\n" if final else "")
        )
        stream.flush()


def jsonl_to_dataset(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    partition: Partition = "hour",
    max_rows: int | None = 1_000_000,
    max_bytes: int | None = 128 << 20,
    progress: Progress | bool | None = True,
) -> int:
    """Convert a JSONL recording into a dataset folder in bounded memory (1 MiB blocks);
    returns the rows written. A torn last line is skipped with a warning; a bad line raises
    `JSONLDecodeError` naming it.

    `progress` is called with (bytes done, bytes total) after each block and once with
    (total, total) at the end. The default (`True`) prints a plain text progress line on
    stderr (`TextProgress`) whose last state is the final count; `False` or None is quiet.
    """
    src = Path(src)
    end = _complete_end(src)
    parts = _PartWriter(Path(dst), partition, max_rows, max_bytes, None)
    report: Progress | None = None
    if progress is True:
        report = TextProgress(f"{src.name} -> dataset")
    elif callable(progress):
        report = progress
    done = 0

    def on_read(n: int) -> None:
        nonlocal done
        done += n
        if report is not None and done < end:
            report(done, end)

    try:
        for raw in _batches(src, end, _CONVERT_BLOCK, on_read):
            seconds = raw.column("time").combine_chunks()
            rest = [
                pc.fill_null(raw.column("event"), "message"),
                pc.fill_null(raw.column("id"), ""),
                raw.column("retry"),
                pc.fill_null(raw.column("data"), ""),
                raw.column("source"),
            ]
            parts.write(seconds, [c.combine_chunks() for c in rest])
    finally:
        parts.commit()
    if report is not None:
        report(end, end)
    return parts.rows
