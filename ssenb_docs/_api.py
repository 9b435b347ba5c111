"""The API reference page, generated at build time from `ssenb.__all__`.

Each public name gets a heading (`#ssenb.<name>` anchors) and the mkdocstrings block of the
object it resolves to at run time (`obj.__module__` + `__qualname__`), so a name another
module adds to `__all__` appears here by itself, wherever its code lives.
"""

from __future__ import annotations

import html
import importlib
import inspect
from typing import Any

GROUPS = ("Classes", "Functions", "Errors", "Modules", "Values")
KIND = {"Classes": "class", "Functions": "function", "Errors": "exception", "Modules": "module",
        "Values": "value"}  # fmt: skip
INTRO = """\
# API reference

Every public name of `ssenb` ({count} names in `ssenb.__all__`), generated from the
docstrings when the site is built. Everything is imported from the top level
(`import ssenb; ssenb.EventSource(...)`): the module paths under each heading are where the
code lives, not import paths to rely on.
"""


def _group(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "Modules"
    if inspect.isclass(obj):
        return "Errors" if issubclass(obj, BaseException) else "Classes"
    if callable(obj):
        return "Functions"
    return "Values"


def identifier(obj: Any) -> str:
    """Where mkdocstrings finds `obj`'s source: its defining module and qualified name."""
    if inspect.ismodule(obj):
        return obj.__name__
    return f"{obj.__module__}.{obj.__qualname__}"


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) if not isinstance(obj, str) else None
    line = doc.strip().split("\n\n", 1)[0].replace("\n", " ") if doc else ""
    return line.replace("|", "\\|")


def api_markdown(package: str = "ssenb") -> str:
    """The Markdown of the API page for every name in `package.__all__`."""
    module = importlib.import_module(package)
    names: list[str] = list(module.__all__)
    objects = {name: getattr(module, name) for name in names}
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name in names:
        groups[_group(objects[name])].append(name)
    parts = [INTRO.format(count=len(names)), "| name | kind | what it is |", "| --- | --- | --- |"]
    for group in GROUPS:
        for name in groups[group]:
            obj = objects[name]
            what = f"`{obj!r}`" if group == "Values" else _summary(obj)
            ref = f"[`{package}.{name}`](#{package}.{name})"
            parts.append(f"| {ref} | {KIND[group]} | {what} |")
    for group in GROUPS:
        if not groups[group]:
            continue
        parts.append(f"\n## {group}\n")
        for name in groups[group]:
            obj = objects[name]
            if group == "Values":  # a plain value (`__version__`): one line, no heading
                parts.append(f'<p id="{package}.{name}"><code>{package}.{name} = '
                             f"{html.escape(repr(obj))}</code></p>\n")  # fmt: skip
                continue
            parts.append(f"### `{package}.{name}` {{ #{package}.{name} }}\n")
            parts.append(f"::: {identifier(obj)}\n")
    return "\n".join(parts) + "\n"
