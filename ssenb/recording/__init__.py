"""Recordings: the `Recorder` protocol and `open_recorder`, JSONL and Parquet recorders,
loading into DataFrames, conversion and replay.

`record` blocks while it records a stream; `open_recorder(target, format=..., source=...)`
is the one way `record`, `collect(record=...)` and `watch(record=...)` open their recorder
(`JSONLRecorder` or `DatasetRecorder`); `read_jsonl`, `read_dataset` and `to_parquet` load
recordings with pyarrow; `replay` serves one again from the demo server. This layer shows no
widget: long conversions report through a progress callback.

The package is `ssenb.recording`, not `ssenb.record`: a subpackage named like the public
`ssenb.record()` function would rebind that name to the module when it is imported.
"""

from __future__ import annotations

from ._consume import SSEConnectTimeout
from ._dataset import DatasetRecorder, Progress, TextProgress, jsonl_to_dataset, read_dataset
from ._flatten import SchemaWarning
from ._loader import JSONLDecodeError, read_jsonl, to_parquet
from ._open import Format, Recorder, open_recorder, record
from ._recorder import JSONLRecorder
from ._replay import replay

__all__ = [
    "DatasetRecorder",
    "Format",
    "JSONLDecodeError",
    "JSONLRecorder",
    "Progress",
    "Recorder",
    "SSEConnectTimeout",
    "SchemaWarning",
    "TextProgress",
    "jsonl_to_dataset",
    "open_recorder",
    "read_dataset",
    "read_jsonl",
    "record",
    "replay",
    "to_parquet",
]
