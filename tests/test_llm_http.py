"""The lean HTTP/1.1 reader under `ssenb.llm.load` (`ssenb/llm/_http.py`).

Well-formed responses come from a real uvicorn on 127.0.0.1 (chunked streams, Content-Length
bodies, errors, keep-alive); what uvicorn never sends (close-delimited bodies, 1xx heads,
byte-by-byte chunks with extensions and trailers, malformed or truncated responses, silence,
a keep-alive connection the server drops) comes from a tiny raw socket server in a thread.
No test needs TLS: https only changes `create_connection`'s `ssl=` argument.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ssenb import llm
from ssenb.llm import _http
from ssenb.llm._http import Pool, usable

pytestmark = pytest.mark.timeout(60)

Step = bytes | float  # bytes to send, or seconds to wait


class Got:
    """A `Sink` that keeps everything: status, the decoded reads and their stamps."""

    def __init__(self) -> None:
        self.began: float | None = None
        self.status: int | None = None
        self.chunks: list[bytes] = []
        self.stamps: list[float] = []

    def started(self, now: float) -> None:
        self.began = now

    def head(self, status: int) -> None:
        self.status = status

    def data(self, chunk: bytes, now: float) -> None:
        self.chunks.append(chunk)
        self.stamps.append(now)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def fetch(url: str, *, timeout: float = 5.0, method: str = "GET", **kwargs: Any) -> Got:
    """One request through a fresh pool, closed afterwards."""
    got = Got()

    async def main() -> None:
        async with Pool(timeout) as pool:
            await pool.request(method, url, got, **kwargs)

    asyncio.run(main())
    return got


# ------------------------------------------------------------------------------- uvicorn


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/chunked":  # no length: uvicorn frames it chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.02)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/port":
        reply, status = str(scope["client"][1]).encode(), 200
    elif path == "/echo":
        head = {k.decode(): v.decode() for k, v in scope["headers"]}
        reply, status = json.dumps({"headers": head, "body": body.decode()}).encode(), 200
    else:
        reply, status = b'{"error": "no such thing"}', 404
    length = [(b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": length})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    from conftest import run_asgi

    with run_asgi(app) as url:
        yield url


UVICORN = [
    ("chunked-stream", "/chunked", 200, b"data: 1\n\ndata: 2\n\ndata: 3\n\n", 3),
    ("content-length", "/port", 200, None, 1),
    ("http-error-body", "/nope", 404, b'{"error": "no such thing"}', 1),
]


@pytest.mark.parametrize(
    ("path", "status", "body", "reads"), [u[1:] for u in UVICORN], ids=[u[0] for u in UVICORN]
)
def test_uvicorn_responses_arrive_whole_one_sink_call_per_read(
    served: str, path: str, status: int, body: bytes | None, reads: int
) -> None:
    got = fetch(served + path)
    assert got.status == status
    if body is not None:
        assert got.body == body
    assert len(got.chunks) >= reads
    assert got.began is not None
    assert got.stamps == sorted(got.stamps)
    assert got.stamps[0] > got.began
    if path == "/chunked":  # the parts were 20 ms apart: each read was stamped as it came
        assert got.stamps[-1] - got.stamps[0] > 0.03


@pytest.mark.parametrize("path", ["/port", "/chunked"], ids=["content-length", "chunked"])
def test_keep_alive_reuses_one_connection_across_requests(served: str, path: str) -> None:
    async def main() -> tuple[list[bytes], int]:
        async with Pool(5) as pool:
            bodies = []
            for _ in range(4):
                got = Got()
                await pool.request("GET", served + path, got)
                bodies.append(got.body)
            return bodies, pool.opened

    bodies, opened = asyncio.run(main())
    assert opened == 1
    assert len(set(bodies)) == 1  # /port: the server saw the same client port every time


def test_the_request_is_built_once_with_identity_encoding_and_the_callers_headers(
    served: str,
) -> None:
    got = fetch(served + "/echo?x=1", method="POST", json_body={"q": "é"},
                headers={"Authorization": "Bearer k", "accept": "text/event-stream"})  # fmt: skip
    seen = json.loads(got.body)
    assert seen["body"] == '{"q":"é"}'
    head = seen["headers"]
    assert head["accept-encoding"] == "identity"
    assert head["accept"] == "text/event-stream"  # the caller's value replaced the default
    assert head["authorization"] == "Bearer k"
    assert head["content-type"] == "application/json"
    assert head["host"] == served.split("//")[1]
    assert head["user-agent"].startswith("ssenb/")


# ---------------------------------------------------------------------- raw socket server


@contextmanager
def raw_server(replies: list[list[Step]]) -> Iterator[tuple[str, list[bytes]]]:
    """Answer the n-th request with replies[n] (the last one repeats), then close that
    connection. Yields the base URL and the request heads it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                more = conn.recv(65536)
                if not more:
                    return
                buf += more
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            while len(buf) < length:
                buf += conn.recv(65536)
            seen.append(head)
            for step in replies[min(len(seen), len(replies)) - 1]:
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    conn.sendall(step)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()


OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
CHUNKED = OK_HEAD + b"transfer-encoding: chunked\r\n\r\n"
WIRE = CHUNKED + b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n"
BYTEWISE: list[Step] = [x for b in WIRE for x in (bytes([b]), 0.0005)]  # one read a byte

