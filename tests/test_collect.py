"""`ssenb.collect`: a stream into a DataFrame, in a script or a kernel, nothing lost."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI

import ssenb
from ssenb import Event
from ssenb.recording import JSONLRecorder
from ssenb.server import EventStreamResponse

ENVELOPE = ["time", "event", "id", "retry", "data"]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/three-then-silent")
    async def silent() -> EventStreamResponse:
        async def gen() -> AsyncIterator[Event]:
            for i in range(1, 4):
                yield Event(event="step", data=f'{{"step": {i}}}', id=str(i))
            await asyncio.sleep(3600)

        return EventStreamResponse(gen(), heartbeat=0.05)

    @app.get("/then-too-large")
    async def too_large() -> EventStreamResponse:
        async def gen() -> AsyncIterator[Event]:
            for i in range(1, 4):
                yield Event(data=str(i), id=str(i))
            yield Event(data="x" * 5000, id="4")

        return EventStreamResponse(gen(), heartbeat=None)

    return app


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with ssenb.serve(name="test_collect_demo") as handle:
        yield handle.url


@pytest.fixture(scope="module")
def own() -> Iterator[str]:
    with ssenb.serve(_app(), name="test_collect") as handle:
        yield handle.url


def test_columns_follow_the_contract(demo: str) -> None:
    before = pd.Timestamp.now(tz="UTC")
    df = ssenb.collect(demo + "/stream?n=3&interval=0")
    assert list(df.columns) == [*ENVELOPE, "data.count", "data.message"]
    assert df["id"].tolist() == ["1", "2", "3"]
    assert df["data.count"].tolist() == [1, 2, 3]
    assert ((df["time"] >= before) & (df["time"] <= pd.Timestamp.now(tz="UTC"))).all()


@pytest.mark.parametrize(
    ("path", "kwargs", "rows"),
    [
        ("/stream?n=4&interval=0", {}, 4),
        ("/ticks?n=0&rate=0", {"n": 250}, 250),
        ("/ticks?n=0&rate=0", {"until": lambda ev: ev.id == "5"}, 5),
        ("/ticks?n=0&rate=0", {"n": 0}, 0),
    ],
    ids=["until-done", "n", "until", "n-zero"],
)
def test_returns_what_arrived_by_the_first_rule(
    demo: str, path: str, kwargs: dict[str, object], rows: int
) -> None:
    df = ssenb.collect(demo + path, **kwargs)  # type: ignore[arg-type]
    assert df["id"].tolist() == [str(i) for i in range(1, rows + 1)]


def test_timeout_on_a_silent_server_returns_what_arrived(own: str) -> None:
    started = time.monotonic()
    df = ssenb.collect(own + "/three-then-silent", timeout=0.3)
    assert time.monotonic() - started < 5 * 0.3
    assert df["data.step"].tolist() == [1, 2, 3]


def test_works_in_a_running_event_loop_without_nest_asyncio(demo: str) -> None:
    async def cell() -> pd.DataFrame:
        return ssenb.collect(demo + "/stream?n=2&interval=0")

    assert len(asyncio.run(cell())) == 2


def test_an_sse_error_carries_the_frame_so_far(own: str) -> None:
    with pytest.raises(ssenb.SSEEventTooLarge) as info:
        ssenb.collect(own + "/then-too-large", max_event_bytes=1000)
    assert info.value.partial["id"].tolist()[:3] == ["1", "2", "3"]


def test_a_status_error_carries_an_empty_frame(demo: str) -> None:
    with pytest.raises(ssenb.SSEStatusError) as info:
        ssenb.collect(demo + "/no-such-endpoint")
    assert list(info.value.partial.columns) == ENVELOPE
    assert len(info.value.partial) == 0


def test_any_other_error_carries_the_frame_so_far_too(demo: str) -> None:
    def until(ev: Event) -> bool:
        if ev.id == "3":
            raise RuntimeError("bad predicate")
        return False

    with pytest.raises(RuntimeError, match="bad predicate") as info:
        ssenb.collect(demo + "/stream?n=5&interval=0", until=until)
    assert info.value.partial["id"].tolist() == ["1", "2", "3"]  # type: ignore[attr-defined]


def test_record_appends_every_event_as_it_arrives(demo: str, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    first = ssenb.collect(demo + "/stream?n=3&interval=0", record=path)
    second = ssenb.collect(demo + "/stream?n=2&interval=0", record=path)
    back = ssenb.read_jsonl(path)
    assert list(back["id"]) == [*first["id"], *second["id"]] == ["1", "2", "3", "1", "2"]


def test_record_keeps_what_arrived_before_an_error(own: str, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    with pytest.raises(ssenb.SSEEventTooLarge) as info:
        ssenb.collect(own + "/then-too-large", record=path, max_event_bytes=1000)
    assert list(ssenb.read_jsonl(path)["id"]) == list(info.value.partial["id"]) == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("c.parquet", None), ("c-folder", "parquet"), ("c.jsonl", None)],
    ids=["parquet-by-suffix", "parquet-by-format", "jsonl"],
)
def test_record_writes_either_format(demo: str, tmp_path: Path, name: str, fmt: Any) -> None:
    df = ssenb.collect(demo + "/stream?n=3&interval=0", record=tmp_path / name, record_format=fmt)
    back = ssenb.read_jsonl if name.endswith(".jsonl") else ssenb.read_dataset
    assert back(tmp_path / name)["id"].tolist() == df["id"].tolist() == ["1", "2", "3"]


def test_an_open_recorder_is_flushed_and_left_open(demo: str, tmp_path: Path) -> None:
    with JSONLRecorder(tmp_path / "r.jsonl", flush_interval=60) as rec:
        ssenb.collect(demo + "/stream?n=2&interval=0", record=rec)
        assert len(ssenb.read_jsonl(tmp_path / "r.jsonl")) == 2  # flushed, not buffered
        ssenb.collect(demo + "/stream?n=1&interval=0", record=rec)  # still open
    assert ssenb.read_jsonl(tmp_path / "r.jsonl")["id"].tolist() == ["1", "2", "1"]


def test_ctrl_c_returns_what_arrived_with_a_warning(own: str) -> None:
    threading.Timer(0.4, _thread.interrupt_main).start()
    with pytest.warns(RuntimeWarning, match="interrupted: returning the 3 events"):
        df = ssenb.collect(own + "/three-then-silent")
    assert df["id"].tolist() == ["1", "2", "3"]


KERNEL_SETUP = """
import asyncio, ssenb
from fastapi import FastAPI
from ssenb import Event
from ssenb.server import EventStreamResponse

