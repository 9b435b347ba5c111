"""Security of `ssenb.serve()`: Host check, tokens (`token=True`, `.headers`, browser login
cookie), CORS. Real servers on 127.0.0.1; the runner basics are in test_server_runner.py.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import ssenb
from ssenb.server import ServerHandle
from ssenb.server._security import HostPolicy, _safe_next, split_host

pytestmark = pytest.mark.timeout(60)


def _name() -> str:
    return f"test-sec-{uuid.uuid4().hex[:8]}"


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


def _app() -> Starlette:
    return Starlette(routes=[Route("/hello", hello, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def plain() -> Iterator[ServerHandle]:
    with ssenb.serve(_app(), name=_name()) as h:
        yield h


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerHandle]:
    with ssenb.serve(name=_name(), token="t0p-s3cret-value") as h:
        yield h


def _get(h: ServerHandle, path: str = "/hello", **kw: object) -> httpx.Response:
    return httpx.get(h.url + path, timeout=5, **kw)  # type: ignore[arg-type]


# -- Host header (DNS rebinding) ---------------------------------------------------------------

HOSTS = [
    ("127.0.0.1:{port}", 200),
    ("localhost:{port}", 200),
    ("LocalHost:{port}", 200),
    ("[::1]:{port}", 200),
    ("localhost", 200),
    ("127.0.0.1:8888", 200),  # a proxy forwarding under its own loopback port
    ("evil.example", 421),
    ("evil.example:{port}", 421),
    ("127.0.0.1.nip.io:{port}", 421),
    ("localhost.evil.example:{port}", 421),
    ("10.0.0.5:{port}", 421),
    ("127.0.0.1:notaport", 421),
]


@pytest.mark.parametrize(("host", "status"), HOSTS, ids=[h for h, _ in HOSTS])
def test_only_loopback_host_names_are_answered(plain: ServerHandle, host: str, status: int) -> None:
    response = _get(plain, headers={"Host": host.format(port=plain.port)})
    assert response.status_code == status
    if status == 421:
        assert "allowed_hosts" in response.text


def test_a_request_without_a_host_header_is_refused(plain: ServerHandle) -> None:
    with socket.create_connection(("127.0.0.1", plain.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 421")


ALLOWED = [
    (["hub.example.org"], "hub.example.org:443", 200),
    (["hub.example.org"], "other.example.org", 421),
    (["hub.example.org:8443"], "hub.example.org:8443", 200),
    (["hub.example.org:8443"], "hub.example.org:9999", 421),
    (["*.example.org"], "u1.example.org", 200),
    (["*.example.org"], "example.org.evil.net", 421),
    (["*"], "anything.example", 200),
]


@pytest.mark.parametrize(
    ("allowed", "host", "status"), ALLOWED, ids=[f"{a[0]}-{h}" for a, h, _ in ALLOWED]
)
def test_allowed_hosts_extend_loopback_names(allowed: list[str], host: str, status: int) -> None:
    with ssenb.serve(_app(), name=_name(), allowed_hosts=allowed) as h:
        assert _get(h, headers={"Host": host}).status_code == status
        assert _get(h).status_code == 200  # loopback names still work


def test_allow_remote_without_a_list_answers_any_host() -> None:
    with ssenb.serve(_app(), name=_name(), allow_remote=True) as h:
        assert _get(h, headers={"Host": "notebook.example.org"}).status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.ORG:8000", ("example.org", 8000)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]", ("::1", None)),
        ("localhost.", ("localhost", None)),
        ("host:x", ("host", -1)),
    ],
    ids=["name-port", "ipv6-port", "ipv6", "trailing-dot", "bad-port"],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


def test_allowed_hosts_must_be_names() -> None:
    with pytest.raises(ValueError, match="host names"):
        HostPolicy("127.0.0.1", [""], allow_any=False)
    with pytest.raises(TypeError, match="list of strings"):
        ssenb.serve(_app(), name=_name(), allowed_hosts="hub.example.org")


def _own_non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_a_non_loopback_bind_needs_allow_remote_and_warns_without_a_token() -> None:
    address = _own_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with pytest.raises(ValueError, match="allow_remote"):
        ssenb.serve(_app(), host=address, name=_name())
    with pytest.warns(UserWarning, match="without a token"):
        h = ssenb.serve(_app(), host=address, name=_name(), allow_remote=True)
    with h:
        assert h.url == f"http://{address}:{h.port}"
        assert _get(h).text == "hello"
    with ssenb.serve(_app(), host=address, name=_name(), allow_remote=True, token=True) as h:
        assert _get(h).status_code == 401
        assert _get(h, headers=h.headers).text == "hello"


# -- tokens ----------------------------------------------------------------------------------


def test_token_true_generates_a_strong_token_that_is_never_shown() -> None:
    with ssenb.serve(_app(), name=_name(), token=True) as h:
        scheme, token = h.headers["Authorization"].split(" ")
        assert scheme == "Bearer"
        assert len(token) >= 40
        assert _get(h).status_code == 401
        assert _get(h, headers=h.headers).text == "hello"
        shown = [repr(h), h._repr_html_(), repr(h.headers), str(h.headers), repr(ssenb.status())]
        shown += [ssenb.status()._repr_html_(), h.url, h.browser_url(), *h.logs(200)]
        assert not [text for text in shown if token in text]
        assert "token required" in repr(h)
    with ssenb.serve(_app(), name=_name(), token=True) as other:
        assert other.headers["Authorization"] != f"Bearer {token}"


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", 42], ids=repr)
def test_bad_tokens_are_refused(token: object) -> None:
    with pytest.raises(ValueError, match="token"):
        ssenb.serve(_app(), name=_name(), token=token)  # type: ignore[arg-type]


def test_without_a_token_headers_are_empty_and_browser_url_is_the_page(plain: ServerHandle) -> None:
    assert plain.headers == {}
    assert plain.browser_url() == plain.url + "/"
    assert plain.browser_url("ticks?rate=5") == plain.url + "/ticks?rate=5"


def test_event_source_sends_the_token_on_every_reconnect(guarded: ServerHandle) -> None:
    url = guarded.url + "/flaky?n=12&every=3&retry=10"
    with pytest.raises(ssenb.SSEStatusError):
        list(ssenb.EventSource(url, max_retries=0))
    with ssenb.EventSource(url, headers=guarded.headers) as source:
        ids = [e.id for e in source]
        reconnects = source.reconnects
    assert ids == [str(i) for i in range(1, 13)]
    assert reconnects >= 3  # every reconnect passed the token check


# -- browser login: one-time code -> HttpOnly cookie ----------------------------------------------


def test_browser_url_trades_a_one_time_code_for_an_http_only_cookie(guarded: ServerHandle) -> None:
    token = guarded.headers["Authorization"].split(" ")[1]
    link = guarded.browser_url()
    assert token not in link
    assert link.startswith(guarded.url + "/ssenb-login?code=")
    with httpx.Client(timeout=5) as browser:
        assert browser.get(guarded.url + "/").status_code == 401
        login = browser.get(link)
        assert login.status_code == 303
        assert login.headers["location"] == "./"
        assert login.headers["cache-control"] == "no-store"
        cookie = login.headers["set-cookie"]
        assert cookie.startswith(f"ssenb-{guarded.port}=")
        assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
        assert token not in cookie
        page = browser.get(guarded.url + "/")
        assert page.status_code == 200
        assert "ssenb demo producers" in page.text
        assert token not in page.text
        with browser.stream("GET", guarded.url + "/stream?n=2&interval=0") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert b"[DONE]" in stream.read()
        again = browser.get(link)  # the code works once
        assert again.status_code == 401
        assert "browser_url()" in again.text


def test_an_expired_login_code_is_refused(guarded: ServerHandle) -> None:
    link = guarded.browser_url()
    code = link.rsplit("=", 1)[1]
    guarded._guard._codes[code] = time.monotonic() - 1
    assert httpx.get(link, timeout=5).status_code == 401


def test_a_forged_or_foreign_cookie_is_refused(guarded: ServerHandle) -> None:
    name = f"ssenb-{guarded.port}"
    assert _get(guarded, "/", headers={"Cookie": f"{name}=forged"}).status_code == 401
    with ssenb.serve(_app(), name=_name(), token=True) as other, httpx.Client(timeout=5) as jar:
        assert jar.get(other.browser_url()).status_code == 303
        assert jar.get(other.url + "/hello").text == "hello"
        # cookies ignore ports: the same browser sends the other server's cookie here too
        assert jar.get(guarded.url + "/").status_code == 401


def test_the_cookie_is_found_among_cookies_other_local_apps_set(guarded: ServerHandle) -> None:
    with httpx.Client(timeout=5) as browser:
        browser.get(guarded.browser_url())
        ours = browser.cookies[f"ssenb-{guarded.port}"]
    others = 'username-localhost-8888="2|1:0|10:17|x y"; {"json": 1}; _xsrf=2|ab|cd; a'
    header = f"{others}; ssenb-{guarded.port}={ours}; theme=dark"
    assert _get(guarded, "/", headers={"Cookie": header}).status_code == 200


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/", "./"),
        ("/ticks?rate=5", "./ticks?rate=5"),
        ("//evil.example/x", "./"),
        ("https://evil.example/", "./"),
        ("relative", "./"),
    ],
    ids=["root", "path-and-query", "scheme-relative", "absolute", "not-a-path"],
)
def test_the_login_redirect_stays_on_this_server(target: str, location: str) -> None:
    assert _safe_next(target) == location


def test_browser_url_keeps_the_requested_path(guarded: ServerHandle) -> None:
    link = guarded.browser_url("/?watch=/stream?n=2")
    with httpx.Client(timeout=5) as browser:
        assert browser.get(link).headers["location"] == "./?watch=/stream?n=2"


# -- CORS --------------------------------------------------------------------------------------

ORIGIN = "http://app.example:3000"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 200),
        ("{url}", 200),
        ("http://localhost:3000", 403),
        ("http://evil.example", 403),
        ("null", 403),
    ],
    ids=["no-origin", "same-origin", "other-local-port", "other-site", "null-origin"],
)
def test_unsafe_methods_from_other_origins_are_refused(
    plain: ServerHandle, origin: str | None, status: int
) -> None:
    headers = {} if origin is None else {"Origin": origin.format(url=plain.url)}
    assert httpx.post(plain.url + "/hello", headers=headers, timeout=5).status_code == status
    assert _get(plain, headers=headers).status_code == 200  # reads: CORS decides in browsers


def test_a_listed_proxy_origin_or_a_cors_origin_may_post() -> None:
    with ssenb.serve(_app(), name=_name(), allowed_hosts=["hub.example.org"]) as h:
        posted = httpx.post(
            h.url + "/hello", headers={"Origin": "https://hub.example.org"}, timeout=5
        )
        assert posted.status_code == 200
    with ssenb.serve(_app(), name=_name(), cors_origins=[ORIGIN]) as h:
        assert httpx.post(h.url + "/hello", headers={"Origin": ORIGIN}, timeout=5).text == "hello"


def test_cors_is_off_by_default(plain: ServerHandle) -> None:
    response = _get(plain, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not [k for k in response.headers if k.startswith("access-control-")]
    preflight = httpx.options(plain.url + "/hello", headers=PREFLIGHT, timeout=5)
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_listed_origins_get_their_own_origin_back_never_a_wildcard() -> None:
    with ssenb.serve(_app(), name=_name(), token=True, cors_origins=[ORIGIN]) as h:
        preflight = httpx.options(h.url + "/hello", headers=PREFLIGHT, timeout=5)
        assert preflight.status_code == 204  # preflights carry no credentials
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        allowed = preflight.headers["access-control-allow-headers"]
        assert "authorization" in allowed
        assert "last-event-id" in allowed
        ok = _get(h, headers={"Origin": ORIGIN, **h.headers})
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert ok.headers["vary"] == "Origin"
        denied = _get(h, headers={"Origin": ORIGIN})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == ORIGIN  # so the page can tell
        other = _get(h, headers={"Origin": "http://evil.example", **h.headers})
        assert "access-control-allow-origin" not in other.headers
        other_preflight = {**PREFLIGHT, "Origin": "http://evil.example"}
        refused = httpx.options(h.url + "/hello", headers=other_preflight, timeout=5)
        assert refused.status_code == 403


def test_a_wildcard_origin_is_refused_with_a_token_and_sends_no_credentials_without() -> None:
    with pytest.raises(ValueError, match="credentials"):
        ssenb.serve(_app(), name=_name(), token=True, cors_origins=["*"])
    with ssenb.serve(_app(), name=_name(), cors_origins=["*"]) as h:
        response = _get(h, headers={"Origin": ORIGIN})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


def test_cors_headers_reach_event_streams() -> None:
    with (
        ssenb.serve(name=_name(), cors_origins=[ORIGIN]) as h,
        httpx.stream(
            "GET", h.url + "/stream?n=1&interval=0", headers={"Origin": ORIGIN}, timeout=5
        ) as stream,
    ):
        assert stream.headers["access-control-allow-origin"] == ORIGIN
        assert b"[DONE]" in stream.read()
