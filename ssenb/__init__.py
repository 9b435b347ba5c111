"""ssenb: Server-Sent Events for notebooks.

One public namespace. The core (Event, EventParser, encode, the errors) is imported at once
and needs only the standard library; every other name is imported on first use, so
`import ssenb` stays cheap and the pure core never drags in httpx, FastAPI or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._encoder import encode, encode_comment
from ._errors import (
    SSEConnectTimeout,
    SSEContentTypeError,
    SSEEncodeError,
    SSEError,
    SSEEventTooLarge,
    SSEHubUnavailable,
    SSEIdleTimeout,
    SSEResumeWarning,
    SSERetriesExhausted,
    SSEStatusError,
    SSEStreamInterrupted,
)
from ._models import Event
from ._parser import EventParser
from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from . import llm
    from ._doctor import doctor
    from ._lifecycle import stop_all
    from ._status import status
    from .client import EventSource, RetryPolicy
    from .magics import load_ipython_extension, unload_ipython_extension
    from .notebook import (
        DataFrameBatcher,
        Subscription,
        View,
        collect,
        dashboard,
        register_view,
        watch,
    )
    from .recording import read_dataset, read_jsonl, record, replay, to_parquet
    from .server import EventStreamResponse, Hub, demo_app, serve

# name -> module that defines it, imported on first attribute access
_LAZY: dict[str, str] = {
    "DataFrameBatcher": "ssenb.notebook",
    "EventSource": "ssenb.client",
    "EventStreamResponse": "ssenb.server",
    "Hub": "ssenb.server",
    "RetryPolicy": "ssenb.client",
    "Subscription": "ssenb.notebook",
    "View": "ssenb.notebook",
    "collect": "ssenb.notebook",
    "dashboard": "ssenb.notebook",
    "demo_app": "ssenb.server",
    "doctor": "ssenb._doctor",
    "llm": "ssenb.llm",  # a namespace: the module itself
    "load_ipython_extension": "ssenb.magics",
    "read_dataset": "ssenb.recording",
    "read_jsonl": "ssenb.recording",
    "record": "ssenb.recording",
    "register_view": "ssenb.notebook",
    "replay": "ssenb.recording",
    "serve": "ssenb.server",
    "status": "ssenb._status",
    "stop_all": "ssenb._lifecycle",
    "to_parquet": "ssenb.recording",
    "unload_ipython_extension": "ssenb.magics",
    "watch": "ssenb.notebook",
}

__all__ = [
    "DataFrameBatcher",
    "Event",
    "EventParser",
    "EventSource",
    "EventStreamResponse",
    "Hub",
    "RetryPolicy",
    "SSEConnectTimeout",
    "SSEContentTypeError",
    "SSEEncodeError",
    "SSEError",
    "SSEEventTooLarge",
    "SSEHubUnavailable",
    "SSEIdleTimeout",
    "SSEResumeWarning",
    "SSERetriesExhausted",
    "SSEStatusError",
    "SSEStreamInterrupted",
    "Subscription",
    "View",
    "__version__",
    "collect",
    "dashboard",
    "demo_app",
    "doctor",
    "encode",
    "encode_comment",
    "llm",
    "load_ipython_extension",
    "read_dataset",
    "read_jsonl",
    "record",
    "register_view",
    "replay",
    "serve",
    "status",
    "stop_all",
    "to_parquet",
    "unload_ipython_extension",
    "watch",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ssenb' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"ssenb.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
