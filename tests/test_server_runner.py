"""`ssenb.serve()` / `stop_all()` / `status()`: a background uvicorn that behaves in a notebook.

Start fast and fail fast with the real cause, re-run a cell without leaking, stop within a
second with endless streams open, loopback unless told otherwise, bearer tokens, logs kept
out of the output, registries that survive `importlib.reload(ssenb)`.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import ssenb
from ssenb.server import ServerHandle


def _name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _server_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"ssenb-server-{name}"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


def _app() -> Starlette:
    return Starlette(routes=[Route("/hello", hello)])


@pytest.fixture
def handle() -> Iterator[ServerHandle]:
    with ssenb.serve(_app(), name=_name()) as h:
        yield h


# -- starting ------------------------------------------------------------------------------


def test_serve_starts_fast_on_loopback_and_describes_itself(handle: ServerHandle) -> None:
    assert handle.url == f"http://127.0.0.1:{handle.port}"
    assert not handle.url.endswith("/")
    assert handle.port > 0
    assert httpx.get(handle.url + "/hello", timeout=5).text == "hello"
    assert handle.running
    text = repr(handle)
    assert handle.name in text
    assert handle.url in text
    assert "running" in text
    assert handle.url in handle._repr_html_()
    assert len(_server_threads(handle.name)) == 1
    assert _server_threads(handle.name)[0].daemon


def test_the_default_app_is_the_demo_app() -> None:
    with ssenb.serve(name=_name()) as h:
        assert isinstance(h.app, FastAPI)
        assert httpx.get(h.url + "/stream?n=1&interval=0", timeout=5).status_code == 200


def test_app_is_live_so_routes_added_later_are_served() -> None:
    app = FastAPI()
    with ssenb.serve(app, name=_name()) as h:
        assert h.app is app
        assert httpx.get(h.url + "/late", timeout=5).status_code == 404
        app.add_api_route("/late", lambda: {"ok": True})
        assert httpx.get(h.url + "/late", timeout=5).json() == {"ok": True}


def test_a_busy_port_fails_at_once_with_the_os_error(handle: ServerHandle) -> None:
    started = time.monotonic()
    with pytest.raises(OSError, match="in use"):
        ssenb.serve(_app(), port=handle.port, name=_name())
    assert time.monotonic() - started < 1.0


def test_an_app_failing_at_startup_raises_its_real_cause() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise ValueError("database unreachable")
        yield

    name = _name()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="failed to start: ValueError: database unreachable"):
        ssenb.serve(FastAPI(lifespan=lifespan), name=name)
    assert time.monotonic() - started < 2.0
    assert name not in [r.name for r in ssenb.status().servers]
    assert _wait_until(lambda: not _server_threads(name), 2.0)


@pytest.mark.parametrize("host", ["192.0.2.10", "example.com", "::"], ids=str)
def test_non_loopback_hosts_need_allow_remote(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote=True"):
        ssenb.serve(_app(), host=host, name=_name())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=str)
def test_loopback_hosts_are_fine_without_allow_remote(host: str) -> None:
    with ssenb.serve(_app(), host=host, name=_name()) as h:
        assert httpx.get(h.url + "/hello", timeout=5).text == "hello"


# -- re-running a cell -------------------------------------------------------------------------


def test_serving_a_name_again_replaces_the_old_server_on_the_same_port() -> None:
    name = _name()
    first = ssenb.serve(_app(), name=name)
    second = ssenb.serve(_app(), name=name)
    try:
        assert not first.running
        assert second.running
        assert second.port == first.port
        assert len(_server_threads(name)) == 1
        assert httpx.get(second.url + "/hello", timeout=5).text == "hello"
    finally:
        second.stop()


def test_twenty_start_stop_cycles_leak_no_threads_or_ports() -> None:
    before = {t.ident for t in threading.enumerate()}
    ports = set()
    for _ in range(20):
        with ssenb.serve(_app(), name=_name()) as h:
            ports.add(h.port)
    assert _wait_until(lambda: {t.ident for t in threading.enumerate()} <= before, 2.0)
    assert all(_port_is_free(p) for p in ports)


# -- stopping ----------------------------------------------------------------------------------


def test_stop_returns_quickly_with_endless_streams_open() -> None:
    h = ssenb.serve(name=_name())
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=5))
        streams = [
            stack.enter_context(client.stream("GET", h.url + "/ticks?rate=20")) for _ in range(3)
        ]
        firsts = [next(s.iter_raw()) for s in streams]
        started = time.monotonic()
        h.stop()
        took = time.monotonic() - started
    assert all(b"id: 1" in f for f in firsts)
    assert took < 1.5, took
    assert _port_is_free(h.port)
    assert not _server_threads(h.name)
    assert "stopped" in repr(h)


def test_stop_all_stops_every_server_and_reports_how_many() -> None:
    handles = [ssenb.serve(_app(), name=_name()) for _ in range(2)]
    assert ssenb.stop_all() >= 2
    assert not any(h.running for h in handles)
    assert not ssenb.status().servers


def test_stop_is_idempotent(handle: ServerHandle) -> None:
    handle.stop()
    handle.stop()
    assert not handle.running


# -- tokens and logs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "s3cret-token"}, 401),
        ({"Authorization": "Bearer s3cret-token"}, 200),
    ],
    ids=["no-header", "wrong-token", "not-bearer", "right-token"],
)
def test_a_token_is_required_on_every_request(headers: dict[str, str], status: int) -> None:
    with ssenb.serve(_app(), name=_name(), token="s3cret-token") as h:
        response = httpx.get(h.url + "/hello", headers=headers, timeout=5)
        assert response.status_code == status
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
        assert "s3cret" not in h.url
        assert "s3cret" not in repr(h)
        assert "s3cret" not in h._repr_html_()
        assert not any("s3cret" in line for line in h.logs(100))


def test_server_logs_never_reach_stdout_or_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with ssenb.serve(name=_name()) as h:
        with contextlib.suppress(httpx.RemoteProtocolError):
            httpx.get(h.url + "/flaky?n=10&every=2", timeout=5)  # aborts on purpose
        httpx.get(h.url + "/nowhere", timeout=5)
        lines = h.logs()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert any("Uvicorn running" in line or "Application startup" in line for line in lines)


def test_errors_in_endpoints_are_kept_in_the_log_and_counted_in_the_repr() -> None:
    def broken() -> None:
        raise ZeroDivisionError("oops in an endpoint")

    app = FastAPI()
    app.add_api_route("/broken", broken)
    with ssenb.serve(app, name=_name()) as h:
        assert "error" not in repr(h)
        assert httpx.get(h.url + "/broken", timeout=5).status_code == 500
        assert _wait_until(lambda: "1 error logged" in repr(h), 2.0)  # logged after the 500
        assert any("oops in an endpoint" in line for line in h.logs())


# -- status and reload -------------------------------------------------------------------------


def test_status_lists_running_servers_in_text_and_html(handle: ServerHandle) -> None:
    report = ssenb.status()
    rows = [r for r in report.servers if r.name == handle.name]
    assert rows
    assert rows[0].url == handle.url
    assert "running" in rows[0].state
    assert handle.name in repr(report)
    assert handle.url in repr(report)
    assert handle.name in report._repr_html_()


def test_status_escapes_names_in_html() -> None:
    name = "<b>x</b>"
    with ssenb.serve(_app(), name=name):
        page = ssenb.status()._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page


def test_status_lists_registered_subscriptions() -> None:
    from ssenb import _state

    class OtherSubscription:  # anything with the runtime's SubscriptionLike surface
        name = ""  # empty: the type's name is shown
        url = "http://127.0.0.1:1/ticks"
        status = "running"

        def stop(self) -> None:
            pass

    sub = OtherSubscription()
    _state.register_subscription(sub)
    try:
        rows = ssenb.status().subscriptions
        assert ("OtherSubscription", sub.url, "running") in [(r.name, r.url, r.state) for r in rows]
    finally:
        _state.unregister_subscription(sub)
    assert sub.url not in [r.url for r in ssenb.status().subscriptions]


def test_servers_survive_reloading_the_package(handle: ServerHandle) -> None:
    importlib.reload(ssenb)
    assert handle.name in [r.name for r in ssenb.status().servers]
    assert ssenb.stop_all() >= 1
    assert not handle.running


def _wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return bool(check())


KERNEL_CELLS = [
    "import ssenb, httpx\nh = ssenb.serve()\nfirst = h.port\nh",
    "h = ssenb.serve()\nassert h.port == first\nh",
    "try:\n    httpx.get(h.url + '/flaky?n=10&every=2')\n"
    "except httpx.RemoteProtocolError:\n    pass",
    "httpx.get(h.url + '/nowhere').status_code",
    "import threading\nsorted(t.name for t in threading.enumerate() if t.name.startswith('ssenb'))",
    "ssenb.stop_all()",
]


def test_in_a_kernel_cells_rerun_cleanly_and_server_logs_print_nothing() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type in ("stream", "error")]
    results = [o["data"]["text/plain"] for o in outputs]
    assert "running" in results[0]
    assert results[1] == results[0]  # same name, same port, replaced in place
    assert results[2] == "404"
    assert results[3] == "['ssenb-server-demo']"
    assert results[4] == "1"
