"""A lean HTTP/1.1 client for `ssenb.llm.load`: the measurement tool must not be the bottleneck.

Why not httpx here: httpcore's connection pool rescans every connection on each request
and each response close (`has_expired` asks each idle socket whether it is readable, through
anyio's extra-attribute dicts), so its cost grows with the number of open streams: profiled
at 128 streams, that scan was ~60% of the client's CPU, and keep-alive requests waited
seconds for their pooled connection on the busy loop. Measured as the loop thread's CPU per
event against the same server (2-core VM): httpx ~440 us at 16 streams and ~680 us at 128,
this reader ~240 us and ~75 us (the rest is the loop's own wake-ups and the SSE parser). It
costs one `data_received` call per socket read: the read is stamped with `perf_counter()`
first, de-chunked with a few slices and handed to a `Sink` in the same call (no task switch,
no queue); a connection the peer closes while idle is dropped when the loop reports it
(`connection_lost`), never polled.

What it speaks: HTTP/1.1 over TCP or TLS (ALPN http/1.1, httpx's CA choice: SSL_CERT_FILE,
SSL_CERT_DIR, else certifi), one request per connection at a time, keep-alive pool per
origin, unbounded; chunked, Content-Length and close-delimited bodies; `Accept-Encoding:
identity` (the timestamps are of the bytes as sent). What it leaves to httpx (`usable`
says which): proxies named by the environment, other schemes. Errors are raised as
`HTTPError` subclasses named like httpx's (ConnectError, ReadTimeout, ...), so the error
column reads the same on both paths.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ._http_conn import (
    Conn,
    ConnectError,
    ConnectTimeout,
    HTTPError,
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    Sink,
    Stale,
)

__all__ = ["ConnectError", "ConnectTimeout", "HTTPError", "LocalProtocolError", "Pool",
           "ReadError", "ReadTimeout", "RemoteProtocolError", "Sink", "usable"]  # fmt: skip
Origin = tuple[str, str, int]  # scheme, host, port


def usable(url: str) -> bool:
    """True when the lean path can take `url`: http or https, and no proxy from the
    environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, minus NO_PROXY) applies to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    host = parts.hostname.lower()
    for entry in proxies.get("no", "").split(","):  # NO_PROXY: *, hosts, .domains
        name = entry.strip().lower().lstrip("*").lstrip(".")
        if entry.strip() == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _ssl_context() -> ssl.SSLContext:
    """httpx's choice of CAs: SSL_CERT_FILE, SSL_CERT_DIR, else certifi's bundle."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not (cafile or capath):
        import certifi

        cafile = certifi.where()
    ctx = ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Pool:
    """Keep-alive HTTP/1.1 connections per origin, as many as the streams need.

    `timeout` s bounds connecting (with TLS) and each silence between reads."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.opened = 0  # connections opened so far (tests read it: keep-alive works)
        self._idle: dict[Origin, list[Conn]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._heads: dict[tuple[str, str], tuple[Origin, bytes, str]] = {}

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection (those in use close when their exchange ends)."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def request(
        self,
        method: str,
        url: str,
        sink: Sink,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """Send one request and stream its response into `sink`; return the status. A reused
        connection the server closed before answering is retried once on a fresh one."""
        origin, request = self._build(method, url, json_body, headers or {})
        for attempt in (0, 1):
            conn, reused = self._take(origin), True
            if conn is None:
                conn, reused = await self._open(origin), False
            try:
                status = await conn.exchange(request, sink, self.timeout, method == "HEAD")
            except Stale:
                if reused and attempt == 0:
                    continue
                raise RemoteProtocolError("peer closed connection before responding") from None
            if not conn.closed:
                self._idle.setdefault(origin, []).append(conn)
            return status
        raise AssertionError("unreachable")

    def _take(self, origin: Origin) -> Conn | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _open(self, origin: Origin) -> Conn:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or _ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    Conn, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise ConnectTimeout(f"{host}:{port}: no connection in {self.timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectError(str(exc) or type(exc).__name__) from None
        self.opened += 1
        return conn

    def _build(
        self, method: str, url: str, json_body: Any, headers: Mapping[str, str]
    ) -> tuple[Origin, bytes]:
        """The request's bytes, head and body in one buffer (written with one call)."""
        key = (method, url)
        if key not in self._heads:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise LocalProtocolError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            default = parts.port is None
            host = parts.hostname if default else f"{parts.hostname}:{port}"
            if ":" in parts.hostname:  # IPv6 literal
                host = f"[{parts.hostname}]" + ("" if default else f":{port}")
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            first = f"{method} {target} HTTP/1.1\r\n".encode()
            if len(self._heads) > 256:
                self._heads.clear()
            self._heads[key] = ((parts.scheme, parts.hostname, port), first, host)
        origin, line, host = self._heads[key]
        fields = {"host": ("Host", host), "accept": ("Accept", "*/*"),
                  "accept-encoding": ("Accept-Encoding", "identity"),
                  "user-agent": ("User-Agent", f"ssenb/{__version__}")}  # fmt: skip
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n") or not name or ":" in name:
                raise LocalProtocolError(f"illegal header {name!r}")
            fields[name.lower()] = (name, value)
        body = b""
        if json_body is not None:
            body = json.dumps(
                json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            fields.setdefault("content-type", ("Content-Type", "application/json"))
        if body or method in ("POST", "PUT", "PATCH"):
            fields["content-length"] = ("Content-Length", str(len(body)))
        lines = "".join(f"{name}: {value}\r\n" for name, value in fields.values())
        return origin, line + lines.encode("latin-1", "replace") + b"\r\n" + body
