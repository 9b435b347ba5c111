"""The event log and the live table: bounded views of the latest events.

Both keep only a bounded deque of raw events (the full data lives in the subscription's
DataFrame and recording, never in the cell output), and format only what is shown, at render
time, so the cost per event on the loop thread is one `deque.extend`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any

from .._models import Event
from ._view_base import View, esc, fmt_count, shorten

__all__ = ["LogView", "TableView"]

_BOX = (
    'style="font-family:monospace;font-size:12px;max-height:22em;overflow:auto;'
    'margin:4px 0;padding:4px;border:1px solid #ddd;white-space:pre-wrap"'
)


class LogView(View):
    """Event log: the last `scrollback` events, one line each, oldest or newest first.

    Args:
        scrollback: events kept for display (older ones are counted as hidden, not shown).
        newest_first: put the latest event at the top.
        width: characters of data shown per line.
    """

    kind = "log"
    interval = 0.25

    def __init__(
        self,
        *,
        scrollback: int = 50,
        newest_first: bool = False,
        width: int = 200,
        title: str = "",
    ) -> None:
        super().__init__(title=title)
        if scrollback < 1:
            raise ValueError(f"scrollback must be at least 1, got {scrollback}")
        self.scrollback = scrollback
        self.newest_first = newest_first
        self.width = width
        self.lines: deque[Event] = deque(maxlen=scrollback)

    def _add(self, events: Sequence[Event], now: float) -> None:
        self.lines.extend(events)

    def _line(self, ev: Event) -> str:
        head = f"[{ev.id}] " if ev.id else ""
        name = "" if ev.event == "message" else f"{ev.event}: "
        return esc(head + name + shorten(ev.data, self.width))

    def _body_html(self, now: float) -> str:
        shown = list(self.lines)
        if self.newest_first:
            shown.reverse()
        hidden = self.count - len(shown)
        note = f"… {fmt_count(hidden)} earlier events not shown\n" if hidden > 0 else ""
        if self.newest_first and note:
            body = "\n".join(self._line(ev) for ev in shown) + "\n" + note.rstrip("\n")
        else:
            body = note + "\n".join(self._line(ev) for ev in shown)
        return f"<pre {_BOX}>{body}</pre>"


_CELL = 'style="padding:1px 10px 1px 0;text-align:left"'


def _cells(ev: Event) -> dict[str, Any]:
    """One table row: id and event, then the JSON object's keys (one level), else `data`."""
    row: dict[str, Any] = {"id": ev.id, "event": ev.event}
    try:
        value = json.loads(ev.data)
    except ValueError:
        value = ev.data
    if isinstance(value, dict):
        for key, item in value.items():
            row[f"data.{key}"] = item
    else:
        row["data"] = value
    return row


class TableView(View):
    """Live table of the last `rows` events, JSON object data spread into columns.

    Args:
        rows: how many of the latest events the table shows (newest last).
        width: characters shown per cell.
    """

    kind = "table"
    interval = 0.25

    def __init__(self, *, rows: int = 10, width: int = 80, title: str = "") -> None:
        super().__init__(title=title)
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        self.rows = rows
        self.width = width
        self.last: deque[Event] = deque(maxlen=rows)

    def _add(self, events: Sequence[Event], now: float) -> None:
        self.last.extend(events)

    def _body_html(self, now: float) -> str:
        rows = [_cells(ev) for ev in list(self.last)]  # copy first: the loop may append
        if not rows:
            return ""
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        head = "".join(f"<th {_CELL}>{esc(c)}</th>" for c in columns)

        def cell(value: Any) -> str:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            return f"<td {_CELL}>{esc(shorten(text, self.width))}</td>"

        body = "".join(
            "<tr>" + "".join(cell(row.get(c, "")) for c in columns) + "</tr>" for row in rows
        )
        return (
            '<table class="ssenb-table" style="font-family:monospace;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
