"""`ssenb.status()`: what is running in this process, as text or as an HTML table.

Reads only the registries in `ssenb._state` (servers registered by `serve()`, subscriptions
registered by the notebook layer), so it works after `importlib.reload(ssenb)` too.
"""

from __future__ import annotations

import html
from typing import Any, NamedTuple

from . import _state

__all__ = ["Status", "status"]


class Row(NamedTuple):
    """One line of the status table."""

    kind: str
    name: str
    url: str
    state: str


def _server_row(name: str, handle: Any) -> Row:
    state = handle._state_text() if hasattr(handle, "_state_text") else repr(handle)
    return Row("server", name, str(getattr(handle, "url", "")), state)


def _subscription_row(sub: Any) -> Row:
    name = str(getattr(sub, "name", "") or type(sub).__name__)
    state = getattr(sub, "status", "")
    if callable(state):
        state = state()
    return Row("subscription", name, str(getattr(sub, "url", "")), str(state))


class Status:
    """A snapshot of running servers and live subscriptions (`.rows`, `.servers`)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    @property
    def servers(self) -> list[Row]:
        """Rows for servers only."""
        return [r for r in self.rows if r.kind == "server"]

    @property
    def subscriptions(self) -> list[Row]:
        """Rows for subscriptions only."""
        return [r for r in self.rows if r.kind == "subscription"]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return "ssenb: no servers or subscriptions running"
        head = Row("kind", "name", "url", "state")
        table = [head, *self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(3)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r.state for r in table]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p><b>ssenb</b>: no servers or subscriptions running</p>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return (
            "<table><thead><tr><th>kind</th><th>name</th><th>url</th><th>state</th></tr>"
            f"</thead><tbody>{cells}</tbody></table>"
        )


def status() -> Status:
    """Running servers (by name) and live subscriptions, with a readable repr."""
    rows = [_server_row(n, h) for n, h in sorted(_state.servers.items())]
    rows += [_subscription_row(s) for s in list(_state.subscriptions.values())]
    return Status(rows)
