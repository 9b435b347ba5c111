"""`serve()`: uvicorn on a loop thread of its own, safe to re-run in a cell.

The recipe (research/jupyter.md section 1): the socket is bound here, in the caller's thread,
with SO_REUSEADDR, so a busy port fails at once with the OS error and port 0 is known before
the thread starts; `uvicorn.Server.serve(sockets=[sock])` runs on a runtime `LoopThread`
named `ssenb-server-<name>` (its own, so a busy server never delays the consumers on the
shared loop); `serve()` waits for `started` while checking that serving has not ended, so an
app that fails at startup raises its real cause in the cell instead of timing out. `stop()`
first ends every open event stream cooperatively (they finish in one loop turn), then asks
uvicorn to exit, and forces it after a second. Servers are kept by name in the runtime's
registry (`ssenb._state`), so re-running a cell replaces the old server (same port when it
is free) instead of leaking it, and an `atexit` hook stops them all. Every request passes
`_security.Guard` first (Host check, optional CORS, optional token with a browser login
cookie). uvicorn's log lines go to an in-memory buffer (`handle.logs()`), never to stderr,
where they would land in whichever cell happens to be running.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import html
import ipaddress
import logging
import secrets
import socket
import time
import urllib.parse
import warnings
from collections.abc import Iterable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from .. import _state
from .._runtime import LoopThread
from ._guards import CatchLifespan
from ._logs import LogBuffer, install_log_buffer
from ._proxy import AUTO, resolve_base
from ._response import open_streams, stop_streams
from ._security import LOGIN_PATH, Guard, HostPolicy, SecretHeaders

__all__ = ["ServerHandle", "serve", "stop_all"]

_START_TIMEOUT = 15.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ServerHandle:
    """A running (or stopped) background server: `.url`, `.app`, `.stop()`, `with`.

    `.app` is the served ASGI app itself, so routes added to it later are live at once.
    With a token, `.headers` is the `Authorization` header for `EventSource(headers=...)`
    and `.browser_url()` a one-time link that logs a browser in with a cookie.
    """

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        name: str,
        token: str | None,
        allowed_hosts: Iterable[str] | None = None,
        allow_any_host: bool = False,
        cors_origins: Iterable[str] | None = None,
        proxy: str | None = None,
    ):
        self.app = app
        self.name = name
        self.host, self.port = sock.getsockname()[:2]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        #: where a browser reaches this server ("<base_url>proxy/<port>/" behind
        #: jupyter-server-proxy), or None when it uses `url` directly
        self.browser_base = resolve_base(proxy, self.port)
        self.started_at = time.time()
        self.error: BaseException | None = None
        self._token_set = token is not None
        self._headers = SecretHeaders({} if token is None else {"Authorization": f"Bearer {token}"})
        self._lifespan = CatchLifespan(app)
        self._guard = Guard(
            self._lifespan,
            hosts=HostPolicy(self.host, allowed_hosts, allow_any=allow_any_host),
            token=token,
            cors_origins=cors_origins,
            cookie_name=f"ssenb-{self.port}",  # cookies ignore ports: one name per server
            proxy_port=None if self.browser_base is None else self.port,
        )
        config = uvicorn.Config(
            self._guard,
            log_config=None,
            log_level="info",
            access_log=False,
            loop="asyncio",
            lifespan="auto",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._stopped = False
        self._thread = LoopThread(f"ssenb-server-{name}")
        self._serving: concurrent.futures.Future[None] | None = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        """The server's loop while it serves (tests run probes on it)."""
        return self._thread.loop

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._sock])
        except (Exception, SystemExit) as exc:  # startup failure is SystemExit(3): keep it
            self.error = exc
        finally:
            self._sock.close()

    def _start(self) -> None:
        serving = self._serving = self._thread.submit(self._serve())
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if serving.done():
                self._stopped = True
                self._thread.stop()
                raise self._startup_error()
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server {self.name!r} did not start in {_START_TIMEOUT} s")
            time.sleep(0.005)

    def _startup_error(self) -> RuntimeError:
        cause: BaseException | None = self._lifespan.error
        for record in reversed(self.logs_records()):
            if cause is None and record.exc_info and record.exc_info[1] is not None:
                cause = record.exc_info[1]
                break
        cause = cause or self.error
        lines = [r.getMessage() for r in self.logs_records() if r.levelno >= logging.ERROR]
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else "unknown cause"
        err = RuntimeError(f"server {self.name!r} failed to start: {detail}")
        err.__cause__ = cause
        if lines and not isinstance(cause, Exception):
            err.add_note("\n".join(lines[-5:]))
        return err

    @property
    def headers(self) -> dict[str, str]:
        """Headers every request needs (`{}` without a token); pass to `EventSource(headers=)`.

        Its repr hides the token, so showing it in a cell does not save it in the notebook.
        """
        return SecretHeaders(self._headers)

    def browser_url(self, path: str = "/") -> str:
        """A URL for a browser: opens `path` (default the live page at `/`).

        With a token it is a one-time login link (valid two minutes): it sets an HttpOnly,
        SameSite=Strict cookie and redirects to `path`, so the page and the browser's native
        `EventSource` work. The link holds a single-use code, never the token. Behind
        jupyter-server-proxy (`serve(proxy=...)`, see `browser_base`) the link goes through
        the proxy: `<base_url>proxy/<port>/...`, a path on the Jupyter server's own origin.
        """
        if not path.startswith("/"):
            path = "/" + path
        base = self.url + "/" if self.browser_base is None else self.browser_base
        if not self._token_set:
            return base + path[1:]
        code = self._guard.new_code()
        nxt = "" if path == "/" else "&next=" + urllib.parse.quote(path, safe="/")
        return f"{base}{LOGIN_PATH[1:]}?code={code}{nxt}"

    @property
    def running(self) -> bool:
        """True while the server thread is alive and serving."""
        serving = self._serving
        return (
            serving is not None
            and not serving.done()
            and self._server.started
            and not self._stopped
        )

    @property
    def streams(self) -> int:
        """Number of event streams open right now."""
        loop = self._loop
        return open_streams(loop) if loop is not None and self.running else 0

    def logs_records(self) -> list[logging.LogRecord]:
        """This server's log records (uvicorn's and ssenb's), oldest first."""
        handler = _state.flags.get("log_buffer")
        records = list(handler.records) if isinstance(handler, LogBuffer) else []
        return [r for r in records if r.threadName == self._thread.name]

    def logs(self, n: int = 50) -> list[str]:
        """The last `n` log lines of this server, formatted."""
        handler = _state.flags.get("log_buffer")
        if not isinstance(handler, LogBuffer):
            return []
        return [handler.format(r) for r in self.logs_records()[-n:]]

    def stop(self) -> None:
        """End open streams, stop uvicorn and its loop thread (about 0.3 s; forced after 1 s)."""
        self._stopped = True
        _state.unregister_server(self.name, self)
        loop, serving = self._loop, self._serving
        if loop is None or serving is None:
            self._thread.stop()
            return
        if not serving.done():
            try:
                loop.call_soon_threadsafe(stop_streams, loop)
            except RuntimeError:  # the loop already closed
                pass
            self._server.should_exit = True
            try:
                serving.result(1.0)
            except concurrent.futures.TimeoutError:
                self._server.force_exit = True
                try:
                    serving.result(2.0)
                except concurrent.futures.TimeoutError:
                    pass
            except Exception:  # kept in self.error by _serve
                pass
        self._thread.stop(2.0)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def status(self) -> str:
        """What `ssenb.status()` shows: "running, N open streams", "stopped" or "died: ..."."""
        return self._state_text()

    def _state_text(self) -> str:
        if self.running:
            n = self.streams
            text = f"running, {n} open stream{'s' if n != 1 else ''}"
            errors = sum(1 for r in self.logs_records() if r.levelno >= logging.ERROR)
            if errors:
                text += f", {errors} error{'s' if errors != 1 else ''} logged (see .logs())"
            return text
        if self.error is not None and not isinstance(self.error, SystemExit):
            return f"died: {type(self.error).__name__}: {self.error}"
        return "stopped"

    def __repr__(self) -> str:
        auth = ", token required" if self._token_set else ""
        return f"<ssenb server {self.name!r} at {self.url} {self._state_text()}{auth}>"

    def _repr_html_(self) -> str:
        name, url = html.escape(self.name), html.escape(self.url)
        href = html.escape(self.browser_base or self.url + "/", quote=True)
        link = f'<a href="{href}" target="_blank">{url}</a>' if self.running else url
        return (
            f"<div style='font-family:monospace'><b>ssenb server</b> {name} at {link}: "
            f"{html.escape(self._state_text())}</div>"
        )


