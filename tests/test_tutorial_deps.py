"""README's first command installs `.[notebook]` and opens the tutorials: every module a
tutorial imports must come with that extra (or the standard library), not only with `.[test]`."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# import name -> distribution, where they differ (or come with a listed distribution)
PROVIDED_BY = {"IPython": "ipython", "numpy": "pandas", "starlette": "fastapi", "ssenb": "ssenb"}


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def _installed_by_notebook_extra() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["notebook"]
    return {_dist(d) for d in deps} | {"ssenb"}


def _imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return set(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", code, re.M))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_imports_come_with_the_notebook_extra(path: Path) -> None:
    have = _installed_by_notebook_extra()
    missing = sorted(
        name
        for name in _imports(path) - set(sys.stdlib_module_names)
        if PROVIDED_BY.get(name, name).lower() not in have
    )
    assert not missing, f"{path.name} imports {missing}: add them to the notebook extra"
