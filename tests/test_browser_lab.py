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
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _browser import browser_page, chromium_or_skip, poll, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<img src=x onerror=alert(1)>"


@dataclass
class Lab:
    url: str
    token: str
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    chromium_or_skip()
    scratch = tmp_path_factory.mktemp("lab")
    root = scratch / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    env = os.environ | {
        "HOME": str(scratch / "home"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }
    settings = scratch / "settings"  # no news popup over the views; widget state saved
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
        "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    }.items():
        target = settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = _free_port(), "ssenb-test-token"
    lab_bin = Path(sys.executable).with_name("jupyter-lab")
    cmd = [
        str(lab_bin),
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",
        f"--LabApp.user_settings_dir={settings}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (scratch / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "JupyterLab did not start:\n" + (scratch / "lab.log").read_text()[-3000:]
                    )
                time.sleep(0.25)
        yield Lab(url, token, root)
    finally:
        req = urllib.request.Request(
            f"{url}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        try:
            urllib.request.urlopen(req, timeout=10)
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


KERNEL_READY = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.sessionContext || !nb.content) return false;
  const k = nb.sessionContext.session && nb.sessionContext.session.kernel;
  return nb.sessionContext.isReady && !!k
    && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

BUSY = """() => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return !!k && k.status === 'busy';
}"""

RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true }"

CELLS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const code = nb.content.widgets.filter(c => c.model.type === 'code');
  return code.map(c => ({
    count: c.model.executionCount,
    errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                 .map(o => o.ename + ': ' + o.evalue),
  }));
}"""

# live: the text of each widget view; snapshot: each view shown as plain HTML (a finished one)
VIEWS = """() => ({
  live: Array.from(document.querySelectorAll('.jp-OutputArea .widget-html-content'))
    .map(e => e.textContent),
  snapshot: Array.from(document.querySelectorAll('.jp-OutputArea-output .ssenb-view'))
    .filter(e => !e.closest('.widget-html-content')).map(e => e.textContent),
})"""


def _run_notebook(page: Any, lab: Lab, name: str, dialogs: list[str]) -> list[dict[str, list[str]]]:
    """Open `name`, run all cells, sample live view texts until every cell ran; return samples."""
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # ?reset: a fresh workspace, so the notebook asked for is the current widget
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}", wait_until="domcontentloaded")
    poll(page, KERNEL_READY, timeout=90, interval=0.25)
    page.evaluate(RUN_ALL)
    samples: list[dict[str, list[str]]] = []
    sent, deadline = time.monotonic(), time.monotonic() + 150
    while time.monotonic() < deadline:
        samples.append(page.evaluate(VIEWS))
        cells = page.evaluate(CELLS)
        if cells and all(c["count"] is not None for c in cells):
            break
        started = any(c["count"] is not None for c in cells) or page.evaluate(BUSY)
        if not started and time.monotonic() - sent > 15:  # run-all sent too early: send again
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


def _counts(samples: list[dict[str, list[str]]]) -> set[int]:
    """The event counts the live widgets showed over all samples."""
    found: set[int] = set()
    for sample in samples:
        for text in sample["live"]:
            for m in re.finditer(r"([\d,]+) events", text):
                found.add(int(m.group(1).replace(",", "")))
    return found


def test_quickstart_runs_in_jupyterlab_with_live_views_and_inert_hostile_data(lab: Lab) -> None:
    dialogs: list[str] = []
    with browser_page(width=1200, height=900) as page:
        samples = _run_notebook(page, lab, "00_quickstart.ipynb", dialogs)
        # the live widgets updated: several distinct event counts were seen while streaming
        assert len(_counts(samples)) >= 2, samples[:5]
        # every view ended, and each shows its final snapshot in place of its widget
        assert samples[-1]["live"] == [], samples[-1]
        final = " ".join(samples[-1]["snapshot"])
        assert final.count("done") >= 2, final
        assert "40 events" in final
        # the hostile prompt is on screen as text, and no <img src=x> element exists
        shown = page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".map(e => e.textContent).join('\\n')"
        )
        assert HOSTILE in shown
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
        page.evaluate(
            "() => { const v = document.querySelector('.jp-OutputArea-output .ssenb-view');"
            " if (v) v.scrollIntoView(); }"
        )
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
    dialogs: list[str] = []
    with browser_page(width=1200, height=900) as page:
        samples = _run_notebook(page, lab, matches[0], dialogs)
        assert any(sample["live"] for sample in samples), "no live widget was seen"
        assert expect in " ".join(samples[-1]["snapshot"]), samples[-1]
        page.evaluate(
            "() => { const v = document.querySelector('.jp-OutputArea-output .ssenb-view');"
            " if (v) v.scrollIntoView(); }"
        )
        screenshot(page, f"lab-{matches[0].removesuffix('.ipynb')}")
    assert dialogs == []


def test_lab_was_given_a_token_and_loopback_only(lab: Lab) -> None:
    assert lab.url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{lab.url}/api/contents", timeout=5)
    assert info.value.code in (401, 403)
