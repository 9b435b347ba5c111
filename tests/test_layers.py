"""Layering: the core is stdlib-only and I/O-free; imports only point down the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ssenb"
CORE = ["_models", "_parser", "_encoder", "_errors", "_version", "_dialects"]
# the runtime: the loop-thread mechanism and its typed registries (`_state` names them)
RUNTIME = ["_runtime", "_state"]

# DESIGN's order: core < runtime < client, server (neither imports the other) < recording
# < notebook (and the `ssenb.llm` namespace beside it) < top (magics, CLI, status, stop_all).
# A module may import ssenb modules of its own layer or of lower layers only.
LAYER = {
    "core": 0,
    "runtime": 1,
    "client": 2,
    "server": 2,
    "recording": 3,
    "notebook": 4,
    "llm": 4,
    "top": 5,
}
FORBIDDEN_PAIRS = {("client", "server"), ("server", "client")}
# IPython and ipywidgets are imported in these modules only (display lives in one place)
FRONTEND_MODULES = {"magics.py", "notebook/_display.py"}
FRONTEND_PACKAGES = {"IPython", "ipywidgets", "ipykernel"}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return "top"
    head = parts[1]
    if head in ("client", "server", "recording", "notebook", "llm"):
        return head
    if head in RUNTIME:
        return "runtime"
    if head in CORE or head == "__init__":
        return "core"
    return "top"  # magics, _cli, _status, _lifecycle, __main__


def _ssenb_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = ".".join(rel.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ssenb")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "ssenb":  # `from .. import _state`: the names are the modules
                found |= {f"ssenb.{a.name}" for a in node.names}
            elif name.startswith("ssenb"):
                found.add(name)
    return found


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PKG)) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    here = _layer_of(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
    for target in _ssenb_imports(path):
        there = _layer_of(target)
        assert (here, there) not in FORBIDDEN_PAIRS, f"{path.name} imports {target}"
        assert LAYER[there] <= LAYER[here], f"{path.name} ({here}) imports {target} ({there})"


BLOCKER = """
import sys, importlib.abc
allowed = set(sys.stdlib_module_names) | {"ssenb"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] not in allowed:
            raise ImportError(f"third-party import blocked: {name}")
        return None
sys.meta_path.insert(0, Block())
import socket
def no_io(*a, **k): raise AssertionError("I/O from the core")
socket.socket = no_io
from ssenb import Event, EventParser, encode, encode_comment, SSEError
p = EventParser()
assert p.feed(encode(Event(event="t", data="x", id="1"))) == [Event("t", "x", "1", None)]
assert encode_comment("hi") == b": hi\\n"
heavy = {"httpx", "fastapi", "pandas", "starlette", "IPython", "asyncio"}
bad = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
assert not bad, bad
print("ok")
"""


def test_core_imports_with_third_party_packages_blocked() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("name", CORE)
def test_core_modules_use_no_io_or_asyncio(name: str) -> None:
    text = (PKG / f"{name}.py").read_text()
    for word in ("import asyncio", "import socket", "open(", "import httpx", "import threading"):
        assert word not in text, f"{name}.py: {word}"


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PKG)) for p in MODULES])
def test_ipython_and_widgets_only_in_the_display_modules(path: Path) -> None:
    """magics.py and notebook/_display.py talk to the front end; every other module takes
    callbacks or returns data, so it works (and is tested) without a kernel."""
    rel = str(path.relative_to(PKG))
    used = _third_party_imports(path) & FRONTEND_PACKAGES
    if rel not in FRONTEND_MODULES:
        assert not used, f"{rel} imports {sorted(used)}"
