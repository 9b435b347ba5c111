"""Load recordings: `read_jsonl` into a DataFrame, `to_parquet` for files bigger than memory.

Why it is shaped like this:

1. The envelope is read with `pyarrow.json` against a fixed schema (multi-threaded C++,
   10x `pandas.read_json(lines=True)` at a third of its memory); raw `data` is then parsed
   into `data.<key>` columns per event type by `_flatten` (the batcher's code too).
2. Damage is told apart: a last line without its newline is what a killed recorder leaves,
   so it is skipped with a warning; a bad line anywhere else is a real fault, reported as
   `JSONLDecodeError` with its 1-based line number (`on_error="skip"` drops such lines with a
   warning instead). Arrow does not say which line failed, so only a damaged file pays for a
   second, per-line scan.
3. `to_parquet` streams 8 MiB chunks of whole lines through `pyarrow.json` into a
   `ParquetWriter`, so memory stays bounded by the chunk size (`pyarrow.json.open_json` was
   not: it reads ahead without bound when the disk outruns the parser; measured). With
   `parse_data` it reads twice: the first pass only settles the column types, which a
   Parquet file must know before its first row group.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from .._errors import SSEError
from ._flatten import ENVELOPE, conform, epoch_to_timestamp, flatten_data, merge_type, to_frame

__all__ = ["JSONLDecodeError", "read_jsonl", "to_parquet"]

_FILE_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("event", pa.string()),
        ("id", pa.string()),
        ("retry", pa.int64()),
        ("data", pa.string()),
        ("source", pa.string()),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=_FILE_SCHEMA, unexpected_field_behavior="ignore")
_BLOCK = 16 << 20
_CHUNK = 8 << 20
_TYPES: dict[str, type | tuple[type, ...]] = {
    "time": (int, float),
    "event": str,
    "id": str,
    "retry": int,
    "data": str,
    "source": str,
}


class JSONLDecodeError(SSEError, ValueError):
    """A line of a recording is not a recording object (raised by `read_jsonl`/`to_parquet`).

    `.line` is the 1-based line number, `.path` the file, `.partial` the DataFrame of the
    lines before it (`read_jsonl` only). Pass `on_error="skip"` to drop such lines instead.
    """

    def __init__(self, message: str, *, path: str, line: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.path = path
        self.line = line


def _complete_end(path: Path) -> int:
    """Offset just past the last newline; a tail after it is skipped with a warning unless it
    is a whole record (a file written without a final newline)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = size
        while pos > 0:
            step = min(pos, 1 << 16)
            f.seek(pos - step)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                end = pos - step + nl + 1
                break
            pos -= step
        else:
            end = 0
        if end == size:
            return size
        f.seek(end)
        tail = f.read()
    if _bad_reason(tail) is None:
        return size
    warnings.warn(
        f"{path}: skipped a torn last line ({len(tail)} bytes without a newline)",
        RuntimeWarning,
        stacklevel=3,
    )
    return end


def _bad_reason(line: bytes) -> str | None:
    """Why a line is not a recording object, or None when it is one (blank lines are fine)."""
    if not line.strip():
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not an object"
    for key, kinds in _TYPES.items():
        value = obj.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            return f"{key!r} is {type(value).__name__}"
    return None


