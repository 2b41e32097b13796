"""Who may do what over HTTP, one boundary per test.

Every refusal is checked twice: by its status (401 when the credential is not
accepted, 403 when a valid caller lacks the right) and by the log, which must
not have grown. Every accepted write is checked for its actor: the stored event
and its audit row name the credential's subject.

One demo world on the in-memory store serves the module (two seeded accounts,
~0.6 s); tests write to different entities, so their order does not matter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from domain.account import GlobalAccount
from domain.deal import Deal
from domain.stakeholder import Stakeholder
from infra.settings import Settings
from services.api.app import create_app
from services.app import GamApplication
from services.demo import SeededAccount, demo_id, seed_account
from tests.api_support import ADMIN, SECRET, join_team, leave_team, token, wait_for_views

Headers = dict[str, str]
CRM_KEY = "crm-sync-key-" + "7" * 40
LEGACY_KEY = "legacy-key-with-a-role-nobody-knows"


@dataclass
class World:
    client: TestClient
    app: GamApplication
    a: SeededAccount  # "Nordwind Industrial Group"
    b: SeededAccount  # "Nordwind Industrial Group #1", a different customer

    def position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def etag(self, entity_path: str) -> str:
        response = self.client.get(entity_path, headers=ADMIN)
        assert response.status_code == 200, response.text
        return str(response.headers["etag"])

    def post(self, who: Headers, path: str, body: dict[str, Any], entity: str | None = None) -> httpx.Response:
        """A command from ``who``; a change carries the current ETag of ``entity``, so
        only access (or the credential) can refuse it."""
        headers = {**who, "If-Match": self.etag(entity)} if entity else who
        response: httpx.Response = self.client.post(path, json=body, headers=headers)
        return response

    def refused(
        self, status: int, who: Headers, path: str, body: dict[str, Any], entity: str | None = None
    ) -> httpx.Response:
        before = self.position()
        response = self.post(who, path, body, entity)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert self.position() == before, "a refused command stored events"
        return response

    def accepted(
        self, who: Headers, path: str, body: dict[str, Any], entity: str | None = None, status: int = 200
    ) -> httpx.Response:
        response = self.post(who, path, body, entity)
        assert response.status_code == status, response.text
        return response

    def assert_actor(self, entity_id: UUID | str, position: int, subject: str) -> None:
        """The stored event and its audit row name the caller's subject."""
        last = next(iter(self.app.events.get(UUID(str(entity_id)), desc=True, limit=1)))
        assert last.actor == subject  # type: ignore[attr-defined]
        params = {"entity_id": str(entity_id), "min_position": position, "after": position - 1}
        rows = self.client.get("/audit", params=params, headers=ADMIN).json()["rows"]
        assert [(row["position"], row["actor"]) for row in rows] == [(position, subject)]

    def assert_acted(self, response: httpx.Response, subject: str) -> None:
        accepted = response.json()
        self.assert_actor(accepted["entity_id"], accepted["position"], subject)


def unit(account: SeededAccount, *path: str) -> UUID:
    return demo_id(0 if account.account_id == demo_id(0, "account") else 1, "unit", *path)


def reads(account: SeededAccount) -> list[str]:
    """Every query about one account: entities, views, history and the audit trail."""
    a, deal, person = account.account_id, account.deal_ids[0], account.stakeholder_ids[0]
    return [
        f"/accounts/{a}",
        f"/accounts/{a}/view",
        f"/accounts/{a}/stakeholder-map",
        f"/accounts/{a}/pipeline",
        f"/plans/{account.plan_id}",
        f"/plans/{account.plan_id}/strategy-flow",
        f"/stakeholders/{person}",
        f"/deals/{deal}",
        f"/entities/{deal}/history",
        f"/entities/{a}/history",
        f"/audit?account_id={a}",
        f"/audit?entity_id={person}",
    ]


