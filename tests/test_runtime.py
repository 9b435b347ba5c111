"""The ssenb runtime (`ssenb/_runtime.py`): one thread-plus-loop mechanism and the typed
registries of servers, subscriptions and recorders that status() and stop_all() read."""

from __future__ import annotations

import _thread
import asyncio
import importlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import ssenb
from ssenb import _runtime, _state
from ssenb._runtime import LoopThread, RecorderLike, ServerLike, SubscriptionLike, runtime
from ssenb.recording import DatasetRecorder, JSONLRecorder, Recorder

PKG = Path(ssenb.__file__).parent


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    thread = LoopThread("ssenb-test-loop")
    yield thread
    thread.stop()


def test_one_daemon_thread_starts_on_first_use_for_every_caller(lt: LoopThread) -> None:
    assert not lt.alive
    assert lt.loop is None
    loops: list[object] = []
    callers = [threading.Thread(target=lambda: loops.append(lt.get_loop())) for _ in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    assert len(set(map(id, loops))) == 1
    named = [t for t in threading.enumerate() if t.name == "ssenb-test-loop"]
    assert len(named) == 1
    assert named[0].daemon


def test_submit_call_and_run_hand_work_and_errors_across_threads(lt: LoopThread) -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def fail() -> None:
        raise LookupError("on the loop")

    assert lt.submit(add(1, 2)).result(5) == 3
    assert lt.run(add(2, 3)) == 5
    with pytest.raises(LookupError, match="on the loop"):
        lt.run(fail())
    assert lt.call(lambda: threading.current_thread().name) == "ssenb-test-loop"
    assert lt.call(lambda: lt.call(lambda: 7)) == 7  # inline on the loop: no deadlock
    assert lt.call(lt.in_thread)
    assert not lt.in_thread()


def test_run_from_the_loop_thread_refuses_instead_of_deadlocking(lt: LoopThread) -> None:
    async def inner() -> int:
        return 1

    async def outer() -> str:
        try:
            lt.run(inner())
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    assert "await the coroutine instead" in lt.run(outer())


def test_ctrl_c_in_run_cancels_the_work_and_waits_for_its_cleanup(lt: LoopThread) -> None:
    cleaned: list[float] = []

    async def endless() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # closing a connection takes a loop turn or two
            cleaned.append(time.monotonic())

    threading.Timer(0.2, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lt.run(endless())
    assert cleaned, "KeyboardInterrupt reached the caller before the work had stopped"
    assert time.monotonic() - started < 5 * 0.25
    assert lt.alive  # the loop goes on serving others


def test_system_exit_in_a_task_does_not_end_the_loop_for_everyone(lt: LoopThread) -> None:
    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(RuntimeError, match="SystemExit") as info:
        lt.run(leave())
    assert isinstance(info.value.__cause__, SystemExit)
    assert lt.call(lambda: 1) == 1


def test_stop_cancels_what_runs_closes_generators_and_a_restart_is_fresh(lt: LoopThread) -> None:
    seen: list[str] = []

    async def ticks() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
                await asyncio.sleep(0.01)
        finally:
            seen.append("generator closed")

    async def consumer() -> None:
        try:
            async for _ in ticks():
                await asyncio.sleep(3600)
        finally:
            seen.append("task cancelled")

    future = lt.submit(consumer())
    time.sleep(0.1)
    first = lt.get_loop()
    assert lt.stop(5)
    assert not lt.alive
    assert first.is_closed()
    assert sorted(seen) == ["generator closed", "task cancelled"]
    assert future.cancelled()
    assert lt.get_loop() is not first
    assert lt.call(lambda: 2) == 2


def test_a_stop_while_a_caller_waits_in_run_ends_its_wait_with_an_error(lt: LoopThread) -> None:
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            lt.run(asyncio.sleep(3600))
        except RuntimeError as exc:
            errors.append(exc)

    waiting = threading.Thread(target=caller)
    waiting.start()
    time.sleep(0.1)
    assert lt.stop(5)
    waiting.join(5)
    assert not waiting.is_alive()
    assert "was stopped" in str(errors[0])


def test_the_registries_are_typed_shared_and_survive_reloading() -> None:
    assert _state.servers is runtime.servers
    assert _state.subscriptions is runtime.subscriptions
    assert _state.recorders is runtime.recorders
    before = runtime
    importlib.reload(ssenb)
    importlib.reload(_runtime)
    importlib.reload(_state)
    assert _runtime.runtime is before
    assert _state.servers is before.servers


def test_servers_subscriptions_and_recorders_meet_the_runtime_protocols(tmp_path: Path) -> None:
    with ssenb.serve(name="test_runtime_protocols") as srv:
        assert isinstance(srv, ServerLike)
        sub = ssenb.watch(srv.url + "/stream?n=2&interval=0", display=False)
        try:
            assert isinstance(sub, SubscriptionLike)
        finally:
            sub.stop()
    with JSONLRecorder(tmp_path / "a.jsonl") as a, DatasetRecorder(tmp_path / "ds") as b:
        for rec in (a, b):
            assert isinstance(rec, RecorderLike)
            assert isinstance(rec, Recorder)


def test_status_lists_an_open_recorder_until_it_closes(tmp_path: Path) -> None:
    rec = JSONLRecorder(tmp_path / "r.jsonl", source="http://127.0.0.1:1/s")
    rec.write(ssenb.Event(data="x"))
    rows = [r for r in ssenb.status().recorders if r.url == "http://127.0.0.1:1/s"]
    assert [(r.name, r.state) for r in rows] == [
        ("JSONLRecorder", f"open, 1 event written to {tmp_path / 'r.jsonl'}")
    ]
    rec.close()
    assert not [r for r in ssenb.status().recorders if r.url == "http://127.0.0.1:1/s"]


def test_stop_all_closes_open_recorders_so_their_events_are_on_disk(tmp_path: Path) -> None:
    rec = JSONLRecorder(tmp_path / "r.jsonl", flush_interval=60)
    rec.write(ssenb.Event(data="kept"))
    ssenb.stop_all()
    assert (tmp_path / "r.jsonl").read_text().count("kept") == 1
    assert id(rec) not in runtime.recorders
    with pytest.raises(ValueError, match="closed"):
        rec.write(ssenb.Event())


EXITING_CHILD = """
import sys
from ssenb import Event
from ssenb.recording import JSONLRecorder
rec = JSONLRecorder(sys.argv[1], flush_interval=60)  # the timer would not flush in time
for i in range(3):
    rec.write(Event(data=str(i)))
"""  # and the script ends without closing it


def test_what_an_open_recorder_buffered_is_on_disk_after_the_interpreter_exits(
    tmp_path: Path,
) -> None:
    out = tmp_path / "r.jsonl"
    subprocess.run([sys.executable, "-c", EXITING_CHILD, str(out)], check=True, timeout=60)
    assert out.read_text().count("\n") == 3


LOOP_MAKERS = re.compile(r"asyncio\.run\(|new_event_loop\(|run_until_complete\(|run_forever\(")


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_only_the_runtime_makes_or_runs_event_loops(path: Path) -> None:
    """One mechanism: no module starts a loop of its own (a thread + `asyncio.run` per call,
    a server thread with its own loop) and nothing calls `asyncio.run` on a running loop."""
    if path.name == "_runtime.py":
        return
    code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    code = re.sub(r'"""(.|\n)*?"""', "", code)  # prose may name them
    assert not LOOP_MAKERS.findall(code), path
