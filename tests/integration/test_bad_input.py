"""Bad input over HTTP: bodies, headers, paths and query strings that no honest client
sends. Whatever arrives, the answer is never a 5xx: it is a 4xx
``application/problem+json`` with ``status``, ``title`` and ``detail`` (and the field
``path`` of each invalid value), and a refused request stores nothing (the log
position is the same before and after).

Classes covered: oversized bodies (413), wrong content types, invalid UTF-8 and
invalid JSON, huge numbers, dates and moments out of range, NUL and control
characters, injection strings (SQL, JSON, path traversal in ids), unknown fields,
a wrong type for every field of several commands, absurd ``If-Match``,
``Idempotency-Key``, ``Authorization``, ``X-API-Key`` and ``X-Correlation-ID``
values; hand-written cases and Hypothesis-generated ones. Everything runs on SQLite;
a representative subset runs on PostgreSQL too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from projections.encoding import format_time, parse_time
from services.api.app import create_app
from tests.api_support import ADMIN, SECRET, wait_for_views

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
ACCOUNT = {"name": "Bad Input AG", "industry": "Testing", "hq_country": "CH", "reporting_currency": "CHF"}


@dataclass
class World:
    """A client on a fresh store holding one small account: its HQ, a stakeholder, a deal."""

    client: TestClient
    account_id: str
    hq_unit_id: str
    stakeholder_id: str
    deal_id: str

    def events(self) -> int:
        """The log position: unchanged by every refused request."""
        return self.client.app.state.runtime.app.recorder.max_notification_id() or 0  # type: ignore[attr-defined]

    def etag(self, path: str) -> str:
        return self.client.get(path).headers["ETag"]

    def fill(self, template: str) -> str:
        return template.format(
            account=self.account_id, unit=self.hq_unit_id, stakeholder=self.stakeholder_id, deal=self.deal_id
        )


def open_world(settings: Settings) -> Iterator[World]:
    with TestClient(create_app(settings), headers=ADMIN, raise_server_exceptions=False) as client:
        onboarded = client.post("/accounts/onboarding", json={**ACCOUNT, "fiscal_period": "FY2027"})
        assert onboarded.status_code == 201, onboarded.text
        account_id = onboarded.json()["entity_id"]
        hq_unit_id = next(iter(client.get(f"/accounts/{account_id}").json()["state"]["units"]))
        person = {"account_id": account_id, "unit_id": hq_unit_id, "title": "CPO", "personal": {"name": "Ana Ruiz"}}
        stakeholder = client.post("/stakeholders", json=person)
        deal = client.post("/deals", json={**deal_body(account_id, hq_unit_id)})
        assert stakeholder.status_code == deal.status_code == 201, (stakeholder.text, deal.text)
        yield World(client, account_id, hq_unit_id, stakeholder.json()["entity_id"], deal.json()["entity_id"])


def deal_body(account_id: str, unit_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "unit_id": unit_id,
        "title": "Sensors for the Basel plant",
        "amount": {"amount": "125000.00", "currency": "CHF"},
        "expected_close": "2027-06-30",
        "owner": "sales@vendor.example",
    }


def sqlite_settings(path: Path, **changes: Any) -> Settings:
    return Settings(store="sqlite", sqlite_path=path / "gam.db", jwt_secret=SECRET, read_wait_seconds=0.2, **changes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite world for the whole module: every request here is refused, so none changes it."""
    yield from open_world(sqlite_settings(tmp_path_factory.mktemp("bad-input")))


@pytest.fixture
def world_on_store(durable_settings: Settings) -> Iterator[World]:
    settings = durable_settings.model_copy(update={"jwt_secret": SECRET, "read_wait_seconds": 0.2})
    yield from open_world(settings)


