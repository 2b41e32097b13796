"""A ceiling on request bodies, so one request cannot make the server buffer
megabytes it will refuse anyway.

A body over ``GAM_MAX_BODY_BYTES`` is 413 problem+json: at once when its
``Content-Length`` says so, otherwise as soon as the bytes received pass the limit
(a chunked body is never read to its end). The refusal happens before any handler
runs, so nothing is stored.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import problem
from services.asgi import HttpMiddleware


class BodyTooLarge(HTTPException):
    """Raised while the body is read; the problem handler answers it as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes, the most this server accepts")


class BodySizeLimit(HttpMiddleware):
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            refusal = BodyTooLarge(self.max_bytes)
            await problem(413, HTTPStatus(413).phrase, str(refusal.detail))(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
