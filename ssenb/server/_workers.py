"""`ssenb serve --workers N`: N worker processes on one port, restarted when they die.

The supervisor (the `ssenb serve` process) reserves the port (a bound socket that never
listens: port 0 becomes a real port, and it stays ours while workers come and go) and
starts N children (`python -m ssenb serve ... --worker-fds RESERVED,LIFELINE`). Each worker
binds its own listening socket to that address with SO_REUSEPORT, and the kernel spreads new
connections evenly over the live workers by hashing each connection. One socket shared by
all workers would keep the connections queued on a dying worker, but it spreads them badly:
asyncio accepts everything queued at each wake, so a burst (100 clients resuming at once)
went 93 / 7 to one worker in our measurement. So a worker's death resets the few
connections waiting in its own queue, besides the streams it served: clients reconnect
(nginx answers 502 for a request it had sent there) and resume with `Last-Event-ID`.

A dead worker is restarted after `RESTART_DELAY` s, doubling while restarts die before they
are ready (up to `MAX_DELAY`); one that fails before it is ever ready stops the whole start
(a bad `--hub`, say), since a restart could not fix it. Each worker holds the read end of a
pipe whose write end only the supervisor has: killed outright, the supervisor leaves no
orphans, because every worker sees the pipe close and stops. Stopping sends SIGTERM (each
worker ends its streams cleanly) and SIGKILL after `GRACE` s.

Why not uvicorn's own `--workers`: its children import the app by name in a fresh
interpreter, so ssenb's Host/token guard, cooperative stream stop and the Redis PING at
start would have to be rebuilt from environment variables. Linux (SO_REUSEPORT balances
there; elsewhere it may not).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp

from .. import _state
from ._logs import install_log_buffer
from ._runner import ServerHandle, _is_loopback, _register_atexit

__all__ = ["GRACE", "MAX_DELAY", "RESTART_DELAY", "Supervisor", "reserve", "serve_worker"]

RESTART_DELAY = 0.1  # seconds before a dead worker is started again
MAX_DELAY = 5.0  # ceiling of that delay while restarts keep failing before they are ready
GRACE = 5.0  # seconds workers get to stop after SIGTERM before SIGKILL
READY = "ready"  # what a worker prints on stdout once it accepts connections


def reserve(host: str, port: int, *, allow_remote: bool) -> socket.socket:
    """The supervisor's hold on the port: bound with SO_REUSEPORT, never listening (so it
    takes no connections); loopback only unless `allow_remote`."""
    if not hasattr(socket, "SO_REUSEPORT") or os.name != "posix":
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux)")
    if not _is_loopback(host) and not allow_remote:
        raise ValueError(
            f"host {host!r} is not a loopback address; pass allow_remote=True (--allow-remote)"
            " to expose the server to other machines"
        )
    return _reuseport_socket(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))


def _reuseport_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _Worker:
    """One child process and whether it said it is ready."""

    def __init__(self, slot: int, proc: subprocess.Popen[str]) -> None:
        self.slot, self.proc, self.ready = slot, proc, threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"ssenb-worker-{slot}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # drained to the end, so the child never blocks on it
            if line.strip() == READY:
                self.ready.set()
        self.proc.stdout.close()


class Supervisor:
    """N workers running `python -m ssenb <command> --worker-fds ...` on the address `sock`
    reserves, restarted when they die (see the module docstring). `log` gets one line per
    death, restart and restarted worker ready."""

    def __init__(
        self, sock: socket.socket, command: Iterable[str], n: int,
        *, log: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        if n < 1:
            raise ValueError(f"need at least one worker, got {n}")
        self.sock, self.command, self.n = sock, list(command), n
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.restarts = 0
        self._life_r, self._life_w = os.pipe()  # only the supervisor holds the write end
        self._workers: list[_Worker | None] = [None] * n
        self._due: dict[int, float] = {}  # slot -> when to start it again
        self._fails = [0] * n  # consecutive deaths before ready, per slot
        self._told: set[int] = set()  # pids whose readiness was logged (or in the banner)

    def _spawn(self, slot: int) -> _Worker:
        fds = f"{self.sock.fileno()},{self._life_r}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "ssenb", *self.command, "--worker-fds", fds],
            pass_fds=(self.sock.fileno(), self._life_r),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        worker = self._workers[slot] = _Worker(slot, proc)
        return worker

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers alive now."""
        return [w.proc.pid for w in self._workers if w is not None and w.proc.poll() is None]

    def start(self, timeout: float = 60.0) -> None:
        """Start every worker and wait until all accept; RuntimeError when one exits first."""
        workers = [self._spawn(slot) for slot in range(self.n)]
        deadline = time.monotonic() + timeout
        while not all(w.ready.is_set() for w in workers):
            for w in workers:
                if w.proc.poll() is not None and not w.ready.is_set():
                    raise RuntimeError(f"worker {w.slot + 1} exited ({_how(w.proc)}) before it"
                                       " was ready")  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers were not ready within {timeout:g} s")
            time.sleep(0.02)
        self._told.update(w.proc.pid for w in workers)

    def check(self) -> None:
        """Restart dead workers whose delay is over, log restarted ones once they accept;
        call this every ~0.1 s."""
        now = time.monotonic()
        for slot, worker in enumerate(self._workers):
            if worker is not None and worker.ready.is_set() and worker.proc.pid not in self._told:
                self._told.add(worker.proc.pid)
                self.log(f"ssenb serve: worker {slot + 1} ready (pid {worker.proc.pid})")
            if worker is not None and worker.proc.poll() is not None:
                self._fails[slot] = 0 if worker.ready.is_set() else self._fails[slot] + 1
                delay = min(MAX_DELAY, RESTART_DELAY * 2 ** self._fails[slot])
                self.log(f"ssenb serve: worker {slot + 1} (pid {worker.proc.pid}) exited"
                         f" ({_how(worker.proc)}); restarting in {delay:g} s")  # fmt: skip
                self._workers[slot] = None
                self._due[slot] = now + delay
            elif worker is None and now >= self._due.get(slot, now):
                self._due.pop(slot, None)
                self.restarts += 1
                pid = self._spawn(slot).proc.pid
                self.log(f"ssenb serve: worker {slot + 1} started (pid {pid})")

    def stop(self, grace: float = GRACE) -> None:
        """SIGTERM every worker, SIGKILL those still running after `grace` s; idempotent."""
        procs = [w.proc for w in self._workers if w is not None]
        self._workers = [None] * self.n
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fd in (self._life_r, self._life_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._life_r = self._life_w = -1


def _how(proc: subprocess.Popen[str]) -> str:
    code = proc.returncode
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _watch_lifeline(fd: int) -> None:
    """Block on the supervisor's pipe; once it closes (the supervisor is gone), SIGTERM
    ourselves, which stops this worker exactly as `ssenb serve` stops on SIGTERM."""
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def serve_worker(
    app: ASGIApp, fds: str, *, token: str | None = None,
    allowed_hosts: Iterable[str] | None = None, allow_remote: bool = False,
    cors_origins: Iterable[str] | None = None,
) -> ServerHandle:  # fmt: skip
    """Serve `app` on the supervisor's address (`fds` = "RESERVED,LIFELINE", as passed by
    `Supervisor`: a listening socket of our own bound there with SO_REUSEPORT) in a
    background thread, with the same guard as `serve()`; returns once it accepts. The
    worker stops on its own when the supervisor goes away."""
    reserved_fd, life_fd = (int(part) for part in fds.split(","))
    with socket.socket(fileno=reserved_fd) as reserved:  # our copy of the supervisor's fd
        family, address = reserved.family, reserved.getsockname()
    sock = _reuseport_socket(family, address)  # uvicorn makes it listen
    install_log_buffer()
    _register_atexit()
    handle = ServerHandle(
        app, sock, name="cli-worker", token=token, allowed_hosts=allowed_hosts,
        allow_any_host=allow_remote, cors_origins=cors_origins,
    )  # fmt: skip
    handle._start()
    _state.register_server(handle.name, handle)
    threading.Thread(target=_watch_lifeline, args=(life_fd,), daemon=True).start()
    return handle
