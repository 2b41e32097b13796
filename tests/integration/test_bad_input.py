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
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from projections.encoding import format_time, parse_time
from services.api.app import create_app
from tests.api_support import ADMIN, SECRET, wait_for_views

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
ACCOUNT = {"name": "Bad Input AG", "industry": "Testing", "hq_country": "CH", "reporting_currency": "CHF"}


@dataclass
class World:
    """A client on a fresh store holding one small account: its HQ, its plan, a stakeholder, a deal."""

    client: TestClient
    account_id: str
    hq_unit_id: str
    plan_id: str
    stakeholder_id: str
    deal_id: str

    def events(self) -> int:
        """The log position: unchanged by every refused request."""
        return self.client.app.state.runtime.app.recorder.max_notification_id() or 0  # type: ignore[attr-defined]

    def etag(self, path: str) -> str:
        return self.client.get(path).headers["ETag"]

    def fill(self, template: str) -> str:
        return template.format(
            account=self.account_id,
            unit=self.hq_unit_id,
            plan=self.plan_id,
            stakeholder=self.stakeholder_id,
            deal=self.deal_id,
        )


def open_world(settings: Settings) -> Iterator[World]:
    with TestClient(create_app(settings), headers=ADMIN, raise_server_exceptions=False) as client:
        onboarded = client.post("/accounts/onboarding", json={**ACCOUNT, "fiscal_period": "FY2027"})
        assert onboarded.status_code == 201, onboarded.text
        account_id, plan_id = onboarded.json()["entity_id"], onboarded.json()["created_id"]
        hq_unit_id = next(iter(client.get(f"/accounts/{account_id}").json()["state"]["units"]))
        person = {"account_id": account_id, "unit_id": hq_unit_id, "title": "CPO", "personal": {"name": "Ana Ruiz"}}
        stakeholder = client.post("/stakeholders", json=person)
        deal = client.post("/deals", json=deal_body(account_id, hq_unit_id))
        assert stakeholder.status_code == deal.status_code == 201, (stakeholder.text, deal.text)
        yield World(client, account_id, hq_unit_id, plan_id, stakeholder.json()["entity_id"], deal.json()["entity_id"])


def deal_body(account_id: str, unit_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "unit_id": unit_id,
        "title": "Sensors for the Basel plant",
        "amount": {"amount": "125000.00", "currency": "CHF"},
        "expected_close": "2099-06-30",  # opened now (the server's clock): far ahead stays valid
        "owner": "sales@vendor.example",
    }


def sqlite_settings(path: Path, **changes: Any) -> Settings:
    return Settings(store="sqlite", sqlite_path=path / "gam.db", jwt_secret=SECRET, read_wait_seconds=0.2, **changes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite world for the module. Nearly every request here is refused; the few
    that are stored (a generated name, a header value that happens to be valid) only add
    accounts or move the deal's probability, which no other test depends on."""
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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Nordwind\x00 AG"),
        ("reason", "\x00"),
        ("name", "\ud800 lone surrogate"),
        ("industry", "\udfff"),
    ],
)
def test_nul_and_lone_surrogates_in_a_body_are_invalid_input(world: World, field: str, value: str) -> None:
    body = json.dumps({**ACCOUNT, field: value}).encode()  # ASCII: a lone surrogate as a \u escape
    problem = refused(world, "POST", "/accounts", 422, content=body, headers=JSON)
    assert [e["path"] for e in problem["errors"]] == [f"body/{field}"]


def test_control_characters_are_stored_as_sent(tmp_path: Path) -> None:
    """Only NUL is refused: every other character is text someone may mean."""
    for world in open_world(sqlite_settings(tmp_path)):
        name = "Tab\there, bell\x07, escape\x1b[31m, delete\x7f, line\u2028separator, RTL\u202e"
        created = world.client.post("/accounts", json={**ACCOUNT, "name": name})
        assert created.status_code == 201, created.text
        assert world.client.get(f"/accounts/{created.json()['entity_id']}").json()["state"]["name"] == name


# --- content types, encodings and JSON ----------------------------------------------

