"""Serving a `Hub` on a real uvicorn (127.0.0.1) and reading its streams, for the hub tests.

`serve_hub(hub)` serves `GET /hub`; `subscribed(url)` opens one stream and yields a `Reader`
once the headers arrived (the subscription exists then); `stalled_socket(url)` is a client
that sends its request and never reads.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import ssenb
from ssenb import Event, EventParser, Hub
from ssenb.server import ServerHandle


def serve_hub(hub: Hub, heartbeat: float | None = 15.0) -> ServerHandle:
    """`hub` at `GET <url>/hub` on a fresh server (a context manager: stops at the end)."""

    async def endpoint(request: Request) -> Response:
        return hub.response(request, heartbeat=heartbeat)

    return ssenb.serve(Starlette(routes=[Route("/hub", endpoint)]), name=f"hub-{uuid.uuid4()}")


class Reader:
    """Events of one open stream, parsed as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.iter_raw()
        self.parser = EventParser()
        self.events: list[Event] = []

    def until_id(self, last: str) -> list[Event]:
        """Read until the event with id `last` arrived; every event so far."""
        while not self.events or self.events[-1].id != last:
            self.events.extend(self.parser.feed(next(self.chunks)))
        return self.events

    def to_end(self) -> list[Event]:
        """Read until the body ends; every event."""
        for chunk in self.chunks:
            self.events.extend(self.parser.feed(chunk))
        return self.events


@contextmanager
def subscribed(url: str, last_event_id: str | None = None) -> Iterator[Reader]:
    """One stream of `url` (resuming after `last_event_id`), open while the block runs."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        yield Reader(r)  # headers arrived: the subscription exists


def stalled_socket(url: str, path: str = "/hub") -> socket.socket:
    """A client that sends its request and never reads: its receive window stays tiny."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock
