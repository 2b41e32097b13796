"""``GET /me/worklist``: what it lists and what it leaves out, for the parts the
end-to-end scenario cannot reach over HTTP (a deal past its close date exists only
through a history recorded at an earlier moment)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from domain.metadata import EventMetadata
from domain.values import Money, PersonalData
from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.app import GamApplication
from tests.api_support import SECRET, token, wait_for_views

OWNER = "olga.owner@vendor.example"
OTHER = "otto.other@vendor.example"
THEN = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)


def at(moment: datetime, actor: str = OWNER) -> EventMetadata:
    return EventMetadata(actor=actor, at=moment, correlation_id=uuid4())


@dataclass
class Scene:
    client: TestClient
    account: UUID
    late_deal: UUID
    stale_person: UUID


def _deal(app: GamApplication, account: UUID, unit: UUID, title: str, owner: str) -> UUID:
    deal = uuid4()
    h.open_deal(app, at(THEN), deal_id=deal, account_id=account, unit_id=unit, title=title,
                amount=Money(Decimal(1000), "EUR"), expected_close=date(2020, 6, 30), owner=owner)  # fmt: skip
    return deal


def _person(app: GamApplication, account: UUID, unit: UUID, name: str, **ratings: Any) -> UUID:
    person = uuid4()
    h.identify_stakeholder(app, at(THEN), stakeholder_id=person, account_id=account, unit_id=unit, title="CFO",
                           personal=PersonalData(name))  # fmt: skip
    h.assign_relationship_owner(app, at(THEN), stakeholder_id=person, owner=OWNER)
    if "influence" in ratings:
        h.rate_influence(app, at(THEN), stakeholder_id=person, influence=ratings["influence"])
    if "role" in ratings:
        h.change_buying_role(app, at(THEN), stakeholder_id=person, role=ratings["role"])
    return person


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    api = create_app(Settings(store="memory", jwt_secret=SECRET))
    app: GamApplication = api.state.runtime.app
    account, hq = uuid4(), uuid4()
    h.create_account(app, at(THEN), account_id=account, hq_unit_id=hq, name="Late Co", industry="Steel",
                     hq_country="SE", reporting_currency="EUR")  # fmt: skip
    late = _deal(app, account, hq, "Furnace sensors", OWNER)
    _deal(app, account, hq, "Someone else's", OTHER)
    lost = _deal(app, account, hq, "Already lost", OWNER)
    h.lose_deal(app, at(THEN + timedelta(days=1)), deal_id=lost, loss_reason="Budget cut")
    stale = _person(app, account, hq, "Stina Stale", influence=5)
    recent = _person(app, account, hq, "Rolf Recent", role="decision_maker")
    now = datetime.now(UTC)
    h.log_interaction(app, at(now), stakeholder_id=recent, occurred_at=now - timedelta(days=2), channel="call",
                      summary="Budget talk")  # fmt: skip
    _person(app, account, hq, "Minor Person", influence=2)  # not key: never listed
    with TestClient(api) as client:
        wait_for_views(client)
        yield Scene(client, account, late, stale)


def test_my_deals_past_close_and_key_people_not_contacted(scene: Scene) -> None:
    mine = scene.client.get("/me/worklist", headers=token(OWNER)).json()
    assert mine["accounts"] == 1  # the creator leads the account
    assert [(d["deal_id"], d["expected_close"]) for d in mine["deals_past_expected_close"]] == [
        (str(scene.late_deal), "2020-06-30")
    ]
    assert mine["deals_past_expected_close"][0]["days_past"] > 365
    assert [(s["stakeholder_id"], s["last_contact"]) for s in mine["stakeholders_not_contacted"]] == [
        (str(scene.stale_person), None)
    ]
    assert mine["directives_awaiting_answer"] == mine["overdue_actions"] == mine["plans_awaiting_approval"] == []


def test_the_stale_window_is_the_callers_choice(scene: Scene) -> None:
    week = scene.client.get("/me/worklist", params={"stale_days": 1}, headers=token(OWNER)).json()
    assert sorted(s["name"] for s in week["stakeholders_not_contacted"]) == ["Rolf Recent", "Stina Stale"]
    bad = scene.client.get("/me/worklist", params={"stale_days": 0}, headers=token(OWNER))
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_someone_on_no_team_has_an_empty_worklist(scene: Scene) -> None:
    """Owning a deal is not being on the account's team: the worklist follows the team."""
    theirs = scene.client.get("/me/worklist", headers=token(OTHER)).json()
    assert theirs["accounts"] == 0
    assert theirs["deals_past_expected_close"] == []