def probability(deal_id: UUID, value: int) -> tuple[str, dict[str, Any], str]:
    return f"/deals/{deal_id}/probability", {"probability": value}, f"/deals/{deal_id}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    keys_file = tmp_path_factory.mktemp("keys") / "api-keys.json"
    keys_file.write_text(
        json.dumps(
            [
                {
                    "sha256": hashlib.sha256(CRM_KEY.encode()).hexdigest().upper(),
                    "sub": "crm-sync",
                    "roles": ["gam"],
                    "accounts": [str(demo_id(0, "account"))],
                },
                {"sha256": hashlib.sha256(LEGACY_KEY.encode()).hexdigest(), "sub": "legacy", "roles": ["root"]},
            ]
        )
    )
    settings = Settings(store="memory", jwt_secret=SECRET, api_keys_file=keys_file, read_wait_seconds=10)
    api = create_app(settings)
    app: GamApplication = api.state.runtime.app  # the memory store lives in this application
    a, b = seed_account(app, 0), seed_account(app, 1)
    with TestClient(api) as client:
        wait_for_views(client)
        yield World(client, app, a, b)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jws(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token assembled by hand, for the forgeries PyJWT refuses to make."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return signing_input + "." + _b64(signature)


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "root@vendor.example", "roles": ["admin"], "exp": int(time.time()) + 3600}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _bearer(claims: dict[str, Any], key: str = SECRET) -> Headers:
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="HS256")}


UNACCEPTED: dict[str, Headers] = {
    "no credential": {},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic " + base64.b64encode(b"root:secret").decode()},
    "not a JWT": {"Authorization": "Bearer not-a-jwt"},
    "bad signature": token("root@vendor.example", "admin", secret="another-secret-another-secret-another!"),
    "expired": token("root@vendor.example", "admin", expires_in=-60),
    "not yet valid": _bearer(_claims(nbf=int(time.time()) + 3600)),
    "alg none": {"Authorization": "Bearer " + _jws({"alg": "none", "typ": "JWT"}, _claims(), None)},
    "missing sub": _bearer(_claims(sub=None)),
    "missing exp": _bearer(_claims(exp=None)),
    "exp not a time": _bearer(_claims(exp="tomorrow")),
    "blank sub": _bearer(_claims(sub="   ")),
    "sub with NUL": _bearer(_claims(sub="root\x00@vendor.example")),
    "sub too long": _bearer(_claims(sub="r" * 301)),
    "unknown role": _bearer(_claims(roles=["admin", "superuser"])),
    "roles not a list": _bearer(_claims(roles="admin")),
    "roles not names": _bearer(_claims(roles=[1])),
    "a team role in a token": _bearer(_claims(roles=["gam"])),
    "unknown API key": {"X-API-Key": "no-such-key"},
    "API key digest as key": {"X-API-Key": hashlib.sha256(CRM_KEY.encode()).hexdigest()},
    "API key with unknown role": {"X-API-Key": LEGACY_KEY},
    "good API key behind a bad bearer": {"X-API-Key": CRM_KEY, "Authorization": "Bearer not-a-jwt"},
}


@pytest.mark.parametrize("headers", UNACCEPTED.values(), ids=UNACCEPTED.keys())
def test_an_unaccepted_credential_is_401_and_stores_nothing(world: World, headers: Headers) -> None:
    deal = world.a.deal_ids[0]
    read = world.client.get(f"/deals/{deal}", headers=headers)
    assert read.status_code == 401
    refused = world.refused(401, headers, *probability(deal, 11))
    assert refused.headers["www-authenticate"] == "Bearer"
    assert world.client.get("/audit", headers=headers).status_code == 401


def test_a_viewer_of_all_reads_and_writes_nothing(world: World) -> None:
    """403, not 401: the credential is fine, the right is missing. One command per
    aggregate, and one of each kind that creates."""
    a = world.a
    account, plan, person = f"/accounts/{a.account_id}", f"/plans/{a.plan_id}", f"/stakeholders/{a.stakeholder_ids[6]}"
    france, lyon = unit(a, "FR"), unit(a, "FR", "Lyon plant")
    viewer = token("viewer@vendor.example", "viewer_all")
    for path in reads(a):
        assert world.client.get(path, headers=viewer).status_code == 200, path
    commands: list[tuple[str, dict[str, Any], str | None]] = [
        (f"{account}/units/{france}/rename", {"name": "France SAS"}, account),
        (f"{plan}/swot", {"kind": "threat", "text": "A new entrant", "unit_id": str(france)}, plan),
        (f"{person}/title", {"title": "Chief Executive Officer"}, person),
        probability(a.deal_ids[0], 55),
        (
            "/accounts",
            {"name": "Viewer's own", "industry": "Retail", "hq_country": "SE", "reporting_currency": "SEK"},
            None,
        ),
        (f"{account}/plans", {"fiscal_period": "FY2028"}, None),
        (
            "/stakeholders",
            {"account_id": str(a.account_id), "unit_id": str(france), "title": "CTO", "personal": {"name": "Eva Roux"}},
            None,
        ),
        (
            "/deals",
            {
                "account_id": str(a.account_id),
                "unit_id": str(lyon),
                "title": "Sensors",
                "amount": {"amount": "1000", "currency": "EUR"},
                "expected_close": "2099-06-30",  # opened now (the server's clock): far ahead stays valid
                "owner": "viewer@vendor.example",
            },
            None,
        ),
        (
            f"/compliance/stakeholders/{a.stakeholder_ids[6]}/erasure",
            {"legal_basis": "GDPR Art. 17"},
            f"/stakeholders/{a.stakeholder_ids[6]}",
        ),
    ]
    for path, body, entity in commands:
        problem = world.refused(403, viewer, path, body, entity)
        assert "www-authenticate" not in problem.headers
        world.refused(401, {}, path, body, entity)
    stranger = token("nobody@vendor.example")
    for path in reads(a):
        assert world.client.get(path, headers=stranger).status_code == 403, path


