"""Typing is checked, not hoped for: `mypy` strict over the whole package reports zero errors.

The configuration lives in pyproject.toml (`[tool.mypy]`: strict, the pydantic plugin,
pandas-stubs); CI runs this test, so a type error fails the build like a failing test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_reports_no_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_mypy_is_strict() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert "[tool.mypy]" in text
    assert "strict = true" in text


def test_source_options_mirror_event_source() -> None:
    """`SourceOptions` (what collect/watch/record pass on) lists exactly EventSource's keywords."""
    import inspect

    import ssenb
    from ssenb.client import SOURCE_OPTIONS

    params = set(inspect.signature(ssenb.EventSource.__init__).parameters) - {"self", "url"}
    assert params == SOURCE_OPTIONS
