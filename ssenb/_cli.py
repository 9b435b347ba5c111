"""The `ssenb` command line: `ssenb serve` (demo producers, foreground) and `ssenb tail URL`.

`serve` runs the same background server as `ssenb.serve()` and waits in the foreground
(`--hub redis://...` puts `/hub` on a Redis stream shared by every such process);
Ctrl-C (or SIGTERM) stops it cleanly, open streams included. `--workers N` runs N worker
processes on the one port instead, restarted when they die (`server/_workers.py`; behind
nginx: docs/deploy.md). `tail` prints events as they
arrive with ssenb's own client (reconnects and Last-Event-ID included); `--json` prints
one JSON object per line for piping into other tools.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes on the port, restarted when they die (use with --hub)",
    )
    serve.add_argument("--worker-fds", help=argparse.SUPPRESS)  # set by the supervisor
    tail = sub.add_parser("tail", help="print the events of an SSE URL as they arrive")
    tail.add_argument("url")
    tail.add_argument("-n", type=int, default=None, help="stop after N events")
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    """`ssenb serve`: one process (a server thread), a worker of `--workers`, or their
    supervisor."""
    from .server import serve

    if args.workers is not None and not args.worker_fds:
        return _supervise(args)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    options = {
        "token": args.token or None, "allowed_hosts": args.allowed_host,
        "cors_origins": args.cors_origin,
    }  # fmt: skip
    try:
        app = _hub_app(args.hub) if args.hub else None
        if args.worker_fds:
            from .server._demo import demo_app
            from .server._workers import serve_worker

            server = serve_worker(app or demo_app(), args.worker_fds,
                                  allow_remote=args.allow_remote, **options)  # fmt: skip
        else:
            server = serve(app, host=args.host, port=args.port, name="cli",
                           allow_remote=args.allow_remote, **options)  # fmt: skip
    except (OSError, RuntimeError, ValueError, ImportError) as exc:
        print(f"ssenb serve: {exc}", file=sys.stderr)
        return 1
    for name in ("uvicorn", "ssenb.server"):
        logging.getLogger(name).addHandler(handler)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    if args.worker_fds:
        print("ready", flush=True)  # the supervisor waits for this line
    else:
        print(f"ssenb demo producers at {server.url}/  (Ctrl-C to stop)", flush=True)
    if args.token:
        print(f"open in a browser (one-time login link): {server.browser_url()}", flush=True)
    try:
        while server.running:
            time.sleep(0.2)
        print("ssenb serve: the server stopped on its own", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        quiet = _ignore_stop_signals()  # a second Ctrl-C (or SIGTERM) waits for the stop
        server.stop()
        _restore(quiet, previous)
        for name in ("uvicorn", "ssenb.server"):
            logging.getLogger(name).removeHandler(handler)
        if not args.worker_fds:
            print("ssenb serve: stopped", file=sys.stderr, flush=True)


_Handler = Callable[[int, FrameType | None], object] | int | None


def _ignore_stop_signals() -> _Handler:
    """Ignore SIGINT and SIGTERM while stopping; returns the SIGINT handler to restore."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore(sigint: _Handler, sigterm: _Handler) -> None:
    signal.signal(signal.SIGINT, sigint)
    signal.signal(signal.SIGTERM, sigterm)


def _worker_command(args: argparse.Namespace) -> list[str]:
    """The `ssenb serve` options each worker gets (the socket comes from the supervisor)."""
    command = ["serve", *(["--allow-remote"] if args.allow_remote else [])]
    repeated = {"--allowed-host": args.allowed_host, "--cors-origin": args.cors_origin}
    for flag, values in repeated.items():
        for value in values or ():
            command += [flag, value]
    return command + (["--hub", args.hub] if args.hub else [])


def _supervise(args: argparse.Namespace) -> int:
    """`ssenb serve --workers N`: bind once, run N workers on that socket, restart the dead."""
    from .server._workers import Supervisor, reserve

    if args.workers < 1:
        print("ssenb serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.token:  # each worker would hold its own login codes and session cookies
        print("ssenb serve: --token is per process, so it does not work with --workers;"
              " put the authentication in the proxy (docs/deploy.md)", file=sys.stderr)  # fmt: skip
        return 2
    if not args.hub and args.workers > 1:
        print("ssenb serve: without --hub each worker has its own /hub and /jobs (a client"
              " resuming on another worker misses events)", file=sys.stderr)  # fmt: skip
    try:
        sock = reserve(args.host, args.port, allow_remote=args.allow_remote)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"ssenb serve: {exc}", file=sys.stderr)
        return 1
    supervisor = Supervisor(sock, _worker_command(args), args.workers)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        supervisor.start()
        print(f"ssenb demo producers at {url}/  ({args.workers} workers: pids"
              f" {' '.join(map(str, supervisor.pids))}; Ctrl-C to stop)", flush=True)  # fmt: skip
        while True:
            supervisor.check()
            time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"ssenb serve: {exc}", file=sys.stderr)
        return 1
    finally:
        quiet = _ignore_stop_signals()
        supervisor.stop()
        sock.close()
        _restore(quiet, previous)
        print("ssenb serve: stopped", file=sys.stderr, flush=True)


def _hub_app(url: str) -> FastAPI:
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
        return _serve(args)
    return _tail(args.url, args.n, args.json)