def test_a_specialist_on_the_team_reads_and_writes_nothing(world: World) -> None:
    b = world.b
    subject = "specialist.b@vendor.example"
    specialist = token(subject)
    assert world.client.get(f"/accounts/{b.account_id}", headers=specialist).status_code == 403
    join_team(world.client, b.account_id, subject, "specialist", unit(b, "FR"))
    for path in reads(b):
        assert world.client.get(path, headers=specialist).status_code == 200, path
    world.refused(403, specialist, *probability(b.deal_ids[0], 55))
    world.refused(403, specialist, f"/plans/{b.plan_id}/reopen", {}, f"/plans/{b.plan_id}")


def test_a_local_manager_answers_a_cascade_only_for_their_unit(world: World) -> None:
    a = world.a
    plan = f"/plans/{a.plan_id}"
    objective = demo_id(0, "objective", 0)  # HQ → EMEA → France, adopted all the way down
    france, lyon, paris = unit(a, "FR"), unit(a, "FR", "Lyon plant"), unit(a, "FR", "Paris office")
    regional = token("ram.emea@vendor.example")  # the demo's regional account manager of EMEA
    cascade = {"from_unit_id": str(france), "to_unit_ids": [str(lyon), str(paris)]}
    join_team(world.client, a.account_id, "lam.lyon@vendor.example", "local_am", lyon)
    lam = token("lam.lyon@vendor.example")
    answers = f"{plan}/objectives/{objective}/responses"

    world.refused(403, lam, f"{plan}/objectives/{objective}/cascade", cascade, plan)  # France is above Lyon
    world.accepted(regional, f"{plan}/objectives/{objective}/cascade", cascade, plan)
    world.refused(403, lam, answers, {"unit_id": str(paris), "answer": "adopted"}, plan)
    world.refused(403, lam, answers, {"unit_id": str(france), "answer": "adopted"}, plan)
    adapted = {
        "unit_id": str(lyon),
        "answer": "adapted",
        "rationale": "One plant, not ten",
        "local_title": "Lyon on the platform",
        "local_target": {"metric": "plants on platform", "value": "1"},
    }
    world.assert_acted(world.accepted(lam, answers, adapted, plan), "lam.lyon@vendor.example")
    world.refused(403, lam, *probability(a.deal_ids[1], 35))  # a deal at Paris
    world.assert_acted(world.accepted(lam, *probability(a.deal_ids[0], 35)), "lam.lyon@vendor.example")
    team, account = f"/accounts/{a.account_id}/team", f"/accounts/{a.account_id}"
    colleague = {"member": "lea.martin@vendor.example", "unit_id": str(lyon), "role": "local_am"}
    world.refused(403, lam, team, colleague, account)  # the lead GAM builds the team
    lead = token("gam.hoffmann@vendor.example")  # took the account on, so its lead GAM
    world.assert_acted(world.accepted(lead, team, colleague, account), "gam.hoffmann@vendor.example")

    leave_team(world.client, a.account_id, "lam.lyon@vendor.example", "local_am", lyon)
    world.refused(403, lam, *probability(a.deal_ids[0], 36))  # the right ended with the assignment
    assert world.client.get(account, headers=lam).status_code == 403


