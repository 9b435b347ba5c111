"""Which notebook cell started a watch, so re-running that cell replaces it.

Re-running a cell is how notebook users restart things; without this, every run of a
`watch(...)` cell would leave the previous stream consuming in the background. Frontends
that send a cell id with each execution (JupyterLab, Notebook 7, VS Code) put it in the
execute request's metadata as `cellId`; a watch remembers the cell and the request that
started it, and the next request of the same cell stops it first. Several watches started
by one run of a cell all stay. Without a cell id (plain IPython, nbclient) nothing changes.
Which cell runs now is asked of the kernel by `_display.current_cell()`; this module only
keeps the bookkeeping, so it needs no kernel.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

from .. import _state

__all__ = ["Cell", "remember", "stop_previous"]


class Cell(NamedTuple):
    """A cell (`cellId`) and the execute request (`msg_id`) running it now."""

    cell_id: str
    request: str


# cell id -> (request, weak references to the watches that run of the cell started)
_BY_CELL: dict[str, tuple[str, list[weakref.ref[Any]]]] = _state.flags.setdefault(
    "watches_by_cell", {}
)


def stop_previous(cell: Cell | None) -> int:
    """Stop the watches an earlier run of `cell` started; returns how many were running."""
    if cell is None:
        return 0
    request, refs = _BY_CELL.get(cell.cell_id, ("", []))
    if request == cell.request:
        return 0
    _BY_CELL.pop(cell.cell_id, None)
    stopped = 0
    for ref in refs:
        sub = ref()
        if sub is not None and sub.running:
            sub.stop()
            stopped += 1
    return stopped


def remember(cell: Cell | None, sub: Any) -> None:
    """Note that this run of `cell` started `sub`."""
    if cell is None:
        return
    request, refs = _BY_CELL.get(cell.cell_id, (cell.request, []))
    if request != cell.request:
        refs = []
    refs.append(weakref.ref(sub))
    _BY_CELL[cell.cell_id] = (cell.request, refs)
