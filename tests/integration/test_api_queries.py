"""Every query endpoint over HTTP, on the embedded SQLite store.

Two accounts are built through the API, and their later changes interleave in the
log, so a filter or a page that strays into the other account shows. Each test
declares the routes it reads (:func:`reads`); a test compares them with the
OpenAPI, so a new query endpoint without a test fails, and each test must reach
what it declares.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest

import services.api.app as api_app
from infra.settings import Settings
from tests.api_support import ADMIN, token
from tests.integration.test_api_commands import ACTOR, PROBLEM, Api, Json, World, build_world, one

MANAGER = "ram.nord@vendor.example"
F = TypeVar("F", bound=Callable[..., None])
DECLARED: dict[str, set[str]] = {}
"""Route → the tests that read it."""


def reads(*routes: str) -> Callable[[F], F]:
    def declare(test: F) -> F:
        for route in routes:
            DECLARED.setdefault(route, set()).add(test.__name__)
        test.reads = set(routes)  # type: ignore[attr-defined]
        return test

    return declare


@dataclass
class Customers:
    """Two accounts built over HTTP (``a`` and ``b``), then six probability changes
    on each one's deal and three progress reports by ``a``'s regional manager,
    interleaved in the log."""

    api: Api
    a: World
    b: World
    built: datetime
    """After both accounts were built, before the changes that interleave."""

    def entities_of(self, w: World) -> set[UUID]:
        return {w.account_id, w.plan_id, w.stakeholder_id, w.deal_id}

    def positions_of(self, w: World, **match: Any) -> list[int]:
        """The store's positions of the events of ``w``'s entities (and ``match``ing attributes)."""
        mine = self.entities_of(w)
        return [
            position
            for position, event in self.api.stored_since(0)
            if event.originator_id in mine and all(getattr(event, k) == v for k, v in match.items())
        ]


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Customers]:
    settings = Settings(store="sqlite", sqlite_path=tmp_path_factory.mktemp("queries") / "gam.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_app, "FOLLOW_SECONDS", 0.02)
        with Api.serving(settings) as api:
            a, b = build_world(api), build_world(api)
            for member, unit, role in (
                (MANAGER, a.region, "regional_am"),
                ("v@vendor.example", a.hq, "specialist"),
                ("l@vendor.example", a.local, "local_am"),
            ):
                a.setup(f"{a.account}/team", {"member": member, "unit_id": str(unit), "role": role}, a.account)
            built = datetime.now(UTC)
            manager = token(MANAGER)
            for n in range(6):
                for w in (a, b):
                    w.setup(f"{w.deal}/probability", {"probability": 10 + n}, w.deal)
                if n % 2:
                    progress = {"unit_id": str(a.region), "percent": 10 * n}
                    response = api.post(
                        f"{a.plan}/objectives/{a.objective_id}/progress",
                        progress,
                        {**manager, "If-Match": a.etag(a.plan)},
                    )
                    assert response.status_code == 200, response.text
            a.last_position = b.last_position = api.log_position()
            yield Customers(api, a, b, built)


@pytest.fixture(autouse=True)
def reaches_what_it_declares(request: pytest.FixtureRequest, customers: Customers) -> Iterator[None]:
    customers.api.hits.clear()
    yield
    assert getattr(request.function, "reads", set()) <= customers.api.hits


def test_every_query_in_the_openapi_is_read_by_a_test(customers: Customers) -> None:
    assert set(DECLARED) == customers.api.routes("GET")


# --- entities ---------------------------------------------------------------------------


@reads(
    "GET /accounts/{account_id}", "GET /plans/{plan_id}", "GET /stakeholders/{stakeholder_id}", "GET /deals/{deal_id}"
)
def test_each_entity_reads_as_stored_with_its_version_as_etag(customers: Customers) -> None:
    a, app = customers.a, customers.api.runtime.app
    entities = {a.account: a.account_id, a.plan: a.plan_id, a.stakeholder: a.stakeholder_id, a.deal: a.deal_id}
    for path, entity_id in entities.items():
        response = customers.api.get(path, a.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        stored = app.repository.get(entity_id)
        assert (body["id"], body["version"], body["state"]["version"]) == (str(entity_id), *[stored.version] * 2)
        assert response.headers["etag"] == f'"{stored.version}"'
    assert customers.api.get(a.account, a.headers).json()["state"]["name"] == "Nordwind Industrial Group"
    assert customers.api.get(a.deal, a.headers).json()["state"]["probability"] == 15
    person = customers.api.get(a.stakeholder, a.headers).json()["state"]
    assert (person["personal"]["name"], person["account_id"]) == ("Karin Ek", str(a.account_id))
    plan = customers.api.get(a.plan, a.headers).json()["state"]
    assert (plan["fiscal_period"], plan["status"]) == ("FY2027", "draft")
    assert list(plan["objectives"]) == [str(a.objective_id)]


@reads(
    "GET /accounts/{account_id}", "GET /plans/{plan_id}", "GET /stakeholders/{stakeholder_id}", "GET /deals/{deal_id}"
)
def test_an_entity_that_is_not_there_or_not_yours(customers: Customers) -> None:
    a, b, api = customers.a, customers.b, customers.api
    for kind in ("accounts", "plans", "stakeholders", "deals"):
        missing = api.get(f"/{kind}/{uuid4()}", a.headers)
        assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
        assert api.get(f"/{kind}/{a.account_id}", {}).status_code == 401
    assert api.get(f"/plans/{a.deal_id}", a.headers).status_code == 404  # a deal is not a plan
    for path in (b.account, b.plan, b.stakeholder, b.deal):
        assert api.get(path, token(MANAGER)).status_code == 403  # on a's team, not b's
        assert api.get(path, token("v", "viewer_all")).status_code == 200


# --- views ------------------------------------------------------------------------------


@reads("GET /accounts/{account_id}/view")
def test_the_account_view_shows_what_was_built(customers: Customers) -> None:
    a = customers.a
    body = customers.api.get(a.account + "/view", a.headers, min_position=a.last_position).json()
    assert body["position"] >= a.last_position
    view = body["view"]
    assert view["account"]["name"] == "Nordwind Industrial Group"
    [hq] = view["unit_tree"]
    path = [hq["unit_id"]]
    node = hq
    while node["children"]:
        [node] = node["children"]
        path.append(node["unit_id"])
    assert path == [str(a.hq), str(a.region), str(a.country), str(a.local)]
    [plan] = view["plans"]
    assert (plan["plan_id"], plan["cascade"]) == (
        str(a.plan_id),
        {"adopted": 1, "adapted": 0, "declined": 0, "awaiting_response": 0},
    )
    assert [p["stakeholder_id"] for p in view["stakeholders"]["people"]] == [str(a.stakeholder_id)]
    assert [(d["deal_id"], d["probability"]) for d in view["pipeline"]["deals"]] == [(str(a.deal_id), 15)]


@reads(
    "GET /accounts/{account_id}/view",
    "GET /accounts/{account_id}/stakeholder-map",
    "GET /accounts/{account_id}/pipeline",
)
def test_the_stakeholder_map_and_the_pipeline_are_the_account_views_parts(customers: Customers) -> None:
    a, api = customers.a, customers.api
    view = api.get(a.account + "/view", a.headers).json()["view"]
    people = api.get(a.account + "/stakeholder-map", a.headers, min_position=a.last_position).json()
    pipeline = api.get(a.account + "/pipeline", a.headers, min_position=a.last_position).json()
    assert set(people) == {"position", "stakeholders"}
    assert people["stakeholders"] == view["stakeholders"]
    assert set(pipeline) == {"position", "pipeline", "win_rate"}
    assert (pipeline["pipeline"], pipeline["win_rate"]) == (view["pipeline"], view["win_rate"])
    assert pipeline["pipeline"]["total"]["deals"] == 1


@reads(
    "GET /accounts/{account_id}/view",
    "GET /accounts/{account_id}/stakeholder-map",
    "GET /accounts/{account_id}/pipeline",
    "GET /plans/{plan_id}/strategy-flow",
)
def test_who_reads_a_view(customers: Customers) -> None:
    """A member of an account's team reads it, whatever their role; nobody else, and
    nobody without a credential."""
    a, b, api = customers.a, customers.b, customers.api
    viewer = token("v@vendor.example")  # a specialist on a's team
    local_manager = token("l@vendor.example")
    for path in (
        a.account + "/view",
        a.account + "/stakeholder-map",
        a.account + "/pipeline",
        a.plan + "/strategy-flow",
    ):
        other = path.replace(str(a.account_id), str(b.account_id)).replace(str(a.plan_id), str(b.plan_id))
        assert (api.get(path, viewer).status_code, api.get(other, viewer).status_code) == (200, 403)
        assert (api.get(path, local_manager).status_code, api.get(other, local_manager).status_code) == (200, 403)
        assert api.get(path, {}).status_code == 401
    missing = api.get(f"/accounts/{uuid4()}/view", token("root", "admin"))
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)


@reads("GET /plans/{plan_id}/strategy-flow")
def test_the_strategy_flow_follows_the_objective_down_and_the_progress_up(customers: Customers) -> None:
    a = customers.a
    body = customers.api.get(a.plan + "/strategy-flow", a.headers, min_position=a.last_position).json()
    assert body["position"] >= a.last_position
    flow = body["flow"]
    assert (flow["plan_id"], flow["account_id"], flow["status"]) == (str(a.plan_id), str(a.account_id), "draft")
    [objective] = flow["objectives"]
    assert (objective["objective_id"], objective["owner_unit_id"]) == (str(a.objective_id), str(a.hq))
    [region] = objective["cascade"]["children"]
    assert (region["unit_id"], region["state"]) == (str(a.region), "adopted")
    assert [p["percent"] for p in region["progress"]] == [10, 30, 50]
    assert {p["by"] for p in region["progress"]} == {MANAGER}
    kinds = [(f["kind"], f["direction"]) for f in flow["flows"]]
    assert kinds == [("directive", "down"), ("adopted", "up"), *[("progress", "up")] * 3]
    assert customers.api.get(f"/plans/{uuid4()}/strategy-flow", a.headers).status_code == 404


# --- lists ------------------------------------------------------------------------------


@reads(
    "GET /accounts",
    "GET /accounts/{account_id}/plans",
    "GET /accounts/{account_id}/stakeholders",
    "GET /accounts/{account_id}/deals",
)
def test_the_lists_show_what_the_commands_stored_and_only_the_callers_accounts(customers: Customers) -> None:
    api, a, b = customers.api, customers.a, customers.b
    wait = {"min_position": a.last_position}
    led = api.get("/accounts", a.headers, **wait).json()  # the creator of both leads both
    assert sorted(item["id"] for item in led["items"]) == sorted([str(a.account_id), str(b.account_id)])
    assert led["items"][0]["name"] == "Nordwind Industrial Group"
    assert led["next"] is None
    specialist = token("v@vendor.example")  # on a's team only
    assert [item["id"] for item in api.get("/accounts", specialist, **wait).json()["items"]] == [str(a.account_id)]
    everyone = api.get("/accounts", ADMIN, all="true", **wait).json()["items"]
    assert {str(a.account_id), str(b.account_id)} <= {item["id"] for item in everyone}
    manager = token(MANAGER)
    assert [item["id"] for item in api.get("/accounts", manager, **wait).json()["items"]] == [str(a.account_id)]
    plans = api.get(f"{a.account}/plans", a.headers, **wait).json()["items"]
    assert [(p["id"], p["fiscal_period"], p["objectives"]) for p in plans] == [(str(a.plan_id), "FY2027", 1)]
    people = api.get(f"{a.account}/stakeholders", manager, **wait).json()["items"]
    assert [(p["id"], p["name"], p["unit_id"]) for p in people] == [(str(a.stakeholder_id), "Karin Ek", str(a.hq))]
    deals = api.get(f"{a.account}/deals", a.headers, unit=str(a.region), **wait).json()["items"]
    assert [(d["id"], d["probability"], d["overdue"]) for d in deals] == [(str(a.deal_id), 15, False)]
    assert deals[0]["amount"] == {"amount": "100000", "currency": "EUR"}
    for path in ("/plans", "/stakeholders", "/deals"):
        refused = api.get(f"{b.account}{path}", specialist)
        assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)


# --- the audit trail and history --------------------------------------------------------


def walk(api: Api, path: str, headers: dict[str, str], limit: int, **params: Any) -> list[list[Json]]:
    """Every page of a paged query, following ``next`` from the start."""
    pages: list[list[Json]] = []
    cursor: int | None = 0
    while cursor is not None:
        response = api.get(path, headers, after=cursor, limit=limit, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["rows"]) <= limit
        assert page["next"] == (page["rows"][-1]["position"] if len(page["rows"]) == limit else None)
        pages.append(page["rows"])
        cursor = page["next"]
        assert len(pages) < 100, "the cursor does not move on"
    return pages


@reads("GET /audit")
def test_the_audit_trail_pages_through_an_account_without_gaps_or_repeats(customers: Customers) -> None:
    a, api = customers.a, customers.api
    truth = customers.positions_of(a)
    assert len(truth) == 22
    assert truth != list(range(truth[0], truth[0] + len(truth)))  # the other account's events lie in between
    pages = walk(api, "/audit", a.headers, 4, account_id=str(a.account_id), min_position=a.last_position)
    positions = [row["position"] for page in pages for row in page]
    assert positions == sorted(set(positions))  # none twice, in log order
    assert positions == truth  # none missing, none from elsewhere
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 2]
    rows = [row for page in pages for row in page]
    assert {row["account_id"] for row in rows} == {str(a.account_id)}
    assert {row["actor"] for row in rows} == {ACTOR, MANAGER}
    names = {i: name for row in rows for i, name in row["names"].items()}
    assert names[str(a.account_id)] == "Nordwind Industrial Group"
    assert {names[str(u)] for u in (a.region, a.country, a.local)} == {"region NORD", "country SE", "local SE"}
    assert names[str(a.objective_id)] == "Grow digital services revenue"
    assert (names[str(a.stakeholder_id)], names[str(a.plan_id)]) == ("Karin Ek", "FY2027")
    assert names[str(a.deal_id)] == "Predictive maintenance roll-out"
    cascade = next(row for row in rows if row["event_type"] == "AccountPlan.ObjectiveCascaded")
    assert set(cascade["names"]) >= {str(a.plan_id), str(a.objective_id), str(a.hq), str(a.region)}


@reads("GET /audit")
def test_the_audit_trail_filters_and_its_pages_agree(customers: Customers) -> None:
    a, b, api = customers.a, customers.b, customers.api
    account = {"account_id": str(a.account_id)}
    by_actor = [r for p in walk(api, "/audit", a.headers, 2, actor=MANAGER, **account) for r in p]
    assert [r["position"] for r in by_actor] == customers.positions_of(a, actor=MANAGER)
    assert {r["event_type"] for r in by_actor} == {"AccountPlan.ProgressReported"}
    changed = [r for p in walk(api, "/audit", a.headers, 5, event_type="Deal.ProbabilityChanged", **account) for r in p]
    assert [r["changes"][0]["after"] for r in changed] == [10, 11, 12, 13, 14, 15]
    of_deal = [r for p in walk(api, "/audit", a.headers, 3, entity_id=str(a.deal_id)) for r in p]
    assert [r["version"] for r in of_deal] == list(range(1, 8))
    later = by_actor[1]["occurred_at"]
    since = [r["position"] for r in api.get("/audit", a.headers, since=later, **account).json()["rows"]]
    until = [r["position"] for r in api.get("/audit", a.headers, until=later, **account).json()["rows"]]
    assert until + since == customers.positions_of(a)
    assert since[0] == by_actor[1]["position"]
    whole = [r for p in walk(api, "/audit", token("dpo", "compliance"), 1000) for r in p]
    assert [r["position"] for r in whole] == list(range(1, api.log_position() + 1))
    a_only = token(MANAGER)  # on a's team only (the lead GAM of the worlds leads both)
    assert api.get("/audit", a_only).status_code == 403  # only compliance reads it all
    assert api.get("/audit", a_only, account_id=str(b.account_id)).status_code == 403
    assert api.get("/audit", a_only, entity_id=str(b.deal_id)).status_code == 403


@reads("GET /entities/{entity_id}/history")
def test_an_entitys_history_pages_through_every_change(customers: Customers) -> None:
    a, api = customers.a, customers.api
    path = f"/entities/{a.deal_id}/history"
    pages = walk(api, path, a.headers, 3, min_position=a.last_position)
    rows = [row for page in pages for row in page]
    assert [r["position"] for r in rows] == [p for p, e in api.stored_since(0) if e.originator_id == a.deal_id]
    assert [r["version"] for r in rows] == list(range(1, 8))
    assert rows[0]["event_type"] == "Deal.Opened"
    assert [r["changes"] for r in rows[2:4]] == [
        [{"field": "probability", "before": 10, "after": 11}],
        [{"field": "probability", "before": 11, "after": 12}],
    ]
    assert api.get(f"/entities/{uuid4()}/history", a.headers).status_code == 404
    assert api.get(f"/entities/{customers.b.deal_id}/history", token(MANAGER)).status_code == 403


@reads("GET /accounts/{account_id}/team", "GET /me/worklist", "GET /plans/{plan_id}/changes-since-baseline")
def test_the_team_and_worklist_reads(customers: Customers) -> None:
    a, b, api = customers.a, customers.b, customers.api
    team = api.get(f"{a.account}/team", token(MANAGER)).json()
    assert {(m["member"], m["changes_whole_account"]) for m in team["members"]} == {
        (ACTOR, True), (MANAGER, False), ("v@vendor.example", False), ("l@vendor.example", False),
    }  # fmt: skip
    assert api.get(f"{b.account}/team", token(MANAGER)).status_code == 403
    worklist = api.get("/me/worklist", token(MANAGER), min_position=a.last_position).json()
    assert worklist["accounts"] == 1
    assert api.get("/me/worklist", {}).status_code == 401
    since = api.get(f"{a.plan}/changes-since-baseline", token(MANAGER)).json()
    assert (since["baseline_version"], since["changes"]) == (None, [])  # never approved
    assert api.get(f"{b.plan}/changes-since-baseline", token(MANAGER)).status_code == 403


# --- read your writes -------------------------------------------------------------------


def test_a_position_not_reached_in_time_is_503_with_retry_after() -> None:
    """On a server that waits 0.1 s (GAM_READ_WAIT_SECONDS) for a view to reach a
    position; the routes are declared by the tests above."""
    with Api.serving(Settings(store="memory", read_wait_seconds=0.1)) as api:
        w = build_world(api)
        beyond = api.log_position() + 1
        for path, params in (
            (w.account + "/view", {}),
            (w.account + "/stakeholder-map", {}),
            (w.account + "/pipeline", {}),
            (w.plan + "/strategy-flow", {}),
            ("/audit", {"account_id": str(w.account_id)}),
            (f"/entities/{w.deal_id}/history", {}),
        ):
            response = api.get(path, w.headers, min_position=beyond, **params)
            assert response.status_code == 503, path
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["position"] == api.log_position() < beyond
            assert problem["view"] in {"account_view", "strategy_flow", "audit_trail"}
            reached = api.get(path, w.headers, min_position=beyond - 1, **params)
            assert (reached.status_code, reached.json()["position"]) == (200, beyond - 1)


# --- operations and compliance ----------------------------------------------------------


@reads("GET /healthz", "GET /readyz")
def test_health_and_readiness(customers: Customers) -> None:
    api = customers.api
    assert api.get("/healthz", {}).json() == {"status": "ok"}
    ready = api.get("/readyz", {}).json()
    assert (ready["status"], ready["log_position"]) == ("ready", api.log_position())
    assert set(ready["views"]) == {"account_view", "audit_trail", "strategy_flow"}
    for view in ready["views"].values():
        assert view["lag"] == ready["log_position"] - view["position"] >= 0


@reads(
    "GET /compliance/accounts/{account_id}/as-of",
    "GET /compliance/accounts/{account_id}/diff",
    "GET /compliance/audit/export",
    "GET /compliance/audit/verify",
)
def test_the_compliance_reads(customers: Customers) -> None:
    a, api = customers.a, customers.api
    officer = token("auditor@vendor.example", "compliance")
    now = datetime.now(UTC).isoformat()
    as_of = api.get(f"/compliance/accounts/{a.account_id}/as-of", officer, at=now)
    assert set(as_of.json()["entities"]) == {str(e) for e in customers.entities_of(a)}
    assert api.get(f"/compliance/accounts/{a.account_id}/as-of", a.headers, at=now).status_code == 403
    assert api.get(f"/compliance/accounts/{a.account_id}/as-of", token(MANAGER), at=now).status_code == 403
    moments = {"from": customers.built.isoformat(), "to": now}
    changes = api.get(f"/compliance/accounts/{a.account_id}/diff", officer, **moments).json()["changes"]
    probability = one(changes, path=f"/deals/{a.deal_id}/probability")
    assert (probability["before"], probability["after"]) == (10, 15)
    assert [by["actor"] for by in probability["by"]] == [ACTOR] * 6  # who made the change: six revisions
    assert probability["readable"] == "/deals/Predictive maintenance roll-out/probability: 10 → 15"
    progress = one(changes, path=f"/plans/{a.plan_id}/objectives/{a.objective_id}/progress/{a.region}")
    assert (progress["before"], progress["after"]["percent"]) == (None, 50)
    assert {by["actor"] for by in progress["by"]} == {MANAGER}
    assert len(changes) == 2  # nothing of the other account, nothing that did not change
    export = api.get("/compliance/audit/export", officer, account_id=str(a.account_id))
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["position"] for line in lines] == customers.positions_of(a)
    verified = api.get("/compliance/audit/verify", officer).json()
    assert (verified["intact"], verified["checked"]) == (True, api.log_position())


@reads(
    "GET /compliance/stakeholders/{stakeholder_id}/subject-access",
    "GET /compliance/subject-access-requests",
)
def test_a_subject_access_report_is_given_to_compliance_and_recorded(customers: Customers) -> None:
    a, api = customers.a, customers.api
    officer = token("dpo@vendor.example", "compliance")
    path = f"/compliance/stakeholders/{a.stakeholder_id}/subject-access"
    assert api.get(path, a.headers).status_code == 403  # the account's own lead GAM is not compliance
    report = api.get(path, officer, legal_basis="Art. 15 request #7")
    assert report.status_code == 200, report.text
    assert report.json()["person"]["personal"]["name"] == "Karin Ek"
    asked = api.get("/compliance/subject-access-requests", officer).json()
    assert [(r["requested_by"], r["legal_basis"]) for r in asked["requests"]][-1:] == [
        ("dpo@vendor.example", "Art. 15 request #7")
    ]


@reads("GET /compliance/personal-keys/{subject_id}", "GET /compliance/personal-key-fetches")
def test_a_persons_key_is_for_services_with_the_scope_only(customers: Customers) -> None:
    """A person's token never fetches a key, whatever its roles; the keys a service did
    fetch are listed for compliance (``test_downstream_sealed`` fetches with the scope)."""
    a, api = customers.a, customers.api
    officer = token("dpo@vendor.example", "compliance")
    for caller in (officer, a.headers, ADMIN):
        refused = api.get(f"/compliance/personal-keys/{a.stakeholder_id}", caller)
        assert refused.status_code == 403, refused.text
        assert "personal_data" in refused.json()["detail"]
    assert api.get("/compliance/personal-key-fetches", officer).json() == {"fetches": []}
    assert api.get("/compliance/personal-key-fetches", a.headers).status_code == 403


@reads(
    "GET /compliance/checkpoints/latest",
    "GET /compliance/checkpoints/verifier-key",
    "GET /compliance/audit/proof/{position}",
    "GET /compliance/audit/consistency",
)
def test_the_transparency_log_reads(customers: Customers) -> None:
    from infra import merkle
    from infra.checkpoints import NoteVerifier, open_checkpoint

    a, api = customers.a, customers.api
    officer = token("auditor@vendor.example", "compliance")
    key = NoteVerifier.parse(api.get("/compliance/checkpoints/verifier-key", officer).text)
    deadline = time.monotonic() + 30
    while (latest := api.get("/compliance/checkpoints/latest", officer)).status_code != 200 or open_checkpoint(
        latest.text, key
    ).size < a.last_position:  # gam serve's checkpointer signs every GAM_CHECKPOINT_EVERY_SECONDS
        assert time.monotonic() < deadline, latest.text
        time.sleep(0.1)
    assert latest.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(latest.text, key)

    proof = api.get(f"/compliance/audit/proof/{a.last_position}", officer).json()
    leaf = proof["leaf"]
    data = merkle.event_leaf(leaf["position"], leaf["entity_id"], leaf["version"], leaf["topic"],
                             bytes.fromhex(leaf["state_sha256"]))  # fmt: skip
    path = [base64.b64decode(p) for p in proof["proof"]]
    assert (proof["tree_size"], proof["checkpoint"]) == (checkpoint.size, latest.text)
    assert merkle.verify_inclusion(proof["leaf_index"], checkpoint.size, merkle.leaf_hash(data), path, checkpoint.root)

    consistency = api.get("/compliance/audit/consistency", officer, first=3).json()
    older_root = merkle.root(3, api.runtime.transparency.store.nodes)
    assert merkle.verify_consistency(3, checkpoint.size, older_root, checkpoint.root,
                                     [base64.b64decode(p) for p in consistency["proof"]])  # fmt: skip
    missing = api.get("/compliance/audit/proof/999999", officer)
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    assert api.get("/compliance/audit/consistency", officer, first=999999).status_code == 404
    assert api.get("/compliance/checkpoints/latest", a.headers).status_code == 403
