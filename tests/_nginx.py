"""The deployment of docs/deploy.md on loopback: `ssenb serve --workers N --hub URL` as a child
process and Debian's nginx in front of it, running the shipped docs/nginx/ssenb.conf with only
its two ports substituted (listening on 127.0.0.1), inside a minimal main config whose pid,
logs and temp paths live in a prefix dir of its own; nginx runs as a non-daemon child.

Stdlib and ssenb only (no pytest), so bench/nginx.py measures the very same setup.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from _procs import stop_process

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "docs" / "nginx" / "ssenb.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)

# everything nginx needs besides the shipped file, all inside the prefix dir
MAIN = """daemon off;
worker_processes {processes};
worker_rlimit_nofile 16384;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/ssenb.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port}") from None
            time.sleep(0.02)


def render(text: str, listen: int, upstream: int) -> str:
    """The shipped config with `listen 8080` -> `listen 127.0.0.1:<listen>` and the upstream
    `server 127.0.0.1:8000` -> `:<upstream>`; each must occur exactly once."""
    text, n_listen = re.subn(r"(?m)^(\s*listen\s+)8080;", rf"\g<1>127.0.0.1:{listen};", text)
    text, n_up = re.subn(r"(?m)^(\s*server\s+127\.0\.0\.1:)8000;", rf"\g<1>{upstream};", text)
    if (n_listen, n_up) != (1, 1):
        raise ValueError(f"expected one listen and one upstream line, got {n_listen}, {n_up}")
    return text


class Nginx:
    """nginx with the shipped config in front of `upstream` (a port on 127.0.0.1)."""

    def __init__(self, prefix: Path, upstream: int, *, processes: int = 1) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self.prefix, self.upstream, self.processes = prefix, upstream, processes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        assert NGINX is not None
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        site = render(SHIPPED.read_text(), self.port, self.upstream)
        (self.prefix / "ssenb.conf").write_text(site)
        main = self.prefix / "nginx.conf"
        main.write_text(MAIN.format(prefix=self.prefix, processes=self.processes))
        cmd = [NGINX, "-p", str(self.prefix), "-c", str(main), "-e", str(self.prefix / "error.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port, self.proc, "nginx")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.errors()[-2000:]}") from None
        return self

    def errors(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGTERM: the master ends its workers), SIGKILL after 10 s."""
        if self.proc is not None:
            stop_process(self.proc, 10.0)


class Workers:
    """`ssenb serve --workers n --port 0 [--hub hub_url] *extra` as a child process."""

    def __init__(self, n: int, hub_url: str | None, *extra: str, logdir: Path) -> None:
        hub = ["--hub", hub_url] if hub_url else []
        self.cmd = [sys.executable, "-m", "ssenb", "serve", "--workers", str(n), "--port", "0",
                    *hub, *extra]  # fmt: skip
        self.n, self.log_path = n, logdir / f"workers-{os.getpid()}-{id(self)}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url, self.port, self.banner = "", 0, ""

    def start(self, timeout: float = 60) -> Workers:
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not box or " at " not in box[0]:
            self.stop()
            raise RuntimeError(f"ssenb serve --workers did not start: {self.log()[-2000:]}")
        self.banner = box[0]
        self.url = box[0].split(" at ")[1].split()[0].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pids(self) -> list[int]:
        """The supervisor's children alive now (Linux: /proc)."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def ready_pids(self) -> list[int]:
        """The workers alive now that accept connections: those in the banner and those the
        supervisor logged as ready after a restart."""
        told = re.findall(r"pids ([\d ]+);", self.banner)[0].split()
        told += re.findall(r"ready \(pid (\d+)\)", self.log())
        return [pid for pid in self.pids() if str(pid) in told]

    def kill_worker(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> int | None:
        """SIGTERM (the supervisor stops its workers); SIGKILL after 20 s. Returns the status."""
        return None if self.proc is None else stop_process(self.proc, 20.0)
