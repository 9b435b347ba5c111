"""`JSONLRecorder` and `record()`: crash-safe JSONL, appended, flushed within 0.2 s."""

from __future__ import annotations

import _thread
import asyncio
import inspect
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

import ssenb
from ssenb import Event
from ssenb.recording import JSONLRecorder, read_jsonl, record
from ssenb.server import EventStreamResponse

FLUSH = 0.2


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize(
    "event",
    [
        Event(),
        Event(event="tick", data='{"a": 1}', id="7", retry=250),
        Event(data='line one\nline two\u2028 and "quotes"'),
    ],
    ids=["defaults", "all-fields", "multiline-unicode-text"],
)
def test_one_object_per_line_with_the_contract_keys(tmp_path: Path, event: Event) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path, source="http://127.0.0.1:1/s") as rec:
        rec.write(event, time=1700000000.25)
    assert _lines(path) == [
        {
            "time": 1700000000.25,
            "event": event.event,
            "id": event.id,
            "retry": event.retry,
            "data": event.data,
            "source": "http://127.0.0.1:1/s",
        }
    ]


def test_appends_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    for run in range(3):
        with JSONLRecorder(path) as rec:
            rec.write(Event(data=str(run)))
    assert [line["data"] for line in _lines(path)] == ["0", "1", "2"]


def test_a_torn_tail_from_a_killed_run_stays_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path) as rec:
        rec.write(Event(data="kept", id="1"))
    with open(path, "ab") as f:
        f.write(b'{"time": 1.0, "da')  # what SIGKILL mid-write would leave
    with JSONLRecorder(path) as rec:
        rec.write(Event(data="new", id="2"))
    with pytest.warns(RuntimeWarning, match=r"bad line\(s\): 2$"):
        df = read_jsonl(path, on_error="skip")
    assert df["data"].tolist() == ["kept", "new"]


def test_the_buffer_is_written_when_it_passes_64_kib(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path, flush_interval=60) as rec:
        rec.write(Event(data="x" * 100))
        assert path.stat().st_size == 0  # buffered
        for _ in range(700):
            rec.write(Event(data="x" * 100))
        assert path.stat().st_size > 64 << 10
        assert path.read_bytes().endswith(b"\n")  # written in whole lines


def test_a_quiet_stream_is_flushed_within_the_interval_by_the_timer(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path, flush_interval=0.05) as rec:
        rec.write(Event(data="only one"))
        written = time.monotonic()
        assert _wait_for(lambda: path.stat().st_size > 0, 5 * 0.05)
        assert time.monotonic() - written < 5 * 0.05


def test_close_flushes_is_idempotent_and_refuses_later_writes(tmp_path: Path) -> None:
    rec = JSONLRecorder(tmp_path / "r.jsonl", flush_interval=60)
    rec.write(Event(data="a"))
    rec.close()
    rec.close()
    assert rec.written == 1
    assert len(_lines(tmp_path / "r.jsonl")) == 1
    with pytest.raises(ValueError, match="closed"):
        rec.write(Event(data="b"))


