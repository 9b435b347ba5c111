"""bench/nginx.py runs the deployment (nginx from the shipped config, `ssenb serve --workers`
on one Redis stream) with 1 and 2 workers beside the in-process hub, every event checked in
the subscribers' process; the quick run's figures are checked loosely (2 shared cores)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _nginx import NGINX

ROOT = Path(__file__).resolve().parents[1]

if (NGINX is None or shutil.which("redis-server") is None) and not os.environ.get("CI"):
    pytest.skip("needs nginx and redis-server (CI installs both)", allow_module_level=True)


@pytest.mark.slow
def test_nginx_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "nginx.json"
    proc = subprocess.run(
        [sys.executable, "bench/nginx.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.count("every event, in order") == 3
    (row,) = json.loads(out.read_text())["rows"]
    assert row["ok"]
    for side in (row["memory"], row["one_worker"], row["two_workers"]):
        assert side["complete"]
        assert (side["errors"], side["dropped"]) == (0, 0)
        assert side["p99_ms"] is not None
    assert [row["one_worker"]["workers"], row["two_workers"]["workers"]] == [1, 2]
    assert set(row["two_workers"]["cpu_s"]) == {
        "nginx", "ssenb workers", "subscribers", "redis", "publisher"
    }  # fmt: skip
    # generous: the proxy hop may cost, but not an order of magnitude
    assert row["two_workers_vs_memory"] > 0.05
