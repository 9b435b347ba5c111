"""The `ssenb` command line: `ssenb serve` (demo producers, foreground) and `ssenb tail URL`.

`serve` runs the same background server as `ssenb.serve()` and waits in the foreground
(`--hub redis://...` puts `/hub` on a Redis stream shared by every such process);
Ctrl-C (or SIGTERM) stops it cleanly, open streams included. `tail` prints events as they
arrive with ssenb's own client (reconnects and Last-Event-ID included); `--json` prints
one JSON object per line for piping into other tools.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

import orjson

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssenb", description="Server-Sent Events kit.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the demo producers until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000, 0 = any)")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    serve.add_argument(
        "--token", action="store_true", help="require a generated token (prints a login link)"
    )
    serve.add_argument(
        "--allowed-host", action="append", help="also answer this Host (a proxy's name; repeatable)"
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        help="allow this browser origin (repeatable; off by default)",
    )
    serve.add_argument(
        "--hub",
        metavar="URL",
        help="back /hub with a shared Redis stream: redis://host:port/db?stream=name",
    )
    tail = sub.add_parser("tail", help="print the events of an SSE URL as they arrive")
    tail.add_argument("url")
    tail.add_argument("-n", type=int, default=None, help="stop after N events")
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(
    host: str,
    port: int,
    allow_remote: bool,
    token: bool = False,
    allowed_hosts: list[str] | None = None,
    cors_origins: list[str] | None = None,
    hub_url: str | None = None,
) -> int:
    from .server import serve

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    try:
        app = _hub_app(hub_url) if hub_url else None
        server = serve(
            app,
            host=host,
            port=port,
            name="cli",
            allow_remote=allow_remote,
            token=token or None,
            allowed_hosts=allowed_hosts,
            cors_origins=cors_origins,
        )
    except (OSError, RuntimeError, ValueError, ImportError) as exc:
        print(f"ssenb serve: {exc}", file=sys.stderr)
        return 1
    for name in ("uvicorn", "ssenb.server"):
        logging.getLogger(name).addHandler(handler)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"ssenb demo producers at {server.url}/  (Ctrl-C to stop)", flush=True)
    if token:
        print(f"open in a browser (one-time login link): {server.browser_url()}", flush=True)
    try:
        while server.running:
            time.sleep(0.2)
        print("ssenb serve: the server stopped on its own", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C waits
        server.stop()
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, previous)
        for name in ("uvicorn", "ssenb.server"):
            logging.getLogger(name).removeHandler(handler)
        print("ssenb serve: stopped", file=sys.stderr, flush=True)


def _hub_app(url: str) -> object:
    """The demo app with `/hub` on the Redis stream at `url` (checked with a PING)."""
    from ._errors import SSEHubUnavailable
    from .server import Hub
    from .server._demo import demo_app

    app = demo_app()
    hub = Hub(backend=url)
    if hub.backend == "memory":
        raise ValueError(f"--hub takes a redis:// URL, not {url.split('@')[-1]!r}")
    try:
        hub.ping()
    except SSEHubUnavailable as exc:
        raise RuntimeError(f"Redis at {hub.url} does not answer: {exc}") from exc
    app.state.hub = hub
    return app


def _line(event: object, as_json: bool) -> str:
    from ._models import Event

    assert isinstance(event, Event)
    if as_json:
        return orjson.dumps(event.to_dict()).decode()
    ref = f" #{event.id}" if event.id else ""
    return f"[{event.event}{ref}] {event.data}"


def _tail(url: str, n: int | None, as_json: bool) -> int:
    from ._errors import SSEError
    from .client import EventSource

    if n is not None and n < 1:
        print("ssenb tail: -n must be at least 1", file=sys.stderr)
        return 2
    count = 0
    try:
        with EventSource(url) as source:
            for event in source:
                print(_line(event, as_json), flush=True)
                count += 1
                if n is not None and count >= n:
                    break
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ssenb tail URL | head`: the reader left, that is fine
        sys.stderr.close()
        return 0
    except SSEError as exc:
        print(f"ssenb tail: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(
            args.host,
            args.port,
            args.allow_remote,
            args.token,
            args.allowed_host,
            args.cors_origin,
            args.hub,
        )
    return _tail(args.url, args.n, args.json)
