"""The one ssenb event loop (`ssenb/notebook/_loop.py`): a single daemon thread that every
watch, magic and caller shares, and `call()` that runs a function on it from any thread."""

from __future__ import annotations

import threading

import pytest

from ssenb.notebook import _loop


def test_one_daemon_loop_thread_serves_every_caller() -> None:
    loops: list[object] = []
    threads = [threading.Thread(target=lambda: loops.append(_loop.get_loop())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(set(map(id, loops))) == 1
    named = [t for t in threading.enumerate() if t.name == _loop.THREAD_NAME]
    assert len(named) == 1
    assert named[0].daemon


def test_call_runs_on_the_loop_thread_and_carries_errors_back() -> None:
    assert _loop.call(lambda: threading.current_thread().name) == _loop.THREAD_NAME
    assert _loop.call(lambda: _loop.call(lambda: 7)) == 7  # inline on the loop: no deadlock
    with pytest.raises(ZeroDivisionError):
        _loop.call(lambda: 1 / 0)
