"""`ssenb.doctor()`: the front end a kernel runs under, whether widgets render, what to do.

The findings are a pure function of environment variables, front-end facts and the parent
command line (`diagnose`, a table of cases below); `doctor()` reads the real ones. Kernel-only
use stays correct: in plain Python and in a real kernel where ipywidgets cannot be imported,
`watch()` prints plain text status lines and shows no widget.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _kernel import kernel

import ssenb
from ssenb._doctor import COLAB_FIX, diagnose

KERNEL = {"shell": "ZMQInteractiveShell", "kernel": True, "comm": True, "ipywidgets": True}
PLAIN: dict[str, bool | str] = {"shell": "", "kernel": False}
TERMINAL: dict[str, bool | str] = {"shell": "TerminalInteractiveShell", "kernel": False}

CASES = [
    # id, env, facts, parent command, front end, widgets, a phrase of the advice
    ("plain-python", {}, PLAIN, "", "plain Python", "no", "plain text"),
    ("ipython-terminal", {}, TERMINAL, "", "an IPython terminal", "no", "plain text"),
    ("jupyterlab", {"JPY_SESSION_NAME": "a.ipynb"}, KERNEL, "python jupyter-lab", "JupyterLab",
     "yes", "jupyterlab_widgets"),
    ("notebook-7", {"JPY_SESSION_NAME": "a.ipynb"}, KERNEL, "python jupyter-notebook",
     "Jupyter Notebook 7", "yes", "jupyterlab_widgets"),
    ("voila", {"VOILA_BASE_URL": "/"}, KERNEL, "python voila a.ipynb", "Voila", "yes", "Voila"),
    ("jupyter-server", {"JPY_SESSION_NAME": "a.ipynb"}, KERNEL, "python jupyter-server",
     "a Jupyter server (JupyterLab or Notebook 7)", "yes", "jupyterlab_widgets"),
    ("jupyterhub", {"JUPYTERHUB_SERVICE_PREFIX": "/user/me/"}, KERNEL, "jupyterhub-singleuser",
     "JupyterHub (JupyterLab or Notebook 7)", "yes", "jupyter-server-proxy"),
    ("nbclient", {}, KERNEL, "python -m pytest", "a Jupyter kernel without a known front end "
     "(nbclient, papermill, a console?)", "likely", "unknown front end"),
    ("vscode", {"VSCODE_PID": "1"}, KERNEL, "", "VS Code", "likely", "Jupyter extension"),
    ("colab-env", {"COLAB_RELEASE_TAG": "r1"}, KERNEL, "", "Google Colab", "likely", COLAB_FIX),
    ("colab-module", {}, KERNEL | {"colab": True}, "", "Google Colab", "likely", COLAB_FIX),
    ("no-ipywidgets", {"JPY_SESSION_NAME": "a"}, KERNEL | {"ipywidgets": False},
     "jupyter-lab", "JupyterLab", "no", "pip install ipywidgets"),
    ("no-comms", {}, KERNEL | {"comm": False}, "jupyter-lab", "JupyterLab", "no", "comms"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "facts", "parent", "frontend", "widgets", "advice"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_diagnose(
    env: dict[str, str],
    facts: dict[str, bool | str],
    parent: str,
    frontend: str,
    widgets: str,
    advice: str,
) -> None:
    found = diagnose(env, facts, parent)
    assert (found.frontend, found.widgets) == (frontend, widgets)
    assert found.lines[0] == f"front end: {frontend}"
    assert advice in repr(found)
    assert all("\n" not in line for line in found.lines)  # one line per finding


def test_status_shows_the_doctors_findings() -> None:
    report = ssenb.status()
    assert report.frontend is not None
    assert repr(report).endswith("\n".join(report.frontend.lines))
    assert "front end: " in report._repr_html_()


def test_plain_python_watch_prints_text_and_imports_no_front_end(tmp_path: Path) -> None:
    code = """
import sys, ssenb
print(ssenb.doctor())
srv = ssenb.serve(name="doctor-plain")
sub = ssenb.watch(srv.url + "/ticks?n=20&rate=200")
assert sub.wait(30), sub.status
print("events", len(sub.events))
print("loaded", [m for m in ("IPython", "ipywidgets") if m in sys.modules])
srv.stop()
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "front end: plain Python" in done.stdout
    assert "events 21" in done.stdout or "events 20" in done.stdout
    assert "loaded []" in done.stdout
    assert "ticks" in done.stderr  # the plain-text status line of the view


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_kernel_without_ipywidgets_gets_text_updates_and_no_widget(tmp_path: Path) -> None:
    with kernel(tmp_path) as k:
        k.ok("import sys; sys.modules['ipywidgets'] = None  # ipywidgets cannot be imported")
        k.ok("import ssenb; srv = ssenb.serve(name='doctor-kernel')")
        found = k.ok("print(ssenb.doctor())")
        assert "widgets: no (ipywidgets is not installed in this kernel)" in found.stdout
        reply = k.ok(
            "sub = ssenb.watch(srv.url + '/ticks?n=20&rate=200'); assert sub.wait(30)\n"
            "print('events', len(sub.events), sub.status)",
            timeout=90,
        )
        assert reply.status == "ok", reply.error
        assert "events 2" in reply.stdout
        assert "ticks" in reply.stderr  # the plain-text status line of the view
        assert not any("application/vnd.jupyter.widget-view+json" in d for d in reply.displays)
        k.ok("srv.stop()")
