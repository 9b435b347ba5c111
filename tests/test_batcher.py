"""`DataFrameBatcher`: size/time flushes, one Arrow batch per flush, stable dtypes, max_rows."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from ssenb import Event
from ssenb.notebook import DataFrameBatcher
from ssenb.recording import JSONLRecorder, SchemaWarning, read_jsonl

ENVELOPE = ["time", "event", "id", "retry", "data"]


def _tick(i: int) -> Event:
    return Event(event="tick", data=f'{{"i": {i}, "m": {{"k": "v{i}"}}}}', id=str(i))


def test_columns_are_the_envelope_then_flattened_data() -> None:
    b = DataFrameBatcher()
    b.add(Event(data='{"a": 1, "n": {"b": "x"}}', id="7", retry=500), time=1700000000.5)
    df = b.df
    assert list(df.columns) == [*ENVELOPE, "data.a", "data.n.b"]
    row = df.iloc[0]
    assert row["time"] == pd.Timestamp(1700000000.5, unit="s", tz="UTC")
    assert (row["event"], row["id"], row["retry"], row["data.a"], row["data.n.b"]) == (
        "message",
        "7",
        500,
        1,
        "x",
    )
    assert str(df["time"].dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    ("batch_size", "added", "batches"),
    [(3, 2, 0), (3, 3, 1), (3, 7, 2), (1, 4, 4)],
    ids=["below-size", "exactly-size", "two-full-one-pending", "size-one"],
)
def test_flushes_every_batch_size_rows(batch_size: int, added: int, batches: int) -> None:
    seen: list[pd.DataFrame] = []
    b = DataFrameBatcher(batch_size=batch_size, flush_interval=60, on_batch=seen.append)
    b.extend(_tick(i) for i in range(added))
    assert [len(f) for f in seen] == [batch_size] * batches
    assert b.rows == added  # pending rows count too


def test_flush_interval_is_honoured_by_tick_when_the_stream_is_quiet() -> None:
    seen: list[pd.DataFrame] = []
    b = DataFrameBatcher(batch_size=1000, flush_interval=0.05, on_batch=seen.append)
    b.add(_tick(1))
    assert not b.tick()  # not due yet
    time.sleep(0.06)
    assert b.tick()
    assert [len(f) for f in seen] == [1]
    assert not b.tick()  # nothing pending


def test_on_batch_gets_that_batch_with_the_frame_columns() -> None:
    seen: list[pd.DataFrame] = []
    b = DataFrameBatcher(batch_size=2, on_batch=seen.append)
    b.extend([Event(data='{"a": 1}'), Event(data='{"a": 2}'), Event(data='{"b": "x"}')])
    b.flush()
    assert [f["data.a"].tolist() for f in seen] == [[1, 2], [pd.NA]]
    assert list(seen[1].columns) == list(b.df.columns)


def test_dtypes_are_stable_across_batches() -> None:
    b = DataFrameBatcher(batch_size=2)
    b.extend([Event(data='{"a": null}'), Event(data="text")])  # a: null type
    b.extend([Event(data='{"a": 1}'), Event(data='{"a": 2}')])  # a: int
    b.extend([Event(data='{"a": 2.5}'), Event(data='{"a": 3}')])  # a: float
    df = b.df
    assert str(df["data.a"].dtype) == "double[pyarrow]"
    assert df["data.a"].tolist()[2:] == [1.0, 2.0, 2.5, 3.0]


def _add_then_read(b: DataFrameBatcher, event: Event) -> pd.DataFrame:
    b.add(event)
    return b.df


@pytest.mark.parametrize("live", [False, True], ids=["parsed-at-df", "parsed-per-batch"])
def test_a_field_that_changes_type_becomes_text_never_a_crash(live: bool) -> None:
    b = DataFrameBatcher(batch_size=1, on_batch=(lambda frame: None) if live else None)
    b.add(Event(data='{"v": 1}'))
    with pytest.warns(SchemaWarning, match=r"data\.v"):  # at add() or when .df is read
        df = _add_then_read(b, Event(data='{"v": "one"}'))
    assert df["data.v"].tolist() == ["1", "one"]
    assert str(df["data.v"].dtype) == "string[pyarrow]"


@pytest.mark.parametrize(
    ("batch_size", "added", "max_rows"),
    [(3, 10, 4), (3, 10, 3), (5, 10, 0), (2, 3, 10)],
    ids=["slices-a-batch", "whole-batches", "zero", "under-the-cap"],
)
def test_max_rows_keeps_the_newest(batch_size: int, added: int, max_rows: int) -> None:
    b = DataFrameBatcher(batch_size=batch_size, max_rows=max_rows)
    b.extend(_tick(i) for i in range(added))
    kept = b.df["id"].tolist()
    assert kept == [str(i) for i in range(added)][added - min(added, max_rows) :]
    assert b.rows == len(kept)


def test_df_is_cached_until_new_rows_arrive() -> None:
    b = DataFrameBatcher(batch_size=2)
    b.extend(_tick(i) for i in range(4))
    first = b.df
    assert b.df is first
    b.add(_tick(4))
    assert len(b.df) == 5
    assert b.df is not first


def test_rows_match_a_reloaded_recording(tmp_path: Path) -> None:
    """Live frames and reloaded recordings share one flattening: same columns and values."""
    events = [_tick(i) for i in range(5)] + [Event(event="note", data='{"x": "y"}', id="5")]
    b = DataFrameBatcher(batch_size=4)
    with JSONLRecorder(tmp_path / "r.jsonl") as rec:
        for i, ev in enumerate(events):
            b.add(ev, time=1000.0 + i)
            rec.write(ev, time=1000.0 + i)
    pd.testing.assert_frame_equal(b.df, read_jsonl(tmp_path / "r.jsonl"))


def test_a_reader_thread_sees_consistent_frames_while_events_arrive() -> None:
    b = DataFrameBatcher(batch_size=50, flush_interval=0.01)
    n = 5000
    stop = threading.Event()
    sizes: list[int] = []

    def read() -> None:
        while not stop.is_set():
            df = b.df
            assert df["id"].tolist() == [str(i) for i in range(len(df))]
            sizes.append(len(df))

    reader = threading.Thread(target=read)
    reader.start()
    b.extend(_tick(i) for i in range(n))
    stop.set()
    reader.join(10)
    assert not reader.is_alive()
    assert b.rows == len(b.df) == n
    assert sizes == sorted(sizes)


def test_cost_per_row_does_not_grow_with_the_frame() -> None:
    """Batches are built once; no step concatenates a growing frame (linear, not quadratic)."""

    def run(n: int) -> float:
        b = DataFrameBatcher(batch_size=1000, flush_interval=60)
        start = time.perf_counter()
        b.extend(_tick(i) for i in range(n))
        assert len(b.df) == n
        return time.perf_counter() - start

    run(2000)  # warm up
    small, large = run(20_000), run(100_000)
    assert large < small * 12  # 5x the rows: linear is ~5x, quadratic would be ~25x


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"batch_size": 0}, "batch_size"), ({"max_rows": -1}, "max_rows")],
    ids=["batch-size-zero", "negative-max-rows"],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataFrameBatcher(**kwargs)


def test_no_warning_for_ordinary_streams() -> None:
    b = DataFrameBatcher(batch_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.extend(_tick(i) for i in range(10))
        assert len(b.df) == 10


# -- the batch path: one read's events at a time (watch's ingest loop) ----------------------

_MIXED = [
    Event(data='{"a": 1}', id="1"),
    Event(event="tick", data='{"a": 2}', id="2", retry=300),
    Event(data="text", id=""),
]
_UNIFORM = [Event(data=f'{{"a": {i}}}', id=str(i)) for i in range(5)]


@pytest.mark.parametrize(
    ("reads", "batch_size"),
    [
        ([_UNIFORM], 2),  # one event type: the fast event column
        ([_MIXED], 2),
        ([_UNIFORM, _MIXED, _UNIFORM], 4),
        ([_MIXED[:1], [], _MIXED[1:]], 1000),  # an empty read adds nothing
    ],
    ids=["uniform", "mixed", "uniform-mixed-uniform", "with-empty-read"],
)
def test_add_batch_gives_the_frame_and_events_of_adding_one_by_one(
    reads: list[list[Event]], batch_size: int
) -> None:
    one, many = DataFrameBatcher(batch_size=batch_size), DataFrameBatcher(batch_size=batch_size)
    for read in reads:
        for ev in read:
            one.add(ev, time=1700000000.0)
        many.add_batch(read, time=1700000000.0)
    pd.testing.assert_frame_equal(many.df, one.df)
    assert many.events() == one.events() == [ev for read in reads for ev in read]


def test_add_and_add_batch_interleave_in_order() -> None:
    b = DataFrameBatcher(batch_size=1000)
    b.add(_tick(1))
    b.add_batch([_tick(2), _tick(3)])
    b.add(_tick(4))
    assert [ev.id for ev in b.events()] == ["1", "2", "3", "4"]  # pending, before any flush
    assert list(b.df["id"]) == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("read", "batch_size", "flushed"),
    [(3, 5, 0), (5, 5, 5), (7, 5, 7)],
    ids=["below", "exactly", "above: one flush of all"],
)
def test_add_batch_flushes_everything_pending_at_batch_size(
    read: int, batch_size: int, flushed: int
) -> None:
    seen: list[pd.DataFrame] = []
    b = DataFrameBatcher(batch_size=batch_size, flush_interval=60, on_batch=seen.append)
    b.add_batch([_tick(i) for i in range(read)])
    assert sum(map(len, seen)) == flushed
    assert len(b) == read


@pytest.mark.parametrize("max_rows", [0, 2, 10], ids=["none", "newest-2", "all"])
def test_events_keep_the_newest_max_rows(max_rows: int) -> None:
    b = DataFrameBatcher(batch_size=3, max_rows=max_rows)
    b.add_batch([_tick(i) for i in range(7)])
    b.add(_tick(7))
    want = [str(i) for i in range(8)][len(range(8)) - min(max_rows, 8) :]
    assert [ev.id for ev in b.events()] == want
