"""bench/fanout.py runs both hubs, checks every event in the subscribers' process, and
prints its ratio table; the quick run's figures are checked loosely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fanout_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    proc = subprocess.run(
        [sys.executable, "bench/fanout.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "every event, zero drops" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["subscribers"] for r in rows] == [1, 100]
    for row in rows:
        for side in (row["hub"], row["baseline"]):
            assert side["complete"]
            assert (side["errors"], side["dropped"]) == (0, 0)
            assert side["p99_ms"] is not None
    # Generous bound (the promise is 3x at 1000): catches a hub that lost its coalescing.
    assert rows[-1]["ratio"] > 1.5
