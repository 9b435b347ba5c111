"""IPython magics: `%load_ext ssenb`, then `%sse`, `%%sse`, `%sse_server`, `%sse_load`,
`%sse_llm_load`.

The magics are a thin shell over the library (`serve`, `collect`, `watch`, `read_jsonl`):
anything a magic does, a plain function call does too. Magics must block or return a handle
(IPython does not await a coroutine a magic returns), so `%sse` blocks until n / timeout / end
and `%sse --bg` returns a live `Subscription` at once. User mistakes raise `UsageError`, which
IPython shows as one line, never a traceback. Defaults are traits: `%config SSEMagics.timeout = 5`.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from IPython.core import magic
from IPython.core import magic_arguments as ipy_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class, needs_local_scope
from traitlets import Float, Integer, Unicode

from ._errors import SSEError
from .client import SourceOptions

__all__ = ["SSEMagics", "load_ipython_extension", "unload_ipython_extension"]

F = TypeVar("F", bound=Callable[..., Any])


class Decorator(Protocol):
    """A decorator that returns the function it was given, with its type."""

    def __call__(self, func: F, /) -> F: ...


# IPython ships its magic decorators unannotated: these wrappers give them their real types,
# so every magic below stays type-checked (the untyped values are confined to these lines).


def argument(*args: Any, **kwargs: Any) -> Decorator:
    """`@argument(...)` from `IPython.core.magic_arguments`: one argparse option."""
    make: Any = ipy_arguments.argument
    return cast("Decorator", make(*args, **kwargs))


def magic_arguments() -> Decorator:
    """`@magic_arguments()`: turns the `@argument`s below it into the magic's parser."""
    make: Any = ipy_arguments.magic_arguments
    return cast("Decorator", make())


def line_magic(func: F) -> F:
    """`@line_magic`: register the method as the line magic `%name` (its own name)."""
    make: Any = magic.line_magic
    return cast(F, make(func))


def cell_magic(name: str) -> Decorator:
    """`@cell_magic(name)`: register the method as the cell magic `%%name`."""
    make: Any = magic.cell_magic
    return cast("Decorator", make(name))


def parse_argstring(func: Callable[..., Any], line: str) -> argparse.Namespace:
    """The magic's arguments parsed from `line` by its `@magic_arguments` parser."""
    parse: Any = ipy_arguments.parse_argstring
    return cast("argparse.Namespace", parse(func, line))


def _parse(func: Callable[..., Any], line: str) -> argparse.Namespace:
    try:
        return parse_argstring(func, line)
    except UsageError:
        raise
    except SystemExit as exc:  # argparse's --help or an argparse error that slipped through
        raise UsageError(f"bad arguments: {line!r}") from exc


