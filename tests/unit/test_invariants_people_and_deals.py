"""Stakeholder and Deal rules: ratings, the org chart, leavers; money, the
pipeline, closed deals, buying influences and qualification."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.deal import Deal
from domain.stakeholder import Stakeholder
from domain.values import Money, PersonalData
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.world import World, build_world


@pytest.fixture
def w(memory_app: GamApplication) -> World:
    return build_world(memory_app)


def person(w: World, account: UUID | None = None, unit: UUID | None = None) -> UUID:
    new = uuid4()
    h.identify_stakeholder(
        w.app,
        meta(),
        stakeholder_id=new,
        account_id=account or w.account,
        unit_id=unit or w.hq,
        title="VP",
        personal=PersonalData("Someone"),
    )
    return new


@pytest.mark.parametrize(("influence", "ok"), [(1, True), (5, True), (0, False), (6, False), (True, False)])
def test_influence_is_one_to_five(w: World, influence: int, ok: bool) -> None:
    if ok:
        h.rate_influence(w.app, meta(), stakeholder_id=w.person, influence=influence)
    else:
        w.assert_refused(errors.InvalidValue, h.rate_influence, stakeholder_id=w.person, influence=influence)


@pytest.mark.parametrize(
    ("sentiment", "ok"), [(-2, True), (2, True), (0, True), (-3, False), (3, False), (False, False)]
)
def test_sentiment_is_minus_two_to_plus_two(w: World, sentiment: int, ok: bool) -> None:
    if ok:
        h.rate_sentiment(w.app, meta(), stakeholder_id=w.person, sentiment=sentiment)
    else:
        w.assert_refused(errors.InvalidValue, h.rate_sentiment, stakeholder_id=w.person, sentiment=sentiment)


def test_the_org_chart_has_no_cycles(w: World) -> None:
    a, b, c = person(w), person(w), person(w)
    w.assert_refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=a, manager_id=a)
    h.set_reports_to(w.app, meta(), stakeholder_id=b, manager_id=a)
    w.assert_refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=a, manager_id=b)
    h.set_reports_to(w.app, meta(), stakeholder_id=c, manager_id=b)
    w.assert_refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=a, manager_id=c)  # a ← b ← c ← a
    h.set_reports_to(w.app, meta(), stakeholder_id=c, manager_id=None)
    h.set_reports_to(w.app, meta(), stakeholder_id=a, manager_id=c)  # fine once c no longer reports up to a
    assert w.app.load(Stakeholder, a).reports_to == c


def test_reporting_lines_stay_within_one_customer(w: World) -> None:
    other = build_world(w.app)
    w.assert_refused(errors.UnitOfAnotherAccount, h.set_reports_to, stakeholder_id=w.person, manager_id=other.person)
    w.assert_refused(errors.NotFound, h.set_reports_to, stakeholder_id=w.person, manager_id=uuid4())


def test_a_leaver_is_history(w: World) -> None:
    h.record_departure(w.app, meta(), stakeholder_id=w.person, left_on=date(2026, 12, 31))
    w.assert_refused(errors.StakeholderHasLeft, h.rate_sentiment, stakeholder_id=w.person, sentiment=1)
    w.assert_refused(errors.StakeholderHasLeft, h.change_stakeholder_title, stakeholder_id=w.person, title="CEO")
    w.assert_refused(errors.StakeholderHasLeft, h.record_departure, stakeholder_id=w.person, left_on=date(2027, 1, 1))


def test_interactions_are_not_logged_ahead_of_time_or_twice(w: World) -> None:
    m = meta()
    w.assert_refused(
        errors.InvalidValue,
        h.log_interaction,
        stakeholder_id=w.person,
        interaction_id=uuid4(),
        occurred_at=m.at + timedelta(days=1),
        channel="call",
        summary="Future",
    )
    interaction = uuid4()
    h.log_interaction(
        w.app, m, stakeholder_id=w.person, interaction_id=interaction, occurred_at=m.at, channel="call", summary="Met"
    )
    w.assert_refused(
        errors.AlreadyExists,
        h.log_interaction,
        stakeholder_id=w.person,
        interaction_id=interaction,
        occurred_at=m.at,
        channel="call",
        summary="Again",
    )
    w.assert_refused(
        errors.InvalidValue,
        h.log_interaction,
        stakeholder_id=w.person,
        interaction_id=uuid4(),
        occurred_at=m.at,
        channel="telepathy",
        summary="Hm",
    )


def test_personal_data_is_validated() -> None:
    with pytest.raises(errors.InvalidValue):
        PersonalData("Ann", email="not-an-email")
    with pytest.raises(errors.InvalidValue):
        PersonalData("   ")


def test_amounts_are_never_negative_and_keep_their_currency(w: World) -> None:
    w.assert_refused(
        errors.NegativeAmount,
        h.open_deal,
        deal_id=uuid4(),
        account_id=w.account,
        unit_id=w.paris,
        title="D",
        amount=Money(Decimal("-0.01"), "EUR"),
        expected_close=date(2027, 1, 1),
        owner="bob",
    )
    w.assert_refused(errors.NegativeAmount, h.change_deal_amount, deal_id=w.deal, amount=Money(Decimal(-5), "EUR"))
    w.assert_refused(errors.CurrencyMismatch, h.change_deal_amount, deal_id=w.deal, amount=Money(Decimal(5), "USD"))
    with pytest.raises(errors.InvalidValue):
        Money(Decimal(1), "XYZ")
    with pytest.raises(errors.InvalidValue):
        Money(Decimal("Infinity"), "EUR")


def test_stages_advance_one_at_a_time_and_move_back_freely(w: World) -> None:
    for target in ("solution", "negotiation", "prospecting", "closed"):
        error = errors.InvalidValue if target == "closed" else errors.InvalidStageTransition
        w.assert_refused(error, h.move_deal_stage, deal_id=w.deal, to_stage=target)
    for stage in ("qualification", "solution", "proposal", "negotiation"):
        h.move_deal_stage(w.app, meta(), deal_id=w.deal, to_stage=stage)
    h.move_deal_stage(w.app, meta(), deal_id=w.deal, to_stage="qualification")
    deal = w.app.load(Deal, w.deal)
    assert (deal.stage, deal.probability) == ("qualification", 20)


def test_deals_are_won_only_once_a_proposal_is_out(w: World) -> None:
    w.assert_refused(errors.InvalidStageTransition, h.win_deal, deal_id=w.deal, final_amount=Money(Decimal(900), "EUR"))
    for stage in ("qualification", "solution", "proposal"):
        h.move_deal_stage(w.app, meta(), deal_id=w.deal, to_stage=stage)
    w.assert_refused(errors.CurrencyMismatch, h.win_deal, deal_id=w.deal, final_amount=Money(Decimal(900), "GBP"))
    h.win_deal(w.app, meta(), deal_id=w.deal, final_amount=Money(Decimal(900), "EUR"))
    assert w.app.load(Deal, w.deal).status == "won"


def test_closed_deals_change_only_after_reopening(w: World) -> None:
    w.assert_refused(errors.DealNotClosed, h.reopen_deal, deal_id=w.deal)
    h.lose_deal(w.app, meta(), deal_id=w.deal, loss_reason="Price", competitor="Rival")
    for handler, kwargs in (
        (h.move_deal_stage, {"to_stage": "qualification"}),
        (h.change_deal_amount, {"amount": Money(Decimal(5), "EUR")}),
        (h.change_deal_close_date, {"expected_close": date(2028, 1, 1)}),
        (h.change_deal_probability, {"probability": 50}),
        (h.lose_deal, {"loss_reason": "Again"}),
        (h.assess_qualification, {"element": "metrics", "status": "confirmed"}),
    ):
        w.assert_refused(errors.DealClosed, handler, deal_id=w.deal, **kwargs)
    h.reopen_deal(w.app, meta(), deal_id=w.deal)
    h.move_deal_stage(w.app, meta(), deal_id=w.deal, to_stage="qualification")
    assert w.app.load(Deal, w.deal).status == "open"


def test_buying_influences_come_from_the_same_customer(w: World) -> None:
    other = build_world(w.app)
    w.assert_refused(
        errors.UnitOfAnotherAccount,
        h.attach_buying_influence,
        deal_id=w.deal,
        stakeholder_id=other.person,
        role="coach",
        degree="high",
    )
    w.assert_refused(
        errors.InvalidValue,
        h.attach_buying_influence,
        deal_id=w.deal,
        stakeholder_id=w.person,
        role="sponsor",
        degree="high",
    )
    w.assert_refused(errors.NotFound, h.detach_buying_influence, deal_id=w.deal, stakeholder_id=w.person, role="coach")
    h.attach_buying_influence(
        w.app, meta(), deal_id=w.deal, stakeholder_id=w.person, role="economic_buyer", degree="high", note="Signs"
    )
    h.detach_buying_influence(w.app, meta(), deal_id=w.deal, stakeholder_id=w.person, role="economic_buyer")
    assert w.app.load(Deal, w.deal).influences == {}


def test_meddpicc_elements_and_statuses_are_checked(w: World) -> None:
    w.assert_refused(errors.InvalidValue, h.assess_qualification, deal_id=w.deal, element="budget", status="confirmed")
    w.assert_refused(errors.InvalidValue, h.assess_qualification, deal_id=w.deal, element="champion", status="sure")
    h.assess_qualification(w.app, meta(), deal_id=w.deal, element="champion", status="at_risk", evidence="Left")
    assert w.app.load(Deal, w.deal).qualification["champion"].status == "at_risk"


def test_linked_objectives_must_exist_in_the_named_plan(w: World) -> None:
    base = {
        "account_id": w.account,
        "unit_id": w.paris,
        "title": "D",
        "amount": Money(Decimal(1), "EUR"),
        "expected_close": date(2027, 1, 1),
        "owner": "bob",
    }
    w.assert_refused(
        errors.InvalidValue, h.open_deal, deal_id=uuid4(), plan_id=w.plan, linked_objective_ids=(uuid4(),), **base
    )
    w.assert_refused(errors.InvalidValue, h.open_deal, deal_id=uuid4(), linked_objective_ids=(w.objective,), **base)
    other = build_world(w.app)
    w.assert_refused(
        errors.UnitOfAnotherAccount,
        h.open_deal,
        deal_id=uuid4(),
        plan_id=other.plan,
        linked_objective_ids=(other.objective,),
        **base,
    )
    w.assert_refused(errors.AlreadyExists, h.open_deal, deal_id=w.deal, **base)
    for probability in (-1, 101):
        w.assert_refused(errors.InvalidValue, h.open_deal, deal_id=uuid4(), probability=probability, **base)
