"""The one notebook module that talks to the front end: IPython display, the cell id, widgets.

Everything else in `ssenb.notebook` is pure (views render HTML and text; subscriptions hold
data) and calls the functions here, so the rest works and is tested without a kernel. IPython
and ipywidgets are imported inside the functions only, and only once a kernel is known to
run: plain Python never imports them.

`Frame` shows a view with three ipywidgets: an optional `IntProgress`, one `HTML` holding the
escaped header and body, and a Stop button. `Frame.tick(now)` is called by one throttled
renderer on the ssenb loop: it sets only traits whose value changed, one comm message per
widget (`hold_sync`), and spaces ticks so that a view never sends more than
`MAX_MESSAGES_PER_SECOND` messages in any one-second window, whatever the event rate; the
final `tick(now, final=True)` always sends, so the end state reaches the frontend. Traits are
only ever *set* from the loop thread (safe with ipykernel >= 7.1), never `with output:`.

While the stream runs, the display bundle is the live widget plus an HTML snapshot. When the
view ends (`finish`), every display of it is updated to the snapshot alone and the widgets
are closed: nbconvert (and so GitHub and nbviewer) shows the widget mimetype whenever its
state is saved in the notebook, which needs the widget JavaScript from the network, so a
finished view must not offer it. Live JupyterLab shows the same final snapshot in its place.
`Board` lays several frames side by side for `ssenb.dashboard`, with the same end rule.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol, cast

from ._cells import Cell
from ._view_base import View

__all__ = [
    "MAX_MESSAGES_PER_SECOND",
    "WIDGET_MIMETYPE",
    "Board",
    "Frame",
    "current_cell",
    "execution_count",
    "frontend_facts",
    "in_kernel",
    "show",
    "under_voila",
]

MAX_MESSAGES_PER_SECOND = 20
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"


class _Handle(Protocol):
    """What IPython's `DisplayHandle` offers that a frame uses."""

    def update(self, obj: Any, **kwargs: Any) -> None: ...


def _shell() -> Any:
    """The running IPython shell, or None; never imports IPython (plain Python stays light)."""
    getipython = sys.modules.get("IPython.core.getipython")
    return None if getipython is None else getipython.get_ipython()


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def in_kernel() -> bool:
    """True inside a Jupyter kernel that can show widgets (ipywidgets installed); False in
    plain Python, a terminal, or a kernel without ipywidgets (views then print text)."""
    return getattr(_shell(), "kernel", None) is not None and _importable("ipywidgets")


def under_voila() -> bool:
    """True in a kernel started by Voila (it sets `VOILA_BASE_URL` in the kernel's env)."""
    return "VOILA_BASE_URL" in os.environ


def frontend_facts() -> dict[str, bool | str]:
    """What this process can know about its front end, without importing IPython.

    `shell`: the IPython shell class name ("" outside IPython); `kernel`: a Jupyter kernel
    runs it; `comm`: that kernel can open comms (what widgets travel over); `ipywidgets`:
    importable here; `colab`: the google.colab module is loaded.
    """
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    return {
        "shell": "" if shell is None else type(shell).__name__,
        "kernel": kernel is not None,
        "comm": kernel is not None
        and (getattr(kernel, "comm_manager", None) is not None or _importable("comm")),
        "ipywidgets": _importable("ipywidgets"),
        "colab": "google.colab" in sys.modules,
    }


def execution_count() -> int | None:
    """The execution count of the cell running now (None outside IPython)."""
    count = getattr(_shell(), "execution_count", None)
    return count if isinstance(count, int) else None


def current_cell() -> Cell | None:
    """The cell being executed in this kernel, when the frontend says which.

    JupyterLab, Notebook 7 and VS Code put a `cellId` in each execute request's metadata;
    nbclient and terminal IPython send none (then None).
    """
    get_parent = getattr(getattr(_shell(), "kernel", None), "get_parent", None)
    if get_parent is None:
        return None
    parent = get_parent("shell") or {}
    cell_id = (parent.get("metadata") or {}).get("cellId")
    request = (parent.get("header") or {}).get("msg_id")
    if not isinstance(cell_id, str) or not cell_id or not request:
        return None
    return Cell(cell_id, request)


def _display(obj: Any, **kwargs: Any) -> _Handle | None:
    from IPython.display import display

    return cast("_Handle | None", display(obj, **kwargs))  # type: ignore[no-untyped-call]


