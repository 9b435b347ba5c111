"""`Guard`: one pure-ASGI wrapper for a served app: Host check, CORS, token, browser login.

Order per request: the Host header must name an allowed host (DNS rebinding defence, 421
otherwise; behind jupyter-server-proxy, see `_proxy.is_proxied`); a CORS preflight from an
allowed origin is answered; a POST (or other unsafe method) from a page of another origin
that CORS does not allow gets 403 (CSRF);
`/ssenb-login?code=...` trades a one-time code for an HttpOnly, SameSite=Strict session
cookie and redirects to `./`; then, when a token is set, the request needs
`Authorization: Bearer <token>` or that cookie (401 otherwise). The token itself never goes
into a URL, a cookie, a log line or a repr.
Pure ASGI rather than BaseHTTPMiddleware, which hides client disconnects from streams.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._proxy import is_proxied

__all__ = ["LOGIN_PATH", "Guard", "HostPolicy", "SecretHeaders", "split_host"]

LOGIN_PATH = "/ssenb-login"
CODE_TTL = 120.0  # seconds a browser_url() login link stays valid
_MAX_CODES = 32
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_CORS_HEADERS = b"authorization, last-event-id, content-type, cache-control"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_CROSS_ORIGIN = b'{"detail":"cross-origin request refused; serve(cors_origins=[...]) allows one"}'


def split_host(value: str) -> tuple[str, int | None]:
    """`"Example.org:8000"` -> `("example.org", 8000)`; `"[::1]"` -> `("::1", None)`."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        name, rest = (value[1:end], value[end + 1 :]) if end > 0 else (value, "")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        name, _, tail = value.partition(":")
        port = int(tail) if tail.isdigit() else -1
    else:
        name = value
    return name.rstrip("."), port


def _is_loopback_name(name: str) -> bool:
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Which `Host` header values a server answers.

    Loopback names (localhost, 127.0.0.0/8, ::1) on any port are always fine: a rebinding
    page is served under its own name, never under a loopback one, and proxies often forward
    `Host: localhost:<their port>`. `allowed` adds names (`"hub.example.org"`, any port),
    exact `"name:port"` pairs, `"*.example.org"` suffixes, or `"*"` (no check).
    `allowed=None` with `allow_any=True` (a remote bind without a list) turns the check off.
    """

    def __init__(self, bound: str, allowed: Iterable[str] | None, *, allow_any: bool) -> None:
        self.bound = split_host(bound)[0]
        self.names: set[str] = set()
        self.pairs: set[tuple[str, int | None]] = set()
        self.suffixes: list[str] = []
        self.any = allow_any and allowed is None
        for entry in allowed or ():
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(f"allowed_hosts entries must be host names, not {entry!r}")
            if entry.strip() == "*":
                self.any = True
            elif entry.startswith("*."):
                self.suffixes.append(entry[1:].lower())
            else:
                name, port = split_host(entry)
                if port is None:
                    self.names.add(name)
                else:
                    self.pairs.add((name, port))

    def lists(self, value: str) -> bool:
        """True when `allowed_hosts` names this host explicitly (not "*", not loopback)."""
        name, port = split_host(value)
        if name in self.names or (name, port) in self.pairs:
            return True
        return any(name.endswith(s) for s in self.suffixes)

    def allows(self, value: str) -> bool:
        """True when this `Host` header value may be answered."""
        if self.any:
            return True
        name, port = split_host(value)
        if not name or port == -1:
            return False
        if _is_loopback_name(name) or name == self.bound or name in self.names:
            return True
        return (name, port) in self.pairs or any(name.endswith(s) for s in self.suffixes)


class SecretHeaders(dict[str, str]):
    """A plain dict of headers whose repr hides the values (safe to display in a cell)."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '<hidden>'" for k in self) + "}"


def _header(scope: Scope, name: bytes) -> bytes:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value
    return b""


