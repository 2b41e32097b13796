"""Routes that solve their dependencies from a plan made once, not by FastAPI's
generic solver on every request.

FastAPI 0.165's ``solve_dependencies`` inspects every parameter of every dependency
on every request (is it a model, a sequence, which aliases, which cache key), a known
cost (fastapi/fastapi#5562, still open). A command goes through six dependencies (the
request guard, the gate, the runtime, authentication and its two security schemes).
Measured with the suite's HTTP contender (``gam serve``, three clients, the demo mix,
three alternating pairs): the event loop's CPU per command went from 1.21-1.28 to
0.94-1.01 ms, the whole server's from 4.14-4.27 to 3.76-3.93 ms.

:class:`PlannedRoute` inspects once, when the route is made, and keeps a plan: which
request value each parameter reads and with which of FastAPI's own fields it is
validated, and which dependency is called in which order. A request is then answered
in two passes:

1. every parameter and the body are read and validated, calling nothing;
2. the dependencies are called in FastAPI's order (sub-dependencies first, each at
   most once per request unless it says otherwise), then the endpoint.

Anything the plan does not cover goes to FastAPI's own handler, whole: an invalid
value (so the 422 and its field paths are FastAPI's), a body that is not plain JSON,
an app with dependency overrides. Since the first pass calls nothing, no dependency
runs twice. A route whose shape the plan does not know (generator dependencies,
security scopes, form bodies, an endpoint that does not return a ``Response``) keeps
FastAPI's handler for every request.

A planned route also skips FastAPI's match for a path that lacks the route's literal
start (:meth:`PlannedRoute.matches`), and runs a plain ``def`` endpoint or dependency
in a thread of its own pool through asyncio (:func:`in_thread`), not AnyIO's.

FastAPI's private helpers used here are the ones its own solver uses, so a value is
validated exactly as before; ``pyproject.toml`` pins FastAPI's minor version for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import Request, Response
from fastapi._compat import ModelField, Undefined, field_annotation_is_sequence
from fastapi.dependencies.models import (
    Dependant,
    _get_cache_key,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
    get_typed_return_annotation,
    request_body_to_args,
)
from fastapi.params import Form, Param
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Received = Callable[[Request], Mapping[str, Any]]

_RECEIVED: dict[str, Received] = {
    "path": lambda request: request.path_params,
    "query": lambda request: request.query_params,
    "header": lambda request: request.headers,
    "cookie": lambda request: request.cookies,
}
"""Where each kind of parameter is read, as FastAPI's solver reads it."""


ENDPOINT_THREADS = 40
"""Threads of :data:`_ENDPOINTS`: as many as AnyIO's default limiter lets FastAPI use."""

_ENDPOINTS = ThreadPoolExecutor(ENDPOINT_THREADS, thread_name_prefix="gam-endpoint")


async def in_thread(call: Callable[..., Any], /, **arguments: Any) -> Any:
    """``call(**arguments)`` in a thread of :data:`_ENDPOINTS`, in a copy of this context
    (the request's correlation id and trace go with it), as FastAPI's ``run_in_threadpool``
    does through AnyIO. AnyIO's hop (a capacity limiter, a cancel scope, its own worker
    threads) cost the event loop's thread 0.17-0.18 ms a request in a bare FastAPI app
    under uvicorn, asyncio's ``run_in_executor`` 0.11 ms, and an endpoint called inline
    0.08 ms (three clients, a route that answers a constant)."""
    run = functools.partial(contextvars.copy_context().run, call, **arguments)
    return await asyncio.get_running_loop().run_in_executor(_ENDPOINTS, run)


class NotPlanned(Exception):
    """The route's shape is one the plan does not cover: FastAPI solves it."""


class _Invalid(Exception):
    """A value the plan cannot accept: FastAPI answers the request, with its error."""


