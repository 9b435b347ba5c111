"""`python -m bench --quick`: every benchmark runs, the suite prints its target table and writes
JSON and a plot. Quick sizes are too small for the ratios to mean much, so only generous
sanity bounds are checked here; `python -m bench` (full sizes) is what the README reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_suite_quick_run_writes_figures_for_every_benchmark(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "latest-quick.json").read_text())
    expected = {
        *("parser", "e2e", "fanout", "hub_redis", "nginx", "data", "dataset", "widgets", "kernel"),
        *("chart", "llm_load"),
    }
    if not (shutil.which("redis-server") or os.environ.get("CI")):
        expected -= {"hub_redis", "nginx"}  # they need a redis-server (CI installs one)
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists() or os.environ.get("CI")):
        expected.discard("nginx")  # and nginx (CI installs it)
    assert set(record["figures"]) == expected
    # every figure is measured; memory ratios need full sizes (quick runs are below 1 MB)
    missing = [r["what"] for r in record["targets"] if r["value"] is None]
    excused = ("memory",) if "hub_redis" in expected else ("memory", "Redis")
    excused += () if "nginx" in expected else ("nginx",)
    assert all(any(word in what for word in excused) for what in missing), missing
    assert (tmp_path / "summary-quick.png").stat().st_size > 5_000
    assert "verdict" in proc.stdout
    figures = record["figures"]
    assert figures["parser"]["ratio_small_vs_httpx_sse"] > 1.5
    assert figures["e2e"]["ratio_one_process_small"] > 5
    assert figures["e2e"]["latency_p99_ms_one_process"] < 25  # 5x the 5 ms promise
    assert figures["widgets"]["worst_messages_per_s"] <= 20  # a hard bound, not a timing
    if "hub_redis" in expected:
        assert all(row["ok"] for row in figures["hub_redis"]["rows"])  # every event, in order
        assert figures["hub_redis"]["redis_vs_memory_at_most_subscribers"] > 0.1
