"""JupyterLab in a real browser: run tutorials top to bottom and watch their live views finish.

The test starts JupyterLab on 127.0.0.1 with a token on a scratch copy of `notebooks/`, opens
each notebook in Debian's chromium (Playwright, `executable_path`), waits until the kernel is
really connected, runs all cells, samples the live views while they update, and checks the
final state: every cell ran without error, the live widgets updated while streaming, each
finished view was replaced by its final snapshot (the form a saved notebook keeps, readable
without widgets), and an event carrying `<img src=x onerror=alert(1)>` is shown as text and
runs nothing. Screenshots are
saved under `test-artifacts/`. Recipe and pitfalls: research/jupyter.md, section 4.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Lab:
    url: str
    token: str
    root: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    chromium_or_skip()
    scratch = tmp_path_factory.mktemp("lab")
    settings = scratch / "settings"  # no news popup over the views; widget state saved
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
        "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    }.items():
        target = settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    token = "ssenb-test-token"
    cmd = [
        "jupyter-lab",
        f"--LabApp.user_settings_dir={settings}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with notebook_app("JupyterLab", cmd, scratch, token) as (url, root):
        yield Lab(url, token, root)


SCROLL_TO_VIEW = (
    "() => { const v = document.querySelector('.jp-OutputArea-output .ssenb-view');"
    " if (v) v.scrollIntoView(); }"
)


def _run_notebook(page: Any, lab: Lab, name: str) -> list[dict[str, list[str]]]:
    """Open `name` in JupyterLab, run all cells, sample live view texts until every cell ran."""
    # ?reset: a fresh workspace, so the notebook asked for is the current widget
    return run_all_cells(page, f"{lab.url}/lab/tree/{name}?reset&token={lab.token}", name)


def test_quickstart_runs_in_jupyterlab_with_live_views_and_inert_hostile_data(lab: Lab) -> None:
    with browser_page(width=1200, height=900) as page:
        dialogs = collect_dialogs(page)
        samples = _run_notebook(page, lab, "00_quickstart.ipynb")
        # live updates, every view ended as its snapshot, the hostile prompt shown as text
        check_quickstart(page, samples)
        # ... and no <img src=x> element exists
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
        page.evaluate(SCROLL_TO_VIEW)
        screenshot(page, "lab-quickstart")
    assert dialogs == [], f"event data ran script: {dialogs}"


TUTORIALS = [
    ("llm", "02_", "tokens/s"),
    ("job-progress", "03_", "completed"),
]


@pytest.mark.parametrize(
    ("prefix", "expect"), [t[1:] for t in TUTORIALS], ids=[t[0] for t in TUTORIALS]
)
def test_tutorial_views_finish_in_jupyterlab(lab: Lab, prefix: str, expect: str) -> None:
    matches = sorted(p.name for p in lab.root.glob(f"{prefix}*.ipynb"))
    assert matches, f"no notebook {prefix}*.ipynb"
    with browser_page(width=1200, height=900) as page:
        dialogs = collect_dialogs(page)
        samples = _run_notebook(page, lab, matches[0])
        assert any(sample["live"] for sample in samples), "no live widget was seen"
        assert expect in " ".join(samples[-1]["snapshot"]), samples[-1]
        page.evaluate(SCROLL_TO_VIEW)
        screenshot(page, f"lab-{matches[0].removesuffix('.ipynb')}")
    assert dialogs == []


def test_lab_was_given_a_token_and_loopback_only(lab: Lab) -> None:
    assert lab.url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{lab.url}/api/contents", timeout=5)
    assert info.value.code in (401, 403)