def _headers(pairs: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H wants 'Name: value', got {pair!r}")
        headers[name.strip()] = value.strip()
    return headers


def _stream_arguments(example: str, method: str) -> Decorator:
    """The options `%sse` and `%%sse` share (they differ in the default method only)."""
    options = [
        argument("url", help=f"http(s) URL, or a path such as {example} on the demo server"),
        argument("-n", type=int, default=None, help="stop after N events"),
        argument(
            "-t", "--timeout", type=float, default=None, help="stop after SECONDS (default 30)"
        ),
        argument("-e", "--event", action="append", help="keep only this event type (repeatable)"),
        argument("--record", metavar="FILE", help="also append the events to this JSONL file"),
        argument("--live", action="store_true", help="show a live view while reading"),
        argument("--bg", action="store_true", help="return a live Subscription at once"),
        argument("-X", "--method", default=method, help=f"HTTP method (default {method})"),
        argument(
            "-H", "--header", action="append", help="request header 'Name: value' (repeatable)"
        ),
        argument("-o", "--output", metavar="VAR", help="also store the result in this variable"),
    ]

    def apply(func: F) -> F:
        for option in reversed(options):  # decorators apply bottom-up
            func = option(func)
        return func

    return apply


@magics_class
class SSEMagics(Magics):
    """`%sse` and friends. Configure with `%config SSEMagics.<trait> = value`."""

    timeout = Float(
        30.0, allow_none=True, help="Default -t for %sse: seconds before it returns what arrived."
    ).tag(config=True)
    n = Integer(
        None, allow_none=True, help="Default -n for %sse: stop after this many events."
    ).tag(config=True)
    server = Unicode(
        "demo", help="Name of the demo server that relative paths resolve against."
    ).tag(config=True)

    # --- helpers -----------------------------------------------------------------------------

    def _resolve(self, url: str) -> str:
        """`/stream?n=5` -> URL on the running demo server (started if none runs)."""
        if url.startswith(("http://", "https://")):
            return url
        if not url.startswith("/"):
            raise UsageError(
                f"URL must start with http://, https:// or / (a demo path), got {url!r}"
            )
        from .server import serve

        handle = _running(self.server) or serve(name=self.server)
        return handle.url + url

    def _source_kw(self, args: argparse.Namespace, body: str | None = None) -> SourceOptions:
        kw: SourceOptions = {"method": str(args.method).upper()}
        headers = _headers(args.header)
        if headers:
            kw["headers"] = headers
        if body is not None and body.strip():
            try:
                kw["json"] = json.loads(body)
            except json.JSONDecodeError as exc:
                raise UsageError(f"the cell body must be JSON: {exc}") from exc
        return kw

    def _store(self, name: str | None, value: Any) -> None:
        if name:
            if not name.isidentifier():
                raise UsageError(f"-o wants a variable name, got {name!r}")
            if self.shell is None:
                raise UsageError("-o needs an IPython shell to store the result in")
            self.shell.user_ns[name] = value

    def _run(self, args: argparse.Namespace, body: str | None = None) -> Any:
        url = self._resolve(args.url)
        kw = self._source_kw(args, body)
        n = args.n if args.n is not None else self.n
        timeout = args.timeout if args.timeout is not None else self.timeout
        if n is not None and n < 1:
            raise UsageError("-n must be at least 1")
        if args.bg or args.live:
            from .notebook import watch

            sub = watch(url, record=args.record, **kw)
            if args.bg:
                self._store(args.output, sub)
                return sub
            sub.wait(timeout)
            sub.stop()
            frame = sub.df
        else:
            frame = self._collect(url, n, timeout, args.record, kw)
        if args.event:
            frame = frame[frame["event"].isin(args.event)].reset_index(drop=True)
        if n is not None:
            frame = frame.head(n)
        self._store(args.output, frame)
        return frame

    def _collect(
        self, url: str, n: int | None, timeout: float | None, path: str | None, kw: SourceOptions
    ) -> Any:
        from .notebook import collect

        try:
            return collect(url, n=n, timeout=timeout, record=path or None, **kw)
        except SSEError as err:
            partial = err.partial
            if partial is not None and len(partial):
                print(f"stream ended with an error after {len(partial)} events: {err}")
                return partial
            raise UsageError(str(err)) from err

    # --- magics ------------------------------------------------------------------------------

    @magic_arguments()
    @_stream_arguments(example="/stream?n=5", method="GET")
    @needs_local_scope
    @line_magic
    def sse(self, line: str, local_ns: dict[str, Any] | None = None) -> Any:
        """Read a Server-Sent Events stream into a DataFrame (or a live Subscription with --bg).

        Examples::

            df = %sse /stream?n=5&interval=0
            df = %sse http://127.0.0.1:8000/ticks -n 1000 -t 5 --record ticks.jsonl
            sub = %sse /ticks?rate=50 --bg
        """
        return self._run(_parse(self.sse, line))

    @magic_arguments()
    @_stream_arguments(example="/chat", method="POST")
    @cell_magic("sse")
    def sse_cell(self, line: str, cell: str) -> Any:
        """Send the cell body as the JSON request body and read the SSE answer.

        Example::

            %%sse /v1/chat/completions -o answer
            {"model": "demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]}
        """
        return self._run(_parse(self.sse_cell, line), body=cell)

    @magic_arguments()
    @argument("action", choices=["start", "stop", "status", "url"], help="what to do")
    @argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free one)")
    @argument("--app", metavar="MODULE:ATTR", help="serve this ASGI app instead of the demo app")
    @argument("--name", default=None, help="server name (default: SSEMagics.server)")
    @argument("--all", action="store_true", help="with stop: stop every ssenb server")
    @line_magic
    def sse_server(self, line: str) -> Any:
        """Start, stop or inspect the background demo server (start is idempotent)."""
        args = _parse(self.sse_server, line)
        from . import _status
        from ._lifecycle import stop_all
        from .server import serve

        name = args.name or self.server
        if args.action == "start":
            handle = _running(name)
            if handle is not None and (not args.port or handle.port == args.port) and not args.app:
                return handle
            return serve(_load_app(args.app) if args.app else None, port=args.port, name=name)
        if args.action == "stop":
            if args.all:
                stop_all()
            elif (handle := _running(name)) is not None:
                handle.stop()
            return None
        if args.action == "url":
            handle = _running(name)
            if handle is None:
                raise UsageError(f"no server named {name!r} is running: %sse_server start")
            return handle.url
        return _status.status()

    @magic_arguments()
    @argument("path", help="a JSONL recording")
    @argument("--raw", action="store_true", help="keep data as raw strings (parse_data=False)")
    @argument("-o", "--output", metavar="VAR", help="also store the DataFrame in this variable")
    @line_magic
    def sse_load(self, line: str) -> Any:
        """Load a JSONL recording into a DataFrame."""
        args = _parse(self.sse_load, line)
        path = Path(args.path).expanduser()
        if not path.exists():
            raise UsageError(f"no such recording: {path}")
        from .recording import read_jsonl

        frame = read_jsonl(path, parse_data=not args.raw)
        self._store(args.output, frame)
        return frame

    @magic_arguments()
    @argument("url", help="a streaming LLM endpoint, or a demo path such as /v1/chat/completions")
    @argument("-c", "--concurrency", default="1,4,16", help="levels, comma-separated")
    @argument("-r", "--requests", type=int, default=None, help="requests per level")
    @argument("-d", "--duration", type=float, default=None, help="seconds per level at most")
    @argument("--dialect", default="auto", help="auto, openai-chat, openai-responses, ...")
    @argument("-m", "--model", default=None, help="model name put into each request body")
    @argument("-p", "--prompt", action="append", help="prompt (repeatable, used in turn)")
    @argument("-b", "--body", default=None, help="extra JSON fields merged into each body")
    @argument("-H", "--header", action="append", help="request header 'Name: value'")
    @argument("--bg", action="store_true", help="return the running LoadRun at once")
    @argument("-o", "--output", metavar="VAR", help="also store the result in this variable")
    @line_magic
    def sse_llm_load(self, line: str) -> Any:
        """Measure TTFT, inter-token latency and tokens/s at each concurrency level
        (`ssenb.llm.load`); blocks and returns the per-request DataFrame (`--bg`: the run)."""
        args = _parse(self.sse_llm_load, line)
        try:
            levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
        except ValueError as exc:
            raise UsageError(f"-c wants comma-separated ints, got {args.concurrency!r}") from exc
        text = str(args.body or "")
        if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]  # IPython's argument splitting keeps the quotes
        try:
            extra = json.loads(text) if text else None
        except json.JSONDecodeError as exc:
            raise UsageError(f"-b must be a JSON object: {exc}") from exc
        if extra is not None and not isinstance(extra, dict):
            raise UsageError("-b must be a JSON object")
        from .llm import load

        try:
            run = load(
                self._resolve(args.url), dialect=args.dialect, concurrency=levels,
                requests=args.requests, duration=args.duration, model=args.model,
                prompts=args.prompt, body=extra, headers=_headers(args.header),
                background=True,
            )  # fmt: skip
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if args.bg:
            self._store(args.output, run)
            return run
        from .notebook._display import show

        show(run)
        result = run.wait()
        self._store(args.output, result)
        return result


def _running(name: str) -> Any:
    """The running server of that name, or None."""
    from . import _state

    handle = _state.servers.get(name)
    return handle if handle is not None and handle.running else None


def _load_app(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--app wants MODULE:ATTR, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load {spec!r}: {exc}") from exc


def load_ipython_extension(ipython: Any) -> None:
    """Called by `%load_ext ssenb`."""
    ipython.register_magics(SSEMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by `%unload_ext ssenb`: the magics stay until the kernel restarts (IPython has no
    unregister), but servers and subscriptions are stopped."""
    from ._lifecycle import stop_all

    stop_all()