def _also_to_latest_request(send: Callable[[], None]) -> None:
    """Run `send` (display updates) as is, then again as part of the request running now.

    Display messages sent from the ssenb loop carry the parent of the cell that started the
    watch (asyncio copied that cell's context). JupyterLab routes them to that cell; nbclient
    keeps only messages of the cell it is executing, so a view that ends during a later cell
    would be saved stale. ipykernel keeps the newest request's header as the display
    publisher's fallback parent for threads; when it differs, `send` runs once more under it.
    """
    send()
    pub: Any = getattr(_shell(), "display_pub", None)
    latest = getattr(pub, "_parent_header_global", None)
    mine = getattr(pub, "parent_header", None)
    if not (isinstance(latest, dict) and isinstance(mine, dict) and latest.get("msg_id")):
        return
    if latest.get("msg_id") == mine.get("msg_id") or not hasattr(pub, "set_thread_parent"):
        return
    token = pub.set_thread_parent(latest)
    try:
        send()
    finally:
        pub.reset_thread_parent(token)


def show(obj: object) -> None:
    """Display `obj` in the current cell (it renders itself through `_ipython_display_`)."""
    _display(obj)


class Frame:
    """The widgets of one view and the budgeted sync of its state to the frontend.

    Create it on the thread that displays it (the cell's); call `tick` from one thread only
    (the ssenb loop). `on_stop` runs when the Stop button is clicked.
    """

    def __init__(self, view: View, on_stop: Callable[[], object] | None = None) -> None:
        import ipywidgets as w

        self.view = view
        # layouts are passed in, not set afterwards: each later set would be one more message
        shown = None if view.progress() is not None else "none"
        self.html = w.HTML(value=view.html(bar=False))
        self.bar = w.IntProgress(
            value=0,
            min=0,
            max=100,
            bar_style="info",
            layout=w.Layout(width="min(480px, 100%)", display=shown),
        )
        self.button = w.Button(
            description="Stop",
            icon="stop",
            tooltip="stop this subscription (data is kept)",
            layout=w.Layout(width="auto", align_self="flex-start"),
        )
        if on_stop is not None:
            self.button.on_click(lambda _button: on_stop())
        self.box = w.VBox([self.bar, self.html, self.button])
        # model ids stay readable after `finish` closes the widgets (tests count messages)
        self.model_ids = {name: widget.model_id for name, widget in self._named().items()}
        self.next_at = 0.0
        self.sent = 0
        self.finished = False  # the final tick was sent
        self.closed = False  # the displays show the snapshot only; the widgets are gone
        self._lock = threading.Lock()  # a tick (loop) and a resend (cell) never interleave
        self.handles: list[_Handle] = []  # IPython DisplayHandles showing this frame
        self.shown_in: int | None = None  # execution count of the cell that showed it last

    def _named(self) -> dict[str, Any]:
        return {
            "box": self.box,
            "bar": self.bar,
            "bar.layout": self.bar.layout,
            "html": self.html,
            "button": self.button,
            "button.layout": self.button.layout,
        }

    def widgets(self) -> list[Any]:
        """Every widget whose state a saved notebook needs (for `send_state` from a cell)."""
        return list(self._named().values())

    def bundle(self, plain: str, snapshot: str) -> dict[str, Any]:
        """The display bundle: while live, the widget plus the HTML snapshot (frontends
        without a widget manager show that); once finished, the snapshot alone."""
        static = {"text/html": snapshot, "text/plain": plain}
        if self.closed:
            return static
        return {**self.box._repr_mimebundle_(), **static}

    def show(self, bundle: Callable[[], dict[str, Any]], cell: int | None) -> None:
        """Display once per cell `cell` (a repeat in the same cell, e.g. `watch(...)` as the
        last line, shows nothing), with a display id so the snapshot can be updated."""
        if cell is not None and cell == self.shown_in:
            return
        self.shown_in = cell
        data = bundle()  # outside the lock: it may wait for the loop, which may want the lock
        with self._lock:  # `finish` either runs before (seen below) or updates this handle too
            handle = _display(data, raw=True, display_id=True)
            if handle is not None:
                self.handles.append(handle)
            missed = self.closed and WIDGET_MIMETYPE in data
        if missed and handle is not None:  # the view ended while this display was prepared
            handle.update(bundle(), raw=True)

    def update(self, bundle: dict[str, Any]) -> None:
        """Refresh every display of this frame with `bundle` (the new snapshot)."""
        for handle in self.handles:
            handle.update(bundle, raw=True)

    def resend(self, bundle: Callable[[], dict[str, Any]]) -> None:
        """From the current cell: re-send all widget state (while live) and refresh every
        display, so a notebook saved or executed now (nbclient, which keeps only messages
        of the cell it runs) stores the final values, not stale ones."""
        with self._lock:
            if not self.closed:
                for widget in self.widgets():
                    widget.send_state()
            self.update(bundle())

    def finish(self, bundle: Callable[[], dict[str, Any]]) -> None:
        """The view ended: show the final snapshot in place of the widget, close the widgets.

        Call after the final `tick`. A saved notebook then holds text/html only, which
        nbconvert, GitHub and nbviewer render with no kernel, no network and no widget JS.
        Under Voila the widgets stay open: Voila runs every cell before its page's widget
        manager connects and never applies later display updates to the page, so a closed
        widget would show "model not found" where the final state belongs.
        """
        with self._lock:
            if self.closed:
                return
            self.closed = True
            final = bundle()
            _also_to_latest_request(lambda: self.update(final))
            if under_voila():
                return
            for widget in self.widgets():
                widget.close()

    def _live(self) -> View:
        return self.view.current()

    def tick(self, now: float, final: bool = False) -> int:
        """Sync what changed if the budget allows (always when `final`); returns messages sent.

        A live tick sends at most `per_tick` messages (1, or 2 with a bar: the bar and the
        HTML) and is followed by a pause of at least the view's `interval` and `per_tick / 20`
        s, so a one-second window holds at most 20 messages from live ticks. The final tick
        sends everything left.
        """
        if self.finished or (not final and now < self.next_at):
            return 0
        with self._lock:
            if self.closed:
                return 0
            return self._tick(now, final)

    def _tick(self, now: float, final: bool) -> int:
        budget = 99 if final else 2
        sent = 0
        progress = self.view.progress()
        if progress is not None:
            if self.bar.layout.display == "none":
                self.bar.layout.display = None  # once, when the view first drives a bar
                sent += 1
            value, style = progress
            if (self.bar.value, self.bar.bar_style) != (value, style):
                with self.bar.hold_sync():
                    self.bar.value = value
                    self.bar.bar_style = style
                sent += 1
        if sent < budget:
            markup = self.view.html(now, bar=False)
            if markup != self.html.value:
                self.html.value = markup
                sent += 1
        if final:
            with self.button.hold_sync():
                self.button.disabled = True
                self.button.description = self.view.status.capitalize()
            sent += 1
            self.finished = True
        per_tick = 2 if progress is not None else 1  # the most a live tick may send
        gap = max(self._live().interval, per_tick / MAX_MESSAGES_PER_SECOND)
        self.next_at = now + gap * 1.01  # 1 % slack: clock jitter never fits an extra tick
        self.sent += sent
        return sent


