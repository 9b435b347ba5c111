"""The SSE client layer: `EventSource` (sync and async, over httpx) and its `RetryPolicy`.

Imports only the core below it; never the server.
"""

from __future__ import annotations

from ._policy import RetryPolicy
from ._source import EventSource

__all__ = ["EventSource", "RetryPolicy"]
