"""The pure ASGI middleware gam puts in front of its API, written once: each one acts
on HTTP requests only and hands everything else (lifespan, websockets) on untouched.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``, so a request costs one
extra call per layer, not a task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware(ABC):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: answer it, or pass it on to ``self.app``."""
