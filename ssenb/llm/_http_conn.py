"""The wire half of the lean HTTP/1.1 reader (`_http.py` is the pool): one connection as an
`asyncio.Protocol` that parses the response inside `data_received`, as the reads arrive.

Per read: one `perf_counter()` stamp (taken before any parsing), a state check, a few slices
to strip chunk framing, one call of the `Sink` with the decoded bytes. Status line and
headers are parsed once per response (1xx heads skipped); the body is chunked (extensions
ignored, trailers skipped), Content-Length or close-delimited. A read timeout costs one timer
per exchange, re-armed only when it fires, not one reset per read. The errors are named like
httpx's (ConnectError, ReadTimeout, RemoteProtocolError, ...) so `load`'s error column reads
the same on both of its HTTP paths.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["MAX_HEAD", "Conn", "ConnectError", "ConnectTimeout", "HTTPError",
           "LocalProtocolError", "ReadError", "ReadTimeout", "RemoteProtocolError", "Sink",
           "Stale"]  # fmt: skip

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


class Stale(RemoteProtocolError):
    """A reused connection closed before any byte of the response: safe to retry once."""


class Sink(Protocol):
    """Where one exchange goes: the moment its first byte is written, the status, then the
    decoded body of each socket read with that read's `perf_counter()` stamp."""

    def started(self, now: float) -> None: ...

    def head(self, status: int) -> None: ...

    def data(self, chunk: bytes, now: float) -> None: ...


class Conn(asyncio.Protocol):
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
            self.close()
            return
        self.got = True
        try:
            if self.state == _HEAD:
                data = self._head(data)
                if self.state == _HEAD or (not data and self.state != _DONE):
                    return
            if self.state == _DONE:
                self.keep = self.keep and not data  # bytes after a bodiless response
            elif body := self._body(data):
                assert self.sink is not None
                self.sink.data(body, now)
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
            self.close()  # cancelled or failed mid-response: never reused
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
            self.close()
            waiter.set_exception(exc)
            return
        if not self.keep:
            self.close()
        waiter.set_result(self.status)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self.state == _CLOSE and exc is None:
            self.state = _DONE
            self._end(None)
        elif not self.got and self.state == _HEAD:
            self._end(Stale("peer closed connection before responding"))
        elif isinstance(exc, OSError):
            self._end(ReadError(str(exc) or type(exc).__name__))
        else:
            part = "response head" if self.state == _HEAD else "message body"
            self._end(RemoteProtocolError(f"peer closed connection before a complete {part}"))

    def close(self) -> None:
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
            if not size or size.strip(b"0123456789abcdefABCDEF"):
                raise RemoteProtocolError(f"malformed chunk size {line[:40]!r}")
            self.left = int(size, 16)
            self.trailers = not self.left
        self.buf = buf[i:]
        return b"".join(out) if len(out) != 1 else out[0]
