"""Jupyter Notebook 7 in a real browser: the quick start and the LLM tutorial, live then done.

Notebook 7 is built from JupyterLab's parts (the same output area, the same widget manager,
`jupyterlab_widgets`), so the page helpers of `_browser.py` read it as they read JupyterLab;
what differs is the application (`jupyter-notebook`, one notebook per page at
`/notebooks/<name>`). The test runs every cell, samples the live views while they stream,
and checks each finished view was replaced by its final snapshot. No chart view is
registered yet: the live views here are the quick start's log/rate views and the LLM view.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import (
    browser_page,
    check_quickstart,
    chromium_or_skip,
    collect_dialogs,
    notebook_app,
    run_all_cells,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def nb7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """Notebook 7 on 127.0.0.1 with a token, on a scratch copy of notebooks/."""
    chromium_or_skip()
    pytest.importorskip("notebook")
    scratch = tmp_path_factory.mktemp("nb7")
    token = "ssenb-nb7-token"
    with notebook_app("Notebook 7", ["jupyter-notebook"], scratch, token) as (url, root):
        yield url, token, root


def _run(page: Any, url: str, token: str, name: str) -> list[dict[str, list[str]]]:
    """Open `name` in Notebook 7, run all cells, sample the views until every cell ran."""
    address = f"{url}/notebooks/{name}?token={token}"
    return run_all_cells(page, address, name, ready=120, timeout=180)


def test_quickstart_in_notebook_7_updates_live_and_finishes(nb7: tuple[str, str, Path]) -> None:
    url, token, _ = nb7
    with browser_page(width=1200, height=900) as page:
        dialogs = collect_dialogs(page)
        samples = _run(page, url, token, "00_quickstart.ipynb")
        check_quickstart(page, samples)  # live updates, then snapshots only, hostile as text
        screenshot(page, "nb7-quickstart")
    assert dialogs == []


def test_llm_tutorial_in_notebook_7_streams_and_finishes(nb7: tuple[str, str, Path]) -> None:
    url, token, root = nb7
    name = sorted(p.name for p in root.glob("02_*.ipynb"))[0]
    with browser_page(width=1200, height=900) as page:
        samples = _run(page, url, token, name)
        assert any(sample["live"] for sample in samples), "no live widget was seen"
        assert "tokens/s" in " ".join(samples[-1]["snapshot"]), samples[-1]
        screenshot(page, "nb7-llm")