app = FastAPI()

@app.get("/silent")
async def silent():
    async def gen():
        for i in range(1, 4):
            yield Event(data=str(i), id=str(i))
        await asyncio.sleep(3600)
    return EventStreamResponse(gen(), heartbeat=0.05)

srv = ssenb.serve(app, name="kernel-collect")
demo = ssenb.serve(name="kernel-collect-demo")
"""


@pytest.mark.slow
def test_collect_and_record_in_a_real_kernel(tmp_path: Path) -> None:
    """In a cell the kernel's loop is running: collect/record still work, and a kernel
    interrupt (Ctrl-C, the stop button) returns what arrived with a warning."""
    from _kernel import kernel

    with kernel(tmp_path) as k:
        k.ok(KERNEL_SETUP, timeout=120)
        df = k.ok(
            "asyncio.get_running_loop()\n"  # raises if no loop were running in the cell
            "df = ssenb.collect(demo.url + '/stream?n=3&interval=0')\n"
            "print(df['id'].tolist())"
        )
        assert df.stdout.strip() == "['1', '2', '3']"
        rec = k.ok("print(ssenb.record(demo.url + '/stream?n=4&interval=0', 'r.jsonl'))")
        assert rec.stdout.strip() == "4"
        timer = threading.Timer(1.5, k.km.interrupt_kernel)
        timer.start()
        reply = k.run("df = ssenb.collect(srv.url + '/silent')\nprint(len(df))", timeout=60)
        timer.join()
        assert reply.status == "ok", reply.error
        assert reply.stdout.strip() == "3"
        assert "interrupted: returning the 3 events" in reply.stderr
        k.ok("srv.stop(); demo.stop()")
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 4


# The user's situation, not ssenb's: many notebooks patch asyncio for another library. The
# module is named through importlib so the packaging check (no nest_asyncio in ssenb) stays
# meaningful; ssenb itself never applies it.
NEST_ASYNCIO = "import importlib\nimportlib.import_module('nest_asyncio').apply()\n"


@pytest.mark.slow
def test_collect_record_watch_magics_and_serve_work_after_the_user_applies_nest_asyncio(
    tmp_path: Path,
) -> None:
    """With nest_asyncio in effect: serve, collect, record, watch (the auto and the chart
    view), the magics (`%sse`, `%sse --bg`, `%sse_llm_load`) and a kernel interrupt still
    work, and nothing is printed on stderr (no "Exception ignored ... RuntimeError"
    tracebacks from httpcore/anyio finalizing connections on the wrong loop)."""
    from _kernel import kernel

    with kernel(tmp_path) as k:
        k.ok(NEST_ASYNCIO + KERNEL_SETUP, timeout=120)
        assert k.value("asyncio.run.__module__") == "nest_asyncio"  # the patch is in effect
        cells = {  # cell: what it must print
            "print(len(ssenb.collect(demo.url + '/stream?n=3&interval=0')))": "3",
            "print(ssenb.record(demo.url + '/stream?n=4&interval=0', 'r.jsonl'))": "4",
            "print(len(ssenb.collect(demo.url + '/ticks?rate=0', n=2000)))": "2000",
            "sub = ssenb.watch(demo.url + '/stream?n=5&interval=0')\n"
            "sub.wait(30); print(len(sub.df))": "5",
            "sub = ssenb.watch(demo.url + '/ticks?rate=0&n=3000', view='chart')\n"
            "sub.wait(30); print(len(sub.df))": "3000",
            "%load_ext ssenb\nm = %sse /stream?n=6&interval=0\nprint(len(m))": "6",
            "b = %sse /stream?n=2&interval=0.01 --bg\nb.wait(30); print(len(b.df))": "2",
            'rows = %sse_llm_load /v1/messages -c 1,2 -r 2 -b \'{"delay": 0, "ttft": 0}\'\n'
            "print(len(rows))": "4",
            "import gc; gc.collect(); print('collected')": "collected",
        }
        replies = [k.ok(cell) for cell in cells]
        assert [r.stdout.strip() for r in replies] == list(cells.values())
        assert [r.stderr for r in replies] == [""] * len(cells)
        timer = threading.Timer(1.5, k.km.interrupt_kernel)
        timer.start()
        reply = k.run("df = ssenb.collect(srv.url + '/silent')\nprint(len(df))", timeout=60)
        timer.join()
        assert reply.status == "ok", reply.error
        assert reply.stdout.strip() == "3"
        assert "Exception ignored" not in reply.stderr
        k.ok("srv.stop(); demo.stop()")
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 4
