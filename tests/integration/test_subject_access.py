"""Right of access (GDPR Art. 15): a compliance officer asks what gam holds about a
person and gets all of it, from the service, over HTTP and from the CLI, on SQLite
and PostgreSQL; every request is recorded, and after erasure the person reads
``[erased]`` everywhere in the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.commands import OpenDeal
from domain.errors import NotFound
from domain.values import ERASED, Money, PersonalData
from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.bootstrap import Runtime, bootstrap
from services.cli import cli
from services.subject_access import ACCESS_BASIS, request_subject_access
from tests.api_support import SECRET, token
from tests.support import meta
from tests.unit.builders import build_org

NAME, EMAIL, PHONE = "Zelda Quixote", "zelda.q@customer.example", "+41 79 555 0199"
SUMMARY, NOTE = "Talked about the 2027 budget over lunch", "Signs off anything above EUR 1m"
EVIDENCE = "Wants the pilot to succeed, pushes it with the board"
SECRETS = (NAME, EMAIL, PHONE, SUMMARY, NOTE, EVIDENCE)


@dataclass(frozen=True)
class Person:
    stakeholder: UUID
    report: UUID
    deal: UUID
    other_deal: UUID
    mentioning_deal: UUID


def a_person_on_the_map(runtime: Runtime) -> Person:
    """A stakeholder with contact data, an interaction, a rating, someone reporting to
    them, a buying influence with a note and champion evidence on one deal, and a deal whose title names them
    (accepted with the personal-data guard on ``warn``, as data from before the guard may be)."""
    app = runtime.app
    org = build_org(app, with_plan=True)
    person = org.stakeholder(name=NAME)
    h.correct_personal_data(app, meta(), stakeholder_id=person, personal=PersonalData(NAME, EMAIL, PHONE))
    h.log_interaction(app, meta("carol@vendor.example"), stakeholder_id=person,
                      occurred_at=datetime(2027, 1, 2, tzinfo=UTC), channel="meeting", summary=SUMMARY)  # fmt: skip
    h.rate_influence(app, meta("dave@vendor.example"), stakeholder_id=person, influence=5)
    report = org.stakeholder(name="Bob Underling")
    h.set_reports_to(app, meta(), stakeholder_id=report, manager_id=person)
    deal, other = org.deal(), org.deal()
    h.attach_buying_influence(app, meta(), deal_id=deal, stakeholder_id=person, role="economic_buyer",
                              degree="high", note=NOTE)  # fmt: skip
    h.assess_qualification(app, meta(), deal_id=deal, element="champion", status="partial", stakeholder_id=person,
                           evidence=EVIDENCE)  # fmt: skip
    h.attach_buying_influence(app, meta(), deal_id=other, stakeholder_id=person, role="coach", degree="low")
    h.detach_buying_influence(app, meta("erin@vendor.example"), deal_id=other, stakeholder_id=person, role="coach")
    mentioning = uuid4()
    runtime.bus.handle(
        OpenDeal(deal_id=mentioning, account_id=org.account, unit_id=org.paris, title=f"Pilot for {NAME}'s plant",
                 amount=Money(Decimal("5000.00"), "EUR"), expected_close=date(2027, 6, 30),
                 owner="bob@vendor.example"),
        meta(),
    )  # fmt: skip
    return Person(person, report, deal, other, mentioning)


@pytest.fixture
def runtime(durable_settings: Settings) -> Iterator[Runtime]:
    runtime = bootstrap(durable_settings.model_copy(update={"personal_data_guard": "warn"}))
    yield runtime
    runtime.close()


def test_the_report_holds_everything_about_the_person_and_each_request_is_recorded(runtime: Runtime) -> None:
    person = a_person_on_the_map(runtime)
    asked_at = datetime(2027, 2, 1, tzinfo=UTC)
    report = request_subject_access(runtime.app, runtime.access_log, person.stakeholder,
                                    requested_by="dpo@vendor.example", legal_basis="Art. 15 request #12",
                                    at=asked_at)  # fmt: skip

    assert report["person"]["personal"] == {"name": NAME, "email": EMAIL, "phone": PHONE}
    assert report["person"]["influence"] == 5
    assert [i["summary"] for i in report["person"]["interactions"]] == [SUMMARY]
    assert report["deals"] == [
        {"deal_id": str(person.deal), "title": "Automation platform", "status": "open", "stage": "prospecting",
         "influences": [{"role": "economic_buyer", "degree": "high", "note": NOTE}],
         "evidence": [{"element": "champion", "status": "partial", "evidence": EVIDENCE}]},
    ]  # fmt: skip
    assert report["direct_reports"] == [str(person.report)]
    assert [(m["entity_id"], m["path"]) for m in report["mentions"]] == [(str(person.mentioning_deal), "/title")]
    history = [(e["event_type"], e["actor"]) for e in report["history"]]
    assert history == [
        ("Stakeholder.Identified", "alice@vendor.example"),
        ("Stakeholder.PersonalDataCorrected", "alice@vendor.example"),
        ("Stakeholder.InteractionLogged", "carol@vendor.example"),
        ("Stakeholder.InfluenceRated", "dave@vendor.example"),
        ("Deal.BuyingInfluenceAttached", "alice@vendor.example"),
        ("Deal.QualificationAssessed", "alice@vendor.example"),
        ("Deal.BuyingInfluenceAttached", "alice@vendor.example"),
        ("Deal.BuyingInfluenceDetached", "erin@vendor.example"),
    ]
    assert report["history"][-1]["entity_id"] == str(person.other_deal), "a detached influence is in the history only"
    assert report["history"][3]["fields"] == {"from_influence": None, "to_influence": 5}
    assert report["request"]["requested_by"] == "dpo@vendor.example"
    assert [r["legal_basis"] for r in report["access_requests"]] == ["Art. 15 request #12"]

    again = request_subject_access(runtime.app, runtime.access_log, person.stakeholder, requested_by="root",
                                   legal_basis=ACCESS_BASIS, at=datetime(2027, 2, 2, tzinfo=UTC))  # fmt: skip
    assert [(r["requested_by"], r["requested_at"]) for r in again["access_requests"]] == [
        ("dpo@vendor.example", "2027-02-01T00:00:00.000000Z"),
        ("root", "2027-02-02T00:00:00.000000Z"),
    ]
    with pytest.raises(NotFound):
        request_subject_access(runtime.app, runtime.access_log, uuid4(), requested_by="root",
                               legal_basis=ACCESS_BASIS, at=asked_at)  # fmt: skip
    assert len(runtime.access_log.requests()) == 2, "a request about nobody known is not recorded"
    assert runtime.access_log.requests(person.report) == []


def test_after_erasure_the_report_shows_the_erased_state_not_the_data(runtime: Runtime) -> None:
    person = a_person_on_the_map(runtime)
    h.erase_personal_data(runtime.app, meta("dpo@vendor.example"), stakeholder_id=person.stakeholder,
                          legal_basis="GDPR Art. 17 request #7")  # fmt: skip
    report = request_subject_access(runtime.app, runtime.access_log, person.stakeholder, requested_by="dpo",
                                    legal_basis=ACCESS_BASIS, at=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip

    text = json.dumps(report, ensure_ascii=False)
    assert not [secret for secret in SECRETS if secret in text]
    assert report["erased"] is True
    assert report["person"]["personal"]["name"] == ERASED
    assert report["person"]["influence"] == 5, "business facts stay"
    assert report["deals"][0]["influences"] == [{"role": "economic_buyer", "degree": "high", "note": ERASED}]
    assert report["deals"][0]["evidence"] == [{"element": "champion", "status": "partial", "evidence": ERASED}]
    assert report["mentions"] == []
    erasure = report["history"][-1]
    assert (erasure["event_type"], erasure["fields"]) == (
        "Stakeholder.PersonalDataErased",
        {"legal_basis": "GDPR Art. 17 request #7"},
    )


def test_over_http_only_compliance_may_ask_and_the_record_names_the_caller(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)
    writer = bootstrap(settings.model_copy(update={"personal_data_guard": "warn"}))
    person = a_person_on_the_map(writer)
    writer.close()
    url = f"/compliance/stakeholders/{person.stakeholder}/subject-access"
    with TestClient(create_app(settings)) as client:
        assert client.get(url).status_code == 401
        assert client.get(url, headers=token("gam@vendor.example", "account_creator", "viewer_all")).status_code == 403
        answer = client.get(url, params={"legal_basis": "Art. 15 #99"}, headers=token("dpo@vendor.example",
                                                                                      "compliance"))  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["person"]["personal"]["email"] == EMAIL
        assert client.get(url, headers=token("root", "admin")).status_code == 200
        missing = client.get(f"/compliance/stakeholders/{uuid4()}/subject-access", headers=token("root", "admin"))
        assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
        assert client.get(url, params={"legal_basis": ""}, headers=token("root", "admin")).status_code == 422
        listed = client.get("/compliance/subject-access-requests", params={"stakeholder_id": str(person.stakeholder)},
                            headers=token("auditor", "compliance")).json()["requests"]  # fmt: skip
        assert [(r["requested_by"], r["legal_basis"]) for r in listed] == [
            ("dpo@vendor.example", "Art. 15 #99"),
            ("root", ACCESS_BASIS),
        ]
        creator = token("gam", "account_creator")
        assert client.get("/compliance/subject-access-requests", headers=creator).status_code == 403


def test_from_the_cli_with_the_actor_and_legal_basis_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("GAM_STORE", "GAM_SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    writer = bootstrap(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", personal_data_guard="warn"))
    person = a_person_on_the_map(writer)
    writer.close()

    run = CliRunner().invoke(cli, ["subject-access", "stakeholder", str(person.stakeholder),
                                   "--legal-basis", "Art. 15 letter of 3 March"], env={"GAM_ACTOR": "dpo"})  # fmt: skip
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["person"]["personal"]["name"] == NAME
    assert report["request"]["legal_basis"] == "Art. 15 letter of 3 March"
    listed = CliRunner().invoke(cli, ["subject-access", "requests", "--stakeholder", str(person.stakeholder)])
    assert [(r["requested_by"], r["legal_basis"]) for r in json.loads(listed.stdout)] == [
        ("dpo", "Art. 15 letter of 3 March")
    ]
