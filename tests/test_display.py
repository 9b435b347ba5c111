"""The display module: the widget frame's message budget, and what a finished view leaves.

`Frame` is driven directly with a simulated clock (no kernel: ipywidgets' comms are inert
outside one). Widget messages are counted by wrapping `ipywidgets.Widget._send`, the one
place every comm message leaves a widget. A finished frame's bundle is the HTML snapshot
alone, the form nbconvert, GitHub and nbviewer show offline (tests/test_saved_notebook.py
checks that end to end). Kernel-side helpers answer "no kernel" in plain Python.
"""

from __future__ import annotations

import json

import ipywidgets
import pytest

from ssenb import Event
from ssenb.notebook import _display
from ssenb.notebook._display import MAX_MESSAGES_PER_SECOND, WIDGET_MIMETYPE, Frame
from ssenb.notebook._view_log import LogView
from ssenb.notebook._view_progress import ProgressView
from ssenb.notebook._views import VIEWS, AutoView


def msg(data: object, event: str = "message", id: str = "") -> Event:
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data), id=id)


def _job(steps: int) -> list[Event]:
    return [
        msg({"progress": p, "status": "running", "message": f"step {p}"}, event="progress")
        for p in range(0, steps + 1, 25)
    ]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every comm message sent by any widget, as the sending widget's model id."""
    log: list[str] = []
    original = ipywidgets.Widget._send

    def counting(self: ipywidgets.Widget, msg: dict, buffers: list | None = None) -> None:
        log.append(self.model_id)
        original(self, msg, buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", counting)
    return log


# -- coalesced widget updates ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["log", "table", "tokens", "progress", "rate"])
def test_frame_sends_at_most_20_messages_a_second_at_50k_events_a_second(
    kind: str, sends: list[str]
) -> None:
    """3 s of 50 k ev/s, fed and ticked every millisecond: every 1 s window holds <= 20."""
    view = VIEWS[kind]()
    frame = Frame(view)
    t0 = view.started
    sends.clear()
    at: list[float] = []  # when each message was sent (simulated clock)
    for ms in range(3000):
        now = t0 + ms / 1000
        data = {"progress": ms / 30, "content": "w", "t": ms, "value": ms, "count": ms}
        view.on_events([msg(data, id=str(ms))] * 50, now)
        before = len(sends)
        sent = frame.tick(now)
        assert len(sends) - before == sent  # the reported count is the real one
        at += [now] * sent
    busiest = max(sum(1 for t in at if s <= t < s + 1) for s in at)
    assert 0 < busiest <= MAX_MESSAGES_PER_SECOND
    view.on_status("done")
    assert frame.tick(t0 + 3.0005, final=True) >= 1  # the end state is always sent
    assert view.count == 150_000
    assert f"{view.count:,} events" in frame.html.value
    assert (frame.button.disabled, frame.button.description) == (True, "Done")


def test_frame_sends_nothing_when_nothing_changed(sends: list[str]) -> None:
    view = LogView()
    frame = Frame(view)
    view.on_events([msg("a")], view.started)
    assert frame.tick(view.started + 1) == 1
    sends.clear()
    assert frame.tick(view.started + 2) == 0
    assert sends == []


def test_frame_shows_the_bar_only_when_the_view_drives_one() -> None:
    view = AutoView()
    frame = Frame(view)
    assert frame.bar.layout.display == "none"
    view.on_events([msg({"progress": 60}, event="progress")], view.started)
    frame.tick(view.started + 1)
    assert frame.bar.layout.display is None
    frame.tick(view.started + 2)
    assert (frame.bar.value, frame.bar.bar_style) == (60, "info")


def test_progress_bar_is_drawn_once_live_and_kept_in_the_snapshot() -> None:
    view = ProgressView()
    frame = Frame(view)
    view.on_events(_job(50), view.started)
    frame.tick(view.started + 1)
    assert frame.bar.value == 50
    assert "width:50.0%" not in frame.html.value  # the widget bar shows it live
    assert "width:50.0%" in view.html()  # the saved snapshot draws its own


def test_stop_button_calls_stop() -> None:
    calls: list[int] = []
    frame = Frame(LogView(), on_stop=lambda: calls.append(1))
    frame.button.click()
    assert calls == [1]


# -- the end of a view: the snapshot replaces the widget ---------------------------------


class Handle:
    """Records what a display handle was updated with (IPython's DisplayHandle interface)."""

    def __init__(self) -> None:
        self.bundles: list[dict] = []

    def update(self, obj: dict, **kwargs: object) -> None:
        self.bundles.append(obj)


def test_a_live_bundle_has_the_widget_and_a_finished_one_only_the_snapshot() -> None:
    view = ProgressView(title="job")
    frame = Frame(view)
    handle = Handle()
    frame.handles.append(handle)
    view.on_events(_job(75), view.started)
    live = frame.bundle("plain", view.html())
    assert set(live) == {WIDGET_MIMETYPE, "text/html", "text/plain"}
    view.on_status("done")
    frame.tick(view.started + 1, final=True)
    frame.finish(lambda: frame.bundle("plain", view.html()))
    (final,) = handle.bundles
    assert set(final) == {"text/html", "text/plain"}  # nbconvert shows text/html offline
    assert "width:75.0%" in final["text/html"]  # the bar is drawn in the snapshot
    assert all(w.comm is None for w in frame.widgets())  # the widgets are closed
    assert set(frame.model_ids) == {"box", "bar", "bar.layout", "html", "button", "button.layout"}


def test_after_finish_nothing_is_sent_and_a_resend_refreshes_the_snapshot(
    sends: list[str],
) -> None:
    view = LogView()
    frame = Frame(view)
    handle = Handle()
    frame.handles.append(handle)
    view.on_status("done")
    frame.tick(view.started, final=True)
    frame.finish(lambda: {"text/html": view.html()})
    frame.finish(lambda: {"text/html": "again"})  # idempotent
    sends.clear()
    assert frame.tick(view.started + 10, final=True) == 0
    frame.resend(lambda: {"text/html": "later"})
    assert sends == []
    assert [b["text/html"][:5] for b in handle.bundles] == ["<div ", "later"]


def test_without_a_kernel_there_is_no_cell_and_no_widgets() -> None:
    assert _display.in_kernel() is False
    assert _display.current_cell() is None
    assert _display.execution_count() is None