def _lines(path: Path, end: int) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, line) for the first `end` bytes of the file."""
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if offset >= end:
                return
            yield number, offset, line
            offset += len(line)


def _read_envelope(source: pa.Buffer | str, size: int | None = None) -> pa.Table:
    """The envelope columns of a buffer, or of a file (read block by block: the file's
    pages are never all in memory at once, unlike a memory map's)."""
    size = source.size if isinstance(source, pa.Buffer) else size or 0
    if size == 0:
        return _FILE_SCHEMA.empty_table()

    def read(block: int) -> pa.Table:
        stream = pa.BufferReader(source) if isinstance(source, pa.Buffer) else source
        opts = pj.ReadOptions(block_size=block)
        return pj.read_json(stream, read_options=opts, parse_options=_PARSE)

    try:
        return read(max(1 << 16, min(size + 1, _BLOCK)))
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        return read(size + 1)  # a line longer than one block


def _envelope(table: pa.Table | pa.RecordBatch) -> list[pa.Array | pa.ChunkedArray]:
    return [
        epoch_to_timestamp(table.column("time")),
        pc.fill_null(table.column("event"), "message"),
        pc.fill_null(table.column("id"), ""),
        table.column("retry"),
        pc.fill_null(table.column("data"), ""),
    ]


def _build(raw: pa.Table, parse_data: bool) -> pd.DataFrame:
    columns = _envelope(raw)
    names = list(ENVELOPE.names)
    if parse_data and raw.num_rows:
        for name, arr in flatten_data(columns[1], columns[4]):
            names.append(name)
            columns.append(arr)
    sources = [s for s in pc.unique(raw.column("source")).to_pylist() if s]
    frame = to_frame(pa.table(columns, names=names))
    frame.attrs["sources"] = sources
    return frame


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    parse_data: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
) -> pd.DataFrame:
    """Load a recording into a DataFrame: columns `time` (UTC), `event`, `id`, `retry`,
    `data` (raw), then `data.<key>` columns parsed from JSON data (unless `parse_data=False`).

    A torn last line (an interrupted recorder) is skipped with a warning. A bad line elsewhere
    raises `JSONLDecodeError` naming its line number, with `.partial` holding the lines
    before it; `on_error="skip"` drops bad lines with a warning instead. `df.attrs["sources"]`
    lists the recorded URLs.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    path = Path(path)
    end = _complete_end(path)
    try:
        if end == path.stat().st_size:
            raw = _read_envelope(str(path), end)
        else:  # without the torn tail
            raw = _read_envelope(_prefix(path, end))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raw = _read_damaged(path, _prefix(path, end), end, on_error, parse_data)
    return _build(raw, parse_data)


def _prefix(path: Path, end: int) -> pa.Buffer:
    with open(path, "rb") as f:
        return pa.py_buffer(f.read(end))


def _read_damaged(
    path: Path, buf: pa.Buffer, end: int, on_error: str, parse_data: bool
) -> pa.Table:
    """The slow path for a file Arrow refused: find the bad lines by number."""
    good: list[bytes] = []
    skipped: list[int] = []
    for number, offset, line in _lines(path, end):
        reason = _bad_reason(line)
        if reason is None:
            good.append(line)
            continue
        if on_error == "raise":
            head = _read_envelope(buf.slice(0, offset)) if offset else _FILE_SCHEMA.empty_table()
            err = JSONLDecodeError(
                f"{path}, line {number}: {reason}; pass on_error='skip' to drop bad lines",
                path=str(path),
                line=number,
                body=line[:200].decode("utf-8", "replace"),
            )
            err.partial = _build(head, parse_data)
            raise err
        skipped.append(number)
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (", ..." if len(skipped) > 10 else "")
        warnings.warn(
            f"{path}: skipped {len(skipped)} bad line(s): {shown}", RuntimeWarning, stacklevel=3
        )
    return _read_envelope(pa.py_buffer(b"".join(good)))


def _chunks(path: Path, end: int, size: int = _CHUNK) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, whole lines) of about `size` bytes each: one chunk in
    memory at a time (pyarrow's `open_json` reads ahead without bound on a fast disk)."""
    line = 1
    carry = b""
    with open(path, "rb") as f:
        left = end
        while left > 0:
            data = f.read(min(size, left))
            if not data:
                break
            left -= len(data)
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                carry = data
                continue
            carry = data[cut:]
            yield line, data[:cut]
            line += data.count(b"\n", 0, cut)
    if carry:
        yield line, carry


def _batches(
    path: Path, end: int, size: int = _CHUNK, on_read: Callable[[int], object] | None = None
) -> Iterator[pa.Table]:
    """Envelope tables of whole-line blocks of about `size` bytes, one at a time; `on_read`
    gets each block's length (a progress bar). A block Arrow refuses is searched for the bad
    line, raised as `JSONLDecodeError` with its number and first bytes."""
    for first, chunk in _chunks(path, end, size):
        if on_read is not None:
            on_read(len(chunk))
        if not chunk.strip():
            continue
        try:
            yield _read_envelope(pa.py_buffer(chunk))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            for number, line in enumerate(chunk.split(b"\n"), first):
                reason = _bad_reason(line)
                if reason is not None:
                    raise JSONLDecodeError(
                        f"{path}, line {number}: {reason}",
                        path=str(path),
                        line=number,
                        body=line[:200].decode("utf-8", "replace"),
                    ) from exc
            raise


def to_parquet(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, parse_data: bool = True
) -> int:
    """Convert a JSONL recording to Parquet in bounded memory (8 MiB chunks); returns rows.

    Same columns as `read_jsonl` (with `data.<key>` columns unless `parse_data=False`); read
    it back with `pandas.read_parquet(dst, columns=[...])`. A torn last line is skipped with
    a warning; a bad line raises `JSONLDecodeError`.
    """
    src = Path(src)
    end = _complete_end(src)
    types: dict[str, pa.DataType] = {}
    if parse_data:  # pass 1: settle the data.<key> types
        for batch in _batches(src, end):
            cols = _envelope(batch)
            for name, arr in flatten_data(cols[1], cols[4]):
                types[name] = merge_type(types.get(name), arr.type)[0]
    schema = pa.schema(list(ENVELOPE) + [pa.field(k, t) for k, t in types.items()])
    rows = 0
    with pq.ParquetWriter(str(dst), schema, compression="zstd") as writer:
        for batch in _batches(src, end):
            cols = _envelope(batch)
            found = dict(flatten_data(cols[1], cols[4])) if types else {}
            for name, type_ in types.items():
                arr = found.get(name)
                cols.append(pa.nulls(batch.num_rows, type_) if arr is None else conform(arr, type_))
            writer.write_table(pa.table(cols, schema=schema))
            rows += batch.num_rows
    return rows
