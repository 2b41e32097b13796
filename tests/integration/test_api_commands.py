"""Every command endpoint over HTTP, through a real ASGI client.

Each command has one happy path here (:data:`COMMANDS`, registered by its
command type, keyed by the route the API's route table gives it): the answer
(status, ``{entity_id, version, position, created_id}``, ETag, Location), the
events stored (their types, the token's subject as actor, the
body's ``reason``, the request's correlation id), and the change seen through the
matching query with ``min_position``. Tests compare them with the domain's
command registry and with the OpenAPI, so a new command or endpoint without a
happy path here fails.

Refusals (:data:`REFUSALS`) cover each aggregate: invalid body, a broken rule,
an unknown entity, a missing and a stale If-Match, access, and the order of
those checks; every one asserts that nothing was stored.

The happy paths run one by one on the in-memory store, and all in a row on one
account on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

import services.api.app as api_app
from domain import commands as c
from infra.settings import Settings
from services.api.app import create_app
from services.api.routes.commands import PATHS
from tests.api_support import SECRET, token

ACTOR = "gam.lindqvist@vendor.example"
PROBLEM = "application/problem+json"
Json = dict[str, Any]


# --- the client -----------------------------------------------------------------------


class Api:
    """A test client on one application: requests that remember which OpenAPI route
    they reached, and the log position to tell whether anything was stored."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.hits: set[str] = set()
        self._routes = openapi_routes(client.app.openapi)  # type: ignore[attr-defined]

    @classmethod
    @contextmanager
    def serving(cls, settings: Settings) -> Iterator[Api]:
        with TestClient(create_app(settings.model_copy(update={"jwt_secret": SECRET}))) as client:
            yield cls(client)

    @property
    def runtime(self) -> Any:
        return self.client.app.state.runtime  # type: ignore[attr-defined]

    def log_position(self) -> int:
        return self.runtime.app.recorder.max_notification_id() or 0

    def stored_since(self, position: int) -> list[tuple[int, Any]]:
        """The domain events stored after ``position``, with their positions, in log order."""
        app = self.runtime.app
        notifications = app.recorder.select_notifications(start=position + 1, limit=10_000)
        return [(n.id, app.mapper.to_domain_event(n)) for n in notifications]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.hits.add(self.route(method, path))
        response: httpx.Response = self.client.request(method, path, **kwargs)
        return response

    def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params, headers=headers)

    def post(self, path: str, body: Json, headers: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, json=body, headers=headers)

    def routes(self, method: str) -> set[str]:
        """Every ``METHOD /template`` the OpenAPI lists for ``method``."""
        return {route for route, _ in self._routes if route.startswith(f"{method} ")}

    def route(self, method: str, path: str) -> str:
        """``METHOD /template`` of the OpenAPI route this request reaches (a literal
        segment wins over a parameter, as in the router)."""
        matching = [
            route for route, pattern in self._routes if route.startswith(f"{method} ") and pattern.fullmatch(path)
        ]
        assert matching, f"no route for {method} {path}"
        return min(matching, key=lambda route: route.count("{"))


_ROUTES: list[tuple[str, re.Pattern[str]]] = []


def openapi_routes(openapi: Callable[[], Json]) -> list[tuple[str, re.Pattern[str]]]:
    """Each OpenAPI operation as ``METHOD /template`` with a pattern for its paths.
    Every app create_app builds has the same routes; the schema takes seconds to
    build, so this builds it once."""
    if not _ROUTES:
        _ROUTES.extend(
            (f"{method.upper()} {path}", re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path)))
            for path, operations in openapi()["paths"].items()
            for method in operations
        )
    return _ROUTES


@pytest.fixture
def fast_follower(monkeypatch: pytest.MonkeyPatch) -> None:
    """The views' follower looks for new events every 20 ms instead of 200 ms, so
    reading one's own write does not dominate the runtime of these tests."""
    monkeypatch.setattr(api_app, "FOLLOW_SECONDS", 0.02)


@pytest.fixture
def api(fast_follower: None) -> Iterator[Api]:
    with Api.serving(Settings(store="memory")) as served:
        yield served


# --- the world: one account built over HTTP --------------------------------------------


@dataclass
class Accepted:
    entity_id: UUID
    version: int
    position: int
    created_id: UUID | None


