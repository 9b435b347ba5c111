"""Hub backends by URL scheme: `Hub(backend=...)` looks the scheme up here.

    "memory"                               -> MemoryBackend (this process)
    "redis://host:6379/0?stream=name"      -> RedisBackend ("rediss://": TLS, "unix://": socket)

A new backend (Kafka, NATS, ...) is one module and one line. Write `_nats.py` with a
`HubBackend` subclass (`_backend.py`; the contract suite, tests/test_hub_contract.py, says what
it must do) whose constructor is `NatsBackend(url, *, buffer, queue, start)`, then add

    "nats": "._nats:NatsBackend",

to `_BUILTIN` below. Entries are import paths, so a backend's client library (redis, ...) is
imported only when a hub uses it. Code outside ssenb registers the same way at run time:
`ssenb.server.hub.register_backend("nats", NatsBackend)`.
"""

from __future__ import annotations

import importlib
import re
import threading
from typing import Protocol

from ._backend import HubBackend, redact

__all__ = ["BackendFactory", "backends", "open_backend", "register_backend", "unregister_backend"]


class BackendFactory(Protocol):
    """What the registry calls to make a backend (a `HubBackend` subclass is one)."""

    def __call__(self, url: str, *, buffer: int, queue: int, start: int | str) -> HubBackend: ...


_BUILTIN: dict[str, str] = {
    "memory": "._memory:MemoryBackend",
    "redis": "._redis:RedisBackend",
    "rediss": "._redis:RedisBackend",
    "unix": "._redis:RedisBackend",
}
_REGISTRY: dict[str, str | BackendFactory] = dict(_BUILTIN)
_LOCK = threading.Lock()
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# the extra that installs a built-in backend's client library
_EXTRAS = {"redis": "redis"}


def scheme_of(backend: str) -> str:
    """`redis://host/0` -> "redis"; a bare name ("memory") is its own scheme."""
    scheme, sep, _ = backend.partition("://")
    return scheme.lower() if sep else backend


def register_backend(scheme: str, factory: BackendFactory | str, *, replace: bool = False) -> None:
    """Make `Hub(backend="<scheme>://...")` (or the bare `scheme`) use `factory`: a
    `HubBackend` subclass or callable, or its import path "package.module:Name".
    An existing scheme is replaced only with `replace=True`."""
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"a backend scheme is lowercase letters, digits, +.- : not {scheme!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(f"factory must be a HubBackend class, a callable or 'module:Name', "
                        f"not {factory!r}")  # fmt: skip
    with _LOCK:
        if scheme in _REGISTRY and not replace:
            raise ValueError(f"hub backend {scheme!r} is registered already (replace=True)")
        _REGISTRY[scheme] = factory


def unregister_backend(scheme: str) -> None:
    """Forget a registered scheme (a built-in one comes back as it was)."""
    with _LOCK:
        if scheme in _BUILTIN:
            _REGISTRY[scheme] = _BUILTIN[scheme]
        else:
            _REGISTRY.pop(scheme, None)


def backends() -> dict[str, str]:
    """Every registered scheme and what makes its backend (import path or qualified name)."""
    with _LOCK:
        items = sorted(_REGISTRY.items())
    return {k: v if isinstance(v, str) else _name_of(v) for k, v in items}


def open_backend(backend: str, *, buffer: int, queue: int, start: int | str) -> HubBackend:
    """The backend `backend` names, made with the hub's settings."""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or URL string, not {type(backend).__name__}")
    with _LOCK:
        entry = _REGISTRY.get(scheme_of(backend))
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"Hub backend {redact(backend)!r} is not available; use 'memory' or a URL whose"
            f" scheme is registered ({known}), e.g. redis://127.0.0.1:6379/0?stream=name"
        )
    factory = _load(scheme_of(backend), entry) if isinstance(entry, str) else entry
    store = factory(backend, buffer=buffer, queue=queue, start=start)
    if not isinstance(store, HubBackend):
        raise TypeError(f"backend {scheme_of(backend)!r} made {store!r}, not a HubBackend")
    return store


def _load(scheme: str, path: str) -> BackendFactory:
    module, _, name = path.partition(":")
    try:
        loaded = importlib.import_module(module, __package__)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(exc.name or "")
        if extra is None:
            raise
        raise ImportError(
            f"the {scheme!r} hub backend needs the {exc.name} package: pip install 'ssenb[{extra}]'"
        ) from exc
    factory: BackendFactory = getattr(loaded, name)
    return factory


def _name_of(factory: BackendFactory) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', factory)}"
