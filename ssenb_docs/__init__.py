"""Build ssenb's documentation site: `python -m ssenb_docs` (see README, "Documentation").

Two steps in one command: execute every tutorial notebook once in a fresh kernel
(`_execute.py`), then run `mkdocs build --strict`, whose hook (`hooks.py`) renders the
executed notebooks into Markdown pages (`_render.py`), writes the API reference from
`ssenb.__all__` (`_api.py`) and brings in the changelog and the benchmark figures.

This tool is not part of the `ssenb` package (the wheel ships only `ssenb/`).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "docs" / "executed"  # git-ignored; the hook reads it
SITE = ROOT / "site"

__all__ = ["EXECUTED", "NOTEBOOKS", "ROOT", "SITE"]
