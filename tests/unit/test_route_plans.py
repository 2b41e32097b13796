"""A planned route (``services.api.route_plans``) answers every request as FastAPI's own
handler does (the same status, body and dependency calls, in the same order), valid
or not, and answers a valid one without FastAPI's per-request solver.

No ``from __future__ import annotations``: FastAPI reads the test app's dependencies,
defined inside a function, from their annotations."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import pytest
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request, Response, Security
from fastapi import routing as fastapi_routing
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from services.api.route_plans import PlannedRoute

THING = "4f3c2b1a-0000-4000-8000-000000000001"


class Change(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(max_length=8)
    amount: Decimal


def make_app(route_class: type[APIRoute], calls: list[str]) -> FastAPI:
    """The shapes gam's routes have: an app-wide guard, a security scheme, a sync
    dependency used twice (called once), headers with limits, path, query and body."""
    bearer = HTTPBearer(auto_error=False)

    async def guard(request: Request) -> None:
        calls.append("guard")
        if request.headers.get("x-deny"):
            raise HTTPException(429, "slow down")

    def counter(request: Request) -> int:  # a plain def: FastAPI runs it in its thread pool
        calls.append("counter")
        return len(request.url.path)

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        count: Annotated[int, Depends(counter)],
    ) -> str:
        calls.append("caller")
        if credentials is None:
            raise HTTPException(401, "who are you?")
        return f"{credentials.credentials}:{count}"

    async def gate(
        who: Annotated[str, Depends(caller)],
        count: Annotated[int, Depends(counter)],
        tag: Annotated[str | None, Header(alias="X-Tag", max_length=5)] = None,
    ) -> dict[str, Any]:
        calls.append("gate")
        return {"who": who, "count": count, "tag": tag}

    def change(
        thing_id: UUID, change: Annotated[Change, Body()], seen: Annotated[dict[str, Any], Depends(gate)]
    ) -> Response:
        calls.append("change")
        return JSONResponse({"thing": str(thing_id), "name": change.name, "amount": str(change.amount), **seen})

    async def read(
        thing_id: UUID, seen: Annotated[dict[str, Any], Depends(gate)], limit: Annotated[int, Query(ge=1)] = 10
    ) -> JSONResponse:
        calls.append("read")
        return JSONResponse({"thing": str(thing_id), "limit": limit, **seen})

    api = FastAPI(dependencies=[Depends(guard)])
    api.router.route_class = route_class
    api.add_api_route("/things/{thing_id}", change, methods=["POST"])
    api.add_api_route("/things/{thing_id}", read, methods=["GET"])
    return api


@contextmanager
def clients() -> Iterator[tuple[TestClient, TestClient, list[str], list[str]]]:
    planned_calls: list[str] = []
    plain_calls: list[str] = []
    with (
        TestClient(make_app(PlannedRoute, planned_calls), raise_server_exceptions=False) as planned,
        TestClient(make_app(APIRoute, plain_calls), raise_server_exceptions=False) as plain,
    ):
        yield planned, plain, planned_calls, plain_calls


def test_the_routes_are_planned() -> None:
    api = make_app(PlannedRoute, [])
    assert all(route.plan is not None for route in api.router.routes if isinstance(route, PlannedRoute))
    assert sum(isinstance(route, PlannedRoute) for route in api.router.routes) == 2


VALID_AND_NOT: dict[str, tuple[Any, list[Any]]] = {
    "thing": (THING, ["not-a-uuid", THING.upper()]),
    "authorization": ("Bearer token", [None, "Basic dXNlcg==", "Bearer"]),
    "tag": ("ok", [None, "far too long"]),
    "deny": (False, [True]),
    "limit": ("3", [None, "0", "many"]),
    "content_type": (
        "application/json",
        [None, "application/json; charset=utf-8", "text/plain", "application/merge+json"],
    ),
}
"""Each part of a request: a value the plan accepts, and others (some of which FastAPI
accepts too, such as no ``X-Tag``: then the two must still agree)."""

valid_bodies = st.fixed_dictionaries(
    {"name": st.text(max_size=8), "amount": st.decimals(allow_nan=False, allow_infinity=False, places=2)}
).map(lambda body: json.dumps(body, default=str).encode())
other_bodies = st.one_of(
    st.sampled_from(
        [b"", b"{", b"[]", b"null", b'{"name": "x", "amount": "1.5", "extra": 1}', b"[" * 5000 + b"]" * 5000]
    ),
    st.fixed_dictionaries(
        {"name": st.text(max_size=10)}, optional={"amount": st.one_of(st.decimals(places=2), st.text(max_size=3))}
    ).map(lambda body: json.dumps(body, default=str).encode()),
)


@st.composite
def request_parts(draw: st.DrawFn) -> dict[str, Any]:
    """A request with up to three parts spoilt, so valid requests (answered by the plan)
    and invalid ones (answered by FastAPI) both come up often."""
    spoilt = draw(st.sets(st.sampled_from([*VALID_AND_NOT, "body"]), max_size=3))
    parts = {
        name: draw(st.sampled_from(others)) if name in spoilt else valid
        for name, (valid, others) in VALID_AND_NOT.items()
    }
    parts["body"] = draw(other_bodies if "body" in spoilt else valid_bodies)
    parts["method"] = draw(st.sampled_from(["GET", "POST"]))
    return parts


def _send(client: TestClient, parts: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    headers = {}
    for name, key in (("authorization", "Authorization"), ("tag", "X-Tag"), ("content_type", "Content-Type")):
        if parts[name] is not None:
            headers[key] = parts[name]
    if parts["deny"]:
        headers["X-Deny"] = "yes"
    params = {} if parts["limit"] is None else {"limit": parts["limit"]}
    response = client.request(
        parts["method"], f"/things/{parts['thing']}", params=params, headers=headers, content=parts["body"]
    )
    kept = {name: value for name, value in response.headers.items() if name != "content-length"}
    return response.status_code, response.json(), kept


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=request_parts())
def test_a_planned_route_answers_and_calls_as_fastapis_handler_does(parts: dict[str, Any]) -> None:
    with clients() as (planned, plain, planned_calls, plain_calls):
        assert _send(planned, parts) == _send(plain, parts)
        assert planned_calls == plain_calls


def test_a_valid_request_is_answered_without_fastapis_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("FastAPI's solver was used")

    with clients() as (planned, _, calls, _):
        monkeypatch.setattr(fastapi_routing, "solve_dependencies", refuse)
        headers = {"Authorization": "Bearer token", "X-Tag": "ok"}
        response = planned.post(f"/things/{THING}", json={"name": "x", "amount": "2.50"}, headers=headers)
        assert response.status_code == 200
        assert response.json() == {
            "thing": THING,
            "name": "x",
            "amount": "2.50",
            "who": "token:44",
            "count": 44,
            "tag": "ok",
        }
        assert calls == ["guard", "counter", "caller", "gate", "change"]  # counter once: cached, as in FastAPI
        assert planned.get(f"/things/{THING}?limit=2", headers=headers).json()["limit"] == 2


def test_an_invalid_request_is_answered_by_fastapi_and_calls_each_dependency_once() -> None:
    with clients() as (planned, _, calls, _):
        headers = {"Authorization": "Bearer token", "X-Tag": "far too long"}
        response = planned.post(f"/things/{THING}", json={"name": "far too long"}, headers=headers)
        assert response.status_code == 422
        assert {tuple(error["loc"]) for error in response.json()["detail"]} == {
            ("header", "X-Tag"),
            ("body", "name"),
            ("body", "amount"),
        }
        assert calls == ["guard", "counter", "caller"]  # the gate's header is invalid: FastAPI stops there


def test_dependency_overrides_are_honoured() -> None:
    calls: list[str] = []
    api = make_app(PlannedRoute, calls)
    route = next(route for route in api.router.routes if isinstance(route, PlannedRoute))
    gate = next(dependency.call for dependency in route.dependant.dependencies if dependency.name == "seen")
    assert gate is not None
    api.dependency_overrides[gate] = lambda: {"who": "override"}
    with TestClient(api) as client:
        response = client.post(f"/things/{THING}", json={"name": "x", "amount": "1"})
        assert response.json()["who"] == "override"
    assert calls == ["guard", "change"]


def test_a_route_that_does_not_return_a_response_keeps_fastapis_handler() -> None:
    api = FastAPI()
    api.router.route_class = PlannedRoute

    @api.get("/plain")
    def plain() -> dict[str, str]:
        return {"status": "ok"}

    route = next(route for route in api.router.routes if isinstance(route, PlannedRoute))
    assert route.plan is None
    with TestClient(api) as client:
        assert client.get("/plain").json() == {"status": "ok"}