class Board:
    """A dashboard's widgets: several views' `Frame`s side by side in one `GridBox`.

    Each frame keeps its own budget (its own `tick`); the grid itself sends nothing after it
    is shown. `finish` works like `Frame.finish`: every display becomes the static snapshot
    (all views' final HTML side by side) and every widget is closed.
    """

    def __init__(self, frames: list[Frame], columns: int) -> None:
        import ipywidgets as w

        self.frames = frames
        self.box = w.GridBox(
            [frame.box for frame in frames],
            layout=w.Layout(
                grid_template_columns=f"repeat({columns}, minmax(0, 1fr))", grid_gap="12px"
            ),
        )
        self.closed = False
        self.handles: list[_Handle] = []
        self.shown_in: int | None = None
        self._lock = threading.Lock()

    def bundle(self, plain: str, snapshot: str) -> dict[str, Any]:
        """Live: the grid widget plus the static snapshot; once finished, the snapshot."""
        static = {"text/html": snapshot, "text/plain": plain}
        if self.closed:
            return static
        return {**self.box._repr_mimebundle_(), **static}

    def show(self, bundle: Callable[[], dict[str, Any]], cell: int | None) -> None:
        """Display once per cell, with a display id so the end can replace it."""
        if cell is not None and cell == self.shown_in:
            return
        self.shown_in = cell
        data = bundle()
        with self._lock:
            handle = _display(data, raw=True, display_id=True)
            if handle is not None:
                self.handles.append(handle)
            missed = self.closed and WIDGET_MIMETYPE in data
        if missed and handle is not None:
            handle.update(bundle(), raw=True)

    def resend(self, bundle: Callable[[], dict[str, Any]]) -> None:
        """From the current cell: refresh every display (nbclient keeps only its messages)."""
        with self._lock:
            data = bundle()
            for handle in self.handles:
                handle.update(data, raw=True)

    def finish(self, bundle: Callable[[], dict[str, Any]]) -> None:
        """Every view ended (after each frame's final tick): snapshot in, widgets closed."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            final = bundle()

            def send() -> None:
                for handle in self.handles:
                    handle.update(final, raw=True)

            _also_to_latest_request(send)
            for frame in self.frames:
                with frame._lock:
                    frame.closed = True
                    for widget in frame.widgets():
                        widget.close()
            self.box.layout.close()
            self.box.close()