VALID_ACCOUNT = json.dumps(ACCOUNT).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/octet-stream",
        "image/png",
        ";;;===",
        "application/json-seq",
        "x" * 10_000,
    ],
)
def test_a_body_that_is_not_declared_json_is_refused(world: World, content_type: str) -> None:
    problem = refused(
        world, "POST", "/accounts", 415, 422, content=VALID_ACCOUNT, headers={"Content-Type": content_type}
    )
    assert problem["errors"][0]["path"] == "body"


def test_a_body_without_a_content_type_is_refused(world: World) -> None:
    request = world.client.build_request("POST", "/accounts", content=VALID_ACCOUNT)
    assert "content-type" not in request.headers
    before = world.events()
    assert_refused(world.client.send(request), 415, 422)
    assert world.events() == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\xff\xfe"}',
        b'{"name": "\xc0\xaf"}',  # overlong encoding of "/"
        b'{"name": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"name": "\xe2\x82"}',  # truncated sequence
        b"\xff\xfe{\x00}\x00",  # UTF-16 with a byte order mark
        b"\x80\x81\x82",
        '{"name": "Zürich"}'.encode("latin-1"),
    ],
)
def test_a_body_that_is_not_utf8_is_refused(world: World, body: bytes) -> None:
    refused(world, "POST", "/accounts", 400, 422, content=body, headers=JSON)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"name": }',
        b"{'name': 'single quotes'}",
        b'{"name": "trailing comma",}',
        b'{"name": "x"} {"name": "y"}',
        b"/* comment */ {}",
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b"null",
        b"[]",
        b'"a string"',
        b"12345",
        b"true",
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b'{"name": ' + b"9" * 5000 + b"}",
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(world: World, body: bytes) -> None:
    problem = refused(world, "POST", "/deals", 400, 422, content=body, headers=JSON)
    if problem["status"] == 422:
        assert problem["errors"][0]["path"].startswith("body")


# --- numbers and dates out of range -------------------------------------------------


def test_a_negative_amount_is_refused_by_its_rule(world: World) -> None:
    body = deal_with(world, amount='{"amount": "-5", "currency": "CHF"}')
    assert refused(world, "POST", "/deals", 422, content=body, headers=JSON)["rule"] == "negative_amount"


def deal_with(world: World, **changes: Any) -> bytes:
    """A valid deal body with some members replaced by raw JSON text (so numbers keep their digits)."""
    body = deal_body(world.account_id, world.hq_unit_id)
    text = json.dumps({**body, **{name: f"@{name}@" for name in changes}})
    for name, raw in changes.items():
        text = text.replace(f'"@{name}@"', raw)
    return text.encode()


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"amount": '{"amount": 1e400, "currency": "CHF"}'}, "body/amount/amount"),
        ({"amount": '{"amount": -1e400, "currency": "CHF"}'}, "body/amount/amount"),
        ({"amount": f'{{"amount": {10**100}, "currency": "CHF"}}'}, "body/amount/amount"),
        ({"amount": '{"amount": "1e999999", "currency": "CHF"}'}, "body/amount/amount"),
        ({"amount": '{"amount": "0.000000000001", "currency": "CHF"}'}, "body/amount/amount"),
        ({"amount": '{"amount": "12", "currency": "chf"}'}, "body/amount/currency"),
        ({"probability": str(10**100)}, "body/probability"),
        ({"probability": str(-(10**100))}, "body/probability"),
        ({"probability": "1e400"}, "body/probability"),
        ({"probability": "50.5"}, "body/probability"),
        ({"expected_close": '"0000-01-01"'}, "body/expected_close"),
        ({"expected_close": '"10000-01-01"'}, "body/expected_close"),
        ({"expected_close": '"-0001-01-01"'}, "body/expected_close"),
        ({"expected_close": '"2027-02-30"'}, "body/expected_close"),
        ({"expected_close": '"2027-13-01"'}, "body/expected_close"),
        ({"expected_close": str(10**20)}, "body/expected_close"),
        ({"expected_close": '"2027-06-30T25:00:00"'}, "body/expected_close"),
    ],
)
def test_numbers_and_dates_out_of_range_are_invalid_input(world: World, changes: dict[str, str], path: str) -> None:
    problem = refused(world, "POST", "/deals", 422, content=deal_with(world, **changes), headers=JSON)
    assert path in [e["path"] for e in problem["errors"]], problem


