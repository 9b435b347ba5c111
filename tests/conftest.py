"""Shared fixtures: a real uvicorn server on 127.0.0.1 for any ASGI app.

Streaming tests never use httpx's in-memory ASGI transport (it buffers whole responses): they
talk to uvicorn over loopback, in a daemon thread of the test process, on a socket bound before the
server starts (port 0, so parallel runs never collide).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from _apps import App, AppState, make_app

START_TIMEOUT = 10.0


@contextmanager
def run_asgi(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a daemon thread; yield its base URL.

    Waits for `started` (failing fast if the thread dies), and at exit asks the server to
    stop, then forces it after a short grace period so a test never hangs on teardown.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_config": None, "log_level": "warning", "lifespan": "off"}
    options.update(config)
    options.setdefault("timeout_graceful_shutdown", 1)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(3)
        if thread.is_alive():
            server.force_exit = True
            thread.join(3)
        sock.close()


@pytest.fixture
def asgi_server() -> Iterator[Callable[..., str]]:
    """Factory: `url = asgi_server(app)` serves `app` until the test ends."""
    with _Stack() as stack:
        yield stack.serve


class _Stack:
    def __init__(self) -> None:
        self._exits: list[Any] = []

    def serve(self, app: Any, **config: Any) -> str:
        cm = run_asgi(app, **config)
        url = cm.__enter__()
        self._exits.append(cm)
        return url

    def __enter__(self) -> _Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._exits:
            self._exits.pop().__exit__(None, None, None)


@pytest.fixture(scope="module")
def sse_app_server() -> Iterator[App]:
    """The client test app (tests/_apps.py) served once per module: (base URL, its state)."""
    state = AppState()
    with run_asgi(make_app(state)) as url:
        yield url, state


@pytest.fixture
def sse_app(sse_app_server: App) -> App:
    """The served client test app with its recorded requests cleared for this test."""
    url, state = sse_app_server
    state.reset()
    return url, state


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
