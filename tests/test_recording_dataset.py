"""Partitioned Parquet datasets: `DatasetRecorder`, `read_dataset`, `jsonl_to_dataset`.

Specifications: the dataset has Hive folders every engine reads (pandas, pyarrow datasets,
DuckDB, Polars) with the same rows as `read_dataset`; `read_dataset` has `read_jsonl`'s
columns; a reader never sees a half-written file; conversion runs in bounded memory.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import duckdb
import orjson
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest

import ssenb
from ssenb import Event
from ssenb.recording import (
    DatasetRecorder,
    JSONLDecodeError,
    JSONLRecorder,
    TextProgress,
    jsonl_to_dataset,
    read_dataset,
    read_jsonl,
    record,
)

T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
ENVELOPE = ["time", "event", "id", "retry", "data"]


def _events(n: int, step: float = 10.0) -> Iterator[tuple[Event, float]]:
    for i in range(n):
        if i % 7 == 3:
            yield Event(event="note", data=f"text {i}", id=str(i), retry=500), T0 + i * step
        else:
            data = orjson.dumps({"v": i, "x": i / 4, "m": {"s": f"s{i % 5}"}}).decode()
            yield Event(event="tick", data=data, id=str(i)), T0 + i * step


def _record_both(tmp_path: Path, n: int, **kw: object) -> tuple[Path, Path]:
    jsonl, folder = tmp_path / "r.jsonl", tmp_path / "ds"
    with (
        JSONLRecorder(jsonl, source="http://x") as a,
        DatasetRecorder(folder, source="http://x", **kw) as b,
    ):  # type: ignore[arg-type]
        for event, at in _events(n):
            a.write(event, at)
            b.write(event, at)
    return jsonl, folder


def _parts(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder).parent) for p in folder.rglob("*.parquet"))


@pytest.mark.parametrize(
    ("kw", "folders"),
    [
        ({"partition": "hour"}, {"date=2026-11-18/hour=11", "date=2026-11-18/hour=12"}),
        ({"partition": "size", "max_rows": 250}, {"date=2026-11-18"}),
    ],
    ids=["by-hour", "by-size"],
)
def test_read_dataset_has_the_rows_and_columns_of_read_jsonl(
    tmp_path: Path, kw: dict[str, object], folders: set[str]
) -> None:
    jsonl, folder = _record_both(tmp_path, 600, **kw)
    assert set(_parts(folder)) >= folders
    got, want = read_dataset(folder), read_jsonl(jsonl)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["sources"] == ["http://x"]


def test_size_partition_rolls_over_at_max_rows(tmp_path: Path) -> None:
    _, folder = _record_both(tmp_path, 600, partition="size", max_rows=250)
    rows = [len(pd.read_parquet(p)) for p in sorted(folder.rglob("*.parquet"))]
    assert sorted(rows) == [100, 250, 250]


def test_every_engine_reads_the_same_rows(tmp_path: Path) -> None:
    """pandas, pyarrow datasets, DuckDB SQL and Polars agree with `read_dataset`."""
    _, folder = _record_both(tmp_path, 600)
    want = read_dataset(folder, columns=ENVELOPE, parse_data=False)
    want = want.sort_values("id", key=lambda s: s.astype(int), ignore_index=True)

    def same(frame: pd.DataFrame) -> None:
        frame = frame[ENVELOPE].sort_values("id", key=lambda s: s.astype(int), ignore_index=True)
        frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.as_unit("us")
        for col in ENVELOPE[1:]:
            assert frame[col].astype(object).where(frame[col].notna(), None).tolist() == (
                want[col].astype(object).where(want[col].notna(), None).tolist()
            ), col
        assert frame["time"].tolist() == want["time"].tolist()

    same(pd.read_parquet(folder))
    same(ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas())
    glob = f"{folder}/**/*.parquet"
    sql = f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true)"
    same(duckdb.sql(sql).to_arrow_table().to_pandas())
    same(pl.scan_parquet(glob, hive_partitioning=True).collect().to_pandas())
    # and SQL over the recording gives what the filter gives
    one = duckdb.sql(
        f"SELECT id, data FROM read_parquet('{glob}', hive_partitioning=true) "
        "WHERE hour = 12 AND event = 'tick' ORDER BY time"
    ).df()
    mine = read_dataset(
        folder, columns=["id", "data"], filters=[("hour", "=", 12), ("event", "=", "tick")]
    )
    assert one["id"].tolist() == mine["id"].tolist()
    assert len(mine) > 0


@pytest.mark.parametrize(
    ("columns", "filters", "rows"),
    [
        (["time", "data.v"], [("hour", "=", 11)], 320),  # 11:06:40 .. 11:59:50
        (["id", "data.m.s"], None, 600),
        (["event"], [("event", "=", "note")], 86),
        (["hour", "data.nope"], [("hour", "=", 12)], 280),
    ],
    ids=["one-hour-two-columns", "nested-key-only", "event-filter", "missing-key-is-null"],
)
def test_read_dataset_reads_only_what_is_asked(
    tmp_path: Path, columns: list[str], filters: list[tuple[str, str, object]] | None, rows: int
) -> None:
    _, folder = _record_both(tmp_path, 600)
    got = read_dataset(folder, columns=columns, filters=filters)
    assert list(got.columns) == columns
    assert len(got) == rows
    full = read_jsonl(tmp_path / "r.jsonl")
    if "data.v" in columns:
        hour11 = full[full["time"].dt.hour == 11]
        assert got["data.v"].tolist() == hour11["data.v"].tolist()


def test_readers_never_see_a_half_written_file(tmp_path: Path) -> None:
    """A reader polling the folder with pyarrow and DuckDB while a recorder commits many
    small files never fails and never lists a temp file."""
    folder = tmp_path / "ds"
    folder.mkdir()
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def poll() -> None:
        con = duckdb.connect()
        while not stop.is_set():
            try:
                n = ds.dataset(folder, format="parquet", partitioning="hive").count_rows()
                if any(folder.rglob("*.parquet")):
                    q = f"SELECT count(*) FROM read_parquet('{folder}/**/*.parquet')"
                    con.sql(q).fetchall()
                seen.append(n)
            except BaseException as exc:  # the assertion below shows it
                errors.append(exc)
                return

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        with DatasetRecorder(folder, partition="size", max_rows=500, flush_interval=0.01) as rec:
            for i in range(20_000):
                rec.write(Event(data=f'{{"i": {i}}}', id=str(i)), T0 + i)
                if i % 500 == 0:
                    time.sleep(0.005)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen == sorted(seen)
    assert len(seen) > 3
    assert len(read_dataset(folder, columns=["id"])) == 20_000
    visible = [p.name for p in folder.rglob("*") if p.is_file()]
    assert visible
    assert all(n.startswith("part-") and n.endswith(".parquet") for n in visible)


def test_an_open_file_is_committed_after_max_age(tmp_path: Path) -> None:
    with DatasetRecorder(tmp_path, max_age=0.2, flush_interval=0.05) as rec:
        rec.write(Event(data="a", id="1"))
        deadline = time.monotonic() + 5
        while not list(tmp_path.rglob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_dataset(tmp_path)["data"].tolist() == ["a"]


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with ssenb.serve(name="test_recording_dataset_demo") as handle:
        yield handle.url


@pytest.mark.parametrize("how", ["format-parquet", "existing-directory"])
def test_record_writes_a_dataset_when_asked(demo: str, tmp_path: Path, how: str) -> None:
    out = tmp_path / "rec"
    if how == "format-parquet":
        count = record(demo + "/stream?n=5&interval=0", out, format="parquet")
    else:
        out.mkdir()
        count = record(demo + "/stream?n=5&interval=0", out)
    assert count == 5
    df = read_dataset(out)
    assert df["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert df["data.count"].tolist() == [1, 2, 3, 4, 5]


def test_jsonl_to_dataset_converts_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl, _ = _record_both(tmp_path, 600)
    assert jsonl_to_dataset(jsonl, tmp_path / "out") == 600
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "out"), read_jsonl(jsonl))
    err = capsys.readouterr().err
    assert err.rsplit("\r", 1)[-1].startswith("r.jsonl -> dataset: 100% |")  # final state last
    assert jsonl_to_dataset(jsonl, tmp_path / "quiet", progress=False) == 600
    assert capsys.readouterr().err == ""


def test_jsonl_to_dataset_names_a_bad_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"time": 1.0, "data": "a"}\n[1, 2]\n{"time": 2.0, "data": "b"}\n')
    with pytest.raises(JSONLDecodeError, match="line 2"):
        jsonl_to_dataset(src, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").rglob("*.parquet.tmp"))


_CHILD = """
import re, sys
from ssenb.recording import jsonl_to_dataset