@dataclass(frozen=True)
class _Parameter:
    """One path, query, header or cookie parameter: where it is read and how it is validated."""

    field: ModelField
    key: str
    loc: tuple[str, str]

    @classmethod
    def of(cls, field: ModelField) -> _Parameter:
        info = field.field_info
        aliases = _get_param_aliases(field)
        if not isinstance(info, Param) or not _is_plain(field, len(aliases)):
            raise NotPlanned(f"parameter {field.name!r}")
        key = aliases[0][1]
        return cls(field, key, (info.in_.value, key))

    def value(self, received: Mapping[str, Any], values: dict[str, Any]) -> Any:
        raw = received.get(self.key)
        value, errors = _validate_value_with_model_field(
            field=self.field, value=Undefined if raw is None else raw, values=values, loc=self.loc
        )
        if errors:
            raise _Invalid
        return value


def _is_plain(field: ModelField, aliases: int) -> bool:
    """A single value under a single name: what the plan reads (FastAPI reads models,
    sequences, JSON-in-a-parameter and alias choices in ways of their own)."""
    return (
        _get_param_model(field) is None
        and not _is_json_field(field)
        and not field_annotation_is_sequence(field.field_info.annotation)
        and aliases == 1
    )


@dataclass(frozen=True)
class _Solver:
    """One dependant (the endpoint or a dependency): its parameters by source, the
    dependencies it needs, and how it is called."""

    call: Callable[..., Any]
    name: str | None
    is_coroutine: bool
    use_cache: bool
    cache_key: Any
    parameters: tuple[tuple[Received, tuple[_Parameter, ...]], ...]
    request_names: tuple[str, ...]
    """Parameters that take the request itself (``Request`` or ``HTTPConnection``)."""
    dependencies: tuple[_Solver, ...]

    @classmethod
    def of(cls, dependant: Dependant, *, root: bool = False) -> _Solver:
        unsupported = (
            dependant.websocket_param_name,
            dependant.response_param_name,
            dependant.background_tasks_param_name,
            dependant.security_scopes_param_name,
            dependant.concurrency,
            None if root else (dependant.body_params or None),
        )
        call = dependant.call
        if any(item is not None for item in unsupported) or call is None:
            raise NotPlanned("a parameter kind the plan does not solve")
        if _is_gen_callable(call) or _is_async_gen_callable(call):
            raise NotPlanned("a dependency with yield")
        sources = {
            "path": dependant.path_params,
            "query": dependant.query_params,
            "header": dependant.header_params,
            "cookie": dependant.cookie_params,
        }
        return cls(
            call=call,
            name=dependant.name,
            is_coroutine=_is_coroutine_callable(call),
            use_cache=dependant.use_cache,
            cache_key=_get_cache_key(dependant=dependant),
            parameters=tuple(
                (_RECEIVED[source], tuple(_Parameter.of(field) for field in fields))
                for source, fields in sources.items()
                if fields
            ),
            request_names=tuple(
                name for name in (dependant.http_connection_param_name, dependant.request_param_name) if name
            ),
            dependencies=tuple(cls.of(sub) for sub in dependant.dependencies),
        )

    def validate(self, request: Request, into: dict[int, dict[str, Any]]) -> None:
        """Pass one: this dependant's parameter values (and its dependencies'), into
        ``into`` by solver; :class:`_Invalid` at the first value FastAPI would refuse."""
        for dependency in self.dependencies:
            dependency.validate(request, into)
        values: dict[str, Any] = {}
        for received_of, parameters in self.parameters:
            received, group = received_of(request), dict[str, Any]()  # FastAPI validates each source on its own
            for parameter in parameters:
                group[parameter.field.name] = parameter.value(received, group)
            values |= group
        for name in self.request_names:
            values[name] = request
        into[id(self)] = values

    async def arguments(self, validated: dict[int, dict[str, Any]], cache: dict[Any, Any]) -> dict[str, Any]:
        """Pass two: this dependant's arguments, calling its dependencies as FastAPI does
        (each one's own dependencies first; a cached one is not called again)."""
        values = dict(validated[id(self)])
        for dependency in self.dependencies:
            arguments = await dependency.arguments(validated, cache)
            if dependency.use_cache and dependency.cache_key in cache:
                solved = cache[dependency.cache_key]
            elif dependency.is_coroutine:
                solved = await dependency.call(**arguments)
            else:
                solved = await in_thread(dependency.call, **arguments)
            if dependency.name is not None:
                values[dependency.name] = solved
            cache.setdefault(dependency.cache_key, solved)
        return values


