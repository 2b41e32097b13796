"""The personal-data guard on every business free-text field of every command (the
list read from the command registry), through the bus, over HTTP (one command and a
batch) and from an import file; warn and off; personal free text is left alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain import commands as c
from domain.commands import COMMANDS, Command
from domain.errors import DomainError, PersonalDataInText
from domain.personal_text import TextKind
from domain.values import Money, PersonalData, Target
from infra.read_check import StaleRead
from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.bootstrap import Runtime, bootstrap
from services.bus import BatchRefused, Session
from services.cli import cli
from tests.api_support import SECRET, token
from tests.support import meta
from tests.unit.builders import DUE, Org, build_org

NAME = "Zelda Quixote"
BAD = {
    "an e-mail address": "ask zelda.q@customer.example",
    "a phone number": "call +41 79 555 0199",
    "the name of one of the account's stakeholders": f"as {NAME.upper()} said",
}


@dataclass(frozen=True)
class World:
    org: Org
    person: UUID
    erasable: UUID
    objective: UUID
    deal: UUID


SAMPLES: dict[type[Command], Callable[[World], Command]] = {
    c.SetObjective: lambda w: c.SetObjective(plan_id=w.org.plan, unit_id=w.org.hq, title="Grow services",
                                             target=Target("revenue", Decimal(1000), "EUR"), due_date=DUE),
    c.RespondToCascade: lambda w: c.RespondToCascade(plan_id=w.org.plan, objective_id=w.objective,
                                                     unit_id=w.org.emea, answer="declined", rationale="Too small"),
    c.ReportProgress: lambda w: c.ReportProgress(plan_id=w.org.plan, objective_id=w.objective, unit_id=w.org.hq,
                                                 percent=10, comment="On track"),
    c.AddAction: lambda w: c.AddAction(plan_id=w.org.plan, objective_id=w.objective, unit_id=w.org.hq,
                                       title="Workshop", owner="bob@vendor.example", due_date=DUE),
    c.AddSwotEntry: lambda w: c.AddSwotEntry(plan_id=w.org.plan, kind="strength", text="Installed base"),
    c.HoldBusinessReview: lambda w: c.HoldBusinessReview(plan_id=w.org.plan, held_on=date(2027, 1, 10),
                                                         participants=("CFO",), decisions=("Pilot",),
                                                         follow_up_actions=("Send offer",)),
    c.IdentifyStakeholder: lambda w: c.IdentifyStakeholder(account_id=w.org.account, unit_id=w.org.hq, title="CFO",
                                                           personal=PersonalData("Olga Other")),
    c.ChangeStakeholderTitle: lambda w: c.ChangeStakeholderTitle(stakeholder_id=w.person, title="COO"),
    c.ErasePersonalData: lambda w: c.ErasePersonalData(stakeholder_id=w.erasable, legal_basis="Art. 17 #1"),
    c.OpenDeal: lambda w: c.OpenDeal(account_id=w.org.account, unit_id=w.org.paris, title="Sensors",
                                     amount=Money(Decimal(1000), "EUR"), expected_close=date(2099, 1, 1),
                                     owner="bob@vendor.example"),
    c.AssessQualification: lambda w: c.AssessQualification(deal_id=w.deal, element="metrics", status="confirmed",
                                                           evidence="ROI of 3 years"),
    c.LoseDeal: lambda w: c.LoseDeal(deal_id=w.deal, loss_reason="Price"),
    c.AskToReconsider: lambda w: c.AskToReconsider(plan_id=w.org.plan, objective_id=w.objective, unit_id=w.org.emea,
                                                   note="Lyon alone carries half of it"),
}  # fmt: skip
"""A command of each type with checked text, about the world's entities."""

CHECKED = [
    (kind, field)
    for kind in COMMANDS
    for field, text in kind.text_fields().items()
    if text is TextKind.CHECKED and kind in SAMPLES and SAMPLES[kind] is not None
]


def test_every_command_with_checked_text_has_a_sample() -> None:
    with_checked = {k for k in COMMANDS if TextKind.CHECKED in k.text_fields().values()}
    assert with_checked == set(SAMPLES), "add a sample for the new command with business free text"


def a_world(runtime: Runtime) -> World:
    org = build_org(runtime.app)
    person, erasable = org.stakeholder(name=NAME), org.stakeholder(name="Erik Erasable")
    objective = org.objective()
    org.cascade(objective, org.hq, org.emea)
    return World(org, person, erasable, objective, org.deal())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    runtime = bootstrap(Settings(store="memory"))
    yield a_world(runtime)
    runtime.close()


def with_text(command: Command, field: str, text: str) -> Command:
    value: Any = (text,) if isinstance(getattr(command, field), tuple) else text
    return replace(command, **{field: value})


