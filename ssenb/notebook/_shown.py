"""`Shown`: how a background run with a live view displays itself in a cell.

`Subscription` (`watch`) and `LoadRun` (`ssenb.llm.load`) show their view the same way: a
`Frame` of widgets plus an HTML snapshot while they run, the snapshot alone once they end, a
text line where no widgets can render; and they re-send it all from the calling cell when a
cell waits or stops them (nbclient keeps only the messages of the cell it runs). The mixin
holds that once; the class provides `view`, `_frame` and `_done`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from . import _display, _loop
from ._display import Frame
from ._view_base import View

__all__ = ["Shown"]

_log = logging.getLogger("ssenb")


class Shown:
    """Display methods for an object whose `view` is fed on the ssenb loop.

    `_frame` is None where there are no widgets (plain Python, `display=False`); `_done` is
    set once the run has ended, after which the view no longer changes.
    """

    view: View
    _frame: Frame | None
    _done: threading.Event

    def _snapshot(self) -> str:
        """The view's HTML, rendered on the loop that owns the view while it is running."""
        if self._done.is_set() or _loop.in_loop_thread():
            return self.view.html()
        markup: str = _loop.call(self.view.html)
        return markup

    def _bundle(self) -> dict[str, Any]:
        if self._frame is None:
            return {"text/plain": repr(self), "text/html": self._snapshot()}
        return self._frame.bundle(repr(self), self._snapshot())

    def _ipython_display_(self) -> None:
        """Show the live view (once per cell), or the text line where widgets cannot render."""
        if self._frame is None:
            print(self.view.text())
            return
        self._frame.show(self._bundle, _display.execution_count())

    def _sync_display(self) -> None:
        """Re-send widget state and the HTML snapshot from the calling (current) cell."""
        if self._frame is None or _loop.in_loop_thread():
            return
        try:
            self._frame.resend(self._bundle)
        except Exception:  # e.g. the kernel is shutting down: the data matters, not the view
            _log.debug("ssenb: could not re-send the view of %r", self, exc_info=True)