async def _answer(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Pure ASGI guard in front of a served app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostPolicy,
        token: str | None = None,
        cors_origins: Iterable[str] | None = None,
        cookie_name: str = "ssenb",
        proxy_port: int | None = None,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.proxy_port = proxy_port  # set: requests jupyter-server-proxy forwards pass
        self._bearer = None if token is None else f"Bearer {token}".encode()
        self._session = secrets.token_urlsafe(32).encode()  # the cookie value, not the token
        self._codes: OrderedDict[str, float] = OrderedDict()
        self.cookie_name = cookie_name
        origins = [o.rstrip("/") for o in cors_origins or ()]
        if "*" in origins and token is not None:
            raise ValueError("cors_origins=['*'] cannot be combined with a token (credentials)")
        self.cors_any = "*" in origins
        self.cors = frozenset(o.lower() for o in origins if o != "*")

    @property
    def token_required(self) -> bool:
        return self._bearer is not None

    def new_code(self) -> str:
        """A one-time login code for `browser_url()`, valid for `CODE_TTL` seconds."""
        code = secrets.token_urlsafe(24)
        self._codes[code] = time.monotonic() + CODE_TTL
        while len(self._codes) > _MAX_CODES:
            self._codes.popitem(last=False)
        return code

    def _take_code(self, code: str) -> bool:
        expires = self._codes.pop(code, None)
        return expires is not None and time.monotonic() < expires

    def _authorized(self, scope: Scope) -> bool:
        if self._bearer is None:
            return True
        if hmac.compare_digest(_header(scope, b"authorization"), self._bearer):
            return True
        # split by hand: http.cookies stops at the first cookie it dislikes, and other apps
        # on localhost (Jupyter among them) set cookies it dislikes
        prefix = self.cookie_name.encode() + b"="
        for part in _header(scope, b"cookie").split(b";"):
            part = part.strip()
            if part.startswith(prefix) and hmac.compare_digest(part[len(prefix) :], self._session):
                return True
        return False

    def _cors_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        if not origin:
            return []
        if self.cors_any:
            return [(b"access-control-allow-origin", b"*")]
        if origin.decode("latin-1").lower() in self.cors:
            return [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        return []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host").decode("latin-1")
        if not self.hosts.allows(host) and not (
            self.proxy_port is not None and is_proxied(scope, self.proxy_port)
        ):
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            body = b'{"detail":"host not allowed; serve(allowed_hosts=[...]) adds names"}'
            await _answer(send, 421, body)
            return
        if kind == "websocket":
            if not self._authorized(scope):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        cors = self._cors_headers(_header(scope, b"origin")) if self.cors or self.cors_any else []
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(send, cors)
            return
        if scope["method"] not in _SAFE and not cors and not self._same_origin(scope, host):
            await _answer(send, 403, _CROSS_ORIGIN)
            return
        if scope["path"] == LOGIN_PATH:
            await self._login(scope, send)
            return
        if not self._authorized(scope):
            body = b'{"detail":"missing or wrong bearer token"}'
            await _answer(send, 401, body, [(b"www-authenticate", b"Bearer"), *cors])
            return
        if not cors:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _same_origin(self, scope: Scope, host: str) -> bool:
        """No `Origin` (not a browser), this server's own, or a name listed in allowed_hosts.

        Refuses what SameSite cannot: pages on other localhost ports are the same *site*.
        """
        origin = _header(scope, b"origin").decode("latin-1")
        if not origin:
            return True
        netloc = urlsplit(origin).netloc.lower()
        if not netloc:  # "null": sandboxed frames, file pages
            return False
        if netloc == host.strip().lower():
            return True
        return not _is_loopback_name(split_host(netloc)[0]) and self.hosts.lists(netloc)

    async def _preflight(self, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        if not cors:  # CORS off, or an origin not on the list: no CORS headers at all
            await _answer(send, 403, b'{"detail":"origin not allowed"}')
            return
        headers = [
            *cors,
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", _CORS_HEADERS),
            (b"access-control-max-age", b"600"),
        ]
        await _answer(send, 204, b"", headers)

    async def _login(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        code = (query.get("code") or [""])[0]
        target = _safe_next((query.get("next") or ["/"])[0])
        if self._bearer is not None and not self._take_code(code):
            body = b'{"detail":"login link used or expired; call handle.browser_url() again"}'
            await _answer(send, 401, body)
            return
        headers = [(b"location", target.encode()), (b"cache-control", b"no-store")]
        if self._bearer is not None:
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            cookie = (
                f"{self.cookie_name}={self._session.decode()}; Path=/; HttpOnly; "
                f"SameSite=Strict{secure}"
            )
            headers.append((b"set-cookie", cookie.encode()))
        await _answer(send, 303, b"", headers)


def _safe_next(path: str) -> str:
    """A redirect target relative to the login path (works behind a proxy prefix)."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        path = "/"
    return "./" + path.lstrip("/")
