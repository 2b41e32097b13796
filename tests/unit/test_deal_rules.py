"""Deal rules: money, the pipeline's stage moves, winning, closing and reopening,
buying influences, MEDDPICC, and links to the plan's objectives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.deal import Deal
from domain.plan import AccountPlan, plan_id_for
from domain.values import PIPELINE, STAGE_PROBABILITY, WINNABLE_STAGES, DealStage, MeddpiccElement, Money
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.builders import Org, build_org

STAGES = [s.value for s in PIPELINE]


@pytest.fixture
def org(memory_app: GamApplication) -> Org:
    return build_org(memory_app)


def deal(org: Org, deal_id: UUID) -> Deal:
    return org.app.load(Deal, deal_id)


def eur(amount: str | int) -> Money:
    return Money(Decimal(amount), "EUR")


def open_kwargs(org: Org, **overrides: Any) -> dict[str, Any]:
    return {
        "deal_id": uuid4(),
        "account_id": org.account,
        "unit_id": org.paris,
        "title": "Automation platform",
        "amount": eur("1000.00"),
        "expected_close": date(2027, 6, 30),
        "owner": "bob",
        **overrides,
    }


# --- opening a deal ---------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["-0.01", "-1000"])
def test_a_deal_amount_is_never_negative(org: Org, amount: str) -> None:
    kwargs = open_kwargs(org, amount=eur(amount))
    error = org.refused(errors.NegativeAmount, h.open_deal, **kwargs)
    assert error.rule == "negative_amount"
    assert not org.app.exists(kwargs["deal_id"])


def test_a_zero_amount_and_any_currency_open_a_deal(org: Org) -> None:
    kwargs = open_kwargs(org, amount=Money(Decimal(0), "USD"))
    h.open_deal(org.app, meta(), **kwargs)
    assert deal(org, kwargs["deal_id"]).amount == Money(Decimal(0), "USD")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": Decimal(1000)}, "amount"),
        ({"stage": "won"}, "stage"),
        ({"stage": "Proposal"}, "stage"),
        ({"probability": 101}, "probability"),
        ({"probability": -1}, "probability"),
        ({"probability": True}, "probability"),
        ({"title": " "}, "title"),
        ({"owner": ""}, "owner"),
        ({"expected_close": datetime(2027, 6, 30)}, "expected_close"),
        ({"products": ("Training", " ")}, "products[1]"),
    ],
)
def test_deal_values_are_validated(org: Org, overrides: dict[str, Any], field: str) -> None:
    assert org.refused(errors.InvalidValue, h.open_deal, **open_kwargs(org, **overrides)).field == field


@pytest.mark.parametrize("currency", ["eur", "EURO", "ABC"])
def test_money_has_an_iso_currency(currency: str) -> None:
    with pytest.raises(errors.InvalidValue):
        Money(Decimal(1), currency)


def test_money_is_a_finite_decimal() -> None:
    for amount in (Decimal("NaN"), Decimal("Infinity"), 1.5, 10):
        with pytest.raises(errors.InvalidValue):
            Money(amount, "EUR")  # type: ignore[arg-type]


def test_a_deal_sits_on_an_open_unit_of_its_account(org: Org) -> None:
    other = build_org(org.app, with_plan=False, name="Other")
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    org.refused(errors.UnitClosed, h.open_deal, **open_kwargs(org, unit_id=org.houston))
    org.refused(errors.NotFound, h.open_deal, **open_kwargs(org, unit_id=other.paris))


def test_a_deal_id_is_opened_once(org: Org) -> None:
    first = org.deal()
    error = org.refused(errors.AlreadyExists, h.open_deal, **open_kwargs(org, deal_id=first, title="Other"))
    assert (error.kind, error.entity_id) == ("deal", first)
    assert deal(org, first).title == "Automation platform"


# --- links to the plan -------------------------------------------------------------------------


def test_linked_objectives_must_exist_in_the_named_plan(org: Org) -> None:
    objective = org.objective()
    h.start_plan(org.app, meta(), account_id=org.account, fiscal_period="FY2028")
    next_year = plan_id_for(org.account, "FY2028")
    h.set_objective(
        org.app,
        meta(),
        plan_id=next_year,
        objective_id=(later := uuid4()),
        unit_id=org.hq,
        title="Later",
        description="",
        target=org.app.load(AccountPlan, org.plan).objectives[objective].target,
        due_date=date(2028, 12, 31),
    )
    # An objective of another plan, or none at all, is unknown to the named plan.
    for links, index in (((later,), 0), ((objective, uuid4()), 1)):
        error = org.refused(
            errors.InvalidValue, h.open_deal, **open_kwargs(org, plan_id=org.plan, linked_objective_ids=links)
        )
        assert error.field == f"linked_objective_ids[{index}]"
    # Links need a plan to check them against.
    error = org.refused(errors.InvalidValue, h.open_deal, **open_kwargs(org, linked_objective_ids=(objective,)))
    assert error.field == "plan_id"
    missing = uuid4()
    error = org.refused(
        errors.NotFound, h.open_deal, **open_kwargs(org, plan_id=missing, linked_objective_ids=(objective,))
    )
    assert (error.kind, error.entity_id) == ("plan", missing)
    # Known links are kept, once each.
    kwargs = open_kwargs(org, plan_id=org.plan, linked_objective_ids=(objective, objective))
    h.open_deal(org.app, meta(), **kwargs)
    assert deal(org, kwargs["deal_id"]).linked_objective_ids == (objective,)


def test_a_deal_links_only_to_a_plan_of_its_own_account(org: Org) -> None:
    other = build_org(org.app, name="Other")
    foreign = other.objective()
    error = org.refused(
        errors.UnitOfAnotherAccount,
        h.open_deal,
        **open_kwargs(org, plan_id=other.plan, linked_objective_ids=(foreign,)),
    )
    assert error.rule == "unit_of_another_account"
    org.refused(errors.UnitOfAnotherAccount, h.open_deal, **open_kwargs(org, plan_id=other.plan))


# --- stages -----------------------------------------------------------------------------------


def move(org: Org, deal_id: UUID, stage: str) -> None:
    h.move_deal_stage(org.app, meta(reason="Reviewed with the customer"), deal_id=deal_id, to_stage=stage)


@pytest.mark.parametrize("start", STAGES)
@pytest.mark.parametrize("target", STAGES)
def test_deals_advance_one_stage_and_fall_back_to_any_earlier_one(org: Org, start: str, target: str) -> None:
    deal_id = org.deal(stage=start)
    assert deal(org, deal_id).stage == start
    step = DealStage(target).position - DealStage(start).position
    if step == 1 or step < 0:
        move(org, deal_id, target)
        moved = deal(org, deal_id)
        assert (moved.stage, moved.probability) == (target, STAGE_PROBABILITY[DealStage(target)])
    else:  # staying put, or skipping a gate
        error = org.refused(errors.InvalidStageTransition, h.move_deal_stage, deal_id=deal_id, to_stage=target)
        assert error.rule == "invalid_stage_transition"
        assert deal(org, deal_id).stage == start


def test_the_pipeline_is_in_order() -> None:
    assert STAGES == ["prospecting", "qualification", "solution", "proposal", "negotiation"]
    assert [STAGE_PROBABILITY[s] for s in PIPELINE] == sorted(STAGE_PROBABILITY.values())


@pytest.mark.parametrize("stage", ["won", "lost", "closed", "PROPOSAL", ""])
def test_only_pipeline_stages_are_targets(org: Org, stage: str) -> None:
    deal_id = org.deal()
    assert org.refused(errors.InvalidValue, h.move_deal_stage, deal_id=deal_id, to_stage=stage).field == "to_stage"


@pytest.mark.parametrize("stage", STAGES)
def test_a_deal_is_won_only_from_proposal_or_negotiation(org: Org, stage: str) -> None:
    deal_id = org.deal(stage=stage)
    if DealStage(stage) in WINNABLE_STAGES:
        h.win_deal(org.app, meta(), deal_id=deal_id, final_amount=eur(900))
        won = deal(org, deal_id)
        assert (won.status, won.final_amount, won.probability) == ("won", eur(900), 100)
    else:
        error = org.refused(errors.InvalidStageTransition, h.win_deal, deal_id=deal_id, final_amount=eur(900))
        assert error.rule == "invalid_stage_transition"
        assert deal(org, deal_id).status == "open"
    assert {s.value for s in WINNABLE_STAGES} == {"proposal", "negotiation"}


# --- money on an open deal -----------------------------------------------------------------------


def test_a_deal_keeps_its_currency(org: Org) -> None:
    deal_id = org.deal(stage="negotiation")
    error = org.refused(errors.CurrencyMismatch, h.change_deal_amount, deal_id=deal_id, amount=Money(Decimal(5), "USD"))
    assert error.rule == "currency_mismatch"
    org.refused(errors.CurrencyMismatch, h.win_deal, deal_id=deal_id, final_amount=Money(Decimal(5), "GBP"))
    current = deal(org, deal_id)
    assert (current.amount, current.status) == (eur("1000.00"), "open")


def test_amounts_on_an_open_deal_are_never_negative(org: Org) -> None:
    deal_id = org.deal(stage="proposal")
    org.refused(errors.NegativeAmount, h.change_deal_amount, deal_id=deal_id, amount=eur(-1))
    org.refused(errors.NegativeAmount, h.win_deal, deal_id=deal_id, final_amount=eur(-1))
    org.refused(errors.InvalidValue, h.change_deal_amount, deal_id=deal_id, amount=Decimal(5))
    org.refused(errors.InvalidValue, h.win_deal, deal_id=deal_id, final_amount=Decimal(5))
    h.change_deal_amount(org.app, meta(), deal_id=deal_id, amount=eur(0))
    assert deal(org, deal_id).amount == eur(0)


@pytest.mark.parametrize("probability", [-1, 101, True, 50.0])
def test_probability_is_a_whole_percent(org: Org, probability: Any) -> None:
    deal_id = org.deal()
    error = org.refused(errors.InvalidValue, h.change_deal_probability, deal_id=deal_id, probability=probability)
    assert error.field == "probability"


# --- closed deals ---------------------------------------------------------------------------------

CLOSED_COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[Org, UUID], dict[str, Any]]]] = {
    "move_deal_stage": (h.move_deal_stage, lambda o, _: {"to_stage": "negotiation"}),
    "move_deal_stage_back": (h.move_deal_stage, lambda o, _: {"to_stage": "prospecting"}),
    "change_deal_amount": (h.change_deal_amount, lambda o, _: {"amount": eur(2000)}),
    "change_deal_close_date": (h.change_deal_close_date, lambda o, _: {"expected_close": date(2027, 9, 1)}),
    "change_deal_probability": (h.change_deal_probability, lambda o, _: {"probability": 70}),
    "win_deal": (h.win_deal, lambda o, _: {"final_amount": eur(950)}),
    "lose_deal": (h.lose_deal, lambda o, _: {"loss_reason": "No budget"}),
    "attach_buying_influence": (
        h.attach_buying_influence,
        lambda o, _: {"stakeholder_id": o.stakeholder(), "role": "economic_buyer", "degree": "high"},
    ),
    "detach_buying_influence": (h.detach_buying_influence, lambda o, coach: {"stakeholder_id": coach, "role": "coach"}),
    "assess_qualification": (h.assess_qualification, lambda o, _: {"element": "metrics", "status": "confirmed"}),
}


def closed_deal(org: Org, how: str) -> tuple[UUID, UUID]:
    """A deal at proposal with a coach attached, then won or lost (or left open)."""
    deal_id = org.deal(stage="proposal")
    coach = org.stakeholder(name="Coach")
    h.attach_buying_influence(org.app, meta(), deal_id=deal_id, stakeholder_id=coach, role="coach", degree="medium")
    if how == "won":
        h.win_deal(org.app, meta(), deal_id=deal_id, final_amount=eur(990))
    elif how == "lost":
        h.lose_deal(org.app, meta(), deal_id=deal_id, loss_reason="Went with a rival", competitor="Rival Inc")
    return deal_id, coach


@pytest.mark.parametrize("how", ["open", "won", "lost"])
@pytest.mark.parametrize("command", list(CLOSED_COMMANDS))
def test_a_closed_deal_refuses_changes_until_reopened(org: Org, command: str, how: str) -> None:
    deal_id, coach = closed_deal(org, how)
    handler, kwargs = CLOSED_COMMANDS[command]
    if how == "open":  # the same command is valid on the open deal
        handler(org.app, meta(reason="Reviewed"), deal_id=deal_id, **kwargs(org, coach))
        return
    version = deal(org, deal_id).version
    error = org.refused(errors.DealClosed, handler, deal_id=deal_id, **kwargs(org, coach))
    assert error.rule == "deal_closed"
    assert (deal(org, deal_id).status, deal(org, deal_id).version) == (how, version)
    h.reopen_deal(org.app, meta(), deal_id=deal_id)
    handler(org.app, meta(reason="Reviewed"), deal_id=deal_id, **kwargs(org, coach))


def test_every_deal_command_is_covered() -> None:
    names = {handler.__name__ for handler, _ in CLOSED_COMMANDS.values()}
    assert names | {"open_deal", "reopen_deal"} == {
        kind.type_name() for kind, handling in h.HANDLINGS.items() if handling.aggregate is Deal
    }


@pytest.mark.parametrize("how", ["won", "lost"])
def test_reopening_restores_the_stage_and_its_probability(org: Org, how: str) -> None:
    deal_id, _ = closed_deal(org, how)
    h.reopen_deal(org.app, meta(), deal_id=deal_id)
    reopened = deal(org, deal_id)
    assert (reopened.status, reopened.stage, reopened.probability) == ("open", "proposal", 60)
    assert (reopened.final_amount, reopened.loss_reason, reopened.competitor) == (None, None, None)


def test_only_a_closed_deal_is_reopened(org: Org) -> None:
    deal_id = org.deal()
    error = org.refused(errors.DealNotClosed, h.reopen_deal, deal_id=deal_id)
    assert error.rule == "deal_not_closed"
    h.lose_deal(org.app, meta(), deal_id=deal_id, loss_reason="No budget")
    h.reopen_deal(org.app, meta(), deal_id=deal_id)
    org.refused(errors.DealNotClosed, h.reopen_deal, deal_id=deal_id)
    assert deal(org, deal_id).status == "open"


# --- buying influences and MEDDPICC ------------------------------------------------------------------


def test_a_buying_influence_is_a_stakeholder_of_the_deal_s_account(org: Org) -> None:
    other = build_org(org.app, with_plan=False, name="Other")
    deal_id, theirs = org.deal(), other.stakeholder()
    error = org.refused(
        errors.UnitOfAnotherAccount,
        h.attach_buying_influence,
        deal_id=deal_id,
        stakeholder_id=theirs,
        role="economic_buyer",
        degree="high",
    )
    assert error.rule == "unit_of_another_account"
    missing = uuid4()
    error = org.refused(
        errors.NotFound, h.attach_buying_influence, deal_id=deal_id, stakeholder_id=missing, role="coach", degree="low"
    )
    assert (error.kind, error.entity_id) == ("stakeholder", missing)
    assert deal(org, deal_id).influences == {}


@pytest.mark.parametrize(("role", "degree", "field"), [("sponsor", "high", "role"), ("coach", "very high", "degree")])
def test_buying_influence_role_and_degree_are_validated(org: Org, role: str, degree: str, field: str) -> None:
    deal_id, ours = org.deal(), org.stakeholder()
    error = org.refused(
        errors.InvalidValue, h.attach_buying_influence, deal_id=deal_id, stakeholder_id=ours, role=role, degree=degree
    )
    assert error.field == field


def test_detaching_an_unknown_buying_influence_is_not_found(org: Org) -> None:
    deal_id, ours = org.deal(), org.stakeholder()
    h.attach_buying_influence(org.app, meta(), deal_id=deal_id, stakeholder_id=ours, role="coach", degree="high")
    for stakeholder_id, role in ((ours, "economic_buyer"), (uuid4(), "coach")):
        error = org.refused(
            errors.NotFound, h.detach_buying_influence, deal_id=deal_id, stakeholder_id=stakeholder_id, role=role
        )
        assert error.kind == "buying influence"
    h.detach_buying_influence(org.app, meta(), deal_id=deal_id, stakeholder_id=ours, role="coach")
    org.refused(errors.NotFound, h.detach_buying_influence, deal_id=deal_id, stakeholder_id=ours, role="coach")
    assert deal(org, deal_id).influences == {}


@pytest.mark.parametrize(
    ("element", "status", "field"),
    [
        ("budget", "confirmed", "element"),
        ("Metrics", "confirmed", "element"),
        ("metrics", "yes", "status"),
        ("champion", "", "status"),
    ],
)
def test_meddpicc_elements_and_statuses_are_validated(org: Org, element: str, status: str, field: str) -> None:
    deal_id = org.deal()
    error = org.refused(errors.InvalidValue, h.assess_qualification, deal_id=deal_id, element=element, status=status)
    assert error.field == field
    assert deal(org, deal_id).qualification == {}


def test_every_meddpicc_element_can_be_assessed(org: Org) -> None:
    deal_id = org.deal()
    for element in MeddpiccElement:
        h.assess_qualification(org.app, meta(), deal_id=deal_id, element=element.value, status="partial", evidence="x")
    assert set(deal(org, deal_id).qualification) == {e.value for e in MeddpiccElement}
    assert len(MeddpiccElement) == 8


def test_evidence_names_a_stakeholder_of_the_account_only_for_the_economic_buyer_or_champion(org: Org) -> None:
    deal_id, person = org.deal(), org.stakeholder()
    error = org.refused(errors.InvalidValue, h.assess_qualification, deal_id=deal_id, element="metrics",
                        status="partial", evidence="x", stakeholder_id=person)  # fmt: skip
    assert error.field == "stakeholder_id"
    org.refused(errors.NotFound, h.assess_qualification, deal_id=deal_id, element="champion", status="partial",
                evidence="x", stakeholder_id=uuid4())  # fmt: skip
    h.assess_qualification(org.app, meta(), deal_id=deal_id, element="champion", status="partial", evidence="x",
                           stakeholder_id=person)  # fmt: skip
    assert deal(org, deal_id).qualification["champion"].stakeholder_id == person


def test_no_note_or_evidence_can_name_an_erased_person_and_the_roles_stay(org: Org) -> None:
    deal_id, person = org.deal(), org.stakeholder()
    h.erase_personal_data(org.app, meta(), stakeholder_id=person, legal_basis="GDPR Art. 17")
    org.refused(errors.SubjectErased, h.attach_buying_influence, deal_id=deal_id, stakeholder_id=person,
                role="coach", degree="high", note="x")  # fmt: skip
    org.refused(errors.SubjectErased, h.assess_qualification, deal_id=deal_id, element="champion",
                status="partial", evidence="x", stakeholder_id=person)  # fmt: skip
    h.attach_buying_influence(org.app, meta(), deal_id=deal_id, stakeholder_id=person, role="coach", degree="high")
    assert deal(org, deal_id).influences[(person, "coach")].degree == "high"
