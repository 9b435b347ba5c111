"""`ssenb.llm.load`: TTFT, inter-token latency and tokens/s of an LLM endpoint under load.

The sweep runs on ssenb's own loop (its thread), so a cell is never blocked and a busy cell
never delays a read. `load(...)` shows the live view and returns the per-request DataFrame
when the sweep ends (a cell waits, the kernel does not: the view updates meanwhile);
`load(..., background=True)` returns a `LoadRun` at once, and `await run` (the cell returns,
the kernel stays free) or `run.wait()` give the same DataFrame.
Levels run one after another; within a level, `c` workers each send their next request as
soon as their last one ended (a closed loop, as vLLM's and GenAI-Perf's concurrency mode).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import pandas as pd

from ..notebook import _display, _loop
from ..notebook._display import Frame
from ..notebook._shown import Shown
from ._load import DEFAULT_PROMPT, Level, Sample, Target, open_client, run_level, target_for
from ._load_view import LoadView, summarize_levels

__all__ = ["LoadRun", "load"]

_log = logging.getLogger("ssenb")
TICK = 0.05
ROW_COLUMNS = list(Sample(0, 0, "", 0.0).row())


class LoadRun(Shown):
    """A running (then finished) sweep. Read from any thread: `.status` (running, done,
    stopped, error), `.df` (one row per finished request), `.summary` (one row per level),
    `.error`. `wait()` blocks until the end and returns `.df`; `await run` does the same
    without blocking the kernel; `stop()` ends it early and keeps what was measured."""

    view: LoadView

    def __init__(
        self,
        target: Target,
        levels: Sequence[int],
        *,
        prompts: list[str],
        requests: int | None,
        duration: float | None,
        headers: dict[str, str],
        timeout: float,
        ramp: float,
        display: bool | None,
    ) -> None:
        self.target, self.levels = target, list(levels)
        self.view = LoadView(title=target.url)
        self.status = "running"
        self.error: BaseException | None = None
        self._levels: list[Level] = []
        self._samples: list[Sample] = []
        self._done = threading.Event()
        self._text = display is None and not _display.in_kernel()
        self._frame = Frame(self.view, on_stop=self.stop) if display is not False and (
            not self._text) else None  # fmt: skip
        self._args = (prompts, requests, duration, headers, timeout)
        self.ramp = ramp
        self._task: asyncio.Task[None] | None = None
        self._future = _loop.submit(self._main())

    # -- results ---------------------------------------------------------------------------
    @property
    def df(self) -> pd.DataFrame:
        """One row per finished request (DataFrame columns: see `Sample.row`), summary in
        `.attrs["summary"]`."""
        done = [s for s in list(self._samples) if s.end is not None]
        df = pd.DataFrame([s.row() for s in done], columns=ROW_COLUMNS)
        df.attrs["summary"] = self.summary
        df.attrs["url"] = self.target.url
        return df

    @property
    def summary(self) -> pd.DataFrame:
        """One row per finished level: percentiles, tokens/s, client load, `client_bound`."""
        levels = list(self._levels)
        rows = [s.row() for lv in levels for s in lv.samples if s.end is not None]
        return summarize_levels(pd.DataFrame(rows, columns=ROW_COLUMNS), levels)

    def __repr__(self) -> str:
        return f"<LoadRun {self.target.url} levels={self.levels} status={self.status}>"

    # -- control -----------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """End the sweep now; requests in flight are cancelled and left out of `.df`."""
        if not self._done.is_set():
            _loop.get_loop().call_soon_threadsafe(self._cancel)
            if not _loop.in_loop_thread():
                self._done.wait(timeout)
        self._sync_display()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the sweep ends (an interrupt stops it, keeps the data, re-raises)."""
        _loop.wait_for(self._done, timeout, self.stop, "run")
        self._sync_display()
        return self.df

    def __await__(self) -> Generator[Any, None, pd.DataFrame]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> pd.DataFrame:
        try:
            await asyncio.wrap_future(self._future)
        except asyncio.CancelledError:
            self.stop()
            raise
        self._sync_display()
        return self.df

    # -- the sweep, on the ssenb loop --------------------------------------------------------
    async def _main(self) -> None:
        self._task = asyncio.current_task()
        prompts, requests, duration, headers, timeout = self._args
        renderer = asyncio.create_task(self._render())
        origin = time.perf_counter()
        status, error = "done", None
        view = self.view
        view.on_status("open")
        try:
            async with open_client(self.target.url, timeout, max(self.levels)) as client:
                for c in self.levels:
                    view.start_level(c, time.monotonic())
                    self._levels.append(Level(c))
                    count = requests if requests or duration else max(2 * c, 4)
                    measured = await run_level(
                        client, self.target, c, prompts=prompts, requests=count,
                        duration=duration, headers=headers, origin=origin,
                        first_index=len(self._samples), ramp=self.ramp, on_start=self._started,
                        on_done=view.on_done,
                    )  # fmt: skip
                    self._levels[-1] = measured
                    view.end_level(measured)
                    if measured.client_bound:
                        view.note = f"client saturated at c={c}: figures show ssenb's limit"
        except asyncio.CancelledError:
            status = "stopped"
        except Exception as exc:
            status, error = "error", exc
        renderer.cancel()
        self._finish(status, error)

    def _started(self, sample: Sample) -> None:
        self._samples.append(sample)
        self.view.on_start(sample)

    def _finish(self, status: str, error: BaseException | None) -> None:
        try:
            self.status, self.error = status, error
            self.view.on_status(status, error)
            if self._frame is not None:
                self._frame.tick(time.monotonic(), final=True)
                self._frame.finish(self._bundle)
            elif self._text:
                print(self.view.text(), file=sys.stderr, flush=True)
        except Exception:
            _log.exception("ssenb: showing the end of the load sweep failed")
        finally:
            self._done.set()

    async def _render(self) -> None:
        last_text = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            try:
                if self._frame is not None:
                    self._frame.tick(now)
                elif self._text and now - last_text >= 1.0:
                    last_text = now
                    print(self.view.text(now), file=sys.stderr, flush=True)
            except Exception:
                _log.exception("ssenb: rendering the load view failed")
                await asyncio.sleep(1.0)


