"""The HTTP read side through a real ASGI client, on the embedded SQLite default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.app import GamApplication
from services.demo import SeededAccount, demo_id, seed_account
from tests.api_support import ADMIN, SECRET
from tests.support import meta


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[TestClient, GamApplication, SeededAccount]]:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", read_wait_seconds=1.0, jwt_secret=SECRET)
    writer = GamApplication(settings.eventsourcing_env())
    account = seed_account(writer, 0)
    with TestClient(create_app(settings), headers=ADMIN) as client:
        deadline = time.monotonic() + 60
        while any(v["lag"] for v in client.get("/readyz").json()["views"].values()):
            assert time.monotonic() < deadline, "views never caught up"
            time.sleep(0.05)
        yield client, writer, account
    writer.close()


def test_health_and_readiness_report_the_store_and_the_views(seeded: tuple) -> None:  # type: ignore[type-arg]
    client, _, _ = seeded
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz?").json()
    assert ready["status"] == "ready"
    assert ready["log_position"] == 580
    assert set(ready["views"]) == {"account_view", "audit_trail", "strategy_flow"}


def test_a_read_waits_for_the_callers_write(seeded: tuple) -> None:  # type: ignore[type-arg]
    client, writer, account = seeded
    written = h.change_deal_probability(writer, meta(), deal_id=account.deal_ids[2], probability=77)
    response = client.get(f"/accounts/{account.account_id}/view", params={"min_position": written.position})
    assert response.status_code == 200
    body = response.json()
    assert body["position"] >= written.position
    assert body["view"]["account"]["name"] == "Nordwind Industrial Group"
    history = client.get(f"/entities/{account.deal_ids[2]}/history", params={"min_position": written.position})
    assert history.json()["rows"][-1]["changes"][0] == {"field": "probability", "before": 40, "after": 77}


def test_a_position_never_reached_is_a_503_problem_with_retry_after(seeded: tuple) -> None:  # type: ignore[type-arg]
    client, _, account = seeded
    response = client.get(f"/accounts/{account.account_id}/view", params={"min_position": 10**6})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["view"] == "account_view"


def test_strategy_flow_and_audit_pages(seeded: tuple) -> None:  # type: ignore[type-arg]
    client, _, account = seeded
    flow = client.get(f"/plans/{account.plan_id}/strategy-flow", params={"min_position": 580}).json()["flow"]
    assert len(flow["objectives"]) == 10
    seen, cursor = [], 0
    while cursor is not None:
        params = {"account_id": str(account.account_id), "after": cursor, "limit": 250, "min_position": 580}
        page = client.get("/audit", params=params).json()
        seen += [row["position"] for row in page["rows"]]
        cursor = page["next"]
    assert seen == list(range(1, 581))


def test_bad_input_is_a_problem_with_field_paths(seeded: tuple) -> None:  # type: ignore[type-arg]
    client, _, _ = seeded
    response = client.get("/audit", params={"account_id": "not-a-uuid", "limit": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"query/account_id", "query/limit"}
    missing = client.get(f"/accounts/{demo_id(99, 'account')}/view", params={"min_position": 580})
    assert (missing.status_code, missing.json()["status"]) == (404, 404)
    assert client.get("/openapi.json").json()["info"]["title"] == "gam"