def test_a_regional_manager_writes_in_their_region_only(world: World) -> None:
    a = world.a
    account, plan = f"/accounts/{a.account_id}", f"/plans/{a.plan_id}"
    subject = "ram.emea@vendor.example"
    regional = token(subject)
    for path in reads(a):
        assert world.client.get(path, headers=regional).status_code == 200, path

    renamed = world.accepted(regional, f"{account}/units/{unit(a, 'GB')}/rename", {"name": "UK & Ireland"}, account)
    world.assert_acted(renamed, subject)
    world.assert_acted(world.accepted(regional, *probability(a.deal_ids[2], 45)), subject)  # Manchester, two below

    refusals: list[tuple[str, dict[str, Any], str | None]] = [
        (f"{account}/units/{unit(a, 'US')}/rename", {"name": "USA"}, account),  # another region
        probability(a.deal_ids[4], 45),  # Houston
        (f"{account}/units/{unit(a, 'HQ')}/rename", {"name": "Head office"}, account),  # above
        (
            f"{account}/units",
            {"parent_id": str(unit(a, "HQ")), "name": "Middle East", "level": "region", "code": "ME"},
            account,
        ),
        (f"{account}/team", {"member": subject, "unit_id": str(unit(a, "HQ")), "role": "gam"}, account),
        (f"{plan}/approve", {}, plan),  # about the plan as a whole
        (f"{plan}/submit", {}, plan),
        (f"{plan}/reopen", {"reason": "EMEA wants changes"}, plan),
        (f"{plan}/reviews", {"held_on": "2027-04-15", "participants": ["CFO"]}, plan),
        (f"{account}/archive", {}, account),
        (f"{account}/plans", {"fiscal_period": "FY2028"}, None),
    ]
    for path, body, entity in refusals:
        world.refused(403, regional, path, body, entity)


def test_a_gam_reaches_another_account_only_while_on_its_team(world: World) -> None:
    a, b = world.a, world.b
    subject = "gam.lindqvist@vendor.example"
    gam = token(subject)
    join_team(world.client, a.account_id, subject, "gam", unit(a, "HQ"))
    for path in reads(a):
        assert world.client.get(path, headers=gam).status_code == 200, path
    for path in [*reads(b), "/audit", f"/entities/{b.deal_ids[0]}/history"]:
        response = world.client.get(path, headers=gam)
        assert response.status_code == 403, path
        assert response.headers["content-type"] == "application/problem+json"
    world.refused(403, gam, *probability(b.deal_ids[0], 65))
    world.refused(403, gam, f"/plans/{b.plan_id}/reopen", {}, f"/plans/{b.plan_id}")
    person = {"account_id": str(b.account_id), "unit_id": str(unit(b, "HQ")), "title": "CEO"}
    world.refused(403, gam, "/stakeholders", {**person, "personal": {"name": "Ola Nordmann"}})
    world.assert_acted(world.accepted(gam, *probability(a.deal_ids[7], 65)), subject)
    world.refused(403, gam, f"/accounts/{a.account_id}/archive", {}, f"/accounts/{a.account_id}")  # the lead's

    join_team(world.client, b.account_id, subject, "gam", unit(b, "HQ"))
    for path in reads(b):
        assert world.client.get(path, headers=gam).status_code == 200, path
    world.assert_acted(world.accepted(gam, *probability(b.deal_ids[0], 65)), subject)
    assert world.client.get("/audit", headers=gam).status_code == 403  # the whole trail is compliance's
    leave_team(world.client, b.account_id, subject, "gam", unit(b, "HQ"))
    world.refused(403, gam, *probability(b.deal_ids[0], 66))
    assert world.client.get(f"/deals/{b.deal_ids[0]}", headers=gam).status_code == 403


def test_an_executive_sponsor_reads_and_approves_but_changes_nothing_else(world: World) -> None:
    a = world.a
    sponsor = token("cro@vendor.example")  # the demo's executive sponsor
    for path in reads(a):
        assert world.client.get(path, headers=sponsor).status_code == 200, path
    world.refused(403, sponsor, *probability(a.deal_ids[3], 45))
    account = f"/accounts/{a.account_id}"
    world.refused(403, sponsor, f"{account}/units/{unit(a, 'GB')}/rename", {"name": "Britain"}, account)
    reopened = world.accepted(sponsor, f"/plans/{a.plan_id}/reopen", {"reason": "Q2 re-plan"}, f"/plans/{a.plan_id}")
    world.assert_acted(reopened, "cro@vendor.example")


