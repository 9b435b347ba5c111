"""Behind jupyter-server-proxy: `browser_url()`, the `/` page and the Host check.

A real Jupyter server with jupyter-server-proxy maps `/proxy/<port>/` to an ssenb server on
127.0.0.1. Chromium reaches the Jupyter server under a name that is not loopback
(`hub.test`, mapped to 127.0.0.1 by `--host-resolver-rules`), as a browser reaches a
JupyterHub: the proxy forwards that `Host`, so only `serve(proxy=...)` lets the request in.
The page's own EventSource reads a cut stream through the proxy across reconnects, resuming
with Last-Event-ID (no id lost or repeated). The cut comes after the proxy has passed the first
events on: jupyter-server-proxy answers 599 when the upstream connection ends before it
forwarded anything (as `/flaky`'s instant cuts do), and a browser's EventSource never retries
a non-200 answer (docs/hosted.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from _browser import browser_page, free_port, jupyter_server, poll, screenshot, server_args
from fastapi import Request, Response

import ssenb
from ssenb import Event
from ssenb.server._basic import numbered
from ssenb.server._proxy import is_proxied, resolve_base
from ssenb.server._response import AbortConnection

HUB = "hub.test"
TOKEN = "ssenb-proxy-token"


@pytest.mark.parametrize(
    ("proxy", "env", "installed", "expected"),
    [
        pytest.param(None, "/user/me/", True, None, id="None-never"),
        pytest.param("auto", "", True, None, id="auto-outside-a-hub"),
        pytest.param("auto", "/user/me/", True, "/user/me/proxy/8123/", id="auto-on-a-hub"),
        pytest.param("auto", "/user/me/", False, None, id="auto-without-the-proxy-package"),
        pytest.param("/proxy/{port}", "", True, "/proxy/8123/", id="path-template"),
        pytest.param(
            "https://hub.example.org/user/me/proxy/{port}/",
            "",
            True,
            "https://hub.example.org/user/me/proxy/8123/",
            id="url-template",
        ),
    ],
)
def test_resolve_base(
    monkeypatch: pytest.MonkeyPatch, proxy: str | None, env: str, installed: bool, expected: str
) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", env)
    monkeypatch.setattr("ssenb.server._proxy._proxy_installed", lambda: installed)
    assert resolve_base(proxy, 8123) == expected


@pytest.mark.parametrize(
    "bad", [pytest.param("/proxy/", id="no-port"), pytest.param("proxy/{port}", id="relative")]
)
def test_resolve_base_refuses_bad_templates(bad: str) -> None:
    with pytest.raises(ValueError, match="proxy template"):
        resolve_base(bad, 1)


@pytest.mark.parametrize(
    ("client", "prefix", "expected"),
    [
        pytest.param("127.0.0.1", "/proxy/8123", True, id="proxy-root"),
        pytest.param("127.0.0.1", "/user/me/proxy/8123/", True, id="hub-prefix"),
        pytest.param("::1", "/proxy/8123", True, id="ipv6-loopback-peer"),
        pytest.param("127.0.0.1", "/proxy/81234", False, id="another-port"),
        pytest.param("127.0.0.1", "/proxy/9", False, id="another-server"),
        pytest.param("127.0.0.1", "", False, id="no-header"),
        pytest.param("10.0.0.5", "/proxy/8123", False, id="remote-peer"),
    ],
)
def test_is_proxied(client: str, prefix: str, expected: bool) -> None:
    headers = [(b"x-forwarded-prefix", prefix.encode())] if prefix else []
    scope = {"type": "http", "client": (client, 5000), "headers": headers}
    assert is_proxied(scope, 8123) is expected


def test_browser_url_goes_through_the_proxy_on_a_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/me/")
    monkeypatch.setattr("ssenb.server._proxy._proxy_installed", lambda: True)
    with ssenb.serve(name="test-proxy-auto", token=True) as h:
        assert h.browser_base == f"/user/me/proxy/{h.port}/"
        assert h.browser_url().startswith(f"/user/me/proxy/{h.port}/ssenb-login?code=")
        assert h.browser_url("/ticks").endswith("&next=/ticks")
        assert h.url.startswith("http://127.0.0.1:")  # the kernel's own address is unchanged
    with ssenb.serve(name="test-proxy-off", proxy=None) as h:
        assert h.browser_base is None
        assert h.browser_url("/ticks") == h.url + "/ticks"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Jupyter server with jupyter-server-proxy on 127.0.0.1, answering any Host name."""
    pytest.importorskip("jupyter_server_proxy")
    scratch = tmp_path_factory.mktemp("proxy")
    port = free_port()
    cmd = [
        "jupyter-server",
        *server_args(port, TOKEN, scratch),
        "--ServerApp.allow_remote_access=True",  # Jupyter's own check: Host hub.test is fine
    ]
    url = f"http://127.0.0.1:{port}"
    with jupyter_server(
        "Jupyter", cmd, scratch, cwd=scratch, ready=f"{url}/api/status?token={TOKEN}"
    ):
        yield url


