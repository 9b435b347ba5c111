"""`ssenb.doctor()`: which front end runs this kernel, whether live widgets will render, and
what to do when they will not.

A kernel cannot ask the browser what it shows; it reads what the front end leaves behind:
environment variables (`COLAB_RELEASE_TAG`, `VSCODE_PID`, `VOILA_BASE_URL`,
`JUPYTERHUB_SERVICE_PREFIX`, `JPY_SESSION_NAME` set by a Jupyter server for a notebook's
kernel), the parent process's command line (jupyter-lab / jupyter-notebook / voila), the
IPython shell and its comm support (`notebook._display.frontend_facts`, the only place that
looks at IPython), and the installed versions of ipywidgets and its front-end packages.
Without widgets the views print plain text updates, so every finding is advice, not an error.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

__all__ = ["Diagnosis", "doctor"]

_JUPYTER = ("JupyterLab", "Jupyter Notebook 7", "Voila")
COLAB_FIX = "from google.colab import output; output.enable_custom_widget_manager()"


class Diagnosis(NamedTuple):
    """The findings of `doctor()`: `frontend`, `widgets` ("yes", "likely", "no"), `lines`."""

    frontend: str
    widgets: str
    lines: list[str]

    def __repr__(self) -> str:
        return "\n".join(self.lines)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _parent_command() -> str:
    """The parent process's command line (Linux /proc; "" elsewhere or when unreadable)."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace")


def _jupyter_frontend(env: Mapping[str, str], parent: str) -> str:
    if "VOILA_BASE_URL" in env or "voila" in parent:
        return "Voila"
    if "jupyter-notebook" in parent or "jupyter_notebook" in parent:
        return "Jupyter Notebook 7"
    if "jupyter-lab" in parent or "jupyterlab" in parent:
        return "JupyterLab"
    if "JUPYTERHUB_SERVICE_PREFIX" in env:
        return "JupyterHub (JupyterLab or Notebook 7)"
    if "JPY_SESSION_NAME" in env:
        return "a Jupyter server (JupyterLab or Notebook 7)"
    return "a Jupyter kernel without a known front end (nbclient, papermill, a console?)"


def diagnose(
    env: Mapping[str, str], facts: Mapping[str, bool | str], parent: str = ""
) -> Diagnosis:
    """The findings for these environment variables and front-end facts (pure: tested)."""
    lines: list[str] = []
    widgets_py = _version("ipywidgets")
    lab_ext, nb_ext = _version("jupyterlab_widgets"), _version("widgetsnbextension")
    if facts.get("colab") or "COLAB_RELEASE_TAG" in env:
        frontend = "Google Colab"
    elif "VSCODE_PID" in env:
        frontend = "VS Code"
    elif not facts.get("shell"):
        frontend = "plain Python"
    elif not facts.get("kernel"):
        frontend = "an IPython terminal"
    else:
        frontend = _jupyter_frontend(env, parent)
    lines.append(f"front end: {frontend}")
    if not facts.get("kernel"):
        lines.append("widgets: no (not in a Jupyter kernel): views print plain text updates")
        return Diagnosis(frontend, "no", lines)
    if not facts.get("ipywidgets"):
        lines.append(
            "widgets: no (ipywidgets is not installed in this kernel): views print plain text "
            "updates; `pip install ipywidgets` and restart the kernel for live widgets"
        )
        return Diagnosis(frontend, "no", lines)
    if not facts.get("comm"):
        lines.append("widgets: no (this kernel cannot open comms): views print plain text")
        return Diagnosis(frontend, "no", lines)
    managers = ", ".join(
        f"{n} {v}"
        for n, v in (("jupyterlab_widgets", lab_ext), ("widgetsnbextension", nb_ext))
        if v
    )
    lines.append(
        f"widget manager: ipywidgets {widgets_py}; {managers or 'no manager package here'}"
    )
    widgets = "likely"
    if frontend == "Google Colab":
        lines.append(
            f"widgets: only with Colab's custom widget manager (ipywidgets 8): run `{COLAB_FIX}` "
            "once per session; without it each view shows its HTML snapshot"
        )
    elif frontend == "VS Code":
        lines.append(
            "widgets: yes, rendered by VS Code's Jupyter extension (ipywidgets 7 and 8); if a "
            "view stays blank, update the Jupyter extension"
        )
    elif frontend in _JUPYTER or frontend.startswith(("JupyterHub", "a Jupyter server")):
        if lab_ext is None:
            lines.append(
                "widgets: maybe not: jupyterlab_widgets is not installed in this environment; "
                "install it where the Jupyter server runs (`pip install jupyterlab_widgets`)"
            )
        else:
            widgets = "yes"
            lines.append(f"widgets: yes ({frontend} with jupyterlab_widgets {lab_ext})")
    else:
        lines.append("widgets: unknown front end; a view falls back to its HTML snapshot")
    if "JUPYTERHUB_SERVICE_PREFIX" in env:
        proxy = _version("jupyter-server-proxy")
        lines.append(
            f"JupyterHub: browser_url() goes through jupyter-server-proxy {proxy}"
            if proxy
            else "JupyterHub: install jupyter-server-proxy so a browser can reach serve()'d "
            "servers (`<prefix>proxy/<port>/`)"
        )
    return Diagnosis(frontend, widgets, lines)


def doctor() -> Diagnosis:
    """Which front end and widget manager this runs under, whether live widgets will render,
    and what to do when they will not; one line per finding (its repr). Also in `status()`."""
    if "IPython.core.getipython" not in sys.modules:  # plain Python: nothing to ask IPython
        facts: dict[str, bool | str] = {"shell": "", "kernel": False}
    else:
        from .notebook._display import frontend_facts

        facts = frontend_facts()
    return diagnose(os.environ, facts, _parent_command())
