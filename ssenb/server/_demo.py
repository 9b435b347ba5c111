"""`demo_app()`: a FastAPI app with every demo producer and the live index page.

Each producer family lives in its own module with an `install(app)` function; adding a
family means adding it to `_FAMILIES`, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from . import _basic, _hub_demo, _jobs, _llm, _merge, _page

__all__ = ["demo_app"]

_FAMILIES: list[Callable[[FastAPI], None]] = [
    _basic.install,
    _llm.install,
    _jobs.install,
    _merge.install,
    _hub_demo.install,
    _page.install,
]


def demo_app() -> FastAPI:
    """A new app serving the demo producers (see DESIGN.md's table) and `/`."""
    app = FastAPI(title="ssenb demo producers", docs_url="/docs", redoc_url=None)
    for install in _FAMILIES:
        install(app)
    return app
