"""A reusable Playwright launcher for Debian's chromium (never `playwright install`), and the
Jupyter servers and notebook pages the browser tests share.

`browser_page()` starts headless chromium from `executable_path` with the flags from
research/jupyter.md section 4 (plus any `args`) and a scratch HOME, and yields a page. Tests
marked `@pytest.mark.browser` skip when chromium is missing, unless `SSENB_REQUIRE_BROWSER=1`,
in which case they fail. `poll()` waits with `page.evaluate` in a Python loop, which stayed
reliable where `wait_for_function` did not. `jupyter_server()` runs JupyterLab, Notebook 7,
Voila or a plain Jupyter server on loopback with scratch config dirs; `run_all_cells()` runs a
notebook in JupyterLab or Notebook 7 (the same output area and widget manager) and samples
its views.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> str:
    """The chromium executable; skip the test without it (fail if it is required)."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("SSENB_REQUIRE_BROWSER") == "1":
            pytest.fail("SSENB_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("chromium is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("SSENB_REQUIRE_BROWSER") == "1":
            pytest.fail("SSENB_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    return path


@contextmanager
def browser_page(
    *, width: int = 1100, height: int = 800, args: Sequence[str] = ()
) -> Iterator[Any]:
    """Yield a fresh Playwright page in headless chromium with a scratch HOME; `args` are
    chromium flags beyond `FLAGS` (e.g. `--host-resolver-rules` for a name that is not
    loopback)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="ssenb-chromium-") as home:
        env = {k: v for k, v in os.environ.items() if k != "HOME"} | {"HOME": home}
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=executable,
                headless=True,
                args=[*FLAGS, *args],
                env=env,
                timeout=30_000,
            )
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(15_000)
                yield page
            finally:
                browser.close()


def poll(page: Any, expression: str, *, timeout: float, interval: float = 0.1) -> Any:
    """Evaluate `expression` until it is truthy; return that value or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {expression!r} (last: {value!r})")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/<name>.png (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_offline(page: Any, path: Path) -> list[str]:
    """Open the local file `path` with every other request aborted (a saved notebook must
    read with no network); returns the URLs blocked, filled in as the page asks for them."""
    blocked: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(path.as_uri(), wait_until="domcontentloaded")
    return blocked


def collect_dialogs(page: Any) -> list[str]:
    """The messages of every alert/confirm the page opens (each dismissed): event data that
    ran script would show here."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


# -- Jupyter servers on loopback ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def notebooks_copy(scratch: Path) -> Path:
    """A scratch copy of the repository's notebooks/ (a run writes outputs and state)."""
    root = scratch / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    return root


def server_args(port: int, token: str, root: Path) -> list[str]:
    """The flags of a Jupyter server app (Lab, Notebook 7, jupyter-server) on 127.0.0.1."""
    return [
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]


@contextmanager
def jupyter_server(
    name: str, command: list[str], scratch: Path, *, cwd: Path, ready: str, token: str = ""
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (the first item a script beside this Python: "jupyter-lab", "voila", ...)
    with HOME and the Jupyter and IPython dirs in `scratch`, until the block ends.

    Waits (90 s at most, then fails with the log's tail) until `ready` answers. At the end a
    server with a `token` is asked to shut down over the REST API (kernels stop cleanly);
    one still running after 20 s gets SIGTERM, then SIGKILL.
    """
    env = os.environ | {
        "HOME": str(scratch / "home"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }
    argv = [str(Path(sys.executable).with_name(command[0])), *command[1:]]
    log_path = scratch / f"{command[0]}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    urllib.request.urlopen(ready, timeout=5)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"{name} did not start:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.25)
            yield proc
        finally:
            _stop(proc, ready.split("/")[:3], token)


@contextmanager
def notebook_app(
    name: str, command: list[str], scratch: Path, token: str
) -> Iterator[tuple[str, Path]]:
    """JupyterLab or Notebook 7 (`command`: the script and its own flags) on a scratch copy of
    notebooks/, with `token` and `window.jupyterapp` exposed; yields its URL and that copy."""
    root = notebooks_copy(scratch)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [command[0], *server_args(port, token, root), "--expose-app-in-browser", *command[1:]]
    ready = f"{url}/api/status?token={token}"
    with jupyter_server(name, argv, scratch, cwd=root, ready=ready, token=token):
        yield url, root


def _stop(proc: subprocess.Popen[bytes], origin: list[str], token: str) -> None:
    """Ask a server with a token to shut down (its kernels end cleanly), then SIGTERM, then
    SIGKILL, 20 s apart."""
    if token and proc.poll() is None:
        req = urllib.request.Request(
            "/".join(origin) + "/api/shutdown",
            method="POST",
            headers={"Authorization": f"token {token}"},
        )
        try:
            urllib.request.urlopen(req, timeout=10)
        except OSError:
            pass
        if _exited(proc, 20):
            return
    proc.terminate()
    if not _exited(proc, 20):
        proc.kill()
        proc.wait(timeout=10)


def _exited(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


# -- a notebook in JupyterLab or Notebook 7 ----------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>"  # the quick start streams it; it must stay text

KERNEL_READY = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.sessionContext || !nb.content) return false;
  const k = nb.sessionContext.session && nb.sessionContext.session.kernel;
  return nb.sessionContext.isReady && !!k
    && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

BUSY = """() => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return !!k && k.status === 'busy';
}"""

RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true }"

CELLS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const code = nb.content.widgets.filter(c => c.model.type === 'code');
  return code.map(c => ({
    count: c.model.executionCount,
    errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                 .map(o => o.ename + ': ' + o.evalue),
  }));
}"""

# live: the text of each widget view; snapshot: each view shown as plain HTML (a finished one)
VIEWS = """() => ({
  live: Array.from(document.querySelectorAll('.jp-OutputArea .widget-html-content'))
    .map(e => e.textContent),
  snapshot: Array.from(document.querySelectorAll('.jp-OutputArea-output .ssenb-view'))
    .filter(e => !e.closest('.widget-html-content')).map(e => e.textContent),
})"""

OUTPUT_TEXT = (
    "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
    ".map(e => e.textContent).join('\\n')"
)


def run_all_cells(
    page: Any, address: str, name: str, *, ready: float = 90, timeout: float = 150
) -> list[dict[str, list[str]]]:
    """Open the notebook at `address`, wait (`ready` s) for its kernel, run all cells, sample
    the live view texts until every cell ran (`timeout` s); assert that none failed and
    return the samples (`VIEWS`), the last one taken after the end."""
    page.goto(address, wait_until="domcontentloaded")
    poll(page, KERNEL_READY, timeout=ready, interval=0.25)
    page.evaluate(RUN_ALL)
    samples: list[dict[str, list[str]]] = []
    sent, deadline = time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples.append(page.evaluate(VIEWS))
        cells = page.evaluate(CELLS)
        if cells and all(c["count"] is not None for c in cells):
            break
        started = any(c["count"] is not None for c in cells) or page.evaluate(BUSY)
        if not started and time.monotonic() - sent > 15:  # run-all sent too early: send again
            poll(page, KERNEL_READY, timeout=60, interval=0.25)
            page.evaluate(RUN_ALL)
            sent = time.monotonic()
        time.sleep(0.2)
    cells = page.evaluate(CELLS)
    errors = [e for c in cells for e in c["errors"]]
    assert not errors, f"{name}: {errors}"
    assert all(c["count"] is not None for c in cells), f"{name}: not every cell ran: {cells}"
    samples.append(page.evaluate(VIEWS))
    return samples


def check_quickstart(page: Any, samples: list[dict[str, list[str]]]) -> None:
    """The quick start's end in JupyterLab or Notebook 7: the live widgets showed changing
    counts, every view ended as its snapshot (two done, 40 events), and the hostile event
    is on screen as text."""
    assert len(event_counts(samples)) >= 2, samples[:5]
    assert samples[-1]["live"] == [], samples[-1]
    final = " ".join(samples[-1]["snapshot"])
    assert final.count("done") >= 2, final
    assert "40 events" in final
    assert HOSTILE in page.evaluate(OUTPUT_TEXT)


def event_counts(samples: list[dict[str, Any]]) -> set[int]:
    """The event counts the live widgets showed over all samples."""
    found: set[int] = set()
    for sample in samples:
        for text in sample["live"]:
            for m in re.finditer(r"([\d,]+) events", text):
                found.add(int(m.group(1).replace(",", "")))
    return found
