"""`ssenb.recording._flatten`: raw event data -> typed `data.<key>` columns (batcher and loader)."""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa
import pytest

from ssenb.recording import SchemaWarning
from ssenb.recording._flatten import (
    ENVELOPE,
    conform,
    epoch_to_timestamp,
    flatten_data,
    merge_type,
    run_timestamps,
)


def _flat(rows: list[tuple[str, str]]) -> dict[str, list[Any]]:
    events = pa.array([e for e, _ in rows], pa.string())
    data = pa.array([d for _, d in rows], pa.string())
    return {name: arr.to_pylist() for name, arr in flatten_data(events, data)}


CASES = [
    pytest.param(
        [("message", '{"a": 1, "b": "x"}'), ("message", '{"a": 2, "b": "y"}')],
        {"data.a": [1, 2], "data.b": ["x", "y"]},
        id="flat-object",
    ),
    pytest.param(
        [("message", '{"m": {"k": {"z": true}}, "n": 1}')],
        {"data.m.k.z": [True], "data.n": [1]},
        id="nested-keys-joined-with-dot",
    ),
    pytest.param(
        [("message", '{"a": 1}'), ("message", "[DONE]"), ("message", "hello"), ("message", "")],
        {"data.a": [1, None, None, None]},
        id="text-rows-get-nulls",
    ),
    pytest.param(
        [("a", '{"x": 1}'), ("b", '{"y": "s"}'), ("a", '{"x": 2}')],
        {"data.x": [1, None, 2], "data.y": [None, "s", None]},
        id="per-event-type-shapes-stay-aligned",
    ),
    pytest.param(
        [("message", '{"v": 1}'), ("message", '{"v": 2.5}')],
        {"data.v": [1.0, 2.5]},
        id="int-widens-to-float",
    ),
    pytest.param(
        [("message", '{"ts": "2024-01-01T00:00:00Z"}')],
        {"data.ts": ["2024-01-01T00:00:00Z"]},
        id="iso-strings-stay-strings",
    ),
    pytest.param(
        [("message", '{"days": ["2024-01-01", "2024-01-02"], "at": {"d": "2024-02-03"}}')],
        {"data.days": [["2024-01-01", "2024-01-02"]], "data.at.d": ["2024-02-03"]},
        id="dates-in-lists-and-objects-stay-strings",
    ),
    pytest.param(
        [("message", '{"big": "%s", "n": 1}' % ("x" * (5 << 20))), ("message", '{"n": 2}')],
        {"data.big": ["x" * (5 << 20), None], "data.n": [1, 2]},
        id="object-longer-than-a-block",
    ),
    pytest.param(
        [("message", '{\n  "a": 1,\r\n  "b": [1, 2]\n}')],
        {"data.a": [1], "data.b": [[1, 2]]},
        id="pretty-printed-json-and-lists",
    ),
    pytest.param(
        [("message", '{"a": 1, "a": 2}'), ("message", '{"a": 3}')],
        {"data.a": [2, 3]},
        id="duplicate-key-falls-back-to-orjson",
    ),
    pytest.param(
        [("message", "{not json}"), ("message", '{"a": 1}')],
        {"data.a": [None, 1]},
        id="malformed-object-row-is-null",
    ),
    pytest.param([("message", "{}"), ("message", "x")], {}, id="no-keys-no-columns"),
    pytest.param([], {}, id="empty"),
]


@pytest.mark.parametrize(("rows", "expected"), CASES)
def test_flatten_data(rows: list[tuple[str, str]], expected: dict[str, list[Any]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _flat(rows) == expected


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([("message", '{"v": 1}'), ("message", '{"v": "one"}')], id="same-type"),
        pytest.param([("a", '{"v": 1}'), ("b", '{"v": "one"}')], id="across-types"),
    ],
)
def test_a_field_changing_type_becomes_text_with_a_warning(rows: list[tuple[str, str]]) -> None:
    with pytest.warns(SchemaWarning, match="data.v"):
        assert _flat(rows) == {"data.v": ["1", "one"]}


MERGES = [
    (None, pa.int64(), pa.int64(), False),
    (pa.null(), pa.string(), pa.string(), False),
    (pa.int64(), pa.null(), pa.int64(), False),
    (pa.int64(), pa.float64(), pa.float64(), False),
    (pa.float64(), pa.int64(), pa.float64(), False),
    (pa.int64(), pa.string(), pa.string(), True),
    (pa.string(), pa.int64(), pa.string(), False),
    (pa.bool_(), pa.list_(pa.int64()), pa.string(), True),
]


@pytest.mark.parametrize(
    ("old", "new", "merged", "lossy"), MERGES, ids=[f"{m[0]}+{m[1]}" for m in MERGES]
)
def test_types_only_widen(
    old: pa.DataType | None, new: pa.DataType, merged: pa.DataType, lossy: bool
) -> None:
    assert merge_type(old, new) == (merged, lossy)


@pytest.mark.parametrize(
    ("arr", "type_", "expected"),
    [
        (pa.array([1, None]), pa.float64(), [1.0, None]),
        (pa.array([None, None]), pa.int64(), [None, None]),
        (pa.array([1, 2]), pa.string(), ["1", "2"]),
        (pa.array([[1, 2], None]), pa.string(), ["[1,2]", None]),
        (pa.array([True]), pa.string(), ["true"]),
    ],
    ids=["int-to-float", "null-to-int", "int-to-text", "list-to-json-text", "bool-to-text"],
)
def test_conform(arr: pa.Array, type_: pa.DataType, expected: list[Any]) -> None:
    out = conform(arr, type_)
    assert out.type == type_
    assert out.to_pylist() == expected


def test_epoch_seconds_become_utc_microseconds() -> None:
    ts = epoch_to_timestamp(pa.array([0.0, 1.5, 1700000000.123456]))
    assert str(ts.type) == "timestamp[us, tz=UTC]"
    assert [t.value for t in ts] == [0, 1_500_000, 1_700_000_000_123_456]


@pytest.mark.parametrize(
    ("values", "counts"),
    [
        ([1700000000.123456], [3]),
        ([1700000000.0000005], [2]),
        ([1700000000.5, 1700000001.25, 1700000001.25], [1, 4, 2]),
        ([0.0, 1.0], [0, 2]),
        ([1700000000.1], [0]),
    ],
    ids=["one run", "half a microsecond", "several runs", "an empty run", "no rows"],
)
def test_run_timestamps_expand_runs_as_epoch_to_timestamp_rounds(
    values: list[float], counts: list[int]
) -> None:
    expanded = [v for v, c in zip(values, counts, strict=True) for _ in range(c)]
    want = epoch_to_timestamp(pa.array(expanded, pa.float64()))
    got = run_timestamps(values, counts)
    assert got.type == ENVELOPE.field("time").type
    assert got.equals(want)
