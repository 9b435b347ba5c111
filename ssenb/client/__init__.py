"""The SSE client layer: `EventSource` (sync and async, over httpx) and its `RetryPolicy`.

Imports only the core below it; never the server.
"""

from __future__ import annotations

from ._options import SOURCE_OPTIONS, SourceOptions, check_source_options
from ._policy import RetryPolicy
from ._source import EventSource

__all__ = [
    "SOURCE_OPTIONS",
    "EventSource",
    "RetryPolicy",
    "SourceOptions",
    "check_source_options",
]
