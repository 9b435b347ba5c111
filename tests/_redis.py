"""A real `redis-server` for the Redis hub tests: a throwaway server on a free loopback port
(no persistence, restartable), and `ssenb serve --hub` child processes.

`require_redis_server()` skips a test module when `redis-server` is not installed, except on
CI (`CI` set), where that fails: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from _procs import ssenb_serve

from ssenb import Hub
from ssenb.server.hub._redis import RedisBackend

REDIS_SERVER = shutil.which("redis-server")


def require_redis_server() -> None:
    """Call at module level: skip (fail on CI) without a `redis-server`."""
    pytest.importorskip("redis")
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI installs it: .ci/run)", pytrace=False)
        pytest.skip("redis-server is not installed", allow_module_level=True)


class RedisProc:
    """A throwaway `redis-server` on 127.0.0.1 (no persistence), restartable on its port."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, stream: str | None = None) -> str:
        """The hub URL of `stream` (a fresh stream name by default)."""
        stream = stream or f"t-{uuid.uuid4().hex[:8]}"
        return f"redis://127.0.0.1:{self.port}/0?stream={stream}"

    def hub(self, **kwargs: Any) -> Hub:
        """A `Hub` on a fresh stream of this server."""
        hub = Hub(backend=self.url(), **kwargs)
        assert isinstance(hub.store, RedisBackend)
        return hub

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--maxclients", "4000"]  # fmt: skip
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProc]:
    server = RedisProc(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    """A redis-server of this test's own (the test stops and restarts it)."""
    server = RedisProc(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def store(hub: Hub) -> RedisBackend:
    """The Redis backend of `hub` (its stream, its sync client, its reader)."""
    backend = hub.store
    assert isinstance(backend, RedisBackend)
    return backend


def serve_process(hub_url: str) -> AbstractContextManager[str]:
    """`ssenb serve --port 0 --hub URL` as a child process; yields its base URL."""
    return ssenb_serve("--hub", hub_url)
