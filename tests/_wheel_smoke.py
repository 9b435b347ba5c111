"""Run by tests/test_wheel.py with a fresh venv's python, where ssenb is the installed wheel.

Checks, from outside the source tree: the installed copy is the one imported, its declared
dependencies are present at versions it accepts, the LICENSE ships, `serve` + `collect` work,
the `/` page is served complete, the `ssenb` command serves and tails, and `%load_ext ssenb`
works in a kernel of this venv. Prints one line per check; any failure raises.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from jupyter_client.manager import KernelManager
from packaging.requirements import Requirement

import ssenb

TESTS = Path(sys.argv[1])  # for tests/_kernel.py, the kernel driver the other tests use
SCRATCH = Path(sys.argv[2])
BIN = Path(sys.executable).parent


def check(what: str) -> None:
    print(f"ok: {what}", flush=True)


def installed_copy() -> None:
    assert Path(ssenb.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), ssenb.__file__
    assert not (Path(ssenb.__file__).parent.parent / "pyproject.toml").exists()
    dist = md.distribution("ssenb")
    assert dist.version == ssenb.__version__
    assert '"editable": true' not in (dist.read_text("direct_url.json") or "")
    names = {Path(str(f)).name for f in dist.files or []}
    assert {"LICENSE", "py.typed"} <= names, sorted(names)[:20]
    check(f"ssenb {dist.version} imported from {Path(ssenb.__file__).parent}")
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's dependency
        version = md.version(req.name)
        assert req.specifier.contains(version, prereleases=True), (line, version)
    check("every runtime dependency is installed at an accepted version")


def serve_and_collect() -> None:
    with ssenb.serve() as srv:
        df = ssenb.collect(f"{srv.url}/stream?n=5&interval=0")
        assert list(df["id"]) == ["1", "2", "3", "4", "5"], df
        assert list(df["data.count"]) == [1, 2, 3, 4, 5]
        page = httpx.get(f"{srv.url}/", timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "new EventSource" in page.text, page.text[:300]
        assert "<style>" in page.text, page.text[:300]
        assert httpx.get(f"{srv.url}/openapi.json", timeout=10).status_code == 200
    check("serve + collect, and the / page with its inline script and styles")


def cli() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ssenb_cmd = str(BIN / "ssenb")
    server = subprocess.Popen([ssenb_cmd, "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/stream?n=3&interval=0"
        tail = subprocess.run([ssenb_cmd, "tail", url, "--json"], capture_output=True,
                              text=True, timeout=30, check=True)  # fmt: skip
        lines = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
        assert [e["id"] for e in lines] == ["1", "2", "3"], tail.stdout
    finally:
        server.terminate()
        server.wait(15)
    assert server.returncode in (0, -15), server.returncode
    check("the ssenb command: serve, tail, and a clean stop")


def kernel() -> None:
    sys.path.insert(0, str(TESTS))
    from _kernel import Kernel

    spec = SCRATCH / "kernels" / "smoke"  # a kernel of this venv, whatever else is installed
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "smoke",
                                                  "language": "python"}))  # fmt: skip
    os.environ["JUPYTER_PATH"] = str(SCRATCH)
    km = KernelManager(kernel_name="smoke")
    km.start_kernel(cwd=str(SCRATCH))
    k = Kernel(km)
    try:
        assert k.value("__import__('ssenb').__file__") == ssenb.__file__
        k.ok("%load_ext ssenb")
        k.ok("%sse_server start")
        k.ok("df = %sse /stream?n=3&interval=0")
        assert k.value("list(df['id'])") == "['1', '2', '3']"
        k.ok("%sse_server stop --all")
    finally:
        k.client.stop_channels()
        km.shutdown_kernel(now=False)
    check("%load_ext ssenb, %sse_server start/stop and %sse in a kernel of this venv")


if __name__ == "__main__":
    installed_copy()
    serve_and_collect()
    cli()
    kernel()
