"""`ssenb.stop_all()`: subscriptions, then the ssenb loop, then servers; nothing left running."""

from __future__ import annotations

import threading
import time

import ssenb
from ssenb import _state


def _ssenb_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("ssenb"))


def test_stop_all_stops_watches_the_loop_and_servers_and_keeps_the_data() -> None:
    srv = ssenb.serve(name="lifecycle")
    sub = ssenb.watch(srv.url + "/ticks?rate=200", display=False)
    deadline = time.monotonic() + 10
    while len(sub.events) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sub.events) >= 5
    assert "ssenb-loop" in _ssenb_threads()
    stopped = ssenb.stop_all()
    assert stopped >= 1
    assert sub.status == "stopped"
    assert len(sub.df) >= 5  # what arrived is kept
    assert not srv.running
    assert _state.servers == {}
    deadline = time.monotonic() + 5
    while _ssenb_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _ssenb_threads() == []


def test_the_loop_restarts_after_stop_all() -> None:
    with ssenb.serve(name="lifecycle-2"):
        ssenb.stop_all()
        srv2 = ssenb.serve(name="lifecycle-2")
        sub = ssenb.watch(srv2.url + "/stream?n=3&interval=0", display=False)
        assert sub.wait(10)
        assert len(sub.df) == 3
    ssenb.stop_all()


def test_stop_all_with_nothing_running_is_a_no_op() -> None:
    ssenb.stop_all()
    assert ssenb.stop_all() == 0