def serve(
    app: ASGIApp | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str = "demo",
    allow_remote: bool = False,
    token: str | bool | None = None,
    allowed_hosts: Iterable[str] | None = None,
    cors_origins: Iterable[str] | None = None,
    proxy: str | None = AUTO,
) -> ServerHandle:
    """Serve `app` (default: a fresh `demo_app()`) in a background thread; returns a handle.

    Binds loopback only unless `allow_remote=True`. `port=0` picks a free port, or reuses the
    port of the server this one replaces (same `name`) when it is free. Requests whose `Host`
    is not a loopback name get 421 (DNS rebinding); `allowed_hosts` adds names, such as a
    proxy's (`"*"` turns the check off; `allow_remote=True` without a list allows any). With
    `token` (`True` generates one), every request needs `Authorization: Bearer <token>`
    (`handle.headers`) or the cookie set by `handle.browser_url()` (401 otherwise). CORS is
    off unless `cors_origins` lists origins (`["*"]` only without a token). Raises `OSError`
    for a busy port and `RuntimeError` (with the app's own exception as cause) when startup
    fails. `proxy` says how a browser reaches the server through jupyter-server-proxy
    (`"auto"`: on JupyterHub when it is installed; `None`: never; or a template such as
    `"/user/me/proxy/{port}/"`): `browser_url()` then gives that address, and the Host check
    accepts requests the proxy forwards for this port (`ssenb.server._proxy`).
    """
    if not _is_loopback(host) and not allow_remote:
        raise ValueError(
            f"host {host!r} is not a loopback address; pass allow_remote=True to expose the "
            "server to other machines (and consider token=True)"
        )
    if token is True:
        token = secrets.token_urlsafe(32)
    elif token is False:
        token = None
    if token is not None and (
        not isinstance(token, str) or not token or any(c in token for c in "\r\n ")
    ):
        raise ValueError("token must be a non-empty string without spaces or newlines")
    if isinstance(allowed_hosts, str) or isinstance(cors_origins, str):
        raise TypeError("allowed_hosts and cors_origins take a list of strings, not a string")
    if allow_remote and not _is_loopback(host) and token is None:
        warnings.warn(
            f"serving on {host!r} without a token: anyone who can reach this port can read "
            "the streams (pass token=True)",
            stacklevel=2,
        )
    if app is None:
        from ._demo import demo_app

        app = demo_app()
    install_log_buffer()
    _register_atexit()
    old = _state.servers.get(name)
    reuse = 0
    if isinstance(old, ServerHandle):
        if port == 0 and old.host == host:
            reuse = old.port
        old.stop()
    sock: socket.socket | None = None
    if reuse:
        try:
            sock = _bind(host, reuse)
        except OSError:
            sock = None
    if sock is None:
        sock = _bind(host, port)
    try:
        handle = ServerHandle(
            app,
            sock,
            name=name,
            token=token,
            allowed_hosts=allowed_hosts,
            allow_any_host=allow_remote,
            cors_origins=cors_origins,
            proxy=proxy,
        )
    except BaseException:
        sock.close()
        raise
    try:
        handle._start()
    except BaseException:
        sock.close()
        raise
    _state.register_server(name, handle)
    return handle


def stop_all() -> int:
    """Stop every server started with `serve()`; returns how many were running."""
    handles = [h for h in list(_state.servers.values()) if isinstance(h, ServerHandle)]
    running = sum(1 for h in handles if h.running)
    for handle in handles:
        handle.stop()
    return running


def _register_atexit() -> None:
    if not _state.flags.get("atexit"):
        atexit.register(stop_all)
        _state.flags["atexit"] = True
