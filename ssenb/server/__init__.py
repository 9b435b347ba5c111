"""The server layer: a coalescing SSE response, demo producers, a background runner.

Imports only the core (never the client). `Hub` (fan-out with replay, on pluggable backends)
is the `hub` subpackage, imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._demo import demo_app
from ._endpoints import Endpoint, add_endpoint
from ._llm import configure_llm
from ._response import AbortConnection, EventStreamResponse
from ._runner import ServerHandle, serve, stop_all

__all__ = [
    "AbortConnection",
    "Endpoint",
    "EventStreamResponse",
    "Hub",
    "ServerHandle",
    "add_endpoint",
    "configure_llm",
    "demo_app",
    "serve",
    "stop_all",
]

# public names defined in modules imported on first access (add them to __all__ once they exist)
_LAZY = {"Hub": ".hub"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ssenb.server' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}{module}":
            raise
        raise AttributeError(f"ssenb.server.{name} is not available yet") from exc
    globals()[name] = value
    return value
