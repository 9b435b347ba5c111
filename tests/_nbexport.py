"""Execute a notebook in a real kernel, save it, and export it as nbviewer would.

The tests of saved notebooks (test_dashboard.py, test_saved_notebook.py) check what a
notebook holds once it is closed: run by nbclient with widget state stored (as JupyterLab
saves it), written and read back with nbformat, and rendered by nbconvert's HTMLExporter
(what nbviewer and GitHub show).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter


def execute_and_export(cells: list[str], work: Path, name: str) -> tuple[Any, Path]:
    """Run `cells` in a python3 kernel whose working folder is `work`; save `<name>.ipynb`
    there and return it as read back, with its HTML export `<name>.html`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source.strip()) for source in cells]
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(work)}},
    ).execute()
    nbformat.write(nb, work / f"{name}.ipynb")
    nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    page = work / f"{name}.html"
    page.write_text(body, encoding="utf-8")
    return nb, page