@pytest.mark.parametrize(("kind", "field"), CHECKED, ids=[f"{k.__name__}.{f}" for k, f in CHECKED])
@pytest.mark.parametrize("found", list(BAD))
def test_business_text_holding_personal_data_is_refused_naming_the_field(
    world: World, kind: type[Command], field: str, found: str
) -> None:
    app = world.org.app
    sample = SAMPLES[kind](world)
    bus = h.bus_for(app)
    before = app.recorder.max_notification_id()
    with pytest.raises(PersonalDataInText) as refused:
        bus.handle(with_text(sample, field, BAD[found]), meta())
    path = f"{field}.0" if isinstance(getattr(sample, field), tuple) else field
    assert refused.value.field == path
    assert found in str(refused.value)
    assert "zelda" not in str(refused.value).casefold()
    assert app.recorder.max_notification_id() == before
    refusals: list[DomainError] = []
    try:  # the same command with plain text passes the guard (its own rules may still refuse it)
        bus.handle(with_text(sample, field, "Plain business words"), meta())
    except DomainError as other:
        refusals.append(other)
    assert not [r for r in refusals if isinstance(r, PersonalDataInText)]


def test_the_reason_is_checked_too(world: World) -> None:
    with pytest.raises(PersonalDataInText) as refused:
        h.change_deal_probability(world.org.app, meta(reason=f"{NAME} asked for it"), deal_id=world.deal,
                                  probability=40)  # fmt: skip
    assert refused.value.field == "reason"


def test_personal_free_text_may_name_the_person() -> None:
    runtime = bootstrap(Settings(store="memory"))
    try:
        w = a_world(runtime)
        app = w.org.app
        before = app.recorder.max_notification_id() or 0
        h.attach_buying_influence(app, meta(), deal_id=w.deal, stakeholder_id=w.person, role="economic_buyer",
                                  degree="high", note=f"{NAME}: zelda.q@customer.example")  # fmt: skip
        h.assess_qualification(app, meta(), deal_id=w.deal, element="champion", status="confirmed",
                               evidence=f"{NAME} pushes our offer internally", stakeholder_id=w.person)  # fmt: skip
        h.assign_team_member(app, meta(), account_id=w.org.account, member="bob@vendor.example", unit_id=w.org.hq,
                             role="gam")  # fmt: skip
        h.hold_business_review(app, meta("carol@vendor.example"), plan_id=w.org.plan, held_on=date(2027, 1, 10),
                               participants=("bob@vendor.example", "carol@vendor.example", "CFO"))  # fmt: skip
        assert (app.recorder.max_notification_id() or 0) == before + 4  # all four accepted and stored
    finally:
        runtime.close()