@overload
def load(
    url: str,
    *,
    dialect: str = "auto",
    concurrency: int | Iterable[int] = (1, 4, 16),
    requests: int | None = None,
    prompts: str | Iterable[str] | None = None,
    headers: Mapping[str, str] | None = None,
    duration: float | None = None,
    model: str | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    ramp: float = 0.0,
    display: bool | None = None,
    background: Literal[False] = False,
) -> pd.DataFrame: ...


@overload
def load(
    url: str,
    *,
    dialect: str = "auto",
    concurrency: int | Iterable[int] = (1, 4, 16),
    requests: int | None = None,
    prompts: str | Iterable[str] | None = None,
    headers: Mapping[str, str] | None = None,
    duration: float | None = None,
    model: str | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    ramp: float = 0.0,
    display: bool | None = None,
    background: Literal[True],
) -> LoadRun: ...


def load(
    url: str,
    *,
    dialect: str = "auto",
    concurrency: int | Iterable[int] = (1, 4, 16),
    requests: int | None = None,
    prompts: str | Iterable[str] | None = None,
    headers: Mapping[str, str] | None = None,
    duration: float | None = None,
    model: str | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    ramp: float = 0.0,
    display: bool | None = None,
    background: bool = False,
) -> pd.DataFrame | LoadRun:
    """Sweep `url` at each `concurrency` level and measure every streamed answer.

    Args:
        url: a streaming endpoint: `.../chat/completions`, `.../responses`, `.../messages`,
            `...:streamGenerateContent`, or ssenb's `GET /chat`.
        dialect: "auto" (from the URL's path) or one of "openai-chat", "openai-responses",
            "anthropic", "gemini", "ssenb".
        concurrency: levels, run in order (an int: one level).
        requests: requests per level (default 2 per stream, at least 4); with `duration`
            the level ends at whichever comes first. Fewer requests than streams open fewer
            streams: the summary's `peak_streams` says how many were really open at once.
        prompts: used in turn; headers: sent with every request (e.g. an Authorization
            header built from an environment variable); model, body: merged into each
            request body (`body={"max_tokens": 64}`, or the mock's `delay`/`ttft`/`jitter`).
        timeout: s to connect, and of silence while reading, per request; ramp: s over
            which a level's streams start, evenly (0: all at once, the burst a server sees
            when c users click).
        display: None shows a live view in a kernel (a text line elsewhere); False: none.
        background: False (default) waits for the end and returns the DataFrame; True
            returns the `LoadRun` at once (`await run` in a cell, or `run.wait()`).

    Returns the DataFrame, one row per request (concurrency, start, ttft, itl_p50, itl_p99,
    output_tokens, tokens_per_s, error, ...), with the per-level summary in
    `.attrs["summary"]`; with `background=True` the `LoadRun` that gives it (and `.summary`).
    """
    levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
    if not levels or any(not isinstance(c, int) or c < 1 for c in levels):
        raise ValueError(f"concurrency must be positive ints, not {concurrency!r}")
    if requests is not None and requests < 1:
        raise ValueError(f"requests must be >= 1, not {requests}")
    if ramp < 0:
        raise ValueError(f"ramp must be >= 0 s, not {ramp}")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0 s, not {duration}")
    texts = [prompts] if isinstance(prompts, str) else list(
        [DEFAULT_PROMPT] if prompts is None else prompts)  # fmt: skip
    if not texts:
        raise ValueError("prompts must hold at least one prompt")
    target = target_for(url, dialect, model=model, body=dict(body or {}))
    run = LoadRun(
        target, levels, prompts=texts, requests=requests, duration=duration,
        headers=dict(headers or {}), timeout=timeout, ramp=ramp, display=display,
    )  # fmt: skip
    if background:
        return run
    if display is not False:
        _display.show(run)  # the live view, in this cell, while it waits
    return run.wait()
