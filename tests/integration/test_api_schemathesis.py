"""Schemathesis against the app's own OpenAPI: no 5xx, and every response is one the
document declares (status code, content type, body schema, headers).

The store is seeded with the demo account first, and path ids, body ids and query
ids are drawn from it most of the time (schemathesis dictionaries), so operations
on an existing entity are reached, not only their 404s (the archive command gets
an account of its own, so the demo account stays open). A valid generated change
mostly carries the entity's current ETag as ``If-Match`` (now and then the one
before, or none), so changes are stored or refused by a rule or a stale version
rather than all ending at 400/428. Every request is made as an admin.

Bounded, as the suite's longest file (more than a minute on a busy two-core machine): four
examples per operation from the schema's examples and fuzzing (valid and invalid
input), no coverage or stateful phase, derandomised so CI sees the same cases. Run it
longer, with fresh randomness, by setting ``GAM_SCHEMATHESIS_MAX_EXAMPLES``::

    GAM_SCHEMATHESIS_MAX_EXAMPLES=300 pytest tests/integration/test_api_schemathesis.py

and ``GAM_SCHEMATHESIS_PHASES=examples,coverage,fuzzing`` adds schemathesis's
coverage phase (boundary and just-invalid values of every parameter).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.account import GlobalAccount
from domain.plan import AccountPlan
from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.app import GamApplication
from services.demo import seed_account
from tests.api_support import ADMIN, SECRET
from tests.support import meta

MAX_EXAMPLES = int(os.environ.get("GAM_SCHEMATHESIS_MAX_EXAMPLES") or 0)
PHASES = os.environ.get("GAM_SCHEMATHESIS_PHASES", "examples,fuzzing").split(",")
DEFAULT_MAX_EXAMPLES = 4
SEEDED_SHARE = 0.7
"""How often an id is one of the seeded account's rather than a generated one."""


def no_server_error(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A 5xx is a bug, except the documented 503 of a read told to wait for a
    ``min_position`` its view has not reached (read your writes, bounded)."""
    if response.status_code == 503 and (case.query or {}).get("min_position") is not None:
        body = response.json()
        if body.get("title") == "View not up to date yet" and response.headers.get("retry-after") == ["1"]:
            return
    not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def seeded_ids(app: GamApplication) -> dict[str, list[str]]:
    """Every id of the demo account, under the name the API's parameters give it,
    and a bare account for archiving (an archived account refuses every change, so
    archiving the demo account would leave all later operations a 409)."""
    account = seed_account(app, 0)
    plan: AccountPlan = app.load(AccountPlan, account.plan_id)
    spare = h.create_account(
        app,
        meta(),
        account_id=uuid4(),
        hq_unit_id=uuid4(),
        name="Spare Holdings",
        industry="Retail",
        hq_country="FR",
        reporting_currency="EUR",
        tier="tier_2",
        governance_model="separate",
        hq_unit_name="Headquarters",
    )
    return {
        "spare_account_id": [str(spare.entity_id)],
        "account_id": [str(account.account_id)],
        "plan_id": [str(account.plan_id)],
        "unit_id": sorted(str(u) for u in app.load(GlobalAccount, account.account_id).units),
        "objective_id": sorted(str(o) for o in plan.objectives),
        "action_id": sorted(str(a) for a in plan.actions),
        "entry_id": sorted(str(e) for e in plan.swot),
        "stakeholder_id": [str(s) for s in account.stakeholder_ids],
        "deal_id": [str(d) for d in account.deal_ids],
    }


def schemathesis_config(ids: dict[str, list[str]]) -> schemathesis.Config:
    entities = ids["account_id"] + ids["plan_id"] + ids["stakeholder_id"] + ids["deal_id"]
    dictionaries = {name: {"values": values} for name, values in ids.items()} | {"entity_id": {"values": entities}}
    uses = {name: [name] for name in dictionaries if name != "spare_account_id"} | {
        "unit_id": ["unit_id", "parent_id", "to_unit_id", "from_unit_id"],
        "stakeholder_id": ["stakeholder_id", "manager_id"],
    }
    parameters = {
        f"{location}.{field}": {"dictionary": name, "probability": SEEDED_SHARE}
        for name, fields in uses.items()
        for field in fields
        for location in ("path", "query", "body")
    }
    generation: dict[str, Any] = {"mode": "all", "max-examples": MAX_EXAMPLES or DEFAULT_MAX_EXAMPLES}
    if not MAX_EXAMPLES:
        generation["deterministic"] = True
    phases = {phase: {"enabled": phase in PHASES} for phase in ("examples", "coverage", "fuzzing", "stateful")}
    return schemathesis.Config.from_dict(
        {
            "headers": dict(ADMIN),
            "dictionaries": dictionaries,
            "parameters": parameters,
            "generation": generation,
            "phases": phases,
            "operations": [
                {
                    "include-path": "/accounts/{account_id}/archive",
                    "parameters": {"path.account_id": {"dictionary": "spare_account_id", "probability": SEEDED_SHARE}},
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings_ = Settings(
        store="sqlite",
        sqlite_path=tmp_path_factory.mktemp("schemathesis") / "gam.db",
        read_wait_seconds=0.2,
        jwt_secret=SECRET,
    )
    writer = GamApplication(settings_.eventsourcing_env())
    ids = seeded_ids(writer)
    writer.close()
    app = create_app(settings_)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis_config(ids))
    asgi.shutdown_lifespans()


def match_current_version(case: schemathesis.Case) -> None:
    """Aim a positive change's ``If-Match`` at the entity its path names: mostly its
    current version, sometimes the one before (stale) or none at all (428)."""
    meta = case.meta
    if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return
    if not any(p.name == "If-Match" for p in case.operation.headers):
        return
    entity_id = next(iter((case.path_parameters or {}).values()), None)
    try:
        version = case.operation.schema.app.state.runtime.app.repository.get(UUID(str(entity_id))).version
    except Exception:  # no such entity, or not an id: the request is refused for that
        return
    case.headers = case.headers or {}
    choice = zlib.crc32(repr((case.headers, case.body)).encode()) % 8
    if choice == 0:
        case.headers.pop("If-Match", None)
    else:
        case.headers["If-Match"] = f'"{version - 1 if choice == 1 else version}"'


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_response_is_declared_and_none_is_a_server_error(case: schemathesis.Case) -> None:
    match_current_version(case)
    case.call_and_validate(checks=CHECKS)