def test_threads_writing_at_once_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path, flush_interval=0.001) as rec:

        def write(tag: str) -> None:
            for i in range(2000):
                rec.write(Event(event=tag, data=f"{tag}{i}" * 20))

        threads = [threading.Thread(target=write, args=(t,)) for t in "abc"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = _lines(path)
    assert len(lines) == 6000
    for tag in "abc":
        assert [x["data"] for x in lines if x["event"] == tag] == [
            f"{tag}{i}" * 20 for i in range(2000)
        ]


# --- record(): against a real server on 127.0.0.1 --------------------------------------

SENT: list[tuple[str, float]] = []


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/silent")
    async def silent() -> EventStreamResponse:
        async def gen() -> AsyncIterator[Event]:
            yield Event(data="hello", id="1")
            await asyncio.sleep(3600)

        return EventStreamResponse(gen(), heartbeat=0.05)

    @app.get("/paced")
    def paced(rate: float = 200.0) -> EventStreamResponse:
        def gen() -> Iterator[Event]:
            for i in range(1, 1_000_000):
                SENT.append((str(i), time.time()))
                yield Event(data=orjson.dumps({"i": i}).decode(), id=str(i))
                time.sleep(1 / rate)

        return EventStreamResponse(gen(), heartbeat=None)

    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    handle = ssenb.serve(_app(), name="test_record_recorder")
    with handle:
        yield handle.url


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    handle = ssenb.serve(name="test_record_recorder_demo")
    with handle:
        yield handle.url


@pytest.mark.parametrize(
    ("path", "kwargs", "count"),
    [
        ("/stream?n=5&interval=0", {}, 5),
        ("/ticks?n=0&rate=0", {"n": 300}, 300),
    ],
    ids=["to-the-end", "n-events"],
)
def test_record_returns_the_count_written(
    demo: str, tmp_path: Path, path: str, kwargs: dict[str, Any], count: int
) -> None:
    out = tmp_path / "r.jsonl"
    assert record(demo + path, out, **kwargs) == count
    lines = _lines(out)
    assert [x["id"] for x in lines] == [str(i) for i in range(1, count + 1)]
    assert {x["source"] for x in lines} == {demo + path}


def test_ssenb_record_is_the_function_even_once_the_package_is_imported(
    demo: str, tmp_path: Path
) -> None:
    """The package is `ssenb.recording`, so importing it never rebinds `ssenb.record`."""
    import ssenb.recording

    assert ssenb.record is ssenb.recording.record
    assert ssenb.record(demo + "/stream?n=2&interval=0", tmp_path / "r.jsonl") == 2
    assert str(inspect.signature(ssenb.record)).startswith("(url: 'str', path:")


def test_record_honours_timeout_on_a_silent_server(url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    assert record(url + "/silent", tmp_path / "r.jsonl", timeout=0.3) == 1
    assert time.monotonic() - started < 5 * 0.3 + 1
    assert [x["data"] for x in _lines(tmp_path / "r.jsonl")] == ["hello"]


def test_record_on_error_raises_with_everything_before_it_on_disk(
    demo: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    record(demo + "/stream?n=2&interval=0", out)
    with pytest.raises(ssenb.SSEStatusError):
        record(demo + "/no-such-endpoint", out)
    assert len(_lines(out)) == 2


def test_ctrl_c_returns_the_count_with_everything_on_disk(url: str, tmp_path: Path) -> None:
    threading.Timer(0.4, _thread.interrupt_main).start()
    with pytest.warns(RuntimeWarning, match="interrupted: 1 events recorded"):
        count = record(url + "/silent", tmp_path / "r.jsonl")
    assert count == 1
    assert [x["data"] for x in _lines(tmp_path / "r.jsonl")] == ["hello"]


def test_ctrl_c_on_a_flowing_stream_warns_what_is_on_disk(url: str, tmp_path: Path) -> None:
    """Events keep arriving while Ctrl-C is handled: the warning, the count returned and the
    file agree (a run once warned "28 events recorded" with 30 on disk)."""
    out = tmp_path / "r.jsonl"
    threading.Timer(0.5, _thread.interrupt_main).start()
    with pytest.warns(RuntimeWarning, match="interrupted") as warned:
        count = record(url + "/paced?rate=400", out)
    on_disk = len(_lines(out))
    assert count == on_disk > 10
    message = str(warned[0].message)
    assert message.startswith(f"interrupted: {on_disk} events recorded, all on disk in {out}")


def test_a_recorder_that_wrote_nothing_leaves_no_file(tmp_path: Path) -> None:
    with JSONLRecorder(tmp_path / "empty.jsonl"):
        pass
    assert not (tmp_path / "empty.jsonl").exists()
    (tmp_path / "kept.jsonl").write_bytes(b"")  # a file that was there before stays
    with JSONLRecorder(tmp_path / "kept.jsonl"):
        pass
    assert (tmp_path / "kept.jsonl").exists()


CHILD = """
import sys
from ssenb.recording import record
record(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
def test_sigkill_loses_nothing_older_than_the_flush_window(url: str, tmp_path: Path) -> None:
    """A recording child killed with SIGKILL mid-stream has every event the server sent
    more than the flush window (plus delivery slack) before the kill on disk, all lines whole."""
    out = tmp_path / "r.jsonl"
    SENT.clear()
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), url + "/paced?rate=200", str(out)]
    )
    try:
        assert _wait_for(lambda: out.exists() and out.stat().st_size > 20_000, 30)
        time.sleep(0.5)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    killed = time.time()
    assert child.returncode == -signal.SIGKILL
    text = out.read_bytes()
    lines = text.split(b"\n")
    assert lines[-1] == b""  # ends with a whole line
    on_disk = [orjson.loads(line)["id"] for line in lines[:-1]]  # every line parses
    slack = 0.3  # loopback delivery and scheduling on a shared 2-core machine
    due = [i for i, at in SENT if at < killed - FLUSH - slack]
    assert len(due) > 100
    assert on_disk[: len(due)] == due