@pytest.mark.parametrize(
    ("proxy", "status"),
    [
        pytest.param(None, 421, id="proxy=None-refused"),
        pytest.param("/proxy/{port}/", 200, id="proxy-set-accepted"),
    ],
)
def test_host_check_accepts_the_proxied_hub_name_only_with_a_proxy(
    jupyter: str, proxy: str | None, status: int
) -> None:
    with ssenb.serve(name="test-proxy-host", proxy=proxy) as h:
        via = httpx.get(
            f"{jupyter}/proxy/{h.port}/openapi.json",
            params={"token": TOKEN},
            headers={"Host": f"{HUB}:80"},
            timeout=20,
        )
        assert via.status_code == status
        # the same name sent straight to the server (no proxy in between) stays refused,
        # also when the prefix header names another port
        direct = httpx.get(
            h.url + "/openapi.json",
            headers={"Host": HUB, "X-Forwarded-Prefix": "/proxy/1"},
            timeout=10,
        )
        assert direct.status_code == 421


async def _paced_cuts(first: int, n: int, every: int) -> AsyncIterator[Event]:
    """Events 1..n, 50 ms apart; the connection is cut after every `every` events."""
    for k, i in enumerate(range(first, n + 1)):
        if k == every:
            await asyncio.sleep(0.2)
            raise AbortConnection(f"cut after {every} events")
        await asyncio.sleep(0.05)
        yield Event(data=str(i), id=str(i), retry=100 if k == 0 else None)
    yield Event(data="[DONE]")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_demo_page_through_the_proxy_streams_and_resumes_with_last_event_id(
    jupyter: str,
) -> None:
    n, every = 24, 5
    origin = jupyter.replace("127.0.0.1", HUB)
    resolve = f"--host-resolver-rules=MAP {HUB} 127.0.0.1"

    async def cuts(request: Request) -> Response:
        return numbered(request, n, lambda first: _paced_cuts(first, n, every))

    app = ssenb.demo_app()
    app.add_api_route("/cuts", cuts)
    with (
        browser_page(width=1280, height=720, args=[resolve]) as page,
        ssenb.serve(app, name="test-proxy-page", token=True, proxy="/proxy/{port}/") as h,
    ):
        page.set_default_timeout(30_000)
        page.goto(f"{origin}/api/status?token={TOKEN}")  # Jupyter's own login cookie
        link = h.browser_url()
        assert link.startswith(f"/proxy/{h.port}/ssenb-login?code=")
        page.goto(origin + link, wait_until="domcontentloaded")
        assert page.url == f"{origin}/proxy/{h.port}/"
        assert page.title() == "ssenb demo producers"
        poll(page, "() => window.ssenb.events.length >= 5", timeout=60)
        first = page.evaluate("() => window.ssenb.events.slice(0, 5).map(e => e.id)")
        assert first == ["1", "2", "3", "4", "5"]
        page.evaluate("() => window.ssenb.open('cuts')")
        poll(page, "() => window.ssenb.state === 'done'", timeout=90)
        events = page.evaluate("() => window.ssenb.events")
        opens = page.evaluate("() => window.ssenb.opens")
        screenshot(page, "proxy-demo-cuts")
    ids = [e["id"] for e in events if e["data"] != "[DONE]"]
    assert ids == [str(i) for i in range(1, n + 1)]  # resumed with Last-Event-ID each time
    assert (n - 1) // every + 1 <= opens <= n
