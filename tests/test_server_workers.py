"""`ssenb serve --workers N` (ssenb/server/_workers.py) as a real process tree: the workers
share one port, a SIGKILLed worker is restarted, SIGTERM/SIGINT stop every worker, a killed
supervisor leaves no orphans, and a start that cannot work fails at once with its reason.
(Behind nginx on a Redis stream: tests/test_deploy_nginx.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _nginx import Workers


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    running = Workers(2, None, logdir=tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_workers_share_one_port_and_each_answers(workers: Workers) -> None:
    pids = workers.pids()
    assert len(pids) == 2
    with httpx.Client(timeout=10) as client:
        bodies = [client.get(workers.url + "/stream?n=1&interval=0").text for _ in range(6)]
    assert all(body.endswith("data: [DONE]\n\n") for body in bodies)
    assert "each worker has its own /hub" in workers.log()  # no --hub: told, not refused


def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(workers: Workers) -> None:
    victim, other = workers.pids()
    workers.kill_worker(victim)
    # the shared socket stays open: the other worker answers at once
    assert httpx.get(workers.url + "/stream?n=1&interval=0", timeout=10).status_code == 200
    _wait(lambda: len(workers.pids()) == 2 and victim not in workers.pids())
    assert other in workers.pids()
    log = workers.log()
    assert f"(pid {victim}) exited (signal SIGKILL); restarting in 0.1 s" in log
    assert "worker 1 started" in log or "worker 2 started" in log
    _wait(lambda: httpx.get(workers.url + "/stream?n=1&interval=0", timeout=10).status_code == 200)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stopping_the_supervisor_stops_every_worker(tmp_path: Path, stop: signal.Signals) -> None:
    running = Workers(2, None, logdir=tmp_path).start()
    pids = running.pids()
    assert running.proc is not None
    with httpx.Client(timeout=10) as client, client.stream("GET", running.url + "/ticks") as live:
        next(live.iter_raw())  # an endless stream is open while we stop
        started = time.monotonic()
        running.proc.send_signal(stop)
        assert running.proc.wait(15) == 0
    assert time.monotonic() - started < 10  # the workers' own stop is ~0.3 s; 5 s grace at most
    assert all(_gone(pid) for pid in pids)
    assert "ssenb serve: stopped" in running.log()
    assert "Traceback" not in running.log()
    running.stop()


def test_a_killed_supervisor_leaves_no_orphan_workers(tmp_path: Path) -> None:
    running = Workers(2, None, logdir=tmp_path).start()
    pids = running.pids()
    assert running.proc is not None
    running.proc.kill()  # no chance to stop its workers: they notice the lifeline closing
    running.proc.wait()
    _wait(lambda: all(_gone(pid) for pid in pids), timeout=15)
    running.stop()


def test_a_start_that_cannot_work_fails_at_once_with_its_reason() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ssenb", "serve", "--workers", "2", "--port", "0",
         "--hub", "redis://127.0.0.1:1/0?stream=x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "does not answer" in proc.stderr  # the worker's own message
    assert "exited (status 1) before it was ready" in proc.stderr
    assert proc.stdout == ""  # no banner: nothing is served