def test_a_name_identified_earlier_in_the_same_batch_is_known(world: World) -> None:
    person = c.IdentifyStakeholder(account_id=world.org.account, unit_id=world.org.hq, title="CTO",
                                   personal=PersonalData("Hilde Newcomer"))  # fmt: skip
    swot = c.AddSwotEntry(plan_id=world.org.plan, kind="strength", text="Hilde Newcomer likes us")
    with pytest.raises(BatchRefused) as refused:
        h.bus_for(world.org.app).handle_all([(person, None), (swot, None)], meta())
    assert refused.value.index == 1
    assert isinstance(refused.value.refusal, PersonalDataInText)


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_warn_logs_without_the_data_and_off_does_not_look(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    runtime = bootstrap(Settings(store="memory", personal_data_guard=mode))  # type: ignore[arg-type]
    try:
        w = a_world(runtime)
        with caplog.at_level(logging.WARNING, logger="gam.personal_data"):
            h.lose_deal(w.org.app, meta(), deal_id=w.deal, loss_reason=f"{NAME} (+41 79 555 0199) chose Acme")
        logged = [r.getMessage() for r in caplog.records if r.name == "gam.personal_data"]
        if mode == "warn":
            assert logged == ["lose_deal: loss_reason holds a phone number; accepted (GAM_PERSONAL_DATA_GUARD=warn)"]
        else:
            assert logged == []
    finally:
        runtime.close()


def test_over_http_a_422_problem_names_the_field_and_stores_nothing(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)
    writer = bootstrap(settings)
    w = a_world(writer)
    writer.close()
    gam = token("gam@vendor.example", "admin")
    deal = {"account_id": str(w.org.account), "unit_id": str(w.org.paris), "title": f"Pilot for {NAME}",
            "amount": {"amount": "1000", "currency": "EUR"}, "expected_close": "2099-06-30",
            "owner": "bob@vendor.example"}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        before = client.app.state.runtime.app.recorder.max_notification_id()  # type: ignore[attr-defined]
        answer = client.post("/deals", json=deal, headers=gam)
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert answer.headers["content-type"] == "application/problem+json"
        assert problem["rule"] == "personal_data_in_text"
        assert [e["path"] for e in problem["errors"]] == ["body/title"]
        assert "belongs on the stakeholder" in problem["detail"]
        batch = {"commands": [{"type": "open_deal", **deal, "title": "Sensors"},
                              {"type": "lose_deal", "deal_id": str(w.deal), "loss_reason": "mail x@customer.example"}],
                 "reason": "quarter end"}  # fmt: skip
        refused = client.post("/batches", json=batch, headers=gam).json()
        assert (refused["index"], [e["path"] for e in refused["errors"]]) == (1, ["body/commands/1/loss_reason"])
        batch = {**batch, "commands": batch["commands"][:1], "reason": f"asked by {NAME}"}
        refused = client.post("/batches", json=batch, headers=gam).json()
        assert [e["path"] for e in refused["errors"]] == ["body/reason"]
        assert client.app.state.runtime.app.recorder.max_notification_id() == before  # type: ignore[attr-defined]


def test_an_import_file_gets_the_same_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("GAM_STORE", "GAM_SQLITE_PATH", "GAM_PERSONAL_DATA_GUARD"):
        monkeypatch.delenv(name, raising=False)
    writer = bootstrap(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db"))
    w = a_world(writer)
    writer.close()
    swot = {"type": "add_swot_entry", "plan_id": str(w.org.plan), "kind": "threat"}
    lines = [swot | {"text": "Budget cut"}, swot | {"text": f"{NAME} may leave"}]
    file = tmp_path / "commands.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = CliRunner().invoke(cli, ["import", str(file)])
    assert run.exit_code != 0
    assert "personal_data_in_text" in run.output or "stakeholders" in run.output
    assert NAME not in run.output


def test_a_name_stored_by_another_process_is_known_at_once(durable_settings: Settings) -> None:
    first, second = bootstrap(durable_settings), bootstrap(durable_settings)
    try:
        w = a_world(first)
        swot = c.AddSwotEntry(plan_id=w.org.plan, kind="threat", text="Budget freeze")
        second.bus.handle(swot, meta())  # the second process has read the names once
        h.identify_stakeholder(first.app, meta(), account_id=w.org.account, unit_id=w.org.hq, title="CIO",
                               personal=PersonalData("Nora Neighbour"))  # fmt: skip
        with pytest.raises(PersonalDataInText):
            second.bus.handle(replace(swot, entry_id=uuid4(), text="Nora Neighbour is sceptical"), meta())
        h.erase_personal_data(first.app, meta(), stakeholder_id=w.person, legal_basis="Art. 17 #2")
        second.bus.handle(replace(swot, entry_id=uuid4(), text=f"{NAME} was erased"), meta())
    finally:
        first.close()
        second.close()


def test_evidence_on_a_person_that_names_no_stakeholder_is_checked(world: World) -> None:
    """Stored in clear (no one's key seals it), so it may not name the person."""
    with pytest.raises(PersonalDataInText) as refused:
        h.assess_qualification(world.org.app, meta(), deal_id=world.deal, element="champion", status="confirmed",
                               evidence=f"{NAME} pushes our offer internally")  # fmt: skip
    assert refused.value.field == "evidence"
    assert "MEDDPICC evidence that names the stakeholder" in str(refused.value)


def test_a_person_stored_in_another_account_meanwhile_sends_no_command_back(durable_settings: Settings) -> None:
    """Users of one process, each in their own account: a stakeholder one of them stores
    while another's command waits to commit leaves that command's names current (it was
    sent back, three times over, under eight users), and so does one another process
    stores in another account (with two API processes under load, a command was sent back
    three times and answered 412); a person another process identifies in the same account
    meanwhile does not."""
    first, second = bootstrap(durable_settings), bootstrap(durable_settings)
    try:
        mine, theirs = a_world(first), build_org(first.app, name="Other Industries")
        swot = c.AddSwotEntry(plan_id=mine.org.plan, kind="threat", text="Budget freeze")

        def decided() -> Session:
            session = Session(first.app, trust_cache=True)
            first.bus.decide(session, replace(swot, entry_id=uuid4()), meta(), None, None)
            return session

        def identify(runtime: Runtime, org: Org, name: str) -> None:
            runtime.bus.handle(c.IdentifyStakeholder(account_id=org.account, unit_id=org.hq, title="CFO",
                                                     personal=PersonalData(name)), meta())  # fmt: skip

        waiting = decided()
        identify(first, theirs, "Olga Other")
        waiting.commit()
        waiting = decided()  # another process, another account: whose, the person's first event says
        identify(second, theirs, "Otto Elsewhere")
        waiting.commit()
        waiting = decided()
        identify(second, mine.org, "Nora Neighbour")
        with pytest.raises(StaleRead):
            waiting.commit()
    finally:
        first.close()
        second.close()
