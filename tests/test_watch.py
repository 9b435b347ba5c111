"""`watch()` and `Subscription` against a real uvicorn server on 127.0.0.1.

What a subscription promises: it returns at once and consumes in the background; `stop()`, an
interrupt, a server error or a dropped connection never lose what was received (the events,
the DataFrame and the recording agree); the widget view sends at most 20 comm messages per
second at 50 k events/s; plain Python gets a text status line and never imports ipywidgets.
"""

from __future__ import annotations

import _thread
import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
from fastapi import FastAPI

import ssenb
from ssenb import Event, EventStreamResponse, SSEStatusError
from ssenb.notebook import Subscription, _loop, watch
from ssenb.notebook._display import MAX_MESSAGES_PER_SECOND, WIDGET_MIMETYPE
from ssenb.notebook._view_llm import TokenView
from ssenb.notebook._view_log import LogView
from ssenb.notebook._view_progress import ProgressView, RateView

XSS = "<img src=x onerror=alert(1)>"


def shapes_app() -> FastAPI:
    """The event shapes the views understand: /chat tokens, OpenAI chunks, job progress."""
    app = FastAPI()

    async def chat(prompt: str) -> AsyncIterator[Any]:
        for word in f"echo: {prompt}".split(" "):
            yield {"content": word + " "}
            await asyncio.sleep(0.01)
        yield "[DONE]"

    async def chunks() -> AsyncIterator[Any]:
        for piece, finish in [("Hel", None), ("lo", None), (None, "stop")]:
            delta = {} if piece is None else {"content": piece}
            yield {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        yield "[DONE]"

    async def job(fail: bool) -> AsyncIterator[Any]:
        for p in range(0, 101, 20):
            if fail and p == 60:
                yield Event(event="error", data=json.dumps({"error": "disk full"}))
                return
            yield Event(event="progress", data=json.dumps({"progress": p, "status": "running"}))
            await asyncio.sleep(0.01)
        yield Event(event="complete", data=json.dumps({"status": "completed"}))
        yield "[DONE]"

    app.get("/chat")(lambda prompt: EventStreamResponse(chat(prompt)))
    app.post("/v1/chat/completions")(lambda: EventStreamResponse(chunks()))
    app.get("/jobs/{job_id}/progress")(lambda job_id: EventStreamResponse(job(job_id == "bad")))
    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    srv = ssenb.serve(name="test-watch")
    yield srv.url
    srv.stop()


@pytest.fixture(scope="module")
def shapes() -> Iterator[str]:
    srv = ssenb.serve(shapes_app(), name="test-watch-shapes")
    yield srv.url
    srv.stop()


@pytest.fixture
def subs() -> Iterator[list[Subscription]]:
    """Subscriptions made by a test, stopped afterwards whatever happened."""
    made: list[Subscription] = []
    yield made
    for sub in made:
        sub.stop()


def start(subs: list[Subscription], url: str, **kw: Any) -> Subscription:
    kw.setdefault("display", False)
    sub = watch(url, **kw)
    subs.append(sub)
    return sub


def ids(events: list[Event]) -> list[int]:
    return [int(ev.id) for ev in events]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the one ssenb loop ------------------------------------------------------------------


def test_wait_on_the_loop_raises_instead_of_deadlocking(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/ticks?rate=10")
    with pytest.raises(RuntimeError, match="await sub"):
        _loop.call(sub.wait)
    assert sub.running


# -- background consumption ---------------------------------------------------------------


def test_watch_returns_at_once_and_finishes_in_the_background(
    url: str, subs: list[Subscription]
) -> None:
    began = time.monotonic()
    sub = start(subs, f"{url}/stream?n=5&interval=0.2")
    assert time.monotonic() - began < 0.5  # the stream itself takes 1 s
    assert sub.status in ("connecting", "open")
    assert sub.wait(timeout=10)
    assert (sub.status, sub.error) == ("done", None)
    assert ids(sub.events) == [1, 2, 3, 4, 5]
    assert sub.df["data.count"].tolist() == [1, 2, 3, 4, 5]


def test_consuming_goes_on_while_the_caller_blocks(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/ticks?rate=200")
    assert sub.wait(timeout=0.3) is False
    before = len(sub.events)
    time.sleep(1)  # a blocking cell
    assert len(sub.events) - before >= 100  # 200 ev/s kept flowing, generously bounded
    assert sub.running


def test_await_returns_the_dataframe(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/stream?n=3&interval=0")

    async def cell() -> Any:
        return await sub

    df = asyncio.run(cell())
    assert df["id"].tolist() == ["1", "2", "3"]


def test_status_lists_live_subscriptions(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/ticks?rate=50")
    assert sub.url in str(ssenb.status())
    sub.stop()
    assert sub.url not in str(ssenb.status())


# -- nothing received is lost -------------------------------------------------------------


def test_stop_keeps_events_dataframe_and_recording_in_step(
    url: str, subs: list[Subscription], tmp_path: Path
) -> None:
    path = tmp_path / "ticks.jsonl"
    sub = start(subs, f"{url}/ticks?rate=500", record=path, batch_size=64)
    time.sleep(0.5)
    sub.stop()
    kept = sub.events
    assert sub.status == "stopped"
    assert len(kept) > 50
    assert sub.df["id"].tolist() == [ev.id for ev in kept]
    assert [row["id"] for row in jsonl(path)] == [ev.id for ev in kept]
    time.sleep(0.2)
    assert len(sub.events) == len(kept)  # stopped means stopped


@pytest.mark.parametrize("record_format", [None, "jsonl", "parquet"])
def test_the_recording_holds_every_event_in_either_format(
    url: str, subs: list[Subscription], tmp_path: Path, record_format: str | None
) -> None:
    path = tmp_path / ("ds" if record_format == "parquet" else "t.jsonl")
    sub = start(subs, f"{url}/stream?n=40&interval=0", record=path, record_format=record_format)
    assert sub.wait(timeout=20)
    saved = ssenb.read_dataset(path) if record_format == "parquet" else ssenb.read_jsonl(path)
    assert sorted(saved["id"].astype(int)) == list(range(1, 41))


def test_interrupt_while_waiting_stops_and_keeps_the_data(
    url: str, subs: list[Subscription]
) -> None:
    sub = start(subs, f"{url}/ticks?rate=200")
    timer = threading.Timer(0.5, _thread.interrupt_main)  # what Ctrl-C / kernel interrupt does
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sub.wait()
    assert sub.status == "stopped"
    assert len(sub.events) > 20
    assert len(sub.df) == len(sub.events)


def test_a_server_error_event_ends_cleanly_with_everything(
    url: str, subs: list[Subscription]
) -> None:
    sub = start(subs, f"{url}/errors?fail_after=3")
    assert sub.wait(timeout=10)
    kinds = [ev.event for ev in sub.events]
    assert kinds == ["connected", "message", "message", "message", "item_error", "error"]
    assert sub.status == "done"
    assert sub.df["event"].tolist() == kinds


def test_a_dropped_connection_resumes_without_duplicates(
    url: str, subs: list[Subscription]
) -> None:
    sub = start(subs, f"{url}/flaky?n=12&every=5&retry=10")
    assert sub.wait(timeout=10)
    assert (sub.status, ids(sub.events)) == ("done", list(range(1, 13)))


def test_a_dropped_connection_without_reconnect_keeps_what_came(
    url: str, subs: list[Subscription], tmp_path: Path
) -> None:
    path = tmp_path / "flaky.jsonl"
    sub = start(subs, f"{url}/flaky?n=12&every=5", reconnect="never", record=path)
    assert sub.wait(timeout=10)
    assert ids(sub.events) == [1, 2, 3, 4, 5]
    assert len(sub.df) == 5
    assert len(jsonl(path)) == 5


def test_an_http_error_is_kept_typed(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/no-such-endpoint")
    assert sub.wait(timeout=10)
    assert sub.status == "error"
    assert isinstance(sub.error, SSEStatusError)
    assert sub.error.status == 404
    assert sub.events == []


def test_bad_arguments_fail_at_once(url: str) -> None:
    with pytest.raises(TypeError, match=r"watch\(\) got unexpected keyword.*'no_such_option'"):
        watch(f"{url}/stream", display=False, no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"Subscription\(\) got unexpected keyword.*'hedaers'"):
        Subscription(f"{url}/stream", display=False, hedaers={})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown view"):
        watch(f"{url}/stream", display=False, view="pie")
    with pytest.raises(FileNotFoundError):
        watch(f"{url}/stream", display=False, record="/no/such/dir/x.jsonl")
    assert not [s for s in ssenb._state.subscriptions.values() if s.url == f"{url}/stream"]


class Broken(LogView):
    """A view with a bug: it raises on every batch."""

    def _add(self, events: list[Event], now: float) -> None:
        raise ValueError("view bug")


def test_a_failing_view_never_stops_the_data(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/stream?n=20&interval=0.01", view=Broken(), display=True)
    assert sub.wait(timeout=10)
    assert (sub.status, len(sub.events), len(sub.df)) == ("done", 20, 20)


def test_max_rows_keeps_the_newest(url: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{url}/stream?n=30&interval=0", max_rows=10)
    assert sub.wait(timeout=10)
    assert ids(sub.events) == list(range(21, 31))
    assert sub.df["id"].tolist() == [str(i) for i in range(21, 31)]


# -- the views the endpoints call for -----------------------------------------------------


def test_chat_tokens_are_assembled(shapes: str, subs: list[Subscription]) -> None:
    sub = start(subs, f"{shapes}/chat?prompt=hello%20there")
    assert sub.wait(timeout=10)
    view = sub.view
    assert isinstance(view, TokenView)
    assert view.answer == "echo: hello there "
    assert view.ttft is not None
    assert view.tokens == 3


def test_openai_chunks_over_post(shapes: str, subs: list[Subscription]) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    sub = start(subs, f"{shapes}/v1/chat/completions", method="POST", json=body)
    assert sub.wait(timeout=10)
    view = sub.view
    assert isinstance(view, TokenView)
    assert (view.answer, view.finish_reason) == ("Hello", "stop")


@pytest.mark.parametrize(
    ("job", "bar"), [("ok", (100, "success")), ("bad", (40, "danger"))], ids=["completes", "fails"]
)
def test_progress_events_drive_the_bar(
    shapes: str, subs: list[Subscription], job: str, bar: tuple[int, str]
) -> None:
    sub = start(subs, f"{shapes}/jobs/{job}/progress")
    assert sub.wait(timeout=10)
    assert isinstance(sub.view, ProgressView)
    assert sub.view.progress() == bar


# -- widgets: the message budget at 50 k events/s -----------------------------------------


def test_widget_view_sends_at_most_20_messages_a_second_at_full_rate(
    url: str, subs: list[Subscription], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[float, str]] = []
    original = ipywidgets.Widget._send

    def counting(self: ipywidgets.Widget, msg: dict, buffers: list | None = None) -> None:
        sent.append((time.monotonic(), self.model_id))
        original(self, msg, buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", counting)
    sub = start(subs, f"{url}/ticks?rate=0", view=RateView(bucket=0.25), display=True)
    mine = {w.model_id for w in sub._frame.widgets()}  # type: ignore[union-attr]
    began = time.monotonic()
    time.sleep(2.5)
    sub.stop()
    ended = time.monotonic()
    rate = len(sub.events) / (ended - began)
    live = [t for t, model in sent if model in mine and t < ended - 0.05]
    busiest = max(sum(1 for u in live if t <= u < t + 1) for t in live)
    assert rate >= 50_000, f"only {rate:.0f} events/s"
    assert 0 < busiest <= MAX_MESSAGES_PER_SECOND
    html = sub._frame.html.value  # type: ignore[union-attr]
    assert f"{len(sub.events):,} events" in html  # the final state was sent
    assert "stopped" in html


def test_the_bundle_is_live_while_streaming_and_the_snapshot_alone_at_the_end(
    shapes: str, subs: list[Subscription]
) -> None:
    sub = start(subs, f"{shapes}/chat?prompt={XSS}&delay=0.2", display=True)
    assert WIDGET_MIMETYPE in sub._bundle()  # live: the widget (and the snapshot)
    assert sub.wait(timeout=10)
    bundle = sub._bundle()
    assert set(bundle) == {"text/html", "text/plain"}  # ended: what nbconvert shows offline
    assert "&lt;img src=x onerror=alert(1)&gt;" in bundle["text/html"]
    assert "<img" not in bundle["text/html"]


# -- plain Python -------------------------------------------------------------------------

PLAIN = """
import sys, ssenb
srv = ssenb.serve(name="plain")
sub = ssenb.watch(srv.url + "/stream?n=12&interval=0.15")
sub.wait(10)
srv.stop()
print(len(sub.events), sub.status, "ipywidgets" in sys.modules, "IPython" in sys.modules)
"""


def test_plain_python_prints_a_text_status_line_without_widgets() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["12", "done", "False", "False"]
    lines = [line for line in done.stderr.splitlines() if line.startswith("[ssenb]")]
    assert lines[-1].startswith("[ssenb] done | http://127.0.0.1:")
    assert lines[-1].endswith("| 12 events")
    assert 1 <= len(lines) <= 4  # ~1.8 s of stream: at most one line a second, plus the end


EXIT = """
import atexit, sys, time, ssenb
atexit.register(lambda: print(sub.status, len(sub.events)))  # runs after ssenb's own hook
srv = ssenb.serve(name="exit")
sub = ssenb.watch(srv.url + "/ticks?rate=2000", record=sys.argv[1], display=False)
time.sleep(0.6)
"""  # ...and the interpreter exits with the watch still running


def test_interpreter_exit_stops_the_watch_and_flushes_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", EXIT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, seen = done.stdout.split()
    assert status == "stopped"
    assert int(seen) > 100
    assert len(jsonl(path)) == int(seen)  # every event received is on disk
