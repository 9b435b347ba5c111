"""Every tutorial notebook runs top to bottom in a real kernel, fast, and cleans up after itself.

Notebooks are committed without outputs. They are executed here by nbclient as a person meets
them: all of them in ONE shared copy of the `notebooks/` folder, each in a fresh kernel, then all
of them again in reverse order (Restart & Run All, in any order, must always work). Each writes
only into its own `_scratch/NN/` folder, which it recreates at its start; each has a per-cell
timeout and a whole-notebook bound, and must leave no kernel process, server thread or listening
port behind.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 60
NOTEBOOK_BUDGET = 60.0
# (round, notebook): every notebook, then every notebook again in reverse order, in one folder
RUNS = [("first", p) for p in NOTEBOOKS] + [("again", p) for p in reversed(NOTEBOOKS)]
# Notebooks that still write next to themselves (owned by another change): checked once fixed.
WRITES_OUTSIDE_SCRATCH: set[str] = set()
# Notebooks whose title, prerequisites and next link are still being edited by another change.
LAYOUT_PENDING: set[str] = set()


def _read(path: Path) -> Any:
    """A notebook as nbformat's node (nbformat has no type hints)."""
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def test_there_are_tutorials() -> None:
    assert NOTEBOOKS, "notebooks/ must hold at least the quick start"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = _read(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: a cell has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: a cell has a count"
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ends_with_an_assert_cell(path: Path) -> None:
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("assert " in c.source for c in code[-3:]), f"{path.name}: no final assert"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_numbered_title_prerequisites_and_next_link(path: Path) -> None:
    if path.stem in LAYOUT_PENDING:
        pytest.skip("title, prerequisites and next link are being edited by another change")
    nb = _read(path)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {path.stem[:2]} · ")
    assert "*Prerequisites:*" in first.source.split("\n\n")[1], "one line of prerequisites"
    assert last.cell_type == "markdown"
    assert last.source.startswith("**Next:** ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_listed_alike_in_both_tutorial_lists(path: Path) -> None:
    """notebooks/README.md and README's tutorial list name each notebook with the same line."""
    ours = [ln for ln in (ROOT / "notebooks/README.md").read_text().splitlines()
            if ln.startswith("- [") and f"]({path.name})" in ln]  # fmt: skip
    top = [ln for ln in (ROOT / "README.md").read_text().splitlines()
           if ln.startswith("- [") and f"](notebooks/{path.name})" in ln]  # fmt: skip
    assert len(ours) == len(top) == 1, f"{path.name} must be listed once in each"
    assert ours[0] == top[0].replace("(notebooks/", "("), "the two lists differ"
    assert ours[0].startswith(f"- [{path.stem[:2]} · ")


def _listening_ports(pid: int) -> set[int]:
    """Ports a process listens on (from /proc), to check a kernel left none behind."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except (FileNotFoundError, PermissionError):
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _requires(path: Path) -> None:
    """Skip a notebook whose service is missing; on CI (`CI` set) fail: `.ci/run` installs it."""
    if path.stem == "15_hub_redis" and not (
        shutil.which("redis-server") or os.environ.get("REDIS_URL")
    ):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI installs it: .ci/run)", pytrace=False)
        pytest.skip("needs redis-server on PATH or REDIS_URL")


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of `notebooks/` that every run of the module executes in, as a user's folder."""
    folder = tmp_path_factory.mktemp("shared") / "notebooks"
    ignore = shutil.ignore_patterns("_scratch", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "notebooks", folder, ignore=ignore)
    return folder


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_scratch_folder_is_ignored_by_git(path: Path) -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "notebooks/_scratch/" in ignored


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("round_", "path"), RUNS, ids=[f"{r}-{p.stem}" for r, p in RUNS])
def test_runs_top_to_bottom(round_: str, path: Path, shared_folder: Path) -> None:
    _requires(path)
    nb = _read(path)
    before = _files(shared_folder)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(shared_folder)}},
        store_widget_state=True,
    )
    start = time.monotonic()
    with client.setup_kernel():
        assert client.km is not None
        pid = getattr(client.km.provisioner, "pid", None)
        assert pid is not None
        baseline = _listening_ports(pid)  # the kernel's own sockets (zmq channels and more)
        # raises CellExecutionError with the failing cell; the kernel stays ours to inspect
        client.execute(cleanup_kc=False)
        # Everything the tutorial started must be stopped by its own last cell.
        leftover = _listening_ports(pid) - baseline
        assert not leftover, f"{path.name} left listening ports {leftover}"
        check = nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
            "import threading; print(sorted(t.name for t in threading.enumerate()"
            " if t.name.startswith('ssenb')))"
        )
        nb.cells.append(check)
        client.execute_cell(check, len(nb.cells) - 1)
        assert check.outputs[0]["text"].strip() == "[]", check.outputs
    elapsed = time.monotonic() - start
    assert elapsed < NOTEBOOK_BUDGET * 2, f"{path.name} took {elapsed:.1f} s"
    # Everything it wrote is under its own scratch folder (what was there before may be gone).
    mine = f"_scratch/{path.stem[:2]}/"
    strays = sorted(f for f in _files(shared_folder) - before if not f.startswith(mine))
    if path.stem not in WRITES_OUTSIDE_SCRATCH:
        assert not strays, f"{path.name} wrote outside {mine}: {strays}"
    # the kernel process is gone after setup_kernel's shutdown
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.1)
    if os.path.exists(f"/proc/{pid}"):
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert state == "Z", f"kernel {pid} still running after shutdown"
