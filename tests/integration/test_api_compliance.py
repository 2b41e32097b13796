"""Compliance over HTTP: only compliance and admin may time-travel, export and
erase; 401 without a valid token, 403 without the role."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.stakeholder import Stakeholder
from domain.values import ERASED
from infra.settings import Settings
from services.api.app import create_app
from services.app import GamApplication
from services.demo import SeededAccount, seed_account
from tests.api_support import SECRET, token


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, GamApplication, SeededAccount]]:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)
    writer = GamApplication(settings.eventsourcing_env())
    account = seed_account(writer, 0)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while any(v["lag"] for v in client.get("/readyz").json()["views"].values()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield client, writer, account
    writer.close()


def test_who_may_call(api: tuple) -> None:  # type: ignore[type-arg]
    client, _, account = api
    url = f"/compliance/accounts/{account.account_id}/as-of?at=2026-09-02T00:00:00Z"
    assert client.get(url).status_code == 401
    assert client.get(url).headers["www-authenticate"] == "Bearer"
    assert (
        client.get(url, headers=token("mallory", "compliance", secret="wrong-secret-wrong-secret-wrong!")).status_code
        == 401
    )
    assert client.get(url, headers=token("gam@vendor.example", "viewer_all")).status_code == 403
    assert client.get(url, headers=token("auditor@vendor.example", "compliance")).status_code == 200
    assert client.get(url, headers=token("root", "admin")).status_code == 200
    problem = client.get(url, headers=token("gam@vendor.example"))
    assert problem.headers["content-type"] == "application/problem+json"


def test_as_of_diff_export_and_verify(api: tuple) -> None:  # type: ignore[type-arg]
    client, _, account = api
    auditor = token("auditor@vendor.example", "compliance")
    as_of = client.get(f"/compliance/accounts/{account.account_id}/as-of?at=2026-09-02T00:00:00Z", headers=auditor)
    entities = as_of.json()["entities"]
    assert {e["type"] for e in entities.values()} == {"account", "plan"}  # no deals yet on the 2nd of September
    view = client.get(
        f"/accounts/{account.account_id}/view", params={"as_of": "2026-09-02T00:00:00Z"}, headers=auditor
    ).json()
    assert view["events"] == sum(e["version"] for e in entities.values())
    changes = client.get(
        f"/compliance/accounts/{account.account_id}/diff",
        params={"from": "2026-09-02T00:00:00Z", "to": "2026-09-03T00:00:00Z"}, headers=auditor,
    ).json()["changes"]  # fmt: skip
    assert any(c["path"].startswith("/stakeholders/") for c in changes)
    for change in changes:  # who made each change, and why, is there
        assert change["by"], change
        assert all(by["actor"] and "2026-09-02" <= by["at"] < "2026-09-03T00:00:00.000001" for by in change["by"])
        assert "readable" in change
    people = [c for c in changes if c["path"].startswith("/stakeholders/")]
    assert all(c["readable"].split("/")[2] != c["path"].split("/")[2] for c in people)  # the person is named
    csv_text = client.get("/compliance/audit/export", params={"account_id": str(account.account_id), "format": "csv"},
                          headers=auditor).text  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 580
    assert all(len(r["link"]) == 64 for r in rows)
    assert client.get("/compliance/audit/verify", headers=auditor).json() == {
        "intact": True, "checked": 580, "first_broken": None, "problem": None,
    }  # fmt: skip


def test_erasure_over_http_records_the_caller(api: tuple) -> None:  # type: ignore[type-arg]
    client, writer, account = api
    person = account.stakeholder_ids[3]
    url = f"/compliance/stakeholders/{person}/erasure"
    assert (
        client.post(url, json={"legal_basis": "GDPR Art. 17"}, headers=token("gam@vendor.example")).status_code == 403
    )
    invalid = client.post(url, json={"legal_basis": ""}, headers=token("dpo@vendor.example", "compliance"))
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["path"] == "body/legal_basis"
    officer = token("dpo@vendor.example", "compliance")
    assert client.post(url, json={"legal_basis": "GDPR Art. 17"}, headers=officer).status_code == 428
    version = client.get(f"/stakeholders/{person}", headers=officer).headers["etag"]
    done = client.post(url, json={"legal_basis": "GDPR Art. 17"}, headers={**officer, "If-Match": version})
    assert done.status_code == 200, done.text
    fresh = GamApplication(Settings(store="sqlite", sqlite_path=Path(writer.env.get("SQLITE_DBNAME") or ""),
                                    aggregate_cache_size=0).eventsourcing_env())  # fmt: skip
    erased = fresh.load(Stakeholder, person)
    assert erased.personal.name == ERASED
    last = list(fresh.events.get(person))[-1]
    assert (last.actor, last.legal_basis) == ("dpo@vendor.example", "GDPR Art. 17")  # type: ignore[attr-defined]
    assert "history" not in json.dumps(done.json())
    fresh.close()


def test_queries_answer_as_of_a_moment(api: tuple) -> None:  # type: ignore[type-arg]
    """Entities, the stakeholder map and the pipeline as they stood, beside the present."""
    client, _, account = api
    auditor = token("auditor@vendor.example", "compliance")
    early, later = "2026-09-02T00:00:00Z", "2026-12-31T00:00:00Z"
    whole = client.get(f"/compliance/accounts/{account.account_id}/as-of", params={"at": early}, headers=auditor)
    plan_then = whole.json()["entities"][str(account.plan_id)]
    plan = client.get(f"/plans/{account.plan_id}", params={"as_of": early}, headers=auditor)
    assert plan.status_code == 200
    assert plan.json()["version"] == plan_then["version"]
    assert plan.json()["state"] == plan_then["state"]
    assert "etag" not in plan.headers  # a past version is not something to change against
    now = client.get(f"/plans/{account.plan_id}", headers=auditor)
    assert now.json()["version"] > plan.json()["version"]
    assert now.headers["etag"] == f'"{now.json()["version"]}"'
    deal = account.deal_ids[0]
    assert client.get(f"/deals/{deal}", params={"as_of": early}, headers=auditor).status_code == 404  # not yet opened
    assert client.get(f"/deals/{deal}", params={"as_of": later}, headers=auditor).status_code == 200
    pipeline_then = client.get(f"/accounts/{account.account_id}/pipeline", params={"as_of": early}, headers=auditor)
    assert pipeline_then.json()["pipeline"]["deals"] == []
    people_then = client.get(
        f"/accounts/{account.account_id}/stakeholder-map", params={"as_of": early}, headers=auditor
    ).json()
    people_now = client.get(f"/accounts/{account.account_id}/stakeholder-map", headers=auditor).json()
    assert len(people_then["stakeholders"]["people"]) < len(people_now["stakeholders"]["people"])
    naive = client.get(f"/deals/{deal}", params={"as_of": "2026-12-31T00:00:00"}, headers=auditor)
    assert naive.status_code == 422  # a moment without a time zone is ambiguous
