"""`ssenb serve --workers N` (ssenb/server/_workers.py) as a real process tree: the workers
share one port (SO_REUSEPORT) and a burst of connections is spread over them, a SIGKILLed
worker is restarted, SIGTERM/SIGINT stop every worker, a killed supervisor leaves no
orphans, and a start that cannot work fails at once with its reason.
(Behind nginx on a Redis stream: tests/test_deploy_nginx.py.)
"""

from __future__ import annotations

import os
import signal
import socket
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


def _owners(port: int, pids: list[int]) -> dict[int, int]:
    """Client port -> the pid holding the server side of that connection to `port` (Linux
    /proc: the socket's inode in /proc/net/tcp, then in each process's file descriptors)."""
    by_inode: dict[str, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if local == port and fields[3] == "01":  # established, server side
            by_inode[fields[9]] = remote
    owners: dict[int, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            inode = target.removeprefix("socket:[").rstrip("]")
            if inode in by_inode:
                owners[by_inode[inode]] = pid
    return owners


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
    _wait(lambda: victim not in workers.pids())  # reaped: its socket left the port's group
    # the other worker answers at once, before the restarted one is up
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


def test_a_burst_of_connections_is_spread_over_the_workers(workers: Workers) -> None:
    """100 streams opened at once (as nginx does when clients resume together) land on
    both workers, not all on the first one that wakes (what one shared socket gave)."""
    conns = [socket.create_connection(("127.0.0.1", workers.port)) for _ in range(100)]
    try:
        for c in conns:
            c.sendall(b"GET /ticks?rate=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for c in conns:
            c.settimeout(10)
            assert c.recv(100).startswith(b"HTTP/1.1 200")
        owners = _owners(workers.port, workers.pids())
        owners = [owners.get(c.getsockname()[1]) for c in conns]
    finally:
        for c in conns:
            c.close()
    counts = sorted(owners.count(pid) for pid in workers.pids())
    assert sum(counts) == 100
    assert counts[0] >= 20  # kernel hashing: about half each
