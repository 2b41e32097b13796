"""A GAM team's working day over real HTTP, against ``gam serve`` as its own process,
from an empty store: no ids are known in advance and no token names an account.

A lead GAM (holding only the global ``account_creator`` role) takes an account on,
builds its unit tree and team, sets and cascades an objective; the regional
manager passes it down; one local manager adopts, the other declines and is asked
to reconsider and answers again; the plan is submitted, refused to its submitter,
and approved by the executive sponsor; a change after approval shows in "changed
since baseline"; each person's worklist shows their items at each step; a removed
member loses access, and "who was on the team" is answered as of a moment.
Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.api_support import token
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import ApiServer, gam_env

LEAD = "lena.lead@vendor.example"
SPONSOR = "sam.sponsor@vendor.example"
REGIONAL = "rita.emea@vendor.example"
LYON = "louis.lyon@vendor.example"
PARIS = "paula.paris@vendor.example"
STRANGER = "nobody@vendor.example"


class Person:
    """One caller of the running API, with their own token; every read waits for the
    position of the last write anyone made (``min_position``)."""

    def __init__(self, http: httpx.Client, subject: str, *roles: str, last: list[int]) -> None:
        self.http, self.subject, self.headers, self.last = http, subject, token(subject, *roles), last

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers)

    def read(self, path: str, **params: Any) -> Any:
        response = self.get(path, min_position=self.last[0], **params)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, path: str, body: dict[str, Any], entity: str | None = None) -> httpx.Response:
        headers = dict(self.headers)
        if entity is not None:
            headers["If-Match"] = self.http.get(entity, headers=token("e2e@vendor.example", "admin")).headers["etag"]
        response = self.http.post(path, json=body, headers=headers)
        if response.status_code in (200, 201):
            self.last[0] = max(self.last[0], response.json()["position"])
        return response

    def do(self, path: str, body: dict[str, Any], entity: str | None = None) -> dict[str, Any]:
        response = self.send(path, body, entity)
        assert response.status_code in (200, 201), f"{self.subject}: {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def worklist(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.read("/me/worklist")
        return answer


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
        env = gam_env(settings, GAM_SQLITE_PATH=str(tmp_path / "gam.db"))
    else:
        settings = fresh_settings(request.getfixturevalue("postgres_dsn"))
        env = gam_env(settings)
    api = ApiServer(env, tmp_path)
    try:
        api.start()
        yield api.base_url
    finally:
        api.stop()
        if settings.store == "postgres":
            drop_schema(settings)
    assert "Traceback" not in api.log.read_text(), api.tail()


def test_a_team_works_an_account_from_nothing(server: str) -> None:
    last = [0]
    with httpx.Client(base_url=server, timeout=30) as http:
        lead, sponsor, regional, lyon, paris, stranger = (
            Person(http, LEAD, "account_creator", last=last),
            Person(http, SPONSOR, last=last),
            Person(http, REGIONAL, last=last),
            Person(http, LYON, last=last),
            Person(http, PARIS, last=last),
            Person(http, STRANGER, last=last),
        )
        # Taking the account on: the server chooses every id; the creator leads the team.
        body = {"name": "Rhône Industries", "industry": "Chemicals", "hq_country": "FR", "reporting_currency": "EUR"}
        assert stranger.send("/accounts/onboarding", {**body, "fiscal_period": "FY2027"}).status_code == 403
        onboarded = lead.do("/accounts/onboarding", {**body, "fiscal_period": "FY2027"})
        account_id, plan_id = onboarded["entity_id"], onboarded["created_id"]
        account, plan = f"/accounts/{account_id}", f"/plans/{onboarded['created_id']}"
        hq = lead.read(f"{account}/view")["view"]["unit_tree"][0]["unit_id"]

        def unit(parent: str, name: str, level: str, code: str) -> str:
            body = {"parent_id": parent, "name": name, "level": level, "code": code}
            return str(lead.do(f"{account}/units", body, account)["created_id"])

        emea = unit(hq, "EMEA", "region", "EMEA")
        france = unit(emea, "France", "country", "FR")
        lyon_site, paris_site = unit(france, "Lyon plant", "local", "FR"), unit(france, "Paris office", "local", "FR")
        assert regional.get(account).status_code == 403  # not on the team yet
        for member, unit_id, role in (
            (SPONSOR, hq, "executive_sponsor"),
            (REGIONAL, emea, "regional_am"),
            (LYON, lyon_site, "local_am"),
            (PARIS, paris_site, "local_am"),
        ):
            assignment = {"member": member, "unit_id": unit_id, "role": role}
            assert regional.send(f"{account}/team", assignment, account).status_code == 403  # the lead's to build
            lead.do(f"{account}/team", {"member": member, "unit_id": unit_id, "role": role}, account)
        team = {m["member"]: m for m in lead.read(f"{account}/team")["members"]}
        assert set(team) == {LEAD, SPONSOR, REGIONAL, LYON, PARIS}
        assert team[LEAD]["manages_team"]
        assert team[LEAD]["changes_whole_account"]
        assert set(team[REGIONAL]["changes_units"]) == {emea, france, lyon_site, paris_site}
        assert team[LYON]["changes_units"] == [lyon_site]
        assert team[SPONSOR]["approves_plans"]
        assert not team[REGIONAL]["approves_plans"]

        # The objective goes down: HQ → EMEA (adopted) → the Lyon and Paris sites.
        objective_body = {
            "unit_id": hq, "title": "Digital services revenue", "due_date": "2027-12-31",
            "target": {"metric": "revenue", "value": "1200000", "currency": "EUR"},
        }  # fmt: skip
        objective = lead.do(f"{plan}/objectives", objective_body, plan)["created_id"]
        answers = f"{plan}/objectives/{objective}/responses"
        lead.do(f"{plan}/objectives/{objective}/cascade", {"from_unit_id": hq, "to_unit_ids": [emea]}, plan)
        assert [d["unit_id"] for d in regional.worklist()["directives_awaiting_answer"]] == [emea]
        assert lyon.worklist()["directives_awaiting_answer"] == []
        regional.do(answers, {"unit_id": emea, "answer": "adopted"}, plan)
        cascade = {"from_unit_id": emea, "to_unit_ids": [lyon_site, paris_site]}
        assert lyon.send(f"{plan}/objectives/{objective}/cascade", cascade, plan).status_code == 403
        regional.do(f"{plan}/objectives/{objective}/cascade", cascade, plan)
        waiting = lyon.worklist()["directives_awaiting_answer"]
        assert [(d["unit"], d["objective"], d["days_waiting"], d["overdue"]) for d in waiting] == [
            ("Lyon plant", "Digital services revenue", 0, False)
        ]
        assert waiting[0]["answer_due"] > datetime.now(UTC).date().isoformat()
        assert [d["unit"] for d in paris.worklist()["directives_awaiting_answer"]] == ["Paris office"]
        assert regional.worklist()["directives_awaiting_answer"] == []

        # Lyon adopts; Paris declines, is asked to reconsider, and adapts.
        assert lyon.send(answers, {"unit_id": paris_site, "answer": "adopted"}, plan).status_code == 403
        lyon.do(answers, {"unit_id": lyon_site, "answer": "adopted"}, plan)
        paris.do(answers, {"unit_id": paris_site, "answer": "declined", "rationale": "No budget in Paris"}, plan)
        assert paris.worklist()["directives_awaiting_answer"] == []
        reconsider = {"unit_id": paris_site, "note": "Paris is half of the French revenue"}
        assert paris.send(f"{plan}/objectives/{objective}/reconsider", reconsider, plan).status_code == 403
        regional.do(f"{plan}/objectives/{objective}/reconsider", reconsider, plan)
        (again,) = paris.worklist()["directives_awaiting_answer"]
        assert again["reconsider_note"] == "Paris is half of the French revenue"
        adapted = {
            "unit_id": paris_site, "answer": "adapted", "rationale": "A smaller office",
            "local_title": "Digital services in Paris", "local_target": {"metric": "revenue", "value": "300000",
                                                                         "currency": "EUR"},
        }  # fmt: skip
        paris.do(answers, adapted, plan)
        flow = lead.read(f"{plan}/strategy-flow")["flow"]
        to_paris = [
            (f["kind"], f.get("rationale") or f.get("note")) for f in flow["flows"] if f["unit_id"] == paris_site
        ]
        assert to_paris == [
            ("directive", None),
            ("declined", "No budget in Paris"),
            ("reconsider", "Paris is half of the French revenue"),
            ("adapted", "A smaller office"),
        ]

        # Work that is late, and a key person nobody has called.
        action = {
            "objective_id": objective, "unit_id": lyon_site, "title": "Kick-off with the plant manager",
            "owner": LYON, "due_date": "2020-01-31",
        }  # fmt: skip
        lead.do(f"{plan}/actions", action, plan)
        person = lead.do(
            "/stakeholders",
            {"account_id": account_id, "unit_id": hq, "title": "CFO", "personal": {"name": "Claire Martin"}},
        )["entity_id"]
        lead.do(f"/stakeholders/{person}/owner", {"owner": LEAD}, f"/stakeholders/{person}")
        lead.do(f"/stakeholders/{person}/influence", {"influence": 5}, f"/stakeholders/{person}")
        assert [(a["title"], a["due_date"]) for a in lyon.worklist()["overdue_actions"]] == [
            ("Kick-off with the plant manager", "2020-01-31")
        ]
        assert [(s["name"], s["last_contact"]) for s in lead.worklist()["stakeholders_not_contacted"]] == [
            ("Claire Martin", None)
        ]

        # Submitted by the lead, who may not approve it; the regional manager may not either.
        lead.do(f"{plan}/submit", {}, plan)
        own = lead.send(f"{plan}/approve", {}, plan)
        assert (own.status_code, own.json()["rule"]) == (403, "self_approval")
        assert regional.send(f"{plan}/approve", {}, plan).status_code == 403
        assert lead.worklist()["plans_awaiting_approval"] == []
        assert [(p["plan_id"], p["submitted_by"]) for p in sponsor.worklist()["plans_awaiting_approval"]] == [
            (plan_id, LEAD)
        ]
        sponsor.do(f"{plan}/approve", {}, plan)
        assert sponsor.worklist()["plans_awaiting_approval"] == []

        # After approval, a change is recorded against the baseline.
        assert lead.read(f"{plan}/changes-since-baseline")["changes"] == []
        lyon.do(f"{plan}/objectives/{objective}/progress", {"unit_id": lyon_site, "percent": 25}, plan)
        since = lead.read(f"{plan}/changes-since-baseline")
        assert [(c["event_type"], c["actor"]) for c in since["changes"]] == [("AccountPlan.ProgressReported", LYON)]

        # A member taken off the team loses access; the team as it stood is still answered.
        on_team = datetime.now(UTC)
        time.sleep(0.01)
        lead.do(f"{account}/team/remove", {"member": PARIS, "unit_id": paris_site, "role": "local_am"}, account)
        assert paris.get(account).status_code == 403
        assert paris.send(answers, {"unit_id": paris_site, "answer": "adopted"}, plan).status_code == 403
        then = {m["member"] for m in lead.read(f"{account}/team", as_of=on_team.isoformat())["members"]}
        now = {m["member"] for m in lead.read(f"{account}/team")["members"]}
        assert (PARIS in then, PARIS in now) == (True, False)
        assert stranger.get(f"{account}/team").status_code == 403
