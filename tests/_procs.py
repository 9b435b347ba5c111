"""Child processes the tests start: `ssenb serve` and friends, always stopped on the way out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after `grace` s; closes its pipes; returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return proc.returncode


@contextmanager
def ssenb_serve(*args: str) -> Iterator[str]:
    """`ssenb serve --port 0 ARGS` as a child process; yields the base URL of its banner."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssenb", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert " at " in banner, proc.stderr.read() if proc.stderr else banner
        yield banner.split(" at ")[1].split()[0].rstrip("/")
    finally:
        stop_process(proc)
