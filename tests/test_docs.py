"""The documentation site: `python -m ssenb_docs` builds it strict, once per session, from
freshly executed tutorials; then a browser reads it offline, from the file system.

What a reader must find: every tutorial as a page with the outputs of a real run (a live
view's final snapshot, not a blank widget; plots as images), a working search, and an API
page naming every public name. Nothing on the site may ask the network for anything.

The build here adds `--allow-errors` to the README's command: MkDocs stays strict, but a
tutorial whose cell raises fails its own `test_tutorial_ran_without_an_error[...]` (its page
shows the traceback) instead of failing every test of this file at setup.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from _browser import browser_page, poll, screenshot

import ssenb

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
BUILD_BUDGET = 1200  # seconds: every tutorial once (~3 min here), then mkdocs
pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_BUDGET + 120)]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for every test here with the README's documentation command."""
    tmp = tmp_path_factory.mktemp("docs")
    out = tmp / "site"
    start = time.monotonic()
    command = [sys.executable, "-m", "ssenb_docs", "--site-dir", str(out),
               "--executed-dir", str(tmp / "executed"), "--allow-errors"]  # fmt: skip
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_BUDGET, check=False
    )
    log = proc.stdout + proc.stderr
    (tmp / "build.log").write_text(log)
    assert proc.returncode == 0, f"docs build failed:\n{log[-6000:]}"
    print(f"docs built in {time.monotonic() - start:.0f} s")
    return out


def test_readme_gives_the_one_build_command_and_the_build_is_strict() -> None:
    readme = (ROOT / "README.md").read_text()
    docs = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"```bash\n(.+?)\n```", docs, flags=re.S) == [
        ".venv/bin/python -m ssenb_docs"
    ]
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^strict: true$", config, flags=re.M)
    assert re.search(r"^  font: false", config, flags=re.M)  # no web fonts from a CDN
    assert '"--strict"' in (ROOT / "ssenb_docs" / "__main__.py").read_text()


class _Page(HTMLParser):
    """Ids, external references and visible text of one built page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        # what a browser fetches by itself: scripts, styles, images, frames, icons
        fetched = {"script": "src", "img": "src", "iframe": "src", "link": "href",
                   "source": "src", "video": "src", "audio": "src"}  # fmt: skip
        url = values.get(fetched.get(tag, "")) or ""
        if urlparse(url).scheme in ("http", "https") or url.startswith("//"):
            self.external.append(f"<{tag}> {url}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_ran_without_an_error(site: Path, path: Path) -> None:
    page = (site / "tutorials" / f"{path.stem}.html").read_text(encoding="utf-8")
    errors = re.findall(r'<div class="nb-output nb-error"><pre>(.*?)</pre>', page, flags=re.S)
    shown = html.unescape(errors[0][-3000:]) if errors else ""
    assert not errors, f"{path.name} raised while the site was built:\n{shown}"


def test_every_tutorial_is_a_page_with_the_outputs_of_its_run(site: Path) -> None:
    for nb in NOTEBOOKS:
        page = (site / "tutorials" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert page.count('class="nb-output') >= 3, f"{nb.stem}: outputs missing"
        assert "widget-view+json" not in page, f"{nb.stem}: a widget the page cannot show"
        assert (site / "tutorials" / nb.name).exists(), f"{nb.stem}: no notebook to download"
    quick = _parse(site / "tutorials" / "00_quickstart.html")
    text = " ".join(quick.text)
    assert "40 events" in text  # the log view's final snapshot
    assert "done" in text
    html = (site / "tutorials" / "00_quickstart.html").read_text(encoding="utf-8")
    assert "<svg" in html  # the live chart's final frame, drawn
    assert "<polyline" in html
    images = sorted((site / "tutorials" / "12_hub").glob("*.png"))
    assert images
    assert all(p.stat().st_size > 5_000 for p in images)  # matplotlib's plots, drawn


def test_getting_started_shows_the_readme_quick_start(site: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)
    text = "".join(_parse(site / "getting-started.html").text)  # highlighted: many spans
    assert len(commands) == 2
    assert all(c in text for c in commands)  # one source: README, included at build time


def test_api_page_has_an_entry_for_every_public_name(site: Path) -> None:
    api = _parse(site / "api.html")
    missing = [n for n in ssenb.__all__ if f"ssenb.{n}" not in api.ids]
    assert not missing, f"no API entry for {missing}"
    # and each entry carries its docstring (mkdocstrings rendered, not just a heading)
    text = " ".join(api.text)
    assert "Last-Event-ID" in text
    assert "DataFrame" in text


def test_reliability_benchmarks_and_changelog_are_on_the_site(site: Path) -> None:
    assert "exactly-once resume" in " ".join(_parse(site / "reliability.html").text)
    bench = (site / "benchmarks.html").read_text(encoding="utf-8")
    assert 'src="benchmarks/summary.png"' in bench
    assert (site / "benchmarks" / "summary.png").exists()
    assert "Unreleased" in " ".join(_parse(site / "changelog.html").text)


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(NOTEBOOKS) + 8
    external = {str(p.relative_to(site)): _parse(p).external for p in pages}
    assert not {k: v for k, v in external.items() if v}
    assert not list(site.rglob("*.woff2"))  # fonts are the system's (theme.font: false)


LOCAL = ("file:", "data:", "blob:", "about:")


def _offline(page: Any, leaks: list[str]) -> None:
    """Let the page load file:// (and loopback) only; record and block anything else."""

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(LOCAL) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            leaks.append(url)
            r.abort()

    def seen(request: Any) -> None:  # every request, routed or not (file:// is not routed)
        if not request.url.startswith(LOCAL):
            leaks.append(request.url)

    page.route("**/*", route)
    page.on("request", seen)


@pytest.mark.browser
def test_site_works_offline_in_a_browser(site: Path) -> None:
    leaks: list[str] = []
    with browser_page() as page:
        _offline(page, leaks)
        page.goto((site / "tutorials" / "00_quickstart.html").as_uri())
        views = page.locator(".ssenb-view")
        assert views.count() >= 2
        snapshot = " ".join(views.all_inner_texts())
        assert "40 events" in snapshot, snapshot
        assert "done" in snapshot, snapshot
        chart = page.locator(".ssenb-view svg").first  # the live chart's final frame
        assert chart.evaluate("s => s.getBoundingClientRect().width") > 100

        page.goto((site / "index.html").as_uri())
        page.keyboard.press("/")  # Material's search shortcut, as a reader would
        page.keyboard.type("Last-Event-ID", delay=20)  # typed: search runs on key events
        poll(page, "document.querySelectorAll('.md-search-result__item').length", timeout=20)
        first = page.locator(".md-search-result__item").first.inner_text()
        assert first.strip()

        page.goto((site / "api.html").as_uri())
        ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        missing = [n for n in ssenb.__all__ if f"ssenb.{n}" not in ids]
        assert not missing, f"API page lacks {missing}"
        toc = page.locator(".md-sidebar--secondary").inner_text()
        assert "ssenb.EventSource" in toc
        screenshot(page, "docs-api")
    assert not leaks, f"requests left the machine: {leaks}"
