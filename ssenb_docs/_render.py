"""An executed notebook as a Material page: Markdown cells as they are, code in fenced
blocks, outputs after them, images as files beside the page.

Saved notebooks carry a widget-view output next to a text/html snapshot of the same view.
The site has no kernel, so a widget can never render there: the snapshot (the view's final
state, updated through its display id while the notebook ran) is what the page shows.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# richest first; the first one present in an output bundle is shown
PRIORITY = ("text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/plain")
IMAGES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
MAX_TEXT_LINES = 200  # a longer text output is cut here, with a note saying how much
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Page:
    """A rendered notebook: the Markdown and the files it links to (path -> bytes)."""

    markdown: str
    files: dict[str, bytes] = field(default_factory=dict)


def strip_widget_views(nb: Any) -> None:
    """Drop widget-view outputs (kept only where nothing else shows the output) and the saved
    widget state, so any renderer falls back to the snapshot beside them."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _pre(text: str, kind: str) -> str:
    text = _ANSI.sub("", text).rstrip("\n")
    lines = text.split("\n")
    if len(lines) > MAX_TEXT_LINES:
        cut = f"... ({len(lines) - MAX_TEXT_LINES} more lines)"
        if kind == "error":  # a traceback's end says what went wrong
            text = "\n".join([cut, *lines[-MAX_TEXT_LINES:]])
        else:
            text = "\n".join([*lines[:MAX_TEXT_LINES], cut])
    return f'<div class="nb-output nb-{kind}"><pre>{html.escape(text)}</pre></div>'


def _bundle(data: dict[str, Any], stem: str, files: dict[str, bytes]) -> str:
    kind = next((m for m in PRIORITY if m in data), None)
    if kind is None:
        return ""
    value = data[kind]
    if kind == "text/html":
        body = _text(value).strip()  # a raw HTML block: Python-Markdown keeps it verbatim
        return f'<div class="nb-output nb-html">\n{body}\n</div>'
    if kind in IMAGES:
        name = f"{stem}.{IMAGES[kind]}"
        raw = _text(value)
        files[name] = raw.encode() if kind == "image/svg+xml" else base64.b64decode(raw)
        return f"![output of the cell above]({name}){{ .nb-image }}"
    if kind == "text/markdown":
        return _text(value)
    return _pre(_text(value), "text")


def render(nb: Any, slug: str) -> Page:
    """Render the executed notebook `nb` as the page `<slug>.md`; images go to `<slug>/`."""
    strip_widget_views(nb)
    page = Page(markdown="")
    parts: list[str] = []
    for index, cell in enumerate(nb.cells):
        source = _text(cell.source).strip("\n")
        if cell.cell_type == "markdown":
            parts.append(source)
            continue
        if cell.cell_type != "code" or not source:
            continue
        fence = "````" if "```" in source else "```"
        parts.append(f"{fence}python\n{source}\n{fence}")
        for k, out in enumerate(cell.get("outputs", [])):
            kind = out.get("output_type")
            if kind == "stream":
                parts.append(_pre(_text(out.get("text", "")), out.get("name", "stdout")))
            elif kind in ("display_data", "execute_result"):
                rendered = _bundle(out.get("data", {}), f"{slug}/cell{index}-{k}", page.files)
                if rendered:
                    parts.append(rendered)
            elif kind == "error":
                parts.append(_pre("\n".join(out.get("traceback", [])), "error"))
    page.markdown = "\n\n".join(parts) + "\n"
    return page