def assert_refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A 4xx problem+json that says what is wrong (and where, for invalid values)."""
    request = f"{response.request.method} {response.request.url}"
    assert response.status_code < 500, f"{request}: {response.status_code} {response.text[:500]}"
    assert response.status_code in statuses, f"{request}: {response.status_code} {response.text[:500]}"
    assert response.headers["content-type"] == PROBLEM, f"{request}: {response.headers['content-type']}"
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["title"].strip()
    assert problem["detail"].strip()
    for error in problem.get("errors", []):
        assert all(str(error[member]).strip() for member in ("path", "message", "type")), error
    return problem


def refused(world: World, method: str, path: str, *statuses: int, **request: Any) -> dict[str, Any]:
    """Send one bad request; it must be refused and store nothing."""
    before = world.events()
    problem = assert_refused(world.client.request(method, world.fill(path), **request), *statuses)
    assert world.events() == before, f"{method} {path} stored events though it was refused"
    return problem


# --- oversized bodies ---------------------------------------------------------------

FIVE_MB = 5 * 1024 * 1024


def test_a_five_megabyte_body_is_413_before_it_is_read(world: World) -> None:
    body = b'{"name": "' + b"x" * FIVE_MB + b'"}'
    problem = refused(world, "POST", "/accounts", 413, content=body, headers=JSON)
    assert "1048576 bytes" in problem["detail"]


def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(world: World) -> None:
    chunks_read = 0

    def chunks() -> Iterator[bytes]:
        nonlocal chunks_read
        yield b'{"name": "'
        for _ in range(80):
            chunks_read += 1
            yield b"x" * 65536

    request = world.client.build_request("POST", "/deals", content=chunks(), headers=JSON)
    assert "content-length" not in request.headers
    before = world.events()
    assert_refused(world.client.send(request), 413)
    assert world.events() == before


def test_the_limit_comes_from_gam_max_body_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAM_MAX_BODY_BYTES", "4096")
    assert Settings().max_body_bytes == 4096
    assert Settings.model_fields["max_body_bytes"].default == 1024 * 1024
    monkeypatch.setenv("GAM_MAX_BODY_BYTES", "0")
    with pytest.raises(ValueError, match="max_body_bytes"):
        Settings()
    monkeypatch.delenv("GAM_MAX_BODY_BYTES")
    for small in open_world(sqlite_settings(tmp_path, max_body_bytes=4096)):
        assert small.client.post("/accounts", json={**ACCOUNT, "reason": "r" * 1900}).status_code == 201
        # Within the limit this body would be a 422 (reason longer than 2000): the size is checked first.
        refused(small, "POST", "/accounts", 413, json={**ACCOUNT, "reason": "r" * 5000})


# --- dates and moments at the edges of the calendar ---------------------------------


@pytest.mark.parametrize("year", [1, 208, 999, 9999])
def test_stored_times_keep_a_four_digit_year(year: int) -> None:
    moment = datetime(year, 2, 17, 12, 6, 45, 966629, tzinfo=UTC)
    assert format_time(moment) == f"{year:04d}-02-17T12:06:45.966629Z"
    assert parse_time(format_time(moment)) == moment


def test_an_interaction_in_the_year_208_leaves_the_account_readable(world_on_store: World) -> None:
    """Regression: the year was stored as ``208``, which the account view could not
    read back, so every read of that account's view answered 500 from then on."""
    world = world_on_store
    path = world.fill("/stakeholders/{stakeholder}")
    logged = world.client.post(
        f"{path}/interactions",
        json={"occurred_at": "0208-02-17T12:06:45Z", "channel": "meeting", "summary": "Very early"},
        headers={"If-Match": world.etag(path)},
    )
    assert logged.status_code == 200, logged.text
    wait_for_views(world.client)
    for read in ("/accounts/{account}/view", "/accounts/{account}/stakeholder-map"):
        assert world.client.get(world.fill(read)).status_code == 200, read
    as_of = world.client.get(world.fill("/compliance/accounts/{account}/as-of"), params={"at": "2100-01-01T00:00:00Z"})
    assert as_of.status_code == 200, as_of.text
    people = world.client.get(world.fill("/accounts/{account}/stakeholder-map")).json()["stakeholders"]
    assert "0208-02-17T12:06:45.000000Z" in json.dumps(people)


BEYOND_UTC = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]
"""Valid ISO 8601, but their UTC time falls in the year 10000 or 0."""


@pytest.mark.parametrize("moment", BEYOND_UTC)
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/accounts/{account}", "as_of"),
        ("/deals/{deal}", "as_of"),
        ("/accounts/{account}/view", "as_of"),
        ("/accounts/{account}/pipeline", "as_of"),
        ("/audit", "since"),
        ("/audit", "until"),
        ("/compliance/accounts/{account}/as-of", "at"),
        ("/compliance/accounts/{account}/diff", "from"),
        ("/compliance/audit/export", "to"),
    ],
)
def test_a_moment_beyond_the_calendar_in_utc_is_invalid_input(
    world: World, path: str, parameter: str, moment: str
) -> None:
    """Regression: these were 500 (OverflowError converting to UTC)."""
    params = {"from": "2027-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z", parameter: moment}
    problem = refused(world, "GET", path, 422, params=params)
    assert [e["path"] for e in problem["errors"]] == [f"query/{parameter}"]


@pytest.mark.parametrize("moment", BEYOND_UTC)
def test_an_interaction_beyond_the_calendar_in_utc_is_invalid_input(world: World, moment: str) -> None:
    path = world.fill("/stakeholders/{stakeholder}")
    body = {"occurred_at": moment, "channel": "call", "summary": "Out of time"}
    problem = refused(world, "POST", f"{path}/interactions", 422, json=body, headers={"If-Match": world.etag(path)})
    assert [e["path"] for e in problem["errors"]] == ["body/occurred_at"]


# --- NUL and control characters -----------------------------------------------------


@pytest.mark.parametrize("parameter", ["actor", "event_type"])
def test_nul_in_an_audit_filter_is_invalid_input(world_on_store: World, parameter: str) -> None:
    """Regression: on PostgreSQL this was a 500 (text cannot hold NUL)."""
    problem = refused(world_on_store, "GET", "/audit", 422, params={parameter: "root\x00@vendor.example"})
    assert [e["path"] for e in problem["errors"]] == [f"query/{parameter}"]
    assert "NUL" in problem["errors"][0]["message"]
