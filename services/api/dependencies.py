"""What a route may ask FastAPI for: the process's runtime, typed, read in one place."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from services.bootstrap import Runtime


async def current_runtime(request: Request) -> Runtime:
    """``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency in its
    thread pool, and that hop cost more than the whole lookup."""
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(current_runtime)]
"""The runtime ``create_app`` built (``services.bootstrap``)."""
