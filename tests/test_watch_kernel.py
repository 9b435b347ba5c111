"""`watch()` inside a real Jupyter kernel, executed cell by cell by nbclient.

One notebook runs the way a user would: a watch keeps consuming while the next cell blocks in
`time.sleep`; a kernel interrupt (nbclient interrupts a cell that overruns its timeout) does
not touch it; `stop()` keeps the data; at 50 k+ events/s the view sends at most 20 comm
messages per second (counted by wrapping `Widget._send` in the kernel); `wait()` and `stop()`
make the saved notebook hold the final HTML snapshot in place of the widget (a watch still
running keeps its widget); a third-party view registered in the kernel is chosen by "auto".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from ssenb.notebook._display import WIDGET_MIMETYPE

pytestmark = pytest.mark.slow

CELL_TIMEOUT = 120  # seconds, generous: kernel start and imports on a busy machine
INTERRUPT_AFTER = 3  # seconds: nbclient interrupts the `time.sleep(60)` cell then

CELLS = [
    # 0: a server, and a counter of every widget comm message with its time
    """
import json, time, ipywidgets, ssenb
XSS = "<img src=x onerror=alert(1)>"
srv = ssenb.serve(name="kernel-watch")
SENT = []
_send = ipywidgets.Widget._send
def _counting(self, msg, buffers=None):
    SENT.append((time.monotonic(), self.model_id))
    _send(self, msg, buffers)
ipywidgets.Widget._send = _counting
""",
    # 1: a background watch, displayed by itself
    'sub = ssenb.watch(srv.url + "/ticks?rate=200", record="ticks.jsonl")',
    # 2: the next cell blocks; consuming, batching and recording go on
    """
def lines(): return sum(1 for _ in open("ticks.jsonl"))
n0, r0, d0 = len(sub.events), len(sub.df), lines()
time.sleep(1)
n1, r1, d1 = len(sub.events), len(sub.df), lines()
print(json.dumps({"events": n1 - n0, "rows": r1 - r0, "recorded": d1 - d0}))
""",
    # 3: a cell that blocks until the kernel is interrupted
    "time.sleep(60)",
    # 4: after the interrupt, the watch still runs; stop keeps everything
    """
after = len(sub.events)
time.sleep(0.3)
still = sub.status, len(sub.events) > after
sub.stop()
print(json.dumps({"still": still, "status": sub.status, "events": len(sub.events),
                  "rows": len(sub.df), "recorded": lines(), "n1": n1}))
""",
    # 5: full speed, rate view
    'fast = ssenb.watch(srv.url + "/ticks?rate=0", view="rate")',
    # 6: count its messages while it runs for 2 s
    """
began = time.monotonic(); time.sleep(2); fast.stop(); ended = time.monotonic()
mine = set(fast._frame.model_ids.values())
live = [t for t, m in SENT if m in mine and began - 0.5 <= t < ended - 0.05]
busiest = max(sum(1 for u in live if t <= u < t + 1) for t in live)
print(json.dumps({"rate": len(fast.events) / (ended - began), "busiest": busiest,
                  "messages": len(live)}))
""",
    # 7: a finite stream, displayed
    'done = ssenb.watch(srv.url + "/stream?n=5&interval=0.05")',
    # 8: wait from a later cell: state and snapshot are re-sent from here
    """
done.wait(10)
print(json.dumps({"status": done.status, "html_model": done._frame.model_ids["html"]}))
""",
    # 9: a bare `watch(...)` as the cell's last line is shown once, not twice
    'ssenb.watch(srv.url + "/stream?n=2&interval=0")',
    # 10: hostile event data
    """
from fastapi import FastAPI
evil = FastAPI()
evil.get("/evil")(lambda: ssenb.EventStreamResponse(iter([XSS, "[DONE]"])))
esrv = ssenb.serve(evil, name="kernel-evil")
bad = ssenb.watch(esrv.url + "/evil", view="log")
""",
    # 11
    """
bad.wait(10); esrv.stop()
print(json.dumps({"status": bad.status, "html_model": bad._frame.model_ids["html"]}))
""",
    # 12: a third-party view, registered here, outranks the table for /stream's events
    """