def test_creating_an_account_needs_the_account_creator_role_and_makes_the_creator_its_lead(world: World) -> None:
    body = {"name": "Creator Co", "industry": "Energy", "hq_country": "NO", "reporting_currency": "NOK"}
    world.refused(403, token("someone@vendor.example"), "/accounts", body)
    creator = token("new.gam@vendor.example", "account_creator")
    created = world.accepted(creator, "/accounts", body, status=201)
    account_id = created.json()["entity_id"]
    team = world.client.get(f"/accounts/{account_id}/team", headers=creator).json()
    assert [(m["member"], m["manages_team"], m["approves_plans"]) for m in team["members"]] == [
        ("new.gam@vendor.example", True, True)
    ]
    assert [e.__class__.__name__ for e in world.app.events.get(UUID(account_id))] == ["Created"]  # the lead in it
    other = token("other.creator@vendor.example", "account_creator")
    assert world.client.get(f"/accounts/{account_id}", headers=other).status_code == 403


def test_who_could_change_the_account_is_answered_as_of_a_moment(world: World) -> None:
    b = world.b
    subject = "ram.temp@vendor.example"
    path = f"/accounts/{b.account_id}/team"
    join_team(world.client, b.account_id, subject, "regional_am", unit(b, "EMEA"))
    time.sleep(0.01)
    while_on = datetime.now(UTC)
    time.sleep(0.01)
    leave_team(world.client, b.account_id, subject, "regional_am", unit(b, "EMEA"))

    def members(params: dict[str, str]) -> dict[str, Any]:
        response = world.client.get(path, params=params, headers=token("dpo@vendor.example", "compliance"))
        assert response.status_code == 200, response.text
        return {m["member"]: m for m in response.json()["members"]}

    then, now = members({"as_of": while_on.isoformat()}), members({})
    assert subject in then
    assert subject not in now
    assert str(unit(b, "GB")) in then[subject]["changes_units"]
    assert str(unit(b, "US")) not in then[subject]["changes_units"]
    assert then["gam.hoffmann@vendor.example"]["changes_whole_account"]
    before = world.client.get(path, params={"as_of": "2000-01-01T00:00:00Z"}, headers=ADMIN)
    assert before.status_code == 404
    assert world.client.get(path, headers=token(subject)).status_code == 403


def test_compliance_reads_everything_and_writes_only_erasures(world: World) -> None:
    a, b = world.a, world.b
    subject = "dpo@vendor.example"
    auditor = token(subject, "compliance")
    for path in [*reads(a), *reads(b), "/audit", "/compliance/audit/verify"]:
        assert world.client.get(path, headers=auditor).status_code == 200, path
    world.refused(403, auditor, *probability(a.deal_ids[5], 15))
    world.refused(403, auditor, f"/plans/{a.plan_id}/reopen", {}, f"/plans/{a.plan_id}")
    new_account = {"name": "Audit Co", "industry": "Audit", "hq_country": "DE", "reporting_currency": "EUR"}
    world.refused(403, auditor, "/accounts", new_account)
    person = b.stakeholder_ids[7]
    world.refused(403, auditor, f"/stakeholders/{person}/title", {"title": "Ex-CPO"}, f"/stakeholders/{person}")
    erasure = f"/compliance/stakeholders/{person}/erasure"
    erased = world.accepted(auditor, erasure, {"legal_basis": "GDPR Art. 17 #12"}, f"/stakeholders/{person}")
    world.assert_actor(person, erased.json()["position"], subject)
    assert world.app.load(Stakeholder, person).erased


def test_an_admin_does_everything(world: World) -> None:
    a, b = world.a, world.b
    subject = "root@vendor.example"
    for path in [*reads(a), *reads(b), "/audit", "/compliance/audit/verify"]:
        assert world.client.get(path, headers=ADMIN).status_code == 200, path
    world.assert_acted(
        world.accepted(ADMIN, f"/plans/{b.plan_id}/reopen", {"reason": "Re-plan"}, f"/plans/{b.plan_id}"), subject
    )
    world.assert_acted(world.accepted(ADMIN, *probability(b.deal_ids[5], 25)), subject)
    new_account = {"name": "Admin Co", "industry": "Energy", "hq_country": "NO", "reporting_currency": "NOK"}
    created = world.accepted(ADMIN, "/accounts", new_account, status=201)
    world.assert_acted(created, subject)
    assert world.app.load(GlobalAccount, UUID(created.json()["entity_id"])).name == "Admin Co"
    person = a.stakeholder_ids[8]
    erasure = f"/compliance/stakeholders/{person}/erasure"
    erased = world.accepted(ADMIN, erasure, {"legal_basis": "Art. 17"}, f"/stakeholders/{person}")
    world.assert_actor(person, erased.json()["position"], subject)


