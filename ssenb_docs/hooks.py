"""MkDocs hooks (mkdocs.yml `hooks:`): the pages that are generated from the repository.

- `tutorials/NN_name.md`: each executed notebook (build/docs/executed, written by
  `python -m ssenb_docs`) rendered with its outputs, its images beside it, and the source
  notebook (no outputs) to download; `tutorials/index.md` from notebooks/README.md.
- `api.md`: the API reference for every name in `ssenb.__all__`.
- `changelog.md` from CHANGELOG.md, `benchmarks.md` from bench/README.md with its figures.
- `deploy.md` (written by the deployment docs) joins the How-to section when it exists.

The Tutorials entry of `nav` lists the notebooks found in notebooks/, so a new tutorial is on
the site without editing mkdocs.yml; a notebook that was not executed fails the build.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `mkdocs build` from its console script: make this tree importable (MkDocs puts sys.path back
# after loading hooks, so `_this_tree_first()` does it again before `ssenb` is imported)
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402

from ssenb_docs import EXECUTED, NOTEBOOKS  # noqa: E402
from ssenb_docs._api import api_markdown  # noqa: E402
from ssenb_docs._render import render  # noqa: E402

DEPLOY = "deploy.md"
DEPLOY_MARK = "<!-- deploy-link -->"
DEPLOY_LINK = (
    "The full recipe, an nginx configuration that is tested end to end, is in "
    "[Deploy behind nginx](../deploy.md)."
)


def _this_tree_first() -> None:
    """Document this tree's `ssenb` (the one mkdocstrings reads), not another install's."""
    if not sys.path or sys.path[0] != str(ROOT):
        sys.path.insert(0, str(ROOT))
    import ssenb

    if Path(ssenb.__file__).resolve().parent != ROOT / "ssenb":
        raise PluginError(f"ssenb was imported from {ssenb.__file__}, not from {ROOT}")


def _executed_dir() -> Path:
    return Path(os.environ.get("SSENB_DOCS_EXECUTED", EXECUTED))


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))


def on_config(config: Any) -> Any:
    """Fill the Tutorials section of `nav`; add the deployment page when it exists."""
    tutorials: list[Any] = [{"Overview": "tutorials/index.md"}]
    tutorials += [f"tutorials/{p.stem}.md" for p in _notebooks()]
    for item in config.nav or []:
        if isinstance(item, dict) and "Tutorials" in item:
            item["Tutorials"] = tutorials
        deploy = (Path(config.docs_dir) / DEPLOY).exists()
        if isinstance(item, dict) and "How-to" in item and deploy and DEPLOY not in str(item):
            item["How-to"].append({"Deploy behind nginx": DEPLOY})
    return config


def _tutorial_intro(stem: str) -> str:
    return (
        f'!!! info "Executed when this site was built"\n'
        f"    The outputs below come from running [the notebook]({stem}.ipynb) top to bottom "
        f"in a fresh kernel. Live views show their final snapshot (the page has no kernel). "
        f"Run it yourself: `jupyter lab notebooks/{stem}.ipynb`.\n"
    )


def _with_intro(markdown: str, stem: str) -> str:
    """Put the 'executed at build time' note right after the page's first heading."""
    head, sep, rest = markdown.partition("\n")
    if head.startswith("# "):
        return f"{head}\n\n{_tutorial_intro(stem)}{sep}{rest}"
    return f"{_tutorial_intro(stem)}\n{markdown}"


def _site_links(markdown: str) -> str:
    """A notebook's links to other notebooks and to the tutorial list, as links to their
    pages on the site (the notebook itself stays downloadable from its own page)."""
    markdown = re.sub(r"\]\((\d\d_[\w-]+)\.ipynb\)", r"](\1.md)", markdown)
    return markdown.replace("](README.md)", "](index.md)")


def _tutorial_files(config: Any) -> list[File]:
    executed = _executed_dir()
    files: list[File] = []
    missing = [p.name for p in _notebooks() if not (executed / p.name).exists()]
    if missing:
        raise PluginError(
            f"tutorials not executed: {', '.join(missing)} (run `python -m ssenb_docs`, which "
            f"executes them into {executed} and then builds the site)"
        )
    for source in _notebooks():
        nb = nbformat.read(executed / source.name, as_version=4)  # type: ignore[no-untyped-call]
        page = render(nb, source.stem)
        markdown = _with_intro(_site_links(page.markdown), source.stem)
        files.append(File.generated(config, f"tutorials/{source.stem}.md", content=markdown))
        for name, data in page.files.items():
            files.append(File.generated(config, f"tutorials/{name}", content=data))
        files.append(File.generated(config, f"tutorials/{source.name}", abs_src_path=str(source)))
    index = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    index = re.sub(r"\]\((\d\d_[\w-]+)\.ipynb\)", r"](\1.md)", index)
    files.append(File.generated(config, "tutorials/index.md", content=index))
    return files


def _benchmark_files(config: Any) -> list[File]:
    bench = ROOT / "bench"
    text = (bench / "README.md").read_text(encoding="utf-8")
    files = []
    for name in sorted(set(re.findall(r"\]\(results/([\w.-]+)\)", text))):
        files.append(
            File.generated(config, f"benchmarks/{name}", abs_src_path=str(bench / "results" / name))
        )
    text = re.sub(r"\]\(results/", "](benchmarks/", text)
    files.append(File.generated(config, "benchmarks.md", content=text))
    return files


def on_files(files: Files, config: Any) -> Files:
    _this_tree_first()
    generated = [
        *_tutorial_files(config),
        *_benchmark_files(config),
        File.generated(config, "api.md", content=api_markdown()),
        File.generated(
            config, "changelog.md", content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        ),
    ]
    for file in generated:
        files.append(file)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Link the how-to on proxies to the deployment page once that page exists."""
    if DEPLOY_MARK in markdown and files.get_file_from_path(DEPLOY) is not None:
        markdown = markdown.replace(DEPLOY_MARK, DEPLOY_LINK)
    return markdown
