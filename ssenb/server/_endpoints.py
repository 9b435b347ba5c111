"""The endpoint list shown on the demo index page, kept on `app.state` so it can grow.

Producer families (and later layers adding routes at runtime, such as replay) describe
their endpoints here; `/` renders whatever the list holds when the page is requested.
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.applications import Starlette

__all__ = ["Endpoint", "add_endpoint", "endpoints"]


class Endpoint(NamedTuple):
    """One row of the index page: where, which parameters, what it does, a sample URL."""

    path: str
    params: str
    summary: str
    example: str
    method: str = "GET"


def endpoints(app: Starlette) -> list[Endpoint]:
    """The app's endpoint list (created empty on first use)."""
    found = getattr(app.state, "ssenb_endpoints", None)
    if found is None:
        found = []
        app.state.ssenb_endpoints = found
    return found


def add_endpoint(app: Starlette, endpoint: Endpoint) -> None:
    """Add (or replace, by method and path) an endpoint on the index page."""
    rows = endpoints(app)
    rows[:] = [e for e in rows if (e.method, e.path) != (endpoint.method, endpoint.path)]
    rows.append(endpoint)