def test_an_api_key_acts_with_its_grants(world: World) -> None:
    a, b = world.a, world.b
    crm = {"X-API-Key": CRM_KEY}
    for path in reads(a):
        assert world.client.get(path, headers=crm).status_code == 200, path
    for path in reads(b):
        assert world.client.get(path, headers=crm).status_code == 403, path
    world.assert_acted(world.accepted(crm, *probability(a.deal_ids[6], 70)), "crm-sync")
    world.refused(403, crm, *probability(b.deal_ids[6], 70))
    assert world.app.load(Deal, b.deal_ids[6]).probability != 70


def _key_pair(algorithm: str) -> tuple[Any, bytes]:
    """A private key for ``algorithm`` and its public key as PEM."""
    if algorithm == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_tokens_signed_by_an_identity_provider(tmp_path: Path, algorithm: str) -> None:
    """With GAM_JWT_PUBLIC_KEY_FILE only the provider's signatures count: not the
    shared secret, not another key, not an HMAC made with the public key."""
    private, public = _key_pair(algorithm)
    other, _ = _key_pair(algorithm)
    (tmp_path / "idp.pem").write_bytes(public)
    settings = Settings(store="memory", jwt_secret=SECRET, jwt_public_key_file=tmp_path / "idp.pem")

    def signed(key: Any, roles: list[str], expires_in: int = 3600) -> Headers:
        claims = _claims(sub="ops@vendor.example", roles=roles, exp=int(time.time()) + expires_in)
        return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm=algorithm)}

    body = {"name": "Provider Co", "industry": "Logistics", "hq_country": "NL", "reporting_currency": "EUR"}
    api = create_app(settings)
    app: GamApplication = api.state.runtime.app
    with TestClient(api) as client:
        confused = {"Authorization": "Bearer " + _jws({"alg": "HS256", "typ": "JWT"}, _claims(), public)}
        for refused in (ADMIN, signed(other, ["admin"]), signed(private, ["admin"], -60), confused):
            response = client.post("/accounts", json=body, headers=refused)
            assert response.status_code == 401, response.text
        assert client.post("/accounts", json=body, headers=signed(private, ["viewer_all"])).status_code == 403
        assert (app.recorder.max_notification_id() or 0) == 0
        created = client.post("/accounts", json=body, headers=signed(private, ["admin"]))
        assert created.status_code == 201, created.text
        account = app.load(GlobalAccount, UUID(created.json()["entity_id"]))
        assert [e.actor for e in app.events.get(account.id)] == ["ops@vendor.example"]  # type: ignore[attr-defined]


@pytest.fixture
def jwks_served(tmp_path: Path) -> Iterator[tuple[Any, Path, str]]:
    """An identity provider's RSA key, its JWKS as a file and served over loopback HTTP."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    private, _ = _key_pair("RS256")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}))
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield private, tmp_path / "jwks.json", f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("source", ["file", "url"])
def test_tokens_from_an_identity_provider_jwks_with_issuer_and_audience(
    jwks_served: tuple[Any, Path, str], source: str
) -> None:
    private, jwks_file, jwks_url = jwks_served
    where: dict[str, Any] = {"jwt_jwks_file": jwks_file} if source == "file" else {"jwt_jwks_url": jwks_url}
    settings = Settings(
        store="memory", jwt_secret=SECRET, jwt_issuer="https://idp.example", jwt_audience="gam-api", **where
    )

    def signed(kid: str = "idp-1", key: Any = private, **changes: Any) -> Headers:
        claims = _claims(sub="idp.user@vendor.example", roles=["account_creator"], iss="https://idp.example")
        claims = {**claims, "aud": "gam-api", **changes}
        claims = {name: value for name, value in claims.items() if value is not None}
        return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})}

    other, _ = _key_pair("RS256")
    body = {"name": "IdP Co", "industry": "Logistics", "hq_country": "NL", "reporting_currency": "EUR"}
    api = create_app(settings)
    app: GamApplication = api.state.runtime.app
    with TestClient(api) as client:
        for refused in (
            ADMIN,  # the shared secret no longer counts
            signed(key=other),
            signed(iss="https://evil.example"),
            signed(iss=None),
            signed(aud="another-api"),
            signed(aud=None),
            signed(kid="unknown-kid"),
        ):
            response = client.post("/accounts", json=body, headers=refused)
            assert response.status_code == 401, response.text
        assert (app.recorder.max_notification_id() or 0) == 0
        created = client.post("/accounts", json=body, headers=signed())
        assert created.status_code == 201, created.text
        team = client.get(f"/accounts/{created.json()['entity_id']}/team", headers=signed()).json()
        assert [m["member"] for m in team["members"]] == ["idp.user@vendor.example"]
