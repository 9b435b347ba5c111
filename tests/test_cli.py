"""The `ssenb` command line: `serve` in the foreground until Ctrl-C, `tail URL` printing events.

`serve` runs as a real child process (signals are the point); `tail` runs in-process via
`main()` against a server started with `ssenb.serve`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

import ssenb
from ssenb._cli import main
from ssenb.server import ServerHandle


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-cli") as handle:
        yield handle


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_runs_in_the_foreground_and_stops_cleanly(stop: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssenb", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the server answers
        url = banner.split(" at ")[1].split()[0].rstrip("/")
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(timeout=5) as client, client.stream("GET", url + "/ticks") as live:
            first = next(live.iter_raw())  # an endless stream is open while we stop
            assert b"id: 1" in first
            started = time.monotonic()
            proc.send_signal(stop)
            _, err = proc.communicate(timeout=10)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert took < 5
    assert "stopped" in err
    assert "Traceback" not in err


def test_serve_with_token_prints_a_login_link_and_refuses_anonymous_requests() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssenb", "serve", "--port", "0", "--token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[1].split()[0].rstrip("/")
        login = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        assert login.startswith(url)
        assert httpx.get(url + "/stream?n=1&interval=0", timeout=5).status_code == 401
        with httpx.Client(timeout=5, follow_redirects=True) as browser:
            assert browser.get(login).status_code == 200  # the cookie is set, `/` answers
            assert browser.get(url + "/stream?n=1&interval=0").status_code == 200
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_serve_refuses_a_remote_host_without_allow_remote() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ssenb", "serve", "--host", "192.0.2.7", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "allow_remote" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--workers", "0"], 2, "--workers must be at least 1"),
        (["--workers", "2", "--token"], 2, "--token is per process"),
        (["--workers", "2", "--host", "192.0.2.7"], 1, "allow_remote"),
    ],
    ids=["no-workers", "token-is-per-process", "remote-host"],
)
def test_serve_workers_refuses_what_cannot_work(argv: list[str], status: int, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ssenb", "serve", "--port", "0", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == status
    assert message in proc.stderr
    assert proc.stdout == ""


def test_tail_prints_each_event_until_the_stream_is_done(
    demo: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", f"{demo.url}/stream?n=3&interval=0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f'[message #{i}] {{"count":{i},"message":"Update {i}"}}' for i in range(1, 4)]


def test_tail_json_prints_one_object_per_event_and_stops_after_n(
    demo: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", f"{demo.url}/ticks?rate=100", "-n", "4", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert all(set(r) == {"event", "data", "id", "retry"} for r in rows)
    assert all(set(json.loads(r["data"])) == {"t", "value"} for r in rows)


def test_tail_reports_a_refused_stream_on_stderr(
    demo: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", f"{demo.url}/stream?n=0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "422" in captured.err


@pytest.mark.parametrize("argv", [["tail"], ["serve", "--port", "x"], ["nope"]], ids=str)
def test_bad_command_lines_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
