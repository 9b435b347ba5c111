"""A saved notebook reads without a kernel and without a network.

A small notebook watches three finite demo streams to their end in a real kernel (nbclient):
an LLM answer (tokens view), a job's progress (progress view) and a counter (table view),
ending in three different ways: waited for in a later cell, waited for in the same cell, and
not waited for at all (it ends while a later cell runs). The executed notebook is exported
with nbconvert's HTMLExporter, as nbviewer does, and the HTML file is opened in Debian's
chromium with every request that is not the file itself aborted: the finished views' text
must be on screen (the answer, "completed 100%" with a full bar, the table's rows), and the
answer's words must stay whole where the text wraps (Jupyter's CSS breaks `<pre>` text
anywhere, which showed as "strea m").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser import browser_page, chromium_or_skip, open_offline, screenshot
from _nbexport import execute_and_export

from ssenb.notebook._display import WIDGET_MIMETYPE
from ssenb.server._llm import mock_answer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

PROMPT = "why do streams help"
CELLS = [
    f"""
import time, httpx, ssenb
srv = ssenb.serve(name="saved-notebook")
PROMPT = {PROMPT!r}
""",
    'chat = ssenb.watch(srv.url + "/chat", params={"prompt": PROMPT, "delay": 0.01})',
    "chat.wait(30)",  # waited for in a later cell
    """
job = httpx.post(srv.url + "/jobs", json={"steps": 20, "interval": 0.02}).json()
progress = ssenb.watch(srv.url + job["progress_url"])
progress.wait(30)
""",  # waited for in the same cell
    'table = ssenb.watch(srv.url + "/stream?n=6&interval=0.05")',  # never waited for
    "time.sleep(2)",  # ...it ends while this cell runs
    "assert (chat.status, progress.status, table.status) == ('done',) * 3\nsrv.stop()",
]

# For every word of the answer: does its text wrap onto two lines? (a Range's client rects)
BROKEN_WORDS = """(pre) => {
  const node = pre.firstChild, text = node.textContent, broken = [];
  const re = /\\S+/g; let m;
  while ((m = re.exec(text))) {
    const range = document.createRange();
    range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
    const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    if (tops.size > 1) broken.push(m[0]);
  }
  const all = document.createRange(); all.selectNodeContents(pre);
  const lines = new Set(Array.from(all.getClientRects()).map(r => Math.round(r.top))).size;
  return {broken, lines};
}"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The executed notebook as saved, and its HTML export."""
    chromium_or_skip()
    return execute_and_export(CELLS, tmp_path_factory.mktemp("saved-notebook"), "views")


def test_finished_views_are_saved_as_html_snapshots_only(saved: tuple[Any, Path]) -> None:
    nb, _ = saved
    for index in (1, 3, 4):
        (out,) = [o for o in nb.cells[index].outputs if o.output_type == "display_data"]
        assert WIDGET_MIMETYPE not in out.data, index
        assert "<b>done</b>" in out.data["text/html"], index


def test_the_exported_page_shows_every_finished_view_offline(saved: tuple[Any, Path]) -> None:
    _, html = saved
    with browser_page(width=520, height=1400) as page:
        blocked = open_offline(page, html)
        views = page.locator(".jp-OutputArea-output .ssenb-view")
        assert views.count() == 3
        for i in range(3):
            assert views.nth(i).is_visible()
        shown = page.inner_text("body")
        answer = mock_answer(PROMPT)
        assert " ".join(answer.split()) in " ".join(shown.split())  # the chat answer
        assert "completed 100%" in shown  # the job, and its bar drawn full in the snapshot
        bar = page.locator(".ssenb-progress div[style*='width:100.0%']")
        assert bar.count() == 1
        assert bar.first.bounding_box()["width"] > 100
        rows = page.locator(".ssenb-table tbody tr")
        assert rows.count() == 6
        assert [rows.nth(i).inner_text().split("\t")[-1] for i in range(6)] == [
            f"Update {i}" for i in range(1, 7)
        ]
        screenshot(page, "saved-notebook-offline")
    assert all(not url.startswith("file:") for url in blocked)


def test_the_saved_answer_wraps_between_words(saved: tuple[Any, Path]) -> None:
    _, html = saved
    with browser_page(width=420, height=1000) as page:
        open_offline(page, html)
        pre = page.locator(".ssenb-tokens pre").first
        got = pre.evaluate(BROKEN_WORDS)
        assert got["lines"] >= 3, got  # the answer really wraps at this width
        assert got["broken"] == [], got
        # the cause: the same text under Jupyter's own `pre` CSS (word-break: break-all)
        pre.evaluate("p => { p.style.wordBreak = ''; p.style.overflowWrap = ''; }")
        assert pre.evaluate(BROKEN_WORDS)["broken"], "the control should break words"