@pytest.mark.parametrize(
    ("changes", "path", "rule"),
    [
        ({"amount": '{"amount": "12.345", "currency": "USD"}'}, "body/amount/amount", "too_many_decimals"),
        ({"amount": '{"amount": "1.5", "currency": "JPY"}'}, "body/amount/amount", "too_many_decimals"),
        ({"amount": '{"amount": "1.2345", "currency": "KWD"}'}, "body/amount/amount", "too_many_decimals"),
        ({"expected_close": '"2020-06-30"'}, "body/expected_close", "close_date_in_past"),
    ],
)
def test_money_finer_than_its_currency_and_a_close_date_in_the_past_are_refused(
    world: World, changes: dict[str, str], path: str, rule: str
) -> None:
    problem = refused(world, "POST", "/deals", 422, content=deal_with(world, **changes), headers=JSON)
    assert (problem["rule"], [e["path"] for e in problem["errors"]]) == (rule, [path]), problem


def test_a_money_target_finer_than_its_currency_is_refused(world: World) -> None:
    body = {
        "objective_id": str(uuid4()), "unit_id": world.hq_unit_id, "title": "Grow", "description": "",
        "target": {"metric": "revenue", "value": "1000.001", "currency": "EUR"}, "due_date": "2027-12-31",
    }  # fmt: skip
    plan = world.fill("/plans/{plan}")
    problem = refused(world, "POST", f"{plan}/objectives", 422, json=body, headers={"If-Match": world.etag(plan)})
    assert (problem["rule"], problem["errors"][0]["path"]) == ("too_many_decimals", "body/target/value")


def test_moving_a_deal_back_without_a_reason_is_refused_with_the_field(world: World) -> None:
    opened = world.client.post("/deals", json=deal_body(world.account_id, world.hq_unit_id))
    assert opened.status_code == 201, opened.text
    deal = f"/deals/{opened.json()['entity_id']}"
    forward = world.client.post(
        f"{deal}/stage", json={"to_stage": "qualification"}, headers={"If-Match": world.etag(deal)}
    )
    assert forward.status_code == 200, forward.text
    problem = refused(
        world, "POST", f"{deal}/stage", 422, json={"to_stage": "prospecting"}, headers={"If-Match": world.etag(deal)}
    )
    assert (problem["rule"], problem["errors"][0]["path"]) == ("reason_required", "body/reason")
    back = {"to_stage": "prospecting", "reason": "Budget frozen until Q3"}
    assert world.client.post(f"{deal}/stage", json=back, headers={"If-Match": world.etag(deal)}).status_code == 200
    in_a_batch = {
        "commands": [
            {"type": "move_deal_stage", "deal_id": opened.json()["entity_id"], "to_stage": "qualification"},
            {"type": "move_deal_stage", "deal_id": opened.json()["entity_id"], "to_stage": "prospecting"},
        ]
    }
    problem = refused(world, "POST", "/batches", 422, json=in_a_batch)
    assert (problem["rule"], problem["index"], problem["errors"][0]["path"]) == ("reason_required", 1, "body/reason")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/audit", {"limit": str(10**100)}, "query/limit"),
        ("/audit", {"limit": "0"}, "query/limit"),
        ("/audit", {"after": "-1"}, "query/after"),
        ("/audit", {"after": "1e400"}, "query/after"),
        ("/entities/{deal}/history", {"after": str(10**100)}, "query/after"),
        ("/accounts/{account}/view", {"min_position": str(10**100)}, "query/min_position"),
        ("/accounts/{account}/view", {"min_position": "NaN"}, "query/min_position"),
        ("/accounts/{account}", {"as_of": "10000-01-01T00:00:00Z"}, "query/as_of"),
        ("/accounts/{account}", {"as_of": "0000-01-01T00:00:00Z"}, "query/as_of"),
        ("/accounts/{account}", {"as_of": "2027-01-01T00:00:00"}, "query/as_of"),  # no offset
        ("/audit", {"since": "yesterday"}, "query/since"),
        ("/compliance/accounts/{account}/as-of", {"at": "99999-01-01"}, "query/at"),
    ],
)
def test_query_numbers_and_moments_out_of_range_are_invalid_input(
    world: World, path: str, params: dict[str, str], field: str
) -> None:
    problem = refused(world, "GET", path, 422, params=params)
    assert field in [e["path"] for e in problem["errors"]], problem


