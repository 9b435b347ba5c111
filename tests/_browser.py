"""A reusable Playwright launcher for Debian's chromium (never `playwright install`).

`browser_page()` starts headless chromium from `executable_path` with the flags from
research/jupyter.md section 4 and a scratch HOME, and yields a page. Tests marked
`@pytest.mark.browser` skip when chromium is missing, unless `SSENB_REQUIRE_BROWSER=1`, in
which case they fail. `poll()` waits with `page.evaluate` in a Python loop, which stayed
reliable where `wait_for_function` did not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
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
def browser_page(*, width: int = 1100, height: int = 800) -> Iterator[Any]:
    """Yield a fresh Playwright page in headless chromium with a scratch HOME."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="ssenb-chromium-") as home:
        env = {k: v for k, v in os.environ.items() if k != "HOME"} | {"HOME": home}
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=executable, headless=True, args=FLAGS, env=env, timeout=30_000
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
