"""The hub: fan-out to many subscribers with bounded queues and replay by id, on a backend
chosen by URL scheme.

    hub = ssenb.Hub()                                              # in this process
    hub = ssenb.Hub(backend="redis://127.0.0.1:6379/0?stream=t")   # shared by processes

`Hub` (`_hub.py`) is the public entry; the backends implement `HubBackend` and
`HubSubscription` (`_backend.py`): `MemoryBackend` (`_memory.py`) and `RedisBackend`
(`_redis.py`, reading through `_redis_read.py`). `_registry.py` maps schemes to backends and
says how to add one. `HubResponse` (`_response.py`) serves any backend's subscription.
"""

from __future__ import annotations

from ._backend import HubBackend, HubStats, HubSubscription, Publishable
from ._hub import Hub
from ._memory import MemoryBackend, MemorySubscription
from ._registry import BackendFactory, backends, register_backend, unregister_backend
from ._response import DROP_GRACE, HubResponse

__all__ = [
    "DROP_GRACE",
    "BackendFactory",
    "Hub",
    "HubBackend",
    "HubResponse",
    "HubStats",
    "HubSubscription",
    "MemoryBackend",
    "MemorySubscription",
    "Publishable",
    "backends",
    "register_backend",
    "unregister_backend",
]
