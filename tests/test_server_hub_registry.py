"""Choosing a hub backend by URL scheme (`hub/_registry.py`): the built-in schemes, clear
errors, registering a backend of one's own (here one built on the memory backend, served),
and the interface enforced when a backend is made rather than when a client connects."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from _hubs import serve_hub, subscribed

from ssenb import Event, Hub
from ssenb.server.hub import (
    HubBackend,
    MemoryBackend,
    Publishable,
    backends,
    register_backend,
    unregister_backend,
)


@pytest.fixture
def scheme() -> Iterator[str]:
    """A scheme free for this test, forgotten afterwards."""
    yield "mine"
    unregister_backend("mine")


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        ("memory", "MemoryBackend"),
        ("memory://", "MemoryBackend"),
        ("redis://127.0.0.1:1/0?stream=x", "RedisBackend"),
        ("REDIS://127.0.0.1:1/0", "RedisBackend"),
        ("rediss://127.0.0.1:1/0", "RedisBackend"),
        ("unix:///tmp/no-such.sock?stream=x", "RedisBackend"),
    ],
    ids=["memory", "memory-url", "redis", "scheme-case", "rediss-tls", "unix-socket"],
)
def test_the_scheme_picks_the_backend_and_a_hub_stays_a_hub(backend: str, kind: str) -> None:
    pytest.importorskip("redis")
    hub = Hub(backend=backend)  # making it connects to nothing
    assert isinstance(hub, Hub)
    assert type(hub.store).__name__ == kind
    hub.close()


@pytest.mark.parametrize(
    ("backend", "error", "message"),
    [
        ("kafka://b:9092/t", ValueError, r"'kafka://b:9092/t' is not available; .*\(memory, "),
        ("nats://me:s3cret@b:4222", ValueError, r"'nats://me:\*\*\*@b:4222' is not available"),
        ("redis", ValueError, "the Redis backend takes a URL"),
        ("memory://elsewhere", ValueError, "the memory backend takes no address"),
        (None, TypeError, "backend must be a name or URL string"),
    ],
    ids=["unknown-scheme", "password-hidden", "redis-without-url", "memory-with-address",
         "not-a-string"],
)  # fmt: skip
def test_a_backend_that_cannot_be_made_is_a_clear_error(
    backend: Any, error: type[Exception], message: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(error, match=message) as info:
        Hub(backend=backend)
    assert "s3cret" not in str(info.value)


def test_the_registry_lists_the_built_in_schemes() -> None:
    listed = backends()
    assert {k: listed[k] for k in ("memory", "redis", "rediss", "unix")} == {
        "memory": "._memory:MemoryBackend",
        "redis": "._redis:RedisBackend",
        "rediss": "._redis:RedisBackend",
        "unix": "._redis:RedisBackend",
    }


def test_a_memory_hub_does_not_import_redis() -> None:
    """Entries are import paths: a backend's client library loads only when a hub uses it."""
    code = "import sys, ssenb; ssenb.Hub().publish('x'); print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_client_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails as if absent
    for name in ("ssenb.server.hub._redis", "ssenb.server.hub._redis_read"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # imported anew, without redis
    with pytest.raises(ImportError, match=r"needs the redis package: pip install 'ssenb\[redis\]'"):
        Hub(backend="redis://127.0.0.1:1/0")


class Shouting(MemoryBackend):
    """A backend of one's own, built on the memory one: upper-cases every event's data."""

    def __init__(self, url: str, *, buffer: int, queue: int, start: int | str) -> None:
        super().__init__(buffer=buffer, queue=queue, start=start)
        self.url = url

    def publish_many(self, events: Iterable[Publishable]) -> list[str]:
        return super().publish_many(Event(data=str(e).upper()) for e in events)


def test_a_registered_backend_is_chosen_by_its_scheme_and_served(scheme: str) -> None:
    register_backend(scheme, Shouting)
    hub = Hub(backend=f"{scheme}://loud", start=1)
    assert isinstance(hub.store, Shouting)
    assert (hub.backend, backends()[scheme]) == ("mine://loud", f"{__name__}:Shouting")
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub") as reader:
        eid = hub.publish("hello")
        assert [(e.id, e.data) for e in reader.until_id(eid)] == [("1", "HELLO")]
    hub.close()


def test_a_scheme_is_registered_once_unless_replaced(scheme: str) -> None:
    register_backend(scheme, Shouting)
    with pytest.raises(ValueError, match="registered already"):
        register_backend(scheme, MemoryBackend)
    register_backend(scheme, "ssenb.server.hub._memory:MemoryBackend", replace=True)
    assert backends()[scheme] == "ssenb.server.hub._memory:MemoryBackend"
    with pytest.raises(ValueError, match="takes no address"):  # the path resolves when used
        Hub(backend=f"{scheme}://x")


@pytest.mark.parametrize(
    ("scheme", "factory", "error"),
    [
        ("Has Space", MemoryBackend, ValueError),
        ("", MemoryBackend, ValueError),
        ("ok", "no-colon-path", TypeError),
        ("ok", 42, TypeError),
    ],
    ids=["bad-scheme", "empty-scheme", "path-without-name", "not-callable"],
)
def test_registering_nonsense_is_refused(scheme: str, factory: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        register_backend(scheme, factory)
    assert scheme not in backends()


def test_unregistering_a_built_in_scheme_restores_it() -> None:
    register_backend("memory", Shouting, replace=True)
    unregister_backend("memory")
    assert isinstance(Hub().store, MemoryBackend)
    assert backends()["memory"] == "._memory:MemoryBackend"


def test_a_factory_must_make_a_hub_backend(scheme: str) -> None:
    register_backend(scheme, lambda url, **kw: object())
    with pytest.raises(TypeError, match="not a HubBackend"):
        Hub(backend=scheme)


def test_a_backend_missing_part_of_the_interface_fails_when_made(scheme: str) -> None:
    class Incomplete(HubBackend):  # no subscribe, stats, closed, close, ping
        def __init__(self, url: str, **kw: Any) -> None:
            self.url, self.buffer = url, 0

        def publish_many(self, events: Iterable[Publishable]) -> list[str]:
            return []

    register_backend(scheme, Incomplete)
    with pytest.raises(TypeError, match="abstract"):
        Hub(backend=scheme)
