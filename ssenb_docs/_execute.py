"""Execute the tutorials once per build, each in a fresh kernel, as tests/test_notebooks.py
does: cwd is a scratch folder (recordings never land in the repo), each cell is bounded, and
a failing cell fails the build with the notebook's name and traceback.

The executed copy keeps every output (final view snapshots included: nbclient applies each
view's `update_display_data` to the output it replaces) and records the source's hash, so
`--reuse` can skip notebooks that did not change since their last run.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from ._render import strip_widget_views

CELL_TIMEOUT = 120  # seconds per cell; the tutorials promise seconds, tests bound them at 60
HASH_KEY = "ssenb_docs_source_sha256"


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_fresh(source: Path, executed: Path) -> bool:
    """True when `executed` is a run of the current `source` (same content hash)."""
    if not executed.exists():
        return False
    nb = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
    return bool(nb.metadata.get(HASH_KEY) == source_hash(source))


def execute(source: Path, target: Path, *, allow_errors: bool = False) -> tuple[float, bool]:
    """Run `source` top to bottom in a fresh python3 kernel; write it with outputs to `target`.

    Returns the seconds it took and whether a cell raised. Raises nbclient's
    CellExecutionError on a failing cell, unless `allow_errors` (the page then shows the
    traceback).
    """
    nb = nbformat.read(source, as_version=4)  # type: ignore[no-untyped-call]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"ssenb-docs-{source.stem}-") as scratch:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": scratch}},
            allow_errors=allow_errors,
        )
        client.execute()
    strip_widget_views(nb)
    failed = any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    if not failed:  # a draft run with errors is never reused as fresh
        nb.metadata[HASH_KEY] = source_hash(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    nbformat.write(nb, tmp)  # type: ignore[no-untyped-call]
    tmp.replace(target)  # a half-written copy never looks fresh
    return time.monotonic() - start, failed


def execute_all(
    sources: Iterable[Path], out_dir: Path, *, reuse: bool = False, allow_errors: bool = False
) -> None:
    """Execute every notebook into `out_dir/<name>.ipynb`; drop copies of removed notebooks."""
    sources = sorted(sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {s.name for s in sources}
    for stale in out_dir.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    for source in sources:
        target = out_dir / source.name
        if reuse and is_fresh(source, target):
            print(f"ssenb_docs: {source.name}: unchanged, reused", file=sys.stderr)
            continue
        # Some tutorials assert timings (tests/test_notebooks.py is their judge); on a busy
        # machine one run can miss. A failed notebook runs once more from scratch; a second
        # failure fails the build with the cell and its traceback (or, with `allow_errors`,
        # leaves the traceback on the page).
        for attempt in (1, 2):
            try:
                seconds, failed = execute(source, target, allow_errors=allow_errors)
                why = "a cell raised"
            except CellExecutionError as exc:
                if attempt == 2:
                    raise
                failed, why = True, str(exc).strip().splitlines()[-1]
            if not failed or attempt == 2:
                break
            print(f"ssenb_docs: {source.name}: {why}; running it again", file=sys.stderr)
        state = "FAILED (its page shows the error)" if failed else "executed"
        print(f"ssenb_docs: {source.name}: {state} in {seconds:.1f} s", file=sys.stderr)