def test_the_calendars_first_and_last_days_are_stored_and_every_view_still_answers(world_on_store: World) -> None:
    world = world_on_store
    opened = world.client.post(
        "/deals", json={**deal_body(world.account_id, world.hq_unit_id), "expected_close": "9999-12-31"}
    )
    assert opened.status_code == 201, opened.text
    deal = f"/deals/{opened.json()['entity_id']}"  # neither a new deal nor an open one closes in the past
    moved = world.client.post(
        f"{deal}/close-date", json={"expected_close": "0001-01-01"}, headers={"If-Match": world.etag(deal)}
    )
    assert moved.status_code == 422, moved.text
    assert [e["path"] for e in moved.json()["errors"]] == ["body/expected_close"]
    path = world.fill("/stakeholders/{stakeholder}")
    first = {"occurred_at": "0001-01-01T00:00:00Z", "channel": "call", "summary": "The first day"}
    logged = world.client.post(f"{path}/interactions", json=first, headers={"If-Match": world.etag(path)})
    assert logged.status_code == 200, logged.text
    left = world.client.post(
        f"{path}/departure", json={"left_on": "9999-12-31"}, headers={"If-Match": world.etag(path)}
    )
    assert left.status_code in (200, 422), left.text
    wait_for_views(world.client)
    for read in (
        "/accounts/{account}/view",
        "/accounts/{account}/pipeline",
        "/accounts/{account}/stakeholder-map",
        "/plans/{plan}/strategy-flow",
        "/audit?account_id={account}",
        "/compliance/accounts/{account}/as-of?at=9999-12-31T23:59:59Z",
        "/compliance/accounts/{account}/diff?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
        "/compliance/audit/export?from=0001-01-01T00:00:00Z",
    ):
        response = world.client.get(world.fill(read))
        assert response.status_code == 200, f"{read}: {response.status_code} {response.text[:300]}"


# --- injection: SQL, JSON, path traversal -------------------------------------------

SQL = [
    "'; DROP TABLE stored_events; --",
    "x' OR '1'='1",
    'Robert"); DELETE FROM notifications; --',
    "1; SELECT pg_sleep(5)",
]


@pytest.mark.parametrize("text", SQL)
def test_sql_in_a_text_field_is_stored_as_text(tmp_path: Path, text: str) -> None:
    for world in open_world(sqlite_settings(tmp_path)):
        created = world.client.post("/accounts", json={**ACCOUNT, "name": text, "reason": text})
        assert created.status_code == 201, created.text
        assert world.client.get(f"/accounts/{created.json()['entity_id']}").json()["state"]["name"] == text
        assert world.client.get("/compliance/audit/verify").json()["intact"]


@pytest.mark.parametrize("text", SQL)
@pytest.mark.parametrize("parameter", ["actor", "event_type"])
def test_sql_in_an_audit_filter_matches_nothing(world: World, text: str, parameter: str) -> None:
    before = world.events()
    response = world.client.get("/audit", params={parameter: text})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == []
    assert world.events() == before


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"$gt": ""}, "body/name"),
        ({"$where": "sleep(1000)"}, "body/name"),
        (["Nordwind", "AG"], "body/name"),
        ('{"name": "nested"}', None),  # a string that looks like JSON is just a string
    ],
)
def test_json_in_place_of_a_string_is_refused_or_kept_as_text(world: World, value: Any, path: str | None) -> None:
    if path is None:
        response = world.client.post("/accounts", json={**ACCOUNT, "name": value})
        assert response.status_code == 201, response.text
        assert world.client.get(f"/accounts/{response.json()['entity_id']}").json()["state"]["name"] == value
        return
    problem = refused(world, "POST", "/accounts", 422, json={**ACCOUNT, "name": value})
    assert [e["path"] for e in problem["errors"]] == [path]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("GET", "/accounts/..%2F..%2Fetc%2Fpasswd", (404, 422)),
        ("GET", "/accounts/%2e%2e/%2e%2e/etc/passwd", (404, 422)),
        ("GET", "/accounts/....//....//etc/passwd", (404, 422)),
        ("GET", "/entities/..%5C..%5Cwindows%5Cwin.ini/history", (404, 422)),
        ("GET", "/accounts/%00", (422,)),
        ("GET", "/accounts/" + "a" * 10_000, (422,)),
        ("GET", "/accounts/' OR 1=1 --", (422,)),
        ("GET", "/accounts/00000000-0000-0000-0000-000000000000", (404,)),
        ("GET", "/deals/{account}", (404,)),  # an account's id where a deal's is expected
        ("GET", "/compliance/audit/export?format=../../etc/passwd", (422,)),
        ("POST", "/deals/..%2F{deal}/win", (404, 422)),
        ("POST", "/stakeholders/%2e%2e%2f%2e%2e%2f/title", (404, 422)),
        ("POST", "/compliance/stakeholders/..%2f..%2f/erasure", (404, 422)),
        ("DELETE", "/accounts/{account}", (405,)),
        ("PUT", "/deals/{deal}/win", (405,)),
    ],
)
def test_paths_that_name_no_entity_are_refused(world: World, method: str, path: str, statuses: tuple[int, ...]) -> None:
    refused(world, method, path, *statuses, json={"reason": "traversal"} if method != "GET" else None)


