"""Turn raw event `data` strings into typed `data.<key>` columns: the one implementation
shared by `read_jsonl` (whole files) and `DataFrameBatcher` (one batch at a time).

Why it is shaped like this:

1. Parsing runs in Arrow, not per row in Python: the data strings of one event type are
   joined with LF into one buffer (`binary_join_element_wise`, no Python loop) and read with
   `pyarrow.json` (about 1 us per event against 8 us for orjson plus `json_normalize`).
2. One parse per event type: different event types usually carry different shapes, and a
   field that is a number in one type and text in another would fail a single parse.
3. Only rows whose data starts with `{` take part; text such as `[DONE]` or a token leaves
   its row's `data.*` cells null (the raw `data` column always keeps it). LF/CR inside a
   JSON text can only be whitespace, so when a first parse fails they become spaces.
4. Anything Arrow refuses (a field changing type within one type's rows, a duplicate key,
   a malformed object) falls back to orjson per row for that event type only.
5. Types only widen: null -> anything, int -> float; any other change makes the column a
   string column with a `SchemaWarning`, never an error. ISO date strings stay strings
   (pyarrow would infer timestamps, which would then conflict with the next odd value).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

__all__ = [
    "ENVELOPE",
    "SchemaWarning",
    "conform",
    "envelope_batch",
    "epoch_to_timestamp",
    "flatten_data",
    "merge_type",
    "run_timestamps",
    "to_frame",
    "warn_changed",
]

#: the fixed columns of every frame, in order; `time` is UTC with microseconds
ENVELOPE = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("event", pa.string()),
        ("id", pa.string()),
        ("retry", pa.int64()),
        ("data", pa.string()),
    ]
)
_ONE_BLOCK = 4 << 20


class SchemaWarning(UserWarning):
    """A `data.<key>` field changed type (say number, then text): it is now a string column."""


def epoch_to_timestamp(seconds: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """UTC epoch seconds (float) to `timestamp[us, UTC]`, vectorised."""
    micros = pc.cast(pc.round(pc.multiply(seconds, 1e6)), pa.int64(), safe=False)
    return pc.cast(micros, ENVELOPE.field("time").type)


def run_timestamps(values: Sequence[float], counts: Sequence[int]) -> pa.Array:
    """`timestamp[us, UTC]` for runs of equal times (`counts[i]` rows at `values[i]`), rounded
    as `epoch_to_timestamp` rounds: a read's events share one arrival time, so a consumer keeps
    one float per read, not one per event, and this expands them in C."""
    kind = ENVELOPE.field("time").type
    if len(values) == 1:  # one read since the last flush (the usual case): no NumPy round trip
        return pa.repeat(pa.scalar(round(values[0] * 1e6), kind), counts[0])
    micros = np.round(np.asarray(values, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(np.repeat(micros, counts), kind)


def envelope_batch(
    times: Sequence[float] | pa.Array,
    events: Sequence[str],
    ids: Sequence[str],
    retries: Sequence[int | None],
    data: Sequence[str],
) -> list[pa.Array]:
    """The five envelope columns of one batch, built column-wise in one go (`times` may be a
    ready time column, see `run_timestamps`); a column of no retries is made without a scan."""
    n = len(data)
    no_retry = retries.count(None) == n if isinstance(retries, list) else False
    return [
        times if isinstance(times, pa.Array) else epoch_to_timestamp(pa.array(times, pa.float64())),
        pa.array(events, pa.string()),
        pa.array(ids, pa.string()),
        pa.nulls(n, pa.int64()) if no_retry else pa.array(retries, pa.int64()),
        pa.array(data, pa.string()),
    ]


def merge_type(old: pa.DataType | None, new: pa.DataType) -> tuple[pa.DataType, bool]:
    """The type a column must have to hold both; True when that meant falling back to string."""
    if old is None or old == new or pa.types.is_null(new):
        return (old if old is not None else new), False
    if pa.types.is_null(old):
        return new, False
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(old) for f in numeric) and any(f(new) for f in numeric):
        both_int = pa.types.is_integer(old) and pa.types.is_integer(new)
        return (pa.int64() if both_int else pa.float64()), False
    return pa.string(), not pa.types.is_string(old)


def warn_changed(name: str, old: pa.DataType, new: pa.DataType) -> None:
    warnings.warn(
        f"{name} changed type ({old} then {new}): kept as a string column",
        SchemaWarning,
        stacklevel=4,
    )


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def conform(arr: pa.Array, type_: pa.DataType) -> pa.Array:
    """`arr` cast to `type_` (null -> typed nulls, anything -> JSON text for string)."""
    if arr.type == type_:
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), type_)
    if pa.types.is_string(type_):
        if pa.types.is_nested(arr.type):
            return pa.array([_json_text(v) for v in arr.to_pylist()], pa.string())
        return pc.cast(arr, pa.string())
    return pc.cast(arr, type_)


def _flat_columns(table: pa.Table) -> list[tuple[str, pa.Array]]:
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return [(name, table.column(name).combine_chunks()) for name in table.column_names]


def _no_timestamps(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_no_timestamps(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_no_timestamps(t.value_type))
    return t


def _joined(texts: pa.Array) -> pa.Buffer:
    """The strings of `texts`, each followed by LF, as one buffer (no Python loop)."""
    if texts.nbytes > 1 << 30:  # 32-bit offsets would overflow
        texts = texts.cast(pa.large_string())
    joined = pc.binary_join_element_wise(texts, "", "\n")
    wide = pa.types.is_large_string(joined.type)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64 if wide else np.int32)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
    return joined.buffers()[2].slice(start, end - start)


def _read(buf: pa.Buffer, rows: int, block: int | None = None) -> pa.Table | None:
    """One JSON object per line with pyarrow, or None when Arrow refuses or miscounts."""
    size = buf.size
    if block is None:  # small inputs in one block; large ones in 1 MiB blocks, on all cores
        block = size + 1 if size <= _ONE_BLOCK else 1 << 20
    opts = pj.ReadOptions(block_size=block)
    try:
        table = pj.read_json(pa.BufferReader(buf), read_options=opts)
        if any(pa.types.is_timestamp(f.type) or pa.types.is_date(f.type) for f in _leaves(table)):
            schema = pa.schema([f.with_type(_no_timestamps(f.type)) for f in table.schema])
            parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
            table = pj.read_json(pa.BufferReader(buf), read_options=opts, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if block > size or "straddl" not in str(exc):
            return None
        return _read(buf, rows, size + 1)  # one object longer than a block
    return table if table.num_rows == rows else None


def _arrow_parse(texts: pa.Array) -> list[tuple[str, pa.Array]] | None:
    """Parse one JSON object per element with pyarrow; None when Arrow refuses the input."""
    table = _read(_joined(texts), len(texts))
    if table is None and pc.any(pc.match_substring_regex(texts, r"[\r\n]")).as_py():
        # LF/CR inside a JSON text can only be whitespace: make each object one line
        texts = pc.replace_substring_regex(texts, r"[\r\n]", " ")
        table = _read(_joined(texts), len(texts))
    return None if table is None else _flat_columns(table)


def _leaves(table: pa.Table) -> Iterable[pa.Field]:
    stack = list(table.schema)
    while stack:
        field = stack.pop()
        if pa.types.is_struct(field.type):
            stack.extend(field.type)
        elif pa.types.is_list(field.type):
            stack.append(field.type.value_field)
        else:
            yield field


def _flatten_obj(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = prefix + key
        if isinstance(value, dict):
            _flatten_obj(value, name + ".", out)
        else:
            out[name] = value


def _python_parse(texts: list[str]) -> list[tuple[str, pa.Array]]:
    """orjson per row: the fallback for input Arrow refuses. Non-objects give null rows."""
    rows: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for text in texts:
        flat: dict[str, Any] = {}
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            _flatten_obj(obj, "", flat)
            names.update(dict.fromkeys(flat))
        rows.append(flat)
    columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arr = pa.array(values)
            if pa.types.is_struct(arr.type):  # empty dicts only
                continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            warnings.warn(
                f"data.{name} holds values of different types: kept as a string column",
                SchemaWarning,
                stacklevel=4,
            )
            arr = pa.array([_json_text(v) for v in values], pa.string())
        columns.append((name, arr))
    return columns


def flatten_data(
    events: pa.Array | pa.ChunkedArray, data: pa.Array | pa.ChunkedArray
) -> list[tuple[str, pa.Array]]:
    """`data.<key>` columns (nested keys joined with `.`) aligned with the rows of `data`.

    Rows whose data does not start with `{` (or is not a JSON object) get nulls. Columns
    appear in first-seen order.
    """
    if isinstance(events, pa.ChunkedArray):
        events = events.combine_chunks()
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    n = len(data)
    if n == 0:
        return []
    looks = pc.fill_null(pc.starts_with(data, "{"), False)
    rows: pa.Array | None = None  # None: every row
    if not pc.all(looks).as_py():
        rows = pc.indices_nonzero(looks)
        if len(rows) == 0:
            return []
    kinds = events if rows is None else events.take(rows)
    parts: list[tuple[pa.Array | None, list[tuple[str, pa.Array]]]] = []
    unique = pc.unique(kinds)
    for kind in unique.to_pylist():
        if len(unique) == 1:
            sel = rows
        else:
            mask = pc.equal(kinds, kind)
            sel = pc.indices_nonzero(mask) if rows is None else rows.filter(mask)
        texts = data if sel is None else data.take(sel)
        cols = _arrow_parse(texts)
        if cols is None:
            cols = _python_parse(texts.to_pylist())
        parts.append((sel, cols))
    types: dict[str, pa.DataType] = {}
    for _, cols in parts:
        for name, arr in cols:
            merged, changed = merge_type(types.get(name), arr.type)
            if changed:
                warn_changed("data." + name, types[name], arr.type)
            types[name] = merged
    if len(parts) == 1 and parts[0][0] is None:  # the common case: nothing to place
        return [("data." + name, conform(arr, types[name])) for name, arr in parts[0][1]]
    positions = pa.concat_arrays([sel.cast(pa.int64()) for sel, _ in parts if sel is not None])
    # rows missing from every part (not objects) are nulls placed after the parsed ones
    order = pc.sort_indices(positions)
    missing = n - len(positions)
    out: list[tuple[str, pa.Array]] = []
    for name, type_ in types.items():
        pieces = []
        for sel, cols in parts:
            count = n if sel is None else len(sel)
            found = dict(cols).get(name)
            pieces.append(conform(found, type_) if found is not None else pa.nulls(count, type_))
        packed = pa.concat_arrays(pieces).take(order)
        if missing:
            full = pa.concat_arrays([packed, pa.nulls(1, type_)])
            index = _scatter_index(positions.take(order), n)
            packed = full.take(index)
        out.append(("data." + name, packed))
    return out


def _scatter_index(sorted_positions: pa.Array, n: int) -> pa.Array:
    """For each row 0..n-1, the index of its value in the packed column, or the null slot."""
    index = np.full(n, len(sorted_positions), dtype=np.int64)
    index[sorted_positions.to_numpy()] = np.arange(len(sorted_positions), dtype=np.int64)
    return pa.array(index)


def _mapper(type_: pa.DataType) -> Any:
    return None if pa.types.is_timestamp(type_) else pd.ArrowDtype(type_)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A DataFrame with `time` as pandas `datetime64[us, UTC]` and every other column an
    `ArrowDtype` (no copies, and an int column with nulls stays int)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_mapper)  # pyarrow has no stubs
    return frame
