"""A router's routes added to the app's own route table, as ``include_router`` did
before FastAPI 0.137.

Since 0.137 ``include_router`` is lazy: the app keeps each router as one entry, and
for every request each included router matches the path against its routes, then
matches it again to dispatch, keeping FastAPI's bookkeeping in the scope for each
route it tries. With gam's 75 routes that was about a seventh of the CPU the
API spent on a command (measured by driving the ASGI app in process with the demo
mix: 3.97 -> 3.28 ms per request, medians of three). FastAPI's own issue tracker
describes the same per-request layer (fastapi/fastapi#16159).

Each route is added again through the app's ``add_api_route``, with every option
the route holds, so the app's dependencies (the request guard) come first and its
dependency overrides apply, as they do to an included router.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

_NOT_OPTIONS = {"self", "path", "endpoint", "route_class_override"}
_OPTIONS = [name for name in inspect.signature(APIRouter.add_api_route).parameters if name not in _NOT_OPTIONS]
"""What ``add_api_route`` takes besides the path and the endpoint; a route keeps each
under the same name (the options it was given, combined with its router's)."""


def include_flat(api: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``api`` itself, in order (only :class:`APIRoute`\\s:
    gam's routers hold nothing else); a plain one becomes the app's route class."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            msg = f"{route!r} is not an APIRoute: include its router with include_router"
            raise TypeError(msg)
        route_class = api.router.route_class if type(route) is APIRoute else type(route)
        api.router.add_api_route(route.path, route.endpoint, route_class_override=route_class, **_options(route))


def _options(route: APIRoute) -> dict[str, Any]:
    return {name: getattr(route, name) for name in _OPTIONS if hasattr(route, name)}