# --- unknown fields and wrong types -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**ACCOUNT, "is_admin": True}, "body/is_admin"),
        ({**ACCOUNT, "__proto__": {"admin": True}}, "body/__proto__"),
        ({**ACCOUNT, "Name": "case matters"}, "body/Name"),
        ({**ACCOUNT, "version": 1}, "body/version"),
    ],
)
def test_an_unknown_field_is_invalid_input(world: World, body: dict[str, Any], path: str) -> None:
    problem = refused(world, "POST", "/accounts", 422, json=body)
    assert [(e["path"], e["type"]) for e in problem["errors"]] == [(path, "extra_forbidden")]


def test_an_unknown_field_inside_a_value_is_invalid_input(world: World) -> None:
    amount = {"amount": "10", "currency": "CHF", "fx_rate": 1.1}
    problem = refused(
        world, "POST", "/deals", 422, json={**deal_body(world.account_id, world.hq_unit_id), "amount": amount}
    )
    assert [e["path"] for e in problem["errors"]] == ["body/amount/fx_rate"]


COMMANDS = {
    ("POST", "/accounts"): lambda w: dict(ACCOUNT),
    ("POST", "/deals"): lambda w: deal_body(w.account_id, w.hq_unit_id),
    ("POST", "/stakeholders"): lambda w: {
        "account_id": w.account_id,
        "unit_id": w.hq_unit_id,
        "title": "COO",
        "personal": {"name": "Li Wei", "email": "li.wei@customer.example", "phone": "+41 61 555 0100"},
    },
    ("POST", "/stakeholders/{stakeholder}/interactions"): lambda w: {
        "occurred_at": "2026-01-01T09:00:00+01:00",
        "channel": "call",
        "summary": "Budget",
    },
    ("POST", "/deals/{deal}/amount"): lambda w: {"amount": {"amount": "1", "currency": "CHF"}},
    ("POST", "/plans/{plan}/objectives"): lambda w: {
        "unit_id": w.hq_unit_id,
        "title": "Grow",
        "target": {"metric": "revenue", "value": "10", "currency": "CHF"},
        "due_date": "2027-12-31",
    },
}
"""Valid bodies of a few commands; every field of each gets a wrong type below."""


