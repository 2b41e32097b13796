"""The API's routes sit in the app's own route table (``services.api.flat_routes``):
the same operations, documented the same way, guarded the same way as routers
included by FastAPI, without its per-request layer of included routers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from starlette.routing import Mount

from infra.settings import Settings
from services.api import app as api_app
from services.api.app import create_app
from services.api.flat_routes import include_flat
from services.api.route_plans import PlannedRoute
from services.api.routes.commands import PATHS
from tests.api_support import ADMIN, SECRET


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)


def test_the_api_documents_the_same_operations_as_with_included_routers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = create_app(settings).openapi()
    monkeypatch.setattr(api_app, "include_flat", lambda api, router: api.include_router(router))
    included = create_app(settings).openapi()
    assert flat == included
    assert len(flat["paths"]) > 50


def test_every_route_is_in_the_app_table_behind_the_request_guard(settings: Settings) -> None:
    api = create_app(settings)
    guard = api.router.dependencies[0].dependency
    # an included router's entry has no path of its own: every entry here is a route
    assert all(isinstance(getattr(route, "path", None), str) for route in api.router.routes)
    routes = [route for route in api.router.routes if isinstance(route, APIRoute)]
    documentation = {"/docs", "/docs/oauth2-redirect", "/redoc"}  # FastAPIOffline's, added before the guard
    assert {route.path for route in routes if not _guarded(route, guard)} == documentation
    with TestClient(api) as client:
        assert client.get("/accounts/not-a-uuid", headers=ADMIN).json()["errors"][0]["path"] == "path/account_id"
        assert client.post("/deals", json={}, headers=ADMIN).status_code == 422


def _guarded(route: APIRoute, guard: Any) -> bool:
    return bool(route.dependencies) and route.dependencies[0].dependency is guard


def test_a_router_holding_anything_but_api_routes_is_refused() -> None:
    router = APIRouter()
    router.routes.append(Mount("/static", app=lambda scope, receive, send: None))  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="include_router"):
        include_flat(FastAPI(), router)


def test_app_dependency_overrides_reach_flat_routes(settings: Settings) -> None:
    api = create_app(settings)
    called: list[Any] = []

    async def guard_seen() -> None:
        called.append(True)

    guard = api.router.dependencies[0].dependency
    assert guard is not None
    api.dependency_overrides[guard] = guard_seen
    with TestClient(api) as client:
        client.get("/accounts/00000000-0000-0000-0000-000000000000", headers=ADMIN)
    assert called == [True]


def test_every_command_and_view_read_is_answered_from_its_plan(settings: Settings) -> None:
    """The hot routes skip FastAPI's per-request solver (``services.api.route_plans``): a
    new dependency shape the plan does not cover would quietly make them slower."""
    api = create_app(settings)
    planned = {
        (route.path, method)
        for route in api.router.routes
        if isinstance(route, PlannedRoute) and route.plan is not None
        for method in route.methods or ()
    }
    commands = {(path, "POST") for path in PATHS.values()}
    reads = {(f"/accounts/{{account_id}}/{view}", "GET") for view in ("view", "pipeline", "stakeholder-map")}
    assert commands | reads | {("/batches", "POST")} <= planned


def _request_paths(templates: list[str]) -> st.SearchStrategy[str]:
    """Paths shaped like the routes': each ``{name}`` filled with an id, a word or nothing,
    sometimes with a segment more or less, sometimes behind a mount's prefix."""
    filler = st.sampled_from(["4f3c2b1a-0000-4000-8000-000000000001", "not-an-id", "", "deals", "a/b"])

    def fill(template: str, values: list[str], tail: str, prefix: str) -> str:
        parts = template.split("/")
        filled = [values.pop() if part.startswith("{") and values else part for part in parts]
        return prefix + "/".join(filled) + tail

    return st.builds(
        fill,
        st.sampled_from(templates),
        st.lists(filler, min_size=3, max_size=3),
        st.sampled_from(["", "/", "/win", "/extra/segment"]),
        st.sampled_from(["", "/api"]),
    )


def test_a_planned_route_matches_every_path_as_fastapi_does(settings: Settings) -> None:
    """The literal-start check in front of FastAPI's match only ever skips paths
    FastAPI would not match either."""
    routes = [route for route in create_app(settings).router.routes if isinstance(route, PlannedRoute)]
    templates = sorted({route.path for route in routes})

    @given(path=_request_paths(templates), method=st.sampled_from(["GET", "POST", "PUT"]))
    @hyp_settings(max_examples=400, deadline=None)
    def same_match(path: str, method: str) -> None:
        for route in routes:
            root = "/api" if path.startswith("/api/") else ""
            scope = {"type": "http", "path": path, "root_path": root, "method": method}
            assert route.matches(dict(scope)) == APIRoute.matches(route, dict(scope)), (route.path, path)

    same_match()
