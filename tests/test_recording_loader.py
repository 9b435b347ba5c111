"""`read_jsonl` and `to_parquet`: recordings back into DataFrames, damage told apart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import orjson
import pandas as pd
import pytest

from ssenb import Event
from ssenb.recording import JSONLDecodeError, JSONLRecorder, read_jsonl, to_parquet

ENVELOPE = ["time", "event", "id", "retry", "data"]


def _line(i: int, event: str = "tick", data: str | None = None) -> bytes:
    payload = data if data is not None else orjson.dumps({"i": i, "m": {"k": f"v{i}"}}).decode()
    obj = {"time": 1000.0 + i, "event": event, "id": str(i), "retry": None, "data": payload}
    return orjson.dumps({**obj, "source": "http://127.0.0.1:1/x"}) + b"\n"


def _write(path: Path, *chunks: bytes) -> Path:
    path.write_bytes(b"".join(chunks))
    return path


def test_reads_what_the_recorder_wrote(tmp_path: Path) -> None:
    events = [
        Event(event="tick", data='{"v": 1, "n": {"k": "a"}}', id="1", retry=300),
        Event(data="plain text", id="2"),
        Event(event="tick", data='{"v": 2.5}', id="3"),
    ]
    with JSONLRecorder(tmp_path / "r.jsonl", source="http://127.0.0.1:1/s") as rec:
        for i, ev in enumerate(events):
            rec.write(ev, time=1700000000.0 + i)
    df = read_jsonl(tmp_path / "r.jsonl")
    assert list(df.columns) == [*ENVELOPE, "data.v", "data.n.k"]
    assert [Event(r.event, r.data, r.id, None if pd.isna(r.retry) else r.retry) for r in
            df.itertuples()] == events  # fmt: skip
    assert df["data.v"].tolist() == [1.0, pd.NA, 2.5]
    assert df["time"].iloc[0] == pd.Timestamp(1700000000, unit="s", tz="UTC")
    assert df.attrs["sources"] == ["http://127.0.0.1:1/s"]


def test_parse_data_false_keeps_only_the_envelope(tmp_path: Path) -> None:
    df = read_jsonl(_write(tmp_path / "r.jsonl", *map(_line, range(3))), parse_data=False)
    assert list(df.columns) == ENVELOPE
    assert df["id"].tolist() == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("tail", "rows", "warns"),
    [
        (b'{"time": 1.0, "event": "ti', 3, True),
        (_line(9).rstrip(b"\n"), 4, False),
        (b"", 3, False),
        (b"\n\n", 3, False),
    ],
    ids=["torn-last-line-skipped", "whole-last-line-without-newline", "clean", "blank-lines"],
)
def test_the_last_line(tmp_path: Path, tail: bytes, rows: int, warns: bool) -> None:
    path = _write(tmp_path / "r.jsonl", *map(_line, range(3)), tail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_jsonl(path)
    assert len(df) == rows
    assert any("torn last line" in str(w.message) for w in caught) == warns


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"time": 1.0, "event": "ti\n', "not JSON"),
        (b"[1, 2]\n", "a JSON list, not an object"),
        (b'{"time": 1.0, "data": {"a": 1}}\n', "'data' is dict"),
    ],
    ids=["torn-middle-line", "array", "data-not-a-string"],
)
def test_a_bad_middle_line_is_reported_by_number(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = _write(tmp_path / "r.jsonl", _line(0), _line(1), bad, _line(3))
    with pytest.raises(JSONLDecodeError, match=rf"line 3: {reason}") as info:
        read_jsonl(path)
    assert info.value.line == 3
    assert isinstance(info.value, ValueError)
    assert info.value.partial["id"].tolist() == ["0", "1"]  # nothing before it is lost
    with pytest.warns(RuntimeWarning, match="skipped 1 bad line"):
        skipped = read_jsonl(path, on_error="skip")
    assert skipped["id"].tolist() == ["0", "1", "3"]


def test_an_empty_file_gives_an_empty_frame(tmp_path: Path) -> None:
    df = read_jsonl(_write(tmp_path / "r.jsonl"))
    assert list(df.columns) == ENVELOPE
    assert len(df) == 0


def test_on_error_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        read_jsonl(_write(tmp_path / "r.jsonl", _line(0)), on_error="ignore")  # type: ignore[arg-type]


def test_event_types_with_clashing_shapes_load(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.jsonl",
        _line(0, "a", '{"v": 1}'),
        _line(1, "b", '{"v": {"deep": true}}'),
        _line(2, "a", '{"v": 2}'),
    )
    df = read_jsonl(path)
    assert df["data.v"].tolist() == [1, pd.NA, 2]
    assert df["data.v.deep"].tolist() == [pd.NA, True, pd.NA]


@pytest.mark.parametrize("parse_data", [True, False], ids=["parsed", "raw"])
def test_to_parquet_matches_read_jsonl(tmp_path: Path, parse_data: bool) -> None:
    lines = [_line(i) for i in range(50)] + [_line(50, "note", '{"x": "y"}'), b'{"time": 1']
    src = _write(tmp_path / "r.jsonl", *lines)
    with pytest.warns(RuntimeWarning, match="torn last line"):
        rows = to_parquet(src, tmp_path / "r.parquet", parse_data=parse_data)
    assert rows == 51
    with pytest.warns(RuntimeWarning, match="torn last line"):
        expected = read_jsonl(src, parse_data=parse_data)
    got = pd.read_parquet(tmp_path / "r.parquet", dtype_backend="pyarrow")
    assert list(got.columns) == list(expected.columns)
    assert got.drop(columns="time").equals(expected.drop(columns="time"))
    assert (got["time"].astype("datetime64[us, UTC]") == expected["time"]).all()


def test_to_parquet_reports_a_bad_line_by_number(tmp_path: Path) -> None:
    src = _write(tmp_path / "r.jsonl", _line(0), b"oops\n", _line(2))
    with pytest.raises(JSONLDecodeError, match="line 2"):
        to_parquet(src, tmp_path / "r.parquet")


BOUNDED = """
import resource, sys
from ssenb.recording import to_parquet
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = to_parquet(sys.argv[1], sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, (after - before) * 1024)
"""


def _convert_in_child(src: Path, dst: Path) -> tuple[int, int]:
    """(rows, peak RSS growth in bytes) of `to_parquet` run in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BOUNDED), str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows, grew = map(int, proc.stdout.split())
    return rows, grew


@pytest.mark.slow
def test_to_parquet_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Peak memory is set by the chunk size: a 4x larger file needs about the same."""
    block = b"".join(_line(i) for i in range(10_000))  # ~1.3 MB
    sizes = {}
    for name, blocks in (("small", 20), ("large", 80)):
        src = tmp_path / f"{name}.jsonl"
        src.write_bytes(block * blocks)
        rows, grew = _convert_in_child(src, tmp_path / f"{name}.parquet")
        assert rows == 10_000 * blocks
        sizes[name] = (src.stat().st_size, grew)
    (small_file, small_grew), (large_file, large_grew) = sizes["small"], sizes["large"]
    assert large_grew - small_grew < (large_file - small_file) / 4, sizes