def json_types(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return json_types(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "anyOf" in schema or "oneOf" in schema:
        return set().union(*(json_types(s, components) for s in schema.get("anyOf", schema.get("oneOf", []))))
    if "type" in schema:
        return {schema["type"]}
    return {"string"} if "enum" in schema else {"object"}


def wrong_types(openapi: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """Every field of every command in COMMANDS, with values of a JSON type it cannot take."""
    components = openapi["components"]["schemas"]
    for method, template in COMMANDS:
        path = template.replace("{deal}", "{deal_id}").replace("{stakeholder}", "{stakeholder_id}")
        path = path.replace("{plan}", "{plan_id}")
        body_schema = openapi["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        model = components[body_schema["$ref"].rsplit("/", 1)[-1]]
        for field, schema in model["properties"].items():
            kinds = json_types(schema, components)
            if "object" in kinds:
                wrong: list[Any] = ["text", [1, 2]]
            elif "array" in kinds:
                wrong = [{"x": 1}, "text"]
            else:
                wrong = [{"x": 1}, [1, 2]]
            if field in model.get("required", []) and "null" not in kinds:
                wrong.append(None)
            for value in wrong:
                yield method, template, field, value


def test_a_wrong_type_in_any_field_of_a_command_is_invalid_input_at_that_field(world: World) -> None:
    checked = 0
    for method, template, field, value in wrong_types(world.client.app.openapi()):  # type: ignore[attr-defined]
        body = {**COMMANDS[(method, template)](world), field: value}
        problem = refused(world, method, template, 422, json=body)
        paths = [e["path"] for e in problem["errors"]]
        assert any(p == f"body/{field}" or p.startswith(f"body/{field}/") for p in paths), (
            template,
            field,
            value,
            paths,
        )
        checked += 1
    assert checked > 100


# --- absurd headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("", 400),
        ("*", 400),
        ('W/"1"', 400),
        ('"1", "2"', 400),
        ('"-1"', 400),
        ("1", 400),
        ('"1.5"', 400),
        ('"99999999999999"', 400),
        ('"0"', 412),
        ('"999999999999"', 412),
        ("null", 400),
        ('"' + "9" * 40, 422),  # longer than If-Match may be (40)
        ('"1"' + " " * 100, 422),
        (b'"\xe9"', 400),
    ],
)
def test_an_absurd_if_match_is_refused(world: World, value: str | bytes, status: int) -> None:
    problem = refused(
        world, "POST", "/deals/{deal}/probability", status, json={"probability": 5}, headers={"If-Match": value}
    )
    if status == 412:
        assert problem["current_version"] >= 1


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "x" * 100_000, "\x01\x02", b"\xe9t\xe9", "tab\there"])
def test_an_absurd_idempotency_key_is_invalid_input(world: World, key: str | bytes) -> None:
    problem = refused(world, "POST", "/accounts", 422, json=ACCOUNT, headers={"Idempotency-Key": key})
    assert [e["path"] for e in problem["errors"]] == ["header/Idempotency-Key"]


def test_an_idempotency_key_reused_for_another_body_is_refused(world: World) -> None:
    path = world.fill("/stakeholders/{stakeholder}")
    headers = {"Idempotency-Key": "bad-input-reuse", "If-Match": world.etag(path)}
    first = world.client.post(f"{path}/sentiment", json={"sentiment": 1}, headers=headers)
    assert first.status_code == 200, first.text
    refused(world, "POST", f"{path}/sentiment", 422, json={"sentiment": -1}, headers=headers)


FAR_FUTURE = 4_102_444_800
"""2100-01-01: a fixed expiry, so each token (and each test's id) is the same on every collection."""


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return "Bearer " + jwt.encode({"sub": "eve@example", "exp": FAR_FUTURE, **claims}, secret)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer a.b.c",
        "Bearer " + "A" * 100_000,
        "Basic dXNlcjpwYXNz",
        "Digest username=x",
        b"Bearer \xff\xfe",
        "bearer " + "x.y.z",
        hs256({"roles": ["admin"]}, secret="not-the-secret-" * 3),
        hs256({"roles": ["admin"], "exp": 1}),
        hs256({"roles": ["superuser"]}),
        hs256({"roles": "admin"}),
        hs256({"roles": ["admin", "gam"]}),  # a team role: rights on accounts come from their teams
        hs256({"roles": ["admin"], "sub": "nul\x00byte"}),
        hs256({"roles": ["admin"], "sub": "x" * 301}),
        hs256({"roles": ["admin"], "sub": 42}),
        "Bearer " + jwt.encode({"sub": "eve", "roles": ["admin"], "exp": 2**40}, None, algorithm="none"),
    ],
)
def test_an_absurd_authorization_is_401(world: World, authorization: str | bytes) -> None:
    headers = {"Authorization": authorization}
    problem = refused(world, "POST", "/accounts", 401, json=ACCOUNT, headers=headers)
    assert problem["title"] == "Unauthorized"
    refused(world, "GET", "/audit", 401, headers=headers)


@pytest.mark.parametrize("key", ["x", "x" * 100_000, b"\xff\xfe", " "])
def test_an_unknown_api_key_is_401(world: World, key: str | bytes) -> None:
    refused(world, "POST", "/accounts", 401, json=ACCOUNT, headers={"Authorization": "", "X-API-Key": key})


