"""`open_recorder`: the one way `record`, `collect(record=)` and `watch(record=)` open a
recorder, and the `Recorder` protocol both recorders implement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ssenb import Event
from ssenb.recording import (
    DatasetRecorder,
    JSONLRecorder,
    Recorder,
    open_recorder,
    read_dataset,
    read_jsonl,
)

CASES = [
    ("r.jsonl", None, JSONLRecorder),
    ("recording", None, JSONLRecorder),
    ("r.parquet", None, DatasetRecorder),
    ("existing-dir/", None, DatasetRecorder),
    ("r.jsonl", "parquet", DatasetRecorder),
    ("r.parquet", "jsonl", JSONLRecorder),
    ("existing-dir/", "parquet", DatasetRecorder),
]


@pytest.mark.parametrize(
    ("name", "fmt", "kind"), CASES, ids=[f"{n or '-'}|{f}" for n, f, _ in CASES]
)
def test_the_format_follows_the_path_unless_given(
    tmp_path: Path, name: str, fmt: Any, kind: type
) -> None:
    if name.endswith("/"):
        (tmp_path / name).mkdir()
    rec = open_recorder(tmp_path / name, format=fmt, source="http://127.0.0.1:1/s")
    try:
        assert type(rec) is kind
        assert isinstance(rec, Recorder)
        assert rec.source == "http://127.0.0.1:1/s"
        rec.write(Event(data="x", id="1"), time=1.0)
        assert rec.written == 1
    finally:
        rec.close()
    read = read_dataset if kind is DatasetRecorder else read_jsonl
    assert read(tmp_path / name)["id"].tolist() == ["1"]


def test_an_open_recorder_is_returned_as_is(tmp_path: Path) -> None:
    with JSONLRecorder(tmp_path / "r.jsonl") as rec:
        assert open_recorder(rec, format="parquet", source="ignored") is rec


@pytest.mark.parametrize(
    ("target", "fmt", "error"),
    [
        ("r.jsonl", "csv", ValueError),
        (42, None, TypeError),
        (object(), None, TypeError),
    ],
    ids=["unknown-format", "a-number", "not-a-recorder"],
)
def test_bad_targets_and_formats_are_refused(
    tmp_path: Path, target: Any, fmt: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        open_recorder(target if not isinstance(target, str) else tmp_path / target, format=fmt)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_dataset_folder_it_created_is_removed(tmp_path: Path) -> None:
    open_recorder(tmp_path / "new.parquet").close()
    assert not (tmp_path / "new.parquet").exists()
    (tmp_path / "mine").mkdir()
    open_recorder(tmp_path / "mine").close()
    assert (tmp_path / "mine").is_dir()  # the user's folder stays
