"""The registries `serve()`, `watch()` and the recorders register into, by name.

They are the runtime's typed registries (`ssenb._runtime.runtime`): this module only keeps
the names the server and notebook layers call, so those layers need not know the runtime's
shape. The registries outlive `importlib.reload(ssenb)` (and a reload of this module): they
belong to the one `Runtime` object, created once per process.
"""

from __future__ import annotations

from typing import Any

from ._runtime import RecorderLike, ServerLike, SubscriptionLike, runtime

__all__ = [
    "flags",
    "recorders",
    "register_recorder",
    "register_server",
    "register_subscription",
    "servers",
    "subscriptions",
    "unregister_recorder",
    "unregister_server",
    "unregister_subscription",
]

#: running server handles by name (`serve(name=...)`); re-serving a name replaces it
servers: dict[str, ServerLike] = runtime.servers
#: live subscriptions by `id(obj)`
subscriptions: dict[int, SubscriptionLike] = runtime.subscriptions
#: open recorders by `id(obj)`
recorders: dict[int, RecorderLike] = runtime.recorders
#: one-time process hooks (the atexit registration, the shared log buffer)
flags: dict[str, Any] = runtime.flags


def register_server(name: str, handle: ServerLike) -> ServerLike | None:
    """Record `handle` under `name`; returns the handle it replaced (or None)."""
    old = servers.get(name)
    servers[name] = handle
    return old


def unregister_server(name: str, handle: ServerLike) -> None:
    """Forget `name` if it still maps to `handle` (a newer server of that name stays)."""
    if servers.get(name) is handle:
        servers.pop(name, None)


def register_subscription(sub: SubscriptionLike) -> None:
    """Record a live subscription so `ssenb.status()` lists it and `stop_all()` stops it."""
    subscriptions[id(sub)] = sub


def unregister_subscription(sub: SubscriptionLike) -> None:
    """Forget a subscription (idempotent)."""
    subscriptions.pop(id(sub), None)


def register_recorder(rec: RecorderLike) -> None:
    """Record an open recorder so `ssenb.status()` lists it and `stop_all()` closes it."""
    recorders[id(rec)] = rec


def unregister_recorder(rec: RecorderLike) -> None:
    """Forget a recorder (idempotent; called by its `close()`)."""
    recorders.pop(id(rec), None)
