"""`CatchLifespan`: keeps an app's startup exception so `serve()` can raise it in the cell.

The request guard (Host check, CORS, token, browser login) lives in `_security.py`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CatchLifespan"]


class CatchLifespan:
    """Keeps the exception an app raised during startup, to re-raise it in the cell."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            self.error = exc
            raise