class Where(ssenb.View):
    kind = "where"
    def __init__(self, *, title=""):
        super().__init__(title=title)
        self.at = ""
    def _add(self, events, now):
        self.at = f"{json.loads(events[-1].data)['count']} of 4"
    def _body_html(self, now):
        return f"<div>where: {self.esc(self.at)}</div>"
counted = lambda url, events: any('"count"' in ev.data for ev in events)
ssenb.register_view("where", Where, match=counted, priority=1)
w = ssenb.watch(srv.url + "/stream?n=4&interval=0.02")
""",
    # 13
    """
w.wait(10)
print(json.dumps({"kind": w.view.current().kind, "status": w.status}))
""",
    "srv.stop()",
    # 15: still streaming when the notebook is saved: the widget stays, with its snapshot
    'still = ssenb.watch(ssenb.serve(name="kernel-live").url + "/ticks?rate=5")',
]


def _json_out(cell: Any) -> dict[str, Any]:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source.strip()) for source in CELLS]
    nb.cells[3].metadata["tags"] = ["raises-exception"]
    client = NotebookClient(
        nb,
        timeout_func=lambda cell: INTERRUPT_AFTER if "sleep(60)" in cell.source else CELL_TIMEOUT,
        interrupt_on_timeout=True,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("kernel-watch"))}},
    )
    client.execute()
    path: Path = tmp_path_factory.mktemp("saved") / "watch.ipynb"
    nbformat.write(nb, path)  # what a saved notebook holds
    return nbformat.read(path, as_version=4)


def _display(cell: Any) -> Any:
    (out,) = [o for o in cell.outputs if o.output_type == "display_data"]
    return out


def test_a_running_watch_is_saved_as_its_widget_and_a_snapshot(executed: Any) -> None:
    out = _display(executed.cells[15])
    assert WIDGET_MIMETYPE in out.data
    assert 'class="ssenb-view' in out.data["text/html"]


@pytest.mark.parametrize(
    "cell", [1, 5, 7, 9, 10, 12], ids=["stopped", "fast", "done", "bare", "hostile", "third-party"]
)
def test_a_finished_watch_is_saved_as_its_snapshot_alone(executed: Any, cell: int) -> None:
    out = _display(executed.cells[cell])
    assert set(out.data) == {"text/html", "text/plain"}  # what nbconvert shows offline
    assert 'class="ssenb-view' in out.data["text/html"]


def test_a_watch_keeps_consuming_while_the_next_cell_sleeps(executed: Any) -> None:
    grew = _json_out(executed.cells[2])
    assert min(grew.values()) >= 100, grew  # 200 ev/s over 1 s, generously bounded


def test_interrupt_and_stop_keep_the_data(executed: Any) -> None:
    assert executed.cells[3].outputs[-1]["ename"] == "KeyboardInterrupt"
    out = _json_out(executed.cells[4])
    assert out["still"] == ["open", True]  # the interrupt did not reach the watch
    assert out["status"] == "stopped"
    assert out["events"] == out["rows"] == out["recorded"] > out["n1"]


def test_message_rate_is_bounded_at_full_speed(executed: Any) -> None:
    out = _json_out(executed.cells[6])
    assert out["rate"] >= 50_000, out
    assert 0 < out["busiest"] <= 20, out


def test_saved_notebook_holds_the_final_state(executed: Any) -> None:
    assert _json_out(executed.cells[8])["status"] == "done"
    html = _display(executed.cells[7]).data["text/html"]  # refreshed from the waiting cell
    assert "<b>done</b>" in html
    assert "5 events" in html


def test_a_view_registered_in_the_kernel_is_chosen_by_auto(executed: Any) -> None:
    assert _json_out(executed.cells[13]) == {"kind": "where", "status": "done"}
    assert "where: 4 of 4" in _display(executed.cells[12]).data["text/html"]


def test_a_bare_watch_expression_is_displayed_once(executed: Any) -> None:
    kinds = [o.output_type for o in executed.cells[9].outputs]
    assert kinds == ["display_data"]


def test_hostile_event_data_shows_as_text_live_and_saved(executed: Any) -> None:
    assert _json_out(executed.cells[11])["status"] == "done"
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    saved = json.dumps(state) + _display(executed.cells[10]).data["text/html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in saved
    assert "<img" not in saved
