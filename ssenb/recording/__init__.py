"""Recordings: JSONL recording, loading into DataFrames, Parquet conversion and replay.

`record` blocks while it records a stream; `JSONLRecorder` is the writer it (and
`ssenb.watch(record=...)`) uses; `read_jsonl` and `to_parquet` load recordings with
pyarrow; `replay` serves one again from the demo server.

This package shares its name with the `ssenb.record()` function: once the package is
imported, Python binds `ssenb.record` to it, so the package itself is callable and calling
it is calling `record(url, path, *, n=None, timeout=None, **source_kw)`.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from ._flatten import SchemaWarning
from ._loader import JSONLDecodeError, read_jsonl, to_parquet
from ._recorder import JSONLRecorder, record
from ._replay import replay

__all__ = [
    "JSONLDecodeError",
    "JSONLRecorder",
    "SchemaWarning",
    "read_jsonl",
    "record",
    "replay",
    "to_parquet",
]


class _CallableModule(types.ModuleType):
    """`ssenb.record` as the package and, when called, the `record()` function."""

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        return record(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__signature__ = inspect.signature(record)
