"""AccountPlan rules: the cascade and its answers, actions, progress, approval."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.account import UnitTree
from domain.plan import AccountPlan
from domain.values import Target
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.world import World, build_world


@pytest.fixture
def w(memory_app: GamApplication) -> World:
    return build_world(memory_app)


def cascade(w: World, to: tuple[UUID, ...], source: UUID | None = None) -> None:
    h.cascade_objective(
        w.app, meta(), plan_id=w.plan, objective_id=w.objective, from_unit_id=source or w.hq, to_unit_ids=to
    )


def test_fiscal_periods_look_like_fy_and_one_plan_per_account_and_period(w: World) -> None:
    for period in ("2027", "FY27", "FY2027-Q5", "fy2027"):
        w.assert_refused(errors.InvalidValue, h.start_plan, account_id=w.account, fiscal_period=period)
    w.assert_refused(errors.AlreadyExists, h.start_plan, account_id=w.account, fiscal_period="FY2027")
    h.start_plan(w.app, meta(), account_id=w.account, fiscal_period="FY2028-H1")


def test_cascade_goes_only_strictly_below_the_source(w: World) -> None:
    w.assert_refused(
        errors.CascadeNotBelowSource,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.hq,
        to_unit_ids=(w.hq,),
    )
    cascade(w, (w.emea,))
    h.respond_to_cascade(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.emea, answer="adopted")
    w.assert_refused(
        errors.CascadeNotBelowSource,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.emea,
        to_unit_ids=(w.us,),
    )  # another region's country
    cascade(w, (w.france, w.paris), source=w.emea)  # two levels down is still below


def test_only_the_owner_or_a_unit_that_took_it_on_cascades(w: World) -> None:
    cascade(w, (w.emea, w.amer))
    w.assert_refused(
        errors.CascadeSourceNotEntitled,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.emea,
        to_unit_ids=(w.france,),
    )  # not answered yet
    h.respond_to_cascade(
        w.app,
        meta(),
        plan_id=w.plan,
        objective_id=w.objective,
        unit_id=w.amer,
        answer="declined",
        rationale="No budget",
    )
    w.assert_refused(
        errors.CascadeSourceNotEntitled,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.amer,
        to_unit_ids=(w.us,),
    )  # declined it


def test_each_unit_receives_an_objective_once(w: World) -> None:
    cascade(w, (w.emea,))
    w.assert_refused(
        errors.AlreadyCascaded,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.hq,
        to_unit_ids=(w.amer, w.emea),
    )
    w.assert_refused(
        errors.InvalidValue,
        h.cascade_objective,
        plan_id=w.plan,
        objective_id=w.objective,
        from_unit_id=w.hq,
        to_unit_ids=(),
    )


def test_only_addressed_units_answer_and_only_once(w: World) -> None:
    cascade(w, (w.emea,))
    w.assert_refused(
        errors.CascadeNotAddressedToUnit,
        h.respond_to_cascade,
        plan_id=w.plan,
        objective_id=w.objective,
        unit_id=w.amer,
        answer="adopted",
    )
    h.respond_to_cascade(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.emea, answer="adopted")
    for answer in ("adopted", "declined"):
        w.assert_refused(
            errors.CascadeAlreadyAnswered,
            h.respond_to_cascade,
            plan_id=w.plan,
            objective_id=w.objective,
            unit_id=w.emea,
            answer=answer,
            rationale="changed my mind",
        )


def test_adapting_needs_a_local_target_and_rationale_and_declining_a_rationale(w: World) -> None:
    cascade(w, (w.emea,))
    ids = {"plan_id": w.plan, "objective_id": w.objective, "unit_id": w.emea}
    w.assert_refused(
        errors.InvalidValue, h.respond_to_cascade, **ids, answer="adapted", rationale="smaller", local_title="L"
    )
    w.assert_refused(
        errors.InvalidValue,
        h.respond_to_cascade,
        **ids,
        answer="adapted",
        local_title="L",
        local_target=Target("revenue", Decimal(5), "EUR"),
    )
    w.assert_refused(errors.InvalidValue, h.respond_to_cascade, **ids, answer="declined")
    w.assert_refused(errors.InvalidValue, h.respond_to_cascade, **ids, answer="maybe")
    h.respond_to_cascade(
        w.app,
        meta(),
        **ids,
        answer="adapted",
        rationale="smaller",
        local_title="Grow EMEA",
        local_target=Target("revenue", Decimal(5), "EUR"),
    )
    directive = w.app.load(AccountPlan, w.plan).directives[(w.objective, w.emea)]
    assert (directive.answer, directive.local_title, directive.rationale) == ("adapted", "Grow EMEA", "smaller")


def test_actions_and_progress_only_from_entitled_units(w: World) -> None:
    cascade(w, (w.emea, w.amer))
    h.respond_to_cascade(
        w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.amer, answer="declined", rationale="no"
    )
    for unit in (w.amer, w.emea, w.france):  # declined, unanswered, never addressed
        w.assert_refused(
            errors.ProgressNotEntitled,
            h.report_progress,
            plan_id=w.plan,
            objective_id=w.objective,
            unit_id=unit,
            percent=10,
        )
        w.assert_refused(
            errors.ProgressNotEntitled,
            h.add_action,
            plan_id=w.plan,
            action_id=uuid4(),
            objective_id=w.objective,
            unit_id=unit,
            title="A",
            owner="o",
            due_date=date(2027, 1, 1),
        )
    for percent in (-1, 101, True):
        w.assert_refused(
            errors.InvalidValue,
            h.report_progress,
            plan_id=w.plan,
            objective_id=w.objective,
            unit_id=w.hq,
            percent=percent,
        )
    w.assert_refused(errors.NotFound, h.report_progress, plan_id=w.plan, objective_id=uuid4(), unit_id=w.hq, percent=1)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (("in_progress", "done"), True),
        (("blocked", "in_progress", "done", "in_progress"), True),
        (("done", "blocked"), False),
        (("blocked", "done"), False),
        (("in_progress", "in_progress"), False),
        (("planned",), False),
    ],
)
def test_action_status_follows_the_allowed_transitions(w: World, path: tuple[str, ...], allowed: bool) -> None:
    action = uuid4()
    h.add_action(
        w.app,
        meta(),
        plan_id=w.plan,
        action_id=action,
        objective_id=w.objective,
        unit_id=w.hq,
        title="A",
        owner="o",
        due_date=date(2027, 1, 1),
    )
    *fine, last = path
    for status in fine:
        h.change_action_status(w.app, meta(), plan_id=w.plan, action_id=action, status=status)
    if allowed:
        h.change_action_status(w.app, meta(), plan_id=w.plan, action_id=action, status=last)
    else:
        w.assert_refused(
            errors.InvalidActionTransition, h.change_action_status, plan_id=w.plan, action_id=action, status=last
        )


def test_submitted_and_approved_plans_freeze_strategy_until_reopened(w: World) -> None:
    objective = {
        "objective_id": uuid4(),
        "unit_id": w.hq,
        "title": "New",
        "description": "",
        "target": Target("n", Decimal(1)),
        "due_date": date(2027, 1, 1),
    }
    w.assert_refused(errors.InvalidPlanTransition, h.approve_plan, plan_id=w.plan)
    w.assert_refused(errors.InvalidPlanTransition, h.reopen_plan, plan_id=w.plan)
    h.submit_plan(w.app, meta(), plan_id=w.plan)
    w.assert_refused(errors.InvalidPlanTransition, h.submit_plan, plan_id=w.plan)
    w.assert_refused(errors.PlanNotEditable, h.set_objective, plan_id=w.plan, **objective)
    h.approve_plan(w.app, meta(), plan_id=w.plan)
    plan = w.app.load(AccountPlan, w.plan)
    assert (plan.status, plan.baseline_version) == ("approved", plan.version)
    w.assert_refused(
        errors.PlanNotEditable, h.add_swot_entry, plan_id=w.plan, entry_id=uuid4(), kind="threat", text="t"
    )
    h.report_progress(
        w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.hq, percent=20
    )  # execution goes on
    h.reopen_plan(w.app, meta(), plan_id=w.plan)
    h.set_objective(w.app, meta(), plan_id=w.plan, **objective)


def test_an_empty_plan_cannot_be_submitted(w: World) -> None:
    h.start_plan(w.app, meta(), account_id=w.account, fiscal_period="FY2029")
    from domain.plan import plan_id_for

    w.assert_refused(errors.InvalidPlanTransition, h.submit_plan, plan_id=plan_id_for(w.account, "FY2029"))


def test_linked_objectives_must_belong_to_a_unit_above(w: World) -> None:
    base = {
        "plan_id": w.plan,
        "title": "Local",
        "description": "",
        "target": Target("n", Decimal(1)),
        "due_date": date(2027, 1, 1),
    }
    h.set_objective(w.app, meta(), objective_id=uuid4(), unit_id=w.france, linked_objective_id=w.objective, **base)
    paris_objective = uuid4()
    h.set_objective(w.app, meta(), objective_id=paris_objective, unit_id=w.paris, **base)
    w.assert_refused(
        errors.InvalidValue,
        h.set_objective,
        objective_id=uuid4(),
        unit_id=w.france,
        linked_objective_id=paris_objective,
        **base,
    )
    w.assert_refused(
        errors.InvalidValue,
        h.set_objective,
        objective_id=uuid4(),
        unit_id=w.france,
        linked_objective_id=uuid4(),
        **base,
    )
    w.assert_refused(errors.AlreadyExists, h.set_objective, objective_id=paris_objective, unit_id=w.paris, **base)


def test_money_targets_are_never_negative_and_need_a_real_currency() -> None:
    with pytest.raises(errors.NegativeAmount):
        Target("revenue", Decimal(-1), "EUR")
    with pytest.raises(errors.InvalidValue):
        Target("revenue", Decimal(1), "EURO")
    with pytest.raises(errors.InvalidValue):
        Target("revenue", Decimal("NaN"), "EUR")
    assert Target("churn change", Decimal(-5)).value == -5  # non-money targets may fall


def test_a_plan_refuses_another_accounts_unit_tree(w: World) -> None:
    plan = w.app.load(AccountPlan, w.plan)
    foreign = UnitTree(uuid4(), ())
    with pytest.raises(errors.UnitOfAnotherAccount):
        plan.cascade_objective(
            objective_id=w.objective, from_unit_id=w.hq, to_unit_ids=(w.emea,), tree=foreign, meta=meta()
        )
    assert plan.pending_events == []
