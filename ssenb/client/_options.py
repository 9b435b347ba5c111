"""`SourceOptions`: the keyword arguments of `EventSource`, as one typed dict.

`collect`, `watch` and `record` take `**source_kw: Unpack[SourceOptions]` and pass them on,
so a misspelt keyword is a type error in the editor and a `TypeError` at the call, not a
failure later in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import httpx

from ._policy import RetryPolicy

__all__ = ["SOURCE_OPTIONS", "SourceOptions", "check_source_options"]


class SourceOptions(TypedDict, total=False):
    """Every keyword `EventSource(url, **options)` accepts (see its docstring)."""

    method: str
    headers: Mapping[str, str] | None
    params: Any
    json: Any
    last_event_id: str | None
    reconnect: str
    max_retries: int | None
    done: str | None
    connect_timeout: float | None
    idle_timeout: float | None
    max_event_bytes: int | None
    client: httpx.Client | httpx.AsyncClient | None
    retry_policy: RetryPolicy | None
    on_state: Callable[[str], None] | None
    resume: str | None


SOURCE_OPTIONS: frozenset[str] = frozenset(SourceOptions.__annotations__)


def check_source_options(where: str, options: Mapping[str, object]) -> None:
    """Raise `TypeError` at the call for a keyword `EventSource` does not take."""
    unknown = sorted(set(options) - SOURCE_OPTIONS)
    if unknown:
        raise TypeError(
            f"{where}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"EventSource takes {', '.join(sorted(SOURCE_OPTIONS))}"
        )
