"""bench/parser.py runs, counts every event exactly for each parser, and prints its ratio table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_parser_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "parser.json"
    proc = subprocess.run(
        [sys.executable, "bench/parser.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "vs httpx-sse" in proc.stdout
    figures = json.loads(out.read_text())
    assert set(figures["parser"]) == {"tokens 27 B", "ticks id+data", "1 KB, id+event"}
    # Generous bound (the promise is 3.5x): catches a parser that lost its fast path.
    assert figures["ratio_small_vs_httpx_sse"] > 1.5