@dataclass(frozen=True)
class RoutePlan:
    """How a route's request is solved without FastAPI's per-request inspection."""

    endpoint: _Solver
    body_fields: list[ModelField]
    embed_body_fields: bool

    @classmethod
    def of(cls, route: APIRoute) -> RoutePlan:
        returns = get_typed_return_annotation(route.endpoint)
        if not (inspect.isclass(returns) and issubclass(returns, Response)):
            raise NotPlanned("the endpoint does not say it returns a Response")
        if route.body_field is not None and isinstance(route.body_field.field_info, Form):
            raise NotPlanned("a form body")
        return cls(_Solver.of(route.dependant, root=True), route.dependant.body_params, route._embed_body_fields)

    async def answer(self, request: Request, route: APIRoute) -> Response | None:
        """The response, or None when FastAPI must answer (nothing has been called then)."""
        try:
            validated: dict[int, dict[str, Any]] = {}
            self.endpoint.validate(request, validated)
            if self.body_fields:
                body_values, errors = await request_body_to_args(
                    body_fields=self.body_fields,
                    received_body=await _json_body(request),
                    embed_body_fields=self.embed_body_fields,
                )
                if errors:
                    return None
                validated[id(self.endpoint)] |= body_values
        except _Invalid:
            return None
        values = await self.endpoint.arguments(validated, {})
        if self.endpoint.is_coroutine:
            response = await self.endpoint.call(**values)
        else:
            response = await in_thread(self.endpoint.call, **values)
        if not isinstance(response, Response):
            msg = f"{route.path} returned {type(response).__name__}, not the Response its annotation promises"
            raise TypeError(msg)
        return response


async def _json_body(request: Request) -> Any:
    """The body as FastAPI's handler reads it for ``Content-Type: application/json``;
    :class:`_Invalid` for anything else (no body, another type, JSON that does not parse),
    which FastAPI's handler then reads and answers itself. A body that cannot be read is
    answered here as FastAPI answers it: the stream is gone, so FastAPI could not read it again."""
    if request.headers.get("content-type") != "application/json":
        raise _Invalid
    try:
        raw = await request.body()
    except HTTPException:  # the body limit's 413 (services.api.body_limit)
        raise
    except Exception as error:
        raise HTTPException(400, "There was an error parsing the body") from error
    if not raw:
        raise _Invalid
    try:
        return json.loads(raw)
    except Exception:  # not JSON, or nested deeper than the parser goes (RecursionError)
        raise _Invalid from None


class PlannedRoute(APIRoute):
    """An :class:`APIRoute` answered from its :class:`RoutePlan` where it has one; its
    OpenAPI operation, matching and error answers are FastAPI's."""

    plan: RoutePlan | None = None

    @cached_property
    def _literal_start(self) -> str:
        return self.path.split("{", 1)[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FastAPI's match, asked only when the path holds this route's literal start:
        the router tries the routes in order, and FastAPI 0.165's match of each route
        it passes costs several calls (a request reached its route after 29 of them on
        average). A path without that start cannot match, whatever the prefix or the
        parameters."""
        if scope["type"] == "http" and self._literal_start not in scope["path"]:
            return Match.NONE, {}
        return super().matches(scope)

    def get_route_handler(self) -> Handler:
        solved_by_fastapi = super().get_route_handler()
        try:
            plan = RoutePlan.of(self)
        except NotPlanned:
            return solved_by_fastapi
        self.plan = plan
        overrides = self.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await solved_by_fastapi(request)
            response = await plan.answer(request, self)
            return response if response is not None else await solved_by_fastapi(request)

        return handler
