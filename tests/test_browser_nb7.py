"""Jupyter Notebook 7 in a real browser: the quick start and the LLM tutorial, live then done.

Notebook 7 is built from JupyterLab's parts (the same output area, the same widget manager,
`jupyterlab_widgets`), so the page helpers of `test_browser_lab.py` read it too; what differs
is the application (`jupyter-notebook`, one notebook per page at `/notebooks/<name>`). The
test runs every cell, samples the live views while they stream, and checks each finished
view was replaced by its final snapshot. No chart view is registered yet: the live views
here are the quick start's log/rate views and the LLM view.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import browser_page, chromium_or_skip, poll, screenshot
from test_browser_lab import BUSY, CELLS, HOSTILE, KERNEL_READY, RUN_ALL, VIEWS, _counts, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nb7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """Notebook 7 on 127.0.0.1 with a token, on a scratch copy of notebooks/."""
    chromium_or_skip()
    pytest.importorskip("notebook")
    scratch = tmp_path_factory.mktemp("nb7")
    root = scratch / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    env = os.environ | {
        "HOME": str(scratch / "home"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }
    port, token = _free_port(), "ssenb-nb7-token"
    cmd = [
        str(Path(sys.executable).with_name("jupyter-notebook")),
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",
    ]
    log = (scratch / "nb7.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Notebook 7 did not start:\n" + (scratch / "nb7.log").read_text())
                time.sleep(0.25)
        yield url, token, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _run(page: Any, url: str, token: str, name: str) -> list[dict[str, list[str]]]:
    """Open `name` in Notebook 7, run all cells, sample the views until every cell ran."""
    page.goto(f"{url}/notebooks/{name}?token={token}", wait_until="domcontentloaded")
    poll(page, KERNEL_READY, timeout=120, interval=0.25)
    page.evaluate(RUN_ALL)
    samples: list[dict[str, list[str]]] = []
    sent, deadline = time.monotonic(), time.monotonic() + 180
    while time.monotonic() < deadline:
        samples.append(page.evaluate(VIEWS))
        cells = page.evaluate(CELLS)
        if cells and all(c["count"] is not None for c in cells):
            break
        started = any(c["count"] is not None for c in cells) or page.evaluate(BUSY)
        if not started and time.monotonic() - sent > 15:  # run-all sent too early: again
            poll(page, KERNEL_READY, timeout=60, interval=0.25)
            page.evaluate(RUN_ALL)
            sent = time.monotonic()
        time.sleep(0.2)
    cells = page.evaluate(CELLS)
    errors = [e for c in cells for e in c["errors"]]
    assert not errors, f"{name}: {errors}"
    assert all(c["count"] is not None for c in cells), f"{name}: not every cell ran: {cells}"
    samples.append(page.evaluate(VIEWS))
    return samples


def test_quickstart_in_notebook_7_updates_live_and_finishes(nb7: tuple[str, str, Path]) -> None:
    url, token, _ = nb7
    dialogs: list[str] = []
    with browser_page(width=1200, height=900) as page:
        page.on("dialog", lambda d: dialogs.append(d.message) or d.dismiss())  # type: ignore[func-returns-value]
        samples = _run(page, url, token, "00_quickstart.ipynb")
        assert len(_counts(samples)) >= 2, samples[:5]  # live widgets showed changing counts
        assert samples[-1]["live"] == [], samples[-1]  # every view ended: snapshots only
        final = " ".join(samples[-1]["snapshot"])
        assert final.count("done") >= 2, final
        assert "40 events" in final
        shown = page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".map(e => e.textContent).join('\\n')"
        )
        assert HOSTILE in shown
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
