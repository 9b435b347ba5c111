"""The server layer: a coalescing SSE response, demo producers, a background runner.

Imports only the core (never the client). `Hub` (fan-out with replay) arrives in its own
module and is re-exported here too.
"""

from __future__ import annotations

from ._demo import demo_app
from ._endpoints import Endpoint, add_endpoint
from ._response import AbortConnection, EventStreamResponse
from ._runner import ServerHandle, serve, stop_all

__all__ = [
    "AbortConnection",
    "Endpoint",
    "EventStreamResponse",
    "ServerHandle",
    "add_endpoint",
    "demo_app",
    "serve",
    "stop_all",
]