RAW = [
    ("close-delimited", [OK_HEAD + b"\r\nall of", 0.02, b" it"], b"all of it"),
    ("chunked-with-extensions-and-trailers-byte-by-byte", BYTEWISE, b"hello 0123456789"),
    ("informational-head-first",
     [b"HTTP/1.1 100 Continue\r\n\r\n", CHUNKED, b"2\r\nok\r\n0\r\n\r\n"], b"ok"),
    ("http-1.0-length", [b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nabc"], b"abc"),
    ("no-content", [b"HTTP/1.1 204 No Content\r\n\r\n"], b""),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "body"), [r[1:] for r in RAW], ids=[r[0] for r in RAW])
def test_every_body_framing_is_decoded(steps: list[Step], body: bytes) -> None:
    with raw_server([steps]) as (url, seen):
        got = fetch(url + "/v1/x?a=1", method="POST", json_body={"k": 1})
    assert got.body == body
    assert got.status in (200, 204)
    assert seen[0].startswith(b"POST /v1/x?a=1 HTTP/1.1\r\n")


FAILURES = [
    ("malformed-status-line", [b"HTTP/9 OK\r\n\r\n"], _http.RemoteProtocolError, "status line"),
    ("malformed-header", [OK_HEAD + b"no colon here\r\n\r\n"], _http.RemoteProtocolError,
     "header"),
    ("bad-chunk-size", [CHUNKED + b"zz\r\nhello\r\n"], _http.RemoteProtocolError, "chunk size"),
    ("truncated-length-body", [OK_HEAD + b"content-length: 10\r\n\r\nhalf"],
     _http.RemoteProtocolError, "message body"),
    ("truncated-chunked-body", [CHUNKED + b"a\r\nhalf"], _http.RemoteProtocolError,
     "message body"),
    ("closed-before-responding", [], _http.RemoteProtocolError, "before responding"),
    ("silence-after-the-head", [CHUNKED, 3.0], _http.ReadTimeout, "no bytes for 0.5 s"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("steps", "error", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_broken_responses_raise_named_http_errors(
    steps: list[Step], error: type[Exception], words: str
) -> None:
    with raw_server([steps]) as (url, _), pytest.raises(error, match=words):
        fetch(url + "/", timeout=0.5)


def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(_http.ConnectError):
        fetch("http://127.0.0.1:9/")


def test_a_keep_alive_connection_the_server_dropped_is_replaced_not_an_error() -> None:
    reply: list[Step] = [OK_HEAD + b"content-length: 2\r\n\r\nok"]  # keep-alive, then closed

    async def main(url: str) -> tuple[list[bytes], int]:
        async with Pool(5) as pool:
            bodies = []
            for pause in (0.0, 0.0, 0.1):  # reused at once (a race) and after the close landed
                await asyncio.sleep(pause)
                got = Got()
                await pool.request("GET", url, got)
                bodies.append(got.body)
            return bodies, pool.opened

    with raw_server([reply]) as (url, seen):
        bodies, opened = asyncio.run(main(url))
    assert bodies == [b"ok"] * 3
    assert opened == 3
    assert len(seen) == 3  # no request was answered twice or lost


def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    with pytest.raises(_http.LocalProtocolError, match="illegal header"):
        fetch("http://127.0.0.1:9/", headers={"X-A": "1\r\nX-Injected: 2"})


USABLE = [
    ("http", "http://api.example/v1", {}, True),
    ("https", "https://api.example/v1", {}, True),
    ("other-scheme", "ftp://api.example/v1", {}, False),
    ("https-proxy", "https://api.example/v1", {"HTTPS_PROXY": "http://p:3128"}, False),
    ("http-proxy-for-https", "https://api.example/v1", {"HTTP_PROXY": "http://p:3128"}, True),
    ("all-proxy", "http://api.example/v1", {"ALL_PROXY": "http://p:3128"}, False),
    ("no-proxy-domain", "http://api.example/v1",
     {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "localhost,.example"}, True),
    ("no-proxy-star", "http://api.example/v1", {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "*"},
     True),
    ("no-proxy-other", "http://api.example/v1",
     {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "example.org"}, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "env", "lean"), [u[1:] for u in USABLE], ids=[u[0] for u in USABLE]
)
def test_the_lean_path_steps_aside_for_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, url: str, env: dict[str, str], lean: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert usable(url) is lean


# ------------------------------------------------------- through load(): the error column

LOAD_ERRORS = [
    ("malformed", [[b"HTTP/1.1 OK\r\n\r\n"]], "RemoteProtocolError: malformed status line"),
    ("truncated", [[CHUNKED + b"40\r\ndata: {}"]], "RemoteProtocolError: peer closed"),
    ("silence", [[CHUNKED, 3.0]], "ReadTimeout: no bytes for 0.5 s"),
    ("http-error", [[b"HTTP/1.1 429 Too Many\r\ncontent-length: 9\r\n\r\nslow down"]],
     "HTTP 429: slow down"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("replies", "error"), [e[1:] for e in LOAD_ERRORS], ids=[e[0] for e in LOAD_ERRORS]
)
def test_load_reports_what_the_lean_reader_raised_in_the_error_column(
    replies: list[list[Step]], error: str
) -> None:
    with raw_server(replies) as (url, _):
        df = llm.load(url + "/v1/chat/completions", concurrency=1, requests=2, timeout=0.5,
                      display=False, background=True).wait(30)  # fmt: skip
    assert len(df) == 2
    assert all(e.startswith(error) for e in df["error"]), df["error"].tolist()