def test_an_overlong_correlation_id_is_invalid_input(world: World) -> None:
    problem = refused(world, "POST", "/accounts", 422, json=ACCOUNT, headers={"X-Correlation-ID": "c" * 101})
    assert [e["path"] for e in problem["errors"]] == ["header/X-Correlation-ID"]


# --- generated input ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)
GENERATED = settings(
    max_examples=int(os.environ.get("GAM_BAD_INPUT_MAX_EXAMPLES") or 60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""``GAM_BAD_INPUT_MAX_EXAMPLES=2000`` searches longer."""


def assert_answered(world: World, response: httpx.Response, before: int) -> None:
    """Stored, or refused with a problem and nothing stored; never a 5xx."""
    if response.status_code >= 300:
        assert_refused(response, *range(400, 500))
        assert world.events() == before, f"{response.request.url} stored events though it was refused"


@GENERATED
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    replaced=st.dictionaries(
        st.sampled_from(["name", "amount", "title", "personal", "occurred_at", "target"]), json_values
    ),
    extra=st.dictionaries(st.text(max_size=12), json_values, max_size=2),
    dropped=st.sets(st.sampled_from(["name", "account_id", "amount", "unit_id", "summary", "title"])),
)
def test_a_mangled_command_body_is_stored_or_refused_never_a_server_error(
    world: World, command: tuple[str, str], replaced: dict[str, Any], extra: dict[str, Any], dropped: set[str]
) -> None:
    method, template = command
    body = {k: v for k, v in {**COMMANDS[command](world), **replaced, **extra}.items() if k not in dropped}
    before = world.events()
    response = world.client.request(method, world.fill(template), content=json.dumps(body).encode(), headers=JSON)
    assert_answered(world, response, before)


@GENERATED
@given(name=st.text(st.characters(exclude_categories=()), min_size=0, max_size=320))
def test_any_text_as_a_name_is_kept_or_refused_at_its_path(world: World, name: str) -> None:
    """Kept as sent (trimmed, as the domain keeps names), or refused naming ``body/name``."""
    before = world.events()
    response = world.client.post("/accounts", content=json.dumps({**ACCOUNT, "name": name}).encode(), headers=JSON)
    if response.status_code == 201:
        stored = world.client.get(f"/accounts/{response.json()['entity_id']}").json()["state"]["name"]
        assert stored == name.strip()
        return
    problem = assert_refused(response, 422)
    assert world.events() == before
    assert [e["path"] for e in problem["errors"]] == ["body/name"]


MOMENT_QUERIES = [
    ("/accounts/{account}", "as_of"),
    ("/accounts/{account}/stakeholder-map", "as_of"),
    ("/audit", "since"),
    ("/audit", "until"),
    ("/compliance/accounts/{account}/as-of", "at"),
    ("/compliance/accounts/{account}/diff", "to"),
]


@GENERATED
@given(
    query=st.sampled_from(MOMENT_QUERIES),
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
    offset_minutes=st.integers(-1439, 1439),
)
def test_any_moment_with_any_offset_is_answered_never_a_server_error(
    world: World, query: tuple[str, str], moment: datetime, offset_minutes: int
) -> None:
    sign, minutes = ("+" if offset_minutes >= 0 else "-"), abs(offset_minutes)
    text = f"{moment.isoformat()}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    path, parameter = query
    before = world.events()
    response = world.client.get(world.fill(path), params={"from": "2027-01-01T00:00:00Z", parameter: text})
    assert response.status_code in (200, 404, 422), f"{text}: {response.status_code} {response.text[:300]}"
    assert_answered(world, response, before)


LATIN_1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",))


@GENERATED
@given(
    header=st.sampled_from(["If-Match", "Idempotency-Key", "Authorization", "X-API-Key", "X-Correlation-ID"]),
    value=st.text(LATIN_1, max_size=300),
)
def test_any_header_value_is_answered_never_a_server_error(world: World, header: str, value: str) -> None:
    path = world.fill("/deals/{deal}")
    headers = {"If-Match": world.etag(path), header: value.encode("latin-1")}
    before = world.events()
    response = world.client.post(f"{path}/probability", json={"probability": 40}, headers=headers)
    assert_answered(world, response, before)


@GENERATED
@given(
    segment=st.text(min_size=1, max_size=80),
    route=st.sampled_from(["/accounts/{}", "/deals/{}/win", "/entities/{}/history"]),
)
def test_any_text_as_an_id_is_answered_never_a_server_error(world: World, segment: str, route: str) -> None:
    method = "POST" if route.endswith("win") else "GET"
    before = world.events()
    response = world.client.request(
        method, route.format(quote(segment, safe="")), json={} if method == "POST" else None
    )
    assert_answered(world, response, before)


# --- the same on PostgreSQL ---------------------------------------------------------

REPRESENTATIVE: list[tuple[str, str, str, dict[str, Any], tuple[int, ...]]] = [
    ("a 5 MB body", "POST", "/accounts", {"content": b"x" * FIVE_MB, "headers": JSON}, (413,)),
    ("not UTF-8", "POST", "/accounts", {"content": b'{"name": "\xff\xfe"}', "headers": JSON}, (400, 422)),
    ("not JSON", "POST", "/deals", {"content": b'{"title": ', "headers": JSON}, (422,)),
    ("text/plain", "POST", "/accounts", {"content": VALID_ACCOUNT, "headers": {"Content-Type": "text/plain"}}, (422,)),
    (
        "10**100",
        "POST",
        "/stakeholders/{stakeholder}/influence",
        {"content": b'{"influence": 1' + b"0" * 100 + b"}", "headers": JSON},
        (422,),
    ),
    (
        "1e400",
        "POST",
        "/deals/{deal}/amount",
        {"content": b'{"amount": {"amount": 1e400, "currency": "CHF"}}', "headers": JSON},
        (422,),
    ),
    ("year 10000", "POST", "/deals/{deal}/close-date", {"json": {"expected_close": "10000-01-01"}}, (422,)),
    ("beyond UTC", "GET", "/accounts/{account}/view", {"params": {"as_of": BEYOND_UTC[0]}}, (422,)),
    ("NUL in a name", "POST", "/accounts", {"json": {**ACCOUNT, "name": "a\x00b"}}, (422,)),
    ("NUL in a filter", "GET", "/audit", {"params": {"actor": "\x00"}}, (422,)),
    ("SQL as an id", "GET", "/entities/' OR 1=1; DROP TABLE stored_events; --/history", {}, (422,)),
    ("traversal", "GET", "/deals/..%2F..%2Fetc%2Fpasswd", {}, (404, 422)),
    ("unknown field", "POST", "/accounts", {"json": {**ACCOUNT, "is_admin": True}}, (422,)),
    ("wrong type", "POST", "/stakeholders/{stakeholder}/sentiment", {"json": {"sentiment": {"x": 1}}}, (422,)),
    (
        "stale If-Match",
        "POST",
        "/deals/{deal}/probability",
        {"json": {"probability": 9}, "headers": {"If-Match": '"0"'}},
        (412,),
    ),
    (
        "If-Match *",
        "POST",
        "/deals/{deal}/probability",
        {"json": {"probability": 9}, "headers": {"If-Match": "*"}},
        (400,),
    ),
    ("Idempotency-Key", "POST", "/accounts", {"json": ACCOUNT, "headers": {"Idempotency-Key": "k" * 300}}, (422,)),
    ("Authorization", "POST", "/accounts", {"json": ACCOUNT, "headers": {"Authorization": "Bearer a.b.c"}}, (401,)),
]


def test_a_representative_sample_is_refused_on_each_store(world_on_store: World) -> None:
    world = world_on_store
    for label, method, path, request, statuses in REPRESENTATIVE:
        before = world.events()
        response = world.client.request(method, world.fill(path), **request)
        assert response.status_code in statuses, f"{label}: {response.status_code} {response.text[:300]}"
        assert_refused(response, *statuses)
        assert world.events() == before, f"{label} stored events"
    for text in SQL:
        matched = world.client.get("/audit", params={"actor": text})
        assert matched.status_code == 200, matched.text
        assert matched.json()["rows"] == []
        created = world.client.post("/accounts", json={**ACCOUNT, "name": text})
        assert created.status_code == 201, created.text
        assert world.client.get(f"/accounts/{created.json()['entity_id']}").json()["state"]["name"] == text
    assert world.client.get("/compliance/audit/verify").json()["intact"]