@dataclass
class World:
    """A customer account built through the API: HQ → region → country → local
    unit, its FY2027 plan with an HQ objective cascaded to and adopted by the region,
    one stakeholder at HQ and one deal at the local unit that supports the objective.

    ``setup`` sends a command and only checks it was accepted; ``create`` and
    ``change`` send the command under test and check everything a happy path owes."""

    api: Api
    accounts: list[UUID] = field(default_factory=list)
    last_position: int = 0
    periods: Iterator[int] = field(default_factory=lambda: itertools.count(2030))
    account_id: UUID = field(default_factory=uuid4)
    hq: UUID = field(default_factory=uuid4)
    region: UUID = field(default_factory=uuid4)
    country: UUID = field(default_factory=uuid4)
    local: UUID = field(default_factory=uuid4)
    plan_id: UUID = field(default_factory=uuid4)
    objective_id: UUID = field(default_factory=uuid4)
    stakeholder_id: UUID = field(default_factory=uuid4)
    deal_id: UUID = field(default_factory=uuid4)

    @property
    def headers(self) -> dict[str, str]:
        """The lead GAM of every account this world made (who creates an account leads it)."""
        return token(ACTOR, "account_creator")

    # sending ----------------------------------------------------------------------------

    def etag(self, entity: str) -> str:
        response = self.api.get(entity, self.headers)
        assert response.status_code == 200, response.text
        return response.headers["etag"]

    def send(
        self, path: str, body: Json, entity: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST a command; for a change to ``entity`` (its GET path), with its current ETag."""
        headers = headers or self.headers
        if entity is not None:
            headers = {**headers, "If-Match": self.etag(entity)}
        return self.api.post(path, body, headers)

    def setup(self, path: str, body: Json, entity: str | None = None) -> Json:
        response = self.send(path, body, entity)
        assert response.status_code in (200, 201), response.text
        self.last_position = response.json()["position"]
        return response.json()  # type: ignore[no-any-return]

    def create(self, path: str, body: Json, *, location: str | None = None, events: tuple[str, ...]) -> Accepted:
        """A command that creates an entity: 201 and Location (``{id}`` is the new entity's id)."""
        response, accepted = self._accepted(path, body, None, events, 201)
        expected = (location or path + "/{id}").format(id=accepted.entity_id)
        assert response.headers["location"] == expected
        return accepted

    def change(self, path: str, body: Json, *, entity: str, events: tuple[str, ...]) -> Accepted:
        """A command that changes ``entity``: 200 and the entity's new ETag."""
        response, accepted = self._accepted(path, body, entity, events, 200)
        assert "location" not in response.headers
        assert self.etag(entity) == response.headers["etag"]  # what a read shows next
        return accepted

    def _accepted(
        self, path: str, body: Json, entity: str | None, events: tuple[str, ...], status: int
    ) -> tuple[httpx.Response, Accepted]:
        reason, correlation = f"asked for in ticket {uuid4().hex[:8]}", uuid4()
        headers = {**self.headers, "X-Correlation-ID": str(correlation)}
        before = self.api.log_position()
        response = self.send(path, {**body, "reason": reason}, entity, headers)
        assert response.status_code == status, response.text
        body_out = response.json()
        assert set(body_out) == {"entity_id", "version", "position", "created_id"}
        accepted = Accepted(
            UUID(body_out["entity_id"]),
            body_out["version"],
            body_out["position"],
            UUID(body_out["created_id"]) if body_out["created_id"] else None,
        )
        assert response.headers["etag"] == f'"{accepted.version}"'
        assert response.headers["x-correlation-id"] == str(correlation)

        stored = self.api.stored_since(before)
        assert [type(e).__qualname__ for _, e in stored] == list(events)
        assert {(e.actor, e.reason, e.correlation_id) for _, e in stored} == {(ACTOR, reason, correlation)}
        assert accepted.position == stored[-1][0] == self.api.log_position()
        mine = [e for _, e in stored if e.originator_id == accepted.entity_id]
        assert mine[-1].originator_version == accepted.version

        for entity_id in {e.originator_id for _, e in stored}:
            trail = self.read("/audit", entity_id=str(entity_id), after=before, min_position=accepted.position)
            rows = [(r["position"], r["event_type"], r["actor"], r["reason"]) for r in trail["rows"]]
            assert rows == [
                (position, type(e).__qualname__, ACTOR, reason)
                for position, e in stored
                if e.originator_id == entity_id
            ]
        self.last_position = accepted.position
        return response, accepted

    # reading ----------------------------------------------------------------------------

    def read(self, path: str, **params: Any) -> Json:
        """A query that has seen this world's last write."""
        params.setdefault("min_position", self.last_position)
        response = self.api.get(path, self.headers, **params)
        assert response.status_code == 200, response.text
        assert response.json()["position"] >= params["min_position"]
        return response.json()  # type: ignore[no-any-return]

    def view(self, account_id: UUID | None = None) -> Json:
        return self.read(f"/accounts/{account_id or self.account_id}/view")["view"]  # type: ignore[no-any-return]

    def people(self) -> Json:
        return self.read(f"/accounts/{self.account_id}/stakeholder-map")["stakeholders"]  # type: ignore[no-any-return]

    def person(self, stakeholder_id: UUID) -> Json:
        return one(self.people()["people"], stakeholder_id=str(stakeholder_id))

    def pipeline(self) -> Json:
        return self.read(f"/accounts/{self.account_id}/pipeline")

    def open_deal_row(self, deal_id: UUID) -> Json:
        return one(self.pipeline()["pipeline"]["deals"], deal_id=str(deal_id))

    def flows(self, plan_id: UUID | None = None) -> list[Json]:
        return self.read(f"/plans/{plan_id or self.plan_id}/strategy-flow")["flow"]["flows"]  # type: ignore[no-any-return]

    def plan_row(self, plan_id: UUID | None = None) -> Json:
        return one(self.view()["plans"], plan_id=str(plan_id or self.plan_id))

    def unit_node(self, unit_id: UUID, account_id: UUID | None = None) -> Json:
        def walk(nodes: list[Json]) -> Iterator[Json]:
            for node in nodes:
                yield node
                yield from walk(node["children"])

        return one(list(walk(self.view(account_id)["unit_tree"])), unit_id=str(unit_id))

    # building ---------------------------------------------------------------------------

    def new_account(self) -> UUID:
        """A further account, with its FY2027 plan."""
        account_id = uuid4()
        self.accounts.append(account_id)
        self.setup("/accounts/onboarding", account_body(account_id, uuid4()) | {"fiscal_period": "FY2027"})
        return account_id

    def add_unit(self, parent: UUID, level: str, code: str) -> UUID:
        unit = uuid4()
        body = {"unit_id": str(unit), "parent_id": str(parent), "name": f"{level} {code}", "level": level, "code": code}
        self.setup(f"{self.account}/units", body, self.account)
        return unit

    def new_plan(self) -> UUID:
        """A further plan of this account, for a fiscal year no other plan has, with one HQ objective."""
        plan = self.setup(f"{self.account}/plans", {"fiscal_period": f"FY{next(self.periods)}"})
        plan_id = UUID(plan["entity_id"])
        self.setup(f"/plans/{plan_id}/objectives", objective_body(self.hq), f"/plans/{plan_id}")
        return plan_id

    def new_stakeholder(self, name: str) -> UUID:
        person = uuid4()
        self.setup("/stakeholders", stakeholder_body(person, self.account_id, self.hq, name))
        return person

    def new_deal(self, **overrides: Any) -> UUID:
        deal = uuid4()
        self.setup("/deals", deal_body(deal, self.account_id, self.local) | overrides)
        return deal

    def new_objective(self, cascaded_to: UUID) -> UUID:
        """A further HQ objective of the plan, cascaded to one unit below HQ."""
        objective = uuid4()
        self.setup(f"{self.plan}/objectives", objective_body(self.hq, objective), self.plan)
        cascade = {"from_unit_id": str(self.hq), "to_unit_ids": [str(cascaded_to)]}
        self.setup(f"{self.plan}/objectives/{objective}/cascade", cascade, self.plan)
        return objective

    def new_action(self) -> UUID:
        action = uuid4()
        self.setup(f"{self.plan}/actions", action_body(action, self.objective_id, self.region), self.plan)
        return action

    @property
    def account(self) -> str:
        return f"/accounts/{self.account_id}"

    @property
    def plan(self) -> str:
        return f"/plans/{self.plan_id}"

    @property
    def stakeholder(self) -> str:
        return f"/stakeholders/{self.stakeholder_id}"

    @property
    def deal(self) -> str:
        return f"/deals/{self.deal_id}"


def one(rows: list[Json], **match: Any) -> Json:
    found = [row for row in rows if all(row.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"{len(found)} rows match {match}"
    return found[0]


def account_body(account_id: UUID, hq: UUID, name: str = "Nordwind Industrial Group") -> Json:
    return {
        "account_id": str(account_id),
        "hq_unit_id": str(hq),
        "name": name,
        "industry": "Industrial machinery",
        "hq_country": "DE",
        "reporting_currency": "EUR",
    }


def objective_body(unit: UUID, objective_id: UUID | None = None, **overrides: Any) -> Json:
    return {
        "objective_id": str(objective_id or uuid4()),
        "unit_id": str(unit),
        "title": "Grow digital services revenue",
        "target": {"metric": "revenue", "value": "1200000", "currency": "EUR"},
        "due_date": "2027-12-31",
    } | overrides


def action_body(action: UUID, objective: UUID, unit: UUID) -> Json:
    return {
        "action_id": str(action),
        "objective_id": str(objective),
        "unit_id": str(unit),
        "title": "Joint innovation day",
        "owner": "sven.berg@vendor.example",
        "due_date": "2027-03-31",
    }


def stakeholder_body(person: UUID, account_id: UUID, unit: UUID, name: str = "Karin Ek") -> Json:
    return {
        "stakeholder_id": str(person),
        "account_id": str(account_id),
        "unit_id": str(unit),
        "title": "Chief Procurement Officer",
        "personal": {"name": name, "email": "karin.ek@customer.example", "phone": "+46 8 555 0100"},
    }


def deal_body(deal: UUID, account_id: UUID, unit: UUID) -> Json:
    return {
        "deal_id": str(deal),
        "account_id": str(account_id),
        "unit_id": str(unit),
        "title": "Predictive maintenance roll-out",
        "amount": {"amount": "100000", "currency": "EUR"},
        "expected_close": "2099-06-30",  # opened now (the server's clock): far ahead stays valid
        "owner": "sven.berg@vendor.example",
    }


def build_world(api: Api) -> World:
    w = World(api)
    w.accounts.append(w.account_id)
    onboarded = w.setup("/accounts/onboarding", account_body(w.account_id, w.hq) | {"fiscal_period": "FY2027"})
    w.plan_id = UUID(onboarded["created_id"])
    for unit, parent, level, code in (
        (w.region, w.hq, "region", "NORD"),
        (w.country, w.region, "country", "SE"),
        (w.local, w.country, "local", "SE"),
    ):
        body = {"unit_id": str(unit), "parent_id": str(parent), "name": f"{level} {code}", "level": level, "code": code}
        w.setup(f"{w.account}/units", body, w.account)
    w.setup(f"{w.plan}/objectives", objective_body(w.hq, w.objective_id), w.plan)
    cascade = {"from_unit_id": str(w.hq), "to_unit_ids": [str(w.region)]}
    w.setup(f"{w.plan}/objectives/{w.objective_id}/cascade", cascade, w.plan)
    adopt = {"unit_id": str(w.region), "answer": "adopted"}
    w.setup(f"{w.plan}/objectives/{w.objective_id}/responses", adopt, w.plan)
    w.setup("/stakeholders", stakeholder_body(w.stakeholder_id, w.account_id, w.hq))
    linked = {"plan_id": str(w.plan_id), "linked_objective_ids": [str(w.objective_id)]}
    w.setup("/deals", deal_body(w.deal_id, w.account_id, w.local) | linked)
    return w


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api)


# --- one happy path per command --------------------------------------------------------

BATCH = "POST /batches"
"""The one command route that is not a single command: a list of them."""

COMMANDS: dict[str, Callable[[World], None]] = {}
"""Happy paths by OpenAPI route; a command's route comes from the API's route table."""

COVERED: set[type[c.Command]] = set()


def command(kind: type[c.Command] | str) -> Callable[[Callable[[World], None]], Callable[[World], None]]:
    route = kind if isinstance(kind, str) else f"POST {PATHS[kind]}"

    def register(happy_path: Callable[[World], None]) -> Callable[[World], None]:
        assert route not in COMMANDS, route
        COMMANDS[route] = happy_path
        if not isinstance(kind, str):
            COVERED.add(kind)
        return happy_path

    return register


# accounts


@command(c.CreateAccount)
def create_account(w: World) -> None:
    account_id, hq = uuid4(), uuid4()
    w.accounts.append(account_id)
    body = account_body(account_id, hq, "Sørlandet Maritime") | {"tier": "tier_2", "hq_unit_name": "Group HQ"}
    done = w.create("/accounts", body, events=("GlobalAccount.Created",))
    assert (done.entity_id, done.version, done.created_id) == (account_id, 1, hq)
    view = w.view(account_id)
    assert (view["account"]["name"], view["account"]["tier"]) == ("Sørlandet Maritime", "tier_2")
    assert [(u["unit_id"], u["name"]) for u in view["unit_tree"]] == [(str(hq), "Group HQ")]
    assert view["unit_tree"][0]["team"] == [{"member": ACTOR, "role": "lead_gam"}]  # who took it on leads it


@command(c.OnboardAccount)
def onboard_account(w: World) -> None:
    account_id = uuid4()
    w.accounts.append(account_id)
    body = account_body(account_id, uuid4(), "Baltic Rail") | {"fiscal_period": "FY2028-H1"}
    done = w.create(
        "/accounts/onboarding",
        body,
        location=f"/accounts/{account_id}",
        events=("GlobalAccount.Created", "AccountPlan.Started"),
    )
    assert done.entity_id == account_id
    plans = w.view(account_id)["plans"]
    assert [(p["plan_id"], p["fiscal_period"], p["status"]) for p in plans] == [
        (str(done.created_id), "FY2028-H1", "draft")
    ]


@command(c.AddUnit)
def add_unit(w: World) -> None:
    unit = uuid4()
    body = {"unit_id": str(unit), "parent_id": str(w.hq), "name": "Asia Pacific", "level": "region", "code": "APAC"}
    done = w.change(f"{w.account}/units", body, entity=w.account, events=("GlobalAccount.UnitAdded",))
    assert (done.entity_id, done.created_id) == (w.account_id, unit)
    node = w.unit_node(unit)
    assert (node["name"], node["level"], node["code"]) == ("Asia Pacific", "region", "APAC")
    assert str(unit) in [child["unit_id"] for child in w.unit_node(w.hq)["children"]]


@command(c.RenameUnit)
def rename_unit(w: World) -> None:
    path = f"{w.account}/units/{w.local}/rename"
    w.change(path, {"name": "Göteborg plant"}, entity=w.account, events=("GlobalAccount.UnitRenamed",))
    assert w.unit_node(w.local)["name"] == "Göteborg plant"


@command(c.CloseUnit)
def close_unit(w: World) -> None:
    unit = w.add_unit(w.country, "local", "SE")
    w.change(f"{w.account}/units/{unit}/close", {}, entity=w.account, events=("GlobalAccount.UnitClosed",))
    assert w.unit_node(unit)["closed"] is True


@command(c.AssignTeamMember)
def assign_team_member(w: World) -> None:
    member = {"member": "sven.berg@vendor.example", "unit_id": str(w.region), "role": "regional_am"}
    w.change(f"{w.account}/team", member, entity=w.account, events=("GlobalAccount.TeamMemberAssigned",))
    assert {"member": "sven.berg@vendor.example", "role": "regional_am"} in w.unit_node(w.region)["team"]


@command(c.RemoveTeamMember)
def remove_team_member(w: World) -> None:
    member = {"member": "ola.nord@vendor.example", "unit_id": str(w.country), "role": "specialist"}
    w.setup(f"{w.account}/team", member, w.account)
    assert {"member": "ola.nord@vendor.example", "role": "specialist"} in w.unit_node(w.country)["team"]
    w.change(f"{w.account}/team/remove", member, entity=w.account, events=("GlobalAccount.TeamMemberRemoved",))
    assert {"member": "ola.nord@vendor.example", "role": "specialist"} not in w.unit_node(w.country)["team"]


@command(c.ArchiveAccount)
def archive_account(w: World) -> None:
    account_id = w.new_account()
    entity = f"/accounts/{account_id}"
    w.change(f"{entity}/archive", {}, entity=entity, events=("GlobalAccount.Archived",))
    assert w.view(account_id)["account"]["archived"] is True


# plans


@command(c.StartPlan)
def start_plan(w: World) -> None:
    done = w.create(
        f"{w.account}/plans", {"fiscal_period": "FY2028-Q3"}, location="/plans/{id}", events=("AccountPlan.Started",)
    )
    assert done.version == 1
    plan = w.plan_row(done.entity_id)
    assert (plan["fiscal_period"], plan["status"]) == ("FY2028-Q3", "draft")


@command(c.SetObjective)
def set_objective(w: World) -> None:
    objective = uuid4()
    body = objective_body(w.region, objective, title="Win the Nordic MRO framework")
    body |= {"description": "Regional share of the HQ goal", "linked_objective_id": str(w.objective_id)}
    done = w.change(f"{w.plan}/objectives", body, entity=w.plan, events=("AccountPlan.ObjectiveSet",))
    assert done.created_id == objective
    set_ = one(w.plan_row()["objectives_by_unit"][str(w.region)]["objectives"], objective_id=str(objective))
    assert (set_["title"], set_["linked_objective_id"]) == ("Win the Nordic MRO framework", str(w.objective_id))


@command(c.CascadeObjective)
def cascade_objective(w: World) -> None:
    body = {"from_unit_id": str(w.region), "to_unit_ids": [str(w.country)]}
    path = f"{w.plan}/objectives/{w.objective_id}/cascade"
    w.change(path, body, entity=w.plan, events=("AccountPlan.ObjectiveCascaded",))
    directive = one(w.flows(), kind="directive", to_unit_id=str(w.country))
    assert (directive["objective_id"], directive["from_unit_id"]) == (str(w.objective_id), str(w.region))


@command(c.RespondToCascade)
def respond_to_cascade(w: World) -> None:
    objective = w.new_objective(cascaded_to=w.region)
    answer = {
        "unit_id": str(w.region),
        "answer": "adapted",
        "rationale": "The Nordics are a fifth of the market",
        "local_title": "Grow digital services in the Nordics",
        "local_target": {"metric": "revenue", "value": "240000", "currency": "EUR"},
    }
    path = f"{w.plan}/objectives/{objective}/responses"
    w.change(path, answer, entity=w.plan, events=("AccountPlan.ObjectiveAdapted",))
    adapted = one(w.flows(), kind="adapted", objective_id=str(objective))
    assert (adapted["unit_id"], adapted["rationale"]) == (str(w.region), "The Nordics are a fifth of the market")


@command(c.AskToReconsider)
def ask_to_reconsider(w: World) -> None:
    objective = w.new_objective(cascaded_to=w.region)
    declined = {"unit_id": str(w.region), "answer": "declined", "rationale": "No budget this year"}
    w.setup(f"{w.plan}/objectives/{objective}/responses", declined, w.plan)
    body = {"unit_id": str(w.region), "note": "The Nordics carry a fifth of it"}
    path = f"{w.plan}/objectives/{objective}/reconsider"
    w.change(path, body, entity=w.plan, events=("AccountPlan.ReconsiderationRequested",))
    asked = one(w.flows(), kind="reconsider", objective_id=str(objective))
    assert (asked["to_unit_id"], asked["note"]) == (str(w.region), "The Nordics carry a fifth of it")
    assert one(w.flows(), kind="declined", objective_id=str(objective))["rationale"] == "No budget this year"


@command(c.ReportProgress)
def report_progress(w: World) -> None:
    body = {"unit_id": str(w.region), "percent": 40, "comment": "Two of five plants signed"}
    path = f"{w.plan}/objectives/{w.objective_id}/progress"
    w.change(path, body, entity=w.plan, events=("AccountPlan.ProgressReported",))
    progress = one(w.flows(), kind="progress", unit_id=str(w.region))
    assert (progress["percent"], progress["comment"]) == (40, "Two of five plants signed")


@command(c.AddAction)
def add_action(w: World) -> None:
    action = uuid4()
    body = action_body(action, w.objective_id, w.region)
    done = w.change(f"{w.plan}/actions", body, entity=w.plan, events=("AccountPlan.ActionAdded",))
    assert done.created_id == action
    added = one(w.plan_row()["actions"], action_id=str(action))
    assert (added["title"], added["status"], added["unit_id"]) == ("Joint innovation day", "planned", str(w.region))


@command(c.ChangeActionStatus)
def change_action_status(w: World) -> None:
    action = w.new_action()
    path = f"{w.plan}/actions/{action}/status"
    w.change(path, {"status": "in_progress"}, entity=w.plan, events=("AccountPlan.ActionStatusChanged",))
    assert one(w.plan_row()["actions"], action_id=str(action))["status"] == "in_progress"
    moved = one(w.flows(), kind="action_status", action_id=str(action))
    assert (moved["from_status"], moved["status"]) == ("planned", "in_progress")


@command(c.AddSwotEntry)
def add_swot_entry(w: World) -> None:
    entry = uuid4()
    body = {"entry_id": str(entry), "kind": "threat", "text": "Low-cost rival in Sweden", "unit_id": str(w.country)}
    done = w.change(f"{w.plan}/swot", body, entity=w.plan, events=("AccountPlan.SwotEntryAdded",))
    assert done.created_id == entry
    threat = one(w.plan_row()["swot"]["threat"], entry_id=str(entry))
    assert (threat["text"], threat["unit_id"]) == ("Low-cost rival in Sweden", str(w.country))


@command(c.RemoveSwotEntry)
def remove_swot_entry(w: World) -> None:
    entry = uuid4()
    w.setup(f"{w.plan}/swot", {"entry_id": str(entry), "kind": "strength", "text": "Installed base"}, w.plan)
    assert str(entry) in [e["entry_id"] for e in w.plan_row()["swot"]["strength"]]
    w.change(f"{w.plan}/swot/{entry}/remove", {}, entity=w.plan, events=("AccountPlan.SwotEntryRemoved",))
    assert str(entry) not in [e["entry_id"] for e in w.plan_row()["swot"]["strength"]]


@command(c.SetWhitespaceCell)
def set_whitespace_cell(w: World) -> None:
    body = {"offering": "Predictive maintenance", "unit_id": str(w.local), "status": "competitor_holds"}
    w.change(f"{w.plan}/whitespace", body, entity=w.plan, events=("AccountPlan.WhitespaceCellSet",))
    assert w.view()["whitespace"]["cells"]["Predictive maintenance"][str(w.local)] == "competitor_holds"


@command(c.HoldBusinessReview)
def hold_business_review(w: World) -> None:
    review = uuid4()
    body = {
        "review_id": str(review),
        "held_on": "2027-04-15",
        "participants": ["Customer CPO", ACTOR],
        "decisions": ["Pilot in Göteborg"],
    }
    done = w.change(f"{w.plan}/reviews", body, entity=w.plan, events=("AccountPlan.BusinessReviewHeld",))
    assert done.created_id == review
    held = one(w.plan_row()["reviews"], review_id=str(review))
    assert (held["held_on"], held["participants"], held["decisions"]) == (
        "2027-04-15",
        ["Customer CPO", ACTOR],
        ["Pilot in Göteborg"],
    )


@command(c.SubmitPlan)
def submit_plan(w: World) -> None:
    plan = w.new_plan()
    w.change(f"/plans/{plan}/submit", {}, entity=f"/plans/{plan}", events=("AccountPlan.Submitted",))
    assert w.plan_row(plan)["status"] == "submitted"


@command(c.ApprovePlan)
def approve_plan(w: World) -> None:
    """Submitted by a GAM of the team, approved by the lead GAM: never by the submitter."""
    plan, submitter = w.new_plan(), "gam.berg@vendor.example"
    joined = w.send(f"{w.account}/team", {"member": submitter, "unit_id": str(w.hq), "role": "gam"}, w.account)
    assert joined.status_code in (200, 409), joined.text  # 409: on the team since an earlier run of this case
    submitted = w.send(f"/plans/{plan}/submit", {}, f"/plans/{plan}", token(submitter))
    assert submitted.status_code == 200, submitted.text
    own = w.send(f"/plans/{plan}/approve", {}, f"/plans/{plan}", token(submitter))
    assert (own.status_code, own.json()["rule"]) == (403, "self_approval"), own.text
    done = w.change(f"/plans/{plan}/approve", {}, entity=f"/plans/{plan}", events=("AccountPlan.Approved",))
    approved = w.plan_row(plan)
    assert (approved["status"], approved["baseline_version"]) == ("approved", done.version)


@command(c.ReopenPlan)
def reopen_plan(w: World) -> None:
    plan = w.new_plan()
    w.setup(f"/plans/{plan}/submit", {}, f"/plans/{plan}")
    assert w.plan_row(plan)["status"] == "submitted"
    w.change(f"/plans/{plan}/reopen", {}, entity=f"/plans/{plan}", events=("AccountPlan.Reopened",))
    assert w.plan_row(plan)["status"] == "draft"


# stakeholders


@command(c.IdentifyStakeholder)
def identify_stakeholder(w: World) -> None:
    person = uuid4()
    body = stakeholder_body(person, w.account_id, w.region, "Dr. Ingrid Holm")
    done = w.create("/stakeholders", body, events=("Stakeholder.Identified",))
    assert (done.entity_id, done.version) == (person, 1)
    shown = w.person(person)
    assert (shown["name"], shown["title"], shown["unit_id"]) == (
        "Dr. Ingrid Holm",
        "Chief Procurement Officer",
        str(w.region),
    )


@command(c.ChangeStakeholderTitle)
def change_title(w: World) -> None:
    path = f"{w.stakeholder}/title"
    w.change(path, {"title": "Chief Operating Officer"}, entity=w.stakeholder, events=("Stakeholder.TitleChanged",))
    assert w.person(w.stakeholder_id)["title"] == "Chief Operating Officer"


@command(c.ChangeBuyingRole)
def change_buying_role(w: World) -> None:
    path = f"{w.stakeholder}/buying-role"
    w.change(path, {"role": "champion"}, entity=w.stakeholder, events=("Stakeholder.BuyingRoleChanged",))
    assert w.person(w.stakeholder_id)["buying_role"] == "champion"
    assert w.people()["by_buying_role"]["champion"] == 1


@command(c.RateInfluence)
def rate_influence(w: World) -> None:
    w.change(
        f"{w.stakeholder}/influence", {"influence": 4}, entity=w.stakeholder, events=("Stakeholder.InfluenceRated",)
    )
    assert w.person(w.stakeholder_id)["influence"] == 4


@command(c.RateSentiment)
def rate_sentiment(w: World) -> None:
    w.change(
        f"{w.stakeholder}/sentiment", {"sentiment": -2}, entity=w.stakeholder, events=("Stakeholder.SentimentRated",)
    )
    assert w.person(w.stakeholder_id)["sentiment"] == -2


@command(c.AssignRelationshipOwner)
def assign_owner(w: World) -> None:
    path = f"{w.stakeholder}/owner"
    body = {"owner": "anna.lind@vendor.example"}
    w.change(path, body, entity=w.stakeholder, events=("Stakeholder.RelationshipOwnerAssigned",))
    assert w.person(w.stakeholder_id)["relationship_owner"] == "anna.lind@vendor.example"
    assert str(w.stakeholder_id) not in w.people()["without_owner"]


@command(c.SetReportsTo)
def set_reports_to(w: World) -> None:
    manager = w.new_stakeholder(name="Lars Berg")
    path = f"{w.stakeholder}/reports-to"
    w.change(path, {"manager_id": str(manager)}, entity=w.stakeholder, events=("Stakeholder.ReportsToSet",))
    assert w.person(w.stakeholder_id)["reports_to"] == str(manager)


@command(c.LogInteraction)
def log_interaction(w: World) -> None:
    interaction, occurred = uuid4(), datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    body = {
        "interaction_id": str(interaction),
        "occurred_at": occurred.isoformat(),
        "channel": "meeting",
        "summary": "Discussed the 2027 modernisation budget",
    }
    done = w.change(
        f"{w.stakeholder}/interactions", body, entity=w.stakeholder, events=("Stakeholder.InteractionLogged",)
    )
    assert done.created_id == interaction
    assert datetime.fromisoformat(w.person(w.stakeholder_id)["last_contact"]) == occurred


@command(c.RecordDeparture)
def record_departure(w: World) -> None:
    person = w.new_stakeholder(name="Per Sand")
    entity = f"/stakeholders/{person}"
    w.change(f"{entity}/departure", {"left_on": "2027-05-31"}, entity=entity, events=("Stakeholder.Left",))
    people = w.people()
    assert one(people["left"], stakeholder_id=str(person))["left_on"] == "2027-05-31"
    assert str(person) not in [p["stakeholder_id"] for p in people["people"]]


@command(c.CorrectPersonalData)
def correct_personal_data(w: World) -> None:
    body = {"personal": {"name": "Karin Ek-Lund", "email": "karin.eklund@customer.example"}}
    path = f"{w.stakeholder}/personal-data"
    w.change(path, body, entity=w.stakeholder, events=("Stakeholder.PersonalDataCorrected",))
    assert w.person(w.stakeholder_id)["name"] == "Karin Ek-Lund"


@command(c.ErasePersonalData)
def erase_personal_data(w: World) -> None:
    """Through the same gate as every change: If-Match, the reason kept with the event."""
    person = w.new_stakeholder(name="Maja Strand")
    officer = token("dpo@vendor.example", "compliance")
    before = w.api.log_position()
    headers = {**officer, "If-Match": w.etag(f"/stakeholders/{person}")}
    body = {"legal_basis": "GDPR Art. 17 #4711", "reason": "GDPR Art. 17 #4711"}
    response = w.api.post(f"/compliance/stakeholders/{person}/erasure", body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "entity_id": str(person),
        "version": 2,
        "position": w.api.log_position(),
        "created_id": None,
    }
    assert response.headers["etag"] == '"2"'
    [(_, erased)] = w.api.stored_since(before)
    assert (type(erased).__qualname__, erased.actor, erased.reason) == (
        "Stakeholder.PersonalDataErased",
        "dpo@vendor.example",
        "GDPR Art. 17 #4711",
    )
    w.last_position = w.api.log_position()
    assert w.person(person)["name"] == "[erased]"


# deals


@command(c.OpenDeal)
def open_deal(w: World) -> None:
    deal = uuid4()
    body = deal_body(deal, w.account_id, w.local) | {
        "title": "Sensors for Göteborg",
        "stage": "qualification",
        "products": ["Sensors", "Analytics"],
        "plan_id": str(w.plan_id),
        "linked_objective_ids": [str(w.objective_id)],
    }
    done = w.create("/deals", body, events=("Deal.Opened",))
    assert (done.entity_id, done.version) == (deal, 1)
    row = w.open_deal_row(deal)
    assert (row["title"], row["stage"], row["probability"], row["products"], row["linked_objective_ids"]) == (
        "Sensors for Göteborg",
        "qualification",
        20,
        ["Sensors", "Analytics"],
        [str(w.objective_id)],
    )


@command(c.MoveDealStage)
def move_stage(w: World) -> None:
    w.change(f"{w.deal}/stage", {"to_stage": "qualification"}, entity=w.deal, events=("Deal.StageAdvanced",))
    row = w.open_deal_row(w.deal_id)
    assert (row["stage"], row["probability"]) == ("qualification", 20)


@command(c.ChangeDealAmount)
def change_amount(w: World) -> None:
    body = {"amount": {"amount": "125000.50", "currency": "EUR"}}
    w.change(f"{w.deal}/amount", body, entity=w.deal, events=("Deal.AmountChanged",))
    assert w.open_deal_row(w.deal_id)["amount"]["amount"] == "125000.50"


@command(c.ChangeDealCloseDate)
def change_close_date(w: World) -> None:
    body = {"expected_close": "2027-09-30"}
    w.change(f"{w.deal}/close-date", body, entity=w.deal, events=("Deal.CloseDateChanged",))
    assert w.open_deal_row(w.deal_id)["expected_close"] == "2027-09-30"


@command(c.ChangeDealProbability)
def change_probability(w: World) -> None:
    w.change(f"{w.deal}/probability", {"probability": 35}, entity=w.deal, events=("Deal.ProbabilityChanged",))
    assert w.open_deal_row(w.deal_id)["probability"] == 35


@command(c.AssessQualification)
def assess_qualification(w: World) -> None:
    body = {"element": "economic_buyer", "status": "confirmed", "evidence": "CFO signed off the budget line"}
    w.change(f"{w.deal}/qualification", body, entity=w.deal, events=("Deal.QualificationAssessed",))
    assert w.open_deal_row(w.deal_id)["qualification"]["economic_buyer"] == {
        "status": "confirmed",
        "evidence": "CFO signed off the budget line",
    }


@command(c.AttachBuyingInfluence)
def attach_buying_influence(w: World) -> None:
    body = {"stakeholder_id": str(w.stakeholder_id), "role": "economic_buyer", "degree": "high", "note": "Signs"}
    w.change(f"{w.deal}/buying-influences", body, entity=w.deal, events=("Deal.BuyingInfluenceAttached",))
    assert {"stakeholder_id": str(w.stakeholder_id), "role": "economic_buyer", "degree": "high", "note": "Signs"} in (
        w.open_deal_row(w.deal_id)["buying_influences"]
    )


@command(c.DetachBuyingInfluence)
def detach_buying_influence(w: World) -> None:
    coach = {"stakeholder_id": str(w.stakeholder_id), "role": "coach"}
    shown = coach | {"degree": "medium", "note": None}
    w.setup(f"{w.deal}/buying-influences", coach | {"degree": "medium"}, w.deal)
    assert shown in w.open_deal_row(w.deal_id)["buying_influences"]
    path = f"{w.deal}/buying-influences/remove"
    w.change(path, coach, entity=w.deal, events=("Deal.BuyingInfluenceDetached",))
    assert shown not in w.open_deal_row(w.deal_id)["buying_influences"]


@command(c.WinDeal)
def win_deal(w: World) -> None:
    deal = w.new_deal(stage="proposal")
    body = {"final_amount": {"amount": "95000", "currency": "EUR"}}
    w.change(f"/deals/{deal}/win", body, entity=f"/deals/{deal}", events=("Deal.Won",))
    won = one(w.pipeline()["win_rate"]["closed_deals"], deal_id=str(deal))
    assert (won["status"], won["value"]["amount"]) == ("won", "95000.00")
    assert str(deal) not in [d["deal_id"] for d in w.pipeline()["pipeline"]["deals"]]


@command(c.LoseDeal)
def lose_deal(w: World) -> None:
    deal = w.new_deal()
    body = {"loss_reason": "Price: competitor 18% cheaper", "competitor": "Acme Automation"}
    w.change(f"/deals/{deal}/lose", body, entity=f"/deals/{deal}", events=("Deal.Lost",))
    lost = one(w.pipeline()["win_rate"]["closed_deals"], deal_id=str(deal))
    assert (lost["status"], lost["loss_reason"], lost["competitor"]) == (
        "lost",
        "Price: competitor 18% cheaper",
        "Acme Automation",
    )


@command(c.ReopenDeal)
def reopen_deal(w: World) -> None:
    deal = w.new_deal(stage="solution")
    w.setup(f"/deals/{deal}/lose", {"loss_reason": "Budget frozen"}, f"/deals/{deal}")
    assert str(deal) not in [d["deal_id"] for d in w.pipeline()["pipeline"]["deals"]]
    w.change(f"/deals/{deal}/reopen", {}, entity=f"/deals/{deal}", events=("Deal.Reopened",))
    row = w.open_deal_row(deal)
    assert (row["stage"], row["probability"]) == ("solution", 40)


@command(BATCH)
def run_batch(w: World) -> None:
    """Commands of several entities in one transaction: each sees the one before it."""
    region, person = uuid4(), uuid4()
    commands = [
        {"type": "add_unit", "account_id": str(w.account_id), "unit_id": str(region), "parent_id": str(w.hq),
         "name": "Oceania", "level": "region", "code": "OCE"},
        {"type": "identify_stakeholder", "account_id": str(w.account_id), "stakeholder_id": str(person),
         "unit_id": str(region), "title": "CIO", "personal": {"name": "Mia Tane"}},
        {"type": "rate_influence", "stakeholder_id": str(person), "influence": 5, "expected_version": 1},
    ]  # fmt: skip
    before = w.api.log_position()
    refused = w.api.post("/batches", {"commands": [*commands, {**commands[2], "influence": 9}]}, w.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["path"].startswith("body/commands/3/")
    taken = w.api.post("/batches", {"commands": [*commands[:2], commands[0]]}, w.headers)
    assert (taken.status_code, taken.json()["index"], taken.json()["rule"]) == (409, 2, "already_exists")
    assert w.api.log_position() == before, "a refused batch stored events"

    response = w.api.post("/batches", {"commands": commands, "reason": "Oceania onboarding"}, w.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["type"], r["entity_id"], r["version"]) for r in results] == [
        ("add_unit", str(w.account_id), int(w.etag(w.account).strip('"'))),
        ("identify_stakeholder", str(person), 1),
        ("rate_influence", str(person), 2),
    ]
    assert results[0]["created_id"] == str(region)
    stored = w.api.stored_since(before)
    assert response.json()["position"] == stored[-1][0] == w.api.log_position()
    assert [type(e).__qualname__ for _, e in stored] == [
        "GlobalAccount.UnitAdded", "Stakeholder.Identified", "Stakeholder.InfluenceRated",
    ]  # fmt: skip
    assert {(e.actor, e.reason) for _, e in stored} == {(ACTOR, "Oceania onboarding")}
    w.last_position = response.json()["position"]
    assert w.person(person)["influence"] == 5


def test_every_command_in_the_registry_has_a_happy_path() -> None:
    assert set(c.COMMANDS) == COVERED


def test_every_command_route_in_the_openapi_has_a_happy_path(api: Api) -> None:
    assert set(COMMANDS) == api.routes("POST")


@pytest.mark.parametrize("route", list(COMMANDS))
def test_a_command_is_stored_with_its_actor_and_reason_and_read_back(world: World, route: str) -> None:
    COMMANDS[route](world)
    assert route in world.api.hits


def test_every_command_in_a_row_on_a_durable_store(durable_settings: Settings, fast_follower: None) -> None:
    """The whole life of one account on SQLite and PostgreSQL: every happy path, in turn."""
    with Api.serving(durable_settings) as api:
        w = build_world(api)
        for route, happy_path in COMMANDS.items():
            happy_path(w)
            assert route in api.hits
        assert api.runtime.app.recorder.max_notification_id() == w.last_position


# --- refusals --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A command request as a refusal test sends it."""

    path: str
    body: Json
    if_match: str | None = None
    headers: dict[str, str] | None = None
    entity: str | None = None
    """The entity's GET path, where a 412 is expected."""


def stale(w: World, entity: str) -> str:
    """An ETag the entity had before its latest change."""
    version = int(w.etag(entity).strip('"'))
    assert version > 1
    return f'"{version - 1}"'


@dataclass(frozen=True)
class Refusal:
    call: Callable[[World], Call]
    status: int
    rule: str | None = None
    path: str | None = None
    """A field path the problem's ``errors`` must name."""


REFUSALS: dict[str, Refusal] = {
    # accounts
    "account: hq_country is not an ISO code": Refusal(
        lambda w: Call("/accounts", account_body(uuid4(), uuid4()) | {"hq_country": "Sweden"}),
        422,
        path="body/hq_country",
    ),
    "account: an unknown field": Refusal(
        lambda w: Call(f"{w.account}/units/{w.local}/rename", {"name": "x", "nmae": "y"}, w.etag(w.account)),
        422,
        path="body/nmae",
    ),
    "account: the id is taken": Refusal(
        lambda w: Call("/accounts", account_body(w.account_id, uuid4())), 409, rule="already_exists"
    ),
    "account: a country directly under HQ": Refusal(
        lambda w: Call(
            f"{w.account}/units",
            {"parent_id": str(w.hq), "name": "Norway", "level": "country", "code": "NO"},
            w.etag(w.account),
        ),
        409,
        rule="invalid_unit_hierarchy",
    ),
    "account: a unit with open units below is not closed": Refusal(
        lambda w: Call(f"{w.account}/units/{w.region}/close", {}, w.etag(w.account)),
        409,
        rule="unit_has_open_children",
    ),
    "account: a local unit outside its country": Refusal(
        lambda w: Call(
            f"{w.account}/units",
            {"parent_id": str(w.country), "name": "Oslo", "level": "local", "code": "NO"},
            w.etag(w.account),
        ),
        422,
        rule="invalid_value",
        path="body/code",
    ),
    "account: unknown": Refusal(
        lambda w: Call(f"/accounts/{uuid4()}/units/{w.local}/rename", {"name": "x"}, '"1"'), 404, rule="not_found"
    ),
    "account: unknown unit": Refusal(
        lambda w: Call(f"{w.account}/units/{uuid4()}/rename", {"name": "x"}, w.etag(w.account)),
        404,
        rule="not_found",
    ),
    "account: without If-Match": Refusal(lambda w: Call(f"{w.account}/units/{w.local}/rename", {"name": "x"}), 428),
    "account: stale If-Match": Refusal(
        lambda w: Call(f"{w.account}/units/{w.local}/rename", {"name": "x"}, stale(w, w.account), entity=w.account),
        412,
        rule="concurrency_conflict",
    ),
    # plans
    "plan: a target value that is no number": Refusal(
        lambda w: Call(
            f"{w.plan}/objectives",
            objective_body(w.hq, target={"metric": "revenue", "value": "lots"}),
            w.etag(w.plan),
        ),
        422,
        path="body/target/value",
    ),
    "plan: progress above 100 percent": Refusal(
        lambda w: Call(
            f"{w.plan}/objectives/{w.objective_id}/progress",
            {"unit_id": str(w.region), "percent": 101},
            w.etag(w.plan),
        ),
        422,
        path="body/percent",
    ),
    "plan: a fiscal period the domain does not know": Refusal(
        lambda w: Call(f"{w.account}/plans", {"fiscal_period": "2027"}),
        422,
        rule="invalid_value",
        path="body/fiscal_period",
    ),
    "plan: a second plan for the same period": Refusal(
        lambda w: Call(f"{w.account}/plans", {"fiscal_period": "FY2027"}), 409, rule="already_exists"
    ),
    "plan: an objective id already set": Refusal(
        lambda w: Call(f"{w.plan}/objectives", objective_body(w.hq, w.objective_id, title="Revised"), w.etag(w.plan)),
        409,
        rule="already_exists",
    ),
    "plan: a unit answers twice": Refusal(
        lambda w: Call(
            f"{w.plan}/objectives/{w.objective_id}/responses",
            {"unit_id": str(w.region), "answer": "declined", "rationale": "No budget"},
            w.etag(w.plan),
        ),
        409,
        rule="cascade_already_answered",
    ),
    "plan: cascading to a unit that is not below": Refusal(
        lambda w: Call(
            f"{w.plan}/objectives/{w.objective_id}/cascade",
            {"from_unit_id": str(w.region), "to_unit_ids": [str(w.hq)]},
            w.etag(w.plan),
        ),
        409,
        rule="cascade_not_below_source",
    ),
    "plan: a draft is not approved": Refusal(
        lambda w: Call(f"{w.plan}/approve", {}, w.etag(w.plan)), 409, rule="invalid_plan_transition"
    ),
    "plan: unknown": Refusal(lambda w: Call(f"/plans/{uuid4()}/submit", {}, '"1"'), 404, rule="not_found"),
    "plan: unknown action": Refusal(
        lambda w: Call(f"{w.plan}/actions/{uuid4()}/status", {"status": "done"}, w.etag(w.plan)),
        404,
        rule="not_found",
    ),
    "plan: without If-Match": Refusal(lambda w: Call(f"{w.plan}/submit", {}), 428),
    "plan: stale If-Match": Refusal(
        lambda w: Call(f"{w.plan}/submit", {}, stale(w, w.plan), entity=w.plan), 412, rule="concurrency_conflict"
    ),
    # stakeholders
    "stakeholder: influence above 5": Refusal(
        lambda w: Call(f"{w.stakeholder}/influence", {"influence": 6}, w.etag(w.stakeholder)),
        422,
        path="body/influence",
    ),
    "stakeholder: a name that is empty": Refusal(
        lambda w: Call(f"{w.stakeholder}/personal-data", {"personal": {"name": ""}}, w.etag(w.stakeholder)),
        422,
        path="body/personal/name",
    ),
    "stakeholder: reporting to themselves": Refusal(
        lambda w: Call(f"{w.stakeholder}/reports-to", {"manager_id": str(w.stakeholder_id)}, w.etag(w.stakeholder)),
        409,
        rule="reports_to_cycle",
    ),
    "stakeholder: an interaction in the future": Refusal(
        lambda w: Call(
            f"{w.stakeholder}/interactions",
            {
                "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "channel": "call",
                "summary": "Not yet",
            },
            w.etag(w.stakeholder),
        ),
        422,
        rule="invalid_value",
        path="body/occurred_at",
    ),
    "stakeholder: someone who left is not changed": Refusal(
        lambda w: left_stakeholder_call(w), 409, rule="stakeholder_has_left"
    ),
    "stakeholder: at an account that does not exist": Refusal(
        lambda w: Call("/stakeholders", stakeholder_body(uuid4(), uuid4(), w.hq)), 404, rule="not_found"
    ),
    "stakeholder: unknown": Refusal(
        lambda w: Call(f"/stakeholders/{uuid4()}/title", {"title": "CEO"}, '"1"'), 404, rule="not_found"
    ),
    "stakeholder: without If-Match": Refusal(lambda w: Call(f"{w.stakeholder}/title", {"title": "CEO"}), 428),
    "stakeholder: stale If-Match": Refusal(
        lambda w: Call(f"{w.stakeholder}/title", {"title": "CEO"}, stale_stakeholder(w), entity=w.stakeholder),
        412,
        rule="concurrency_conflict",
    ),
    # deals
    "deal: a negative amount": Refusal(
        lambda w: Call(f"{w.deal}/amount", {"amount": {"amount": "-1", "currency": "EUR"}}, w.etag(w.deal)),
        422,
        rule="negative_amount",
    ),
    "deal: a probability above 100": Refusal(
        lambda w: Call(f"{w.deal}/probability", {"probability": 101}, w.etag(w.deal)),
        422,
        path="body/probability",
    ),
    "deal: a currency in lower case": Refusal(
        lambda w: Call(
            "/deals", deal_body(uuid4(), w.account_id, w.local) | {"amount": {"amount": "1", "currency": "eur"}}
        ),
        422,
        path="body/amount/currency",
    ),
    "deal: another currency than the deal's": Refusal(
        lambda w: Call(f"{w.deal}/amount", {"amount": {"amount": "5", "currency": "USD"}}, w.etag(w.deal)),
        422,
        rule="currency_mismatch",
    ),
    "deal: skipping a stage": Refusal(
        lambda w: Call(f"{w.deal}/stage", {"to_stage": "proposal"}, w.etag(w.deal)),
        409,
        rule="invalid_stage_transition",
    ),
    "deal: won before a proposal": Refusal(
        lambda w: Call(f"{w.deal}/win", {"final_amount": {"amount": "1", "currency": "EUR"}}, w.etag(w.deal)),
        409,
        rule="invalid_stage_transition",
    ),
    "deal: an open deal is not reopened": Refusal(
        lambda w: Call(f"{w.deal}/reopen", {}, w.etag(w.deal)), 409, rule="deal_not_closed"
    ),
    "deal: a lost deal is not changed": Refusal(lambda w: lost_deal_call(w), 409, rule="deal_closed"),
    "deal: linking an objective of no plan": Refusal(
        lambda w: Call("/deals", deal_body(uuid4(), w.account_id, w.local) | {"linked_objective_ids": [str(uuid4())]}),
        422,
        rule="invalid_value",
        path="body/plan_id",
    ),
    "deal: unknown": Refusal(
        lambda w: Call(f"/deals/{uuid4()}/probability", {"probability": 5}, '"1"'), 404, rule="not_found"
    ),
    "deal: unknown unit": Refusal(lambda w: Call("/deals", deal_body(uuid4(), w.account_id, uuid4())), 404),
    "deal: without If-Match": Refusal(lambda w: Call(f"{w.deal}/probability", {"probability": 5}), 428),
    "deal: stale If-Match": Refusal(
        lambda w: Call(f"{w.deal}/probability", {"probability": 5}, stale_deal(w), entity=w.deal),
        412,
        rule="concurrency_conflict",
    ),
    # who may, and the order of the checks (401 → 404 → 403 → 428 → 412/409/422)
    "no credential, even for an unknown entity": Refusal(
        lambda w: Call(f"/deals/{uuid4()}/probability", {"probability": 5}, '"1"', headers={}), 401
    ),
    "a token signed with another key": Refusal(
        lambda w: Call(
            f"{w.deal}/probability",
            {"probability": 5},
            w.etag(w.deal),
            headers=token(ACTOR, "admin", secret="another-secret-that-is-long-enough!!"),
        ),
        401,
    ),
    "unknown before forbidden": Refusal(
        lambda w: Call(f"/deals/{uuid4()}/probability", {"probability": 5}, '"1"', headers=token("v", "viewer_all")),
        404,
    ),
    "unknown account before forbidden": Refusal(
        lambda w: Call(f"/accounts/{uuid4()}/archive", {}, '"1"', headers=token("v", "viewer_all")), 404
    ),
    "unknown account before If-Match": Refusal(lambda w: Call(f"/accounts/{uuid4()}/archive", {}), 404),
    "forbidden before If-Match": Refusal(
        lambda w: Call(f"{w.deal}/probability", {"probability": 5}, headers=token("v", "viewer_all")), 403
    ),
    "someone on no team": Refusal(
        lambda w: Call(f"{w.account}/archive", {}, w.etag(w.account), headers=token("g@vendor.example")),
        403,
    ),
    "a local manager on another unit": Refusal(
        lambda w: Call(
            f"{w.plan}/objectives/{w.objective_id}/progress",
            {"unit_id": str(w.region), "percent": 10},
            w.etag(w.plan),
            headers=local_manager(w),
        ),
        403,
    ),
    "If-Match before the rules": Refusal(lambda w: Call(f"{w.deal}/stage", {"to_stage": "negotiation"}), 428),
    "a stale version before the rules": Refusal(
        lambda w: Call(f"{w.deal}/stage", {"to_stage": "negotiation"}, stale_deal(w), entity=w.deal),
        412,
        rule="concurrency_conflict",
    ),
    "an If-Match that is no entity tag": Refusal(
        lambda w: Call(f"{w.deal}/probability", {"probability": 5}, "W/" + w.etag(w.deal)), 400
    ),
}


def left_stakeholder_call(w: World) -> Call:
    person = w.new_stakeholder(name="Per Sand")
    w.setup(f"/stakeholders/{person}/departure", {"left_on": "2027-01-31"}, f"/stakeholders/{person}")
    return Call(f"/stakeholders/{person}/title", {"title": "CEO"}, w.etag(f"/stakeholders/{person}"))


def lost_deal_call(w: World) -> Call:
    deal = w.new_deal()
    w.setup(f"/deals/{deal}/lose", {"loss_reason": "No budget"}, f"/deals/{deal}")
    return Call(f"/deals/{deal}/probability", {"probability": 50}, w.etag(f"/deals/{deal}"))


def stale_stakeholder(w: World) -> str:
    w.setup(f"{w.stakeholder}/influence", {"influence": 3}, w.stakeholder)
    return stale(w, w.stakeholder)


def local_manager(w: World) -> dict[str, str]:
    """A local account manager of the world's local unit."""
    member = "l@vendor.example"
    body = {"member": member, "unit_id": str(w.local), "role": "local_am"}
    response = w.send(f"{w.account}/team", body, w.account)
    assert response.status_code in (200, 409), response.text  # 409: assigned by an earlier case
    return token(member)


def stale_deal(w: World) -> str:
    w.setup(f"{w.deal}/probability", {"probability": 15}, w.deal)
    return stale(w, w.deal)


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """One world for every refusal: a refusal changes nothing, so they can share it
    (the few that prepare something make their own entities)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_app, "FOLLOW_SECONDS", 0.02)
        with Api.serving(Settings(store="memory")) as api:
            yield build_world(api)


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_command_stores_nothing(shared_world: World, case: str) -> None:
    refusal, world = REFUSALS[case], shared_world
    call = refusal.call(world)
    headers = dict(world.headers if call.headers is None else call.headers)
    if call.if_match is not None:
        headers["If-Match"] = call.if_match
    before = world.api.log_position()

    response = world.api.post(call.path, call.body, headers)

    assert response.status_code == refusal.status, response.text
    assert world.api.log_position() == before
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == refusal.status
    assert problem["title"]
    assert problem["detail"]
    if refusal.rule is not None:
        assert problem["rule"] == refusal.rule
        assert problem["type"] == f"/problems/{refusal.rule}"
    if refusal.path is not None:
        assert refusal.path in [error["path"] for error in problem["errors"]]
    if refusal.status == 412:
        assert call.entity is not None
        now = world.etag(call.entity)
        assert response.headers["etag"] == now
        assert problem["current_version"] == int(now.strip('"')) > int(call.if_match.strip('"'))  # type: ignore[union-attr]
    if refusal.status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_same_stale_version_twice_is_refused_twice(world: World) -> None:
    """Two clients change one deal from the same ETag: the first wins, the second is
    told the version it must reload, and its retry with that version goes through."""
    seen = world.etag(world.deal)
    first = world.api.post(f"{world.deal}/probability", {"probability": 30}, {**world.headers, "If-Match": seen})
    assert first.status_code == 200
    before = world.api.log_position()
    second = world.api.post(f"{world.deal}/probability", {"probability": 70}, {**world.headers, "If-Match": seen})
    assert (second.status_code, second.json()["current_version"]) == (412, first.json()["version"])
    assert world.api.log_position() == before
    retry = world.api.post(
        f"{world.deal}/probability", {"probability": 70}, {**world.headers, "If-Match": second.headers["etag"]}
    )
    assert (retry.status_code, retry.json()["version"]) == (200, first.json()["version"] + 1)
