"""`ssenb.status()`: what is running in this process, as text or as an HTML table.

Reads only the runtime's typed registries (servers registered by `serve()`, subscriptions by
the notebook layer, recorders while they are open), so it works after `importlib.reload(ssenb)`
too and imports nothing heavy.
"""

from __future__ import annotations

import html
from typing import NamedTuple

from ._doctor import Diagnosis, doctor
from ._runtime import RecorderLike, ServerLike, SubscriptionLike, runtime

__all__ = ["Status", "status"]


class Row(NamedTuple):
    """One line of the status table."""

    kind: str
    name: str
    url: str
    state: str


def _server_row(name: str, handle: ServerLike) -> Row:
    return Row("server", name, str(handle.url), str(handle.status))


def _subscription_row(sub: SubscriptionLike) -> Row:
    return Row("subscription", str(sub.name or type(sub).__name__), str(sub.url), str(sub.status))


def _recorder_row(rec: RecorderLike) -> Row:
    n = rec.written
    state = f"open, {n:,} event{'s' if n != 1 else ''} written to {rec.path}"
    return Row("recorder", type(rec).__name__, str(rec.source or ""), state)


class Status:
    """A snapshot of running servers, live subscriptions and open recorders (`.rows`,
    `.servers`, `.subscriptions`, `.recorders`), and the front end `doctor()` found
    (`.frontend`, None when not asked)."""

    def __init__(self, rows: list[Row], frontend: Diagnosis | None = None) -> None:
        self.rows = rows
        self.frontend = frontend

    @property
    def servers(self) -> list[Row]:
        """Rows for servers only."""
        return [r for r in self.rows if r.kind == "server"]

    @property
    def subscriptions(self) -> list[Row]:
        """Rows for subscriptions only."""
        return [r for r in self.rows if r.kind == "subscription"]

    @property
    def recorders(self) -> list[Row]:
        """Rows for open recorders only."""
        return [r for r in self.rows if r.kind == "recorder"]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return self._table() + "".join("\n" + line for line in self._doctor_lines())

    def _doctor_lines(self) -> list[str]:
        return [] if self.frontend is None else list(self.frontend.lines)

    def _table(self) -> str:
        if not self.rows:
            return "ssenb: no servers, subscriptions or recorders running"
        head = Row("kind", "name", "url", "state")
        table = [head, *self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(3)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r.state for r in table]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        found = "".join(f"<br><code>{html.escape(x)}</code>" for x in self._doctor_lines())
        return self._html_table() + (f"<p>{found[4:]}</p>" if found else "")

    def _html_table(self) -> str:
        if not self.rows:
            return "<p><b>ssenb</b>: no servers, subscriptions or recorders running</p>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return (
            "<table><thead><tr><th>kind</th><th>name</th><th>url</th><th>state</th></tr>"
            f"</thead><tbody>{cells}</tbody></table>"
        )


def status() -> Status:
    """Running servers (by name), live subscriptions and open recorders, and one `frontend`
    row (what `doctor()` finds), with a readable repr (text, and an HTML table in a
    notebook)."""
    rows = [_server_row(n, h) for n, h in sorted(runtime.servers.items())]
    rows += [_subscription_row(s) for s in list(runtime.subscriptions.values())]
    rows += [_recorder_row(r) for r in list(runtime.recorders.values())]
    return Status(rows, doctor())
