"""Process-wide registries that must outlive `importlib.reload(ssenb)`.

A notebook user who reloads the package must not orphan a server thread still holding a
port, or a background subscription still consuming a stream. These dicts live in a module
that nothing reloads, and even reloading this module keeps them (names already bound in the
module's namespace are reused). Pure stdlib, no I/O, no locks (single dict operations are
atomic under the GIL): the server and notebook layers register
into it, `ssenb.status()` reads it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "flags",
    "register_server",
    "register_subscription",
    "servers",
    "subscriptions",
    "unregister_server",
    "unregister_subscription",
]

try:  # keep existing registries when this module itself is reloaded
    servers  # type: ignore[has-type]  # noqa: B018
except NameError:
    #: running server handles by name (`serve(name=...)`); re-serving a name replaces it
    servers: dict[str, Any] = {}
    #: live notebook subscriptions by `id(obj)`, registered by the notebook layer
    subscriptions: dict[int, Any] = {}
    #: one-time process hooks (the atexit registration, the shared log buffer)
    flags: dict[str, Any] = {}


def register_server(name: str, handle: Any) -> Any:
    """Record `handle` under `name`; returns the handle it replaced (or None)."""
    old = servers.get(name)
    servers[name] = handle
    return old


def unregister_server(name: str, handle: Any) -> None:
    """Forget `name` if it still maps to `handle` (a newer server of that name stays)."""
    if servers.get(name) is handle:
        servers.pop(name, None)


def register_subscription(sub: Any) -> None:
    """Record a live subscription so `ssenb.status()` can list it."""
    subscriptions[id(sub)] = sub


def unregister_subscription(sub: Any) -> None:
    """Forget a subscription (idempotent)."""
    subscriptions.pop(id(sub), None)
