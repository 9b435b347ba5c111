"""A lean HTTP/1.1 client for `ssenb.llm.load`: the measurement tool must not be the bottleneck.

Why not httpx here: httpcore's connection pool rescans every connection on each request
and each response close (`has_expired` asks the socket whether it is readable, through
anyio's extra-attribute dicts), so its cost grows with the number of open streams. Profiled
at 128 streams, that scan was ~60% of the client's CPU, ~1 ms per event all costs included
(~400 us at 16 streams), and a keep-alive request waited seconds for its pooled connection
on the busy loop. This module costs one `data_received` call per socket read: the read is
stamped with `perf_counter()` first, the body is de-chunked with a few slices and handed to
a `Sink` in the same call (no task switch, no queue). A connection the peer closes while
idle is dropped when the loop reports it (`connection_lost`), never polled.

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
import time
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from .._version import __version__

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "HTTPError",
    "LocalProtocolError",
    "Pool",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Sink",
    "usable",
]

MAX_HEAD = 64 * 1024  # bytes of status line + headers before the response is malformed
_HEAD, _LENGTH, _CHUNKED, _CLOSE, _DONE = range(5)
_clock = time.perf_counter


class HTTPError(Exception):
    """A request that did not give a complete response (the name says which way)."""


class ConnectError(HTTPError): ...


class ConnectTimeout(HTTPError): ...


class ReadTimeout(HTTPError): ...


class ReadError(HTTPError): ...


class RemoteProtocolError(HTTPError): ...


class LocalProtocolError(HTTPError): ...


class _Stale(RemoteProtocolError):
    """A reused connection closed before any byte of the response: safe to retry once."""


class Sink(Protocol):
    """Where one exchange goes: the moment its first byte is written, the status, then the
    decoded body of each socket read with that read's `perf_counter()` stamp."""

    def started(self, now: float) -> None: ...

    def head(self, status: int) -> None: ...

    def data(self, chunk: bytes, now: float) -> None: ...


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
    if os.environ.get("SSL_CERT_FILE"):
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        ctx = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        import certifi

        ctx = ssl.create_default_context(cafile=certifi.where())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class _Conn(asyncio.Protocol):
    """One connection; during an exchange it parses the response as the reads arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[int] | None = None
        self.sink: Sink | None = None
        self.buf = b""
        self.state = _DONE
        self.left = 0  # body bytes still due (Content-Length) or in the current chunk
        self.crlf = False  # a chunk's data ended: its CRLF comes next
        self.trailers = False
        self.keep = False
        self.got = False  # any byte of this response arrived
        self.no_body = False
        self.status = 0
        self.last = 0.0  # perf_counter of the latest read (or of the request's write)
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = self.last = _clock()  # stamped before any parsing of this read
        if self.waiter is None:  # bytes on an idle connection: it cannot be reused
            self._close()
            return
        self.got = True
        try:
            if self.state == _HEAD:
                data = self._head(data)
                if self.state == _HEAD or (not data and self.state != _DONE):
                    return
            body = self._body(data) if self.state != _DONE else b""
            if body:
                assert self.sink is not None
                self.sink.data(body, now)
            elif data and self.state == _DONE:
                self.keep = False  # bytes after a bodiless response: never reuse
            if self.state == _DONE:
                self._end(None)
        except Exception as exc:
            self._end(exc)

    def eof_received(self) -> bool:
        self._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    # -- one exchange --------------------------------------------------------------------
    async def exchange(self, request: bytes, sink: Sink, timeout: float, head: bool) -> int:
        """Write `request`, parse the response into `sink`; the status, or an HTTPError."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self.waiter = waiter
        self.sink, self.buf, self.state, self.got, self.no_body = sink, b"", _HEAD, False, head
        self.left, self.crlf, self.trailers = 0, False, False
        assert self.transport is not None
        sink.started(_clock())
        self.last = _clock()
        self.transport.write(request)
        self.timer = loop.call_later(timeout, self._watch, timeout)
        try:
            return await waiter
        except BaseException:
            self._close()  # cancelled or failed mid-response: never reused
            raise
        finally:
            if self.timer is not None:
                self.timer.cancel()
            self.waiter = self.sink = self.timer = None

    def _watch(self, timeout: float) -> None:
        """ReadTimeout after `timeout` s without a read: one timer per exchange, re-armed
        only when it fires (a read costs one clock stamp, not a timer reset)."""
        if self.waiter is None:
            return
        quiet = _clock() - self.last
        if quiet >= timeout * 0.999:
            self._end(ReadTimeout(f"no bytes for {timeout:g} s"))
        else:
            self.timer = asyncio.get_running_loop().call_later(
                timeout - quiet, self._watch, timeout
            )

    def _end(self, exc: BaseException | None) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if exc is not None:
            self._close()
            waiter.set_exception(exc)
            return
        if not self.keep:
            self._close()
        waiter.set_result(self.status)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self.state == _CLOSE and exc is None:
            self.state = _DONE
            self._end(None)
        elif not self.got and self.state == _HEAD:
            self._end(_Stale("peer closed connection before responding"))
        elif isinstance(exc, OSError):
            self._end(ReadError(str(exc) or type(exc).__name__))
        else:
            part = "response head" if self.state == _HEAD else "message body"
            self._end(RemoteProtocolError(f"peer closed connection before a complete {part}"))

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing -------------------------------------------------------------------------
    def _head(self, data: bytes) -> bytes:
        """Consume the response head (skipping 1xx heads); return the body bytes after it."""
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise RemoteProtocolError(f"response head larger than {MAX_HEAD} bytes")
                self.buf = buf
                return b""
            head, buf = buf[:end], buf[end + 4 :]
            if not self._parse_head(head):  # an informational (1xx) head: the real one follows
                self.buf = b""
                return buf

    def _parse_head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise RemoteProtocolError(f"malformed status line {lines[0][:80]!r}")
        status = int(code)
        if 100 <= status < 200:
            return True
        fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise RemoteProtocolError(f"malformed header line {line[:80]!r}")
            key = name.lower()
            fields[key] = fields[key] + b"," + value.strip() if key in fields else value.strip()
        tokens = {t.strip().lower() for t in fields.get(b"connection", b"").split(b",")}
        self.keep = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
        self.status = status
        coding = fields.get(b"transfer-encoding", b"").lower()
        if self.no_body or status in (204, 304):
            self.state = _DONE
        elif coding.rsplit(b",", 1)[-1].strip() == b"chunked":
            self.state = _CHUNKED
        elif b"content-length" in fields:
            lengths = {v.strip() for v in fields[b"content-length"].split(b",")}
            if len(lengths) != 1 or not (value := lengths.pop()).isdigit():
                raise RemoteProtocolError("malformed Content-Length")
            self.left = int(value)
            self.state = _LENGTH if self.left else _DONE
        else:
            self.state, self.keep = _CLOSE, False
        assert self.sink is not None
        self.sink.head(status)
        return False

    def _body(self, data: bytes) -> bytes:
        if self.state == _CLOSE:
            return data
        if self.state == _LENGTH:
            if len(data) >= self.left:
                if len(data) > self.left:
                    self.keep = False  # bytes past the response: never reuse this connection
                data, self.left, self.state = data[: self.left], 0, _DONE
            else:
                self.left -= len(data)
            return data
        return self._chunks(data)

    def _chunks(self, data: bytes) -> bytes:
        """De-chunk what can be: whole and partial chunk data out, an unfinished size line or
        CRLF kept for the next read."""
        buf = self.buf + data if self.buf else data
        self.buf = b""
        out: list[bytes] = []
        i, n = 0, len(buf)
        while i < n:
            if self.left:
                take = min(self.left, n - i)
                out.append(buf[i : i + take])
                i += take
                self.left -= take
                self.crlf = not self.left
                continue
            if self.crlf:
                if n - i < 2:
                    break
                if buf[i : i + 2] != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                i, self.crlf = i + 2, False
                continue
            j = buf.find(b"\r\n", i)
            if j < 0:
                if n - i > 1024:
                    raise RemoteProtocolError("chunk size line too long")
                break
            line, i = buf[i:j], j + 2
            if self.trailers:  # after the last chunk: trailer lines, then an empty line
                if not line:
                    self.state = _DONE
                    if i < n:
                        self.keep = False
                    return b"".join(out)
                continue
            size = line.split(b";", 1)[0].strip()
            try:
                self.left = int(size, 16)
            except ValueError:
                raise RemoteProtocolError(f"malformed chunk size {line[:40]!r}") from None
            if self.left < 0:
                raise RemoteProtocolError(f"malformed chunk size {line[:40]!r}")
            self.trailers = not self.left
        self.buf = buf[i:]
        return b"".join(out) if len(out) != 1 else out[0]


class Pool:
    """Keep-alive HTTP/1.1 connections per origin, as many as the streams need.

    `timeout` s bounds connecting (with TLS) and each silence between reads."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.opened = 0  # connections opened so far (tests read it: keep-alive works)
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._heads: dict[tuple[str, str], tuple[tuple[str, str, int], bytes, str]] = {}

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection (those in use close when their exchange ends)."""
        for conns in self._idle.values():
            for conn in conns:
                conn._close()
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
            except _Stale:
                if reused and attempt == 0:
                    continue
                raise RemoteProtocolError("peer closed connection before responding") from None
            if not conn.closed:
                self._idle.setdefault(origin, []).append(conn)
            return status
        raise AssertionError("unreachable")

    def _take(self, origin: tuple[str, str, int]) -> _Conn | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _open(self, origin: tuple[str, str, int]) -> _Conn:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or _ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    _Conn, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise ConnectTimeout(f"{host}:{port}: no connection in {self.timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectError(str(exc) or type(exc).__name__) from None
        self.opened += 1
        return conn

    def _build(
        self, method: str, url: str, json_body: Any, headers: Mapping[str, str]
    ) -> tuple[tuple[str, str, int], bytes]:
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