def status(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024

jsonl_to_dataset(sys.argv[1] + ".small", sys.argv[2] + ".warm", progress=False)  # lazy inits
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
rows = jsonl_to_dataset(sys.argv[1], sys.argv[2], progress=False)
print(rows, status("VmHWM") - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_converting_a_big_recording_runs_in_bounded_memory(tmp_path: Path) -> None:
    """~130 MB of JSONL converts with peak RSS growth well below the file size (about 45 MB
    measured, the same at 25 MB and 200 MB: bounded by the block, not the file)."""
    src = tmp_path / "big.jsonl"
    pad = "p" * 120
    rows = 0
    with open(src, "wb") as f:
        while f.tell() < 128 << 20:
            f.write(
                b"".join(
                    orjson.dumps(
                        {
                            "time": T0 + i / 10,
                            "event": "tick",
                            "id": str(i),
                            "retry": None,
                            "data": f'{{"i": {i}, "pad": "{pad}"}}',
                            "source": "u",
                        },
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                    for i in range(rows, rows + 20_000)
                )
            )
            rows += 20_000
    with open(src, "rb") as f:
        head = f.read(100_000)
    (tmp_path / "big.jsonl.small").write_bytes(head[: head.rindex(b"\n") + 1])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    count, growth = map(int, out.stdout.split())
    print(f"RSS peak growth {growth / 1e6:.0f} MB")
    assert count == rows
    size = src.stat().st_size
    assert growth < size / 2, f"RSS grew {growth / 1e6:.0f} MB for {size / 1e6:.0f} MB"


def test_bench_dataset_quick_run_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench/dataset.py --quick` runs, checks both reads agree, and reports every figure."""
    from bench import dataset as bench_dataset

    fig = bench_dataset.main(["--quick"])
    assert fig["events"] == 30_000
    assert fig["dataset_write_ev_s"] > 0
    assert fig["read_dataset_hour_2cols_s"] > 0
    assert "read_dataset one hour, two columns" in capsys.readouterr().out


def test_an_empty_folder_reads_as_an_empty_frame(tmp_path: Path) -> None:
    assert list(read_dataset(tmp_path).columns) == ENVELOPE
    assert len(read_dataset(tmp_path, columns=["id"], filters=[("hour", "=", 3)])) == 0


def test_the_text_progress_line_redraws_at_most_ten_times_a_second(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = TextProgress("x")
    start = time.monotonic()
    done = 0
    while time.monotonic() - start < 0.5:
        done += 1
        bar(done, 10**12)
    bar(10**12, 10**12)
    bar(10**12, 10**12)  # a repeated final state is not drawn again
    err = capsys.readouterr().err
    assert 2 <= err.count("\r") <= 8  # ~5 redraws in 0.5 s, plus the final one
    assert err.endswith("\n")
    assert err.rsplit("\r", 1)[-1].startswith("x: 100% |")  # the last state is the final count


def test_jsonl_to_dataset_reports_progress_to_a_callback_ending_at_the_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recording layer shows no widget: it calls back (done, total), and the last call
    is (total, total), so whatever displays it ends on the final count."""
    jsonl, _ = _record_both(tmp_path, 3000)
    calls: list[tuple[int, int]] = []
    with patch("ssenb.recording._dataset._CONVERT_BLOCK", 16 << 10):  # several blocks
        rows = jsonl_to_dataset(jsonl, tmp_path / "out", progress=lambda *a: calls.append(a))
    assert rows == 3000
    size = jsonl.stat().st_size
    assert len(calls) > 2
    assert calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert {t for _, t in calls} == {size}
    assert capsys.readouterr().err == ""  # a callback replaces the default text line


_KILLED_CHILD = """
import sys
from ssenb import Event
from ssenb.recording import DatasetRecorder
rec = DatasetRecorder(sys.argv[1], partition="size", max_rows=1000, flush_interval=0.01)
i = 0
while True:
    rec.write(Event(data=str(i), id=str(i)))
    i += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_recorder_leaves_only_whole_committed_files(tmp_path: Path) -> None:
    """SIGKILL mid-write: every visible file reads whole, in order; the open one stays a
    hidden temp file that no reader lists."""
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.rglob("*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    ids = read_dataset(tmp_path, columns=["id"])["id"].astype(int).tolist()
    assert len(ids) >= 3000
    assert len(ids) % 1000 == 0
    assert sorted(ids) == list(range(len(ids)))
    glob = f"{tmp_path}/**/*.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(len(ids),)]
