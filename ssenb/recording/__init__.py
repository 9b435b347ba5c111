"""Recordings: JSONL recording, loading into DataFrames, Parquet conversion and replay.

`record` blocks while it records a stream; `JSONLRecorder` is the writer it (and
`ssenb.watch(record=...)`) uses; `read_jsonl` and `to_parquet` load recordings with
pyarrow; `replay` serves one again from the demo server.

The package is `ssenb.recording`, not `ssenb.record`: a subpackage named like the public
`ssenb.record()` function would rebind that name to the module when it is imported.
"""

from __future__ import annotations

from ._dataset import DatasetRecorder, jsonl_to_dataset, read_dataset
from ._flatten import SchemaWarning
from ._loader import JSONLDecodeError, read_jsonl, to_parquet
from ._recorder import JSONLRecorder, record
from ._replay import replay

__all__ = [
    "DatasetRecorder",
    "JSONLDecodeError",
    "JSONLRecorder",
    "SchemaWarning",
    "jsonl_to_dataset",
    "read_dataset",
    "read_jsonl",
    "record",
    "replay",
    "to_parquet",
]
