"""Voila in a real browser: tutorials as dashboards, live views updating and finishing.

Voila runs every cell of a notebook before its page's widget manager connects, and shows
outputs as they were produced (later display updates do not reach the page). So a view that
ended during execution must keep its widgets (`_display.Frame.finish` does under Voila):
the page then shows each view's final state, never "model not found". A view still running
when the page connects updates live and then finishes. No chart view is registered yet: the
live views here are the quick start's log views, the LLM view and a rate view on `/ticks`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from _browser import (
    HOSTILE,
    browser_page,
    chromium_or_skip,
    collect_dialogs,
    event_counts,
    free_port,
    jupyter_server,
    notebooks_copy,
    poll,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

LIVE = """
import ssenb
srv = ssenb.serve(name="voila-live")
sub = ssenb.watch(srv.url + "/ticks?n=120&rate=8", view="log")
"""
VIEWS = """() => ({
  live: Array.from(document.querySelectorAll('.widget-html-content')).map(e => e.textContent),
  snapshot: [],
  missing: document.body.innerText.includes('model not found'),
  page: document.body.innerText,
})"""


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Voila on 127.0.0.1 serving a scratch copy of notebooks/ (plus a live-stream notebook)."""
    chromium_or_skip()
    pytest.importorskip("voila")
    scratch = tmp_path_factory.mktemp("voila")
    root = notebooks_copy(scratch)
    live = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIVE)])  # type: ignore[no-untyped-call]
    nbformat.write(live, root / "live_ticks.ipynb")  # type: ignore[no-untyped-call]
    port = free_port()
    cmd = ["voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", str(root)]
    url = f"http://127.0.0.1:{port}"
    with jupyter_server("Voila", cmd, scratch, cwd=root, ready=url + "/"):
        yield url, root


def _open(page: Any, url: str, name: str) -> None:
    page.goto(f"{url}/voila/render/{name}", wait_until="domcontentloaded", timeout=180_000)


def _done(page: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    """Sample the views until `count` of them say done; return the samples."""
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sample = page.evaluate(VIEWS)
        samples.append(sample)
        if sum(text.startswith("● done") for text in sample["live"]) >= count:
            return samples
        time.sleep(0.25)
    pytest.fail(f"fewer than {count} views finished: {samples[-1]['live']}")


def test_quickstart_in_voila_shows_every_views_final_state(voila: tuple[str, Path]) -> None:
    url, _ = voila
    with browser_page(width=1200, height=900) as page:
        dialogs = collect_dialogs(page)
        _open(page, url, "00_quickstart.ipynb")
        samples = _done(page, 2, timeout=150)
        final = " ".join(samples[-1]["live"])
        assert "40 events" in final, final
        assert not samples[-1]["missing"]
        assert HOSTILE in samples[-1]["page"]
        screenshot(page, "voila-quickstart")
    assert dialogs == []


def test_llm_tutorial_in_voila_finishes(voila: tuple[str, Path]) -> None:
    url, root = voila
    name = sorted(p.name for p in root.glob("02_*.ipynb"))[0]
    with browser_page(width=1200, height=900) as page:
        _open(page, url, name)
        samples = _done(page, 1, timeout=150)
        assert "tokens" in " ".join(samples[-1]["live"])
        assert not samples[-1]["missing"]
        screenshot(page, "voila-llm")


def test_a_running_view_updates_live_in_voila_and_finishes(voila: tuple[str, Path]) -> None:
    url, _ = voila
    with browser_page(width=1200, height=900) as page:
        _open(page, url, "live_ticks.ipynb")
        poll(page, "() => document.querySelectorAll('.widget-html-content').length", timeout=90)
        samples = _done(page, 1, timeout=120)
        assert len(event_counts(samples)) >= 3, [s["live"] for s in samples[:5]]  # it updated live
        assert "120 events" in samples[-1]["live"][0]
        screenshot(page, "voila-live")
